/* USB HID tablet and boot keyboard (HID 1.11; usages from the HID Usage
 * Tables: Generic Desktop, Button, Keyboard/Keypad and LED pages). */
#include "devices/usb/hid.h"

#include <stdlib.h>
#include <string.h>

#include "devices/util.h"

/* Class requests (HID 1.11, 7.2) and class descriptors (7.1). */
#define HID_GET_REPORT    0x01
#define HID_GET_IDLE      0x02
#define HID_GET_PROTOCOL  0x03
#define HID_SET_REPORT    0x09
#define HID_SET_IDLE      0x0a
#define HID_SET_PROTOCOL  0x0b
#define HID_DT_HID        0x21
#define HID_DT_REPORT     0x22
#define HID_REPORT_INPUT  1
#define HID_REPORT_OUTPUT 2

#define HID_QUEUE   16       /* reports waiting for the guest */
#define REPORT_MAX  8
#define KBD_KEYS    6        /* key array of the boot report */
#define KBD_HELD    32       /* keys tracked as held */
#define KBD_EVENTS  256      /* key events waiting for room in the report queue */
#define USAGE_ROLLOVER 0x01
#define USAGE_LCTRL    0xe0
#define USAGE_RGUI     0xe7

/* Vendor 0x1209 is pid.codes, the vendor id open projects share; product
 * 0x0001 is its id for testing, used until the project has ids of its own.
 * No driver's quirk table names it, and HID drivers bind by class. */
#define HID_VENDOR  0x1209
#define HID_PRODUCT 0x0001

enum hid_kind { HID_TABLET, HID_KBD };

struct usb_hid {
    struct usb_device dev;
    enum hid_kind kind;
    const uint8_t *report_desc;
    unsigned report_desc_len;
    unsigned report_len;
    uint8_t queue[HID_QUEUE][REPORT_MAX];
    unsigned head, count;
    uint8_t idle;            /* SET_IDLE rate (reports go out on change only) */
    uint8_t protocol;        /* 0 boot, 1 report */
    /* tablet */
    uint16_t x, y;
    uint8_t buttons;
    /* keyboard */
    uint8_t mods;
    uint8_t held[KBD_HELD];  /* in press order */
    unsigned nheld;
    uint8_t leds;
    struct {                 /* typed faster than the guest takes reports */
        uint8_t usage;
        bool down;
    } events[KBD_EVENTS];
    unsigned ev_head, ev_count;
};

struct usb_tablet { struct usb_hid h; };
struct usb_kbd { struct usb_hid h; };

/* --- descriptors ----------------------------------------------------- */

/* An absolute pointer: buttons 1-3, X and Y 0..32767, a relative wheel. */
static const uint8_t tablet_report_desc[] = {
    0x05, 0x01,             /* Usage Page (Generic Desktop) */
    0x09, 0x02,             /* Usage (Mouse) */
    0xa1, 0x01,             /* Collection (Application) */
    0x09, 0x01,             /*   Usage (Pointer) */
    0xa1, 0x00,             /*   Collection (Physical) */
    0x05, 0x09,             /*     Usage Page (Button) */
    0x19, 0x01,             /*     Usage Minimum (1) */
    0x29, 0x03,             /*     Usage Maximum (3) */
    0x15, 0x00,             /*     Logical Minimum (0) */
    0x25, 0x01,             /*     Logical Maximum (1) */
    0x95, 0x03,             /*     Report Count (3) */
    0x75, 0x01,             /*     Report Size (1) */
    0x81, 0x02,             /*     Input (Data, Variable, Absolute) */
    0x95, 0x01,             /*     Report Count (1) */
    0x75, 0x05,             /*     Report Size (5) */
    0x81, 0x01,             /*     Input (Constant): padding */
    0x05, 0x01,             /*     Usage Page (Generic Desktop) */
    0x09, 0x30,             /*     Usage (X) */
    0x09, 0x31,             /*     Usage (Y) */
    0x15, 0x00,             /*     Logical Minimum (0) */
    0x26, 0xff, 0x7f,       /*     Logical Maximum (32767) */
    0x35, 0x00,             /*     Physical Minimum (0) */
    0x46, 0xff, 0x7f,       /*     Physical Maximum (32767) */
    0x75, 0x10,             /*     Report Size (16) */
    0x95, 0x02,             /*     Report Count (2) */
    0x81, 0x02,             /*     Input (Data, Variable, Absolute) */
    0x09, 0x38,             /*     Usage (Wheel) */
    0x15, 0x81,             /*     Logical Minimum (-127) */
    0x25, 0x7f,             /*     Logical Maximum (127) */
    0x35, 0x00,             /*     Physical Minimum (0) */
    0x45, 0x00,             /*     Physical Maximum (0): none */
    0x75, 0x08,             /*     Report Size (8) */
    0x95, 0x01,             /*     Report Count (1) */
    0x81, 0x06,             /*     Input (Data, Variable, Relative) */
    0xc0,                   /*   End Collection */
    0xc0,                   /* End Collection */
};

