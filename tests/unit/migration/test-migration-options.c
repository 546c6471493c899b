/*
 * Unit tests of the migration monitor commands, with the migration core
 * stubbed (migration-core-stubs.c): every capability and parameter set and
 * queried, QEMU's error texts for ranges, types and unknown names, the
 * busy state, the channels -> URI conversion, HMP's forms and layouts,
 * synchronous HMP migrate on a real socket monitor, and descriptors passed
 * with SCM_RIGHTS to getfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "migration/options.h"
#include "system/monitor/monitor-internal.h"
#include "tests/unit/migration/migration-core-stubs.h"
#include "tests/unit/stubs.h"

/* QEMU's MigrationCapability order. */
static const char *const all_caps[] = {
    "xbzrle", "rdma-pin-all", "auto-converge", "zero-blocks", "events", "postcopy-ram",
    "x-colo", "release-ram", "return-path", "pause-before-switchover", "multifd",
    "dirty-bitmaps", "postcopy-blocktime", "late-block-activate", "x-ignore-shared",
    "validate-uuid", "background-snapshot", "zero-copy-send", "postcopy-preempt",
    "switchover-ack", "dirty-limit", "mapped-ram", NULL,
};

static const char *const supported_caps[] = {
    "auto-converge", "zero-blocks", "events", "return-path", "pause-before-switchover",
    "late-block-activate", "validate-uuid", "multifd", NULL,
};

static void reset(void)
{
    migration_options_reset();
    migration_core_stubs_reset();
}

static JsonObject *parse_object(const char *json)
{
    g_autoptr(GError) err = NULL;
    JsonNode *node;
    JsonObject *obj;

    if (!json) {
        return NULL;
    }
    node = qmp_json_parse_string(json, &err);
    g_assert_no_error(err);
    g_assert_true(JSON_NODE_HOLDS_OBJECT(node));
    obj = json_object_ref(json_node_get_object(node));
    json_node_unref(node);
    return obj;
}

/* The reply as JSON text, or "Class: desc" for an error. */
static char *qmp(const char *name, const char *args)
{
    g_autoptr(JsonObject) obj = parse_object(args);
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) ret = qmp_dispatch_command(name, obj, &err);

    if (!ret) {
        JsonObject *e = qmp_dispatch_error_object(err);
        char *s = g_strdup_printf("%s: %s", json_object_get_string_member(e, "class"),
                                  json_object_get_string_member(e, "desc"));
        json_object_unref(e);
        return s;
    }
    return qmp_json_to_string(ret, false);
}

static void assert_qmp(const char *name, const char *args, const char *expected)
{
    g_autofree char *got = qmp(name, args);

    g_assert_cmpstr(got, ==, expected);
}

#define assert_qmp_ok(name, args) assert_qmp(name, args, "{}")

static char *hmp(const char *line)
{
    GString *out = g_string_new(NULL);

    hmp_execute(line, out);
    return g_string_free(out, FALSE);
}

static void assert_hmp(const char *line, const char *expected)
{
    g_autofree char *got = hmp(line);

    g_assert_cmpstr(got, ==, expected);
}

/* One member of query-migrate-parameters, as JSON text. */
static char *param_json(const char *name)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) ret = qmp_dispatch_command("query-migrate-parameters", NULL, &err);
    JsonNode *member;

    g_assert_no_error(err);
    member = json_object_get_member(json_node_get_object(ret), name);
    return member ? qmp_json_to_string(member, false) : NULL;
}

static bool cap_state(const char *name)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) ret = qmp_dispatch_command("query-migrate-capabilities", NULL, &err);
    JsonArray *list = json_node_get_array(ret);

    for (guint i = 0; i < json_array_get_length(list); i++) {
        JsonObject *c = json_array_get_object_element(list, i);
        if (!strcmp(json_object_get_string_member(c, "capability"), name)) {
            return json_object_get_boolean_member(c, "state");
        }
    }
    g_assert_not_reached();
}

static char *set_cap_args(const char *name, bool state)
{
    return g_strdup_printf("{\"capabilities\": [{\"capability\": \"%s\", \"state\": %s}]}",
                           name, state ? "true" : "false");
}

/* ---- capabilities ---- */

static void test_caps_query(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) ret = NULL;
    JsonArray *list;

    reset();
    ret = qmp_dispatch_command("query-migrate-capabilities", NULL, &err);
    g_assert_no_error(err);
    list = json_node_get_array(ret);
    g_assert_cmpuint(json_array_get_length(list), ==, g_strv_length((char **)all_caps));
    for (guint i = 0; all_caps[i]; i++) {
        JsonObject *c = json_array_get_object_element(list, i);
        g_autoptr(GList) members = json_object_get_members(c);
        g_assert_cmpstr(json_object_get_string_member(c, "capability"), ==, all_caps[i]);
        g_assert_false(json_object_get_boolean_member(c, "state"));
        g_assert_cmpuint(g_list_length(members), ==, 2);
    }
    assert_qmp("query-migrate-capabilities", "{\"x\": 1}",
               "GenericError: Parameter 'x' is unexpected");
}

static void test_caps_set_each(void)
{
    reset();
    for (guint i = 0; all_caps[i]; i++) {
        const char *name = all_caps[i];
        g_autofree char *on = set_cap_args(name, true);
        g_autofree char *off = set_cap_args(name, false);
        MigrationCapability cap;

        g_assert_true(migration_capability_parse(name, &cap));
        g_assert_cmpint(cap, ==, i);
        g_assert_cmpstr(migration_capability_name(cap), ==, name);
        if (g_strv_contains(supported_caps, name)) {
            g_assert_true(migration_capability_supported(cap));
            assert_qmp_ok("migrate-set-capabilities", on);
            g_assert_true(cap_state(name));
            g_assert_true(migrate_cap(cap));
            assert_qmp_ok("migrate-set-capabilities", off);
            g_assert_false(cap_state(name));
        } else {
            g_autofree char *msg = g_strdup_printf(
                "GenericError: Capability '%s' is not supported by Ferry yet", name);
            g_assert_false(migration_capability_supported(cap));
            assert_qmp("migrate-set-capabilities", on, msg);
            g_assert_false(cap_state(name));
            assert_qmp_ok("migrate-set-capabilities", off);
        }
    }
    /* Several at once, and an empty list. */
    assert_qmp_ok("migrate-set-capabilities",
                  "{\"capabilities\": [{\"capability\": \"events\", \"state\": true}, "
                  "{\"capability\": \"return-path\", \"state\": true}]}");
    g_assert_true(cap_state("events"));
    g_assert_true(cap_state("return-path"));
    assert_qmp_ok("migrate-set-capabilities", "{\"capabilities\": []}");
    g_assert_true(cap_state("events"));
    /* The last entry for a name wins. */
    assert_qmp_ok("migrate-set-capabilities",
                  "{\"capabilities\": [{\"capability\": \"events\", \"state\": true}, "
                  "{\"capability\": \"events\", \"state\": false}]}");
    g_assert_false(cap_state("events"));
    g_assert_false(migration_capability_parse("bogus", &(MigrationCapability){ 0 }));
    g_assert_null(migration_capability_name(MIGRATION_CAPABILITY__MAX));
}

static void test_caps_errors(void)
{
    reset();
    assert_qmp("migrate-set-capabilities",
               "{\"capabilities\": [{\"capability\": \"xyz\", \"state\": true}]}",
               "GenericError: Parameter 'capability' does not accept value 'xyz'");
    assert_qmp("migrate-set-capabilities", "{}",
               "GenericError: Parameter 'capabilities' is missing");
    assert_qmp("migrate-set-capabilities", "{\"capabilities\": {}}",
               "GenericError: Invalid parameter type for 'capabilities', expected: array");
    assert_qmp("migrate-set-capabilities", "{\"capabilities\": [], \"extra\": 1}",
               "GenericError: Parameter 'extra' is unexpected");
    assert_qmp("migrate-set-capabilities", "{\"capabilities\": [1]}",
               "GenericError: Invalid parameter type for 'capabilities[0]', expected: object");
    assert_qmp("migrate-set-capabilities", "{\"capabilities\": [{\"state\": true}]}",
               "GenericError: Parameter 'capabilities[0].capability' is missing");
    assert_qmp("migrate-set-capabilities",
               "{\"capabilities\": [{\"capability\": 3, \"state\": true}]}",
               "GenericError: Invalid parameter type for 'capabilities[0].capability', "
               "expected: string");
    assert_qmp("migrate-set-capabilities",
               "{\"capabilities\": [{\"capability\": \"events\", \"state\": true}, "
               "{\"capability\": \"events\"}]}",
               "GenericError: Parameter 'capabilities[1].state' is missing");
    assert_qmp("migrate-set-capabilities",
               "{\"capabilities\": [{\"capability\": \"events\", \"state\": \"on\"}]}",
               "GenericError: Invalid parameter type for 'capabilities[0].state', "
               "expected: boolean");
    assert_qmp("migrate-set-capabilities",
               "{\"capabilities\": [{\"capability\": \"events\", \"state\": true, "
               "\"x\": 1}]}",
               "GenericError: Parameter 'capabilities[0].x' is unexpected");
    /* A bad entry anywhere: nothing changes. */
    assert_qmp("migrate-set-capabilities",
               "{\"capabilities\": [{\"capability\": \"events\", \"state\": true}, "
               "{\"capability\": \"postcopy-ram\", \"state\": true}]}",
               "GenericError: Capability 'postcopy-ram' is not supported by Ferry yet");
    g_assert_false(cap_state("events"));
    assert_qmp("migrate-set-capabilities",
               "{\"capabilities\": [{\"capability\": \"events\", \"state\": true}, "
               "{\"capability\": \"nope\", \"state\": true}]}",
               "GenericError: Parameter 'capability' does not accept value 'nope'");
    g_assert_false(cap_state("events"));
}

