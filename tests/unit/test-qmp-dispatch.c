/*
 * Unit tests of the monitors: the command table and its argument checks,
 * query-commands, the JSON reader and writer, event layout, HMP commands,
 * and the QMP protocol (greeting, negotiation, errors, ids, events) over a
 * real unix socket.
 */
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "system/monitor/monitor-internal.h"
#include "tests/unit/stubs.h"

/* ---- a command with one argument of every type ---- */

static const QmpArgSpec test_args_spec[] = {
    { "s", QMP_ARG_STR, false },
    { "i", QMP_ARG_INT, false },
    { "b", QMP_ARG_BOOL, true },
    { "u", QMP_ARG_UINT, true },
    { "z", QMP_ARG_SIZE, true },
    { "n", QMP_ARG_NUMBER, true },
    { "o", QMP_ARG_OBJECT, true },
    { "a", QMP_ARG_ARRAY, true },
    { "x", QMP_ARG_ANY, true },
    { NULL },
};

static JsonNode *test_echo(JsonObject *args, GError **errp)
{
    JsonNode *node = json_node_new(JSON_NODE_OBJECT);

    json_node_set_object(node, args);
    return node;
}

static JsonNode *test_nothing(JsonObject *args, GError **errp)
{
    return NULL;
}

static JsonNode *test_fail(JsonObject *args, GError **errp)
{
    g_set_error(errp, QMP_ERROR, QMP_ERROR_DEVICE_NOT_FOUND, "Device 'foo' not found");
    return NULL;
}

static const QmpCommand test_commands[] = {
    { "test-args", test_echo, test_args_spec, 0 },
    { "test-nothing", test_nothing, NULL, QMP_CMD_ALLOW_OOB },
    { "test-fail", test_fail, NULL, 0 },
};

static void test_setup_commands(void)
{
    static bool done;

    if (!done) {
        done = true;
        monitor_register_core_commands();
        qmp_register_commands(test_commands, G_N_ELEMENTS(test_commands));
    }
}

static JsonObject *parse_object(const char *json)
{
    g_autoptr(GError) err = NULL;
    JsonNode *node = qmp_json_parse_string(json, &err);
    JsonObject *obj;

    g_assert_no_error(err);
    g_assert_true(JSON_NODE_HOLDS_OBJECT(node));
    obj = json_object_ref(json_node_get_object(node));
    json_node_unref(node);
    return obj;
}

/* Dispatch @name with @json arguments and return the error text (or NULL). */
static char *dispatch_error(const char *name, const char *json)
{
    g_autoptr(JsonObject) args = json ? parse_object(json) : NULL;
    GError *err = NULL;
    JsonNode *ret = qmp_dispatch_command(name, args, &err);
    char *msg;

    if (ret) {
        json_node_unref(ret);
        return NULL;
    }
    g_assert_nonnull(err);
    msg = g_strdup_printf("%s: %s", qmp_error_class_name(err->domain == QMP_ERROR ? err->code
                                                                                   : 0),
                          err->message);
    g_error_free(err);
    return msg;
}

static void assert_dispatch_error(const char *name, const char *json, const char *expected)
{
    g_autofree char *msg = dispatch_error(name, json);

    g_assert_cmpstr(msg, ==, expected);
}

static void test_dispatch_args(void)
{
    test_setup_commands();

    assert_dispatch_error("test-args", "{\"s\": \"a\", \"i\": 1}", NULL);
    assert_dispatch_error("test-args", "{\"s\": \"a\", \"i\": -5, \"b\": true, \"u\": 7, "
                          "\"z\": 4096, \"n\": 1.5, \"o\": {}, \"a\": [], \"x\": null}", NULL);
    assert_dispatch_error("test-args", "{\"s\": \"a\", \"i\": 1, \"n\": 3}", NULL);

    assert_dispatch_error("test-args", NULL, "GenericError: Parameter 's' is missing");
    assert_dispatch_error("test-args", "{\"s\": \"a\"}", "GenericError: Parameter 'i' is missing");
    assert_dispatch_error("test-args", "{\"s\": 1, \"i\": 1}",
                          "GenericError: Invalid parameter type for 's', expected: string");
    assert_dispatch_error("test-args", "{\"s\": \"a\", \"i\": \"1\"}",
                          "GenericError: Invalid parameter type for 'i', expected: integer");
    assert_dispatch_error("test-args", "{\"s\": \"a\", \"i\": 1.0}",
                          "GenericError: Invalid parameter type for 'i', expected: integer");
    /* Past int64 is a number, not json-glib 1.6's wrapped -1. */
    assert_dispatch_error("test-args", "{\"s\": \"a\", \"i\": 18446744073709551615}",
                          "GenericError: Invalid parameter type for 'i', expected: integer");
    assert_dispatch_error("test-args", "{\"s\": \"a\", \"i\": 1, \"b\": 1}",
                          "GenericError: Invalid parameter type for 'b', expected: boolean");
    assert_dispatch_error("test-args", "{\"s\": \"a\", \"i\": 1, \"u\": -1}",
                          "GenericError: Parameter 'u' expects uint64");
    assert_dispatch_error("test-args", "{\"s\": \"a\", \"i\": 1, \"z\": \"1M\"}",
                          "GenericError: Invalid parameter type for 'z', expected: size");
    assert_dispatch_error("test-args", "{\"s\": \"a\", \"i\": 1, \"n\": false}",
                          "GenericError: Invalid parameter type for 'n', expected: number");
    assert_dispatch_error("test-args", "{\"s\": \"a\", \"i\": 1, \"o\": []}",
                          "GenericError: Invalid parameter type for 'o', expected: object");
    assert_dispatch_error("test-args", "{\"s\": \"a\", \"i\": 1, \"a\": {}}",
                          "GenericError: Invalid parameter type for 'a', expected: array");
    assert_dispatch_error("test-args", "{\"s\": \"a\", \"i\": 1, \"extra\": 1}",
                          "GenericError: Parameter 'extra' is unexpected");
    assert_dispatch_error("test-nothing", "{\"x\": 1}",
                          "GenericError: Parameter 'x' is unexpected");
    assert_dispatch_error("no-such-command", NULL,
                          "CommandNotFound: The command no-such-command has not been found");
    assert_dispatch_error("test-fail", NULL, "DeviceNotFound: Device 'foo' not found");
}

