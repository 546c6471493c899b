/* 16550A UART on an ISA port range and IRQ, backed by a chardev. */
#ifndef HW_CHAR_SERIAL_H
#define HW_CHAR_SERIAL_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "chardev/char.h"

#define SERIAL_FIFO_SIZE 16

typedef struct SerialState {
    uint16_t base;
    int irq;
    Chardev *chr;
    /* Registers. */
    uint8_t ier, iir, lcr, mcr, lsr, msr, scr, fcr;
    uint16_t divider;
    bool thr_ipending;
    bool irq_level;
    /* Receive FIFO. */
    uint8_t rx_fifo[SERIAL_FIFO_SIZE];
    unsigned rx_head;
    unsigned rx_count;
} SerialState;

/*
 * A UART at @base/@irq. @index (COM1 = 0) is the instance number its
 * state migrates under ("serial", @index).
 */
SerialState *serial_isa_init(unsigned index, uint16_t base, int irq, Chardev *chr,
                             GError **errp);
void serial_reset(SerialState *s);

#endif
