/*
 * The local APIC. Every register lives in APICRegs under the irqchip
 * lock; nothing here is lock-free, because the CPU asks for interrupts
 * only when kicked or when it becomes able to take one, and the lock is
 * uncontended in the common case.
 */
#include <string.h>

#include <glib.h>

#include "hw/intc/apic.h"
#include "hw/intc/i8259.h"
#include "hw/intc/ioapic.h"
#include "hw/timer/host-timer.h"
#include "hw/x86/cpu-state.h"
#include "migration/register.h"
#include "migration/vmstate.h"
#include "system/ioport.h"
#include "system/main-loop.h"

/* Register offsets in the page. */
#define APIC_REG_ID         0x020
#define APIC_REG_VERSION    0x030
#define APIC_REG_TPR        0x080
#define APIC_REG_APR        0x090
#define APIC_REG_PPR        0x0a0
#define APIC_REG_EOI        0x0b0
#define APIC_REG_LDR        0x0d0
#define APIC_REG_DFR        0x0e0
#define APIC_REG_SVR        0x0f0
#define APIC_REG_ISR        0x100
#define APIC_REG_TMR        0x180
#define APIC_REG_IRR        0x200
#define APIC_REG_ESR        0x280
#define APIC_REG_ICR_LO     0x300
#define APIC_REG_ICR_HI     0x310
#define APIC_REG_LVT        0x320
#define APIC_REG_TIMER_INIT 0x380
#define APIC_REG_TIMER_CUR  0x390
#define APIC_REG_TIMER_DIV  0x3e0


#define APIC_VERSION_VALUE  (0x14 | ((LVT_NR - 1) << 16))


#define SVR_ENABLE          (1u << 8)
#define ICR_DEST_LOGICAL    (1u << 11)
#define ICR_LEVEL_ASSERT    (1u << 14)
#define ICR_TRIGGER_LEVEL   (1u << 15)
#define ICR_SHORTHAND_SHIFT 18
#define ICR_LO_WRITABLE     0x000ccfffu     /* all but delivery status and reserved */

#define ESR_SEND_ILLEGAL    (1u << 5)
#define ESR_RECV_ILLEGAL    (1u << 6)

#define APIC_BASE_X2APIC    (1ull << 10)
#define APIC_BASE_ADDR_MASK 0x000ffffffffff000ull
#define APIC_BASE_VALID     (APIC_BASE_ADDR_MASK | X86_APIC_BASE_ENABLE | X86_APIC_BASE_BSP)

static const uint32_t apic_lvt_writable[LVT_NR] = {
    [LVT_TIMER] = 0x000700ff,
    [LVT_THERMAL] = 0x000107ff,
    [LVT_PERF] = 0x000107ff,
    [LVT_LINT0] = 0x0001a7ff,
    [LVT_LINT1] = 0x0001a7ff,
    [LVT_ERROR] = 0x000100ff,
};

typedef APICMigRegs APICRegs;  /* the live registers have the migration form's fields */

struct APICState {
    int cpu_index;
    APICHooks hooks;
    void *opaque;
    HostTimer *timer;
    APICRegs r;
    bool extint_taken;          /* apic_get_interrupt() last answered with the PIC's vector */
    bool lint_level[2];         /* LINT0/LINT1 inputs, for edges */
    /* The stream's view: a snapshot, with timer times relative to the save. */
    APICMig mig;
};

static APICState *apics[APIC_MAX_CPUS];
static __thread APICState *apic_thread_current;
static GArray *apic_mmio_bases;    /* pages registered with the dispatch */

static void apic_notify_locked(APICState *s);
static void apic_timer_sync_locked(APICState *s);

/* Vector bitmaps (IRR, ISR, TMR) as eight 32-bit registers. */
static bool apic_vec_test(const uint32_t *map, int v)
{
    return map[v >> 5] & (1u << (v & 31));
}

static void apic_vec_set(uint32_t *map, int v)
{
    map[v >> 5] |= 1u << (v & 31);
}

static void apic_vec_clear(uint32_t *map, int v)
{
    map[v >> 5] &= ~(1u << (v & 31));
}

static int apic_vec_highest(const uint32_t *map)
{
    for (int i = 7; i >= 0; i--) {
        if (map[i]) {
            return i * 32 + 31 - __builtin_clz(map[i]);
        }
    }
    return -1;
}

static bool apic_hw_enabled(const APICState *s)
{
    return s->r.apic_base & X86_APIC_BASE_ENABLE;
}

static bool apic_sw_enabled(const APICState *s)
{
    return s->r.svr & SVR_ENABLE;
}

static bool apic_is_bsp(const APICState *s)
{
    return s->r.apic_base & X86_APIC_BASE_BSP;
}

static uint32_t apic_ppr(const APICState *s)
{
    int isrv = apic_vec_highest(s->r.isr);
    uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;

    return (s->r.tpr & 0xf0) >= isr_class ? s->r.tpr : isr_class;
}

