/*
 * Multifd live migration as users drive it: capability "multifd" on both
 * sides (the destination with -incoming defer, configured before
 * migrate-incoming), its parameters, and what must hold afterwards.
 *
 *   /multifd/tcp-proxy             the test's TCP forwarder on its own
 *   /multifd/parameters            defaults, ranges and enum values of the
 *                                  multifd parameters, the capability
 *   /multifd/bootsect/...          the boot-sector guest held live for
 *                                  several passes, then every page of RAM
 *                                  compared between the two VMs and the
 *                                  destination seen running on; a covering
 *                                  set of channel counts (1, 2, 4, 8),
 *                                  compressions (none, zlib, zstd, with
 *                                  levels), zero-page-detection modes and
 *                                  both unix: and tcp:
 *   /multifd/testkernel/...        the verifying test kernel: same boot
 *                                  token and VERIFY OK on the destination
 *                                  (once on to a third process)
 *   /multifd/failure/cancel        cancelled while setting up and while
 *                                  live: the source runs on and migrates
 *   /multifd/failure/dest-killed   the destination killed mid-migration
 *   /multifd/failure/channel-cut-* one multifd connection shut down mid-
 *                                  migration (through tcp-proxy.h): failed,
 *                                  error-desc names the multifd channel;
 *                                  the source runs on and migrates
 *   /multifd/failure/mismatch-...  the destination configured differently
 *                                  (channels, compression, multifd off):
 *                                  it exits 1 naming the setting, the
 *                                  source fails and runs on
 *   /multifd/failure/source-multifd-off  the reverse: no hang either way
 *   /multifd/failure/transports    multifd with exec: and file: refused
 *
 * Every wait polls with a deadline; no assertion depends on timing.
 */
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration-helpers.h"
#include "tcp-proxy.h"
#include "testkernel.h"

/* The first four bytes of a multifd channel ("FMFC", big-endian). */
#define MULTIFD_MAGIC 0x464d4643u

#define NEED_BOOTSECT() \
    FERRY_REQUIRE_ACCEL(); \
    FERRY_REQUIRE_GUEST(img_, "bootsect"); \
    (void)img_

/* One side's multifd settings. */
typedef struct MfdOpts {
    const char *transport;      /* "unix" or "tcp" */
    int channels;
    const char *compression;    /* "none", "zlib", "zstd" */
    int level;                  /* the compression's level; < 0: default */
    const char *zero_pages;     /* zero-page-detection; NULL: default */
} MfdOpts;

/*
 * A boot-sector source that finished its first pass: every page of
 * [1, 100) MiB holds data, so a migration has 100 MiB to send in its first
 * pass whatever the zero-page detection (and at 3 MB/s takes half a minute).
 */
static FerryVM *start_busy_source(void)
{
    FerryVM *src = start_bootsect_vm(NULL);
    ferry_serial_wait_count(src, "B", 1, 30000);
    return src;
}

static void mfd_configure(FerryVM *vm, const MfdOpts *o)
{
    mig_set_cap(vm, "multifd", true);
    mig_set_param_int(vm, "multifd-channels", o->channels);
    mig_set_param_str(vm, "multifd-compression", o->compression);
    if (o->level >= 0 && strcmp(o->compression, "zlib") == 0) {
        mig_set_param_int(vm, "multifd-zlib-level", o->level);
    } else if (o->level >= 0 && strcmp(o->compression, "zstd") == 0) {
        mig_set_param_int(vm, "multifd-zstd-level", o->level);
    }
    if (o->zero_pages) {
        mig_set_param_str(vm, "zero-page-detection", o->zero_pages);
    }
}

/*
 * A destination started with VM_ARGS and -incoming defer, configured with
 * O (NULL: multifd off), listening on TRANSPORT; returns the URI the source
 * should use.
 */
static FerryVM *mfd_start_dest(const char *vm_args, const MfdOpts *o, const char *transport,
                               char **uri)
{
    static unsigned n;
    FerryVM *dst = ferry_vm_start("%s -incoming defer", vm_args);
    if (o) {
        mfd_configure(dst, o);
    }
    g_autofree char *listen = NULL;
    if (strcmp(transport, "unix") == 0) {
        g_autofree char *name = g_strdup_printf("mfd-%u.sock", n++);
        g_autofree char *path = g_build_filename(ferry_tmp_dir(), name, NULL);
        listen = g_strdup_printf("unix:%s", path);
    } else {
        listen = g_strdup("tcp:127.0.0.1:0");
    }
    g_autoptr(JsonNode) r = ferry_qmp_ok(dst, "{'execute': 'migrate-incoming', "
                                         "'arguments': {'uri': '%s'}}", listen);
    *uri = strcmp(transport, "unix") == 0 ? g_strdup(listen) : mig_dest_tcp_uri(dst);
    return dst;
}

