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

struct SoftBlock {
    uint64_t gpa;           /* physical address of the first instruction */
    uint32_t gen;           /* code word of the page when decoded */
    uint8_t mode;
    uint8_t n;
    uint16_t bytes;
    uint32_t *word;         /* the page's code word */
    Insn insns[SOFT_BLOCK_INSNS];
};

SoftBlock *soft_blocks_new(void)
{
    SoftBlock *b = calloc(SOFT_BLOCKS, sizeof(SoftBlock));

    for (unsigned i = 0; b && i < SOFT_BLOCKS; i++) {
        b[i].gpa = BLOCK_KEY_NONE;
    }
    return b;
}

void soft_blocks_free(SoftBlock *b)
{
    free(b);
}

/* Forget every block (the RAM map changed under the physical addresses). */
void soft_blocks_flush(SoftBlock *b)
{
    for (unsigned i = 0; i < SOFT_BLOCKS; i++) {
        b[i].gpa = BLOCK_KEY_NONE;
    }
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

void soft_run_block(SoftCPU *cpu)
{
    const X86Segment *cs = &cpu->segs[X86_SEG_CS];
    uint64_t lin = cs->base + cpu->rip;
    unsigned ti;
    TLBEntry *e;
    uint64_t gpa;
    uint32_t *word;
    SoftBlock *b;
    uint32_t epoch;

    if (!cpu->long64) {
        lin &= 0xffffffff;
    }
    ti = (lin >> 12) & (TLB_SIZE - 1);
    e = &cpu->tlb[cpu->midx][ACC_FETCH][ti];
    if (likely(e->tag == (lin & PAGE_MASK))) {
        gpa = cpu->tlbinfo[cpu->midx][ACC_FETCH][ti].gpa | (lin & 0xfff);
    } else {
        uint8_t *host;
        gpa = soft_translate(cpu, lin, ACC_FETCH, cpu->midx, &host);
        if (!host) {
            soft_run_one(cpu);
            return;
        }
    }

    b = &cpu->blocks[block_index(gpa)];
    if (b->gpa != gpa || b->mode != cur_mode(cpu) ||
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
    if (!cpu->long64 && cpu->rip + b->bytes - 1 > cs->limit) {
        soft_run_one(cpu);          /* let the decoder raise the #GP */
        return;
    }

    /* Pages that became code since we last looked lose their write entries. */
    epoch = __atomic_load_n(&soft_code_epoch, __ATOMIC_ACQUIRE);
    if (unlikely(epoch != cpu->code_epoch)) {
        cpu->code_epoch = epoch;
        soft_tlb_drop_write_entries(cpu);
    }

    for (unsigned i = 0; i < b->n; i++) {
        const Insn *in = &b->insns[i];

        cpu->next_rip = cpu->rip + in->len;
        if (!cpu->long64) {
            cpu->next_rip &= cpu->code32 ? 0xffffffffULL : 0xffffULL;
        }
        in->fn(cpu, in);
        cpu->rip = cpu->next_rip;
        cpu->insn_count++;
        if (unlikely(cpu->exit_block)) {
            cpu->exit_block = 0;
            break;
        }
        if (unlikely(cpu->insn_count >= cpu->insn_limit)) {
            break;
        }
    }
}
