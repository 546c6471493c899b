/*
 * KVM vCPUs: creation, KVM_RUN and its exits (dispatched to devices under
 * the BQL), the kick, reset, and the state in accelerator-neutral form.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "accel/kvm.h"
#include "system/cpus.h"
#include "system/ioport.h"
#include "system/main-loop.h"
#include "system/runstate.h"
#include "system/runstate-internal.h"
#include "system/accel.h"

#define SIG_VCPU_KICK SIGUSR1

static void kvm_cpu_kick_handler(int sig)
{
    /* Only there to interrupt KVM_RUN. */
}

void kvm_vcpu_kick(CPUState *cpu)
{
    cpu->accel->run->immediate_exit = 1;
    if (cpu->thread_started) {
        pthread_kill(cpu->pthread, SIG_VCPU_KICK);
    }
}

static void kvm_cpu_handle_io(CPUState *cpu)
{
    struct kvm_run *run = cpu->accel->run;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    unsigned size = run->io.size;

    for (uint32_t i = 0; i < run->io.count; i++, data += size) {
        if (run->io.direction == KVM_EXIT_IO_OUT) {
            uint64_t v = 0;
            memcpy(&v, data, size);
            io_dispatch_write(IO_SPACE_PIO, run->io.port, v, size);
        } else {
            uint64_t v = io_dispatch_read(IO_SPACE_PIO, run->io.port, size);
            memcpy(data, &v, size);
        }
    }
}

static void kvm_cpu_handle_mmio(CPUState *cpu)
{
    struct kvm_run *run = cpu->accel->run;
    unsigned len = run->mmio.len;

    if (len > 8) {
        return;
    }
    if (run->mmio.is_write) {
        uint64_t v = 0;
        memcpy(&v, run->mmio.data, len);
        io_dispatch_write(IO_SPACE_MMIO, run->mmio.phys_addr, v, len);
    } else {
        uint64_t v = io_dispatch_read(IO_SPACE_MMIO, run->mmio.phys_addr, len);
        memcpy(run->mmio.data, &v, len);
    }
}

