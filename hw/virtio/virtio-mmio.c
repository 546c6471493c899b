/*
 * The virtio-mmio transport, version 2: the register window, device
 * status and reset, feature negotiation, queue setup, notifications in
 * both directions and the configuration space window.
 *
 * Interrupts: the line is a level that follows InterruptStatus: raised
 * when a bit gets set, lowered when the driver acknowledges the last one.
 * The machine's MP table declares GSIs 5-15 as ISA (edge, active high);
 * a driver that acknowledges before it looks at the rings gets a fresh
 * rising edge for any later buffer, and a pin programmed level-triggered
 * works as well. A bit that appears while the line is already up (the
 * driver has not acknowledged yet) re-pulses the line, so an edge-triggered
 * pin cannot miss it.
 */
#include <stdio.h>
#include <string.h>

#include "system/accel.h"
#include "hw/virtio/virtio-mmio.h"
#include "migration/vmstate.h"
#include "system/ioport.h"

static const IoRegionOps virtio_mmio_ops = {
    .read = virtio_mmio_read,
    .write = virtio_mmio_write,
};

void virtio_mmio_init(VirtioDevice *vdev, unsigned index)
{
    g_assert(index < VIRTIO_MMIO_MAX_DEVICES);
    g_assert(vdev->num_queues <= VIRTIO_MAX_QUEUES);
    g_assert(vdev->config_len <= VIRTIO_CONFIG_MAX);

    vdev->index = index;
    vdev->mmio_base = VIRTIO_MMIO_BASE + (uint64_t)index * VIRTIO_MMIO_SIZE;
    vdev->irq = VIRTIO_MMIO_IRQ_BASE + (int)index;
    snprintf(vdev->name, sizeof(vdev->name), "virtio-mmio.%u", index);
    vdev->host_features |= VIRTIO_BIT(VIRTIO_F_VERSION_1) |
                           VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
                           VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
    io_region_register(IO_SPACE_MMIO, vdev->mmio_base, VIRTIO_MMIO_SIZE, vdev->name,
                       &virtio_mmio_ops, vdev);
}

void virtio_mmio_cmdline(const VirtioDevice *vdev, GString *out)
{
    if (out->len) {
        g_string_append_c(out, ' ');
    }
    g_string_append_printf(out, "virtio_mmio.device=4K@0x%" G_GINT64_MODIFIER "x:%d",
                           vdev->mmio_base, vdev->irq);
}

static void virtio_mmio_sync_irq(VirtioDevice *vdev)
{
    bool level = vdev->isr != 0;
    if (level != vdev->irq_level) {
        vdev->irq_level = level;
        accel_set_irq(vdev->irq, level);
    }
}

/* Set InterruptStatus @bits and raise the line. */
static void virtio_mmio_raise(VirtioDevice *vdev, uint32_t bits)
{
    uint32_t added = bits & ~vdev->isr;

    vdev->isr |= bits;
    if (!added) {
        return;
    }
    if (vdev->irq_level) {
        /*
         * A new reason while the line is still up (the driver has not
         * acknowledged the last one): give an edge-triggered pin a fresh
         * edge, or the new bit might never be looked at.
         */
        accel_set_irq(vdev->irq, 0);
    }
    vdev->irq_level = true;
    accel_set_irq(vdev->irq, 1);
}

void virtio_mmio_update_irq(VirtioDevice *vdev)
{
    vdev->irq_level = vdev->isr != 0;
    accel_set_irq(vdev->irq, vdev->irq_level);
}

void virtio_mmio_reset(VirtioDevice *vdev)
{
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
        virtqueue_reset(&vdev->vq[i]);
    }
    vdev->status = 0;
    vdev->isr = 0;
    vdev->device_features_sel = 0;
    vdev->driver_features_sel = 0;
    vdev->queue_sel = 0;
    vdev->guest_features = 0;
    vdev->broken = false;
    virtio_mmio_sync_irq(vdev);
    if (vdev->ops->reset) {
        vdev->ops->reset(vdev);
    }
}

bool virtio_mmio_queue_usable(VirtioDevice *vdev, unsigned index)
{
    return index < vdev->num_queues && !vdev->broken &&
           (vdev->status & VIRTIO_STATUS_DRIVER_OK) && vdev->vq[index].ready;
}

void virtio_mmio_notify_queue(VirtioDevice *vdev, unsigned index)
{
    if (index < vdev->num_queues && virtqueue_should_notify(&vdev->vq[index])) {
        virtio_mmio_raise(vdev, VIRTIO_ISR_QUEUE);
    }
}

