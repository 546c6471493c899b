/*
 * Per-vCPU state for migration: what KVM holds for a vCPU, fetched into a
 * plain struct before saving (pre_save) and put back after loading
 * (post_load), described field by field so the stream is independent of
 * the host's struct layouts. It travels as the neutral X86CPUState
 * ("x86-cpu") plus a KVM-only section ("kvm-cpu") with the rest (see "The
 * neutral form" below); KVM's whole vCPU in one section ("cpu") is what
 * older streams carry, and still loads.
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
#include "hw/x86/cpu-vmstate.h"
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

    /*
     * The KVM-only section ("kvm-cpu"): what X86CPUState cannot hold. The
     * PDPTRs, XCRs, events, MP state and TSC frequency above
     * travel in it too; these hold the rest.
     */
    KVMCPUXsave xsave_tail;     /* the XSAVE area past X86_XSAVE_MAX */
    uint32_t nextra;
    KVMCPUMsr extra[KVM_CPU_MAX_MSRS];  /* MSRs X86CPUState has no field for */
    bool extra_loaded;          /* loaded, waiting for the neutral state */
    bool events_written;        /* events: what the neutral state last put in */
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

/* @len bytes (already checked) into @x, zero past them. */
static bool kvm_cpu_xsave_fill(QEMUFile *f, KVMCPUXsave *x, uint32_t len)
{
    kvm_cpu_xsave_reserve(x, len);
    if (x->alloc) {
        memset(x->buf, 0, x->alloc);
    }
    qemu_get_buffer(f, x->buf, len);
    x->len = len;
    return !qemu_file_get_error(f);
}