static FerryVM *mfd_start_bootsect_dest(const char *extra, const MfdOpts *o,
                                        const char *transport, char **uri)
{
    const char *img = ferry_guest_path("bootsect");
    g_autofree char *args = g_strdup_printf("-m %d -drive file=%s,format=raw %s",
                                            BOOTSECT_RAM_MB, img, extra ? extra : "");
    return mfd_start_dest(args, o, transport, uri);
}

/* "multifd" or "Multifd" in TEXT. */
static bool mentions_multifd(const char *text)
{
    g_autofree char *lower = g_ascii_strdown(text, -1);
    return strstr(lower, "multifd") != NULL;
}

static char *mig_error_desc(FerryVM *vm)
{
    g_autoptr(JsonNode) q = mig_query(vm);
    return ferry_json_has(q, "error-desc") ? g_strdup(ferry_json_get_str(q, "error-desc"))
                                           : g_strdup("(no error-desc)");
}

/* Wait for the outgoing migration to end and assert it ended as WANT. */
static void mig_expect_end(FerryVM *src, const char *want, int timeout_ms)
{
    g_autofree char *end = mig_wait_end(src, timeout_ms);
    if (strcmp(end, want) != 0) {
        g_autofree char *desc = mig_error_desc(src);
        g_test_message("migration ended '%s' (wanted '%s'): %s", end, want, desc);
    }
    g_assert_cmpstr(end, ==, want);
}

static bool mfd_pages_flowing(void *opaque)
{
    FerryVM *src = opaque;
    g_autoptr(JsonNode) q = mig_query(src);
    const char *st = ferry_json_has(q, "status") ? ferry_json_get_str(q, "status") : "none";
    if (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0 ||
        strcmp(st, "cancelled") == 0) {
        return true;    /* the caller's assertion says what went wrong */
    }
    return strcmp(st, "active") == 0 && ferry_json_has(q, "ram.multifd-bytes") &&
           ferry_json_get_int(q, "ram.multifd-bytes") > 0;
}

/* Wait until pages went out through the multifd channels of a live migration. */
static void mfd_wait_flowing(FerryVM *src)
{
    g_assert_true(ferry_wait_until(mfd_pages_flowing, src, 30000));
    g_autofree char *st = mig_status(src);
    if (strcmp(st, "active") != 0) {
        g_autofree char *desc = mig_error_desc(src);
        g_test_message("migration is '%s', not active: %s", st, desc);
    }
    g_assert_cmpstr(st, ==, "active");
}

typedef struct PassWait {
    FerryVM *src;
    gint64 passes;
} PassWait;

static bool mfd_passes_or_ended(void *opaque)
{
    PassWait *w = opaque;
    g_autoptr(JsonNode) q = mig_query(w->src);
    const char *st = ferry_json_has(q, "status") ? ferry_json_get_str(q, "status") : "none";
    if (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0 ||
        strcmp(st, "cancelled") == 0) {
        return true;
    }
    return ferry_json_has(q, "ram.dirty-sync-count") &&
           ferry_json_get_int(q, "ram.dirty-sync-count") >= w->passes;
}

/*
 * Wait until the live migration synced its dirty log PASSES times; false
 * when it completed first (a pass found nothing dirty: the guest did not
 * get the CPU for that long). Fails the test when it failed.
 */
static bool mfd_wait_passes(FerryVM *src, gint64 passes)
{
    PassWait w = { src, passes };
    g_assert_true(ferry_wait_until(mfd_passes_or_ended, &w, 60000));
    g_autoptr(JsonNode) q = mig_query(src);
    if (ferry_json_get_int(q, "ram.dirty-sync-count") >= passes) {
        return true;
    }
    g_autofree char *text = ferry_json_to_string(q);
    if (strcmp(ferry_json_get_str(q, "status"), "completed") != 0) {
        g_error("the migration ended before %" G_GINT64_FORMAT " passes: %s", passes, text);
    }
    g_test_message("completed before %" G_GINT64_FORMAT " passes: %s", passes, text);
    return false;
}

/* ------------------------------------------------------------ the proxy */

