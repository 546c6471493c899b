/*
 * KVM's in-kernel devices: both PICs, the IOAPIC, the PIT, the LAPICs and
 * kvmclock. Their power-on state is captured once the vCPUs exist and
 * written back at every reset. For migration the PICs, the IOAPIC, the
 * PIT and each LAPIC are read from KVM before saving and written back
 * after loading in the sections and layouts of the user-space models
 * (hw/intc/, hw/timer/i8254.c; conversions in kvm-intc-conv.c), so the
 * stream does not depend on who emulates them; kvmclock is KVM's own.
 * Streams of Ferry before that carry KVM's structs, field by field, in
 * version 1 of the same sections, and still load.
 */
#include <string.h>
#include <sys/ioctl.h>

#include "accel/kvm.h"
#include "hw/timer/host-timer.h"
#include "migration/register.h"
#include "migration/vmstate.h"
#include "system/cpus.h"

/* In-kernel irqchip and PIT at power-on, restored on reset. */
static struct kvm_irqchip irqchip_reset_state[3];
static struct kvm_pit_state2 pit_reset_state;

bool kvm_irqchip_capture_reset(GError **errp)
{
    for (unsigned i = 0; i < 3; i++) {
        irqchip_reset_state[i].chip_id = i;
        if (kvm_vm_ioctl(KVM_GET_IRQCHIP, &irqchip_reset_state[i]) < 0) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "KVM_GET_IRQCHIP failed");
            return false;
        }
    }
    if (kvm_vm_ioctl(KVM_GET_PIT2, &pit_reset_state) < 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "KVM_GET_PIT2 failed");
        return false;
    }
    return true;
}

void kvm_irqchip_reset(void)
{
    for (unsigned i = 0; i < 3; i++) {
        kvm_vm_ioctl(KVM_SET_IRQCHIP, &irqchip_reset_state[i]);
    }
    kvm_vm_ioctl(KVM_SET_PIT2, &pit_reset_state);
}

/*
 * The old forms (version 1 of "i8259", "ioapic", "i8254"): KVM's structs,
 * read from KVM into a plain struct before saving and written back after
 * loading, described field by field. Only loaded now.
 */
static struct {
    struct kvm_irqchip pic[2];          /* chip_id 0 (master), 1 (slave) */
    struct kvm_irqchip ioapic;          /* chip_id 2 */
    struct kvm_pit_state2 pit;
    struct kvm_clock_data clock;
} kvm_irqchip_state;

#define KVM_IOAPIC_BASE 0xfec00000ULL

static bool kvm_irqchip_fail(GError **errp, const char *what, int r)
{
    g_set_error(errp, VMSTATE_ERROR, 0, "%s: %s", what, g_strerror(-r));
    return false;
}

static bool kvm_irqchip_irqchip_pre_save(void *opaque, GError **errp)
{
    int r = kvm_vm_ioctl(KVM_GET_IRQCHIP, opaque);
    return r < 0 ? kvm_irqchip_fail(errp, "KVM_GET_IRQCHIP", r) : true;
}

static bool kvm_irqchip_irqchip_post_load(void *opaque, int version_id, GError **errp)
{
    int r = kvm_vm_ioctl(KVM_SET_IRQCHIP, opaque);
    return r < 0 ? kvm_irqchip_fail(errp, "KVM_SET_IRQCHIP", r) : true;
}

