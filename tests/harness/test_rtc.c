/* MC146818A RTC and CMOS RAM driven through ports 0x70/0x71 the way a BIOS
 * or OS driver does (Motorola MC146818A data sheet). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <cmocka.h>

#include "devices/rtc_cmos.h"
#include "devices/util.h"
#include "support/harness_platform.h"

#define IRQ RTC_IRQ_GSI

struct ctx {
    struct harness *h;
    struct rtc_cmos *rtc;
};

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));
    c->h = harness_new(1 * MiB);
    if (!c->h)
        return -1;
    c->rtc = rtc_cmos_create(&c->h->plat);
    if (!c->rtc)
        return -1;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    rtc_cmos_destroy(c->rtc);
    harness_free(c->h);
    free(c);
    return 0;
}

static uint8_t rd(struct harness *h, uint8_t idx)
{
    harness_pio_write(h, RTC_PORT_INDEX, 1, idx);
    return (uint8_t)harness_pio_read(h, RTC_PORT_DATA, 1);
}

static void wr(struct harness *h, uint8_t idx, uint8_t v)
{
    harness_pio_write(h, RTC_PORT_INDEX, 1, idx);
    harness_pio_write(h, RTC_PORT_DATA, 1, v);
}

static unsigned from_bcd(uint8_t b)
{
    assert_true((b >> 4) <= 9 && (b & 15) <= 9);
    return (b >> 4) * 10 + (b & 15);
}

static uint8_t to_bcd(unsigned v)
{
    return (uint8_t)(((v / 10) << 4) | (v % 10));
}

/* Reads the clock as a BIOS does (retrying across an update) and converts
 * it to seconds since 1970. */
static int64_t read_clock(struct harness *h, bool bcd, bool h24)
{
    uint8_t r[10], cent, again;
    do {
        for (unsigned i = 0; i < 10; i++)
            r[i] = rd(h, (uint8_t)i);
        cent = rd(h, RTC_CENTURY);
        again = rd(h, RTC_SECONDS);
    } while (again != r[0]);
    unsigned (*dec)(uint8_t) = from_bcd;   /* checks the digits */
    unsigned hour;
    struct tm tm = { 0 };
    if (bcd) {
        tm.tm_sec = (int)dec(r[0]);
        tm.tm_min = (int)dec(r[2]);
        hour = dec(r[4] & 0x7f);
        tm.tm_mday = (int)dec(r[7]);
        tm.tm_mon = (int)dec(r[8]) - 1;
        tm.tm_year = (int)(dec(cent) * 100 + dec(r[9])) - 1900;
    } else {
        tm.tm_sec = r[0];
        tm.tm_min = r[2];
        hour = r[4] & 0x7f;
        tm.tm_mday = r[7];
        tm.tm_mon = r[8] - 1;
        tm.tm_year = cent * 100 + r[9] - 1900;
    }
    if (!h24) {
        assert_true(hour >= 1 && hour <= 12);
        hour = hour % 12 + ((r[4] & 0x80) ? 12 : 0);
    } else {
        assert_int_equal(r[4] & 0x80, 0);
    }
    tm.tm_hour = (int)hour;
    int64_t t = (int64_t)timegm(&tm);
    /* day of week, 1 = Sunday */
    struct tm chk;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &chk);
    unsigned dow = bcd ? dec(r[6]) : r[6];
    assert_int_equal(dow, (unsigned)chk.tm_wday + 1);
    assert_true(tm.tm_sec < 60 && tm.tm_min < 60 && hour < 24);
    return t;
}

