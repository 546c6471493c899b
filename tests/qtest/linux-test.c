/*
 * The Linux guest: a small kernel built from Debian's linux-source with an
 * initramfs of busybox and the verifying workload (tests/guest/linux/).
 *
 * Smoke tests prove both Linux boot paths on either accelerator: through
 * the x86 boot protocol (bzImage) and through PVH (vmlinux), the kernel
 * prints its banner, the command line Ferry passed and the memory map Ferry
 * built. The full test boots the PVH kernel, lets Linux's virtio drivers
 * use the disk and the network, runs the verifying workload and migrates
 * it. On the software CPU all three take about a minute and a half; where
 * KVM runs guest ring 0 in an instruction emulator (kvm_pvm, no VMX/SVM)
 * about three minutes. FERRY_TEST_LINUX_QUICK=1 skips the full test.
 */
#include <stdio.h>

#include "migration-helpers.h"

#define LINUX_RAM_MB 256

/*
 * Under KVM the guest sees the host's CPUID, and where ring 0 is emulated
 * (kvm_pvm) the features its emulator lacks are turned off here. The
 * software CPU's CPUID lists only what it implements, so it needs none.
 */
static const char *linux_kvm_args =
    "console=ttyS0 earlyprintk=serial noxsave nofsgsbase "
    "clearcpuid=smap,popcnt,rdrand,rdseed,pku,pcid,invpcid,fsgsbase,rdpid,rdtscp,cx16,"
    "clflushopt tsc=reliable no_timer_check";
static const char *linux_tcg_args = "console=ttyS0 earlyprintk=serial";

/* The software CPU's TSC runs at 1 GHz (accel/soft/soft-accel.c). */
#define LINUX_TCG_TSC_KHZ 1000000

static bool host_has_hw_virt(void)
{
    g_autofree gchar *cpuinfo = NULL;
    if (!g_file_get_contents("/proc/cpuinfo", &cpuinfo, NULL, NULL)) {
        return false;
    }
    return strstr(cpuinfo, " vmx") || strstr(cpuinfo, " svm");
}

static char *linux_append(const char *test)
{
    if (strcmp(ferry_test_accel(), "tcg") == 0) {
        return g_strdup_printf("%s tsc_early_khz=%d ferry.test=%s", linux_tcg_args,
                               LINUX_TCG_TSC_KHZ, test);
    }
    /* The kernel's early TSC calibration is unreliable in an emulator: tell it. */
    g_autofree gchar *cpuinfo = NULL;
    long khz = 0;
    if (g_file_get_contents("/proc/cpuinfo", &cpuinfo, NULL, NULL)) {
        const char *mhz = strstr(cpuinfo, "cpu MHz");
        if (mhz && (mhz = strchr(mhz, ':'))) {
            khz = (long)(g_ascii_strtod(mhz + 1, NULL) * 1000.0);
        }
    }
    return g_strdup_printf("%s tsc_early_khz=%ld ferry.test=%s", linux_kvm_args, khz, test);
}

static void linux_smoke(const char *image)
{
    FERRY_REQUIRE_GUEST(initrd, "linux_initramfs");
    g_autofree char *append = linux_append("smoke");

    FerryVM *vm = ferry_vm_start("-m %d -kernel %s -initrd %s -append '%s'", LINUX_RAM_MB,
                                 image, initrd, append);
    g_autofree char *banner = ferry_serial_wait(vm, "Linux version ", 120000);
    /* The command line arrives exactly as given. */
    g_autofree char *cmdline = ferry_serial_wait(vm, "Command line: ", 60000);
    g_assert_nonnull(strstr(cmdline, append));
    /* The memory map is the one Ferry built: RAM below the EBDA, then from 1 MiB up. */
    g_autofree char *low = ferry_serial_wait(vm, "[mem 0x0000000000000000-0x000000000009fbff] usable",
                                             60000);
    g_autofree char *high_want = g_strdup_printf("[mem 0x0000000000100000-0x%016x] usable",
                                                 (LINUX_RAM_MB << 20) - 1);
    g_autofree char *high = ferry_serial_wait(vm, high_want, 60000);
    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);
}

static void test_smoke_bzimage(void)
{
    FERRY_REQUIRE_ACCEL();
    FERRY_REQUIRE_GUEST(image, "linux_bzimage");
    linux_smoke(image);
}

