/*
 * SSE/SSE2 data movement and packed-integer cases: MOVAPS/MOVUPS/MOVDQA/
 * MOVDQU/MOVQ/MOVD/MOVSS/MOVSD/MOVHPS/MOVLPS/MOVNT*, and the 66 0F integer
 * operations (add/sub with and without saturation, multiplies, compares,
 * logic, shifts by register and immediate, byte shifts, unpacks, packs,
 * shuffles, min/max, averages, PSADBW, PMOVMSKB, PEXTRW/PINSRW).
 */
#include <string.h>

#include "case-gen.h"

/* A 128-bit value with lanes picked from edges and random bits. */
static void sse_int_value(CaseGen *g, uint64_t *lo, uint64_t *hi)
{
    uint64_t v[2];

    for (int i = 0; i < 2; i++) {
        switch (cg_below(g, 6)) {
        case 0:
            v[i] = 0;
            break;
        case 1:
            v[i] = ~0ULL;
            break;
        case 2:
            v[i] = 0x8000800080008000ULL ^ (cg_rand(g) & 0x00ff00ff00ff00ffULL);
            break;
        case 3:
            v[i] = 0x7f7f7fff7fffffffULL ^ (cg_rand(g) & 0x0101010101010101ULL);
            break;
        default:
            v[i] = cg_rand(g);
            break;
        }
    }
    *lo = v[0];
    *hi = v[1];
}

/* A case with all sixteen XMM registers holding test values. */
static void sse_begin(CaseGen *g, DiffCase *c)
{
    cg_begin(g, c);
    for (int r = 0; r < 16; r++) {
        uint64_t lo, hi;
        sse_int_value(g, &lo, &hi);
        cg_set_xmm(c, r, lo, hi);
    }
}

/*
 * "op xmm, xmm/m128" with mandatory prefix @pfx and opcode 0F @op; @imm
 * >= 0 adds an imm8. @mem_pct of cases take the source from memory,
 * aligned to @align.
 */
static void sse_xx(CaseGen *g, const char *name, uint8_t pfx, uint8_t op, int imm,
                   int mem_pct, unsigned align, unsigned mem_size)
{
    DiffCase c;
    EncInsn in = enc_insn(4, 2, 0x0f, op, 0);
    int dst = (int)cg_below(g, 16), src = (int)cg_below(g, 16);
    char t0[64];

    sse_begin(g, &c);
    in.mandatory = pfx;
    in.reg = dst;
    if (cg_chance(g, mem_pct)) {
        uint64_t addr = cg_data_addr(g, align, 16);
        uint64_t v[2];
        uint32_t used = 0;
        sse_int_value(g, &v[0], &v[1]);
        cg_patch(&c, addr, v, 16);
        in.rm = cg_mem(g, &c, addr, &used);
    } else {
        in.rm = enc_xmm(src);
    }
    if (imm >= 0) {
        in.imm_size = 1;
        in.imm = imm;
    }
    enc_op_text(t0, sizeof(t0), &in.rm, mem_size);
    if (imm >= 0) {
        cg_emit(&c, &in, "%s xmm%d, %s, %#x", name, dst, t0, imm);
    } else {
        cg_emit(&c, &in, "%s xmm%d, %s", name, dst, t0);
    }
    cg_commit(g, &c);
}

/* Shift by immediate: 66 0F 71/72/73 /digit ib. */
static void sse_shift_imm(CaseGen *g, const char *name, uint8_t op, int digit)
{
    DiffCase c;
    EncInsn in = enc_insn(4, 2, 0x0f, op, 0);
    int r = (int)cg_below(g, 16);
    unsigned count = cg_chance(g, 70) ? (unsigned)cg_below(g, 20) : (unsigned)cg_below(g, 256);

    sse_begin(g, &c);
    in.mandatory = 0x66;
    in.reg = digit;
    in.reg_is_digit = true;
    in.rm = enc_xmm(r);
    in.imm_size = 1;
    in.imm = count;
    cg_emit(&c, &in, "%s xmm%d, %u", name, r, count);
    cg_commit(g, &c);
}

