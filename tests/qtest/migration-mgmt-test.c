/*
 * Migration management as tools drive it: the fd: transport with getfd,
 * migrate-incoming after -incoming defer (MIGRATION "setup" at once),
 * every query-migrate field, pause-before-switchover with
 * migrate-continue, auto-converge turning a non-converging guest into a
 * converging one, and the HMP commands (synchronous migrate with
 * progress, info migrate, parameters and capabilities).
 */
#include <sys/socket.h>
#include <unistd.h>

#include "migration-helpers.h"
#include "testkernel.h"

#define NEED_BOOTSECT() \
    FERRY_REQUIRE_ACCEL(); \
    FERRY_REQUIRE_GUEST(img_, "bootsect"); \
    (void)img_

/* fd: on both sides, the descriptors passed over QMP with getfd. */
static void test_fd_transport(void)
{
    NEED_BOOTSECT();
    int sv[2];
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);

    FerryVM *src = start_bootsect_vm(NULL);
    ferry_serial_wait_marker(src, "A", 30000);
    FerryVM *dst = start_bootsect_vm("-incoming defer");
    mig_set_cap(dst, "events", true);

    ferry_qmp_getfd(dst, sv[1], "migin");
    ferry_qmp_ok(dst, "{'execute': 'migrate-incoming', 'arguments': {'uri': 'fd:migin'}}");
    /* The destination announces "setup" as soon as it accepted the command. */
    g_autoptr(JsonNode) ev = ferry_qmp_wait_event(dst, "MIGRATION", 5000);
    g_assert_cmpstr(ferry_json_get_str(ev, "data.status"), ==, "setup");

    ferry_qmp_getfd(src, sv[0], "migout");
    close(sv[0]);
    close(sv[1]);
    mig_set_param_int(src, "max-bandwidth", 8LL << 30);
    mig_migrate(src, "fd:migout");
    g_autofree char *end = mig_wait_end(src, 60000);
    g_assert_cmpstr(end, ==, "completed");
    g_autoptr(JsonNode) done = ferry_qmp_wait_event(dst, "MIGRATION", 30000);
    assert_bootsect_runs(dst);

    /* An unknown fd name is refused up front. */
    FerryVM *src2 = start_bootsect_vm(NULL);
    mig_migrate(src2, "fd:nosuchfd");
    g_autofree char *end2 = mig_wait_end(src2, 30000);
    g_assert_cmpstr(end2, ==, "failed");
    g_autoptr(JsonNode) q = mig_query(src2);
    g_assert_nonnull(strstr(ferry_json_get_str(q, "error-desc"), "nosuchfd"));
    assert_runstate(src2, "running");

    g_assert_cmpint(ferry_vm_quit(src2), ==, 0);
    g_assert_cmpint(ferry_vm_quit(dst), ==, 0);
    g_assert_cmpint(ferry_vm_quit(src), ==, 0);
}

static void assert_has(JsonNode *q, const char *path)
{
    if (!ferry_json_has(q, path)) {
        g_autofree char *text = ferry_json_to_string(q);
        g_error("query-migrate lacks '%s': %s", path, text);
    }
}

