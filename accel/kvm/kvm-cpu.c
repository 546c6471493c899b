/*
 * vCPU threads: KVM_RUN, exits dispatched to devices under the BQL, and
 * the pause/resume handshake that stop, cont, reset and migration use.
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

#define SIG_VCPU_KICK SIGUSR1

static CPUState **cpus;
static int nr_cpus;
static bool all_stop = true;    /* BQL */
static GCond pause_cond;        /* a vCPU stopped */
static GCond resume_cond;       /* stop flags cleared */

int cpus_count(void)
{
    return nr_cpus;
}

CPUState *kvm_cpu(int index)
{
    return index >= 0 && index < nr_cpus ? cpus[index] : NULL;
}

int cpus_thread_id(int index)
{
    CPUState *cpu = kvm_cpu(index);
    return cpu ? g_atomic_int_get(&cpu->thread_id) : 0;
}

static void kvm_cpu_kick_handler(int sig)
{
    /* Only there to interrupt KVM_RUN. */
}

static void kvm_cpu_kick(CPUState *cpu)
{
    cpu->run->immediate_exit = 1;
    if (cpu->thread_started) {
        pthread_kill(cpu->pthread, SIG_VCPU_KICK);
    }
}

/*
 * CPU throttling for auto-converge: a thread kicks every vCPU each period;
 * a kicked vCPU sleeps for its share of the period outside the guest.
 */
#define THROTTLE_PERIOD_US 10000

static int throttle_percent;
static GThread *throttle_thread;
static GMutex throttle_lock;
static GCond throttle_cond;

static gpointer kvm_cpu_throttle_thread(gpointer opaque)
{
    g_mutex_lock(&throttle_lock);
    while (g_atomic_int_get(&throttle_percent) > 0) {
        gint64 next = g_get_monotonic_time() + THROTTLE_PERIOD_US;
        for (int i = 0; i < nr_cpus; i++) {
            g_atomic_int_set(&cpus[i]->throttle_pending, 1);
            cpus[i]->run->immediate_exit = 1;
            if (cpus[i]->thread_started) {
                pthread_kill(cpus[i]->pthread, SIG_VCPU_KICK);
            }
        }
        while (g_atomic_int_get(&throttle_percent) > 0 &&
               g_cond_wait_until(&throttle_cond, &throttle_lock, next)) {
            /* Woken for a new percentage: keep the period. */
        }
    }
    g_mutex_unlock(&throttle_lock);
    return NULL;
}

void cpus_set_throttle(int percent)
{
    percent = CLAMP(percent, 0, 99);
    g_mutex_lock(&throttle_lock);
    int old = g_atomic_int_get(&throttle_percent);
    g_atomic_int_set(&throttle_percent, percent);
    g_cond_broadcast(&throttle_cond);
    GThread *to_join = NULL;
    if (percent > 0 && old == 0) {
        if (throttle_thread) {
            to_join = throttle_thread;
        }
        throttle_thread = g_thread_new("cpu-throttle", kvm_cpu_throttle_thread, NULL);
    } else if (percent == 0 && throttle_thread) {
        to_join = throttle_thread;
        throttle_thread = NULL;
    }
    g_mutex_unlock(&throttle_lock);
    if (to_join) {
        g_thread_join(to_join);
    }
}

int cpus_get_throttle(void)
{
    return g_atomic_int_get(&throttle_percent);
}

/* The vCPU's share of sleep for one throttle period, outside any lock. */
static void kvm_cpu_throttle_sleep(CPUState *cpu)
{
    if (!g_atomic_int_compare_and_exchange(&cpu->throttle_pending, 1, 0)) {
        return;
    }
    int pct = g_atomic_int_get(&throttle_percent);
    if (pct <= 0) {
        return;
    }
    gint64 sleep_us = (gint64)THROTTLE_PERIOD_US * pct / (100 - pct);
    g_usleep((gulong)MIN(sleep_us, 1000000));
}

static gboolean kvm_cpu_report_error(gpointer opaque)
{
    CPUState *cpu = opaque;
    g_autoptr(GString) regs = g_string_new(NULL);
    cpus_dump_registers(cpu->index, regs);
    fprintf(stderr, "%s", regs->str);
    vm_stop(RUN_STATE_INTERNAL_ERROR);
    return G_SOURCE_REMOVE;
}