static void test_defaults_and_formats(void **state)
{
    struct ctx *c = *state;
    struct harness *h = c->h;
    assert_int_equal(rd(h, RTC_REG_A) & 0x7f, 0x26);
    assert_int_equal(rd(h, RTC_REG_B), RTC_B_24H);
    assert_int_equal(rd(h, RTC_REG_C), 0);
    assert_int_equal(rd(h, RTC_REG_D), RTC_D_VRT);

    /* BCD, 24 h: host UTC */
    int64_t t = read_clock(h, true, true);
    assert_true(llabs(t - (int64_t)time(NULL)) <= 2);

    /* binary, 24 h */
    wr(h, RTC_REG_B, RTC_B_24H | RTC_B_DM_BINARY);
    t = read_clock(h, false, true);
    assert_true(llabs(t - (int64_t)time(NULL)) <= 2);

    /* binary, 12 h with the PM bit */
    wr(h, RTC_REG_B, RTC_B_DM_BINARY);
    t = read_clock(h, false, false);
    assert_true(llabs(t - (int64_t)time(NULL)) <= 2);

    /* BCD, 12 h */
    wr(h, RTC_REG_B, 0);
    t = read_clock(h, true, false);
    assert_true(llabs(t - (int64_t)time(NULL)) <= 2);

    /* C and D are read-only */
    wr(h, RTC_REG_D, 0);
    wr(h, RTC_REG_C, 0xff);
    assert_int_equal(rd(h, RTC_REG_D), RTC_D_VRT);
    assert_int_equal(rd(h, RTC_REG_C) & 0x0f, 0);
    /* UIP is read-only too */
    wr(h, RTC_REG_A, 0xa6);
    assert_int_equal(rd(h, RTC_REG_A) & 0x7f, 0x26);
}

static void test_set_time(void **state)
{
    struct ctx *c = *state;
    struct harness *h = c->h;

    /* Linux's way: SET, write the fields, clear SET */
    wr(h, RTC_REG_B, RTC_B_24H | RTC_B_SET);
    wr(h, RTC_SECONDS, 0x06);
    wr(h, RTC_MINUTES, 0x05);
    wr(h, RTC_HOURS, 0x04);
    wr(h, RTC_DAY_OF_MONTH, 0x03);
    wr(h, RTC_MONTH, 0x02);
    wr(h, RTC_YEAR, 0x01);
    wr(h, RTC_CENTURY, 0x20);
    /* frozen while SET is held, and no update in progress */
    assert_int_equal(rd(h, RTC_SECONDS), 0x06);
    assert_int_equal(rd(h, RTC_REG_A) & RTC_A_UIP, 0);
    wr(h, RTC_REG_B, RTC_B_24H);

    struct tm tm = { .tm_sec = 6, .tm_min = 5, .tm_hour = 4, .tm_mday = 3, .tm_mon = 1,
                     .tm_year = 101 };
    int64_t want = (int64_t)timegm(&tm);
    int64_t t = read_clock(h, true, true);
    assert_true(t >= want && t <= want + 2);
    assert_true(llabs(rtc_cmos_get_offset(c->rtc) - (want - (int64_t)time(NULL))) <= 2);

    /* it keeps running from there */
    struct timespec d = { 1, 100 * 1000 * 1000 };
    nanosleep(&d, NULL);
    int64_t t2 = read_clock(h, true, true);
    assert_true(t2 >= t + 1 && t2 <= t + 3);

    /* an impossible date is refused, the clock stays */
    int64_t off = rtc_cmos_get_offset(c->rtc);
    wr(h, RTC_REG_B, RTC_B_24H | RTC_B_SET);
    wr(h, RTC_MONTH, 0x13);
    wr(h, RTC_REG_B, RTC_B_24H);
    assert_int_equal(rtc_cmos_get_offset(c->rtc), off);
    wr(h, RTC_REG_B, RTC_B_24H | RTC_B_SET);
    wr(h, RTC_SECONDS, 0x5a);                /* not BCD */
    wr(h, RTC_REG_B, RTC_B_24H);
    assert_int_equal(rtc_cmos_get_offset(c->rtc), off);

    /* a single field written while the clock runs (binary, 12 h, PM) */
    wr(h, RTC_REG_B, RTC_B_DM_BINARY);
    wr(h, RTC_YEAR, 30);
    wr(h, RTC_HOURS, 0x80 | 11);             /* 11 PM */
    assert_int_equal(rd(h, RTC_YEAR), 30);
    assert_int_equal(rd(h, RTC_HOURS), 0x80 | 11);
    wr(h, RTC_REG_B, RTC_B_DM_BINARY | RTC_B_24H);
    assert_int_equal(rd(h, RTC_HOURS), 23);
    assert_int_equal(rd(h, RTC_CENTURY), 20);
}

