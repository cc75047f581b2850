/* The xHCI controller with the USB tablet and keyboard, and a bulk
 * loopback device defined here, driven by the spec-written test driver:
 * identity and capabilities, enumeration through the root hub ports,
 * reports with exact coordinates, LEDs, MSI-X and INTx, bulk transfers
 * with chains, short packets, Event Data and immediate data, asynchronous
 * completion and Stop Endpoint, stalls and their recovery, hot-plug, and
 * malformed rings, contexts and commands, each followed by a reset and a
 * fresh enumeration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "devices/evloop.h"
#include "devices/usb/hid.h"
#include "devices/usb/usb.h"
#include "devices/usb/xhci.h"
#include "support/harness_platform.h"
#include "support/xhci_driver.h"

#define RAM_SIZE   (16u << 20)
#define MMIO_BASE  0xe0000000ULL
#define HEAP_BASE  (1u << 20)
#define MSI_ADDR   0xfee00000ULL
#define MSI_DATA   0x4041
#define NOT_RAM    0x7fff0000000ULL

#define PORT_TABLET   1
#define PORT_KBD      2
#define PORT_LOOP     5
#define DCI_EP1_IN    3
#define DCI_EP1_OUT   2
#define DCI_EP2_IN    5

/* --- a bulk loopback device: OUT on endpoint 1 fills a buffer that IN on
 * endpoint 2 drains; an IN with nothing to read is held (USB_ASYNC) and
 * finished from the event loop once data comes. -------------------------- */

static const uint8_t loop_device_desc[18] = {
    18, USB_DT_DEVICE, 0x00, 0x03, 0xff, 0, 0, 9, 0x09, 0x12, 0x02, 0x00, 0x00, 0x01, 0, 0, 0, 1,
};
static const uint8_t loop_config_desc[32] = {
    9, USB_DT_CONFIG, 32, 0, 1, 1, 0, 0x80, 10,
    9, USB_DT_INTERFACE, 0, 0, 2, 0xff, 0, 0, 0,
    7, USB_DT_ENDPOINT, 0x01, 0x02, 0x00, 0x02, 0,
    7, USB_DT_ENDPOINT, 0x82, 0x02, 0x00, 0x02, 0,
};
static const struct usb_descriptors loop_descs = { .device = loop_device_desc, .config = loop_config_desc };

struct loopdev {
    struct usb_device dev;
    struct evloop *loop;
    uint8_t data[4096];
    uint32_t used;
    struct usb_xfer *held;
    int timer;
    unsigned cancels;
    unsigned outs;              /* OUT transfers seen */
};

static void loop_fill(struct loopdev *l, struct usb_xfer *x)
{
    uint32_t n = x->len < l->used ? x->len : l->used;
    memcpy(x->buf, l->data, n);
    memmove(l->data, l->data + n, l->used - n);
    l->used -= n;
    x->actual = n;
}

static void loop_timer(void *opaque)
{
    struct loopdev *l = opaque;
    l->timer = -1;
    if (!l->held || !l->used)
        return;
    struct usb_xfer *x = l->held;
    l->held = NULL;
    loop_fill(l, x);
    x->status = USB_OK;
    usb_xfer_done(x);
}

static enum usb_status loop_control(struct usb_device *d, struct usb_xfer *x)
{
    return usb_std_control(d, x);
}

static enum usb_status loop_data(struct usb_device *d, struct usb_xfer *x)
{
    struct loopdev *l = d->opaque;
    if (x->ep == 1 && !x->in) {
        l->outs++;
        if (x->len >= 5 && !memcmp(x->buf, "STALL", 5))
            return USB_STALL;
        if (x->len > sizeof(l->data) - l->used)
            return USB_BABBLE;
        memcpy(l->data + l->used, x->buf, x->len);
        l->used += x->len;
        x->actual = x->len;
        if (l->held && l->timer < 0)
            l->timer = evloop_add_timer(l->loop, 1000, loop_timer, l);
        return USB_OK;
    }
    if (x->ep == 2 && x->in) {
        if (!l->used) {
            l->held = x;
            return USB_ASYNC;
        }
        loop_fill(l, x);
        return USB_OK;
    }
    return USB_STALL;
}

static void loop_cancel(struct usb_device *d, struct usb_xfer *x)
{
    struct loopdev *l = d->opaque;
    if (l->held == x) {
        l->held = NULL;
        l->cancels++;
    }
}

static const struct usb_device_ops loop_ops = {
    .control = loop_control, .data = loop_data, .cancel = loop_cancel,
};

/* --- an isochronous device (full speed): IN on endpoint 1 holds every
 * transfer until the test finishes it, in any order; OUT on endpoint 2
 * takes the data at once. ------------------------------------------------ */

static const uint8_t iso_device_desc[18] = {
    18, USB_DT_DEVICE, 0x00, 0x02, 0, 0, 0, 64, 0x09, 0x12, 0x03, 0x00, 0x00, 0x01, 0, 0, 0, 1,
};
static const uint8_t iso_config_desc[32] = {
    9, USB_DT_CONFIG, 32, 0, 1, 1, 0, 0x80, 10,
    9, USB_DT_INTERFACE, 0, 0, 2, 0xff, 0, 0, 0,
    7, USB_DT_ENDPOINT, 0x81, 0x01, 64, 0, 1,
    7, USB_DT_ENDPOINT, 0x02, 0x01, 64, 0, 1,
};
static const struct usb_descriptors iso_descs = { .device = iso_device_desc, .config = iso_config_desc };

#define ISO_HELD 64

struct isodev {
    struct usb_device dev;
    struct usb_xfer *held[ISO_HELD];  /* IN transfers in the order they came */
    unsigned nheld, in_seen, cancels, not_iso;
    uint8_t out[4096];
    uint32_t out_len;
};

static enum usb_status iso_data(struct usb_device *d, struct usb_xfer *x)
{
    struct isodev *s = d->opaque;
    if (!x->iso)
        s->not_iso++;
    if (x->ep == 1 && x->in) {
        s->in_seen++;
        assert_true(s->nheld < ISO_HELD);
        s->held[s->nheld++] = x;
        return USB_ASYNC;
    }
    if (x->ep == 2 && !x->in && s->out_len + x->len <= sizeof(s->out)) {
        memcpy(s->out + s->out_len, x->buf, x->len);
        s->out_len += x->len;
        x->actual = x->len;
        return USB_OK;
    }
    return USB_IOERROR;
}

static void iso_cancel(struct usb_device *d, struct usb_xfer *x)
{
    struct isodev *s = d->opaque;
    for (unsigned i = 0; i < s->nheld; i++) {
        if (s->held[i] == x) {
            memmove(&s->held[i], &s->held[i + 1], (s->nheld - i - 1) * sizeof(s->held[0]));
            s->nheld--;
            s->cancels++;
            return;
        }
    }
}

static const struct usb_device_ops iso_ops = {
    .control = loop_control, .data = iso_data, .cancel = iso_cancel,
};

/* Finishes held IN transfer i: n bytes of value fill, with status st. */
static void iso_finish(struct isodev *s, unsigned i, enum usb_status st, uint32_t n, uint8_t fill)
{
    assert_true(i < s->nheld);
    struct usb_xfer *x = s->held[i];
    memmove(&s->held[i], &s->held[i + 1], (s->nheld - i - 1) * sizeof(s->held[0]));
    s->nheld--;
    memset(x->buf, fill, n);
    x->actual = n;
    x->status = st;
    usb_xfer_done(x);
}

/* --- fixture ----------------------------------------------------------------- */

/* Calls of a usb_watch_active() callback and what it saw last. */
struct watch_count {
    unsigned calls;
    bool last;
};

