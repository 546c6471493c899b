/*
 * Run state transitions and the events that announce them.
 */
#include <string.h>

#include "system/runstate.h"
#include "system/runstate-internal.h"
#include "system/main-loop.h"
#include "system/cpus.h"
#include "system/machine.h"
#include "system/monitor.h"

bool runstate_no_reboot;
bool runstate_no_shutdown;

static RunState current_state = RUN_STATE_PRELAUNCH;

RunState runstate_get(void)
{
    return current_state;
}

bool runstate_is_running(void)
{
    return current_state == RUN_STATE_RUNNING;
}

void runstate_set(RunState state)
{
    current_state = state;
}

bool vm_start(GError **errp)
{
    switch (current_state) {
    case RUN_STATE_RUNNING:
        return true;
    case RUN_STATE_INMIGRATE:
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Migration is not finalized yet");
        return false;
    case RUN_STATE_INTERNAL_ERROR:
    case RUN_STATE_SHUTDOWN:
    case RUN_STATE_GUEST_PANICKED:
        g_set_error(errp, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Resetting the Virtual Machine is required");
        return false;
    default:
        break;
    }
    current_state = RUN_STATE_RUNNING;
    qmp_event_emit("RESUME", NULL);
    cpus_resume_all();
    return true;
}

void vm_stop(RunState state)
{
    if (current_state == RUN_STATE_RUNNING) {
        /* Releases the BQL while it waits: another vm_stop() may finish first. */
        cpus_pause_all();
        if (current_state == RUN_STATE_RUNNING) {
            current_state = state;
            qmp_event_emit("STOP", NULL);
        } else if (state != RUN_STATE_PAUSED) {
            /*
             * Ferry's own transitions (finish-migrate, an error) win over a
             * user's pause that got in meanwhile; a user's pause never
             * overwrites them (a finished migration stays postmigrate).
             */
            current_state = state;
        }
    } else {
        current_state = state;
    }
}

/* Pending requests; any thread sets them, the main thread consumes them. */
static int reset_requested;        /* ShutdownCause + 1, 0 for none */
static int shutdown_requested;     /* ShutdownCause + 1, 0 for none */
static int powerdown_requested;

void system_reset_request(ShutdownCause cause)
{
    int none = 0;
    __atomic_compare_exchange_n(&reset_requested, &none, (int)cause + 1, false,
                                __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    main_loop_wakeup();
}

void system_shutdown_request(ShutdownCause cause)
{
    int none = 0;
    __atomic_compare_exchange_n(&shutdown_requested, &none, (int)cause + 1, false,
                                __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    main_loop_wakeup();
}

void system_powerdown_request(void)
{
    __atomic_store_n(&powerdown_requested, 1, __ATOMIC_SEQ_CST);
    main_loop_wakeup();
}

static JsonObject *runstate_cause_data(ShutdownCause cause)
{
    JsonObject *data = json_object_new();
    json_object_set_boolean_member(data, "guest", !shutdown_cause_is_host(cause));
    json_object_set_string_member(data, "reason", shutdown_cause_name(cause));
    return data;
}

static void runstate_handle_shutdown(ShutdownCause cause)
{
    qmp_event_emit("SHUTDOWN", runstate_cause_data(cause));
    if (runstate_no_shutdown && !shutdown_cause_is_host(cause)) {
        /* -no-shutdown: the guest's power-off only stops it. */
        vm_stop(RUN_STATE_SHUTDOWN);
        return;
    }
    main_loop_quit(0);
}

static void runstate_handle_reset(ShutdownCause cause)
{
    if (runstate_no_reboot && cause == SHUTDOWN_CAUSE_GUEST_RESET) {
        /* -no-reboot: a guest reboot ends the VM instead. */
        runstate_handle_shutdown(cause);
        return;
    }
    bool was_running = runstate_is_running();
    if (was_running) {
        cpus_pause_all();
    }
    machine_reset();
    qmp_event_emit("RESET", runstate_cause_data(cause));
    if (current_state == RUN_STATE_SHUTDOWN || current_state == RUN_STATE_GUEST_PANICKED ||
        current_state == RUN_STATE_INTERNAL_ERROR) {
        current_state = RUN_STATE_PAUSED;
    }
    if (was_running) {
        cpus_resume_all();
    }
}

void runstate_process_requests(void)
{
    int req;

    req = __atomic_exchange_n(&shutdown_requested, 0, __ATOMIC_SEQ_CST);
    if (req) {
        runstate_handle_shutdown((ShutdownCause)(req - 1));
        return;
    }
    req = __atomic_exchange_n(&reset_requested, 0, __ATOMIC_SEQ_CST);
    if (req) {
        runstate_handle_reset((ShutdownCause)(req - 1));
    }
    if (__atomic_exchange_n(&powerdown_requested, 0, __ATOMIC_SEQ_CST)) {
        qmp_event_emit("POWERDOWN", NULL);
        machine_powerdown();
    }
}
