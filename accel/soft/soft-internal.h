/*
 * The software CPU's private state and the seams between its files:
 * decoder, executors, MMU, exception delivery. Nothing outside accel/soft
 * includes this.
 */
#ifndef ACCEL_SOFT_INTERNAL_H
#define ACCEL_SOFT_INTERNAL_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "accel/soft-cpu.h"

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define PAGE_SIZE   4096ULL
#define PAGE_MASK   (~(PAGE_SIZE - 1))

enum {
    EXC_DE = 0, EXC_DB = 1, EXC_NMI = 2, EXC_BP = 3, EXC_OF = 4, EXC_BR = 5,
    EXC_UD = 6, EXC_NM = 7, EXC_DF = 8, EXC_TS = 10, EXC_NP = 11,
    EXC_SS = 12, EXC_GP = 13, EXC_PF = 14, EXC_MF = 16, EXC_AC = 17,
    EXC_MC = 18, EXC_XM = 19,
};

/* The last flag-setting operation, evaluated only when flags are read. */
enum {
    CC_NONE,        /* the arithmetic flags live in cpu->rflags */
    CC_ADD, CC_ADC, CC_SUB, CC_SBB, CC_LOGIC, CC_INC, CC_DEC,
};

#define FLAGS_ARITH (X86_RFLAGS_CF | X86_RFLAGS_PF | X86_RFLAGS_AF | \
                     X86_RFLAGS_ZF | X86_RFLAGS_SF | X86_RFLAGS_OF)

/* Kinds of access, which also index the TLB arrays. */
enum { ACC_READ, ACC_WRITE, ACC_FETCH, ACC_NR };

/* Pending requests from other threads, one word read per boundary. */
#define REQ_KICK        (1u << 0)
#define REQ_INTR        (1u << 1)   /* ask get_interrupt() when IF allows */
#define REQ_DIRTY_FLUSH (1u << 2)
#define REQ_TLB_FLUSH   (1u << 3)
#define REQ_INIT        (1u << 4)
#define REQ_SIPI        (1u << 5)
#define REQ_NMI         (1u << 6)

#define TLB_BITS    9
#define TLB_SIZE    (1u << TLB_BITS)
#define TLB_INVALID 1ULL            /* never equals a page-aligned tag */
#define SOFT_DIRTY_FILTER 4096

typedef struct TLBEntry {
    uint64_t tag;                   /* linear page, or TLB_INVALID */
    uintptr_t addend;               /* host address - linear address */
} TLBEntry;

typedef struct TLBInfo {
    uint64_t gpa;                   /* guest-physical page of the entry */
    uint8_t global;
} TLBInfo;

/* Base register value meaning RIP-relative. */
#define BASE_RIP    16

typedef struct SoftCPU SoftCPU;
typedef struct Insn Insn;
typedef void (*InsnFn)(SoftCPU *cpu, const Insn *in);

/*
 * One decoded instruction: everything the handler needs, so that it can be
 * cached and replayed without re-reading prefixes, ModRM or SIB.
 */
struct Insn {
    InsnFn fn;
    uint16_t op;        /* 0xXX one byte, 0x1XX 0F XX, 0x2XX 0F38, 0x3XX 0F3A */
    uint8_t len;
    uint8_t osize;      /* operand size in bytes: 1, 2, 4, 8 */
    uint8_t asize;      /* address size: 2, 4, 8 */
    uint8_t seg;        /* segment of the memory operand */
    uint8_t rep;        /* 0, 0xf2 or 0xf3: the last of them */
    uint8_t lock;
    uint8_t rex;        /* the REX byte, 0 if none */
    uint8_t has66;
    uint8_t mod, reg, rm;   /* reg and rm with REX bits applied */
    int8_t base, index; /* -1: none */
    uint8_t scale;      /* shift count 0-3 */
    int64_t disp;
    uint64_t imm;       /* sign-extended to 64 bits */
    uint64_t imm2;      /* far pointer selector, ENTER level */
    uint8_t end;        /* the last instruction of its decoded block */
};

/* Decoded blocks (block-cache.c) and the shared code-page map (code-map.c). */
#define SOFT_BLOCK_INSNS    16
#define SOFT_BLOCKS         1024
#define SOFT_CODE_PHYS_BITS 40
#define SOFT_CODE_FLAG      1u
typedef struct SoftBlock SoftBlock;
extern uint32_t soft_code_epoch;
typedef struct SoftJit SoftJit;

