/*
 * The HMP commands of migration, each a thin layer over its QMP command:
 * migrate (waiting with progress lines unless -d), migrate_incoming,
 * migrate_cancel, migrate_continue, migrate_set_capability,
 * migrate_set_parameter, getfd, closefd, and "info migrate",
 * "info migrate_capabilities", "info migrate_parameters" in QEMU's
 * layouts (info migrate: QEMU 10.1's grouped form).
 */
#include <inttypes.h>
#include <string.h>

#include "migration/migration.h"
#include "migration/options.h"
#include "system/main-loop.h"
#include "system/monitor.h"
#include "system/monitor/monitor-internal.h"

#define MIGRATE_PROGRESS_MS 500

/* ---- argument parsing (QEMU's HMP conventions) ---- */

/* The next word, or a "quoted string" with \n \r \\ \' \" escapes; false at the end. */
static bool hmp_arg(const char **pp, char **out)
{
    const char *p = *pp;
    GString *s;

    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (!*p) {
        *pp = p;
        return false;
    }
    s = g_string_new(NULL);
    if (*p == '"') {
        p++;
        while (*p && *p != '"') {
            if (*p == '\\' && p[1]) {
                p++;
                switch (*p) {
                case 'n':
                    g_string_append_c(s, '\n');
                    break;
                case 'r':
                    g_string_append_c(s, '\r');
                    break;
                default:
                    g_string_append_c(s, *p);
                    break;
                }
            } else {
                g_string_append_c(s, *p);
            }
            p++;
        }
        if (*p == '"') {
            p++;
        }
    } else {
        while (*p && *p != ' ' && *p != '\t') {
            g_string_append_c(s, *p++);
        }
    }
    *pp = p;
    *out = g_string_free(s, FALSE);
    return true;
}

static void hmp_try_help(const char *cmd, GString *out)
{
    g_string_append_printf(out, "Try \"help %s\" for more information\n", cmd);
}

/* Exactly @n words, else QEMU's complaint and its "Try help" line. */
static char **hmp_args_exact(const char *cmd, const char *args, int n, GString *out)
{
    g_auto(GStrv) words = g_new0(char *, n + 1);
    const char *p = args;
    char *extra = NULL;

    for (int i = 0; i < n; i++) {
        if (!hmp_arg(&p, &words[i])) {
            g_string_append_printf(out, "%s: string expected\n", cmd);
            hmp_try_help(cmd, out);
            return NULL;
        }
    }
    if (hmp_arg(&p, &extra)) {
        g_free(extra);
        g_string_append_printf(out, "%s: extraneous characters at the end of line\n", cmd);
        hmp_try_help(cmd, out);
        return NULL;
    }
    return g_steal_pointer(&words);
}

/* ---- sizes and members for the info commands ---- */

/* QEMU's size_to_str(): three significant digits, binary units ("4.02 GiB"). */
static char *hmp_size_str(uint64_t val)
{
    static const char *const suffixes[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei" };
    int i = 0;

    /* The next unit once the value reaches 1000 of the current one. */
    while (i < 6 && val >= (1000ULL << (10 * i))) {
        i++;
    }
    return g_strdup_printf("%0.3g %sB", (double)val / (double)(1ULL << (10 * i)), suffixes[i]);
}

/* One decimal, binary units, for the progress line ("1.2 GiB"). */
static char *hmp_size_short(uint64_t val)
{
    static const char *const suffixes[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    int i = 0;

    while (i < 6 && val >= (1024ULL << (10 * i))) {
        i++;
    }
    if (i == 0) {
        return g_strdup_printf("%" PRIu64 " B", val);
    }
    return g_strdup_printf("%.1f %s", (double)val / (double)(1ULL << (10 * i)), suffixes[i]);
}

/* Decimal rate ("4.1 GB/s"), as network speeds are written. */
static char *hmp_rate_str(double bytes_per_s)
{
    static const char *const units[] = { "B/s", "KB/s", "MB/s", "GB/s", "TB/s" };
    int i = 0;

    while (i < 4 && bytes_per_s >= 1000.0) {
        bytes_per_s /= 1000.0;
        i++;
    }
    return g_strdup_printf(i ? "%.1f %s" : "%.0f %s", bytes_per_s, units[i]);
}

static gint64 obj_int(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);

    return n && JSON_NODE_HOLDS_VALUE(n) ? json_node_get_int(n) : 0;
}

static double obj_double(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);

    return n && JSON_NODE_HOLDS_VALUE(n) ? json_node_get_double(n) : 0.0;
}

