/*
 * ferry-system-x86_64: command line -> machine -> main loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib-unix.h>

#include "ferry-config.h"
#include "system/accel.h"
#include "chardev/char.h"
#include "hw/virtio/virtio-devices.h"
#include "hw/x86/pc.h"
#include "migration/migration.h"
#include "migration/options.h"
#include "system/cmdline.h"
#include "system/cpus.h"
#include "system/main-loop.h"
#include "system/memory-backend.h"
#include "system/monitor.h"
#include "system/qtest.h"
#include "system/runstate.h"

static const char *prog_name = "ferry-system-x86_64";
static char *pidfile_path;
static int daemon_pipe = -1;

G_GNUC_PRINTF(1, 2) G_GNUC_NORETURN
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\n", prog_name, msg);
    g_free(msg);        /* exit() runs no g_autofree */
    if (daemon_pipe >= 0) {
        /* Tell the waiting parent that setup failed. */
        char status = 1;
        if (write(daemon_pipe, &status, 1) < 0) {
            /* Nothing more to do: the parent sees EOF. */
        }
    }
    exit(1);
}

static void print_version(void)
{
    printf("Ferry emulator version %s\n", FERRY_VERSION);
    printf("A virtual machine monitor (KVM or its own software CPU) with a QEMU-compatible interface\n");
}

static gboolean on_terminate_signal(gpointer data)
{
    int sig = GPOINTER_TO_INT(data);
    fprintf(stderr, "%s: terminating on signal %d\n", prog_name, sig);
    system_shutdown_request(SHUTDOWN_CAUSE_HOST_SIGNAL);
    return G_SOURCE_CONTINUE;
}

/*
 * Chooses the accelerator: the first listed (-accel, then -machine
 * accel=a:b) that works here; kvm then tcg when none is named.
 */
static void setup_accelerator(FerryConfig *cfg)
{
    const char *legacy = opts_get(cfg->machine, "accel");
    g_autoptr(GPtrArray) wanted = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) err = NULL;

    for (guint i = 0; i < cfg->accels->len; i++) {
        g_ptr_array_add(wanted, g_strdup(g_ptr_array_index(cfg->accels, i)));
    }
    if (legacy) {
        g_auto(GStrv) names = g_strsplit(legacy, ":", -1);
        for (int i = 0; names[i]; i++) {
            g_ptr_array_add(wanted, g_strdup(names[i]));
        }
    }
    AccelCPUConfig acfg = { .model = cfg->cpu_model, .nr_cpus = cfg->smp };
    if (!accel_setup(wanted, &acfg, &err)) {
        die("%s", err->message);
    }
}

/* Refuse an unknown accelerator name before anything starts. */
static void check_accelerator_names(FerryConfig *cfg)
{
    const char *legacy = opts_get(cfg->machine, "accel");
    g_auto(GStrv) legacy_names = g_strsplit(legacy ? legacy : "", ":", -1);

    for (guint i = 0; i < cfg->accels->len; i++) {
        const char *name = g_ptr_array_index(cfg->accels, i);
        if (!accel_name_known(name)) {
            die("-accel %s: invalid accelerator %s (kvm, tcg, qtest)", name, name);
        }
    }
    for (int i = 0; legacy_names[i]; i++) {
        if (!*legacy_names[i]) {
            die("-machine accel=%s: empty accelerator name", legacy);
        }
        if (!accel_name_known(legacy_names[i])) {
            die("-machine accel=%s: invalid accelerator %s (kvm, tcg, qtest)", legacy,
                legacy_names[i]);
        }
    }
}

static const char *drive_boot_path(FerryConfig *cfg)
{
    for (guint i = 0; i < cfg->drives->len; i++) {
        OptList *d = g_ptr_array_index(cfg->drives, i);
        const char *file = opts_get(d, "file");
        const char *format = opts_get(d, "format");
        const char *iface = opts_get(d, "if");
        opts_get(d, "id");
        opts_get(d, "cache");
        opts_get(d, "media");
        opts_get(d, "readonly");
        opts_get(d, "index");
        g_autoptr(GError) err = NULL;
        if (!opts_check_all_used(d, &err)) {
            die("-drive: %s", err->message);
        }
        if (format && strcmp(format, "raw") != 0) {
            die("-drive file=%s,format=%s: format '%s' is not supported (raw only)",
                file ? file : "", format, format);
        }
        if (iface && strcmp(iface, "virtio") != 0 && strcmp(iface, "none") != 0 &&
            strcmp(iface, "ide") != 0) {
            die("-drive if=%s: interface '%s' is not supported (virtio, none)", iface, iface);
        }
        if (file && access(file, R_OK) != 0) {
            die("-drive file=%s: Could not open '%s': %s", file, file, g_strerror(errno));
        }
        if (file) {
            return file;
        }
    }
    return NULL;
}

