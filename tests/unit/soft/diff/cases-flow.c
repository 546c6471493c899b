/*
 * Control flow and flags: CMOVcc/SETcc/Jcc for all sixteen conditions,
 * JMP, the stack (PUSH/POP in all forms, CALL/RET, ENTER/LEAVE,
 * PUSHF/POPF), LOOP/LOOPcc/JRCXZ, sign extension of the accumulator
 * (CBW...CQO), LAHF/SAHF, the flag instructions, and a few prefix oddities.
 */
#include <string.h>

#include "case-gen.h"
#include "cases-util.h"

static const char *const cc_names[16] = {
    "o", "no", "b", "ae", "e", "ne", "be", "a",
    "s", "ns", "p", "np", "l", "ge", "le", "g" };

#define FLAGS_CC (X86_RFLAGS_CF | X86_RFLAGS_PF | X86_RFLAGS_ZF | X86_RFLAGS_SF | X86_RFLAGS_OF)

/* Flags for a condition test: random, so every condition sees both outcomes. */
static void flow_random_flags(CaseGen *g, DiffCase *c)
{
    c->in.rflags = (c->in.rflags & ~FLAGS_CC) | (cg_rand(g) & FLAGS_CC);
}

static void cond_cmov(CaseGen *g, int cc, int size)
{
    DiffCase c;
    CUOperands o;
    EncInsn in;
    char t0[64];

    cg_begin(g, &c);
    flow_random_flags(g, &c);
    cu_operands(g, &c, size, cg_chance(g, 30), 2, &o);
    in = enc_insn(size, 2, 0x0f, 0x40 + cc, 0);
    in.reg = o.reg;
    in.rm = o.rm;
    enc_op_text(t0, sizeof(t0), &o.rm, size);
    cg_emit(&c, &in, "cmov%s %s, %s", cc_names[cc], enc_reg_name(o.reg, size), t0);
    cg_commit(g, &c);
}

static void cond_setcc(CaseGen *g, int cc)
{
    DiffCase c;
    CUOperands o;
    EncInsn in;
    char t0[64];

    cg_begin(g, &c);
    flow_random_flags(g, &c);
    cu_operands(g, &c, 1, cg_chance(g, 30), 1, &o);
    in = enc_insn(1, 2, 0x0f, 0x90 + cc, 0);
    in.reg = 0;
    in.reg_is_digit = true;
    in.rm = o.rm;
    enc_op_text(t0, sizeof(t0), &o.rm, 1);
    cg_emit(&c, &in, "set%s %s", cc_names[cc], t0);
    cg_commit(g, &c);
}

/* jcc over "mov al, 1": AL tells which way it went, RIP ends the same. */
static void cond_jcc(CaseGen *g, int cc, bool near)
{
    DiffCase c;
    static const uint8_t mov_al[2] = { 0xb0, 0x01 };

    cg_begin(g, &c);
    flow_random_flags(g, &c);
    if (near) {
        uint8_t b[6] = { 0x0f, 0x80 + cc, 2, 0, 0, 0 };
        cg_emit_bytes(&c, b, 6, "j%s near +2", cc_names[cc]);
    } else {
        uint8_t b[2] = { 0x70 + cc, 2 };
        cg_emit_bytes(&c, b, 2, "j%s short +2", cc_names[cc]);
    }
    cg_emit_bytes(&c, mov_al, 2, "mov al, 1");
    cg_commit(g, &c);
}

void cases_cond(CaseGen *g)
{
    for (int cc = 0; cc < 16; cc++) {
        for (int n = 0; n < 6; n++) {
            cond_cmov(g, cc, 2);
            cond_cmov(g, cc, 4);
            cond_cmov(g, cc, 8);
            cond_setcc(g, cc);
            cond_jcc(g, cc, false);
            cond_jcc(g, cc, true);
        }
    }
    /* JMP rel8/rel32 and JMP r/m64 forward over "mov al, 1". */
    for (int n = 0; n < 8; n++) {
        DiffCase c;
        static const uint8_t jmp8[] = { 0xeb, 0x02, 0xb0, 0x01 };
        static const uint8_t jmp32[] = { 0xe9, 0x02, 0, 0, 0, 0xb0, 0x01 };
        int r = cg_pick_reg(g, 0);
        EncInsn in = enc_insn(4, 1, 0xff, 0, 0);

        cg_begin(g, &c);
        cg_emit_bytes(&c, n & 1 ? jmp8 : jmp32, n & 1 ? 4 : 7, "jmp over mov al, 1");
        cg_commit(g, &c);

        cg_begin(g, &c);
        in.reg = 4;
        in.reg_is_digit = true;
        in.rm = enc_reg(r);
        cg_emit(&c, &in, "jmp %s", enc_reg_name(r, 8));
        c.in.gpr[r] = DIFF_CODE_ADDR + c.code_len + 2;
        cg_emit_bytes(&c, jmp8 + 2, 2, "mov al, 1");
        cg_commit(g, &c);
    }
}

