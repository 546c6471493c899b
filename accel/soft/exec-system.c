/*
 * System instructions: HLT, CLI/STI, port I/O, descriptor tables and
 * task register, control and debug registers, MSRs, TSC, CPUID,
 * SYSCALL/SYSRET, SYSENTER/SYSEXIT, SWAPGS, fences and cache hints.
 */
#include "soft-internal.h"

/*
 * The CR4 bits this CPU implements (and CPUID advertises). VME/PVI
 * (virtual-8086 extensions), MCE and the rest are #GP, as on a CPU
 * without them, rather than accepted and ignored.
 */
#define CR4_KNOWN   (X86_CR4_TSD | X86_CR4_DE | X86_CR4_PSE | X86_CR4_PAE | \
                     X86_CR4_PGE | X86_CR4_PCE | X86_CR4_OSFXSR | \
                     X86_CR4_OSXMMEXCPT | X86_CR4_OSXSAVE)

/* XCR0 components this CPU has: x87 and SSE. */
#define XCR0_SUPPORTED  3ULL
#define XSAVE_HDR       512

static void need_cpl0(SoftCPU *cpu)
{
    if (cpu->cpl != 0) {
        soft_gp0(cpu);
    }
}

static void need_pm(SoftCPU *cpu)
{
    if (!cpu_pe(cpu) || cpu_vm86(cpu)) {
        soft_ud(cpu);
    }
}

void op_hlt(SoftCPU *cpu, const Insn *in)
{
    need_cpl0(cpu);
    cpu->mp_state = X86_MP_HALTED;
}

void op_cli(SoftCPU *cpu, const Insn *in)
{
    if (cpu_pe(cpu) && cpu->cpl > cpu_iopl(cpu)) {
        soft_gp0(cpu);
    }
    cpu->rflags &= ~X86_RFLAGS_IF;
}

void op_sti(SoftCPU *cpu, const Insn *in)
{
    if (cpu_pe(cpu) && cpu->cpl > cpu_iopl(cpu)) {
        soft_gp0(cpu);
    }
    if (!(cpu->rflags & X86_RFLAGS_IF)) {
        cpu->shadow = 1;
    }
    cpu->rflags |= X86_RFLAGS_IF;
}

static void io_allowed(SoftCPU *cpu)
{
    /* The TSS I/O bitmap is treated as all-denied. */
    if (cpu_pe(cpu) && (cpu->cpl > cpu_iopl(cpu) || cpu_vm86(cpu))) {
        soft_gp0(cpu);
    }
}

void op_in(SoftCPU *cpu, const Insn *in)
{
    unsigned size = in->osize > 4 ? 4 : in->osize;
    uint16_t port = (in->op & 8) ? (uint16_t)cpu->regs[X86_RDX] : (uint8_t)in->imm;

    io_allowed(cpu);
    reg_write(cpu, in, X86_RAX, size, cpu->hooks->pio_read(cpu->opaque, port, size));
}

void op_out(SoftCPU *cpu, const Insn *in)
{
    unsigned size = in->osize > 4 ? 4 : in->osize;
    uint16_t port = (in->op & 8) ? (uint16_t)cpu->regs[X86_RDX] : (uint8_t)in->imm;

    io_allowed(cpu);
    cpu->hooks->pio_write(cpu->opaque, port, reg_read(cpu, in, X86_RAX, size), size);
}

/* Store a selector: 16 bits to memory, zero-extended to a register. */
static void store_sel(SoftCPU *cpu, const Insn *in, uint16_t sel)
{
    if (in->mod == 3) {
        reg_write(cpu, in, in->rm, in->osize, sel);
    } else {
        soft_write(cpu, in->seg, insn_ea(cpu, in), 2, sel);
    }
}

