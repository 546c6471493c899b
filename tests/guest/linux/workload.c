/*
 * The verifying workload of Ferry's Linux test guest: a user-space port of
 * the test kernel's ring-3 workload (tests/guest/kernel/workload.c), with the
 * same page layout and the same output lines, so a test reads either guest
 * the same way.
 *
 * Every participating thread owns one partition of an anonymous mapping of
 * ferry.mem MiB, rewrites its pages at the requested rate and verifies them
 * against a generation table kept at the front of the partition.
 *
 * Page layout: word 0 = page index (virtual address / 4096), word 1 =
 * generation, words 2..511 = a sequence seeded by both, so a page from
 * another generation, another page, or a torn page all fail verification.
 *
 * Options, from the kernel command line (/proc/cmdline) and then from the
 * arguments (later wins), with or without the "ferry." prefix:
 *   mem=MiB        test area (default 8: populating costs ~3-13 ms a page)
 *   rate=N|max     page writes per second, all threads together (default max)
 *   cpus=N         threads (default: online CPUs)
 *   hb=MS          heartbeat interval, 0 = none (default 1000)
 *   verify=0|1     verify the pattern (default 1)
 *
 * Output (one line each, to stdout):
 *   FERRY-LINUX-WORKLOAD boot token=<16 hex>
 *   INFO populate-ms=<n> pages=<n>
 *   WORKLOAD mem=<MiB> rate=<n|max> cpus=<n>
 *   HB token=<16 hex> ticks=<n> pass=<n> writes=<n>     ticks: 10 ms units
 *   VERIFY OK <pass>
 *   VERIFY FAIL <index> expected-gen=<g> got-index=<i> got-gen=<g>
 *
 * Everything that enters the guest kernel is slow on kvm_pvm (a page fault
 * costs milliseconds), so the area is populated once with MAP_POPULATE and
 * the loops make no system calls except to print and to sleep.
 *
 * Linked into the /init binary together with init.c (which calls
 * workload_main()), so the workload needs no fork or exec.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define PAGE_SIZE           4096
#define PAGE_WORDS          (PAGE_SIZE / 8)
#define GENS_PER_PAGE       (PAGE_SIZE / 4)
#define BATCH               64
#define PATTERN_STEP        0x9e3779b97f4a7c15ULL
#define VERIFY_GAP_MS       1000        /* verify at least this often */
/* Print VERIFY OK at most this often (the test kernel: 100 ms); every line
 * is a slow trip through the emulated guest kernel. */
#define OK_PRINT_GAP_MS     1000
#define IDLE_NS             (10 * 1000 * 1000)
#define MAX_THREADS         64
#define NS_PER_MS           ((u64)1000000)
#define NS_PER_S            ((u64)1000000000)

typedef uint64_t u64;
typedef uint32_t u32;

struct slot {
    pthread_t thread;
    u64 first;                          /* first test page of the partition */
    u64 table_pages;                    /* generation table, at the front */
    u64 data_pages;
    volatile u64 writes;
    volatile u64 pass;                  /* verification passes completed */
} __attribute__((aligned(64)));

static struct {
    u32 mem_mib;
    bool rate_max;
    u64 rate;
    u32 cpus;
    u32 hb_ms;
    bool verify;
} opt = { 8, true, 0, 0, 1000, true };

static u64 token;
static u64 *area;
static u64 test_pages;
static u32 participants;
static struct slot slots[MAX_THREADS];
static volatile u32 fail_reported;

/* Heartbeat and VERIFY OK bookkeeping; only slot 0 touches it. */
static u64 start_ns;
static u64 next_hb;
static u64 ok_printed;
static u64 last_ok_ns;
static u64 last_seen_ns;

static u64 mix64(u64 x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* CLOCK_MONOTONIC through the vDSO: no system call. */
static u64 now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (u64)ts.tv_sec * NS_PER_S + (u64)ts.tv_nsec;
}

static u64 rdtsc(void)
{
    u32 lo, hi;

    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (u64)hi << 32 | lo;
}

