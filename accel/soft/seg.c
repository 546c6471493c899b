/*
 * Segment descriptors: loading segment registers with the protected-mode
 * checks, and the control transfers that change CS (far JMP/CALL/RET, IRET).
 */
#include "soft-internal.h"

#define DESC_S      (1u << 12)
#define DESC_P      (1u << 15)
#define DESC_CODE   (1u << 11)
#define DESC_CONF   (1u << 10)
#define DESC_RW     (1u << 9)
#define DESC_L      (1u << 21)
#define DESC_DB     (1u << 22)

void soft_seg_from_desc(X86Segment *s, uint16_t sel, uint32_t lo, uint32_t hi)
{
    s->selector = sel;
    s->base = (lo >> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000);
    s->limit = (lo & 0xffff) | (hi & 0xf0000);
    s->g = (hi >> 23) & 1;
    if (s->g) {
        s->limit = (s->limit << 12) | 0xfff;
    }
    s->type = (hi >> 8) & 0xf;
    s->s = (hi >> 12) & 1;
    s->dpl = (hi >> 13) & 3;
    s->present = (hi >> 15) & 1;
    s->avl = (hi >> 20) & 1;
    s->l = (hi >> 21) & 1;
    s->db = (hi >> 22) & 1;
    s->unusable = 0;
}

static uint64_t desc_addr(const SoftCPU *cpu, uint16_t sel)
{
    const X86Segment *ldt = &cpu->segs[X86_SEG_LDT];

    return ((sel & 4) ? ldt->base : cpu->gdt.base) + (sel & ~7);
}

bool soft_read_desc(SoftCPU *cpu, uint16_t sel, uint32_t *lo, uint32_t *hi)
{
    uint64_t limit;

    if (sel & 4) {
        if (cpu->segs[X86_SEG_LDT].unusable || !cpu->segs[X86_SEG_LDT].present) {
            return false;
        }
        limit = cpu->segs[X86_SEG_LDT].limit;
    } else {
        limit = cpu->gdt.limit;
    }
    if ((uint64_t)(sel & ~7) + 7 > limit) {
        return false;
    }
    uint64_t v = soft_lin_read(cpu, desc_addr(cpu, sel), 8, 0);
    *lo = v;
    *hi = v >> 32;
    return true;
}

/* Descriptors are marked accessed on load, as hardware does. */
static void set_accessed(SoftCPU *cpu, uint16_t sel, uint32_t hi)
{
    if (!(hi & (1u << 8))) {
        uint64_t a = desc_addr(cpu, sel) + 5;
        uint8_t *p = soft_lin_ptr(cpu, a, 1, ACC_WRITE, 0);
        if (p) {
            __atomic_fetch_or(p, 1, __ATOMIC_SEQ_CST);
        } else {
            soft_lin_write(cpu, a, 1, ((hi >> 8) & 0xff) | 1, 0);
        }
    }
}

void soft_set_cs_real(SoftCPU *cpu, uint16_t sel)
{
    X86Segment *cs = &cpu->segs[X86_SEG_CS];

    cs->selector = sel;
    cs->base = (uint64_t)sel << 4;
    if (cpu_vm86(cpu)) {
        cs->limit = 0xffff;
        cs->db = 0;
    }
}

void soft_load_cs_desc(SoftCPU *cpu, uint16_t sel, uint32_t lo, uint32_t hi, int cpl)
{
    soft_seg_from_desc(&cpu->segs[X86_SEG_CS], sel, lo, hi);
    cpu->segs[X86_SEG_CS].type |= 1;
    cpu->cpl = cpl;
    soft_cpu_update_mode(cpu);
}

