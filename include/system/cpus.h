/*
 * The machine's vCPUs as the monitors see them: a count, a thread id,
 * and a register dump. Implemented by accel/kvm.
 */
#ifndef SYSTEM_CPUS_H
#define SYSTEM_CPUS_H

#include <stdbool.h>
#include <glib.h>

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
bool cpus_all_paused(void);

/*
 * Auto-converge: keep every vCPU out of the guest for @percent of each
 * 10 ms period (0 turns throttling off). Any thread.
 */
void cpus_set_throttle(int percent);
int cpus_get_throttle(void);

#endif
