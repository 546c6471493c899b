/*
 * The CMOS real-time clock: the date it reports in BCD and binary, 24-
 * and 12-hour forms, a date the guest sets (directly and under register
 * B's SET bit), the registers a guest polls (A's update flag, C, D), CMOS
 * RAM, and its date and RAM across a save and a load.
 */
#include <string.h>
#include <time.h>

#include <glib.h>

#include "hw/timer/mc146818rtc.h"
#include "tests/unit/migration/vmstate-stream.h"
#include "tests/unit/migration/vmstate-stubs.h"

static uint8_t rtc_get(MC146818State *s, uint8_t reg)
{
    mc146818_ioport_write(s, RTC_PORT_INDEX, reg);
    return mc146818_ioport_read(s, RTC_PORT_DATA);
}

static void rtc_set(MC146818State *s, uint8_t reg, uint8_t v)
{
    mc146818_ioport_write(s, RTC_PORT_INDEX, reg);
    mc146818_ioport_write(s, RTC_PORT_DATA, v);
}

static unsigned bcd(uint8_t v)
{
    return (v >> 4) * 10 + (v & 0xf);
}

/* Read the date in BCD, 24-hour form, as Linux does, into seconds since the epoch. */
static int64_t rtc_read_date(MC146818State *s)
{
    struct tm tm = { 0 };

    tm.tm_sec = (int)bcd(rtc_get(s, 0x00));
    tm.tm_min = (int)bcd(rtc_get(s, 0x02));
    tm.tm_hour = (int)bcd(rtc_get(s, 0x04));
    tm.tm_mday = (int)bcd(rtc_get(s, 0x07));
    tm.tm_mon = (int)bcd(rtc_get(s, 0x08)) - 1;
    tm.tm_year = (int)(bcd(rtc_get(s, 0x32)) * 100 + bcd(rtc_get(s, 0x09))) - 1900;
    return (int64_t)timegm(&tm);
}

static void test_rtc_host_date(void)
{
    MC146818State *s = mc146818_new();
    int64_t before = (int64_t)time(NULL);
    int64_t got = rtc_read_date(s);
    int64_t after = (int64_t)time(NULL);

    /* Power-on: BCD, 24 hours; never an update in progress; time valid. */
    g_assert_cmphex(rtc_get(s, 0x0b), ==, 0x02);
    g_assert_cmphex(rtc_get(s, 0x0a) & 0x80, ==, 0);
    g_assert_cmphex(rtc_get(s, 0x0d), ==, 0x80);
    g_assert_cmphex(rtc_get(s, 0x0c), ==, 0);
    g_assert_cmpint(got, >=, before);
    g_assert_cmpint(got, <=, after);
    mc146818_free(s);
}

static void test_rtc_binary_12h(void)
{
    MC146818State *s = mc146818_new();
    time_t now = time(NULL);
    struct tm tm;

    rtc_set(s, 0x0b, 0x04);                         /* binary, 12-hour */
    uint8_t hour = rtc_get(s, 0x04);
    uint8_t year = rtc_get(s, 0x09);
    gmtime_r(&now, &tm);
    unsigned want = tm.tm_hour % 12 ? (unsigned)tm.tm_hour % 12 : 12;
    /* Unless the hour (or year) just turned between the two reads. */
    if (!(tm.tm_min == 0 && tm.tm_sec == 0)) {
        g_assert_cmpuint(hour & 0x7f, ==, want);
        g_assert_cmpuint(!!(hour & 0x80), ==, tm.tm_hour >= 12);
        g_assert_cmpuint(year, ==, (unsigned)(tm.tm_year + 1900) % 100);
    }
    mc146818_free(s);
}

