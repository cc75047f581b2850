/* What the display front-ends (VNC server, SDL window) share: the input
 * operations the machine provides, a queue that carries input from a
 * front-end's own thread to the I/O thread, and a shadow copy of the
 * display surface that a front-end thread can read without the device lock.
 *
 * Threads: each front-end runs its protocol or window on a thread of its
 * own, so a slow VNC client or a busy window system never holds up the I/O
 * thread or the vCPUs.  That thread never takes the device lock: pixels come
 * to it through a ui_shadow filled by display listener callbacks (I/O thread,
 * lock held), and input goes back through a ui_input_queue whose eventfd the
 * I/O thread serves. */
#ifndef BURROW_GUI_UI_H
#define BURROW_GUI_UI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/display.h"
#include "gui/keymap.h"

struct evloop;

/* What a front-end delivers to the machine.  Called on the I/O thread with
 * the device lock held, like every device callback, so the machine can
 * hand them straight to the input devices (see gui/input_route.h). */
struct ui_input_ops {
    /* A key (gui/keymap.h) pressed or released; pressed again while held
     * is auto-repeat. */
    void (*key)(void *opaque, keymap_key key, bool down);
    /* Relative motion (dx > 0 right, dy > 0 down, dz > 0 wheel towards the
     * user) and the UI_BTN_* buttons held now. */
    void (*pointer)(void *opaque, int dx, int dy, int dz, unsigned buttons);
    /* The pointer at pixel (x, y) of the width x height screen the
     * front-end shows (positions outside it are clamped), the wheel as for
     * pointer, and the buttons held now. */
    void (*pointer_abs)(void *opaque, int x, int y, int width, int height, int dz,
                        unsigned buttons);
    /* The user closed the window: the machine presses the power button. */
    void (*close)(void *opaque);
};

/* Buttons for ui_input_ops.pointer: the same bits as I8042_BTN_*. */
#define UI_BTN_LEFT   0x01
#define UI_BTN_RIGHT  0x02
#define UI_BTN_MIDDLE 0x04
#define UI_BTN_SIDE   0x08
#define UI_BTN_EXTRA  0x10

/* ---- input queue: any thread -> I/O thread ---- */
struct ui_input_queue;

/* Registers an eventfd on loop; events are handed to ops on the I/O thread.
 * Call with the device lock held (or before the I/O thread runs).  NULL on
 * failure. */
struct ui_input_queue *ui_input_queue_new(struct evloop *loop, const struct ui_input_ops *ops,
                                          void *opaque);
/* Drops what is still queued.  Device lock held. */
void ui_input_queue_free(struct ui_input_queue *q);
/* From any thread. */
void ui_input_key(struct ui_input_queue *q, keymap_key key, bool down);
void ui_input_pointer(struct ui_input_queue *q, int dx, int dy, int dz, unsigned buttons);
void ui_input_pointer_abs(struct ui_input_queue *q, int x, int y, int width, int height, int dz,
                          unsigned buttons);
void ui_input_close(struct ui_input_queue *q);

/* ---- shadow surface: I/O thread -> front-end thread ---- */
#define UI_SHADOW_RECTS 16

struct ui_shadow {
    pthread_mutex_t lock;
    uint32_t *pixels;          /* width * height, packed (stride width * 4) */
    unsigned width, height;
    bool resized;              /* size changed since the consumer last looked */
    unsigned ndirty;           /* changed rectangles since then */
    struct display_rect dirty[UI_SHADOW_RECTS];
    void (*notify)(void *opaque);   /* called (lock not held) after changes */
    void *notify_opaque;
    struct display *display;
};

/* Attaches the shadow to d as a display listener; the first resize arrives
 * at once.  Device lock held.  Returns the listener id, or -1. */
int ui_shadow_attach(struct ui_shadow *sh, struct display *d,
                     void (*notify)(void *opaque), void *opaque);
/* Detaches (device lock held) and frees the pixels. */
void ui_shadow_detach(struct ui_shadow *sh, struct display *d, int id);

#endif
