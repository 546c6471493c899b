/*
 * The local APIC: registers, priorities (TPR, PPR, CR8), EOI order, IPIs
 * with every shorthand and destination mode, INIT/SIPI/NMI hooks, ExtINT
 * from the PIC, the three timer modes, the APIC base MSR, and its state
 * across a save and a load.
 */
#include <glib.h>

#include "hw/intc/apic.h"
#include "hw/intc/i8259.h"
#include "hw/timer/host-timer.h"
#include "hw/x86/cpu-state.h"
#include "system/ioport.h"
#include "tests/unit/intc/intc-test.h"
#include "tests/unit/migration/vmstate-stream.h"
#include "tests/unit/migration/vmstate-stubs.h"

#define NR_CPUS 3

#define REG_ID      0x020
#define REG_VER     0x030
#define REG_TPR     0x080
#define REG_APR     0x090
#define REG_PPR     0x0a0
#define REG_EOI     0x0b0
#define REG_LDR     0x0d0
#define REG_DFR     0x0e0
#define REG_SVR     0x0f0
#define REG_ISR     0x100
#define REG_IRR     0x200
#define REG_ESR     0x280
#define REG_ICR_LO  0x300
#define REG_ICR_HI  0x310
#define REG_LVT_TIMER 0x320
#define REG_LVT_LINT0 0x350
#define REG_LVT_LINT1 0x360
#define REG_TIMER_INIT 0x380
#define REG_TIMER_CUR 0x390
#define REG_TIMER_DIV 0x3e0

#define ICR_SELF        (1u << 18)
#define ICR_ALL         (2u << 18)
#define ICR_OTHERS      (3u << 18)
#define ICR_LOGICAL     (1u << 11)
#define ICR_ASSERT      (1u << 14)

static int kicks[NR_CPUS], nmis[NR_CPUS], inits[NR_CPUS], sipis[NR_CPUS];
static int sipi_vector[NR_CPUS];

static void hook_kick(void *opaque, int cpu)
{
    g_atomic_int_inc(&kicks[cpu]);
}

static void hook_nmi(void *opaque, int cpu)
{
    nmis[cpu]++;
}

static void hook_init(void *opaque, int cpu)
{
    inits[cpu]++;
}

static void hook_sipi(void *opaque, int cpu, uint8_t vector)
{
    sipis[cpu]++;
    sipi_vector[cpu] = vector;
}

static uint64_t hook_read_tsc(void *opaque, int cpu)
{
    return (uint64_t)host_clock_ns();       /* a 1 GHz TSC on the host clock */
}

static const APICHooks test_hooks = {
    .kick = hook_kick, .nmi = hook_nmi, .init = hook_init, .sipi = hook_sipi,
    .read_tsc = hook_read_tsc, .tsc_hz = 1000000000ULL,
};

static APICState *cpus[NR_CPUS];

static void cpus_setup(void)
{
    for (int i = 0; i < NR_CPUS; i++) {
        cpus[i] = apic_new(i, &test_hooks, NULL);
        apic_mmio_write(cpus[i], REG_SVR, 0x1ff);
        kicks[i] = nmis[i] = inits[i] = sipis[i] = 0;
    }
}

static void cpus_teardown(void)
{
    x86_irq_connect(NULL, NULL);
    for (int i = 0; i < NR_CPUS; i++) {
        apic_free(cpus[i]);
        cpus[i] = NULL;
    }
}

static int cpu_take(APICState *s)
{
    int v = apic_get_interrupt(s);
    if (v >= 0) {
        apic_ack_interrupt(s, v);
    }
    return v;
}

static uint32_t reg(APICState *s, uint32_t r)
{
    return apic_mmio_read(s, r);
}

static void set_reg(APICState *s, uint32_t r, uint32_t v)
{
    apic_mmio_write(s, r, v);
}

static bool vec_in(APICState *s, uint32_t base, int v)
{
    return reg(s, base + 0x10 * (v / 32)) & (1u << (v % 32));
}

