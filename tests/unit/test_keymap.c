/* Key mapping to PC scan code set 2: keysyms (VNC), USB HID usages (SDL),
 * key names and combinations (send-keys); and keys to the USB keyboard's
 * HID usages.  Expected codes are those of the Keyboard Scan Code
 * Specification's set-2 table and of the HID Usage Tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gui/keymap.h"

static void expect_seq(keymap_key key, bool down, const uint8_t *want, size_t n)
{
    uint8_t buf[KEYMAP_MAX_SEQ];
    size_t got = keymap_key_set2(key, down, buf);
    assert_int_equal(got, n);
    assert_memory_equal(buf, want, n);
}

static void test_letters_and_digits(void **state)
{
    assert_int_equal(keymap_keysym_to_key('a'), 0x1c);
    assert_int_equal(keymap_keysym_to_key('z'), 0x1a);
    assert_int_equal(keymap_keysym_to_key('q'), 0x15);
    assert_int_equal(keymap_keysym_to_key('m'), 0x3a);
    assert_int_equal(keymap_keysym_to_key('1'), 0x16);
    assert_int_equal(keymap_keysym_to_key('0'), 0x45);
    assert_int_equal(keymap_keysym_to_key(' '), 0x29);
    /* Shift comes as its own key: upper case is the same physical key. */
    for (unsigned c = 'a'; c <= 'z'; c++) {
        assert_int_not_equal(keymap_keysym_to_key(c), 0);
        assert_int_equal(keymap_keysym_to_key(c - 'a' + 'A'), keymap_keysym_to_key(c));
    }
    expect_seq(keymap_keysym_to_key('a'), true, (const uint8_t[]){ 0x1c }, 1);
    expect_seq(keymap_keysym_to_key('a'), false, (const uint8_t[]){ 0xf0, 0x1c }, 2);
}

static void test_shifted_symbols(void **state)
{
    static const char pairs[][2] = {
        { '!', '1' }, { '@', '2' }, { '#', '3' }, { '$', '4' }, { '%', '5' },
        { '^', '6' }, { '&', '7' }, { '*', '8' }, { '(', '9' }, { ')', '0' },
        { '_', '-' }, { '+', '=' }, { '{', '[' }, { '}', ']' }, { '|', '\\' },
        { ':', ';' }, { '"', '\'' }, { '~', '`' }, { '<', ',' }, { '>', '.' },
        { '?', '/' },
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        keymap_key base = keymap_keysym_to_key((unsigned char)pairs[i][1]);
        assert_int_not_equal(base, 0);
        assert_int_equal(keymap_keysym_to_key((unsigned char)pairs[i][0]), base);
    }
    assert_int_equal(keymap_keysym_to_key('-'), 0x4e);
    assert_int_equal(keymap_keysym_to_key('='), 0x55);
    assert_int_equal(keymap_keysym_to_key('\\'), 0x5d);
    assert_int_equal(keymap_keysym_to_key('`'), 0x0e);
    assert_int_equal(keymap_keysym_to_key('/'), 0x4a);
    /* All 95 printable ASCII characters are on some key. */
    for (unsigned c = 0x20; c <= 0x7e; c++)
        assert_int_not_equal(keymap_keysym_to_key(c), 0);
}

