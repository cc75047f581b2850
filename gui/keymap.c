/* Keysyms, USB HID usages and key names to PC scan code set 2 and USB HID
 * usages.
 *
 * Set-2 codes are those of the "Keyboard Scan Code Specification"
 * (Microsoft, rev. 1.3a, annex "USB usage to PS/2 scan codes"), which lists
 * both the set-2 make code and the USB usage of every key, so one table
 * serves SDL (whose scancodes are the HID usages), the key names, and the
 * USB keyboard (a key's usage, whichever way it was named).
 * Keysym values are those of X11's keysymdef.h, the RFB protocol's. */
#include "gui/keymap.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "devices/util.h"

struct key_info {
    keymap_key key;
    uint8_t hid;            /* USB HID keyboard usage ID; 0: none */
    const char *name;       /* send-keys name */
    const char *alias;      /* a second accepted name, or NULL */
};

static const struct key_info keys[] = {
    /* Letters */
    { 0x1c, 0x04, "a", NULL }, { 0x32, 0x05, "b", NULL }, { 0x21, 0x06, "c", NULL },
    { 0x23, 0x07, "d", NULL }, { 0x24, 0x08, "e", NULL }, { 0x2b, 0x09, "f", NULL },
    { 0x34, 0x0a, "g", NULL }, { 0x33, 0x0b, "h", NULL }, { 0x43, 0x0c, "i", NULL },
    { 0x3b, 0x0d, "j", NULL }, { 0x42, 0x0e, "k", NULL }, { 0x4b, 0x0f, "l", NULL },
    { 0x3a, 0x10, "m", NULL }, { 0x31, 0x11, "n", NULL }, { 0x44, 0x12, "o", NULL },
    { 0x4d, 0x13, "p", NULL }, { 0x15, 0x14, "q", NULL }, { 0x2d, 0x15, "r", NULL },
    { 0x1b, 0x16, "s", NULL }, { 0x2c, 0x17, "t", NULL }, { 0x3c, 0x18, "u", NULL },
    { 0x2a, 0x19, "v", NULL }, { 0x1d, 0x1a, "w", NULL }, { 0x22, 0x1b, "x", NULL },
    { 0x35, 0x1c, "y", NULL }, { 0x1a, 0x1d, "z", NULL },
    /* Digit row */
    { 0x16, 0x1e, "1", NULL }, { 0x1e, 0x1f, "2", NULL }, { 0x26, 0x20, "3", NULL },
    { 0x25, 0x21, "4", NULL }, { 0x2e, 0x22, "5", NULL }, { 0x36, 0x23, "6", NULL },
    { 0x3d, 0x24, "7", NULL }, { 0x3e, 0x25, "8", NULL }, { 0x46, 0x26, "9", NULL },
    { 0x45, 0x27, "0", NULL },
    /* Editing and punctuation */
    { 0x5a, 0x28, "ret", "enter" },
    { 0x76, 0x29, "esc", "escape" },
    { 0x66, 0x2a, "backspace", NULL },
    { 0x0d, 0x2b, "tab", NULL },
    { 0x29, 0x2c, "spc", "space" },
    { 0x4e, 0x2d, "minus", NULL },
    { 0x55, 0x2e, "equal", NULL },
    { 0x54, 0x2f, "bracket_left", NULL },
    { 0x5b, 0x30, "bracket_right", NULL },
    { 0x5d, 0x31, "backslash", NULL },
    { 0x4c, 0x33, "semicolon", NULL },
    { 0x52, 0x34, "apostrophe", NULL },
    { 0x0e, 0x35, "grave_accent", NULL },
    { 0x41, 0x36, "comma", NULL },
    { 0x49, 0x37, "dot", NULL },
    { 0x4a, 0x38, "slash", NULL },
    { 0x58, 0x39, "caps_lock", NULL },
    /* Function keys */
    { 0x05, 0x3a, "f1", NULL }, { 0x06, 0x3b, "f2", NULL }, { 0x04, 0x3c, "f3", NULL },
    { 0x0c, 0x3d, "f4", NULL }, { 0x03, 0x3e, "f5", NULL }, { 0x0b, 0x3f, "f6", NULL },
    { 0x83, 0x40, "f7", NULL }, { 0x0a, 0x41, "f8", NULL }, { 0x01, 0x42, "f9", NULL },
    { 0x09, 0x43, "f10", NULL }, { 0x78, 0x44, "f11", NULL }, { 0x07, 0x45, "f12", NULL },
    { KEY_PRINT, 0x46, "print", "sysrq" },
    { 0x7e, 0x47, "scroll_lock", NULL },
    { KEY_PAUSE, 0x48, "pause", NULL },
    /* Navigation block */
    { KEY_E0 | 0x70, 0x49, "insert", "ins" },
    { KEY_E0 | 0x6c, 0x4a, "home", NULL },
    { KEY_E0 | 0x7d, 0x4b, "pgup", NULL },
    { KEY_E0 | 0x71, 0x4c, "delete", "del" },
    { KEY_E0 | 0x69, 0x4d, "end", NULL },
    { KEY_E0 | 0x7a, 0x4e, "pgdn", NULL },
    { KEY_E0 | 0x74, 0x4f, "right", NULL },
    { KEY_E0 | 0x6b, 0x50, "left", NULL },
    { KEY_E0 | 0x72, 0x51, "down", NULL },
    { KEY_E0 | 0x75, 0x52, "up", NULL },
    /* Keypad */
    { 0x77, 0x53, "num_lock", NULL },
    { KEY_E0 | 0x4a, 0x54, "kp_divide", NULL },
    { 0x7c, 0x55, "kp_multiply", NULL },
    { 0x7b, 0x56, "kp_subtract", NULL },
    { 0x79, 0x57, "kp_add", NULL },
    { KEY_E0 | 0x5a, 0x58, "kp_enter", NULL },
    { 0x69, 0x59, "kp_1", NULL }, { 0x72, 0x5a, "kp_2", NULL }, { 0x7a, 0x5b, "kp_3", NULL },
    { 0x6b, 0x5c, "kp_4", NULL }, { 0x73, 0x5d, "kp_5", NULL }, { 0x74, 0x5e, "kp_6", NULL },
    { 0x6c, 0x5f, "kp_7", NULL }, { 0x75, 0x60, "kp_8", NULL }, { 0x7d, 0x61, "kp_9", NULL },
    { 0x70, 0x62, "kp_0", NULL },
    { 0x71, 0x63, "kp_decimal", NULL },
    /* The ISO key between left Shift and Z ("<>" on European layouts). */
    { 0x61, 0x64, "less", NULL },
    { KEY_E0 | 0x2f, 0x65, "menu", "compose" },
    /* Japanese and Korean keys */
    { 0x51, 0x87, "ro", NULL },
    { 0x13, 0x88, "hiragana", NULL },
    { 0x6a, 0x89, "yen", NULL },
    { 0x64, 0x8a, "henkan", NULL },
    { 0x67, 0x8b, "muhenkan", NULL },
    /* Modifiers */
    { 0x14, 0xe0, "ctrl", "ctrl_l" },
    { 0x12, 0xe1, "shift", "shift_l" },
    { 0x11, 0xe2, "alt", "alt_l" },
    { KEY_E0 | 0x1f, 0xe3, "meta_l", "super" },
    { KEY_E0 | 0x14, 0xe4, "ctrl_r", NULL },
    { 0x59, 0xe5, "shift_r", NULL },
    { KEY_E0 | 0x11, 0xe6, "alt_r", "altgr" },
    { KEY_E0 | 0x27, 0xe7, "meta_r", NULL },
};

