/* Helpers shared by the irqchip model tests. */
#ifndef TESTS_UNIT_INTC_INTC_TEST_H
#define TESTS_UNIT_INTC_INTC_TEST_H

#include <stdbool.h>
#include <stdint.h>

/* Poll @cond until it holds or @timeout_ms passed; its last answer. */
bool intc_test_wait(bool (*cond)(void *opaque), void *opaque, int64_t timeout_ms);

/* Generous: only "fires eventually" is asserted, never how soon. */
#define INTC_TEST_TIMEOUT_MS 10000

#endif