/* A system descriptor from the GDT, 16 bytes in long mode. */
static void read_sys_desc(SoftCPU *cpu, uint16_t sel, uint32_t *lo, uint32_t *hi,
                          uint32_t *hi2)
{
    if (sel & 4) {
        soft_raise(cpu, EXC_GP, sel & 0xfffc);
    }
    if (!soft_read_desc(cpu, sel, lo, hi)) {
        soft_raise(cpu, EXC_GP, sel & 0xfffc);
    }
    *hi2 = 0;
    if (cpu_lma(cpu)) {
        if ((uint64_t)(sel & ~7) + 15 > cpu->gdt.limit) {
            soft_raise(cpu, EXC_GP, sel & 0xfffc);
        }
        *hi2 = soft_lin_read(cpu, cpu->gdt.base + (sel & ~7) + 8, 4, 0);
    }
}

static void load_ldt(SoftCPU *cpu, uint16_t sel)
{
    X86Segment *s = &cpu->segs[X86_SEG_LDT];
    uint32_t lo, hi, hi2;

    if ((sel & 0xfffc) == 0) {
        memset(s, 0, sizeof(*s));
        s->selector = sel;
        s->unusable = 1;
        return;
    }
    read_sys_desc(cpu, sel, &lo, &hi, &hi2);
    if ((hi & (1u << 12)) || ((hi >> 8) & 0xf) != 2) {
        soft_raise(cpu, EXC_GP, sel & 0xfffc);
    }
    if (!(hi & (1u << 15))) {
        soft_raise(cpu, EXC_NP, sel & 0xfffc);
    }
    soft_seg_from_desc(s, sel, lo, hi);
    s->base |= (uint64_t)hi2 << 32;
}

static void load_tr(SoftCPU *cpu, uint16_t sel)
{
    X86Segment *s = &cpu->segs[X86_SEG_TR];
    uint32_t lo, hi, hi2;
    unsigned type;

    if ((sel & 0xfffc) == 0) {
        soft_gp0(cpu);
    }
    read_sys_desc(cpu, sel, &lo, &hi, &hi2);
    type = (hi >> 8) & 0xf;
    if ((hi & (1u << 12)) || (type != 9 && (type != 1 || cpu_lma(cpu)))) {
        soft_raise(cpu, EXC_GP, sel & 0xfffc);
    }
    if (!(hi & (1u << 15))) {
        soft_raise(cpu, EXC_NP, sel & 0xfffc);
    }
    /* Mark the descriptor busy. */
    {
        uint64_t a = cpu->gdt.base + (sel & ~7) + 5;
        uint8_t *p = soft_lin_ptr(cpu, a, 1, ACC_WRITE, 0);
        if (p) {
            __atomic_fetch_or(p, 2, __ATOMIC_SEQ_CST);
        } else {
            soft_lin_write(cpu, a, 1, ((hi >> 8) & 0xff) | 2, 0);
        }
    }
    soft_seg_from_desc(s, sel, lo, hi);
    s->base |= (uint64_t)hi2 << 32;
    s->type |= 2;
}

/* VERR/VERW/LAR/LSL: is @sel visible at this CPL? */
static bool desc_visible(SoftCPU *cpu, uint16_t sel, uint32_t *lo, uint32_t *hi)
{
    unsigned dpl;

    if ((sel & 0xfffc) == 0 || !soft_read_desc(cpu, sel, lo, hi)) {
        return false;
    }
    dpl = (*hi >> 13) & 3;
    if ((*hi & (1u << 12)) && (*hi & (1u << 11)) && (*hi & (1u << 10))) {
        return true;                    /* conforming code */
    }
    return dpl >= cpu->cpl && dpl >= (sel & 3);
}

static void set_zf(SoftCPU *cpu, bool z)
{
    uint64_t f = soft_flags_arith(cpu) & ~X86_RFLAGS_ZF;

    soft_set_arith(cpu, f | (z ? X86_RFLAGS_ZF : 0));
}

