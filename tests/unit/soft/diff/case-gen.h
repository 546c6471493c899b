/*
 * Helpers every case group uses: a seeded PRNG, operand values that hit
 * the edges, default case state, appending encoded instructions, and
 * memory operands in random addressing forms that land where asked.
 */
#ifndef TESTS_SOFT_DIFF_CASE_GEN_H
#define TESTS_SOFT_DIFF_CASE_GEN_H

#include <glib.h>

#include "hw/x86/cpu-state.h"
#include "diff.h"
#include "x86-enc.h"

typedef struct CaseGen {
    GArray *cases;              /* of DiffCase */
    uint64_t rng;
} CaseGen;

/* @seed is the run's seed; @group makes each group's stream independent. */
void cg_init(CaseGen *g, uint64_t seed, const char *group);
void cg_destroy(CaseGen *g);

uint64_t cg_rand(CaseGen *g);
uint64_t cg_below(CaseGen *g, uint64_t n);        /* [0, n) */
bool cg_chance(CaseGen *g, unsigned percent);

/* An operand value for @size bytes: edges half the time, else random. */
uint64_t cg_value(CaseGen *g, int size);
/* A register holding cg_value(@size) in its low bytes, random above. */
uint64_t cg_reg_value(CaseGen *g, int size);

/*
 * A fresh case: random GPRs (RSP at DIFF_STACK_TOP), random arithmetic
 * flags with DF clear, x87 empty, MXCSR default, XMM zero, random data.
 */
void cg_begin(CaseGen *g, DiffCase *c);
/* Append the case to the group. */
void cg_commit(CaseGen *g, const DiffCase *c);

/* Append @in's encoding and "; text" to the case. Returns false if unencodable. */
bool cg_emit(DiffCase *c, const EncInsn *in, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
void cg_emit_bytes(DiffCase *c, const uint8_t *bytes, unsigned n, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);
void cg_name(DiffCase *c, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* Overwrite @len bytes of the initial data at @addr (inside the data area). */
void cg_patch(DiffCase *c, uint64_t addr, const void *bytes, unsigned len);

/* A random general register other than RSP and those in @avoid (bit mask). */
int cg_pick_reg(CaseGen *g, uint32_t avoid);

/*
 * A memory operand addressing @addr in a random form (base, base+disp8/32,
 * base+index*scale+disp, index*scale+disp32, RIP-relative, absolute,
 * RSP-based, 32-bit address size), setting the registers it uses and
 * adding them to *@used; it never uses registers already in *@used.
 */
EncOp cg_mem(CaseGen *g, DiffCase *c, uint64_t addr, uint32_t *used);

/* A data address aligned to @align with @room bytes after it. */
uint64_t cg_data_addr(CaseGen *g, unsigned align, unsigned room);

/* Special floating-point values (raw bits). */
uint32_t cg_f32(CaseGen *g);
uint64_t cg_f64(CaseGen *g);

void cg_set_xmm(DiffCase *c, int r, uint64_t lo, uint64_t hi);
void cg_set_mxcsr(DiffCase *c, uint32_t mxcsr);

/* The case groups: each appends its cases to @g. */
void cases_alu(CaseGen *g);
void cases_lock(CaseGen *g);
void cases_shift(CaseGen *g);
void cases_muldiv(CaseGen *g);
void cases_mov(CaseGen *g);
void cases_bit(CaseGen *g);
void cases_cond(CaseGen *g);
void cases_stack(CaseGen *g);
void cases_misc(CaseGen *g);
void cases_string(CaseGen *g);
void cases_sse_int(CaseGen *g);
void cases_sse_mov(CaseGen *g);
void cases_sse_fp(CaseGen *g);
void cases_sse_cvt(CaseGen *g);
void cases_x87(CaseGen *g);
void cases_faults(CaseGen *g);
void cases_cx16(CaseGen *g);
void cases_chain(CaseGen *g);
void cases_jit(CaseGen *g);

#endif