/* One line, one write(): lines from several threads never interleave. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if (n > (int)sizeof(buf) - 2) {
        n = sizeof(buf) - 2;
    }
    buf[n++] = '\n';
    for (int off = 0; off < n;) {
        ssize_t w = write(STDOUT_FILENO, buf + off, n - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return;
        }
        off += w;
    }
}

static bool parse_u64(const char *s, u64 *out)
{
    char *end;
    unsigned long long v;

    if (*s < '0' || *s > '9') {
        return false;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end) {
        return false;
    }
    *out = v;
    return true;
}

static void set_option(const char *arg)
{
    const char *eq = strchr(arg, '=');
    const char *val;
    size_t klen;
    u64 v;

    if (!strncmp(arg, "ferry.", 6)) {
        arg += 6;
    }
    if (!eq || eq < arg) {
        return;
    }
    klen = eq - arg;
    val = eq + 1;
#define KEY(name) (klen == sizeof(name) - 1 && !strncmp(arg, name, klen))
    if (KEY("rate") && !strcmp(val, "max")) {
        opt.rate_max = true;
        return;
    }
    if (!parse_u64(val, &v)) {
        return;
    }
    if (KEY("mem")) {
        opt.mem_mib = v > 0xffffffff ? 0xffffffff : (u32)v;
    } else if (KEY("rate")) {
        opt.rate_max = false;
        opt.rate = v;
    } else if (KEY("cpus")) {
        opt.cpus = v > MAX_THREADS ? MAX_THREADS : (u32)v;
    } else if (KEY("hb")) {
        opt.hb_ms = v > 3600000 ? 3600000 : (u32)v;
    } else if (KEY("verify")) {
        opt.verify = v != 0;
    }
#undef KEY
}

/* Only the ferry.* words of the kernel command line. */
static void parse_proc_cmdline(void)
{
    char buf[4096];
    int fd = open("/proc/cmdline", O_RDONLY);
    ssize_t n;

    if (fd < 0) {
        return;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return;
    }
    buf[n] = 0;
    for (char *save, *w = strtok_r(buf, " \n", &save); w; w = strtok_r(NULL, " \n", &save)) {
        if (!strncmp(w, "ferry.", 6)) {
            set_option(w);
        }
    }
}

static u64 make_token(void)
{
    u64 r = 0;

    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r)) {
        r = 0;
    }
    return mix64(r ^ mix64(rdtsc() + PATTERN_STEP) ^ (u64)getpid() << 32);
}

static u64 *test_page(u64 k)
{
    return area + k * PAGE_WORDS;
}

static u64 *data_page(const struct slot *s, u64 j)
{
    return test_page(s->first + s->table_pages + j);
}

static u32 *gen_entry(const struct slot *s, u64 j)
{
    return (u32 *)test_page(s->first + j / GENS_PER_PAGE) + j % GENS_PER_PAGE;
}

static u64 page_index(const u64 *p)
{
    return (u64)(uintptr_t)p / PAGE_SIZE;
}

static u64 pattern_seed(u64 index, u64 gen)
{
    return mix64(index * PATTERN_STEP ^ (gen << 1 | 1));
}

static void write_page(u64 *p, u64 index, u64 gen)
{
    u64 v = pattern_seed(index, gen);

    p[0] = index;
    p[1] = gen;
    for (u32 i = 2; i < PAGE_WORDS; i += 2) {
        p[i] = v;
        p[i + 1] = v + PATTERN_STEP;
        v += 2 * PATTERN_STEP;
    }
}

static bool page_ok(const u64 *p, u64 index, u64 gen)
{
    u64 v = pattern_seed(index, gen);
    u64 diff = (p[0] ^ index) | (p[1] ^ gen);
    u64 diff2 = 0;

    for (u32 i = 2; i < PAGE_WORDS; i += 2) {
        diff |= p[i] ^ v;
        diff2 |= p[i + 1] ^ (v + PATTERN_STEP);
        v += 2 * PATTERN_STEP;
    }
    return (diff | diff2) == 0;
}

