/*
 * Callbacks at host-clock deadlines, for device timers that must fire
 * while no vCPU is running (the LAPIC timer, the PIT).
 *
 * Clock: CLOCK_MONOTONIC in nanoseconds (host_clock_ns()). GLib's
 * g_get_monotonic_time() reads the same clock in microseconds on Linux.
 *
 * One service thread ("timer/host") owns every HostTimer. It sleeps until
 * the earliest deadline and runs the due callbacks one at a time, holding
 * no lock of this service and never the BQL. A callback therefore takes
 * its device's own lock; it must tolerate running late, and running once
 * after host_timer_mod()/host_timer_del() moved the deadline (that call
 * may race with a callback already under way): the device rechecks its
 * own deadline under its lock.
 *
 * host_timer_mod() and host_timer_del() never block on a callback, so a
 * device may call them with its lock held. host_timer_free() waits for a
 * callback in progress and must be called without any lock that callback
 * takes.
 */
#ifndef HW_TIMER_HOST_TIMER_H
#define HW_TIMER_HOST_TIMER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct HostTimer HostTimer;
typedef void HostTimerFunc(void *opaque);

/* Now on the service's clock (CLOCK_MONOTONIC), in nanoseconds. */
int64_t host_clock_ns(void);

/* A disarmed timer; the service thread starts with the first one. */
HostTimer *host_timer_new(HostTimerFunc *cb, void *opaque);
/* Fire once at @deadline_ns (host_clock_ns() time); a past deadline fires at once. */
void host_timer_mod(HostTimer *t, int64_t deadline_ns);
/* Disarm (a callback already running still completes). */
void host_timer_del(HostTimer *t);
bool host_timer_pending(HostTimer *t);
/* Disarm, wait for a running callback, free. NULL is ignored. */
void host_timer_free(HostTimer *t);

#endif
