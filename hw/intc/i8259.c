/*
 * The 8259A pair. Each chip keeps its request (IRR), in-service (ISR) and
 * mask (IMR) registers and the programming it got from ICW1-4 and OCW1-3.
 *
 * Input lines: an edge-triggered input (ELCR bit clear) latches a request
 * in IRR on a rising edge, and it stays there until acknowledged, however
 * short the pulse; a level-triggered input's IRR bit follows the line.
 * ICW1's LTIM bit is ignored: on PC chipsets the ELCR decides.
 *
 * The cascade: the master's IR2 request mirrors the slave's INT output
 * directly, whatever the edge logic would say, so a slave that stays
 * asserted across an acknowledge is never lost.
 */
#include <string.h>

#include <glib.h>

#include "hw/intc/i8259.h"
#include "migration/register.h"
#include "migration/vmstate.h"
#include "system/ioport.h"

#define PIC_CASCADE_IR  2
#define PIC_SPURIOUS_IR 7

/* Bits of the first command word and of OCW2/OCW3 (the datasheet's names). */
#define ICW1_IC4        0x01
#define ICW1_SNGL       0x02
#define ICW1_INIT       0x10
#define ICW4_AEOI       0x02
#define ICW4_SFNM       0x10
#define OCW3_SELECT     0x08
#define OCW3_RIS        0x01
#define OCW3_RR         0x02
#define OCW3_POLL       0x04
#define OCW3_SMM        0x20
#define OCW3_ESMM       0x40

typedef I8259Mig PICRegs;   /* the live registers have the migration form's fields */

typedef struct PICChip {
    I8259State *pair;
    bool master;
    uint8_t elcr_mask;          /* inputs that may be level-triggered */
    PICRegs r;
    PICRegs mig;                /* snapshot the migration stream reads and writes */
} PICChip;

struct I8259State {
    PICChip chip[2];            /* master, slave */
    bool output;                /* master INT, as last reported */
};

static void pic_update_locked(I8259State *s, bool force);

static int pic_rank(const PICChip *c, int ir)
{
    return (ir - c->r.priority_base) & 7;
}

/* The IR of highest priority in @mask, or -1. */
static int pic_highest(const PICChip *c, uint8_t mask)
{
    for (int k = 0; k < 8; k++) {
        int ir = (c->r.priority_base + k) & 7;
        if (mask & (1u << ir)) {
            return ir;
        }
    }
    return -1;
}

/* The IR this chip would signal on INT now, or -1. */
static int pic_chip_pending(const PICChip *c)
{
    int ir = pic_highest(c, c->r.irr & ~c->r.imr);
    if (ir < 0) {
        return -1;
    }
    uint8_t blocking = c->r.isr;
    if (c->r.special_mask) {
        /* Special mask mode: a masked level in service blocks nothing. */
        blocking &= ~c->r.imr;
    }
    int cur = pic_highest(c, blocking);
    if (cur < 0) {
        return ir;
    }
    /* In special fully nested mode the slave may interrupt its own in-service cascade. */
    bool nested_slave = c->master && c->r.sfnm && ir == PIC_CASCADE_IR && cur == ir;
    if (pic_rank(c, cur) < pic_rank(c, ir) || (cur == ir && !nested_slave)) {
        return -1;
    }
    return ir;
}

static void pic_chip_set_input(PICChip *c, int ir, int level)
{
    uint8_t bit = 1u << ir;

    if (c->r.elcr & bit) {
        c->r.irr = level ? (c->r.irr | bit) : (c->r.irr & ~bit);
    } else if (level && !(c->r.input & bit)) {
        c->r.irr |= bit;
    }
    c->r.input = level ? (c->r.input | bit) : (c->r.input & ~bit);
}

/* What the acknowledge of @ir does to this chip's registers. */
static void pic_chip_ack(PICChip *c, int ir)
{
    uint8_t bit = 1u << ir;

    if (!(c->r.elcr & bit)) {
        c->r.irr &= ~bit;
    }
    if (c->r.auto_eoi) {
        if (c->r.rotate_aeoi) {
            c->r.priority_base = (ir + 1) & 7;
        }
    } else {
        c->r.isr |= bit;
    }
}

