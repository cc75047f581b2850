/* qcow2 images (devices/block/qcow2.c) as the user hands them to Burrow:
 * the input is the image file.  It is opened read-write through
 * blk_open_format(); a few ranges (the start, the middle, the end) are
 * read, written with a pattern and read back, which must give the pattern
 * whenever both the write and the read said they succeeded; then a flush
 * and a close, qcow2_info() on the file, qcow2_resize() by one step (64
 * KiB, then 1 MiB more), and a read-only open that reads the start again.
 *
 * Images are written into a private folder, where a relative backing
 * file name finds nothing (or the image itself). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/block/block.h"
#include "devices/block/qcow2.h"
#include "devices/util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define IO_LEN 4096
#define MAX_RESIZE (1ull << 40)

static char dir[256], path[300];
static uint8_t rbuf[IO_LEN], wbuf[IO_LEN];

static void remove_dir(void)
{
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/burrow-fuzz-qcow2-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof(path), "%s/image.qcow2", dir);
    atexit(remove_dir);
    qcow2_set_quiet(true);
    return 0;
}

static void write_file(const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    close(fd);
}

static void exercise(struct blk *b)
{
    uint64_t size = blk_size(b);
    uint64_t offs[3] = { 0, size / 2 & ~511ull, size > IO_LEN ? size - IO_LEN : 0 };
    for (int i = 0; i < 3; i++) {
        uint64_t off = offs[i];
        size_t len = (size_t)MIN((uint64_t)IO_LEN, size - off);
        if (!len)
            continue;
        blk_pread(b, off, rbuf, len);
        for (size_t k = 0; k < len; k++)
            wbuf[k] = (uint8_t)(k * 31 + i + 1);
        if (blk_pwrite(b, off, wbuf, len) != 0)
            continue;
        if (blk_pread(b, off, rbuf, len) == 0 && memcmp(rbuf, wbuf, len)) {
            fprintf(stderr, "fuzz: a read after a successful write at %llu gave other data\n",
                    (unsigned long long)off);
            abort();
        }
    }
    blk_flush_sync(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    write_file(data, size);
    char err[512];
    struct blk *b = blk_open_format(NULL, path, "qcow2", false, err, sizeof(err));
    if (b) {
        exercise(b);
        blk_close(b);
    }
    struct qcow2_info info;
    if (qcow2_info(path, &info, err, sizeof(err)) == 0 && info.size < MAX_RESIZE) {
        if (qcow2_resize(path, info.size + (64 << 10), err, sizeof(err)) == 0)
            qcow2_resize(path, info.size + (64 << 10) + (1 << 20), err, sizeof(err));
    }
    b = blk_open_format(NULL, path, "qcow2", true, err, sizeof(err));
    if (b) {
        blk_pread(b, 0, rbuf, (size_t)MIN((uint64_t)IO_LEN, blk_size(b)));
        blk_close(b);
    }
    return 0;
}
