/*
 * COM1, polled, ring 0 only. One lock keeps each line whole when several
 * CPUs print at once; it is only ever taken with interrupts disabled, so a
 * CPU can never spin on a lock it holds itself.
 */
#include "kernel.h"

#define COM1            0x3f8
#define UART_DATA       0
#define UART_IER        1
#define UART_FCR        2
#define UART_LCR        3
#define UART_MCR        4
#define UART_LSR        5
#define LSR_DATA_READY  0x01
#define LSR_THRE        0x20
#define LCR_DLAB        0x80
#define LCR_8N1         0x03

#define IIR_FIFO_ON     0xc0
#define FIFO_DEPTH      16

static volatile u32 serial_lock;
/* Bytes that may follow one THRE poll: the FIFO depth once the UART says
 * its FIFO is on. Every port access is a VM exit, among the dearest things
 * ring 0 does here, so this saves one per byte. */
static u32 tx_burst = 1;

void serial_init(void)
{
    outb(COM1 + UART_IER, 0);
    outb(COM1 + UART_LCR, LCR_DLAB);
    outb(COM1 + UART_DATA, 1);          /* divisor 1: 115200 baud */
    outb(COM1 + UART_IER, 0);
    outb(COM1 + UART_LCR, LCR_8N1);
    outb(COM1 + UART_FCR, 0x07);        /* enable and clear both FIFOs */
    outb(COM1 + UART_MCR, 0x03);        /* DTR, RTS; no OUT2: we poll */
    if ((inb(COM1 + UART_FCR) & IIR_FIFO_ON) == IIR_FIFO_ON) {
        tx_burst = FIFO_DEPTH;          /* the port reads back as IIR */
    }
}

static void wait_thre(void)
{
    while (!(inb(COM1 + UART_LSR) & LSR_THRE)) {
        cpu_relax();
    }
}

void serial_write(const char *s, u32 n)
{
    while (__atomic_exchange_n(&serial_lock, 1, __ATOMIC_ACQUIRE)) {
        cpu_relax();
    }
    /* THRE set means the whole transmit FIFO is empty. */
    for (u32 i = 0; i < n; i++) {
        if (i % tx_burst == 0) {
            wait_thre();
        }
        outb(COM1 + UART_DATA, s[i]);
    }
    __atomic_store_n(&serial_lock, 0, __ATOMIC_RELEASE);
}

void serial_print_line(struct line *l)
{
    line_end(l);
    serial_write(l->buf, l->len);
}

void serial_puts(const char *s)
{
    u32 n = 0;

    while (s[n]) {
        n++;
    }
    serial_write(s, n);
}

/* -1 when nothing is waiting (or no UART answers: LSR reads all ones). */
int serial_getc(void)
{
    u8 lsr = inb(COM1 + UART_LSR);

    if (lsr == 0xff || !(lsr & LSR_DATA_READY)) {
        return -1;
    }
    return inb(COM1 + UART_DATA);
}
