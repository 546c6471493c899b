/*
 * Stubs of system/runstate, system/main-loop and system/cpus for unit
 * tests that link the chardev and monitor sources alone. The main loop is
 * GLib's default context; the BQL is a no-op.
 */
#include <gio/gio.h>

#include "system/cpus.h"
#include "system/main-loop.h"
#include "system/runstate.h"
#include "tests/unit/stubs.h"

RunState stub_runstate = RUN_STATE_RUNNING;
int stub_shutdown_requests;
ShutdownCause stub_last_shutdown_cause;
int stub_reset_requests;
int stub_powerdown_requests;

bool runstate_no_reboot;
bool runstate_no_shutdown;

static const char *const stub_runstate_names[RUN_STATE__MAX] = {
    [RUN_STATE_DEBUG] = "debug",
    [RUN_STATE_INMIGRATE] = "inmigrate",
    [RUN_STATE_INTERNAL_ERROR] = "internal-error",
    [RUN_STATE_IO_ERROR] = "io-error",
    [RUN_STATE_PAUSED] = "paused",
    [RUN_STATE_POSTMIGRATE] = "postmigrate",
    [RUN_STATE_PRELAUNCH] = "prelaunch",
    [RUN_STATE_FINISH_MIGRATE] = "finish-migrate",
    [RUN_STATE_RESTORE_VM] = "restore-vm",
    [RUN_STATE_RUNNING] = "running",
    [RUN_STATE_SAVE_VM] = "save-vm",
    [RUN_STATE_SHUTDOWN] = "shutdown",
    [RUN_STATE_SUSPENDED] = "suspended",
    [RUN_STATE_WATCHDOG] = "watchdog",
    [RUN_STATE_GUEST_PANICKED] = "guest-panicked",
    [RUN_STATE_COLO] = "colo",
};

const char *runstate_name(RunState state)
{
    return state < RUN_STATE__MAX ? stub_runstate_names[state] : "unknown";
}

const char *shutdown_cause_name(ShutdownCause cause)
{
    return cause == SHUTDOWN_CAUSE_HOST_QMP_QUIT ? "host-qmp-quit" : "other";
}

bool shutdown_cause_is_host(ShutdownCause cause)
{
    return cause >= SHUTDOWN_CAUSE_HOST_ERROR && cause <= SHUTDOWN_CAUSE_HOST_UI;
}

RunState runstate_get(void)
{
    return stub_runstate;
}

bool runstate_is_running(void)
{
    return stub_runstate == RUN_STATE_RUNNING;
}

void runstate_set(RunState state)
{
    stub_runstate = state;
}

bool vm_start(GError **errp)
{
    if (stub_runstate == RUN_STATE_INMIGRATE) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "Migration is not complete yet");
        return false;
    }
    stub_runstate = RUN_STATE_RUNNING;
    return true;
}

void vm_stop(RunState state)
{
    stub_runstate = state;
}

void system_reset_request(ShutdownCause cause)
{
    stub_reset_requests++;
}

void system_shutdown_request(ShutdownCause cause)
{
    stub_shutdown_requests++;
    stub_last_shutdown_cause = cause;
}

void system_powerdown_request(void)
{
    stub_powerdown_requests++;
}

void bql_lock(void)
{
}

void bql_unlock(void)
{
}

bool bql_locked(void)
{
    return true;
}

GMainContext *main_loop_context(void)
{
    return g_main_context_default();
}

void main_loop_schedule(GSourceFunc fn, gpointer opaque)
{
    GSource *src = g_idle_source_new();

    g_source_set_callback(src, fn, opaque, NULL);
    g_source_attach(src, main_loop_context());
    g_source_unref(src);
}

void main_loop_wakeup(void)
{
    g_main_context_wakeup(main_loop_context());
}

void main_loop_init(void)
{
}

int main_loop_run(void)
{
    return 0;
}

void main_loop_quit(int exit_status)
{
}

int cpus_count(void)
{
    return 2;
}

int cpus_thread_id(int index)
{
    return 1000 + index;
}

void cpus_dump_registers(int index, GString *out)
{
    g_string_append_printf(out, "RAX=%016x RBX=0000000000000000\n", index);
}
