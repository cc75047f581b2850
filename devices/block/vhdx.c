/* VHDX images (Hyper-V), read-only, after Microsoft's [MS-VHDX] (Virtual
 * Hard Disk v2 File Format).
 *
 * The file starts with the file type identifier, two headers (64 and 128
 * KiB; the valid one with the higher sequence number counts) and two copies
 * of the region table (192 and 256 KiB), each with a CRC-32C.  The region
 * table places the BAT and the metadata region; the metadata gives the
 * block size, the virtual size, the logical sector size and, for a
 * differencing image, the parent locator.  The BAT holds one 64-bit entry
 * per payload block (a state and an offset in MiB), with one sector bitmap
 * entry after every chunk of payload entries.  Fixed, dynamic and
 * differencing images are read.
 *
 * The log: an image whose current header names a log (a non-zero LogGuid)
 * was not closed cleanly and its log must be replayed into the file before
 * its tables can be trusted.  Burrow never writes these images, so it
 * refuses such an image with a message saying how to replay the log,
 * rather than replay it in memory. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "devices/block/roimage.h"
#include "devices/util.h"

#define KB64                (64u * 1024)
#define MB1                 (1u << 20)

/* Header (2.2.2), at 64 KiB and 128 KiB, 4 KiB each */
#define HDR1_AT             (1 * KB64)
#define HDR2_AT             (2 * KB64)
#define HDR_LEN             4096
#define H_SIGNATURE         0           /* "head" */
#define H_CHECKSUM          4
#define H_SEQUENCE          8
#define H_DATA_WRITE_GUID   32
#define H_LOG_GUID          48
#define H_LOG_VERSION       64
#define H_VERSION           66

/* Region table (2.2.3), at 192 KiB and 256 KiB, 64 KiB each */
#define RT1_AT              (3 * KB64)
#define RT2_AT              (4 * KB64)
#define RT_LEN              KB64
#define RT_SIGNATURE        0           /* "regi" */
#define RT_CHECKSUM         4
#define RT_COUNT            8
#define RT_ENTRIES          16
#define RTE_LEN             32
#define RT_MAX_ENTRIES      2047

/* Metadata table (2.6.1), at the start of the metadata region */
#define MT_LEN              KB64
#define MT_COUNT            10
#define MT_ENTRIES          32
#define MTE_LEN             32
#define MT_MAX_ENTRIES      2047
#define MTE_IS_REQUIRED     (1u << 2)

/* BAT entries (2.5.1) */
#define BAT_STATE(e)        ((unsigned)((e) & 7))
#define BAT_OFFSET(e)       ((e) >> 20 << 20)       /* FileOffsetMB, in bytes */
#define PAYLOAD_NOT_PRESENT 0
#define PAYLOAD_UNDEFINED   1
#define PAYLOAD_ZERO        2
#define PAYLOAD_UNMAPPED    3
#define PAYLOAD_FULLY       6
#define PAYLOAD_PARTIALLY   7
#define SB_PRESENT          6

#define FP_LEAVE_ALLOCATED  (1u << 0)
#define FP_HAS_PARENT       (1u << 1)
#define MAX_DISK_SIZE       (64ull << 40)           /* 64 TiB, 2.6.2.2 */
#define SECTORS_PER_CHUNK   (1ull << 23)            /* 2^23 sectors per bitmap block */
#define MAX_LOCATOR_ENTRIES 64
#define MAX_LOCATOR_LEN     KB64

/* GUIDs as stored (the first three fields little-endian) */
static const uint8_t guid_bat[16] = { 0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42,
                                      0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08 };
static const uint8_t guid_metadata[16] = { 0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b,
                                           0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e };
static const uint8_t guid_file_params[16] = { 0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d,
                                              0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b };
static const uint8_t guid_disk_size[16] = { 0x24, 0x42, 0xa5, 0x2f, 0x1b, 0xcd, 0x76, 0x48,
                                            0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8 };
static const uint8_t guid_logical_sector[16] = { 0x1d, 0xbf, 0x41, 0x81, 0x6f, 0xa9, 0x09, 0x47,
                                                 0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f };
