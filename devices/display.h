/* The display: one framebuffer surface that a graphics device (the source)
 * renders into and that front-ends (VNC, a window, screenshots: the
 * listeners) read.
 *
 * Pixels are 32-bit XRGB8888 in host byte order: a pixel is the uint32_t
 * 0x00RRGGBB (the top byte is unused and written as 0).  Row y starts at
 * (uint8_t *)pixels + y * stride.
 *
 * Flow:
 *   - the source sets the size with display_resize() (mode changes); every
 *     listener's resize() is called with the new surface, and the whole
 *     surface counts as changed;
 *   - a periodic refresh (DISPLAY_REFRESH_HZ, an event-loop timer that only
 *     runs while at least one listener exists, so a display nobody watches
 *     costs nothing) calls the source's refresh(), which re-renders what
 *     changed in the guest and reports it with display_dirty();
 *   - the refresh then calls every listener's update() once per accumulated
 *     dirty rectangle, and forgets them.  No dirty rectangle: no update()
 *     call, so an idle guest produces no work for the front-ends.
 *   - display_refresh() does the same at once (screenshots, tests).
 *
 * Threading: everything here runs on the I/O thread with the machine's
 * device lock held (event-loop callbacks have it; a front-end calling in
 * from another thread must take it).  Listener callbacks run under that
 * lock too: they copy or encode what they need and return; they must not
 * call display_resize() or add/remove listeners from inside a callback.
 *
 * Pointers to the surface stay valid until the next resize() callback. */
#ifndef BURROW_DISPLAY_H
#define BURROW_DISPLAY_H

#include <stdint.h>
#include <stdbool.h>

struct evloop;
struct display;

#define DISPLAY_REFRESH_HZ  30
#define DISPLAY_MAX_WIDTH   8192
#define DISPLAY_MAX_HEIGHT  8192
#define DISPLAY_MAX_RECTS   32     /* beyond this, dirty areas merge */

struct display_surface {
    unsigned width, height;   /* pixels; may be 0x0 before any mode is set */
    unsigned stride;          /* bytes per row (width * 4) */
    uint32_t *pixels;         /* owned by the display, XRGB8888 */
};

struct display_rect {
    unsigned x, y, w, h;
};

/* A front-end.  Both callbacks are optional (NULL: not interested). */
struct display_listener_ops {
    /* The surface was (re)allocated: new size, new pixel pointer, contents
     * as the source will render them on the next refresh (cleared to black
     * until then).  Also called once from display_add_listener() so a new
     * listener starts from the current picture. */
    void (*resize)(void *opaque, const struct display_surface *s);
    /* Pixels in [x, x+w) x [y, y+h) changed; the rectangle is clipped to
     * the surface and never empty. */
    void (*update)(void *opaque, unsigned x, unsigned y, unsigned w, unsigned h);
};

/* Text-mode contents, for tests and text front-ends.  cells[row * cols +
 * col] is the character code in bits 0-7 and the VGA attribute byte in bits
 * 8-15; the array belongs to the source and is valid until the next
 * refresh. */
struct display_text {
    unsigned cols, rows;
    const uint16_t *cells;
    unsigned cursor_col, cursor_row;
    bool cursor_visible;
};

/* The device that renders. */
struct display_source_ops {
    /* Render what changed since the last call into display_surface(d) and
     * report it with display_dirty(); may call display_resize(). */
    void (*refresh)(void *opaque, struct display *d);
    /* Optional: fill *t and return true when a text mode is showing. */
    bool (*get_text)(void *opaque, struct display_text *t);
};

/* loop: the I/O thread's event loop for the periodic refresh (NULL: no
 * timer; refreshes happen only through display_refresh()).  Returns NULL on
 * allocation failure. */
struct display *display_new(struct evloop *loop);
void display_free(struct display *d);

/* ---- source side ---- */
void display_set_source(struct display *d, const struct display_source_ops *ops, void *opaque);
/* Sets the surface size (clamped to 1..DISPLAY_MAX_*), clears it to black,
 * marks it all dirty and tells the listeners.  Same size: only marks it all
 * dirty.  Returns 0, or -1 if the memory could not be had (the old surface
 * stays). */
int display_resize(struct display *d, unsigned width, unsigned height);
/* Adds a changed rectangle (clipped to the surface; empty ones ignored).
 * Rectangles that overlap or touch merge; past DISPLAY_MAX_RECTS all merge
 * into their bounding box. */
void display_dirty(struct display *d, unsigned x, unsigned y, unsigned w, unsigned h);

/* ---- front-end side ---- */
const struct display_surface *display_surface(const struct display *d);
/* Returns a listener id (>= 0), or -1.  Starts the periodic refresh. */
int display_add_listener(struct display *d, const struct display_listener_ops *ops, void *opaque);
/* Stops the periodic refresh when the last listener goes. */
void display_remove_listener(struct display *d, int id);
/* Refreshes now: the source renders, then listeners get the updates.
 * After it, display_surface() holds the current picture. */
void display_refresh(struct display *d);
/* The text cells when a text mode is showing; false otherwise. */
bool display_get_text(struct display *d, struct display_text *t);

/* Pending dirty rectangles (tests, and front-ends that poll instead of
 * listening); n is set to their count. */
const struct display_rect *display_pending(const struct display *d, unsigned *n);

#endif
