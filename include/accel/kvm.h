/*
 * KVM: the VM and vCPU file descriptors, memory slots, interrupt lines,
 * the vCPU threads and their run loop.
 */
#ifndef ACCEL_KVM_H
#define ACCEL_KVM_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <gio/gio.h>
#include <linux/kvm.h>
#include <pthread.h>

typedef struct KVMState {
    int fd;                     /* /dev/kvm */
    int vmfd;
    int vcpu_mmap_size;
    struct kvm_cpuid2 *supported_cpuid;
    int nr_slots;
} KVMState;

extern KVMState *kvm_state;

typedef struct CPUState {
    int index;
    int fd;
    struct kvm_run *run;
    GThread *thread;
    int thread_id;              /* gettid() once the thread runs */
    pthread_t pthread;          /* valid once thread_started */
    bool thread_started;        /* BQL */
    /* Guarded by the BQL. */
    bool stopped;               /* parked outside KVM_RUN */
    bool self_stop;             /* stopped itself (triple fault, error) */
    bool exit_thread;
    bool exit_needs_completion; /* last exit was I/O KVM finishes on the next KVM_RUN */
    int throttle_pending;       /* atomic: the throttle thread asks for a pause */
    /* Power-on state captured at creation, restored on reset. */
    struct kvm_lapic_state reset_lapic;
} CPUState;

/* Open /dev/kvm, create the VM with its in-kernel irqchip and PIT. */
bool kvm_init(GError **errp);
bool kvm_available(char **why);
int kvm_check_extension(unsigned int cap);
int kvm_vm_ioctl(unsigned long request, void *arg);
int kvm_vcpu_ioctl(CPUState *cpu, unsigned long request, void *arg);

/* Map [gpa, gpa+size) to @host in a new KVM memory slot; returns the slot. */
int kvm_add_memory_slot(uint64_t gpa, uint64_t size, void *host, GError **errp);

/* The memory slots, for dirty tracking. */
typedef struct KVMSlot {
    int slot;
    uint64_t gpa;
    uint64_t size;
    void *host;
    uint32_t flags;             /* KVM_MEM_LOG_DIRTY_PAGES when logging */
} KVMSlot;
int kvm_slot_count(void);
const KVMSlot *kvm_slot_get(int index);
/* Turn KVM's dirty log on or off for one slot. */
bool kvm_slot_set_dirty_logging(int index, bool on, GError **errp);
/*
 * Fetch and reset the slot's dirty log (KVM_GET_DIRTY_LOG): one bit per
 * 4 KiB page, @bitmap holding at least DIV_ROUND_UP(size / 4096, 64) longs.
 */
bool kvm_slot_get_dirty_log(int index, unsigned long *bitmap, GError **errp);

/* Drive in-kernel irqchip input @irq (GSI) to @level. */
void kvm_set_irq(int irq, int level);

/* Create @n vCPUs and their threads (parked until cpus_resume_all()). */
bool kvm_cpus_create(int n, GError **errp);
CPUState *kvm_cpu(int index);
/* Put vCPU @cpu back to power-on state (APs wait for SIPI). vCPUs paused. */
void kvm_cpu_reset(CPUState *cpu);
/* Stop all vCPU threads for good (at exit). */
void kvm_cpus_destroy(void);

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
