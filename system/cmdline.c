/*
 * Command-line parsing with QEMU's option names and shapes. Each option
 * has a row in one table: its name, whether it takes an argument, and the
 * function that stores it. Both "-opt" and "--opt" are accepted.
 */
#include <stdio.h>
#include <string.h>

#include "ferry-config.h"
#include "system/cmdline.h"

typedef bool (*CmdlineHandler)(FerryConfig *cfg, const char *arg, GError **errp);

typedef struct CmdlineOption {
    const char *name;
    bool has_arg;
    CmdlineHandler handler;
    const char *arg_name;
    const char *help;
} CmdlineOption;

#define CMDLINE_ERROR cmdline_error_quark()
G_DEFINE_QUARK(ferry-cmdline-error-quark, cmdline_error)

static bool take_opts(GPtrArray *list, const char *arg, const char *implied, GError **errp)
{
    OptList *o = opts_parse(arg, implied, errp);
    if (!o) {
        return false;
    }
    g_ptr_array_add(list, o);
    return true;
}

static bool opt_accel(FerryConfig *cfg, const char *arg, GError **errp)
{
    g_autoptr(OptList) o = opts_parse(arg, "accel", errp);
    if (!o) {
        return false;
    }
    const char *name = opts_get(o, "accel");
    if (!name || !*name) {
        g_set_error(errp, CMDLINE_ERROR, 0, "Parameter 'accel' is missing");
        return false;
    }
    if (strcmp(name, "help") == 0) {
        cfg->accel_help = true;
        return true;
    }
    /* Accelerator properties (e.g. kvm's dirty-ring-size) come in later issues. */
    if (opts_count(o) > 1) {
        g_set_error(errp, CMDLINE_ERROR, 0, "Property '%s.%s' not found", name,
                    opts_key_at(o, 1));
        return false;
    }
    g_ptr_array_add(cfg->accels, g_strdup(name));
    return true;
}

static bool opt_enable_kvm(FerryConfig *cfg, const char *arg, GError **errp)
{
    g_ptr_array_add(cfg->accels, g_strdup("kvm"));
    return true;
}

static bool opt_machine(FerryConfig *cfg, const char *arg, GError **errp)
{
    g_autoptr(OptList) o = opts_parse(arg, "type", errp);
    if (!o) {
        return false;
    }
    const char *type = opts_get(o, "type");
    if (type && strcmp(type, "help") == 0) {
        cfg->machine_help = true;
        return true;
    }
    opts_merge(cfg->machine, o);
    return true;
}

static bool opt_cpu(FerryConfig *cfg, const char *arg, GError **errp)
{
    g_auto(GStrv) parts = g_strsplit(arg, ",", -1);

    if (strcmp(parts[0], "help") == 0) {
        cfg->cpu_help = true;
        return true;
    }
    if (strcmp(parts[0], "host") != 0 && strcmp(parts[0], "max") != 0 &&
        strcmp(parts[0], "qemu64") != 0) {
        g_set_error(errp, CMDLINE_ERROR, 0,
                    "unable to find CPU model '%s' (Ferry offers 'host', 'max' and 'qemu64')",
                    parts[0]);
        return false;
    }
    if (parts[1]) {
        g_set_error(errp, CMDLINE_ERROR, 0,
                    "CPU feature '%s': feature flags are not supported; each model has a "
                    "fixed feature set (-cpu help)", parts[1]);
        return false;
    }
    g_free(cfg->cpu_model);
    cfg->cpu_model = g_strdup(parts[0]);
    return true;
}

