/*
 * String instructions, with REP. A REP instruction runs in page-sized
 * chunks and updates RCX/RSI/RDI after each, so a fault or an interrupt
 * between chunks leaves consistent registers and RIP at the instruction.
 */
#include "soft-internal.h"

/* How many iterations run before looking at requests from other threads. */
#define REP_CHECK   256

static inline uint64_t areg(const SoftCPU *cpu, const Insn *in, unsigned r)
{
    return cpu->regs[r] & size_mask(in->asize);
}

static inline void set_areg(SoftCPU *cpu, const Insn *in, unsigned r, uint64_t v)
{
    switch (in->asize) {
    case 2:
        cpu->regs[r] = (cpu->regs[r] & ~0xffffULL) | (v & 0xffff);
        break;
    case 4:
        cpu->regs[r] = v & 0xffffffff;
        break;
    default:
        cpu->regs[r] = v;
        break;
    }
}

static inline int64_t step(const SoftCPU *cpu, const Insn *in)
{
    return (cpu->rflags & X86_RFLAGS_DF) ? -(int64_t)in->osize : in->osize;
}

/*
 * After one iteration of a REP: false when the loop must stop here, with
 * RIP left at the instruction if it is to resume later.
 */
static bool rep_continue(SoftCPU *cpu, const Insn *in, uint64_t count, unsigned *n)
{
    if (count == 0) {
        return false;
    }
    if (++*n >= REP_CHECK) {
        *n = 0;
        /*
         * Every REP_CHECK iterations count as one instruction of the run's
         * budget, so a REP with a count of billions still ends a bounded
         * soft_cpu_run() on time (resuming where it stopped).
         */
        cpu->insn_count++;
        if (__atomic_load_n(&cpu->req, __ATOMIC_RELAXED) ||
            cpu->insn_count >= cpu->insn_limit) {
            cpu->next_rip = cpu->rip;
            cpu->exit_block = 1;
            return false;
        }
    }
    return true;
}

static uint64_t src_lin(SoftCPU *cpu, const Insn *in, unsigned size)
{
    return soft_seg_check(cpu, in->seg, areg(cpu, in, X86_RSI), size, false);
}

static uint64_t dst_lin(SoftCPU *cpu, const Insn *in, unsigned size, bool write)
{
    return soft_seg_check(cpu, X86_SEG_ES, areg(cpu, in, X86_RDI), size, write);
}

/*
 * Forward REP MOVS/STOS within one page pair: returns iterations done
 * (0 when the slow path must take this element).
 */
static uint64_t movs_chunk(SoftCPU *cpu, const Insn *in, uint64_t count, bool stos)
{
    unsigned size = in->osize;
    uint64_t s = 0, d, n, room;
    uint8_t *sp = NULL, *dp;

    if (cpu->rflags & X86_RFLAGS_DF) {
        return 0;
    }
    d = dst_lin(cpu, in, size, true);
    room = (PAGE_SIZE - (d & 0xfff)) / size;
    if (!stos) {
        s = src_lin(cpu, in, size);
        uint64_t r2 = (PAGE_SIZE - (s & 0xfff)) / size;
        room = room < r2 ? room : r2;
    }
    n = count < room ? count : room;
    if (n == 0) {
        return 0;
    }
    /* Segment limits for the whole chunk. */
    if (!cpu->long64) {
        soft_seg_check(cpu, X86_SEG_ES, areg(cpu, in, X86_RDI), n * size, true);
        if (!stos) {
            soft_seg_check(cpu, in->seg, areg(cpu, in, X86_RSI), n * size, false);
        }
        if (areg(cpu, in, X86_RDI) + n * size > size_mask(in->asize) ||
            (!stos && areg(cpu, in, X86_RSI) + n * size > size_mask(in->asize))) {
            return 0;       /* the offset wraps: element by element */
        }
    }
    if (!stos) {
        sp = soft_lin_ptr(cpu, s, size, ACC_READ, cpu->midx);
        if (!sp) {
            return 0;
        }
    }
    dp = soft_lin_ptr(cpu, d, size, ACC_WRITE, cpu->midx);
    if (!dp) {
        return 0;
    }
    if (stos) {
        uint64_t v = cpu->regs[X86_RAX];
        if (size == 1) {
            memset(dp, (uint8_t)v, n);
        } else {
            for (uint64_t i = 0; i < n; i++) {
                soft_host_store(dp + i * size, size, v);
            }
        }
    } else {
        uint64_t len = n * size;
        if (dp > sp && dp < sp + len) {
            /* Overlap forward: element order matters (pattern fills). */
            for (uint64_t i = 0; i < len; i += size) {
                uint64_t t;
                memcpy(&t, sp + i, size);
                memcpy(dp + i, &t, size);
                __asm__ volatile("" ::: "memory");
            }
        } else {
            memmove(dp, sp, len);
        }
        set_areg(cpu, in, X86_RSI, areg(cpu, in, X86_RSI) + len);
    }
    set_areg(cpu, in, X86_RDI, areg(cpu, in, X86_RDI) + n * size);
    return n;
}

