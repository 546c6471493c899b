/*
 * virtio-net (VIRTIO 1.x, 5.1): one receive and one transmit queue, a
 * 12-byte virtio_net_hdr_v1 before every frame, no offloads, MAC address
 * and link status in config space. The backend is a -netdev user stack.
 */
#ifndef HW_VIRTIO_VIRTIO_NET_H
#define HW_VIRTIO_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "hw/virtio/virtio.h"
#include "net/slirp.h"

/* Feature bits. */
#define VIRTIO_NET_F_MAC        5
#define VIRTIO_NET_F_STATUS     16

#define VIRTIO_NET_S_LINK_UP    1

/* Config space offsets. */
#define VIRTIO_NET_CFG_MAC      0       /* 6 bytes */
#define VIRTIO_NET_CFG_STATUS   6       /* le16 */
#define VIRTIO_NET_CFG_MAX_VQ_PAIRS 8   /* le16 */
#define VIRTIO_NET_CFG_SIZE     12

#define VIRTIO_NET_RX_QUEUE     0
#define VIRTIO_NET_TX_QUEUE     1

/* virtio_net_hdr_v1: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers. */
#define VIRTIO_NET_HDR_SIZE     12
#define VIRTIO_NET_HDR_NUM_BUFFERS_OFF 10

/* Largest frame queued towards the guest: Ethernet with a VLAN tag, no FCS. */
#define VIRTIO_NET_MAX_FRAME    1518
/* Largest frame taken from the guest. */
#define VIRTIO_NET_MAX_TX_FRAME 65549
/* Frames held while the guest has no receive buffers; more are dropped. */
#define VIRTIO_NET_RX_PENDING   32

#define VIRTIO_NET_DEFAULT_MAC  { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 }

typedef struct VirtioNet {
    VirtioDevice vdev;                  /* first: ops receive a VirtioDevice * */
    uint8_t mac[6];
    NetSlirp *peer;
    /* Frames from the network waiting for receive buffers: a ring, migrates. */
    uint32_t rx_head;
    uint32_t rx_count;
    uint32_t rx_len[VIRTIO_NET_RX_PENDING];
    uint8_t rx_data[VIRTIO_NET_RX_PENDING][VIRTIO_NET_MAX_FRAME];
    /* Statistics. */
    uint64_t rx_dropped;
    uint64_t tx_dropped;
    uint8_t *tx_buf;                    /* VIRTIO_NET_MAX_TX_FRAME bytes of scratch */
} VirtioNet;

/* Create a NIC in virtio-mmio slot @index, attached to @peer. */
VirtioNet *virtio_net_new(unsigned index, const uint8_t mac[6], NetSlirp *peer, GError **errp);

#endif