static bool opt_smp(FerryConfig *cfg, const char *arg, GError **errp)
{
    g_autoptr(OptList) o = opts_parse(arg, "cpus", errp);
    uint64_t cpus, sockets, cores, threads, maxcpus;

    if (!o) {
        return false;
    }
    if (!opts_get_uint(o, "cpus", 0, &cpus, errp) ||
        !opts_get_uint(o, "sockets", 1, &sockets, errp) ||
        !opts_get_uint(o, "cores", 1, &cores, errp) ||
        !opts_get_uint(o, "threads", 1, &threads, errp) ||
        !opts_get_uint(o, "maxcpus", 0, &maxcpus, errp)) {
        return false;
    }
    if (!opts_check_all_used(o, errp)) {
        return false;
    }
    if (cpus == 0 && !opts_has(o, "cpus")) {
        cpus = sockets * cores * threads;
    }
    if (cpus < 1 || cpus > FERRY_MAX_CPUS) {
        g_set_error(errp, CMDLINE_ERROR, 0, "Invalid number of CPUs: %" G_GUINT64_FORMAT
                    " (Ferry supports 1 to %d)", cpus, FERRY_MAX_CPUS);
        return false;
    }
    if (maxcpus && maxcpus != cpus) {
        g_set_error(errp, CMDLINE_ERROR, 0, "CPU hotplug is not supported: maxcpus (%"
                    G_GUINT64_FORMAT ") must equal cpus (%" G_GUINT64_FORMAT ")",
                    maxcpus, cpus);
        return false;
    }
    cfg->smp = (int)cpus;
    return true;
}

static bool opt_m(FerryConfig *cfg, const char *arg, GError **errp)
{
    g_autoptr(OptList) o = opts_parse(arg, "size", errp);
    uint64_t size;

    if (!o) {
        return false;
    }
    const char *s = opts_get(o, "size");
    if (opts_get(o, "slots") || opts_get(o, "maxmem")) {
        g_set_error(errp, CMDLINE_ERROR, 0, "memory hotplug (slots, maxmem) is not supported");
        return false;
    }
    if (!opts_check_all_used(o, errp)) {
        return false;
    }
    if (!s || !parse_size(s, 1 << 20, &size)) {
        g_set_error(errp, CMDLINE_ERROR, 0,
                    "Parameter 'size' expects a size such as 512M or 4G, not '%s'", s ? s : "");
        return false;
    }
    if (size < (2ULL << 20)) {
        g_set_error(errp, CMDLINE_ERROR, 0, "RAM size too small (%" G_GUINT64_FORMAT
                    " bytes): at least 2 MiB", size);
        return false;
    }
    if (size % 4096) {
        g_set_error(errp, CMDLINE_ERROR, 0, "RAM size must be a multiple of 4 KiB");
        return false;
    }
    cfg->ram_size = size;
    cfg->ram_size_given = true;
    return true;
}

static bool opt_object(FerryConfig *cfg, const char *arg, GError **errp)
{
    return take_opts(cfg->objects, arg, "qom-type", errp);
}

static bool opt_drive(FerryConfig *cfg, const char *arg, GError **errp)
{
    return take_opts(cfg->drives, arg, NULL, errp);
}

static bool opt_device(FerryConfig *cfg, const char *arg, GError **errp)
{
    return take_opts(cfg->devices, arg, "driver", errp);
}

static bool opt_netdev(FerryConfig *cfg, const char *arg, GError **errp)
{
    return take_opts(cfg->netdevs, arg, "type", errp);
}

static bool opt_mon(FerryConfig *cfg, const char *arg, GError **errp)
{
    return take_opts(cfg->mons, arg, "chardev", errp);
}

static void replace_str(char **slot, const char *arg)
{
    g_free(*slot);
    *slot = g_strdup(arg);
}

static bool opt_kernel(FerryConfig *cfg, const char *arg, GError **errp)
{
    replace_str(&cfg->kernel, arg);
    return true;
}

static bool opt_initrd(FerryConfig *cfg, const char *arg, GError **errp)
{
    replace_str(&cfg->initrd, arg);
    return true;
}

static bool opt_append(FerryConfig *cfg, const char *arg, GError **errp)
{
    replace_str(&cfg->append, arg);
    return true;
}

