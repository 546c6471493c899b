/*
 * KVM's in-kernel devices: both PICs, the IOAPIC, the PIT and kvmclock.
 * Their power-on state is captured once the vCPUs exist and written back
 * at every reset; for migration each is read from KVM into a plain struct
 * before saving and written back after loading, described field by field
 * so the stream does not depend on the host's struct layout.
 */
#include <string.h>
#include <sys/ioctl.h>

#include "accel/kvm.h"
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
 * Migration of the devices KVM emulates in the kernel: both PICs, the
 * IOAPIC, the PIT and kvmclock. Each is read from KVM into a plain struct
 * before saving and written back after loading, and described field by
 * field so the stream does not depend on the host's struct layout.
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

static const VMStateDescription vmstate_kvm_i8259 = {
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

static const VMStateDescription vmstate_kvm_ioapic = {
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

static const VMStateDescription vmstate_kvm_i8254 = {
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

static const VMStateDescription vmstate_kvmclock = {
    .name = "kvmclock",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = kvm_irqchip_clock_pre_save,
    .post_load = kvm_irqchip_clock_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(clock, struct kvm_clock_data),
        VMSTATE_UINT32(flags, struct kvm_clock_data),
        VMSTATE_END_OF_LIST()
    },
};

/* Loaded in this order: the vCPUs (local APICs) between the irqchips and the clock. */
void kvm_irqchip_register_vmstate(void)
{
    for (unsigned i = 0; i < 2; i++) {
        kvm_irqchip_state.pic[i].chip_id = i;    /* KVM_IRQCHIP_PIC_MASTER, _SLAVE */
        vmstate_register(NULL, i, &vmstate_kvm_i8259, &kvm_irqchip_state.pic[i]);
    }
    kvm_irqchip_state.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
    vmstate_register(NULL, 0, &vmstate_kvm_ioapic, &kvm_irqchip_state.ioapic);
    vmstate_register(NULL, 0, &vmstate_kvm_i8254, &kvm_irqchip_state.pit);
    for (int i = 0; i < cpus_count(); i++) {
        kvm_cpu_state_register(cpu_get(i));
    }
    vmstate_register(NULL, 0, &vmstate_kvmclock, &kvm_irqchip_state.clock);
}

