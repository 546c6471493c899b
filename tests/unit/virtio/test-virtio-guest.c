/*
 * The test kernel's virtio driver (tests/guest/kernel/virtio-test.c), run
 * on the host against Ferry's device models: its register accesses go
 * through the MMIO dispatch, and its static buffers become guest RAM at
 * guest-physical == host-virtual addresses, as under the kernel's
 * identity mapping. Checks the exact lines the kernel prints.
 */
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "hw/virtio/virtio-devices.h"
#include "system/accel.h"
#include "system/ioport.h"
#include "system/main-loop.h"
#include "system/memory.h"
#include "system/ramblock.h"

/* The guest driver, with register access through the dispatch. */
#define VT_HOST_TEST
#include "tests/guest/kernel/kernel.h"

static inline uint32_t vt_read(uint64_t base, uint32_t off)
{
    return (uint32_t)io_dispatch_read(IO_SPACE_MMIO, base + off, 4);
}

static inline uint8_t vt_read8(uint64_t base, uint32_t off)
{
    return (uint8_t)io_dispatch_read(IO_SPACE_MMIO, base + off, 1);
}

static inline void vt_write(uint64_t base, uint32_t off, uint32_t v)
{
    io_dispatch_write(IO_SPACE_MMIO, base + off, v, 4);
}

#include "tests/guest/kernel/virtio-test.c"

/* What the kernel provides: its clock and serial output, captured here. */
struct boot_info boot;
static GString *serial_out;

void line_reset(struct line *l)
{
    l->len = 0;
}

void line_str(struct line *l, const char *s)
{
    while (*s && l->len < sizeof(l->buf) - 1) {
        l->buf[l->len++] = *s++;
    }
}

void serial_print_line(struct line *l)
{
    g_string_append_len(serial_out, l->buf, l->len);
    g_string_append_c(serial_out, '\n');
}

void serial_puts(const char *s)
{
    g_string_append(serial_out, s);
}

/* What the machine provides. */
void accel_set_irq(int irq, int level)
{
}

GMainContext *main_loop_context(void)
{
    return g_main_context_default();
}

void main_loop_wakeup(void)
{
    g_main_context_wakeup(NULL);
}

static char *image_path;

static void test_disk(void)
{
    g_string_truncate(serial_out, 0);
    virtio_test_disk();
    g_assert_cmpstr(serial_out->str, ==, "DISK sector0 00010203040506070809fafbfcfdfeff\nDISK OK\n");

    g_autofree char *contents = NULL;
    gsize len;
    g_assert_true(g_file_get_contents(image_path, &contents, &len, NULL));
    g_assert_cmpmem(contents + 512, 16, "FERRY-DISK-0100 ", 16);
    g_assert_cmpmem(contents + 512 + 31 * 16, 16, "FERRY-DISK-011f ", 16);

    /* Again: the device was left reset, the run counter moves on. */
    g_string_truncate(serial_out, 0);
    virtio_test_disk();
    g_assert_true(g_str_has_suffix(serial_out->str, "DISK OK\n"));
    g_clear_pointer(&contents, g_free);
    g_assert_true(g_file_get_contents(image_path, &contents, &len, NULL));
    g_assert_cmpmem(contents + 512, 16, "FERRY-DISK-0200 ", 16);
}

static void test_net(void)
{
    for (int run = 0; run < 2; run++) {
        g_string_truncate(serial_out, 0);
        virtio_test_net();
        g_assert_cmpstr(serial_out->str, ==, "NET OK gw-mac=52:55:0a:00:02:02\n");
    }
}

int main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;

    g_test_init(&argc, &argv, NULL);
    serial_out = g_string_new(NULL);
    boot.tsc_hz = 1000000000;           /* roughly; only bounds the waits */

    /* Guest RAM: the pages holding the driver's buffers, identity mapped. */
    uint64_t lo = MIN(MIN((uint64_t)vt_ring_pages, (uint64_t)vt_buf), (uint64_t)vt_scratch);
    uint64_t hi = MAX(MAX((uint64_t)vt_ring_pages + sizeof(vt_ring_pages),
                          (uint64_t)vt_buf + sizeof(vt_buf)),
                      (uint64_t)vt_scratch + sizeof(vt_scratch));
    lo &= ~(TARGET_PAGE_SIZE - 1);
    hi = (hi + TARGET_PAGE_SIZE - 1) & ~(TARGET_PAGE_SIZE - 1);
    static RAMBlock ram;
    ram.idstr = (char *)"driver-statics";
    ram.host = (uint8_t *)lo;
    ram.used_length = ram.max_length = hi - lo;
    ram.vmm_dirty = g_new0(unsigned long, ((hi - lo) / TARGET_PAGE_SIZE + 63) / 64);
    guest_ram_map(lo, hi - lo, &ram, 0);

    /* A disk whose sector 0 starts 00 01 02 ... and a NIC. */
    g_autofree char *dir = g_dir_make_tmp("ferry-virtio-guest-XXXXXX", &err);
    g_assert_no_error(err);
    image_path = g_build_filename(dir, "disk.img", NULL);
    uint8_t image[4096];
    for (unsigned i = 0; i < sizeof(image); i++) {
        image[i] = (uint8_t)(i < 10 ? i : 0xf0 + i);
    }
    g_assert_true(g_file_set_contents(image_path, (const char *)image, sizeof(image), NULL));

    FerryConfig cfg = {
        .drives = g_ptr_array_new_with_free_func((GDestroyNotify)opts_free),
        .devices = g_ptr_array_new_with_free_func((GDestroyNotify)opts_free),
        .netdevs = g_ptr_array_new_with_free_func((GDestroyNotify)opts_free),
    };
    g_autofree char *drive = g_strdup_printf("file=%s,format=raw", image_path);
    g_ptr_array_add(cfg.drives, opts_parse(drive, NULL, NULL));
    g_ptr_array_add(cfg.netdevs, opts_parse("user,id=net0", "type", NULL));
    g_ptr_array_add(cfg.devices, opts_parse("virtio-net-pci,netdev=net0", "driver", NULL));
    g_autoptr(GString) extra = g_string_new(NULL);
    g_assert_true(virtio_devices_create(&cfg, extra, &err));
    g_assert_no_error(err);

    g_test_add_func("/virtio-guest/disk", test_disk);
    g_test_add_func("/virtio-guest/net", test_net);
    int ret = g_test_run();

    g_unlink(image_path);
    g_rmdir(dir);
    g_free(image_path);
    return ret;
}