static void pic_chip_reset(PICChip *c)
{
    memset(&c->r, 0, sizeof(c->r));
}

static void pic_chip_eoi(PICChip *c, int ir, bool rotate)
{
    if (ir < 0) {
        return;
    }
    c->r.isr &= ~(1u << ir);
    if (rotate) {
        c->r.priority_base = (ir + 1) & 7;
    }
}

static void pic_chip_write_command(PICChip *c, uint8_t v)
{
    if (v & ICW1_INIT) {
        uint8_t elcr = c->r.elcr, input = c->r.input;
        pic_chip_reset(c);
        /* The ELCR is not the 8259's own; the lines keep their levels. */
        c->r.elcr = elcr;
        c->r.input = input;
        c->r.irr = elcr & input;
        c->r.icw4_expected = v & ICW1_IC4;
        c->r.single = v & ICW1_SNGL;
        c->r.init_step = 1;
        return;
    }
    if (v & OCW3_SELECT) {
        if (v & OCW3_POLL) {
            c->r.poll = true;
        }
        if (v & OCW3_RR) {
            c->r.read_isr = v & OCW3_RIS;
        }
        if (v & OCW3_ESMM) {
            c->r.special_mask = v & OCW3_SMM;
        }
        return;
    }
    /* OCW2: R, SL, EOI in bits 7-5, the level in bits 2-0. */
    int level = v & 7;
    switch (v >> 5) {
    case 1:                     /* non-specific EOI */
        pic_chip_eoi(c, pic_highest(c, c->r.isr), false);
        break;
    case 3:                     /* specific EOI */
        pic_chip_eoi(c, level, false);
        break;
    case 5:                     /* rotate on non-specific EOI */
        pic_chip_eoi(c, pic_highest(c, c->r.isr), true);
        break;
    case 7:                     /* rotate on specific EOI */
        pic_chip_eoi(c, level, true);
        break;
    case 4:                     /* rotate in automatic EOI mode: set */
        c->r.rotate_aeoi = true;
        break;
    case 0:                     /* rotate in automatic EOI mode: clear */
        c->r.rotate_aeoi = false;
        break;
    case 6:                     /* set priority: @level becomes the lowest */
        c->r.priority_base = (level + 1) & 7;
        break;
    default:                    /* 2: no operation */
        break;
    }
}

static void pic_chip_write_data(PICChip *c, uint8_t v)
{
    switch (c->r.init_step) {
    case 1:
        c->r.vector_base = v & 0xf8;
        c->r.init_step = !c->r.single ? 2 : c->r.icw4_expected ? 3 : 0;
        break;
    case 2:
        /* ICW3: the cascade is wired to IR2 whatever the guest says. */
        c->r.init_step = c->r.icw4_expected ? 3 : 0;
        break;
    case 3:
        c->r.auto_eoi = v & ICW4_AEOI;
        c->r.sfnm = v & ICW4_SFNM;
        c->r.init_step = 0;
        break;
    default:
        c->r.imr = v;
        break;
    }
}

static uint8_t pic_chip_poll(PICChip *c)
{
    int ir = pic_chip_pending(c);

    c->r.poll = false;
    if (ir < 0) {
        return 0;
    }
    pic_chip_ack(c, ir);
    return 0x80 | ir;
}

/* Recompute the cascade and the master's INT; tell the LAPIC side when it moved. */
static void pic_update_locked(I8259State *s, bool force)
{
    PICChip *m = &s->chip[0], *sl = &s->chip[1];
    uint8_t bit = 1u << PIC_CASCADE_IR;

    if (pic_chip_pending(sl) >= 0) {
        m->r.irr |= bit;
        m->r.input |= bit;
    } else {
        m->r.irr &= ~bit;
        m->r.input &= ~bit;
    }
    bool out = pic_chip_pending(m) >= 0;
    if (out != s->output || force) {
        s->output = out;
        x86_irq_pic_changed_locked(s);
    }
}

