/*
 * Per-vCPU state for migration: what KVM holds for a vCPU, fetched into a
 * plain struct before saving (pre_save) and put back after loading
 * (post_load), described field by field so the stream is independent of
 * the host's struct layouts.
 *
 * Saved: general registers, system registers (KVM_GET_SREGS2 with the
 * PAE PDPTRs where KVM has it), the XSAVE area (its size from
 * KVM_CAP_XSAVE2), XCRs, debug registers, the local APIC page, pending
 * events, the MP state, the TSC frequency and the MSRs that matter (the
 * architectural and KVM paravirtual MSRs this host's KVM lists, plus PAT
 * and the MTRRs, which KVM always handles).
 *
 * Saving runs with every vCPU paused and any port or MMIO read it was in
 * completed (kvm-cpu.c); loading runs on vCPUs that have not run yet.
 * Loading checks everything first (MSRs this KVM does not know, an XSAVE
 * area larger than this host's, a TSC frequency it can neither match nor
 * scale to) and only then writes, in the order KVM needs: TSC frequency,
 * registers, XSAVE, XCRs, system registers (APIC base before the APIC),
 * MSRs, MP state, local APIC, TSC deadline (the APIC load resets the
 * timer), events, debug registers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "accel/kvm.h"
#include "migration/register.h"
#include "migration/vmstate.h"

/* MSRs on the wire per vCPU, at most (the list below has fewer). */
#define KVM_CPU_MAX_MSRS        256
/* XSAVE area on the wire, at most; KVM's is 4 KiB, more with AMX. */
#define KVM_CPU_XSAVE_MAX       (256 * 1024)
#define KVM_CPU_XSAVE_LEGACY    4096
/* KVM's own tolerance before it scales a TSC. */
#define KVM_TSC_TOLERANCE_PPM   250

#define MSR_IA32_TSC_DEADLINE   0x6e0
#define MSR_KVM_SYSTEM_TIME     0x12
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01

/*
 * The MSRs worth carrying, in the order they are written back (PMU
 * global control after the counters it enables).
 */
static const uint32_t kvm_cpu_msr_wanted[] = {
    0x10,                       /* IA32_TSC */
    0x3b,                       /* IA32_TSC_ADJUST */
    0x3a,                       /* IA32_FEATURE_CONTROL */
    0x48,                       /* IA32_SPEC_CTRL */
    0x122,                      /* IA32_TSX_CTRL */
    0xe1,                       /* IA32_UMWAIT_CONTROL */
    0x174, 0x175, 0x176,        /* SYSENTER_CS/ESP/EIP */
    0x1a0,                      /* IA32_MISC_ENABLE */
    0x140,                      /* MISC_FEATURES_ENABLES */
    0x1c4, 0x1c5,               /* IA32_XFD, IA32_XFD_ERR */
    0xd90,                      /* IA32_BNDCFGS */
    0xda0,                      /* IA32_XSS */
    0x277,                      /* IA32_PAT */
    0x2ff,                      /* MTRRdefType */
    0x250, 0x258, 0x259,        /* fixed MTRRs */
    0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f,
    0x200, 0x201, 0x202, 0x203, 0x204, 0x205, 0x206, 0x207,     /* variable MTRRs */
    0x208, 0x209, 0x20a, 0x20b, 0x20c, 0x20d, 0x20e, 0x20f,
    0x210, 0x211, 0x212, 0x213, 0x214, 0x215, 0x216, 0x217,
    0x218, 0x219, 0x21a, 0x21b, 0x21c, 0x21d, 0x21e, 0x21f,
    0xc0000081,                 /* STAR */
    0xc0000082,                 /* LSTAR */
    0xc0000083,                 /* CSTAR */
    0xc0000084,                 /* SYSCALL_MASK */
    0xc0000102,                 /* KERNEL_GS_BASE */
    0xc0000103,                 /* TSC_AUX */
    0xc001011f,                 /* AMD VIRT_SPEC_CTRL */
    /*
     * Not the wall-clock MSRs: writing one makes KVM write guest memory
     * (during postcopy, a page that may not be here yet), and the guest
     * reads the wall clock only at boot.
     */
    0x12,                       /* KVM system time (old) */
    0x4b564d01,                 /* KVM system time */
    0x4b564d06,                 /* KVM async PF interrupt: before async PF is enabled */
    0x4b564d02,                 /* KVM async PF */
    0x4b564d03,                 /* KVM steal time */
    0x4b564d04,                 /* KVM PV EOI */
    0x4b564d05,                 /* KVM poll control */
    /* Intel PMU: event selects, counters, fixed counters, then control. */
    0x186, 0x187, 0x188, 0x189, 0x18a, 0x18b, 0x18c, 0x18d,
    0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8,
    0x309, 0x30a, 0x30b, 0x30c,
    0x38d,                      /* FIXED_CTR_CTRL */
    0x38e,                      /* PERF_GLOBAL_STATUS */
    0x390,                      /* PERF_GLOBAL_OVF_CTRL */
    0x38f,                      /* PERF_GLOBAL_CTRL */
    /* AMD PMU: legacy and extended counters, then PerfMonV2 control. */
    0xc0010000, 0xc0010001, 0xc0010002, 0xc0010003,
    0xc0010004, 0xc0010005, 0xc0010006, 0xc0010007,
    0xc0010200, 0xc0010201, 0xc0010202, 0xc0010203, 0xc0010204, 0xc0010205,
    0xc0010206, 0xc0010207, 0xc0010208, 0xc0010209, 0xc001020a, 0xc001020b,
    0xc0000302,                 /* PERF_CNTR_GLOBAL_STATUS_CLR */
    0xc0000300,                 /* PERF_CNTR_GLOBAL_STATUS */
    0xc0000301,                 /* PERF_CNTR_GLOBAL_CTL */
    0x6e0,                      /* IA32_TSC_DEADLINE: written after the APIC */
};

