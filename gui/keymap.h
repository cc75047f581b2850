/* Keyboard mapping for the display front-ends: X11 keysyms (what VNC
 * clients send), SDL scancodes (USB HID usage IDs) and key names (the
 * control socket's send-keys) to keys, and keys to PC scan code set 2, the
 * set the PS/2 keyboard model takes (devices/i8042.h), or to the USB HID
 * usage the USB keyboard takes (devices/usb/hid.h).
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

/* The key's USB HID Keyboard/Keypad page usage (what a USB keyboard
 * reports for it: 0x04 'a', 0x28 Enter, 0xe0 left Ctrl...), or 0. */
unsigned keymap_key_hid(keymap_key key);

/* Writes the set-2 bytes for pressing (down) or releasing the key into out
 * (at least KEYMAP_MAX_SEQ bytes).  Returns the byte count: 0 for no key
 * and for releasing Pause, which has no break code. */
size_t keymap_key_set2(keymap_key key, bool down, uint8_t *out);

/* For send-keys: the keys of a name or a combination joined with '-'
 * ("ctrl-alt-del", "shift-a"), in the order they are pressed, into keys
 * (cap entries; KEYMAP_MAX_COMBO is enough).  Returns their count, or -1
 * for an unknown or empty name or too many keys.  They are released in
 * reverse order. */
#define KEYMAP_MAX_COMBO 8
int keymap_name_to_keys(const char *name, keymap_key *keys, size_t cap);

/* The same as set-2 bytes: make receives the presses in order, brk the
 * releases in reverse order.  *make_len and *brk_len give the buffers' sizes on entry
 * and hold the byte counts on return.  Returns 0, or -1 for an unknown or
 * empty name, or buffers that are too small. */
int keymap_name_to_set2(const char *name, uint8_t *make, size_t *make_len,
                        uint8_t *brk, size_t *brk_len);

/* ---- Keyboard layouts for keysym input ----
 *
 * A VNC viewer sends keysyms (characters), not key positions.  For a guest
 * configured with a layout other than US, each character has to be typed
 * on the key, and with the modifiers, that produce it on the guest's
 * layout: German 'z' is on the US 'y' position, '@' is AltGr+Q.
 *
 * "en-us", the default, keeps the positional behaviour described at the
 * top: a keysym goes to its US key and the guest applies whatever
 * modifiers the viewer holds.
 *
 * The other layouts look up the key and the modifiers (Shift, AltGr) each
 * character needs on the guest layout.  For printable keysyms exactly those
 * modifiers are sent: Shift and AltGr the viewer holds but the character
 * does not want are released just before the key's make code and pressed
 * again right after it, and those it wants but the viewer does not hold are
 * pressed around the make code.  A US viewer sends Shift+'@', which becomes
 * AltGr+Q for a German guest with Shift lifted for that moment.  Letters
 * with an upper and a lower case on one key are the exception: for them
 * Shift stays as the viewer holds it, so that Caps Lock in the guest keeps
 * working and Ctrl/Alt shortcuts see the Shift state the user typed.
 * Non-printable keysyms (function keys, the keypad, modifiers) are
 * positional on every layout.  Ctrl, Alt and the logo keys are never
 * touched.
 *
 * A release goes to the key the press went to, whatever the layout and
 * modifiers say by then (viewers may send the release with another keysym
 * when Shift changed in between). */

struct keymap_layout;

/* The known layout names, NULL-terminated ("en-us" first). */
const char *const *keymap_layouts(void);
/* The layout called name (case ignored; NULL or "" is en-us), or NULL with
 * "unknown keyboard layout 'xx' (known: en-us, en-gb, ...)" in err. */
const struct keymap_layout *keymap_layout_find(const char *name, char *err, size_t errlen);
const char *keymap_layout_name(const struct keymap_layout *l);

#define KEYMAP_MOD_SHIFT 0x1u
#define KEYMAP_MOD_ALTGR 0x2u

/* Where a keysym is on a layout (NULL: en-us): the key, the modifiers the
 * layout needs for it (KEYMAP_MOD_*) and which of those the caller must
 * enforce (force); a modifier not in force is left as the viewer holds it.
 * Returns false, key 0, when the layout has no key for the keysym. */
struct keymap_sym {
    keymap_key key;
    uint8_t mods;
    uint8_t force;
};
bool keymap_layout_lookup(const struct keymap_layout *l, uint32_t keysym,
                          struct keymap_sym *out);

/* One viewer's keyboard: its layout and the keys it holds down. */
#define KEYMAP_MAX_HELD 32
struct keymap_state {
    const struct keymap_layout *layout;   /* NULL: en-us */
    unsigned nheld;
    struct {
        uint32_t keysym;
        keymap_key key;
    } held[KEYMAP_MAX_HELD];
};

/* One key press or release for keymap_key_set2(). */
struct keymap_step {
    keymap_key key;
    bool down;
};
/* The most steps keymap_state_key() returns: two Shifts lifted, AltGr
 * pressed, the key, AltGr released, two Shifts pressed again. */
#define KEYMAP_MAX_STEPS 8

/* l NULL for en-us. */
void keymap_state_init(struct keymap_state *s, const struct keymap_layout *l);
/* Takes effect for presses from now on; held keys are released as pressed. */
void keymap_state_set_layout(struct keymap_state *s, const struct keymap_layout *l);
/* A viewer's key event: writes the presses and releases to send, in order,
 * into steps (KEYMAP_MAX_STEPS entries) and returns their count; 0 when the
 * layout has no key for the keysym. */
size_t keymap_state_key(struct keymap_state *s, uint32_t keysym, bool down,
                        struct keymap_step *steps);
/* Releases for every key still held (a viewer that went away), at most cap
 * of them; forgets them all.  Returns the count. */
size_t keymap_state_release_all(struct keymap_state *s, struct keymap_step *steps, size_t cap);

#endif
