/*
 * The monitor commands of the core machine: version, status, name, KVM,
 * vCPUs, run control (stop, cont, reset, powerdown, quit) and the HMP
 * passthrough. Each HMP command calls the QMP command and formats its
 * result.
 */
#include <string.h>

#include "system/accel.h"
#include "system/cpus.h"
#include "system/monitor/monitor-internal.h"
#include "system/runstate.h"

static char *monitor_vm_name;

void monitor_set_vm_name(const char *name)
{
    g_free(monitor_vm_name);
    monitor_vm_name = g_strdup(name);
}

static JsonNode *monitor_node_object(JsonObject *obj)
{
    JsonNode *node = json_node_new(JSON_NODE_OBJECT);

    json_node_take_object(node, obj);
    return node;
}

/* ---- QMP ---- */

static JsonNode *qmp_query_version(JsonObject *args, GError **errp)
{
    return monitor_node_object(qmp_version_info());
}

static JsonNode *qmp_query_commands(JsonObject *args, GError **errp)
{
    return qmp_dispatch_list_commands();
}

static JsonNode *qmp_query_status(JsonObject *args, GError **errp)
{
    JsonObject *info = json_object_new();

    json_object_set_boolean_member(info, "running", runstate_is_running());
    json_object_set_boolean_member(info, "singlestep", FALSE);
    json_object_set_string_member(info, "status", runstate_name(runstate_get()));
    return monitor_node_object(info);
}

static JsonNode *qmp_query_name(JsonObject *args, GError **errp)
{
    JsonObject *info = json_object_new();

    if (monitor_vm_name) {
        json_object_set_string_member(info, "name", monitor_vm_name);
    }
    return monitor_node_object(info);
}

static JsonNode *qmp_query_kvm(JsonObject *args, GError **errp)
{
    JsonObject *info = json_object_new();

    json_object_set_boolean_member(info, "enabled", accel_kvm_enabled());
    json_object_set_boolean_member(info, "present", accel_kvm_present());
    return monitor_node_object(info);
}

static JsonNode *qmp_query_cpus_fast(JsonObject *args, GError **errp)
{
    JsonArray *list = json_array_new();
    JsonNode *node = json_node_new(JSON_NODE_ARRAY);
    int n = cpus_count();

    for (int i = 0; i < n; i++) {
        JsonObject *cpu = json_object_new();
        JsonObject *props = json_object_new();
        g_autofree char *path = g_strdup_printf("/machine/unattached/device[%d]", i);

        json_object_set_int_member(props, "core-id", 0);
        json_object_set_int_member(props, "thread-id", 0);
        json_object_set_int_member(props, "socket-id", i);
        json_object_set_int_member(cpu, "cpu-index", i);
        json_object_set_string_member(cpu, "qom-path", path);
        json_object_set_int_member(cpu, "thread-id", cpus_thread_id(i));
        json_object_set_object_member(cpu, "props", props);
        json_object_set_string_member(cpu, "target", "x86_64");
        json_array_add_object_element(list, cpu);
    }
    json_node_take_array(node, list);
    return node;
}

static JsonNode *qmp_stop(JsonObject *args, GError **errp)
{
    /*
     * As in QEMU, stopping a VM that does not run changes nothing: a
     * migration's finish-migrate or postmigrate must not become paused.
     */
    if (runstate_is_running()) {
        vm_stop(RUN_STATE_PAUSED);
    }
    return NULL;
}

static JsonNode *qmp_cont(JsonObject *args, GError **errp)
{
    GError *err = NULL;

    if (!vm_start(&err)) {
        if (err && err->domain != QMP_ERROR) {
            g_set_error_literal(errp, QMP_ERROR, QMP_ERROR_GENERIC, err->message);
            g_error_free(err);
        } else if (err) {
            g_propagate_error(errp, err);
        } else {
            g_set_error_literal(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                                "The VM cannot be resumed");
        }
    }
    return NULL;
}

static JsonNode *qmp_system_reset(JsonObject *args, GError **errp)
{
    system_reset_request(SHUTDOWN_CAUSE_HOST_QMP_SYSTEM_RESET);
    return NULL;
}

static JsonNode *qmp_system_powerdown(JsonObject *args, GError **errp)
{
    system_powerdown_request();
    return NULL;
}

