/*
 * The software CPU on a flat RAM buffer: hand-written guest programs
 * (guest-progs.S) in real, protected and long mode, exceptions,
 * interrupts, atomics across vCPUs, dirty tracking.
 */
#include <string.h>

#include <glib.h>

#include "accel/soft-cpu.h"

#define RAM_SIZE    (16u << 20)

#define PROG(name) extern const uint8_t name[], name##_end[]
PROG(rm_prog); PROG(lm_prog); PROG(pg32_prog); PROG(pf_prog); PROG(ring_prog);
PROG(de_prog); PROG(rep_prog); PROG(smc_prog); PROG(lock_prog); PROG(dirty_prog);
PROG(pse_dirty_prog); PROG(splitlock_prog); PROG(mtrr_prog);
PROG(hlt_prog); PROG(triple_prog); PROG(ud_prog); PROG(xmc_prog); PROG(xsave_prog); PROG(tscfreq_prog); PROG(cr4_prog); PROG(ptcode_prog); PROG(tf_prog); PROG(prot_prog); PROG(glob_prog);
extern const uint8_t prot_pf[], prot_ud[];
extern const uint8_t tf_handler[], splitlock_pf[];
extern const uint8_t xmc_writer[];
extern const uint8_t pf_handler[], ring_user[], ring_int80[], ring_syscall[], ring_ud[];
extern const uint8_t ring_ud_insn[], ring_after_syscall[], de_handler[], de_insn[];
extern const uint8_t rep_pf_handler[], hlt_irq[], ud_handler[], ud_insn[];
extern const uint8_t cr4_handler[];

#define LOAD64      0x10000
/* Guest address of @label inside program @prog loaded at @load. */
#define GADDR(prog, label, load) ((uint64_t)((label) - (prog)) + (load))

typedef struct TestVM {
    uint8_t *ram;
    GString *out;                   /* bytes written to port 0x3f8 */
    int pending_vector;             /* -1: none */
    int acked;
    GHashTable *dirty;              /* gpa page -> times marked */
    uint64_t tsc;
} TestVM;

static uint8_t *t_ram_page(void *opaque, uint64_t gpa)
{
    TestVM *vm = opaque;

    return gpa < RAM_SIZE ? vm->ram + gpa : NULL;
}

static void t_mark_dirty(void *opaque, uint64_t gpa)
{
    TestVM *vm = opaque;
    gpointer key = GSIZE_TO_POINTER(gpa + 1);

    g_hash_table_insert(vm->dirty, key,
                        GUINT_TO_POINTER(GPOINTER_TO_UINT(g_hash_table_lookup(vm->dirty, key)) + 1));
}

static unsigned dirty_count(TestVM *vm, uint64_t gpa)
{
    return GPOINTER_TO_UINT(g_hash_table_lookup(vm->dirty, GSIZE_TO_POINTER(gpa + 1)));
}

static uint64_t t_mmio_read(void *opaque, uint64_t gpa, unsigned size)
{
    return ~0ULL;
}

static void t_mmio_write(void *opaque, uint64_t gpa, uint64_t v, unsigned size)
{
}

static uint32_t t_pio_read(void *opaque, uint16_t port, unsigned size)
{
    return port == 0x3fd ? 0x60 : 0;
}

static void t_pio_write(void *opaque, uint16_t port, uint32_t v, unsigned size)
{
    TestVM *vm = opaque;

    if (port == 0x3f8) {
        g_string_append_c(vm->out, (char)v);
    }
}

static int t_get_interrupt(void *opaque)
{
    TestVM *vm = opaque;

    return __atomic_load_n(&vm->pending_vector, __ATOMIC_SEQ_CST);
}

static void t_ack_interrupt(void *opaque, int vector)
{
    TestVM *vm = opaque;

    vm->acked = vector;
    __atomic_store_n(&vm->pending_vector, -1, __ATOMIC_SEQ_CST);
}

static uint64_t t_read_tsc(void *opaque)
{
    TestVM *vm = opaque;

    return __atomic_add_fetch(&vm->tsc, 1000, __ATOMIC_SEQ_CST);
}

static const SoftCPUHooks hooks = {
    .ram_page = t_ram_page,
    .mark_dirty = t_mark_dirty,
    .mmio_read = t_mmio_read,
    .mmio_write = t_mmio_write,
    .pio_read = t_pio_read,
    .pio_write = t_pio_write,
    .get_interrupt = t_get_interrupt,
    .ack_interrupt = t_ack_interrupt,
    .read_tsc = t_read_tsc,
    .tsc_hz = 2500000000ULL,
};

static TestVM *vm_new(void)
{
    TestVM *vm = g_new0(TestVM, 1);

    vm->ram = g_malloc0(RAM_SIZE);
    vm->out = g_string_new(NULL);
    vm->pending_vector = -1;
    vm->acked = -1;
    vm->dirty = g_hash_table_new(g_direct_hash, g_direct_equal);
    return vm;
}

static void vm_free(TestVM *vm)
{
    g_free(vm->ram);
    g_string_free(vm->out, TRUE);
    g_hash_table_destroy(vm->dirty);
    g_free(vm);
}

static void load(TestVM *vm, uint64_t gpa, const uint8_t *start, const uint8_t *end)
{
    memcpy(vm->ram + gpa, start, end - start);
}

static void put64(TestVM *vm, uint64_t gpa, uint64_t v)
{
    memcpy(vm->ram + gpa, &v, 8);
}

static void put32(TestVM *vm, uint64_t gpa, uint32_t v)
{
    memcpy(vm->ram + gpa, &v, 4);
}

static uint64_t get64(TestVM *vm, uint64_t gpa)
{
    uint64_t v;

    memcpy(&v, vm->ram + gpa, 8);
    return v;
}

static void seg_flat(X86Segment *s, uint16_t sel, uint8_t type, uint8_t dpl, bool l, bool db)
{
    memset(s, 0, sizeof(*s));
    s->selector = sel;
    s->limit = 0xffffffff;
    s->type = type;
    s->s = 1;
    s->dpl = dpl;
    s->present = 1;
    s->l = l;
    s->db = db;
    s->g = 1;
}

