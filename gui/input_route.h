/* Where the front-ends' input goes: to the USB keyboard and tablet while
 * the guest uses them, else to the PS/2 keyboard and mouse of the i8042.
 *
 * A guest may bind both keyboards (Linux does); sending every key to both
 * would type it twice.  A guest that knows no USB (a boot sector with the
 * firmware's USB support off, a kernel before its xHCI driver loads) must
 * still type.  So each key goes to the USB keyboard while it is active
 * (usb_kbd_active(): the guest configured it and the controller runs),
 * else to the PS/2 keyboard; the release of a key goes where its press
 * went, so no key stays down when the guest switches in between.  Pointer
 * input likewise: absolute positions go to the tablet while it is active,
 * else they become relative motion of the PS/2 mouse; buttons held on the
 * device the pointer leaves are released there.  Keys the PS/2 keyboard
 * has no room for (a guest that reads it slowly) wait here, in order, and
 * go as the guest reads: typing fast into a slow guest loses none.
 *
 * Everything here runs on the I/O thread with the device lock held. */
#ifndef BURROW_GUI_INPUT_ROUTE_H
#define BURROW_GUI_INPUT_ROUTE_H

#include <stdbool.h>
#include <stdint.h>

#include "gui/keymap.h"

struct i8042;
struct usb_kbd;
struct usb_tablet;

#define INPUT_ROUTE_KEYS (KEY_PAUSE + 1)
/* PS/2 key events held back while the keyboard's 16-byte buffer is full. */
#define INPUT_ROUTE_PS2_WAIT 256

/* What went where, for the control socket's status and tests. */
struct input_route_counts {
    uint64_t ps2_keys, usb_keys;            /* key events (press or release) */
    uint64_t ps2_pointer, usb_pointer;      /* pointer events */
};

struct input_route {
    struct i8042 *kbc;
    struct usb_kbd *kbd;                    /* NULL: no USB keyboard */
    struct usb_tablet *tablet;              /* NULL: no tablet */
    uint8_t held_ps2[(INPUT_ROUTE_KEYS + 7) / 8];
    uint8_t held_usb[(INPUT_ROUTE_KEYS + 7) / 8];
    unsigned ps2_buttons, usb_buttons;      /* UI_BTN_* held on each */
    /* Keys for the PS/2 keyboard that a guest reading it slowly has no
     * room for yet: put in order as it reads (i8042_set_kbd_drained), so
     * a viewer typing fast loses none to the keyboard's overrun. */
    struct { keymap_key key; bool down; } ps2_wait[INPUT_ROUTE_PS2_WAIT];
    unsigned ps2_wait_head, ps2_wait_count;
    bool have_pos;                          /* the last absolute position: */
    int last_x, last_y;                     /* relative motion from it */
    int last_w, last_h;                     /* on a screen of this size */
    struct input_route_counts counts;
};

/* kbd and tablet may be NULL (a machine without USB). */
void input_route_init(struct input_route *r, struct i8042 *kbc, struct usb_kbd *kbd,
                      struct usb_tablet *tablet);

/* Whether keys, and pointer positions, go to the USB devices now. */
bool input_route_kbd_usb(const struct input_route *r);
bool input_route_pointer_usb(const struct input_route *r);

/* Whether the keyboard in use has taken every key sent so far: the PS/2
 * one once no key waits for room in its buffer, the USB one once the
 * guest took every queued report.  Who types a list of keys waits for
 * this between keys, as the USB keyboard's queue keeps only the newest
 * state when it is full. */
bool input_route_kbd_idle(const struct input_route *r);

/* A key pressed or released (auto-repeat: pressed again). */
void input_route_key(struct input_route *r, keymap_key key, bool down);
/* Relative motion and the UI_BTN_* buttons held (gui/ui.h's pointer op):
 * always the PS/2 mouse, which is what a front-end sends it for. */
void input_route_pointer(struct input_route *r, int dx, int dy, int dz, unsigned buttons);
/* The pointer at pixel (x, y) of a width x height screen, wheel dz (> 0
 * towards the user) and buttons (gui/ui.h's pointer_abs op). */
void input_route_pointer_abs(struct input_route *r, int x, int y, int width, int height, int dz,
                             unsigned buttons);

#endif