static void test_caps_busy(void)
{
    static const MigrationStatus busy[] = {
        MIGRATION_STATUS_SETUP, MIGRATION_STATUS_ACTIVE, MIGRATION_STATUS_CANCELLING,
        MIGRATION_STATUS_PRE_SWITCHOVER, MIGRATION_STATUS_DEVICE,
        MIGRATION_STATUS_POSTCOPY_ACTIVE, MIGRATION_STATUS_POSTCOPY_PAUSED,
        MIGRATION_STATUS_WAIT_UNPLUG,
    };
    static const MigrationStatus idle[] = {
        MIGRATION_STATUS_NONE, MIGRATION_STATUS_COMPLETED, MIGRATION_STATUS_FAILED,
        MIGRATION_STATUS_CANCELLED,
    };
    g_autofree char *on = set_cap_args("events", true);
    g_autofree char *multifd = set_cap_args("multifd", true);

    reset();
    migration_options_set_busy(true);
    assert_qmp("migrate-set-capabilities", on,
               "GenericError: There's a migration process in progress");
    /* Busy is checked before support, as QEMU checks it before anything else. */
    assert_qmp("migrate-set-capabilities", multifd,
               "GenericError: There's a migration process in progress");
    /* ... but after the arguments' shape. */
    assert_qmp("migrate-set-capabilities",
               "{\"capabilities\": [{\"capability\": \"xyz\", \"state\": true}]}",
               "GenericError: Parameter 'capability' does not accept value 'xyz'");
    migration_options_set_busy(false);
    for (size_t i = 0; i < G_N_ELEMENTS(busy); i++) {
        stub_outgoing_status = busy[i];
        assert_qmp("migrate-set-capabilities", on,
                   "GenericError: There's a migration process in progress");
        g_assert_false(cap_state("events"));
    }
    for (size_t i = 0; i < G_N_ELEMENTS(idle); i++) {
        stub_outgoing_status = idle[i];
        assert_qmp_ok("migrate-set-capabilities", on);
    }
    g_assert_true(cap_state("events"));
    /* Parameters may change during a migration (QEMU applies them at once). */
    stub_outgoing_status = MIGRATION_STATUS_ACTIVE;
    migration_options_set_busy(true);
    assert_qmp_ok("migrate-set-parameters", "{\"max-bandwidth\": 1000, \"downtime-limit\": 50}");
    g_assert_cmpuint(migrate_params()->max_bandwidth, ==, 1000);
    g_assert_cmpuint(migrate_params()->downtime_limit, ==, 50);
    migration_options_set_busy(false);
}

/* ---- parameters ---- */

#define DEFAULT_PARAMS \
    "{\"announce-initial\": 50, \"announce-max\": 550, \"announce-rounds\": 5, " \
    "\"announce-step\": 100, \"throttle-trigger-threshold\": 50, " \
    "\"cpu-throttle-initial\": 20, \"cpu-throttle-increment\": 10, " \
    "\"cpu-throttle-tailslow\": false, \"tls-creds\": \"\", \"tls-hostname\": \"\", " \
    "\"tls-authz\": \"\", \"max-bandwidth\": 134217728, " \
    "\"avail-switchover-bandwidth\": 0, \"downtime-limit\": 300, " \
    "\"x-checkpoint-delay\": 20000, \"multifd-channels\": 2, " \
    "\"xbzrle-cache-size\": 67108864, \"max-postcopy-bandwidth\": 0, " \
    "\"max-cpu-throttle\": 99, \"multifd-compression\": \"none\", " \
    "\"multifd-zlib-level\": 1, \"multifd-zstd-level\": 1, " \
    "\"x-vcpu-dirty-limit-period\": 1000, \"vcpu-dirty-limit\": 1, \"mode\": \"normal\", " \
    "\"zero-page-detection\": \"multifd\", \"direct-io\": false}"

static void test_params_defaults(void)
{
    const MigrationParameters *p;

    reset();
    assert_qmp("query-migrate-parameters", NULL, DEFAULT_PARAMS);
    p = migrate_params();
    g_assert_cmpuint(p->max_bandwidth, ==, 134217728);
    g_assert_cmpuint(p->avail_switchover_bandwidth, ==, 0);
    g_assert_cmpuint(p->downtime_limit, ==, 300);
    g_assert_cmpuint(p->throttle_trigger_threshold, ==, 50);
    g_assert_cmpuint(p->cpu_throttle_initial, ==, 20);
    g_assert_cmpuint(p->cpu_throttle_increment, ==, 10);
    g_assert_false(p->cpu_throttle_tailslow);
    g_assert_cmpuint(p->max_cpu_throttle, ==, 99);
    g_assert_cmpuint(p->multifd_channels, ==, 2);
    g_assert_cmpint(p->multifd_compression, ==, MULTIFD_COMPRESSION_NONE);
    g_assert_cmpuint(p->multifd_zlib_level, ==, 1);
    g_assert_cmpuint(p->multifd_zstd_level, ==, 1);
    g_assert_cmpint(p->zero_page_detection, ==, ZERO_PAGE_DETECTION_MULTIFD);
    g_assert_cmpuint(p->xbzrle_cache_size, ==, 64 << 20);
    g_assert_cmpuint(p->x_checkpoint_delay, ==, 20000);
    g_assert_cmpuint(p->announce_initial, ==, 50);
    g_assert_cmpuint(p->announce_max, ==, 550);
    g_assert_cmpuint(p->announce_rounds, ==, 5);
    g_assert_cmpuint(p->announce_step, ==, 100);
    g_assert_cmpuint(p->x_vcpu_dirty_limit_period, ==, 1000);
    g_assert_cmpuint(p->vcpu_dirty_limit, ==, 1);
    g_assert_cmpint(p->mode, ==, MIG_MODE_NORMAL);
    g_assert_false(p->direct_io);
    g_assert_cmpstr(multifd_compression_name(MULTIFD_COMPRESSION_ZSTD), ==, "zstd");
    g_assert_cmpstr(zero_page_detection_name(ZERO_PAGE_DETECTION_LEGACY), ==, "legacy");
    g_assert_cmpstr(mig_mode_name(MIG_MODE_CPR_REBOOT), ==, "cpr-reboot");
    assert_qmp("query-migrate-parameters", "{\"x\": 1}",
               "GenericError: Parameter 'x' is unexpected");
}

static void test_params_set_each(void)
{
    /* name, value given, value queried back */
    static const struct {
        const char *name;
        const char *value;
        const char *query;
    } cases[] = {
        { "announce-initial", "100000", NULL },
        { "announce-initial", "0", NULL },
        { "announce-max", "100000", NULL },
        { "announce-rounds", "1000", NULL },
        { "announce-rounds", "0", NULL },
        { "announce-step", "1", NULL },
        { "announce-step", "10000", NULL },
        { "throttle-trigger-threshold", "1", NULL },
        { "throttle-trigger-threshold", "100", NULL },
        { "cpu-throttle-initial", "1", NULL },
        { "cpu-throttle-initial", "99", NULL },
        { "cpu-throttle-increment", "1", NULL },
        { "cpu-throttle-increment", "99", NULL },
        { "cpu-throttle-tailslow", "true", NULL },
        { "cpu-throttle-tailslow", "false", NULL },
        { "tls-creds", "\"\"", NULL },
        { "tls-creds", "null", "\"\"" },
        { "tls-hostname", "\"dest.example\"", NULL },
        { "tls-hostname", "null", "\"\"" },
        { "tls-authz", "\"authz0\"", NULL },
        { "tls-authz", "null", "\"\"" },
        { "max-bandwidth", "0", NULL },
        { "max-bandwidth", "9223372036854775807", NULL },
        { "avail-switchover-bandwidth", "1073741824", NULL },
        { "downtime-limit", "0", NULL },
        { "downtime-limit", "2000000", NULL },
        { "x-checkpoint-delay", "4294967295", NULL },
        { "x-checkpoint-delay", "0", NULL },
        { "multifd-channels", "1", NULL },
        { "multifd-channels", "255", NULL },
        { "xbzrle-cache-size", "4096", NULL },
        { "xbzrle-cache-size", "1073741824", NULL },
        { "max-postcopy-bandwidth", "12345", NULL },
        { "max-cpu-throttle", "99", NULL },
        { "multifd-compression", "\"zlib\"", NULL },
        { "multifd-compression", "\"zstd\"", NULL },
        { "multifd-compression", "\"none\"", NULL },
        { "multifd-zlib-level", "0", NULL },
        { "multifd-zlib-level", "9", NULL },
        { "multifd-zstd-level", "0", NULL },
        { "multifd-zstd-level", "20", NULL },
        { "x-vcpu-dirty-limit-period", "1", NULL },
        { "x-vcpu-dirty-limit-period", "1000", NULL },
        { "vcpu-dirty-limit", "1", NULL },
        { "vcpu-dirty-limit", "100000", NULL },
        { "mode", "\"normal\"", NULL },
        { "zero-page-detection", "\"none\"", NULL },
        { "zero-page-detection", "\"legacy\"", NULL },
        { "zero-page-detection", "\"multifd\"", NULL },
        { "direct-io", "true", NULL },
        { "direct-io", "false", NULL },
    };

    reset();
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *args = g_strdup_printf("{\"%s\": %s}", cases[i].name, cases[i].value);
        g_autofree char *got = NULL;

        assert_qmp_ok("migrate-set-parameters", args);
        got = param_json(cases[i].name);
        g_assert_cmpstr(got, ==, cases[i].query ? cases[i].query : cases[i].value);
    }
    /* The structure the core reads follows. */
    assert_qmp_ok("migrate-set-parameters",
                  "{\"max-bandwidth\": 1000000, \"downtime-limit\": 123, "
                  "\"multifd-channels\": 8, \"multifd-compression\": \"zstd\", "
                  "\"multifd-zstd-level\": 3, \"cpu-throttle-tailslow\": true, "
                  "\"x-checkpoint-delay\": 777, \"mode\": \"normal\", "
                  "\"zero-page-detection\": \"legacy\", \"direct-io\": true}");
    g_assert_cmpuint(migrate_params()->max_bandwidth, ==, 1000000);
    g_assert_cmpuint(migrate_params()->downtime_limit, ==, 123);
    g_assert_cmpuint(migrate_params()->multifd_channels, ==, 8);
    g_assert_cmpint(migrate_params()->multifd_compression, ==, MULTIFD_COMPRESSION_ZSTD);
    g_assert_cmpuint(migrate_params()->multifd_zstd_level, ==, 3);
    g_assert_true(migrate_params()->cpu_throttle_tailslow);
    g_assert_cmpuint(migrate_params()->x_checkpoint_delay, ==, 777);
    g_assert_cmpint(migrate_params()->zero_page_detection, ==, ZERO_PAGE_DETECTION_LEGACY);
    g_assert_true(migrate_params()->direct_io);
    /* An empty call changes nothing. */
    assert_qmp_ok("migrate-set-parameters", "{}");
    g_assert_cmpuint(migrate_params()->multifd_channels, ==, 8);
    {
        g_autofree char *h = migrate_tls_hostname();
        g_autofree char *a = migrate_tls_authz();
        g_autofree char *c = migrate_tls_creds();
        g_assert_cmpstr(h, ==, "");
        g_assert_cmpstr(a, ==, "");
        g_assert_cmpstr(c, ==, "");
    }
}

