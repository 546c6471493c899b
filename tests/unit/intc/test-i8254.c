/*
 * The 8254: channel 2 counting under its gate with OUT2 on port 0x61 (as
 * the test kernel calibrates), latches, read-back, BCD and byte access,
 * channel 0 interrupting through the PIC, and its state across a save
 * and a load.
 */
#include <glib.h>

#include "hw/intc/i8259.h"
#include "hw/timer/host-timer.h"
#include "hw/timer/i8254.h"
#include "tests/unit/intc/intc-test.h"
#include "tests/unit/migration/vmstate-stream.h"
#include "tests/unit/migration/vmstate-stubs.h"

static uint16_t pit_latched(I8254State *s, int ch)
{
    i8254_ioport_write(s, 0x43, (uint8_t)(ch << 6));  /* counter latch */
    uint8_t lo = i8254_ioport_read(s, 0x40 + ch);
    uint8_t hi = i8254_ioport_read(s, 0x40 + ch);
    return (uint16_t)(lo | (hi << 8));
}

static void pit_count(I8254State *s, int ch, uint16_t count)
{
    i8254_ioport_write(s, 0x40 + ch, count & 0xff);
    i8254_ioport_write(s, 0x40 + ch, count >> 8);
}

static bool out2_high(void *opaque)
{
    return i8254_ioport_read(opaque, 0x61) & 0x20;
}

static void test_pit_channel2_gate(void)
{
    I8254State *s = i8254_new();
    const uint16_t latch = 11932;                   /* 10 ms */

    /* The test kernel's sequence: gate off, mode 0, count, then the gate. */
    i8254_ioport_write(s, 0x61, 0x00);
    i8254_ioport_write(s, 0x43, 0xb0);
    pit_count(s, 2, latch);
    g_assert_cmphex(i8254_ioport_read(s, 0x61) & 0x21, ==, 0x00);
    /* Gate low: the count does not move. */
    g_assert_cmpuint(pit_latched(s, 2), ==, latch);
    g_assert_cmpuint(pit_latched(s, 2), ==, latch);

    int64_t t0 = host_clock_ns();
    i8254_ioport_write(s, 0x61, 0x01);
    g_assert_cmphex(i8254_ioport_read(s, 0x61) & 0x03, ==, 0x01);
    g_assert_true(intc_test_wait(out2_high, s, INTC_TEST_TIMEOUT_MS));
    g_assert_cmpint(host_clock_ns(), >=, t0 + (int64_t)latch * 1000000000 / PIT_FREQ_HZ);

    /* Mode 0 keeps counting down past zero, wrapping. */
    uint16_t a = pit_latched(s, 2);
    g_assert_true(a == 0 || a > latch);

    /* Reloading drops OUT until the new count runs out. */
    i8254_ioport_write(s, 0x43, 0xb0);
    pit_count(s, 2, 0xffff);
    g_assert_false(out2_high(s));
    a = pit_latched(s, 2);
    uint16_t b;
    do {
        b = pit_latched(s, 2);
    } while (b == a);
    g_assert_cmpuint(b, <, a);

    /* Gate off pauses it. */
    i8254_ioport_write(s, 0x61, 0x02);
    a = pit_latched(s, 2);
    g_assert_cmpuint(pit_latched(s, 2), ==, a);
    g_assert_cmphex(i8254_ioport_read(s, 0x61) & 0x03, ==, 0x02);
    i8254_free(s);
}

typedef struct RefreshWait {
    I8254State *pit;
    uint8_t first;
} RefreshWait;

static bool refresh_toggled(void *opaque)
{
    RefreshWait *w = opaque;
    return (i8254_ioport_read(w->pit, 0x61) & 0x10) != w->first;
}

static void test_pit_port61_refresh(void)
{
    RefreshWait w = { .pit = i8254_new() };

    w.first = i8254_ioport_read(w.pit, 0x61) & 0x10;
    g_assert_true(intc_test_wait(refresh_toggled, &w, INTC_TEST_TIMEOUT_MS));
    i8254_free(w.pit);
}

static void test_pit_latch_readback(void)
{
    I8254State *s = i8254_new();

    i8254_ioport_write(s, 0x61, 0x00);
    i8254_ioport_write(s, 0x43, 0xb0);
    /* Between control word and count: null count set in the status. */
    i8254_ioport_write(s, 0x43, 0xe8);              /* read-back: status of channel 2 */
    g_assert_cmphex(i8254_ioport_read(s, 0x42), ==, 0x70);
    pit_count(s, 2, 0x1234);

    /* Read-back of count and status: status first, then the count. */
    i8254_ioport_write(s, 0x43, 0xc8);
    g_assert_cmphex(i8254_ioport_read(s, 0x42), ==, 0x30);
    g_assert_cmphex(i8254_ioport_read(s, 0x42), ==, 0x34);
    g_assert_cmphex(i8254_ioport_read(s, 0x42), ==, 0x12);

    /* A latch holds until read, even if latched again. */
    i8254_ioport_write(s, 0x43, 0x80);
    i8254_ioport_write(s, 0x43, 0xb0);              /* new mode drops the latch */
    pit_count(s, 2, 0x4321);
    i8254_ioport_write(s, 0x43, 0x80);
    i8254_ioport_write(s, 0x61, 0x01);
    i8254_ioport_write(s, 0x43, 0x80);
    g_assert_cmphex(i8254_ioport_read(s, 0x42), ==, 0x21);
    g_assert_cmphex(i8254_ioport_read(s, 0x42), ==, 0x43);

    /* Byte access: LSB only, then MSB only. */
    i8254_ioport_write(s, 0x61, 0x00);
    i8254_ioport_write(s, 0x43, 0x90);
    i8254_ioport_write(s, 0x42, 0x56);
    g_assert_cmphex(i8254_ioport_read(s, 0x42), ==, 0x56);
    i8254_ioport_write(s, 0x43, 0xa0);
    i8254_ioport_write(s, 0x42, 0x78);
    g_assert_cmphex(i8254_ioport_read(s, 0x42), ==, 0x78);
    i8254_ioport_write(s, 0x43, 0x80);
    g_assert_cmphex(i8254_ioport_read(s, 0x42), ==, 0x78);

    /* BCD: 1000 written as 0x1000 reads back the same. */
    i8254_ioport_write(s, 0x43, 0xb1);
    pit_count(s, 2, 0x1000);
    g_assert_cmphex(pit_latched(s, 2), ==, 0x1000);
    i8254_ioport_write(s, 0x43, 0xe8);
    g_assert_cmphex(i8254_ioport_read(s, 0x42), ==, 0x31);
    i8254_free(s);
}

