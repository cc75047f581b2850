/* ACPI PM1a event/control, PM timer and GPE0 blocks (ACPI 6.x, 4.8). */
#include "devices/acpi_pm.h"

#include <stdlib.h>

#include "devices/evloop.h"
#include "devices/util.h"

/* Enable bits the guest may set. */
#define PM1_EN_BITS  (ACPI_PM1_TMR | ACPI_PM1_GBL | ACPI_PM1_PWRBTN | \
                      ACPI_PM1_SLPBTN | ACPI_PM1_RTC)
#define PM1_CNT_RW   (ACPI_PM1_CNT_BM_RLD | ACPI_PM1_CNT_SLP_TYP_MASK)

struct acpi_pm {
    struct platform *plat;
    uint16_t pm1_sts, pm1_en, pm1_cnt;
    uint8_t gpe_sts[2], gpe_en[2];
    uint64_t tmr_base_ns;     /* the timer counts from here */
    uint64_t tmr_epoch;       /* bit-23 toggles seen so far */
    int tmr_timer;            /* evloop timer id while TMR_EN, else -1 */
    bool sci;
};

static uint64_t pm_ticks(const struct acpi_pm *pm)
{
    uint64_t ns = evloop_now_ns() - pm->tmr_base_ns;
    return ns / 1000000000ULL * ACPI_PM_TIMER_HZ +
           ns % 1000000000ULL * ACPI_PM_TIMER_HZ / 1000000000ULL;
}

static void update_sci(struct acpi_pm *pm)
{
    bool level = (pm->pm1_sts & pm->pm1_en) != 0 ||
                 (pm->gpe_sts[0] & pm->gpe_en[0]) != 0 ||
                 (pm->gpe_sts[1] & pm->gpe_en[1]) != 0;
    pm->sci = level;
    platform_set_irq(pm->plat, ACPI_PM_SCI_GSI, level);
}

/* TMR_STS is set whenever bit 23 of the counter changes. */
static void check_timer_carry(struct acpi_pm *pm)
{
    uint64_t epoch = pm_ticks(pm) >> 23;
    if (epoch != pm->tmr_epoch) {
        pm->tmr_epoch = epoch;
        pm->pm1_sts |= ACPI_PM1_TMR;
    }
}

static void tmr_arm(struct acpi_pm *pm);

static void tmr_fire(void *opaque)
{
    struct acpi_pm *pm = opaque;
    pm->tmr_timer = -1;
    check_timer_carry(pm);
    update_sci(pm);
    tmr_arm(pm);
}

/* While TMR_EN is set, wake up at the next bit-23 toggle. */
static void tmr_arm(struct acpi_pm *pm)
{
    if (!pm->plat->loop)
        return;
    if (pm->tmr_timer >= 0) {
        evloop_del_timer(pm->plat->loop, pm->tmr_timer);
        pm->tmr_timer = -1;
    }
    if (!(pm->pm1_en & ACPI_PM1_TMR))
        return;
    uint64_t next = (pm->tmr_epoch + 1) << 23;
    uint64_t now = pm_ticks(pm);
    uint64_t left = next > now ? next - now : 0;
    uint64_t ns = left * 1000000000ULL / ACPI_PM_TIMER_HZ + 1000;
    pm->tmr_timer = evloop_add_timer(pm->plat->loop, ns, tmr_fire, pm);
}

static void sleep_request(struct acpi_pm *pm)
{
    unsigned typ = (pm->pm1_cnt & ACPI_PM1_CNT_SLP_TYP_MASK) >> ACPI_PM1_CNT_SLP_TYP_SHIFT;
    if (typ == ACPI_PM_SLP_TYP_S5) {
        log_info("acpi: guest entered S5, powering off");
        platform_request(pm->plat, PLATFORM_POWEROFF, 0);
    } else {
        log_guest_error("acpi: sleep type %u not supported", typ);
    }
}

/* One byte of the register file at offset off; tmr is the counter value
 * latched for the whole access. */
static uint8_t reg_read8(struct acpi_pm *pm, unsigned off, uint32_t tmr)
{
    switch (off) {
    case 0: case 1: return (uint8_t)(pm->pm1_sts >> (8 * off));
    case 2: case 3: return (uint8_t)(pm->pm1_en >> (8 * (off - 2)));
    case 4: case 5: return (uint8_t)(pm->pm1_cnt >> (8 * (off - 4)));
    case 8: case 9: case 10: case 11:
        return (uint8_t)(tmr >> (8 * (off - 8)));
    case 0x20: case 0x21: return pm->gpe_sts[off - 0x20];
    case 0x22: case 0x23: return pm->gpe_en[off - 0x22];
    default: return 0;
    }
}

