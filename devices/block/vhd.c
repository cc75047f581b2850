/* VHD images (Virtual PC, Hyper-V's first format), read-only, after
 * Microsoft's "Virtual Hard Disk Image Format Specification" (1.0).
 *
 * Every image ends with a 512-byte footer (511 before Virtual PC 2004),
 * big-endian, with a checksum.  A fixed image is the disk's bytes followed
 * by the footer.  A dynamic or differencing image also has a copy of the
 * footer at its start, which points at a dynamic disk header; that points
 * at the block allocation table (BAT): one 32-bit sector number per block
 * of the disk, or 0xffffffff for a block never written.  An allocated block
 * is a sector bitmap (one bit per sector, the first sector in the high bit
 * of byte 0, padded to whole sectors) followed by the block's data.  In a
 * dynamic image the block's data is all there is; in a differencing image
 * a clear bit sends the sector to the parent image, found through the
 * parent locators (or the parent's name) and checked by its unique id.
 *
 * The virtual size is the footer's Current Size, as the specification
 * defines it (Virtual PC itself showed guests the CHS geometry's size,
 * which may be a little smaller). */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/block/roimage.h"
#include "devices/util.h"

/* Footer fields */
#define F_COOKIE            0
#define F_FEATURES          8
#define F_VERSION           12
#define F_DATA_OFFSET       16
#define F_CREATOR_APP       28
#define F_CURRENT_SIZE      48
#define F_DISK_TYPE         60
#define F_CHECKSUM          64
#define F_UNIQUE_ID         68
#define FOOTER_LEN          512

/* Dynamic disk header fields */
#define D_COOKIE            0
#define D_TABLE_OFFSET      16
#define D_VERSION           24
#define D_MAX_ENTRIES       28
#define D_BLOCK_SIZE        32
#define D_CHECKSUM          36
#define D_PARENT_ID         40
#define D_PARENT_NAME       64
#define D_PARENT_NAME_LEN   512
#define D_LOCATORS          576
#define LOCATOR_LEN         24
#define N_LOCATORS          8
#define DYN_HEADER_LEN      1024

#define TYPE_FIXED          2
#define TYPE_DYNAMIC        3
#define TYPE_DIFFERENCING   4

#define VHD_VERSION         0x00010000u
#define BAT_UNUSED          0xffffffffu
#define SECTOR              512u
#define MIN_BLOCK           SECTOR
#define MAX_BLOCK           (256u << 20)
#define MAX_LOCATOR_BYTES   4096

struct vhd {
    int fd;
    uint64_t file_size;
    uint32_t type;
    uint8_t unique_id[16];
    uint32_t block;                 /* bytes */
    uint32_t bitmap_len;            /* bytes before a block's data */
    uint32_t nentries;
    uint32_t *bat;                  /* host order */
    char parent_name[1024];         /* as found through the locators */
    uint8_t parent_id[16];
    uint8_t *bitmap;                /* the bitmap of block bitmap_block */
    uint64_t bitmap_block;          /* UINT64_MAX: none cached */
};

static uint32_t be32(const void *p) { return __builtin_bswap32(ld32(p)); }
static uint64_t be64(const void *p) { return __builtin_bswap64(ld64(p)); }

/* One's complement of the byte sum, the checksum field left out. */
static uint32_t checksum(const uint8_t *p, size_t len, size_t field)
{
    uint32_t sum = 0;
    for (size_t i = 0; i < len; i++)
        if (i < field || i >= field + 4)
            sum += p[i];
    return ~sum;
}

static bool footer_ok(const uint8_t *f, size_t len)
{
    return !memcmp(f + F_COOKIE, "conectix", 8) && be32(f + F_CHECKSUM) == checksum(f, len, F_CHECKSUM);
}

static int bad(char *err, size_t errlen, const char *path, const char *what)
{
    set_err(err, errlen, "%s: not a VHD image Burrow can read: %s", path, what);
    return -EINVAL;
}

/* The footer: at the end of the file, else (dynamic images) the copy at
 * the start.  *footer_at gets where the data may end. */
