/*
 * The ring-3 workload: every participating CPU owns one partition of the
 * test area, rewrites its pages at the requested rate and verifies them
 * against a generation table kept inside the partition. Ring 3 runs at
 * native speed, so all memory work happens here; ring 0 is only asked (by
 * ud2 plus a tag) to print a line or to sleep until the next tick.
 *
 * Page layout: word 0 = page index (physical address / 4096), word 1 =
 * generation, words 2..511 = a sequence seeded by both, so a page from
 * another generation, another page, or a torn page all fail verification.
 * The first two words are also checked just before each rewrite.
 */
#include "kernel.h"

#define PAGE_SIZE           4096
#define PAGE_WORDS          (PAGE_SIZE / 8)
#define TEST_BASE           (16ULL << 20)
#define TEST_LIMIT          (64ULL << 30)
#define GENS_PER_PAGE       (PAGE_SIZE / 4)
#define BATCH               64
#define PATTERN_STEP        0x9e3779b97f4a7c15ULL
#define VERIFY_GAP_MS       1000        /* verify at least this often */
#define OK_PRINT_GAP_MS     100         /* print VERIFY OK at most this often */

#define STR_(x)             #x
#define STR(x)              STR_(x)

struct test_region {
    u64 start;
    u64 pages;
};

struct slot {
    u64 first;                          /* first test page of the partition */
    u64 table_pages;                    /* generation table, at the front */
    u64 data_pages;
    volatile u64 writes;
    volatile u64 pass;                  /* verification passes completed */
} __attribute__((aligned(64)));

static struct test_region regions[RAM_REGIONS_MAX];
static u32 nr_regions;
static u64 test_pages;
static struct slot slots[MAX_CPUS];
static volatile u32 go;
static volatile u32 fail_reported;

/* Heartbeat and VERIFY OK bookkeeping; only the BSP (slot 0) touches it. */
static u64 hb_interval;
static u64 next_hb;
static u64 ok_printed;
static u64 last_ok_tsc;
static u64 last_seen_tsc;

static void svc_write(const char *buf, u64 len)
{
    u64 rax = SVC_WRITE;

    __asm__ volatile("ud2; .word " STR(SVC_TAG)
                     : "+a"(rax) : "D"(buf), "S"(len) : "memory");
}

static void svc_idle(void)
{
    u64 rax = SVC_IDLE;

    __asm__ volatile("ud2; .word " STR(SVC_TAG) : "+a"(rax) : : "memory");
}

static void print(struct line *l)
{
    line_end(l);
    svc_write(l->buf, l->len);
}

static u64 ms_to_tsc(u64 ms)
{
    return boot.tsc_hz / 1000 * ms;
}

static u64 *test_page(u64 k)
{
    for (u32 i = 0; i < nr_regions; i++) {
        if (k < regions[i].pages) {
            return (u64 *)(regions[i].start + k * PAGE_SIZE);
        }
        k -= regions[i].pages;
    }
    return NULL;
}

static u64 *data_page(const struct slot *s, u64 j)
{
    return test_page(s->first + s->table_pages + j);
}

static u32 *gen_entry(const struct slot *s, u64 j)
{
    return (u32 *)test_page(s->first + j / GENS_PER_PAGE) + j % GENS_PER_PAGE;
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

    for (u32 i = 0; i < boot.participants; i++) {
        if (slots[i].pass < min) {
            min = slots[i].pass;
        }
    }
    return min;
}

static void heartbeat(void)
{
    struct line l;
    u64 ticks = 0;
    u64 writes = 0;

    for (u32 i = 0; i < MAX_CPUS; i++) {
        ticks += cpus[i].ticks;
    }
    for (u32 i = 0; i < boot.participants; i++) {
        writes += slots[i].writes;
    }
    line_reset(&l);
    line_str(&l, "HB token=");
    line_hex16(&l, boot.token);
    line_str(&l, " ticks=");
    line_u64(&l, ticks);
    line_str(&l, " pass=");
    line_u64(&l, boot.verify ? completed_pass() : 0);
    line_str(&l, " writes=");
    line_u64(&l, writes);
    print(&l);
}