/* Handle one exit with the BQL held; false stops this vCPU. */
static bool kvm_cpu_handle_exit(CPUState *cpu)
{
    struct kvm_run *run = cpu->accel->run;

    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        kvm_cpu_handle_io(cpu);
        cpu->accel->exit_needs_completion = true;
        return true;
    case KVM_EXIT_MMIO:
        kvm_cpu_handle_mmio(cpu);
        cpu->accel->exit_needs_completion = true;
        return true;
    case KVM_EXIT_HLT:
    case KVM_EXIT_IRQ_WINDOW_OPEN:
    case KVM_EXIT_INTR:
        return true;
    case KVM_EXIT_SHUTDOWN:
        /* Triple fault: the PC resets. */
        system_reset_request(SHUTDOWN_CAUSE_GUEST_RESET);
        return false;
    case KVM_EXIT_SYSTEM_EVENT:
        switch (run->system_event.type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN:
            system_shutdown_request(SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
            return false;
        case KVM_SYSTEM_EVENT_RESET:
            system_reset_request(SHUTDOWN_CAUSE_GUEST_RESET);
            return false;
        default:
            break;
        }
        break;
    case KVM_EXIT_INTERNAL_ERROR:
        fprintf(stderr, "KVM internal error. Suberror: %u\n", run->internal.suberror);
        cpu_report_error(cpu);
        return false;
    case KVM_EXIT_FAIL_ENTRY:
        fprintf(stderr, "KVM: entry failed, hardware error 0x%llx\n",
                (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        cpu_report_error(cpu);
        return false;
    default:
        break;
    }
    fprintf(stderr, "KVM: unhandled exit reason %u on CPU %d\n", run->exit_reason, cpu->index);
    cpu_report_error(cpu);
    return false;
}

bool kvm_vcpu_park(CPUState *cpu)
{
    AccelCPUState *kc = cpu->accel;

    if (kc->exit_needs_completion) {
        /*
         * An IN or MMIO read is only finished when KVM writes the result
         * into the registers on the next KVM_RUN; do that now
         * (immediate_exit returns before guest code runs), so the state a
         * parked vCPU reports is complete.
         */
        kc->exit_needs_completion = false;
        kc->run->immediate_exit = 1;
        bql_unlock();
        ioctl(kc->fd, KVM_RUN, 0);
        bql_lock();
        return true;
    }
    return false;
}

bool kvm_vcpu_exec(CPUState *cpu)
{
    AccelCPUState *kc = cpu->accel;

    kc->exit_needs_completion = false;
    kc->run->immediate_exit = 0;
    bql_unlock();
    int r = ioctl(kc->fd, KVM_RUN, 0);
    int err = errno;
    bql_lock();
    if (r < 0) {
        if (err == EINTR || err == EAGAIN) {
            return true;
        }
        fprintf(stderr, "KVM_RUN on CPU %d: %s\n", cpu->index, g_strerror(err));
        cpu_report_error(cpu);
        return false;
    }
    return kvm_cpu_handle_exit(cpu);
}

static bool kvm_cpu_init_one(CPUState *cpu, int nr_cpus, GError **errp);

bool kvm_vcpu_create(CPUState *cpu, int nr_cpus, GError **errp)
{
    static bool kick_handler_installed;
    if (!kick_handler_installed) {
        struct sigaction sa = { .sa_handler = kvm_cpu_kick_handler };
        sigemptyset(&sa.sa_mask);
        sigaction(SIG_VCPU_KICK, &sa, NULL);
        kick_handler_installed = true;
    }
    cpu->accel = g_new0(AccelCPUState, 1);
    cpu->accel->fd = -1;
    return kvm_cpu_init_one(cpu, nr_cpus, errp);
}

static bool kvm_cpu_init_one(CPUState *cpu, int nr_cpus, GError **errp)
{
    AccelCPUState *kc = cpu->accel;

    kc->fd = ioctl(kvm_state->vmfd, KVM_CREATE_VCPU, (unsigned long)cpu->index);
    if (kc->fd < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "KVM_CREATE_VCPU %d: %s", cpu->index, g_strerror(errno));
        return false;
    }
    kc->run = mmap(NULL, kvm_state->vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                   kc->fd, 0);
    if (kc->run == MAP_FAILED) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "mmap of vCPU %d's run area: %s", cpu->index, g_strerror(errno));
        kc->run = NULL;
        return false;
    }
    g_autofree struct kvm_cpuid2 *cpuid = kvm_cpuid_for_vcpu(cpu->index, nr_cpus, errp);
    if (!cpuid) {
        return false;
    }
    if (ioctl(kc->fd, KVM_SET_CPUID2, cpuid) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "KVM_SET_CPUID2 on vCPU %d: %s", cpu->index, g_strerror(errno));
        return false;
    }

    /* Local interrupt pins as a PC wires them: LINT0 ExtINT, LINT1 NMI. */
    struct kvm_lapic_state lapic;
    if (ioctl(kc->fd, KVM_GET_LAPIC, &lapic) == 0) {
        uint32_t *lvt0 = (uint32_t *)&lapic.regs[0x350];
        uint32_t *lvt1 = (uint32_t *)&lapic.regs[0x360];
        *lvt0 = (*lvt0 & ~0x700u) | (7u << 8);      /* ExtINT */
        *lvt1 = (*lvt1 & ~0x700u) | (4u << 8);      /* NMI */
        ioctl(kc->fd, KVM_SET_LAPIC, &lapic);
        kc->reset_lapic = lapic;
    }
    return true;
}

/* MSRs whose power-on value is 0 and that KVM keeps acting on if not reset. */
static const uint32_t kvm_reset_zero_msrs[] = {
    0x4b564d01, /* MSR_KVM_SYSTEM_TIME_NEW */
    0x4b564d02, /* MSR_KVM_ASYNC_PF_EN */
    0x4b564d03, /* MSR_KVM_STEAL_TIME */
    0x4b564d04, /* MSR_KVM_PV_EOI_EN */
    0x12,       /* MSR_KVM_SYSTEM_TIME (old) */
};