static void test_special_keysyms(void **state)
{
    assert_int_equal(keymap_keysym_to_key(0xff0d), 0x5a);          /* Return */
    assert_int_equal(keymap_keysym_to_key(0xff1b), 0x76);          /* Escape */
    assert_int_equal(keymap_keysym_to_key(0xff08), 0x66);          /* BackSpace */
    assert_int_equal(keymap_keysym_to_key(0xffbe), 0x05);          /* F1 */
    assert_int_equal(keymap_keysym_to_key(0xffc4), 0x83);          /* F7 */
    assert_int_equal(keymap_keysym_to_key(0xffc9), 0x07);          /* F12 */
    assert_int_equal(keymap_keysym_to_key(0xffe1), 0x12);          /* Shift_L */
    assert_int_equal(keymap_keysym_to_key(0xffe2), 0x59);          /* Shift_R */
    assert_int_equal(keymap_keysym_to_key(0xffe3), 0x14);          /* Control_L */
    assert_int_equal(keymap_keysym_to_key(0xffe4), KEY_E0 | 0x14); /* Control_R */
    assert_int_equal(keymap_keysym_to_key(0xffe9), 0x11);          /* Alt_L */
    assert_int_equal(keymap_keysym_to_key(0xfe03), KEY_E0 | 0x11); /* AltGr */
    assert_int_equal(keymap_keysym_to_key(0xffb7), 0x6c);          /* KP_7 */
    assert_int_equal(keymap_keysym_to_key(0xff95), 0x6c);          /* KP_Home */
    assert_int_equal(keymap_keysym_to_key(0xffb0), 0x70);          /* KP_0 */
    assert_int_equal(keymap_keysym_to_key(0xffaf), KEY_E0 | 0x4a); /* KP_Divide */
    assert_int_equal(keymap_keysym_to_key(0xff8d), KEY_E0 | 0x5a); /* KP_Enter */
    assert_int_equal(keymap_keysym_to_key(0xff13), KEY_PAUSE);
    assert_int_equal(keymap_keysym_to_key(0xff61), KEY_PRINT);
    /* Unknown keysyms: none (Latin-1 'é', a Cyrillic letter, a bogus value). */
    assert_int_equal(keymap_keysym_to_key(0xe9), 0);
    assert_int_equal(keymap_keysym_to_key(0x6c1), 0);
    assert_int_equal(keymap_keysym_to_key(0x12345678), 0);
    assert_int_equal(keymap_keysym_to_key(0), 0);
}

static void test_extended_keys(void **state)
{
    /* Arrows, the navigation block, right Ctrl/Alt carry E0 before the make
     * code and E0 F0 before the break code. */
    expect_seq(keymap_keysym_to_key(0xff52), true, (const uint8_t[]){ 0xe0, 0x75 }, 2);
    expect_seq(keymap_keysym_to_key(0xff52), false, (const uint8_t[]){ 0xe0, 0xf0, 0x75 }, 3);
    expect_seq(keymap_keysym_to_key(0xff51), true, (const uint8_t[]){ 0xe0, 0x6b }, 2);
    expect_seq(keymap_keysym_to_key(0xffff), true, (const uint8_t[]){ 0xe0, 0x71 }, 2);
    expect_seq(keymap_keysym_to_key(0xffe4), false, (const uint8_t[]){ 0xe0, 0xf0, 0x14 }, 3);
    /* The keypad's 7 and Home share 6C without a prefix; Home has one. */
    expect_seq(keymap_keysym_to_key(0xff50), true, (const uint8_t[]){ 0xe0, 0x6c }, 2);
    expect_seq(keymap_keysym_to_key(0xff95), true, (const uint8_t[]){ 0x6c }, 1);
    /* Print Screen and Pause have sequences of their own. */
    expect_seq(KEY_PRINT, true, (const uint8_t[]){ 0xe0, 0x12, 0xe0, 0x7c }, 4);
    expect_seq(KEY_PRINT, false, (const uint8_t[]){ 0xe0, 0xf0, 0x7c, 0xe0, 0xf0, 0x12 }, 6);
    expect_seq(KEY_PAUSE, true,
               (const uint8_t[]){ 0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77 }, 8);
    expect_seq(KEY_PAUSE, false, NULL, 0);
    expect_seq(0, true, NULL, 0);
    /* F7's make code is above 0x7f and still one byte. */
    expect_seq(keymap_key_by_name("f7"), false, (const uint8_t[]){ 0xf0, 0x83 }, 2);
}

