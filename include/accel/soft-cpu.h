/*
 * The software x86-64 CPU (accel/soft): an interpreter of guest code.
 *
 * This header is the core's whole surface. The core knows nothing of
 * Ferry's machine: guest RAM, port I/O, MMIO, interrupts and the dirty
 * bitmap reach it through SoftCPUHooks, so it runs the same under the
 * machine (accel/soft/soft-accel.c) and under unit and differential tests
 * (a flat buffer as RAM).
 *
 * Threads: one thread runs a SoftCPU at a time (its vCPU thread). Other
 * threads only call soft_cpu_kick(), soft_cpu_interrupt_changed() and
 * soft_cpu_flush_dirty_tracking(), which are safe from any thread.
 */
#ifndef ACCEL_SOFT_CPU_H
#define ACCEL_SOFT_CPU_H

#include <stdbool.h>
#include <stdint.h>

#include "hw/x86/cpu-state.h"

typedef struct SoftCPU SoftCPU;

typedef struct SoftCPUHooks {
    /*
     * The host address of the guest-physical page holding @gpa (4 KiB
     * aligned down), or NULL when it is not RAM (MMIO, or nothing).
     * The core caches the answer in its TLB until
     * soft_cpu_flush_tlb()/the guest flushes.
     */
    uint8_t *(*ram_page)(void *opaque, uint64_t gpa);
    /*
     * Called once before the first write to a guest-physical RAM page
     * after soft_cpu_flush_dirty_tracking() (and before the first write
     * ever): the machine marks the page dirty for migration. While
     * tracking is on, writes to a page go through this again after every
     * flush; between flushes they take the fast path.
     */
    void (*mark_dirty)(void *opaque, uint64_t gpa_page);
    /* Accesses that are not RAM. @size is 1, 2, 4 or 8. */
    uint64_t (*mmio_read)(void *opaque, uint64_t gpa, unsigned size);
    void (*mmio_write)(void *opaque, uint64_t gpa, uint64_t value, unsigned size);
    uint32_t (*pio_read)(void *opaque, uint16_t port, unsigned size);
    void (*pio_write)(void *opaque, uint16_t port, uint32_t value, unsigned size);
    /*
     * External interrupts (LAPIC or PIC). has_interrupt() is asked only
     * after soft_cpu_interrupt_changed() and at instruction boundaries
     * where RFLAGS.IF is 1 and no shadow is active; it returns the vector
     * or -1. ack_interrupt(vector) is called when the core delivers it.
     */
    int (*get_interrupt)(void *opaque);
    void (*ack_interrupt)(void *opaque, int vector);
    /*
     * MSRs the core does not keep itself (the APIC's, TSC deadline):
     * return false to raise #GP in the guest.
     */
    bool (*rdmsr)(void *opaque, uint32_t msr, uint64_t *value);
    bool (*wrmsr)(void *opaque, uint32_t msr, uint64_t value);
    /* CR8 reads and writes (the APIC's TPR). */
    uint64_t (*read_cr8)(void *opaque);
    void (*write_cr8)(void *opaque, uint64_t value);
    /*
     * The TSC the VM's vCPUs share; a guest write to IA32_TSC adds an
     * offset of that vCPU's own on top (X86CPUState.tsc_adjust).
     */
    uint64_t (*read_tsc)(void *opaque);
    /*
     * The rate of read_tsc and the clock of the local APIC timer (Intel's
     * "crystal"; 0: the same as tsc_hz), in Hz, which CPUID leaves 15H/16H
     * report so that a guest need not calibrate. tsc_hz 0: unknown, those
     * leaves read zero.
     */
    uint64_t tsc_hz;
    uint64_t crystal_hz;
    /*
     * Optional: the last word on a CPUID answer (@out as the core computed
     * it), for a VM that must offer no more than a migration source did.
     */
    void (*cpuid_filter)(void *opaque, uint32_t leaf, uint32_t sub, uint32_t out[4]);
} SoftCPUHooks;

typedef enum SoftCPUExit {
    SOFT_EXIT_KICKED,           /* soft_cpu_kick() was called */
    SOFT_EXIT_HALTED,           /* HLT with no interrupt pending: caller waits */
    SOFT_EXIT_SHUTDOWN,         /* triple fault */
    SOFT_EXIT_LIMIT,            /* ran @max_insns instructions */
    SOFT_EXIT_INTERNAL_ERROR,   /* a state the core cannot continue from */
} SoftCPUExit;

