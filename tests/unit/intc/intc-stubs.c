/*
 * Stand-ins for the machine the irqchip models call: the BQL (the APIC
 * takes it to register a relocated MMIO page), and a deadline poll the
 * tests share.
 */
#include <glib.h>

#include "system/main-loop.h"
#include "tests/unit/intc/intc-test.h"

static GRecMutex stub_bql;
static __thread int stub_bql_depth;

void bql_lock(void)
{
    g_rec_mutex_lock(&stub_bql);
    stub_bql_depth++;
}

void bql_unlock(void)
{
    stub_bql_depth--;
    g_rec_mutex_unlock(&stub_bql);
}

bool bql_locked(void)
{
    return stub_bql_depth > 0;
}

bool intc_test_wait(bool (*cond)(void *opaque), void *opaque, int64_t timeout_ms)
{
    gint64 end = g_get_monotonic_time() + timeout_ms * 1000;

    while (!cond(opaque)) {
        if (g_get_monotonic_time() > end) {
            return cond(opaque);
        }
        g_usleep(200);  /* polling interval, not a stand-in for the event */
    }
    return true;
}