static void kvm_cpu_handle_io(CPUState *cpu)
{
    struct kvm_run *run = cpu->run;
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
    struct kvm_run *run = cpu->run;
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
    struct kvm_run *run = cpu->run;

    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        kvm_cpu_handle_io(cpu);
        cpu->exit_needs_completion = true;
        return true;
    case KVM_EXIT_MMIO:
        kvm_cpu_handle_mmio(cpu);
        cpu->exit_needs_completion = true;
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
        main_loop_schedule(kvm_cpu_report_error, cpu);
        return false;
    case KVM_EXIT_FAIL_ENTRY:
        fprintf(stderr, "KVM: entry failed, hardware error 0x%llx\n",
                (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        main_loop_schedule(kvm_cpu_report_error, cpu);
        return false;
    default:
        break;
    }
    fprintf(stderr, "KVM: unhandled exit reason %u on CPU %d\n", run->exit_reason, cpu->index);
    main_loop_schedule(kvm_cpu_report_error, cpu);
    return false;
}

static gpointer kvm_cpu_thread(gpointer opaque)
{
    CPUState *cpu = opaque;

    g_atomic_int_set(&cpu->thread_id, (int)syscall(SYS_gettid));
    bql_lock();
    cpu->pthread = pthread_self();
    cpu->thread_started = true;
    for (;;) {
        while (all_stop || cpu->self_stop || cpu->exit_thread) {
            if (cpu->exit_needs_completion && !cpu->exit_thread) {
                /*
                 * An IN or MMIO read is only finished when KVM writes the
                 * result into the registers on the next KVM_RUN; do that now
                 * (immediate_exit returns before guest code runs), so the
                 * state a parked vCPU reports is complete.
                 */
                cpu->exit_needs_completion = false;
                cpu->run->immediate_exit = 1;
                bql_unlock();
                ioctl(cpu->fd, KVM_RUN, 0);
                bql_lock();
                continue;
            }
            if (!cpu->stopped) {
                cpu->stopped = true;
                g_cond_broadcast(&pause_cond);
            }
            if (cpu->exit_thread) {
                bql_unlock();
                return NULL;
            }
            bql_cond_wait(&resume_cond);
        }
        cpu->stopped = false;
        cpu->exit_needs_completion = false;
        cpu->run->immediate_exit = 0;
        bql_unlock();

        int r = ioctl(cpu->fd, KVM_RUN, 0);
        int err = errno;

        kvm_cpu_throttle_sleep(cpu);
        bql_lock();
        if (r < 0) {
            if (err == EINTR || err == EAGAIN) {
                continue;
            }
            fprintf(stderr, "KVM_RUN on CPU %d: %s\n", cpu->index, g_strerror(err));
            cpu->self_stop = true;
            main_loop_schedule(kvm_cpu_report_error, cpu);
            continue;
        }
        if (!kvm_cpu_handle_exit(cpu)) {
            cpu->self_stop = true;
        }
    }
}

static bool kvm_cpu_init_one(CPUState *cpu, GError **errp)
{
    cpu->fd = ioctl(kvm_state->vmfd, KVM_CREATE_VCPU, (unsigned long)cpu->index);
    if (cpu->fd < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "KVM_CREATE_VCPU %d: %s", cpu->index, g_strerror(errno));
        return false;
    }
    cpu->run = mmap(NULL, kvm_state->vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                    cpu->fd, 0);
    if (cpu->run == MAP_FAILED) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "mmap of vCPU %d's run area: %s", cpu->index, g_strerror(errno));
        cpu->run = NULL;
        return false;
    }
    g_autofree struct kvm_cpuid2 *cpuid = kvm_cpuid_for_vcpu(cpu->index, nr_cpus, errp);
    if (!cpuid) {
        return false;
    }
    if (ioctl(cpu->fd, KVM_SET_CPUID2, cpuid) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "KVM_SET_CPUID2 on vCPU %d: %s", cpu->index, g_strerror(errno));
        return false;
    }

    /* Local interrupt pins as a PC wires them: LINT0 ExtINT, LINT1 NMI. */
    struct kvm_lapic_state lapic;
    if (ioctl(cpu->fd, KVM_GET_LAPIC, &lapic) == 0) {
        uint32_t *lvt0 = (uint32_t *)&lapic.regs[0x350];
        uint32_t *lvt1 = (uint32_t *)&lapic.regs[0x360];
        *lvt0 = (*lvt0 & ~0x700u) | (7u << 8);      /* ExtINT */
        *lvt1 = (*lvt1 & ~0x700u) | (4u << 8);      /* NMI */
        ioctl(cpu->fd, KVM_SET_LAPIC, &lapic);
        cpu->reset_lapic = lapic;
    }
    return true;
}

