/* SDL2 window front-end: the VM's screen in a desktop window.
 *
 * Title "NAME - Burrow [state]".  The picture scales to the window keeping
 * its aspect ratio (black bars fill the rest).  Keys go to the guest by
 * position (SDL scancodes, right for every host layout).
 *
 * Pointer: while the guest uses the USB tablet (sdl_window_set_absolute)
 * the pointer moves freely in and out of the window and its position, in
 * the guest's pixels however the window is scaled, goes to the guest as
 * is; the host's cursor is hidden over the window, since the guest draws
 * its own.  Otherwise the guest has a relative mouse only: the pointer is
 * captured by a click in the window or the host key (Right Ctrl), and
 * released by the host key; while captured the title says so.
 *
 * Keys: F11 or Right Ctrl+F toggles full screen.  Right Ctrl+Del sends
 * Ctrl+Alt+Del and Right Ctrl+F1..F12 sends Ctrl+Alt+F1..F12, which the
 * host's desktop would take for itself.  The host key itself never reaches
 * the guest.  Closing the window calls input->close (the machine presses
 * the ACPI power button); the window stays until the machine frees it.
 *
 * The window and its events live on a thread of their own (SDL is used from
 * that thread only); see gui/ui.h for how it meets the machine. */
#ifndef BURROW_GUI_SDL_H
#define BURROW_GUI_SDL_H

#include <stdbool.h>
#include <stddef.h>

struct display;
struct evloop;
struct ui_input_ops;
struct sdl_window;

/* Opens the window for display d.  name: the VM's name, shown in the
 * title.  Input is handed to input's callbacks on loop's thread with the
 * device lock held.  Call with the device lock held (or before the I/O
 * thread runs).  NULL with a message in err when there is no usable video
 * (no $DISPLAY or Wayland socket, say). */
struct sdl_window *sdl_window_new(struct display *d, struct evloop *loop, const char *name,
                                  const struct ui_input_ops *input, void *opaque,
                                  char *err, size_t errlen);
/* The state shown in the title ("running", "paused"...).  Any thread. */
void sdl_window_set_state(struct sdl_window *w, const char *state);
/* Whether the guest uses an absolute pointing device now: the window
 * sends positions and captures nothing (true), or captures the pointer
 * for relative motion (false, the start).  Any thread. */
void sdl_window_set_absolute(struct sdl_window *w, bool on);
/* Closes the window.  Device lock held. */
void sdl_window_free(struct sdl_window *w);

#endif
