/*
 * The software CPU side of a differential case.
 *
 * Guest-physical memory is a few host buffers, identity-mapped by 4-level
 * page tables: the kernel area (tables, GDT, IDT, TSS, handlers, kernel
 * stack) supervisor-only, the code page user read-write-execute, the data
 * pages user read-write no-execute, the read-only page user read-only. The
 * case runs at CPL 3 with the same segment selectors Linux gives a 64-bit
 * process, so privileged instructions fault as they do natively.
 *
 * Every vector's gate points at its own HLT in the handler page. The code
 * is followed by INT3: a #BP whose saved RIP is just past the code means
 * the case finished; any other vector is the case's exception, and the
 * frame the CPU pushed on the TSS stack gives the faulting RIP, RSP and
 * RFLAGS.
 */
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "accel/soft-cpu.h"
#include "soft-exec.h"

#define KERN_ADDR       0x00100000ULL
#define KERN_SIZE       0x10000
#define KERN_PML4       (KERN_ADDR + 0x0000)
#define KERN_PDPT       (KERN_ADDR + 0x1000)
#define KERN_PD         (KERN_ADDR + 0x2000)
#define KERN_PT_LOW     (KERN_ADDR + 0x3000)    /* maps the kernel area */
#define KERN_PT_CASE    (KERN_ADDR + 0x4000)    /* maps code, data, RO */
#define KERN_GDT        (KERN_ADDR + 0x5000)
#define KERN_IDT        (KERN_ADDR + 0x6000)
#define KERN_TSS        (KERN_ADDR + 0x7000)
#define KERN_HANDLERS   (KERN_ADDR + 0x8000)    /* vector v: HLT at +v */
#define KERN_STACK_TOP  (KERN_ADDR + 0xc000)

/* Linux's 64-bit selectors, which a case can read with MOV r, Sreg. */
#define SEL_KERNEL_CS   0x10
#define SEL_KERNEL_DS   0x18
#define SEL_USER_DS     0x2b
#define SEL_USER_CS     0x33
#define SEL_TSS         0x40

#define PTE_P           (1ULL << 0)
#define PTE_W           (1ULL << 1)
#define PTE_U           (1ULL << 2)
#define PTE_NX          (1ULL << 63)

#define SOFT_MAX_INSNS  2000000

struct SoftEnv {
    SoftCPU *cpu;
    uint8_t *kern;
    uint8_t *code;
    uint8_t *data;
    uint8_t *ro;
    X86CPUState *st;            /* the template state, then scratch */
    unsigned io_accesses;       /* port or MMIO accesses: never expected */
};

bool soft_env_available(void)
{
    return true;
}

static uint8_t *soft_ram_page(void *opaque, uint64_t gpa)
{
    SoftEnv *env = opaque;
    uint64_t page = gpa & ~0xfffULL;

    if (page >= KERN_ADDR && page < KERN_ADDR + KERN_SIZE) {
        return env->kern + (page - KERN_ADDR);
    }
    if (page == DIFF_CODE_ADDR) {
        return env->code;
    }
    if (page >= DIFF_DATA_ADDR && page < DIFF_DATA_ADDR + DIFF_DATA_SIZE) {
        return env->data + (page - DIFF_DATA_ADDR);
    }
    if (page == DIFF_RO_ADDR) {
        return env->ro;
    }
    return NULL;
}

static void soft_mark_dirty(void *opaque, uint64_t gpa_page)
{
}

static uint64_t soft_mmio_read(void *opaque, uint64_t gpa, unsigned size)
{
    ((SoftEnv *)opaque)->io_accesses++;
    return ~0ULL;
}

static void soft_mmio_write(void *opaque, uint64_t gpa, uint64_t value, unsigned size)
{
    ((SoftEnv *)opaque)->io_accesses++;
}

static uint32_t soft_pio_read(void *opaque, uint16_t port, unsigned size)
{
    ((SoftEnv *)opaque)->io_accesses++;
    return ~0U;
}

static void soft_pio_write(void *opaque, uint16_t port, uint32_t value, unsigned size)
{
    ((SoftEnv *)opaque)->io_accesses++;
}

static int soft_get_interrupt(void *opaque)
{
    return -1;
}