/* USB usage 0x32 (the ISO "#~" key) produces the same set-2 code as
 * backslash; it is not a key of its own for names. */
#define HID_NON_US_HASH 0x32

/* Printable ASCII keysyms (0x20..0x7e, identical to Latin-1 and ASCII) to
 * their key on a US layout; shifted characters give their base key. */
static keymap_key ascii_key(unsigned c)
{
    static const char unshifted[] = "`1234567890-=[]\\;',./";
    static const char shifted[]   = "~!@#$%^&*()_+{}|:\"<>?";
    static const char *const names[] = {
        "grave_accent", "1", "2", "3", "4", "5", "6", "7", "8", "9", "0",
        "minus", "equal", "bracket_left", "bracket_right", "backslash",
        "semicolon", "apostrophe", "comma", "dot", "slash",
    };
    char name[2] = { 0, 0 };
    const char *p;

    if (c == ' ')
        return keymap_key_by_name("spc");
    if (c >= 'A' && c <= 'Z')
        c = c - 'A' + 'a';
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
        name[0] = (char)c;
        return keymap_key_by_name(name);
    }
    if (c == 0)
        return 0;
    if ((p = strchr(unshifted, (int)c)) != NULL)
        return keymap_key_by_name(names[p - unshifted]);
    if ((p = strchr(shifted, (int)c)) != NULL)
        return keymap_key_by_name(names[p - shifted]);
    return 0;
}

