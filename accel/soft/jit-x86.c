/*
 * Block compiler: turns a decoded 64-bit block into host x86-64 code.
 *
 * The interpreter stays the reference. A block that has run often enough
 * is compiled once: the common integer forms (MOV, LEA, the ALU operations
 * without carry in, TEST, Jcc, JMP; 32- and 64-bit operands) become inline
 * host code that works on cpu->regs, records the lazy flags exactly as the
 * handlers do and reaches guest memory through the software TLB; every
 * other instruction is a call to its interpreter handler with RIP, next RIP
 * and the instruction count set as the interpreter would have them. So the
 * state any handler, fault or exit sees is the interpreter's own, and a
 * block that cannot run compiled (other privilege, alignment checks, a
 * budget that ends inside it) is simply interpreted.
 *
 * Register use in compiled code: rbx = cpu, r12 = the block's entry RIP,
 * r14 = the effective address of the current memory operand, r15 = a value
 * being stored; rax, rcx, rdx are scratch; r8-r11, r13, rbp, rsi and rdi
 * hold the guest registers the block uses most, for the whole block. A fault in a helper
 * leaves through siglongjmp() to soft_cpu_run(), which restores the host
 * registers; compiled code keeps nothing that needs unwinding.
 *
 * A block whose last instruction jumps back to its own start loops inside
 * its code for as long as the block loop would have chained to it again:
 * no request posted, the budget not reached, the page's code word and the
 * code epoch unchanged.
 */
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "soft-internal.h"

#define JIT_REGION_SIZE     (16u << 20)
/* Room a block may need at most: 16 instructions, their slow paths, stubs. */
#define JIT_BLOCK_MAX       (16u << 10)

/* Host registers. */
enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };

#define CPU_OFF(field)      ((int32_t)offsetof(SoftCPU, field))
#define GREG(r)             (CPU_OFF(regs) + 8 * (int32_t)(r))

_Static_assert(sizeof(TLBEntry) == 16, "compiled TLB lookups scale the index by 16");

struct SoftJit {
    uint8_t *base;
    uint8_t *next;
    uint32_t epoch;         /* moves when the region is recycled */
    unsigned threshold;     /* block runs before it is compiled */
};

enum { SLOW_LOAD, SLOW_STORE };

/*
 * The lazy flags of a register-only ALU operation not yet stored: what is
 * needed to store them later is still in host registers (the result, or
 * for CMP/TEST the first operand, and the second operand or immediate),
 * so a flag writer that the next one overwrites before anything can look
 * costs no stores at all.
 */
typedef struct PendFlags {
    bool valid;
    uint8_t op;             /* ALU_ADD, ALU_SUB, ALU_AND/OR/XOR, ALU_CMP, ALU_TEST */
    uint8_t size;
    int8_t a, b;            /* guest registers: destination or first operand, source */
    uint64_t imm;           /* the source when b < 0 */
} PendFlags;

typedef struct SlowPath {
    uint8_t kind;
    uint8_t seg;
    uint8_t size;
    uint32_t pending;       /* instructions to count before the helper runs */
    uint32_t off, len;      /* the instruction, relative to the entry RIP */
    uint8_t *jump;          /* rel32 of the branch into the stub */
    uint8_t *resume;
    PendFlags flags;        /* flags to store before the helper can fault */
} SlowPath;

#define MAX_SLOW    (SOFT_BLOCK_INSNS * 2)
#define MAX_EXITS   (SOFT_BLOCK_INSNS * 2 + 4)

typedef struct JitCtx {
    SoftCPU *cpu;
    uint8_t *p, *limit;
    bool full;
    unsigned pending;       /* completed instructions not yet added to insn_count */
    bool flags_live;        /* host EFLAGS hold the guest's last lazy operation */
    SlowPath slow[MAX_SLOW];
    unsigned nslow;
    uint8_t *to_exit[MAX_EXITS];    /* branches to the exit-through-next_rip stub */
    unsigned nexit;
    /*
     * Guest registers held in host registers for the whole block: loaded
     * at entry and after every call, written back (those the block
     * writes) before every call and exit. The first pass only counts uses.
     */
    bool counting;
    unsigned uses[X86_NR_GPRS];
    uint16_t written;               /* guest registers the block writes */
    int8_t host_of[X86_NR_GPRS];    /* -1: in cpu->regs */
    PendFlags pend;
} JitCtx;

/* ---- Encoding ---------------------------------------------------------- */

static void emit1(JitCtx *c, uint8_t b)
{
    if (c->p < c->limit) {
        *c->p++ = b;
    } else {
        c->full = true;
    }
}

static void emit4(JitCtx *c, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++) {
        emit1(c, v >> (8 * i));
    }
}

static void emit8(JitCtx *c, uint64_t v)
{
    emit4(c, (uint32_t)v);
    emit4(c, (uint32_t)(v >> 32));
}

static void emit_rex(JitCtx *c, bool w, unsigned reg, unsigned index, unsigned base)
{
    uint8_t rex = 0x40 | (w << 3) | ((reg >> 3) << 2) | ((index >> 3) << 1) | (base >> 3);

    if (rex != 0x40) {
        emit1(c, rex);
    }
}

