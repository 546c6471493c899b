/*
 * The initial memory and FPU images both runners build from a case, so the
 * two sides start from byte-identical state.
 */
#include <string.h>

#include "diff.h"

/* splitmix64: enough to make a page look random, and cheap. */
static uint64_t diff_mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void diff_fill_data(const DiffCase *c, uint8_t *data)
{
    uint64_t s = c->data_seed;

    for (size_t i = 0; i < DIFF_DATA_SIZE; i += 8) {
        uint64_t v = diff_mix(&s);
        memcpy(data + i, &v, 8);
    }
    for (unsigned i = 0; i < c->npatch; i++) {
        const DiffPatch *p = &c->patch[i];
        memcpy(data + p->off, p->bytes, p->len);
    }
}

void diff_fill_ro(uint8_t *page)
{
    for (unsigned i = 0; i < 0x1000; i++) {
        page[i] = (uint8_t)(i * 7 + 3);
    }
}

void diff_fx_default(uint8_t *fx)
{
    uint16_t fcw = 0x37f;
    uint32_t mxcsr = 0x1f80, mxcsr_mask = 0xffff;

    memset(fx, 0, 512);
    memcpy(fx + DIFF_FX_FCW, &fcw, 2);
    memcpy(fx + DIFF_FX_MXCSR, &mxcsr, 4);
    memcpy(fx + DIFF_FX_MXCSR + 4, &mxcsr_mask, 4);
}
