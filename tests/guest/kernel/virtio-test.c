/*
 * A tiny polled virtio-mmio (version 2) driver for the disk and network
 * checks. Ring 0 runs emulated here, so it does as little as it can: one
 * queue page per virtqueue, 8 entries, chains built by hand, no
 * interrupts. Ferry completes a request before the QueueNotify write
 * returns, so the polls below normally succeed at once.
 */
#include "kernel.h"
#include "virtio-test.h"

#define VT_MMIO_BASE        0xd0000000UL
#define VT_MMIO_STRIDE      0x1000UL
#define VT_MMIO_SLOTS       11
#define VT_MAGIC            0x74726976  /* "virt" */

#define VT_MAGIC_VALUE      0x000
#define VT_VERSION          0x004
#define VT_DEVICE_ID        0x008
#define VT_DEVICE_FEATURES  0x010
#define VT_DEVICE_FEAT_SEL  0x014
#define VT_DRIVER_FEATURES  0x020
#define VT_DRIVER_FEAT_SEL  0x024
#define VT_QUEUE_SEL        0x030
#define VT_QUEUE_NUM_MAX    0x034
#define VT_QUEUE_NUM        0x038
#define VT_QUEUE_READY      0x044
#define VT_QUEUE_NOTIFY     0x050
#define VT_INT_STATUS       0x060
#define VT_INT_ACK          0x064
#define VT_STATUS           0x070
#define VT_QUEUE_DESC_LO    0x080
#define VT_QUEUE_DESC_HI    0x084
#define VT_QUEUE_DRIVER_LO  0x090
#define VT_QUEUE_DRIVER_HI  0x094
#define VT_QUEUE_DEVICE_LO  0x0a0
#define VT_QUEUE_DEVICE_HI  0x0a4
#define VT_CONFIG           0x100

#define VT_S_ACKNOWLEDGE    0x01
#define VT_S_DRIVER         0x02
#define VT_S_DRIVER_OK      0x04
#define VT_S_FEATURES_OK    0x08

#define VT_DESC_F_NEXT      1
#define VT_DESC_F_WRITE     2

#define VT_QSIZE            8
/* Within a queue's page: descriptors, then the driver and device rings. */
#define VT_AVAIL_OFF        0x100
#define VT_USED_OFF         0x200

#define VT_ID_NET           1
#define VT_ID_BLOCK         2
#define VT_NET_F_MAC        5

#define VT_BLK_T_IN         0
#define VT_BLK_T_OUT        1
#define VT_NET_HDR          12
#define VT_NET_BUF          2048

struct vt_desc {
    u64 addr;
    u32 len;
    u16 flags;
    u16 next;
};

struct vt_queue {
    u8 *page;
    u16 avail_idx;
    u16 used_seen;
};

/* Rings: one page per queue. Buffers: four 2 KiB receive buffers and scratch. */
static u8 vt_ring_pages[2][4096] __attribute__((aligned(4096)));
static u8 vt_buf[4][VT_NET_BUF] __attribute__((aligned(4096)));
static u8 vt_scratch[4096] __attribute__((aligned(4096)));
static u32 vt_disk_runs;

static const char vt_hex[] = "0123456789abcdef";

/*
 * Register access. tests/unit/virtio/test-virtio-guest.c defines
 * VT_HOST_TEST and its own versions to run this driver against Ferry's
 * device models on the host.
 */
#ifndef VT_HOST_TEST
static inline u32 vt_read(u64 base, u32 off)
{
    return *(volatile u32 *)(base + off);
}

static inline u8 vt_read8(u64 base, u32 off)
{
    return *(volatile u8 *)(base + off);
}

static inline void vt_write(u64 base, u32 off, u32 v)
{
    *(volatile u32 *)(base + off) = v;
}
#endif

static inline void vt_barrier(void)
{
    __asm__ volatile("" ::: "memory");
}

static u64 vt_find(u32 device_id)
{
    for (u32 n = 0; n < VT_MMIO_SLOTS; n++) {
        u64 base = VT_MMIO_BASE + n * VT_MMIO_STRIDE;
        if (vt_read(base, VT_MAGIC_VALUE) == VT_MAGIC && vt_read(base, VT_VERSION) == 2 &&
            vt_read(base, VT_DEVICE_ID) == device_id) {
            return base;
        }
    }
    return 0;
}

