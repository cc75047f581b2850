/* USB HID devices (Device Class Definition for HID 1.11, HID Usage Tables):
 * an absolute pointer (a tablet: X and Y 0..32767, three buttons, a wheel)
 * and a boot-protocol keyboard (8-byte reports, LEDs through SET_REPORT).
 * Both are full-speed devices with one interrupt IN endpoint, 0x81, that
 * completes a transfer when a report is queued and NAKs otherwise.
 *
 * The display front-ends call the input functions below under the device
 * lock (from the I/O thread).  Reports are queued only while the guest has
 * the device configured; the queue is bounded, and when it is full the
 * newest report replaces the last one queued, so the guest always ends up
 * with the current state.  The keyboard first keeps up to 256 key events
 * in order behind a full queue, so that keys typed faster than the guest
 * polls are not lost. */
#ifndef BURROW_USB_HID_H
#define BURROW_USB_HID_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/usb/usb.h"

#define USB_TABLET_MAX 32767

/* Buttons for usb_tablet_buttons (report bits, HID Button page 1-3). */
#define USB_TABLET_LEFT   1u
#define USB_TABLET_RIGHT  2u
#define USB_TABLET_MIDDLE 4u

/* Keyboard LEDs as the guest set them (HID LED page usages 1-5). */
#define USB_KBD_LED_NUM     1u
#define USB_KBD_LED_CAPS    2u
#define USB_KBD_LED_SCROLL  4u
#define USB_KBD_LED_COMPOSE 8u
#define USB_KBD_LED_KANA    16u

struct usb_tablet;
struct usb_kbd;

struct usb_tablet *usb_tablet_new(void);
/* Detach it from its host first. */
void usb_tablet_free(struct usb_tablet *t);
struct usb_device *usb_tablet_device(struct usb_tablet *t);
/* The pointer at pixel (x, y) of a width x height screen: 0 and width-1
 * (height-1) map exactly to 0 and USB_TABLET_MAX, the rest rounded to the
 * nearest step; positions outside the screen are clamped to its edge. */
void usb_tablet_move(struct usb_tablet *t, int x, int y, int width, int height);
/* Buttons held now (USB_TABLET_*). */
void usb_tablet_buttons(struct usb_tablet *t, unsigned buttons);
/* Wheel clicks, positive away from the user; at most 127 a report. */
void usb_tablet_wheel(struct usb_tablet *t, int clicks);

/* Whether the guest takes the tablet's reports: it configured the device
 * and its host controller runs with the device's port enabled (see
 * usb_device_active()).  A machine sends pointer input elsewhere (a PS/2
 * mouse) while it is not. */
bool usb_tablet_active(const struct usb_tablet *t);

struct usb_kbd *usb_kbd_new(void);
void usb_kbd_free(struct usb_kbd *k);
struct usb_device *usb_kbd_device(struct usb_kbd *k);
/* A key pressed or released, by its HID Keyboard/Keypad page usage
 * (0x04 'a' .. 0xe7 right GUI; SDL scancodes are these numbers).  Usages
 * 0xe0-0xe7 are the modifiers.  More than six keys held report
 * ErrorRollOver, as the boot protocol says. */
void usb_kbd_key(struct usb_kbd *k, unsigned usage, bool down);
/* USB_KBD_LED_* bits the guest last set. */
unsigned usb_kbd_leds(const struct usb_kbd *k);
/* As usb_tablet_active(), for the keyboard. */
bool usb_kbd_active(const struct usb_kbd *k);
/* Reports and key events queued and not yet taken by the guest. */
unsigned usb_kbd_queued(const struct usb_kbd *k);

#endif