/* Live query-migrate fields, pause-before-switchover and migrate-continue. */
static void test_query_and_pause_before_switchover(void)
{
    NEED_BOOTSECT();
    FerryVM *src = start_bootsect_vm(NULL);
    ferry_serial_wait_count(src, "B", 1, 30000);
    FerryVM *dst = start_bootsect_vm("-incoming tcp:127.0.0.1:0");
    g_autofree char *uri = mig_dest_tcp_uri(dst);

    /* Before any migration: {} */
    g_autoptr(JsonNode) none = mig_query(src);
    g_assert_false(ferry_json_has(none, "status"));

    mig_set_cap(src, "events", true);
    mig_set_cap(src, "pause-before-switchover", true);
    g_autoptr(JsonNode) caps = ferry_qmp_ok(src, "{'execute': 'query-migrate-capabilities'}");
    g_autofree char *caps_text = ferry_json_to_string(caps);
    g_assert_nonnull(strstr(caps_text, "\"capability\":\"pause-before-switchover\",\"state\":true"));

    mig_set_param_int(src, "downtime-limit", 1);
    mig_set_param_int(src, "avail-switchover-bandwidth", 1);
    mig_migrate(src, uri);
    mig_wait_passes(src, 2, 60000);
    g_autoptr(JsonNode) live = mig_query(src);
    static const char *const live_fields[] = {
        "status", "total-time", "setup-time", "expected-downtime", "ram.transferred",
        "ram.remaining", "ram.total", "ram.duplicate", "ram.normal", "ram.normal-bytes",
        "ram.dirty-pages-rate", "ram.mbps", "ram.dirty-sync-count", "ram.pages-per-second",
        "ram.precopy-bytes", "ram.downtime-bytes", "ram.page-size",
    };
    for (unsigned i = 0; i < G_N_ELEMENTS(live_fields); i++) {
        assert_has(live, live_fields[i]);
    }
    g_assert_cmpint(ferry_json_get_int(live, "ram.total"), ==, 128 << 20);
    g_assert_cmpint(ferry_json_get_int(live, "ram.transferred"), >, 0);

    /* Capabilities cannot change while a migration runs. */
    g_autofree char *busy = ferry_qmp_fail(src, "GenericError",
        "{'execute': 'migrate-set-capabilities', 'arguments': {'capabilities': "
        "[{'capability': 'auto-converge', 'state': true}]}}");
    g_assert_nonnull(strstr(busy, "in progress"));
    /* migrate-continue is refused outside pre-switchover. */
    g_autofree char *early = ferry_qmp_fail(src, "GenericError",
        "{'execute': 'migrate-continue', 'arguments': {'state': 'pre-switchover'}}");
    g_assert_nonnull(strstr(early, "not in expected state"));

    /* Parameters take effect during the migration: now it converges. */
    mig_set_param_int(src, "avail-switchover-bandwidth", 0);
    mig_set_param_int(src, "downtime-limit", 10000);
    static const char *const pre[] = { "pre-switchover", NULL };
    g_autofree char *p = mig_wait_status(src, pre, 60000);
    /* The guest is stopped and waits for management's word. */
    assert_runstate(src, "finish-migrate");
    unsigned b = ferry_serial_count(src, "B");
    ferry_qmp_ok(src, "{'execute': 'migrate-continue', 'arguments': {'state': 'pre-switchover'}}");
    g_autofree char *end = mig_wait_end(src, 60000);
    g_assert_cmpstr(end, ==, "completed");
    g_assert_cmpuint(ferry_serial_count(src, "B"), ==, b);

    g_autoptr(JsonNode) fin = mig_query(src);
    assert_has(fin, "downtime");
    assert_has(fin, "total-time");
    g_assert_false(ferry_json_has(fin, "expected-downtime"));
    assert_bootsect_runs(dst);
    g_assert_cmpint(ferry_vm_quit(dst), ==, 0);
    g_assert_cmpint(ferry_vm_quit(src), ==, 0);
}

typedef struct ThrottleWatch {
    FerryVM *vm;
    gint64 seen;
    char *status;
} ThrottleWatch;

static bool throttle_seen_or_end(void *opaque)
{
    ThrottleWatch *w = opaque;
    g_autoptr(JsonNode) q = mig_query(w->vm);
    if (ferry_json_has(q, "cpu-throttle-percentage")) {
        w->seen = MAX(w->seen, ferry_json_get_int(q, "cpu-throttle-percentage"));
    }
    const char *st = ferry_json_get_str(q, "status");
    if (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0 ||
        strcmp(st, "cancelled") == 0) {
        g_free(w->status);
        w->status = g_strdup(st);
        return true;
    }
    return false;
}

/*
 * A guest rewriting its memory flat out outruns a 50 MB/s link with 20 ms
 * of downtime allowed (room for 256 pages): without auto-converge the
 * migration keeps going pass after pass; with it the vCPUs are throttled
 * until it converges, and the guest runs on intact.
 */