static int listen_local(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sin);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
    g_assert_cmpint(listen(fd, 8), ==, 0);
    g_assert_cmpint(getsockname(fd, (struct sockaddr *)&sin, &len), ==, 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

static int connect_local(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    g_assert_cmpint(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
    return fd;
}

static bool wait_readable_fd(int fd, int timeout_ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    return poll(&pfd, 1, ferry_timeout(timeout_ms)) == 1;
}

static int accept_within(int lfd)
{
    g_assert_true(wait_readable_fd(lfd, 5000));
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    g_assert_cmpint(fd, >=, 0);
    return fd;
}

/* Read up to LEN bytes until end of stream or an error; -1 when stuck for 5 s. */
static ssize_t read_to_eof(int fd, guint8 *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        if (!wait_readable_fd(fd, 5000)) {
            return -1;
        }
        ssize_t n = recv(fd, buf + got, len - got, 0);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    return (ssize_t)got;
}

static void send_all_fd(int fd, const void *buf, size_t len)
{
    g_assert_cmpint(send(fd, buf, len, MSG_NOSIGNAL), ==, (ssize_t)len);
}

/* The proxy alone: bytes and half-closes pass unchanged; the chosen connection is cut. */
static void test_tcp_proxy(void)
{
    int sport;
    int lfd = listen_local(&sport);
    TcpProxy *p = tcp_proxy_new("127.0.0.1", sport);
    tcp_proxy_kill_connection_with_magic(p, MULTIFD_MAGIC, 2, 1000);

    /* "FERR" and 100 KiB one way, 1 KiB back, then end of stream both ways. */
    const size_t big = 100 * 1024;
    g_autofree guint8 *out = g_malloc(big + 4);
    g_autofree guint8 *in = g_malloc(big + 8);
    memcpy(out, "FERR", 4);
    for (size_t i = 4; i < big + 4; i++) {
        out[i] = (guint8)(i * 7);
    }
    int c1 = connect_local(tcp_proxy_port(p));
    send_all_fd(c1, out, big + 4);
    g_assert_cmpint(shutdown(c1, SHUT_WR), ==, 0);
    int s1 = accept_within(lfd);
    g_assert_cmpint(read_to_eof(s1, in, big + 8), ==, (ssize_t)(big + 4));
    g_assert_cmpmem(in, big + 4, out, big + 4);
    send_all_fd(s1, out, 1024);
    close(s1);
    g_assert_cmpint(read_to_eof(c1, in, 2048), ==, 1024);
    g_assert_cmpmem(in, 1024, out, 1024);
    close(c1);

    /* The first "FMFC" connection is spared, the second cut after 1000 bytes. */
    memcpy(out, "FMFC", 4);
    int c2 = connect_local(tcp_proxy_port(p));
    send_all_fd(c2, out, 2000);
    int s2 = accept_within(lfd);
    g_assert_cmpint(recv(s2, in, 2000, MSG_WAITALL), ==, 2000);
    int c3 = connect_local(tcp_proxy_port(p));
    send_all_fd(c3, out, 2000);
    int s3 = accept_within(lfd);
    ssize_t through = read_to_eof(s3, in, 4000);
    g_assert_cmpint(through, >=, 0);
    g_assert_cmpint(through, <=, 2000);
    g_assert_cmpint(read_to_eof(c3, in, 10), ==, 0);
    g_assert_true(tcp_proxy_killed(p));
    g_assert_cmpuint(tcp_proxy_connections(p), ==, 3);
    close(c3);
    close(s3);

    /* Still forwarding the spared one; freed with it open. */
    send_all_fd(c2, out, 10);
    g_assert_cmpint(recv(s2, in, 10, MSG_WAITALL), ==, 10);
    tcp_proxy_free(p);
    g_assert_cmpint(read_to_eof(c2, in, 10), ==, 0);
    close(c2);
    close(s2);
    close(lfd);
}

/* ------------------------------------------------------------ parameters */

static void assert_param_refused(FerryVM *vm, const char *args, const char *name)
{
    g_autofree char *desc = ferry_qmp_fail(vm, "GenericError", "{'execute': "
                                           "'migrate-set-parameters', 'arguments': {%s}}",
                                           args);
    /* QEMU spells the parameter with '-' or '_' depending on the check. */
    g_autofree char *under = g_strdelimit(g_strdup(name), "-", '_');
    if (!strstr(desc, name) && !strstr(desc, under)) {
        g_test_message("refusing %s said: %s", args, desc);
    }
    g_assert_true(strstr(desc, name) || strstr(desc, under));
}

static void test_parameters(void)
{
    NEED_BOOTSECT();
    FerryVM *vm = start_bootsect_vm(NULL);

    g_autoptr(JsonNode) p = ferry_qmp_ok(vm, "{'execute': 'query-migrate-parameters'}");
    g_assert_cmpint(ferry_json_get_int(p, "multifd-channels"), ==, 2);
    g_assert_cmpstr(ferry_json_get_str(p, "multifd-compression"), ==, "none");
    g_assert_cmpint(ferry_json_get_int(p, "multifd-zlib-level"), ==, 1);
    g_assert_cmpint(ferry_json_get_int(p, "multifd-zstd-level"), ==, 1);
    g_assert_cmpstr(ferry_json_get_str(p, "zero-page-detection"), ==, "multifd");

    assert_param_refused(vm, "'multifd-channels': 0", "multifd-channels");
    assert_param_refused(vm, "'multifd-channels': 256", "multifd-channels");
    assert_param_refused(vm, "'multifd-zlib-level': 10", "multifd-zlib-level");
    assert_param_refused(vm, "'multifd-zstd-level': 21", "multifd-zstd-level");
    assert_param_refused(vm, "'multifd-compression': 'lz4'", "multifd-compression");
    assert_param_refused(vm, "'zero-page-detection': 'all'", "zero-page-detection");

    g_autoptr(JsonNode) set = ferry_qmp_ok(vm, "{'execute': 'migrate-set-parameters', "
                                           "'arguments': {'multifd-channels': 255, "
                                           "'multifd-compression': 'zstd', "
                                           "'multifd-zlib-level': 9, 'multifd-zstd-level': 20, "
                                           "'zero-page-detection': 'legacy'}}");
    g_autoptr(JsonNode) p2 = ferry_qmp_ok(vm, "{'execute': 'query-migrate-parameters'}");
    g_assert_cmpint(ferry_json_get_int(p2, "multifd-channels"), ==, 255);
    g_assert_cmpstr(ferry_json_get_str(p2, "multifd-compression"), ==, "zstd");
    g_assert_cmpint(ferry_json_get_int(p2, "multifd-zlib-level"), ==, 9);
    g_assert_cmpint(ferry_json_get_int(p2, "multifd-zstd-level"), ==, 20);
    g_assert_cmpstr(ferry_json_get_str(p2, "zero-page-detection"), ==, "legacy");

    g_autoptr(JsonNode) c0 = ferry_qmp_ok(vm, "{'execute': 'query-migrate-capabilities'}");
    g_autofree char *c0_text = ferry_json_to_string(c0);
    g_assert_nonnull(strstr(c0_text, "\"capability\":\"multifd\",\"state\":false"));
    mig_set_cap(vm, "multifd", true);
    g_autoptr(JsonNode) c1 = ferry_qmp_ok(vm, "{'execute': 'query-migrate-capabilities'}");
    g_autofree char *c1_text = ferry_json_to_string(c1);
    g_assert_nonnull(strstr(c1_text, "\"capability\":\"multifd\",\"state\":true"));

    /* The destination must choose multifd before its incoming migration starts. */
    FerryVM *dst = start_bootsect_vm("-incoming tcp:127.0.0.1:0");
    g_autofree char *desc = ferry_qmp_fail(dst, "GenericError", "{'execute': "
                                           "'migrate-set-capabilities', 'arguments': "
                                           "{'capabilities': [{'capability': 'multifd', "
                                           "'state': true}]}}");
    g_assert_true(mentions_multifd(desc));
    ferry_vm_kill(dst);
    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);
}

/* -------------------------------------------------------- boot sector */

/*
 * The boot-sector guest adds one to a byte of every page in [1, 100) MiB
 * while the migration makes three passes (two if the guest is starved of
 * CPU long enough for a pass to find nothing dirty); the destination (-S)
 * then holds exactly the source's memory, compared page by page, and runs
 * on. [100, 128) MiB stays zero: zero-page detection has work.
 */
static void test_bootsect(gconstpointer data)
{
    const MfdOpts *o = data;
    NEED_BOOTSECT();

    FerryVM *src = start_busy_source();
    g_autofree char *uri = NULL;
    FerryVM *dst = mfd_start_bootsect_dest("-S", o, o->transport, &uri);
    mfd_configure(src, o);
    mig_set_cap(src, "events", true);

    mig_hold_live(src);
    mig_migrate(src, uri);
    if (mfd_wait_passes(src, 3)) {
        mig_let_converge(src);
    }
    mig_expect_end(src, "completed", 60000);
    assert_runstate(src, "postmigrate");

    static const char *const done[] = { "completed", NULL };
    g_autofree char *dend = mig_wait_status(dst, done, 30000);
    assert_runstate(dst, "paused");

    g_autoptr(JsonNode) q = mig_query(src);
    /* At least the bulk pass and one pass over what the guest dirtied meanwhile. */
    g_assert_cmpint(ferry_json_get_int(q, "ram.dirty-sync-count"), >=, 2);
    g_assert_cmpint(ferry_json_get_int(q, "ram.multifd-bytes"), >, 0);
    if (o->zero_pages && strcmp(o->zero_pages, "none") == 0) {
        /* No detection: zero pages go out as normal pages. */
        g_assert_cmpint(ferry_json_get_int(q, "ram.duplicate"), ==, 0);
    } else {
        g_assert_cmpint(ferry_json_get_int(q, "ram.duplicate"), >, 0);
    }

    /* Every page of guest RAM arrived as the guest left it. */
    mig_assert_same_memory_b64(src, dst, 0, (uint64_t)BOOTSECT_RAM_MB << 20);

    /* The guest runs on at the destination. */
    g_autoptr(JsonNode) cont = ferry_qmp_ok(dst, "{'execute': 'cont'}");
    assert_bootsect_runs(dst);
    assert_bootsect_runs(dst);
    g_assert_cmpint(ferry_vm_quit(dst), ==, 0);
    g_assert_cmpint(ferry_vm_quit(src), ==, 0);
}

/* ---------------------------------------------------------- test kernel */

typedef struct TkMfd {
    int smp;
    MfdOpts mfd;
    bool back;          /* then on from the destination to a third process */
} TkMfd;

/* Migrate FROM to a new process over multifd; it carries on the same boot. */
static FerryVM *tk_hop(FerryVM *from, const char *kernel, const TkMfd *t, const char *append,
                       const char *token)
{
    g_autofree char *args = g_strdup_printf("-m 512 -smp %d -kernel %s -append '%s'", t->smp,
                                            kernel, append);
    g_autofree char *uri = NULL;
    FerryVM *to = mfd_start_dest(args, &t->mfd, t->mfd.transport, &uri);
    mfd_configure(from, &t->mfd);
    mig_set_param_int(from, "max-bandwidth", 8LL << 30);
    mig_migrate(from, uri);
    mig_expect_end(from, "completed", 60000);
    g_autoptr(JsonNode) q = mig_query(from);
    g_assert_cmpint(ferry_json_get_int(q, "ram.multifd-bytes"), >, 0);

    /* Same boot, ticks and passes advancing, full verified cycles. */
    Heartbeat h1, h2;
    heartbeat_next(to, &h1);
    g_assert_cmpstr(h1.token, ==, token);
    g_autofree char *ok1 = ferry_serial_wait(to, "VERIFY OK", 30000);
    heartbeat_wait_progress(to, &h1, &h2, false, 30000);
    g_autofree char *serial = ferry_serial_text(to);
    g_assert_null(strstr(serial, "VERIFY FAIL"));
    g_assert_null(strstr(serial, "FERRY-TESTKERNEL boot"));
    return to;
}

static void test_testkernel(gconstpointer data)
{
    const TkMfd *t = data;
    char token[17];
    NEED_TESTKERNEL(kernel);

    g_autofree char *append = g_strdup_printf("mem=64 cpus=%d rate=20000", t->smp);
    FerryVM *a = testkernel_start(kernel, NULL, t->smp, append, token);
    g_autofree char *ok = ferry_serial_wait(a, "VERIFY OK", 30000);

    FerryVM *b = tk_hop(a, kernel, t, append, token);
    g_assert_cmpint(ferry_vm_quit(a), ==, 0);
    if (t->back) {
        /* A process that received over multifd sends over multifd. */
        FerryVM *c = tk_hop(b, kernel, t, append, token);
        g_assert_cmpint(ferry_vm_quit(c), ==, 0);
    }
    g_assert_cmpint(ferry_vm_quit(b), ==, 0);
}

/* ------------------------------------------------------------ failures */

static const MfdOpts fail_opts = { "tcp", 4, "none", -1, NULL };

/*
 * After a failed or cancelled migration the source runs and can migrate
 * again, over multifd configured as O, to a fresh destination.
 */
static void assert_source_recovers(FerryVM *src, const MfdOpts *o)
{
    assert_runstate(src, "running");
    assert_bootsect_runs(src);
    g_autofree char *uri = NULL;
    FerryVM *dst = mfd_start_bootsect_dest(NULL, o, "tcp", &uri);
    mfd_configure(src, o);
    mig_let_converge(src);
    mig_set_param_int(src, "max-bandwidth", 8LL << 30);
    mig_migrate(src, uri);
    mig_expect_end(src, "completed", 60000);
    assert_bootsect_runs(dst);
    g_assert_cmpint(ferry_vm_quit(dst), ==, 0);
}

/* A destination that must fail: it exits 1; returns what it printed. */
static char *dest_expect_exit_failure(FerryVM *dst)
{
    int rc = ferry_vm_wait_exit(dst, 30000);
    char *log = ferry_vm_log(dst);
    if (rc != 1) {
        g_test_message("destination exit status %d, said: %s", rc, log);
    }
    g_assert_cmpint(rc, ==, 1);
    return log;
}

static void test_cancel(void)
{
    NEED_BOOTSECT();
    FerryVM *src = start_busy_source();
    mfd_configure(src, &fail_opts);
    mig_hold_live(src);

    /* Cancelled at once, while the channels connect. */
    g_autofree char *uri = NULL;
    FerryVM *dst = mfd_start_bootsect_dest(NULL, &fail_opts, "tcp", &uri);
    ferry_qmp_send(src, "{'execute': 'migrate', 'arguments': {'uri': '%s'}}", uri);
    ferry_qmp_send(src, "{'execute': 'migrate_cancel'}");
    g_autoptr(JsonNode) r1 = ferry_qmp_receive(src, 5000);
    g_autoptr(JsonNode) r2 = ferry_qmp_receive(src, 5000);
    mig_expect_end(src, "cancelled", 30000);
    /* The cancel may land before any connection: the destination may still wait. */
    ferry_vm_kill(dst);
    assert_runstate(src, "running");
    assert_bootsect_runs(src);

    /* Cancelled while pages flow on every channel. */
    g_autofree char *uri2 = NULL;
    dst = mfd_start_bootsect_dest(NULL, &fail_opts, "tcp", &uri2);
    mig_set_param_int(src, "max-bandwidth", 3000000);
    mig_migrate(src, uri2);
    mfd_wait_flowing(src);
    g_autoptr(JsonNode) r3 = ferry_qmp_ok(src, "{'execute': 'migrate_cancel'}");
    mig_expect_end(src, "cancelled", 30000);
    g_autofree char *log = dest_expect_exit_failure(dst);
    g_assert_nonnull(strstr(log, "load of migration failed"));
    ferry_vm_free(dst);

    assert_source_recovers(src, &fail_opts);
    g_assert_cmpint(ferry_vm_quit(src), ==, 0);
}

static void test_dest_killed(void)
{
    NEED_BOOTSECT();
    FerryVM *src = start_busy_source();
    g_autofree char *uri = NULL;
    FerryVM *dst = mfd_start_bootsect_dest(NULL, &fail_opts, "tcp", &uri);
    mfd_configure(src, &fail_opts);
    mig_hold_live(src);
    mig_set_param_int(src, "max-bandwidth", 3000000);
    mig_migrate(src, uri);
    mfd_wait_flowing(src);
    ferry_vm_kill(dst);

    mig_expect_end(src, "failed", 30000);
    g_autofree char *desc = mig_error_desc(src);
    g_test_message("source error-desc: %s", desc);
    g_assert_cmpstr(desc, !=, "(no error-desc)");
    assert_source_recovers(src, &fail_opts);
    g_assert_cmpint(ferry_vm_quit(src), ==, 0);
}

typedef struct ProxyCut {
    TcpProxy *proxy;
    FerryVM *src;
} ProxyCut;

static bool proxy_cut_or_ended(void *opaque)
{
    ProxyCut *c = opaque;
    if (tcp_proxy_killed(c->proxy)) {
        return true;
    }
    g_autofree char *st = mig_status(c->src);
    return strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0 ||
           strcmp(st, "cancelled") == 0;
}

typedef struct CutOpts {
    MfdOpts mfd;
    int nth;                /* the multifd connection to cut, from 1 */
    uint64_t after_bytes;   /* once this much went through it */
} CutOpts;

/* One multifd connection is shut down after some pages went through it. */
static void test_channel_cut(gconstpointer data)
{
    const CutOpts *c = data;
    NEED_BOOTSECT();
    FerryVM *src = start_busy_source();
    g_autofree char *uri = NULL;
    FerryVM *dst = mfd_start_bootsect_dest(NULL, &c->mfd, "tcp", &uri);
    const char *port = strrchr(uri, ':') + 1;
    TcpProxy *proxy = tcp_proxy_new("127.0.0.1", atoi(port));
    tcp_proxy_kill_connection_with_magic(proxy, MULTIFD_MAGIC, c->nth, c->after_bytes);

    mfd_configure(src, &c->mfd);
    mig_hold_live(src);
    g_autofree char *via = g_strdup_printf("tcp:127.0.0.1:%d", tcp_proxy_port(proxy));
    mig_migrate(src, via);
    ProxyCut cut = { proxy, src };
    g_assert_true(ferry_wait_until(proxy_cut_or_ended, &cut, 30000));
    if (!tcp_proxy_killed(proxy)) {
        g_autofree char *desc = mig_error_desc(src);
        g_test_message("the migration ended before the cut (%u connections): %s",
                       tcp_proxy_connections(proxy), desc);
    }
    g_assert_true(tcp_proxy_killed(proxy));
    /* The main stream and every channel went through the proxy. */
    g_assert_cmpuint(tcp_proxy_connections(proxy), ==, 1 + (unsigned)c->mfd.channels);

    mig_expect_end(src, "failed", 30000);
    g_autofree char *desc = mig_error_desc(src);
    g_test_message("source error-desc: %s", desc);
    g_assert_nonnull(strstr(desc, "multifd channel "));
    g_autofree char *log = dest_expect_exit_failure(dst);
    g_test_message("destination said: %s", log);
    ferry_vm_free(dst);
    tcp_proxy_free(proxy);

    assert_source_recovers(src, &c->mfd);
    g_assert_cmpint(ferry_vm_quit(src), ==, 0);
}

/*
 * The destination is configured as DST_O (NULL: multifd off) and the
 * source as SRC_O: the destination exits 1 saying MESSAGE, the source
 * fails and runs on.
 */
static void mismatch(const MfdOpts *src_o, const MfdOpts *dst_o, const char *message,
                     bool recover)
{
    FerryVM *src = start_bootsect_vm(NULL);
    ferry_serial_wait_marker(src, "A", 30000);
    g_autofree char *uri = NULL;
    FerryVM *dst = mfd_start_bootsect_dest(NULL, dst_o, "tcp", &uri);
    mfd_configure(src, src_o);
    mig_migrate(src, uri);

    g_autofree char *log = dest_expect_exit_failure(dst);
    g_test_message("destination said: %s", log);
    mig_expect_end(src, "failed", 30000);
    g_autofree char *desc = mig_error_desc(src);
    g_test_message("source error-desc: %s", desc);
    g_assert_nonnull(strstr(log, message));
    ferry_vm_free(dst);
    assert_runstate(src, "running");
    assert_bootsect_runs(src);
    if (recover) {
        assert_source_recovers(src, src_o);
    }
    g_assert_cmpint(ferry_vm_quit(src), ==, 0);
}

static void test_mismatch_channels(void)
{
    NEED_BOOTSECT();
    static const MfdOpts s = { "tcp", 4, "none", -1, NULL };
    static const MfdOpts d = { "tcp", 2, "none", -1, NULL };
    mismatch(&s, &d, "multifd-channels", true);
}

static void test_mismatch_compression(void)
{
    NEED_BOOTSECT();
    static const MfdOpts s = { "tcp", 2, "zstd", -1, NULL };
    static const MfdOpts d = { "tcp", 2, "zlib", -1, NULL };
    mismatch(&s, &d, "multifd-compression", false);
}

static void test_mismatch_dest_off(void)
{
    NEED_BOOTSECT();
    static const MfdOpts s = { "tcp", 2, "none", -1, NULL };
    mismatch(&s, NULL, "multifd", false);
}

/*
 * Multifd on the destination only: the source's plain stream either loads
 * (the pages came on the main stream) or fails saying why; never a hang.
 */
static void test_source_off(void)
{
    NEED_BOOTSECT();
    static const MfdOpts d = { "tcp", 2, "none", -1, NULL };
    FerryVM *src = start_bootsect_vm(NULL);
    ferry_serial_wait_marker(src, "A", 30000);
    /* exit-on-error off: the destination stays to say how it ended. */
    FerryVM *dst = start_bootsect_vm("-incoming defer");
    mfd_configure(dst, &d);
    g_autoptr(JsonNode) r = ferry_qmp_ok(dst, "{'execute': 'migrate-incoming', 'arguments': "
                                         "{'uri': 'tcp:127.0.0.1:0', 'exit-on-error': false}}");
    g_autofree char *uri = mig_dest_tcp_uri(dst);
    mig_set_param_int(src, "max-bandwidth", 8LL << 30);
    mig_migrate(src, uri);

    static const char *const ends[] = { "completed", "failed", NULL };
    g_autofree char *dend = mig_wait_status(dst, ends, 60000);
    g_autofree char *end = mig_wait_end(src, 60000);
    g_test_message("source %s, destination %s", end, dend);
    if (strcmp(dend, "completed") == 0) {
        g_assert_cmpstr(end, ==, "completed");
        assert_bootsect_runs(dst);
    } else {
        g_autofree char *desc = mig_error_desc(dst);
        g_test_message("destination error-desc: %s", desc);
        g_assert_nonnull(strstr(desc, "multifd"));
        assert_runstate(src, "running");
        assert_bootsect_runs(src);
    }
    g_assert_cmpint(ferry_vm_quit(dst), ==, 0);
    g_assert_cmpint(ferry_vm_quit(src), ==, 0);
}

/* multifd needs channels it can open again: exec: and file: are refused on both sides. */
static void test_transports(void)
{
    NEED_BOOTSECT();
    FerryVM *src = start_bootsect_vm(NULL);
    ferry_serial_wait_marker(src, "A", 30000);
    mfd_configure(src, &fail_opts);
    g_autofree char *path = g_build_filename(ferry_tmp_dir(), "mfd.snapshot", NULL);
    g_autofree char *file_uri = g_strdup_printf("file:%s", path);
    const char *uris[] = { "exec:cat > /dev/null", file_uri };

    for (unsigned i = 0; i < G_N_ELEMENTS(uris); i++) {
        g_autoptr(JsonNode) r = ferry_qmp(src, "{'execute': 'migrate', 'arguments': "
                                          "{'uri': '%s'}}", uris[i]);
        g_autofree char *desc = NULL;
        if (ferry_json_has(r, "error")) {
            desc = g_strdup(ferry_json_get_str(r, "error.desc"));
        } else {
            /* Accepted, then it must fail rather than run without multifd. */
            mig_expect_end(src, "failed", 30000);
            desc = mig_error_desc(src);
        }
        g_test_message("%s: %s", uris[i], desc);
        g_assert_true(mentions_multifd(desc));
        assert_runstate(src, "running");
    }
    assert_bootsect_runs(src);

    /* The destination refuses them too (a stream file exists: only multifd is wrong). */
    g_assert_true(g_file_set_contents(path, "", 0, NULL));
    g_autofree char *exec_in = g_strdup_printf("exec:cat %s", path);
    const char *in_uris[] = { exec_in, file_uri };
    for (unsigned i = 0; i < G_N_ELEMENTS(in_uris); i++) {
        FerryVM *dst = start_bootsect_vm("-incoming defer");
        mfd_configure(dst, &fail_opts);
        g_autoptr(JsonNode) r = ferry_qmp(dst, "{'execute': 'migrate-incoming', "
                                          "'arguments': {'uri': '%s'}}", in_uris[i]);
        if (ferry_json_has(r, "error")) {
            const char *desc = ferry_json_get_str(r, "error.desc");
            g_test_message("incoming %s: %s", in_uris[i], desc);
            g_assert_true(mentions_multifd(desc));
            ferry_vm_kill(dst);
        } else {
            g_autofree char *log = dest_expect_exit_failure(dst);
            g_test_message("incoming %s: %s", in_uris[i], log);
            g_assert_true(mentions_multifd(log));
            ferry_vm_free(dst);
        }
    }
    g_assert_cmpint(ferry_vm_quit(src), ==, 0);
}

int main(int argc, char **argv)
{
    /*
     * A covering set, not the cross product: every channel count, every
     * compression (zlib and zstd each with a non-default level once),
     * every zero-page-detection mode, unix and tcp.
     */
    static const MfdOpts bootsect[] = {
        { "unix", 1, "none", -1, "none" },
        { "tcp", 2, "none", -1, "legacy" },
        { "unix", 4, "none", -1, "multifd" },
        { "tcp", 8, "none", -1, NULL },
        { "tcp", 2, "zlib", -1, "multifd" },
        { "unix", 4, "zlib", 5, "legacy" },
        { "tcp", 4, "zstd", -1, "legacy" },
        { "unix", 8, "zstd", 5, "none" },
    };
    static const TkMfd tk[] = {
        { 1, { "tcp", 4, "zstd", -1, NULL }, false },
        { 4, { "unix", 2, "none", -1, NULL }, true },
    };
    static const CutOpts cuts[] = {
        { { "tcp", 4, "none", -1, NULL }, 2, 64 * 1024 },
        { { "tcp", 2, "zstd", -1, NULL }, 1, 16 * 1024 },
    };

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/multifd/tcp-proxy", test_tcp_proxy);
    g_test_add_func("/multifd/parameters", test_parameters);
    for (unsigned i = 0; i < G_N_ELEMENTS(bootsect); i++) {
        const MfdOpts *o = &bootsect[i];
        g_autofree char *level = o->level >= 0 ? g_strdup_printf("-%d", o->level) : g_strdup("");
        g_autofree char *name = g_strdup_printf("/multifd/bootsect/%s/channels-%d/%s%s/zero-%s",
                                                o->transport, o->channels, o->compression,
                                                level, o->zero_pages ? o->zero_pages
                                                                     : "default");
        g_test_add_data_func(name, o, test_bootsect);
    }
    for (unsigned i = 0; i < G_N_ELEMENTS(tk); i++) {
        g_autofree char *name = g_strdup_printf("/multifd/testkernel/smp%d/%s/channels-%d/%s%s",
                                                tk[i].smp, tk[i].mfd.transport,
                                                tk[i].mfd.channels, tk[i].mfd.compression,
                                                tk[i].back ? "/there-and-on" : "");
        g_test_add_data_func(name, &tk[i], test_testkernel);
    }
    g_test_add_func("/multifd/failure/cancel", test_cancel);
    g_test_add_func("/multifd/failure/dest-killed", test_dest_killed);
    for (unsigned i = 0; i < G_N_ELEMENTS(cuts); i++) {
        g_autofree char *name = g_strdup_printf("/multifd/failure/channel-cut-%s-%d-of-%d",
                                                cuts[i].mfd.compression, cuts[i].nth,
                                                cuts[i].mfd.channels);
        g_test_add_data_func(name, &cuts[i], test_channel_cut);
    }
    g_test_add_func("/multifd/failure/mismatch-channels", test_mismatch_channels);
    g_test_add_func("/multifd/failure/mismatch-compression", test_mismatch_compression);
    g_test_add_func("/multifd/failure/source-multifd-off", test_source_off);
    g_test_add_func("/multifd/failure/transports", test_transports);
    g_test_add_func("/multifd/failure/mismatch-dest-off", test_mismatch_dest_off);
    return g_test_run();
}