/* The boot keyboard (HID 1.11 appendix B.1), with the key array covering
 * usages 0-255 so that keys past 0x65 (F13-F24, the international keys)
 * reach the guest too. */
static const uint8_t kbd_report_desc[] = {
    0x05, 0x01,             /* Usage Page (Generic Desktop) */
    0x09, 0x06,             /* Usage (Keyboard) */
    0xa1, 0x01,             /* Collection (Application) */
    0x05, 0x07,             /*   Usage Page (Keyboard/Keypad) */
    0x19, 0xe0,             /*   Usage Minimum (Left Control) */
    0x29, 0xe7,             /*   Usage Maximum (Right GUI) */
    0x15, 0x00,             /*   Logical Minimum (0) */
    0x25, 0x01,             /*   Logical Maximum (1) */
    0x75, 0x01,             /*   Report Size (1) */
    0x95, 0x08,             /*   Report Count (8) */
    0x81, 0x02,             /*   Input (Data, Variable, Absolute): modifiers */
    0x95, 0x01,             /*   Report Count (1) */
    0x75, 0x08,             /*   Report Size (8) */
    0x81, 0x01,             /*   Input (Constant): reserved byte */
    0x95, 0x05,             /*   Report Count (5) */
    0x75, 0x01,             /*   Report Size (1) */
    0x05, 0x08,             /*   Usage Page (LEDs) */
    0x19, 0x01,             /*   Usage Minimum (Num Lock) */
    0x29, 0x05,             /*   Usage Maximum (Kana) */
    0x91, 0x02,             /*   Output (Data, Variable, Absolute): LEDs */
    0x95, 0x01,             /*   Report Count (1) */
    0x75, 0x03,             /*   Report Size (3) */
    0x91, 0x01,             /*   Output (Constant): padding */
    0x95, 0x06,             /*   Report Count (6) */
    0x75, 0x08,             /*   Report Size (8) */
    0x15, 0x00,             /*   Logical Minimum (0) */
    0x26, 0xff, 0x00,       /*   Logical Maximum (255) */
    0x05, 0x07,             /*   Usage Page (Keyboard/Keypad) */
    0x19, 0x00,             /*   Usage Minimum (0) */
    0x2a, 0xff, 0x00,       /*   Usage Maximum (255) */
    0x81, 0x00,             /*   Input (Data, Array): keys */
    0xc0,                   /* End Collection */
};

enum { STR_MANUFACTURER = 1, STR_PRODUCT, STR_SERIAL, STR_COUNT };

static const char *const tablet_strings[STR_COUNT] = {
    [STR_MANUFACTURER] = "Burrow", [STR_PRODUCT] = "Burrow USB Tablet", [STR_SERIAL] = "BT-0001",
};
static const char *const kbd_strings[STR_COUNT] = {
    [STR_MANUFACTURER] = "Burrow", [STR_PRODUCT] = "Burrow USB Keyboard", [STR_SERIAL] = "BK-0001",
};

/* Device descriptor (USB 2.0, 9.6.1): full speed, 64-byte endpoint 0. */
#define DEVICE_DESC(release) {                                                     \
    18, USB_DT_DEVICE, 0x00, 0x02, 0, 0, 0, 64,                                    \
    HID_VENDOR & 0xff, HID_VENDOR >> 8, HID_PRODUCT & 0xff, HID_PRODUCT >> 8,      \
    (release) & 0xff, (release) >> 8, STR_MANUFACTURER, STR_PRODUCT, STR_SERIAL, 1 }

static const uint8_t tablet_device_desc[18] = DEVICE_DESC(0x0100);
static const uint8_t kbd_device_desc[18] = DEVICE_DESC(0x0101);

