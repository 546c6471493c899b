/*
 * The accelerator interface: what runs the guest's vCPUs.
 *
 * KVM (accel/kvm), the software CPU (accel/soft, called "tcg" on the
 * command line as QEMU names its own) and qtest (accel/qtest: no CPU at
 * all) each fill one AccelOps table. The machine, the vCPU threads
 * (system/cpus.c), the interrupt lines of devices and migration call only
 * the functions below; none of them asks which accelerator runs.
 */
#ifndef SYSTEM_ACCEL_H
#define SYSTEM_ACCEL_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "hw/x86/cpu-state.h"

typedef struct CPUState CPUState;

/* What the command line chose for the vCPUs (-cpu, -smp). */
typedef struct AccelCPUConfig {
    const char *model;          /* "host", "max", "qemu64"; NULL: the default */
    int nr_cpus;
} AccelCPUConfig;

/*
 * What a guest sees of its CPU and may have come to depend on, which must
 * not change under it: the CPUID feature words it was offered, its TSC
 * rate, and paravirtual clocks in use. The configuration section of the
 * migration stream carries it (migration/savevm.c).
 */
enum {
    ACCEL_CPUID_1_ECX, ACCEL_CPUID_1_EDX, ACCEL_CPUID_7_EBX, ACCEL_CPUID_7_ECX,
    ACCEL_CPUID_7_EDX, ACCEL_CPUID_80000001_ECX, ACCEL_CPUID_80000001_EDX,
    ACCEL_CPUID_D_EAX,          /* XCR0 bits XSAVE may enable */
    ACCEL_CPUID_WORDS
};

typedef struct AccelGuestABI {
    uint32_t cpuid[ACCEL_CPUID_WORDS];  /* vCPU 0's, state-dependent bits masked */
    uint32_t tsc_khz;                   /* the guest TSC's rate; 0: unknown */
    bool kvmclock;                      /* the CPU offers kvmclock (the guest may enable it) */
} AccelGuestABI;

/* The feature bits that move with CPU state (OSXSAVE, OSPKE), not with the model. */
void accel_guest_abi_mask(AccelGuestABI *abi);
/* Lowercase names of the bits of @bits in word @word, space-separated ("avx avx2"). */
char *accel_cpuid_bit_names(int word, uint32_t bits);

/*
 * In a VM of another accelerator (the software CPU): read KVM's own
 * sections of a KVM source's stream, ("kvm-cpu", n) for @nr_cpus vCPUs
 * and ("kvmclock", 0), check what matters there and drop them
 * (accel/kvm/kvm-irqchip.c).
 */
void kvm_migration_register_foreign(int nr_cpus);

