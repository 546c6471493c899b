/*
 * JSON text as QEMU's monitor writes it: ", " and ": " separators on one
 * line, or one member per line indented by four spaces when pretty;
 * strings with every character outside printable ASCII as a \uXXXX escape
 * (surrogate pairs beyond the BMP, U+FFFD for invalid UTF-8); doubles with
 * 17 significant digits.
 */
#include <string.h>

#include "system/monitor/monitor-internal.h"

static void json_write_indent(GString *out, bool pretty, unsigned depth)
{
    if (pretty) {
        g_string_append_c(out, '\n');
        for (unsigned i = 0; i < depth; i++) {
            g_string_append(out, "    ");
        }
    }
}

static void json_write_string(GString *out, const char *s)
{
    const char *p = s;

    g_string_append_c(out, '"');
    while (*p) {
        gunichar c = g_utf8_get_char_validated(p, -1);
        const char *next;

        if (c == (gunichar)-1 || c == (gunichar)-2) {
            c = 0xFFFD;
            next = p + 1;
        } else {
            next = g_utf8_next_char(p);
        }
        switch (c) {
        case '"':
            g_string_append(out, "\\\"");
            break;
        case '\\':
            g_string_append(out, "\\\\");
            break;
        case '\b':
            g_string_append(out, "\\b");
            break;
        case '\f':
            g_string_append(out, "\\f");
            break;
        case '\n':
            g_string_append(out, "\\n");
            break;
        case '\r':
            g_string_append(out, "\\r");
            break;
        case '\t':
            g_string_append(out, "\\t");
            break;
        default:
            if (c > 0xFFFF) {
                g_string_append_printf(out, "\\u%04X\\u%04X",
                                       0xD800 + ((c - 0x10000) >> 10),
                                       0xDC00 + ((c - 0x10000) & 0x3FF));
            } else if (c < 0x20 || c >= 0x7F) {
                g_string_append_printf(out, "\\u%04X", c);
            } else {
                g_string_append_c(out, (char)c);
            }
        }
        p = next;
    }
    g_string_append_c(out, '"');
}

static void json_write_node(GString *out, JsonNode *node, bool pretty, unsigned depth);

static void json_write_object(GString *out, JsonObject *obj, bool pretty, unsigned depth)
{
    GList *members = json_object_get_members(obj);
    bool first = true;

    g_string_append_c(out, '{');
    for (GList *l = members; l; l = l->next) {
        const char *name = l->data;

        if (!first) {
            g_string_append_c(out, ',');
            if (!pretty) {
                g_string_append_c(out, ' ');
            }
        }
        json_write_indent(out, pretty, depth + 1);
        json_write_string(out, name);
        g_string_append(out, ": ");
        json_write_node(out, json_object_get_member(obj, name), pretty, depth + 1);
        first = false;
    }
    g_list_free(members);
    json_write_indent(out, pretty, depth);
    g_string_append_c(out, '}');
}

static void json_write_array(GString *out, JsonArray *arr, bool pretty, unsigned depth)
{
    guint n = json_array_get_length(arr);

    g_string_append_c(out, '[');
    for (guint i = 0; i < n; i++) {
        if (i) {
            g_string_append_c(out, ',');
            if (!pretty) {
                g_string_append_c(out, ' ');
            }
        }
        json_write_indent(out, pretty, depth + 1);
        json_write_node(out, json_array_get_element(arr, i), pretty, depth + 1);
    }
    json_write_indent(out, pretty, depth);
    g_string_append_c(out, ']');
}

static void json_write_value(GString *out, JsonNode *node)
{
    char buf[G_ASCII_DTOSTR_BUF_SIZE];

    switch (json_node_get_value_type(node)) {
    case G_TYPE_INT64:
        g_string_append_printf(out, "%" G_GINT64_FORMAT, json_node_get_int(node));
        break;
    case G_TYPE_DOUBLE:
        g_string_append(out, g_ascii_formatd(buf, sizeof(buf), "%.17g",
                                             json_node_get_double(node)));
        break;
    case G_TYPE_BOOLEAN:
        g_string_append(out, json_node_get_boolean(node) ? "true" : "false");
        break;
    case G_TYPE_STRING:
        json_write_string(out, json_node_get_string(node) ?: "");
        break;
    default:
        g_string_append(out, "null");
    }
}

static void json_write_node(GString *out, JsonNode *node, bool pretty, unsigned depth)
{
    if (!node) {
        g_string_append(out, "null");
        return;
    }
    switch (json_node_get_node_type(node)) {
    case JSON_NODE_OBJECT:
        json_write_object(out, json_node_get_object(node), pretty, depth);
        break;
    case JSON_NODE_ARRAY:
        json_write_array(out, json_node_get_array(node), pretty, depth);
        break;
    case JSON_NODE_VALUE:
        json_write_value(out, node);
        break;
    case JSON_NODE_NULL:
        g_string_append(out, "null");
        break;
    }
}

void qmp_json_append(GString *out, JsonNode *node, bool pretty)
{
    json_write_node(out, node, pretty, 0);
}

char *qmp_json_to_string(JsonNode *node, bool pretty)
{
    GString *out = g_string_new(NULL);

    qmp_json_append(out, node, pretty);
    return g_string_free(out, FALSE);
}

char *qmp_json_object_to_string(JsonObject *obj, bool pretty)
{
    GString *out = g_string_new(NULL);

    json_write_object(out, obj, pretty, 0);
    return g_string_free(out, FALSE);
}
