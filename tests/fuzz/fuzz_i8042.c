/* The i8042 keyboard controller with its PS/2 keyboard and mouse
 * (devices/i8042.c): controller commands, the command byte, keyboard and
 * mouse commands with their arguments, and the user's keys and mouse
 * motion arriving in between.
 *
 * Input: the ops of fuzz_machine.h.  Windows: 0 = the data port 0x60, 1 =
 * the status/command port 0x64.  TARGET: arg 0-3 a key event (a length
 * byte, then that many scan code set 2 bytes, at most 16), arg 4-5 mouse
 * motion (dx, dy, dz as signed bytes scaled by arg, then a buttons byte),
 * arg 6 a machine reset of the controller, arg 7 nothing. */
#include <stdlib.h>

#include "devices/i8042.h"
#include "fuzz/fuzz_machine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct i8042 *kbd;

static void target_op(struct fz *f, unsigned arg)
{
    if (arg < 4) {
        uint8_t codes[16];
        size_t n = fz_bytes(f, codes, fz_u8(f) % (sizeof(codes) + 1));
        i8042_kbd_put(kbd, codes, n);
    } else if (arg < 6) {
        int scale = arg == 4 ? 1 : 64;
        int dx = (int8_t)fz_u8(f) * scale, dy = (int8_t)fz_u8(f) * scale, dz = (int8_t)fz_u8(f);
        i8042_mouse_move(kbd, dx, dy, dz, fz_u8(f));
    } else if (arg == 6) {
        i8042_reset(kbd);
    }
}

static void reset(struct fz *f)
{
    i8042_reset(kbd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz f;
    fz_init(&f);
    kbd = i8042_create(&f.h->plat);
    if (!kbd)
        abort();
    f.hooks.target = target_op;
    f.hooks.reset = reset;
    fz_add_pio(&f, "data", I8042_DATA_PORT, 1);
    fz_add_pio(&f, "command", I8042_CMD_PORT, 1);
    fz_run(&f, data, size);
    i8042_destroy(kbd);
    fz_fini(&f);
    return 0;
}
