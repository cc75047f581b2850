/* VDI images (VirtualBox), read-only, after VirtualBox's header layout
 * (VDIHEADER1, version 1.1).
 *
 * A 64-byte text banner, the signature at 0x40, the version, then the
 * header proper (its length first).  The block map holds one 32-bit entry
 * per block of the disk: the index of the block's place in the data area
 * (block k's bytes at offData + index * (cbBlock + cbBlockExtra) +
 * cbBlockExtra), or FREE (never written) or ZERO (written with zeroes),
 * both of which read as zeroes.  Dynamic ("normal") and fixed images are
 * read; undo and differencing images (VirtualBox snapshots) are refused:
 * they name their parent only by UUID, which VirtualBox's own registry
 * resolves. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/block/roimage.h"
#include "devices/util.h"

/* Header fields (little-endian), offsets in the file */
#define VDI_SIGNATURE       0xbeda107fu
#define H_SIGNATURE         0x40
#define H_VERSION           0x44
#define H_CB_HEADER         0x48
#define H_TYPE              0x4c
#define H_FLAGS             0x50
#define H_OFF_BLOCKS        0x154
#define H_OFF_DATA          0x158
#define H_CB_SECTOR         0x168
#define H_CB_DISK           0x170
#define H_CB_BLOCK          0x178
#define H_CB_BLOCK_EXTRA    0x17c
#define H_C_BLOCKS          0x180
#define H_C_BLOCKS_ALLOC    0x184
#define HEADER_END          0x1c8           /* end of VDIHEADER1 */
#define CB_HEADER_V1        (HEADER_END - H_CB_HEADER)

#define VDI_VERSION_1_1     0x00010001u
#define TYPE_NORMAL         1
#define TYPE_FIXED          2
#define TYPE_UNDO           3
#define TYPE_DIFF           4

#define BLOCK_FREE          0xffffffffu
#define BLOCK_ZERO          0xfffffffeu

#define MIN_BLOCK           512u
#define MAX_BLOCK           (256u << 20)

struct vdi {
    int fd;
    uint64_t file_size;
    uint32_t type;
    uint64_t off_data;
    uint32_t block, extra;          /* cbBlock, cbBlockExtra */
    uint32_t nblocks;
    uint32_t *map;                  /* host order */
};

static int bad(char *err, size_t errlen, const char *path, const char *what)
{
    set_err(err, errlen, "%s: not a VDI image Burrow can read: %s", path, what);
    return -EINVAL;
}