static const VMStateDescription vmstate_kvm_pic_state = {
    .name = "kvm-pic-state",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT8(last_irr, struct kvm_pic_state),
        VMSTATE_UINT8(irr, struct kvm_pic_state),
        VMSTATE_UINT8(imr, struct kvm_pic_state),
        VMSTATE_UINT8(isr, struct kvm_pic_state),
        VMSTATE_UINT8_RANGE(priority_add, struct kvm_pic_state, 0, 7),
        VMSTATE_UINT8(irq_base, struct kvm_pic_state),
        VMSTATE_UINT8(read_reg_select, struct kvm_pic_state),
        VMSTATE_UINT8(poll, struct kvm_pic_state),
        VMSTATE_UINT8(special_mask, struct kvm_pic_state),
        VMSTATE_UINT8_RANGE(init_state, struct kvm_pic_state, 0, 3),
        VMSTATE_UINT8(auto_eoi, struct kvm_pic_state),
        VMSTATE_UINT8(rotate_on_auto_eoi, struct kvm_pic_state),
        VMSTATE_UINT8(special_fully_nested_mode, struct kvm_pic_state),
        VMSTATE_UINT8(init4, struct kvm_pic_state),
        VMSTATE_UINT8(elcr, struct kvm_pic_state),
        VMSTATE_UINT8(elcr_mask, struct kvm_pic_state),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_kvm_i8259_v1 = {
    .name = "i8259",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = kvm_irqchip_irqchip_pre_save,
    .post_load = kvm_irqchip_irqchip_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(chip.pic, struct kvm_irqchip, vmstate_kvm_pic_state,
                       struct kvm_pic_state),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_kvm_ioapic_v1 = {
    .name = "ioapic",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = kvm_irqchip_irqchip_pre_save,
    .post_load = kvm_irqchip_irqchip_post_load,
    .fields = (const VMStateField[]) {
        /* The machine's IOAPIC does not move (KVM would take the address as is). */
        { .name = "base_address", .type = VMS_UINT64,
          .offset = offsetof(struct kvm_irqchip, chip.ioapic.base_address), .size = 8,
          .has_range = true, .range_min = KVM_IOAPIC_BASE, .range_max = KVM_IOAPIC_BASE },
        VMSTATE_UINT32(chip.ioapic.ioregsel, struct kvm_irqchip),
        VMSTATE_UINT32(chip.ioapic.id, struct kvm_irqchip),
        VMSTATE_UINT32_RANGE(chip.ioapic.irr, struct kvm_irqchip, 0,
                             (1u << KVM_IOAPIC_NUM_PINS) - 1),
        VMSTATE_UINT64_ARRAY(chip.ioapic.redirtbl, struct kvm_irqchip, KVM_IOAPIC_NUM_PINS),
        VMSTATE_END_OF_LIST()
    },
};

static bool kvm_irqchip_pit_pre_save(void *opaque, GError **errp)
{
    int r = kvm_vm_ioctl(KVM_GET_PIT2, opaque);
    return r < 0 ? kvm_irqchip_fail(errp, "KVM_GET_PIT2", r) : true;
}

static bool kvm_irqchip_pit_post_load(void *opaque, int version_id, GError **errp)
{
    struct kvm_pit_state2 *pit = opaque;

    if (pit->flags & ~(uint32_t)(KVM_PIT_FLAGS_HPET_LEGACY | KVM_PIT_FLAGS_SPEAKER_DATA_ON)) {
        g_set_error(errp, VMSTATE_ERROR, 0, "PIT flags 0x%x has unknown bits", pit->flags);
        return false;
    }
    memset(pit->reserved, 0, sizeof(pit->reserved));
    int r = kvm_vm_ioctl(KVM_SET_PIT2, pit);
    return r < 0 ? kvm_irqchip_fail(errp, "KVM_SET_PIT2", r) : true;
}

static const VMStateDescription vmstate_kvm_pit_channel = {
    .name = "kvm-pit-channel",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32_RANGE(count, struct kvm_pit_channel_state, 0, 0x10000),
        VMSTATE_UINT16(latched_count, struct kvm_pit_channel_state),
        VMSTATE_UINT8(count_latched, struct kvm_pit_channel_state),
        VMSTATE_UINT8_RANGE(status_latched, struct kvm_pit_channel_state, 0, 1),
        VMSTATE_UINT8(status, struct kvm_pit_channel_state),
        VMSTATE_UINT8(read_state, struct kvm_pit_channel_state),
        VMSTATE_UINT8(write_state, struct kvm_pit_channel_state),
        VMSTATE_UINT8(write_latch, struct kvm_pit_channel_state),
        VMSTATE_UINT8(rw_mode, struct kvm_pit_channel_state),
        VMSTATE_UINT8(mode, struct kvm_pit_channel_state),     /* 0xff: never programmed */
        VMSTATE_UINT8_RANGE(bcd, struct kvm_pit_channel_state, 0, 1),
        VMSTATE_UINT8_RANGE(gate, struct kvm_pit_channel_state, 0, 1),
        VMSTATE_INT64(count_load_time, struct kvm_pit_channel_state),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_kvm_i8254_v1 = {
    .name = "i8254",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = kvm_irqchip_pit_pre_save,
    .post_load = kvm_irqchip_pit_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT_ARRAY(channels, struct kvm_pit_state2, 3, vmstate_kvm_pit_channel,
                             struct kvm_pit_channel_state),
        VMSTATE_UINT32(flags, struct kvm_pit_state2),
        VMSTATE_END_OF_LIST()
    },
};

/*
 * kvmclock: the guest's clock as it read when the source saved its state
 * (with the VM stopped), set again on the destination before its vCPUs
 * first run, so guest time continues from where it stopped.
 */
static bool kvm_irqchip_clock_pre_save(void *opaque, GError **errp)
{
    struct kvm_clock_data *clock = opaque;

    memset(clock, 0, sizeof(*clock));
    int r = kvm_vm_ioctl(KVM_GET_CLOCK, clock);
    return r < 0 ? kvm_irqchip_fail(errp, "KVM_GET_CLOCK", r) : true;
}

static bool kvm_irqchip_clock_post_load(void *opaque, int version_id, GError **errp)
{
    const struct kvm_clock_data *saved = opaque;
    struct kvm_clock_data clock = { .clock = saved->clock };

    int r = kvm_vm_ioctl(KVM_SET_CLOCK, &clock);
    return r < 0 ? kvm_irqchip_fail(errp, "KVM_SET_CLOCK", r) : true;
}

static const VMStateField kvmclock_fields[] = {
    VMSTATE_UINT64(clock, struct kvm_clock_data),
    VMSTATE_UINT32(flags, struct kvm_clock_data),
    VMSTATE_END_OF_LIST()
};

static const VMStateDescription vmstate_kvmclock = {
    .name = "kvmclock",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = kvm_irqchip_clock_pre_save,
    .post_load = kvm_irqchip_clock_post_load,
    .fields = kvmclock_fields,
};

/* kvmclock in another accelerator's VM: read and dropped (no guest there reads it). */
static const VMStateDescription vmstate_kvmclock_foreign = {
    .name = "kvmclock",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = kvmclock_fields,
};

/* ---- The neutral forms ---- */

typedef struct KVMPicMig {
    uint32_t chip_id;           /* KVM_IRQCHIP_PIC_MASTER, _SLAVE */
    I8259Mig mig;
} KVMPicMig;

typedef struct KVMIOAPICMig {
    IOAPICMig mig;
} KVMIOAPICMig;

typedef struct KVMPitMig {
    I8254Mig mig;
} KVMPitMig;

struct KVMApicMig {
    CPUState *cpu;
    APICMig mig;
};

KVMApicMig *kvm_apic_mig_new(CPUState *cpu)
{
    KVMApicMig *p = g_new0(KVMApicMig, 1);
    p->cpu = cpu;
    return p;
}

static KVMPicMig kvm_pic_mig[2];
static KVMIOAPICMig kvm_ioapic_mig;
static KVMPitMig kvm_pit_mig;

static bool kvm_pic_pre_save(void *opaque, GError **errp)
{
    KVMPicMig *p = opaque;
    struct kvm_irqchip chip = { .chip_id = p->chip_id };

    int r = kvm_vm_ioctl(KVM_GET_IRQCHIP, &chip);
    if (r < 0) {
        return kvm_irqchip_fail(errp, "KVM_GET_IRQCHIP", r);
    }
    kvm_pic_to_mig(&chip.chip.pic, &p->mig);
    return true;
}

static bool kvm_pic_post_load(void *opaque, int version_id, GError **errp)
{
    KVMPicMig *p = opaque;
    struct kvm_irqchip chip = { .chip_id = p->chip_id };

    int r = kvm_vm_ioctl(KVM_GET_IRQCHIP, &chip);
    if (r < 0) {
        return kvm_irqchip_fail(errp, "KVM_GET_IRQCHIP", r);
    }
    if (p->mig.elcr & ~chip.chip.pic.elcr_mask) {
        g_set_error(errp, VMSTATE_ERROR, 0, "ELCR 0x%02x sets edge-only inputs",
                    p->mig.elcr);
        return false;
    }
    kvm_pic_from_mig(&p->mig, &chip.chip.pic);
    r = kvm_vm_ioctl(KVM_SET_IRQCHIP, &chip);
    return r < 0 ? kvm_irqchip_fail(errp, "KVM_SET_IRQCHIP", r) : true;
}

static const VMStateDescription vmstate_kvm_i8259 = {
    .name = "i8259",
    .version_id = I8259_VMSTATE_VERSION,
    .minimum_version_id = I8259_VMSTATE_VERSION,
    .pre_save = kvm_pic_pre_save,
    .post_load = kvm_pic_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(mig, KVMPicMig, vmstate_i8259_mig, I8259Mig),
        VMSTATE_END_OF_LIST()
    },
};

static bool kvm_ioapic_pre_save(void *opaque, GError **errp)
{
    KVMIOAPICMig *p = opaque;
    struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC };

    int r = kvm_vm_ioctl(KVM_GET_IRQCHIP, &chip);
    if (r < 0) {
        return kvm_irqchip_fail(errp, "KVM_GET_IRQCHIP", r);
    }
    kvm_ioapic_to_mig(&chip.chip.ioapic, &p->mig);
    return true;
}

