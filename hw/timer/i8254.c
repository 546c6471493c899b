/*
 * The 8254. A channel keeps the ticks it counted before its current run
 * (ticks_base) and the host time that run began (start_ns); every read of
 * the counter or of OUT is computed from those and the host clock. Loading
 * a count, a gate edge or a mode write starts a new run as the datasheet
 * says for that mode.
 */
#include <string.h>

#include <glib.h>

#include "hw/timer/host-timer.h"
#include "hw/timer/i8254.h"
#include "migration/register.h"
#include "migration/vmstate.h"
#include "system/ioport.h"

#define PIT_PORT_BASE       0x40
#define PIT_PORT_CONTROL    0x43
#define PIT_PORT_61         0x61
#define PIT_IRQ             0


#define PORT61_REFRESH      0x10
#define PORT61_OUT2         0x20
#define PIT_REFRESH_NS      15085       /* the DRAM refresh request period */

typedef I8254Channel PITChannel;

struct I8254State {
    GMutex lock;
    HostTimer *timer;           /* channel 0's next interrupt */
    PITChannel ch[PIT_NR_CHANNELS];
    uint8_t port61;
    bool irq_level;             /* IRQ 0 as last driven */
    bool irq_armed;
    int64_t irq_next;
    I8254Mig mig;               /* the stream's view: ticks in place of host times */
};

uint64_t i8254_ns_to_ticks(int64_t ns)
{
    return ns <= 0 ? 0 : (uint64_t)((unsigned __int128)ns * PIT_FREQ_HZ / 1000000000ULL);
}

/* The first host instant at which @ticks have elapsed. */
int64_t i8254_ticks_to_ns(uint64_t ticks)
{
    unsigned __int128 ns = ((unsigned __int128)ticks * 1000000000ULL + PIT_FREQ_HZ - 1) /
                           PIT_FREQ_HZ;
    return (int64_t)ns;
}

static uint64_t pit_ticks(const PITChannel *c, int64_t now)
{
    return c->ticks_base + (c->running ? i8254_ns_to_ticks(now - c->start_ns) : 0);
}

static uint32_t pit_modulus(const PITChannel *c)
{
    return c->bcd ? 10000 : 0x10000;
}

static uint32_t pit_counter(const PITChannel *c, int64_t now)
{
    uint64_t d = pit_ticks(c, now);
    uint32_t m = pit_modulus(c), v;

    if (!c->loaded) {
        return 0;
    }
    switch (c->mode) {
    case 2:
        v = c->count - (uint32_t)(d % c->count);
        break;
    case 3: {
        uint32_t p = (uint32_t)(d % c->count), high = (c->count + 1) / 2;
        /* Counts down by two through each half period. */
        v = c->count - 2 * (p < high ? p : p - high);
        break;
    }
    case 1:
    case 5:
        if (!c->triggered) {
            return c->count % m;
        }
        /* fall through */
    default:
        v = (uint32_t)((c->count + m - d % m) % m);
        break;
    }
    return v % m;
}

static bool pit_out(const PITChannel *c, int64_t now)
{
    uint64_t d = pit_ticks(c, now);

    switch (c->mode) {
    case 0:
        return c->loaded && d >= c->count;
    case 1:
        return !c->triggered || d >= c->count;
    case 2:
        return !c->gate || !c->loaded || d % c->count != c->count - 1;
    case 3:
        return !c->gate || !c->loaded || d % c->count < (c->count + 1) / 2;
    case 4:
        return !c->loaded || d != c->count;
    default:
        return !c->triggered || d != c->count;
    }
}

static uint16_t pit_to_bcd(uint32_t v)
{
    return (uint16_t)((v % 10) | ((v / 10 % 10) << 4) | ((v / 100 % 10) << 8) |
                      ((v / 1000 % 10) << 12));
}

static uint32_t pit_from_bcd(uint16_t v)
{
    return (v & 0xf) + ((v >> 4) & 0xf) * 10 + ((v >> 8) & 0xf) * 100 + ((v >> 12) & 0xf) * 1000;
}

/* ---- channel 0's interrupt ---- */

static void pit_irq_drive(I8254State *s, bool level)
{
    s->irq_level = level;
    x86_irq_set(PIT_IRQ, level);
}

/* Channel 0's next OUT event after @now, or -1. */
static int64_t pit_irq_next_event(const PITChannel *c, int64_t now)
{
    if (!c->loaded || !c->running) {
        return -1;
    }
    uint64_t d = pit_ticks(c, now);
    switch (c->mode) {
    case 0:
    case 4:
        return d < c->count ? c->start_ns + i8254_ticks_to_ns(c->count - c->ticks_base) : -1;
    case 2:
    case 3: {
        uint64_t target = (d / c->count + 1) * c->count;
        int64_t t = c->start_ns + i8254_ticks_to_ns(target - c->ticks_base);
        return i8254_ticks_to_ns(c->count) < PIT_MIN_PERIOD_NS ? MAX(t, now + PIT_MIN_PERIOD_NS)
                                                              : t;
    }
    default:
        return -1;      /* modes 1 and 5 wait for a gate edge channel 0 never sees */
    }
}

