/*
 * Exceptions and interrupts: raising a fault from inside an instruction
 * (unwinding to the run loop, so the instruction leaves no partial state),
 * double and triple fault escalation, and delivery through the real-mode
 * IVT or the protected/long-mode IDT.
 */
#include "soft-internal.h"

/* cpu->delivering value for an external or software interrupt. */
#define DELIVERING_BENIGN   256

static bool has_error_code(int v)
{
    return v == EXC_DF || (v >= EXC_TS && v <= EXC_PF) || v == EXC_AC ||
           v == 21 || v == 29 || v == 30;
}

static bool contributory(int v)
{
    return v == EXC_DE || (v >= EXC_TS && v <= EXC_GP);
}

void soft_raise(SoftCPU *cpu, int vector, uint32_t error)
{
    if (cpu->delivering >= 0) {
        int first = cpu->delivering;

        if (first == EXC_DF) {
            cpu->shutdown = true;
            siglongjmp(cpu->jb, 1);
        }
        if ((contributory(first) && contributory(vector)) ||
            (first == EXC_PF && (contributory(vector) || vector == EXC_PF))) {
            vector = EXC_DF;
            error = 0;
        }
    }
    cpu->exc_vector = vector;
    cpu->exc_error = error;
    cpu->exc_has_error = has_error_code(vector);
    cpu->exc_pending = true;
    siglongjmp(cpu->jb, 1);
}

void soft_raise_noerr(SoftCPU *cpu, int vector)
{
    soft_raise(cpu, vector, 0);
}

void soft_deliver_pending_exception(SoftCPU *cpu)
{
    int v = cpu->exc_vector;

    cpu->exc_pending = false;
    cpu->delivering = v;
    soft_deliver_interrupt(cpu, v, false, cpu->exc_has_error, cpu->exc_error, cpu->rip);
    cpu->delivering = -1;
}

/* Reads of system tables are supervisor accesses whatever the CPL. */
static uint64_t sys_read(SoftCPU *cpu, uint64_t lin, unsigned size)
{
    return soft_lin_read(cpu, lin, size, 0);
}

static void deliver_real(SoftCPU *cpu, int vector, uint64_t ret_rip)
{
    uint64_t sp = cpu->regs[X86_RSP];
    uint64_t base = cpu->segs[X86_SEG_SS].base;
    uint32_t entry;
    uint16_t s0, s1, s2;

    if ((uint64_t)vector * 4 + 3 > cpu->idt.limit) {
        soft_raise(cpu, EXC_GP, vector * 8 + 2);
    }
    entry = sys_read(cpu, cpu->idt.base + vector * 4, 4);
    s0 = sp - 2;
    s1 = sp - 4;
    s2 = sp - 6;
    soft_lin_write(cpu, (base + s0) & 0xffffffff, 2, soft_get_rflags(cpu), 0);
    soft_lin_write(cpu, (base + s1) & 0xffffffff, 2, cpu->segs[X86_SEG_CS].selector, 0);
    soft_lin_write(cpu, (base + s2) & 0xffffffff, 2, ret_rip, 0);
    cpu->regs[X86_RSP] = (sp & ~0xffffULL) | s2;
    cpu->rflags &= ~(X86_RFLAGS_IF | X86_RFLAGS_TF | X86_RFLAGS_AC | X86_RFLAGS_RF);
    soft_set_cs_real(cpu, entry >> 16);
    cpu->rip = cpu->next_rip = entry & 0xffff;
}

/* The stack pointer and selector for privilege @dpl from the current TSS. */
static void tss_stack(SoftCPU *cpu, unsigned dpl, uint16_t *ss, uint64_t *sp, uint32_t ext)
{
    const X86Segment *tr = &cpu->segs[X86_SEG_TR];
    unsigned type = tr->type & 0xf;

    if (!tr->present || tr->unusable) {
        soft_raise(cpu, EXC_TS, (tr->selector & 0xfffc) | ext);
    }
    if (type == 0x9 || type == 0xb) {
        if (8 + dpl * 8 + 1 > tr->limit) {
            soft_raise(cpu, EXC_TS, (tr->selector & 0xfffc) | ext);
        }
        *sp = sys_read(cpu, tr->base + 4 + dpl * 8, 4);
        *ss = sys_read(cpu, tr->base + 8 + dpl * 8, 2);
    } else {
        if (4 + dpl * 4 + 1 > tr->limit) {
            soft_raise(cpu, EXC_TS, (tr->selector & 0xfffc) | ext);
        }
        *sp = sys_read(cpu, tr->base + 2 + dpl * 4, 2);
        *ss = sys_read(cpu, tr->base + 4 + dpl * 4, 2);
    }
}