static void test_dispatch_empty_return(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) ret = NULL;
    g_autofree char *text = NULL;

    test_setup_commands();
    ret = qmp_dispatch_command("test-nothing", NULL, &err);
    g_assert_no_error(err);
    text = qmp_json_to_string(ret, false);
    g_assert_cmpstr(text, ==, "{}");
}

static void test_error_classes(void)
{
    g_autoptr(GError) generic = g_error_new(G_IO_ERROR, G_IO_ERROR_FAILED, "boom");
    g_autoptr(JsonObject) obj = qmp_dispatch_error_object(generic);
    g_autofree char *text = qmp_json_object_to_string(obj, false);

    g_assert_cmpstr(text, ==, "{\"class\": \"GenericError\", \"desc\": \"boom\"}");
    g_assert_cmpstr(qmp_error_class_name(QMP_ERROR_COMMAND_NOT_FOUND), ==, "CommandNotFound");
    g_assert_cmpstr(qmp_error_class_name(QMP_ERROR_DEVICE_NOT_ACTIVE), ==, "DeviceNotActive");
    g_assert_cmpstr(qmp_error_class_name(QMP_ERROR_KVM_MISSING_CAP), ==, "KVMMissingCap");
}

static void test_query_commands(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) ret = NULL;
    g_autoptr(GHashTable) names = g_hash_table_new(g_str_hash, g_str_equal);
    JsonArray *arr;

    test_setup_commands();
    ret = qmp_dispatch_command("query-commands", NULL, &err);
    g_assert_no_error(err);
    arr = json_node_get_array(ret);
    for (guint i = 0; i < json_array_get_length(arr); i++) {
        JsonObject *o = json_array_get_object_element(arr, i);
        g_assert_cmpuint(json_object_get_size(o), ==, 1);
        g_hash_table_add(names, (gpointer)json_object_get_string_member(o, "name"));
    }
    const char *expected[] = {
        "qmp_capabilities", "query-version", "query-commands", "query-status", "query-name",
        "query-kvm", "query-cpus-fast", "stop", "cont", "system_reset", "system_powerdown",
        "quit", "human-monitor-command", "test-args", "test-nothing",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(expected); i++) {
        g_assert_true(g_hash_table_contains(names, expected[i]));
    }
}

static char *dispatch_json(const char *name, const char *args)
{
    g_autoptr(JsonObject) a = args ? parse_object(args) : NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) ret = qmp_dispatch_command(name, a, &err);

    g_assert_no_error(err);
    return qmp_json_to_string(ret, false);
}

