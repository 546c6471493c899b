/*
 * Fuzz target: random guest code on the software CPU (accel/soft,
 * include/accel/soft-cpu.h). Whatever the guest runs, the host process
 * must not crash, hang or write outside the guest RAM it handed over; the
 * guest gets its #UD, #GP, #PF... instead, and a double fault with nowhere
 * to go ends the run as a triple fault (SOFT_EXIT_SHUTDOWN).
 *
 * An input (docs/devel/fuzzing.md, "fuzz-soft-cpu"):
 *
 *   byte 0      start mode (% 4): real mode, flat 32-bit protected mode,
 *               64-bit ring 0, 64-bit ring 3
 *   byte 1      flags (FL_* below)
 *   bytes 2-5   what get_interrupt() answers, in turn
 *   byte 6      instructions before the VMM rewrites the code (SMC check)
 *   bytes 7-22  the 16 general registers, one byte each (reg_value())
 *   the rest    code, copied to CODE_GPA, where RIP starts; with FL_SMC
 *               the first half runs first and the second half replaces it
 *
 * Guest RAM is RAM_SIZE bytes inside a larger mapping whose first and last
 * GUARD bytes are PROT_NONE, so a host write just outside it faults. The
 * harness writes the mode's tables into it (IVT, or GDT, IDT, TSS and
 * identity-mapped page tables) and exception stubs that step over one byte
 * of the faulting instruction, so one input goes through many faults.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <glib.h>

#include "accel/soft-cpu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 1 when the last input ran at least one whole run without a triple fault. */
int fuzz_last_result;

#define RAM_SIZE        (4u << 20)
#define GUARD           (64u << 10)
/* A page inside RAM that is not RAM: accesses there go to the MMIO hooks. */
#define MMIO_HOLE       0x300000u

/* Guest-physical layout, the same in every mode. */
#define PML4_GPA        0x1000u
#define PDPT_GPA        0x2000u
#define PD_GPA          0x3000u
#define PT_GPA          0x4000u
#define GDT_GPA         0x5000u
#define IDT_GPA         0x6000u
#define TSS_GPA         0x7000u
#define STUB_GPA        0x8000u
#define CODE_GPA        0x10000u
#define CODE_MAX        0x2000u
#define USER_STACK      0x70000u
#define KERNEL_STACK    0x80000u
#define IST_STACK       0x90000u

/* GDT selectors. */
#define SEL_CODE64      0x08
#define SEL_DATA        0x10
#define SEL_UCODE32     0x18
#define SEL_UDATA       0x20
#define SEL_UCODE64     0x28
#define SEL_TSS         0x30    /* 16 bytes in long mode */
#define SEL_CODE32      0x40

enum { MODE_REAL, MODE_PROT32, MODE_LONG0, MODE_LONG3 };

#define FL_IF           0x01    /* start with interrupts enabled */
#define FL_RSP          0x02    /* RSP from the input, not the mode's stack */
#define FL_NMI          0x04    /* wake a halted CPU with an NMI, not an interrupt */
#define FL_SMC          0x08    /* run the VMM code-rewrite check too */
#define FL_CR4          0x10    /* SMEP, SMAP, OSXSAVE, FSGSBASE, UMIP on */
#define FL_DF           0x20
#define FL_AC           0x40    /* RFLAGS.AC and CR0.AM */
#define FL_IOPL3        0x80

#define HDR_SIZE        23
#define RUN_INSNS       10000
#define RUN_ROUNDS      4
#define SMC_INSNS       200

/* Ports the guest can use to make the VMM act while the CPU runs. */
#define PORT_KICK       0x501
#define PORT_DIRTY      0x502
#define PORT_TLB        0x503
#define PORT_INTR       0x504
#define PORT_DMA        0x505   /* the value lands in the code area, then invalidate */

typedef struct FuzzVM {
    uint8_t *ram;               /* RAM_SIZE bytes between guard areas */
    SoftCPU *cpu;
    uint8_t irq[4];
    unsigned irq_pos;
    bool irq_on;
    uint64_t tsc;
    uint64_t cr8;
    uint64_t mmio_reads, mmio_writes, pio_reads, pio_writes, dirty_marks;
} FuzzVM;

/* FUZZ_VERBOSE=1: how each run ended; 2: also RIP after each of the first TRACE_INSNS. */
static int verbose;
#define TRACE_INSNS     300

static void fail(const char *what, unsigned long long a, unsigned long long b)
{
    fprintf(stderr, "fuzz-soft-cpu: %s (0x%llx, 0x%llx)\n", what, a, b);
    abort();
}

/* ------------------------------------------------------------- guest RAM */

static uint8_t *ram_alloc(void)
{
    size_t total = RAM_SIZE + 2 * GUARD;
    uint8_t *base = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (base == MAP_FAILED) {
        fail("mmap", total, 0);
    }
    if (mprotect(base + GUARD, RAM_SIZE, PROT_READ | PROT_WRITE) < 0) {
        fail("mprotect", RAM_SIZE, 0);
    }
    return base + GUARD;
}

