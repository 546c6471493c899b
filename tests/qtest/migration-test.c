/*
 * Precopy live migration as users drive it: the boot-sector guest over
 * unix and tcp with several passes (then every page compared between the
 * two VMs), the verifying test kernel on 1 and 4 vCPUs with its disk and
 * network (A -> B -> A), save and restore through file:, exec: and fd:,
 * auto-converge, and every failure that must leave the source running.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migration-helpers.h"
#include "testkernel.h"


/*
 * The boot-sector guest keeps incrementing a byte in every page while the
 * migration makes at least two passes; the destination is started with
 * -S, so after completion both VMs hold the final memory, compared page
 * by page. Then the destination runs on.
 */
static void bootsect_live(const char *transport)
{
    FERRY_REQUIRE_ACCEL();
    FERRY_REQUIRE_GUEST(img, "bootsect");
    (void)img;

    FerryVM *src = start_bootsect_vm(NULL);
    ferry_serial_wait_count(src, "B", 1, 30000);

    g_autofree char *sock = g_build_filename(ferry_tmp_dir(), "mig.sock", NULL);
    g_autofree char *incoming = strcmp(transport, "unix") == 0
        ? g_strdup_printf("unix:%s", sock) : g_strdup("tcp:127.0.0.1:0");
    g_autofree char *dst_args = g_strdup_printf("-S -incoming %s", incoming);
    FerryVM *dst = start_bootsect_vm(dst_args);
    mig_set_cap(src, "events", true);
    mig_set_cap(dst, "events", true);
    g_autofree char *uri = strcmp(transport, "unix") == 0 ? g_strdup(incoming)
                                                           : mig_dest_tcp_uri(dst);

    mig_hold_live(src);
    mig_migrate(src, uri);
    g_autoptr(JsonNode) setup_ev = ferry_qmp_wait_event(src, "MIGRATION", 5000);
    g_assert_cmpstr(ferry_json_get_str(setup_ev, "data.status"), ==, "setup");
    mig_wait_passes(src, 3, 60000);
    g_autoptr(JsonNode) pass_ev = ferry_qmp_wait_event(src, "MIGRATION_PASS", 5000);
    /* Still live: the guest kept running meanwhile. */
    g_autofree char *st = mig_status(src);
    g_assert_cmpstr(st, ==, "active");

    mig_let_converge(src);
    g_autofree char *end = mig_wait_end(src, 60000);
    g_assert_cmpstr(end, ==, "completed");
    assert_runstate(src, "postmigrate");

    static const char *const done[] = { "completed", NULL };
    g_autofree char *dend = mig_wait_status(dst, done, 30000);
    assert_runstate(dst, "paused");

    g_autoptr(JsonNode) q = mig_query(src);
    g_assert_cmpint(ferry_json_get_int(q, "ram.dirty-sync-count"), >=, 3);
    g_assert_cmpint(ferry_json_get_int(q, "ram.transferred"), >, 0);
    g_assert_true(ferry_json_has(q, "downtime"));

    /* Every page of guest RAM arrived as the guest left it. */
    mig_assert_same_memory(src, dst, 0, (uint64_t)BOOTSECT_RAM_MB << 20);

    /* The guest runs on at the destination. */
    ferry_qmp_ok(dst, "{'execute': 'cont'}");
    assert_bootsect_runs(dst);
    assert_bootsect_runs(dst);
    g_assert_cmpint(ferry_vm_quit(dst), ==, 0);
    g_assert_cmpint(ferry_vm_quit(src), ==, 0);
}

static void test_bootsect_unix(void)
{
    bootsect_live("unix");
}

static void test_bootsect_tcp(void)
{
    bootsect_live("tcp");
}

/* ---------------------------------------------------------- test kernel */

typedef struct TkOpts {
    int smp;
    bool devices;
} TkOpts;

static char *tk_disk;

static char *tk_extra(bool devices, const char *more)
{
    if (!devices) {
        return g_strdup(more ? more : "");
    }
    return g_strdup_printf("-drive file=%s,format=raw,if=virtio -netdev user,id=n0 "
                           "-device virtio-net-device,netdev=n0 %s", tk_disk, more ? more : "");
}

/* After migration: same boot token, ticks advancing, a full verified cycle. */
static void tk_assert_continues(FerryVM *vm, const char *token)
{
    Heartbeat a, b;
    heartbeat_next(vm, &a);
    g_assert_cmpstr(a.token, ==, token);
    g_autofree char *ok1 = ferry_serial_wait(vm, "VERIFY OK", 30000);
    heartbeat_wait_progress(vm, &a, &b, false, 30000);
    g_assert_false(ferry_serial_contains(vm, "VERIFY FAIL"));
}

