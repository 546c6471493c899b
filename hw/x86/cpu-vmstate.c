/*
 * The neutral vCPU state (include/hw/x86/cpu-state.h) in the migration
 * stream, as ("x86-cpu", index), for every accelerator. Read from the
 * vCPU before saving and written back after loading, both with it paused.
 *
 * KVM adds what this form cannot hold in its own section ("kvm-cpu",
 * accel/kvm/kvm-state.c), loaded just before this one.
 *
 * Versions: 1 had no variable or fixed MTRRs and no tsc_adjust (its tsc
 * was the TSC all vCPUs shared); 2 adds them. A version 1 stream still
 * loads, and those fields then take their power-on values.
 */
#include <string.h>
#include <gio/gio.h>

#include "hw/x86/cpu-vmstate.h"
#include "migration/register.h"
#include "migration/vmstate.h"
#include "system/cpus.h"

typedef struct X86CPUMigState {
    int index;
    X86CPUState st;
} X86CPUMigState;

static bool x86_cpu_pre_save(void *opaque, GError **errp)
{
    X86CPUMigState *m = opaque;
    return cpu_get_state(m->index, &m->st, errp);
}

static bool x86_cpu_post_load(void *opaque, int version_id, GError **errp)
{
    X86CPUMigState *m = opaque;
    X86CPUState *st = &m->st;

    if (version_id < 2) {
        /* Not in the stream: m->st may still hold this side's last save. */
        memset(st->mtrr_var, 0, sizeof(st->mtrr_var));
        memset(st->mtrr_fixed, 0, sizeof(st->mtrr_fixed));
        st->tsc_adjust = 0;
    }

    if (st->xsave_len < X86_FXSAVE_SIZE || st->xsave_len > X86_XSAVE_MAX) {
        g_set_error(errp, VMSTATE_ERROR, 0, "vCPU %d: XSAVE area of %u bytes is out of range",
                    m->index, st->xsave_len);
        return false;
    }
    return cpu_set_state(m->index, st, errp);
}

static const VMStateDescription vmstate_x86_segment = {
    .name = "x86-segment",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(base, X86Segment),
        VMSTATE_UINT32(limit, X86Segment),
        VMSTATE_UINT16(selector, X86Segment),
        VMSTATE_UINT8_RANGE(type, X86Segment, 0, 15),
        VMSTATE_UINT8_RANGE(s, X86Segment, 0, 1),
        VMSTATE_UINT8_RANGE(dpl, X86Segment, 0, 3),
        VMSTATE_UINT8_RANGE(present, X86Segment, 0, 1),
        VMSTATE_UINT8_RANGE(avl, X86Segment, 0, 1),
        VMSTATE_UINT8_RANGE(l, X86Segment, 0, 1),
        VMSTATE_UINT8_RANGE(db, X86Segment, 0, 1),
        VMSTATE_UINT8_RANGE(g, X86Segment, 0, 1),
        VMSTATE_UINT8_RANGE(unusable, X86Segment, 0, 1),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_x86_dtable = {
    .name = "x86-dtable",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(base, X86DescTable),
        VMSTATE_UINT16(limit, X86DescTable),
        VMSTATE_END_OF_LIST()
    },
};

