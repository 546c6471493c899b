/*
 * A driver for libFuzzer targets that needs no libFuzzer: built with the
 * project's compiler, it runs every corpus file through
 * LLVMFuzzerTestOneInput() and then pseudo-random mutations of them,
 * seeded and bounded, so `make check` always fuzzes a little.
 *
 *   fuzz-X-standalone [--runs N] [--max-time SEC] [--seed S] [--timeout SEC]
 *                     [--max-len BYTES] [--artifact-dir DIR] [--no-mutate]
 *                     [--quiet-target] FILE|DIR...
 *
 * Mutations are byte-level (bit flips, interesting values, be16/be32/be64
 * overwrites, inserts, deletes, chunk copies, truncation, splices of two
 * corpus files), with offsets biased toward the start and the end of an
 * input, where the stream's framing and device state sit (the middle of a
 * migration stream is mostly page data). There is no coverage feedback:
 * that is what the libFuzzer build is for.
 *
 * The same seed gives the same sequence of inputs. A crash, an abort
 * (failed assertion), a sanitizer error or an input that runs longer than
 * --timeout saves the input as DIR/crash-SEED-ITERATION and fails; run the
 * binary on that file alone to reproduce.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional, from the target: 1 when the last input was accepted. */
extern int fuzz_last_result __attribute__((weak));
/* Present under ASan/UBSan (gcc and clang): called before a sanitizer exits. */
extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

typedef struct Input {
    char *name;
    uint8_t *data;
    size_t len;
} Input;

static Input *corpus;
static size_t corpus_len;

/* What is running now, for the crash handler (filled before each execution). */
static const uint8_t *cur_data;
static size_t cur_len;
static char cur_path[4096];
static char cur_desc[512];
static volatile sig_atomic_t in_handler;

/* ------------------------------------------------------------- helpers */

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "standalone fuzz: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(2);
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        die("%s", "out of memory");
    }
    return p;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        die("%s", "out of memory");
    }
    return d;
}

/* splitmix64: small, fast, and the same everywhere. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* 0 .. n-1; n > 0 */
static size_t rng_below(size_t n)
{
    return (size_t)(rng_next() % n);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------- loading the corpus */

static void corpus_add_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        die("cannot open %s", path);
    }
    uint8_t *data = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            data = xrealloc(data, cap);
        }
        size_t n = fread(data + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            break;
        }
    }
    if (ferror(f)) {
        die("cannot read %s", path);
    }
    fclose(f);
    corpus = xrealloc(corpus, (corpus_len + 1) * sizeof(*corpus));
    corpus[corpus_len++] = (Input) { .name = xstrdup(path), .data = data, .len = len };
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void corpus_add(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        die("cannot find %s", path);
    }
    if (!S_ISDIR(st.st_mode)) {
        corpus_add_file(path);
        return;
    }
    DIR *d = opendir(path);
    if (!d) {
        die("cannot open directory %s", path);
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') {
            continue;
        }
        size_t l = strlen(path) + strlen(e->d_name) + 2;
        char *p = xrealloc(NULL, l);
        snprintf(p, l, "%s/%s", path, e->d_name);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            names = xrealloc(names, (n + 1) * sizeof(*names));
            names[n++] = p;
        } else {
            free(p);
        }
    }
    closedir(d);
    /* Sorted: the same corpus gives the same run on every file system. */
    qsort(names, n, sizeof(*names), cmp_str);
    for (size_t i = 0; i < n; i++) {
        corpus_add_file(names[i]);
        free(names[i]);
    }
    free(names);
}

/* ------------------------------------------------------ crash handling */

static void write_str(int fd, const char *s)
{
    size_t l = strlen(s);
    while (l) {
        ssize_t n = write(fd, s, l);
        if (n <= 0) {
            return;
        }
        s += n;
        l -= (size_t)n;
    }
}

/* Async-signal-safe: save the running input and say how to reproduce it. */
static void save_current_input(const char *why)
{
    if (in_handler || !cur_data) {
        return;
    }
    in_handler = 1;
    int fd = open(cur_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        size_t off = 0;
        while (off < cur_len) {
            ssize_t n = write(fd, cur_data + off, cur_len - off);
            if (n <= 0) {
                break;
            }
            off += (size_t)n;
        }
        close(fd);
    }
    write_str(2, "\nstandalone fuzz: ");
    write_str(2, why);
    write_str(2, " on ");
    write_str(2, cur_desc);
    write_str(2, "\nstandalone fuzz: input saved to ");
    write_str(2, fd >= 0 ? cur_path : "(could not save it)");
    write_str(2, "\n");
}

static void sanitizer_death(void)
{
    save_current_input("sanitizer error");
}

static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGALRM };
static struct sigaction old_actions[sizeof(crash_signals) / sizeof(crash_signals[0])];

