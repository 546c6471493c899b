/*
 * The 8254 programmable interval timer at ports 0x40-0x43, with the PC's
 * port 0x61 (channel 2 gate, speaker data, refresh toggle, OUT2).
 *
 * Counters run at 1.193182 MHz on the host's CLOCK_MONOTONIC: a counter
 * value is computed from the time its count was loaded, never ticked.
 * Channel 0's OUT drives ISA IRQ 0 through x86_irq_set(): a rising edge
 * per period in modes 2 and 3 (at most one per PIT_MIN_PERIOD_NS), the
 * level of OUT in mode 0, a pulse at terminal count in mode 4. Its gate
 * is tied high; channel 1's too; channel 2's is bit 0 of port 0x61.
 *
 * Locking: the PIT has its own mutex, taken by the port handlers (vCPU
 * threads, under the BQL) and by the host timer thread for channel 0's
 * interrupts (without the BQL). It is taken before the irqchip lock.
 */
#ifndef HW_TIMER_I8254_H
#define HW_TIMER_I8254_H

#include <stdbool.h>
#include <stdint.h>

#include "hw/intc/x86-irq.h"

#define PIT_FREQ_HZ         1193182
#define PIT_MIN_PERIOD_NS   100000

I8254State *i8254_new(void);
void i8254_free(I8254State *s);
/* Power-on state: no channel programmed, gates of channels 0 and 1 high. */
void i8254_reset(I8254State *s);
/* Claim ports 0x40-0x43 and 0x61. */
void i8254_register_io(I8254State *s);
/* Migration: ("i8254", 0). */
void i8254_register_vmstate(I8254State *s);

/* Port access (what the PIO dispatch calls): 0x40-0x43 and 0x61. */
uint8_t i8254_ioport_read(I8254State *s, uint16_t port);
void i8254_ioport_write(I8254State *s, uint16_t port, uint8_t value);

#endif