static uint32_t apic_apr(const APICState *s)
{
    int irrv = apic_vec_highest(s->r.irr), isrv = apic_vec_highest(s->r.isr);
    uint32_t tpr_class = s->r.tpr & 0xf0;
    uint32_t irr_class = irrv < 0 ? 0 : (uint32_t)irrv & 0xf0;
    uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;

    if (tpr_class >= irr_class && tpr_class > isr_class) {
        return s->r.tpr;
    }
    return MAX(tpr_class, MAX(irr_class, isr_class));
}

/* The highest IRR vector whose priority class beats the PPR, or -1. */
static int apic_fixed_pending(const APICState *s)
{
    int v = apic_vec_highest(s->r.irr);

    if (v < 0 || ((uint32_t)v & 0xf0) <= (apic_ppr(s) & 0xf0)) {
        return -1;
    }
    return v;
}

/* Does this APIC pass the PIC's INT to its CPU now? */
static bool apic_extint_open(const APICState *s)
{
    I8259State *pic = x86_irq_pic();

    if (!pic || !i8259_output_locked(pic)) {
        return false;
    }
    if (s->r.extint_request) {
        return true;
    }
    if (!apic_is_bsp(s)) {
        return false;
    }
    uint32_t lint0 = s->r.lvt[LVT_LINT0];
    /* A globally disabled APIC leaves LINT0 as the CPU's plain INTR pin. */
    return !apic_hw_enabled(s) ||
           (!(lint0 & LVT_MASKED) && ((lint0 >> 8) & 7) == APIC_DM_EXTINT);
}

static bool apic_deliverable_locked(const APICState *s)
{
    return apic_extint_open(s) || (apic_hw_enabled(s) && apic_fixed_pending(s) >= 0);
}

static void apic_notify_locked(APICState *s)
{
    if (s->hooks.kick && apic_deliverable_locked(s)) {
        s->hooks.kick(s->opaque, s->cpu_index);
    }
}

/* A fixed interrupt arrives: into IRR, its trigger mode into TMR. */
static void apic_accept_fixed(APICState *s, int vector, bool level)
{
    if (!apic_hw_enabled(s) || !apic_sw_enabled(s)) {
        return;         /* a software-disabled APIC takes no new interrupts */
    }
    if (vector < 16) {
        s->r.esr_pending |= ESR_RECV_ILLEGAL;
        return;
    }
    apic_vec_set(s->r.irr, vector);
    if (level) {
        apic_vec_set(s->r.tmr, vector);
    } else {
        apic_vec_clear(s->r.tmr, vector);
    }
    apic_notify_locked(s);
}

/* Fire a local vector table entry (timer, error, LINT edges). */
static void apic_lvt_fire(APICState *s, int lvt)
{
    uint32_t e = s->r.lvt[lvt];

    if ((e & LVT_MASKED) || !apic_hw_enabled(s)) {
        return;
    }
    int mode = lvt == LVT_TIMER || lvt == LVT_ERROR ? APIC_DM_FIXED : (int)(e >> 8) & 7;
    switch (mode) {
    case APIC_DM_FIXED:
        apic_accept_fixed(s, e & 0xff, false);
        break;
    case APIC_DM_NMI:
        if (s->hooks.nmi) {
            s->hooks.nmi(s->opaque, s->cpu_index);
        }
        break;
    case APIC_DM_EXTINT:
        apic_notify_locked(s);
        break;
    default:
        break;          /* SMI and INIT from an LVT are not modelled */
    }
}

static void apic_error(APICState *s, uint32_t bits)
{
    bool fresh = !(s->r.esr_pending & bits);

    s->r.esr_pending |= bits;
    if (fresh) {
        apic_lvt_fire(s, LVT_ERROR);
    }
}

/* Registers as after RESET (@power_on) or INIT: everything but the id and the base MSR. */
static void apic_regs_reset(APICState *s, bool power_on)
{
    uint64_t base = s->r.apic_base;
    uint32_t id = s->r.id;

    memset(&s->r, 0, sizeof(s->r));
    s->r.apic_base = base;
    s->r.id = id;
    s->r.dfr = 0xffffffff;
    s->r.svr = 0xff;
    for (int i = 0; i < LVT_NR; i++) {
        s->r.lvt[i] = LVT_MASKED;
    }
    if (power_on && apic_is_bsp(s)) {
        /* Virtual wire mode, as PC firmware leaves it: the PIC reaches the BSP. */
        s->r.lvt[LVT_LINT0] = APIC_DM_EXTINT << 8;
        s->r.lvt[LVT_LINT1] = APIC_DM_NMI << 8;
    }
    s->extint_taken = false;
    apic_timer_sync_locked(s);
}

/* ---- timer ---- */

static unsigned apic_timer_divisor(const APICState *s)
{
    unsigned v = ((s->r.divide_conf >> 1) & 4) | (s->r.divide_conf & 3);
    return v == 7 ? 1 : 2u << v;
}

