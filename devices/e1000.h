/* Intel 82540EM Gigabit Ethernet controller (8254x Family of Gigabit
 * Ethernet Controllers Software Developer's Manual), PCI 8086:100e, for
 * guests without virtio drivers.  BAR0: 128 KiB of registers; BAR1: the
 * IOADDR/IODATA window onto them.  Legacy and extended (context/data with
 * checksum offload and TCP segmentation) transmit descriptors, legacy
 * receive descriptors, the Microwire EEPROM through EECD and EERD, the PHY
 * through MDIC, receive address and multicast filtering, INTx. */
#ifndef BURROW_E1000_H
#define BURROW_E1000_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

#include "devices/pci.h"
#include "devices/platform.h"

struct net_backend;
struct e1000;

/* iPXE's BIOS option ROM for the 82540EM from Debian's ipxe-qemu. */
#define E1000_ROM_DEFAULT "/usr/lib/ipxe/qemu/pxe-e1000.rom"

/* Places the NIC at the first free slot and attaches it to nb (which stays
 * the caller's: free it after e1000_destroy).  rom_path may be NULL.
 * Returns NULL with a message in err on failure. */
struct e1000 *e1000_create(struct platform *p, struct pci_bus *bus, struct net_backend *nb,
                           const uint8_t mac[6], const char *rom_path, char *err, size_t errlen);
void e1000_destroy(struct e1000 *e);
struct pci_device *e1000_pci(struct e1000 *e);

/* What the device refused: descriptors it could not use, frames it dropped. */
struct e1000_counters {
    uint64_t tx_errors;      /* bad rings, oversized or malformed packets */
    uint64_t rx_errors;      /* bad receive rings or buffers */
    uint64_t rx_filtered;    /* not for us (address filters) */
    uint64_t rx_oversize;    /* longer than RCTL allows */
};
void e1000_counters(const struct e1000 *e, struct e1000_counters *out);

#endif
