/* Conventional PCI: configuration space, BARs, capabilities, INTx and MSI-X.
 * Devices fill in a struct pci_device and register it on the bus; BAR
 * decoding (mapping on the port or MMIO bus as the guest programs the BARs
 * and the command register) is done here, not in the devices. */
#ifndef BURROW_PCI_H
#define BURROW_PCI_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

#include "devices/bus.h"
#include "devices/platform.h"

/* Configuration space registers (PCI Local Bus 3.0, 6.1) */
#define PCI_VENDOR_ID        0x00
#define PCI_DEVICE_ID        0x02
#define PCI_COMMAND          0x04
#define  PCI_COMMAND_IO        0x0001
#define  PCI_COMMAND_MEMORY    0x0002
#define  PCI_COMMAND_MASTER    0x0004
#define  PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS           0x06
#define  PCI_STATUS_INTERRUPT  0x0008
#define  PCI_STATUS_CAP_LIST   0x0010
#define PCI_REVISION_ID      0x08
#define PCI_CLASS_PROG       0x09
#define PCI_CLASS_DEVICE     0x0a
#define PCI_HEADER_TYPE      0x0e
#define  PCI_HEADER_TYPE_MULTI 0x80
#define PCI_BASE_ADDRESS_0   0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID     0x2e
#define PCI_ROM_ADDRESS      0x30
#define PCI_CAPABILITY_LIST  0x34
#define PCI_INTERRUPT_LINE   0x3c
#define PCI_INTERRUPT_PIN    0x3d

#define PCI_CAP_ID_MSI       0x05
#define PCI_CAP_ID_MSIX      0x11
#define PCI_CAP_ID_VNDR      0x09

#define PCI_CONFIG_SIZE      256
#define PCI_NUM_BARS         6

enum pci_bar_type { PCI_BAR_NONE, PCI_BAR_IO, PCI_BAR_MEM32, PCI_BAR_MEM64 };

struct pci_bar {
    enum pci_bar_type type;
    bool prefetch;
    uint64_t size;              /* power of two */
    const struct io_ops *ops;   /* offsets relative to the BAR */
    void *opaque;
    uint64_t mapped_at;         /* valid when mapped */
    bool mapped;
};

struct pci_device;
struct pci_bus;

struct pci_msix {
    unsigned nvec;
    int bar;
    uint8_t cap;                /* capability offset */
    uint8_t *table;             /* nvec * 16 bytes */
    uint64_t *pba;
    int *routes;                /* platform MSI route per vector, -1 if none */
};

struct pci_device {
    uint8_t config[PCI_CONFIG_SIZE];
    uint8_t wmask[PCI_CONFIG_SIZE];     /* guest-writable bits */
    uint8_t w1cmask[PCI_CONFIG_SIZE];   /* write-one-to-clear bits */
    struct pci_bar bars[PCI_NUM_BARS];
    const uint8_t *rom;                 /* expansion ROM image, may be NULL */
    uint64_t rom_len;                   /* bytes of rom; the rest reads as 0 */
    uint64_t rom_size;                  /* power of two */
    uint64_t rom_mapped_at;
    bool rom_mapped;
    uint8_t next_cap;                   /* where the next capability goes */
    uint8_t devfn;                      /* slot << 3 | function */
    const char *name;
    struct pci_bus *bus;
    struct pci_msix *msix;
    uint8_t msi_cap;                    /* MSI capability offset, 0 if none */
    bool msi_routed;                    /* msi_route holds a platform route */
    int msi_route;
    bool intx_level;                    /* what the device asserts */
    bool intx_asserted;                 /* what reached the chipset */
    void *opaque;                       /* the device model */
    /* Optional hooks.  config_write runs after the generic update. */
    void (*config_write)(struct pci_device *d, unsigned off, unsigned size, uint32_t val);
    uint32_t (*config_read)(struct pci_device *d, unsigned off, unsigned size, uint32_t val);
    void (*bar_remapped)(struct pci_device *d, int bar);   /* after (un)mapping */
    void (*reset)(struct pci_device *d);                    /* device-specific reset */
};

/* INTx routing: the chipset decides which GSI(s) a (slot, pin) reaches. */
typedef void (*pci_intx_fn)(void *opaque, uint8_t devfn, uint8_t pin, bool level);

struct pci_bus {
    struct pci_device *devices[256];    /* by devfn, bus 0 only */
    struct platform *plat;
    pci_intx_fn intx;
    void *intx_opaque;
};

void pci_bus_init(struct pci_bus *bus, struct platform *plat);
/* Initializes d's header; the device then adds BARs and capabilities. */
void pci_device_init(struct pci_device *d, uint16_t vendor, uint16_t device,
                     uint32_t class_code, uint8_t revision, const char *name);
void pci_set_subsystem(struct pci_device *d, uint16_t vendor, uint16_t id);
/* Interrupt pin 1..4 (INTA..INTD), 0 for none. */
void pci_set_irq_pin(struct pci_device *d, uint8_t pin);
void pci_add_bar(struct pci_device *d, int bar, enum pci_bar_type type, bool prefetch,
                 uint64_t size, const struct io_ops *ops, void *opaque);
void pci_set_rom(struct pci_device *d, const uint8_t *rom, uint64_t len);
/* Appends a capability; data starts with the ID byte and a placeholder next
 * byte.  Returns its offset, or 0 when the space is full. */
uint8_t pci_add_cap(struct pci_device *d, const void *data, unsigned len);
/* Places d at devfn (-1: first free slot, function 0).  Returns 0 or -1. */
int pci_bus_add(struct pci_bus *bus, struct pci_device *d, int devfn);

/* Takes d off its bus: unmaps its BARs and ROM, drops its INTx, frees its
 * MSI-X state and routes.  The device's own memory stays the caller's. */
void pci_bus_remove(struct pci_device *d);

/* Configuration access as from the host bridge. */
uint32_t pci_config_read(struct pci_bus *bus, uint8_t devfn, unsigned off, unsigned size);
void pci_config_write(struct pci_bus *bus, uint8_t devfn, unsigned off, unsigned size, uint32_t val);

/* Unmaps all BARs and resets the generic header (command, BARs, MSI-X). */
void pci_device_reset(struct pci_device *d);
void pci_bus_reset(struct pci_bus *bus);

/* INTx level of the device's pin (honours INTx-disable). */
void pci_set_intx(struct pci_device *d, bool level);

/* MSI-X with its table and PBA alone in BAR `bar` (table at 0, PBA at 2 KiB
 * for up to 128 vectors).  Returns 0 or -1. */
int pci_msix_init(struct pci_device *d, unsigned nvec, int bar);
bool pci_msix_enabled(const struct pci_device *d);
/* Signals vector v (sets the pending bit if masked).  False when MSI-X is
 * disabled (use INTx then) or v is out of range. */
bool pci_msix_notify(struct pci_device *d, unsigned v);

/* MSI (PCI 3.0, 6.8.1) with one vector, a 64-bit address and no
 * per-vector masking.  Returns 0 or -1. */
int pci_msi_init(struct pci_device *d);
bool pci_msi_enabled(const struct pci_device *d);
/* Sends the message; false when MSI is off (use INTx then). */
bool pci_msi_notify(struct pci_device *d);

static inline uint16_t pci_cfg16(const struct pci_device *d, unsigned off)
{
    return (uint16_t)(d->config[off] | d->config[off + 1] << 8);
}

#endif