/* Zero pages without touching them: only what the harness writes faults in. */
static void ram_clear(uint8_t *ram)
{
    if (madvise(ram, RAM_SIZE, MADV_DONTNEED) < 0) {
        memset(ram, 0, RAM_SIZE);
    }
}

static void put16(uint8_t *ram, uint64_t gpa, uint16_t v)
{
    memcpy(ram + gpa, &v, 2);
}

static void put32(uint8_t *ram, uint64_t gpa, uint32_t v)
{
    memcpy(ram + gpa, &v, 4);
}

static void put64(uint8_t *ram, uint64_t gpa, uint64_t v)
{
    memcpy(ram + gpa, &v, 8);
}

/* ----------------------------------------------------------------- hooks */

static uint8_t *vm_ram_page(void *opaque, uint64_t gpa)
{
    FuzzVM *vm = opaque;

    if (gpa & 0xfff) {
        fail("ram_page: gpa not page aligned", gpa, 0);
    }
    if (gpa >= RAM_SIZE || gpa == MMIO_HOLE) {
        return NULL;
    }
    return vm->ram + gpa;
}

static void vm_mark_dirty(void *opaque, uint64_t gpa_page)
{
    FuzzVM *vm = opaque;

    if ((gpa_page & 0xfff) || gpa_page >= RAM_SIZE || gpa_page == MMIO_HOLE) {
        fail("mark_dirty: not a RAM page", gpa_page, 0);
    }
    vm->dirty_marks++;
}

static void check_size(const char *what, unsigned size, bool io)
{
    if (size != 1 && size != 2 && size != 4 && (io || size != 8)) {
        fail(what, size, 0);
    }
}

static uint64_t vm_mmio_read(void *opaque, uint64_t gpa, unsigned size)
{
    FuzzVM *vm = opaque;

    check_size("mmio_read: bad size", size, false);
    vm->mmio_reads++;
    return 0x5a5a5a5a5a5a5a5aULL & (size == 8 ? ~0ULL : (1ULL << (8 * size)) - 1);
}

static void vm_mmio_write(void *opaque, uint64_t gpa, uint64_t value, unsigned size)
{
    FuzzVM *vm = opaque;

    check_size("mmio_write: bad size", size, false);
    vm->mmio_writes++;
}

static uint32_t vm_pio_read(void *opaque, uint16_t port, unsigned size)
{
    FuzzVM *vm = opaque;

    check_size("pio_read: bad size", size, true);
    vm->pio_reads++;
    return 0xa5a5a5a5u & (size == 4 ? ~0u : (1u << (8 * size)) - 1);
}

static void vm_pio_write(void *opaque, uint16_t port, uint32_t value, unsigned size)
{
    FuzzVM *vm = opaque;

    check_size("pio_write: bad size", size, true);
    vm->pio_writes++;
    switch (port) {
    case PORT_KICK:
        soft_cpu_kick(vm->cpu);
        break;
    case PORT_DIRTY:
        soft_cpu_flush_dirty_tracking(vm->cpu);
        break;
    case PORT_TLB:
        soft_cpu_flush_tlb(vm->cpu);
        break;
    case PORT_INTR:
        soft_cpu_interrupt_changed(vm->cpu);
        break;
    case PORT_DMA: {
        /* A device writing guest RAM (the code area) under the running CPU. */
        uint64_t gpa = CODE_GPA + (value >> 16) % (CODE_MAX - 2);
        put16(vm->ram, gpa, (uint16_t)value);
        soft_cpu_invalidate_code(vm->cpu, gpa, 2);
        break;
    }
    }
}

static int vm_get_interrupt(void *opaque)
{
    FuzzVM *vm = opaque;
    uint8_t v;

    if (!vm->irq_on) {
        return -1;
    }
    v = vm->irq[vm->irq_pos++ % 4];
    if (v < 0x10) {
        return -1;
    }
    /* 0x10-0x1f: an external interrupt on an exception vector, as a bad PIC setup gives. */
    return v < 0x20 ? v - 0x10 : v;
}

static void vm_ack_interrupt(void *opaque, int vector)
{
    if (vector < 0 || vector > 255) {
        fail("ack_interrupt: bad vector", (unsigned)vector, 0);
    }
}

static bool vm_rdmsr(void *opaque, uint32_t msr, uint64_t *value)
{
    return false;
}

static bool vm_wrmsr(void *opaque, uint32_t msr, uint64_t value)
{
    return false;
}

static uint64_t vm_read_cr8(void *opaque)
{
    FuzzVM *vm = opaque;

    return vm->cr8;
}

static void vm_write_cr8(void *opaque, uint64_t value)
{
    FuzzVM *vm = opaque;

    vm->cr8 = value;
}

/* Deterministic, so that two CPUs given the same state read the same TSC. */
static uint64_t vm_read_tsc(void *opaque)
{
    FuzzVM *vm = opaque;

    vm->tsc += 1000;
    return vm->tsc;
}

