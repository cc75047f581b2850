/* Split virtqueue, device side (virtio 1.2, 2.7). */
#include "devices/virtqueue.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "devices/util.h"

/* Ring layouts (2.7.5-2.7.8), byte offsets inside each area. */
#define DESC_SIZE         16
#define AVAIL_FLAGS       0
#define AVAIL_IDX         2
#define AVAIL_RING(i)     (4 + 2 * (size_t)(i))
#define USED_FLAGS        0
#define USED_IDX          2
#define USED_RING(i)      (4 + 8 * (size_t)(i))

struct vring_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

static size_t desc_area_size(uint16_t n) { return (size_t)DESC_SIZE * n; }
static size_t avail_area_size(uint16_t n) { return 6 + 2 * (size_t)n; }   /* incl. used_event */
static size_t used_area_size(uint16_t n) { return 6 + 8 * (size_t)n; }    /* incl. avail_event */

/* Shared ring fields are read and written with single aligned accesses so
 * the driver never sees a torn index. */
static uint16_t ring_ld16(const uint8_t *p)
{
    return le16toh(__atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED));
}

static void ring_st16(uint8_t *p, uint16_t v)
{
    __atomic_store_n((uint16_t *)p, htole16(v), __ATOMIC_RELAXED);
}

static void ring_st32(uint8_t *p, uint32_t v)
{
    __atomic_store_n((uint32_t *)p, htole32(v), __ATOMIC_RELAXED);
}

void virtq_reset(struct virtqueue *vq)
{
    vq->ready = false;
    vq->broken = false;
    vq->desc = vq->avail = vq->used = NULL;
    vq->last_avail = 0;
    vq->used_idx = 0;
    vq->signalled_used = 0;
    vq->signalled_valid = false;
}

void virtq_destroy(struct virtqueue *vq)
{
    free(vq->scratch);
    vq->scratch = NULL;
    vq->scratch_cap = 0;
}

void virtq_set_broken(struct virtqueue *vq, const char *why)
{
    log_guest_error("virtqueue: %s; queue stopped until device reset", why);
    if (vq->broken)
        return;
    vq->broken = true;
    if (vq->on_error)
        vq->on_error(vq->err_opaque);
}

int virtq_enable(struct virtqueue *vq)
{
    uint16_t n = vq->size;
    if (n == 0 || n > VIRTQ_MAX_SIZE || (n & (n - 1))) {
        log_guest_error("virtqueue: invalid queue size %u", n);
        return -1;
    }
    /* 2.7: descriptor table 16-byte, available ring 2-byte, used ring
     * 4-byte aligned. */
    if ((vq->desc_gpa & 15) || (vq->avail_gpa & 1) || (vq->used_gpa & 3)) {
        log_guest_error("virtqueue: misaligned rings (desc %#llx avail %#llx used %#llx)",
                        (unsigned long long)vq->desc_gpa, (unsigned long long)vq->avail_gpa,
                        (unsigned long long)vq->used_gpa);
        return -1;
    }
    vq->desc = guest_mem_ptr(vq->mem, vq->desc_gpa, desc_area_size(n));
    vq->avail = guest_mem_ptr(vq->mem, vq->avail_gpa, avail_area_size(n));
    vq->used = guest_mem_ptr(vq->mem, vq->used_gpa, used_area_size(n));
    if (!vq->desc || !vq->avail || !vq->used) {
        log_guest_error("virtqueue: rings outside guest RAM (desc %#llx avail %#llx used %#llx)",
                        (unsigned long long)vq->desc_gpa, (unsigned long long)vq->avail_gpa,
                        (unsigned long long)vq->used_gpa);
        vq->desc = vq->avail = vq->used = NULL;
        return -1;
    }
    vq->last_avail = 0;
    vq->used_idx = 0;
    vq->signalled_valid = false;
    vq->broken = false;
    vq->ready = true;
    return 0;
}

bool virtq_has_work(struct virtqueue *vq)
{
    if (!vq->ready || vq->broken)
        return false;
    return ring_ld16(vq->avail + AVAIL_IDX) != vq->last_avail;
}

static int scratch_push(struct virtqueue *vq, unsigned *n, void *base, size_t len)
{
    if (*n == vq->scratch_cap) {
        unsigned cap = vq->scratch_cap ? vq->scratch_cap * 2 : 64;
        struct iovec *s = realloc(vq->scratch, cap * sizeof(*s));
        if (!s)
            return -1;
        vq->scratch = s;
        vq->scratch_cap = cap;
    }
    vq->scratch[(*n)++] = (struct iovec){ base, len };
    return 0;
}

