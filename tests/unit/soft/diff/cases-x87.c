/*
 * x87 cases: loads and stores of every memory format (m32/m64/m80 floats,
 * m16/m32/m64 integers, FISTTP), the arithmetic operations in all their
 * register and memory forms, compares into the status word and into
 * RFLAGS, the one-operand operations, constants, stack management,
 * FCMOVcc, and control/status word access, each under a random rounding
 * and precision control with a stack of random depth (so stack overflow
 * and underflow happen too). Exceptions stay masked.
 */
#include <cpuid.h>
#include <string.h>

#include "case-gen.h"

#define FSW_C0      0x0100
#define FSW_C1      0x0200
#define FSW_C2      0x0400
#define FSW_C3      0x4000
#define UNDEF_ARITH (FSW_C0 | FSW_C2 | FSW_C3)
#define UNDEF_ALL   (FSW_C0 | FSW_C1 | FSW_C2 | FSW_C3)

/*
 * The SDM says FCOMI/FUCOMI(P) and FCMOVcc clear C1; AMD processors leave
 * it as it was. The software CPU follows the SDM, so on an AMD host C1 is
 * not compared for those.
 */
static uint16_t x87_c1_vendor_mask(void)
{
    unsigned a, b, c, d;

    if (__get_cpuid(0, &a, &b, &c, &d) && b == 0x756e6547) {     /* "Genu" */
        return 0;
    }
    return FSW_C1;
}

/* An 80-bit value: specials, conversion boundaries, random normals. */
static void x87_value(CaseGen *g, uint8_t *out)
{
    uint64_t m;
    uint16_t se;

    switch (cg_below(g, 14)) {
    case 0: m = 0; se = 0; break;                                  /* +0 */
    case 1: m = 0; se = 0x8000; break;                             /* -0 */
    case 2: m = 1ULL << 63; se = 0x3fff; break;                    /* 1 */
    case 3: m = 1ULL << 63; se = 0x7fff; break;                    /* +inf */
    case 4: m = 1ULL << 63; se = 0xffff; break;                    /* -inf */
    case 5: m = 3ULL << 62; se = 0x7fff; break;                    /* QNaN */
    case 6: m = (1ULL << 63) | (1ULL << 61); se = 0xffff; break;   /* SNaN */
    case 7: m = cg_rand(g) >> 1; se = 0; break;                    /* denormal */
    case 8: m = (1ULL << 63) | (cg_rand(g) >> 40); se = 0x403e; break; /* ~2^63 */
    case 9: m = (1ULL << 63) | (cg_rand(g) >> 1); se = 0x3ffe + (uint16_t)cg_below(g, 3); break;
    default:
        m = (1ULL << 63) | cg_rand(g);
        se = (uint16_t)(0x3fff - 80 + cg_below(g, 160)) | (cg_chance(g, 50) ? 0x8000 : 0);
        break;
    }
    memcpy(out, &m, 8);
    memcpy(out + 8, &se, 2);
}

/*
 * A case with random FCW rounding/precision (exceptions masked), random
 * condition codes, and @depth valid registers under a random TOP.
 */
static void x87_begin(CaseGen *g, DiffCase *c, int depth)
{
    static const uint16_t pcs[3] = { 0, 2, 3 };
    uint16_t fcw = 0x7f;             /* all exceptions masked */
    unsigned top = (unsigned)cg_below(g, 8);
    uint16_t fsw;
    uint8_t ftw = 0;

    cg_begin(g, c);
    c->flags |= DIFF_F_X87;
    fcw |= pcs[cg_below(g, 3)] << 8;
    fcw |= (uint16_t)cg_below(g, 4) << 10;
    if (cg_chance(g, 50)) {
        fcw = 0x37f;                    /* the default: extended, nearest */
    }
    fsw = (uint16_t)(top << 11) | (uint16_t)(cg_rand(g) & UNDEF_ALL);
    for (int i = 0; i < 8; i++) {
        if (i < depth) {
            ftw |= 1u << ((top + i) & 7);
            x87_value(g, c->in.fx + DIFF_FX_ST + 16 * i);
        }
    }
    memcpy(c->in.fx + DIFF_FX_FCW, &fcw, 2);
    memcpy(c->in.fx + DIFF_FX_FSW, &fsw, 2);
    c->in.fx[DIFF_FX_FTW] = ftw;
    c->fsw_undef = UNDEF_ARITH;
}

