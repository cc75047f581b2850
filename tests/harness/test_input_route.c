/* The machine's input routing (gui/input_route.c) over the real devices:
 * an i8042 and an xHCI controller with the USB tablet and keyboard, driven
 * by the spec-written xHCI driver and through ports 0x60/0x64.  Keys and
 * pointer input reach the PS/2 devices while the guest has not configured
 * the USB ones (or the controller is halted), the USB devices once it has,
 * and never both; a release goes where its press went. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "devices/i8042.h"
#include "devices/usb/hid.h"
#include "devices/usb/xhci.h"
#include "gui/input_route.h"
#include "gui/keymap.h"
#include "gui/ui.h"
#include "support/harness_platform.h"
#include "support/xhci_driver.h"

#define RAM_SIZE    (16u << 20)
#define MMIO_BASE   0xe0000000ULL
#define HEAP_BASE   (1u << 20)
#define PORT_TABLET 1
#define PORT_KBD    2
#define DCI_EP1_IN  3

#define KBC_DATA 0x60
#define KBC_CMD  0x64
#define ST_OBF   0x01
#define ST_AUXB  0x20

struct fx {
    struct harness *h;
    struct pci_bus bus;
    struct xhci *xhci;
    struct usb_tablet *tablet;
    struct usb_kbd *kbd;
    struct i8042 *kbc;
    struct xhci_drv d;
    struct input_route r;
    unsigned kbd_slot, tablet_slot;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->h = harness_new(RAM_SIZE);
    assert_non_null(f->h);
    harness_pci_bus_init(&f->bus, f->h);
    char err[256] = "";
    f->xhci = xhci_create(&f->h->plat, &f->bus, -1, err, sizeof(err));
    if (!f->xhci)
        fail_msg("xhci_create: %s", err);
    f->tablet = usb_tablet_new();
    f->kbd = usb_kbd_new();
    f->kbc = i8042_create(&f->h->plat);
    assert_non_null(f->tablet);
    assert_non_null(f->kbd);
    assert_non_null(f->kbc);
    assert_int_equal(xhci_attach(f->xhci, usb_tablet_device(f->tablet), 0, err, sizeof(err)), PORT_TABLET);
    assert_int_equal(xhci_attach(f->xhci, usb_kbd_device(f->kbd), 0, err, sizeof(err)), PORT_KBD);
    assert_int_equal(xd_probe(&f->d, f->h, &f->bus, MMIO_BASE, HEAP_BASE, RAM_SIZE), 0);
    input_route_init(&f->r, f->kbc, f->kbd, f->tablet);
    /* The guest's PS/2 side: untranslated set 2, no interrupts, the mouse
     * reporting. */
    harness_pio_write(f->h, KBC_CMD, 1, 0x60);
    harness_pio_write(f->h, KBC_DATA, 1, 0x00);
    harness_pio_write(f->h, KBC_CMD, 1, 0xa8);
    harness_pio_write(f->h, KBC_CMD, 1, 0xd4);
    harness_pio_write(f->h, KBC_DATA, 1, 0xf4);
    assert_int_equal(harness_pio_read(f->h, KBC_DATA, 1), 0xfa);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    xhci_destroy(f->xhci);
    usb_tablet_free(f->tablet);
    usb_kbd_free(f->kbd);
    i8042_destroy(f->kbc);
    harness_free(f->h);
    free(f);
    return 0;
}

/* --- the PS/2 side ---------------------------------------------------------- */

/* Everything the i8042 has for the guest from one port (aux: the mouse). */
static size_t ps2_read(struct fx *f, bool aux, uint8_t *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        uint8_t st = (uint8_t)harness_pio_read(f->h, KBC_CMD, 1);
        if (!(st & ST_OBF))
            return n;
        assert_int_equal(!!(st & ST_AUXB), aux);
        uint8_t b = (uint8_t)harness_pio_read(f->h, KBC_DATA, 1);
        if (n < cap)
            buf[n++] = b;
    }
}

static void expect_ps2(struct fx *f, bool aux, const uint8_t *want, size_t n)
{
    uint8_t got[64];
    size_t len = ps2_read(f, aux, got, sizeof(got));
    if (len != n || memcmp(got, want, n)) {
        fprintf(stderr, "PS/2 %s: got", aux ? "mouse" : "keyboard");
        for (size_t i = 0; i < len; i++)
            fprintf(stderr, " %02x", got[i]);
        fprintf(stderr, ", want");
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %02x", want[i]);
        fprintf(stderr, "\n");
        fail();
    }
}

