/* Split virtqueues (virtio 1.2, 2.7) as seen from the device side.
 *
 * The transport tells a queue where its three areas live in guest memory
 * (descriptor table, driver area = available ring, device area = used ring);
 * the device pops descriptor chains as host iovecs and pushes them back with
 * the number of bytes it wrote.  A queue that meets a malformed chain
 * becomes "broken": it logs a guest error, calls the transport's error hook
 * (which sets DEVICE_NEEDS_RESET) and refuses all work until reset. */
#ifndef BURROW_VIRTQUEUE_H
#define BURROW_VIRTQUEUE_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

#include "devices/guest_mem.h"

#define VIRTQ_MAX_SIZE 1024

/* Descriptor flags (2.7.5) */
#define VIRTQ_DESC_F_NEXT      1
#define VIRTQ_DESC_F_WRITE     2
#define VIRTQ_DESC_F_INDIRECT  4
/* Available ring flags (2.7.6) and used ring flags (2.7.8) */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY     1

/* Transport-independent feature bits (6) that concern the rings. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

/* One popped descriptor chain.  out[] are the device-readable buffers (in
 * chain order), in[] the device-writable ones that follow them. */
struct virtq_elem {
    uint16_t head;
    unsigned n_out, n_in;
    size_t out_len, in_len;        /* byte totals */
    struct iovec *out, *in;        /* point into iov[] */
    struct iovec iov[];
};

struct virtqueue {
    /* Set up by the transport before virtq_enable(). */
    const struct guest_mem *mem;
    uint16_t size;                 /* power of two, <= VIRTQ_MAX_SIZE */
    uint64_t desc_gpa, avail_gpa, used_gpa;
    bool indirect;                 /* VIRTIO_F_INDIRECT_DESC negotiated */
    bool event_idx;                /* VIRTIO_F_EVENT_IDX negotiated */
    void (*on_error)(void *opaque); /* called once when the queue breaks */
    void *err_opaque;

    /* Run-time state. */
    bool ready;
    bool broken;
    uint8_t *desc;                 /* host views of the three areas */
    uint8_t *avail;
    uint8_t *used;
    uint16_t last_avail;           /* next avail ring slot to consume */
    uint16_t used_idx;             /* our copy of used->idx */
    uint16_t signalled_used;       /* used_idx when we last decided on an interrupt */
    bool signalled_valid;
    struct iovec *scratch;         /* chain walk buffer */
    unsigned scratch_cap;
};

/* Zeroes the run-time state (keeps mem, on_error); the queue is not ready. */
void virtq_reset(struct virtqueue *vq);
/* Frees internal buffers. */
void virtq_destroy(struct virtqueue *vq);

/* Validates size, alignment and that the areas lie in guest RAM, and makes
 * the queue ready.  On failure logs a guest error and returns -1. */
int virtq_enable(struct virtqueue *vq);

/* Pops the next available chain.  Returns 1 and sets *out (free() it, or
 * hand it back with virtq_push), 0 when the queue is empty, -1 when the
 * queue is (or just became) broken. */
int virtq_pop(struct virtqueue *vq, struct virtq_elem **out);

/* Returns a chain to the driver, recording `written` bytes; frees elem. */
void virtq_push(struct virtqueue *vq, struct virtq_elem *elem, uint32_t written);

/* After one or more pushes: true if the driver wants an interrupt now
 * (honours VIRTQ_AVAIL_F_NO_INTERRUPT or used_event). */
bool virtq_should_interrupt(struct virtqueue *vq);

/* True if avail idx shows entries we have not consumed. */
bool virtq_has_work(struct virtqueue *vq);

/* Marks the queue broken, logs why and calls on_error once. */
void virtq_set_broken(struct virtqueue *vq, const char *why);

/* iovec helpers: copy between a flat buffer and an iovec array starting at
 * byte `skip`; return the number of bytes copied. */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len);
size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *buf, size_t len);
/* Writes into dst[] (capacity dst_cap) the sub-range [skip, skip+len) of
 * iov[]; returns the number of entries, or -1 if dst_cap is too small or the
 * range exceeds the iovecs. */
int iov_slice(const struct iovec *iov, unsigned n, size_t skip, size_t len,
              struct iovec *dst, unsigned dst_cap);

#endif