static int x87_depth(CaseGen *g, int need)
{
    /* Mostly enough operands, sometimes an empty or full stack. */
    if (cg_chance(g, 8)) {
        return cg_chance(g, 50) ? 0 : 8;
    }
    return need + (int)cg_below(g, 8 - need + 1);
}

/* A register-form instruction: two opcode bytes, the second + @i. */
static void x87_reg(CaseGen *g, const char *name, uint8_t b0, uint8_t b1, int need,
                    uint16_t undef, bool uses_sti)
{
    DiffCase c;
    int i = uses_sti ? (int)cg_below(g, 8) : 0;
    uint8_t b[2] = { b0, (uint8_t)(b1 + i) };

    x87_begin(g, &c, x87_depth(g, uses_sti ? MAX(need, i + 1) : need));
    c.in.rflags = cg_rand(g) & DIFF_FLAGS_ARITH;
    c.fsw_undef = undef;
    if (b0 == 0xd9 && (b1 == 0xf8 || b1 == 0xf5)) {
        c.flags |= DIFF_F_X87_CC_IE;    /* FPREM, FPREM1 */
    }
    if (uses_sti) {
        cg_emit_bytes(&c, b, 2, "%s st(%d)", name, i);
    } else {
        cg_emit_bytes(&c, b, 2, "%s", name);
    }
    cg_commit(g, &c);
}

/* Memory formats the memory forms read or write. */
enum { M_F32, M_F64, M_F80, M_I16, M_I32, M_I64, M_W16 };

static const unsigned x87_msize[] = { 4, 8, 10, 2, 4, 8, 2 };

static void x87_mem_value(CaseGen *g, int fmt, uint8_t *out)
{
    uint64_t v;

    switch (fmt) {
    case M_F32: v = cg_f32(g); memcpy(out, &v, 4); break;
    case M_F64: v = cg_f64(g); memcpy(out, &v, 8); break;
    case M_F80: x87_value(g, out); break;
    case M_W16:
        /* A control word: any rounding and precision, exceptions masked. */
        v = 0x7f | ((uint64_t)cg_below(g, 4) << 8) | ((uint64_t)cg_below(g, 8) << 10);
        memcpy(out, &v, 2);
        break;
    default: v = cg_value(g, (int)x87_msize[fmt]); memcpy(out, &v, x87_msize[fmt]); break;
    }
}

static void x87_mem(CaseGen *g, const char *name, uint8_t op, int digit, int fmt, int need,
                    uint16_t undef)
{
    DiffCase c;
    EncInsn in = enc_insn(4, 1, op, 0, 0);
    uint64_t addr = cg_data_addr(g, cg_chance(g, 80) ? 8 : 1, 16);
    uint8_t v[16] = { 0 };
    uint32_t used = 0;
    char t0[64];

    x87_begin(g, &c, x87_depth(g, need));
    c.fsw_undef = undef;
    x87_mem_value(g, fmt, v);
    cg_patch(&c, addr, v, x87_msize[fmt]);
    in.reg = digit;
    in.reg_is_digit = true;
    in.rm = cg_mem(g, &c, addr, &used);
    enc_op_text(t0, sizeof(t0), &in.rm, (int)x87_msize[fmt]);
    cg_emit(&c, &in, "%s %s", name, t0);
    cg_commit(g, &c);
}

