/*
 * Split virtqueues: walking descriptor chains (direct and indirect) from
 * the available ring, returning them on the used ring, and the copies in
 * and out of the buffers they name.
 *
 * The guest owns the rings and may change them while we read, so every
 * field is read once into a local and checked there. Every guest address
 * is translated with its full length; a chain visits at most as many
 * descriptors as its table holds, which also ends loops.
 */
#include <string.h>

#include "hw/virtio/virtqueue.h"
#include "system/memory.h"

#define VIRTQUEUE_ERROR virtqueue_error_quark()
G_DEFINE_QUARK(ferry-virtqueue-error-quark, virtqueue_error)

typedef struct VirtqDesc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
} VirtqDesc;

/* Ring layout (2.7.6, 2.7.8): flags and idx, then the ring entries. */
#define AVAIL_IDX_OFF       2
#define AVAIL_RING_OFF      4
#define USED_IDX_OFF        2
#define USED_RING_OFF       4

void virtqueue_reset(VirtQueue *vq)
{
    memset(vq, 0, sizeof(*vq));
}

static uint64_t vq_avail_size(const VirtQueue *vq)
{
    return AVAIL_RING_OFF + 2ULL * vq->num + (vq->event_idx ? 2 : 0);
}

static uint64_t vq_used_size(const VirtQueue *vq)
{
    return USED_RING_OFF + (uint64_t)VIRTQ_USED_ELEM_SIZE * vq->num + (vq->event_idx ? 2 : 0);
}

bool virtqueue_check_layout(const VirtQueue *vq, unsigned max_size, GError **errp)
{
    if (vq->num == 0 || vq->num > max_size || (vq->num & (vq->num - 1))) {
        g_set_error(errp, VIRTQUEUE_ERROR, 0,
                    "queue size %u is not a power of two from 1 to %u", vq->num, max_size);
        return false;
    }
    if ((vq->desc & 15) || (vq->avail & 1) || (vq->used & 3)) {
        g_set_error(errp, VIRTQUEUE_ERROR, 0,
                    "misaligned rings (descriptors 0x%" G_GINT64_MODIFIER "x, driver 0x%"
                    G_GINT64_MODIFIER "x, device 0x%" G_GINT64_MODIFIER "x)",
                    vq->desc, vq->avail, vq->used);
        return false;
    }
    if (!guest_phys_to_host(vq->desc, (uint64_t)VIRTQ_DESC_SIZE * vq->num) ||
        !guest_phys_to_host(vq->avail, vq_avail_size(vq)) ||
        !guest_phys_to_host(vq->used, vq_used_size(vq))) {
        g_set_error(errp, VIRTQUEUE_ERROR, 0,
                    "rings outside guest RAM (descriptors 0x%" G_GINT64_MODIFIER "x, driver 0x%"
                    G_GINT64_MODIFIER "x, device 0x%" G_GINT64_MODIFIER "x, size %u)",
                    vq->desc, vq->avail, vq->used, vq->num);
        return false;
    }
    return true;
}

/* A 16-bit ring field, read once. */
static bool vq_load16(uint64_t gpa, uint16_t *val)
{
    uint16_t *p = guest_phys_to_host(gpa, 2);
    if (!p) {
        return false;
    }
    *val = GUINT16_FROM_LE(__atomic_load_n(p, __ATOMIC_RELAXED));
    return true;
}

static void vq_store16(uint64_t gpa, uint16_t val)
{
    uint16_t *p = guest_phys_to_host(gpa, 2);
    if (p) {
        __atomic_store_n(p, GUINT16_TO_LE(val), __ATOMIC_RELAXED);
        guest_ram_mark_dirty(gpa, 2);
    }
}

static bool vq_avail_idx(const VirtQueue *vq, uint16_t *idx, GError **errp)
{
    if (!vq_load16(vq->avail + AVAIL_IDX_OFF, idx)) {
        g_set_error(errp, VIRTQUEUE_ERROR, 0, "driver ring at 0x%" G_GINT64_MODIFIER
                    "x is outside guest RAM", vq->avail);
        return false;
    }
    return true;
}

/* avail_event lives after the used ring's entries (event idx only). */
static void vq_set_avail_event(VirtQueue *vq, uint16_t val)
{
    vq_store16(vq->used + USED_RING_OFF + (uint64_t)VIRTQ_USED_ELEM_SIZE * vq->num, val);
}

