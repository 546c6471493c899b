/*
 * The Ferry x86-64 machine: lays out RAM around the 32-bit PCI hole,
 * creates the vCPUs, the UARTs and the PM/reset ports, builds the tables
 * a guest reads (e820, MP table) and stages the boot payload.
 */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "accel/kvm.h"
#include "hw/char/serial.h"
#include "hw/virtio/virtio-devices.h"
#include "hw/x86/acpi-build.h"
#include "hw/x86/boot.h"
#include "hw/x86/e820.h"
#include "hw/x86/mptable.h"
#include "hw/x86/pc.h"
#include "hw/x86/pm.h"
#include "migration/register.h"
#include "migration/vmstate.h"
#include "system/cpus.h"
#include "system/machine.h"
#include "system/memory.h"

static const uint16_t serial_ports[PC_MAX_SERIAL] = { 0x3f8, 0x2f8, 0x3e8, 0x2e8 };
static const int serial_irqs[PC_MAX_SERIAL] = { 4, 3, 4, 3 };

typedef struct PCMachine {
    int smp;
    X86Boot *boot;
    SerialState *serial[PC_MAX_SERIAL];
    /* In-kernel irqchip and PIT at power-on, restored on reset. */
    struct kvm_irqchip irqchip_reset[3];
    struct kvm_pit_state2 pit_reset;
} PCMachine;

static PCMachine *pc_machine;

static const char *const pc_machine_types[][2] = {
    { "ferry", "Ferry x86-64 KVM machine (virtio-mmio devices, no firmware)" },
    { "pc", "alias of ferry" },
    { "q35", "alias of ferry" },
};

void pc_machine_print_types(void)
{
    printf("Supported machines are:\n");
    for (unsigned i = 0; i < G_N_ELEMENTS(pc_machine_types); i++) {
        printf("%-20s %s%s\n", pc_machine_types[i][0], pc_machine_types[i][1],
               i == 0 ? " (default)" : "");
    }
    printf("none                 empty machine\n");
}

bool pc_machine_type_known(const char *name)
{
    for (unsigned i = 0; i < G_N_ELEMENTS(pc_machine_types); i++) {
        if (strcmp(name, pc_machine_types[i][0]) == 0) {
            return true;
        }
    }
    return false;
}

static bool pc_map_ram(RAMBlock *ram, GError **errp)
{
    uint64_t size = ram->used_length;
    uint64_t low = MIN(size, PC_LOW_RAM_MAX);

    guest_ram_map(0, low, ram, 0);
    if (kvm_add_memory_slot(0, low, ram->host, errp) < 0) {
        return false;
    }
    e820_add(0, 0x9fc00, E820_RAM);
    e820_add(0x9fc00, 0x400, E820_RESERVED);        /* EBDA: the MP table */
    e820_add(ACPI_TABLES_ADDR, 0x100000 - ACPI_TABLES_ADDR, E820_RESERVED); /* ACPI, BIOS area */
    if (low > 0x100000) {
        e820_add(0x100000, low - 0x100000, E820_RAM);
    }
    if (size > low) {
        guest_ram_map(PC_HIGH_RAM_START, size - low, ram, low);
        if (kvm_add_memory_slot(PC_HIGH_RAM_START, size - low, ram->host + low, errp) < 0) {
            return false;
        }
        e820_add(PC_HIGH_RAM_START, size - low, E820_RAM);
    }
    return true;
}

static void pc_stage_tables(PCMachine *pcm)
{
    const struct kvm_cpuid2 *cpuid = kvm_state->supported_cpuid;
    uint32_t signature = 0, features = 0;

    for (uint32_t i = 0; i < cpuid->nent; i++) {
        if (cpuid->entries[i].function == 1) {
            signature = cpuid->entries[i].eax;
            features = cpuid->entries[i].edx;
        }
    }
    g_autoptr(GBytes) mp = mptable_build(pcm->smp, signature, features);
    gsize len;
    const void *data = g_bytes_get_data(mp, &len);
    x86_boot_add_blob(pcm->boot, MPTABLE_ADDR, data, len);

    g_autoptr(GBytes) acpi = acpi_build_tables(pcm->smp);
    data = g_bytes_get_data(acpi, &len);
    x86_boot_add_blob(pcm->boot, ACPI_TABLES_ADDR, data, len);

    /* BIOS data area: the EBDA segment, where guests start their MP scan. */
    uint16_t ebda_seg = MPTABLE_ADDR >> 4;
    x86_boot_add_blob(pcm->boot, 0x40e, &ebda_seg, sizeof(ebda_seg));
    /* Base memory size in KiB (BDA 0x413), below the EBDA. */
    uint16_t base_kib = MPTABLE_ADDR >> 10;
    x86_boot_add_blob(pcm->boot, 0x413, &base_kib, sizeof(base_kib));
}