static bool kvm_ioapic_post_load(void *opaque, int version_id, GError **errp)
{
    KVMIOAPICMig *p = opaque;
    struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC };

    if (p->mig.levels >> IOAPIC_NR_PINS) {
        g_set_error(errp, VMSTATE_ERROR, 0, "input levels 0x%x name pins past %d",
                    p->mig.levels, IOAPIC_NR_PINS - 1);
        return false;
    }
    int r = kvm_vm_ioctl(KVM_GET_IRQCHIP, &chip);
    if (r < 0) {
        return kvm_irqchip_fail(errp, "KVM_GET_IRQCHIP", r);
    }
    kvm_ioapic_from_mig(&p->mig, &chip.chip.ioapic);
    r = kvm_vm_ioctl(KVM_SET_IRQCHIP, &chip);
    return r < 0 ? kvm_irqchip_fail(errp, "KVM_SET_IRQCHIP", r) : true;
}

static const VMStateDescription vmstate_kvm_ioapic = {
    .name = "ioapic",
    .version_id = IOAPIC_VMSTATE_VERSION,
    .minimum_version_id = IOAPIC_VMSTATE_VERSION,
    .pre_save = kvm_ioapic_pre_save,
    .post_load = kvm_ioapic_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(mig, KVMIOAPICMig, vmstate_ioapic_mig, IOAPICMig),
        VMSTATE_END_OF_LIST()
    },
};