/* Shift by XMM count: low quadword counts, so make it small sometimes. */
static void sse_shift_reg(CaseGen *g, const char *name, uint8_t op)
{
    DiffCase c;
    EncInsn in = enc_insn(4, 2, 0x0f, op, 0);
    int dst = (int)cg_below(g, 16), src = (int)cg_below(g, 16);

    sse_begin(g, &c);
    if (src != dst) {
        uint64_t count = cg_chance(g, 70) ? cg_below(g, 70) : cg_rand(g);
        cg_set_xmm(&c, src, count, cg_chance(g, 80) ? 0 : cg_rand(g));
    }
    in.mandatory = 0x66;
    in.reg = dst;
    in.rm = enc_xmm(src);
    cg_emit(&c, &in, "%s xmm%d, xmm%d", name, dst, src);
    cg_commit(g, &c);
}

/* GPR <- XMM (PMOVMSKB, MOVMSKPS/PD, PEXTRW, MOVD/MOVQ r/m, xmm). */
static void sse_to_gpr(CaseGen *g, const char *name, uint8_t pfx, uint8_t op, int opsize,
                       int imm, bool gpr_in_reg)
{
    DiffCase c;
    EncInsn in = enc_insn(opsize, 2, 0x0f, op, 0);
    int x = (int)cg_below(g, 16), r = cg_pick_reg(g, 0);

    sse_begin(g, &c);
    in.mandatory = pfx;
    if (gpr_in_reg) {
        in.reg = r;
        in.rm = enc_xmm(x);
    } else {
        in.reg = x;
        in.rm = enc_reg(r);
    }
    if (imm >= 0) {
        in.imm_size = 1;
        in.imm = imm;
    }
    cg_emit(&c, &in, "%s %s, xmm%d%s", name, enc_reg_name(r, opsize == 8 ? 8 : 4), x,
            imm >= 0 ? " ,imm" : "");
    cg_commit(g, &c);
}

void cases_sse_int(CaseGen *g)
{
    static const struct {
        const char *name;
        uint8_t op;
    } ops[] = {
        { "paddb", 0xfc }, { "paddw", 0xfd }, { "paddd", 0xfe }, { "paddq", 0xd4 },
        { "psubb", 0xf8 }, { "psubw", 0xf9 }, { "psubd", 0xfa }, { "psubq", 0xfb },
        { "paddsb", 0xec }, { "paddsw", 0xed }, { "paddusb", 0xdc }, { "paddusw", 0xdd },
        { "psubsb", 0xe8 }, { "psubsw", 0xe9 }, { "psubusb", 0xd8 }, { "psubusw", 0xd9 },
        { "pmullw", 0xd5 }, { "pmulhw", 0xe5 }, { "pmulhuw", 0xe4 }, { "pmuludq", 0xf4 },
        { "pmaddwd", 0xf5 },
        { "pcmpeqb", 0x74 }, { "pcmpeqw", 0x75 }, { "pcmpeqd", 0x76 },
        { "pcmpgtb", 0x64 }, { "pcmpgtw", 0x65 }, { "pcmpgtd", 0x66 },
        { "pand", 0xdb }, { "pandn", 0xdf }, { "por", 0xeb }, { "pxor", 0xef },
        { "punpcklbw", 0x60 }, { "punpcklwd", 0x61 }, { "punpckldq", 0x62 },
        { "punpckhbw", 0x68 }, { "punpckhwd", 0x69 }, { "punpckhdq", 0x6a },
        { "punpcklqdq", 0x6c }, { "punpckhqdq", 0x6d },
        { "packsswb", 0x63 }, { "packuswb", 0x67 }, { "packssdw", 0x6b },
        { "pminub", 0xda }, { "pmaxub", 0xde }, { "pminsw", 0xea }, { "pmaxsw", 0xee },
        { "pavgb", 0xe0 }, { "pavgw", 0xe3 }, { "psadbw", 0xf6 },
    };
    static const struct {
        const char *name;
        uint8_t op;
    } shifts[] = {
        { "psrlw", 0xd1 }, { "psrld", 0xd2 }, { "psrlq", 0xd3 }, { "psraw", 0xe1 },
        { "psrad", 0xe2 }, { "psllw", 0xf1 }, { "pslld", 0xf2 }, { "psllq", 0xf3 },
    };
    static const struct {
        const char *name;
        uint8_t op;
        int digit;
    } shift_imm[] = {
        { "psrlw", 0x71, 2 }, { "psraw", 0x71, 4 }, { "psllw", 0x71, 6 },
        { "psrld", 0x72, 2 }, { "psrad", 0x72, 4 }, { "pslld", 0x72, 6 },
        { "psrlq", 0x73, 2 }, { "psrldq", 0x73, 3 }, { "psllq", 0x73, 6 },
        { "pslldq", 0x73, 7 },
    };

    for (unsigned i = 0; i < G_N_ELEMENTS(ops); i++) {
        for (int n = 0; n < 10; n++) {
            sse_xx(g, ops[i].name, 0x66, ops[i].op, -1, 30, 16, 16);
        }
    }
    for (unsigned i = 0; i < G_N_ELEMENTS(shifts); i++) {
        for (int n = 0; n < 10; n++) {
            sse_shift_reg(g, shifts[i].name, shifts[i].op);
        }
    }
    for (unsigned i = 0; i < G_N_ELEMENTS(shift_imm); i++) {
        for (int n = 0; n < 10; n++) {
            sse_shift_imm(g, shift_imm[i].name, shift_imm[i].op, shift_imm[i].digit);
        }
    }
    for (int n = 0; n < 10; n++) {
        sse_xx(g, "pshufd", 0x66, 0x70, (int)cg_below(g, 256), 30, 16, 16);
        sse_xx(g, "pshufhw", 0xf3, 0x70, (int)cg_below(g, 256), 30, 16, 16);
        sse_xx(g, "pshuflw", 0xf2, 0x70, (int)cg_below(g, 256), 30, 16, 16);
        sse_to_gpr(g, "pmovmskb", 0x66, 0xd7, 4, -1, true);
        sse_to_gpr(g, "movmskps", 0, 0x50, 4, -1, true);
        sse_to_gpr(g, "movmskpd", 0x66, 0x50, 4, -1, true);
        sse_to_gpr(g, "pextrw", 0x66, 0xc5, 4, (int)cg_below(g, 256), true);
        sse_xx(g, "pinsrw", 0x66, 0xc4, (int)cg_below(g, 256), 30, 2, 2);
    }
}