G_STATIC_ASSERT(G_N_ELEMENTS(kvm_cpu_msr_wanted) <= KVM_CPU_MAX_MSRS);

/* KVM emulates these for every vCPU without listing them. */
static bool kvm_cpu_msr_always(uint32_t index)
{
    return index == 0x277 || index == 0x2ff || index == 0x250 || index == 0x258 ||
           index == 0x259 || (index >= 0x268 && index <= 0x26f) ||
           (index >= 0x200 && index <= 0x21f);
}

typedef struct KVMCPUMsr {
    uint32_t index;
    uint64_t value;
} KVMCPUMsr;

typedef struct KVMCPUSregs {
    struct kvm_segment cs, ds, es, fs, gs, ss, tr, ldt;
    struct kvm_dtable gdt, idt;
    uint64_t cr0, cr2, cr3, cr4, cr8, efer, apic_base;
    bool pdptrs_valid;
    uint64_t pdptrs[4];
} KVMCPUSregs;

typedef struct KVMCPUXsave {
    uint32_t len;               /* bytes in buf that are state */
    uint32_t alloc;
    uint8_t *buf;
} KVMCPUXsave;

struct KVMCPUMigState {
    CPUState *cpu;
    struct kvm_regs regs;
    KVMCPUSregs sregs;
    KVMCPUXsave xsave;
    struct kvm_xcrs xcrs;
    struct kvm_debugregs debugregs;
    struct kvm_lapic_state lapic;
    struct kvm_vcpu_events events;
    uint32_t mp_state;
    uint32_t tsc_khz;           /* 0: unknown on the source */
    uint32_t nmsrs;
    KVMCPUMsr msrs[KVM_CPU_MAX_MSRS];
};

/* ---- MSRs this host's KVM saves and restores ---- */

static struct {
    KVMState *probed_for;
    uint32_t n;
    uint32_t index[G_N_ELEMENTS(kvm_cpu_msr_wanted)];
} kvm_cpu_msrs;

static struct kvm_msr_list *kvm_cpu_msr_index_list(void)
{
    struct kvm_msr_list probe = { .nmsrs = 0 };