static const char *obj_str(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);

    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
        return NULL;
    }
    return json_node_get_string(n);
}

static bool obj_bool(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);

    return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_boolean(n);
}

/* "@prefix<value>@suffix", for a member QEMU prints only when the reply has it. */
static void hmp_append_int_if_present(GString *out, JsonObject *o, const char *name,
                                      const char *prefix, const char *suffix)
{
    if (json_object_has_member(o, name)) {
        g_string_append_printf(out, "%s%" G_GINT64_FORMAT "%s", prefix, obj_int(o, name),
                               suffix);
    }
}

/* "@prefix<value>", for a counter QEMU prints only when it is not zero. */
static void hmp_append_int_if_nonzero(GString *out, JsonObject *o, const char *name,
                                      const char *prefix)
{
    gint64 value = obj_int(o, name);

    if (value) {
        g_string_append_printf(out, "%s%" G_GINT64_FORMAT, prefix, value);
    }
}

/* ---- info migrate ---- */

static void hmp_socket_uri(JsonObject *sa, GString *out)
{
    const char *type = obj_str(sa, "type");

    if (!g_strcmp0(type, "inet")) {
        g_string_append_printf(out, "tcp:%s:%s", obj_str(sa, "host"), obj_str(sa, "port"));
    } else if (!g_strcmp0(type, "unix")) {
        g_string_append_printf(out, "unix:%s", obj_str(sa, "path"));
    } else if (!g_strcmp0(type, "fd")) {
        g_string_append_printf(out, "fd:%s", obj_str(sa, "str"));
    } else if (!g_strcmp0(type, "vsock")) {
        g_string_append_printf(out, "vsock:%s:%s", obj_str(sa, "cid"), obj_str(sa, "port"));
    }
}

static void hmp_info_migrate_ram(JsonObject *ram, JsonObject *info, GString *out)
{
    g_autofree char *pagesize = hmp_size_str(obj_int(ram, "page-size"));
    g_autofree char *total = hmp_size_str(obj_int(ram, "total"));
    g_autofree char *transferred = hmp_size_str(obj_int(ram, "transferred"));
    g_autofree char *remaining = hmp_size_str(obj_int(ram, "remaining"));
    g_autofree char *precopy = hmp_size_str(obj_int(ram, "precopy-bytes"));
    g_autofree char *multifd = hmp_size_str(obj_int(ram, "multifd-bytes"));
    g_autofree char *postcopy = hmp_size_str(obj_int(ram, "postcopy-bytes"));

    g_string_append(out, "RAM info:\n");
    g_string_append_printf(out, "  Throughput (Mbps): \t%0.2f\n", obj_double(ram, "mbps"));
    g_string_append_printf(out, "  Sizes: \t\tpagesize=%s, total=%s\n", pagesize, total);
    g_string_append_printf(out, "  Transfers: \t\ttransferred=%s, remain=%s\n", transferred,
                           remaining);
    g_string_append_printf(out, "    Channels: \t\tprecopy=%s, multifd=%s, postcopy=%s",
                           precopy, multifd, postcopy);
    if (json_object_has_member(info, "vfio")) {
        JsonObject *vfio = json_object_get_object_member(info, "vfio");
        g_autofree char *v = hmp_size_str(obj_int(vfio, "transferred"));
        g_string_append_printf(out, ", vfio=%s", v);
    }
    g_string_append_c(out, '\n');
    g_string_append_printf(out, "    Page Types: \tnormal=%" G_GINT64_FORMAT
                           ", zero=%" G_GINT64_FORMAT "\n",
                           obj_int(ram, "normal"), obj_int(ram, "duplicate"));
    g_string_append_printf(out, "  Page Rates (pps): \ttransfer=%" G_GINT64_FORMAT,
                           obj_int(ram, "pages-per-second"));
    hmp_append_int_if_nonzero(out, ram, "dirty-pages-rate", ", dirty=");
    g_string_append_c(out, '\n');
    g_string_append_printf(out, "  Others: \t\tdirty_syncs=%" G_GINT64_FORMAT,
                           obj_int(ram, "dirty-sync-count"));
    hmp_append_int_if_nonzero(out, ram, "postcopy-requests", ", postcopy_req=");
    hmp_append_int_if_nonzero(out, ram, "downtime-bytes", ", downtime_bytes=");
    hmp_append_int_if_nonzero(out, ram, "dirty-sync-missed-zero-copy", ", zerocopy_fallbacks=");
    g_string_append_c(out, '\n');
}

