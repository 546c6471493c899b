/*
 * The software CPU as an accelerator ("tcg" on the command line, the name
 * QEMU gives its own and libvirt passes): the glue between the core
 * (include/accel/soft-cpu.h) and the machine. Guest RAM comes from the
 * guest-physical map, port I/O and MMIO go to the same device dispatch as
 * KVM's exits (under the BQL), interrupts come from the user-space local
 * APIC, IOAPIC, PIC and PIT (hw/intc, hw/timer), and vCPU writes are
 * logged per RAM slot for migration.
 *
 * Threads: each vCPU runs the core on its own thread without the BQL. A
 * halted vCPU sleeps on its own condition until an interrupt, an INIT or
 * SIPI, or a kick arrives.
 */
#include <string.h>
#include <time.h>
#include <gio/gio.h>

#include "accel/soft-cpu.h"
#include "hw/intc/apic.h"
#include "hw/intc/x86-irq.h"
#include "hw/x86/cpu-vmstate.h"
#include "system/accel.h"
#include "system/cpus.h"
#include "system/ioport.h"
#include "system/main-loop.h"
#include "system/memory.h"
#include "system/runstate.h"

/*
 * The guest TSC runs at 1 GHz, CLOCK_MONOTONIC nanoseconds plus an
 * offset, unless a migration source's guest ran at another rate: then at
 * that rate (soft.tsc_hz), scaled from the same clock.
 */
#define SOFT_TSC_HZ 1000000000ULL

struct AccelCPUState {
    CPUState *cpu;
    SoftCPU *core;
    APICState *apic;
    /* Wakes a halted vCPU: set by interrupts, INIT/SIPI and kicks. */
    GMutex wait_lock;
    GCond wait_cond;
    bool wake;
};

typedef struct SoftDirtyLog {
    uint64_t gpa;
    uint64_t pages;
    bool logging;
    unsigned long *bitmap;      /* atomic: vCPU threads set, migration takes */
} SoftDirtyLog;

#define SOFT_MAX_SLOTS 32

static struct {
    int nr_cpus;
    const char *model;
    /*
     * The TSC the vCPUs share: host monotonic ns + offset (set from vCPU
     * 0's state when state is loaded). A vCPU whose guest wrote its TSC
     * adds its own offset in the core.
     */
    int64_t tsc_offset;
    uint64_t tsc_hz;            /* SOFT_TSC_HZ, or a migration source's rate */
    /*
     * CPUID feature words (AccelGuestABI order) a migration source
     * offered; what this CPU offers is cut down to them. All ones: no cut.
     */
    uint32_t cpuid_mask[ACCEL_CPUID_WORDS];
    SoftDirtyLog slots[SOFT_MAX_SLOTS];
    int nr_slots;
} soft;

static uint64_t soft_host_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Host nanoseconds in guest TSC ticks. */
static uint64_t soft_tsc_scale(uint64_t ns)
{
    uint64_t hz = __atomic_load_n(&soft.tsc_hz, __ATOMIC_RELAXED);
    return hz == SOFT_TSC_HZ ? ns : (uint64_t)((unsigned __int128)ns * hz / SOFT_TSC_HZ);
}

static uint64_t soft_guest_tsc(void)
{
    return soft_tsc_scale(soft_host_ns()) +
           (uint64_t)__atomic_load_n(&soft.tsc_offset, __ATOMIC_RELAXED);
}

/* ---- SoftCPUHooks ---- */

static uint8_t *soft_hook_ram_page(void *opaque, uint64_t gpa)
{
    return guest_phys_to_host(gpa & ~0xfffULL, 4096);
}

static void soft_hook_mark_dirty(void *opaque, uint64_t gpa_page)
{
    for (int i = 0; i < soft.nr_slots; i++) {
        SoftDirtyLog *s = &soft.slots[i];
        uint64_t page = (gpa_page - s->gpa) >> 12;
        if (gpa_page >= s->gpa && page < s->pages) {
            if (__atomic_load_n(&s->logging, __ATOMIC_ACQUIRE)) {
                __atomic_or_fetch(&s->bitmap[page / 64], 1UL << (page % 64), __ATOMIC_RELAXED);
            }
            return;
        }
    }
}