struct fx {
    struct harness *h;
    struct pci_bus bus;
    struct xhci *xhci;
    struct usb_tablet *tablet;
    struct usb_kbd *kbd;
    struct loopdev loopdev;
    struct xhci_drv d;
    unsigned tablet_slot, kbd_slot, loop_slot;
    struct watch_count kbd_watch, tablet_watch;
    struct isodev *iso;            /* test_isochronous's, on port 3 */
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
    assert_non_null(f->tablet);
    assert_non_null(f->kbd);
    usb_device_init(&f->loopdev.dev, "loopback", USB_SPEED_SUPER, &loop_ops, &loop_descs, &f->loopdev);
    f->loopdev.loop = f->h->plat.loop;
    f->loopdev.timer = -1;
    assert_int_equal(xhci_attach(f->xhci, usb_tablet_device(f->tablet), 0, err, sizeof(err)), PORT_TABLET);
    assert_int_equal(xhci_attach(f->xhci, usb_kbd_device(f->kbd), 0, err, sizeof(err)), PORT_KBD);
    assert_int_equal(xhci_attach(f->xhci, &f->loopdev.dev, 0, err, sizeof(err)), PORT_LOOP);
    assert_int_equal(xd_probe(&f->d, f->h, &f->bus, MMIO_BASE, HEAP_BASE, RAM_SIZE), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    xhci_destroy(f->xhci);
    free(f->iso);
    if (f->loopdev.timer >= 0)
        evloop_del_timer(f->h->plat.loop, f->loopdev.timer);
    usb_tablet_free(f->tablet);
    usb_kbd_free(f->kbd);
    harness_free(f->h);
    free(f);
    return 0;
}

static void start(struct fx *f, uint16_t imodi, bool msix)
{
    assert_int_equal(xd_reset(&f->d), 0);
    assert_int_equal(xd_start(&f->d, imodi, msix ? MSI_ADDR : 0, MSI_DATA), 0);
}

static uint32_t usbsts(struct fx *f)
{
    return xd_rd(&f->d, f->d.op, XD_USBSTS);
}

static struct xhci_counters counters(struct fx *f)
{
    struct xhci_counters c;
    xhci_counters(f->xhci, &c);
    return c;
}

/* Standard and class requests used below (USB 2.0 9.4, HID 1.11 7.2). */
static int get_descriptor(struct fx *f, unsigned slot, uint8_t type, uint8_t index, uint8_t recip,
                          uint16_t windex, void *buf, uint16_t len, uint32_t *actual)
{
    return xd_control(&f->d, slot, 0x80 | recip, 6, (uint16_t)(type << 8 | index), windex, buf, len, actual);
}

/* Brings up the device on port: reset (USB 2), slot, address (first with
 * BSR and a descriptor read in the Default state, as some drivers do),
 * descriptors, configuration 1 and its first endpoint. */
static unsigned enumerate(struct fx *f, unsigned port, unsigned dci, unsigned ep_type, uint16_t mps,
                          const char *product)
{
    struct xhci_drv *d = &f->d;
    uint32_t sc = xd_portsc(d, port);
    assert_true(sc & XD_PORT_CCS);
    bool usb3 = port >= d->usb3_first && port < d->usb3_first + d->usb3_count;
    if (usb3) {
        assert_true(sc & XD_PORT_PED);            /* USB 3 ports enable on their own */
        assert_int_equal(XD_PORT_PLS(sc), 0);
        assert_int_equal(XD_PORT_SPEED(sc), 4);
    } else {
        assert_false(sc & XD_PORT_PED);
        sc = xd_port_reset(d, port);
        assert_true(sc & XD_PORT_PED);
        assert_int_equal(XD_PORT_PLS(sc), 0);
        assert_int_equal(XD_PORT_SPEED(sc), 1);   /* full speed */
    }
    unsigned slot = 0, addr = 99;
    assert_int_equal(xd_enable_slot(d, &slot), XD_CC_SUCCESS);
    assert_true(slot >= 1);
    assert_int_equal(xd_address_device(d, slot, port, true), XD_CC_SUCCESS);
    assert_int_equal(xd_slot_state(d, slot, &addr), 1);           /* Default */
    assert_int_equal(addr, 0);
    uint8_t dev[18];
    uint32_t got = 0;
    assert_int_equal(get_descriptor(f, slot, USB_DT_DEVICE, 0, 0, 0, dev, 8, &got), XD_CC_SUCCESS);
    assert_int_equal(got, 8);
    assert_int_equal(xd_address_device(d, slot, port, false), XD_CC_SUCCESS);
    assert_int_equal(xd_slot_state(d, slot, &addr), 2);           /* Addressed */
    assert_int_equal(addr, slot);
    assert_int_equal(xd_ep_state(d, slot, 1, NULL), 1);           /* Running */

    assert_int_equal(get_descriptor(f, slot, USB_DT_DEVICE, 0, 0, 0, dev, 18, &got), XD_CC_SUCCESS);
    assert_int_equal(got, 18);
    assert_int_equal(dev[0], 18);
    assert_int_equal(dev[1], USB_DT_DEVICE);
    assert_int_equal(dev[17], 1);                                 /* one configuration */
    uint8_t cfg[64];
    assert_int_equal(get_descriptor(f, slot, USB_DT_CONFIG, 0, 0, 0, cfg, 9, &got), XD_CC_SUCCESS);
    uint16_t total = (uint16_t)(cfg[2] | cfg[3] << 8);
    assert_true(total <= sizeof(cfg));
    assert_int_equal(get_descriptor(f, slot, USB_DT_CONFIG, 0, 0, 0, cfg, 64, &got), XD_CC_SUCCESS);
    assert_int_equal(got, total);                                 /* short: ends at wTotalLength */
    if (product) {
        uint8_t s[128];
        assert_int_equal(get_descriptor(f, slot, USB_DT_STRING, 0, 0, 0, s, 4, &got), XD_CC_SUCCESS);
        assert_int_equal(s[2] | s[3] << 8, 0x0409);
        assert_int_equal(get_descriptor(f, slot, USB_DT_STRING, dev[15], 0, 0x0409, s, sizeof(s), &got),
                         XD_CC_SUCCESS);
        assert_int_equal(got, 2 + 2 * strlen(product));
        for (size_t i = 0; i < strlen(product); i++)
            assert_int_equal(s[2 + 2 * i], (uint8_t)product[i]);
    }
    assert_int_equal(xd_control(d, slot, 0x00, 9, cfg[5], 0, NULL, 0, NULL), XD_CC_SUCCESS);
    uint8_t conf = 0;
    assert_int_equal(xd_control(d, slot, 0x80, 8, 0, 0, &conf, 1, &got), XD_CC_SUCCESS);
    assert_int_equal(conf, cfg[5]);
    assert_int_equal(xd_configure_ep(d, slot, dci, ep_type, mps, 6), XD_CC_SUCCESS);
    assert_int_equal(xd_slot_state(d, slot, NULL), 3);            /* Configured */
    assert_int_equal(xd_ep_state(d, slot, dci, NULL), 1);
    return slot;
}

/* Enumerates the tablet and checks its descriptors as a HID driver reads
 * them: interface class 3, the HID descriptor, the report descriptor of
 * the length the HID descriptor gives. */
static void enumerate_hid(struct fx *f, bool kbd)
{
    unsigned port = kbd ? PORT_KBD : PORT_TABLET;
    unsigned slot = enumerate(f, port, DCI_EP1_IN, XD_EP_INTR_IN, 8,
                              kbd ? "Burrow USB Keyboard" : "Burrow USB Tablet");
    uint8_t cfg[34], rd[128];
    uint32_t got;
    assert_int_equal(get_descriptor(f, slot, USB_DT_CONFIG, 0, 0, 0, cfg, sizeof(cfg), &got), XD_CC_SUCCESS);
    assert_int_equal(cfg[9 + 5], 3);                      /* bInterfaceClass HID */
    assert_int_equal(cfg[9 + 6], kbd ? 1 : 0);            /* boot subclass */
    assert_int_equal(cfg[9 + 7], kbd ? 1 : 0);            /* keyboard protocol */
    assert_int_equal(cfg[18 + 1], 0x21);                  /* HID descriptor */
    assert_int_equal(cfg[27 + 2], 0x81);                  /* endpoint 1 IN */
    assert_int_equal(cfg[27 + 3], 3);                     /* interrupt */
    uint16_t rlen = (uint16_t)(cfg[18 + 7] | cfg[18 + 8] << 8);
    assert_true(rlen <= sizeof(rd));
    assert_int_equal(get_descriptor(f, slot, 0x22, 0, 1, 0, rd, rlen, &got), XD_CC_SUCCESS);
    assert_int_equal(got, rlen);
    /* Generic Desktop, Mouse or Keyboard, Application collection. */
    assert_int_equal(rd[0], 0x05);
    assert_int_equal(rd[1], 0x01);
    assert_int_equal(rd[3], kbd ? 0x06 : 0x02);
    assert_int_equal(rd[4], 0xa1);
    assert_int_equal(rd[rlen - 1], 0xc0);
    if (kbd)
        f->kbd_slot = slot;
    else
        f->tablet_slot = slot;
}

static void enumerate_all(struct fx *f)
{
    enumerate_hid(f, false);
    enumerate_hid(f, true);
    f->loop_slot = enumerate(f, PORT_LOOP, DCI_EP1_OUT, XD_EP_BULK_OUT, 512, NULL);
    assert_int_equal(xd_configure_ep(&f->d, f->loop_slot, DCI_EP2_IN, XD_EP_BULK_IN, 512, 0), XD_CC_SUCCESS);
    xd_drain_events(&f->d);
}

/* One interrupt IN transfer of 8 bytes; *len gets the report length. */
static uint64_t queue_report(struct fx *f, unsigned slot, uint64_t *buf)
{
    *buf = xd_alloc(&f->d, 64, 64);
    return xd_queue_normal(&f->d, slot, DCI_EP1_IN, *buf, 8);
}

static int wait_report(struct fx *f, unsigned slot, uint64_t buf, uint8_t *report, uint32_t *len)
{
    uint32_t residual = 0;
    int cc = xd_wait_transfer(&f->d, slot, DCI_EP1_IN, &residual, 1000);
    if (cc == XD_CC_SUCCESS || cc == XD_CC_SHORT_PACKET) {
        *len = 8 - residual;
        xd_mem_read(&f->d, buf, report, 8);
    }
    return cc;
}

static uint16_t expect_abs(int v, int size)
{
    if (v < 0)
        v = 0;
    if (v > size - 1)
        v = size - 1;
    double exact = (double)v * 32767.0 / (double)(size - 1);
    return (uint16_t)(exact + 0.5);
}

static void tablet_point(struct fx *f, int x, int y, int w, int h)
{
    uint64_t buf;
    queue_report(f, f->tablet_slot, &buf);
    usb_tablet_move(f->tablet, x, y, w, h);
    uint8_t r[8];
    uint32_t len = 0;
    assert_int_equal(wait_report(f, f->tablet_slot, buf, r, &len), XD_CC_SHORT_PACKET);
    assert_int_equal(len, 6);
    assert_int_equal(r[1] | r[2] << 8, expect_abs(x, w));
    assert_int_equal(r[3] | r[4] << 8, expect_abs(y, h));
}

static void check_tablet_works(struct fx *f)
{
    tablet_point(f, 10, 20, 640, 480);
    tablet_point(f, 639, 479, 640, 480);
}

/* --- tests --------------------------------------------------------------- */

static void test_identity(void **state)
{
    struct fx *f = *state;
    struct xhci_drv *d = &f->d;
    assert_int_equal(pci_config_read(&f->bus, d->devfn, 0x08, 4) >> 8, 0x0c0330);
    assert_int_equal(pci_config_read(&f->bus, d->devfn, 0x60, 1), 0x30);      /* SBRN */
    assert_int_not_equal(d->msix_cap, 0);
    assert_int_equal(xd_reset(d), 0);
    assert_int_equal(xd_rd(d, d->mmio, 0) >> 16, 0x0120);                     /* HCIVERSION */
    assert_int_equal(harness_mmio_read(f->h, d->mmio + 2, 2), 0x0120);
    assert_int_equal(harness_mmio_read(f->h, d->mmio, 1), d->op - d->mmio);    /* CAPLENGTH */
    assert_int_equal(d->max_ports, 8);
    assert_true(d->max_slots >= 8);
    assert_true(d->max_intrs >= 1);
    assert_int_equal(d->usb2_first, 1);
    assert_int_equal(d->usb2_count, 4);
    assert_int_equal(d->usb3_first, 5);
    assert_int_equal(d->usb3_count, 4);
    assert_int_equal(xd_rd(d, d->op, XD_PAGESIZE), 1);
    assert_true(usbsts(f) & XD_STS_HCH);
    /* Connected ports after reset: connect status and its change. */
    for (unsigned p = 1; p <= 8; p++) {
        uint32_t sc = xd_portsc(d, p);
        bool dev = p == PORT_TABLET || p == PORT_KBD || p == PORT_LOOP;
        assert_true(sc & XD_PORT_PP);
        assert_int_equal(!!(sc & XD_PORT_CCS), dev);
        assert_int_equal(!!(sc & XD_PORT_CSC), dev);
    }
}

static void test_enumerate(void **state)
{
    struct fx *f = *state;
    start(f, 0, false);
    /* A Port Status Change Event for each connected port when it runs. */
    bool seen[9] = { false };
    struct xd_trb ev;
    while (xd_poll_event(&f->d, &ev))
        if (XD_EV_TYPE(ev.control) == XD_EV_PORT_STATUS)
            seen[(ev.param >> 24) & 0xf] = true;
    assert_true(seen[PORT_TABLET] && seen[PORT_KBD] && seen[PORT_LOOP]);
    assert_true(usbsts(f) & XD_STS_PCD);
    enumerate_all(f);
    assert_int_not_equal(f->tablet_slot, f->kbd_slot);
    /* Evaluate Context with the same packet size changes nothing visible. */
    uint64_t in = f->d.slots[f->kbd_slot].in_ctx;
    memset(f->h->ram + in, 0, 33 * 32);
    uint32_t add = 2, mps_dw = 4u << 3 | 64u << 16;
    xd_mem_write(&f->d, in + 4, &add, 4);
    xd_mem_write(&f->d, in + 64 + 4, &mps_dw, 4);
    assert_int_equal(xd_command(&f->d, in, 0, XD_TRB_TYPE(XD_CMD_EVALUATE_CTX) | f->kbd_slot << 24, NULL),
                     XD_CC_SUCCESS);
    uint8_t dev[18];
    uint32_t got;
    assert_int_equal(get_descriptor(f, f->kbd_slot, USB_DT_DEVICE, 0, 0, 0, dev, 18, &got), XD_CC_SUCCESS);
}

static void test_tablet_reports(void **state)
{
    struct fx *f = *state;
    start(f, 0, false);
    enumerate_all(f);
    /* Nothing to report: the transfer waits. */
    uint64_t buf;
    queue_report(f, f->tablet_slot, &buf);
    assert_int_equal(xd_wait_transfer(&f->d, f->tablet_slot, DCI_EP1_IN, NULL, 20), -1);
    usb_tablet_move(f->tablet, 512, 384, 1024, 768);
    uint8_t r[8];
    uint32_t len;
    assert_int_equal(wait_report(f, f->tablet_slot, buf, r, &len), XD_CC_SHORT_PACKET);
    assert_int_equal(r[1] | r[2] << 8, expect_abs(512, 1024));
    assert_int_equal(r[1] | r[2] << 8, 16400);
    assert_int_equal(r[3] | r[4] << 8, 16405);
    static const int sizes[][2] = { { 1024, 768 }, { 1366, 769 }, { 801, 601 }, { 3, 2 } };
    for (unsigned i = 0; i < 4; i++) {
        int w = sizes[i][0], h = sizes[i][1];
        tablet_point(f, 0, 0, w, h);
        tablet_point(f, w - 1, h - 1, w, h);
        tablet_point(f, w - 1, 0, w, h);
        tablet_point(f, 0, h - 1, w, h);
        tablet_point(f, w / 2, h / 2, w, h);
        tablet_point(f, -7, h + 40, w, h);          /* clamped to the edge */
        tablet_point(f, 1, 1, w, h);
    }
    /* The corners are exact. */
    tablet_point(f, 1023, 767, 1024, 768);
    /* Buttons and the wheel. */
    queue_report(f, f->tablet_slot, &buf);
    usb_tablet_buttons(f->tablet, USB_TABLET_LEFT | USB_TABLET_MIDDLE);
    assert_int_equal(wait_report(f, f->tablet_slot, buf, r, &len), XD_CC_SHORT_PACKET);
    assert_int_equal(r[0], 5);
    queue_report(f, f->tablet_slot, &buf);
    usb_tablet_wheel(f->tablet, -2);
    assert_int_equal(wait_report(f, f->tablet_slot, buf, r, &len), XD_CC_SHORT_PACKET);
    assert_int_equal((int8_t)r[5], -2);
    assert_int_equal(r[0], 5);
    queue_report(f, f->tablet_slot, &buf);
    usb_tablet_buttons(f->tablet, 0);
    assert_int_equal(wait_report(f, f->tablet_slot, buf, r, &len), XD_CC_SHORT_PACKET);
    assert_int_equal(r[0], 0);
    assert_int_equal(r[5], 0);
    /* Moves while nobody reads queue up, merged; the latest wins. */
    for (int i = 0; i < 100; i++)
        usb_tablet_move(f->tablet, i, i, 100, 100);
    queue_report(f, f->tablet_slot, &buf);
    assert_int_equal(wait_report(f, f->tablet_slot, buf, r, &len), XD_CC_SHORT_PACKET);
    assert_int_equal(r[1] | r[2] << 8, 32767);
    /* Room for nothing: the report is babble, the endpoint halts. */
    xd_queue_normal(&f->d, f->tablet_slot, DCI_EP1_IN, buf, 0);
    usb_tablet_move(f->tablet, 3, 3, 100, 100);
    assert_int_equal(xd_wait_transfer(&f->d, f->tablet_slot, DCI_EP1_IN, NULL, 1000), XD_CC_BABBLE);
    assert_int_equal(xd_ep_state(&f->d, f->tablet_slot, DCI_EP1_IN, NULL), 2);
}

static void press(struct fx *f, unsigned usage, bool down, const uint8_t want[8])
{
    uint64_t buf;
    queue_report(f, f->kbd_slot, &buf);
    usb_kbd_key(f->kbd, usage, down);
    uint8_t r[8];
    uint32_t len = 0;
    assert_int_equal(wait_report(f, f->kbd_slot, buf, r, &len), XD_CC_SUCCESS);
    assert_int_equal(len, 8);
    assert_memory_equal(r, want, 8);
}

/* The next keyboard report, which must be want. */
static void press_expect(struct fx *f, const uint8_t want[8])
{
    uint64_t buf;
    queue_report(f, f->kbd_slot, &buf);
    uint8_t r[8];
    uint32_t len = 0;
    assert_int_equal(wait_report(f, f->kbd_slot, buf, r, &len), XD_CC_SUCCESS);
    assert_int_equal(len, 8);
    assert_memory_equal(r, want, 8);
}

static void test_keyboard(void **state)
{
    struct fx *f = *state;
    start(f, 0, false);
    enumerate_all(f);
    struct xhci_drv *d = &f->d;
    unsigned s = f->kbd_slot;
    /* Boot protocol, idle 0, as a BIOS or OS driver sets them. */
    assert_int_equal(xd_control(d, s, 0x21, 0x0b, 0, 0, NULL, 0, NULL), XD_CC_SUCCESS);
    assert_int_equal(xd_control(d, s, 0x21, 0x0a, 0, 0, NULL, 0, NULL), XD_CC_SUCCESS);
    uint8_t proto = 9;
    uint32_t got;
    assert_int_equal(xd_control(d, s, 0xa1, 0x03, 0, 0, &proto, 1, &got), XD_CC_SUCCESS);
    assert_int_equal(proto, 0);
    press(f, 0x04, true, (const uint8_t[8]){ 0, 0, 0x04 });              /* a */
    press(f, 0xe1, true, (const uint8_t[8]){ 0x02, 0, 0x04 });           /* left shift */
    press(f, 0x05, true, (const uint8_t[8]){ 0x02, 0, 0x04, 0x05 });     /* b */
    press(f, 0x04, false, (const uint8_t[8]){ 0x02, 0, 0x05 });
    press(f, 0xe1, false, (const uint8_t[8]){ 0, 0, 0x05 });
    press(f, 0x05, false, (const uint8_t[8]){ 0 });
    /* Seven keys: ErrorRollOver in every slot; back to six: the keys. */
    for (unsigned k = 0x1e; k < 0x24; k++)
        usb_kbd_key(f->kbd, k, true);
    uint64_t buf;
    for (int i = 0; i < 6; i++) {
        queue_report(f, s, &buf);
        uint8_t r[8];
        assert_int_equal(wait_report(f, s, buf, r, &got), XD_CC_SUCCESS);
    }
    press(f, 0x24, true, (const uint8_t[8]){ 0, 0, 1, 1, 1, 1, 1, 1 });
    press(f, 0x24, false, (const uint8_t[8]){ 0, 0, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23 });
    /* GET_REPORT gives the state now. */
    uint8_t r[8];
    assert_int_equal(xd_control(d, s, 0xa1, 0x01, 0x0100, 0, r, 8, &got), XD_CC_SUCCESS);
    assert_int_equal(got, 8);
    assert_int_equal(r[2], 0x1e);
    /* LEDs through SET_REPORT (output report). */
    uint8_t leds = USB_KBD_LED_CAPS | USB_KBD_LED_NUM;
    assert_int_equal(xd_control(d, s, 0x21, 0x09, 0x0200, 0, &leds, 1, &got), XD_CC_SUCCESS);
    assert_int_equal(usb_kbd_leds(f->kbd), USB_KBD_LED_CAPS | USB_KBD_LED_NUM);
    /* The tablet has no protocols to switch. */
    assert_int_equal(xd_control(d, f->tablet_slot, 0x21, 0x0b, 0, 0, NULL, 0, NULL), XD_CC_STALL);
}

/* Keys typed much faster than the guest polls (a paste through a VNC
 * viewer, SeaBIOS polling once a timer tick) all arrive, in order, each in
 * a report of its own. */
static void test_keyboard_burst(void **state)
{
    struct fx *f = *state;
    start(f, 0, false);
    enumerate_all(f);
    unsigned n = 0;
    for (unsigned k = 0x04; k < 0x04 + 40; k++) {
        usb_kbd_key(f->kbd, k, true);
        usb_kbd_key(f->kbd, k, false);
        n += 2;
    }
    usb_kbd_key(f->kbd, 0x1000, true);                 /* not a usage: nothing */
    assert_int_equal(usb_kbd_queued(f->kbd), n);
    for (unsigned k = 0x04; k < 0x04 + 40; k++) {
        press_expect(f, (const uint8_t[8]){ 0, 0, (uint8_t)k });
        press_expect(f, (const uint8_t[8]){ 0 });
    }
    assert_int_equal(usb_kbd_queued(f->kbd), 0);
    /* Events still waiting when the guest resets the port only change the
     * state: the keys held then come in the next report. */
    for (unsigned k = 0x04; k < 0x04 + 20; k++)
        usb_kbd_key(f->kbd, k, true);
    for (unsigned k = 0x05; k < 0x04 + 20; k++)
        usb_kbd_key(f->kbd, k, false);
    assert_int_equal(usb_kbd_queued(f->kbd), 39);
    start(f, 0, false);
    assert_int_equal(usb_kbd_queued(f->kbd), 0);
    enumerate_all(f);
    usb_kbd_key(f->kbd, 0xe1, true);
    press_expect(f, (const uint8_t[8]){ 0x02, 0, 0x04 });
}

/* What the machine routes input by: a device is active only while the
 * guest has it configured and the controller runs with its port enabled,
 * and its owner hears of every change. */
static void count_watch(void *opaque, struct usb_device *d)
{
    struct watch_count *w = opaque;
    w->calls++;
    w->last = usb_device_active(d);
}

static void test_active(void **state)
{
    struct fx *f = *state;
    struct xhci_drv *d = &f->d;
    struct watch_count *kw = &f->kbd_watch, *tw = &f->tablet_watch;
    usb_watch_active(usb_kbd_device(f->kbd), count_watch, kw);
    usb_watch_active(usb_tablet_device(f->tablet), count_watch, tw);
    assert_false(usb_kbd_active(f->kbd));
    assert_false(usb_tablet_active(f->tablet));
    start(f, 0, false);
    assert_false(usb_kbd_active(f->kbd));         /* running, not configured */
    enumerate_all(f);
    assert_true(usb_kbd_active(f->kbd));
    assert_true(usb_tablet_active(f->tablet));
    assert_true(kw->calls > 0 && kw->last);
    assert_true(tw->calls > 0 && tw->last);
    /* Reports wait in the queue until the guest takes them. */
    usb_kbd_key(f->kbd, 0x04, true);
    usb_kbd_key(f->kbd, 0x04, false);
    assert_int_equal(usb_kbd_queued(f->kbd), 2);
    uint64_t buf;
    uint8_t r[8];
    uint32_t len;
    queue_report(f, f->kbd_slot, &buf);
    assert_int_equal(wait_report(f, f->kbd_slot, buf, r, &len), XD_CC_SUCCESS);
    assert_int_equal(usb_kbd_queued(f->kbd), 1);
    /* Halted (as an OS does on taking the controller over from the BIOS):
     * configured still, but nobody listens. */
    unsigned before = kw->calls;
    uint32_t cmd = xd_rd(d, d->op, XD_USBCMD);
    xd_wr(d, d->op, XD_USBCMD, cmd & ~XD_CMD_RS);
    assert_true(usbsts(f) & XD_STS_HCH);
    assert_false(usb_kbd_active(f->kbd));
    assert_true(kw->calls > before && !kw->last);
    before = kw->calls;
    xd_wr(d, d->op, XD_USBCMD, cmd | XD_CMD_RS);
    assert_true(usb_kbd_active(f->kbd));
    assert_true(kw->calls > before && kw->last);
    /* The port disabled by software. */
    before = tw->calls;
    xd_wr(d, d->op, XD_PORTSC(PORT_TABLET), XD_PORT_PP | XD_PORT_PED);
    assert_false(usb_tablet_active(f->tablet));
    assert_true(usb_kbd_active(f->kbd));
    assert_true(tw->calls > before && !tw->last);
    /* Unconfigured (SET_CONFIGURATION 0). */
    assert_int_equal(xd_control(d, f->kbd_slot, 0x00, 9, 0, 0, NULL, 0, NULL), XD_CC_SUCCESS);
    assert_false(usb_kbd_active(f->kbd));
    assert_false(kw->last);
    assert_int_equal(xd_control(d, f->kbd_slot, 0x00, 9, 1, 0, NULL, 0, NULL), XD_CC_SUCCESS);
    assert_true(usb_kbd_active(f->kbd));
    assert_true(kw->last);
    /* HCRST and unplugging. */
    start(f, 0, false);
    assert_false(usb_kbd_active(f->kbd));
    assert_false(kw->last);
    enumerate_hid(f, true);
    assert_true(kw->last);
    xhci_detach(f->xhci, usb_kbd_device(f->kbd));
    assert_false(usb_kbd_active(f->kbd));
    assert_false(kw->last);
}

static void test_msix(void **state)
{
    struct fx *f = *state;
    start(f, 0, true);
    xd_drain_events(&f->d);
    unsigned before = f->h->msi_total;
    assert_int_equal(xd_command(&f->d, 0, 0, XD_TRB_TYPE(XD_CMD_NOOP), NULL), XD_CC_SUCCESS);
    assert_true(f->h->msi_total > before);
    assert_true(harness_msi_fired(f->h, MSI_ADDR, MSI_DATA));
    assert_true(usbsts(f) & XD_STS_EINT);
    uint32_t iman = xd_rd(&f->d, f->d.rt + 0x20, 0);
    assert_int_equal(iman & 1, 0);              /* IP cleared by the MSI-X write */
    xd_wr(&f->d, f->d.op, XD_USBSTS, XD_STS_EINT);
    assert_false(usbsts(f) & XD_STS_EINT);
    /* No INTx while MSI-X is on. */
    unsigned gsi = harness_pci_intx_gsi(&f->bus, f->d.devfn);
    assert_false(f->h->irq_level[gsi]);
    /* Masked vector: pending, delivered on unmask. */
    xd_wr(&f->d, f->d.msix_table, 12, 1);
    before = f->h->msi_total;
    assert_int_equal(xd_command(&f->d, 0, 0, XD_TRB_TYPE(XD_CMD_NOOP), NULL), XD_CC_SUCCESS);
    assert_int_equal(f->h->msi_total, before);
    xd_wr(&f->d, f->d.msix_table, 12, 0);
    assert_int_equal(f->h->msi_total, before + 1);
    /* Moderation: 2 ms between interrupts.  An event inside the interval
     * waits for its end. */
    start(f, 8000, true);
    xd_drain_events(&f->d);
    uint64_t until = evloop_now_ns() + 4000000ull;
    while (evloop_now_ns() < until)
        evloop_run_once(f->h->plat.loop, 1);
    before = f->h->msi_total;
    assert_int_equal(xd_command(&f->d, 0, 0, XD_TRB_TYPE(XD_CMD_NOOP), NULL), XD_CC_SUCCESS);
    assert_int_equal(f->h->msi_total, before + 1);
    xd_ring_put(&f->d, &f->d.cmd, 0, 0, XD_TRB_TYPE(XD_CMD_NOOP));
    xd_doorbell(&f->d, 0, 0);
    assert_int_equal(f->h->msi_total, before + 1);
    until = evloop_now_ns() + 100000000ull;
    while (f->h->msi_total == before + 1 && evloop_now_ns() < until)
        evloop_run_once(f->h->plat.loop, 1);
    assert_int_equal(f->h->msi_total, before + 2);
    struct xd_trb ev;
    assert_int_equal(xd_wait_event(&f->d, XD_EV_COMMAND, false, 0, &ev, 100), 0);
}

static void test_intx(void **state)
{
    struct fx *f = *state;
    start(f, 0, false);
    xd_drain_events(&f->d);
    unsigned gsi = harness_pci_intx_gsi(&f->bus, f->d.devfn);
    uint64_t ir0 = f->d.rt + 0x20;
    xd_wr(&f->d, ir0, 0, 3);                    /* clear IP left from start */
    assert_false(f->h->irq_level[gsi]);
    assert_int_equal(xd_command(&f->d, 0, 0, XD_TRB_TYPE(XD_CMD_NOOP), NULL), XD_CC_SUCCESS);
    assert_true(f->h->irq_level[gsi]);
    assert_int_equal(xd_rd(&f->d, ir0, 0) & 1, 1);
    xd_wr(&f->d, ir0, 0, 3);                    /* IP is write-1-to-clear */
    assert_false(f->h->irq_level[gsi]);
    /* IE off: IP still set, no interrupt. */
    xd_wr(&f->d, ir0, 0, 0);
    assert_int_equal(xd_command(&f->d, 0, 0, XD_TRB_TYPE(XD_CMD_NOOP), NULL), XD_CC_SUCCESS);
    assert_false(f->h->irq_level[gsi]);
    assert_int_equal(xd_rd(&f->d, ir0, 0) & 1, 1);
    xd_wr(&f->d, ir0, 0, 2);
    assert_true(f->h->irq_level[gsi]);
    xd_wr(&f->d, ir0, 0, 3);
    assert_false(f->h->irq_level[gsi]);
}

/* Bulk: chains, immediate data, Event Data, short packets with two
 * events, an IN held by the device and finished from the event loop. */
static void test_bulk(void **state)
{
    struct fx *f = *state;
    struct xhci_drv *d = &f->d;
    start(f, 0, false);
    enumerate_all(f);
    unsigned s = f->loop_slot;
    struct xd_ring *out = &d->slots[s].ep[DCI_EP1_OUT], *in = &d->slots[s].ep[DCI_EP2_IN];
    uint64_t a = xd_alloc(d, 4096, 64), b = xd_alloc(d, 4096, 64);
    uint8_t pattern[300];
    for (unsigned i = 0; i < sizeof(pattern); i++)
        pattern[i] = (uint8_t)(i * 7 + 1);
    xd_mem_write(d, a, pattern, 200);
    xd_mem_write(d, b, pattern + 200, 100);
    /* OUT: 200 + 100 bytes chained, then Event Data with IOC. */
    xd_ring_put(d, out, a, 200, XD_TRB_TYPE(XD_TRB_NORMAL) | XD_TRB_CH);
    xd_ring_put(d, out, b, 100, XD_TRB_TYPE(XD_TRB_NORMAL) | XD_TRB_CH);
    xd_ring_put(d, out, 0x1122334455667788ull, 0, XD_TRB_TYPE(XD_TRB_EVENT_DATA) | XD_TRB_IOC);
    xd_doorbell(d, s, DCI_EP1_OUT);
    struct xd_trb ev;
    assert_int_equal(xd_wait_event(d, XD_EV_TRANSFER, true, 0x1122334455667788ull, &ev, 1000), 0);
    assert_int_equal(XD_EV_CC(ev.status), XD_CC_SUCCESS);
    assert_true(ev.control & (1u << 2));                  /* ED */
    assert_int_equal(XD_EV_LEN(ev.status), 300);
    /* Immediate data: 5 bytes in the TRB itself. */
    uint64_t imm = 0;
    memcpy(&imm, "hello", 5);
    xd_ring_put(d, out, imm, 5, XD_TRB_TYPE(XD_TRB_NORMAL) | XD_TRB_IDT | XD_TRB_IOC);
    xd_doorbell(d, s, DCI_EP1_OUT);
    assert_int_equal(xd_wait_transfer(d, s, DCI_EP1_OUT, NULL, 1000), XD_CC_SUCCESS);
    assert_int_equal(f->loopdev.used, 305);
    /* A No Op TRB on a transfer ring completes without a packet on the
     * bus; a zero-length Normal TRB sends one. */
    unsigned outs = f->loopdev.outs;
    uint64_t noop = xd_ring_put(d, out, 0, 0, XD_TRB_TYPE(XD_TRB_NOOP) | XD_TRB_IOC);
    xd_doorbell(d, s, DCI_EP1_OUT);
    assert_int_equal(xd_wait_event(d, XD_EV_TRANSFER, true, noop, &ev, 1000), 0);
    assert_int_equal(XD_EV_CC(ev.status), XD_CC_SUCCESS);
    assert_int_equal(f->loopdev.outs, outs);
    xd_queue_normal(d, s, DCI_EP1_OUT, a, 0);
    assert_int_equal(xd_wait_transfer(d, s, DCI_EP1_OUT, NULL, 1000), XD_CC_SUCCESS);
    assert_int_equal(f->loopdev.outs, outs + 1);
    assert_int_equal(f->loopdev.used, 305);
    /* IN of 2 x 256 with ISP: 305 bytes come back short in the second TRB,
     * one event there (ISP) and one on the last TRB (IOC). */
    uint64_t c = xd_alloc(d, 1024, 64);
    xd_ring_put(d, in, c, 256, XD_TRB_TYPE(XD_TRB_NORMAL) | XD_TRB_CH | XD_TRB_ISP);
    uint64_t t2 = xd_ring_put(d, in, c + 256, 256, XD_TRB_TYPE(XD_TRB_NORMAL) | XD_TRB_CH | XD_TRB_ISP);
    uint64_t t3 = xd_ring_put(d, in, c + 512, 64, XD_TRB_TYPE(XD_TRB_NORMAL) | XD_TRB_IOC);
    xd_doorbell(d, s, DCI_EP2_IN);
    uint32_t residual;
    assert_int_equal(xd_wait_event(d, XD_EV_TRANSFER, true, t2, &ev, 1000), 0);
    assert_int_equal(XD_EV_CC(ev.status), XD_CC_SHORT_PACKET);
    assert_int_equal(XD_EV_LEN(ev.status), 512 - 305);
    assert_int_equal(xd_wait_event(d, XD_EV_TRANSFER, true, t3, &ev, 1000), 0);
    assert_int_equal(XD_EV_CC(ev.status), XD_CC_SHORT_PACKET);
    uint8_t back[305];
    xd_mem_read(d, c, back, sizeof(back));
    assert_memory_equal(back, pattern, 300);
    assert_memory_equal(back + 300, "hello", 5);
    /* An IN with nothing there is held; OUT data finishes it later. */
    uint64_t held = xd_queue_normal(d, s, DCI_EP2_IN, c, 64);
    assert_int_equal(xd_wait_transfer(d, s, DCI_EP2_IN, NULL, 20), -1);
    assert_non_null(f->loopdev.held);
    xd_mem_write(d, a, "ping", 4);
    xd_queue_normal(d, s, DCI_EP1_OUT, a, 4);
    assert_int_equal(xd_wait_transfer(d, s, DCI_EP1_OUT, NULL, 1000), XD_CC_SUCCESS);
    assert_int_equal(xd_wait_event(d, XD_EV_TRANSFER, true, held, &ev, 1000), 0);
    assert_int_equal(XD_EV_CC(ev.status), XD_CC_SHORT_PACKET);
    assert_int_equal(XD_EV_LEN(ev.status), 60);
    xd_mem_read(d, c, back, 4);
    assert_memory_equal(back, "ping", 4);
    /* Stop Endpoint takes a held IN back: Stopped event first, then the
     * command's completion; the dequeue pointer stays on the TD. */
    held = xd_queue_normal(d, s, DCI_EP2_IN, c, 64);
    assert_non_null(f->loopdev.held);
    uint64_t cmd_at = xd_cmd_next(d);
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_STOP_EP) | s << 24 | DCI_EP2_IN << 16, NULL),
                     XD_CC_SUCCESS);
    (void)cmd_at;
    assert_null(f->loopdev.held);
    assert_int_equal(f->loopdev.cancels, 1);
    assert_int_equal(xd_wait_transfer(d, s, DCI_EP2_IN, &residual, 100), XD_CC_STOPPED);
    assert_int_equal(residual, 64);
    uint64_t deq;
    assert_int_equal(xd_ep_state(d, s, DCI_EP2_IN, &deq), 3);   /* Stopped */
    assert_int_equal(deq & ~0xfull, held);
    /* Move past it and go on. */
    uint64_t next = in->base + 16ull * in->enq;
    assert_int_equal(xd_command(d, next | (in->cycle ? 1 : 0), 0,
                                XD_TRB_TYPE(XD_CMD_SET_TR_DEQ) | s << 24 | DCI_EP2_IN << 16, NULL),
                     XD_CC_SUCCESS);
    xd_mem_write(d, a, "pong", 4);
    xd_queue_normal(d, s, DCI_EP1_OUT, a, 4);
    assert_int_equal(xd_wait_transfer(d, s, DCI_EP1_OUT, NULL, 1000), XD_CC_SUCCESS);
    xd_queue_normal(d, s, DCI_EP2_IN, c, 64);
    assert_int_equal(xd_wait_transfer(d, s, DCI_EP2_IN, &residual, 1000), XD_CC_SHORT_PACKET);
    assert_int_equal(residual, 60);
    assert_int_equal(xd_ep_state(d, s, DCI_EP2_IN, NULL), 1);
    /* Many TDs around the ring (its Link TRB crossed several times). */
    for (int i = 0; i < 100; i++) {
        xd_mem_write(d, a, &i, 4);
        xd_queue_normal(d, s, DCI_EP1_OUT, a, 4);
        assert_int_equal(xd_wait_transfer(d, s, DCI_EP1_OUT, NULL, 1000), XD_CC_SUCCESS);
        xd_queue_normal(d, s, DCI_EP2_IN, c, 64);
        assert_int_equal(xd_wait_transfer(d, s, DCI_EP2_IN, NULL, 1000), XD_CC_SHORT_PACKET);
        int got;
        xd_mem_read(d, c, &got, 4);
        assert_int_equal(got, i);
    }
}

