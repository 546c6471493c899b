/*
 * Multiplication and division: MUL/IMUL/DIV/IDIV (F6/F7), IMUL r,r/m
 * (0F AF) and IMUL r,r/m,imm (6B/69), including #DE from a zero divisor
 * and from a quotient that does not fit.
 */
#include "case-gen.h"
#include "cases-util.h"

#define FLAGS_MUL_UNDEF (X86_RFLAGS_SF | X86_RFLAGS_ZF | X86_RFLAGS_AF | X86_RFLAGS_PF)

/* F6/F7 /4../7 with r/m as the source; RAX and RDX are implicit. */
static void muldiv_one(CaseGen *g, int digit, int size, int de)
{
    static const char *const names[4] = { "mul", "imul", "div", "idiv" };
    DiffCase c;
    CUOperands o;
    EncInsn in;
    char t0[64];
    unsigned bits = size * 8;
    uint64_t mask = size == 8 ? ~0ULL : (1ULL << bits) - 1;
    bool div = digit >= 6;
    uint64_t divisor;

    cg_begin(g, &c);
    cu_operands(g, &c, size, cg_chance(g, 30), 1, &o);
    /* The implicit RAX/RDX (AX for bytes) must not be the operand. */
    if (o.used & ((1u << X86_RAX) | (1u << X86_RDX))) {
        return;
    }
    cu_set_reg(g, &c, X86_RAX, 8, cg_value(g, 8));
    cu_set_reg(g, &c, X86_RDX, 8, cg_value(g, 8));

    if (div) {
        /* Mostly quotients that fit; @de asks for 1 zero divisor, 2 overflow. */
        divisor = de == 1 ? 0 : cg_value(g, size);
        if (de == 0) {
            if (!(divisor & mask)) {
                divisor = 3;
            }
            /* A high half smaller than the divisor keeps the quotient in range. */
            uint64_t hi = cg_rand(g) % (divisor & mask);
            if (digit == 7) {
                hi = 0;
                if (cg_chance(g, 50) && size > 1) {
                    hi = mask;          /* negative dividend: sign-extended high half */
                    c.in.gpr[X86_RAX] |= 1ULL << (bits - 1);
                }
            }
            if (size == 1) {
                c.in.gpr[X86_RAX] = (c.in.gpr[X86_RAX] & ~0xff00ULL) | ((hi & 0xff) << 8);
            } else {
                cu_set_reg(g, &c, X86_RDX, size, hi);
            }
        } else if (de == 2) {
            if (digit == 7 && cg_chance(g, 50)) {
                /* INT_MIN / -1 */
                divisor = mask;
                uint64_t lo = 1ULL << (bits - 1);
                if (size == 1) {
                    c.in.gpr[X86_RAX] = (c.in.gpr[X86_RAX] & ~0xffffULL) | 0xff80;
                } else {
                    cu_set_reg(g, &c, X86_RAX, size, lo);
                    cu_set_reg(g, &c, X86_RDX, size, mask);
                }
            } else {
                divisor = 1 + cg_below(g, 7);
                if (size == 1) {
                    c.in.gpr[X86_RAX] = (c.in.gpr[X86_RAX] & ~0xff00ULL) | 0x7f00;
                } else {
                    cu_set_reg(g, &c, X86_RDX, size, (mask >> 1) - cg_below(g, 4));
                }
            }
        }
        if (o.rm.kind == ENC_OP_MEM) {
            cg_patch(&c, o.addr, &divisor, size);
        } else {
            cu_set_reg(g, &c, o.rm.reg, size, divisor);
        }
    }
    in = enc_insn(size, 1, 0xf6 + (size != 1), 0, 0);
    in.reg = digit;
    in.reg_is_digit = true;
    in.rm = o.rm;
    enc_op_text(t0, sizeof(t0), &o.rm, size);
    cg_emit(&c, &in, "%s %s%s", names[digit - 4], t0,
            de == 1 ? " (by zero)" : de == 2 ? " (overflow)" : "");
    c.flags_undef = div ? DIFF_FLAGS_ARITH : FLAGS_MUL_UNDEF;
    cg_commit(g, &c);
}

/* IMUL r, r/m (0F AF), and r, r/m, imm8/imm (6B/69). */
static void muldiv_imul(CaseGen *g, int size, int form)
{
    DiffCase c;
    CUOperands o;
    EncInsn in;
    char t0[64];

    cg_begin(g, &c);
    cu_operands(g, &c, size, cg_chance(g, 30), 2, &o);
    if (form == 0) {
        in = enc_insn(size, 2, 0x0f, 0xaf, 0);
    } else {
        in = enc_insn(size, 1, form == 1 ? 0x6b : 0x69, 0, 0);
        in.imm_size = form == 1 ? 1 : size == 2 ? 2 : 4;
        in.imm = (int64_t)cg_value(g, in.imm_size);
    }
    in.reg = o.reg;
    in.rm = o.rm;
    enc_op_text(t0, sizeof(t0), &o.rm, size);
    if (form == 0) {
        cg_emit(&c, &in, "imul %s, %s", enc_reg_name(o.reg, size), t0);
    } else {
        cg_emit(&c, &in, "imul %s, %s, %#llx", enc_reg_name(o.reg, size), t0,
                (unsigned long long)in.imm);
    }
    c.flags_undef = FLAGS_MUL_UNDEF;
    cg_commit(g, &c);
}

void cases_muldiv(CaseGen *g)
{
    static const int sizes[4] = { 1, 2, 4, 8 };

    for (int s = 0; s < 4; s++) {
        for (int n = 0; n < 24; n++) {
            muldiv_one(g, 4, sizes[s], 0);
            muldiv_one(g, 5, sizes[s], 0);
            muldiv_one(g, 6, sizes[s], 0);
            muldiv_one(g, 7, sizes[s], 0);
        }
        for (int n = 0; n < 3; n++) {
            muldiv_one(g, 6, sizes[s], 1);
            muldiv_one(g, 7, sizes[s], 1);
            muldiv_one(g, 6, sizes[s], 2);
            muldiv_one(g, 7, sizes[s], 2);
        }
        if (sizes[s] == 1) {
            continue;
        }
        for (int n = 0; n < 16; n++) {
            muldiv_imul(g, sizes[s], 0);
            muldiv_imul(g, sizes[s], 1);
            muldiv_imul(g, sizes[s], 2);
        }
    }
}
