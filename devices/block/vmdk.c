/* VMDK images (VMware), read-only, after VMware's "Virtual Disk Format
 * 5.0" technical note.
 *
 * A disk is a text descriptor and the extents it lists, in order: FLAT
 * (and VMFS) extents are plain bytes of a file from a sector offset, ZERO
 * extents read as zeroes, SPARSE extents are hosted sparse extent files.
 * The descriptor is a file of its own (monolithicFlat, twoGbMaxExtentSparse,
 * twoGbMaxExtentFlat, vmfs) or sits inside a single sparse extent
 * (monolithicSparse, streamOptimized), which is then the whole disk.
 *
 * A sparse extent starts with a 512-byte header (little-endian), then a
 * grain directory (GD) of 32-bit sector numbers of grain tables (GT), each
 * of numGTEsPerGT 32-bit sector numbers of grains: 0 for a grain never
 * written (the parent's, or zeroes), 1 for a zeroed grain where the header
 * allows it.  In a compressed extent (streamOptimized) a grain's sector
 * holds a marker {lba, size} and size bytes of zlib data; its GD may be
 * at the end of the file (gdOffset all ones), found through the footer, a
 * copy of the header 1024 bytes before the end.
 *
 * A child disk names its parent (parentFileNameHint) and the parent's
 * content id (parentCID): a parent whose CID differs was changed since,
 * and is refused.  Extents must lie in the descriptor's folder (or below
 * it): a descriptor naming /etc/shadow as a flat extent would otherwise
 * show that file to the guest. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zlib.h>

#include "devices/block/roimage.h"
#include "devices/util.h"

/* SparseExtentHeader (little-endian, packed) */
#define SPARSE_MAGIC        0x564d444bu     /* "KDMV" */
#define S_MAGIC             0
#define S_VERSION           4
#define S_FLAGS             8
#define S_CAPACITY          12
#define S_GRAIN_SIZE        20
#define S_DESC_OFFSET       28
#define S_DESC_SIZE         36
#define S_NUM_GTES          44
#define S_GD_OFFSET         56
#define S_OVERHEAD          64
#define S_NL_CHARS          73              /* '\n', ' ', '\r', '\n' */
#define S_COMPRESS_ALGO     77
#define HEADER_LEN          512

#define FLAG_NL_TEST        (1u << 0)
#define FLAG_ZERO_GRAIN     (1u << 2)
#define FLAG_COMPRESSED     (1u << 16)
#define FLAG_MARKERS        (1u << 17)
#define COMPRESS_DEFLATE    1
#define GD_AT_END           UINT64_MAX
#define GTE_ZERO            1
#define MARKER_HEAD         12              /* lba (8), size (4) */

#define SECTOR              512u
#define MAX_GRAIN_SECTORS   (1u << 16)      /* 32 MiB */
#define MAX_GTES            8192
#define MAX_CAPACITY        (1ull << 37)    /* sectors: 64 TiB */
#define MAX_DESCRIPTOR      (1u << 20)
#define MAX_EXTENTS         1024
#define GT_CACHE            8
#define NO_CID              0xffffffffu

enum ext_type { EXT_FLAT, EXT_ZERO, EXT_SPARSE };

struct gt_slot {
    uint32_t gd_index;              /* UINT32_MAX: unused */
    uint32_t *gt;                   /* host order */
    uint64_t used;
};

struct extent {
    enum ext_type type;
    uint64_t start, len;            /* bytes of the disk */
    int fd;
    uint64_t file_size;
    uint64_t flat_off;              /* FLAT: where the extent starts in the file */
    /* SPARSE */
    uint32_t flags;
    uint64_t grain;                 /* bytes */
    uint32_t ngtes;
    uint64_t ngd;
    uint32_t *gd;                   /* host order */
    struct gt_slot gts[GT_CACHE];
};

struct vmdk {
    struct extent *ext;
    unsigned next;
    char create_type[32];
    uint32_t cid, parent_cid;
    char parent_hint[1024];
    bool compressed;                /* some extent is */
    uint64_t max_grain;             /* bytes, of compressed extents */
    z_stream z;
    bool z_ready;
    uint8_t *cbuf, *gbuf;           /* compressed bytes; one inflated grain */
    struct extent *gbuf_ext;        /* what gbuf holds */
    uint64_t gbuf_grain;
    uint64_t tick;
};