static int apic_timer_mode(const APICState *s)
{
    return (s->r.lvt[LVT_TIMER] >> LVT_TIMER_MODE_SHIFT) & 3;
}

static int64_t apic_timer_period(const APICState *s)
{
    return (int64_t)s->r.timer_initial * apic_timer_divisor(s) *
           (int64_t)(1000000000ULL / APIC_BUS_HZ);
}

static uint32_t apic_timer_current(const APICState *s, int64_t now)
{
    if (apic_timer_mode(s) == TIMER_TSC_DEADLINE || !s->r.timer_initial) {
        return 0;
    }
    uint64_t ticks = (uint64_t)MAX(now - s->r.timer_start, 0) / apic_timer_divisor(s);
    if (apic_timer_mode(s) == TIMER_PERIODIC) {
        return s->r.timer_initial - (uint32_t)(ticks % s->r.timer_initial);
    }
    return ticks >= s->r.timer_initial ? 0 : s->r.timer_initial - (uint32_t)ticks;
}

static void apic_timer_sync_locked(APICState *s)
{
    if (!s->timer) {
        return;
    }
    if (s->r.timer_armed) {
        host_timer_mod(s->timer, s->r.timer_next);
    } else {
        host_timer_del(s->timer);
    }
}

/* The host time at which the guest TSC reaches the deadline. */
static int64_t apic_tsc_deadline_to_host(const APICState *s, int64_t now)
{
    if (!s->hooks.read_tsc) {
        return now;
    }
    uint64_t tsc = s->hooks.read_tsc(s->opaque, s->cpu_index);
    if (s->r.tsc_deadline <= tsc) {
        return now;
    }
    uint64_t hz = s->hooks.tsc_hz ? s->hooks.tsc_hz : 1000000000ULL;
    unsigned __int128 ns = (unsigned __int128)(s->r.tsc_deadline - tsc) * 1000000000ULL / hz;
    return ns > INT64_MAX / 2 ? INT64_MAX / 2 : now + (int64_t)ns;
}

/* The first periodic expiry after @now (never sooner than the minimum period). */
static int64_t apic_timer_next_period(const APICState *s, int64_t now)
{
    int64_t period = apic_timer_period(s);
    int64_t next = s->r.timer_start + ((now - s->r.timer_start) / period + 1) * period;

    return period < APIC_TIMER_MIN_PERIOD_NS ? now + APIC_TIMER_MIN_PERIOD_NS : next;
}

/* Decide whether and when the timer expires next, after a register change at @now. */
static void apic_timer_update(APICState *s, int64_t now)
{
    switch (apic_timer_mode(s)) {
    case TIMER_TSC_DEADLINE:
        s->r.timer_armed = s->r.tsc_deadline != 0;
        if (s->r.timer_armed) {
            s->r.timer_next = apic_tsc_deadline_to_host(s, now);
        }
        break;
    case TIMER_PERIODIC:
        s->r.timer_armed = s->r.timer_initial != 0;
        if (s->r.timer_armed) {
            s->r.timer_next = apic_timer_next_period(s, now);
        }
        break;
    default: {
        int64_t end = s->r.timer_start + apic_timer_period(s);
        s->r.timer_armed = s->r.timer_initial != 0 && now < end;
        s->r.timer_next = end;
        break;
    }
    }
    apic_timer_sync_locked(s);
}

/* The host timer thread: no BQL, takes the irqchip lock. */
static void apic_timer_expire(void *opaque)
{
    APICState *s = opaque;

    x86_irqchip_lock();
    int64_t now = host_clock_ns();
    if (!s->r.timer_armed) {
        goto out;
    }
    if (now < s->r.timer_next) {
        apic_timer_sync_locked(s);      /* moved since the service picked it */
        goto out;
    }
    apic_lvt_fire(s, LVT_TIMER);
    if (apic_timer_mode(s) == TIMER_PERIODIC) {
        s->r.timer_next = apic_timer_next_period(s, now);
    } else {
        s->r.timer_armed = false;
        if (apic_timer_mode(s) == TIMER_TSC_DEADLINE) {
            s->r.tsc_deadline = 0;      /* the MSR reads 0 once the deadline passed */
        }
    }
    apic_timer_sync_locked(s);
out:
    x86_irqchip_unlock();
}

static void apic_timer_write_lvt(APICState *s, uint32_t value, int64_t now)
{
    int old_mode = apic_timer_mode(s);

    s->r.lvt[LVT_TIMER] = value;
    int mode = apic_timer_mode(s);
    if ((old_mode == TIMER_TSC_DEADLINE) != (mode == TIMER_TSC_DEADLINE)) {
        /* Entering or leaving TSC-deadline mode disarms the timer. */
        s->r.timer_initial = 0;
        s->r.tsc_deadline = 0;
        s->r.timer_armed = false;
        apic_timer_sync_locked(s);
    } else if (old_mode != mode) {
        apic_timer_update(s, now);
    }
}

/* ---- interrupt messages: IPIs and IOAPIC messages ---- */