static void seg_real(X86Segment *s, uint16_t sel, uint8_t type)
{
    memset(s, 0, sizeof(*s));
    s->selector = sel;
    s->base = (uint64_t)sel << 4;
    s->limit = 0xffff;
    s->type = type;
    s->s = 1;
    s->present = 1;
}

static void state_real(X86CPUState *st, uint64_t ip)
{
    memset(st, 0, sizeof(*st));
    st->rflags = 2;
    for (int i = 0; i < 6; i++) {
        seg_real(&st->segs[i], 0, i == X86_SEG_CS ? 0xb : 0x3);
    }
    st->segs[X86_SEG_LDT].type = 2;
    st->segs[X86_SEG_LDT].present = 1;
    st->segs[X86_SEG_TR].type = 0xb;
    st->segs[X86_SEG_TR].present = 1;
    st->gdt.limit = st->idt.limit = 0xffff;
    st->cr0 = X86_CR0_ET;
    st->rip = ip;
    st->mp_state = X86_MP_RUNNABLE;
    *x86_cpu_state_mxcsr(st) = 0x1f80;
    st->xsave[0] = 0x7f;
    st->xsave[1] = 0x03;
    st->xsave_len = X86_FXSAVE_SIZE;
}

/* Flat 32-bit protected mode with paging off, as a PVH loader leaves it. */
static void state_flat32(X86CPUState *st, uint64_t ip)
{
    state_real(st, ip);
    seg_flat(&st->segs[X86_SEG_CS], 0x08, 0xb, 0, false, true);
    for (int i = 0; i < 6; i++) {
        if (i != X86_SEG_CS) {
            seg_flat(&st->segs[i], 0x10, 0x3, 0, false, true);
        }
    }
    st->cr0 = X86_CR0_PE | X86_CR0_ET;
}

/*
 * The long-mode world of the 64-bit programs: identity map of 0-8 MiB
 * (first 2 MiB in 4 KiB pages, PT at 0x4000), a 1 GiB alias of 0 at
 * 1 GiB, GDT at 0x5000, IDT at 0x6000, TSS at 0x7000, kernel stack 0x80000.
 */
#define GDT_BASE    0x5000
#define IDT_BASE    0x6000
#define TSS_BASE    0x7000
#define KSTACK      0x80000
#define ISTSTACK    0x90000

static void build_page_tables(TestVM *vm)
{
    put64(vm, 0x1000, 0x2000 | 7);              /* PML4[0] -> PDPT */
    put64(vm, 0x2000, 0x3000 | 7);              /* PDPT[0] -> PD */
    put64(vm, 0x2008, 0x0 | 0x87);              /* PDPT[1]: 1 GiB page -> 0 */
    put64(vm, 0x3000, 0x4000 | 7);              /* PD[0] -> PT */
    for (int i = 1; i < 8; i++) {
        put64(vm, 0x3000 + 8 * i, ((uint64_t)i << 21) | 0x87);
    }
    for (int i = 0; i < 512; i++) {
        put64(vm, 0x4000 + 8 * i, ((uint64_t)i << 12) | 7);
    }
}

static void set_gate(TestVM *vm, int vector, uint64_t handler, int dpl, int ist)
{
    uint64_t lo = (handler & 0xffff) | (0x08ULL << 16) | ((uint64_t)ist << 32) |
                  ((0x8eULL | (dpl << 5)) << 40) | (((handler >> 16) & 0xffff) << 48);

    put64(vm, IDT_BASE + 16 * vector, lo);
    put64(vm, IDT_BASE + 16 * vector + 8, handler >> 32);
}

static void state_long(TestVM *vm, X86CPUState *st, uint64_t ip)
{
    static const uint64_t gdt[] = {
        0,
        0x00af9a000000ffffULL,      /* 0x08 kernel code 64 */
        0x00cf92000000ffffULL,      /* 0x10 kernel data */
        0x00cffa000000ffffULL,      /* 0x18 user code 32 */
        0x00cff2000000ffffULL,      /* 0x20 user data */
        0x00affa000000ffffULL,      /* 0x28 user code 64 */
    };

    build_page_tables(vm);
    memcpy(vm->ram + GDT_BASE, gdt, sizeof(gdt));
    put64(vm, TSS_BASE + 4, KSTACK);            /* RSP0 */
    put64(vm, TSS_BASE + 0x24, ISTSTACK);       /* IST1 */

    state_real(st, ip);
    seg_flat(&st->segs[X86_SEG_CS], 0x08, 0xb, 0, true, false);
    for (int i = 0; i < 6; i++) {
        if (i != X86_SEG_CS) {
            seg_flat(&st->segs[i], 0x10, 0x3, 0, false, true);
        }
    }
    memset(&st->segs[X86_SEG_TR], 0, sizeof(X86Segment));
    st->segs[X86_SEG_TR].selector = 0x30;
    st->segs[X86_SEG_TR].base = TSS_BASE;
    st->segs[X86_SEG_TR].limit = 0x67;
    st->segs[X86_SEG_TR].type = 0xb;
    st->segs[X86_SEG_TR].present = 1;
    st->gdt.base = GDT_BASE;
    st->gdt.limit = sizeof(gdt) - 1 + 16;
    st->idt.base = IDT_BASE;
    st->idt.limit = 0xfff;
    st->cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE | X86_CR0_WP | X86_CR0_PG;
    st->cr3 = 0x1000;
    st->cr4 = X86_CR4_PAE | X86_CR4_OSFXSR;
    st->efer = X86_EFER_LME | X86_EFER_LMA | X86_EFER_SCE | X86_EFER_NXE;
    st->star = (0x18ULL << 48) | (0x08ULL << 32);
    st->sfmask = 0x700;
    st->regs[X86_RSP] = KSTACK;
}