static void test_hid_usages(void **state)
{
    assert_int_equal(keymap_hid_to_key(0x04), 0x1c);          /* A */
    assert_int_equal(keymap_hid_to_key(0x1d), 0x1a);          /* Z */
    assert_int_equal(keymap_hid_to_key(0x27), 0x45);          /* 0 */
    assert_int_equal(keymap_hid_to_key(0x28), 0x5a);          /* Return */
    assert_int_equal(keymap_hid_to_key(0x52), KEY_E0 | 0x75); /* Up */
    assert_int_equal(keymap_hid_to_key(0x58), KEY_E0 | 0x5a); /* KP Enter */
    assert_int_equal(keymap_hid_to_key(0x64), 0x61);          /* ISO <> key */
    assert_int_equal(keymap_hid_to_key(0x32), 0x5d);          /* ISO #~ key */
    assert_int_equal(keymap_hid_to_key(0xe4), KEY_E0 | 0x14); /* Right Ctrl */
    assert_int_equal(keymap_hid_to_key(0xe7), KEY_E0 | 0x27); /* Right GUI */
    assert_int_equal(keymap_hid_to_key(0x46), KEY_PRINT);
    assert_int_equal(keymap_hid_to_key(0x48), KEY_PAUSE);
    assert_int_equal(keymap_hid_to_key(0), 0);
    assert_int_equal(keymap_hid_to_key(0x01), 0);             /* ErrorRollOver */
    assert_int_equal(keymap_hid_to_key(0x1000), 0);
    /* Every usage from A to Right GUI that has a key maps to a distinct one. */
    for (unsigned u = 0x04; u <= 0x38; u++) {
        keymap_key k = keymap_hid_to_key(u);
        assert_int_not_equal(k, 0);
        for (unsigned v = 0x04; v < u; v++)
            if (v != 0x31 && u != 0x32)     /* backslash and ISO #~ share 5D */
                assert_int_not_equal(keymap_hid_to_key(v), k);
    }
}

static void send_keys(const char *name, const uint8_t *make, size_t mlen,
                      const uint8_t *brk, size_t blen)
{
    uint8_t m[64], b[64];
    size_t ml = sizeof(m), bl = sizeof(b);
    assert_int_equal(keymap_name_to_set2(name, m, &ml, b, &bl), 0);
    assert_int_equal(ml, mlen);
    assert_int_equal(bl, blen);
    assert_memory_equal(m, make, mlen);
    if (blen)
        assert_memory_equal(b, brk, blen);
}

/* The USB keyboard's usages, whichever way a key was named: by send-keys
 * name, by VNC keysym, by SDL scancode.  Expected values are the HID Usage
 * Tables' Keyboard/Keypad page (0x07). */
static void test_key_to_hid(void **state)
{
    static const struct {
        const char *name;
        uint32_t keysym;
        unsigned hid;
    } want[] = {
        { "a", 'a', 0x04 },
        { "m", 'M', 0x10 },
        { "z", 'z', 0x1d },
        { "1", '!', 0x1e },
        { "0", '0', 0x27 },
        { "ret", 0xff0d, 0x28 },           /* Return */
        { "esc", 0xff1b, 0x29 },
        { "backspace", 0xff08, 0x2a },
        { "tab", 0xff09, 0x2b },
        { "spc", ' ', 0x2c },
        { "f1", 0xffbe, 0x3a },
        { "f12", 0xffc9, 0x45 },
        { "delete", 0xffff, 0x4c },        /* Delete Forward */
        { "right", 0xff53, 0x4f },
        { "left", 0xff51, 0x50 },
        { "down", 0xff54, 0x51 },
        { "up", 0xff52, 0x52 },
        { "kp_enter", 0xff8d, 0x58 },
        { "ctrl", 0xffe3, 0xe0 },          /* Left Control */
        { "shift", 0xffe1, 0xe1 },
        { "alt", 0xffe9, 0xe2 },
        { "ctrl_r", 0xffe4, 0xe4 },        /* Right Control */
        { "alt_r", 0xffea, 0xe6 },
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        keymap_key by_name = keymap_key_by_name(want[i].name);
        assert_int_not_equal(by_name, 0);
        assert_int_equal(keymap_key_hid(by_name), want[i].hid);
        assert_int_equal(keymap_key_hid(keymap_keysym_to_key(want[i].keysym)), want[i].hid);
        /* SDL scancodes are the usages: there and back. */
        assert_int_equal(keymap_key_hid(keymap_hid_to_key(want[i].hid)), want[i].hid);
    }
    assert_int_equal(keymap_key_hid(KEY_PRINT), 0x46);
    assert_int_equal(keymap_key_hid(KEY_PAUSE), 0x48);
    assert_int_equal(keymap_key_hid(0), 0);
    assert_int_equal(keymap_key_hid(0xff), 0);                /* no key has set-2 code FF */
    /* Every usage with a key comes back as itself (the ISO #~ key, which
     * shares backslash's set-2 code, comes back as backslash). */
    for (unsigned u = 0x04; u <= 0xe7; u++) {
        keymap_key k = keymap_hid_to_key(u);
        if (k)
            assert_int_equal(keymap_key_hid(k), u == 0x32 ? 0x31 : u);
    }
}

