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
#define SECTOR 512

static const struct blk_driver *const drivers[] = {
    &blk_driver_raw, &blk_driver_qcow2, &blk_driver_vdi, &blk_driver_vmdk, &blk_driver_vhd,
    &blk_driver_vhdx,
};

static const struct blk_driver *driver_named(const char *format)
{
    for (size_t i = 0; i < ARRAY_SIZE(drivers); i++)
        if (!strcmp(drivers[i]->name, format))
            return drivers[i];
    return NULL;
}

/* What the file's first (or, for a fixed VHD, last) bytes show; NULL when
 * it cannot be read (the driver's open then reports why). */
static const char *probe_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    const char *seen = blk_probe_fd(fd);
    close(fd);
    return seen;
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
    if (format) {
        drv = driver_named(format);
        if (!drv) {
            snprintf(err, errlen, "unknown disk format '%s' (known: raw, qcow2, vdi, vmdk, vhd, vhdx)",
                     format);
            return NULL;
        }
    } else {
        const char *seen = probe_path(path);
        drv = seen ? driver_named(seen) : &blk_driver_raw;
        if (!drv) {
            snprintf(err, errlen, "%s looks like %s %s image, which Burrow cannot open; "
                     "convert it to qcow2 or raw, or pass format=raw to use it as raw bytes",
                     path, article(seen), seen);
            return NULL;
        }
        probed_raw = !seen;
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
    int ret = b->drv->open(b, path, read_only, err, errlen);
    if (ret < 0) {
        /* A file that only looked like that format may be raw data. */
        size_t n = strlen(err);
        if (!format && (ret == -EINVAL || ret == -ENOTSUP) && blk_format_read_only(drv->name) &&
            n + 1 < errlen)
            snprintf(err + n, errlen - n, " (if it is raw data, pass format=raw)");
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

/* Copies up to len bytes from position pos of the vector; returns how many. */
static size_t iov_gather(const struct iovec *iov, int n, size_t pos, uint8_t *buf, size_t len)
{
    size_t got = 0;
    for (int i = 0; i < n && got < len; i++) {
        if (pos >= iov[i].iov_len) {
            pos -= iov[i].iov_len;
            continue;
        }
        size_t c = MIN(iov[i].iov_len - pos, len - got);
        memcpy(buf + got, (const uint8_t *)iov[i].iov_base + pos, c);
        got += c;
        pos = 0;
    }
    return got;
}

/* True when a write would give a detected raw image the signature of
 * another format: at its start, or a fixed VHD's footer in its last
 * sector. */
static bool writes_signature(const struct blk *b, uint64_t off, const struct iovec *iov, int n)
{
    uint8_t sec[PROBE_BYTES];
    size_t total = iov_total(iov, n);
    if (off == 0 && blk_probe(sec, iov_gather(iov, n, 0, sec, sizeof(sec))))
        return true;
    return total >= SECTOR && off + total == b->size &&
           iov_gather(iov, n, total - SECTOR, sec, SECTOR) == SECTOR && blk_probe_tail(sec, b->size);
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
    if (b->guard_sector0 && writes_signature(b, off, iov, iovcnt)) {
        log_guest_error("block: refused a write that would make a raw disk look like %s image; "
                        "open it with format=raw to allow it", "another format's");
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

int blk_block_status(struct blk *b, uint64_t off, uint64_t len, uint64_t *pnum)
{
    if (!in_range(b, off, len) || len == 0)
        return -EINVAL;
    if (!b->drv->block_status) {
        *pnum = len;
        return 1;
    }
    return b->drv->block_status(b, off, len, pnum);
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