static SoftCPU *cpu_long(TestVM *vm, const uint8_t *start, const uint8_t *end)
{
    SoftCPU *cpu = soft_cpu_new(&hooks, vm, 0, 1);
    X86CPUState st;

    load(vm, LOAD64, start, end);
    state_long(vm, &st, LOAD64);
    soft_cpu_set_state(cpu, &st);
    return cpu;
}

static X86CPUState get_state(SoftCPU *cpu)
{
    X86CPUState st;

    soft_cpu_get_state(cpu, &st);
    return st;
}

static void test_real_mode(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = soft_cpu_new(&hooks, vm, 0, 1);
    X86CPUState st;
    uint16_t v16;
    uint32_t v32;

    load(vm, 0x7c00, rm_prog, rm_prog_end);
    state_real(&st, 0x7c00);
    soft_cpu_set_state(cpu, &st);

    /* Stops at the sti; hlt waiting for a hardware interrupt. */
    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    memcpy(&v16, vm->ram + 0x500, 2);
    g_assert_cmphex(v16, ==, (1234 * 56) & 0xffff);
    memcpy(&v16, vm->ram + 0x502, 2);
    g_assert_cmphex(v16, ==, (1234 * 56) >> 16);
    memcpy(&v16, vm->ram + 0x10010, 2);
    g_assert_cmphex(v16, ==, 0xbeef);
    memcpy(&v32, vm->ram + 0x504, 4);
    g_assert_cmphex(v32, ==, 0x23456789);
    memcpy(&v16, vm->ram + 0x50a, 2);
    g_assert_cmphex(v16, ==, 0x5151);
    memcpy(&v16, vm->ram + 0x508, 2);
    g_assert_cmphex(v16, ==, 0x4242);

    /* A hardware interrupt through the IVT wakes it. */
    vm->pending_vector = 0x43;
    soft_cpu_interrupt_changed(cpu);
    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    g_assert_cmpint(vm->acked, ==, 0x43);
    memcpy(&v16, vm->ram + 0x50c, 2);
    g_assert_cmphex(v16, ==, 0x4343);

    /* Then protected mode. */
    memcpy(&v32, vm->ram + 0x100000, 4);
    g_assert_cmphex(v32, ==, 0xcafebabe);
    memcpy(&v32, vm->ram + 0x100004, 4);
    g_assert_cmphex(v32, ==, 0x600d);
    g_assert_cmpstr(vm->out->str, ==, "P");
    st = get_state(cpu);
    g_assert_true(st.cr0 & X86_CR0_PE);
    g_assert_cmphex(st.segs[X86_SEG_CS].selector, ==, 8);
    g_assert_cmpint(st.segs[X86_SEG_CS].db, ==, 1);

    soft_cpu_free(cpu);
    vm_free(vm);
}

static void test_long_mode_entry(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = soft_cpu_new(&hooks, vm, 0, 1);
    X86CPUState st;

    build_page_tables(vm);
    load(vm, 0x8000, lm_prog, lm_prog_end);
    state_flat32(&st, 0x8000);
    soft_cpu_set_state(cpu, &st);
    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    st = get_state(cpu);
    g_assert_true(st.efer & X86_EFER_LMA);
    g_assert_cmpint(st.segs[X86_SEG_CS].l, ==, 1);
    g_assert_cmphex(st.regs[X86_RBX], ==, 0x123456789abcdef0ULL);
    g_assert_cmphex(st.regs[X86_RSI], ==, 0x55);
    g_assert_cmpstr(vm->out->str, ==, "L");
    /* Accessed and dirty bits reached the guest's tables. */
    g_assert_cmphex(get64(vm, 0x3000 + 8 * 3) & 0x60, ==, 0x60);
    g_assert_cmphex(get64(vm, 0x2008) & 0x60, ==, 0x60);
    soft_cpu_free(cpu);
    vm_free(vm);
}

static void test_paging32(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = soft_cpu_new(&hooks, vm, 0, 1);
    X86CPUState st;

    /* Legacy: PDE0 4 MiB identity, PDE1 -> PT at 0x2000, PDE2 4 MiB -> 0. */
    put32(vm, 0x1000, 0x83 | 4);
    put32(vm, 0x1004, 0x2000 | 7);
    put32(vm, 0x1008, 0x83 | 4);
    put32(vm, 0x2000 + 4, 0x5000 | 7);
    /* PAE: PDPT at 0x3000; PD at 0x6000 (identity), PD at 0x7000 (-> 0). */
    put64(vm, 0x3000, 0x6000 | 1);
    put64(vm, 0x3008, 0x7000 | 1);
    put64(vm, 0x6000, 0x87);
    put64(vm, 0x7000, 0x87);
    load(vm, 0x8000, pg32_prog, pg32_prog_end);
    state_flat32(&st, 0x8000);
    soft_cpu_set_state(cpu, &st);
    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    st = get_state(cpu);
    g_assert_cmphex(st.regs[X86_RBX], ==, 0x11);
    g_assert_cmphex(st.regs[X86_RCX], ==, 0x22);
    g_assert_cmphex(st.regs[X86_RDX], ==, 0x33);
    g_assert_cmphex(vm->ram[0x1008] & 0x60, ==, 0x60);     /* 4 MiB PDE: A and D */
    soft_cpu_free(cpu);
    vm_free(vm);
}

static void test_page_fault(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = cpu_long(vm, pf_prog, pf_prog_end);
    X86CPUState st;

    set_gate(vm, 14, GADDR(pf_prog, pf_handler, LOAD64), 0, 0);
    put64(vm, 0x4000 + 0x1ff * 8, 0x1ff000 | 6);  /* not present */
    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    st = get_state(cpu);
    g_assert_cmphex(st.regs[X86_R12], ==, 0x1ff008);
    g_assert_cmphex(st.regs[X86_R13], ==, 2);       /* write, not present, supervisor */
    g_assert_cmphex(st.regs[X86_R14], ==, 0x77);
    g_assert_cmphex(st.cr2, ==, 0x1ff008);
    g_assert_cmphex(st.regs[X86_RSP], ==, KSTACK);
    g_assert_cmphex(get64(vm, 0x4000 + 0x1ff * 8), ==, 0x1ff000 | 0x67);
    soft_cpu_free(cpu);
    vm_free(vm);
}

