/* 8042 keyboard controller with PS/2 keyboard and mouse, driven through
 * ports 0x60/0x64 the way firmware and Linux's i8042 driver do. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "devices/i8042.h"
#include "support/harness_platform.h"

#define DATA 0x60
#define CMD 0x64

#define ST_OBF 0x01
#define ST_IBF 0x02
#define ST_SYS 0x04
#define ST_CMD 0x08
#define ST_AUXB 0x20

#define CTR_KBDINT 0x01
#define CTR_AUXINT 0x02
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE 0x40

struct fx {
    struct harness *h;
    struct i8042 *k;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->h = harness_new(1 << 20);
    assert_non_null(f->h);
    f->k = i8042_create(&f->h->plat);
    assert_non_null(f->k);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    i8042_destroy(f->k);
    harness_free(f->h);
    free(f);
    return 0;
}

static uint8_t status(struct fx *f)
{
    return (uint8_t)harness_pio_read(f->h, CMD, 1);
}

static void cmd(struct fx *f, uint8_t c)
{
    harness_pio_write(f->h, CMD, 1, c);
    assert_false(status(f) & ST_IBF);
}

static void data(struct fx *f, uint8_t v)
{
    harness_pio_write(f->h, DATA, 1, v);
    assert_false(status(f) & ST_IBF);
}

/* Reads one byte, which must be there, and checks where it came from. */
static uint8_t read_byte(struct fx *f, bool aux)
{
    uint8_t st = status(f);
    assert_true(st & ST_OBF);
    assert_int_equal(!!(st & ST_AUXB), aux);
    return (uint8_t)harness_pio_read(f->h, DATA, 1);
}

static void expect_bytes(struct fx *f, bool aux, const uint8_t *want, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t b = read_byte(f, aux);
        if (b != want[i]) {
            fprintf(stderr, "byte %zu: got 0x%02x, want 0x%02x\n", i, b, want[i]);
            fail();
        }
    }
    assert_false(status(f) & ST_OBF);
}

#define EXPECT(f, aux, ...)                                            \
    do {                                                               \
        const uint8_t want_[] = { __VA_ARGS__ };                       \
        expect_bytes((f), (aux), want_, sizeof(want_));                \
    } while (0)

static void write_ctr(struct fx *f, uint8_t v)
{
    cmd(f, 0x60);
    data(f, v);
}

static uint8_t read_ctr(struct fx *f)
{
    cmd(f, 0x20);
    uint8_t v = read_byte(f, false);
    assert_false(status(f) & ST_OBF);
    return v;
}

/* ---- tests ---- */

static void test_self_test(void **state)
{
    struct fx *f = *state;
    assert_int_equal(status(f) & (ST_OBF | ST_SYS), 0);
    cmd(f, 0xaa);
    assert_true(status(f) & ST_CMD);
    EXPECT(f, false, 0x55);
    assert_true(status(f) & ST_SYS);
    cmd(f, 0xab);   /* keyboard interface test */
    EXPECT(f, false, 0x00);
    cmd(f, 0xa9);   /* aux interface test */
    EXPECT(f, false, 0x00);
}

static void test_command_byte(void **state)
{
    struct fx *f = *state;
    assert_int_equal(read_ctr(f), CTR_KBDINT | CTR_AUXDIS | CTR_XLATE);
    write_ctr(f, 0x00);
    assert_false(status(f) & ST_CMD);   /* last write went to the data port */
    assert_int_equal(read_ctr(f), 0x00);
    write_ctr(f, CTR_AUXDIS | CTR_KBDDIS | 0x04);
    assert_int_equal(read_ctr(f), 0x34);
    assert_true(status(f) & ST_SYS);   /* the SYS bit follows the command byte */
    /* Enable/disable commands flip the disable bits (Linux checks this). */
    cmd(f, 0xa8);
    assert_int_equal(read_ctr(f) & CTR_AUXDIS, 0);
    cmd(f, 0xa7);
    assert_int_equal(read_ctr(f) & CTR_AUXDIS, CTR_AUXDIS);
    cmd(f, 0xae);
    assert_int_equal(read_ctr(f) & CTR_KBDDIS, 0);
    cmd(f, 0xad);
    assert_int_equal(read_ctr(f) & CTR_KBDDIS, CTR_KBDDIS);
    /* Other controller RAM bytes are plain storage. */
    cmd(f, 0x65);
    data(f, 0x5a);
    cmd(f, 0x25);
    EXPECT(f, false, 0x5a);
    /* Input port: keyboard not inhibited. */
    cmd(f, 0xc0);
    assert_true(read_byte(f, false) & 0x80);
}

