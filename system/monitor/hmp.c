/*
 * HMP, the human monitor: a table of text commands (each a thin layer over
 * a QMP handler), the line interpreter, help, and the monitor on a chardev
 * with QEMU's prompt so scripts written for QEMU keep working. Line editing
 * is minimal: a line ends at "\n", "\r" or "\r\n"; on a terminal (stdio)
 * typed characters are echoed and backspace works.
 *
 * A command may finish later (hmp_suspend()/hmp_resume()): meanwhile its
 * monitor shows no prompt and leaves further input unread, exactly as a
 * user of QEMU's synchronous "migrate" expects.
 */
#include <string.h>
#include <unistd.h>

#include "ferry-config.h"
#include "system/monitor/monitor-internal.h"

#define HMP_PROMPT "(qemu) "
#define HMP_LINE_MAX 4096

struct HmpMonitor {
    Chardev *chr;
    GString *line;
    bool skip_lf;       /* the last byte was '\r' */
    bool echo;
    bool suspended;     /* a command is still running: no prompt, no input */
    GByteArray *pending;    /* input that came after the suspending line */
};

static GPtrArray *hmp_commands;        /* HmpCommand copies, registration order */
static int hmp_cpu_index;
static HmpMonitor *hmp_running;        /* the monitor whose line is running */

void hmp_register_commands(const HmpCommand *cmds, size_t n)
{
    if (!hmp_commands) {
        hmp_commands = g_ptr_array_new();
    }
    for (size_t i = 0; i < n; i++) {
        HmpCommand *row = g_new(HmpCommand, 1);
        *row = cmds[i];
        g_ptr_array_add(hmp_commands, row);
    }
}

int hmp_current_cpu(void)
{
    return hmp_cpu_index;
}

void hmp_set_current_cpu(int index)
{
    hmp_cpu_index = index;
}

static bool hmp_is_info_row(const HmpCommand *cmd)
{
    return g_str_has_prefix(cmd->name, "info ");
}

static bool hmp_alias_matches(const char *aliases, const char *word)
{
    g_auto(GStrv) list = NULL;

    if (!aliases) {
        return false;
    }
    list = g_strsplit(aliases, "|", -1);
    for (char **a = list; *a; a++) {
        if (!strcmp(*a, word)) {
            return true;
        }
    }
    return false;
}

/* A top-level command by name or alias. */
static const HmpCommand *hmp_find(const char *word)
{
    for (guint i = 0; hmp_commands && i < hmp_commands->len; i++) {
        const HmpCommand *cmd = g_ptr_array_index(hmp_commands, i);
        if (hmp_is_info_row(cmd)) {
            continue;
        }
        if (!strcmp(cmd->name, word) || hmp_alias_matches(cmd->aliases, word)) {
            return cmd;
        }
    }
    return NULL;
}

/* An "info" subcommand by its name after "info ". */
static const HmpCommand *hmp_find_info(const char *sub)
{
    for (guint i = 0; hmp_commands && i < hmp_commands->len; i++) {
        const HmpCommand *cmd = g_ptr_array_index(hmp_commands, i);
        if (hmp_is_info_row(cmd) &&
            (!strcmp(cmd->name + 5, sub) || hmp_alias_matches(cmd->aliases, sub))) {
            return cmd;
        }
    }
    return NULL;
}

/* "name|alias params -- help" as QEMU's help prints it. */
static void hmp_help_line(const HmpCommand *cmd, GString *out)
{
    g_string_append(out, cmd->name);
    if (cmd->aliases && cmd->aliases[0]) {
        g_string_append_printf(out, "|%s", cmd->aliases);
    }
    g_string_append_printf(out, " %s -- %s\n", cmd->params ? cmd->params : "",
                           cmd->help ? cmd->help : "");
}

static gint hmp_compare_rows(gconstpointer a, gconstpointer b)
{
    const HmpCommand *x = *(const HmpCommand *const *)a;
    const HmpCommand *y = *(const HmpCommand *const *)b;

    return strcmp(x->name, y->name);
}

/* Rows sorted by name; @info selects the info subcommands or the rest. */
static GPtrArray *hmp_sorted_rows(bool info)
{
    GPtrArray *rows = g_ptr_array_new();

    for (guint i = 0; hmp_commands && i < hmp_commands->len; i++) {
        HmpCommand *cmd = g_ptr_array_index(hmp_commands, i);
        if (hmp_is_info_row(cmd) == info) {
            g_ptr_array_add(rows, cmd);
        }
    }
    g_ptr_array_sort(rows, hmp_compare_rows);
    return rows;
}

