/*
 * Sequences shaped for the block compiler (accel/soft/jit-x86.c): the
 * forms it compiles inline (MOV, LEA, MOVZX, ADD/OR/AND/SUB/XOR/CMP, TEST,
 * 32- and 64-bit, register, immediate and memory operands in every
 * addressing form) in a body that runs twice. The first pass misses the
 * TLB and takes the slow paths; the second finds it warm and runs the
 * inline ones; the loop's SUB/JNZ is a compiled self-loop. SETcc after a
 * flag writer reads the lazy record the compiled code left; the case ends
 * with a flag writer and a Jcc over a MOV, a branch on the host's flags.
 * Interpreted (FERRY_SOFT_JIT=off) it is one more differential group.
 */
#include "case-gen.h"
#include "cases-util.h"

#define LOOP_REG    X86_R11
#define SET_REG     X86_R10
#define SKIP_REG    X86_R9
#define FIXED_REGS  ((1u << LOOP_REG) | (1u << SET_REG) | (1u << SKIP_REG) | (1u << X86_RSP))

static const char *const alu_names[8] = { "add", "or", "adc", "sbb", "and", "sub", "xor", "cmp" };
static const int inline_alu[6] = { 0, 1, 4, 5, 6, 7 };
static const char *const cc_names[16] = { "o", "no", "b", "ae", "e", "ne", "be", "a",
                                          "s", "ns", "p", "np", "l", "ge", "le", "g" };

static void jit_setcc(CaseGen *g, DiffCase *c)
{
    unsigned cc = (unsigned)cg_below(g, 16);
    EncInsn in = enc_insn(1, 2, 0x0f, 0x90 + cc, 0);

    in.reg = 0;
    in.reg_is_digit = true;
    in.rm = enc_reg(SET_REG);
    cg_emit(c, &in, "set%s r10b", cc_names[cc]);
}

