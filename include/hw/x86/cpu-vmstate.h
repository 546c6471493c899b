/*
 * Migration of the neutral vCPU state: ("x86-cpu", index) for every vCPU
 * of an accelerator that keeps its state in that form (tcg, qtest).
 */
#ifndef HW_X86_CPU_VMSTATE_H
#define HW_X86_CPU_VMSTATE_H

struct VMStateDescription;
extern const struct VMStateDescription vmstate_x86_cpu;

/* Register vCPU @index's state; call once per vCPU after the devices. */
void x86_cpu_vmstate_register(int index);

#endif
