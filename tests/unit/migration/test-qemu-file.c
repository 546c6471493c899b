/*
 * QEMUFile and the channel I/O under it: every put/get type through a
 * socket pair and a pipe, payloads sent without a copy, buffer
 * boundaries, end of stream, sticky errors, partial writes and EINTR, and
 * shutdown waking a blocked thread.
 *
 * With -m perf, also measures page-record throughput over loopback tcp
 * and a unix socket pair (printed, never asserted).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <glib.h>

#include "migration/channel.h"
#include "migration/qemu-file.h"

typedef enum Transport {
    TRANSPORT_SOCKETPAIR,
    TRANSPORT_PIPE,
} Transport;

static const Transport transport_socketpair = TRANSPORT_SOCKETPAIR;
static const Transport transport_pipe = TRANSPORT_PIPE;

static void channel_pair(Transport t, MigChannel **w, MigChannel **r)
{
    g_autoptr(GError) err = NULL;
    int fds[2];

    if (t == TRANSPORT_SOCKETPAIR) {
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
        *r = mig_channel_new_fd(fds[0], "pair:r", &err);
        g_assert_no_error(err);
        *w = mig_channel_new_fd(fds[1], "pair:w", &err);
        g_assert_no_error(err);
        g_assert_cmpint(mig_channel_kind(*w), ==, MIG_CHANNEL_SOCKET);
    } else {
        g_assert_cmpint(pipe2(fds, O_CLOEXEC), ==, 0);
        *r = mig_channel_new_fd(fds[0], "pipe:r", &err);
        g_assert_no_error(err);
        *w = mig_channel_new_fd(fds[1], "pipe:w", &err);
        g_assert_no_error(err);
        g_assert_cmpint(mig_channel_kind(*w), ==, MIG_CHANNEL_PIPE);
    }
}

/* A thread that writes a stream with @fn and closes the file. */
typedef void (*WriteFn)(QEMUFile *f, gconstpointer data);

typedef struct Writer {
    GThread *thread;
    QEMUFile *f;
    WriteFn fn;
    gconstpointer data;
    int ret;
} Writer;

static gpointer writer_run(gpointer opaque)
{
    Writer *w = opaque;

    w->fn(w->f, w->data);
    w->ret = qemu_fclose(w->f);
    return NULL;
}

static Writer *writer_start(MigChannel *ch, WriteFn fn, gconstpointer data)
{
    Writer *w = g_new0(Writer, 1);

    w->f = qemu_file_new_output(ch);
    w->fn = fn;
    w->data = data;
    w->thread = g_thread_new("test-writer", writer_run, w);
    return w;
}

static int writer_join(Writer *w)
{
    g_thread_join(w->thread);
    int ret = w->ret;
    g_free(w);
    return ret;
}

/* Every put type */

#define ROUNDS 2000
#define PAGE 4096
#define NPAGES 64

static uint8_t pages[NPAGES][PAGE];
static uint8_t pattern[512];

static void fill_patterns(void)
{
    for (int p = 0; p < NPAGES; p++) {
        for (int i = 0; i < PAGE; i++) {
            pages[p][i] = (uint8_t)(p * 7 + i * 13);
        }
    }
    for (size_t i = 0; i < sizeof(pattern); i++) {
        pattern[i] = (uint8_t)(i ^ 0x5a);
    }
}

static void put_all_types(QEMUFile *f, gconstpointer data)
{
    for (uint32_t i = 0; i < ROUNDS; i++) {
        char s[32];
        qemu_put_byte(f, i & 0xff);
        qemu_put_be16(f, 0xa1b2 + i);
        qemu_put_be32(f, 0xc3d4e5f6u + i);
        qemu_put_be64(f, 0x0123456789abcdefULL + i);
        snprintf(s, sizeof(s), "ram-%u", i);
        qemu_put_counted_string(f, s);
        qemu_put_buffer(f, pattern, i % sizeof(pattern));
        qemu_put_buffer_nocopy(f, pages[i % NPAGES], PAGE);
        if (i % 500 == 0) {
            qemu_fflush(f);
        }
    }
    qemu_put_be32(f, 0xdeadbeef);
}

