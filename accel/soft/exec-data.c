/*
 * Data movement: MOV forms, the stack (PUSH/POP/ENTER/LEAVE), XCHG,
 * flag-register transfers, sign/zero extension, CMOV/SETcc.
 */
#include "soft-internal.h"

unsigned soft_stack_size(const SoftCPU *cpu)
{
    if (cpu->long64) {
        return 8;
    }
    return cpu->segs[X86_SEG_SS].db ? 4 : 2;
}

static void set_sp(SoftCPU *cpu, uint64_t sp)
{
    unsigned ss = soft_stack_size(cpu);
    uint64_t m = size_mask(ss);

    cpu->regs[X86_RSP] = ss == 8 ? sp : (cpu->regs[X86_RSP] & ~m) | (sp & m);
}

void soft_push(SoftCPU *cpu, unsigned size, uint64_t v)
{
    uint64_t m = size_mask(soft_stack_size(cpu));
    uint64_t sp = (cpu->regs[X86_RSP] - size) & m;

    soft_write(cpu, X86_SEG_SS, sp, size, v);
    set_sp(cpu, sp);
}

uint64_t soft_pop(SoftCPU *cpu, unsigned size)
{
    uint64_t m = size_mask(soft_stack_size(cpu));
    uint64_t sp = cpu->regs[X86_RSP] & m;
    uint64_t v = soft_read(cpu, X86_SEG_SS, sp, size);

    set_sp(cpu, sp + size);
    return v;
}

uint64_t soft_stack_peek(SoftCPU *cpu, unsigned size, unsigned offset)
{
    uint64_t m = size_mask(soft_stack_size(cpu));

    return soft_read(cpu, X86_SEG_SS, (cpu->regs[X86_RSP] + offset) & m, size);
}

void op_mov_rm_r(SoftCPU *cpu, const Insn *in)
{
    rm_write(cpu, in, in->osize, reg_read(cpu, in, in->reg, in->osize));
}

void op_mov_r_rm(SoftCPU *cpu, const Insn *in)
{
    reg_write(cpu, in, in->reg, in->osize, rm_read(cpu, in, in->osize));
}

void op_mov_r_imm(SoftCPU *cpu, const Insn *in)
{
    unsigned r = (in->op & 7) | ((in->rex & 1) << 3);

    reg_write(cpu, in, r, in->osize, in->imm);
}

void op_mov_rm_imm(SoftCPU *cpu, const Insn *in)
{
    if ((in->reg & 7) != 0) {
        soft_ud(cpu);
    }
    rm_write(cpu, in, in->osize, in->imm);
}

void op_mov_moffs(SoftCPU *cpu, const Insn *in)
{
    uint64_t ea = insn_ea(cpu, in);

    if (in->op & 2) {
        soft_write(cpu, in->seg, ea, in->osize, reg_read(cpu, in, X86_RAX, in->osize));
    } else {
        reg_write(cpu, in, X86_RAX, in->osize, soft_read(cpu, in->seg, ea, in->osize));
    }
}

void op_mov_sreg_store(SoftCPU *cpu, const Insn *in)
{
    unsigned s = in->reg & 7;
    uint16_t sel;

    if (s > X86_SEG_GS) {
        soft_ud(cpu);
    }
    sel = cpu->segs[s].selector;
    if (in->mod == 3) {
        reg_write(cpu, in, in->rm, in->osize == 2 ? 2 : in->osize, sel);
    } else {
        soft_write(cpu, in->seg, insn_ea(cpu, in), 2, sel);
    }
}

void op_mov_sreg_load(SoftCPU *cpu, const Insn *in)
{
    unsigned s = in->reg & 7;

    if (s > X86_SEG_GS || s == X86_SEG_CS) {
        soft_ud(cpu);
    }
    soft_load_seg(cpu, s, rm_read(cpu, in, 2));
    if (s == X86_SEG_SS) {
        cpu->shadow = 1;
    }
}

void op_lea(SoftCPU *cpu, const Insn *in)
{
    if (in->mod == 3) {
        soft_ud(cpu);
    }
    reg_write(cpu, in, in->reg, in->osize, insn_ea(cpu, in));
}