/* What "-a" adds beyond the summary. */
static void hmp_info_migrate_all(JsonObject *info, GString *out)
{
    if (json_object_has_member(info, "xbzrle-cache")) {
        JsonObject *x = json_object_get_object_member(info, "xbzrle-cache");
        g_string_append_printf(out, "XBZRLE: size=%" G_GINT64_FORMAT
                               ", transferred=%" G_GINT64_FORMAT
                               ", pages=%" G_GINT64_FORMAT ", miss=%" G_GINT64_FORMAT "\n"
                               "  miss_rate=%0.2f, encode_rate=%0.2f, overflow=%"
                               G_GINT64_FORMAT "\n",
                               obj_int(x, "cache-size"), obj_int(x, "bytes"),
                               obj_int(x, "pages"), obj_int(x, "cache-miss"),
                               obj_double(x, "cache-miss-rate"),
                               obj_double(x, "encoding-rate"), obj_int(x, "overflow"));
    }
    hmp_append_int_if_present(out, info, "cpu-throttle-percentage", "CPU Throttle (%): ", "\n");
    hmp_append_int_if_present(out, info, "dirty-limit-throttle-time-per-round",
                              "Dirty-limit Throttle (us): ", "\n");
    hmp_append_int_if_present(out, info, "dirty-limit-ring-full-time",
                              "Dirty-limit Ring Full (us): ", "\n");
    hmp_append_int_if_present(out, info, "postcopy-blocktime", "Postcopy Blocktime (ms): ",
                              "\n");
    if (json_object_has_member(info, "postcopy-vcpu-blocktime")) {
        JsonArray *a = json_object_get_array_member(info, "postcopy-vcpu-blocktime");
        g_string_append(out, "Postcopy vCPU Blocktime (ms):\n [");
        for (guint i = 0; i < json_array_get_length(a); i++) {
            g_string_append_printf(out, "%s%" G_GINT64_FORMAT, i ? ", " : "",
                                   json_array_get_int_element(a, i));
        }
        g_string_append(out, "]\n");
    }
}