/* Function and keypad keysyms (0xfe00..0xffff). */
static const struct {
    uint16_t keysym;
    keymap_key key;
} special_keysyms[] = {
    { 0xff08, 0x66 },            /* BackSpace */
    { 0xff09, 0x0d },            /* Tab */
    { 0xfe20, 0x0d },            /* ISO_Left_Tab (Shift+Tab on X servers) */
    { 0xff0d, 0x5a },            /* Return */
    { 0xff13, KEY_PAUSE },       /* Pause */
    { 0xff6b, KEY_PAUSE },       /* Break */
    { 0xff14, 0x7e },            /* Scroll_Lock */
    { 0xff15, KEY_PRINT },       /* Sys_Req */
    { 0xff61, KEY_PRINT },       /* Print */
    { 0xff1b, 0x76 },            /* Escape */
    { 0xff50, KEY_E0 | 0x6c },   /* Home */
    { 0xff51, KEY_E0 | 0x6b },   /* Left */
    { 0xff52, KEY_E0 | 0x75 },   /* Up */
    { 0xff53, KEY_E0 | 0x74 },   /* Right */
    { 0xff54, KEY_E0 | 0x72 },   /* Down */
    { 0xff55, KEY_E0 | 0x7d },   /* Page_Up */
    { 0xff56, KEY_E0 | 0x7a },   /* Page_Down */
    { 0xff57, KEY_E0 | 0x69 },   /* End */
    { 0xff63, KEY_E0 | 0x70 },   /* Insert */
    { 0xffff, KEY_E0 | 0x71 },   /* Delete */
    { 0xff67, KEY_E0 | 0x2f },   /* Menu */
    { 0xff7f, 0x77 },            /* Num_Lock */
    { 0xff8d, KEY_E0 | 0x5a },   /* KP_Enter */
    { 0xffaa, 0x7c },            /* KP_Multiply */
    { 0xffab, 0x79 },            /* KP_Add */
    { 0xffac, 0x71 },            /* KP_Separator: the decimal key */
    { 0xffad, 0x7b },            /* KP_Subtract */
    { 0xffae, 0x71 },            /* KP_Decimal */
    { 0xff9f, 0x71 },            /* KP_Delete */
    { 0xffaf, KEY_E0 | 0x4a },   /* KP_Divide */
    /* The keypad's navigation keysyms, sent with Num Lock off. */
    { 0xff95, 0x6c },            /* KP_Home */
    { 0xff96, 0x6b },            /* KP_Left */
    { 0xff97, 0x75 },            /* KP_Up */
    { 0xff98, 0x74 },            /* KP_Right */
    { 0xff99, 0x72 },            /* KP_Down */
    { 0xff9a, 0x7d },            /* KP_Prior */
    { 0xff9b, 0x7a },            /* KP_Next */
    { 0xff9c, 0x69 },            /* KP_End */
    { 0xff9d, 0x73 },            /* KP_Begin */
    { 0xff9e, 0x70 },            /* KP_Insert */
    { 0xffe1, 0x12 },            /* Shift_L */
    { 0xffe2, 0x59 },            /* Shift_R */
    { 0xffe3, 0x14 },            /* Control_L */
    { 0xffe4, KEY_E0 | 0x14 },   /* Control_R */
    { 0xffe5, 0x58 },            /* Caps_Lock */
    { 0xffe7, KEY_E0 | 0x1f },   /* Meta_L */
    { 0xffe8, KEY_E0 | 0x27 },   /* Meta_R */
    { 0xffe9, 0x11 },            /* Alt_L */
    { 0xffea, KEY_E0 | 0x11 },   /* Alt_R */
    { 0xfe03, KEY_E0 | 0x11 },   /* ISO_Level3_Shift (AltGr) */
    { 0xffeb, KEY_E0 | 0x1f },   /* Super_L */
    { 0xffec, KEY_E0 | 0x27 },   /* Super_R */
};

static const uint8_t keypad_digits[10] = {
    0x70, 0x69, 0x72, 0x7a, 0x6b, 0x73, 0x74, 0x6c, 0x75, 0x7d,
};

static const uint8_t function_keys[12] = {
    0x05, 0x06, 0x04, 0x0c, 0x03, 0x0b, 0x83, 0x0a, 0x01, 0x09, 0x78, 0x07,
};

