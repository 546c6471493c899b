/*
 * Run state of the VM: the states QMP's query-status reports, the
 * transitions between them, and the requests (reset, shutdown, powerdown)
 * that vCPU threads and monitors post for the main loop to act on.
 */
#ifndef SYSTEM_RUNSTATE_H
#define SYSTEM_RUNSTATE_H

#include <stdbool.h>
#include <glib.h>

/* Same names as QEMU's RunState enum (query-status "status"). */
typedef enum RunState {
    RUN_STATE_DEBUG,
    RUN_STATE_INMIGRATE,
    RUN_STATE_INTERNAL_ERROR,
    RUN_STATE_IO_ERROR,
    RUN_STATE_PAUSED,
    RUN_STATE_POSTMIGRATE,
    RUN_STATE_PRELAUNCH,
    RUN_STATE_FINISH_MIGRATE,
    RUN_STATE_RESTORE_VM,
    RUN_STATE_RUNNING,
    RUN_STATE_SAVE_VM,
    RUN_STATE_SHUTDOWN,
    RUN_STATE_SUSPENDED,
    RUN_STATE_WATCHDOG,
    RUN_STATE_GUEST_PANICKED,
    RUN_STATE_COLO,
    RUN_STATE__MAX,
} RunState;

/* Same names as QEMU's ShutdownCause (SHUTDOWN/RESET event "reason"). */
typedef enum ShutdownCause {
    SHUTDOWN_CAUSE_NONE,
    SHUTDOWN_CAUSE_HOST_ERROR,
    SHUTDOWN_CAUSE_HOST_QMP_QUIT,
    SHUTDOWN_CAUSE_HOST_QMP_SYSTEM_RESET,
    SHUTDOWN_CAUSE_HOST_SIGNAL,
    SHUTDOWN_CAUSE_HOST_UI,
    SHUTDOWN_CAUSE_GUEST_SHUTDOWN,
    SHUTDOWN_CAUSE_GUEST_RESET,
    SHUTDOWN_CAUSE_GUEST_PANIC,
    SHUTDOWN_CAUSE_SUBSYSTEM_RESET,
    SHUTDOWN_CAUSE_SNAPSHOT_LOAD,
    SHUTDOWN_CAUSE__MAX,
} ShutdownCause;

const char *runstate_name(RunState state);
const char *shutdown_cause_name(ShutdownCause cause);
/* True for causes the host asked for (QMP quit, signal, ...). */
bool shutdown_cause_is_host(ShutdownCause cause);

/* All of the following are called with the BQL held. */
RunState runstate_get(void);
bool runstate_is_running(void);
void runstate_set(RunState state);

/*
 * Resume the vCPUs (QMP "cont"). Emits RESUME. Fails, with a message a
 * user can act on, from states that cannot resume (e.g. inmigrate).
 */
bool vm_start(GError **errp);
/* Pause the vCPUs and enter @state (QMP "stop" passes PAUSED). Emits STOP. */
void vm_stop(RunState state);

/*
 * Requests. Safe from any thread (vCPU threads post guest resets and
 * power-offs); the main loop acts on them and emits the events.
 */
void system_reset_request(ShutdownCause cause);
void system_shutdown_request(ShutdownCause cause);
void system_powerdown_request(void);

/* -no-reboot / -no-shutdown, set by the command line. */
extern bool runstate_no_reboot;
extern bool runstate_no_shutdown;

#endif
