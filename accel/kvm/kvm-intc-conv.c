/*
 * KVM's in-kernel interrupt controllers and PIT in the migration forms of
 * the user-space models (include/hw/intc/{i8259,ioapic,apic}.h,
 * include/hw/timer/i8254.h), and back: pure conversions, no ioctls, so
 * one stream serves either emulation (kvm-irqchip.c does the ioctls).
 *
 * Time: KVM's PIT keeps the host CLOCK_MONOTONIC time a channel's count
 * was loaded (count_load_time); the neutral form keeps the ticks counted
 * since, so a channel resumes on any clock. KVM's LAPIC reports the
 * current count in TMCCT (KVM_GET_LAPIC) and restarts its timer from
 * TMCCT on KVM_SET_LAPIC; the neutral form keeps the time the count has
 * run and the time to the next expiry, on a 1 GHz APIC bus like KVM's.
 */
#include <string.h>

#include "accel/kvm.h"

/* ---- 8259 ---- */

void kvm_pic_to_mig(const struct kvm_pic_state *k, I8259Mig *m)
{
    *m = (I8259Mig) {
        .irr = k->irr, .isr = k->isr, .imr = k->imr,
        .input = k->last_irr,
        .elcr = k->elcr,
        .vector_base = k->irq_base & 0xf8,
        .priority_base = k->priority_add & 7,
        .init_step = k->init_state & 3,
        .icw4_expected = k->init4,
        .single = false,        /* KVM always takes ICW3 */
        .auto_eoi = k->auto_eoi,
        .rotate_aeoi = k->rotate_on_auto_eoi,
        .sfnm = k->special_fully_nested_mode,
        .special_mask = k->special_mask,
        .read_isr = k->read_reg_select,
        .poll = k->poll,
    };
}

void kvm_pic_from_mig(const I8259Mig *m, struct kvm_pic_state *k)
{
    k->irr = m->irr;
    k->isr = m->isr;
    k->imr = m->imr;
    k->last_irr = m->input;
    k->elcr = m->elcr;
    k->irq_base = m->vector_base & 0xf8;
    k->priority_add = m->priority_base & 7;
    k->init_state = m->init_step;
    k->init4 = m->icw4_expected;
    k->auto_eoi = m->auto_eoi;
    k->rotate_on_auto_eoi = m->rotate_aeoi;
    k->special_fully_nested_mode = m->sfnm;
    k->special_mask = m->special_mask;
    k->read_reg_select = m->read_isr;
    k->poll = m->poll;
}

/* ---- IOAPIC ---- */

void kvm_ioapic_to_mig(const struct kvm_ioapic_state *k, IOAPICMig *m)
{
    memset(m, 0, sizeof(*m));
    m->id = (uint8_t)(k->id & 0xf);
    m->select = (uint8_t)k->ioregsel;
    m->levels = k->irr & ((1u << IOAPIC_NR_PINS) - 1);
    for (int i = 0; i < IOAPIC_NR_PINS; i++) {
        m->rte[i] = k->redirtbl[i].bits;
    }
}

void kvm_ioapic_from_mig(const IOAPICMig *m, struct kvm_ioapic_state *k)
{
    k->id = m->id & 0xf;
    k->ioregsel = m->select;
    /*
     * KVM delivers again what irr holds when it is set: only level inputs
     * that are high (a remote IRR in the entry holds them back until the
     * EOI); an edge was delivered when it came.
     */
    k->irr = 0;
    for (int i = 0; i < IOAPIC_NR_PINS; i++) {
        k->redirtbl[i].bits = m->rte[i];
        if ((m->levels & (1u << i)) && (m->rte[i] & IOAPIC_RTE_LEVEL)) {
            k->irr |= 1u << i;
        }
    }
}

/* ---- 8254 ---- */

/* KVM's read and write states: which byte of a word comes next. */
enum { KVM_RW_LSB = 1, KVM_RW_MSB = 2, KVM_RW_WORD0 = 3, KVM_RW_WORD1 = 4 };
#define KVM_PIT_MODE_UNSET  0xff        /* never programmed since reset */

