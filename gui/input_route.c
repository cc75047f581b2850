/* Input to the USB HID devices or the PS/2 ones, whichever the guest uses. */
#include "gui/input_route.h"

#include <string.h>

#include "devices/i8042.h"
#include "devices/usb/hid.h"
#include "gui/ui.h"

static bool bit_get(const uint8_t *map, keymap_key key)
{
    return (map[key / 8] >> (key % 8)) & 1;
}

static void bit_set(uint8_t *map, keymap_key key, bool on)
{
    if (on)
        map[key / 8] |= (uint8_t)(1u << (key % 8));
    else
        map[key / 8] &= (uint8_t)~(1u << (key % 8));
}

static void ps2_drained(void *opaque);

void input_route_init(struct input_route *r, struct i8042 *kbc, struct usb_kbd *kbd,
                      struct usb_tablet *tablet)
{
    memset(r, 0, sizeof(*r));
    r->kbc = kbc;
    r->kbd = kbd;
    r->tablet = tablet;
    if (kbc)
        i8042_set_kbd_drained(kbc, ps2_drained, r);
}

bool input_route_kbd_usb(const struct input_route *r)
{
    return r->kbd && usb_kbd_active(r->kbd);
}

bool input_route_pointer_usb(const struct input_route *r)
{
    return r->tablet && usb_tablet_active(r->tablet);
}

bool input_route_kbd_idle(const struct input_route *r)
{
    if (!input_route_kbd_usb(r))
        return r->ps2_wait_count == 0;
    return usb_kbd_queued(r->kbd) == 0;
}

/* Puts waiting PS/2 keys, in order, while the keyboard has room. */
static void ps2_flush(struct input_route *r)
{
    while (r->ps2_wait_count) {
        uint8_t seq[KEYMAP_MAX_SEQ];
        unsigned i = r->ps2_wait_head;
        size_t n = keymap_key_set2(r->ps2_wait[i].key, r->ps2_wait[i].down, seq);
        if (n && !i8042_kbd_has_room(r->kbc, n))
            return;
        if (n)
            i8042_kbd_put(r->kbc, seq, n);
        r->ps2_wait_head = (i + 1) % INPUT_ROUTE_PS2_WAIT;
        r->ps2_wait_count--;
    }
}

static void ps2_drained(void *opaque)
{
    ps2_flush(opaque);
}

static void key_ps2(struct input_route *r, keymap_key key, bool down)
{
    r->counts.ps2_keys++;
    if (!r->kbc)
        return;
    if (r->ps2_wait_count == INPUT_ROUTE_PS2_WAIT) {
        /* The guest reads nothing at all (keyboard off, or stuck): from
         * here on its keyboard overruns, as a real one would. */
        uint8_t seq[KEYMAP_MAX_SEQ];
        size_t n = keymap_key_set2(key, down, seq);
        if (n)
            i8042_kbd_put(r->kbc, seq, n);
        return;
    }
    unsigned tail = (r->ps2_wait_head + r->ps2_wait_count) % INPUT_ROUTE_PS2_WAIT;
    r->ps2_wait[tail].key = key;
    r->ps2_wait[tail].down = down;
    r->ps2_wait_count++;
    ps2_flush(r);
}

static void key_usb(struct input_route *r, keymap_key key, bool down)
{
    r->counts.usb_keys++;
    usb_kbd_key(r->kbd, keymap_key_hid(key), down);
}

void input_route_key(struct input_route *r, keymap_key key, bool down)
{
    if (key == 0 || key >= INPUT_ROUTE_KEYS)
        return;
    bool on_usb = bit_get(r->held_usb, key), on_ps2 = bit_get(r->held_ps2, key);
    if (!down) {
        /* The release goes where the press went. */
        bit_set(r->held_usb, key, false);
        bit_set(r->held_ps2, key, false);
        if (on_usb)
            key_usb(r, key, false);
        else if (on_ps2 || !input_route_kbd_usb(r) || !keymap_key_hid(key))
            key_ps2(r, key, false);
        return;
    }
    /* Auto-repeat stays on the device the key went down on. */
    bool usb = on_usb || (!on_ps2 && input_route_kbd_usb(r) && keymap_key_hid(key));
    if (usb) {
        bit_set(r->held_usb, key, true);
        key_usb(r, key, true);
    } else {
        bit_set(r->held_ps2, key, true);
        key_ps2(r, key, true);
    }
}

/* Buttons still held on the device the pointer leaves are let go there. */
static void leave_ps2(struct input_route *r)
{
    if (r->ps2_buttons && r->kbc)
        i8042_mouse_move(r->kbc, 0, 0, 0, 0);
    r->ps2_buttons = 0;
}

static void leave_usb(struct input_route *r)
{
    if (r->usb_buttons && r->tablet)
        usb_tablet_buttons(r->tablet, 0);
    r->usb_buttons = 0;
}

static void pointer_ps2(struct input_route *r, int dx, int dy, int dz, unsigned buttons)
{
    leave_usb(r);
    r->counts.ps2_pointer++;
    r->ps2_buttons = buttons;
    if (r->kbc)
        i8042_mouse_move(r->kbc, dx, dy, dz, buttons);
}

void input_route_pointer(struct input_route *r, int dx, int dy, int dz, unsigned buttons)
{
    pointer_ps2(r, dx, dy, dz, buttons);
}

void input_route_pointer_abs(struct input_route *r, int x, int y, int width, int height, int dz,
                             unsigned buttons)
{
    int dx = r->have_pos ? x - r->last_x : 0, dy = r->have_pos ? y - r->last_y : 0;
    r->have_pos = true;
    r->last_x = x;
    r->last_y = y;
    r->last_w = width;
    r->last_h = height;
    if (!input_route_pointer_usb(r)) {
        if (dx || dy || dz || buttons != r->ps2_buttons)
            pointer_ps2(r, dx, dy, dz, buttons);
        return;
    }
    leave_ps2(r);
    r->counts.usb_pointer++;
    unsigned b = buttons & (UI_BTN_LEFT | UI_BTN_RIGHT | UI_BTN_MIDDLE);
    /* The position first, so a click lands where the pointer is. */
    usb_tablet_move(r->tablet, x, y, width, height);
    usb_tablet_buttons(r->tablet, b);
    r->usb_buttons = b;
    /* The tablet's wheel counts away from the user. */
    if (dz)
        usb_tablet_wheel(r->tablet, -dz);
}