static void send_ipi(APICState *s, uint8_t dest, uint32_t lo)
{
    set_reg(s, REG_ICR_HI, (uint32_t)dest << 24);
    set_reg(s, REG_ICR_LO, lo);
}

static void test_apic_registers(void)
{
    cpus_setup();
    APICState *bsp = cpus[0], *ap = cpus[1];
    uint64_t base;

    g_assert_cmphex(reg(bsp, REG_VER), ==, 0x00050014);
    g_assert_cmphex(reg(ap, REG_ID), ==, 0x01000000);
    g_assert_cmphex(reg(bsp, REG_DFR), ==, 0xffffffff);
    g_assert_true(apic_rdmsr(bsp, X86_MSR_APIC_BASE, &base));
    g_assert_cmphex(base, ==, 0xfee00900);
    g_assert_true(apic_rdmsr(ap, X86_MSR_APIC_BASE, &base));
    g_assert_cmphex(base, ==, 0xfee00800);
    /* Firmware's virtual wire: the BSP's LINT0 takes ExtINT, LINT1 NMI; an AP's are masked. */
    g_assert_cmphex(reg(bsp, REG_LVT_LINT0), ==, 0x700);
    g_assert_cmphex(reg(bsp, REG_LVT_LINT1), ==, 0x400);
    g_assert_cmphex(reg(ap, REG_LVT_LINT0), ==, 0x10000);
    g_assert_cmphex(reg(ap, REG_LVT_TIMER), ==, 0x10000);

    set_reg(ap, REG_LDR, 0x12345678);
    g_assert_cmphex(reg(ap, REG_LDR), ==, 0x12000000);
    set_reg(ap, REG_DFR, 0x0);
    g_assert_cmphex(reg(ap, REG_DFR), ==, 0x0fffffff);
    set_reg(ap, REG_LVT_LINT0, 0xffffffff);
    g_assert_cmphex(reg(ap, REG_LVT_LINT0), ==, 0x1a7ff);
    set_reg(ap, REG_TIMER_DIV, 0xff);
    g_assert_cmphex(reg(ap, REG_TIMER_DIV), ==, 0xb);

    /* Software disable masks every LVT and keeps them masked. */
    set_reg(bsp, REG_SVR, 0xff);
    g_assert_cmphex(reg(bsp, REG_LVT_LINT0), ==, 0x10700);
    set_reg(bsp, REG_LVT_LINT0, 0x700);
    g_assert_cmphex(reg(bsp, REG_LVT_LINT0), ==, 0x10700);
    /* ... and it takes no fixed interrupts. */
    send_ipi(ap, 0, 0x40);
    g_assert_cmpint(apic_get_interrupt(bsp), ==, -1);
    cpus_teardown();
}