bool kvm_cpus_create(int n, GError **errp)
{
    struct sigaction sa = { .sa_handler = kvm_cpu_kick_handler };
    sigemptyset(&sa.sa_mask);
    sigaction(SIG_VCPU_KICK, &sa, NULL);

    nr_cpus = n;
    cpus = g_new0(CPUState *, n);
    for (int i = 0; i < n; i++) {
        cpus[i] = g_new0(CPUState, 1);
        cpus[i]->index = i;
        cpus[i]->fd = -1;
        if (!kvm_cpu_init_one(cpus[i], errp)) {
            return false;
        }
    }
    for (int i = 0; i < n; i++) {
        g_autofree char *name = g_strdup_printf("CPU %d/KVM", i);
        cpus[i]->thread = g_thread_new(name, kvm_cpu_thread, cpus[i]);
    }
    return true;
}

void kvm_cpus_destroy(void)
{
    if (!cpus) {
        return;
    }
    g_assert(bql_locked());
    for (int i = 0; i < nr_cpus; i++) {
        cpus[i]->exit_thread = true;
        kvm_cpu_kick(cpus[i]);
    }
    g_cond_broadcast(&resume_cond);
    bql_unlock();
    for (int i = 0; i < nr_cpus; i++) {
        g_thread_join(cpus[i]->thread);
        cpus[i]->thread = NULL;
    }
    bql_lock();
}

static bool cpus_all_stopped(void)
{
    for (int i = 0; i < nr_cpus; i++) {
        if (!cpus[i]->stopped) {
            return false;
        }
    }
    return true;
}

bool cpus_all_paused(void)
{
    return all_stop && cpus_all_stopped();
}

void cpus_pause_all(void)
{
    g_assert(bql_locked());
    all_stop = true;
    for (int i = 0; i < nr_cpus; i++) {
        if (!cpus[i]->stopped) {
            kvm_cpu_kick(cpus[i]);
        }
    }
    while (!cpus_all_stopped()) {
        bql_cond_wait(&pause_cond);
    }
}

void cpus_resume_all(void)
{
    g_assert(bql_locked());
    all_stop = false;
    for (int i = 0; i < nr_cpus; i++) {
        cpus[i]->self_stop = false;
    }
    g_cond_broadcast(&resume_cond);
}

/* MSRs whose power-on value is 0 and that KVM keeps acting on if not reset. */
static const uint32_t kvm_reset_zero_msrs[] = {
    0x4b564d01, /* MSR_KVM_SYSTEM_TIME_NEW */
    0x4b564d02, /* MSR_KVM_ASYNC_PF_EN */
    0x4b564d03, /* MSR_KVM_STEAL_TIME */
    0x4b564d04, /* MSR_KVM_PV_EOI_EN */
    0x12,       /* MSR_KVM_SYSTEM_TIME (old) */
};