/* Maps [gpa, gpa+len) into host iovecs.  A buffer may cross from one RAM
 * region into an adjacent one; any byte outside RAM is an error. */
static int map_buffer(struct virtqueue *vq, unsigned *n, uint64_t gpa, uint32_t len)
{
    const struct guest_mem *m = vq->mem;
    uint64_t left = len;
    while (left) {
        const struct guest_mem_region *r = guest_mem_region_of(m, gpa);
        if (!r)
            return -1;
        uint64_t off = gpa - r->gpa;
        uint64_t chunk = MIN(left, r->size - off);
        if (scratch_push(vq, n, r->hva + off, (size_t)chunk) < 0)
            return -1;
        gpa += chunk;
        left -= chunk;
    }
    return 0;
}

static void read_desc(const uint8_t *table, uint16_t i, struct vring_desc *d)
{
    const uint8_t *p = table + (size_t)i * DESC_SIZE;
    d->addr = le64toh(ld64(p));
    d->len = le32toh(ld32(p + 8));
    d->flags = le16toh(ld16(p + 12));
    d->next = le16toh(ld16(p + 14));
}

/* Walks the chain at `head` into vq->scratch.  Returns the number of iovecs
 * and sets *n_out (how many are device-readable), or -1 with *why set. */
static int walk_chain(struct virtqueue *vq, uint16_t head, unsigned *n_out, const char **why)
{
    const uint8_t *table = vq->desc;
    unsigned limit = vq->size;        /* entries in the current table */
    unsigned budget = vq->size;       /* 2.7.5.3.1: a chain never exceeds the queue size */
    unsigned seen = 0;
    bool in_indirect = false, writable = false;
    unsigned n = 0, nout = 0;
    uint16_t i = head;

    for (;;) {
        struct vring_desc d;
        if (++seen > budget) {
            *why = "descriptor chain longer than the queue (loop?)";
            return -1;
        }
        read_desc(table, i, &d);

        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            if (!vq->indirect) {
                *why = "indirect descriptor without VIRTIO_F_INDIRECT_DESC";
                return -1;
            }
            if (in_indirect) {
                *why = "nested indirect descriptor table";
                return -1;
            }
            if (d.flags & VIRTQ_DESC_F_NEXT) {
                *why = "indirect descriptor with NEXT set";
                return -1;
            }
            if (d.len == 0 || d.len % DESC_SIZE) {
                *why = "indirect table length not a multiple of 16";
                return -1;
            }
            if (d.len / DESC_SIZE > budget) {
                *why = "indirect table larger than the queue";
                return -1;
            }
            table = guest_mem_ptr(vq->mem, d.addr, d.len);
            if (!table) {
                *why = "indirect table outside guest RAM";
                return -1;
            }
            limit = d.len / DESC_SIZE;
            budget = limit;
            seen = 0;
            in_indirect = true;
            i = 0;
            continue;
        }

        if (d.flags & VIRTQ_DESC_F_WRITE) {
            writable = true;
        } else if (writable) {
            /* 2.7.4.2: device-readable buffers come before writable ones. */
            *why = "device-readable descriptor after a device-writable one";
            return -1;
        }
        if (d.len) {
            if (map_buffer(vq, &n, d.addr, d.len) < 0) {
                *why = "buffer outside guest RAM";
                return -1;
            }
            if (!writable)
                nout = n;
        }
        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            break;
        if (d.next >= limit) {
            *why = "descriptor next index out of range";
            return -1;
        }
        i = d.next;
    }
    *n_out = nout;
    return (int)n;
}

