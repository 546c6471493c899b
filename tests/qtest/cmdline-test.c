/*
 * The command line as a user meets it: informational options, every kind
 * of bad input (exit status 1, one line naming the option), options that
 * repeat or merge, memory backends, -pidfile, -daemonize and signals.
 */
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libferry.h"

static void assert_one_line_error(FerryRunResult *r, const char *must_contain)
{
    if (r->exit_code != 1 || !strstr(r->err, must_contain)) {
        g_printerr("stderr was: %s\n", r->err);
    }
    g_assert_false(r->timed_out);
    g_assert_cmpint(r->exit_code, ==, 1);
    g_assert_nonnull(strstr(r->err, must_contain));
    /* One line: the message ends in the only newline. */
    const char *nl = strchr(r->err, '\n');
    g_assert_nonnull(nl);
    g_assert_cmpstr(nl + 1, ==, "");
}

static void test_version_and_help(void)
{
    g_autoptr(FerryRunResult) v = ferry_run(10000, "-version");
    g_assert_cmpint(v->exit_code, ==, 0);
    g_assert_nonnull(strstr(v->out, "Ferry emulator version"));

    g_autoptr(FerryRunResult) h = ferry_run(10000, "-h");
    g_assert_cmpint(h->exit_code, ==, 0);
    g_assert_nonnull(strstr(h->out, "-kernel"));
    g_assert_nonnull(strstr(h->out, "-qmp"));

    g_autoptr(FerryRunResult) m = ferry_run(10000, "-machine help");
    g_assert_cmpint(m->exit_code, ==, 0);
    g_assert_nonnull(strstr(m->out, "ferry"));
}

typedef struct BadOption {
    const char *args;
    const char *message;
} BadOption;

static const BadOption bad_options[] = {
    { "-frobnicate", "-frobnicate: invalid option" },
    { "-m", "-m: requires an argument" },
    { "-m 1X", "-m 1X: Parameter 'size' expects a size" },
    { "-m 1K", "RAM size too small" },
    { "-smp 0", "-smp 0: Invalid number of CPUs: 0" },
    { "-smp 65", "-smp 65: Invalid number of CPUs: 65" },
    { "-smp cpus=2,colour=red", "Invalid parameter 'colour'" },
    { "-machine bogus", "unsupported machine type 'bogus'" },
    { "-machine pc,frobs=1", "-machine: Invalid parameter 'frobs'" },
    { "-cpu pentium", "-cpu pentium: unable to find CPU model 'pentium'" },
    { "-accel xen", "accelerator 'xen' is not supported by Ferry" },
    { "-accel tcg -cpu host", "tcg: -cpu host: needs KVM" },
    { "-cpu qemu64,+sse4.2", "-cpu qemu64,+sse4.2: CPU feature '+sse4.2'" },
    { "-accel warp", "-accel warp: invalid accelerator" },
    { "-machine accel=kvm:warp", "-machine accel=kvm:warp: invalid accelerator warp" },
    { "-machine accel=kvm:", "-machine accel=kvm:: empty accelerator name" },
    { "-kernel /nonexistent/vmlinux", "-kernel /nonexistent/vmlinux: could not open kernel file" },
    { "-initrd /nonexistent/initrd", "-initrd /nonexistent/initrd: -initrd only makes sense" },
    { "-drive file=/nonexistent/disk.img,format=raw", "Could not open '/nonexistent/disk.img'" },
    { "-drive file=/dev/null,format=qcow2", "format 'qcow2' is not supported" },
    { "-drive file=/dev/null,format=raw,if=scsi", "interface 'scsi' is not supported" },
    { "-object memory-backend-ram,id=m0", "Parameter 'size' is missing" },
    { "-object memory-backend-foo,id=m0,size=1G", "invalid object type: memory-backend-foo" },
    { "-object memory-backend-file,id=m0,size=64M", "Parameter 'mem-path' is missing" },
    { "-machine memory-backend=nope", "memory-backend=nope: no memory backend with that id" },
    { "-object memory-backend-ram,id=m0,size=64M -machine memory-backend=m0 -m 128",
      "does not match the size of memory backend 'm0'" },
    { "-serial bogus:thing", "-serial bogus:thing" },
    { "-chardev bogus,id=c0", "-chardev bogus,id=c0" },
    { "-mon chardev=nope", "chardev 'nope' not found" },
    { "-display gtk", "-display gtk: Display 'gtk' is not available" },
    { "-append console=ttyS0", "-append only makes sense with -kernel" },
    { "-nographic -daemonize", "-daemonize: cannot be used with -nographic" },
    { "-device foo", "-device foo: 'foo' is not a valid device model name" },
    { "-device virtio-blk-device,drive=nope", "drive 'nope' not found" },
    { "-device virtio-blk-device,drive=d0,bogus=1", "Invalid parameter 'bogus'" },
    { "-drive if=none,id=d0,file=/dev/null,format=raw -device virtio-blk-device,drive=d0 "
      "-device virtio-blk-device,drive=d0", "drive 'd0' is already in use" },
    { "-netdev tap,id=x", "-netdev tap,id=x: network backend 'tap' is not supported" },
    { "-netdev user", "-netdev user: Parameter 'id' is missing" },
    { "-device virtio-net-device,netdev=n9", "netdev 'n9' not found" },
    { "-netdev user,id=n0 -device virtio-net-device,netdev=n0,mac=01:00:00:00:00:01",
      "is a multicast address" },
};