/* BSP only, called often from every loop: heartbeats and VERIFY OK. */
static void housekeeping(void)
{
    u64 now = rdtsc();

    if (now < last_seen_tsc) {
        /* The TSC went backwards (a restore onto another host): restart
         * the schedules rather than wait for it to catch up. */
        next_hb = now;
        last_ok_tsc = now - ms_to_tsc(OK_PRINT_GAP_MS);
    }
    last_seen_tsc = now;

    if (hb_interval && now >= next_hb) {
        heartbeat();
        next_hb += hb_interval;
        if (next_hb <= now) {
            next_hb = now + hb_interval;
        }
    }
    if (boot.verify && !fail_reported) {
        u64 pass = completed_pass();

        if (pass > ok_printed && now - last_ok_tsc >= ms_to_tsc(OK_PRINT_GAP_MS)) {
            struct line l;

            line_reset(&l);
            line_str(&l, "VERIFY OK ");
            line_u64(&l, pass);
            print(&l);
            ok_printed = pass;
            last_ok_tsc = now;
        }
    }
}

static void report_fail(u64 index, u64 expected, const u64 *p)
{
    struct line l;

    if (__atomic_exchange_n(&fail_reported, 1, __ATOMIC_SEQ_CST)) {
        return;
    }
    line_reset(&l);
    line_str(&l, "VERIFY FAIL ");
    line_u64(&l, index);
    line_str(&l, " expected-gen=");
    line_u64(&l, expected);
    line_str(&l, " got-index=");
    line_u64(&l, p[0]);
    line_str(&l, " got-gen=");
    line_u64(&l, p[1]);
    print(&l);
}

static void verify_partition(struct slot *s, bool bsp)
{
    for (u64 j = 0; j < s->data_pages; j++) {
        const u64 *p = data_page(s, j);
        u64 gen = *gen_entry(s, j);
        u64 index = (u64)p / PAGE_SIZE;

        if (!page_ok(p, index, gen)) {
            report_fail(index, gen, p);
        }
        if (bsp && j % BATCH == BATCH - 1) {
            housekeeping();
        }
    }
    s->pass++;
}

static void fill_partition(struct slot *s, bool bsp)
{
    for (u64 j = 0; j < s->data_pages; j++) {
        u64 *p = data_page(s, j);

        write_page(p, (u64)p / PAGE_SIZE, 1);
        *gen_entry(s, j) = 1;
        s->writes++;
        if (bsp && j % BATCH == BATCH - 1) {
            housekeeping();
        }
    }
}

static void run_partition(u32 slot_index)
{
    struct slot *s = &slots[slot_index];
    bool bsp = slot_index == 0;
    u64 n = boot.participants;
    u64 rate = boot.rate / n + (slot_index < boot.rate % n);
    u64 tsc_per_write = rate ? boot.tsc_hz / rate : 0;
    u64 burst = rate / 10 + 1;          /* at most 100 ms of backlog */
    u64 cursor = 0;
    u64 budget_start, budget_used = 0;
    u64 last_verify, last_now;

    if (rate && !tsc_per_write) {
        tsc_per_write = 1;
    }
    fill_partition(s, bsp);
    budget_start = last_verify = last_now = rdtsc();

    for (;;) {
        u64 now = rdtsc();
        u64 todo = BATCH;
        bool wrapped = false;

        if (now < last_now) {
            budget_start = last_verify = now;   /* TSC went backwards */
            budget_used = 0;
        }
        last_now = now;

        if (!boot.rate_max) {
            u64 allowed = tsc_per_write ? (now - budget_start) / tsc_per_write : 0;

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
            u64 index = (u64)p / PAGE_SIZE;
            u32 next = *gen + 1;

            /* The header shares the cache line the write pulls in anyway;
             * checking it catches a stale page that the rewrite would
             * otherwise hide before the next verification pass. */
            if (boot.verify && (p[0] != index || p[1] != *gen)) {
                report_fail(index, *gen, p);
            }
            write_page(p, index, next);
            *gen = next;
            s->writes++;
            if (++cursor == s->data_pages) {
                cursor = 0;
                wrapped = true;
            }
        }
        budget_used += todo;

        if (boot.verify && (wrapped || now - last_verify >= ms_to_tsc(VERIFY_GAP_MS))) {
            verify_partition(s, bsp);
            last_verify = rdtsc();
        }
        if (bsp) {
            housekeeping();
        }
        if (!todo) {
            svc_idle();
        }
    }
}