    if (ioctl(kvm_state->fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG) {
        return NULL;
    }
    for (int tries = 0; tries < 4; tries++) {
        uint32_t n = probe.nmsrs + 16;
        struct kvm_msr_list *list = g_malloc0(sizeof(*list) + n * sizeof(uint32_t));
        list->nmsrs = n;
        if (ioctl(kvm_state->fd, KVM_GET_MSR_INDEX_LIST, list) == 0) {
            return list;
        }
        probe.nmsrs = list->nmsrs;
        g_free(list);
        if (errno != E2BIG) {
            return NULL;
        }
    }
    return NULL;
}

/* Read @n MSRs; KVM stops at the first it refuses. Returns how many were read. */
static int kvm_cpu_get_msrs(CPUState *cpu, KVMCPUMsr *msrs, uint32_t n)
{
    g_autofree struct kvm_msrs *req = g_malloc0(sizeof(*req) + n * sizeof(struct kvm_msr_entry));

    req->nmsrs = n;
    for (uint32_t i = 0; i < n; i++) {
        req->entries[i].index = msrs[i].index;
    }
    int r = kvm_vcpu_ioctl(cpu, KVM_GET_MSRS, req);
    for (int i = 0; i < r; i++) {
        msrs[i].value = req->entries[i].data;
    }
    return r;
}

/*
 * The wanted MSRs KVM lists (or always emulates) and that @cpu actually
 * reads back; computed once per VM.
 */
static void kvm_cpu_msrs_probe(CPUState *cpu)
{
    if (kvm_cpu_msrs.probed_for == kvm_state) {
        return;
    }
    g_autofree struct kvm_msr_list *list = kvm_cpu_msr_index_list();
    KVMCPUMsr cand[G_N_ELEMENTS(kvm_cpu_msr_wanted)];
    uint32_t n = 0;

    for (unsigned i = 0; i < G_N_ELEMENTS(kvm_cpu_msr_wanted); i++) {
        uint32_t index = kvm_cpu_msr_wanted[i];
        bool listed = kvm_cpu_msr_always(index);
        for (uint32_t j = 0; list && !listed && j < list->nmsrs; j++) {
            listed = list->indices[j] == index;
        }
        if (listed) {
            cand[n++] = (KVMCPUMsr) { .index = index };
        }
    }
    /* Drop what this vCPU refuses to read (a PMU counter it lacks, ...). */
    kvm_cpu_msrs.n = 0;
    for (uint32_t done = 0; done < n;) {
        int r = kvm_cpu_get_msrs(cpu, cand + done, n - done);
        if (r < 0) {
            break;
        }
        for (int i = 0; i < r; i++) {
            kvm_cpu_msrs.index[kvm_cpu_msrs.n++] = cand[done + i].index;
        }
        done += (uint32_t)r + 1;    /* skip the refused one */
    }
    kvm_cpu_msrs.probed_for = kvm_state;
}

static bool kvm_cpu_msr_supported(uint32_t index)
{
    for (uint32_t i = 0; i < kvm_cpu_msrs.n; i++) {
        if (kvm_cpu_msrs.index[i] == index) {
            return true;
        }
    }
    return false;
}

/* ---- XSAVE area ---- */

static uint32_t kvm_cpu_xsave_size(void)
{
    int size = kvm_check_extension(KVM_CAP_XSAVE2);
    return size > KVM_CPU_XSAVE_LEGACY ? (uint32_t)size : KVM_CPU_XSAVE_LEGACY;
}

/* At least @len bytes, keeping the contents; new bytes are zero. */
static void kvm_cpu_xsave_reserve(KVMCPUXsave *x, uint32_t len)
{
    if (x->alloc < len) {
        x->buf = g_realloc(x->buf, len);
        memset(x->buf + x->alloc, 0, len - x->alloc);
        x->alloc = len;
    }
}

/* be32 length, then the bytes (the architectural XSAVE layout). */
static void kvm_cpu_xsave_put(QEMUFile *f, const void *field, size_t size)
{
    const KVMCPUXsave *x = field;
    qemu_put_be32(f, x->len);
    qemu_put_buffer(f, x->buf, x->len);
}

static bool kvm_cpu_xsave_get(QEMUFile *f, void *field, size_t size, GError **errp)
{
    KVMCPUXsave *x = field;
    uint32_t len = qemu_get_be32(f);

    if (qemu_file_get_error(f)) {
        return false;
    }
    if (len < KVM_CPU_XSAVE_LEGACY || len > KVM_CPU_XSAVE_MAX) {
        g_set_error(errp, VMSTATE_ERROR, 0, "XSAVE area of %u bytes (%u to %u)", len,
                    KVM_CPU_XSAVE_LEGACY, KVM_CPU_XSAVE_MAX);
        return false;
    }
    kvm_cpu_xsave_reserve(x, len);
    memset(x->buf, 0, x->alloc);
    qemu_get_buffer(f, x->buf, len);
    x->len = len;
    return !qemu_file_get_error(f);
}

static const VMStateInfo kvm_cpu_xsave_info = {
    .name = "xsave",
    .get = kvm_cpu_xsave_get,
    .put = kvm_cpu_xsave_put,
};

/* ---- Get and put ---- */

static bool G_GNUC_PRINTF(4, 5)
kvm_cpu_ioctl_fail(GError **errp, CPUState *cpu, int r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(errp, VMSTATE_ERROR, 0, "vCPU %d: %s: %s", cpu->index, what,
                r < 0 ? g_strerror(-r) : "refused");
    return false;
}

static void kvm_cpu_sregs_from_kvm(KVMCPUSregs *s, const struct kvm_sregs2 *k, bool pdptrs)
{
    s->cs = k->cs;
    s->ds = k->ds;
    s->es = k->es;
    s->fs = k->fs;
    s->gs = k->gs;
    s->ss = k->ss;
    s->tr = k->tr;
    s->ldt = k->ldt;
    s->gdt = k->gdt;
    s->idt = k->idt;
    s->cr0 = k->cr0;
    s->cr2 = k->cr2;
    s->cr3 = k->cr3;
    s->cr4 = k->cr4;
    s->cr8 = k->cr8;
    s->efer = k->efer;
    s->apic_base = k->apic_base;
    s->pdptrs_valid = pdptrs && (k->flags & KVM_SREGS2_FLAGS_PDPTRS_VALID);
    for (int i = 0; i < 4; i++) {
        s->pdptrs[i] = s->pdptrs_valid ? k->pdptrs[i] : 0;
    }
}

static void kvm_cpu_sregs_to_kvm(const KVMCPUSregs *s, struct kvm_sregs2 *k)
{
    memset(k, 0, sizeof(*k));
    k->cs = s->cs;
    k->ds = s->ds;
    k->es = s->es;
    k->fs = s->fs;
    k->gs = s->gs;
    k->ss = s->ss;
    k->tr = s->tr;
    k->ldt = s->ldt;
    k->gdt = s->gdt;
    k->idt = s->idt;
    k->cr0 = s->cr0;
    k->cr2 = s->cr2;
    k->cr3 = s->cr3;
    k->cr4 = s->cr4;
    k->cr8 = s->cr8;
    k->efer = s->efer;
    k->apic_base = s->apic_base;
    if (s->pdptrs_valid) {
        k->flags = KVM_SREGS2_FLAGS_PDPTRS_VALID;
        memcpy(k->pdptrs, s->pdptrs, sizeof(k->pdptrs));
    }
}

static bool kvm_cpu_get_sregs(KVMCPUMigState *st, GError **errp)
{
    CPUState *cpu = st->cpu;
    struct kvm_sregs2 s2;
    int r;

    if (kvm_check_extension(KVM_CAP_SREGS2)) {
        r = kvm_vcpu_ioctl(cpu, KVM_GET_SREGS2, &s2);
        if (r < 0) {
            return kvm_cpu_ioctl_fail(errp, cpu, r, "KVM_GET_SREGS2");
        }
        kvm_cpu_sregs_from_kvm(&st->sregs, &s2, true);
        return true;
    }
    struct kvm_sregs s;
    r = kvm_vcpu_ioctl(cpu, KVM_GET_SREGS, &s);
    if (r < 0) {
        return kvm_cpu_ioctl_fail(errp, cpu, r, "KVM_GET_SREGS");
    }
    /* A pending interrupt in interrupt_bitmap also travels in the events. */
    memset(&s2, 0, sizeof(s2));
    s2.cs = s.cs;
    s2.ds = s.ds;
    s2.es = s.es;
    s2.fs = s.fs;
    s2.gs = s.gs;
    s2.ss = s.ss;
    s2.tr = s.tr;
    s2.ldt = s.ldt;
    s2.gdt = s.gdt;
    s2.idt = s.idt;
    s2.cr0 = s.cr0;
    s2.cr2 = s.cr2;
    s2.cr3 = s.cr3;
    s2.cr4 = s.cr4;
    s2.cr8 = s.cr8;
    s2.efer = s.efer;
    s2.apic_base = s.apic_base;
    kvm_cpu_sregs_from_kvm(&st->sregs, &s2, false);
    return true;
}

static bool kvm_cpu_put_sregs(KVMCPUMigState *st, GError **errp)
{
    CPUState *cpu = st->cpu;
    struct kvm_sregs2 s2;
    int r;

    kvm_cpu_sregs_to_kvm(&st->sregs, &s2);
    if (kvm_check_extension(KVM_CAP_SREGS2)) {
        r = kvm_vcpu_ioctl(cpu, KVM_SET_SREGS2, &s2);
        return r < 0 ? kvm_cpu_ioctl_fail(errp, cpu, r, "KVM_SET_SREGS2") : true;
    }
    /* Without SREGS2 KVM reloads the PDPTRs from guest memory. */
    struct kvm_sregs s;
    memset(&s, 0, sizeof(s));
    s.cs = s2.cs;
    s.ds = s2.ds;
    s.es = s2.es;
    s.fs = s2.fs;
    s.gs = s2.gs;
    s.ss = s2.ss;
    s.tr = s2.tr;
    s.ldt = s2.ldt;
    s.gdt = s2.gdt;
    s.idt = s2.idt;
    s.cr0 = s2.cr0;
    s.cr2 = s2.cr2;
    s.cr3 = s2.cr3;
    s.cr4 = s2.cr4;
    s.cr8 = s2.cr8;
    s.efer = s2.efer;
    s.apic_base = s2.apic_base;
    r = kvm_vcpu_ioctl(cpu, KVM_SET_SREGS, &s);
    return r < 0 ? kvm_cpu_ioctl_fail(errp, cpu, r, "KVM_SET_SREGS") : true;
}

static bool kvm_cpu_get_xsave(KVMCPUMigState *st, GError **errp)
{
    uint32_t size = kvm_cpu_xsave_size();
    bool xsave2 = kvm_check_extension(KVM_CAP_XSAVE2) > 0;
    int r;

    kvm_cpu_xsave_reserve(&st->xsave, size);
    memset(st->xsave.buf, 0, st->xsave.alloc);
    r = kvm_vcpu_ioctl(st->cpu, xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, st->xsave.buf);
    if (r < 0) {
        return kvm_cpu_ioctl_fail(errp, st->cpu, r, xsave2 ? "KVM_GET_XSAVE2" : "KVM_GET_XSAVE");
    }
    st->xsave.len = size;
    return true;
}

static bool kvm_cpu_get_msrs_all(KVMCPUMigState *st, GError **errp)
{
    kvm_cpu_msrs_probe(st->cpu);
    st->nmsrs = kvm_cpu_msrs.n;
    for (uint32_t i = 0; i < st->nmsrs; i++) {
        st->msrs[i] = (KVMCPUMsr) { .index = kvm_cpu_msrs.index[i] };
    }
    int r = kvm_cpu_get_msrs(st->cpu, st->msrs, st->nmsrs);
    if (r != (int)st->nmsrs) {
        return kvm_cpu_ioctl_fail(errp, st->cpu, r, "KVM_GET_MSRS (MSR 0x%x)",
                                  r >= 0 ? st->msrs[r].index : 0);
    }
    return true;
}

static bool kvm_cpu_pre_save(void *opaque, GError **errp)
{
    KVMCPUMigState *st = opaque;
    CPUState *cpu = st->cpu;
    int r;

    if ((r = kvm_vcpu_ioctl(cpu, KVM_GET_REGS, &st->regs)) < 0) {
        return kvm_cpu_ioctl_fail(errp, cpu, r, "KVM_GET_REGS");
    }
    if (!kvm_cpu_get_sregs(st, errp) || !kvm_cpu_get_xsave(st, errp)) {
        return false;
    }
    memset(&st->xcrs, 0, sizeof(st->xcrs));
    if (kvm_check_extension(KVM_CAP_XCRS) &&
        (r = kvm_vcpu_ioctl(cpu, KVM_GET_XCRS, &st->xcrs)) < 0) {
        return kvm_cpu_ioctl_fail(errp, cpu, r, "KVM_GET_XCRS");
    }
    if ((r = kvm_vcpu_ioctl(cpu, KVM_GET_DEBUGREGS, &st->debugregs)) < 0) {
        return kvm_cpu_ioctl_fail(errp, cpu, r, "KVM_GET_DEBUGREGS");
    }
    if ((r = kvm_vcpu_ioctl(cpu, KVM_GET_LAPIC, &st->lapic)) < 0) {
        return kvm_cpu_ioctl_fail(errp, cpu, r, "KVM_GET_LAPIC");
    }
    if ((r = kvm_vcpu_ioctl(cpu, KVM_GET_VCPU_EVENTS, &st->events)) < 0) {
        return kvm_cpu_ioctl_fail(errp, cpu, r, "KVM_GET_VCPU_EVENTS");
    }
    struct kvm_mp_state mp;
    if ((r = kvm_vcpu_ioctl(cpu, KVM_GET_MP_STATE, &mp)) < 0) {
        return kvm_cpu_ioctl_fail(errp, cpu, r, "KVM_GET_MP_STATE");
    }
    st->mp_state = mp.mp_state;
    st->tsc_khz = 0;
    if (kvm_check_extension(KVM_CAP_GET_TSC_KHZ)) {
        r = kvm_vcpu_ioctl(cpu, KVM_GET_TSC_KHZ, NULL);
        st->tsc_khz = r > 0 ? (uint32_t)r : 0;
    }
    return kvm_cpu_get_msrs_all(st, errp);
}

/* The source's TSC frequency here: the same, scaled to, or close enough. */
static bool kvm_cpu_check_tsc_khz(KVMCPUMigState *st, bool apply, GError **errp)
{
    CPUState *cpu = st->cpu;

    if (!st->tsc_khz || !kvm_check_extension(KVM_CAP_GET_TSC_KHZ)) {
        return true;    /* nothing to compare with */
    }
    int cur = kvm_vcpu_ioctl(cpu, KVM_GET_TSC_KHZ, NULL);
    if (cur <= 0 || (uint32_t)cur == st->tsc_khz) {
        return true;
    }
    if (kvm_check_extension(KVM_CAP_TSC_CONTROL)) {
        if (!apply) {
            return true;
        }
        int r = kvm_vcpu_ioctl(cpu, KVM_SET_TSC_KHZ, (void *)(uintptr_t)st->tsc_khz);
        if (r >= 0) {
            return true;
        }
        return kvm_cpu_ioctl_fail(errp, cpu, r, "KVM_SET_TSC_KHZ %u (this host: %d kHz)",
                                  st->tsc_khz, cur);
    }
    uint64_t diff = (uint32_t)cur > st->tsc_khz ? (uint32_t)cur - st->tsc_khz
                                                : st->tsc_khz - (uint32_t)cur;
    if (diff * 1000000 <= (uint64_t)st->tsc_khz * KVM_TSC_TOLERANCE_PPM) {
        return true;
    }
    g_set_error(errp, VMSTATE_ERROR, 0, "vCPU %d: the source's TSC runs at %u kHz, this "
                "host's at %d kHz, and KVM cannot scale it (no KVM_CAP_TSC_CONTROL)",
                cpu->index, st->tsc_khz, cur);
    return false;
}

/*
 * KVM paravirtual MSRs whose 0 means "off", which is what a vCPU that has
 * not run holds (kvm_cpu_reset() clears them). Writing 0 is skipped: the
 * two kvmclock MSRs share one clock, so a 0 for the one the guest does
 * not use would turn off the one it does; and a host without steal-time
 * accounting refuses any write to the steal-time MSR, even 0.
 */
static bool kvm_cpu_msr_zero_is_reset(uint32_t index)
{
    switch (index) {
    case MSR_KVM_SYSTEM_TIME:
    case MSR_KVM_SYSTEM_TIME_NEW:
    case 0x4b564d02:            /* async PF */
    case 0x4b564d03:            /* steal time */
    case 0x4b564d04:            /* PV EOI */
    case 0x4b564d06:            /* async PF interrupt */
        return true;
    default:
        return false;
    }
}

/* Write the loaded MSRs whose index satisfies @deadline's choice. */
static bool kvm_cpu_put_msrs(KVMCPUMigState *st, bool deadline, GError **errp)
{
    g_autofree struct kvm_msrs *req =
        g_malloc0(sizeof(*req) + st->nmsrs * sizeof(struct kvm_msr_entry));
    uint32_t n = 0;

    for (uint32_t i = 0; i < st->nmsrs; i++) {
        if (st->msrs[i].value == 0 && kvm_cpu_msr_zero_is_reset(st->msrs[i].index)) {
            continue;
        }
        if ((st->msrs[i].index == MSR_IA32_TSC_DEADLINE) == deadline) {
            req->entries[n].index = st->msrs[i].index;
            req->entries[n].data = st->msrs[i].value;
            n++;
        }
    }
    if (n == 0) {
        return true;
    }
    req->nmsrs = n;
    int r = kvm_vcpu_ioctl(st->cpu, KVM_SET_MSRS, req);
    if (r != (int)n) {
        return kvm_cpu_ioctl_fail(errp, st->cpu, r, "KVM_SET_MSRS (MSR 0x%x, value 0x%"
                                  G_GINT64_MODIFIER "x)",
                                  r >= 0 ? req->entries[r].index : 0,
                                  r >= 0 ? (uint64_t)req->entries[r].data : 0);
    }
    return true;
}

/* Everything that can be refused is refused before KVM is touched. */
static bool kvm_cpu_check_loaded(KVMCPUMigState *st, GError **errp)
{
    CPUState *cpu = st->cpu;
    uint32_t size = kvm_cpu_xsave_size();

    kvm_cpu_msrs_probe(cpu);
    for (uint32_t i = 0; i < st->nmsrs; i++) {
        if (!kvm_cpu_msr_supported(st->msrs[i].index)) {
            g_set_error(errp, VMSTATE_ERROR, 0, "vCPU %d: the source saved MSR 0x%x, which "
                        "this host's KVM does not support", cpu->index, st->msrs[i].index);
            return false;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (st->msrs[j].index == st->msrs[i].index) {
                g_set_error(errp, VMSTATE_ERROR, 0, "vCPU %d: MSR 0x%x saved twice",
                            cpu->index, st->msrs[i].index);
                return false;
            }
        }
    }
    if (st->xsave.len > size) {
        /* Components beyond this host's area must be unused (all zero). */
        for (uint32_t i = size; i < st->xsave.len; i++) {
            if (st->xsave.buf[i]) {
                g_set_error(errp, VMSTATE_ERROR, 0, "vCPU %d: the source's XSAVE area has "
                            "%u bytes in use, this host's KVM holds %u", cpu->index,
                            st->xsave.len, size);
                return false;
            }
        }
    }
    uint32_t known = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
                     KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
    if ((st->events.flags & KVM_VCPUEVENT_VALID_PAYLOAD) && st->events.exception_has_payload) {
        g_set_error(errp, VMSTATE_ERROR, 0, "vCPU %d: an exception with a payload is pending, "
                    "which this side cannot restore", cpu->index);
        return false;
    }
    if ((st->events.flags & KVM_VCPUEVENT_VALID_TRIPLE_FAULT) &&
        st->events.triple_fault.pending) {
        g_set_error(errp, VMSTATE_ERROR, 0, "vCPU %d: a triple fault is pending, which this "
                    "side cannot restore", cpu->index);
        return false;
    }
    if (st->events.flags & ~(known | KVM_VCPUEVENT_VALID_PAYLOAD |
                             KVM_VCPUEVENT_VALID_TRIPLE_FAULT)) {
        g_set_error(errp, VMSTATE_ERROR, 0, "vCPU %d: unknown event flags 0x%x", cpu->index,
                    st->events.flags);
        return false;
    }
    return kvm_cpu_check_tsc_khz(st, false, errp);
}

static bool kvm_cpu_post_load(void *opaque, int version_id, GError **errp)
{
    KVMCPUMigState *st = opaque;
    CPUState *cpu = st->cpu;
    int r;

    if (!kvm_cpu_check_loaded(st, errp) || !kvm_cpu_check_tsc_khz(st, true, errp)) {
        return false;
    }
    if ((r = kvm_vcpu_ioctl(cpu, KVM_SET_REGS, &st->regs)) < 0) {
        return kvm_cpu_ioctl_fail(errp, cpu, r, "KVM_SET_REGS");
    }
    /* KVM reads its own area size; a smaller source area is zero-padded. */
    kvm_cpu_xsave_reserve(&st->xsave, kvm_cpu_xsave_size());
    if ((r = kvm_vcpu_ioctl(cpu, KVM_SET_XSAVE, st->xsave.buf)) < 0) {
        return kvm_cpu_ioctl_fail(errp, cpu, r, "KVM_SET_XSAVE");
    }
    if (st->xcrs.nr_xcrs && (r = kvm_vcpu_ioctl(cpu, KVM_SET_XCRS, &st->xcrs)) < 0) {
        return kvm_cpu_ioctl_fail(errp, cpu, r, "KVM_SET_XCRS");
    }
    if (!kvm_cpu_put_sregs(st, errp) || !kvm_cpu_put_msrs(st, false, errp)) {
        return false;
    }
    struct kvm_mp_state mp = { .mp_state = st->mp_state };
    if ((r = kvm_vcpu_ioctl(cpu, KVM_SET_MP_STATE, &mp)) < 0) {
        return kvm_cpu_ioctl_fail(errp, cpu, r, "KVM_SET_MP_STATE %u", st->mp_state);
    }
    if ((r = kvm_vcpu_ioctl(cpu, KVM_SET_LAPIC, &st->lapic)) < 0) {
        return kvm_cpu_ioctl_fail(errp, cpu, r, "KVM_SET_LAPIC");
    }
    if (!kvm_cpu_put_msrs(st, true, errp)) {
        return false;
    }
    struct kvm_vcpu_events events = st->events;
    events.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
                   (st->events.flags & (KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM));
    events.exception_has_payload = 0;
    events.exception_payload = 0;
    events.triple_fault.pending = 0;
    memset(events.reserved, 0, sizeof(events.reserved));
    if ((r = kvm_vcpu_ioctl(cpu, KVM_SET_VCPU_EVENTS, &events)) < 0) {
        return kvm_cpu_ioctl_fail(errp, cpu, r, "KVM_SET_VCPU_EVENTS");
    }
    struct kvm_debugregs dbg = st->debugregs;
    dbg.flags = 0;
    memset(dbg.reserved, 0, sizeof(dbg.reserved));
    if ((r = kvm_vcpu_ioctl(cpu, KVM_SET_DEBUGREGS, &dbg)) < 0) {
        return kvm_cpu_ioctl_fail(errp, cpu, r, "KVM_SET_DEBUGREGS");
    }
    return true;
}

/* ---- The description ---- */

static const VMStateDescription vmstate_kvm_segment = {
    .name = "kvm-segment",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(base, struct kvm_segment),
        VMSTATE_UINT32(limit, struct kvm_segment),
        VMSTATE_UINT16(selector, struct kvm_segment),
        VMSTATE_UINT8_RANGE(type, struct kvm_segment, 0, 15),
        VMSTATE_UINT8_RANGE(present, struct kvm_segment, 0, 1),
        VMSTATE_UINT8_RANGE(dpl, struct kvm_segment, 0, 3),
        VMSTATE_UINT8_RANGE(db, struct kvm_segment, 0, 1),
        VMSTATE_UINT8_RANGE(s, struct kvm_segment, 0, 1),
        VMSTATE_UINT8_RANGE(l, struct kvm_segment, 0, 1),
        VMSTATE_UINT8_RANGE(g, struct kvm_segment, 0, 1),
        VMSTATE_UINT8_RANGE(avl, struct kvm_segment, 0, 1),
        VMSTATE_UINT8_RANGE(unusable, struct kvm_segment, 0, 1),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_kvm_dtable = {
    .name = "kvm-dtable",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(base, struct kvm_dtable),
        VMSTATE_UINT16(limit, struct kvm_dtable),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_kvm_regs = {
    .name = "kvm-regs",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(rax, struct kvm_regs),
        VMSTATE_UINT64(rbx, struct kvm_regs),
        VMSTATE_UINT64(rcx, struct kvm_regs),
        VMSTATE_UINT64(rdx, struct kvm_regs),
        VMSTATE_UINT64(rsi, struct kvm_regs),
        VMSTATE_UINT64(rdi, struct kvm_regs),
        VMSTATE_UINT64(rsp, struct kvm_regs),
        VMSTATE_UINT64(rbp, struct kvm_regs),
        VMSTATE_UINT64(r8, struct kvm_regs),
        VMSTATE_UINT64(r9, struct kvm_regs),
        VMSTATE_UINT64(r10, struct kvm_regs),
        VMSTATE_UINT64(r11, struct kvm_regs),
        VMSTATE_UINT64(r12, struct kvm_regs),
        VMSTATE_UINT64(r13, struct kvm_regs),
        VMSTATE_UINT64(r14, struct kvm_regs),
        VMSTATE_UINT64(r15, struct kvm_regs),
        VMSTATE_UINT64(rip, struct kvm_regs),
        VMSTATE_UINT64(rflags, struct kvm_regs),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_kvm_sregs = {
    .name = "kvm-sregs",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(cs, KVMCPUSregs, vmstate_kvm_segment, struct kvm_segment),
        VMSTATE_STRUCT(ds, KVMCPUSregs, vmstate_kvm_segment, struct kvm_segment),
        VMSTATE_STRUCT(es, KVMCPUSregs, vmstate_kvm_segment, struct kvm_segment),
        VMSTATE_STRUCT(fs, KVMCPUSregs, vmstate_kvm_segment, struct kvm_segment),
        VMSTATE_STRUCT(gs, KVMCPUSregs, vmstate_kvm_segment, struct kvm_segment),
        VMSTATE_STRUCT(ss, KVMCPUSregs, vmstate_kvm_segment, struct kvm_segment),
        VMSTATE_STRUCT(tr, KVMCPUSregs, vmstate_kvm_segment, struct kvm_segment),
        VMSTATE_STRUCT(ldt, KVMCPUSregs, vmstate_kvm_segment, struct kvm_segment),
        VMSTATE_STRUCT(gdt, KVMCPUSregs, vmstate_kvm_dtable, struct kvm_dtable),
        VMSTATE_STRUCT(idt, KVMCPUSregs, vmstate_kvm_dtable, struct kvm_dtable),
        VMSTATE_UINT64(cr0, KVMCPUSregs),
        VMSTATE_UINT64(cr2, KVMCPUSregs),
        VMSTATE_UINT64(cr3, KVMCPUSregs),
        VMSTATE_UINT64(cr4, KVMCPUSregs),
        VMSTATE_UINT64(cr8, KVMCPUSregs),
        VMSTATE_UINT64(efer, KVMCPUSregs),
        VMSTATE_UINT64(apic_base, KVMCPUSregs),
        VMSTATE_BOOL(pdptrs_valid, KVMCPUSregs),
        VMSTATE_UINT64_ARRAY(pdptrs, KVMCPUSregs, 4),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_kvm_xcr = {
    .name = "kvm-xcr",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(xcr, struct kvm_xcr),
        VMSTATE_UINT64(value, struct kvm_xcr),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_kvm_xcrs = {
    .name = "kvm-xcrs",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32_RANGE(nr_xcrs, struct kvm_xcrs, 0, KVM_MAX_XCRS),
        VMSTATE_STRUCT_VARRAY_UINT32(xcrs, struct kvm_xcrs, nr_xcrs, KVM_MAX_XCRS,
                                     vmstate_kvm_xcr, struct kvm_xcr),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_kvm_debugregs = {
    .name = "kvm-debugregs",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64_ARRAY(db, struct kvm_debugregs, 4),
        VMSTATE_UINT64(dr6, struct kvm_debugregs),
        VMSTATE_UINT64(dr7, struct kvm_debugregs),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_kvm_lapic = {
    .name = "kvm-lapic",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_BUFFER(regs, struct kvm_lapic_state),  /* the APIC register page */
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_kvm_vcpu_events = {
    .name = "kvm-vcpu-events",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT8(exception.injected, struct kvm_vcpu_events),
        VMSTATE_UINT8(exception.nr, struct kvm_vcpu_events),
        VMSTATE_UINT8(exception.has_error_code, struct kvm_vcpu_events),
        VMSTATE_UINT8(exception.pending, struct kvm_vcpu_events),
        VMSTATE_UINT32(exception.error_code, struct kvm_vcpu_events),
        VMSTATE_UINT8(interrupt.injected, struct kvm_vcpu_events),
        VMSTATE_UINT8(interrupt.nr, struct kvm_vcpu_events),
        VMSTATE_UINT8(interrupt.soft, struct kvm_vcpu_events),
        VMSTATE_UINT8(interrupt.shadow, struct kvm_vcpu_events),
        VMSTATE_UINT8(nmi.injected, struct kvm_vcpu_events),
        VMSTATE_UINT8(nmi.pending, struct kvm_vcpu_events),
        VMSTATE_UINT8(nmi.masked, struct kvm_vcpu_events),
        VMSTATE_UINT32(sipi_vector, struct kvm_vcpu_events),
        VMSTATE_UINT32(flags, struct kvm_vcpu_events),
        VMSTATE_UINT8(smi.smm, struct kvm_vcpu_events),
        VMSTATE_UINT8(smi.pending, struct kvm_vcpu_events),
        VMSTATE_UINT8(smi.smm_inside_nmi, struct kvm_vcpu_events),
        VMSTATE_UINT8(smi.latched_init, struct kvm_vcpu_events),
        VMSTATE_UINT8(triple_fault.pending, struct kvm_vcpu_events),
        VMSTATE_UINT8(exception_has_payload, struct kvm_vcpu_events),
        VMSTATE_UINT64(exception_payload, struct kvm_vcpu_events),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_kvm_msr = {
    .name = "kvm-msr",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(index, KVMCPUMsr),
        VMSTATE_UINT64(value, KVMCPUMsr),
        VMSTATE_END_OF_LIST()
    },
};

const VMStateDescription vmstate_kvm_cpu = {
    .name = "cpu",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = kvm_cpu_pre_save,
    .post_load = kvm_cpu_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(regs, KVMCPUMigState, vmstate_kvm_regs, struct kvm_regs),
        VMSTATE_STRUCT(sregs, KVMCPUMigState, vmstate_kvm_sregs, KVMCPUSregs),
        VMSTATE_CUSTOM(xsave, KVMCPUMigState, kvm_cpu_xsave_info),
        VMSTATE_STRUCT(xcrs, KVMCPUMigState, vmstate_kvm_xcrs, struct kvm_xcrs),
        VMSTATE_STRUCT(debugregs, KVMCPUMigState, vmstate_kvm_debugregs, struct kvm_debugregs),
        VMSTATE_STRUCT(lapic, KVMCPUMigState, vmstate_kvm_lapic, struct kvm_lapic_state),
        VMSTATE_STRUCT(events, KVMCPUMigState, vmstate_kvm_vcpu_events,
                       struct kvm_vcpu_events),
        /* RUNNABLE, UNINITIALIZED, INIT_RECEIVED, HALTED, SIPI_RECEIVED */
        VMSTATE_UINT32_RANGE(mp_state, KVMCPUMigState, 0, KVM_MP_STATE_SIPI_RECEIVED),
        VMSTATE_UINT32(tsc_khz, KVMCPUMigState),
        VMSTATE_UINT32_RANGE(nmsrs, KVMCPUMigState, 0, KVM_CPU_MAX_MSRS),
        VMSTATE_STRUCT_VARRAY_UINT32(msrs, KVMCPUMigState, nmsrs, KVM_CPU_MAX_MSRS,
                                     vmstate_kvm_msr, KVMCPUMsr),
        VMSTATE_END_OF_LIST()
    },
};

KVMCPUMigState *kvm_cpu_mig_state_new(CPUState *cpu)
{
    KVMCPUMigState *st = g_new0(KVMCPUMigState, 1);
    st->cpu = cpu;
    return st;
}

void kvm_cpu_mig_state_free(KVMCPUMigState *st)
{
    if (st) {
        g_free(st->xsave.buf);
        g_free(st);
    }
}

void kvm_cpu_state_register(CPUState *cpu)
{
    vmstate_register(NULL, (uint32_t)cpu->index, &vmstate_kvm_cpu, kvm_cpu_mig_state_new(cpu));
}