static uint64_t soft_hook_mmio_read(void *opaque, uint64_t gpa, unsigned size)
{
    bql_lock();
    uint64_t v = io_dispatch_read(IO_SPACE_MMIO, gpa, size);
    bql_unlock();
    return v;
}

static void soft_hook_mmio_write(void *opaque, uint64_t gpa, uint64_t value, unsigned size)
{
    bql_lock();
    io_dispatch_write(IO_SPACE_MMIO, gpa, value, size);
    bql_unlock();
}

static uint32_t soft_hook_pio_read(void *opaque, uint16_t port, unsigned size)
{
    bql_lock();
    uint32_t v = (uint32_t)io_dispatch_read(IO_SPACE_PIO, port, size);
    bql_unlock();
    return v;
}

static void soft_hook_pio_write(void *opaque, uint16_t port, uint32_t value, unsigned size)
{
    bql_lock();
    io_dispatch_write(IO_SPACE_PIO, port, value, size);
    bql_unlock();
}

static int soft_hook_get_interrupt(void *opaque)
{
    AccelCPUState *sc = opaque;
    return apic_get_interrupt(sc->apic);
}

static void soft_hook_ack_interrupt(void *opaque, int vector)
{
    AccelCPUState *sc = opaque;
    apic_ack_interrupt(sc->apic, vector);
}

static bool soft_hook_rdmsr(void *opaque, uint32_t msr, uint64_t *value)
{
    AccelCPUState *sc = opaque;
    return apic_rdmsr(sc->apic, msr, value);
}

static bool soft_hook_wrmsr(void *opaque, uint32_t msr, uint64_t value)
{
    AccelCPUState *sc = opaque;
    return apic_wrmsr(sc->apic, msr, value);
}

static uint64_t soft_hook_read_cr8(void *opaque)
{
    AccelCPUState *sc = opaque;
    return apic_get_cr8(sc->apic);
}

static void soft_hook_write_cr8(void *opaque, uint64_t value)
{
    AccelCPUState *sc = opaque;
    apic_set_cr8(sc->apic, value);
}

static uint64_t soft_hook_read_tsc(void *opaque)
{
    return soft_guest_tsc();
}

/* The words of AccelGuestABI.cpuid in a CPUID answer, or NULL. */
static uint32_t *soft_cpuid_word(uint32_t leaf, uint32_t sub, uint32_t out[4], int word)
{
    switch (word) {
    case ACCEL_CPUID_1_ECX:         return leaf == 1 ? &out[2] : NULL;
    case ACCEL_CPUID_1_EDX:         return leaf == 1 ? &out[3] : NULL;
    case ACCEL_CPUID_7_EBX:         return leaf == 7 && sub == 0 ? &out[1] : NULL;
    case ACCEL_CPUID_7_ECX:         return leaf == 7 && sub == 0 ? &out[2] : NULL;
    case ACCEL_CPUID_7_EDX:         return leaf == 7 && sub == 0 ? &out[3] : NULL;
    case ACCEL_CPUID_80000001_ECX:  return leaf == 0x80000001u ? &out[2] : NULL;
    case ACCEL_CPUID_80000001_EDX:  return leaf == 0x80000001u ? &out[3] : NULL;
    case ACCEL_CPUID_D_EAX:         return leaf == 0xd && sub == 0 ? &out[0] : NULL;
    default:                        return NULL;
    }
}

static void soft_hook_cpuid_filter(void *opaque, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
    for (int w = 0; w < ACCEL_CPUID_WORDS; w++) {
        uint32_t *p = soft_cpuid_word(leaf, sub, out, w);
        if (p) {
            /* OSXSAVE and OSPKE follow CR4, not the model. */
            uint32_t keep = w == ACCEL_CPUID_1_ECX ? (1u << 27) : w == ACCEL_CPUID_7_ECX ? (1u << 4)
                          : 0;
            *p &= soft.cpuid_mask[w] | keep;
        }
    }
}