typedef struct APICSet {
    uint64_t bits[4];
} APICSet;

static void apic_set_add(APICSet *set, int i)
{
    set->bits[i / 64] |= 1ull << (i % 64);
}

static bool apic_set_has(const APICSet *set, int i)
{
    return set->bits[i / 64] & (1ull << (i % 64));
}

static bool apic_matches_dest(const APICState *t, uint8_t dest, bool logical)
{
    if (!logical) {
        return dest == 0xff || (t->r.id >> 24) == dest;
    }
    uint8_t ldr = t->r.ldr >> 24;
    if ((t->r.dfr >> 28) == 0xf) {
        return ldr & dest;                              /* flat: one bit per APIC */
    }
    if (dest == 0xff) {
        return true;                                    /* cluster broadcast */
    }
    return (ldr >> 4) == (dest >> 4) && (ldr & dest & 0xf);
}

static APICSet apic_dest_set(uint8_t dest, bool logical)
{
    APICSet set = { { 0 } };

    for (int i = 0; i < APIC_MAX_CPUS; i++) {
        if (apics[i] && apic_matches_dest(apics[i], dest, logical)) {
            apic_set_add(&set, i);
        }
    }
    return set;
}

/*
 * Lowest priority: the target with the lowest processor priority (its
 * TPR, or the class in service if higher); ties go to the lowest index.
 * The SDM's arbitration priority would also count requests still in IRR,
 * which makes the choice depend on traffic no guest can see.
 */
static int apic_lowest_priority(const APICSet *set)
{
    int best = -1;
    uint32_t best_ppr = 0;

    for (int i = 0; i < APIC_MAX_CPUS; i++) {
        APICState *t = apics[i];
        if (!t || !apic_set_has(set, i) || !apic_hw_enabled(t) || !apic_sw_enabled(t)) {
            continue;
        }
        uint32_t ppr = apic_ppr(t) & 0xf0;
        if (best < 0 || ppr < best_ppr) {
            best = i;
            best_ppr = ppr;
        }
    }
    return best;
}

static void apic_deliver_one(APICState *t, int mode, uint8_t vector, bool level)
{
    if (!apic_hw_enabled(t)) {
        return;
    }
    switch (mode) {
    case APIC_DM_FIXED:
    case APIC_DM_LOWEST:
        apic_accept_fixed(t, vector, level);
        break;
    case APIC_DM_NMI:
        if (t->hooks.nmi) {
            t->hooks.nmi(t->opaque, t->cpu_index);
        }
        break;
    case APIC_DM_INIT:
        apic_regs_reset(t, false);
        if (t->hooks.init) {
            t->hooks.init(t->opaque, t->cpu_index);
        }
        break;
    case APIC_DM_SIPI:
        if (t->hooks.sipi) {
            t->hooks.sipi(t->opaque, t->cpu_index, vector);
        }
        break;
    case APIC_DM_EXTINT:
        t->r.extint_request = true;
        apic_notify_locked(t);
        break;
    default:
        break;          /* SMI: no SMM */
    }
}

static void apic_deliver_set(const APICSet *set, int mode, uint8_t vector, bool level)
{
    if (mode == APIC_DM_LOWEST) {
        int i = apic_lowest_priority(set);
        if (i >= 0) {
            apic_deliver_one(apics[i], mode, vector, level);
        }
        return;
    }
    for (int i = 0; i < APIC_MAX_CPUS; i++) {
        if (apics[i] && apic_set_has(set, i)) {
            apic_deliver_one(apics[i], mode, vector, level);
        }
    }
}

void apic_deliver_irq_locked(uint8_t dest, bool logical, int delivery_mode, uint8_t vector,
                             bool level)
{
    g_assert(x86_irqchip_locked());
    APICSet set = apic_dest_set(dest, logical);
    apic_deliver_set(&set, delivery_mode, vector, level);
}

static void apic_send_ipi(APICState *s)
{
    uint32_t lo = s->r.icr_lo;
    int mode = (lo >> 8) & 7;
    uint8_t vector = lo & 0xff;
    APICSet set = { { 0 } };

    if (mode == APIC_DM_INIT && (lo & ICR_TRIGGER_LEVEL) && !(lo & ICR_LEVEL_ASSERT)) {
        return;         /* INIT level de-assert: only old APICs resynchronise on it */
    }
    if ((mode == APIC_DM_FIXED || mode == APIC_DM_LOWEST) && vector < 16) {
        apic_error(s, ESR_SEND_ILLEGAL);
        return;
    }
    switch ((lo >> ICR_SHORTHAND_SHIFT) & 3) {
    case 0:
        set = apic_dest_set(s->r.icr_hi >> 24, lo & ICR_DEST_LOGICAL);
        break;
    case 1:
        apic_set_add(&set, s->cpu_index);
        break;
    default:
        for (int i = 0; i < APIC_MAX_CPUS; i++) {
            if (apics[i] && (i != s->cpu_index || ((lo >> ICR_SHORTHAND_SHIFT) & 3) == 2)) {
                apic_set_add(&set, i);
            }
        }
        break;
    }
    /* Delivery is instant: the delivery status bit is never seen busy. */
    apic_deliver_set(&set, mode, vector, false);
}