static void test_roundtrip_types(gconstpointer opaque)
{
    MigChannel *w, *r;
    uint8_t buf[PAGE];

    channel_pair(*(const Transport *)opaque, &w, &r);
    Writer *wr = writer_start(w, put_all_types, NULL);
    QEMUFile *f = qemu_file_new_input(r);
    for (uint32_t i = 0; i < ROUNDS; i++) {
        char s[256], want[32];
        g_assert_cmpint(qemu_peek_byte(f), ==, i & 0xff);
        g_assert_cmpuint(qemu_get_byte(f), ==, i & 0xff);
        g_assert_cmpuint(qemu_get_be16(f), ==, (uint16_t)(0xa1b2 + i));
        g_assert_cmpuint(qemu_get_be32(f), ==, 0xc3d4e5f6u + i);
        g_assert_cmpuint(qemu_get_be64(f), ==, 0x0123456789abcdefULL + i);
        g_assert_true(qemu_get_counted_string(f, s));
        snprintf(want, sizeof(want), "ram-%u", i);
        g_assert_cmpstr(s, ==, want);
        size_t n = i % sizeof(pattern);
        g_assert_cmpuint(qemu_get_buffer(f, buf, n), ==, n);
        g_assert_cmpmem(buf, n, pattern, n);
        g_assert_cmpuint(qemu_get_buffer(f, buf, PAGE), ==, PAGE);
        g_assert_cmpmem(buf, PAGE, pages[i % NPAGES], PAGE);
    }
    g_assert_cmpuint(qemu_get_be32(f), ==, 0xdeadbeef);
    g_assert_cmpint(qemu_file_get_error(f), ==, 0);
    g_assert_false(qemu_file_at_eof(f));    /* not known until a read says so */
    g_assert_cmpint(qemu_peek_byte(f), ==, -1);
    g_assert_true(qemu_file_at_eof(f));
    g_assert_cmpint(qemu_file_get_error(f), ==, 0);
    g_assert_cmpint(writer_join(wr), ==, 0);

    /* Both sides count the same stream. */
    uint64_t total = 4;
    for (uint32_t i = 0; i < ROUNDS; i++) {
        char s[32];
        total += 1 + 2 + 4 + 8 + 1 + snprintf(s, sizeof(s), "ram-%u", i) +
                 i % sizeof(pattern) + PAGE;
    }
    g_assert_cmpuint(qemu_file_transferred(f), ==, total);
    g_assert_cmpint(qemu_fclose(f), ==, 0);
}

/* Sizes around every boundary: buffers, direct puts, read-ahead */

static const size_t big_sizes[] = {
    0, 1, 7, 4095, 4096, 16383, 16384, 16385, 32767, 32768, 32769, 65535, 65536, 65537,
    200000, 1 << 20, (3 << 20) + 5,
};

static uint8_t size_byte(size_t size, size_t j)
{
    return (uint8_t)(j * 31 + size * 7 + (j >> 12));
}

static void put_big(QEMUFile *f, gconstpointer data)
{
    bool nocopy = GPOINTER_TO_INT(data);

    for (size_t k = 0; k < G_N_ELEMENTS(big_sizes); k++) {
        size_t size = big_sizes[k];
        uint8_t *b = g_malloc(size + 1);
        for (size_t j = 0; j < size; j++) {
            b[j] = size_byte(size, j);
        }
        qemu_put_be32(f, size);
        if (nocopy) {
            qemu_put_buffer_nocopy(f, b, size);
            qemu_fflush(f);
        } else {
            qemu_put_buffer(f, b, size);
            /* The copy (or the direct write) is done: the caller may reuse it at once. */
            memset(b, 0xee, size);
        }
        g_free(b);
        qemu_put_byte(f, 0x77);
    }
}

static void run_big(Transport t, bool nocopy)
{
    static const size_t chunks[] = { 1, 1000, 70000, 4096, 65536, 3 };
    MigChannel *w, *r;

    channel_pair(t, &w, &r);
    Writer *wr = writer_start(w, put_big, GINT_TO_POINTER(nocopy));
    QEMUFile *f = qemu_file_new_input(r);
    uint64_t total = 0;
    for (size_t k = 0; k < G_N_ELEMENTS(big_sizes); k++) {
        size_t size = big_sizes[k];
        g_assert_cmpuint(qemu_get_be32(f), ==, size);
        uint8_t *b = g_malloc(size + 1);
        size_t got = 0;
        /* Read in pieces that never line up with how it was written. */
        for (size_t c = k; got < size; c++) {
            size_t n = MIN(chunks[c % G_N_ELEMENTS(chunks)], size - got);
            g_assert_cmpuint(qemu_get_buffer(f, b + got, n), ==, n);
            got += n;
        }
        for (size_t j = 0; j < size; j++) {
            if (b[j] != size_byte(size, j)) {
                g_error("size %zu: byte %zu is %#x, not %#x", size, j, b[j], size_byte(size, j));
            }
        }
        g_free(b);
        g_assert_cmpuint(qemu_get_byte(f), ==, 0x77);
        total += 4 + size + 1;
    }
    g_assert_cmpint(qemu_file_get_error(f), ==, 0);
    g_assert_cmpuint(qemu_file_transferred(f), ==, total);
    g_assert_cmpint(writer_join(wr), ==, 0);
    g_assert_cmpint(qemu_fclose(f), ==, 0);
}