static u64 completed_pass(void)
{
    u64 min = ~0ULL;

    for (u32 i = 0; i < participants; i++) {
        if (slots[i].pass < min) {
            min = slots[i].pass;
        }
    }
    return min;
}

static void heartbeat(u64 now)
{
    u64 writes = 0;

    for (u32 i = 0; i < participants; i++) {
        writes += slots[i].writes;
    }
    say("HB token=%016" PRIx64 " ticks=%" PRIu64 " pass=%" PRIu64 " writes=%" PRIu64,
        token, (now - start_ns) / (10 * NS_PER_MS),
        opt.verify ? completed_pass() : 0, writes);
}

/* Slot 0 only, called often from every loop: heartbeats and VERIFY OK. */
static void housekeeping(void)
{
    u64 now = now_ns();
    u64 hb_interval = opt.hb_ms * NS_PER_MS;

    if (now < last_seen_ns) {
        /* The clock went backwards: restart the schedules. */
        next_hb = now;
        last_ok_ns = now - OK_PRINT_GAP_MS * NS_PER_MS;
    }
    last_seen_ns = now;

    if (hb_interval && now >= next_hb) {
        heartbeat(now);
        next_hb += hb_interval;
        if (next_hb <= now) {
            next_hb = now + hb_interval;
        }
    }
    if (opt.verify && !fail_reported) {
        u64 pass = completed_pass();

        if (pass > ok_printed && now - last_ok_ns >= OK_PRINT_GAP_MS * NS_PER_MS) {
            say("VERIFY OK %" PRIu64, pass);
            ok_printed = pass;
            last_ok_ns = now;
        }
    }
}

static void report_fail(u64 index, u64 expected, const u64 *p)
{
    if (__atomic_exchange_n(&fail_reported, 1, __ATOMIC_SEQ_CST)) {
        return;
    }
    say("VERIFY FAIL %" PRIu64 " expected-gen=%" PRIu64 " got-index=%" PRIu64
        " got-gen=%" PRIu64, index, expected, p[0], p[1]);
}

static void verify_partition(struct slot *s, bool first)
{
    for (u64 j = 0; j < s->data_pages; j++) {
        const u64 *p = data_page(s, j);
        u64 gen = *gen_entry(s, j);

        if (!page_ok(p, page_index(p), gen)) {
            report_fail(page_index(p), gen, p);
        }
        if (first && j % BATCH == BATCH - 1) {
            housekeeping();
        }
    }
    s->pass++;
}

static void fill_partition(struct slot *s, bool first)
{
    for (u64 j = 0; j < s->data_pages; j++) {
        u64 *p = data_page(s, j);

        write_page(p, page_index(p), 1);
        *gen_entry(s, j) = 1;
        s->writes++;
        if (first && j % BATCH == BATCH - 1) {
            housekeeping();
        }
    }
}

static void idle(void)
{
    struct timespec ts = { 0, IDLE_NS };

    nanosleep(&ts, NULL);
}

static void run_partition(u32 slot_index)
{
    struct slot *s = &slots[slot_index];
    bool first = slot_index == 0;
    u64 n = participants;
    u64 rate = opt.rate / n + (slot_index < opt.rate % n);
    u64 burst = rate / 10 + 1;          /* at most 100 ms of backlog */
    u64 cursor = 0;
    u64 budget_start, budget_used = 0;
    u64 last_verify, last_now;

    fill_partition(s, first);
    budget_start = last_verify = last_now = now_ns();

    for (;;) {
        u64 now = now_ns();
        u64 todo = BATCH;
        bool wrapped = false;

        if (now < last_now) {
            budget_start = last_verify = now;   /* clock went backwards */
            budget_used = 0;
        }
        last_now = now;

        if (!opt.rate_max) {
            /* Pages allowed so far at `rate` per second, without overflow
             * for any realistic run time. */
            u64 el = now - budget_start;
            u64 allowed = el / NS_PER_S * rate + el % NS_PER_S * rate / NS_PER_S;

            if (allowed > budget_used + burst) {
                budget_used = allowed - burst;
            }
            todo = allowed - budget_used;
            if (todo > BATCH) {
                todo = BATCH;
            }
        }
        if (!s->data_pages) {
            todo = 0;
        }
        for (u64 i = 0; i < todo; i++) {
            u32 *gen = gen_entry(s, cursor);
            u64 *p = data_page(s, cursor);
            u32 next = *gen + 1;

            write_page(p, page_index(p), next);
            *gen = next;
            s->writes++;
            if (++cursor == s->data_pages) {
                cursor = 0;
                wrapped = true;
            }
        }
        budget_used += todo;

        if (opt.verify && (wrapped || now - last_verify >= VERIFY_GAP_MS * NS_PER_MS)) {
            verify_partition(s, first);
            last_verify = now_ns();
        }
        if (first) {
            housekeeping();
        }
        if (!todo) {
            idle();
        }
    }
}

