/*
 * The software CPU's public API (include/accel/soft-cpu.h): creation,
 * state in and out, the run loop, and the requests other threads post.
 */
#include <stdlib.h>

#include "soft-internal.h"

void soft_cpu_update_mode(SoftCPU *cpu)
{
    const X86Segment *cs = &cpu->segs[X86_SEG_CS];

    cpu->long64 = cpu_lma(cpu) && cs->l;
    cpu->code32 = cs->db;
    if (!cpu_pe(cpu)) {
        cpu->cpl = 0;
    } else if (cpu_vm86(cpu)) {
        cpu->cpl = 3;
    }
    cpu->midx = cpu->cpl == 3;
    soft_update_ac(cpu);
    cpu->exit_block = 1;
}

static void seg_real(X86Segment *s, uint16_t sel, uint8_t type)
{
    memset(s, 0, sizeof(*s));
    s->selector = sel;
    s->base = (uint64_t)sel << 4;
    s->limit = 0xffff;
    s->type = type;
    s->s = 1;
    s->present = 1;
}

/* The architectural state after RESET or INIT (SDM vol. 3, 9.1.1). */
static void cpu_reset_regs(SoftCPU *cpu, bool init)
{
    memset(cpu->regs, 0, sizeof(cpu->regs));
    cpu->regs[X86_RDX] = 0x600;
    cpu->rip = cpu->next_rip = 0xfff0;
    soft_set_rflags(cpu, 0);
    for (int i = 0; i < 6; i++) {
        seg_real(&cpu->segs[i], 0, i == X86_SEG_CS ? 0xb : 0x3);
    }
    cpu->segs[X86_SEG_CS].selector = 0xf000;
    cpu->segs[X86_SEG_CS].base = 0xffff0000;
    memset(&cpu->segs[X86_SEG_LDT], 0, sizeof(X86Segment));
    cpu->segs[X86_SEG_LDT].type = 2;
    cpu->segs[X86_SEG_LDT].present = 1;
    cpu->segs[X86_SEG_LDT].limit = 0xffff;
    memset(&cpu->segs[X86_SEG_TR], 0, sizeof(X86Segment));
    cpu->segs[X86_SEG_TR].type = 0xb;
    cpu->segs[X86_SEG_TR].present = 1;
    cpu->segs[X86_SEG_TR].limit = 0xffff;
    cpu->gdt.base = cpu->idt.base = 0;
    cpu->gdt.limit = cpu->idt.limit = 0xffff;
    cpu->cr0 = X86_CR0_ET | X86_CR0_NW | X86_CR0_CD;
    cpu->cr2 = cpu->cr3 = cpu->cr4 = 0;
    cpu->efer = 0;
    cpu->xcr0 = 1;
    memset(cpu->dr, 0, sizeof(cpu->dr));
    cpu->dr6 = 0xffff0ff0;
    cpu->dr7 = 0x400;
    cpu->star = cpu->lstar = cpu->cstar = cpu->sfmask = 0;
    cpu->kernel_gs_base = 0;
    cpu->sysenter_cs = cpu->sysenter_esp = cpu->sysenter_eip = 0;
    if (!init) {
        cpu->pat = 0x0007040600070406ULL;
        cpu->misc_enable = 1;
        cpu->mtrr_def_type = 0;
        memset(cpu->mtrr_var, 0, sizeof(cpu->mtrr_var));
        memset(cpu->mtrr_fixed, 0, sizeof(cpu->mtrr_fixed));
        cpu->tsc_aux = 0;
        soft_fpu_reset(cpu);
    }
    cpu->cpl = 0;
    cpu->shadow = 0;
    cpu->nmi_masked = 0;
    cpu->pending_nmi = 0;
    cpu->exc_pending = false;
    cpu->delivering = -1;
    soft_cpu_update_mode(cpu);
    soft_tlb_flush_all(cpu);
}

SoftCPU *soft_cpu_new(const SoftCPUHooks *hooks, void *opaque, int cpuid_index, int nr_cpus)
{
    /* calloc: a block this large comes zeroed from the kernel, untouched. */
    SoftCPU *cpu = calloc(1, sizeof(SoftCPU));

    if (!cpu) {
        g_error("soft-cpu: out of memory for a vCPU");
    }
    cpu->hooks = hooks;
    cpu->opaque = opaque;
    cpu->cpuid_index = cpuid_index;
    cpu->nr_cpus = nr_cpus > 0 ? nr_cpus : 1;
    cpu->blocks = soft_blocks_new();
    if (!cpu->blocks) {
        g_error("soft-cpu: out of memory for the decoded-block cache");
    }
    cpu->jit = soft_jit_new();
    cpu->apic_base = X86_APIC_BASE_DEFAULT | X86_APIC_BASE_ENABLE |
                     (cpuid_index == 0 ? X86_APIC_BASE_BSP : 0);
    cpu_reset_regs(cpu, false);
    cpu->mp_state = cpuid_index == 0 ? X86_MP_RUNNABLE : X86_MP_WAIT_FOR_SIPI;
    return cpu;
}

