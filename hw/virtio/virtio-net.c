/*
 * virtio-net: frames from the transmit queue go to the slirp stack; frames
 * from slirp go into receive buffers, or wait in a small ring until the
 * guest posts some, or are dropped (TCP retransmits).
 *
 * Without VIRTIO_NET_F_MRG_RXBUF every frame uses one receive chain and
 * num_buffers is 1. No checksum or segmentation offloads are offered, so
 * the header is all zeroes otherwise and frames travel complete.
 */
#include <string.h>

#include "hw/virtio/virtio-mmio.h"
#include "hw/virtio/virtio-net.h"
#include "migration/register.h"
#include "migration/vmstate.h"

/* Put one frame in the next receive buffer. Returns false if there is none. */
static bool virtio_net_deliver(VirtioNet *n, const uint8_t *buf, size_t len)
{
    VirtioDevice *vdev = &n->vdev;
    VirtQueue *vq = &vdev->vq[VIRTIO_NET_RX_QUEUE];
    VirtQueueElement *elem;

    if (!virtio_mmio_queue_usable(vdev, VIRTIO_NET_RX_QUEUE)) {
        return false;
    }
    elem = virtio_mmio_queue_pop(vdev, VIRTIO_NET_RX_QUEUE);
    if (!elem) {
        return false;
    }
    if (elem->in_len < VIRTIO_NET_HDR_SIZE + len) {
        /* Too small for this frame: give the buffer back empty, lose the frame. */
        n->rx_dropped++;
        virtqueue_push(vq, elem, 0);
    } else {
        uint8_t hdr[VIRTIO_NET_HDR_SIZE] = { 0 };
        hdr[VIRTIO_NET_HDR_NUM_BUFFERS_OFF] = 1;
        virtqueue_element_write(elem, 0, hdr, sizeof(hdr));
        virtqueue_element_write(elem, VIRTIO_NET_HDR_SIZE, buf, len);
        virtqueue_push(vq, elem, (uint32_t)(VIRTIO_NET_HDR_SIZE + len));
    }
    virtqueue_element_free(elem);
    return true;
}

/* Move waiting frames into receive buffers while there are some. */
static void virtio_net_flush_rx(VirtioNet *n)
{
    bool pushed = false;

    while (n->rx_count) {
        uint32_t slot = n->rx_head;
        if (!virtio_net_deliver(n, n->rx_data[slot], n->rx_len[slot])) {
            break;
        }
        n->rx_head = (n->rx_head + 1) % VIRTIO_NET_RX_PENDING;
        n->rx_count--;
        pushed = true;
    }
    if (pushed) {
        virtio_mmio_notify_queue(&n->vdev, VIRTIO_NET_RX_QUEUE);
    }
}

/* A frame from slirp (main thread, or a vCPU thread inside our own transmit). */
static void virtio_net_receive(void *opaque, const uint8_t *buf, size_t len)
{
    VirtioNet *n = opaque;

    if (len > VIRTIO_NET_MAX_FRAME) {
        n->rx_dropped++;
        return;
    }
    /* Keep order: frames already waiting go first. */
    if (n->rx_count == 0 && virtio_net_deliver(n, buf, len)) {
        virtio_mmio_notify_queue(&n->vdev, VIRTIO_NET_RX_QUEUE);
        return;
    }
    if (n->rx_count == VIRTIO_NET_RX_PENDING) {
        n->rx_dropped++;
        return;
    }
    uint32_t slot = (n->rx_head + n->rx_count) % VIRTIO_NET_RX_PENDING;
    memcpy(n->rx_data[slot], buf, len);
    n->rx_len[slot] = (uint32_t)len;
    n->rx_count++;
}

