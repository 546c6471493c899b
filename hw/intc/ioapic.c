/*
 * The I/O APIC. A pin's input level is kept apart from its redirection
 * entry: an edge pin sends a message on each rising edge while unmasked
 * (an edge seen while masked is lost, as on the 82093AA); a level pin
 * sends one while the line is high, unmasked and its remote IRR clear,
 * and sets remote IRR until a LAPIC broadcasts the EOI of its vector.
 */
#include <string.h>

#include <glib.h>

#include "hw/intc/apic.h"
#include "hw/intc/ioapic.h"
#include "migration/register.h"
#include "migration/vmstate.h"
#include "system/ioport.h"

#define IOAPIC_REG_SELECT   0x00
#define IOAPIC_REG_WINDOW   0x10
#define IOAPIC_REG_EOI      0x40

#define IOAPIC_INDEX_ID     0x00
#define IOAPIC_INDEX_VER    0x01
#define IOAPIC_INDEX_ARB    0x02
#define IOAPIC_INDEX_TABLE  0x10

/* Bits software may write: everything but delivery status and remote IRR. */
#define IOAPIC_RTE_WRITABLE (~(IOAPIC_RTE_DELIVS | IOAPIC_RTE_REMOTE_IRR) & \
                             (0xff00000000000000ull | 0x1ffffull))

typedef IOAPICMig IOAPICRegs;    /* the live registers are the migration form */

struct IOAPICState {
    uint8_t reset_id;
    IOAPICRegs r;
    IOAPICRegs mig;                     /* snapshot for the stream */
};

static void ioapic_send(IOAPICState *s, int pin)
{
    uint64_t e = s->r.rte[pin];
    bool level = e & IOAPIC_RTE_LEVEL;

    if (level) {
        s->r.rte[pin] |= IOAPIC_RTE_REMOTE_IRR;
    }
    apic_deliver_irq_locked((uint8_t)(e >> IOAPIC_RTE_DEST_SHIFT), e & IOAPIC_RTE_DESTMODE,
                            (e >> IOAPIC_RTE_DELMODE_SHIFT) & 7, e & IOAPIC_RTE_VECTOR, level);
}

/* Send what a level pin owes: high, unmasked, not awaiting an EOI. */
static void ioapic_service_level(IOAPICState *s, int pin)
{
    uint64_t e = s->r.rte[pin];

    if ((e & IOAPIC_RTE_LEVEL) && (s->r.levels & (1u << pin)) &&
        !(e & (IOAPIC_RTE_MASKED | IOAPIC_RTE_REMOTE_IRR))) {
        ioapic_send(s, pin);
    }
}

void ioapic_set_irq_locked(IOAPICState *s, int pin, int level)
{
    g_assert(x86_irqchip_locked());
    if (pin < 0 || pin >= IOAPIC_NR_PINS) {
        return;
    }
    uint32_t bit = 1u << pin;
    bool was = s->r.levels & bit;
    uint64_t e = s->r.rte[pin];

    s->r.levels = level ? (s->r.levels | bit) : (s->r.levels & ~bit);
    if (e & IOAPIC_RTE_LEVEL) {
        ioapic_service_level(s, pin);
    } else if (level && !was && !(e & IOAPIC_RTE_MASKED)) {
        ioapic_send(s, pin);
    }
}

void ioapic_set_irq(IOAPICState *s, int pin, int level)
{
    x86_irqchip_lock();
    ioapic_set_irq_locked(s, pin, level);
    x86_irqchip_unlock();
}

void ioapic_eoi_broadcast_locked(IOAPICState *s, uint8_t vector)
{
    g_assert(x86_irqchip_locked());
    for (int pin = 0; pin < IOAPIC_NR_PINS; pin++) {
        uint64_t e = s->r.rte[pin];
        if ((e & IOAPIC_RTE_VECTOR) != vector || !(e & IOAPIC_RTE_LEVEL)) {
            continue;
        }
        s->r.rte[pin] &= ~IOAPIC_RTE_REMOTE_IRR;
        /* Still asserted: the device wants another interrupt. */
        ioapic_service_level(s, pin);
    }
}

uint64_t ioapic_get_entry(IOAPICState *s, int pin)
{
    x86_irqchip_lock();
    uint64_t e = pin >= 0 && pin < IOAPIC_NR_PINS ? s->r.rte[pin] : 0;
    x86_irqchip_unlock();
    return e;
}

static uint32_t ioapic_read_indirect(IOAPICState *s)
{
    uint8_t index = s->r.select;

    switch (index) {
    case IOAPIC_INDEX_ID:
    case IOAPIC_INDEX_ARB:
        return (uint32_t)(s->r.id & 0xf) << 24;
    case IOAPIC_INDEX_VER:
        return ((IOAPIC_NR_PINS - 1) << 16) | IOAPIC_VERSION;
    default:
        if (index >= IOAPIC_INDEX_TABLE && index < IOAPIC_INDEX_TABLE + 2 * IOAPIC_NR_PINS) {
            uint64_t e = s->r.rte[(index - IOAPIC_INDEX_TABLE) / 2];
            return (index & 1) ? (uint32_t)(e >> 32) : (uint32_t)e;
        }
        return 0;
    }
}