/* Read and check the code segment an interrupt gate points to. */
static void gate_target(SoftCPU *cpu, uint16_t sel, uint32_t ext,
                        uint32_t *lo, uint32_t *hi)
{
    unsigned dpl;

    if ((sel & 0xfffc) == 0) {
        soft_raise(cpu, EXC_GP, ext);
    }
    if (!soft_read_desc(cpu, sel, lo, hi)) {
        soft_raise(cpu, EXC_GP, (sel & 0xfffc) | ext);
    }
    dpl = (*hi >> 13) & 3;
    if (!(*hi & (1u << 12)) || !(*hi & (1u << 11)) || dpl > cpu->cpl) {
        soft_raise(cpu, EXC_GP, (sel & 0xfffc) | ext);
    }
    if (!(*hi & (1u << 15))) {
        soft_raise(cpu, EXC_NP, (sel & 0xfffc) | ext);
    }
}

static void deliver_long(SoftCPU *cpu, int vector, bool soft, bool has_err,
                         uint32_t err, uint64_t ret_rip)
{
    uint32_t ext = soft ? 0 : 1;
    uint32_t gerr = vector * 8 + 2 + ext;
    uint64_t gaddr = cpu->idt.base + (uint64_t)vector * 16;
    uint32_t w0, w1, w2, lo, hi;
    unsigned type, gdpl, ist, dpl, newcpl;
    uint16_t sel;
    uint64_t off, sp, rflags = soft_get_rflags(cpu);
    uint64_t frame[6];
    int n = 0;

    if ((uint64_t)vector * 16 + 15 > cpu->idt.limit) {
        soft_raise(cpu, EXC_GP, gerr);
    }
    w0 = sys_read(cpu, gaddr, 4);
    w1 = sys_read(cpu, gaddr + 4, 4);
    w2 = sys_read(cpu, gaddr + 8, 4);
    type = (w1 >> 8) & 0x1f;
    gdpl = (w1 >> 13) & 3;
    if (type != 0xe && type != 0xf) {
        soft_raise(cpu, EXC_GP, gerr);
    }
    if (soft && gdpl < cpu->cpl) {
        soft_raise(cpu, EXC_GP, vector * 8 + 2);
    }
    if (!(w1 & (1u << 15))) {
        soft_raise(cpu, EXC_NP, gerr);
    }
    sel = w0 >> 16;
    off = (w0 & 0xffff) | (w1 & 0xffff0000) | ((uint64_t)w2 << 32);
    ist = w1 & 7;
    gate_target(cpu, sel, ext, &lo, &hi);
    if (!(hi & (1u << 21)) || (hi & (1u << 22))) {
        soft_raise(cpu, EXC_GP, (sel & 0xfffc) | ext);  /* not a 64-bit code segment */
    }
    dpl = (hi >> 13) & 3;
    newcpl = (hi & (1u << 10)) ? cpu->cpl : dpl;       /* conforming keeps CPL */

    if (ist) {
        sp = sys_read(cpu, cpu->segs[X86_SEG_TR].base + 0x24 + (ist - 1) * 8, 8);
    } else if (newcpl < cpu->cpl) {
        sp = sys_read(cpu, cpu->segs[X86_SEG_TR].base + 4 + newcpl * 8, 8);
    } else {
        sp = cpu->regs[X86_RSP];
    }
    sp &= ~0xfULL;

    frame[n++] = cpu->segs[X86_SEG_SS].selector;
    frame[n++] = cpu->regs[X86_RSP];
    frame[n++] = rflags;
    frame[n++] = cpu->segs[X86_SEG_CS].selector;
    frame[n++] = ret_rip;
    if (has_err) {
        frame[n++] = err;
    }
    for (int i = 0; i < n; i++) {
        uint64_t a = sp - 8 * (i + 1);
        if ((uint64_t)(((int64_t)a >> 47) + 1) > 1) {
            soft_raise(cpu, EXC_SS, ext);
        }
        soft_lin_write(cpu, a, 8, frame[i], newcpl == 3);
    }
    sp -= 8 * n;

    if (newcpl != cpu->cpl) {
        X86Segment *ss = &cpu->segs[X86_SEG_SS];
        memset(ss, 0, sizeof(*ss));
        ss->selector = newcpl;
        ss->unusable = 1;
        ss->dpl = newcpl;
        ss->db = 1;
        ss->type = 3;
        ss->s = 1;
        ss->present = 1;
        ss->limit = 0xffffffff;
    }
    soft_load_cs_desc(cpu, (sel & 0xfffc) | newcpl, lo, hi, newcpl);
    cpu->regs[X86_RSP] = sp;
    cpu->rflags = rflags & ~(X86_RFLAGS_TF | X86_RFLAGS_NT | X86_RFLAGS_RF | X86_RFLAGS_VM);
    cpu->cc_op = CC_NONE;
    if (type == 0xe) {
        cpu->rflags &= ~X86_RFLAGS_IF;
    }
    cpu->rip = cpu->next_rip = off;
}