static const SoftCPUHooks fuzz_hooks = {
    .ram_page = vm_ram_page,
    .mark_dirty = vm_mark_dirty,
    .mmio_read = vm_mmio_read,
    .mmio_write = vm_mmio_write,
    .pio_read = vm_pio_read,
    .pio_write = vm_pio_write,
    .get_interrupt = vm_get_interrupt,
    .ack_interrupt = vm_ack_interrupt,
    .rdmsr = vm_rdmsr,
    .wrmsr = vm_wrmsr,
    .read_cr8 = vm_read_cr8,
    .write_cr8 = vm_write_cr8,
    .read_tsc = vm_read_tsc,
};

/* ------------------------------------------------- the guest's world */

/*
 * Exception stubs: step the return address over one byte, so that random
 * code goes on past a fault instead of faulting on the same byte forever
 * (each pass still costs two counted instructions: the run stays bounded).
 */
static const uint8_t stub64_exc[] = { 0x48, 0xff, 0x04, 0x24, 0x48, 0xcf };
static const uint8_t stub64_exc_err[] = {
    0x48, 0x83, 0xc4, 0x08, 0x48, 0xff, 0x04, 0x24, 0x48, 0xcf,
};
static const uint8_t stub64_irq[] = { 0x48, 0xcf };
static const uint8_t stub64_syscall[] = { 0x48, 0x0f, 0x07 };      /* sysretq */
static const uint8_t stub32_exc[] = { 0xff, 0x04, 0x24, 0xcf };
static const uint8_t stub32_exc_err[] = { 0x83, 0xc4, 0x04, 0xff, 0x04, 0x24, 0xcf };
static const uint8_t stub32_irq[] = { 0xcf };
/* push bp; mov bp, sp; inc word [bp+2]; pop bp; iret */
static const uint8_t stub16_exc[] = { 0x55, 0x89, 0xe5, 0xff, 0x46, 0x02, 0x5d, 0xcf };
static const uint8_t stub16_irq[] = { 0xcf };

/* Offsets of the stubs in the stub page. */
enum { STUB_EXC = 0x00, STUB_EXC_ERR = 0x20, STUB_IRQ = 0x40, STUB_SYSCALL = 0x60 };

static bool exc_has_error(int v)
{
    return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30;
}

static uint64_t stub_for(int v)
{
    /* An NMI, like an interrupt, comes between instructions: nothing to step over. */
    if (v >= 32 || v == 2) {
        return STUB_GPA + STUB_IRQ;
    }
    return STUB_GPA + (exc_has_error(v) ? STUB_EXC_ERR : STUB_EXC);
}

static void seg_set(X86Segment *s, uint16_t sel, uint64_t base, uint32_t limit, uint8_t type,
                    uint8_t dpl, bool l, bool db, bool g)
{
    memset(s, 0, sizeof(*s));
    s->selector = sel;
    s->base = base;
    s->limit = limit;
    s->type = type;
    s->s = 1;
    s->dpl = dpl;
    s->present = 1;
    s->l = l;
    s->db = db;
    s->g = g;
}

static uint64_t gdt_entry(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags)
{
    return (limit & 0xffffULL) | ((uint64_t)(base & 0xffffff) << 16) |
           ((uint64_t)access << 40) | ((uint64_t)((limit >> 16) & 0xf) << 48) |
           ((uint64_t)(flags & 0xf) << 52) | ((uint64_t)(base >> 24) << 56);
}

static void build_gdt(uint8_t *ram)
{
    put64(ram, GDT_GPA + SEL_CODE64, gdt_entry(0, 0xfffff, 0x9a, 0xa));
    put64(ram, GDT_GPA + SEL_DATA, gdt_entry(0, 0xfffff, 0x92, 0xc));
    put64(ram, GDT_GPA + SEL_UCODE32, gdt_entry(0, 0xfffff, 0xfa, 0xc));
    put64(ram, GDT_GPA + SEL_UDATA, gdt_entry(0, 0xfffff, 0xf2, 0xc));
    put64(ram, GDT_GPA + SEL_UCODE64, gdt_entry(0, 0xfffff, 0xfa, 0xa));
    /* Busy TSS, as TR holds it; in long mode the next 8 bytes (0) are its base's top half. */
    put64(ram, GDT_GPA + SEL_TSS, gdt_entry(TSS_GPA, 0x67, 0x8b, 0));
    put64(ram, GDT_GPA + SEL_CODE32, gdt_entry(0, 0xfffff, 0x9a, 0xc));
}

/*
 * Identity map of the low 4 GiB, again at the top of the address space:
 * 4 KiB pages below 2 MiB, 2 MiB pages up to 1 GiB, 1 GiB pages after;
 * past RAM_SIZE, everything is MMIO. The page tables are read-only even
 * to ring 0 (CR0.WP), so the guest cannot leave stale TLB entries behind
 * that would tell the two CPUs of the SMC check apart. Below CODE_GPA
 * pages are supervisor-only; above, user pages when the guest starts in
 * ring 3 (so SMEP in ring 0 does not stop every fetch).
 */