static SoftCPUHooks soft_cpu_hooks = {
    .ram_page = soft_hook_ram_page,
    .mark_dirty = soft_hook_mark_dirty,
    .mmio_read = soft_hook_mmio_read,
    .mmio_write = soft_hook_mmio_write,
    .pio_read = soft_hook_pio_read,
    .pio_write = soft_hook_pio_write,
    .get_interrupt = soft_hook_get_interrupt,
    .ack_interrupt = soft_hook_ack_interrupt,
    .rdmsr = soft_hook_rdmsr,
    .wrmsr = soft_hook_wrmsr,
    .read_cr8 = soft_hook_read_cr8,
    .write_cr8 = soft_hook_write_cr8,
    .read_tsc = soft_hook_read_tsc,
    .tsc_hz = SOFT_TSC_HZ,
    .crystal_hz = APIC_BUS_HZ,
    .cpuid_filter = soft_hook_cpuid_filter,
};

/* ---- APICHooks: called with the irqchip lock held; they only set flags. ---- */

static void soft_cpu_wake(AccelCPUState *sc)
{
    g_mutex_lock(&sc->wait_lock);
    sc->wake = true;
    g_cond_signal(&sc->wait_cond);
    g_mutex_unlock(&sc->wait_lock);
}

static AccelCPUState *soft_cpu_by_index(int index)
{
    CPUState *cpu = cpu_get(index);
    return cpu ? cpu->accel : NULL;
}

static void soft_apic_kick(void *opaque, int cpu_index)
{
    AccelCPUState *sc = soft_cpu_by_index(cpu_index);
    if (sc) {
        soft_cpu_interrupt_changed(sc->core);
        soft_cpu_wake(sc);
    }
}

static void soft_apic_init(void *opaque, int cpu_index)
{
    AccelCPUState *sc = soft_cpu_by_index(cpu_index);
    if (sc) {
        soft_cpu_init_signal(sc->core);
        soft_cpu_wake(sc);
    }
}

static void soft_apic_sipi(void *opaque, int cpu_index, uint8_t vector)
{
    AccelCPUState *sc = soft_cpu_by_index(cpu_index);
    if (sc) {
        soft_cpu_sipi(sc->core, vector);
        soft_cpu_wake(sc);
    }
}

static void soft_apic_nmi(void *opaque, int cpu_index)
{
    AccelCPUState *sc = soft_cpu_by_index(cpu_index);
    if (sc) {
        soft_cpu_nmi(sc->core);
        soft_cpu_wake(sc);
    }
}

/* The vCPU's own TSC: a TSC-deadline value is in its guest's units. */
static uint64_t soft_apic_read_tsc(void *opaque, int cpu_index)
{
    AccelCPUState *sc = soft_cpu_by_index(cpu_index);

    return soft_guest_tsc() + (uint64_t)(sc ? soft_cpu_tsc_adjust(sc->core) : 0);
}

static const APICHooks soft_apic_hooks = {
    .kick = soft_apic_kick,
    .init = soft_apic_init,
    .sipi = soft_apic_sipi,
    .nmi = soft_apic_nmi,
    .read_tsc = soft_apic_read_tsc,
    .tsc_hz = SOFT_TSC_HZ,
};

/* ---- Writes the VMM makes into guest RAM drop decoded code. ---- */

static void soft_ram_written(uint64_t gpa, uint64_t len)
{
    /* The code map is shared: one call covers every vCPU. */
    AccelCPUState *sc = soft_cpu_by_index(0);
    if (sc) {
        soft_cpu_invalidate_code(sc->core, gpa, len);
    }
}

/* ---- AccelOps ---- */

static bool soft_accel_available(char **why)
{
    return true;
}

static bool soft_accel_check_cpu_model(const char *model, GError **errp)
{
    if (model && strcmp(model, "host") == 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "-cpu host: needs KVM; the software CPU offers 'max' and 'qemu64'");
        return false;
    }
    return true;
}