static void soft_ack_interrupt(void *opaque, int vector)
{
}

static bool soft_rdmsr(void *opaque, uint32_t msr, uint64_t *value)
{
    return false;
}

static bool soft_wrmsr(void *opaque, uint32_t msr, uint64_t value)
{
    return false;
}

static uint64_t soft_read_cr8(void *opaque)
{
    return 0;
}

static void soft_write_cr8(void *opaque, uint64_t value)
{
}

static uint64_t soft_read_tsc(void *opaque)
{
    return 0;
}

static const SoftCPUHooks soft_hooks = {
    .ram_page = soft_ram_page,
    .mark_dirty = soft_mark_dirty,
    .mmio_read = soft_mmio_read,
    .mmio_write = soft_mmio_write,
    .pio_read = soft_pio_read,
    .pio_write = soft_pio_write,
    .get_interrupt = soft_get_interrupt,
    .ack_interrupt = soft_ack_interrupt,
    .rdmsr = soft_rdmsr,
    .wrmsr = soft_wrmsr,
    .read_cr8 = soft_read_cr8,
    .write_cr8 = soft_write_cr8,
    .read_tsc = soft_read_tsc,
};

static void soft_put64(SoftEnv *env, uint64_t gpa, uint64_t v)
{
    memcpy(env->kern + (gpa - KERN_ADDR), &v, 8);
}

static uint64_t soft_get64(SoftEnv *env, uint64_t gpa)
{
    uint64_t v = 0;

    if (gpa >= KERN_ADDR && gpa + 8 <= KERN_ADDR + KERN_SIZE) {
        memcpy(&v, env->kern + (gpa - KERN_ADDR), 8);
    }
    return v;
}

/* A code/data segment descriptor from its parts. */
static uint64_t soft_seg_desc(unsigned type, unsigned dpl, bool l, bool db)
{
    return 0xffffULL | (0xfULL << 48) |            /* limit 0xfffff */
           ((uint64_t)type << 40) | (1ULL << 44) |  /* S: code/data */
           ((uint64_t)dpl << 45) | (1ULL << 47) |   /* P */
           ((uint64_t)l << 53) | ((uint64_t)db << 54) | (1ULL << 55);  /* G */
}

static void soft_build_kernel(SoftEnv *env)
{
    /* Paging: PML4[0] -> PDPT[0] -> PD[0] (kernel), PD[0x80] (case pages). */
    soft_put64(env, KERN_PML4, KERN_PDPT | PTE_P | PTE_W | PTE_U);
    soft_put64(env, KERN_PDPT, KERN_PD | PTE_P | PTE_W | PTE_U);
    soft_put64(env, KERN_PD + 8 * (KERN_ADDR >> 21), KERN_PT_LOW | PTE_P | PTE_W | PTE_U);
    soft_put64(env, KERN_PD + 8 * (DIFF_CODE_ADDR >> 21),
               KERN_PT_CASE | PTE_P | PTE_W | PTE_U);
    for (uint64_t a = KERN_ADDR; a < KERN_ADDR + KERN_SIZE; a += 0x1000) {
        soft_put64(env, KERN_PT_LOW + 8 * ((a >> 12) & 511), a | PTE_P | PTE_W);
    }
    soft_put64(env, KERN_PT_CASE + 8 * ((DIFF_CODE_ADDR >> 12) & 511),
               DIFF_CODE_ADDR | PTE_P | PTE_W | PTE_U);
    for (uint64_t a = DIFF_DATA_ADDR; a < DIFF_DATA_ADDR + DIFF_DATA_SIZE; a += 0x1000) {
        soft_put64(env, KERN_PT_CASE + 8 * ((a >> 12) & 511),
                   a | PTE_P | PTE_W | PTE_U | PTE_NX);
    }
    soft_put64(env, KERN_PT_CASE + 8 * ((DIFF_RO_ADDR >> 12) & 511),
               DIFF_RO_ADDR | PTE_P | PTE_U | PTE_NX);

    /* GDT: Linux's layout for the selectors that matter. */
    soft_put64(env, KERN_GDT + SEL_KERNEL_CS, soft_seg_desc(0xb, 0, true, false));
    soft_put64(env, KERN_GDT + SEL_KERNEL_DS, soft_seg_desc(0x3, 0, false, true));
    soft_put64(env, KERN_GDT + (SEL_USER_DS & ~7), soft_seg_desc(0x3, 3, false, true));
    soft_put64(env, KERN_GDT + (SEL_USER_CS & ~7), soft_seg_desc(0xb, 3, true, false));
    {
        uint64_t base = KERN_TSS, limit = 0x67;
        uint64_t lo = (limit & 0xffff) | ((base & 0xffffff) << 16) |
                      (0xbULL << 40) | (1ULL << 47) | ((base >> 24 & 0xff) << 56);
        soft_put64(env, KERN_GDT + SEL_TSS, lo);
        soft_put64(env, KERN_GDT + SEL_TSS + 8, base >> 32);
    }
    /* TSS: RSP0 is the only field the ring change needs. */
    soft_put64(env, KERN_TSS + 4, KERN_STACK_TOP);

    /* IDT: interrupt gates to each vector's HLT; only #BP is reachable by INT3. */
    for (unsigned v = 0; v < 256; v++) {
        uint64_t off = KERN_HANDLERS + v;
        unsigned dpl = (v == 3 || v == 4) ? 3 : 0;
        uint64_t lo = (off & 0xffff) | ((uint64_t)SEL_KERNEL_CS << 16) |
                      (0xeULL << 40) | ((uint64_t)dpl << 45) | (1ULL << 47) |
                      ((off >> 16 & 0xffff) << 48);
        soft_put64(env, KERN_IDT + 16 * v, lo);
        soft_put64(env, KERN_IDT + 16 * v + 8, off >> 32);
        env->kern[KERN_HANDLERS - KERN_ADDR + v] = 0xf4;
    }
}