static void test_core_commands(void)
{
    g_autofree char *version = NULL;
    g_autofree char *status = NULL;
    g_autofree char *kvm = NULL;
    g_autofree char *cpus = NULL;
    g_autofree char *name0 = NULL;
    g_autofree char *name1 = NULL;

    test_setup_commands();
    version = dispatch_json("query-version", NULL);
    g_assert_cmpstr(version, ==, "{\"qemu\": {\"micro\": 0, \"minor\": 1, \"major\": 0}, "
                    "\"package\": \"ferry-0.1.0\"}");

    stub_runstate = RUN_STATE_RUNNING;
    status = dispatch_json("query-status", NULL);
    g_assert_cmpstr(status, ==, "{\"running\": true, \"singlestep\": false, "
                    "\"status\": \"running\"}");
    kvm = dispatch_json("query-kvm", NULL);
    g_assert_cmpstr(kvm, ==, "{\"enabled\": true, \"present\": true}");
    cpus = dispatch_json("query-cpus-fast", NULL);
    g_assert_cmpstr(cpus, ==,
                    "[{\"cpu-index\": 0, \"qom-path\": \"/machine/unattached/device[0]\", "
                    "\"thread-id\": 1000, \"props\": {\"core-id\": 0, \"thread-id\": 0, "
                    "\"socket-id\": 0}, \"target\": \"x86_64\"}, "
                    "{\"cpu-index\": 1, \"qom-path\": \"/machine/unattached/device[1]\", "
                    "\"thread-id\": 1001, \"props\": {\"core-id\": 0, \"thread-id\": 0, "
                    "\"socket-id\": 1}, \"target\": \"x86_64\"}]");

    name0 = dispatch_json("query-name", NULL);
    g_assert_cmpstr(name0, ==, "{}");
    monitor_set_vm_name("guest1");
    name1 = dispatch_json("query-name", NULL);
    g_assert_cmpstr(name1, ==, "{\"name\": \"guest1\"}");
    monitor_set_vm_name(NULL);

    g_free(dispatch_json("stop", NULL));
    g_assert_cmpint(stub_runstate, ==, RUN_STATE_PAUSED);
    g_free(dispatch_json("cont", NULL));
    g_assert_cmpint(stub_runstate, ==, RUN_STATE_RUNNING);
    stub_runstate = RUN_STATE_INMIGRATE;
    assert_dispatch_error("cont", NULL, "GenericError: Migration is not complete yet");
    stub_runstate = RUN_STATE_RUNNING;

    int resets = stub_reset_requests;
    g_free(dispatch_json("system_reset", NULL));
    g_assert_cmpint(stub_reset_requests, ==, resets + 1);
    int powerdowns = stub_powerdown_requests;
    g_free(dispatch_json("system_powerdown", NULL));
    g_assert_cmpint(stub_powerdown_requests, ==, powerdowns + 1);
}

/* ---- JSON reader and writer ---- */

static void assert_parse_error(const char *json, const char *expected)
{
    g_autoptr(GError) err = NULL;
    JsonNode *node = qmp_json_parse_string(json, &err);

    g_assert_null(node);
    g_assert_nonnull(err);
    g_assert_cmpstr(err->message, ==, expected);
}

/* json-glib's own texts vary between its versions: match a fragment only. */
static void assert_glib_parse_error(const char *json, const char *fragment)
{
    g_autoptr(GError) err = NULL;
    JsonNode *node = qmp_json_parse_string(json, &err);

    g_assert_null(node);
    g_assert_nonnull(err);
    g_assert_true(g_str_has_prefix(err->message, "JSON parse error, "));
    g_assert_null(strchr(err->message, '\n'));
    g_assert_nonnull(strstr(err->message, fragment));
}

static void assert_roundtrip(const char *json, const char *expected)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) node = qmp_json_parse_string(json, &err);
    g_autofree char *text = NULL;

    g_assert_no_error(err);
    text = qmp_json_to_string(node, false);
    g_assert_cmpstr(text, ==, expected);
}

static void test_json_parse(void)
{
    assert_roundtrip("{'a' : \"b\\\"c\", \"d\": [1, -2, 3.5, 1e3, true, false, null]}",
                     "{\"a\": \"b\\\"c\", \"d\": [1, -2, 3.5, 1000, true, false, null]}");
    assert_roundtrip("\"\\u00e9\\ud83d\\ude00\\n\\/\"", "\"\\u00E9\\uD83D\\uDE00\\n/\"");
    assert_roundtrip("'\\'\"'", "\"'\\\"\"");
    assert_roundtrip("\"it\\'s 'q'\"", "\"it's 'q'\"");
    assert_roundtrip("['a\\\\', '\\\\\\'', '\\\"']", "[\"a\\\\\", \"\\\\'\", \"\\\"\"]");
    assert_roundtrip("-0", "0");
    assert_roundtrip("{}", "{}");
    assert_roundtrip("[]", "[]");
    assert_roundtrip("  [\n1\r\n,\t2 ]  ", "[1, 2]");

    /* Past int64 a number is a double, never json-glib's wrapped integer. */
    assert_roundtrip("[9223372036854775807, -9223372036854775808]",
                     "[9223372036854775807, -9223372036854775808]");
    assert_roundtrip("[18446744073709551615, -9223372036854775809]",
                     "[1.8446744073709552e+19, -9.2233720368547758e+18]");

    /* json-glib leniencies QEMU rejects; harmless for QMP, pinned so a change shows. */
    assert_roundtrip("{\"a\": 1, \"a\": 2}", "{\"a\": 2}");
    assert_roundtrip("\"\\x\"", "\"x\"");
    assert_roundtrip("01", "1");

    /* Errors the stream splitter finds itself: exact texts. */
    assert_parse_error("", "JSON parse error, expecting value");
    assert_parse_error("  \n ", "JSON parse error, expecting value");
    assert_parse_error("@", "JSON parse error, stray '@'");
    assert_parse_error("]", "JSON parse error, stray ']'");
    assert_parse_error(", 1", "JSON parse error, stray ','");
    assert_parse_error("{\"a\": \xff}", "JSON parse error, stray byte 0xff");
    assert_parse_error("[1 /* no comments */]", "JSON parse error, stray '/'");
    assert_parse_error("{\"a\": 1", "JSON parse error, premature EOI");
    assert_parse_error("[\"abc", "JSON parse error, unterminated string");
    assert_parse_error("\"a\tb\"", "JSON parse error, control character in string");

    /* Errors json-glib finds: its text after our prefix, on one line. */
    assert_glib_parse_error("[1,]", "`,'");
    assert_glib_parse_error("{\"a\" 1}", "expected character `:'");
    assert_glib_parse_error("{1: 2}", "expected string constant");
    assert_glib_parse_error("{\"a\": }", "`}'");
    assert_glib_parse_error("{\"a\": 1 \"b\": 2}", "expected character `,'");
    assert_glib_parse_error("[1 2]", "expected character `,'");
    assert_glib_parse_error("tru", "`tru'");
    assert_glib_parse_error("[nul]", "`nul'");
    assert_glib_parse_error("\"\\ud800\"", "string");
    assert_glib_parse_error("\"\xc3\x28\"", "UTF-8");
    assert_glib_parse_error("{'execute': 'query-status' ]", "expected");
}

