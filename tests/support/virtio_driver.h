/* A guest-side virtio 1.x PCI driver for the device harness, written from
 * the specification (virtio 1.2, 4.1 and 2.7) and independent of the device
 * code: it finds the device in PCI configuration space, places its BARs the
 * way firmware does, walks the capability list, negotiates features, lays
 * out split virtqueues in harness RAM, programs MSI-X, posts buffers and
 * collects used entries. */
#ifndef BURROW_TEST_VIRTIO_DRIVER_H
#define BURROW_TEST_VIRTIO_DRIVER_H

#include <stdint.h>
#include <stdbool.h>

#include "devices/pci.h"
#include "support/harness_platform.h"

#define VDRV_MAX_QUEUES 4

/* Device status bits (2.1) */
#define VDRV_S_ACKNOWLEDGE 1
#define VDRV_S_DRIVER      2
#define VDRV_S_DRIVER_OK   4
#define VDRV_S_FEATURES_OK 8
#define VDRV_S_NEEDS_RESET 64
#define VDRV_S_FAILED      128

/* Common configuration offsets (4.1.4.3) */
#define VDRV_CC_DFSELECT   0x00
#define VDRV_CC_DF         0x04
#define VDRV_CC_GFSELECT   0x08
#define VDRV_CC_GF         0x0c
#define VDRV_CC_MSIX       0x10
#define VDRV_CC_NUMQ       0x12
#define VDRV_CC_STATUS     0x14
#define VDRV_CC_CFGGEN     0x15
#define VDRV_CC_Q_SELECT   0x16
#define VDRV_CC_Q_SIZE     0x18
#define VDRV_CC_Q_MSIX     0x1a
#define VDRV_CC_Q_ENABLE   0x1c
#define VDRV_CC_Q_NOFF     0x1e
#define VDRV_CC_Q_DESCLO   0x20
#define VDRV_CC_Q_DESCHI   0x24
#define VDRV_CC_Q_AVAILLO  0x28
#define VDRV_CC_Q_AVAILHI  0x2c
#define VDRV_CC_Q_USEDLO   0x30
#define VDRV_CC_Q_USEDHI   0x34

/* Descriptor flags (2.7.5) */
#define VDRV_DESC_NEXT     1
#define VDRV_DESC_WRITE    2
#define VDRV_DESC_INDIRECT 4

#define VDRV_NO_VECTOR 0xffff

struct vdrv_queue {
    uint16_t size;
    uint64_t desc, avail, used;     /* guest physical addresses */
    uint16_t avail_idx;             /* next index the driver publishes */
    uint16_t used_seen;             /* used entries consumed */
    uint16_t next_desc;             /* round-robin descriptor slot */
    uint64_t notify_addr;
};

struct vdrv {
    struct harness *h;
    struct pci_bus *bus;
    uint8_t devfn;
    uint64_t bar[6];
    uint64_t common, isr, device, notify;   /* MMIO addresses of the structures */
    uint32_t common_len, device_len, notify_len;
    uint32_t notify_mult;
    uint8_t pci_cfg_cap;
    uint8_t msix_cap;
    uint16_t msix_nvec;
    uint64_t msix_table;
    uint64_t heap;                  /* bump allocator in harness RAM */
    uint64_t features;              /* negotiated */
    struct vdrv_queue q[VDRV_MAX_QUEUES];
};

struct vdrv_buf {
    uint64_t addr;
    uint32_t len;
    bool write;                     /* device-writable */
};

/* GSI that the device's INTx pin reaches on a harness_pci_bus_init bus. */
unsigned vdrv_intx_gsi(const struct vdrv *d);

/* Sizes and places the BARs from mmio_base, enables decoding and bus
 * mastering, finds the virtio structures and MSI-X.  Returns 0 or -1. */
int vdrv_probe(struct vdrv *d, struct harness *h, struct pci_bus *bus, uint8_t devfn, uint64_t mmio_base);

uint64_t vdrv_alloc(struct vdrv *d, uint64_t size, uint64_t align);

uint64_t vdrv_common_read(struct vdrv *d, unsigned off, unsigned size);
void vdrv_common_write(struct vdrv *d, unsigned off, unsigned size, uint64_t v);
uint8_t vdrv_status(struct vdrv *d);
void vdrv_set_status(struct vdrv *d, uint8_t s);
uint8_t vdrv_isr(struct vdrv *d);
uint64_t vdrv_device_features(struct vdrv *d);
uint64_t vdrv_config_read(struct vdrv *d, unsigned off, unsigned size);

/* Writes 0 to device_status and checks that it reads back 0. */
bool vdrv_reset(struct vdrv *d);
/* ACKNOWLEDGE, DRIVER, features, FEATURES_OK; true if the device kept
 * FEATURES_OK. */
bool vdrv_negotiate(struct vdrv *d, uint64_t features);
/* Lays out a queue of `size` entries, sets its MSI-X vector, enables it.
 * Returns 0, or -1 if the device refused something. */
int vdrv_setup_queue(struct vdrv *d, unsigned q, uint16_t size, uint16_t vector);
void vdrv_driver_ok(struct vdrv *d);

/* MSI-X: enable/disable the function, program a table entry. */
void vdrv_msix_enable(struct vdrv *d, bool on);
void vdrv_msix_vector(struct vdrv *d, unsigned v, uint64_t addr, uint32_t data, bool masked);
/* Times the harness saw an MSI with this data value. */
unsigned vdrv_msi_count(struct vdrv *d, uint32_t data);

/* Raw ring access for tests that build broken chains. */
void vdrv_write_desc(struct vdrv *d, unsigned q, uint16_t i, uint64_t addr, uint32_t len,
                     uint16_t flags, uint16_t next);
/* Puts head in the next available slot and advances avail idx. */
void vdrv_publish(struct vdrv *d, unsigned q, uint16_t head);
void vdrv_set_avail_idx(struct vdrv *d, unsigned q, uint16_t idx);
void vdrv_set_avail_flags(struct vdrv *d, unsigned q, uint16_t flags);
void vdrv_set_used_event(struct vdrv *d, unsigned q, uint16_t v);

/* Builds a chain from bufs (readable first) in free descriptor slots,
 * publishes it, returns the head. */
uint16_t vdrv_post(struct vdrv *d, unsigned q, const struct vdrv_buf *bufs, unsigned n);
/* Same through one indirect descriptor table. */
uint16_t vdrv_post_indirect(struct vdrv *d, unsigned q, const struct vdrv_buf *bufs, unsigned n);
void vdrv_notify(struct vdrv *d, unsigned q);
/* Runs the harness loop until a used entry arrives; false on timeout. */
bool vdrv_wait_used(struct vdrv *d, unsigned q, uint32_t *id, uint32_t *len, int timeout_ms);
uint16_t vdrv_used_idx(struct vdrv *d, unsigned q);

/* The PCI configuration access capability (4.1.4.9). */
uint32_t vdrv_pci_cfg_read(struct vdrv *d, uint8_t bar, uint32_t off, uint32_t len);
void vdrv_pci_cfg_write(struct vdrv *d, uint8_t bar, uint32_t off, uint32_t len, uint32_t v);

/* Guest RAM helpers. */
void vdrv_mem_write(struct vdrv *d, uint64_t gpa, const void *buf, size_t len);
void vdrv_mem_read(struct vdrv *d, uint64_t gpa, void *buf, size_t len);

#endif
