/*
 * Shifts and rotates: ROL ROR RCL RCR SHL SHR SAR by 1 (D0/D1), by CL
 * (D2/D3) and by imm8 (C0/C1), and SHLD/SHRD by imm8 and CL, with counts
 * 0, 1, size-1, size, size+1, the masking boundaries and random ones.
 */
#include "case-gen.h"
#include "cases-util.h"

static const char *const shift_names[8] = {
    "rol", "ror", "rcl", "rcr", "shl", "shr", "sal", "sar" };

/* Which flags the SDM leaves undefined for this shift and masked count. */
static uint32_t shift_undef(int digit, int size, unsigned count)
{
    unsigned bits = size * 8;
    unsigned mc = count & (size == 8 ? 0x3f : 0x1f);
    uint32_t u = 0;

    if (mc == 0) {
        return 0;
    }
    if (mc != 1) {
        u |= X86_RFLAGS_OF;
    }
    if (digit >= 4) {
        u |= X86_RFLAGS_AF;
        /* SHL/SHR: CF undefined once the count reaches the width. */
        if (mc >= bits && digit != 7) {
            u |= X86_RFLAGS_CF;
        }
    }
    return u;
}

static unsigned shift_count(CaseGen *g, int size)
{
    unsigned bits = size * 8;
    const unsigned picks[] = { 0, 1, 2, bits - 1, bits, bits + 1, 31, 32, 33, 63, 64,
                               65, 255, 9, 17 };

    if (cg_chance(g, 70)) {
        return picks[cg_below(g, G_N_ELEMENTS(picks))];
    }
    return (unsigned)cg_below(g, 256);
}

/* @how: 0 by 1, 1 by CL, 2 by imm8. */
static void shift_one(CaseGen *g, int digit, int size, int how)
{
    DiffCase c;
    CUOperands o;
    EncInsn in;
    char t0[64];
    unsigned count = how == 0 ? 1 : shift_count(g, size);

    cg_begin(g, &c);
    cu_operands(g, &c, size, cg_chance(g, 30), 1, &o);
    if (how == 1) {
        /* CL is an implicit operand: keep it out of the addressing. */
        if (o.used & (1u << X86_RCX)) {
            return;
        }
        cu_set_reg(g, &c, X86_RCX, 1, count);
    }
    in = enc_insn(size, 1, (how == 0 ? 0xd0 : how == 1 ? 0xd2 : 0xc0) + (size != 1), 0, 0);
    in.reg = digit;
    in.reg_is_digit = true;
    in.rm = o.rm;
    if (how == 2) {
        in.imm_size = 1;
        in.imm = count;
    }
    enc_op_text(t0, sizeof(t0), &o.rm, size);
    if (how == 0) {
        cg_emit(&c, &in, "%s %s, 1", shift_names[digit], t0);
    } else if (how == 1) {
        cg_emit(&c, &in, "%s %s, cl (cl=%u)", shift_names[digit], t0, count);
    } else {
        cg_emit(&c, &in, "%s %s, %u", shift_names[digit], t0, count);
    }
    c.flags_undef = shift_undef(digit, size, count);
    cg_commit(g, &c);
}

/* SHLD/SHRD; 16-bit counts above 16 leave the result undefined: skipped. */
static void shift_double(CaseGen *g, bool right, int size, bool by_cl)
{
    DiffCase c;
    CUOperands o;
    EncInsn in;
    char t0[64];
    unsigned count = shift_count(g, size);
    unsigned mc = count & (size == 8 ? 0x3f : 0x1f);

    if (size == 2 && mc > 16) {
        count = mc & 15;
        mc = count;
    }
    cg_begin(g, &c);
    cu_operands(g, &c, size, cg_chance(g, 30), 2, &o);
    if (by_cl) {
        if ((o.used & (1u << X86_RCX))) {
            return;
        }
        cu_set_reg(g, &c, X86_RCX, 1, count);
    }
    in = enc_insn(size, 2, 0x0f, (right ? 0xac : 0xa4) + by_cl, 0);
    in.reg = o.reg;
    in.rm = o.rm;
    if (!by_cl) {
        in.imm_size = 1;
        in.imm = count;
    }
    enc_op_text(t0, sizeof(t0), &o.rm, size);
    cg_emit(&c, &in, "%s %s, %s, %s%u", right ? "shrd" : "shld", t0,
            enc_reg_name(o.reg, size), by_cl ? "cl=" : "", count);
    c.flags_undef = mc == 0 ? 0 : X86_RFLAGS_AF | (mc != 1 ? X86_RFLAGS_OF : 0);
    cg_commit(g, &c);
}

void cases_shift(CaseGen *g)
{
    static const int sizes[4] = { 1, 2, 4, 8 };

    for (int s = 0; s < 4; s++) {
        for (int digit = 0; digit < 8; digit++) {
            if (digit == 6) {
                continue;               /* /6 is an undocumented alias of SHL */
            }
            for (int n = 0; n < 4; n++) {
                shift_one(g, digit, sizes[s], 0);
            }
            for (int n = 0; n < 14; n++) {
                shift_one(g, digit, sizes[s], 1);
                shift_one(g, digit, sizes[s], 2);
            }
        }
        if (sizes[s] == 1) {
            continue;
        }
        for (int n = 0; n < 16; n++) {
            shift_double(g, false, sizes[s], false);
            shift_double(g, false, sizes[s], true);
            shift_double(g, true, sizes[s], false);
            shift_double(g, true, sizes[s], true);
        }
    }
}
