/*
 * virtio-blk (VIRTIO 1.x, 5.2) on a raw image file: read, write, flush
 * and get-id, processed synchronously on the vCPU thread that notified.
 */
#ifndef HW_VIRTIO_VIRTIO_BLK_H
#define HW_VIRTIO_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "hw/virtio/virtio.h"

/* Feature bits. */
#define VIRTIO_BLK_F_SEG_MAX    2
#define VIRTIO_BLK_F_RO         5
#define VIRTIO_BLK_F_FLUSH      9

/* Request types and status values. */
#define VIRTIO_BLK_T_IN         0
#define VIRTIO_BLK_T_OUT        1
#define VIRTIO_BLK_T_FLUSH      4
#define VIRTIO_BLK_T_GET_ID     8
#define VIRTIO_BLK_S_OK         0
#define VIRTIO_BLK_S_IOERR      1
#define VIRTIO_BLK_S_UNSUPP     2

#define VIRTIO_BLK_SECTOR_SIZE  512
#define VIRTIO_BLK_ID_BYTES     20
#define VIRTIO_BLK_REQ_HDR_SIZE 16      /* type, reserved, sector */

/* Config space offsets. */
#define VIRTIO_BLK_CFG_CAPACITY 0       /* le64, in 512-byte sectors */
#define VIRTIO_BLK_CFG_SEG_MAX  12      /* le32 */
#define VIRTIO_BLK_CFG_SIZE     36

typedef struct VirtioBlk {
    VirtioDevice vdev;                  /* first: ops receive a VirtioDevice * */
    int fd;
    char *path;
    bool readonly;
    uint64_t capacity;                  /* 512-byte sectors (a partial tail is not visible) */
    char serial[VIRTIO_BLK_ID_BYTES];   /* GET_ID answer, NUL-padded */
} VirtioBlk;

/*
 * Open the raw image @path (read-only when @readonly) and place the disk
 * in virtio-mmio slot @index. @serial may be NULL.
 */
VirtioBlk *virtio_blk_new(unsigned index, const char *path, bool readonly, const char *serial,
                          GError **errp);

#endif