void virtio_mmio_set_broken(VirtioDevice *vdev, const char *why)
{
    if (vdev->broken) {
        return;
    }
    fprintf(stderr, "ferry: %s (%s): guest error: %s; the device needs a reset\n",
            vdev->name, vdev->ops->name, why);
    vdev->broken = true;
    vdev->status |= VIRTIO_STATUS_NEEDS_RESET;
    if (vdev->status & VIRTIO_STATUS_DRIVER_OK) {
        virtio_mmio_raise(vdev, VIRTIO_ISR_CONFIG);
    }
}

VirtQueueElement *virtio_mmio_queue_pop(VirtioDevice *vdev, unsigned index)
{
    g_autoptr(GError) err = NULL;
    VirtQueueElement *elem = NULL;

    if (virtqueue_pop(&vdev->vq[index], &elem, &err) == VIRTQUEUE_POP_ERROR) {
        virtio_mmio_set_broken(vdev, err->message);
        return NULL;
    }
    return elem;
}

static VirtQueue *virtio_mmio_cur_queue(VirtioDevice *vdev)
{
    return vdev->queue_sel < vdev->num_queues ? &vdev->vq[vdev->queue_sel] : NULL;
}

static bool virtio_mmio_features_ok(VirtioDevice *vdev)
{
    return !(vdev->guest_features & ~vdev->host_features) &&
           (vdev->guest_features & VIRTIO_BIT(VIRTIO_F_VERSION_1));
}

static void virtio_mmio_apply_features(VirtioDevice *vdev)
{
    for (unsigned i = 0; i < vdev->num_queues; i++) {
        vdev->vq[i].indirect = vdev->guest_features & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
        vdev->vq[i].event_idx = vdev->guest_features & VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
    }
}

