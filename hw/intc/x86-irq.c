/*
 * GSI routing to the user-space PIC pair and IOAPIC, the irqchip lock
 * they share, and the machine's set of them for the software CPU.
 */
#include <glib.h>

#include "hw/intc/apic.h"
#include "hw/intc/i8259.h"
#include "hw/intc/ioapic.h"
#include "hw/intc/x86-irq.h"
#include "hw/timer/i8254.h"

static GMutex irqchip_mutex;
static __thread bool irqchip_held;

static struct {
    I8259State *pic;
    IOAPICState *ioapic;
    I8254State *pit;
    bool soft_created;
} x86_irq;

void x86_irqchip_lock(void)
{
    g_mutex_lock(&irqchip_mutex);
    irqchip_held = true;
}

void x86_irqchip_unlock(void)
{
    irqchip_held = false;
    g_mutex_unlock(&irqchip_mutex);
}

bool x86_irqchip_locked(void)
{
    return irqchip_held;
}

int x86_irq_isa_to_pin(int irq)
{
    /* No source override moves an ISA IRQ (see the header). */
    return irq;
}

void x86_irq_set(int gsi, int level)
{
    if (gsi < 0 || gsi >= X86_IRQ_NR_GSI) {
        g_warning("x86_irq_set: no GSI %d", gsi);
        return;
    }
    x86_irqchip_lock();
    if (gsi < X86_IRQ_NR_ISA && x86_irq.pic) {
        i8259_set_irq_locked(x86_irq.pic, gsi, level);
    }
    if (x86_irq.ioapic) {
        int pin = gsi < X86_IRQ_NR_ISA ? x86_irq_isa_to_pin(gsi) : gsi;
        ioapic_set_irq_locked(x86_irq.ioapic, pin, level);
    }
    x86_irqchip_unlock();
}

void x86_irq_connect(I8259State *pic, IOAPICState *ioapic)
{
    x86_irqchip_lock();
    x86_irq.pic = pic;
    x86_irq.ioapic = ioapic;
    apic_extint_changed_locked();
    x86_irqchip_unlock();
}

I8259State *x86_irq_pic(void)
{
    return x86_irq.pic;
}

IOAPICState *x86_irq_ioapic(void)
{
    return x86_irq.ioapic;
}

void x86_irq_pic_changed_locked(I8259State *pic)
{
    if (pic == x86_irq.pic) {
        apic_extint_changed_locked();
    }
}

void x86_irqchip_soft_init(uint8_t ioapic_id)
{
    g_assert(!x86_irq.soft_created);
    x86_irq.soft_created = true;

    I8259State *pic = i8259_new();
    IOAPICState *ioapic = ioapic_new(ioapic_id);
    i8259_register_io(pic);
    ioapic_register_io(ioapic);
    apic_register_io();
    x86_irq_connect(pic, ioapic);
    /* Last: the PIT raises IRQ 0 through what is connected above. */
    x86_irq.pit = i8254_new();
    i8254_register_io(x86_irq.pit);
}

I8254State *x86_irqchip_soft_pit(void)
{
    return x86_irq.pit;
}

static void x86_irqchip_reset_apic(APICState *s, void *opaque)
{
    apic_reset(s);
}

void x86_irqchip_soft_reset(void)
{
    if (x86_irq.pic) {
        i8259_reset(x86_irq.pic);
    }
    if (x86_irq.ioapic) {
        ioapic_reset(x86_irq.ioapic);
    }
    if (x86_irq.pit) {
        i8254_reset(x86_irq.pit);
    }
    apic_foreach(x86_irqchip_reset_apic, NULL);
}

static void x86_irqchip_register_apic(APICState *s, void *opaque)
{
    apic_register_vmstate(s);
}

void x86_irqchip_soft_register_vmstate(void)
{
    if (x86_irq.pic) {
        i8259_register_vmstate(x86_irq.pic);
    }
    if (x86_irq.ioapic) {
        ioapic_register_vmstate(x86_irq.ioapic);
    }
    if (x86_irq.pit) {
        i8254_register_vmstate(x86_irq.pit);
    }
    apic_foreach(x86_irqchip_register_apic, NULL);
}