/* x87 state beside the SSE registers; 80-bit values as host long double. */
typedef struct FPUState {
    long double st[8];  /* physical registers R0-R7 */
    uint16_t fcw, fsw;  /* fsw without TOP, which is in top */
    uint8_t top;
    uint8_t tag_empty;  /* bit i: R_i empty */
    uint16_t fop;
    uint64_t fip, fdp;
    uint16_t fcs, fds;
} FPUState;

typedef union XMMReg {
    uint8_t b[16];
    uint16_t w[8];
    uint32_t d[4];
    uint64_t q[2];
    float f[4];
    double dd[2];
} XMMReg;

struct SoftCPU {
    uint64_t regs[X86_NR_GPRS];
    uint64_t rip;           /* start of the executing instruction */
    uint64_t next_rip;      /* where it continues */
    uint64_t rflags;        /* arithmetic bits valid only if cc_op == CC_NONE */

    uint32_t cc_op;
    uint8_t cc_size;
    uint64_t cc_res, cc_src1, cc_src2, cc_aux;

    X86Segment segs[X86_NR_SEGS];
    X86DescTable gdt, idt;
    uint64_t cr0, cr2, cr3, cr4, efer, xcr0;
    uint64_t dr[4], dr6, dr7;

    uint64_t apic_base, tsc_aux, tsc_deadline;
    uint64_t star, lstar, cstar, sfmask, kernel_gs_base;
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
    uint64_t pat, misc_enable, mtrr_def_type;
    uint64_t mtrr_var[2 * X86_MTRR_NR_VAR];     /* PHYSBASEn, PHYSMASKn */
    uint64_t mtrr_fixed[X86_MTRR_NR_FIXED];
    int64_t tsc_offset;             /* guest TSC writes relative to read_tsc */

    FPUState fpu;
    XMMReg xmm[16];
    uint32_t mxcsr;

    /* Derived from the above by soft_cpu_update_mode(). */
    uint8_t cpl;
    uint8_t long64;         /* executing 64-bit code */
    uint8_t code32;         /* CS.D in legacy/compatibility mode */
    uint8_t midx;           /* TLB index: 1 when CPL 3 */
    uint8_t ac_check;       /* CR0.AM, RFLAGS.AC and CPL 3: alignment checks */

    uint8_t shadow;         /* interrupts inhibited for one instruction */
    uint8_t nmi_masked;
    uint8_t pending_nmi;
    bool has_pending_irq;   /* an injected vector from set_state */
    uint8_t pending_irq;
    X86MPState mp_state;

    /* Exception raised by the current instruction. */
    int exc_vector;
    uint32_t exc_error;
    bool exc_has_error;
    bool exc_pending;
    bool shutdown;
    int delivering;         /* vector being delivered, -1 if none */
    sigjmp_buf jb;

    uint64_t insn_count;
    uint64_t insn_limit;

    /* Other threads set bits here; the vCPU consumes them. */
    uint32_t req;
    uint8_t sipi_vector;

    SoftBlock *blocks;
    bool blocks_built;      /* a block was decoded since the last flush */
    SoftJit *jit;           /* NULL: interpret only (FERRY_SOFT_JIT=off) */
    uint32_t code_epoch;    /* soft_code_epoch when write entries were last dropped */
    uint8_t exit_block;     /* stop the current block after this instruction */
    bool entered_handler;   /* an interrupt or exception was delivered */

    TLBEntry tlb[2][ACC_NR][TLB_SIZE];
    TLBInfo tlbinfo[2][ACC_NR][TLB_SIZE];
    bool tlb_has_large;     /* some entry came from a 2M/4M/1G page */
    /*
     * Moves whenever a fetch TLB entry may have changed (any flush, any
     * fetch fill): a block chain link made under another value may name a
     * translation the TLB no longer holds.
     */
    uint64_t fetch_gen;     /* 64 bits: never wraps onto a stale link */
    /*
     * Pages passed to mark_dirty() this round, direct-mapped: a page whose
     * slot was taken over is reported again, which the bitmap absorbs.
     */
    uint64_t dirty_marked[SOFT_DIRTY_FILTER];

    const SoftCPUHooks *hooks;
    void *opaque;
    int cpuid_index;
    int nr_cpus;
};

