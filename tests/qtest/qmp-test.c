/*
 * QMP and HMP as clients see them: the greeting and negotiation, every
 * core command and event, error classes and texts for bad input, several
 * clients at once, HMP over its own socket and through
 * human-monitor-command. The boot-sector guest runs throughout, so each
 * check also shows the VM unaffected by bad input.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "libferry.h"

static FerryVM *start_bootsect(const char *extra)
{
    const char *img = ferry_guest_path("bootsect");
    g_assert_nonnull(img);
    FerryVM *vm = ferry_vm_start("-m 128 -drive file=%s,format=raw %s", img, extra);
    ferry_serial_wait_marker(vm, "A", 30000);
    return vm;
}

static void assert_guest_runs(FerryVM *vm)
{
    unsigned passes = ferry_serial_count(vm, "B");
    ferry_serial_wait_count(vm, "B", passes + 1, 30000);
}

#define NEED_BOOTSECT() \
    FERRY_REQUIRE_ACCEL(); \
    FERRY_REQUIRE_GUEST(img_, "bootsect"); \
    (void)img_

static void test_queries(void)
{
    NEED_BOOTSECT();
    FerryVM *vm = start_bootsect("-smp 2 -name testvm");

    g_autoptr(JsonNode) ver = ferry_qmp_ok(vm, "{'execute': 'query-version'}");
    g_assert_cmpint(ferry_json_get_int(ver, "qemu.major"), ==, 0);
    g_assert_cmpint(ferry_json_get_int(ver, "qemu.minor"), ==, 1);
    g_assert_nonnull(strstr(ferry_json_get_str(ver, "package"), "ferry"));

    g_autoptr(JsonNode) name = ferry_qmp_ok(vm, "{'execute': 'query-name'}");
    g_assert_cmpstr(ferry_json_get_str(name, "name"), ==, "testvm");

    /* enabled: KVM runs this VM; present: /dev/kvm works on this host. */
    g_autoptr(JsonNode) kvm = ferry_qmp_ok(vm, "{'execute': 'query-kvm'}");
    g_assert_cmpint(ferry_json_get_bool(kvm, "enabled"), ==,
                    strcmp(ferry_test_accel(), "kvm") == 0);
    g_assert_cmpint(ferry_json_get_bool(kvm, "present"), ==, ferry_kvm_available(NULL));

    g_autoptr(JsonNode) cpus = ferry_qmp_ok(vm, "{'execute': 'query-cpus-fast'}");
    JsonArray *arr = json_node_get_array(cpus);
    g_assert_cmpuint(json_array_get_length(arr), ==, 2);
    for (guint i = 0; i < 2; i++) {
        g_autofree char *idx = g_strdup_printf("%u.cpu-index", i);
        g_autofree char *tid = g_strdup_printf("%u.thread-id", i);
        g_autofree char *tgt = g_strdup_printf("%u.target", i);
        g_assert_cmpint(ferry_json_get_int(cpus, idx), ==, i);
        g_assert_cmpint(ferry_json_get_int(cpus, tid), >, 0);
        g_assert_cmpstr(ferry_json_get_str(cpus, tgt), ==, "x86_64");
    }

    /* query-commands lists every command the issue promises. */
    static const char *const wanted[] = {
        "qmp_capabilities", "query-version", "query-commands", "query-status", "query-name",
        "query-kvm", "query-cpus-fast", "stop", "cont", "quit", "system_reset",
        "system_powerdown", "human-monitor-command",
    };
    g_autoptr(JsonNode) cmds = ferry_qmp_ok(vm, "{'execute': 'query-commands'}");
    g_autofree char *text = ferry_json_to_string(cmds);
    for (unsigned i = 0; i < G_N_ELEMENTS(wanted); i++) {
        g_autofree char *needle = g_strdup_printf("\"%s\"", wanted[i]);
        g_assert_nonnull(strstr(text, needle));
    }

    /* A reply carries the request's id. */
    g_autoptr(JsonNode) r = ferry_qmp(vm, "{'execute': 'query-status', 'id': 'abc-42'}");
    g_assert_cmpstr(ferry_json_get_str(r, "id"), ==, "abc-42");
    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);
}

