/* ACPI fixed hardware registers (ACPI 6.x, 4.8): PM1a event and control
 * blocks, the PM timer and GPE0, at fixed ports described only by the FADT.
 * The SCI is GSI 9, level-triggered, active high. */
#ifndef BURROW_ACPI_PM_H
#define BURROW_ACPI_PM_H

#include <stdint.h>
#include <stdbool.h>

#include "devices/platform.h"

#define ACPI_PM_BASE          0x600
#define ACPI_PM_LEN           0x24
/* Offsets from ACPI_PM_BASE, and block lengths (for the FADT) */
#define ACPI_PM1_EVT_OFF      0x00
#define ACPI_PM1_EVT_LEN      4
#define ACPI_PM1_CNT_OFF      0x04
#define ACPI_PM1_CNT_LEN      2
#define ACPI_PM_TMR_OFF       0x08
#define ACPI_PM_TMR_LEN       4
#define ACPI_GPE0_OFF         0x20
#define ACPI_GPE0_LEN         4     /* 2 status bytes, then 2 enable bytes */

#define ACPI_PM_SCI_GSI       9
#define ACPI_PM_TIMER_HZ      3579545

/* PM1_STS / PM1_EN bits */
#define ACPI_PM1_TMR          (1u << 0)
#define ACPI_PM1_BM_STS       (1u << 4)
#define ACPI_PM1_GBL          (1u << 5)
#define ACPI_PM1_PWRBTN       (1u << 8)
#define ACPI_PM1_SLPBTN       (1u << 9)
#define ACPI_PM1_RTC          (1u << 10)
#define ACPI_PM1_WAK_STS      (1u << 15)
/* PM1_CNT bits */
#define ACPI_PM1_CNT_SCI_EN   (1u << 0)
#define ACPI_PM1_CNT_BM_RLD   (1u << 1)
#define ACPI_PM1_CNT_GBL_RLS  (1u << 2)
#define ACPI_PM1_CNT_SLP_TYP_SHIFT 10
#define ACPI_PM1_CNT_SLP_TYP_MASK  (7u << 10)
#define ACPI_PM1_CNT_SLP_EN   (1u << 13)

/* SLP_TYP value of S5 (soft off); the DSDT's \_S5 package declares it. */
#define ACPI_PM_SLP_TYP_S5    5

struct acpi_pm;

/* Registers ports ACPI_PM_BASE..+ACPI_PM_LEN on p->pio; NULL on failure. */
struct acpi_pm *acpi_pm_create(struct platform *p);
void acpi_pm_destroy(struct acpi_pm *pm);
/* Power-on state: everything clear except SCI_EN (ACPI mode is always on:
 * the FADT has no SMI command port). */
void acpi_pm_reset(struct acpi_pm *pm);
/* The user pressed the power button: PWRBTN_STS, SCI if PWRBTN_EN. */
void acpi_pm_power_button(struct acpi_pm *pm);
/* Sets general-purpose event status bit (0-15); SCI if enabled. */
void acpi_pm_gpe_raise(struct acpi_pm *pm, unsigned bit);

#endif
