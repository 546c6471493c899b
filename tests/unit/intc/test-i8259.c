/*
 * The 8259A pair on its own: initialisation, priorities and rotation,
 * the cascade, automatic EOI, spurious IRQ 7, poll and special mask mode,
 * and its state across a save and a load.
 */
#include <glib.h>

#include "hw/intc/i8259.h"
#include "tests/unit/migration/vmstate-stream.h"
#include "tests/unit/migration/vmstate-stubs.h"

static I8259State *pic_setup(bool auto_eoi)
{
    I8259State *pic = i8259_new();

    x86_irq_connect(pic, NULL);
    i8259_ioport_write(pic, 0x20, 0x11);            /* ICW1: edge, cascade, ICW4 */
    i8259_ioport_write(pic, 0x21, 0x20);            /* ICW2: vectors 0x20-0x27 */
    i8259_ioport_write(pic, 0x21, 0x04);            /* ICW3: slave on IR2 */
    i8259_ioport_write(pic, 0x21, auto_eoi ? 0x03 : 0x01);
    i8259_ioport_write(pic, 0xa0, 0x11);
    i8259_ioport_write(pic, 0xa1, 0x28);
    i8259_ioport_write(pic, 0xa1, 0x02);
    i8259_ioport_write(pic, 0xa1, auto_eoi ? 0x03 : 0x01);
    i8259_ioport_write(pic, 0x21, 0x00);            /* OCW1: nothing masked */
    i8259_ioport_write(pic, 0xa1, 0x00);
    return pic;
}

static void pic_teardown(I8259State *pic)
{
    x86_irq_connect(NULL, NULL);
    i8259_free(pic);
}

static uint8_t pic_isr(I8259State *pic, uint16_t port)
{
    i8259_ioport_write(pic, port, 0x0b);            /* OCW3: read ISR */
    return i8259_ioport_read(pic, port);
}

static uint8_t pic_irr(I8259State *pic, uint16_t port)
{
    i8259_ioport_write(pic, port, 0x0a);            /* OCW3: read IRR */
    return i8259_ioport_read(pic, port);
}

static void pic_pulse(I8259State *pic, int irq)
{
    i8259_set_irq(pic, irq, 1);
    i8259_set_irq(pic, irq, 0);
}

static void test_pic_init_priority(void)
{
    I8259State *pic = pic_setup(false);

    g_assert_false(i8259_output(pic));
    g_assert_cmpuint(i8259_ioport_read(pic, 0x21), ==, 0);
    pic_pulse(pic, 3);
    pic_pulse(pic, 1);
    g_assert_cmpuint(pic_irr(pic, 0x20), ==, 0x0a);
    g_assert_true(i8259_output(pic));

    /* IRQ 1 outranks IRQ 3; while it is in service IRQ 3 waits. */
    g_assert_cmpint(i8259_intack(pic), ==, 0x21);
    g_assert_cmpuint(pic_isr(pic, 0x20), ==, 0x02);
    g_assert_false(i8259_output(pic));
    /* A higher priority request still gets through. */
    pic_pulse(pic, 0);
    g_assert_true(i8259_output(pic));
    g_assert_cmpint(i8259_intack(pic), ==, 0x20);
    g_assert_cmpuint(pic_isr(pic, 0x20), ==, 0x03);

    i8259_ioport_write(pic, 0x20, 0x20);            /* non-specific EOI: IRQ 0 */
    g_assert_cmpuint(pic_isr(pic, 0x20), ==, 0x02);
    g_assert_false(i8259_output(pic));
    i8259_ioport_write(pic, 0x20, 0x61);            /* specific EOI of IRQ 1 */
    g_assert_true(i8259_output(pic));
    g_assert_cmpint(i8259_intack(pic), ==, 0x23);
    i8259_ioport_write(pic, 0x20, 0x20);
    g_assert_cmpuint(pic_isr(pic, 0x20), ==, 0);

    /* A masked request waits in IRR until unmasked. */
    i8259_ioport_write(pic, 0x21, 0x10);
    pic_pulse(pic, 4);
    g_assert_false(i8259_output(pic));
    g_assert_cmpuint(pic_irr(pic, 0x20), ==, 0x10);
    i8259_ioport_write(pic, 0x21, 0x00);
    g_assert_true(i8259_output(pic));
    g_assert_cmpint(i8259_intack(pic), ==, 0x24);
    pic_teardown(pic);
}