static void virtio_mmio_set_status(VirtioDevice *vdev, uint8_t val)
{
    uint8_t old = vdev->status;

    if (val == 0) {
        virtio_mmio_reset(vdev);
        return;
    }
    /* FEATURES_OK sticks only if we accept what the driver chose. */
    if ((val & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
        if (virtio_mmio_features_ok(vdev)) {
            virtio_mmio_apply_features(vdev);
        } else {
            val &= ~VIRTIO_STATUS_FEATURES_OK;
        }
    }
    if (vdev->broken) {
        val |= VIRTIO_STATUS_NEEDS_RESET;
    }
    vdev->status = val;
    /* Buffers the driver queued before DRIVER_OK are ours now. */
    if ((val & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
        for (unsigned i = 0; i < vdev->num_queues; i++) {
            if (virtio_mmio_queue_usable(vdev, i)) {
                vdev->ops->queue_notify(vdev, i);
            }
        }
    }
}

static void virtio_mmio_set_ready(VirtioDevice *vdev, VirtQueue *vq, bool ready)
{
    g_autoptr(GError) err = NULL;

    if (!ready) {
        vq->ready = false;
        return;
    }
    if (vq->ready) {
        return;
    }
    virtio_mmio_apply_features(vdev);
    if (!virtqueue_check_layout(vq, VIRTQUEUE_MAX_SIZE, &err)) {
        g_autofree char *why = g_strdup_printf("queue %u: %s", vdev->queue_sel, err->message);
        virtio_mmio_set_broken(vdev, why);
        return;
    }
    /* A queue starts at index 0 on both rings. */
    vq->last_avail_idx = 0;
    vq->used_idx = 0;
    vq->signalled_used = 0;
    vq->signalled_used_valid = false;
    vq->ready = true;
}

static uint64_t virtio_mmio_config_read(VirtioDevice *vdev, uint64_t off, unsigned size)
{
    uint64_t val = 0;

    if (off + size > vdev->config_len) {
        return 0;
    }
    for (unsigned i = 0; i < size; i++) {
        val |= (uint64_t)vdev->config[off + i] << (8 * i);
    }
    return val;
}

static void virtio_mmio_set_half(uint64_t *reg, bool high, uint32_t val)
{
    if (high) {
        *reg = (*reg & 0xffffffffULL) | ((uint64_t)val << 32);
    } else {
        *reg = (*reg & ~0xffffffffULL) | val;
    }
}

uint64_t virtio_mmio_read(void *opaque, uint64_t offset, unsigned size)
{
    VirtioDevice *vdev = opaque;
    VirtQueue *vq = virtio_mmio_cur_queue(vdev);

    if (offset >= VIRTIO_MMIO_CONFIG) {
        return virtio_mmio_config_read(vdev, offset - VIRTIO_MMIO_CONFIG, size);
    }
    /* Registers take aligned 32-bit accesses only. */
    if (size != 4 || (offset & 3)) {
        return 0;
    }
    switch (offset) {
    case VIRTIO_MMIO_MAGIC_VALUE:
        return VIRTIO_MMIO_MAGIC;
    case VIRTIO_MMIO_VERSION_REG:
        return VIRTIO_MMIO_VERSION;
    case VIRTIO_MMIO_DEVICE_ID:
        return vdev->device_id;
    case VIRTIO_MMIO_VENDOR_ID_REG:
        return VIRTIO_MMIO_VENDOR_ID;
    case VIRTIO_MMIO_DEVICE_FEATURES:
        if (vdev->device_features_sel > 1) {
            return 0;
        }
        return (uint32_t)(vdev->host_features >> (32 * vdev->device_features_sel));
    case VIRTIO_MMIO_QUEUE_NUM_MAX:
        return vq ? VIRTQUEUE_MAX_SIZE : 0;
    case VIRTIO_MMIO_QUEUE_NUM:
        return vq ? vq->num : 0;
    case VIRTIO_MMIO_QUEUE_READY:
        return vq ? vq->ready : 0;
    case VIRTIO_MMIO_INTERRUPT_STATUS:
        return vdev->isr;
    case VIRTIO_MMIO_STATUS:
        return vdev->status;
    case VIRTIO_MMIO_QUEUE_DESC_LOW:
        return vq ? (uint32_t)vq->desc : 0;
    case VIRTIO_MMIO_QUEUE_DESC_HIGH:
        return vq ? (uint32_t)(vq->desc >> 32) : 0;
    case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
        return vq ? (uint32_t)vq->avail : 0;
    case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
        return vq ? (uint32_t)(vq->avail >> 32) : 0;
    case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
        return vq ? (uint32_t)vq->used : 0;
    case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
        return vq ? (uint32_t)(vq->used >> 32) : 0;
    case VIRTIO_MMIO_SHM_LEN_LOW:
    case VIRTIO_MMIO_SHM_LEN_HIGH:
    case VIRTIO_MMIO_SHM_BASE_LOW:
    case VIRTIO_MMIO_SHM_BASE_HIGH:
        return 0xffffffff;              /* no shared memory regions */
    case VIRTIO_MMIO_CONFIG_GENERATION:
        return vdev->config_generation;
    default:
        return 0;
    }
}

void virtio_mmio_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    VirtioDevice *vdev = opaque;
    VirtQueue *vq = virtio_mmio_cur_queue(vdev);
    uint32_t val = (uint32_t)value;

    /* No configuration field is writable on our devices. */
    if (offset >= VIRTIO_MMIO_CONFIG || size != 4 || (offset & 3)) {
        return;
    }
    switch (offset) {
    case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
        vdev->device_features_sel = val;
        break;
    case VIRTIO_MMIO_DRIVER_FEATURES:
        if (!(vdev->status & VIRTIO_STATUS_FEATURES_OK) && vdev->driver_features_sel <= 1) {
            virtio_mmio_set_half(&vdev->guest_features, vdev->driver_features_sel == 1, val);
        }
        break;
    case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
        vdev->driver_features_sel = val;
        break;
    case VIRTIO_MMIO_QUEUE_SEL:
        vdev->queue_sel = val;
        break;
    case VIRTIO_MMIO_QUEUE_NUM:
        if (vq && !vq->ready) {
            vq->num = val <= UINT16_MAX ? (uint16_t)val : 0;
        }
        break;
    case VIRTIO_MMIO_QUEUE_READY:
        if (vq) {
            virtio_mmio_set_ready(vdev, vq, val & 1);
        }
        break;
    case VIRTIO_MMIO_QUEUE_NOTIFY:
        /* Without VIRTIO_F_NOTIFICATION_DATA the value is the queue index. */
        if (virtio_mmio_queue_usable(vdev, val)) {
            vdev->ops->queue_notify(vdev, val);
        }
        break;
    case VIRTIO_MMIO_INTERRUPT_ACK:
        vdev->isr &= ~val;
        virtio_mmio_sync_irq(vdev);
        break;
    case VIRTIO_MMIO_STATUS:
        virtio_mmio_set_status(vdev, val & 0xff);
        break;
    case VIRTIO_MMIO_QUEUE_DESC_LOW:
    case VIRTIO_MMIO_QUEUE_DESC_HIGH:
        if (vq && !vq->ready) {
            virtio_mmio_set_half(&vq->desc, offset == VIRTIO_MMIO_QUEUE_DESC_HIGH, val);
        }
        break;
    case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
    case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
        if (vq && !vq->ready) {
            virtio_mmio_set_half(&vq->avail, offset == VIRTIO_MMIO_QUEUE_DRIVER_HIGH, val);
        }
        break;
    case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
    case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
        if (vq && !vq->ready) {
            virtio_mmio_set_half(&vq->used, offset == VIRTIO_MMIO_QUEUE_DEVICE_HIGH, val);
        }
        break;
    default:
        break;
    }
}

/*
 * Migration of the transport: everything the driver programmed or can
 * read back (status, features and their selectors, queue selector,
 * InterruptStatus, config generation, the broken flag) and every queue
 * (layout, negotiated ring features, the device's ring indices and
 * notification bookkeeping). Fixed properties (device type, number of
 * queues) are compared, not loaded. Device models nest this description
 * as the first field of theirs.
 */
static const VMStateDescription vmstate_virtqueue = {
    .name = "virtqueue",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT16(num, VirtQueue),
        VMSTATE_BOOL(ready, VirtQueue),
        VMSTATE_UINT64(desc, VirtQueue),
        VMSTATE_UINT64(avail, VirtQueue),
        VMSTATE_UINT64(used, VirtQueue),
        VMSTATE_BOOL(indirect, VirtQueue),
        VMSTATE_BOOL(event_idx, VirtQueue),
        VMSTATE_UINT16(last_avail_idx, VirtQueue),
        VMSTATE_UINT16(used_idx, VirtQueue),
        VMSTATE_UINT16(signalled_used, VirtQueue),
        VMSTATE_BOOL(signalled_used_valid, VirtQueue),
        VMSTATE_END_OF_LIST()
    },
};

