/*
 * One x86-64 vCPU's architectural state in a form no accelerator owns.
 *
 * KVM translates to and from its ioctl structures, the software CPU keeps
 * it as its own state, and the boot loader, "info registers" and migration
 * read and write only this. Segment limits are byte limits (granularity
 * already applied), as a hidden descriptor cache holds them.
 */
#ifndef HW_X86_CPU_STATE_H
#define HW_X86_CPU_STATE_H

#include <stdbool.h>
#include <stdint.h>

/* General registers in instruction-encoding order. */
enum {
    X86_RAX, X86_RCX, X86_RDX, X86_RBX, X86_RSP, X86_RBP, X86_RSI, X86_RDI,
    X86_R8, X86_R9, X86_R10, X86_R11, X86_R12, X86_R13, X86_R14, X86_R15,
    X86_NR_GPRS
};

/* Segment registers in encoding order, then the system segments. */
enum {
    X86_SEG_ES, X86_SEG_CS, X86_SEG_SS, X86_SEG_DS, X86_SEG_FS, X86_SEG_GS,
    X86_SEG_LDT, X86_SEG_TR,
    X86_NR_SEGS
};

typedef struct X86Segment {
    uint64_t base;
    uint32_t limit;             /* in bytes, granularity applied */
    uint16_t selector;
    uint8_t type;               /* descriptor type field, 4 bits */
    uint8_t s;                  /* 1: code/data, 0: system */
    uint8_t dpl;
    uint8_t present;
    uint8_t avl;
    uint8_t l;                  /* 64-bit code segment */
    uint8_t db;                 /* default operand size / big */
    uint8_t g;                  /* granularity, as the descriptor had it */
    uint8_t unusable;           /* a null selector was loaded */
} X86Segment;

typedef struct X86DescTable {
    uint64_t base;
    uint16_t limit;
} X86DescTable;

/* Control and flag bits the generic code needs. */
#define X86_CR0_PE          (1ULL << 0)
#define X86_CR0_MP          (1ULL << 1)
#define X86_CR0_EM          (1ULL << 2)
#define X86_CR0_TS          (1ULL << 3)
#define X86_CR0_ET          (1ULL << 4)
#define X86_CR0_NE          (1ULL << 5)
#define X86_CR0_WP          (1ULL << 16)
#define X86_CR0_AM          (1ULL << 18)
#define X86_CR0_NW          (1ULL << 29)
#define X86_CR0_CD          (1ULL << 30)
#define X86_CR0_PG          (1ULL << 31)

#define X86_CR4_VME         (1ULL << 0)
#define X86_CR4_PVI         (1ULL << 1)
#define X86_CR4_TSD         (1ULL << 2)
#define X86_CR4_DE          (1ULL << 3)
#define X86_CR4_PSE         (1ULL << 4)
#define X86_CR4_PAE         (1ULL << 5)
#define X86_CR4_MCE         (1ULL << 6)
#define X86_CR4_PGE         (1ULL << 7)
#define X86_CR4_PCE         (1ULL << 8)
#define X86_CR4_OSFXSR      (1ULL << 9)
#define X86_CR4_OSXMMEXCPT  (1ULL << 10)
#define X86_CR4_UMIP        (1ULL << 11)
#define X86_CR4_FSGSBASE    (1ULL << 16)
#define X86_CR4_PCIDE       (1ULL << 17)
#define X86_CR4_OSXSAVE     (1ULL << 18)
#define X86_CR4_SMEP        (1ULL << 20)
#define X86_CR4_SMAP        (1ULL << 21)

#define X86_EFER_SCE        (1ULL << 0)
#define X86_EFER_LME        (1ULL << 8)
#define X86_EFER_LMA        (1ULL << 10)
#define X86_EFER_NXE        (1ULL << 11)

#define X86_RFLAGS_CF       (1ULL << 0)
#define X86_RFLAGS_FIXED    (1ULL << 1)
#define X86_RFLAGS_PF       (1ULL << 2)
#define X86_RFLAGS_AF       (1ULL << 4)
#define X86_RFLAGS_ZF       (1ULL << 6)
#define X86_RFLAGS_SF       (1ULL << 7)
#define X86_RFLAGS_TF       (1ULL << 8)
#define X86_RFLAGS_IF       (1ULL << 9)
#define X86_RFLAGS_DF       (1ULL << 10)
#define X86_RFLAGS_OF       (1ULL << 11)
#define X86_RFLAGS_IOPL     (3ULL << 12)
#define X86_RFLAGS_NT       (1ULL << 14)
#define X86_RFLAGS_RF       (1ULL << 16)
#define X86_RFLAGS_VM       (1ULL << 17)
#define X86_RFLAGS_AC       (1ULL << 18)
#define X86_RFLAGS_VIF      (1ULL << 19)
#define X86_RFLAGS_VIP      (1ULL << 20)
#define X86_RFLAGS_ID       (1ULL << 21)