static bool stdio_is_claimed(FerryConfig *cfg)
{
    for (guint i = 0; i < cfg->qmps->len; i++) {
        QmpSpec *q = g_ptr_array_index(cfg->qmps, i);
        if (strcmp(q->spec, "stdio") == 0) {
            return true;
        }
    }
    for (guint i = 0; i < cfg->monitors->len; i++) {
        if (strcmp(g_ptr_array_index(cfg->monitors, i), "stdio") == 0) {
            return true;
        }
    }
    for (guint i = 0; i < cfg->serials->len; i++) {
        if (strcmp(g_ptr_array_index(cfg->serials, i), "stdio") == 0) {
            return true;
        }
    }
    return false;
}

static void setup_serials(FerryConfig *cfg, PCMachineConfig *mc)
{
    g_autoptr(GPtrArray) specs = g_ptr_array_new();

    for (guint i = 0; i < cfg->serials->len; i++) {
        g_ptr_array_add(specs, g_ptr_array_index(cfg->serials, i));
    }
    if (specs->len == 0 && !cfg->nodefaults) {
        /*
         * QEMU gives serial0 a virtual console; Ferry has no display, so the
         * console is stdio when nothing else uses it (and with -nographic).
         */
        if (cfg->nographic || (!stdio_is_claimed(cfg) && !cfg->daemonize)) {
            g_ptr_array_add(specs, "stdio");
        }
    } else if (specs->len == 0 && cfg->nographic) {
        g_ptr_array_add(specs, "stdio");
    }
    for (guint i = 0; i < specs->len && i < PC_MAX_SERIAL; i++) {
        const char *spec = g_ptr_array_index(specs, i);
        g_autofree char *id = g_strdup_printf("serial%u", i);
        g_autoptr(GError) err = NULL;
        mc->serial[i] = chardev_new_from_legacy(spec, id, &err);
        if (err) {
            die("-serial %s: %s", spec, err->message);
        }
    }
}

static void setup_monitors(FerryConfig *cfg)
{
    for (guint i = 0; i < cfg->qmps->len; i++) {
        QmpSpec *q = g_ptr_array_index(cfg->qmps, i);
        g_autofree char *id = g_strdup_printf("compat_monitor%u", i);
        g_autoptr(GError) err = NULL;
        Chardev *chr = chardev_new_from_legacy(q->spec, id, &err);
        if (!chr || !monitor_new_qmp(chr, q->pretty, &err)) {
            die("-qmp %s: %s", q->spec, err ? err->message : "no such device");
        }
    }
    for (guint i = 0; i < cfg->monitors->len; i++) {
        const char *spec = g_ptr_array_index(cfg->monitors, i);
        g_autofree char *id = g_strdup_printf("hmp_monitor%u", i);
        g_autoptr(GError) err = NULL;
        if (strcmp(spec, "none") == 0) {
            continue;
        }
        Chardev *chr = chardev_new_from_legacy(spec, id, &err);
        if (!chr || !monitor_new_hmp(chr, &err)) {
            die("-monitor %s: %s", spec, err ? err->message : "no such device");
        }
    }
    for (guint i = 0; i < cfg->mons->len; i++) {
        OptList *o = g_ptr_array_index(cfg->mons, i);
        const char *chr_id = opts_get(o, "chardev");
        const char *mode = opts_get(o, "mode");
        g_autoptr(GError) err = NULL;
        bool pretty = opts_get_bool(o, "pretty", false, &err);
        if (err || !opts_check_all_used(o, &err)) {
            die("-mon: %s", err->message);
        }
        Chardev *chr = chr_id ? chardev_find(chr_id) : NULL;
        if (!chr) {
            die("-mon chardev=%s: chardev '%s' not found", chr_id ? chr_id : "",
                chr_id ? chr_id : "");
        }
        bool ok;
        if (!mode || strcmp(mode, "readline") == 0) {
            ok = monitor_new_hmp(chr, &err);
        } else if (strcmp(mode, "control") == 0) {
            ok = monitor_new_qmp(chr, pretty, &err);
        } else {
            die("-mon mode=%s: Parameter 'mode' does not accept value '%s' "
                "(readline, control)", mode, mode);
        }
        if (!ok) {
            die("-mon chardev=%s: %s", chr_id, err->message);
        }
    }
}