/* Make the top of the stack hold @v. */
static void stack_top(DiffCase *c, uint64_t v)
{
    cg_patch(c, c->in.gpr[X86_RSP], &v, 8);
}

static void stack_push_pop(CaseGen *g)
{
    DiffCase c;
    EncInsn in;
    char t0[64];
    int r = (int)cg_below(g, 16);
    int size = cg_chance(g, 25) ? 2 : 8;

    /* PUSH r / POP r, including RSP itself. */
    for (int pop = 0; pop < 2; pop++) {
        cg_begin(g, &c);
        stack_top(&c, cg_rand(g));
        in = enc_insn(size == 2 ? 2 : 4, 1, pop ? 0x58 : 0x50, 0, 0);
        in.opreg = r;
        cg_emit(&c, &in, "%s %s", pop ? "pop" : "push", enc_reg_name(r, size));
        cg_commit(g, &c);
    }
    /* PUSH r/m / POP r/m. */
    for (int pop = 0; pop < 2; pop++) {
        CUOperands o;
        cg_begin(g, &c);
        stack_top(&c, cg_rand(g));
        cu_operands(g, &c, size, cg_chance(g, 60), 1, &o);
        in = enc_insn(size == 2 ? 2 : 4, 1, pop ? 0x8f : 0xff, 0, 0);
        in.reg = pop ? 0 : 6;
        in.reg_is_digit = true;
        in.rm = o.rm;
        enc_op_text(t0, sizeof(t0), &o.rm, size);
        cg_emit(&c, &in, "%s %s", pop ? "pop" : "push", t0);
        cg_commit(g, &c);
    }
    /* PUSH imm8 / imm32. */
    cg_begin(g, &c);
    in = enc_insn(size == 2 ? 2 : 4, 1, cg_chance(g, 50) ? 0x6a : 0x68, 0, 0);
    in.imm_size = in.opcode[0] == 0x6a ? 1 : size == 2 ? 2 : 4;
    in.imm = (int64_t)cg_value(g, in.imm_size);
    cg_emit(&c, &in, "push%s %#llx", size == 2 ? "w" : "", (unsigned long long)in.imm);
    cg_commit(g, &c);
}

static void stack_call_ret(CaseGen *g)
{
    DiffCase c;
    int r = cg_pick_reg(g, 0);

    /* call L; jmp end; L: ret; end: */
    {
        static const uint8_t b[] = { 0xe8, 0x02, 0, 0, 0, 0xeb, 0x01, 0xc3 };
        cg_begin(g, &c);
        cg_emit_bytes(&c, b, sizeof(b), "call L; jmp end; L: ret; end:");
        cg_commit(g, &c);
    }
    /* call L; L: (the return address stays on the stack) */
    {
        static const uint8_t b[] = { 0xe8, 0x00, 0, 0, 0 };
        cg_begin(g, &c);
        cg_emit_bytes(&c, b, sizeof(b), "call +0");
        cg_commit(g, &c);
    }
    /* call r64 to just past itself */
    {
        EncInsn in = enc_insn(4, 1, 0xff, 0, 0);
        cg_begin(g, &c);
        in.reg = 2;
        in.reg_is_digit = true;
        in.rm = enc_reg(r);
        cg_emit(&c, &in, "call %s", enc_reg_name(r, 8));
        c.in.gpr[r] = DIFF_CODE_ADDR + c.code_len;
        cg_commit(g, &c);
    }
    /* call [mem] */
    {
        EncInsn in = enc_insn(4, 1, 0xff, 0, 0);
        uint32_t used = 0;
        uint64_t addr = cg_data_addr(g, 8, 8);
        cg_begin(g, &c);
        in.reg = 2;
        in.reg_is_digit = true;
        in.rm = cg_mem(g, &c, addr, &used);
        cg_emit(&c, &in, "call qword [mem]");
        uint64_t target = DIFF_CODE_ADDR + c.code_len;
        cg_patch(&c, addr, &target, 8);
        cg_commit(g, &c);
    }
    /* push imm32 (the end); ret / ret imm16 */
    {
        bool imm = cg_chance(g, 50);
        uint16_t pop = (uint16_t)(cg_below(g, 64) * 8 + cg_below(g, 2) * 4);
        uint32_t end = (uint32_t)(DIFF_CODE_ADDR + 5 + (imm ? 3 : 1));
        uint8_t b[8] = { 0x68, end & 0xff, (end >> 8) & 0xff, (end >> 16) & 0xff,
                         end >> 24, imm ? 0xc2 : 0xc3, pop & 0xff, pop >> 8 };
        cg_begin(g, &c);
        cg_emit_bytes(&c, b, imm ? 8 : 6, imm ? "push end; ret %u" : "push end; ret", pop);
        cg_commit(g, &c);
    }
}

