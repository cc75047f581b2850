/* Keysyms, USB HID usages and key names to PC scan code set 2.
 *
 * Set-2 codes are those of the "Keyboard Scan Code Specification"
 * (Microsoft, rev. 1.3a, annex "USB usage to PS/2 scan codes"), which lists
 * both the set-2 make code and the USB usage of every key, so one table
 * serves SDL (whose scancodes are the HID usages) and the key names.
 * Keysym values are those of X11's keysymdef.h, the RFB protocol's. */
#include "gui/keymap.h"

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

#define MAX_COMBO 8

int keymap_name_to_set2(const char *name, uint8_t *make, size_t *make_len,
                        uint8_t *brk, size_t *brk_len)
{
    keymap_key combo[MAX_COMBO];
    size_t nkeys = 0, mcap, bcap, mn = 0, bn = 0;
    const char *p = name;

    if (!name || !make || !brk || !make_len || !brk_len)
        return -1;
    mcap = *make_len;
    bcap = *brk_len;
    *make_len = 0;
    *brk_len = 0;

    /* Split on '-': no key name contains one ("minus" names that key). */
    for (;;) {
        const char *end = strchr(p, '-');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char part[32];

        if (len == 0 || len >= sizeof(part) || nkeys == MAX_COMBO)
            return -1;
        memcpy(part, p, len);
        part[len] = 0;
        if (!(combo[nkeys++] = keymap_key_by_name(part)))
            return -1;
        if (!end)
            break;
        p = end + 1;
    }

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