/* One body instruction; registers it writes join *used, so no later address moves. */
static void jit_body_insn(CaseGen *g, DiffCase *c, uint32_t *used)
{
    int size = cg_chance(g, 50) ? 4 : 8;
    int r = -1;
    int op = inline_alu[cg_below(g, 6)];
    bool writes_flags = false;
    EncInsn in;
    EncOp m;
    char t[64];

    switch (cg_below(g, 9)) {
    case 0:                                         /* mov [m], r */
        m = cg_mem(g, c, cg_data_addr(g, size, size), used);
        r = cg_pick_reg(g, *used);
        in = enc_insn(size, 1, 0x89, 0, 0);
        in.reg = r;
        in.rm = m;
        enc_op_text(t, sizeof(t), &m, size);
        cg_emit(c, &in, "mov %s, %s", t, enc_reg_name(r, size));
        break;
    case 1:                                         /* mov r, [m] */
        m = cg_mem(g, c, cg_data_addr(g, size, size), used);
        r = cg_pick_reg(g, *used);
        in = enc_insn(size, 1, 0x8b, 0, 0);
        in.reg = r;
        in.rm = m;
        enc_op_text(t, sizeof(t), &m, size);
        cg_emit(c, &in, "mov %s, %s", enc_reg_name(r, size), t);
        *used |= 1u << r;
        break;
    case 2:                                         /* mov [m], imm */
        m = cg_mem(g, c, cg_data_addr(g, size, size), used);
        r = cg_pick_reg(g, *used);
        in = enc_insn(size, 1, 0xc7, 0, 0);
        in.reg = 0;
        in.reg_is_digit = true;
        in.rm = m;
        in.imm_size = 4;
        in.imm = (int32_t)cg_value(g, 4);
        enc_op_text(t, sizeof(t), &m, size);
        cg_emit(c, &in, "mov %s, %#llx", t, (unsigned long long)in.imm);
        break;
    case 3:                                         /* alu r, [m] */
        m = cg_mem(g, c, cg_data_addr(g, size, size), used);
        r = cg_pick_reg(g, *used);
        in = enc_insn(size, 1, (uint8_t)(op * 8 + 3), 0, 0);
        in.reg = r;
        in.rm = m;
        enc_op_text(t, sizeof(t), &m, size);
        cg_emit(c, &in, "%s %s, %s", alu_names[op], enc_reg_name(r, size), t);
        *used |= 1u << r;
        writes_flags = true;
        break;
    case 4:                                         /* cmp/test [m], r */
        m = cg_mem(g, c, cg_data_addr(g, size, size), used);
        r = cg_pick_reg(g, *used);
        in = enc_insn(size, 1, cg_chance(g, 50) ? 0x39 : 0x85, 0, 0);
        in.reg = r;
        in.rm = m;
        enc_op_text(t, sizeof(t), &m, size);
        cg_emit(c, &in, "%s %s, %s", in.opcode[0] == 0x39 ? "cmp" : "test", t,
                enc_reg_name(r, size));
        writes_flags = true;
        break;
    case 5: {                                       /* cmp [m], imm8/imm32 */
        bool short_imm = cg_chance(g, 50);
        m = cg_mem(g, c, cg_data_addr(g, size, size), used);
        r = cg_pick_reg(g, *used);
        in = enc_insn(size, 1, short_imm ? 0x83 : 0x81, 0, 0);
        in.reg = 7;
        in.reg_is_digit = true;
        in.rm = m;
        in.imm_size = short_imm ? 1 : 4;
        in.imm = short_imm ? (int8_t)cg_value(g, 1) : (int32_t)cg_value(g, 4);
        enc_op_text(t, sizeof(t), &m, size);
        cg_emit(c, &in, "cmp %s, %#llx", t, (unsigned long long)in.imm);
        writes_flags = true;
        break;
    }
    case 6: {                                       /* movzx r, byte/word [m] */
        int ssize = cg_chance(g, 50) ? 1 : 2;
        m = cg_mem(g, c, cg_data_addr(g, ssize, ssize), used);
        r = cg_pick_reg(g, *used);
        in = enc_insn(size, 2, 0x0f, ssize == 1 ? 0xb6 : 0xb7, 0);
        in.reg = r;
        in.rm = m;
        enc_op_text(t, sizeof(t), &m, ssize);
        cg_emit(c, &in, "movzx %s, %s", enc_reg_name(r, size), t);
        *used |= 1u << r;
        break;
    }
    case 7: {                                       /* alu r, r / r, imm */
        int s = cg_pick_reg(g, 1u << X86_RSP);
        r = cg_pick_reg(g, *used);
        if (cg_chance(g, 50)) {
            in = enc_insn(size, 1, (uint8_t)(op * 8 + 1), 0, 0);
            in.reg = s;
            in.rm = enc_reg(r);
            cg_emit(c, &in, "%s %s, %s", alu_names[op], enc_reg_name(r, size),
                    enc_reg_name(s, size));
        } else {
            bool short_imm = cg_chance(g, 50);
            in = enc_insn(size, 1, short_imm ? 0x83 : 0x81, 0, 0);
            in.reg = op;
            in.reg_is_digit = true;
            in.rm = enc_reg(r);
            in.imm_size = short_imm ? 1 : 4;
            in.imm = short_imm ? (int8_t)cg_value(g, 1) : (int32_t)cg_value(g, 4);
            cg_emit(c, &in, "%s %s, %#llx", alu_names[op], enc_reg_name(r, size),
                    (unsigned long long)in.imm);
        }
        *used |= 1u << r;
        writes_flags = true;
        break;
    }
    default:                                        /* lea r, [m] */
        m = cg_mem(g, c, cg_data_addr(g, 1, 1), used);
        r = cg_pick_reg(g, *used);
        in = enc_insn(size, 1, 0x8d, 0, 0);
        in.reg = r;
        in.rm = m;
        enc_op_text(t, sizeof(t), &m, size);
        cg_emit(c, &in, "lea %s, %s", enc_reg_name(r, size), t);
        *used |= 1u << r;
        break;
    }
    if (writes_flags && cg_chance(g, 40)) {
        jit_setcc(g, c);
    }
}

