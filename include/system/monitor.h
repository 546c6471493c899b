/*
 * Monitors: QMP (JSON, machine-facing) and HMP (human-facing), both over
 * chardevs, both driven from one table of commands.
 *
 * QMP commands are declared in tables (name, handler, argument specs);
 * qmp_register_commands() adds rows, and the argument checks and
 * query-commands come from the same rows. Later subsystems (migration)
 * register their own tables; nothing else parses arguments.
 *
 * Everything here runs in the main thread with the BQL held, except
 * qmp_event_emit(), which may be called from any thread.
 */
#ifndef SYSTEM_MONITOR_H
#define SYSTEM_MONITOR_H

#include <stdbool.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include "chardev/char.h"

/* QEMU's error classes, carried in the QMP error reply's "class". */
typedef enum QmpErrorClass {
    QMP_ERROR_GENERIC,              /* "GenericError" */
    QMP_ERROR_COMMAND_NOT_FOUND,    /* "CommandNotFound" */
    QMP_ERROR_DEVICE_NOT_ACTIVE,    /* "DeviceNotActive" */
    QMP_ERROR_DEVICE_NOT_FOUND,     /* "DeviceNotFound" */
    QMP_ERROR_KVM_MISSING_CAP,      /* "KVMMissingCap" */
} QmpErrorClass;

#define QMP_ERROR qmp_error_quark()
GQuark qmp_error_quark(void);
const char *qmp_error_class_name(QmpErrorClass cls);

typedef enum QmpArgType {
    QMP_ARG_STR,
    QMP_ARG_INT,        /* JSON integer, signed 64-bit */
    QMP_ARG_UINT,       /* JSON integer >= 0 */
    QMP_ARG_SIZE,       /* JSON integer >= 0, bytes */
    QMP_ARG_NUMBER,     /* integer or float */
    QMP_ARG_BOOL,
    QMP_ARG_OBJECT,     /* any JSON object; the handler checks its members */
    QMP_ARG_ARRAY,      /* any JSON array; the handler checks its elements */
    QMP_ARG_ANY,
} QmpArgType;

typedef struct QmpArgSpec {
    const char *name;
    QmpArgType type;
    bool optional;
} QmpArgSpec;

/*
 * A handler gets the checked arguments (never NULL: an empty object when
 * none were given) and returns the "return" value (NULL means {}), or
 * NULL with @errp set. Domain QMP_ERROR with a QmpErrorClass code chooses
 * the class; any other GError domain is reported as GenericError.
 */
typedef JsonNode *(*QmpHandler)(JsonObject *args, GError **errp);

#define QMP_CMD_ALLOW_OOB        (1u << 0)
#define QMP_CMD_ALLOW_PRECONFIG  (1u << 1)

typedef struct QmpCommand {
    const char *name;
    QmpHandler handler;
    const QmpArgSpec *args;     /* terminated by a { NULL } row */
    unsigned flags;
} QmpCommand;

/* Add @n rows; the table is kept for the life of the process. */
void qmp_register_commands(const QmpCommand *cmds, size_t n);

/*
 * Run one command as a QMP client would (used by HMP and tests): @args may
 * be NULL. Returns the reply's "return" node or NULL with @errp set.
 */
JsonNode *qmp_dispatch_command(const char *name, JsonObject *args, GError **errp);

/*
 * Send an event to every QMP monitor that finished capabilities
 * negotiation: {"event": NAME, "data": DATA, "timestamp": {...}}.
 * Takes ownership of @data (NULL: no "data" member). Any thread.
 */
void qmp_event_emit(const char *name, JsonObject *data);

/* Monitors on chardevs: -qmp/-mon mode=control, -monitor/-mon mode=readline. */
bool monitor_new_qmp(Chardev *chr, bool pretty, GError **errp);
bool monitor_new_hmp(Chardev *chr, GError **errp);

/* Run an HMP command line; output goes to @out (human-monitor-command). */
void hmp_execute(const char *cmdline, GString *out);

/*
 * HMP commands are declared in tables too; each is a thin layer over the
 * QMP handlers. @args is the text after the command name.
 */
typedef void (*HmpHandler)(const char *args, GString *out);
typedef struct HmpCommand {
    const char *name;       /* "migrate_set_parameter"; "info" subcommands: "info status" */
    const char *aliases;    /* "c" for "cont", "q" for "quit"; "|"-separated; may be NULL */
    const char *params;     /* shown by help: "[-d] uri" */
    const char *help;
    HmpHandler handler;
} HmpCommand;
void hmp_register_commands(const HmpCommand *cmds, size_t n);

/* Register the commands of the core machine (status, stop, cont, ...). */
void monitor_register_core_commands(void);

/* -name: what query-name reports (not called: query-name returns {}). */
void monitor_set_vm_name(const char *name);

/*
 * The descriptor a client passed with getfd under @fdname: returns it and
 * forgets the name (the caller owns the fd), or -1 if there is none.
 * Names are shared by all monitors. Any thread (migration's fd: transport).
 */
int monitor_fd_take(const char *fdname);

#endif
