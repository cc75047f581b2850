/* Disk image operations: see app/disk.h. */
#include "app/disk.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/block/block.h"
#include "devices/block/qcow2.h"
#include "devices/block/roimage.h"
#include "devices/util.h"

#define SECTOR        512
#define COPY_CHUNK    (1024 * 1024)
#define ZERO_GRAIN    (64 * 1024)     /* zero regions are skipped in these units */

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return ret;
}

int disk_parse_size(const char *text, uint64_t *out, char *err, size_t errlen)
{
    const char *p = text;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*p))
        goto bad;
    for (; isdigit((unsigned char)*p); p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return fail(err, errlen, -ERANGE, "size '%s' is too large", text);
        v = v * 10 + (uint64_t)(*p - '0');
    }
    unsigned shift = 0;
    if (*p) {
        const char *units = "KMGT";
        const char *u = strchr(units, toupper((unsigned char)*p));
        if (!u)
            goto bad;
        shift = 10 * (unsigned)(u - units + 1);
        p++;
        if (!strcmp(p, "iB"))
            p += 2;
        if (*p)
            goto bad;
    }
    if (shift && v > (UINT64_MAX >> shift))
        return fail(err, errlen, -ERANGE, "size '%s' is too large", text);
    v <<= shift;
    if (v > (uint64_t)INT64_MAX)
        return fail(err, errlen, -ERANGE, "size '%s' is too large", text);
    if (v == 0)
        return fail(err, errlen, -EINVAL, "size must be greater than zero");
    if (v % SECTOR)
        return fail(err, errlen, -EINVAL, "size %s (%" PRIu64 " bytes) is not a multiple of 512 bytes", text, v);
    *out = v;
    return 0;
bad:
    return fail(err, errlen, -EINVAL, "bad size '%s': give bytes, or a number with K, M, G or T "
                "(powers of 1024)", text);
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 || errno != ENOENT;
}

/* Size of a raw file or block device. */
static int raw_size(const char *path, uint64_t *size, uint64_t *allocated, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errlen, -errno, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    int ret = 0;
    if (fstat(fd, &st) < 0) {
        ret = fail(err, errlen, -errno, "cannot stat %s: %s", path, strerror(errno));
    } else if (S_ISBLK(st.st_mode)) {
        if (ioctl(fd, BLKGETSIZE64, size) < 0)
            ret = fail(err, errlen, -errno, "cannot get the size of %s: %s", path, strerror(errno));
        *allocated = *size;
    } else if (S_ISREG(st.st_mode)) {
        *size = (uint64_t)st.st_size;
        *allocated = (uint64_t)st.st_blocks * 512;
    } else {
        ret = fail(err, errlen, -EINVAL, "%s is neither a regular file nor a block device", path);
    }
    close(fd);
    return ret;
}

/* The image's format: "raw", "qcow2", or one Burrow only reads ("vdi",
 * "vmdk", "vhd", "vhdx"); an error naming what the file looks like when
 * Burrow cannot read it. */
static int detect(const char *path, const char **fmt, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errlen, -errno, "cannot open %s: %s", path, strerror(errno));
    const char *seen = blk_probe_fd(fd);
    close(fd);
    if (seen && strcmp(seen, "qcow2") && !blk_format_read_only(seen))
        return fail(err, errlen, -ENOTSUP, "%s looks like a %s image, which Burrow cannot read", path, seen);
    *fmt = seen ? seen : "raw";
    return 0;
}

static int check_format(const char *format, char *err, size_t errlen)
{
    if (strcmp(format, "qcow2") && strcmp(format, "raw"))
        return fail(err, errlen, -EINVAL, "unknown format '%s' (known: qcow2, raw)", format);
    return 0;
}

