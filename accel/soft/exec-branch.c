/*
 * Control transfer: near and far jumps, calls and returns, conditional
 * branches and loops, INT n / INT3 / INTO / INT1, IRET.
 */
#include "soft-internal.h"

/* Check and set a near branch target of operand size @osize. */
static uint64_t near_target(SoftCPU *cpu, uint64_t target, unsigned osize)
{
    if (cpu->long64) {
        if (osize == 2) {
            target &= 0xffff;
        } else if (osize == 4) {
            target &= 0xffffffff;
        }
        if ((uint64_t)(((int64_t)target >> 47) + 1) > 1) {
            soft_gp0(cpu);
        }
        return target;
    }
    target &= osize == 2 ? 0xffff : 0xffffffff;
    if (target > cpu->segs[X86_SEG_CS].limit) {
        soft_gp0(cpu);
    }
    return target;
}

void op_jcc(SoftCPU *cpu, const Insn *in)
{
    if (soft_cond(cpu, in->op & 0xf)) {
        cpu->next_rip = near_target(cpu, cpu->next_rip + in->imm, in->osize);
    }
}

void op_jmp_rel(SoftCPU *cpu, const Insn *in)
{
    cpu->next_rip = near_target(cpu, cpu->next_rip + in->imm, in->osize);
}

static void near_call(SoftCPU *cpu, uint64_t target, unsigned osize)
{
    target = near_target(cpu, target, osize);
    soft_push(cpu, osize, cpu->next_rip);
    cpu->next_rip = target;
}

void op_call_rel(SoftCPU *cpu, const Insn *in)
{
    near_call(cpu, cpu->next_rip + in->imm, in->osize);
}

void op_ret(SoftCPU *cpu, const Insn *in)
{
    uint64_t target = near_target(cpu, soft_stack_peek(cpu, in->osize, 0), in->osize);
    unsigned ss = soft_stack_size(cpu);
    uint64_t m = size_mask(ss);
    uint64_t sp = (cpu->regs[X86_RSP] + in->osize + (in->op == 0xc2 ? in->imm : 0)) & m;

    cpu->regs[X86_RSP] = ss == 8 ? sp : (cpu->regs[X86_RSP] & ~m) | sp;
    cpu->next_rip = target;
}

void op_retf(SoftCPU *cpu, const Insn *in)
{
    soft_far_ret(cpu, in->osize, in->op == 0xca ? in->imm : 0);
}

void op_jmpf(SoftCPU *cpu, const Insn *in)
{
    soft_far_jump(cpu, in->imm2, in->imm, in->osize);
}

void op_callf(SoftCPU *cpu, const Insn *in)
{
    soft_far_call(cpu, in->imm2, in->imm, in->osize);
}

void op_loop(SoftCPU *cpu, const Insn *in)
{
    uint64_t m = size_mask(in->asize);
    uint64_t count = cpu->regs[X86_RCX] & m;
    bool take;

    if (in->op == 0xe3) {
        take = count == 0;
    } else {
        count = (count - 1) & m;
        take = count != 0;
        if (in->op == 0xe0) {
            take = take && !soft_cond(cpu, 4);
        } else if (in->op == 0xe1) {
            take = take && soft_cond(cpu, 4);
        }
    }
    if (take) {
        cpu->next_rip = near_target(cpu, cpu->next_rip + in->imm, in->osize);
    }
    if (in->op != 0xe3) {
        cpu->regs[X86_RCX] = in->asize == 8 ? count :
            in->asize == 4 ? count : (cpu->regs[X86_RCX] & ~0xffffULL) | count;
    }
}

static void far_operand(SoftCPU *cpu, const Insn *in, uint16_t *sel, uint64_t *off)
{
    uint64_t ea;

    if (in->mod == 3) {
        soft_ud(cpu);
    }
    ea = insn_ea(cpu, in);
    *off = soft_read(cpu, in->seg, ea, in->osize);
    *sel = soft_read(cpu, in->seg, (ea + in->osize) & size_mask(in->asize), 2);
}

void op_grp5(SoftCPU *cpu, const Insn *in)
{
    unsigned r = in->reg & 7;
    unsigned nsize = cpu->long64 ? 8 : in->osize;
    uint64_t v, off;
    uint16_t sel;

    if (in->lock && r > 1) {
        soft_ud(cpu);
    }
    switch (r) {
    case 0: case 1:
        soft_incdec_rm(cpu, in, r);
        return;
    case 2:
        v = rm_read(cpu, in, nsize);
        near_call(cpu, v, nsize);
        return;
    case 3:
        far_operand(cpu, in, &sel, &off);
        soft_far_call(cpu, sel, off, in->osize);
        return;
    case 4:
        v = rm_read(cpu, in, nsize);
        cpu->next_rip = near_target(cpu, v, nsize);
        return;
    case 5:
        far_operand(cpu, in, &sel, &off);
        soft_far_jump(cpu, sel, off, in->osize);
        return;
    case 6: {
        unsigned psize = cpu->long64 ? (in->has66 ? 2 : 8) : in->osize;
        v = rm_read(cpu, in, psize);
        soft_push(cpu, psize, v);
        return;
    }
    default:
        soft_ud(cpu);
    }
}

void op_int(SoftCPU *cpu, const Insn *in)
{
    if (cpu_vm86(cpu) && cpu_iopl(cpu) < 3) {
        soft_gp0(cpu);
    }
    soft_deliver_interrupt(cpu, in->imm & 0xff, true, false, 0, cpu->next_rip);
}

void op_int3(SoftCPU *cpu, const Insn *in)
{
    soft_deliver_interrupt(cpu, EXC_BP, true, false, 0, cpu->next_rip);
}

void op_into(SoftCPU *cpu, const Insn *in)
{
    if (soft_cond(cpu, 0)) {
        soft_deliver_interrupt(cpu, EXC_OF, true, false, 0, cpu->next_rip);
    }
}

void op_int1(SoftCPU *cpu, const Insn *in)
{
    soft_deliver_interrupt(cpu, EXC_DB, false, false, 0, cpu->next_rip);
}

void op_iret(SoftCPU *cpu, const Insn *in)
{
    soft_iret(cpu, in->osize);
}