/* ---- the PIC's INT and the LINT pins ---- */

void apic_extint_changed_locked(void)
{
    g_assert(x86_irqchip_locked());
    I8259State *pic = x86_irq_pic();
    bool level = pic && i8259_output_locked(pic);

    for (int i = 0; i < APIC_MAX_CPUS; i++) {
        APICState *s = apics[i];
        if (!s) {
            continue;
        }
        if (apic_is_bsp(s)) {
            /* LINT0 in fixed or NMI mode sees the PIC's INT as an edge. */
            bool rising = level && !s->lint_level[0];
            s->lint_level[0] = level;
            int mode = (s->r.lvt[LVT_LINT0] >> 8) & 7;
            if (rising && apic_hw_enabled(s) && mode != APIC_DM_EXTINT) {
                apic_lvt_fire(s, LVT_LINT0);
            }
        }
        if (level) {
            apic_notify_locked(s);
        }
    }
}

/* ---- register access ---- */

static uint32_t apic_read_locked(APICState *s, uint32_t reg)
{
    if (reg >= APIC_REG_ISR && reg < APIC_REG_ISR + 0x80) {
        return s->r.isr[(reg - APIC_REG_ISR) >> 4];
    }
    if (reg >= APIC_REG_TMR && reg < APIC_REG_TMR + 0x80) {
        return s->r.tmr[(reg - APIC_REG_TMR) >> 4];
    }
    if (reg >= APIC_REG_IRR && reg < APIC_REG_IRR + 0x80) {
        return s->r.irr[(reg - APIC_REG_IRR) >> 4];
    }
    if (reg >= APIC_REG_LVT && reg < APIC_REG_LVT + 0x10 * LVT_NR) {
        return s->r.lvt[(reg - APIC_REG_LVT) >> 4];
    }
    switch (reg) {
    case APIC_REG_ID:
        return s->r.id;
    case APIC_REG_VERSION:
        return APIC_VERSION_VALUE;
    case APIC_REG_TPR:
        return s->r.tpr;
    case APIC_REG_APR:
        return apic_apr(s);
    case APIC_REG_PPR:
        return apic_ppr(s);
    case APIC_REG_LDR:
        return s->r.ldr;
    case APIC_REG_DFR:
        return s->r.dfr | 0x0fffffff;
    case APIC_REG_SVR:
        return s->r.svr;
    case APIC_REG_ESR:
        return s->r.esr;
    case APIC_REG_ICR_LO:
        return s->r.icr_lo;
    case APIC_REG_ICR_HI:
        return s->r.icr_hi;
    case APIC_REG_TIMER_INIT:
        return s->r.timer_initial;
    case APIC_REG_TIMER_CUR:
        return apic_timer_current(s, host_clock_ns());
    case APIC_REG_TIMER_DIV:
        return s->r.divide_conf;
    default:
        return 0;       /* EOI is write-only; the rest is reserved */
    }
}

static void apic_eoi(APICState *s)
{
    int v = apic_vec_highest(s->r.isr);

    if (v < 0) {
        return;
    }
    apic_vec_clear(s->r.isr, v);
    if (apic_vec_test(s->r.tmr, v) && x86_irq_ioapic()) {
        ioapic_eoi_broadcast_locked(x86_irq_ioapic(), (uint8_t)v);
    }
    apic_notify_locked(s);
}

static void apic_write_svr(APICState *s, uint32_t value)
{
    s->r.svr = value & 0x3ff;
    if (!apic_sw_enabled(s)) {
        /* Software disable masks every LVT entry. */
        for (int i = 0; i < LVT_NR; i++) {
            s->r.lvt[i] |= LVT_MASKED;
        }
    }
    apic_notify_locked(s);
}

static void apic_write_lvt(APICState *s, int lvt, uint32_t value)
{
    uint32_t old = s->r.lvt[lvt];

    value &= apic_lvt_writable[lvt];
    value |= old & ~apic_lvt_writable[lvt];     /* remote IRR and delivery status */
    if (!apic_sw_enabled(s)) {
        value |= LVT_MASKED;
    }
    if (lvt == LVT_TIMER) {
        apic_timer_write_lvt(s, value, host_clock_ns());
    } else {
        s->r.lvt[lvt] = value;
    }
    if (lvt == LVT_LINT0) {
        apic_notify_locked(s);
    }
}

static void apic_write_timer_div(APICState *s, uint32_t value)
{
    int64_t now = host_clock_ns();
    uint32_t cur = apic_timer_current(s, now);

    s->r.divide_conf = value & 0xb;
    if (apic_timer_mode(s) != TIMER_TSC_DEADLINE && s->r.timer_initial && cur) {
        /* Keep the count where it is; it falls at the new rate from here. */
        s->r.timer_start = now - (int64_t)(s->r.timer_initial - cur) * apic_timer_divisor(s);
        apic_timer_update(s, now);
    }
}