static void build_page_tables(uint8_t *ram, bool user)
{
    uint64_t large = user ? 0x87 : 0x83;

    put64(ram, PML4_GPA, PDPT_GPA | 7);
    put64(ram, PML4_GPA + 511 * 8, PDPT_GPA | 7);
    put64(ram, PDPT_GPA, PD_GPA | 7);
    for (uint64_t i = 1; i < 4; i++) {
        put64(ram, PDPT_GPA + 8 * i, (i << 30) | large);
    }
    put64(ram, PDPT_GPA + 8 * 511, large);
    put64(ram, PD_GPA, PT_GPA | 7);
    for (uint64_t i = 1; i < 512; i++) {
        put64(ram, PD_GPA + 8 * i, (i << 21) | large);
    }
    for (uint64_t i = 0; i < 512; i++) {
        uint64_t gpa = i << 12;
        uint64_t flags = user ? 7 : 3;

        if (gpa < CODE_GPA) {
            flags = 3;
        }
        if (gpa >= PML4_GPA && gpa < GDT_GPA) {
            flags = 1;
        }
        put64(ram, PT_GPA + 8 * i, gpa | flags);
    }
}

static void build_idt64(uint8_t *ram)
{
    for (int v = 0; v < 256; v++) {
        uint64_t h = stub_for(v);
        /* int3, into and int 0x80 may come from ring 3. */
        uint64_t dpl = (v == 3 || v == 4 || v == 0x80) ? 3 : 0;
        /* No #DF handler: a double fault becomes a triple fault, ending the run. */
        uint64_t present = v == 8 ? 0 : 1;
        uint64_t ist = v == 2 ? 1 : 0;
        uint64_t lo = (h & 0xffff) | ((uint64_t)SEL_CODE64 << 16) | (ist << 32) |
                      ((0x0eULL | (dpl << 5) | (present << 7)) << 40) |
                      (((h >> 16) & 0xffff) << 48);

        put64(ram, IDT_GPA + 16 * v, lo);
        put64(ram, IDT_GPA + 16 * v + 8, h >> 32);
    }
}

static void build_idt32(uint8_t *ram)
{
    for (int v = 0; v < 256; v++) {
        uint64_t h = stub_for(v);
        uint64_t dpl = (v == 3 || v == 4 || v == 0x80) ? 3 : 0;
        uint64_t present = v == 8 ? 0 : 1;
        uint64_t gate = (h & 0xffff) | ((uint64_t)SEL_CODE32 << 16) |
                        ((0x0eULL | (dpl << 5) | (present << 7)) << 40) |
                        (((h >> 16) & 0xffff) << 48);

        put64(ram, IDT_GPA + 8 * v, gate);
    }
}

/* The value of a register from one input byte: an interesting value, nudged. */
static uint64_t reg_value(uint8_t b)
{
    static const uint64_t values[16] = {
        0, 1, 0x7f, 0x80, 0xffff, CODE_GPA, 0x7fffffff, 0x80000000, 0xffffffff, ~0ULL,
        0x8000000000000000ULL, 0x00007ffffffffff8ULL, RAM_SIZE - 8, MMIO_HOLE,
        0xfee00000, 0x20000,
    };

    return values[b & 15] + (uint64_t)(b >> 4) - 8;
}

static void fpu_reset(X86CPUState *st)
{
    st->xsave[0] = 0x7f;        /* FCW 0x037f */
    st->xsave[1] = 0x03;
    *x86_cpu_state_mxcsr(st) = 0x1f80;
    st->xsave_len = X86_FXSAVE_SIZE;
}