typedef struct AccelOps {
    const char *name;           /* as -accel spells it */
    /* false for qtest: its vCPUs exist (state, registers) but never run. */
    bool runs_guest_code;

    /* Probe without side effects: false with *why set when it cannot work here. */
    bool (*available)(char **why);
    /* Refuse a CPU model this accelerator cannot provide (before init). */
    bool (*check_cpu_model)(const char *model, GError **errp);
    bool (*init)(const AccelCPUConfig *cfg, GError **errp);

    /* Map [gpa, gpa+size) onto @host; slots never move or shrink. */
    bool (*map_ram)(int slot, uint64_t gpa, uint64_t size, void *host, GError **errp);
    /* Turn dirty logging of @slot on or off. */
    bool (*dirty_log_enable)(int slot, bool on, GError **errp);
    /*
     * Fetch and clear the dirty bits the vCPUs set in @slot since the last
     * fetch: one bit per 4 KiB page, all of @bitmap overwritten. Every
     * write that lands after this returns is in the next fetch.
     */
    bool (*dirty_log_fetch)(int slot, unsigned long *bitmap, GError **errp);

    /* Create the accelerator's side of @cpu (cpu->accel). */
    bool (*vcpu_init)(CPUState *cpu, GError **errp);
    /*
     * Run @cpu's guest code once, on its own thread, called with the BQL
     * held; the accelerator releases it while the guest runs and takes it
     * again before returning. Returns false when the vCPU must stop itself
     * (triple fault, internal error: the reason was already reported).
     */
    bool (*vcpu_exec)(CPUState *cpu);
    /*
     * Called on the vCPU's thread, BQL held, when it parks (optional).
     * Returns true when it released the BQL meanwhile (the caller then
     * looks at the stop flags again).
     */
    bool (*vcpu_park)(CPUState *cpu);
    /* Make vcpu_exec return soon. Any thread. */
    void (*vcpu_kick)(CPUState *cpu);
    /* Back to power-on state: the BSP ready to run, APs waiting for SIPI. */
    void (*vcpu_reset)(CPUState *cpu);
    /* Whole architectural state, with the vCPU parked. */
    bool (*vcpu_get_state)(CPUState *cpu, X86CPUState *st, GError **errp);
    bool (*vcpu_set_state)(CPUState *cpu, const X86CPUState *st, GError **errp);

    /*
     * The machine's interrupt controllers and timers (in the kernel for
     * KVM, in user space for the software CPU): created after the vCPUs,
     * reset with the machine, and registered for migration (with the
     * vCPUs' state) after the other devices.
     */
    bool (*irqchip_init)(GError **errp);
    void (*irqchip_reset)(void);
    void (*register_vmstate)(void);
    /* Drive interrupt input @gsi to @level (0 or 1). */
    void (*set_irq)(int gsi, int level);

    /* CPUID leaf 1 EAX and EDX, for the MP table. */
    void (*cpu_signature)(uint32_t *eax, uint32_t *edx);

    /*
     * Cross-accelerator migration (optional; without them a stream moves
     * only between VMs of the same accelerator). guest_abi: what the guest
     * sees (vCPUs paused, or not run yet). adopt_guest_abi: on an incoming
     * VM whose vCPUs have not run, take the source's: run the TSC at its
     * rate and offer no CPUID feature beyond its own, or refuse naming
     * what cannot be matched.
     */
    void (*guest_abi)(AccelGuestABI *abi);
    bool (*adopt_guest_abi)(const AccelGuestABI *src, GError **errp);
} AccelOps;

/* The accelerators Ferry knows, in the default order of preference. */
extern const AccelOps accel_kvm_ops;
extern const AccelOps accel_tcg_ops;
extern const AccelOps accel_qtest_ops;

/* The accelerator -accel NAME names, or NULL. */
const AccelOps *accel_find(const char *name);
/* @name is an accelerator of Ferry's or one QEMU has and Ferry lacks. */
bool accel_name_known(const char *name);
/* Every name -accel help lists. */
const char *const *accel_names(void);

/*
 * Try the accelerators named in @names (in order; an empty list means
 * kvm then tcg) and keep the first whose init succeeds. On failure the
 * error lists why each was passed over.
 */
bool accel_setup(GPtrArray *names, const AccelCPUConfig *cfg, GError **errp);
/* The accelerator in use (NULL before accel_setup()). */
const AccelOps *accel_current(void);
/* True when KVM runs the guest (query-kvm). */
bool accel_kvm_enabled(void);
/* True when /dev/kvm is a KVM device that opens here (query-kvm "present"). */
bool accel_kvm_present(void);

/* Guest RAM mappings the accelerator knows, for dirty tracking. */
typedef struct AccelSlot {
    uint64_t gpa;
    uint64_t size;
    void *host;
    bool logging;
} AccelSlot;

bool accel_map_ram(uint64_t gpa, uint64_t size, void *host, GError **errp);
int accel_slot_count(void);
const AccelSlot *accel_slot_get(int index);
bool accel_slot_set_dirty_logging(int index, bool on, GError **errp);
/* Fetch and reset @index's dirty log (see AccelOps.dirty_log_fetch). */
bool accel_slot_get_dirty_log(int index, unsigned long *bitmap, GError **errp);

/* Interrupt line @gsi to @level (device models call this). */
void accel_set_irq(int gsi, int level);

#endif
