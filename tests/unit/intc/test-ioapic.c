/*
 * The IOAPIC delivering to two LAPICs: edge and level pins, remote IRR
 * and the EOI broadcast, masks, physical and logical destinations, its
 * registers, the GSI routing, and its state across a save and a load.
 */
#include <glib.h>

#include "hw/intc/apic.h"
#include "hw/intc/i8259.h"
#include "hw/intc/ioapic.h"
#include "tests/unit/migration/vmstate-stream.h"
#include "tests/unit/migration/vmstate-stubs.h"

#define NR_CPUS 2

static int nmi_count[NR_CPUS];
static int init_count[NR_CPUS];

static void hook_nmi(void *opaque, int cpu)
{
    nmi_count[cpu]++;
}

static void hook_init(void *opaque, int cpu)
{
    init_count[cpu]++;
}

static const APICHooks test_hooks = { .nmi = hook_nmi, .init = hook_init };

typedef struct Rig {
    IOAPICState *ioapic;
    APICState *apic[NR_CPUS];
} Rig;

static void rig_setup(Rig *r)
{
    r->ioapic = ioapic_new(2);
    x86_irq_connect(NULL, r->ioapic);
    for (int i = 0; i < NR_CPUS; i++) {
        r->apic[i] = apic_new(i, &test_hooks, NULL);
        apic_mmio_write(r->apic[i], 0xf0, 0x1ff);  /* SVR: software enable */
        nmi_count[i] = init_count[i] = 0;
    }
}

static void rig_teardown(Rig *r)
{
    x86_irq_connect(NULL, NULL);
    for (int i = 0; i < NR_CPUS; i++) {
        apic_free(r->apic[i]);
    }
    ioapic_free(r->ioapic);
}

static void rte_write(IOAPICState *s, int pin, uint64_t e)
{
    ioapic_mmio_write(s, 0x00, 0x10 + 2 * pin);
    ioapic_mmio_write(s, 0x10, (uint32_t)e);
    ioapic_mmio_write(s, 0x00, 0x11 + 2 * pin);
    ioapic_mmio_write(s, 0x10, (uint32_t)(e >> 32));
}

static uint64_t rte_dest(int dest)
{
    return (uint64_t)dest << IOAPIC_RTE_DEST_SHIFT;
}

/* What the CPU would take next from @s, acknowledged; -1 if nothing. */
static int cpu_take(APICState *s)
{
    int v = apic_get_interrupt(s);
    if (v >= 0) {
        apic_ack_interrupt(s, v);
    }
    return v;
}

static void cpu_eoi(APICState *s)
{
    apic_mmio_write(s, 0xb0, 0);
}

static void test_ioapic_registers(void)
{
    Rig r;
    rig_setup(&r);

    ioapic_mmio_write(r.ioapic, 0x00, 0x01);
    g_assert_cmphex(ioapic_mmio_read(r.ioapic, 0x10), ==, 0x00170020);
    ioapic_mmio_write(r.ioapic, 0x00, 0x00);
    g_assert_cmphex(ioapic_mmio_read(r.ioapic, 0x10), ==, 0x02000000);
    ioapic_mmio_write(r.ioapic, 0x10, 0x05000000);
    g_assert_cmphex(ioapic_mmio_read(r.ioapic, 0x10), ==, 0x05000000);
    ioapic_mmio_write(r.ioapic, 0x00, 0x02);
    g_assert_cmphex(ioapic_mmio_read(r.ioapic, 0x10), ==, 0x05000000);
    g_assert_cmphex(ioapic_mmio_read(r.ioapic, 0x00), ==, 0x02);

    /* Every pin starts masked; delivery status and remote IRR ignore writes. */
    for (int pin = 0; pin < IOAPIC_NR_PINS; pin++) {
        g_assert_cmphex(ioapic_get_entry(r.ioapic, pin), ==, IOAPIC_RTE_MASKED);
    }
    rte_write(r.ioapic, 23, rte_dest(0xab) | IOAPIC_RTE_REMOTE_IRR | IOAPIC_RTE_DELIVS |
              IOAPIC_RTE_LEVEL | IOAPIC_RTE_MASKED | 0x5e);
    g_assert_cmphex(ioapic_get_entry(r.ioapic, 23), ==,
                    rte_dest(0xab) | IOAPIC_RTE_LEVEL | IOAPIC_RTE_MASKED | 0x5e);
    ioapic_reset(r.ioapic);
    g_assert_cmphex(ioapic_get_entry(r.ioapic, 23), ==, IOAPIC_RTE_MASKED);
    rig_teardown(&r);
}

