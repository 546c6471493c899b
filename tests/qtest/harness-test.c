/*
 * The harness checked against a real VMM: QMP commands and events, qtest
 * memory access, serial capture and exit handling, with the boot-sector
 * guest as the workload.
 */
#include <string.h>

#include "libferry.h"

#define BOOTSECT_MEM_START  0x00100000ULL   /* 1 MiB */
#define BOOTSECT_MEM_END    0x06400000ULL   /* 100 MiB */
#define PAGE_SIZE           0x1000ULL
#define SAMPLE_STEP         0x100000ULL     /* one page per MiB */

typedef struct ByteWatch {
    FerryVM *vm;
    uint64_t addr;
    uint8_t first;
} ByteWatch;

static bool byte_changed(void *opaque)
{
    ByteWatch *w = opaque;
    return ferry_readb(w->vm, w->addr) != w->first;
}

static void assert_byte_advances(FerryVM *vm, uint64_t addr)
{
    ByteWatch w = { vm, addr, ferry_readb(vm, addr) };

    g_assert_true(ferry_wait_until(byte_changed, &w, 10000));
}

static void assert_status(FerryVM *vm, const char *status, bool running)
{
    g_autoptr(JsonNode) ret = ferry_qmp_ok(vm, "{'execute': 'query-status'}");

    g_assert_cmpstr(ferry_json_get_str(ret, "status"), ==, status);
    g_assert_cmpint(ferry_json_get_bool(ret, "running"), ==, running);
}

/*
 * With the guest stopped mid-pass, pages below the pass's cursor were
 * incremented once more than pages above it: going up through the range,
 * the first byte drops by one at most once and never changes otherwise.
 */
static void assert_pass_pattern(FerryVM *vm)
{
    uint8_t first = ferry_readb(vm, BOOTSECT_MEM_START);
    bool dropped = false;

    for (uint64_t a = BOOTSECT_MEM_START; a < BOOTSECT_MEM_END;
         a += SAMPLE_STEP) {
        uint8_t diff = (uint8_t)(first - ferry_readb(vm, a));
        if (diff == 1 && !dropped) {
            dropped = true;
            first--;
            diff = 0;
        }
        g_assert_cmpuint(diff, ==, 0);
    }
}

static void test_bootsect(void)
{
    g_autoptr(JsonNode) ev = NULL;
    FerryVM *vm;
    unsigned passes;

    FERRY_REQUIRE_ACCEL();
    FERRY_REQUIRE_GUEST(img, "bootsect");

    vm = ferry_vm_start("-m 128 -drive file=%s,format=raw", img);
    ferry_serial_wait_marker(vm, "A", 60000);
    ferry_serial_wait_count(vm, "B", 2, 30000);
    g_assert_cmpuint(ferry_serial_count(vm, "A"), ==, 1);
    assert_status(vm, "running", true);
    assert_byte_advances(vm, 0x2000000);
    assert_byte_advances(vm, BOOTSECT_MEM_END - PAGE_SIZE);

    json_node_unref(ferry_qmp_ok(vm, "{'execute': 'stop'}"));
    ev = ferry_qmp_wait_event(vm, "STOP", 5000);
    g_assert_true(ferry_json_has(ev, "timestamp.seconds"));
    assert_status(vm, "paused", false);
    assert_pass_pattern(vm);

    passes = ferry_serial_count(vm, "B");
    json_node_unref(ferry_qmp_ok(vm, "{'execute': 'cont'}"));
    g_clear_pointer(&ev, json_node_unref);
    ev = ferry_qmp_wait_event(vm, "RESUME", 5000);
    assert_byte_advances(vm, BOOTSECT_MEM_START);
    ferry_serial_wait_count(vm, "B", passes + 1, 30000);

    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);
}

static void test_qmp_qtest(void)
{
    static const uint8_t pattern[] = "ferry harness pattern\x01\x80\xff";
    uint8_t buf[sizeof(pattern)];
    g_autoptr(JsonNode) reply = NULL;
    g_autoptr(JsonNode) ev = NULL;
    g_autofree char *desc = NULL;
    FerryVM *vm;

    FERRY_REQUIRE_ACCEL();

    /* -S: no guest code runs, so guest memory is the test's alone. */
    vm = ferry_vm_start("-S -m 64");
    assert_status(vm, "prelaunch", false);

    desc = ferry_qmp_fail(vm, "CommandNotFound",
                          "{'execute': 'no-such-command'}");
    g_assert_nonnull(strstr(desc, "no-such-command"));

    ferry_qmp_send_raw(vm, "{\"execute\": }\n", 14);
    reply = ferry_qmp_receive(vm, 5000);
    g_assert_cmpstr(ferry_json_get_str(reply, "error.class"), ==,
                    "GenericError");

    ferry_writeb(vm, 0x200000, 0x5a);
    g_assert_cmphex(ferry_readb(vm, 0x200000), ==, 0x5a);
    ferry_writel(vm, 0x200004, 0xdeadbeef);
    g_assert_cmphex(ferry_readl(vm, 0x200004), ==, 0xdeadbeef);
    g_assert_cmphex(ferry_readw(vm, 0x200004), ==, 0xbeef);
    ferry_writeq(vm, 0x200008, 0x0123456789abcdefULL);
    g_assert_cmphex(ferry_readq(vm, 0x200008), ==, 0x0123456789abcdefULL);
    ferry_memwrite(vm, 0x300ffa, pattern, sizeof(pattern));
    ferry_memread(vm, 0x300ffa, buf, sizeof(buf));
    g_assert_cmpmem(buf, sizeof(buf), pattern, sizeof(pattern));

    json_node_unref(ferry_qmp_ok(vm, "{'execute': 'cont'}"));
    ev = ferry_qmp_wait_event(vm, "RESUME", 5000);
    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);
}

static void test_bad_option(void)
{
    g_autoptr(FerryRunResult) r = ferry_run(10000, "-no-such-option");

    g_assert_false(r->timed_out);
    g_assert_cmpint(r->exit_code, !=, 0);
    g_assert_cmpint(r->term_signal, ==, 0);
    g_assert_nonnull(strstr(r->err, "no-such-option"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/harness/bad-option", test_bad_option);
    g_test_add_func("/harness/qmp-qtest", test_qmp_qtest);
    g_test_add_func("/harness/bootsect", test_bootsect);
    return g_test_run();
}