void kvm_vcpu_reset(CPUState *cpu)
{
    AccelCPUState *kc = cpu->accel;
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry entries[G_N_ELEMENTS(kvm_reset_zero_msrs)];
    } msrs = { .hdr.nmsrs = G_N_ELEMENTS(kvm_reset_zero_msrs) };
    for (unsigned i = 0; i < G_N_ELEMENTS(kvm_reset_zero_msrs); i++) {
        msrs.entries[i].index = kvm_reset_zero_msrs[i];
    }
    /* Some may be unsupported: KVM stops at the first it refuses. */
    ioctl(kc->fd, KVM_SET_MSRS, &msrs);

    ioctl(kc->fd, KVM_SET_LAPIC, &kc->reset_lapic);

    struct kvm_mp_state mp = {
        .mp_state = cpu->index == 0 ? KVM_MP_STATE_RUNNABLE : KVM_MP_STATE_UNINITIALIZED,
    };
    ioctl(kc->fd, KVM_SET_MP_STATE, &mp);

    struct kvm_vcpu_events events;
    if (ioctl(kc->fd, KVM_GET_VCPU_EVENTS, &events) == 0) {
        memset(&events.exception, 0, sizeof(events.exception));
        memset(&events.interrupt, 0, sizeof(events.interrupt));
        events.nmi.injected = 0;
        events.nmi.pending = 0;
        events.flags = 0;
        ioctl(kc->fd, KVM_SET_VCPU_EVENTS, &events);
    }

    /* The reset vector state; the boot loader overrides it for the BSP. */
    struct kvm_sregs sregs;
    if (ioctl(kc->fd, KVM_GET_SREGS, &sregs) == 0) {
        struct kvm_segment seg = {
            .base = 0, .limit = 0xffff, .selector = 0, .type = 3, .present = 1, .s = 1,
        };
        sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = seg;
        sregs.cs = seg;
        sregs.cs.type = 0xb;
        sregs.cs.selector = 0xf000;
        sregs.cs.base = 0xffff0000;
        sregs.cr0 = 0x60000010;
        sregs.cr2 = sregs.cr3 = sregs.cr4 = 0;
        sregs.efer = 0;
        memset(sregs.interrupt_bitmap, 0, sizeof(sregs.interrupt_bitmap));
        ioctl(kc->fd, KVM_SET_SREGS, &sregs);
    }
    struct kvm_regs regs = { .rip = 0xfff0, .rflags = 0x2, .rdx = 0x600 };
    ioctl(kc->fd, KVM_SET_REGS, &regs);
}

/* ---- The neutral state (include/hw/x86/cpu-state.h) ---- */

static void kvm_seg_to_neutral(X86Segment *d, const struct kvm_segment *s)
{
    *d = (X86Segment) {
        .base = s->base, .limit = s->limit, .selector = s->selector, .type = s->type,
        .s = s->s, .dpl = s->dpl, .present = s->present, .avl = s->avl, .l = s->l,
        .db = s->db, .g = s->g, .unusable = s->unusable,
    };
}

static void kvm_seg_from_neutral(struct kvm_segment *d, const X86Segment *s)
{
    *d = (struct kvm_segment) {
        .base = s->base, .limit = s->limit, .selector = s->selector, .type = s->type,
        .s = s->s, .dpl = s->dpl, .present = s->present, .avl = s->avl, .l = s->l,
        .db = s->db, .g = s->g, .unusable = s->unusable,
    };
}

/* struct kvm_regs in encoding order of the neutral regs[]. */
static __u64 *kvm_regs_slot(struct kvm_regs *r, int i)
{
    __u64 *const map[X86_NR_GPRS] = {
        &r->rax, &r->rcx, &r->rdx, &r->rbx, &r->rsp, &r->rbp, &r->rsi, &r->rdi,
        &r->r8, &r->r9, &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15,
    };
    return map[i];
}

/*
 * The MSRs the neutral state names, in its field order (the MTRRs apart,
 * below). TSC_ADJUST last: KVM stops at the first MSR it refuses.
 */
#define KVM_NEUTRAL_MSRS 16
static const uint32_t kvm_neutral_msr_index[KVM_NEUTRAL_MSRS] = {
    X86_MSR_TSC, X86_MSR_TSC_AUX, X86_MSR_TSC_DEADLINE, X86_MSR_STAR, X86_MSR_LSTAR,
    X86_MSR_CSTAR, X86_MSR_SFMASK, X86_MSR_KERNEL_GS_BASE, X86_MSR_SYSENTER_CS,
    X86_MSR_SYSENTER_ESP, X86_MSR_SYSENTER_EIP, X86_MSR_PAT, X86_MSR_MISC_ENABLE,
    X86_MSR_MTRR_DEF_TYPE, X86_MSR_APIC_BASE, X86_MSR_TSC_ADJUST,
};

