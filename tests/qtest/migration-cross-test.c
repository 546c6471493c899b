/*
 * Migration between accelerators: the test kernel on KVM with the
 * portable CPU model (-cpu qemu64) moves to the software CPU and back,
 * keeping its boot token, its timers and every page; combinations that
 * would change what the guest sees are refused at setup with a message
 * naming the difference, and the source runs on.
 *
 * Needs /dev/kvm (skipped, saying so, elsewhere); runs its VMs on both
 * accelerators whatever FERRY_TEST_ACCEL says.
 */
#include <string.h>

#include "migration-helpers.h"
#include "testkernel.h"

#define TK_APPEND "mem=64 cpus=2 rate=20000"

#define REQUIRE_KVM()                                               \
    do {                                                            \
        g_autofree char *why_ = NULL;                               \
        if (!ferry_kvm_available(&why_)) {                          \
            g_test_skip(why_);                                      \
            return;                                                 \
        }                                                           \
    } while (0)

/* After migration: same boot token, ticks advancing, verified passes, no failure. */
static void tk_assert_continues(FerryVM *vm, const char *token)
{
    Heartbeat a, b;
    heartbeat_next(vm, &a);
    g_assert_cmpstr(a.token, ==, token);
    g_autofree char *ok1 = ferry_serial_wait(vm, "VERIFY OK", 60000);
    g_autofree char *ok2 = ferry_serial_wait(vm, "VERIFY OK", 60000);
    heartbeat_next(vm, &b);
    g_assert_cmpstr(b.token, ==, token);
    g_assert_cmpuint(b.ticks, >, a.ticks);
    g_assert_cmpuint(b.pass, >, a.pass);
    g_assert_false(ferry_serial_contains(vm, "VERIFY FAIL"));
    g_assert_false(ferry_serial_contains(vm, "FAULT"));
}

static FerryVM *tk_start(const char *kernel, const char *accel_cpu, char token[17])
{
    return testkernel_start(kernel, accel_cpu, 2, TK_APPEND, token);
}

static FerryVM *tk_incoming(const char *kernel, const char *accel_cpu)
{
    return ferry_vm_start("%s -m 512 -smp 2 -kernel %s -append '" TK_APPEND "' "
                          "-incoming tcp:127.0.0.1:0", accel_cpu, kernel);
}

/* Migrate @src into a new VM on @accel_cpu; NULL (with *@log) when the destination refused. */
static FerryVM *tk_migrate(FerryVM *src, const char *kernel, const char *accel_cpu, char **log)
{
    FerryVM *dst = tk_incoming(kernel, accel_cpu);
    g_autofree char *uri = mig_dest_tcp_uri(dst);
    mig_set_param_int(src, "max-bandwidth", 8LL << 30);
    mig_migrate(src, uri);
    g_autofree char *end = mig_wait_end(src, 120000);
    if (strcmp(end, "completed") == 0) {
        return dst;
    }
    g_assert_cmpstr(end, ==, "failed");
    g_assert_cmpint(ferry_vm_wait_exit(dst, 30000), ==, 1);
    *log = ferry_vm_log(dst);
    ferry_vm_free(dst);
    return NULL;
}

/* The source of a refused migration runs on: its heartbeats go on. */
static void assert_source_runs(FerryVM *src, const char *token)
{
    assert_runstate(src, "running");
    Heartbeat a, b;
    heartbeat_next(src, &a);
    heartbeat_next(src, &b);
    g_assert_cmpstr(b.token, ==, token);
    g_assert_cmpuint(b.ticks, >, a.ticks);
}