void op_movs(SoftCPU *cpu, const Insn *in)
{
    unsigned size = in->osize, n = 0;
    uint64_t count;

    if (!in->rep) {
        uint64_t v = soft_read(cpu, in->seg, areg(cpu, in, X86_RSI), size);
        soft_write(cpu, X86_SEG_ES, areg(cpu, in, X86_RDI), size, v);
        set_areg(cpu, in, X86_RSI, areg(cpu, in, X86_RSI) + step(cpu, in));
        set_areg(cpu, in, X86_RDI, areg(cpu, in, X86_RDI) + step(cpu, in));
        return;
    }
    count = areg(cpu, in, X86_RCX);
    while (count) {
        uint64_t done = movs_chunk(cpu, in, count, false);
        if (done) {
            count -= done;
            set_areg(cpu, in, X86_RCX, count);
            n += done;
        } else {
            uint64_t v = soft_read(cpu, in->seg, areg(cpu, in, X86_RSI), size);
            soft_write(cpu, X86_SEG_ES, areg(cpu, in, X86_RDI), size, v);
            set_areg(cpu, in, X86_RSI, areg(cpu, in, X86_RSI) + step(cpu, in));
            set_areg(cpu, in, X86_RDI, areg(cpu, in, X86_RDI) + step(cpu, in));
            set_areg(cpu, in, X86_RCX, --count);
        }
        if (!rep_continue(cpu, in, count, &n)) {
            return;
        }
    }
}

void op_stos(SoftCPU *cpu, const Insn *in)
{
    unsigned size = in->osize, n = 0;
    uint64_t count;

    if (!in->rep) {
        soft_write(cpu, X86_SEG_ES, areg(cpu, in, X86_RDI), size, cpu->regs[X86_RAX]);
        set_areg(cpu, in, X86_RDI, areg(cpu, in, X86_RDI) + step(cpu, in));
        return;
    }
    count = areg(cpu, in, X86_RCX);
    while (count) {
        uint64_t done = movs_chunk(cpu, in, count, true);
        if (done) {
            count -= done;
            set_areg(cpu, in, X86_RCX, count);
            n += done;
        } else {
            soft_write(cpu, X86_SEG_ES, areg(cpu, in, X86_RDI), size, cpu->regs[X86_RAX]);
            set_areg(cpu, in, X86_RDI, areg(cpu, in, X86_RDI) + step(cpu, in));
            set_areg(cpu, in, X86_RCX, --count);
        }
        if (!rep_continue(cpu, in, count, &n)) {
            return;
        }
    }
}

void op_lods(SoftCPU *cpu, const Insn *in)
{
    unsigned size = in->osize, n = 0;
    uint64_t count = in->rep ? areg(cpu, in, X86_RCX) : 1;

    while (count) {
        uint64_t v = soft_read(cpu, in->seg, areg(cpu, in, X86_RSI), size);
        reg_write(cpu, in, X86_RAX, size, v);
        set_areg(cpu, in, X86_RSI, areg(cpu, in, X86_RSI) + step(cpu, in));
        count--;
        if (!in->rep) {
            return;
        }
        set_areg(cpu, in, X86_RCX, count);
        if (!rep_continue(cpu, in, count, &n)) {
            return;
        }
    }
}