typedef struct StreamResult {
    GPtrArray *items;   /* "V:<json>" or "E:<message>" */
} StreamResult;

static void stream_collect(void *opaque, JsonNode *value, GError *err)
{
    StreamResult *r = opaque;

    if (err) {
        g_ptr_array_add(r->items, g_strdup_printf("E:%s", err->message));
        g_error_free(err);
    } else {
        g_autofree char *text = qmp_json_to_string(value, false);
        g_ptr_array_add(r->items, g_strdup_printf("V:%s", text));
        json_node_unref(value);
    }
}

/* Feed @input in pieces of @chunk bytes (0: all at once); check what came out. */
static void assert_stream(const char *input, size_t len, size_t chunk,
                          const char *const *expected, size_t n_expected)
{
    StreamResult r = { g_ptr_array_new_with_free_func(g_free) };
    QmpJsonParser *p = qmp_json_parser_new(stream_collect, &r);

    chunk = chunk ? chunk : len;
    for (size_t off = 0; off < len; off += chunk) {
        qmp_json_parser_feed(p, input + off, MIN(chunk, len - off));
    }
    for (size_t i = 0; i < MIN(r.items->len, n_expected); i++) {
        const char *got = g_ptr_array_index(r.items, i);
        /* A json-glib text is matched by prefix: "E:JSON parse error, *". */
        if (g_str_has_suffix(expected[i], "*")) {
            g_assert_cmpint(strncmp(got, expected[i], strlen(expected[i]) - 1), ==, 0);
        } else {
            g_assert_cmpstr(got, ==, expected[i]);
        }
    }
    g_assert_cmpuint(r.items->len, ==, n_expected);
    qmp_json_parser_free(p);
    g_ptr_array_free(r.items, TRUE);
}

static void test_json_stream_resync(void)
{
    const char *input =
        "{\"execute\": @ bad stuff\n"
        "{\"execute\": \"a\"}{\"execute\"\n: \"b\"}  42 \"s\"\n"
        "{\"x\": \"unterminated\n"
        "[1, 2]\xff{\"y\": 1}"
        "{'execute': 'c', 'arguments': {'s': 'it\\'s \"q\"'}}\n"
        "{\"execute\": foo} 42 {\"k\": 1}\n"   /* 42 is skipped, the next object read */
        "{\"a\": [1}]]]{\"z\": 2}\n";           /* one error, resync at a top-level '{' */
    const char *expected[] = {
        "E:JSON parse error, stray '@'",
        "V:{\"execute\": \"a\"}",
        "V:{\"execute\": \"b\"}",
        "V:42",
        "V:\"s\"",
        "E:JSON parse error, unterminated string",
        "V:[1, 2]",
        "E:JSON parse error, stray byte 0xff",
        "V:{\"y\": 1}",
        "V:{\"execute\": \"c\", \"arguments\": {\"s\": \"it's \\\"q\\\"\"}}",
        "E:JSON parse error, *",
        "V:{\"k\": 1}",
        "E:JSON parse error, *",
        "V:{\"z\": 2}",
    };

    /* Byte by byte, in odd pieces and all at once: chunking must not matter. */
    assert_stream(input, strlen(input), 1, expected, G_N_ELEMENTS(expected));
    assert_stream(input, strlen(input), 7, expected, G_N_ELEMENTS(expected));
    assert_stream(input, strlen(input), 0, expected, G_N_ELEMENTS(expected));
}

