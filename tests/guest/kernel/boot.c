/*
 * Ring-0 boot: the PVH hand-off, command line, memory map, clock
 * calibration, and bringing up the other CPUs. Everything here runs in the
 * emulator on this project's host, so it does the least it can and leaves
 * memory work to ring 3.
 */
#include "kernel.h"

#define HVM_START_MAGIC     0x336ec578
#define E820_RAM            1
#define MIB                 (1ULL << 20)
#define GIB                 (1ULL << 30)
#define MAP_LIMIT           (64 * GIB)  /* identity map covers RAM below this */
#define PDE_RAM             0x87        /* present, writable, user, 2 MiB */
#define PTE_TABLE           0x07

#define LAPIC_ICR_LOW       0x300
#define LAPIC_ICR_HIGH      0x310
#define LAPIC_LVT_TIMER     0x320
#define LAPIC_TIMER_INIT    0x380
#define LAPIC_TIMER_CUR     0x390
#define LAPIC_TIMER_DIV     0x3e0
#define ICR_BUSY            0x1000
#define ICR_INIT_OTHERS     0x000c4500
#define ICR_SIPI_OTHERS     0x000c4600
#define ICR_FIXED_TO_BSP    0x00004000  /* fixed, physical, assert; APIC id 0 */

#define MSR_KVM_SYSTEM_TIME 0x4b564d01
#define KVM_FEATURE_CLOCKSOURCE2 (1u << 3)

#define AP_DEADLINE_MS      2000
#define AP_QUIET_MS         300         /* CPU count unknown: stop after this */

struct hvm_start_info {
    u32 magic;
    u32 version;
    u32 flags;
    u32 nr_modules;
    u64 modlist_paddr;
    u64 cmdline_paddr;
    u64 rsdp_paddr;
    u64 memmap_paddr;                   /* version >= 1 */
    u32 memmap_entries;
    u32 reserved;
};

struct hvm_memmap_entry {
    u64 addr;
    u64 size;
    u32 type;
    u32 reserved;
};

struct pvclock {
    volatile u32 version;
    u32 pad0;
    u64 tsc_timestamp;
    u64 system_time;
    volatile u32 tsc_to_system_mul;
    volatile int8_t tsc_shift;
    u8 flags;
    u8 pad[2];
};

struct boot_info boot;

static u8 ustacks[MAX_CPUS][USTACK_SIZE] __attribute__((aligned(16)));
static u64 high_pd[(MAP_LIMIT - 4 * GIB) / GIB][512] __attribute__((aligned(4096)));
static struct pvclock pvclock __attribute__((aligned(64)));
static u64 mapped_limit = 4 * GIB;
static u64 rsdp_hint;
static const char *clock_source = "pit";

extern u64 boot_pdpt[512];
extern u64 boot_entry_tsc;
extern volatile u32 next_cpu_index;
extern char trampoline_start[];
extern char trampoline_end[];

/* A physical address as a pointer, hidden from the compiler's bounds
 * checks (it warns about constant addresses in the first page). */
static inline void *phys(u64 pa)
{
    void *p;

    __asm__("" : "=r"(p) : "0"(pa));
    return p;
}

static u32 read32(const u8 *p)
{
    u32 v;

    __builtin_memcpy(&v, p, sizeof(v));
    return v;
}

static u64 read64(const u8 *p)
{
    u64 v;

    __builtin_memcpy(&v, p, sizeof(v));
    return v;
}

static u64 ms_to_tsc(u64 ms)
{
    return boot.tsc_hz / 1000 * ms;
}

static void tsc_delay(u64 cycles)
{
    u64 t0 = rdtsc();

    while (rdtsc() - t0 < cycles) {
        cpu_relax();
    }
}

static bool has_rdrand(void)
{
    u32 a, b, c, d;

    cpuid(1, &a, &b, &c, &d);
    return c & (1u << 30);
}

