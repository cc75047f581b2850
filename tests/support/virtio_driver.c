/* Guest-side virtio-pci driver for the device harness (see virtio_driver.h).
 * Everything here follows the virtio 1.2 text and PCI 3.0, not the device
 * model's code. */
#include "support/virtio_driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PCI configuration space (PCI 3.0, 6.1 / 6.7 / 6.8.2) */
#define CFG_STATUS       0x06
#define CFG_COMMAND      0x04
#define CFG_BAR0         0x10
#define CFG_CAP_PTR      0x34
#define STATUS_CAP_LIST  0x10
#define CMD_IO           0x1
#define CMD_MEM          0x2
#define CMD_MASTER       0x4
#define CAP_VENDOR       0x09
#define CAP_MSIX         0x11
#define MSIX_ENABLE      0x8000

/* struct virtio_pci_cap fields (4.1.4) */
#define VCAP_TYPE   3
#define VCAP_BAR    4
#define VCAP_OFF    8
#define VCAP_LEN    12
#define VCAP_MULT   16
#define VCAP_DATA   16
#define VTYPE_COMMON 1
#define VTYPE_NOTIFY 2
#define VTYPE_ISR    3
#define VTYPE_DEVICE 4
#define VTYPE_PCI    5

static void die(const char *msg)
{
    fprintf(stderr, "virtio test driver: %s\n", msg);
    abort();
}

void vdrv_mem_write(struct vdrv *d, uint64_t gpa, const void *buf, size_t len)
{
    if (gpa > d->h->ram_size || len > d->h->ram_size - gpa)
        die("write outside harness RAM");
    memcpy(d->h->ram + gpa, buf, len);
}

void vdrv_mem_read(struct vdrv *d, uint64_t gpa, void *buf, size_t len)
{
    if (gpa > d->h->ram_size || len > d->h->ram_size - gpa)
        die("read outside harness RAM");
    memcpy(buf, d->h->ram + gpa, len);
}

static void wr16(struct vdrv *d, uint64_t gpa, uint16_t v)
{
    uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
    vdrv_mem_write(d, gpa, b, 2);
}

static uint16_t rd16(struct vdrv *d, uint64_t gpa)
{
    uint8_t b[2];
    vdrv_mem_read(d, gpa, b, 2);
    return (uint16_t)(b[0] | b[1] << 8);
}

