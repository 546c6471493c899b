/*
 * The virtio devices of the machine, from the command line: disks from
 * -drive and -device virtio-blk-*, NICs from -device virtio-net-* with
 * their -netdev user stacks. All sit on virtio-mmio (see docs/devel/virtio.md).
 */
#ifndef HW_VIRTIO_VIRTIO_DEVICES_H
#define HW_VIRTIO_VIRTIO_DEVICES_H

#include <stdbool.h>
#include <glib.h>

#include "hw/virtio/virtio.h"
#include "system/cmdline.h"

/*
 * Create the virtio devices the command line asks for: every -drive with
 * if=virtio (or no if=), and every -device virtio-blk-device|virtio-blk-pci
 * (drive=ID, a -drive if=none,id=ID), virtio-net-device|virtio-net-pci
 * (netdev=ID, a -netdev user,id=ID; mac=). The -pci names are accepted and
 * mapped onto virtio-mmio. Errors are one line naming the option, e.g.
 * "-device virtio-blk-device,drive=d9: drive 'd9' not found". Appends
 * "virtio_mmio.device=..." for each device to @cmdline_extra, separated by
 * spaces. Call once, with the BQL held, after kvm_init and main_loop_init.
 */
bool virtio_devices_create(FerryConfig *cfg, GString *cmdline_extra, GError **errp);

/* Machine reset: every device back to its power-on state. BQL held. */
void virtio_devices_reset(void);

/* The devices in slot order (slot n is at 0xd0000000 + n * 0x1000). */
unsigned virtio_devices_count(void);
VirtioDevice *virtio_devices_get(unsigned index);

#endif
