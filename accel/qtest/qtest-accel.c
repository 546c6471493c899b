/*
 * The qtest accelerator: the machine without a CPU. Guest RAM and devices
 * exist and the qtest protocol (system/qtest.c) reads and writes them;
 * the vCPUs hold their power-on state and never run, so no /dev/kvm and
 * no software CPU are needed. Interrupt lines go nowhere.
 */
#include <string.h>
#include <gio/gio.h>

#include "hw/x86/cpu-vmstate.h"
#include "system/accel.h"
#include "system/cpus.h"

struct AccelCPUState {
    X86CPUState state;
};

static bool qtest_accel_available(char **why)
{
    return true;
}

static bool qtest_accel_check_cpu_model(const char *model, GError **errp)
{
    return true;
}

static bool qtest_accel_init(const AccelCPUConfig *cfg, GError **errp)
{
    return true;
}

static bool qtest_accel_map_ram(int slot, uint64_t gpa, uint64_t size, void *host,
                                GError **errp)
{
    return true;
}

static bool qtest_accel_dirty_log_enable(int slot, bool on, GError **errp)
{
    return true;
}

static bool qtest_accel_dirty_log_fetch(int slot, unsigned long *bitmap, GError **errp)
{
    /* No vCPU writes: every write is the VMM's own, in the VMM bitmap. */
    const AccelSlot *s = accel_slot_get(slot);
    memset(bitmap, 0, (s->size / 4096 + 63) / 64 * sizeof(unsigned long));
    return true;
}

static bool qtest_accel_vcpu_init(CPUState *cpu, GError **errp)
{
    cpu->accel = g_new0(AccelCPUState, 1);
    x86_cpu_state_reset(&cpu->accel->state, cpu->index);
    return true;
}

static bool qtest_accel_vcpu_exec(CPUState *cpu)
{
    g_assert_not_reached();
}

static void qtest_accel_vcpu_kick(CPUState *cpu)
{
}

static void qtest_accel_vcpu_reset(CPUState *cpu)
{
    x86_cpu_state_reset(&cpu->accel->state, cpu->index);
}

static bool qtest_accel_vcpu_get_state(CPUState *cpu, X86CPUState *st, GError **errp)
{
    *st = cpu->accel->state;
    return true;
}

static bool qtest_accel_vcpu_set_state(CPUState *cpu, const X86CPUState *st, GError **errp)
{
    cpu->accel->state = *st;
    return true;
}

static bool qtest_accel_irqchip_init(GError **errp)
{
    return true;
}

static void qtest_accel_irqchip_reset(void)
{
}

static void qtest_accel_register_vmstate(void)
{
    for (int i = 0; i < cpus_count(); i++) {
        x86_cpu_vmstate_register(i);
    }
}

static void qtest_accel_set_irq(int gsi, int level)
{
    /* No CPU takes interrupts. */
}

static void qtest_accel_cpu_signature(uint32_t *eax, uint32_t *edx)
{
    *eax = 0x600;       /* family 6, as the reset value of EDX says */
    *edx = 0;
}

const AccelOps accel_qtest_ops = {
    .name = "qtest",
    .runs_guest_code = false,
    .available = qtest_accel_available,
    .check_cpu_model = qtest_accel_check_cpu_model,
    .init = qtest_accel_init,
    .map_ram = qtest_accel_map_ram,
    .dirty_log_enable = qtest_accel_dirty_log_enable,
    .dirty_log_fetch = qtest_accel_dirty_log_fetch,
    .vcpu_init = qtest_accel_vcpu_init,
    .vcpu_exec = qtest_accel_vcpu_exec,
    .vcpu_kick = qtest_accel_vcpu_kick,
    .vcpu_reset = qtest_accel_vcpu_reset,
    .vcpu_get_state = qtest_accel_vcpu_get_state,
    .vcpu_set_state = qtest_accel_vcpu_set_state,
    .irqchip_init = qtest_accel_irqchip_init,
    .irqchip_reset = qtest_accel_irqchip_reset,
    .register_vmstate = qtest_accel_register_vmstate,
    .set_irq = qtest_accel_set_irq,
    .cpu_signature = qtest_accel_cpu_signature,
};
