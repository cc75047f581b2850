/* The MC146818A RTC and CMOS RAM (devices/rtc_cmos.c): index and data
 * ports, setting the clock in BCD and binary, 12- and 24-hour modes, the
 * divider, periodic, alarm and update interrupts, and the CMOS bytes the
 * firmware reads.
 *
 * Input: the ops of fuzz_machine.h.  Window 0 = ports 0x70-0x71.  LOOP ops
 * run the interrupt timers that are due.  TARGET: arg 0-3 the host moves
 * the clock (a signed 32-bit offset in seconds), 4-7 nothing. */
#include <stdlib.h>

#include "devices/rtc_cmos.h"
#include "fuzz/fuzz_machine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct rtc_cmos *rtc;

static void target_op(struct fz *f, unsigned arg)
{
    if (arg < 4)
        rtc_cmos_set_offset(rtc, (int32_t)fz_le(f, 4));
}

static void reset(struct fz *f)
{
    rtc_cmos_reset(rtc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz f;
    fz_init(&f);
    rtc = rtc_cmos_create(&f.h->plat);
    if (!rtc)
        abort();
    rtc_cmos_set_memory(rtc, 3ull << 30, 1ull << 30, 2);
    f.hooks.target = target_op;
    f.hooks.reset = reset;
    fz_add_pio(&f, "rtc", RTC_PORT_INDEX, 2);
    fz_run(&f, data, size);
    rtc_cmos_destroy(rtc);
    fz_fini(&f);
    return 0;
}