/* A stalled bulk OUT and a stalled control request, and the recovery:
 * Reset Endpoint, Set TR Dequeue Pointer, CLEAR_FEATURE(ENDPOINT_HALT). */
static void test_stall(void **state)
{
    struct fx *f = *state;
    struct xhci_drv *d = &f->d;
    start(f, 0, false);
    enumerate_all(f);
    unsigned s = f->loop_slot;
    uint64_t a = xd_alloc(d, 64, 64);
    xd_mem_write(d, a, "STALL", 5);
    uint64_t at = xd_queue_normal(d, s, DCI_EP1_OUT, a, 5);
    uint32_t residual;
    assert_int_equal(xd_wait_transfer(d, s, DCI_EP1_OUT, &residual, 1000), XD_CC_STALL);
    uint64_t deq;
    assert_int_equal(xd_ep_state(d, s, DCI_EP1_OUT, &deq), 2);   /* Halted */
    assert_int_equal(deq & ~0xfull, at);
    /* A halted endpoint does not run. */
    xd_mem_write(d, a, "okay", 4);
    xd_queue_normal(d, s, DCI_EP1_OUT, a, 4);
    assert_int_equal(xd_wait_transfer(d, s, DCI_EP1_OUT, NULL, 20), -1);
    /* Stop on a halted endpoint: Context State Error. */
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_STOP_EP) | s << 24 | DCI_EP1_OUT << 16, NULL),
                     XD_CC_CONTEXT_STATE);
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_RESET_EP) | s << 24 | DCI_EP1_OUT << 16, NULL),
                     XD_CC_SUCCESS);
    assert_int_equal(xd_ep_state(d, s, DCI_EP1_OUT, NULL), 3);
    /* The device still has the halt until the host clears it. */
    uint8_t st[2];
    uint32_t got;
    assert_int_equal(xd_control(d, s, 0x82, 0, 0, 0x01, st, 2, &got), XD_CC_SUCCESS);
    assert_int_equal(st[0], 1);
    assert_int_equal(xd_control(d, s, 0x02, 1, 0, 0x01, NULL, 0, NULL), XD_CC_SUCCESS);
    assert_int_equal(xd_control(d, s, 0x82, 0, 0, 0x01, st, 2, &got), XD_CC_SUCCESS);
    assert_int_equal(st[0], 0);
    /* Skip the stalled TD; the queued "okay" runs at the doorbell. */
    assert_int_equal(xd_command(d, (at + 16) | 1, 0, XD_TRB_TYPE(XD_CMD_SET_TR_DEQ) | s << 24 | DCI_EP1_OUT << 16,
                                NULL), XD_CC_SUCCESS);
    xd_doorbell(d, s, DCI_EP1_OUT);
    assert_int_equal(xd_wait_transfer(d, s, DCI_EP1_OUT, NULL, 1000), XD_CC_SUCCESS);
    assert_int_equal(f->loopdev.used, 4);

    /* Control: a full-speed device has no device qualifier: stall, halt. */
    unsigned t = f->tablet_slot;
    uint8_t q[10];
    assert_int_equal(get_descriptor(f, t, USB_DT_DEVICE_QUALIFIER, 0, 0, 0, q, 10, &got), XD_CC_STALL);
    assert_int_equal(xd_ep_state(d, t, 1, NULL), 2);
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_RESET_EP) | t << 24 | 1u << 16, NULL),
                     XD_CC_SUCCESS);
    struct xd_ring *r = &d->slots[t].ep[1];
    uint64_t next = r->base + 16ull * r->enq;
    assert_int_equal(xd_command(d, next | (r->cycle ? 1 : 0), 0, XD_TRB_TYPE(XD_CMD_SET_TR_DEQ) | t << 24 | 1u << 16,
                                NULL), XD_CC_SUCCESS);
    uint8_t dev[18];
    assert_int_equal(get_descriptor(f, t, USB_DT_DEVICE, 0, 0, 0, dev, 18, &got), XD_CC_SUCCESS);
    check_tablet_works(f);
}