/* MSR numbers the generic code and the CPUs share. */
#define X86_MSR_TSC                 0x10
#define X86_MSR_APIC_BASE           0x1b
#define X86_MSR_TSC_ADJUST          0x3b
#define X86_MSR_MTRRCAP             0xfe
#define X86_MSR_MISC_ENABLE         0x1a0
#define X86_MSR_SYSENTER_CS         0x174
#define X86_MSR_SYSENTER_ESP        0x175
#define X86_MSR_SYSENTER_EIP        0x176
#define X86_MSR_MTRR_PHYSBASE0      0x200   /* PHYSBASEn 0x200 + 2n, PHYSMASKn 0x201 + 2n */
#define X86_MSR_MTRR_FIX64K_00000   0x250
#define X86_MSR_MTRR_FIX16K_80000   0x258
#define X86_MSR_MTRR_FIX16K_A0000   0x259
#define X86_MSR_MTRR_FIX4K_C0000    0x268   /* to 0x26f (FIX4K_F8000) */
#define X86_MSR_PAT                 0x277
#define X86_MSR_MTRR_DEF_TYPE       0x2ff
#define X86_MSR_TSC_DEADLINE        0x6e0
#define X86_MSR_EFER                0xc0000080
#define X86_MSR_STAR                0xc0000081
#define X86_MSR_LSTAR               0xc0000082
#define X86_MSR_CSTAR               0xc0000083
#define X86_MSR_SFMASK              0xc0000084
#define X86_MSR_FS_BASE             0xc0000100
#define X86_MSR_GS_BASE             0xc0000101
#define X86_MSR_KERNEL_GS_BASE      0xc0000102
#define X86_MSR_TSC_AUX             0xc0000103

/*
 * MTRRs: variable ranges, as many as MTRRcap.VCNT says (both CPUs report
 * this many), and the 11 fixed-range registers. MTRRcap bit 8: fixed
 * ranges supported.
 */
#define X86_MTRR_NR_VAR             8
#define X86_MTRR_NR_FIXED           11
#define X86_MTRRCAP_VCNT_MASK       0xffULL
#define X86_MTRRCAP_FIX             (1ULL << 8)

/* The MSR of fixed-range MTRR @i (0 to X86_MTRR_NR_FIXED - 1). */
static inline uint32_t x86_mtrr_fixed_msr(int i)
{
    return i == 0 ? X86_MSR_MTRR_FIX64K_00000
         : i < 3 ? X86_MSR_MTRR_FIX16K_80000 + (uint32_t)(i - 1)
         : X86_MSR_MTRR_FIX4K_C0000 + (uint32_t)(i - 3);
}

#define X86_APIC_BASE_DEFAULT       0xfee00000ULL
#define X86_APIC_BASE_BSP           (1ULL << 8)
#define X86_APIC_BASE_ENABLE        (1ULL << 11)

/* What a vCPU is doing when it is not executing instructions. */
typedef enum X86MPState {
    X86_MP_RUNNABLE,
    X86_MP_HALTED,              /* HLT: waits for an interrupt */
    X86_MP_WAIT_FOR_SIPI,       /* an AP after reset or INIT */
} X86MPState;

/*
 * The legacy FXSAVE image: FCW, FSW, abridged FTW, FOP, FIP/FDP, MXCSR,
 * MXCSR_MASK, ST0-7 (16 bytes each), XMM0-15. Byte layout as the SDM's
 * FXSAVE (64-bit form), so both CPUs read it the same way.
 */
#define X86_FXSAVE_SIZE     512

/*
 * Extended state beyond x87/SSE (AVX and later) travels as the XSAVE
 * components past the legacy area; only KVM with such a CPU model has it.
 */
#define X86_XSAVE_MAX       4096

typedef struct X86CPUState {
    uint64_t regs[X86_NR_GPRS];
    uint64_t rip;
    uint64_t rflags;
    X86Segment segs[X86_NR_SEGS];
    X86DescTable gdt;
    X86DescTable idt;
    uint64_t cr0, cr2, cr3, cr4, cr8;
    uint64_t efer;
    uint64_t xcr0;
    uint64_t dr[4];
    uint64_t dr6, dr7;

    /* MSRs. */
    uint64_t apic_base;
    uint64_t tsc;               /* this vCPU's guest TSC when the state was read */
    /*
     * What the guest's own TSC writes on this vCPU added to the TSC the
     * VM's vCPUs share (IA32_TSC_ADJUST's meaning; 0 if it never wrote
     * the TSC). tsc - tsc_adjust (mod 2^64) is the shared TSC at the read.
     */
    uint64_t tsc_adjust;
    uint64_t tsc_aux;
    uint64_t tsc_deadline;
    uint64_t star, lstar, cstar, sfmask;
    uint64_t kernel_gs_base;
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
    uint64_t pat;
    uint64_t misc_enable;
    uint64_t mtrr_def_type;
    uint64_t mtrr_var[2 * X86_MTRR_NR_VAR];    /* PHYSBASEn, PHYSMASKn in MSR order */
    uint64_t mtrr_fixed[X86_MTRR_NR_FIXED];    /* in MSR order, x86_mtrr_fixed_msr() */

    /* x87, SSE and any extended state, XSAVE layout; legacy area first. */
    uint8_t xsave[X86_XSAVE_MAX] __attribute__((aligned(64)));
    uint32_t xsave_len;         /* bytes of xsave[] in use, >= X86_FXSAVE_SIZE */

    /* Events in flight when the state was read. */
    uint8_t exception_pending;
    uint8_t exception_vector;
    uint8_t exception_has_error;
    uint32_t exception_error;
    uint8_t interrupt_injected;
    uint8_t interrupt_vector;
    uint8_t nmi_pending;
    uint8_t nmi_masked;
    uint8_t interrupt_shadow;   /* after STI or MOV SS */

    X86MPState mp_state;
} X86CPUState;

/* The power-on state of vCPU @index (the BSP runs, APs wait for SIPI). */
void x86_cpu_state_reset(X86CPUState *st, int index);

/* Pointers into the FXSAVE image. */
static inline uint32_t *x86_cpu_state_mxcsr(X86CPUState *st)
{
    return (uint32_t *)(st->xsave + 24);
}

#endif