static bool vq_read_desc(uint64_t table, unsigned i, VirtqDesc *d)
{
    uint8_t raw[VIRTQ_DESC_SIZE];

    if (!guest_phys_read(table + (uint64_t)i * VIRTQ_DESC_SIZE, raw, sizeof(raw))) {
        return false;
    }
    memcpy(&d->addr, raw, 8);
    memcpy(&d->len, raw + 8, 4);
    memcpy(&d->flags, raw + 12, 2);
    memcpy(&d->next, raw + 14, 2);
    d->addr = GUINT64_FROM_LE(d->addr);
    d->len = GUINT32_FROM_LE(d->len);
    d->flags = GUINT16_FROM_LE(d->flags);
    d->next = GUINT16_FROM_LE(d->next);
    return true;
}

static VirtQueueElement *vq_element_new(unsigned capacity)
{
    VirtQueueElement *elem = g_malloc0(sizeof(*elem) + capacity * sizeof(VirtQueueSeg));
    elem->capacity = capacity;
    return elem;
}

void virtqueue_element_free(VirtQueueElement *elem)
{
    g_free(elem);
}

static VirtQueueElement *vq_element_add(VirtQueueElement *elem, uint64_t gpa, uint32_t len,
                                        bool in)
{
    if (elem->out_num + elem->in_num == elem->capacity) {
        unsigned cap = elem->capacity * 2;
        elem = g_realloc(elem, sizeof(*elem) + cap * sizeof(VirtQueueSeg));
        elem->capacity = cap;
    }
    elem->segs[elem->out_num + elem->in_num] = (VirtQueueSeg) { .gpa = gpa, .len = len };
    if (in) {
        elem->in_num++;
        elem->in_len += len;
    } else {
        elem->out_num++;
        elem->out_len += len;
    }
    return elem;
}

/* Walk the chain starting at descriptor @head; NULL with *errp on any violation. */
static VirtQueueElement *vq_read_chain(const VirtQueue *vq, uint16_t head, GError **errp)
{
    uint64_t table = vq->desc;
    unsigned table_size = vq->num;
    unsigned visited = 0;
    bool in_indirect = false;
    unsigned i = head;
    VirtQueueElement *elem = vq_element_new(8);

    elem->head = head;
    for (;;) {
        VirtqDesc d;

        if (i >= table_size) {
            g_set_error(errp, VIRTQUEUE_ERROR, 0, "descriptor index %u out of range (%u%s entries)",
                        i, table_size, in_indirect ? " indirect" : "");
            goto fail;
        }
        /* A chain cannot be longer than its table: this ends loops too. */
        if (++visited > table_size) {
            g_set_error(errp, VIRTQUEUE_ERROR, 0,
                        "descriptor chain from head %u is longer than %u (a loop?)",
                        head, table_size);
            goto fail;
        }
        if (!vq_read_desc(table, i, &d)) {
            g_set_error(errp, VIRTQUEUE_ERROR, 0, "descriptor table at 0x%" G_GINT64_MODIFIER
                        "x is outside guest RAM", table);
            goto fail;
        }
        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            if (!vq->indirect) {
                g_set_error(errp, VIRTQUEUE_ERROR, 0,
                            "indirect descriptor without VIRTIO_F_INDIRECT_DESC");
                goto fail;
            }
            if (in_indirect) {
                g_set_error(errp, VIRTQUEUE_ERROR, 0,
                            "indirect descriptor inside an indirect table");
                goto fail;
            }
            if (visited != 1 || (d.flags & VIRTQ_DESC_F_NEXT)) {
                g_set_error(errp, VIRTQUEUE_ERROR, 0,
                            "indirect descriptor must be alone in its chain");
                goto fail;
            }
            if (d.len == 0 || d.len % VIRTQ_DESC_SIZE ||
                d.len / VIRTQ_DESC_SIZE > VIRTQUEUE_MAX_INDIRECT) {
                g_set_error(errp, VIRTQUEUE_ERROR, 0,
                            "indirect table of %u bytes (a non-zero multiple of %u, at most %u "
                            "entries)", d.len, VIRTQ_DESC_SIZE, VIRTQUEUE_MAX_INDIRECT);
                goto fail;
            }
            if (!guest_phys_to_host(d.addr, d.len)) {
                g_set_error(errp, VIRTQUEUE_ERROR, 0, "indirect table 0x%" G_GINT64_MODIFIER
                            "x+0x%x is outside guest RAM", d.addr, d.len);
                goto fail;
            }
            table = d.addr;
            table_size = d.len / VIRTQ_DESC_SIZE;
            visited = 0;
            in_indirect = true;
            i = 0;
            continue;
        }
        if (d.len && !guest_phys_to_host(d.addr, d.len)) {
            g_set_error(errp, VIRTQUEUE_ERROR, 0, "buffer 0x%" G_GINT64_MODIFIER
                        "x+0x%x is outside guest RAM", d.addr, d.len);
            goto fail;
        }
        bool writable = d.flags & VIRTQ_DESC_F_WRITE;
        if (!writable && elem->in_num) {
            g_set_error(errp, VIRTQUEUE_ERROR, 0,
                        "device-readable buffer after a device-writable one");
            goto fail;
        }
        if (d.len) {
            elem = vq_element_add(elem, d.addr, d.len, writable);
        }
        if (!(d.flags & VIRTQ_DESC_F_NEXT)) {
            return elem;
        }
        i = d.next;
    }

