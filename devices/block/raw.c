/* Raw images: a regular file or a host block device, byte for byte. */
#include "devices/block/block.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

struct raw_state {
    int fd;
};

static int raw_fd(struct blk *b)
{
    return ((struct raw_state *)b->drv_state)->fd;
}

static int raw_open(struct blk *b, const char *path, bool read_only, char *err, size_t errlen)
{
    int fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot open %s%s: %s", path, read_only ? "" : " for writing", strerror(e));
        return -e;
    }
    /* Two writers on one image corrupt it: lock it as QEMU does. */
    int lr = blk_lock_image(fd, !read_only, path, err, errlen);
    if (lr < 0) {
        close(fd);
        return lr;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot stat %s: %s", path, strerror(e));
        close(fd);
        return -e;
    }
    uint64_t size;
    if (S_ISREG(st.st_mode)) {
        size = (uint64_t)st.st_size;
    } else if (S_ISBLK(st.st_mode)) {
        if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
            int e = errno;
            snprintf(err, errlen, "cannot get the size of %s: %s", path, strerror(e));
            close(fd);
            return -e;
        }
    } else {
        snprintf(err, errlen, "%s is neither a regular file nor a block device", path);
        close(fd);
        return -EINVAL;
    }
    struct raw_state *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        close(fd);
        return -ENOMEM;
    }
    s->fd = fd;
    b->drv_state = s;
    b->size = size;
    b->can_discard = !read_only;
    return 0;
}

static void raw_close(struct blk *b)
{
    struct raw_state *s = b->drv_state;
    if (!s)
        return;
    close(s->fd);
    free(s);
    b->drv_state = NULL;
}

static int raw_readv(struct blk *b, uint64_t off, const struct iovec *iov, int n, blk_cb cb, void *opaque)
{
    return blk_aio_submit(b->aio, BLK_AIO_READ, raw_fd(b), off, iov, n, 0, cb, opaque);
}

static int raw_writev(struct blk *b, uint64_t off, const struct iovec *iov, int n, blk_cb cb, void *opaque)
{
    return blk_aio_submit(b->aio, BLK_AIO_WRITE, raw_fd(b), off, iov, n, 0, cb, opaque);
}

static int raw_flush(struct blk *b, blk_cb cb, void *opaque)
{
    return blk_aio_submit(b->aio, BLK_AIO_FLUSH, raw_fd(b), 0, NULL, 0, 0, cb, opaque);
}

static int raw_discard(struct blk *b, uint64_t off, uint64_t len, blk_cb cb, void *opaque)
{
    return blk_aio_submit(b->aio, BLK_AIO_DISCARD, raw_fd(b), off, NULL, 0, len, cb, opaque);
}

const struct blk_driver blk_driver_raw = {
    .name = "raw",
    .open = raw_open,
    .close = raw_close,
    .readv = raw_readv,
    .writev = raw_writev,
    .flush = raw_flush,
    .discard = raw_discard,
};
