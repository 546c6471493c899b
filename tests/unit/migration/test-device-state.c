/*
 * Device state across a save and a load, without KVM: each device model
 * is driven through its registers into a non-trivial state, saved through
 * the description it registered, loaded into a freshly created device,
 * and compared; the loaded device must then carry on (the UART delivers
 * its FIFO, a disk answers the next request on the same rings, a NIC
 * hands its waiting frames to buffers posted after the load). Corrupt and
 * inconsistent streams are refused with a message.
 *
 * Devices covered: the 16550A UART, the PM/reset ports, virtio-blk and
 * virtio-net on virtio-mmio (with a real libslirp behind the NIC).
 */
#include <arpa/inet.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "chardev/char.h"
#include "hw/char/serial.h"
#include "system/accel.h"
#include "hw/virtio/virtio-blk.h"
#include "hw/virtio/virtio-mmio.h"
#include "hw/virtio/virtio-net.h"
#include "hw/x86/pm.h"
#include "net/slirp.h"
#include "system/accel.h"
#include "system/ioport.h"
#include "system/memory.h"
#include "system/ramblock.h"
#include "system/runstate.h"
#include "tests/unit/migration/vmstate-stream.h"
#include "tests/unit/migration/vmstate-stubs.h"

/* ---- Stand-ins for the machine ---- */

static int irq_levels[32];
static int irq_sets[32];

void accel_set_irq(int irq, int level)
{
    g_assert(irq >= 0 && irq < 32);
    irq_levels[irq] = level;
    irq_sets[irq]++;
}

bool chardev_attach_frontend(Chardev *chr, const CharFrontendOps *ops, void *opaque,
                             GError **errp)
{
    return true;
}

ssize_t chardev_write(Chardev *chr, const void *buf, size_t len)
{
    return (ssize_t)len;
}

void chardev_accept_input(Chardev *chr)
{
}

void system_shutdown_request(ShutdownCause cause)
{
}

void system_reset_request(ShutdownCause cause)
{
}

void main_loop_wakeup(void)
{
}

/* ---- Helpers ---- */

/* Save the registration (@id, @instance) into bytes. */
static GByteArray *save_device(const char *id, uint32_t instance)
{
    g_autoptr(GError) err = NULL;
    const StubVMStateEntry *e = stub_vmstate_find(id, instance);

    g_assert_nonnull(e);
    GByteArray *b = vms_stream_save(e->vmsd, e->opaque, &err);
    g_assert_no_error(err);
    return b;
}

/* Load into the registration (@id, @instance); NULL or the error message. */
static char *load_device(const char *id, uint32_t instance, const void *data, size_t len)
{
    g_autoptr(GError) err = NULL;
    const StubVMStateEntry *e = stub_vmstate_find(id, instance);

    g_assert_nonnull(e);
    if (vms_stream_load(data, len, e->vmsd, e->opaque, e->vmsd->version_id, NULL, &err)) {
        return NULL;
    }
    return g_strdup(err->message);
}

/* Every prefix of @b fails to load (with the device named), never crashes. */
static void assert_prefixes_fail(const char *id, uint32_t instance, const GByteArray *b,
                                 const char *prefix)
{
    for (size_t len = 0; len < b->len; len++) {
        g_autofree char *msg = load_device(id, instance, b->data, len);
        g_assert_nonnull(msg);
        g_assert_true(g_str_has_prefix(msg, prefix));
    }
}

/* ---- 16550A UART ---- */

#define COM1 0x3f8
#define COM2 0x2f8

static void uart_wr(uint16_t base, unsigned reg, uint8_t v)
{
    io_dispatch_write(IO_SPACE_PIO, base + reg, v, 1);
}

static uint8_t uart_rd(uint16_t base, unsigned reg)
{
    return (uint8_t)io_dispatch_read(IO_SPACE_PIO, base + reg, 1);
}

