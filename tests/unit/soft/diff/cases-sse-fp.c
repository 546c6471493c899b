/*
 * SSE/SSE2 floating point: arithmetic, MIN/MAX, SQRT, compares (CMPxx with
 * every predicate, COMIS/UCOMIS into RFLAGS) in packed and scalar single
 * and double forms, and the conversions between floats, doubles and
 * integers (including out-of-range values, which give the integer
 * indefinite). Operands are special values (NaNs, infinities, denormals,
 * signed zeros, conversion boundaries) or random, under random rounding
 * modes with DAZ and FTZ on or off and all exceptions masked.
 */
#include "case-gen.h"

typedef enum SseKind { K_F32, K_F64, K_I32, K_I64 } SseKind;

/* Fill XMM @r with lanes of @k. */
static void sse_fill(CaseGen *g, DiffCase *c, int r, SseKind k)
{
    uint64_t v[2];

    for (int i = 0; i < 2; i++) {
        if (k == K_F32) {
            v[i] = cg_f32(g) | ((uint64_t)cg_f32(g) << 32);
        } else if (k == K_F64) {
            v[i] = cg_f64(g);
        } else {
            v[i] = cg_value(g, 4) | (cg_value(g, 4) << 32);
        }
    }
    cg_set_xmm(c, r, v[0], v[1]);
}

/* Random rounding, DAZ, FTZ and sticky flags; exceptions masked. */
static void sse_mxcsr(CaseGen *g, DiffCase *c)
{
    uint32_t m = 0x1f80;

    m |= (uint32_t)cg_below(g, 4) << 13;
    if (cg_chance(g, 25)) {
        m |= 1u << 6;                   /* DAZ */
    }
    if (cg_chance(g, 25)) {
        m |= 1u << 15;                  /* FTZ */
    }
    if (cg_chance(g, 30)) {
        m |= (uint32_t)cg_below(g, 64);
    }
    cg_set_mxcsr(c, m);
}

static void sse_fp_begin(CaseGen *g, DiffCase *c, SseKind k)
{
    cg_begin(g, c);
    sse_mxcsr(g, c);
    for (int r = 0; r < 16; r++) {
        sse_fill(g, c, r, k);
    }
}

static uint64_t sse_scalar(CaseGen *g, SseKind k)
{
    switch (k) {
    case K_F32: return cg_f32(g);
    case K_F64: return cg_f64(g);
    case K_I32: return cg_value(g, 4);
    default: return cg_value(g, 8);
    }
}

/*
 * "op xmm, xmm/mem" with lanes of kind @k; the memory form reads @msize
 * bytes (16 aligned for packed forms).
 */
static void sse_fp_xx(CaseGen *g, const char *name, uint8_t pfx, uint8_t op, int imm,
                      SseKind k, unsigned msize)
{
    DiffCase c;
    EncInsn in = enc_insn(4, 2, 0x0f, op, 0);
    int dst = (int)cg_below(g, 16), src = (int)cg_below(g, 16);
    char t0[64];

    sse_fp_begin(g, &c, k);
    in.mandatory = pfx;
    in.reg = dst;
    if (cg_chance(g, 25)) {
        uint64_t addr = cg_data_addr(g, msize == 16 ? 16 : 1, 16);
        uint64_t v[2] = { sse_scalar(g, k), sse_scalar(g, k) };
        uint32_t used = 0;
        if (k == K_F32) {
            v[0] |= (uint64_t)cg_f32(g) << 32;
            v[1] |= (uint64_t)cg_f32(g) << 32;
        }
        cg_patch(&c, addr, v, 16);
        in.rm = cg_mem(g, &c, addr, &used);
    } else {
        in.rm = enc_xmm(src);
    }
    if (imm >= 0) {
        in.imm_size = 1;
        in.imm = imm;
    }
    enc_op_text(t0, sizeof(t0), &in.rm, msize);
    if (imm >= 0) {
        cg_emit(&c, &in, "%s xmm%d, %s, %d", name, dst, t0, imm);
    } else {
        cg_emit(&c, &in, "%s xmm%d, %s", name, dst, t0);
    }
    cg_commit(g, &c);
}

