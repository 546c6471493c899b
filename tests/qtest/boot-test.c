/*
 * The test kernel on Ferry: boots through PVH with 1 and 4 vCPUs, every
 * vCPU runs the verifying workload, timer interrupts tick; stop freezes
 * it and cont resumes it; the guest's own power-off and reboot follow
 * -no-shutdown and -no-reboot; the power button reaches it.
 */
#include "testkernel.h"

static void test_boot_smp(gconstpointer data)
{
    int smp = GPOINTER_TO_INT(data);
    char token[17];
    Heartbeat a, b;

    NEED_TESTKERNEL(kernel);
    g_autofree char *append = g_strdup_printf("mem=64 cpus=%d", smp);
    FerryVM *vm = testkernel_start(kernel, NULL, smp, append, token);

    g_autofree char *up = ferry_serial_wait(vm, "CPUS ", 20000);
    g_autofree char *want_up = g_strdup_printf("CPUS %d up", smp);
    g_assert_cmpstr(up, ==, want_up);
    g_autofree char *wl = ferry_serial_wait(vm, "WORKLOAD ", 20000);
    g_autofree char *want_cpus = g_strdup_printf("cpus=%d", smp);
    g_assert_nonnull(strstr(wl, want_cpus));

    g_autofree char *ok1 = ferry_serial_wait(vm, "VERIFY OK", 30000);
    heartbeat_next(vm, &a);
    g_assert_cmpstr(a.token, ==, token);
    /* Timer interrupts tick on every vCPU and the workload advances. */
    heartbeat_wait_progress(vm, &a, &b, true, 30000);
    g_assert_false(ferry_serial_contains(vm, "VERIFY FAIL"));

    g_autoptr(JsonNode) cpus = ferry_qmp_ok(vm, "{'execute': 'query-cpus-fast'}");
    g_assert_cmpuint(json_array_get_length(json_node_get_array(cpus)), ==, (guint)smp);
    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);
}

static void test_stop_cont(void)
{
    char token[17];
    Heartbeat before, after;

    NEED_TESTKERNEL(kernel);
    FerryVM *vm = testkernel_start(kernel, NULL, 2, "mem=32 cpus=2", token);
    heartbeat_next(vm, &before);

    ferry_qmp_ok(vm, "{'execute': 'stop'}");
    g_autoptr(JsonNode) stop = ferry_qmp_wait_event(vm, "STOP", 5000);
    size_t mark = ferry_serial_mark(vm);
    /* A window several heartbeats long passes without one. */
    g_autoptr(JsonNode) none = ferry_qmp_try_wait_event(vm, "RESUME", 500);
    g_assert_null(none);
    g_assert_null(ferry_serial_try_wait(vm, "HB token=", 1));
    g_assert_cmpuint(ferry_serial_mark(vm), ==, mark);

    ferry_qmp_ok(vm, "{'execute': 'cont'}");
    g_autoptr(JsonNode) resume = ferry_qmp_wait_event(vm, "RESUME", 5000);
    /* Its timers tick again (a heartbeat at once may still show the old count). */
    gint64 deadline = g_get_monotonic_time() + (gint64)ferry_timeout(20000) * 1000;
    do {
        heartbeat_next(vm, &after);
        g_assert_cmpstr(after.token, ==, token);
    } while (after.ticks <= before.ticks && g_get_monotonic_time() < deadline);
    g_assert_cmpuint(after.ticks, >, before.ticks);
    g_autofree char *ok = ferry_serial_wait(vm, "VERIFY OK", 30000);
    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);
}