void op_grp6(SoftCPU *cpu, const Insn *in)
{
    uint32_t lo, hi;
    uint16_t sel;

    need_pm(cpu);
    switch (in->reg & 7) {
    case 0:
        store_sel(cpu, in, cpu->segs[X86_SEG_LDT].selector);
        return;
    case 1:
        store_sel(cpu, in, cpu->segs[X86_SEG_TR].selector);
        return;
    case 2:
        need_cpl0(cpu);
        load_ldt(cpu, rm_read(cpu, in, 2));
        return;
    case 3:
        need_cpl0(cpu);
        load_tr(cpu, rm_read(cpu, in, 2));
        return;
    case 4: case 5:
        sel = rm_read(cpu, in, 2);
        if (!desc_visible(cpu, sel, &lo, &hi) || !(hi & (1u << 12))) {
            set_zf(cpu, false);
            return;
        }
        if ((in->reg & 7) == 4) {
            /* Readable: data, or code with R. */
            set_zf(cpu, !(hi & (1u << 11)) || (hi & (1u << 9)));
        } else {
            set_zf(cpu, !(hi & (1u << 11)) && (hi & (1u << 9)));
        }
        return;
    default:
        soft_ud(cpu);
    }
}

void op_lar(SoftCPU *cpu, const Insn *in)
{
    uint16_t sel;
    uint32_t lo, hi;
    unsigned type;

    need_pm(cpu);
    sel = rm_read(cpu, in, 2);
    if (!desc_visible(cpu, sel, &lo, &hi)) {
        set_zf(cpu, false);
        return;
    }
    type = (hi >> 8) & 0xf;
    if (!(hi & (1u << 12)) && !(type == 1 || type == 2 || type == 3 || type == 9 ||
                                type == 0xb || (!cpu_lma(cpu) && (type == 4 || type == 5 ||
                                                                  type == 0xc)))) {
        set_zf(cpu, false);
        return;
    }
    reg_write(cpu, in, in->reg, in->osize, hi & 0x00f0ff00);
    set_zf(cpu, true);
}

void op_lsl(SoftCPU *cpu, const Insn *in)
{
    uint16_t sel;
    uint32_t lo, hi, limit;
    unsigned type;

    need_pm(cpu);
    sel = rm_read(cpu, in, 2);
    if (!desc_visible(cpu, sel, &lo, &hi)) {
        set_zf(cpu, false);
        return;
    }
    type = (hi >> 8) & 0xf;
    if (!(hi & (1u << 12)) && !(type == 1 || type == 2 || type == 3 || type == 9 ||
                                type == 0xb)) {
        set_zf(cpu, false);
        return;
    }
    limit = (lo & 0xffff) | (hi & 0xf0000);
    if (hi & (1u << 23)) {
        limit = (limit << 12) | 0xfff;
    }
    reg_write(cpu, in, in->reg, in->osize, limit);
    set_zf(cpu, true);
}


static void write_cr0(SoftCPU *cpu, uint64_t v)
{
    uint64_t old = cpu->cr0;

    if (v >> 32) {
        soft_gp0(cpu);
    }
    v |= X86_CR0_ET;
    if ((v & X86_CR0_PG) && !(v & X86_CR0_PE)) {
        soft_gp0(cpu);
    }
    if ((v & X86_CR0_NW) && !(v & X86_CR0_CD)) {
        soft_gp0(cpu);
    }
    if ((v & X86_CR0_PG) && !(old & X86_CR0_PG) && (cpu->efer & X86_EFER_LME)) {
        if (!(cpu->cr4 & X86_CR4_PAE)) {
            soft_gp0(cpu);
        }
        cpu->efer |= X86_EFER_LMA;
    }
    if (!(v & X86_CR0_PG) && (old & X86_CR0_PG) && cpu_lma(cpu)) {
        if (cpu->long64) {
            soft_gp0(cpu);
        }
        cpu->efer &= ~X86_EFER_LMA;
    }
    cpu->cr0 = v;
    if ((old ^ v) & (X86_CR0_PG | X86_CR0_WP | X86_CR0_PE)) {
        soft_tlb_flush_all(cpu);
    }
    soft_cpu_update_mode(cpu);
}

static void write_cr4(SoftCPU *cpu, uint64_t v)
{
    uint64_t old = cpu->cr4;

    if (v & ~CR4_KNOWN) {
        soft_gp0(cpu);
    }
    if (cpu_lma(cpu) && !(v & X86_CR4_PAE)) {
        soft_gp0(cpu);
    }
    cpu->cr4 = v;
    if ((old ^ v) & (X86_CR4_PGE | X86_CR4_PAE | X86_CR4_PSE)) {
        soft_tlb_flush_all(cpu);
    }
}

