/*
 * A migration destination without KVM, for the fuzz targets and their
 * seed generator: one 8 MiB anonymous RAM block "pc.ram" mapped at guest
 * physical 0, the "ram" and "globalstate" participants, and the devices
 * whose state does not live in the kernel, each registered with the real
 * registry (migration/savevm.c):
 *
 *   id string     instance  what
 *   ram           0         migration/ram*.c
 *   globalstate   0         migration/global-state.c
 *   virtio-blk    0         slot 0, a 64 KiB read-only image
 *   virtio-net    1         slot 1, no network behind it
 *   serial        0         COM1, no chardev behind it
 *   pc-pm         0         hw/x86/pm.c
 *   cpu           0         accel/kvm/kvm-state.c over a fake vCPU
 *
 * The in-kernel devices of the real machine (i8259, ioapic, i8254,
 * kvmclock) are not here: their descriptions are private to hw/x86/pc.c.
 * The vCPU's description is the real one; the ioctls it makes go to a
 * fake vCPU (FuzzVcpu) that accepts any state.
 *
 * The machine functions these files call (vCPU count, BQL, interrupt
 * lines, KVM memory slots, chardevs, the run state) are stand-ins defined
 * in fuzz-machine.c.
 */
#ifndef TESTS_FUZZ_FUZZ_MACHINE_H
#define TESTS_FUZZ_FUZZ_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>
#include <linux/kvm.h>

#include "hw/char/serial.h"
#include "hw/virtio/virtio-blk.h"
#include "hw/virtio/virtio-net.h"
#include "migration/qemu-file.h"
#include "system/ramblock.h"
#include "system/runstate.h"

#define FUZZ_RAM_SIZE       (8 * 1024 * 1024ULL)
#define FUZZ_EXTRA_RAM_SIZE (64 * 1024ULL)
#define FUZZ_DISK_SIZE      (64 * 1024)
#define FUZZ_COM1           0x3f8

/* What the fake vCPU holds: the ioctls of kvm-state.c read and write it. */
#define FUZZ_VCPU_MAX_MSRS  256
typedef struct FuzzVcpu {
    struct kvm_regs regs;
    struct kvm_sregs2 sregs;
    uint8_t xsave[4096];
    struct kvm_xcrs xcrs;
    struct kvm_debugregs debugregs;
    struct kvm_lapic_state lapic;
    struct kvm_vcpu_events events;
    struct kvm_mp_state mp;
    uint32_t tsc_khz;
    unsigned nmsrs;
    uint32_t msr_index[FUZZ_VCPU_MAX_MSRS];
    uint64_t msr_value[FUZZ_VCPU_MAX_MSRS];
} FuzzVcpu;

typedef struct FuzzMachine {
    RAMBlock *ram;              /* "pc.ram", the only block in ramblock_list() */
    RAMBlock *extra;            /* "extra.ram", 64 KiB, not in ramblock_list() */
    bool ram_guarded;           /* PROT_NONE pages right before and after ram */
    VirtioBlk *blk;
    VirtioNet *net;
    SerialState *serial;
    FuzzVcpu *vcpu;
} FuzzMachine;

/* Create the machine (once per process) and return it. */
FuzzMachine *fuzz_machine_get(void);

/*
 * Everything back to power-on: device registers, the fake vCPU, RAM
 * dropped (reads as zero again), run state "running". Cheap: call it
 * before every input.
 */
void fuzz_machine_reset(void);

/*
 * After a load that succeeded: what a guest or the machine does next
 * with the loaded state (read every device register, notify every
 * virtqueue so waiting frames and requests are processed against guest
 * RAM). Loaded state that passed the checks must survive this.
 */
void fuzz_machine_exercise(void);

/* The stand-in run state (global_state_store() saves it). */
void fuzz_machine_set_runstate(RunState state);

/* A QEMUFile reading @data (through a memfd, like a migrate file:). */
QEMUFile *fuzz_input_file(const uint8_t *data, size_t len);
/* A QEMUFile writing into a fresh memfd; fuzz_output_finish() closes it. */
QEMUFile *fuzz_output_file(void);
/* Close @f (from fuzz_output_file) and return everything written. */
GByteArray *fuzz_output_finish(QEMUFile *f);

/* qemu_loadvm_state() on @data. */
bool fuzz_machine_load(const uint8_t *data, size_t len, GError **errp);

/* True when FUZZ_VERBOSE is set in the environment: targets print why inputs fail. */
bool fuzz_verbose(void);

#endif