void soft_cpu_free(SoftCPU *cpu)
{
    if (!cpu) {
        return;
    }
    soft_blocks_free(cpu->blocks);
    soft_jit_free(cpu->jit);
    free(cpu);
}

/* The hook's TSC plus what a guest WRMSR to the TSC added on this vCPU. */
uint64_t soft_guest_tsc(SoftCPU *cpu)
{
    uint64_t t = cpu->hooks->read_tsc ? cpu->hooks->read_tsc(cpu->opaque) : cpu->insn_count;

    return t + cpu->tsc_offset;
}

int64_t soft_cpu_tsc_adjust(SoftCPU *cpu)
{
    return __atomic_load_n(&cpu->tsc_offset, __ATOMIC_RELAXED);
}

/*
 * A pure read: other threads (the monitor) ask for the state, and applying
 * requests here would flush and reset the vCPU behind its own thread.
 * Posted requests stay pending for its next soft_cpu_run(). Only a posted
 * NMI is reflected (in nmi_pending), being a flag of the state that the
 * vCPU would set idempotently anyway; a posted INIT or SIPI is not, as the
 * state is what the vCPU holds until it runs again.
 */
void soft_cpu_get_state(SoftCPU *cpu, X86CPUState *st)
{
    uint32_t req = __atomic_load_n(&cpu->req, __ATOMIC_ACQUIRE);

    memset(st, 0, sizeof(*st));
    memcpy(st->regs, cpu->regs, sizeof(st->regs));
    st->rip = cpu->rip;
    st->rflags = soft_get_rflags(cpu);
    memcpy(st->segs, cpu->segs, sizeof(st->segs));
    st->gdt = cpu->gdt;
    st->idt = cpu->idt;
    st->cr0 = cpu->cr0;
    st->cr2 = cpu->cr2;
    st->cr3 = cpu->cr3;
    st->cr4 = cpu->cr4;
    st->cr8 = cpu->hooks->read_cr8 ? cpu->hooks->read_cr8(cpu->opaque) : 0;
    st->efer = cpu->efer;
    st->xcr0 = cpu->xcr0;
    memcpy(st->dr, cpu->dr, sizeof(st->dr));
    st->dr6 = cpu->dr6;
    st->dr7 = cpu->dr7;
    st->apic_base = cpu->apic_base;
    st->tsc = soft_guest_tsc(cpu);
    st->tsc_adjust = (uint64_t)cpu->tsc_offset;
    st->tsc_aux = cpu->tsc_aux;
    st->tsc_deadline = cpu->tsc_deadline;
    st->star = cpu->star;
    st->lstar = cpu->lstar;
    st->cstar = cpu->cstar;
    st->sfmask = cpu->sfmask;
    st->kernel_gs_base = cpu->kernel_gs_base;
    st->sysenter_cs = cpu->sysenter_cs;
    st->sysenter_esp = cpu->sysenter_esp;
    st->sysenter_eip = cpu->sysenter_eip;
    st->pat = cpu->pat;
    st->misc_enable = cpu->misc_enable;
    st->mtrr_def_type = cpu->mtrr_def_type;
    memcpy(st->mtrr_var, cpu->mtrr_var, sizeof(st->mtrr_var));
    memcpy(st->mtrr_fixed, cpu->mtrr_fixed, sizeof(st->mtrr_fixed));
    soft_fxsave(cpu, st->xsave);
    st->xsave_len = X86_FXSAVE_SIZE;
    if (cpu->exc_pending) {
        st->exception_pending = 1;
        st->exception_vector = cpu->exc_vector;
        st->exception_has_error = cpu->exc_has_error;
        st->exception_error = cpu->exc_error;
    }
    if (cpu->has_pending_irq) {
        /* Injected by set_state and not yet delivered: hand it on. */
        st->interrupt_injected = 1;
        st->interrupt_vector = cpu->pending_irq;
    }
    st->nmi_pending = cpu->pending_nmi ||
                      ((req & REQ_NMI) && cpu->mp_state != X86_MP_WAIT_FOR_SIPI);
    st->nmi_masked = cpu->nmi_masked;
    st->interrupt_shadow = cpu->shadow;
    st->mp_state = cpu->mp_state;
}