static void soft_seg(X86Segment *s, uint16_t sel, uint8_t type, uint8_t dpl, bool l, bool db)
{
    *s = (X86Segment){ .base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
                       .s = 1, .dpl = dpl, .present = 1, .l = l, .db = db, .g = 1 };
}

static void soft_build_state(X86CPUState *st)
{
    memset(st, 0, sizeof(*st));
    soft_seg(&st->segs[X86_SEG_CS], SEL_USER_CS, 0xb, 3, true, false);
    soft_seg(&st->segs[X86_SEG_SS], SEL_USER_DS, 0x3, 3, false, true);
    for (int s = X86_SEG_ES; s <= X86_SEG_GS; s++) {
        if (s != X86_SEG_CS && s != X86_SEG_SS) {
            st->segs[s] = (X86Segment){ .unusable = 1 };
        }
    }
    st->segs[X86_SEG_LDT] = (X86Segment){ .unusable = 1 };
    st->segs[X86_SEG_TR] = (X86Segment){ .base = KERN_TSS, .limit = 0x67,
                                         .selector = SEL_TSS, .type = 0xb,
                                         .present = 1 };
    st->gdt = (X86DescTable){ .base = KERN_GDT, .limit = 0x4f };
    st->idt = (X86DescTable){ .base = KERN_IDT, .limit = 0xfff };
    /* What Linux runs user code with; AM makes EFLAGS.AC checks live. */
    st->cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE | X86_CR0_WP |
              X86_CR0_AM | X86_CR0_PG;
    st->cr3 = KERN_PML4;
    st->cr4 = X86_CR4_PAE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;
    st->efer = X86_EFER_SCE | X86_EFER_LME | X86_EFER_LMA | X86_EFER_NXE;
    st->xcr0 = 1;
    st->dr6 = 0xffff0ff0;
    st->dr7 = 0x400;
    st->apic_base = X86_APIC_BASE_DEFAULT | X86_APIC_BASE_BSP | X86_APIC_BASE_ENABLE;
    st->pat = 0x0007040600070406ULL;
    st->xsave_len = X86_FXSAVE_SIZE;
    st->mp_state = X86_MP_RUNNABLE;
}

