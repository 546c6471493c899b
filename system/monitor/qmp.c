/*
 * The QMP protocol on one chardev: greeting when a client connects,
 * capabilities negotiation (only qmp_capabilities is accepted until it
 * succeeds), then commands; replies carry the request's "id". Every
 * message ends in "\r\n" as QEMU's do. Events go to every connection that
 * finished negotiation, in the order they were emitted, whichever thread
 * emitted them.
 *
 * File descriptors a client sends with a command (SCM_RIGHTS on a unix
 * socket) wait on the chardev; while a command runs, monitor_take_fd()
 * gives them to it (getfd). When a chunk of input ends with a complete
 * request, whatever its requests did not claim is closed; when it ends in
 * the middle of one, the descriptors wait for that request.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ferry-config.h"
#include "system/main-loop.h"
#include "system/monitor/monitor-internal.h"

typedef struct QmpMonitor {
    Chardev *chr;
    bool pretty;
    bool command_mode;      /* negotiation done */
    bool oob_enabled;
    QmpJsonParser *parser;
    bool feeding_tail;      /* the last non-blank byte of a chunk is being fed */
    bool tail_complete;     /* ... and it completed a request */
} QmpMonitor;

static GPtrArray *qmp_monitors;        /* main thread only */
static QmpMonitor *qmp_current;        /* the monitor running a command */
static Chardev *monitor_cur_chr;       /* its chardev (QMP or HMP), for monitor_take_fd() */

/* Events from any thread wait here for the main thread. */
static GMutex qmp_event_lock;
static GQueue qmp_event_queue = G_QUEUE_INIT;
static bool qmp_event_flush_scheduled;

char *monitor_crlf(const char *text)
{
    GString *out = g_string_sized_new(strlen(text) + 16);

    for (const char *p = text; *p; p++) {
        if (*p == '\n') {
            g_string_append_c(out, '\r');
        }
        g_string_append_c(out, *p);
    }
    return g_string_free(out, FALSE);
}

Chardev *monitor_cur_chardev(void)
{
    return monitor_cur_chr;
}

void monitor_set_cur_chardev(Chardev *chr)
{
    monitor_cur_chr = chr;
}

int monitor_take_fd(void)
{
    return monitor_cur_chr ? chardev_take_received_fd(monitor_cur_chr) : -1;
}

void monitor_close_unclaimed_fds(Chardev *chr)
{
    int fd;

    while ((fd = chardev_take_received_fd(chr)) >= 0) {
        close(fd);
    }
}

static void qmp_send(QmpMonitor *mon, JsonObject *msg)
{
    g_autofree char *json = qmp_json_object_to_string(msg, mon->pretty);
    g_autofree char *line = g_strconcat(json, "\n", NULL);
    g_autofree char *wire = monitor_crlf(line);

    chardev_write(mon->chr, wire, strlen(wire));
}

JsonObject *qmp_version_info(void)
{
    JsonObject *info = json_object_new();
    JsonObject *qemu = json_object_new();
    unsigned major = 0, minor = 0, micro = 0;

    sscanf(FERRY_VERSION, "%u.%u.%u", &major, &minor, &micro);
    json_object_set_int_member(qemu, "micro", micro);
    json_object_set_int_member(qemu, "minor", minor);
    json_object_set_int_member(qemu, "major", major);
    json_object_set_object_member(info, "qemu", qemu);
    json_object_set_string_member(info, "package", "ferry-" FERRY_VERSION);
    return info;
}

static void qmp_send_greeting(QmpMonitor *mon)
{
    g_autoptr(JsonObject) msg = json_object_new();
    JsonObject *qmp = json_object_new();
    JsonArray *caps = json_array_new();

    json_array_add_string_element(caps, "oob");
    json_object_set_object_member(qmp, "version", qmp_version_info());
    json_object_set_array_member(qmp, "capabilities", caps);
    json_object_set_object_member(msg, "QMP", qmp);
    qmp_send(mon, msg);
}