static u64 make_token(void)
{
    u64 token = mix64(boot.entry_tsc) ^ mix64(rdtsc() + 0x9e3779b97f4a7c15ULL);

    if (has_rdrand()) {
        for (int tries = 0; tries < 8; tries++) {
            u64 r;
            u8 ok;

            __asm__ volatile("rdrand %0; setc %1" : "=r"(r), "=qm"(ok));
            if (ok) {
                token ^= r;
                break;
            }
        }
    }
    /* Timing jitter of the calls above decorrelates VMs booted together. */
    return mix64(token ^ rdtsc());
}

static bool parse_u64(const char *s, u32 n, u64 *out)
{
    u64 v = 0;

    if (n == 0 || n > 18) {
        return false;
    }
    for (u32 i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (u64)(s[i] - '0');
    }
    *out = v;
    return true;
}

static bool key_is(const char *key, u32 n, const char *name)
{
    u32 i = 0;

    while (i < n && name[i] && key[i] == name[i]) {
        i++;
    }
    return i == n && !name[i];
}

static void set_option(const char *key, u32 klen, const char *val, u32 vlen)
{
    u64 v;

    if (key_is(key, klen, "rate") && key_is(val, vlen, "max")) {
        boot.rate_max = 1;
        return;
    }
    if (!parse_u64(val, vlen, &v)) {
        return;
    }
    if (key_is(key, klen, "mem")) {
        boot.mem_mib = v > 0xffffffff ? 0xffffffff : (u32)v;
    } else if (key_is(key, klen, "rate")) {
        boot.rate_max = 0;
        boot.rate = v;
    } else if (key_is(key, klen, "cpus")) {
        boot.cpus_wanted = v > MAX_CPUS ? MAX_CPUS : (u32)v;
    } else if (key_is(key, klen, "hb")) {
        boot.hb_ms = v > 3600000 ? 3600000 : (u32)v;
    } else if (key_is(key, klen, "verify")) {
        boot.verify = v != 0;
    }
}

static void parse_cmdline(const char *s)
{
    u32 i = 0;
    const u32 limit = 4096;

    while (i < limit && s[i]) {
        while (i < limit && s[i] == ' ') {
            i++;
        }
        u32 start = i;
        u32 eq = 0;
        while (i < limit && s[i] && s[i] != ' ') {
            if (s[i] == '=' && !eq) {
                eq = i;
            }
            i++;
        }
        if (eq) {
            set_option(s + start, eq - start, s + eq + 1, i - eq - 1);
        }
    }
}

static void add_ram(u64 start, u64 size)
{
    if (boot.nr_ram < RAM_REGIONS_MAX && size) {
        boot.ram[boot.nr_ram].start = start;
        boot.ram[boot.nr_ram].end = start + size;
        boot.nr_ram++;
    }
}

static void parse_start_info(u64 pa)
{
    const struct hvm_start_info *si = phys(pa);

    if (pa == 0 || pa >= mapped_limit || si->magic != HVM_START_MAGIC) {
        serial_puts("INFO no PVH start info; using defaults\n");
        return;
    }
    if (si->cmdline_paddr && si->cmdline_paddr < mapped_limit) {
        parse_cmdline(phys(si->cmdline_paddr));
    }
    rsdp_hint = si->rsdp_paddr;
    if (si->version >= 1 && si->memmap_paddr && si->memmap_paddr < mapped_limit) {
        const struct hvm_memmap_entry *e = phys(si->memmap_paddr);

        for (u32 i = 0; i < si->memmap_entries && i < 256; i++) {
            if (e[i].type == E820_RAM) {
                add_ram(e[i].addr, e[i].size);
            }
        }
        boot.have_memmap = true;
    }
}

/* The image maps 0-4 GiB; RAM above that gets page directories here. */
static void map_high_ram(void)
{
    u64 top = 0;

    for (u32 i = 0; i < boot.nr_ram; i++) {
        if (boot.ram[i].end > top) {
            top = boot.ram[i].end;
        }
    }
    if (top > MAP_LIMIT) {
        top = MAP_LIMIT;
    }
    for (u64 g = 4; g * GIB < top; g++) {
        u64 *pd = high_pd[g - 4];

        for (u64 i = 0; i < 512; i++) {
            pd[i] = (g * GIB + i * (2 * MIB)) | PDE_RAM;
        }
        boot_pdpt[g] = (u64)pd | PTE_TABLE;
        mapped_limit = (g + 1) * GIB;
    }
    /* No TLB flush: entries that were not present are never cached. */
}