static void test_protection_faults(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = cpu_long(vm, prot_prog, prot_prog_end);
    X86CPUState st;

    set_gate(vm, 14, GADDR(prot_prog, prot_pf, LOAD64), 0, 0);
    set_gate(vm, 6, GADDR(prot_prog, prot_ud, LOAD64), 0, 0);
    put64(vm, 0x4000 + 0x1fe * 8, 0x1fe000 | 5);                  /* read-only */
    put64(vm, 0x4000 + 0x1fd * 8, 0x1fd000 | 7 | (1ULL << 63));   /* no-execute */
    put64(vm, 0x4000 + 0x1fc * 8, 0x1fc000 | 3);                  /* supervisor */
    vm->ram[0x1fd000] = 0xc3;
    put64(vm, 0x1fc000, 0x5a5a);
    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    st = get_state(cpu);
    g_assert_cmphex(st.regs[X86_R11], ==, 3);
    g_assert_cmphex(get64(vm, 0x61000), ==, 0x3);       /* present, write */
    g_assert_cmphex(get64(vm, 0x61008), ==, 0x11);      /* present, fetch */
    g_assert_cmphex(get64(vm, 0x61010), ==, 0x5);       /* present, user */
    g_assert_cmphex(get64(vm, 0x1fe000), ==, 1);
    g_assert_cmphex(st.regs[X86_RBX], ==, 0x5a5a);
    soft_cpu_free(cpu);
    vm_free(vm);
}

static void test_global_pages(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = cpu_long(vm, glob_prog, glob_prog_end);
    X86CPUState st;

    put64(vm, 0x4000 + 0x1f0 * 8, 0x1f0000 | 0x107);    /* global */
    put64(vm, 0x1f0000, 0xa);
    put64(vm, 0x1f1000, 0xb);
    put64(vm, 0x1f2000, 0xc);
    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    st = get_state(cpu);
    g_assert_cmphex(st.regs[X86_R8], ==, 0xa);
    g_assert_cmphex(st.regs[X86_R9], ==, 0xb);
    g_assert_cmphex(st.regs[X86_R10], ==, 0xa);
    g_assert_cmphex(st.regs[X86_R11], ==, 0xc);
    g_assert_cmphex(st.regs[X86_R12], ==, 0xc);
    soft_cpu_free(cpu);
    vm_free(vm);
}

static void test_ring3(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = cpu_long(vm, ring_prog, ring_prog_end);
    X86CPUState st;

    set_gate(vm, 0x80, GADDR(ring_prog, ring_int80, LOAD64), 3, 0);
    set_gate(vm, 6, GADDR(ring_prog, ring_ud, LOAD64), 0, 1);
    soft_cpu_get_state(cpu, &st);
    st.lstar = GADDR(ring_prog, ring_syscall, LOAD64);
    soft_cpu_set_state(cpu, &st);
    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    st = get_state(cpu);
    g_assert_cmphex(st.regs[X86_R8], ==, 10);
    g_assert_cmphex(st.regs[X86_R10], ==, 0x2b);
    g_assert_cmphex(st.regs[X86_R9], ==, GADDR(ring_prog, ring_after_syscall, LOAD64));
    g_assert_cmphex(st.regs[X86_RSI], ==, 107);
    g_assert_cmphex(st.regs[X86_R15], ==, 0x2b);
    g_assert_cmphex(st.regs[X86_R14], ==, GADDR(ring_prog, ring_ud_insn, LOAD64));
    g_assert_cmphex(st.regs[X86_R13], ==, 0x28000);
    /* The #UD went through IST1. */
    g_assert_cmphex(st.regs[X86_RSP], ==, ISTSTACK - 40);
    g_assert_cmphex(st.segs[X86_SEG_CS].selector, ==, 0x08);
    soft_cpu_free(cpu);
    vm_free(vm);
}

static void test_divide_error(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = cpu_long(vm, de_prog, de_prog_end);
    X86CPUState st;

    set_gate(vm, 0, GADDR(de_prog, de_handler, LOAD64), 0, 0);
    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    st = get_state(cpu);
    g_assert_cmphex(st.regs[X86_R12], ==, GADDR(de_prog, de_insn, LOAD64));
    g_assert_cmphex(st.regs[X86_R13], ==, 0xde);
    g_assert_cmphex(st.regs[X86_RAX], ==, 100);
    soft_cpu_free(cpu);
    vm_free(vm);
}

static void test_rep_movsb_fault(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = cpu_long(vm, rep_prog, rep_prog_end);
    X86CPUState st;

    set_gate(vm, 14, GADDR(rep_prog, rep_pf_handler, LOAD64), 0, 0);
    put64(vm, 0x4000 + 0x1ff * 8, 0x1ff000 | 6);
    for (int i = 0; i < 0x1000; i++) {
        vm->ram[0x30000 + i] = i * 7 + 1;
    }
    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    st = get_state(cpu);
    g_assert_cmphex(st.regs[X86_R12], ==, 0x1ff000);
    g_assert_cmphex(st.regs[X86_R13], ==, 0x800);
    g_assert_cmphex(st.regs[X86_RCX], ==, 0);
    g_assert_cmphex(st.regs[X86_RSI], ==, 0x31000);
    g_assert_cmphex(st.regs[X86_RDI], ==, 0x1ff800);
    g_assert_cmpint(memcmp(vm->ram + 0x30000, vm->ram + 0x1fe800, 0x1000), ==, 0);
    soft_cpu_free(cpu);
    vm_free(vm);
}

static void test_self_modifying(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = cpu_long(vm, smc_prog, smc_prog_end);
    X86CPUState st;

    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    st = get_state(cpu);
    g_assert_cmphex(st.regs[X86_RBX], ==, 6);
    soft_cpu_free(cpu);
    vm_free(vm);
}

static gpointer lock_thread(gpointer p)
{
    SoftCPU *cpu = p;

    return GINT_TO_POINTER(soft_cpu_run(cpu, 0));
}

