/*
 * Decoded blocks: runs of decoded instructions keyed by guest-physical
 * address and decoding mode, ending at a control transfer, a system
 * instruction or the end of the page. Execution walks a block and calls
 * one handler per instruction; the bytes are decoded again only when the
 * page's code generation (code-map.c) says they changed.
 */
#include <stdlib.h>

#include "soft-internal.h"

#define BLOCK_KEY_NONE  (~0ULL)

/*
 * A remembered successor: fetching at linear address @lin (privilege
 * @midx) found the block @to for @gpa while the fetch TLB was at
 * generation @fetch_gen. The link proves nothing by itself: it is used
 * only while the generation is unchanged (so the fetch TLB still maps
 * @lin to @gpa) and @to still holds @gpa, in the current mode, with its
 * page's code word unchanged, which is what the full lookup checks.
 */
typedef struct BlockLink {
    uint64_t lin;
    uint64_t gpa;
    SoftBlock *to;
    uint64_t fetch_gen;
    uint8_t midx;
} BlockLink;

struct SoftBlock {
    uint64_t gpa;           /* physical address of the first instruction */
    uint32_t gen;           /* code word of the page when decoded */
    uint8_t mode;
    uint8_t n;
    uint16_t bytes;
    uint32_t *word;         /* the page's code word */
    BlockLink link[2];      /* fall-through and branch target, typically */
    uint8_t link_next;      /* the slot a new successor replaces */
    uint8_t jit_midx;       /* the privilege jit was compiled for */
    uint16_t hits;          /* runs since decoding, up to the compile threshold */
    uint32_t jit_epoch;
    void (*jit)(SoftCPU *cpu);  /* compiled code (jit-x86.c), NULL if none */
    Insn insns[SOFT_BLOCK_INSNS];
};

/* What unused links point to: it holds no address, so none validates. */
static SoftBlock no_block = { .gpa = BLOCK_KEY_NONE };

static void block_unlink(SoftBlock *b)
{
    for (unsigned j = 0; j < 2; j++) {
        b->link[j].to = &no_block;
        b->link[j].gpa = 0;
    }
}

/*
 * All zero is empty: no page word (the lookup checks it first), and links
 * whose fetch generation (0) no vCPU ever has, since its first TLB flush
 * at creation. So the cache's megabyte stays untouched until used, which
 * is most of what a vCPU costs to create.
 */
SoftBlock *soft_blocks_new(void)
{
    return calloc(SOFT_BLOCKS, sizeof(SoftBlock));
}

void soft_blocks_free(SoftBlock *b)
{
    free(b);
}

/*
 * Forget every block (the RAM map changed under the physical addresses).
 * A cache nothing was decoded into since is left alone, untouched.
 */
void soft_blocks_flush(SoftCPU *cpu)
{
    SoftBlock *b = cpu->blocks;

    if (!cpu->blocks_built) {
        return;
    }
    cpu->blocks_built = false;
    for (unsigned i = 0; i < SOFT_BLOCKS; i++) {
        b[i].gpa = BLOCK_KEY_NONE;
        b[i].jit = NULL;
        block_unlink(&b[i]);
    }
}

/*
 * Compiled code for @b if it may run now: 64-bit code, compiled for this
 * privilege in the current region, no alignment checks, and the budget
 * not ending inside the block. Compiles a block that has run often enough.
 */
static inline void (*block_jit(SoftCPU *cpu, SoftBlock *b))(SoftCPU *)
{
    if (!cpu->jit || !(b->mode & 1) || cpu->ac_check ||
        cpu->insn_count + b->n > cpu->insn_limit) {
        return NULL;
    }
    if (likely(b->jit && b->jit_epoch == soft_jit_epoch(cpu->jit) &&
               b->jit_midx == cpu->midx)) {
        return b->jit;
    }
    b->jit = NULL;
    if (++b->hits < soft_jit_threshold(cpu->jit)) {
        return NULL;
    }
    b->hits = 0;
    b->jit = (void (*)(SoftCPU *))soft_jit_compile(cpu, b->insns, b->n, b->word, b->gen);
    b->jit_epoch = soft_jit_epoch(cpu->jit);
    b->jit_midx = cpu->midx;
    return b->jit;
}