/* Stop Endpoint on an interrupt IN waiting for a report, moving on. */
static void test_stop_interrupt(void **state)
{
    struct fx *f = *state;
    struct xhci_drv *d = &f->d;
    start(f, 0, false);
    enumerate_all(f);
    unsigned s = f->kbd_slot;
    uint64_t buf;
    uint64_t at = queue_report(f, s, &buf);
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_STOP_EP) | s << 24 | DCI_EP1_IN << 16, NULL),
                     XD_CC_SUCCESS);
    struct xd_trb ev;
    assert_int_equal(xd_wait_event(d, XD_EV_TRANSFER, true, at, &ev, 100), 0);
    assert_int_equal(XD_EV_CC(ev.status), XD_CC_STOPPED);
    uint64_t deq;
    assert_int_equal(xd_ep_state(d, s, DCI_EP1_IN, &deq), 3);
    assert_int_equal(deq & ~0xfull, at);
    /* Stopped twice: Context State Error. */
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_STOP_EP) | s << 24 | DCI_EP1_IN << 16, NULL),
                     XD_CC_CONTEXT_STATE);
    struct xd_ring *r = &d->slots[s].ep[DCI_EP1_IN];
    assert_int_equal(xd_command(d, (r->base + 16ull * r->enq) | (r->cycle ? 1 : 0), 0,
                                XD_TRB_TYPE(XD_CMD_SET_TR_DEQ) | s << 24 | DCI_EP1_IN << 16, NULL),
                     XD_CC_SUCCESS);
    press(f, 0x29, true, (const uint8_t[8]){ 0, 0, 0x29 });
    assert_int_equal(xd_ep_state(d, s, DCI_EP1_IN, NULL), 1);
}