static bool soft_accel_init(const AccelCPUConfig *cfg, GError **errp)
{
    soft.nr_cpus = cfg->nr_cpus;
    soft.model = cfg->model ? cfg->model : "max";
    /* The guest TSC starts near 0 at power-on, as on hardware. */
    soft.tsc_hz = SOFT_TSC_HZ;
    soft.tsc_offset = -(int64_t)soft_host_ns();
    memset(soft.cpuid_mask, 0xff, sizeof(soft.cpuid_mask));
    guest_ram_set_write_notifier(soft_ram_written);
    return true;
}

static bool soft_accel_map_ram(int slot, uint64_t gpa, uint64_t size, void *host,
                               GError **errp)
{
    if (slot >= SOFT_MAX_SLOTS) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "out of guest RAM slots");
        return false;
    }
    SoftDirtyLog *s = &soft.slots[slot];
    s->gpa = gpa;
    s->pages = size >> 12;
    s->bitmap = g_new0(unsigned long, (s->pages + 63) / 64);
    soft.nr_slots = MAX(soft.nr_slots, slot + 1);
    return true;
}

/*
 * Every vCPU goes through mark_dirty() again before its next write to any
 * page. The vCPUs are parked while their TLBs are told, so none can still
 * be writing through an entry installed before the caller's fetch.
 */
static void soft_flush_dirty_tracking_all(void)
{
    cpus_quiesce();
    for (int i = 0; i < cpus_count(); i++) {
        soft_cpu_flush_dirty_tracking(soft_cpu_by_index(i)->core);
    }
    cpus_unquiesce();
}

static bool soft_accel_dirty_log_enable(int slot, bool on, GError **errp)
{
    SoftDirtyLog *s = &soft.slots[slot];
    __atomic_store_n(&s->logging, on, __ATOMIC_RELEASE);
    if (on) {
        memset(s->bitmap, 0, (s->pages + 63) / 64 * sizeof(unsigned long));
        soft_flush_dirty_tracking_all();
    }
    return true;
}

static bool soft_accel_dirty_log_fetch(int slot, unsigned long *bitmap, GError **errp)
{
    SoftDirtyLog *s = &soft.slots[slot];
    uint64_t words = (s->pages + 63) / 64;

    /*
     * Take the bits with the vCPUs parked, then make them mark again: a
     * page written after this fetch is in the next one. Parking does not
     * touch the run state, so a stop or cont meanwhile keeps its meaning.
     */
    cpus_quiesce();
    for (uint64_t i = 0; i < words; i++) {
        bitmap[i] = __atomic_exchange_n(&s->bitmap[i], 0UL, __ATOMIC_ACQ_REL);
    }
    for (int i = 0; i < cpus_count(); i++) {
        soft_cpu_flush_dirty_tracking(soft_cpu_by_index(i)->core);
    }
    cpus_unquiesce();
    return true;
}

static bool soft_accel_vcpu_init(CPUState *cpu, GError **errp)
{
    AccelCPUState *sc = g_new0(AccelCPUState, 1);
    sc->cpu = cpu;
    g_mutex_init(&sc->wait_lock);
    g_cond_init(&sc->wait_cond);
    sc->core = soft_cpu_new(&soft_cpu_hooks, sc, cpu->index, soft.nr_cpus);
    sc->apic = apic_new(cpu->index, &soft_apic_hooks, NULL);
    cpu->accel = sc;
    return true;
}

/* Sleep until an interrupt, INIT/SIPI or a kick wakes this vCPU. */
static void soft_vcpu_wait(AccelCPUState *sc)
{
    g_mutex_lock(&sc->wait_lock);
    while (!sc->wake) {
        g_cond_wait(&sc->wait_cond, &sc->wait_lock);
    }
    g_mutex_unlock(&sc->wait_lock);
}

