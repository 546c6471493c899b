/*
 * Data movement and bit operations: MOV in all its forms (including
 * moffs64 and imm64), MOVZX/MOVSX/MOVSXD, LEA over every addressing form
 * and operand size, XCHG, XADD, CMPXCHG, CMPXCHG8B/16B, BSWAP, BT/BTS/BTR/
 * BTC (register and memory, bit offsets reaching outside the operand), and
 * BSF/BSR.
 */
#include <string.h>

#include "case-gen.h"
#include "cases-util.h"

#define FLAGS_BT_UNDEF  (X86_RFLAGS_OF | X86_RFLAGS_SF | X86_RFLAGS_AF | X86_RFLAGS_PF)
#define FLAGS_BSF_UNDEF (FLAGS_BT_UNDEF | X86_RFLAGS_CF)

static const int sizes4[4] = { 1, 2, 4, 8 };

/* Generic "op reg, r/m" or "op r/m, reg" with two-byte or one-byte opcode. */
static void mov_rm(CaseGen *g, const char *name, int size, int oplen, uint8_t op0,
                   uint8_t op1, bool reg_first, int mem_pct, uint32_t undef)
{
    DiffCase c;
    CUOperands o;
    EncInsn in;
    char t0[64];

    cg_begin(g, &c);
    cu_operands(g, &c, size, cg_chance(g, mem_pct), 2, &o);
    in = enc_insn(size, oplen, op0, op1, 0);
    in.reg = o.reg;
    in.rm = o.rm;
    enc_op_text(t0, sizeof(t0), &o.rm, size);
    if (reg_first) {
        cg_emit(&c, &in, "%s %s, %s", name, enc_reg_name(o.reg, size), t0);
    } else {
        cg_emit(&c, &in, "%s %s, %s", name, t0, enc_reg_name(o.reg, size));
    }
    c.flags_undef = undef;
    cg_commit(g, &c);
}

/* MOVZX/MOVSX: destination @dsize, source @ssize. */
static void mov_extend(CaseGen *g, bool sign, int dsize, int ssize)
{
    DiffCase c;
    CUOperands o;
    EncInsn in;
    char t0[64];
    int dst;

    cg_begin(g, &c);
    cu_operands(g, &c, ssize, cg_chance(g, 50), 1, &o);
    if (ssize == 1 && o.rm.kind == ENC_OP_REG && (o.rm.reg & ENC_HI8)) {
        dst = (int)cg_below(g, 8);      /* no REX with AH-BH */
        if (dst == X86_RSP || dsize == 8) {
            return;
        }
    } else {
        dst = cg_pick_reg(g, 0);
    }
    if (ssize == 4) {
        in = enc_insn(dsize, 1, 0x63, 0, 0);
    } else {
        in = enc_insn(dsize, 2, 0x0f, (sign ? 0xbe : 0xb6) + (ssize == 2), 0);
    }
    in.reg = dst;
    in.rm = o.rm;
    if (ssize == 1 && o.rm.kind == ENC_OP_REG && o.rm.reg >= 4 && o.rm.reg < 8) {
        in.force_rex = true;            /* SPL-DIL */
    }
    enc_op_text(t0, sizeof(t0), &o.rm, ssize);
    if (!cg_emit(&c, &in, "%s %s, %s", ssize == 4 ? "movsxd" : sign ? "movsx" : "movzx",
                 enc_reg_name(dst, dsize), t0)) {
        return;
    }
    cg_commit(g, &c);
}

static void mov_imm(CaseGen *g, int size, bool short_form)
{
    DiffCase c;
    CUOperands o;
    EncInsn in;
    char t0[64];

    cg_begin(g, &c);
    cu_operands(g, &c, size, !short_form && cg_chance(g, 50), 1, &o);
    if (short_form) {
        if (o.rm.kind != ENC_OP_REG) {
            return;
        }
        in = enc_insn(size, 1, size == 1 ? 0xb0 : 0xb8, 0, 0);
        in.opreg = o.rm.reg;
        in.imm_size = size;
    } else {
        in = enc_insn(size, 1, size == 1 ? 0xc6 : 0xc7, 0, 0);
        in.reg = 0;
        in.reg_is_digit = true;
        in.rm = o.rm;
        in.imm_size = size == 8 ? 4 : size;
    }
    in.imm = (int64_t)cg_value(g, in.imm_size);
    enc_op_text(t0, sizeof(t0), &o.rm, size);
    cg_emit(&c, &in, "mov %s, %#llx", t0, (unsigned long long)in.imm);
    cg_commit(g, &c);
}