/*
 * The PIT: ticks counted since each channel's count was loaded, from
 * KVM's load time on CLOCK_MONOTONIC. KVM_SET_PIT2 loads every channel's
 * count again (its period starts over at the load), so a channel armed on
 * the source keeps its count and rate here, not its phase.
 */
static bool kvm_pit_pre_save(void *opaque, GError **errp)
{
    KVMPitMig *p = opaque;
    struct kvm_pit_state2 pit;

    int r = kvm_vm_ioctl(KVM_GET_PIT2, &pit);
    if (r < 0) {
        return kvm_irqchip_fail(errp, "KVM_GET_PIT2", r);
    }
    kvm_pit_to_mig(&pit, host_clock_ns(), &p->mig);
    return true;
}

static bool kvm_pit_post_load(void *opaque, int version_id, GError **errp)
{
    KVMPitMig *p = opaque;
    struct kvm_pit_state2 pit;

    int r = kvm_vm_ioctl(KVM_GET_PIT2, &pit);
    if (r < 0) {
        return kvm_irqchip_fail(errp, "KVM_GET_PIT2", r);
    }
    kvm_pit_from_mig(&p->mig, host_clock_ns(), &pit);
    r = kvm_vm_ioctl(KVM_SET_PIT2, &pit);
    return r < 0 ? kvm_irqchip_fail(errp, "KVM_SET_PIT2", r) : true;
}

static const VMStateDescription vmstate_kvm_i8254 = {
    .name = "i8254",
    .version_id = I8254_VMSTATE_VERSION,
    .minimum_version_id = I8254_VMSTATE_VERSION,
    .pre_save = kvm_pit_pre_save,
    .post_load = kvm_pit_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(mig, KVMPitMig, vmstate_i8254_mig, I8254Mig),
        VMSTATE_END_OF_LIST()
    },
};

/*
 * A LAPIC: KVM's register page (whose TMCCT KVM_GET_LAPIC fills with the
 * current count), the APIC base and the TSC deadline MSR.
 */
static bool kvm_apic_get_msr(CPUState *cpu, uint32_t index, uint64_t *value)
{
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e;
    } m = { .hdr.nmsrs = 1, .e.index = index };

    *value = 0;
    if (kvm_vcpu_ioctl(cpu, KVM_GET_MSRS, &m) != 1) {
        return false;
    }
    *value = m.e.data;
    return true;
}

