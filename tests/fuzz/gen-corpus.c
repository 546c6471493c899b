/*
 * Seeds for the fuzz targets, saved by the real source side of migration
 * (qemu_savevm_state_*, the RAM encoder, the devices' vmstate) from the
 * machine of fuzz-machine.h, so they match the fuzz targets' destination:
 *
 *   fuzz-gen-corpus write LOADVM_DIR RAM_LOAD_DIR   (re)write the seeds
 *   fuzz-gen-corpus check LOADVM_DIR RAM_LOAD_DIR   every seed must load
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
 */
#include <errno.h>
#include <string.h>
#include <gio/gio.h>

#include "hw/virtio/virtio-mmio.h"
#include "hw/virtio/virtqueue.h"
#include "hw/x86/pm.h"
#include "migration/global-state.h"
#include "migration/ram.h"
#include "migration/savevm.h"
#include "system/ioport.h"
#include "system/memory.h"
#include "tests/fuzz/fuzz-machine.h"

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

typedef struct Seed {
    const char *name;
    GByteArray *(*make)(FuzzMachine *m);
    bool ram_load;      /* a ram-load seed, else loadvm */
} Seed;

static const Seed seeds[] = {
    { "minimal", seed_minimal, false },
    { "paused", seed_paused, false },
    { "ram-pages", seed_ram_pages, false },
    { "devices", seed_devices, false },
    { "block-list", seed_block_list, true },
    { "pages", seed_pages, true },
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

static GByteArray *make_seed(FuzzMachine *m, const Seed *s)
{
    fuzz_machine_reset();
    GByteArray *b = s->make(m);
    fuzz_machine_reset();
    return b;
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "write") && strcmp(argv[1], "check"))) {
        g_printerr("usage: %s write|check LOADVM_DIR RAM_LOAD_DIR\n", argv[0]);
        return 2;
    }
    bool write = !strcmp(argv[1], "write");
    FuzzMachine *m = fuzz_machine_get();
    int failed = 0;

    for (size_t i = 0; i < G_N_ELEMENTS(seeds); i++) {
        const Seed *s = &seeds[i];
        g_autofree char *path = g_build_filename(s->ram_load ? argv[3] : argv[2], s->name, NULL);
        g_autoptr(GByteArray) fresh = make_seed(m, s);
        g_autofree char *msg = NULL;

        if (write) {
            g_autoptr(GError) err = NULL;
            g_mkdir_with_parents(s->ram_load ? argv[3] : argv[2], 0755);
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
        bool ok = s->ram_load ? load_ram(m, (const uint8_t *)data, len, &msg)
                              : load_loadvm((const uint8_t *)data, len, &msg);
        if (!ok) {
            g_printerr("FAIL %s does not load: %s\n", path, msg);
            failed++;
            continue;
        }
        bool same = len == fresh->len && memcmp(data, fresh->data, len) == 0;
        g_print("%s %s (%zu bytes)%s\n", write ? "wrote" : "ok", path, (size_t)len,
                same ? "" : "; differs from what 'write' would produce now");
    }
    if (failed) {
        g_printerr("%d seed(s) do not load; if the stream or a device's state changed on "
                   "purpose, rewrite them: %s write %s %s\n", failed, argv[0], argv[2],
                   argv[3]);
        return 1;
    }
    return 0;
}