static void test_big_copy(gconstpointer opaque)
{
    run_big(*(const Transport *)opaque, false);
}

static void test_big_nocopy(gconstpointer opaque)
{
    run_big(*(const Transport *)opaque, true);
}

/* nocopy really does not copy; put_buffer really does */

static void test_nocopy_not_copied(void)
{
    MigChannel *w, *r;
    uint8_t *page = g_malloc(PAGE);
    uint8_t small[100], buf[PAGE];

    channel_pair(TRANSPORT_SOCKETPAIR, &w, &r);
    QEMUFile *out = qemu_file_new_output(w);
    QEMUFile *in = qemu_file_new_input(r);

    memset(page, 'A', PAGE);
    memset(small, 'C', sizeof(small));
    qemu_put_be32(out, 1);
    qemu_put_buffer_nocopy(out, page, PAGE);
    qemu_put_buffer(out, small, sizeof(small));
    g_assert_cmpuint(qemu_file_transferred(out), ==, 4 + PAGE + sizeof(small));
    /* Between put and flush: the page goes out as it is at flush time. */
    memset(page, 'B', PAGE);
    memset(small, 'D', sizeof(small));
    g_assert_cmpint(qemu_fflush(out), ==, 0);

    g_assert_cmpuint(qemu_get_be32(in), ==, 1);
    g_assert_cmpuint(qemu_get_buffer(in, buf, PAGE), ==, PAGE);
    for (int i = 0; i < PAGE; i++) {
        g_assert_cmpuint(buf[i], ==, 'B');
    }
    g_assert_cmpuint(qemu_get_buffer(in, buf, sizeof(small)), ==, sizeof(small));
    for (size_t i = 0; i < sizeof(small); i++) {
        g_assert_cmpuint(buf[i], ==, 'C');
    }
    g_assert_cmpint(qemu_fclose(out), ==, 0);
    g_assert_cmpint(qemu_fclose(in), ==, 0);
    g_free(page);
}

/* End of stream */

static void raw_write(MigChannel *ch, const void *data, size_t len)
{
    g_autoptr(GError) err = NULL;
    struct iovec iov = { (void *)data, len };

    g_assert_true(mig_channel_writev_all(ch, &iov, 1, &err));
    g_assert_no_error(err);
}

static void test_truncated(gconstpointer opaque)
{
    MigChannel *w, *r;

    channel_pair(*(const Transport *)opaque, &w, &r);
    raw_write(w, "\x01\x02\x03", 3);
    mig_channel_free(w);

    QEMUFile *f = qemu_file_new_input(r);
    g_assert_cmpuint(qemu_get_be32(f), ==, 0);
    g_assert_cmpint(qemu_file_get_error(f), ==, -EIO);
    g_assert_nonnull(strstr(qemu_file_error_message(f), "unexpected end of stream"));
    g_assert_true(g_str_has_prefix(qemu_file_error_message(f), "reading from "));
    g_assert_false(qemu_file_at_eof(f));
    g_assert_cmpint(qemu_peek_byte(f), ==, -1);
    /* The bytes that did arrive are not handed out after the error. */
    g_assert_cmpuint(qemu_get_byte(f), ==, 0);
    g_assert_cmpint(qemu_fclose(f), ==, -EIO);
}

static void test_truncated_buffer(void)
{
    MigChannel *w, *r;
    uint8_t buf[20];

    channel_pair(TRANSPORT_PIPE, &w, &r);
    raw_write(w, "0123456789", 10);
    mig_channel_free(w);

    QEMUFile *f = qemu_file_new_input(r);
    memset(buf, 0xff, sizeof(buf));
    g_assert_cmpuint(qemu_get_buffer(f, buf, sizeof(buf)), ==, 10);
    g_assert_cmpmem(buf, 10, "0123456789", 10);
    for (int i = 10; i < 20; i++) {
        g_assert_cmpuint(buf[i], ==, 0);
    }
    g_assert_nonnull(strstr(qemu_file_error_message(f), "unexpected end of stream"));
    g_assert_cmpint(qemu_fclose(f), ==, -EIO);
}

