/* What a USB device model offers a host controller, and the chapter-9
 * plumbing (USB 2.0 spec, chapter 9) every device shares.
 *
 * A host controller hands a device transfers (struct usb_xfer): control
 * transfers on endpoint 0 with their SETUP packet, data transfers on
 * endpoints 1-15.  The device answers each with a status:
 *   USB_OK, USB_STALL, USB_BABBLE, USB_IOERROR: done now, x->actual bytes
 *       moved;
 *   USB_NAK: nothing to move now; the device calls usb_wakeup() once the
 *       endpoint has something, and the host tries again then (interrupt IN
 *       endpoints with no report);
 *   USB_ASYNC: taken; the device finishes it later with usb_xfer_done()
 *       (a disk read, a pass-through transfer), unless the host takes it
 *       back first with usb_cancel() (Stop Endpoint, reset, unplug).
 *
 * Data moves through a buffer the host owns (x->buf, x->len bytes), so a
 * device never sees guest memory.  Everything here runs under the device
 * lock; a device completing from another thread hands the completion to
 * the event loop first. */
#ifndef BURROW_USB_H
#define BURROW_USB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum usb_speed { USB_SPEED_LOW, USB_SPEED_FULL, USB_SPEED_HIGH, USB_SPEED_SUPER };

enum usb_status {
    USB_OK,
    USB_NAK,
    USB_STALL,
    USB_BABBLE,
    USB_IOERROR,
    USB_ASYNC,
};

/* Standard requests (9.4) and descriptor types (9.4, table 9-5). */
#define USB_DIR_IN              0x80
#define USB_TYPE_MASK           0x60
#define USB_TYPE_STANDARD       0x00
#define USB_TYPE_CLASS          0x20
#define USB_TYPE_VENDOR         0x40
#define USB_RECIP_MASK          0x1f
#define USB_RECIP_DEVICE        0
#define USB_RECIP_INTERFACE     1
#define USB_RECIP_ENDPOINT      2

#define USB_REQ_GET_STATUS        0
#define USB_REQ_CLEAR_FEATURE     1
#define USB_REQ_SET_FEATURE       3
#define USB_REQ_SET_ADDRESS       5
#define USB_REQ_GET_DESCRIPTOR    6
#define USB_REQ_SET_DESCRIPTOR    7
#define USB_REQ_GET_CONFIGURATION 8
#define USB_REQ_SET_CONFIGURATION 9
#define USB_REQ_GET_INTERFACE     10
#define USB_REQ_SET_INTERFACE     11

#define USB_DT_DEVICE           1
#define USB_DT_CONFIG           2
#define USB_DT_STRING           3
#define USB_DT_INTERFACE        4
#define USB_DT_ENDPOINT         5
#define USB_DT_DEVICE_QUALIFIER 6
#define USB_DT_BOS              15

#define USB_FEATURE_ENDPOINT_HALT   0
#define USB_FEATURE_REMOTE_WAKEUP   1

struct usb_device;

struct usb_xfer {
    /* Filled in by the host before usb_submit(). */
    uint8_t ep;                 /* endpoint number, 0-15 */
    bool in;                    /* direction; for endpoint 0 the SETUP's */
    bool iso;                   /* isochronous: one service interval's data
                                 * (all the packets of one (micro)frame);
                                 * errors end it, they never halt the
                                 * endpoint.  A host may have several of an
                                 * endpoint's in flight: they finish in order */
    uint8_t setup[8];           /* endpoint 0: the SETUP packet */
    uint8_t *buf;               /* OUT: len bytes to send; IN: room for len;
                                 * never NULL, even when len is 0 */
    uint32_t len;
    void (*done)(struct usb_xfer *x);   /* a USB_ASYNC transfer finished */
    void *opaque;               /* the host's */
    /* Filled in by the device. */
    uint32_t actual;            /* bytes moved */
    enum usb_status status;
    /* The core's. */
    struct usb_device *dev;
    bool pending;               /* USB_ASYNC and not done or cancelled yet */
};

struct usb_device_ops {
    /* A control transfer (x->setup).  Devices answer their class and
     * vendor requests and pass the rest to usb_std_control(). */
    enum usb_status (*control)(struct usb_device *d, struct usb_xfer *x);
    /* A transfer on endpoint x->ep (1-15), direction x->in.  Called only
     * while configured and the endpoint is not halted.  NULL: no data
     * endpoints. */
    enum usb_status (*data)(struct usb_device *d, struct usb_xfer *x);
    /* Drop a USB_ASYNC transfer still held: it must not be completed
     * afterwards.  Needed by devices that return USB_ASYNC. */
    void (*cancel)(struct usb_device *d, struct usb_xfer *x);
    /* Bus reset, after the core cleared address and configuration.  May be
     * NULL. */
    void (*reset)(struct usb_device *d);
    /* SET_CONFIGURATION took effect (0: back to the Address state).  May be
     * NULL. */
    void (*configured)(struct usb_device *d, uint8_t value);
};

