/*
 * The Ferry x86-64 machine: lays out RAM around the 32-bit PCI hole,
 * creates the vCPUs, the UARTs and the PM/reset ports, builds the tables
 * a guest reads (e820, MP table) and stages the boot payload.
 */
#include <stdio.h>
#include <string.h>

#include "hw/char/serial.h"
#include "hw/timer/mc146818rtc.h"
#include "hw/virtio/virtio-devices.h"
#include "hw/x86/acpi-build.h"
#include "hw/x86/boot.h"
#include "hw/x86/e820.h"
#include "hw/x86/mptable.h"
#include "hw/x86/pc.h"
#include "hw/x86/pm.h"
#include "migration/register.h"
#include "migration/vmstate.h"
#include "system/accel.h"
#include "system/cpus.h"
#include "system/machine.h"
#include "system/memory.h"

static const uint16_t serial_ports[PC_MAX_SERIAL] = { 0x3f8, 0x2f8, 0x3e8, 0x2e8 };
static const int serial_irqs[PC_MAX_SERIAL] = { 4, 3, 4, 3 };

typedef struct PCMachine {
    int smp;
    X86Boot *boot;
    SerialState *serial[PC_MAX_SERIAL];
    MC146818State *rtc;
} PCMachine;

static PCMachine *pc_machine;

static const char *const pc_machine_types[][2] = {
    { "ferry", "Ferry x86-64 machine (virtio-mmio devices, no firmware)" },
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
    if (!accel_map_ram(0, low, ram->host, errp)) {
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
        if (!accel_map_ram(PC_HIGH_RAM_START, size - low, ram->host + low, errp)) {
            return false;
        }
        e820_add(PC_HIGH_RAM_START, size - low, E820_RAM);
    }
    return true;
}

static void pc_stage_tables(PCMachine *pcm)
{
    uint32_t signature, features;

    accel_current()->cpu_signature(&signature, &features);
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

bool pc_machine_init(const PCMachineConfig *cfg, GError **errp)
{
    PCMachine *pcm = g_new0(PCMachine, 1);
    pcm->smp = cfg->smp;
    pcm->boot = x86_boot_new();
    /* Reachable from here on, also when a step below fails and Ferry exits. */
    pc_machine = pcm;

    if (!pc_map_ram(cfg->ram, errp)) {
        return false;
    }
    if (!cpus_create(cfg->smp, errp)) {
        return false;
    }
    if (!accel_current()->irqchip_init(errp)) {
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
    /* Battery-backed: its date and CMOS RAM survive a machine reset. */
    pcm->rtc = mc146818_new();
    mc146818_register_io(pcm->rtc);
    mc146818_register_vmstate(pcm->rtc);
    /*
     * After the devices: loading re-drives their interrupt lines first,
     * then the irqchips take the source's state over those levels.
     */
    accel_current()->register_vmstate();

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
    machine_reset();
    return true;
}

void machine_reset(void)
{
    PCMachine *pcm = pc_machine;

    accel_current()->irqchip_reset();
    for (int i = 0; i < PC_MAX_SERIAL; i++) {
        if (pcm->serial[i]) {
            serial_reset(pcm->serial[i]);
        }
    }
    pc_pm_reset();
    virtio_devices_reset();
    cpus_reset();
    x86_boot_apply(pcm->boot, 0);
}

const char *machine_type_name(void)
{
    return PC_MACHINE_TYPE;
}

void machine_powerdown(void)
{
    pc_pm_press_power_button();
}