/* Configuration 1: one HID interface, one interrupt IN endpoint polled
 * every 10 ms; bus powered, remote wakeup.  The interface's subclass and
 * protocol say boot keyboard (1, 1) or neither (0, 0). */
#define CONFIG_DESC(subclass, protocol, report_len) {                              \
    9, USB_DT_CONFIG, 34, 0, 1, 1, 0, 0xa0, 50,                                    \
    9, USB_DT_INTERFACE, 0, 0, 1, 3, (subclass), (protocol), 0,                    \
    9, HID_DT_HID, 0x11, 0x01, 0, 1, HID_DT_REPORT, (report_len) & 0xff, (report_len) >> 8, \
    7, USB_DT_ENDPOINT, 0x81, 0x03, 8, 0, 10 }

static const uint8_t tablet_config_desc[34] = CONFIG_DESC(0, 0, sizeof(tablet_report_desc));
static const uint8_t kbd_config_desc[34] = CONFIG_DESC(1, 1, sizeof(kbd_report_desc));

static const struct usb_descriptors tablet_descs = {
    .device = tablet_device_desc, .config = tablet_config_desc,
    .strings = tablet_strings, .nstrings = STR_COUNT,
};
static const struct usb_descriptors kbd_descs = {
    .device = kbd_device_desc, .config = kbd_config_desc,
    .strings = kbd_strings, .nstrings = STR_COUNT,
};

/* --- reports ---------------------------------------------------------- */

static void current_report(const struct usb_hid *h, uint8_t *r)
{
    memset(r, 0, REPORT_MAX);
    if (h->kind == HID_TABLET) {
        r[0] = h->buttons;
        r[1] = (uint8_t)h->x;
        r[2] = (uint8_t)(h->x >> 8);
        r[3] = (uint8_t)h->y;
        r[4] = (uint8_t)(h->y >> 8);
        r[5] = 0;                     /* wheel: only in the report it moved in */
        return;
    }
    r[0] = h->mods;
    if (h->nheld > KBD_KEYS)
        memset(&r[2], USAGE_ROLLOVER, KBD_KEYS);
    else
        memcpy(&r[2], h->held, h->nheld);
}

static uint8_t *queue_slot(struct usb_hid *h, unsigned i)
{
    return h->queue[(h->head + i) % HID_QUEUE];
}

/* Queues the current state (with a wheel movement for the tablet). */
static void queue_report(struct usb_hid *h, int wheel)
{
    if (h->dev.config == 0)
        return;      /* nobody listens yet: the state is sent when it changes next */
    uint8_t r[REPORT_MAX];
    current_report(h, r);
    r[5] = h->kind == HID_TABLET ? (uint8_t)(int8_t)wheel : r[5];
    uint8_t *last = h->count ? queue_slot(h, h->count - 1) : NULL;
    /* A move after a move with the same buttons replaces it; so does
     * anything once the queue is full (the wheel adds up, within range). */
    bool merge = last && h->kind == HID_TABLET && last[0] == r[0] && last[5] == 0 && wheel == 0;
    if (last && (merge || h->count == HID_QUEUE)) {
        if (h->kind == HID_TABLET) {
            int w = (int8_t)last[5] + wheel;
            r[5] = (uint8_t)(int8_t)(w > 127 ? 127 : w < -127 ? -127 : w);
        }
        memcpy(last, r, REPORT_MAX);
    } else {
        memcpy(queue_slot(h, h->count), r, REPORT_MAX);
        h->count++;
    }
    usb_wakeup(&h->dev, 1, true);
}

static unsigned scale(int v, int size)
{
    if (size <= 1 || v <= 0)
        return 0;
    if (v >= size - 1)
        return USB_TABLET_MAX;
    return (unsigned)(((uint64_t)v * USB_TABLET_MAX + (uint64_t)(size - 1) / 2) / (uint64_t)(size - 1));
}

void usb_tablet_move(struct usb_tablet *t, int x, int y, int width, int height)
{
    struct usb_hid *h = &t->h;
    uint16_t nx = (uint16_t)scale(x, width), ny = (uint16_t)scale(y, height);
    if (nx == h->x && ny == h->y)
        return;
    h->x = nx;
    h->y = ny;
    queue_report(h, 0);
}

