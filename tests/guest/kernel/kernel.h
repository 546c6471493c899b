/*
 * Ferry test kernel: definitions shared by the assembly entry, the ring-0
 * code and the ring-3 workload.
 *
 * Everything is identity mapped and user-accessible, so ring 3 reads the
 * ring-0 state below directly; it only enters ring 0 for port I/O and hlt.
 */
#ifndef FERRY_TESTKERNEL_H
#define FERRY_TESTKERNEL_H

#define MAX_CPUS            64
#define KSTACK_SIZE         8192        /* power of two: see this_cpu() */
#define USTACK_SIZE         16384

#define SEL_CODE64          0x08
#define SEL_DATA            0x10
#define SEL_CODE32          0x18
#define SEL_UDATA           0x23        /* 0x20 | RPL 3 */
#define SEL_UCODE64         0x2b        /* 0x28 | RPL 3 */
#define SEL_TSS0            0x30        /* 16 bytes per CPU from here */

#define VEC_UD              6
#define VEC_TIMER           0x40
#define VEC_SPURIOUS        0xff

#define LAPIC_BASE          0xfee00000UL
#define LAPIC_EOI           0xb0

#define TRAMPOLINE_ADDR     0x8000      /* SIPI vector 0x08 */

/*
 * A ring-3 service request is "ud2" followed by this 16-bit tag; the #UD
 * handler checks the tag, performs the service named in rax and resumes
 * after the tag. (int N from ring 3 does not reach its gate on this host.)
 */
#define SVC_TAG             0x7946
#define SVC_WRITE           1           /* rdi = buffer, rsi = length */
#define SVC_IDLE            2           /* sleep until the next interrupt */

/* Offsets into struct cpu used by the timer stub in entry.S. */
#define CPU_TICKS_OFF       0
#define CPU_INDEX_OFF       8

#ifndef __ASSEMBLER__

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

struct cpu {
    volatile u64 ticks;                 /* timer interrupts on this CPU */
    u32 index;                          /* order of arrival, BSP = 0 */
    u32 pad0;
    u64 kstack_top;
    u64 pad[5];                         /* one cache line per CPU */
};

#define RAM_REGIONS_MAX     32

struct ram_region {
    u64 start;
    u64 end;
};

/* What ring 0 found at boot; read-only to ring 3 once workload starts. */
struct boot_info {
    u64 token;
    u64 tsc_hz;
    u64 entry_tsc;                      /* TSC at the PVH entry point */
    u32 mem_mib;                        /* requested by the command line */
    u32 rate_max;                       /* 1: rate=max */
    u64 rate;                           /* page writes per second, total */
    u32 cpus_wanted;                    /* 0: all that arrive */
    u32 hb_ms;
    u32 verify;
    u32 nr_ram;
    struct ram_region ram[RAM_REGIONS_MAX];
    bool have_memmap;
    volatile u32 cpus_up;               /* CPUs that reached ring 3 setup */
    u32 participants;                   /* fixed by the BSP after the wait */
};

extern struct boot_info boot;
extern struct cpu cpus[MAX_CPUS];
extern u8 kstacks[MAX_CPUS][KSTACK_SIZE];

/* fmt.c: line building shared by both rings (no I/O). */
struct line {
    char buf[160];
    u32 len;
};

void line_reset(struct line *l);
void line_str(struct line *l, const char *s);
void line_u64(struct line *l, u64 v);
void line_hex16(struct line *l, u64 v);
void line_hex(struct line *l, u64 v);
void line_end(struct line *l);
u64 mix64(u64 x);

void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);

static inline u64 rdtsc(void)
{
    u32 lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((u64)hi << 32) | lo;
}

static inline void cpu_relax(void)
{
    __asm__ volatile("pause" ::: "memory");
}

/* Ring 0 only. The struct cpu pointer sits in the top slot of the kernel
 * stack, which is aligned to its size (set up by cpu_setup()). */
static inline struct cpu *this_cpu(void)
{
    u64 sp;

    __asm__("mov %%rsp, %0" : "=r"(sp));
    return *(struct cpu **)((sp | (KSTACK_SIZE - 1)) - 7);
}

/* Ring 0 only. */
void serial_init(void);
void serial_write(const char *s, u32 n);
void serial_print_line(struct line *l);
void serial_puts(const char *s);
int serial_getc(void);
void trap_init(void);
void cpu_setup(u32 index);
void lapic_timer_start(void);
void enter_user(u64 rip, u64 rsp, u64 arg) __attribute__((noreturn));
void halt_forever(void) __attribute__((noreturn));
void power_off(void) __attribute__((noreturn));
void reboot(void) __attribute__((noreturn));
void boot_main(u64 start_info_pa);
void ap_main(u32 index);
void bsp_tick(void);
void power_button_enable(void);

extern u64 lapic_timer_count;
extern u32 lapic_timer_divide;

static inline u32 lapic_read(u32 reg)
{
    return *(volatile u32 *)(LAPIC_BASE + reg);
}

static inline void lapic_write(u32 reg, u32 v)
{
    *(volatile u32 *)(LAPIC_BASE + reg) = v;
}

static inline void outb(u16 port, u8 v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(u16 port, u16 v)
{
    __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline u8 inb(u16 port)
{
    u8 v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline u16 inw(u16 port)
{
    u16 v;
    __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline u64 rdmsr(u32 msr)
{
    u32 lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((u64)hi << 32) | lo;
}

static inline void wrmsr(u32 msr, u64 v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((u32)v), "d"((u32)(v >> 32)));
}

static inline void cpuid(u32 leaf, u32 *a, u32 *b, u32 *c, u32 *d)
{
    __asm__ volatile("cpuid"
                     : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d)
                     : "a"(leaf), "c"(0));
}

/* Ring 3 entry points (workload.c). */
void user_main(u64 cpu_index) __attribute__((noreturn));

#endif /* __ASSEMBLER__ */
#endif /* FERRY_TESTKERNEL_H */