static void hmp_help_info(GString *out)
{
    g_autoptr(GPtrArray) rows = hmp_sorted_rows(true);

    for (guint i = 0; i < rows->len; i++) {
        hmp_help_line(g_ptr_array_index(rows, i), out);
    }
}

static void hmp_help_all(GString *out)
{
    static const HmpCommand info_row = {
        .name = "info",
        .params = "[subcommand]",
        .help = "show various information about the system state",
    };
    g_autoptr(GPtrArray) rows = hmp_sorted_rows(false);
    g_autoptr(GPtrArray) info = hmp_sorted_rows(true);

    if (info->len) {
        g_ptr_array_add(rows, (gpointer)&info_row);
        g_ptr_array_sort(rows, hmp_compare_rows);
    }
    for (guint i = 0; i < rows->len; i++) {
        hmp_help_line(g_ptr_array_index(rows, i), out);
    }
}

void hmp_handle_help(const char *args, GString *out)
{
    g_auto(GStrv) words = g_strsplit_set(args, " \t", -1);
    const char *first = NULL;
    const char *second = NULL;

    for (char **w = words; *w; w++) {
        if (!**w) {
            continue;
        }
        if (!first) {
            first = *w;
        } else if (!second) {
            second = *w;
        }
    }
    if (!first) {
        hmp_help_all(out);
    } else if (!strcmp(first, "info")) {
        const HmpCommand *cmd = second ? hmp_find_info(second) : NULL;
        if (!second) {
            hmp_help_info(out);
        } else if (cmd) {
            hmp_help_line(cmd, out);
        } else {
            g_string_append_printf(out, "unknown command: 'info %s'\n", second);
        }
    } else {
        const HmpCommand *cmd = hmp_find(first);
        if (cmd) {
            hmp_help_line(cmd, out);
        } else {
            g_string_append_printf(out, "unknown command: '%s'\n", first);
        }
    }
}

static const char *hmp_skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    return p;
}

/* Split the next word off @p; returns the text after it. */
static const char *hmp_next_word(const char *p, char **word)
{
    const char *start = hmp_skip_space(p);
    const char *end = start;

    while (*end && *end != ' ' && *end != '\t') {
        end++;
    }
    *word = g_strndup(start, end - start);
    return end;
}

void hmp_execute(const char *cmdline, GString *out)
{
    g_autofree char *name = NULL;
    g_autofree char *args = NULL;
    const HmpCommand *cmd;
    const char *rest;

    rest = hmp_next_word(cmdline, &name);
    if (!name[0]) {
        return;
    }
    if (!strcmp(name, "info")) {
        g_autofree char *sub = NULL;
        rest = hmp_next_word(rest, &sub);
        if (!sub[0]) {
            hmp_help_info(out);
            return;
        }
        cmd = hmp_find_info(sub);
        if (!cmd) {
            g_string_append_printf(out, "unknown command: 'info %s'\n", sub);
            return;
        }
    } else {
        cmd = hmp_find(name);
        if (!cmd) {
            g_string_append_printf(out, "unknown command: '%s'\n", name);
            return;
        }
    }
    args = g_strstrip(g_strdup(rest));
    cmd->handler(args, out);
}

JsonNode *hmp_run_qmp(const char *name, JsonObject *args, GString *out)
{
    g_autoptr(GError) err = NULL;
    JsonNode *ret = qmp_dispatch_command(name, args, &err);

    if (!ret) {
        g_string_append_printf(out, "Error: %s\n", err->message);
    }
    return ret;
}

void hmp_run_qmp_simple(const char *name, JsonObject *args, GString *out)
{
    JsonNode *ret = hmp_run_qmp(name, args, out);

    if (ret) {
        json_node_unref(ret);
    }
}

/* ---- the monitor on a chardev ---- */

static void hmp_write(HmpMonitor *mon, const char *text)
{
    g_autofree char *wire = monitor_crlf(text);

    chardev_write(mon->chr, wire, strlen(wire));
}

HmpMonitor *hmp_suspend(void)
{
    if (!hmp_running) {
        return NULL;
    }
    hmp_running->suspended = true;
    return hmp_running;
}

