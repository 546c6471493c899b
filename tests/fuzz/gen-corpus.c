/*
 * Seeds for the fuzz targets, saved by the real source side of migration
 * (qemu_savevm_state_*, the RAM encoder, the devices' vmstate, the multifd
 * packet encoder and compressors) from the machine of fuzz-machine.h, so
 * they match the fuzz targets' destination:
 *
 *   fuzz-gen-corpus write LOADVM_DIR RAM_LOAD_DIR MULTIFD_DIR   (re)write the seeds
 *   fuzz-gen-corpus check LOADVM_DIR RAM_LOAD_DIR MULTIFD_DIR   every seed must load
 *
 * "check" runs as a test: a change to a device's state or to the stream
 * that makes the committed seeds unloadable fails it (rewrite them with
 * "write" if the change is intended). Seeds that load but differ from
 * what "write" would produce now are only reported.
 *
 * loadvm seeds (whole streams):
 *   minimal      power-on devices, untouched RAM: no page records at all
 *   paused       the same from a paused source (globalstate "paused")
 *   ram-pages    data and zero pages over three PART sections and the END
 *   devices      a UART with FIFO contents, PM events, virtio-blk and
 *                virtio-net driven by a driver (rings in guest RAM, a
 *                request completed, frames waiting), vCPU registers
 * ram-load seeds (RAM payloads back to back, blocks pc.ram and extra.ram):
 *   block-list   the START payload alone
 *   pages        START, then records in both blocks, then zero pages
 * multifd-recv seeds (a compression byte, then channel 0's packets into
 * pc.ram; the table at multifd_seeds[] lists them): streams a source
 * sends, which must load every page (guest RAM is compared with the
 * source's) and park at every SYNC packet; and near-misses, which must be
 * refused with the error the table names.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <gio/gio.h>
#include <zstd.h>

#include "hw/virtio/virtio-mmio.h"
#include "hw/virtio/virtqueue.h"
#include "hw/x86/pm.h"
#include "migration/global-state.h"
#include "migration/multifd.h"
#include "migration/ram.h"
#include "migration/savevm.h"
#include "system/ioport.h"
#include "system/memory.h"
#include "tests/fuzz/fuzz-machine.h"
#include "tests/unit/migration/multifd-stubs.h"

#define QSIZE 8

/* ---------------------------------------------------------- the machine */

static void wr(uint64_t addr, uint32_t v)
{
    io_dispatch_write(IO_SPACE_MMIO, addr, v, 4);
}

static uint32_t rd(uint64_t addr)
{
    return (uint32_t)io_dispatch_read(IO_SPACE_MMIO, addr, 4);
}

static void gpa_fill(uint64_t gpa, uint8_t seed, size_t len)
{
    g_autofree uint8_t *buf = g_malloc(len);
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(seed + i * 13);
    }
    g_assert(guest_phys_write(gpa, buf, len));
}

static void gpa_put(uint64_t gpa, const void *p, size_t len)
{
    g_assert(guest_phys_write(gpa, p, len));
}

/* Queue q of a device: descriptors, available and used rings in one page. */
static uint64_t ring_page(unsigned slot, unsigned q)
{
    return 0x10000 + 0x1000ULL * (2 * slot + q);
}