/* Write the mode's tables into @ram and the matching start state into @st. */
static void setup_mode(uint8_t *ram, X86CPUState *st, int mode, uint8_t flags,
                       const uint8_t *hdr)
{
    memset(st, 0, sizeof(*st));
    fpu_reset(st);
    for (int i = 0; i < X86_NR_GPRS; i++) {
        st->regs[i] = reg_value(hdr[7 + i]);
    }
    st->rip = CODE_GPA;
    st->rflags = X86_RFLAGS_FIXED | (flags & FL_IF ? X86_RFLAGS_IF : 0) |
                 (flags & FL_DF ? X86_RFLAGS_DF : 0) | (flags & FL_AC ? X86_RFLAGS_AC : 0) |
                 (flags & FL_IOPL3 ? X86_RFLAGS_IOPL : 0);
    st->cr0 = X86_CR0_ET | X86_CR0_NE | (flags & FL_AC ? X86_CR0_AM : 0);
    st->xcr0 = 1;
    st->pat = 0x0007040600070406ULL;
    st->apic_base = X86_APIC_BASE_DEFAULT | X86_APIC_BASE_ENABLE | X86_APIC_BASE_BSP;
    st->dr6 = 0xffff0ff0;
    st->dr7 = 0x400;
    st->mp_state = X86_MP_RUNNABLE;

    /* LDT: null; TR: the busy TSS of the GDT. */
    st->segs[X86_SEG_LDT].type = 2;
    st->segs[X86_SEG_LDT].present = 1;
    st->segs[X86_SEG_LDT].unusable = 1;
    st->segs[X86_SEG_TR].selector = SEL_TSS;
    st->segs[X86_SEG_TR].base = TSS_GPA;
    st->segs[X86_SEG_TR].limit = 0x67;
    st->segs[X86_SEG_TR].type = 0xb;
    st->segs[X86_SEG_TR].present = 1;

    if (mode == MODE_REAL) {
        /* IVT at 0: exceptions step over a byte, interrupts just return. */
        memcpy(ram + STUB_GPA + STUB_EXC, stub16_exc, sizeof(stub16_exc));
        memcpy(ram + STUB_GPA + STUB_IRQ, stub16_irq, sizeof(stub16_irq));
        for (int v = 0; v < 256; v++) {
            uint32_t h = v < 32 ? STUB_GPA + STUB_EXC : STUB_GPA + STUB_IRQ;
            put32(ram, 4 * v, ((h >> 4) << 16) | (h & 0xf));
        }
        seg_set(&st->segs[X86_SEG_CS], CODE_GPA >> 4, CODE_GPA, 0xffff, 0xb, 0, false,
                false, false);
        seg_set(&st->segs[X86_SEG_SS], 0x2000, 0x20000, 0xffff, 0x3, 0, false, false, false);
        for (int s = 0; s < 6; s++) {
            if (s != X86_SEG_CS && s != X86_SEG_SS) {
                seg_set(&st->segs[s], 0, 0, 0xffff, 0x3, 0, false, false, false);
            }
        }
        st->rip = 0;
        st->regs[X86_RSP] = 0xfffe;
        st->idt.limit = 0x3ff;
        st->gdt.limit = 0xffff;
        st->rflags &= ~(X86_RFLAGS_AC | X86_RFLAGS_IOPL);
        st->cr0 &= ~X86_CR0_AM;
    } else if (mode == MODE_PROT32) {
        memcpy(ram + STUB_GPA + STUB_EXC, stub32_exc, sizeof(stub32_exc));
        memcpy(ram + STUB_GPA + STUB_EXC_ERR, stub32_exc_err, sizeof(stub32_exc_err));
        memcpy(ram + STUB_GPA + STUB_IRQ, stub32_irq, sizeof(stub32_irq));
        build_gdt(ram);
        build_idt32(ram);
        put32(ram, TSS_GPA + 4, KERNEL_STACK);          /* ESP0 */
        put32(ram, TSS_GPA + 8, SEL_DATA);              /* SS0 */
        put16(ram, TSS_GPA + 0x66, 0x68);               /* no I/O bitmap */
        seg_set(&st->segs[X86_SEG_CS], SEL_CODE32, 0, 0xffffffff, 0xb, 0, false, true, true);
        for (int s = 0; s < 6; s++) {
            if (s != X86_SEG_CS) {
                seg_set(&st->segs[s], SEL_DATA, 0, 0xffffffff, 0x3, 0, false, true, true);
            }
        }
        st->regs[X86_RSP] = KERNEL_STACK;
        st->gdt.base = GDT_GPA;
        st->gdt.limit = 0x4f;
        st->idt.base = IDT_GPA;
        st->idt.limit = 0x7ff;
        st->cr0 |= X86_CR0_PE;
    } else {
        bool user = mode == MODE_LONG3;

        memcpy(ram + STUB_GPA + STUB_EXC, stub64_exc, sizeof(stub64_exc));
        memcpy(ram + STUB_GPA + STUB_EXC_ERR, stub64_exc_err, sizeof(stub64_exc_err));
        memcpy(ram + STUB_GPA + STUB_IRQ, stub64_irq, sizeof(stub64_irq));
        memcpy(ram + STUB_GPA + STUB_SYSCALL, stub64_syscall, sizeof(stub64_syscall));
        build_gdt(ram);
        build_idt64(ram);
        build_page_tables(ram, user);
        put64(ram, TSS_GPA + 4, KERNEL_STACK);          /* RSP0 */
        put64(ram, TSS_GPA + 0x24, IST_STACK);          /* IST1, for NMIs */
        put16(ram, TSS_GPA + 0x66, 0x68);
        if (user) {
            seg_set(&st->segs[X86_SEG_CS], SEL_UCODE64 | 3, 0, 0xffffffff, 0xb, 3, true,
                    false, true);
        } else {
            seg_set(&st->segs[X86_SEG_CS], SEL_CODE64, 0, 0xffffffff, 0xb, 0, true, false,
                    true);
        }
        for (int s = 0; s < 6; s++) {
            if (s != X86_SEG_CS) {
                seg_set(&st->segs[s], user ? SEL_UDATA | 3 : SEL_DATA, 0, 0xffffffff, 0x3,
                        user ? 3 : 0, false, true, true);
            }
        }
        st->regs[X86_RSP] = user ? USER_STACK : KERNEL_STACK;
        st->gdt.base = GDT_GPA;
        st->gdt.limit = 0x4f;
        st->idt.base = IDT_GPA;
        st->idt.limit = 0xfff;
        st->cr0 |= X86_CR0_PE | X86_CR0_PG | X86_CR0_WP | X86_CR0_MP;
        st->cr3 = PML4_GPA;
        st->cr4 = X86_CR4_PAE | X86_CR4_PGE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;
        if (flags & FL_CR4) {
            st->cr4 |= X86_CR4_SMEP | X86_CR4_SMAP | X86_CR4_OSXSAVE | X86_CR4_FSGSBASE |
                       X86_CR4_UMIP;
        }
        st->efer = X86_EFER_LME | X86_EFER_LMA | X86_EFER_SCE | X86_EFER_NXE;
        st->star = ((uint64_t)SEL_UCODE32 << 48) | ((uint64_t)SEL_CODE64 << 32);
        st->lstar = STUB_GPA + STUB_SYSCALL;
        st->sfmask = X86_RFLAGS_IF | X86_RFLAGS_DF | X86_RFLAGS_TF | X86_RFLAGS_AC;
    }
    if (flags & FL_RSP) {
        st->regs[X86_RSP] = reg_value(hdr[7 + X86_RSP]);
    }
}

