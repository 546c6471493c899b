/*
 * Interrupt routing of the user-space irqchip (the software CPU's): GSIs
 * from device models to the 8259 pair and the IOAPIC, and the one lock
 * every interrupt controller model shares.
 *
 * Routing: ISA IRQs 0-15 go to the PIC input of the same number and to
 * the IOAPIC pin of the same number; GSIs 16-23 to the IOAPIC only. The
 * MADT and the MP table Ferry builds declare no source override that
 * moves a pin (the only override, for the SCI, keeps IRQ 9 on pin 9), so
 * IRQ 0 (the PIT) arrives on IOAPIC pin 0, as with KVM's default routing.
 *
 * Locking. The "irqchip lock" (x86_irqchip_lock()) guards the state of
 * both PICs, the IOAPIC and every LAPIC, and every delivery between them.
 * The public functions of the models take it themselves; functions whose
 * name ends in _locked expect it held. Lock order, outermost first:
 *   BQL -> PIT lock -> irqchip lock -> host timer service lock.
 * vCPU threads take it without the BQL to ask for and acknowledge
 * interrupts; the host timer thread takes it (never the BQL) to expire
 * the LAPIC timer. The LAPIC's hooks (kick, init, sipi, nmi) run with it
 * held: they may call soft_cpu_*() and wake threads, never back into an
 * irqchip model.
 */
#ifndef HW_INTC_X86_IRQ_H
#define HW_INTC_X86_IRQ_H

#include <stdbool.h>
#include <stdint.h>

#define X86_IRQ_NR_ISA  16
#define X86_IRQ_NR_GSI  24

typedef struct I8259State I8259State;
typedef struct IOAPICState IOAPICState;
typedef struct I8254State I8254State;

/* Drive @gsi (0-23) to @level (0 or 1). Any thread; takes the irqchip lock. */
void x86_irq_set(int gsi, int level);
/* The IOAPIC pin ISA IRQ @irq arrives on. */
int x86_irq_isa_to_pin(int irq);

void x86_irqchip_lock(void);
void x86_irqchip_unlock(void);
/* True when the calling thread holds the irqchip lock (for assertions). */
bool x86_irqchip_locked(void);

/*
 * The PIC pair and the IOAPIC that x86_irq_set() drives and that the
 * LAPICs take ExtINT vectors from and broadcast EOIs to. NULL
 * disconnects. The machine connects the ones x86_irqchip_soft_init()
 * creates; unit tests connect their own.
 */
void x86_irq_connect(I8259State *pic, IOAPICState *ioapic);
I8259State *x86_irq_pic(void);
IOAPICState *x86_irq_ioapic(void);

/* Between the models, irqchip lock held: the PIC's INT output moved. */
void x86_irq_pic_changed_locked(I8259State *pic);

/*
 * The machine's irqchip for the software CPU: creates the PIC pair, the
 * IOAPIC (with id @ioapic_id, as the MADT and MP table declare it) and the
 * PIT, registers their ports and MMIO and the LAPIC page, and connects
 * them. LAPICs come from apic_new(), one per vCPU, before or after.
 */
void x86_irqchip_soft_init(uint8_t ioapic_id);
/* Power-on state of the PICs, the IOAPIC, the PIT and every LAPIC. */
void x86_irqchip_soft_reset(void);
/*
 * Register the state of all of them for migration, in load order:
 * ("i8259", 0) and ("i8259", 1), ("ioapic", 0), ("i8254", 0), then
 * ("apic", n) for every LAPIC created so far.
 */
void x86_irqchip_soft_register_vmstate(void);
/* The PIT x86_irqchip_soft_init() created (NULL before). */
I8254State *x86_irqchip_soft_pit(void);

#endif