/* XCHG with memory is always locked. */
static uint64_t xchg_mem(SoftCPU *cpu, const Insn *in, uint64_t v)
{
    uint64_t ea = insn_ea(cpu, in);
    uint8_t *p = soft_rmw_ptr(cpu, in->seg, ea, in->osize);
    SoftLockedAccess la;
    uint64_t old;

    if (p && !((uintptr_t)p & (in->osize - 1))) {
        switch (in->osize) {
        case 1: return __atomic_exchange_n(p, (uint8_t)v, __ATOMIC_SEQ_CST);
        case 2: return __atomic_exchange_n((uint16_t *)p, (uint16_t)v, __ATOMIC_SEQ_CST);
        case 4: return __atomic_exchange_n((uint32_t *)p, (uint32_t)v, __ATOMIC_SEQ_CST);
        default: return __atomic_exchange_n((uint64_t *)p, v, __ATOMIC_SEQ_CST);
        }
    }
    soft_locked_prepare(cpu, in->seg, ea, in->osize, &la);
    soft_lock_global();
    old = soft_locked_load(cpu, &la, 0, in->osize);
    soft_locked_store(cpu, &la, 0, in->osize, v);
    soft_unlock_global();
    return old;
}

void op_xchg(SoftCPU *cpu, const Insn *in)
{
    uint64_t r = reg_read(cpu, in, in->reg, in->osize);

    if (in->mod == 3) {
        uint64_t o = reg_read(cpu, in, in->rm, in->osize);
        reg_write(cpu, in, in->rm, in->osize, r);
        reg_write(cpu, in, in->reg, in->osize, o);
        return;
    }
    reg_write(cpu, in, in->reg, in->osize, xchg_mem(cpu, in, r));
}

void op_xchg_ax(SoftCPU *cpu, const Insn *in)
{
    unsigned r = (in->op & 7) | ((in->rex & 1) << 3);
    uint64_t a, b;

    if (r == X86_RAX) {
        return;                 /* NOP, or PAUSE with F3 */
    }
    a = reg_read(cpu, in, X86_RAX, in->osize);
    b = reg_read(cpu, in, r, in->osize);
    reg_write(cpu, in, X86_RAX, in->osize, b);
    reg_write(cpu, in, r, in->osize, a);
}

void op_push_r(SoftCPU *cpu, const Insn *in)
{
    unsigned r = (in->op & 7) | ((in->rex & 1) << 3);

    soft_push(cpu, in->osize, cpu->regs[r]);
}

void op_pop_r(SoftCPU *cpu, const Insn *in)
{
    unsigned r = (in->op & 7) | ((in->rex & 1) << 3);
    uint64_t v = soft_pop(cpu, in->osize);

    reg_write(cpu, in, r, in->osize, v);
}

void op_push_imm(SoftCPU *cpu, const Insn *in)
{
    soft_push(cpu, in->osize, in->imm);
}

void op_pop_rm(SoftCPU *cpu, const Insn *in)
{
    uint64_t m = size_mask(soft_stack_size(cpu));
    uint64_t old = cpu->regs[X86_RSP];
    uint64_t v, ea;

    if ((in->reg & 7) != 0) {
        soft_ud(cpu);
    }
    v = soft_read(cpu, X86_SEG_SS, old & m, in->osize);
    set_sp(cpu, (old & m) + in->osize);
    if (in->mod == 3) {
        reg_write(cpu, in, in->rm, in->osize, v);
        return;
    }
    /* The address uses the incremented stack pointer. */
    ea = insn_ea(cpu, in);
    cpu->regs[X86_RSP] = old;
    soft_write(cpu, in->seg, ea, in->osize, v);
    set_sp(cpu, (old & m) + in->osize);
}

static int sreg_of(const Insn *in)
{
    switch (in->op) {
    case 0x06: case 0x07: return X86_SEG_ES;
    case 0x0e: return X86_SEG_CS;
    case 0x16: case 0x17: return X86_SEG_SS;
    case 0x1e: case 0x1f: return X86_SEG_DS;
    case 0x1a0: case 0x1a1: return X86_SEG_FS;
    default: return X86_SEG_GS;
    }
}

void op_push_sreg(SoftCPU *cpu, const Insn *in)
{
    soft_push(cpu, in->osize, cpu->segs[sreg_of(in)].selector);
}

void op_pop_sreg(SoftCPU *cpu, const Insn *in)
{
    int s = sreg_of(in);
    uint16_t sel = soft_stack_peek(cpu, in->osize, 0);

    soft_load_seg(cpu, s, sel);
    set_sp(cpu, (cpu->regs[X86_RSP] & size_mask(soft_stack_size(cpu))) + in->osize);
    if (s == X86_SEG_SS) {
        cpu->shadow = 1;
    }
}

void op_pusha(SoftCPU *cpu, const Insn *in)
{
    uint64_t m = size_mask(soft_stack_size(cpu));
    uint64_t sp = cpu->regs[X86_RSP] & m;
    uint64_t p = sp;

    for (int r = X86_RAX; r <= X86_RDI; r++) {
        p = (p - in->osize) & m;
        soft_write(cpu, X86_SEG_SS, p, in->osize, cpu->regs[r]);
    }
    set_sp(cpu, p);
}