static void test_keyboard_commands(void **state)
{
    struct fx *f = *state;
    write_ctr(f, 0x00);   /* no translation, no interrupts */
    data(f, 0xff);
    EXPECT(f, false, 0xfa, 0xaa);
    data(f, 0xf2);
    EXPECT(f, false, 0xfa, 0xab, 0x83);
    data(f, 0xee);
    EXPECT(f, false, 0xee);
    data(f, 0xed);
    EXPECT(f, false, 0xfa);
    data(f, 0x05);
    EXPECT(f, false, 0xfa);
    assert_int_equal(i8042_kbd_leds(f->k), 0x05);
    data(f, 0xf3);
    data(f, 0x20);
    EXPECT(f, false, 0xfa, 0xfa);
    /* Scan code set: get, set 1, get. */
    data(f, 0xf0);
    data(f, 0x00);
    EXPECT(f, false, 0xfa, 0xfa, 0x02);
    data(f, 0xf0);
    data(f, 0x01);
    EXPECT(f, false, 0xfa, 0xfa);
    data(f, 0xf0);
    data(f, 0x00);
    EXPECT(f, false, 0xfa, 0xfa, 0x01);
    data(f, 0xf0);
    data(f, 0x09);   /* no such set */
    EXPECT(f, false, 0xfa, 0xfe);
    data(f, 0xf6);
    EXPECT(f, false, 0xfa);
    data(f, 0xf0);
    data(f, 0x00);
    EXPECT(f, false, 0xfa, 0xfa, 0x02);
    data(f, 0x42);   /* not a command */
    EXPECT(f, false, 0xfe);
    data(f, 0xfe);   /* resend: the last byte again */
    EXPECT(f, false, 0xfe);
    /* Disabled scanning drops keys; enabling brings them back. */
    data(f, 0xf5);
    EXPECT(f, false, 0xfa);
    i8042_kbd_put(f->k, (const uint8_t[]){ 0x1c }, 1);
    assert_false(status(f) & ST_OBF);
    data(f, 0xf4);
    EXPECT(f, false, 0xfa);
    i8042_kbd_put(f->k, (const uint8_t[]){ 0x1c }, 1);
    EXPECT(f, false, 0x1c);
}

static void test_identify_translated(void **state)
{
    struct fx *f = *state;
    write_ctr(f, CTR_XLATE);
    data(f, 0xf2);
    /* The translator turns the 83 of an MF2 keyboard into 41. */
    EXPECT(f, false, 0xfa, 0xab, 0x41);
    data(f, 0xf0);
    data(f, 0x00);
    EXPECT(f, false, 0xfa, 0xfa, 0x41);
}

static void test_translation(void **state)
{
    struct fx *f = *state;
    write_ctr(f, CTR_XLATE);
    /* 'A' press and release, Right arrow, Left Ctrl, F7, Pause. */
    i8042_kbd_put(f->k, (const uint8_t[]){ 0x1c }, 1);
    EXPECT(f, false, 0x1e);
    i8042_kbd_put(f->k, (const uint8_t[]){ 0xf0, 0x1c }, 2);
    EXPECT(f, false, 0x9e);
    i8042_kbd_put(f->k, (const uint8_t[]){ 0xe0, 0x74, 0xe0, 0xf0, 0x74 }, 5);
    EXPECT(f, false, 0xe0, 0x4d, 0xe0, 0xcd);
    i8042_kbd_put(f->k, (const uint8_t[]){ 0x14, 0xf0, 0x14 }, 3);
    EXPECT(f, false, 0x1d, 0x9d);
    i8042_kbd_put(f->k, (const uint8_t[]){ 0x83, 0xf0, 0x83 }, 3);
    EXPECT(f, false, 0x41, 0xc1);
    i8042_kbd_put(f->k, (const uint8_t[]){ 0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77 }, 8);
    EXPECT(f, false, 0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5);
    /* Without translation the codes pass as they are. */
    write_ctr(f, 0x00);
    i8042_kbd_put(f->k, (const uint8_t[]){ 0xf0, 0x1c }, 2);
    EXPECT(f, false, 0xf0, 0x1c);
    /* A keyboard switched to set 1 converts by itself. */
    data(f, 0xf0);
    data(f, 0x01);
    EXPECT(f, false, 0xfa, 0xfa);
    i8042_kbd_put(f->k, (const uint8_t[]){ 0x29, 0xf0, 0x29 }, 3);
    EXPECT(f, false, 0x39, 0xb9);
}