static void test_clean_eof(void)
{
    MigChannel *w, *r;
    char s[256];

    channel_pair(TRANSPORT_SOCKETPAIR, &w, &r);
    raw_write(w, "\x00\x00\x01\x00\x2a\x03" "abc", 9);
    mig_channel_free(w);

    QEMUFile *f = qemu_file_new_input(r);
    g_assert_null(qemu_file_error_message(f));
    g_assert_cmpuint(qemu_get_be32(f), ==, 256);
    g_assert_cmpint(qemu_peek_byte(f), ==, 0x2a);
    g_assert_cmpint(qemu_peek_byte(f), ==, 0x2a);
    g_assert_cmpuint(qemu_get_byte(f), ==, 0x2a);
    g_assert_true(qemu_get_counted_string(f, s));
    g_assert_cmpstr(s, ==, "abc");
    g_assert_cmpint(qemu_peek_byte(f), ==, -1);
    g_assert_true(qemu_file_at_eof(f));
    g_assert_cmpint(qemu_file_get_error(f), ==, 0);
    g_assert_cmpuint(qemu_file_transferred(f), ==, 9);
    /* Reading past the end is an error like any truncation. */
    g_assert_false(qemu_get_counted_string(f, s));
    g_assert_cmpstr(s, ==, "");
    g_assert_false(qemu_file_at_eof(f));
    g_assert_cmpint(qemu_fclose(f), ==, -EIO);
}

/* Counted strings */

static void test_counted_string(void)
{
    MigChannel *w, *r;
    char longest[256], toolong[300], got[256];

    memset(longest, 'x', 255);
    longest[255] = 0;
    memset(toolong, 'y', 299);
    toolong[299] = 0;
    channel_pair(TRANSPORT_SOCKETPAIR, &w, &r);
    QEMUFile *out = qemu_file_new_output(w);
    QEMUFile *in = qemu_file_new_input(r);

    qemu_put_counted_string(out, "");
    qemu_put_counted_string(out, longest);
    g_assert_cmpint(qemu_fflush(out), ==, 0);
    g_assert_true(qemu_get_counted_string(in, got));
    g_assert_cmpstr(got, ==, "");
    g_assert_true(qemu_get_counted_string(in, got));
    g_assert_cmpstr(got, ==, longest);

    qemu_put_counted_string(out, toolong);
    g_assert_cmpint(qemu_file_get_error(out), ==, -EINVAL);
    g_assert_nonnull(strstr(qemu_file_error_message(out), "more than 255"));
    g_assert_cmpint(qemu_fclose(out), ==, -EINVAL);
    g_assert_cmpint(qemu_fclose(in), ==, 0);
}

/* Sticky errors */

static void test_error_sticky_output(void)
{
    MigChannel *w, *r;
    uint8_t buf[8];

    channel_pair(TRANSPORT_SOCKETPAIR, &w, &r);
    QEMUFile *out = qemu_file_new_output(w);
    qemu_put_be32(out, 1);
    g_assert_cmpint(qemu_fflush(out), ==, 0);

    qemu_put_be32(out, 2);      /* queued before the error: dropped with it */
    qemu_file_set_error(out, EINVAL, "first %d", 1);
    qemu_file_set_error(out, -EIO, "second");
    qemu_file_set_error(out, 0, "none");
    g_assert_cmpint(qemu_file_get_error(out), ==, -EINVAL);
    g_assert_cmpstr(qemu_file_error_message(out), ==, "first 1");
    qemu_put_be32(out, 3);
    qemu_put_buffer(out, pages[0], PAGE);
    qemu_put_buffer_nocopy(out, pages[1], PAGE);
    qemu_put_buffer(out, pages, sizeof(pages));
    g_assert_cmpint(qemu_fflush(out), ==, -EINVAL);
    g_assert_cmpint(qemu_fclose(out), ==, -EINVAL);

    /* Only what was flushed before the error arrived. */
    QEMUFile *in = qemu_file_new_input(r);
    g_assert_cmpuint(qemu_get_buffer(in, buf, 4), ==, 4);
    g_assert_cmpint(qemu_peek_byte(in), ==, -1);
    g_assert_true(qemu_file_at_eof(in));
    g_assert_cmpint(qemu_fclose(in), ==, 0);
}

