/*
 * Helpers for tests that boot the project's test kernel: start it, read
 * its boot token and heartbeats. Line formats: docs/devel/test-kernel.md.
 */
#ifndef TESTS_QTEST_TESTKERNEL_H
#define TESTS_QTEST_TESTKERNEL_H

#include <stdio.h>
#include <string.h>

#include "libferry.h"

typedef struct Heartbeat {
    char token[17];
    guint64 ticks;
    guint64 pass;
    guint64 writes;
} Heartbeat;

static inline void heartbeat_parse(const char *line, Heartbeat *hb)
{
    const char *p = strstr(line, "HB token=");
    g_assert_nonnull(p);
    memset(hb, 0, sizeof(*hb));
    int n = sscanf(p, "HB token=%16s ticks=%" G_GUINT64_FORMAT " pass=%" G_GUINT64_FORMAT
                   " writes=%" G_GUINT64_FORMAT, hb->token, &hb->ticks, &hb->pass, &hb->writes);
    g_assert_cmpint(n, ==, 4);
}

/* Wait for the next heartbeat after everything seen so far. */
static inline void heartbeat_next(FerryVM *vm, Heartbeat *hb)
{
    ferry_serial_mark(vm);
    g_autofree char *line = ferry_serial_wait(vm, "HB token=", 20000);
    heartbeat_parse(line, hb);
}

/*
 * Wait for a heartbeat that shows the guest alive since @a: its timers
 * ticking, its verification passes completing and (with @writes) its
 * workload writing beyond @a's, with the same boot token. Heartbeats,
 * passes and VERIFY OK lines each keep their own schedule, and a vCPU or
 * timer thread may wait for a host core, so the next heartbeat alone
 * proves nothing: poll them until @timeout_ms (scaled), then assert on the
 * last one seen.
 */
static inline void heartbeat_wait_progress(FerryVM *vm, const Heartbeat *a, Heartbeat *b,
                                           bool writes, int timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)ferry_timeout(timeout_ms) * 1000;

    for (;;) {
        heartbeat_next(vm, b);
        g_assert_cmpstr(b->token, ==, a->token);
        if (b->ticks > a->ticks && b->pass > a->pass && (!writes || b->writes > a->writes)) {
            return;
        }
        if (g_get_monotonic_time() > deadline) {
            g_assert_cmpuint(b->ticks, >, a->ticks);
            g_assert_cmpuint(b->pass, >, a->pass);
            g_assert_cmpuint(b->writes, >, a->writes);
        }
    }
}

/* Start the test kernel; returns once it printed its boot token (copied to @token). */
static inline FerryVM *testkernel_start(const char *kernel, const char *extra, int smp,
                                        const char *append, char token[17])
{
    FerryVM *vm = ferry_vm_start("-m 512 -smp %d -kernel %s -append '%s' %s", smp, kernel,
                                 append, extra ? extra : "");
    g_autofree char *boot = ferry_serial_wait(vm, "FERRY-TESTKERNEL boot token=", 30000);
    const char *t = strstr(boot, "token=") + strlen("token=");
    g_assert_cmpuint(strlen(t), >=, 16);
    memcpy(token, t, 16);
    token[16] = '\0';
    return vm;
}

#define NEED_TESTKERNEL(var) \
    FERRY_REQUIRE_ACCEL(); \
    FERRY_REQUIRE_GUEST(var, "kernel")

#endif