static void stack_enter_leave(CaseGen *g)
{
    DiffCase c;
    uint16_t alloc = (uint16_t)(cg_chance(g, 30) ? 0 : cg_below(g, 0x200));
    uint8_t level = (uint8_t)(cg_chance(g, 50) ? 0 : cg_below(g, 5));
    uint8_t enter[4] = { 0xc8, alloc & 0xff, alloc >> 8, level };
    static const uint8_t leave[1] = { 0xc9 };

    cg_begin(g, &c);
    /* RBP points into the stack page: nested levels copy frame pointers from it. */
    c.in.gpr[X86_RBP] = DIFF_STACK_TOP + 0x100 + cg_below(g, 0x40) * 8;
    cg_emit_bytes(&c, enter, 4, "enter %u, %u", alloc, level);
    if (cg_chance(g, 50)) {
        cg_emit_bytes(&c, leave, 1, "leave");
    }
    cg_commit(g, &c);

    cg_begin(g, &c);
    c.in.gpr[X86_RBP] = DIFF_STACK_TOP + cg_below(g, 0x80) * 8;
    cg_emit_bytes(&c, leave, 1, "leave");
    cg_commit(g, &c);
}

static void stack_flags(CaseGen *g)
{
    DiffCase c;
    /* User-changeable bits POPF may set here; TF, AC and NT stay clear. */
    uint64_t v = (cg_rand(g) & (DIFF_FLAGS_USER | X86_RFLAGS_ID)) | X86_RFLAGS_FIXED;
    static const uint8_t pushf[] = { 0x9c }, popf[] = { 0x9d };
    static const uint8_t pushf16[] = { 0x66, 0x9c }, popf16[] = { 0x66, 0x9d };

    cg_begin(g, &c);
    stack_top(&c, v);
    cg_emit_bytes(&c, popf, 1, "popf (%#llx)", (unsigned long long)v);
    if (cg_chance(g, 50)) {
        cg_emit_bytes(&c, pushf, 1, "pushf");
    }
    cg_commit(g, &c);

    cg_begin(g, &c);
    cg_emit_bytes(&c, pushf, 1, "pushf");
    cg_commit(g, &c);

    cg_begin(g, &c);
    stack_top(&c, v & 0xffff);
    cg_emit_bytes(&c, popf16, 2, "popfw (%#llx)", (unsigned long long)(v & 0xffff));
    cg_emit_bytes(&c, pushf16, 2, "pushfw");
    cg_commit(g, &c);
}

/* LOOP/LOOPE/LOOPNE around "add al, dl; cmp al, bl", JRCXZ/JECXZ. */
static void stack_loop(CaseGen *g, int kind)
{
    static const char *const names[3] = { "loopne", "loope", "loop" };
    DiffCase c;
    uint8_t body[7] = { 0x00, 0xd0, 0x38, 0xd8, 0xe0 + kind, (uint8_t)-6, 0 };
    bool addr32 = cg_chance(g, 25);

    cg_begin(g, &c);
    c.in.gpr[X86_RCX] = (cg_rand(g) & ~0xffffffffULL) | (1 + cg_below(g, 40));
    if (addr32) {
        /* 67: ECX counts; the upper half of RCX must not matter. */
        body[4] = 0x67;
        body[5] = 0xe0 + kind;
        body[6] = (uint8_t)-7;
    } else {
        c.in.gpr[X86_RCX] &= 0xffffffff;
    }
    cg_emit_bytes(&c, body, addr32 ? 7 : 6, "l: add al, dl; cmp al, bl; %s%s l",
                  addr32 ? "a32 " : "", names[kind]);
    cg_commit(g, &c);
}