static bool kvm_apic_pre_save(void *opaque, GError **errp)
{
    KVMApicMig *p = opaque;
    struct kvm_lapic_state lapic;
    uint64_t base, deadline;

    int r = kvm_vcpu_ioctl(p->cpu, KVM_GET_LAPIC, &lapic);
    if (r < 0) {
        return kvm_irqchip_fail(errp, "KVM_GET_LAPIC", r);
    }
    if (!kvm_apic_get_msr(p->cpu, X86_MSR_APIC_BASE, &base)) {
        g_set_error(errp, VMSTATE_ERROR, 0, "vCPU %d: KVM_GET_MSRS: APIC base refused",
                    p->cpu->index);
        return false;
    }
    kvm_apic_get_msr(p->cpu, X86_MSR_TSC_DEADLINE, &deadline);   /* 0 if KVM lacks it */
    kvm_lapic_to_mig(&lapic, base, deadline, &p->mig);
    return true;
}

static bool kvm_apic_post_load(void *opaque, int version_id, GError **errp)
{
    KVMApicMig *p = opaque;
    struct kvm_lapic_state lapic;

    if (p->mig.timer_elapsed < 0 || p->mig.timer_remaining < 0) {
        g_set_error(errp, VMSTATE_ERROR, 0, "negative timer times");
        return false;
    }
    /* The APIC base came with the vCPU ("x86-cpu"), before. */
    int r = kvm_vcpu_ioctl(p->cpu, KVM_GET_LAPIC, &lapic);
    if (r < 0) {
        return kvm_irqchip_fail(errp, "KVM_GET_LAPIC", r);
    }
    kvm_lapic_from_mig(&p->mig, &lapic);
    r = kvm_vcpu_ioctl(p->cpu, KVM_SET_LAPIC, &lapic);
    if (r < 0) {
        return kvm_irqchip_fail(errp, "KVM_SET_LAPIC", r);
    }
    return kvm_cpu_after_lapic_load(p->cpu, p->mig.regs.tsc_deadline, errp);
}

const VMStateDescription vmstate_kvm_apic = {
    .name = "apic",
    .version_id = APIC_VMSTATE_VERSION,
    .minimum_version_id = APIC_VMSTATE_VERSION,
    .pre_save = kvm_apic_pre_save,
    .post_load = kvm_apic_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(mig, KVMApicMig, vmstate_apic_mig, APICMig),
        VMSTATE_END_OF_LIST()
    },
};

/*
 * Registered (and saved, and loaded) in the software CPU's order, the
 * vCPUs first and the LAPICs after the other controllers, with the
 * KVM-only "kvm-cpu" before each vCPU and kvmclock last; the old forms
 * beside them.
 */
void kvm_irqchip_register_vmstate(void)
{
    static const char *const i8259_old[] = { "i8259", NULL };
    static const char *const ioapic_old[] = { "ioapic", NULL };
    static const char *const i8254_old[] = { "i8254", NULL };

    for (int i = 0; i < cpus_count(); i++) {
        kvm_cpu_state_register(cpu_get(i));
    }
    for (unsigned i = 0; i < 2; i++) {
        kvm_pic_mig[i].chip_id = i;
        vmstate_register(NULL, i, &vmstate_kvm_i8259, &kvm_pic_mig[i]);
        kvm_irqchip_state.pic[i].chip_id = i;
        vmstate_register_old_form(NULL, i, &vmstate_kvm_i8259_v1, &kvm_irqchip_state.pic[i],
                                  i8259_old);
    }
    vmstate_register(NULL, 0, &vmstate_kvm_ioapic, &kvm_ioapic_mig);
    kvm_irqchip_state.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
    vmstate_register_old_form(NULL, 0, &vmstate_kvm_ioapic_v1, &kvm_irqchip_state.ioapic,
                              ioapic_old);
    vmstate_register(NULL, 0, &vmstate_kvm_i8254, &kvm_pit_mig);
    vmstate_register_old_form(NULL, 0, &vmstate_kvm_i8254_v1, &kvm_irqchip_state.pit,
                              i8254_old);
    for (int i = 0; i < cpus_count(); i++) {
        vmstate_register(NULL, (uint32_t)i, &vmstate_kvm_apic, kvm_apic_mig_new(cpu_get(i)));
    }
    /* A stream of another accelerator has no kvmclock (nor a guest that used it). */
    vmstate_register_optional(NULL, 0, &vmstate_kvmclock, &kvm_irqchip_state.clock);
}

void kvm_migration_register_foreign(int nr_cpus)
{
    static struct kvm_clock_data dropped;

    for (int i = 0; i < nr_cpus; i++) {
        kvm_cpu_state_register_foreign(i);
    }
    vmstate_register_load_only(NULL, 0, &vmstate_kvmclock_foreign, &dropped);
}