keymap_key keymap_keysym_to_key(uint32_t keysym)
{
    if (keysym >= 0x20 && keysym <= 0x7e)
        return ascii_key(keysym);
    if (keysym >= 0xffb0 && keysym <= 0xffb9)          /* KP_0..KP_9 */
        return keypad_digits[keysym - 0xffb0];
    if (keysym >= 0xffbe && keysym <= 0xffc9)          /* F1..F12 */
        return function_keys[keysym - 0xffbe];
    for (size_t i = 0; i < ARRAY_SIZE(special_keysyms); i++)
        if (special_keysyms[i].keysym == keysym)
            return special_keysyms[i].key;
    return 0;
}

keymap_key keymap_hid_to_key(unsigned usage)
{
    if (usage == HID_NON_US_HASH)
        return 0x5d;
    if (usage == 0 || usage > 0xff)
        return 0;
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
        if (keys[i].hid == usage)
            return keys[i].key;
    return 0;
}

keymap_key keymap_key_by_name(const char *name)
{
    if (!name || !*name)
        return 0;
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        if (strcasecmp(keys[i].name, name) == 0 ||
            (keys[i].alias && strcasecmp(keys[i].alias, name) == 0))
            return keys[i].key;
    }
    return 0;
}

size_t keymap_key_set2(keymap_key key, bool down, uint8_t *out)
{
    size_t n = 0;

    switch (key) {
    case 0:
        return 0;
    case KEY_PAUSE:
        /* Pause sends its whole make-and-break sequence on press and
         * nothing on release. */
        if (!down)
            return 0;
        memcpy(out, (const uint8_t[]){ 0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77 }, 8);
        return 8;
    case KEY_PRINT:
        if (down) {
            memcpy(out, (const uint8_t[]){ 0xe0, 0x12, 0xe0, 0x7c }, 4);
            return 4;
        }
        memcpy(out, (const uint8_t[]){ 0xe0, 0xf0, 0x7c, 0xe0, 0xf0, 0x12 }, 6);
        return 6;
    default:
        break;
    }
    if (key & ~(KEY_E0 | 0xffu))
        return 0;
    if (key & KEY_E0)
        out[n++] = 0xe0;
    if (!down)
        out[n++] = 0xf0;
    out[n++] = (uint8_t)key;
    return n;
}

unsigned keymap_key_hid(keymap_key key)
{
    if (key == 0)
        return 0;
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
        if (keys[i].key == key)
            return keys[i].hid;
    return 0;
}

int keymap_name_to_keys(const char *name, keymap_key *combo, size_t cap)
{
    size_t nkeys = 0;
    const char *p = name;

    if (!name || !combo)
        return -1;
    /* Split on '-': no key name contains one ("minus" names that key). */
    for (;;) {
        const char *end = strchr(p, '-');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char part[32];

        if (len == 0 || len >= sizeof(part) || nkeys == cap || nkeys == KEYMAP_MAX_COMBO)
            return -1;
        memcpy(part, p, len);
        part[len] = 0;
        if (!(combo[nkeys++] = keymap_key_by_name(part)))
            return -1;
        if (!end)
            break;
        p = end + 1;
    }
    return (int)nkeys;
}

int keymap_name_to_set2(const char *name, uint8_t *make, size_t *make_len,
                        uint8_t *brk, size_t *brk_len)
{
    keymap_key combo[KEYMAP_MAX_COMBO];
    size_t mcap, bcap, mn = 0, bn = 0;

    if (!name || !make || !brk || !make_len || !brk_len)
        return -1;
    mcap = *make_len;
    bcap = *brk_len;
    *make_len = 0;
    *brk_len = 0;
    int count = keymap_name_to_keys(name, combo, ARRAY_SIZE(combo));
    if (count < 0)
        return -1;
    size_t nkeys = (size_t)count;

    for (size_t i = 0; i < nkeys; i++) {
        uint8_t seq[KEYMAP_MAX_SEQ];
        size_t n = keymap_key_set2(combo[i], true, seq);
        if (mn + n > mcap)
            return -1;
        memcpy(make + mn, seq, n);
        mn += n;
    }
    for (size_t i = nkeys; i-- > 0;) {
        uint8_t seq[KEYMAP_MAX_SEQ];
        size_t n = keymap_key_set2(combo[i], false, seq);
        if (bn + n > bcap)
            return -1;
        memcpy(brk + bn, seq, n);
        bn += n;
    }
    *make_len = mn;
    *brk_len = bn;
    return 0;
}

/* ---- Keyboard layouts ----
 *
 * A layout lists, for each of the four rows of character keys, the
 * characters every key produces at the four levels: plain, Shift, AltGr,
 * Shift+AltGr.  The strings are UTF-8 with one character per key in the
 * order of layout_rows[]; a space means the key has nothing at that level
 * (the space bar is not in these rows).  Only characters with a keysym of
 * their own are listed: Latin-1 (keysym = code point) and the euro sign
 * (keysym 0x20ac).  The contents follow the layouts' standard definitions
 * (the X keyboard configuration's basic variants, which match the printed
 * key caps); dead keys are listed separately. */