/* ModRM (and SIB) for [base + index * 2^scale + disp32]; index < 0: none. */
static void emit_mem(JitCtx *c, unsigned reg, unsigned base, int index, unsigned scale,
                     int32_t disp)
{
    if (index < 0 && (base & 7) != RSP) {
        emit1(c, 0x80 | ((reg & 7) << 3) | (base & 7));
    } else {
        emit1(c, 0x80 | ((reg & 7) << 3) | 4);
        emit1(c, (scale << 6) | (((index < 0 ? RSP : index) & 7) << 3) | (base & 7));
    }
    emit4(c, (uint32_t)disp);
}

/* opcode reg, [base + index * 2^scale + disp] (or the store direction). */
static void emit_op_mem(JitCtx *c, bool w, uint8_t opcode, unsigned reg, unsigned base,
                        int index, unsigned scale, int32_t disp)
{
    emit_rex(c, w, reg, index < 0 ? 0 : index, base);
    emit1(c, opcode);
    emit_mem(c, reg, base, index, scale, disp);
}

/* opcode with ModRM naming two registers: reg field, r/m field. */
static void emit_op_rr(JitCtx *c, bool w, uint8_t opcode, unsigned reg, unsigned rm)
{
    emit_rex(c, w, reg, 0, rm);
    emit1(c, opcode);
    emit1(c, 0xc0 | ((reg & 7) << 3) | (rm & 7));
}

static void emit_load64(JitCtx *c, unsigned dst, unsigned base, int32_t disp)
{
    emit_op_mem(c, true, 0x8b, dst, base, -1, 0, disp);
}

static void emit_store64(JitCtx *c, unsigned base, int32_t disp, unsigned src)
{
    emit_op_mem(c, true, 0x89, src, base, -1, 0, disp);
}

static void emit_mov_rr(JitCtx *c, bool w, unsigned dst, unsigned src)
{
    emit_op_rr(c, w, 0x89, src, dst);
}

static void emit_mov_imm64(JitCtx *c, unsigned dst, uint64_t v)
{
    if (v <= 0xffffffffULL) {
        emit_rex(c, false, 0, 0, dst);      /* mov r32, imm32 zero-extends */
        emit1(c, 0xb8 + (dst & 7));
        emit4(c, (uint32_t)v);
    } else if ((int64_t)v == (int32_t)v) {
        emit_rex(c, true, 0, 0, dst);       /* mov r/m64, imm32 sign-extends */
        emit1(c, 0xc7);
        emit1(c, 0xc0 | (dst & 7));
        emit4(c, (uint32_t)v);
    } else {
        emit_rex(c, true, 0, 0, dst);
        emit1(c, 0xb8 + (dst & 7));
        emit8(c, v);
    }
}

static void emit_lea(JitCtx *c, unsigned dst, unsigned base, int index, unsigned scale,
                     int32_t disp)
{
    emit_op_mem(c, true, 0x8d, dst, base, index, scale, disp);
}

/* ALU op (0-7: add or adc sbb and sub xor cmp) r/m, reg. */
static void emit_alu_rr(JitCtx *c, bool w, unsigned op, unsigned dst, unsigned src)
{
    emit_op_rr(c, w, (uint8_t)(op * 8 + 1), src, dst);
}

static void emit_alu_imm(JitCtx *c, bool w, unsigned op, unsigned dst, int32_t imm)
{
    emit_rex(c, w, 0, 0, dst);
    emit1(c, 0x81);
    emit1(c, 0xc0 | (op << 3) | (dst & 7));
    emit4(c, (uint32_t)imm);
}

/* ALU op qword/dword [base + disp], imm32. */
static void emit_alu_mem_imm(JitCtx *c, bool w, unsigned op, unsigned base, int32_t disp,
                             int32_t imm)
{
    emit_op_mem(c, w, 0x81, op, base, -1, 0, disp);
    emit4(c, (uint32_t)imm);
}

static void emit_shift_imm(JitCtx *c, bool w, unsigned kind, unsigned r, uint8_t n)
{
    emit_rex(c, w, 0, 0, r);
    emit1(c, 0xc1);
    emit1(c, 0xc0 | (kind << 3) | (r & 7));
    emit1(c, n);
}

#define SHIFT_SHR 5

static void emit_call(JitCtx *c, const void *fn)
{
    emit_mov_imm64(c, RAX, (uint64_t)(uintptr_t)fn);
    emit1(c, 0xff);
    emit1(c, 0xd0);                 /* call rax */
}

/* A rel32 branch whose target is patched later; returns where rel32 is. */
static uint8_t *emit_jcc32(JitCtx *c, unsigned cc)
{
    emit1(c, 0x0f);
    emit1(c, 0x80 + cc);
    emit4(c, 0);
    return c->p - 4;
}

static uint8_t *emit_jmp32(JitCtx *c)
{
    emit1(c, 0xe9);
    emit4(c, 0);
    return c->p - 4;
}

static void patch(JitCtx *c, uint8_t *rel, const uint8_t *target)
{
    if (!c->full) {
        int32_t d = (int32_t)(target - (rel + 4));
        memcpy(rel, &d, 4);
    }
}

#define CC_E    0x4
#define CC_NE   0x5
#define CC_AE   0x3
#define CC_A    0x7

static void emit_epilogue(JitCtx *c)
{
    emit1(c, 0x48); emit1(c, 0x83); emit1(c, 0xc4); emit1(c, 8);     /* add rsp, 8 */
    emit1(c, 0x41); emit1(c, 0x5f);         /* pop r15 */
    emit1(c, 0x41); emit1(c, 0x5e);         /* pop r14 */
    emit1(c, 0x41); emit1(c, 0x5d);         /* pop r13 */
    emit1(c, 0x41); emit1(c, 0x5c);         /* pop r12 */
    emit1(c, 0x5d);                         /* pop rbp */
    emit1(c, 0x5b);                         /* pop rbx */
    emit1(c, 0xc3);
}