SoftEnv *soft_env_new(void)
{
    SoftEnv *env = g_new0(SoftEnv, 1);

    env->kern = g_malloc0(KERN_SIZE);
    env->code = g_malloc0(DIFF_CODE_SIZE);
    env->data = g_malloc0(DIFF_DATA_SIZE);
    env->ro = g_malloc0(0x1000);
    env->st = g_malloc0(sizeof(X86CPUState));
    soft_build_kernel(env);
    diff_fill_ro(env->ro);
    env->cpu = soft_cpu_new(&soft_hooks, env, 0, 1);
    return env;
}

void soft_env_free(SoftEnv *env)
{
    if (!env) {
        return;
    }
    if (env->cpu) {
        soft_cpu_free(env->cpu);
    }
    g_free(env->kern);
    g_free(env->code);
    g_free(env->data);
    g_free(env->ro);
    g_free(env->st);
    g_free(env);
}

void soft_env_run(SoftEnv *env, const DiffCase *c, DiffResult *r)
{
    X86CPUState *st = env->st;
    SoftCPUExit ex;
    uint64_t end = DIFF_CODE_ADDR + c->code_len;

    memset(r, 0, offsetof(DiffResult, data));
    if (!env->cpu) {
        r->end = DIFF_END_ERROR;
        snprintf(r->note, sizeof(r->note), "soft_cpu_new failed");
        return;
    }

    memset(env->code, 0xcc, DIFF_CODE_SIZE);
    memcpy(env->code, c->code, c->code_len);
    diff_fill_data(c, env->data);
    diff_fill_ro(env->ro);
    env->io_accesses = 0;
    /* The buffers changed behind the CPU's back, as a loader's writes would. */
    soft_cpu_invalidate_code(env->cpu, DIFF_CODE_ADDR, DIFF_CODE_SIZE);
    soft_cpu_invalidate_code(env->cpu, DIFF_DATA_ADDR, DIFF_DATA_SIZE);
    soft_cpu_flush_tlb(env->cpu);

    soft_build_state(st);
    memcpy(st->regs, c->in.gpr, sizeof(st->regs));
    st->rip = DIFF_CODE_ADDR;
    st->rflags = (c->in.rflags & DIFF_FLAGS_USER) | X86_RFLAGS_FIXED | X86_RFLAGS_IF;
    memcpy(st->xsave, c->in.fx, 512);
    soft_cpu_set_state(env->cpu, st);

    ex = soft_cpu_run(env->cpu, SOFT_MAX_INSNS);
    soft_cpu_get_state(env->cpu, st);

    memcpy(r->regs.gpr, st->regs, sizeof(r->regs.gpr));
    r->regs.rip = st->rip;
    r->regs.rflags = st->rflags;
    memcpy(r->regs.fx, st->xsave, 512);
    memcpy(r->data, env->data, DIFF_DATA_SIZE);

    if (ex != SOFT_EXIT_HALTED || st->rip <= KERN_HANDLERS ||
        st->rip > KERN_HANDLERS + 256) {
        static const char *const names[] = { "kicked", "halted", "shutdown (triple fault)",
                                             "instruction limit", "internal error" };
        r->end = DIFF_END_ERROR;
        snprintf(r->note, sizeof(r->note), "soft CPU stopped: %s at rip %#llx",
                 (unsigned)ex < G_N_ELEMENTS(names) ? names[ex] : "?",
                 (unsigned long long)st->rip);
        return;
    }

    /* Halted in a handler: the frame on the kernel stack is the user's state. */
    int v = (int)(st->rip - 1 - KERN_HANDLERS);
    uint64_t sp = st->regs[X86_RSP];
    if (diff_vector_has_error(v)) {
        r->error_code = (uint32_t)soft_get64(env, sp);
        sp += 8;
    }
    r->regs.rip = soft_get64(env, sp);
    r->regs.rflags = soft_get64(env, sp + 16);
    r->regs.gpr[X86_RSP] = soft_get64(env, sp + 24);
    if (v == 3 && r->regs.rip == end + 1) {
        r->end = DIFF_END_OK;
        r->regs.rip = end;
        r->error_code = 0;
    } else {
        r->end = DIFF_END_EXCEPTION;
        r->vector = v;
        r->cr2 = v == 14 ? st->cr2 : 0;
    }
    if (env->io_accesses) {
        snprintf(r->note, sizeof(r->note), "%u port/MMIO accesses", env->io_accesses);
    }
}
