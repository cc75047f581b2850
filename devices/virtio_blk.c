/* virtio block device (virtio 1.2, 5.2). */
#include "devices/virtio_blk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/block/block.h"
#include "devices/util.h"
#include "devices/virtio_pci.h"

/* Feature bits (5.2.3) */
#define VIRTIO_BLK_F_SEG_MAX   2
#define VIRTIO_BLK_F_RO        5
#define VIRTIO_BLK_F_BLK_SIZE  6
#define VIRTIO_BLK_F_FLUSH     9
#define VIRTIO_BLK_F_DISCARD   13

/* struct virtio_blk_config (5.2.4), up to write_zeroes_may_unmap */
#define CFG_CAPACITY                 0x00
#define CFG_SIZE_MAX                 0x08
#define CFG_SEG_MAX                  0x0c
#define CFG_BLK_SIZE                 0x14
#define CFG_MAX_DISCARD_SECTORS      0x24
#define CFG_MAX_DISCARD_SEG          0x28
#define CFG_DISCARD_SECTOR_ALIGNMENT 0x2c
#define CFG_SIZE                     0x3c

/* Request types and status (5.2.6) */
#define VIRTIO_BLK_T_IN       0
#define VIRTIO_BLK_T_OUT      1
#define VIRTIO_BLK_T_FLUSH    4
#define VIRTIO_BLK_T_GET_ID   8
#define VIRTIO_BLK_T_DISCARD  11
#define VIRTIO_BLK_S_OK       0
#define VIRTIO_BLK_S_IOERR    1
#define VIRTIO_BLK_S_UNSUPP   2

#define VIRTIO_BLK_ID_BYTES   20
#define DISCARD_FLAG_UNMAP    1
#define REQ_HEADER            16   /* type, reserved, sector */
#define DISCARD_SEG_SIZE      16   /* sector, num_sectors, flags */

#define SECTOR                512
#define QUEUE_SIZE            256
#define SEG_MAX               (QUEUE_SIZE - 2)
#define MAX_DISCARD_SECTORS   (1u << 22)     /* 2 GiB per segment */
#define MAX_DISCARD_SEG       32
#define DISCARD_ALIGN_SECTORS 8              /* hole punching works in 4 KiB pages */

struct virtio_blk {
    struct virtio_pci vp;
    struct platform *plat;
    struct blk *blk;
    uint64_t capacity;          /* sectors */
    uint8_t config[CFG_SIZE];
    char serial[VIRTIO_BLK_ID_BYTES];
    unsigned generation;        /* bumped on reset: older requests are dropped */
};

struct blk_request {
    struct virtio_blk *dev;
    struct virtq_elem *elem;
    uint8_t *status;
    unsigned generation;
    unsigned pending;           /* block operations outstanding, plus one while submitting */
    uint8_t result;
    bool flush_after;           /* write-through: make the write stable first */
    uint32_t written;           /* data bytes written to the driver's buffers */
    struct iovec iov[];         /* data buffers */
};

static void request_finish(struct blk_request *r)
{
    struct virtio_blk *b = r->dev;
    if (r->generation != b->generation) {
        /* The device was reset meanwhile: the rings are gone. */
        free(r->elem);
        free(r);
        return;
    }
    *r->status = r->result;
    uint32_t len = (r->result == VIRTIO_BLK_S_OK ? r->written : 0) + 1;
    virtq_push(virtio_pci_vq(&b->vp, 0), r->elem, len);
    free(r);
    virtio_pci_queue_done(&b->vp, 0);
}

static void request_put(struct blk_request *r)
{
    if (--r->pending == 0)
        request_finish(r);
}