/* soft-cpu.c */
void soft_cpu_update_mode(SoftCPU *cpu);
static inline void soft_update_ac(SoftCPU *cpu)
{
    cpu->ac_check = (cpu->cr0 & X86_CR0_AM) && (cpu->rflags & X86_RFLAGS_AC) && cpu->cpl == 3;
}
uint64_t soft_guest_tsc(SoftCPU *cpu);

/* flags.c */
uint64_t soft_flags_arith(const SoftCPU *cpu);
uint64_t soft_get_rflags(const SoftCPU *cpu);
void soft_set_rflags(SoftCPU *cpu, uint64_t v);
void soft_set_arith(SoftCPU *cpu, uint64_t bits);
bool soft_cond(const SoftCPU *cpu, unsigned cc);
static inline void soft_cc_set(SoftCPU *cpu, uint32_t op, unsigned size,
                               uint64_t res, uint64_t s1, uint64_t s2)
{
    cpu->cc_op = op;
    cpu->cc_size = size;
    cpu->cc_res = res;
    cpu->cc_src1 = s1;
    cpu->cc_src2 = s2;
}
static inline uint64_t size_mask(unsigned size)
{
    return size >= 8 ? ~0ULL : (1ULL << (size * 8)) - 1;
}
static inline uint64_t sign_bit(unsigned size)
{
    return 1ULL << (size * 8 - 1);
}
static inline int64_t sext(uint64_t v, unsigned size)
{
    switch (size) {
    case 1: return (int8_t)v;
    case 2: return (int16_t)v;
    case 4: return (int32_t)v;
    default: return (int64_t)v;
    }
}
static inline bool parity8(uint64_t v)
{
    return !__builtin_parity((unsigned)(v & 0xff));
}

/* excp.c */
void soft_raise(SoftCPU *cpu, int vector, uint32_t error) __attribute__((noreturn));
void soft_raise_noerr(SoftCPU *cpu, int vector) __attribute__((noreturn));
#define soft_ud(cpu)    soft_raise_noerr(cpu, EXC_UD)
#define soft_gp0(cpu)   soft_raise(cpu, EXC_GP, 0)
void soft_deliver_pending_exception(SoftCPU *cpu);
/* @soft: INT n / INT3 / INTO (DPL checked, pushes next_rip). */
void soft_deliver_interrupt(SoftCPU *cpu, int vector, bool soft, bool has_err,
                            uint32_t err, uint64_t ret_rip);

/* mmu.c */
uint64_t soft_lin_read(SoftCPU *cpu, uint64_t lin, unsigned size, int midx);
void soft_lin_write(SoftCPU *cpu, uint64_t lin, unsigned size, uint64_t v, int midx);
uint8_t *soft_lin_ptr(SoftCPU *cpu, uint64_t lin, unsigned size, int acc, int midx);
uint64_t soft_translate(SoftCPU *cpu, uint64_t lin, int acc, int midx, uint8_t **host);
void soft_tlb_flush_all(SoftCPU *cpu);
void soft_tlb_flush_nonglobal(SoftCPU *cpu);
void soft_tlb_flush_page(SoftCPU *cpu, uint64_t lin);
void soft_tlb_drop_writes(SoftCPU *cpu);
void soft_tlb_drop_write_entries(SoftCPU *cpu);
uint64_t soft_seg_check(SoftCPU *cpu, int seg, uint64_t ea, unsigned size, bool write);
uint64_t soft_read_slow(SoftCPU *cpu, int seg, uint64_t ea, unsigned size);
void soft_write_slow(SoftCPU *cpu, int seg, uint64_t ea, unsigned size, uint64_t v);
void soft_read_bytes(SoftCPU *cpu, int seg, uint64_t ea, void *buf, unsigned n);
void soft_write_bytes(SoftCPU *cpu, int seg, uint64_t ea, const void *buf, unsigned n);
/* Host pointer for a read-modify-write, NULL when slow (MMIO, page cross). */
uint8_t *soft_rmw_ptr(SoftCPU *cpu, int seg, uint64_t ea, unsigned size);
uint64_t soft_phys_read(SoftCPU *cpu, uint64_t gpa, unsigned size);
void soft_phys_write(SoftCPU *cpu, uint64_t gpa, unsigned size, uint64_t v);
/*
 * The global lock serialises locked accesses that host atomics cannot do.
 * Nothing that can raise may run while it is held: prepare first (all
 * checks and walks), then lock, load/store through the result, unlock.
 */