static void test_lock_add_smp(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpus[2];
    GThread *th[2];
    X86CPUState st;

    load(vm, LOAD64, lock_prog, lock_prog_end);
    state_long(vm, &st, LOAD64);
    st.regs[X86_RDX] = 1;
    for (int i = 0; i < 2; i++) {
        cpus[i] = soft_cpu_new(&hooks, vm, i, 2);
        soft_cpu_set_state(cpus[i], &st);
    }
    for (int i = 0; i < 2; i++) {
        th[i] = g_thread_new("soft-cpu-test", lock_thread, cpus[i]);
    }
    for (int i = 0; i < 2; i++) {
        g_assert_cmpint(GPOINTER_TO_INT(g_thread_join(th[i])), ==, SOFT_EXIT_HALTED);
        soft_cpu_free(cpus[i]);
    }
    g_assert_cmpuint(get64(vm, 0x40000), ==, 200000);
    g_assert_cmpuint(get64(vm, 0x40010) & 0xffffffff, ==, 200000);
    vm_free(vm);
}

typedef struct RunArgs {
    SoftCPU *cpu;
    uint64_t max;
} RunArgs;

static gpointer run_thread(gpointer p)
{
    RunArgs *a = p;

    return GINT_TO_POINTER(soft_cpu_run(a->cpu, a->max));
}

/* A store by one vCPU reaches the decoded code of another. */
static void test_cross_modifying(void)
{
    static const uint8_t f[] = { 0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3 };   /* mov $1,%eax; ret */
    TestVM *vm = vm_new();
    SoftCPU *cpus[2];
    RunArgs args[2];
    GThread *th[2];
    X86CPUState st;

    load(vm, LOAD64, xmc_prog, xmc_prog_end);
    memcpy(vm->ram + 0x11000, f, sizeof(f));
    state_long(vm, &st, LOAD64);
    for (int i = 0; i < 2; i++) {
        cpus[i] = soft_cpu_new(&hooks, vm, i, 2);
        st.rip = i == 0 ? LOAD64 : GADDR(xmc_prog, xmc_writer, LOAD64);
        soft_cpu_set_state(cpus[i], &st);
        args[i].cpu = cpus[i];
        args[i].max = 50000000;
    }
    for (int i = 0; i < 2; i++) {
        th[i] = g_thread_new("soft-cpu-xmc", run_thread, &args[i]);
    }
    for (int i = 0; i < 2; i++) {
        g_assert_cmpint(GPOINTER_TO_INT(g_thread_join(th[i])), ==, SOFT_EXIT_HALTED);
    }
    st = get_state(cpus[0]);
    g_assert_cmphex(st.regs[X86_RAX], ==, 2);
    for (int i = 0; i < 2; i++) {
        soft_cpu_free(cpus[i]);
    }
    vm_free(vm);
}

/* A device or loader writing guest RAM drops decoded code of the page. */
static void test_invalidate_code(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = cpu_long(vm, smc_prog, smc_prog_end);
    X86CPUState st;

    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    /* Rewrite "movl $1, %eax" behind the core's back, then tell it. */
    load(vm, LOAD64, smc_prog, smc_prog_end);
    memset(vm->ram + LOAD64 + 5, 0x90, 8);     /* the patching store becomes NOPs */
    soft_cpu_invalidate_code(cpu, LOAD64, 64);
    st = get_state(cpu);
    st.rip = LOAD64;
    st.regs[X86_RBX] = 0;
    st.mp_state = X86_MP_RUNNABLE;
    soft_cpu_set_state(cpu, &st);
    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    st = get_state(cpu);
    g_assert_cmphex(st.regs[X86_RBX], ==, 3);   /* adds 1 three times now */
    soft_cpu_free(cpu);
    vm_free(vm);
}

static void test_dirty_tracking(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = cpu_long(vm, dirty_prog, dirty_prog_end);
    X86CPUState st;

    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    g_assert_cmpuint(dirty_count(vm, 0x50000), ==, 1);
    g_assert_cmpuint(dirty_count(vm, 0x51000), ==, 1);
    g_assert_cmpuint(dirty_count(vm, 0x52000), ==, 1);
    g_assert_cmpuint(dirty_count(vm, 0x53000), ==, 0);
    g_assert_cmpuint(get64(vm, 0x51000), ==, 102);

    /* A new round: every page goes through mark_dirty once more. */
    soft_cpu_flush_dirty_tracking(cpu);
    st = get_state(cpu);
    st.rip = LOAD64;
    st.mp_state = X86_MP_RUNNABLE;
    soft_cpu_set_state(cpu, &st);
    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    g_assert_cmpuint(dirty_count(vm, 0x50000), ==, 2);
    g_assert_cmpuint(dirty_count(vm, 0x51000), ==, 2);
    g_assert_cmpuint(dirty_count(vm, 0x52000), ==, 2);
    soft_cpu_free(cpu);
    vm_free(vm);
}

/* Setting D in a 4 MiB PDE whose A is already set reports the PD page. */
static void test_dirty_pse_pde(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = soft_cpu_new(&hooks, vm, 0, 1);
    X86CPUState st;
    unsigned before;

    put32(vm, 0x1000, 0x83 | 4 | 0x20);            /* 4 MiB identity, A set */
    put32(vm, 0x1008, 0x83 | 4 | 0x20);            /* 8 MiB -> 0: A set, D clear */
    load(vm, 0x8000, pse_dirty_prog, pse_dirty_prog_end);
    state_flat32(&st, 0x8000);
    soft_cpu_set_state(cpu, &st);
    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);

    soft_cpu_flush_dirty_tracking(cpu);
    before = dirty_count(vm, 0x1000);
    st = get_state(cpu);
    st.mp_state = X86_MP_RUNNABLE;
    soft_cpu_set_state(cpu, &st);
    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    g_assert_cmphex(vm->ram[0x104], ==, 0x44);
    g_assert_cmphex(vm->ram[0x1008] & 0x60, ==, 0x60);
    g_assert_cmpuint(dirty_count(vm, 0x1000), ==, before + 1);
    soft_cpu_free(cpu);
    vm_free(vm);
}

