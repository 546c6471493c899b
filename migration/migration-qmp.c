/*
 * The QMP commands of migration: migrate, migrate-incoming, query-migrate,
 * migrate_cancel, migrate-continue, and getfd/closefd (descriptors a
 * client passes over a unix socket monitor, for the fd: transport).
 *
 * The commands check their arguments the way QEMU's generated visitors do
 * (same texts, same order) and call the migration core. "channels", the
 * QEMU 8.2+ form of the address, is turned into the URI the core takes:
 * socket inet/unix/fd, exec and file on the main channel.
 */
#include <string.h>
#include <unistd.h>

#include "migration/migration.h"
#include "migration/options.h"
#include "migration/qmp-args.h"
#include "system/monitor.h"
#include "system/monitor/monitor-internal.h"

void mig_qmp_error(GError **errp, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error_literal(errp, QMP_ERROR, QMP_ERROR_GENERIC, msg);
}

/* Errors from the core keep their text; the class is GenericError unless set. */
static void propagate(GError **errp, GError *err)
{
    if (err->domain == QMP_ERROR) {
        g_propagate_error(errp, err);
        return;
    }
    mig_qmp_error(errp, "%s", err->message);
    g_error_free(err);
}

/* ---- members of nested objects (qmp-args.h) ---- */

/* @path.@member of @type: the member, or NULL (an error unless @optional and absent). */
static JsonNode *mig_qmp_check_member(JsonObject *obj, const char *path, const char *member,
                                      MigQmpType type, bool optional, GError **errp)
{
    static const char *const names[] = { "string", "boolean", "uint64", "object", "array" };
    JsonNode *n = json_object_get_member(obj, member);
    bool ok;

    if (!n) {
        if (!optional) {
            mig_qmp_error(errp, "Parameter '%s.%s' is missing", path, member);
        }
        return NULL;
    }
    switch (type) {
    case MIG_QMP_STR:
        ok = JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING;
        break;
    case MIG_QMP_BOOL:
        ok = JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_BOOLEAN;
        break;
    case MIG_QMP_UINT:
        if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64) {
            mig_qmp_error(errp, "Parameter '%s.%s' expects uint64", path, member);
            return NULL;
        }
        ok = true;
        break;
    case MIG_QMP_OBJECT:
        ok = JSON_NODE_HOLDS_OBJECT(n);
        break;
    default:
        ok = JSON_NODE_HOLDS_ARRAY(n);
        break;
    }
    if (!ok) {
        mig_qmp_error(errp, "Invalid parameter type for '%s.%s', expected: %s", path, member,
                      names[type]);
        return NULL;
    }
    return n;
}

JsonNode *mig_qmp_member(JsonObject *obj, const char *path, const char *member,
                         MigQmpType type, GError **errp)
{
    return mig_qmp_check_member(obj, path, member, type, false, errp);
}

bool mig_qmp_optional_member(JsonObject *obj, const char *path, const char *member,
                             MigQmpType type, GError **errp)
{
    return !json_object_has_member(obj, member) ||
           mig_qmp_check_member(obj, path, member, type, true, errp);
}

bool mig_qmp_no_extra_members(JsonObject *obj, const char *path, const char *const *known,
                              GError **errp)
{
    g_autoptr(GList) members = json_object_get_members(obj);

    for (GList *l = members; l; l = l->next) {
        if (!g_strv_contains(known, l->data)) {
            mig_qmp_error(errp, "Parameter '%s.%s' is unexpected", path,
                          (const char *)l->data);
            return false;
        }
    }
    return true;
}

JsonObject *mig_qmp_object_element(JsonNode *el, const char *path, GError **errp)
{
    if (!JSON_NODE_HOLDS_OBJECT(el)) {
        mig_qmp_error(errp, "Invalid parameter type for '%s', expected: object", path);
        return NULL;
    }
    return json_node_get_object(el);
}

/* ---- channels -> URI ---- */

/* Check the optional members a SocketAddress variant may carry (their types). */
static bool chan_optional_members(JsonObject *obj, const char *path,
                                  const char *const *bools, const char *const *uints,
                                  const char *const *strs, GError **errp)
{
    for (const char *const *m = bools; m && *m; m++) {
        if (!mig_qmp_optional_member(obj, path, *m, MIG_QMP_BOOL, errp)) {
            return false;
        }
    }
    for (const char *const *m = uints; m && *m; m++) {
        if (!mig_qmp_optional_member(obj, path, *m, MIG_QMP_UINT, errp)) {
            return false;
        }
    }
    for (const char *const *m = strs; m && *m; m++) {
        if (!mig_qmp_optional_member(obj, path, *m, MIG_QMP_STR, errp)) {
            return false;
        }
    }
    return true;
}