static void test_apic_priority(void)
{
    cpus_setup();
    APICState *s = cpus[0];

    send_ipi(s, 0, ICR_SELF | 0x31);
    send_ipi(s, 0, ICR_SELF | 0x52);
    send_ipi(s, 0, ICR_SELF | 0x55);
    g_assert_cmpint(kicks[0], >, 0);
    g_assert_true(vec_in(s, REG_IRR, 0x55));

    /* A vector is deliverable only if its class beats the processor priority. */
    set_reg(s, REG_TPR, 0x50);
    g_assert_cmphex(reg(s, REG_PPR), ==, 0x50);
    g_assert_cmpint(apic_get_interrupt(s), ==, -1);
    g_assert_cmphex(apic_get_cr8(s), ==, 5);
    apic_set_cr8(s, 4);
    g_assert_cmphex(reg(s, REG_TPR), ==, 0x40);
    g_assert_cmpint(cpu_take(s), ==, 0x55);
    g_assert_true(vec_in(s, REG_ISR, 0x55));
    g_assert_false(vec_in(s, REG_IRR, 0x55));
    g_assert_cmphex(reg(s, REG_PPR), ==, 0x50);
    /* 0x52 shares the class of the vector in service. */
    apic_set_cr8(s, 0);
    g_assert_cmpint(apic_get_interrupt(s), ==, -1);
    g_assert_cmphex(reg(s, REG_APR), ==, 0x50);

    /* A higher class nests; EOIs retire the highest in service first. */
    send_ipi(s, 0, ICR_SELF | 0x91);
    g_assert_cmpint(cpu_take(s), ==, 0x91);
    g_assert_cmphex(reg(s, REG_PPR), ==, 0x90);
    set_reg(s, REG_EOI, 0);
    g_assert_false(vec_in(s, REG_ISR, 0x91));
    g_assert_true(vec_in(s, REG_ISR, 0x55));
    set_reg(s, REG_EOI, 0);
    g_assert_cmphex(reg(s, REG_ISR + 0x20), ==, 0);
    g_assert_cmpint(cpu_take(s), ==, 0x52);
    set_reg(s, REG_EOI, 0);
    g_assert_cmpint(cpu_take(s), ==, 0x31);
    set_reg(s, REG_EOI, 0);
    g_assert_cmpint(apic_get_interrupt(s), ==, -1);
    g_assert_cmphex(reg(s, REG_PPR), ==, 0);
    cpus_teardown();
}

static void test_apic_ipi_shorthands(void)
{
    cpus_setup();

    send_ipi(cpus[1], 0, ICR_ALL | 0x40);
    for (int i = 0; i < NR_CPUS; i++) {
        g_assert_cmpint(cpu_take(cpus[i]), ==, 0x40);
        set_reg(cpus[i], REG_EOI, 0);
    }
    send_ipi(cpus[1], 0, ICR_OTHERS | 0x41);
    g_assert_cmpint(cpu_take(cpus[0]), ==, 0x41);
    g_assert_cmpint(cpu_take(cpus[1]), ==, -1);
    g_assert_cmpint(cpu_take(cpus[2]), ==, 0x41);
    set_reg(cpus[0], REG_EOI, 0);
    set_reg(cpus[2], REG_EOI, 0);
    send_ipi(cpus[2], 0, ICR_SELF | 0x42);
    g_assert_cmpint(cpu_take(cpus[2]), ==, 0x42);
    g_assert_cmpint(cpu_take(cpus[0]), ==, -1);
    /* Physical destination by APIC id, and the delivery status bit reads idle. */
    send_ipi(cpus[0], 2, 0x43);
    g_assert_cmphex(reg(cpus[0], REG_ICR_LO) & (1u << 12), ==, 0);
    g_assert_cmphex(reg(cpus[0], REG_ICR_HI), ==, 0x02000000);
    g_assert_true(vec_in(cpus[2], REG_IRR, 0x43));
    g_assert_false(vec_in(cpus[1], REG_IRR, 0x43));

    /* An illegal vector is refused with a send error in ESR. */
    send_ipi(cpus[0], 1, 0x05);
    g_assert_false(vec_in(cpus[1], REG_IRR, 0x05));
    set_reg(cpus[0], REG_ESR, 0);
    g_assert_cmphex(reg(cpus[0], REG_ESR), ==, 0x20);
    set_reg(cpus[0], REG_ESR, 0);
    g_assert_cmphex(reg(cpus[0], REG_ESR), ==, 0);
    cpus_teardown();
}