static void test_guest_poweroff(void)
{
    char token[17];

    NEED_TESTKERNEL(kernel);
    FerryVM *vm = testkernel_start(kernel, NULL, 1, "mem=16", token);
    g_autofree char *ok = ferry_serial_wait(vm, "VERIFY OK", 30000);
    ferry_serial_write(vm, "poweroff\n");
    g_autoptr(JsonNode) ev = ferry_qmp_wait_event(vm, "SHUTDOWN", 20000);
    g_assert_cmpstr(ferry_json_get_str(ev, "data.reason"), ==, "guest-shutdown");
    g_assert_true(ferry_json_get_bool(ev, "data.guest"));
    g_assert_cmpint(ferry_vm_wait_exit(vm, 10000), ==, 0);
    ferry_vm_free(vm);

    /* -no-shutdown: the VM stays, stopped in the shutdown state. */
    vm = testkernel_start(kernel, "-no-shutdown", 1, "mem=16", token);
    g_autofree char *ok2 = ferry_serial_wait(vm, "VERIFY OK", 30000);
    ferry_serial_write(vm, "poweroff\n");
    g_autoptr(JsonNode) ev2 = ferry_qmp_wait_event(vm, "SHUTDOWN", 20000);
    g_autoptr(JsonNode) st = ferry_qmp_ok(vm, "{'execute': 'query-status'}");
    g_assert_cmpstr(ferry_json_get_str(st, "status"), ==, "shutdown");
    g_assert_true(ferry_vm_is_running(vm));
    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);
}

static void test_guest_reboot(void)
{
    char token[17];

    NEED_TESTKERNEL(kernel);
    FerryVM *vm = testkernel_start(kernel, NULL, 2, "mem=16 cpus=2", token);
    g_autofree char *ok = ferry_serial_wait(vm, "VERIFY OK", 30000);
    ferry_serial_write(vm, "reboot\n");
    g_autoptr(JsonNode) ev = ferry_qmp_wait_event(vm, "RESET", 20000);
    g_assert_cmpstr(ferry_json_get_str(ev, "data.reason"), ==, "guest-reset");
    /* A fresh boot: new token, both vCPUs back, the workload verifies again. */
    g_autofree char *boot = ferry_serial_wait(vm, "FERRY-TESTKERNEL boot token=", 30000);
    g_assert_null(strstr(boot, token));
    g_autofree char *up = ferry_serial_wait(vm, "CPUS 2 up", 20000);
    g_autofree char *ok2 = ferry_serial_wait(vm, "VERIFY OK", 30000);
    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);

    /* -no-reboot: the guest's reboot ends the VM. */
    vm = testkernel_start(kernel, "-no-reboot", 1, "mem=16", token);
    g_autofree char *ok3 = ferry_serial_wait(vm, "VERIFY OK", 30000);
    ferry_serial_write(vm, "reboot\n");
    g_autoptr(JsonNode) ev2 = ferry_qmp_wait_event(vm, "SHUTDOWN", 20000);
    g_assert_cmpstr(ferry_json_get_str(ev2, "data.reason"), ==, "guest-reset");
    g_assert_cmpint(ferry_vm_wait_exit(vm, 10000), ==, 0);
    ferry_vm_free(vm);
}

static void test_power_button(void)
{
    char token[17];

    NEED_TESTKERNEL(kernel);
    FerryVM *vm = testkernel_start(kernel, NULL, 1, "mem=16", token);
    g_autofree char *ok = ferry_serial_wait(vm, "VERIFY OK", 30000);
    ferry_qmp_ok(vm, "{'execute': 'system_powerdown'}");
    g_autoptr(JsonNode) pd = ferry_qmp_wait_event(vm, "POWERDOWN", 5000);
    g_autofree char *btn = ferry_serial_wait(vm, "POWER BUTTON", 20000);
    g_autoptr(JsonNode) ev = ferry_qmp_wait_event(vm, "SHUTDOWN", 20000);
    g_assert_cmpstr(ferry_json_get_str(ev, "data.reason"), ==, "guest-shutdown");
    g_assert_cmpint(ferry_vm_wait_exit(vm, 10000), ==, 0);
    ferry_vm_free(vm);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_data_func("/boot/testkernel/smp1", GINT_TO_POINTER(1), test_boot_smp);
    g_test_add_data_func("/boot/testkernel/smp4", GINT_TO_POINTER(4), test_boot_smp);
    g_test_add_func("/boot/testkernel/stop-cont", test_stop_cont);
    g_test_add_func("/boot/testkernel/guest-poweroff", test_guest_poweroff);
    g_test_add_func("/boot/testkernel/guest-reboot", test_guest_reboot);
    g_test_add_func("/boot/testkernel/power-button", test_power_button);
    return g_test_run();
}
