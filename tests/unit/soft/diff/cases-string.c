/*
 * String instructions: MOVS, STOS, LODS, CMPS, SCAS at every size, with
 * no prefix, REP/REPE and REPNE, both directions, 64- and 32-bit address
 * size, counts from zero up, overlapping moves, and a REP MOVS that runs
 * into the read-only page and faults part-way.
 */
#include <string.h>

#include "case-gen.h"

enum { STR_MOVS, STR_STOS, STR_LODS, STR_CMPS, STR_SCAS };

static const struct {
    const char *name;
    uint8_t opcode;
    bool src, dst;
} str_ops[] = {
    [STR_MOVS] = { "movs", 0xa4, true, true },
    [STR_STOS] = { "stos", 0xaa, false, true },
    [STR_LODS] = { "lods", 0xac, true, false },
    [STR_CMPS] = { "cmps", 0xa6, true, true },
    [STR_SCAS] = { "scas", 0xae, false, true },
};

static const char str_suffix[9] = { 0, 'b', 'w', 0, 'd', 0, 0, 0, 'q' };

/* A pointer for @count elements of @size walking in direction @down. */
static uint64_t str_pointer(CaseGen *g, unsigned count, int size, bool down)
{
    unsigned span = (count + 1) * size;
    uint64_t p = DIFF_DATA_ADDR + span + cg_below(g, 0x2000 - 2 * span);

    if (!down) {
        p -= span;
    }
    if (cg_chance(g, 50)) {
        p &= ~(uint64_t)(size - 1);
    }
    return p;
}

static void str_one(CaseGen *g, int op, int size, int rep, bool down, bool addr32)
{
    static const char *const rep_names[3] = { "", "rep ", "repne " };
    DiffCase c;
    EncInsn in;
    unsigned count = cg_chance(g, 15) ? 0 : (unsigned)cg_below(g, 48);

    /* Now and then a long run, across a page boundary. */
    if (cg_chance(g, 10)) {
        count = (0x100 + (unsigned)cg_below(g, 0x600)) / size;
    }
    uint64_t rsi, rdi;

    cg_begin(g, &c);
    if (down) {
        c.in.rflags |= X86_RFLAGS_DF;
    }
    rsi = str_pointer(g, count, size, down);
    rdi = str_pointer(g, count, size, down);
    if (op == STR_MOVS && cg_chance(g, 25)) {
        /* Overlapping copies show whether elements move one at a time. */
        rdi = rsi + (cg_below(g, 2 * size + 1) - size);
    }
    if (op == STR_CMPS) {
        uint8_t same[16];
        for (unsigned i = 0; i < sizeof(same); i++) {
            same[i] = (uint8_t)cg_rand(g);
        }
        if (cg_chance(g, 30)) {
            rdi = rsi;                  /* equal all the way */
        } else {
            /* A common run at the start so REPE gets somewhere. */
            uint64_t s0 = down ? rsi + size - 16 : rsi;
            uint64_t d0 = down ? rdi + size - 16 : rdi;
            if (s0 >= DIFF_DATA_ADDR && d0 >= DIFF_DATA_ADDR && (s0 + 16 <= d0 || d0 + 16 <= s0)) {
                cg_patch(&c, s0, same, 16);
                cg_patch(&c, d0, same, 16);
            }
        }
    }
    if (op == STR_SCAS && cg_chance(g, 60)) {
        /* Put the accumulator's value somewhere in the scanned range. */
        uint64_t v = cg_rand(g);
        unsigned at = count ? (unsigned)cg_below(g, count) : 0;
        uint64_t a = down ? rdi - (uint64_t)at * size : rdi + (uint64_t)at * size;
        c.in.gpr[X86_RAX] = v;
        cg_patch(&c, a, &v, size);
    }
    c.in.gpr[X86_RSI] = rsi;
    c.in.gpr[X86_RDI] = rdi;
    c.in.gpr[X86_RCX] = count;
    if (addr32) {
        /* The upper halves must be ignored on input and cleared on output. */
        c.in.gpr[X86_RSI] |= cg_rand(g) << 32;
        c.in.gpr[X86_RDI] |= cg_rand(g) << 32;
        c.in.gpr[X86_RCX] |= cg_rand(g) << 32;
    }
    if (!rep) {
        c.in.gpr[X86_RCX] = cg_rand(g);
    }
    in = enc_insn(size, 1, str_ops[op].opcode + (size != 1), 0, 0);
    if (rep) {
        in.prefix[in.nprefix++] = rep == 1 ? 0xf3 : 0xf2;
    }
    if (addr32) {
        in.prefix[in.nprefix++] = 0x67;
    }
    cg_emit(&c, &in, "%s%s%s%c (rcx=%u, df=%d)", addr32 ? "a32 " : "", rep_names[rep],
            str_ops[op].name, str_suffix[size], count, down);
    cg_commit(g, &c);
}

/* REP MOVS/STOS whose destination runs into the read-only page. */
static void str_fault(CaseGen *g, bool stos)
{
    DiffCase c;
    static const int sizes[4] = { 1, 2, 4, 8 };
    int size = sizes[cg_below(g, 4)];
    unsigned before = 1 + (unsigned)cg_below(g, 20);
    EncInsn in = enc_insn(size, 1, (stos ? 0xaa : 0xa4) + (size != 1), 0, 0);

    cg_begin(g, &c);
    c.in.gpr[X86_RDI] = DIFF_RO_ADDR - (uint64_t)before * size;
    c.in.gpr[X86_RSI] = cg_data_addr(g, size, 64 * 8);
    c.in.gpr[X86_RCX] = before + 1 + cg_below(g, 30);
    in.prefix[in.nprefix++] = 0xf3;
    cg_emit(&c, &in, "rep %s%c into the read-only page (%u elements fit)",
            stos ? "stos" : "movs", str_suffix[size], before);
    cg_commit(g, &c);
}

void cases_string(CaseGen *g)
{
    static const int sizes[4] = { 1, 2, 4, 8 };

    for (int op = 0; op < 5; op++) {
        for (int s = 0; s < 4; s++) {
            for (int rep = 0; rep < 3; rep++) {
                for (int n = 0; n < 5; n++) {
                    str_one(g, op, sizes[s], rep, n & 1, n == 4);
                }
            }
        }
    }
    for (int n = 0; n < 8; n++) {
        str_fault(g, n & 1);
    }
}
