/*
 * The split virtqueue parser against a fake guest RAM: 1 MiB of guest
 * RAM at 0x100000, carved out of the middle of a 2 MiB RAM block whose
 * outer parts are canaries that must never change. Normal and indirect
 * chains, used ring and dirty tracking, notification suppression, and
 * every malformed case, which must be refused without consuming anything.
 */
#include <string.h>

#include <glib.h>

#include "hw/virtio/virtqueue.h"
#include "system/memory.h"
#include "system/ramblock.h"

#define RAM_GPA     0x100000ULL
#define RAM_SIZE    0x100000ULL
#define BLOCK_OFF   0x80000ULL
#define BLOCK_SIZE  0x200000ULL
#define CANARY      0xa5

#define QSIZE       8
#define DESC_GPA    0x100000ULL
#define AVAIL_GPA   0x101000ULL
#define USED_GPA    0x102000ULL
#define TABLE_GPA   0x103000ULL
#define BUF_GPA     0x110000ULL

static RAMBlock *block;

static uint8_t *host_at(uint64_t gpa)
{
    g_assert(gpa >= RAM_GPA && gpa < RAM_GPA + RAM_SIZE);
    return block->host + BLOCK_OFF + (gpa - RAM_GPA);
}

static bool page_dirty(uint64_t gpa)
{
    uint64_t page = (BLOCK_OFF + gpa - RAM_GPA) >> TARGET_PAGE_BITS;
    return block->vmm_dirty[page / 64] & (1UL << (page % 64));
}

static unsigned dirty_pages(void)
{
    unsigned n = 0;
    for (uint64_t p = 0; p < (BLOCK_SIZE >> TARGET_PAGE_BITS); p++) {
        n += !!(block->vmm_dirty[p / 64] & (1UL << (p % 64)));
    }
    return n;
}

static void clear_dirty(void)
{
    memset(block->vmm_dirty, 0, ((BLOCK_SIZE >> TARGET_PAGE_BITS) + 63) / 64 * sizeof(long));
}

static void check_canaries(void)
{
    for (uint64_t i = 0; i < BLOCK_OFF; i++) {
        g_assert_cmphex(block->host[i], ==, CANARY);
    }
    for (uint64_t i = BLOCK_OFF + RAM_SIZE; i < BLOCK_SIZE; i++) {
        g_assert_cmphex(block->host[i], ==, CANARY);
    }
}

/* Fresh guest RAM and a ready queue of QSIZE entries. */
static void setup(VirtQueue *vq, bool event_idx)
{
    memset(host_at(RAM_GPA), 0, RAM_SIZE);
    clear_dirty();
    virtqueue_reset(vq);
    vq->num = QSIZE;
    vq->desc = DESC_GPA;
    vq->avail = AVAIL_GPA;
    vq->used = USED_GPA;
    vq->indirect = true;
    vq->event_idx = event_idx;
    vq->ready = true;
}

static void set_desc_at(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                        uint16_t next)
{
    uint8_t *p = host_at(table + 16ULL * i);
    uint64_t a = GUINT64_TO_LE(addr);
    uint32_t l = GUINT32_TO_LE(len);
    uint16_t f = GUINT16_TO_LE(flags), n = GUINT16_TO_LE(next);
    memcpy(p, &a, 8);
    memcpy(p + 8, &l, 4);
    memcpy(p + 12, &f, 2);
    memcpy(p + 14, &n, 2);
}

static void set_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    set_desc_at(DESC_GPA, i, addr, len, flags, next);
}

static uint16_t rd16(uint64_t gpa)
{
    uint16_t v;
    memcpy(&v, host_at(gpa), 2);
    return GUINT16_FROM_LE(v);
}

static uint32_t rd32(uint64_t gpa)
{
    uint32_t v;
    memcpy(&v, host_at(gpa), 4);
    return GUINT32_FROM_LE(v);
}

static void wr16(uint64_t gpa, uint16_t v)
{
    v = GUINT16_TO_LE(v);
    memcpy(host_at(gpa), &v, 2);
}

/* Make descriptor @head available, as a driver would. */
static void avail_add(uint16_t head)
{
    uint16_t idx = rd16(AVAIL_GPA + 2);
    wr16(AVAIL_GPA + 4 + 2 * (idx % QSIZE), head);
    wr16(AVAIL_GPA + 2, idx + 1);
}