/* KVM (-cpu qemu64) -> tcg -> KVM: the guest never notices. */
static void test_kvm_tcg_kvm(void)
{
    char token[17];
    g_autofree char *log = NULL;
    REQUIRE_KVM();
    FERRY_REQUIRE_GUEST(kernel, "kernel");

    FerryVM *a = tk_start(kernel, "-accel kvm -cpu qemu64", token);
    g_autofree char *ok = ferry_serial_wait(a, "VERIFY OK", 30000);

    FerryVM *b = tk_migrate(a, kernel, "-accel tcg -cpu qemu64", &log);
    if (!b) {
        g_printerr("tcg destination said: %s\n", log);
    }
    g_assert_nonnull(b);
    tk_assert_continues(b, token);
    g_assert_cmpint(ferry_vm_quit(a), ==, 0);

    FerryVM *c = tk_migrate(b, kernel, "-accel kvm -cpu qemu64", &log);
    if (!c) {
        g_printerr("KVM destination said: %s\n", log);
    }
    g_assert_nonnull(c);
    tk_assert_continues(c, token);
    g_assert_cmpint(ferry_vm_quit(b), ==, 0);
    g_assert_cmpint(ferry_vm_quit(c), ==, 0);
}

/*
 * KVM's host model offers what the software CPU lacks, and the guest
 * takes kvmclock there: the tcg destination refuses at setup, naming the
 * features (or kvmclock, on a host whose CPU tcg matches), and the source
 * runs on.
 */
static void test_refused_host_model(void)
{
    char token[17];
    g_autofree char *log = NULL;
    REQUIRE_KVM();
    FERRY_REQUIRE_GUEST(kernel, "kernel");

    FerryVM *a = tk_start(kernel, "-accel kvm -cpu host", token);
    g_autofree char *ok = ferry_serial_wait(a, "VERIFY OK", 30000);
    FerryVM *b = tk_migrate(a, kernel, "-accel tcg", &log);
    g_assert_null(b);
    if (!strstr(log, "CPU features the source offered and this tcg CPU lacks: ") &&
        !strstr(log, "the source's CPU offers kvmclock")) {
        g_printerr("tcg destination said: %s\n", log);
        g_assert_not_reached();
    }
    g_test_message("refused: %s", log);
    assert_source_runs(a, token);
    g_assert_cmpint(ferry_vm_quit(a), ==, 0);
}

/*
 * A guest that booted on the software CPU: KVM takes it where it offers
 * every CPUID feature the software CPU did and can run the TSC at 1 GHz
 * (TSC scaling); elsewhere it refuses, naming the missing features or
 * both TSC rates. The source runs on either way.
 */
static void test_tcg_to_kvm_tsc(void)
{
    char token[17];
    g_autofree char *log = NULL;
    REQUIRE_KVM();
    FERRY_REQUIRE_GUEST(kernel, "kernel");

    FerryVM *a = tk_start(kernel, "-accel tcg -cpu qemu64", token);
    g_autofree char *ok = ferry_serial_wait(a, "VERIFY OK", 60000);
    FerryVM *b = tk_migrate(a, kernel, "-accel kvm -cpu qemu64", &log);
    if (b) {
        g_test_message("this host's KVM scales the TSC to the source's 1 GHz");
        tk_assert_continues(b, token);
        g_assert_cmpint(ferry_vm_quit(b), ==, 0);
    } else {
        if (!strstr(log, "TSC rate: the source ran at 1000000 kHz, this VM at ") &&
            !strstr(log, "CPU features the source offered and this kvm CPU lacks: ")) {
            g_printerr("KVM destination said: %s\n", log);
            g_assert_not_reached();
        }
        g_test_message("refused: %s", log);
        assert_source_runs(a, token);
    }
    g_assert_cmpint(ferry_vm_quit(a), ==, 0);
}

/*
 * A snapshot of a KVM guest (-cpu qemu64) restores on tcg. The same file
 * with another TSC rate in its configuration (as a source running at 1
 * GHz would write it) is refused by KVM where it cannot scale its TSC,
 * naming both rates.
 */