static void test_smoke_pvh(void)
{
    FERRY_REQUIRE_ACCEL();
    FERRY_REQUIRE_GUEST(image, "linux_vmlinux");
    linux_smoke(image);
}

/*
 * Boot to user space; Linux's own virtio drivers write and read back the
 * disk (the record lands in the host's image) and get a DHCP lease and a
 * ping answer from slirp; then the verifying workload runs and the VM
 * migrates with its used devices: same boot token and VERIFY OK after.
 */
static void test_workload_and_migration(void)
{
    FERRY_REQUIRE_ACCEL();
    FERRY_REQUIRE_GUEST(image, "linux_vmlinux");
    FERRY_REQUIRE_GUEST(initrd, "linux_initramfs");
    if (g_getenv("FERRY_TEST_LINUX_QUICK")) {
        g_test_skip(host_has_hw_virt()
                    ? "FERRY_TEST_LINUX_QUICK is set"
                    : "FERRY_TEST_LINUX_QUICK is set (booting Linux to its workload takes "
                      "minutes where KVM emulates guest ring 0)");
        return;
    }
    g_autofree char *disk = g_build_filename(ferry_tmp_dir(), "linux-disk.img", NULL);
    g_autofree char *zeros = g_malloc0(8 << 20);
    g_assert_true(g_file_set_contents(disk, zeros, 8 << 20, NULL));
    g_autofree char *append = linux_append("devices+workload");
    g_autofree char *full = g_strdup_printf("%s ferry.mem=32 quiet", append);
    g_autofree char *devices = g_strdup_printf(
        "-drive file=%s,format=raw,if=virtio -netdev user,id=n0 "
        "-device virtio-net-device,netdev=n0", disk);
    FerryVM *a = ferry_vm_start("-m %d -kernel %s -initrd %s -append '%s' %s", LINUX_RAM_MB,
                                image, initrd, full, devices);
    g_autofree char *init = ferry_serial_wait(a, "LINUX-INIT up", 600000);
    g_autofree char *disk_ok = ferry_serial_wait(a, "DISK OK", 300000);
    g_autofree char *net_ok = ferry_serial_wait(a, "NET OK", 300000);
    g_assert_false(ferry_serial_contains(a, "DISK FAIL"));
    g_assert_false(ferry_serial_contains(a, "NET FAIL"));
    /* The guest's record is in the host's image at 1 MiB. */
    g_autofree char *contents = NULL;
    gsize len = 0;
    g_assert_true(g_file_get_contents(disk, &contents, &len, NULL));
    g_assert_cmpuint(len, >=, (1 << 20) + 4096);
    g_assert_nonnull(g_strstr_len(contents + (1 << 20), 4096, "FERRY-DISK boot="));

    g_autofree char *ok = ferry_serial_wait(a, "VERIFY OK", 600000);
    g_autofree char *hb = ferry_serial_wait(a, "HB token=", 60000);
    const char *tok = strstr(hb, "token=") + 6;
    g_autofree char *token = g_strndup(tok, 16);

    FerryVM *b = ferry_vm_start("-m %d -kernel %s -initrd %s -append '%s' %s "
                                "-incoming tcp:127.0.0.1:0", LINUX_RAM_MB, image, initrd, full,
                                devices);
    g_autofree char *uri = mig_dest_tcp_uri(b);
    mig_set_param_int(a, "max-bandwidth", 8LL << 30);
    mig_migrate(a, uri);
    g_autofree char *end = mig_wait_end(a, 120000);
    g_assert_cmpstr(end, ==, "completed");
    ferry_serial_mark(b);
    g_autofree char *hb2 = ferry_serial_wait(b, "HB token=", 120000);
    g_assert_nonnull(strstr(hb2, token));
    g_autofree char *ok2 = ferry_serial_wait(b, "VERIFY OK", 120000);
    g_assert_false(ferry_serial_contains(b, "VERIFY FAIL"));
    g_assert_cmpint(ferry_vm_quit(b), ==, 0);
    g_assert_cmpint(ferry_vm_quit(a), ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/linux/smoke/bzimage", test_smoke_bzimage);
    g_test_add_func("/linux/smoke/pvh-vmlinux", test_smoke_pvh);
    g_test_add_func("/linux/workload-and-migration", test_workload_and_migration);
    return g_test_run();
}