void usb_tablet_buttons(struct usb_tablet *t, unsigned buttons)
{
    struct usb_hid *h = &t->h;
    buttons &= USB_TABLET_LEFT | USB_TABLET_RIGHT | USB_TABLET_MIDDLE;
    if (buttons == h->buttons)
        return;
    h->buttons = (uint8_t)buttons;
    queue_report(h, 0);
}

void usb_tablet_wheel(struct usb_tablet *t, int clicks)
{
    if (clicks == 0)
        return;
    queue_report(&t->h, clicks > 127 ? 127 : clicks < -127 ? -127 : clicks);
}

/* A key event on the keyboard's state, queueing the report it changes. */
static void kbd_apply(struct usb_hid *h, unsigned usage, bool down)
{
    if (usage >= USAGE_LCTRL && usage <= USAGE_RGUI) {
        uint8_t bit = (uint8_t)(1u << (usage - USAGE_LCTRL));
        uint8_t mods = down ? h->mods | bit : h->mods & (uint8_t)~bit;
        if (mods == h->mods)
            return;
        h->mods = mods;
        queue_report(h, 0);
        return;
    }
    if (usage <= 3 || usage > 0xff)
        return;      /* 0-3 are "no event" and the error codes, not keys */
    unsigned i = 0;
    while (i < h->nheld && h->held[i] != usage)
        i++;
    if (down == (i < h->nheld))
        return;      /* auto-repeat from the front-end, or a stray release */
    if (down) {
        if (h->nheld == KBD_HELD)
            return;
        h->held[h->nheld++] = (uint8_t)usage;
    } else {
        memmove(&h->held[i], &h->held[i + 1], h->nheld - i - 1);
        h->nheld--;
    }
    queue_report(h, 0);
}

/* Key events that waited for room go into reports while there is room. */
static void kbd_catch_up(struct usb_hid *h)
{
    while (h->ev_count && (h->count < HID_QUEUE || h->dev.config == 0)) {
        unsigned i = h->ev_head;
        h->ev_head = (h->ev_head + 1) % KBD_EVENTS;
        h->ev_count--;
        kbd_apply(h, h->events[i].usage, h->events[i].down);
    }
}

/* A full report queue would merge reports and lose the keys between them,
 * so events wait in order behind it; only when they overflow too does the
 * newest state win. */
void usb_kbd_key(struct usb_kbd *k, unsigned usage, bool down)
{
    struct usb_hid *h = &k->h;
    if (usage > 0xff)
        return;
    if (h->dev.config && (h->ev_count || h->count == HID_QUEUE)) {
        if (h->ev_count < KBD_EVENTS) {
            unsigned i = (h->ev_head + h->ev_count++) % KBD_EVENTS;
            h->events[i].usage = (uint8_t)usage;
            h->events[i].down = down;
            return;
        }
        kbd_catch_up(h);
    }
    kbd_apply(h, usage, down);
}

unsigned usb_kbd_leds(const struct usb_kbd *k)
{
    return k->h.leds;
}

bool usb_kbd_active(const struct usb_kbd *k)
{
    return usb_device_active(&k->h.dev);
}

unsigned usb_kbd_queued(const struct usb_kbd *k)
{
    return k->h.count + k->h.ev_count;
}

bool usb_tablet_active(const struct usb_tablet *t)
{
    return usb_device_active(&t->h.dev);
}

/* --- USB side --------------------------------------------------------- */

static enum usb_status hid_control(struct usb_device *d, struct usb_xfer *x)
{
    struct usb_hid *h = d->opaque;
    uint8_t type = x->setup[0], req = x->setup[1];
    uint16_t value = usb_setup_value(x), index = usb_setup_index(x);
    bool to_iface = (type & USB_RECIP_MASK) == USB_RECIP_INTERFACE && index == 0;