/* MOV/POP/LxS to a data segment register or SS. */
void soft_load_seg(SoftCPU *cpu, int seg, uint16_t sel)
{
    X86Segment *s = &cpu->segs[seg];
    uint32_t lo, hi;
    unsigned dpl, rpl = sel & 3;

    if (!cpu_pe(cpu) || cpu_vm86(cpu)) {
        s->selector = sel;
        s->base = (uint64_t)sel << 4;
        if (cpu_vm86(cpu)) {
            s->limit = 0xffff;
            s->type = 3;
            s->s = 1;
            s->present = 1;
            s->dpl = 3;
            s->db = 0;
            s->unusable = 0;
        }
        return;
    }
    if ((sel & 0xfffc) == 0) {
        if (seg == X86_SEG_SS && (!cpu->long64 || cpu->cpl == 3 || rpl != cpu->cpl)) {
            soft_gp0(cpu);
        }
        memset(s, 0, sizeof(*s));
        s->selector = sel;
        s->unusable = 1;
        if (seg == X86_SEG_SS) {
            s->dpl = cpu->cpl;
            s->db = 1;
        }
        return;
    }
    if (!soft_read_desc(cpu, sel, &lo, &hi)) {
        soft_raise(cpu, EXC_GP, sel & 0xfffc);
    }
    dpl = (hi >> 13) & 3;
    if (seg == X86_SEG_SS) {
        if (!(hi & DESC_S) || (hi & DESC_CODE) || !(hi & DESC_RW) ||
            rpl != cpu->cpl || dpl != cpu->cpl) {
            soft_raise(cpu, EXC_GP, sel & 0xfffc);
        }
        if (!(hi & DESC_P)) {
            soft_raise(cpu, EXC_SS, sel & 0xfffc);
        }
    } else {
        if (!(hi & DESC_S) || ((hi & DESC_CODE) && !(hi & DESC_RW))) {
            soft_raise(cpu, EXC_GP, sel & 0xfffc);
        }
        if ((!(hi & DESC_CODE) || !(hi & DESC_CONF)) &&
            (dpl < cpu->cpl || dpl < rpl)) {
            soft_raise(cpu, EXC_GP, sel & 0xfffc);
        }
        if (!(hi & DESC_P)) {
            soft_raise(cpu, EXC_NP, sel & 0xfffc);
        }
    }
    set_accessed(cpu, sel, hi);
    soft_seg_from_desc(s, sel, lo, hi);
    s->type |= 1;
}

/* Read and check a code segment for a direct far JMP/CALL. */
static void check_code_target(SoftCPU *cpu, uint16_t sel, uint32_t *lo, uint32_t *hi)
{
    unsigned dpl;

    if ((sel & 0xfffc) == 0) {
        soft_gp0(cpu);
    }
    if (!soft_read_desc(cpu, sel, lo, hi)) {
        soft_raise(cpu, EXC_GP, sel & 0xfffc);
    }
    if (!(*hi & DESC_S) || !(*hi & DESC_CODE)) {
        /* Call gates, task gates and TSS targets are not implemented. */
        soft_raise(cpu, EXC_GP, sel & 0xfffc);
    }
    dpl = (*hi >> 13) & 3;
    if (*hi & DESC_CONF) {
        if (dpl > cpu->cpl) {
            soft_raise(cpu, EXC_GP, sel & 0xfffc);
        }
    } else if ((sel & 3) > cpu->cpl || dpl != cpu->cpl) {
        soft_raise(cpu, EXC_GP, sel & 0xfffc);
    }
    if (!(*hi & DESC_P)) {
        soft_raise(cpu, EXC_NP, sel & 0xfffc);
    }
    if ((*hi & DESC_L) && (*hi & DESC_DB) && cpu_lma(cpu)) {
        soft_raise(cpu, EXC_GP, sel & 0xfffc);
    }
}

static void check_rip_limit(SoftCPU *cpu, uint32_t lo, uint32_t hi, uint64_t off)
{
    X86Segment tmp;

    if (cpu_lma(cpu) && (hi & DESC_L)) {
        if ((uint64_t)(((int64_t)off >> 47) + 1) > 1) {
            soft_gp0(cpu);
        }
        return;
    }
    soft_seg_from_desc(&tmp, 0, lo, hi);
    if (off > tmp.limit) {
        soft_gp0(cpu);
    }
}

void soft_far_jump(SoftCPU *cpu, uint16_t sel, uint64_t off, unsigned osize)
{
    uint32_t lo, hi;

    if (!cpu_pe(cpu) || cpu_vm86(cpu)) {
        soft_set_cs_real(cpu, sel);
        cpu->next_rip = off & size_mask(osize);
        return;
    }
    check_code_target(cpu, sel, &lo, &hi);
    check_rip_limit(cpu, lo, hi, off);
    set_accessed(cpu, sel, hi);
    soft_load_cs_desc(cpu, (sel & 0xfffc) | cpu->cpl, lo, hi, cpu->cpl);
    cpu->next_rip = off;
}

/* Write @n values below the stack pointer, all or nothing, then move it. */
static void push_many(SoftCPU *cpu, const uint64_t *vals, int n, unsigned size)
{
    unsigned ssize = soft_stack_size(cpu);
    uint64_t mask = size_mask(ssize);
    uint64_t sp = cpu->regs[X86_RSP];
    uint64_t p = sp;

    for (int i = 0; i < n; i++) {
        p = (p - size) & mask;
        soft_write(cpu, X86_SEG_SS, p, size, vals[i]);
    }
    cpu->regs[X86_RSP] = ssize == 8 ? p : (sp & ~mask) | p;
}