static bool pc_capture_reset_state(PCMachine *pcm, GError **errp)
{
    for (unsigned i = 0; i < 3; i++) {
        pcm->irqchip_reset[i].chip_id = i;
        if (kvm_vm_ioctl(KVM_GET_IRQCHIP, &pcm->irqchip_reset[i]) < 0) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "KVM_GET_IRQCHIP failed");
            return false;
        }
    }
    if (kvm_vm_ioctl(KVM_GET_PIT2, &pcm->pit_reset) < 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "KVM_GET_PIT2 failed");
        return false;
    }
    return true;
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
} pc_kvm_state;

#define PC_IOAPIC_BASE 0xfec00000ULL

static bool pc_kvm_fail(GError **errp, const char *what, int r)
{
    g_set_error(errp, VMSTATE_ERROR, 0, "%s: %s", what, g_strerror(-r));
    return false;
}

static bool pc_kvm_irqchip_pre_save(void *opaque, GError **errp)
{
    int r = kvm_vm_ioctl(KVM_GET_IRQCHIP, opaque);
    return r < 0 ? pc_kvm_fail(errp, "KVM_GET_IRQCHIP", r) : true;
}

static bool pc_kvm_irqchip_post_load(void *opaque, int version_id, GError **errp)
{
    int r = kvm_vm_ioctl(KVM_SET_IRQCHIP, opaque);
    return r < 0 ? pc_kvm_fail(errp, "KVM_SET_IRQCHIP", r) : true;
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
    .pre_save = pc_kvm_irqchip_pre_save,
    .post_load = pc_kvm_irqchip_post_load,
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
    .pre_save = pc_kvm_irqchip_pre_save,
    .post_load = pc_kvm_irqchip_post_load,
    .fields = (const VMStateField[]) {
        /* The machine's IOAPIC does not move (KVM would take the address as is). */
        { .name = "base_address", .type = VMS_UINT64,
          .offset = offsetof(struct kvm_irqchip, chip.ioapic.base_address), .size = 8,
          .has_range = true, .range_min = PC_IOAPIC_BASE, .range_max = PC_IOAPIC_BASE },
        VMSTATE_UINT32(chip.ioapic.ioregsel, struct kvm_irqchip),
        VMSTATE_UINT32(chip.ioapic.id, struct kvm_irqchip),
        VMSTATE_UINT32_RANGE(chip.ioapic.irr, struct kvm_irqchip, 0,
                             (1u << KVM_IOAPIC_NUM_PINS) - 1),
        VMSTATE_UINT64_ARRAY(chip.ioapic.redirtbl, struct kvm_irqchip, KVM_IOAPIC_NUM_PINS),
        VMSTATE_END_OF_LIST()
    },
};

static bool pc_kvm_pit_pre_save(void *opaque, GError **errp)
{
    int r = kvm_vm_ioctl(KVM_GET_PIT2, opaque);
    return r < 0 ? pc_kvm_fail(errp, "KVM_GET_PIT2", r) : true;
}

static bool pc_kvm_pit_post_load(void *opaque, int version_id, GError **errp)
{
    struct kvm_pit_state2 *pit = opaque;

    if (pit->flags & ~(uint32_t)(KVM_PIT_FLAGS_HPET_LEGACY | KVM_PIT_FLAGS_SPEAKER_DATA_ON)) {
        g_set_error(errp, VMSTATE_ERROR, 0, "PIT flags 0x%x has unknown bits", pit->flags);
        return false;
    }
    memset(pit->reserved, 0, sizeof(pit->reserved));
    int r = kvm_vm_ioctl(KVM_SET_PIT2, pit);
    return r < 0 ? pc_kvm_fail(errp, "KVM_SET_PIT2", r) : true;
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
    .pre_save = pc_kvm_pit_pre_save,
    .post_load = pc_kvm_pit_post_load,
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
static bool pc_kvmclock_pre_save(void *opaque, GError **errp)
{
    struct kvm_clock_data *clock = opaque;

    memset(clock, 0, sizeof(*clock));
    int r = kvm_vm_ioctl(KVM_GET_CLOCK, clock);
    return r < 0 ? pc_kvm_fail(errp, "KVM_GET_CLOCK", r) : true;
}

static bool pc_kvmclock_post_load(void *opaque, int version_id, GError **errp)
{
    const struct kvm_clock_data *saved = opaque;
    struct kvm_clock_data clock = { .clock = saved->clock };

    int r = kvm_vm_ioctl(KVM_SET_CLOCK, &clock);
    return r < 0 ? pc_kvm_fail(errp, "KVM_SET_CLOCK", r) : true;
}

static const VMStateDescription vmstate_kvmclock = {
    .name = "kvmclock",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = pc_kvmclock_pre_save,
    .post_load = pc_kvmclock_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(clock, struct kvm_clock_data),
        VMSTATE_UINT32(flags, struct kvm_clock_data),
        VMSTATE_END_OF_LIST()
    },
};