#define EXPECT_PS2(f, aux, ...)                                        \
    do {                                                               \
        const uint8_t want_[] = { __VA_ARGS__ };                       \
        expect_ps2((f), (aux), want_, sizeof(want_));                  \
    } while (0)

static void expect_ps2_nothing(struct fx *f)
{
    assert_false(harness_pio_read(f->h, KBC_CMD, 1) & ST_OBF);
}

/* --- the USB side ------------------------------------------------------------- */

/* What a HID driver does: port reset, slot, address, configuration 1 and
 * its interrupt IN endpoint. */
static unsigned bring_up(struct fx *f, unsigned port)
{
    struct xhci_drv *d = &f->d;
    assert_true(xd_port_reset(d, port) & XD_PORT_PED);
    unsigned slot = 0;
    assert_int_equal(xd_enable_slot(d, &slot), XD_CC_SUCCESS);
    assert_int_equal(xd_address_device(d, slot, port, false), XD_CC_SUCCESS);
    assert_int_equal(xd_configure_ep(d, slot, DCI_EP1_IN, XD_EP_INTR_IN, 8, 6), XD_CC_SUCCESS);
    assert_int_equal(xd_control(d, slot, 0x00, 9, 1, 0, NULL, 0, NULL), XD_CC_SUCCESS);
    return slot;
}

static void start_usb(struct fx *f)
{
    assert_int_equal(xd_reset(&f->d), 0);
    assert_int_equal(xd_start(&f->d, 0, 0, 0), 0);
    f->tablet_slot = bring_up(f, PORT_TABLET);
    f->kbd_slot = bring_up(f, PORT_KBD);
    xd_drain_events(&f->d);
}

/* One report from the device in slot, which must have one (len: its size). */
static void usb_report(struct fx *f, unsigned slot, uint8_t *r, unsigned len)
{
    uint64_t buf = xd_alloc(&f->d, 64, 64);
    memset(f->h->ram + buf, 0xee, 8);
    xd_queue_normal(&f->d, slot, DCI_EP1_IN, buf, 8);
    uint32_t residual = 0;
    int cc = xd_wait_transfer(&f->d, slot, DCI_EP1_IN, &residual, 1000);
    assert_true(cc == XD_CC_SUCCESS || cc == XD_CC_SHORT_PACKET);
    assert_int_equal(8 - residual, len);
    xd_mem_read(&f->d, buf, r, len);
}

static void expect_kbd_report(struct fx *f, uint8_t mods, uint8_t key0, uint8_t key1)
{
    uint8_t r[8];
    usb_report(f, f->kbd_slot, r, 8);
    const uint8_t want[8] = { mods, 0, key0, key1 };
    assert_memory_equal(r, want, 8);
}

static void expect_tablet_report(struct fx *f, uint8_t buttons, uint16_t x, uint16_t y, int8_t wheel)
{
    uint8_t r[6];
    usb_report(f, f->tablet_slot, r, 6);
    assert_int_equal(r[0], buttons);
    assert_int_equal(r[1] | r[2] << 8, x);
    assert_int_equal(r[3] | r[4] << 8, y);
    assert_int_equal((int8_t)r[5], wheel);
}

static keymap_key key(const char *name)
{
    keymap_key k = keymap_key_by_name(name);
    assert_int_not_equal(k, 0);
    return k;
}

/* --- tests ---------------------------------------------------------------------- */