static void virtio_net_transmit(VirtioNet *n)
{
    VirtioDevice *vdev = &n->vdev;
    VirtQueue *vq = &vdev->vq[VIRTIO_NET_TX_QUEUE];
    bool pushed = false;

    for (;;) {
        VirtQueueElement *elem = virtio_mmio_queue_pop(vdev, VIRTIO_NET_TX_QUEUE);

        if (!elem) {
            break;
        }
        uint64_t len = elem->out_len >= VIRTIO_NET_HDR_SIZE
                       ? elem->out_len - VIRTIO_NET_HDR_SIZE : 0;
        bool ok = elem->out_len >= VIRTIO_NET_HDR_SIZE && len > 0 &&
                  len <= VIRTIO_NET_MAX_TX_FRAME;
        if (ok) {
            virtqueue_element_read(elem, VIRTIO_NET_HDR_SIZE, n->tx_buf, len);
        } else {
            n->tx_dropped++;
        }
        virtqueue_push(vq, elem, 0);
        virtqueue_element_free(elem);
        pushed = true;
        if (ok && n->peer) {
            /* May deliver a reply into the receive queue before returning. */
            net_slirp_send(n->peer, n->tx_buf, len);
        }
        if (vdev->broken) {
            break;
        }
    }
    if (pushed) {
        virtio_mmio_notify_queue(vdev, VIRTIO_NET_TX_QUEUE);
    }
}

static void virtio_net_queue_notify(VirtioDevice *vdev, unsigned index)
{
    VirtioNet *n = (VirtioNet *)vdev;

    if (index == VIRTIO_NET_RX_QUEUE) {
        virtio_net_flush_rx(n);
    } else if (index == VIRTIO_NET_TX_QUEUE) {
        virtio_net_transmit(n);
    }
}

static void virtio_net_reset(VirtioDevice *vdev)
{
    VirtioNet *n = (VirtioNet *)vdev;

    n->rx_head = 0;
    n->rx_count = 0;
}

static const VirtioDeviceOps virtio_net_ops = {
    .name = "virtio-net",
    .queue_notify = virtio_net_queue_notify,
    .reset = virtio_net_reset,
};

/*
 * Migration: the transport and queues, the MAC (the destination takes the
 * source's, as the guest knows it), the link status word of config space,
 * and the frames waiting for receive buffers. The slirp stack behind the
 * NIC is not migrated.
 */

/* Link status: le16 in config space, big-endian on the wire. */
static void virtio_net_status_put(QEMUFile *f, const void *field, size_t size)
{
    const uint8_t *p = field;
    qemu_put_be16(f, (uint16_t)(p[0] | p[1] << 8));
}

static bool virtio_net_status_get(QEMUFile *f, void *field, size_t size, GError **errp)
{
    uint8_t *p = field;
    uint16_t v = qemu_get_be16(f);

    if (qemu_file_get_error(f)) {
        return false;
    }
    if (v & ~VIRTIO_NET_S_LINK_UP) {
        g_set_error(errp, VMSTATE_ERROR, 0, "link status 0x%x has unknown bits", v);
        return false;
    }
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    return true;
}

static const VMStateInfo virtio_net_status_info = {
    .name = "virtio-net link status",
    .get = virtio_net_status_get,
    .put = virtio_net_status_put,
};

/*
 * Waiting frames, oldest first: a be32 count (at most
 * VIRTIO_NET_RX_PENDING), then per frame a be32 length (at most
 * VIRTIO_NET_MAX_FRAME) and the bytes. Each bound is checked before
 * anything it governs is stored.
 */
static void virtio_net_rx_put(QEMUFile *f, const void *field, size_t size)
{
    const VirtioNet *n = field;

    qemu_put_be32(f, n->rx_count);
    for (uint32_t i = 0; i < n->rx_count; i++) {
        uint32_t slot = (n->rx_head + i) % VIRTIO_NET_RX_PENDING;
        qemu_put_be32(f, n->rx_len[slot]);
        qemu_put_buffer(f, n->rx_data[slot], n->rx_len[slot]);
    }
}

