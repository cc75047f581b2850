/* ACPI fixed hardware (PM1 event/control, PM timer, GPE0) driven through
 * its ports the way an OS's ACPI driver does (ACPI 6.x, 4.8). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <cmocka.h>

#include "devices/acpi_pm.h"
#include "devices/evloop.h"
#include "devices/util.h"
#include "support/harness_platform.h"

#define PM1_STS  (ACPI_PM_BASE + 0)
#define PM1_EN   (ACPI_PM_BASE + 2)
#define PM1_CNT  (ACPI_PM_BASE + ACPI_PM1_CNT_OFF)
#define PM_TMR   (ACPI_PM_BASE + ACPI_PM_TMR_OFF)
#define GPE0_STS (ACPI_PM_BASE + ACPI_GPE0_OFF)
#define GPE0_EN  (ACPI_PM_BASE + ACPI_GPE0_OFF + 2)
#define SCI      ACPI_PM_SCI_GSI

struct ctx {
    struct harness *h;
    struct acpi_pm *pm;
};

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));
    c->h = harness_new(1 * MiB);
    if (!c->h)
        return -1;
    c->pm = acpi_pm_create(&c->h->plat);
    if (!c->pm)
        return -1;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    acpi_pm_destroy(c->pm);
    harness_free(c->h);
    free(c);
    return 0;
}

static void test_reset_state(void **state)
{
    struct ctx *c = *state;
    assert_int_equal(harness_pio_read(c->h, PM1_CNT, 2), ACPI_PM1_CNT_SCI_EN);
    assert_int_equal(harness_pio_read(c->h, PM1_EN, 2), 0);
    assert_int_equal(harness_pio_read(c->h, GPE0_STS, 4), 0);
    assert_false(c->h->irq_level[SCI]);
    /* nothing is claimed between the blocks' ends and the GPE block */
    assert_int_equal(harness_pio_read(c->h, ACPI_PM_BASE + 0x10, 1), 0);
}

static void test_power_button(void **state)
{
    struct ctx *c = *state;
    struct harness *h = c->h;

    /* not enabled: status only */
    acpi_pm_power_button(c->pm);
    assert_true(harness_pio_read(h, PM1_STS, 2) & ACPI_PM1_PWRBTN);
    assert_false(h->irq_level[SCI]);
    assert_int_equal(h->irq_raises[SCI], 0);

    /* enabling with the status pending raises the SCI */
    harness_pio_write(h, PM1_EN, 2, ACPI_PM1_PWRBTN);
    assert_int_equal(harness_pio_read(h, PM1_EN, 2), ACPI_PM1_PWRBTN);
    assert_true(h->irq_level[SCI]);
    assert_int_equal(h->irq_raises[SCI], 1);

    /* writing 0 or other bits does not clear it; writing 1 does */
    harness_pio_write(h, PM1_STS, 2, 0);
    harness_pio_write(h, PM1_STS, 2, ACPI_PM1_WAK_STS);
    assert_true(harness_pio_read(h, PM1_STS, 2) & ACPI_PM1_PWRBTN);
    assert_true(h->irq_level[SCI]);
    harness_pio_write(h, PM1_STS, 2, ACPI_PM1_PWRBTN);
    assert_false(harness_pio_read(h, PM1_STS, 2) & ACPI_PM1_PWRBTN);
    assert_false(h->irq_level[SCI]);

    /* enabled: a press raises it at once; byte-wide W1C on the high byte */
    acpi_pm_power_button(c->pm);
    assert_true(h->irq_level[SCI]);
    assert_int_equal(h->irq_raises[SCI], 2);
    harness_pio_write(h, PM1_STS + 1, 1, ACPI_PM1_PWRBTN >> 8);
    assert_false(h->irq_level[SCI]);

    /* disabled again: a press does not interrupt */
    harness_pio_write(h, PM1_EN, 2, 0);
    acpi_pm_power_button(c->pm);
    assert_false(h->irq_level[SCI]);
    assert_int_equal(h->irq_raises[SCI], 2);

    /* writes of all ones to the status never set bits */
    harness_pio_write(h, PM1_STS, 2, 0xffff);
    assert_int_equal(harness_pio_read(h, PM1_STS, 2) & ~ACPI_PM1_TMR, 0);
}

static void test_gpe(void **state)
{
    struct ctx *c = *state;
    struct harness *h = c->h;
    acpi_pm_gpe_raise(c->pm, 11);
    assert_int_equal(harness_pio_read(h, GPE0_STS, 2), 1u << 11);
    assert_false(h->irq_level[SCI]);
    harness_pio_write(h, GPE0_EN + 1, 1, 1u << 3);
    assert_true(h->irq_level[SCI]);
    harness_pio_write(h, GPE0_STS + 1, 1, 1u << 3);
    assert_int_equal(harness_pio_read(h, GPE0_STS, 2), 0);
    assert_false(h->irq_level[SCI]);
    acpi_pm_gpe_raise(c->pm, 99);        /* out of range: ignored */
    assert_int_equal(harness_pio_read(h, GPE0_STS, 2), 0);
}