static bool soft_accel_vcpu_exec(CPUState *cpu)
{
    AccelCPUState *sc = cpu->accel;

    /* A wake that comes after this point ends the HLT wait below. */
    g_mutex_lock(&sc->wait_lock);
    sc->wake = false;
    g_mutex_unlock(&sc->wait_lock);

    bql_unlock();
    if (apic_current() != sc->apic) {
        apic_set_current(sc->apic);
    }
    SoftCPUExit r = soft_cpu_run(sc->core, 0);
    if (r == SOFT_EXIT_HALTED) {
        soft_vcpu_wait(sc);
    }
    bql_lock();

    switch (r) {
    case SOFT_EXIT_KICKED:
    case SOFT_EXIT_HALTED:
    case SOFT_EXIT_LIMIT:
        return true;
    case SOFT_EXIT_SHUTDOWN:
        /* Triple fault: the PC resets. */
        system_reset_request(SHUTDOWN_CAUSE_GUEST_RESET);
        return false;
    case SOFT_EXIT_INTERNAL_ERROR:
    default:
        g_printerr("tcg: vCPU %d stopped on an internal error\n", cpu->index);
        cpu_report_error(cpu);
        return false;
    }
}

static void soft_accel_vcpu_kick(CPUState *cpu)
{
    AccelCPUState *sc = cpu->accel;
    soft_cpu_kick(sc->core);
    soft_cpu_wake(sc);
}

static void soft_accel_vcpu_reset(CPUState *cpu)
{
    AccelCPUState *sc = cpu->accel;
    g_autofree X86CPUState *st = g_new0(X86CPUState, 1);

    x86_cpu_state_reset(st, cpu->index);
    /* Nothing posted before the reset (INIT, SIPI, NMI, an interrupt) survives it. */
    soft_cpu_reset(sc->core);
    soft_cpu_set_state(sc->core, st);
}

static bool soft_accel_vcpu_get_state(CPUState *cpu, X86CPUState *st, GError **errp)
{
    AccelCPUState *sc = cpu->accel;

    soft_cpu_get_state(sc->core, st);
    /* The APIC owns these; the core asked it for them. */
    apic_rdmsr(sc->apic, X86_MSR_APIC_BASE, &st->apic_base);
    apic_rdmsr(sc->apic, X86_MSR_TSC_DEADLINE, &st->tsc_deadline);
    st->cr8 = apic_get_cr8(sc->apic);
    return true;
}

static bool soft_accel_vcpu_set_state(CPUState *cpu, const X86CPUState *st, GError **errp)
{
    AccelCPUState *sc = cpu->accel;

    /*
     * The guest's TSC carries on from the value in the state (an incoming
     * migration's, or the one just read back by the boot loader). The
     * vCPUs share one time base, set here from vCPU 0's state alone: it
     * is restored first (sections load in vCPU order) and every vCPU's
     * state was read after all of them stopped, so no vCPU's TSC goes back
     * from what its guest saw. Each vCPU's own part, what the guest's TSC
     * writes added on it, is its tsc_adjust (soft_cpu_set_state()): vCPUs
     * that never wrote the TSC read the same value, and the others keep
     * their exact distance from it. A state without a TSC (0) leaves the
     * time base alone.
     */
    if (cpu->index == 0 && st->tsc) {
        __atomic_store_n(&soft.tsc_offset,
                         (int64_t)(st->tsc - st->tsc_adjust - soft_tsc_scale(soft_host_ns())),
                         __ATOMIC_RELAXED);
    }
    soft_cpu_set_state(sc->core, st);
    soft_cpu_flush_tlb(sc->core);
    return true;
}

static bool soft_accel_irqchip_init(GError **errp)
{
    x86_irqchip_soft_init((uint8_t)soft.nr_cpus);
    return true;
}

static void soft_accel_irqchip_reset(void)
{
    x86_irqchip_soft_reset();
}

/*
 * The vCPUs load first: their state sets the guest TSC, which the APIC
 * needs to turn a TSC deadline back into a host deadline.
 */
static void soft_accel_register_vmstate(void)
{
    for (int i = 0; i < cpus_count(); i++) {
        x86_cpu_vmstate_register(i);
    }
    x86_irqchip_soft_register_vmstate();
    /* A KVM source's own sections: read, checked and dropped (accel/kvm/). */
    kvm_migration_register_foreign(soft.nr_cpus);
}