fail:
    virtqueue_element_free(elem);
    return NULL;
}

VirtQueuePopResult virtqueue_pop(VirtQueue *vq, VirtQueueElement **out, GError **errp)
{
    uint16_t avail_idx;

    *out = NULL;
    if (!vq->ready || vq->num == 0) {
        return VIRTQUEUE_POP_EMPTY;
    }
    if (!vq_avail_idx(vq, &avail_idx, errp)) {
        return VIRTQUEUE_POP_ERROR;
    }
    if (avail_idx == vq->last_avail_idx) {
        if (!vq->event_idx) {
            return VIRTQUEUE_POP_EMPTY;
        }
        /*
         * Ask for a notification at the next entry, then look again: the
         * driver may have added one before it could see the new value.
         */
        vq_set_avail_event(vq, vq->last_avail_idx);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (!vq_avail_idx(vq, &avail_idx, errp)) {
            return VIRTQUEUE_POP_ERROR;
        }
        if (avail_idx == vq->last_avail_idx) {
            return VIRTQUEUE_POP_EMPTY;
        }
    }
    uint16_t pending = avail_idx - vq->last_avail_idx;
    if (pending > vq->num) {
        g_set_error(errp, VIRTQUEUE_ERROR, 0,
                    "available index %u is %u entries ahead of %u (queue size %u)",
                    avail_idx, pending, vq->last_avail_idx, vq->num);
        return VIRTQUEUE_POP_ERROR;
    }
    /* Read the entries only after the index that published them. */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);

    uint16_t head;
    uint64_t slot = vq->avail + AVAIL_RING_OFF + 2ULL * (vq->last_avail_idx & (vq->num - 1));
    if (!vq_load16(slot, &head)) {
        g_set_error(errp, VIRTQUEUE_ERROR, 0, "driver ring at 0x%" G_GINT64_MODIFIER
                    "x is outside guest RAM", vq->avail);
        return VIRTQUEUE_POP_ERROR;
    }
    if (head >= vq->num) {
        g_set_error(errp, VIRTQUEUE_ERROR, 0, "available ring entry %u names descriptor %u "
                    "(queue size %u)", vq->last_avail_idx, head, vq->num);
        return VIRTQUEUE_POP_ERROR;
    }
    VirtQueueElement *elem = vq_read_chain(vq, head, errp);
    if (!elem) {
        return VIRTQUEUE_POP_ERROR;
    }
    vq->last_avail_idx++;
    *out = elem;
    return VIRTQUEUE_POP_OK;
}

bool virtqueue_has_available(VirtQueue *vq)
{
    uint16_t avail_idx;

    if (!vq->ready || vq->num == 0 || !vq_avail_idx(vq, &avail_idx, NULL)) {
        return false;
    }
    return avail_idx != vq->last_avail_idx;
}