static void test_apic_ipi_logical(void)
{
    cpus_setup();

    /* Flat model: one bit of the logical id per APIC. */
    for (int i = 0; i < NR_CPUS; i++) {
        set_reg(cpus[i], REG_LDR, (1u << i) << 24);
    }
    send_ipi(cpus[0], 0x06, ICR_LOGICAL | 0x50);
    g_assert_false(vec_in(cpus[0], REG_IRR, 0x50));
    g_assert_true(vec_in(cpus[1], REG_IRR, 0x50));
    g_assert_true(vec_in(cpus[2], REG_IRR, 0x50));

    /* Cluster model: cluster in the high nibble, members in the low one. */
    set_reg(cpus[0], REG_LDR, 0x11000000);
    set_reg(cpus[1], REG_LDR, 0x12000000);
    set_reg(cpus[2], REG_LDR, 0x21000000);
    for (int i = 0; i < NR_CPUS; i++) {
        set_reg(cpus[i], REG_DFR, 0x0fffffff);
    }
    send_ipi(cpus[0], 0x13, ICR_LOGICAL | 0x60);
    g_assert_true(vec_in(cpus[0], REG_IRR, 0x60));
    g_assert_true(vec_in(cpus[1], REG_IRR, 0x60));
    g_assert_false(vec_in(cpus[2], REG_IRR, 0x60));
    send_ipi(cpus[0], 0x21, ICR_LOGICAL | 0x61);
    g_assert_false(vec_in(cpus[0], REG_IRR, 0x61));
    g_assert_true(vec_in(cpus[2], REG_IRR, 0x61));

    /* Lowest priority: exactly one target, the one with the lowest priority. */
    set_reg(cpus[0], REG_TPR, 0x30);
    set_reg(cpus[1], REG_TPR, 0x10);
    send_ipi(cpus[2], 0x13, ICR_LOGICAL | (APIC_DM_LOWEST << 8) | 0x70);
    g_assert_false(vec_in(cpus[0], REG_IRR, 0x70));
    g_assert_true(vec_in(cpus[1], REG_IRR, 0x70));
    cpus_teardown();
}

static void test_apic_init_sipi_nmi(void)
{
    cpus_setup();

    set_reg(cpus[1], REG_TPR, 0x20);
    send_ipi(cpus[0], 0, ICR_OTHERS | ICR_ASSERT | (APIC_DM_INIT << 8));
    g_assert_cmpint(inits[0], ==, 0);
    g_assert_cmpint(inits[1], ==, 1);
    g_assert_cmpint(inits[2], ==, 1);
    /* INIT puts the APIC back to its reset registers but keeps id and base. */
    g_assert_cmphex(reg(cpus[1], REG_TPR), ==, 0);
    g_assert_cmphex(reg(cpus[1], REG_SVR), ==, 0xff);
    g_assert_cmphex(reg(cpus[1], REG_ID), ==, 0x01000000);
    /* INIT level de-assert does nothing. */
    send_ipi(cpus[0], 0, ICR_OTHERS | (1u << 15) | (APIC_DM_INIT << 8));
    g_assert_cmpint(inits[1], ==, 1);

    send_ipi(cpus[0], 2, (APIC_DM_SIPI << 8) | 0x9a);
    g_assert_cmpint(sipis[2], ==, 1);
    g_assert_cmpint(sipi_vector[2], ==, 0x9a);
    g_assert_cmpint(sipis[1], ==, 0);

    send_ipi(cpus[2], 0, (APIC_DM_NMI << 8));
    g_assert_cmpint(nmis[0], ==, 1);
    cpus_teardown();
}

static void test_apic_extint(void)
{
    cpus_setup();
    I8259State *pic = i8259_new();

    x86_irq_connect(pic, NULL);
    i8259_ioport_write(pic, 0x20, 0x11);
    i8259_ioport_write(pic, 0x21, 0x08);
    i8259_ioport_write(pic, 0x21, 0x04);
    i8259_ioport_write(pic, 0x21, 0x01);
    i8259_ioport_write(pic, 0x21, 0x00);
    int before = kicks[0];
    i8259_set_irq(pic, 1, 1);
    g_assert_cmpint(kicks[0], >, before);
    /* Only the BSP's LINT0 takes the PIC's INT; the vector comes from the PIC. */
    g_assert_cmpint(apic_get_interrupt(cpus[1]), ==, -1);
    g_assert_cmpint(cpu_take(cpus[0]), ==, 0x09);
    i8259_ioport_write(pic, 0x20, 0x0b);
    g_assert_cmphex(i8259_ioport_read(pic, 0x20), ==, 0x02);
    i8259_ioport_write(pic, 0x20, 0x20);
    i8259_set_irq(pic, 1, 0);

    /* Masked LINT0: nothing; the APIC globally disabled: the PIC goes straight through. */
    set_reg(cpus[0], REG_LVT_LINT0, 0x10700);
    i8259_set_irq(pic, 3, 1);
    g_assert_cmpint(apic_get_interrupt(cpus[0]), ==, -1);
    g_assert_true(apic_wrmsr(cpus[0], X86_MSR_APIC_BASE, 0xfee00100));
    g_assert_cmpint(cpu_take(cpus[0]), ==, 0x0b);
    cpus_teardown();
    i8259_free(pic);
}