/* Instructions after which decoding stops: control flow and system state. */
static bool ends_block(uint16_t op)
{
    if ((op >= 0x70 && op <= 0x7f) || (op >= 0x180 && op <= 0x18f) ||
        (op >= 0xe0 && op <= 0xe3) || (op >= 0x120 && op <= 0x123)) {
        return true;
    }
    switch (op) {
    case 0x07: case 0x17: case 0x1f: case 0x8e: case 0x9a: case 0x9d:
    case 0xc2: case 0xc3: case 0xc4: case 0xc5: case 0xca: case 0xcb:
    case 0xcc: case 0xcd: case 0xce: case 0xcf: case 0xe8: case 0xe9:
    case 0xea: case 0xeb: case 0xf1: case 0xf4: case 0xfa: case 0xfb:
    case 0xff:
    case 0x100: case 0x101: case 0x105: case 0x106: case 0x107: case 0x108:
    case 0x109: case 0x10b: case 0x130: case 0x134: case 0x135: case 0x1a1:
    case 0x1a2: case 0x1a9: case 0x1ae: case 0x1b2: case 0x1b4: case 0x1b5:
    case 0x1b9:
        return true;
    }
    return false;
}

static inline uint8_t cur_mode(const SoftCPU *cpu)
{
    return cpu->long64 | (cpu->code32 << 1);
}

static inline unsigned block_index(uint64_t gpa)
{
    return (unsigned)((gpa ^ (gpa >> 12)) & (SOFT_BLOCKS - 1));
}

/*
 * Decode the instruction at cpu->rip without delivering a fault: a later
 * instruction of a block that cannot be decoded simply ends the block.
 */
static bool decode_quiet(SoftCPU *cpu, Insn *in)
{
    sigjmp_buf saved;
    uint64_t cr2 = cpu->cr2;
    volatile bool ok = false;

    memcpy(&saved, &cpu->jb, sizeof(saved));
    if (sigsetjmp(cpu->jb, 0) == 0) {
        soft_decode(cpu, in);
        ok = true;
    } else {
        cpu->exc_pending = false;
        cpu->cr2 = cr2;
    }
    memcpy(&cpu->jb, &saved, sizeof(saved));
    return ok;
}

static void block_build(SoftCPU *cpu, SoftBlock *b, uint64_t gpa, uint32_t *word)
{
    uint64_t start = cpu->rip, rip = start;
    unsigned n = 0, bytes = 0;

    b->gpa = BLOCK_KEY_NONE;
    b->jit = NULL;
    b->hits = 0;
    cpu->blocks_built = true;
    /* Flag the page before reading its bytes: a racing write then bumps it. */
    b->gen = soft_code_mark(word);
    b->word = word;
    b->mode = cur_mode(cpu);
    soft_decode(cpu, &b->insns[0]);
    for (;;) {
        Insn *in = &b->insns[n];
        in->end = ends_block(in->op);
        bytes += in->len;
        n++;
        rip = start + bytes;
        if (in->end || n == SOFT_BLOCK_INSNS ||
            ((gpa & 0xfff) + bytes) > PAGE_SIZE - 15) {
            break;
        }
        if (!cpu->long64) {
            rip &= cpu->code32 ? 0xffffffffULL : 0xffffULL;
            if (rip != start + bytes) {
                break;          /* IP wraps: leave it to the next block */
            }
        }
        cpu->rip = rip;
        if (!decode_quiet(cpu, &b->insns[n])) {
            break;
        }
    }
    cpu->rip = start;
    b->n = n;
    b->bytes = bytes;
    if ((gpa & 0xfff) + bytes <= PAGE_SIZE) {
        b->gpa = gpa;
    }
}

/* Decode and run one instruction, caching nothing (MMIO code, page cross). */
void soft_run_one(SoftCPU *cpu)
{
    Insn insn;

    soft_decode(cpu, &insn);
    cpu->next_rip = cpu->rip + insn.len;
    if (!cpu->long64) {
        cpu->next_rip &= cpu->code32 ? 0xffffffffULL : 0xffffULL;
    }
    insn.fn(cpu, &insn);
    cpu->rip = cpu->next_rip;
    cpu->insn_count++;
}

/*
 * Whether the next block may start here without going back to
 * soft_cpu_run(): exactly the case in which the run loop would do nothing
 * but call us again (no shadow to consume, no request, NMI, injected
 * interrupt or halt, budget left, no single-step). One relaxed load of the
 * request word per block, as in the run loop.
 */
static inline bool block_chain_ok(const SoftCPU *cpu)
{
    if (unlikely(cpu->shadow | cpu->pending_nmi | cpu->has_pending_irq | cpu->exc_pending)) {
        return false;
    }
    if (unlikely(__atomic_load_n(&cpu->req, __ATOMIC_RELAXED))) {
        return false;
    }
    if (unlikely(cpu->mp_state != X86_MP_RUNNABLE)) {
        return false;
    }
    if (unlikely(cpu->insn_count >= cpu->insn_limit)) {
        return false;
    }
    return !(cpu->rflags & X86_RFLAGS_TF);
}

/*
 * Run decoded blocks one after another for as long as block_chain_ok()
 * allows, so that a short guest loop does not pay a return to the run
 * loop (and its checks) on every iteration. Every block is still looked
 * up through the fetch TLB and checked against its page's code word, so
 * flushes, mode changes and code writes take effect at the next block.
 */