void soft_far_call(SoftCPU *cpu, uint16_t sel, uint64_t off, unsigned osize)
{
    uint64_t vals[2] = { cpu->segs[X86_SEG_CS].selector, cpu->next_rip };
    uint32_t lo, hi;

    if (!cpu_pe(cpu) || cpu_vm86(cpu)) {
        push_many(cpu, vals, 2, osize);
        soft_set_cs_real(cpu, sel);
        cpu->next_rip = off & size_mask(osize);
        return;
    }
    check_code_target(cpu, sel, &lo, &hi);
    check_rip_limit(cpu, lo, hi, off);
    push_many(cpu, vals, 2, osize);
    set_accessed(cpu, sel, hi);
    soft_load_cs_desc(cpu, (sel & 0xfffc) | cpu->cpl, lo, hi, cpu->cpl);
    cpu->next_rip = off;
}

/* After a return to an outer ring, data segments the new CPL may not use are nulled. */
static void null_inaccessible_segs(SoftCPU *cpu)
{
    static const int segs[] = { X86_SEG_ES, X86_SEG_DS, X86_SEG_FS, X86_SEG_GS };

    for (unsigned i = 0; i < G_N_ELEMENTS(segs); i++) {
        X86Segment *s = &cpu->segs[segs[i]];
        bool conforming_code = (s->type & 0xc) == 0xc;
        if (!s->unusable && s->dpl < cpu->cpl && !conforming_code) {
            uint64_t keep_base = cpu->long64 && segs[i] >= X86_SEG_FS ? s->base : 0;
            memset(s, 0, sizeof(*s));
            s->unusable = 1;
            s->base = keep_base;
        }
    }
}

/*
 * The protected-mode half of RETF and IRET: @sel:@off is the popped return
 * address; @sp_after points past what was popped so far.
 */
static void return_to(SoftCPU *cpu, uint16_t sel, uint64_t off, uint64_t sp_after,
                      unsigned osize, bool iret, uint64_t new_flags, bool force_ss)
{
    uint32_t lo, hi, slo = 0, shi = 0;
    unsigned rpl = sel & 3, dpl;
    bool outer;
    uint16_t ss_sel = 0;
    uint64_t new_sp = 0;
    unsigned ssize = soft_stack_size(cpu);
    uint64_t spmask = size_mask(ssize);

    if ((sel & 0xfffc) == 0) {
        soft_gp0(cpu);
    }
    if (!soft_read_desc(cpu, sel, &lo, &hi)) {
        soft_raise(cpu, EXC_GP, sel & 0xfffc);
    }
    dpl = (hi >> 13) & 3;
    if (!(hi & DESC_S) || !(hi & DESC_CODE) || rpl < cpu->cpl ||
        ((hi & DESC_CONF) ? dpl > rpl : dpl != rpl)) {
        soft_raise(cpu, EXC_GP, sel & 0xfffc);
    }
    if (!(hi & DESC_P)) {
        soft_raise(cpu, EXC_NP, sel & 0xfffc);
    }
    outer = rpl > cpu->cpl;
    if (outer || force_ss) {
        new_sp = soft_read(cpu, X86_SEG_SS, sp_after & spmask, osize);
        ss_sel = soft_read(cpu, X86_SEG_SS, (sp_after + osize) & spmask, osize);
        sp_after += 2 * osize;
        if ((ss_sel & 0xfffc) == 0) {
            /* 64-bit mode allows a null SS when not returning to ring 3. */
            if (!(cpu_lma(cpu) && (hi & DESC_L) && rpl != 3)) {
                soft_gp0(cpu);
            }
        } else {
            if (!soft_read_desc(cpu, ss_sel, &slo, &shi) || (ss_sel & 3) != rpl ||
                ((shi >> 13) & 3) != rpl || (shi & 0x1a00) != 0x1200) {
                soft_raise(cpu, EXC_GP, ss_sel & 0xfffc);
            }
            if (!(shi & DESC_P)) {
                soft_raise(cpu, EXC_SS, ss_sel & 0xfffc);
            }
        }
    }
    check_rip_limit(cpu, lo, hi, off);

    /* Everything is checked: commit. */
    if (iret) {
        uint64_t mask = 0x3f7fd5ULL & ~(X86_RFLAGS_VM | X86_RFLAGS_VIP | X86_RFLAGS_VIF);
        uint64_t old = soft_get_rflags(cpu);
        if (cpu->cpl > 0) {
            mask &= ~X86_RFLAGS_IOPL;
        }
        if (cpu->cpl > cpu_iopl(cpu)) {
            mask &= ~X86_RFLAGS_IF;
        }
        if (osize == 2) {
            mask &= 0xffff;
        }
        if (cpu->cpl == 0 && osize > 2) {
            mask |= X86_RFLAGS_VIP | X86_RFLAGS_VIF;
        }
        soft_set_rflags(cpu, (old & ~mask) | (new_flags & mask));
    }
    set_accessed(cpu, sel, hi);
    soft_load_cs_desc(cpu, sel, lo, hi, rpl);
    cpu->next_rip = off & (cpu->long64 ? ~0ULL : osize == 2 ? 0xffff : 0xffffffff);
    if (outer || force_ss) {
        X86Segment *ss = &cpu->segs[X86_SEG_SS];
        if ((ss_sel & 0xfffc) == 0) {
            memset(ss, 0, sizeof(*ss));
            ss->selector = ss_sel;
            ss->unusable = 1;
            ss->dpl = rpl;
            ss->db = 1;
        } else {
            set_accessed(cpu, ss_sel, shi);
            soft_seg_from_desc(ss, ss_sel, slo, shi);
            ss->type |= 1;
        }
        ssize = soft_stack_size(cpu);
        spmask = size_mask(ssize);
        cpu->regs[X86_RSP] = ssize == 8 ? new_sp :
            (cpu->regs[X86_RSP] & ~spmask) | (new_sp & spmask);
        if (outer) {
            null_inaccessible_segs(cpu);
        }
    } else {
        cpu->regs[X86_RSP] = ssize == 8 ? sp_after :
            (cpu->regs[X86_RSP] & ~spmask) | (sp_after & spmask);
    }
}