static uint64_t *kvm_neutral_msr_field(X86CPUState *st, int i)
{
    uint64_t *const map[KVM_NEUTRAL_MSRS] = {
        &st->tsc, &st->tsc_aux, &st->tsc_deadline, &st->star, &st->lstar, &st->cstar,
        &st->sfmask, &st->kernel_gs_base, &st->sysenter_cs, &st->sysenter_esp,
        &st->sysenter_eip, &st->pat, &st->misc_enable, &st->mtrr_def_type, &st->apic_base,
        &st->tsc_adjust,
    };
    return map[i];
}

typedef struct KVMNeutralMsrs {
    struct kvm_msrs hdr;
    struct kvm_msr_entry e[KVM_NEUTRAL_MSRS];
} KVMNeutralMsrs;

static bool kvm_fail(GError **errp, CPUState *cpu, const char *what)
{
    g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno), "vCPU %d: %s: %s",
                cpu->index, what, g_strerror(errno));
    return false;
}

/*
 * The MTRRs: MTRRdefType, the variable pairs MTRRcap.VCNT reports (KVM
 * has 8, as many as the neutral state holds) and, if MTRRcap says so, the
 * fixed ranges, in that order. KVM emulates them for every vCPU.
 */
#define KVM_MTRR_MSRS (1 + 2 * X86_MTRR_NR_VAR + X86_MTRR_NR_FIXED)
#define KVM_MTRR_PHYSMASK_VALID (1ULL << 11)

typedef struct KVMMtrrMsrs {
    struct kvm_msrs hdr;
    struct kvm_msr_entry e[KVM_MTRR_MSRS];
    int vcnt;                   /* MTRRcap.VCNT */
    int nvar;                   /* variable pairs in e[], at most X86_MTRR_NR_VAR */
    bool fixed;                 /* fixed ranges in e[] */
} KVMMtrrMsrs;

/* Ask @cpu's MTRRcap and list the MSRs it has. */
static bool kvm_mtrr_msrs_init(CPUState *cpu, KVMMtrrMsrs *m, GError **errp)
{
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e;
    } cap = { .hdr.nmsrs = 1, .e.index = X86_MSR_MTRRCAP };
    uint32_t n = 0;

    if (ioctl(cpu->accel->fd, KVM_GET_MSRS, &cap) != 1) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "vCPU %d: KVM_GET_MSRS: MTRRcap "
                    "refused", cpu->index);
        return false;
    }
    memset(m, 0, sizeof(*m));
    m->vcnt = (int)(cap.e.data & X86_MTRRCAP_VCNT_MASK);
    m->nvar = MIN(m->vcnt, X86_MTRR_NR_VAR);
    m->fixed = cap.e.data & X86_MTRRCAP_FIX;
    m->e[n++].index = X86_MSR_MTRR_DEF_TYPE;
    for (int i = 0; i < 2 * m->nvar; i++) {
        m->e[n++].index = X86_MSR_MTRR_PHYSBASE0 + (uint32_t)i;
    }
    for (int i = 0; m->fixed && i < X86_MTRR_NR_FIXED; i++) {
        m->e[n++].index = x86_mtrr_fixed_msr(i);
    }
    m->hdr.nmsrs = n;
    return true;
}

static bool kvm_vcpu_get_mtrrs(CPUState *cpu, X86CPUState *st, GError **errp)
{
    KVMMtrrMsrs m;
    uint32_t n = 0;

    if (!kvm_mtrr_msrs_init(cpu, &m, errp)) {
        return false;
    }
    int r = ioctl(cpu->accel->fd, KVM_GET_MSRS, &m.hdr);
    if (r != (int)m.hdr.nmsrs) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "vCPU %d: KVM_GET_MSRS read %d of "
                    "the %u MTRRs", cpu->index, r, m.hdr.nmsrs);
        return false;
    }
    st->mtrr_def_type = m.e[n++].data;
    for (int i = 0; i < 2 * m.nvar; i++) {
        st->mtrr_var[i] = m.e[n++].data;
    }
    for (int i = 0; m.fixed && i < X86_MTRR_NR_FIXED; i++) {
        st->mtrr_fixed[i] = m.e[n++].data;
    }
    return true;
}