static void test_bad_option(gconstpointer data)
{
    const BadOption *b = data;
    g_autoptr(FerryRunResult) r = ferry_run(10000, "-nodefaults %s", b->args);
    assert_one_line_error(r, b->message);
}

static void test_bad_kernel(void)
{
    g_autofree char *path = g_build_filename(ferry_tmp_dir(), "not-a-kernel", NULL);
    g_assert_true(g_file_set_contents(path, "this is not a kernel", -1, NULL));
    g_autoptr(FerryRunResult) r = ferry_run(10000, "-nodefaults -kernel %s", path);
    assert_one_line_error(r, "neither an ELF kernel with a PVH entry note nor a Linux bzImage");

    /* An ELF without the PVH note is refused, naming what is missing. */
    g_autoptr(FerryRunResult) e = ferry_run(10000, "-nodefaults -kernel /bin/true");
    assert_one_line_error(e, "without a PVH entry note");
}

static void test_bad_bootsector(void)
{
    g_autofree char *path = g_build_filename(ferry_tmp_dir(), "blank.img", NULL);
    g_autofree char *zeros = g_malloc0(1024);
    g_assert_true(g_file_set_contents(path, zeros, 1024, NULL));
    g_autoptr(FerryRunResult) r = ferry_run(10000, "-nodefaults -drive file=%s,format=raw",
                                            path);
    assert_one_line_error(r, "lacks the 0x55 0xAA boot signature");
}

/* The fallback list: xen is refused, the test's accelerator then works. */
static void test_accel_fallback(void)
{
    FERRY_REQUIRE_ACCEL();
    FERRY_REQUIRE_GUEST(img, "bootsect");
    FerryVM *vm = ferry_vm_start("-accel xen -accel %s -accel qtest -m 128 "
                                 "-drive file=%s,format=raw", ferry_test_accel(), img);
    ferry_serial_wait_count(vm, "B", 2, 30000);
    /* A named list says why it passed one over. */
    g_autofree char *log = ferry_vm_log(vm);
    g_autofree char *want = g_strdup_printf("accelerator 'xen' is not supported by Ferry; "
                                            "using %s", ferry_test_accel());
    g_assert_nonnull(strstr(log, want));
    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);
}

/* Repeated -machine options merge; a memfd backend sized without -m. */
static void test_machine_merge_memfd(void)
{
    FERRY_REQUIRE_ACCEL();
    FERRY_REQUIRE_GUEST(img, "bootsect");
    FerryVM *vm = ferry_vm_start("-object memory-backend-memfd,id=ram0,size=160M "
                                 "-machine pc -machine memory-backend=ram0 "
                                 "-drive file=%s,format=raw", img);
    ferry_serial_wait_count(vm, "B", 2, 30000);
    /* The guest's pattern is visible at the top of its range. */
    g_assert_cmpuint(ferry_readb(vm, 0x6400000 - 0x1000), !=, 0);
    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);
}

/* A file backend writes the guest's memory into the file (share=on). */
static void test_file_backend(void)
{
    FERRY_REQUIRE_ACCEL();
    FERRY_REQUIRE_GUEST(img, "bootsect");
    g_autofree char *path = g_build_filename(ferry_tmp_dir(), "guest-ram", NULL);
    FerryVM *vm = ferry_vm_start("-object memory-backend-file,id=pc.ram,size=128M,"
                                 "mem-path=%s,share=on -machine memory-backend=pc.ram "
                                 "-drive file=%s,format=raw", path, img);
    ferry_serial_wait_count(vm, "B", 2, 30000);
    ferry_qmp_ok(vm, "{'execute': 'stop'}");
    uint8_t in_guest = ferry_readb(vm, 0x200000);

    g_autofree gchar *contents = NULL;
    gsize len = 0;
    g_assert_true(g_file_get_contents(path, &contents, &len, NULL));
    g_assert_cmpuint(len, ==, 128u << 20);
    g_assert_cmpuint((guint8)contents[0x200000], ==, in_guest);
    g_assert_cmpuint(in_guest, !=, 0);
    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);
}