void kvm_pit_to_mig(const struct kvm_pit_state2 *k, int64_t now, I8254Mig *m)
{
    memset(m, 0, sizeof(*m));
    for (int i = 0; i < PIT_NR_CHANNELS; i++) {
        const struct kvm_pit_channel_state *kc = &k->channels[i];
        I8254Channel *c = &m->ch[i];
        bool unset = kc->mode > 5;

        c->mode = unset ? 0 : kc->mode;
        c->rw_mode = kc->rw_mode >= RW_LSB && kc->rw_mode <= RW_WORD ? kc->rw_mode : RW_WORD;
        c->bcd = kc->bcd & 1;
        c->count = kc->count >= 1 && kc->count <= 0x10000 ? kc->count : 0x10000;
        c->gate = kc->gate & 1;
        c->loaded = !unset;
        c->triggered = (c->mode == 1 || c->mode == 5) && c->gate;
        c->running = c->loaded && c->gate && (c->triggered || (c->mode != 1 && c->mode != 5));
        c->ticks_base = c->running ? i8254_ns_to_ticks(now - kc->count_load_time) : 0;
        c->write_msb_next = kc->write_state == KVM_RW_WORD1;
        c->write_lsb = kc->write_latch;
        c->read_msb_next = kc->read_state == KVM_RW_WORD1;
        c->latch = kc->latched_count;
        c->latch_left = kc->count_latched == KVM_RW_WORD0 ? 2 : kc->count_latched ? 1 : 0;
        c->status = kc->status;
        c->status_latched = kc->status_latched & 1;
    }
    m->port61 = (m->ch[2].gate ? PORT61_GATE2 : 0) |
                (k->flags & KVM_PIT_FLAGS_SPEAKER_DATA_ON ? PORT61_SPEAKER : 0);
    /* IRQ 0 stays high after channel 0's first terminal count (edges are pulses). */
    const I8254Channel *c0 = &m->ch[0];
    m->irq_level = c0->loaded && c0->mode != 1 && c0->mode != 5 && c0->ticks_base >= c0->count;
}

void kvm_pit_from_mig(const I8254Mig *m, int64_t now, struct kvm_pit_state2 *k)
{
    for (int i = 0; i < PIT_NR_CHANNELS; i++) {
        const I8254Channel *c = &m->ch[i];
        struct kvm_pit_channel_state *kc = &k->channels[i];
        bool word = c->rw_mode == RW_WORD;

        kc->count = c->count;
        kc->mode = c->loaded || c->null_count ? c->mode : KVM_PIT_MODE_UNSET;
        kc->rw_mode = c->rw_mode;
        kc->bcd = c->bcd;
        kc->gate = c->gate;
        kc->write_state = word ? (c->write_msb_next ? KVM_RW_WORD1 : KVM_RW_WORD0) : c->rw_mode;
        kc->write_latch = c->write_lsb;
        kc->read_state = word ? (c->read_msb_next ? KVM_RW_WORD1 : KVM_RW_WORD0) : c->rw_mode;
        kc->latched_count = c->latch;
        kc->count_latched = c->latch_left == 2 ? KVM_RW_WORD0
                          : c->latch_left == 1 ? (c->rw_mode == RW_LSB ? KVM_RW_LSB : KVM_RW_MSB)
                          : 0;
        kc->status = c->status;
        kc->status_latched = c->status_latched;
        kc->count_load_time = now - i8254_ticks_to_ns(c->ticks_base);
    }
    k->flags = (k->flags & ~(uint32_t)KVM_PIT_FLAGS_SPEAKER_DATA_ON) |
               (m->port61 & PORT61_SPEAKER ? KVM_PIT_FLAGS_SPEAKER_DATA_ON : 0);
}

/* ---- local APIC ---- */

#define KVM_APIC_ID         0x020
#define KVM_APIC_TPR        0x080
#define KVM_APIC_LDR        0x0d0
#define KVM_APIC_DFR        0x0e0
#define KVM_APIC_SVR        0x0f0
#define KVM_APIC_ISR        0x100
#define KVM_APIC_TMR        0x180
#define KVM_APIC_IRR        0x200
#define KVM_APIC_ESR        0x280
#define KVM_APIC_ICR_LO     0x300
#define KVM_APIC_ICR_HI     0x310
#define KVM_APIC_LVT        0x320
#define KVM_APIC_TMICT      0x380
#define KVM_APIC_TMCCT      0x390
#define KVM_APIC_TDCR       0x3e0
#define APIC_NS_PER_TICK    ((int64_t)(1000000000ULL / APIC_BUS_HZ))

static uint32_t kvm_lapic_get(const struct kvm_lapic_state *l, unsigned off)
{
    uint32_t v;
    memcpy(&v, &l->regs[off], 4);
    return v;
}

static void kvm_lapic_put(struct kvm_lapic_state *l, unsigned off, uint32_t v)
{
    memcpy(&l->regs[off], &v, 4);
}

static int64_t kvm_lapic_tick_ns(uint32_t divide_conf)
{
    unsigned v = ((divide_conf >> 1) & 4) | (divide_conf & 3);
    return (v == 7 ? 1 : 2 << v) * APIC_NS_PER_TICK;
}