static void test_index_and_ram(void **state)
{
    struct ctx *c = *state;
    struct harness *h = c->h;
    /* bit 7 of the index masks NMI and is not part of the index */
    harness_pio_write(h, RTC_PORT_INDEX, 1, 0x80 | RTC_REG_D);
    assert_true(rtc_cmos_nmi_disabled(c->rtc));
    assert_int_equal(harness_pio_read(h, RTC_PORT_DATA, 1), RTC_D_VRT);
    harness_pio_write(h, RTC_PORT_INDEX, 1, 0x80 | 0x40);
    harness_pio_write(h, RTC_PORT_DATA, 1, 0x5a);
    harness_pio_write(h, RTC_PORT_INDEX, 1, 0x40);
    assert_false(rtc_cmos_nmi_disabled(c->rtc));
    assert_int_equal(harness_pio_read(h, RTC_PORT_DATA, 1), 0x5a);
    assert_int_equal(rtc_cmos_get(c->rtc, 0x40), 0x5a);
    /* the index register reads as 0xff */
    assert_int_equal(harness_pio_read(h, RTC_PORT_INDEX, 1), 0xff);

    for (unsigned i = 0x0e; i < 128; i++) {
        if (i == RTC_CENTURY)
            continue;
        wr(h, (uint8_t)i, (uint8_t)(i ^ 0xa5));
    }
    for (unsigned i = 0x0e; i < 128; i++) {
        if (i == RTC_CENTURY)
            continue;
        assert_int_equal(rd(h, (uint8_t)i), (uint8_t)(i ^ 0xa5));
    }
    /* a 16-bit write: index, then data */
    harness_pio_write(h, RTC_PORT_INDEX, 2, 0x7700 | 0x41);
    assert_int_equal(rd(h, 0x41), 0x77);
}

static void test_cmos_memory_fields(void **state)
{
    struct ctx *c = *state;
    struct harness *h = c->h;
    rtc_cmos_set_memory(c->rtc, 3 * GiB, 5 * GiB, 4);
    assert_int_equal(rd(h, CMOS_BASE_MEM_LO) | rd(h, CMOS_BASE_MEM_HI) << 8, 640);
    assert_int_equal(rd(h, CMOS_EXT_MEM_LO) | rd(h, CMOS_EXT_MEM_HI) << 8, 0xffff);
    assert_int_equal(rd(h, CMOS_EXT_MEM2_LO) | rd(h, CMOS_EXT_MEM2_HI) << 8, 0xffff);
    assert_int_equal(rd(h, CMOS_MEM_ABOVE_16M_LO) | rd(h, CMOS_MEM_ABOVE_16M_HI) << 8,
                     (3 * GiB - 16 * MiB) / (64 * KiB));
    assert_int_equal(rd(h, CMOS_MEM_ABOVE_4G_LO) | rd(h, CMOS_MEM_ABOVE_4G_MID) << 8 |
                     rd(h, CMOS_MEM_ABOVE_4G_HI) << 16, 5 * GiB / (64 * KiB));
    assert_int_equal(rd(h, CMOS_CPU_COUNT), 3);

    rtc_cmos_set_memory(c->rtc, 8 * MiB, 0, 1);
    assert_int_equal(rd(h, CMOS_EXT_MEM_LO) | rd(h, CMOS_EXT_MEM_HI) << 8, 7 * 1024);
    assert_int_equal(rd(h, CMOS_MEM_ABOVE_16M_LO) | rd(h, CMOS_MEM_ABOVE_16M_HI) << 8, 0);
    assert_int_equal(rd(h, CMOS_MEM_ABOVE_4G_LO), 0);
    assert_int_equal(rd(h, CMOS_CPU_COUNT), 0);

    rtc_cmos_set(c->rtc, 0x38, 0x21);
    assert_int_equal(rd(h, 0x38), 0x21);
}

static bool irq_high(void *opaque)
{
    struct harness *h = opaque;
    return h->irq_level[IRQ];
}