void soft_lock_global(void);
void soft_unlock_global(void);
typedef struct SoftLockedAccess {
    uint64_t gpa[2];
    uint8_t *host[2];       /* NULL: MMIO */
    bool code[2];           /* the page holds decoded code */
    unsigned len[2];        /* bytes in each page; len[1] 0 within one page */
} SoftLockedAccess;
void soft_locked_prepare(SoftCPU *cpu, int seg, uint64_t ea, unsigned size,
                         SoftLockedAccess *la);
/* @off, @size: a part of the prepared access, at most 8 bytes. */
uint64_t soft_locked_load(SoftCPU *cpu, const SoftLockedAccess *la, unsigned off,
                          unsigned size);
void soft_locked_store(SoftCPU *cpu, const SoftLockedAccess *la, unsigned off,
                       unsigned size, uint64_t v);

/*
 * Guest data at any alignment in host memory: memcpy() of a constant size
 * is one move on the host, without the undefined behaviour of casting.
 */
static inline uint64_t soft_host_load(const uint8_t *p, unsigned size)
{
    switch (size) {
    case 1: return *p;
    case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
    default: { uint64_t v; memcpy(&v, p, 8); return v; }
    }
}

static inline void soft_host_store(uint8_t *p, unsigned size, uint64_t v)
{
    switch (size) {
    case 1: *p = v; break;
    case 2: { uint16_t w = v; memcpy(p, &w, 2); break; }
    case 4: { uint32_t w = v; memcpy(p, &w, 4); break; }
    default: memcpy(p, &v, 8); break;
    }
}

/* Fast-path reads through the TLB; the slow path is in mmu.c. */
static inline uint64_t soft_tlb_load(SoftCPU *cpu, uint64_t lin, unsigned size, int midx)
{
    TLBEntry *e = &cpu->tlb[midx][ACC_READ][(lin >> 12) & (TLB_SIZE - 1)];
    if (likely(e->tag == (lin & PAGE_MASK) && (lin & 0xfff) + size <= PAGE_SIZE)) {
        return soft_host_load((const uint8_t *)(e->addend + lin), size);
    }
    return soft_lin_read(cpu, lin, size, midx);
}

/*
 * 64-bit mode without alignment checking: the linear address is the offset
 * (plus the FS/GS base). False when the full checks must run.
 */
static inline bool soft_fast_lin(const SoftCPU *cpu, int seg, uint64_t ea, uint64_t *lin)
{
    if (likely(cpu->long64 && !cpu->ac_check)) {
        uint64_t l = seg >= X86_SEG_FS ? ea + cpu->segs[seg].base : ea;
        /* A canonical start within one page cannot end non-canonical. */
        if (likely((uint64_t)(((int64_t)l >> 47) + 1) <= 1)) {
            *lin = l;
            return true;
        }
    }
    return false;
}

static inline uint64_t soft_read(SoftCPU *cpu, int seg, uint64_t ea, unsigned size)
{
    uint64_t lin;

    if (soft_fast_lin(cpu, seg, ea, &lin)) {
        TLBEntry *e = &cpu->tlb[cpu->midx][ACC_READ][(lin >> 12) & (TLB_SIZE - 1)];
        if (likely(e->tag == (lin & PAGE_MASK) && (lin & 0xfff) + size <= PAGE_SIZE)) {
            return soft_host_load((const uint8_t *)(e->addend + lin), size);
        }
    }
    return soft_read_slow(cpu, seg, ea, size);
}

/* Host pointer of a writable TLB hit for [lin, lin+size), else NULL. */
static inline uint8_t *soft_tlb_write_ptr(SoftCPU *cpu, uint64_t lin, unsigned size)
{
    TLBEntry *e = &cpu->tlb[cpu->midx][ACC_WRITE][(lin >> 12) & (TLB_SIZE - 1)];

    if (likely(e->tag == (lin & PAGE_MASK) && (lin & 0xfff) + size <= PAGE_SIZE)) {
        return (uint8_t *)(e->addend + lin);
    }
    return NULL;
}

static inline void soft_write(SoftCPU *cpu, int seg, uint64_t ea, unsigned size, uint64_t v)
{
    uint64_t lin;

    if (soft_fast_lin(cpu, seg, ea, &lin)) {
        uint8_t *p = soft_tlb_write_ptr(cpu, lin, size);
        if (likely(p)) {
            soft_host_store(p, size, v);
            return;
        }
    }
    soft_write_slow(cpu, seg, ea, size, v);
}

