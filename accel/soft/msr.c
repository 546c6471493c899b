/*
 * Model-specific registers the core keeps itself; the APIC's and the TSC
 * deadline go to the machine's hooks. Unknown MSRs raise #GP.
 */
#include "soft-internal.h"

#define MSR_PLATFORM_ID     0x17
#define MSR_FEATURE_CONTROL 0x3a
#define MSR_UCODE_REV       0x8b
#define MSR_MCG_CAP         0x179
#define MSR_MCG_STATUS      0x17a
#define MSR_DEBUGCTL        0x1d9
#define MSR_MTRR_VAR_FIRST  X86_MSR_MTRR_PHYSBASE0
#define MSR_MTRR_VAR_LAST   (X86_MSR_MTRR_PHYSBASE0 + 2 * X86_MTRR_NR_VAR - 1)

/*
 * Write-combining, fixed ranges and as many variable ranges as the
 * neutral state carries (and the core keeps).
 */
#define MTRRCAP_VALUE       ((1ULL << 10) | X86_MTRRCAP_FIX | X86_MTRR_NR_VAR)

static bool canonical(uint64_t v)
{
    return (uint64_t)(((int64_t)v >> 47) + 1) <= 1;
}

static int fixed_mtrr_index(uint32_t msr)
{
    for (int i = 0; i < X86_MTRR_NR_FIXED; i++) {
        if (x86_mtrr_fixed_msr(i) == msr) {
            return i;
        }
    }
    return -1;
}

static bool pat_valid(uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        unsigned t = (v >> (8 * i)) & 0xff;
        if (t == 2 || t == 3 || t > 7) {
            return false;
        }
    }
    return true;
}

static bool hook_msr(uint32_t msr)
{
    return msr == X86_MSR_APIC_BASE || msr == X86_MSR_TSC_DEADLINE ||
           (msr >= 0x800 && msr <= 0x8ff);
}

bool soft_rdmsr(SoftCPU *cpu, uint32_t msr, uint64_t *v)
{
    int fi;

    if (hook_msr(msr)) {
        if (cpu->hooks->rdmsr) {
            return cpu->hooks->rdmsr(cpu->opaque, msr, v);
        }
        if (msr == X86_MSR_APIC_BASE) {
            *v = cpu->apic_base;
            return true;
        }
        return false;
    }
    switch (msr) {
    case X86_MSR_TSC:
        *v = soft_guest_tsc(cpu);
        return true;
    case MSR_PLATFORM_ID: case MSR_UCODE_REV: case MSR_MCG_CAP:
    case MSR_MCG_STATUS: case MSR_DEBUGCTL:
        *v = 0;
        return true;
    case MSR_FEATURE_CONTROL:
        *v = 1;                             /* locked, nothing enabled */
        return true;
    case X86_MSR_MTRRCAP:
        *v = MTRRCAP_VALUE;
        return true;
    case X86_MSR_MTRR_DEF_TYPE: *v = cpu->mtrr_def_type; return true;
    case X86_MSR_MISC_ENABLE: *v = cpu->misc_enable; return true;
    case X86_MSR_SYSENTER_CS: *v = cpu->sysenter_cs; return true;
    case X86_MSR_SYSENTER_ESP: *v = cpu->sysenter_esp; return true;
    case X86_MSR_SYSENTER_EIP: *v = cpu->sysenter_eip; return true;
    case X86_MSR_PAT: *v = cpu->pat; return true;
    case X86_MSR_EFER: *v = cpu->efer; return true;
    case X86_MSR_STAR: *v = cpu->star; return true;
    case X86_MSR_LSTAR: *v = cpu->lstar; return true;
    case X86_MSR_CSTAR: *v = cpu->cstar; return true;
    case X86_MSR_SFMASK: *v = cpu->sfmask; return true;
    case X86_MSR_FS_BASE: *v = cpu->segs[X86_SEG_FS].base; return true;
    case X86_MSR_GS_BASE: *v = cpu->segs[X86_SEG_GS].base; return true;
    case X86_MSR_KERNEL_GS_BASE: *v = cpu->kernel_gs_base; return true;
    case X86_MSR_TSC_AUX: *v = cpu->tsc_aux; return true;
    default:
        break;
    }
    if (msr >= MSR_MTRR_VAR_FIRST && msr <= MSR_MTRR_VAR_LAST) {
        *v = cpu->mtrr_var[msr - MSR_MTRR_VAR_FIRST];
        return true;
    }
    fi = fixed_mtrr_index(msr);
    if (fi >= 0) {
        *v = cpu->mtrr_fixed[fi];
        return true;
    }
    return false;
}