/* MOV AL/AX/EAX/RAX to and from a 64-bit absolute address (A0-A3). */
static void mov_moffs(CaseGen *g, int size, bool store)
{
    DiffCase c;
    EncInsn in;
    uint64_t addr = cg_data_addr(g, 1, 16);
    uint64_t v = cg_value(g, size);

    cg_begin(g, &c);
    cg_patch(&c, addr, &v, size);
    in = enc_insn(size, 1, (store ? 0xa2 : 0xa0) + (size != 1), 0, 0);
    in.imm_size = 8;
    in.imm = (int64_t)addr;
    cg_emit(&c, &in, store ? "mov [%#llx], %s" : "mov %2$s, [%1$#llx]",
            (unsigned long long)addr, enc_reg_name(X86_RAX, size));
    cg_commit(g, &c);
}

/* LEA: any base/index values; the address is never accessed. */
static void mov_lea(CaseGen *g, int size)
{
    DiffCase c;
    EncInsn in;
    EncOp m;
    char t0[64];
    int dst = cg_pick_reg(g, 0);
    int form = (int)cg_below(g, 6);
    int b = cg_pick_reg(g, 0), x;

    cg_begin(g, &c);
    do {
        x = (int)cg_below(g, 16);
    } while (x == X86_RSP);
    if (cg_chance(g, 15)) {
        b = X86_RSP;
    }
    switch (form) {
    case 0:
        m = enc_mem(b, ENC_NONE, 1, 0);
        break;
    case 1:
        m = enc_mem(b, ENC_NONE, 1, (int32_t)cg_below(g, 256) - 128);
        m.disp_size = 1;
        break;
    case 2:
        m = enc_mem(b, x, 1 << cg_below(g, 4), (int32_t)cg_rand(g));
        break;
    case 3:
        m = enc_mem(ENC_NONE, x, 1 << cg_below(g, 4), (int32_t)cg_rand(g));
        break;
    case 4:
        m = enc_rip(DIFF_CODE_ADDR + cg_below(g, 0x100000) - 0x80000);
        break;
    default:
        m = enc_mem(b, x, 1 << cg_below(g, 4), (int32_t)cg_below(g, 256) - 128);
        break;
    }
    m.addr32 = form != 4 && cg_chance(g, 25);
    in = enc_insn(size, 1, 0x8d, 0, 0);
    in.reg = dst;
    in.rm = m;
    enc_op_text(t0, sizeof(t0), &m, 0);
    cg_emit(&c, &in, "lea %s, %s", enc_reg_name(dst, size), t0);
    cg_commit(g, &c);
}

void cu_xchg_like(CaseGen *g, int size, bool lock)
{
    static const char *const names[3] = { "xchg", "xadd", "cmpxchg" };
    int which = (int)cg_below(g, 3);
    DiffCase c;
    CUOperands o;
    EncInsn in;
    char t0[64];

    cg_begin(g, &c);
    cu_operands(g, &c, size, true, 2, &o);
    if (which == 2) {
        if ((o.used & (1u << X86_RAX)) || o.reg == X86_RAX) {
            return;
        }
        /* Half the time the comparison succeeds. */
        if (cg_chance(g, 50)) {
            uint64_t v = 0;
            memcpy(&v, c.patch[c.npatch - 1].bytes, size);
            cu_set_reg(g, &c, X86_RAX, size, v);
        }
    }
    if (which == 0) {
        in = enc_insn(size, 1, 0x86 + (size != 1), 0, 0);
    } else {
        in = enc_insn(size, 2, 0x0f, (which == 1 ? 0xc0 : 0xb0) + (size != 1), 0);
    }
    in.reg = o.reg;
    in.rm = o.rm;
    if (lock) {
        in.prefix[in.nprefix++] = 0xf0;
    }
    enc_op_text(t0, sizeof(t0), &o.rm, size);
    cg_emit(&c, &in, "%s%s %s, %s", lock ? "lock " : "", names[which], t0,
            enc_reg_name(o.reg, size));
    cg_commit(g, &c);
}

