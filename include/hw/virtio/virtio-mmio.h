/*
 * The virtio-mmio transport, version 2 ("modern", VIRTIO 1.x, 4.2): one
 * 4 KiB register window per device at 0xd0000000 + n * 0x1000, interrupt
 * on GSI 5 + n. Registers are read and written from vCPU threads with the
 * BQL held.
 */
#ifndef HW_VIRTIO_VIRTIO_MMIO_H
#define HW_VIRTIO_VIRTIO_MMIO_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "hw/virtio/virtio.h"

#define VIRTIO_MMIO_BASE            0xd0000000ULL
#define VIRTIO_MMIO_SIZE            0x1000
#define VIRTIO_MMIO_IRQ_BASE        5
/* GSIs 5..15: the ISA interrupts the machine's MP table routes. */
#define VIRTIO_MMIO_MAX_DEVICES     11

#define VIRTIO_MMIO_MAGIC           0x74726976      /* "virt" */
#define VIRTIO_MMIO_VERSION         2
#define VIRTIO_MMIO_VENDOR_ID       0x59524546      /* "FERY" */

/* Register offsets. */
#define VIRTIO_MMIO_MAGIC_VALUE         0x000
#define VIRTIO_MMIO_VERSION_REG         0x004
#define VIRTIO_MMIO_DEVICE_ID           0x008
#define VIRTIO_MMIO_VENDOR_ID_REG       0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES     0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES     0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL           0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX       0x034
#define VIRTIO_MMIO_QUEUE_NUM           0x038
#define VIRTIO_MMIO_QUEUE_READY         0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY        0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS    0x060
#define VIRTIO_MMIO_INTERRUPT_ACK       0x064
#define VIRTIO_MMIO_STATUS              0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW      0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH     0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW    0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH   0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW    0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH   0x0a4
#define VIRTIO_MMIO_SHM_SEL             0x0ac
#define VIRTIO_MMIO_SHM_LEN_LOW         0x0b0
#define VIRTIO_MMIO_SHM_LEN_HIGH        0x0b4
#define VIRTIO_MMIO_SHM_BASE_LOW        0x0b8
#define VIRTIO_MMIO_SHM_BASE_HIGH       0x0bc
#define VIRTIO_MMIO_CONFIG_GENERATION   0x0fc
#define VIRTIO_MMIO_CONFIG              0x100

/*
 * Place @vdev in slot @index (base, IRQ, name) and register its window.
 * The device fields (ops, device_id, num_queues, host_features, config)
 * must be filled in; VIRTIO_F_VERSION_1 and the ring features are added
 * here.
 */
void virtio_mmio_init(VirtioDevice *vdev, unsigned index);

/* Register access; @offset within the 4 KiB window. */
uint64_t virtio_mmio_read(void *opaque, uint64_t offset, unsigned size);
void virtio_mmio_write(void *opaque, uint64_t offset, uint64_t value, unsigned size);

/* Device reset (Status written 0, or machine reset). */
void virtio_mmio_reset(VirtioDevice *vdev);

/* DRIVER_OK, queue ready, and the device not broken: buffers may be used. */
bool virtio_mmio_queue_usable(VirtioDevice *vdev, unsigned index);

/* After pushing to queue @index: interrupt the driver if it wants one. */
void virtio_mmio_notify_queue(VirtioDevice *vdev, unsigned index);

/*
 * The guest broke the rules (@why): stop the queues, set
 * DEVICE_NEEDS_RESET and raise a configuration interrupt. Logged once.
 */
void virtio_mmio_set_broken(VirtioDevice *vdev, const char *why);

/*
 * The next chain on queue @index (free it with virtqueue_element_free()),
 * or NULL: the ring is empty, or the guest broke the ring rules and the
 * device is now broken (virtio_mmio_set_broken()).
 */
VirtQueueElement *virtio_mmio_queue_pop(VirtioDevice *vdev, unsigned index);

/* Re-drive the interrupt line from irq_level (after loading state). */
void virtio_mmio_update_irq(VirtioDevice *vdev);

/*
 * The transport's migratable state over a VirtioDevice (status, features,
 * selectors, InterruptStatus, config generation, queues). Device models
 * nest it (VMSTATE_STRUCT) in their own description; loading checks the
 * queues against guest RAM and re-drives the interrupt line.
 */
struct VMStateDescription;
extern const struct VMStateDescription vmstate_virtio_mmio;

/* Append "virtio_mmio.device=4K@0xd0000000:5" for Linux. */
void virtio_mmio_cmdline(const VirtioDevice *vdev, GString *out);

#endif