static void io_done(void *opaque, int result)
{
    struct blk_request *r = opaque;
    if (result < 0) {
        log_warn("%s: I/O error: %s", r->dev->vp.info.name, strerror(-result));
        r->result = VIRTIO_BLK_S_IOERR;
    } else if (r->flush_after && r->generation == r->dev->generation) {
        /* The flush takes over this operation's share of pending. */
        r->flush_after = false;
        int ret = blk_flush(r->dev->blk, io_done, r);
        if (ret == 0)
            return;
        log_warn("%s: cannot flush: %s", r->dev->vp.info.name, strerror(-ret));
        r->result = VIRTIO_BLK_S_IOERR;
    }
    request_put(r);
}

static void submit_result(struct blk_request *r, int ret)
{
    if (ret == 0) {
        r->pending++;   /* io_done will drop it */
        return;
    }
    log_warn("%s: cannot submit I/O: %s", r->dev->vp.info.name, strerror(-ret));
    r->result = VIRTIO_BLK_S_IOERR;
}

/* True if [sector, sector + bytes/512) lies within the disk. */
static bool sectors_ok(const struct virtio_blk *b, uint64_t sector, uint64_t bytes)
{
    return sector <= b->capacity && bytes / SECTOR <= b->capacity - sector;
}

static void do_rw(struct virtio_blk *b, struct blk_request *r, bool write, uint64_t sector,
                  int niov, size_t len)
{
    if (write && blk_read_only(b->blk)) {
        r->result = VIRTIO_BLK_S_IOERR;   /* 5.2.6.2: and no data is written */
        return;
    }
    if (len % SECTOR || !sectors_ok(b, sector, len)) {
        log_guest_error("%s: %s of %zu bytes at sector %llu beyond %llu sectors or unaligned",
                        b->vp.info.name, write ? "write" : "read", len,
                        (unsigned long long)sector, (unsigned long long)b->capacity);
        r->result = VIRTIO_BLK_S_IOERR;
        return;
    }
    if (!write)
        r->written = (uint32_t)len;
    /* 5.2.6.2: FLUSH offered but not negotiated means every completed write
     * must already be stable. */
    r->flush_after = write && !virtio_pci_has_feature(&b->vp, VIRTIO_BLK_F_FLUSH);
    uint64_t off = sector * SECTOR;
    submit_result(r, write ? blk_writev(b->blk, off, r->iov, niov, io_done, r)
                           : blk_readv(b->blk, off, r->iov, niov, io_done, r));
}

static void do_discard(struct virtio_blk *b, struct blk_request *r, const struct virtq_elem *e)
{
    if (!virtio_pci_has_feature(&b->vp, VIRTIO_BLK_F_DISCARD)) {
        r->result = VIRTIO_BLK_S_UNSUPP;
        return;
    }
    size_t len = e->out_len - REQ_HEADER;
    if (len == 0 || len % DISCARD_SEG_SIZE) {
        log_guest_error("%s: discard data of %zu bytes", b->vp.info.name, len);
        r->result = VIRTIO_BLK_S_IOERR;
        return;
    }
    size_t nseg = len / DISCARD_SEG_SIZE;
    if (nseg > MAX_DISCARD_SEG) {
        log_guest_error("%s: discard with %zu segments (max %u)", b->vp.info.name, nseg, MAX_DISCARD_SEG);
        r->result = VIRTIO_BLK_S_UNSUPP;
        return;
    }
    uint8_t segs[MAX_DISCARD_SEG * DISCARD_SEG_SIZE];
    iov_to_buf(e->out, e->n_out, REQ_HEADER, segs, len);
    /* Check every range before touching any (5.2.6.2). */
    for (size_t i = 0; i < nseg; i++) {
        const uint8_t *s = segs + i * DISCARD_SEG_SIZE;
        uint64_t sector = ld_le(s, 8);
        uint32_t num = (uint32_t)ld_le(s + 8, 4), flags = (uint32_t)ld_le(s + 12, 4);
        if (flags) {
            /* Unknown flags, or unmap (which is for write zeroes only). */
            r->result = VIRTIO_BLK_S_UNSUPP;
            return;
        }
        if (num > MAX_DISCARD_SECTORS || !sectors_ok(b, sector, (uint64_t)num * SECTOR)) {
            log_guest_error("%s: discard of %u sectors at %llu out of range", b->vp.info.name, num,
                            (unsigned long long)sector);
            r->result = VIRTIO_BLK_S_IOERR;
            return;
        }
    }
    for (size_t i = 0; i < nseg && r->result == VIRTIO_BLK_S_OK; i++) {
        const uint8_t *s = segs + i * DISCARD_SEG_SIZE;
        uint64_t num = (uint32_t)ld_le(s + 8, 4);
        if (num)
            submit_result(r, blk_discard(b->blk, ld_le(s, 8) * SECTOR, num * SECTOR, io_done, r));
    }
}

