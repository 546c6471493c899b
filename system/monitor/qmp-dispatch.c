/*
 * The QMP command table: registration, the envelope checks of a request,
 * argument checks against each command's declared specs, running the
 * handler, and the list query-commands reports. Error texts and classes
 * are QEMU's, since management tools match them.
 */
#include <string.h>

#include "system/monitor/monitor-internal.h"

static GHashTable *qmp_command_index;  /* name -> QmpCommand (owned copy) */
static GPtrArray *qmp_command_list;    /* the same rows, registration order */

G_DEFINE_QUARK(ferry-qmp-error-quark, qmp_error)

const char *qmp_error_class_name(QmpErrorClass cls)
{
    switch (cls) {
    case QMP_ERROR_COMMAND_NOT_FOUND:
        return "CommandNotFound";
    case QMP_ERROR_DEVICE_NOT_ACTIVE:
        return "DeviceNotActive";
    case QMP_ERROR_DEVICE_NOT_FOUND:
        return "DeviceNotFound";
    case QMP_ERROR_KVM_MISSING_CAP:
        return "KVMMissingCap";
    case QMP_ERROR_GENERIC:
    default:
        return "GenericError";
    }
}

void qmp_register_commands(const QmpCommand *cmds, size_t n)
{
    if (!qmp_command_index) {
        qmp_command_index = g_hash_table_new(g_str_hash, g_str_equal);
        qmp_command_list = g_ptr_array_new();
    }
    for (size_t i = 0; i < n; i++) {
        if (g_hash_table_contains(qmp_command_index, cmds[i].name)) {
            g_error("QMP command '%s' registered twice", cmds[i].name);
        }
        QmpCommand *row = g_new(QmpCommand, 1);
        *row = cmds[i];
        g_hash_table_insert(qmp_command_index, (gpointer)row->name, row);
        g_ptr_array_add(qmp_command_list, row);
    }
}

const QmpCommand *qmp_dispatch_find(const char *name)
{
    if (!qmp_command_index) {
        return NULL;
    }
    return g_hash_table_lookup(qmp_command_index, name);
}

JsonNode *qmp_dispatch_list_commands(void)
{
    JsonArray *arr = json_array_new();
    JsonNode *node = json_node_new(JSON_NODE_ARRAY);

    for (guint i = 0; qmp_command_list && i < qmp_command_list->len; i++) {
        const QmpCommand *cmd = g_ptr_array_index(qmp_command_list, i);
        JsonObject *entry = json_object_new();
        json_object_set_string_member(entry, "name", cmd->name);
        json_array_add_object_element(arr, entry);
    }
    json_node_take_array(node, arr);
    return node;
}

static bool qmp_node_is_type(JsonNode *node, GType type)
{
    return JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == type;
}

/* Check one argument against its spec; QEMU's visitor texts. */
static bool qmp_dispatch_check_arg(const QmpArgSpec *spec, JsonNode *val, GError **errp)
{
    const char *expected = NULL;

    switch (spec->type) {
    case QMP_ARG_STR:
        if (!qmp_node_is_type(val, G_TYPE_STRING)) {
            expected = "string";
        }
        break;
    case QMP_ARG_INT:
        if (!qmp_node_is_type(val, G_TYPE_INT64)) {
            expected = "integer";
        }
        break;
    case QMP_ARG_UINT:
        if (!qmp_node_is_type(val, G_TYPE_INT64) || json_node_get_int(val) < 0) {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                        "Parameter '%s' expects uint64", spec->name);
            return false;
        }
        break;
    case QMP_ARG_SIZE:
        if (!qmp_node_is_type(val, G_TYPE_INT64) || json_node_get_int(val) < 0) {
            expected = "size";
        }
        break;
    case QMP_ARG_NUMBER:
        if (!qmp_node_is_type(val, G_TYPE_INT64) && !qmp_node_is_type(val, G_TYPE_DOUBLE)) {
            expected = "number";
        }
        break;
    case QMP_ARG_BOOL:
        if (!qmp_node_is_type(val, G_TYPE_BOOLEAN)) {
            expected = "boolean";
        }
        break;
    case QMP_ARG_OBJECT:
        if (!JSON_NODE_HOLDS_OBJECT(val)) {
            expected = "object";
        }
        break;
    case QMP_ARG_ARRAY:
        if (!JSON_NODE_HOLDS_ARRAY(val)) {
            expected = "array";
        }
        break;
    case QMP_ARG_ANY:
        break;
    }
    if (expected) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Invalid parameter type for '%s', expected: %s", spec->name, expected);
        return false;
    }
    return true;
}

