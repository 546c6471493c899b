/*
 * The Ferry x86-64 machine ("ferry", alias "pc"): RAM layout, devices,
 * boot. See docs/devel/machine.md for what the guest sees.
 */
#ifndef HW_X86_PC_H
#define HW_X86_PC_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "chardev/char.h"
#include "system/ramblock.h"

#define PC_LOW_RAM_MAX      0xc0000000ULL   /* RAM above this goes above 4 GiB */
#define PC_HIGH_RAM_START   0x100000000ULL
#define PC_MAX_SERIAL       4
#define PC_MACHINE_TYPE     "ferry"   /* on the wire; every alias is this machine */

typedef struct PCMachineConfig {
    int smp;
    RAMBlock *ram;
    const char *kernel;
    const char *initrd;
    const char *append;
    const char *boot_drive;     /* raw image whose first sector boots without -kernel */
    Chardev *serial[PC_MAX_SERIAL];
} PCMachineConfig;

/* Build the machine: memory slots, vCPUs, devices, boot payload. */
bool pc_machine_init(const PCMachineConfig *cfg, GError **errp);

/* Machine type names -machine help lists. */
void pc_machine_print_types(void);
bool pc_machine_type_known(const char *name);

#endif
