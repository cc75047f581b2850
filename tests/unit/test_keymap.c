/* Key mapping to PC scan code set 2: keysyms (VNC), USB HID usages (SDL),
 * key names and combinations (send-keys).  Expected codes are those of the
 * Keyboard Scan Code Specification's set-2 table. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_letters_and_digits),
        cmocka_unit_test(test_shifted_symbols),
        cmocka_unit_test(test_special_keysyms),
        cmocka_unit_test(test_extended_keys),
        cmocka_unit_test(test_hid_usages),
        cmocka_unit_test(test_send_keys_names),
        cmocka_unit_test(test_send_keys_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