static bool qmp_dispatch_check_args(const QmpCommand *cmd, JsonObject *args, GError **errp)
{
    const QmpArgSpec *spec;

    /* Declared arguments first, in declaration order, like QEMU's visitor. */
    for (spec = cmd->args; spec && spec->name; spec++) {
        JsonNode *val = json_object_get_member(args, spec->name);
        if (!val) {
            if (!spec->optional) {
                g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                            "Parameter '%s' is missing", spec->name);
                return false;
            }
            continue;
        }
        if (!qmp_dispatch_check_arg(spec, val, errp)) {
            return false;
        }
    }

    /* Then anything not declared. */
    GList *members = json_object_get_members(args);
    for (GList *l = members; l; l = l->next) {
        bool known = false;
        for (spec = cmd->args; spec && spec->name; spec++) {
            if (!strcmp(spec->name, l->data)) {
                known = true;
                break;
            }
        }
        if (!known) {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                        "Parameter '%s' is unexpected", (const char *)l->data);
            g_list_free(members);
            return false;
        }
    }
    g_list_free(members);
    return true;
}

JsonNode *qmp_dispatch_command(const char *name, JsonObject *args, GError **errp)
{
    const QmpCommand *cmd = qmp_dispatch_find(name);
    g_autoptr(JsonObject) empty = NULL;
    GError *err = NULL;
    JsonNode *ret;

    if (!cmd) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND,
                    "The command %s has not been found", name);
        return NULL;
    }
    if (!args) {
        args = empty = json_object_new();
    }
    if (!qmp_dispatch_check_args(cmd, args, errp)) {
        return NULL;
    }
    ret = cmd->handler(args, &err);
    if (err) {
        if (ret) {
            json_node_unref(ret);
        }
        g_propagate_error(errp, err);
        return NULL;
    }
    if (!ret) {
        ret = json_node_new(JSON_NODE_OBJECT);
        json_node_take_object(ret, json_object_new());
    }
    return ret;
}

bool qmp_dispatch_check_request(JsonNode *request, bool allow_oob, QmpRequest *req,
                                GError **errp)
{
    const char *exec_key = NULL;
    JsonObject *obj;
    GList *members;
    bool ok = true;

    memset(req, 0, sizeof(*req));
    if (!JSON_NODE_HOLDS_OBJECT(request)) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC, "QMP input must be a JSON object");
        return false;
    }
    obj = json_node_get_object(request);
    req->id = json_object_get_member(obj, "id");    /* echoed even on errors */
    members = json_object_get_members(obj);
    for (GList *l = members; l && ok; l = l->next) {
        const char *key = l->data;
        JsonNode *val = json_object_get_member(obj, key);

        if (!strcmp(key, "execute") || (allow_oob && !strcmp(key, "exec-oob"))) {
            if (!qmp_node_is_type(val, G_TYPE_STRING)) {
                g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                            "QMP input member '%s' must be a string", key);
                ok = false;
            } else if (exec_key) {
                g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                            "QMP input member '%s' clashes with '%s'", key, exec_key);
                ok = false;
            } else {
                exec_key = key;
                req->name = json_node_get_string(val);
                req->oob = !strcmp(key, "exec-oob");
            }
        } else if (!strcmp(key, "arguments")) {
            if (!JSON_NODE_HOLDS_OBJECT(val)) {
                g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                            "QMP input member 'arguments' must be an object");
                ok = false;
            } else {
                req->args = json_node_get_object(val);
            }
        } else if (!strcmp(key, "id")) {
            continue;
        } else {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                        "QMP input member '%s' is unexpected", key);
            ok = false;
        }
    }
    g_list_free(members);
    if (ok && !exec_key) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC, "QMP input lacks member 'execute'");
        ok = false;
    }
    return ok;
}

JsonObject *qmp_dispatch_error_object(const GError *err)
{
    JsonObject *obj = json_object_new();
    QmpErrorClass cls = QMP_ERROR_GENERIC;

    if (err->domain == QMP_ERROR) {
        cls = err->code;
    }
    json_object_set_string_member(obj, "class", qmp_error_class_name(cls));
    json_object_set_string_member(obj, "desc", err->message);
    return obj;
}