void soft_run_block(SoftCPU *cpu)
{
    const X86Segment *cs = &cpu->segs[X86_SEG_CS];
    SoftBlock *prev = NULL;
    /*
     * Unbounded runs (the machine's) cannot reach the limit: skip its test
     * per instruction. The limit moves only in soft_cpu_run().
     */
    const bool limited = cpu->insn_limit != UINT64_MAX;

    for (;;) {
        uint64_t lin = cs->base + cpu->rip;
        uint64_t ipmask;
        unsigned ti, n;
        TLBEntry *e;
        uint64_t gpa;
        uint32_t *word;
        SoftBlock *b;
        const Insn *in;
        uint64_t fetch_gen;
        uint32_t epoch;
        void (*jit)(SoftCPU *cpu);

        if (!cpu->long64) {
            lin &= 0xffffffff;
        }
        if (prev) {
            BlockLink *l = &prev->link[prev->link[0].lin != lin];

            if (l->lin == lin && l->fetch_gen == cpu->fetch_gen && l->midx == cpu->midx) {
                b = l->to;
                if (likely(b->gpa == l->gpa && b->mode == cur_mode(cpu) &&
                           __atomic_load_n(b->word, __ATOMIC_ACQUIRE) == b->gen)) {
                    goto found;
                }
            }
        }
        ti = (lin >> 12) & (TLB_SIZE - 1);
        e = &cpu->tlb[cpu->midx][ACC_FETCH][ti];
        if (likely(e->tag == (lin & PAGE_MASK))) {
            gpa = cpu->tlbinfo[cpu->midx][ACC_FETCH][ti].gpa | (lin & 0xfff);
            fetch_gen = cpu->fetch_gen;
        } else {
            uint8_t *host;
            gpa = soft_translate(cpu, lin, ACC_FETCH, cpu->midx, &host);
            if (!host) {
                soft_run_one(cpu);
                return;
            }
            /* Link only translations read back from the TLB, next time. */
            prev = NULL;
            fetch_gen = 0;
        }

        b = &cpu->blocks[block_index(gpa)];
        if (!b->word || b->gpa != gpa || b->mode != cur_mode(cpu) ||
            __atomic_load_n(b->word, __ATOMIC_ACQUIRE) != b->gen) {
            word = soft_code_word(gpa, true);
            if (!word) {
                soft_run_one(cpu);
                return;
            }
            block_build(cpu, b, gpa, word);
            if (b->gpa != gpa) {
                soft_run_one(cpu);
                return;
            }
        }
        if (prev) {
            unsigned j = prev->link[0].lin == lin ? 0 :
                         prev->link[1].lin == lin ? 1 : prev->link_next;
            BlockLink *l = &prev->link[j];

            prev->link_next = !j;
            l->lin = lin;
            l->gpa = gpa;
            l->to = b;
            l->fetch_gen = fetch_gen;
            l->midx = cpu->midx;
        }
found:
        if (!cpu->long64) {
            if (cpu->rip + b->bytes - 1 > cs->limit) {
                soft_run_one(cpu);      /* let the decoder raise the #GP */
                return;
            }
            ipmask = cpu->code32 ? 0xffffffffULL : 0xffffULL;
        } else {
            ipmask = ~0ULL;
        }

        /* Pages that became code since we last looked lose their write entries. */
        epoch = __atomic_load_n(&soft_code_epoch, __ATOMIC_ACQUIRE);
        if (unlikely(epoch != cpu->code_epoch)) {
            cpu->code_epoch = epoch;
            soft_tlb_drop_write_entries(cpu);
        }

        /*
         * The mode (and so ipmask) cannot change inside a block without
         * exit_block: soft_cpu_update_mode() sets it.
         */
        jit = block_jit(cpu, b);
        if (jit) {
            jit(cpu);
            if (unlikely(cpu->exit_block)) {
                cpu->exit_block = 0;
                return;
            }
            if (unlikely(limited) && cpu->insn_count >= cpu->insn_limit) {
                return;
            }
            goto next_block;
        }
        in = b->insns;
        n = b->n;
        for (;;) {
            cpu->next_rip = (cpu->rip + in->len) & ipmask;
            in->fn(cpu, in);
            cpu->rip = cpu->next_rip;
            cpu->insn_count++;
            if (unlikely(cpu->exit_block)) {
                cpu->exit_block = 0;
                return;
            }
            if (unlikely(limited) && cpu->insn_count >= cpu->insn_limit) {
                return;
            }
            if (--n == 0) {
                break;
            }
            in++;
        }
next_block:
        if (!block_chain_ok(cpu)) {
            return;
        }
        prev = b;
    }
}