/* XCHG/XADD/CMPXCHG with register operands, XCHG with the 90+r form. */
static void mov_xchg_reg(CaseGen *g, int size)
{
    for (int n = 0; n < 6; n++) {
        mov_rm(g, "xchg", size, 1, 0x86 + (size != 1), 0, false, 0, 0);
        mov_rm(g, "xadd", size, 2, 0x0f, 0xc0 + (size != 1), false, 0, 0);
        mov_rm(g, "cmpxchg", size, 2, 0x0f, 0xb0 + (size != 1), false, 0, 0);
    }
    for (int n = 0; n < 4 && size != 1; n++) {
        DiffCase c;
        EncInsn in = enc_insn(size, 1, 0x90, 0, 0);
        int r = (int)cg_below(g, 16);
        cg_begin(g, &c);
        in.opreg = r;
        cg_emit(&c, &in, "xchg %s, %s", enc_reg_name(X86_RAX, size), enc_reg_name(r, size));
        cg_commit(g, &c);
    }
    /* CMPXCHG with equal accumulator: the success path on registers. */
    for (int n = 0; n < 4; n++) {
        DiffCase c;
        EncInsn in = enc_insn(size, 2, 0x0f, 0xb0 + (size != 1), 0);
        int r = cg_pick_reg(g, 1u << X86_RAX), d = cg_pick_reg(g, (1u << X86_RAX) | (1u << r));
        cg_begin(g, &c);
        c.in.gpr[d] = c.in.gpr[X86_RAX];
        in.reg = r;
        in.rm = enc_reg(d);
        if (cg_emit(&c, &in, "cmpxchg %s, %s (equal)", enc_reg_name(d, size),
                    enc_reg_name(r, size))) {
            cg_commit(g, &c);
        }
    }
}

static void mov_cmpxchg_wide(CaseGen *g, bool wide)
{
    DiffCase c;
    EncInsn in;
    uint32_t used = (1u << X86_RAX) | (1u << X86_RDX) | (1u << X86_RBX) | (1u << X86_RCX);
    int size = wide ? 16 : 8;
    uint64_t addr = cg_data_addr(g, size, size);
    uint64_t v[2] = { cg_value(g, 8), cg_value(g, 8) };
    char t0[64];
    EncOp m;

    cg_begin(g, &c);
    cg_patch(&c, addr, v, size);
    if (cg_chance(g, 50)) {
        c.in.gpr[X86_RAX] = wide ? v[0] : (c.in.gpr[X86_RAX] & ~0xffffffffULL) | (uint32_t)v[0];
        c.in.gpr[X86_RDX] = wide ? v[1]
                                 : (c.in.gpr[X86_RDX] & ~0xffffffffULL) | (v[0] >> 32);
    }
    m = cg_mem(g, &c, addr, &used);
    in = enc_insn(wide ? 8 : 4, 2, 0x0f, 0xc7, 0);
    in.reg = 1;
    in.reg_is_digit = true;
    in.rm = m;
    if (cg_chance(g, 50)) {
        in.prefix[in.nprefix++] = 0xf0;
    }
    enc_op_text(t0, sizeof(t0), &m, wide ? 16 : 8);
    cg_emit(&c, &in, "%s%s %s", in.nprefix ? "lock " : "", wide ? "cmpxchg16b" : "cmpxchg8b",
            t0);
    cg_commit(g, &c);
}

static void mov_bswap(CaseGen *g, int size)
{
    DiffCase c;
    EncInsn in = enc_insn(size, 2, 0x0f, 0xc8, 0);
    int r = (int)cg_below(g, 16);

    cg_begin(g, &c);
    in.opreg = r;
    cg_emit(&c, &in, "bswap %s", enc_reg_name(r, size));
    cg_commit(g, &c);
}

void cases_mov(CaseGen *g)
{
    for (int s = 0; s < 4; s++) {
        int size = sizes4[s];
        for (int n = 0; n < 30; n++) {
            mov_rm(g, "mov", size, 1, 0x88 + (size != 1), 0, false, 70, 0);
            mov_rm(g, "mov", size, 1, 0x8a + (size != 1), 0, true, 70, 0);
        }
        for (int n = 0; n < 8; n++) {
            mov_imm(g, size, true);
            mov_imm(g, size, false);
        }
        for (int n = 0; n < 3; n++) {
            mov_moffs(g, size, false);
            mov_moffs(g, size, true);
        }
        mov_xchg_reg(g, size);
        for (int n = 0; n < 4; n++) {
            cu_xchg_like(g, size, false);
        }
        if (size >= 2) {
            for (int n = 0; n < 20; n++) {
                mov_lea(g, size);
            }
        }
        if (size >= 4) {
            for (int n = 0; n < 6; n++) {
                mov_bswap(g, size);
            }
        }
    }
    for (int n = 0; n < 6; n++) {
        mov_extend(g, false, 2, 1);
        mov_extend(g, false, 4, 1);
        mov_extend(g, false, 8, 1);
        mov_extend(g, false, 4, 2);
        mov_extend(g, false, 8, 2);
        mov_extend(g, true, 2, 1);
        mov_extend(g, true, 4, 1);
        mov_extend(g, true, 8, 1);
        mov_extend(g, true, 4, 2);
        mov_extend(g, true, 8, 2);
        mov_extend(g, true, 8, 4);
        mov_extend(g, true, 4, 4);
    }
    for (int n = 0; n < 12; n++) {
        mov_cmpxchg_wide(g, false);
    }
}