/* ------------------------------------------------------------ invariants */

static bool canonical(uint64_t a)
{
    return (uint64_t)((int64_t)(a << 16) >> 16) == a;
}

/* What must hold at every instruction boundary, whatever the guest did. */
static void check_state(const X86CPUState *st)
{
    const uint64_t rflags_reserved = (1ULL << 3) | (1ULL << 5) | (1ULL << 15) |
                                     ~((1ULL << 22) - 1);
    const X86Segment *cs = &st->segs[X86_SEG_CS];

    if (!(st->rflags & X86_RFLAGS_FIXED) || (st->rflags & rflags_reserved)) {
        fail("RFLAGS has a reserved bit wrong", st->rflags, st->rip);
    }
    if (st->efer & X86_EFER_LMA) {
        if (!(st->cr0 & X86_CR0_PG) || !(st->cr0 & X86_CR0_PE) || !(st->cr4 & X86_CR4_PAE)) {
            fail("EFER.LMA without CR0.PG, CR0.PE and CR4.PAE", st->efer, st->cr0);
        }
        if (cs->l && !canonical(st->rip)) {
            fail("non-canonical RIP in 64-bit mode", st->rip, st->cr0);
        }
    }
    if ((st->cr0 & X86_CR0_PG) && !(st->cr0 & X86_CR0_PE)) {
        fail("CR0.PG without CR0.PE", st->cr0, st->rip);
    }
    if (!((st->efer & X86_EFER_LMA) && cs->l)) {
        /* Real mode too: a CS cached with D=1 (left from protected mode) runs 32-bit code. */
        uint64_t max = cs->db && !(st->rflags & X86_RFLAGS_VM) ? 0xffffffffULL : 0xffffULL;

        if (st->rip > max) {
            fail("RIP past the code size of the mode", st->rip, max);
        }
    }
    if (st->xsave_len < X86_FXSAVE_SIZE || st->xsave_len > X86_XSAVE_MAX) {
        fail("xsave_len out of range", st->xsave_len, 0);
    }
}

/* ---------------------------------------------------------------- runs */

/*
 * soft_cpu_run() must return within its budget: a delivered exception
 * counts as an instruction, so even a fault handler that faults on its own
 * first byte (corpus/soft-cpu/soft-cpu-delivery-loop-real-mode) ends the
 * run. A watchdog thread kicks a run that takes longer than WATCHDOG_MS
 * (far beyond what 10000 instructions need, even under ASan on a loaded
 * machine) and the input fails; FUZZ_SOFT_CPU_LENIENT=1 only reports it,
 * to hunt for other bugs past a known one.
 */
#define WATCHDOG_MS     5000

static struct {
    GMutex lock;
    GCond cond;
    SoftCPU *cpu;               /* the CPU in soft_cpu_run(), or NULL */
    gint64 deadline;
    bool fired;
} wd;

static bool strict;

static gpointer watchdog_thread(gpointer arg)
{
    g_mutex_lock(&wd.lock);
    for (;;) {
        if (!wd.cpu) {
            g_cond_wait(&wd.cond, &wd.lock);
        } else if (g_get_monotonic_time() >= wd.deadline) {
            soft_cpu_kick(wd.cpu);
            wd.fired = true;
            wd.cpu = NULL;
        } else {
            g_cond_wait_until(&wd.cond, &wd.lock, wd.deadline);
        }
    }
    return NULL;
}