void op_mov_cr(SoftCPU *cpu, const Insn *in)
{
    unsigned cr = in->reg;
    unsigned size = cpu->long64 ? 8 : 4;
    uint64_t v;

    if (in->lock && cr == 0) {
        cr = 8;                         /* AMD's alternate CR8 encoding */
    }
    need_cpl0(cpu);
    if (cr != 0 && cr != 2 && cr != 3 && cr != 4 && cr != 8) {
        soft_ud(cpu);
    }
    if (in->op == 0x120) {
        switch (cr) {
        case 0: v = cpu->cr0; break;
        case 2: v = cpu->cr2; break;
        case 3: v = cpu->cr3; break;
        case 4: v = cpu->cr4; break;
        default:
            v = cpu->hooks->read_cr8 ? cpu->hooks->read_cr8(cpu->opaque) : 0;
            break;
        }
        reg_write(cpu, in, in->rm, size, v);
        return;
    }
    v = reg_read(cpu, in, in->rm, size);
    switch (cr) {
    case 0:
        write_cr0(cpu, v);
        break;
    case 2:
        cpu->cr2 = v;
        break;
    case 3:
        if (cpu_lma(cpu) && (v >> 52)) {
            soft_gp0(cpu);
        }
        cpu->cr3 = v;
        soft_tlb_flush_nonglobal(cpu);
        break;
    case 4:
        write_cr4(cpu, v);
        break;
    default:
        if (v >> 4) {
            soft_gp0(cpu);
        }
        if (cpu->hooks->write_cr8) {
            cpu->hooks->write_cr8(cpu->opaque, v);
        }
        break;
    }
}

void op_mov_dr(SoftCPU *cpu, const Insn *in)
{
    unsigned dr = in->reg;
    unsigned size = cpu->long64 ? 8 : 4;

    need_cpl0(cpu);
    if (dr > 7) {
        soft_ud(cpu);
    }
    if (dr == 4 || dr == 5) {
        if (cpu->cr4 & X86_CR4_DE) {
            soft_ud(cpu);
        }
        dr += 2;
    }
    if (in->op == 0x121) {
        uint64_t v = dr < 4 ? cpu->dr[dr] : dr == 6 ? cpu->dr6 : cpu->dr7;
        reg_write(cpu, in, in->rm, size, v);
        return;
    }
    uint64_t v = reg_read(cpu, in, in->rm, size);
    if (dr < 4) {
        cpu->dr[dr] = v;
    } else if (dr == 6) {
        if (v >> 32) {
            soft_gp0(cpu);
        }
        cpu->dr6 = (v & 0x0001e00f) | 0xfffe0ff0;
    } else {
        if (v >> 32) {
            soft_gp0(cpu);
        }
        cpu->dr7 = (v & 0xffff2fff) | 0x400;
    }
}

void op_wrmsr(SoftCPU *cpu, const Insn *in)
{
    uint64_t v = (cpu->regs[X86_RAX] & 0xffffffff) | (cpu->regs[X86_RDX] << 32);

    need_cpl0(cpu);
    if (!soft_wrmsr(cpu, cpu->regs[X86_RCX], v)) {
        soft_gp0(cpu);
    }
}

void op_rdmsr(SoftCPU *cpu, const Insn *in)
{
    uint64_t v;

    need_cpl0(cpu);
    if (!soft_rdmsr(cpu, cpu->regs[X86_RCX], &v)) {
        soft_gp0(cpu);
    }
    cpu->regs[X86_RAX] = (uint32_t)v;
    cpu->regs[X86_RDX] = v >> 32;
}

void op_rdtsc(SoftCPU *cpu, const Insn *in)
{
    uint64_t t;

    if ((cpu->cr4 & X86_CR4_TSD) && cpu->cpl != 0 && cpu_pe(cpu)) {
        soft_gp0(cpu);
    }
    t = soft_guest_tsc(cpu);
    cpu->regs[X86_RAX] = (uint32_t)t;
    cpu->regs[X86_RDX] = t >> 32;
}

void op_rdpmc(SoftCPU *cpu, const Insn *in)
{
    soft_gp0(cpu);
}