void cases_cx16(CaseGen *g)
{
    for (int n = 0; n < 24; n++) {
        mov_cmpxchg_wide(g, true);
    }
}

/* BT family with a register bit offset: memory forms reach other words. */
static void bit_reg(CaseGen *g, int digit, int size, bool mem)
{
    static const char *const names[4] = { "bt", "bts", "btr", "btc" };
    DiffCase c;
    EncInsn in;
    EncOp rm;
    char t0[64];
    uint32_t used = 0;
    int off_reg = cg_pick_reg(g, 0);
    int64_t bit;

    cg_begin(g, &c);
    used |= 1u << off_reg;
    if (mem) {
        /* Anywhere from 0x1000 bytes below to 0x800 above the operand. */
        uint64_t addr = DIFF_DATA_ADDR + 0x1000 + (cg_below(g, 64) & ~(uint64_t)(size - 1));
        bit = (int64_t)cg_below(g, 0x1800 * 8) - 0x1000 * 8;
        if (cg_chance(g, 30)) {
            bit = (int64_t)cg_below(g, size * 8);
        }
        rm = cg_mem(g, &c, addr, &used);
        /* The offset is signed at the operand size; bits above it are noise. */
        cu_set_reg(g, &c, off_reg, size, (uint64_t)bit);
    } else {
        int r = cg_pick_reg(g, used);
        rm = enc_reg(r);
        cu_set_reg(g, &c, r, size, cg_value(g, size));
        cu_set_reg(g, &c, off_reg, size, cg_rand(g));
    }
    in = enc_insn(size, 2, 0x0f, 0xa3 + 8 * digit, 0);
    in.reg = off_reg;
    in.rm = rm;
    if (mem && digit && cg_chance(g, 30)) {
        in.prefix[in.nprefix++] = 0xf0;
    }
    enc_op_text(t0, sizeof(t0), &rm, size);
    cg_emit(&c, &in, "%s%s %s, %s", in.nprefix ? "lock " : "", names[digit], t0,
            enc_reg_name(off_reg, size));
    c.flags_undef = FLAGS_BT_UNDEF;
    cg_commit(g, &c);
}

static void bit_imm(CaseGen *g, int digit, int size)
{
    static const char *const names[4] = { "bt", "bts", "btr", "btc" };
    DiffCase c;
    CUOperands o;
    EncInsn in;
    char t0[64];

    cg_begin(g, &c);
    cu_operands(g, &c, size, cg_chance(g, 40), 1, &o);
    in = enc_insn(size, 2, 0x0f, 0xba, 0);
    in.reg = 4 + digit;
    in.reg_is_digit = true;
    in.rm = o.rm;
    in.imm_size = 1;
    in.imm = (int64_t)cg_below(g, 256);
    enc_op_text(t0, sizeof(t0), &o.rm, size);
    cg_emit(&c, &in, "%s %s, %u", names[digit], t0, (unsigned)in.imm);
    c.flags_undef = FLAGS_BT_UNDEF;
    cg_commit(g, &c);
}

static void bit_scan(CaseGen *g, bool reverse, int size)
{
    DiffCase c;
    CUOperands o;
    EncInsn in;
    char t0[64];

    cg_begin(g, &c);
    cu_operands(g, &c, size, cg_chance(g, 30), 2, &o);
    if (cg_chance(g, 25)) {
        uint64_t zero = 0;
        if (o.rm.kind == ENC_OP_MEM) {
            cg_patch(&c, o.addr, &zero, size);
        } else {
            cu_set_reg(g, &c, o.rm.reg, size, 0);
        }
    }
    in = enc_insn(size, 2, 0x0f, reverse ? 0xbd : 0xbc, 0);
    in.reg = o.reg;
    in.rm = o.rm;
    enc_op_text(t0, sizeof(t0), &o.rm, size);
    cg_emit(&c, &in, "%s %s, %s", reverse ? "bsr" : "bsf", enc_reg_name(o.reg, size), t0);
    c.flags_undef = FLAGS_BSF_UNDEF;
    cg_commit(g, &c);
}

void cases_bit(CaseGen *g)
{
    for (int s = 1; s < 4; s++) {
        int size = sizes4[s];
        for (int digit = 0; digit < 4; digit++) {
            for (int n = 0; n < 8; n++) {
                bit_reg(g, digit, size, false);
                bit_reg(g, digit, size, true);
                bit_imm(g, digit, size);
            }
        }
        for (int n = 0; n < 16; n++) {
            bit_scan(g, false, size);
            bit_scan(g, true, size);
        }
    }
}
