/* Intel 8042 keyboard controller, as on PC/AT and PS/2 machines, with a PS/2
 * keyboard on its first port and a PS/2 (IntelliMouse) mouse on the second.
 *
 * Ports: 0x60 data, 0x64 status (read) / command (write).  Interrupts:
 * GSI 1 while the output buffer holds a keyboard or controller byte and the
 * command byte enables it, GSI 12 likewise for mouse bytes.  A guest request
 * to pulse the reset line ends in platform_request(PLATFORM_RESET).
 *
 * The input functions below are for front-ends; like every device call they
 * must be made with the machine's device lock held. */
#ifndef BURROW_I8042_H
#define BURROW_I8042_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

struct platform;
struct i8042;

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT  0x64
#define I8042_KBD_GSI   1
#define I8042_AUX_GSI   12

/* Mouse buttons for i8042_mouse_move. */
#define I8042_BTN_LEFT   0x01
#define I8042_BTN_RIGHT  0x02
#define I8042_BTN_MIDDLE 0x04
#define I8042_BTN_SIDE   0x08   /* 4th button, IntelliMouse Explorer only */
#define I8042_BTN_EXTRA  0x10   /* 5th button, IntelliMouse Explorer only */

/* Keyboard LED bits as set by the guest (i8042_kbd_leds). */
#define I8042_LED_SCROLL 0x01
#define I8042_LED_NUM    0x02
#define I8042_LED_CAPS   0x04

/* Registers ports 0x60 and 0x64 on p->pio.  NULL if they are taken. */
struct i8042 *i8042_create(struct platform *p);
/* Machine reset: controller, keyboard and mouse to their power-on state. */
void i8042_reset(struct i8042 *k);
void i8042_destroy(struct i8042 *k);

/* Key events as scan code set 2 bytes (make "1c", break "f0 1c", extended
 * "e0 ..").  The keyboard sends them in the set the guest selected (2, or 1
 * converted; set 3 is not emulated and stays set 2), and the controller
 * translates them to set 1 while the command byte's translation bit is set.
 * Dropped while the guest has disabled scanning; a full buffer sends the
 * overrun code instead, as a real keyboard does. */
void i8042_kbd_put(struct i8042 *k, const uint8_t *scancodes, size_t n);
/* Whether a key event of n set-2 bytes put now would be taken whole (or
 * dropped because scanning is off) rather than overrun the buffer.  Who
 * types faster than the guest reads holds keys back while this is false
 * and puts them once the guest has read: see i8042_set_kbd_drained. */
bool i8042_kbd_has_room(const struct i8042 *k, size_t n);
/* drained(opaque) is called once the guest has taken keyboard bytes (at
 * the end of its port access, under the device lock): room may have
 * opened.  It may call i8042_kbd_put. */
void i8042_set_kbd_drained(struct i8042 *k, void (*drained)(void *opaque), void *opaque);

/* Relative mouse motion: dx > 0 right, dy > 0 down (screen direction),
 * dz > 0 wheel towards the user; buttons is the I8042_BTN_* set now held.
 * Sends packets only while the guest enabled reporting in stream mode;
 * large motion is split over several packets. */
void i8042_mouse_move(struct i8042 *k, int dx, int dy, int dz, unsigned buttons);

/* The LEDs the guest last set (I8042_LED_*). */
unsigned i8042_kbd_leds(const struct i8042 *k);
/* Output port bit 1: the A20 gate as the guest last programmed it.  The
 * controller only records it; gating memory is up to the machine. */
bool i8042_a20(const struct i8042 *k);

#endif
