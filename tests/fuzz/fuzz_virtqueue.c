/* The split virtqueue (devices/virtqueue.c) on its own, as a device model
 * uses it: rings the guest laid out in RAM, chains popped as host iovecs
 * (direct and indirect descriptors), pushed back, interrupt suppression
 * with and without EVENT_IDX, resets, and the iovec helpers.  Every
 * iovec a pop returns is checked to lie inside guest RAM.
 *
 * Input: a header, then ops until the bytes run out.
 *   header: size byte (bit 7 clear: 2^(b % 11) entries; set: b & 0x7f,
 *           which may be invalid), features byte (bit 0 INDIRECT_DESC,
 *           bit 1 EVENT_IDX), then the descriptor table, available ring
 *           and used ring addresses, 3 bytes each (RAM is 64 KiB at 0, so
 *           larger ones lie outside it)
 *   op byte & 7:
 *     0 RAM: address (2 bytes), length byte (0 = 256), the bytes
 *     1 pop a chain and hold it (at most 64 held; the oldest is pushed
 *       back first when full)
 *     2 push back a held chain (index byte), written = 4 bytes, after
 *       writing that many bytes (at most its writable length) into it
 *     3 should the driver be interrupted now
 *     4 has the queue work
 *     5 reset and enable the queue again
 *     6 iovec helpers on a held chain (index byte, skip and length 2 bytes
 *       each, capacity byte): iov_to_buf, iov_from_buf, iov_slice
 *     7 the device gives up on the queue (virtq_set_broken) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/util.h"
#include "devices/virtqueue.h"
#include "fuzz/fuzz_machine.h"

#define MAX_HELD 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fz f;
static struct virtq_elem *held[MAX_HELD];
static unsigned nheld;
static uint8_t buf[1 << 17];

static void check_iov(const struct iovec *iov, unsigned n, size_t total)
{
    size_t sum = 0;
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *p = iov[i].iov_base;
        if (p < f.h->ram || p > f.h->ram + FZ_RAM_SIZE || iov[i].iov_len > (size_t)(f.h->ram + FZ_RAM_SIZE - p)) {
            fprintf(stderr, "fuzz: iovec %u outside guest RAM\n", i);
            abort();
        }
        sum += iov[i].iov_len;
    }
    if (sum != total)
        abort();
}

static void push(struct virtqueue *vq, unsigned k, uint32_t written)
{
    struct virtq_elem *e = held[k];
    memset(buf, 0xa5, sizeof(buf));
    size_t n = MIN((size_t)written, MIN(e->in_len, sizeof(buf)));
    if (iov_from_buf(e->in, e->n_in, 0, buf, n) != n)
        abort();
    held[k] = held[--nheld];
    virtq_push(vq, e, written);
}

static void iov_ops(struct virtq_elem *e)
{
    size_t skip = (size_t)fz_le(&f, 2), len = (size_t)fz_le(&f, 2);
    unsigned cap = fz_u8(&f) % 8 + 1;
    size_t got = iov_to_buf(e->out, e->n_out, skip, buf, len);
    if (got > len || (skip < e->out_len && got != MIN(len, e->out_len - skip)))
        abort();
    got = iov_from_buf(e->in, e->n_in, skip, buf, len);
    if (got > len || (skip < e->in_len && got != MIN(len, e->in_len - skip)))
        abort();
    struct iovec dst[8];
    int k = iov_slice(e->iov, e->n_out + e->n_in, skip, len, dst, cap);
    if (k >= 0) {
        size_t sum = 0;
        for (int i = 0; i < k; i++)
            sum += dst[i].iov_len;
        if (sum != len || (unsigned)k > cap)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_init(&f);
    f.data = data;
    f.size = size;
    struct virtqueue vq = { .mem = &f.h->mem };
    uint8_t sz = fz_u8(&f), feat = fz_u8(&f);
    vq.size = (uint16_t)(sz & 0x80 ? sz & 0x7f : 1u << (sz % 11));
    vq.indirect = feat & 1;
    vq.event_idx = feat & 2;
    vq.desc_gpa = fz_le(&f, 3);
    vq.avail_gpa = fz_le(&f, 3);
    vq.used_gpa = fz_le(&f, 3);
    virtq_enable(&vq);
    nheld = 0;
    while (fz_more(&f)) {
        uint8_t op = fz_u8(&f);
        switch (op & 7) {
        case 0: {
            uint64_t addr = fz_le(&f, 2);
            unsigned count = fz_u8(&f);
            uint8_t bytes[256];
            size_t n = fz_bytes(&f, bytes, count ? count : 256);
            memcpy(f.h->ram + addr, bytes, MIN(n, (size_t)(FZ_RAM_SIZE - addr)));
            break;
        }
        case 1: {
            if (nheld == MAX_HELD)
                push(&vq, 0, 0);
            struct virtq_elem *e;
            int r = virtq_pop(&vq, &e);
            if (r == 1) {
                check_iov(e->out, e->n_out, e->out_len);
                check_iov(e->in, e->n_in, e->in_len);
                held[nheld++] = e;
            } else if (e) {
                abort();
            }
            break;
        }
        case 2: {
            unsigned k = fz_u8(&f);
            uint32_t written = (uint32_t)fz_le(&f, 4);
            if (nheld)
                push(&vq, k % nheld, written);
            break;
        }
        case 3:
            virtq_should_interrupt(&vq);
            break;
        case 4:
            virtq_has_work(&vq);
            break;
        case 5:
            while (nheld)
                free(held[--nheld]);
            virtq_reset(&vq);
            virtq_enable(&vq);
            break;
        case 6: {
            unsigned k = fz_u8(&f);
            if (nheld)
                iov_ops(held[k % nheld]);
            break;
        }
        case 7:
            virtq_set_broken(&vq, "the device gave up");
            break;
        }
    }
    while (nheld)
        push(&vq, nheld - 1, 0);
    virtq_destroy(&vq);
    fz_fini(&f);
    return 0;
}
