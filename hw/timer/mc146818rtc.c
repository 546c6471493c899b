/*
 * MC146818 RTC: the guest's date computed from the host's clock on every
 * read of a time register, never ticked. See the header for what is and
 * is not modelled.
 */
#include <string.h>
#include <time.h>

#include <glib.h>

#include "hw/timer/mc146818rtc.h"
#include "migration/register.h"
#include "migration/vmstate.h"
#include "system/ioport.h"

enum {
    REG_SEC = 0x00, REG_MIN = 0x02, REG_HOUR = 0x04, REG_WDAY = 0x06, REG_MDAY = 0x07,
    REG_MON = 0x08, REG_YEAR = 0x09, REG_A = 0x0a, REG_B = 0x0b, REG_C = 0x0c,
    REG_D = 0x0d, REG_CENTURY = 0x32,
};

#define REG_A_UIP       0x80
#define REG_B_SET       0x80
#define REG_B_BINARY    0x04
#define REG_B_24H       0x02
#define REG_D_VRT       0x80
#define HOUR_PM         0x80

struct MC146818State {
    uint8_t cmos[RTC_CMOS_SIZE];
    uint8_t index;
    int64_t offset;         /* guest date - host date, seconds */
};

static bool is_time_reg(unsigned reg)
{
    return reg <= REG_YEAR || reg == REG_CENTURY;
}

static uint8_t to_reg(const MC146818State *s, unsigned v)
{
    return (s->cmos[REG_B] & REG_B_BINARY) ? (uint8_t)v : (uint8_t)(((v / 10) << 4) | (v % 10));
}

static unsigned from_reg(const MC146818State *s, uint8_t v)
{
    return (s->cmos[REG_B] & REG_B_BINARY) ? v : (unsigned)((v >> 4) * 10 + (v & 0xf));
}

int64_t mc146818_guest_time(MC146818State *s)
{
    return (int64_t)time(NULL) + s->offset;
}

int64_t mc146818_offset(MC146818State *s)
{
    return s->offset;
}

/* The guest's date into the time registers, in the format register B asks for. */
static void time_to_regs(MC146818State *s)
{
    time_t t = (time_t)mc146818_guest_time(s);
    struct tm tm;
    unsigned hour;

    gmtime_r(&t, &tm);
    s->cmos[REG_SEC] = to_reg(s, (unsigned)tm.tm_sec);
    s->cmos[REG_MIN] = to_reg(s, (unsigned)tm.tm_min);
    hour = (unsigned)tm.tm_hour;
    if (s->cmos[REG_B] & REG_B_24H) {
        s->cmos[REG_HOUR] = to_reg(s, hour);
    } else {
        unsigned h12 = hour % 12 ? hour % 12 : 12;
        s->cmos[REG_HOUR] = to_reg(s, h12) | (hour >= 12 ? HOUR_PM : 0);
    }
    s->cmos[REG_WDAY] = to_reg(s, (unsigned)tm.tm_wday + 1);
    s->cmos[REG_MDAY] = to_reg(s, (unsigned)tm.tm_mday);
    s->cmos[REG_MON] = to_reg(s, (unsigned)tm.tm_mon + 1);
    s->cmos[REG_YEAR] = to_reg(s, (unsigned)(tm.tm_year + 1900) % 100);
    s->cmos[REG_CENTURY] = to_reg(s, (unsigned)(tm.tm_year + 1900) / 100);
}

/* The time registers as the guest left them: the new offset from the host. */
static void regs_to_offset(MC146818State *s)
{
    struct tm tm = { 0 };
    unsigned hour = from_reg(s, s->cmos[REG_HOUR] & ~HOUR_PM);

    if (!(s->cmos[REG_B] & REG_B_24H)) {
        hour %= 12;
        if (s->cmos[REG_HOUR] & HOUR_PM) {
            hour += 12;
        }
    }
    tm.tm_sec = (int)from_reg(s, s->cmos[REG_SEC]);
    tm.tm_min = (int)from_reg(s, s->cmos[REG_MIN]);
    tm.tm_hour = (int)hour;
    tm.tm_mday = (int)from_reg(s, s->cmos[REG_MDAY]);
    tm.tm_mon = (int)from_reg(s, s->cmos[REG_MON]) - 1;
    tm.tm_year = (int)(from_reg(s, s->cmos[REG_CENTURY]) * 100 +
                       from_reg(s, s->cmos[REG_YEAR])) - 1900;
    s->offset = (int64_t)timegm(&tm) - (int64_t)time(NULL);
}