/* ---- Guest state ------------------------------------------------------- */

enum { ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP, ALU_TEST };

/*
 * Store the lazy flags @f describes, as the handlers record them. Clobbers
 * rax, rcx, rdx and the host flags.
 */
static void flags_store(JitCtx *c, const PendFlags *f)
{
    bool w = f->size == 8;
    unsigned a = (unsigned)c->host_of[f->a];
    uint32_t cc = f->op == ALU_ADD ? CC_ADD :
                  (f->op == ALU_SUB || f->op == ALU_CMP) ? CC_SUB : CC_LOGIC;

    if (!f->valid) {
        return;
    }
    emit_mov_rr(c, w, RDX, a);                  /* result, or CMP/TEST's first operand */
    if (f->b >= 0) {
        emit_mov_rr(c, w, RCX, (unsigned)c->host_of[f->b]);
    } else {
        emit_mov_imm64(c, RCX, w ? f->imm : (uint32_t)f->imm);
    }
    switch (f->op) {
    case ALU_ADD:                               /* src1 = result - src2 */
    case ALU_SUB:                               /* src1 = result + src2 */
        emit_store64(c, RBX, CPU_OFF(cc_res), RDX);
        emit_alu_rr(c, w, f->op == ALU_ADD ? ALU_SUB : ALU_ADD, RDX, RCX);
        emit_store64(c, RBX, CPU_OFF(cc_src1), RDX);
        emit_store64(c, RBX, CPU_OFF(cc_src2), RCX);
        break;
    case ALU_CMP:
        emit_store64(c, RBX, CPU_OFF(cc_src1), RDX);
        emit_store64(c, RBX, CPU_OFF(cc_src2), RCX);
        emit_alu_rr(c, w, ALU_SUB, RDX, RCX);
        emit_store64(c, RBX, CPU_OFF(cc_res), RDX);
        break;
    case ALU_TEST:
        emit_alu_rr(c, w, ALU_AND, RDX, RCX);
        emit_store64(c, RBX, CPU_OFF(cc_res), RDX);
        break;
    default:                                    /* AND, OR, XOR: the result */
        emit_store64(c, RBX, CPU_OFF(cc_res), RDX);
        break;
    }
    emit_op_mem(c, false, 0xc7, 0, RBX, -1, 0, CPU_OFF(cc_op));
    emit4(c, cc);
    emit_op_mem(c, false, 0xc6, 0, RBX, -1, 0, CPU_OFF(cc_size));
    emit1(c, f->size);
    c->flags_live = false;
}

/* Store the pending flags now: something may read them or fault. */
static void flags_settle(JitCtx *c)
{
    flags_store(c, &c->pend);
    c->pend.valid = false;
}

/* A guest register into a host one; 4-byte reads zero-extend. */
static void load_greg(JitCtx *c, unsigned host, unsigned r, unsigned size)
{
    if (c->counting) {
        c->uses[r]++;
    }
    if (c->host_of[r] >= 0) {
        emit_mov_rr(c, size == 8, host, (unsigned)c->host_of[r]);
    } else {
        emit_op_mem(c, size == 8, 0x8b, host, RBX, -1, 0, GREG(r));
    }
}

/*
 * A host register into a guest one. A 4-byte value comes from a 32-bit
 * host operation, whose upper half is already zero, as a 32-bit guest
 * write must leave it.
 */
static void store_greg(JitCtx *c, unsigned r, unsigned host)
{
    if (c->pend.valid && (c->pend.a == (int)r || c->pend.b == (int)r)) {
        /* The pending flags need the old value; settling clobbers rax-rdx. */
        bool scratch = host == RAX || host == RCX || host == RDX;
        if (scratch) {
            emit_mov_rr(c, true, R15, host);
        }
        flags_settle(c);
        if (scratch) {
            emit_mov_rr(c, true, host, R15);
        }
    }
    if (c->counting) {
        c->uses[r]++;
        c->written |= 1u << r;
    }
    if (c->host_of[r] >= 0) {
        emit_mov_rr(c, true, (unsigned)c->host_of[r], host);
    } else {
        emit_store64(c, RBX, GREG(r), host);
    }
}

/* Write back the held registers the block writes: cpu->regs is then whole. */
static void regs_flush(JitCtx *c)
{
    for (unsigned r = 0; r < X86_NR_GPRS; r++) {
        if (c->host_of[r] >= 0 && (c->written & (1u << r))) {
            emit_store64(c, RBX, GREG(r), (unsigned)c->host_of[r]);
        }
    }
}

/* Load every held register from cpu->regs (at entry, and after a call). */
static void regs_reload(JitCtx *c)
{
    for (unsigned r = 0; r < X86_NR_GPRS; r++) {
        if (c->host_of[r] >= 0) {
            emit_load64(c, (unsigned)c->host_of[r], RBX, GREG(r));
        }
    }
}