static void test_auto_converge(void)
{
    char token[17];
    NEED_TESTKERNEL(kernel);
    const char *append = "mem=64 cpus=1 rate=max";
    FerryVM *src = testkernel_start(kernel, NULL, 1, append, token);
    g_autofree char *ok = ferry_serial_wait(src, "VERIFY OK", 30000);
    mig_set_param_int(src, "max-bandwidth", 50000000);
    mig_set_param_int(src, "downtime-limit", 20);

    FerryVM *dst = ferry_vm_start("-m 512 -smp 1 -kernel %s -append '%s' "
                                  "-incoming tcp:127.0.0.1:0", kernel, append);
    g_autofree char *uri = mig_dest_tcp_uri(dst);
    mig_migrate(src, uri);
    mig_wait_passes(src, 5, 60000);
    g_autofree char *st = mig_status(src);
    g_assert_cmpstr(st, ==, "active");
    ferry_qmp_ok(src, "{'execute': 'migrate_cancel'}");
    g_autofree char *c = mig_wait_end(src, 30000);
    g_assert_cmpstr(c, ==, "cancelled");
    g_assert_cmpint(ferry_vm_wait_exit(dst, 30000), ==, 1);
    ferry_vm_free(dst);

    mig_set_cap(src, "auto-converge", true);
    mig_set_param_int(src, "cpu-throttle-initial", 50);
    mig_set_param_int(src, "cpu-throttle-increment", 20);
    dst = ferry_vm_start("-m 512 -smp 1 -kernel %s -append '%s' -incoming tcp:127.0.0.1:0",
                         kernel, append);
    g_autofree char *uri2 = mig_dest_tcp_uri(dst);
    mig_migrate(src, uri2);
    ThrottleWatch w = { src, 0, NULL };
    g_assert_true(ferry_wait_until(throttle_seen_or_end, &w, 120000));
    g_assert_cmpstr(w.status, ==, "completed");
    g_assert_cmpint(w.seen, >=, 50);
    g_free(w.status);

    Heartbeat hb;
    heartbeat_next(dst, &hb);
    g_assert_cmpstr(hb.token, ==, token);
    g_autofree char *ok2 = ferry_serial_wait(dst, "VERIFY OK", 30000);
    g_autofree char *ok3 = ferry_serial_wait(dst, "VERIFY OK", 30000);
    g_assert_false(ferry_serial_contains(dst, "VERIFY FAIL"));
    g_assert_cmpint(ferry_vm_quit(dst), ==, 0);
    g_assert_cmpint(ferry_vm_quit(src), ==, 0);
}

static char *hmp(FerryVM *vm, const char *cmd);

/* What a parked source looked like: its registers and its serial passes. */
typedef struct GuestWatch {
    FerryVM *vm;
    char *regs;
    unsigned passes;
} GuestWatch;

static bool guest_moved(void *opaque)
{
    GuestWatch *g = opaque;
    g_autofree char *regs = hmp(g->vm, "info registers -a");
    return strcmp(regs, g->regs) != 0 || ferry_serial_count(g->vm, "B") != g->passes;
}

static bool throttle_reached_99(void *opaque)
{
    ThrottleWatch *w = opaque;
    return throttle_seen_or_end(w) || w->seen >= 99;
}

/*
 * A stop during a live migration holds to the end: the accelerator parks
 * vCPUs for its own reasons meanwhile (the software CPU does, for every
 * dirty-log fetch), and that must never let a stopped guest run again.
 * The throttle at 99 % keeps the vCPUs slow to park, which once let a
 * fetch resume them after the stop; the source then kept running in
 * postmigrate. Never converging (1 B/s for the switchover) keeps the
 * migration going until the stop.
 */
static void test_stop_during_migration(void)
{
    NEED_BOOTSECT();
    FerryVM *src = start_bootsect_vm("-smp 2");
    ferry_serial_wait_marker(src, "A", 30000);
    mig_set_cap(src, "auto-converge", true);
    mig_set_param_int(src, "downtime-limit", 1);
    mig_set_param_int(src, "avail-switchover-bandwidth", 1);
    mig_set_param_int(src, "cpu-throttle-initial", 99);
    mig_set_param_int(src, "max-cpu-throttle", 99);
    mig_set_param_int(src, "throttle-trigger-threshold", 1);
    mig_migrate(src, "exec:cat > /dev/null");
    /* Throttled at 99 %, a vCPU takes up to a second to park: every sync is a wide window. */
    ThrottleWatch w = { src, 0, NULL };
    g_assert_true(ferry_wait_until(throttle_reached_99, &w, 60000));
    /* A throttled guest may let it converge first; the stop must hold either way. */
    g_free(w.status);

    ferry_qmp_ok(src, "{'execute': 'stop'}");
    g_autofree char *end = mig_wait_end(src, 60000);
    g_assert_cmpstr(end, ==, "completed");
    /* A stop that came after the migration finished leaves postmigrate as it is. */
    g_autoptr(JsonNode) st = ferry_qmp_ok(src, "{'execute': 'query-status'}");
    g_assert_cmpstr(ferry_json_get_str(st, "status"), ==, "postmigrate");

    /*
     * Parked vCPUs neither print nor change a register; a running boot
     * sector changes its registers in microseconds. Poll for either for
     * 300 ms: the wait fails the test as soon as the guest moves.
     */
    GuestWatch g = { src, hmp(src, "info registers -a"), ferry_serial_count(src, "B") };
    g_assert_false(ferry_wait_until(guest_moved, &g, 300));
    g_free(g.regs);
    g_assert_cmpint(ferry_vm_quit(src), ==, 0);
}