static void test_json_stream_split(void)
{
    StreamResult r = { g_ptr_array_new_with_free_func(g_free) };
    QmpJsonParser *p = qmp_json_parser_new(stream_collect, &r);

    /* A value split across feeds comes out once, when it is complete. */
    qmp_json_parser_feed(p, "{\"execute\": \"qu", 15);
    qmp_json_parser_feed(p, "ery-kvm\", 'id': '", 17);
    g_assert_cmpuint(r.items->len, ==, 0);
    qmp_json_parser_feed(p, "x\\'y'}", 6);
    g_assert_cmpuint(r.items->len, ==, 1);
    g_assert_cmpstr(g_ptr_array_index(r.items, 0), ==,
                    "V:{\"execute\": \"query-kvm\", \"id\": \"x'y\"}");

    /* A bare number needs the byte after it to end. */
    qmp_json_parser_feed(p, "1", 1);
    qmp_json_parser_feed(p, "7", 1);
    g_assert_cmpuint(r.items->len, ==, 1);
    qmp_json_parser_feed(p, "\n", 1);
    g_assert_cmpstr(g_ptr_array_index(r.items, 1), ==, "V:17");

    /* reset drops a partial value (the peer went away). */
    qmp_json_parser_feed(p, "{\"a\": [", 7);
    qmp_json_parser_reset(p);
    qmp_json_parser_feed(p, "{\"b\": 1}", 8);
    g_assert_cmpuint(r.items->len, ==, 3);
    g_assert_cmpstr(g_ptr_array_index(r.items, 2), ==, "V:{\"b\": 1}");

    qmp_json_parser_free(p);
    g_ptr_array_free(r.items, TRUE);
}

static void test_json_stream_limits(void)
{
    g_autoptr(GString) in = g_string_new(NULL);
    const char *deep_ok[] = { "V:[[1]]", "V:{\"ok\": 1}" };
    const char *deep_bad[] = {
        "E:JSON parse error, nesting deeper than 1024 levels",
        "V:{\"ok\": 1}",
        "E:JSON parse error, nesting deeper than 1024 levels",
        "V:{\"ok\": 2}",
    };
    const char *big[] = { "E:JSON parse error, value larger than 64 MiB", "V:{\"ok\": 1}" };
    g_autofree char *nested = NULL;

    /* 1024 levels are fine. */
    for (int i = 0; i < 1024; i++) {
        g_string_append_c(in, '[');
    }
    for (int i = 0; i < 1024; i++) {
        g_string_append_c(in, ']');
    }
    {
        g_autoptr(GError) err = NULL;
        g_autoptr(JsonNode) node = qmp_json_parse_string(in->str, &err);
        g_assert_no_error(err);
        g_assert_true(JSON_NODE_HOLDS_ARRAY(node));
    }
    assert_stream("[[1]]{\"ok\": 1}", 14, 1, deep_ok, G_N_ELEMENTS(deep_ok));

    /*
     * 1025 are not. The rest of the broken value is followed, not kept, so
     * a '{' after it on the same line recovers, and so does a line end.
     */
    g_string_truncate(in, 0);
    for (int i = 0; i < 1025; i++) {
        g_string_append(in, "{\"a\": ");
    }
    g_string_append(in, "1");
    for (int i = 0; i < 1025; i++) {
        g_string_append_c(in, '}');
    }
    nested = g_strdup(in->str);
    g_string_append(in, "{\"ok\": 1}");
    for (int i = 0; i < 1025; i++) {
        g_string_append_c(in, '[');     /* never closed: the line end recovers */
    }
    g_string_append(in, "\n{\"ok\": 2}");
    assert_stream(in->str, in->len, 0, deep_bad, G_N_ELEMENTS(deep_bad));
    {
        g_autoptr(GError) err = NULL;
        g_assert_null(qmp_json_parse_string(nested, &err));
        g_assert_cmpstr(err->message, ==, "JSON parse error, nesting deeper than 1024 levels");
    }

    /* A value past 64 MiB is refused, and the stream carries on after it. */
    g_string_truncate(in, 0);
    g_string_append(in, "[\"");
    g_string_set_size(in, 2 + (64u << 20) + 16);
    memset(in->str + 2, 'a', (64u << 20) + 16);
    g_string_append(in, "\"]{\"ok\": 1}");
    assert_stream(in->str, in->len, 1u << 20, big, G_N_ELEMENTS(big));
}

static void test_json_write(void)
{
    g_autoptr(JsonObject) obj = json_object_new();
    JsonObject *inner = json_object_new();
    JsonArray *arr = json_array_new();
    g_autofree char *flat = NULL;
    g_autofree char *pretty = NULL;

    json_array_add_int_element(arr, 1);
    json_array_add_double_element(arr, 0.1);
    json_array_add_string_element(arr, "caf\xc3\xa9\t\x01\x7f");
    json_object_set_array_member(obj, "list", arr);
    json_object_set_object_member(obj, "empty", inner);
    json_object_set_null_member(obj, "nothing");

    flat = qmp_json_object_to_string(obj, false);
    g_assert_cmpstr(flat, ==, "{\"list\": [1, 0.10000000000000001, "
                    "\"caf\\u00E9\\t\\u0001\\u007F\"], \"empty\": {}, \"nothing\": null}");
    pretty = qmp_json_object_to_string(obj, true);
    g_assert_cmpstr(pretty, ==,
                    "{\n"
                    "    \"list\": [\n"
                    "        1,\n"
                    "        0.10000000000000001,\n"
                    "        \"caf\\u00E9\\t\\u0001\\u007F\"\n"
                    "    ],\n"
                    "    \"empty\": {\n"
                    "    },\n"
                    "    \"nothing\": null\n"
                    "}");
}