static void test_error_sticky_input(void)
{
    MigChannel *w, *r;
    uint8_t buf[4] = { 1, 2, 3, 4 };

    channel_pair(TRANSPORT_PIPE, &w, &r);
    raw_write(w, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
    QEMUFile *in = qemu_file_new_input(r);
    g_assert_cmpuint(qemu_get_byte(in), ==, 0x11);
    qemu_file_set_error(in, -EPROTO, NULL);
    g_assert_cmpstr(qemu_file_error_message(in), ==, g_strerror(EPROTO));
    /* Data is waiting, but after an error every get returns zeros. */
    g_assert_cmpuint(qemu_get_byte(in), ==, 0);
    g_assert_cmpuint(qemu_get_be16(in), ==, 0);
    g_assert_cmpuint(qemu_get_be32(in), ==, 0);
    g_assert_cmpuint(qemu_get_be64(in), ==, 0);
    g_assert_cmpuint(qemu_get_buffer(in, buf, 4), ==, 0);
    g_assert_cmpmem(buf, 4, "\0\0\0\0", 4);
    g_assert_cmpint(qemu_peek_byte(in), ==, -1);
    g_assert_cmpint(qemu_fclose(in), ==, -EPROTO);
    mig_channel_free(w);
}

static void test_error_peer_gone(gconstpointer opaque)
{
    MigChannel *w, *r;

    channel_pair(*(const Transport *)opaque, &w, &r);
    mig_channel_free(r);
    QEMUFile *out = qemu_file_new_output(w);
    qemu_put_be64(out, 42);
    qemu_put_buffer(out, pages, sizeof(pages));
    int err = qemu_file_get_error(out);
    g_assert_cmpint(err, ==, -EPIPE);
    g_autofree char *msg = g_strdup(qemu_file_error_message(out));
    g_assert_true(g_str_has_prefix(msg, "writing to "));
    g_assert_nonnull(strstr(msg, g_strerror(EPIPE)));
    /* Later failures do not replace the first. */
    qemu_put_buffer(out, pages, sizeof(pages));
    g_assert_cmpint(qemu_fflush(out), ==, -EPIPE);
    g_assert_cmpstr(qemu_file_error_message(out), ==, msg);
    g_assert_cmpint(qemu_fclose(out), ==, -EPIPE);
}

/* Channel I/O: partial writes, many iovecs, EINTR */

typedef struct SlowReader {
    MigChannel *ch;
    size_t expect;
    uint8_t *got;
} SlowReader;

static gpointer slow_reader_run(gpointer opaque)
{
    SlowReader *s = opaque;
    size_t done = 0;

    while (done < s->expect) {
        g_autoptr(GError) err = NULL;
        ssize_t n = mig_channel_read(s->ch, s->got + done, MIN(777, s->expect - done), &err);
        g_assert_no_error(err);
        g_assert_cmpint(n, >, 0);
        done += n;
        if (done % 7 == 0) {
            g_usleep(50);
        }
    }
    return NULL;
}

static void on_sigusr1(int sig)
{
}

typedef struct Kicker {
    pthread_t target;
    volatile bool stop;
    int kicks;
} Kicker;

static gpointer kicker_run(gpointer opaque)
{
    Kicker *k = opaque;

    while (!k->stop) {
        pthread_kill(k->target, SIGUSR1);
        k->kicks++;
        g_usleep(200);
    }
    return NULL;
}

static void test_writev_partial_eintr(void)
{
    MigChannel *w, *r;
    enum { NIOV = 3000 };
    struct iovec *iov = g_new(struct iovec, NIOV);
    struct sigaction sa = { .sa_handler = on_sigusr1 };    /* no SA_RESTART */
    size_t total = 0;

    sigaction(SIGUSR1, &sa, NULL);
    channel_pair(TRANSPORT_PIPE, &w, &r);
    /* A small pipe: nearly every writev is partial and has to wait. */
    fcntl(mig_channel_fd(w), F_SETPIPE_SZ, 4096);

    uint8_t *src = g_malloc(NIOV * 100);
    for (int i = 0; i < NIOV; i++) {
        size_t len = i % 5 == 0 ? 0 : (size_t)(i % 97) + 1;   /* empty entries too */
        iov[i].iov_base = src + total;
        iov[i].iov_len = len;
        for (size_t j = 0; j < len; j++) {
            src[total + j] = (uint8_t)(i + j);
        }
        total += len;
    }
    SlowReader s = { .ch = r, .expect = total, .got = g_malloc(total) };
    GThread *reader = g_thread_new("slow-reader", slow_reader_run, &s);
    Kicker k = { .target = pthread_self() };
    GThread *kicker = g_thread_new("kicker", kicker_run, &k);

    g_autoptr(GError) err = NULL;
    g_assert_true(mig_channel_writev_all(w, iov, NIOV, &err));
    g_assert_no_error(err);
    k.stop = true;
    g_thread_join(kicker);
    g_thread_join(reader);
    g_assert_cmpmem(s.got, total, src, total);
    g_assert_cmpint(k.kicks, >, 0);

    signal(SIGUSR1, SIG_DFL);
    g_free(s.got);
    g_free(src);
    g_free(iov);
    mig_channel_free(w);
    mig_channel_free(r);
}

/* Shutdown wakes a blocked thread */

/*
 * Whether thread @tid of this process sleeps in the kernel (state S in
 * /proc: a read, write or poll with nothing to do).
 */
static bool thread_sleeping(pid_t tid)
{
    g_autofree char *path = g_strdup_printf("/proc/self/task/%d/stat", (int)tid);
    g_autofree char *stat = NULL;

    if (!tid || !g_file_get_contents(path, &stat, NULL, NULL)) {
        return false;
    }
    const char *end = strrchr(stat, ')');       /* the name may hold spaces */
    return end && end[1] == ' ' && end[2] == 'S';
}

/* Poll until thread *@tid sleeps in the kernel; false after 5 s. */
static bool wait_thread_sleeping(volatile pid_t *tid)
{
    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

    while (!thread_sleeping(*tid)) {
        if (g_get_monotonic_time() > deadline) {
            return false;
        }
        g_usleep(1000);
    }
    return true;
}

typedef struct Blocked {
    MigChannel *ch;
    bool write;
    volatile bool done;
    volatile pid_t tid;
    GError *err;
} Blocked;

static gpointer blocked_run(gpointer opaque)
{
    Blocked *b = opaque;

    b->tid = gettid();
    if (b->write) {
        size_t len = 64 << 20;
        g_autofree uint8_t *big = g_malloc0(len);
        struct iovec iov = { big, len };
        g_assert_false(mig_channel_writev_all(b->ch, &iov, 1, &b->err));
    } else {
        uint8_t buf[16];
        g_assert_cmpint(mig_channel_read(b->ch, buf, sizeof(buf), &b->err), ==, -1);
    }
    b->done = true;
    return NULL;
}

static void run_shutdown_wakes(Transport t, bool write)
{
    MigChannel *w, *r;

    channel_pair(t, &w, &r);
    Blocked b = { .ch = write ? w : r, .write = write };
    GThread *th = g_thread_new("blocked", blocked_run, &b);
    g_assert_true(wait_thread_sleeping(&b.tid));
    g_assert_false(b.done);     /* really blocked: nobody reads (or writes) */

    gint64 t0 = g_get_monotonic_time();
    mig_channel_shutdown(b.ch);
    g_thread_join(th);
    gint64 took = g_get_monotonic_time() - t0;
    g_assert_cmpint(took, <, 2 * G_USEC_PER_SEC);
    g_assert_error(b.err, MIG_CHANNEL_ERROR, ESHUTDOWN);
    g_assert_nonnull(strstr(b.err->message, "migration channel was shut down"));
    g_assert_nonnull(strstr(b.err->message, mig_channel_desc(b.ch)));
    g_error_free(b.err);
    g_assert_true(mig_channel_is_shutdown(b.ch));
    mig_channel_free(w);
    mig_channel_free(r);
}

static void test_shutdown_wakes_writer(gconstpointer opaque)
{
    run_shutdown_wakes(*(const Transport *)opaque, true);
}

static void test_shutdown_wakes_reader(gconstpointer opaque)
{
    run_shutdown_wakes(*(const Transport *)opaque, false);
}

static void test_shutdown_then_everything_fails(void)
{
    MigChannel *w, *r;
    uint8_t buf[4];

    channel_pair(TRANSPORT_SOCKETPAIR, &w, &r);
    raw_write(w, "data", 4);
    mig_channel_shutdown(r);
    mig_channel_shutdown(r);    /* twice is harmless */

    g_autoptr(GError) err = NULL;
    g_assert_cmpint(mig_channel_read(r, buf, sizeof(buf), &err), ==, -1);
    g_assert_error(err, MIG_CHANNEL_ERROR, ESHUTDOWN);
    g_clear_error(&err);
    struct iovec iov = { buf, sizeof(buf) };
    g_assert_false(mig_channel_writev_all(r, &iov, 1, &err));
    g_assert_error(err, MIG_CHANNEL_ERROR, ESHUTDOWN);
    g_clear_error(&err);

    /* The peer of a shut-down socket sees the end of the stream. */
    QEMUFile *f = qemu_file_new_input(w);
    g_assert_cmpint(qemu_peek_byte(f), ==, -1);
    g_assert_true(qemu_file_at_eof(f));
    g_assert_cmpint(qemu_fclose(f), ==, 0);

    /* QEMUFile reports the shutdown as its error. */
    f = qemu_file_new_input(r);
    g_assert_cmpuint(qemu_get_be32(f), ==, 0);
    g_assert_cmpint(qemu_file_get_error(f), ==, -ESHUTDOWN);
    g_assert_nonnull(strstr(qemu_file_error_message(f), "migration channel was shut down"));
    g_assert_cmpint(qemu_fclose(f), ==, -ESHUTDOWN);
}

typedef struct Streamer {
    QEMUFile *f;
    volatile pid_t tid;
} Streamer;

static gpointer streamer_run(gpointer opaque)
{
    Streamer *s = opaque;

    s->tid = gettid();
    while (!qemu_file_get_error(s->f)) {
        qemu_put_be64(s->f, 1);
        qemu_put_buffer_nocopy(s->f, pages[0], PAGE);
    }
    return NULL;
}

/* The migration thread's view: a cancel from the main thread ends its stream. */
static void test_shutdown_qemu_file(void)
{
    MigChannel *w, *r;

    channel_pair(TRANSPORT_SOCKETPAIR, &w, &r);
    Streamer s = { .f = qemu_file_new_output(w) };
    GThread *th = g_thread_new("streamer", streamer_run, &s);
    /* Nobody reads: the streamer fills the socket and blocks in a write. */
    g_assert_true(wait_thread_sleeping(&s.tid));
    mig_channel_shutdown(qemu_file_channel(s.f));
    g_thread_join(th);
    g_assert_cmpint(qemu_file_get_error(s.f), ==, -ESHUTDOWN);
    g_assert_nonnull(strstr(qemu_file_error_message(s.f), "migration channel was shut down"));
    g_assert_cmpint(qemu_fclose(s.f), ==, -ESHUTDOWN);
    mig_channel_free(r);
}

/* Throughput (-m perf) */

#define PERF_RAM (256u << 20)

/*
 * Cold: pages cycle through 256 MiB on both sides, as guest RAM does.
 * Hot: 16 pages, cache-resident, to measure the stream and not the memory.
 */
typedef struct PerfSend {
    QEMUFile *f;
    uint8_t *ram;
    uint64_t bytes;
    uint64_t span;
} PerfSend;

static gpointer perf_send_run(gpointer opaque)
{
    PerfSend *p = opaque;
    uint64_t npages = p->bytes / PAGE;

    for (uint64_t i = 0; i < npages; i++) {
        uint64_t off = (i * PAGE) % p->span;
        qemu_put_be64(p->f, off | 0x8);
        qemu_put_buffer_nocopy(p->f, p->ram + off, PAGE);
    }
    qemu_put_be64(p->f, 0x10);
    qemu_fflush(p->f);
    return NULL;
}

static void perf_run(const char *name, bool hot, MigChannel *w, MigChannel *r)
{
    uint8_t *src = g_malloc(PERF_RAM), *dst = g_malloc(PERF_RAM);
    uint64_t span = hot ? 16 * PAGE : PERF_RAM;
    PerfSend p = { .f = qemu_file_new_output(w), .ram = src, .bytes = 8ULL << 30,
                   .span = span };

    for (size_t i = 0; i < PERF_RAM; i += 64) {
        src[i] = (uint8_t)i;
    }
    memcpy(dst, src, PERF_RAM);     /* fault both in before timing */
    QEMUFile *in = qemu_file_new_input(r);
    gint64 t0 = g_get_monotonic_time();
    GThread *th = g_thread_new("perf-send", perf_send_run, &p);
    for (;;) {
        uint64_t hdr = qemu_get_be64(in);
        if (hdr & 0x10 || qemu_file_get_error(in)) {
            break;
        }
        qemu_get_buffer(in, dst + ((hdr & ~0xfffULL) % span), PAGE);
    }
    g_thread_join(th);
    double secs = (g_get_monotonic_time() - t0) / 1e6;
    g_assert_cmpint(qemu_file_get_error(in), ==, 0);
    g_test_minimized_result(secs, "%s, %s: %.2f GB/s (%.1f GiB in %.2f s)", name,
                            hot ? "hot" : "cold", p.bytes / secs / 1e9,
                            p.bytes / (double)(1 << 30), secs);
    qemu_fclose(p.f);
    qemu_fclose(in);
    g_free(src);
    g_free(dst);
}

static void test_perf_tcp(gconstpointer opaque)
{
    g_autoptr(GError) err = NULL;
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sin);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
    g_assert_cmpint(listen(lfd, 1), ==, 0);
    getsockname(lfd, (struct sockaddr *)&sin, &len);
    g_autofree char *uri = g_strdup_printf("tcp:127.0.0.1:%d", ntohs(sin.sin_port));
    g_autoptr(MigUri) u = mig_uri_parse(uri, &err);
    g_assert_no_error(err);
    MigChannel *w = mig_channel_open_outgoing(u, -1, &err);
    g_assert_no_error(err);
    MigChannel *r = mig_channel_new_socket(accept4(lfd, NULL, NULL, SOCK_CLOEXEC), "tcp:peer");
    close(lfd);
    perf_run("tcp loopback", GPOINTER_TO_INT(opaque), w, r);
}

