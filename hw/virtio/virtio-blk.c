/*
 * virtio-blk on a raw image: one request queue, each request handled to
 * completion (preadv/pwritev straight into guest RAM) on the vCPU thread
 * that notified, so nothing is ever in flight between two exits.
 *
 * A request is a header (type, sector) in the device-readable buffers,
 * data, and a status byte as the last device-writable byte; with
 * VIRTIO_F_VERSION_1 the split between descriptors is arbitrary, so
 * everything is addressed by offset into the chain.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "hw/virtio/virtio-blk.h"
#include "hw/virtio/virtio-mmio.h"
#include "migration/register.h"
#include "migration/vmstate.h"

#define VIRTIO_BLK_QUEUE 0

static bool virtio_blk_io(VirtioBlk *s, bool write, struct iovec *iov, unsigned n, uint64_t off)
{
    while (n) {
        ssize_t r = write ? pwritev(s->fd, iov, (int)MIN(n, IOV_MAX), (off_t)off)
                          : preadv(s->fd, iov, (int)MIN(n, IOV_MAX), (off_t)off);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return false;
        }
        off += (uint64_t)r;
        while (n && (size_t)r >= iov->iov_len) {
            r -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n && r) {
            iov->iov_base = (uint8_t *)iov->iov_base + r;
            iov->iov_len -= (size_t)r;
        }
    }
    return true;
}

/* Read or write @len bytes at @sector; the data is at @offset in the chain. */
static uint8_t virtio_blk_rw(VirtioBlk *s, const VirtQueueElement *elem, bool write,
                             uint64_t sector, uint64_t offset, uint64_t len)
{
    if (write && s->readonly) {
        return VIRTIO_BLK_S_IOERR;
    }
    if (len % VIRTIO_BLK_SECTOR_SIZE || sector > s->capacity ||
        len / VIRTIO_BLK_SECTOR_SIZE > s->capacity - sector) {
        return VIRTIO_BLK_S_IOERR;
    }
    if (len == 0) {
        return VIRTIO_BLK_S_OK;
    }
    unsigned max = write ? elem->out_num : elem->in_num;
    g_autofree struct iovec *iov = g_new(struct iovec, max);
    uint64_t covered;
    unsigned n = virtqueue_element_iov(elem, !write, offset, len, iov, max, &covered);
    if (covered != len) {
        return VIRTIO_BLK_S_IOERR;
    }
    bool ok = virtio_blk_io(s, write, iov, n, sector * VIRTIO_BLK_SECTOR_SIZE);
    if (!write) {
        /* Even a failed read may have stored part of the data. */
        virtqueue_element_mark_dirty(elem, offset, len);
    }
    return ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
}

/* Handle one request; returns the bytes written to its in buffers. */
static uint32_t virtio_blk_handle(VirtioBlk *s, const VirtQueueElement *elem)
{
    uint8_t hdr[VIRTIO_BLK_REQ_HDR_SIZE];
    uint32_t type;
    uint64_t sector;
    uint64_t data_in;           /* device-writable bytes before the status byte */
    uint64_t written = 0;
    uint8_t status;

    if (elem->in_len == 0) {
        return 0;               /* nowhere to put a status: nothing to do */
    }
    data_in = elem->in_len - 1;
    if (virtqueue_element_read(elem, 0, hdr, sizeof(hdr)) != sizeof(hdr)) {
        status = VIRTIO_BLK_S_IOERR;
        goto done;
    }
    memcpy(&type, hdr, 4);
    memcpy(&sector, hdr + 8, 8);
    type = GUINT32_FROM_LE(type);
    sector = GUINT64_FROM_LE(sector);

    switch (type) {
    case VIRTIO_BLK_T_IN:
        status = virtio_blk_rw(s, elem, false, sector, 0, data_in);
        written = status == VIRTIO_BLK_S_OK ? data_in : 0;
        break;
    case VIRTIO_BLK_T_OUT:
        status = virtio_blk_rw(s, elem, true, sector, VIRTIO_BLK_REQ_HDR_SIZE,
                               elem->out_len - VIRTIO_BLK_REQ_HDR_SIZE);
        break;
    case VIRTIO_BLK_T_FLUSH:
        status = s->readonly || fdatasync(s->fd) == 0 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
        break;
    case VIRTIO_BLK_T_GET_ID:
        written = virtqueue_element_write(elem, 0, s->serial,
                                          MIN(data_in, (uint64_t)VIRTIO_BLK_ID_BYTES));
        status = VIRTIO_BLK_S_OK;
        break;
    default:
        status = VIRTIO_BLK_S_UNSUPP;
        break;
    }
done:
    virtqueue_element_write(elem, data_in, &status, 1);
    return (uint32_t)MIN(written + 1, (uint64_t)UINT32_MAX);
}