static void test_event_format(void)
{
    g_autoptr(JsonObject) ev = qmp_event_build("STOP", NULL, 1700000000123456LL);
    g_autofree char *text = qmp_json_object_to_string(ev, false);
    JsonObject *data = json_object_new();
    g_autoptr(JsonObject) ev2 = NULL;
    g_autofree char *text2 = NULL;

    g_assert_cmpstr(text, ==, "{\"timestamp\": {\"seconds\": 1700000000, "
                    "\"microseconds\": 123456}, \"event\": \"STOP\"}");

    json_object_set_boolean_member(data, "guest", FALSE);
    json_object_set_string_member(data, "reason", "host-qmp-quit");
    ev2 = qmp_event_build("SHUTDOWN", data, 5000001);
    text2 = qmp_json_object_to_string(ev2, false);
    g_assert_cmpstr(text2, ==, "{\"timestamp\": {\"seconds\": 5, \"microseconds\": 1}, "
                    "\"event\": \"SHUTDOWN\", \"data\": {\"guest\": false, "
                    "\"reason\": \"host-qmp-quit\"}}");
}

/* ---- HMP ---- */

static char *hmp_run(const char *line)
{
    GString *out = g_string_new(NULL);

    hmp_execute(line, out);
    return g_string_free(out, FALSE);
}

static void test_hmp_commands(void)
{
    g_autofree char *help = NULL;
    g_autofree char *help_info = NULL;
    g_autofree char *help_cont = NULL;
    g_autofree char *unknown = NULL;
    g_autofree char *unknown_info = NULL;
    g_autofree char *cpus = NULL;
    g_autofree char *regs = NULL;
    g_autofree char *version = NULL;

    test_setup_commands();
    help = hmp_run("help");
    g_assert_nonnull(strstr(help, "cont|c  -- resume emulation\n"));
    g_assert_nonnull(strstr(help, "help|? [cmd] -- show the help\n"));
    g_assert_nonnull(strstr(help, "info [subcommand] -- show various information"));
    g_assert_nonnull(strstr(help, "quit|q  -- quit the emulator\n"));
    g_assert_null(strstr(help, "info status"));
    help_info = hmp_run("? info");
    g_assert_nonnull(strstr(help_info, "info status  -- show the current VM status"));
    g_assert_nonnull(strstr(help_info, "info registers [-a|vcpu] -- "));
    help_cont = hmp_run("help c");
    g_assert_cmpstr(help_cont, ==, "cont|c  -- resume emulation\n");

    unknown = hmp_run("xyz 1 2");
    g_assert_cmpstr(unknown, ==, "unknown command: 'xyz'\n");
    unknown_info = hmp_run("info bogus");
    g_assert_cmpstr(unknown_info, ==, "unknown command: 'info bogus'\n");

    stub_runstate = RUN_STATE_RUNNING;
    {
        g_autofree char *s = hmp_run("info status");
        g_assert_cmpstr(s, ==, "VM status: running\n");
    }
    stub_runstate = RUN_STATE_PAUSED;
    {
        g_autofree char *s = hmp_run("  info   status  ");
        g_assert_cmpstr(s, ==, "VM status: paused\n");
    }
    stub_runstate = RUN_STATE_PRELAUNCH;
    {
        g_autofree char *s = hmp_run("info status");
        g_assert_cmpstr(s, ==, "VM status: paused (prelaunch)\n");
    }
    {
        g_autofree char *s = hmp_run("c");
        g_assert_cmpstr(s, ==, "");
        g_assert_cmpint(stub_runstate, ==, RUN_STATE_RUNNING);
    }
    stub_runstate = RUN_STATE_INMIGRATE;
    {
        g_autofree char *s = hmp_run("cont");
        g_assert_cmpstr(s, ==, "Error: Migration is not complete yet\n");
    }
    stub_runstate = RUN_STATE_RUNNING;

    version = hmp_run("info version");
    g_assert_cmpstr(version, ==, "0.1.0\n");
    cpus = hmp_run("info cpus");
    g_assert_cmpstr(cpus, ==, "* CPU #0: thread_id=1000\n  CPU #1: thread_id=1001\n");
    regs = hmp_run("info registers -a");
    g_assert_cmpstr(regs, ==, "\nCPU#0\nRAX=0000000000000000 RBX=0000000000000000\n"
                    "\nCPU#1\nRAX=0000000000000001 RBX=0000000000000000\n");

    int quits = stub_shutdown_requests;
    g_free(hmp_run("q"));
    g_assert_cmpint(stub_shutdown_requests, ==, quits + 1);
    g_assert_cmpint(stub_last_shutdown_cause, ==, SHUTDOWN_CAUSE_HOST_QMP_QUIT);
}

