/* Read-only images of other formats: the shared part (see roimage.h). */
#include "devices/block/roimage.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/block/block.h"
#include "devices/util.h"

const struct ro_format *ro_format_find(const char *name)
{
    static const struct ro_format *const all[] = { &ro_format_vdi, &ro_format_vmdk, &ro_format_vhd,
                                                   &ro_format_vhdx };
    for (size_t i = 0; name && i < ARRAY_SIZE(all); i++)
        if (!strcmp(all[i]->name, name))
            return all[i];
    return NULL;
}

int ro_open_file(const char *path, int *fd, uint64_t *size, char *err, size_t errlen)
{
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) {
        int e = errno;
        set_err(err, errlen, "cannot open %s: %s", path, strerror(e));
        return -e;
    }
    int ret = blk_lock_image(*fd, false, path, err, errlen);
    struct stat st;
    if (ret == 0 && fstat(*fd, &st) < 0) {
        ret = -errno;
        set_err(err, errlen, "cannot stat %s: %s", path, strerror(-ret));
    } else if (ret == 0 && S_ISBLK(st.st_mode)) {
        if (ioctl(*fd, BLKGETSIZE64, size) < 0) {
            ret = -errno;
            set_err(err, errlen, "cannot get the size of %s: %s", path, strerror(-ret));
        }
    } else if (ret == 0 && S_ISREG(st.st_mode)) {
        *size = (uint64_t)st.st_size;
    } else if (ret == 0) {
        ret = -EINVAL;
        set_err(err, errlen, "%s is neither a regular file nor a block device", path);
    }
    if (ret < 0) {
        close(*fd);
        *fd = -1;
    }
    return ret;
}

void ro_count_file(struct ro_info *info, int fd)
{
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0)
        info->host_bytes += S_ISREG(st.st_mode) ? (uint64_t)st.st_blocks * 512 : 0;
}

int ro_pread(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off)
        return -EIO;
    while (len) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;      /* the file ends before its tables say */
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

bool ro_overlap(uint64_t *at, size_t n, uint64_t len)
{
    qsort(at, n, sizeof(*at), cmp_u64);
    for (size_t i = 1; i < n; i++)
        if (at[i] - at[i - 1] < len)
            return true;
    return false;
}

static bool quiet_errors;

void ro_set_quiet(bool on)
{
    quiet_errors = on;
}

int ro_utf16_to_utf8(const uint8_t *in, size_t n, bool big_endian, char *out, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        uint32_t c = big_endian ? (uint32_t)in[i] << 8 | in[i + 1] : (uint32_t)in[i + 1] << 8 | in[i];
        if (c == 0)
            break;
        if (c >= 0xdc00 && c < 0xe000)
            return -EINVAL;
        if (c >= 0xd800 && c < 0xdc00) {
            if (i + 3 >= n)
                return -EINVAL;
            uint32_t lo = big_endian ? (uint32_t)in[i + 2] << 8 | in[i + 3]
                                     : (uint32_t)in[i + 3] << 8 | in[i + 2];
            if (lo < 0xdc00 || lo >= 0xe000)
                return -EINVAL;
            c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
            i += 2;
        }
        uint8_t u[4];
        size_t k;
        if (c < 0x80) {
            u[0] = (uint8_t)c;
            k = 1;
        } else if (c < 0x800) {
            u[0] = (uint8_t)(0xc0 | c >> 6);
            u[1] = (uint8_t)(0x80 | (c & 0x3f));
            k = 2;
        } else if (c < 0x10000) {
            u[0] = (uint8_t)(0xe0 | c >> 12);
            u[1] = (uint8_t)(0x80 | (c >> 6 & 0x3f));
            u[2] = (uint8_t)(0x80 | (c & 0x3f));
            k = 3;
        } else {
            u[0] = (uint8_t)(0xf0 | c >> 18);
            u[1] = (uint8_t)(0x80 | (c >> 12 & 0x3f));
            u[2] = (uint8_t)(0x80 | (c >> 6 & 0x3f));
            u[3] = (uint8_t)(0x80 | (c & 0x3f));
            k = 4;
        }
        if (o + k >= len)
            return -EINVAL;
        memcpy(out + o, u, k);
        o += k;
    }
    if (len == 0)
        return -EINVAL;
    out[o] = '\0';
    return 0;
}

