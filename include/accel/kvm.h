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

#include "system/cpus.h"

typedef struct KVMState {
    int fd;                     /* /dev/kvm */
    int vmfd;
    int vcpu_mmap_size;
    struct kvm_cpuid2 *supported_cpuid;
    int nr_slots;
} KVMState;

extern KVMState *kvm_state;

/* KVM's side of a vCPU (CPUState.accel). */
struct AccelCPUState {
    int fd;
    struct kvm_run *run;
    bool exit_needs_completion; /* last exit was I/O KVM finishes on the next KVM_RUN */
    /* Power-on state captured at creation, restored on reset. */
    struct kvm_lapic_state reset_lapic;
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
 * The in-kernel PIC, IOAPIC, PIT and kvmclock (kvm-irqchip.c): their
 * power-on state and their migration, ("i8259", 0 and 1), ("ioapic", 0),
 * ("i8254", 0), then ("cpu", n) for every vCPU, then ("kvmclock", 0).
 */
bool kvm_irqchip_capture_reset(GError **errp);
void kvm_irqchip_reset(void);
void kvm_irqchip_register_vmstate(void);

/* Build the CPUID table vCPU @index sees (-cpu host). */
struct kvm_cpuid2 *kvm_cpuid_for_vcpu(int index, int nr_cpus, GError **errp);

/*
 * Per-vCPU state for migration (kvm-state.c): registers, system
 * registers, XSAVE, XCRs, debug registers, local APIC, pending events, MP
 * state, TSC frequency and the MSRs that matter, fetched from KVM before
 * saving and put back after loading. Both run with every vCPU paused.
 * kvm_cpu_state_register() registers vCPU @cpu as ("cpu", cpu->index).
 */
void kvm_cpu_state_register(CPUState *cpu);
/* The description and the object it works on, for tests and tools. */
struct VMStateDescription;
extern const struct VMStateDescription vmstate_kvm_cpu;
typedef struct KVMCPUMigState KVMCPUMigState;
KVMCPUMigState *kvm_cpu_mig_state_new(CPUState *cpu);
void kvm_cpu_mig_state_free(KVMCPUMigState *st);

#endif