/* seg.c */
void soft_load_seg(SoftCPU *cpu, int seg, uint16_t sel);
void soft_seg_from_desc(X86Segment *s, uint16_t sel, uint32_t lo, uint32_t hi);
bool soft_read_desc(SoftCPU *cpu, uint16_t sel, uint32_t *lo, uint32_t *hi);
void soft_far_jump(SoftCPU *cpu, uint16_t sel, uint64_t off, unsigned osize);
void soft_far_call(SoftCPU *cpu, uint16_t sel, uint64_t off, unsigned osize);
void soft_far_ret(SoftCPU *cpu, unsigned osize, uint16_t pop_extra);
void soft_iret(SoftCPU *cpu, unsigned osize);
void soft_set_cs_real(SoftCPU *cpu, uint16_t sel);
void soft_load_cs_desc(SoftCPU *cpu, uint16_t sel, uint32_t lo, uint32_t hi, int cpl);

/* Stack helpers (exec-data.c). */
void soft_push(SoftCPU *cpu, unsigned size, uint64_t v);
uint64_t soft_pop(SoftCPU *cpu, unsigned size);
uint64_t soft_stack_peek(SoftCPU *cpu, unsigned size, unsigned offset);
unsigned soft_stack_size(const SoftCPU *cpu);

/* decode.c */
void soft_decode(SoftCPU *cpu, Insn *in);

/* block-cache.c */
SoftBlock *soft_blocks_new(void);
void soft_blocks_free(SoftBlock *b);
void soft_blocks_flush(SoftCPU *cpu);
void soft_run_block(SoftCPU *cpu);
void soft_run_one(SoftCPU *cpu);

/* jit-x86.c */
SoftJit *soft_jit_new(void);
void soft_jit_free(SoftJit *j);
unsigned soft_jit_threshold(const SoftJit *j);
uint32_t soft_jit_epoch(const SoftJit *j);
/* Host code running @n decoded instructions; NULL if it does not fit. */
void *soft_jit_compile(SoftCPU *cpu, const Insn *insns, unsigned n, const uint32_t *word,
                       uint32_t gen);

/* code-map.c */
uint32_t *soft_code_word(uint64_t gpa, bool create);
uint32_t soft_code_mark(uint32_t *w);
void soft_code_invalidate(uint32_t *w);
bool soft_code_page(uint64_t gpa);
void soft_code_written(uint64_t gpa);

/* cpuid.c, msr.c */
void soft_cpuid(SoftCPU *cpu, uint32_t leaf, uint32_t sub, uint32_t out[4]);
bool soft_rdmsr(SoftCPU *cpu, uint32_t msr, uint64_t *v);
bool soft_wrmsr(SoftCPU *cpu, uint32_t msr, uint64_t v);

/* fpu-x87.c, sse.c */
void soft_fpu_reset(SoftCPU *cpu);
void soft_fxsave(SoftCPU *cpu, uint8_t *img);
void soft_fxrstor(SoftCPU *cpu, const uint8_t *img);

/* Register access: byte registers honour AH-BH without REX. */
static inline uint64_t reg_read(const SoftCPU *cpu, const Insn *in, unsigned r, unsigned size)
{
    switch (size) {
    case 1:
        if (!in->rex && r >= 4 && r < 8) {
            return (cpu->regs[r - 4] >> 8) & 0xff;
        }
        return cpu->regs[r] & 0xff;
    case 2: return cpu->regs[r] & 0xffff;
    case 4: return cpu->regs[r] & 0xffffffff;
    default: return cpu->regs[r];
    }
}

static inline void reg_write(SoftCPU *cpu, const Insn *in, unsigned r, unsigned size, uint64_t v)
{
    switch (size) {
    case 1:
        if (!in->rex && r >= 4 && r < 8) {
            cpu->regs[r - 4] = (cpu->regs[r - 4] & ~0xff00ULL) | ((v & 0xff) << 8);
        } else {
            cpu->regs[r] = (cpu->regs[r] & ~0xffULL) | (v & 0xff);
        }
        break;
    case 2:
        cpu->regs[r] = (cpu->regs[r] & ~0xffffULL) | (v & 0xffff);
        break;
    case 4:
        cpu->regs[r] = v & 0xffffffff;     /* 32-bit writes zero-extend */
        break;
    default:
        cpu->regs[r] = v;
        break;
    }
}