/* The chain must be refused: nothing consumed, nothing written. */
static void expect_error(VirtQueue *vq, const char *what)
{
    g_autoptr(GError) err = NULL;
    VirtQueueElement *elem = GINT_TO_POINTER(1);          /* must come back NULL */
    uint16_t last = vq->last_avail_idx;

    clear_dirty();
    g_assert_cmpint(virtqueue_pop(vq, &elem, &err), ==, VIRTQUEUE_POP_ERROR);
    g_assert_null(elem);
    g_assert_nonnull(err);
    if (g_test_verbose()) {
        g_test_message("%s: %s", what, err->message);
    }
    g_assert_cmpuint(vq->last_avail_idx, ==, last);
    g_assert_cmpuint(rd16(USED_GPA + 2), ==, 0);
    g_assert_cmpuint(dirty_pages(), ==, 0);
    check_canaries();
}

static VirtQueueElement *expect_pop(VirtQueue *vq)
{
    g_autoptr(GError) err = NULL;
    VirtQueueElement *elem = NULL;
    VirtQueuePopResult r = virtqueue_pop(vq, &elem, &err);
    if (r != VIRTQUEUE_POP_OK) {
        g_error("pop failed: %s", err ? err->message : "empty");
    }
    return elem;
}

static void test_layout(void)
{
    VirtQueue vq;
    g_autoptr(GError) err = NULL;

    setup(&vq, false);
    g_assert_true(virtqueue_check_layout(&vq, 256, &err));

    unsigned bad_sizes[] = { 0, 3, 12, 512 };
    for (unsigned i = 0; i < G_N_ELEMENTS(bad_sizes); i++) {
        vq.num = bad_sizes[i];
        g_assert_false(virtqueue_check_layout(&vq, 256, NULL));
    }
    setup(&vq, false);
    vq.desc = DESC_GPA + 8;
    g_assert_false(virtqueue_check_layout(&vq, 256, NULL));
    setup(&vq, false);
    vq.avail = AVAIL_GPA + 1;
    g_assert_false(virtqueue_check_layout(&vq, 256, NULL));
    setup(&vq, false);
    vq.used = USED_GPA + 2;
    g_assert_false(virtqueue_check_layout(&vq, 256, NULL));
    setup(&vq, false);
    vq.desc = 0x50000;                                  /* below RAM */
    g_assert_false(virtqueue_check_layout(&vq, 256, NULL));
    setup(&vq, false);
    vq.desc = RAM_GPA + RAM_SIZE - 64;                  /* runs off the end */
    g_assert_false(virtqueue_check_layout(&vq, 256, NULL));
    setup(&vq, false);
    vq.desc = 0xfffffffffffffff0ULL;                    /* wraps around */
    g_assert_false(virtqueue_check_layout(&vq, 256, NULL));

    /* The used ring fits exactly, but not with avail_event after it. */
    setup(&vq, false);
    vq.used = RAM_GPA + RAM_SIZE - (4 + 8 * QSIZE);
    g_assert_true(virtqueue_check_layout(&vq, 256, NULL));
    vq.event_idx = true;
    g_assert_false(virtqueue_check_layout(&vq, 256, NULL));
    check_canaries();
}

static void test_empty(void)
{
    VirtQueue vq;
    VirtQueueElement *elem;

    setup(&vq, false);
    g_assert_cmpint(virtqueue_pop(&vq, &elem, NULL), ==, VIRTQUEUE_POP_EMPTY);
    g_assert_false(virtqueue_has_available(&vq));
    vq.ready = false;
    avail_add(0);
    g_assert_cmpint(virtqueue_pop(&vq, &elem, NULL), ==, VIRTQUEUE_POP_EMPTY);
}

/* header (out, 16) -> data (in, 512) -> status (in, 1), as virtio-blk sends. */
static void make_blk_chain(uint16_t first)
{
    set_desc(first, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, first + 1);
    set_desc(first + 1, BUF_GPA + 0x1000, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, first + 2);
    set_desc(first + 2, BUF_GPA + 0x2000, 1, VIRTQ_DESC_F_WRITE, 0);
}

