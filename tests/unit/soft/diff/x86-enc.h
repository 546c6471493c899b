/*
 * A small x86-64 instruction encoder for the case generator: legacy and
 * mandatory prefixes, REX, one to three opcode bytes, ModRM/SIB with every
 * addressing form (including RIP-relative and absolute disp32), and an
 * immediate. It also prints operands in Intel syntax for case names.
 */
#ifndef TESTS_SOFT_DIFF_X86_ENC_H
#define TESTS_SOFT_DIFF_X86_ENC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Register numbers: 0-15 in encoding order; AH, CH, DH, BH as below. */
#define ENC_HI8     0x10                /* | 4..7: AH CH DH BH, no REX allowed */
#define ENC_AH      (ENC_HI8 | 4)
#define ENC_CH      (ENC_HI8 | 5)
#define ENC_DH      (ENC_HI8 | 6)
#define ENC_BH      (ENC_HI8 | 7)
#define ENC_NONE    (-1)

typedef enum EncOpKind {
    ENC_OP_NONE,
    ENC_OP_REG,                         /* general register */
    ENC_OP_XMM,                         /* xmm0-15 */
    ENC_OP_STI,                         /* x87 st(i), text only */
    ENC_OP_MEM,
} EncOpKind;

typedef struct EncOp {
    EncOpKind kind;
    int reg;                            /* REG/XMM/STI */
    int base, index;                    /* MEM: ENC_NONE when absent */
    int scale;                          /* 1, 2, 4, 8 */
    int32_t disp;
    int disp_size;                      /* 0, 1 or 4; forced sizes for coverage */
    bool rip;                           /* RIP-relative: @target is absolute */
    uint64_t target;
    bool addr32;                        /* 0x67 prefix */
} EncOp;

typedef struct EncInsn {
    uint8_t prefix[4];                  /* LOCK, REP, segment...: emitted first */
    int nprefix;
    uint8_t mandatory;                  /* 0x66 / 0xf2 / 0xf3 before REX, or 0 */
    int opsize;                         /* 1, 2 (adds 0x66), 4, 8 (REX.W) */
    uint8_t opcode[3];
    int oplen;
    int reg;                            /* ModRM.reg: register or /digit; ENC_NONE: no ModRM */
    bool reg_is_digit;
    EncOp rm;                           /* ModRM.rm operand */
    int opreg;                          /* register in the opcode's low 3 bits, or ENC_NONE */
    int imm_size;                       /* 0, 1, 2, 4, 8 */
    int64_t imm;
    bool force_rex;                     /* emit REX even if all bits are 0 */
} EncInsn;

/* Constructors for operands. */
EncOp enc_reg(int r);
EncOp enc_xmm(int r);
EncOp enc_mem(int base, int index, int scale, int32_t disp);
EncOp enc_rip(uint64_t target);

/* A blank instruction: no ModRM, no opreg, no imm. */
EncInsn enc_insn(int opsize, int oplen, uint8_t op0, uint8_t op1, uint8_t op2);

/*
 * Encode @in to be placed at guest address @addr (for RIP-relative
 * operands). Returns the length, or 0 if the form cannot be encoded
 * (e.g. AH together with a REX prefix).
 */
unsigned enc_encode(const EncInsn *in, uint64_t addr, uint8_t *out);

/* Intel-syntax operand text; @size 1/2/4/8 for registers and memory width. */
void enc_op_text(char *buf, size_t len, const EncOp *op, int size);
const char *enc_reg_name(int r, int size);
const char *enc_mem_size_name(int size);

#endif
