/*
 * The main thread's GLib main loop and the big lock (BQL).
 *
 * The main thread holds the BQL whenever it is not waiting in poll(), so
 * every GSource callback (monitors, chardevs, timers) runs under it. vCPU
 * threads take it only while dispatching an exit to a device.
 */
#ifndef SYSTEM_MAIN_LOOP_H
#define SYSTEM_MAIN_LOOP_H

#include <stdbool.h>
#include <glib.h>

void bql_lock(void);
void bql_unlock(void);
bool bql_locked(void);

/* The main context; GSources for monitors and chardevs attach here. */
GMainContext *main_loop_context(void);

/* Run @fn(@opaque) in the main thread, under the BQL. Safe from any thread. */
void main_loop_schedule(GSourceFunc fn, gpointer opaque);

/* Wake the main loop from another thread (after posting a request). */
void main_loop_wakeup(void);

void main_loop_init(void);
/* Runs until main_loop_quit(); returns the process exit status. */
int main_loop_run(void);
void main_loop_quit(int exit_status);

#endif