/* RAM beyond 3 GiB is mapped above 4 GiB and reachable there. */
static void test_high_ram(void)
{
    FERRY_REQUIRE_ACCEL();
    FerryVM *vm = ferry_vm_start("-S -m 3584M");
    ferry_writeq(vm, 0x100000000ULL, 0x1122334455667788ULL);
    g_assert_cmphex(ferry_readq(vm, 0x100000000ULL), ==, 0x1122334455667788ULL);
    ferry_writeb(vm, 0x100000000ULL + (512ULL << 20) - 1, 0x5a);
    g_assert_cmphex(ferry_readb(vm, 0x100000000ULL + (512ULL << 20) - 1), ==, 0x5a);
    g_assert_cmpint(ferry_vm_quit(vm), ==, 0);
}

typedef struct FileWatch {
    const char *path;
} FileWatch;

static bool file_gone(void *opaque)
{
    FileWatch *w = opaque;
    return !g_file_test(w->path, G_FILE_TEST_EXISTS);
}

static bool process_gone(void *opaque)
{
    pid_t pid = *(pid_t *)opaque;
    return kill(pid, 0) != 0;
}

/* -daemonize: the parent returns 0 once the VM is up; -pidfile names the child. */
static void test_daemonize_pidfile(void)
{
    FERRY_REQUIRE_ACCEL();
    FERRY_REQUIRE_GUEST(img, "bootsect");
    g_autofree char *pidfile = g_build_filename(ferry_tmp_dir(), "ferry.pid", NULL);
    g_autofree char *qmp = g_build_filename(ferry_tmp_dir(), "daemon-qmp.sock", NULL);

    g_autoptr(FerryRunResult) r = ferry_run(30000,
        "-nodefaults -display none -daemonize -pidfile %s -qmp unix:%s,server=on,wait=off "
        "-m 128 -drive file=%s,format=raw", pidfile, qmp, img);
    g_assert_cmpint(r->exit_code, ==, 0);

    g_autofree gchar *text = NULL;
    g_assert_true(g_file_get_contents(pidfile, &text, NULL, NULL));
    pid_t pid = (pid_t)g_ascii_strtoll(text, NULL, 10);
    g_assert_cmpint(pid, >, 0);
    g_assert_cmpint(kill(pid, 0), ==, 0);

    /* It survives its parent and stops on SIGTERM, removing its pid file. */
    g_assert_cmpint(kill(pid, SIGTERM), ==, 0);
    g_assert_true(ferry_wait_until(process_gone, &pid, 10000));
    FileWatch w = { pidfile };
    g_assert_true(ferry_wait_until(file_gone, &w, 10000));
}

/* SIGTERM and SIGINT shut the VM down cleanly with exit status 0. */
static void test_signals(void)
{
    FERRY_REQUIRE_ACCEL();
    FERRY_REQUIRE_GUEST(img, "bootsect");
    const int sigs[] = { SIGTERM, SIGINT };

    for (unsigned i = 0; i < G_N_ELEMENTS(sigs); i++) {
        FerryVM *vm = ferry_vm_start("-m 128 -drive file=%s,format=raw", img);
        ferry_serial_wait_marker(vm, "A", 30000);
        g_assert_cmpint(kill(ferry_vm_pid(vm), sigs[i]), ==, 0);
        g_autoptr(JsonNode) ev = ferry_qmp_wait_event(vm, "SHUTDOWN", 10000);
        g_assert_cmpstr(ferry_json_get_str(ev, "data.reason"), ==, "host-signal");
        g_assert_false(ferry_json_get_bool(ev, "data.guest"));
        g_assert_cmpint(ferry_vm_wait_exit(vm, 10000), ==, 0);
        ferry_vm_free(vm);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cmdline/version-help", test_version_and_help);
    for (unsigned i = 0; i < G_N_ELEMENTS(bad_options); i++) {
        g_autofree char *name = g_strdup_printf("/cmdline/bad/%u", i);
        g_test_add_data_func(name, &bad_options[i], test_bad_option);
    }
    g_test_add_func("/cmdline/bad-kernel", test_bad_kernel);
    g_test_add_func("/cmdline/bad-bootsector", test_bad_bootsector);
    g_test_add_func("/cmdline/accel-fallback", test_accel_fallback);
    g_test_add_func("/cmdline/machine-merge-memfd", test_machine_merge_memfd);
    g_test_add_func("/cmdline/file-backend", test_file_backend);
    g_test_add_func("/cmdline/high-ram", test_high_ram);
    g_test_add_func("/cmdline/daemonize-pidfile", test_daemonize_pidfile);
    g_test_add_func("/cmdline/signals", test_signals);
    return g_test_run();
}