static void test_ioapic_edge(void)
{
    Rig r;
    rig_setup(&r);

    rte_write(r.ioapic, 4, rte_dest(1) | 0x34);
    ioapic_set_irq(r.ioapic, 4, 1);
    g_assert_cmpint(cpu_take(r.apic[0]), ==, -1);
    g_assert_cmpint(cpu_take(r.apic[1]), ==, 0x34);
    cpu_eoi(r.apic[1]);

    /* No new edge, no new interrupt. */
    ioapic_set_irq(r.ioapic, 4, 1);
    g_assert_cmpint(cpu_take(r.apic[1]), ==, -1);
    ioapic_set_irq(r.ioapic, 4, 0);
    ioapic_set_irq(r.ioapic, 4, 1);
    g_assert_cmpint(cpu_take(r.apic[1]), ==, 0x34);
    cpu_eoi(r.apic[1]);
    g_assert_false(ioapic_get_entry(r.ioapic, 4) & IOAPIC_RTE_REMOTE_IRR);

    /* An edge while masked is lost, unmasking does not bring it back. */
    ioapic_set_irq(r.ioapic, 4, 0);
    rte_write(r.ioapic, 4, rte_dest(1) | IOAPIC_RTE_MASKED | 0x34);
    ioapic_set_irq(r.ioapic, 4, 1);
    rte_write(r.ioapic, 4, rte_dest(1) | 0x34);
    g_assert_cmpint(cpu_take(r.apic[1]), ==, -1);
    rig_teardown(&r);
}

static void test_ioapic_level(void)
{
    Rig r;
    rig_setup(&r);

    rte_write(r.ioapic, 9, rte_dest(0) | IOAPIC_RTE_LEVEL | 0x49);
    ioapic_set_irq(r.ioapic, 9, 1);
    g_assert_true(ioapic_get_entry(r.ioapic, 9) & IOAPIC_RTE_REMOTE_IRR);
    g_assert_cmpint(cpu_take(r.apic[0]), ==, 0x49);
    /* The vector is level-triggered in TMR. */
    g_assert_cmphex(apic_mmio_read(r.apic[0], 0x180 + 0x10 * (0x49 / 32)), ==,
                    1u << (0x49 % 32));
    /* Still high, but remote IRR holds the next one back until the EOI. */
    g_assert_cmpint(cpu_take(r.apic[0]), ==, -1);
    cpu_eoi(r.apic[0]);
    g_assert_true(ioapic_get_entry(r.ioapic, 9) & IOAPIC_RTE_REMOTE_IRR);
    g_assert_cmpint(cpu_take(r.apic[0]), ==, 0x49);

    /* The device drops the line: the EOI clears remote IRR, nothing more is sent. */
    ioapic_set_irq(r.ioapic, 9, 0);
    cpu_eoi(r.apic[0]);
    g_assert_false(ioapic_get_entry(r.ioapic, 9) & IOAPIC_RTE_REMOTE_IRR);
    g_assert_cmpint(cpu_take(r.apic[0]), ==, -1);

    /* A level pin high while masked is delivered on unmask. */
    rte_write(r.ioapic, 9, rte_dest(0) | IOAPIC_RTE_LEVEL | IOAPIC_RTE_MASKED | 0x49);
    ioapic_set_irq(r.ioapic, 9, 1);
    g_assert_cmpint(cpu_take(r.apic[0]), ==, -1);
    rte_write(r.ioapic, 9, rte_dest(0) | IOAPIC_RTE_LEVEL | 0x49);
    g_assert_cmpint(cpu_take(r.apic[0]), ==, 0x49);

    /* The version 0x20 EOI register clears remote IRR like a broadcast. */
    ioapic_set_irq(r.ioapic, 9, 0);
    ioapic_mmio_write(r.ioapic, 0x40, 0x49);
    g_assert_false(ioapic_get_entry(r.ioapic, 9) & IOAPIC_RTE_REMOTE_IRR);
    rig_teardown(&r);
}

static void test_ioapic_destinations(void)
{
    Rig r;
    rig_setup(&r);

    /* Flat logical: LDR bits 0x01 and 0x02. */
    apic_mmio_write(r.apic[0], 0xd0, 0x01000000);
    apic_mmio_write(r.apic[1], 0xd0, 0x02000000);
    rte_write(r.ioapic, 5, rte_dest(0x02) | IOAPIC_RTE_DESTMODE | 0x55);
    ioapic_set_irq(r.ioapic, 5, 1);
    g_assert_cmpint(cpu_take(r.apic[0]), ==, -1);
    g_assert_cmpint(cpu_take(r.apic[1]), ==, 0x55);
    cpu_eoi(r.apic[1]);

    /* Both in the set: fixed goes to both, lowest priority to the idler one. */
    rte_write(r.ioapic, 6, rte_dest(0x03) | IOAPIC_RTE_DESTMODE | 0x66);
    ioapic_set_irq(r.ioapic, 6, 1);
    g_assert_cmpint(cpu_take(r.apic[0]), ==, 0x66);
    g_assert_cmpint(cpu_take(r.apic[1]), ==, 0x66);
    cpu_eoi(r.apic[0]);
    cpu_eoi(r.apic[1]);
    apic_mmio_write(r.apic[0], 0x80, 0x40);
    rte_write(r.ioapic, 7, rte_dest(0x03) | IOAPIC_RTE_DESTMODE |
              ((uint64_t)APIC_DM_LOWEST << IOAPIC_RTE_DELMODE_SHIFT) | 0x77);
    ioapic_set_irq(r.ioapic, 7, 1);
    g_assert_cmpint(cpu_take(r.apic[1]), ==, 0x77);
    apic_mmio_write(r.apic[0], 0x80, 0);
    g_assert_cmpint(cpu_take(r.apic[0]), ==, -1);

    /* Physical broadcast, NMI and INIT delivery modes. */
    rte_write(r.ioapic, 10, rte_dest(0xff) | ((uint64_t)APIC_DM_NMI << IOAPIC_RTE_DELMODE_SHIFT));
    ioapic_set_irq(r.ioapic, 10, 1);
    g_assert_cmpint(nmi_count[0], ==, 1);
    g_assert_cmpint(nmi_count[1], ==, 1);
    rte_write(r.ioapic, 11, rte_dest(1) | ((uint64_t)APIC_DM_INIT << IOAPIC_RTE_DELMODE_SHIFT));
    ioapic_set_irq(r.ioapic, 11, 1);
    g_assert_cmpint(init_count[0], ==, 0);
    g_assert_cmpint(init_count[1], ==, 1);
    rig_teardown(&r);
}