static void stack_jrcxz(CaseGen *g)
{
    DiffCase c;
    bool addr32 = cg_chance(g, 40);
    uint8_t b[5] = { 0x67, 0xe3, 2, 0xb0, 0x01 };

    cg_begin(g, &c);
    if (cg_chance(g, 50)) {
        c.in.gpr[X86_RCX] = cg_chance(g, 50) ? 0 : (cg_rand(g) << 32);
    }
    cg_emit_bytes(&c, addr32 ? b : b + 1, addr32 ? 5 : 4, "%s +2; mov al, 1",
                  addr32 ? "jecxz" : "jrcxz");
    cg_commit(g, &c);
}

void cases_stack(CaseGen *g)
{
    for (int n = 0; n < 40; n++) {
        stack_push_pop(g);
    }
    for (int n = 0; n < 12; n++) {
        stack_call_ret(g);
        stack_enter_leave(g);
        stack_flags(g);
    }
    for (int n = 0; n < 10; n++) {
        stack_loop(g, 0);
        stack_loop(g, 1);
        stack_loop(g, 2);
        stack_jrcxz(g);
    }
}

static void misc_simple(CaseGen *g, const uint8_t *b, unsigned n, const char *name)
{
    DiffCase c;

    cg_begin(g, &c);
    c.in.rflags = cg_rand(g) & DIFF_FLAGS_USER;
    cg_emit_bytes(&c, b, n, "%s", name);
    cg_commit(g, &c);
}

void cases_misc(CaseGen *g)
{
    static const struct {
        uint8_t b[6];
        unsigned n;
        const char *name;
    } simple[] = {
        { { 0x66, 0x98 }, 2, "cbw" },
        { { 0x98 }, 1, "cwde" },
        { { 0x48, 0x98 }, 2, "cdqe" },
        { { 0x66, 0x99 }, 2, "cwd" },
        { { 0x99 }, 1, "cdq" },
        { { 0x48, 0x99 }, 2, "cqo" },
        { { 0x9f }, 1, "lahf" },
        { { 0x9e }, 1, "sahf" },
        { { 0xf8 }, 1, "clc" },
        { { 0xf9 }, 1, "stc" },
        { { 0xf5 }, 1, "cmc" },
        { { 0xfc }, 1, "cld" },
        { { 0xfd }, 1, "std" },
        { { 0x90 }, 1, "nop" },
        { { 0x66, 0x90 }, 2, "xchg ax, ax" },
        { { 0xf3, 0x90 }, 2, "pause" },
        { { 0x87, 0xc0 }, 2, "xchg eax, eax (zero-extends)" },
        { { 0x8c, 0xd0 }, 2, "mov eax, ss" },
        { { 0x8c, 0xc8 }, 2, "mov eax, cs" },
        { { 0x66, 0x8c, 0xd8 }, 3, "mov ax, ds" },
        { { 0x48, 0x66, 0x01, 0xd8 }, 4, "rex.w (ignored: not last) 66 add ax, bx" },
        { { 0x66, 0x66, 0x01, 0xd8 }, 4, "66 66 add ax, bx" },
        { { 0x2e, 0x3e, 0x01, 0xd8 }, 4, "cs ds add eax, ebx (ignored prefixes)" },
        { { 0x40, 0x88, 0xe0 }, 3, "mov al, spl" },
        { { 0x88, 0xe0 }, 2, "mov al, ah" },
    };

    for (unsigned i = 0; i < G_N_ELEMENTS(simple); i++) {
        for (int n = 0; n < 6; n++) {
            misc_simple(g, simple[i].b, simple[i].n, simple[i].name);
        }
    }
    /* Multi-byte NOP with a memory operand never touches memory. */
    for (int n = 0; n < 4; n++) {
        DiffCase c;
        EncInsn in = enc_insn(4, 2, 0x0f, 0x1f, 0);
        cg_begin(g, &c);
        in.reg = 0;
        in.reg_is_digit = true;
        in.rm = enc_mem(X86_RBX, ENC_NONE, 1, 0x10);
        c.in.gpr[X86_RBX] = DIFF_UNMAPPED_ADDR;
        cg_emit(&c, &in, "nop dword [rbx+0x10] (rbx unmapped)");
        cg_commit(g, &c);
    }
    /* XLAT: AL = [RBX + AL]. */
    for (int n = 0; n < 6; n++) {
        DiffCase c;
        static const uint8_t xlat[] = { 0xd7 };
        cg_begin(g, &c);
        c.in.gpr[X86_RBX] = cg_data_addr(g, 1, 256);
        cg_emit_bytes(&c, xlat, 1, "xlat");
        cg_commit(g, &c);
    }
}