static void hmp_info_migrate(const char *args, GString *out)
{
    g_autoptr(JsonNode) ret = NULL;
    g_autofree char *flag = NULL;
    bool all = false;
    const char *p = args;
    JsonObject *info;

    if (hmp_arg(&p, &flag)) {
        if (strcmp(flag, "-a") != 0) {
            g_string_append_printf(out, "info migrate: unsupported option %s\n", flag);
            hmp_try_help("info migrate", out);
            return;
        }
        all = true;
    }
    ret = hmp_run_qmp("query-migrate", NULL, out);
    if (!ret) {
        return;
    }
    info = json_node_get_object(ret);

    if (json_object_has_member(info, "blocked-reasons")) {
        JsonArray *r = json_object_get_array_member(info, "blocked-reasons");
        g_string_append(out, "Outgoing migration blocked:\n");
        for (guint i = 0; i < json_array_get_length(r); i++) {
            g_string_append_printf(out, "  %s\n", json_array_get_string_element(r, i));
        }
    }
    if (obj_str(info, "status")) {
        const char *status = obj_str(info, "status");
        g_string_append_printf(out, "Status: \t\t%s", status);
        if (!strcmp(status, "failed") && obj_str(info, "error-desc")) {
            g_string_append_printf(out, " (%s)", obj_str(info, "error-desc"));
        }
        g_string_append_c(out, '\n');
        if (obj_int(info, "total-time")) {
            g_string_append_printf(out, "Time (ms): \t\ttotal=%" G_GINT64_FORMAT,
                                   obj_int(info, "total-time"));
            hmp_append_int_if_present(out, info, "setup-time", ", setup=", "");
            hmp_append_int_if_present(out, info, "expected-downtime", ", exp_down=", "");
            hmp_append_int_if_present(out, info, "downtime", ", down=", "");
            g_string_append_c(out, '\n');
        }
    }
    if (json_object_has_member(info, "socket-address")) {
        JsonArray *a = json_object_get_array_member(info, "socket-address");
        g_string_append(out, "Sockets: [\n");
        for (guint i = 0; i < json_array_get_length(a); i++) {
            g_string_append_c(out, '\t');
            hmp_socket_uri(json_array_get_object_element(a, i), out);
            g_string_append_c(out, '\n');
        }
        g_string_append(out, "]\n");
    }
    if (json_object_has_member(info, "ram")) {
        hmp_info_migrate_ram(json_object_get_object_member(info, "ram"), info, out);
    }
    if (all) {
        hmp_info_migrate_all(info, out);
    }
}

static void hmp_info_migrate_capabilities(const char *args, GString *out)
{
    g_autoptr(JsonNode) ret = hmp_run_qmp("query-migrate-capabilities", NULL, out);
    JsonArray *list;

    if (!ret) {
        return;
    }
    list = json_node_get_array(ret);
    for (guint i = 0; i < json_array_get_length(list); i++) {
        JsonObject *c = json_array_get_object_element(list, i);
        g_string_append_printf(out, "%s: %s\n", obj_str(c, "capability"),
                               obj_bool(c, "state") ? "on" : "off");
    }
}

typedef enum HmpParamForm {
    FORM_INT,       /* "name: N" */
    FORM_UNIT,      /* "name: N unit" */
    FORM_ONOFF,     /* "name: on|off" */
    FORM_QUOTED,    /* "name: 'str'" */
    FORM_NAME,      /* "name: value" */
} HmpParamForm;

