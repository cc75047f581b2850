/* virtio-blk (virtio 1.2, 5.2) over the modern PCI transport, backed by a
 * block image (devices/block).  One request queue of 256 entries. */
#ifndef BURROW_VIRTIO_BLK_H
#define BURROW_VIRTIO_BLK_H

#include <stdbool.h>
#include <stddef.h>

#include "devices/pci.h"
#include "devices/platform.h"

struct virtio_blk;

/* Opens the image (format "raw", "qcow2", or NULL to detect it) and places
 * the device at the first free slot of bus.  Returns NULL with a message in
 * err on failure. */
struct virtio_blk *virtio_blk_create(struct platform *p, struct pci_bus *bus, const char *path,
                                     const char *format, bool read_only, char *err, size_t errlen);
/* Waits for in-flight requests, leaves the bus and closes the image. */
void virtio_blk_destroy(struct virtio_blk *b);

/* The serial number GET_ID reports (up to 20 bytes; longer is cut). */
void virtio_blk_set_serial(struct virtio_blk *b, const char *serial);
struct pci_device *virtio_blk_pci(struct virtio_blk *b);

#endif