/* After any change to channel 0 or the passing of an event: drive the line, arm the timer. */
static void pit_irq_update(I8254State *s, int64_t now)
{
    PITChannel *c = &s->ch[0];

    if (c->mode == 0) {
        bool out = pit_out(c, now);
        if (out != s->irq_level) {
            pit_irq_drive(s, out);
        }
    }
    s->irq_next = pit_irq_next_event(c, now);
    s->irq_armed = s->irq_next >= 0;
    if (s->irq_armed) {
        host_timer_mod(s->timer, s->irq_next);
    } else {
        host_timer_del(s->timer);
    }
}

/* The host timer thread: takes the PIT lock, then (raising IRQ 0) the irqchip lock. */
static void pit_irq_expire(void *opaque)
{
    I8254State *s = opaque;

    g_mutex_lock(&s->lock);
    int64_t now = host_clock_ns();
    if (s->irq_armed && now >= s->irq_next) {
        uint8_t mode = s->ch[0].mode;
        if (mode == 2 || mode == 3 || mode == 4) {
            /* A rising edge: what edge-triggered PIC and IOAPIC inputs see. */
            pit_irq_drive(s, false);
            pit_irq_drive(s, true);
        }
    }
    pit_irq_update(s, now);
    g_mutex_unlock(&s->lock);
}

/* ---- programming ---- */

static void pit_start_run(PITChannel *c, int64_t now)
{
    c->ticks_base = 0;
    c->start_ns = now;
    c->running = true;
}

static void pit_load_count(PITChannel *c, uint16_t raw, int64_t now)
{
    uint32_t v = c->bcd ? pit_from_bcd(raw) : raw;

    c->count = v ? v : pit_modulus(c);
    c->loaded = true;
    c->null_count = false;
    if (c->mode == 1 || c->mode == 5) {
        return;         /* waits for a gate edge */
    }
    pit_start_run(c, now);
    c->running = c->gate;
}

static void pit_set_gate(PITChannel *c, bool gate, int64_t now)
{
    if (gate == c->gate) {
        return;
    }
    c->gate = gate;
    if (!c->loaded) {
        return;
    }
    switch (c->mode) {
    case 0:
    case 4:
        /* The gate pauses and resumes the count. */
        if (!gate) {
            c->ticks_base = pit_ticks(c, now);
            c->running = false;
        } else {
            c->start_ns = now;
            c->running = true;
        }
        break;
    case 2:
    case 3:
        /* Low stops the count (OUT high); the rising edge reloads it. */
        if (!gate) {
            c->ticks_base = pit_ticks(c, now);
            c->running = false;
        } else {
            pit_start_run(c, now);
        }
        break;
    default:
        /* Modes 1 and 5: the rising edge (re)triggers. */
        if (gate) {
            pit_start_run(c, now);
            c->triggered = true;
        }
        break;
    }
}

static uint8_t pit_status(const PITChannel *c, int64_t now)
{
    return (pit_out(c, now) ? 0x80 : 0) | (c->null_count ? 0x40 : 0) | (c->rw_mode << 4) |
           (c->mode << 1) | (c->bcd ? 1 : 0);
}

static void pit_latch_count(PITChannel *c, int64_t now)
{
    if (c->latch_left) {
        return;         /* a latch not yet read holds */
    }
    uint32_t v = pit_counter(c, now);
    c->latch = c->bcd ? pit_to_bcd(v) : (uint16_t)v;
    c->latch_left = c->rw_mode == RW_WORD ? 2 : 1;
}

static void pit_write_control(I8254State *s, uint8_t v, int64_t now)
{
    int sel = v >> 6;

    if (sel == 3) {
        /* Read-back: bit 5 clear latches counts, bit 4 clear latches status. */
        for (int i = 0; i < PIT_NR_CHANNELS; i++) {
            PITChannel *c = &s->ch[i];
            if (!(v & (2 << i))) {
                continue;
            }
            if (!(v & 0x20)) {
                pit_latch_count(c, now);
            }
            if (!(v & 0x10) && !c->status_latched) {
                c->status = pit_status(c, now);
                c->status_latched = true;
            }
        }
        return;
    }
    PITChannel *c = &s->ch[sel];
    int rw = (v >> 4) & 3;
    if (rw == RW_LATCH) {
        pit_latch_count(c, now);
        return;
    }
    int mode = (v >> 1) & 7;
    c->mode = mode > 5 ? mode - 4 : mode;       /* 6 and 7 are 2 and 3 */
    c->rw_mode = rw;
    c->bcd = v & 1;
    c->loaded = false;
    c->running = false;
    c->triggered = false;
    c->ticks_base = 0;
    c->null_count = true;
    c->write_msb_next = false;
    c->read_msb_next = false;
    c->latch_left = 0;
    c->status_latched = false;
    if (sel == 0) {
        pit_irq_update(s, now);
    }
}