static void test_keys_follow_configuration(void **state)
{
    struct fx *f = *state;
    /* Nobody configured the USB keyboard: the PS/2 one types. */
    assert_false(input_route_kbd_usb(&f->r));
    input_route_key(&f->r, key("a"), true);
    input_route_key(&f->r, key("a"), false);
    EXPECT_PS2(f, false, 0x1c, 0xf0, 0x1c);
    assert_int_equal(usb_kbd_queued(f->kbd), 0);
    assert_true(input_route_kbd_idle(&f->r));

    /* Configured: the USB keyboard alone. */
    start_usb(f);
    assert_true(input_route_kbd_usb(&f->r));
    input_route_key(&f->r, key("ctrl"), true);
    input_route_key(&f->r, key("delete"), true);
    assert_false(input_route_kbd_idle(&f->r));
    input_route_key(&f->r, key("delete"), false);
    input_route_key(&f->r, key("ctrl"), false);
    expect_ps2_nothing(f);
    expect_kbd_report(f, 0x01, 0, 0);
    expect_kbd_report(f, 0x01, 0x4c, 0);
    expect_kbd_report(f, 0x01, 0, 0);
    expect_kbd_report(f, 0x00, 0, 0);
    assert_true(input_route_kbd_idle(&f->r));
    assert_int_equal(f->r.counts.ps2_keys, 2);
    assert_int_equal(f->r.counts.usb_keys, 4);

    /* The controller halted (an OS taking it over from the BIOS, or one
     * that has no USB driver): back to PS/2. */
    uint32_t cmd = xd_rd(&f->d, f->d.op, XD_USBCMD);
    xd_wr(&f->d, f->d.op, XD_USBCMD, cmd & ~XD_CMD_RS);
    assert_false(input_route_kbd_usb(&f->r));
    input_route_key(&f->r, key("up"), true);
    input_route_key(&f->r, key("up"), false);
    EXPECT_PS2(f, false, 0xe0, 0x75, 0xe0, 0xf0, 0x75);
    assert_int_equal(usb_kbd_queued(f->kbd), 0);

    /* A reset of the controller unconfigures the device. */
    xd_wr(&f->d, f->d.op, XD_USBCMD, cmd);
    assert_true(input_route_kbd_usb(&f->r));
    assert_int_equal(xd_reset(&f->d), 0);
    assert_false(input_route_kbd_usb(&f->r));
    input_route_key(&f->r, key("f1"), true);
    EXPECT_PS2(f, false, 0x05);
    input_route_key(&f->r, key("f1"), false);
    EXPECT_PS2(f, false, 0xf0, 0x05);
}

static void test_release_follows_press(void **state)
{
    struct fx *f = *state;
    /* Held on PS/2 while the guest configures USB: released on PS/2. */
    input_route_key(&f->r, key("shift"), true);
    EXPECT_PS2(f, false, 0x12);
    start_usb(f);
    input_route_key(&f->r, key("shift"), true);          /* auto-repeat */
    EXPECT_PS2(f, false, 0x12);
    input_route_key(&f->r, key("b"), true);
    input_route_key(&f->r, key("shift"), false);
    EXPECT_PS2(f, false, 0xf0, 0x12);
    expect_kbd_report(f, 0, 0x05, 0);
    assert_int_equal(usb_kbd_queued(f->kbd), 0);
    /* Held on USB while the controller stops: released on USB, where the
     * guest finds it when it runs the controller again. */
    uint32_t cmd = xd_rd(&f->d, f->d.op, XD_USBCMD);
    xd_wr(&f->d, f->d.op, XD_USBCMD, cmd & ~XD_CMD_RS);
    input_route_key(&f->r, key("b"), false);
    input_route_key(&f->r, key("c"), true);
    EXPECT_PS2(f, false, 0x21);
    xd_wr(&f->d, f->d.op, XD_USBCMD, cmd);
    expect_kbd_report(f, 0, 0, 0);
    input_route_key(&f->r, key("c"), false);
    EXPECT_PS2(f, false, 0xf0, 0x21);
    assert_int_equal(usb_kbd_queued(f->kbd), 0);
}