/* After the counting pass: the most used guest registers get host ones. */
static void regs_allocate(JitCtx *c)
{
    static const uint8_t pool[] = { R8, R9, R10, R11, R13, RBP, RSI, RDI };

    for (unsigned i = 0; i < sizeof(pool); i++) {
        unsigned best = X86_NR_GPRS;
        for (unsigned r = 0; r < X86_NR_GPRS; r++) {
            if (c->uses[r] && c->host_of[r] < 0 &&
                (best == X86_NR_GPRS || c->uses[r] > c->uses[best])) {
                best = r;
            }
        }
        if (best == X86_NR_GPRS) {
            break;
        }
        c->host_of[best] = (int8_t)pool[i];
    }
}

static void count_pending(JitCtx *c, unsigned n)
{
    if (n) {
        emit_alu_mem_imm(c, true, 0, RBX, CPU_OFF(insn_count), (int32_t)n);
    }
}

/* cpu->rip and cpu->next_rip for the instruction at @off, @len bytes. */
static void set_rips(JitCtx *c, uint32_t off, uint32_t len)
{
    emit_lea(c, RAX, R12, -1, 0, (int32_t)off);
    emit_store64(c, RBX, CPU_OFF(rip), RAX);
    emit_lea(c, RAX, R12, -1, 0, (int32_t)(off + len));
    emit_store64(c, RBX, CPU_OFF(next_rip), RAX);
}

/* Leave with cpu->rip = entry + @off (all counted). */
static void exit_at(JitCtx *c, uint32_t off)
{
    flags_settle(c);
    regs_flush(c);
    count_pending(c, c->pending);
    emit_lea(c, RAX, R12, -1, 0, (int32_t)off);
    emit_store64(c, RBX, CPU_OFF(rip), RAX);
    emit_epilogue(c);
}

static void branch_to_exit_stub(JitCtx *c, unsigned cc)
{
    uint8_t *rel = emit_jcc32(c, cc);

    if (c->nexit < MAX_EXITS) {
        c->to_exit[c->nexit++] = rel;
    } else {
        c->full = true;             /* cannot happen with the bounds above */
    }
}

/* The host register holding guest register @r, loading it into @scratch if none does. */
static unsigned greg_host(JitCtx *c, unsigned r, unsigned scratch)
{
    if (c->host_of[r] >= 0) {
        return (unsigned)c->host_of[r];
    }
    load_greg(c, scratch, r, 8);
    return scratch;
}

/* The effective address (offset) of @in's memory operand into r14. */
static void gen_ea(JitCtx *c, const Insn *in, uint32_t next_off)
{
    if (in->base == BASE_RIP) {
        int64_t d = (int64_t)next_off + in->disp;
        if (d == (int32_t)d) {
            emit_lea(c, R14, R12, -1, 0, (int32_t)d);
        } else {
            emit_mov_imm64(c, R14, (uint64_t)d);
            emit_alu_rr(c, true, 0, R14, R12);  /* clobbers flags */
            c->flags_live = false;
        }
    } else if (in->base >= 0) {
        unsigned base = greg_host(c, in->base, R14);
        if (in->index >= 0) {
            unsigned index = greg_host(c, in->index, RAX);
            emit_lea(c, R14, base, (int)index, in->scale, (int32_t)in->disp);
        } else {
            emit_lea(c, R14, base, -1, 0, (int32_t)in->disp);
        }
    } else {
        emit_mov_imm64(c, R14, (uint64_t)in->disp);
        if (in->index >= 0) {
            unsigned index = greg_host(c, in->index, RAX);
            emit_lea(c, R14, R14, (int)index, in->scale, 0);
        }
    }
    if (in->asize == 4) {
        emit_mov_rr(c, false, R14, R14);        /* mov r14d, r14d */
    }
}

/*
 * The TLB fast path for the operand whose offset is in r14: on a hit rax
 * is the host address. On a miss (no entry, a page cross, a non-canonical
 * address, which no tag can equal) a stub calls the interpreter's slow
 * path with the instruction's RIPs and count set. Loads end with the value
 * in rcx; stores take it from r15.
 */
static void gen_mem(JitCtx *c, const Insn *in, int kind, unsigned size, uint32_t off)
{
    int acc = kind == SLOW_LOAD ? ACC_READ : ACC_WRITE;
    int32_t tlb = CPU_OFF(tlb) + (int32_t)((c->cpu->midx * ACC_NR + acc) * TLB_SIZE * 16);
    SlowPath *s;

    emit_mov_rr(c, true, RAX, R14);
    if (in->seg >= X86_SEG_FS) {
        emit_op_mem(c, true, 0x03, RAX, RBX, -1, 0,
                    CPU_OFF(segs) + (int32_t)(in->seg * sizeof(X86Segment)) +
                    (int32_t)offsetof(X86Segment, base));
    }
    /* The entry's offset: ((lin >> 12) & (TLB_SIZE - 1)) * 16 in two steps. */
    emit_mov_rr(c, true, RDX, RAX);
    emit_shift_imm(c, true, SHIFT_SHR, RDX, 8);
    emit_alu_imm(c, false, 4, RDX, (TLB_SIZE - 1) << 4);
    emit_lea(c, RCX, RAX, -1, 0, (int32_t)(size - 1));
    emit_alu_imm(c, true, 4, RCX, (int32_t)PAGE_MASK);
    emit_op_mem(c, true, 0x3b, RCX, RBX, RDX, 0, tlb);                  /* cmp rcx, tag */
    if (c->nslow == MAX_SLOW) {
        c->full = true;
        return;
    }
    s = &c->slow[c->nslow++];
    s->jump = emit_jcc32(c, CC_NE);
    emit_op_mem(c, true, 0x03, RAX, RBX, RDX, 0,
                tlb + (int32_t)offsetof(TLBEntry, addend));           /* add rax, addend */
    if (kind == SLOW_LOAD) {
        if (size == 1 || size == 2) {
            emit_rex(c, false, RCX, 0, RAX);
            emit1(c, 0x0f);
            emit1(c, size == 1 ? 0xb6 : 0xb7);                          /* movzx ecx, [rax] */
            emit_mem(c, RCX, RAX, -1, 0, 0);
        } else {
            emit_op_mem(c, size == 8, 0x8b, RCX, RAX, -1, 0, 0);
        }
    } else {
        emit_op_mem(c, size == 8, 0x89, R15, RAX, -1, 0, 0);
    }
    s->resume = c->p;
    s->kind = kind;
    s->seg = in->seg;
    s->size = size;
    s->pending = c->pending;
    s->off = off;
    s->len = in->len;
    s->flags = c->pend;
    c->flags_live = false;
}