static void vt_reset(u64 base)
{
    vt_write(base, VT_STATUS, 0);
    vt_write(base, VT_INT_ACK, vt_read(base, VT_INT_STATUS));
}

/* Reset, negotiate VERSION_1 plus @features (bits 0-31), set up @nq queues. */
static const char *vt_init(u64 base, u32 features, u32 nq, struct vt_queue *q)
{
    vt_reset(base);
    if (vt_read(base, VT_STATUS) != 0) {
        return "reset did not complete";
    }
    vt_write(base, VT_STATUS, VT_S_ACKNOWLEDGE);
    vt_write(base, VT_STATUS, VT_S_ACKNOWLEDGE | VT_S_DRIVER);
    vt_write(base, VT_DEVICE_FEAT_SEL, 1);
    if (!(vt_read(base, VT_DEVICE_FEATURES) & 1)) {
        return "no VIRTIO_F_VERSION_1";
    }
    vt_write(base, VT_DEVICE_FEAT_SEL, 0);
    features &= vt_read(base, VT_DEVICE_FEATURES);
    vt_write(base, VT_DRIVER_FEAT_SEL, 1);
    vt_write(base, VT_DRIVER_FEATURES, 1);
    vt_write(base, VT_DRIVER_FEAT_SEL, 0);
    vt_write(base, VT_DRIVER_FEATURES, features);
    vt_write(base, VT_STATUS, VT_S_ACKNOWLEDGE | VT_S_DRIVER | VT_S_FEATURES_OK);
    if (!(vt_read(base, VT_STATUS) & VT_S_FEATURES_OK)) {
        return "features refused";
    }
    for (u32 i = 0; i < nq; i++) {
        u64 pa = (u64)vt_ring_pages[i];

        vt_write(base, VT_QUEUE_SEL, i);
        if (vt_read(base, VT_QUEUE_READY)) {
            return "queue already live";
        }
        if (vt_read(base, VT_QUEUE_NUM_MAX) < VT_QSIZE) {
            return "queue too small";
        }
        memset(vt_ring_pages[i], 0, sizeof(vt_ring_pages[i]));
        q[i].page = vt_ring_pages[i];
        q[i].avail_idx = 0;
        q[i].used_seen = 0;
        vt_write(base, VT_QUEUE_NUM, VT_QSIZE);
        vt_write(base, VT_QUEUE_DESC_LO, (u32)pa);
        vt_write(base, VT_QUEUE_DESC_HI, (u32)(pa >> 32));
        vt_write(base, VT_QUEUE_DRIVER_LO, (u32)(pa + VT_AVAIL_OFF));
        vt_write(base, VT_QUEUE_DRIVER_HI, (u32)((pa + VT_AVAIL_OFF) >> 32));
        vt_write(base, VT_QUEUE_DEVICE_LO, (u32)(pa + VT_USED_OFF));
        vt_write(base, VT_QUEUE_DEVICE_HI, (u32)((pa + VT_USED_OFF) >> 32));
        vt_write(base, VT_QUEUE_READY, 1);
        if (!vt_read(base, VT_QUEUE_READY)) {
            return "queue refused";
        }
    }
    vt_write(base, VT_STATUS, VT_S_ACKNOWLEDGE | VT_S_DRIVER | VT_S_FEATURES_OK |
                              VT_S_DRIVER_OK);
    return NULL;
}

static void vt_set_desc(struct vt_queue *q, u16 i, void *buf, u32 len, u16 flags, u16 next)
{
    volatile struct vt_desc *d = (volatile struct vt_desc *)q->page + i;

    d->addr = (u64)buf;
    d->len = len;
    d->flags = flags;
    d->next = next;
}

/* Publish the chain at @head (x86 keeps stores in order; stop the compiler reordering). */
static void vt_publish(struct vt_queue *q, u16 head)
{
    volatile u16 *avail = (volatile u16 *)(q->page + VT_AVAIL_OFF);

    avail[2 + q->avail_idx % VT_QSIZE] = head;
    vt_barrier();
    q->avail_idx++;
    avail[1] = q->avail_idx;
    vt_barrier();
}