static void test_keyboard_overrun(void **state)
{
    struct fx *f = *state;
    write_ctr(f, 0x00);
    for (int i = 0; i < 100; i++)
        i8042_kbd_put(f->k, (const uint8_t[]){ 0x1c, 0xf0, 0x1c }, 3);
    /* Whole events up to the buffer, then one overrun code (set 2: 00). */
    unsigned n = 0, zeros = 0;
    uint8_t last = 0;
    while (status(f) & ST_OBF) {
        last = read_byte(f, false);
        zeros += last == 0x00;
        n++;
        assert_true(n < 200);
    }
    assert_int_equal(zeros, 1);
    assert_int_equal(last, 0x00);
    /* Never more than a driver's 16-read flush can empty. */
    assert_true(n <= 16);
    assert_int_equal((n - 1) % 3, 0);
    /* Afterwards keys flow again. */
    i8042_kbd_put(f->k, (const uint8_t[]){ 0x1c }, 1);
    EXPECT(f, false, 0x1c);
}

static void test_mouse_through_d4(void **state)
{
    struct fx *f = *state;
    write_ctr(f, CTR_AUXDIS);
    cmd(f, 0xd4);
    data(f, 0xff);
    /* The aux interface is disabled: the reply waits. */
    assert_false(status(f) & ST_OBF);
    cmd(f, 0xa8);
    EXPECT(f, true, 0xfa, 0xaa, 0x00);
    cmd(f, 0xd4);
    data(f, 0xf2);
    EXPECT(f, true, 0xfa, 0x00);
    /* Status: defaults are stream mode, disabled, 1:1, res 2, 100/s. */
    cmd(f, 0xd4);
    data(f, 0xe9);
    EXPECT(f, true, 0xfa, 0x00, 0x02, 0x64);
    cmd(f, 0xd4);
    data(f, 0xe8);
    cmd(f, 0xd4);
    data(f, 0x03);
    cmd(f, 0xd4);
    data(f, 0xe7);
    cmd(f, 0xd4);
    data(f, 0xf4);
    cmd(f, 0xd4);
    data(f, 0xe9);
    EXPECT(f, true, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0x30, 0x03, 0x64);
    /* IntelliMouse: sample rates 200, 100, 80 turn on the wheel. */
    static const uint8_t knock[] = { 200, 100, 80 };
    for (size_t i = 0; i < 3; i++) {
        cmd(f, 0xd4);
        data(f, 0xf3);
        cmd(f, 0xd4);
        data(f, knock[i]);
        EXPECT(f, true, 0xfa, 0xfa);
    }
    cmd(f, 0xd4);
    data(f, 0xf2);
    EXPECT(f, true, 0xfa, 0x03);
    /* Bad arguments and unknown commands are answered with FE. */
    cmd(f, 0xd4);
    data(f, 0xf3);
    cmd(f, 0xd4);
    data(f, 0x07);
    EXPECT(f, true, 0xfa, 0xfe);
    cmd(f, 0xd4);
    data(f, 0x01);
    EXPECT(f, true, 0xfe);
    /* D3 writes the aux output buffer (Linux's aux loop test). */
    cmd(f, 0xd3);
    data(f, 0x5a);
    EXPECT(f, true, 0x5a);
    /* D2 writes the keyboard output buffer. */
    cmd(f, 0xd2);
    data(f, 0xa5);
    EXPECT(f, false, 0xa5);
}

