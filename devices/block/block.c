/* Block backend front: picks the image driver, checks requests against the
 * image, and forwards them. */
#include "devices/block/block.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "devices/util.h"

struct blk *blk_open(struct evloop *loop, const char *path, bool read_only, char *err, size_t errlen)
{
    struct blk *b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->read_only = read_only;
    b->aio = blk_aio_new(loop);
    if (!b->aio) {
        snprintf(err, errlen, "cannot set up disk I/O for %s", path);
        free(b);
        return NULL;
    }
    /* Only raw images so far; a format probe goes here with qcow2. */
    b->drv = &blk_driver_raw;
    if (b->drv->open(b, path, read_only, err, errlen) < 0) {
        blk_aio_free(b->aio);
        free(b);
        return NULL;
    }
    return b;
}

void blk_close(struct blk *b)
{
    if (!b)
        return;
    blk_aio_drain(b->aio);
    b->drv->close(b);
    blk_aio_free(b->aio);
    free(b);
}

bool blk_is_async(const struct blk *b)
{
    return blk_aio_is_uring(b->aio);
}

static size_t iov_total(const struct iovec *iov, int n)
{
    size_t t = 0;
    for (int i = 0; i < n; i++)
        t += iov[i].iov_len;
    return t;
}

static bool in_range(const struct blk *b, uint64_t off, uint64_t len)
{
    return off <= b->size && len <= b->size - off;
}

int blk_readv(struct blk *b, uint64_t off, const struct iovec *iov, int iovcnt, blk_cb cb, void *opaque)
{
    if (iovcnt < 0 || !in_range(b, off, iov_total(iov, iovcnt)))
        return -EINVAL;
    return b->drv->readv(b, off, iov, iovcnt, cb, opaque);
}

int blk_writev(struct blk *b, uint64_t off, const struct iovec *iov, int iovcnt, blk_cb cb, void *opaque)
{
    if (b->read_only)
        return -EROFS;
    if (iovcnt < 0 || !in_range(b, off, iov_total(iov, iovcnt)))
        return -EINVAL;
    return b->drv->writev(b, off, iov, iovcnt, cb, opaque);
}

int blk_flush(struct blk *b, blk_cb cb, void *opaque)
{
    return b->drv->flush(b, cb, opaque);
}

int blk_discard(struct blk *b, uint64_t off, uint64_t len, blk_cb cb, void *opaque)
{
    if (b->read_only)
        return -EROFS;
    if (!in_range(b, off, len))
        return -EINVAL;
    return b->drv->discard(b, off, len, cb, opaque);
}

void blk_drain(struct blk *b)
{
    blk_aio_drain(b->aio);
}
