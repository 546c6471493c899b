/*
 * The PC's pair of 8259A interrupt controllers: the master at ports
 * 0x20-0x21 takes ISA IRQs 0-7, the slave at 0xa0-0xa1 takes IRQs 8-15
 * and cascades into the master's IR2; the edge/level control registers
 * (ELCR) sit at 0x4d0 (master) and 0x4d1 (slave).
 *
 * The master's INT output goes to the LAPIC of the BSP (LINT0 in ExtINT
 * mode, or straight to the CPU when that LAPIC is disabled), which asks
 * for the vector with an interrupt acknowledge cycle (i8259_intack).
 * State is guarded by the irqchip lock (see x86-irq.h).
 */
#ifndef HW_INTC_I8259_H
#define HW_INTC_I8259_H

#include <stdbool.h>
#include <stdint.h>

#include "hw/intc/x86-irq.h"

I8259State *i8259_new(void);
void i8259_free(I8259State *s);
/* Power-on state: uninitialised chips, everything clear, ELCR edge. */
void i8259_reset(I8259State *s);
/* Claim ports 0x20-0x21, 0xa0-0xa1 and 0x4d0-0x4d1. */
void i8259_register_io(I8259State *s);
/* Migration: ("i8259", 0) is the master, ("i8259", 1) the slave. */
void i8259_register_vmstate(I8259State *s);

/* Port access (what the PIO dispatch calls). */
uint8_t i8259_ioport_read(I8259State *s, uint16_t port);
void i8259_ioport_write(I8259State *s, uint16_t port, uint8_t value);

/* Drive ISA IRQ @irq (0-15) to @level. */
void i8259_set_irq(I8259State *s, int irq, int level);
/* Is the master's INT output asserted? */
bool i8259_output(I8259State *s);
/*
 * Interrupt acknowledge: the vector the CPU takes, updating IRR/ISR as the
 * two INTA pulses would (spurious IRQ 7 or 15 when the request went away).
 */
int i8259_intack(I8259State *s);

/* The same, irqchip lock held. i8259_peek_locked() changes nothing: -1 if INT is low. */
void i8259_set_irq_locked(I8259State *s, int irq, int level);
int i8259_peek_locked(I8259State *s);
int i8259_intack_locked(I8259State *s);
bool i8259_output_locked(I8259State *s);

#endif
