/* AHCI 1.3.1 SATA host controller, presented as Intel ICH9's (8086:2922,
 * class 010601h), with six ports for ATA disks and ATAPI CD/DVD drives
 * (devices/ata.h).  ABAR is BAR 5 (4 KiB of MMIO); interrupts are INTx. */
#ifndef BURROW_AHCI_H
#define BURROW_AHCI_H

#include <stdbool.h>
#include <stddef.h>

#include "devices/pci.h"
#include "devices/platform.h"

#define AHCI_PORTS 6

struct ahci;

/* Places the controller at devfn (-1: first free slot).  Returns NULL with
 * a message in err on failure. */
struct ahci *ahci_create(struct platform *p, struct pci_bus *bus, int devfn, char *err, size_t errlen);
/* Waits for I/O in flight, leaves the bus, closes every image. */
void ahci_destroy(struct ahci *a);
struct pci_device *ahci_pci(struct ahci *a);

/* Attach a hard disk image / a CD/DVD drive (path NULL: empty) to a free
 * port 0..AHCI_PORTS-1, before the guest runs.  Return 0 or -1 with err. */
/* format: "raw", "qcow2", or NULL to detect it. */
int ahci_attach_disk(struct ahci *a, int port, const char *path, const char *format, bool read_only,
                     char *err, size_t errlen);
int ahci_attach_cdrom(struct ahci *a, int port, const char *path, char *err, size_t errlen);

/* Removable media on a CD/DVD port.  Eject is refused while the guest holds
 * the tray locked unless force.  Return 0 or -1 with err. */
int ahci_eject(struct ahci *a, int port, bool force, char *err, size_t errlen);
int ahci_change_media(struct ahci *a, int port, const char *path, char *err, size_t errlen);

/* The first port with a CD/DVD drive, or -1. */
int ahci_find_cdrom(const struct ahci *a);
/* The image in a port's drive (NULL: none or no such port). */
const char *ahci_medium_path(const struct ahci *a, int port);

#endif