const VMStateDescription vmstate_x86_cpu = {
    .name = "x86-cpu",
    .version_id = 2,
    .minimum_version_id = 1,
    .pre_save = x86_cpu_pre_save,
    .post_load = x86_cpu_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64_ARRAY(st.regs, X86CPUMigState, X86_NR_GPRS),
        VMSTATE_UINT64(st.rip, X86CPUMigState),
        VMSTATE_UINT64(st.rflags, X86CPUMigState),
        VMSTATE_STRUCT_ARRAY(st.segs, X86CPUMigState, X86_NR_SEGS, vmstate_x86_segment,
                             X86Segment),
        VMSTATE_STRUCT(st.gdt, X86CPUMigState, vmstate_x86_dtable, X86DescTable),
        VMSTATE_STRUCT(st.idt, X86CPUMigState, vmstate_x86_dtable, X86DescTable),
        VMSTATE_UINT64(st.cr0, X86CPUMigState),
        VMSTATE_UINT64(st.cr2, X86CPUMigState),
        VMSTATE_UINT64(st.cr3, X86CPUMigState),
        VMSTATE_UINT64(st.cr4, X86CPUMigState),
        VMSTATE_UINT64(st.cr8, X86CPUMigState),
        VMSTATE_UINT64(st.efer, X86CPUMigState),
        VMSTATE_UINT64(st.xcr0, X86CPUMigState),
        VMSTATE_UINT64_ARRAY(st.dr, X86CPUMigState, 4),
        VMSTATE_UINT64(st.dr6, X86CPUMigState),
        VMSTATE_UINT64(st.dr7, X86CPUMigState),
        VMSTATE_UINT64(st.apic_base, X86CPUMigState),
        VMSTATE_UINT64(st.tsc, X86CPUMigState),
        VMSTATE_UINT64(st.tsc_aux, X86CPUMigState),
        VMSTATE_UINT64(st.tsc_deadline, X86CPUMigState),
        VMSTATE_UINT64(st.star, X86CPUMigState),
        VMSTATE_UINT64(st.lstar, X86CPUMigState),
        VMSTATE_UINT64(st.cstar, X86CPUMigState),
        VMSTATE_UINT64(st.sfmask, X86CPUMigState),
        VMSTATE_UINT64(st.kernel_gs_base, X86CPUMigState),
        VMSTATE_UINT64(st.sysenter_cs, X86CPUMigState),
        VMSTATE_UINT64(st.sysenter_esp, X86CPUMigState),
        VMSTATE_UINT64(st.sysenter_eip, X86CPUMigState),
        VMSTATE_UINT64(st.pat, X86CPUMigState),
        VMSTATE_UINT64(st.misc_enable, X86CPUMigState),
        VMSTATE_UINT64(st.mtrr_def_type, X86CPUMigState),
        VMSTATE_UINT32_RANGE(st.xsave_len, X86CPUMigState, X86_FXSAVE_SIZE, X86_XSAVE_MAX),
        VMSTATE_BUFFER(st.xsave, X86CPUMigState),
        VMSTATE_UINT8_RANGE(st.exception_pending, X86CPUMigState, 0, 1),
        VMSTATE_UINT8_RANGE(st.exception_vector, X86CPUMigState, 0, 31),
        VMSTATE_UINT8_RANGE(st.exception_has_error, X86CPUMigState, 0, 1),
        VMSTATE_UINT32(st.exception_error, X86CPUMigState),
        VMSTATE_UINT8_RANGE(st.interrupt_injected, X86CPUMigState, 0, 1),
        VMSTATE_UINT8(st.interrupt_vector, X86CPUMigState),
        VMSTATE_UINT8_RANGE(st.nmi_pending, X86CPUMigState, 0, 1),
        VMSTATE_UINT8_RANGE(st.nmi_masked, X86CPUMigState, 0, 1),
        VMSTATE_UINT8_RANGE(st.interrupt_shadow, X86CPUMigState, 0, 3),
        VMSTATE_UINT32_RANGE(st.mp_state, X86CPUMigState, X86_MP_RUNNABLE,
                             X86_MP_WAIT_FOR_SIPI),
        /* Version 2. */
        VMSTATE_UINT64_ARRAY_V(st.mtrr_var, X86CPUMigState, 2 * X86_MTRR_NR_VAR, 2),
        VMSTATE_UINT64_ARRAY_V(st.mtrr_fixed, X86CPUMigState, X86_MTRR_NR_FIXED, 2),
        VMSTATE_UINT64_V(st.tsc_adjust, X86CPUMigState, 2),
        VMSTATE_END_OF_LIST()
    },
};

void x86_cpu_vmstate_register(int index)
{
    X86CPUMigState *m = g_new0(X86CPUMigState, 1);
    m->index = index;
    vmstate_register(NULL, (uint32_t)index, &vmstate_x86_cpu, m);
}