    /* The class descriptors hang off the interface (7.1.1). */
    if (type == (USB_DIR_IN | USB_TYPE_STANDARD | USB_RECIP_INTERFACE) &&
        req == USB_REQ_GET_DESCRIPTOR && to_iface && d->config) {
        if (value >> 8 == HID_DT_REPORT)
            return usb_control_reply(x, h->report_desc, h->report_desc_len);
        if (value >> 8 == HID_DT_HID)
            return usb_control_reply(x, &d->desc->config[18], 9);
        return USB_STALL;
    }
    if ((type & USB_TYPE_MASK) != USB_TYPE_CLASS)
        return usb_std_control(d, x);
    if (!to_iface || !d->config)
        return USB_STALL;
    uint8_t r[REPORT_MAX];
    switch (req) {
    case HID_GET_REPORT:
        if (value >> 8 != HID_REPORT_INPUT)
            return USB_STALL;
        current_report(h, r);
        return usb_control_reply(x, r, h->report_len);
    case HID_SET_REPORT:
        if (h->kind != HID_KBD || value >> 8 != HID_REPORT_OUTPUT || x->in)
            return USB_STALL;
        if (x->len >= 1)
            h->leds = x->buf[0] & 0x1f;
        x->actual = MIN(x->len, 1u);
        return USB_OK;
    case HID_GET_IDLE:
        return usb_control_reply(x, &h->idle, 1);
    case HID_SET_IDLE:
        h->idle = (uint8_t)(value >> 8);
        return USB_OK;
    case HID_GET_PROTOCOL:
        if (h->kind != HID_KBD)
            return USB_STALL;     /* only boot devices have protocols (7.2.5) */
        return usb_control_reply(x, &h->protocol, 1);
    case HID_SET_PROTOCOL:
        if (h->kind != HID_KBD || value > 1)
            return USB_STALL;
        h->protocol = (uint8_t)value;   /* the boot report is our report */
        return USB_OK;
    default:
        return USB_STALL;
    }
}

static enum usb_status hid_data(struct usb_device *d, struct usb_xfer *x)
{
    struct usb_hid *h = d->opaque;
    if (x->ep != 1 || !x->in)
        return USB_STALL;
    if (h->count == 0)
        return USB_NAK;
    const uint8_t *r = queue_slot(h, 0);
    uint32_t n = MIN(x->len, h->report_len);
    memcpy(x->buf, r, n);
    x->actual = n;
    h->head = (h->head + 1) % HID_QUEUE;
    h->count--;
    kbd_catch_up(h);
    return x->len < h->report_len ? USB_BABBLE : USB_OK;
}

static void hid_reset(struct usb_device *d)
{
    struct usb_hid *h = d->opaque;
    h->head = h->count = 0;
    h->idle = h->kind == HID_KBD ? 125 : 0;   /* 500 ms, the boot keyboard's default */
    h->protocol = 1;
    h->leds = 0;
    kbd_catch_up(h);        /* unconfigured: waiting keys change the state only */
}

/* A new configuration starts with an empty queue: the state goes out with
 * the next change. */
static void hid_configured(struct usb_device *d, uint8_t value)
{
    struct usb_hid *h = d->opaque;
    (void)value;
    h->head = h->count = 0;
    kbd_catch_up(h);
}

static const struct usb_device_ops hid_ops = {
    .control = hid_control,
    .data = hid_data,
    .reset = hid_reset,
    .configured = hid_configured,
};

static void hid_init(struct usb_hid *h, enum hid_kind kind)
{
    h->kind = kind;
    if (kind == HID_TABLET) {
        usb_device_init(&h->dev, "usb-tablet", USB_SPEED_FULL, &hid_ops, &tablet_descs, h);
        h->report_desc = tablet_report_desc;
        h->report_desc_len = sizeof(tablet_report_desc);
        h->report_len = 6;
    } else {
        usb_device_init(&h->dev, "usb-kbd", USB_SPEED_FULL, &hid_ops, &kbd_descs, h);
        h->report_desc = kbd_report_desc;
        h->report_desc_len = sizeof(kbd_report_desc);
        h->report_len = 8;
    }
    hid_reset(&h->dev);
}

struct usb_tablet *usb_tablet_new(void)
{
    struct usb_tablet *t = calloc(1, sizeof(*t));
    if (t)
        hid_init(&t->h, HID_TABLET);
    return t;
}

void usb_tablet_free(struct usb_tablet *t)
{
    free(t);
}

struct usb_device *usb_tablet_device(struct usb_tablet *t)
{
    return &t->h.dev;
}

struct usb_kbd *usb_kbd_new(void)
{
    struct usb_kbd *k = calloc(1, sizeof(*k));
    if (k)
        hid_init(&k->h, HID_KBD);
    return k;
}

void usb_kbd_free(struct usb_kbd *k)
{
    free(k);
}

struct usb_device *usb_kbd_device(struct usb_kbd *k)
{
    return &k->h.dev;
}
