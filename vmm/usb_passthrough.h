/* Host USB devices given to the guest: which ones (--usb-host, --usb-filter
 * and the control socket's usb-attach and usb-detach), when (at start and
 * whenever one is plugged in, from the kernel's hot-plug messages), and
 * on which port of the xHCI controller.  The device model itself is
 * devices/usb/host.c. */
#ifndef BURROW_VMM_USB_PASSTHROUGH_H
#define BURROW_VMM_USB_PASSTHROUGH_H

#include <stddef.h>

struct machine;

/* After the USB controller is built: libusb, the hot-plug messages, and
 * the devices --usb-host and --usb-filter name that are plugged in now.
 * Fails (err) when a --usb-host device is there but cannot be opened;
 * without libusb or hot-plug messages the VM runs on with a warning. */
int passthrough_setup(struct machine *m, char *err, size_t errlen);
/* Gives every device back to the host, waiting a few seconds for it; with
 * the device lock held, before the controller goes. */
void passthrough_teardown(struct machine *m);
/* usb-list, usb-attach, usb-detach. */
void passthrough_register_commands(struct machine *m);

#endif