static void test_params_ranges(void)
{
    static const struct {
        const char *args;
        const char *error;
    } cases[] = {
        { "{\"throttle-trigger-threshold\": 0}",
          "Parameter 'throttle_trigger_threshold' expects an integer in the range of 1 to 100" },
        { "{\"throttle-trigger-threshold\": 101}",
          "Parameter 'throttle_trigger_threshold' expects an integer in the range of 1 to 100" },
        { "{\"cpu-throttle-initial\": 0}",
          "Parameter 'cpu_throttle_initial' expects an integer in the range of 1 to 99" },
        { "{\"cpu-throttle-initial\": 100}",
          "Parameter 'cpu_throttle_initial' expects an integer in the range of 1 to 99" },
        { "{\"cpu-throttle-increment\": 0}",
          "Parameter 'cpu_throttle_increment' expects an integer in the range of 1 to 99" },
        { "{\"cpu-throttle-increment\": 100}",
          "Parameter 'cpu_throttle_increment' expects an integer in the range of 1 to 99" },
        { "{\"downtime-limit\": 2000001}",
          "Parameter 'downtime_limit' expects an integer in the range of 0 to 2000000 ms" },
        { "{\"multifd-channels\": 0}",
          "Parameter 'multifd_channels' expects a value between 1 and 255" },
        { "{\"multifd-zlib-level\": 10}",
          "Parameter 'multifd_zlib_level' expects a value between 0 and 9" },
        { "{\"multifd-zstd-level\": 21}",
          "Parameter 'multifd_zstd_level' expects a value between 0 and 20" },
        { "{\"xbzrle-cache-size\": 2048}",
          "Parameter 'xbzrle_cache_size' expects a power of two no less than the target "
          "page size" },
        { "{\"xbzrle-cache-size\": 12288}",
          "Parameter 'xbzrle_cache_size' expects a power of two no less than the target "
          "page size" },
        { "{\"max-cpu-throttle\": 100}",
          "Parameter 'max_cpu_throttle' expects an integer in the range of "
          "cpu_throttle_initial to 99" },
        { "{\"max-cpu-throttle\": 19}",
          "Parameter 'max_cpu_throttle' expects an integer in the range of "
          "cpu_throttle_initial to 99" },
        /* Checked against the merged values: initial above the current maximum. */
        { "{\"cpu-throttle-initial\": 50, \"max-cpu-throttle\": 40}",
          "Parameter 'max_cpu_throttle' expects an integer in the range of "
          "cpu_throttle_initial to 99" },
        { "{\"announce-initial\": 100001}",
          "Parameter 'announce_initial' expects a value between 0 and 100000" },
        { "{\"announce-max\": 100001}",
          "Parameter 'announce_max' expects a value between 0 and 100000" },
        { "{\"announce-rounds\": 1001}",
          "Parameter 'announce_rounds' expects a value between 0 and 1000" },
        { "{\"announce-step\": 0}",
          "Parameter 'announce_step' expects a value between 0 and 10000" },
        { "{\"announce-step\": 10001}",
          "Parameter 'announce_step' expects a value between 0 and 10000" },
        { "{\"x-vcpu-dirty-limit-period\": 0}",
          "Parameter 'x-vcpu-dirty-limit-period' expects a value between 1 and 1000" },
        { "{\"x-vcpu-dirty-limit-period\": 1001}",
          "Parameter 'x-vcpu-dirty-limit-period' expects a value between 1 and 1000" },
        { "{\"vcpu-dirty-limit\": 0}",
          "Parameter 'vcpu_dirty_limit' must be greater than 1 MB/s" },
        /* The QAPI integer widths. */
        { "{\"cpu-throttle-initial\": 256}", "Parameter 'cpu-throttle-initial' expects uint8" },
        { "{\"multifd-channels\": 256}", "Parameter 'multifd-channels' expects uint8" },
        { "{\"max-cpu-throttle\": 1000}", "Parameter 'max-cpu-throttle' expects uint8" },
        { "{\"multifd-zlib-level\": 300}", "Parameter 'multifd-zlib-level' expects uint8" },
        { "{\"throttle-trigger-threshold\": 256}",
          "Parameter 'throttle-trigger-threshold' expects uint8" },
        { "{\"x-checkpoint-delay\": 4294967296}",
          "Parameter 'x-checkpoint-delay' expects uint32" },
        /* QEMU's order: the first failing check in its list is reported. */
        { "{\"announce-step\": 0, \"throttle-trigger-threshold\": 0}",
          "Parameter 'throttle_trigger_threshold' expects an integer in the range of 1 to 100" },
    };

    reset();
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *expected = g_strdup_printf("GenericError: %s", cases[i].error);
        assert_qmp("migrate-set-parameters", cases[i].args, expected);
    }
    /* Nothing was applied by any of them. */
    assert_qmp("query-migrate-parameters", NULL, DEFAULT_PARAMS);

    /* max-cpu-throttle follows cpu-throttle-initial in one call. */
    assert_qmp_ok("migrate-set-parameters",
                  "{\"cpu-throttle-initial\": 60, \"max-cpu-throttle\": 60}");
    assert_qmp("migrate-set-parameters", "{\"cpu-throttle-initial\": 61}",
               "GenericError: Parameter 'max_cpu_throttle' expects an integer in the range "
               "of cpu_throttle_initial to 99");
}

static void test_params_types(void)
{
    static const struct {
        const char *args;
        const char *error;
    } cases[] = {
        { "{\"foo\": 1}", "Parameter 'foo' is unexpected" },
        { "{\"downtime_limit\": 1}", "Parameter 'downtime_limit' is unexpected" },
        { "{\"max-bandwidth\": \"100M\"}",
          "Invalid parameter type for 'max-bandwidth', expected: size" },
        { "{\"max-bandwidth\": -1}",
          "Invalid parameter type for 'max-bandwidth', expected: size" },
        { "{\"downtime-limit\": \"x\"}", "Parameter 'downtime-limit' expects uint64" },
        { "{\"downtime-limit\": -5}", "Parameter 'downtime-limit' expects uint64" },
        { "{\"multifd-channels\": 1.5}", "Parameter 'multifd-channels' expects uint64" },
        { "{\"cpu-throttle-tailslow\": 1}",
          "Invalid parameter type for 'cpu-throttle-tailslow', expected: boolean" },
        { "{\"direct-io\": \"on\"}",
          "Invalid parameter type for 'direct-io', expected: boolean" },
        { "{\"multifd-compression\": 1}",
          "Invalid parameter type for 'multifd-compression', expected: string" },
        { "{\"multifd-compression\": \"lz4\"}",
          "Parameter 'multifd-compression' does not accept value 'lz4'" },
        { "{\"multifd-compression\": \"qpl\"}",
          "Parameter 'multifd-compression' does not accept value 'qpl'" },
        { "{\"zero-page-detection\": \"always\"}",
          "Parameter 'zero-page-detection' does not accept value 'always'" },
        { "{\"mode\": \"bogus\"}", "Parameter 'mode' does not accept value 'bogus'" },
        { "{\"tls-creds\": 5}", "Invalid parameter type for 'tls-creds', expected: StrOrNull" },
        { "{\"tls-authz\": []}",
          "Invalid parameter type for 'tls-authz', expected: StrOrNull" },
        { "{\"block-bitmap-mapping\": {}}",
          "Invalid parameter type for 'block-bitmap-mapping', expected: array" },
        /* Ferry's own limits, after QEMU's checks. */
        { "{\"tls-creds\": \"tls0\"}", "TLS (tls-creds) is not supported by Ferry yet" },
        { "{\"mode\": \"cpr-reboot\"}",
          "Migration mode 'cpr-reboot' is not supported by Ferry yet" },
        { "{\"mode\": \"cpr-transfer\"}",
          "Migration mode 'cpr-transfer' is not supported by Ferry yet" },
        { "{\"mode\": \"cpr-reboot\", \"announce-step\": 0}",
          "Parameter 'announce_step' expects a value between 0 and 10000" },
        /* One bad value: the good ones beside it are not applied either. */
        { "{\"max-bandwidth\": 5, \"downtime-limit\": 3000000}",
          "Parameter 'downtime_limit' expects an integer in the range of 0 to 2000000 ms" },
        { "{\"max-bandwidth\": 5, \"multifd-compression\": \"x\"}",
          "Parameter 'multifd-compression' does not accept value 'x'" },
    };

    reset();
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *expected = g_strdup_printf("GenericError: %s", cases[i].error);
        assert_qmp("migrate-set-parameters", cases[i].args, expected);
    }
    assert_qmp("query-migrate-parameters", NULL, DEFAULT_PARAMS);
}

static void test_params_bitmap_mapping(void)
{
    static const char *const mapping =
        "[{\"node-name\": \"drive0\", \"alias\": \"a0\", \"bitmaps\": "
        "[{\"name\": \"b0\", \"alias\": \"ba0\", \"transform\": {\"persistent\": true}}]}]";
    static const struct {
        const char *value;
        const char *error;
    } bad[] = {
        { "[1]", "Invalid parameter type for 'block-bitmap-mapping[0]', expected: object" },
        { "[{\"alias\": \"a\", \"bitmaps\": []}]",
          "Parameter 'block-bitmap-mapping[0].node-name' is missing" },
        { "[{\"node-name\": \"n\", \"bitmaps\": []}]",
          "Parameter 'block-bitmap-mapping[0].alias' is missing" },
        { "[{\"node-name\": \"n\", \"alias\": \"a\"}]",
          "Parameter 'block-bitmap-mapping[0].bitmaps' is missing" },
        { "[{\"node-name\": \"n\", \"alias\": \"a\", \"bitmaps\": {}}]",
          "Invalid parameter type for 'block-bitmap-mapping[0].bitmaps', expected: array" },
        { "[{\"node-name\": \"n\", \"alias\": \"a\", \"bitmaps\": [], \"x\": 1}]",
          "Parameter 'block-bitmap-mapping[0].x' is unexpected" },
        { "[{\"node-name\": \"n\", \"alias\": \"a\", \"bitmaps\": [{\"name\": \"b\"}]}]",
          "Parameter 'block-bitmap-mapping[0].bitmaps[0].alias' is missing" },
        { "[{\"node-name\": \"n\", \"alias\": \"a\", \"bitmaps\": [{\"name\": \"b\", "
          "\"alias\": \"c\", \"transform\": {\"persistent\": 1}}]}]",
          "Invalid parameter type for "
          "'block-bitmap-mapping[0].bitmaps[0].transform.persistent', expected: boolean" },
        { "[{\"node-name\": \"n\", \"alias\": \"a\", \"bitmaps\": []}, "
          "{\"node-name\": \"n\", \"alias\": \"b\", \"bitmaps\": []}]",
          "Invalid mapping given for block-bitmap-mapping: Duplicate node name 'n'" },
        { "[{\"node-name\": \"n\", \"alias\": \"a\", \"bitmaps\": []}, "
          "{\"node-name\": \"m\", \"alias\": \"a\", \"bitmaps\": []}]",
          "Invalid mapping given for block-bitmap-mapping: Duplicate node alias 'a'" },
    };
    g_autofree char *args = g_strdup_printf("{\"block-bitmap-mapping\": %s}", mapping);
    g_autofree char *got = NULL;

    reset();
    /* Absent from the query until set, as in QEMU. */
    g_assert_null(param_json("block-bitmap-mapping"));
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *a = g_strdup_printf("{\"block-bitmap-mapping\": %s}", bad[i].value);
        g_autofree char *expected = g_strdup_printf("GenericError: %s", bad[i].error);
        assert_qmp("migrate-set-parameters", a, expected);
    }
    g_assert_null(param_json("block-bitmap-mapping"));
    assert_qmp_ok("migrate-set-parameters", args);
    got = param_json("block-bitmap-mapping");
    g_assert_cmpstr(got, ==, mapping);
    assert_hmp("migrate_set_parameter block-bitmap-mapping x",
               "Error: The block-bitmap-mapping parameter can only be set through QMP\n");
    {
        g_autofree char *info = hmp("info migrate_parameters");
        g_assert_nonnull(strstr(info, "tls-authz: ''\nblock-bitmap-mapping:\n"
                                "  'drive0' -> 'a0'\n    'b0' -> 'ba0'\n"
                                "x-vcpu-dirty-limit-period: 1000 ms\n"));
    }
    assert_qmp_ok("migrate-set-parameters", "{\"block-bitmap-mapping\": []}");
    g_free(got);
    got = param_json("block-bitmap-mapping");
    g_assert_cmpstr(got, ==, "[]");
}