/* A faulting split LOCKed access must not leave the global lock held. */
static void test_split_lock_fault(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = cpu_long(vm, splitlock_prog, splitlock_prog_end);
    X86CPUState st;
    uint32_t v;

    set_gate(vm, 14, GADDR(splitlock_prog, splitlock_pf, LOAD64), 0, 0);
    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    st = get_state(cpu);
    /* The stale entry may be used or fault; the flushed one must fault. */
    g_assert_cmpuint(st.regs[X86_R14], >=, 1);
    g_assert_cmphex(st.regs[X86_R12], ==, 0x1ff000);
    g_assert_cmphex(st.regs[X86_R13], ==, 2);       /* write, not present */
    memcpy(&v, vm->ram + 0x1feffe, 4);
    g_assert_cmphex(v, ==, 0x02020202);
    /* Later split LOCKed accesses (XCHG, CMPXCHG) still complete. */
    g_assert_cmphex(st.regs[X86_R8], ==, 0);
    g_assert_cmphex(st.regs[X86_R9], ==, 1);
    memcpy(&v, vm->ram + 0x1fdffe, 4);
    g_assert_cmphex(v, ==, 0x77777777);
    soft_cpu_free(cpu);
    vm_free(vm);
}

/*
 * Real mode at 0x7c00: WRMSR TSC = 1 << 40, then HLT. The IVT sends NMI and
 * vector 0x30 to a HLT at 0x9000, to catch a delivery that should not be.
 */
static void reset_setup(TestVM *vm)
{
    static const uint8_t prog[] = {
        0x66, 0xb9, 0x10, 0x00, 0x00, 0x00,         /* mov $0x10, %ecx */
        0x66, 0x31, 0xc0,                           /* xor %eax, %eax */
        0x66, 0xba, 0x00, 0x01, 0x00, 0x00,         /* mov $0x100, %edx */
        0x0f, 0x30,                                 /* wrmsr */
        0xf4,                                       /* hlt */
    };

    memcpy(vm->ram + 0x7c00, prog, sizeof(prog));
    vm->ram[0x8000] = 0xf4;
    vm->ram[0x9000] = 0xf4;
    put32(vm, 2 * 4, 0x09000000);
    put32(vm, 0x30 * 4, 0x09000000);
}

static void test_reset(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = soft_cpu_new(&hooks, vm, 0, 1);
    X86CPUState st;

    reset_setup(vm);
    state_real(&st, 0x7c00);
    soft_cpu_set_state(cpu, &st);
    g_assert_cmpint(soft_cpu_run(cpu, 100), ==, SOFT_EXIT_HALTED);
    st = get_state(cpu);
    g_assert_cmpuint(st.tsc, >=, 1ULL << 40);

    /* Everything a reboot must forget: an injected IRQ and posted signals. */
    st.interrupt_injected = 1;
    st.interrupt_vector = 0x30;
    soft_cpu_set_state(cpu, &st);
    soft_cpu_init_signal(cpu);
    soft_cpu_sipi(cpu, 0x20);
    soft_cpu_nmi(cpu);
    soft_cpu_kick(cpu);
    soft_cpu_flush_dirty_tracking(cpu);

    soft_cpu_reset(cpu);
    state_real(&st, 0x8000);
    st.rflags = 0x202;                              /* IF: a stale IRQ would be taken */
    soft_cpu_set_state(cpu, &st);
    g_assert_cmpint(soft_cpu_run(cpu, 100), ==, SOFT_EXIT_HALTED);
    st = get_state(cpu);
    g_assert_cmpint(st.mp_state, ==, X86_MP_HALTED);
    g_assert_cmphex(st.segs[X86_SEG_CS].selector, ==, 0);
    g_assert_cmphex(st.rip, ==, 0x8001);
    g_assert_cmpuint(st.tsc, <, 1ULL << 40);
    g_assert_cmpint(st.nmi_pending, ==, 0);
    soft_cpu_free(cpu);
    vm_free(vm);
}

/* Reading the state posts nothing back: requests wait for the vCPU. */
static void test_get_state_pure(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = soft_cpu_new(&hooks, vm, 0, 1);
    X86CPUState st;

    reset_setup(vm);
    state_real(&st, 0x8000);
    soft_cpu_set_state(cpu, &st);
    soft_cpu_init_signal(cpu);
    soft_cpu_nmi(cpu);
    st = get_state(cpu);
    g_assert_cmpint(st.mp_state, ==, X86_MP_RUNNABLE);
    g_assert_cmphex(st.rip, ==, 0x8000);
    g_assert_cmpint(st.nmi_pending, ==, 1);         /* shown, still posted */
    st = get_state(cpu);
    g_assert_cmpint(st.mp_state, ==, X86_MP_RUNNABLE);
    /* An injected interrupt not yet delivered survives a round trip. */
    st.interrupt_injected = 1;
    st.interrupt_vector = 0x30;
    soft_cpu_set_state(cpu, &st);
    st = get_state(cpu);
    g_assert_cmpint(st.interrupt_injected, ==, 1);
    g_assert_cmpint(st.interrupt_vector, ==, 0x30);

    /* The vCPU's own run applies them: INIT first, which drops the NMI. */
    g_assert_cmpint(soft_cpu_run(cpu, 100), ==, SOFT_EXIT_HALTED);
    st = get_state(cpu);
    g_assert_cmpint(st.mp_state, ==, X86_MP_WAIT_FOR_SIPI);
    g_assert_cmphex(st.rip, ==, 0xfff0);
    soft_cpu_free(cpu);
    vm_free(vm);
}

