/*
 * What the monitor files share among themselves (and with their unit
 * tests): the JSON stream parser and writer QMP uses on the wire, the
 * request checks of the dispatcher, and the hooks between QMP, HMP and
 * the core commands.
 */
#ifndef SYSTEM_MONITOR_INTERNAL_H
#define SYSTEM_MONITOR_INTERNAL_H

#include "system/monitor.h"

/*
 * JSON stream parser (qmp-json-parser.c). Bytes go in as they arrive;
 * each complete top-level value comes out through @emit, or an error
 * ("JSON parse error, ...") after which input is dropped up to the next
 * line end or the next '{' outside the broken value. @emit owns @value /
 * @err. Parsing is json-glib's (1.6 accepts some non-RFC input, e.g.
 * duplicate keys, last wins); single-quoted strings and \' are rewritten
 * to strict JSON first, as QEMU accepts them.
 */
typedef struct QmpJsonParser QmpJsonParser;
typedef void (*QmpJsonEmitFn)(void *opaque, JsonNode *value, GError *err);

QmpJsonParser *qmp_json_parser_new(QmpJsonEmitFn emit, void *opaque);
void qmp_json_parser_feed(QmpJsonParser *parser, const char *buf, size_t len);
/* Drop a partial value (the peer went away). */
void qmp_json_parser_reset(QmpJsonParser *parser);
void qmp_json_parser_free(QmpJsonParser *parser);
/* Parse one complete value from @str (first value only). */
JsonNode *qmp_json_parse_string(const char *str, GError **errp);

/*
 * JSON writer (qmp-json-writer.c) in QEMU's layout: `{"a": 1, "b": [1, 2]}`
 * on one line, or indented by four with @pretty; non-ASCII characters as
 * \uXXXX escapes.
 */
void qmp_json_append(GString *out, JsonNode *node, bool pretty);
char *qmp_json_to_string(JsonNode *node, bool pretty);
char *qmp_json_object_to_string(JsonObject *obj, bool pretty);

/* One QMP request after the envelope checks (qmp-dispatch.c). */
typedef struct QmpRequest {
    const char *name;       /* "execute" or "exec-oob" value */
    JsonObject *args;       /* "arguments" or NULL */
    JsonNode *id;           /* "id" or NULL */
    bool oob;               /* came as "exec-oob" */
} QmpRequest;

/* Check the envelope; pointers in @req borrow from @request. */
bool qmp_dispatch_check_request(JsonNode *request, bool allow_oob, QmpRequest *req,
                                GError **errp);
const QmpCommand *qmp_dispatch_find(const char *name);
/* {"class": "...", "desc": "..."} for @err. */
JsonObject *qmp_dispatch_error_object(const GError *err);
/* query-commands: [{"name": ...}, ...] in registration order. */
JsonNode *qmp_dispatch_list_commands(void);

/* QMP protocol (qmp.c). */
JsonNode *qmp_handle_capabilities(JsonObject *args, GError **errp);
/* {"qemu": {"micro", "minor", "major"}, "package"} for query-version. */
JsonObject *qmp_version_info(void);
/* {"timestamp": {...}, "event": NAME, "data": DATA}; takes @data. */
JsonObject *qmp_event_build(const char *name, JsonObject *data, gint64 real_time_us);

/* HMP (hmp.c). */
void hmp_handle_help(const char *args, GString *out);
/* The vCPU HMP commands act on (human-monitor-command's cpu-index). */
int hmp_current_cpu(void);
void hmp_set_current_cpu(int index);
/* Turn "\n" into "\r\n" as monitors send it on the wire. */
char *monitor_crlf(const char *text);
/*
 * Run QMP command @name (@args may be NULL) for an HMP command: its
 * "return" value, or NULL after "Error: <message>" in @out (QEMU's
 * hmp_handle_error()). hmp_run_qmp_simple() drops the value.
 */
JsonNode *hmp_run_qmp(const char *name, JsonObject *args, GString *out);
void hmp_run_qmp_simple(const char *name, JsonObject *args, GString *out);

/*
 * Descriptors sent with a command (SCM_RIGHTS on a unix socket monitor).
 * While a QMP or HMP command runs, its connection's chardev is "current";
 * monitor_take_fd() gives the oldest descriptor that came with the input
 * (the caller owns it), or -1 (none, or no monitor connection: tests,
 * human-monitor-command's own line). After a chunk of input whose last
 * request completed, the monitor closes what its requests left.
 */
Chardev *monitor_cur_chardev(void);
void monitor_set_cur_chardev(Chardev *chr);
int monitor_take_fd(void);
void monitor_close_unclaimed_fds(Chardev *chr);

/*
 * Asynchronous HMP commands. A handler that finishes later (migrate
 * without -d) calls hmp_suspend() while it runs: its monitor then prints
 * the handler's output without a prompt and reads no more input until
 * hmp_resume(), which prints the prompt and runs what was typed meanwhile.
 * Other monitors and QMP keep working. Returns NULL when the command did
 * not come from an interactive monitor (human-monitor-command, tests);
 * the handler must then finish at once. hmp_monitor_print() writes to a
 * suspended monitor (dropped if its client went away). Main thread only.
 */
typedef struct HmpMonitor HmpMonitor;
HmpMonitor *hmp_suspend(void);
void hmp_monitor_print(HmpMonitor *mon, const char *text);
void hmp_resume(HmpMonitor *mon);

#endif