static void test_pointer_follows_configuration(void **state)
{
    struct fx *f = *state;
    /* No tablet in use: positions become PS/2 motion (y up in packets). */
    assert_false(input_route_pointer_usb(&f->r));
    input_route_pointer_abs(&f->r, 100, 100, 640, 480, 0, 0);
    expect_ps2_nothing(f);
    input_route_pointer_abs(&f->r, 110, 95, 640, 480, 0, UI_BTN_LEFT);
    EXPECT_PS2(f, true, 0x09, 0x0a, 0x05);
    /* The tablet configured: exact positions there, and the button held on
     * the PS/2 mouse is let go there. */
    start_usb(f);
    assert_true(input_route_pointer_usb(&f->r));
    input_route_pointer_abs(&f->r, 639, 479, 640, 480, 0, 0);
    EXPECT_PS2(f, true, 0x08, 0x00, 0x00);
    expect_tablet_report(f, 0, 32767, 32767, 0);
    input_route_pointer_abs(&f->r, 0, 240, 640, 480, 0, UI_BTN_RIGHT);
    expect_ps2_nothing(f);
    /* The last position is kept, with its screen, for status. */
    assert_true(f->r.have_pos);
    assert_int_equal(f->r.last_x, 0);
    assert_int_equal(f->r.last_y, 240);
    assert_int_equal(f->r.last_w, 640);
    assert_int_equal(f->r.last_h, 480);
    expect_tablet_report(f, 0, 0, 16418, 0);      /* 240 * 32767 / 479, rounded */
    expect_tablet_report(f, 2, 0, 16418, 0);
    /* A wheel notch towards the user is -1 on the tablet. */
    input_route_pointer_abs(&f->r, 0, 240, 640, 480, 1, UI_BTN_RIGHT);
    expect_tablet_report(f, 2, 0, 16418, -1);
    /* Relative motion (a front-end with the pointer grabbed) is the PS/2
     * mouse's; the tablet's button goes up. */
    input_route_pointer(&f->r, 3, 0, 0, 0);
    EXPECT_PS2(f, true, 0x08, 0x03, 0x00);
    expect_tablet_report(f, 0, 0, 16418, 0);
    assert_int_equal(f->r.counts.usb_pointer, 3);
    assert_int_equal(f->r.counts.ps2_pointer, 2);
}

/* A guest that reads its PS/2 keyboard slowly: keys typed faster than it
 * reads wait in the route, in order, instead of overrunning the
 * keyboard's 16-byte buffer, and go as it reads; send-keys' pacing
 * (kbd_idle) waits for them. */
static void test_ps2_keys_wait_for_room(void **state)
{
    struct fx *f = *state;
    static const char *const word[] = { "t", "y", "p", "e", "f", "a", "s", "t", "e", "r", "t", "h", "a", "n" };
    const size_t nk = sizeof(word) / sizeof(word[0]);
    for (size_t i = 0; i < nk; i++) {
        input_route_key(&f->r, key(word[i]), true);
        input_route_key(&f->r, key(word[i]), false);
    }
    /* 14 keys are 42 bytes: most wait. */
    assert_false(input_route_kbd_idle(&f->r));
    uint8_t want[64], got[64];
    size_t nw = 0, ng = 0;
    for (size_t i = 0; i < nk; i++) {
        uint8_t seq[KEYMAP_MAX_SEQ];
        nw += keymap_key_set2(key(word[i]), true, want + nw);
        size_t n = keymap_key_set2(key(word[i]), false, seq);
        memcpy(want + nw, seq, n);
        nw += n;
    }
    /* The guest reads one byte at a time, as an interrupt handler does. */
    for (int i = 0; i < 200 && ng < sizeof(got); i++) {
        uint8_t st = (uint8_t)harness_pio_read(f->h, KBC_CMD, 1);
        if (!(st & ST_OBF))
            break;
        got[ng++] = (uint8_t)harness_pio_read(f->h, KBC_DATA, 1);
    }
    if (ng != nw || memcmp(got, want, nw)) {
        fprintf(stderr, "got %zu bytes, want %zu:", ng, nw);
        for (size_t i = 0; i < ng; i++)
            fprintf(stderr, " %02x", got[i]);
        fprintf(stderr, "\n");
        fail();
    }
    assert_true(input_route_kbd_idle(&f->r));
    assert_int_equal(f->r.counts.ps2_keys, 2 * nk);
}

/* A machine without USB: everything goes to the i8042. */
static void test_no_usb(void **state)
{
    struct fx *f = *state;
    struct input_route r;
    input_route_init(&r, f->kbc, NULL, NULL);
    start_usb(f);
    assert_false(input_route_kbd_usb(&r));
    assert_false(input_route_pointer_usb(&r));
    assert_true(input_route_kbd_idle(&r));
    input_route_key(&r, key("ret"), true);
    input_route_key(&r, key("ret"), false);
    EXPECT_PS2(f, false, 0x5a, 0xf0, 0x5a);
    input_route_pointer_abs(&r, 10, 10, 640, 480, 0, 0);
    input_route_pointer_abs(&r, 12, 10, 640, 480, 0, 0);
    EXPECT_PS2(f, true, 0x08, 0x02, 0x00);
    assert_int_equal(usb_kbd_queued(f->kbd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keys_follow_configuration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_follows_press, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pointer_follows_configuration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_usb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ps2_keys_wait_for_room, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
