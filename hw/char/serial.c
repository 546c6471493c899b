/*
 * A 16550A UART. Transmission is instant: a byte written to THR goes to
 * the chardev at once and THR is empty again, so THRE/TEMT always read
 * set. Received bytes wait in a 16-byte FIFO (or a 1-byte holding
 * register when the FIFO is off).
 */
#include <string.h>

#include "system/accel.h"
#include "hw/char/serial.h"
#include "migration/register.h"
#include "migration/vmstate.h"
#include "system/ioport.h"

#define UART_RBR 0
#define UART_IER 1
#define UART_IIR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define IER_RDI  0x01   /* received data available */
#define IER_THRI 0x02   /* transmitter holding register empty */
#define IER_RLSI 0x04   /* receiver line status */
#define IER_MSI  0x08   /* modem status */

#define IIR_NO_INT 0x01
#define IIR_THRI   0x02
#define IIR_RDI    0x04
#define IIR_FIFO_ENABLED 0xc0

#define LCR_DLAB 0x80
#define LSR_DR   0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MCR_LOOP 0x10
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02

/* Recompute IIR and drive the line; @force drives it even if unchanged. */
static void serial_update_irq_line(SerialState *s, bool force)
{
    uint8_t iir = IIR_NO_INT;

    if ((s->ier & IER_RDI) && s->rx_count) {
        iir = IIR_RDI;
    } else if ((s->ier & IER_THRI) && s->thr_ipending) {
        iir = IIR_THRI;
    }
    s->iir = iir | ((s->fcr & FCR_ENABLE) ? IIR_FIFO_ENABLED : 0);
    bool level = iir != IIR_NO_INT;
    if (force || level != s->irq_level) {
        s->irq_level = level;
        accel_set_irq(s->irq, level);
    }
}

static void serial_update_irq(SerialState *s)
{
    serial_update_irq_line(s, false);
}

static void serial_update_lsr(SerialState *s)
{
    s->lsr = LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0);
}

static unsigned serial_rx_capacity(SerialState *s)
{
    return (s->fcr & FCR_ENABLE) ? SERIAL_FIFO_SIZE : 1;
}

static void serial_rx_push(SerialState *s, uint8_t b)
{
    if (s->rx_count >= serial_rx_capacity(s)) {
        return;     /* overrun: the byte is lost, as on hardware */
    }
    s->rx_fifo[(s->rx_head + s->rx_count) % SERIAL_FIFO_SIZE] = b;
    s->rx_count++;
}

static uint8_t serial_rx_pop(SerialState *s)
{
    if (!s->rx_count) {
        return 0;
    }
    uint8_t b = s->rx_fifo[s->rx_head];
    s->rx_head = (s->rx_head + 1) % SERIAL_FIFO_SIZE;
    s->rx_count--;
    return b;
}

static void serial_transmit(SerialState *s, uint8_t b)
{
    if (s->mcr & MCR_LOOP) {
        serial_rx_push(s, b);
    } else if (s->chr) {
        chardev_write(s->chr, &b, 1);
    }
    s->thr_ipending = true;
}

static uint64_t serial_read(void *opaque, uint64_t offset, unsigned size)
{
    SerialState *s = opaque;
    uint8_t v = 0;

    switch (offset) {
    case UART_RBR:
        if (s->lcr & LCR_DLAB) {
            v = s->divider & 0xff;
        } else {
            bool was_full = s->rx_count >= serial_rx_capacity(s);
            v = serial_rx_pop(s);
            serial_update_lsr(s);
            if (was_full && s->chr) {
                /* The backend held input back while the FIFO was full. */
                chardev_accept_input(s->chr);
            }
        }
        break;
    case UART_IER:
        v = (s->lcr & LCR_DLAB) ? s->divider >> 8 : s->ier;
        break;
    case UART_IIR:
        v = s->iir;
        if ((v & 0x0f) == IIR_THRI) {
            s->thr_ipending = false;
        }
        break;
    case UART_LCR:
        v = s->lcr;
        break;
    case UART_MCR:
        v = s->mcr;
        break;
    case UART_LSR:
        serial_update_lsr(s);
        v = s->lsr;
        break;
    case UART_MSR:
        if (s->mcr & MCR_LOOP) {
            /* Loopback wires DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD. */
            v = (uint8_t)(((s->mcr & 0x0c) << 4) | ((s->mcr & 0x02) << 3) |
                          ((s->mcr & 0x01) << 5));
        } else {
            v = 0xb0;   /* DCD, DSR, CTS: a cable is attached */
        }
        break;
    case UART_SCR:
        v = s->scr;
        break;
    }
    serial_update_irq(s);
    return v;
}