void cases_sse_fp(CaseGen *g)
{
    static const struct {
        const char *name;
        uint8_t op;
    } arith[] = {
        { "add", 0x58 }, { "mul", 0x59 }, { "sub", 0x5c }, { "min", 0x5d },
        { "div", 0x5e }, { "max", 0x5f }, { "sqrt", 0x51 },
    };
    static const struct {
        const char *suffix;
        uint8_t pfx;
        SseKind k;
        unsigned msize;
    } forms[] = {
        { "ps", 0, K_F32, 16 }, { "pd", 0x66, K_F64, 16 },
        { "ss", 0xf3, K_F32, 4 }, { "sd", 0xf2, K_F64, 8 },
    };

    for (unsigned i = 0; i < G_N_ELEMENTS(arith); i++) {
        for (unsigned f = 0; f < G_N_ELEMENTS(forms); f++) {
            g_autofree char *name = g_strconcat(arith[i].name, forms[f].suffix, NULL);
            for (int n = 0; n < 16; n++) {
                sse_fp_xx(g, name, forms[f].pfx, arith[i].op, -1, forms[f].k,
                          forms[f].msize);
            }
        }
    }
    for (unsigned f = 0; f < G_N_ELEMENTS(forms); f++) {
        g_autofree char *name = g_strconcat("cmp", forms[f].suffix, NULL);
        for (int pred = 0; pred < 8; pred++) {
            for (int n = 0; n < 4; n++) {
                sse_fp_xx(g, name, forms[f].pfx, 0xc2, pred, forms[f].k, forms[f].msize);
            }
        }
    }
    for (int n = 0; n < 16; n++) {
        sse_fp_xx(g, "comiss", 0, 0x2f, -1, K_F32, 4);
        sse_fp_xx(g, "ucomiss", 0, 0x2e, -1, K_F32, 4);
        sse_fp_xx(g, "comisd", 0x66, 0x2f, -1, K_F64, 8);
        sse_fp_xx(g, "ucomisd", 0x66, 0x2e, -1, K_F64, 8);
    }
    /* LDMXCSR/STMXCSR through memory. */
    for (int n = 0; n < 8; n++) {
        DiffCase c;
        EncInsn in = enc_insn(4, 2, 0x0f, 0xae, 0);
        uint64_t addr = cg_data_addr(g, 4, 4);
        uint32_t used = 0, m = (cg_rand(g) & 0xffff) & ~0x40u;
        bool load = n & 1;

        sse_fp_begin(g, &c, K_F32);
        cg_patch(&c, addr, &m, 4);
        in.reg = load ? 2 : 3;
        in.reg_is_digit = true;
        in.rm = cg_mem(g, &c, addr, &used);
        cg_emit(&c, &in, load ? "ldmxcsr [mem] (%#x)" : "stmxcsr [mem]", m);
        cg_commit(g, &c);
    }
}

/* Conversions with a GPR (or memory integer) on one side. */
static void cvt_gpr(CaseGen *g, const char *name, uint8_t pfx, uint8_t op, int isize,
                    bool to_gpr, SseKind fk)
{
    DiffCase c;
    EncInsn in = enc_insn(isize, 2, 0x0f, op, 0);
    int x = (int)cg_below(g, 16), r = cg_pick_reg(g, 0);
    char t0[64];

    sse_fp_begin(g, &c, fk);
    in.mandatory = pfx;
    if (to_gpr) {
        /* GPR <- xmm/m32/m64 float */
        in.reg = r;
        if (cg_chance(g, 25)) {
            uint64_t addr = cg_data_addr(g, 8, 8), v = sse_scalar(g, fk);
            uint32_t used = 1u << r;
            cg_patch(&c, addr, &v, 8);
            in.rm = cg_mem(g, &c, addr, &used);
        } else {
            in.rm = enc_xmm(x);
        }
        enc_op_text(t0, sizeof(t0), &in.rm, fk == K_F32 ? 4 : 8);
        cg_emit(&c, &in, "%s %s, %s", name, enc_reg_name(r, isize), t0);
    } else {
        /* xmm <- r/m32/64 integer */
        in.reg = x;
        if (cg_chance(g, 25)) {
            uint64_t addr = cg_data_addr(g, 8, 8), v = cg_value(g, isize);
            uint32_t used = 0;
            cg_patch(&c, addr, &v, isize);
            in.rm = cg_mem(g, &c, addr, &used);
        } else {
            in.rm = enc_reg(r);
            c.in.gpr[r] = cg_reg_value(g, isize);
        }
        enc_op_text(t0, sizeof(t0), &in.rm, isize);
        cg_emit(&c, &in, "%s xmm%d, %s", name, x, t0);
    }
    cg_commit(g, &c);
}

void cases_sse_cvt(CaseGen *g)
{
    static const struct {
        const char *name;
        uint8_t pfx, op;
        SseKind k;
        unsigned msize;
    } xx[] = {
        { "cvtss2sd", 0xf3, 0x5a, K_F32, 4 }, { "cvtsd2ss", 0xf2, 0x5a, K_F64, 8 },
        { "cvtps2pd", 0, 0x5a, K_F32, 8 }, { "cvtpd2ps", 0x66, 0x5a, K_F64, 16 },
        { "cvtdq2ps", 0, 0x5b, K_I32, 16 }, { "cvtps2dq", 0x66, 0x5b, K_F32, 16 },
        { "cvttps2dq", 0xf3, 0x5b, K_F32, 16 }, { "cvtdq2pd", 0xf3, 0xe6, K_I32, 8 },
        { "cvtpd2dq", 0xf2, 0xe6, K_F64, 16 }, { "cvttpd2dq", 0x66, 0xe6, K_F64, 16 },
    };

    for (unsigned i = 0; i < G_N_ELEMENTS(xx); i++) {
        for (int n = 0; n < 16; n++) {
            sse_fp_xx(g, xx[i].name, xx[i].pfx, xx[i].op, -1, xx[i].k, xx[i].msize);
        }
    }
    for (int n = 0; n < 12; n++) {
        for (int isize = 4; isize <= 8; isize += 4) {
            cvt_gpr(g, "cvtsi2ss", 0xf3, 0x2a, isize, false, K_F32);
            cvt_gpr(g, "cvtsi2sd", 0xf2, 0x2a, isize, false, K_F64);
            cvt_gpr(g, "cvtss2si", 0xf3, 0x2d, isize, true, K_F32);
            cvt_gpr(g, "cvttss2si", 0xf3, 0x2c, isize, true, K_F32);
            cvt_gpr(g, "cvtsd2si", 0xf2, 0x2d, isize, true, K_F64);
            cvt_gpr(g, "cvttsd2si", 0xf2, 0x2c, isize, true, K_F64);
        }
    }
}