static void test_name_to_keys(void **state)
{
    keymap_key keys[KEYMAP_MAX_COMBO];
    assert_int_equal(keymap_name_to_keys("ctrl-alt-del", keys, KEYMAP_MAX_COMBO), 3);
    assert_int_equal(keymap_key_hid(keys[0]), 0xe0);
    assert_int_equal(keymap_key_hid(keys[1]), 0xe2);
    assert_int_equal(keymap_key_hid(keys[2]), 0x4c);
    assert_int_equal(keymap_name_to_keys("ret", keys, KEYMAP_MAX_COMBO), 1);
    assert_int_equal(keys[0], 0x5a);
    assert_int_equal(keymap_name_to_keys("ctrl-alt-del", keys, 2), -1);
    assert_int_equal(keymap_name_to_keys("ctrl--del", keys, KEYMAP_MAX_COMBO), -1);
    assert_int_equal(keymap_name_to_keys("nokey", keys, KEYMAP_MAX_COMBO), -1);
    assert_int_equal(keymap_name_to_keys("", keys, KEYMAP_MAX_COMBO), -1);
    assert_int_equal(keymap_name_to_keys(NULL, keys, KEYMAP_MAX_COMBO), -1);
}

static void test_send_keys_names(void **state)
{
    send_keys("a", (const uint8_t[]){ 0x1c }, 1, (const uint8_t[]){ 0xf0, 0x1c }, 2);
    send_keys("A", (const uint8_t[]){ 0x1c }, 1, (const uint8_t[]){ 0xf0, 0x1c }, 2);
    send_keys("ret", (const uint8_t[]){ 0x5a }, 1, (const uint8_t[]){ 0xf0, 0x5a }, 2);
    send_keys("esc", (const uint8_t[]){ 0x76 }, 1, (const uint8_t[]){ 0xf0, 0x76 }, 2);
    send_keys("f1", (const uint8_t[]){ 0x05 }, 1, (const uint8_t[]){ 0xf0, 0x05 }, 2);
    send_keys("up", (const uint8_t[]){ 0xe0, 0x75 }, 2, (const uint8_t[]){ 0xe0, 0xf0, 0x75 }, 3);
    send_keys("del", (const uint8_t[]){ 0xe0, 0x71 }, 2, (const uint8_t[]){ 0xe0, 0xf0, 0x71 }, 3);
    /* Combos press in order and release in reverse order. */
    send_keys("shift-a", (const uint8_t[]){ 0x12, 0x1c }, 2,
              (const uint8_t[]){ 0xf0, 0x1c, 0xf0, 0x12 }, 4);
    send_keys("ctrl-alt-del", (const uint8_t[]){ 0x14, 0x11, 0xe0, 0x71 }, 4,
              (const uint8_t[]){ 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14 }, 7);
    send_keys("Ctrl-Alt-F2", (const uint8_t[]){ 0x14, 0x11, 0x06 }, 3,
              (const uint8_t[]){ 0xf0, 0x06, 0xf0, 0x11, 0xf0, 0x14 }, 6);
    send_keys("ctrl_r-c", (const uint8_t[]){ 0xe0, 0x14, 0x21 }, 3,
              (const uint8_t[]){ 0xf0, 0x21, 0xe0, 0xf0, 0x14 }, 5);
    send_keys("pause", (const uint8_t[]){ 0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77 }, 8,
              NULL, 0);
}

static void test_send_keys_refused(void **state)
{
    static const char *const bad[] = {
        "", "-", "a-", "-a", "ctrl--a", "nosuchkey", "ctrl-nosuchkey", "f13",
        "a b", "ctrl-alt-shift-meta_l-ctrl_r-alt_r-shift_r-meta_r-a",
        "averyveryveryveryveryverylongkeyname",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t m[64], b[64];
        size_t ml = sizeof(m), bl = sizeof(b);
        assert_int_equal(keymap_name_to_set2(bad[i], m, &ml, b, &bl), -1);
        assert_int_equal(ml, 0);
        assert_int_equal(bl, 0);
    }
    /* Buffers too small for the sequence are refused, not overrun. */
    uint8_t m[3], b[3];
    size_t ml = sizeof(m), bl = sizeof(b);
    assert_int_equal(keymap_name_to_set2("ctrl-alt-del", m, &ml, b, &bl), -1);
    ml = 8;
    bl = 8;
    uint8_t m8[8], b8[8];
    assert_int_equal(keymap_name_to_set2("ctrl-alt-del", m8, &ml, b8, &bl), 0);
    assert_int_equal(keymap_name_to_set2(NULL, m8, &ml, b8, &bl), -1);
}