static void test_hlt_interrupt(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = cpu_long(vm, hlt_prog, hlt_prog_end);
    X86CPUState st;

    set_gate(vm, 0x40, GADDR(hlt_prog, hlt_irq, LOAD64), 0, 0);
    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    st = get_state(cpu);
    g_assert_cmpint(st.mp_state, ==, X86_MP_HALTED);
    g_assert_cmphex(st.regs[X86_R8], ==, 0);
    /* Nothing pending: it stays halted. */
    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);

    vm->pending_vector = 0x40;
    soft_cpu_interrupt_changed(cpu);
    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    st = get_state(cpu);
    g_assert_cmpint(vm->acked, ==, 0x40);
    g_assert_cmphex(st.regs[X86_R9], ==, 1);
    g_assert_cmphex(st.regs[X86_R8], ==, 1);

    /* Kicks and instruction limits. */
    soft_cpu_kick(cpu);
    g_assert_cmpint(soft_cpu_run(cpu, 0), ==, SOFT_EXIT_KICKED);
    soft_cpu_free(cpu);
    vm_free(vm);
}

static void test_triple_fault(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = cpu_long(vm, triple_prog, triple_prog_end);

    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_SHUTDOWN);
    soft_cpu_free(cpu);
    vm_free(vm);
}

static void test_unimplemented_ud(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = cpu_long(vm, ud_prog, ud_prog_end);
    X86CPUState st;

    set_gate(vm, 6, GADDR(ud_prog, ud_handler, LOAD64), 0, 0);
    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    st = get_state(cpu);
    g_assert_cmphex(st.regs[X86_R12], ==, GADDR(ud_prog, ud_insn, LOAD64));
    g_assert_cmphex(st.regs[X86_R13], ==, 6);
    soft_cpu_free(cpu);
    vm_free(vm);
}

static void test_xsave(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = cpu_long(vm, xsave_prog, xsave_prog_end);
    X86CPUState st;

    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    st = get_state(cpu);
    g_assert_cmphex(st.regs[X86_R8], ==, 3);
    g_assert_cmphex(st.regs[X86_R9], ==, 0x1234);
    g_assert_cmphex(st.regs[X86_R10], ==, 3);
    g_assert_cmphex(st.xcr0, ==, 3);
    soft_cpu_free(cpu);
    vm_free(vm);
}

/* The walker's accessed/dirty writes reach decoded code in the same page. */
static void test_walker_writes_code_page(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = cpu_long(vm, ptcode_prog, ptcode_prog_end);
    X86CPUState st;

    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    st = get_state(cpu);
    g_assert_cmphex(st.regs[X86_R8], ==, 0x1fe003);
    g_assert_cmphex(st.regs[X86_R9], ==, 0x1fe023);
    soft_cpu_free(cpu);
    vm_free(vm);
}

/* CR4 bits the CPU lacks are #GP(0), never silently accepted. */
static void test_cr4_unimplemented_bits(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = cpu_long(vm, cr4_prog, cr4_prog_end);
    X86CPUState st;

    set_gate(vm, 13, GADDR(cr4_prog, cr4_handler, LOAD64), 0, 0);
    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    st = get_state(cpu);
    g_assert_cmpuint(st.regs[X86_R8], ==, 4);
    g_assert_cmphex(st.regs[X86_R9], ==, st.regs[X86_RBX]);
    soft_cpu_free(cpu);
    vm_free(vm);
}

/* CPUID 15H/16H report the hook's TSC rate, so a guest need not calibrate. */
static void test_tsc_frequency_leaves(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = cpu_long(vm, tscfreq_prog, tscfreq_prog_end);
    X86CPUState st;

    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    st = get_state(cpu);
    g_assert_cmphex(st.regs[X86_R8], >=, 0x16);
    g_assert_cmphex(st.regs[X86_R9], ==, 1);            /* denominator */
    g_assert_cmphex(st.regs[X86_R10], ==, 1);           /* numerator */
    g_assert_cmphex(st.regs[X86_R11], ==, 2500000000ULL);
    g_assert_cmphex(st.regs[X86_R12], ==, 2500);        /* MHz */
    soft_cpu_free(cpu);
    vm_free(vm);
}

static void test_single_step(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = cpu_long(vm, tf_prog, tf_prog_end);
    X86CPUState st;

    set_gate(vm, 1, GADDR(tf_prog, tf_handler, LOAD64), 0, 0);
    g_assert_cmpint(soft_cpu_run(cpu, 10000), ==, SOFT_EXIT_HALTED);
    st = get_state(cpu);
    /* After: nop, nop, pushfq, andq, popfq (TF was set when each began). */
    g_assert_cmphex(st.regs[X86_R15], ==, 5);
    g_assert_true(st.dr6 & 0x4000);
    soft_cpu_free(cpu);
    vm_free(vm);
}

/* A #UD handler that is itself a #UD: deliveries count against the budget. */
static void test_fault_loop_budget(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = soft_cpu_new(&hooks, vm, 0, 1);
    X86CPUState st;

    put32(vm, 6 * 4, 0x10000010);               /* IVT[6] = 1000:0010 */
    vm->ram[0x10010] = 0x0f;
    vm->ram[0x10011] = 0x0b;
    vm->ram[0x7c00] = 0x0f;
    vm->ram[0x7c01] = 0x0b;
    state_real(&st, 0x7c00);
    st.regs[X86_RSP] = 0x7000;
    soft_cpu_set_state(cpu, &st);
    g_assert_cmpint(soft_cpu_run(cpu, 1000), ==, SOFT_EXIT_LIMIT);
    soft_cpu_kick(cpu);
    g_assert_cmpint(soft_cpu_run(cpu, 0), ==, SOFT_EXIT_KICKED);
    soft_cpu_free(cpu);
    vm_free(vm);
}

static void test_insn_limit(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = cpu_long(vm, lock_prog, lock_prog_end);

    g_assert_cmpint(soft_cpu_run(cpu, 100), ==, SOFT_EXIT_LIMIT);
    g_assert_cmpuint(soft_cpu_insn_count(cpu), ==, 100);
    soft_cpu_free(cpu);
    vm_free(vm);
}

/*
 * What the guest wrote to its MTRRs and TSC is in the state, and a fresh
 * CPU given that state reads it back: the MTRRs as written, the TSC going
 * on from the guest's value rather than the shared counter.
 */
