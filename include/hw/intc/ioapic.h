/*
 * The I/O APIC (82093AA programming model, version 0x20): 24 input pins,
 * each with a redirection entry that turns an edge or a level on the pin
 * into an interrupt message to local APICs. MMIO at 0xfec00000: IOREGSEL
 * at 0x00, IOWIN at 0x10, and the EOI register of version 0x20 at 0x40.
 *
 * Input polarity is not modelled: device models drive 1 for "asserted".
 * State is guarded by the irqchip lock (see x86-irq.h).
 */
#ifndef HW_INTC_IOAPIC_H
#define HW_INTC_IOAPIC_H

#include <stdbool.h>
#include <stdint.h>

#include "hw/intc/x86-irq.h"
#include "migration/vmstate.h"

#define IOAPIC_BASE_ADDR    0xfec00000ULL
#define IOAPIC_MMIO_SIZE    0x1000
#define IOAPIC_NR_PINS      24
#define IOAPIC_VERSION      0x20

/* Redirection entry bits (low dword, then the destination in 63:56). */
#define IOAPIC_RTE_VECTOR       0xffull
#define IOAPIC_RTE_DELMODE_SHIFT 8
#define IOAPIC_RTE_DESTMODE     (1ull << 11)   /* 1: logical */
#define IOAPIC_RTE_DELIVS       (1ull << 12)
#define IOAPIC_RTE_POLARITY     (1ull << 13)
#define IOAPIC_RTE_REMOTE_IRR   (1ull << 14)
#define IOAPIC_RTE_LEVEL        (1ull << 15)
#define IOAPIC_RTE_MASKED       (1ull << 16)
#define IOAPIC_RTE_DEST_SHIFT   56

/*
 * The migration form, the same for the model here and KVM's in-kernel
 * IOAPIC (accel/kvm/kvm-irqchip.c): section ("ioapic", 0) of version
 * IOAPIC_VMSTATE_VERSION, one field "mig" described by vmstate_ioapic_mig.
 * Version 1 was the same layout from the software CPU.
 */
typedef struct IOAPICMig {
    uint8_t id;                         /* 0-15 */
    uint8_t select;                     /* IOREGSEL */
    uint32_t levels;                    /* input pins, bit per pin */
    uint64_t rte[IOAPIC_NR_PINS];       /* remote IRR included */
} IOAPICMig;

#define IOAPIC_VMSTATE_VERSION  2
extern const VMStateDescription vmstate_ioapic_mig;

/* @id: the IOAPIC id the MADT and MP table give it. */
IOAPICState *ioapic_new(uint8_t id);
void ioapic_free(IOAPICState *s);
/* Power-on state: every entry masked, id restored. */
void ioapic_reset(IOAPICState *s);
/* Claim [IOAPIC_BASE_ADDR, +IOAPIC_MMIO_SIZE). */
void ioapic_register_io(IOAPICState *s);
/* Migration: ("ioapic", 0). */
void ioapic_register_vmstate(IOAPICState *s);

/* MMIO access at @offset in the page (what the dispatch calls). */
uint32_t ioapic_mmio_read(IOAPICState *s, uint64_t offset);
void ioapic_mmio_write(IOAPICState *s, uint64_t offset, uint32_t value);

/* Drive @pin to @level. */
void ioapic_set_irq(IOAPICState *s, int pin, int level);
/* The redirection entry of @pin (for tests and debugging). */
uint64_t ioapic_get_entry(IOAPICState *s, int pin);

/* Irqchip lock held. The EOI broadcast comes from a LAPIC's EOI of a level vector. */
void ioapic_set_irq_locked(IOAPICState *s, int pin, int level);
void ioapic_eoi_broadcast_locked(IOAPICState *s, uint8_t vector);

#endif