void i8259_set_irq_locked(I8259State *s, int irq, int level)
{
    g_assert(x86_irqchip_locked());
    if (irq < 0 || irq >= X86_IRQ_NR_ISA) {
        return;
    }
    pic_chip_set_input(&s->chip[irq >> 3], irq & 7, level);
    pic_update_locked(s, false);
}

void i8259_set_irq(I8259State *s, int irq, int level)
{
    x86_irqchip_lock();
    i8259_set_irq_locked(s, irq, level);
    x86_irqchip_unlock();
}

bool i8259_output_locked(I8259State *s)
{
    return s->output;
}

bool i8259_output(I8259State *s)
{
    x86_irqchip_lock();
    bool out = s->output;
    x86_irqchip_unlock();
    return out;
}

int i8259_peek_locked(I8259State *s)
{
    PICChip *m = &s->chip[0], *sl = &s->chip[1];
    int ir = pic_chip_pending(m);

    if (ir < 0) {
        return -1;
    }
    if (ir == PIC_CASCADE_IR && !m->r.single) {
        int sir = pic_chip_pending(sl);
        return sl->r.vector_base + (sir < 0 ? PIC_SPURIOUS_IR : sir);
    }
    return m->r.vector_base + ir;
}

int i8259_intack_locked(I8259State *s)
{
    PICChip *m = &s->chip[0], *sl = &s->chip[1];
    int ir = pic_chip_pending(m);
    int vector;

    if (ir < 0) {
        /* The request went away before the acknowledge: spurious IRQ 7, ISR untouched. */
        vector = m->r.vector_base + PIC_SPURIOUS_IR;
    } else {
        pic_chip_ack(m, ir);
        if (ir == PIC_CASCADE_IR && !m->r.single) {
            int sir = pic_chip_pending(sl);
            if (sir < 0) {
                vector = sl->r.vector_base + PIC_SPURIOUS_IR;
            } else {
                pic_chip_ack(sl, sir);
                vector = sl->r.vector_base + sir;
            }
        } else {
            vector = m->r.vector_base + ir;
        }
    }
    pic_update_locked(s, false);
    return vector;
}

int i8259_intack(I8259State *s)
{
    x86_irqchip_lock();
    int vector = i8259_intack_locked(s);
    x86_irqchip_unlock();
    return vector;
}

uint8_t i8259_ioport_read(I8259State *s, uint16_t port)
{
    uint8_t v;

    x86_irqchip_lock();
    if (port == 0x4d0 || port == 0x4d1) {
        v = s->chip[port & 1].r.elcr;
    } else {
        PICChip *c = &s->chip[(port & 0x80) ? 1 : 0];
        if (port & 1) {
            v = c->r.imr;
        } else if (c->r.poll) {
            v = pic_chip_poll(c);
            pic_update_locked(s, false);
        } else {
            v = c->r.read_isr ? c->r.isr : c->r.irr;
        }
    }
    x86_irqchip_unlock();
    return v;
}

void i8259_ioport_write(I8259State *s, uint16_t port, uint8_t value)
{
    x86_irqchip_lock();
    if (port == 0x4d0 || port == 0x4d1) {
        PICChip *c = &s->chip[port & 1];
        c->r.elcr = value & c->elcr_mask;
        /* A line switched to level reports its level at once. */
        c->r.irr = (c->r.irr & ~c->r.elcr) | (c->r.input & c->r.elcr);
    } else {
        PICChip *c = &s->chip[(port & 0x80) ? 1 : 0];
        if (port & 1) {
            pic_chip_write_data(c, value);
        } else {
            pic_chip_write_command(c, value);
        }
    }
    pic_update_locked(s, false);
    x86_irqchip_unlock();
}

void i8259_reset(I8259State *s)
{
    x86_irqchip_lock();
    for (int i = 0; i < 2; i++) {
        pic_chip_reset(&s->chip[i]);
    }
    pic_update_locked(s, true);
    x86_irqchip_unlock();
}

I8259State *i8259_new(void)
{
    I8259State *s = g_new0(I8259State, 1);

    for (int i = 0; i < 2; i++) {
        s->chip[i].pair = s;
        s->chip[i].master = i == 0;
    }
    /* IRQs 0, 1, 2 (timer, keyboard, cascade), 8 (RTC) and 13 (FPU) are edge only. */
    s->chip[0].elcr_mask = 0xf8;
    s->chip[1].elcr_mask = 0xde;
    return s;
}

