/* Pass-through of a host USB device to the guest, with libusb-1.0.
 *
 * The device model (struct usb_host_dev) stands on the guest's controller
 * for a real device whose usbfs node the owner opened.  Its interfaces are
 * claimed from the host's drivers (detached, and given back when it is
 * closed).  Control, bulk, interrupt and isochronous transfers go to the
 * device as libusb asynchronous transfers; libusb's events are handled on
 * the event loop's thread (the loop watches libusb's descriptors and the
 * device's node), so completions reach the device model there, under the
 * device lock.  Requests that libusb does as blocking calls (claiming, SET_CONFIGURATION, SET_INTERFACE,
 * CLEAR_FEATURE(ENDPOINT_HALT), a port reset) run on a worker thread of
 * the device's own.  So no vCPU and no device-lock holder ever waits for
 * the device.  SET_ADDRESS is answered here: the host's kernel addressed
 * the device already.
 *
 * A device that leaves the host (unplugged, or not the same device after
 * a reset) fails the transfers it had with a transaction error, and its
 * owner hears of it through gone(): it unplugs it from the guest and
 * closes it; the VM runs on.
 *
 * Everything here is called on the loop's thread with the device lock
 * held, and calls back the same way. */
#ifndef BURROW_USB_HOST_H
#define BURROW_USB_HOST_H

#include <stdbool.h>
#include <stddef.h>

#include "devices/usb/usb.h"

struct evloop;
struct usb_host_ctx;
struct usb_host_dev;

/* libusb (with no device discovery of its own: the owner finds devices in
 * sysfs and opens their nodes), its descriptors watched by loop.  NULL
 * with a message when libusb cannot start. */
struct usb_host_ctx *usb_host_ctx_new(struct evloop *loop, char *err, size_t errlen);
/* Every device must have been closed (closed() called) and freed. */
void usb_host_ctx_free(struct usb_host_ctx *c);
/* Handles completions that are due, waiting up to timeout_ms for the
 * first: for shutdown, once the event loop no longer runs.  Returns how
 * many came. */
int usb_host_ctx_poll(struct usb_host_ctx *c, int timeout_ms);

struct usb_host_dev_ops {
    /* The device is open, its interfaces claimed (rc 0; plug it in now),
     * or it could not be (rc -1, why says what: close it). */
    void (*opened)(void *opaque, struct usb_host_dev *h, int rc, const char *why);
    /* It left the host: unplug it from the guest and close it. */
    void (*gone)(void *opaque, struct usb_host_dev *h);
    /* Closed: its interfaces are back with the host's drivers; free it. */
    void (*closed)(void *opaque, struct usb_host_dev *h);
};

/* A device model for the usbfs node open on fd (read-write), which it
 * owns from now on, running at speed; name is for messages.  Opening
 * (claiming the interfaces) goes on in the background: opened() says when
 * it is done.  NULL with a message (fd closed) when it cannot start. */
struct usb_host_dev *usb_host_dev_new(struct usb_host_ctx *c, int fd, const char *name,
                                      enum usb_speed speed, const struct usb_host_dev_ops *ops,
                                      void *opaque, char *err, size_t errlen);
struct usb_device *usb_host_dev_device(struct usb_host_dev *h);
/* The host says it is gone (a hot-plug message): as when a transfer finds
 * it gone, transfers fail and gone() follows. */
void usb_host_dev_lost(struct usb_host_dev *h);
/* Gives the device back: unplug it from the guest's controller first.
 * Transfers still with the device are taken back, the interfaces released
 * (the host's drivers bind again), the node closed; closed() follows,
 * always later, from the event loop. */
void usb_host_dev_close(struct usb_host_dev *h);
/* After closed(). */
void usb_host_dev_free(struct usb_host_dev *h);

#endif
