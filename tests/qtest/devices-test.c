/*
 * virtio-blk and virtio-net as a guest uses them: the test kernel reads
 * its disk, writes it (the image file on the host changes), and talks to
 * slirp's gateway over ARP. Both ways of attaching a disk, and a
 * read-only one that must stay untouched. The CMOS clock's date, as a
 * guest reads it through ports 0x70/0x71.
 */
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "testkernel.h"

#define DISK_SIZE (1u << 20)
static const char sector0_text[] = "HELLO-FERRY-DISK";

static char *make_disk(const char *name)
{
    char *path = g_build_filename(ferry_tmp_dir(), name, NULL);
    g_autofree char *data = g_malloc0(DISK_SIZE);
    memcpy(data, sector0_text, strlen(sector0_text));
    g_assert_true(g_file_set_contents(path, data, DISK_SIZE, NULL));
    return path;
}

static void read_sector(const char *path, unsigned sector, char out[512])
{
    int fd = open(path, O_RDONLY);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, out, 512, (off_t)sector * 512), ==, 512);
    close(fd);
}

static void disk_roundtrip(const char *drive_args, const char *path)
{
    char token[17];
    NEED_TESTKERNEL(kernel);
    g_autofree char *extra = g_strdup_printf(drive_args, path);
    FerryVM *vm = testkernel_start(kernel, extra, 1, "mem=16", token);
    g_autofree char *ok = ferry_serial_wait(vm, "VERIFY OK", 30000);

    ferry_serial_write(vm, "disktest\n");
    g_autofree char *s0 = ferry_serial_wait(vm, "DISK sector0 ", 20000);
    /* The guest read what the host put in sector 0: "HELLO-FERRY-DISK" in hex. */
    g_assert_nonnull(strstr(s0, "48454c4c4f2d46455252592d4449534b"));
    g_autofree char *res = ferry_serial_wait(vm, "DISK ", 20000);
    g_assert_cmpstr(res, ==, "DISK OK");
    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);

    /* The guest's write reached the image: 32 chunks "FERRY-DISK-01KK ". */
    char sector[512];
    read_sector(path, 1, sector);
    for (unsigned k = 0; k < 32; k++) {
        char want[17];
        g_snprintf(want, sizeof(want), "FERRY-DISK-01%02x ", k);
        g_assert_cmpmem(sector + k * 16, 16, want, 16);
    }
}

static void test_disk_drive_if_virtio(void)
{
    g_autofree char *path = make_disk("disk-a.img");
    disk_roundtrip("-drive file=%s,format=raw,if=virtio", path);
}

static void test_disk_device(void)
{
    g_autofree char *path = make_disk("disk-b.img");
    disk_roundtrip("-drive file=%s,format=raw,if=none,id=d0 -device virtio-blk-device,drive=d0",
                   path);
}

static void test_disk_readonly(void)
{
    char token[17];
    NEED_TESTKERNEL(kernel);
    g_autofree char *path = make_disk("disk-ro.img");
    g_autofree char *extra = g_strdup_printf("-drive file=%s,format=raw,if=virtio,readonly=on",
                                             path);
    FerryVM *vm = testkernel_start(kernel, extra, 1, "mem=16", token);
    g_autofree char *ok = ferry_serial_wait(vm, "VERIFY OK", 30000);
    ferry_serial_write(vm, "disktest\n");
    g_autofree char *s0 = ferry_serial_wait(vm, "DISK sector0 ", 20000);
    g_autofree char *res = ferry_serial_wait(vm, "DISK ", 20000);
    g_assert_true(g_str_has_prefix(res, "DISK FAIL"));
    /* The guest keeps running and the image was not written. */
    g_autofree char *ok2 = ferry_serial_wait(vm, "VERIFY OK", 30000);
    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);
    char sector[512], zeros[512] = { 0 };
    read_sector(path, 1, sector);
    g_assert_cmpmem(sector, 512, zeros, 512);
}

static void test_net_slirp(void)
{
    char token[17];
    NEED_TESTKERNEL(kernel);
    FerryVM *vm = testkernel_start(kernel, "-netdev user,id=n0 -device virtio-net-device,netdev=n0",
                                   1, "mem=16", token);
    g_autofree char *ok = ferry_serial_wait(vm, "VERIFY OK", 30000);
    ferry_serial_write(vm, "nettest\n");
    g_autofree char *res = ferry_serial_wait(vm, "NET ", 20000);
    g_assert_cmpstr(res, ==, "NET OK gw-mac=52:55:0a:00:02:02");
    /* Disk and network side by side, and the workload still verifies. */
    g_autofree char *ok2 = ferry_serial_wait(vm, "VERIFY OK", 30000);
    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);
}

static unsigned rtc_bcd(FerryVM *vm, uint8_t reg)
{
    ferry_outb(vm, 0x70, reg);
    uint8_t v = ferry_inb(vm, 0x71);
    return (v >> 4) * 10 + (v & 0xf);
}

static int64_t rtc_date(FerryVM *vm)
{
    struct tm tm = {
        .tm_sec = (int)rtc_bcd(vm, 0x00), .tm_min = (int)rtc_bcd(vm, 0x02),
        .tm_hour = (int)rtc_bcd(vm, 0x04), .tm_mday = (int)rtc_bcd(vm, 0x07),
        .tm_mon = (int)rtc_bcd(vm, 0x08) - 1,
        .tm_year = (int)(rtc_bcd(vm, 0x32) * 100 + rtc_bcd(vm, 0x09)) - 1900,
    };
    return (int64_t)timegm(&tm);
}

/* The date is the host's (UTC); one the guest sets survives a reset. */
static void test_rtc_date(void)
{
    FerryVM *vm = ferry_vm_start("-S -m 64");
    int64_t before = (int64_t)time(NULL);
    int64_t got = rtc_date(vm);
    g_assert_cmpint(got, >=, before);
    g_assert_cmpint(got, <=, (int64_t)time(NULL));

    ferry_outb(vm, 0x70, 0x09);
    ferry_outb(vm, 0x71, 0x45);                     /* the year ..45 */
    g_autoptr(JsonNode) r = ferry_qmp_ok(vm, "{'execute': 'system_reset'}");
    g_assert_cmpuint(rtc_bcd(vm, 0x09), ==, 45);
    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/devices/virtio-blk/drive-if-virtio", test_disk_drive_if_virtio);
    g_test_add_func("/devices/virtio-blk/device", test_disk_device);
    g_test_add_func("/devices/virtio-blk/readonly", test_disk_readonly);
    g_test_add_func("/devices/virtio-net/slirp-arp", test_net_slirp);
    g_test_add_func("/devices/rtc/date", test_rtc_date);
    return g_test_run();
}