/* The descriptors usb_std_control() serves.  strings[i] is string index
 * i (ASCII, sent as UTF-16LE); strings[0] is unused: index 0 is the
 * language list (US English). */
struct usb_descriptors {
    const uint8_t *device;          /* 18 bytes */
    const uint8_t *config;          /* the whole of configuration 1 */
    const uint8_t *bos;             /* NULL: none (GET_DESCRIPTOR stalls) */
    const char *const *strings;
    unsigned nstrings;
};

/* The host controller's side of an attached device. */
struct usb_host_ops {
    /* An endpoint that answered USB_NAK may have something now. */
    void (*wakeup)(void *opaque, struct usb_device *d, uint8_t ep, bool in);
    /* Whether the host moves transfers to d now (the controller runs and
     * d's port is enabled).  NULL: always. */
    bool (*reachable)(void *opaque, const struct usb_device *d);
};

struct usb_device {
    const char *name;
    enum usb_speed speed;
    const struct usb_device_ops *ops;
    const struct usb_descriptors *desc;
    void *opaque;                   /* the device model's */
    /* Chapter-9 state, kept by the core. */
    uint8_t addr;
    uint8_t config;                 /* bConfigurationValue, 0: unconfigured */
    bool remote_wakeup;             /* DEVICE_REMOTE_WAKEUP set by the host */
    uint32_t halted;                /* ENDPOINT_HALT: bit ep OUT, bit 16+ep IN */
    /* The host it hangs off (NULL: detached). */
    const struct usb_host_ops *host;
    void *host_opaque;
    /* The owner's watch on usb_device_active() (usb_watch_active). */
    void (*active_watch)(void *opaque, struct usb_device *d);
    void *active_opaque;
};

void usb_device_init(struct usb_device *d, const char *name, enum usb_speed speed,
                     const struct usb_device_ops *ops, const struct usb_descriptors *desc,
                     void *opaque);

/* Host side. */
void usb_attach_host(struct usb_device *d, const struct usb_host_ops *ops, void *opaque);
void usb_detach_host(struct usb_device *d);
/* Hands x to the device.  The returned status is also left in x->status;
 * after USB_ASYNC the device owns x until x->done runs or usb_cancel(). */
enum usb_status usb_submit(struct usb_device *d, struct usb_xfer *x);
/* Takes back a USB_ASYNC transfer; does nothing for one that is done. */
void usb_cancel(struct usb_xfer *x);
/* Bus reset: address 0, unconfigured, no halts.  The host cancels its
 * transfers first. */
void usb_bus_reset(struct usb_device *d);

/* Host side: whether d is reachable (usb_host_ops.reachable) may have
 * changed: the controller started, stopped or was reset, d's port was
 * enabled or disabled. */
void usb_host_changed(struct usb_device *d);

/* Whether the guest uses d: attached, configured (SET_CONFIGURATION with a
 * non-zero value) and reachable through its host.  Input for a device
 * that is not active would wait for nobody. */
bool usb_device_active(const struct usb_device *d);
/* Calls watch (device lock held) whenever usb_device_active() may have
 * changed: configuration, bus reset, plug, unplug, the host starting or
 * stopping.  The callback compares with what it saw last; it may come
 * when nothing changed.  Set after usb_device_init(); NULL: no watch. */
void usb_watch_active(struct usb_device *d, void (*watch)(void *opaque, struct usb_device *d),
                      void *opaque);

/* Device side. */
/* Finishes a USB_ASYNC transfer (x->status and x->actual set). */
void usb_xfer_done(struct usb_xfer *x);
/* Endpoint ep (direction in) has something for a transfer it NAKed. */
void usb_wakeup(struct usb_device *d, uint8_t ep, bool in);
/* The standard requests from d->desc: GET_STATUS, CLEAR/SET_FEATURE,
 * SET_ADDRESS, GET_DESCRIPTOR (device, configuration, string, BOS),
 * GET/SET_CONFIGURATION, GET/SET_INTERFACE (alternate setting 0 only).
 * Anything else stalls. */
enum usb_status usb_std_control(struct usb_device *d, struct usb_xfer *x);
/* Copies an IN control reply into x: at most wLength and x->len bytes. */
enum usb_status usb_control_reply(struct usb_xfer *x, const void *data, size_t len);

static inline uint16_t usb_setup_value(const struct usb_xfer *x)
{
    return (uint16_t)(x->setup[2] | x->setup[3] << 8);
}

static inline uint16_t usb_setup_index(const struct usb_xfer *x)
{
    return (uint16_t)(x->setup[4] | x->setup[5] << 8);
}

static inline uint16_t usb_setup_length(const struct usb_xfer *x)
{
    return (uint16_t)(x->setup[6] | x->setup[7] << 8);
}

#endif