void op_cpuid(SoftCPU *cpu, const Insn *in)
{
    uint32_t out[4];

    soft_cpuid(cpu, cpu->regs[X86_RAX], cpu->regs[X86_RCX], out);
    cpu->regs[X86_RAX] = out[0];
    cpu->regs[X86_RBX] = out[1];
    cpu->regs[X86_RCX] = out[2];
    cpu->regs[X86_RDX] = out[3];
}

static void flat_seg(X86Segment *s, uint16_t sel, uint8_t type, unsigned dpl, bool l, bool db)
{
    memset(s, 0, sizeof(*s));
    s->selector = sel;
    s->base = 0;
    s->limit = 0xffffffff;
    s->type = type;
    s->s = 1;
    s->dpl = dpl;
    s->present = 1;
    s->l = l;
    s->db = db;
    s->g = 1;
}

void op_syscall(SoftCPU *cpu, const Insn *in)
{
    uint16_t sel = (cpu->star >> 32) & 0xfffc;
    uint64_t f;

    if (!(cpu->efer & X86_EFER_SCE) || !cpu->long64) {
        soft_ud(cpu);
    }
    f = soft_get_rflags(cpu);
    cpu->regs[X86_RCX] = cpu->next_rip;
    cpu->regs[X86_R11] = f & ~X86_RFLAGS_RF;
    flat_seg(&cpu->segs[X86_SEG_CS], sel, 0xb, 0, true, false);
    flat_seg(&cpu->segs[X86_SEG_SS], sel + 8, 0x3, 0, false, true);
    soft_set_rflags(cpu, f & ~cpu->sfmask & ~X86_RFLAGS_RF);
    cpu->cpl = 0;
    soft_cpu_update_mode(cpu);
    cpu->next_rip = cpu->lstar;
}

void op_sysret(SoftCPU *cpu, const Insn *in)
{
    uint16_t base = (cpu->star >> 48) & 0xfffc;
    bool to64 = in->rex & 8;
    uint64_t rip = cpu->regs[X86_RCX];

    if (!(cpu->efer & X86_EFER_SCE)) {
        soft_ud(cpu);
    }
    if (!cpu->long64 || cpu->cpl != 0) {
        soft_gp0(cpu);
    }
    if (to64 && (uint64_t)(((int64_t)rip >> 47) + 1) > 1) {
        soft_gp0(cpu);
    }
    if (to64) {
        flat_seg(&cpu->segs[X86_SEG_CS], (base + 16) | 3, 0xb, 3, true, false);
    } else {
        flat_seg(&cpu->segs[X86_SEG_CS], base | 3, 0xb, 3, false, true);
        rip &= 0xffffffff;
    }
    /* SS keeps its selector but gets flat ring-3 attributes, as hardware does. */
    flat_seg(&cpu->segs[X86_SEG_SS], (base + 8) | 3, 0x3, 3, false, true);
    soft_set_rflags(cpu, (cpu->regs[X86_R11] & ~(X86_RFLAGS_RF | X86_RFLAGS_VM)));
    cpu->cpl = 3;
    soft_cpu_update_mode(cpu);
    cpu->next_rip = rip;
}

void op_sysenter(SoftCPU *cpu, const Insn *in)
{
    uint16_t sel = cpu->sysenter_cs & 0xfffc;
    bool lma = cpu_lma(cpu);

    if (!cpu_pe(cpu) || sel == 0) {
        soft_gp0(cpu);
    }
    flat_seg(&cpu->segs[X86_SEG_CS], sel, 0xb, 0, lma, !lma);
    flat_seg(&cpu->segs[X86_SEG_SS], sel + 8, 0x3, 0, false, true);
    cpu->rflags &= ~(X86_RFLAGS_VM | X86_RFLAGS_IF | X86_RFLAGS_RF);
    cpu->cpl = 0;
    soft_cpu_update_mode(cpu);
    cpu->regs[X86_RSP] = lma ? cpu->sysenter_esp : (uint32_t)cpu->sysenter_esp;
    cpu->next_rip = lma ? cpu->sysenter_eip : (uint32_t)cpu->sysenter_eip;
}

