/*
 * Differential tests of the software CPU: what a case is, what running
 * one produces, and the address layout both sides share.
 *
 * A case is a short x86-64 code sequence with its whole input state. The
 * native runner (native-exec.c) runs it on the host in a child process, the
 * soft runner (soft-exec.c) on the interpreter at ring 3, and
 * diff-compare.c checks that both left the same architectural state.
 */
#ifndef TESTS_SOFT_DIFF_H
#define TESTS_SOFT_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Guest-virtual addresses, the same natively and on the software CPU. All
 * sit below 2 GiB so the native trampolines can use absolute disp32
 * addressing, and above anything a PIE process maps on its own.
 */
#define DIFF_CODE_ADDR      0x10000000ULL   /* one page: the case, then the exit */
#define DIFF_CODE_SIZE      0x1000
#define DIFF_DATA_ADDR      0x10010000ULL   /* read-write, compared byte for byte */
#define DIFF_DATA_SIZE      0x3000
#define DIFF_RO_ADDR        (DIFF_DATA_ADDR + DIFF_DATA_SIZE)  /* read-only page */
#define DIFF_UNMAPPED_ADDR  (DIFF_RO_ADDR + 0x1000)            /* never mapped */
#define DIFF_STACK_TOP      (DIFF_DATA_ADDR + 0x2800)          /* initial RSP */

#define DIFF_CODE_MAX       120

/* The RFLAGS bits a user program sets and the tests compare. */
#define DIFF_FLAGS_USER     0xcd5ULL        /* CF PF AF ZF SF DF OF */
#define DIFF_FLAGS_ARITH    0x8d5ULL        /* CF PF AF ZF SF OF */

#define DIFF_FX_FCW         0
#define DIFF_FX_FSW         2
#define DIFF_FX_FTW         4               /* abridged: one bit per register */
#define DIFF_FX_MXCSR       24
#define DIFF_FX_ST          32              /* ST0-7, 16 bytes each */
#define DIFF_FX_XMM         160             /* XMM0-15, 16 bytes each */

/* Case flags. */
enum {
    DIFF_F_X87 = 1 << 0,        /* compare FCW/FSW/FTW and the valid ST registers */
    /*
     * The condition codes have no defined value when the instruction
     * produced no quotient, i.e. raised a (masked) invalid operation or
     * returned a NaN: FPREM/FPREM1 define C0/C1/C3 only as quotient bits.
     */
    DIFF_F_X87_CC_IE = 1 << 1,
};

/* The state both runners start from and report. */
typedef struct DiffRegs {
    uint64_t gpr[16];
    uint64_t rip;
    uint64_t rflags;
    uint8_t fx[512] __attribute__((aligned(16)));   /* FXSAVE image */
} DiffRegs;

typedef struct DiffPatch {
    uint16_t off;               /* into the data area */
    uint8_t len;
    uint8_t bytes[16];
} DiffPatch;

#define DIFF_MAX_PATCH 4

typedef struct DiffCase {
    char name[96];              /* Intel-syntax text of the instructions */
    uint8_t code[DIFF_CODE_MAX];
    uint8_t code_len;
    uint8_t flags;              /* DIFF_F_* */
    uint16_t fsw_undef;         /* x87 status bits the SDM leaves undefined */
    uint32_t flags_undef;       /* RFLAGS bits the SDM leaves undefined */
    uint32_t data_seed;         /* the data area starts as diff_fill_data() of it */
    uint8_t npatch;
    DiffPatch patch[DIFF_MAX_PATCH];
    DiffRegs in;                /* rip ignored; rflags holds only user bits */
} DiffCase;

typedef enum DiffEnd {
    DIFF_END_OK,                /* reached the end of the code */
    DIFF_END_EXCEPTION,         /* an exception stopped it at @rip */
    DIFF_END_CRASH,             /* native child died or hung (see note) */
    DIFF_END_ERROR,             /* the software CPU stopped otherwise (see note) */
} DiffEnd;

typedef struct DiffResult {
    DiffEnd end;
    int vector;
    uint32_t error_code;
    uint64_t cr2;
    char note[64];
    DiffRegs regs;              /* at the end, or at the fault */
    uint8_t data[DIFF_DATA_SIZE];
} DiffResult;

/* Vectors that push an error code. */
static inline bool diff_vector_has_error(int v)
{
    return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21;
}

/* The initial data area of @c: a fill from its seed, then its patches. */
void diff_fill_data(const DiffCase *c, uint8_t *data);

/* The initial contents of the read-only page (fixed, not per case). */
void diff_fill_ro(uint8_t *page);

/* A default FXSAVE image: x87 empty, FCW 0x37f, MXCSR 0x1f80. */
void diff_fx_default(uint8_t *fx);

#endif
