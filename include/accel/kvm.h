/*
 * KVM: the VM and vCPU file descriptors, memory slots, the in-kernel
 * irqchip, KVM_RUN and its exits. Only accel/kvm/ (and its tests)
 * include this header; everything else goes through system/accel.h.
 */
#ifndef ACCEL_KVM_H
#define ACCEL_KVM_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <gio/gio.h>
#include <linux/kvm.h>

#include "hw/intc/apic.h"
#include "hw/intc/i8259.h"
#include "hw/intc/ioapic.h"
#include "hw/timer/i8254.h"
#include "system/accel.h"
#include "system/cpus.h"

typedef struct KVMState {
    int fd;                     /* /dev/kvm */
    int vmfd;
    int vcpu_mmap_size;
    struct kvm_cpuid2 *supported_cpuid;
    int nr_slots;
    /*
     * -cpu qemu64: the software CPU's features (those KVM supports too)
     * and no KVM paravirtual leaves, so the guest can move to tcg.
     */
    bool portable;
    uint32_t tsc_khz;           /* the vCPUs' TSC rate (0: unknown) */
} KVMState;

extern KVMState *kvm_state;

typedef struct KVMCPUMigState KVMCPUMigState;

/* KVM's side of a vCPU (CPUState.accel). */
struct AccelCPUState {
    int fd;
    struct kvm_run *run;
    bool exit_needs_completion; /* last exit was I/O KVM finishes on the next KVM_RUN */
    /* Power-on state captured at creation, restored on reset. */
    struct kvm_lapic_state reset_lapic;
    /* Its migration state (kvm-state.c); NULL for a bare vCPU of a test. */
    KVMCPUMigState *mig;
};

/* Open /dev/kvm, create the VM with its in-kernel irqchip and PIT. */
bool kvm_init(GError **errp);
/* /dev/kvm is a KVM character device that opens read-write. */
bool kvm_available(char **why);
int kvm_check_extension(unsigned int cap);
int kvm_vm_ioctl(unsigned long request, void *arg);
int kvm_vcpu_ioctl(CPUState *cpu, unsigned long request, void *arg);

/* Create vCPU @cpu's KVM side: fd, run area, CPUID, LAPIC pins. */
bool kvm_vcpu_create(CPUState *cpu, int nr_cpus, GError **errp);
/* AccelOps for vCPUs (kvm-cpu.c). */
bool kvm_vcpu_exec(CPUState *cpu);
bool kvm_vcpu_park(CPUState *cpu);
void kvm_vcpu_kick(CPUState *cpu);
void kvm_vcpu_reset(CPUState *cpu);
bool kvm_vcpu_get_state(CPUState *cpu, X86CPUState *st, GError **errp);
bool kvm_vcpu_set_state(CPUState *cpu, const X86CPUState *st, GError **errp);

/*
 * The in-kernel PIC, IOAPIC, PIT, LAPICs and kvmclock (kvm-irqchip.c):
 * their power-on state and their migration, in the sections and layouts
 * of the user-space models: per vCPU ("kvm-cpu", n) and ("x86-cpu", n),
 * then ("i8259", 0 and 1), ("ioapic", 0), ("i8254", 0), ("apic", n),
 * and ("kvmclock", 0), KVM's own. Streams of Ferry before the neutral
 * forms (KVM's structs in "i8259", "ioapic", "i8254" version 1, the
 * LAPIC page in "cpu") still load.
 */
bool kvm_irqchip_capture_reset(GError **errp);
void kvm_irqchip_reset(void);
void kvm_irqchip_register_vmstate(void);
/* kvm_migration_register_foreign() (system/accel.h): one vCPU's "kvm-cpu". */
void kvm_cpu_state_register_foreign(int index);
/* A vCPU's ("apic", n) and the object it works on, for tests (free with g_free). */
extern const struct VMStateDescription vmstate_kvm_apic;
typedef struct KVMApicMig KVMApicMig;
KVMApicMig *kvm_apic_mig_new(CPUState *cpu);