static void test_serial(void)
{
    g_autoptr(GError) err = NULL;
    SerialState *src = serial_isa_init(0, COM1, 4, NULL, &err);
    g_assert_no_error(err);
    g_assert_true(stub_vmstate_find("serial", 0)->opaque == src);

    uart_wr(COM1, 3, 0x80);         /* DLAB */
    uart_wr(COM1, 0, 0x03);
    uart_wr(COM1, 1, 0x00);
    uart_wr(COM1, 3, 0x1b);         /* 8E1 */
    uart_wr(COM1, 2, 0xc1);         /* FIFO on, trigger 14 */
    uart_wr(COM1, 4, 0x1b);         /* loopback, OUT2, RTS, DTR */
    uart_wr(COM1, 7, 0x5a);
    /* Through the loopback: 20 bytes in, 16 kept; read 5 so the ring wraps later. */
    for (int i = 0; i < 20; i++) {
        uart_wr(COM1, 0, (uint8_t)('A' + i));
    }
    for (int i = 0; i < 5; i++) {
        g_assert_cmpuint(uart_rd(COM1, 0), ==, 'A' + i);
    }
    for (int i = 0; i < 3; i++) {
        uart_wr(COM1, 0, (uint8_t)('a' + i));
    }
    uart_wr(COM1, 1, 0x05);         /* RDI, RLSI */
    g_assert_cmpint(irq_levels[4], ==, 1);
    g_assert_cmpuint(src->rx_count, ==, 14);

    g_autoptr(GByteArray) b = save_device("serial", 0);

    SerialState *dst = serial_isa_init(1, COM2, 3, NULL, &err);
    g_assert_no_error(err);
    irq_levels[3] = 0;
    int sets = irq_sets[3];
    g_assert_null(load_device("serial", 1, b->data, b->len));
    /* The line is driven after the load, even though the level looked unchanged. */
    g_assert_cmpint(irq_sets[3], >, sets);
    g_assert_cmpint(irq_levels[3], ==, 1);

    g_assert_cmpuint(dst->ier, ==, src->ier);
    g_assert_cmpuint(dst->iir, ==, src->iir);
    g_assert_cmpuint(dst->lcr, ==, src->lcr);
    g_assert_cmpuint(dst->mcr, ==, src->mcr);
    g_assert_cmpuint(dst->lsr, ==, src->lsr);
    g_assert_cmpuint(dst->scr, ==, src->scr);
    g_assert_cmpuint(dst->fcr, ==, src->fcr);
    g_assert_cmpuint(dst->divider, ==, src->divider);
    g_assert_cmpuint(dst->thr_ipending, ==, src->thr_ipending);
    g_assert_cmpuint(dst->rx_head, ==, src->rx_head);
    g_assert_cmpuint(dst->rx_count, ==, src->rx_count);
    g_assert_cmpmem(dst->rx_fifo, sizeof(dst->rx_fifo), src->rx_fifo, sizeof(src->rx_fifo));
    g_assert_true(dst->base == COM2 && dst->irq == 3);     /* not migrated */

    /* Both UARTs now answer the guest identically, FIFO order included. */
    for (unsigned reg = 1; reg < 8; reg++) {
        g_assert_cmpuint(uart_rd(COM2, reg), ==, uart_rd(COM1, reg));
    }
    for (int i = 0; i < 14; i++) {
        uint8_t a = uart_rd(COM1, 0), c = uart_rd(COM2, 0);
        g_assert_cmpuint(c, ==, a);
    }
    g_assert_cmpuint(uart_rd(COM2, 5) & 1, ==, 0);
    g_assert_cmpint(irq_levels[3], ==, 0);

    /* Hostile streams. The wire: divider(2) ier iir lcr mcr lsr msr scr fcr thri fifo(16) head(4) count(4). */
    g_assert_cmpuint(b->len, ==, 2 + 9 + 16 + 8);
    g_autoptr(GByteArray) bad = g_byte_array_new();
    g_byte_array_append(bad, b->data, b->len);
    bad->data[b->len - 1] = 17;
    g_autofree char *m1 = load_device("serial", 1, bad->data, bad->len);
    g_assert_cmpstr(m1, ==, "serial: field 'rx_count': value 17 out of range (0 to 16)");
    bad->data[b->len - 1] = b->data[b->len - 1];
    bad->data[b->len - 5] = 16;
    g_autofree char *m2 = load_device("serial", 1, bad->data, bad->len);
    g_assert_cmpstr(m2, ==, "serial: field 'rx_head': value 16 out of range (0 to 15)");
    bad->data[b->len - 5] = b->data[b->len - 5];
    bad->data[9] = 0x02;        /* FCR: a bit a guest cannot set */
    g_autofree char *m3 = load_device("serial", 1, bad->data, bad->len);
    g_assert_cmpstr(m3, ==, "serial: FCR 0x02 has bits a guest cannot set");
    bad->data[9] = 0x00;        /* FIFO off: one byte at most */
    g_autofree char *m4 = load_device("serial", 1, bad->data, bad->len);
    g_assert_cmpstr(m4, ==, "serial: 14 bytes in the receive FIFO, which holds 1 with FCR 0x00");
    bad->data[9] = b->data[9];
    bad->data[10] = 2;          /* thr_ipending */
    g_autofree char *m5 = load_device("serial", 1, bad->data, bad->len);
    g_assert_cmpstr(m5, ==, "serial: field 'thr_ipending': value 2 is not a boolean (0 or 1)");
    assert_prefixes_fail("serial", 1, b, "serial: ");
}