/* TSC frequency from KVM's pvclock scale factors, when KVM offers them. */
static bool kvmclock_tsc_hz(u64 *hz)
{
    u32 a, b, c, d;
    u32 version, mul;
    int8_t shift;

    cpuid(0x40000000, &a, &b, &c, &d);
    if (b != 0x4b4d564b || c != 0x564b4d56 || d != 0x4d || a < 0x40000001) {
        return false;                   /* not "KVMKVMKVM" */
    }
    cpuid(0x40000001, &a, &b, &c, &d);
    if (!(a & KVM_FEATURE_CLOCKSOURCE2)) {
        return false;
    }
    wrmsr(MSR_KVM_SYSTEM_TIME, (u64)&pvclock | 1);
    for (int tries = 0; tries < 1000; tries++) {
        version = pvclock.version;
        __asm__ volatile("" ::: "memory");
        mul = pvclock.tsc_to_system_mul;
        shift = pvclock.tsc_shift;
        __asm__ volatile("" ::: "memory");
        if (version && !(version & 1) && version == pvclock.version) {
            break;
        }
        mul = 0;
    }
    wrmsr(MSR_KVM_SYSTEM_TIME, 0);
    if (!mul) {
        return false;
    }
    /* ns = ((tsc << shift) * mul) >> 32, so hz = 1e9 * 2^32 / mul / 2^shift */
    *hz = (1000000000ULL << 32) / mul;
    if (shift >= 0) {
        *hz >>= shift;
    } else {
        *hz <<= -shift;
    }
    return true;
}

static void lapic_count_start(void)
{
    lapic_write(LAPIC_TIMER_DIV, lapic_timer_divide);
    lapic_write(LAPIC_LVT_TIMER, 0x10000 | VEC_TIMER);     /* masked one-shot */
    lapic_write(LAPIC_TIMER_INIT, 0xffffffff);
}

static u64 lapic_count_elapsed(void)
{
    return 0xffffffffULL - lapic_read(LAPIC_TIMER_CUR);
}

/*
 * The TSC rate CPUID leaf 15H states (crystal clock times the TSC ratio),
 * as Intel CPUs and Ferry's software CPU report it; false if it says
 * nothing.
 */
static bool cpuid_tsc_hz(u64 *hz)
{
    u32 a, b, c, d;

    cpuid(0, &a, &b, &c, &d);
    if (a < 0x15) {
        return false;
    }
    cpuid(0x15, &a, &b, &c, &d);
    if (!a || !b || !c) {
        return false;
    }
    *hz = (u64)c * b / a;
    return true;
}

/*
 * TSC and local APIC timer rates. kvmclock or CPUID 15H give the TSC rate
 * for free and the APIC timer is measured over 1 ms; otherwise both are
 * measured over 10 ms of PIT channel 2.
 */
static void calibrate(void)
{
    u64 tsc_hz;
    u64 t0, t1, ticks;
    bool known = false;

    if (kvmclock_tsc_hz(&tsc_hz)) {
        clock_source = "kvmclock";
        known = true;
    } else if (cpuid_tsc_hz(&tsc_hz)) {
        clock_source = "cpuid";
        known = true;
    }
    if (known) {
        lapic_count_start();
        t0 = rdtsc();
        tsc_delay(tsc_hz / 1000);
        ticks = lapic_count_elapsed();
        t1 = rdtsc();
        boot.tsc_hz = tsc_hz;
        lapic_timer_count = ticks * (tsc_hz / 100) / (t1 - t0);
    } else {
        const u16 latch = 11932;        /* 10 ms of the 1.193182 MHz PIT */
        u8 port61 = inb(0x61);

        outb(0x61, (port61 & ~0x02) | 0x01);    /* gate on, speaker off */
        outb(0x43, 0xb0);               /* channel 2, lo/hi, mode 0 */
        outb(0x42, latch & 0xff);
        outb(0x42, latch >> 8);
        lapic_count_start();
        t0 = rdtsc();
        while (!(inb(0x61) & 0x20)) {
            if (rdtsc() - t0 > (1ULL << 34)) {
                break;                  /* no PIT: the numbers below are junk */
            }
        }
        ticks = lapic_count_elapsed();
        t1 = rdtsc();
        boot.tsc_hz = (t1 - t0) * 100;
        lapic_timer_count = ticks;
    }
    if (boot.tsc_hz < 1000000) {
        boot.tsc_hz = 1000000;
    }
    if (lapic_timer_count < 100) {
        lapic_timer_count = 100;
    }
}