static void test_stop_cont_events(void)
{
    NEED_BOOTSECT();
    FerryVM *vm = start_bootsect("");

    ferry_qmp_ok(vm, "{'execute': 'stop'}");
    g_autoptr(JsonNode) stop = ferry_qmp_wait_event(vm, "STOP", 5000);
    g_assert_true(ferry_json_has(stop, "timestamp.seconds"));
    g_assert_true(ferry_json_has(stop, "timestamp.microseconds"));
    g_autoptr(JsonNode) st = ferry_qmp_ok(vm, "{'execute': 'query-status'}");
    g_assert_cmpstr(ferry_json_get_str(st, "status"), ==, "paused");

    /* Frozen: the guest's counter and serial output do not move. */
    uint8_t before = ferry_readb(vm, 0x3000000);
    unsigned passes = ferry_serial_count(vm, "B");
    g_autoptr(JsonNode) none = ferry_qmp_try_wait_event(vm, "RESUME", 300);
    g_assert_null(none);
    g_assert_cmpuint(ferry_readb(vm, 0x3000000), ==, before);
    g_assert_cmpuint(ferry_serial_count(vm, "B"), ==, passes);

    ferry_qmp_ok(vm, "{'execute': 'cont'}");
    g_autoptr(JsonNode) resume = ferry_qmp_wait_event(vm, "RESUME", 5000);
    /*
     * Two passes: the stop may have come after this pass went by
     * 0x3000000, so the pass that ends first leaves it as it was.
     */
    assert_guest_runs(vm);
    assert_guest_runs(vm);
    g_assert_cmpuint(ferry_readb(vm, 0x3000000), !=, before);
    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);
}

static void test_reset_powerdown(void)
{
    NEED_BOOTSECT();
    FerryVM *vm = start_bootsect("");

    ferry_qmp_ok(vm, "{'execute': 'system_reset'}");
    g_autoptr(JsonNode) reset = ferry_qmp_wait_event(vm, "RESET", 5000);
    g_assert_cmpstr(ferry_json_get_str(reset, "data.reason"), ==, "host-qmp-system-reset");
    g_assert_false(ferry_json_get_bool(reset, "data.guest"));
    /* The boot sector ran again from the start. */
    ferry_serial_wait_count(vm, "A", 2, 30000);

    ferry_qmp_ok(vm, "{'execute': 'system_powerdown'}");
    g_autoptr(JsonNode) pd = ferry_qmp_wait_event(vm, "POWERDOWN", 5000);
    /* The boot sector ignores the power button, as a guest may. */
    assert_guest_runs(vm);

    ferry_qmp_send(vm, "{'execute': 'quit'}");
    g_autoptr(JsonNode) bye = ferry_qmp_wait_event(vm, "SHUTDOWN", 5000);
    g_assert_cmpstr(ferry_json_get_str(bye, "data.reason"), ==, "host-qmp-quit");
    g_assert_cmpint(ferry_vm_wait_exit(vm, 10000), ==, 0);
    ferry_vm_free(vm);
}

/* The guest's own reset and power-off, through the machine's ports. */
static void test_guest_reset_poweroff_ports(void)
{
    NEED_BOOTSECT();

    /* Reset through port 0xcf9 reboots the guest... */
    FerryVM *vm = start_bootsect("");
    g_autofree char *r1 = ferry_qtest(vm, "outb 0xcf9 0x06");
    g_autoptr(JsonNode) reset = ferry_qmp_wait_event(vm, "RESET", 5000);
    g_assert_cmpstr(ferry_json_get_str(reset, "data.reason"), ==, "guest-reset");
    ferry_serial_wait_count(vm, "A", 2, 30000);
    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);

    /* ...and with -no-reboot ends the VM instead. */
    vm = start_bootsect("-no-reboot");
    g_autofree char *r2 = ferry_qtest(vm, "outb 0x64 0xfe");
    g_autoptr(JsonNode) down = ferry_qmp_wait_event(vm, "SHUTDOWN", 5000);
    g_assert_cmpstr(ferry_json_get_str(down, "data.reason"), ==, "guest-reset");
    g_assert_cmpint(ferry_vm_wait_exit(vm, 10000), ==, 0);
    ferry_vm_free(vm);

    /* ACPI soft-off ends the VM... */
    vm = start_bootsect("");
    g_autofree char *r3 = ferry_qtest(vm, "outw 0x604 0x2000");
    g_autoptr(JsonNode) off = ferry_qmp_wait_event(vm, "SHUTDOWN", 5000);
    g_assert_cmpstr(ferry_json_get_str(off, "data.reason"), ==, "guest-shutdown");
    g_assert_true(ferry_json_get_bool(off, "data.guest"));
    g_assert_cmpint(ferry_vm_wait_exit(vm, 10000), ==, 0);
    ferry_vm_free(vm);

    /* ...and with -no-shutdown leaves it stopped in the shutdown state. */
    vm = start_bootsect("-no-shutdown");
    g_autofree char *r4 = ferry_qtest(vm, "outw 0x604 0x2000");
    g_autoptr(JsonNode) off2 = ferry_qmp_wait_event(vm, "SHUTDOWN", 5000);
    g_autoptr(JsonNode) stop = ferry_qmp_wait_event(vm, "STOP", 5000);
    g_autoptr(JsonNode) st = ferry_qmp_ok(vm, "{'execute': 'query-status'}");
    g_assert_cmpstr(ferry_json_get_str(st, "status"), ==, "shutdown");
    /* cont refuses until a reset, which brings the guest back. */
    g_autofree char *why = ferry_qmp_fail(vm, "GenericError", "{'execute': 'cont'}");
    g_assert_nonnull(strstr(why, "Resetting the Virtual Machine is required"));
    ferry_qmp_ok(vm, "{'execute': 'system_reset'}");
    ferry_qmp_ok(vm, "{'execute': 'cont'}");
    ferry_serial_wait_count(vm, "A", 2, 30000);
    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);
}