static void handle_request(struct virtio_blk *b, struct virtqueue *vq, struct virtq_elem *e)
{
    /* 5.2.6: a readable header first, the status byte last. */
    if (e->out_len < REQ_HEADER || e->in_len < 1) {
        const char *why = e->in_len < 1 ? "virtio-blk request without a status byte"
                                        : "virtio-blk request header too short";
        free(e);
        virtq_set_broken(vq, why);
        return;
    }
    struct blk_request *r = calloc(1, sizeof(*r) + sizeof(struct iovec) * (e->n_out + e->n_in));
    if (!r) {
        log_error("%s: out of memory", b->vp.info.name);
        free(e);
        return;
    }
    r->dev = b;
    r->elem = e;
    r->generation = b->generation;
    r->pending = 1;
    struct iovec *last = &e->in[e->n_in - 1];
    r->status = (uint8_t *)last->iov_base + last->iov_len - 1;

    uint8_t hdr[REQ_HEADER];
    iov_to_buf(e->out, e->n_out, 0, hdr, sizeof(hdr));
    uint32_t type = (uint32_t)ld_le(hdr, 4);
    uint64_t sector = ld_le(hdr + 8, 8);
    unsigned cap = e->n_out + e->n_in;

    switch (type) {
    case VIRTIO_BLK_T_IN: {
        size_t len = e->in_len - 1;
        int n = iov_slice(e->in, e->n_in, 0, len, r->iov, cap);
        if (n < 0)
            r->result = VIRTIO_BLK_S_IOERR;
        else
            do_rw(b, r, false, sector, n, len);
        break;
    }
    case VIRTIO_BLK_T_OUT: {
        size_t len = e->out_len - REQ_HEADER;
        int n = iov_slice(e->out, e->n_out, REQ_HEADER, len, r->iov, cap);
        if (n < 0)
            r->result = VIRTIO_BLK_S_IOERR;
        else
            do_rw(b, r, true, sector, n, len);
        break;
    }
    case VIRTIO_BLK_T_FLUSH:
        submit_result(r, blk_flush(b->blk, io_done, r));
        break;
    case VIRTIO_BLK_T_GET_ID: {
        size_t n = MIN((size_t)VIRTIO_BLK_ID_BYTES, e->in_len - 1);
        r->written = (uint32_t)iov_from_buf(e->in, e->n_in, 0, b->serial, n);
        break;
    }
    case VIRTIO_BLK_T_DISCARD:
        do_discard(b, r, e);
        break;
    default:
        r->result = VIRTIO_BLK_S_UNSUPP;
        break;
    }
    request_put(r);
}

static void blk_queue_notify(void *opaque, unsigned q)
{
    struct virtio_blk *b = opaque;
    struct virtqueue *vq = virtio_pci_vq(&b->vp, q);
    struct virtq_elem *e;
    while (vq && virtq_pop(vq, &e) == 1)
        handle_request(b, vq, e);
}

static uint64_t blk_config_read(void *opaque, unsigned off, unsigned size)
{
    struct virtio_blk *b = opaque;
    return ld_le(&b->config[off], size);
}

