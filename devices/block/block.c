/* Block backend front: picks the image driver (named, or detected from the
 * image's first bytes), checks requests against the image, and forwards
 * them. */
#include "devices/block/block.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/util.h"

#define PROBE_BYTES 512

/* Reads the first bytes of path; 0 bytes when it cannot be read (the
 * driver's open then reports why). */
static size_t read_head(const char *path, uint8_t *buf, size_t len)
{
    memset(buf, 0, len);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = pread(fd, buf, len, 0);
    close(fd);
    return n > 0 ? (size_t)n : 0;
}

static const char *article(const char *fmt)
{
    return strchr("aeiou", fmt[0]) ? "an" : "a";
}

struct blk *blk_open_format(struct evloop *loop, const char *path, const char *format,
                            bool read_only, char *err, size_t errlen)
{
    const struct blk_driver *drv;
    bool probed_raw = false;
    if (format && !strcmp(format, "raw")) {
        drv = &blk_driver_raw;
    } else if (format && !strcmp(format, "qcow2")) {
        drv = &blk_driver_qcow2;
    } else if (format) {
        snprintf(err, errlen, "unknown disk format '%s' (known: raw, qcow2)", format);
        return NULL;
    } else {
        uint8_t head[PROBE_BYTES];
        const char *seen = blk_probe(head, read_head(path, head, sizeof(head)));
        if (seen && !strcmp(seen, "qcow2")) {
            drv = &blk_driver_qcow2;
        } else if (seen) {
            snprintf(err, errlen, "%s looks like %s %s image, which Burrow cannot open; "
                     "convert it to qcow2 or raw, or pass format=raw to use it as raw bytes",
                     path, article(seen), seen);
            return NULL;
        } else {
            drv = &blk_driver_raw;
            probed_raw = true;
        }
    }

    struct blk *b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->read_only = read_only;
    b->guard_sector0 = probed_raw;
    b->aio = blk_aio_new(loop);
    if (!b->aio) {
        snprintf(err, errlen, "cannot set up disk I/O for %s", path);
        free(b);
        return NULL;
    }
    b->drv = drv;
    if (b->drv->open(b, path, read_only, err, errlen) < 0) {
        blk_aio_free(b->aio);
        free(b);
        return NULL;
    }
    return b;
}

struct blk *blk_open(struct evloop *loop, const char *path, bool read_only, char *err, size_t errlen)
{
    return blk_open_format(loop, path, NULL, read_only, err, errlen);
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

/* True when a write at offset 0 would give a detected raw image the
 * signature of another format. */
static bool writes_signature(const struct iovec *iov, int n)
{
    uint8_t head[PROBE_BYTES];
    size_t got = 0;
    for (int i = 0; i < n && got < sizeof(head); i++) {
        size_t c = MIN(iov[i].iov_len, sizeof(head) - got);
        memcpy(head + got, iov[i].iov_base, c);
        got += c;
    }
    return blk_probe(head, got) != NULL;
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
    if (b->guard_sector0 && off == 0 && writes_signature(iov, iovcnt)) {
        log_guest_error("block: refused a write that would make a raw disk's first sector "
                        "look like %s image; open it with format=raw to allow it",
                        "another format's");
        return -EPERM;
    }
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

/* --- synchronous forms for tools ---------------------------------------- */

static void sync_done(void *opaque, int result)
{
    int *out = opaque;
    *out = result;
}

/* Waits for a request submitted with &res as its opaque. */
static int sync_wait(struct blk *b, int submitted, int *res)
{
    if (submitted < 0)
        return submitted;
    blk_drain(b);
    return *res < 0 ? *res : 0;
}

int blk_pread(struct blk *b, uint64_t off, void *buf, size_t len)
{
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    int res = 1;
    return sync_wait(b, blk_readv(b, off, &iov, 1, sync_done, &res), &res);
}

int blk_pwrite(struct blk *b, uint64_t off, const void *buf, size_t len)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    int res = 1;
    return sync_wait(b, blk_writev(b, off, &iov, 1, sync_done, &res), &res);
}

int blk_flush_sync(struct blk *b)
{
    int res = 1;
    return sync_wait(b, blk_flush(b, sync_done, &res), &res);
}