/* Returns true when SLP_EN was written as 1. */
static bool reg_write8(struct acpi_pm *pm, unsigned off, uint8_t v)
{
    unsigned sh;
    switch (off) {
    case 0: case 1:
        sh = 8 * off;
        pm->pm1_sts &= (uint16_t)~((unsigned)v << sh);   /* write 1 to clear */
        return false;
    case 2: case 3:
        sh = 8 * (off - 2);
        pm->pm1_en = (uint16_t)((pm->pm1_en & ~(0xffu << sh)) |
                                (((unsigned)v << sh) & PM1_EN_BITS));
        return false;
    case 4: case 5:
        sh = 8 * (off - 4);
        pm->pm1_cnt = (uint16_t)((pm->pm1_cnt & ~(PM1_CNT_RW & (0xffu << sh))) |
                                 (((unsigned)v << sh) & PM1_CNT_RW));
        return (((unsigned)v << sh) & ACPI_PM1_CNT_SLP_EN) != 0;
    case 8: case 9: case 10: case 11:
        return false;                   /* read-only; reported by the caller */
    case 0x20: case 0x21:
        pm->gpe_sts[off - 0x20] &= (uint8_t)~v;
        return false;
    case 0x22: case 0x23:
        pm->gpe_en[off - 0x22] = v;
        return false;
    default:
        log_guest_error("acpi: write to unused PM register 0x%x", ACPI_PM_BASE + off);
        return false;
    }
}

static uint64_t acpi_pm_read(void *opaque, uint64_t offset, unsigned size)
{
    struct acpi_pm *pm = opaque;
    if (size > 4 || offset + size > ACPI_PM_LEN)
        return 0;
    uint32_t tmr = (uint32_t)(pm_ticks(pm) & 0xffffff);
    if (offset < 2) {
        check_timer_carry(pm);
        update_sci(pm);
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint64_t)reg_read8(pm, (unsigned)offset + i, tmr) << (8 * i);
    return v;
}

static void acpi_pm_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct acpi_pm *pm = opaque;
    if (size > 4 || offset + size > ACPI_PM_LEN) {
        log_guest_error("acpi: bad PM access at 0x%llx size %u",
                        (unsigned long long)(ACPI_PM_BASE + offset), size);
        return;
    }
    if (offset < ACPI_PM_TMR_OFF + ACPI_PM_TMR_LEN && offset + size > ACPI_PM_TMR_OFF)
        log_guest_error("acpi: write to read-only PM timer");
    uint16_t old_en = pm->pm1_en;
    bool slp = false;
    for (unsigned i = 0; i < size; i++)
        slp |= reg_write8(pm, (unsigned)offset + i, (uint8_t)(value >> (8 * i)));
    if ((old_en ^ pm->pm1_en) & ACPI_PM1_TMR)
        tmr_arm(pm);
    update_sci(pm);
    if (slp)
        sleep_request(pm);
}

static const struct io_ops acpi_pm_ops = {
    .read = acpi_pm_read,
    .write = acpi_pm_write,
};

void acpi_pm_reset(struct acpi_pm *pm)
{
    pm->pm1_sts = 0;
    pm->pm1_en = 0;
    pm->pm1_cnt = ACPI_PM1_CNT_SCI_EN;
    pm->gpe_sts[0] = pm->gpe_sts[1] = 0;
    pm->gpe_en[0] = pm->gpe_en[1] = 0;
    pm->tmr_epoch = pm_ticks(pm) >> 23;
    tmr_arm(pm);
    update_sci(pm);
}

void acpi_pm_power_button(struct acpi_pm *pm)
{
    pm->pm1_sts |= ACPI_PM1_PWRBTN;
    update_sci(pm);
}

void acpi_pm_gpe_raise(struct acpi_pm *pm, unsigned bit)
{
    if (bit >= 16) {
        log_error("acpi: GPE %u out of range", bit);
        return;
    }
    pm->gpe_sts[bit / 8] |= (uint8_t)(1u << (bit % 8));
    update_sci(pm);
}

struct acpi_pm *acpi_pm_create(struct platform *p)
{
    struct acpi_pm *pm = calloc(1, sizeof(*pm));
    if (!pm)
        return NULL;
    pm->plat = p;
    pm->tmr_timer = -1;
    pm->tmr_base_ns = evloop_now_ns();
    if (io_bus_register(p->pio, ACPI_PM_BASE, ACPI_PM_LEN, &acpi_pm_ops, pm, "acpi-pm") < 0) {
        log_error("acpi: ports 0x%x-0x%x busy", ACPI_PM_BASE, ACPI_PM_BASE + ACPI_PM_LEN - 1);
        free(pm);
        return NULL;
    }
    acpi_pm_reset(pm);
    return pm;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
    if (!pm)
        return;
    if (pm->tmr_timer >= 0 && pm->plat->loop)
        evloop_del_timer(pm->plat->loop, pm->tmr_timer);
    io_bus_unregister(pm->plat->pio, ACPI_PM_BASE, pm);
    free(pm);
}
