/*
 * The PC's MC146818 real-time clock and CMOS RAM at ports 0x70/0x71, as
 * far as guests read and set the date through it.
 *
 * The date is the host's UTC time plus an offset the guest moves by
 * writing the time registers; the offset and the CMOS RAM travel in the
 * migration stream, so a migrated or restored guest's date does not jump.
 * Register A never shows an update in progress, register D always says
 * the time is valid, register B's binary and 12-hour modes are honoured.
 * No alarm, periodic or update-ended interrupt is raised (IRQ 8 stays
 * low), which the FADT's "no CMOS RTC" boot flag tells ACPI guests.
 *
 * Locking: the port handlers run under the BQL, as do save and load.
 */
#ifndef HW_TIMER_MC146818RTC_H
#define HW_TIMER_MC146818RTC_H

#include <stdint.h>

#define RTC_PORT_INDEX      0x70
#define RTC_PORT_DATA       0x71
#define RTC_CMOS_SIZE       128

typedef struct MC146818State MC146818State;

MC146818State *mc146818_new(void);
void mc146818_free(MC146818State *s);
/* Claim ports 0x70-0x71. */
void mc146818_register_io(MC146818State *s);
/* Migration: ("mc146818rtc", 0). */
void mc146818_register_vmstate(MC146818State *s);

/* Port access (what the PIO dispatch calls). */
uint8_t mc146818_ioport_read(MC146818State *s, uint16_t port);
void mc146818_ioport_write(MC146818State *s, uint16_t port, uint8_t value);

/* The guest's date, in seconds since the epoch (UTC), and its offset from the host's. */
int64_t mc146818_guest_time(MC146818State *s);
int64_t mc146818_offset(MC146818State *s);

#endif