static FerryVM *tk_migrate_to_new(FerryVM *src, const char *kernel, const TkOpts *o,
                                  const char *append)
{
    g_autofree char *extra = tk_extra(o->devices, "-incoming tcp:127.0.0.1:0");
    FerryVM *dst = ferry_vm_start("-m 512 -smp %d -kernel %s -append '%s' %s", o->smp, kernel,
                                  append, extra);
    g_autofree char *uri = mig_dest_tcp_uri(dst);
    mig_set_param_int(src, "max-bandwidth", 8LL << 30);
    mig_migrate(src, uri);
    g_autofree char *end = mig_wait_end(src, 60000);
    g_assert_cmpstr(end, ==, "completed");
    return dst;
}

static void test_testkernel(gconstpointer data)
{
    const TkOpts *o = data;
    char token[17];
    NEED_TESTKERNEL(kernel);

    if (o->devices && !tk_disk) {
        tk_disk = g_build_filename(ferry_tmp_dir(), "tk-disk.img", NULL);
        g_autofree char *zeros = g_malloc0(1 << 20);
        g_assert_true(g_file_set_contents(tk_disk, zeros, 1 << 20, NULL));
    }
    g_autofree char *append = g_strdup_printf("mem=64 cpus=%d rate=20000", o->smp);
    g_autofree char *extra = tk_extra(o->devices, NULL);
    FerryVM *a = testkernel_start(kernel, extra, o->smp, append, token);
    g_autofree char *ok = ferry_serial_wait(a, "VERIFY OK", 30000);

    FerryVM *b = tk_migrate_to_new(a, kernel, o, append);
    tk_assert_continues(b, token);
    if (o->devices) {
        ferry_serial_write(b, "disktest\n");
        g_autofree char *disk = ferry_serial_wait(b, "DISK ", 20000);
        g_autofree char *disk2 = g_str_has_prefix(disk, "DISK sector0")
                                 ? ferry_serial_wait(b, "DISK ", 20000) : g_strdup(disk);
        g_assert_cmpstr(disk2, ==, "DISK OK");
        ferry_serial_write(b, "nettest\n");
        g_autofree char *net = ferry_serial_wait(b, "NET ", 20000);
        g_assert_true(g_str_has_prefix(net, "NET OK"));
    }
    g_assert_cmpint(ferry_vm_quit(a), ==, 0);

    /* And back again, to a fresh process on the "A" side. */
    FerryVM *c = tk_migrate_to_new(b, kernel, o, append);
    tk_assert_continues(c, token);
    g_assert_cmpint(ferry_vm_quit(b), ==, 0);
    g_assert_cmpint(ferry_vm_quit(c), ==, 0);
}

/* ------------------------------------------------------- file, exec, fd */

static void save_restore(bool paused, const char *how)
{
    char token[17];
    NEED_TESTKERNEL(kernel);

    FerryVM *src = testkernel_start(kernel, NULL, 2, "mem=32 cpus=2 rate=20000", token);
    g_autofree char *ok = ferry_serial_wait(src, "VERIFY OK", 30000);
    if (paused) {
        ferry_qmp_ok(src, "{'execute': 'stop'}");
    }
    g_autofree char *path = g_build_filename(ferry_tmp_dir(), "snapshot.ferry", NULL);
    g_autofree char *out_uri = strcmp(how, "exec") == 0
        ? g_strdup_printf("exec:cat > %s", path) : g_strdup_printf("file:%s", path);
    mig_set_param_int(src, "max-bandwidth", 8LL << 30);
    mig_migrate(src, out_uri);
    g_autofree char *end = mig_wait_end(src, 60000);
    g_assert_cmpstr(end, ==, "completed");
    g_assert_cmpint(ferry_vm_quit(src), ==, 0);

    g_autofree char *in_uri = strcmp(how, "exec") == 0
        ? g_strdup_printf("'exec:cat %s'", path) : g_strdup_printf("file:%s", path);
    FerryVM *dst = ferry_vm_start("-m 512 -smp 2 -kernel %s -append 'mem=32 cpus=2 rate=20000' "
                                  "-incoming %s", kernel, in_uri);
    static const char *const done[] = { "completed", NULL };
    g_autofree char *dend = mig_wait_status(dst, done, 30000);
    if (paused) {
        /* A paused source arrives paused, and resumes on request. */
        assert_runstate(dst, "paused");
        ferry_qmp_ok(dst, "{'execute': 'cont'}");
    }
    tk_assert_continues(dst, token);
    g_assert_cmpint(ferry_vm_quit(dst), ==, 0);
}

