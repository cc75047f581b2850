/* virtio-net (virtio 1.2, 5.1) over the modern PCI transport, attached to a
 * network backend (devices/net).  One receive and one transmit queue of 256
 * entries; checksum offload and TCP segmentation (TSO4/6) in both
 * directions' sense the spec gives them, mergeable receive buffers, link
 * status, the MAC from the definition. */
#ifndef BURROW_VIRTIO_NET_H
#define BURROW_VIRTIO_NET_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

#include "devices/pci.h"
#include "devices/platform.h"

struct net_backend;
struct virtio_net;

/* iPXE's BIOS option ROM for virtio-net from Debian's ipxe-qemu. */
#define VIRTIO_NET_ROM_DEFAULT "/usr/lib/ipxe/qemu/pxe-virtio.rom"

/* Places the NIC at the first free slot and attaches it to nb (which stays
 * the caller's: free it after virtio_net_destroy).  rom_path may be NULL
 * (no option ROM).  Returns NULL with a message in err on failure. */
struct virtio_net *virtio_net_create(struct platform *p, struct pci_bus *bus, struct net_backend *nb,
                                     const uint8_t mac[6], const char *rom_path, char *err,
                                     size_t errlen);
void virtio_net_destroy(struct virtio_net *n);
struct pci_device *virtio_net_pci(struct virtio_net *n);

/* Frames the device refused from the guest (malformed, oversized) and frames
 * it could not place in the guest's buffers. */
struct virtio_net_counters {
    uint64_t tx_errors;
    uint64_t rx_too_big;
};
void virtio_net_counters(const struct virtio_net *n, struct virtio_net_counters *out);

#endif