/*
 * Everything a running device could not have reached is refused: a live
 * queue whose rings are not a power of two no larger than the maximum or
 * do not lie in this side's guest RAM, a queue the device does not have,
 * features accepted that are not offered here. Then the interrupt line is
 * driven to the level InterruptStatus implies.
 */
static bool virtio_mmio_post_load(void *opaque, int version_id, GError **errp)
{
    VirtioDevice *vdev = opaque;

    if (vdev->isr & ~(uint32_t)(VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG)) {
        g_set_error(errp, VMSTATE_ERROR, 0, "%s: InterruptStatus 0x%x has unknown bits",
                    vdev->name, vdev->isr);
        return false;
    }
    if ((vdev->status & VIRTIO_STATUS_FEATURES_OK) && !virtio_mmio_features_ok(vdev)) {
        g_set_error(errp, VMSTATE_ERROR, 0, "%s: the driver accepted features 0x%"
                    G_GINT64_MODIFIER "x, this side offers 0x%" G_GINT64_MODIFIER "x",
                    vdev->name, vdev->guest_features, vdev->host_features);
        return false;
    }
    if (vdev->broken && !(vdev->status & VIRTIO_STATUS_NEEDS_RESET)) {
        g_set_error(errp, VMSTATE_ERROR, 0, "%s: broken without DEVICE_NEEDS_RESET in "
                    "status 0x%02x", vdev->name, vdev->status);
        return false;
    }
    /*
     * What the negotiated features decide is derived here, never taken
     * from the stream: a queue must not use indirect descriptors or event
     * indexes its driver did not agree to.
     */
    for (unsigned i = 0; i < vdev->num_queues; i++) {
        vdev->vq[i].indirect = false;
        vdev->vq[i].event_idx = false;
    }
    if (vdev->status & VIRTIO_STATUS_FEATURES_OK) {
        virtio_mmio_apply_features(vdev);
    }
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
        VirtQueue *vq = &vdev->vq[i];
        g_autoptr(GError) err = NULL;

        if (i >= vdev->num_queues) {
            if (vq->ready || vq->num || vq->desc || vq->avail || vq->used ||
                vq->last_avail_idx || vq->used_idx) {
                g_set_error(errp, VMSTATE_ERROR, 0, "%s: state for queue %u, which %s "
                            "does not have", vdev->name, i, vdev->ops->name);
                return false;
            }
            continue;
        }
        if (vq->ready && !virtqueue_check_layout(vq, VIRTQUEUE_MAX_SIZE, &err)) {
            g_set_error(errp, VMSTATE_ERROR, 0, "%s: queue %u: %s", vdev->name, i,
                        err->message);
            return false;
        }
    }
    virtio_mmio_update_irq(vdev);
    return true;
}

const VMStateDescription vmstate_virtio_mmio = {
    .name = "virtio-mmio",
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = virtio_mmio_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_EQUAL(device_id, VirtioDevice),
        VMSTATE_EQUAL(num_queues, VirtioDevice),
        VMSTATE_UINT8(status, VirtioDevice),
        VMSTATE_UINT64(guest_features, VirtioDevice),
        VMSTATE_UINT32(device_features_sel, VirtioDevice),
        VMSTATE_UINT32(driver_features_sel, VirtioDevice),
        VMSTATE_UINT32(queue_sel, VirtioDevice),
        VMSTATE_UINT32(isr, VirtioDevice),
        VMSTATE_UINT32(config_generation, VirtioDevice),
        VMSTATE_BOOL(broken, VirtioDevice),
        VMSTATE_STRUCT_ARRAY(vq, VirtioDevice, VIRTIO_MAX_QUEUES, vmstate_virtqueue, VirtQueue),
        VMSTATE_END_OF_LIST()
    },
};