static void pit_write_counter(I8254State *s, int i, uint8_t v, int64_t now)
{
    PITChannel *c = &s->ch[i];

    switch (c->rw_mode) {
    case RW_LSB:
        pit_load_count(c, v, now);
        break;
    case RW_MSB:
        pit_load_count(c, (uint16_t)(v << 8), now);
        break;
    default:
        if (!c->write_msb_next) {
            c->write_lsb = v;
            c->write_msb_next = true;
            if (c->mode == 0) {
                /* Mode 0: the first byte stops the count and drops OUT. */
                c->loaded = false;
                c->running = false;
            }
            break;
        }
        c->write_msb_next = false;
        pit_load_count(c, (uint16_t)(c->write_lsb | (v << 8)), now);
        break;
    }
    if (i == 0) {
        pit_irq_update(s, now);
    }
}

static uint8_t pit_read_counter(PITChannel *c, int64_t now)
{
    if (c->status_latched) {
        c->status_latched = false;
        return c->status;
    }
    if (c->latch_left) {
        bool msb = c->rw_mode == RW_MSB || (c->rw_mode == RW_WORD && c->latch_left == 1);
        c->latch_left--;
        return msb ? c->latch >> 8 : c->latch & 0xff;
    }
    uint32_t v = pit_counter(c, now);
    uint16_t w = c->bcd ? pit_to_bcd(v) : (uint16_t)v;
    bool msb = c->rw_mode == RW_MSB;
    if (c->rw_mode == RW_WORD) {
        msb = c->read_msb_next;
        c->read_msb_next = !c->read_msb_next;
    }
    return msb ? w >> 8 : w & 0xff;
}

uint8_t i8254_ioport_read(I8254State *s, uint16_t port)
{
    uint8_t v = 0xff;

    g_mutex_lock(&s->lock);
    int64_t now = host_clock_ns();
    if (port == PIT_PORT_61) {
        v = (s->port61 & PORT61_WRITABLE) | (pit_out(&s->ch[2], now) ? PORT61_OUT2 : 0) |
            ((now / PIT_REFRESH_NS) & 1 ? PORT61_REFRESH : 0);
    } else if (port >= PIT_PORT_BASE && port < PIT_PORT_CONTROL) {
        v = pit_read_counter(&s->ch[port - PIT_PORT_BASE], now);
    }
    g_mutex_unlock(&s->lock);
    return v;
}

void i8254_ioport_write(I8254State *s, uint16_t port, uint8_t value)
{
    g_mutex_lock(&s->lock);
    int64_t now = host_clock_ns();
    if (port == PIT_PORT_61) {
        s->port61 = value & PORT61_WRITABLE;
        pit_set_gate(&s->ch[2], value & PORT61_GATE2, now);
    } else if (port == PIT_PORT_CONTROL) {
        pit_write_control(s, value, now);
    } else if (port >= PIT_PORT_BASE && port < PIT_PORT_CONTROL) {
        pit_write_counter(s, port - PIT_PORT_BASE, value, now);
    }
    g_mutex_unlock(&s->lock);
}

static uint64_t pit_io_read(void *opaque, uint64_t offset, unsigned size)
{
    I8254State *s = opaque;
    return i8254_ioport_read(s, PIT_PORT_BASE + offset);
}

static void pit_io_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    I8254State *s = opaque;
    i8254_ioport_write(s, PIT_PORT_BASE + offset, (uint8_t)value);
}

static uint64_t pit_port61_read(void *opaque, uint64_t offset, unsigned size)
{
    return i8254_ioport_read(opaque, PIT_PORT_61);
}

static void pit_port61_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    i8254_ioport_write(opaque, PIT_PORT_61, (uint8_t)value);
}

static const IoRegionOps pit_io_ops = {
    .read = pit_io_read,
    .write = pit_io_write,
};

static const IoRegionOps pit_port61_ops = {
    .read = pit_port61_read,
    .write = pit_port61_write,
};

void i8254_register_io(I8254State *s)
{
    io_region_register(IO_SPACE_PIO, PIT_PORT_BASE, 4, "i8254", &pit_io_ops, s);
    io_region_register(IO_SPACE_PIO, PIT_PORT_61, 1, "port61", &pit_port61_ops, s);
}