/* Loaded in this order: the vCPUs (local APICs) between the irqchips and the clock. */
void pc_kvm_state_register(void)
{
    for (unsigned i = 0; i < 2; i++) {
        pc_kvm_state.pic[i].chip_id = i;    /* KVM_IRQCHIP_PIC_MASTER, _SLAVE */
        vmstate_register(NULL, i, &vmstate_kvm_i8259, &pc_kvm_state.pic[i]);
    }
    pc_kvm_state.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
    vmstate_register(NULL, 0, &vmstate_kvm_ioapic, &pc_kvm_state.ioapic);
    vmstate_register(NULL, 0, &vmstate_kvm_i8254, &pc_kvm_state.pit);
    for (int i = 0; i < cpus_count(); i++) {
        kvm_cpu_state_register(kvm_cpu(i));
    }
    vmstate_register(NULL, 0, &vmstate_kvmclock, &pc_kvm_state.clock);
}

bool pc_machine_init(const PCMachineConfig *cfg, GError **errp)
{
    PCMachine *pcm = g_new0(PCMachine, 1);
    pcm->smp = cfg->smp;
    pcm->boot = x86_boot_new();

    if (!pc_map_ram(cfg->ram, errp)) {
        return false;
    }
    if (!kvm_cpus_create(cfg->smp, errp)) {
        return false;
    }
    if (!pc_capture_reset_state(pcm, errp)) {
        return false;
    }
    for (int i = 0; i < PC_MAX_SERIAL; i++) {
        if (cfg->serial[i]) {
            pcm->serial[i] = serial_isa_init(i, serial_ports[i], serial_irqs[i],
                                             cfg->serial[i], errp);
            if (!pcm->serial[i]) {
                return false;
            }
        }
    }
    pc_pm_init();
    /*
     * After the devices: loading re-drives their interrupt lines first,
     * then the irqchips take the source's state over those levels.
     */
    pc_kvm_state_register();

    pc_stage_tables(pcm);
    if (cfg->kernel) {
        if (!x86_boot_load_kernel(pcm->boot, cfg->kernel, cfg->initrd, cfg->append, errp)) {
            return false;
        }
    } else if (cfg->boot_drive) {
        if (!x86_boot_load_bootsect(pcm->boot, cfg->boot_drive, errp)) {
            return false;
        }
    } else {
        /*
         * No firmware and nothing to boot: like QEMU sitting in its BIOS with
         * no boot device, the machine exists (monitors, qtest work) and the
         * boot CPU halts.
         */
        static const guint8 halt_loop[] = { 0xfa, 0xf4, 0xeb, 0xfd };  /* cli; hlt; jmp */
        fprintf(stderr, "ferry: nothing to boot (no -kernel and no raw -drive): "
                "the boot CPU halts\n");
        x86_boot_add_blob(pcm->boot, 0x7c00, halt_loop, sizeof(halt_loop));
        pcm->boot->mode = X86_BOOT_REAL_MODE;
        pcm->boot->entry = 0x7c00;
    }
    pc_machine = pcm;
    machine_reset();
    return true;
}

void machine_reset(void)
{
    PCMachine *pcm = pc_machine;

    for (unsigned i = 0; i < 3; i++) {
        kvm_vm_ioctl(KVM_SET_IRQCHIP, &pcm->irqchip_reset[i]);
    }
    kvm_vm_ioctl(KVM_SET_PIT2, &pcm->pit_reset);
    for (int i = 0; i < PC_MAX_SERIAL; i++) {
        if (pcm->serial[i]) {
            serial_reset(pcm->serial[i]);
        }
    }
    pc_pm_reset();
    virtio_devices_reset();
    for (int i = 0; i < cpus_count(); i++) {
        kvm_cpu_reset(kvm_cpu(i));
    }
    x86_boot_apply(pcm->boot, kvm_cpu(0));
}

void machine_powerdown(void)
{
    pc_pm_press_power_button();
}