static inline uint64_t insn_ea(const SoftCPU *cpu, const Insn *in)
{
    uint64_t ea = (uint64_t)in->disp;

    if (in->base >= 0) {
        ea += in->base == BASE_RIP ? cpu->next_rip : cpu->regs[in->base];
    }
    if (in->index >= 0) {
        ea += cpu->regs[in->index] << in->scale;
    }
    return ea & size_mask(in->asize);
}

/* The r/m operand, register or memory. */
static inline uint64_t rm_read(SoftCPU *cpu, const Insn *in, unsigned size)
{
    if (in->mod == 3) {
        return reg_read(cpu, in, in->rm, size);
    }
    return soft_read(cpu, in->seg, insn_ea(cpu, in), size);
}

static inline void rm_write(SoftCPU *cpu, const Insn *in, unsigned size, uint64_t v)
{
    if (in->mod == 3) {
        reg_write(cpu, in, in->rm, size, v);
    } else {
        soft_write(cpu, in->seg, insn_ea(cpu, in), size, v);
    }
}

static inline bool cpu_pe(const SoftCPU *cpu)
{
    return cpu->cr0 & X86_CR0_PE;
}

static inline bool cpu_vm86(const SoftCPU *cpu)
{
    return cpu->rflags & X86_RFLAGS_VM;
}

static inline unsigned cpu_iopl(const SoftCPU *cpu)
{
    return (cpu->rflags >> 12) & 3;
}

static inline bool cpu_lma(const SoftCPU *cpu)
{
    return cpu->efer & X86_EFER_LMA;
}

void soft_incdec_rm(SoftCPU *cpu, const Insn *in, bool dec);

/* Instruction handlers, by file. */
#define H(name) void name(SoftCPU *cpu, const Insn *in)
/* exec-alu.c */
H(op_alu); H(op_grp1); H(op_test); H(op_incdec_r); H(op_grp2); H(op_grp3);
H(op_grp4); H(op_imul_imm); H(op_imul_rm); H(op_shld); H(op_shrd);
H(op_bt); H(op_grp8); H(op_bsf); H(op_bsr); H(op_popcnt); H(op_daa); H(op_das);
H(op_aaa); H(op_aas); H(op_aam); H(op_aad); H(op_xadd); H(op_cmpxchg);
H(op_grp9); H(op_bswap); H(op_cbw); H(op_cwd); H(op_salc);
/* exec-data.c */
H(op_mov_rm_r); H(op_mov_r_rm); H(op_mov_r_imm); H(op_mov_rm_imm);
H(op_mov_moffs); H(op_mov_sreg_store); H(op_mov_sreg_load); H(op_lea);
H(op_xchg); H(op_xchg_ax); H(op_push_r); H(op_pop_r); H(op_push_imm);
H(op_pop_rm); H(op_push_sreg); H(op_pop_sreg); H(op_pusha); H(op_popa);
H(op_pushf); H(op_popf); H(op_sahf); H(op_lahf); H(op_movzx); H(op_movsx);
H(op_movsxd); H(op_cmov); H(op_setcc); H(op_enter); H(op_leave);
H(op_lfp); H(op_xlat); H(op_flagop); H(op_nop); H(op_movnti); H(op_bound);
H(op_arpl);
/* exec-branch.c */
H(op_jcc); H(op_jmp_rel); H(op_call_rel); H(op_ret); H(op_retf); H(op_jmpf);
H(op_callf); H(op_loop); H(op_grp5); H(op_int); H(op_int3); H(op_into);
H(op_int1); H(op_iret);
/* exec-string.c */
H(op_movs); H(op_cmps); H(op_stos); H(op_lods); H(op_scas); H(op_ins);
H(op_outs);
/* exec-system.c */
H(op_hlt); H(op_cli); H(op_sti); H(op_in); H(op_out); H(op_grp6);
H(op_grp7); H(op_lar); H(op_lsl); H(op_clts); H(op_mov_cr); H(op_mov_dr);
H(op_wrmsr); H(op_rdmsr); H(op_rdtsc); H(op_rdpmc); H(op_cpuid);
H(op_syscall); H(op_sysret); H(op_sysenter); H(op_sysexit); H(op_ud);
H(op_grp15); H(op_invd); H(op_fwait);
/* fpu-x87.c */
H(op_x87);
/* sse.c */
H(op_sse);
#undef H

#endif
