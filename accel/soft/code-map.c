/*
 * Which guest-physical pages hold decoded code, shared by every vCPU of
 * the process (one process runs one VM).
 *
 * Each page has a 32-bit word: bit 0 says decoded code exists, the rest is
 * a generation. A decoded block remembers the word it saw; a write to a
 * code page bumps the generation (after the data is written), so every
 * vCPU's blocks of that page stop matching. Writable TLB entries are never
 * installed for code pages, and when a page becomes code the epoch moves
 * so that every vCPU drops the writable entries it already had.
 */
#include <stdlib.h>

#include "soft-internal.h"

#define L2_BITS     14
#define L1_BITS     (SOFT_CODE_PHYS_BITS - 12 - L2_BITS)

static uint32_t *code_l1[1u << L1_BITS];
uint32_t soft_code_epoch;

uint32_t *soft_code_word(uint64_t gpa, bool create)
{
    uint64_t page = gpa >> 12;
    uint32_t **slot;
    uint32_t *l2;

    if (gpa >> SOFT_CODE_PHYS_BITS) {
        return NULL;
    }
    slot = &code_l1[page >> L2_BITS];
    l2 = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (!l2) {
        uint32_t *fresh;

        if (!create) {
            return NULL;
        }
        fresh = calloc(1u << L2_BITS, sizeof(uint32_t));
        if (!fresh) {
            return NULL;
        }
        if (!__atomic_compare_exchange_n(slot, &l2, fresh, false,
                                         __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            free(fresh);            /* another thread won; l2 holds its table */
        } else {
            l2 = fresh;
        }
    }
    return &l2[page & ((1u << L2_BITS) - 1)];
}

/* The page is about to be decoded: flag it before its bytes are read. */
uint32_t soft_code_mark(uint32_t *w)
{
    uint32_t v = __atomic_load_n(w, __ATOMIC_SEQ_CST);

    while (!(v & SOFT_CODE_FLAG)) {
        if (__atomic_compare_exchange_n(w, &v, v | SOFT_CODE_FLAG, false,
                                        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
            __atomic_add_fetch(&soft_code_epoch, 1, __ATOMIC_SEQ_CST);
            return v | SOFT_CODE_FLAG;
        }
    }
    return v;
}

/* The page was written: its decoded code, if any, is stale. */
void soft_code_invalidate(uint32_t *w)
{
    uint32_t v = __atomic_load_n(w, __ATOMIC_SEQ_CST);

    while (v & SOFT_CODE_FLAG) {
        if (__atomic_compare_exchange_n(w, &v, (v + 2) & ~SOFT_CODE_FLAG, false,
                                        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
            return;
        }
    }
}

bool soft_code_page(uint64_t gpa)
{
    uint32_t *w = soft_code_word(gpa, false);

    return w && (__atomic_load_n(w, __ATOMIC_RELAXED) & SOFT_CODE_FLAG);
}

void soft_code_written(uint64_t gpa)
{
    uint32_t *w = soft_code_word(gpa, false);

    if (w) {
        soft_code_invalidate(w);
    }
}