static void test_sleep_s5(void **state)
{
    struct ctx *c = *state;
    struct harness *h = c->h;
    uint16_t typ5 = ACPI_PM_SLP_TYP_S5 << ACPI_PM1_CNT_SLP_TYP_SHIFT;

    /* the OS writes SLP_TYP first, then SLP_TYP | SLP_EN */
    harness_pio_write(h, PM1_CNT, 2, typ5 | ACPI_PM1_CNT_SCI_EN);
    assert_int_equal(h->poweroffs, 0);
    assert_int_equal(harness_pio_read(h, PM1_CNT, 2), typ5 | ACPI_PM1_CNT_SCI_EN);

    /* another sleep type is refused */
    uint16_t typ1 = 1 << ACPI_PM1_CNT_SLP_TYP_SHIFT;
    harness_pio_write(h, PM1_CNT, 2, typ1 | ACPI_PM1_CNT_SLP_EN | ACPI_PM1_CNT_SCI_EN);
    assert_int_equal(h->poweroffs, 0);
    /* SLP_EN reads as zero; SCI_EN stays set whatever is written */
    assert_int_equal(harness_pio_read(h, PM1_CNT, 2), typ1 | ACPI_PM1_CNT_SCI_EN);

    harness_pio_write(h, PM1_CNT, 2, typ5 | ACPI_PM1_CNT_SLP_EN);
    assert_int_equal(h->poweroffs, 1);
    assert_int_equal(h->resets, 0);
    assert_int_equal(harness_pio_read(h, PM1_CNT, 2) & ACPI_PM1_CNT_SLP_EN, 0);
    assert_true(harness_pio_read(h, PM1_CNT, 2) & ACPI_PM1_CNT_SCI_EN);

    /* the same by bytes: SLP_EN in the high byte */
    harness_pio_write(h, PM1_CNT + 1, 1, (typ5 | ACPI_PM1_CNT_SLP_EN) >> 8);
    assert_int_equal(h->poweroffs, 2);

    /* odd accesses: reported, ignored */
    harness_pio_write(h, ACPI_PM_BASE + ACPI_PM_LEN - 1, 4, 0xffffffff);
    harness_pio_write(h, PM_TMR, 4, 0);
    harness_pio_write(h, ACPI_PM_BASE + 0x10, 1, 0xff);
    assert_int_equal(h->poweroffs, 2);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void test_pm_timer(void **state)
{
    struct ctx *c = *state;
    struct harness *h = c->h;
    uint64_t t0 = now_ns();
    uint32_t a = (uint32_t)harness_pio_read(h, PM_TMR, 4);
    struct timespec d = { 0, 200 * 1000 * 1000 };
    nanosleep(&d, NULL);
    uint32_t b = (uint32_t)harness_pio_read(h, PM_TMR, 4);
    uint64_t t1 = now_ns();
    assert_int_equal(a >> 24, 0);
    assert_int_equal(b >> 24, 0);
    uint32_t ticks = (b - a) & 0xffffff;
    double rate = ticks / ((t1 - t0) / 1e9);
    print_message("PM timer: %u ticks in %.1f ms = %.0f Hz\n", ticks, (t1 - t0) / 1e6, rate);
    /* loosely: the reads bracket the sleep, so the rate is at most 3.58 MHz
     * and, on a busy host, somewhat less */
    assert_true(rate <= ACPI_PM_TIMER_HZ * 1.01);
    assert_true(rate >= ACPI_PM_TIMER_HZ * 0.8);

    /* byte reads agree with the 32-bit value */
    uint32_t w = (uint32_t)harness_pio_read(h, PM_TMR, 4);
    uint32_t hi = (uint32_t)harness_pio_read(h, PM_TMR + 2, 1);
    assert_true(hi == ((w >> 16) & 0xff) || hi == (((w >> 16) + 1) & 0xff));
    assert_int_equal(harness_pio_read(h, PM_TMR + 3, 1), 0);
}

static bool sci_high(void *opaque)
{
    struct harness *h = opaque;
    return h->irq_level[SCI];
}

/* TMR_STS at each change of bit 23 (every 2^23 ticks, ~2.34 s), SCI with
 * TMR_EN. */
static void test_timer_carry(void **state)
{
    struct ctx *c = *state;
    struct harness *h = c->h;
    harness_pio_write(h, PM1_STS, 2, ACPI_PM1_TMR);
    harness_pio_write(h, PM1_EN, 2, ACPI_PM1_TMR);
    uint32_t before = (uint32_t)harness_pio_read(h, PM_TMR, 4);
    assert_true(harness_run_until(h, sci_high, h, 3000));
    uint32_t after = (uint32_t)harness_pio_read(h, PM_TMR, 4);
    assert_int_not_equal(before >> 23, after >> 23);
    assert_true(harness_pio_read(h, PM1_STS, 2) & ACPI_PM1_TMR);
    harness_pio_write(h, PM1_STS, 2, ACPI_PM1_TMR);
    assert_false(h->irq_level[SCI]);
    harness_pio_write(h, PM1_EN, 2, 0);
    acpi_pm_reset(c->pm);
    assert_int_equal(harness_pio_read(h, PM1_EN, 2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reset_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_button, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gpe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sleep_s5, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pm_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_carry, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