void hmp_monitor_print(HmpMonitor *mon, const char *text)
{
    hmp_write(mon, text);
}

static void hmp_receive(void *opaque, const guint8 *buf, size_t len);

void hmp_resume(HmpMonitor *mon)
{
    g_autoptr(GByteArray) pending = NULL;

    if (!mon->suspended) {
        return;
    }
    mon->suspended = false;
    hmp_write(mon, HMP_PROMPT);
    /* What was typed meanwhile runs now, and may suspend the monitor again. */
    pending = mon->pending;
    mon->pending = g_byte_array_new();
    if (pending->len) {
        hmp_receive(mon, pending->data, pending->len);
    }
    if (!mon->suspended) {
        chardev_accept_input(mon->chr);
    }
}

static void hmp_run_line(HmpMonitor *mon)
{
    g_autoptr(GString) out = g_string_new(NULL);
    g_autofree char *line = g_strdup(mon->line->str);
    HmpMonitor *outer = hmp_running;
    Chardev *outer_chr = monitor_cur_chardev();

    g_string_truncate(mon->line, 0);
    if (mon->echo) {
        hmp_write(mon, "\n");
    }
    hmp_running = mon;
    monitor_set_cur_chardev(mon->chr);
    hmp_execute(line, out);
    monitor_set_cur_chardev(outer_chr);
    hmp_running = outer;
    if (!mon->suspended) {
        g_string_append(out, HMP_PROMPT);
    }
    hmp_write(mon, out->str);
}

static size_t hmp_can_receive(void *opaque)
{
    HmpMonitor *mon = opaque;

    return mon->suspended ? 0 : 4096;
}

static void hmp_receive(void *opaque, const guint8 *buf, size_t len)
{
    HmpMonitor *mon = opaque;

    for (size_t i = 0; i < len; i++) {
        guint8 c = buf[i];

        if (mon->suspended) {
            /* A line suspended the monitor: keep the rest for hmp_resume(). */
            g_byte_array_append(mon->pending, buf + i, len - i);
            return;
        }
        if (c == '\n' && mon->skip_lf) {
            mon->skip_lf = false;
            continue;
        }
        mon->skip_lf = c == '\r';
        if (c == '\r' || c == '\n') {
            hmp_run_line(mon);
        } else if (c == 0x7f || c == '\b') {
            if (mon->line->len) {
                g_string_truncate(mon->line, mon->line->len - 1);
                if (mon->echo) {
                    chardev_write(mon->chr, "\b \b", 3);
                }
            }
        } else if ((c >= 0x20 || c == '\t') && mon->line->len < HMP_LINE_MAX) {
            g_string_append_c(mon->line, c);
            if (mon->echo) {
                chardev_write(mon->chr, &c, 1);
            }
        }
    }
    if (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) {
        /* The lines that came with descriptors have run. */
        monitor_close_unclaimed_fds(mon->chr);
    }
}

static void hmp_opened(void *opaque)
{
    HmpMonitor *mon = opaque;

    g_string_truncate(mon->line, 0);
    mon->skip_lf = false;
    hmp_write(mon, "Ferry " FERRY_VERSION " monitor - type 'help' for more information\n");
    if (!mon->suspended) {
        hmp_write(mon, HMP_PROMPT);
    }
}

static void hmp_closed(void *opaque)
{
    HmpMonitor *mon = opaque;

    g_string_truncate(mon->line, 0);
    g_byte_array_set_size(mon->pending, 0);
    mon->skip_lf = false;
    monitor_close_unclaimed_fds(mon->chr);
}

static const CharFrontendOps hmp_frontend_ops = {
    .can_receive = hmp_can_receive,
    .receive = hmp_receive,
    .opened = hmp_opened,
    .closed = hmp_closed,
};

bool monitor_new_hmp(Chardev *chr, GError **errp)
{
    HmpMonitor *mon = g_new0(HmpMonitor, 1);

    mon->chr = chr;
    mon->line = g_string_new(NULL);
    mon->pending = g_byte_array_new();
    mon->echo = chardev_is_stdio(chr) && isatty(STDIN_FILENO);
    chardev_set_output_limit(chr, 0);
    if (!chardev_attach_frontend(chr, &hmp_frontend_ops, mon, errp)) {
        g_string_free(mon->line, TRUE);
        g_byte_array_unref(mon->pending);
        g_free(mon);
        return false;
    }
    return true;
}