uint8_t mc146818_ioport_read(MC146818State *s, uint16_t port)
{
    unsigned reg = s->index;

    if (port == RTC_PORT_INDEX) {
        return 0xff;                    /* the index register is write-only */
    }
    if (is_time_reg(reg) && !(s->cmos[REG_B] & REG_B_SET)) {
        time_to_regs(s);
    }
    switch (reg) {
    case REG_A:
        return s->cmos[REG_A] & ~REG_A_UIP;
    case REG_C:
        return 0;                       /* no interrupt ever pending */
    case REG_D:
        return REG_D_VRT;
    default:
        return s->cmos[reg];
    }
}

void mc146818_ioport_write(MC146818State *s, uint16_t port, uint8_t value)
{
    unsigned reg = s->index;

    if (port == RTC_PORT_INDEX) {
        s->index = value & (RTC_CMOS_SIZE - 1);     /* bit 7 masks NMIs: not modelled */
        return;
    }
    switch (reg) {
    case REG_A:
        s->cmos[REG_A] = value & ~REG_A_UIP;
        return;
    case REG_B:
        if ((s->cmos[REG_B] & REG_B_SET) && !(value & REG_B_SET)) {
            /* The guest set the date while updates were held: take it now. */
            regs_to_offset(s);
        } else if (!(s->cmos[REG_B] & REG_B_SET) && (value & REG_B_SET)) {
            time_to_regs(s);            /* held from here, in the old format */
        }
        s->cmos[REG_B] = value;
        return;
    case REG_C:
    case REG_D:
        return;                         /* read-only */
    default:
        if (is_time_reg(reg)) {
            if (!(s->cmos[REG_B] & REG_B_SET)) {
                time_to_regs(s);
                s->cmos[reg] = value;
                regs_to_offset(s);
            } else {
                s->cmos[reg] = value;
            }
            return;
        }
        s->cmos[reg] = value;
        return;
    }
}

MC146818State *mc146818_new(void)
{
    MC146818State *s = g_new0(MC146818State, 1);

    s->cmos[REG_A] = 0x26;              /* 32.768 kHz time base, 1024 Hz rate */
    s->cmos[REG_B] = REG_B_24H;         /* BCD, 24-hour, no interrupts */
    return s;
}

void mc146818_free(MC146818State *s)
{
    g_free(s);
}

static uint64_t rtc_io_read(void *opaque, uint64_t offset, unsigned size)
{
    return mc146818_ioport_read(opaque, (uint16_t)(RTC_PORT_INDEX + offset));
}

static void rtc_io_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    mc146818_ioport_write(opaque, (uint16_t)(RTC_PORT_INDEX + offset), (uint8_t)value);
}

static const IoRegionOps rtc_io_ops = {
    .read = rtc_io_read,
    .write = rtc_io_write,
};

void mc146818_register_io(MC146818State *s)
{
    io_region_register(IO_SPACE_PIO, RTC_PORT_INDEX, 2, "mc146818rtc", &rtc_io_ops, s);
}

static bool rtc_post_load(void *opaque, int version_id, GError **errp)
{
    MC146818State *s = opaque;

    if (s->index >= RTC_CMOS_SIZE) {
        g_set_error(errp, VMSTATE_ERROR, 0, "RTC index register %u is out of range", s->index);
        return false;
    }
    return true;
}

static const VMStateDescription vmstate_mc146818 = {
    .name = "mc146818rtc",
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = rtc_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_BUFFER(cmos, MC146818State),
        VMSTATE_UINT8(index, MC146818State),
        VMSTATE_INT64(offset, MC146818State),
        VMSTATE_END_OF_LIST()
    },
};

void mc146818_register_vmstate(MC146818State *s)
{
    vmstate_register("mc146818rtc", 0, &vmstate_mc146818, s);
}