static void test_perf_unix(gconstpointer opaque)
{
    MigChannel *w, *r;

    channel_pair(TRANSPORT_SOCKETPAIR, &w, &r);
    perf_run("unix socketpair", GPOINTER_TO_INT(opaque), w, r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    /* As the VMM does (main.c): a closed peer is an EPIPE, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    fill_patterns();

    g_test_add_data_func("/migration/qemu-file/types/socketpair", &transport_socketpair,
                         test_roundtrip_types);
    g_test_add_data_func("/migration/qemu-file/types/pipe", &transport_pipe,
                         test_roundtrip_types);
    g_test_add_data_func("/migration/qemu-file/big/copy/socketpair", &transport_socketpair,
                         test_big_copy);
    g_test_add_data_func("/migration/qemu-file/big/copy/pipe", &transport_pipe, test_big_copy);
    g_test_add_data_func("/migration/qemu-file/big/nocopy/socketpair", &transport_socketpair,
                         test_big_nocopy);
    g_test_add_data_func("/migration/qemu-file/big/nocopy/pipe", &transport_pipe,
                         test_big_nocopy);
    g_test_add_func("/migration/qemu-file/nocopy-not-copied", test_nocopy_not_copied);
    g_test_add_data_func("/migration/qemu-file/truncated/socketpair", &transport_socketpair,
                         test_truncated);
    g_test_add_data_func("/migration/qemu-file/truncated/pipe", &transport_pipe,
                         test_truncated);
    g_test_add_func("/migration/qemu-file/truncated-buffer", test_truncated_buffer);
    g_test_add_func("/migration/qemu-file/clean-eof", test_clean_eof);
    g_test_add_func("/migration/qemu-file/counted-string", test_counted_string);
    g_test_add_func("/migration/qemu-file/error/sticky-output", test_error_sticky_output);
    g_test_add_func("/migration/qemu-file/error/sticky-input", test_error_sticky_input);
    g_test_add_data_func("/migration/qemu-file/error/peer-gone/socketpair",
                         &transport_socketpair, test_error_peer_gone);
    g_test_add_data_func("/migration/qemu-file/error/peer-gone/pipe", &transport_pipe,
                         test_error_peer_gone);
    g_test_add_func("/migration/channel/writev-partial-eintr", test_writev_partial_eintr);
    g_test_add_data_func("/migration/channel/shutdown/writer/socketpair",
                         &transport_socketpair, test_shutdown_wakes_writer);
    g_test_add_data_func("/migration/channel/shutdown/writer/pipe", &transport_pipe,
                         test_shutdown_wakes_writer);
    g_test_add_data_func("/migration/channel/shutdown/reader/socketpair",
                         &transport_socketpair, test_shutdown_wakes_reader);
    g_test_add_data_func("/migration/channel/shutdown/reader/pipe", &transport_pipe,
                         test_shutdown_wakes_reader);
    g_test_add_func("/migration/channel/shutdown/everything-fails",
                    test_shutdown_then_everything_fails);
    g_test_add_func("/migration/qemu-file/shutdown", test_shutdown_qemu_file);
    if (g_test_perf()) {
        g_test_add_data_func("/migration/qemu-file/perf/tcp/cold", GINT_TO_POINTER(0),
                             test_perf_tcp);
        g_test_add_data_func("/migration/qemu-file/perf/tcp/hot", GINT_TO_POINTER(1),
                             test_perf_tcp);
        g_test_add_data_func("/migration/qemu-file/perf/unix/cold", GINT_TO_POINTER(0),
                             test_perf_unix);
        g_test_add_data_func("/migration/qemu-file/perf/unix/hot", GINT_TO_POINTER(1),
                             test_perf_unix);
    }
    return g_test_run();
}
