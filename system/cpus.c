/*
 * vCPU threads and the pause/resume handshake that stop, cont, reset and
 * migration use; auto-converge throttling; the register dump. The guest
 * itself runs inside AccelOps.vcpu_exec.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <gio/gio.h>

#include "system/accel.h"
#include "system/cpus.h"
#include "system/main-loop.h"
#include "system/runstate.h"
#include "system/runstate-internal.h"

static CPUState **cpus;
static int nr_cpus;
static bool all_stop = true;    /* BQL: the run state says paused */
static int quiesce_depth;       /* BQL: cpus_quiesce() calls in progress */
static GCond pause_cond;        /* a vCPU stopped */
static GCond resume_cond;       /* stop flags cleared */

int cpus_count(void)
{
    return nr_cpus;
}

CPUState *cpu_get(int index)
{
    return index >= 0 && index < nr_cpus ? cpus[index] : NULL;
}

int cpus_thread_id(int index)
{
    CPUState *cpu = cpu_get(index);
    return cpu ? g_atomic_int_get(&cpu->thread_id) : 0;
}

static void cpu_kick(CPUState *cpu)
{
    const AccelOps *ops = accel_current();
    if (ops->runs_guest_code) {
        ops->vcpu_kick(cpu);
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

static gpointer cpus_throttle_thread(gpointer opaque)
{
    g_mutex_lock(&throttle_lock);
    while (g_atomic_int_get(&throttle_percent) > 0) {
        gint64 next = g_get_monotonic_time() + THROTTLE_PERIOD_US;
        for (int i = 0; i < nr_cpus; i++) {
            g_atomic_int_set(&cpus[i]->throttle_pending, 1);
            cpu_kick(cpus[i]);
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
        throttle_thread = g_thread_new("cpu-throttle", cpus_throttle_thread, NULL);
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
static void cpu_throttle_sleep(CPUState *cpu)
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

static gboolean cpu_report_error_bh(gpointer opaque)
{
    CPUState *cpu = opaque;
    g_autoptr(GString) regs = g_string_new(NULL);
    cpus_dump_registers(cpu->index, regs);
    fprintf(stderr, "%s", regs->str);
    vm_stop(RUN_STATE_INTERNAL_ERROR);
    return G_SOURCE_REMOVE;
}

void cpu_report_error(CPUState *cpu)
{
    main_loop_schedule(cpu_report_error_bh, cpu);
}

static gpointer cpu_thread(gpointer opaque)
{
    CPUState *cpu = opaque;
    const AccelOps *ops = accel_current();

    g_atomic_int_set(&cpu->thread_id, (int)syscall(SYS_gettid));
    bql_lock();
    cpu->pthread = pthread_self();
    cpu->thread_started = true;
    for (;;) {
        while (all_stop || quiesce_depth || cpu->self_stop || cpu->exit_thread) {
            if (ops->vcpu_park && !cpu->exit_thread && ops->vcpu_park(cpu)) {
                /* The BQL was dropped: the flags may have changed. */
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
        if (!ops->vcpu_exec(cpu)) {
            cpu->self_stop = true;
        }
        if (g_atomic_int_get(&cpu->throttle_pending)) {
            bql_unlock();
            cpu_throttle_sleep(cpu);
            bql_lock();
        }
    }
}

bool cpus_create(int n, GError **errp)
{
    const AccelOps *ops = accel_current();

    nr_cpus = n;
    cpus = g_new0(CPUState *, n);
    for (int i = 0; i < n; i++) {
        cpus[i] = g_new0(CPUState, 1);
        cpus[i]->index = i;
        if (!ops->vcpu_init(cpus[i], errp)) {
            return false;
        }
    }
    if (!ops->runs_guest_code) {
        /* Nothing ever runs them: they count as parked from the start. */
        for (int i = 0; i < n; i++) {
            cpus[i]->stopped = true;
        }
        return true;
    }
    for (int i = 0; i < n; i++) {
        g_autofree char *accel = g_ascii_strup(ops->name, -1);
        g_autofree char *name = g_strdup_printf("CPU %d/%s", i, accel);
        cpus[i]->thread = g_thread_new(name, cpu_thread, cpus[i]);
    }
    return true;
}

void cpus_destroy(void)
{
    if (!cpus) {
        return;
    }
    g_assert(bql_locked());
    for (int i = 0; i < nr_cpus; i++) {
        cpus[i]->exit_thread = true;
        cpu_kick(cpus[i]);
    }
    g_cond_broadcast(&resume_cond);
    bql_unlock();
    for (int i = 0; i < nr_cpus; i++) {
        if (cpus[i]->thread) {
            g_thread_join(cpus[i]->thread);
            cpus[i]->thread = NULL;
        }
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

/*
 * Wait until every vCPU is parked. The kicks go out again on every wake:
 * another thread may have let the vCPUs run while the BQL was released.
 */
static void cpus_wait_all_stopped(void)
{
    while (!cpus_all_stopped()) {
        for (int i = 0; i < nr_cpus; i++) {
            if (!cpus[i]->stopped) {
                cpu_kick(cpus[i]);
            }
        }
        bql_cond_wait_until(&pause_cond, g_get_monotonic_time() + 100 * G_TIME_SPAN_MILLISECOND);
    }
}

void cpus_pause_all(void)
{
    g_assert(bql_locked());
    all_stop = true;
    cpus_wait_all_stopped();
}

void cpus_quiesce(void)
{
    g_assert(bql_locked());
    quiesce_depth++;
    cpus_wait_all_stopped();
}

void cpus_unquiesce(void)
{
    g_assert(bql_locked());
    g_assert(quiesce_depth > 0);
    if (--quiesce_depth == 0 && accel_current()->runs_guest_code) {
        g_cond_broadcast(&resume_cond);
    }
}

void cpus_resume_all(void)
{
    g_assert(bql_locked());
    all_stop = false;
    for (int i = 0; i < nr_cpus; i++) {
        cpus[i]->self_stop = false;
    }
    if (!accel_current()->runs_guest_code) {
        return;
    }
    g_cond_broadcast(&resume_cond);
}

void cpus_reset(void)
{
    const AccelOps *ops = accel_current();
    for (int i = 0; i < nr_cpus; i++) {
        ops->vcpu_reset(cpus[i]);
    }
}

bool cpu_get_state(int index, X86CPUState *st, GError **errp)
{
    CPUState *cpu = cpu_get(index);
    if (!cpu) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no vCPU %d", index);
        return false;
    }
    return accel_current()->vcpu_get_state(cpu, st, errp);
}

bool cpu_set_state(int index, const X86CPUState *st, GError **errp)
{
    CPUState *cpu = cpu_get(index);
    if (!cpu) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no vCPU %d", index);
        return false;
    }
    return accel_current()->vcpu_set_state(cpu, st, errp);
}

static void dump_segment(GString *out, const char *name, const X86Segment *s)
{
    uint32_t flags = (uint32_t)s->type << 8 | (uint32_t)s->s << 12 | (uint32_t)s->dpl << 13 |
                     (uint32_t)s->present << 15 | (uint32_t)s->avl << 20 |
                     (uint32_t)s->l << 21 | (uint32_t)s->db << 22 | (uint32_t)s->g << 23;
    g_string_append_printf(out, "%s =%04x %016" G_GINT64_MODIFIER "x %08x %08x\n", name,
                           s->selector, s->base, s->limit, flags);
}

void cpus_dump_registers(int index, GString *out)
{
    g_autofree X86CPUState *st = g_new0(X86CPUState, 1);
    g_autoptr(GError) err = NULL;

    /* A running vCPU's state is read with it parked, never torn. */
    cpus_quiesce();
    bool ok = cpu_get_state(index, st, &err);
    cpus_unquiesce();
    if (!ok) {
        g_string_append_printf(out, "CPU#%d: registers unavailable (%s)\n", index,
                               err->message);
        return;
    }
    const uint64_t *r = st->regs;
    g_string_append_printf(out, "RAX=%016" G_GINT64_MODIFIER "x RBX=%016" G_GINT64_MODIFIER
                           "x RCX=%016" G_GINT64_MODIFIER "x RDX=%016" G_GINT64_MODIFIER "x\n",
                           r[X86_RAX], r[X86_RBX], r[X86_RCX], r[X86_RDX]);
    g_string_append_printf(out, "RSI=%016" G_GINT64_MODIFIER "x RDI=%016" G_GINT64_MODIFIER
                           "x RBP=%016" G_GINT64_MODIFIER "x RSP=%016" G_GINT64_MODIFIER "x\n",
                           r[X86_RSI], r[X86_RDI], r[X86_RBP], r[X86_RSP]);
    g_string_append_printf(out, "R8 =%016" G_GINT64_MODIFIER "x R9 =%016" G_GINT64_MODIFIER
                           "x R10=%016" G_GINT64_MODIFIER "x R11=%016" G_GINT64_MODIFIER "x\n",
                           r[X86_R8], r[X86_R9], r[X86_R10], r[X86_R11]);
    g_string_append_printf(out, "R12=%016" G_GINT64_MODIFIER "x R13=%016" G_GINT64_MODIFIER
                           "x R14=%016" G_GINT64_MODIFIER "x R15=%016" G_GINT64_MODIFIER "x\n",
                           r[X86_R12], r[X86_R13], r[X86_R14], r[X86_R15]);
    g_string_append_printf(out, "RIP=%016" G_GINT64_MODIFIER "x RFL=%08" G_GINT64_MODIFIER
                           "x CPL=%u\n", st->rip, st->rflags, st->segs[X86_SEG_CS].dpl);
    static const char *const names[X86_NR_SEGS] = {
        "ES", "CS", "SS", "DS", "FS", "GS", "LDT", "TR",
    };
    for (int i = 0; i < X86_NR_SEGS; i++) {
        dump_segment(out, names[i], &st->segs[i]);
    }
    g_string_append_printf(out, "GDT=     %016" G_GINT64_MODIFIER "x %08x\n", st->gdt.base,
                           st->gdt.limit);
    g_string_append_printf(out, "IDT=     %016" G_GINT64_MODIFIER "x %08x\n", st->idt.base,
                           st->idt.limit);
    g_string_append_printf(out, "CR0=%08" G_GINT64_MODIFIER "x CR2=%016" G_GINT64_MODIFIER
                           "x CR3=%016" G_GINT64_MODIFIER "x CR4=%08" G_GINT64_MODIFIER "x\n",
                           st->cr0, st->cr2, st->cr3, st->cr4);
    g_string_append_printf(out, "EFER=%016" G_GINT64_MODIFIER "x\n", st->efer);
}