static void apic_write_locked(APICState *s, uint32_t reg, uint32_t value)
{
    if (reg >= APIC_REG_LVT && reg < APIC_REG_LVT + 0x10 * LVT_NR) {
        apic_write_lvt(s, (reg - APIC_REG_LVT) >> 4, value);
        return;
    }
    switch (reg) {
    case APIC_REG_ID:
        s->r.id = value & 0xff000000;
        break;
    case APIC_REG_TPR:
        s->r.tpr = value & 0xff;
        apic_notify_locked(s);
        break;
    case APIC_REG_EOI:
        apic_eoi(s);
        break;
    case APIC_REG_LDR:
        s->r.ldr = value & 0xff000000;
        break;
    case APIC_REG_DFR:
        s->r.dfr = value | 0x0fffffff;
        break;
    case APIC_REG_SVR:
        apic_write_svr(s, value);
        break;
    case APIC_REG_ESR:
        s->r.esr = s->r.esr_pending;
        s->r.esr_pending = 0;
        break;
    case APIC_REG_ICR_LO:
        s->r.icr_lo = value & ICR_LO_WRITABLE;
        apic_send_ipi(s);
        break;
    case APIC_REG_ICR_HI:
        s->r.icr_hi = value & 0xff000000;
        break;
    case APIC_REG_TIMER_INIT:
        if (apic_timer_mode(s) != TIMER_TSC_DEADLINE) {
            s->r.timer_initial = value;
            s->r.timer_start = host_clock_ns();
            apic_timer_update(s, s->r.timer_start);
        }
        break;
    case APIC_REG_TIMER_DIV:
        apic_write_timer_div(s, value);
        break;
    default:
        break;          /* read-only or reserved */
    }
}

uint32_t apic_mmio_read(APICState *s, uint32_t offset)
{
    x86_irqchip_lock();
    uint32_t v = apic_read_locked(s, offset & 0xff0);
    x86_irqchip_unlock();
    return v;
}

void apic_mmio_write(APICState *s, uint32_t offset, uint32_t value)
{
    x86_irqchip_lock();
    apic_write_locked(s, offset & 0xff0, value);
    x86_irqchip_unlock();
}

/* The dispatch's view: @opaque is the page's base, the APIC the calling vCPU's. */
static APICState *apic_for_page(void *opaque)
{
    APICState *s = apic_thread_current ? apic_thread_current : apics[0];
    uint64_t base = (uint64_t)(uintptr_t)opaque;

    if (!s || (s->r.apic_base & APIC_BASE_ADDR_MASK) != base || !apic_hw_enabled(s)) {
        return NULL;
    }
    return s;
}

static uint64_t apic_io_read(void *opaque, uint64_t offset, unsigned size)
{
    APICState *s = apic_for_page(opaque);

    if (!s || (offset & 0xf) >= 4) {
        return 0;
    }
    uint32_t v = apic_mmio_read(s, (uint32_t)offset) >> ((offset & 3) * 8);
    return size >= 4 ? v : v & ((1u << (size * 8)) - 1);
}

static void apic_io_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    APICState *s = apic_for_page(opaque);

    /* Registers take aligned 32-bit writes; anything else is dropped. */
    if (s && !(offset & 0xf) && size >= 4) {
        apic_mmio_write(s, (uint32_t)offset, (uint32_t)value);
    }
}

static const IoRegionOps apic_io_ops = {
    .read = apic_io_read,
    .write = apic_io_write,
};

/* Give @base a page in the dispatch (once); the dispatch table wants the BQL. */
static void apic_mmio_claim(uint64_t base)
{
    g_assert(!x86_irqchip_locked());
    bool had_bql = bql_locked();
    if (!had_bql) {
        bql_lock();
    }
    if (!apic_mmio_bases) {
        apic_mmio_bases = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    }
    bool known = false;
    for (guint i = 0; i < apic_mmio_bases->len; i++) {
        known |= g_array_index(apic_mmio_bases, uint64_t, i) == base;
    }
    if (!known) {
        g_array_append_val(apic_mmio_bases, base);
        io_region_register(IO_SPACE_MMIO, base, APIC_MMIO_SIZE, "apic", &apic_io_ops,
                           (void *)(uintptr_t)base);
    }
    if (!had_bql) {
        bql_unlock();
    }
}

void apic_register_io(void)
{
    apic_mmio_claim(APIC_DEFAULT_BASE);
}

/* ---- the CPU's side ---- */

int apic_get_interrupt(APICState *s)
{
    int v = -1;

    x86_irqchip_lock();
    s->extint_taken = false;
    if (apic_extint_open(s)) {
        v = i8259_peek_locked(x86_irq_pic());
        s->extint_taken = v >= 0;
    }
    if (v < 0 && apic_hw_enabled(s)) {
        v = apic_fixed_pending(s);
    }
    x86_irqchip_unlock();
    return v;
}