static void crash_handler(int sig)
{
    const char *why = sig == SIGALRM ? "timeout" : sig == SIGABRT ? "abort (failed assertion?)"
                    : sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS"
                    : sig == SIGFPE ? "SIGFPE" : "SIGILL";
    save_current_input(why);
    /* Hand over to whoever was there before (a sanitizer) or the default. */
    for (size_t i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++) {
        if (crash_signals[i] == sig) {
            sigaction(sig, &old_actions[i], NULL);
        }
    }
    if (sig == SIGALRM) {
        signal(SIGALRM, SIG_DFL);
    }
    if (sig == SIGABRT || sig == SIGALRM) {
        raise(sig);
    }
    /* A fault: returning runs the faulting instruction again, for the old handler. */
}

static void install_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = crash_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_NODEFER;
    for (size_t i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++) {
        sigaction(crash_signals[i], &sa, &old_actions[i]);
    }
    if (__sanitizer_set_death_callback) {
        __sanitizer_set_death_callback(sanitizer_death);
    }
}

/* ------------------------------------------------------------ mutations */

/* An offset in [0, len): half the time near the start or the end. */
static size_t pick_offset(size_t len)
{
    switch (rng_below(4)) {
    case 0:
        return rng_below(len < 1024 ? len : 1024);
    case 1: {
        size_t tail = len < 4096 ? len : 4096;
        return len - 1 - rng_below(tail);
    }
    default:
        return rng_below(len);
    }
}

static const uint8_t interesting8[] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x07, 0x08, 0x0f, 0x10, 0x20, 0x40,
    0x7e, 0x7f, 0x80, 0xfe, 0xff,
};

static const uint64_t interesting64[] = {
    0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 64, 0xff, 0x100, 0x1000, 0xfff, 0x1001,
    0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ULL,
    0x800000, 0x7ff000, 0x802000, 0x1008, 0x1002, 0x1022, 0x1028, 0x10, 0x14,
    0x7fffffffffffffffULL, 0x8000000000000000ULL, 0xffffffffffffffffULL,
    0xfffffffffffff000ULL,
};

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    }
}

static uint64_t get_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* One mutation of buf[0, *len) in place; *len stays <= max. */
static void mutate_once(uint8_t *buf, size_t *len, size_t max)
{
    size_t n = *len;

    switch (rng_below(n ? 12 : 1) + (n ? 0 : 5)) {
    case 0:     /* flip a bit */
        buf[pick_offset(n)] ^= (uint8_t)(1u << rng_below(8));
        break;
    case 1:     /* a random byte */
        buf[pick_offset(n)] = (uint8_t)rng_next();
        break;
    case 2:     /* an interesting byte */
        buf[pick_offset(n)] = interesting8[rng_below(sizeof(interesting8))];
        break;
    case 3: {   /* an interesting be16/be32/be64, sometimes +-1 */
        static const unsigned widths[] = { 2, 4, 8 };
        unsigned w = widths[rng_below(3)];
        if (n < w) {
            break;
        }
        size_t off = pick_offset(n - w + 1);
        uint64_t v = interesting64[rng_below(sizeof(interesting64) / sizeof(interesting64[0]))];
        if (rng_below(4) == 0) {
            v += rng_below(2) ? 1 : (uint64_t)-1;
        }
        put_be(buf + off, v, w);
        break;
    }
    case 4: {   /* add a small delta to a be8/be16/be32/be64 */
        static const unsigned widths[] = { 1, 2, 4, 8 };
        unsigned w = widths[rng_below(4)];
        if (n < w) {
            break;
        }
        size_t off = pick_offset(n - w + 1);
        int64_t delta = (int64_t)rng_below(33) - 16;
        put_be(buf + off, get_be(buf + off, w) + (uint64_t)delta, w);
        break;
    }
    case 5: {   /* insert random or repeated bytes */
        size_t k = 1 + rng_below(rng_below(8) == 0 ? 256 : 16);
        if (n + k > max) {
            break;
        }
        size_t off = n ? pick_offset(n) + rng_below(2) : 0;
        memmove(buf + off + k, buf + off, n - off);
        uint8_t fill = (uint8_t)rng_next();
        bool same = rng_below(2);
        for (size_t i = 0; i < k; i++) {
            buf[off + i] = same ? fill : (uint8_t)rng_next();
        }
        *len = n + k;
        break;
    }
    case 6: {   /* delete a chunk */
        size_t off = pick_offset(n);
        size_t k = 1 + rng_below(rng_below(8) == 0 ? n - off : (n - off < 16 ? n - off : 16));
        memmove(buf + off, buf + off + k, n - off - k);
        *len = n - k;
        break;
    }
    case 7: {   /* copy a chunk over another place */
        size_t from = rng_below(n), to = pick_offset(n);
        size_t k = 1 + rng_below(64);
        if (k > n - from) {
            k = n - from;
        }
        if (k > n - to) {
            k = n - to;
        }
        memmove(buf + to, buf + from, k);
        break;
    }
    case 8: {   /* duplicate a chunk (a record, a section twice) */
        static uint8_t chunk[4200];
        size_t from = pick_offset(n);
        size_t k = 1 + rng_below(rng_below(4) == 0 ? sizeof(chunk) : 64);
        if (k > n - from) {
            k = n - from;
        }
        if (n + k > max) {
            break;
        }
        memcpy(chunk, buf + from, k);
        size_t to = pick_offset(n) + rng_below(2);
        memmove(buf + to + k, buf + to, n - to);
        memcpy(buf + to, chunk, k);
        *len = n + k;
        break;
    }
    case 9:     /* truncate */
        *len = pick_offset(n);
        break;
    case 10: {  /* splice: our head, another input's tail */
        const Input *o = &corpus[rng_below(corpus_len)];
        if (!o->len) {
            break;
        }
        size_t cut = pick_offset(n);
        size_t from = pick_offset(o->len);
        size_t k = o->len - from;
        if (cut + k > max) {
            k = max - cut;
        }
        memcpy(buf + cut, o->data + from, k);
        *len = cut + k;
        break;
    }
    default: {  /* swap two bytes */
        size_t a = pick_offset(n), b = pick_offset(n);
        uint8_t t = buf[a];
        buf[a] = buf[b];
        buf[b] = t;
        break;
    }
    }
}

