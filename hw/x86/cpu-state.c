/*
 * The power-on state of an x86 vCPU in the neutral form (SDM vol. 3,
 * "Processor State After Reset"), for accelerators that keep the state
 * themselves.
 */
#include <string.h>

#include "hw/x86/cpu-state.h"

void x86_cpu_state_reset(X86CPUState *st, int index)
{
    memset(st, 0, sizeof(*st));
    X86Segment data = {
        .base = 0, .limit = 0xffff, .selector = 0, .type = 0x3, .present = 1, .s = 1,
    };
    for (int i = 0; i < 6; i++) {
        st->segs[i] = data;
    }
    X86Segment *cs = &st->segs[X86_SEG_CS];
    cs->type = 0xb;
    cs->selector = 0xf000;
    cs->base = 0xffff0000;
    st->segs[X86_SEG_LDT] = (X86Segment) { .limit = 0xffff, .type = 0x2, .present = 1 };
    st->segs[X86_SEG_TR] = (X86Segment) { .limit = 0xffff, .type = 0xb, .present = 1 };
    st->gdt.limit = 0xffff;
    st->idt.limit = 0xffff;
    st->rip = 0xfff0;
    st->rflags = X86_RFLAGS_FIXED;
    st->regs[X86_RDX] = 0x600;      /* family 6 */
    st->cr0 = X86_CR0_ET | X86_CR0_NW | X86_CR0_CD;
    st->xcr0 = 1;
    st->dr6 = 0xffff0ff0;
    st->dr7 = 0x400;
    st->pat = 0x0007040600070406ULL;
    st->misc_enable = 1;            /* fast strings */
    st->apic_base = X86_APIC_BASE_DEFAULT | X86_APIC_BASE_ENABLE |
                    (index == 0 ? X86_APIC_BASE_BSP : 0);
    /* x87 control word 0x37f, tag word all empty (abridged: 0), MXCSR 0x1f80. */
    st->xsave[0] = 0x7f;
    st->xsave[1] = 0x03;
    *x86_cpu_state_mxcsr(st) = 0x1f80;
    st->xsave_len = X86_FXSAVE_SIZE;
    st->mp_state = index == 0 ? X86_MP_RUNNABLE : X86_MP_WAIT_FOR_SIPI;
}
