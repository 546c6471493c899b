/*
 * Integer ALU cases: the eight classic binary operations and TEST in every
 * encoding form, the unary INC/DEC/NEG/NOT, and their LOCK-prefixed memory
 * forms. Operand sizes 8 (legacy AH-BH and REX SPL-DIL), 16, 32 (which
 * zero-extends) and 64 bits.
 */
#include "case-gen.h"
#include "cases-util.h"

static const char *const alu_names[8] = {
    "add", "or", "adc", "sbb", "and", "sub", "xor", "cmp" };

/* The SDM leaves AF undefined after the logical operations. */
static uint32_t alu_undef(int op)
{
    return (op == 1 || op == 4 || op == 6) ? X86_RFLAGS_AF : 0;
}

static int alu_imm_size(int size)
{
    return size == 1 ? 1 : size == 2 ? 2 : 4;
}

/*
 * One binary operation. @form: 0 r/m,r  1 r,r/m  2 acc,imm  3 r/m,imm
 * (80/81)  4 r/m,imm8 (83). Memory operands in forms 0, 1, 3, 4 by chance,
 * always when @lock.
 */
static void alu_binary(CaseGen *g, int op, int size, int form, bool lock,
                       const char *name, uint8_t opcode_rm_r, uint8_t imm_op,
                       int imm_digit, uint32_t undef)
{
    DiffCase c;
    CUOperands o;
    EncInsn in;
    char t0[64], t1[64];
    bool mem = lock || (form != 2 && cg_chance(g, 40));

    cg_begin(g, &c);
    cu_operands(g, &c, size, mem, form == 0 || form == 1 ? 2 : 1, &o);

    switch (form) {
    case 0:
    case 1:
        in = enc_insn(size, 1, opcode_rm_r + (size != 1) + (form == 1 ? 2 : 0), 0, 0);
        in.reg = o.reg;
        in.rm = o.rm;
        enc_op_text(t0, sizeof(t0), &o.rm, size);
        enc_op_text(t1, sizeof(t1), &(EncOp){ .kind = ENC_OP_REG, .reg = o.reg }, size);
        if (lock) {
            in.prefix[in.nprefix++] = 0xf0;
        }
        cg_emit(&c, &in, "%s%s %s, %s", lock ? "lock " : "", name,
                form == 0 ? t0 : t1, form == 0 ? t1 : t0);
        break;
    case 2: {
        uint64_t imm = cg_value(g, alu_imm_size(size));
        in = enc_insn(size, 1, opcode_rm_r + 4 + (size != 1), 0, 0);
        in.imm_size = alu_imm_size(size);
        in.imm = (int64_t)imm;
        cu_set_reg(g, &c, X86_RAX, size, cg_value(g, size));
        cg_emit(&c, &in, "%s %s, %#llx", name, enc_reg_name(X86_RAX, size),
                (unsigned long long)imm);
        break;
    }
    default: {
        int isz = form == 4 ? 1 : alu_imm_size(size);
        uint64_t imm = cg_value(g, isz);
        if (form == 4 && size == 1) {
            return;
        }
        in = enc_insn(size, 1, form == 4 ? 0x83 : imm_op + (size != 1), 0, 0);
        in.reg = imm_digit;
        in.reg_is_digit = true;
        in.rm = o.rm;
        in.imm_size = isz;
        in.imm = (int64_t)imm;
        if (lock) {
            in.prefix[in.nprefix++] = 0xf0;
        }
        enc_op_text(t0, sizeof(t0), &o.rm, size);
        cg_emit(&c, &in, "%s%s %s, %#llx", lock ? "lock " : "", name, t0,
                (unsigned long long)imm);
        break;
    }
    }
    c.flags_undef = undef;
    cg_commit(g, &c);
}

static void alu_unary(CaseGen *g, int digit, int size, bool lock)
{
    static const char *const names[4] = { "inc", "dec", "not", "neg" };
    DiffCase c;
    CUOperands o;
    EncInsn in;
    char t0[64];
    bool incdec = digit < 2;

    cg_begin(g, &c);
    cu_operands(g, &c, size, lock || cg_chance(g, 40), 1, &o);
    in = enc_insn(size, 1, (incdec ? 0xfe : 0xf6) + (size != 1), 0, 0);
    in.reg = digit;
    in.reg_is_digit = true;
    in.rm = o.rm;
    if (lock) {
        in.prefix[in.nprefix++] = 0xf0;
    }
    enc_op_text(t0, sizeof(t0), &o.rm, size);
    cg_emit(&c, &in, "%s%s %s", lock ? "lock " : "", names[digit], t0);
    cg_commit(g, &c);
}

void cases_alu(CaseGen *g)
{
    static const int sizes[4] = { 1, 2, 4, 8 };

    for (int op = 0; op < 8; op++) {
        for (int s = 0; s < 4; s++) {
            for (int form = 0; form < 5; form++) {
                for (int n = 0; n < 5; n++) {
                    alu_binary(g, op, sizes[s], form, false, alu_names[op], op * 8,
                               0x80, op, alu_undef(op));
                }
            }
        }
    }
    for (int s = 0; s < 4; s++) {
        for (int n = 0; n < 8; n++) {
            /* TEST: 84/85 r/m,r; A8/A9 acc,imm; F6/F7 /0 imm. */
            alu_binary(g, 0, sizes[s], 0, false, "test", 0x84, 0xf6, 0, X86_RFLAGS_AF);
            alu_binary(g, 0, sizes[s], 3, false, "test", 0x84, 0xf6, 0, X86_RFLAGS_AF);
        }
        for (int n = 0; n < 6; n++) {
            DiffCase c;
            uint64_t imm = cg_value(g, alu_imm_size(sizes[s]));
            EncInsn in = enc_insn(sizes[s], 1, sizes[s] == 1 ? 0xa8 : 0xa9, 0, 0);
            cg_begin(g, &c);
            in.imm_size = alu_imm_size(sizes[s]);
            in.imm = (int64_t)imm;
            cu_set_reg(g, &c, X86_RAX, sizes[s], cg_value(g, sizes[s]));
            cg_emit(&c, &in, "test %s, %#llx", enc_reg_name(X86_RAX, sizes[s]),
                    (unsigned long long)imm);
            c.flags_undef = X86_RFLAGS_AF;
            cg_commit(g, &c);
        }
        for (int digit = 0; digit < 4; digit++) {
            for (int n = 0; n < 10; n++) {
                alu_unary(g, digit, sizes[s], false);
            }
        }
    }
}

void cases_lock(CaseGen *g)
{
    static const int sizes[4] = { 1, 2, 4, 8 };

    for (int s = 0; s < 4; s++) {
        for (int op = 0; op < 7; op++) {
            for (int n = 0; n < 3; n++) {
                alu_binary(g, op, sizes[s], 0, true, alu_names[op], op * 8, 0x80, op,
                           alu_undef(op));
                alu_binary(g, op, sizes[s], 3 + (int)cg_below(g, 2), true, alu_names[op],
                           op * 8, 0x80, op, alu_undef(op));
            }
        }
        for (int digit = 0; digit < 4; digit++) {
            for (int n = 0; n < 3; n++) {
                alu_unary(g, digit, sizes[s], true);
            }
        }
        for (int n = 0; n < 6; n++) {
            cu_xchg_like(g, sizes[s], true);
        }
    }
}