static const uint8_t guid_parent_locator[16] = { 0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45,
                                                 0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c };
static const uint8_t guid_vhdx_locator[16] = { 0xb7, 0xef, 0x4a, 0xb0, 0x9e, 0xd1, 0x81, 0x4a,
                                               0xb7, 0x89, 0x25, 0xb8, 0xe9, 0x44, 0x59, 0x13 };
static const uint8_t guid_zero[16];

struct vhdx {
    int fd;
    uint64_t file_size;
    uint8_t data_write_guid[16];
    uint32_t block;                 /* payload block size */
    uint32_t fp_flags;
    uint32_t sector;                /* logical sector size */
    uint64_t chunk_ratio;           /* payload blocks per sector bitmap block */
    uint64_t nblocks;               /* payload blocks */
    uint64_t nentries;
    uint64_t *bat;                  /* host order */
    char parent_name[1024];
    char parent_linkage[2][40];     /* "{GUID}" of the parent's data */
    uint8_t *bitmap;                /* the sector bitmap block of chunk bitmap_chunk */
    uint64_t bitmap_chunk;          /* UINT64_MAX: none cached */
};

/* A loop whose every branch a fuzzer would follow for nothing (a
 * checksum's) is left out of its coverage. */
#if defined(__clang__)
#define NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define NO_COVERAGE
#endif

/* CRC-32C (Castagnoli), as the headers and region tables use: eight
 * bytes a step through eight tables ("slicing by eight"). */
static uint32_t crc_t[8][256];          /* slicing-by-8 tables */

static void crc_tables(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0x82f63b78u ^ (c >> 1) : c >> 1;
        crc_t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int k = 1; k < 8; k++)
            crc_t[k][i] = (crc_t[k - 1][i] >> 8) ^ crc_t[0][crc_t[k - 1][i] & 0xff];
}

NO_COVERAGE
static uint32_t crc32c(const uint8_t *p, size_t len)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;     /* images open on several threads */
    pthread_once(&once, crc_tables);
    uint32_t c = ~0u;
    for (; len >= 8; p += 8, len -= 8) {
        uint32_t lo = c ^ ld32(p), hi = ld32(p + 4);     /* little-endian hosts, as elsewhere */
        c = crc_t[7][lo & 0xff] ^ crc_t[6][lo >> 8 & 0xff] ^ crc_t[5][lo >> 16 & 0xff] ^
            crc_t[4][lo >> 24] ^ crc_t[3][hi & 0xff] ^ crc_t[2][hi >> 8 & 0xff] ^
            crc_t[1][hi >> 16 & 0xff] ^ crc_t[0][hi >> 24];
    }
    for (; len; p++, len--)
        c = crc_t[0][(c ^ *p) & 0xff] ^ (c >> 8);
    return ~c;
}

/* The CRC of a structure whose checksum field (at `field`) counts as 0. */
NO_COVERAGE
static uint32_t crc_without(uint8_t *p, size_t len, size_t field)
{
    uint32_t saved = ld32(p + field);
    st32(p + field, 0);
    uint32_t c = crc32c(p, len);
    st32(p + field, saved);
    return c;
}

static int bad(char *err, size_t errlen, const char *path, const char *what)
{
    set_err(err, errlen, "%s: not a VHDX image Burrow can read: %s", path, what);
    return -EINVAL;
}