typedef struct TimerWait {
    APICState *s;
    int vector;
} TimerWait;

static bool timer_fired(void *opaque)
{
    TimerWait *w = opaque;
    return apic_get_interrupt(w->s) == w->vector;
}

static bool timer_count_zero(void *opaque)
{
    return reg(opaque, REG_TIMER_CUR) == 0;
}

static void test_apic_timer_oneshot(void)
{
    cpus_setup();
    APICState *s = cpus[1];
    TimerWait w = { s, 0x40 };

    set_reg(s, REG_TIMER_DIV, 0xb);                 /* divide by 1: 1 ns per count */
    set_reg(s, REG_LVT_TIMER, 0x40);
    int64_t t0 = host_clock_ns();
    set_reg(s, REG_TIMER_INIT, 2000000);            /* 2 ms */
    g_assert_cmpuint(reg(s, REG_TIMER_CUR), <=, 2000000);
    g_assert_true(intc_test_wait(timer_fired, &w, INTC_TEST_TIMEOUT_MS));
    g_assert_cmpint(host_clock_ns(), >=, t0 + 2000000);
    g_assert_cmpuint(reg(s, REG_TIMER_CUR), ==, 0);
    g_assert_cmpint(cpu_take(s), ==, 0x40);
    set_reg(s, REG_EOI, 0);

    /* Masked: the count runs out without an interrupt. */
    set_reg(s, REG_LVT_TIMER, 0x10040);
    set_reg(s, REG_TIMER_INIT, 1000);
    g_assert_true(intc_test_wait(timer_count_zero, s, INTC_TEST_TIMEOUT_MS));
    g_assert_cmpint(apic_get_interrupt(s), ==, -1);
    /* A long count has not run out: its current count is still above zero. */
    set_reg(s, REG_TIMER_DIV, 0xa);                 /* divide by 128 */
    set_reg(s, REG_LVT_TIMER, 0x41);
    set_reg(s, REG_TIMER_INIT, 0xffffffff);
    g_assert_cmpuint(reg(s, REG_TIMER_CUR), >, 0);
    g_assert_cmpint(apic_get_interrupt(s), ==, -1);
    set_reg(s, REG_TIMER_INIT, 0);                  /* stops it */
    g_assert_cmpuint(reg(s, REG_TIMER_CUR), ==, 0);
    cpus_teardown();
}

static void test_apic_timer_periodic(void)
{
    cpus_setup();
    APICState *s = cpus[0];
    TimerWait w = { s, 0x42 };

    set_reg(s, REG_TIMER_DIV, 0x0);                 /* divide by 2 */
    set_reg(s, REG_LVT_TIMER, 0x20042);             /* periodic */
    set_reg(s, REG_TIMER_INIT, 250000);             /* 0.5 ms */
    for (int i = 0; i < 3; i++) {
        g_assert_true(intc_test_wait(timer_fired, &w, INTC_TEST_TIMEOUT_MS));
        g_assert_cmpint(cpu_take(s), ==, 0x42);
        set_reg(s, REG_EOI, 0);
    }
    uint32_t cur = reg(s, REG_TIMER_CUR);
    g_assert_cmpuint(cur, >, 0);
    g_assert_cmpuint(cur, <=, 250000);
    set_reg(s, REG_LVT_TIMER, 0x30042);             /* masked: stop taking them */
    cpus_teardown();
}