/* ---- PM1 and port 0x92 ---- */

static uint16_t pm_rd(unsigned off)
{
    return (uint16_t)io_dispatch_read(IO_SPACE_PIO, PM_BASE + off, 2);
}

static void test_pm(void)
{
    pc_pm_init();
    pc_pm_reset();
    g_assert_nonnull(stub_vmstate_find("pc-pm", 0));

    io_dispatch_write(IO_SPACE_PIO, PM_BASE + 2, 0x0100, 2);   /* PWRBTN_EN */
    io_dispatch_write(IO_SPACE_PIO, PM_BASE + 4, 0x0401, 2);   /* SCI_EN, SLP_TYP 1 */
    io_dispatch_write(IO_SPACE_PIO, 0x92, 0x02, 1);
    pc_pm_press_power_button();
    g_assert_cmpint(irq_levels[PM_SCI_IRQ], ==, 1);
    uint16_t sts = pm_rd(0), en = pm_rd(2), cnt = pm_rd(4);
    uint8_t p92 = (uint8_t)io_dispatch_read(IO_SPACE_PIO, 0x92, 1);
    g_assert_cmphex(sts, ==, PM1_STS_PWRBTN);

    g_autoptr(GByteArray) b = save_device("pc-pm", 0);
    g_assert_cmpuint(b->len, ==, 7);

    /* The PM block is one per machine: reset it and load it back. */
    pc_pm_reset();
    g_assert_cmpint(irq_levels[PM_SCI_IRQ], ==, 0);
    g_assert_cmphex(pm_rd(0), ==, 0);
    g_assert_null(load_device("pc-pm", 0, b->data, b->len));
    g_assert_cmphex(pm_rd(0), ==, sts);
    g_assert_cmphex(pm_rd(2), ==, en);
    g_assert_cmphex(pm_rd(4), ==, cnt);
    g_assert_cmphex(io_dispatch_read(IO_SPACE_PIO, 0x92, 1), ==, p92);
    g_assert_cmpint(irq_levels[PM_SCI_IRQ], ==, 1);

    static const uint8_t bad_sts[] = { 0x01, 0x01, 0x01, 0x00, 0, 0, 2 };
    g_autofree char *m1 = load_device("pc-pm", 0, bad_sts, sizeof(bad_sts));
    g_assert_cmpstr(m1, ==, "pc-pm: PM1 status 0x0101 has bits this machine never sets");
    static const uint8_t bad_cnt[] = { 0, 0, 0, 0, 0x20, 0x00, 2 };
    g_autofree char *m2 = load_device("pc-pm", 0, bad_cnt, sizeof(bad_cnt));
    g_assert_cmpstr(m2, ==, "pc-pm: PM1 control 0x2000 has SLP_EN set");
    static const uint8_t bad_92[] = { 0, 0, 0, 0, 0, 0, 3 };
    g_autofree char *m3 = load_device("pc-pm", 0, bad_92, sizeof(bad_92));
    g_assert_cmpstr(m3, ==, "pc-pm: port 0x92 value 0x03 has bits other than A20");
    assert_prefixes_fail("pc-pm", 0, b, "pc-pm: ");
}

/* ---- virtio ---- */

#define RAM_GPA     0x100000ULL
#define RAM_SIZE    0x200000ULL
#define QSIZE       8