void i8259_free(I8259State *s)
{
    g_free(s);
}

/* PIO glue: one opaque per port range, carrying the range's first port. */
typedef struct PICPorts {
    I8259State *pic;
    uint16_t base;
} PICPorts;

static uint64_t pic_ports_read(void *opaque, uint64_t offset, unsigned size)
{
    PICPorts *p = opaque;
    return i8259_ioport_read(p->pic, p->base + offset);
}

static void pic_ports_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    PICPorts *p = opaque;
    i8259_ioport_write(p->pic, p->base + offset, (uint8_t)value);
}

static const IoRegionOps pic_ports_ops = {
    .read = pic_ports_read,
    .write = pic_ports_write,
};

void i8259_register_io(I8259State *s)
{
    static const struct {
        uint16_t base;
        const char *name;
    } ranges[] = {
        { 0x20, "i8259-master" }, { 0xa0, "i8259-slave" }, { 0x4d0, "elcr" },
    };

    for (unsigned i = 0; i < G_N_ELEMENTS(ranges); i++) {
        PICPorts *p = g_new0(PICPorts, 1);
        p->pic = s;
        p->base = ranges[i].base;
        io_region_register(IO_SPACE_PIO, p->base, 2, ranges[i].name, &pic_ports_ops, p);
    }
}

/*
 * Migration: each chip's registers and programming. The live registers
 * may change under the irqchip lock while the stream is written (the PIT
 * raises IRQ 0 from the timer thread), so the stream reads a snapshot
 * taken under the lock, and a load fills the snapshot before installing it.
 */
static bool pic_pre_save(void *opaque, GError **errp)
{
    PICChip *c = opaque;

    x86_irqchip_lock();
    c->mig = c->r;
    x86_irqchip_unlock();
    return true;
}

static bool pic_post_load(void *opaque, int version_id, GError **errp)
{
    PICChip *c = opaque;

    if (c->mig.elcr & ~c->elcr_mask) {
        g_set_error(errp, VMSTATE_ERROR, 0, "i8259: ELCR 0x%02x sets edge-only inputs",
                    c->mig.elcr);
        return false;
    }
    x86_irqchip_lock();
    c->r = c->mig;
    pic_update_locked(c->pair, true);
    x86_irqchip_unlock();
    return true;
}

const VMStateDescription vmstate_i8259_mig = {
    .name = "i8259-regs",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT8(irr, PICRegs),
        VMSTATE_UINT8(isr, PICRegs),
        VMSTATE_UINT8(imr, PICRegs),
        VMSTATE_UINT8(input, PICRegs),
        VMSTATE_UINT8(elcr, PICRegs),
        VMSTATE_UINT8(vector_base, PICRegs),
        VMSTATE_UINT8_RANGE(priority_base, PICRegs, 0, 7),
        VMSTATE_UINT8_RANGE(init_step, PICRegs, 0, 3),
        VMSTATE_BOOL(icw4_expected, PICRegs),
        VMSTATE_BOOL(single, PICRegs),
        VMSTATE_BOOL(auto_eoi, PICRegs),
        VMSTATE_BOOL(rotate_aeoi, PICRegs),
        VMSTATE_BOOL(sfnm, PICRegs),
        VMSTATE_BOOL(special_mask, PICRegs),
        VMSTATE_BOOL(read_isr, PICRegs),
        VMSTATE_BOOL(poll, PICRegs),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_i8259 = {
    .name = "i8259",
    .version_id = I8259_VMSTATE_VERSION,
    .minimum_version_id = 1,
    .pre_save = pic_pre_save,
    .post_load = pic_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(mig, PICChip, vmstate_i8259_mig, PICRegs),
        VMSTATE_END_OF_LIST()
    },
};

void i8259_register_vmstate(I8259State *s)
{
    vmstate_register("i8259", 0, &vmstate_i8259, &s->chip[0]);
    vmstate_register("i8259", 1, &vmstate_i8259, &s->chip[1]);
}