static void mouse_enable(struct fx *f)
{
    cmd(f, 0xa8);
    cmd(f, 0xd4);
    data(f, 0xf4);
    EXPECT(f, true, 0xfa);
}

static void test_mouse_packets(void **state)
{
    struct fx *f = *state;
    write_ctr(f, 0x00);
    /* Motion while reporting is off is not sent. */
    i8042_mouse_move(f->k, 5, 5, 0, 0);
    assert_false(status(f) & ST_OBF);
    mouse_enable(f);
    /* Right 5, up 3 (screen dy -3), left button. */
    i8042_mouse_move(f->k, 5, -3, 0, I8042_BTN_LEFT);
    EXPECT(f, true, 0x09, 0x05, 0x03);
    /* Left 2, down 4: both sign bits. */
    i8042_mouse_move(f->k, -2, 4, 0, 0);
    EXPECT(f, true, 0x38, 0xfe, 0xfc);
    /* Buttons alone make a packet; no change, no packet. */
    i8042_mouse_move(f->k, 0, 0, 0, I8042_BTN_RIGHT | I8042_BTN_MIDDLE);
    EXPECT(f, true, 0x0e, 0x00, 0x00);
    i8042_mouse_move(f->k, 0, 0, 0, I8042_BTN_RIGHT | I8042_BTN_MIDDLE);
    assert_false(status(f) & ST_OBF);
    /* Large motion is split into packets of at most 255. */
    i8042_mouse_move(f->k, 600, 0, 0, 0);
    EXPECT(f, true, 0x08, 0xff, 0x00, 0x08, 0xff, 0x00, 0x08, 0x5a, 0x00);
    /* Remote mode: nothing is sent until the guest reads. */
    cmd(f, 0xd4);
    data(f, 0xf0);
    EXPECT(f, true, 0xfa);
    i8042_mouse_move(f->k, 7, 0, 0, 0);
    assert_false(status(f) & ST_OBF);
    cmd(f, 0xd4);
    data(f, 0xeb);
    EXPECT(f, true, 0xfa, 0x08, 0x07, 0x00);
}

static void test_keyboard_irq(void **state)
{
    struct fx *f = *state;
    write_ctr(f, CTR_KBDINT);
    assert_false(f->h->irq_level[1]);
    unsigned raises = f->h->irq_raises[1];
    i8042_kbd_put(f->k, (const uint8_t[]){ 0x1c, 0xf0, 0x1c }, 3);
    assert_true(f->h->irq_level[1]);
    assert_int_equal(f->h->irq_raises[1], raises + 1);
    /* Each byte read lowers the line and the next raises it again. */
    (void)read_byte(f, false);
    assert_int_equal(f->h->irq_raises[1], raises + 2);
    (void)read_byte(f, false);
    assert_int_equal(f->h->irq_raises[1], raises + 3);
    (void)read_byte(f, false);
    assert_false(f->h->irq_level[1]);
    assert_false(f->h->irq_level[12]);
    /* Interrupts off: the byte is there, the line stays low. */
    write_ctr(f, 0x00);
    raises = f->h->irq_raises[1];
    i8042_kbd_put(f->k, (const uint8_t[]){ 0x1c }, 1);
    assert_true(status(f) & ST_OBF);
    assert_false(f->h->irq_level[1]);
    (void)read_byte(f, false);
    assert_int_equal(f->h->irq_raises[1], raises);
    /* Keyboard interface disabled: the key waits in the keyboard. */
    write_ctr(f, CTR_KBDINT | CTR_KBDDIS);
    i8042_kbd_put(f->k, (const uint8_t[]){ 0x1c }, 1);
    assert_false(status(f) & ST_OBF);
    assert_false(f->h->irq_level[1]);
    cmd(f, 0xae);
    assert_true(f->h->irq_level[1]);
    (void)read_byte(f, false);
    assert_false(f->h->irq_level[1]);
}