static int bad(char *err, size_t errlen, const char *path, const char *what)
{
    set_err(err, errlen, "%s: not a VMDK image Burrow can read: %s", path, what);
    return -EINVAL;
}

/* --- the descriptor ----------------------------------------------------- */

struct desc_extent {
    enum ext_type type;
    uint64_t sectors;
    char file[1024];
    uint64_t offset;                /* sectors, FLAT */
};

struct desc {
    char create_type[32];
    uint32_t cid, parent_cid;
    char parent_hint[1024];
    struct desc_extent *ext;
    unsigned next;
};

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

/* A value without its quotes. */
static char *unquote(char *v)
{
    size_t n = strlen(v);
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        v[n - 1] = '\0';
        return v + 1;
    }
    return v;
}

static bool parse_u64(const char **p, uint64_t *v)
{
    const char *s = *p;
    if (*s < '0' || *s > '9')
        return false;
    uint64_t x = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (x > (UINT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (uint64_t)(*s - '0');
    }
    *v = x;
    *p = s;
    return true;
}

/* ACCESS SECTORS TYPE ["FILE" [OFFSET]] */
static int parse_extent(struct desc *d, char *line, const char *path, char *err, size_t errlen)
{
    const char *p = line;
    size_t al = strcspn(p, " \t");
    if (!strncmp(p, "NOACCESS", al) && al == 8)
        return bad(err, errlen, path, "an extent with no access");
    p += al;
    while (*p == ' ' || *p == '\t')
        p++;
    struct desc_extent x = { 0 };
    if (!parse_u64(&p, &x.sectors) || x.sectors == 0 || x.sectors > MAX_CAPACITY)
        return bad(err, errlen, path, "an extent line without a size");
    while (*p == ' ' || *p == '\t')
        p++;
    size_t tl = strcspn(p, " \t");
    char type[16];
    snprintf(type, sizeof(type), "%.*s", (int)MIN(tl, sizeof(type) - 1), p);
    p += tl;
    if (!strcmp(type, "FLAT") || !strcmp(type, "VMFS"))
        x.type = EXT_FLAT;
    else if (!strcmp(type, "SPARSE"))
        x.type = EXT_SPARSE;
    else if (!strcmp(type, "ZERO"))
        x.type = EXT_ZERO;
    else {
        set_err(err, errlen, "%s: extents of type %s are not supported (FLAT, VMFS, SPARSE and ZERO are)",
                path, type);
        return -ENOTSUP;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (x.type != EXT_ZERO) {
        const char *q = *p == '"' ? strchr(p + 1, '"') : NULL;
        if (!q || q == p + 1 || (size_t)(q - p - 1) >= sizeof(x.file))
            return bad(err, errlen, path, "an extent line without a file name");
        memcpy(x.file, p + 1, (size_t)(q - p - 1));
        p = q + 1;
        while (*p == ' ' || *p == '\t')
            p++;
        if (x.type == EXT_FLAT && *p && !parse_u64(&p, &x.offset))
            return bad(err, errlen, path, "an extent line with a bad offset");
    }
    if (d->next == MAX_EXTENTS)
        return bad(err, errlen, path, "more than 1024 extents");
    struct desc_extent *n = realloc(d->ext, (d->next + 1) * sizeof(*n));
    if (!n) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    d->ext = n;
    d->ext[d->next++] = x;
    return 0;
}

static bool parse_cid(const char *v, uint32_t *out)
{
    char *end;
    unsigned long x = strtoul(v, &end, 16);
    if (!*v || *end || x > UINT32_MAX)
        return false;
    *out = (uint32_t)x;
    return true;
}

/* Parses descriptor text (NUL-terminated, modified in place). */
static int parse_descriptor(struct desc *d, char *text, const char *path, char *err, size_t errlen)
{
    d->cid = d->parent_cid = NO_CID;
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *l = trim(line);
        if (!*l || *l == '#')
            continue;
        size_t wl = strcspn(l, " \t");
        if (l[wl] && ((wl == 2 && !strncmp(l, "RW", 2)) || (wl == 6 && !strncmp(l, "RDONLY", 6)) ||
                      (wl == 8 && !strncmp(l, "NOACCESS", 8)))) {
            int ret = parse_extent(d, l, path, err, errlen);
            if (ret < 0)
                return ret;
            continue;
        }
        char *eq = strchr(l, '=');
        if (!eq)
            continue;                   /* not for us */
        *eq = '\0';
        char *key = trim(l), *val = unquote(trim(eq + 1));
        if (!strcmp(key, "CID") && !parse_cid(val, &d->cid))
            return bad(err, errlen, path, "a bad CID");
        if (!strcmp(key, "parentCID") && !parse_cid(val, &d->parent_cid))
            return bad(err, errlen, path, "a bad parentCID");
        if (!strcmp(key, "createType"))
            snprintf(d->create_type, sizeof(d->create_type), "%s", val);
        if (!strcmp(key, "parentFileNameHint")) {
            if (strlen(val) >= sizeof(d->parent_hint))
                return bad(err, errlen, path, "a parent name too long");
            memcpy(d->parent_hint, val, strlen(val) + 1);
        }
    }
    return 0;
}

/* --- sparse extents ----------------------------------------------------- */

/* Reads and checks a sparse extent's header (and the footer it may point
 * to); fills in x's sparse fields; *desc_at and *desc_len get the embedded
 * descriptor's place in bytes (0 when none). */
static int open_sparse(struct vmdk *s, struct extent *x, const char *file, uint64_t *desc_at,
                       uint64_t *desc_len, uint64_t *capacity, char *err, size_t errlen)
{
    uint8_t h[HEADER_LEN];
    if (x->file_size < HEADER_LEN || ro_pread(x->fd, h, sizeof(h), 0) < 0 || ld32(h + S_MAGIC) != SPARSE_MAGIC)
        return bad(err, errlen, file, "a sparse extent without its header");
    uint32_t version = ld32(h + S_VERSION);
    if (version < 1 || version > 3) {
        set_err(err, errlen, "%s: sparse extent version %u is not supported (1 to 3 are)", file, version);
        return -ENOTSUP;
    }
    x->flags = ld32(h + S_FLAGS);
    if ((x->flags & FLAG_NL_TEST) && memcmp(h + S_NL_CHARS, "\n \r\n", 4)) {
        set_err(err, errlen, "%s was damaged by a text-mode transfer (its line-end test bytes "
                "changed): copy it again in binary mode", file);
        return -EINVAL;
    }
    if (x->flags & FLAG_COMPRESSED) {
        if (ld16(h + S_COMPRESS_ALGO) != COMPRESS_DEFLATE)
            return bad(err, errlen, file, "an unknown compression algorithm");
    }
    /* The GD at the end: the footer, 1024 bytes before the end, has it. */
    if (ld64(h + S_GD_OFFSET) == GD_AT_END) {
        uint8_t f[HEADER_LEN];
        if (!(x->flags & FLAG_COMPRESSED) || x->file_size < 3 * HEADER_LEN ||
            ro_pread(x->fd, f, sizeof(f), x->file_size - 2 * HEADER_LEN) < 0 ||
            ld32(f + S_MAGIC) != SPARSE_MAGIC || ld64(f + S_GD_OFFSET) == GD_AT_END)
            return bad(err, errlen, file, "its grain directory is at the end, but there is no footer");
        memcpy(h + S_GD_OFFSET, f + S_GD_OFFSET, 8);
    }
    *capacity = ld64(h + S_CAPACITY);
    uint64_t grain = ld64(h + S_GRAIN_SIZE);
    x->ngtes = ld32(h + S_NUM_GTES);
    uint64_t gd_at = ld64(h + S_GD_OFFSET);
    if (*capacity == 0 || *capacity > MAX_CAPACITY)
        return bad(err, errlen, file, "bad capacity");
    if (grain == 0 || grain > MAX_GRAIN_SECTORS || (grain & (grain - 1)))
        return bad(err, errlen, file, "grain size is not a power of two up to 32 MiB");
    if (x->ngtes == 0 || x->ngtes > MAX_GTES)
        return bad(err, errlen, file, "bad number of grain table entries");
    x->grain = grain * SECTOR;
    uint64_t per_gt = grain * x->ngtes;                 /* sectors a GT covers */
    x->ngd = (*capacity + per_gt - 1) / per_gt;
    uint64_t gd_len = x->ngd * 4;
    if (gd_at == 0 || gd_at > x->file_size / SECTOR || gd_len > x->file_size - gd_at * SECTOR)
        return bad(err, errlen, file, "grain directory outside the file");
    x->gd = malloc(gd_len);
    if (!x->gd) {
        set_err(err, errlen, "%s: out of memory for a grain directory of %" PRIu64 " bytes", file, gd_len);
        return -ENOMEM;
    }
    int ret = ro_pread(x->fd, x->gd, gd_len, gd_at * SECTOR);
    if (ret < 0) {
        set_err(err, errlen, "cannot read %s: %s", file, strerror(-ret));
        return ret;
    }
    uint64_t *at = malloc(x->ngd * sizeof(*at) + 1);
    if (!at) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    size_t n = 0;
    for (uint64_t i = 0; i < x->ngd; i++) {
        x->gd[i] = ld32(&x->gd[i]);
        if (x->gd[i])
            at[n++] = (uint64_t)x->gd[i] * SECTOR;
    }
    /* Grain tables of their own: what the tables name stays bounded by
     * what the file holds. */
    bool shared = ro_overlap(at, n, (uint64_t)x->ngtes * 4);
    free(at);
    if (shared)
        return bad(err, errlen, file, "two grain tables share bytes of the file");
    for (int i = 0; i < GT_CACHE; i++)
        x->gts[i].gd_index = UINT32_MAX;
    if (x->flags & FLAG_COMPRESSED) {
        s->compressed = true;
        s->max_grain = MAX(s->max_grain, x->grain);
    }
    *desc_at = ld64(h + S_DESC_OFFSET) * SECTOR;
    *desc_len = ld64(h + S_DESC_SIZE) * SECTOR;
    if (ld64(h + S_DESC_OFFSET) > x->file_size / SECTOR || ld64(h + S_DESC_SIZE) > MAX_DESCRIPTOR / SECTOR)
        *desc_at = *desc_len = 0;
    return 0;
}

/* The grain table of GD entry gi (cached), or NULL with *ret for none
 * (0: not allocated) or an error. */
static const uint32_t *load_gt(struct ro_image *img, struct extent *x, uint64_t gi, int *ret)
{
    struct vmdk *s = img->state;
    *ret = 0;
    uint32_t gt_sector = x->gd[gi];
    if (gt_sector == 0)
        return NULL;
    struct gt_slot *victim = &x->gts[0];
    for (int i = 0; i < GT_CACHE; i++) {
        if (x->gts[i].gd_index == gi) {
            x->gts[i].used = ++s->tick;
            return x->gts[i].gt;
        }
        if (x->gts[i].used < victim->used)
            victim = &x->gts[i];
    }
    uint64_t len = (uint64_t)x->ngtes * 4, at = (uint64_t)gt_sector * SECTOR;
    if (at > x->file_size || len > x->file_size - at) {
        *ret = ro_corrupt(img, "grain table beyond the end of the file", gt_sector);
        return NULL;
    }
    if (!victim->gt && !(victim->gt = malloc(len))) {
        *ret = -ENOMEM;
        return NULL;
    }
    victim->gd_index = UINT32_MAX;
    if ((*ret = ro_pread(x->fd, victim->gt, len, at)) < 0)
        return NULL;
    for (uint32_t i = 0; i < x->ngtes; i++)
        victim->gt[i] = ld32(&victim->gt[i]);
    victim->gd_index = (uint32_t)gi;
    victim->used = ++s->tick;
    return victim->gt;
}

/* Grain g's GT entry (0 when its GT is not allocated). */
static int grain_entry(struct ro_image *img, struct extent *x, uint64_t g, uint32_t *e)
{
    int ret;
    const uint32_t *gt = load_gt(img, x, g / x->ngtes, &ret);
    *e = gt ? gt[g % x->ngtes] : 0;
    return ret;
}

/* Inflates compressed grain g (entry e) of x into s->gbuf. */
static int inflate_grain(struct ro_image *img, struct extent *x, uint64_t g, uint32_t e)
{
    struct vmdk *s = img->state;
    if (s->gbuf_ext == x && s->gbuf_grain == g)
        return 0;
    s->gbuf_ext = NULL;
    uint64_t at = (uint64_t)e * SECTOR;
    uint8_t head[MARKER_HEAD];
    if (at > x->file_size || x->file_size - at < MARKER_HEAD || ro_pread(x->fd, head, sizeof(head), at) < 0)
        return ro_corrupt(img, "compressed grain beyond the end of the file", e);
    uint64_t lba = ld64(head);
    uint32_t size = ld32(head + 8);
    /* deflate never grows data by more than a little; more is nonsense */
    if (lba != g * (x->grain / SECTOR) || size == 0 || size > x->grain + x->grain / 8 + 1024 ||
        size > x->file_size - at - MARKER_HEAD)
        return ro_corrupt(img, "bad compressed grain marker", e);
    int ret = ro_pread(x->fd, s->cbuf, size, at + MARKER_HEAD);
    if (ret < 0)
        return ret;
    inflateReset(&s->z);
    s->z.next_in = s->cbuf;
    s->z.avail_in = size;
    s->z.next_out = s->gbuf;
    s->z.avail_out = (uInt)x->grain;
    int zr = inflate(&s->z, Z_FINISH);
    uint64_t got = x->grain - s->z.avail_out;
    /* The last grain of the disk may be cut short at its end. */
    uint64_t need = MIN(x->grain, x->len - MIN(x->len, g * x->grain));
    if ((zr != Z_STREAM_END && zr != Z_BUF_ERROR && zr != Z_OK) || got < need)
        return ro_corrupt(img, "compressed grain does not inflate", e);
    memset(s->gbuf + got, 0, x->grain - got);
    s->gbuf_ext = x;
    s->gbuf_grain = g;
    return 0;
}

static int map_sparse(struct ro_image *img, struct extent *x, uint64_t off, uint64_t len, struct ro_map *m)
{
    struct vmdk *s = img->state;
    uint64_t g = off / x->grain, in = off % x->grain;
    uint32_t e;
    int ret = grain_entry(img, x, g, &e);
    if (ret < 0)
        return ret;
    m->len = MIN(len, x->grain - in);
    m->fd = x->fd;
    if (e == 0 || (e == GTE_ZERO && (x->flags & FLAG_ZERO_GRAIN))) {
        m->kind = e ? RO_ZERO : RO_PARENT;
        /* Grains alike extend the run; a grain table never allocated
         * extends it by all it covers. */
        uint64_t end = off + m->len;
        while (end < off + len) {
            uint64_t ng = end / x->grain, step = x->grain;
            uint32_t n = 0;
            if (e == 0 && x->gd[ng / x->ngtes] == 0)
                step = (x->ngtes - ng % x->ngtes) * x->grain;
            else if ((ret = grain_entry(img, x, ng, &n)) < 0)
                return ret;
            if (n != e)
                break;
            end = MIN(off + len, end + step);
        }
        m->len = end - off;
        return 0;
    }
    if (x->flags & FLAG_COMPRESSED) {
        if ((ret = inflate_grain(img, x, g, e)) < 0)
            return ret;
        m->kind = RO_BUF;
        m->buf = s->gbuf + in;
        return 0;
    }
    m->kind = RO_DATA;
    m->host = (uint64_t)e * SECTOR + in;
    /* Grains that follow each other in the file extend the run. */
    for (uint32_t n; m->len < len; m->len += MIN(len - m->len, x->grain)) {
        if ((ret = grain_entry(img, x, g + 1, &n)) < 0)
            return ret;
        if ((uint64_t)n * SECTOR != (uint64_t)e * SECTOR + x->grain * (g + 1 - off / x->grain))
            break;
        g++;
    }
    if (m->host > x->file_size || m->len > x->file_size - m->host)
        return ro_corrupt(img, "grain beyond the end of the file", e);
    return 0;
}

/* --- open --------------------------------------------------------------- */

static int add_extent(struct vmdk *s, struct extent **out, char *err, size_t errlen)
{
    struct extent *n = realloc(s->ext, (s->next + 1) * sizeof(*n));
    if (!n) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->ext = n;
    *out = &s->ext[s->next++];
    memset(*out, 0, sizeof(**out));
    (*out)->fd = -1;
    return 0;
}

/* Reads the descriptor text at [at, at+len) of fd. */
static int read_text(int fd, uint64_t at, uint64_t len, char **out, const char *path, char *err, size_t errlen)
{
    if (len > MAX_DESCRIPTOR)
        return bad(err, errlen, path, "a descriptor larger than 1 MiB");
    char *t = malloc(len + 1);
    if (!t) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int ret = ro_pread(fd, t, len, at);
    if (ret < 0) {
        free(t);
        return bad(err, errlen, path, "cannot read the descriptor");
    }
    t[len] = '\0';          /* the text ends at its first NUL */
    *out = t;
    return 0;
}

/* A relative name without ".." components. */
static bool extent_name_ok(const char *name)
{
    if (name[0] == '/')
        return false;
    for (const char *p = name; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && !strncmp(p, "..", 2))
            return false;
        p += n + (p[n] == '/');
    }
    return true;
}