void kvm_lapic_to_mig(const struct kvm_lapic_state *l, uint64_t apic_base,
                      uint64_t tsc_deadline, APICMig *m)
{
    APICMigRegs *r = &m->regs;

    memset(m, 0, sizeof(*m));
    r->apic_base = apic_base;
    r->id = kvm_lapic_get(l, KVM_APIC_ID);
    r->tpr = kvm_lapic_get(l, KVM_APIC_TPR) & 0xff;
    r->ldr = kvm_lapic_get(l, KVM_APIC_LDR);
    r->dfr = kvm_lapic_get(l, KVM_APIC_DFR);
    r->svr = kvm_lapic_get(l, KVM_APIC_SVR) & 0x3ff;
    r->esr = kvm_lapic_get(l, KVM_APIC_ESR);
    for (int i = 0; i < 8; i++) {
        r->isr[i] = kvm_lapic_get(l, KVM_APIC_ISR + 0x10 * (unsigned)i);
        r->tmr[i] = kvm_lapic_get(l, KVM_APIC_TMR + 0x10 * (unsigned)i);
        r->irr[i] = kvm_lapic_get(l, KVM_APIC_IRR + 0x10 * (unsigned)i);
    }
    r->icr_lo = kvm_lapic_get(l, KVM_APIC_ICR_LO);
    r->icr_hi = kvm_lapic_get(l, KVM_APIC_ICR_HI);
    for (int i = 0; i < LVT_NR; i++) {
        r->lvt[i] = kvm_lapic_get(l, KVM_APIC_LVT + 0x10 * (unsigned)i);
    }
    r->timer_initial = kvm_lapic_get(l, KVM_APIC_TMICT);
    r->divide_conf = kvm_lapic_get(l, KVM_APIC_TDCR) & 0xb;
    r->tsc_deadline = tsc_deadline;

    int mode = (r->lvt[LVT_TIMER] >> LVT_TIMER_MODE_SHIFT) & 3;
    uint32_t cur = kvm_lapic_get(l, KVM_APIC_TMCCT);
    int64_t tick = kvm_lapic_tick_ns(r->divide_conf);
    if (mode == TIMER_TSC_DEADLINE) {
        r->timer_armed = tsc_deadline != 0;
    } else if (r->timer_initial) {
        if (mode == TIMER_PERIODIC && (cur == 0 || cur > r->timer_initial)) {
            cur = r->timer_initial;
        }
        cur = MIN(cur, r->timer_initial);
        r->timer_armed = cur != 0;
        m->timer_elapsed = (int64_t)(r->timer_initial - cur) * tick;
        m->timer_remaining = (int64_t)cur * tick;
    }
}

void kvm_lapic_from_mig(const APICMig *m, struct kvm_lapic_state *l)
{
    const APICMigRegs *r = &m->regs;

    kvm_lapic_put(l, KVM_APIC_ID, r->id);
    kvm_lapic_put(l, KVM_APIC_TPR, r->tpr);
    kvm_lapic_put(l, KVM_APIC_LDR, r->ldr);
    kvm_lapic_put(l, KVM_APIC_DFR, r->dfr);
    kvm_lapic_put(l, KVM_APIC_SVR, r->svr);
    kvm_lapic_put(l, KVM_APIC_ESR, r->esr | r->esr_pending);
    for (int i = 0; i < 8; i++) {
        kvm_lapic_put(l, KVM_APIC_ISR + 0x10 * (unsigned)i, r->isr[i]);
        kvm_lapic_put(l, KVM_APIC_TMR + 0x10 * (unsigned)i, r->tmr[i]);
        kvm_lapic_put(l, KVM_APIC_IRR + 0x10 * (unsigned)i, r->irr[i]);
    }
    kvm_lapic_put(l, KVM_APIC_ICR_LO, r->icr_lo);
    kvm_lapic_put(l, KVM_APIC_ICR_HI, r->icr_hi);
    for (int i = 0; i < LVT_NR; i++) {
        kvm_lapic_put(l, KVM_APIC_LVT + 0x10 * (unsigned)i, r->lvt[i]);
    }
    kvm_lapic_put(l, KVM_APIC_TMICT, r->timer_initial);
    kvm_lapic_put(l, KVM_APIC_TDCR, r->divide_conf);

    /* KVM restarts the timer from TMCCT: the count left until the next expiry. */
    int mode = (r->lvt[LVT_TIMER] >> LVT_TIMER_MODE_SHIFT) & 3;
    uint32_t cur = 0;
    if (mode != TIMER_TSC_DEADLINE && r->timer_initial && r->timer_armed) {
        int64_t tick = kvm_lapic_tick_ns(r->divide_conf);
        int64_t left = (m->timer_remaining + tick - 1) / tick;
        cur = (uint32_t)MAX(MIN(left, (int64_t)r->timer_initial), 1);
    }
    kvm_lapic_put(l, KVM_APIC_TMCCT, cur);
}