void op_sysexit(SoftCPU *cpu, const Insn *in)
{
    uint16_t sel = cpu->sysenter_cs & 0xfffc;
    bool to64 = in->rex & 8;

    if (!cpu_pe(cpu) || sel == 0 || cpu->cpl != 0) {
        soft_gp0(cpu);
    }
    if (to64) {
        flat_seg(&cpu->segs[X86_SEG_CS], (sel + 32) | 3, 0xb, 3, true, false);
        flat_seg(&cpu->segs[X86_SEG_SS], (sel + 40) | 3, 0x3, 3, false, true);
        cpu->next_rip = cpu->regs[X86_RDX];
        cpu->regs[X86_RSP] = cpu->regs[X86_RCX];
    } else {
        flat_seg(&cpu->segs[X86_SEG_CS], (sel + 16) | 3, 0xb, 3, false, true);
        flat_seg(&cpu->segs[X86_SEG_SS], (sel + 24) | 3, 0x3, 3, false, true);
        cpu->next_rip = (uint32_t)cpu->regs[X86_RDX];
        cpu->regs[X86_RSP] = (uint32_t)cpu->regs[X86_RCX];
    }
    cpu->cpl = 3;
    soft_cpu_update_mode(cpu);
}

void op_ud(SoftCPU *cpu, const Insn *in)
{
    soft_ud(cpu);
}

void op_invd(SoftCPU *cpu, const Insn *in)
{
    need_cpl0(cpu);
}

static void load_dtr(SoftCPU *cpu, const Insn *in, X86DescTable *t)
{
    uint64_t ea = insn_ea(cpu, in);
    uint16_t limit;
    uint64_t base;

    need_cpl0(cpu);
    limit = soft_read(cpu, in->seg, ea, 2);
    if (cpu->long64) {
        base = soft_read(cpu, in->seg, ea + 2, 8);
        if ((uint64_t)(((int64_t)base >> 47) + 1) > 1) {
            soft_gp0(cpu);
        }
    } else {
        base = soft_read(cpu, in->seg, (ea + 2) & size_mask(in->asize), 4);
        if (in->osize == 2) {
            base &= 0xffffff;
        }
    }
    t->limit = limit;
    t->base = base;
}

static void store_dtr(SoftCPU *cpu, const Insn *in, const X86DescTable *t)
{
    uint64_t ea = insn_ea(cpu, in);
    uint8_t buf[10];
    unsigned n = cpu->long64 ? 10 : 6;

    memcpy(buf, &t->limit, 2);
    memcpy(buf + 2, &t->base, 8);
    soft_write_bytes(cpu, in->seg, ea, buf, n);
}