/* ---- Layouts ---- */

static const struct keymap_layout *layout(const char *name)
{
    char err[256] = "";
    const struct keymap_layout *l = keymap_layout_find(name, err, sizeof(err));
    assert_non_null(l);
    assert_string_equal(err, "");
    return l;
}

/* The set-2 bytes a viewer's key event produces, all steps joined. */
static size_t event_bytes(struct keymap_state *s, uint32_t keysym, bool down, uint8_t *out)
{
    struct keymap_step steps[KEYMAP_MAX_STEPS];
    size_t n = keymap_state_key(s, keysym, down, steps), len = 0;
    assert_true(n <= KEYMAP_MAX_STEPS);
    for (size_t i = 0; i < n; i++)
        len += keymap_key_set2(steps[i].key, steps[i].down, out + len);
    return len;
}

static void expect_event(struct keymap_state *s, uint32_t keysym, bool down,
                         const uint8_t *want, size_t n)
{
    uint8_t buf[KEYMAP_MAX_STEPS * KEYMAP_MAX_SEQ];
    size_t got = event_bytes(s, keysym, down, buf);
    assert_int_equal(got, n);
    if (n)
        assert_memory_equal(buf, want, n);
}

/* Press and release of keysym with no modifier held. */
static void expect_typed(const char *lay, uint32_t keysym, const uint8_t *make, size_t mn,
                         const uint8_t *brk, size_t bn)
{
    struct keymap_state s;
    keymap_state_init(&s, layout(lay));
    expect_event(&s, keysym, true, make, mn);
    expect_event(&s, keysym, false, brk, bn);
    assert_int_equal(s.nheld, 0);
}

#define B(...) (const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ })

static void test_layout_names(void **state)
{
    const char *const *names = keymap_layouts();
    static const char *const want[] = { "en-us", "en-gb", "de", "fr", "es", "it" };
    size_t n = 0;

    assert_non_null(names);
    for (; names[n]; n++) {
        const struct keymap_layout *l = layout(names[n]);
        assert_string_equal(keymap_layout_name(l), names[n]);
    }
    assert_int_equal(n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < n; i++)
        assert_string_equal(names[i], want[i]);
    assert_string_equal(keymap_layout_name(layout("DE")), "de");
    assert_string_equal(keymap_layout_name(layout("")), "en-us");
    assert_string_equal(keymap_layout_name(NULL), "en-us");
}

static void test_layout_unknown(void **state)
{
    char err[256] = "";
    assert_null(keymap_layout_find("xx", err, sizeof(err)));
    assert_non_null(strstr(err, "'xx'"));
    for (const char *const *n = keymap_layouts(); *n; n++)
        assert_non_null(strstr(err, *n));
    assert_null(keymap_layout_find("de-", err, sizeof(err)));
    /* A short buffer is truncated, not overrun. */
    char small[8];
    memset(small, 'x', sizeof(small));
    assert_null(keymap_layout_find("nosuchlayout", small, sizeof(small)));
    assert_int_equal(small[7], 0);
    assert_null(keymap_layout_find("nosuchlayout", NULL, 0));
}