static void test_rtc_guest_sets_date(void)
{
    MC146818State *s = mc146818_new();

    /* Under SET, as a guest's hwclock does: 2031-02-03 04:05:06 UTC. */
    rtc_set(s, 0x0b, 0x82);
    rtc_set(s, 0x00, 0x06);
    rtc_set(s, 0x02, 0x05);
    rtc_set(s, 0x04, 0x04);
    rtc_set(s, 0x07, 0x03);
    rtc_set(s, 0x08, 0x02);
    rtc_set(s, 0x09, 0x31);
    rtc_set(s, 0x32, 0x20);
    rtc_set(s, 0x0b, 0x02);
    int64_t set = 1927857906;                      /* 2031-02-03 04:05:06 UTC */
    int64_t got = rtc_read_date(s);
    g_assert_cmpint(got, >=, set);
    g_assert_cmpint(got, <=, set + 2);

    /* One register at a time, without SET: the year moves alone. */
    rtc_set(s, 0x09, 0x32);
    got = rtc_read_date(s);
    g_assert_cmpint(got, >=, set + 365 * 86400);
    g_assert_cmpint(got, <=, set + 365 * 86400 + 2);
    mc146818_free(s);
}

static void test_rtc_cmos_ram(void)
{
    MC146818State *s = mc146818_new();

    rtc_set(s, 0x40, 0xa5);
    rtc_set(s, 0x7f, 0x5a);
    g_assert_cmphex(rtc_get(s, 0x40), ==, 0xa5);
    g_assert_cmphex(rtc_get(s, 0x7f), ==, 0x5a);
    /* Bit 7 of the index masks NMIs; it does not select another byte. */
    mc146818_ioport_write(s, RTC_PORT_INDEX, 0x80 | 0x40);
    g_assert_cmphex(mc146818_ioport_read(s, RTC_PORT_DATA), ==, 0xa5);
    /* C and D are read-only. */
    rtc_set(s, 0x0d, 0x00);
    g_assert_cmphex(rtc_get(s, 0x0d), ==, 0x80);
    mc146818_free(s);
}

static void test_rtc_vmstate(void)
{
    MC146818State *a = mc146818_new(), *b = mc146818_new();
    GError *err = NULL;

    rtc_set(a, 0x09, 0x45);                         /* the year 2045: an offset */
    rtc_set(a, 0x50, 0x77);
    stub_vmstate_clear();
    mc146818_register_vmstate(a);
    const StubVMStateEntry *e = stub_vmstate_find("mc146818rtc", 0);
    g_assert_nonnull(e);
    g_autoptr(GByteArray) bytes = vms_stream_save(e->vmsd, e->opaque, &err);
    g_assert_no_error(err);

    stub_vmstate_clear();
    mc146818_register_vmstate(b);
    e = stub_vmstate_find("mc146818rtc", 0);
    g_assert_true(vms_stream_load(bytes->data, bytes->len, e->vmsd, b, e->vmsd->version_id,
                                  NULL, &err));
    g_assert_no_error(err);
    g_assert_cmphex(rtc_get(b, 0x09), ==, 0x45);
    g_assert_cmphex(rtc_get(b, 0x50), ==, 0x77);
    g_assert_cmpint(mc146818_offset(b), ==, mc146818_offset(a));

    /* A stream whose index register is out of range is refused. */
    bytes->data[RTC_CMOS_SIZE] = 0x80;
    g_assert_false(vms_stream_load(bytes->data, bytes->len, e->vmsd, b, e->vmsd->version_id,
                                   NULL, &err));
    g_assert_nonnull(strstr(err->message, "index"));
    g_clear_error(&err);
    mc146818_free(a);
    mc146818_free(b);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/timer/mc146818/host-date", test_rtc_host_date);
    g_test_add_func("/timer/mc146818/binary-12h", test_rtc_binary_12h);
    g_test_add_func("/timer/mc146818/guest-sets-date", test_rtc_guest_sets_date);
    g_test_add_func("/timer/mc146818/cmos-ram", test_rtc_cmos_ram);
    g_test_add_func("/timer/mc146818/vmstate", test_rtc_vmstate);
    return g_test_run();
}