static void driver_init(VirtioDevice *vdev, unsigned nq, uint64_t features)
{
    uint64_t b = vdev->mmio_base;
    wr(b + VIRTIO_MMIO_STATUS, 0);
    wr(b + VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    wr(b + VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    wr(b + VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
    wr(b + VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    wr(b + VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
    wr(b + VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                               VIRTIO_STATUS_FEATURES_OK);
    g_assert(rd(b + VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
    for (unsigned q = 0; q < nq; q++) {
        uint64_t page = ring_page(vdev->index, q);
        wr(b + VIRTIO_MMIO_QUEUE_SEL, q);
        wr(b + VIRTIO_MMIO_QUEUE_NUM, QSIZE);
        wr(b + VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)page);
        wr(b + VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)(page + 0x400));
        wr(b + VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)(page + 0x800));
        wr(b + VIRTIO_MMIO_QUEUE_READY, 1);
        g_assert(rd(b + VIRTIO_MMIO_QUEUE_READY) == 1);
    }
    wr(b + VIRTIO_MMIO_STATUS, rd(b + VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER_OK);
}

/* Post a chain of @n buffers (gpa, len, writable) as the next available entry. */
static void driver_add(VirtioDevice *vdev, unsigned q, uint16_t *avail_idx,
                       const uint64_t *gpa, const uint32_t *len, const bool *writable,
                       unsigned n)
{
    uint64_t page = ring_page(vdev->index, q);
    uint16_t head = (uint16_t)((*avail_idx * 4) % QSIZE);
    for (unsigned i = 0; i < n; i++) {
        uint8_t d[16];
        uint16_t flags = (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0) |
                         (writable[i] ? VIRTQ_DESC_F_WRITE : 0);
        uint16_t next = (uint16_t)(head + i + 1);
        memcpy(d, &gpa[i], 8);
        memcpy(d + 8, &len[i], 4);
        memcpy(d + 12, &flags, 2);
        memcpy(d + 14, &next, 2);
        gpa_put(page + 16ULL * (head + i), d, 16);
    }
    gpa_put(page + 0x400 + 4 + 2 * (*avail_idx % QSIZE), &head, 2);
    (*avail_idx)++;
    gpa_put(page + 0x400 + 2, avail_idx, 2);
    wr(vdev->mmio_base + VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

/* The state of the "devices" seed. */
static void drive_devices(FuzzMachine *m)
{
    /* UART: 8N1 at 38400, FIFO on, loopback: bytes in the receive FIFO. */
    io_dispatch_write(IO_SPACE_PIO, FUZZ_COM1 + 3, 0x80, 1);
    io_dispatch_write(IO_SPACE_PIO, FUZZ_COM1 + 0, 0x03, 1);
    io_dispatch_write(IO_SPACE_PIO, FUZZ_COM1 + 1, 0x00, 1);
    io_dispatch_write(IO_SPACE_PIO, FUZZ_COM1 + 3, 0x03, 1);
    io_dispatch_write(IO_SPACE_PIO, FUZZ_COM1 + 2, 0xc1, 1);
    io_dispatch_write(IO_SPACE_PIO, FUZZ_COM1 + 4, 0x1b, 1);
    io_dispatch_write(IO_SPACE_PIO, FUZZ_COM1 + 7, 0x5a, 1);
    for (int i = 0; i < 7; i++) {
        io_dispatch_write(IO_SPACE_PIO, FUZZ_COM1, (uint8_t)('a' + i), 1);
    }
    io_dispatch_read(IO_SPACE_PIO, FUZZ_COM1, 1);
    io_dispatch_write(IO_SPACE_PIO, FUZZ_COM1 + 1, 0x05, 1);

    /* PM: power button enabled and pressed, SCI on, A20 set. */
    io_dispatch_write(IO_SPACE_PIO, PM_BASE + 2, 0x0100, 2);
    io_dispatch_write(IO_SPACE_PIO, PM_BASE + 4, 0x0001, 2);
    io_dispatch_write(IO_SPACE_PIO, 0x92, 0x02, 1);
    pc_pm_press_power_button();

    /* virtio-blk: one GET_ID request completed, interrupt pending. */
    VirtioDevice *blk = &m->blk->vdev;
    uint16_t blk_avail = 0;
    driver_init(blk, 1, VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
    uint8_t hdr[16] = { VIRTIO_BLK_T_GET_ID };
    gpa_put(0x14000, hdr, sizeof(hdr));
    uint64_t gpa[] = { 0x14000, 0x14100, 0x14200 };
    uint32_t len[] = { 16, 20, 1 };
    bool writable[] = { false, true, true };
    driver_add(blk, 0, &blk_avail, gpa, len, writable, 3);
    g_assert(blk->vq[0].used_idx == 1);

    /* virtio-net: both queues live, two frames waiting for receive buffers. */
    VirtioDevice *net = &m->net->vdev;
    driver_init(net, 2, VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_MAC) |
                        VIRTIO_BIT(VIRTIO_NET_F_STATUS));
    VirtioNet *n = m->net;
    static const uint8_t frame[60] = {
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x52, 0x55, 0x0a, 0x00, 0x02, 0x02, 0x08, 0x06,
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02,
    };
    n->rx_head = VIRTIO_NET_RX_PENDING - 1;     /* the ring wraps */
    n->rx_count = 2;
    memcpy(n->rx_data[VIRTIO_NET_RX_PENDING - 1], frame, sizeof(frame));
    n->rx_len[VIRTIO_NET_RX_PENDING - 1] = sizeof(frame);
    memcpy(n->rx_data[0], frame, 42);
    n->rx_len[0] = 42;

    /* vCPU: somewhere in a 64-bit kernel. */
    FuzzVcpu *v = m->vcpu;
    v->regs.rip = 0xffffffff81000000ULL;
    v->regs.rsp = 0xffffffff82003f00ULL;
    v->regs.rax = 0x1234;
    v->regs.rflags = 0x246;
    v->sregs.cr0 = 0x80050033;
    v->sregs.cr3 = 0x1000;
    v->sregs.cr4 = 0x20;
    v->sregs.efer = 0xd01;
    v->sregs.cs.l = 1;
    v->sregs.cs.db = 0;
    v->sregs.cs.selector = 0x10;
    v->sregs.cs.base = 0;
    v->events.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW;
    v->mp.mp_state = KVM_MP_STATE_HALTED;
    v->tsc_khz = 2000000;
}

/* ------------------------------------------------------------- saving */

typedef void (*SeedFn)(FuzzMachine *m, QEMUFile *f);

static void check_no_error(GError *err, const char *what)
{
    if (err) {
        g_error("%s: %s", what, err->message);
    }
}

/* The whole stream, as the migration thread writes it (migration.c). */
static GByteArray *save_stream(FuzzMachine *m, SeedFn between_iterations, int iterations)
{
    g_autoptr(GError) err = NULL;
    QEMUFile *f = fuzz_output_file();

    qemu_savevm_state_header(f);
    qemu_savevm_state_setup(f, &err);
    check_no_error(err, "setup");
    for (int i = 0; i < iterations; i++) {
        if (between_iterations) {
            between_iterations(m, f);
        }
        uint64_t must, post;
        qemu_savevm_state_pending_exact(&must, &post);
        g_assert(qemu_savevm_state_iterate(f, &err) >= 0);
        check_no_error(err, "iterate");
    }
    if (between_iterations) {
        between_iterations(m, f);       /* these go in the END section */
    }
    global_state_store();
    qemu_savevm_state_complete_precopy(f, &err);
    check_no_error(err, "complete");
    qemu_savevm_state_cleanup();
    return fuzz_output_finish(f);
}

static int ram_round;

/* Before each iteration and before completion: more pages, some zero, some rewritten. */
static void dirty_some_pages(FuzzMachine *m, QEMUFile *f)
{
    static const uint8_t zero[4096];
    switch (ram_round++) {
    case 0:
        gpa_fill(0x0, 0x11, 4096);
        gpa_fill(0x5000, 0x22, 100);           /* the rest of the page stays zero */
        gpa_put(0x6000, zero, sizeof(zero));    /* exists, but zero: a ZERO record */
        break;
    case 1:
        gpa_fill(0x5000, 0x33, 4096);           /* again, other data */
        gpa_fill(0x7ff000, 0x44, 4096);         /* the last page */
        break;
    case 2:
        gpa_put(0x0, zero, sizeof(zero));       /* a data page becomes zero */
        gpa_fill(0x100000, 0x55, 16);
        break;
    default:
        gpa_fill(0x7fe000, 0x66, 4096);
        gpa_fill(0x5000, 0x77, 4096);           /* a third time */
        break;
    }
}

static GByteArray *seed_minimal(FuzzMachine *m)
{
    return save_stream(m, NULL, 0);
}

static GByteArray *seed_paused(FuzzMachine *m)
{
    fuzz_machine_set_runstate(RUN_STATE_PAUSED);
    return save_stream(m, NULL, 1);
}

static GByteArray *seed_ram_pages(FuzzMachine *m)
{
    ram_round = 0;
    /* One page before setup: found by the scan of the host mapping. */
    gpa_fill(0x3000, 0x66, 4096);
    return save_stream(m, dirty_some_pages, 3);
}

static GByteArray *seed_devices(FuzzMachine *m)
{
    drive_devices(m);
    return save_stream(m, NULL, 1);
}

/* RAM payloads alone, over pc.ram and extra.ram. */
static GByteArray *save_ram_payloads(FuzzMachine *m, bool with_pages)
{
    g_autoptr(GError) err = NULL;
    GPtrArray *list = ramblock_list();
    RAMState rs = { 0 };

    g_assert(list->len == 1);
    g_ptr_array_add(list, m->extra);
    if (with_pages) {
        gpa_fill(0x2000, 0x77, 4096);
        memset(m->extra->host + 0x1000, 0x88, 4096);
        memset(m->extra->host + 0x3000, 0x00, 4096);
    }
    QEMUFile *f = fuzz_output_file();
    g_assert(ram_dirty_setup(&rs, &err));
    ram_save_block_list(&rs, f);
    if (with_pages) {
        g_assert(ram_save_dirty_pages(&rs, f, false) == 1);
        ram_save_eos(f);
        /* VMM writes in both blocks, the second one continuing a block. */
        gpa_fill(0x4000, 0x99, 4096);
        gpa_fill(0x1000, 0xaa, 4096);
        memset(m->extra->host + 0xf000, 0xbb, 4096);
        ramblock_mark_vmm_dirty(m->extra, 0xf000, 4096);
        memset(m->extra->host + 0x1000, 0x00, 4096);
        ramblock_mark_vmm_dirty(m->extra, 0x1000, 4096);
        g_assert(ram_dirty_sync(&rs, &err));
        g_assert(ram_save_dirty_pages(&rs, f, false) == 1);
    }
    ram_save_eos(f);
    ram_dirty_cleanup(&rs);
    g_ptr_array_remove(list, m->extra);
    return fuzz_output_finish(f);
}

static GByteArray *seed_block_list(FuzzMachine *m)
{
    return save_ram_payloads(m, false);
}

static GByteArray *seed_pages(FuzzMachine *m)
{
    return save_ram_payloads(m, true);
}

/* ------------------------------------------------- multifd, channel 0 */

/* Header fields the near-misses change afterwards (docs/devel/multifd.md). */
#define MFD_FIELD_MAGIC     0
#define MFD_FIELD_FLAGS     8
#define MFD_FIELD_NORMAL    12

static const uint8_t zero_page[4096];

/* What channel 0's send thread writes after its handshake. */
typedef struct MultifdSource {
    FuzzMachine *m;
    MultiFDCompression comp;
    MultiFDCompressor *c;       /* NULL without compression */
    GByteArray *out;            /* the compression byte, then the packets */
    size_t last;                /* where the last packet starts in out */
    uint64_t packet_num;
} MultifdSource;

static void mfd_begin(MultifdSource *s, FuzzMachine *m, MultiFDCompression comp)
{
    g_autoptr(GError) err = NULL;
    uint8_t b = (uint8_t)comp;

    *s = (MultifdSource) { .m = m, .comp = comp, .out = g_byte_array_new() };
    g_byte_array_append(s->out, &b, 1);
    if (comp != MULTIFD_COMPRESSION_NONE) {
        s->c = multifd_compressor_new(comp, 1, &err);
        check_no_error(err, "multifd_compressor_new");
    }
}

static GByteArray *mfd_end(MultifdSource *s)
{
    multifd_compressor_free(s->c);
    return s->out;
}

/* One packet as given: the near-misses pass what no source would. */
static void mfd_put(MultifdSource *s, const MultiFDPacketHeader *h, const uint64_t *offsets,
                    const uint8_t *payload, size_t len)
{
    uint8_t hdr[MULTIFD_HEADER_MAX];
    size_t n = multifd_packet_encode(h, offsets, hdr);

    s->last = s->out->len;
    g_byte_array_append(s->out, hdr, (guint)n);
    if (len) {
        g_byte_array_append(s->out, payload, (guint)len);
    }
}

/* Overwrite a be32 field of the last packet's header. */
static void mfd_patch_be32(MultifdSource *s, size_t field, uint32_t v)
{
    uint8_t *p = s->out->data + s->last + field;
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The payload of the last packet (after its offsets). */
static uint8_t *mfd_last_payload(MultifdSource *s, unsigned pages)
{
    return s->out->data + s->last + MULTIFD_HEADER_SIZE + 8 * (size_t)pages;
}

/*
 * Compress or copy @n pages into @payload (multifd_compress_bound() of
 * MULTIFD_PACKET_PAGES bytes), continuing the channel's stream.
 */
static size_t mfd_payload(MultifdSource *s, const uint8_t *const *pages, unsigned n,
                          uint8_t *payload)
{
    g_autoptr(GError) err = NULL;
    size_t len = 0;

    if (s->comp == MULTIFD_COMPRESSION_NONE) {
        for (unsigned i = 0; i < n; i++) {
            memcpy(payload + (size_t)i * 4096, pages[i], 4096);
        }
        return (size_t)n * 4096;
    }
    multifd_compress_pages(s->c, pages, n, payload, &len, &err);
    check_no_error(err, "multifd_compress_pages");
    return len;
}

/*
 * The pages at @offsets of pc.ram as a send thread sends them with
 * zero-page-detection=multifd: all-zero pages as offsets only, the
 * others' data in the payload. @block is what the header names.
 */
static void mfd_send_block(MultifdSource *s, const char *block, const uint64_t *offsets,
                           unsigned n, uint32_t flags)
{
    MultiFDPacketHeader h = { .flags = flags, .packet_num = s->packet_num++ };
    uint64_t order[MULTIFD_PACKET_PAGES];
    const uint8_t *pages[MULTIFD_PACKET_PAGES];
    g_autofree uint8_t *payload =
        g_malloc(multifd_compress_bound(s->comp, MULTIFD_PACKET_PAGES));

    g_assert(n <= MULTIFD_PACKET_PAGES);
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *page = s->m->ram->host + offsets[i];
        if (!ram_page_is_zero(page)) {
            pages[h.normal] = page;
            order[h.normal++] = offsets[i];
        }
    }
    for (unsigned i = 0; i < n; i++) {
        if (ram_page_is_zero(s->m->ram->host + offsets[i])) {
            order[h.normal + h.zero++] = offsets[i];
        }
    }
    g_strlcpy(h.block, block, sizeof(h.block));
    size_t len = mfd_payload(s, pages, h.normal, payload);
    h.payload_size = (uint32_t)len;
    mfd_put(s, &h, order, payload, len);
}

static void mfd_send(MultifdSource *s, const uint64_t *offsets, unsigned n)
{
    mfd_send_block(s, "pc.ram", offsets, n, 0);
}

/* The SYNC packet that ends a pass: no pages, no block. */
static void mfd_sync(MultifdSource *s)
{
    mfd_send_block(s, "", NULL, 0, MULTIFD_FLAG_SYNC);
}

/* Lines of text that differ a little from page to page: they compress, and refer back. */
static void text_fill(uint8_t *page, unsigned n)
{
    size_t off = 0;
    for (unsigned line = 0; off < 4096; line++) {
        char buf[80];
        int l = g_snprintf(buf, sizeof(buf), "page %u line %u: the quick brown fox %u\n", n,
                           line, (n * 31 + line) % 97);
        size_t k = MIN((size_t)l, 4096 - off);
        memcpy(page + off, buf, k);
        off += k;
    }
}

/*
 * Pass 1: a data page, a page that is mostly zero, two zero pages and the
 * block's last page; SYNC; pass 2: one page again with other data, and a
 * data page that became zero; SYNC.
 */
static GByteArray *mfd_two_passes(FuzzMachine *m, MultiFDCompression comp)
{
    static const uint64_t pass1[] = { 0x0, 0x1000, 0x5000, 0x6000, 0x7ff000 };
    static const uint64_t pass2[] = { 0x0, 0x5000 };
    MultifdSource s;

    gpa_fill(0x0, 0x11, 4096);
    gpa_fill(0x5000, 0x22, 100);
    gpa_fill(0x7ff000, 0x44, 4096);
    mfd_begin(&s, m, comp);
    mfd_send(&s, pass1, G_N_ELEMENTS(pass1));
    mfd_sync(&s);
    gpa_fill(0x5000, 0x33, 4096);
    gpa_put(0x0, zero_page, sizeof(zero_page));
    mfd_send(&s, pass2, G_N_ELEMENTS(pass2));
    mfd_sync(&s);
    return mfd_end(&s);
}

/* Eight packets of 1 to 4 text pages, SYNC after the fourth and the last. */
static GByteArray *mfd_many_packets(FuzzMachine *m, MultiFDCompression comp)
{
    MultifdSource s;

    mfd_begin(&s, m, comp);
    for (unsigned p = 0; p < 8; p++) {
        uint64_t offsets[4];
        unsigned n = 1 + p % 4;
        for (unsigned i = 0; i < n; i++) {
            offsets[i] = 0x20000 + 0x1000ULL * (4 * p + i);
            text_fill(m->ram->host + offsets[i], p + i);
        }
        mfd_send(&s, offsets, n);
        if (p == 3) {
            mfd_sync(&s);
        }
    }
    mfd_sync(&s);
    return mfd_end(&s);
}

/* One packet of MULTIFD_PACKET_PAGES pages (every fifth one zero), then SYNC. */
static GByteArray *mfd_full_packet(FuzzMachine *m, MultiFDCompression comp)
{
    uint64_t offsets[MULTIFD_PACKET_PAGES];
    MultifdSource s;

    for (unsigned i = 0; i < MULTIFD_PACKET_PAGES; i++) {
        offsets[i] = 0x100000 + 0x1000ULL * i;
        if (i % 5) {
            text_fill(m->ram->host + offsets[i], i);
        }
    }
    mfd_begin(&s, m, comp);
    mfd_send(&s, offsets, MULTIFD_PACKET_PAGES);
    mfd_sync(&s);
    return mfd_end(&s);
}

/* A data page, then the same page zero and another zero page (no payload); SYNC. */
static GByteArray *mfd_zero_pages(FuzzMachine *m, MultiFDCompression comp)
{
    static const uint64_t first[] = { 0x3000 };
    static const uint64_t then[] = { 0x3000, 0x4000 };
    MultifdSource s;

    gpa_fill(0x3000, 0x55, 4096);
    mfd_begin(&s, m, comp);
    mfd_send(&s, first, G_N_ELEMENTS(first));
    gpa_put(0x3000, zero_page, sizeof(zero_page));
    mfd_send(&s, then, G_N_ELEMENTS(then));
    mfd_sync(&s);
    return mfd_end(&s);
}

static GByteArray *mfd_sync_only(FuzzMachine *m, MultiFDCompression comp)
{
    MultifdSource s;

    mfd_begin(&s, m, comp);
    mfd_sync(&s);
    return mfd_end(&s);
}

/* Pages in a SYNC packet: no source sends one, the receiver loads them and parks. */
static GByteArray *mfd_sync_with_pages(FuzzMachine *m, MultiFDCompression comp)
{
    static const uint64_t offsets[] = { 0x9000, 0xa000 };
    MultifdSource s;

    gpa_fill(0x9000, 0x66, 4096);
    mfd_begin(&s, m, comp);
    mfd_send_block(&s, "pc.ram", offsets, G_N_ELEMENTS(offsets), MULTIFD_FLAG_SYNC);
    return mfd_end(&s);
}

/* ---- Near-misses: a valid packet of page 0x2000, then what is wrong ---- */

static void mfd_begin_near_miss(MultifdSource *s, FuzzMachine *m, MultiFDCompression comp)
{
    static const uint64_t good[] = { 0x2000 };

    gpa_fill(0x2000, 0x77, 4096);
    mfd_begin(s, m, comp);
    mfd_send(s, good, G_N_ELEMENTS(good));
}

/* One data page at @offset, whatever it is. */
static GByteArray *mfd_page_at(FuzzMachine *m, MultiFDCompression comp, uint64_t offset)
{
    MultiFDPacketHeader h = { .normal = 1, .payload_size = 4096, .packet_num = 1 };
    uint8_t page[4096];
    MultifdSource s;

    g_assert(comp == MULTIFD_COMPRESSION_NONE);
    memset(page, 0x5a, sizeof(page));
    g_strlcpy(h.block, "pc.ram", sizeof(h.block));
    mfd_begin_near_miss(&s, m, comp);
    mfd_put(&s, &h, &offset, page, sizeof(page));
    return mfd_end(&s);
}

static GByteArray *mfd_unaligned(FuzzMachine *m, MultiFDCompression comp)
{
    return mfd_page_at(m, comp, 0x3001);
}

static GByteArray *mfd_outside(FuzzMachine *m, MultiFDCompression comp)
{
    return mfd_page_at(m, comp, FUZZ_RAM_SIZE);
}

static GByteArray *mfd_unknown_block(FuzzMachine *m, MultiFDCompression comp)
{
    static const uint64_t offsets[] = { 0x1000 };
    MultifdSource s;

    mfd_begin_near_miss(&s, m, comp);
    gpa_fill(0x1000, 0x78, 4096);
    /* extra.ram exists, but not in ramblock_list(): nothing migrates it. */
    mfd_send_block(&s, "extra.ram", offsets, G_N_ELEMENTS(offsets), 0);
    return mfd_end(&s);
}

static GByteArray *mfd_no_block(FuzzMachine *m, MultiFDCompression comp)
{
    static const uint64_t offsets[] = { 0x1000 };
    MultifdSource s;

    mfd_begin_near_miss(&s, m, comp);
    gpa_fill(0x1000, 0x79, 4096);
    mfd_send_block(&s, "", offsets, G_N_ELEMENTS(offsets), 0);
    return mfd_end(&s);
}

/* Two pages, the stream cut 100 bytes into the second one's data. */
static GByteArray *mfd_truncated(FuzzMachine *m, MultiFDCompression comp)
{
    static const uint64_t offsets[] = { 0x4000, 0x5000 };
    MultifdSource s;

    mfd_begin_near_miss(&s, m, comp);
    gpa_fill(0x4000, 0x7a, 4096);
    gpa_fill(0x5000, 0x7b, 4096);
    mfd_send(&s, offsets, G_N_ELEMENTS(offsets));
    g_byte_array_set_size(s.out, s.out->len - 4096 + 100);
    return mfd_end(&s);
}

static GByteArray *mfd_bad_flags(FuzzMachine *m, MultiFDCompression comp)
{
    MultifdSource s;

    mfd_begin_near_miss(&s, m, comp);
    mfd_sync(&s);
    mfd_patch_be32(&s, MFD_FIELD_FLAGS, MULTIFD_FLAG_SYNC << 2);
    return mfd_end(&s);
}

static GByteArray *mfd_too_many_pages(FuzzMachine *m, MultiFDCompression comp)
{
    static const uint64_t offsets[] = { 0x1000 };
    MultifdSource s;

    mfd_begin_near_miss(&s, m, comp);
    gpa_fill(0x1000, 0x7c, 4096);
    mfd_send(&s, offsets, G_N_ELEMENTS(offsets));
    mfd_patch_be32(&s, MFD_FIELD_NORMAL, MULTIFD_PACKET_PAGES + 1);
    return mfd_end(&s);
}

/* A valid pass and its SYNC, then a packet with a bad magic. */
static GByteArray *mfd_sync_then_bad_magic(FuzzMachine *m, MultiFDCompression comp)
{
    static const uint64_t offsets[] = { 0x1000 };
    MultifdSource s;

    mfd_begin_near_miss(&s, m, comp);
    mfd_sync(&s);
    gpa_fill(0x1000, 0x7d, 4096);
    mfd_send(&s, offsets, G_N_ELEMENTS(offsets));
    mfd_patch_be32(&s, MFD_FIELD_MAGIC, MULTIFD_CHANNEL_MAGIC);
    return mfd_end(&s);
}

/* The header says @claimed data pages; the payload holds @n of them. */
static GByteArray *mfd_miscounted(FuzzMachine *m, MultiFDCompression comp, unsigned claimed,
                                  unsigned n)
{
    uint64_t offsets[4];
    const uint8_t *pages[4];
    MultiFDPacketHeader h = { .normal = claimed, .packet_num = 1 };
    g_autofree uint8_t *payload = g_malloc(multifd_compress_bound(comp, MULTIFD_PACKET_PAGES));
    MultifdSource s;

    g_assert(claimed <= 4 && n <= 4);
    mfd_begin_near_miss(&s, m, comp);
    for (unsigned i = 0; i < 4; i++) {
        offsets[i] = 0x10000 + 0x1000ULL * i;
        text_fill(m->ram->host + offsets[i], 100 + i);
        pages[i] = m->ram->host + offsets[i];
    }
    g_strlcpy(h.block, "pc.ram", sizeof(h.block));
    h.payload_size = (uint32_t)mfd_payload(&s, pages, n, payload);
    mfd_put(&s, &h, offsets, payload, h.payload_size);
    return mfd_end(&s);
}

static GByteArray *mfd_short_payload(FuzzMachine *m, MultiFDCompression comp)
{
    return mfd_miscounted(m, comp, 3, 2);
}

static GByteArray *mfd_long_payload(FuzzMachine *m, MultiFDCompression comp)
{
    return mfd_miscounted(m, comp, 2, 3);
}

/*
 * The first packet: a page as a whole zstd frame (one-shot ZSTD_compress()),
 * which ends the frame the channel's stream must continue.
 */
static GByteArray *mfd_zstd_frame_end(FuzzMachine *m, MultiFDCompression comp)
{
    uint64_t offset = 0x1000;
    MultiFDPacketHeader h = { .normal = 1 };
    uint8_t page[4096];
    uint8_t frame[4096 + 256];
    MultifdSource s;

    g_assert(comp == MULTIFD_COMPRESSION_ZSTD);
    text_fill(page, 7);
    size_t len = ZSTD_compress(frame, sizeof(frame), page, sizeof(page), 1);
    g_assert(!ZSTD_isError(len));
    g_strlcpy(h.block, "pc.ram", sizeof(h.block));
    h.payload_size = (uint32_t)len;
    mfd_begin(&s, m, comp);
    mfd_put(&s, &h, &offset, frame, len);
    return mfd_end(&s);
}

/* The first packet's payload does not start with a frame header. */
static GByteArray *mfd_zstd_bad_frame(FuzzMachine *m, MultiFDCompression comp)
{
    MultifdSource s;

    g_assert(comp == MULTIFD_COMPRESSION_ZSTD);
    mfd_begin_near_miss(&s, m, comp);
    mfd_last_payload(&s, 1)[0] ^= 0xff;
    return mfd_end(&s);
}

/*
 * After the valid packet, one of page 0x1000 whose payload has @tail
 * after the page's own data (the payload size counts it).
 */
static GByteArray *mfd_payload_tail(FuzzMachine *m, MultiFDCompression comp,
                                    const uint8_t *tail, size_t tail_len)
{
    uint64_t offset = 0x1000;
    const uint8_t *page = m->ram->host + offset;
    MultiFDPacketHeader h = { .normal = 1, .packet_num = 1 };
    g_autofree uint8_t *payload = g_malloc(multifd_compress_bound(comp, MULTIFD_PACKET_PAGES));
    MultifdSource s;

    mfd_begin_near_miss(&s, m, comp);
    text_fill(m->ram->host + offset, 1);
    size_t len = mfd_payload(&s, &page, 1, payload);
    memcpy(payload + len, tail, tail_len);
    g_strlcpy(h.block, "pc.ram", sizeof(h.block));
    h.payload_size = (uint32_t)(len + tail_len);
    mfd_put(&s, &h, &offset, payload, h.payload_size);
    return mfd_end(&s);
}

/* The first bytes of the next packet's compressed data: a block cut short. */
static GByteArray *mfd_partial_block(FuzzMachine *m, MultiFDCompression comp)
{
    MultifdSource next;
    uint8_t page[4096];
    const uint8_t *pages[] = { page };
    g_autofree uint8_t *payload = g_malloc(multifd_compress_bound(comp, MULTIFD_PACKET_PAGES));

    /* A stream of its own: only its first bytes matter, a block header and a little. */
    mfd_begin(&next, m, comp);
    text_fill(page, 2);
    size_t len = mfd_payload(&next, pages, 1, payload);
    g_byte_array_unref(mfd_end(&next));
    g_assert(len > 8);
    return mfd_payload_tail(m, comp, payload + (comp == MULTIFD_COMPRESSION_ZSTD ? 6 : 0), 5);
}

/* zlib: a final empty stored block ends the deflate stream. */
static GByteArray *mfd_zlib_final_block(FuzzMachine *m, MultiFDCompression comp)
{
    static const uint8_t final_stored[] = { 0x01, 0x00, 0x00, 0xff, 0xff };
    return mfd_payload_tail(m, comp, final_stored, sizeof(final_stored));
}

/* zstd: an empty raw block marked last ends the frame. */
static GByteArray *mfd_zstd_last_block(FuzzMachine *m, MultiFDCompression comp)
{
    static const uint8_t last_raw[] = { 0x01, 0x00, 0x00 };
    return mfd_payload_tail(m, comp, last_raw, sizeof(last_raw));
}

/* zstd: a block of the reserved type 3. */
static GByteArray *mfd_zstd_reserved_block(FuzzMachine *m, MultiFDCompression comp)
{
    static const uint8_t reserved[] = { 0x06, 0x00, 0x00 };
    return mfd_payload_tail(m, comp, reserved, sizeof(reserved));
}

/* Header and offsets of two pages, then the stream ends before their data. */
static GByteArray *mfd_ends_after_offsets(FuzzMachine *m, MultiFDCompression comp)
{
    static const uint64_t offsets[] = { 0x4000, 0x5000 };
    MultifdSource s;

    mfd_begin_near_miss(&s, m, comp);
    gpa_fill(0x4000, 0x7e, 4096);
    gpa_fill(0x5000, 0x7f, 4096);
    mfd_send(&s, offsets, G_N_ELEMENTS(offsets));
    g_byte_array_set_size(s.out, s.out->len - 2 * 4096);
    return mfd_end(&s);
}

/* ------------------------------------------------------------- table */

typedef enum SeedKind {
    SEED_LOADVM,        /* a whole stream */
    SEED_RAM_LOAD,      /* RAM payloads */
    SEED_MULTIFD,       /* a multifd channel's packets */
    SEED_KINDS,
} SeedKind;

typedef struct Seed {
    const char *name;
    SeedKind kind;
    GByteArray *(*make)(FuzzMachine *m);                                /* loadvm, ram-load */
    GByteArray *(*make_multifd)(FuzzMachine *m, MultiFDCompression c);  /* multifd */
    MultiFDCompression comp;
    unsigned syncs;             /* multifd: SYNC packets the channel parks at */
    const char *refused;        /* multifd: part of the channel's error; NULL: all load */
} Seed;

#define LOADVM(n, fn)   { .name = n, .kind = SEED_LOADVM, .make = fn }
#define LOADVM_FROZEN(n) { .name = n, .kind = SEED_LOADVM }
#define RAM_LOAD(n, fn) { .name = n, .kind = SEED_RAM_LOAD, .make = fn }
#define MULTIFD(n, fn, c, nsync, why) \
    { .name = n, .kind = SEED_MULTIFD, .make_multifd = fn, .comp = MULTIFD_COMPRESSION_##c, \
      .syncs = nsync, .refused = why }

static const Seed seeds[] = {
    LOADVM("minimal", seed_minimal),
    LOADVM("paused", seed_paused),
    LOADVM("ram-pages", seed_ram_pages),
    LOADVM("devices", seed_devices),
    /*
     * "devices" as Ferry wrote it before the neutral vCPU form (KVM's
     * whole vCPU in one "cpu" section): never rewritten, it must still load.
     */
    LOADVM_FROZEN("devices-cpu-v1"),
    RAM_LOAD("block-list", seed_block_list),
    RAM_LOAD("pages", seed_pages),

    /* What a source sends: every page loads (RAM is compared), one park per SYNC. */
    MULTIFD("none-two-passes", mfd_two_passes, NONE, 2, NULL),
    MULTIFD("zlib-two-passes", mfd_two_passes, ZLIB, 2, NULL),
    MULTIFD("zstd-two-passes", mfd_two_passes, ZSTD, 2, NULL),
    MULTIFD("zlib-many-packets", mfd_many_packets, ZLIB, 2, NULL),
    MULTIFD("zstd-many-packets", mfd_many_packets, ZSTD, 2, NULL),
    MULTIFD("zlib-full-packet", mfd_full_packet, ZLIB, 1, NULL),
    MULTIFD("zstd-full-packet", mfd_full_packet, ZSTD, 1, NULL),
    MULTIFD("zlib-zero-pages", mfd_zero_pages, ZLIB, 1, NULL),
    MULTIFD("none-sync-only", mfd_sync_only, NONE, 1, NULL),
    MULTIFD("none-sync-with-pages", mfd_sync_with_pages, NONE, 1, NULL),

    /* Near-misses: refused with this error. */
    MULTIFD("none-unaligned", mfd_unaligned, NONE, 0, "is not 4 KiB aligned"),
    MULTIFD("none-outside", mfd_outside, NONE, 0, "is outside the block"),
    MULTIFD("none-unknown-block", mfd_unknown_block, NONE, 0, "which does not exist here"),
    MULTIFD("none-no-block", mfd_no_block, NONE, 0, "without a block id"),
    MULTIFD("none-truncated", mfd_truncated, NONE, 0, "end of stream"),
    MULTIFD("none-ends-after-offsets", mfd_ends_after_offsets, NONE, 0,
            "the stream ended inside a packet"),
    MULTIFD("none-bad-flags", mfd_bad_flags, NONE, 0, "unknown flags 0x4"),
    MULTIFD("none-too-many-pages", mfd_too_many_pages, NONE, 0, "129 pages (at most 128)"),
    MULTIFD("zlib-sync-then-bad-magic", mfd_sync_then_bad_magic, ZLIB, 1, "bad magic"),
    MULTIFD("zlib-short-payload", mfd_short_payload, ZLIB, 0, "decodes to"),
    MULTIFD("zlib-long-payload", mfd_long_payload, ZLIB, 0, "decodes to more than"),
    MULTIFD("zstd-short-payload", mfd_short_payload, ZSTD, 0, "decodes to"),
    MULTIFD("zstd-frame-end", mfd_zstd_frame_end, ZSTD, 0, "ends the zstd frame"),
    MULTIFD("zstd-bad-frame", mfd_zstd_bad_frame, ZSTD, 0, "corrupt payload"),
    MULTIFD("zlib-partial-block", mfd_partial_block, ZLIB, 0, "does not end on a sync flush"),
    MULTIFD("zstd-partial-block", mfd_partial_block, ZSTD, 0, "does not end on a flush"),
    MULTIFD("zlib-final-block", mfd_zlib_final_block, ZLIB, 0, "ends the deflate stream"),
    MULTIFD("zstd-last-block", mfd_zstd_last_block, ZSTD, 0, "ends the zstd frame"),
    MULTIFD("zstd-reserved-block", mfd_zstd_reserved_block, ZSTD, 0, "corrupt payload"),
};

/* ------------------------------------------------------------ loading */

static bool load_loadvm(const uint8_t *data, size_t len, char **msg)
{
    g_autoptr(GError) err = NULL;
    fuzz_machine_reset();
    if (!fuzz_machine_load(data, len, &err)) {
        *msg = g_strdup(err->message);
        return false;
    }
    fuzz_machine_exercise();
    return true;
}

static bool load_ram(FuzzMachine *m, const uint8_t *data, size_t len, char **msg)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) blocks = g_ptr_array_new();
    g_ptr_array_add(blocks, m->ram);
    g_ptr_array_add(blocks, m->extra);
    RAMLoadState ls = { .blocks = blocks };

    fuzz_machine_reset();
    g_assert(ram_load_prepare(&ls, &err));
    QEMUFile *f = fuzz_input_file(data, len);
    bool ok = true;
    while (ok && qemu_peek_byte(f) >= 0) {
        ok = ram_load_payload(&ls, f, &err);
    }
    if (ok && qemu_file_get_error(f)) {
        g_set_error(&err, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", qemu_file_error_message(f));
        ok = false;
    }
    qemu_fclose(f);
    if (!ok) {
        *msg = g_strdup(err->message);
    }
    return ok;
}

/*
 * Channel 0 of a one-channel migration reads @data as in
 * fuzz-multifd-recv.c; the load thread's part syncs until that fails.
 * Then the outcome must be the seed's: its refusal, its SYNC count, and
 * for a valid stream guest RAM as the source left it (@want_ram).
 */
static bool load_multifd(FuzzMachine *m, const Seed *s, const uint8_t *data, size_t len,
                         const uint8_t *want_ram, char **msg)
{
    g_autoptr(GError) err = NULL;
    MultiFDCompression comp = len ? (MultiFDCompression)(data[0] % 3)
                                  : MULTIFD_COMPRESSION_NONE;
    static const uint8_t uuid[MULTIFD_UUID_LEN] = { 0x5e, 0xed };

    fuzz_machine_reset();
    multifd_stubs_set_cap(MIGRATION_CAPABILITY_MULTIFD, true);
    multifd_stubs_params()->multifd_channels = 1;
    multifd_stubs_params()->multifd_compression = comp;
    multifd_recv_reset();

    int fd = memfd_create("ferry-gen-corpus", MFD_CLOEXEC);
    g_assert(fd >= 0);
    if (len > 1 && write(fd, data + 1, len - 1) != (ssize_t)(len - 1)) {
        g_error("cannot fill a memfd: %s", g_strerror(errno));
    }
    g_assert(lseek(fd, 0, SEEK_SET) == 0);
    MigChannel *ch = mig_channel_new_fd(fd, "seed:multifd0", &err);
    check_no_error(err, "mig_channel_new_fd");
    MultiFDHandshake hs = { .channel_id = 0, .channels = 1, .compression = comp };
    memcpy(hs.uuid, uuid, sizeof(uuid));
    multifd_recv_new_channel(ch, &hs);
    g_assert(multifd_recv_setup(uuid, 1, comp, NULL, &err));
    multifd_recv_start();
    unsigned syncs = 0;
    while (multifd_recv_sync_main(&err)) {
        syncs++;
    }
    g_assert(err && err->message[0]);
    g_autofree char *refused = multifd_recv_error() ? g_strdup(multifd_recv_error()->message)
                                                     : NULL;
    multifd_recv_cleanup();
    multifd_stubs_set_cap(MIGRATION_CAPABILITY_MULTIFD, false);

    if (!s->refused && refused) {
        *msg = g_strdup_printf("refused: %s", refused);
    } else if (s->refused && !refused) {
        *msg = g_strdup_printf("every packet loaded; expected a refusal with '%s'",
                               s->refused);
    } else if (s->refused && !strstr(refused, s->refused)) {
        *msg = g_strdup_printf("refused with '%s'; expected '%s'", refused, s->refused);
    } else if (syncs != s->syncs) {
        *msg = g_strdup_printf("the channel parked at %u SYNC packet(s), expected %u (%s)",
                               syncs, s->syncs, err->message);
    } else if (want_ram && memcmp(m->ram->host, want_ram, FUZZ_RAM_SIZE) != 0) {
        size_t off = 0;
        while (memcmp(m->ram->host + off, want_ram + off, 4096) == 0) {
            off += 4096;
        }
        *msg = g_strdup_printf("pc.ram page 0x%zx differs from the source's", off);
    }
    return *msg == NULL;
}

/* The seed as written now; for a multifd stream that loads, the source's RAM in *@ram. */
static GByteArray *make_seed(FuzzMachine *m, const Seed *s, uint8_t **ram)
{
    GByteArray *b;

    fuzz_machine_reset();
    if (s->kind == SEED_MULTIFD) {
        b = s->make_multifd(m, s->comp);
        if (!s->refused) {
            *ram = g_malloc(FUZZ_RAM_SIZE);
            memcpy(*ram, m->ram->host, FUZZ_RAM_SIZE);
        }
    } else {
        b = s->make(m);
    }
    fuzz_machine_reset();
    return b;
}

int main(int argc, char **argv)
{
    if (argc != 5 || (strcmp(argv[1], "write") && strcmp(argv[1], "check"))) {
        g_printerr("usage: %s write|check LOADVM_DIR RAM_LOAD_DIR MULTIFD_DIR\n", argv[0]);
        return 2;
    }
    bool write = !strcmp(argv[1], "write");
    const char *dirs[SEED_KINDS] = { argv[2], argv[3], argv[4] };
    FuzzMachine *m = fuzz_machine_get();
    int failed = 0;

    for (size_t i = 0; i < G_N_ELEMENTS(seeds); i++) {
        const Seed *s = &seeds[i];
        const char *dir = dirs[s->kind];
        g_autofree char *path = g_build_filename(dir, s->name, NULL);
        g_autofree uint8_t *want_ram = NULL;
        g_autoptr(GByteArray) fresh = s->make || s->make_multifd ? make_seed(m, s, &want_ram)
                                                                 : NULL;
        g_autofree char *msg = NULL;

        if (write && fresh) {
            g_autoptr(GError) err = NULL;
            g_mkdir_with_parents(dir, 0755);
            if (!g_file_set_contents(path, (const char *)fresh->data, fresh->len, &err)) {
                g_printerr("%s\n", err->message);
                return 1;
            }
        }
        g_autofree gchar *data = NULL;
        gsize len = 0;
        g_autoptr(GError) err = NULL;
        if (!g_file_get_contents(path, &data, &len, &err)) {
            g_printerr("FAIL %s: %s\n", path, err->message);
            failed++;
            continue;
        }
        bool ok;
        switch (s->kind) {
        case SEED_LOADVM:
            ok = load_loadvm((const uint8_t *)data, len, &msg);
            break;
        case SEED_RAM_LOAD:
            ok = load_ram(m, (const uint8_t *)data, len, &msg);
            break;
        default:
            ok = load_multifd(m, s, (const uint8_t *)data, len, want_ram, &msg);
            break;
        }
        if (!ok) {
            g_printerr("FAIL %s does not load as it should: %s\n", path, msg);
            failed++;
            continue;
        }
        bool same = !fresh || (len == fresh->len && memcmp(data, fresh->data, len) == 0);
        g_print("%s %s (%zu bytes)%s\n", write && fresh ? "wrote" : "ok", path, (size_t)len,
                same ? "" : "; differs from what 'write' would produce now");
    }
    if (failed) {
        g_printerr("%d seed(s) do not load as they should; if the stream or a device's state "
                   "changed on purpose, rewrite them: %s write %s %s %s\n", failed, argv[0],
                   argv[2], argv[3], argv[4]);
        return 1;
    }
    return 0;
}