static bool opt_serial(FerryConfig *cfg, const char *arg, GError **errp)
{
    if (cfg->serials->len >= 4) {
        g_set_error(errp, CMDLINE_ERROR, 0, "too many serial ports (at most 4)");
        return false;
    }
    g_ptr_array_add(cfg->serials, g_strdup(arg));
    return true;
}

static bool opt_chardev(FerryConfig *cfg, const char *arg, GError **errp)
{
    g_ptr_array_add(cfg->chardevs, g_strdup(arg));
    return true;
}

static bool add_qmp(FerryConfig *cfg, const char *arg, bool pretty)
{
    QmpSpec *q = g_new0(QmpSpec, 1);
    q->spec = g_strdup(arg);
    q->pretty = pretty;
    g_ptr_array_add(cfg->qmps, q);
    return true;
}

static bool opt_qmp(FerryConfig *cfg, const char *arg, GError **errp)
{
    return add_qmp(cfg, arg, false);
}

static bool opt_qmp_pretty(FerryConfig *cfg, const char *arg, GError **errp)
{
    return add_qmp(cfg, arg, true);
}

static bool opt_monitor(FerryConfig *cfg, const char *arg, GError **errp)
{
    g_ptr_array_add(cfg->monitors, g_strdup(arg));
    return true;
}

static bool opt_name(FerryConfig *cfg, const char *arg, GError **errp)
{
    g_autoptr(OptList) o = opts_parse(arg, "guest", errp);
    if (!o) {
        return false;
    }
    const char *name = opts_get(o, "guest");
    opts_get(o, "debug-threads");
    opts_get(o, "process");
    if (!opts_check_all_used(o, errp)) {
        return false;
    }
    replace_str(&cfg->name, name ? name : "");
    return true;
}

static bool opt_pidfile(FerryConfig *cfg, const char *arg, GError **errp)
{
    replace_str(&cfg->pidfile, arg);
    return true;
}

static bool opt_qtest(FerryConfig *cfg, const char *arg, GError **errp)
{
    replace_str(&cfg->qtest, arg);
    return true;
}

static bool opt_qtest_log(FerryConfig *cfg, const char *arg, GError **errp)
{
    replace_str(&cfg->qtest_log, arg);
    return true;
}

static bool opt_incoming(FerryConfig *cfg, const char *arg, GError **errp)
{
    replace_str(&cfg->incoming, arg);
    return true;
}

static bool opt_display(FerryConfig *cfg, const char *arg, GError **errp)
{
    g_auto(GStrv) parts = g_strsplit(arg, ",", 2);
    if (strcmp(parts[0], "none") == 0) {
        return true;
    }
    if (strcmp(parts[0], "nographic") == 0) {
        cfg->nographic = true;
        return true;
    }
    g_set_error(errp, CMDLINE_ERROR, 0,
                "Display '%s' is not available: Ferry has no graphical display "
                "(use -display none or -nographic)", parts[0]);
    return false;
}

#define FLAG_HANDLER(fn, field) \
    static bool fn(FerryConfig *cfg, const char *arg, GError **errp) \
    { \
        cfg->field = true; \
        return true; \
    }

FLAG_HANDLER(opt_nographic, nographic)
FLAG_HANDLER(opt_nodefaults, nodefaults)
FLAG_HANDLER(opt_S, start_paused)
FLAG_HANDLER(opt_daemonize, daemonize)
FLAG_HANDLER(opt_no_reboot, no_reboot)
FLAG_HANDLER(opt_no_shutdown, no_shutdown)
FLAG_HANDLER(opt_version, show_version)
FLAG_HANDLER(opt_help, show_help)

