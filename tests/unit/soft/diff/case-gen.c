/*
 * The shared machinery of the case generator (see case-gen.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "case-gen.h"

void cg_init(CaseGen *g, uint64_t seed, const char *group)
{
    g->cases = g_array_new(FALSE, TRUE, sizeof(DiffCase));
    /* Mix the group name in, so adding a group never shifts another's cases. */
    g->rng = seed ^ (g_str_hash(group) * 0x9e3779b97f4a7c15ULL);
}

void cg_destroy(CaseGen *g)
{
    g_array_free(g->cases, TRUE);
    g->cases = NULL;
}

uint64_t cg_rand(CaseGen *g)
{
    /* splitmix64 */
    uint64_t z = (g->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t cg_below(CaseGen *g, uint64_t n)
{
    return n ? cg_rand(g) % n : 0;
}

bool cg_chance(CaseGen *g, unsigned percent)
{
    return cg_below(g, 100) < percent;
}

uint64_t cg_value(CaseGen *g, int size)
{
    unsigned bits = size * 8;
    uint64_t mask = bits == 64 ? ~0ULL : (1ULL << bits) - 1;
    uint64_t sign = 1ULL << (bits - 1);
    uint64_t v;

    switch (cg_below(g, 16)) {
    case 0: v = 0; break;
    case 1: v = 1; break;
    case 2: v = mask; break;                    /* -1 */
    case 3: v = sign; break;                    /* most negative */
    case 4: v = sign - 1; break;                /* most positive */
    case 5: v = sign + 1; break;
    case 6: v = 1ULL << cg_below(g, bits); break;
    case 7: v = mask - 1; break;
    case 8: v = cg_below(g, 16); break;
    case 9: v = (1ULL << cg_below(g, bits)) - 1; break;
    default: v = cg_rand(g); break;
    }
    return v & mask;
}

uint64_t cg_reg_value(CaseGen *g, int size)
{
    uint64_t mask = size == 8 ? ~0ULL : (1ULL << (size * 8)) - 1;
    return (cg_rand(g) & ~mask) | cg_value(g, size);
}

void cg_begin(CaseGen *g, DiffCase *c)
{
    memset(c, 0, sizeof(*c));
    for (int i = 0; i < 16; i++) {
        c->in.gpr[i] = cg_reg_value(g, 8);
    }
    c->in.gpr[X86_RSP] = DIFF_STACK_TOP;
    c->in.rflags = cg_rand(g) & DIFF_FLAGS_ARITH;
    diff_fx_default(c->in.fx);
    c->data_seed = (uint32_t)cg_rand(g);
}

void cg_commit(CaseGen *g, const DiffCase *c)
{
    g_assert(c->code_len > 0);
    g_array_append_vals(g->cases, c, 1);
}

static void cg_vname(DiffCase *c, const char *fmt, va_list ap)
{
    size_t n = strlen(c->name);

    if (n && n + 2 < sizeof(c->name)) {
        memcpy(c->name + n, "; ", 3);
        n += 2;
    }
    vsnprintf(c->name + n, sizeof(c->name) - n, fmt, ap);
}

void cg_name(DiffCase *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cg_vname(c, fmt, ap);
    va_end(ap);
}

bool cg_emit(DiffCase *c, const EncInsn *in, const char *fmt, ...)
{
    uint8_t buf[32];
    unsigned n = enc_encode(in, DIFF_CODE_ADDR + c->code_len, buf);
    va_list ap;

    if (!n) {
        return false;
    }
    g_assert(c->code_len + n <= DIFF_CODE_MAX);
    memcpy(c->code + c->code_len, buf, n);
    c->code_len += n;
    va_start(ap, fmt);
    cg_vname(c, fmt, ap);
    va_end(ap);
    return true;
}

void cg_emit_bytes(DiffCase *c, const uint8_t *bytes, unsigned n, const char *fmt, ...)
{
    va_list ap;

    g_assert(c->code_len + n <= DIFF_CODE_MAX);
    memcpy(c->code + c->code_len, bytes, n);
    c->code_len += n;
    va_start(ap, fmt);
    cg_vname(c, fmt, ap);
    va_end(ap);
}

void cg_patch(DiffCase *c, uint64_t addr, const void *bytes, unsigned len)
{
    DiffPatch *p;

    g_assert(addr >= DIFF_DATA_ADDR && addr + len <= DIFF_DATA_ADDR + DIFF_DATA_SIZE);
    g_assert(len <= sizeof(p->bytes) && c->npatch < DIFF_MAX_PATCH);
    p = &c->patch[c->npatch++];
    p->off = (uint16_t)(addr - DIFF_DATA_ADDR);
    p->len = (uint8_t)len;
    memcpy(p->bytes, bytes, len);
}

int cg_pick_reg(CaseGen *g, uint32_t avoid)
{
    avoid |= 1u << X86_RSP;
    g_assert((avoid & 0xffff) != 0xffff);
    for (;;) {
        int r = (int)cg_below(g, 16);
        if (!(avoid & (1u << r))) {
            return r;
        }
    }
}

uint64_t cg_data_addr(CaseGen *g, unsigned align, unsigned room)
{
    /* The first two pages; the third holds the stack. */
    uint64_t span = 0x2000 - room;
    return DIFF_DATA_ADDR + (cg_below(g, span) & ~(uint64_t)(align - 1));
}

EncOp cg_mem(CaseGen *g, DiffCase *c, uint64_t addr, uint32_t *used)
{
    uint32_t avoid = *used | (1u << X86_RSP);
    int form = (int)cg_below(g, 10);
    EncOp op;

    /* Fewer than three free registers: stick to forms that need none. */
    if (__builtin_popcount(~avoid & 0xffff) < 3) {
        form = cg_chance(g, 50) ? 5 : 6;
    }
    switch (form) {
    case 0: case 1: case 2: {
        int b = cg_pick_reg(g, avoid);
        int32_t disp = form == 0 ? 0 : form == 1 ? (int32_t)cg_below(g, 256) - 128
                                                 : (int32_t)cg_below(g, 0x100000) - 0x80000;
        op = enc_mem(b, ENC_NONE, 1, disp);
        op.disp_size = form == 0 ? 0 : form == 1 ? 1 : 4;
        c->in.gpr[b] = addr - (int64_t)disp;
        *used |= 1u << b;
        break;
    }
    case 3: case 8: {
        int b = cg_pick_reg(g, avoid);
        int x = cg_pick_reg(g, avoid | (1u << b));
        int scale = 1 << cg_below(g, 4);
        int64_t xv = (int64_t)cg_below(g, 0x1000) - (form == 8 ? 0x1000 : 0);
        int32_t disp = cg_chance(g, 50) ? (int32_t)cg_below(g, 256) - 128
                                        : (int32_t)cg_below(g, 0x10000) - 0x8000;
        op = enc_mem(b, x, scale, disp);
        c->in.gpr[x] = (uint64_t)xv;
        c->in.gpr[b] = addr - (uint64_t)(xv * scale) - (int64_t)disp;
        *used |= (1u << b) | (1u << x);
        break;
    }
    case 4: {
        int x = cg_pick_reg(g, avoid);
        int scale = 1 << cg_below(g, 4);
        uint64_t xv = cg_below(g, 0x100);
        op = enc_mem(ENC_NONE, x, scale, (int32_t)(addr - xv * scale));
        c->in.gpr[x] = xv;
        *used |= 1u << x;
        break;
    }
    case 5:
        op = enc_rip(addr);
        break;
    case 6:
        op = enc_mem(ENC_NONE, ENC_NONE, 1, (int32_t)addr);
        break;
    case 7:
        if (!(*used & (1u << X86_RSP))) {
            op = enc_mem(X86_RSP, ENC_NONE, 1, (int32_t)(addr - c->in.gpr[X86_RSP]));
            *used |= 1u << X86_RSP;
            break;
        }
        op = enc_rip(addr);
        break;
    default: {
        /* 32-bit address size: the base's upper half must not matter. */
        int b = cg_pick_reg(g, avoid);
        int32_t disp = (int32_t)cg_below(g, 256) - 128;
        op = enc_mem(b, ENC_NONE, 1, disp);
        op.addr32 = true;
        c->in.gpr[b] = (cg_rand(g) << 32) | (uint32_t)(addr - (int64_t)disp);
        *used |= 1u << b;
        break;
    }
    }
    return op;
}

uint32_t cg_f32(CaseGen *g)
{
    static const uint32_t special[] = {
        0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x7f800000, 0xff800000,
        0x7fc00000, 0xffc00000, 0x7fa00000, 0x7f800001, 0xffc12345, 0x00000001,
        0x007fffff, 0x80400000, 0x00800000, 0x7f7fffff, 0xff7fffff, 0x3fc00000,
        0xc0300000, 0x4f000000, 0xcf000000, 0x5f000000, 0xdf000000, 0x3f000000,
        0x4effffff, 0x4b800000, 0x3eaaaaab,
    };
    if (cg_chance(g, 50)) {
        return special[cg_below(g, G_N_ELEMENTS(special))];
    }
    if (cg_chance(g, 50)) {
        /* A modest exponent, so arithmetic mostly stays in range. */
        return (uint32_t)((cg_rand(g) & 0x807fffff) | ((uint64_t)(110 + cg_below(g, 40)) << 23));
    }
    return (uint32_t)cg_rand(g);
}

uint64_t cg_f64(CaseGen *g)
{
    static const uint64_t special[] = {
        0x0000000000000000ULL, 0x8000000000000000ULL, 0x3ff0000000000000ULL,
        0xbff0000000000000ULL, 0x7ff0000000000000ULL, 0xfff0000000000000ULL,
        0x7ff8000000000000ULL, 0xfff8000000000000ULL, 0x7ff4000000000000ULL,
        0x7ff0000000000001ULL, 0xfff8000012345678ULL, 0x0000000000000001ULL,
        0x000fffffffffffffULL, 0x8008000000000000ULL, 0x0010000000000000ULL,
        0x7fefffffffffffffULL, 0xffefffffffffffffULL, 0x3ff8000000000000ULL,
        0xc006000000000000ULL, 0x41e0000000000000ULL, 0xc1e0000000000000ULL,
        0x43e0000000000000ULL, 0xc3e0000000000000ULL, 0x3fe0000000000000ULL,
        0x41dfffffffc00000ULL, 0x4330000000000000ULL, 0x3fd5555555555555ULL,
        0x41e0000000100000ULL, 0xc1e0000000200000ULL,
    };
    if (cg_chance(g, 50)) {
        return special[cg_below(g, G_N_ELEMENTS(special))];
    }
    if (cg_chance(g, 50)) {
        return (cg_rand(g) & 0x800fffffffffffffULL) | ((uint64_t)(990 + cg_below(g, 70)) << 52);
    }
    return cg_rand(g);
}

void cg_set_xmm(DiffCase *c, int r, uint64_t lo, uint64_t hi)
{
    memcpy(c->in.fx + DIFF_FX_XMM + 16 * r, &lo, 8);
    memcpy(c->in.fx + DIFF_FX_XMM + 16 * r + 8, &hi, 8);
}

void cg_set_mxcsr(DiffCase *c, uint32_t mxcsr)
{
    mxcsr &= 0xffff;
    memcpy(c->in.fx + DIFF_FX_MXCSR, &mxcsr, 4);
}