static void deliver_prot(SoftCPU *cpu, int vector, bool soft, bool has_err,
                         uint32_t err, uint64_t ret_rip)
{
    uint32_t ext = soft ? 0 : 1;
    uint32_t gerr = vector * 8 + 2 + ext;
    uint64_t gaddr = cpu->idt.base + (uint64_t)vector * 8;
    uint32_t w0, w1, lo, hi;
    unsigned type, gdpl, dpl, newcpl, gsize;
    uint16_t sel;
    uint64_t off, rflags = soft_get_rflags(cpu);
    uint64_t frame[8];
    int n = 0;
    X86Segment newss = cpu->segs[X86_SEG_SS];
    uint64_t sp = cpu->regs[X86_RSP];
    bool outer;

    if ((uint64_t)vector * 8 + 7 > cpu->idt.limit) {
        soft_raise(cpu, EXC_GP, gerr);
    }
    w0 = sys_read(cpu, gaddr, 4);
    w1 = sys_read(cpu, gaddr + 4, 4);
    type = (w1 >> 8) & 0x1f;
    gdpl = (w1 >> 13) & 3;
    if (type != 0x6 && type != 0x7 && type != 0xe && type != 0xf) {
        /* Task gates are not implemented. */
        soft_raise(cpu, EXC_GP, gerr);
    }
    if (soft && gdpl < cpu->cpl) {
        soft_raise(cpu, EXC_GP, vector * 8 + 2);
    }
    if (!(w1 & (1u << 15))) {
        soft_raise(cpu, EXC_NP, gerr);
    }
    gsize = (type & 8) ? 4 : 2;
    sel = w0 >> 16;
    off = (w0 & 0xffff) | (gsize == 4 ? (w1 & 0xffff0000) : 0);
    gate_target(cpu, sel, ext, &lo, &hi);
    dpl = (hi >> 13) & 3;
    newcpl = (hi & (1u << 10)) ? cpu->cpl : dpl;
    outer = newcpl < cpu->cpl;
    if (cpu_vm86(cpu)) {
        soft_raise(cpu, EXC_GP, (sel & 0xfffc) | ext);   /* virtual-8086 mode is not implemented */
    }
    if (outer) {
        uint16_t ss_sel;
        uint32_t slo, shi;

        tss_stack(cpu, newcpl, &ss_sel, &sp, ext);
        if ((ss_sel & 0xfffc) == 0 || !soft_read_desc(cpu, ss_sel, &slo, &shi) ||
            (ss_sel & 3) != newcpl || ((shi >> 13) & 3) != newcpl ||
            (shi & 0x1a00) != 0x1200) {
            soft_raise(cpu, EXC_TS, (ss_sel & 0xfffc) | ext);
        }
        if (!(shi & (1u << 15))) {
            soft_raise(cpu, EXC_SS, (ss_sel & 0xfffc) | ext);
        }
        soft_seg_from_desc(&newss, ss_sel, slo, shi);
        frame[n++] = cpu->segs[X86_SEG_SS].selector;
        frame[n++] = cpu->regs[X86_RSP];
    }
    frame[n++] = rflags;
    frame[n++] = cpu->segs[X86_SEG_CS].selector;
    frame[n++] = ret_rip;
    if (has_err) {
        frame[n++] = err;
    }
    {
        uint64_t spmask = newss.db ? 0xffffffffULL : 0xffff;
        uint64_t p = sp;
        for (int i = 0; i < n; i++) {
            p = (p - gsize) & spmask;
            soft_lin_write(cpu, (newss.base + p) & 0xffffffff, gsize, frame[i], newcpl == 3);
        }
        sp = (sp & ~spmask) | p;
    }
    if (outer) {
        cpu->segs[X86_SEG_SS] = newss;
    }
    soft_load_cs_desc(cpu, (sel & 0xfffc) | newcpl, lo, hi, newcpl);
    cpu->regs[X86_RSP] = sp;
    cpu->rflags = rflags & ~(X86_RFLAGS_TF | X86_RFLAGS_NT | X86_RFLAGS_RF | X86_RFLAGS_VM);
    cpu->cc_op = CC_NONE;
    if (!(type & 1)) {
        cpu->rflags &= ~X86_RFLAGS_IF;
    }
    cpu->rip = cpu->next_rip = off;
}

/*
 * Deliver @vector. @ret_rip is what the handler's IRET returns to: the
 * faulting instruction for faults, the next one for traps and INT n.
 */
void soft_deliver_interrupt(SoftCPU *cpu, int vector, bool soft, bool has_err,
                            uint32_t err, uint64_t ret_rip)
{
    if (cpu->delivering < 0) {
        cpu->delivering = DELIVERING_BENIGN;
    }
    if (!cpu_pe(cpu)) {
        deliver_real(cpu, vector, ret_rip);
    } else if (cpu_lma(cpu)) {
        deliver_long(cpu, vector, soft, has_err, err, ret_rip);
    } else {
        deliver_prot(cpu, vector, soft, has_err, err, ret_rip);
    }
    cpu->delivering = -1;
    cpu->entered_handler = true;
    if (vector == EXC_NMI && !soft) {
        cpu->nmi_masked = 1;
    }
}