/* en-us through the state is the positional mapping, modifiers untouched. */
static void test_layout_en_us(void **state)
{
    struct keymap_state s;

    for (const char *name = NULL;; name = "en-us") {
        keymap_state_init(&s, name ? layout(name) : NULL);
        for (uint32_t ks = 0x20; ks <= 0x7e; ks++) {
            uint8_t want[KEYMAP_MAX_SEQ];
            size_t n = keymap_key_set2(keymap_keysym_to_key(ks), true, want);
            expect_event(&s, ks, true, want, n);
            n = keymap_key_set2(keymap_keysym_to_key(ks), false, want);
            expect_event(&s, ks, false, want, n);
        }
        /* A held Shift is not lifted for '1', nor added for '!'. */
        expect_event(&s, 0xffe1, true, B(0x12));
        expect_event(&s, '1', true, B(0x16));
        expect_event(&s, '1', false, B(0xf0, 0x16));
        expect_event(&s, 0xffe1, false, B(0xf0, 0x12));
        expect_event(&s, '!', true, B(0x16));
        expect_event(&s, '!', false, B(0xf0, 0x16));
        expect_event(&s, 0xe4, true, NULL, 0);       /* 'ä': not on US */
        if (name)
            break;
    }
}

static void test_layout_de(void **state)
{
    struct keymap_state s;

    expect_typed("de", 'z', B(0x35), B(0xf0, 0x35));
    expect_typed("de", 'y', B(0x1a), B(0xf0, 0x1a));
    expect_typed("de", 0xe4, B(0x52), B(0xf0, 0x52));             /* ä */
    expect_typed("de", 0x10000e4, B(0x52), B(0xf0, 0x52));        /* ä as Unicode */
    expect_typed("de", 0xf6, B(0x4c), B(0xf0, 0x4c));             /* ö */
    expect_typed("de", 0xdf, B(0x4e), B(0xf0, 0x4e));             /* ß */
    /* AltGr (E0 11) around the key. */
    expect_typed("de", '@', B(0xe0, 0x11, 0x15, 0xe0, 0xf0, 0x11), B(0xf0, 0x15));
    expect_typed("de", 0x20ac, B(0xe0, 0x11, 0x24, 0xe0, 0xf0, 0x11), B(0xf0, 0x24));
    expect_typed("de", '{', B(0xe0, 0x11, 0x3d, 0xe0, 0xf0, 0x11), B(0xf0, 0x3d));
    expect_typed("de", '\\', B(0xe0, 0x11, 0x4e, 0xe0, 0xf0, 0x11), B(0xf0, 0x4e));
    expect_typed("de", '|', B(0xe0, 0x11, 0x61, 0xe0, 0xf0, 0x11), B(0xf0, 0x61));
    /* Shift added around the key when the viewer does not hold it. */
    expect_typed("de", '?', B(0x12, 0x4e, 0xf0, 0x12), B(0xf0, 0x4e));
    expect_typed("de", '/', B(0x12, 0x3d, 0xf0, 0x12), B(0xf0, 0x3d));
    expect_typed("de", '<', B(0x61), B(0xf0, 0x61));
    expect_typed("de", '>', B(0x12, 0x61, 0xf0, 0x12), B(0xf0, 0x61));
    expect_typed("de", '-', B(0x4a), B(0xf0, 0x4a));
    expect_typed("de", 0xfe52, B(0x0e), B(0xf0, 0x0e));           /* dead_circumflex */
    /* Non-printable keys are positional. */
    expect_typed("de", 0xff0d, B(0x5a), B(0xf0, 0x5a));
    expect_typed("de", 0xff52, B(0xe0, 0x75), B(0xe0, 0xf0, 0x75));
    expect_typed("de", ' ', B(0x29), B(0xf0, 0x29));
    expect_typed("de", 0x6c1, NULL, 0, NULL, 0);                   /* Cyrillic */

    /* A US viewer types Shift+2 for '@': Shift is lifted, AltGr pressed,
     * both restored after Q's make code.  The release goes to Q even when
     * the viewer names it '2' after letting go of Shift. */
    keymap_state_init(&s, layout("de"));
    expect_event(&s, 0xffe1, true, B(0x12));
    expect_event(&s, '@', true, B(0xf0, 0x12, 0xe0, 0x11, 0x15, 0xe0, 0xf0, 0x11, 0x12));
    expect_event(&s, '@', true, B(0xf0, 0x12, 0xe0, 0x11, 0x15, 0xe0, 0xf0, 0x11, 0x12));
    expect_event(&s, '?', true, B(0x4e));                          /* Shift held */
    expect_event(&s, '?', false, B(0xf0, 0x4e));
    expect_event(&s, 'Z', true, B(0x35));
    expect_event(&s, 'Z', false, B(0xf0, 0x35));
    expect_event(&s, 0xffe1, false, B(0xf0, 0x12));
    expect_event(&s, '2', false, B(0xf0, 0x1e));                  /* never pressed */
    assert_int_equal(s.nheld, 1);
    expect_event(&s, '@', false, B(0xf0, 0x15));
    assert_int_equal(s.nheld, 0);

    /* Both Shifts held and '-' wanted: both lifted and restored in reverse. */
    keymap_state_init(&s, layout("de"));
    expect_event(&s, 0xffe1, true, B(0x12));
    expect_event(&s, 0xffe2, true, B(0x59));
    expect_event(&s, '-', true, B(0xf0, 0x12, 0xf0, 0x59, 0x4a, 0x59, 0x12));
    expect_event(&s, '-', false, B(0xf0, 0x4a));
    /* A German viewer holds AltGr itself for '@': nothing to add. */
    keymap_state_init(&s, layout("de"));
    expect_event(&s, 0xfe03, true, B(0xe0, 0x11));
    expect_event(&s, '@', true, B(0x15));
    expect_event(&s, '@', false, B(0xf0, 0x15));
    /* ...and lifted for a key that must not have it. */
    expect_event(&s, 'q', true, B(0xe0, 0xf0, 0x11, 0x15, 0xe0, 0x11));
    expect_event(&s, 'q', false, B(0xf0, 0x15));
    /* Letters keep the viewer's Shift: 'A' without Shift held (Caps Lock in
     * the viewer) is the bare key, for the guest's own Caps Lock. */
    expect_event(&s, 0xfe03, false, B(0xe0, 0xf0, 0x11));
    expect_event(&s, 'A', true, B(0x1c));
    expect_event(&s, 0xc4, true, B(0x52));                        /* Ä */
}