/* ---- HMP forms of the options ---- */

static void test_hmp_info_options(void)
{
    g_autofree char *caps = NULL;

    reset();
    caps = hmp("info migrate_capabilities");
    g_assert_cmpstr(caps, ==,
                    "xbzrle: off\nrdma-pin-all: off\nauto-converge: off\nzero-blocks: off\n"
                    "events: off\npostcopy-ram: off\nx-colo: off\nrelease-ram: off\n"
                    "return-path: off\npause-before-switchover: off\nmultifd: off\n"
                    "dirty-bitmaps: off\npostcopy-blocktime: off\nlate-block-activate: off\n"
                    "x-ignore-shared: off\nvalidate-uuid: off\nbackground-snapshot: off\n"
                    "zero-copy-send: off\npostcopy-preempt: off\nswitchover-ack: off\n"
                    "dirty-limit: off\nmapped-ram: off\n");
    assert_hmp("info migrate_parameters",
               "announce-initial: 50 ms\n"
               "announce-max: 550 ms\n"
               "announce-rounds: 5\n"
               "announce-step: 100 ms\n"
               "throttle-trigger-threshold: 50\n"
               "cpu-throttle-initial: 20\n"
               "cpu-throttle-increment: 10\n"
               "cpu-throttle-tailslow: off\n"
               "max-cpu-throttle: 99\n"
               "tls-creds: ''\n"
               "tls-hostname: ''\n"
               "max-bandwidth: 134217728 bytes/second\n"
               "avail-switchover-bandwidth: 0 bytes/second\n"
               "downtime-limit: 300 ms\n"
               "x-checkpoint-delay: 20000 ms\n"
               "multifd-channels: 2\n"
               "multifd-compression: none\n"
               "multifd-zlib-level: 1\n"
               "multifd-zstd-level: 1\n"
               "zero-page-detection: multifd\n"
               "xbzrle-cache-size: 67108864 bytes\n"
               "max-postcopy-bandwidth: 0\n"
               "tls-authz: ''\n"
               "x-vcpu-dirty-limit-period: 1000 ms\n"
               "vcpu-dirty-limit: 1 MB/s\n"
               "mode: normal\n"
               "direct-io: off\n");
}

static void test_hmp_set_capability(void)
{
    reset();
    assert_hmp("migrate_set_capability events on", "");
    g_assert_true(cap_state("events"));
    assert_hmp("migrate_set_capability events off", "");
    g_assert_false(cap_state("events"));
    assert_hmp("migrate_set_capability   auto-converge   on  ", "");
    g_assert_true(cap_state("auto-converge"));
    assert_hmp("migrate_set_capability xbzrle on",
               "Error: Capability 'xbzrle' is not supported by Ferry yet\n");
    assert_hmp("migrate_set_capability xbzrle off", "");
    assert_hmp("migrate_set_capability bogus on", "Error: invalid parameter value: bogus\n");
    assert_hmp("migrate_set_capability events yes",
               "Expected 'on' or 'off'\nTry \"help migrate_set_capability\" for more "
               "information\n");
    assert_hmp("migrate_set_capability events",
               "migrate_set_capability: string expected\nTry \"help migrate_set_capability\" "
               "for more information\n");
    assert_hmp("migrate_set_capability",
               "migrate_set_capability: string expected\nTry \"help migrate_set_capability\" "
               "for more information\n");
    assert_hmp("migrate_set_capability events on extra",
               "migrate_set_capability: extraneous characters at the end of line\n"
               "Try \"help migrate_set_capability\" for more information\n");
    migration_options_set_busy(true);
    assert_hmp("migrate_set_capability events on",
               "Error: There's a migration process in progress\n");
    migration_options_set_busy(false);
    {
        g_autofree char *info = hmp("info migrate_capabilities");
        g_assert_nonnull(strstr(info, "\nauto-converge: on\n"));
        g_assert_nonnull(strstr(info, "\nevents: off\n"));
    }
}

static void test_hmp_set_parameter(void)
{
    static const struct {
        const char *line;
        const char *param;
        const char *value;      /* queried back; NULL: an error is expected */
        const char *error;
    } cases[] = {
        /* Bandwidths: MiB/s without a suffix, like QEMU's HMP. */
        { "max-bandwidth 100M", "max-bandwidth", "104857600" },
        { "max-bandwidth 100", "max-bandwidth", "104857600" },
        { "max-bandwidth 1G", "max-bandwidth", "1073741824" },
        { "max-bandwidth 512K", "max-bandwidth", "524288" },
        { "max-bandwidth 1000B", "max-bandwidth", "1000" },
        { "max-bandwidth 1.5G", "max-bandwidth", "1610612736" },
        { "max-bandwidth 0", "max-bandwidth", "0" },
        { "max-bandwidth fast", NULL, NULL, "Invalid size fast" },
        { "max-bandwidth -1", NULL, NULL, "Invalid size -1" },
        { "avail-switchover-bandwidth 10", "avail-switchover-bandwidth", "10485760" },
        /* Other sizes: bytes without a suffix. */
        { "xbzrle-cache-size 128M", "xbzrle-cache-size", "134217728" },
        { "xbzrle-cache-size 65536", "xbzrle-cache-size", "65536" },
        { "max-postcopy-bandwidth 1k", "max-postcopy-bandwidth", "1024" },
        { "announce-initial 70", "announce-initial", "70" },
        { "announce-max 700", "announce-max", "700" },
        { "announce-rounds 7", "announce-rounds", "7" },
        { "announce-step 70", "announce-step", "70" },
        { "downtime-limit 500", "downtime-limit", "500" },
        { "downtime-limit abc", NULL, NULL, "Parameter 'downtime-limit' expects a size value" },
        { "downtime-limit 3000000", NULL, NULL,
          "Parameter 'downtime_limit' expects an integer in the range of 0 to 2000000 ms" },
        { "x-vcpu-dirty-limit-period 500", "x-vcpu-dirty-limit-period", "500" },
        { "vcpu-dirty-limit 10", "vcpu-dirty-limit", "10" },
        /* Integers. */
        { "cpu-throttle-initial 30", "cpu-throttle-initial", "30" },
        { "cpu-throttle-increment 0x10", "cpu-throttle-increment", "16" },
        { "cpu-throttle-initial 300", NULL, NULL,
          "Parameter 'cpu-throttle-initial' expects uint8" },
        { "cpu-throttle-initial abc", NULL, NULL,
          "Parameter 'cpu-throttle-initial' expects a uint64 value" },
        { "cpu-throttle-initial 0", NULL, NULL,
          "Parameter 'cpu_throttle_initial' expects an integer in the range of 1 to 99" },
        { "throttle-trigger-threshold 80", "throttle-trigger-threshold", "80" },
        { "max-cpu-throttle 90", "max-cpu-throttle", "90" },
        { "multifd-channels 16", "multifd-channels", "16" },
        { "multifd-zlib-level 9", "multifd-zlib-level", "9" },
        { "multifd-zstd-level 19", "multifd-zstd-level", "19" },
        { "x-checkpoint-delay 1000", "x-checkpoint-delay", "1000" },
        { "x-checkpoint-delay 4294967296", NULL, NULL,
          "Parameter 'x-checkpoint-delay' expects uint32" },
        /* Booleans, names, strings. */
        { "cpu-throttle-tailslow on", "cpu-throttle-tailslow", "true" },
        { "cpu-throttle-tailslow off", "cpu-throttle-tailslow", "false" },
        { "direct-io yes", "direct-io", "true" },
        { "direct-io false", "direct-io", "false" },
        { "direct-io maybe", NULL, NULL,
          "Invalid parameter type for 'direct-io', expected: boolean" },
        { "multifd-compression zstd", "multifd-compression", "\"zstd\"" },
        { "multifd-compression lz4", NULL, NULL,
          "Parameter 'multifd-compression' does not accept value 'lz4'" },
        { "zero-page-detection legacy", "zero-page-detection", "\"legacy\"" },
        { "mode normal", "mode", "\"normal\"" },
        { "mode cpr-reboot", NULL, NULL,
          "Migration mode 'cpr-reboot' is not supported by Ferry yet" },
        { "tls-hostname dest.example", "tls-hostname", "\"dest.example\"" },
        { "tls-authz authz0", "tls-authz", "\"authz0\"" },
        { "tls-creds \"\"", "tls-creds", "\"\"" },
        { "tls-creds tls0", NULL, NULL, "TLS (tls-creds) is not supported by Ferry yet" },
        /* QEMU's HMP takes the QAPI names only (with '-'). */
        { "max_bandwidth 100M", NULL, NULL, "invalid parameter value: max_bandwidth" },
        { "downtime_limit 5", NULL, NULL, "invalid parameter value: downtime_limit" },
        { "bogus 1", NULL, NULL, "invalid parameter value: bogus" },
    };

    reset();
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *line = g_strdup_printf("migrate_set_parameter %s", cases[i].line);
        g_autofree char *out = hmp(line);

        if (cases[i].value) {
            g_autofree char *got = param_json(cases[i].param);
            g_assert_cmpstr(out, ==, "");
            g_assert_cmpstr(got, ==, cases[i].value);
        } else {
            g_autofree char *expected = g_strdup_printf("Error: %s\n", cases[i].error);
            g_assert_cmpstr(out, ==, expected);
        }
    }
    assert_hmp("migrate_set_parameter max-bandwidth",
               "migrate_set_parameter: string expected\nTry \"help migrate_set_parameter\" "
               "for more information\n");
    assert_hmp("migrate_set_parameter", "migrate_set_parameter: string expected\n"
               "Try \"help migrate_set_parameter\" for more information\n");
    {
        g_autofree char *info = hmp("info migrate_parameters");
        g_assert_nonnull(strstr(info, "\nmax-bandwidth: 0 bytes/second\n"));
        g_assert_nonnull(strstr(info, "\nmultifd-compression: zstd\n"));
        g_assert_nonnull(strstr(info, "\ntls-hostname: 'dest.example'\n"));
        g_assert_nonnull(strstr(info, "\ndirect-io: off\n"));
    }
    /* The string helper on its own. */
    {
        g_autoptr(GError) err = NULL;
        g_autoptr(JsonObject) o = migration_parameter_from_string("max-bandwidth", "2M", &err);
        g_assert_no_error(err);
        g_assert_cmpint(json_object_get_int_member(o, "max-bandwidth"), ==, 2 << 20);
    }
}