static int read_footer(struct vhd *s, const char *path, uint8_t *f, uint64_t *footer_at,
                       char *err, size_t errlen)
{
    uint8_t tail[FOOTER_LEN];
    if (s->file_size < FOOTER_LEN || ro_pread(s->fd, tail, sizeof(tail), s->file_size - FOOTER_LEN) < 0)
        return bad(err, errlen, path, "the file is shorter than a VHD footer");
    if (footer_ok(tail, FOOTER_LEN)) {
        memcpy(f, tail, FOOTER_LEN);
        *footer_at = s->file_size - FOOTER_LEN;
        return 0;
    }
    if (footer_ok(tail + 1, FOOTER_LEN - 1)) {
        memset(f, 0, FOOTER_LEN);
        memcpy(f, tail + 1, FOOTER_LEN - 1);
        *footer_at = s->file_size - (FOOTER_LEN - 1);
        return 0;
    }
    if (ro_pread(s->fd, f, FOOTER_LEN, 0) == 0 && footer_ok(f, FOOTER_LEN) &&
        be32(f + F_DISK_TYPE) != TYPE_FIXED) {
        *footer_at = s->file_size;
        return 0;
    }
    return bad(err, errlen, path, !memcmp(tail, "conectix", 8) || !memcmp(tail + 1, "conectix", 8)
                                  ? "the footer's checksum is wrong" : "no footer at the end of the file");
}

/* A parent locator's path, as a path of this system, into out ("" when
 * the locator gives none we can use). */
static void locator_path(struct vhd *s, const uint8_t *loc, char *out, size_t len)
{
    out[0] = '\0';
    uint32_t code = be32(loc);
    uint32_t n = be32(loc + 8);
    uint64_t at = be64(loc + 16);
    bool win_rel = code == 0x57327275, win_abs = code == 0x57326b75;   /* "W2ru", "W2ku" */
    bool mac_url = code == 0x4d616358;                                 /* "MacX" */
    if ((!win_rel && !win_abs && !mac_url) || n == 0 || n > MAX_LOCATOR_BYTES ||
        at > s->file_size || n > s->file_size - at)
        return;
    uint8_t raw[MAX_LOCATOR_BYTES];
    char text[1024];            /* a parent name longer than that is not used */
    if (ro_pread(s->fd, raw, n, at) < 0)
        return;
    if (mac_url) {
        /* A file URL in UTF-8: file://localhost/path or file:///path */
        if (n >= sizeof(text))
            return;
        memcpy(text, raw, n);
        text[n] = '\0';
        const char *p = text;
        if (!strncmp(p, "file://", 7))
            p += 7;
        if (!strncmp(p, "localhost/", 10))
            p += 9;
        snprintf(out, len, "%s", p);
        return;
    }
    if (ro_utf16_to_utf8(raw, n, false, text, sizeof(text)) < 0)
        return;
    for (char *c = text; *c; c++)
        if (*c == '\\')
            *c = '/';
    if (win_abs) {
        /* C:/dir/parent.vhd means nothing here: look beside the child. */
        const char *base = strrchr(text, '/');
        snprintf(out, len, "%s", base ? base + 1 : text);
    } else {
        snprintf(out, len, "%s", !strncmp(text, "./", 2) ? text + 2 : text);
    }
}

/* Finds the parent: the relative locator, the Mac URL, the absolute one's
 * name, the parent's name, in that order, whichever names a file. */
static int find_parent(struct vhd *s, const char *path, const uint8_t *dh, char *err, size_t errlen)
{
    char cand[N_LOCATORS + 1][sizeof(s->parent_name)];
    size_t nc = 0;
    static const uint32_t order[] = { 0x57327275, 0x4d616358, 0x57326b75 };
    for (size_t o = 0; o < ARRAY_SIZE(order); o++)
        for (int i = 0; i < N_LOCATORS; i++) {
            const uint8_t *loc = dh + D_LOCATORS + i * LOCATOR_LEN;
            if (be32(loc) != order[o])
                continue;
            locator_path(s, loc, cand[nc], sizeof(cand[nc]));
            if (cand[nc][0])
                nc++;
        }
    if (ro_utf16_to_utf8(dh + D_PARENT_NAME, D_PARENT_NAME_LEN, true, cand[nc], sizeof(cand[nc])) == 0 &&
        cand[nc][0] && !strchr(cand[nc], '/'))
        nc++;
    if (nc == 0)
        return bad(err, errlen, path, "a differencing image that names no parent");
    for (size_t i = 0; i < nc; i++) {
        char full[PATH_MAX];
        if (ro_parent_path(path, cand[i], full, sizeof(full)) == 0 && access(full, F_OK) == 0) {
            snprintf(s->parent_name, sizeof(s->parent_name), "%s", cand[i]);
            return 0;
        }
    }
    snprintf(s->parent_name, sizeof(s->parent_name), "%s", cand[0]);
    return 1;
}