static void soft_accel_set_irq(int gsi, int level)
{
    x86_irq_set(gsi, level);
}

static void soft_accel_cpu_signature(uint32_t *eax, uint32_t *edx)
{
    soft_cpu_signature(eax, edx);
}

/* ---- Cross-accelerator migration ---- */

static void soft_accel_guest_abi(AccelGuestABI *abi)
{
    static const uint32_t leaves[ACCEL_CPUID_WORDS][3] = {
        [ACCEL_CPUID_1_ECX] = { 1, 0, 2 }, [ACCEL_CPUID_1_EDX] = { 1, 0, 3 },
        [ACCEL_CPUID_7_EBX] = { 7, 0, 1 }, [ACCEL_CPUID_7_ECX] = { 7, 0, 2 },
        [ACCEL_CPUID_7_EDX] = { 7, 0, 3 }, [ACCEL_CPUID_80000001_ECX] = { 0x80000001u, 0, 2 },
        [ACCEL_CPUID_80000001_EDX] = { 0x80000001u, 0, 3 }, [ACCEL_CPUID_D_EAX] = { 0xd, 0, 0 },
    };
    AccelCPUState *sc = soft_cpu_by_index(0);

    memset(abi, 0, sizeof(*abi));
    for (int w = 0; sc && w < ACCEL_CPUID_WORDS; w++) {
        uint32_t out[4];
        soft_cpu_cpuid(sc->core, leaves[w][0], leaves[w][1], out);
        abi->cpuid[w] = out[leaves[w][2]];
    }
    abi->tsc_khz = (uint32_t)(__atomic_load_n(&soft.tsc_hz, __ATOMIC_RELAXED) / 1000);
    abi->kvmclock = false;
}

static void soft_accel_apic_tsc_hz(APICState *s, void *opaque)
{
    apic_set_tsc_hz(s, *(uint64_t *)opaque);
}

/*
 * An incoming VM takes the source's CPU as its guest saw it: CPUID cut
 * down to the source's features (savevm.c checked it has them all), and
 * the TSC at the source's rate, a software clock here. Nothing has run.
 */
static bool soft_accel_adopt_guest_abi(const AccelGuestABI *src, GError **errp)
{
    memcpy(soft.cpuid_mask, src->cpuid, sizeof(soft.cpuid_mask));
    if (src->tsc_khz) {
        uint64_t hz = (uint64_t)src->tsc_khz * 1000;
        uint64_t tsc = soft_guest_tsc();
        __atomic_store_n(&soft.tsc_hz, hz, __ATOMIC_RELAXED);
        soft_cpu_hooks.tsc_hz = hz;
        __atomic_store_n(&soft.tsc_offset, (int64_t)(tsc - soft_tsc_scale(soft_host_ns())),
                         __ATOMIC_RELAXED);
        apic_foreach(soft_accel_apic_tsc_hz, &hz);
    }
    return true;
}

const AccelOps accel_tcg_ops = {
    .name = "tcg",
    .runs_guest_code = true,
    .available = soft_accel_available,
    .check_cpu_model = soft_accel_check_cpu_model,
    .init = soft_accel_init,
    .map_ram = soft_accel_map_ram,
    .dirty_log_enable = soft_accel_dirty_log_enable,
    .dirty_log_fetch = soft_accel_dirty_log_fetch,
    .vcpu_init = soft_accel_vcpu_init,
    .vcpu_exec = soft_accel_vcpu_exec,
    .vcpu_kick = soft_accel_vcpu_kick,
    .vcpu_reset = soft_accel_vcpu_reset,
    .vcpu_get_state = soft_accel_vcpu_get_state,
    .vcpu_set_state = soft_accel_vcpu_set_state,
    .irqchip_init = soft_accel_irqchip_init,
    .irqchip_reset = soft_accel_irqchip_reset,
    .register_vmstate = soft_accel_register_vmstate,
    .set_irq = soft_accel_set_irq,
    .cpu_signature = soft_accel_cpu_signature,
    .guest_abi = soft_accel_guest_abi,
    .adopt_guest_abi = soft_accel_adopt_guest_abi,
};