static bool kvm_vcpu_set_mtrrs(CPUState *cpu, const X86CPUState *st, GError **errp)
{
    KVMMtrrMsrs m;
    uint32_t n = 0;

    if (!kvm_mtrr_msrs_init(cpu, &m, errp)) {
        return false;
    }
    /* What this vCPU cannot hold must be unused. */
    for (int i = m.nvar; i < X86_MTRR_NR_VAR; i++) {
        if (st->mtrr_var[2 * i + 1] & KVM_MTRR_PHYSMASK_VALID) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "vCPU %d: the state uses "
                        "variable MTRR %d, this vCPU has %d", cpu->index, i, m.vcnt);
            return false;
        }
    }
    for (int i = 0; !m.fixed && i < X86_MTRR_NR_FIXED; i++) {
        if (st->mtrr_fixed[i]) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "vCPU %d: the state sets "
                        "fixed-range MTRRs, this vCPU has none", cpu->index);
            return false;
        }
    }
    m.e[n++].data = st->mtrr_def_type;
    for (int i = 0; i < 2 * m.nvar; i++) {
        m.e[n++].data = st->mtrr_var[i];
    }
    for (int i = 0; m.fixed && i < X86_MTRR_NR_FIXED; i++) {
        m.e[n++].data = st->mtrr_fixed[i];
    }
    int r = ioctl(cpu->accel->fd, KVM_SET_MSRS, &m.hdr);
    if (r != (int)m.hdr.nmsrs) {
        bool refused = r >= 0 && r < (int)m.hdr.nmsrs;
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "vCPU %d: KVM_SET_MSRS refused MTRR "
                    "MSR 0x%x (value 0x%" G_GINT64_MODIFIER "x)", cpu->index,
                    refused ? m.e[r].index : 0, refused ? (uint64_t)m.e[r].data : 0);
        return false;
    }
    return true;
}

bool kvm_vcpu_get_state(CPUState *cpu, X86CPUState *st, GError **errp)
{
    int fd = cpu->accel->fd;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_vcpu_events ev;
    struct kvm_mp_state mp;

    memset(st, 0, sizeof(*st));
    if (ioctl(fd, KVM_GET_REGS, &regs) < 0) {
        return kvm_fail(errp, cpu, "KVM_GET_REGS");
    }
    if (ioctl(fd, KVM_GET_SREGS, &sregs) < 0) {
        return kvm_fail(errp, cpu, "KVM_GET_SREGS");
    }
    for (int i = 0; i < X86_NR_GPRS; i++) {
        st->regs[i] = *kvm_regs_slot(&regs, i);
    }
    st->rip = regs.rip;
    st->rflags = regs.rflags;
    const struct kvm_segment *segs[X86_NR_SEGS] = {
        &sregs.es, &sregs.cs, &sregs.ss, &sregs.ds, &sregs.fs, &sregs.gs,
        &sregs.ldt, &sregs.tr,
    };
    for (int i = 0; i < X86_NR_SEGS; i++) {
        kvm_seg_to_neutral(&st->segs[i], segs[i]);
    }
    st->gdt = (X86DescTable) { .base = sregs.gdt.base, .limit = sregs.gdt.limit };
    st->idt = (X86DescTable) { .base = sregs.idt.base, .limit = sregs.idt.limit };
    st->cr0 = sregs.cr0;
    st->cr2 = sregs.cr2;
    st->cr3 = sregs.cr3;
    st->cr4 = sregs.cr4;
    st->cr8 = sregs.cr8;
    st->efer = sregs.efer;

    struct kvm_xsave *xs = g_malloc0(sizeof(*xs));
    if (ioctl(fd, KVM_GET_XSAVE, xs) == 0) {
        memcpy(st->xsave, xs->region, MIN(sizeof(xs->region), sizeof(st->xsave)));
        st->xsave_len = MIN(sizeof(xs->region), sizeof(st->xsave));
    }
    g_free(xs);

    KVMNeutralMsrs msrs = { .hdr.nmsrs = KVM_NEUTRAL_MSRS };
    for (int i = 0; i < KVM_NEUTRAL_MSRS; i++) {
        msrs.e[i].index = kvm_neutral_msr_index[i];
    }
    /* KVM stops at the first MSR it does not know; the rest stay 0. */
    int n = ioctl(fd, KVM_GET_MSRS, &msrs);
    for (int i = 0; i < n; i++) {
        *kvm_neutral_msr_field(st, i) = msrs.e[i].data;
    }
    if (!kvm_vcpu_get_mtrrs(cpu, st, errp)) {
        return false;
    }

    if (ioctl(fd, KVM_GET_VCPU_EVENTS, &ev) == 0) {
        st->exception_pending = ev.exception.injected || ev.exception.pending;
        st->exception_vector = ev.exception.nr;
        st->exception_has_error = ev.exception.has_error_code;
        st->exception_error = ev.exception.error_code;
        st->interrupt_injected = ev.interrupt.injected;
        st->interrupt_vector = ev.interrupt.nr;
        st->interrupt_shadow = ev.interrupt.shadow;
        st->nmi_pending = ev.nmi.pending || ev.nmi.injected;
        st->nmi_masked = ev.nmi.masked;
    }
    st->mp_state = X86_MP_RUNNABLE;
    if (ioctl(fd, KVM_GET_MP_STATE, &mp) == 0) {
        if (mp.mp_state == KVM_MP_STATE_HALTED) {
            st->mp_state = X86_MP_HALTED;
        } else if (mp.mp_state == KVM_MP_STATE_UNINITIALIZED ||
                   mp.mp_state == KVM_MP_STATE_INIT_RECEIVED) {
            st->mp_state = X86_MP_WAIT_FOR_SIPI;
        }
    }
    return true;
}