static void virtio_blk_queue_notify(VirtioDevice *vdev, unsigned index)
{
    VirtioBlk *s = (VirtioBlk *)vdev;
    VirtQueue *vq = &vdev->vq[VIRTIO_BLK_QUEUE];
    bool pushed = false;

    if (index != VIRTIO_BLK_QUEUE) {
        return;
    }
    for (;;) {
        VirtQueueElement *elem = virtio_mmio_queue_pop(vdev, VIRTIO_BLK_QUEUE);

        if (!elem) {
            break;
        }
        virtqueue_push(vq, elem, virtio_blk_handle(s, elem));
        virtqueue_element_free(elem);
        pushed = true;
    }
    if (pushed) {
        virtio_mmio_notify_queue(vdev, VIRTIO_BLK_QUEUE);
    }
}

static const VirtioDeviceOps virtio_blk_ops = {
    .name = "virtio-blk",
    .queue_notify = virtio_blk_queue_notify,
};

static void virtio_blk_put_le(uint8_t *p, uint64_t val, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++) {
        p[i] = (uint8_t)(val >> (8 * i));
    }
}

/*
 * Migration: the transport and queue state; no request is ever in flight
 * between two exits, so there is nothing else to carry. The disk itself is
 * shared storage: its size and read-only flag (what the driver saw in
 * config space and features) must be the same on both sides.
 */
static const VMStateDescription vmstate_virtio_blk = {
    .name = "virtio-blk",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(vdev, VirtioBlk, vmstate_virtio_mmio, VirtioDevice),
        VMSTATE_EQUAL(capacity, VirtioBlk),
        VMSTATE_EQUAL(readonly, VirtioBlk),
        VMSTATE_END_OF_LIST()
    },
};

VirtioBlk *virtio_blk_new(unsigned index, const char *path, bool readonly, const char *serial,
                          GError **errp)
{
    int fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
        g_set_error(errp, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "Could not open '%s': %s", path, g_strerror(errno));
        return NULL;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0) {
        g_set_error(errp, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "Could not get the size of '%s': %s", path, g_strerror(errno));
        close(fd);
        return NULL;
    }

    VirtioBlk *s = g_new0(VirtioBlk, 1);
    s->fd = fd;
    s->path = g_strdup(path);
    s->readonly = readonly;
    s->capacity = (uint64_t)size / VIRTIO_BLK_SECTOR_SIZE;
    if (serial) {
        memcpy(s->serial, serial, MIN(strlen(serial), sizeof(s->serial)));
    }

    VirtioDevice *vdev = &s->vdev;
    vdev->ops = &virtio_blk_ops;
    vdev->device_id = VIRTIO_ID_BLOCK;
    vdev->num_queues = 1;
    vdev->host_features = VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) |
                          (readonly ? VIRTIO_BIT(VIRTIO_BLK_F_RO) : 0);
    vdev->config_len = VIRTIO_BLK_CFG_SIZE;
    virtio_blk_put_le(vdev->config + VIRTIO_BLK_CFG_CAPACITY, s->capacity, 8);
    /* Header and status take two of a chain's descriptors. */
    virtio_blk_put_le(vdev->config + VIRTIO_BLK_CFG_SEG_MAX, VIRTQUEUE_MAX_SIZE - 2, 4);
    virtio_mmio_init(vdev, index);
    vmstate_register(NULL, index, &vmstate_virtio_blk, s);
    return s;
}
