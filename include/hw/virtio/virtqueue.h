/*
 * Split virtqueues (VIRTIO 1.x, 2.7): taking descriptor chains off the
 * available ring and returning them on the used ring.
 *
 * Every address and length that comes from guest memory is checked
 * against guest RAM before use, and chains are bounded, so a guest cannot
 * make Ferry touch memory outside its RAM or walk a chain forever. Every
 * byte Ferry writes into guest RAM (used ring, avail_event, buffers) is
 * marked dirty for migration.
 *
 * A VirtQueue is plain data: the guest-programmed layout plus the device's
 * progress through the rings. Migration saves it as is; nothing in it
 * points into host memory.
 */
#ifndef HW_VIRTIO_VIRTQUEUE_H
#define HW_VIRTIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <glib.h>

/* QueueNumMax: the largest ring a driver may set up. */
#define VIRTQUEUE_MAX_SIZE      256
/* Entries in one indirect descriptor table, at most. */
#define VIRTQUEUE_MAX_INDIRECT  1024

/* Descriptor flags (virtq_desc.flags). */
#define VIRTQ_DESC_F_NEXT       1
#define VIRTQ_DESC_F_WRITE      2
#define VIRTQ_DESC_F_INDIRECT   4

/* virtq_avail.flags / virtq_used.flags. */
#define VIRTQ_AVAIL_F_NO_INTERRUPT  1
#define VIRTQ_USED_F_NO_NOTIFY      1

#define VIRTQ_DESC_SIZE         16
#define VIRTQ_USED_ELEM_SIZE    8

typedef struct VirtQueue {
    /* Programmed by the driver through the transport. */
    uint16_t num;               /* QueueNum: entries, a power of two */
    bool ready;                 /* QueueReady */
    uint64_t desc;              /* descriptor table (guest-physical) */
    uint64_t avail;             /* available ("driver") ring */
    uint64_t used;              /* used ("device") ring */
    /* Negotiated features that change how the rings are read. */
    bool indirect;              /* VIRTIO_F_INDIRECT_DESC */
    bool event_idx;             /* VIRTIO_F_EVENT_IDX */
    /* Device progress. */
    uint16_t last_avail_idx;    /* next available entry to take */
    uint16_t used_idx;          /* the device's copy of used->idx */
    uint16_t signalled_used;    /* used_idx when the driver was last notified */
    bool signalled_used_valid;
} VirtQueue;

/* One buffer of a chain: guest-physical, checked to lie within guest RAM. */
typedef struct VirtQueueSeg {
    uint64_t gpa;
    uint32_t len;
} VirtQueueSeg;

/*
 * A descriptor chain taken off the available ring. Device-readable
 * ("out") buffers come first in segs[], device-writable ("in") buffers
 * after them.
 */
typedef struct VirtQueueElement {
    uint16_t head;              /* index of the head descriptor: the used id */
    unsigned out_num;
    unsigned in_num;
    uint64_t out_len;           /* bytes in all out buffers */
    uint64_t in_len;            /* bytes in all in buffers */
    unsigned capacity;          /* allocated entries of segs[] */
    VirtQueueSeg segs[];
} VirtQueueElement;

typedef enum VirtQueuePopResult {
    VIRTQUEUE_POP_EMPTY,        /* nothing available */
    VIRTQUEUE_POP_OK,           /* *elem set; free with virtqueue_element_free() */
    VIRTQUEUE_POP_ERROR,        /* the guest broke the ring rules; see *errp */
} VirtQueuePopResult;

/* Back to the power-on state: not ready, no rings, no progress. */
void virtqueue_reset(VirtQueue *vq);

/*
 * Check the ring layout before the queue goes live: size a power of two
 * no larger than @max_size, each ring aligned as the spec requires and
 * entirely within guest RAM.
 */
bool virtqueue_check_layout(const VirtQueue *vq, unsigned max_size, GError **errp);

/*
 * Take the next chain off the available ring. On VIRTQUEUE_POP_ERROR
 * nothing was consumed and the queue should be considered broken (the
 * device sets DEVICE_NEEDS_RESET). When the ring is empty and event idx
 * is on, avail_event is updated so that the driver notifies again.
 */
VirtQueuePopResult virtqueue_pop(VirtQueue *vq, VirtQueueElement **elem, GError **errp);
void virtqueue_element_free(VirtQueueElement *elem);

/* Put @elem on the used ring with @len bytes written to its in buffers. */
void virtqueue_push(VirtQueue *vq, const VirtQueueElement *elem, uint32_t len);

/*
 * After one or more pushes: whether the driver wants an interrupt
 * (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with event idx).
 */
bool virtqueue_should_notify(VirtQueue *vq);

/* Whether the available ring holds a chain the device has not taken. */
bool virtqueue_has_available(VirtQueue *vq);

/*
 * Copy from the out buffers of @elem, starting @offset bytes in, into
 * @buf. Returns the bytes copied (short at the end of the buffers).
 */
size_t virtqueue_element_read(const VirtQueueElement *elem, uint64_t offset,
                              void *buf, size_t len);
/* Copy @buf into the in buffers of @elem at @offset, marking them dirty. */
size_t virtqueue_element_write(const VirtQueueElement *elem, uint64_t offset,
                               const void *buf, size_t len);

/*
 * Host iovecs for [@offset, @offset + @len) of the in (@in true) or out
 * buffers, for preadv/pwritev. Returns the entries filled (at most
 * @max_iov); *@covered says how many bytes they span. A caller that
 * writes through in iovecs must mark what it wrote with
 * virtqueue_element_mark_dirty().
 */
unsigned virtqueue_element_iov(const VirtQueueElement *elem, bool in, uint64_t offset,
                               uint64_t len, struct iovec *iov, unsigned max_iov,
                               uint64_t *covered);
void virtqueue_element_mark_dirty(const VirtQueueElement *elem, uint64_t offset,
                                  uint64_t len);

#endif
