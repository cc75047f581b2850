/* virtio entropy device (virtio 1.2, 5.4). */
#include "devices/virtio_rng.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "devices/util.h"
#include "devices/virtio_pci.h"

#define QUEUE_SIZE      64
/* Bytes handed out per request: a guest asking for megabytes gets a part,
 * which 5.4.6.2 allows (the used length says how much). */
#define MAX_PER_REQUEST (64 * 1024)

struct virtio_rng {
    struct virtio_pci vp;
};

/* Fills up to len bytes; returns how many were written. */
static size_t fill(struct iovec *iov, unsigned n, size_t len)
{
    size_t done = 0;
    for (unsigned i = 0; i < n && done < len; i++) {
        size_t want = MIN(iov[i].iov_len, len - done), got = 0;
        while (got < want) {
            ssize_t r = getrandom((uint8_t *)iov[i].iov_base + got, want - got, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                log_warn("virtio-rng: getrandom: %s", strerror(errno));
                return done + got;
            }
            got += (size_t)r;
        }
        done += got;
    }
    return done;
}

static void rng_queue_notify(void *opaque, unsigned q)
{
    struct virtio_rng *r = opaque;
    struct virtqueue *vq = virtio_pci_vq(&r->vp, q);
    struct virtq_elem *e;
    bool pushed = false;
    while (vq && virtq_pop(vq, &e) == 1) {
        if (e->n_out) {
            /* 5.4.6.1: requests consist of device-writable buffers only. */
            free(e);
            virtq_set_broken(vq, "virtio-rng request with device-readable buffers");
            return;
        }
        size_t n = fill(e->in, e->n_in, MIN(e->in_len, (size_t)MAX_PER_REQUEST));
        virtq_push(vq, e, (uint32_t)n);
        pushed = true;
    }
    if (pushed)
        virtio_pci_queue_done(&r->vp, q);
}

static uint64_t rng_config_read(void *opaque, unsigned off, unsigned size)
{
    return 0;   /* no configuration (5.4.4) */
}

static void rng_reset(void *opaque)
{
    /* Requests are served synchronously: nothing is in flight. */
}

static const struct virtio_device_ops rng_ops = {
    .config_read = rng_config_read,
    .queue_notify = rng_queue_notify,
    .reset = rng_reset,
};

struct pci_device *virtio_rng_pci(struct virtio_rng *r)
{
    return &r->vp.pci;
}

struct virtio_rng *virtio_rng_create(struct platform *p, struct pci_bus *bus, char *err, size_t errlen)
{
    struct virtio_rng *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const struct virtio_pci_info info = {
        .name = "virtio-rng",
        .device_type = VIRTIO_ID_ENTROPY,
        .class_code = 0xff0000,        /* unclassified device */
        .features = 1ULL << VIRTIO_F_INDIRECT_DESC | 1ULL << VIRTIO_F_EVENT_IDX,
        .num_queues = 1,
        .queue_max_size = QUEUE_SIZE,
        .config_size = 0,
    };
    if (virtio_pci_init(&r->vp, p, &info, &rng_ops, r) < 0) {
        snprintf(err, errlen, "cannot set up the virtio-rng PCI function");
        virtio_pci_destroy(&r->vp);
        free(r);
        return NULL;
    }
    if (pci_bus_add(bus, &r->vp.pci, -1) < 0) {
        snprintf(err, errlen, "no free PCI slot for virtio-rng");
        virtio_pci_destroy(&r->vp);
        free(r);
        return NULL;
    }
    return r;
}

void virtio_rng_destroy(struct virtio_rng *r)
{
    if (!r)
        return;
    virtio_pci_destroy(&r->vp);
    free(r);
}