static void test_human_monitor_command(void)
{
    g_autofree char *r1 = NULL;
    g_autofree char *r2 = NULL;

    test_setup_commands();
    stub_runstate = RUN_STATE_RUNNING;
    r1 = dispatch_json("human-monitor-command", "{\"command-line\": \"info status\"}");
    g_assert_cmpstr(r1, ==, "\"VM status: running\\r\\n\"");
    r2 = dispatch_json("human-monitor-command",
                       "{\"command-line\": \"info cpus\", \"cpu-index\": 1}");
    g_assert_cmpstr(r2, ==, "\"  CPU #0: thread_id=1000\\r\\n* CPU #1: thread_id=1001\\r\\n\"");
    assert_dispatch_error("human-monitor-command", "{\"command-line\": \"\", \"cpu-index\": 9}",
                          "GenericError: Parameter 'cpu-index' expects a CPU number");
    assert_dispatch_error("human-monitor-command", "{}",
                          "GenericError: Parameter 'command-line' is missing");
}

/* ---- the QMP protocol over a unix socket ---- */

typedef struct QmpClient {
    int fd;
    GString *in;
} QmpClient;

/* Pump the main context until a full "\r\n"-terminated line arrived. */
static char *qmp_client_read_line(QmpClient *c)
{
    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

    for (;;) {
        char *eol = strstr(c->in->str, "\r\n");
        if (eol) {
            char *line = g_strndup(c->in->str, eol - c->in->str);
            g_string_erase(c->in, 0, eol - c->in->str + 2);
            return line;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_main_context_iteration(NULL, FALSE);
        char buf[4096];
        ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            g_string_append_len(c->in, buf, n);
        } else {
            g_usleep(1000);
        }
    }
}

static void qmp_client_send(QmpClient *c, const char *text)
{
    g_assert_cmpint(send(c->fd, text, strlen(text), MSG_NOSIGNAL), ==, (ssize_t)strlen(text));
}

static void assert_reply(QmpClient *c, const char *request, const char *expected)
{
    g_autofree char *line = NULL;

    qmp_client_send(c, request);
    line = qmp_client_read_line(c);
    g_assert_cmpstr(line, ==, expected);
}

static gpointer emit_from_thread(gpointer opaque)
{
    JsonObject *data = json_object_new();

    json_object_set_string_member(data, "from", "thread");
    qmp_event_emit("TEST_THREAD", data);
    return NULL;
}