static u64 find_rsdp(void)
{
    const u64 signature = 0x2052545020445352ULL;     /* "RSD PTR " */
    u64 ebda = (u64)*(volatile u16 *)phys(0x40e) << 4;

    if (rsdp_hint) {
        return rsdp_hint < mapped_limit ? rsdp_hint : 0;
    }
    if (ebda >= 0x80000 && ebda < 0xa0000) {
        for (u64 pa = ebda; pa < ebda + 1024; pa += 16) {
            if (read64(phys(pa)) == signature) {
                return pa;
            }
        }
    }
    for (u64 pa = 0xe0000; pa < 0x100000; pa += 16) {
        if (read64(phys(pa)) == signature) {
            return pa;
        }
    }
    return 0;
}

static bool table_ok(u64 pa)
{
    u32 len;

    if (!pa || pa + 36 > mapped_limit) {
        return false;
    }
    len = read32((const u8 *)phys(pa) + 4);
    return len >= 36 && len < 65536 && pa + len <= mapped_limit;
}

/* Enabled processors in the MADT; 0 if there is no ACPI to ask. */
static u32 madt_cpu_count(void)
{
    u64 rsdp = find_rsdp();
    const u8 *r = phys(rsdp);
    u64 sdt;
    u32 entry_size = 4;

    if (!rsdp) {
        return 0;
    }
    sdt = read32(r + 16);
    if (r[15] >= 2 && read64(r + 24) && read64(r + 24) < mapped_limit) {
        sdt = read64(r + 24);
        entry_size = 8;
    }
    if (!table_ok(sdt)) {
        return 0;
    }
    const u8 *s = phys(sdt);
    u32 n = (read32(s + 4) - 36) / entry_size;
    for (u32 i = 0; i < n; i++) {
        const u8 *e = s + 36 + i * entry_size;
        u64 pa = entry_size == 8 ? read64(e) : read32(e);

        if (!table_ok(pa) || memcmp(phys(pa), "APIC", 4)) {
            continue;
        }
        const u8 *m = phys(pa);
        u32 len = read32(m + 4);
        u32 count = 0;
        for (u32 off = 44; off + 2 <= len; off += m[off + 1]) {
            u8 type = m[off];
            u8 elen = m[off + 1];

            if (elen < 2 || off + elen > len) {
                break;
            }
            if (type == 0 && elen >= 8 && (read32(m + off + 4) & 1)) {
                count++;
            } else if (type == 9 && elen >= 16 && (read32(m + off + 8) & 1)) {
                count++;
            }
        }
        return count;
    }
    return 0;
}

static void send_ipi(u32 icr)
{
    for (int spins = 0; spins < 100000 && (lapic_read(LAPIC_ICR_LOW) & ICR_BUSY); spins++) {
        cpu_relax();
    }
    lapic_write(LAPIC_ICR_HIGH, 0);
    lapic_write(LAPIC_ICR_LOW, icr);
}

static void start_aps(void)
{
    u32 vector = TRAMPOLINE_ADDR >> 12;

    memcpy(phys(TRAMPOLINE_ADDR), trampoline_start,
           trampoline_end - trampoline_start);
    next_cpu_index = 1;
    __asm__ volatile("mfence" ::: "memory");
    /* KVM needs none of the long waits real hardware asks for. */
    send_ipi(ICR_INIT_OTHERS);
    tsc_delay(boot.tsc_hz / 10000);
    send_ipi(ICR_SIPI_OTHERS | vector);
    tsc_delay(boot.tsc_hz / 5000);
    send_ipi(ICR_SIPI_OTHERS | vector);
}