void op_popa(SoftCPU *cpu, const Insn *in)
{
    uint64_t m = size_mask(soft_stack_size(cpu));
    uint64_t sp = cpu->regs[X86_RSP] & m;
    uint64_t vals[8];

    for (int r = X86_RDI; r >= X86_RAX; r--) {
        vals[r] = soft_read(cpu, X86_SEG_SS, sp, in->osize);
        sp = (sp + in->osize) & m;
    }
    for (int r = X86_RAX; r <= X86_RDI; r++) {
        if (r != X86_RSP) {
            reg_write(cpu, in, r, in->osize, vals[r]);
        }
    }
    set_sp(cpu, sp);
}

void op_pushf(SoftCPU *cpu, const Insn *in)
{
    if (cpu_vm86(cpu) && cpu_iopl(cpu) < 3) {
        soft_gp0(cpu);
    }
    soft_push(cpu, in->osize, soft_get_rflags(cpu) & ~(X86_RFLAGS_VM | X86_RFLAGS_RF));
}

void op_popf(SoftCPU *cpu, const Insn *in)
{
    uint64_t mask = 0x3f7fd5ULL & ~(X86_RFLAGS_VM | X86_RFLAGS_VIP | X86_RFLAGS_VIF);
    uint64_t v, old;

    if (cpu_vm86(cpu) && cpu_iopl(cpu) < 3) {
        soft_gp0(cpu);
    }
    v = soft_stack_peek(cpu, in->osize, 0);
    if (cpu->cpl > 0) {
        mask &= ~X86_RFLAGS_IOPL;
    }
    if (cpu->cpl > cpu_iopl(cpu)) {
        mask &= ~X86_RFLAGS_IF;
    }
    if (in->osize == 2) {
        mask &= 0xffff;
    }
    old = soft_get_rflags(cpu);
    soft_set_rflags(cpu, ((old & ~mask) | (v & mask)) & ~X86_RFLAGS_RF);
    set_sp(cpu, (cpu->regs[X86_RSP] & size_mask(soft_stack_size(cpu))) + in->osize);
}

void op_sahf(SoftCPU *cpu, const Insn *in)
{
    uint64_t ah = (cpu->regs[X86_RAX] >> 8) & 0xd5;

    soft_set_arith(cpu, (soft_flags_arith(cpu) & X86_RFLAGS_OF) | ah);
}

void op_lahf(SoftCPU *cpu, const Insn *in)
{
    uint64_t f = (soft_get_rflags(cpu) & 0xd5) | 2;

    cpu->regs[X86_RAX] = (cpu->regs[X86_RAX] & ~0xff00ULL) | (f << 8);
}

void op_movzx(SoftCPU *cpu, const Insn *in)
{
    unsigned ssize = (in->op & 1) ? 2 : 1;

    reg_write(cpu, in, in->reg, in->osize, rm_read(cpu, in, ssize));
}

void op_movsx(SoftCPU *cpu, const Insn *in)
{
    unsigned ssize = (in->op & 1) ? 2 : 1;

    reg_write(cpu, in, in->reg, in->osize, sext(rm_read(cpu, in, ssize), ssize));
}

void op_movsxd(SoftCPU *cpu, const Insn *in)
{
    if (!cpu->long64) {
        op_arpl(cpu, in);
        return;
    }
    if (in->osize == 8) {
        reg_write(cpu, in, in->reg, 8, sext(rm_read(cpu, in, 4), 4));
    } else {
        reg_write(cpu, in, in->reg, in->osize, rm_read(cpu, in, in->osize));
    }
}

void op_arpl(SoftCPU *cpu, const Insn *in)
{
    uint64_t d, s, f;

    if (!cpu_pe(cpu) || cpu_vm86(cpu)) {
        soft_ud(cpu);
    }
    d = rm_read(cpu, in, 2);
    s = reg_read(cpu, in, in->reg, 2);
    f = soft_flags_arith(cpu) & ~X86_RFLAGS_ZF;
    if ((d & 3) < (s & 3)) {
        rm_write(cpu, in, 2, (d & ~3ULL) | (s & 3));
        f |= X86_RFLAGS_ZF;
    }
    soft_set_arith(cpu, f);
}

void op_cmov(SoftCPU *cpu, const Insn *in)
{
    uint64_t v = rm_read(cpu, in, in->osize);

    if (soft_cond(cpu, in->op & 0xf)) {
        reg_write(cpu, in, in->reg, in->osize, v);
    } else if (in->osize == 4) {
        reg_write(cpu, in, in->reg, 4, reg_read(cpu, in, in->reg, 4));
    }
}

void op_setcc(SoftCPU *cpu, const Insn *in)
{
    rm_write(cpu, in, 1, soft_cond(cpu, in->op & 0xf));
}