/* CMPS and SCAS: REPE/REPNE stop on the compare result. */
static void cmp_string(SoftCPU *cpu, const Insn *in, bool scas)
{
    unsigned size = in->osize, n = 0;
    uint64_t count = in->rep ? areg(cpu, in, X86_RCX) : 1;

    while (count) {
        uint64_t a, b;
        if (scas) {
            a = reg_read(cpu, in, X86_RAX, size);
            b = soft_read(cpu, X86_SEG_ES, areg(cpu, in, X86_RDI), size);
        } else {
            a = soft_read(cpu, in->seg, areg(cpu, in, X86_RSI), size);
            b = soft_read(cpu, X86_SEG_ES, areg(cpu, in, X86_RDI), size);
            set_areg(cpu, in, X86_RSI, areg(cpu, in, X86_RSI) + step(cpu, in));
        }
        set_areg(cpu, in, X86_RDI, areg(cpu, in, X86_RDI) + step(cpu, in));
        soft_cc_set(cpu, CC_SUB, size, a - b, a, b);
        count--;
        if (!in->rep) {
            return;
        }
        set_areg(cpu, in, X86_RCX, count);
        if ((in->rep == 0xf3) != ((a & size_mask(size)) == (b & size_mask(size)))) {
            return;
        }
        if (!rep_continue(cpu, in, count, &n)) {
            return;
        }
    }
}

void op_cmps(SoftCPU *cpu, const Insn *in)
{
    cmp_string(cpu, in, false);
}

void op_scas(SoftCPU *cpu, const Insn *in)
{
    cmp_string(cpu, in, true);
}

static void io_check(SoftCPU *cpu)
{
    /* No TSS I/O bitmap: IOPL decides. */
    if (cpu_pe(cpu) && (cpu->cpl > cpu_iopl(cpu) || cpu_vm86(cpu))) {
        soft_gp0(cpu);
    }
}

void op_ins(SoftCPU *cpu, const Insn *in)
{
    unsigned size = in->osize > 4 ? 4 : in->osize, n = 0;
    uint64_t count = in->rep ? areg(cpu, in, X86_RCX) : 1;
    uint16_t port = cpu->regs[X86_RDX];

    io_check(cpu);
    while (count) {
        /* Check the destination before the port read has its side effect. */
        uint64_t d = dst_lin(cpu, in, size, true);
        soft_lin_ptr(cpu, d, size, ACC_WRITE, cpu->midx);
        uint32_t v = cpu->hooks->pio_read(cpu->opaque, port, size);
        soft_write(cpu, X86_SEG_ES, areg(cpu, in, X86_RDI), size, v);
        set_areg(cpu, in, X86_RDI, areg(cpu, in, X86_RDI) +
                 ((cpu->rflags & X86_RFLAGS_DF) ? -(int64_t)size : size));
        count--;
        if (!in->rep) {
            return;
        }
        set_areg(cpu, in, X86_RCX, count);
        if (!rep_continue(cpu, in, count, &n)) {
            return;
        }
    }
}

void op_outs(SoftCPU *cpu, const Insn *in)
{
    unsigned size = in->osize > 4 ? 4 : in->osize, n = 0;
    uint64_t count = in->rep ? areg(cpu, in, X86_RCX) : 1;
    uint16_t port = cpu->regs[X86_RDX];

    io_check(cpu);
    while (count) {
        uint64_t v = soft_read(cpu, in->seg, areg(cpu, in, X86_RSI), size);
        cpu->hooks->pio_write(cpu->opaque, port, v, size);
        set_areg(cpu, in, X86_RSI, areg(cpu, in, X86_RSI) +
                 ((cpu->rflags & X86_RFLAGS_DF) ? -(int64_t)size : size));
        count--;
        if (!in->rep) {
            return;
        }
        set_areg(cpu, in, X86_RCX, count);
        if (!rep_continue(cpu, in, count, &n)) {
            return;
        }
    }
}