int ro_corrupt(struct ro_image *img, const char *what, uint64_t v)
{
    if (!img->why[0]) {
        snprintf(img->why, sizeof(img->why), "%s image is inconsistent: %s (0x%" PRIx64 ")",
                 img->fmt->name, what, v);
        if (!quiet_errors && img->depth == 0)
            log_error("%s", img->why);
    }
    return -EIO;
}

int ro_open(struct ro_image **out, const struct ro_format *fmt, const char *path, int depth,
            bool open_parent, char *err, size_t errlen)
{
    *out = NULL;
    if (depth > RO_MAX_CHAIN) {
        set_err(err, errlen, "%s: parent chain deeper than %d (a loop?)", path, RO_MAX_CHAIN);
        return -ELOOP;
    }
    struct ro_image *img = calloc(1, sizeof(*img));
    if (!img) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    img->fmt = fmt;
    img->depth = depth;
    int ret = fmt->open(img, path, open_parent, err, errlen);
    if (ret < 0) {
        ro_close(img);
        return ret;
    }
    *out = img;
    return 0;
}

void ro_close(struct ro_image *img)
{
    while (img) {
        struct ro_image *parent = img->parent;
        img->fmt->close(img);
        free(img);
        img = parent;
    }
}

int ro_parent_path(const char *child_path, const char *name, char *full, size_t len)
{
    const char *slash = strrchr(child_path, '/');
    int n = name[0] == '/' || !slash ? snprintf(full, len, "%s", name)
                                     : snprintf(full, len, "%.*s/%s", (int)(slash - child_path),
                                                child_path, name);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int ro_open_parent(struct ro_image *img, const struct ro_format *fmt, const char *child_path,
                   const char *name, char *err, size_t errlen)
{
    char full[PATH_MAX];
    if (!name[0] || ro_parent_path(child_path, name, full, sizeof(full)) < 0) {
        set_err(err, errlen, "%s: bad parent path '%s'", child_path, name);
        return -ENAMETOOLONG;
    }
    char sub[512];
    int ret = ro_open(&img->parent, fmt, full, img->depth + 1, true, sub, sizeof(sub));
    /* Said once, by the image opened, about the innermost failure. */
    if (ret < 0 && img->depth == 0)
        set_err(err, errlen, "%s: parent %s: %s", child_path, name, sub);
    else if (ret < 0)
        set_err(err, errlen, "%s", sub);
    return ret;
}

/* Maps [off, off+len) of img, with the map's answer checked. */
static int map_checked(struct ro_image *img, uint64_t off, uint64_t len, struct ro_map *m)
{
    memset(m, 0, sizeof(*m));
    int ret = img->fmt->map(img, off, len, m);
    if (ret < 0)
        return ret;
    if (m->len == 0 || m->len > len)
        return ro_corrupt(img, "mapping of no length", off);
    return 0;
}

int ro_read(struct ro_image *img, uint64_t off, void *buf, size_t len)
{
    uint8_t *p = buf;
    if (off >= img->size) {
        memset(p, 0, len);
        return 0;
    }
    if (len > img->size - off) {
        size_t in = (size_t)(img->size - off);
        memset(p + in, 0, len - in);
        len = in;
    }
    /* Runs that lie one after another in one file become one read. */
    int pend_fd = -1;
    uint64_t pend_host = 0;
    size_t pend_len = 0;
    uint8_t *pend_buf = NULL;
    int ret = 0;
    while (len && ret == 0) {
        struct ro_map m;
        if ((ret = map_checked(img, off, len, &m)) < 0)
            break;
        size_t n = (size_t)m.len;
        if (pend_len && !(m.kind == RO_DATA && m.fd == pend_fd && m.host == pend_host + pend_len)) {
            ret = ro_pread(pend_fd, pend_buf, pend_len, pend_host);
            pend_len = 0;
            if (ret < 0)
                break;
        }
        switch (m.kind) {
        case RO_DATA:
            if (!pend_len) {
                pend_fd = m.fd;
                pend_host = m.host;
                pend_buf = p;
            }
            pend_len += n;
            break;
        case RO_BUF:
            memcpy(p, m.buf, n);
            break;
        case RO_ZERO:
            memset(p, 0, n);
            break;
        case RO_PARENT:
            if (img->parent)
                ret = ro_read(img->parent, off, p, n);
            else
                memset(p, 0, n);
            break;
        }
        off += n;
        p += n;
        len -= n;
    }
    if (ret == 0 && pend_len)
        ret = ro_pread(pend_fd, pend_buf, pend_len, pend_host);
    if (ret == -EIO && img->parent && !img->why[0] && img->parent->why[0])
        snprintf(img->why, sizeof(img->why), "%s", img->parent->why);
    return ret;
}

int ro_status(struct ro_image *img, uint64_t off, uint64_t len, uint64_t *pnum)
{
    if (off >= img->size) {
        *pnum = len;
        return 0;
    }
    len = MIN(len, img->size - off);
    struct ro_map m;
    int ret = map_checked(img, off, len, &m);
    if (ret < 0)
        return ret;
    *pnum = m.len;
    if (m.kind == RO_PARENT && img->parent)
        return ro_status(img->parent, off, m.len, pnum);
    if (m.kind == RO_DATA) {
        /* A hole in the file (a fixed image, a flat extent, copied
         * sparse) is no data either. */
        off_t d = lseek(m.fd, (off_t)m.host, SEEK_DATA);
        if (d < 0 && errno == ENXIO) {
            return 0;
        } else if (d > (off_t)m.host) {
            *pnum = MIN(m.len, (uint64_t)d - m.host);
            return 0;
        } else if (d == (off_t)m.host) {
            off_t h = lseek(m.fd, (off_t)m.host, SEEK_HOLE);
            if (h > (off_t)m.host)
                *pnum = MIN(m.len, (uint64_t)h - m.host);
        }
    }
    return m.kind == RO_DATA || m.kind == RO_BUF;
}

int ro_info(const char *path, const char *format, struct ro_info *info, char *err, size_t errlen)
{
    memset(info, 0, sizeof(*info));
    const struct ro_format *fmt = ro_format_find(format);
    if (!fmt) {
        set_err(err, errlen, "unknown format '%s'", format);
        return -EINVAL;
    }
    struct ro_image *img;
    int ret = ro_open(&img, fmt, path, 0, false, err, errlen);
    if (ret < 0)
        return ret;
    info->format = fmt->name;
    info->size = img->size;
    fmt->describe(img, info);
    /* What the image itself stores: walk its map (the runs are bounded by
     * its tables, which are bounded by the file). */
    bool q = quiet_errors;
    quiet_errors = true;
    for (uint64_t off = 0; off < img->size;) {
        struct ro_map m;
        if ((ret = map_checked(img, off, img->size - off, &m)) < 0) {
            set_err(err, errlen, "%s: %s", path, img->why[0] ? img->why : strerror(-ret));
            break;
        }
        if (m.kind == RO_DATA || m.kind == RO_BUF)
            info->allocated += m.len;
        off += m.len;
    }
    quiet_errors = q;
    ro_close(img);
    return ret;
}

/* --- the block driver --------------------------------------------------- */

/* A read for the worker, with its own copy of the iovecs. */
struct ro_job {
    struct ro_image *img;
    uint64_t off;
    size_t total;
    blk_cb cb;
    void *opaque;
    int n;
    struct iovec iov[];
};

static int job_run(void *arg)
{
    struct ro_job *j = arg;
    uint64_t off = j->off;
    for (int i = 0; i < j->n; i++) {
        int ret = ro_read(j->img, off, j->iov[i].iov_base, j->iov[i].iov_len);
        if (ret < 0)
            return ret;
        off += j->iov[i].iov_len;
    }
    return (int)MIN(j->total, (size_t)INT32_MAX);
}

static void job_done(void *opaque, int res)
{
    struct ro_job *j = opaque;
    blk_cb cb = j->cb;
    void *op = j->opaque;
    free(j);
    cb(op, res);
}

static int ro_blk_readv(struct blk *b, uint64_t off, const struct iovec *iov, int n, blk_cb cb, void *opaque)
{
    struct ro_job *j = malloc(sizeof(*j) + sizeof(struct iovec) * (size_t)n);
    if (!j)
        return -ENOMEM;
    *j = (struct ro_job){ .img = b->drv_state, .off = off, .cb = cb, .opaque = opaque, .n = n };
    for (int i = 0; i < n; i++) {
        j->iov[i] = iov[i];
        j->total += iov[i].iov_len;
    }
    int ret = blk_aio_offload(b->aio, job_run, j, job_done, j);
    if (ret < 0)
        free(j);
    return ret;
}

static int ro_blk_writev(struct blk *b, uint64_t off, const struct iovec *iov, int n, blk_cb cb, void *opaque)
{
    return -EROFS;      /* opens are read-only; blk_writev refuses first */
}

static const struct iovec no_iov;

/* Nothing is ever written: an empty request completes from the event loop. */
static int ro_blk_nothing(struct blk *b, blk_cb cb, void *opaque)
{
    return blk_aio_submit(b->aio, BLK_AIO_READ, -1, 0, &no_iov, 0, 0, cb, opaque);
}

static int ro_blk_discard(struct blk *b, uint64_t off, uint64_t len, blk_cb cb, void *opaque)
{
    return -EROFS;
}

static int ro_blk_status(struct blk *b, uint64_t off, uint64_t len, uint64_t *pnum)
{
    return ro_status(b->drv_state, off, len, pnum);
}

static void ro_blk_close(struct blk *b)
{
    ro_close(b->drv_state);
    b->drv_state = NULL;
}

int ro_blk_open(struct blk *b, const struct ro_format *fmt, const char *path, bool read_only,
                char *err, size_t errlen)
{
    if (!read_only) {
        set_err(err, errlen, "%s is a %s image, which Burrow reads but does not write: open it "
                "read-only, or convert it with 'burrow disk convert %s NEW.qcow2'", path, fmt->name, path);
        return -EROFS;
    }
    struct ro_image *img;
    int ret = ro_open(&img, fmt, path, 0, true, err, errlen);
    if (ret < 0)
        return ret;
    b->drv_state = img;
    b->size = img->size;
    b->can_discard = false;
    return 0;
}

const char *ro_error(const struct blk *b)
{
    if (!b->drv_state || !ro_format_find(b->drv->name))
        return "";
    const struct ro_image *img = b->drv_state;
    return img->why;
}

#define RO_DRIVER(f)                                                                        \
    static int f##_blk_open(struct blk *b, const char *path, bool ro, char *err, size_t errlen) \
    {                                                                                       \
        return ro_blk_open(b, &ro_format_##f, path, ro, err, errlen);                       \
    }                                                                                       \
    const struct blk_driver blk_driver_##f = {                                              \
        .name = #f,                                                                         \
        .open = f##_blk_open,                                                               \
        .close = ro_blk_close,                                                              \
        .readv = ro_blk_readv,                                                              \
        .writev = ro_blk_writev,                                                            \
        .flush = ro_blk_nothing,                                                            \
        .discard = ro_blk_discard,                                                          \
        .block_status = ro_blk_status,                                                      \
    }

RO_DRIVER(vdi);
RO_DRIVER(vmdk);
RO_DRIVER(vhd);
RO_DRIVER(vhdx);