static void gen_slow_paths(JitCtx *c)
{
    for (unsigned i = 0; i < c->nslow; i++) {
        SlowPath *s = &c->slow[i];

        patch(c, s->jump, c->p);
        set_rips(c, s->off, s->len);
        /* Count what completed before it, for a fault; undone on return. */
        count_pending(c, s->pending);
        flags_store(c, &s->flags);
        regs_flush(c);
        emit_mov_rr(c, true, RDI, RBX);
        emit_mov_imm64(c, RSI, s->seg);
        emit_mov_rr(c, true, RDX, R14);
        emit_mov_imm64(c, RCX, s->size);
        if (s->kind == SLOW_LOAD) {
            emit_call(c, (const void *)soft_read_slow);
            emit_mov_rr(c, true, RCX, RAX);
            regs_reload(c);
        } else {
            emit_mov_rr(c, true, R8, R15);
            emit_call(c, (const void *)soft_write_slow);
        }
        if (s->pending) {
            emit_alu_mem_imm(c, true, 5, RBX, CPU_OFF(insn_count), (int32_t)s->pending);
        }
        if (s->kind == SLOW_STORE) {
            uint8_t *skip;

            /*
             * A store into decoded code ends the block after it, as in the
             * loop; cpu->regs is already whole (the host copies are not).
             */
            emit_op_mem(c, false, 0x80, 7, RBX, -1, 0, CPU_OFF(exit_block));
            emit1(c, 0);
            skip = emit_jcc32(c, CC_E);
            count_pending(c, s->pending + 1);
            emit_lea(c, RAX, R12, -1, 0, (int32_t)(s->off + s->len));
            emit_store64(c, RBX, CPU_OFF(rip), RAX);
            emit_epilogue(c);
            patch(c, skip, c->p);
            regs_reload(c);
            patch(c, emit_jmp32(c), s->resume);
        } else {
            patch(c, emit_jmp32(c), s->resume);
        }
    }
}

/* ---- Instructions ------------------------------------------------------ */

/* Source of an ALU operand. */
enum { OPND_REG, OPND_IMM, OPND_MEM };

/*
 * dst OP src with the lazy flags the handlers record: CC_ADD/CC_SUB keep
 * both operands, the logic operations only the result. CMP and TEST write
 * nothing back. The host operation leaves the guest's flags in EFLAGS for
 * a Jcc right after it.
 */
static void gen_alu(JitCtx *c, const Insn *in, unsigned op, unsigned size, int dst_kind,
                    unsigned dst_reg, int src_kind, unsigned src_reg, uint32_t off)
{
    bool w = size == 8;
    bool arith = op == ALU_ADD || op == ALU_SUB || op == ALU_CMP;
    uint32_t cc = op == ALU_ADD ? CC_ADD : arith ? CC_SUB : CC_LOGIC;

    /*
     * Registers held in host registers, distinct, and an immediate or
     * register source: operate in place and leave the flags pending.
     */
    if (!c->counting && dst_kind == OPND_REG && c->host_of[dst_reg] >= 0 &&
        (src_kind == OPND_IMM ||
         (src_kind == OPND_REG && src_reg != dst_reg && c->host_of[src_reg] >= 0))) {
        unsigned d = (unsigned)c->host_of[dst_reg];
        unsigned hop = op == ALU_TEST ? 0 : op;

        /* Overwritten before anything could look: the old pending flags are dead. */
        c->pend.valid = false;
        if (src_kind == OPND_IMM) {
            int32_t imm = (int32_t)in->imm;
            if (op == ALU_TEST) {
                emit_rex(c, w, 0, 0, d);
                emit1(c, 0xf7);                 /* test r/m, imm32 */
                emit1(c, 0xc0 | (d & 7));
                emit4(c, (uint32_t)imm);
            } else {
                emit_alu_imm(c, w, hop, d, imm);
            }
        } else if (op == ALU_TEST) {
            emit_op_rr(c, w, 0x85, (unsigned)c->host_of[src_reg], d);
        } else {
            emit_alu_rr(c, w, hop, d, (unsigned)c->host_of[src_reg]);
        }
        c->pend = (PendFlags) {
            .valid = true, .op = (uint8_t)op, .size = (uint8_t)size, .a = (int8_t)dst_reg,
            .b = src_kind == OPND_REG ? (int8_t)src_reg : -1, .imm = in->imm,
        };
        c->flags_live = true;
        return;
    }
    /* Recorded below in full: whatever was pending is dead. */
    if (dst_kind != OPND_MEM && src_kind != OPND_MEM) {
        c->pend.valid = false;
    }

    /* A memory operand first: its fast path uses every scratch register. */
    if (dst_kind == OPND_MEM || src_kind == OPND_MEM) {
        gen_ea(c, in, off + in->len);
        gen_mem(c, in, SLOW_LOAD, size, off);
        c->pend.valid = false;
    }
    if (dst_kind == OPND_MEM) {
        emit_mov_rr(c, true, RDX, RCX);
    } else {
        load_greg(c, RDX, dst_reg, size);
    }
    if (src_kind == OPND_REG) {
        load_greg(c, RCX, src_reg, size);
    } else if (src_kind == OPND_IMM) {
        emit_mov_imm64(c, RCX, size == 8 ? in->imm : (uint32_t)in->imm);
    }
    if (arith) {
        emit_store64(c, RBX, CPU_OFF(cc_src1), RDX);
        emit_store64(c, RBX, CPU_OFF(cc_src2), RCX);
    }
    /* CMP as SUB and TEST as AND: the same flags, and the result is recorded. */
    emit_alu_rr(c, w, op == ALU_CMP ? ALU_SUB : op == ALU_TEST ? ALU_AND : op, RDX, RCX);
    emit_store64(c, RBX, CPU_OFF(cc_res), RDX);
    emit_op_mem(c, false, 0xc7, 0, RBX, -1, 0, CPU_OFF(cc_op));
    emit4(c, cc);
    emit_op_mem(c, false, 0xc6, 0, RBX, -1, 0, CPU_OFF(cc_size));
    emit1(c, (uint8_t)size);
    if (op != ALU_CMP && op != ALU_TEST) {
        store_greg(c, dst_reg, RDX);
    }
    c->flags_live = true;
}

