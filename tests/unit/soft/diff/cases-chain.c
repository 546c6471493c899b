/*
 * Short random sequences of flag writers and flag readers (ADD..CMP, TEST,
 * INC/DEC, NEG, MOV, then ADC/SBB, SETcc, CMOVcc, Jcc): an interpreter that
 * evaluates flags lazily must get them right when the reader is not the
 * instruction right after the writer, and when INC/DEC keep an older CF.
 * AF is masked: the logical operations leave it undefined and no reader
 * here consumes it.
 */
#include "case-gen.h"
#include "cases-util.h"

static const int chain_regs[8] = {
    X86_RAX, X86_RBX, X86_RCX, X86_RDX, X86_RSI, X86_RDI, X86_R8, X86_R9 };

static int chain_reg(CaseGen *g)
{
    return chain_regs[cg_below(g, G_N_ELEMENTS(chain_regs))];
}

static void chain_step(CaseGen *g, DiffCase *c)
{
    static const char *const alu[8] = { "add", "or", "adc", "sbb", "and", "sub", "xor", "cmp" };
    static const char *const cc[16] = { "o", "no", "b", "ae", "e", "ne", "be", "a",
                                        "s", "ns", "p", "np", "l", "ge", "le", "g" };
    static const int sizes[4] = { 1, 2, 4, 8 };
    int size = sizes[cg_below(g, 4)];
    int d = chain_reg(g), s = chain_reg(g);
    EncInsn in;

    switch (cg_below(g, 9)) {
    case 0: case 1: case 2: {
        int op = (int)cg_below(g, 8);
        in = enc_insn(size, 1, op * 8 + (size != 1), 0, 0);
        in.reg = s;
        in.rm = enc_reg(d);
        cg_emit(c, &in, "%s %s, %s", alu[op], enc_reg_name(d, size), enc_reg_name(s, size));
        break;
    }
    case 3: {
        int digit = (int)cg_below(g, 2);
        in = enc_insn(size, 1, 0xfe + (size != 1), 0, 0);
        in.reg = digit;
        in.reg_is_digit = true;
        in.rm = enc_reg(d);
        cg_emit(c, &in, "%s %s", digit ? "dec" : "inc", enc_reg_name(d, size));
        break;
    }
    case 4:
        in = enc_insn(size, 1, 0xf6 + (size != 1), 0, 0);
        in.reg = cg_chance(g, 50) ? 3 : 0;
        in.reg_is_digit = true;
        in.rm = enc_reg(d);
        if (in.reg == 0) {
            in.imm_size = size == 8 ? 4 : size;
            in.imm = (int64_t)cg_value(g, in.imm_size);
        }
        cg_emit(c, &in, "%s %s", in.reg ? "neg" : "test (imm)", enc_reg_name(d, size));
        break;
    case 5: {
        int k = (int)cg_below(g, 16);
        in = enc_insn(1, 2, 0x0f, 0x90 + k, 0);
        in.reg = 0;
        in.reg_is_digit = true;
        in.rm = enc_reg(d);
        cg_emit(c, &in, "set%s %s", cc[k], enc_reg_name(d, 1));
        break;
    }
    case 6: {
        int k = (int)cg_below(g, 16);
        size = size == 1 ? 4 : size;
        in = enc_insn(size, 2, 0x0f, 0x40 + k, 0);
        in.reg = d;
        in.rm = enc_reg(s);
        cg_emit(c, &in, "cmov%s %s, %s", cc[k], enc_reg_name(d, size), enc_reg_name(s, size));
        break;
    }
    case 7: {
        /* jcc over an ADD: the skipped writer must leave the flags alone. */
        int k = (int)cg_below(g, 16);
        uint8_t b[5] = { 0x70 + k, 3, 0x48, 0x01, 0xd8 };
        cg_emit_bytes(c, b, 5, "j%s +3; add rax, rbx", cc[k]);
        break;
    }
    default:
        in = enc_insn(size, 1, 0x88 + (size != 1), 0, 0);
        in.reg = s;
        in.rm = enc_reg(d);
        cg_emit(c, &in, "mov %s, %s", enc_reg_name(d, size), enc_reg_name(s, size));
        break;
    }
}

void cases_chain(CaseGen *g)
{
    for (int n = 0; n < 400; n++) {
        DiffCase c;
        int len = 2 + (int)cg_below(g, 7);

        cg_begin(g, &c);
        for (unsigned i = 0; i < G_N_ELEMENTS(chain_regs); i++) {
            c.in.gpr[chain_regs[i]] = cg_reg_value(g, 1 << cg_below(g, 4));
        }
        for (int i = 0; i < len; i++) {
            chain_step(g, &c);
        }
        c.flags_undef = X86_RFLAGS_AF;
        cg_commit(g, &c);
    }
}
