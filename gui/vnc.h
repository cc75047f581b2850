/* VNC server front-end (RFB through libvncserver).
 *
 * Several viewers at once, all shared; desktop-size changes reach viewers
 * that support the NewFBSize/ExtendedDesktopSize pseudo-encodings; optional
 * VNC password authentication.  Keyboard: keysyms to keys for the guest's
 * keyboard layout, US unless set (gui/keymap.h).  Pointer: RFB sends
 * absolute positions, which go to the machine as such (ui_input_ops's
 * pointer_abs): the USB tablet reports them exactly, scaled to the guest's
 * screen; while the guest has no tablet in use they become relative PS/2
 * mouse motion, the difference between successive positions, and the
 * guest's acceleration and screen edges make its cursor drift from the
 * viewer's.
 *
 * The server runs on a thread of its own (see gui/ui.h): a viewer on a slow
 * link blocks only that thread, never the I/O thread or the vCPUs. */
#ifndef BURROW_GUI_VNC_H
#define BURROW_GUI_VNC_H

#include <stddef.h>

struct display;
struct evloop;
struct ui_input_ops;
struct vnc_server;

/* Listens on host:port (host NULL or "": 127.0.0.1; a name, an IPv4 or an
 * IPv6 address, brackets allowed) for viewers of display d.
 * password_file: NULL for no authentication, else a file whose first line is
 * the password (VNC authentication uses its first 8 characters).  Input is
 * handed to input's callbacks on loop's thread with the device lock held.
 * Call with the device lock held (or before the I/O thread runs).  Returns
 * NULL with a message in err when the address cannot be used or the
 * password file cannot be read. */
struct vnc_server *vnc_server_new(struct display *d, struct evloop *loop, const char *host,
                                  int port, const char *password_file,
                                  const struct ui_input_ops *input, void *opaque,
                                  char *err, size_t errlen);
/* With host NULL and port 0 nothing listens: viewers come only through
 * vnc_server_add_client(). */

/* Disconnects every viewer and stops listening.  Device lock held. */
void vnc_server_free(struct vnc_server *v);

/* The keyboard layout the guest uses ("de", "fr"...; see keymap_layouts()),
 * so that the characters viewers type are sent on the keys that produce
 * them there.  Default en-us.  Takes effect for the next key event of every
 * viewer.  Returns -1 with the known names in err for an unknown layout.
 * Any thread. */
int vnc_server_set_layout(struct vnc_server *v, const char *name, char *err, size_t errlen);

/* Takes fd, a connected stream socket (say, one end of a socketpair whose
 * other end a viewer holds), as a viewer of its own, with the same
 * authentication as viewers that connect.  The server owns fd on success;
 * on failure (-1, a message in err) the caller keeps it.  Any thread. */
int vnc_server_add_client(struct vnc_server *v, int fd, char *err, size_t errlen);

/* Viewers connected now (thread-safe). */
unsigned vnc_server_clients(const struct vnc_server *v);

#endif