static void test_pic_rotation(void)
{
    I8259State *pic = pic_setup(false);

    pic_pulse(pic, 0);
    g_assert_cmpint(i8259_intack(pic), ==, 0x20);
    i8259_ioport_write(pic, 0x20, 0xa0);            /* rotate on non-specific EOI */
    /* IRQ 0 is now the lowest priority: IRQ 3 goes first. */
    pic_pulse(pic, 0);
    pic_pulse(pic, 3);
    g_assert_cmpint(i8259_intack(pic), ==, 0x23);
    i8259_ioport_write(pic, 0x20, 0x20);
    g_assert_cmpint(i8259_intack(pic), ==, 0x20);
    i8259_ioport_write(pic, 0x20, 0x20);

    i8259_ioport_write(pic, 0x20, 0xc4);            /* set priority: IRQ 4 lowest */
    pic_pulse(pic, 4);
    pic_pulse(pic, 6);
    g_assert_cmpint(i8259_intack(pic), ==, 0x26);
    pic_teardown(pic);
}

static void test_pic_cascade(void)
{
    I8259State *pic = pic_setup(false);

    pic_pulse(pic, 10);
    g_assert_true(i8259_output(pic));
    g_assert_cmpint(i8259_intack(pic), ==, 0x2a);
    g_assert_cmpuint(pic_isr(pic, 0x20), ==, 0x04);
    g_assert_cmpuint(pic_isr(pic, 0xa0), ==, 0x04);
    g_assert_false(i8259_output(pic));

    /* While the cascade is in service, master IRQs of lower priority wait; IRQ 1 does not. */
    pic_pulse(pic, 5);
    g_assert_false(i8259_output(pic));
    pic_pulse(pic, 1);
    g_assert_cmpint(i8259_intack(pic), ==, 0x21);
    i8259_ioport_write(pic, 0x20, 0x20);

    i8259_ioport_write(pic, 0xa0, 0x20);            /* EOI to the slave, then the master */
    i8259_ioport_write(pic, 0x20, 0x20);
    g_assert_cmpuint(pic_isr(pic, 0xa0), ==, 0);
    g_assert_cmpint(i8259_intack(pic), ==, 0x25);
    i8259_ioport_write(pic, 0x20, 0x20);

    /* Masking on the slave holds its request back from the master too. */
    i8259_ioport_write(pic, 0xa1, 0x80);
    pic_pulse(pic, 15);
    g_assert_false(i8259_output(pic));
    i8259_ioport_write(pic, 0xa1, 0x00);
    g_assert_cmpint(i8259_intack(pic), ==, 0x2f);
    pic_teardown(pic);
}

static void test_pic_auto_eoi(void)
{
    I8259State *pic = pic_setup(true);

    pic_pulse(pic, 3);
    pic_pulse(pic, 6);
    g_assert_cmpint(i8259_intack(pic), ==, 0x23);
    g_assert_cmpuint(pic_isr(pic, 0x20), ==, 0);
    /* Nothing in service, so the next one is signalled at once. */
    g_assert_true(i8259_output(pic));
    g_assert_cmpint(i8259_intack(pic), ==, 0x26);
    pic_pulse(pic, 12);
    g_assert_cmpint(i8259_intack(pic), ==, 0x2c);
    g_assert_cmpuint(pic_isr(pic, 0x20), ==, 0);
    g_assert_cmpuint(pic_isr(pic, 0xa0), ==, 0);
    pic_teardown(pic);
}

static void test_pic_spurious(void)
{
    I8259State *pic = pic_setup(false);

    /* A level-triggered request that goes away before the acknowledge. */
    i8259_ioport_write(pic, 0x4d0, 0x20);
    g_assert_cmpuint(i8259_ioport_read(pic, 0x4d0), ==, 0x20);
    i8259_set_irq(pic, 5, 1);
    g_assert_true(i8259_output(pic));
    i8259_set_irq(pic, 5, 0);
    g_assert_false(i8259_output(pic));
    g_assert_cmpint(i8259_intack(pic), ==, 0x27);
    g_assert_cmpuint(pic_isr(pic, 0x20), ==, 0);

    /* A level request stays in IRR across its acknowledge while the line is high. */
    i8259_set_irq(pic, 5, 1);
    g_assert_cmpint(i8259_intack(pic), ==, 0x25);
    g_assert_cmpuint(pic_irr(pic, 0x20) & 0x20, ==, 0x20);
    i8259_set_irq(pic, 5, 0);
    i8259_ioport_write(pic, 0x20, 0x20);

    /* The ELCR cannot make the timer, keyboard or cascade level-triggered. */
    i8259_ioport_write(pic, 0x4d0, 0xff);
    g_assert_cmpuint(i8259_ioport_read(pic, 0x4d0), ==, 0xf8);
    pic_teardown(pic);
}