typedef struct BadQmp {
    const char *request;
    const char *err_class;
    const char *desc;
} BadQmp;

static const BadQmp bad_requests[] = {
    { "{\"execute\": \"no-such-command\"}", "CommandNotFound",
      "The command no-such-command has not been found" },
    { "{\"execute\": \"human-monitor-command\"}", "GenericError",
      "Parameter 'command-line' is missing" },
    { "{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": 42}}",
      "GenericError", "Invalid parameter type for 'command-line', expected: string" },
    { "{\"execute\": \"query-status\", \"arguments\": {\"bogus\": 1}}", "GenericError",
      "Parameter 'bogus' is unexpected" },
    { "{\"execute\": 42}", "GenericError", "QMP input member 'execute' must be a string" },
    { "{\"arguments\": {}}", "GenericError", "QMP input lacks member 'execute'" },
    { "[1, 2]", "GenericError", "QMP input must be a JSON object" },
};

static void test_bad_input(void)
{
    NEED_BOOTSECT();
    FerryVM *vm = start_bootsect("");

    for (unsigned i = 0; i < G_N_ELEMENTS(bad_requests); i++) {
        const BadQmp *b = &bad_requests[i];
        g_autofree char *line = g_strdup_printf("%s\n", b->request);
        ferry_qmp_send_raw(vm, line, strlen(line));
        g_autoptr(JsonNode) reply = ferry_qmp_receive(vm, 5000);
        const char *desc = ferry_json_get_str(reply, "error.desc");
        if (!strstr(desc, b->desc)) {
            g_printerr("request %s: got '%s'\n", b->request, desc);
        }
        g_assert_cmpstr(ferry_json_get_str(reply, "error.class"), ==, b->err_class);
        g_assert_nonnull(strstr(desc, b->desc));
    }

    /* Malformed JSON: an error reply, then the connection still works. */
    static const char junk[] = "{'execute': 'query-status' ]\n";
    ferry_qmp_send_raw(vm, junk, strlen(junk));
    g_autoptr(JsonNode) err = ferry_qmp_receive(vm, 5000);
    g_assert_cmpstr(ferry_json_get_str(err, "error.class"), ==, "GenericError");
    g_assert_nonnull(strstr(ferry_json_get_str(err, "error.desc"), "JSON parse error"));
    g_autoptr(JsonNode) st = ferry_qmp_ok(vm, "{'execute': 'query-status'}");
    g_assert_cmpstr(ferry_json_get_str(st, "status"), ==, "running");

    /* Bad HMP input: a message naming it, nothing else happens. */
    g_autoptr(JsonNode) out = ferry_qmp_ok(vm, "{'execute': 'human-monitor-command', "
                                           "'arguments': {'command-line': 'frobnicate now'}}");
    g_assert_nonnull(strstr(json_node_get_string(out), "unknown command: 'frobnicate'"));

    assert_guest_runs(vm);
    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);
}