/*
 * The address variants below check their members as QEMU's visitor does
 * (errors in @errp, returning NULL) and return the URI; what Ferry cannot
 * do with a well-formed address goes to @unsupported instead (NULL
 * returned, no error), to be reported after the command-level checks.
 */

/* SocketAddress (with "transport": "socket" merged in, as QEMU's flat union has it). */
static char *chan_socket_uri(JsonObject *addr, const char *path, char **unsupported,
                             GError **errp)
{
    JsonNode *type = mig_qmp_member(addr, path, "type", MIG_QMP_STR, errp);
    const char *t;

    if (!type) {
        return NULL;
    }
    t = json_node_get_string(type);
    if (!strcmp(t, "inet")) {
        static const char *const known[] = {
            "transport", "type", "host", "port", "numeric", "to", "ipv4", "ipv6",
            "keep-alive", "keep-alive-count", "keep-alive-idle", "keep-alive-interval",
            "mptcp", NULL,
        };
        static const char *const bools[] = {
            "numeric", "ipv4", "ipv6", "keep-alive", "mptcp", NULL,
        };
        static const char *const uints[] = {
            "to", "keep-alive-count", "keep-alive-idle", "keep-alive-interval", NULL,
        };
        JsonNode *host = mig_qmp_member(addr, path, "host", MIG_QMP_STR, errp);
        JsonNode *port = host ? mig_qmp_member(addr, path, "port", MIG_QMP_STR, errp) : NULL;

        if (!port || !chan_optional_members(addr, path, bools, uints, NULL, errp) ||
            !mig_qmp_no_extra_members(addr, path, known, errp)) {
            return NULL;
        }
        if (json_object_has_member(addr, "to")) {
            *unsupported = g_strdup("Port ranges ('to') are not supported for migration");
            return NULL;
        }
        const char *h = json_node_get_string(host);
        if (strchr(h, ':')) {
            return g_strdup_printf("tcp:[%s]:%s", h, json_node_get_string(port));
        }
        return g_strdup_printf("tcp:%s:%s", h, json_node_get_string(port));
    }
    if (!strcmp(t, "unix")) {
        static const char *const known[] = { "transport", "type", "path", "abstract", "tight",
                                             NULL };
        static const char *const bools[] = { "abstract", "tight", NULL };
        JsonNode *p = mig_qmp_member(addr, path, "path", MIG_QMP_STR, errp);

        if (!p || !chan_optional_members(addr, path, bools, NULL, NULL, errp) ||
            !mig_qmp_no_extra_members(addr, path, known, errp)) {
            return NULL;
        }
        if (json_object_has_member(addr, "abstract") &&
            json_object_get_boolean_member(addr, "abstract")) {
            *unsupported = g_strdup("Abstract unix sockets are not supported for migration");
            return NULL;
        }
        return g_strconcat("unix:", json_node_get_string(p), NULL);
    }
    if (!strcmp(t, "fd")) {
        static const char *const known[] = { "transport", "type", "str", NULL };
        JsonNode *s = mig_qmp_member(addr, path, "str", MIG_QMP_STR, errp);

        if (!s || !mig_qmp_no_extra_members(addr, path, known, errp)) {
            return NULL;
        }
        return g_strconcat("fd:", json_node_get_string(s), NULL);
    }
    if (!strcmp(t, "vsock")) {
        static const char *const known[] = { "transport", "type", "cid", "port", NULL };
        if (!mig_qmp_member(addr, path, "cid", MIG_QMP_STR, errp) ||
            !mig_qmp_member(addr, path, "port", MIG_QMP_STR, errp) ||
            !mig_qmp_no_extra_members(addr, path, known, errp)) {
            return NULL;
        }
        *unsupported = g_strdup("migration protocol 'vsock' is not supported");
        return NULL;
    }
    mig_qmp_error(errp, "Parameter 'type' does not accept value '%s'", t);
    return NULL;
}