static u16 vt_used_idx(struct vt_queue *q)
{
    return *(volatile u16 *)(q->page + VT_USED_OFF + 2);
}

/* The next used entry's id, or -1 if none arrives within @ms. */
static int vt_wait_used(struct vt_queue *q, u64 ms)
{
    u64 deadline = rdtsc() + boot.tsc_hz / 1000 * ms;

    while (vt_used_idx(q) == q->used_seen) {
        if (rdtsc() > deadline) {
            return -1;
        }
        cpu_relax();
    }
    vt_barrier();
    volatile u32 *elem = (volatile u32 *)(q->page + VT_USED_OFF + 4 + 8 * (q->used_seen % VT_QSIZE));
    q->used_seen++;
    return (int)elem[0];
}

static void vt_line_bytes(struct line *l, const u8 *p, u32 n, char sep)
{
    for (u32 i = 0; i < n; i++) {
        char s[4] = { vt_hex[p[i] >> 4], vt_hex[p[i] & 15], 0, 0 };
        if (sep && i + 1 < n) {
            s[2] = sep;
        }
        line_str(l, s);
    }
}

static void vt_fail(const char *what, const char *why)
{
    struct line l;

    line_reset(&l);
    line_str(&l, what);
    line_str(&l, " FAIL ");
    line_str(&l, why);
    serial_print_line(&l);
}

/* Disk. */

/* One request: header in vt_scratch, status byte after it, data in @data. */
static int vt_blk_rw(u64 base, struct vt_queue *q, u32 type, u64 sector, u8 *data)
{
    u32 *hdr = (u32 *)vt_scratch;
    volatile u8 *status = vt_scratch + 64;

    hdr[0] = type;
    hdr[1] = 0;
    memcpy(vt_scratch + 8, &sector, 8);
    *status = 0xff;
    vt_set_desc(q, 0, vt_scratch, 16, VT_DESC_F_NEXT, 1);
    vt_set_desc(q, 1, data, 512, VT_DESC_F_NEXT | (type == VT_BLK_T_IN ? VT_DESC_F_WRITE : 0), 2);
    vt_set_desc(q, 2, vt_scratch + 64, 1, VT_DESC_F_WRITE, 0);
    vt_publish(q, 0);
    vt_write(base, VT_QUEUE_NOTIFY, 0);
    if (vt_wait_used(q, 1000) != 0) {
        return -1;
    }
    return *status;
}

void virtio_test_disk(void)
{
    struct vt_queue q;
    struct line l;
    u8 *rbuf = vt_buf[0];
    u8 *wbuf = vt_buf[1];
    u64 base = vt_find(VT_ID_BLOCK);
    const char *err;

    if (!base) {
        vt_fail("DISK", "no virtio-blk device");
        return;
    }
    err = vt_init(base, 0, 1, &q);
    if (err) {
        vt_reset(base);
        vt_fail("DISK", err);
        return;
    }
    if (vt_blk_rw(base, &q, VT_BLK_T_IN, 0, rbuf) != 0) {
        err = "read of sector 0 failed";
        goto out;
    }
    line_reset(&l);
    line_str(&l, "DISK sector0 ");
    vt_line_bytes(&l, rbuf, 16, 0);
    serial_print_line(&l);

    vt_disk_runs++;
    for (u32 k = 0; k < 32; k++) {
        u8 *chunk = wbuf + 16 * k;
        memcpy(chunk, "FERRY-DISK-", 11);
        chunk[11] = vt_hex[(vt_disk_runs >> 4) & 15];
        chunk[12] = vt_hex[vt_disk_runs & 15];
        chunk[13] = vt_hex[k >> 4];
        chunk[14] = vt_hex[k & 15];
        chunk[15] = ' ';
    }
    if (vt_blk_rw(base, &q, VT_BLK_T_OUT, 1, wbuf) != 0) {
        err = "write of sector 1 failed";
        goto out;
    }
    memset(rbuf, 0, 512);
    if (vt_blk_rw(base, &q, VT_BLK_T_IN, 1, rbuf) != 0) {
        err = "read of sector 1 failed";
        goto out;
    }
    if (memcmp(rbuf, wbuf, 512) != 0) {
        err = "sector 1 reads back different";
        goto out;
    }
out:
    vt_reset(base);
    if (err) {
        vt_fail("DISK", err);
    } else {
        serial_puts("DISK OK\n");
    }
}