/* ---- migrate, migrate-incoming: URIs and channels ---- */

static void assert_migrate_uri(const char *args, const char *uri)
{
    g_free(stub_migrate_uri);
    stub_migrate_uri = NULL;
    stub_outgoing_status = MIGRATION_STATUS_NONE;
    assert_qmp_ok("migrate", args);
    g_assert_cmpstr(stub_migrate_uri, ==, uri);
}

static void test_qmp_migrate_uri(void)
{
    reset();
    assert_migrate_uri("{\"uri\": \"tcp:10.0.0.1:4446\"}", "tcp:10.0.0.1:4446");
    g_assert_false(stub_migrate_resume);
    assert_migrate_uri("{\"uri\": \"unix:/tmp/m.sock\", \"detach\": true}", "unix:/tmp/m.sock");
    assert_migrate_uri("{\"uri\": \"exec:cat > /dev/null\", \"resume\": true}",
                       "exec:cat > /dev/null");
    g_assert_true(stub_migrate_resume);
    /* An empty list of channels counts as none. */
    assert_migrate_uri("{\"uri\": \"file:/tmp/x\", \"channels\": []}", "file:/tmp/x");

    assert_qmp("migrate", "{}", "GenericError: need either 'uri' or 'channels' argument");
    assert_qmp("migrate", "{\"channels\": []}",
               "GenericError: need either 'uri' or 'channels' argument");
    assert_qmp("migrate", "{\"uri\": \"tcp:a:1\", \"channels\": [{\"channel-type\": \"main\", "
               "\"addr\": {\"transport\": \"socket\", \"type\": \"unix\", \"path\": \"/x\"}}]}",
               "GenericError: need either 'uri' or 'channels' argument");
    assert_qmp("migrate", "{\"uri\": 5}",
               "GenericError: Invalid parameter type for 'uri', expected: string");
    assert_qmp("migrate", "{\"uri\": \"tcp:a:1\", \"detach\": \"yes\"}",
               "GenericError: Invalid parameter type for 'detach', expected: boolean");
    assert_qmp("migrate", "{\"uri\": \"tcp:a:1\", \"blk\": true}",
               "GenericError: Parameter 'blk' is unexpected");
    /* The core's errors come through with their text. */
    stub_start_error = "There's a migration process in progress";
    assert_qmp("migrate", "{\"uri\": \"tcp:a:1\"}",
               "GenericError: There's a migration process in progress");
}

static void test_qmp_migrate_channels(void)
{
    static const struct {
        const char *addr;
        const char *uri;
    } ok[] = {
        { "{\"transport\": \"socket\", \"type\": \"inet\", \"host\": \"10.12.34.9\", "
          "\"port\": \"1050\"}", "tcp:10.12.34.9:1050" },
        { "{\"transport\": \"socket\", \"type\": \"inet\", \"host\": \"::1\", "
          "\"port\": \"1050\", \"ipv6\": true}", "tcp:[::1]:1050" },
        { "{\"transport\": \"socket\", \"type\": \"inet\", \"host\": \"h\", \"port\": \"1\", "
          "\"numeric\": true, \"keep-alive\": true, \"keep-alive-count\": 3}", "tcp:h:1" },
        { "{\"transport\": \"socket\", \"type\": \"unix\", \"path\": \"/run/m.sock\"}",
          "unix:/run/m.sock" },
        { "{\"transport\": \"socket\", \"type\": \"fd\", \"str\": \"migfd\"}", "fd:migfd" },
        { "{\"transport\": \"exec\", \"args\": [\"/bin/sh\", \"-c\", \"cat > /tmp/x\"]}",
          "exec:cat > /tmp/x" },
        { "{\"transport\": \"exec\", \"args\": [\"/bin/nc\", \"-p\", \"6000\", \"/some sock\"]}",
          "exec:'/bin/nc' '-p' '6000' '/some sock'" },
        { "{\"transport\": \"file\", \"filename\": \"/tmp/migfile\", \"offset\": 4096}",
          "file:/tmp/migfile,offset=4096" },
        { "{\"transport\": \"file\", \"filename\": \"/tmp/migfile\", \"offset\": 0}",
          "file:/tmp/migfile" },
    };
    static const struct {
        const char *channels;
        const char *error;
    } bad[] = {
        { "[1]", "Invalid parameter type for 'channels[0]', expected: object" },
        { "[{\"addr\": {}}]", "Parameter 'channels[0].channel-type' is missing" },
        { "[{\"channel-type\": \"cpr\", \"addr\": {}}]",
          "Parameter 'channel-type' does not accept value 'cpr'" },
        { "[{\"channel-type\": \"main\"}]", "Parameter 'channels[0].addr' is missing" },
        { "[{\"channel-type\": \"main\", \"addr\": []}]",
          "Invalid parameter type for 'channels[0].addr', expected: object" },
        { "[{\"channel-type\": \"main\", \"addr\": {}}]",
          "Parameter 'channels[0].addr.transport' is missing" },
        { "[{\"channel-type\": \"main\", \"addr\": {\"transport\": \"pigeon\"}}]",
          "Parameter 'transport' does not accept value 'pigeon'" },
        { "[{\"channel-type\": \"main\", \"addr\": {\"transport\": \"socket\"}}]",
          "Parameter 'channels[0].addr.type' is missing" },
        { "[{\"channel-type\": \"main\", \"addr\": {\"transport\": \"socket\", "
          "\"type\": \"carrier\"}}]", "Parameter 'type' does not accept value 'carrier'" },
        { "[{\"channel-type\": \"main\", \"addr\": {\"transport\": \"socket\", "
          "\"type\": \"inet\", \"host\": \"h\"}}]",
          "Parameter 'channels[0].addr.port' is missing" },
        { "[{\"channel-type\": \"main\", \"addr\": {\"transport\": \"socket\", "
          "\"type\": \"inet\", \"host\": \"h\", \"port\": 1050}}]",
          "Invalid parameter type for 'channels[0].addr.port', expected: string" },
        { "[{\"channel-type\": \"main\", \"addr\": {\"transport\": \"socket\", "
          "\"type\": \"inet\", \"host\": \"h\", \"port\": \"1\", \"ipv4\": 1}}]",
          "Invalid parameter type for 'channels[0].addr.ipv4', expected: boolean" },
        { "[{\"channel-type\": \"main\", \"addr\": {\"transport\": \"socket\", "
          "\"type\": \"inet\", \"host\": \"h\", \"port\": \"1\", \"path\": \"/x\"}}]",
          "Parameter 'channels[0].addr.path' is unexpected" },
        { "[{\"channel-type\": \"main\", \"addr\": {\"transport\": \"socket\", "
          "\"type\": \"unix\", \"path\": \"/x\"}, \"extra\": 1}]",
          "Parameter 'channels[0].extra' is unexpected" },
        { "[{\"channel-type\": \"main\", \"addr\": {\"transport\": \"exec\"}}]",
          "Parameter 'channels[0].addr.args' is missing" },
        { "[{\"channel-type\": \"main\", \"addr\": {\"transport\": \"exec\", "
          "\"args\": [\"a\", 1]}}]",
          "Invalid parameter type for 'channels[0].addr.args[1]', expected: string" },
        { "[{\"channel-type\": \"main\", \"addr\": {\"transport\": \"file\", "
          "\"filename\": \"/x\"}}]", "Parameter 'channels[0].addr.offset' is missing" },
        { "[{\"channel-type\": \"main\", \"addr\": {\"transport\": \"file\", "
          "\"filename\": \"/x\", \"offset\": \"0x1000\"}}]",
          "Parameter 'channels[0].addr.offset' expects uint64" },
        { "[{\"channel-type\": \"main\", \"addr\": {\"transport\": \"file\", "
          "\"filename\": \"/x\", \"offset\": -1}}]",
          "Parameter 'channels[0].addr.offset' expects uint64" },
        /* Well-formed, but not for Ferry (reported after the command-level checks). */
        { "[{\"channel-type\": \"main\", \"addr\": {\"transport\": \"rdma\", "
          "\"host\": \"h\", \"port\": \"1\"}}]", "migration protocol 'rdma' is not supported" },
        { "[{\"channel-type\": \"main\", \"addr\": {\"transport\": \"socket\", "
          "\"type\": \"vsock\", \"cid\": \"3\", \"port\": \"1\"}}]",
          "migration protocol 'vsock' is not supported" },
        { "[{\"channel-type\": \"main\", \"addr\": {\"transport\": \"socket\", "
          "\"type\": \"unix\", \"path\": \"/x\", \"abstract\": true}}]",
          "Abstract unix sockets are not supported for migration" },
        { "[{\"channel-type\": \"main\", \"addr\": {\"transport\": \"socket\", "
          "\"type\": \"inet\", \"host\": \"h\", \"port\": \"1\", \"to\": 5}}]",
          "Port ranges ('to') are not supported for migration" },
        { "[{\"channel-type\": \"main\", \"addr\": {\"transport\": \"socket\", "
          "\"type\": \"unix\", \"path\": \"/x\"}}, {\"channel-type\": \"main\", "
          "\"addr\": {\"transport\": \"socket\", \"type\": \"unix\", \"path\": \"/y\"}}]",
          "Channel list must have only one entry, for type 'main'" },
        /* The shape of every entry is checked before the count. */
        { "[{\"channel-type\": \"main\", \"addr\": {\"transport\": \"socket\", "
          "\"type\": \"unix\", \"path\": \"/x\"}}, {\"channel-type\": \"main\"}]",
          "Parameter 'channels[1].addr' is missing" },
    };

    reset();
    for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
        g_autofree char *args = g_strdup_printf(
            "{\"channels\": [{\"channel-type\": \"main\", \"addr\": %s}]}", ok[i].addr);
        assert_migrate_uri(args, ok[i].uri);
        /* migrate-incoming converts the same way. */
        g_free(stub_incoming_uri);
        stub_incoming_uri = NULL;
        assert_qmp_ok("migrate-incoming", args);
        g_assert_cmpstr(stub_incoming_uri, ==, ok[i].uri);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *args = g_strdup_printf("{\"channels\": %s}", bad[i].channels);
        g_autofree char *expected = g_strdup_printf("GenericError: %s", bad[i].error);
        assert_qmp("migrate", args, expected);
        assert_qmp("migrate-incoming", args, expected);
    }
}

