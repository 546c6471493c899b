/*
 * Stand-ins for the run state, main loop and vCPU functions, so the
 * chardev and monitor unit tests run without a machine. Tests read and
 * set the recorded state through these variables.
 */
#ifndef TESTS_UNIT_STUBS_H
#define TESTS_UNIT_STUBS_H

#include "system/runstate.h"

extern RunState stub_runstate;
extern int stub_shutdown_requests;
extern ShutdownCause stub_last_shutdown_cause;
extern int stub_reset_requests;
extern int stub_powerdown_requests;

#endif