static int open_dynamic(struct ro_image *img, struct vhd *s, const char *path, const uint8_t *f,
                        bool open_parent, char *err, size_t errlen)
{
    uint64_t dh_at = be64(f + F_DATA_OFFSET);
    uint8_t dh[DYN_HEADER_LEN];
    if (dh_at > s->file_size || s->file_size - dh_at < DYN_HEADER_LEN ||
        ro_pread(s->fd, dh, sizeof(dh), dh_at) < 0)
        return bad(err, errlen, path, "dynamic disk header outside the file");
    if (memcmp(dh + D_COOKIE, "cxsparse", 8))
        return bad(err, errlen, path, "no dynamic disk header where the footer points");
    if (be32(dh + D_CHECKSUM) != checksum(dh, DYN_HEADER_LEN, D_CHECKSUM))
        return bad(err, errlen, path, "the dynamic disk header's checksum is wrong");
    if (be32(dh + D_VERSION) != VHD_VERSION)
        return bad(err, errlen, path, "unknown dynamic disk header version");
    s->block = be32(dh + D_BLOCK_SIZE);
    if (s->block < MIN_BLOCK || s->block > MAX_BLOCK || (s->block & (s->block - 1)))
        return bad(err, errlen, path, "block size is not a power of two from 512 bytes to 256 MiB");
    s->bitmap_len = (uint32_t)ALIGN_UP((uint64_t)s->block / SECTOR / 8, (uint64_t)SECTOR);
    s->nentries = be32(dh + D_MAX_ENTRIES);
    uint64_t bat_at = be64(dh + D_TABLE_OFFSET);
    uint64_t bat_len = (uint64_t)s->nentries * 4;
    if ((uint64_t)s->nentries * s->block < img->size)
        return bad(err, errlen, path, "the block table is too small for the disk size");
    if (bat_at > s->file_size || bat_len > s->file_size - bat_at)
        return bad(err, errlen, path, "block table outside the file");
    /* Entries past the disk's size are never used: read those needed. */
    uint64_t needed = (img->size + s->block - 1) / s->block;
    s->nentries = (uint32_t)needed;
    s->bat = malloc(needed ? needed * 4 : 1);
    if (!s->bat) {
        set_err(err, errlen, "%s: out of memory for a block table of %" PRIu64 " bytes", path, needed * 4);
        return -ENOMEM;
    }
    int ret = ro_pread(s->fd, s->bat, needed * 4, bat_at);
    if (ret < 0) {
        set_err(err, errlen, "cannot read %s: %s", path, strerror(-ret));
        return ret;
    }
    uint64_t *at = malloc(needed * sizeof(*at) + 1);
    if (!at) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    size_t n = 0;
    for (uint32_t i = 0; i < s->nentries; i++) {
        s->bat[i] = be32(&s->bat[i]);
        if (s->bat[i] != BAT_UNUSED)
            at[n++] = (uint64_t)s->bat[i] * SECTOR;
    }
    bool shared = ro_overlap(at, n, (uint64_t)s->bitmap_len + s->block);
    free(at);
    if (shared)
        return bad(err, errlen, path, "two blocks of the disk share bytes of the file");
    if (s->type != TYPE_DIFFERENCING)
        return 0;
    s->bitmap = malloc(s->bitmap_len);
    if (!s->bitmap) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->bitmap_block = UINT64_MAX;
    memcpy(s->parent_id, dh + D_PARENT_ID, sizeof(s->parent_id));
    ret = find_parent(s, path, dh, err, errlen);
    if (ret < 0 || !open_parent)
        return ret < 0 ? ret : 0;
    if (ret > 0) {
        set_err(err, errlen, "%s: its parent image %s is not there", path, s->parent_name);
        return -ENOENT;
    }
    if ((ret = ro_open_parent(img, &ro_format_vhd, path, s->parent_name, err, errlen)) < 0)
        return ret;
    const struct vhd *p = img->parent->state;
    if (memcmp(p->unique_id, s->parent_id, sizeof(s->parent_id))) {
        set_err(err, errlen, "%s: %s is not its parent (the unique ids differ)", path, s->parent_name);
        return -EINVAL;
    }
    return 0;
}