void soft_cpu_set_state(SoftCPU *cpu, const X86CPUState *st)
{
    memcpy(cpu->regs, st->regs, sizeof(cpu->regs));
    cpu->rip = cpu->next_rip = st->rip;
    soft_set_rflags(cpu, st->rflags);
    memcpy(cpu->segs, st->segs, sizeof(cpu->segs));
    cpu->gdt = st->gdt;
    cpu->idt = st->idt;
    cpu->cr0 = st->cr0;
    cpu->cr2 = st->cr2;
    cpu->cr3 = st->cr3;
    cpu->cr4 = st->cr4;
    cpu->efer = st->efer;
    cpu->xcr0 = st->xcr0 ? st->xcr0 : 1;
    memcpy(cpu->dr, st->dr, sizeof(cpu->dr));
    cpu->dr6 = st->dr6;
    cpu->dr7 = st->dr7;
    cpu->apic_base = st->apic_base;
    /*
     * The time base is the read_tsc hook's (its owner sets it from
     * st->tsc - st->tsc_adjust); this vCPU keeps only its own part.
     */
    cpu->tsc_offset = (int64_t)st->tsc_adjust;
    cpu->tsc_aux = st->tsc_aux;
    cpu->tsc_deadline = st->tsc_deadline;
    cpu->star = st->star;
    cpu->lstar = st->lstar;
    cpu->cstar = st->cstar;
    cpu->sfmask = st->sfmask;
    cpu->kernel_gs_base = st->kernel_gs_base;
    cpu->sysenter_cs = st->sysenter_cs;
    cpu->sysenter_esp = st->sysenter_esp;
    cpu->sysenter_eip = st->sysenter_eip;
    cpu->pat = st->pat;
    cpu->misc_enable = st->misc_enable;
    cpu->mtrr_def_type = st->mtrr_def_type;
    memcpy(cpu->mtrr_var, st->mtrr_var, sizeof(cpu->mtrr_var));
    memcpy(cpu->mtrr_fixed, st->mtrr_fixed, sizeof(cpu->mtrr_fixed));
    soft_fxrstor(cpu, st->xsave);
    cpu->exc_pending = st->exception_pending;
    cpu->exc_vector = st->exception_vector;
    cpu->exc_has_error = st->exception_has_error;
    cpu->exc_error = st->exception_error;
    cpu->pending_nmi = st->nmi_pending;
    cpu->nmi_masked = st->nmi_masked;
    cpu->shadow = st->interrupt_shadow;
    cpu->mp_state = st->mp_state;
    cpu->delivering = -1;
    if (st->interrupt_injected) {
        /* Re-deliver at the next boundary as if just acknowledged. */
        cpu->exc_pending = false;
        cpu->pending_irq = st->interrupt_vector;
        cpu->has_pending_irq = true;
    }
    if (!cpu_pe(cpu)) {
        cpu->cpl = 0;
    } else if (cpu_vm86(cpu)) {
        cpu->cpl = 3;
    } else {
        cpu->cpl = cpu->segs[X86_SEG_SS].dpl;
    }
    soft_cpu_update_mode(cpu);
    soft_tlb_flush_all(cpu);
}

/*
 * Machine reset: nothing posted or in flight before it may act after it
 * (a stale INIT would park the BSP in wait-for-SIPI), and every register
 * comes back to its power-on value.
 */
void soft_cpu_reset(SoftCPU *cpu)
{
    /*
     * REQ_INTR only makes the core ask the interrupt controller again,
     * which is harmless; dropping it could lose an edge raised during the
     * reset. A dirty flush is covered by the drop below.
     */
    __atomic_and_fetch(&cpu->req, REQ_INTR, __ATOMIC_SEQ_CST);
    cpu->sipi_vector = 0;
    cpu_reset_regs(cpu, false);
    cpu->mp_state = cpu->cpuid_index == 0 ? X86_MP_RUNNABLE : X86_MP_WAIT_FOR_SIPI;
    cpu->has_pending_irq = false;
    cpu->pending_irq = 0;
    cpu->exc_vector = 0;
    cpu->exc_error = 0;
    cpu->exc_has_error = false;
    cpu->shutdown = false;
    cpu->tsc_offset = 0;
    cpu->tsc_deadline = 0;
    soft_tlb_drop_writes(cpu);
    soft_blocks_flush(cpu);
}

static void do_init(SoftCPU *cpu)
{
    cpu_reset_regs(cpu, true);
    cpu->has_pending_irq = false;
    cpu->mp_state = X86_MP_WAIT_FOR_SIPI;
}

