/*
 * The source's run state at the moment it stopped for switchover, carried
 * in the stream so the destination resumes only a guest that was running
 * (a paused source arrives paused).
 */
#ifndef MIGRATION_GLOBAL_STATE_H
#define MIGRATION_GLOBAL_STATE_H

#include <stdbool.h>

#include "system/runstate.h"

void global_state_register(void);
/* Source, before vm_stop() at completion: remember the current run state. */
void global_state_store(void);
/* Destination, after loading: the source's state (RUNNING unless it was paused). */
RunState global_state_get_runstate(void);
bool global_state_received(void);

#endif