static void test_file_running(void)
{
    save_restore(false, "file");
}

static void test_file_paused(void)
{
    save_restore(true, "file");
}

static void test_exec(void)
{
    save_restore(false, "exec");
}

/* ------------------------------------------------------------ failures */

/* After a failed or cancelled migration the source runs and can migrate again. */
static void assert_source_recovers(FerryVM *src)
{
    assert_runstate(src, "running");
    assert_bootsect_runs(src);
    FerryVM *dst = start_bootsect_vm("-incoming tcp:127.0.0.1:0");
    g_autofree char *uri = mig_dest_tcp_uri(dst);
    mig_let_converge(src);
    mig_set_param_int(src, "max-bandwidth", 8LL << 30);
    mig_migrate(src, uri);
    g_autofree char *end = mig_wait_end(src, 60000);
    g_assert_cmpstr(end, ==, "completed");
    assert_bootsect_runs(dst);
    g_assert_cmpint(ferry_vm_quit(dst), ==, 0);
}

static void test_cancel(void)
{
    FERRY_REQUIRE_ACCEL();
    FERRY_REQUIRE_GUEST(img, "bootsect");
    (void)img;
    FerryVM *src = start_bootsect_vm(NULL);
    ferry_serial_wait_marker(src, "A", 30000);
    mig_set_cap(src, "events", true);

    /* Cancelled at once, while it sets up. */
    FerryVM *dst = start_bootsect_vm("-incoming tcp:127.0.0.1:0");
    g_autofree char *uri = mig_dest_tcp_uri(dst);
    mig_hold_live(src);
    ferry_qmp_send(src, "{'execute': 'migrate', 'arguments': {'uri': '%s'}}", uri);
    ferry_qmp_send(src, "{'execute': 'migrate_cancel'}");
    g_autoptr(JsonNode) r1 = ferry_qmp_receive(src, 5000);
    g_autoptr(JsonNode) r2 = ferry_qmp_receive(src, 5000);
    g_autofree char *end = mig_wait_end(src, 30000);
    g_assert_cmpstr(end, ==, "cancelled");
    /* The cancel may land before the connection: the destination may still wait. */
    ferry_vm_kill(dst);
    assert_runstate(src, "running");
    assert_bootsect_runs(src);

    /* Cancelled while live. */
    dst = start_bootsect_vm("-incoming tcp:127.0.0.1:0");
    g_autofree char *uri2 = mig_dest_tcp_uri(dst);
    mig_set_param_int(src, "max-bandwidth", 3000000);
    mig_migrate(src, uri2);
    static const char *const active[] = { "active", NULL };
    g_autofree char *a = mig_wait_status(src, active, 30000);
    ferry_qmp_ok(src, "{'execute': 'migrate_cancel'}");
    g_autofree char *end2 = mig_wait_end(src, 30000);
    g_assert_cmpstr(end2, ==, "cancelled");
    g_assert_cmpint(ferry_vm_wait_exit(dst, 30000), ==, 1);
    g_autofree char *log = ferry_vm_log(dst);
    g_assert_nonnull(strstr(log, "load of migration failed"));
    ferry_vm_free(dst);

    assert_source_recovers(src);
    g_assert_cmpint(ferry_vm_quit(src), ==, 0);
}

static void test_dest_killed(void)
{
    FERRY_REQUIRE_ACCEL();
    FERRY_REQUIRE_GUEST(img, "bootsect");
    (void)img;
    FerryVM *src = start_bootsect_vm(NULL);
    ferry_serial_wait_marker(src, "A", 30000);
    FerryVM *dst = start_bootsect_vm("-incoming tcp:127.0.0.1:0");
    g_autofree char *uri = mig_dest_tcp_uri(dst);
    mig_set_param_int(src, "max-bandwidth", 3000000);
    mig_migrate(src, uri);
    static const char *const active[] = { "active", NULL };
    g_autofree char *a = mig_wait_status(src, active, 30000);
    ferry_vm_kill(dst);

    g_autofree char *end = mig_wait_end(src, 30000);
    g_assert_cmpstr(end, ==, "failed");
    g_autoptr(JsonNode) q = mig_query(src);
    g_assert_true(ferry_json_has(q, "error-desc"));
    assert_source_recovers(src);
    g_assert_cmpint(ferry_vm_quit(src), ==, 0);
}