static void test_qmp_protocol(void)
{
    g_autofree char *dir = g_dir_make_tmp("ferry-qmp-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "qmp.sock", NULL);
    g_autofree char *opts = g_strdup_printf("socket,id=qmp0,path=%s,server=on,wait=off", path);
    g_autoptr(GError) err = NULL;
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    QmpClient c = { .in = g_string_new(NULL) };
    Chardev *chr;

    test_setup_commands();
    stub_runstate = RUN_STATE_RUNNING;
    chr = chardev_new_from_opts(opts, &err);
    g_assert_no_error(err);
    g_assert_true(monitor_new_qmp(chr, false, &err));
    g_assert_no_error(err);

    c.fd = socket(AF_UNIX, SOCK_STREAM, 0);
    g_strlcpy(un.sun_path, path, sizeof(un.sun_path));
    g_assert_cmpint(connect(c.fd, (struct sockaddr *)&un, sizeof(un)), ==, 0);

    {
        g_autofree char *greeting = qmp_client_read_line(&c);
        g_assert_cmpstr(greeting, ==,
                        "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 1, "
                        "\"major\": 0}, \"package\": \"ferry-0.1.0\"}, "
                        "\"capabilities\": [\"oob\"]}}");
    }

    /* Negotiation mode. */
    assert_reply(&c, "{\"execute\": \"query-status\"}",
                 "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Expecting "
                 "capabilities negotiation with 'qmp_capabilities'\"}}");
    assert_reply(&c, "{\"execute\": \"query-status\", \"id\": \"x\"}",
                 "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Expecting "
                 "capabilities negotiation with 'qmp_capabilities'\"}, \"id\": \"x\"}");
    qmp_event_emit("NOT_SEEN", NULL);  /* not negotiated yet: not delivered */
    assert_reply(&c, "{\"execute\": \"qmp_capabilities\", \"arguments\": "
                 "{\"enable\": [\"bogus\"]}}",
                 "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter "
                 "'enable[0]' does not accept value 'bogus'\"}}");
    assert_reply(&c, "{\"execute\": \"qmp_capabilities\", \"id\": 1}",
                 "{\"return\": {}, \"id\": 1}");

    /* Command mode. */
    assert_reply(&c, "{\"execute\": \"qmp_capabilities\"}",
                 "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Capabilities "
                 "negotiation is already complete, command ignored\"}}");
    assert_reply(&c, "{\"execute\": \"query-status\", \"id\": {\"a\": [1]}}",
                 "{\"return\": {\"running\": true, \"singlestep\": false, \"status\": "
                 "\"running\"}, \"id\": {\"a\": [1]}}");
    assert_reply(&c, "{\"execute\": \"nope\"}",
                 "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command nope "
                 "has not been found\"}}");
    assert_reply(&c, "[1]", "{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input "
                 "must be a JSON object\"}}");
    assert_reply(&c, "{\"arguments\": {}, \"id\": 7}",
                 "{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input lacks "
                 "member 'execute'\"}, \"id\": 7}");
    assert_reply(&c, "{\"execute\": \"stop\", \"foo\": 1}",
                 "{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member "
                 "'foo' is unexpected\"}}");
    assert_reply(&c, "{\"execute\": 1}",
                 "{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member "
                 "'execute' must be a string\"}}");
    assert_reply(&c, "{\"execute\": \"stop\", \"arguments\": []}",
                 "{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member "
                 "'arguments' must be an object\"}}");
    assert_reply(&c, "{\"exec-oob\": \"test-nothing\"}",
                 "{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member "
                 "'exec-oob' is unexpected\"}}");
    assert_reply(&c, "{\"execute\": \"test-args\", \"arguments\": {\"s\": \"a\"}}",
                 "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'i' is "
                 "missing\"}}");

    /* A parse error (json-glib's text after our prefix), then the connection works. */
    {
        g_autofree char *line = NULL;

        qmp_client_send(&c, "{\"execute\": foo}\n");
        line = qmp_client_read_line(&c);
        g_assert_true(g_str_has_prefix(line, "{\"error\": {\"class\": \"GenericError\", "
                                       "\"desc\": \"JSON parse error, "));
        g_assert_nonnull(strstr(line, "foo"));
    }
    assert_reply(&c, "{'execute': 'query-kvm'}",
                 "{\"return\": {\"enabled\": true, \"present\": true}}");

    /* Events: from the main thread at once, from another thread via the loop. */
    qmp_event_emit("TEST_MAIN", NULL);
    {
        g_autofree char *line = qmp_client_read_line(&c);
        g_assert_true(g_str_has_prefix(line, "{\"timestamp\": {\"seconds\": "));
        g_assert_true(g_str_has_suffix(line, "}, \"event\": \"TEST_MAIN\"}"));
    }
    g_thread_join(g_thread_new("emitter", emit_from_thread, NULL));
    {
        g_autofree char *line = qmp_client_read_line(&c);
        g_assert_true(g_str_has_suffix(line, "\"event\": \"TEST_THREAD\", "
                                       "\"data\": {\"from\": \"thread\"}}"));
    }

    /* OOB once enabled: reconnect and negotiate with it. */
    close(c.fd);
    g_string_truncate(c.in, 0);
    c.fd = socket(AF_UNIX, SOCK_STREAM, 0);
    g_assert_cmpint(connect(c.fd, (struct sockaddr *)&un, sizeof(un)), ==, 0);
    g_free(qmp_client_read_line(&c));  /* greeting again */
    assert_reply(&c, "{\"execute\": \"qmp_capabilities\", \"arguments\": "
                 "{\"enable\": [\"oob\"]}}", "{\"return\": {}}");
    assert_reply(&c, "{\"exec-oob\": \"test-nothing\", \"id\": \"o1\"}",
                 "{\"return\": {}, \"id\": \"o1\"}");
    assert_reply(&c, "{\"exec-oob\": \"stop\"}",
                 "{\"error\": {\"class\": \"GenericError\", \"desc\": \"The command stop "
                 "does not support OOB\"}}");
    assert_reply(&c, "{\"exec-oob\": \"stop\", \"execute\": \"stop\"}",
                 "{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member "
                 "'execute' clashes with 'exec-oob'\"}}");

    /* quit replies, then asks the main loop to shut down. */
    int quits = stub_shutdown_requests;
    assert_reply(&c, "{\"execute\": \"quit\"}", "{\"return\": {}}");
    g_assert_cmpint(stub_shutdown_requests, ==, quits + 1);

    close(c.fd);
    g_string_free(c.in, TRUE);
    chardev_cleanup_all();
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    qmp_event_emit("AFTER_CLEANUP", NULL);     /* dropped, not a crash */
    g_rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    /* The test thread plays the main loop's thread. */
    g_main_context_acquire(g_main_context_default());

    g_test_add_func("/qmp/dispatch/args", test_dispatch_args);
    g_test_add_func("/qmp/dispatch/empty-return", test_dispatch_empty_return);
    g_test_add_func("/qmp/dispatch/error-classes", test_error_classes);
    g_test_add_func("/qmp/dispatch/query-commands", test_query_commands);
    g_test_add_func("/qmp/dispatch/core-commands", test_core_commands);
    g_test_add_func("/qmp/json/parse", test_json_parse);
    g_test_add_func("/qmp/json/stream-resync", test_json_stream_resync);
    g_test_add_func("/qmp/json/stream-split", test_json_stream_split);
    g_test_add_func("/qmp/json/stream-limits", test_json_stream_limits);
    g_test_add_func("/qmp/json/write", test_json_write);
    g_test_add_func("/qmp/event/format", test_event_format);
    g_test_add_func("/hmp/commands", test_hmp_commands);
    g_test_add_func("/qmp/human-monitor-command", test_human_monitor_command);
    g_test_add_func("/qmp/protocol", test_qmp_protocol);
    return g_test_run();
}