static void test_pic_poll_and_special_mask(void)
{
    I8259State *pic = pic_setup(false);

    pic_pulse(pic, 6);
    i8259_ioport_write(pic, 0x20, 0x0c);            /* OCW3: poll */
    g_assert_cmpuint(i8259_ioport_read(pic, 0x20), ==, 0x86);
    g_assert_cmpuint(pic_isr(pic, 0x20), ==, 0x40);
    i8259_ioport_write(pic, 0x20, 0x0c);
    g_assert_cmpuint(i8259_ioport_read(pic, 0x20), ==, 0x00);
    i8259_ioport_write(pic, 0x20, 0x20);

    /* Special mask mode: mask the level in service and lower ones get through. */
    pic_pulse(pic, 1);
    g_assert_cmpint(i8259_intack(pic), ==, 0x21);
    pic_pulse(pic, 5);
    g_assert_false(i8259_output(pic));
    i8259_ioport_write(pic, 0x20, 0x68);            /* OCW3: set special mask */
    i8259_ioport_write(pic, 0x21, 0x02);
    g_assert_true(i8259_output(pic));
    g_assert_cmpint(i8259_intack(pic), ==, 0x25);
    pic_teardown(pic);
}

static void pic_save_chips(I8259State *pic, GByteArray *out[2])
{
    stub_vmstate_clear();
    i8259_register_vmstate(pic);
    for (uint32_t i = 0; i < 2; i++) {
        const StubVMStateEntry *e = stub_vmstate_find("i8259", i);
        g_assert_nonnull(e);
        g_autoptr(GError) err = NULL;
        out[i] = vms_stream_save(e->vmsd, e->opaque, &err);
        g_assert_no_error(err);
    }
}

static void pic_load_chips(I8259State *pic, GByteArray *in[2])
{
    stub_vmstate_clear();
    i8259_register_vmstate(pic);
    for (uint32_t i = 0; i < 2; i++) {
        const StubVMStateEntry *e = stub_vmstate_find("i8259", i);
        g_autoptr(GError) err = NULL;
        g_assert_true(vms_stream_load(in[i]->data, in[i]->len, e->vmsd, e->opaque,
                                      e->vmsd->version_id, NULL, &err));
        g_assert_no_error(err);
    }
}

static void test_pic_vmstate(void)
{
    I8259State *a = pic_setup(false);
    GByteArray *bytes[2];

    i8259_ioport_write(a, 0x21, 0x08);              /* IRQ 3 masked */
    i8259_ioport_write(a, 0x4d1, 0x02);             /* IRQ 9 level */
    pic_pulse(a, 4);
    g_assert_cmpint(i8259_intack(a), ==, 0x24);     /* IRQ 4 in service */
    pic_pulse(a, 6);                                /* IRQ 6 waits behind it */
    pic_pulse(a, 3);                                /* IRQ 3 masked */
    pic_save_chips(a, bytes);
    pic_teardown(a);

    I8259State *b = i8259_new();
    x86_irq_connect(b, NULL);
    pic_load_chips(b, bytes);
    g_assert_cmpuint(i8259_ioport_read(b, 0x21), ==, 0x08);
    g_assert_cmpuint(i8259_ioport_read(b, 0x4d1), ==, 0x02);
    g_assert_cmpuint(pic_isr(b, 0x20), ==, 0x10);
    g_assert_false(i8259_output(b));
    i8259_ioport_write(b, 0x20, 0x20);
    g_assert_cmpint(i8259_intack(b), ==, 0x26);
    i8259_ioport_write(b, 0x20, 0x20);
    i8259_ioport_write(b, 0x21, 0x00);
    g_assert_cmpint(i8259_intack(b), ==, 0x23);
    /* The slave's programming came along: its vectors start at 0x28. */
    i8259_ioport_write(b, 0x20, 0x20);
    i8259_set_irq(b, 9, 1);
    g_assert_cmpint(i8259_intack(b), ==, 0x29);
    pic_teardown(b);
    g_byte_array_unref(bytes[0]);
    g_byte_array_unref(bytes[1]);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/intc/i8259/init-priority", test_pic_init_priority);
    g_test_add_func("/intc/i8259/rotation", test_pic_rotation);
    g_test_add_func("/intc/i8259/cascade", test_pic_cascade);
    g_test_add_func("/intc/i8259/auto-eoi", test_pic_auto_eoi);
    g_test_add_func("/intc/i8259/spurious", test_pic_spurious);
    g_test_add_func("/intc/i8259/poll-special-mask", test_pic_poll_and_special_mask);
    g_test_add_func("/intc/i8259/vmstate", test_pic_vmstate);
    return g_test_run();
}