void i8254_reset(I8254State *s)
{
    g_mutex_lock(&s->lock);
    memset(s->ch, 0, sizeof(s->ch));
    for (int i = 0; i < PIT_NR_CHANNELS; i++) {
        s->ch[i].rw_mode = RW_WORD;
        s->ch[i].count = 0x10000;
        s->ch[i].gate = i != 2;
    }
    s->port61 = 0;
    if (s->irq_level) {
        pit_irq_drive(s, false);
    }
    pit_irq_update(s, host_clock_ns());
    g_mutex_unlock(&s->lock);
}

I8254State *i8254_new(void)
{
    I8254State *s = g_new0(I8254State, 1);

    g_mutex_init(&s->lock);
    s->timer = host_timer_new(pit_irq_expire, s);
    i8254_reset(s);
    return s;
}

void i8254_free(I8254State *s)
{
    if (!s) {
        return;
    }
    host_timer_free(s->timer);
    g_mutex_clear(&s->lock);
    g_free(s);
}

/*
 * Migration: the programming and access state of each channel, with the
 * ticks counted so far in place of host times, so the count resumes where
 * it stood on whatever clock the destination has.
 */
static bool pit_pre_save(void *opaque, GError **errp)
{
    I8254State *s = opaque;

    g_mutex_lock(&s->lock);
    int64_t now = host_clock_ns();
    for (int i = 0; i < PIT_NR_CHANNELS; i++) {
        s->mig.ch[i] = s->ch[i];
        s->mig.ch[i].ticks_base = pit_ticks(&s->ch[i], now);
        s->mig.ch[i].start_ns = 0;
    }
    s->mig.port61 = s->port61;
    s->mig.irq_level = s->irq_level;
    g_mutex_unlock(&s->lock);
    return true;
}

static bool pit_post_load(void *opaque, int version_id, GError **errp)
{
    I8254State *s = opaque;

    for (int i = 0; i < PIT_NR_CHANNELS; i++) {
        PITChannel *c = &s->mig.ch[i];
        if (c->count < 1 || c->count > 0x10000 || c->mode > 5 || c->rw_mode < RW_LSB ||
            c->rw_mode > RW_WORD || c->latch_left > 2) {
            g_set_error(errp, VMSTATE_ERROR, 0, "i8254: channel %d state out of range", i);
            return false;
        }
    }
    g_mutex_lock(&s->lock);
    int64_t now = host_clock_ns();
    for (int i = 0; i < PIT_NR_CHANNELS; i++) {
        s->ch[i] = s->mig.ch[i];
        s->ch[i].start_ns = now;
    }
    s->port61 = s->mig.port61 & PORT61_WRITABLE;
    pit_irq_drive(s, s->mig.irq_level);
    pit_irq_update(s, now);
    g_mutex_unlock(&s->lock);
    return true;
}

static const VMStateDescription vmstate_i8254_channel = {
    .name = "i8254-channel",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT8_RANGE(mode, PITChannel, 0, 5),
        VMSTATE_UINT8_RANGE(rw_mode, PITChannel, RW_LSB, RW_WORD),
        VMSTATE_BOOL(bcd, PITChannel),
        VMSTATE_UINT32_RANGE(count, PITChannel, 1, 0x10000),
        VMSTATE_BOOL(gate, PITChannel),
        VMSTATE_BOOL(loaded, PITChannel),
        VMSTATE_BOOL(running, PITChannel),
        VMSTATE_BOOL(triggered, PITChannel),
        VMSTATE_BOOL(null_count, PITChannel),
        VMSTATE_UINT64(ticks_base, PITChannel),
        VMSTATE_BOOL(write_msb_next, PITChannel),
        VMSTATE_UINT8(write_lsb, PITChannel),
        VMSTATE_BOOL(read_msb_next, PITChannel),
        VMSTATE_UINT16(latch, PITChannel),
        VMSTATE_UINT8_RANGE(latch_left, PITChannel, 0, 2),
        VMSTATE_UINT8(status, PITChannel),
        VMSTATE_BOOL(status_latched, PITChannel),
        VMSTATE_END_OF_LIST()
    },
};

const VMStateDescription vmstate_i8254_mig = {
    .name = "i8254-state",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT_ARRAY(ch, I8254Mig, PIT_NR_CHANNELS, vmstate_i8254_channel,
                             PITChannel),
        VMSTATE_UINT8(port61, I8254Mig),
        VMSTATE_BOOL(irq_level, I8254Mig),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_i8254 = {
    .name = "i8254",
    .version_id = I8254_VMSTATE_VERSION,
    .minimum_version_id = 1,
    .pre_save = pit_pre_save,
    .post_load = pit_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(mig, I8254State, vmstate_i8254_mig, I8254Mig),
        VMSTATE_END_OF_LIST()
    },
};

void i8254_register_vmstate(I8254State *s)
{
    vmstate_register("i8254", 0, &vmstate_i8254, s);
}