static JsonNode *qmp_quit(JsonObject *args, GError **errp)
{
    /* The reply is queued before the main loop acts on the request. */
    system_shutdown_request(SHUTDOWN_CAUSE_HOST_QMP_QUIT);
    return NULL;
}

static JsonNode *qmp_human_monitor_command(JsonObject *args, GError **errp)
{
    const char *line = json_object_get_string_member(args, "command-line");
    g_autoptr(GString) out = g_string_new(NULL);
    int saved = hmp_current_cpu();
    g_autofree char *text = NULL;

    if (json_object_has_member(args, "cpu-index")) {
        gint64 idx = json_object_get_int_member(args, "cpu-index");
        if (idx < 0 || idx >= cpus_count()) {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                        "Parameter 'cpu-index' expects a CPU number");
            return NULL;
        }
        hmp_set_current_cpu(idx);
    }
    hmp_execute(line, out);
    hmp_set_current_cpu(saved);

    text = monitor_crlf(out->str);
    return json_node_init_string(json_node_alloc(), text);
}

static const QmpArgSpec qmp_capabilities_args[] = {
    { "enable", QMP_ARG_ARRAY, true },
    { NULL },
};

static const QmpArgSpec human_monitor_command_args[] = {
    { "command-line", QMP_ARG_STR, false },
    { "cpu-index", QMP_ARG_INT, true },
    { NULL },
};

static const QmpCommand core_qmp_commands[] = {
    { "qmp_capabilities", qmp_handle_capabilities, qmp_capabilities_args,
      QMP_CMD_ALLOW_PRECONFIG },
    { "query-version", qmp_query_version, NULL, QMP_CMD_ALLOW_PRECONFIG },
    { "query-commands", qmp_query_commands, NULL, QMP_CMD_ALLOW_PRECONFIG },
    { "query-status", qmp_query_status, NULL, QMP_CMD_ALLOW_PRECONFIG },
    { "query-name", qmp_query_name, NULL, QMP_CMD_ALLOW_PRECONFIG },
    { "query-kvm", qmp_query_kvm, NULL, 0 },
    { "query-cpus-fast", qmp_query_cpus_fast, NULL, 0 },
    { "stop", qmp_stop, NULL, 0 },
    { "cont", qmp_cont, NULL, 0 },
    { "system_reset", qmp_system_reset, NULL, 0 },
    { "system_powerdown", qmp_system_powerdown, NULL, 0 },
    { "quit", qmp_quit, NULL, QMP_CMD_ALLOW_PRECONFIG },
    { "human-monitor-command", qmp_human_monitor_command, human_monitor_command_args, 0 },
};

/* ---- HMP ---- */

static void hmp_info_status(const char *args, GString *out)
{
    g_autoptr(JsonNode) ret = hmp_run_qmp("query-status", NULL, out);
    JsonObject *info;
    const char *status;
    bool running;

    if (!ret) {
        return;
    }
    info = json_node_get_object(ret);
    running = json_object_get_boolean_member(info, "running");
    status = json_object_get_string_member(info, "status");
    g_string_append_printf(out, "VM status: %s", running ? "running" : "paused");
    if (!running && strcmp(status, "paused") != 0) {
        g_string_append_printf(out, " (%s)", status);
    }
    g_string_append_c(out, '\n');
}

static void hmp_info_version(const char *args, GString *out)
{
    g_autoptr(JsonNode) ret = hmp_run_qmp("query-version", NULL, out);
    JsonObject *qemu;

    if (!ret) {
        return;
    }
    qemu = json_object_get_object_member(json_node_get_object(ret), "qemu");
    g_string_append_printf(out, "%" G_GINT64_FORMAT ".%" G_GINT64_FORMAT ".%" G_GINT64_FORMAT "\n",
                           json_object_get_int_member(qemu, "major"),
                           json_object_get_int_member(qemu, "minor"),
                           json_object_get_int_member(qemu, "micro"));
}

static void hmp_info_name(const char *args, GString *out)
{
    g_autoptr(JsonNode) ret = hmp_run_qmp("query-name", NULL, out);
    JsonObject *info;

    if (!ret) {
        return;
    }
    info = json_node_get_object(ret);
    if (json_object_has_member(info, "name")) {
        g_string_append_printf(out, "%s\n", json_object_get_string_member(info, "name"));
    }
}