static void test_qmp_migrate_incoming(void)
{
    reset();
    g_assert_true(migrate_incoming_exit_on_error());
    assert_qmp_ok("migrate-incoming", "{\"uri\": \"tcp:0:4446\", \"exit-on-error\": false}");
    g_assert_cmpstr(stub_incoming_uri, ==, "tcp:0:4446");
    g_assert_false(migrate_incoming_exit_on_error());
    assert_qmp_ok("migrate-incoming", "{\"uri\": \"unix:/x\"}");
    g_assert_true(migrate_incoming_exit_on_error());
    assert_qmp("migrate-incoming", "{}", "GenericError: need either 'uri' or 'channels' argument");
    assert_qmp("migrate-incoming", "{\"uri\": \"tcp:0:1\", \"exit-on-error\": 1}",
               "GenericError: Invalid parameter type for 'exit-on-error', expected: boolean");
    /* A core error in another domain is still a GenericError with its text. */
    stub_start_error = "'-incoming' was not specified on the command line";
    assert_qmp("migrate-incoming", "{\"uri\": \"tcp:0:1\"}",
               "GenericError: '-incoming' was not specified on the command line");
    assert_hmp("migrate_incoming unix:/tmp/in.sock", "");
    g_assert_cmpstr(stub_incoming_uri, ==, "unix:/tmp/in.sock");
    stub_start_error = "The incoming migration has already been started";
    assert_hmp("migrate_incoming unix:/tmp/in.sock",
               "Error: The incoming migration has already been started\n");
    assert_hmp("migrate_incoming", "migrate_incoming: string expected\n"
               "Try \"help migrate_incoming\" for more information\n");
}

static void test_qmp_query_cancel_continue(void)
{
    reset();
    assert_qmp("query-migrate", NULL, "{}");
    stub_query_info = parse_object("{\"status\": \"active\", \"total-time\": 5}");
    assert_qmp("query-migrate", NULL, "{\"status\": \"active\", \"total-time\": 5}");

    assert_qmp_ok("migrate_cancel", NULL);
    g_assert_cmpint(stub_cancel_calls, ==, 1);
    assert_hmp("migrate_cancel", "");
    g_assert_cmpint(stub_cancel_calls, ==, 2);

    assert_qmp("migrate-continue", "{}", "GenericError: Parameter 'state' is missing");
    assert_qmp("migrate-continue", "{\"state\": \"bogus\"}",
               "GenericError: Parameter 'state' does not accept value 'bogus'");
    assert_qmp("migrate-continue", "{\"state\": \"pre-switchover\"}",
               "GenericError: Migration not in expected state: none");
    stub_outgoing_status = MIGRATION_STATUS_PRE_SWITCHOVER;
    assert_qmp_ok("migrate-continue", "{\"state\": \"pre-switchover\"}");
    g_assert_cmpint(stub_continue_calls, ==, 1);
    assert_hmp("migrate_continue pre-switchover", "");
    g_assert_cmpint(stub_continue_calls, ==, 2);
    assert_hmp("migrate_continue bogus", "Error: invalid parameter value: bogus\n");
    assert_hmp("migrate_continue device", "Error: Migration not in expected state: "
               "pre-switchover\n");

    /* Every command is in query-commands. */
    {
        g_autofree char *cmds = qmp("query-commands", NULL);
        static const char *const names[] = {
            "migrate", "migrate-incoming", "query-migrate", "migrate_cancel",
            "migrate-continue", "getfd", "closefd", "migrate-set-capabilities",
            "query-migrate-capabilities", "migrate-set-parameters",
            "query-migrate-parameters", NULL,
        };
        for (int i = 0; names[i]; i++) {
            g_autofree char *entry = g_strdup_printf("{\"name\": \"%s\"}", names[i]);
            g_assert_nonnull(strstr(cmds, entry));
        }
    }
}

/* ---- info migrate ---- */

static void test_hmp_info_migrate(void)
{
    reset();
    assert_hmp("info migrate", "");

    stub_query_info = parse_object(
        "{\"status\": \"active\", \"total-time\": 47317, \"setup-time\": 5, "
        "\"expected-downtime\": 8, \"ram\": {\"transferred\": 1513975889, "
        "\"remaining\": 2641404887, \"total\": 4316594176, \"duplicate\": 41195, "
        "\"normal\": 367713, \"normal-bytes\": 1506152448, \"dirty-pages-rate\": 4, "
        "\"mbps\": 1342.83, \"dirty-sync-count\": 2, \"postcopy-requests\": 0, "
        "\"page-size\": 4096, \"multifd-bytes\": 0, \"pages-per-second\": 40900, "
        "\"precopy-bytes\": 15938355, \"downtime-bytes\": 0, \"postcopy-bytes\": 0, "
        "\"dirty-sync-missed-zero-copy\": 0}, \"cpu-throttle-percentage\": 20}");
    assert_hmp("info migrate",
               "Status: \t\tactive\n"
               "Time (ms): \t\ttotal=47317, setup=5, exp_down=8\n"
               "RAM info:\n"
               "  Throughput (Mbps): \t1342.83\n"
               "  Sizes: \t\tpagesize=4 KiB, total=4.02 GiB\n"
               "  Transfers: \t\ttransferred=1.41 GiB, remain=2.46 GiB\n"
               "    Channels: \t\tprecopy=15.2 MiB, multifd=0 B, postcopy=0 B\n"
               "    Page Types: \tnormal=367713, zero=41195\n"
               "  Page Rates (pps): \ttransfer=40900, dirty=4\n"
               "  Others: \t\tdirty_syncs=2\n");
    assert_hmp("info migrate -a",
               "Status: \t\tactive\n"
               "Time (ms): \t\ttotal=47317, setup=5, exp_down=8\n"
               "RAM info:\n"
               "  Throughput (Mbps): \t1342.83\n"
               "  Sizes: \t\tpagesize=4 KiB, total=4.02 GiB\n"
               "  Transfers: \t\ttransferred=1.41 GiB, remain=2.46 GiB\n"
               "    Channels: \t\tprecopy=15.2 MiB, multifd=0 B, postcopy=0 B\n"
               "    Page Types: \tnormal=367713, zero=41195\n"
               "  Page Rates (pps): \ttransfer=40900, dirty=4\n"
               "  Others: \t\tdirty_syncs=2\n"
               "CPU Throttle (%): 20\n");
    assert_hmp("info migrate -x", "info migrate: unsupported option -x\n"
               "Try \"help info migrate\" for more information\n");

    json_object_unref(stub_query_info);
    stub_query_info = parse_object(
        "{\"status\": \"completed\", \"total-time\": 5310, \"setup-time\": 17, "
        "\"downtime\": 167, \"ram\": {\"transferred\": 875560000, \"remaining\": 0, "
        "\"total\": 1073741824, \"duplicate\": 995, \"normal\": 213411, "
        "\"dirty-pages-rate\": 0, \"mbps\": 1851.95, \"dirty-sync-count\": 4, "
        "\"postcopy-requests\": 12, \"page-size\": 4096, \"multifd-bytes\": 1000, "
        "\"pages-per-second\": 56517, \"precopy-bytes\": 807410000, "
        "\"downtime-bytes\": 68853759, \"postcopy-bytes\": 0, "
        "\"dirty-sync-missed-zero-copy\": 3}}");
    assert_hmp("info migrate",
               "Status: \t\tcompleted\n"
               "Time (ms): \t\ttotal=5310, setup=17, down=167\n"
               "RAM info:\n"
               "  Throughput (Mbps): \t1851.95\n"
               "  Sizes: \t\tpagesize=4 KiB, total=1 GiB\n"
               "  Transfers: \t\ttransferred=835 MiB, remain=0 B\n"
               "    Channels: \t\tprecopy=770 MiB, multifd=0.977 KiB, postcopy=0 B\n"
               "    Page Types: \tnormal=213411, zero=995\n"
               "  Page Rates (pps): \ttransfer=56517\n"
               "  Others: \t\tdirty_syncs=4, postcopy_req=12, downtime_bytes=68853759, "
               "zerocopy_fallbacks=3\n");

    json_object_unref(stub_query_info);
    stub_query_info = parse_object(
        "{\"status\": \"failed\", \"total-time\": 12, \"error-desc\": \"Connection refused\"}");
    assert_hmp("info migrate",
               "Status: \t\tfailed (Connection refused)\n"
               "Time (ms): \t\ttotal=12\n");

    /* A destination waiting for its source. */
    json_object_unref(stub_query_info);
    stub_query_info = parse_object(
        "{\"status\": \"setup\", \"socket-address\": [{\"type\": \"inet\", "
        "\"host\": \"127.0.0.1\", \"port\": \"4446\"}, {\"type\": \"unix\", "
        "\"path\": \"/tmp/m.sock\"}]}");
    assert_hmp("info migrate",
               "Status: \t\tsetup\n"
               "Sockets: [\n"
               "\ttcp:127.0.0.1:4446\n"
               "\tunix:/tmp/m.sock\n"
               "]\n");

    json_object_unref(stub_query_info);
    stub_query_info = parse_object(
        "{\"blocked-reasons\": [\"a vfio device\", \"another\"]}");
    assert_hmp("info migrate", "Outgoing migration blocked:\n  a vfio device\n  another\n");
}

/* ---- HMP migrate ---- */