/* soft_cpu_run(), kicked by the watchdog if it ignores @max_insns; *late set if so. */
static SoftCPUExit run_bounded(SoftCPU *cpu, uint64_t max_insns, bool *late)
{
    SoftCPUExit e;
    bool fired;

    g_mutex_lock(&wd.lock);
    wd.cpu = cpu;
    wd.fired = false;
    wd.deadline = g_get_monotonic_time() + WATCHDOG_MS * 1000;
    g_cond_signal(&wd.cond);
    g_mutex_unlock(&wd.lock);
    e = soft_cpu_run(cpu, max_insns);
    g_mutex_lock(&wd.lock);
    wd.cpu = NULL;
    fired = wd.fired;
    g_mutex_unlock(&wd.lock);
    if (fired) {
        if (strict) {
            fail("soft_cpu_run() went past its instruction budget (kicked after "
                 G_STRINGIFY(WATCHDOG_MS) " ms)", soft_cpu_insn_count(cpu), max_insns);
        }
        if (verbose) {
            fprintf(stderr, "soft-cpu: watchdog kicked a run of %llu instructions\n",
                    (unsigned long long)max_insns);
        }
        *late = true;
    }
    return e;
}

static void vm_init(FuzzVM *vm, uint8_t *ram, const uint8_t *hdr)
{
    memset(vm, 0, sizeof(*vm));
    vm->ram = ram;
    memcpy(vm->irq, hdr + 2, 4);
}

static const char *exit_name(SoftCPUExit e)
{
    switch (e) {
    case SOFT_EXIT_KICKED: return "kicked";
    case SOFT_EXIT_HALTED: return "halted";
    case SOFT_EXIT_SHUTDOWN: return "shutdown";
    case SOFT_EXIT_LIMIT: return "limit";
    case SOFT_EXIT_INTERNAL_ERROR: return "internal error";
    }
    return "?";
}

/* Single steps, for reading a reproducer; the main run then goes on from there. */
static void trace(SoftCPU *cpu, X86CPUState *st)
{
    bool late = false;

    for (int i = 0; i < TRACE_INSNS; i++) {
        SoftCPUExit e = run_bounded(cpu, 1, &late);

        soft_cpu_get_state(cpu, st);
        fprintf(stderr, "soft-cpu: trace: %s, rip 0x%llx rsp 0x%llx rax 0x%llx cr2 0x%llx\n",
                exit_name(e), (unsigned long long)st->rip,
                (unsigned long long)st->regs[X86_RSP], (unsigned long long)st->regs[X86_RAX],
                (unsigned long long)st->cr2);
        if (e != SOFT_EXIT_LIMIT || late) {
            return;
        }
    }
}

/* Run the input's code, waking the CPU a few times when it halts. */
static bool run_main(uint8_t *ram, const uint8_t *hdr, const uint8_t *code, size_t code_len)
{
    int mode = hdr[0] & 3;
    uint8_t flags = hdr[1];
    FuzzVM vm;
    X86CPUState st;
    bool whole_run = false, late = false;

    vm_init(&vm, ram, hdr);
    ram_clear(ram);
    setup_mode(ram, &st, mode, flags, hdr);
    memcpy(ram + CODE_GPA, code, code_len);
    vm.cpu = soft_cpu_new(&fuzz_hooks, &vm, 0, 1);
    soft_cpu_set_state(vm.cpu, &st);
    vm.irq_on = true;
    if (flags & FL_IF) {
        soft_cpu_interrupt_changed(vm.cpu);
    }
    if (verbose >= 2) {
        trace(vm.cpu, &st);
    }
    for (int round = 0; round < RUN_ROUNDS; round++) {
        SoftCPUExit e = run_bounded(vm.cpu, RUN_INSNS, &late);

        soft_cpu_get_state(vm.cpu, &st);
        if (verbose) {
            fprintf(stderr, "soft-cpu: mode %d round %d: %s at rip 0x%llx, %llu insns\n",
                    mode, round, exit_name(e), (unsigned long long)st.rip,
                    (unsigned long long)soft_cpu_insn_count(vm.cpu));
        }
        if (e == SOFT_EXIT_SHUTDOWN || e == SOFT_EXIT_INTERNAL_ERROR || late) {
            break;
        }
        check_state(&st);
        whole_run = true;
        if (e == SOFT_EXIT_LIMIT) {
            break;
        }
        if (e == SOFT_EXIT_HALTED) {
            if (flags & FL_NMI) {
                soft_cpu_nmi(vm.cpu);
            } else {
                soft_cpu_interrupt_changed(vm.cpu);
            }
        }
    }
    soft_cpu_free(vm.cpu);
    return whole_run;
}

static bool state_equal(const X86CPUState *a, const X86CPUState *b, const char **what)
{
#define CMP(field) if (memcmp(&a->field, &b->field, sizeof(a->field))) { *what = #field; \
                                                                           return false; }
    CMP(regs); CMP(rip); CMP(rflags); CMP(segs); CMP(gdt); CMP(idt);
    CMP(cr0); CMP(cr2); CMP(cr3); CMP(cr4); CMP(cr8); CMP(efer); CMP(xcr0);
    CMP(dr); CMP(dr6); CMP(dr7); CMP(tsc); CMP(tsc_adjust); CMP(mtrr_def_type);
    CMP(mtrr_var); CMP(mtrr_fixed); CMP(xsave); CMP(exception_pending);
    CMP(exception_vector); CMP(exception_error); CMP(nmi_pending); CMP(nmi_masked);
    CMP(interrupt_shadow); CMP(mp_state);
#undef CMP
    return true;
}

