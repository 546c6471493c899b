/*
 * Per-CPU ring-0 state: TSS, descriptor tables, local APIC and its timer.
 * Every CPU runs cpu_setup() once on its own kernel stack.
 */
#include "kernel.h"

#define LAPIC_TPR           0x80
#define LAPIC_SVR           0xf0
#define LAPIC_LVT_TIMER     0x320
#define LAPIC_LVT_LINT0     0x350
#define LAPIC_LVT_LINT1     0x360
#define LAPIC_TIMER_INIT    0x380
#define LAPIC_TIMER_DIV     0x3e0
#define LVT_MASKED          0x10000
#define LVT_PERIODIC        0x20000
#define SVR_ENABLE          0x100

struct tss {
    u32 reserved0;
    u64 rsp[3];
    u64 reserved1;
    u64 ist[7];
    u64 reserved2;
    u16 reserved3;
    u16 iomap_base;
} __attribute__((packed));

struct idt_gate {
    u16 offset_low;
    u16 selector;
    u8 ist;
    u8 type;
    u16 offset_mid;
    u32 offset_high;
    u32 reserved;
};

struct descriptor_ptr {
    u16 limit;
    u64 base;
} __attribute__((packed));

struct cpu cpus[MAX_CPUS] __attribute__((aligned(64)));
u8 kstacks[MAX_CPUS][KSTACK_SIZE] __attribute__((aligned(KSTACK_SIZE)));

static struct tss tss[MAX_CPUS] __attribute__((aligned(16)));
static struct idt_gate idt[256] __attribute__((aligned(16)));

extern u64 gdt[];
extern const u64 exception_stubs[32];
extern char timer_stub[];
extern char spurious_stub[];

u64 lapic_timer_count;
u32 lapic_timer_divide = 0x3;           /* divide by 16 */

static void set_gate(u32 vector, u64 handler)
{
    struct idt_gate *g = &idt[vector];

    g->offset_low = handler & 0xffff;
    g->selector = SEL_CODE64;
    g->ist = 0;
    g->type = 0x8e;                     /* present, DPL 0, interrupt gate */
    g->offset_mid = (handler >> 16) & 0xffff;
    g->offset_high = handler >> 32;
    g->reserved = 0;
}

/* BSP only, before any other CPU runs; unused vectors stay not-present. */
void trap_init(void)
{
    for (u32 v = 0; v < 32; v++) {
        set_gate(v, exception_stubs[v]);
    }
    set_gate(VEC_TIMER, (u64)timer_stub);
    set_gate(VEC_SPURIOUS, (u64)spurious_stub);
}

static void load_tss(u32 index)
{
    struct tss *t = &tss[index];
    u64 base = (u64)t;
    u64 limit = sizeof(*t) - 1;
    u32 slot = (SEL_TSS0 / 8) + index * 2;

    t->rsp[0] = cpus[index].kstack_top;
    t->iomap_base = sizeof(*t);         /* no I/O bitmap */
    gdt[slot] = (limit & 0xffff) | ((base & 0xffffff) << 16) |
                (0x89ULL << 40) |       /* present, available 64-bit TSS */
                ((limit >> 16 & 0xf) << 48) | ((base >> 24 & 0xff) << 56);
    gdt[slot + 1] = base >> 32;
    __asm__ volatile("ltr %w0" : : "r"(SEL_TSS0 + index * 16) : "memory");
}

void lapic_timer_start(void)
{
    lapic_write(LAPIC_TIMER_DIV, lapic_timer_divide);
    lapic_write(LAPIC_LVT_TIMER, VEC_TIMER | LVT_PERIODIC);
    lapic_write(LAPIC_TIMER_INIT, (u32)lapic_timer_count);
}

void cpu_setup(u32 index)
{
    struct cpu *c = &cpus[index];
    u64 top = (u64)&kstacks[index][KSTACK_SIZE];
    struct descriptor_ptr idtr = { sizeof(idt) - 1, (u64)idt };

    /* The timer stub finds struct cpu here; see entry.S. */
    *(struct cpu **)(top - 8) = c;
    c->index = index;
    c->kstack_top = top - 16;

    load_tss(index);
    __asm__ volatile("lidt %0" : : "m"(idtr));

    lapic_write(LAPIC_SVR, SVR_ENABLE | VEC_SPURIOUS);
    lapic_write(LAPIC_TPR, 0);
    /* Legacy PIC interrupts and NMIs through LINT are not wanted. */
    lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
    lapic_write(LAPIC_LVT_LINT1, LVT_MASKED);
    lapic_timer_start();
}