bool kvm_vcpu_set_state(CPUState *cpu, const X86CPUState *st, GError **errp)
{
    int fd = cpu->accel->fd;
    struct kvm_regs regs = { 0 };
    struct kvm_sregs sregs;

    if (ioctl(fd, KVM_GET_SREGS, &sregs) < 0) {
        return kvm_fail(errp, cpu, "KVM_GET_SREGS");
    }
    struct kvm_segment *segs[X86_NR_SEGS] = {
        &sregs.es, &sregs.cs, &sregs.ss, &sregs.ds, &sregs.fs, &sregs.gs,
        &sregs.ldt, &sregs.tr,
    };
    for (int i = 0; i < X86_NR_SEGS; i++) {
        kvm_seg_from_neutral(segs[i], &st->segs[i]);
    }
    sregs.gdt = (struct kvm_dtable) { .base = st->gdt.base, .limit = st->gdt.limit };
    sregs.idt = (struct kvm_dtable) { .base = st->idt.base, .limit = st->idt.limit };
    sregs.cr0 = st->cr0;
    sregs.cr2 = st->cr2;
    sregs.cr3 = st->cr3;
    sregs.cr4 = st->cr4;
    sregs.cr8 = st->cr8;
    sregs.efer = st->efer;
    if (st->apic_base) {
        sregs.apic_base = st->apic_base;
    }
    memset(sregs.interrupt_bitmap, 0, sizeof(sregs.interrupt_bitmap));
    if (ioctl(fd, KVM_SET_SREGS, &sregs) < 0) {
        return kvm_fail(errp, cpu, "KVM_SET_SREGS");
    }
    for (int i = 0; i < X86_NR_GPRS; i++) {
        *kvm_regs_slot(&regs, i) = st->regs[i];
    }
    regs.rip = st->rip;
    regs.rflags = st->rflags;
    if (ioctl(fd, KVM_SET_REGS, &regs) < 0) {
        return kvm_fail(errp, cpu, "KVM_SET_REGS");
    }
    if (st->xsave_len >= X86_FXSAVE_SIZE) {
        struct kvm_xsave *xs = g_malloc0(sizeof(*xs));
        memcpy(xs->region, st->xsave, MIN(sizeof(xs->region), st->xsave_len));
        int r = ioctl(fd, KVM_SET_XSAVE, xs);
        g_free(xs);
        if (r < 0) {
            return kvm_fail(errp, cpu, "KVM_SET_XSAVE");
        }
    }
    if (!kvm_vcpu_set_mtrrs(cpu, st, errp)) {
        return false;
    }
    struct kvm_mp_state mp = {
        .mp_state = st->mp_state == X86_MP_HALTED ? KVM_MP_STATE_HALTED
                    : st->mp_state == X86_MP_WAIT_FOR_SIPI ? KVM_MP_STATE_UNINITIALIZED
                    : KVM_MP_STATE_RUNNABLE,
    };
    if (ioctl(fd, KVM_SET_MP_STATE, &mp) < 0) {
        return kvm_fail(errp, cpu, "KVM_SET_MP_STATE");
    }
    return true;
}