/* ------------------------------------------------------------------ main */

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [--runs N] [--max-time SEC] [--seed S] [--timeout SEC]\n"
            "          [--max-len BYTES] [--artifact-dir DIR] [--no-mutate] FILE|DIR...\n"
            "Runs every FILE (and every file in DIR) through the fuzz target, then up\n"
            "to N mutations of them (default 20000) for at most SEC seconds (default 20).\n",
            prog);
    exit(2);
}

static unsigned long parse_num(const char *opt, const char *v)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 0);
    if (errno || !*v || *end) {
        die("bad number for %s", opt);
    }
    return n;
}

static void run_one(const uint8_t *data, size_t len, unsigned timeout, unsigned long *accepted)
{
    cur_data = data;
    cur_len = len;
    alarm(timeout);
    LLVMFuzzerTestOneInput(data, len);
    alarm(0);
    cur_data = NULL;
    if (&fuzz_last_result && fuzz_last_result) {
        (*accepted)++;
    }
}

int main(int argc, char **argv)
{
    unsigned long runs = 20000, seed = 1, max_time = 20, timeout = 10;
    unsigned long max_len = 1024 * 1024;
    const char *artifact_dir = ".";
    bool mutate = true;
    int i;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--no-mutate")) {
            mutate = false;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h") || i + 1 >= argc) {
            usage(argv[0]);
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--runs")) {
            runs = parse_num(a, v);
        } else if (!strcmp(a, "--seed")) {
            seed = parse_num(a, v);
        } else if (!strcmp(a, "--max-time")) {
            max_time = parse_num(a, v);
        } else if (!strcmp(a, "--timeout")) {
            timeout = parse_num(a, v);
        } else if (!strcmp(a, "--max-len")) {
            max_len = parse_num(a, v);
        } else if (!strcmp(a, "--artifact-dir")) {
            artifact_dir = v;
        } else {
            usage(argv[0]);
        }
    }
    if (i >= argc) {
        usage(argv[0]);
    }
    for (; i < argc; i++) {
        corpus_add(argv[i]);
    }
    if (!corpus_len) {
        die("%s", "the corpus is empty");
    }
    install_handlers();

    unsigned long accepted = 0, corpus_accepted = 0;
    double start = now_seconds();
    for (size_t c = 0; c < corpus_len; c++) {
        snprintf(cur_path, sizeof(cur_path), "%s/crash-corpus-%zu", artifact_dir, c);
        snprintf(cur_desc, sizeof(cur_desc), "corpus file %s", corpus[c].name);
        run_one(corpus[c].data, corpus[c].len, (unsigned)timeout, &corpus_accepted);
    }
    printf("standalone fuzz: %zu corpus files, %lu accepted\n", corpus_len, corpus_accepted);

    unsigned long done = 0;
    size_t largest = 0;
    if (mutate && max_len) {
        rng_state = seed;
        uint8_t *buf = xrealloc(NULL, max_len);
        for (; done < runs; done++) {
            if ((done & 63) == 0 && now_seconds() - start >= (double)max_time) {
                break;
            }
            const Input *base = &corpus[rng_below(corpus_len)];
            size_t len = base->len < max_len ? base->len : max_len;
            memcpy(buf, base->data, len);
            unsigned count = 1 + (unsigned)rng_below(rng_below(4) == 0 ? 16 : 4);
            for (unsigned m = 0; m < count; m++) {
                mutate_once(buf, &len, max_len);
            }
            if (len > largest) {
                largest = len;
            }
            snprintf(cur_path, sizeof(cur_path), "%s/crash-%lu-%lu", artifact_dir, seed, done);
            snprintf(cur_desc, sizeof(cur_desc),
                     "iteration %lu (seed %lu, a mutation of %s)", done, seed, base->name);
            run_one(buf, len, (unsigned)timeout, &accepted);
        }
        free(buf);
    }
    double secs = now_seconds() - start;
    printf("standalone fuzz: %lu mutated inputs (seed %lu) in %.1f s, %.0f exec/s, "
           "largest %zu bytes", done, seed, secs, secs > 0 ? (double)done / secs : 0.0,
           largest);
    if (&fuzz_last_result) {
        printf(", %lu accepted", accepted);
    }
    printf("\n");
    return 0;
}