static void test_apic_timer_tsc_deadline(void)
{
    cpus_setup();
    APICState *s = cpus[2];
    TimerWait w = { s, 0x43 };
    uint64_t v;

    /* Outside TSC-deadline mode the MSR reads 0 and ignores writes. */
    g_assert_true(apic_wrmsr(s, X86_MSR_TSC_DEADLINE, 12345));
    g_assert_true(apic_rdmsr(s, X86_MSR_TSC_DEADLINE, &v));
    g_assert_cmpuint(v, ==, 0);

    set_reg(s, REG_LVT_TIMER, 0x40043);
    set_reg(s, REG_TIMER_INIT, 1000);               /* ignored in this mode */
    g_assert_cmpuint(reg(s, REG_TIMER_INIT), ==, 0);
    uint64_t deadline = (uint64_t)host_clock_ns() + 3000000;
    g_assert_true(apic_wrmsr(s, X86_MSR_TSC_DEADLINE, deadline));
    g_assert_true(apic_rdmsr(s, X86_MSR_TSC_DEADLINE, &v));
    g_assert_cmpuint(v, ==, deadline);
    g_assert_true(intc_test_wait(timer_fired, &w, INTC_TEST_TIMEOUT_MS));
    g_assert_cmpuint((uint64_t)host_clock_ns(), >=, deadline);
    g_assert_true(apic_rdmsr(s, X86_MSR_TSC_DEADLINE, &v));
    g_assert_cmpuint(v, ==, 0);
    cpus_teardown();
}

static void test_apic_base_msr(void)
{
    cpus_setup();
    APICState *s = cpus[0];
    uint64_t v;

    g_assert_false(apic_wrmsr(s, X86_MSR_APIC_BASE, 0xfee00d00));  /* x2APIC */
    g_assert_false(apic_wrmsr(s, X86_MSR_APIC_BASE, 0xfee00901));  /* reserved */
    g_assert_false(apic_rdmsr(s, 0x802, &v));                      /* no x2APIC MSRs */

    apic_set_current(s);
    apic_register_io();
    g_assert_cmphex(io_dispatch_read(IO_SPACE_MMIO, 0xfee00030, 4), ==, 0x00050014);
    g_assert_cmphex(io_dispatch_read(IO_SPACE_MMIO, 0xfee00020, 4), ==, 0);
    apic_set_current(cpus[2]);
    g_assert_cmphex(io_dispatch_read(IO_SPACE_MMIO, 0xfee00020, 4), ==, 0x02000000);
    apic_set_current(s);

    /* Relocation: the registers answer at the new base, the old page no longer for us. */
    g_assert_true(apic_wrmsr(s, X86_MSR_APIC_BASE, 0xfed00900));
    g_assert_cmphex(io_dispatch_read(IO_SPACE_MMIO, 0xfed00030, 4), ==, 0x00050014);
    g_assert_cmphex(io_dispatch_read(IO_SPACE_MMIO, 0xfee00030, 4), ==, 0);
    io_dispatch_write(IO_SPACE_MMIO, 0xfed00080, 0x20, 4);
    g_assert_cmphex(reg(s, REG_TPR), ==, 0x20);

    /* Global disable: no interrupts, and re-enabling finds the reset state. */
    send_ipi(s, 0, ICR_SELF | 0x80);
    g_assert_true(apic_wrmsr(s, X86_MSR_APIC_BASE, 0xfee00100));
    g_assert_cmpint(apic_get_interrupt(s), ==, -1);
    g_assert_true(apic_wrmsr(s, X86_MSR_APIC_BASE, 0xfee00900));
    g_assert_false(vec_in(s, REG_IRR, 0x80));
    g_assert_cmphex(reg(s, REG_SVR), ==, 0xff);
    apic_set_current(NULL);
    cpus_teardown();
}

