/* Virtio over PCI, modern interface (virtio 1.2, 4.1). */
#include "devices/virtio_pci.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/evloop.h"
#include "devices/util.h"

/* struct virtio_pci_common_cfg (4.1.4.3) */
#define CC_DEVICE_FEATURE_SELECT 0x00
#define CC_DEVICE_FEATURE        0x04
#define CC_DRIVER_FEATURE_SELECT 0x08
#define CC_DRIVER_FEATURE        0x0c
#define CC_CONFIG_MSIX_VECTOR    0x10
#define CC_NUM_QUEUES            0x12
#define CC_DEVICE_STATUS         0x14
#define CC_CONFIG_GENERATION     0x15
#define CC_QUEUE_SELECT          0x16
#define CC_QUEUE_SIZE            0x18
#define CC_QUEUE_MSIX_VECTOR     0x1a
#define CC_QUEUE_ENABLE          0x1c
#define CC_QUEUE_NOTIFY_OFF      0x1e
#define CC_QUEUE_DESC            0x20
#define CC_QUEUE_DRIVER          0x28
#define CC_QUEUE_DEVICE          0x30
#define CC_QUEUE_NOTIF_CFG_DATA  0x38
#define CC_QUEUE_RESET           0x3a

/* struct virtio_pci_cap (4.1.4) */
#define VCAP_CFG_TYPE  3
#define VCAP_BAR       4
#define VCAP_ID        5
#define VCAP_OFFSET    8
#define VCAP_LENGTH    12
#define VCAP_NOTIFY_MULT 16     /* virtio_pci_notify_cap */
#define VCAP_PCI_CFG_DATA 16    /* virtio_pci_cfg_cap */

static unsigned msix_nvec(const struct virtio_pci *vp)
{
    return vp->info.num_queues + 1;
}