static char *hmp(FerryVM *vm, const char *cmd)
{
    g_autoptr(JsonNode) r = ferry_qmp_ok(vm, "{'execute': 'human-monitor-command', "
                                         "'arguments': {'command-line': '%s'}}", cmd);
    return g_strdup(json_node_get_string(r));
}

static void test_hmp_migration(void)
{
    NEED_BOOTSECT();
    g_autofree char *hmp_path = g_build_filename(ferry_tmp_dir(), "mig-hmp.sock", NULL);
    g_autofree char *extra = g_strdup_printf("-monitor unix:%s,server=on,wait=off", hmp_path);
    FerryVM *src = start_bootsect_vm(extra);
    ferry_serial_wait_marker(src, "A", 30000);

    g_autofree char *r1 = hmp(src, "migrate_set_parameter downtime-limit 500");
    g_autofree char *r2 = hmp(src, "migrate_set_parameter max-bandwidth 2G");
    g_autofree char *params = hmp(src, "info migrate_parameters");
    g_assert_nonnull(strstr(params, "downtime-limit: 500 ms"));
    g_assert_nonnull(strstr(params, "max-bandwidth: 2147483648 bytes/second"));
    g_autofree char *r3 = hmp(src, "migrate_set_capability events on");
    g_autofree char *caps = hmp(src, "info migrate_capabilities");
    g_assert_nonnull(strstr(caps, "events: on"));
    g_autofree char *bad = hmp(src, "migrate_set_parameter downtime-limit 99999999");
    g_assert_nonnull(strstr(bad, "downtime"));
    g_autofree char *bad2 = hmp(src, "migrate_set_capability frobnicate on");
    g_assert_nonnull(strstr(bad2, "frobnicate"));

    /* A synchronous migrate on the human monitor, with progress, then info migrate. */
    FerryVM *dst = start_bootsect_vm("-incoming tcp:127.0.0.1:0");
    g_autofree char *uri = mig_dest_tcp_uri(dst);
    FerryLineClient *c = ferry_line_client_connect(hmp_path);
    g_autofree char *banner = ferry_line_client_read_until(c, "(qemu) ", 10000);
    g_autofree char *cmd = g_strdup_printf("migrate %s\n", uri);
    ferry_line_client_send(c, cmd);
    g_autofree char *out = ferry_line_client_read_until(c, "Migration completed", 60000);
    g_autofree char *prompt = ferry_line_client_read_until(c, "(qemu) ", 10000);
    ferry_line_client_send(c, "info migrate\n");
    g_autofree char *info = ferry_line_client_read_until(c, "(qemu) ", 10000);
    g_assert_nonnull(strstr(info, "completed"));
    g_assert_nonnull(strstr(info, "transferred="));
    ferry_line_client_free(c);
    assert_bootsect_runs(dst);
    g_assert_cmpint(ferry_vm_quit(dst), ==, 0);

    /* -d detaches: the command returns at once, the migration goes on. */
    FerryVM *dst2 = start_bootsect_vm("-incoming tcp:127.0.0.1:0");
    FerryVM *src2 = start_bootsect_vm(NULL);
    g_autofree char *uri2 = mig_dest_tcp_uri(dst2);
    /*
     * At the default 128 MiB/s a guest rewriting its 99 MiB as fast as it can
     * may never converge; this part is about -d, not convergence.
     */
    g_autofree char *r5 = hmp(src2, "migrate_set_parameter max-bandwidth 2G");
    g_autofree char *r6 = hmp(src2, "migrate_set_parameter downtime-limit 500");
    g_autofree char *d = g_strdup_printf("migrate -d %s", uri2);
    g_autofree char *r4 = hmp(src2, d);
    g_autofree char *end = mig_wait_end(src2, 60000);
    g_assert_cmpstr(end, ==, "completed");
    assert_bootsect_runs(dst2);
    g_assert_cmpint(ferry_vm_quit(dst2), ==, 0);
    g_assert_cmpint(ferry_vm_quit(src2), ==, 0);
    g_assert_cmpint(ferry_vm_quit(src), ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/migration/mgmt/fd-transport", test_fd_transport);
    g_test_add_func("/migration/mgmt/query-and-pause-before-switchover",
                    test_query_and_pause_before_switchover);
    g_test_add_func("/migration/mgmt/auto-converge", test_auto_converge);
    g_test_add_func("/migration/mgmt/stop-during-migration", test_stop_during_migration);
    g_test_add_func("/migration/mgmt/hmp", test_hmp_migration);
    return g_test_run();
}