static void hmp_info_kvm(const char *args, GString *out)
{
    g_autoptr(JsonNode) ret = hmp_run_qmp("query-kvm", NULL, out);
    JsonObject *info;

    if (!ret) {
        return;
    }
    info = json_node_get_object(ret);
    g_string_append_printf(out, "kvm support: %s\n",
                           json_object_get_boolean_member(info, "enabled") ? "enabled"
                                                                           : "disabled");
}

static void hmp_info_cpus(const char *args, GString *out)
{
    g_autoptr(JsonNode) ret = hmp_run_qmp("query-cpus-fast", NULL, out);
    JsonArray *list;

    if (!ret) {
        return;
    }
    list = json_node_get_array(ret);
    for (guint i = 0; i < json_array_get_length(list); i++) {
        JsonObject *cpu = json_array_get_object_element(list, i);
        gint64 idx = json_object_get_int_member(cpu, "cpu-index");
        g_string_append_printf(out,
                               "%c CPU #%" G_GINT64_FORMAT ": thread_id=%" G_GINT64_FORMAT "\n",
                               idx == hmp_current_cpu() ? '*' : ' ', idx,
                               json_object_get_int_member(cpu, "thread-id"));
    }
}

static void hmp_info_registers(const char *args, GString *out)
{
    if (!strcmp(args, "-a")) {
        for (int i = 0; i < cpus_count(); i++) {
            g_string_append_printf(out, "\nCPU#%d\n", i);
            cpus_dump_registers(i, out);
        }
        return;
    }
    if (args[0]) {
        char *end;
        gint64 idx = g_ascii_strtoll(args, &end, 0);
        if (*end || idx < 0 || idx >= cpus_count()) {
            g_string_append_printf(out, "CPU#%s not available\n", args);
            return;
        }
        g_string_append_printf(out, "\nCPU#%" G_GINT64_FORMAT "\n", idx);
        cpus_dump_registers(idx, out);
        return;
    }
    if (cpus_count() > 0) {
        cpus_dump_registers(MIN(hmp_current_cpu(), cpus_count() - 1), out);
    }
}

static void hmp_stop(const char *args, GString *out)
{
    hmp_run_qmp_simple("stop", NULL, out);
}

static void hmp_cont(const char *args, GString *out)
{
    hmp_run_qmp_simple("cont", NULL, out);
}

static void hmp_system_reset(const char *args, GString *out)
{
    hmp_run_qmp_simple("system_reset", NULL, out);
}

static void hmp_system_powerdown(const char *args, GString *out)
{
    hmp_run_qmp_simple("system_powerdown", NULL, out);
}

static void hmp_quit(const char *args, GString *out)
{
    hmp_run_qmp_simple("quit", NULL, out);
}

static const HmpCommand core_hmp_commands[] = {
    { "help", "?", "[cmd]", "show the help", hmp_handle_help },
    { "stop", NULL, "", "stop emulation", hmp_stop },
    { "cont", "c", "", "resume emulation", hmp_cont },
    { "system_reset", NULL, "", "reset the system", hmp_system_reset },
    { "system_powerdown", NULL, "", "send system power down event", hmp_system_powerdown },
    { "quit", "q", "", "quit the emulator", hmp_quit },
    { "info status", NULL, "", "show the current VM status (running|paused)", hmp_info_status },
    { "info version", NULL, "", "show the version of Ferry", hmp_info_version },
    { "info name", NULL, "", "show the current VM name", hmp_info_name },
    { "info kvm", NULL, "", "show KVM information", hmp_info_kvm },
    { "info cpus", NULL, "", "show infos for each CPU", hmp_info_cpus },
    { "info registers", NULL, "[-a|vcpu]",
      "show the cpu registers (-a: all vCPUs; vcpu: that vCPU; default: the current one)",
      hmp_info_registers },
};

void monitor_register_core_commands(void)
{
    static bool registered;

    if (registered) {
        return;
    }
    registered = true;
    qmp_register_commands(core_qmp_commands, G_N_ELEMENTS(core_qmp_commands));
    hmp_register_commands(core_hmp_commands, G_N_ELEMENTS(core_hmp_commands));
}