void kvm_cpu_reset(CPUState *cpu)
{
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry entries[G_N_ELEMENTS(kvm_reset_zero_msrs)];
    } msrs = { .hdr.nmsrs = G_N_ELEMENTS(kvm_reset_zero_msrs) };
    for (unsigned i = 0; i < G_N_ELEMENTS(kvm_reset_zero_msrs); i++) {
        msrs.entries[i].index = kvm_reset_zero_msrs[i];
    }
    /* Some may be unsupported: KVM stops at the first it refuses. */
    ioctl(cpu->fd, KVM_SET_MSRS, &msrs);

    ioctl(cpu->fd, KVM_SET_LAPIC, &cpu->reset_lapic);

    struct kvm_mp_state mp = {
        .mp_state = cpu->index == 0 ? KVM_MP_STATE_RUNNABLE : KVM_MP_STATE_UNINITIALIZED,
    };
    ioctl(cpu->fd, KVM_SET_MP_STATE, &mp);

    struct kvm_vcpu_events events;
    if (ioctl(cpu->fd, KVM_GET_VCPU_EVENTS, &events) == 0) {
        memset(&events.exception, 0, sizeof(events.exception));
        memset(&events.interrupt, 0, sizeof(events.interrupt));
        events.nmi.injected = 0;
        events.nmi.pending = 0;
        events.flags = 0;
        ioctl(cpu->fd, KVM_SET_VCPU_EVENTS, &events);
    }

    /* The reset vector state; the boot loader overrides it for the BSP. */
    struct kvm_sregs sregs;
    if (ioctl(cpu->fd, KVM_GET_SREGS, &sregs) == 0) {
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
        ioctl(cpu->fd, KVM_SET_SREGS, &sregs);
    }
    struct kvm_regs regs = { .rip = 0xfff0, .rflags = 0x2, .rdx = 0x600 };
    ioctl(cpu->fd, KVM_SET_REGS, &regs);
}

static void dump_segment(GString *out, const char *name, const struct kvm_segment *s)
{
    uint32_t flags = (uint32_t)s->type << 8 | (uint32_t)s->s << 12 | (uint32_t)s->dpl << 13 |
                     (uint32_t)s->present << 15 | (uint32_t)s->avl << 20 |
                     (uint32_t)s->l << 21 | (uint32_t)s->db << 22 | (uint32_t)s->g << 23;
    g_string_append_printf(out, "%s =%04x %016llx %08x %08x\n", name, s->selector,
                           (unsigned long long)s->base, s->limit, flags);
}

void cpus_dump_registers(int index, GString *out)
{
    CPUState *cpu = kvm_cpu(index);
    struct kvm_regs r;
    struct kvm_sregs s;

    if (!cpu || ioctl(cpu->fd, KVM_GET_REGS, &r) < 0 ||
        ioctl(cpu->fd, KVM_GET_SREGS, &s) < 0) {
        g_string_append_printf(out, "CPU#%d: registers unavailable\n", index);
        return;
    }
    g_string_append_printf(out, "CPU#%d\n", index);
    g_string_append_printf(out, "RAX=%016llx RBX=%016llx RCX=%016llx RDX=%016llx\n",
                           r.rax, r.rbx, r.rcx, r.rdx);
    g_string_append_printf(out, "RSI=%016llx RDI=%016llx RBP=%016llx RSP=%016llx\n",
                           r.rsi, r.rdi, r.rbp, r.rsp);
    g_string_append_printf(out, "R8 =%016llx R9 =%016llx R10=%016llx R11=%016llx\n",
                           r.r8, r.r9, r.r10, r.r11);
    g_string_append_printf(out, "R12=%016llx R13=%016llx R14=%016llx R15=%016llx\n",
                           r.r12, r.r13, r.r14, r.r15);
    g_string_append_printf(out, "RIP=%016llx RFL=%08llx CPL=%u\n", r.rip, r.rflags,
                           s.cs.dpl);
    dump_segment(out, "ES", &s.es);
    dump_segment(out, "CS", &s.cs);
    dump_segment(out, "SS", &s.ss);
    dump_segment(out, "DS", &s.ds);
    dump_segment(out, "FS", &s.fs);
    dump_segment(out, "GS", &s.gs);
    dump_segment(out, "LDT", &s.ldt);
    dump_segment(out, "TR", &s.tr);
    g_string_append_printf(out, "GDT=     %016llx %08x\n", s.gdt.base, s.gdt.limit);
    g_string_append_printf(out, "IDT=     %016llx %08x\n", s.idt.base, s.idt.limit);
    g_string_append_printf(out, "CR0=%08llx CR2=%016llx CR3=%016llx CR4=%08llx\n",
                           s.cr0, s.cr2, s.cr3, s.cr4);
    g_string_append_printf(out, "EFER=%016llx\n", s.efer);
}