int disk_create(const char *path, uint64_t size, const char *format, const char *backing,
                char *err, size_t errlen)
{
    int ret = check_format(format, err, errlen);
    if (ret < 0)
        return ret;
    if (exists(path))
        return fail(err, errlen, -EEXIST, "%s already exists", path);
    if (size % SECTOR)
        return fail(err, errlen, -EINVAL, "size must be a multiple of 512 bytes");
    if (!strcmp(format, "raw")) {
        if (backing)
            return fail(err, errlen, -EINVAL, "a backing file needs the qcow2 format");
        if (!size)
            return fail(err, errlen, -EINVAL, "size must be greater than zero");
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
            return fail(err, errlen, -errno, "cannot create %s: %s", path, strerror(errno));
        if (ftruncate(fd, (off_t)size) < 0 || fsync(fd) < 0) {
            ret = fail(err, errlen, -errno, "cannot size %s: %s", path, strerror(errno));
            close(fd);
            unlink(path);
            return ret;
        }
        close(fd);
        return 0;
    }
    if (!size) {
        if (!backing)
            return fail(err, errlen, -EINVAL, "size must be greater than zero");
        /* The backing file's size, found where the image will look. */
        char full[PATH_MAX];
        const char *slash = strrchr(path, '/');
        if (backing[0] == '/' || !slash)
            snprintf(full, sizeof(full), "%s", backing);
        else
            snprintf(full, sizeof(full), "%.*s/%s", (int)(slash - path), path, backing);
        struct blk *b = blk_open_format(NULL, full, NULL, true, err, errlen);
        if (!b)
            return -EINVAL;
        const char *bfmt = blk_format(b);      /* a string of the driver's, not of b */
        if (blk_format_read_only(bfmt)) {
            blk_close(b);
            return fail(err, errlen, -ENOTSUP, "backing file %s is a %s image; a backing file must be "
                        "qcow2 or raw (convert it first: burrow disk convert %s NEW.qcow2)",
                        full, bfmt, full);
        }
        size = ALIGN_UP(blk_size(b), (uint64_t)SECTOR);
        blk_close(b);
        if (!size)
            return fail(err, errlen, -EINVAL, "backing file %s is empty; give a size", full);
    }
    struct qcow2_create_opts o = { .size = size, .backing_file = backing };
    return qcow2_create(path, &o, err, errlen);
}

int disk_get_info(const char *path, struct disk_info *info, char *err, size_t errlen)
{
    memset(info, 0, sizeof(*info));
    const char *fmt;
    uint64_t size;
    int ret = detect(path, &fmt, err, errlen);
    if (ret == 0)
        ret = raw_size(path, &size, &info->actual_size, err, errlen);
    if (ret < 0)
        return ret;
    snprintf(info->format, sizeof(info->format), "%s", fmt);
    if (!strcmp(fmt, "raw")) {
        info->virtual_size = size;
        return 0;
    }
    if (blk_format_read_only(fmt)) {
        struct ro_info r;
        if ((ret = ro_info(path, fmt, &r, err, errlen)) < 0)
            return ret;
        info->read_only_format = true;
        info->virtual_size = r.size;
        info->actual_size = r.host_bytes;
        info->allocated_size = r.allocated;
        info->cluster_size = r.block_size;
        snprintf(info->subformat, sizeof(info->subformat), "%s", r.subformat);
        snprintf(info->backing_file, sizeof(info->backing_file), "%s", r.parent);
        return 0;
    }
    struct qcow2_info q;
    if ((ret = qcow2_info(path, &q, err, errlen)) < 0)
        return ret;
    info->virtual_size = q.size;
    info->cluster_size = q.cluster_size;
    info->qcow2_version = q.version;
    info->refcount_bits = q.refcount_bits;
    snprintf(info->backing_file, sizeof(info->backing_file), "%s", q.backing_file);
    snprintf(info->backing_format, sizeof(info->backing_format), "%s", q.backing_format);
    info->dirty = q.dirty;
    info->corrupt = q.corrupt;
    info->lazy_refcounts = q.lazy_refcounts;
    return 0;
}