static void serial_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    SerialState *s = opaque;
    uint8_t v = (uint8_t)value;

    switch (offset) {
    case UART_RBR:
        if (s->lcr & LCR_DLAB) {
            s->divider = (s->divider & 0xff00) | v;
        } else {
            serial_transmit(s, v);
        }
        break;
    case UART_IER:
        if (s->lcr & LCR_DLAB) {
            s->divider = (uint16_t)((s->divider & 0x00ff) | (v << 8));
        } else {
            /* Enabling THRI with THR empty raises the interrupt at once. */
            if (!(s->ier & IER_THRI) && (v & IER_THRI)) {
                s->thr_ipending = true;
            }
            s->ier = v & 0x0f;
        }
        break;
    case UART_IIR:
        if ((v & FCR_CLEAR_RX) || ((v ^ s->fcr) & FCR_ENABLE)) {
            s->rx_head = 0;
            s->rx_count = 0;
        }
        s->fcr = v & 0xc9;
        break;
    case UART_LCR:
        s->lcr = v;
        break;
    case UART_MCR:
        s->mcr = v & 0x1f;
        break;
    case UART_SCR:
        s->scr = v;
        break;
    default:
        break;
    }
    serial_update_lsr(s);
    serial_update_irq(s);
}

static const IoRegionOps serial_ops = {
    .read = serial_read,
    .write = serial_write,
};

static size_t serial_can_receive(void *opaque)
{
    SerialState *s = opaque;
    return serial_rx_capacity(s) - s->rx_count;
}

static void serial_receive(void *opaque, const guint8 *buf, size_t len)
{
    SerialState *s = opaque;
    for (size_t i = 0; i < len; i++) {
        serial_rx_push(s, buf[i]);
    }
    serial_update_lsr(s);
    serial_update_irq(s);
}

static const CharFrontendOps serial_chr_ops = {
    .can_receive = serial_can_receive,
    .receive = serial_receive,
};

void serial_reset(SerialState *s)
{
    s->ier = 0;
    s->lcr = 0;
    s->mcr = 0;
    s->scr = 0;
    s->fcr = 0;
    s->divider = 12;    /* 9600 baud */
    s->rx_head = 0;
    s->rx_count = 0;
    s->thr_ipending = false;
    serial_update_lsr(s);
    serial_update_irq(s);
}

/*
 * Migration. Every register the guest can read or write travels, with the
 * receive FIFO (contents, head, count); LSR and IIR are derived state and
 * are recomputed after loading, which also drives the interrupt line to
 * the level the loaded state implies.
 */
static bool serial_post_load(void *opaque, int version_id, GError **errp)
{
    SerialState *s = opaque;

    if (s->fcr & ~0xc9) {
        g_set_error(errp, VMSTATE_ERROR, 0, "FCR 0x%02x has bits a guest cannot set", s->fcr);
        return false;
    }
    if (s->rx_count > serial_rx_capacity(s)) {
        g_set_error(errp, VMSTATE_ERROR, 0, "%u bytes in the receive FIFO, which holds %u "
                    "with FCR 0x%02x", s->rx_count, serial_rx_capacity(s), s->fcr);
        return false;
    }
    serial_update_lsr(s);
    serial_update_irq_line(s, true);
    return true;
}

static const VMStateDescription vmstate_serial = {
    .name = "serial",
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = serial_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT16(divider, SerialState),
        VMSTATE_UINT8_RANGE(ier, SerialState, 0, 0x0f),
        VMSTATE_UINT8(iir, SerialState),
        VMSTATE_UINT8(lcr, SerialState),
        VMSTATE_UINT8_RANGE(mcr, SerialState, 0, 0x1f),
        VMSTATE_UINT8(lsr, SerialState),
        VMSTATE_UINT8(msr, SerialState),
        VMSTATE_UINT8(scr, SerialState),
        /* Only FIFO enable, DMA mode and the trigger level stick (0xc9). */
        VMSTATE_UINT8_RANGE(fcr, SerialState, 0, 0xc9),
        VMSTATE_BOOL(thr_ipending, SerialState),
        VMSTATE_BUFFER(rx_fifo, SerialState),
        VMSTATE_UINT32_RANGE(rx_head, SerialState, 0, SERIAL_FIFO_SIZE - 1),
        VMSTATE_UINT32_RANGE(rx_count, SerialState, 0, SERIAL_FIFO_SIZE),
        VMSTATE_END_OF_LIST()
    },
};

SerialState *serial_isa_init(unsigned index, uint16_t base, int irq, Chardev *chr,
                             GError **errp)
{
    SerialState *s = g_new0(SerialState, 1);
    s->base = base;
    s->irq = irq;
    s->chr = chr;
    if (chr && !chardev_attach_frontend(chr, &serial_chr_ops, s, errp)) {
        g_free(s);
        return NULL;
    }
    io_region_register(IO_SPACE_PIO, base, 8, "serial", &serial_ops, s);
    serial_reset(s);
    vmstate_register(NULL, index, &vmstate_serial, s);
    return s;
}
