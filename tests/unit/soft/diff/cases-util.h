/*
 * Operand set-up shared by the integer case groups.
 */
#ifndef TESTS_SOFT_DIFF_CASES_UTIL_H
#define TESTS_SOFT_DIFF_CASES_UTIL_H

#include "case-gen.h"

typedef struct CUOperands {
    EncOp rm;                   /* the ModRM.rm operand: register or memory */
    int reg;                    /* the ModRM.reg register, ENC_NONE if none */
    uint64_t addr;              /* rm's address when it is memory */
    uint32_t used;              /* registers the operands occupy */
} CUOperands;

/*
 * Operands for a @size-byte instruction with one (@nregs 1: rm only) or
 * two (@nregs 2: reg and rm) operands, with edge or random values. For
 * 8-bit operands a third of the cases use AH-BH (and so no REX at all).
 * @mem puts rm in the data area, naturally aligned, through a random
 * addressing form.
 */
void cu_operands(CaseGen *g, DiffCase *c, int size, bool mem, int nregs, CUOperands *o);

/* Register @r (AH-BH allowed) holds @v in its low @size bytes. */
void cu_set_reg(CaseGen *g, DiffCase *c, int r, int size, uint64_t v);

/* XCHG, XADD or CMPXCHG with a memory operand, optionally LOCKed. */
void cu_xchg_like(CaseGen *g, int size, bool lock);

static inline uint32_t cu_reg_bit(int r)
{
    return 1u << ((r & ENC_HI8) ? (r & 7) - 4 : r);
}

#endif
