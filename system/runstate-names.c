/*
 * Names of run states and shutdown causes, as QMP reports them
 * (query-status, SHUTDOWN/RESET events), and which causes are the host's.
 * Kept apart from runstate.c so that the unit tests, which stub the run
 * state itself, build this file and report the same names.
 */
#include "system/runstate.h"

static const char *const runstate_names[RUN_STATE__MAX] = {
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

static const char *const shutdown_cause_names[SHUTDOWN_CAUSE__MAX] = {
    [SHUTDOWN_CAUSE_NONE] = "none",
    [SHUTDOWN_CAUSE_HOST_ERROR] = "host-error",
    [SHUTDOWN_CAUSE_HOST_QMP_QUIT] = "host-qmp-quit",
    [SHUTDOWN_CAUSE_HOST_QMP_SYSTEM_RESET] = "host-qmp-system-reset",
    [SHUTDOWN_CAUSE_HOST_SIGNAL] = "host-signal",
    [SHUTDOWN_CAUSE_HOST_UI] = "host-ui",
    [SHUTDOWN_CAUSE_GUEST_SHUTDOWN] = "guest-shutdown",
    [SHUTDOWN_CAUSE_GUEST_RESET] = "guest-reset",
    [SHUTDOWN_CAUSE_GUEST_PANIC] = "guest-panic",
    [SHUTDOWN_CAUSE_SUBSYSTEM_RESET] = "subsystem-reset",
    [SHUTDOWN_CAUSE_SNAPSHOT_LOAD] = "snapshot-load",
};

const char *runstate_name(RunState state)
{
    return state < RUN_STATE__MAX ? runstate_names[state] : "unknown";
}

const char *shutdown_cause_name(ShutdownCause cause)
{
    return cause < SHUTDOWN_CAUSE__MAX ? shutdown_cause_names[cause] : "none";
}

bool shutdown_cause_is_host(ShutdownCause cause)
{
    return cause >= SHUTDOWN_CAUSE_HOST_ERROR && cause <= SHUTDOWN_CAUSE_HOST_UI;
}