static void test_hmp_migrate_detached(void)
{
    reset();
    assert_hmp("migrate -d tcp:127.0.0.1:4446", "");
    g_assert_cmpstr(stub_migrate_uri, ==, "tcp:127.0.0.1:4446");
    g_assert_false(stub_migrate_resume);
    assert_hmp("migrate -d -r unix:/x", "");
    g_assert_cmpstr(stub_migrate_uri, ==, "unix:/x");
    g_assert_true(stub_migrate_resume);
    assert_hmp("migrate -r -d \"exec:cat > /dev/null\"", "");
    g_assert_cmpstr(stub_migrate_uri, ==, "exec:cat > /dev/null");
    /* Not from an interactive monitor: QEMU's words, and it goes on detached. */
    assert_hmp("migrate unix:/y",
               "terminal does not allow synchronous migration, continuing detached\n");
    g_assert_cmpstr(stub_migrate_uri, ==, "unix:/y");
    assert_hmp("migrate", "migrate: string expected\n"
               "Try \"help migrate\" for more information\n");
    assert_hmp("migrate -d", "migrate: string expected\n"
               "Try \"help migrate\" for more information\n");
    assert_hmp("migrate -b tcp:a:1", "migrate: unsupported option -b\n"
               "Try \"help migrate\" for more information\n");
    assert_hmp("migrate -d tcp:a:1 more", "migrate: extraneous characters at the end of line\n"
               "Try \"help migrate\" for more information\n");
    stub_start_error = "Cannot migrate a VM in state 'postmigrate'";
    assert_hmp("migrate -d tcp:a:1", "Error: Cannot migrate a VM in state 'postmigrate'\n");
    /* Through QMP's human-monitor-command too. */
    assert_qmp("human-monitor-command", "{\"command-line\": \"migrate unix:/z\"}",
               "\"terminal does not allow synchronous migration, continuing "
               "detached\\r\\n\"");
    g_assert_cmpstr(stub_migrate_uri, ==, "unix:/z");
    assert_hmp("help migrate", "migrate [-d] [-r] uri -- migrate to URI (using -d to not wait "
               "for completion, -r to resume a paused postcopy migration)\n");
    assert_hmp("help info migrate", "info migrate [-a] -- show migration status "
               "(-a: all, dump all status)\n");
}

/* A client of a socket monitor that pumps the main context while it waits. */
typedef struct Client {
    int fd;
    GString *in;
} Client;

static Client *client_connect(const char *path)
{
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    Client *c = g_new0(Client, 1);

    c->in = g_string_new(NULL);
    c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
    g_strlcpy(un.sun_path, path, sizeof(un.sun_path));
    g_assert_cmpint(connect(c->fd, (struct sockaddr *)&un, sizeof(un)), ==, 0);
    return c;
}

static void client_free(Client *c)
{
    close(c->fd);
    g_string_free(c->in, TRUE);
    g_free(c);
}

static void client_pump(Client *c)
{
    char buf[4096];
    ssize_t n;

    g_main_context_iteration(NULL, FALSE);
    n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
        g_string_append_len(c->in, buf, n);
    } else {
        g_usleep(1000);
    }
}

/* Everything up to and including @token (LF matching the wire's CRLF; returned as LF). */
static char *client_until(Client *c, const char *token_lf, int timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + timeout_ms * 1000;
    g_autofree char *token = monitor_crlf(token_lf);

    for (;;) {
        char *at = strstr(c->in->str, token);
        if (at) {
            size_t len = at - c->in->str + strlen(token);
            g_autofree char *raw = g_strndup(c->in->str, len);
            g_autofree char **parts = NULL;
            g_string_erase(c->in, 0, len);
            parts = g_strsplit(raw, "\r\n", -1);
            char *joined = g_strjoinv("\n", parts);
            g_strfreev(g_steal_pointer(&parts));
            return joined;
        }
        if (g_get_monotonic_time() > deadline) {
            return NULL;
        }
        client_pump(c);
    }
}

static void client_send(Client *c, const char *text)
{
    g_assert_cmpint(send(c->fd, text, strlen(text), MSG_NOSIGNAL), ==, (ssize_t)strlen(text));
}

/* @text with @fd attached as SCM_RIGHTS. */
static void client_send_fd(Client *c, const char *text, int fd)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov = { .iov_base = (void *)text, .iov_len = strlen(text) };
    struct msghdr msg = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control.buf,
        .msg_controllen = sizeof(control.buf),
    };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

    memset(&control, 0, sizeof(control));
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    g_assert_cmpint(sendmsg(c->fd, &msg, MSG_NOSIGNAL), ==, (ssize_t)strlen(text));
}

static Chardev *socket_chardev(const char *dir, const char *name)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    g_autofree char *opts = g_strdup_printf("socket,id=%s,path=%s,server=on,wait=off", name,
                                            path);
    g_autoptr(GError) err = NULL;
    Chardev *chr = chardev_new_from_opts(opts, &err);

    g_assert_no_error(err);
    return chr;
}