static void write_pidfile(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        die("-pidfile %s: cannot open pid file: %s", path, g_strerror(errno));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        die("-pidfile %s: the pid file is locked by another process", path);
    }
    g_autofree char *pid = g_strdup_printf("%d\n", getpid());
    if (ftruncate(fd, 0) < 0 || write(fd, pid, strlen(pid)) != (ssize_t)strlen(pid)) {
        die("-pidfile %s: cannot write: %s", path, g_strerror(errno));
    }
    /* The descriptor stays open to hold the lock until exit. */
    pidfile_path = g_strdup(path);
}

/* Fork; the parent waits for the child to report that setup succeeded. */
static void daemonize_start(void)
{
    int fds[2];
    if (pipe(fds) < 0) {
        die("-daemonize: pipe: %s", g_strerror(errno));
    }
    pid_t pid = fork();
    if (pid < 0) {
        die("-daemonize: fork: %s", g_strerror(errno));
    }
    if (pid > 0) {
        char status = 1;
        close(fds[1]);
        ssize_t n;
        do {
            n = read(fds[0], &status, 1);
        } while (n < 0 && errno == EINTR);
        _exit(n == 1 && status == 0 ? 0 : 1);
    }
    close(fds[0]);
    daemon_pipe = fds[1];
    setsid();
}

static void daemonize_finish(void)
{
    int null = open("/dev/null", O_RDWR);
    char status = 0;

    if (chdir("/") < 0) {
        /* Staying in the old directory is harmless. */
    }
    if (write(daemon_pipe, &status, 1) < 0) {
        /* The parent is gone; carry on. */
    }
    close(daemon_pipe);
    daemon_pipe = -1;
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    close(null);
}