JsonNode *qmp_handle_capabilities(JsonObject *args, GError **errp)
{
    QmpMonitor *mon = qmp_current;
    bool oob = false;

    if (!mon || mon->command_mode) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND,
                    "Capabilities negotiation is already complete, command ignored");
        return NULL;
    }
    if (json_object_has_member(args, "enable")) {
        JsonArray *enable = json_object_get_array_member(args, "enable");
        for (guint i = 0; i < json_array_get_length(enable); i++) {
            JsonNode *cap = json_array_get_element(enable, i);
            if (!JSON_NODE_HOLDS_VALUE(cap) ||
                json_node_get_value_type(cap) != G_TYPE_STRING) {
                g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                            "Invalid parameter type for 'enable[%u]', expected: string", i);
                return NULL;
            }
            if (strcmp(json_node_get_string(cap), "oob") != 0) {
                g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                            "Parameter 'enable[%u]' does not accept value '%s'", i,
                            json_node_get_string(cap));
                return NULL;
            }
            oob = true;
        }
    }
    mon->oob_enabled = oob;
    mon->command_mode = true;
    return NULL;
}

/* Run one parsed request (or report its parse error) and reply. */
static void qmp_handle_message(void *opaque, JsonNode *request, GError *parse_err)
{
    QmpMonitor *mon = opaque;
    g_autoptr(JsonObject) reply = json_object_new();
    g_autoptr(GError) err = parse_err;
    JsonNode *ret = NULL;
    QmpRequest req = { 0 };

    if (!err && qmp_dispatch_check_request(request, mon->oob_enabled, &req, &err)) {
        const QmpCommand *cmd = qmp_dispatch_find(req.name);

        if (!mon->command_mode && g_strcmp0(req.name, "qmp_capabilities") != 0) {
            cmd = NULL;
        }
        if (!cmd && !mon->command_mode) {
            g_set_error(&err, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND,
                        "Expecting capabilities negotiation with 'qmp_capabilities'");
        } else if (!cmd) {
            g_set_error(&err, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND,
                        "The command %s has not been found", req.name);
        } else if (req.oob && !(cmd->flags & QMP_CMD_ALLOW_OOB)) {
            g_set_error(&err, QMP_ERROR, QMP_ERROR_GENERIC,
                        "The command %s does not support OOB", req.name);
        } else {
            qmp_current = mon;
            monitor_cur_chr = mon->chr;
            ret = qmp_dispatch_command(req.name, req.args, &err);
            monitor_cur_chr = NULL;
            qmp_current = NULL;
        }
    }

    if (err) {
        json_object_set_object_member(reply, "error", qmp_dispatch_error_object(err));
    } else {
        json_object_set_member(reply, "return", ret);
    }
    if (req.id) {
        json_object_set_member(reply, "id", json_node_copy(req.id));
    }
    qmp_send(mon, reply);
    if (request) {
        json_node_unref(request);
    }
    if (mon->feeding_tail) {
        mon->tail_complete = true;
    }
}

static size_t qmp_can_receive(void *opaque)
{
    return 4096;
}

static void qmp_receive(void *opaque, const guint8 *buf, size_t len)
{
    QmpMonitor *mon = opaque;
    size_t end = len;

    /* Feed the last non-blank byte alone to learn whether it ends a request. */
    while (end > 0 && g_ascii_isspace(buf[end - 1])) {
        end--;
    }
    if (end == 0) {
        qmp_json_parser_feed(mon->parser, (const char *)buf, len);
        return;
    }
    qmp_json_parser_feed(mon->parser, (const char *)buf, end - 1);
    mon->feeding_tail = true;
    mon->tail_complete = false;
    qmp_json_parser_feed(mon->parser, (const char *)buf + end - 1, 1);
    mon->feeding_tail = false;
    qmp_json_parser_feed(mon->parser, (const char *)buf + end, len - end);
    if (mon->tail_complete) {
        /* Every request that came with descriptors has run. */
        monitor_close_unclaimed_fds(mon->chr);
    }
}