static void test_mouse_irq(void **state)
{
    struct fx *f = *state;
    write_ctr(f, CTR_AUXINT);
    mouse_enable(f);   /* the ACK itself raised IRQ 12 */
    assert_true(f->h->irq_raises[12] >= 1);
    unsigned raises = f->h->irq_raises[12];
    i8042_mouse_move(f->k, 1, 1, 0, 0);
    assert_true(f->h->irq_level[12]);
    assert_false(f->h->irq_level[1]);
    assert_int_equal(f->h->irq_raises[12], raises + 1);
    (void)read_byte(f, true);
    (void)read_byte(f, true);
    (void)read_byte(f, true);
    assert_false(f->h->irq_level[12]);
    /* AUX interrupts off: no IRQ 12, and keyboard data never uses it. */
    write_ctr(f, CTR_KBDINT);
    raises = f->h->irq_raises[12];
    i8042_mouse_move(f->k, 1, 1, 0, 0);
    assert_true(status(f) & ST_AUXB);
    assert_false(f->h->irq_level[12]);
    assert_false(f->h->irq_level[1]);
    EXPECT(f, true, 0x28, 0x01, 0xff);
    assert_int_equal(f->h->irq_raises[12], raises);
    /* Controller replies raise IRQ 1 when it is enabled. */
    cmd(f, 0xaa);
    assert_true(f->h->irq_level[1]);
    EXPECT(f, false, 0x55);
    assert_false(f->h->irq_level[1]);
}

static void test_reset_lines(void **state)
{
    struct fx *f = *state;
    assert_int_equal(f->h->resets, 0);
    cmd(f, 0xfe);
    assert_int_equal(f->h->resets, 1);
    cmd(f, 0xff);   /* pulses nothing */
    cmd(f, 0xfd);   /* bit 0 high: not the reset line */
    assert_int_equal(f->h->resets, 1);
    cmd(f, 0xf0);
    assert_int_equal(f->h->resets, 2);
    /* Output port: read, write with A20 off, then reset through bit 0. */
    cmd(f, 0xd0);
    uint8_t out = read_byte(f, false);
    assert_int_equal(out & 0x03, 0x03);
    assert_true(i8042_a20(f->k));
    cmd(f, 0xd1);
    data(f, 0x01);
    assert_false(i8042_a20(f->k));
    assert_int_equal(f->h->resets, 2);
    cmd(f, 0xd0);
    assert_int_equal(read_byte(f, false) & 0x03, 0x01);
    cmd(f, 0xd1);
    data(f, 0x02);
    assert_int_equal(f->h->resets, 3);
    /* A pending controller command is abandoned by the next command. */
    cmd(f, 0xd1);
    cmd(f, 0x20);
    (void)read_byte(f, false);
    data(f, 0x00);   /* goes to the keyboard, not the output port */
    assert_int_equal(f->h->resets, 3);
    EXPECT(f, false, 0xfe);
}

static void test_garbage(void **state)
{
    struct fx *f = *state;
    uint32_t x = 12345;
    for (int i = 0; i < 200000; i++) {
        x = x * 1103515245u + 12345u;
        uint8_t v = (uint8_t)(x >> 16);
        switch ((x >> 28) & 3) {
        case 0: harness_pio_write(f->h, CMD, 1, v); break;
        case 1: harness_pio_write(f->h, DATA, 1, v); break;
        case 2: (void)harness_pio_read(f->h, DATA, 1 + (v & 3)); break;
        case 3:
            if (v & 1)
                i8042_kbd_put(f->k, &v, 1);
            else
                i8042_mouse_move(f->k, (int8_t)v * 1000, -(int8_t)v, v & 7, v);
            break;
        }
    }
    /* Still a working controller: drain, then a clean self-test. */
    for (int i = 0; i < 1000 && (status(f) & ST_OBF); i++)
        (void)harness_pio_read(f->h, DATA, 1);
    write_ctr(f, 0x00);
    while (status(f) & ST_OBF)
        (void)harness_pio_read(f->h, DATA, 1);
    cmd(f, 0xaa);
    EXPECT(f, false, 0x55);
    data(f, 0xff);
    /* The keyboard may still have been waiting for an argument; a reset
     * is a command either way. */
    EXPECT(f, false, 0xfa, 0xaa);
    i8042_reset(f->k);
    assert_int_equal(read_ctr(f), CTR_KBDINT | CTR_AUXDIS | CTR_XLATE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_self_test, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyboard_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identify_translated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_translation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyboard_overrun, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mouse_through_d4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mouse_packets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyboard_irq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mouse_irq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