static void test_hotplug(void **state)
{
    struct fx *f = *state;
    struct xhci_drv *d = &f->d;
    start(f, 0, false);
    enumerate_all(f);
    uint64_t buf;
    queue_report(f, f->tablet_slot, &buf);
    xhci_detach(f->xhci, usb_tablet_device(f->tablet));
    struct xd_trb ev;
    assert_int_equal(xd_wait_event(d, XD_EV_PORT_STATUS, true, (uint64_t)PORT_TABLET << 24, &ev, 100), 0);
    uint32_t sc = xd_portsc(d, PORT_TABLET);
    assert_false(sc & XD_PORT_CCS);
    assert_false(sc & XD_PORT_PED);
    assert_true(sc & XD_PORT_CSC);
    xd_wr(d, d->op, XD_PORTSC(PORT_TABLET), XD_PORT_PP | XD_PORT_CSC);
    assert_false(xd_portsc(d, PORT_TABLET) & XD_PORT_CSC);
    /* The device is gone: its waiting transfer fails when tried again. */
    xd_doorbell(d, f->tablet_slot, DCI_EP1_IN);
    assert_int_equal(xd_wait_transfer(d, f->tablet_slot, DCI_EP1_IN, NULL, 100), XD_CC_USB_TRANSACTION);
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_DISABLE_SLOT) | f->tablet_slot << 24, NULL),
                     XD_CC_SUCCESS);
    /* Addressing a device on an empty port finds nobody. */
    unsigned slot;
    assert_int_equal(xd_enable_slot(d, &slot), XD_CC_SUCCESS);
    assert_int_equal(xd_address_device(d, slot, PORT_TABLET, false), XD_CC_USB_TRANSACTION);
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_DISABLE_SLOT) | slot << 24, NULL), XD_CC_SUCCESS);
    char err[128];
    assert_int_equal(xhci_attach(f->xhci, usb_tablet_device(f->tablet), PORT_TABLET, err, sizeof(err)),
                     PORT_TABLET);
    assert_int_equal(xd_wait_event(d, XD_EV_PORT_STATUS, true, (uint64_t)PORT_TABLET << 24, &ev, 100), 0);
    assert_true(xd_portsc(d, PORT_TABLET) & XD_PORT_CCS);
    enumerate_hid(f, false);
    check_tablet_works(f);
    /* A SuperSpeed device does not fit a USB 2 port, nor two devices one port. */
    assert_int_equal(xhci_attach(f->xhci, &f->loopdev.dev, 3, err, sizeof(err)), -1);
    assert_int_equal(xhci_attach(f->xhci, usb_kbd_device(f->kbd), PORT_TABLET, err, sizeof(err)), -1);
}

