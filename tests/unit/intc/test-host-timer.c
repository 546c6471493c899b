/*
 * The host timer service: callbacks run at or after their deadline, in
 * deadline order; mod moves a deadline, del cancels, free waits for a
 * running callback and works from inside one.
 */
#include <glib.h>

#include "hw/timer/host-timer.h"
#include "tests/unit/intc/intc-test.h"

typedef struct Probe {
    int fired;
    int64_t fired_at;
    int order;
    HostTimer *self;            /* freed from its own callback when set */
} Probe;

static int fire_seq;

static void probe_cb(void *opaque)
{
    Probe *p = opaque;

    p->fired_at = host_clock_ns();
    p->order = g_atomic_int_add(&fire_seq, 1);
    if (p->self) {
        host_timer_free(p->self);
    }
    g_atomic_int_inc(&p->fired);
}

static bool probe_fired(void *opaque)
{
    Probe *p = opaque;
    return g_atomic_int_get(&p->fired) > 0;
}

static void test_host_timer_fires(void)
{
    Probe a = { 0 }, b = { 0 };
    HostTimer *ta = host_timer_new(probe_cb, &a);
    HostTimer *tb = host_timer_new(probe_cb, &b);
    int64_t now = host_clock_ns();

    host_timer_mod(tb, now + 4000000);
    host_timer_mod(ta, now + 2000000);
    g_assert_true(host_timer_pending(ta));
    g_assert_true(intc_test_wait(probe_fired, &b, INTC_TEST_TIMEOUT_MS));
    g_assert_true(probe_fired(&a));
    g_assert_cmpint(a.fired_at, >=, now + 2000000);
    g_assert_cmpint(b.fired_at, >=, now + 4000000);
    g_assert_cmpint(a.order, <, b.order);
    g_assert_false(host_timer_pending(ta));
    host_timer_free(ta);
    host_timer_free(tb);
}

static void test_host_timer_mod_del(void)
{
    Probe a = { 0 }, b = { 0 }, c = { 0 };
    HostTimer *ta = host_timer_new(probe_cb, &a);
    HostTimer *tb = host_timer_new(probe_cb, &b);
    HostTimer *tc = host_timer_new(probe_cb, &c);
    int64_t now = host_clock_ns();

    /* a is cancelled, b moved later than c: c fires first and a never. */
    host_timer_mod(ta, now + 1000000);
    host_timer_del(ta);
    host_timer_mod(tb, now + 1000000);
    host_timer_mod(tc, now + 3000000);
    host_timer_mod(tb, now + 6000000);
    g_assert_true(intc_test_wait(probe_fired, &b, INTC_TEST_TIMEOUT_MS));
    g_assert_true(probe_fired(&c));
    g_assert_cmpint(c.order, <, b.order);
    g_assert_cmpint(b.fired_at, >=, now + 6000000);
    g_assert_false(probe_fired(&a));
    host_timer_free(ta);
    host_timer_free(tb);
    host_timer_free(tc);
}

static void test_host_timer_free_in_callback(void)
{
    Probe a = { 0 };
    a.self = host_timer_new(probe_cb, &a);

    host_timer_mod(a.self, host_clock_ns());        /* a past deadline fires at once */
    g_assert_true(intc_test_wait(probe_fired, &a, INTC_TEST_TIMEOUT_MS));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/intc/host-timer/fires", test_host_timer_fires);
    g_test_add_func("/intc/host-timer/mod-del", test_host_timer_mod_del);
    g_test_add_func("/intc/host-timer/free-in-callback", test_host_timer_free_in_callback);
    return g_test_run();
}
