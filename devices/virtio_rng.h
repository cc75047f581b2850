/* virtio entropy device (virtio 1.2, 5.4) over the modern PCI transport:
 * fills the driver's buffers from the host's getrandom(). */
#ifndef BURROW_VIRTIO_RNG_H
#define BURROW_VIRTIO_RNG_H

#include <stddef.h>

#include "devices/pci.h"
#include "devices/platform.h"

struct virtio_rng;

/* Places the device at the first free slot of bus; NULL with a message in
 * err on failure. */
struct virtio_rng *virtio_rng_create(struct platform *p, struct pci_bus *bus, char *err, size_t errlen);
void virtio_rng_destroy(struct virtio_rng *r);
struct pci_device *virtio_rng_pci(struct virtio_rng *r);

#endif