void cases_sse_mov(CaseGen *g)
{
    static const struct {
        const char *name;
        uint8_t pfx, op;
        unsigned align, size;
        bool store;
    } movs[] = {
        { "movaps", 0, 0x28, 16, 16, false }, { "movaps", 0, 0x29, 16, 16, true },
        { "movups", 0, 0x10, 1, 16, false }, { "movups", 0, 0x11, 1, 16, true },
        { "movapd", 0x66, 0x28, 16, 16, false }, { "movupd", 0x66, 0x11, 1, 16, true },
        { "movdqa", 0x66, 0x6f, 16, 16, false }, { "movdqa", 0x66, 0x7f, 16, 16, true },
        { "movdqu", 0xf3, 0x6f, 1, 16, false }, { "movdqu", 0xf3, 0x7f, 1, 16, true },
        { "movss", 0xf3, 0x10, 1, 4, false }, { "movss", 0xf3, 0x11, 1, 4, true },
        { "movsd", 0xf2, 0x10, 1, 8, false }, { "movsd", 0xf2, 0x11, 1, 8, true },
        { "movq", 0xf3, 0x7e, 1, 8, false }, { "movq", 0x66, 0xd6, 1, 8, true },
        { "movlps", 0, 0x12, 1, 8, false }, { "movlps", 0, 0x13, 1, 8, true },
        { "movhps", 0, 0x16, 1, 8, false }, { "movhps", 0, 0x17, 1, 8, true },
        { "movlpd", 0x66, 0x12, 1, 8, false }, { "movhpd", 0x66, 0x17, 1, 8, true },
        { "movntdq", 0x66, 0xe7, 16, 16, true }, { "movntps", 0, 0x2b, 16, 16, true },
        { "unpcklps", 0, 0x14, 16, 16, false }, { "unpckhps", 0, 0x15, 16, 16, false },
        { "unpcklpd", 0x66, 0x14, 16, 16, false }, { "unpckhpd", 0x66, 0x15, 16, 16, false },
        { "andps", 0, 0x54, 16, 16, false }, { "andnps", 0, 0x55, 16, 16, false },
        { "orps", 0, 0x56, 16, 16, false }, { "xorps", 0, 0x57, 16, 16, false },
        { "andpd", 0x66, 0x54, 16, 16, false }, { "andnpd", 0x66, 0x55, 16, 16, false },
        { "orpd", 0x66, 0x56, 16, 16, false }, { "xorpd", 0x66, 0x57, 16, 16, false },
    };

    for (unsigned i = 0; i < G_N_ELEMENTS(movs); i++) {
        for (int n = 0; n < 8; n++) {
            DiffCase c;
            EncInsn in = enc_insn(4, 2, 0x0f, movs[i].op, 0);
            int x = (int)cg_below(g, 16);
            bool mem = movs[i].store || movs[i].op == 0x12 || movs[i].op == 0x16 ||
                       movs[i].op == 0xe7 || movs[i].op == 0x2b || cg_chance(g, 50);
            char t0[64];

            /* Register forms of 12/16 are MOVHLPS/MOVLHPS: a case of their own. */
            sse_begin(g, &c);
            in.mandatory = movs[i].pfx;
            in.reg = x;
            if (mem) {
                uint64_t addr = cg_data_addr(g, movs[i].align, 16);
                uint64_t v[2];
                uint32_t used = 0;
                if (movs[i].align == 1) {
                    addr += cg_below(g, 16);
                }
                sse_int_value(g, &v[0], &v[1]);
                cg_patch(&c, addr, v, 16);
                in.rm = cg_mem(g, &c, addr, &used);
            } else {
                in.rm = enc_xmm((int)cg_below(g, 16));
            }
            enc_op_text(t0, sizeof(t0), &in.rm, movs[i].size);
            if (movs[i].store) {
                cg_emit(&c, &in, "%s %s, xmm%d", movs[i].name, t0, x);
            } else {
                cg_emit(&c, &in, "%s xmm%d, %s", movs[i].name, x, t0);
            }
            cg_commit(g, &c);
        }
    }
    for (int n = 0; n < 8; n++) {
        sse_xx(g, "movhlps", 0, 0x12, -1, 0, 16, 16);
        sse_xx(g, "movlhps", 0, 0x16, -1, 0, 16, 16);
        sse_xx(g, "shufps", 0, 0xc6, (int)cg_below(g, 256), 30, 16, 16);
        sse_xx(g, "shufpd", 0x66, 0xc6, (int)cg_below(g, 4) | (cg_chance(g, 20) ? 0xfc : 0),
               30, 16, 16);
        /* MOVD/MOVQ between GPRs (or memory) and XMM. */
        sse_to_gpr(g, "movd", 0x66, 0x7e, 4, -1, false);
        sse_to_gpr(g, "movq", 0x66, 0x7e, 8, -1, false);
        sse_xx(g, "movd", 0x66, 0x6e, -1, 50, 4, 4);
        {
            DiffCase c;
            EncInsn in = enc_insn(8, 2, 0x0f, 0x6e, 0);
            int x = (int)cg_below(g, 16), r = cg_pick_reg(g, 0);
            sse_begin(g, &c);
            in.mandatory = 0x66;
            in.reg = x;
            in.rm = enc_reg(r);
            cg_emit(&c, &in, "movq xmm%d, %s", x, enc_reg_name(r, 8));
            cg_commit(g, &c);
        }
        /* MOVNTI m32/m64, r. */
        {
            DiffCase c;
            EncInsn in = enc_insn(cg_chance(g, 50) ? 8 : 4, 2, 0x0f, 0xc3, 0);
            uint32_t used = 0;
            int r;
            cg_begin(g, &c);
            in.rm = cg_mem(g, &c, cg_data_addr(g, 8, 8), &used);
            r = cg_pick_reg(g, used);
            in.reg = r;
            cg_emit(&c, &in, "movnti [mem], %s", enc_reg_name(r, in.opsize));
            cg_commit(g, &c);
        }
        /* MASKMOVDQU: byte-masked store to [RDI]. */
        {
            DiffCase c;
            EncInsn in = enc_insn(4, 2, 0x0f, 0xf7, 0);
            int a = (int)cg_below(g, 16), b = (int)cg_below(g, 16);
            sse_begin(g, &c);
            c.in.gpr[X86_RDI] = cg_data_addr(g, 1, 16);
            in.mandatory = 0x66;
            in.reg = a;
            in.rm = enc_xmm(b);
            cg_emit(&c, &in, "maskmovdqu xmm%d, xmm%d", a, b);
            cg_commit(g, &c);
        }
    }
}