static uint32_t rd32(struct vdrv *d, uint64_t gpa)
{
    uint8_t b[4];
    vdrv_mem_read(d, gpa, b, 4);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void wr_le(uint8_t *p, unsigned n, uint64_t v)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* --- PCI -------------------------------------------------------------- */

unsigned vdrv_intx_gsi(const struct vdrv *d)
{
    return harness_pci_intx_gsi(d->bus, d->devfn);
}

int vdrv_probe(struct vdrv *d, struct harness *h, struct pci_bus *bus, uint8_t devfn, uint64_t mmio_base)
{
    memset(d, 0, sizeof(*d));
    d->h = h;
    d->bus = bus;
    d->devfn = devfn;
    d->heap = 1 << 20;

    /* Size and place the BARs as firmware does: write all ones, read the
     * size mask back, assign naturally aligned addresses. */
    uint64_t next = mmio_base;
    for (int i = 0; i < 6; i++) {
        unsigned off = CFG_BAR0 + 4 * (unsigned)i;
        uint32_t orig = pci_config_read(bus, devfn, off, 4);
        pci_config_write(bus, devfn, off, 4, 0xffffffff);
        uint32_t lo = pci_config_read(bus, devfn, off, 4);
        if (lo == 0) {
            pci_config_write(bus, devfn, off, 4, orig);
            continue;
        }
        if (lo & 1)     /* I/O BARs: none expected on a modern virtio device */
            continue;
        bool is64 = ((lo >> 1) & 3) == 2;
        uint64_t mask = lo & ~0xfULL;
        if (is64) {
            pci_config_write(bus, devfn, off + 4, 4, 0xffffffff);
            mask |= (uint64_t)pci_config_read(bus, devfn, off + 4, 4) << 32;
        } else {
            mask |= 0xffffffff00000000ULL;
        }
        uint64_t size = ~mask + 1;
        next = (next + size - 1) & ~(size - 1);
        d->bar[i] = next;
        pci_config_write(bus, devfn, off, 4, (uint32_t)next);
        if (is64)
            pci_config_write(bus, devfn, off + 4, 4, (uint32_t)(next >> 32));
        next += size;
        if (is64)
            i++;
    }
    pci_config_write(bus, devfn, CFG_COMMAND, 2, CMD_MEM | CMD_MASTER);

    if (!(pci_config_read(bus, devfn, CFG_STATUS, 2) & STATUS_CAP_LIST))
        return -1;
    unsigned guard = 0;
    for (uint8_t p = (uint8_t)pci_config_read(bus, devfn, CFG_CAP_PTR, 1) & 0xfc; p && guard < 48;
         p = (uint8_t)pci_config_read(bus, devfn, p + 1, 1) & 0xfc, guard++) {
        uint8_t id = (uint8_t)pci_config_read(bus, devfn, p, 1);
        if (id == CAP_MSIX) {
            d->msix_cap = p;
            d->msix_nvec = (uint16_t)((pci_config_read(bus, devfn, p + 2, 2) & 0x7ff) + 1);
            uint32_t t = pci_config_read(bus, devfn, p + 4, 4);
            d->msix_table = d->bar[t & 7] + (t & ~7u);
            continue;
        }
        if (id != CAP_VENDOR)
            continue;
        uint8_t type = (uint8_t)pci_config_read(bus, devfn, p + VCAP_TYPE, 1);
        uint8_t bar = (uint8_t)pci_config_read(bus, devfn, p + VCAP_BAR, 1);
        uint32_t off = pci_config_read(bus, devfn, p + VCAP_OFF, 4);
        uint32_t len = pci_config_read(bus, devfn, p + VCAP_LEN, 4);
        if (type == VTYPE_PCI) {
            if (!d->pci_cfg_cap)
                d->pci_cfg_cap = p;
            continue;
        }
        if (bar > 5)
            continue;
        uint64_t at = d->bar[bar] + off;
        /* 4.1.4.1: use the first structure of each type. */
        if (type == VTYPE_COMMON && !d->common) {
            d->common = at;
            d->common_len = len;
        } else if (type == VTYPE_ISR && !d->isr) {
            d->isr = at;
        } else if (type == VTYPE_DEVICE && !d->device) {
            d->device = at;
            d->device_len = len;
        } else if (type == VTYPE_NOTIFY && !d->notify) {
            d->notify = at;
            d->notify_len = len;
            d->notify_mult = pci_config_read(bus, devfn, p + VCAP_MULT, 4);
        }
    }
    return d->common && d->isr && d->notify ? 0 : -1;
}

uint64_t vdrv_alloc(struct vdrv *d, uint64_t size, uint64_t align)
{
    uint64_t a = (d->heap + align - 1) & ~(align - 1);
    if (a + size > d->h->ram_size)
        die("out of harness RAM");
    d->heap = a + size;
    memset(d->h->ram + a, 0, size);
    return a;
}

/* --- registers -------------------------------------------------------- */

uint64_t vdrv_common_read(struct vdrv *d, unsigned off, unsigned size)
{
    return harness_mmio_read(d->h, d->common + off, size);
}

void vdrv_common_write(struct vdrv *d, unsigned off, unsigned size, uint64_t v)
{
    harness_mmio_write(d->h, d->common + off, size, v);
}

uint8_t vdrv_status(struct vdrv *d)
{
    return (uint8_t)vdrv_common_read(d, VDRV_CC_STATUS, 1);
}

void vdrv_set_status(struct vdrv *d, uint8_t s)
{
    vdrv_common_write(d, VDRV_CC_STATUS, 1, s);
}

uint8_t vdrv_isr(struct vdrv *d)
{
    return (uint8_t)harness_mmio_read(d->h, d->isr, 1);
}

uint64_t vdrv_device_features(struct vdrv *d)
{
    vdrv_common_write(d, VDRV_CC_DFSELECT, 4, 0);
    uint64_t lo = vdrv_common_read(d, VDRV_CC_DF, 4);
    vdrv_common_write(d, VDRV_CC_DFSELECT, 4, 1);
    uint64_t hi = vdrv_common_read(d, VDRV_CC_DF, 4);
    return hi << 32 | lo;
}

uint64_t vdrv_config_read(struct vdrv *d, unsigned off, unsigned size)
{
    /* 4.1.4.3.1 / 2.5.1: read until config_generation is stable. */
    for (;;) {
        uint8_t g0 = (uint8_t)vdrv_common_read(d, VDRV_CC_CFGGEN, 1);
        uint64_t v;
        if (size == 8)
            v = harness_mmio_read(d->h, d->device + off, 4) |
                harness_mmio_read(d->h, d->device + off + 4, 4) << 32;
        else
            v = harness_mmio_read(d->h, d->device + off, size);
        if ((uint8_t)vdrv_common_read(d, VDRV_CC_CFGGEN, 1) == g0)
            return v;
    }
}

bool vdrv_reset(struct vdrv *d)
{
    vdrv_set_status(d, 0);
    for (unsigned q = 0; q < VDRV_MAX_QUEUES; q++)
        d->q[q] = (struct vdrv_queue){ 0 };
    d->features = 0;
    return vdrv_status(d) == 0;
}

bool vdrv_negotiate(struct vdrv *d, uint64_t features)
{
    vdrv_set_status(d, VDRV_S_ACKNOWLEDGE);
    vdrv_set_status(d, VDRV_S_ACKNOWLEDGE | VDRV_S_DRIVER);
    uint64_t offered = vdrv_device_features(d);
    uint64_t want = features & offered;
    vdrv_common_write(d, VDRV_CC_GFSELECT, 4, 0);
    vdrv_common_write(d, VDRV_CC_GF, 4, (uint32_t)want);
    vdrv_common_write(d, VDRV_CC_GFSELECT, 4, 1);
    vdrv_common_write(d, VDRV_CC_GF, 4, (uint32_t)(want >> 32));
    vdrv_set_status(d, VDRV_S_ACKNOWLEDGE | VDRV_S_DRIVER | VDRV_S_FEATURES_OK);
    d->features = want;
    return vdrv_status(d) & VDRV_S_FEATURES_OK;
}

int vdrv_setup_queue(struct vdrv *d, unsigned qi, uint16_t size, uint16_t vector)
{
    if (qi >= VDRV_MAX_QUEUES)
        return -1;
    struct vdrv_queue *q = &d->q[qi];
    vdrv_common_write(d, VDRV_CC_Q_SELECT, 2, qi);
    uint16_t max = (uint16_t)vdrv_common_read(d, VDRV_CC_Q_SIZE, 2);
    if (max == 0 || size > max)
        return -1;
    vdrv_common_write(d, VDRV_CC_Q_SIZE, 2, size);
    if (vdrv_common_read(d, VDRV_CC_Q_SIZE, 2) != size)
        return -1;
    *q = (struct vdrv_queue){ .size = size };
    q->desc = vdrv_alloc(d, 16ULL * size, 16);
    q->avail = vdrv_alloc(d, 6 + 2ULL * size, 2);
    q->used = vdrv_alloc(d, 6 + 8ULL * size, 4);
    vdrv_common_write(d, VDRV_CC_Q_DESCLO, 4, (uint32_t)q->desc);
    vdrv_common_write(d, VDRV_CC_Q_DESCHI, 4, (uint32_t)(q->desc >> 32));
    vdrv_common_write(d, VDRV_CC_Q_AVAILLO, 4, (uint32_t)q->avail);
    vdrv_common_write(d, VDRV_CC_Q_AVAILHI, 4, (uint32_t)(q->avail >> 32));
    vdrv_common_write(d, VDRV_CC_Q_USEDLO, 4, (uint32_t)q->used);
    vdrv_common_write(d, VDRV_CC_Q_USEDHI, 4, (uint32_t)(q->used >> 32));
    vdrv_common_write(d, VDRV_CC_Q_MSIX, 2, vector);
    if (vdrv_common_read(d, VDRV_CC_Q_MSIX, 2) != vector)
        return -1;
    uint16_t noff = (uint16_t)vdrv_common_read(d, VDRV_CC_Q_NOFF, 2);
    q->notify_addr = d->notify + (uint64_t)noff * d->notify_mult;
    vdrv_common_write(d, VDRV_CC_Q_ENABLE, 2, 1);
    return vdrv_common_read(d, VDRV_CC_Q_ENABLE, 2) == 1 ? 0 : -1;
}

void vdrv_driver_ok(struct vdrv *d)
{
    vdrv_set_status(d, (uint8_t)(vdrv_status(d) | VDRV_S_DRIVER_OK));
}

/* --- MSI-X -------------------------------------------------------------- */

void vdrv_msix_enable(struct vdrv *d, bool on)
{
    uint16_t ctrl = (uint16_t)pci_config_read(d->bus, d->devfn, d->msix_cap + 2, 2);
    ctrl = on ? (uint16_t)(ctrl | MSIX_ENABLE) : (uint16_t)(ctrl & ~MSIX_ENABLE);
    pci_config_write(d->bus, d->devfn, d->msix_cap + 2, 2, ctrl);
}

void vdrv_msix_vector(struct vdrv *d, unsigned v, uint64_t addr, uint32_t data, bool masked)
{
    uint64_t e = d->msix_table + 16ULL * v;
    harness_mmio_write(d->h, e, 4, (uint32_t)addr);
    harness_mmio_write(d->h, e + 4, 4, (uint32_t)(addr >> 32));
    harness_mmio_write(d->h, e + 8, 4, data);
    harness_mmio_write(d->h, e + 12, 4, masked ? 1 : 0);
}

unsigned vdrv_msi_count(struct vdrv *d, uint32_t data)
{
    unsigned n = 0;
    for (unsigned i = 0; i < HARNESS_MAX_MSI; i++)
        if (d->h->msi[i].used && d->h->msi[i].data == data)
            n += d->h->msi[i].fired;
    return n;
}

/* --- rings -------------------------------------------------------------- */

void vdrv_write_desc(struct vdrv *d, unsigned qi, uint16_t i, uint64_t addr, uint32_t len,
                     uint16_t flags, uint16_t next)
{
    uint8_t b[16];
    wr_le(b, 8, addr);
    wr_le(b + 8, 4, len);
    wr_le(b + 12, 2, flags);
    wr_le(b + 14, 2, next);
    vdrv_mem_write(d, d->q[qi].desc + 16ULL * i, b, 16);
}

void vdrv_set_avail_idx(struct vdrv *d, unsigned qi, uint16_t idx)
{
    wr16(d, d->q[qi].avail + 2, idx);
}

void vdrv_set_avail_flags(struct vdrv *d, unsigned qi, uint16_t flags)
{
    wr16(d, d->q[qi].avail, flags);
}

void vdrv_set_used_event(struct vdrv *d, unsigned qi, uint16_t v)
{
    wr16(d, d->q[qi].avail + 4 + 2ULL * d->q[qi].size, v);
}

void vdrv_publish(struct vdrv *d, unsigned qi, uint16_t head)
{
    struct vdrv_queue *q = &d->q[qi];
    wr16(d, q->avail + 4 + 2ULL * (q->avail_idx % q->size), head);
    q->avail_idx++;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    vdrv_set_avail_idx(d, qi, q->avail_idx);
}

static uint16_t take_desc(struct vdrv_queue *q)
{
    uint16_t i = q->next_desc;
    q->next_desc = (uint16_t)((q->next_desc + 1) % q->size);
    return i;
}

uint16_t vdrv_post(struct vdrv *d, unsigned qi, const struct vdrv_buf *bufs, unsigned n)
{
    struct vdrv_queue *q = &d->q[qi];
    uint16_t idx[64];
    if (n == 0 || n > 64 || n > q->size)
        die("bad chain length");
    for (unsigned k = 0; k < n; k++)
        idx[k] = take_desc(q);
    for (unsigned k = 0; k < n; k++)
        vdrv_write_desc(d, qi, idx[k], bufs[k].addr, bufs[k].len,
                        (uint16_t)((bufs[k].write ? VDRV_DESC_WRITE : 0) | (k + 1 < n ? VDRV_DESC_NEXT : 0)),
                        k + 1 < n ? idx[k + 1] : 0);
    vdrv_publish(d, qi, idx[0]);
    return idx[0];
}

uint16_t vdrv_post_indirect(struct vdrv *d, unsigned qi, const struct vdrv_buf *bufs, unsigned n)
{
    struct vdrv_queue *q = &d->q[qi];
    uint64_t table = vdrv_alloc(d, 16ULL * n, 16);
    for (unsigned k = 0; k < n; k++) {
        uint8_t b[16];
        wr_le(b, 8, bufs[k].addr);
        wr_le(b + 8, 4, bufs[k].len);
        wr_le(b + 12, 2, (bufs[k].write ? VDRV_DESC_WRITE : 0) | (k + 1 < n ? VDRV_DESC_NEXT : 0));
        wr_le(b + 14, 2, k + 1 < n ? k + 1 : 0);
        vdrv_mem_write(d, table + 16ULL * k, b, 16);
    }
    uint16_t head = take_desc(q);
    vdrv_write_desc(d, qi, head, table, 16 * n, VDRV_DESC_INDIRECT, 0);
    vdrv_publish(d, qi, head);
    return head;
}

void vdrv_notify(struct vdrv *d, unsigned qi)
{
    harness_mmio_write(d->h, d->q[qi].notify_addr, 2, qi);
}

uint16_t vdrv_used_idx(struct vdrv *d, unsigned qi)
{
    return rd16(d, d->q[qi].used + 2);
}

struct used_wait {
    struct vdrv *d;
    unsigned q;
};

static bool used_arrived(void *opaque)
{
    struct used_wait *w = opaque;
    return vdrv_used_idx(w->d, w->q) != w->d->q[w->q].used_seen;
}

bool vdrv_wait_used(struct vdrv *d, unsigned qi, uint32_t *id, uint32_t *len, int timeout_ms)
{
    struct vdrv_queue *q = &d->q[qi];
    struct used_wait w = { d, qi };
    if (!harness_run_until(d->h, used_arrived, &w, timeout_ms))
        return false;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint64_t e = q->used + 4 + 8ULL * (q->used_seen % q->size);
    if (id)
        *id = rd32(d, e);
    if (len)
        *len = rd32(d, e + 4);
    q->used_seen++;
    return true;
}

/* --- PCI configuration access capability --------------------------------- */

static void cfg_window(struct vdrv *d, uint8_t bar, uint32_t off, uint32_t len)
{
    uint8_t c = d->pci_cfg_cap;
    pci_config_write(d->bus, d->devfn, c + VCAP_BAR, 1, bar);
    pci_config_write(d->bus, d->devfn, c + VCAP_OFF, 4, off);
    pci_config_write(d->bus, d->devfn, c + VCAP_LEN, 4, len);
}

uint32_t vdrv_pci_cfg_read(struct vdrv *d, uint8_t bar, uint32_t off, uint32_t len)
{
    cfg_window(d, bar, off, len);
    uint32_t v = pci_config_read(d->bus, d->devfn, d->pci_cfg_cap + VCAP_DATA, 4);
    return len >= 4 ? v : v & ((1u << (8 * len)) - 1);
}

void vdrv_pci_cfg_write(struct vdrv *d, uint8_t bar, uint32_t off, uint32_t len, uint32_t v)
{
    cfg_window(d, bar, off, len);
    pci_config_write(d->bus, d->devfn, d->pci_cfg_cap + VCAP_DATA, 4, v);
}