static int vmdk_open(struct ro_image *img, const char *path, bool open_parent, char *err, size_t errlen)
{
    struct vmdk *s = calloc(1, sizeof(*s));
    if (!s) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    img->state = s;
    struct desc d = { 0 };
    char *text = NULL;
    int fd;
    uint64_t fsize;
    int ret = ro_open_file(path, &fd, &fsize, err, errlen);
    if (ret < 0)
        return ret;
    uint8_t magic[4] = { 0 };
    if (fsize >= 4 && (ret = ro_pread(fd, magic, 4, 0)) < 0) {
        close(fd);
        return bad(err, errlen, path, "cannot read its start");
    }
    if (!memcmp(magic, "COWD", 4)) {
        close(fd);
        set_err(err, errlen, "%s is an ESX 3 sparse extent (COWD), which Burrow does not read", path);
        return -ENOTSUP;
    }
    if (ld32(magic) == SPARSE_MAGIC) {
        /* A single sparse extent, the whole disk; its embedded descriptor
         * says only who its parent is (its extent list is this file). */
        struct extent *x;
        uint64_t desc_at, desc_len, cap;
        if ((ret = add_extent(s, &x, err, errlen)) < 0) {
            close(fd);
            return ret;
        }
        x->type = EXT_SPARSE;
        x->fd = fd;
        x->file_size = fsize;
        if ((ret = open_sparse(s, x, path, &desc_at, &desc_len, &cap, err, errlen)) < 0)
            return ret;
        x->len = cap * SECTOR;
        img->size = x->len;
        if (desc_len)
            ret = read_text(fd, desc_at, MIN(desc_len, fsize - desc_at), &text, path, err, errlen);
        if (desc_len && ret == 0)
            ret = parse_descriptor(&d, text, path, err, errlen);
        const char *guess = x->flags & FLAG_COMPRESSED ? "streamOptimized" : "monolithicSparse";
        snprintf(s->create_type, sizeof(s->create_type), "%s", d.create_type[0] ? d.create_type : guess);
    } else {
        ret = read_text(fd, 0, fsize, &text, path, err, errlen);
        close(fd);
        if (ret == 0 && strncmp(text, "# Disk DescriptorFile", 21))
            ret = bad(err, errlen, path, "neither a sparse extent nor a descriptor");
        if (ret == 0)
            ret = parse_descriptor(&d, text, path, err, errlen);
        if (ret == 0 && d.next == 0)
            ret = bad(err, errlen, path, "a descriptor without extents");
        snprintf(s->create_type, sizeof(s->create_type), "%s", d.create_type);
        for (unsigned i = 0; i < d.next && ret == 0; i++) {
            const struct desc_extent *de = &d.ext[i];
            struct extent *x;
            if ((ret = add_extent(s, &x, err, errlen)) < 0)
                break;
            x->type = de->type;
            x->start = img->size;
            x->len = de->sectors * SECTOR;
            img->size += x->len;
            if (img->size > MAX_CAPACITY * SECTOR) {
                ret = bad(err, errlen, path, "a disk larger than 64 TiB");
                break;
            }
            if (de->type == EXT_ZERO)
                continue;
            /* An extent is the descriptor's own data: in its folder or
             * below, never a path that could name any file of the host
             * (a flat extent would hand that file's bytes to the guest). */
            if (!extent_name_ok(de->file)) {
                set_err(err, errlen, "%s: extent '%s' is not in the descriptor's folder, which Burrow "
                        "refuses (it could name any file)", path, de->file);
                ret = -EPERM;
                break;
            }
            char full[PATH_MAX];
            if (ro_parent_path(path, de->file, full, sizeof(full)) < 0) {
                ret = bad(err, errlen, path, "an extent path too long");
                break;
            }
            if ((ret = ro_open_file(full, &x->fd, &x->file_size, err, errlen)) < 0)
                break;
            if (de->type == EXT_FLAT) {
                x->flat_off = de->offset * SECTOR;
                if (de->offset > x->file_size / SECTOR || x->len > x->file_size - x->flat_off) {
                    ret = bad(err, errlen, full, "the flat extent is shorter than the descriptor says");
                    break;
                }
                continue;
            }
            uint64_t desc_at, desc_len, cap;
            if ((ret = open_sparse(s, x, full, &desc_at, &desc_len, &cap, err, errlen)) < 0)
                break;
            if (cap * SECTOR < x->len)
                ret = bad(err, errlen, full, "the sparse extent is smaller than the descriptor says");
        }
    }
    free(text);
    free(d.ext);
    if (ret < 0)
        return ret;
    s->cid = d.cid;
    s->parent_cid = d.parent_cid;
    snprintf(s->parent_hint, sizeof(s->parent_hint), "%s", d.parent_hint);
    if (s->compressed) {
        s->cbuf = malloc(s->max_grain + s->max_grain / 8 + 1024);
        s->gbuf = malloc(s->max_grain);
        if (!s->cbuf || !s->gbuf || inflateInit(&s->z) != Z_OK) {
            set_err(err, errlen, "out of memory");
            return -ENOMEM;
        }
        s->z_ready = true;
    }
    if (s->parent_cid == NO_CID || !open_parent)
        return 0;
    if (!s->parent_hint[0])
        return bad(err, errlen, path, "a child disk that does not name its parent (parentFileNameHint)");
    if ((ret = ro_open_parent(img, &ro_format_vmdk, path, s->parent_hint, err, errlen)) < 0)
        return ret;
    const struct vmdk *p = img->parent->state;
    if (p->cid != s->parent_cid) {
        set_err(err, errlen, "%s: its parent %s was changed since it was made (CID %08x, the child "
                "expects %08x)", path, s->parent_hint, p->cid, s->parent_cid);
        return -EINVAL;
    }
    return 0;
}

