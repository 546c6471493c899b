/*
 * The host timer service: one thread, one mutex, one condition. Timers are
 * few (one per LAPIC plus the PIT), so the thread finds the earliest
 * deadline by scanning them all rather than keeping a heap.
 */
#include <time.h>

#include <glib.h>

#include "hw/timer/host-timer.h"

struct HostTimer {
    HostTimerFunc *cb;
    void *opaque;
    int64_t deadline;       /* valid while armed */
    bool armed;
    bool running;           /* the service thread is in cb */
    bool freed;             /* freed from inside cb: the thread frees it after */
};

static struct {
    GMutex lock;
    GCond wake;             /* the set of deadlines changed */
    GCond done;             /* a callback returned */
    GPtrArray *timers;
    GThread *thread;
} host_timers;

int64_t host_clock_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static HostTimer *host_timer_earliest(void)
{
    HostTimer *best = NULL;

    for (guint i = 0; i < host_timers.timers->len; i++) {
        HostTimer *t = g_ptr_array_index(host_timers.timers, i);
        if (t->armed && (!best || t->deadline < best->deadline)) {
            best = t;
        }
    }
    return best;
}

static gpointer host_timer_thread(gpointer unused)
{
    g_mutex_lock(&host_timers.lock);
    for (;;) {
        HostTimer *t = host_timer_earliest();
        if (!t) {
            g_cond_wait(&host_timers.wake, &host_timers.lock);
            continue;
        }
        int64_t now = host_clock_ns();
        if (now < t->deadline) {
            /* GCond counts microseconds on the same clock: round up, never wake early. */
            gint64 until = (t->deadline + 999) / 1000;
            g_cond_wait_until(&host_timers.wake, &host_timers.lock, until);
            continue;
        }
        t->armed = false;
        t->running = true;
        g_mutex_unlock(&host_timers.lock);
        t->cb(t->opaque);
        g_mutex_lock(&host_timers.lock);
        t->running = false;
        if (t->freed) {
            g_free(t);
        }
        g_cond_broadcast(&host_timers.done);
    }
    return NULL;
}

HostTimer *host_timer_new(HostTimerFunc *cb, void *opaque)
{
    HostTimer *t = g_new0(HostTimer, 1);

    t->cb = cb;
    t->opaque = opaque;
    g_mutex_lock(&host_timers.lock);
    if (!host_timers.timers) {
        host_timers.timers = g_ptr_array_new();
    }
    g_ptr_array_add(host_timers.timers, t);
    if (!host_timers.thread) {
        /* Lives as long as the process: timers exist until exit. */
        host_timers.thread = g_thread_new("timer/host", host_timer_thread, NULL);
    }
    g_mutex_unlock(&host_timers.lock);
    return t;
}

void host_timer_mod(HostTimer *t, int64_t deadline_ns)
{
    g_mutex_lock(&host_timers.lock);
    t->deadline = deadline_ns;
    t->armed = true;
    g_cond_signal(&host_timers.wake);
    g_mutex_unlock(&host_timers.lock);
}

void host_timer_del(HostTimer *t)
{
    g_mutex_lock(&host_timers.lock);
    t->armed = false;
    g_mutex_unlock(&host_timers.lock);
}

bool host_timer_pending(HostTimer *t)
{
    g_mutex_lock(&host_timers.lock);
    bool armed = t->armed;
    g_mutex_unlock(&host_timers.lock);
    return armed;
}

void host_timer_free(HostTimer *t)
{
    if (!t) {
        return;
    }
    g_mutex_lock(&host_timers.lock);
    t->armed = false;
    /* From inside its own callback the service thread cannot wait for itself. */
    while (t->running && g_thread_self() != host_timers.thread) {
        g_cond_wait(&host_timers.done, &host_timers.lock);
    }
    g_ptr_array_remove(host_timers.timers, t);
    if (t->running) {
        t->freed = true;
    } else {
        g_free(t);
    }
    g_mutex_unlock(&host_timers.lock);
}