/* "exec": the argument vector as one shell command line. */
static char *chan_exec_uri(JsonObject *addr, const char *path, GError **errp)
{
    static const char *const known[] = { "transport", "args", NULL };
    JsonNode *args = mig_qmp_member(addr, path, "args", MIG_QMP_ARRAY, errp);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    JsonArray *list;
    guint n;

    if (!args || !mig_qmp_no_extra_members(addr, path, known, errp)) {
        return NULL;
    }
    list = json_node_get_array(args);
    n = json_array_get_length(list);
    for (guint i = 0; i < n; i++) {
        JsonNode *el = json_array_get_element(list, i);
        if (!JSON_NODE_HOLDS_VALUE(el) || json_node_get_value_type(el) != G_TYPE_STRING) {
            mig_qmp_error(errp, "Invalid parameter type for '%s.args[%u]', expected: string",
                          path, i);
            return NULL;
        }
        g_ptr_array_add(argv, (gpointer)json_node_get_string(el));
    }
    if (n == 0) {
        mig_qmp_error(errp, "Parameter '%s.args' expects a command and its arguments", path);
        return NULL;
    }
    /* ["/bin/sh", "-c", CMD] is exactly what "exec:CMD" runs. */
    if (n == 3 && !strcmp(g_ptr_array_index(argv, 0), "/bin/sh") &&
        !strcmp(g_ptr_array_index(argv, 1), "-c")) {
        return g_strconcat("exec:", (const char *)g_ptr_array_index(argv, 2), NULL);
    }
    GString *cmd = g_string_new("exec:");
    for (guint i = 0; i < n; i++) {
        g_autofree char *q = g_shell_quote(g_ptr_array_index(argv, i));
        if (i) {
            g_string_append_c(cmd, ' ');
        }
        g_string_append(cmd, q);
    }
    return g_string_free(cmd, FALSE);
}

static char *chan_file_uri(JsonObject *addr, const char *path, GError **errp)
{
    static const char *const known[] = { "transport", "filename", "offset", NULL };
    JsonNode *name = mig_qmp_member(addr, path, "filename", MIG_QMP_STR, errp);
    JsonNode *off = name ? mig_qmp_member(addr, path, "offset", MIG_QMP_UINT, errp) : NULL;
    gint64 offset;

    if (!off || !mig_qmp_no_extra_members(addr, path, known, errp)) {
        return NULL;
    }
    offset = json_node_get_int(off);
    if (offset < 0) {
        mig_qmp_error(errp, "Parameter '%s.offset' expects uint64", path);
        return NULL;
    }
    if (offset == 0) {
        return g_strconcat("file:", json_node_get_string(name), NULL);
    }
    return g_strdup_printf("file:%s,offset=%" G_GINT64_FORMAT, json_node_get_string(name),
                           offset);
}

/* One MigrationChannel: visitor checks, then its URI (or @unsupported). */
static char *channel_uri(JsonNode *el, const char *path, char **unsupported, GError **errp)
{
    static const char *const chan_known[] = { "channel-type", "addr", NULL };
    JsonNode *type, *addr_node, *transport;
    JsonObject *ch, *addr;

    ch = mig_qmp_object_element(el, path, errp);
    if (!ch) {
        return NULL;
    }
    type = mig_qmp_member(ch, path, "channel-type", MIG_QMP_STR, errp);
    if (!type) {
        return NULL;
    }
    if (strcmp(json_node_get_string(type), "main") != 0) {
        mig_qmp_error(errp, "Parameter 'channel-type' does not accept value '%s'",
                      json_node_get_string(type));
        return NULL;
    }
    addr_node = mig_qmp_member(ch, path, "addr", MIG_QMP_OBJECT, errp);
    if (!addr_node) {
        return NULL;
    }
    addr = json_node_get_object(addr_node);
    g_autofree char *apath = g_strdup_printf("%s.addr", path);
    transport = mig_qmp_member(addr, apath, "transport", MIG_QMP_STR, errp);
    if (!transport) {
        return NULL;
    }

    const char *t = json_node_get_string(transport);
    char *uri = NULL;
    if (!strcmp(t, "socket")) {
        uri = chan_socket_uri(addr, apath, unsupported, errp);
    } else if (!strcmp(t, "exec")) {
        uri = chan_exec_uri(addr, apath, errp);
    } else if (!strcmp(t, "file")) {
        uri = chan_file_uri(addr, apath, errp);
    } else if (!strcmp(t, "rdma")) {
        static const char *const known[] = {
            "transport", "host", "port", "numeric", "to", "ipv4", "ipv6", "keep-alive",
            "keep-alive-count", "keep-alive-idle", "keep-alive-interval", "mptcp", NULL,
        };
        if (mig_qmp_member(addr, apath, "host", MIG_QMP_STR, errp) &&
            mig_qmp_member(addr, apath, "port", MIG_QMP_STR, errp) &&
            mig_qmp_no_extra_members(addr, apath, known, errp)) {
            *unsupported = g_strdup("migration protocol 'rdma' is not supported");
        }
    } else {
        mig_qmp_error(errp, "Parameter 'transport' does not accept value '%s'", t);
    }
    if ((uri || *unsupported) && !mig_qmp_no_extra_members(ch, path, chan_known, errp)) {
        g_clear_pointer(&uri, g_free);
        g_clear_pointer(unsupported, g_free);
    }
    return uri;
}