/* The character keys by row, named by their US position.  The last key of
 * row 1 is US backslash, which is also the ISO keyboard's key left of
 * Enter; row 3 starts with the ISO key right of left Shift. */
static const uint8_t layout_row0[] = {
    0x0e, 0x16, 0x1e, 0x26, 0x25, 0x2e, 0x36, 0x3d, 0x3e, 0x46, 0x45, 0x4e, 0x55,
};
static const uint8_t layout_row1[] = {
    0x15, 0x1d, 0x24, 0x2d, 0x2c, 0x35, 0x3c, 0x43, 0x44, 0x4d, 0x54, 0x5b, 0x5d,
};
static const uint8_t layout_row2[] = {
    0x1c, 0x1b, 0x23, 0x2b, 0x34, 0x33, 0x3b, 0x42, 0x4b, 0x4c, 0x52,
};
static const uint8_t layout_row3[] = {
    0x61, 0x1a, 0x22, 0x21, 0x2a, 0x32, 0x31, 0x3a, 0x41, 0x49, 0x4a,
};

static const struct {
    const uint8_t *keys;
    size_t n;
} layout_rows[4] = {
    { layout_row0, ARRAY_SIZE(layout_row0) },
    { layout_row1, ARRAY_SIZE(layout_row1) },
    { layout_row2, ARRAY_SIZE(layout_row2) },
    { layout_row3, ARRAY_SIZE(layout_row3) },
};

/* X11 dead-key keysyms. */
#define XK_dead_grave      0xfe50
#define XK_dead_acute      0xfe51
#define XK_dead_circumflex 0xfe52
#define XK_dead_tilde      0xfe53
#define XK_dead_diaeresis  0xfe57
#define XK_dead_abovering  0xfe58
#define XK_dead_cedilla    0xfe5b
#define XK_EuroSign        0x20ac

#define MOD_S  KEYMAP_MOD_SHIFT
#define MOD_G  KEYMAP_MOD_ALTGR

struct layout_extra {
    uint32_t keysym;
    uint8_t key;
    uint8_t mods;
};

struct keymap_layout {
    const char *name;
    /* [row][level], level: 0 plain, 1 Shift, 2 AltGr, 3 Shift+AltGr. */
    const char *rows[4][4];
    const struct layout_extra *extra;   /* dead keys; ends with keysym 0 */
};

static const struct layout_extra de_extra[] = {
    { XK_dead_circumflex, 0x0e, 0 },
    { XK_dead_acute, 0x55, 0 },
    { XK_dead_grave, 0x55, MOD_S },
    { XK_dead_cedilla, 0x55, MOD_G },
    { XK_dead_diaeresis, 0x54, MOD_G },
    { XK_dead_abovering, 0x54, MOD_S | MOD_G },
    { XK_dead_tilde, 0x5b, MOD_G },
    { 0, 0, 0 },
};

static const struct layout_extra gb_extra[] = {
    { XK_dead_cedilla, 0x55, MOD_G },
    { XK_dead_diaeresis, 0x54, MOD_G },
    { XK_dead_tilde, 0x5b, MOD_G },
    { XK_dead_grave, 0x5d, MOD_G },
    { XK_dead_acute, 0x4c, MOD_G },
    { XK_dead_circumflex, 0x52, MOD_G },
    { 0, 0, 0 },
};

static const struct layout_extra fr_extra[] = {
    { XK_dead_circumflex, 0x54, 0 },
    { XK_dead_diaeresis, 0x54, MOD_S },
    { XK_dead_tilde, 0x1e, MOD_G },
    { XK_dead_grave, 0x3d, MOD_G },
    { 0, 0, 0 },
};

static const struct layout_extra es_extra[] = {
    { XK_dead_grave, 0x54, 0 },
    { XK_dead_circumflex, 0x54, MOD_S },
    { XK_dead_acute, 0x52, 0 },
    { XK_dead_diaeresis, 0x52, MOD_S },
    { XK_dead_tilde, 0x55, MOD_G },
    { 0, 0, 0 },
};

static const struct layout_extra it_extra[] = {
    { XK_dead_tilde, 0x26, MOD_S | MOD_G },
    { 0, 0, 0 },
};

static const struct keymap_layout layout_en_us = { .name = "en-us" };