static I8259State *pic_for_pit(void)
{
    I8259State *pic = i8259_new();

    x86_irq_connect(pic, NULL);
    i8259_ioport_write(pic, 0x20, 0x11);
    i8259_ioport_write(pic, 0x21, 0x08);
    i8259_ioport_write(pic, 0x21, 0x04);
    i8259_ioport_write(pic, 0x21, 0x01);
    i8259_ioport_write(pic, 0x21, 0x00);
    return pic;
}

static bool pic_signals(void *opaque)
{
    return i8259_output(opaque);
}

static void test_pit_channel0_irq(void)
{
    I8259State *pic = pic_for_pit();
    I8254State *s = i8254_new();

    /* Mode 2, 2 ms: IRQ 0 again and again. */
    i8254_ioport_write(s, 0x43, 0x34);
    pit_count(s, 0, 2386);
    for (int i = 0; i < 3; i++) {
        g_assert_true(intc_test_wait(pic_signals, pic, INTC_TEST_TIMEOUT_MS));
        g_assert_cmpint(i8259_intack(pic), ==, 0x08);
        i8259_ioport_write(pic, 0x20, 0x20);
    }

    /* Mode 0: one interrupt when the count runs out, OUT stays high. */
    i8254_ioport_write(s, 0x43, 0x30);
    pit_count(s, 0, 1193);
    g_assert_true(intc_test_wait(pic_signals, pic, INTC_TEST_TIMEOUT_MS));
    g_assert_cmpint(i8259_intack(pic), ==, 0x08);
    i8259_ioport_write(pic, 0x20, 0x20);
    i8254_ioport_write(s, 0x43, 0xe2);              /* read-back status of channel 0 */
    g_assert_cmphex(i8254_ioport_read(s, 0x40) & 0x80, ==, 0x80);
    i8254_free(s);
    x86_irq_connect(NULL, NULL);
    i8259_free(pic);
}

static void test_pit_vmstate(void)
{
    I8259State *pic = pic_for_pit();
    I8254State *a = i8254_new();

    i8254_ioport_write(a, 0x61, 0x02);              /* gate 2 off, speaker data on */
    i8254_ioport_write(a, 0x43, 0xb0);
    pit_count(a, 2, 5000);
    i8254_ioport_write(a, 0x43, 0x34);
    pit_count(a, 0, 2386);
    i8254_ioport_write(a, 0x43, 0x50);              /* channel 1: LSB only, mode 0 */
    i8254_ioport_write(a, 0x41, 0x10);

    stub_vmstate_clear();
    i8254_register_vmstate(a);
    const StubVMStateEntry *e = stub_vmstate_find("i8254", 0);
    g_assert_nonnull(e);
    g_autoptr(GError) err = NULL;
    g_autoptr(GByteArray) bytes = vms_stream_save(e->vmsd, e->opaque, &err);
    g_assert_no_error(err);
    i8254_free(a);

    I8254State *b = i8254_new();
    i8254_register_vmstate(b);
    e = stub_vmstate_find("i8254", 0);
    g_assert_true(vms_stream_load(bytes->data, bytes->len, e->vmsd, b, e->vmsd->version_id,
                                  NULL, &err));
    g_assert_no_error(err);
    g_assert_cmphex(i8254_ioport_read(b, 0x61) & 0x0f, ==, 0x02);
    g_assert_cmpuint(pit_latched(b, 2), ==, 5000);
    i8254_ioport_write(b, 0x43, 0xe8);
    g_assert_cmphex(i8254_ioport_read(b, 0x42), ==, 0x30);
    i8254_ioport_write(b, 0x43, 0xe4);
    g_assert_cmphex(i8254_ioport_read(b, 0x41) & 0x3f, ==, 0x10);
    /* Channel 0 resumes interrupting. */
    for (int i = 0; i < 2; i++) {
        g_assert_true(intc_test_wait(pic_signals, pic, INTC_TEST_TIMEOUT_MS));
        g_assert_cmpint(i8259_intack(pic), ==, 0x08);
        i8259_ioport_write(pic, 0x20, 0x20);
    }
    /* And channel 2 counts from where it stood once its gate opens. */
    i8254_ioport_write(b, 0x61, 0x01);
    g_assert_true(intc_test_wait(out2_high, b, INTC_TEST_TIMEOUT_MS));
    i8254_free(b);
    x86_irq_connect(NULL, NULL);
    i8259_free(pic);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/intc/i8254/channel2-gate", test_pit_channel2_gate);
    g_test_add_func("/intc/i8254/port61-refresh", test_pit_port61_refresh);
    g_test_add_func("/intc/i8254/latch-readback", test_pit_latch_readback);
    g_test_add_func("/intc/i8254/channel0-irq", test_pit_channel0_irq);
    g_test_add_func("/intc/i8254/vmstate", test_pit_vmstate);
    return g_test_run();
}