static GByteArray *apic_save(APICState *s)
{
    stub_vmstate_clear();
    apic_register_vmstate(s);
    const StubVMStateEntry *e = stub_vmstate_find("apic", (uint32_t)apic_cpu_index(s));
    g_assert_nonnull(e);
    g_autoptr(GError) err = NULL;
    GByteArray *bytes = vms_stream_save(e->vmsd, e->opaque, &err);
    g_assert_no_error(err);
    return bytes;
}

static void apic_load(APICState *s, GByteArray *bytes)
{
    stub_vmstate_clear();
    apic_register_vmstate(s);
    const StubVMStateEntry *e = stub_vmstate_find("apic", (uint32_t)apic_cpu_index(s));
    g_autoptr(GError) err = NULL;
    g_assert_true(vms_stream_load(bytes->data, bytes->len, e->vmsd, s, e->vmsd->version_id,
                                  NULL, &err));
    g_assert_no_error(err);
}

static void test_apic_vmstate(void)
{
    cpus_setup();
    APICState *s = cpus[1];
    TimerWait w = { NULL, 0x44 };

    set_reg(s, REG_LDR, 0x04000000);
    set_reg(s, REG_TPR, 0x10);
    send_ipi(s, 0, ICR_SELF | 0x66);
    send_ipi(s, 0, ICR_SELF | 0x35);
    g_assert_cmpint(cpu_take(s), ==, 0x66);             /* 0x66 in service, 0x35 waits */
    set_reg(s, REG_TIMER_DIV, 0xb);
    set_reg(s, REG_LVT_TIMER, 0x20044);                 /* periodic */
    set_reg(s, REG_TIMER_INIT, 400000);
    uint32_t svr = reg(s, REG_SVR);
    g_autoptr(GByteArray) bytes = apic_save(s);
    apic_free(s);

    /* A fresh APIC of the same vCPU takes the state and carries on. */
    s = cpus[1] = apic_new(1, &test_hooks, NULL);
    apic_load(s, bytes);
    g_assert_cmphex(reg(s, REG_LDR), ==, 0x04000000);
    g_assert_cmphex(reg(s, REG_TPR), ==, 0x10);
    g_assert_cmphex(reg(s, REG_SVR), ==, svr);
    g_assert_true(vec_in(s, REG_ISR, 0x66));
    g_assert_true(vec_in(s, REG_IRR, 0x35));
    g_assert_cmphex(reg(s, REG_TIMER_INIT), ==, 400000);
    g_assert_cmpint(apic_get_interrupt(s), ==, -1);
    set_reg(s, REG_EOI, 0);
    /* The timer kept running across the load: its vector outranks 0x35. */
    w.s = s;
    g_assert_true(intc_test_wait(timer_fired, &w, INTC_TEST_TIMEOUT_MS));
    g_assert_cmpint(cpu_take(s), ==, 0x44);
    set_reg(s, REG_EOI, 0);
    g_assert_cmpint(cpu_take(s), ==, 0x35);
    set_reg(s, REG_LVT_TIMER, 0x30044);
    cpus_teardown();
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/intc/apic/registers", test_apic_registers);
    g_test_add_func("/intc/apic/priority", test_apic_priority);
    g_test_add_func("/intc/apic/ipi-shorthands", test_apic_ipi_shorthands);
    g_test_add_func("/intc/apic/ipi-logical", test_apic_ipi_logical);
    g_test_add_func("/intc/apic/init-sipi-nmi", test_apic_init_sipi_nmi);
    g_test_add_func("/intc/apic/extint", test_apic_extint);
    g_test_add_func("/intc/apic/timer-oneshot", test_apic_timer_oneshot);
    g_test_add_func("/intc/apic/timer-periodic", test_apic_timer_periodic);
    g_test_add_func("/intc/apic/timer-tsc-deadline", test_apic_timer_tsc_deadline);
    g_test_add_func("/intc/apic/base-msr", test_apic_base_msr);
    g_test_add_func("/intc/apic/vmstate", test_apic_vmstate);
    return g_test_run();
}