static void hmp_info_migrate_parameters(const char *args, GString *out)
{
    /* QEMU's layout: its order and units, which differ from query order. */
    static const struct {
        const char *name;
        HmpParamForm form;
        const char *unit;
    } rows[] = {
        { "announce-initial", FORM_UNIT, "ms" },
        { "announce-max", FORM_UNIT, "ms" },
        { "announce-rounds", FORM_INT },
        { "announce-step", FORM_UNIT, "ms" },
        { "throttle-trigger-threshold", FORM_INT },
        { "cpu-throttle-initial", FORM_INT },
        { "cpu-throttle-increment", FORM_INT },
        { "cpu-throttle-tailslow", FORM_ONOFF },
        { "max-cpu-throttle", FORM_INT },
        { "tls-creds", FORM_QUOTED },
        { "tls-hostname", FORM_QUOTED },
        { "max-bandwidth", FORM_UNIT, "bytes/second" },
        { "avail-switchover-bandwidth", FORM_UNIT, "bytes/second" },
        { "downtime-limit", FORM_UNIT, "ms" },
        { "x-checkpoint-delay", FORM_UNIT, "ms" },
        { "multifd-channels", FORM_INT },
        { "multifd-compression", FORM_NAME },
        { "multifd-zlib-level", FORM_INT },
        { "multifd-zstd-level", FORM_INT },
        { "zero-page-detection", FORM_NAME },
        { "xbzrle-cache-size", FORM_UNIT, "bytes" },
        { "max-postcopy-bandwidth", FORM_INT },
        { "tls-authz", FORM_QUOTED },
        { "block-bitmap-mapping", FORM_NAME },     /* only when set; printed below */
        { "x-vcpu-dirty-limit-period", FORM_UNIT, "ms" },
        { "vcpu-dirty-limit", FORM_UNIT, "MB/s" },
        { "mode", FORM_NAME },
        { "direct-io", FORM_ONOFF },
    };
    g_autoptr(JsonNode) ret = hmp_run_qmp("query-migrate-parameters", NULL, out);
    JsonObject *p;

    if (!ret) {
        return;
    }
    p = json_node_get_object(ret);
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        const char *name = rows[i].name;

        if (!json_object_has_member(p, name)) {
            continue;
        }
        if (!strcmp(name, "block-bitmap-mapping")) {
            JsonArray *nodes = json_object_get_array_member(p, name);
            g_string_append_printf(out, "%s:\n", name);
            for (guint n = 0; n < json_array_get_length(nodes); n++) {
                JsonObject *node = json_array_get_object_element(nodes, n);
                JsonArray *bitmaps = json_object_get_array_member(node, "bitmaps");
                g_string_append_printf(out, "  '%s' -> '%s'\n", obj_str(node, "node-name"),
                                       obj_str(node, "alias"));
                for (guint b = 0; b < json_array_get_length(bitmaps); b++) {
                    JsonObject *bm = json_array_get_object_element(bitmaps, b);
                    g_string_append_printf(out, "    '%s' -> '%s'\n", obj_str(bm, "name"),
                                           obj_str(bm, "alias"));
                }
            }
            continue;
        }
        switch (rows[i].form) {
        case FORM_INT:
            g_string_append_printf(out, "%s: %" G_GUINT64_FORMAT "\n", name,
                                   (guint64)obj_int(p, name));
            break;
        case FORM_UNIT:
            g_string_append_printf(out, "%s: %" G_GUINT64_FORMAT " %s\n", name,
                                   (guint64)obj_int(p, name), rows[i].unit);
            break;
        case FORM_ONOFF:
            g_string_append_printf(out, "%s: %s\n", name, obj_bool(p, name) ? "on" : "off");
            break;
        case FORM_QUOTED:
            g_string_append_printf(out, "%s: '%s'\n", name, obj_str(p, name));
            break;
        case FORM_NAME:
            g_string_append_printf(out, "%s: %s\n", name, obj_str(p, name));
            break;
        }
    }
}

/* ---- migrate ---- */

typedef struct HmpMigrateWait {
    HmpMonitor *mon;
} HmpMigrateWait;

static bool hmp_migrate_still_running(const char *status)
{
    return !status || !strcmp(status, "setup") || !strcmp(status, "active") ||
           !strcmp(status, "cancelling") || !strcmp(status, "none");
}

static void hmp_migrate_progress(JsonObject *ram, GString *line)
{
    uint64_t total = obj_int(ram, "total");
    uint64_t remaining = obj_int(ram, "remaining");
    uint64_t done = total > remaining ? total - remaining : 0;
    double rate = obj_double(ram, "mbps") * 1e6 / 8.0;
    g_autofree char *s_done = hmp_size_short(done);
    g_autofree char *s_total = hmp_size_short(total);
    g_autofree char *s_rate = hmp_rate_str(rate);
    g_autofree char *s_rem = hmp_size_short(remaining);

    g_string_append_printf(line, "Migration: %u%% (%s/%s), %s, remaining %s, ",
                           total ? (unsigned)(done * 100 / total) : 0, s_done, s_total, s_rate,
                           s_rem);
    if (rate > 0) {
        g_string_append_printf(line, "ETA %.1f s\n", (double)remaining / rate);
    } else {
        g_string_append(line, "ETA -\n");
    }
}