static void *thread_main(void *arg)
{
    run_partition((u32)(uintptr_t)arg);
    return NULL;
}

static void setup_area(void)
{
    u64 want = (u64)opt.mem_mib * (1ULL << 20) / PAGE_SIZE;
    u64 t0 = now_ns();
    u64 first = 0;

    /* Populate in one system call rather than take a fault per page. */
    for (;;) {
        area = mmap(NULL, want * PAGE_SIZE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (area != MAP_FAILED || want <= 256) {
            break;
        }
        want = (want / 2) & ~(u64)255;
    }
    if (area == MAP_FAILED) {
        say("VERIFY FAIL setup: mmap: %s",
            strerror(errno));
        exit(1);
    }
    test_pages = want;
    say("INFO populate-ms=%" PRIu64 " pages=%" PRIu64,
        (now_ns() - t0) / NS_PER_MS, test_pages);
    if (test_pages < (u64)opt.mem_mib * 256) {
        say("MEM clamped to %" PRIu64 " MiB (requested %" PRIu32 " MiB)",
            test_pages / 256, opt.mem_mib);
    }

    for (u64 i = 0; i < participants; i++) {
        struct slot *s = &slots[i];
        u64 pages = test_pages / participants + (i < test_pages % participants);

        s->first = first;
        /* T table pages index the remaining D data pages: 1024 * T >= D. */
        s->table_pages = (pages + GENS_PER_PAGE) / (GENS_PER_PAGE + 1);
        s->data_pages = pages - s->table_pages;
        first += pages;
    }
}

/* Called by init.c's main() as /init (ferry.test=workload) or as
 * /bin/ferry-workload. */
int workload_main(int argc, char **argv)
{
    long online;

    parse_proc_cmdline();
    for (int i = 1; i < argc; i++) {
        set_option(argv[i]);
    }
    online = sysconf(_SC_NPROCESSORS_ONLN);
    participants = opt.cpus ? opt.cpus : (online > 0 ? (u32)online : 1);
    if (participants > MAX_THREADS) {
        participants = MAX_THREADS;
    }

    token = make_token();
    say("FERRY-LINUX-WORKLOAD boot token=%016" PRIx64, token);
    setup_area();
    if (opt.rate_max) {
        say("WORKLOAD mem=%" PRIu64 " rate=max cpus=%" PRIu32, test_pages / 256, participants);
    } else {
        say("WORKLOAD mem=%" PRIu64 " rate=%" PRIu64 " cpus=%" PRIu32,
            test_pages / 256, opt.rate, participants);
    }

    start_ns = last_seen_ns = now_ns();
    next_hb = start_ns + opt.hb_ms * NS_PER_MS;
    last_ok_ns = start_ns - OK_PRINT_GAP_MS * NS_PER_MS;
    for (u32 i = 1; i < participants; i++) {
        if (pthread_create(&slots[i].thread, NULL, thread_main, (void *)(uintptr_t)i)) {
            say("VERIFY FAIL setup: no thread %" PRIu32, i);
            exit(1);
        }
    }
    run_partition(0);
    return 0;
}