void cases_x87(CaseGen *g)
{
    static const char *const arith[8] = {
        "fadd", "fmul", "fcom", "fcomp", "fsub", "fsubr", "fdiv", "fdivr" };
    static const struct {
        const char *name;
        uint8_t b1;
        int need;
        uint16_t undef;
    } one[] = {
        { "fchs", 0xe0, 1, UNDEF_ARITH }, { "fabs", 0xe1, 1, UNDEF_ARITH },
        { "ftst", 0xe4, 1, 0 }, { "fxam", 0xe5, 0, 0 },
        { "fld1", 0xe8, 0, UNDEF_ARITH }, { "fldl2t", 0xe9, 0, UNDEF_ARITH },
        { "fldl2e", 0xea, 0, UNDEF_ARITH }, { "fldpi", 0xeb, 0, UNDEF_ARITH },
        { "fldlg2", 0xec, 0, UNDEF_ARITH }, { "fldln2", 0xed, 0, UNDEF_ARITH },
        { "fldz", 0xee, 0, UNDEF_ARITH },
        { "fxtract", 0xf4, 1, UNDEF_ARITH }, { "fprem1", 0xf5, 2, 0 },
        { "fdecstp", 0xf6, 0, UNDEF_ARITH }, { "fincstp", 0xf7, 0, UNDEF_ARITH },
        { "fprem", 0xf8, 2, 0 }, { "fsqrt", 0xfa, 1, UNDEF_ARITH },
        { "frndint", 0xfc, 1, UNDEF_ARITH }, { "fscale", 0xfd, 2, UNDEF_ARITH },
    };
    uint16_t c1 = x87_c1_vendor_mask();

    for (int n = 0; n < 8; n++) {
        /* Register forms of the arithmetic. */
        for (int d = 0; d < 8; d++) {
            /* In the DC/DE rows the SUB/SUBR and DIV/DIVR encodings swap. */
            int rd = d >= 4 ? d ^ 1 : d;
            g_autofree char *st0 = g_strconcat(arith[d], " st0,", NULL);
            g_autofree char *sti = g_strconcat(arith[rd], " to", NULL);
            g_autofree char *p = g_strconcat(arith[rd], "p to", NULL);
            g_autofree char *iname = g_strconcat("fi", arith[d] + 1, NULL);
            bool cmp = d == 2 || d == 3;
            x87_reg(g, cmp ? arith[d] : st0, 0xd8, 0xc0 + 8 * d, 1, cmp ? 0 : UNDEF_ARITH,
                    true);
            if (!cmp) {
                x87_reg(g, sti, 0xdc, 0xc0 + 8 * d, 1, UNDEF_ARITH, true);
                x87_reg(g, p, 0xde, 0xc0 + 8 * d, 1, UNDEF_ARITH, true);
            }
            x87_mem(g, arith[d], 0xd8, d, M_F32, 1, cmp ? 0 : UNDEF_ARITH);
            x87_mem(g, arith[d], 0xdc, d, M_F64, 1, cmp ? 0 : UNDEF_ARITH);
            x87_mem(g, iname, 0xda, d, M_I32, 1, cmp ? 0 : UNDEF_ARITH);
            x87_mem(g, iname, 0xde, d, M_I16, 1, cmp ? 0 : UNDEF_ARITH);
        }
        x87_reg(g, "fcompp", 0xde, 0xd9, 2, 0, false);
        x87_reg(g, "fucom", 0xdd, 0xe0, 1, 0, true);
        x87_reg(g, "fucomp", 0xdd, 0xe8, 1, 0, true);
        x87_reg(g, "fucompp", 0xda, 0xe9, 2, 0, false);
        x87_reg(g, "fcomi st0,", 0xdb, 0xf0, 1, c1, true);
        x87_reg(g, "fucomi st0,", 0xdb, 0xe8, 1, c1, true);
        x87_reg(g, "fcomip st0,", 0xdf, 0xf0, 1, c1, true);
        x87_reg(g, "fucomip st0,", 0xdf, 0xe8, 1, c1, true);
        for (unsigned i = 0; i < G_N_ELEMENTS(one); i++) {
            x87_reg(g, one[i].name, 0xd9, one[i].b1, one[i].need, one[i].undef, false);
        }
        x87_reg(g, "fld", 0xd9, 0xc0, 1, UNDEF_ARITH, true);
        x87_reg(g, "fxch", 0xd9, 0xc8, 1, UNDEF_ARITH, true);
        x87_reg(g, "fst", 0xdd, 0xd0, 1, UNDEF_ARITH, true);
        x87_reg(g, "fstp", 0xdd, 0xd8, 1, UNDEF_ARITH, true);
        x87_reg(g, "ffree", 0xdd, 0xc0, 0, UNDEF_ALL, true);
        x87_reg(g, "fnstsw ax", 0xdf, 0xe0, 0, UNDEF_ALL, false);
        x87_reg(g, "fnclex", 0xdb, 0xe2, 0, UNDEF_ALL, false);
        x87_reg(g, "fninit", 0xdb, 0xe3, 0, 0, false);
        x87_reg(g, "fcmovb st0,", 0xda, 0xc0, 1, UNDEF_ARITH | c1, true);
        x87_reg(g, "fcmove st0,", 0xda, 0xc8, 1, UNDEF_ARITH | c1, true);
        x87_reg(g, "fcmovbe st0,", 0xda, 0xd0, 1, UNDEF_ARITH | c1, true);
        x87_reg(g, "fcmovu st0,", 0xda, 0xd8, 1, UNDEF_ARITH | c1, true);
        x87_reg(g, "fcmovnb st0,", 0xdb, 0xc0, 1, UNDEF_ARITH | c1, true);
        x87_reg(g, "fcmovne st0,", 0xdb, 0xc8, 1, UNDEF_ARITH | c1, true);
        x87_reg(g, "fcmovnbe st0,", 0xdb, 0xd0, 1, UNDEF_ARITH | c1, true);
        x87_reg(g, "fcmovnu st0,", 0xdb, 0xd8, 1, UNDEF_ARITH | c1, true);

        /* Loads and stores of every format. */
        x87_mem(g, "fld", 0xd9, 0, M_F32, 0, UNDEF_ARITH);
        x87_mem(g, "fld", 0xdd, 0, M_F64, 0, UNDEF_ARITH);
        x87_mem(g, "fld", 0xdb, 5, M_F80, 0, UNDEF_ARITH);
        x87_mem(g, "fild", 0xdf, 0, M_I16, 0, UNDEF_ARITH);
        x87_mem(g, "fild", 0xdb, 0, M_I32, 0, UNDEF_ARITH);
        x87_mem(g, "fild", 0xdf, 5, M_I64, 0, UNDEF_ARITH);
        x87_mem(g, "fst", 0xd9, 2, M_F32, 1, UNDEF_ARITH);
        x87_mem(g, "fst", 0xdd, 2, M_F64, 1, UNDEF_ARITH);
        x87_mem(g, "fstp", 0xd9, 3, M_F32, 1, UNDEF_ARITH);
        x87_mem(g, "fstp", 0xdd, 3, M_F64, 1, UNDEF_ARITH);
        x87_mem(g, "fstp", 0xdb, 7, M_F80, 1, UNDEF_ARITH);
        x87_mem(g, "fist", 0xdf, 2, M_I16, 1, UNDEF_ARITH);
        x87_mem(g, "fist", 0xdb, 2, M_I32, 1, UNDEF_ARITH);
        x87_mem(g, "fistp", 0xdf, 3, M_I16, 1, UNDEF_ARITH);
        x87_mem(g, "fistp", 0xdb, 3, M_I32, 1, UNDEF_ARITH);
        x87_mem(g, "fistp", 0xdf, 7, M_I64, 1, UNDEF_ARITH);
        x87_mem(g, "fisttp", 0xdf, 1, M_I16, 1, UNDEF_ARITH);
        x87_mem(g, "fisttp", 0xdb, 1, M_I32, 1, UNDEF_ARITH);
        x87_mem(g, "fisttp", 0xdd, 1, M_I64, 1, UNDEF_ARITH);
        x87_mem(g, "fldcw", 0xd9, 5, M_W16, 0, UNDEF_ALL);
        x87_mem(g, "fnstcw", 0xd9, 7, M_W16, 0, UNDEF_ALL);
        x87_mem(g, "fnstsw", 0xdd, 7, M_W16, 0, UNDEF_ALL);
    }
}