/* Every MIGRATE_PROGRESS_MS while "migrate" (without -d) waits. */
static gboolean hmp_migrate_poll(gpointer opaque)
{
    HmpMigrateWait *w = opaque;
    g_autoptr(GString) text = g_string_new(NULL);
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) ret = qmp_dispatch_command("query-migrate", NULL, &err);
    JsonObject *info = ret ? json_node_get_object(ret) : NULL;
    const char *status = info ? obj_str(info, "status") : "failed";

    if (hmp_migrate_still_running(status)) {
        if (info && !g_strcmp0(status, "active") && json_object_has_member(info, "ram")) {
            hmp_migrate_progress(json_object_get_object_member(info, "ram"), text);
            hmp_monitor_print(w->mon, text->str);
        }
        return G_SOURCE_CONTINUE;
    }
    if (!strcmp(status, "completed")) {
        g_string_append(text, "Migration completed\n");
    } else if (!strcmp(status, "failed")) {
        const char *desc = info ? obj_str(info, "error-desc") : err->message;
        g_string_append_printf(text, "migrate: %s\n", desc ? desc : "Migration failed");
    } else if (!strcmp(status, "cancelled")) {
        g_string_append(text, "Migration cancelled\n");
    } else {
        /* postcopy-active, pre-switchover, ...: the user takes over from here. */
        g_string_append_printf(text, "Migration status: %s\n", status);
    }
    hmp_monitor_print(w->mon, text->str);
    hmp_resume(w->mon);
    g_free(w);
    return G_SOURCE_REMOVE;
}

static void hmp_migrate(const char *args, GString *out)
{
    g_autoptr(JsonObject) qargs = json_object_new();
    g_autofree char *uri = NULL;
    bool detach = false, resume = false;
    const char *p = args;
    JsonNode *ret;

    for (;;) {
        g_autofree char *word = NULL;

        if (!hmp_arg(&p, &word)) {
            g_string_append(out, "migrate: string expected\n");
            hmp_try_help("migrate", out);
            return;
        }
        if (word[0] != '-') {
            uri = g_steal_pointer(&word);
            break;
        }
        if (!strcmp(word, "-d")) {
            detach = true;
        } else if (!strcmp(word, "-r")) {
            resume = true;
        } else {
            g_string_append_printf(out, "migrate: unsupported option -%c\n", word[1]);
            hmp_try_help("migrate", out);
            return;
        }
    }
    {
        g_autofree char *extra = NULL;
        if (hmp_arg(&p, &extra)) {
            g_string_append(out, "migrate: extraneous characters at the end of line\n");
            hmp_try_help("migrate", out);
            return;
        }
    }

    json_object_set_string_member(qargs, "uri", uri);
    if (resume) {
        json_object_set_boolean_member(qargs, "resume", TRUE);
    }
    ret = hmp_run_qmp("migrate", qargs, out);
    if (!ret) {
        return;
    }
    json_node_unref(ret);
    if (detach) {
        return;
    }

    HmpMonitor *mon = hmp_suspend();
    if (!mon) {
        g_string_append(out, "terminal does not allow synchronous migration, "
                        "continuing detached\n");
        return;
    }
    HmpMigrateWait *w = g_new0(HmpMigrateWait, 1);
    w->mon = mon;
    GSource *src = g_timeout_source_new(MIGRATE_PROGRESS_MS);
    g_source_set_callback(src, hmp_migrate_poll, w, NULL);
    g_source_attach(src, main_loop_context());
    g_source_unref(src);
}

/* ---- the other commands ---- */

static void hmp_migrate_incoming(const char *args, GString *out)
{
    g_auto(GStrv) a = hmp_args_exact("migrate_incoming", args, 1, out);
    g_autoptr(JsonObject) qargs = json_object_new();

    if (!a) {
        return;
    }
    json_object_set_string_member(qargs, "uri", a[0]);
    hmp_run_qmp_simple("migrate-incoming", qargs, out);
}

static void hmp_migrate_cancel(const char *args, GString *out)
{
    hmp_run_qmp_simple("migrate_cancel", NULL, out);
}

static void hmp_migrate_continue(const char *args, GString *out)
{
    g_auto(GStrv) a = hmp_args_exact("migrate_continue", args, 1, out);
    g_autoptr(JsonObject) qargs = json_object_new();
    MigrationStatus st;

    if (!a) {
        return;
    }
    /* HMP names the value as QEMU's enum parser does, before QMP sees it. */
    if (!migration_status_parse(a[0], &st)) {
        g_string_append_printf(out, "Error: invalid parameter value: %s\n", a[0]);
        return;
    }
    json_object_set_string_member(qargs, "state", a[0]);
    hmp_run_qmp_simple("migrate-continue", qargs, out);
}