/* Whether @in compiles inline; emits it if so. */
static bool gen_native(JitCtx *c, const Insn *in, uint32_t off)
{
    unsigned size = in->osize;
    unsigned op;

    if (in->lock || in->rep || (size != 4 && size != 8) || in->asize == 2) {
        return false;
    }
    switch (in->op) {
    case 0x01: case 0x09: case 0x21: case 0x29: case 0x31: case 0x39:
        op = (in->op >> 3) & 7;
        if (in->mod == 3) {
            gen_alu(c, in, op, size, OPND_REG, in->rm, OPND_REG, in->reg, off);
            return true;
        }
        if (op == ALU_CMP) {
            gen_alu(c, in, op, size, OPND_MEM, 0, OPND_REG, in->reg, off);
            return true;
        }
        return false;
    case 0x03: case 0x0b: case 0x23: case 0x2b: case 0x33: case 0x3b:
        op = (in->op >> 3) & 7;
        gen_alu(c, in, op, size, OPND_REG, in->reg, in->mod == 3 ? OPND_REG : OPND_MEM,
                in->rm, off);
        return true;
    case 0x05: case 0x0d: case 0x25: case 0x2d: case 0x35: case 0x3d:
        op = (in->op >> 3) & 7;
        gen_alu(c, in, op, size, OPND_REG, X86_RAX, OPND_IMM, 0, off);
        return true;
    case 0x81: case 0x83:
        op = in->reg & 7;
        if (op == ALU_ADC || op == ALU_SBB) {
            return false;
        }
        if (in->mod == 3) {
            gen_alu(c, in, op, size, OPND_REG, in->rm, OPND_IMM, 0, off);
            return true;
        }
        if (op == ALU_CMP) {
            gen_alu(c, in, op, size, OPND_MEM, 0, OPND_IMM, 0, off);
            return true;
        }
        return false;
    case 0x85:
        gen_alu(c, in, ALU_TEST, size, in->mod == 3 ? OPND_REG : OPND_MEM, in->rm,
                OPND_REG, in->reg, off);
        return true;
    case 0xa9:
        gen_alu(c, in, ALU_TEST, size, OPND_REG, X86_RAX, OPND_IMM, 0, off);
        return true;
    case 0x89:
        if (in->mod == 3) {
            load_greg(c, RDX, in->reg, size);
            store_greg(c, in->rm, RDX);
        } else {
            gen_ea(c, in, off + in->len);
            load_greg(c, R15, in->reg, size);
            gen_mem(c, in, SLOW_STORE, size, off);
        }
        return true;
    case 0x8b:
        if (in->mod == 3) {
            load_greg(c, RDX, in->rm, size);
        } else {
            gen_ea(c, in, off + in->len);
            gen_mem(c, in, SLOW_LOAD, size, off);
            emit_mov_rr(c, true, RDX, RCX);
        }
        store_greg(c, in->reg, RDX);
        return true;
    case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf:
        emit_mov_imm64(c, RDX, size == 8 ? in->imm : (uint32_t)in->imm);
        store_greg(c, (in->op & 7) | ((in->rex & 1) << 3), RDX);
        return true;
    case 0xc7:
        if ((in->reg & 7) != 0) {
            return false;
        }
        if (in->mod == 3) {
            emit_mov_imm64(c, RDX, size == 8 ? in->imm : (uint32_t)in->imm);
            store_greg(c, in->rm, RDX);
        } else {
            gen_ea(c, in, off + in->len);
            emit_mov_imm64(c, R15, size == 8 ? in->imm : (uint32_t)in->imm);
            gen_mem(c, in, SLOW_STORE, size, off);
        }
        return true;
    case 0x8d:
        if (in->mod == 3) {
            return false;
        }
        gen_ea(c, in, off + in->len);
        if (size == 4) {
            emit_mov_rr(c, false, R14, R14);
        }
        store_greg(c, in->reg, R14);
        return true;
    case 0x1b6: case 0x1b7:
        if (in->mod == 3) {
            return false;
        }
        gen_ea(c, in, off + in->len);
        gen_mem(c, in, SLOW_LOAD, in->op == 0x1b6 ? 1 : 2, off);
        store_greg(c, in->reg, RCX);
        return true;
    default:
        return false;
    }
}

