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
#include "migration/vmstate.h"

#define PIT_FREQ_HZ         1193182
#define PIT_MIN_PERIOD_NS   100000
#define PIT_NR_CHANNELS     3

/* Access modes (control word bits 5:4). */
#define RW_LATCH            0
#define RW_LSB              1
#define RW_MSB              2
#define RW_WORD             3

/* Port 0x61 bits the guest writes. */
#define PORT61_GATE2        0x01
#define PORT61_SPEAKER      0x02
#define PORT61_WRITABLE     0x0f

/*
 * A channel. It keeps the ticks counted before its current run
 * (ticks_base) and the host time that run began (start_ns).
 */
typedef struct I8254Channel {
    uint8_t mode;               /* 0-5 */
    uint8_t rw_mode;            /* RW_LSB, RW_MSB, RW_WORD */
    bool bcd;
    uint32_t count;             /* reload value, binary, 1 to 0x10000 */
    bool gate;
    bool loaded;                /* a count was written since the mode */
    bool running;               /* counting now, since start_ns */
    bool triggered;             /* modes 1 and 5: a gate edge started them */
    bool null_count;            /* status bit 6 */
    /* In the migration form: every tick counted, and start_ns unused. */
    uint64_t ticks_base;
    int64_t start_ns;
    bool write_msb_next;
    uint8_t write_lsb;
    bool read_msb_next;
    uint16_t latch;
    uint8_t latch_left;         /* latched bytes not read yet */
    uint8_t status;
    bool status_latched;
} I8254Channel;

/*
 * The migration form, the same for the model here and KVM's in-kernel
 * PIT (accel/kvm/kvm-irqchip.c): section ("i8254", 0) of version
 * I8254_VMSTATE_VERSION, one field "mig" described by vmstate_i8254_mig.
 * Time is in ticks counted (ticks_base), never host times, so a count
 * resumes on any clock. Version 1 was the same layout from the software CPU.
 */
typedef struct I8254Mig {
    I8254Channel ch[PIT_NR_CHANNELS];
    uint8_t port61;             /* PORT61_WRITABLE bits */
    bool irq_level;             /* IRQ 0 as last driven */
} I8254Mig;

#define I8254_VMSTATE_VERSION   2
extern const VMStateDescription vmstate_i8254_mig;

/* Ticks of the 1.193182 MHz clock in @ns nanoseconds, and back (rounded up). */
uint64_t i8254_ns_to_ticks(int64_t ns);
int64_t i8254_ticks_to_ns(uint64_t ticks);

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
