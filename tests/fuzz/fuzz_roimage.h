/* What the fuzz targets of the formats Burrow only reads (fuzz_vdi.c,
 * fuzz_vmdk.c, fuzz_vhd.c, fuzz_vhdx.c) share.
 *
 * The input describes files sparsely, so that images whose structures lie
 * megabytes apart (a VHDX's regions sit on 1 MiB boundaries) stay small
 * inputs: a list of records, each a flags byte, then
 *   - flags bit 2 clear: a chunk: offset (u32 LE, bytes), length (u16 LE),
 *     that many bytes, written at the offset;
 *   - flags bit 2 set: a size (u32 LE, 512-byte sectors) the file is
 *     extended to;
 * flags bit 0 picks the file: the image (0) or a second file (1), which a
 * VMDK descriptor can name as an extent (x.vmdk) and any child image as
 * its parent.  What the records leave out reads as zeroes.
 *
 * Each input is then opened as the image's format, read at its start,
 * middle and end (odd places included), walked with blk_block_status()
 * to its end, described with ro_info(), probed, and opened for writing
 * (which must be refused). */
#ifndef BURROW_FUZZ_ROIMAGE_H
#define BURROW_FUZZ_ROIMAGE_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/block/block.h"
#include "devices/block/roimage.h"
#include "devices/util.h"

#define FZ_IO_LEN (64 * 1024)
#define FZ_MAX_FILE (1ull << 32)

static char fz_dir[256], fz_path[2][320];
static uint8_t fz_buf[FZ_IO_LEN];

static void fz_remove(void)
{
    unlink(fz_path[0]);
    unlink(fz_path[1]);
    rmdir(fz_dir);
}

/* Makes the private folder: the image is IMAGE_NAME in it, the second
 * file x.vmdk. */
static void fz_init(const char *name, const char *image_name)
{
    const char *t = getenv("TMPDIR");
    snprintf(fz_dir, sizeof(fz_dir), "%s/burrow-fuzz-%s-XXXXXX", t && *t ? t : "/tmp", name);
    if (!mkdtemp(fz_dir))
        abort();
    snprintf(fz_path[0], sizeof(fz_path[0]), "%s/%s", fz_dir, image_name);
    snprintf(fz_path[1], sizeof(fz_path[1]), "%s/x.vmdk", fz_dir);
    atexit(fz_remove);
    ro_set_quiet(true);
}

/* Writes the files the input describes. */
static void fz_write(const uint8_t *data, size_t size)
{
    int fd[2];
    for (int i = 0; i < 2; i++) {
        fd[i] = open(fz_path[i], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd[i] < 0)
            abort();
    }
    size_t p = 0;
    while (p < size) {
        uint8_t flags = data[p++];
        int f = fd[flags & 1];
        if (flags & 4) {
            if (size - p < 4)
                break;
            uint64_t len = (uint64_t)ld_le(data + p, 4) * 512;
            p += 4;
            if (len <= FZ_MAX_FILE && ftruncate(f, (off_t)len) < 0)
                abort();
            continue;
        }
        if (size - p < 6)
            break;
        uint64_t off = ld_le(data + p, 4);
        size_t n = (size_t)ld_le(data + p + 4, 2);
        p += 6;
        n = MIN(n, size - p);
        if (n && pwrite(f, data + p, n, (off_t)off) != (ssize_t)n)
            abort();
        p += n;
    }
    close(fd[0]);
    close(fd[1]);
}

static void fz_exercise(const char *fmt)
{
    const char *path = fz_path[0];
    char err[512];
    struct blk *b = blk_open_format(NULL, path, fmt, true, err, sizeof(err));
    if (b) {
        uint64_t size = blk_size(b);
        uint64_t offs[4] = { 0, size / 2 & ~511ull, size > FZ_IO_LEN ? size - FZ_IO_LEN : 0, size / 3 };
        for (int i = 0; i < 4; i++) {
            uint64_t off = offs[i];
            size_t len = (size_t)MIN((uint64_t)FZ_IO_LEN, size - MIN(size, off));
            if (len)
                blk_pread(b, off, fz_buf, len);
        }
        /* The allocation walk a conversion makes. */
        for (uint64_t off = 0, n; off < size; off += n)
            if (blk_block_status(b, off, size - off, &n) < 0)
                break;
        blk_close(b);
    }
    struct ro_info info;
    ro_info(path, fmt, &info, err, sizeof(err));
    /* Detected, and refused for writing. */
    b = blk_open_format(NULL, path, NULL, true, err, sizeof(err));
    if (b)
        blk_close(b);
    b = blk_open_format(NULL, path, fmt, false, err, sizeof(err));
    if (b) {
        fprintf(stderr, "fuzz: a %s image opened for writing\n", fmt);
        abort();
    }
}

#endif