static void ioapic_write_indirect(IOAPICState *s, uint32_t value)
{
    uint8_t index = s->r.select;

    if (index == IOAPIC_INDEX_ID) {
        s->r.id = (value >> 24) & 0xf;
        return;
    }
    if (index < IOAPIC_INDEX_TABLE || index >= IOAPIC_INDEX_TABLE + 2 * IOAPIC_NR_PINS) {
        return;                         /* version and arbitration are read-only */
    }
    int pin = (index - IOAPIC_INDEX_TABLE) / 2;
    uint64_t old = s->r.rte[pin];
    uint64_t e = (index & 1) ? ((uint64_t)value << 32) | (old & 0xffffffffull)
                             : (old & 0xffffffff00000000ull) | value;

    e = (e & IOAPIC_RTE_WRITABLE) | (old & ~IOAPIC_RTE_WRITABLE);
    if (!(e & IOAPIC_RTE_LEVEL)) {
        e &= ~IOAPIC_RTE_REMOTE_IRR;    /* an edge pin awaits no EOI */
    }
    s->r.rte[pin] = e;
    /* Unmasking (or turning to level) a high level pin delivers at once. */
    ioapic_service_level(s, pin);
}

uint32_t ioapic_mmio_read(IOAPICState *s, uint64_t offset)
{
    uint32_t v = 0;

    x86_irqchip_lock();
    if (offset == IOAPIC_REG_SELECT) {
        v = s->r.select;
    } else if (offset == IOAPIC_REG_WINDOW) {
        v = ioapic_read_indirect(s);
    }
    x86_irqchip_unlock();
    return v;
}

void ioapic_mmio_write(IOAPICState *s, uint64_t offset, uint32_t value)
{
    x86_irqchip_lock();
    if (offset == IOAPIC_REG_SELECT) {
        s->r.select = (uint8_t)value;
    } else if (offset == IOAPIC_REG_WINDOW) {
        ioapic_write_indirect(s, value);
    } else if (offset == IOAPIC_REG_EOI) {
        ioapic_eoi_broadcast_locked(s, (uint8_t)value);
    }
    x86_irqchip_unlock();
}

static uint64_t ioapic_io_read(void *opaque, uint64_t offset, unsigned size)
{
    /* Registers are dwords; narrower reads see the bytes they cover. */
    uint32_t v = ioapic_mmio_read(opaque, offset & ~3ull);
    v >>= (offset & 3) * 8;
    return size >= 4 ? v : v & ((1u << (size * 8)) - 1);
}

static void ioapic_io_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    if (offset & 3) {
        return;
    }
    if (size == 1 && offset == IOAPIC_REG_SELECT) {
        ioapic_mmio_write(opaque, offset, (uint8_t)value);
    } else if (size >= 4) {
        ioapic_mmio_write(opaque, offset, (uint32_t)value);
    }
}

static const IoRegionOps ioapic_io_ops = {
    .read = ioapic_io_read,
    .write = ioapic_io_write,
};

void ioapic_reset(IOAPICState *s)
{
    x86_irqchip_lock();
    uint32_t levels = s->r.levels;
    memset(&s->r, 0, sizeof(s->r));
    s->r.id = s->reset_id;
    s->r.levels = levels;               /* the lines are the devices', not ours */
    for (int pin = 0; pin < IOAPIC_NR_PINS; pin++) {
        s->r.rte[pin] = IOAPIC_RTE_MASKED;
    }
    x86_irqchip_unlock();
}

IOAPICState *ioapic_new(uint8_t id)
{
    IOAPICState *s = g_new0(IOAPICState, 1);

    s->reset_id = id & 0xf;
    ioapic_reset(s);
    return s;
}

void ioapic_free(IOAPICState *s)
{
    g_free(s);
}

void ioapic_register_io(IOAPICState *s)
{
    io_region_register(IO_SPACE_MMIO, IOAPIC_BASE_ADDR, IOAPIC_MMIO_SIZE, "ioapic",
                       &ioapic_io_ops, s);
}

/*
 * Migration: id, select, input levels and the table (remote IRR included:
 * a level interrupt in service on the source still awaits its EOI). The
 * stream reads a snapshot taken under the irqchip lock. Nothing is sent
 * after loading: whatever the state owed was already delivered to the
 * LAPICs, whose IRRs travel with them.
 */
static bool ioapic_pre_save(void *opaque, GError **errp)
{
    IOAPICState *s = opaque;

    x86_irqchip_lock();
    s->mig = s->r;
    x86_irqchip_unlock();
    return true;
}

static bool ioapic_post_load(void *opaque, int version_id, GError **errp)
{
    IOAPICState *s = opaque;

    if (s->mig.levels >> IOAPIC_NR_PINS) {
        g_set_error(errp, VMSTATE_ERROR, 0, "ioapic: input levels 0x%x name pins past %d",
                    s->mig.levels, IOAPIC_NR_PINS - 1);
        return false;
    }
    x86_irqchip_lock();
    s->r = s->mig;
    s->r.id &= 0xf;
    x86_irqchip_unlock();
    return true;
}

const VMStateDescription vmstate_ioapic_mig = {
    .name = "ioapic-regs",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT8_RANGE(id, IOAPICRegs, 0, 15),
        VMSTATE_UINT8(select, IOAPICRegs),
        VMSTATE_UINT32(levels, IOAPICRegs),
        VMSTATE_UINT64_ARRAY(rte, IOAPICRegs, IOAPIC_NR_PINS),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_ioapic = {
    .name = "ioapic",
    .version_id = IOAPIC_VMSTATE_VERSION,
    .minimum_version_id = 1,
    .pre_save = ioapic_pre_save,
    .post_load = ioapic_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(mig, IOAPICState, vmstate_ioapic_mig, IOAPICRegs),
        VMSTATE_END_OF_LIST()
    },
};

void ioapic_register_vmstate(IOAPICState *s)
{
    vmstate_register("ioapic", 0, &vmstate_ioapic, s);
}