static void test_layout_fr(void **state)
{
    expect_typed("fr", 'a', B(0x15), B(0xf0, 0x15));
    expect_typed("fr", 'q', B(0x1c), B(0xf0, 0x1c));
    expect_typed("fr", 'w', B(0x1a), B(0xf0, 0x1a));
    expect_typed("fr", 'm', B(0x4c), B(0xf0, 0x4c));
    expect_typed("fr", '1', B(0x12, 0x16, 0xf0, 0x12), B(0xf0, 0x16));
    expect_typed("fr", '&', B(0x16), B(0xf0, 0x16));
    expect_typed("fr", 0xe9, B(0x1e), B(0xf0, 0x1e));             /* é */
    expect_typed("fr", ',', B(0x3a), B(0xf0, 0x3a));
    expect_typed("fr", '.', B(0x12, 0x41, 0xf0, 0x12), B(0xf0, 0x41));
    expect_typed("fr", '@', B(0xe0, 0x11, 0x45, 0xe0, 0xf0, 0x11), B(0xf0, 0x45));
    /* é has no upper case on its key: a Shift the viewer holds is lifted. */
    struct keymap_state s;
    keymap_state_init(&s, layout("fr"));
    expect_event(&s, 0xffe1, true, B(0x12));
    expect_event(&s, 0xe9, true, B(0xf0, 0x12, 0x1e, 0x12));
    expect_event(&s, 'A', true, B(0x15));
}

