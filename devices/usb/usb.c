/* The USB device core: transfer hand-off between host controllers and
 * device models, and the standard requests of USB 2.0 chapter 9. */
#include "devices/usb/usb.h"

#include <string.h>

#include "devices/util.h"

void usb_device_init(struct usb_device *d, const char *name, enum usb_speed speed,
                     const struct usb_device_ops *ops, const struct usb_descriptors *desc,
                     void *opaque)
{
    memset(d, 0, sizeof(*d));
    d->name = name;
    d->speed = speed;
    d->ops = ops;
    d->desc = desc;
    d->opaque = opaque;
}

static void active_maybe_changed(struct usb_device *d)
{
    if (d->active_watch)
        d->active_watch(d->active_opaque, d);
}

void usb_watch_active(struct usb_device *d, void (*watch)(void *opaque, struct usb_device *d),
                      void *opaque)
{
    d->active_watch = watch;
    d->active_opaque = opaque;
}

bool usb_device_active(const struct usb_device *d)
{
    if (!d->host || d->config == 0)
        return false;
    return !d->host->reachable || d->host->reachable(d->host_opaque, d);
}

void usb_host_changed(struct usb_device *d)
{
    active_maybe_changed(d);
}

void usb_attach_host(struct usb_device *d, const struct usb_host_ops *ops, void *opaque)
{
    d->host = ops;
    d->host_opaque = opaque;
    active_maybe_changed(d);
}

void usb_detach_host(struct usb_device *d)
{
    d->host = NULL;
    d->host_opaque = NULL;
    active_maybe_changed(d);
}

static uint32_t halt_bit(uint8_t ep, bool in)
{
    return 1u << ((ep & 15) + (in ? 16 : 0));
}

enum usb_status usb_submit(struct usb_device *d, struct usb_xfer *x)
{
    x->dev = d;
    x->actual = 0;
    x->pending = false;
    enum usb_status st;
    if (x->ep == 0) {
        /* A SETUP clears a protocol stall of endpoint 0 (8.5.3.4). */
        x->in = (x->setup[0] & USB_DIR_IN) != 0;
        st = d->ops->control(d, x);
    } else if (x->ep > 15 || d->config == 0 || !d->ops->data) {
        st = USB_IOERROR;      /* nobody answers there: a timeout on the bus */
    } else if (d->halted & halt_bit(x->ep, x->in)) {
        st = USB_STALL;
    } else {
        st = d->ops->data(d, x);
    }
    if (x->actual > x->len)
        x->actual = x->len;
    if (st == USB_ASYNC)
        x->pending = true;
    else if (st == USB_STALL && x->ep != 0)
        d->halted |= halt_bit(x->ep, x->in);
    x->status = st;
    return st;
}

void usb_cancel(struct usb_xfer *x)
{
    if (!x->pending)
        return;
    x->pending = false;
    if (x->dev && x->dev->ops->cancel)
        x->dev->ops->cancel(x->dev, x);
}

void usb_xfer_done(struct usb_xfer *x)
{
    if (!x->pending)
        return;
    x->pending = false;
    if (x->actual > x->len)
        x->actual = x->len;
    if (x->status == USB_ASYNC || x->status == USB_NAK)
        x->status = USB_IOERROR;      /* a device bug: not a final status */
    if (x->status == USB_STALL && x->ep != 0 && x->dev)
        x->dev->halted |= halt_bit(x->ep, x->in);
    if (x->done)
        x->done(x);
}

void usb_wakeup(struct usb_device *d, uint8_t ep, bool in)
{
    if (d->host && d->host->wakeup)
        d->host->wakeup(d->host_opaque, d, ep, in);
}

void usb_bus_reset(struct usb_device *d)
{
    d->addr = 0;
    d->config = 0;
    d->remote_wakeup = false;
    d->halted = 0;
    if (d->ops->reset)
        d->ops->reset(d);
    active_maybe_changed(d);
}

enum usb_status usb_control_reply(struct usb_xfer *x, const void *data, size_t len)
{
    size_t n = MIN(len, (size_t)usb_setup_length(x));
    n = MIN(n, (size_t)x->len);
    if (n && x->buf)
        memcpy(x->buf, data, n);
    x->actual = (uint32_t)n;
    return USB_OK;
}

/* --- descriptors --------------------------------------------------------- */

static uint16_t desc_total(const uint8_t *d)
{
    return (uint16_t)(d[2] | d[3] << 8);
}

/* Whether the configuration has an interface numbered n (alternate 0). */
static bool has_interface(const uint8_t *cfg, unsigned n)
{
    unsigned total = desc_total(cfg);
    for (unsigned off = 0; off + 2 <= total && cfg[off] >= 2; off += cfg[off])
        if (cfg[off + 1] == USB_DT_INTERFACE && off + 3 <= total && cfg[off + 2] == n)
            return true;
    return false;
}

static bool has_endpoint(const uint8_t *cfg, uint8_t addr)
{
    unsigned total = desc_total(cfg);
    for (unsigned off = 0; off + 2 <= total && cfg[off] >= 2; off += cfg[off])
        if (cfg[off + 1] == USB_DT_ENDPOINT && off + 3 <= total && cfg[off + 2] == addr)
            return true;
    return false;
}