/* An instruction the compiler does not know: call its handler. */
static void gen_call_handler(JitCtx *c, const Insn *in, uint32_t off, bool last)
{
    set_rips(c, off, in->len);
    count_pending(c, c->pending);
    c->pending = 0;
    flags_settle(c);
    regs_flush(c);
    emit_mov_rr(c, true, RDI, RBX);
    emit_mov_imm64(c, RSI, (uint64_t)(uintptr_t)in);
    emit_call(c, (const void *)in->fn);
    regs_reload(c);             /* the handler may have written any of them */
    count_pending(c, 1);
    c->flags_live = false;
    if (last) {
        if (c->nexit < MAX_EXITS) {
            c->to_exit[c->nexit++] = emit_jmp32(c);
        } else {
            c->full = true;
        }
        return;
    }
    /* exit_block, or a budget a REP used up: leave where the handler said. */
    emit_op_mem(c, false, 0x80, 7, RBX, -1, 0, CPU_OFF(exit_block));
    emit1(c, 0);
    branch_to_exit_stub(c, CC_NE);
    emit_load64(c, RAX, RBX, CPU_OFF(insn_count));
    emit_op_mem(c, true, 0x3b, RAX, RBX, -1, 0, CPU_OFF(insn_limit));
    branch_to_exit_stub(c, CC_AE);
}

/*
 * The taken side of a branch back to the block's start: loop while the
 * block loop would have chained to this block again.
 */
static void gen_self_loop(JitCtx *c, uint8_t *body, unsigned n, const uint32_t *word,
                          uint32_t gen)
{
    uint8_t *out[4];

    /* The next pass may fault before its first flag writer: store them. */
    flags_settle(c);
    count_pending(c, c->pending);
    emit_op_mem(c, false, 0x81, 7, RBX, -1, 0, CPU_OFF(req));          /* cmp req, 0 */
    emit4(c, 0);
    out[0] = emit_jcc32(c, CC_NE);
    emit_load64(c, RAX, RBX, CPU_OFF(insn_count));
    emit_lea(c, RAX, RAX, -1, 0, (int32_t)n);
    emit_op_mem(c, true, 0x3b, RAX, RBX, -1, 0, CPU_OFF(insn_limit));
    out[1] = emit_jcc32(c, CC_A);
    emit_mov_imm64(c, RAX, (uint64_t)(uintptr_t)word);
    emit_op_mem(c, false, 0x81, 7, RAX, -1, 0, 0);                      /* cmp [word], gen */
    emit4(c, gen);
    out[2] = emit_jcc32(c, CC_NE);
    emit_mov_imm64(c, RAX, (uint64_t)(uintptr_t)&soft_code_epoch);
    emit_op_mem(c, false, 0x8b, RAX, RAX, -1, 0, 0);
    emit_op_mem(c, false, 0x3b, RAX, RBX, -1, 0, CPU_OFF(code_epoch));
    out[3] = emit_jcc32(c, CC_NE);
    patch(c, emit_jmp32(c), body);
    for (unsigned i = 0; i < 4; i++) {
        patch(c, out[i], c->p);
    }
    regs_flush(c);
    emit_store64(c, RBX, CPU_OFF(rip), R12);
    emit_epilogue(c);
}

/* Jcc or JMP rel ending the block: both sides leave, or loop to the start. */
static void gen_branch(JitCtx *c, const Insn *in, uint32_t off, uint8_t *body, unsigned n,
                       const uint32_t *word, uint32_t gen)
{
    int64_t target = (int64_t)off + in->len + (int64_t)in->imm;
    unsigned cc = in->op & 0xf;
    uint8_t *taken = NULL;

    if (in->op != 0xeb && in->op != 0xe9) {
        if (c->flags_live) {
            taken = emit_jcc32(c, cc);
        } else {
            flags_settle(c);
            regs_flush(c);
            emit_mov_rr(c, true, RDI, RBX);
            emit_mov_imm64(c, RSI, cc);
            emit_call(c, (const void *)soft_cond);
            emit1(c, 0x84); emit1(c, 0xc0);                             /* test al, al */
            regs_reload(c);                                             /* movs: flags stay */
            taken = emit_jcc32(c, CC_NE);
        }
        PendFlags pend = c->pend;       /* exit_at() settles them on its path only */

        c->pending++;
        exit_at(c, off + in->len);
        c->pending--;
        c->pend = pend;
        patch(c, taken, c->p);
    }
    c->pending++;
    if (target == 0) {
        gen_self_loop(c, body, n, word, gen);
    } else {
        uint8_t *bad;

        flags_settle(c);
        if (target == (int32_t)target) {
            emit_lea(c, RAX, R12, -1, 0, (int32_t)target);
        } else {
            emit_mov_imm64(c, RAX, (uint64_t)target);
            emit_alu_rr(c, true, 0, RAX, R12);
        }
        /* A non-canonical target is the handler's #GP, at the branch. */
        emit_mov_rr(c, true, RDX, RAX);
        emit_rex(c, true, 0, 0, RDX);
        emit1(c, 0xc1); emit1(c, 0xfa); emit1(c, 47);                   /* sar rdx, 47 */
        emit_alu_imm(c, true, 0, RDX, 1);
        emit_alu_imm(c, true, 7, RDX, 1);
        bad = emit_jcc32(c, CC_A);
        regs_flush(c);
        count_pending(c, c->pending);
        emit_store64(c, RBX, CPU_OFF(rip), RAX);
        emit_epilogue(c);
        patch(c, bad, c->p);
        c->pending--;
        gen_call_handler(c, in, off, true);
    }
}