static void test_hmp(void)
{
    NEED_BOOTSECT();
    g_autofree char *hmp_path = g_build_filename(ferry_tmp_dir(), "hmp.sock", NULL);
    g_autofree char *extra = g_strdup_printf("-smp 2 -monitor unix:%s,server=on,wait=off",
                                             hmp_path);
    FerryVM *vm = start_bootsect(extra);

    /* Through QMP's human-monitor-command. */
    g_autoptr(JsonNode) st = ferry_qmp_ok(vm, "{'execute': 'human-monitor-command', "
                                          "'arguments': {'command-line': 'info status'}}");
    g_assert_nonnull(strstr(json_node_get_string(st), "VM status: running"));

    /* On its own socket, as a person would type it. */
    FerryLineClient *c = ferry_line_client_connect(hmp_path);
    g_autofree char *banner = ferry_line_client_read_until(c, "(qemu) ", 10000);
    g_assert_nonnull(strstr(banner, "monitor"));

    ferry_line_client_send(c, "help\n");
    g_autofree char *help = ferry_line_client_read_until(c, "(qemu) ", 10000);
    static const char *const cmds[] = {
        "info", "stop", "cont", "system_reset", "system_powerdown", "quit",
    };
    for (unsigned i = 0; i < G_N_ELEMENTS(cmds); i++) {
        g_assert_nonnull(strstr(help, cmds[i]));
    }

    ferry_line_client_send(c, "info version\n");
    g_autofree char *ver = ferry_line_client_read_until(c, "(qemu) ", 10000);
    g_assert_nonnull(strstr(ver, "0.1.0"));

    ferry_line_client_send(c, "info cpus\n");
    g_autofree char *cpus = ferry_line_client_read_until(c, "(qemu) ", 10000);
    g_assert_nonnull(strstr(cpus, "CPU #0"));
    g_assert_nonnull(strstr(cpus, "CPU #1"));

    ferry_line_client_send(c, "stop\n");
    g_autofree char *s1 = ferry_line_client_read_until(c, "(qemu) ", 10000);
    g_autoptr(JsonNode) stop = ferry_qmp_wait_event(vm, "STOP", 5000);
    ferry_line_client_send(c, "info status\n");
    g_autofree char *paused = ferry_line_client_read_until(c, "(qemu) ", 10000);
    g_assert_nonnull(strstr(paused, "VM status: paused"));

    ferry_line_client_send(c, "info registers\n");
    g_autofree char *regs = ferry_line_client_read_until(c, "(qemu) ", 10000);
    g_assert_nonnull(strstr(regs, "RIP="));
    g_assert_nonnull(strstr(regs, "CR0="));

    ferry_line_client_send(c, "c\n");
    g_autofree char *s2 = ferry_line_client_read_until(c, "(qemu) ", 10000);
    g_autoptr(JsonNode) resume = ferry_qmp_wait_event(vm, "RESUME", 5000);
    assert_guest_runs(vm);

    ferry_line_client_send(c, "frobnicate\n");
    g_autofree char *bad = ferry_line_client_read_until(c, "(qemu) ", 10000);
    g_assert_nonnull(strstr(bad, "unknown command: 'frobnicate'"));

    ferry_line_client_send(c, "q\n");
    g_assert_cmpint(ferry_vm_wait_exit(vm, 10000), ==, 0);
    ferry_line_client_free(c);
    ferry_vm_free(vm);
}

/* A second QMP client works alongside the first and both get events. */
static void test_two_clients(void)
{
    NEED_BOOTSECT();
    g_autofree char *path = g_build_filename(ferry_tmp_dir(), "qmp2.sock", NULL);
    g_autofree char *extra = g_strdup_printf("-qmp unix:%s,server=on,wait=off", path);
    FerryVM *vm = start_bootsect(extra);

    FerryLineClient *c = ferry_line_client_connect(path);
    g_autofree char *greeting = ferry_line_client_read_until(c, "\r\n", 10000);
    g_assert_true(g_str_has_prefix(greeting, "{\"QMP\": {\"version\": {\"qemu\":"));
    g_assert_nonnull(strstr(greeting, "\"capabilities\": [\"oob\"]"));

    ferry_line_client_send(c, "{\"execute\": \"query-status\"}\n");
    g_autofree char *refused = ferry_line_client_read_until(c, "\r\n", 10000);
    g_assert_nonnull(strstr(refused, "CommandNotFound"));
    g_assert_nonnull(strstr(refused, "qmp_capabilities"));

    ferry_line_client_send(c, "{\"execute\": \"qmp_capabilities\"}\n");
    g_autofree char *caps = ferry_line_client_read_until(c, "\r\n", 10000);
    g_assert_cmpstr(caps, ==, "{\"return\": {}}\r\n");

    /* A stop from the first client reaches the second as an event. */
    ferry_qmp_ok(vm, "{'execute': 'stop'}");
    g_autofree char *ev = ferry_line_client_read_until(c, "\r\n", 10000);
    g_assert_nonnull(strstr(ev, "\"event\": \"STOP\""));

    ferry_line_client_send(c, "{\"execute\": \"cont\", \"id\": 7}\n");
    g_autofree char *reply = ferry_line_client_read_until(c, "\"id\": 7}\r\n", 10000);
    g_assert_nonnull(strstr(reply, "RESUME"));
    g_autoptr(JsonNode) resume = ferry_qmp_wait_event(vm, "RESUME", 5000);
    assert_guest_runs(vm);

    ferry_line_client_free(c);
    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp/queries", test_queries);
    g_test_add_func("/qmp/stop-cont-events", test_stop_cont_events);
    g_test_add_func("/qmp/reset-powerdown", test_reset_powerdown);
    g_test_add_func("/qmp/guest-reset-poweroff-ports", test_guest_reset_poweroff_ports);
    g_test_add_func("/qmp/bad-input", test_bad_input);
    g_test_add_func("/qmp/two-clients", test_two_clients);
    g_test_add_func("/hmp/commands", test_hmp);
    return g_test_run();
}
