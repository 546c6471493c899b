/*
 * The local APIC (xAPIC mode only; x2APIC is neither implemented nor
 * advertised), one per vCPU.
 *
 * Registers: the 4 KiB MMIO page at the APIC base (0xfee00000 after
 * reset, movable through IA32_APIC_BASE); version 0x14 with 6 LVT entries
 * (timer, thermal, performance, LINT0, LINT1, error).
 *
 * Timer: the "bus" clock the divide configuration divides is a fixed
 * 1 GHz (APIC_BUS_HZ): with divide-by-1 the count falls by one per host
 * nanosecond, by 16 it falls at 62.5 MHz. Current count is computed from
 * the host clock (CLOCK_MONOTONIC); expiries come from the host timer
 * service. TSC-deadline mode converts the guest TSC deadline with the
 * owner's read_tsc hook and tsc_hz. Periodic mode never fires more often
 * than every APIC_TIMER_MIN_PERIOD_NS (the count still runs at full rate).
 *
 * Which APIC the MMIO page reaches: the MMIO dispatch is global, so the
 * one page answers for the APIC of the calling thread, apic_current(),
 * which each vCPU thread sets once with apic_set_current() before it runs
 * guest code. A thread that has none (qtest, the monitor) reaches the
 * APIC of vCPU 0.
 *
 * Locking: the irqchip lock (x86-irq.h) guards every register, including
 * IRR/ISR/TPR, so apic_get_interrupt()/apic_ack_interrupt() are safe from
 * the vCPU thread without the BQL, and the timer expires from the host
 * timer thread without it. The hooks run with the irqchip lock held.
 */
#ifndef HW_INTC_APIC_H
#define HW_INTC_APIC_H

#include <stdbool.h>
#include <stdint.h>

#include "hw/intc/x86-irq.h"
#include "migration/vmstate.h"

#define APIC_MAX_CPUS           255     /* xAPIC ids 0-254; 0xff is broadcast */
#define APIC_DEFAULT_BASE       0xfee00000ULL
#define APIC_MMIO_SIZE          0x1000
#define APIC_BUS_HZ             1000000000ULL
#define APIC_TIMER_MIN_PERIOD_NS 100000  /* 10 kHz at most in periodic mode */

/* Delivery modes of ICR, LVT and IOAPIC entries. */
#define APIC_DM_FIXED           0
#define APIC_DM_LOWEST          1
#define APIC_DM_SMI             2
#define APIC_DM_NMI             4
#define APIC_DM_INIT            5
#define APIC_DM_SIPI            6
#define APIC_DM_EXTINT          7

typedef struct APICState APICState;

/* Local vector table entries, in register order (0x320, 0x330, ... 0x370). */
enum { LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR, LVT_NR };

#define LVT_MASKED          (1u << 16)
#define LVT_TIMER_MODE_SHIFT 17
#define TIMER_ONESHOT       0
#define TIMER_PERIODIC      1
#define TIMER_TSC_DEADLINE  2

/* The registers, as the model keeps them and as they migrate. */
typedef struct APICMigRegs {
    uint64_t apic_base;
    uint32_t id;                /* the register: id in bits 31:24 */
    uint32_t tpr, ldr, dfr, svr;
    uint32_t esr;               /* what the last ESR write latched */
    uint32_t esr_pending;       /* errors since */
    uint32_t isr[8], tmr[8], irr[8];
    uint32_t icr_lo, icr_hi;
    uint32_t lvt[LVT_NR];
    uint32_t timer_initial;
    uint32_t divide_conf;
    uint64_t tsc_deadline;      /* the guest TSC value; 0: none */
    bool extint_request;        /* an ExtINT message waits for the PIC's vector */
    bool timer_armed;
    /* Host clock times, never migrated as such (see APICMig). */
    int64_t timer_start;        /* when the count was last loaded */
    int64_t timer_next;         /* the next expiry, while armed */
} APICMigRegs;