void op_grp7(SoftCPU *cpu, const Insn *in)
{
    unsigned r = in->reg & 7;

    if (in->mod != 3) {
        switch (r) {
        case 0: store_dtr(cpu, in, &cpu->gdt); return;
        case 1: store_dtr(cpu, in, &cpu->idt); return;
        case 2: load_dtr(cpu, in, &cpu->gdt); return;
        case 3: load_dtr(cpu, in, &cpu->idt); return;
        case 4: soft_write(cpu, in->seg, insn_ea(cpu, in), 2, cpu->cr0); return;
        case 6: {
            uint64_t v;
            need_cpl0(cpu);
            v = soft_read(cpu, in->seg, insn_ea(cpu, in), 2);
            write_cr0(cpu, (cpu->cr0 & ~0xeULL) | (v & 0xf) | (cpu->cr0 & 1));
            return;
        }
        case 7: {
            uint64_t lin;
            need_cpl0(cpu);
            lin = soft_seg_check(cpu, in->seg, insn_ea(cpu, in), 1, false);
            soft_tlb_flush_page(cpu, lin);
            return;
        }
        default:
            soft_ud(cpu);
        }
    }
    switch (r) {
    case 4:
        reg_write(cpu, in, in->rm, in->osize, cpu->cr0);
        return;
    case 6: {
        uint64_t v;
        need_cpl0(cpu);
        v = reg_read(cpu, in, in->rm, 2);
        write_cr0(cpu, (cpu->cr0 & ~0xeULL) | (v & 0xf) | (cpu->cr0 & 1));
        return;
    }
    case 2:
        if ((in->rm & 7) == 0 || (in->rm & 7) == 1) {   /* XGETBV, XSETBV */
            if (!(cpu->cr4 & X86_CR4_OSXSAVE)) {
                soft_ud(cpu);
            }
            if ((uint32_t)cpu->regs[X86_RCX] != 0) {
                soft_gp0(cpu);
            }
            if ((in->rm & 7) == 0) {
                cpu->regs[X86_RAX] = (uint32_t)cpu->xcr0;
                cpu->regs[X86_RDX] = cpu->xcr0 >> 32;
                return;
            }
            uint64_t v = (cpu->regs[X86_RAX] & 0xffffffff) | (cpu->regs[X86_RDX] << 32);
            need_cpl0(cpu);
            if (!(v & 1) || (v & ~XCR0_SUPPORTED)) {
                soft_gp0(cpu);
            }
            cpu->xcr0 = v;
            return;
        }
        break;
    case 7:
        if ((in->rm & 7) == 0) {        /* SWAPGS */
            uint64_t t;
            if (!cpu->long64) {
                soft_ud(cpu);
            }
            need_cpl0(cpu);
            t = cpu->segs[X86_SEG_GS].base;
            cpu->segs[X86_SEG_GS].base = cpu->kernel_gs_base;
            cpu->kernel_gs_base = t;
            return;
        }
        if ((in->rm & 7) == 1) {        /* RDTSCP */
            op_rdtsc(cpu, in);
            cpu->regs[X86_RCX] = (uint32_t)cpu->tsc_aux;
            return;
        }
        break;
    default:
        break;
    }
    soft_ud(cpu);
}

static void sse_allowed(SoftCPU *cpu)
{
    if ((cpu->cr0 & X86_CR0_EM) || !(cpu->cr4 & X86_CR4_OSFXSR)) {
        soft_ud(cpu);
    }
    if (cpu->cr0 & X86_CR0_TS) {
        soft_raise_noerr(cpu, EXC_NM);
    }
}

