/* The ACPI fixed hardware (devices/acpi_pm.c): PM1 event and control
 * blocks, the PM timer, GPE0, sleep requests, and the power button and
 * general-purpose events the machine raises.
 *
 * Input: the ops of fuzz_machine.h.  Window 0 = ports 0x600-0x623.
 * TARGET: arg 0-3 the power button, 4-7 a general-purpose event (the bit
 * number from the next byte). */
#include <stdlib.h>

#include "devices/acpi_pm.h"
#include "fuzz/fuzz_machine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct acpi_pm *pm;

static void target_op(struct fz *f, unsigned arg)
{
    if (arg < 4)
        acpi_pm_power_button(pm);
    else
        acpi_pm_gpe_raise(pm, fz_u8(f));
}

static void reset(struct fz *f)
{
    acpi_pm_reset(pm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz f;
    fz_init(&f);
    pm = acpi_pm_create(&f.h->plat);
    if (!pm)
        abort();
    f.hooks.target = target_op;
    f.hooks.reset = reset;
    fz_add_pio(&f, "pm", ACPI_PM_BASE, ACPI_PM_LEN);
    fz_run(&f, data, size);
    acpi_pm_destroy(pm);
    fz_fini(&f);
    return 0;
}