static void hmp_migrate_set_capability(const char *args, GString *out)
{
    g_auto(GStrv) a = hmp_args_exact("migrate_set_capability", args, 2, out);
    g_autoptr(JsonObject) qargs = json_object_new();
    JsonArray *list;
    JsonObject *entry;
    MigrationCapability cap;
    bool state;

    if (!a) {
        return;
    }
    if (!strcmp(a[1], "on")) {
        state = true;
    } else if (!strcmp(a[1], "off")) {
        state = false;
    } else {
        g_string_append(out, "Expected 'on' or 'off'\n");
        hmp_try_help("migrate_set_capability", out);
        return;
    }
    if (!migration_capability_parse(a[0], &cap)) {
        g_string_append_printf(out, "Error: invalid parameter value: %s\n", a[0]);
        return;
    }
    list = json_array_new();
    entry = json_object_new();
    json_object_set_string_member(entry, "capability", a[0]);
    json_object_set_boolean_member(entry, "state", state);
    json_array_add_object_element(list, entry);
    json_object_set_array_member(qargs, "capabilities", list);
    hmp_run_qmp_simple("migrate-set-capabilities", qargs, out);
}

static void hmp_migrate_set_parameter(const char *args, GString *out)
{
    g_auto(GStrv) a = hmp_args_exact("migrate_set_parameter", args, 2, out);
    g_autoptr(JsonObject) qargs = NULL;
    g_autoptr(GError) err = NULL;

    if (!a) {
        return;
    }
    qargs = migration_parameter_from_string(a[0], a[1], &err);
    if (!qargs) {
        g_string_append_printf(out, "Error: %s\n", err->message);
        return;
    }
    hmp_run_qmp_simple("migrate-set-parameters", qargs, out);
}

static void hmp_fd_command(const char *hmp_name, const char *qmp_name, const char *args,
                           GString *out)
{
    g_auto(GStrv) a = hmp_args_exact(hmp_name, args, 1, out);
    g_autoptr(JsonObject) qargs = json_object_new();

    if (!a) {
        return;
    }
    json_object_set_string_member(qargs, "fdname", a[0]);
    hmp_run_qmp_simple(qmp_name, qargs, out);
}

static void hmp_getfd(const char *args, GString *out)
{
    hmp_fd_command("getfd", "getfd", args, out);
}

static void hmp_closefd(const char *args, GString *out)
{
    hmp_fd_command("closefd", "closefd", args, out);
}

static const HmpCommand migration_hmp_commands[] = {
    { "migrate", NULL, "[-d] [-r] uri",
      "migrate to URI (using -d to not wait for completion, "
      "-r to resume a paused postcopy migration)", hmp_migrate },
    { "migrate_cancel", NULL, "", "cancel the current VM migration", hmp_migrate_cancel },
    { "migrate_continue", NULL, "state", "Continue migration from the given paused state",
      hmp_migrate_continue },
    { "migrate_incoming", NULL, "uri",
      "Continue an incoming migration from an -incoming defer", hmp_migrate_incoming },
    { "migrate_set_capability", NULL, "capability state",
      "Enable/Disable the usage of a capability for migration",
      hmp_migrate_set_capability },
    { "migrate_set_parameter", NULL, "parameter value", "Set the parameter for migration",
      hmp_migrate_set_parameter },
    { "getfd", NULL, "getfd name",
      "receive a file descriptor via SCM rights and assign it a name", hmp_getfd },
    { "closefd", NULL, "closefd name",
      "close a file descriptor previously passed via SCM rights", hmp_closefd },
    { "info migrate", NULL, "[-a]", "show migration status (-a: all, dump all status)",
      hmp_info_migrate },
    { "info migrate_capabilities", NULL, "", "show current migration capabilities",
      hmp_info_migrate_capabilities },
    { "info migrate_parameters", NULL, "", "show current migration parameters",
      hmp_info_migrate_parameters },
};

void migration_hmp_register_commands(void)
{
    static bool registered;

    if (registered) {
        return;
    }
    registered = true;
    hmp_register_commands(migration_hmp_commands, G_N_ELEMENTS(migration_hmp_commands));
}