static void do_sipi(SoftCPU *cpu, uint8_t vector)
{
    if (cpu->mp_state != X86_MP_WAIT_FOR_SIPI) {
        return;
    }
    seg_real(&cpu->segs[X86_SEG_CS], (uint16_t)vector << 8, 0xb);
    cpu->rip = cpu->next_rip = 0;
    cpu->mp_state = X86_MP_RUNNABLE;
    soft_cpu_update_mode(cpu);
}

/* Requests that change state without running code; any order-safe. */
static void apply_requests(SoftCPU *cpu)
{
    uint32_t req = __atomic_load_n(&cpu->req, __ATOMIC_ACQUIRE);

    if (req & REQ_DIRTY_FLUSH) {
        __atomic_and_fetch(&cpu->req, ~REQ_DIRTY_FLUSH, __ATOMIC_SEQ_CST);
        soft_tlb_drop_writes(cpu);
    }
    if (req & REQ_TLB_FLUSH) {
        __atomic_and_fetch(&cpu->req, ~REQ_TLB_FLUSH, __ATOMIC_SEQ_CST);
        soft_tlb_flush_all(cpu);
        soft_blocks_flush(cpu);
    }
    if (req & REQ_INIT) {
        __atomic_and_fetch(&cpu->req, ~REQ_INIT, __ATOMIC_SEQ_CST);
        do_init(cpu);
    }
    if (req & REQ_SIPI) {
        __atomic_and_fetch(&cpu->req, ~REQ_SIPI, __ATOMIC_SEQ_CST);
        do_sipi(cpu, __atomic_load_n(&cpu->sipi_vector, __ATOMIC_ACQUIRE));
    }
    if (req & REQ_NMI) {
        __atomic_and_fetch(&cpu->req, ~REQ_NMI, __ATOMIC_SEQ_CST);
        if (cpu->mp_state != X86_MP_WAIT_FOR_SIPI) {
            cpu->pending_nmi = 1;
        }
    }
}

/*
 * Take an external interrupt or NMI if one is pending and allowed.
 * Returns true when one was delivered.
 */
static bool check_interrupts(SoftCPU *cpu)
{
    if (cpu->mp_state == X86_MP_WAIT_FOR_SIPI) {
        return false;
    }
    if (cpu->pending_nmi && !cpu->nmi_masked) {
        cpu->pending_nmi = 0;
        cpu->mp_state = X86_MP_RUNNABLE;
        soft_deliver_interrupt(cpu, EXC_NMI, false, false, 0, cpu->rip);
        return true;
    }
    if (!(cpu->rflags & X86_RFLAGS_IF)) {
        return false;
    }
    if (cpu->has_pending_irq) {
        cpu->has_pending_irq = false;
        cpu->mp_state = X86_MP_RUNNABLE;
        soft_deliver_interrupt(cpu, cpu->pending_irq, false, false, 0, cpu->rip);
        return true;
    }
    if (__atomic_load_n(&cpu->req, __ATOMIC_ACQUIRE) & REQ_INTR) {
        int v;

        /* Clear before asking so a concurrent change is not lost. */
        __atomic_and_fetch(&cpu->req, ~REQ_INTR, __ATOMIC_SEQ_CST);
        v = cpu->hooks->get_interrupt ? cpu->hooks->get_interrupt(cpu->opaque) : -1;
        if (v >= 0) {
            if (cpu->hooks->ack_interrupt) {
                cpu->hooks->ack_interrupt(cpu->opaque, v);
            }
            /* Another may be queued behind it: ask again next boundary. */
            __atomic_or_fetch(&cpu->req, REQ_INTR, __ATOMIC_SEQ_CST);
            cpu->mp_state = X86_MP_RUNNABLE;
            soft_deliver_interrupt(cpu, v, false, false, 0, cpu->rip);
            return true;
        }
    }
    return false;
}

