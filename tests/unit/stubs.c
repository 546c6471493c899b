/*
 * Stubs of system/runstate, system/main-loop and system/cpus for unit
 * tests that link the chardev and monitor sources alone. The main loop is
 * GLib's default context; the BQL is a no-op. The run-state names are the
 * real ones (system/runstate-names.c, built into the same library).
 */
#include <gio/gio.h>

#include "system/accel.h"
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

/* query-kvm answers as on a KVM host. */
bool accel_kvm_enabled(void)
{
    return true;
}

bool accel_kvm_present(void)
{
    return true;
}

bool runstate_no_shutdown;

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