bool virtio_pci_running(const struct virtio_pci *vp)
{
    return (vp->status & VIRTIO_STATUS_DRIVER_OK) && !(vp->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

/* --- interrupts -------------------------------------------------------- */

/* INTx follows the ISR bits while MSI-X is off (4.1.4.5.1). */
static void update_intx(struct virtio_pci *vp)
{
    pci_set_intx(&vp->pci, !pci_msix_enabled(&vp->pci) && vp->isr != 0);
}

static void raise_irq(struct virtio_pci *vp, uint16_t vector, uint8_t isr_bit)
{
    if (pci_msix_enabled(&vp->pci)) {
        if (isr_bit == VIRTIO_ISR_CONFIG)
            vp->isr |= isr_bit;
        if (vector != VIRTIO_MSI_NO_VECTOR)
            pci_msix_notify(&vp->pci, vector);
        return;
    }
    vp->isr |= isr_bit;
    update_intx(vp);
}

void virtio_pci_queue_done(struct virtio_pci *vp, unsigned q)
{
    if (q >= vp->info.num_queues || !virtio_pci_running(vp))
        return;
    struct virtio_pci_queue *vq = &vp->queues[q];
    if (virtq_should_interrupt(&vq->vq))
        raise_irq(vp, vq->msix_vector, VIRTIO_ISR_QUEUE);
}

void virtio_pci_config_changed(struct virtio_pci *vp)
{
    vp->config_generation++;
    if (vp->status & VIRTIO_STATUS_DRIVER_OK)
        raise_irq(vp, vp->config_msix_vector, VIRTIO_ISR_CONFIG);
}

void virtio_pci_set_needs_reset(struct virtio_pci *vp)
{
    if (vp->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
        return;
    log_guest_error("%s: device needs reset", vp->info.name);
    vp->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    /* 2.1.2: notify the driver if it is running. */
    if (vp->status & VIRTIO_STATUS_DRIVER_OK)
        raise_irq(vp, vp->config_msix_vector, VIRTIO_ISR_CONFIG);
}

static void queue_error(void *opaque)
{
    struct virtio_pci_queue *q = opaque;
    virtio_pci_set_needs_reset(q->owner);
}

/* --- notifications ----------------------------------------------------- */

static void notify_queue(struct virtio_pci *vp, unsigned q)
{
    if (q >= vp->info.num_queues) {
        log_guest_error("%s: notify for queue %u, device has %u", vp->info.name, q,
                        vp->info.num_queues);
        return;
    }
    /* 3.1.1: no buffers are consumed before DRIVER_OK. */
    if (!virtio_pci_running(vp) || !vp->queues[q].enabled)
        return;
    vp->ops->queue_notify(vp->opaque, q);
}

static void ioeventfd_ready(void *opaque, int fd, unsigned events)
{
    struct virtio_pci_queue *q = opaque;
    uint64_t cnt;
    if (read(fd, &cnt, sizeof(cnt)) < 0)
        return;
    notify_queue(q->owner, q->index);
}

static void ioeventfd_unregister(struct virtio_pci *vp, struct virtio_pci_queue *q)
{
    if (!q->ioeventfd_registered)
        return;
    struct platform *p = vp->plat;
    if (p->ops->ioeventfd_del)
        p->ops->ioeventfd_del(p->opaque, false, q->ioeventfd_addr, 2, q->ioeventfd);
    if (p->loop)
        evloop_del_fd(p->loop, q->ioeventfd);
    q->ioeventfd_registered = false;
}

/* Registers an ioeventfd for each enabled queue's notify address where the
 * platform offers them; otherwise notifications arrive as MMIO writes. */
static void ioeventfd_update(struct virtio_pci *vp)
{
    struct platform *p = vp->plat;
    const struct pci_bar *bar = &vp->pci.bars[VIRTIO_PCI_BAR];
    for (unsigned i = 0; i < vp->info.num_queues; i++) {
        struct virtio_pci_queue *q = &vp->queues[i];
        bool want = bar->mapped && q->enabled && p->ops->ioeventfd_add && p->loop;
        uint64_t addr = bar->mapped_at + VIRTIO_PCI_NOTIFY_OFF + (uint64_t)i * VIRTIO_PCI_NOTIFY_MULT;
        if (q->ioeventfd_registered && (!want || q->ioeventfd_addr != addr))
            ioeventfd_unregister(vp, q);
        if (!want || q->ioeventfd_registered)
            continue;
        if (q->ioeventfd < 0) {
            q->ioeventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            if (q->ioeventfd < 0) {
                log_warn("%s: eventfd: %s", vp->info.name, strerror(errno));
                continue;
            }
        }
        if (p->ops->ioeventfd_add(p->opaque, false, addr, 2, q->ioeventfd) < 0)
            continue;   /* falls back to MMIO exits */
        if (evloop_add_fd(p->loop, q->ioeventfd, EVLOOP_IN, ioeventfd_ready, q) < 0) {
            if (p->ops->ioeventfd_del)
                p->ops->ioeventfd_del(p->opaque, false, addr, 2, q->ioeventfd);
            continue;
        }
        q->ioeventfd_addr = addr;
        q->ioeventfd_registered = true;
    }
}

static void bar_remapped(struct pci_device *d, int bar)
{
    if (bar == VIRTIO_PCI_BAR)
        ioeventfd_update(d->opaque);
}

/* --- reset and status -------------------------------------------------- */

static void reset_queue(struct virtio_pci *vp, struct virtio_pci_queue *q)
{
    ioeventfd_unregister(vp, q);
    virtq_reset(&q->vq);
    q->vq.size = vp->info.queue_max_size;
    q->vq.desc_gpa = q->vq.avail_gpa = q->vq.used_gpa = 0;
    q->vq.indirect = q->vq.event_idx = false;
    q->msix_vector = VIRTIO_MSI_NO_VECTOR;
    q->enabled = false;
}

static void virtio_reset(struct virtio_pci *vp)
{
    if (vp->ops->reset)
        vp->ops->reset(vp->opaque);
    for (unsigned i = 0; i < vp->info.num_queues; i++)
        reset_queue(vp, &vp->queues[i]);
    vp->status = 0;
    vp->driver_features = 0;
    vp->device_feature_select = vp->driver_feature_select = 0;
    vp->queue_select = 0;
    vp->config_msix_vector = VIRTIO_MSI_NO_VECTOR;
    vp->isr = 0;
    update_intx(vp);
}

static void pci_reset_hook(struct pci_device *d)
{
    virtio_reset(d->opaque);
}

static bool features_acceptable(struct virtio_pci *vp)
{
    uint64_t extra = vp->driver_features & ~vp->device_features;
    if (extra) {
        log_guest_error("%s: driver accepted features %#llx that were not offered", vp->info.name,
                        (unsigned long long)extra);
        return false;
    }
    /* A modern-only device needs VERSION_1 (6.1). */
    if (!(vp->driver_features >> VIRTIO_F_VERSION_1 & 1)) {
        log_guest_error("%s: driver did not accept VIRTIO_F_VERSION_1", vp->info.name);
        return false;
    }
    return true;
}

static void write_status(struct virtio_pci *vp, uint8_t val)
{
    if (val == 0) {
        virtio_reset(vp);
        return;
    }
    uint8_t old = vp->status, nv = val;
    if ((old & VIRTIO_STATUS_FEATURES_OK) && !(nv & VIRTIO_STATUS_FEATURES_OK)) {
        log_guest_error("%s: driver cleared FEATURES_OK without a reset", vp->info.name);
        nv |= VIRTIO_STATUS_FEATURES_OK;
    }
    if ((nv & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
        if (features_acceptable(vp)) {
            for (unsigned i = 0; i < vp->info.num_queues; i++) {
                vp->queues[i].vq.indirect = virtio_pci_has_feature(vp, VIRTIO_F_INDIRECT_DESC);
                vp->queues[i].vq.event_idx = virtio_pci_has_feature(vp, VIRTIO_F_EVENT_IDX);
            }
        } else {
            nv &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;   /* 3.1.1: driver re-reads and fails */
        }
    }
    if ((nv & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK) &&
        !(nv & VIRTIO_STATUS_FEATURES_OK)) {
        log_guest_error("%s: DRIVER_OK without FEATURES_OK", vp->info.name);
        nv &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
    }
    /* DEVICE_NEEDS_RESET belongs to the device: only a reset clears it. */
    nv = (uint8_t)((nv & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET) | (old & VIRTIO_STATUS_DEVICE_NEEDS_RESET));
    vp->status = nv;
    if ((nv & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
        if (vp->ops->driver_ok)
            vp->ops->driver_ok(vp->opaque);
        /* Buffers made available before DRIVER_OK are processed now. */
        for (unsigned i = 0; i < vp->info.num_queues; i++)
            if (vp->queues[i].enabled && virtq_has_work(&vp->queues[i].vq))
                notify_queue(vp, i);
    }
}

/* --- common configuration ---------------------------------------------- */

static struct virtio_pci_queue *selected_queue(struct virtio_pci *vp)
{
    return vp->queue_select < vp->info.num_queues ? &vp->queues[vp->queue_select] : NULL;
}

static void common_image(struct virtio_pci *vp, uint8_t img[VIRTIO_PCI_COMMON_LEN])
{
    memset(img, 0, VIRTIO_PCI_COMMON_LEN);
    uint32_t sel = vp->device_feature_select;
    st_le(img + CC_DEVICE_FEATURE_SELECT, 4, sel);
    st_le(img + CC_DEVICE_FEATURE, 4, sel < 2 ? (uint32_t)(vp->device_features >> (32 * sel)) : 0);
    st_le(img + CC_DRIVER_FEATURE_SELECT, 4, vp->driver_feature_select);
    sel = vp->driver_feature_select;
    st_le(img + CC_DRIVER_FEATURE, 4, sel < 2 ? (uint32_t)(vp->driver_features >> (32 * sel)) : 0);
    st_le(img + CC_CONFIG_MSIX_VECTOR, 2, vp->config_msix_vector);
    st_le(img + CC_NUM_QUEUES, 2, vp->info.num_queues);
    img[CC_DEVICE_STATUS] = vp->status;
    img[CC_CONFIG_GENERATION] = vp->config_generation;
    st_le(img + CC_QUEUE_SELECT, 2, vp->queue_select);
    struct virtio_pci_queue *q = selected_queue(vp);
    if (q) {
        st_le(img + CC_QUEUE_SIZE, 2, q->vq.size);
        st_le(img + CC_QUEUE_MSIX_VECTOR, 2, q->msix_vector);
        st_le(img + CC_QUEUE_ENABLE, 2, q->enabled);
        st_le(img + CC_QUEUE_NOTIFY_OFF, 2, vp->queue_select);
        st_le(img + CC_QUEUE_DESC, 8, q->vq.desc_gpa);
        st_le(img + CC_QUEUE_DRIVER, 8, q->vq.avail_gpa);
        st_le(img + CC_QUEUE_DEVICE, 8, q->vq.used_gpa);
    } else {
        /* 4.1.4.3: queue_size 0 says the queue does not exist. */
        st_le(img + CC_QUEUE_MSIX_VECTOR, 2, VIRTIO_MSI_NO_VECTOR);
    }
}

static uint64_t common_read(struct virtio_pci *vp, unsigned off, unsigned size)
{
    uint8_t img[VIRTIO_PCI_COMMON_LEN];
    if (off + size > VIRTIO_PCI_COMMON_LEN)
        return 0;
    common_image(vp, img);
    return ld_le(img + off, size);
}

static uint16_t checked_vector(struct virtio_pci *vp, uint16_t v)
{
    /* 4.1.5.1.2: a vector the device cannot use reads back as NO_VECTOR. */
    return v < msix_nvec(vp) ? v : VIRTIO_MSI_NO_VECTOR;
}

static void queue_addr_write(struct virtio_pci *vp, uint64_t *field, unsigned part_off,
                             unsigned size, uint64_t val)
{
    struct virtio_pci_queue *q = selected_queue(vp);
    if (!q) {
        log_guest_error("%s: queue address write for absent queue %u", vp->info.name, vp->queue_select);
        return;
    }
    if (q->enabled) {
        log_guest_error("%s: queue %u address changed while enabled", vp->info.name, vp->queue_select);
        return;
    }
    if (size == 8)
        *field = val;
    else if (part_off == 0)
        *field = (*field & ~0xffffffffULL) | (uint32_t)val;
    else
        *field = (*field & 0xffffffffULL) | (uint64_t)(uint32_t)val << 32;
}

static void enable_queue(struct virtio_pci *vp, struct virtio_pci_queue *q)
{
    if (q->enabled)
        return;
    q->vq.mem = vp->plat->mem;
    q->vq.indirect = virtio_pci_has_feature(vp, VIRTIO_F_INDIRECT_DESC);
    q->vq.event_idx = virtio_pci_has_feature(vp, VIRTIO_F_EVENT_IDX);
    if (virtq_enable(&q->vq) < 0) {
        virtio_pci_set_needs_reset(vp);
        return;
    }
    q->enabled = true;
    ioeventfd_update(vp);
}

static void common_write(struct virtio_pci *vp, unsigned off, unsigned size, uint64_t val)
{
    struct virtio_pci_queue *q = selected_queue(vp);
    switch (off) {
    case CC_DEVICE_FEATURE_SELECT:
        if (size == 4) {
            vp->device_feature_select = (uint32_t)val;
            return;
        }
        break;
    case CC_DRIVER_FEATURE_SELECT:
        if (size == 4) {
            vp->driver_feature_select = (uint32_t)val;
            return;
        }
        break;
    case CC_DRIVER_FEATURE:
        if (size != 4)
            break;
        if (vp->status & VIRTIO_STATUS_FEATURES_OK) {
            log_guest_error("%s: driver_feature written after FEATURES_OK", vp->info.name);
            return;
        }
        if (vp->driver_feature_select < 2) {
            unsigned sh = 32 * vp->driver_feature_select;
            vp->driver_features = (vp->driver_features & ~(0xffffffffULL << sh)) | ((uint64_t)(uint32_t)val << sh);
        } else if (val) {
            log_guest_error("%s: driver accepted unknown feature word %u", vp->info.name,
                            vp->driver_feature_select);
        }
        return;
    case CC_CONFIG_MSIX_VECTOR:
        if (size == 2) {
            vp->config_msix_vector = checked_vector(vp, (uint16_t)val);
            return;
        }
        break;
    case CC_DEVICE_STATUS:
        if (size == 1) {
            write_status(vp, (uint8_t)val);
            return;
        }
        break;
    case CC_QUEUE_SELECT:
        if (size == 2) {
            vp->queue_select = (uint16_t)val;
            if (!selected_queue(vp))
                log_guest_error("%s: queue_select %u beyond %u queues", vp->info.name,
                                vp->queue_select, vp->info.num_queues);
            return;
        }
        break;
    case CC_QUEUE_SIZE:
        if (size != 2)
            break;
        if (!q) {
            log_guest_error("%s: queue_size write for absent queue %u", vp->info.name, vp->queue_select);
        } else if (q->enabled) {
            log_guest_error("%s: queue_size written while queue %u enabled", vp->info.name, vp->queue_select);
        } else if (val == 0 || val > vp->info.queue_max_size || (val & (val - 1))) {
            /* 2.7: split queue sizes are powers of two up to the maximum. */
            log_guest_error("%s: invalid queue_size %llu (max %u)", vp->info.name,
                            (unsigned long long)val, vp->info.queue_max_size);
        } else {
            q->vq.size = (uint16_t)val;
        }
        return;
    case CC_QUEUE_MSIX_VECTOR:
        if (size != 2)
            break;
        if (q)
            q->msix_vector = checked_vector(vp, (uint16_t)val);
        else
            log_guest_error("%s: queue_msix_vector for absent queue %u", vp->info.name, vp->queue_select);
        return;
    case CC_QUEUE_ENABLE:
        if (size != 2)
            break;
        if (!q)
            log_guest_error("%s: queue_enable for absent queue %u", vp->info.name, vp->queue_select);
        else if (val == 1)
            enable_queue(vp, q);
        else if (val == 0 && q->enabled)
            log_guest_error("%s: driver wrote 0 to queue_enable", vp->info.name);   /* 4.1.4.3.2 */
        return;
    case CC_QUEUE_DESC: case CC_QUEUE_DESC + 4:
    case CC_QUEUE_DRIVER: case CC_QUEUE_DRIVER + 4:
    case CC_QUEUE_DEVICE: case CC_QUEUE_DEVICE + 4: {
        unsigned base = off & ~7u;
        if (!(size == 4 || (size == 8 && off == base)))
            break;
        uint64_t dummy = 0;
        uint64_t *field = !q ? &dummy
                        : base == CC_QUEUE_DESC ? &q->vq.desc_gpa
                        : base == CC_QUEUE_DRIVER ? &q->vq.avail_gpa : &q->vq.used_gpa;
        queue_addr_write(vp, field, off - base, size, val);
        return;
    }
    case CC_QUEUE_RESET:
        if (size == 2)
            return;     /* VIRTIO_F_RING_RESET is not offered: ignore */
        break;
    default:
        break;
    }
    log_guest_error("%s: write of %u bytes at common config %#x ignored", vp->info.name, size, off);
}

/* --- BAR4 -------------------------------------------------------------- */

static uint64_t bar4_read(void *opaque, uint64_t off, unsigned size)
{
    struct virtio_pci *vp = opaque;
    if (off < VIRTIO_PCI_COMMON_OFF + VIRTIO_PCI_COMMON_LEN)
        return common_read(vp, (unsigned)off, size);
    if (off == VIRTIO_PCI_ISR_OFF) {
        /* 4.1.4.5: reading ISR status clears it and the interrupt. */
        uint8_t v = vp->isr;
        vp->isr = 0;
        update_intx(vp);
        return v;
    }
    if (off >= VIRTIO_PCI_DEVCFG_OFF && off - VIRTIO_PCI_DEVCFG_OFF + size <= vp->info.config_size)
        return vp->ops->config_read(vp->opaque, (unsigned)(off - VIRTIO_PCI_DEVCFG_OFF), size);
    return 0;
}

static void bar4_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct virtio_pci *vp = opaque;
    if (off < VIRTIO_PCI_COMMON_OFF + VIRTIO_PCI_COMMON_LEN) {
        common_write(vp, (unsigned)off, size, val);
    } else if (off >= VIRTIO_PCI_DEVCFG_OFF && off - VIRTIO_PCI_DEVCFG_OFF + size <= vp->info.config_size) {
        if (vp->ops->config_write)
            vp->ops->config_write(vp->opaque, (unsigned)(off - VIRTIO_PCI_DEVCFG_OFF), size, val);
    } else if (off >= VIRTIO_PCI_NOTIFY_OFF &&
               off < VIRTIO_PCI_NOTIFY_OFF + (uint64_t)vp->info.num_queues * VIRTIO_PCI_NOTIFY_MULT) {
        uint64_t rel = off - VIRTIO_PCI_NOTIFY_OFF;
        if (rel % VIRTIO_PCI_NOTIFY_MULT)
            log_guest_error("%s: unaligned queue notify at %#llx", vp->info.name, (unsigned long long)off);
        else
            notify_queue(vp, (unsigned)(rel / VIRTIO_PCI_NOTIFY_MULT));
    } else {
        log_guest_error("%s: write to unused BAR4 offset %#llx", vp->info.name, (unsigned long long)off);
    }
}

static const struct io_ops bar4_ops = { bar4_read, bar4_write };

/* --- PCI configuration access window (4.1.4.9) -------------------------- */

static bool overlaps(unsigned off, unsigned size, unsigned start, unsigned len)
{
    return off < start + len && start < off + size;
}

/* Checks cap.bar/offset/length and returns the BAR to access, or NULL. */
static const struct pci_bar *cfg_window(struct virtio_pci *vp, uint32_t *boff, unsigned *blen)
{
    const uint8_t *c = &vp->pci.config[vp->pci_cfg_cap];
    uint8_t bar = c[VCAP_BAR];
    uint32_t o = (uint32_t)ld_le(c + VCAP_OFFSET, 4);
    uint32_t len = (uint32_t)ld_le(c + VCAP_LENGTH, 4);
    if (bar >= PCI_NUM_BARS || vp->pci.bars[bar].type == PCI_BAR_NONE ||
        (len != 1 && len != 2 && len != 4) || o % len || (uint64_t)o + len > vp->pci.bars[bar].size) {
        log_guest_error("%s: bad PCI config window access (bar %u offset %#x length %u)",
                        vp->info.name, bar, o, len);
        return NULL;
    }
    *boff = o;
    *blen = len;
    return &vp->pci.bars[bar];
}

static uint32_t cfg_read_hook(struct pci_device *d, unsigned off, unsigned size, uint32_t val)
{
    struct virtio_pci *vp = d->opaque;
    unsigned data = vp->pci_cfg_cap + VCAP_PCI_CFG_DATA;
    if (!vp->pci_cfg_cap || !overlaps(off, size, data, 4))
        return val;
    uint32_t boff;
    unsigned blen;
    const struct pci_bar *b = cfg_window(vp, &boff, &blen);
    if (!b || !b->ops->read)
        return val;
    uint64_t v = b->ops->read(b->opaque, boff, blen);
    st_le(&d->config[data], blen, v);
    return (uint32_t)ld_le(&d->config[off], size);
}

static void cfg_write_hook(struct pci_device *d, unsigned off, unsigned size, uint32_t val)
{
    struct virtio_pci *vp = d->opaque;
    if (d->msix && overlaps(off, size, d->msix->cap + 2, 2))
        update_intx(vp);    /* MSI-X enable decides between MSI-X and INTx */
    unsigned data = vp->pci_cfg_cap + VCAP_PCI_CFG_DATA;
    if (!vp->pci_cfg_cap || !overlaps(off, size, data, 4))
        return;
    uint32_t boff;
    unsigned blen;
    const struct pci_bar *b = cfg_window(vp, &boff, &blen);
    if (b && b->ops->write)
        b->ops->write(b->opaque, boff, blen, ld_le(&d->config[data], blen));
}

/* --- setup ------------------------------------------------------------- */

static uint8_t add_vcap(struct pci_device *d, uint8_t type, uint32_t off, uint32_t len,
                        unsigned caplen, uint32_t extra)
{
    uint8_t cap[20] = { PCI_CAP_ID_VNDR, 0, (uint8_t)caplen, type, VIRTIO_PCI_BAR };
    st_le(cap + VCAP_OFFSET, 4, off);
    st_le(cap + VCAP_LENGTH, 4, len);
    if (caplen > 16)
        st_le(cap + 16, 4, extra);
    return pci_add_cap(d, cap, caplen);
}

int virtio_pci_init(struct virtio_pci *vp, struct platform *plat, const struct virtio_pci_info *info,
                    const struct virtio_device_ops *ops, void *opaque)
{
    memset(vp, 0, sizeof(*vp));
    for (unsigned i = 0; i < VIRTIO_PCI_MAX_QUEUES; i++)
        vp->queues[i].ioeventfd = -1;   /* so destroy after a failed init is safe */
    if (info->num_queues == 0 || info->num_queues > VIRTIO_PCI_MAX_QUEUES ||
        info->queue_max_size == 0 || info->queue_max_size > VIRTQ_MAX_SIZE ||
        (info->queue_max_size & (info->queue_max_size - 1)) ||
        info->config_size > VIRTIO_PCI_NOTIFY_OFF - VIRTIO_PCI_DEVCFG_OFF)
        return -1;
    vp->plat = plat;
    vp->info = *info;
    vp->ops = ops;
    vp->opaque = opaque;
    vp->device_features = info->features | 1ULL << VIRTIO_F_VERSION_1;

    struct pci_device *d = &vp->pci;
    /* 4.1.2: device ID 0x1040 + type, revision 1 for a modern-only device. */
    pci_device_init(d, VIRTIO_PCI_VENDOR, (uint16_t)(VIRTIO_PCI_DEVICE_BASE + info->device_type),
                    info->class_code, 1, info->name);
    pci_set_subsystem(d, VIRTIO_PCI_VENDOR, (uint16_t)(VIRTIO_PCI_DEVICE_BASE + info->device_type));
    pci_set_irq_pin(d, 1);
    d->opaque = vp;
    d->config_read = cfg_read_hook;
    d->config_write = cfg_write_hook;
    d->bar_remapped = bar_remapped;
    d->reset = pci_reset_hook;

    pci_add_bar(d, VIRTIO_PCI_BAR, PCI_BAR_MEM64, true, VIRTIO_PCI_BAR_SIZE, &bar4_ops, vp);
    if (pci_msix_init(d, msix_nvec(vp), VIRTIO_PCI_MSIX_BAR) < 0)
        return -1;
    if (!add_vcap(d, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF, VIRTIO_PCI_COMMON_LEN, 16, 0) ||
        !add_vcap(d, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, 1, 16, 0) ||
        (info->config_size &&
         !add_vcap(d, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVCFG_OFF, info->config_size, 16, 0)) ||
        !add_vcap(d, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF,
                  info->num_queues * VIRTIO_PCI_NOTIFY_MULT, 20, VIRTIO_PCI_NOTIFY_MULT))
        return -1;
    vp->pci_cfg_cap = add_vcap(d, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, 20, 0);
    if (!vp->pci_cfg_cap)
        return -1;
    /* The window's bar, offset, length and data are the driver's to write. */
    d->config[vp->pci_cfg_cap + VCAP_BAR] = 0;
    d->wmask[vp->pci_cfg_cap + VCAP_BAR] = 0xff;
    memset(&d->wmask[vp->pci_cfg_cap + VCAP_OFFSET], 0xff, 12);

    for (unsigned i = 0; i < info->num_queues; i++) {
        struct virtio_pci_queue *q = &vp->queues[i];
        q->owner = vp;
        q->index = i;
        q->ioeventfd = -1;
        q->vq.mem = plat->mem;
        q->vq.on_error = queue_error;
        q->vq.err_opaque = q;
        reset_queue(vp, q);
    }
    vp->config_msix_vector = VIRTIO_MSI_NO_VECTOR;
    return 0;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
    struct pci_device *d = &vp->pci;
    for (unsigned i = 0; i < vp->info.num_queues; i++) {
        struct virtio_pci_queue *q = &vp->queues[i];
        ioeventfd_unregister(vp, q);
        if (q->ioeventfd >= 0)
            close(q->ioeventfd);
        q->ioeventfd = -1;
        virtq_destroy(&q->vq);
    }
    d->bar_remapped = NULL;
    pci_bus_remove(d);
}