void virtqueue_push(VirtQueue *vq, const VirtQueueElement *elem, uint32_t len)
{
    uint32_t entry[2];
    uint64_t slot;

    if (vq->num == 0) {
        return;
    }
    if (len > elem->in_len) {
        len = (uint32_t)elem->in_len;
    }
    entry[0] = GUINT32_TO_LE(elem->head);
    entry[1] = GUINT32_TO_LE(len);
    slot = vq->used + USED_RING_OFF + (uint64_t)VIRTQ_USED_ELEM_SIZE * (vq->used_idx & (vq->num - 1));
    guest_phys_write(slot, entry, sizeof(entry));
    /* The entry must be visible before the index that publishes it. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    vq->used_idx++;
    vq_store16(vq->used + USED_IDX_OFF, vq->used_idx);
}

bool virtqueue_should_notify(VirtQueue *vq)
{
    uint16_t val;

    /* Our used->idx store must be visible before we read the driver's wishes. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!vq->event_idx) {
        return !vq_load16(vq->avail, &val) || !(val & VIRTQ_AVAIL_F_NO_INTERRUPT);
    }
    uint16_t old = vq->signalled_used;
    uint16_t new = vq->used_idx;
    bool valid = vq->signalled_used_valid;
    vq->signalled_used = new;
    vq->signalled_used_valid = true;
    if (!valid || !vq_load16(vq->avail + AVAIL_RING_OFF + 2ULL * vq->num, &val)) {
        return true;
    }
    /* Notify if used_event lies in [old, new): the entry the driver waits for. */
    return (uint16_t)(new - val - 1) < (uint16_t)(new - old);
}

/* First segment index and count of the in or out buffers. */
static void vq_element_range(const VirtQueueElement *elem, bool in, unsigned *first,
                             unsigned *count)
{
    *first = in ? elem->out_num : 0;
    *count = in ? elem->in_num : elem->out_num;
}

unsigned virtqueue_element_iov(const VirtQueueElement *elem, bool in, uint64_t offset,
                               uint64_t len, struct iovec *iov, unsigned max_iov,
                               uint64_t *covered)
{
    unsigned first, count, n = 0;
    uint64_t done = 0;

    vq_element_range(elem, in, &first, &count);
    for (unsigned s = first; s < first + count && done < len && n < max_iov; s++) {
        const VirtQueueSeg *seg = &elem->segs[s];
        if (offset >= seg->len) {
            offset -= seg->len;
            continue;
        }
        uint64_t chunk = MIN(seg->len - offset, len - done);
        void *host = guest_phys_to_host(seg->gpa + offset, chunk);
        if (!host) {
            break;
        }
        iov[n].iov_base = host;
        iov[n].iov_len = chunk;
        n++;
        done += chunk;
        offset = 0;
    }
    if (covered) {
        *covered = done;
    }
    return n;
}

void virtqueue_element_mark_dirty(const VirtQueueElement *elem, uint64_t offset, uint64_t len)
{
    unsigned first, count;
    uint64_t done = 0;

    vq_element_range(elem, true, &first, &count);
    for (unsigned s = first; s < first + count && done < len; s++) {
        const VirtQueueSeg *seg = &elem->segs[s];
        if (offset >= seg->len) {
            offset -= seg->len;
            continue;
        }
        uint64_t chunk = MIN(seg->len - offset, len - done);
        guest_ram_mark_dirty(seg->gpa + offset, chunk);
        done += chunk;
        offset = 0;
    }
}

static size_t vq_element_copy(const VirtQueueElement *elem, bool in, uint64_t offset,
                              void *buf, size_t len)
{
    struct iovec iov[16];
    size_t done = 0;

    while (done < len) {
        uint64_t covered;
        unsigned n = virtqueue_element_iov(elem, in, offset + done, len - done, iov,
                                           G_N_ELEMENTS(iov), &covered);
        if (n == 0) {
            break;
        }
        for (unsigned k = 0; k < n; k++) {
            if (in) {
                memcpy(iov[k].iov_base, (const uint8_t *)buf + done, iov[k].iov_len);
            } else {
                memcpy((uint8_t *)buf + done, iov[k].iov_base, iov[k].iov_len);
            }
            done += iov[k].iov_len;
        }
    }
    return done;
}

size_t virtqueue_element_read(const VirtQueueElement *elem, uint64_t offset, void *buf,
                              size_t len)
{
    return vq_element_copy(elem, false, offset, buf, len);
}

size_t virtqueue_element_write(const VirtQueueElement *elem, uint64_t offset, const void *buf,
                               size_t len)
{
    size_t done = vq_element_copy(elem, true, offset, (void *)buf, len);
    virtqueue_element_mark_dirty(elem, offset, done);
    return done;
}
