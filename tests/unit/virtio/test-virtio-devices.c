/*
 * virtio-blk and virtio-net as a guest driver sees them, without KVM: the
 * devices come from command-line options through virtio_devices_create(),
 * a small driver in this file programs them through the MMIO dispatch
 * and puts requests in fake guest RAM. virtio-blk reads and writes a real
 * raw image; virtio-net talks to a real libslirp stack (an ARP request
 * for the gateway is answered at once). Also every command-line error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "hw/virtio/virtio-blk.h"
#include "hw/virtio/virtio-devices.h"
#include "hw/virtio/virtio-mmio.h"
#include "hw/virtio/virtio-net.h"
#include "system/accel.h"
#include "system/ioport.h"
#include "system/main-loop.h"
#include "system/memory.h"
#include "system/ramblock.h"

#define RAM_GPA     0x100000ULL
#define RAM_SIZE    0x200000ULL
#define QSIZE       8

static RAMBlock *block;
static int irq_levels[32];
static char *tmpdir;
static int fwd_port;

/* Stand-ins for the accelerator and the main loop. */
void accel_set_irq(int irq, int level)
{
    irq_levels[irq] = level;
}

GMainContext *main_loop_context(void)
{
    return g_main_context_default();
}

void main_loop_wakeup(void)
{
    g_main_context_wakeup(NULL);
}

static uint8_t *host_at(uint64_t gpa)
{
    g_assert(gpa >= RAM_GPA && gpa < RAM_GPA + RAM_SIZE);
    return block->host + (gpa - RAM_GPA);
}

static bool page_dirty(uint64_t gpa)
{
    uint64_t page = (gpa - RAM_GPA) >> TARGET_PAGE_BITS;
    return block->vmm_dirty[page / 64] & (1UL << (page % 64));
}

/* A minimal driver: queue q of slot n lives at RAM_GPA + 0x10000 * (2n + q). */

typedef struct Driver {
    unsigned slot;
    uint16_t avail_idx[2];
} Driver;

typedef struct Buf {
    uint64_t gpa;
    uint32_t len;
    bool writable;
} Buf;

static uint64_t mmio(Driver *d, uint64_t off)
{
    return VIRTIO_MMIO_BASE + d->slot * VIRTIO_MMIO_SIZE + off;
}

static uint32_t rd(Driver *d, uint64_t off)
{
    return (uint32_t)io_dispatch_read(IO_SPACE_MMIO, mmio(d, off), 4);
}

static void wr(Driver *d, uint64_t off, uint32_t val)
{
    io_dispatch_write(IO_SPACE_MMIO, mmio(d, off), val, 4);
}

static uint64_t queue_area(Driver *d, unsigned q)
{
    return RAM_GPA + 0x10000ULL * (2 * d->slot + q);
}

/* Buffers of queue q: 4 KiB each after the rings. */
static uint64_t buf_gpa(Driver *d, unsigned q, unsigned i)
{
    return queue_area(d, q) + 0x4000 + 0x1000ULL * i;
}

