/*
 * A virtio device as the driver sees it (VIRTIO 1.x, chapter 2): status,
 * feature bits, virtqueues, interrupt status and configuration space. The
 * transport (virtio-mmio.c) implements the registers over this state;
 * device models (virtio-blk.c, virtio-net.c) embed a VirtioDevice as their
 * first member and fill in the ops.
 *
 * Everything the driver can observe is plain data in VirtioDevice so that
 * migration can save and load it field by field.
 */
#ifndef HW_VIRTIO_VIRTIO_H
#define HW_VIRTIO_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#include "hw/virtio/virtqueue.h"

/* Device IDs (VIRTIO 1.x, 5). */
#define VIRTIO_ID_NET               1
#define VIRTIO_ID_BLOCK             2

/* Device status bits (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE   0x01
#define VIRTIO_STATUS_DRIVER        0x02
#define VIRTIO_STATUS_DRIVER_OK     0x04
#define VIRTIO_STATUS_FEATURES_OK   0x08
#define VIRTIO_STATUS_NEEDS_RESET   0x40
#define VIRTIO_STATUS_FAILED        0x80

/* Transport and ring feature bits (6). */
#define VIRTIO_F_INDIRECT_DESC      28
#define VIRTIO_F_EVENT_IDX          29
#define VIRTIO_F_VERSION_1          32

/* InterruptStatus bits. */
#define VIRTIO_ISR_QUEUE            0x1
#define VIRTIO_ISR_CONFIG           0x2

#define VIRTIO_MAX_QUEUES           2
#define VIRTIO_CONFIG_MAX           64

#define VIRTIO_BIT(n)               (1ULL << (n))

typedef struct VirtioDevice VirtioDevice;

typedef struct VirtioDeviceOps {
    const char *name;                   /* "virtio-blk", "virtio-net" */
    /* The driver made buffers available on queue @index (DRIVER_OK is set). */
    void (*queue_notify)(VirtioDevice *vdev, unsigned index);
    /* Device-specific state back to power-on (the transport reset the rest). */
    void (*reset)(VirtioDevice *vdev);
} VirtioDeviceOps;

struct VirtioDevice {
    /* Fixed at creation. */
    const VirtioDeviceOps *ops;
    uint32_t device_id;
    unsigned num_queues;
    uint64_t host_features;             /* offered to the driver */
    uint8_t config[VIRTIO_CONFIG_MAX];  /* device config space, little endian */
    uint32_t config_len;
    /* Where the transport put it. */
    unsigned index;                     /* n: base 0xd0000000 + n * 0x1000 */
    uint64_t mmio_base;
    int irq;
    char name[32];                      /* "virtio-mmio.0" */

    /* Driver-visible state: migrates. */
    uint8_t status;
    uint32_t isr;                       /* InterruptStatus */
    uint32_t config_generation;
    uint32_t device_features_sel;
    uint32_t driver_features_sel;
    uint32_t queue_sel;
    uint64_t guest_features;            /* DriverFeatures as written */
    VirtQueue vq[VIRTIO_MAX_QUEUES];
    /* Interrupt line level (follows isr != 0); re-assert after loading. */
    bool irq_level;
    /* The guest broke a ring rule; queues stay stopped until reset. */
    bool broken;
};

#endif