static void test_connection_refused_and_bad_uris(void)
{
    FERRY_REQUIRE_ACCEL();
    FERRY_REQUIRE_GUEST(img, "bootsect");
    (void)img;
    FerryVM *src = start_bootsect_vm(NULL);
    ferry_serial_wait_marker(src, "A", 30000);

    mig_migrate(src, "tcp:127.0.0.1:1");
    g_autofree char *end = mig_wait_end(src, 30000);
    g_assert_cmpstr(end, ==, "failed");
    g_autoptr(JsonNode) q = mig_query(src);
    g_assert_nonnull(strstr(ferry_json_get_str(q, "error-desc"), "refused"));

    static const char *const bad[] = { "ftp:example", "tcp:nohost", "unix:", "fd:", "exec:",
                                       "file:" };
    for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *desc = ferry_qmp_fail(src, "GenericError", "{'execute': 'migrate', "
                                               "'arguments': {'uri': '%s'}}", bad[i]);
        g_assert_nonnull(strstr(desc, bad[i]));
    }
    assert_source_recovers(src);
    g_assert_cmpint(ferry_vm_quit(src), ==, 0);
}

static void test_ram_size_mismatch(void)
{
    FERRY_REQUIRE_ACCEL();
    FERRY_REQUIRE_GUEST(img, "bootsect");
    FerryVM *src = start_bootsect_vm(NULL);
    ferry_serial_wait_marker(src, "A", 30000);
    FerryVM *dst = ferry_vm_start("-m 256 -drive file=%s,format=raw -incoming tcp:127.0.0.1:0",
                                  img);
    g_autofree char *uri = mig_dest_tcp_uri(dst);
    mig_migrate(src, uri);
    g_assert_cmpint(ferry_vm_wait_exit(dst, 30000), ==, 1);
    g_autofree char *log = ferry_vm_log(dst);
    g_assert_nonnull(strstr(log, "RAM block 'pc.ram' size mismatch"));
    ferry_vm_free(dst);
    g_autofree char *end = mig_wait_end(src, 30000);
    g_assert_cmpstr(end, ==, "failed");
    assert_source_recovers(src);
    g_assert_cmpint(ferry_vm_quit(src), ==, 0);
}

/* A VM on another accelerator refuses the stream before loading any state. */
static void test_accel_mismatch(void)
{
    FERRY_REQUIRE_ACCEL();
    FERRY_REQUIRE_GUEST(img, "bootsect");
    FerryVM *src = start_bootsect_vm(NULL);
    ferry_serial_wait_marker(src, "A", 30000);
    FerryVM *dst = ferry_vm_start("-accel qtest -m %d -drive file=%s,format=raw "
                                  "-incoming tcp:127.0.0.1:0", BOOTSECT_RAM_MB, img);
    g_autofree char *uri = mig_dest_tcp_uri(dst);
    mig_migrate(src, uri);
    g_assert_cmpint(ferry_vm_wait_exit(dst, 30000), ==, 1);
    g_autofree char *log = ferry_vm_log(dst);
    g_autofree char *want = g_strdup_printf("accelerator mismatch: the source ran on %s, "
                                            "this VM runs on qtest", ferry_test_accel());
    if (!strstr(log, want)) {
        g_printerr("destination said: %s\n", log);
    }
    g_assert_nonnull(strstr(log, want));
    ferry_vm_free(dst);
    g_autofree char *end = mig_wait_end(src, 30000);
    g_assert_cmpstr(end, ==, "failed");
    assert_source_recovers(src);
    g_assert_cmpint(ferry_vm_quit(src), ==, 0);
}

static void restore_expect_failure(const char *path, const char *message)
{
    const char *img = ferry_guest_path("bootsect");
    FerryVM *dst = ferry_vm_start("-m %d -drive file=%s,format=raw -incoming defer",
                                  BOOTSECT_RAM_MB, img);
    /* The reply may or may not beat the failure that ends the process. */
    ferry_qmp_send(dst, "{'execute': 'migrate-incoming', 'arguments': {'uri': 'file:%s'}}",
                   path);
    g_assert_cmpint(ferry_vm_wait_exit(dst, 30000), ==, 1);
    g_autofree char *log = ferry_vm_log(dst);
    if (!strstr(log, message)) {
        g_printerr("destination said: %s\n", log);
    }
    g_assert_nonnull(strstr(log, message));
    ferry_vm_free(dst);
}