static void test_update_interrupt_and_c(void **state)
{
    struct ctx *c = *state;
    struct harness *h = c->h;
    rd(h, RTC_REG_C);
    wr(h, RTC_REG_B, RTC_B_24H | RTC_B_UIE);
    assert_true(harness_run_until(h, irq_high, h, 1500));
    assert_int_equal(h->irq_raises[IRQ], 1);
    /* UIE off: the line drops (IRQF needs flag and enable), UF stays */
    wr(h, RTC_REG_B, RTC_B_24H);
    assert_false(h->irq_level[IRQ]);
    uint8_t v = rd(h, RTC_REG_C);
    assert_true(v & RTC_C_UF);
    assert_false(h->irq_level[IRQ]);
    assert_int_equal(rd(h, RTC_REG_C) & (RTC_C_IRQF | RTC_C_PF | RTC_C_AF), 0);

    /* UF with UIE: IRQF set, reading C lowers the line */
    wr(h, RTC_REG_B, RTC_B_24H | RTC_B_UIE);
    assert_true(harness_run_until(h, irq_high, h, 1500));
    v = rd(h, RTC_REG_C);
    assert_int_equal(v & (RTC_C_IRQF | RTC_C_UF), RTC_C_IRQF | RTC_C_UF);
    assert_false(h->irq_level[IRQ]);

    /* SET clears UIE and stops updates */
    wr(h, RTC_REG_B, RTC_B_24H | RTC_B_UIE | RTC_B_SET);
    assert_int_equal(rd(h, RTC_REG_B) & RTC_B_UIE, 0);
    wr(h, RTC_REG_B, RTC_B_24H);

    /* alarm with every field "don't care": next second */
    rd(h, RTC_REG_C);
    wr(h, RTC_SECONDS_ALARM, 0xc0);
    wr(h, RTC_MINUTES_ALARM, 0xff);
    wr(h, RTC_HOURS_ALARM, 0xc0);
    wr(h, RTC_REG_B, RTC_B_24H | RTC_B_AIE);
    assert_true(harness_run_until(h, irq_high, h, 1500));
    v = rd(h, RTC_REG_C);
    assert_int_equal(v & (RTC_C_IRQF | RTC_C_AF), RTC_C_IRQF | RTC_C_AF);

    /* an alarm that cannot match soon does not fire */
    wr(h, RTC_REG_B, RTC_B_24H);
    int64_t now = read_clock(h, true, true);
    struct tm tm;
    time_t tt = (time_t)(now + 7200);
    gmtime_r(&tt, &tm);
    wr(h, RTC_HOURS_ALARM, to_bcd((unsigned)tm.tm_hour));
    wr(h, RTC_REG_B, RTC_B_24H | RTC_B_AIE);
    rd(h, RTC_REG_C);
    assert_false(harness_run_until(h, irq_high, h, 1200));

    /* reset clears the enables and the line */
    rtc_cmos_reset(c->rtc);
    assert_int_equal(rd(h, RTC_REG_B) & (RTC_B_PIE | RTC_B_AIE | RTC_B_UIE), 0);
    assert_false(h->irq_level[IRQ]);
}

struct periodic_count {
    struct harness *h;
    unsigned n;
};

/* The guest's interrupt handler: acknowledge by reading C. */
static bool count_periodic(void *opaque)
{
    struct periodic_count *pc = opaque;
    if (pc->h->irq_level[IRQ]) {
        uint8_t v = rd(pc->h, RTC_REG_C);
        if (v & RTC_C_PF)
            pc->n++;
    }
    return false;
}

static void test_periodic(void **state)
{
    struct ctx *c = *state;
    struct harness *h = c->h;
    /* PIE off: no interrupt, but PF shows up in C */
    wr(h, RTC_REG_A, 0x2a);                     /* 64 Hz */
    rd(h, RTC_REG_C);
    struct timespec d = { 0, 50 * 1000 * 1000 };
    nanosleep(&d, NULL);
    assert_true(rd(h, RTC_REG_C) & RTC_C_PF);
    assert_int_equal(h->irq_raises[IRQ], 0);

    wr(h, RTC_REG_B, RTC_B_24H | RTC_B_PIE);
    struct periodic_count pc = { h, 0 };
    harness_run_until(h, count_periodic, &pc, 500);
    print_message("periodic: %u interrupts in 500 ms at 64 Hz\n", pc.n);
    assert_true(pc.n >= 10 && pc.n <= 40);

    /* rate 0 stops it */
    wr(h, RTC_REG_A, 0x20);
    rd(h, RTC_REG_C);
    unsigned before = h->irq_raises[IRQ];
    pc.n = 0;
    harness_run_until(h, count_periodic, &pc, 200);
    assert_int_equal(pc.n, 0);
    assert_int_equal(h->irq_raises[IRQ], before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults_and_formats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_and_ram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmos_memory_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_interrupt_and_c, setup, teardown),
        cmocka_unit_test_setup_teardown(test_periodic, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