static bool kvm_cpu_xsave_get(QEMUFile *f, void *field, size_t size, GError **errp)
{
    uint32_t len = qemu_get_be32(f);

    if (qemu_file_get_error(f)) {
        return false;
    }
    if (len < KVM_CPU_XSAVE_LEGACY || len > KVM_CPU_XSAVE_MAX) {
        g_set_error(errp, VMSTATE_ERROR, 0, "XSAVE area of %u bytes (%u to %u)", len,
                    KVM_CPU_XSAVE_LEGACY, KVM_CPU_XSAVE_MAX);
        return false;
    }
    return kvm_cpu_xsave_fill(f, field, len);
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

/* Read everything KVM holds for the vCPU into @st. */
static bool kvm_cpu_read(KVMCPUMigState *st, GError **errp)
{
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

static bool kvm_cpu_pre_save(void *opaque, GError **errp)
{
    return kvm_cpu_read(opaque, errp);
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

static bool kvm_cpu_check_events(KVMCPUMigState *st, GError **errp);

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
    return kvm_cpu_check_events(st, errp) && kvm_cpu_check_tsc_khz(st, false, errp);
}

/* Pending events this side can restore. */
static bool kvm_cpu_check_events(KVMCPUMigState *st, GError **errp)
{
    CPUState *cpu = st->cpu;
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
    return true;
}

/* The pending events, with the validity flags this side restores. */
static bool kvm_cpu_put_events(KVMCPUMigState *st, GError **errp)
{
    struct kvm_vcpu_events events = st->events;
    events.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
                   (st->events.flags & (KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM));
    events.exception_has_payload = 0;
    events.exception_payload = 0;
    events.triple_fault.pending = 0;
    memset(events.reserved, 0, sizeof(events.reserved));
    int r = kvm_vcpu_ioctl(st->cpu, KVM_SET_VCPU_EVENTS, &events);
    return r < 0 ? kvm_cpu_ioctl_fail(errp, st->cpu, r, "KVM_SET_VCPU_EVENTS") : true;
}

/*
 * Write @st into KVM, in the order KVM needs; checked by
 * kvm_cpu_check_loaded(). Without @lapic the LAPIC page is left alone:
 * in the neutral form it loads afterwards ("apic", then
 * kvm_cpu_after_lapic_load()).
 */
static bool kvm_cpu_write(KVMCPUMigState *st, bool lapic, GError **errp)
{
    CPUState *cpu = st->cpu;
    int r;

    if (!kvm_cpu_check_tsc_khz(st, true, errp)) {
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
    if (lapic && (r = kvm_vcpu_ioctl(cpu, KVM_SET_LAPIC, &st->lapic)) < 0) {
        return kvm_cpu_ioctl_fail(errp, cpu, r, "KVM_SET_LAPIC");
    }
    if (!kvm_cpu_put_msrs(st, true, errp) || !kvm_cpu_put_events(st, errp)) {
        return false;
    }
    struct kvm_debugregs dbg = st->debugregs;
    dbg.flags = 0;
    memset(dbg.reserved, 0, sizeof(dbg.reserved));
    if ((r = kvm_vcpu_ioctl(cpu, KVM_SET_DEBUGREGS, &dbg)) < 0) {
        return kvm_cpu_ioctl_fail(errp, cpu, r, "KVM_SET_DEBUGREGS");
    }
    return true;
}

static bool kvm_cpu_post_load(void *opaque, int version_id, GError **errp)
{
    KVMCPUMigState *st = opaque;

    st->extra_loaded = false;
    st->events_written = false;
    return kvm_cpu_check_loaded(st, errp) && kvm_cpu_write(st, true, errp);
}

/*
 * ---- The neutral form ----
 *
 * A vCPU migrates as ("x86-cpu", n), the neutral X86CPUState every
 * accelerator saves (hw/x86/cpu-vmstate.c), plus ("kvm-cpu", n), what
 * that form cannot hold: the PAE PDPTRs, the XSAVE area past
 * X86_XSAVE_MAX, the XCRs, KVM's events and MP state in full, the TSC
 * frequency and the MSRs X86CPUState has no field for (paravirtual, PMU,
 * SPEC_CTRL, ...). The LAPIC travels in the user-space model's form
 * ("apic", n, kvm-irqchip.c), loaded after both. Where both carry a value (XCR0, the
 * events' neutral part) the neutral one wins; the KVM-only one refines it
 * (an exception injected or pending, an NMI being injected, ...).
 *
 * "kvm-cpu" loads first and only parks its part here (extra_loaded);
 * loading "x86-cpu" calls kvm_vcpu_set_state(), which merges both into
 * one KVMCPUMigState, checks it and writes it as the old "cpu" did, but
 * for the LAPIC: loading "apic" writes it, then the TSC deadline and the
 * events again (kvm_cpu_after_lapic_load()), KVM's order.
 * Without a parked part (the boot loader, a stream of another
 * accelerator) the vCPU's own current state completes the neutral one.
 */

#define KVM_NEUTRAL_MSR(f) ((int)offsetof(X86CPUState, f))

/* Where X86CPUState holds MSR @index (a byte offset), or -1. */
static int kvm_cpu_neutral_msr_offset(uint32_t index)
{
    switch (index) {
    case X86_MSR_TSC:               return KVM_NEUTRAL_MSR(tsc);
    case X86_MSR_TSC_ADJUST:        return KVM_NEUTRAL_MSR(tsc_adjust);
    case X86_MSR_TSC_AUX:           return KVM_NEUTRAL_MSR(tsc_aux);
    case X86_MSR_TSC_DEADLINE:      return KVM_NEUTRAL_MSR(tsc_deadline);
    case X86_MSR_STAR:              return KVM_NEUTRAL_MSR(star);
    case X86_MSR_LSTAR:             return KVM_NEUTRAL_MSR(lstar);
    case X86_MSR_CSTAR:             return KVM_NEUTRAL_MSR(cstar);
    case X86_MSR_SFMASK:            return KVM_NEUTRAL_MSR(sfmask);
    case X86_MSR_KERNEL_GS_BASE:    return KVM_NEUTRAL_MSR(kernel_gs_base);
    case X86_MSR_SYSENTER_CS:       return KVM_NEUTRAL_MSR(sysenter_cs);
    case X86_MSR_SYSENTER_ESP:      return KVM_NEUTRAL_MSR(sysenter_esp);
    case X86_MSR_SYSENTER_EIP:      return KVM_NEUTRAL_MSR(sysenter_eip);
    case X86_MSR_PAT:               return KVM_NEUTRAL_MSR(pat);
    case X86_MSR_MISC_ENABLE:       return KVM_NEUTRAL_MSR(misc_enable);
    case X86_MSR_MTRR_DEF_TYPE:     return KVM_NEUTRAL_MSR(mtrr_def_type);
    default:
        break;
    }
    if (index >= X86_MSR_MTRR_PHYSBASE0 && index < X86_MSR_MTRR_PHYSBASE0 + 2 * X86_MTRR_NR_VAR) {
        return KVM_NEUTRAL_MSR(mtrr_var) + 8 * (int)(index - X86_MSR_MTRR_PHYSBASE0);
    }
    for (int i = 0; i < X86_MTRR_NR_FIXED; i++) {
        if (index == x86_mtrr_fixed_msr(i)) {
            return KVM_NEUTRAL_MSR(mtrr_fixed) + 8 * i;
        }
    }
    return -1;
}

/* The field of @st that holds MSR @index, or NULL. */
static uint64_t *kvm_cpu_neutral_msr(X86CPUState *st, uint32_t index)
{
    int off = kvm_cpu_neutral_msr_offset(index);
    return off < 0 ? NULL : (uint64_t *)((char *)st + off);
}

static bool kvm_cpu_msr_is_neutral(uint32_t index)
{
    return kvm_cpu_neutral_msr_offset(index) >= 0;
}

static X86MPState kvm_cpu_mp_to_neutral(uint32_t mp)
{
    switch (mp) {
    case KVM_MP_STATE_HALTED:
        return X86_MP_HALTED;
    case KVM_MP_STATE_UNINITIALIZED:
    case KVM_MP_STATE_INIT_RECEIVED:
        return X86_MP_WAIT_FOR_SIPI;
    default:
        return X86_MP_RUNNABLE;
    }
}

static struct kvm_segment *kvm_cpu_seg(KVMCPUSregs *s, int i)
{
    struct kvm_segment *const map[X86_NR_SEGS] = {
        &s->es, &s->cs, &s->ss, &s->ds, &s->fs, &s->gs, &s->ldt, &s->tr,
    };
    return map[i];
}

static __u64 *kvm_cpu_gpr(struct kvm_regs *r, int i)
{
    __u64 *const map[X86_NR_GPRS] = {
        &r->rax, &r->rcx, &r->rdx, &r->rbx, &r->rsp, &r->rbp, &r->rsi, &r->rdi,
        &r->r8, &r->r9, &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15,
    };
    return map[i];
}

void kvm_cpu_mig_to_neutral(KVMCPUMigState *k, X86CPUState *st)
{
    memset(st, 0, sizeof(*st));
    for (int i = 0; i < X86_NR_GPRS; i++) {
        st->regs[i] = *kvm_cpu_gpr(&k->regs, i);
    }
    st->rip = k->regs.rip;
    st->rflags = k->regs.rflags;
    for (int i = 0; i < X86_NR_SEGS; i++) {
        const struct kvm_segment *s = kvm_cpu_seg(&k->sregs, i);
        st->segs[i] = (X86Segment) {
            .base = s->base, .limit = s->limit, .selector = s->selector, .type = s->type,
            .s = s->s, .dpl = s->dpl, .present = s->present, .avl = s->avl, .l = s->l,
            .db = s->db, .g = s->g, .unusable = s->unusable,
        };
    }
    st->gdt = (X86DescTable) { .base = k->sregs.gdt.base, .limit = k->sregs.gdt.limit };
    st->idt = (X86DescTable) { .base = k->sregs.idt.base, .limit = k->sregs.idt.limit };
    st->cr0 = k->sregs.cr0;
    st->cr2 = k->sregs.cr2;
    st->cr3 = k->sregs.cr3;
    st->cr4 = k->sregs.cr4;
    st->cr8 = k->sregs.cr8;
    st->efer = k->sregs.efer;
    st->apic_base = k->sregs.apic_base;
    for (uint32_t i = 0; i < k->xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++) {
        if (k->xcrs.xcrs[i].xcr == 0) {
            st->xcr0 = k->xcrs.xcrs[i].value;
        }
    }
    memcpy(st->dr, k->debugregs.db, sizeof(st->dr));
    st->dr6 = k->debugregs.dr6;
    st->dr7 = k->debugregs.dr7;
    for (uint32_t i = 0; i < k->nmsrs; i++) {
        uint64_t *field = kvm_cpu_neutral_msr(st, k->msrs[i].index);
        if (field) {
            *field = k->msrs[i].value;
        }
    }
    st->xsave_len = MIN(k->xsave.len, X86_XSAVE_MAX);
    memcpy(st->xsave, k->xsave.buf, st->xsave_len);

    const struct kvm_vcpu_events *ev = &k->events;
    st->exception_pending = ev->exception.injected || ev->exception.pending;
    st->exception_vector = ev->exception.nr;
    st->exception_has_error = ev->exception.has_error_code;
    st->exception_error = ev->exception.error_code;
    st->interrupt_injected = ev->interrupt.injected;
    st->interrupt_vector = ev->interrupt.nr;
    st->interrupt_shadow = ev->interrupt.shadow;
    st->nmi_pending = ev->nmi.pending || ev->nmi.injected;
    st->nmi_masked = ev->nmi.masked;
    st->mp_state = kvm_cpu_mp_to_neutral(k->mp_state);
}

/* The KVM-only part of a state read from KVM: the XSAVE tail and the other MSRs. */
static void kvm_cpu_split_extra(KVMCPUMigState *k)
{
    uint32_t tail = k->xsave.len > X86_XSAVE_MAX ? k->xsave.len - X86_XSAVE_MAX : 0;

    kvm_cpu_xsave_reserve(&k->xsave_tail, tail);
    if (tail) {
        memcpy(k->xsave_tail.buf, k->xsave.buf + X86_XSAVE_MAX, tail);
    }
    k->xsave_tail.len = tail;
    k->nextra = 0;
    for (uint32_t i = 0; i < k->nmsrs; i++) {
        if (!kvm_cpu_msr_is_neutral(k->msrs[i].index)) {
            k->extra[k->nextra++] = k->msrs[i];
        }
    }
}

/* The XSAVE header (XSTATE_BV, XCOMP_BV) follows the 512-byte legacy area. */
#define KVM_XSAVE_HDR_END       (X86_FXSAVE_SIZE + 64)
#define KVM_XSTATE_X87_SSE      3ULL

/*
 * Overlay neutral state @st on @k, which holds the rest (the KVM-only
 * section's part, or what the vCPU holds now): MSRs in this host's order.
 */
static bool kvm_cpu_mig_from_neutral(KVMCPUMigState *k, const X86CPUState *in, GError **errp)
{
    CPUState *cpu = k->cpu;
    X86CPUState *st = (X86CPUState *)in;   /* read only: kvm_cpu_neutral_msr() */

    for (int i = 0; i < X86_NR_GPRS; i++) {
        *kvm_cpu_gpr(&k->regs, i) = st->regs[i];
    }
    k->regs.rip = st->rip;
    k->regs.rflags = st->rflags;
    for (int i = 0; i < X86_NR_SEGS; i++) {
        const X86Segment *s = &st->segs[i];
        *kvm_cpu_seg(&k->sregs, i) = (struct kvm_segment) {
            .base = s->base, .limit = s->limit, .selector = s->selector, .type = s->type,
            .s = s->s, .dpl = s->dpl, .present = s->present, .avl = s->avl, .l = s->l,
            .db = s->db, .g = s->g, .unusable = s->unusable,
        };
    }
    k->sregs.gdt = (struct kvm_dtable) { .base = st->gdt.base, .limit = st->gdt.limit };
    k->sregs.idt = (struct kvm_dtable) { .base = st->idt.base, .limit = st->idt.limit };
    k->sregs.cr0 = st->cr0;
    k->sregs.cr2 = st->cr2;
    k->sregs.cr3 = st->cr3;
    k->sregs.cr4 = st->cr4;
    k->sregs.cr8 = st->cr8;
    k->sregs.efer = st->efer;
    if (st->apic_base) {
        k->sregs.apic_base = st->apic_base;
    }
    if (!(st->cr0 & X86_CR0_PG) || !(st->cr4 & X86_CR4_PAE) || (st->efer & X86_EFER_LMA)) {
        k->sregs.pdptrs_valid = false;      /* not PAE paging: KVM has none */
    }

    /* XSAVE: the neutral area, then the rest KVM had; a legacy-only area is in use. */
    uint32_t len = MAX(k->xsave.len, (uint32_t)X86_XSAVE_MAX);
    kvm_cpu_xsave_reserve(&k->xsave, len);
    k->xsave.len = len;
    memset(k->xsave.buf, 0, X86_XSAVE_MAX);
    memcpy(k->xsave.buf, st->xsave, MIN(st->xsave_len, (uint32_t)X86_XSAVE_MAX));
    if (st->xsave_len < KVM_XSAVE_HDR_END) {
        uint64_t bv = KVM_XSTATE_X87_SSE;
        memcpy(k->xsave.buf + X86_FXSAVE_SIZE, &bv, sizeof(bv));
    }

    bool have_xcr0 = false;
    for (uint32_t i = 0; i < k->xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++) {
        if (k->xcrs.xcrs[i].xcr == 0) {
            k->xcrs.xcrs[i].value = st->xcr0 ? st->xcr0 : 1;
            have_xcr0 = true;
        }
    }
    if (!have_xcr0 && st->xcr0 > 1 && k->xcrs.nr_xcrs < KVM_MAX_XCRS) {
        k->xcrs.xcrs[k->xcrs.nr_xcrs++] = (struct kvm_xcr) { .xcr = 0, .value = st->xcr0 };
    }
    memcpy(k->debugregs.db, st->dr, sizeof(st->dr));
    k->debugregs.dr6 = st->dr6;
    k->debugregs.dr7 = st->dr7;

    struct kvm_vcpu_events *ev = &k->events;
    if (!st->exception_pending) {
        ev->exception.injected = ev->exception.pending = 0;
    } else if (!ev->exception.injected && !ev->exception.pending) {
        ev->exception.injected = 1;
    }
    ev->exception.nr = st->exception_vector;
    ev->exception.has_error_code = st->exception_has_error;
    ev->exception.error_code = st->exception_error;
    if (!st->interrupt_injected || ev->interrupt.nr != st->interrupt_vector) {
        ev->interrupt.soft = 0;
    }
    ev->interrupt.injected = st->interrupt_injected;
    ev->interrupt.nr = st->interrupt_vector;
    ev->interrupt.shadow = st->interrupt_shadow;
    if (!st->nmi_pending) {
        ev->nmi.injected = ev->nmi.pending = 0;
    } else if (!ev->nmi.injected && !ev->nmi.pending) {
        ev->nmi.pending = 1;
    }
    ev->nmi.masked = st->nmi_masked;
    ev->flags |= KVM_VCPUEVENT_VALID_SHADOW;
    if (kvm_cpu_mp_to_neutral(k->mp_state) != st->mp_state) {
        k->mp_state = st->mp_state == X86_MP_HALTED ? KVM_MP_STATE_HALTED
                    : st->mp_state == X86_MP_WAIT_FOR_SIPI ? KVM_MP_STATE_UNINITIALIZED
                    : KVM_MP_STATE_RUNNABLE;
    }

    /*
     * MSRs: every one this host saves, in its order, from the neutral
     * state where it has a field, else from @k's list; then what @k's list
     * has beyond them (kvm_cpu_check_loaded() refuses those). A state
     * without a TSC (0) leaves the TSC alone.
     */
    kvm_cpu_msrs_probe(cpu);
    g_autofree KVMCPUMsr *base = g_memdup2(k->msrs, k->nmsrs * sizeof(KVMCPUMsr));
    uint32_t nbase = k->nmsrs, n = 0;
    for (uint32_t i = 0; i < kvm_cpu_msrs.n; i++) {
        uint32_t index = kvm_cpu_msrs.index[i];
        uint64_t *field = kvm_cpu_neutral_msr(st, index);
        if (field) {
            if (st->tsc == 0 && (index == X86_MSR_TSC || index == X86_MSR_TSC_ADJUST)) {
                continue;
            }
            k->msrs[n++] = (KVMCPUMsr) { .index = index, .value = *field };
            continue;
        }
        for (uint32_t j = 0; j < nbase; j++) {
            if (base[j].index == index) {
                k->msrs[n++] = base[j];
                break;
            }
        }
    }
    for (uint32_t j = 0; j < nbase; j++) {
        if (!kvm_cpu_msr_supported(base[j].index) && n < KVM_CPU_MAX_MSRS) {
            k->msrs[n++] = base[j];
        }
    }
    k->nmsrs = n;
    /* A neutral MSR this vCPU lacks must be at its reset value (0). */
    for (unsigned i = 0; i < G_N_ELEMENTS(kvm_cpu_msr_wanted); i++) {
        uint32_t index = kvm_cpu_msr_wanted[i];
        const uint64_t *field = kvm_cpu_neutral_msr(st, index);
        if (field && *field && !kvm_cpu_msr_supported(index)) {
            g_set_error(errp, VMSTATE_ERROR, 0, "vCPU %d: the state sets MSR 0x%x to 0x%"
                        G_GINT64_MODIFIER "x, which this host's KVM does not support",
                        cpu->index, index, *field);
            return false;
        }
    }
    return true;
}

bool kvm_cpu_get_neutral(CPUState *cpu, X86CPUState *st, GError **errp)
{
    KVMCPUMigState *k = kvm_cpu_mig_state_new(cpu);
    bool ok = kvm_cpu_read(k, errp);
    if (ok) {
        kvm_cpu_mig_to_neutral(k, st);
    }
    kvm_cpu_mig_state_free(k);
    return ok;
}

bool kvm_cpu_set_neutral(CPUState *cpu, KVMCPUMigState *parked, const X86CPUState *st,
                         GError **errp)
{
    KVMCPUMigState *k = parked ? parked : kvm_cpu_mig_state_new(cpu);
    bool ok;

    if (k->extra_loaded) {
        /* The KVM-only section's part: its MSRs and XSAVE tail are the base. */
        k->extra_loaded = false;
        memcpy(k->msrs, k->extra, k->nextra * sizeof(KVMCPUMsr));
        k->nmsrs = k->nextra;
        kvm_cpu_xsave_reserve(&k->xsave, X86_XSAVE_MAX + k->xsave_tail.len);
        memset(k->xsave.buf, 0, k->xsave.alloc);
        if (k->xsave_tail.len) {
            memcpy(k->xsave.buf + X86_XSAVE_MAX, k->xsave_tail.buf, k->xsave_tail.len);
        }
        k->xsave.len = X86_XSAVE_MAX + k->xsave_tail.len;
        ok = true;
    } else {
        /* Nothing parked: the vCPU's current state completes the neutral one. */
        ok = kvm_cpu_read(k, errp);
        k->tsc_khz = 0;
    }
    ok = ok && kvm_cpu_mig_from_neutral(k, st, errp) && kvm_cpu_check_loaded(k, errp) &&
         kvm_cpu_write(k, false, errp);
    k->events_written = ok;
    if (k != parked) {
        kvm_cpu_mig_state_free(k);
    }
    return ok;
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

/* ---- The KVM-only section ("kvm-cpu") ---- */

/* be32 length (0 to what KVM can have past X86_XSAVE_MAX), then the bytes. */
static bool kvm_cpu_xsave_tail_get(QEMUFile *f, void *field, size_t size, GError **errp)
{
    uint32_t len = qemu_get_be32(f);

    if (qemu_file_get_error(f)) {
        return false;
    }
    if (len > KVM_CPU_XSAVE_MAX - X86_XSAVE_MAX) {
        g_set_error(errp, VMSTATE_ERROR, 0, "XSAVE area past %u bytes of %u bytes (0 to %u)",
                    X86_XSAVE_MAX, len, KVM_CPU_XSAVE_MAX - X86_XSAVE_MAX);
        return false;
    }
    return kvm_cpu_xsave_fill(f, field, len);
}

static const VMStateInfo kvm_cpu_xsave_tail_info = {
    .name = "xsave-tail",
    .get = kvm_cpu_xsave_tail_get,
    .put = kvm_cpu_xsave_put,
};

static bool kvm_cpu_extra_pre_save(void *opaque, GError **errp)
{
    KVMCPUMigState *st = opaque;

    if (!kvm_cpu_read(st, errp)) {
        return false;
    }
    kvm_cpu_split_extra(st);
    return true;
}

/*
 * Check what can be checked without the neutral state and park the rest
 * for kvm_cpu_set_neutral(), which loading ("x86-cpu", n) calls next.
 */
static bool kvm_cpu_extra_post_load(void *opaque, int version_id, GError **errp)
{
    KVMCPUMigState *st = opaque;
    CPUState *cpu = st->cpu;

    st->extra_loaded = false;
    kvm_cpu_msrs_probe(cpu);
    for (uint32_t i = 0; i < st->nextra; i++) {
        uint32_t index = st->extra[i].index;
        if (kvm_cpu_msr_is_neutral(index)) {
            g_set_error(errp, VMSTATE_ERROR, 0, "vCPU %d: MSR 0x%x belongs in the neutral "
                        "state ('x86-cpu')", cpu->index, index);
            return false;
        }
        if (!kvm_cpu_msr_supported(index)) {
            g_set_error(errp, VMSTATE_ERROR, 0, "vCPU %d: the source saved MSR 0x%x, which "
                        "this host's KVM does not support", cpu->index, index);
            return false;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (st->extra[j].index == index) {
                g_set_error(errp, VMSTATE_ERROR, 0, "vCPU %d: MSR 0x%x saved twice",
                            cpu->index, index);
                return false;
            }
        }
    }
    uint32_t size = kvm_cpu_xsave_size();
    for (uint32_t i = 0; i < st->xsave_tail.len; i++) {
        if (X86_XSAVE_MAX + i >= size && st->xsave_tail.buf[i]) {
            g_set_error(errp, VMSTATE_ERROR, 0, "vCPU %d: the source's XSAVE area has %u "
                        "bytes in use, this host's KVM holds %u", cpu->index,
                        X86_XSAVE_MAX + st->xsave_tail.len, size);
            return false;
        }
    }
    if (!kvm_cpu_check_events(st, errp) || !kvm_cpu_check_tsc_khz(st, false, errp)) {
        return false;
    }
    st->extra_loaded = true;
    return true;
}

static const VMStateDescription vmstate_kvm_pdptrs = {
    .name = "kvm-pdptrs",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_BOOL(pdptrs_valid, KVMCPUSregs),
        VMSTATE_UINT64_ARRAY(pdptrs, KVMCPUSregs, 4),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateField kvm_cpu_extra_fields[] = {
        VMSTATE_STRUCT(sregs, KVMCPUMigState, vmstate_kvm_pdptrs, KVMCPUSregs),
        VMSTATE_CUSTOM(xsave_tail, KVMCPUMigState, kvm_cpu_xsave_tail_info),
        VMSTATE_STRUCT(xcrs, KVMCPUMigState, vmstate_kvm_xcrs, struct kvm_xcrs),
        VMSTATE_STRUCT(events, KVMCPUMigState, vmstate_kvm_vcpu_events,
                       struct kvm_vcpu_events),
        VMSTATE_UINT32_RANGE(mp_state, KVMCPUMigState, 0, KVM_MP_STATE_SIPI_RECEIVED),
        VMSTATE_UINT32(tsc_khz, KVMCPUMigState),
        VMSTATE_UINT32_RANGE(nextra, KVMCPUMigState, 0, KVM_CPU_MAX_MSRS),
        VMSTATE_STRUCT_VARRAY_UINT32(extra, KVMCPUMigState, nextra, KVM_CPU_MAX_MSRS,
                                     vmstate_kvm_msr, KVMCPUMsr),
        VMSTATE_END_OF_LIST()
};

const VMStateDescription vmstate_kvm_cpu_extra = {
    .name = "kvm-cpu",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = kvm_cpu_extra_pre_save,
    .post_load = kvm_cpu_extra_post_load,
    .fields = kvm_cpu_extra_fields,
};

/*
 * "kvm-cpu" in a VM of another accelerator (the software CPU): read, and
 * refused if the guest turned on a KVM paravirtual feature there is no
 * equivalent of (the configuration check refuses a CPU that offers them;
 * this catches a stream that says otherwise); the rest has no use here.
 */
static bool kvm_cpu_foreign_post_load(void *opaque, int version_id, GError **errp)
{
    KVMCPUMigState *st = opaque;

    for (uint32_t i = 0; i < st->nextra; i++) {
        uint32_t index = st->extra[i].index;
        if (kvm_cpu_msr_zero_is_reset(index) && index != 0x4b564d06 &&   /* a vector */
            (st->extra[i].value & 1)) {
            g_set_error(errp, VMSTATE_ERROR, 0, "the guest enabled KVM's paravirtual MSR 0x%x "
                        "(kvmclock, async PF, steal time or PV EOI), which this accelerator "
                        "does not emulate", st->extra[i].index);
            return false;
        }
    }
    return true;
}

static const VMStateDescription vmstate_kvm_cpu_foreign = {
    .name = "kvm-cpu",
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = kvm_cpu_foreign_post_load,
    .fields = kvm_cpu_extra_fields,
};

void kvm_cpu_state_register_foreign(int index)
{
    vmstate_register_load_only(NULL, (uint32_t)index, &vmstate_kvm_cpu_foreign,
                               kvm_cpu_mig_state_new(NULL));
}

KVMCPUMigState *kvm_cpu_mig_state_new(CPUState *cpu)
{
    KVMCPUMigState *st = g_new0(KVMCPUMigState, 1);
    st->cpu = cpu;
    return st;
}

void kvm_cpu_mig_state_reset(KVMCPUMigState *st)
{
    if (st) {
        st->extra_loaded = false;
        st->events_written = false;
    }
}

bool kvm_cpu_after_lapic_load(CPUState *cpu, uint64_t tsc_deadline, GError **errp)
{
    KVMCPUMigState *st = cpu->accel->mig;
    g_autofree struct kvm_msrs *msr = g_malloc0(sizeof(*msr) + sizeof(struct kvm_msr_entry));

    msr->nmsrs = 1;
    msr->entries[0].index = X86_MSR_TSC_DEADLINE;
    msr->entries[0].data = tsc_deadline;
    kvm_cpu_msrs_probe(cpu);
    if (kvm_cpu_msr_supported(X86_MSR_TSC_DEADLINE)) {
        int r = kvm_vcpu_ioctl(cpu, KVM_SET_MSRS, msr);
        if (r != 1) {
            return kvm_cpu_ioctl_fail(errp, cpu, r, "KVM_SET_MSRS (TSC deadline 0x%"
                                      G_GINT64_MODIFIER "x)", tsc_deadline);
        }
    }
    return !st || !st->events_written || kvm_cpu_put_events(st, errp);
}

void kvm_cpu_mig_state_free(KVMCPUMigState *st)
{
    if (st) {
        g_free(st->xsave.buf);
        g_free(st->xsave_tail.buf);
        g_free(st);
    }
}

void kvm_cpu_state_register(CPUState *cpu)
{
    static const char *const old_form_of[] = { "kvm-cpu", "x86-cpu", "apic", NULL };
    KVMCPUMigState *st = cpu->accel->mig;

    /* The KVM-only part first: loading "x86-cpu" writes both. Another accelerator has none. */
    vmstate_register_optional(NULL, (uint32_t)cpu->index, &vmstate_kvm_cpu_extra, st);
    x86_cpu_vmstate_register(cpu->index);
    /* Streams of Ferry before the neutral form carry ("cpu", n) instead of both. */
    vmstate_register_old_form(NULL, (uint32_t)cpu->index, &vmstate_kvm_cpu, st, old_form_of);
}