int main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    PCMachineConfig mc = { 0 };

    if (argv[0] && *argv[0]) {
        prog_name = g_path_get_basename(argv[0]);
    }
    g_autoptr(FerryConfig) cfg = ferry_cmdline_parse(argc, argv, &err);
    if (!cfg) {
        die("%s", err->message);
    }
    if (cfg->show_help) {
        ferry_cmdline_print_help(prog_name);
        return 0;
    }
    if (cfg->show_version) {
        print_version();
        return 0;
    }
    if (cfg->machine_help) {
        pc_machine_print_types();
        return 0;
    }
    if (cfg->cpu_help) {
        printf("Available CPUs:\n"
               "  host    KVM processor with all supported host features (KVM only)\n"
               "  max     KVM: same as host; tcg: every feature the software CPU has\n"
               "  qemu64  tcg: the software CPU's baseline x86-64 model\n");
        return 0;
    }
    if (cfg->accel_help) {
        printf("Accelerators supported in QEMU binary:\n");
        for (const char *const *n = accel_names(); *n; n++) {
            printf("%s\n", *n);
        }
        return 0;
    }

    const char *mtype = opts_get(cfg->machine, "type");
    if (mtype && !pc_machine_type_known(mtype)) {
        die("unsupported machine type '%s' (use -machine help to list supported machines)",
            mtype);
    }
    opts_get(cfg->machine, "accel");
    opts_get(cfg->machine, "memory-backend");
    if (!opts_check_all_used(cfg->machine, &err)) {
        die("-machine: %s", err->message);
    }
    check_accelerator_names(cfg);
    if (cfg->daemonize && (cfg->nographic || stdio_is_claimed(cfg))) {
        die("-daemonize: cannot be used with -nographic or stdio character devices");
    }
    if (cfg->kernel && access(cfg->kernel, R_OK) != 0) {
        die("-kernel %s: could not open kernel file: %s", cfg->kernel, g_strerror(errno));
    }
    if (cfg->initrd && !cfg->kernel) {
        die("-initrd %s: -initrd only makes sense with -kernel", cfg->initrd);
    }
    if (cfg->append && !cfg->kernel) {
        die("-append only makes sense with -kernel");
    }
    if (cfg->initrd && access(cfg->initrd, R_OK) != 0) {
        die("-initrd %s: could not open initrd file: %s", cfg->initrd, g_strerror(errno));
    }
    mc.boot_drive = drive_boot_path(cfg);

    runstate_no_reboot = cfg->no_reboot;
    runstate_no_shutdown = cfg->no_shutdown;

    if (cfg->daemonize) {
        daemonize_start();
    }

    main_loop_init();
    bql_lock();

    for (guint i = 0; i < cfg->chardevs->len; i++) {
        const char *spec = g_ptr_array_index(cfg->chardevs, i);
        if (!chardev_new_from_opts(spec, &err)) {
            die("-chardev %s: %s", spec, err->message);
        }
    }
    /* Devices first: Linux learns of virtio-mmio devices from its command line. */
    g_autoptr(GString) devices_cmdline = g_string_new(NULL);
    if (!virtio_devices_create(cfg, devices_cmdline, &err)) {
        die("%s", err->message);
    }
    g_autofree char *append = NULL;
    if (cfg->kernel && devices_cmdline->len) {
        append = g_strdup_printf("%s%s%s", cfg->append ? cfg->append : "",
                                 cfg->append && *cfg->append ? " " : "", devices_cmdline->str);
    } else {
        append = g_strdup(cfg->append);
    }

    mc.smp = cfg->smp;
    mc.kernel = cfg->kernel;
    mc.initrd = cfg->initrd;
    mc.append = append;
    mc.ram = memory_backend_create_machine_ram(cfg, &err);
    if (!mc.ram) {
        die("%s", err->message);
    }
    setup_serials(cfg, &mc);
    /* Monitors first: a bad -mon is reported before the machine says anything. */
    if (cfg->name) {
        monitor_set_vm_name(cfg->name);
    }
    monitor_register_core_commands();
    migration_monitor_register();
    setup_monitors(cfg);
    /* RAM registers first, so its sections lead the stream. */
    migration_init();
    /* Last, once every option has been checked: this may open /dev/kvm. */
    setup_accelerator(cfg);
    if (!pc_machine_init(&mc, &err)) {
        die("%s", err->message);
    }

    if (cfg->qtest) {
        Chardev *chr = chardev_new_from_legacy(cfg->qtest, "qtest", &err);
        if (!chr || !qtest_server_init(chr, cfg->qtest_log, &err)) {
            die("-qtest %s: %s", cfg->qtest, err ? err->message : "no such device");
        }
    }

    if (cfg->incoming) {
        migration_autostart = !cfg->start_paused;
        if (!migration_incoming_init(cfg->incoming, &err)) {
            die("-incoming %s: %s", cfg->incoming, err->message);
        }
    }

    g_unix_signal_add(SIGTERM, on_terminate_signal, GINT_TO_POINTER(SIGTERM));
    g_unix_signal_add(SIGINT, on_terminate_signal, GINT_TO_POINTER(SIGINT));
    g_unix_signal_add(SIGHUP, on_terminate_signal, GINT_TO_POINTER(SIGHUP));
    signal(SIGPIPE, SIG_IGN);

    if (cfg->pidfile) {
        write_pidfile(cfg->pidfile);
    }
    if (cfg->daemonize) {
        daemonize_finish();
    }

    if (cfg->incoming) {
        /* Waiting for the stream (runstate inmigrate); it decides what runs. */
    } else if (cfg->start_paused) {
        runstate_set(RUN_STATE_PRELAUNCH);
    } else if (!vm_start(&err)) {
        die("%s", err->message);
    }

    int status = main_loop_run();

    cpus_pause_all();
    cpus_destroy();
    chardev_cleanup_all();
    if (pidfile_path) {
        unlink(pidfile_path);
    }
    bql_unlock();
    return status;
}