/* Reset Device and Disable Slot, then the same device anew. */
static void test_reset_device(void **state)
{
    struct fx *f = *state;
    struct xhci_drv *d = &f->d;
    start(f, 0, false);
    enumerate_all(f);
    unsigned s = f->tablet_slot, addr;
    assert_int_equal(xd_port_reset(d, PORT_TABLET) & XD_PORT_PED, XD_PORT_PED);
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_RESET_DEVICE) | s << 24, NULL), XD_CC_SUCCESS);
    assert_int_equal(xd_slot_state(d, s, &addr), 1);
    assert_int_equal(addr, 0);
    assert_int_equal(xd_ep_state(d, s, DCI_EP1_IN, NULL), 0);
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_RESET_DEVICE) | s << 24, NULL),
                     XD_CC_CONTEXT_STATE);
    assert_int_equal(xd_address_device(d, s, PORT_TABLET, false), XD_CC_SUCCESS);
    assert_int_equal(xd_address_device(d, s, PORT_TABLET, false), XD_CC_CONTEXT_STATE);
    assert_int_equal(xd_control(d, s, 0x00, 9, 1, 0, NULL, 0, NULL), XD_CC_SUCCESS);
    assert_int_equal(xd_configure_ep(d, s, DCI_EP1_IN, XD_EP_INTR_IN, 8, 6), XD_CC_SUCCESS);
    check_tablet_works(f);
    /* Deconfigure: back to Addressed, the endpoint disabled. */
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_CONFIGURE_EP) | 1u << 9 | s << 24, NULL),
                     XD_CC_SUCCESS);
    assert_int_equal(xd_slot_state(d, s, NULL), 2);
    assert_int_equal(xd_ep_state(d, s, DCI_EP1_IN, NULL), 0);
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_DISABLE_SLOT) | s << 24, NULL), XD_CC_SUCCESS);
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_DISABLE_SLOT) | s << 24, NULL),
                     XD_CC_SLOT_NOT_ENABLED);
}

/* Commands with bad slots, endpoints, contexts and types. */
static void test_bad_commands(void **state)
{
    struct fx *f = *state;
    struct xhci_drv *d = &f->d;
    start(f, 0, false);
    enumerate_all(f);
    unsigned s = f->kbd_slot;
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_DISABLE_SLOT), NULL), XD_CC_SLOT_NOT_ENABLED);
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_DISABLE_SLOT) | 200u << 24, NULL),
                     XD_CC_SLOT_NOT_ENABLED);
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_STOP_EP) | 15u << 24 | 1u << 16, NULL),
                     XD_CC_SLOT_NOT_ENABLED);
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_STOP_EP) | s << 24, NULL), XD_CC_TRB);
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_STOP_EP) | s << 24 | 9u << 16, NULL),
                     XD_CC_EP_NOT_ENABLED);
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_RESET_EP) | s << 24 | 1u << 16, NULL),
                     XD_CC_CONTEXT_STATE);
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_SET_TR_DEQ) | s << 24 | 1u << 16, NULL),
                     XD_CC_CONTEXT_STATE);
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(30), NULL), XD_CC_TRB);
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_TRB_NORMAL), NULL), XD_CC_TRB);
    /* Endpoint contexts the controller cannot take. */
    assert_int_equal(xd_configure_ep(d, s, 4, 0, 8, 0), XD_CC_PARAMETER);               /* no type */
    assert_int_equal(xd_configure_ep(d, s, 4, XD_EP_INTR_IN, 8, 0), XD_CC_PARAMETER);   /* IN on OUT */
    assert_int_equal(xd_configure_ep(d, s, 5, XD_EP_CONTROL, 8, 0), XD_CC_RESOURCE);   /* a second control */
    assert_int_equal(xd_configure_ep(d, s, 5, XD_EP_INTR_IN, 0, 0), XD_CC_PARAMETER);   /* no packet size */
    assert_int_equal(xd_ep_state(d, s, 5, NULL), 0);
    /* Address Device: a slot never enabled, no such port, a bad context. */
    assert_int_equal(xd_address_device(d, 14, PORT_KBD, false), XD_CC_SLOT_NOT_ENABLED);
    unsigned slot;
    assert_int_equal(xd_enable_slot(d, &slot), XD_CC_SUCCESS);
    assert_int_equal(xd_address_device(d, slot, 12, false), XD_CC_PARAMETER);
    assert_int_equal(xd_address_device(d, slot, 7, false), XD_CC_USB_TRANSACTION);      /* empty port */
    /* All the slots. */
    unsigned n = 0;
    int cc;
    while ((cc = xd_enable_slot(d, &slot)) == XD_CC_SUCCESS)
        n++;
    assert_int_equal(cc, XD_CC_NO_SLOTS);
    assert_true(n >= 8);
    check_tablet_works(f);
}

/* Doorbells for slots and endpoints that do not exist change nothing. */
static void test_bad_doorbells(void **state)
{
    struct fx *f = *state;
    struct xhci_drv *d = &f->d;
    start(f, 0, false);
    enumerate_all(f);
    xd_doorbell(d, 14, 1);                         /* slot not enabled */
    xd_doorbell(d, f->tablet_slot, 0);             /* reserved target */
    xd_doorbell(d, f->tablet_slot, 40);
    xd_doorbell(d, f->tablet_slot, 9);             /* disabled endpoint */
    xd_doorbell(d, 0, 5);                          /* command doorbell, bad target */
    harness_mmio_write(f->h, d->db + 4 * 60, 4, 1);  /* past the last slot */
    struct xd_trb ev;
    assert_false(xd_poll_event(d, &ev));
    assert_false(usbsts(f) & (XD_STS_HSE | XD_STS_HCE | XD_STS_HCH));
    check_tablet_works(f);
}

static void restart_and_check(struct fx *f)
{
    start(f, 0, false);
    assert_false(usbsts(f) & (XD_STS_HSE | XD_STS_HCE | XD_STS_HCH));
    enumerate_all(f);
    check_tablet_works(f);
}

/* A transfer ring that loops on itself with nothing in it: TRB Error, the
 * endpoint in the Error state until Set TR Dequeue Pointer. */