static void test_mtrr_tsc_state(void)
{
    TestVM *vm = vm_new();
    SoftCPU *cpu = cpu_long(vm, mtrr_prog, mtrr_prog_end);
    SoftCPU *fresh = soft_cpu_new(&hooks, vm, 0, 1);
    X86CPUState st;

    g_assert_cmpint(soft_cpu_run(cpu, 1000), ==, SOFT_EXIT_HALTED);
    st = get_state(cpu);
    g_assert_cmphex(st.mtrr_def_type, ==, 0xc06);
    g_assert_cmphex(st.mtrr_var[0], ==, 0x80000006);
    g_assert_cmphex(st.mtrr_var[2 * X86_MTRR_NR_VAR - 1], ==, 0xfff0000800ULL);
    g_assert_cmphex(st.mtrr_fixed[0], ==, 0x0505050506060606ULL);
    g_assert_cmphex(st.mtrr_fixed[X86_MTRR_NR_FIXED - 1], ==, 0x0606060601000504ULL);
    /* This vCPU's own part is on top of the counter the hook read. */
    g_assert_cmphex(st.tsc - st.tsc_adjust, ==, vm->tsc);
    g_assert_cmpuint(st.tsc, >=, 1ULL << 36);
    soft_cpu_free(cpu);

    st.mp_state = X86_MP_RUNNABLE;              /* as if an interrupt woke it */
    soft_cpu_set_state(fresh, &st);
    g_assert_cmpint(soft_cpu_run(fresh, 1000), ==, SOFT_EXIT_HALTED);
    st = get_state(fresh);
    g_assert_cmphex(st.regs[X86_R8], ==, 0xc06);
    g_assert_cmphex(st.regs[X86_R9], ==, 0x80000006);
    g_assert_cmphex(st.regs[X86_R10], ==, 0xfff0000800ULL);
    g_assert_cmphex(st.regs[X86_R11], ==, 0x0505050506060606ULL);
    g_assert_cmphex(st.regs[X86_R12], ==, 0x0606060601000504ULL);
    g_assert_cmphex(st.regs[X86_R13] & X86_MTRRCAP_VCNT_MASK, ==, X86_MTRR_NR_VAR);
    /* The hook's counter is far below 2^36: only the carried offset gets there. */
    g_assert_cmpuint(st.regs[X86_R14], >, 1ULL << 36);
    g_assert_cmpuint(st.regs[X86_R14], <, (1ULL << 36) + 1000000);
    soft_cpu_free(fresh);
    vm_free(vm);
}

static void test_sipi(void)
{
    TestVM *vm = vm_new();
    SoftCPU *ap = soft_cpu_new(&hooks, vm, 1, 2);
    X86CPUState st;

    /* An AP waits for SIPI; real mode code at vector * 0x1000. */
    g_assert_cmpint(soft_cpu_run(ap, 100), ==, SOFT_EXIT_HALTED);
    vm->ram[0x9000] = 0xf4;                         /* hlt */
    soft_cpu_init_signal(ap);
    soft_cpu_sipi(ap, 0x09);
    g_assert_cmpint(soft_cpu_run(ap, 100), ==, SOFT_EXIT_HALTED);
    st = get_state(ap);
    g_assert_cmphex(st.segs[X86_SEG_CS].selector, ==, 0x900);
    g_assert_cmphex(st.rip, ==, 1);
    g_assert_cmpint(st.mp_state, ==, X86_MP_HALTED);
    soft_cpu_free(ap);
    vm_free(vm);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/soft-cpu/real-mode", test_real_mode);
    g_test_add_func("/soft-cpu/long-mode-entry", test_long_mode_entry);
    g_test_add_func("/soft-cpu/paging32", test_paging32);
    g_test_add_func("/soft-cpu/page-fault", test_page_fault);
    g_test_add_func("/soft-cpu/protection-faults", test_protection_faults);
    g_test_add_func("/soft-cpu/global-pages", test_global_pages);
    g_test_add_func("/soft-cpu/ring3", test_ring3);
    g_test_add_func("/soft-cpu/divide-error", test_divide_error);
    g_test_add_func("/soft-cpu/rep-movsb-fault", test_rep_movsb_fault);
    g_test_add_func("/soft-cpu/self-modifying", test_self_modifying);
    g_test_add_func("/soft-cpu/lock-add-smp", test_lock_add_smp);
    g_test_add_func("/soft-cpu/cross-modifying", test_cross_modifying);
    g_test_add_func("/soft-cpu/invalidate-code", test_invalidate_code);
    g_test_add_func("/soft-cpu/dirty-tracking", test_dirty_tracking);
    g_test_add_func("/soft-cpu/dirty-pse-pde", test_dirty_pse_pde);
    g_test_add_func("/soft-cpu/split-lock-fault", test_split_lock_fault);
    g_test_add_func("/soft-cpu/reset", test_reset);
    g_test_add_func("/soft-cpu/get-state-pure", test_get_state_pure);
    g_test_add_func("/soft-cpu/hlt-interrupt", test_hlt_interrupt);
    g_test_add_func("/soft-cpu/triple-fault", test_triple_fault);
    g_test_add_func("/soft-cpu/unimplemented-ud", test_unimplemented_ud);
    g_test_add_func("/soft-cpu/xsave", test_xsave);
    g_test_add_func("/soft-cpu/tsc-frequency-leaves", test_tsc_frequency_leaves);
    g_test_add_func("/soft-cpu/cr4-unimplemented-bits", test_cr4_unimplemented_bits);
    g_test_add_func("/soft-cpu/walker-writes-code-page", test_walker_writes_code_page);
    g_test_add_func("/soft-cpu/single-step", test_single_step);
    g_test_add_func("/soft-cpu/fault-loop-budget", test_fault_loop_budget);
    g_test_add_func("/soft-cpu/insn-limit", test_insn_limit);
    g_test_add_func("/soft-cpu/sipi", test_sipi);
    g_test_add_func("/soft-cpu/mtrr-tsc-state", test_mtrr_tsc_state);
    return g_test_run();
}