/*
 * Exactly one of "uri" and "channels", as the URI the core takes. QEMU's
 * order: the arguments' shape first (every channel), then which of the two
 * was given, then the channel count, then what the address asks for.
 */
static char *migrate_address(JsonObject *args, GError **errp)
{
    const char *uri = json_object_has_member(args, "uri")
                      ? json_object_get_string_member(args, "uri") : NULL;
    JsonArray *channels = json_object_has_member(args, "channels")
                          ? json_object_get_array_member(args, "channels") : NULL;
    guint n = channels ? json_array_get_length(channels) : 0;
    g_autofree char *main_uri = NULL;
    g_autofree char *unsupported = NULL;

    for (guint i = 0; i < n; i++) {
        g_autofree char *path = g_strdup_printf("channels[%u]", i);
        g_autofree char *u = NULL;
        g_autofree char *why = NULL;

        u = channel_uri(json_array_get_element(channels, i), path, &why, errp);
        if (!u && !why) {
            return NULL;
        }
        if (i == 0) {
            main_uri = g_steal_pointer(&u);
            unsupported = g_steal_pointer(&why);
        }
    }
    /* An empty list is no list at all, as for QEMU. */
    if (!uri == !n) {
        mig_qmp_error(errp, "need either 'uri' or 'channels' argument");
        return NULL;
    }
    if (uri) {
        return g_strdup(uri);
    }
    if (n > 1) {
        mig_qmp_error(errp, "Channel list must have only one entry, for type 'main'");
        return NULL;
    }
    if (unsupported) {
        mig_qmp_error(errp, "%s", unsupported);
        return NULL;
    }
    return g_steal_pointer(&main_uri);
}

static bool arg_bool(JsonObject *args, const char *name, bool def)
{
    return json_object_has_member(args, name) ? json_object_get_boolean_member(args, name)
                                              : def;
}

/* ---- the commands ---- */

static JsonNode *qmp_migrate(JsonObject *args, GError **errp)
{
    g_autofree char *uri = NULL;
    GError *err = NULL;

    uri = migrate_address(args, errp);
    if (!uri) {
        return NULL;
    }
    /* "detach" is accepted and ignored: QMP's migrate never waits. */
    if (!qmp_migrate_start(uri, arg_bool(args, "resume", false), &err)) {
        propagate(errp, err);
    }
    return NULL;
}

static JsonNode *qmp_migrate_incoming(JsonObject *args, GError **errp)
{
    g_autofree char *uri = migrate_address(args, errp);
    GError *err = NULL;

    if (!uri) {
        return NULL;
    }
    migrate_set_incoming_exit_on_error(arg_bool(args, "exit-on-error", true));
    if (!qmp_migrate_incoming_start(uri, &err)) {
        propagate(errp, err);
    }
    return NULL;
}

static JsonNode *qmp_query_migrate(JsonObject *args, GError **errp)
{
    JsonObject *info = migration_query_info();

    if (!info) {
        info = json_object_new();
    }
    JsonNode *node = json_node_new(JSON_NODE_OBJECT);

    json_node_take_object(node, info);
    return node;
}

static JsonNode *qmp_migrate_cancel(JsonObject *args, GError **errp)
{
    /* Succeeds even without a migration, as QEMU's does. */
    qmp_migrate_cancel_now();
    return NULL;
}