static void test_ioapic_gsi_routing(void)
{
    Rig r;
    rig_setup(&r);
    I8259State *pic = i8259_new();
    x86_irq_connect(pic, r.ioapic);

    /* An ISA IRQ reaches the PIC and the IOAPIC pin of the same number. */
    g_assert_cmpint(x86_irq_isa_to_pin(0), ==, 0);
    i8259_ioport_write(pic, 0x20, 0x11);
    i8259_ioport_write(pic, 0x21, 0x08);
    i8259_ioport_write(pic, 0x21, 0x04);
    i8259_ioport_write(pic, 0x21, 0x01);
    i8259_ioport_write(pic, 0x21, 0x00);
    rte_write(r.ioapic, 4, rte_dest(1) | 0x34);
    rte_write(r.ioapic, 20, rte_dest(1) | 0x94);
    x86_irq_set(4, 1);
    g_assert_true(i8259_output(pic));
    g_assert_cmpint(cpu_take(r.apic[1]), ==, 0x34);
    cpu_eoi(r.apic[1]);
    x86_irq_set(20, 1);
    g_assert_cmpint(cpu_take(r.apic[1]), ==, 0x94);
    g_assert_cmpint(i8259_intack(pic), ==, 0x0c);
    rig_teardown(&r);
    i8259_free(pic);
}

static void test_ioapic_vmstate(void)
{
    Rig r;
    rig_setup(&r);

    rte_write(r.ioapic, 9, rte_dest(0) | IOAPIC_RTE_LEVEL | 0x49);
    rte_write(r.ioapic, 3, rte_dest(1) | IOAPIC_RTE_DESTMODE | 0x33);
    ioapic_set_irq(r.ioapic, 9, 1);
    g_assert_cmpint(cpu_take(r.apic[0]), ==, 0x49);
    ioapic_mmio_write(r.ioapic, 0x00, 0x13);

    stub_vmstate_clear();
    ioapic_register_vmstate(r.ioapic);
    const StubVMStateEntry *e = stub_vmstate_find("ioapic", 0);
    g_assert_nonnull(e);
    g_autoptr(GError) err = NULL;
    g_autoptr(GByteArray) bytes = vms_stream_save(e->vmsd, e->opaque, &err);
    g_assert_no_error(err);

    IOAPICState *b = ioapic_new(0);
    ioapic_register_vmstate(b);
    e = stub_vmstate_find("ioapic", 0);
    g_assert_true(e->opaque == b);
    g_assert_true(vms_stream_load(bytes->data, bytes->len, e->vmsd, b, e->vmsd->version_id,
                                  NULL, &err));
    g_assert_no_error(err);
    for (int pin = 0; pin < IOAPIC_NR_PINS; pin++) {
        g_assert_cmphex(ioapic_get_entry(b, pin), ==, ioapic_get_entry(r.ioapic, pin));
    }
    g_assert_cmphex(ioapic_mmio_read(b, 0x00), ==, 0x13);
    ioapic_free(r.ioapic);
    r.ioapic = b;
    x86_irq_connect(NULL, b);

    /* The loaded one carries on: the line is still high, the EOI re-delivers. */
    g_assert_true(ioapic_get_entry(b, 9) & IOAPIC_RTE_REMOTE_IRR);
    cpu_eoi(r.apic[0]);
    g_assert_cmpint(cpu_take(r.apic[0]), ==, 0x49);
    rig_teardown(&r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/intc/ioapic/registers", test_ioapic_registers);
    g_test_add_func("/intc/ioapic/edge", test_ioapic_edge);
    g_test_add_func("/intc/ioapic/level-remote-irr", test_ioapic_level);
    g_test_add_func("/intc/ioapic/destinations", test_ioapic_destinations);
    g_test_add_func("/intc/ioapic/gsi-routing", test_ioapic_gsi_routing);
    g_test_add_func("/intc/ioapic/vmstate", test_ioapic_vmstate);
    return g_test_run();
}