/* Sleep on the timer between checks: spinning here would be emulated. */
static u32 wait_for_aps(u32 expected)
{
    u64 start = rdtsc();
    u64 last_change = start;
    u32 seen = boot.cpus_up;

    for (;;) {
        u32 up = boot.cpus_up;
        u64 now = rdtsc();

        if (expected && up >= expected) {
            return up;
        }
        if (now - start > ms_to_tsc(AP_DEADLINE_MS)) {
            return up;
        }
        if (up != seen) {
            seen = up;
            last_change = now;
        }
        if (!expected && now - last_change > ms_to_tsc(AP_QUIET_MS)) {
            return up;
        }
        __asm__ volatile("sti; hlt; cli" ::: "memory");
    }
}

static void print_u64_line(const char *a, u64 v, const char *b)
{
    struct line l;

    line_reset(&l);
    line_str(&l, a);
    line_u64(&l, v);
    line_str(&l, b);
    serial_print_line(&l);
}

static u64 user_stack_top(u32 index)
{
    /* As if called: the ABI wants rsp + 8 aligned to 16 at entry. */
    return (u64)&ustacks[index][USTACK_SIZE] - 8;
}

void boot_main(u64 start_info_pa)
{
    struct line l;
    u32 expected, up;
    u64 aps_tsc;

    boot.entry_tsc = boot_entry_tsc;
    serial_init();
    boot.token = make_token();
    line_reset(&l);
    line_str(&l, "FERRY-TESTKERNEL boot token=");
    line_hex16(&l, boot.token);
    serial_print_line(&l);

    boot.mem_mib = 64;
    boot.rate_max = 1;
    boot.hb_ms = 100;
    boot.verify = 1;
    parse_start_info(start_info_pa);
    map_high_ram();
    calibrate();

    /* Mask the legacy PIC: its vectors would land on exception gates. */
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    trap_init();
    cpu_setup(0);
    boot.cpus_up = 1;
    power_button_enable();

    expected = boot.cpus_wanted ? boot.cpus_wanted : madt_cpu_count();
    if (expected > MAX_CPUS) {
        expected = MAX_CPUS;
    }
    aps_tsc = rdtsc();
    if (expected != 1) {
        start_aps();
        up = wait_for_aps(expected);
    } else {
        up = 1;
    }
    aps_tsc = rdtsc() - aps_tsc;
    boot.participants = up;
    if (boot.cpus_wanted && boot.cpus_wanted < up) {
        boot.participants = boot.cpus_wanted;
    }
    print_u64_line("CPUS ", up, " up");

    line_reset(&l);
    line_str(&l, "INFO clock=");
    line_str(&l, clock_source);
    line_str(&l, " tsc-khz=");
    line_u64(&l, boot.tsc_hz / 1000);
    line_str(&l, " apic-timer-count=");
    line_u64(&l, lapic_timer_count);
    line_str(&l, " cpus-expected=");
    line_u64(&l, expected);
    line_str(&l, " smp-us=");
    line_u64(&l, aps_tsc / (boot.tsc_hz / 1000000));
    line_str(&l, " ring0-us=");
    line_u64(&l, (rdtsc() - boot.entry_tsc) / (boot.tsc_hz / 1000000));
    serial_print_line(&l);

    enter_user((u64)user_main, user_stack_top(0), 0);
}

void ap_main(u32 index)
{
    u32 slot;

    cpu_setup(index);
    /* Arrival order decides who joins the workload; see wait_for_aps(). */
    slot = __atomic_fetch_add(&boot.cpus_up, 1, __ATOMIC_SEQ_CST);
    /* Wake the BSP from its hlt in wait_for_aps() now, not at its next tick. */
    send_ipi(ICR_FIXED_TO_BSP | VEC_TIMER);
    enter_user((u64)user_main, user_stack_top(index), slot);
}