static uint64_t device_features(Driver *d)
{
    wr(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    uint64_t f = (uint64_t)rd(d, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
    wr(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    return f | rd(d, VIRTIO_MMIO_DEVICE_FEATURES);
}

static void driver_init(Driver *d, unsigned slot, unsigned nq, uint32_t device_id)
{
    memset(d, 0, sizeof(*d));
    d->slot = slot;
    g_assert_cmphex(rd(d, VIRTIO_MMIO_MAGIC_VALUE), ==, VIRTIO_MMIO_MAGIC);
    g_assert_cmpuint(rd(d, VIRTIO_MMIO_DEVICE_ID), ==, device_id);
    wr(d, VIRTIO_MMIO_STATUS, 0);
    wr(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    g_assert_true(device_features(d) & VIRTIO_BIT(VIRTIO_F_VERSION_1));
    wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    wr(d, VIRTIO_MMIO_DRIVER_FEATURES, 1);     /* VERSION_1 */
    wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    wr(d, VIRTIO_MMIO_DRIVER_FEATURES, 0);
    wr(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                              VIRTIO_STATUS_FEATURES_OK);
    g_assert_true(rd(d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
    for (unsigned q = 0; q < nq; q++) {
        uint64_t area = queue_area(d, q);
        memset(host_at(area), 0, 0x10000);
        wr(d, VIRTIO_MMIO_QUEUE_SEL, q);
        wr(d, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
        wr(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)area);
        wr(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
        wr(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)(area + 0x1000));
        wr(d, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
        wr(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)(area + 0x2000));
        wr(d, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
        wr(d, VIRTIO_MMIO_QUEUE_READY, 1);
        g_assert_cmpuint(rd(d, VIRTIO_MMIO_QUEUE_READY), ==, 1);
    }
    wr(d, VIRTIO_MMIO_STATUS, rd(d, VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER_OK);
}

/* Chains of up to 4 descriptors, heads 0 and 4 in turn. */
static void driver_add(Driver *d, unsigned q, const Buf *bufs, unsigned n)
{
    uint64_t area = queue_area(d, q);
    uint16_t head = (uint16_t)((d->avail_idx[q] % 2) * 4);

    g_assert(n >= 1 && n <= 4);
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

static uint32_t driver_used_id(Driver *d, unsigned q, uint16_t idx)
{
    uint32_t v;
    memcpy(&v, host_at(queue_area(d, q) + 0x2000 + 4 + 8 * (idx % QSIZE)), 4);
    return v;
}

static uint32_t driver_used_len(Driver *d, unsigned q, uint16_t idx)
{
    uint32_t v;
    memcpy(&v, host_at(queue_area(d, q) + 0x2000 + 4 + 8 * (idx % QSIZE) + 4), 4);
    return v;
}

/* One virtio-blk request: header, optional data, status. Returns the status. */
static uint8_t blk_request(Driver *d, uint32_t type, uint64_t sector, uint32_t data_len,
                           bool data_in, uint32_t *used_len)
{
    uint8_t hdr[16] = { 0 };
    Buf bufs[3];
    unsigned n = 0;
    uint16_t before = driver_used_idx(d, 0);

    memcpy(hdr, &type, 4);
    memcpy(hdr + 8, &sector, 8);
    memcpy(host_at(buf_gpa(d, 0, 0)), hdr, 16);
    bufs[n++] = (Buf) { buf_gpa(d, 0, 0), 16, false };
    if (data_len) {
        bufs[n++] = (Buf) { buf_gpa(d, 0, 1), data_len, data_in };
    }
    host_at(buf_gpa(d, 0, 3))[0] = 0xee;
    bufs[n++] = (Buf) { buf_gpa(d, 0, 3), 1, true };
    driver_add(d, 0, bufs, n);
    wr(d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    g_assert_cmpuint(driver_used_idx(d, 0), ==, (uint16_t)(before + 1));
    if (used_len) {
        *used_len = driver_used_len(d, 0, before);
    }
    return host_at(buf_gpa(d, 0, 3))[0];
}

static FerryConfig *config_new(void)
{
    FerryConfig *cfg = g_new0(FerryConfig, 1);
    cfg->drives = g_ptr_array_new_with_free_func((GDestroyNotify)opts_free);
    cfg->devices = g_ptr_array_new_with_free_func((GDestroyNotify)opts_free);
    cfg->netdevs = g_ptr_array_new_with_free_func((GDestroyNotify)opts_free);
    return cfg;
}

static void config_free(FerryConfig *cfg)
{
    g_ptr_array_unref(cfg->drives);
    g_ptr_array_unref(cfg->devices);
    g_ptr_array_unref(cfg->netdevs);
    g_free(cfg);
}

static void config_add(GPtrArray *list, const char *implied, const char *str)
{
    OptList *opts = opts_parse(str, implied, NULL);
    g_assert_nonnull(opts);
    g_ptr_array_add(list, opts);
}

static char *make_image(const char *name, size_t size)
{
    char *path = g_build_filename(tmpdir, name, NULL);
    g_autofree uint8_t *data = g_malloc(size);
    for (size_t i = 0; i < size; i++) {
        data[i] = (uint8_t)(i / 512 + i);
    }
    g_assert_true(g_file_set_contents(path, (const char *)data, (gssize)size, NULL));
    return path;
}

/* Slots 0-2: a disk, a read-only disk, a NIC. */
static void test_create(void)
{
    g_autofree char *img0 = make_image("disk0.img", 64 * 1024);
    g_autofree char *img1 = make_image("disk1.img", 8 * 1024 + 100);
    FerryConfig *cfg = config_new();
    g_autoptr(GString) extra = g_string_new(NULL);
    g_autoptr(GError) err = NULL;
    g_autofree char *d0 = g_strdup_printf("file=%s,format=raw", img0);
    g_autofree char *d1 = g_strdup_printf("if=none,id=d1,file=%s,readonly=on,cache=none", img1);

    config_add(cfg->drives, NULL, d0);
    config_add(cfg->drives, NULL, d1);
    g_autofree char *nd = g_strdup_printf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:22", fwd_port);
    config_add(cfg->netdevs, "type", nd);
    config_add(cfg->devices, "driver", "virtio-blk-pci,drive=d1,serial=SER123,id=disk1");
    config_add(cfg->devices, "driver", "virtio-net-device,netdev=n0");
    g_assert_true(virtio_devices_create(cfg, extra, &err));
    g_assert_no_error(err);
    g_assert_cmpstr(extra->str, ==,
                    "virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6 "
                    "virtio_mmio.device=4K@0xd0002000:7");
    g_assert_cmpuint(virtio_devices_count(), ==, 3);
    config_free(cfg);
}

static void test_blk(void)
{
    Driver d;
    uint32_t used;
    g_autofree char *img0 = g_build_filename(tmpdir, "disk0.img", NULL);

    driver_init(&d, 0, 1, VIRTIO_ID_BLOCK);
    uint64_t f = device_features(&d);
    g_assert_true(f & VIRTIO_BIT(VIRTIO_BLK_F_FLUSH));
    g_assert_true(f & VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX));
    g_assert_false(f & VIRTIO_BIT(VIRTIO_BLK_F_RO));
    uint64_t cap = io_dispatch_read(IO_SPACE_MMIO, mmio(&d, VIRTIO_MMIO_CONFIG), 8);
    g_assert_cmpuint(cap, ==, 128);
    g_assert_cmpuint(io_dispatch_read(IO_SPACE_MMIO, mmio(&d, VIRTIO_MMIO_CONFIG + 12), 4), ==,
                     VIRTQUEUE_MAX_SIZE - 2);

    /* Read sector 3. */
    memset(block->vmm_dirty, 0, ((RAM_SIZE >> TARGET_PAGE_BITS) + 63) / 64 * sizeof(long));
    g_assert_cmpuint(blk_request(&d, VIRTIO_BLK_T_IN, 3, 1024, true, &used), ==,
                     VIRTIO_BLK_S_OK);
    g_assert_cmpuint(used, ==, 1025);
    for (unsigned i = 0; i < 1024; i++) {
        g_assert_cmphex(host_at(buf_gpa(&d, 0, 1))[i], ==, (uint8_t)((3 * 512 + i) / 512 + 3 * 512 + i));
    }
    g_assert_true(page_dirty(buf_gpa(&d, 0, 1)));
    g_assert_true(page_dirty(buf_gpa(&d, 0, 3)));
    g_assert_true(irq_levels[5]);
    wr(&d, VIRTIO_MMIO_INTERRUPT_ACK, rd(&d, VIRTIO_MMIO_INTERRUPT_STATUS));
    g_assert_false(irq_levels[5]);

    /* Write sector 1, then find it in the file. */
    memset(host_at(buf_gpa(&d, 0, 1)), 'F', 512);
    g_assert_cmpuint(blk_request(&d, VIRTIO_BLK_T_OUT, 1, 512, false, &used), ==,
                     VIRTIO_BLK_S_OK);
    g_assert_cmpuint(used, ==, 1);
    g_assert_cmpuint(blk_request(&d, VIRTIO_BLK_T_FLUSH, 0, 0, false, NULL), ==,
                     VIRTIO_BLK_S_OK);
    g_autofree char *contents = NULL;
    gsize len;
    g_assert_true(g_file_get_contents(img0, &contents, &len, NULL));
    g_assert_cmpuint(len, ==, 64 * 1024);
    for (unsigned i = 0; i < 512; i++) {
        g_assert_cmpint(contents[512 + i], ==, 'F');
    }
    g_assert_cmphex((uint8_t)contents[1024], ==, (uint8_t)(2 + 1024));

    /* Past the end, partial sectors, unknown requests. */
    g_assert_cmpuint(blk_request(&d, VIRTIO_BLK_T_IN, 128, 512, true, &used), ==,
                     VIRTIO_BLK_S_IOERR);
    g_assert_cmpuint(used, ==, 1);
    g_assert_cmpuint(blk_request(&d, VIRTIO_BLK_T_IN, 127, 1024, true, NULL), ==,
                     VIRTIO_BLK_S_IOERR);
    g_assert_cmpuint(blk_request(&d, VIRTIO_BLK_T_IN, UINT64_MAX, 512, true, NULL), ==,
                     VIRTIO_BLK_S_IOERR);
    g_assert_cmpuint(blk_request(&d, VIRTIO_BLK_T_IN, 0, 100, true, NULL), ==,
                     VIRTIO_BLK_S_IOERR);
    g_assert_cmpuint(blk_request(&d, 77, 0, 0, false, NULL), ==, VIRTIO_BLK_S_UNSUPP);

    /* A bad chain breaks the device until reset. */
    Buf bad = { 0x10, 16, false };
    driver_add(&d, 0, &bad, 1);
    wr(&d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    g_assert_true(rd(&d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    g_assert_true(rd(&d, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_ISR_CONFIG);
    virtio_devices_reset();
    g_assert_cmpuint(rd(&d, VIRTIO_MMIO_STATUS), ==, 0);
    g_assert_false(irq_levels[5]);
}

static void test_blk_readonly(void)
{
    Driver d;
    uint32_t used;

    driver_init(&d, 1, 1, VIRTIO_ID_BLOCK);
    g_assert_true(device_features(&d) & VIRTIO_BIT(VIRTIO_BLK_F_RO));
    /* 8 KiB + 100 bytes: the partial sector is not visible. */
    g_assert_cmpuint(io_dispatch_read(IO_SPACE_MMIO, mmio(&d, VIRTIO_MMIO_CONFIG), 4), ==, 16);
    g_assert_cmpuint(blk_request(&d, VIRTIO_BLK_T_OUT, 0, 512, false, NULL), ==,
                     VIRTIO_BLK_S_IOERR);
    g_assert_cmpuint(blk_request(&d, VIRTIO_BLK_T_GET_ID, 0, 20, true, &used), ==,
                     VIRTIO_BLK_S_OK);
    g_assert_cmpuint(used, ==, 21);
    g_assert_cmpmem(host_at(buf_gpa(&d, 0, 1)), 7, "SER123", 7);
    g_assert_cmpuint(blk_request(&d, VIRTIO_BLK_T_IN, 15, 512, true, NULL), ==,
                     VIRTIO_BLK_S_OK);
}

static const uint8_t arp_request[42] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff,         /* to everyone */
    0x52, 0x54, 0x00, 0x12, 0x34, 0x56,         /* from the NIC */
    0x08, 0x06,                                 /* ARP */
    0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,   /* Ethernet/IPv4, request */
    0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 10, 0, 2, 15,
    0, 0, 0, 0, 0, 0, 10, 0, 2, 2,              /* who has 10.0.2.2? */
};

static void test_net(void)
{
    Driver d;

    driver_init(&d, 2, 2, VIRTIO_ID_NET);
    uint64_t f = device_features(&d);
    g_assert_true(f & VIRTIO_BIT(VIRTIO_NET_F_MAC));
    g_assert_true(f & VIRTIO_BIT(VIRTIO_NET_F_STATUS));
    uint8_t mac[6];
    for (unsigned i = 0; i < 6; i++) {
        mac[i] = (uint8_t)io_dispatch_read(IO_SPACE_MMIO, mmio(&d, VIRTIO_MMIO_CONFIG + i), 1);
    }
    g_assert_cmpmem(mac, 6, arp_request + 6, 6);
    g_assert_cmpuint(io_dispatch_read(IO_SPACE_MMIO, mmio(&d, VIRTIO_MMIO_CONFIG + 6), 2), ==,
                     VIRTIO_NET_S_LINK_UP);

    /* Two receive buffers, then the request. */
    for (unsigned i = 0; i < 2; i++) {
        Buf rx = { buf_gpa(&d, 0, i), 12 + 1514, true };
        driver_add(&d, 0, &rx, 1);
    }
    wr(&d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    memset(host_at(buf_gpa(&d, 1, 0)), 0, 12);
    memcpy(host_at(buf_gpa(&d, 1, 0) + 12), arp_request, sizeof(arp_request));
    Buf tx = { buf_gpa(&d, 1, 0), 12 + sizeof(arp_request), false };
    driver_add(&d, 1, &tx, 1);
    wr(&d, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
    g_assert_cmpuint(driver_used_idx(&d, 1), ==, 1);

    /* slirp answers an ARP request before slirp_input returns. */
    g_assert_cmpuint(driver_used_idx(&d, 0), >=, 1);
    const uint8_t *rx = host_at(buf_gpa(&d, 0, 0));
    g_assert_cmpuint(driver_used_len(&d, 0, 0), >=, 12 + 42);
    g_assert_cmpuint(rx[10], ==, 1);                    /* num_buffers */
    g_assert_cmpmem(rx + 12, 6, mac, 6);                /* to us */
    g_assert_cmphex(rx[12 + 12], ==, 0x08);
    g_assert_cmphex(rx[12 + 13], ==, 0x06);
    g_assert_cmphex(rx[12 + 21], ==, 2);                /* reply */
    g_assert_cmpmem(rx + 12 + 28, 4, ((uint8_t[]) { 10, 0, 2, 2 }), 4);
    g_test_message("gateway MAC %02x:%02x:%02x:%02x:%02x:%02x", rx[12 + 22], rx[12 + 23],
                   rx[12 + 24], rx[12 + 25], rx[12 + 26], rx[12 + 27]);
    g_assert_true(page_dirty(buf_gpa(&d, 0, 0)));
    g_assert_true(irq_levels[7]);

    /* The stack's GSource runs without complaint. */
    for (unsigned i = 0; i < 5; i++) {
        g_main_context_iteration(NULL, FALSE);
    }
}

/* A host connection to the forwarded port reaches the guest as a TCP SYN. */
static void test_net_hostfwd(void)
{
    Driver d = { .slot = 2, .avail_idx = { 2, 1 } };
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(fwd_port) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    bool syn = false;

    g_assert_cmpint(fd, >=, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_assert_true(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EINPROGRESS);

    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    uint16_t seen = driver_used_idx(&d, 0);
    while (!syn && g_get_monotonic_time() < deadline) {
        if ((uint16_t)(d.avail_idx[0] - seen) < 2) {
            /* Keep two receive buffers posted. */
            Buf rx = { buf_gpa(&d, 0, d.avail_idx[0] % 2), 12 + 1514, true };
            driver_add(&d, 0, &rx, 1);
            wr(&d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
        }
        if (driver_used_idx(&d, 0) == seen) {
            g_main_context_iteration(NULL, FALSE);
            g_usleep(1000);
            continue;
        }
        const uint8_t *f = host_at(buf_gpa(&d, 0, driver_used_id(&d, 0, seen) / 4)) + 12;
        seen++;
        /* IPv4, TCP, to 10.0.2.15:22, SYN */
        syn = f[12] == 0x08 && f[13] == 0x00 && f[14 + 9] == 6 &&
              !memcmp(f + 14 + 16, ((uint8_t[]) { 10, 0, 2, 15 }), 4) &&
              f[34 + 2] == 0 && f[34 + 3] == 22 && (f[34 + 13] & 0x02);
    }
    close(fd);
    g_assert_true(syn);
}

static void expect_create_error(const char *drives[], const char *netdevs[],
                                const char *devices[], const char *message)
{
    FerryConfig *cfg = config_new();
    g_autoptr(GString) extra = g_string_new(NULL);
    g_autoptr(GError) err = NULL;

    for (unsigned i = 0; drives && drives[i]; i++) {
        config_add(cfg->drives, NULL, drives[i]);
    }
    for (unsigned i = 0; netdevs && netdevs[i]; i++) {
        config_add(cfg->netdevs, "type", netdevs[i]);
    }
    for (unsigned i = 0; devices && devices[i]; i++) {
        config_add(cfg->devices, "driver", devices[i]);
    }
    g_assert_false(virtio_devices_create(cfg, extra, &err));
    g_assert_nonnull(err);
    g_assert_cmpstr(err->message, ==, message);
    config_free(cfg);
}

#define LIST(...) ((const char *[]) { __VA_ARGS__, NULL })

static void test_errors(void)
{
    g_autofree char *img = g_build_filename(tmpdir, "disk0.img", NULL);
    g_autofree char *none = g_strdup_printf("if=none,id=dA,file=%s", img);
    g_autofree char *virtio = g_strdup_printf("if=virtio,id=dV,file=%s", img);
    g_autofree char *msg = NULL;

    expect_create_error(NULL, NULL, LIST("virtio-blk-device,drive=d9"),
                        "-device virtio-blk-device,drive=d9: drive 'd9' not found");
    expect_create_error(NULL, NULL, LIST("virtio-blk-device"),
                        "-device virtio-blk-device: drive property not set");
    expect_create_error(NULL, NULL, LIST("e1000,netdev=n0"),
                        "-device e1000,netdev=n0: 'e1000' is not a valid device model name");
    expect_create_error(NULL, NULL, LIST("virtio-net-pci,netdev=n0,colour=red"),
                        "-device virtio-net-pci,netdev=n0,colour=red: Invalid parameter "
                        "'colour'");
    expect_create_error(NULL, NULL, LIST("virtio-net-pci,netdev=nX"),
                        "-device virtio-net-pci,netdev=nX: netdev 'nX' not found");
    expect_create_error(NULL, NULL, LIST("virtio-net-pci,netdev=n0"),
                        "-device virtio-net-pci,netdev=n0: netdev 'n0' is already in use");
    expect_create_error(NULL, LIST("user,id=m1"), LIST("virtio-net-pci,netdev=m1,mac=52:54:00"),
                        "-device virtio-net-pci,netdev=m1,mac=52:54:00: Property 'mac' "
                        "expects a MAC address like 52:54:00:12:34:56, not '52:54:00'");
    expect_create_error(NULL, NULL, LIST("virtio-net-pci,netdev=m1,mac=01:00:5e:00:00:01"),
                        "-device virtio-net-pci,netdev=m1,mac=01:00:5e:00:00:01: "
                        "mac=01:00:5e:00:00:01 is a multicast address");
    expect_create_error(NULL, LIST("user,id=m2"),
                        LIST("virtio-net-pci,netdev=m2,id=x", "virtio-blk-pci,id=x"),
                        "-device virtio-blk-pci,id=x: Duplicate ID 'x' for device");
    expect_create_error(NULL, LIST("tap,id=t0"), NULL,
                        "-netdev tap,id=t0: network backend 'tap' is not supported (user only)");
    expect_create_error(NULL, LIST("user"), NULL, "-netdev user: Parameter 'id' is missing");
    expect_create_error(NULL, LIST("user,id=n0"), NULL,
                        "-netdev user,id=n0: Duplicate ID 'n0' for netdev");
    expect_create_error(NULL, LIST("user,id=m3,net=10.0.2.0/33"), NULL,
                        "-netdev user,id=m3,net=10.0.2.0/33: net=10.0.2.0/33: prefix length "
                        "must be 1 to 30");
    expect_create_error(NULL, LIST("user,id=m3,net=10.0.3.0/24,host=10.0.2.2"), NULL,
                        "-netdev user,id=m3,net=10.0.3.0/24,host=10.0.2.2: host=10.0.2.2: "
                        "address is not in the guest network");
    expect_create_error(NULL, LIST("user,id=m3,hostfwd=tcp::x-:22"), NULL,
                        "-netdev user,id=m3,hostfwd=tcp::x-:22: hostfwd=tcp::x-:22: invalid "
                        "port 'x'");
    expect_create_error(NULL, LIST("user,id=m3,smb=/tmp"), NULL,
                        "-netdev user,id=m3,smb=/tmp: Invalid parameter 'smb'");
    expect_create_error(LIST("file=x.qcow2,format=qcow2"), NULL, NULL,
                        "-drive file=x.qcow2,format=qcow2: format 'qcow2' is not supported "
                        "(raw only)");
    expect_create_error(LIST("file=x,if=scsi"), NULL, NULL,
                        "-drive file=x,if=scsi: interface 'scsi' is not supported (virtio, none)");
    expect_create_error(LIST("file=x,bogus=1"), NULL, NULL,
                        "-drive file=x,bogus=1: Invalid parameter 'bogus'");
    expect_create_error(LIST("file=x,readonly=maybe"), NULL, NULL,
                        "-drive file=x,readonly=maybe: Parameter 'readonly' expects 'on' or "
                        "'off', not 'maybe'");
    expect_create_error(LIST("if=none,id=a,file=x", "if=none,id=a,file=y"), NULL, NULL,
                        "-drive if=none,id=a,file=y: Duplicate ID 'a' for drive");
    expect_create_error(LIST("file=/nonexistent/disk.img"), NULL, NULL,
                        "-drive file=/nonexistent/disk.img: Could not open "
                        "'/nonexistent/disk.img': No such file or directory");
    expect_create_error(LIST("if=virtio"), NULL, NULL,
                        "-drive if=virtio: Device needs media, but drive is empty");
    expect_create_error(LIST("if=none,id=e"), NULL, LIST("virtio-blk-device,drive=e"),
                        "-device virtio-blk-device,drive=e: Device needs media, but drive is "
                        "empty");
    /* The device for the first reference is created (slot 3), the second fails. */
    msg = g_strdup_printf("-device virtio-blk-device,drive=dA: drive 'dA' is already in use");
    expect_create_error(LIST(none), NULL,
                        LIST("virtio-blk-device,drive=dA", "virtio-blk-device,drive=dA"), msg);
    g_free(msg);
    /* An if=virtio drive has its device already (slot 4). */
    msg = g_strdup_printf("-device virtio-blk-device,drive=dV: drive 'dV' is already in use");
    expect_create_error(LIST(virtio), NULL, LIST("virtio-blk-device,drive=dV"), msg);
}

static void test_too_many(void)
{
    g_autofree char *img = g_build_filename(tmpdir, "disk0.img", NULL);
    g_autofree char *drive = g_strdup_printf("file=%s,readonly=on", img);
    g_autofree char *msg = g_strdup_printf("-drive file=%s,readonly=on: too many virtio devices "
                                           "(at most 11)", img);
    const char *drives[13];

    for (unsigned i = 0; i < 12; i++) {
        drives[i] = drive;
    }
    drives[12] = NULL;
    expect_create_error(drives, NULL, NULL, msg);
    g_assert_cmpuint(virtio_devices_count(), ==, VIRTIO_MMIO_MAX_DEVICES);
}

int main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    RAMBlockOptions opts = { .id = "test.ram", .size = RAM_SIZE, .kind = RAM_BACKING_ANON };

    g_test_init(&argc, &argv, NULL);
    block = ramblock_new(&opts, &err);
    g_assert_no_error(err);
    guest_ram_map(RAM_GPA, RAM_SIZE, block, 0);
    tmpdir = g_dir_make_tmp("ferry-virtio-XXXXXX", &err);
    g_assert_no_error(err);

    /* A free port for host forwarding: bind to port 0, note it, release it. */
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t salen = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_assert_cmpint(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
    g_assert_cmpint(getsockname(fd, (struct sockaddr *)&sa, &salen), ==, 0);
    fwd_port = ntohs(sa.sin_port);
    close(fd);

    /* In order: later tests use the devices earlier ones created. */
    g_test_add_func("/virtio-devices/create", test_create);
    g_test_add_func("/virtio-devices/blk", test_blk);
    g_test_add_func("/virtio-devices/blk-readonly", test_blk_readonly);
    g_test_add_func("/virtio-devices/net", test_net);
    g_test_add_func("/virtio-devices/net-hostfwd", test_net_hostfwd);
    g_test_add_func("/virtio-devices/errors", test_errors);
    g_test_add_func("/virtio-devices/too-many", test_too_many);
    int ret = g_test_run();

    g_autofree char *img0 = g_build_filename(tmpdir, "disk0.img", NULL);
    g_autofree char *img1 = g_build_filename(tmpdir, "disk1.img", NULL);
    g_unlink(img0);
    g_unlink(img1);
    g_rmdir(tmpdir);
    return ret;
}