static const struct keymap_layout layout_en_gb = {
    .name = "en-gb",
    .rows = {
        { "`1234567890-=", "¬!\"£$%^&*()_+", "|¹²³€½¾{[]}\\ ", "|¡ £¼    ±°¿ " },
        { "qwertyuiop[]#", "QWERTYUIOP{}~", "@ e¶    øþ  ", "  E® ¥  ØÞ  " },
        { "asdfghjkl;'", "ASDFGHJKL:@", "æßð        ", "Æ§Ðª       " },
        { "\\zxcvbnm,./", "|ZXCVBNM<>?", "|«»¢   µ ·  ", "¦  ©   º×÷ " },
    },
    .extra = gb_extra,
};

static const struct keymap_layout layout_de = {
    .name = "de",
    .rows = {
        { "^1234567890ß´", "°!\"§$%&/()=?`", " ¹²³¼½¬{[]}\\¸", " ¡ £¤    ± ¿ " },
        { "qwertzuiopü+#", "QWERTZUIOPÜ*'", "@ €¶    øþ¨~ ", "  €® ¥  ØÞ°¯ " },
        { "asdfghjklöä", "ASDFGHJKLÖÄ", "æ ð       ^", "Æ§Ðª   &   " },
        { "<yxcvbnm,.-", ">YXCVBNM;:_", "|»«¢   µ·  ", "   ©   º×÷ " },
    },
    .extra = de_extra,
};

static const struct keymap_layout layout_fr = {
    .name = "fr",
    .rows = {
        { "²&é\"'(-è_çà)=", " 1234567890°+", "¬¹~#{[|`\\^@]}", " ¡ £$    ±°¿ " },
        { "azertyuiop^$*", "AZERTYUIOP¨£µ", "æ«€¶    øþ ¤ ", "Æ ¢® ¥  ØÞ ¯ " },
        { "qsdfghjklmù", "QSDFGHJKLM%", " ßð        ", " §Ðª     º " },
        { "<wxcvbn,;:!", ">WXCVBN?./§", "  »¢   ´ · ", "¦  ©    ×÷ " },
    },
    .extra = fr_extra,
};

static const struct keymap_layout layout_es = {
    .name = "es",
    .rows = {
        { "º1234567890'¡", "ª!\"·$%&/()=?¿", "\\|@#~½¬{[]}\\~", "\\¡ £$    ±°¿ " },
        { "qwertyuiop`+ç", "QWERTYUIOP^*Ç", "@ €¶    øþ[]}", "  ¢® ¥  ØÞ" },
        { "asdfghjklñ´", "ASDFGHJKLÑ¨", "æßð      ~{", "Æ§Ðª       " },
        { "<zxcvbnm,.-", ">ZXCVBNM;:_", "|«»¢   µ   ", "¦  ©    ×÷" },
    },
    .extra = es_extra,
};

static const struct keymap_layout layout_it = {
    .name = "it",
    .rows = {
        { "\\1234567890'ì", "|!\"£$%&/()=?^", "¬¹²³¼½¬{[]}`~", "¦¡ £     ±°¿ " },
        { "qwertyuiopè+ù", "QWERTYUIOPé*§", "@ €¶    øþ[]", "  ¢® ¥  ØÞ{}" },
        { "asdfghjklòà", "ASDFGHJKLç°", "æßð      @#", "Æ§Ðª       " },
        { "<zxcvbnm,.-", ">ZXCVBNM;:_", " «»¢  ñµ · ", "   ©  Ñº× ÷" },
    },
    .extra = it_extra,
};

static const struct keymap_layout *const layouts[] = {
    &layout_en_us, &layout_en_gb, &layout_de, &layout_fr, &layout_es, &layout_it,
};

static const char *const layout_names[] = {
    "en-us", "en-gb", "de", "fr", "es", "it", NULL,
};

const char *const *keymap_layouts(void)
{
    return layout_names;
}

const struct keymap_layout *keymap_layout_find(const char *name, char *err, size_t errlen)
{
    size_t n;

    if (!name || !*name)
        return &layout_en_us;
    for (size_t i = 0; i < ARRAY_SIZE(layouts); i++)
        if (strcasecmp(layouts[i]->name, name) == 0)
            return layouts[i];
    if (err && errlen) {
        n = (size_t)snprintf(err, errlen, "unknown keyboard layout '%s' (known:", name);
        for (size_t i = 0; i < ARRAY_SIZE(layouts) && n < errlen; i++)
            n += (size_t)snprintf(err + n, errlen - n, "%s %s", i ? "," : "",
                                  layouts[i]->name);
        if (n < errlen)
            snprintf(err + n, errlen - n, ")");
    }
    return NULL;
}