static int vhd_open(struct ro_image *img, const char *path, bool open_parent, char *err, size_t errlen)
{
    struct vhd *s = calloc(1, sizeof(*s));
    if (!s) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->fd = -1;
    img->state = s;
    int ret = ro_open_file(path, &s->fd, &s->file_size, err, errlen);
    if (ret < 0)
        return ret;
    uint8_t f[FOOTER_LEN];
    uint64_t footer_at;
    if ((ret = read_footer(s, path, f, &footer_at, err, errlen)) < 0)
        return ret;
    if (be32(f + F_VERSION) != VHD_VERSION)
        return bad(err, errlen, path, "unknown file format version");
    s->type = be32(f + F_DISK_TYPE);
    memcpy(s->unique_id, f + F_UNIQUE_ID, sizeof(s->unique_id));
    img->size = be64(f + F_CURRENT_SIZE);
    if (img->size == 0 || img->size > (uint64_t)INT64_MAX)
        return bad(err, errlen, path, "bad disk size");
    if (s->type == TYPE_FIXED) {
        if (img->size > footer_at)
            return bad(err, errlen, path, "the disk size is more than the file holds");
        return 0;
    }
    if (s->type != TYPE_DYNAMIC && s->type != TYPE_DIFFERENCING)
        return bad(err, errlen, path, "unknown disk type");
    return open_dynamic(img, s, path, f, open_parent, err, errlen);
}

static void vhd_close(struct ro_image *img)
{
    struct vhd *s = img->state;
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    free(s->bat);
    free(s->bitmap);
    free(s);
}

static bool bit(const uint8_t *bm, uint64_t i)
{
    return bm[i / 8] >> (7 - i % 8) & 1;
}

static int vhd_map(struct ro_image *img, uint64_t off, uint64_t len, struct ro_map *m)
{
    struct vhd *s = img->state;
    m->fd = s->fd;
    if (s->type == TYPE_FIXED) {
        m->kind = RO_DATA;
        m->host = off;
        m->len = len;
        return 0;
    }
    uint64_t k = off / s->block, in = off % s->block;
    uint32_t e = s->bat[k];
    m->len = MIN(len, s->block - in);
    if (e == BAT_UNUSED) {
        m->kind = RO_PARENT;
        while (m->len < len && ++k < s->nentries && s->bat[k] == BAT_UNUSED)
            m->len += MIN(len - m->len, (uint64_t)s->block);
        return 0;
    }
    uint64_t start = (uint64_t)e * SECTOR;
    if (start > s->file_size || s->file_size - start < s->bitmap_len)
        return ro_corrupt(img, "block beyond the end of the file", e);
    m->kind = RO_DATA;
    m->host = start + s->bitmap_len + in;
    if (s->type == TYPE_DIFFERENCING) {
        /* Sectors whose bit agrees with the first one's go together. */
        if (s->bitmap_block != k) {
            s->bitmap_block = UINT64_MAX;
            int ret = ro_pread(s->fd, s->bitmap, s->bitmap_len, start);
            if (ret < 0)
                return ret == -EIO ? ro_corrupt(img, "block bitmap beyond the end of the file", e) : ret;
            s->bitmap_block = k;
        }
        uint64_t sec = in / SECTOR, nsec = s->block / SECTOR;
        bool here = bit(s->bitmap, sec);
        uint64_t end = sec + 1;
        while (end < nsec && (end - sec) * SECTOR - in % SECTOR < m->len && bit(s->bitmap, end) == here)
            end++;
        m->len = MIN(m->len, (end - sec) * SECTOR - in % SECTOR);
        if (!here)
            m->kind = RO_PARENT;
    }
    if (m->kind == RO_DATA && (m->host > s->file_size || m->len > s->file_size - m->host))
        return ro_corrupt(img, "block beyond the end of the file", e);
    return 0;
}

static void vhd_describe(struct ro_image *img, struct ro_info *info)
{
    struct vhd *s = img->state;
    snprintf(info->subformat, sizeof(info->subformat), "%s",
             s->type == TYPE_FIXED ? "fixed" : s->type == TYPE_DYNAMIC ? "dynamic" : "differencing");
    info->block_size = s->type == TYPE_FIXED ? 0 : s->block;
    snprintf(info->parent, sizeof(info->parent), "%s", s->parent_name);
    ro_count_file(info, s->fd);
}

const struct ro_format ro_format_vhd = {
    .name = "vhd",
    .open = vhd_open,
    .close = vhd_close,
    .map = vhd_map,
    .describe = vhd_describe,
};