/*
 * The VMM rewrites code under a CPU that has already run it: after
 * soft_cpu_invalidate_code() the CPU must run the new bytes. A fresh CPU
 * given the same state and RAM is the reference; any difference in state,
 * RAM or exit means the first one ran something stale.
 */
static void run_smc(uint8_t *ram_a, uint8_t *ram_b, const uint8_t *hdr,
                    const uint8_t *old_code, const uint8_t *new_code, size_t len)
{
    int mode = hdr[0] & 3;
    FuzzVM a, b;
    X86CPUState st, sa, sb;
    SoftCPUExit ea, eb;
    uint64_t na, nb;
    const char *what;
    bool late = false;

    vm_init(&a, ram_a, hdr);
    ram_clear(ram_a);
    setup_mode(ram_a, &st, mode, hdr[1], hdr);
    memcpy(ram_a + CODE_GPA, old_code, len);
    a.cpu = soft_cpu_new(&fuzz_hooks, &a, 0, 1);
    soft_cpu_set_state(a.cpu, &st);
    if (run_bounded(a.cpu, 1 + hdr[6] % 64, &late) == SOFT_EXIT_SHUTDOWN || late) {
        soft_cpu_free(a.cpu);
        return;
    }

    /* The VMM's write, the same in both RAMs. */
    memcpy(ram_a + CODE_GPA, new_code, len);
    soft_cpu_invalidate_code(a.cpu, CODE_GPA, len);
    memcpy(ram_b, ram_a, RAM_SIZE);

    soft_cpu_get_state(a.cpu, &st);
    vm_init(&b, ram_b, hdr);
    b.tsc = st.tsc - st.tsc_adjust;     /* b's counter goes on from a's; offsets travel */
    b.cr8 = a.cr8;
    b.cpu = soft_cpu_new(&fuzz_hooks, &b, 0, 1);
    soft_cpu_set_state(b.cpu, &st);

    na = soft_cpu_insn_count(a.cpu);
    nb = soft_cpu_insn_count(b.cpu);
    ea = run_bounded(a.cpu, SMC_INSNS, &late);
    eb = run_bounded(b.cpu, SMC_INSNS, &late);
    na = soft_cpu_insn_count(a.cpu) - na;
    nb = soft_cpu_insn_count(b.cpu) - nb;
    soft_cpu_get_state(a.cpu, &sa);
    soft_cpu_get_state(b.cpu, &sb);
    if (verbose) {
        fprintf(stderr, "soft-cpu: smc from rip 0x%llx: %s after %llu insns, "
                "fresh CPU %s after %llu\n", (unsigned long long)st.rip, exit_name(ea),
                (unsigned long long)na, exit_name(eb), (unsigned long long)nb);
    }
    if (late) {
        /* A kick landed at some point of one run only: nothing to compare. */
        soft_cpu_free(a.cpu);
        soft_cpu_free(b.cpu);
        return;
    }
    if (ea != eb || na != nb) {
        fail("SMC: the CPU that ran the old code exits differently from a fresh one", ea, eb);
    }
    if (ea != SOFT_EXIT_SHUTDOWN && !state_equal(&sa, &sb, &what)) {
        fprintf(stderr, "fuzz-soft-cpu: SMC: %s differs (rip 0x%llx vs 0x%llx)\n", what,
                (unsigned long long)sa.rip, (unsigned long long)sb.rip);
        abort();
    }
    if (memcmp(ram_a, ram_b, RAM_SIZE)) {
        fail("SMC: guest RAM differs from a fresh CPU's", sa.rip, sb.rip);
    }
    soft_cpu_free(a.cpu);
    soft_cpu_free(b.cpu);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *ram_a, *ram_b;
    uint8_t hdr[HDR_SIZE] = { 0 };
    const uint8_t *code = data + (size < HDR_SIZE ? size : HDR_SIZE);
    size_t code_len = size > HDR_SIZE ? size - HDR_SIZE : 0;

    if (!ram_a) {
        ram_a = ram_alloc();
        ram_b = ram_alloc();
        verbose = getenv("FUZZ_VERBOSE") ? atoi(getenv("FUZZ_VERBOSE")) : 0;
        strict = !(getenv("FUZZ_SOFT_CPU_LENIENT") && atoi(getenv("FUZZ_SOFT_CPU_LENIENT")));
        g_thread_unref(g_thread_new("fuzz/watchdog", watchdog_thread, NULL));
    }
    memcpy(hdr, data, size < HDR_SIZE ? size : HDR_SIZE);
    if (code_len > 2 * CODE_MAX) {
        code_len = 2 * CODE_MAX;
    }
    if (hdr[1] & FL_SMC) {
        size_t half = code_len / 2;

        fuzz_last_result = run_main(ram_a, hdr, code, half);
        run_smc(ram_a, ram_b, hdr, code, code + half, half);
    } else {
        if (code_len > CODE_MAX) {
            code_len = CODE_MAX;
        }
        fuzz_last_result = run_main(ram_a, hdr, code, code_len);
    }
    return 0;
}