bool soft_wrmsr(SoftCPU *cpu, uint32_t msr, uint64_t v)
{
    int fi;

    if (hook_msr(msr)) {
        if (cpu->hooks->wrmsr) {
            if (!cpu->hooks->wrmsr(cpu->opaque, msr, v)) {
                return false;
            }
            if (msr == X86_MSR_APIC_BASE) {
                cpu->apic_base = v;
            }
            return true;
        }
        if (msr == X86_MSR_APIC_BASE) {
            cpu->apic_base = v;
            return true;
        }
        return false;
    }
    switch (msr) {
    case X86_MSR_TSC: {
        /* One store: the APIC's timer thread reads the offset too. */
        uint64_t shared = soft_guest_tsc(cpu) - (uint64_t)cpu->tsc_offset;
        __atomic_store_n(&cpu->tsc_offset, (int64_t)(v - shared), __ATOMIC_RELAXED);
        return true;
    }
    case MSR_UCODE_REV: case MSR_MCG_STATUS:
        return true;
    case MSR_DEBUGCTL:
        return v == 0;
    case X86_MSR_MTRR_DEF_TYPE:
        if (v & ~0xcffULL) {
            return false;
        }
        cpu->mtrr_def_type = v;
        return true;
    case X86_MSR_MISC_ENABLE:
        cpu->misc_enable = v;
        return true;
    case X86_MSR_SYSENTER_CS: cpu->sysenter_cs = v & 0xffff; return true;
    case X86_MSR_SYSENTER_ESP:
    case X86_MSR_SYSENTER_EIP:
        if (!canonical(v)) {
            return false;
        }
        if (msr == X86_MSR_SYSENTER_ESP) {
            cpu->sysenter_esp = v;
        } else {
            cpu->sysenter_eip = v;
        }
        return true;
    case X86_MSR_PAT:
        if (!pat_valid(v)) {
            return false;
        }
        cpu->pat = v;
        return true;
    case X86_MSR_EFER: {
        uint64_t allowed = X86_EFER_SCE | X86_EFER_LME | X86_EFER_LMA | X86_EFER_NXE;
        if (v & ~allowed) {
            return false;
        }
        if ((cpu->cr0 & X86_CR0_PG) && ((v ^ cpu->efer) & X86_EFER_LME)) {
            return false;
        }
        /* LMA follows CR0.PG and LME; a write cannot change it. */
        v = (v & ~X86_EFER_LMA) | (cpu->efer & X86_EFER_LMA);
        if ((v ^ cpu->efer) & X86_EFER_NXE) {
            soft_tlb_flush_all(cpu);
        }
        cpu->efer = v;
        return true;
    }
    case X86_MSR_STAR: cpu->star = v; return true;
    case X86_MSR_LSTAR:
    case X86_MSR_CSTAR:
    case X86_MSR_FS_BASE:
    case X86_MSR_GS_BASE:
    case X86_MSR_KERNEL_GS_BASE:
        if (!canonical(v)) {
            return false;
        }
        switch (msr) {
        case X86_MSR_LSTAR: cpu->lstar = v; break;
        case X86_MSR_CSTAR: cpu->cstar = v; break;
        case X86_MSR_FS_BASE: cpu->segs[X86_SEG_FS].base = v; break;
        case X86_MSR_GS_BASE: cpu->segs[X86_SEG_GS].base = v; break;
        default: cpu->kernel_gs_base = v; break;
        }
        return true;
    case X86_MSR_SFMASK: cpu->sfmask = v & 0xffffffff; return true;
    case X86_MSR_TSC_AUX:
        if (v >> 32) {
            return false;
        }
        cpu->tsc_aux = v;
        return true;
    default:
        break;
    }
    if (msr >= MSR_MTRR_VAR_FIRST && msr <= MSR_MTRR_VAR_LAST) {
        cpu->mtrr_var[msr - MSR_MTRR_VAR_FIRST] = v;
        return true;
    }
    fi = fixed_mtrr_index(msr);
    if (fi >= 0) {
        cpu->mtrr_fixed[fi] = v;
        return true;
    }
    return false;
}