static void test_link_cycle_transfer(void **state)
{
    struct fx *f = *state;
    struct xhci_drv *d = &f->d;
    start(f, 0, false);
    enumerate_all(f);
    unsigned s = f->tablet_slot;
    struct xd_ring *r = &d->slots[s].ep[DCI_EP1_IN];
    uint64_t at = r->base + 16ull * r->enq;
    xd_write_trb(d, at, at, 0, XD_TRB_TYPE(XD_TRB_LINK) | (r->cycle ? XD_TRB_C : 0));
    xd_doorbell(d, s, DCI_EP1_IN);
    uint32_t residual;
    assert_int_equal(xd_wait_transfer(d, s, DCI_EP1_IN, &residual, 100), XD_CC_TRB);
    assert_int_equal(xd_ep_state(d, s, DCI_EP1_IN, NULL), 4);     /* Error */
    assert_int_equal(counters(f).trb_errors, 1);
    /* Two links pointing at each other, with the toggle: that ends (empty). */
    uint64_t other = xd_alloc(d, 64, 64);
    xd_write_trb(d, at, other, 0, XD_TRB_TYPE(XD_TRB_LINK) | XD_TRB_TC | (r->cycle ? XD_TRB_C : 0));
    xd_write_trb(d, other, at, 0, XD_TRB_TYPE(XD_TRB_LINK) | XD_TRB_TC | (r->cycle ? XD_TRB_C : 0));
    assert_int_equal(xd_command(d, at | (r->cycle ? 1 : 0), 0,
                                XD_TRB_TYPE(XD_CMD_SET_TR_DEQ) | s << 24 | DCI_EP1_IN << 16, NULL),
                     XD_CC_SUCCESS);
    xd_doorbell(d, s, DCI_EP1_IN);
    assert_int_equal(xd_wait_transfer(d, s, DCI_EP1_IN, NULL, 20), -1);
    assert_int_equal(xd_ep_state(d, s, DCI_EP1_IN, NULL), 1);
    /* A Setup TRB on an interrupt ring and a TD that never ends. */
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_STOP_EP) | s << 24 | DCI_EP1_IN << 16, NULL),
                     XD_CC_SUCCESS);
    xd_write_trb(d, at, 0, 8, XD_TRB_TYPE(XD_TRB_SETUP) | XD_TRB_IDT | (r->cycle ? XD_TRB_C : 0));
    assert_int_equal(xd_command(d, at | (r->cycle ? 1 : 0), 0,
                                XD_TRB_TYPE(XD_CMD_SET_TR_DEQ) | s << 24 | DCI_EP1_IN << 16, NULL),
                     XD_CC_SUCCESS);
    xd_doorbell(d, s, DCI_EP1_IN);
    assert_int_equal(xd_wait_transfer(d, s, DCI_EP1_IN, NULL, 100), XD_CC_TRB);
    /* Chained Normal TRBs in a loop: more TRBs than a TD may have. */
    xd_write_trb(d, at, 0x10000, 8, XD_TRB_TYPE(XD_TRB_NORMAL) | XD_TRB_CH | (r->cycle ? XD_TRB_C : 0));
    xd_write_trb(d, at + 16, at, 0, XD_TRB_TYPE(XD_TRB_LINK) | XD_TRB_CH | (r->cycle ? XD_TRB_C : 0));
    assert_int_equal(xd_command(d, at | (r->cycle ? 1 : 0), 0,
                                XD_TRB_TYPE(XD_CMD_SET_TR_DEQ) | s << 24 | DCI_EP1_IN << 16, NULL),
                     XD_CC_SUCCESS);
    xd_doorbell(d, s, DCI_EP1_IN);
    assert_int_equal(xd_wait_transfer(d, s, DCI_EP1_IN, NULL, 1000), XD_CC_TRB);
    assert_false(usbsts(f) & (XD_STS_HSE | XD_STS_HCE));
    restart_and_check(f);
}

/* A command ring of Link TRBs only: HCE; HCRST brings it back. */
static void test_link_cycle_command(void **state)
{
    struct fx *f = *state;
    struct xhci_drv *d = &f->d;
    start(f, 0, false);
    uint64_t at = xd_cmd_next(d);
    xd_write_trb(d, at, at, 0, XD_TRB_TYPE(XD_TRB_LINK) | (d->cmd.cycle ? XD_TRB_C : 0));
    xd_doorbell(d, 0, 0);
    assert_true(usbsts(f) & XD_STS_HCE);
    assert_true(usbsts(f) & XD_STS_HCH);
    /* Run is refused until a reset. */
    xd_wr(d, d->op, XD_USBCMD, XD_CMD_RS);
    assert_true(usbsts(f) & XD_STS_HCH);
    restart_and_check(f);
    assert_false(usbsts(f) & XD_STS_HCE);
}

/* A command ring that does real work forever (No Op commands in a loop
 * without the toggle) yields to the event loop and keeps the rest alive. */
static void test_endless_command_ring(void **state)
{
    struct fx *f = *state;
    struct xhci_drv *d = &f->d;
    start(f, 0, false);
    enumerate_all(f);
    uint64_t at = xd_cmd_next(d);
    uint32_t c = d->cmd.cycle ? XD_TRB_C : 0;
    xd_write_trb(d, at, 0, 0, XD_TRB_TYPE(XD_CMD_NOOP) | c);
    xd_write_trb(d, at + 16, at, 0, XD_TRB_TYPE(XD_TRB_LINK) | c);
    xd_doorbell(d, 0, 0);
    evloop_run_once(f->h->plat.loop, 1);
    /* The event ring filled up and said so. */
    assert_true(counters(f).events_lost > 0);
    struct xd_trb ev;
    bool full = false;
    while (xd_poll_event(d, &ev))
        if (XD_EV_TYPE(ev.control) == XD_EV_HOST_CONTROLLER && XD_EV_CC(ev.status) == XD_CC_EVENT_RING_FULL)
            full = true;
    assert_true(full);
    /* Command Abort stops it. */
    xd_wr(d, d->op, XD_CRCR, 1u << 2);
    assert_int_equal(xd_rd(d, d->op, XD_CRCR) & (1u << 3), 0);
    assert_int_equal(xd_wait_event(d, XD_EV_COMMAND, false, 0, &ev, 100), 0);
    bool stopped = false;
    do {
        if (XD_EV_TYPE(ev.control) == XD_EV_COMMAND && XD_EV_CC(ev.status) == XD_CC_CMD_RING_STOPPED)
            stopped = true;
    } while (xd_poll_event(d, &ev));
    assert_true(stopped);
    restart_and_check(f);
}

/* TRB pointers, contexts and the DCBAA outside guest RAM, and a command
 * ring in MMIO: a host system error, the controller halted; HCRST and a
 * fresh start bring it back. */
static void test_dma_outside_ram(void **state)
{
    struct fx *f = *state;
    struct xhci_drv *d = &f->d;
    unsigned before = (unsigned)counters(f).host_errors;

    /* A data buffer outside RAM. */
    start(f, 0, false);
    enumerate_all(f);
    xd_queue_normal(d, f->loop_slot, DCI_EP1_OUT, NOT_RAM, 64);
    assert_true(usbsts(f) & XD_STS_HSE);
    assert_true(usbsts(f) & XD_STS_HCH);
    assert_int_equal(counters(f).host_errors, before + 1);
    restart_and_check(f);

    /* A transfer ring outside RAM. */
    unsigned s = f->loop_slot;
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_STOP_EP) | s << 24 | DCI_EP1_OUT << 16, NULL),
                     XD_CC_SUCCESS);
    assert_int_equal(xd_command(d, NOT_RAM | 1, 0, XD_TRB_TYPE(XD_CMD_SET_TR_DEQ) | s << 24 | DCI_EP1_OUT << 16,
                                NULL), XD_CC_SUCCESS);
    xd_doorbell(d, s, DCI_EP1_OUT);
    assert_true(usbsts(f) & XD_STS_HSE);
    restart_and_check(f);

    /* An input context outside RAM. */
    unsigned slot;
    assert_int_equal(xd_enable_slot(d, &slot), XD_CC_SUCCESS);
    xd_ring_put(d, &d->cmd, NOT_RAM, 0, XD_TRB_TYPE(XD_CMD_ADDRESS_DEVICE) | slot << 24);
    xd_doorbell(d, 0, 0);
    assert_true(usbsts(f) & XD_STS_HSE);
    restart_and_check(f);

    /* A DCBAA outside RAM. */
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_DISABLE_SLOT) | f->loop_slot << 24, NULL),
                     XD_CC_SUCCESS);
    xd_wr64(d, d->op, XD_DCBAAP, NOT_RAM);          /* may be written only while halted... */
    assert_int_equal(xd_enable_slot(d, &slot), XD_CC_SUCCESS);
    assert_int_equal(xd_address_device(d, slot, PORT_LOOP, false), -1);
    assert_true(usbsts(f) & XD_STS_HSE);
    restart_and_check(f);

    /* A command ring in the controller's own MMIO. */
    assert_int_equal(xd_reset(d), 0);
    assert_int_equal(xd_start(d, 0, 0, 0), 0);
    xd_wr(d, d->op, XD_USBCMD, XD_CMD_INTE);
    assert_true(usbsts(f) & XD_STS_HCH);
    xd_wr64(d, d->op, XD_CRCR, d->mmio | 1);
    xd_wr(d, d->op, XD_USBCMD, XD_CMD_INTE | XD_CMD_RS);
    xd_doorbell(d, 0, 0);
    assert_true(usbsts(f) & XD_STS_HSE);
    assert_true(usbsts(f) & XD_STS_HCH);
    restart_and_check(f);
    assert_true(counters(f).host_errors >= before + 5);
}

/* Event ring segment tables the controller cannot use: HCE at the first
 * event. */
static void bad_erst(struct fx *f, uint32_t erstsz, uint32_t seg_size, uint64_t seg_base)
{
    struct xhci_drv *d = &f->d;
    assert_int_equal(xd_reset(d), 0);
    assert_int_equal(xd_start(d, 0, 0, 0), 0);
    xd_drain_events(d);
    xd_wr(d, d->op, XD_USBCMD, XD_CMD_INTE);
    uint64_t ir0 = d->rt + 0x20, erst = xd_alloc(d, 64, 64);
    uint64_t v[2] = { seg_base, seg_size };
    xd_mem_write(d, erst, v, 16);
    xd_wr(d, ir0, 0x08, erstsz);
    xd_wr64(d, ir0, 0x10, erst);
    for (unsigned p = 1; p <= d->max_ports; p++)       /* no port events at Run */
        xd_wr(d, d->op, XD_PORTSC(p), XD_PORT_PP | XD_PORT_CHANGES);
    xd_wr(d, d->op, XD_USBCMD, XD_CMD_INTE | XD_CMD_RS);
    assert_false(usbsts(f) & XD_STS_HCH);
    xd_ring_put(d, &d->cmd, 0, 0, XD_TRB_TYPE(XD_CMD_NOOP));
    xd_doorbell(d, 0, 0);
    assert_true(usbsts(f) & XD_STS_HCE);
    assert_true(usbsts(f) & XD_STS_HCH);
    restart_and_check(f);
}