static void jit_case(CaseGen *g)
{
    uint32_t used = FIXED_REGS;
    unsigned n = 1 + (unsigned)cg_below(g, 4);
    unsigned cc = (unsigned)cg_below(g, 16);
    int size = cg_chance(g, 50) ? 4 : 8;
    int a = cg_pick_reg(g, 1u << X86_RSP), b = cg_pick_reg(g, 1u << X86_RSP);
    int op = inline_alu[cg_below(g, 6)];
    uint8_t loop_start, jnz[2], jcc[2];
    DiffCase c;
    EncInsn in;

    cg_begin(g, &c);
    in = enc_insn(4, 1, 0xb8, 0, 0);
    in.opreg = LOOP_REG;
    in.imm_size = 4;
    in.imm = 2;
    cg_emit(&c, &in, "mov r11d, 2");
    loop_start = c.code_len;
    for (unsigned i = 0; i < n; i++) {
        jit_body_insn(g, &c, &used);
    }
    in = enc_insn(4, 1, 0x83, 0, 0);
    in.reg = 5;
    in.reg_is_digit = true;
    in.rm = enc_reg(LOOP_REG);
    in.imm_size = 1;
    in.imm = 1;
    cg_emit(&c, &in, "sub r11d, 1");
    jnz[0] = 0x75;
    jnz[1] = (uint8_t)(loop_start - (c.code_len + 2));
    cg_emit_bytes(&c, jnz, 2, "jnz loop");

    /* A flag writer, then a Jcc that skips a MOV or not. */
    if (cg_chance(g, 25)) {
        in = enc_insn(size, 1, 0x85, 0, 0);
        in.reg = b;
        in.rm = enc_reg(a);
        cg_emit(&c, &in, "test %s, %s", enc_reg_name(a, size), enc_reg_name(b, size));
    } else {
        in = enc_insn(size, 1, (uint8_t)(op * 8 + 1), 0, 0);
        in.reg = b;
        in.rm = enc_reg(a);
        cg_emit(&c, &in, "%s %s, %s", alu_names[op], enc_reg_name(a, size),
                enc_reg_name(b, size));
    }
    jcc[0] = (uint8_t)(0x70 + cc);
    jcc[1] = 6;
    cg_emit_bytes(&c, jcc, 2, "j%s +6", cc_names[cc]);
    in = enc_insn(4, 1, 0xb8, 0, 0);
    in.opreg = SKIP_REG;
    in.imm_size = 4;
    in.imm = 0x5a5a;
    cg_emit(&c, &in, "mov r9d, 0x5a5a");

    /*
     * Sometimes a flag writer and a store that faults (the read-only page):
     * the exception frame's RFLAGS are the flags the slow path stored.
     */
    if (cg_chance(g, 30)) {
        in = enc_insn(size, 1, (uint8_t)(inline_alu[cg_below(g, 6)] * 8 + 1), 0, 0);
        in.reg = b;
        in.rm = enc_reg(a);
        cg_emit(&c, &in, "%s %s, %s", alu_names[(in.opcode[0] >> 3) & 7],
                enc_reg_name(a, size), enc_reg_name(b, size));
        in = enc_insn(8, 1, 0x89, 0, 0);
        in.reg = b;
        in.rm = enc_mem(ENC_NONE, ENC_NONE, 1, (int32_t)DIFF_RO_ADDR);
        cg_emit(&c, &in, "mov [ro], %s", enc_reg_name(b, 8));
    }
    cg_commit(g, &c);
}

void cases_jit(CaseGen *g)
{
    for (unsigned i = 0; i < 600; i++) {
        jit_case(g);
    }
}
