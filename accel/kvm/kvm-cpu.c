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
    cpu->accel->mig = kvm_cpu_mig_state_new(cpu);
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

    /* The TSC rate, for the migration stream (reading it later would wait for KVM_RUN). */
    if (cpu->index == 0 && kvm_check_extension(KVM_CAP_GET_TSC_KHZ)) {
        int khz = ioctl(kc->fd, KVM_GET_TSC_KHZ, 0);
        kvm_state->tsc_khz = khz > 0 ? (uint32_t)khz : 0;
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
    kvm_cpu_mig_state_reset(kc->mig);
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

/* ---- The neutral state (include/hw/x86/cpu-state.h), kvm-state.c ---- */

bool kvm_vcpu_get_state(CPUState *cpu, X86CPUState *st, GError **errp)
{
    return kvm_cpu_get_neutral(cpu, st, errp);
}

bool kvm_vcpu_set_state(CPUState *cpu, const X86CPUState *st, GError **errp)
{
    return kvm_cpu_set_neutral(cpu, cpu->accel->mig, st, errp);
}
