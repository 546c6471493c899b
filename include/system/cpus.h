/*
 * The machine's vCPUs: one thread each (for accelerators that run guest
 * code), the pause/resume handshake that stop, cont, reset and migration
 * use, auto-converge throttling, and what the monitors see (a count, a
 * thread id, a register dump). The accelerator runs the guest inside
 * the thread's loop through AccelOps (include/system/accel.h).
 */
#ifndef SYSTEM_CPUS_H
#define SYSTEM_CPUS_H

#include <pthread.h>
#include <stdbool.h>
#include <glib.h>

#include "hw/x86/cpu-state.h"

/* What each accelerator keeps per vCPU; defined by the accelerator. */
typedef struct AccelCPUState AccelCPUState;

typedef struct CPUState {
    int index;
    AccelCPUState *accel;
    GThread *thread;
    int thread_id;              /* gettid() once the thread runs */
    pthread_t pthread;          /* valid once thread_started */
    bool thread_started;        /* BQL */
    /* Guarded by the BQL. */
    bool stopped;               /* parked outside the guest */
    bool self_stop;             /* stopped itself (triple fault, error) */
    bool exit_thread;
    int throttle_pending;       /* atomic: the throttle thread asks for a pause */
} CPUState;

/*
 * Create @n vCPUs through the current accelerator, and their threads when
 * it runs guest code (parked until cpus_resume_all()).
 */
bool cpus_create(int n, GError **errp);
/* Stop all vCPU threads for good (at exit). BQL held. */
void cpus_destroy(void);
CPUState *cpu_get(int index);
/* Power-on state for every vCPU (vCPUs paused). */
void cpus_reset(void);

/* The architectural state of vCPU @index, with it paused. */
bool cpu_get_state(int index, X86CPUState *st, GError **errp);
bool cpu_set_state(int index, const X86CPUState *st, GError **errp);

/*
 * For an accelerator's vCPU code: the vCPU stopped on its own (an error or
 * a reset request); its thread parks until the next cpus_resume_all().
 */
void cpu_report_error(CPUState *cpu);

int cpus_count(void);
/* Host thread id (gettid) of vCPU @index, 0 before it started. */
int cpus_thread_id(int index);
/*
 * Append the registers of vCPU @index in the layout of HMP "info registers"
 * (RAX=... RIP=... RFL=... segments, CR0-4, EFER). Call with the BQL held.
 */
void cpus_dump_registers(int index, GString *out);



/*
 * Stop every vCPU outside KVM_RUN and wait until all have stopped (BQL
 * held; it is released while waiting). vCPUs stay stopped until
 * cpus_resume_all().
 */
void cpus_pause_all(void);
void cpus_resume_all(void);

/*
 * Park every vCPU for a moment without touching the run state (BQL held):
 * the accelerator's dirty-log fetch and "info registers" use it. Nests;
 * the vCPUs run again at the last cpus_unquiesce() if the VM runs, and a
 * stop, cont or reset meanwhile keeps its meaning.
 */
void cpus_quiesce(void);
void cpus_unquiesce(void);

/*
 * Auto-converge: keep every vCPU out of the guest for @percent of each
 * 10 ms period (0 turns throttling off). Any thread.
 */
void cpus_set_throttle(int percent);
int cpus_get_throttle(void);

#endif
