/* Keyboard mapping for the display front-ends: X11 keysyms (what VNC
 * clients send), SDL scancodes (USB HID usage IDs) and key names (the
 * control socket's send-keys) to PC scan code set 2, the set the PS/2
 * keyboard model takes (devices/i8042.h).
 *
 * A key is named by its physical position on a US 104/105-key keyboard.
 * Keysyms are mapped to the key that produces them on a US layout, and a
 * shifted keysym goes to its unshifted key ('A' and 'a', '!' and '1' are the
 * same key): clients send Shift as a key of its own, and the guest applies
 * it.  A guest configured with another layout therefore sees the US key
 * positions for keysyms; SDL scancodes are positional and right for every
 * layout. */
#ifndef BURROW_GUI_KEYMAP_H
#define BURROW_GUI_KEYMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A key: its set-2 make code in the low byte, KEY_E0 for the extended keys
 * that carry an E0 prefix, or one of the two keys with sequences of their
 * own.  0 is no key. */
typedef uint16_t keymap_key;
#define KEY_E0    0x100u
#define KEY_PRINT 0x200u   /* Print Screen: E0 12 E0 7C / E0 F0 7C E0 F0 12 */
#define KEY_PAUSE 0x300u   /* Pause: E1 14 77 E1 F0 14 F0 77, no break code */

/* The longest sequence one key event produces (Pause). */
#define KEYMAP_MAX_SEQ 8

/* The key a keysym is on (US layout), or 0. */
keymap_key keymap_keysym_to_key(uint32_t keysym);
/* The key with this SDL scancode (USB HID keyboard usage ID), or 0. */
keymap_key keymap_hid_to_key(unsigned usage);
/* The key called `name` ("a", "ret", "f1", "ctrl_r"...; case ignored), or 0. */
keymap_key keymap_key_by_name(const char *name);

/* Writes the set-2 bytes for pressing (down) or releasing the key into out
 * (at least KEYMAP_MAX_SEQ bytes).  Returns the byte count: 0 for no key
 * and for releasing Pause, which has no break code. */
size_t keymap_key_set2(keymap_key key, bool down, uint8_t *out);

/* For send-keys: a key name or a combination joined with '-' ("ctrl-alt-del",
 * "shift-a").  make receives the presses in order, brk the releases in
 * reverse order.  *make_len and *brk_len give the buffers' sizes on entry
 * and hold the byte counts on return.  Returns 0, or -1 for an unknown or
 * empty name, or buffers that are too small. */
int keymap_name_to_set2(const char *name, uint8_t *make, size_t *make_len,
                        uint8_t *brk, size_t *brk_len);

#endif
