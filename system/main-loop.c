/*
 * The main thread: a GLib main context iterated by hand so that the BQL
 * is dropped exactly while the thread waits in poll() and held for every
 * dispatch. Requests from other threads (reset, shutdown) are handled
 * between iterations.
 */
#include <poll.h>

#include "system/main-loop.h"
#include "system/runstate-internal.h"

static GMutex bql;
static __thread bool bql_held;
static GMainContext *main_context;
static volatile gint quit_requested;
static int quit_status;

void bql_lock(void)
{
    g_assert(!bql_held);
    g_mutex_lock(&bql);
    bql_held = true;
}

void bql_unlock(void)
{
    g_assert(bql_held);
    bql_held = false;
    g_mutex_unlock(&bql);
}

bool bql_locked(void)
{
    return bql_held;
}

/* For threads that wait on a condition with the BQL released meanwhile. */
void bql_cond_wait(GCond *cond)
{
    g_assert(bql_held);
    bql_held = false;
    g_cond_wait(cond, &bql);
    bql_held = true;
}

bool bql_cond_wait_until(GCond *cond, gint64 end_time)
{
    g_assert(bql_held);
    bql_held = false;
    bool signalled = g_cond_wait_until(cond, &bql, end_time);
    bql_held = true;
    return signalled;
}

GMainContext *main_loop_context(void)
{
    return main_context;
}

typedef struct ScheduledCall {
    GSourceFunc fn;
    gpointer opaque;
} ScheduledCall;

static gboolean main_loop_run_scheduled(gpointer data)
{
    ScheduledCall *call = data;
    call->fn(call->opaque);
    return G_SOURCE_REMOVE;
}

void main_loop_schedule(GSourceFunc fn, gpointer opaque)
{
    ScheduledCall *call = g_new(ScheduledCall, 1);
    call->fn = fn;
    call->opaque = opaque;
    GSource *src = g_idle_source_new();
    g_source_set_priority(src, G_PRIORITY_HIGH);
    g_source_set_callback(src, main_loop_run_scheduled, call, g_free);
    g_source_attach(src, main_context);
    g_source_unref(src);
}

void main_loop_wakeup(void)
{
    g_main_context_wakeup(main_context);
}

void main_loop_init(void)
{
    main_context = g_main_context_default();
}

void main_loop_quit(int exit_status)
{
    quit_status = exit_status;
    g_atomic_int_set(&quit_requested, 1);
    main_loop_wakeup();
}

int main_loop_run(void)
{
    GMainContext *ctx = main_context;
    GPollFD *fds = NULL;
    gint allocated = 0;

    g_main_context_acquire(ctx);
    g_assert(bql_held);
    runstate_process_requests();
    while (!g_atomic_int_get(&quit_requested)) {
        gint max_priority, timeout, nfds;

        g_main_context_prepare(ctx, &max_priority);
        while ((nfds = g_main_context_query(ctx, max_priority, &timeout, fds,
                                            allocated)) > allocated) {
            allocated = nfds;
            fds = g_renew(GPollFD, fds, allocated);
        }
        bql_unlock();
        g_poll(fds, nfds, timeout);
        bql_lock();
        if (g_main_context_check(ctx, max_priority, fds, nfds)) {
            g_main_context_dispatch(ctx);
        }
        runstate_process_requests();
    }
    g_free(fds);
    g_main_context_release(ctx);
    return quit_status;
}