static void test_hmp_migrate_sync(void)
{
    g_autofree char *dir = g_dir_make_tmp("ferry-mig-hmp-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "hmp0", NULL);
    g_autoptr(GError) err = NULL;
    Chardev *chr;
    Client *c, *other;
    char *out;

    reset();
    stub_runstate = RUN_STATE_RUNNING;
    chr = socket_chardev(dir, "hmp0");
    g_assert_true(monitor_new_hmp(chr, &err));
    g_assert_no_error(err);
    c = client_connect(path);
    out = client_until(c, "(qemu) ", 5000);
    g_assert_nonnull(out);
    g_free(out);

    /* A failing start prints the error and the prompt at once. */
    stub_start_error = "There's a migration process in progress";
    client_send(c, "migrate unix:/tmp/never\n");
    out = client_until(c, "(qemu) ", 5000);
    g_assert_cmpstr(out, ==, "Error: There's a migration process in progress\n(qemu) ");
    g_free(out);

    /* The migration runs: no prompt; what is typed meanwhile waits. */
    client_send(c, "migrate unix:/tmp/dest\ninfo status\n");
    for (int i = 0; i < 100; i++) {
        client_pump(c);
    }
    g_assert_cmpstr(stub_migrate_uri, ==, "unix:/tmp/dest");
    g_assert_cmpstr(c->in->str, ==, "");

    /* Other monitors keep working meanwhile. */
    {
        g_autofree char *status = hmp("info status");
        g_assert_cmpstr(status, ==, "VM status: running\n");
    }

    stub_outgoing_status = MIGRATION_STATUS_ACTIVE;
    stub_query_info = parse_object(
        "{\"status\": \"active\", \"total-time\": 700, \"ram\": {\"transferred\": 1288490189, "
        "\"remaining\": 2040109465, \"total\": 3221225472, \"mbps\": 32800.0, "
        "\"page-size\": 4096}}");
    out = client_until(c, "\n", 3000);
    g_assert_cmpstr(out, ==, "Migration: 36% (1.1 GiB/3.0 GiB), 4.1 GB/s, remaining 1.9 GiB, "
                    "ETA 0.5 s\n");
    g_free(out);
    /* Not the prompt yet, and not the queued command's output. */
    g_assert_null(strstr(c->in->str, "(qemu)"));

    json_object_unref(stub_query_info);
    stub_query_info = parse_object("{\"status\": \"completed\", \"total-time\": 900}");
    stub_outgoing_status = MIGRATION_STATUS_COMPLETED;
    out = client_until(c, "Migration completed\n(qemu) ", 3000);
    g_assert_nonnull(out);
    g_free(out);
    /* Then the line typed during the migration ran. */
    out = client_until(c, "(qemu) ", 3000);
    g_assert_cmpstr(out, ==, "VM status: running\n(qemu) ");
    g_free(out);

    /* A failure reports the error description. */
    stub_status_after_start = MIGRATION_STATUS_SETUP;
    client_send(c, "migrate tcp:127.0.0.1:1\n");
    json_object_unref(stub_query_info);
    stub_query_info = parse_object("{\"status\": \"failed\", \"error-desc\": "
                                   "\"Failed to connect to '127.0.0.1:1': Connection refused\"}");
    stub_outgoing_status = MIGRATION_STATUS_FAILED;
    out = client_until(c, "(qemu) ", 3000);
    g_assert_cmpstr(out, ==, "migrate: Failed to connect to '127.0.0.1:1': Connection refused\n"
                    "(qemu) ");
    g_free(out);

    /* Cancelled from elsewhere. */
    client_send(c, "migrate unix:/tmp/dest\n");
    json_object_unref(stub_query_info);
    stub_query_info = parse_object("{\"status\": \"cancelled\"}");
    stub_outgoing_status = MIGRATION_STATUS_CANCELLED;
    out = client_until(c, "(qemu) ", 3000);
    g_assert_cmpstr(out, ==, "Migration cancelled\n(qemu) ");
    g_free(out);

    /* Paused before switchover: the prompt comes back for migrate_continue. */
    client_send(c, "migrate unix:/tmp/dest\n");
    json_object_unref(stub_query_info);
    stub_query_info = parse_object("{\"status\": \"pre-switchover\"}");
    stub_outgoing_status = MIGRATION_STATUS_PRE_SWITCHOVER;
    out = client_until(c, "(qemu) ", 3000);
    g_assert_cmpstr(out, ==, "Migration status: pre-switchover\n(qemu) ");
    g_free(out);

    /* -d returns at once. */
    client_send(c, "migrate -d unix:/tmp/dest\n");
    out = client_until(c, "(qemu) ", 3000);
    g_assert_cmpstr(out, ==, "(qemu) ");
    g_free(out);

    /* A second HMP monitor is not held up by the first one waiting. */
    {
        g_autofree char *path2 = g_build_filename(dir, "hmp1", NULL);
        Chardev *chr2 = socket_chardev(dir, "hmp1");
        g_assert_true(monitor_new_hmp(chr2, &err));
        other = client_connect(path2);
        g_free(client_until(other, "(qemu) ", 5000));
        stub_outgoing_status = MIGRATION_STATUS_NONE;
        json_object_unref(stub_query_info);
        stub_query_info = parse_object("{\"status\": \"setup\"}");
        client_send(c, "migrate unix:/tmp/dest\n");
        for (int i = 0; i < 50; i++) {
            client_pump(c);
        }
        client_send(other, "info status\n");
        out = client_until(other, "(qemu) ", 3000);
        g_assert_cmpstr(out, ==, "VM status: running\n(qemu) ");
        g_free(out);
        g_assert_null(strstr(c->in->str, "(qemu)"));
        json_object_unref(stub_query_info);
        stub_query_info = parse_object("{\"status\": \"completed\"}");
        stub_outgoing_status = MIGRATION_STATUS_COMPLETED;
        out = client_until(c, "(qemu) ", 3000);
        g_assert_cmpstr(out, ==, "Migration completed\n(qemu) ");
        g_free(out);
        client_free(other);
    }
    client_free(c);
    chardev_cleanup_all();
}

/* ---- getfd / closefd with SCM_RIGHTS ---- */

/* True when every write end of the pipe whose read end is @r is closed. */
static bool pipe_writers_gone(int r)
{
    char b;
    int flags = fcntl(r, F_GETFL);
    ssize_t n;

    fcntl(r, F_SETFL, flags | O_NONBLOCK);
    n = read(r, &b, 1);
    fcntl(r, F_SETFL, flags);
    return n == 0;
}

static void test_getfd(void)
{
    g_autofree char *dir = g_dir_make_tmp("ferry-mig-fd-XXXXXX", NULL);
    g_autofree char *qpath = g_build_filename(dir, "qmp0", NULL);
    g_autofree char *hpath = g_build_filename(dir, "hmp0", NULL);
    g_autoptr(GError) err = NULL;
    Chardev *chr;
    Client *q, *h;
    char *line;
    int p[2];

    reset();
    chr = socket_chardev(dir, "qmp0");
    g_assert_true(monitor_new_qmp(chr, false, &err));
    g_assert_no_error(err);
    q = client_connect(qpath);
    g_free(client_until(q, "\n", 5000));
    client_send(q, "{\"execute\": \"qmp_capabilities\"}\n");
    line = client_until(q, "\n", 5000);
    g_assert_cmpstr(line, ==, "{\"return\": {}}\n");
    g_free(line);

    /* getfd takes the descriptor sent with it; monitor_fd_take() hands it on once. */
    g_assert_cmpint(pipe(p), ==, 0);
    client_send_fd(q, "{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"mig\"}}\n", p[1]);
    close(p[1]);
    line = client_until(q, "\n", 5000);
    g_assert_cmpstr(line, ==, "{\"return\": {}}\n");
    g_free(line);
    g_assert_false(pipe_writers_gone(p[0]));
    {
        int fd = monitor_fd_take("mig");
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(write(fd, "x", 1), ==, 1);
        char b = 0;
        g_assert_cmpint(read(p[0], &b, 1), ==, 1);
        g_assert_cmpint(b, ==, 'x');
        g_assert_cmpint(monitor_fd_take("mig"), ==, -1);
        g_assert_cmpint(fcntl(fd, F_GETFD) & FD_CLOEXEC, ==, FD_CLOEXEC);
        close(fd);
    }
    g_assert_true(pipe_writers_gone(p[0]));
    close(p[0]);

    /* Sent with a command that does not take it: closed after that command. */
    g_assert_cmpint(pipe(p), ==, 0);
    client_send_fd(q, "{\"execute\": \"query-migrate\"}\n", p[1]);
    close(p[1]);
    line = client_until(q, "\n", 5000);
    g_assert_cmpstr(line, ==, "{\"return\": {}}\n");
    g_free(line);
    g_assert_true(pipe_writers_gone(p[0]));
    close(p[0]);

    /* A name starting with a digit: refused, and the descriptor closed. */
    g_assert_cmpint(pipe(p), ==, 0);
    client_send_fd(q, "{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"3x\"}}\n", p[1]);
    close(p[1]);
    line = client_until(q, "\n", 5000);
    g_assert_cmpstr(line, ==, "{\"error\": {\"class\": \"GenericError\", \"desc\": "
                    "\"Parameter 'fdname' expects a name not starting with a digit\"}}\n");
    g_free(line);
    g_assert_true(pipe_writers_gone(p[0]));
    close(p[0]);

    /* No descriptor at all. */
    client_send(q, "{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"x\"}}\n");
    line = client_until(q, "\n", 5000);
    g_assert_cmpstr(line, ==, "{\"error\": {\"class\": \"GenericError\", \"desc\": "
                    "\"No file descriptor supplied via SCM_RIGHTS\"}}\n");
    g_free(line);

    /* The same name again replaces (and closes) the first descriptor; closefd. */
    {
        int p1[2], p2[2];
        g_assert_cmpint(pipe(p1), ==, 0);
        g_assert_cmpint(pipe(p2), ==, 0);
        client_send_fd(q, "{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"a\"}}\n",
                       p1[1]);
        close(p1[1]);
        g_free(client_until(q, "\n", 5000));
        client_send_fd(q, "{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"a\"}}\n",
                       p2[1]);
        close(p2[1]);
        line = client_until(q, "\n", 5000);
        g_assert_cmpstr(line, ==, "{\"return\": {}}\n");
        g_free(line);
        g_assert_true(pipe_writers_gone(p1[0]));
        g_assert_false(pipe_writers_gone(p2[0]));
        client_send(q, "{\"execute\": \"closefd\", \"arguments\": {\"fdname\": \"a\"}}\n");
        line = client_until(q, "\n", 5000);
        g_assert_cmpstr(line, ==, "{\"return\": {}}\n");
        g_free(line);
        g_assert_true(pipe_writers_gone(p2[0]));
        client_send(q, "{\"execute\": \"closefd\", \"arguments\": {\"fdname\": \"a\"}}\n");
        line = client_until(q, "\n", 5000);
        g_assert_cmpstr(line, ==, "{\"error\": {\"class\": \"GenericError\", \"desc\": "
                        "\"File descriptor named 'a' not found\"}}\n");
        g_free(line);
        close(p1[0]);
        close(p2[0]);
    }

    /* A request split across reads keeps the descriptor that came with its first part. */
    g_assert_cmpint(pipe(p), ==, 0);
    client_send_fd(q, "{\"execute\": \"query-status\"}\n{\"execute\": \"getfd\", ", p[1]);
    close(p[1]);
    for (int i = 0; i < 50; i++) {
        client_pump(q);
    }
    client_send(q, "\"arguments\": {\"fdname\": \"split\"}}\n");
    line = client_until(q, "\n", 5000);
    g_assert_nonnull(strstr(line, "\"running\""));
    g_free(line);
    line = client_until(q, "\n", 5000);
    g_assert_cmpstr(line, ==, "{\"return\": {}}\n");
    g_free(line);
    {
        int fd = monitor_fd_take("split");
        g_assert_cmpint(fd, >=, 0);
        close(fd);
    }
    g_assert_true(pipe_writers_gone(p[0]));
    close(p[0]);

    /* Left unclaimed when the client goes away: closed. */
    g_assert_cmpint(pipe(p), ==, 0);
    client_send_fd(q, "{\"execute\": \"query-st", p[1]);
    close(p[1]);
    for (int i = 0; i < 50; i++) {
        client_pump(q);
    }
    client_free(q);
    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    while (!pipe_writers_gone(p[0]) && g_get_monotonic_time() < deadline) {
        g_main_context_iteration(NULL, FALSE);
        g_usleep(1000);
    }
    g_assert_true(pipe_writers_gone(p[0]));
    close(p[0]);

    /* HMP's getfd and closefd. */
    chr = socket_chardev(dir, "hmp0");
    g_assert_true(monitor_new_hmp(chr, &err));
    h = client_connect(hpath);
    g_free(client_until(h, "(qemu) ", 5000));
    g_assert_cmpint(pipe(p), ==, 0);
    client_send_fd(h, "getfd hfd\n", p[1]);
    close(p[1]);
    line = client_until(h, "(qemu) ", 5000);
    g_assert_cmpstr(line, ==, "(qemu) ");
    g_free(line);
    g_assert_false(pipe_writers_gone(p[0]));
    client_send(h, "closefd hfd\n");
    line = client_until(h, "(qemu) ", 5000);
    g_assert_cmpstr(line, ==, "(qemu) ");
    g_free(line);
    g_assert_true(pipe_writers_gone(p[0]));
    client_send(h, "closefd hfd\n");
    line = client_until(h, "(qemu) ", 5000);
    g_assert_cmpstr(line, ==, "Error: File descriptor named 'hfd' not found\n(qemu) ");
    g_free(line);
    client_send(h, "getfd nofd\n");
    line = client_until(h, "(qemu) ", 5000);
    g_assert_cmpstr(line, ==, "Error: No file descriptor supplied via SCM_RIGHTS\n(qemu) ");
    g_free(line);
    /* Sent with an HMP line that does not take it: closed after the line. */
    client_send_fd(h, "info status\n", p[0]);
    g_free(client_until(h, "(qemu) ", 5000));
    close(p[0]);
    client_free(h);

    /* Outside any monitor connection there is nothing to take. */
    assert_qmp("getfd", "{\"fdname\": \"x\"}",
               "GenericError: No file descriptor supplied via SCM_RIGHTS");
    assert_qmp("closefd", "{\"fdname\": \"x\"}",
               "GenericError: File descriptor named 'x' not found");
    assert_qmp("getfd", "{}", "GenericError: Parameter 'fdname' is missing");
    g_assert_cmpint(monitor_fd_take("never"), ==, -1);
    chardev_cleanup_all();
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    monitor_register_core_commands();
    migration_monitor_register();
    migration_monitor_register();   /* twice is harmless */

    g_test_add_func("/migration/options/capabilities/query", test_caps_query);
    g_test_add_func("/migration/options/capabilities/set-each", test_caps_set_each);
    g_test_add_func("/migration/options/capabilities/errors", test_caps_errors);
    g_test_add_func("/migration/options/capabilities/busy", test_caps_busy);
    g_test_add_func("/migration/options/parameters/defaults", test_params_defaults);
    g_test_add_func("/migration/options/parameters/set-each", test_params_set_each);
    g_test_add_func("/migration/options/parameters/ranges", test_params_ranges);
    g_test_add_func("/migration/options/parameters/types", test_params_types);
    g_test_add_func("/migration/options/parameters/bitmap-mapping",
                    test_params_bitmap_mapping);
    g_test_add_func("/migration/hmp/info-options", test_hmp_info_options);
    g_test_add_func("/migration/hmp/set-capability", test_hmp_set_capability);
    g_test_add_func("/migration/hmp/set-parameter", test_hmp_set_parameter);
    g_test_add_func("/migration/qmp/migrate-uri", test_qmp_migrate_uri);
    g_test_add_func("/migration/qmp/migrate-channels", test_qmp_migrate_channels);
    g_test_add_func("/migration/qmp/migrate-incoming", test_qmp_migrate_incoming);
    g_test_add_func("/migration/qmp/query-cancel-continue", test_qmp_query_cancel_continue);
    g_test_add_func("/migration/hmp/info-migrate", test_hmp_info_migrate);
    g_test_add_func("/migration/hmp/migrate-detached", test_hmp_migrate_detached);
    g_test_add_func("/migration/hmp/migrate-sync", test_hmp_migrate_sync);
    g_test_add_func("/migration/fds/getfd", test_getfd);
    return g_test_run();
}