void apic_ack_interrupt(APICState *s, int vector)
{
    x86_irqchip_lock();
    if (s->extint_taken) {
        s->extint_taken = false;
        s->r.extint_request = false;
        if (x86_irq_pic()) {
            i8259_intack_locked(x86_irq_pic());
        }
    } else if (vector >= 0 && vector < 256 && apic_vec_test(s->r.irr, vector)) {
        apic_vec_clear(s->r.irr, vector);
        apic_vec_set(s->r.isr, vector);
    }
    x86_irqchip_unlock();
}

bool apic_rdmsr(APICState *s, uint32_t msr, uint64_t *value)
{
    bool ok = true;

    x86_irqchip_lock();
    if (msr == X86_MSR_APIC_BASE) {
        *value = s->r.apic_base;
    } else if (msr == X86_MSR_TSC_DEADLINE) {
        *value = apic_timer_mode(s) == TIMER_TSC_DEADLINE ? s->r.tsc_deadline : 0;
    } else {
        ok = false;
    }
    x86_irqchip_unlock();
    return ok;
}

static bool apic_write_base(APICState *s, uint64_t value, uint64_t *claim)
{
    if (value & ~APIC_BASE_VALID) {
        return false;   /* reserved bits, and x2APIC which is not offered */
    }
    bool was_enabled = apic_hw_enabled(s);
    value = (value & ~X86_APIC_BASE_BSP) | (s->r.apic_base & X86_APIC_BASE_BSP);
    if ((value & APIC_BASE_ADDR_MASK) != (s->r.apic_base & APIC_BASE_ADDR_MASK)) {
        *claim = value & APIC_BASE_ADDR_MASK;
    }
    s->r.apic_base = value;
    if (was_enabled && !apic_hw_enabled(s)) {
        /* Globally disabled: the APIC forgets its state, as if reset. */
        apic_regs_reset(s, false);
    }
    apic_notify_locked(s);
    return true;
}

bool apic_wrmsr(APICState *s, uint32_t msr, uint64_t value)
{
    bool ok = true;
    uint64_t claim = 0;

    x86_irqchip_lock();
    if (msr == X86_MSR_APIC_BASE) {
        ok = apic_write_base(s, value, &claim);
    } else if (msr == X86_MSR_TSC_DEADLINE) {
        /* Outside TSC-deadline mode writes are ignored. */
        if (apic_timer_mode(s) == TIMER_TSC_DEADLINE) {
            s->r.tsc_deadline = value;
            apic_timer_update(s, host_clock_ns());
        }
    } else {
        ok = false;
    }
    x86_irqchip_unlock();
    if (claim) {
        apic_mmio_claim(claim);
    }
    return ok;
}

uint64_t apic_get_cr8(APICState *s)
{
    x86_irqchip_lock();
    uint64_t v = (s->r.tpr >> 4) & 0xf;
    x86_irqchip_unlock();
    return v;
}

void apic_set_cr8(APICState *s, uint64_t value)
{
    x86_irqchip_lock();
    s->r.tpr = (uint32_t)(value & 0xf) << 4;
    apic_notify_locked(s);
    x86_irqchip_unlock();
}

/* ---- life cycle ---- */

void apic_reset(APICState *s)
{
    x86_irqchip_lock();
    s->r.apic_base = APIC_DEFAULT_BASE | X86_APIC_BASE_ENABLE |
                     (s->cpu_index == 0 ? X86_APIC_BASE_BSP : 0);
    s->r.id = (uint32_t)s->cpu_index << 24;
    apic_regs_reset(s, true);
    s->lint_level[0] = s->lint_level[1] = false;
    x86_irqchip_unlock();
}

APICState *apic_new(int cpu_index, const APICHooks *hooks, void *opaque)
{
    g_assert(cpu_index >= 0 && cpu_index < APIC_MAX_CPUS);
    APICState *s = g_new0(APICState, 1);

    s->cpu_index = cpu_index;
    if (hooks) {
        s->hooks = *hooks;
    }
    s->opaque = opaque;
    s->timer = host_timer_new(apic_timer_expire, s);
    apic_reset(s);
    x86_irqchip_lock();
    apics[cpu_index] = s;
    x86_irqchip_unlock();
    return s;
}

void apic_free(APICState *s)
{
    if (!s) {
        return;
    }
    x86_irqchip_lock();
    if (apics[s->cpu_index] == s) {
        apics[s->cpu_index] = NULL;
    }
    x86_irqchip_unlock();
    if (apic_thread_current == s) {
        apic_thread_current = NULL;
    }
    host_timer_free(s->timer);
    g_free(s);
}

APICState *apic_find(int cpu_index)
{
    if (cpu_index < 0 || cpu_index >= APIC_MAX_CPUS) {
        return NULL;
    }
    x86_irqchip_lock();
    APICState *s = apics[cpu_index];
    x86_irqchip_unlock();
    return s;
}

int apic_cpu_index(APICState *s)
{
    return s->cpu_index;
}