static JsonNode *qmp_migrate_continue(JsonObject *args, GError **errp)
{
    const char *name = json_object_get_string_member(args, "state");
    MigrationStatus state;
    GError *err = NULL;

    if (!migration_status_parse(name, &state)) {
        mig_qmp_error(errp, "Parameter 'state' does not accept value '%s'", name);
        return NULL;
    }
    if (!qmp_migrate_continue_from(state, &err)) {
        propagate(errp, err);
    }
    return NULL;
}

/* ---- getfd / closefd ---- */

static GMutex monitor_fds_lock;
static GHashTable *monitor_fds;    /* name -> fd + 1 (GINT_TO_POINTER) */

static void monitor_fds_init(void)
{
    if (!monitor_fds) {
        monitor_fds = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    }
}

int monitor_fd_take(const char *fdname)
{
    gpointer value = NULL;
    int fd = -1;

    gpointer key = NULL;

    g_mutex_lock(&monitor_fds_lock);
    if (monitor_fds && g_hash_table_steal_extended(monitor_fds, fdname, &key, &value)) {
        fd = GPOINTER_TO_INT(value) - 1;
        g_free(key);
    }
    g_mutex_unlock(&monitor_fds_lock);
    return fd;
}

static JsonNode *qmp_getfd(JsonObject *args, GError **errp)
{
    const char *name = json_object_get_string_member(args, "fdname");
    gpointer old_key = NULL, old_value = NULL;
    int fd = monitor_take_fd();

    if (fd < 0) {
        mig_qmp_error(errp, "No file descriptor supplied via SCM_RIGHTS");
        return NULL;
    }
    if (g_ascii_isdigit(name[0])) {
        close(fd);
        mig_qmp_error(errp, "Parameter 'fdname' expects a name not starting with a digit");
        return NULL;
    }
    g_mutex_lock(&monitor_fds_lock);
    monitor_fds_init();
    /* A name given again gets the new descriptor; the old one is closed. */
    if (g_hash_table_steal_extended(monitor_fds, name, &old_key, &old_value)) {
        g_free(old_key);
    }
    g_hash_table_insert(monitor_fds, g_strdup(name), GINT_TO_POINTER(fd + 1));
    g_mutex_unlock(&monitor_fds_lock);
    if (old_value) {
        close(GPOINTER_TO_INT(old_value) - 1);
    }
    return NULL;
}

static JsonNode *qmp_closefd(JsonObject *args, GError **errp)
{
    const char *name = json_object_get_string_member(args, "fdname");
    int fd = monitor_fd_take(name);

    if (fd < 0) {
        mig_qmp_error(errp, "File descriptor named '%s' not found", name);
        return NULL;
    }
    close(fd);
    return NULL;
}

/* ---- registration ---- */

static const QmpArgSpec migrate_args[] = {
    { "uri", QMP_ARG_STR, true },
    { "channels", QMP_ARG_ARRAY, true },
    { "detach", QMP_ARG_BOOL, true },
    { "resume", QMP_ARG_BOOL, true },
    { NULL },
};

static const QmpArgSpec migrate_incoming_args[] = {
    { "uri", QMP_ARG_STR, true },
    { "channels", QMP_ARG_ARRAY, true },
    { "exit-on-error", QMP_ARG_BOOL, true },
    { NULL },
};

static const QmpArgSpec migrate_continue_args[] = {
    { "state", QMP_ARG_STR, false },
    { NULL },
};

static const QmpArgSpec fdname_args[] = {
    { "fdname", QMP_ARG_STR, false },
    { NULL },
};

static const QmpCommand migration_qmp_commands[] = {
    { "migrate", qmp_migrate, migrate_args, 0 },
    { "migrate-incoming", qmp_migrate_incoming, migrate_incoming_args, 0 },
    { "query-migrate", qmp_query_migrate, NULL, 0 },
    { "migrate_cancel", qmp_migrate_cancel, NULL, 0 },
    { "migrate-continue", qmp_migrate_continue, migrate_continue_args, 0 },
    { "getfd", qmp_getfd, fdname_args, 0 },
    { "closefd", qmp_closefd, fdname_args, 0 },
};

void migration_monitor_register(void)
{
    static bool registered;

    if (registered) {
        return;
    }
    registered = true;
    migration_options_register_commands();
    qmp_register_commands(migration_qmp_commands, G_N_ELEMENTS(migration_qmp_commands));
    migration_hmp_register_commands();
}