static int vdi_open(struct ro_image *img, const char *path, bool open_parent, char *err, size_t errlen)
{
    struct vdi *s = calloc(1, sizeof(*s));
    if (!s) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->fd = -1;
    img->state = s;
    int ret = ro_open_file(path, &s->fd, &s->file_size, err, errlen);
    if (ret < 0)
        return ret;
    uint8_t h[HEADER_END];
    if (s->file_size < sizeof(h) || ro_pread(s->fd, h, sizeof(h), 0) < 0)
        return bad(err, errlen, path, "the file is shorter than a VDI header");
    if (ld32(h + H_SIGNATURE) != VDI_SIGNATURE)
        return bad(err, errlen, path, "no VDI signature at byte 0x40");
    uint32_t version = ld32(h + H_VERSION);
    if (version != VDI_VERSION_1_1) {
        set_err(err, errlen, "%s: VDI version %u.%u is not supported (only 1.1, what VirtualBox "
                "writes since 2.0)", path, version >> 16, version & 0xffff);
        return -ENOTSUP;
    }
    if (ld32(h + H_CB_HEADER) < CB_HEADER_V1)
        return bad(err, errlen, path, "header too short for version 1.1");
    s->type = ld32(h + H_TYPE);
    if (s->type == TYPE_UNDO || s->type == TYPE_DIFF) {
        set_err(err, errlen, "%s is a differencing VDI image (a VirtualBox snapshot), whose parent "
                "only VirtualBox can find; make a whole copy first with 'VBoxManage clonemedium "
                "disk %s whole.vdi' and use that", path, path);
        return -ENOTSUP;
    }
    if (s->type != TYPE_NORMAL && s->type != TYPE_FIXED)
        return bad(err, errlen, path, "unknown image type");
    if (ld32(h + H_CB_SECTOR) != 512)
        return bad(err, errlen, path, "sector size is not 512 bytes");
    uint64_t off_blocks = ld32(h + H_OFF_BLOCKS);
    s->off_data = ld32(h + H_OFF_DATA);
    img->size = ld64(h + H_CB_DISK);
    s->block = ld32(h + H_CB_BLOCK);
    s->extra = ld32(h + H_CB_BLOCK_EXTRA);
    s->nblocks = ld32(h + H_C_BLOCKS);
    if (s->block < MIN_BLOCK || s->block > MAX_BLOCK || (s->block & (s->block - 1)))
        return bad(err, errlen, path, "block size is not a power of two from 512 bytes to 256 MiB");
    if (s->extra % 512 || s->extra > s->block)
        return bad(err, errlen, path, "bad extra bytes per block");
    if (img->size == 0 || (uint64_t)s->nblocks * s->block < img->size ||
        (uint64_t)s->nblocks * s->block - img->size >= s->block)
        return bad(err, errlen, path, "disk size and block count disagree");
    if (s->nblocks >= BLOCK_ZERO)
        return bad(err, errlen, path, "too many blocks");
    /* The map must lie in the file, after the header. */
    uint64_t map_len = (uint64_t)s->nblocks * 4;
    if (off_blocks < HEADER_END || off_blocks > s->file_size || map_len > s->file_size - off_blocks)
        return bad(err, errlen, path, "block map outside the file");
    if (s->off_data < HEADER_END || s->off_data > s->file_size)
        return bad(err, errlen, path, "data area outside the file");
    s->map = malloc(map_len);
    if (!s->map) {
        set_err(err, errlen, "%s: out of memory for a block map of %" PRIu64 " bytes", path, map_len);
        return -ENOMEM;
    }
    if ((ret = ro_pread(s->fd, s->map, map_len, off_blocks)) < 0) {
        set_err(err, errlen, "cannot read %s: %s", path, strerror(-ret));
        return ret;
    }
    uint64_t *at = malloc((size_t)s->nblocks * sizeof(*at) + 1);
    if (!at) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    size_t n = 0;
    for (uint32_t i = 0; i < s->nblocks; i++) {
        s->map[i] = ld32(&s->map[i]);       /* little-endian on disk */
        if (s->map[i] != BLOCK_FREE && s->map[i] != BLOCK_ZERO)
            at[n++] = s->map[i];
    }
    bool shared = ro_overlap(at, n, 1);
    free(at);
    if (shared)
        return bad(err, errlen, path, "two blocks of the disk share their data");
    return 0;
}

static void vdi_close(struct ro_image *img)
{
    struct vdi *s = img->state;
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    free(s->map);
    free(s);
}

/* Where block k's data lies; 0 when FREE or ZERO. */
static uint64_t block_host(const struct vdi *s, uint32_t e)
{
    if (e == BLOCK_FREE || e == BLOCK_ZERO)
        return 0;
    return s->off_data + (uint64_t)e * ((uint64_t)s->block + s->extra) + s->extra;
}

static int vdi_map(struct ro_image *img, uint64_t off, uint64_t len, struct ro_map *m)
{
    struct vdi *s = img->state;
    uint64_t k = off / s->block, in = off % s->block;
    uint32_t e = s->map[k];
    if (e != BLOCK_FREE && e != BLOCK_ZERO && e >= s->nblocks)
        return ro_corrupt(img, "block map entry beyond the block count", e);
    uint64_t host = block_host(s, e);
    m->kind = host ? RO_DATA : e == BLOCK_ZERO ? RO_ZERO : RO_PARENT;
    m->fd = s->fd;
    m->host = host + in;
    m->len = MIN(len, s->block - in);
    /* Following blocks that map alike (data: right after this one in the
     * file) extend the run. */
    uint64_t next = host + s->block;
    while (m->len < len && ++k < s->nblocks) {
        uint32_t n = s->map[k];
        if (host ? n >= s->nblocks || block_host(s, n) != next : n != e)
            break;
        m->len += MIN(len - m->len, (uint64_t)s->block);
        next += s->block;
    }
    if (host && (m->host > s->file_size || m->len > s->file_size - m->host))
        return ro_corrupt(img, "data block beyond the end of the file", e);
    return 0;
}

static void vdi_describe(struct ro_image *img, struct ro_info *info)
{
    struct vdi *s = img->state;
    snprintf(info->subformat, sizeof(info->subformat), "%s", s->type == TYPE_FIXED ? "fixed" : "dynamic");
    info->block_size = s->block;
    ro_count_file(info, s->fd);
}

const struct ro_format ro_format_vdi = {
    .name = "vdi",
    .open = vdi_open,
    .close = vdi_close,
    .map = vdi_map,
    .describe = vdi_describe,
};