int disk_resize(const char *path, uint64_t size, char *err, size_t errlen)
{
    struct disk_info info;
    int ret = disk_get_info(path, &info, err, errlen);
    if (ret < 0)
        return ret;
    if (size < info.virtual_size)
        return fail(err, errlen, -EINVAL, "%s: shrinking from %" PRIu64 " to %" PRIu64 " bytes is refused "
                    "(the data past the new end would be lost)", path, info.virtual_size, size);
    if (size == info.virtual_size)
        return 0;
    if (info.read_only_format)
        return fail(err, errlen, -EROFS, "%s is a %s image, which Burrow reads but does not write; convert "
                    "it first: burrow disk convert %s NEW.qcow2", path, info.format, path);
    if (!strcmp(info.format, "qcow2"))
        return qcow2_resize(path, size, err, errlen);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errlen, -errno, "cannot open %s for writing: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode))
        ret = fail(err, errlen, -EINVAL, "%s: only regular files can be resized", path);
    else if ((ret = blk_lock_image(fd, true, path, err, errlen)) == 0 && ftruncate(fd, (off_t)size) < 0)
        ret = fail(err, errlen, -errno, "cannot resize %s: %s", path, strerror(errno));
    close(fd);
    return ret;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    /* The first byte, then the buffer against itself shifted by one. */
    return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

/* Reads [off, off+len) of in into buf, leaving the regions the image does
 * not store (holes, unallocated blocks) as zeroes without reading them. */
static int read_stored(struct blk *in, uint64_t off, uint8_t *buf, size_t len)
{
    for (size_t pos = 0; pos < len;) {
        uint64_t n;
        int st = blk_block_status(in, off + pos, len - pos, &n);
        if (st < 0)
            return st;
        if (n == 0 || n > len - pos)
            return -EIO;
        int ret = st ? blk_pread(in, off + pos, buf + pos, (size_t)n) : 0;
        if (ret < 0)
            return ret;
        if (!st)
            memset(buf + pos, 0, (size_t)n);
        pos += (size_t)n;
    }
    return 0;
}

/* Why reading in failed: its format's finding, else the errno's text. */
static const char *read_error(const struct blk *in, int ret)
{
    const char *why = qcow2_error(in);
    if (!why[0])
        why = ro_error(in);
    return why[0] ? why : strerror(-ret);
}

static int copy_data(struct blk *in, struct blk *out, uint64_t size, disk_progress_fn progress,
                     void *opaque, char *err, size_t errlen, const char *src, const char *dst)
{
    uint8_t *buf = malloc(COPY_CHUNK);
    if (!buf)
        return fail(err, errlen, -ENOMEM, "out of memory");
    uint64_t in_size = blk_size(in);
    int ret = 0;
    for (uint64_t off = 0; off < size && ret == 0; off += COPY_CHUNK) {
        size_t len = (size_t)MIN((uint64_t)COPY_CHUNK, size - off);
        size_t have = off < in_size ? (size_t)MIN((uint64_t)len, in_size - off) : 0;
        memset(buf + have, 0, len - have);
        if (have && (ret = read_stored(in, off, buf, have)) < 0) {
            fail(err, errlen, ret, "cannot read %s at byte %" PRIu64 ": %s", src, off, read_error(in, ret));
            break;
        }
        /* Write runs of grains that hold data; zero grains stay holes. */
        for (size_t g = 0; g < len && ret == 0;) {
            size_t gl = MIN((size_t)ZERO_GRAIN, len - g);
            if (all_zero(buf + g, gl)) {
                g += gl;
                continue;
            }
            size_t end = g + gl;
            while (end < len && !all_zero(buf + end, MIN((size_t)ZERO_GRAIN, len - end)))
                end += MIN((size_t)ZERO_GRAIN, len - end);
            if ((ret = blk_pwrite(out, off + g, buf + g, end - g)) < 0)
                fail(err, errlen, ret, "cannot write %s: %s", dst, strerror(-ret));
            g = end;
        }
        if (progress)
            progress(opaque, off + len, size);
    }
    free(buf);
    if (ret == 0 && (ret = blk_flush_sync(out)) < 0)
        fail(err, errlen, ret, "cannot write %s: %s", dst, strerror(-ret));
    return ret;
}

int disk_convert(const char *src, const char *dst, const char *format,
                 disk_progress_fn progress, void *opaque, char *err, size_t errlen)
{
    int ret = check_format(format, err, errlen);
    if (ret < 0)
        return ret;
    if (exists(dst))
        return fail(err, errlen, -EEXIST, "%s already exists", dst);
    const char *sfmt;
    if ((ret = detect(src, &sfmt, err, errlen)) < 0)
        return ret;
    struct blk *in = blk_open_format(NULL, src, sfmt, true, err, errlen);
    if (!in)
        return -EINVAL;
    uint64_t size = ALIGN_UP(blk_size(in), (uint64_t)SECTOR);
    if (size == 0) {
        blk_close(in);
        return fail(err, errlen, -EINVAL, "%s is empty", src);
    }
    if ((ret = disk_create(dst, size, format, NULL, err, errlen)) < 0) {
        blk_close(in);
        return ret;
    }
    struct blk *out = blk_open_format(NULL, dst, format, false, err, errlen);
    if (!out) {
        ret = -EIO;
    } else {
        ret = copy_data(in, out, size, progress, opaque, err, errlen, src, dst);
        blk_close(out);
    }
    blk_close(in);
    if (ret < 0)
        unlink(dst);
    return ret;
}

const char *disk_detect_format(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return "raw";
    const char *seen = blk_probe_fd(fd);
    close(fd);
    return seen ? seen : "raw";
}

int disk_qcow2_name(const char *src, const char *dir, char *out, size_t len)
{
    const char *base = strrchr(src, '/');
    base = base ? base + 1 : src;
    size_t stem = strlen(base);
    const char *dot = strrchr(base, '.');
    if (dot && dot != base)
        stem = (size_t)(dot - base);
    int dlen = dir ? (int)strlen(dir) : (int)(base - src);
    const char *d = dir ? dir : src;
    const char *sep = dir && dlen && d[dlen - 1] != '/' ? "/" : "";
    for (int i = 0; i < 100; i++) {
        char num[8] = "";
        if (i)
            snprintf(num, sizeof(num), "-%d", i);
        int n = snprintf(out, len, "%.*s%s%.*s%s.qcow2", dlen, d, sep, (int)stem, base, num);
        if (n < 0 || (size_t)n >= len)
            return -ENAMETOOLONG;
        if (!exists(out))
            return 0;
    }
    return -EEXIST;
}

/* Appends word to out, in single quotes unless it needs none. */
static void shell_word(char *out, size_t len, const char *word)
{
    size_t o = strlen(out);
    bool plain = *word != '\0';
    for (const char *c = word; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("_-./+:@%=,", *c))
            plain = false;
    if (plain) {
        snprintf(out + o, len - o, "%s", word);
        return;
    }
    if (o + 1 < len)
        out[o++] = '\'';
    for (const char *c = word; *c && o + 5 < len; c++) {
        if (*c == '\'') {
            memcpy(out + o, "'\\''", 4);
            o += 4;
        } else {
            out[o++] = *c;
        }
    }
    if (o + 1 < len)
        out[o++] = '\'';
    out[o < len ? o : len - 1] = '\0';
}

void disk_convert_command(const char *src, char *out, size_t len)
{
    char dst[PATH_MAX];
    if (disk_qcow2_name(src, NULL, dst, sizeof(dst)) < 0)
        snprintf(dst, sizeof(dst), "NEW.qcow2");
    snprintf(out, len, "burrow disk convert ");
    shell_word(out, len, src);
    size_t o = strlen(out);
    snprintf(out + o, len - o, " ");
    shell_word(out, len, dst);
}