const char *keymap_layout_name(const struct keymap_layout *l)
{
    return l ? l->name : layout_en_us.name;
}

/* The next UTF-8 character of *p as a keysym, advancing *p; 0 at the end
 * or for a malformed sequence (the tables are ours and well formed). */
static uint32_t next_keysym(const char **p)
{
    const unsigned char *s = (const unsigned char *)*p;
    uint32_t cp;

    if (!s[0])
        return 0;
    if (s[0] < 0x80) {
        cp = s[0];
        *p += 1;
    } else if ((s[0] & 0xe0) == 0xc0 && (s[1] & 0xc0) == 0x80) {
        cp = ((uint32_t)(s[0] & 0x1f) << 6) | (s[1] & 0x3f);
        *p += 2;
    } else if ((s[0] & 0xf0) == 0xe0 && (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80) {
        cp = ((uint32_t)(s[0] & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
        *p += 3;
    } else {
        return 0;
    }
    /* Latin-1 keysyms equal their code points, and so does EuroSign;
     * other characters have keysym 0x01000000 + code point. */
    if (cp <= 0xff || cp == XK_EuroSign)
        return cp;
    return 0x01000000u | cp;
}

/* Viewers may send a Latin-1 character or the euro sign as a Unicode
 * keysym (0x01000000 + code point); use the legacy keysym. */
static uint32_t canonical_keysym(uint32_t keysym)
{
    if (keysym >= 0x01000020 && keysym <= 0x010000ff)
        return keysym - 0x01000000;
    if (keysym == (0x01000000u | XK_EuroSign))
        return XK_EuroSign;
    return keysym;
}

/* Where keysym is in the layout's rows: level 0..3 and key, or -1. */
static int find_in_rows(const struct keymap_layout *l, uint32_t keysym, uint8_t *key)
{
    for (int level = 0; level < 4; level++) {
        for (size_t r = 0; r < 4; r++) {
            const char *p = l->rows[r][level];
            if (!p)
                continue;
            for (size_t i = 0; i < layout_rows[r].n; i++) {
                uint32_t ks = next_keysym(&p);
                if (!ks)
                    break;
                if (ks == keysym) {
                    *key = layout_rows[r].keys[i];
                    return level;
                }
            }
        }
    }
    return -1;
}

/* The other case of a Latin-1 letter, or 0 (digits, symbols, and the
 * letters without one: ß, ÿ). */
static uint32_t other_case(uint32_t ks)
{
    if (ks >= 'a' && ks <= 'z')
        return ks - 0x20;
    if (ks >= 'A' && ks <= 'Z')
        return ks + 0x20;
    if (ks >= 0xe0 && ks <= 0xfe && ks != 0xf7)
        return ks - 0x20;
    if (ks >= 0xc0 && ks <= 0xde && ks != 0xd7)
        return ks + 0x20;
    return 0;
}

bool keymap_layout_lookup(const struct keymap_layout *l, uint32_t keysym,
                          struct keymap_sym *out)
{
    uint8_t key = 0;
    int level;

    out->key = 0;
    out->mods = 0;
    out->force = 0;
    if (!l || l == &layout_en_us) {
        out->key = keymap_keysym_to_key(keysym);
        return out->key != 0;
    }
    keysym = canonical_keysym(keysym);
    /* The space bar and the non-printable keys are in the same place on
     * every layout, and take the modifiers the viewer holds. */
    if (keysym == ' ' || (keysym >= 0xfe00 && keysym <= 0xffff &&
                          (keysym < XK_dead_grave || keysym > 0xfe8f))) {
        out->key = keymap_keysym_to_key(keysym);
        return out->key != 0;
    }
    level = find_in_rows(l, keysym, &key);
    if (level >= 0) {
        out->key = key;
        out->mods = (uint8_t)(((level & 1) ? KEYMAP_MOD_SHIFT : 0) |
                              ((level & 2) ? KEYMAP_MOD_ALTGR : 0));
        out->force = KEYMAP_MOD_SHIFT | KEYMAP_MOD_ALTGR;
        /* A letter whose other case is the same key at the other Shift
         * level keeps the viewer's Shift (and so the guest's Caps Lock). */
        uint32_t oc = other_case(keysym);
        uint8_t okey = 0;
        int olevel = oc ? find_in_rows(l, oc, &okey) : -1;
        if (olevel >= 0 && okey == key && (olevel ^ level) == 1)
            out->force = KEYMAP_MOD_ALTGR;
        return true;
    }
    for (const struct layout_extra *e = l->extra; e && e->keysym; e++) {
        if (e->keysym == keysym) {
            out->key = e->key;
            out->mods = e->mods;
            out->force = KEYMAP_MOD_SHIFT | KEYMAP_MOD_ALTGR;
            return true;
        }
    }
    return false;
}

/* ---- A viewer's keyboard state ---- */

#define KEY_SHIFT_L 0x12
#define KEY_SHIFT_R 0x59
#define KEY_ALTGR   (KEY_E0 | 0x11)

void keymap_state_init(struct keymap_state *s, const struct keymap_layout *l)
{
    memset(s, 0, sizeof(*s));
    s->layout = l;
}

void keymap_state_set_layout(struct keymap_state *s, const struct keymap_layout *l)
{
    s->layout = l;
}

static bool key_held(const struct keymap_state *s, keymap_key key)
{
    for (unsigned i = 0; i < s->nheld; i++)
        if (s->held[i].key == key)
            return true;
    return false;
}

static void forget_held(struct keymap_state *s, unsigned i)
{
    s->held[i] = s->held[--s->nheld];
}

size_t keymap_state_key(struct keymap_state *s, uint32_t keysym, bool down,
                        struct keymap_step *steps)
{
    struct keymap_sym sym;
    keymap_key lifted[3], pressed[2];
    size_t nl = 0, np = 0, n = 0;

    if (!down) {
        /* The key the press went to. */
        for (unsigned i = 0; i < s->nheld; i++) {
            if (s->held[i].keysym == keysym) {
                keymap_key key = s->held[i].key;
                forget_held(s, i);
                steps[0] = (struct keymap_step){ key, false };
                return 1;
            }
        }
        if (!keymap_layout_lookup(s->layout, keysym, &sym))
            return 0;
        for (unsigned i = s->nheld; i-- > 0;)
            if (s->held[i].key == sym.key)
                forget_held(s, i);
        steps[0] = (struct keymap_step){ sym.key, false };
        return 1;
    }

    if (!keymap_layout_lookup(s->layout, keysym, &sym))
        return 0;

    /* Bring Shift and AltGr to what the character needs. */
    if (sym.force & KEYMAP_MOD_SHIFT) {
        bool l = key_held(s, KEY_SHIFT_L), r = key_held(s, KEY_SHIFT_R);
        if (sym.mods & KEYMAP_MOD_SHIFT) {
            if (!l && !r)
                pressed[np++] = KEY_SHIFT_L;
        } else {
            if (l)
                lifted[nl++] = KEY_SHIFT_L;
            if (r)
                lifted[nl++] = KEY_SHIFT_R;
        }
    }
    if (sym.force & KEYMAP_MOD_ALTGR) {
        bool g = key_held(s, KEY_ALTGR);
        if ((sym.mods & KEYMAP_MOD_ALTGR) && !g)
            pressed[np++] = KEY_ALTGR;
        else if (!(sym.mods & KEYMAP_MOD_ALTGR) && g)
            lifted[nl++] = KEY_ALTGR;
    }
    for (size_t i = 0; i < nl; i++)
        steps[n++] = (struct keymap_step){ lifted[i], false };
    for (size_t i = 0; i < np; i++)
        steps[n++] = (struct keymap_step){ pressed[i], true };
    steps[n++] = (struct keymap_step){ sym.key, true };
    for (size_t i = np; i-- > 0;)
        steps[n++] = (struct keymap_step){ pressed[i], false };
    for (size_t i = nl; i-- > 0;)
        steps[n++] = (struct keymap_step){ lifted[i], true };

    /* Remember the key for the release; a repeated press (viewers send
     * auto-repeat as presses) is already there. */
    for (unsigned i = 0; i < s->nheld; i++)
        if (s->held[i].keysym == keysym) {
            s->held[i].key = sym.key;
            return n;
        }
    if (s->nheld < KEYMAP_MAX_HELD) {
        s->held[s->nheld].keysym = keysym;
        s->held[s->nheld].key = sym.key;
        s->nheld++;
    }
    return n;
}

size_t keymap_state_release_all(struct keymap_state *s, struct keymap_step *steps, size_t cap)
{
    size_t n = 0;

    for (unsigned i = 0; i < s->nheld && n < cap; i++) {
        bool dup = false;
        for (unsigned j = 0; j < i; j++)
            if (s->held[j].key == s->held[i].key)
                dup = true;
        if (!dup)
            steps[n++] = (struct keymap_step){ s->held[i].key, false };
    }
    s->nheld = 0;
    return n;
}