static bool is_rel_branch(const Insn *in)
{
    return in->osize == 8 &&
           ((in->op >= 0x70 && in->op <= 0x7f) || (in->op >= 0x180 && in->op <= 0x18f) ||
            in->op == 0xeb || in->op == 0xe9);
}

static void *compile(JitCtx *c, const Insn *insns, unsigned n, const uint32_t *word,
                     uint32_t gen)
{
    uint8_t *start = c->p, *body;
    uint32_t off = 0;

    emit1(c, 0x53);                         /* push rbx */
    emit1(c, 0x55);                         /* push rbp */
    emit1(c, 0x41); emit1(c, 0x54);         /* push r12 */
    emit1(c, 0x41); emit1(c, 0x55);         /* push r13 */
    emit1(c, 0x41); emit1(c, 0x56);         /* push r14 */
    emit1(c, 0x41); emit1(c, 0x57);         /* push r15 */
    emit1(c, 0x48); emit1(c, 0x83); emit1(c, 0xec); emit1(c, 8);     /* sub rsp, 8: align */
    emit_mov_rr(c, true, RBX, RDI);
    emit_load64(c, R12, RBX, CPU_OFF(rip));
    regs_reload(c);
    body = c->p;

    for (unsigned i = 0; i < n; i++) {
        const Insn *in = &insns[i];
        bool last = i == n - 1;

        if (last && is_rel_branch(in)) {
            gen_branch(c, in, off, body, n, word, gen);
            off += in->len;
            break;
        }
        if (gen_native(c, in, off)) {
            c->pending++;
        } else {
            gen_call_handler(c, in, off, last);
        }
        off += in->len;
        if (last && c->pending) {
            /* Ended by its length or the page after inline code: go on after it. */
            exit_at(c, off);
        }
    }

    /* Leave at whatever next_rip a handler left (branches, yields, exit_block). */
    for (unsigned i = 0; i < c->nexit; i++) {
        patch(c, c->to_exit[i], c->p);
    }
    if (c->nexit) {
        emit_load64(c, RAX, RBX, CPU_OFF(next_rip));
        emit_store64(c, RBX, CPU_OFF(rip), RAX);
        emit_epilogue(c);
    }
    gen_slow_paths(c);
    return c->full ? NULL : start;
}

/* ---- Region and entry points ------------------------------------------- */

SoftJit *soft_jit_new(void)
{
    const char *env = getenv("FERRY_SOFT_JIT");
    unsigned threshold = 8;
    SoftJit *j;
    void *m;

    if (env && strcmp(env, "off") == 0) {
        return NULL;
    }
    if (env && strcmp(env, "always") == 0) {
        threshold = 1;
    }
    m = mmap(NULL, JIT_REGION_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        return NULL;                /* no executable memory: interpret */
    }
    j = calloc(1, sizeof(*j));
    if (!j) {
        munmap(m, JIT_REGION_SIZE);
        return NULL;
    }
    j->base = j->next = m;
    j->threshold = threshold;
    return j;
}

void soft_jit_free(SoftJit *j)
{
    if (j) {
        munmap(j->base, JIT_REGION_SIZE);
        free(j);
    }
}

unsigned soft_jit_threshold(const SoftJit *j)
{
    return j->threshold;
}

uint32_t soft_jit_epoch(const SoftJit *j)
{
    return j->epoch;
}

void *soft_jit_compile(SoftCPU *cpu, const Insn *insns, unsigned n, const uint32_t *word,
                       uint32_t gen)
{
    SoftJit *j = cpu->jit;
    JitCtx *c;
    void *code;

    if (j->next + JIT_BLOCK_MAX > j->base + JIT_REGION_SIZE) {
        /* Full: start over; blocks compiled before see the epoch move. */
        j->next = j->base;
        j->epoch++;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        return NULL;
    }
    /* First pass: which guest registers the inline code touches, and how often. */
    c->cpu = cpu;
    c->p = j->next;
    c->limit = j->next + JIT_BLOCK_MAX;
    c->counting = true;
    memset(c->host_of, -1, sizeof(c->host_of));
    compile(c, insns, n, word, gen);
    regs_allocate(c);
    c->counting = false;
    c->p = j->next;
    c->full = false;
    c->pending = 0;
    c->flags_live = false;
    c->nslow = 0;
    c->nexit = 0;
    code = compile(c, insns, n, word, gen);
    if (code) {
        j->next = (uint8_t *)(((uintptr_t)c->p + 15) & ~(uintptr_t)15);
    }
    free(c);
    return code;
}