void op_grp15(SoftCPU *cpu, const Insn *in)
{
    unsigned r = in->reg & 7;

    if (in->mod == 3) {
        if (in->rep == 0 && !in->has66 && r >= 5) {
            __atomic_thread_fence(__ATOMIC_SEQ_CST);    /* LFENCE/MFENCE/SFENCE */
            return;
        }
        soft_ud(cpu);
    }
    uint64_t ea = insn_ea(cpu, in);
    switch (r) {
    case 0: {   /* FXSAVE */
        uint8_t img[X86_FXSAVE_SIZE];
        if (cpu->cr0 & X86_CR0_EM) {
            soft_ud(cpu);
        }
        if (cpu->cr0 & X86_CR0_TS) {
            soft_raise_noerr(cpu, EXC_NM);
        }
        if (ea & 15) {
            soft_gp0(cpu);
        }
        soft_fxsave(cpu, img);
        if (!(in->rex & 8)) {
            /* The 32-bit layout has FCS/FDS where the high halves were. */
            memset(img + 12, 0, 4);
            memset(img + 20, 0, 4);
        }
        /* The reserved tail is not written. */
        soft_write_bytes(cpu, in->seg, ea, img, 416);
        return;
    }
    case 1: {   /* FXRSTOR */
        uint8_t img[X86_FXSAVE_SIZE];
        uint32_t mx;
        if (cpu->cr0 & X86_CR0_EM) {
            soft_ud(cpu);
        }
        if (cpu->cr0 & X86_CR0_TS) {
            soft_raise_noerr(cpu, EXC_NM);
        }
        if (ea & 15) {
            soft_gp0(cpu);
        }
        memset(img, 0, sizeof(img));
        soft_read_bytes(cpu, in->seg, ea, img, 416);
        memcpy(&mx, img + 24, 4);
        if (mx & ~0xffffu) {
            soft_gp0(cpu);
        }
        soft_fxrstor(cpu, img);
        return;
    }
    case 2: {   /* LDMXCSR */
        uint32_t v;
        sse_allowed(cpu);
        v = soft_read(cpu, in->seg, ea, 4);
        if (v & ~0xffffu) {
            soft_gp0(cpu);
        }
        cpu->mxcsr = v;
        return;
    }
    case 3:     /* STMXCSR */
        sse_allowed(cpu);
        soft_write(cpu, in->seg, ea, 4, cpu->mxcsr);
        return;
    case 4:     /* XSAVE */
    case 5: {   /* XRSTOR */
        uint64_t rfbm = cpu->xcr0 & ((cpu->regs[X86_RAX] & 0xffffffff) |
                                     (cpu->regs[X86_RDX] << 32));
        uint8_t img[XSAVE_HDR + 64];
        uint64_t bv;
        if (!(cpu->cr4 & X86_CR4_OSXSAVE) || in->rep || in->has66) {
            soft_ud(cpu);
        }
        if (cpu->cr0 & X86_CR0_TS) {
            soft_raise_noerr(cpu, EXC_NM);
        }
        if (ea & 63) {
            soft_gp0(cpu);
        }
        soft_read_bytes(cpu, in->seg, ea, img, sizeof(img));
        memcpy(&bv, img + XSAVE_HDR, 8);
        if (r == 4) {
            uint8_t cur[X86_FXSAVE_SIZE];
            soft_fxsave(cpu, cur);
            if (!(in->rex & 8)) {
                memset(cur + 12, 0, 4);
                memset(cur + 20, 0, 4);
            }
            if (rfbm & 1) {
                memcpy(img, cur, 24);
                memcpy(img + 32, cur + 32, 128);
            }
            if (rfbm & 2) {
                memcpy(img + 24, cur + 24, 8);
                memcpy(img + 160, cur + 160, 256);
            }
            bv = (bv & ~rfbm) | rfbm;
            memcpy(img + XSAVE_HDR, &bv, 8);
            soft_write_bytes(cpu, in->seg, ea, img, sizeof(img));
            return;
        }
        {
            uint8_t cur[X86_FXSAVE_SIZE];
            uint64_t comp;
            uint32_t mx;
            memcpy(&comp, img + XSAVE_HDR + 8, 8);
            if (comp || (bv & ~cpu->xcr0)) {
                soft_gp0(cpu);         /* compacted form, or components it lacks */
            }
            for (int k = XSAVE_HDR + 16; k < XSAVE_HDR + 64; k++) {
                if (img[k]) {
                    soft_gp0(cpu);
                }
            }
            memcpy(&mx, img + 24, 4);
            if ((rfbm & 2) && (mx & ~0xffffu)) {
                soft_gp0(cpu);
            }
            soft_fxsave(cpu, cur);
            if (rfbm & 1) {
                if (bv & 1) {
                    memcpy(cur, img, 24);
                    memcpy(cur + 32, img + 32, 128);
                } else {
                    /* The x87 init state. */
                    static const uint8_t fcw[2] = { 0x7f, 0x03 };
                    memset(cur, 0, 24);
                    memcpy(cur, fcw, 2);
                    memset(cur + 32, 0, 128);
                }
            }
            if (rfbm & 2) {
                memcpy(cur + 24, img + 24, 4);
                if (bv & 2) {
                    memcpy(cur + 160, img + 160, 256);
                } else {
                    memset(cur + 160, 0, 256);
                }
            }
            soft_fxrstor(cpu, cur);
        }
        return;
    }
    case 7:     /* CLFLUSH/CLFLUSHOPT: caches are coherent here */
        soft_read(cpu, in->seg, ea, 1);
        return;
    default:
        soft_ud(cpu);
    }
}

void op_fwait(SoftCPU *cpu, const Insn *in)
{
    if ((cpu->cr0 & (X86_CR0_TS | X86_CR0_MP)) == (X86_CR0_TS | X86_CR0_MP)) {
        soft_raise_noerr(cpu, EXC_NM);
    }
}

void op_clts(SoftCPU *cpu, const Insn *in)
{
    need_cpl0(cpu);
    cpu->cr0 &= ~X86_CR0_TS;
}
