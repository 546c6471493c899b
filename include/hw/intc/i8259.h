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
#include "migration/vmstate.h"

/*
 * One chip's migration form, the same whoever emulates the chip (the
 * model here, or KVM's in-kernel PIC, accel/kvm/kvm-irqchip.c): section
 * ("i8259", 0 master, 1 slave) of version I8259_VMSTATE_VERSION, one
 * field "mig" described by vmstate_i8259_mig. Version 1 was the same
 * layout from the software CPU (KVM's version 1 was its own struct).
 */
typedef struct I8259Mig {
    uint8_t irr, isr, imr;
    uint8_t input;              /* line levels, for edge detection */
    uint8_t elcr;               /* 1: level-triggered */
    uint8_t vector_base;        /* ICW2, low 3 bits clear */
    uint8_t priority_base;      /* the IR with the highest priority (rotation) */
    uint8_t init_step;          /* 0 ready; 1, 2, 3: ICW2, ICW3, ICW4 expected */
    bool icw4_expected;
    bool single;
    bool auto_eoi;
    bool rotate_aeoi;
    bool sfnm;                  /* special fully nested mode */
    bool special_mask;
    bool read_isr;              /* OCW3: reads at A0=0 return ISR, else IRR */
    bool poll;                  /* OCW3: the next A0=0 read is a poll */
} I8259Mig;

#define I8259_VMSTATE_VERSION   2
extern const VMStateDescription vmstate_i8259_mig;

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