static bool virtio_net_rx_get(QEMUFile *f, void *field, size_t size, GError **errp)
{
    VirtioNet *n = field;
    uint32_t count = qemu_get_be32(f);

    if (qemu_file_get_error(f)) {
        return false;
    }
    if (count > VIRTIO_NET_RX_PENDING) {
        g_set_error(errp, VMSTATE_ERROR, 0, "%u waiting frames, at most %u", count,
                    VIRTIO_NET_RX_PENDING);
        return false;
    }
    for (uint32_t i = 0; i < count; i++) {
        uint32_t len = qemu_get_be32(f);
        if (qemu_file_get_error(f)) {
            return false;
        }
        if (len > VIRTIO_NET_MAX_FRAME) {
            g_set_error(errp, VMSTATE_ERROR, 0, "waiting frame %u of %u bytes, at most %u",
                        i, len, VIRTIO_NET_MAX_FRAME);
            return false;
        }
        qemu_get_buffer(f, n->rx_data[i], len);
        if (qemu_file_get_error(f)) {
            return false;
        }
        n->rx_len[i] = len;
    }
    n->rx_head = 0;
    n->rx_count = count;
    return true;
}

static const VMStateInfo virtio_net_rx_info = {
    .name = "virtio-net waiting frames",
    .get = virtio_net_rx_get,
    .put = virtio_net_rx_put,
};

static bool virtio_net_post_load(void *opaque, int version_id, GError **errp)
{
    VirtioNet *n = opaque;

    if (n->mac[0] & 1) {
        g_set_error(errp, VMSTATE_ERROR, 0, "MAC %02x:%02x:%02x:%02x:%02x:%02x is a "
                    "multicast address", n->mac[0], n->mac[1], n->mac[2], n->mac[3],
                    n->mac[4], n->mac[5]);
        return false;
    }
    memcpy(n->vdev.config + VIRTIO_NET_CFG_MAC, n->mac, sizeof(n->mac));
    return true;
}

static const VMStateDescription vmstate_virtio_net = {
    .name = "virtio-net",
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = virtio_net_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(vdev, VirtioNet, vmstate_virtio_mmio, VirtioDevice),
        VMSTATE_BUFFER(mac, VirtioNet),
        { .name = "link_status", .type = VMS_CUSTOM,
          .offset = offsetof(VirtioNet, vdev.config) + VIRTIO_NET_CFG_STATUS, .size = 2,
          .info = &virtio_net_status_info },
        { .name = "rx_frames", .type = VMS_CUSTOM, .offset = 0, .size = sizeof(VirtioNet),
          .info = &virtio_net_rx_info },
        VMSTATE_END_OF_LIST()
    },
};

VirtioNet *virtio_net_new(unsigned index, const uint8_t mac[6], NetSlirp *peer, GError **errp)
{
    VirtioNet *n = g_new0(VirtioNet, 1);

    if (peer && !net_slirp_attach(peer, virtio_net_receive, n, errp)) {
        g_free(n);
        return NULL;
    }
    n->peer = peer;
    memcpy(n->mac, mac, sizeof(n->mac));
    n->tx_buf = g_malloc(VIRTIO_NET_MAX_TX_FRAME);

    VirtioDevice *vdev = &n->vdev;
    vdev->ops = &virtio_net_ops;
    vdev->device_id = VIRTIO_ID_NET;
    vdev->num_queues = 2;
    vdev->host_features = VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_STATUS);
    vdev->config_len = VIRTIO_NET_CFG_SIZE;
    memcpy(vdev->config + VIRTIO_NET_CFG_MAC, mac, 6);
    vdev->config[VIRTIO_NET_CFG_STATUS] = VIRTIO_NET_S_LINK_UP;
    vdev->config[VIRTIO_NET_CFG_MAX_VQ_PAIRS] = 1;
    virtio_mmio_init(vdev, index);
    vmstate_register(NULL, index, &vmstate_virtio_net, n);
    return n;
}
