/* USB mass storage (USB Mass Storage Class Bulk-Only Transport 1.0): a
 * high-speed device with one LUN, SCSI transparent command set (SPC-4,
 * SBC-3 block commands on 512-byte blocks) over any image the block layer
 * opens (raw or qcow2), locked like every other disk.
 *
 * Bulk IN is endpoint 0x81, bulk OUT 0x02.  Disk I/O is asynchronous:
 * a data or status transfer that waits for the image is held (USB_ASYNC)
 * and completed from the event loop. */
#ifndef BURROW_USB_MSD_H
#define BURROW_USB_MSD_H

#include <stdbool.h>
#include <stddef.h>

#include "devices/usb/usb.h"

struct evloop;
struct usb_msd;

/* Opens path (format "raw", "qcow2" or NULL: detected).  index numbers the
 * machine's USB disks and makes their serial numbers differ.  Returns
 * NULL with a message in err. */
struct usb_msd *usb_msd_new(struct evloop *loop, const char *path, const char *format, bool read_only,
                            unsigned index, char *err, size_t errlen);
/* Detach it from its host first; waits for the image's requests. */
void usb_msd_free(struct usb_msd *m);
struct usb_device *usb_msd_device(struct usb_msd *m);

#endif