static enum usb_status get_descriptor(struct usb_device *d, struct usb_xfer *x)
{
    const struct usb_descriptors *ds = d->desc;
    uint8_t type = (uint8_t)(usb_setup_value(x) >> 8), index = (uint8_t)usb_setup_value(x);
    uint8_t buf[256];
    switch (type) {
    case USB_DT_DEVICE:
        return usb_control_reply(x, ds->device, 18);
    case USB_DT_CONFIG:
        if (index != 0)
            return USB_STALL;
        return usb_control_reply(x, ds->config, desc_total(ds->config));
    case USB_DT_STRING:
        if (index == 0) {
            static const uint8_t langs[4] = { 4, USB_DT_STRING, 0x09, 0x04 };  /* en-US */
            return usb_control_reply(x, langs, sizeof(langs));
        } else if (index < ds->nstrings && ds->strings[index]) {
            size_t n = MIN(strlen(ds->strings[index]), (sizeof(buf) - 2) / 2);
            buf[0] = (uint8_t)(2 + 2 * n);
            buf[1] = USB_DT_STRING;
            for (size_t i = 0; i < n; i++) {
                buf[2 + 2 * i] = (uint8_t)ds->strings[index][i];
                buf[3 + 2 * i] = 0;
            }
            return usb_control_reply(x, buf, buf[0]);
        }
        return USB_STALL;
    case USB_DT_DEVICE_QUALIFIER:
        /* Only a high-speed capable device has one (9.6.2). */
        if (d->speed != USB_SPEED_HIGH)
            return USB_STALL;
        buf[0] = 10;
        buf[1] = USB_DT_DEVICE_QUALIFIER;
        memcpy(&buf[2], &ds->device[2], 6);    /* bcdUSB, class, subclass, protocol, */
        buf[8] = ds->device[17];               /* bNumConfigurations */
        buf[9] = 0;
        buf[7] = 64;                           /* bMaxPacketSize0 at full speed */
        return usb_control_reply(x, buf, 10);
    case USB_DT_BOS:
        if (!ds->bos)
            return USB_STALL;
        return usb_control_reply(x, ds->bos, desc_total(ds->bos));
    default:
        return USB_STALL;
    }
}

static enum usb_status set_configuration(struct usb_device *d, uint8_t value)
{
    if (value != 0 && value != d->desc->config[5])
        return USB_STALL;
    d->config = value;
    d->halted = 0;      /* data toggles and halts start afresh (9.1.1.5) */
    if (d->ops->configured)
        d->ops->configured(d, value);
    active_maybe_changed(d);
    return USB_OK;
}

enum usb_status usb_std_control(struct usb_device *d, struct usb_xfer *x)
{
    uint8_t type = x->setup[0], req = x->setup[1];
    uint16_t value = usb_setup_value(x), index = usb_setup_index(x);
    unsigned recip = type & USB_RECIP_MASK;
    const uint8_t *cfg = d->desc->config;
    if ((type & USB_TYPE_MASK) != USB_TYPE_STANDARD)
        return USB_STALL;
    /* Interfaces and endpoints other than 0 exist once configured (9.4). */
    if (recip == USB_RECIP_INTERFACE && (d->config == 0 || !has_interface(cfg, index & 0xff)))
        return USB_STALL;
    if (recip == USB_RECIP_ENDPOINT && (index & 0x0f) != 0 &&
        (d->config == 0 || !has_endpoint(cfg, (uint8_t)(index & 0x8f))))
        return USB_STALL;
    if (recip > USB_RECIP_ENDPOINT)
        return USB_STALL;

    switch (req) {
    case USB_REQ_GET_STATUS: {
        uint8_t st[2] = { 0, 0 };
        if (recip == USB_RECIP_DEVICE)
            st[0] = (uint8_t)(((cfg[7] & 0x40) ? 1 : 0) | (d->remote_wakeup ? 2 : 0));
        else if (recip == USB_RECIP_ENDPOINT && (index & 0x0f))
            st[0] = (d->halted & halt_bit(index & 0x0f, index & 0x80)) ? 1 : 0;
        return usb_control_reply(x, st, 2);
    }
    case USB_REQ_CLEAR_FEATURE:
    case USB_REQ_SET_FEATURE: {
        bool set = req == USB_REQ_SET_FEATURE;
        if (recip == USB_RECIP_DEVICE && value == USB_FEATURE_REMOTE_WAKEUP) {
            if (set && !(cfg[7] & 0x20))
                return USB_STALL;           /* not a remote-wakeup device */
            d->remote_wakeup = set;
            return USB_OK;
        }
        if (recip == USB_RECIP_ENDPOINT && value == USB_FEATURE_ENDPOINT_HALT) {
            if ((index & 0x0f) == 0)
                return USB_OK;
            uint32_t bit = halt_bit(index & 0x0f, index & 0x80);
            d->halted = set ? d->halted | bit : d->halted & ~bit;
            return USB_OK;
        }
        return USB_STALL;
    }
    case USB_REQ_SET_ADDRESS:
        if (recip != USB_RECIP_DEVICE || value > 127 || d->config != 0)
            return USB_STALL;
        d->addr = (uint8_t)value;
        return USB_OK;
    case USB_REQ_GET_DESCRIPTOR:
        if (recip != USB_RECIP_DEVICE)
            return USB_STALL;
        return get_descriptor(d, x);
    case USB_REQ_GET_CONFIGURATION:
        if (recip != USB_RECIP_DEVICE)
            return USB_STALL;
        return usb_control_reply(x, &d->config, 1);
    case USB_REQ_SET_CONFIGURATION:
        if (recip != USB_RECIP_DEVICE || d->addr == 0)
            return USB_STALL;
        return set_configuration(d, (uint8_t)value);
    case USB_REQ_GET_INTERFACE:
        if (recip != USB_RECIP_INTERFACE)
            return USB_STALL;
        return usb_control_reply(x, "\0", 1);
    case USB_REQ_SET_INTERFACE:
        if (recip != USB_RECIP_INTERFACE || value != 0)
            return USB_STALL;
        return USB_OK;
    default:
        return USB_STALL;
    }
}