/*
 * KVM's structs in the user-space models' migration forms and back
 * (kvm-intc-conv.c): pure conversions. @now is CLOCK_MONOTONIC (KVM's
 * PIT load times); the LAPIC's base and TSC deadline come from the vCPU.
 * The *_from_mig functions leave fields of @k the form lacks alone.
 */
void kvm_pic_to_mig(const struct kvm_pic_state *k, I8259Mig *m);
void kvm_pic_from_mig(const I8259Mig *m, struct kvm_pic_state *k);
void kvm_ioapic_to_mig(const struct kvm_ioapic_state *k, IOAPICMig *m);
void kvm_ioapic_from_mig(const IOAPICMig *m, struct kvm_ioapic_state *k);
void kvm_pit_to_mig(const struct kvm_pit_state2 *k, int64_t now, I8254Mig *m);
void kvm_pit_from_mig(const I8254Mig *m, int64_t now, struct kvm_pit_state2 *k);
void kvm_lapic_to_mig(const struct kvm_lapic_state *l, uint64_t apic_base,
                      uint64_t tsc_deadline, APICMig *m);
void kvm_lapic_from_mig(const APICMig *m, struct kvm_lapic_state *l);

/*
 * Cross-accelerator migration (kvm-cpuid.c): what the guest sees, and
 * taking an incoming guest's TSC rate (AccelOps guest_abi, adopt_guest_abi).
 */
void kvm_guest_abi(AccelGuestABI *abi);
bool kvm_adopt_guest_abi(const AccelGuestABI *src, GError **errp);

/* Build the CPUID table vCPU @index sees (-cpu host, or qemu64 when portable). */
struct kvm_cpuid2 *kvm_cpuid_for_vcpu(int index, int nr_cpus, GError **errp);

/*
 * Per-vCPU state for migration (kvm-state.c). kvm_cpu_state_register()
 * registers vCPU @cpu as ("kvm-cpu", n), the part X86CPUState cannot hold
 * (PDPTRs, XSAVE past X86_XSAVE_MAX, XCRs, KVM's events and MP state,
 * TSC frequency, the other MSRs), then ("x86-cpu", n), the neutral state
 * (hw/x86/cpu-vmstate.c), and, to load streams of Ferry before the
 * neutral form, ("cpu", n): KVM's whole vCPU, LAPIC page included, in one
 * section. The LAPIC itself is kvm-irqchip.c's ("apic", n).
 * Saving runs with every vCPU paused; loading, before they run.
 */
void kvm_cpu_state_register(CPUState *cpu);
/* The descriptions and the object they work on, for tests and tools. */
struct VMStateDescription;
extern const struct VMStateDescription vmstate_kvm_cpu;        /* "cpu", the old form */
extern const struct VMStateDescription vmstate_kvm_cpu_extra;  /* "kvm-cpu" */
KVMCPUMigState *kvm_cpu_mig_state_new(CPUState *cpu);
void kvm_cpu_mig_state_free(KVMCPUMigState *st);
/*
 * The neutral state, read from KVM whole (kvm_vcpu_get_state()), and
 * written with what completes it: @parked's KVM-only part if one was
 * loaded, else what the vCPU holds now. Checks everything before writing.
 */
bool kvm_cpu_get_neutral(CPUState *cpu, X86CPUState *st, GError **errp);
bool kvm_cpu_set_neutral(CPUState *cpu, KVMCPUMigState *parked, const X86CPUState *st,
                         GError **errp);
/* The neutral part of a state read from KVM (@k is not changed). */
void kvm_cpu_mig_to_neutral(KVMCPUMigState *k, X86CPUState *st);
/* Forget a loaded KVM-only part that no neutral state followed. */
void kvm_cpu_mig_state_reset(KVMCPUMigState *st);
/*
 * After the LAPIC was loaded ("apic", n): what KVM_SET_LAPIC resets or
 * must come after it, the TSC deadline (@tsc_deadline) and the pending
 * events the vCPU's state was loaded with.
 */
bool kvm_cpu_after_lapic_load(CPUState *cpu, uint64_t tsc_deadline, GError **errp);

#endif