static void test_bad_event_ring(void **state)
{
    struct fx *f = *state;
    uint64_t seg = 0x200000;
    bad_erst(f, 0, 32, seg);               /* no segments */
    bad_erst(f, 0xffff, 32, seg);          /* more than ERST Max */
    bad_erst(f, 1, 0, seg);                /* an empty segment */
    bad_erst(f, 1, 8, seg);                /* smaller than 16 TRBs */
    bad_erst(f, 1, 0xffff, seg);           /* larger than 4096 */
    bad_erst(f, 1, 32, NOT_RAM);           /* outside RAM */
    bad_erst(f, 1, 32, RAM_SIZE - 256);    /* running off the end of RAM */
}

/* Suspend a port (U3) and resume it; a report while suspended waits, and
 * remote wakeup signals resume. */
/* Isochronous endpoints: Isoch TDs go to the device XHCI_ISO_INFLIGHT (16)
 * at a time, marked isochronous; finished out of order they complete in
 * ring order, each with its event, short packets as such; a transaction
 * error or babble ends its TD without halting the endpoint, and the ring
 * goes on; Stop Endpoint takes all back with one Stopped event for the
 * first, and a doorbell sends them again; a Normal TRB where an Isoch TD
 * starts is a TRB Error once those before it are done.  OUT data arrives
 * whole. */
#define PORT_ISO 3
#define ISO_IN_DCI 3
#define ISO_OUT_DCI 4

/* A few rounds of the event loop (yielded passes, timers). */
static void run_loop(struct fx *f)
{
    for (int i = 0; i < 10; i++)
        evloop_run_once(f->h->plat.loop, 1);
}

static uint64_t iso_wait(struct fx *f, unsigned slot, uint64_t trb, unsigned cc, uint32_t residual)
{
    struct xd_trb ev;
    if (xd_wait_event(&f->d, XD_EV_TRANSFER, true, trb, &ev, 1000) < 0)
        fail_msg("no Transfer Event for the TRB at %#llx", (unsigned long long)trb);
    assert_int_equal(XD_EV_SLOT(ev.control), slot);
    assert_int_equal(XD_EV_CC(ev.status), cc);
    assert_int_equal(XD_EV_LEN(ev.status), residual);
    return ev.param;
}

static void test_isochronous(void **state)
{
    struct fx *f = *state;
    struct xhci_drv *d = &f->d;
    char err[256];
    f->iso = calloc(1, sizeof(*f->iso));
    assert_non_null(f->iso);
    struct isodev *s = f->iso;
    usb_device_init(&s->dev, "iso", USB_SPEED_FULL, &iso_ops, &iso_descs, s);
    assert_int_equal(xhci_attach(f->xhci, &s->dev, 0, err, sizeof(err)), PORT_ISO);
    start(f, 0, false);
    enumerate_all(f);
    unsigned slot = enumerate(f, PORT_ISO, ISO_IN_DCI, XD_EP_ISOCH_IN, 64, NULL);
    assert_int_equal(xd_configure_ep(d, slot, ISO_OUT_DCI, XD_EP_ISOCH_OUT, 64, 1), XD_CC_SUCCESS);
    xd_drain_events(d);

    /* 20 TDs: 16 reach the device. */
    uint64_t buf[20], trb[20];
    for (unsigned i = 0; i < 20; i++) {
        buf[i] = xd_alloc(d, 64, 64);
        trb[i] = xd_queue_isoch(d, slot, ISO_IN_DCI, buf[i], 64);
    }
    run_loop(f);
    assert_int_equal(s->nheld, 16);
    assert_int_equal(s->not_iso, 0);
    struct xd_trb ev;
    assert_false(xd_poll_event(d, &ev));

    /* The second finishes first: nothing until the first does. */
    iso_finish(s, 1, USB_OK, 10, 0xb1);
    run_loop(f);
    assert_false(xd_poll_event(d, &ev));
    iso_finish(s, 0, USB_OK, 64, 0xa0);
    iso_wait(f, slot, trb[0], XD_CC_SUCCESS, 0);
    iso_wait(f, slot, trb[1], XD_CC_SHORT_PACKET, 54);
    uint8_t got[64];
    xd_mem_read(d, buf[0], got, 64);
    assert_int_equal(got[0], 0xa0);
    assert_int_equal(got[63], 0xa0);
    xd_mem_read(d, buf[1], got, 64);
    assert_int_equal(got[9], 0xb1);
    assert_int_equal(got[10], 0);
    run_loop(f);
    assert_int_equal(s->nheld, 16);                     /* two more went to the device */
    assert_int_equal(s->in_seen, 18);

    /* Errors end their TD; the endpoint runs on. */
    iso_finish(s, 0, USB_IOERROR, 0, 0);
    iso_wait(f, slot, trb[2], XD_CC_USB_TRANSACTION, 64);
    iso_finish(s, 0, USB_BABBLE, 64, 0xc3);
    iso_wait(f, slot, trb[3], XD_CC_BABBLE, 0);
    assert_int_equal(xd_ep_state(d, slot, ISO_IN_DCI, NULL), 1);     /* Running */
    iso_finish(s, 0, USB_OK, 64, 0xd4);
    iso_wait(f, slot, trb[4], XD_CC_SUCCESS, 0);
    run_loop(f);
    assert_int_equal(s->in_seen, 20);
    assert_int_equal(s->nheld, 15);                     /* TDs 5-19: the ring is empty */

    /* Stop Endpoint: every TD back, one Stopped event, at the first. */
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_STOP_EP) | slot << 24 | ISO_IN_DCI << 16, NULL),
                     XD_CC_SUCCESS);
    assert_int_equal(s->nheld, 0);
    assert_int_equal(s->cancels, 15);
    iso_wait(f, slot, trb[5], XD_CC_STOPPED, 64);
    assert_false(xd_poll_event(d, &ev));
    uint64_t deq = 0;
    assert_int_equal(xd_ep_state(d, slot, ISO_IN_DCI, &deq), 3);       /* Stopped */
    assert_int_equal(deq & ~0xfull, trb[5]);
    /* A doorbell: the same TDs again, from the dequeue pointer. */
    xd_doorbell(d, slot, ISO_IN_DCI);
    run_loop(f);
    assert_int_equal(s->nheld, 15);
    for (unsigned i = 5; i < 20; i++) {
        iso_finish(s, 0, USB_OK, 64, (uint8_t)i);
        iso_wait(f, slot, trb[i], XD_CC_SUCCESS, 0);
        xd_mem_read(d, buf[i], got, 1);
        assert_int_equal(got[0], i);
    }

    /* OUT: data as queued. */
    uint64_t ob = xd_alloc(d, 64, 64);
    uint8_t pattern[48];
    for (unsigned i = 0; i < sizeof(pattern); i++)
        pattern[i] = (uint8_t)(i * 7);
    xd_mem_write(d, ob, pattern, sizeof(pattern));
    uint64_t ot = xd_queue_isoch(d, slot, ISO_OUT_DCI, ob, sizeof(pattern));
    iso_wait(f, slot, ot, XD_CC_SUCCESS, 0);
    assert_int_equal(s->out_len, sizeof(pattern));
    assert_memory_equal(s->out, pattern, sizeof(pattern));

    /* A TD that does not start with an Isoch TRB, behind one in flight. */
    uint64_t good = xd_queue_isoch(d, slot, ISO_IN_DCI, buf[0], 64);
    uint64_t bad = xd_queue_normal(d, slot, ISO_IN_DCI, buf[1], 64);
    run_loop(f);
    assert_int_equal(s->nheld, 1);
    assert_false(xd_poll_event(d, &ev));
    iso_finish(s, 0, USB_OK, 64, 0xee);
    iso_wait(f, slot, good, XD_CC_SUCCESS, 0);
    iso_wait(f, slot, bad, XD_CC_TRB, 0);
    assert_int_equal(xd_ep_state(d, slot, ISO_IN_DCI, NULL), 4);      /* Error */
    assert_int_equal(s->not_iso, 0);
    check_tablet_works(f);
    xhci_detach(f->xhci, &s->dev);
}

static void test_suspend_resume(void **state)
{
    struct fx *f = *state;
    struct xhci_drv *d = &f->d;
    start(f, 0, false);
    enumerate_all(f);
    unsigned s = f->kbd_slot;
    assert_int_equal(xd_control(d, s, 0x00, 3, 1, 0, NULL, 0, NULL), XD_CC_SUCCESS);   /* remote wakeup */
    xd_wr(d, d->op, XD_PORTSC(PORT_KBD), XD_PORT_PP | 1u << 16 | 3u << 5);               /* LWS, U3 */
    assert_int_equal(XD_PORT_PLS(xd_portsc(d, PORT_KBD)), 3);
    uint64_t buf;
    queue_report(f, s, &buf);
    usb_kbd_key(f->kbd, 0x2c, true);
    struct xd_trb ev;
    assert_int_equal(xd_wait_event(d, XD_EV_PORT_STATUS, true, (uint64_t)PORT_KBD << 24, &ev, 100), 0);
    uint32_t sc = xd_portsc(d, PORT_KBD);
    assert_int_equal(XD_PORT_PLS(sc), 15);                       /* Resume */
    assert_true(sc & (1u << 22));                                /* PLC */
    assert_int_equal(xd_wait_transfer(d, s, DCI_EP1_IN, NULL, 20), -1);
    xd_wr(d, d->op, XD_PORTSC(PORT_KBD), XD_PORT_PP | 1u << 22 | 1u << 16 | 0u << 5);   /* U0 */
    assert_int_equal(XD_PORT_PLS(xd_portsc(d, PORT_KBD)), 0);
    uint8_t r[8];
    uint32_t len;
    assert_int_equal(wait_report(f, s, buf, r, &len), XD_CC_SUCCESS);
    assert_int_equal(r[2], 0x2c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enumerate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tablet_reports, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyboard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_active, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyboard_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stall, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hotplug, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_doorbells, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_cycle_transfer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_cycle_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_endless_command_ring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma_outside_ram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_event_ring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_suspend_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_isochronous, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