void apic_set_current(APICState *s)
{
    apic_thread_current = s;
}

APICState *apic_current(void)
{
    return apic_thread_current;
}

void apic_foreach(void (*fn)(APICState *s, void *opaque), void *opaque)
{
    for (int i = 0; i < APIC_MAX_CPUS; i++) {
        APICState *s = apic_find(i);
        if (s) {
            fn(s, opaque);
        }
    }
}

/*
 * Migration. The stream reads a snapshot taken under the irqchip lock.
 * Timer times travel relative to the moment of the save (how long the
 * count has run, how long until the next expiry), so the timer resumes
 * on another host's clock where it left off; in TSC-deadline mode the
 * deadline is a guest TSC value and is converted again after loading.
 */
static bool apic_pre_save(void *opaque, GError **errp)
{
    APICState *s = opaque;

    x86_irqchip_lock();
    int64_t now = host_clock_ns();
    s->mig.regs = s->r;
    s->mig.timer_elapsed = now - s->r.timer_start;
    s->mig.timer_remaining = s->r.timer_armed ? MAX(s->r.timer_next - now, 0) : 0;
    x86_irqchip_unlock();
    return true;
}

static bool apic_post_load(void *opaque, int version_id, GError **errp)
{
    APICState *s = opaque;

    if (s->mig.regs.apic_base & ~APIC_BASE_VALID) {
        g_set_error(errp, VMSTATE_ERROR, 0, "apic: APIC base 0x%" G_GINT64_MODIFIER "x sets "
                    "reserved or x2APIC bits", s->mig.regs.apic_base);
        return false;
    }
    if (s->mig.timer_elapsed < 0 || s->mig.timer_remaining < 0) {
        g_set_error(errp, VMSTATE_ERROR, 0, "apic: negative timer times");
        return false;
    }
    x86_irqchip_lock();
    int64_t now = host_clock_ns();
    s->r = s->mig.regs;
    s->r.timer_start = now - s->mig.timer_elapsed;
    if (s->r.timer_armed) {
        s->r.timer_next = apic_timer_mode(s) == TIMER_TSC_DEADLINE
                          ? apic_tsc_deadline_to_host(s, now) : now + s->mig.timer_remaining;
    }
    s->extint_taken = false;
    apic_timer_sync_locked(s);
    apic_notify_locked(s);
    uint64_t base = s->r.apic_base & APIC_BASE_ADDR_MASK;
    x86_irqchip_unlock();
    if (base != APIC_DEFAULT_BASE) {
        apic_mmio_claim(base);
    }
    return true;
}

static const VMStateDescription vmstate_apic_regs = {
    .name = "apic-regs",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(apic_base, APICRegs),
        VMSTATE_UINT32(id, APICRegs),
        VMSTATE_UINT32_RANGE(tpr, APICRegs, 0, 0xff),
        VMSTATE_UINT32(ldr, APICRegs),
        VMSTATE_UINT32(dfr, APICRegs),
        VMSTATE_UINT32_RANGE(svr, APICRegs, 0, 0x3ff),
        VMSTATE_UINT32(esr, APICRegs),
        VMSTATE_UINT32(esr_pending, APICRegs),
        VMSTATE_UINT32_ARRAY(isr, APICRegs, 8),
        VMSTATE_UINT32_ARRAY(tmr, APICRegs, 8),
        VMSTATE_UINT32_ARRAY(irr, APICRegs, 8),
        VMSTATE_UINT32(icr_lo, APICRegs),
        VMSTATE_UINT32(icr_hi, APICRegs),
        VMSTATE_UINT32_ARRAY(lvt, APICRegs, LVT_NR),
        VMSTATE_UINT32(timer_initial, APICRegs),
        VMSTATE_UINT32_RANGE(divide_conf, APICRegs, 0, 0xb),
        VMSTATE_UINT64(tsc_deadline, APICRegs),
        VMSTATE_BOOL(extint_request, APICRegs),
        VMSTATE_BOOL(timer_armed, APICRegs),
        VMSTATE_END_OF_LIST()
    },
};

const VMStateDescription vmstate_apic_mig = {
    .name = "apic-state",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(regs, APICMig, vmstate_apic_regs, APICRegs),
        VMSTATE_INT64(timer_elapsed, APICMig),
        VMSTATE_INT64(timer_remaining, APICMig),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_apic = {
    .name = "apic",
    .version_id = APIC_VMSTATE_VERSION,
    .minimum_version_id = 1,
    .pre_save = apic_pre_save,
    .post_load = apic_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(mig, APICState, vmstate_apic_mig, APICMig),
        VMSTATE_END_OF_LIST()
    },
};

void apic_set_tsc_hz(APICState *s, uint64_t hz)
{
    x86_irqchip_lock();
    s->hooks.tsc_hz = hz;
    x86_irqchip_unlock();
}

void apic_register_vmstate(APICState *s)
{
    vmstate_register("apic", (uint32_t)s->cpu_index, &vmstate_apic, s);
}