static const CmdlineOption cmdline_options[] = {
    { "h", false, opt_help, NULL, "print this help and exit" },
    { "help", false, opt_help, NULL, NULL },
    { "version", false, opt_version, NULL, "print the version and exit" },
    { "machine", true, opt_machine, "[type=]name[,memory-backend=id]",
      "select the machine (-machine help lists them)" },
    { "M", true, opt_machine, NULL, NULL },
    { "accel", true, opt_accel, "kvm|tcg|qtest",
      "accelerator (tcg: the software CPU); repeat to list fallbacks; default kvm, then tcg" },
    { "enable-kvm", false, opt_enable_kvm, NULL, "same as -accel kvm" },
    { "cpu", true, opt_cpu, "host|max|qemu64",
      "CPU model: host needs KVM; max is the default (-cpu help)" },
    { "smp", true, opt_smp, "[cpus=]n", "number of vCPUs, 1 to 64" },
    { "m", true, opt_m, "[size=]megs[K|M|G|T]", "guest RAM size (default 128M)" },
    { "object", true, opt_object,
      "memory-backend-{ram,memfd,file},id=id,size=size[,share=on|off][,mem-path=path]",
      "create a memory backend" },
    { "kernel", true, opt_kernel, "file", "Linux bzImage or ELF kernel with a PVH note" },
    { "initrd", true, opt_initrd, "file", "initial ram disk" },
    { "append", true, opt_append, "cmdline", "kernel command line" },
    { "drive", true, opt_drive, "file=path,format=raw[,if=virtio|none][,id=id]",
      "a raw disk image" },
    { "device", true, opt_device, "driver[,prop=value...]", "add a device" },
    { "netdev", true, opt_netdev, "user,id=id", "a network backend" },
    { "serial", true, opt_serial, "stdio|file:path|unix:path[,server=on,wait=off]|"
      "chardev:id|null|none", "serial port backend (up to 4)" },
    { "chardev", true, opt_chardev, "socket|file|stdio|null,id=id[,...]",
      "create a character device" },
    { "qmp", true, opt_qmp, "dev", "QMP monitor on dev (unix:path,server=on,wait=off; stdio)" },
    { "qmp-pretty", true, opt_qmp_pretty, "dev", "QMP monitor with pretty-printed JSON" },
    { "monitor", true, opt_monitor, "dev", "HMP monitor on dev" },
    { "mon", true, opt_mon, "[chardev=]id[,mode=readline|control][,pretty=on|off]",
      "a monitor on a chardev" },
    { "nographic", false, opt_nographic, NULL, "serial port on stdio, no display" },
    { "display", true, opt_display, "none", "display type (none only)" },
    { "nodefaults", false, opt_nodefaults, NULL, "create no default devices" },
    { "S", false, opt_S, NULL, "do not start the vCPUs (use 'cont')" },
    { "name", true, opt_name, "[guest=]name", "the VM's name (query-name)" },
    { "pidfile", true, opt_pidfile, "file", "write the process id to file" },
    { "daemonize", false, opt_daemonize, NULL, "detach once the VM is set up" },
    { "no-reboot", false, opt_no_reboot, NULL, "exit instead of rebooting" },
    { "no-shutdown", false, opt_no_shutdown, NULL, "stop instead of exiting on guest power-off" },
    { "qtest", true, opt_qtest, "dev", "qtest protocol on dev (unix:path connects)" },
    { "qtest-log", true, opt_qtest_log, "file", "log the qtest protocol to file" },
    { "incoming", true, opt_incoming, "uri|defer", "wait for an incoming migration" },
};

static const CmdlineOption *cmdline_find(const char *name)
{
    for (unsigned i = 0; i < G_N_ELEMENTS(cmdline_options); i++) {
        if (strcmp(cmdline_options[i].name, name) == 0) {
            return &cmdline_options[i];
        }
    }
    return NULL;
}

void ferry_cmdline_print_help(const char *argv0)
{
    printf("Ferry %s, a KVM virtual machine monitor built around live migration\n",
           FERRY_VERSION);
    printf("usage: %s [options]\n\n", argv0);
    for (unsigned i = 0; i < G_N_ELEMENTS(cmdline_options); i++) {
        const CmdlineOption *o = &cmdline_options[i];
        if (!o->help) {
            continue;
        }
        g_autofree char *left = g_strdup_printf("-%s%s%s", o->name, o->arg_name ? " " : "",
                                                o->arg_name ? o->arg_name : "");
        if (strlen(left) > 28) {
            printf("%s\n%-30s%s\n", left, "", o->help);
        } else {
            printf("%-30s%s\n", left, o->help);
        }
    }
    printf("\nDocumentation: docs/ in the source tree.\n");
}