static void qmp_opened(void *opaque)
{
    QmpMonitor *mon = opaque;

    mon->command_mode = false;
    mon->oob_enabled = false;
    qmp_json_parser_reset(mon->parser);
    qmp_send_greeting(mon);
}

static void qmp_closed(void *opaque)
{
    QmpMonitor *mon = opaque;

    monitor_close_unclaimed_fds(mon->chr);
    mon->command_mode = false;
    mon->oob_enabled = false;
    qmp_json_parser_reset(mon->parser);
}

static const CharFrontendOps qmp_frontend_ops = {
    .can_receive = qmp_can_receive,
    .receive = qmp_receive,
    .opened = qmp_opened,
    .closed = qmp_closed,
};

bool monitor_new_qmp(Chardev *chr, bool pretty, GError **errp)
{
    QmpMonitor *mon = g_new0(QmpMonitor, 1);

    mon->chr = chr;
    mon->pretty = pretty;
    mon->parser = qmp_json_parser_new(qmp_handle_message, mon);
    if (!qmp_monitors) {
        qmp_monitors = g_ptr_array_new();
    }
    g_ptr_array_add(qmp_monitors, mon);
    chardev_set_output_limit(chr, 0);   /* never drop a reply */
    if (!chardev_attach_frontend(chr, &qmp_frontend_ops, mon, errp)) {
        g_ptr_array_remove(qmp_monitors, mon);
        qmp_json_parser_free(mon->parser);
        g_free(mon);
        return false;
    }
    return true;
}

JsonObject *qmp_event_build(const char *name, JsonObject *data, gint64 real_time_us)
{
    JsonObject *ev = json_object_new();
    JsonObject *ts = json_object_new();

    json_object_set_int_member(ts, "seconds", real_time_us / G_USEC_PER_SEC);
    json_object_set_int_member(ts, "microseconds", real_time_us % G_USEC_PER_SEC);
    json_object_set_object_member(ev, "timestamp", ts);
    json_object_set_string_member(ev, "event", name);
    if (data) {
        json_object_set_object_member(ev, "data", data);
    }
    return ev;
}

/* Main thread: send every queued event to every negotiated monitor. */
static void qmp_event_flush(void)
{
    GQueue pending = G_QUEUE_INIT;
    JsonObject *ev;

    g_mutex_lock(&qmp_event_lock);
    pending = qmp_event_queue;
    g_queue_init(&qmp_event_queue);
    qmp_event_flush_scheduled = false;
    g_mutex_unlock(&qmp_event_lock);

    while ((ev = g_queue_pop_head(&pending))) {
        for (guint i = 0; qmp_monitors && i < qmp_monitors->len; i++) {
            QmpMonitor *mon = g_ptr_array_index(qmp_monitors, i);
            if (mon->command_mode) {
                qmp_send(mon, ev);
            }
        }
        json_object_unref(ev);
    }
}

static gboolean qmp_event_flush_cb(gpointer opaque)
{
    qmp_event_flush();
    return G_SOURCE_REMOVE;
}

void qmp_event_emit(const char *name, JsonObject *data)
{
    JsonObject *ev = qmp_event_build(name, data, g_get_real_time());
    bool in_main = g_main_context_is_owner(main_loop_context());
    bool schedule = false;

    g_mutex_lock(&qmp_event_lock);
    g_queue_push_tail(&qmp_event_queue, ev);
    if (!in_main && !qmp_event_flush_scheduled) {
        qmp_event_flush_scheduled = true;
        schedule = true;
    }
    g_mutex_unlock(&qmp_event_lock);

    if (in_main) {
        /* Sent before the command that caused it replies, as QEMU does. */
        qmp_event_flush();
    } else if (schedule) {
        main_loop_schedule(qmp_event_flush_cb, NULL);
    }
}