static void vmdk_close(struct ro_image *img)
{
    struct vmdk *s = img->state;
    if (!s)
        return;
    for (unsigned i = 0; i < s->next; i++) {
        struct extent *x = &s->ext[i];
        if (x->fd >= 0)
            close(x->fd);
        free(x->gd);
        for (int k = 0; k < GT_CACHE; k++)
            free(x->gts[k].gt);
    }
    free(s->ext);
    if (s->z_ready)
        inflateEnd(&s->z);
    free(s->cbuf);
    free(s->gbuf);
    free(s);
}

static int vmdk_map(struct ro_image *img, uint64_t off, uint64_t len, struct ro_map *m)
{
    struct vmdk *s = img->state;
    /* The extent holding off: the last that starts at or before it. */
    unsigned lo = 0, hi = s->next;
    while (hi - lo > 1) {
        unsigned mid = (lo + hi) / 2;
        if (s->ext[mid].start <= off)
            lo = mid;
        else
            hi = mid;
    }
    struct extent *x = &s->ext[lo];
    uint64_t in = off - x->start;
    if (in >= x->len)
        return ro_corrupt(img, "offset outside every extent", off);
    len = MIN(len, x->len - in);
    switch (x->type) {
    case EXT_ZERO:
        m->kind = RO_ZERO;
        m->len = len;
        return 0;
    case EXT_FLAT:
        m->kind = RO_DATA;
        m->fd = x->fd;
        m->host = x->flat_off + in;
        m->len = len;
        return 0;
    case EXT_SPARSE:
        return map_sparse(img, x, in, len, m);
    }
    return -EINVAL;
}

static void vmdk_describe(struct ro_image *img, struct ro_info *info)
{
    struct vmdk *s = img->state;
    snprintf(info->subformat, sizeof(info->subformat), "%s", s->create_type);
    for (unsigned i = 0; i < s->next; i++) {
        if (s->ext[i].type == EXT_SPARSE && !info->block_size)
            info->block_size = (uint32_t)s->ext[i].grain;
        ro_count_file(info, s->ext[i].fd);
    }
    if (s->parent_cid != NO_CID)
        snprintf(info->parent, sizeof(info->parent), "%s", s->parent_hint);
}

const struct ro_format ro_format_vmdk = {
    .name = "vmdk",
    .open = vmdk_open,
    .close = vmdk_close,
    .map = vmdk_map,
    .describe = vmdk_describe,
};
