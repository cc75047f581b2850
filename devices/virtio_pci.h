/* Virtio over PCI, modern (1.x, non-transitional) interface (virtio 1.2, 4.1).
 *
 * A device type (block, entropy, ...) embeds a struct virtio_pci, fills a
 * struct virtio_pci_info and a struct virtio_device_ops, calls
 * virtio_pci_init() and then pci_bus_add(bus, &vp->pci, -1).
 *
 * Layout: MSI-X table and PBA in BAR1; BAR4 (64-bit prefetchable, 16 KiB)
 * holds the common configuration at 0x0000, ISR status at 0x1000, the
 * device configuration at 0x2000 and the notification area at 0x3000 (one
 * 4-byte slot per queue). */
#ifndef BURROW_VIRTIO_PCI_H
#define BURROW_VIRTIO_PCI_H

#include <stdint.h>
#include <stdbool.h>

#include "devices/pci.h"
#include "devices/platform.h"
#include "devices/virtqueue.h"

#define VIRTIO_PCI_VENDOR        0x1af4
#define VIRTIO_PCI_DEVICE_BASE   0x1040   /* + virtio device type */
#define VIRTIO_PCI_MAX_QUEUES    8

/* Virtio device types (5) */
#define VIRTIO_ID_NET      1
#define VIRTIO_ID_BLOCK    2
#define VIRTIO_ID_CONSOLE  3
#define VIRTIO_ID_ENTROPY  4

/* Device status (2.1) */
#define VIRTIO_STATUS_ACKNOWLEDGE        1
#define VIRTIO_STATUS_DRIVER             2
#define VIRTIO_STATUS_DRIVER_OK          4
#define VIRTIO_STATUS_FEATURES_OK        8
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED             128

#define VIRTIO_MSI_NO_VECTOR 0xffff

/* Capability cfg_type values (4.1.4) */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG    3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG    5

/* ISR status bits (4.1.4.5) */
#define VIRTIO_ISR_QUEUE  1
#define VIRTIO_ISR_CONFIG 2

/* BAR4 layout */
#define VIRTIO_PCI_BAR           4
#define VIRTIO_PCI_BAR_SIZE      0x4000
#define VIRTIO_PCI_COMMON_OFF    0x0000
#define VIRTIO_PCI_COMMON_LEN    0x40
#define VIRTIO_PCI_ISR_OFF       0x1000
#define VIRTIO_PCI_DEVCFG_OFF    0x2000
#define VIRTIO_PCI_NOTIFY_OFF    0x3000
#define VIRTIO_PCI_NOTIFY_MULT   4
#define VIRTIO_PCI_MSIX_BAR      1

struct virtio_device_ops {
    /* Device-specific configuration; off + size <= info.config_size. */
    uint64_t (*config_read)(void *opaque, unsigned off, unsigned size);
    void (*config_write)(void *opaque, unsigned off, unsigned size, uint64_t val); /* may be NULL */
    /* The driver made buffers available on queue q (only after DRIVER_OK). */
    void (*queue_notify)(void *opaque, unsigned q);
    /* Device reset: finish or drop in-flight work without touching the
     * rings; the transport resets the queues afterwards. */
    void (*reset)(void *opaque);
    /* DRIVER_OK was set; features are final.  May be NULL. */
    void (*driver_ok)(void *opaque);
};

struct virtio_pci_info {
    const char *name;            /* for messages and the PCI device */
    uint16_t device_type;        /* VIRTIO_ID_* */
    uint32_t class_code;         /* PCI class/subclass/prog-if */
    uint64_t features;           /* device features; VERSION_1 is added */
    unsigned num_queues;         /* <= VIRTIO_PCI_MAX_QUEUES */
    uint16_t queue_max_size;     /* power of two, <= VIRTQ_MAX_SIZE */
    unsigned config_size;        /* bytes of device configuration */
};

struct virtio_pci_queue {
    struct virtqueue vq;
    uint16_t msix_vector;
    bool enabled;
    int ioeventfd;               /* -1 when none */
    uint64_t ioeventfd_addr;     /* where it is registered */
    bool ioeventfd_registered;
    struct virtio_pci *owner;
    unsigned index;
};

struct virtio_pci {
    struct pci_device pci;
    struct platform *plat;
    struct virtio_pci_info info;
    const struct virtio_device_ops *ops;
    void *opaque;

    uint64_t device_features;
    uint64_t driver_features;
    uint32_t device_feature_select, driver_feature_select;
    uint8_t status;
    uint8_t config_generation;
    uint8_t isr;
    uint16_t config_msix_vector;
    uint16_t queue_select;
    uint8_t pci_cfg_cap;         /* offset of the PCI_CFG capability */
    struct virtio_pci_queue queues[VIRTIO_PCI_MAX_QUEUES];
};

/* Builds config space, capabilities and BARs.  Returns 0 or -1. */
int virtio_pci_init(struct virtio_pci *vp, struct platform *plat, const struct virtio_pci_info *info,
                    const struct virtio_device_ops *ops, void *opaque);
/* Unregisters ioeventfds, unmaps BARs, leaves the bus, frees MSI-X state. */
void virtio_pci_destroy(struct virtio_pci *vp);

static inline struct virtqueue *virtio_pci_vq(struct virtio_pci *vp, unsigned q)
{
    return q < vp->info.num_queues ? &vp->queues[q].vq : NULL;
}

static inline bool virtio_pci_has_feature(const struct virtio_pci *vp, unsigned bit)
{
    return (vp->driver_features >> bit) & 1;
}

/* After pushing used buffers on queue q: interrupts the driver unless it
 * suppressed the notification. */
void virtio_pci_queue_done(struct virtio_pci *vp, unsigned q);
/* The device configuration changed: bump config_generation, interrupt. */
void virtio_pci_config_changed(struct virtio_pci *vp);
/* Something went wrong that only a reset can fix (4.1.4.3 / 2.1.2):
 * sets DEVICE_NEEDS_RESET and sends a configuration change interrupt. */
void virtio_pci_set_needs_reset(struct virtio_pci *vp);
/* True when the driver is running (DRIVER_OK and not NEEDS_RESET). */
bool virtio_pci_running(const struct virtio_pci *vp);

#endif