static void test_corrupt_streams(void)
{
    FERRY_REQUIRE_ACCEL();
    FERRY_REQUIRE_GUEST(img, "bootsect");
    (void)img;
    FerryVM *src = start_bootsect_vm(NULL);
    ferry_serial_wait_count(src, "B", 1, 30000);
    ferry_qmp_ok(src, "{'execute': 'stop'}");
    g_autofree char *path = g_build_filename(ferry_tmp_dir(), "good.ferry", NULL);
    mig_set_param_int(src, "max-bandwidth", 8LL << 30);
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    mig_migrate(src, uri);
    g_autofree char *end = mig_wait_end(src, 60000);
    g_assert_cmpstr(end, ==, "completed");
    g_assert_cmpint(ferry_vm_quit(src), ==, 0);

    g_autofree gchar *good = NULL;
    gsize len = 0;
    g_assert_true(g_file_get_contents(path, &good, &len, NULL));
    g_assert_cmpuint(len, >, 4096);
    g_autofree char *bad_path = g_build_filename(ferry_tmp_dir(), "bad.ferry", NULL);

    /* Not a Ferry stream at all. */
    g_assert_true(g_file_set_contents(bad_path, "garbage garbage garbage", -1, NULL));
    restore_expect_failure(bad_path, "not a Ferry migration stream");

    /* Truncated half way. */
    g_assert_true(g_file_set_contents(bad_path, good, (gssize)(len / 2), NULL));
    restore_expect_failure(bad_path, "unexpected end of stream");

    /* A RAM record pointing far outside guest RAM (the first record after START). */
    g_autofree gchar *evil = g_memdup2(good, len);
    /*
     * Find RAM's first PART or END section (0x02/0x03) after the START
     * footer and overwrite its first record's offset with 1 TiB | PAGE.
     */
    gsize pos = 0;
    for (gsize i = 8; i + 14 < len; i++) {
        if ((guint8)evil[i] == 0x7e &&
            ((guint8)evil[i + 5] == 0x02 || (guint8)evil[i + 5] == 0x03)) {
            pos = i + 10;
            break;
        }
    }
    g_assert_cmpuint(pos, >, 0);
    static const guint8 far_page[8] = { 0, 0, 1, 0, 0, 0, 0, 0x08 };
    memcpy(evil + pos, far_page, 8);
    g_assert_true(g_file_set_contents(bad_path, evil, (gssize)len, NULL));
    restore_expect_failure(bad_path, "outside");

    /* The good stream still restores. */
    g_autofree char *restore = g_strdup_printf("-incoming file:%s", path);
    FerryVM *dst = start_bootsect_vm(restore);
    static const char *const done[] = { "completed", NULL };
    g_autofree char *dend = mig_wait_status(dst, done, 30000);
    /* The snapshot was taken of a stopped guest: it arrives stopped. */
    assert_runstate(dst, "paused");
    ferry_qmp_ok(dst, "{'execute': 'cont'}");
    assert_bootsect_runs(dst);
    g_assert_cmpint(ferry_vm_quit(dst), ==, 0);
}

int main(int argc, char **argv)
{
    static const TkOpts tk1 = { 1, true };
    static const TkOpts tk4 = { 4, false };

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/migration/bootsect/unix", test_bootsect_unix);
    g_test_add_func("/migration/bootsect/tcp", test_bootsect_tcp);
    g_test_add_data_func("/migration/testkernel/smp1-devices", &tk1, test_testkernel);
    g_test_add_data_func("/migration/testkernel/smp4", &tk4, test_testkernel);
    g_test_add_func("/migration/save-restore/file-running", test_file_running);
    g_test_add_func("/migration/save-restore/file-paused", test_file_paused);
    g_test_add_func("/migration/save-restore/exec", test_exec);
    g_test_add_func("/migration/failure/cancel", test_cancel);
    g_test_add_func("/migration/failure/dest-killed", test_dest_killed);
    g_test_add_func("/migration/failure/refused-and-bad-uris",
                    test_connection_refused_and_bad_uris);
    g_test_add_func("/migration/failure/ram-size-mismatch", test_ram_size_mismatch);
    g_test_add_func("/migration/failure/accel-mismatch", test_accel_mismatch);
    g_test_add_func("/migration/failure/corrupt-streams", test_corrupt_streams);
    return g_test_run();
}