SoftCPUExit soft_cpu_run(SoftCPU *cpu, uint64_t max_insns)
{
    cpu->insn_limit = max_insns ? cpu->insn_count + max_insns : UINT64_MAX;
    if (sigsetjmp(cpu->jb, 0)) {
        if (cpu->shutdown) {
            cpu->shutdown = false;
            cpu->exc_pending = false;
            cpu->delivering = -1;
            return SOFT_EXIT_SHUTDOWN;
        }
    }
    for (;;) {
        bool inhibit;

        if (unlikely(cpu->exc_pending)) {
            /*
             * Each delivery uses one unit of the budget: a handler that
             * faults at once (and a real-mode stack never runs out) would
             * otherwise loop here without ever completing an instruction.
             */
            if (cpu->insn_count >= cpu->insn_limit) {
                return SOFT_EXIT_LIMIT;
            }
            if (cpu->insn_limit != UINT64_MAX) {
                cpu->insn_limit--;
            }
            if (__atomic_load_n(&cpu->req, __ATOMIC_RELAXED) & REQ_KICK) {
                __atomic_and_fetch(&cpu->req, ~REQ_KICK, __ATOMIC_SEQ_CST);
                return SOFT_EXIT_KICKED;
            }
            soft_deliver_pending_exception(cpu);
        }
        /*
         * Store only when set: an unconditional byte store here stalls the
         * wider load the compiler makes of the neighbouring fields below.
         */
        inhibit = cpu->shadow;
        if (unlikely(inhibit)) {
            cpu->shadow = 0;
        }
        if (unlikely(__atomic_load_n(&cpu->req, __ATOMIC_RELAXED) ||
                     cpu->pending_nmi || cpu->has_pending_irq ||
                     cpu->mp_state != X86_MP_RUNNABLE)) {
            uint32_t req;

            apply_requests(cpu);
            if (!inhibit) {
                if (check_interrupts(cpu)) {
                    continue;
                }
            } else {
                cpu->shadow = 1;    /* keep it for the instruction below */
            }
            req = __atomic_load_n(&cpu->req, __ATOMIC_ACQUIRE);
            if (req & REQ_KICK) {
                __atomic_and_fetch(&cpu->req, ~REQ_KICK, __ATOMIC_SEQ_CST);
                return SOFT_EXIT_KICKED;
            }
            if (cpu->mp_state != X86_MP_RUNNABLE) {
                return SOFT_EXIT_HALTED;
            }
            cpu->shadow = 0;
        }
        if (unlikely(cpu->insn_count >= cpu->insn_limit)) {
            cpu->shadow = inhibit;
            return SOFT_EXIT_LIMIT;
        }
        if (unlikely(cpu->rflags & X86_RFLAGS_TF)) {
            /*
             * Single-step: TF at the start of an instruction traps after
             * it, unless it entered an interrupt handler (INT n clears TF).
             */
            cpu->entered_handler = false;
            soft_run_one(cpu);
            if (!cpu->entered_handler) {
                cpu->dr6 |= 0x4000;
                cpu->exc_vector = EXC_DB;
                cpu->exc_error = 0;
                cpu->exc_has_error = false;
                cpu->exc_pending = true;
            }
            continue;
        }
        soft_run_block(cpu);
    }
}

void soft_cpu_kick(SoftCPU *cpu)
{
    __atomic_or_fetch(&cpu->req, REQ_KICK, __ATOMIC_SEQ_CST);
}

void soft_cpu_interrupt_changed(SoftCPU *cpu)
{
    __atomic_or_fetch(&cpu->req, REQ_INTR, __ATOMIC_SEQ_CST);
}

void soft_cpu_flush_dirty_tracking(SoftCPU *cpu)
{
    __atomic_or_fetch(&cpu->req, REQ_DIRTY_FLUSH, __ATOMIC_SEQ_CST);
}

void soft_cpu_invalidate_code(SoftCPU *cpu, uint64_t gpa, uint64_t len)
{
    uint64_t end = gpa + len;

    for (uint64_t p = gpa & PAGE_MASK; p < end; p += PAGE_SIZE) {
        soft_code_written(p);
    }
}

void soft_cpu_flush_tlb(SoftCPU *cpu)
{
    __atomic_or_fetch(&cpu->req, REQ_TLB_FLUSH, __ATOMIC_SEQ_CST);
}

void soft_cpu_init_signal(SoftCPU *cpu)
{
    __atomic_and_fetch(&cpu->req, ~REQ_SIPI, __ATOMIC_SEQ_CST);
    __atomic_or_fetch(&cpu->req, REQ_INIT, __ATOMIC_SEQ_CST);
}

void soft_cpu_sipi(SoftCPU *cpu, uint8_t vector)
{
    __atomic_store_n(&cpu->sipi_vector, vector, __ATOMIC_RELEASE);
    __atomic_or_fetch(&cpu->req, REQ_SIPI, __ATOMIC_SEQ_CST);
}

void soft_cpu_nmi(SoftCPU *cpu)
{
    __atomic_or_fetch(&cpu->req, REQ_NMI, __ATOMIC_SEQ_CST);
}

uint64_t soft_cpu_insn_count(SoftCPU *cpu)
{
    return cpu->insn_count;
}