static RAMBlock *block;
static char *tmpdir;

static uint8_t *host_at(uint64_t gpa)
{
    g_assert(gpa >= RAM_GPA && gpa < RAM_GPA + RAM_SIZE);
    return block->host + (gpa - RAM_GPA);
}

/*
 * A minimal driver. Queue q of the device the driver calls "ring owner"
 * lives at RAM_GPA + 0x10000 * (2 * owner + q): after a migration the
 * driver keeps using the same rings through the new device's slot.
 */
typedef struct Driver {
    unsigned slot;              /* where the device's registers are */
    unsigned owner;             /* whose rings */
    uint16_t avail_idx[2];
} Driver;

typedef struct Buf {
    uint64_t gpa;
    uint32_t len;
    bool writable;
} Buf;

static uint32_t rd(Driver *d, uint64_t off)
{
    return (uint32_t)io_dispatch_read(IO_SPACE_MMIO,
                                      VIRTIO_MMIO_BASE + d->slot * VIRTIO_MMIO_SIZE + off, 4);
}

static void wr(Driver *d, uint64_t off, uint32_t val)
{
    io_dispatch_write(IO_SPACE_MMIO, VIRTIO_MMIO_BASE + d->slot * VIRTIO_MMIO_SIZE + off, val, 4);
}

static uint64_t queue_area(Driver *d, unsigned q)
{
    return RAM_GPA + 0x10000ULL * (2 * d->owner + q);
}

static uint64_t buf_gpa(Driver *d, unsigned q, unsigned i)
{
    return queue_area(d, q) + 0x4000 + 0x1000ULL * i;
}