static void test_chain(void)
{
    VirtQueue vq;
    uint8_t hdr[16], data[513];

    setup(&vq, false);
    for (unsigned i = 0; i < 16; i++) {
        host_at(BUF_GPA)[i] = (uint8_t)(0x40 + i);
    }
    make_blk_chain(2);
    avail_add(2);
    g_assert_true(virtqueue_has_available(&vq));

    VirtQueueElement *elem = expect_pop(&vq);
    g_assert_cmpuint(elem->head, ==, 2);
    g_assert_cmpuint(elem->out_num, ==, 1);
    g_assert_cmpuint(elem->in_num, ==, 2);
    g_assert_cmpuint(elem->out_len, ==, 16);
    g_assert_cmpuint(elem->in_len, ==, 513);
    g_assert_cmpuint(vq.last_avail_idx, ==, 1);

    g_assert_cmpuint(virtqueue_element_read(elem, 0, hdr, sizeof(hdr)), ==, 16);
    g_assert_cmpmem(hdr, 16, host_at(BUF_GPA), 16);
    g_assert_cmpuint(virtqueue_element_read(elem, 10, hdr, sizeof(hdr)), ==, 6);

    /* Writes land in the in buffers only, and are marked dirty. */
    clear_dirty();
    memset(data, 0x5a, sizeof(data));
    g_assert_cmpuint(virtqueue_element_write(elem, 0, data, sizeof(data)), ==, 513);
    g_assert_cmphex(host_at(BUF_GPA + 0x1000)[0], ==, 0x5a);
    g_assert_cmphex(host_at(BUF_GPA + 0x1000)[511], ==, 0x5a);
    g_assert_cmphex(host_at(BUF_GPA + 0x1000)[512], ==, 0);
    g_assert_cmphex(host_at(BUF_GPA + 0x2000)[0], ==, 0x5a);
    g_assert_cmphex(host_at(BUF_GPA + 0x2000)[1], ==, 0);
    g_assert_cmphex(host_at(BUF_GPA)[0], ==, 0x40);
    g_assert_true(page_dirty(BUF_GPA + 0x1000));
    g_assert_true(page_dirty(BUF_GPA + 0x2000));
    g_assert_false(page_dirty(BUF_GPA));
    g_assert_cmpuint(dirty_pages(), ==, 2);
    /* Past the end: short. */
    g_assert_cmpuint(virtqueue_element_write(elem, 512, data, 8), ==, 1);

    clear_dirty();
    virtqueue_push(&vq, elem, 513);
    virtqueue_element_free(elem);
    g_assert_cmpuint(rd16(USED_GPA + 2), ==, 1);
    g_assert_cmpuint(rd32(USED_GPA + 4), ==, 2);
    g_assert_cmpuint(rd32(USED_GPA + 8), ==, 513);
    g_assert_true(page_dirty(USED_GPA));
    g_assert_cmpuint(dirty_pages(), ==, 1);

    VirtQueueElement *none;
    g_assert_cmpint(virtqueue_pop(&vq, &none, NULL), ==, VIRTQUEUE_POP_EMPTY);
    check_canaries();
}

static void test_ring_wrap(void)
{
    VirtQueue vq;

    setup(&vq, false);
    for (unsigned round = 0; round < 3 * QSIZE; round++) {
        set_desc(round % QSIZE, BUF_GPA, 64, VIRTQ_DESC_F_WRITE, 0);
        avail_add(round % QSIZE);
        VirtQueueElement *elem = expect_pop(&vq);
        g_assert_cmpuint(elem->head, ==, round % QSIZE);
        virtqueue_push(&vq, elem, 7);
        virtqueue_element_free(elem);
    }
    g_assert_cmpuint(rd16(USED_GPA + 2), ==, 3 * QSIZE);
    g_assert_cmpuint(vq.last_avail_idx, ==, 3 * QSIZE);
    check_canaries();
}

