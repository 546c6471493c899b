/* Pieces of the run state shared by system/ files only. */
#ifndef SYSTEM_RUNSTATE_INTERNAL_H
#define SYSTEM_RUNSTATE_INTERNAL_H

#include <glib.h>
#include <stdbool.h>

/* Act on pending reset/shutdown/powerdown requests; main thread, BQL held. */
void runstate_process_requests(void);

/* Wait on @cond with the BQL released meanwhile (as g_cond_wait does). */
void bql_cond_wait(GCond *cond);
bool bql_cond_wait_until(GCond *cond, gint64 end_time);

#endif