static void driver_init(Driver *d, unsigned slot, unsigned nq, uint64_t features)
{
    memset(d, 0, sizeof(*d));
    d->slot = d->owner = slot;
    wr(d, VIRTIO_MMIO_STATUS, 0);
    wr(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    wr(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
    wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    wr(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
    wr(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                              VIRTIO_STATUS_FEATURES_OK);
    g_assert_true(rd(d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
    for (unsigned q = 0; q < nq; q++) {
        uint64_t area = queue_area(d, q);
        memset(host_at(area), 0, 0x10000);
        wr(d, VIRTIO_MMIO_QUEUE_SEL, q);
        wr(d, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
        wr(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)area);
        wr(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)(area + 0x1000));
        wr(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)(area + 0x2000));
        wr(d, VIRTIO_MMIO_QUEUE_READY, 1);
        g_assert_cmpuint(rd(d, VIRTIO_MMIO_QUEUE_READY), ==, 1);
    }
    wr(d, VIRTIO_MMIO_STATUS, rd(d, VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER_OK);
}

/* A chain of up to 4 descriptors at heads 0 and 4 in turn. */
static void driver_add(Driver *d, unsigned q, const Buf *bufs, unsigned n)
{
    uint64_t area = queue_area(d, q);
    uint16_t head = (uint16_t)((d->avail_idx[q] % 2) * 4);

    for (unsigned i = 0; i < n; i++) {
        uint8_t *p = host_at(area + 16ULL * (head + i));
        uint16_t flags = (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0) |
                         (bufs[i].writable ? VIRTQ_DESC_F_WRITE : 0);
        uint16_t next = (uint16_t)(head + i + 1);
        memcpy(p, &bufs[i].gpa, 8);
        memcpy(p + 8, &bufs[i].len, 4);
        memcpy(p + 12, &flags, 2);
        memcpy(p + 14, &next, 2);
    }
    memcpy(host_at(area + 0x1000 + 4 + 2 * (d->avail_idx[q] % QSIZE)), &head, 2);
    d->avail_idx[q]++;
    memcpy(host_at(area + 0x1000 + 2), &d->avail_idx[q], 2);
}

static uint16_t driver_used_idx(Driver *d, unsigned q)
{
    uint16_t v;
    memcpy(&v, host_at(queue_area(d, q) + 0x2000 + 2), 2);
    return v;
}

static uint32_t driver_used_len(Driver *d, unsigned q, uint16_t idx)
{
    uint32_t v;
    memcpy(&v, host_at(queue_area(d, q) + 0x2000 + 4 + 8 * (idx % QSIZE) + 4), 4);
    return v;
}

/* GET_ID on the disk behind @d: the serial, and the used ring advanced by one. */
static void blk_get_id(Driver *d, const char *expect)
{
    uint8_t hdr[16] = { VIRTIO_BLK_T_GET_ID };
    uint16_t before = driver_used_idx(d, 0);

    memcpy(host_at(buf_gpa(d, 0, 0)), hdr, 16);
    memset(host_at(buf_gpa(d, 0, 1)), 0, 20);
    host_at(buf_gpa(d, 0, 3))[0] = 0xee;
    Buf bufs[] = {
        { buf_gpa(d, 0, 0), 16, false },
        { buf_gpa(d, 0, 1), 20, true },
        { buf_gpa(d, 0, 3), 1, true },
    };
    driver_add(d, 0, bufs, 3);
    wr(d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    g_assert_cmpuint(driver_used_idx(d, 0), ==, (uint16_t)(before + 1));
    g_assert_cmpuint(host_at(buf_gpa(d, 0, 3))[0], ==, VIRTIO_BLK_S_OK);
    g_assert_cmpstr((const char *)host_at(buf_gpa(d, 0, 1)), ==, expect);
}

static char *make_image(const char *name, size_t size)
{
    char *path = g_build_filename(tmpdir, name, NULL);
    g_autofree uint8_t *data = g_malloc0(size);
    g_assert_true(g_file_set_contents(path, (const char *)data, (gssize)size, NULL));
    return path;
}

static void assert_vdev_equal(const VirtioDevice *a, const VirtioDevice *b)
{
    g_assert_cmpuint(a->status, ==, b->status);
    g_assert_cmpuint(a->isr, ==, b->isr);
    g_assert_cmpuint(a->config_generation, ==, b->config_generation);
    g_assert_cmpuint(a->device_features_sel, ==, b->device_features_sel);
    g_assert_cmpuint(a->driver_features_sel, ==, b->driver_features_sel);
    g_assert_cmpuint(a->queue_sel, ==, b->queue_sel);
    g_assert_cmphex(a->guest_features, ==, b->guest_features);
    g_assert_cmpuint(a->broken, ==, b->broken);
    g_assert_cmpuint(a->irq_level, ==, b->irq_level);
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
        const VirtQueue *x = &a->vq[i], *y = &b->vq[i];
        g_assert_cmpuint(x->num, ==, y->num);
        g_assert_cmpuint(x->ready, ==, y->ready);
        g_assert_cmphex(x->desc, ==, y->desc);
        g_assert_cmphex(x->avail, ==, y->avail);
        g_assert_cmphex(x->used, ==, y->used);
        g_assert_cmpuint(x->indirect, ==, y->indirect);
        g_assert_cmpuint(x->event_idx, ==, y->event_idx);
        g_assert_cmpuint(x->last_avail_idx, ==, y->last_avail_idx);
        g_assert_cmpuint(x->used_idx, ==, y->used_idx);
        g_assert_cmpuint(x->signalled_used, ==, y->signalled_used);
        g_assert_cmpuint(x->signalled_used_valid, ==, y->signalled_used_valid);
    }
}

/*
 * Wire offsets inside a virtio device's stream: device_id(4) num_queues(4)
 * status(1) guest_features(8) 3 selectors(12) isr(4) generation(4)
 * broken(1), then per queue: num(2) ready(1) desc(8) avail(8) used(8)
 * indirect(1) event_idx(1) last_avail(2) used_idx(2) signalled(2) valid(1).
 */
#define W_STATUS    8
#define W_ISR       29
#define W_VQ0       38
#define W_VQ_SIZE   36
#define W_VQ_NUM    0
#define W_VQ_DESC   3

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    }
}

static void test_virtio_blk(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *img = make_image("disk.img", 64 * 1024);
    g_autofree char *img_small = make_image("small.img", 32 * 1024);
    Driver d;

    VirtioBlk *src = virtio_blk_new(0, img, false, "SRC-SERIAL", &err);
    g_assert_no_error(err);
    g_assert_true(stub_vmstate_find("virtio-blk", 0)->opaque == src);
    driver_init(&d, 0, 1, VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
    for (int i = 0; i < 11; i++) {      /* the rings wrap (size 8) */
        blk_get_id(&d, "SRC-SERIAL");
    }
    wr(&d, VIRTIO_MMIO_QUEUE_SEL, 1);   /* a selector pointing nowhere migrates too */
    g_assert_cmpuint(src->vdev.isr, ==, VIRTIO_ISR_QUEUE);
    g_assert_cmpint(irq_levels[5], ==, 1);

    g_autoptr(GByteArray) b = save_device("virtio-blk", 0);

    /* The destination's disk: same image, another slot, a fresh device. */
    VirtioBlk *dst = virtio_blk_new(2, img, false, "DST-SERIAL", &err);
    g_assert_no_error(err);
    irq_levels[7] = 0;
    g_assert_null(load_device("virtio-blk", 2, b->data, b->len));
    assert_vdev_equal(&dst->vdev, &src->vdev);
    g_assert_cmpint(irq_levels[7], ==, 1);      /* InterruptStatus re-raised the line */
    g_assert_cmpuint(dst->vdev.index, ==, 2);   /* where it sits is not migrated */

    /* The driver carries on with the same rings through the new device. */
    d.slot = 2;
    uint16_t used_event = 11;   /* interrupt me for the next one */
    memcpy(host_at(queue_area(&d, 0) + 0x1000 + 4 + 2 * QSIZE), &used_event, 2);
    g_assert_cmpuint(rd(&d, VIRTIO_MMIO_INTERRUPT_STATUS), ==, VIRTIO_ISR_QUEUE);
    wr(&d, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_ISR_QUEUE);
    g_assert_cmpint(irq_levels[7], ==, 0);
    blk_get_id(&d, "DST-SERIAL");
    g_assert_cmpuint(dst->vdev.vq[0].used_idx, ==, 12);
    g_assert_cmpint(irq_levels[7], ==, 1);

    /* A disk of another size is refused. */
    VirtioBlk *other = virtio_blk_new(3, img_small, false, NULL, &err);
    g_assert_no_error(err);
    g_autofree char *m1 = load_device("virtio-blk", 3, b->data, b->len);
    g_assert_cmpstr(m1, ==, "virtio-blk: field 'capacity': stream has 128, this side 64");
    (void)other;

    /* Rings outside guest RAM, a size that is no power of two, unknown ISR bits. */
    g_autoptr(GByteArray) bad = g_byte_array_new();
    g_byte_array_append(bad, b->data, b->len);
    put_be(bad->data + W_VQ0 + W_VQ_DESC, 0x40000000, 8);
    g_autofree char *m2 = load_device("virtio-blk", 2, bad->data, bad->len);
    g_assert_nonnull(strstr(m2, "virtio-mmio.2: queue 0: rings outside guest RAM"));
    memcpy(bad->data, b->data, b->len);
    put_be(bad->data + W_VQ0 + W_VQ_NUM, 6, 2);
    g_autofree char *m3 = load_device("virtio-blk", 2, bad->data, bad->len);
    g_assert_cmpstr(m3, ==, "virtio-blk: field 'vdev': virtio-mmio.2: queue 0: queue size 6 "
                    "is not a power of two from 1 to 256");
    put_be(bad->data + W_VQ0 + W_VQ_NUM, 512, 2);
    g_autofree char *m4 = load_device("virtio-blk", 2, bad->data, bad->len);
    g_assert_nonnull(strstr(m4, "queue size 512 is not a power of two from 1 to 256"));
    memcpy(bad->data, b->data, b->len);
    put_be(bad->data + W_ISR, 4, 4);
    g_autofree char *m5 = load_device("virtio-blk", 2, bad->data, bad->len);
    g_assert_cmpstr(m5, ==, "virtio-blk: field 'vdev': virtio-mmio.2: InterruptStatus 0x4 has "
                    "unknown bits");
    /* State for the second queue, which a disk does not have. */
    memcpy(bad->data, b->data, b->len);
    bad->data[W_VQ0 + W_VQ_SIZE + 2] = 1;
    g_autofree char *m6 = load_device("virtio-blk", 2, bad->data, bad->len);
    g_assert_cmpstr(m6, ==, "virtio-blk: field 'vdev': virtio-mmio.2: state for queue 1, "
                    "which virtio-blk does not have");
    /* Features the destination does not offer. */
    memcpy(bad->data, b->data, b->len);
    bad->data[W_STATUS + 1] |= 0x80;    /* bit 63 */
    g_autofree char *m7 = load_device("virtio-blk", 2, bad->data, bad->len);
    g_assert_true(g_str_has_prefix(m7, "virtio-blk: field 'vdev': virtio-mmio.2: the driver "
                                       "accepted features 0x8000000"));

    /* The good stream still loads after all that. */
    g_assert_null(load_device("virtio-blk", 2, b->data, b->len));
    assert_prefixes_fail("virtio-blk", 2, b, "virtio-blk: ");
}

/* An ARP request for the slirp gateway, which slirp answers at once. */
static void net_send_arp(Driver *d, const uint8_t mac[6])
{
    uint8_t frame[12 + 42] = { 0 };         /* virtio_net_hdr_v1, then Ethernet */
    uint8_t *e = frame + 12;
    static const uint8_t ip_guest[4] = { 10, 0, 2, 15 }, ip_gw[4] = { 10, 0, 2, 2 };

    memset(e, 0xff, 6);
    memcpy(e + 6, mac, 6);
    e[12] = 0x08;
    e[13] = 0x06;
    uint8_t *a = e + 14;
    a[1] = 1;               /* Ethernet */
    a[2] = 0x08;            /* IPv4 */
    a[4] = 6;
    a[5] = 4;
    a[7] = 1;               /* request */
    memcpy(a + 8, mac, 6);
    memcpy(a + 14, ip_guest, 4);
    memcpy(a + 24, ip_gw, 4);
    memcpy(host_at(buf_gpa(d, 1, 0)), frame, sizeof(frame));
    Buf buf = { buf_gpa(d, 1, 0), sizeof(frame), false };
    driver_add(d, 1, &buf, 1);
    wr(d, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
}

static void test_virtio_net(void)
{
    g_autoptr(GError) err = NULL;
    static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc };
    static const uint8_t other_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
    Driver d;

    OptList *opts = opts_parse("user,id=mig-n0", "type", NULL);
    g_assert_nonnull(opts);
    opts_get(opts, "type");
    NetSlirp *peer = net_slirp_new(opts, &err);
    g_assert_no_error(err);
    opts_free(opts);

    VirtioNet *src = virtio_net_new(1, mac, peer, &err);
    g_assert_no_error(err);
    driver_init(&d, 1, 2, VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_MAC));
    /* No receive buffers yet: slirp's ARP replies wait in the device. */
    for (int i = 0; i < 3; i++) {
        net_send_arp(&d, mac);
    }
    g_assert_cmpuint(src->rx_count, ==, 3);
    g_assert_cmpuint(src->rx_len[0], >=, 42);
    /* And one frame inserted by hand so the saved ring wraps. */
    src->rx_head = VIRTIO_NET_RX_PENDING - 1;
    memmove(src->rx_data[VIRTIO_NET_RX_PENDING - 1], src->rx_data[0], src->rx_len[0]);
    src->rx_len[VIRTIO_NET_RX_PENDING - 1] = src->rx_len[0];
    memmove(src->rx_data[2], src->rx_data[1], src->rx_len[1]);
    src->rx_len[2] = src->rx_len[1];
    memmove(src->rx_data[1], src->rx_data[0], src->rx_len[0]);
    src->rx_len[1] = src->rx_len[0];
    memcpy(src->rx_data[0], "\x01\x02\x03", 3);
    src->rx_len[0] = 3;         /* order: [31] [0] [1] [2] */
    src->rx_count = 4;
    uint32_t want_len[4] = { src->rx_len[31], 3, src->rx_len[1], src->rx_len[2] };

    g_autoptr(GByteArray) b = save_device("virtio-net", 1);

    VirtioNet *dst = virtio_net_new(4, other_mac, NULL, &err);
    g_assert_no_error(err);
    g_assert_null(load_device("virtio-net", 4, b->data, b->len));
    assert_vdev_equal(&dst->vdev, &src->vdev);
    g_assert_cmpmem(dst->mac, 6, mac, 6);                   /* the source's MAC */
    g_assert_cmpmem(dst->vdev.config + VIRTIO_NET_CFG_MAC, 6, mac, 6);
    g_assert_cmpuint(dst->vdev.config[VIRTIO_NET_CFG_STATUS], ==, VIRTIO_NET_S_LINK_UP);
    g_assert_cmpuint(dst->rx_count, ==, 4);

    /* Buffers posted after the load get the waiting frames, in order. */
    d.slot = 4;
    uint16_t before = driver_used_idx(&d, 0);
    for (unsigned i = 0; i < 4; i++) {
        Buf buf = { buf_gpa(&d, 0, i), 2048, true };
        driver_add(&d, 0, &buf, 1);
        wr(&d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
        g_assert_cmpuint(dst->rx_count, ==, 3 - i);
    }
    g_assert_cmpuint(driver_used_idx(&d, 0), ==, (uint16_t)(before + 4));
    for (unsigned i = 0; i < 4; i++) {
        g_assert_cmpuint(driver_used_len(&d, 0, (uint16_t)(before + i)), ==,
                         VIRTIO_NET_HDR_SIZE + want_len[i]);
    }

    /* Hostile frame lists: too many, too long. The frames are the stream's tail. */
    size_t frames_at = b->len - 4 * 4 - (want_len[0] + want_len[1] + want_len[2] +
                                         want_len[3]) - 4;
    g_assert_cmpuint(b->data[frames_at + 3], ==, 4);
    g_autoptr(GByteArray) bad = g_byte_array_new();
    g_byte_array_append(bad, b->data, b->len);
    put_be(bad->data + frames_at, VIRTIO_NET_RX_PENDING + 1, 4);
    g_autofree char *m1 = load_device("virtio-net", 4, bad->data, bad->len);
    g_assert_cmpstr(m1, ==, "virtio-net: field 'rx_frames': 33 waiting frames, at most 32");
    memcpy(bad->data, b->data, b->len);
    put_be(bad->data + frames_at + 4, VIRTIO_NET_MAX_FRAME + 1, 4);
    g_autofree char *m2 = load_device("virtio-net", 4, bad->data, bad->len);
    g_assert_cmpstr(m2, ==, "virtio-net: field 'rx_frames': waiting frame 0 of 1519 bytes, "
                    "at most 1518");
    memcpy(bad->data, b->data, b->len);
    bad->data[frames_at - 1] = 3;       /* link status: an unknown bit */
    g_autofree char *m3 = load_device("virtio-net", 4, bad->data, bad->len);
    g_assert_cmpstr(m3, ==, "virtio-net: field 'link_status': link status 0x3 has unknown bits");
    memcpy(bad->data, b->data, b->len);
    bad->data[frames_at - 2 - 6] = 0x53;    /* a multicast MAC */
    g_autofree char *m4 = load_device("virtio-net", 4, bad->data, bad->len);
    g_assert_cmpstr(m4, ==, "virtio-net: MAC 53:54:00:aa:bb:cc is a multicast address");
    /* A stream of another device type. */
    g_autofree char *m5 = load_device("virtio-blk", 2, b->data, b->len);
    g_assert_cmpstr(m5, ==, "virtio-blk: field 'vdev.device_id': stream has 1, this side 2");
    assert_prefixes_fail("virtio-net", 4, b, "virtio-net: ");
}

int main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    RAMBlockOptions opts = { .id = "test.ram", .size = RAM_SIZE, .kind = RAM_BACKING_ANON };

    g_test_init(&argc, &argv, NULL);
    block = ramblock_new(&opts, &err);
    g_assert_no_error(err);
    guest_ram_map(RAM_GPA, RAM_SIZE, block, 0);
    tmpdir = g_dir_make_tmp("ferry-devstate-XXXXXX", &err);
    g_assert_no_error(err);

    g_test_add_func("/device-state/serial", test_serial);
    g_test_add_func("/device-state/pm", test_pm);
    g_test_add_func("/device-state/virtio-blk", test_virtio_blk);
    g_test_add_func("/device-state/virtio-net", test_virtio_net);
    int ret = g_test_run();

    g_autoptr(GDir) dir = g_dir_open(tmpdir, 0, NULL);
    const char *name;
    while (dir && (name = g_dir_read_name(dir))) {
        g_autofree char *p = g_build_filename(tmpdir, name, NULL);
        g_unlink(p);
    }
    g_rmdir(tmpdir);
    return ret;
}