static void blk_reset(void *opaque)
{
    struct virtio_blk *b = opaque;
    /* Requests still in flight complete into nothing: wait for them so no
     * DMA reaches guest memory after the reset. */
    b->generation++;
    blk_drain(b->blk);
}

static const struct virtio_device_ops blk_ops = {
    .config_read = blk_config_read,
    .queue_notify = blk_queue_notify,
    .reset = blk_reset,
};

void virtio_blk_set_serial(struct virtio_blk *b, const char *serial)
{
    memset(b->serial, 0, sizeof(b->serial));
    memcpy(b->serial, serial, MIN(strlen(serial), sizeof(b->serial)));
}

struct pci_device *virtio_blk_pci(struct virtio_blk *b)
{
    return &b->vp.pci;
}

struct virtio_blk *virtio_blk_create(struct platform *p, struct pci_bus *bus, const char *path,
                                     const char *format, bool read_only, char *err, size_t errlen)
{
    struct virtio_blk *b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->plat = p;
    b->blk = blk_open_format(p->loop, path, format, read_only, err, errlen);
    if (!b->blk) {
        free(b);
        return NULL;
    }
    b->capacity = blk_size(b->blk) / SECTOR;

    /* A stable default serial from the path (FNV-1a), so guests that name
     * disks by id see the same one every boot. */
    uint32_t h = 2166136261u;
    for (const char *c = path; *c; c++)
        h = (h ^ (uint8_t)*c) * 16777619u;
    char serial[VIRTIO_BLK_ID_BYTES + 1];
    snprintf(serial, sizeof(serial), "BURROW-%08X", h);
    virtio_blk_set_serial(b, serial);

    uint64_t features = 1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_BLK_SIZE |
                        1ULL << VIRTIO_BLK_F_FLUSH | 1ULL << VIRTIO_F_INDIRECT_DESC |
                        1ULL << VIRTIO_F_EVENT_IDX;
    if (read_only)
        features |= 1ULL << VIRTIO_BLK_F_RO;
    if (blk_can_discard(b->blk))
        features |= 1ULL << VIRTIO_BLK_F_DISCARD;

    st_le(&b->config[CFG_CAPACITY], 8, b->capacity);
    st_le(&b->config[CFG_SEG_MAX], 4, SEG_MAX);
    st_le(&b->config[CFG_BLK_SIZE], 4, SECTOR);
    st_le(&b->config[CFG_MAX_DISCARD_SECTORS], 4, MAX_DISCARD_SECTORS);
    st_le(&b->config[CFG_MAX_DISCARD_SEG], 4, MAX_DISCARD_SEG);
    st_le(&b->config[CFG_DISCARD_SECTOR_ALIGNMENT], 4, DISCARD_ALIGN_SECTORS);

    const struct virtio_pci_info info = {
        .name = "virtio-blk",
        .device_type = VIRTIO_ID_BLOCK,
        .class_code = 0x010000,        /* mass storage, SCSI, as other VMMs report */
        .features = features,
        .num_queues = 1,
        .queue_max_size = QUEUE_SIZE,
        .config_size = CFG_SIZE,
    };
    if (virtio_pci_init(&b->vp, p, &info, &blk_ops, b) < 0) {
        snprintf(err, errlen, "cannot set up the virtio-blk PCI function");
        virtio_pci_destroy(&b->vp);
        blk_close(b->blk);
        free(b);
        return NULL;
    }
    if (pci_bus_add(bus, &b->vp.pci, -1) < 0) {
        snprintf(err, errlen, "no free PCI slot for virtio-blk");
        virtio_pci_destroy(&b->vp);
        blk_close(b->blk);
        free(b);
        return NULL;
    }
    return b;
}

void virtio_blk_destroy(struct virtio_blk *b)
{
    if (!b)
        return;
    b->generation++;
    blk_drain(b->blk);
    virtio_pci_destroy(&b->vp);
    blk_close(b->blk);
    free(b);
}