/* BSP: carve the test area out of the RAM above TEST_BASE and split it. */
static void setup_test_area(void)
{
    u64 want = (u64)boot.mem_mib * (1ULL << 20) / PAGE_SIZE;
    u64 have = 0;
    u64 n = boot.participants;
    u64 first = 0;

    if (!boot.have_memmap) {
        struct line l;

        line_reset(&l);
        line_str(&l, "INFO no memory map; trusting mem=");
        print(&l);
        regions[0].start = TEST_BASE;
        regions[0].pages = want;
        nr_regions = 1;
        have = want;
    }
    for (u32 i = 0; boot.have_memmap && i < boot.nr_ram && have < want; i++) {
        u64 start = boot.ram[i].start < TEST_BASE ? TEST_BASE : boot.ram[i].start;
        u64 end = boot.ram[i].end > TEST_LIMIT ? TEST_LIMIT : boot.ram[i].end;

        start = (start + PAGE_SIZE - 1) & ~(u64)(PAGE_SIZE - 1);
        end &= ~(u64)(PAGE_SIZE - 1);
        if (end <= start) {
            continue;
        }
        u64 pages = (end - start) / PAGE_SIZE;
        if (pages > want - have) {
            pages = want - have;
        }
        regions[nr_regions].start = start;
        regions[nr_regions].pages = pages;
        nr_regions++;
        have += pages;
    }
    test_pages = have;
    if (have < want) {
        struct line l;

        /* Whole MiB only, so the WORKLOAD line states exactly what runs. */
        test_pages = have & ~(u64)255;
        line_reset(&l);
        line_str(&l, "MEM clamped to ");
        line_u64(&l, test_pages / 256);
        line_str(&l, " MiB (requested ");
        line_u64(&l, boot.mem_mib);
        line_str(&l, " MiB)");
        print(&l);
    }

    for (u64 i = 0; i < n; i++) {
        struct slot *s = &slots[i];
        u64 pages = test_pages / n + (i < test_pages % n);

        s->first = first;
        /* T table pages index the remaining D data pages: 1024 * T >= D. */
        s->table_pages = (pages + GENS_PER_PAGE) / (GENS_PER_PAGE + 1);
        s->data_pages = pages - s->table_pages;
        first += pages;
    }
}

void user_main(u64 slot_index)
{
    if (slot_index == 0) {
        struct line l;

        setup_test_area();
        line_reset(&l);
        line_str(&l, "WORKLOAD mem=");
        line_u64(&l, test_pages / 256);
        line_str(&l, " rate=");
        if (boot.rate_max) {
            line_str(&l, "max");
        } else {
            line_u64(&l, boot.rate);
        }
        line_str(&l, " cpus=");
        line_u64(&l, boot.participants);
        print(&l);

        hb_interval = ms_to_tsc(boot.hb_ms);
        last_seen_tsc = rdtsc();
        next_hb = last_seen_tsc + hb_interval;
        if (hb_interval) {
            heartbeat();                /* the first at once: the workload is up */
        }
        last_ok_tsc = last_seen_tsc - ms_to_tsc(OK_PRINT_GAP_MS);
        __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    } else {
        while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE)) {
            svc_idle();
        }
    }
    if (slot_index < boot.participants) {
        run_partition(slot_index);
    }
    for (;;) {
        svc_idle();                     /* arrived late or not wanted */
    }
}