static void test_indirect(void)
{
    VirtQueue vq;

    setup(&vq, false);
    set_desc_at(TABLE_GPA, 0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
    set_desc_at(TABLE_GPA, 2, BUF_GPA + 0x1000, 4096, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
    set_desc_at(TABLE_GPA, 1, BUF_GPA + 0x3000, 1, VIRTQ_DESC_F_WRITE, 0);
    /* The write flag on the table descriptor itself means nothing. */
    set_desc(5, TABLE_GPA, 3 * 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
    avail_add(5);

    VirtQueueElement *elem = expect_pop(&vq);
    g_assert_cmpuint(elem->head, ==, 5);
    g_assert_cmpuint(elem->out_num, ==, 1);
    g_assert_cmpuint(elem->in_num, ==, 2);
    g_assert_cmpuint(elem->in_len, ==, 4097);
    g_assert_cmphex(elem->segs[2].gpa, ==, BUF_GPA + 0x3000);

    struct iovec iov[4];
    uint64_t covered;
    unsigned n = virtqueue_element_iov(elem, true, 4000, 97, iov, 4, &covered);
    g_assert_cmpuint(n, ==, 2);
    g_assert_cmpuint(covered, ==, 97);
    g_assert_true(iov[0].iov_base == host_at(BUF_GPA + 0x1000 + 4000));
    g_assert_cmpuint(iov[0].iov_len, ==, 96);
    g_assert_true(iov[1].iov_base == host_at(BUF_GPA + 0x3000));
    g_assert_cmpuint(iov[1].iov_len, ==, 1);
    virtqueue_push(&vq, elem, 4097);
    virtqueue_element_free(elem);
    g_assert_cmpuint(rd32(USED_GPA + 4), ==, 5);

    /* A long indirect table is fine: many segments. */
    setup(&vq, false);
    for (unsigned i = 0; i < 300; i++) {
        set_desc_at(TABLE_GPA, i, BUF_GPA + 16 * i, 16,
                    (i < 299 ? VIRTQ_DESC_F_NEXT : 0) | VIRTQ_DESC_F_WRITE, (uint16_t)(i + 1));
    }
    set_desc(0, TABLE_GPA, 300 * 16, VIRTQ_DESC_F_INDIRECT, 0);
    avail_add(0);
    elem = expect_pop(&vq);
    g_assert_cmpuint(elem->in_num, ==, 300);
    g_assert_cmpuint(elem->in_len, ==, 4800);
    virtqueue_element_free(elem);
    check_canaries();
}

static void test_zero_length(void)
{
    VirtQueue vq;

    setup(&vq, false);
    /* A zero-length buffer is never touched, wherever it points. */
    set_desc(0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
    set_desc(1, 0x10, 0, VIRTQ_DESC_F_NEXT, 2);
    set_desc(2, BUF_GPA + 0x1000, 8, VIRTQ_DESC_F_WRITE, 0);
    avail_add(0);
    VirtQueueElement *elem = expect_pop(&vq);
    g_assert_cmpuint(elem->out_num, ==, 1);
    g_assert_cmpuint(elem->in_num, ==, 1);
    virtqueue_element_free(elem);
}

static void test_notify(void)
{
    VirtQueue vq;

    setup(&vq, false);
    g_assert_true(virtqueue_should_notify(&vq));
    wr16(AVAIL_GPA, VIRTQ_AVAIL_F_NO_INTERRUPT);
    g_assert_false(virtqueue_should_notify(&vq));

    /* Event idx: interrupt only when used_idx passes used_event. */
    setup(&vq, true);
    uint64_t used_event = AVAIL_GPA + 4 + 2 * QSIZE;
    for (unsigned i = 0; i < 4; i++) {
        set_desc(i, BUF_GPA, 64, VIRTQ_DESC_F_WRITE, 0);
        avail_add(i);
    }
    wr16(used_event, 1);                /* wake me when entry 1 is used */
    VirtQueueElement *elem = expect_pop(&vq);
    virtqueue_push(&vq, elem, 0);       /* used_idx 1: entry 0 */
    virtqueue_element_free(elem);
    g_assert_true(virtqueue_should_notify(&vq));        /* first time: always */
    g_assert_false(virtqueue_should_notify(&vq));       /* nothing new */
    elem = expect_pop(&vq);
    virtqueue_push(&vq, elem, 0);       /* used_idx 2: entry 1 */
    virtqueue_element_free(elem);
    g_assert_true(virtqueue_should_notify(&vq));
    elem = expect_pop(&vq);
    virtqueue_push(&vq, elem, 0);       /* used_idx 3: entry 2, not waited for */
    virtqueue_element_free(elem);
    g_assert_false(virtqueue_should_notify(&vq));
    wr16(used_event, 3);
    elem = expect_pop(&vq);
    virtqueue_push(&vq, elem, 0);       /* used_idx 4: entry 3 */
    virtqueue_element_free(elem);
    g_assert_true(virtqueue_should_notify(&vq));
}

static void test_avail_event(void)
{
    VirtQueue vq;
    VirtQueueElement *elem;
    uint64_t avail_event = USED_GPA + 4 + 8 * QSIZE;

    setup(&vq, true);
    set_desc(0, BUF_GPA, 64, VIRTQ_DESC_F_WRITE, 0);
    avail_add(0);
    elem = expect_pop(&vq);
    virtqueue_element_free(elem);
    clear_dirty();
    g_assert_cmpint(virtqueue_pop(&vq, &elem, NULL), ==, VIRTQUEUE_POP_EMPTY);
    g_assert_cmpuint(rd16(avail_event), ==, 1);
    g_assert_true(page_dirty(USED_GPA));
    g_assert_cmpuint(dirty_pages(), ==, 1);
}

/* Malformed chains and rings. */

static void test_bad_buffer(void)
{
    VirtQueue vq;
    static const struct { uint64_t addr; uint32_t len; } bad[] = {
        { 0x50000, 16 },                            /* below RAM */
        { RAM_GPA - 8, 16 },                        /* starts below, ends inside */
        { RAM_GPA + RAM_SIZE - 0x100, 0x200 },      /* runs off the end */
        { RAM_GPA + RAM_SIZE, 1 },                  /* just after */
        { 0xfffffffffffff000ULL, 0x2000 },          /* wraps around */
        { RAM_GPA, 0xffffffff },                    /* far too long */
    };

    for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
        for (unsigned writable = 0; writable < 2; writable++) {
            setup(&vq, false);
            set_desc(0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
            set_desc(1, bad[i].addr, bad[i].len, writable ? VIRTQ_DESC_F_WRITE : 0, 0);
            avail_add(0);
            expect_error(&vq, "buffer outside RAM");
        }
    }
}

static void test_bad_index(void)
{
    VirtQueue vq;

    setup(&vq, false);
    avail_add(QSIZE);                               /* head out of range */
    expect_error(&vq, "head out of range");

    setup(&vq, false);
    set_desc(0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, QSIZE);
    avail_add(0);
    expect_error(&vq, "next out of range");

    setup(&vq, false);
    set_desc(0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 0xffff);
    avail_add(0);
    expect_error(&vq, "next far out of range");

    /* The driver claims more entries than the ring holds. */
    setup(&vq, false);
    set_desc(0, BUF_GPA, 16, 0, 0);
    avail_add(0);
    wr16(AVAIL_GPA + 2, QSIZE + 1);
    expect_error(&vq, "avail idx too far ahead");
}

static void test_loops(void)
{
    VirtQueue vq;

    setup(&vq, false);
    set_desc(0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 0);
    avail_add(0);
    expect_error(&vq, "self loop");

    setup(&vq, false);
    set_desc(0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
    set_desc(1, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 0);
    avail_add(0);
    expect_error(&vq, "two-descriptor loop");

    /* Every descriptor once is the longest chain there is; one more loops. */
    setup(&vq, false);
    for (unsigned i = 0; i < QSIZE; i++) {
        set_desc(i, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, (i + 1) % QSIZE);
    }
    avail_add(3);
    expect_error(&vq, "chain through the whole table and round again");
    set_desc(2, BUF_GPA, 16, 0, 0);
    VirtQueueElement *elem = expect_pop(&vq);
    g_assert_cmpuint(elem->out_num, ==, QSIZE);
    virtqueue_element_free(elem);

    setup(&vq, false);
    set_desc_at(TABLE_GPA, 0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
    set_desc_at(TABLE_GPA, 1, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 0);
    set_desc(0, TABLE_GPA, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
    avail_add(0);
    expect_error(&vq, "loop inside an indirect table");

    setup(&vq, false);
    set_desc_at(TABLE_GPA, 0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
    set_desc(0, TABLE_GPA, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
    avail_add(0);
    expect_error(&vq, "next out of range in an indirect table");
}

static void test_bad_indirect(void)
{
    VirtQueue vq;

    setup(&vq, false);
    set_desc_at(TABLE_GPA, 0, TABLE_GPA + 0x100, 16, VIRTQ_DESC_F_INDIRECT, 0);
    set_desc_at(TABLE_GPA + 0x100, 0, BUF_GPA, 16, 0, 0);
    set_desc(0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
    avail_add(0);
    expect_error(&vq, "indirect inside indirect");

    setup(&vq, false);
    set_desc(0, TABLE_GPA, 0, VIRTQ_DESC_F_INDIRECT, 0);
    avail_add(0);
    expect_error(&vq, "zero-length indirect table");

    setup(&vq, false);
    set_desc(0, TABLE_GPA, 24, VIRTQ_DESC_F_INDIRECT, 0);
    avail_add(0);
    expect_error(&vq, "indirect table length not a multiple of 16");

    setup(&vq, false);
    set_desc(0, TABLE_GPA, (VIRTQUEUE_MAX_INDIRECT + 1) * 16, VIRTQ_DESC_F_INDIRECT, 0);
    avail_add(0);
    expect_error(&vq, "indirect table too long");

    setup(&vq, false);
    set_desc(0, 0x40000, 64, VIRTQ_DESC_F_INDIRECT, 0);
    avail_add(0);
    expect_error(&vq, "indirect table outside RAM");

    setup(&vq, false);
    set_desc(0, RAM_GPA + RAM_SIZE - 32, 64, VIRTQ_DESC_F_INDIRECT, 0);
    avail_add(0);
    expect_error(&vq, "indirect table runs off the end of RAM");

    setup(&vq, false);
    set_desc_at(TABLE_GPA, 0, BUF_GPA, 16, 0, 0);
    set_desc(0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
    set_desc(1, BUF_GPA, 16, 0, 0);
    avail_add(0);
    expect_error(&vq, "indirect with NEXT");

    setup(&vq, false);
    set_desc_at(TABLE_GPA, 0, BUF_GPA, 16, 0, 0);
    set_desc(0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
    set_desc(1, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
    avail_add(0);
    expect_error(&vq, "indirect not at the head");

    setup(&vq, false);
    vq.indirect = false;
    set_desc_at(TABLE_GPA, 0, BUF_GPA, 16, 0, 0);
    set_desc(0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
    avail_add(0);
    expect_error(&vq, "indirect not negotiated");

    setup(&vq, false);
    set_desc_at(TABLE_GPA, 0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
    set_desc_at(TABLE_GPA, 1, 0x20000, 16, 0, 0);
    set_desc(0, TABLE_GPA, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
    avail_add(0);
    expect_error(&vq, "buffer outside RAM in an indirect table");
}

static void test_bad_order(void)
{
    VirtQueue vq;

    setup(&vq, false);
    set_desc(0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
    set_desc(1, BUF_GPA + 0x100, 16, 0, 0);
    avail_add(0);
    expect_error(&vq, "readable after writable");
}

static void test_bad_rings(void)
{
    VirtQueue vq;

    setup(&vq, false);
    set_desc(0, BUF_GPA, 16, 0, 0);
    avail_add(0);
    vq.desc = RAM_GPA + RAM_SIZE - 8;           /* table moved off the end */
    expect_error(&vq, "descriptor table outside RAM");

    setup(&vq, false);
    vq.avail = 0x30000;
    VirtQueueElement *elem;
    g_assert_cmpint(virtqueue_pop(&vq, &elem, NULL), ==, VIRTQUEUE_POP_ERROR);
    g_assert_false(virtqueue_has_available(&vq));

    /* Pushing to a used ring outside RAM writes nothing. */
    setup(&vq, false);
    set_desc(0, BUF_GPA, 16, VIRTQ_DESC_F_WRITE, 0);
    avail_add(0);
    elem = expect_pop(&vq);
    vq.used = RAM_GPA + RAM_SIZE;
    clear_dirty();
    virtqueue_push(&vq, elem, 16);
    virtqueue_element_free(elem);
    g_assert_cmpuint(dirty_pages(), ==, 0);
    check_canaries();
}

int main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    RAMBlockOptions opts = { .id = "test.ram", .size = BLOCK_SIZE, .kind = RAM_BACKING_ANON };

    g_test_init(&argc, &argv, NULL);
    block = ramblock_new(&opts, &err);
    g_assert_no_error(err);
    memset(block->host, CANARY, BLOCK_SIZE);
    guest_ram_map(RAM_GPA, RAM_SIZE, block, BLOCK_OFF);

    g_test_add_func("/virtqueue/layout", test_layout);
    g_test_add_func("/virtqueue/empty", test_empty);
    g_test_add_func("/virtqueue/chain", test_chain);
    g_test_add_func("/virtqueue/ring-wrap", test_ring_wrap);
    g_test_add_func("/virtqueue/indirect", test_indirect);
    g_test_add_func("/virtqueue/zero-length", test_zero_length);
    g_test_add_func("/virtqueue/notify", test_notify);
    g_test_add_func("/virtqueue/avail-event", test_avail_event);
    g_test_add_func("/virtqueue/malformed/buffer", test_bad_buffer);
    g_test_add_func("/virtqueue/malformed/index", test_bad_index);
    g_test_add_func("/virtqueue/malformed/loops", test_loops);
    g_test_add_func("/virtqueue/malformed/indirect", test_bad_indirect);
    g_test_add_func("/virtqueue/malformed/order", test_bad_order);
    g_test_add_func("/virtqueue/malformed/rings", test_bad_rings);
    return g_test_run();
}