int virtq_pop(struct virtqueue *vq, struct virtq_elem **out)
{
    *out = NULL;
    if (vq->broken)
        return -1;
    if (!vq->ready)
        return 0;

    uint16_t avail_idx = ring_ld16(vq->avail + AVAIL_IDX);
    if (avail_idx == vq->last_avail) {
        if (!vq->event_idx)
            return 0;
        /* 2.7.10: tell the driver where we are, then look again so an entry
         * added meanwhile is not missed. */
        ring_st16(vq->used + USED_RING(vq->size), vq->last_avail);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        avail_idx = ring_ld16(vq->avail + AVAIL_IDX);
        if (avail_idx == vq->last_avail)
            return 0;
    }
    if ((uint16_t)(avail_idx - vq->last_avail) > vq->size) {
        virtq_set_broken(vq, "available index moved by more than the queue size");
        return -1;
    }
    /* Read the ring entry and descriptors only after seeing the index. */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);

    uint16_t head = ring_ld16(vq->avail + AVAIL_RING(vq->last_avail % vq->size));
    if (head >= vq->size) {
        virtq_set_broken(vq, "available ring names a descriptor beyond the queue");
        return -1;
    }
    const char *why = NULL;
    unsigned n_out = 0;
    int n = walk_chain(vq, head, &n_out, &why);
    if (n < 0) {
        virtq_set_broken(vq, why ? why : "out of memory walking a chain");
        return -1;
    }
    struct virtq_elem *e = malloc(sizeof(*e) + (size_t)n * sizeof(struct iovec));
    if (!e) {
        /* Not "queue empty": the request would wait forever unseen. */
        log_error("virtqueue: out of memory for a request of %d buffers", n);
        virtq_set_broken(vq, "a request was dropped for want of memory");
        return -1;
    }
    e->head = head;
    e->n_out = n_out;
    e->n_in = (unsigned)n - n_out;
    if (n)      /* a chain of zero-length buffers has no scratch */
        memcpy(e->iov, vq->scratch, (size_t)n * sizeof(struct iovec));
    e->out = e->iov;
    e->in = e->iov + n_out;
    e->out_len = e->in_len = 0;
    for (unsigned k = 0; k < e->n_out; k++)
        e->out_len += e->out[k].iov_len;
    for (unsigned k = 0; k < e->n_in; k++)
        e->in_len += e->in[k].iov_len;
    vq->last_avail++;
    if (vq->event_idx)
        ring_st16(vq->used + USED_RING(vq->size), vq->last_avail);
    *out = e;
    return 1;
}

void virtq_push(struct virtqueue *vq, struct virtq_elem *elem, uint32_t written)
{
    if (vq->ready && !vq->broken) {
        uint8_t *slot = vq->used + USED_RING(vq->used_idx % vq->size);
        ring_st32(slot, elem->head);
        ring_st32(slot + 4, written);
        /* 2.7.8.2: the element must be visible before the index moves. */
        __atomic_thread_fence(__ATOMIC_RELEASE);
        vq->used_idx++;
        ring_st16(vq->used + USED_IDX, vq->used_idx);
    }
    free(elem);
}

bool virtq_should_interrupt(struct virtqueue *vq)
{
    if (!vq->ready || vq->broken)
        return false;
    /* Order our used->idx store before reading the driver's suppression
     * fields (2.7.7.2 / 2.7.10). */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!vq->event_idx)
        return !(ring_ld16(vq->avail + AVAIL_FLAGS) & VIRTQ_AVAIL_F_NO_INTERRUPT);

    uint16_t old = vq->signalled_used, now = vq->used_idx;
    bool valid = vq->signalled_valid;
    vq->signalled_used = now;
    vq->signalled_valid = true;
    if (!valid)
        return true;
    uint16_t event = ring_ld16(vq->avail + AVAIL_RING(vq->size));
    /* Interrupt iff used_event lies in [old, now). */
    return (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len)
{
    size_t done = 0;
    for (unsigned i = 0; i < n && done < len; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        size_t c = MIN(iov[i].iov_len - skip, len - done);
        memcpy((uint8_t *)buf + done, (uint8_t *)iov[i].iov_base + skip, c);
        done += c;
        skip = 0;
    }
    return done;
}

size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *buf, size_t len)
{
    size_t done = 0;
    for (unsigned i = 0; i < n && done < len; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        size_t c = MIN(iov[i].iov_len - skip, len - done);
        memcpy((uint8_t *)iov[i].iov_base + skip, (const uint8_t *)buf + done, c);
        done += c;
        skip = 0;
    }
    return done;
}

int iov_slice(const struct iovec *iov, unsigned n, size_t skip, size_t len,
              struct iovec *dst, unsigned dst_cap)
{
    unsigned k = 0;
    for (unsigned i = 0; i < n && len; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        if (k == dst_cap)
            return -1;
        size_t c = MIN(iov[i].iov_len - skip, len);
        dst[k++] = (struct iovec){ (uint8_t *)iov[i].iov_base + skip, c };
        len -= c;
        skip = 0;
    }
    return len ? -1 : (int)k;
}