void op_enter(SoftCPU *cpu, const Insn *in)
{
    unsigned ss = soft_stack_size(cpu);
    uint64_t m = size_mask(ss);
    unsigned size = in->imm & 0xffff, level = in->imm2 & 31, os = in->osize;
    uint64_t sp = cpu->regs[X86_RSP] & m, bp = cpu->regs[X86_RBP] & m;
    uint64_t frame;

    sp = (sp - os) & m;
    soft_write(cpu, X86_SEG_SS, sp, os, cpu->regs[X86_RBP]);
    frame = sp;
    if (level) {
        for (unsigned i = 1; i < level; i++) {
            bp = (bp - os) & m;
            uint64_t v = soft_read(cpu, X86_SEG_SS, bp, os);
            sp = (sp - os) & m;
            soft_write(cpu, X86_SEG_SS, sp, os, v);
        }
        sp = (sp - os) & m;
        soft_write(cpu, X86_SEG_SS, sp, os, frame);
    }
    sp = (sp - size) & m;
    if (os == 2) {
        reg_write(cpu, in, X86_RBP, 2, frame);
    } else {
        reg_write(cpu, in, X86_RBP, ss == 2 ? 2 : ss, frame);
    }
    set_sp(cpu, sp);
}

void op_leave(SoftCPU *cpu, const Insn *in)
{
    unsigned ss = soft_stack_size(cpu);
    uint64_t m = size_mask(ss);
    uint64_t bp = cpu->regs[X86_RBP] & m;
    uint64_t v = soft_read(cpu, X86_SEG_SS, bp, in->osize);

    set_sp(cpu, bp + in->osize);
    reg_write(cpu, in, X86_RBP, in->osize, v);
}

void op_lfp(SoftCPU *cpu, const Insn *in)
{
    static const int seg_for[] = { X86_SEG_ES, X86_SEG_DS };
    uint64_t ea, off;
    uint16_t sel;
    int s;

    if (in->mod == 3) {
        soft_ud(cpu);
    }
    switch (in->op) {
    case 0xc4: case 0xc5: s = seg_for[in->op & 1]; break;
    case 0x1b2: s = X86_SEG_SS; break;
    case 0x1b4: s = X86_SEG_FS; break;
    default: s = X86_SEG_GS; break;
    }
    ea = insn_ea(cpu, in);
    off = soft_read(cpu, in->seg, ea, in->osize);
    sel = soft_read(cpu, in->seg, (ea + in->osize) & size_mask(in->asize), 2);
    soft_load_seg(cpu, s, sel);
    reg_write(cpu, in, in->reg, in->osize, off);
}

void op_xlat(SoftCPU *cpu, const Insn *in)
{
    uint64_t ea = (cpu->regs[X86_RBX] + (cpu->regs[X86_RAX] & 0xff)) & size_mask(in->asize);

    reg_write(cpu, in, X86_RAX, 1, soft_read(cpu, in->seg, ea, 1));
}

void op_flagop(SoftCPU *cpu, const Insn *in)
{
    uint64_t f;

    switch (in->op) {
    case 0xf5:
        f = soft_flags_arith(cpu);
        soft_set_arith(cpu, f ^ X86_RFLAGS_CF);
        break;
    case 0xf8:
        soft_set_arith(cpu, soft_flags_arith(cpu) & ~X86_RFLAGS_CF);
        break;
    case 0xf9:
        soft_set_arith(cpu, soft_flags_arith(cpu) | X86_RFLAGS_CF);
        break;
    case 0xfc:
        cpu->rflags &= ~X86_RFLAGS_DF;
        break;
    case 0xfd:
        cpu->rflags |= X86_RFLAGS_DF;
        break;
    }
}

void op_nop(SoftCPU *cpu, const Insn *in)
{
}

void op_movnti(SoftCPU *cpu, const Insn *in)
{
    if (in->mod == 3 || in->osize == 2) {
        soft_ud(cpu);
    }
    soft_write(cpu, in->seg, insn_ea(cpu, in), in->osize, reg_read(cpu, in, in->reg, in->osize));
}

void op_bound(SoftCPU *cpu, const Insn *in)
{
    uint64_t ea;
    int64_t lo, hi, idx;

    if (in->mod == 3) {
        soft_ud(cpu);
    }
    ea = insn_ea(cpu, in);
    lo = sext(soft_read(cpu, in->seg, ea, in->osize), in->osize);
    hi = sext(soft_read(cpu, in->seg, (ea + in->osize) & size_mask(in->asize), in->osize), in->osize);
    idx = sext(reg_read(cpu, in, in->reg, in->osize), in->osize);
    if (idx < lo || idx > hi) {
        soft_raise_noerr(cpu, EXC_BR);
    }
}