void soft_far_ret(SoftCPU *cpu, unsigned osize, uint16_t pop_extra)
{
    unsigned ssize = soft_stack_size(cpu);
    uint64_t spmask = size_mask(ssize);
    uint64_t sp = cpu->regs[X86_RSP] & spmask;
    uint64_t off = soft_read(cpu, X86_SEG_SS, sp, osize);
    uint16_t sel = soft_read(cpu, X86_SEG_SS, (sp + osize) & spmask, osize);

    sp += 2 * osize;
    if (!cpu_pe(cpu) || cpu_vm86(cpu)) {
        soft_set_cs_real(cpu, sel);
        cpu->next_rip = off & size_mask(osize);
        sp += pop_extra;
        cpu->regs[X86_RSP] = (cpu->regs[X86_RSP] & ~spmask) | (sp & spmask);
        return;
    }
    if ((sel & 3) > cpu->cpl) {
        /* The outer stack pointer sits above the popped parameters. */
        return_to(cpu, sel, off, sp + pop_extra, osize, false, 0, false);
        /* RETF imm also releases parameters on the new stack. */
        cpu->regs[X86_RSP] += pop_extra;
    } else {
        return_to(cpu, sel, off, sp + pop_extra, osize, false, 0, false);
    }
}

void soft_iret(SoftCPU *cpu, unsigned osize)
{
    unsigned ssize = soft_stack_size(cpu);
    uint64_t spmask = size_mask(ssize);
    uint64_t sp = cpu->regs[X86_RSP] & spmask;
    uint64_t off, flags;
    uint16_t sel;

    off = soft_read(cpu, X86_SEG_SS, sp, osize);
    sel = soft_read(cpu, X86_SEG_SS, (sp + osize) & spmask, osize);
    flags = soft_read(cpu, X86_SEG_SS, (sp + 2 * osize) & spmask, osize);
    sp += 3 * osize;
    cpu->nmi_masked = 0;

    if (!cpu_pe(cpu)) {
        uint64_t mask = osize == 2 ? 0xffff : 0x257fd5;
        soft_set_rflags(cpu, (soft_get_rflags(cpu) & ~mask) | (flags & mask));
        soft_set_cs_real(cpu, sel);
        cpu->next_rip = off & size_mask(osize);
        cpu->regs[X86_RSP] = (cpu->regs[X86_RSP] & ~spmask) | (sp & spmask);
        return;
    }
    if (cpu_vm86(cpu)) {
        if (cpu_iopl(cpu) != 3) {
            soft_gp0(cpu);
        }
        uint64_t mask = (osize == 2 ? 0xffff : 0x257fd5) & ~X86_RFLAGS_IOPL;
        soft_set_rflags(cpu, (soft_get_rflags(cpu) & ~mask) | (flags & mask));
        soft_set_cs_real(cpu, sel);
        cpu->next_rip = off & size_mask(osize);
        cpu->regs[X86_RSP] = (cpu->regs[X86_RSP] & ~spmask) | (sp & spmask);
        return;
    }
    if (!cpu_lma(cpu) && (cpu->rflags & X86_RFLAGS_NT)) {
        soft_raise(cpu, EXC_GP, 0);     /* task return: not implemented */
    }
    if (!cpu_lma(cpu) && (flags & X86_RFLAGS_VM) && cpu->cpl == 0 && osize == 4) {
        soft_raise(cpu, EXC_GP, 0);     /* return to virtual-8086 mode: not implemented */
    }
    /* 64-bit mode always pops SS:RSP. */
    return_to(cpu, sel, off, sp, osize, true, flags, cpu->long64);
}
