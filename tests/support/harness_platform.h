/* A fake machine for the device harness: guest RAM from the heap, port and
 * MMIO buses, an event loop, and a record of interrupts and requests.
 * Tests drive devices through the harness_pio and harness_mmio calls exactly as a
 * guest would, with no KVM. */
#ifndef BURROW_HARNESS_PLATFORM_H
#define BURROW_HARNESS_PLATFORM_H

#include <stdint.h>
#include <stdbool.h>

#include "devices/pci.h"
#include "devices/platform.h"
#include "devices/evloop.h"

#define HARNESS_MAX_GSI 24
#define HARNESS_MAX_MSI 64

struct harness_msi {
    bool used;
    uint64_t addr;
    uint32_t data;
    unsigned fired;          /* times fired */
};

struct harness {
    struct platform plat;
    struct guest_mem mem;
    struct io_bus pio, mmio;
    uint8_t *ram;
    uint64_t ram_size;
    bool irq_level[HARNESS_MAX_GSI];
    unsigned irq_raises[HARNESS_MAX_GSI];   /* rising edges seen */
    struct harness_msi msi[HARNESS_MAX_MSI];
    unsigned msi_total;                      /* all MSIs fired */
    unsigned resets, poweroffs;
    int debug_exit;                          /* -1 until requested */
};

/* Whether a route programmed with this address and data has fired. */
bool harness_msi_fired(const struct harness *h, uint64_t addr, uint32_t data);

/* RAM at guest physical 0.  Returns NULL on allocation failure. */
struct harness *harness_new(uint64_t ram_size);
void harness_free(struct harness *h);

uint64_t harness_pio_read(struct harness *h, uint16_t port, unsigned size);
void harness_pio_write(struct harness *h, uint16_t port, unsigned size, uint64_t v);
uint64_t harness_mmio_read(struct harness *h, uint64_t addr, unsigned size);
void harness_mmio_write(struct harness *h, uint64_t addr, unsigned size, uint64_t v);

/* Runs the event loop until cond(opaque) holds or timeout_ms passes;
 * returns cond's final value. */
bool harness_run_until(struct harness *h, bool (*cond)(void *), void *opaque, int timeout_ms);

/* A PCI bus on the harness whose INTx lines take the usual swizzle onto
 * IOAPIC inputs 16-19, as the machine's PIIX3 does in APIC mode. */
void harness_pci_bus_init(struct pci_bus *bus, struct harness *h);
/* The GSI the device at devfn raises its INTx on. */
unsigned harness_pci_intx_gsi(struct pci_bus *bus, uint8_t devfn);
/* devfn of the first device with these ids, or -1. */
int harness_pci_find(struct pci_bus *bus, uint16_t vendor, uint16_t device);

#endif