FerryConfig *ferry_cmdline_parse(int argc, char **argv, GError **errp)
{
    g_autoptr(FerryConfig) cfg = g_new0(FerryConfig, 1);

    cfg->accels = g_ptr_array_new_with_free_func(g_free);
    cfg->machine = opts_parse("", NULL, NULL);
    cfg->smp = 1;
    cfg->ram_size = 128ULL << 20;
    cfg->objects = g_ptr_array_new_with_free_func((GDestroyNotify)opts_free);
    cfg->drives = g_ptr_array_new_with_free_func((GDestroyNotify)opts_free);
    cfg->devices = g_ptr_array_new_with_free_func((GDestroyNotify)opts_free);
    cfg->netdevs = g_ptr_array_new_with_free_func((GDestroyNotify)opts_free);
    cfg->mons = g_ptr_array_new_with_free_func((GDestroyNotify)opts_free);
    cfg->serials = g_ptr_array_new_with_free_func(g_free);
    cfg->chardevs = g_ptr_array_new_with_free_func(g_free);
    cfg->monitors = g_ptr_array_new_with_free_func(g_free);
    cfg->qmps = g_ptr_array_new();

    for (int i = 1; i < argc; i++) {
        const char *word = argv[i];
        g_autoptr(GError) local = NULL;

        if (word[0] != '-' || word[1] == '\0') {
            /* A bare word is a disk image, as QEMU's "qemu-system-x86_64 disk.img". */
            g_autofree char *spec = g_strdup_printf("file=%s,format=raw", word);
            g_ptr_array_add(cfg->drives, opts_parse(spec, NULL, NULL));
            continue;
        }
        const char *name = word + 1 + (word[1] == '-');
        const CmdlineOption *opt = cmdline_find(name);
        if (!opt) {
            g_set_error(errp, CMDLINE_ERROR, 0, "%s: invalid option", word);
            return NULL;
        }
        const char *arg = NULL;
        if (opt->has_arg) {
            if (i + 1 >= argc) {
                g_set_error(errp, CMDLINE_ERROR, 0, "%s: requires an argument", word);
                return NULL;
            }
            arg = argv[++i];
        }
        if (!opt->handler(cfg, arg, &local)) {
            g_set_error(errp, CMDLINE_ERROR, 0, "%s%s%s: %s", word, arg ? " " : "",
                        arg ? arg : "", local ? local->message : "invalid argument");
            return NULL;
        }
    }
    return g_steal_pointer(&cfg);
}

static void qmp_spec_free(gpointer p)
{
    QmpSpec *q = p;
    g_free(q->spec);
    g_free(q);
}

void ferry_config_free(FerryConfig *cfg)
{
    if (!cfg) {
        return;
    }
    g_ptr_array_unref(cfg->accels);
    opts_free(cfg->machine);
    g_free(cfg->cpu_model);
    g_ptr_array_unref(cfg->objects);
    g_ptr_array_unref(cfg->drives);
    g_ptr_array_unref(cfg->devices);
    g_ptr_array_unref(cfg->netdevs);
    g_ptr_array_unref(cfg->mons);
    g_ptr_array_unref(cfg->serials);
    g_ptr_array_unref(cfg->chardevs);
    g_ptr_array_unref(cfg->monitors);
    g_ptr_array_set_free_func(cfg->qmps, qmp_spec_free);
    g_ptr_array_unref(cfg->qmps);
    g_free(cfg->kernel);
    g_free(cfg->initrd);
    g_free(cfg->append);
    g_free(cfg->name);
    g_free(cfg->pidfile);
    g_free(cfg->qtest);
    g_free(cfg->qtest_log);
    g_free(cfg->incoming);
    g_free(cfg);
}