static void guid_text(const uint8_t *g, char *out, size_t len)
{
    snprintf(out, len, "{%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X}", ld32(g), ld16(g + 4),
             ld16(g + 6), g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

/* The current header: the valid one with the higher sequence number. */
static int read_header(struct vhdx *s, const char *path, uint8_t *h, char *err, size_t errlen)
{
    uint8_t two[2][HDR_LEN];
    bool ok[2];
    for (int i = 0; i < 2; i++) {
        uint8_t *b = two[i];
        ok[i] = ro_pread(s->fd, b, HDR_LEN, i ? HDR2_AT : HDR1_AT) == 0 &&
                !memcmp(b + H_SIGNATURE, "head", 4) &&
                ld32(b + H_CHECKSUM) == crc_without(b, HDR_LEN, H_CHECKSUM);
    }
    if (!ok[0] && !ok[1])
        return bad(err, errlen, path, "neither header is valid");
    int cur = !ok[0] || (ok[1] && ld64(two[1] + H_SEQUENCE) > ld64(two[0] + H_SEQUENCE));
    memcpy(h, two[cur], HDR_LEN);
    return 0;
}

struct region {
    uint64_t off;
    uint32_t len;
};

/* The BAT and metadata regions from the first valid region table. */
static int read_regions(struct vhdx *s, const char *path, struct region *bat, struct region *meta,
                        char *err, size_t errlen)
{
    uint8_t *rt = malloc(RT_LEN);
    if (!rt) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int ret = -EINVAL;
    bool valid = false;
    for (int i = 0; i < 2 && !valid; i++)
        valid = ro_pread(s->fd, rt, RT_LEN, i ? RT2_AT : RT1_AT) == 0 &&
                !memcmp(rt + RT_SIGNATURE, "regi", 4) &&
                ld32(rt + RT_CHECKSUM) == crc_without(rt, RT_LEN, RT_CHECKSUM);
    uint32_t n = valid ? ld32(rt + RT_COUNT) : 0;
    memset(bat, 0, sizeof(*bat));
    memset(meta, 0, sizeof(*meta));
    if (!valid) {
        ret = bad(err, errlen, path, "neither region table is valid");
    } else if (n > RT_MAX_ENTRIES) {
        ret = bad(err, errlen, path, "too many region table entries");
    } else {
        ret = 0;
        for (uint32_t i = 0; i < n && ret == 0; i++) {
            const uint8_t *e = rt + RT_ENTRIES + i * RTE_LEN;
            struct region r = { .off = ld64(e + 16), .len = ld32(e + 24) };
            struct region *to = !memcmp(e, guid_bat, 16) ? bat : !memcmp(e, guid_metadata, 16) ? meta : NULL;
            if (!to && (ld32(e + 28) & 1)) {
                char g[40];
                guid_text(e, g, sizeof(g));
                set_err(err, errlen, "%s: the image needs a region Burrow does not know (%s)", path, g);
                ret = -ENOTSUP;
            } else if (to && (r.off < MB1 || r.off % MB1 || r.len == 0 || r.len % MB1 ||
                              r.off > s->file_size || r.len > s->file_size - r.off || to->len)) {
                ret = bad(err, errlen, path, "a region outside the file, misaligned, or given twice");
            } else if (to) {
                *to = r;
            }
        }
        if (ret == 0 && (!bat->len || !meta->len))
            ret = bad(err, errlen, path, "no BAT or no metadata region");
    }
    free(rt);
    return ret;
}

/* Item id's bytes within the metadata region m (0 length when absent). */
static int find_item(const uint8_t *m, const uint8_t *id, uint32_t *off, uint32_t *len)
{
    uint16_t n = ld16(m + MT_COUNT);
    *off = *len = 0;
    for (uint16_t i = 0; i < n; i++) {
        const uint8_t *e = m + MT_ENTRIES + i * MTE_LEN;
        if (memcmp(e, id, 16))
            continue;
        *off = ld32(e + 16);
        *len = ld32(e + 20);
        return 0;
    }
    return -ENOENT;
}

/* The parent locator's entries (2.6.2.6): relative_path, then the file
 * name of absolute_win32_path, give the parent's path; parent_linkage
 * (and parent_linkage2) its data's GUID. */
static int parse_locator(struct vhdx *s, const char *path, const uint8_t *p, uint32_t len,
                         char *err, size_t errlen)
{
    if (len < 20 || memcmp(p, guid_vhdx_locator, 16))
        return bad(err, errlen, path, "a parent locator of an unknown type");
    uint16_t n = ld16(p + 18);
    if (n > MAX_LOCATOR_ENTRIES || 20 + (uint32_t)n * 12 > len)
        return bad(err, errlen, path, "a parent locator with bad entries");
    char rel[1024] = "", abs_name[1024] = "";
    for (uint16_t i = 0; i < n; i++) {
        const uint8_t *e = p + 20 + i * 12;
        uint32_t ko = ld32(e), vo = ld32(e + 4);
        uint16_t kl = ld16(e + 8), vl = ld16(e + 10);
        if (ko > len || kl > len - ko || vo > len || vl > len - vo)
            return bad(err, errlen, path, "a parent locator entry outside the locator");
        char key[64], val[1024];
        if (ro_utf16_to_utf8(p + ko, kl, false, key, sizeof(key)) < 0 ||
            ro_utf16_to_utf8(p + vo, vl, false, val, sizeof(val)) < 0)
            continue;
        for (char *c = val; *c; c++)
            if (*c == '\\')
                *c = '/';
        if (!strcmp(key, "relative_path")) {
            snprintf(rel, sizeof(rel), "%s", !strncmp(val, "./", 2) ? val + 2 : val);
        } else if (!strcmp(key, "absolute_win32_path")) {
            const char *base = strrchr(val, '/');
            snprintf(abs_name, sizeof(abs_name), "%s", base ? base + 1 : val);
        } else if (!strcmp(key, "parent_linkage") || !strcmp(key, "parent_linkage2")) {
            if (strlen(val) < sizeof(s->parent_linkage[0]))
                memcpy(s->parent_linkage[key[14] == '2'], val, strlen(val) + 1);
        }
    }
    if (!s->parent_linkage[0][0])
        return bad(err, errlen, path, "a parent locator without parent_linkage");
    const char *cand[2] = { rel, abs_name };
    for (int i = 0; i < 2; i++) {
        char full[4096];
        if (cand[i][0] && ro_parent_path(path, cand[i], full, sizeof(full)) == 0 && access(full, F_OK) == 0) {
            snprintf(s->parent_name, sizeof(s->parent_name), "%s", cand[i]);
            return 0;
        }
    }
    snprintf(s->parent_name, sizeof(s->parent_name), "%s", rel[0] ? rel : abs_name);
    if (!s->parent_name[0])
        return bad(err, errlen, path, "a parent locator that gives no path");
    return 1;
}

/* Reads len bytes of a metadata item at off in region r (checked against
 * the region by the caller) into a new buffer. */
static uint8_t *read_item(struct vhdx *s, struct region r, uint32_t off, uint32_t len)
{
    uint8_t *b = malloc(len ? len : 1);
    if (b && ro_pread(s->fd, b, len, r.off + off) < 0) {
        free(b);
        b = NULL;
    }
    return b;
}

/* The metadata items this reader needs; unknown required items refuse.
 * Only the table and those items are read, not the whole region. */
static int read_metadata(struct ro_image *img, struct vhdx *s, const char *path, struct region r,
                         char *err, size_t errlen)
{
    uint8_t *m = malloc(MT_LEN);
    if (!m) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int ret = ro_pread(s->fd, m, MT_LEN, r.off);
    uint16_t n = ret == 0 ? ld16(m + MT_COUNT) : 0;
    if (ret < 0)
        ret = bad(err, errlen, path, "cannot read the metadata table");
    else if (memcmp(m, "metadata", 8))
        ret = bad(err, errlen, path, "no metadata table");
    else if (n > MT_MAX_ENTRIES)
        ret = bad(err, errlen, path, "too many metadata entries");
    static const uint8_t *const known[] = { guid_file_params, guid_disk_size, guid_logical_sector,
                                            guid_parent_locator };
    for (uint16_t i = 0; i < n && ret == 0; i++) {
        const uint8_t *e = m + MT_ENTRIES + i * MTE_LEN;
        uint32_t off = ld32(e + 16), len = ld32(e + 20);
        if (len && (off < MT_LEN || off > r.len || len > r.len - off))
            ret = bad(err, errlen, path, "a metadata item outside the metadata region");
        bool is_known = false;
        for (size_t k = 0; k < ARRAY_SIZE(known); k++)
            is_known |= !memcmp(e, known[k], 16);
        /* The virtual disk id and physical sector size are required too,
         * but tell a reader nothing it needs. */
        static const uint8_t guid_disk_id[16] = { 0xab, 0x12, 0xca, 0xbe, 0xe6, 0xb2, 0x23, 0x45,
                                                  0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46 };
        static const uint8_t guid_phys_sector[16] = { 0xc7, 0x48, 0xa3, 0xcd, 0x5d, 0x44, 0x71, 0x44,
                                                      0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56 };
        is_known |= !memcmp(e, guid_disk_id, 16) || !memcmp(e, guid_phys_sector, 16);
        if (ret == 0 && !is_known && (ld32(e + 24) & MTE_IS_REQUIRED)) {
            char g[40];
            guid_text(e, g, sizeof(g));
            set_err(err, errlen, "%s: the image needs a metadata item Burrow does not know (%s)", path, g);
            ret = -ENOTSUP;
        }
    }
    uint32_t fo, fl, so, sl, lo, ll, po, pl;
    if (ret == 0 && (find_item(m, guid_file_params, &fo, &fl) < 0 || fl < 8 ||
                     find_item(m, guid_disk_size, &so, &sl) < 0 || sl < 8 ||
                     find_item(m, guid_logical_sector, &lo, &ll) < 0 || ll < 4))
        ret = bad(err, errlen, path,
                  "the file parameters, virtual disk size or logical sector size is missing");
    uint8_t v[8 + 8 + 4];
    if (ret == 0 && (ro_pread(s->fd, v, 8, r.off + fo) < 0 || ro_pread(s->fd, v + 8, 8, r.off + so) < 0 ||
                     ro_pread(s->fd, v + 16, 4, r.off + lo) < 0))
        ret = bad(err, errlen, path, "cannot read the metadata items");
    if (ret == 0) {
        s->block = ld32(v);
        s->fp_flags = ld32(v + 4);
        img->size = ld64(v + 8);
        s->sector = ld32(v + 16);
        if (s->block < MB1 || s->block > 256 * MB1 || (s->block & (s->block - 1)))
            ret = bad(err, errlen, path, "block size is not a power of two from 1 MiB to 256 MiB");
        else if (s->sector != 512 && s->sector != 4096)
            ret = bad(err, errlen, path, "logical sector size is neither 512 nor 4096");
        else if (img->size == 0 || img->size > MAX_DISK_SIZE || img->size % s->sector)
            ret = bad(err, errlen, path, "bad virtual disk size");
    }
    if (ret == 0 && (s->fp_flags & FP_HAS_PARENT)) {
        uint8_t *loc = NULL;
        if (find_item(m, guid_parent_locator, &po, &pl) < 0 || pl == 0)
            ret = bad(err, errlen, path, "a differencing image without a parent locator");
        else if (pl > MAX_LOCATOR_LEN)
            ret = bad(err, errlen, path, "a parent locator larger than 64 KiB");
        else if (!(loc = read_item(s, r, po, pl)))
            ret = bad(err, errlen, path, "cannot read the parent locator");
        else
            ret = parse_locator(s, path, loc, pl, err, errlen);
        free(loc);
    }
    free(m);
    return ret;
}

static int vhdx_open(struct ro_image *img, const char *path, bool open_parent, char *err, size_t errlen)
{
    struct vhdx *s = calloc(1, sizeof(*s));
    if (!s) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->fd = -1;
    s->bitmap_chunk = UINT64_MAX;
    img->state = s;
    int ret = ro_open_file(path, &s->fd, &s->file_size, err, errlen);
    if (ret < 0)
        return ret;
    uint8_t id[8];
    if (s->file_size < RT2_AT + RT_LEN || ro_pread(s->fd, id, sizeof(id), 0) < 0 || memcmp(id, "vhdxfile", 8))
        return bad(err, errlen, path, "no file type identifier, or too short");
    uint8_t h[HDR_LEN];
    if ((ret = read_header(s, path, h, err, errlen)) < 0)
        return ret;
    if (ld16(h + H_VERSION) != 1)
        return bad(err, errlen, path, "unknown header version");
    if (memcmp(h + H_LOG_GUID, guid_zero, 16)) {
        set_err(err, errlen, "%s was not closed cleanly: its log must be replayed into it first, which "
                "Burrow does not do (it only reads VHDX images); attach it once in Hyper-V or Windows, or "
                "run 'qemu-img check -r all %s', then try again", path, path);
        return -ENOTSUP;
    }
    memcpy(s->data_write_guid, h + H_DATA_WRITE_GUID, 16);
    struct region bat, meta;
    if ((ret = read_regions(s, path, &bat, &meta, err, errlen)) < 0)
        return ret;
    int found = read_metadata(img, s, path, meta, err, errlen);
    if (found < 0)
        return found;
    s->chunk_ratio = SECTORS_PER_CHUNK * s->sector / s->block;
    s->nblocks = (img->size + s->block - 1) / s->block;
    /* Payload entries, with a sector bitmap entry after each chunk. */
    uint64_t chunks = (s->nblocks + s->chunk_ratio - 1) / s->chunk_ratio;
    s->nentries = s->fp_flags & FP_HAS_PARENT ? chunks * (s->chunk_ratio + 1)
                                              : s->nblocks + (s->nblocks - 1) / s->chunk_ratio;
    if (s->nentries > bat.len / 8)
        return bad(err, errlen, path, "the BAT is too small for the disk size");
    s->bat = malloc(s->nentries * 8);
    if (!s->bat) {
        set_err(err, errlen, "%s: out of memory for a BAT of %" PRIu64 " bytes", path, s->nentries * 8);
        return -ENOMEM;
    }
    if ((ret = ro_pread(s->fd, s->bat, s->nentries * 8, bat.off)) < 0) {
        set_err(err, errlen, "cannot read %s: %s", path, strerror(-ret));
        return ret;
    }
    /* Present payload blocks, and sector bitmap blocks, each have bytes
     * of their own. */
    uint64_t *at = malloc(s->nentries * sizeof(*at) + 1), *sb = malloc(s->nentries * sizeof(*sb) + 1);
    if (!at || !sb) {
        free(at);
        free(sb);
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    size_t n = 0, nsb = 0;
    for (uint64_t i = 0; i < s->nentries; i++) {
        s->bat[i] = ld64(&s->bat[i]);       /* little-endian on disk */
        unsigned st = BAT_STATE(s->bat[i]);
        bool bitmap_entry = (i + 1) % (s->chunk_ratio + 1) == 0;
        if (bitmap_entry && st == SB_PRESENT)
            sb[nsb++] = BAT_OFFSET(s->bat[i]);
        else if (!bitmap_entry && (st == PAYLOAD_FULLY || st == PAYLOAD_PARTIALLY))
            at[n++] = BAT_OFFSET(s->bat[i]);
    }
    bool shared = ro_overlap(at, n, s->block) || ro_overlap(sb, nsb, MB1);
    free(at);
    free(sb);
    if (shared)
        return bad(err, errlen, path, "two blocks share bytes of the file");
    if (!(s->fp_flags & FP_HAS_PARENT))
        return 0;
    if (!(s->bitmap = malloc(MB1))) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (!open_parent)
        return 0;
    if (found > 0) {
        set_err(err, errlen, "%s: its parent image %s is not there", path, s->parent_name);
        return -ENOENT;
    }
    if ((ret = ro_open_parent(img, &ro_format_vhdx, path, s->parent_name, err, errlen)) < 0)
        return ret;
    const struct vhdx *p = img->parent->state;
    char g[40];
    guid_text(p->data_write_guid, g, sizeof(g));
    if (strcasecmp(g, s->parent_linkage[0]) && strcasecmp(g, s->parent_linkage[1])) {
        set_err(err, errlen, "%s: %s is not its parent, or was changed since (its data GUID is %s, "
                "not %s)", path, s->parent_name, g, s->parent_linkage[0]);
        return -EINVAL;
    }
    return 0;
}

static void vhdx_close(struct ro_image *img)
{
    struct vhdx *s = img->state;
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    free(s->bat);
    free(s->bitmap);
    free(s);
}

/* How a block of this state reads; -1 for the reserved states. */
static int payload_kind(unsigned state)
{
    switch (state) {
    case PAYLOAD_FULLY:
    case PAYLOAD_PARTIALLY: return RO_DATA;
    case PAYLOAD_ZERO:
    case PAYLOAD_UNMAPPED: return RO_ZERO;
    case PAYLOAD_NOT_PRESENT:
    case PAYLOAD_UNDEFINED: return RO_PARENT;
    default: return -1;
    }
}

static int vhdx_map(struct ro_image *img, uint64_t off, uint64_t len, struct ro_map *m)
{
    struct vhdx *s = img->state;
    uint64_t k = off / s->block, in = off % s->block;
    uint64_t e = s->bat[k + k / s->chunk_ratio];
    unsigned state = BAT_STATE(e);
    if (state == 4 || state == 5 || (state == PAYLOAD_PARTIALLY && !(s->fp_flags & FP_HAS_PARENT)))
        return ro_corrupt(img, "BAT entry with a reserved state", e);
    m->fd = s->fd;
    m->len = MIN(len, s->block - in);
    if (state == PAYLOAD_FULLY || state == PAYLOAD_PARTIALLY) {
        uint64_t host = BAT_OFFSET(e);
        if (host < MB1)
            return ro_corrupt(img, "payload block inside the headers", e);
        m->kind = RO_DATA;
        m->host = host + in;
    } else {
        m->kind = (enum ro_kind)payload_kind(state);
        /* Blocks that read alike extend the run (never into a present or
         * partial block, nor a reserved state, which are mapped alone). */
        while (m->len < len && ++k < s->nblocks &&
               payload_kind(BAT_STATE(s->bat[k + k / s->chunk_ratio])) == (int)m->kind)
            m->len += MIN(len - m->len, (uint64_t)s->block);
        return 0;
    }
    if (state == PAYLOAD_PARTIALLY) {
        /* The chunk's sector bitmap: bit i of it (bit 0 of byte 0 first)
         * says whether logical sector i is in this file. */
        uint64_t chunk = k / s->chunk_ratio;
        uint64_t sb = s->bat[chunk * (s->chunk_ratio + 1) + s->chunk_ratio];
        if (BAT_STATE(sb) != SB_PRESENT || BAT_OFFSET(sb) < MB1)
            return ro_corrupt(img, "partially present block without its sector bitmap", sb);
        if (s->bitmap_chunk != chunk) {
            s->bitmap_chunk = UINT64_MAX;
            int ret = ro_pread(s->fd, s->bitmap, MB1, BAT_OFFSET(sb));
            if (ret < 0)
                return ret == -EIO ? ro_corrupt(img, "sector bitmap beyond the end of the file", sb) : ret;
            s->bitmap_chunk = chunk;
        }
        uint64_t first = off / s->sector % SECTORS_PER_CHUNK, in_sec = off % s->sector;
        uint64_t limit = first + (in_sec + m->len + s->sector - 1) / s->sector;
        bool here = s->bitmap[first / 8] >> (first % 8) & 1;
        uint64_t end = first + 1;
        while (end < limit && (bool)(s->bitmap[end / 8] >> (end % 8) & 1) == here)
            end++;
        m->len = MIN(m->len, (end - first) * s->sector - in_sec);
        if (!here)
            m->kind = RO_PARENT;
    }
    if (m->kind == RO_DATA && (m->host > s->file_size || m->len > s->file_size - m->host))
        return ro_corrupt(img, "payload block beyond the end of the file", e);
    return 0;
}

static void vhdx_describe(struct ro_image *img, struct ro_info *info)
{
    struct vhdx *s = img->state;
    const char *sub = s->fp_flags & FP_HAS_PARENT ? "differencing"
                    : s->fp_flags & FP_LEAVE_ALLOCATED ? "fixed" : "dynamic";
    snprintf(info->subformat, sizeof(info->subformat), "%s", sub);
    info->block_size = s->block;
    snprintf(info->parent, sizeof(info->parent), "%s", s->parent_name);
    ro_count_file(info, s->fd);
}

const struct ro_format ro_format_vhdx = {
    .name = "vhdx",
    .open = vhdx_open,
    .close = vhdx_close,
    .map = vhdx_map,
    .describe = vhdx_describe,
};