static void test_layout_gb_es_it(void **state)
{
    expect_typed("en-gb", 0xa3, B(0x12, 0x26, 0xf0, 0x12), B(0xf0, 0x26));   /* £ */
    expect_typed("en-gb", '#', B(0x5d), B(0xf0, 0x5d));
    expect_typed("en-gb", '~', B(0x12, 0x5d, 0xf0, 0x12), B(0xf0, 0x5d));
    expect_typed("en-gb", '@', B(0x12, 0x52, 0xf0, 0x12), B(0xf0, 0x52));
    expect_typed("en-gb", '"', B(0x12, 0x1e, 0xf0, 0x12), B(0xf0, 0x1e));
    expect_typed("en-gb", '\\', B(0x61), B(0xf0, 0x61));
    expect_typed("en-gb", 0x20ac, B(0xe0, 0x11, 0x25, 0xe0, 0xf0, 0x11), B(0xf0, 0x25));
    expect_typed("es", 0xf1, B(0x4c), B(0xf0, 0x4c));             /* ñ */
    expect_typed("es", '@', B(0xe0, 0x11, 0x1e, 0xe0, 0xf0, 0x11), B(0xf0, 0x1e));
    expect_typed("es", 0xbf, B(0x12, 0x55, 0xf0, 0x12), B(0xf0, 0x55));     /* ¿ */
    expect_typed("it", 0xe8, B(0x54), B(0xf0, 0x54));             /* è */
    expect_typed("it", 0xf2, B(0x4c), B(0xf0, 0x4c));             /* ò */
    expect_typed("it", '[', B(0xe0, 0x11, 0x3e, 0xe0, 0xf0, 0x11), B(0xf0, 0x3e));
    expect_typed("it", '#', B(0xe0, 0x11, 0x52, 0xe0, 0xf0, 0x11), B(0xf0, 0x52));
    /* Shift and AltGr both, released in reverse order. */
    expect_typed("de", 0xbf, B(0x12, 0xe0, 0x11, 0x4e, 0xe0, 0xf0, 0x11, 0xf0, 0x12),
                 B(0xf0, 0x4e));                                   /* ¿ */
}

/* Every layout types every printable ASCII character, on a key of its
 * own rows, and the plain lower-case letters need no modifier. */
static void test_layout_ascii_complete(void **state)
{
    for (const char *const *n = keymap_layouts(); *n; n++) {
        const struct keymap_layout *l = layout(*n);
        for (uint32_t ks = 0x20; ks <= 0x7e; ks++) {
            struct keymap_sym sym;
            assert_true(keymap_layout_lookup(l, ks, &sym));
            assert_int_not_equal(sym.key, 0);
            assert_int_equal(sym.key & ~0xffu, 0);
            if (ks >= 'a' && ks <= 'z')
                assert_int_equal(sym.mods, 0);
        }
    }
}

static void test_layout_release_all(void **state)
{
    struct keymap_state s;
    struct keymap_step steps[KEYMAP_MAX_HELD];

    keymap_state_init(&s, layout("de"));
    expect_event(&s, 0xffe3, true, B(0x14));                      /* Control_L */
    expect_event(&s, '@', true, B(0xe0, 0x11, 0x15, 0xe0, 0xf0, 0x11));
    expect_event(&s, 'q', true, B(0x15));                         /* same key */
    size_t n = keymap_state_release_all(&s, steps, KEYMAP_MAX_HELD);
    assert_int_equal(n, 2);
    assert_int_equal(steps[0].key, 0x14);
    assert_false(steps[0].down);
    assert_int_equal(steps[1].key, 0x15);
    assert_int_equal(s.nheld, 0);
    assert_int_equal(keymap_state_release_all(&s, steps, KEYMAP_MAX_HELD), 0);
    /* More keys than are remembered: the rest is not recorded, no overrun. */
    struct keymap_step one[KEYMAP_MAX_STEPS];
    for (uint32_t ks = 'a'; ks <= 'z'; ks++)
        assert_int_equal(keymap_state_key(&s, ks, true, one), 1);
    for (uint32_t ks = 0xffbe; ks <= 0xffc9; ks++)      /* F1..F12 */
        assert_int_equal(keymap_state_key(&s, ks, true, one), 1);
    assert_int_equal(s.nheld, KEYMAP_MAX_HELD);
    assert_int_equal(keymap_state_release_all(&s, steps, 4), 4);
    assert_int_equal(s.nheld, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_letters_and_digits),
        cmocka_unit_test(test_shifted_symbols),
        cmocka_unit_test(test_special_keysyms),
        cmocka_unit_test(test_extended_keys),
        cmocka_unit_test(test_hid_usages),
        cmocka_unit_test(test_key_to_hid),
        cmocka_unit_test(test_name_to_keys),
        cmocka_unit_test(test_send_keys_names),
        cmocka_unit_test(test_send_keys_refused),
        cmocka_unit_test(test_layout_names),
        cmocka_unit_test(test_layout_unknown),
        cmocka_unit_test(test_layout_en_us),
        cmocka_unit_test(test_layout_de),
        cmocka_unit_test(test_layout_fr),
        cmocka_unit_test(test_layout_gb_es_it),
        cmocka_unit_test(test_layout_ascii_complete),
        cmocka_unit_test(test_layout_release_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