/* Network. */

static const u8 vt_guest_ip[4] = { 10, 0, 2, 15 };
static const u8 vt_gateway_ip[4] = { 10, 0, 2, 2 };

/* Is @f (@len bytes, Ethernet) the gateway's ARP reply? */
static bool vt_is_arp_reply(const u8 *f, u32 len)
{
    return len >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[20] == 0 && f[21] == 2 &&
           !memcmp(f + 28, vt_gateway_ip, 4) && !memcmp(f + 38, vt_guest_ip, 4);
}

void virtio_test_net(void)
{
    struct vt_queue q[2];
    struct line l;
    u8 mac[6];
    u8 *tx = vt_scratch;
    u64 base = vt_find(VT_ID_NET);
    const char *err;

    if (!base) {
        vt_fail("NET", "no virtio-net device");
        return;
    }
    err = vt_init(base, 1u << VT_NET_F_MAC, 2, q);
    if (err) {
        vt_reset(base);
        vt_fail("NET", err);
        return;
    }
    for (u32 i = 0; i < 6; i++) {
        mac[i] = vt_read8(base, VT_CONFIG + i);
    }

    /* Receive buffers: descriptors 0-3 of queue 0. */
    for (u16 i = 0; i < 4; i++) {
        vt_set_desc(&q[0], i, vt_buf[i], VT_NET_BUF, VT_DESC_F_WRITE, 0);
        vt_publish(&q[0], i);
    }
    vt_write(base, VT_QUEUE_NOTIFY, 0);

    /* virtio_net_hdr_v1 (all zero) + who-has 10.0.2.2 tell 10.0.2.15. */
    static const u8 arp_head[8] = { 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01 };
    u8 *f = tx + VT_NET_HDR;
    memset(tx, 0, VT_NET_HDR + 42);
    memset(f, 0xff, 6);
    memcpy(f + 6, mac, 6);
    f[12] = 0x08;
    f[13] = 0x06;
    memcpy(f + 14, arp_head, 8);
    memcpy(f + 22, mac, 6);
    memcpy(f + 28, vt_guest_ip, 4);
    memcpy(f + 38, vt_gateway_ip, 4);
    vt_set_desc(&q[1], 0, tx, VT_NET_HDR + 42, 0, 0);
    vt_publish(&q[1], 0);
    vt_write(base, VT_QUEUE_NOTIFY, 1);
    if (vt_wait_used(&q[1], 1000) != 0) {
        err = "transmit did not complete";
        goto out;
    }

    u64 deadline = rdtsc() + boot.tsc_hz;
    err = "no ARP reply";
    while (rdtsc() < deadline) {
        int id = vt_wait_used(&q[0], 10);
        if (id < 0) {
            continue;
        }
        if (id > 3) {
            err = "bad used id";
            break;
        }
        volatile u32 *elem = (volatile u32 *)(q[0].page + VT_USED_OFF + 4 +
                                              8 * ((q[0].used_seen - 1) % VT_QSIZE));
        u32 len = elem[1];
        const u8 *rx = vt_buf[id] + VT_NET_HDR;
        if (len > VT_NET_HDR && vt_is_arp_reply(rx, len - VT_NET_HDR)) {
            line_reset(&l);
            line_str(&l, "NET OK gw-mac=");
            vt_line_bytes(&l, rx + 22, 6, ':');
            err = NULL;
            break;
        }
        /* Something else (an IPv6 router advertisement): recycle the buffer. */
        vt_publish(&q[0], (u16)id);
        vt_write(base, VT_QUEUE_NOTIFY, 0);
    }
out:
    vt_reset(base);
    if (err) {
        vt_fail("NET", err);
    } else {
        serial_print_line(&l);
    }
}