static void test_file_tsc_rate(void)
{
    char token[17];
    REQUIRE_KVM();
    FERRY_REQUIRE_GUEST(kernel, "kernel");

    FerryVM *a = tk_start(kernel, "-accel kvm -cpu qemu64", token);
    g_autofree char *ok = ferry_serial_wait(a, "VERIFY OK", 30000);
    g_autofree char *path = g_build_filename(ferry_tmp_dir(), "cross.ferry", NULL);
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    mig_set_param_int(a, "max-bandwidth", 8LL << 30);
    mig_migrate(a, uri);
    g_autofree char *end = mig_wait_end(a, 60000);
    g_assert_cmpstr(end, ==, "completed");
    g_assert_cmpint(ferry_vm_quit(a), ==, 0);

    /* On tcg the guest carries on. */
    FerryVM *b = ferry_vm_start("-accel tcg -cpu qemu64 -m 512 -smp 2 -kernel %s -append '"
                                TK_APPEND "' -incoming file:%s", kernel, path);
    static const char *const done[] = { "completed", NULL };
    g_autofree char *dend = mig_wait_status(b, done, 60000);
    tk_assert_continues(b, token);
    g_assert_cmpint(ferry_vm_quit(b), ==, 0);

    /*
     * The configuration section (type, be32 length, payload after the
     * 8-byte header) ends with the guest CPU block: ..., TSC kHz (be32),
     * kvmclock (1 byte).
     */
    gchar *data;
    gsize len;
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    g_assert_cmpuint(len, >, 13);
    g_assert_cmpuint((uint8_t)data[8], ==, 0x07);
    uint32_t cfg_len = (uint32_t)(uint8_t)data[9] << 24 | (uint32_t)(uint8_t)data[10] << 16 |
                       (uint32_t)(uint8_t)data[11] << 8 | (uint8_t)data[12];
    uint8_t *tsc = (uint8_t *)data + 13 + cfg_len - 5;
    uint32_t khz = (uint32_t)tsc[0] << 24 | (uint32_t)tsc[1] << 16 | (uint32_t)tsc[2] << 8 | tsc[3];
    g_test_message("the KVM guest's TSC ran at %u kHz", khz);
    g_assert_cmpuint(khz, >, 0);
    const uint32_t other = 1000000;
    tsc[0] = other >> 24;
    tsc[1] = (other >> 16) & 0xff;
    tsc[2] = (other >> 8) & 0xff;
    tsc[3] = other & 0xff;
    g_assert_true(g_file_set_contents(path, data, (gssize)len, NULL));
    g_free(data);
    FerryVM *c = ferry_vm_start("-accel kvm -cpu qemu64 -m 512 -smp 2 -kernel %s -append '"
                                TK_APPEND "' -incoming defer", kernel);
    /* The reply may or may not beat the failure that ends the process. */
    ferry_qmp_send(c, "{'execute': 'migrate-incoming', 'arguments': {'uri': 'file:%s'}}",
                   path);
    if (khz == other) {
        g_test_message("this host's TSC runs at 1 GHz: nothing to refuse");
        mig_wait_status(c, done, 60000);
        g_assert_cmpint(ferry_vm_quit(c), ==, 0);
        return;
    }
    int st = ferry_vm_wait_exit(c, 30000);
    g_autofree char *log = ferry_vm_log(c);
    if (st == -1) {
        /* Only a host that scales its TSC takes it. */
        g_test_message("this host's KVM scales the TSC to 1 GHz");
        tk_assert_continues(c, token);
        g_assert_cmpint(ferry_vm_quit(c), ==, 0);
        return;
    }
    ferry_vm_free(c);
    if (!strstr(log, "TSC rate: the source ran at 1000000 kHz, this VM at ")) {
        g_printerr("KVM destination (exit %d) said: %s\n", st, log);
        g_assert_not_reached();
    }
    g_test_message("refused: %s", log);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/migration/cross/kvm-tcg-kvm", test_kvm_tcg_kvm);
    g_test_add_func("/migration/cross/refused/host-model", test_refused_host_model);
    g_test_add_func("/migration/cross/tcg-to-kvm-tsc", test_tcg_to_kvm_tsc);
    g_test_add_func("/migration/cross/file-tsc-rate", test_file_tsc_rate);
    return g_test_run();
}