/* @cpuid_index is the APIC id CPUID reports; @nr_cpus sizes the topology. */
SoftCPU *soft_cpu_new(const SoftCPUHooks *hooks, void *opaque, int cpuid_index, int nr_cpus);
void soft_cpu_free(SoftCPU *cpu);
/* What CPUID answers on @cpu for @leaf and @sub (any thread; the filter applied). */
void soft_cpu_cpuid(SoftCPU *cpu, uint32_t leaf, uint32_t sub, uint32_t out[4]);

/*
 * Whole architectural state in and out (between runs only). get_state only
 * reads: requests posted by other threads stay pending until the vCPU runs
 * (a posted NMI shows as nmi_pending; a posted INIT/SIPI does not show).
 * st->tsc is this vCPU's TSC (read_tsc plus its own offset, which is
 * st->tsc_adjust); set_state takes the offset from st->tsc_adjust and
 * leaves read_tsc's base to the hook's owner.
 */
void soft_cpu_get_state(SoftCPU *cpu, X86CPUState *st);
void soft_cpu_set_state(SoftCPU *cpu, const X86CPUState *st);

/*
 * Machine reset (between runs only): drops this vCPU's posted requests
 * (INIT, SIPI, NMI, kick, flushes), a pending or injected interrupt, an
 * exception in flight, its guest-written TSC offset, its decoded blocks and
 * TLB, and returns the state to power-on values, MTRRs included. The
 * caller then sets the machine's power-on state with soft_cpu_set_state().
 */
void soft_cpu_reset(SoftCPU *cpu);

/*
 * Run until something in SoftCPUExit happens. @max_insns 0 means no
 * limit. Port I/O and MMIO go to the hooks from inside this call.
 */
SoftCPUExit soft_cpu_run(SoftCPU *cpu, uint64_t max_insns);

/* Make soft_cpu_run() return at the next instruction boundary. Any thread. */
void soft_cpu_kick(SoftCPU *cpu);
/* An interrupt may have become pending: check at the next boundary. Any thread. */
void soft_cpu_interrupt_changed(SoftCPU *cpu);

/*
 * Migration started a new dirty round: every page must go through
 * mark_dirty() again before its next write. Any thread; takes effect at
 * the vCPU's next instruction boundary, and for a running vCPU before
 * soft_cpu_kick() returns control to its caller.
 */
void soft_cpu_flush_dirty_tracking(SoftCPU *cpu);
/*
 * The VMM wrote guest RAM at [gpa, gpa+len) (a device, a loader, an
 * incoming migration): drop decoded code of those pages. Any thread.
 * Which pages hold decoded code is known process-wide (one process runs
 * one VM), so a call on any one vCPU covers all of them.
 */
void soft_cpu_invalidate_code(SoftCPU *cpu, uint64_t gpa, uint64_t len);
/*
 * Forget every cached translation and this vCPU's decoded blocks (the RAM
 * map changed). Any thread; applied at the next instruction boundary.
 */
void soft_cpu_flush_tlb(SoftCPU *cpu);

/*
 * Deliver INIT / SIPI / NMI from the LAPIC (between runs or after a kick).
 * Also safe from any thread while the vCPU runs: they take effect at its
 * next instruction boundary. A vCPU parked after SOFT_EXIT_HALTED needs its
 * caller to run it again (INIT then SIPI leaves it runnable at the vector).
 */
void soft_cpu_init_signal(SoftCPU *cpu);
void soft_cpu_sipi(SoftCPU *cpu, uint8_t vector);
void soft_cpu_nmi(SoftCPU *cpu);

/*
 * What the guest's own writes to IA32_TSC added to the TSC on this vCPU
 * (0 if none): its TSC is the read_tsc hook's plus this. Any thread.
 */
int64_t soft_cpu_tsc_adjust(SoftCPU *cpu);

/* Counters for benchmarks and tests. */
uint64_t soft_cpu_insn_count(SoftCPU *cpu);

/*
 * What CPUID leaf 1 reports in EAX (family/model/stepping) and EDX
 * (feature flags), for tables the firmware side builds (the MP table).
 */
void soft_cpu_signature(uint32_t *eax, uint32_t *edx);

#endif