/*
 * The migration form, the same for the model here and KVM's in-kernel
 * LAPIC (accel/kvm/kvm-irqchip.c): section ("apic", n) of version
 * APIC_VMSTATE_VERSION, one field "mig" described by vmstate_apic_mig.
 * Timer times are relative to the save: how long the count has run
 * (modulo the period in periodic mode) and how long until the next
 * expiry (0 when not armed); in TSC-deadline mode the deadline, a guest
 * TSC value, is all that counts. The APIC bus runs at APIC_BUS_HZ.
 */
typedef struct APICMig {
    APICMigRegs regs;
    int64_t timer_elapsed;
    int64_t timer_remaining;
} APICMig;

#define APIC_VMSTATE_VERSION    1
extern const VMStateDescription vmstate_apic_mig;

/* The guest TSC's rate (TSC-deadline mode) changed: a VM taking a migration's. */
void apic_set_tsc_hz(APICState *s, uint64_t hz);

/* What the owner (the vCPU glue) does for the APIC. @cpu_index as given to apic_new(). */
typedef struct APICHooks {
    /* An interrupt may have become deliverable: soft_cpu_interrupt_changed(), wake a HLT. */
    void (*kick)(void *opaque, int cpu_index);
    /* INIT arrived (the APIC itself is already back to its INIT state). */
    void (*init)(void *opaque, int cpu_index);
    /* Start-up IPI; the CPU ignores it unless waiting for SIPI. */
    void (*sipi)(void *opaque, int cpu_index, uint8_t vector);
    void (*nmi)(void *opaque, int cpu_index);
    /* The guest TSC (TSC-deadline mode); NULL: deadlines fire at once. */
    uint64_t (*read_tsc)(void *opaque, int cpu_index);
    /* The guest TSC's rate in Hz (0: treated as 1 GHz). */
    uint64_t tsc_hz;
} APICHooks;

/*
 * The APIC of vCPU @cpu_index (its APIC id, and the BSP when 0), in its
 * power-on state. @hooks is copied. Replaces an earlier APIC of the same
 * index in the set IPIs reach.
 */
APICState *apic_new(int cpu_index, const APICHooks *hooks, void *opaque);
void apic_free(APICState *s);
/* Power-on state (the BSP's LINT0 in ExtINT and LINT1 in NMI mode, as firmware leaves them). */
void apic_reset(APICState *s);
/* Claim the MMIO page at the default base (once for all APICs). */
void apic_register_io(void);
/* Migration: ("apic", cpu_index). */
void apic_register_vmstate(APICState *s);

/* The APIC of @cpu_index, or NULL. */
APICState *apic_find(int cpu_index);
int apic_cpu_index(APICState *s);

/* Which APIC this thread's MMIO accesses reach (see above). */
void apic_set_current(APICState *s);
APICState *apic_current(void);

/* Register access at @offset in the page, 32 bits (what the dispatch calls). */
uint32_t apic_mmio_read(APICState *s, uint32_t offset);
void apic_mmio_write(APICState *s, uint32_t offset, uint32_t value);

/*
 * For the CPU, at an instruction boundary with RFLAGS.IF set: the vector
 * to deliver (a fixed interrupt above the processor priority, or an
 * ExtINT vector from the PIC), or -1. apic_ack_interrupt() with that
 * vector moves it from IRR to ISR (for ExtINT, acknowledges the PIC).
 */
int apic_get_interrupt(APICState *s);
void apic_ack_interrupt(APICState *s, int vector);

/* IA32_APIC_BASE and IA32_TSC_DEADLINE; false for any other MSR or a bad value (#GP). */
bool apic_rdmsr(APICState *s, uint32_t msr, uint64_t *value);
bool apic_wrmsr(APICState *s, uint32_t msr, uint64_t value);

/* CR8 is TPR[7:4]. */
uint64_t apic_get_cr8(APICState *s);
void apic_set_cr8(APICState *s, uint64_t value);

/* Irqchip lock held: an interrupt message (from the IOAPIC) to the APICs @dest names. */
void apic_deliver_irq_locked(uint8_t dest, bool logical, int delivery_mode, uint8_t vector,
                             bool level);
/* Irqchip lock held: the PIC's INT output moved. */
void apic_extint_changed_locked(void);
/* Every APIC (for reset and migration), in cpu index order. */
void apic_foreach(void (*fn)(APICState *s, void *opaque), void *opaque);

#endif
