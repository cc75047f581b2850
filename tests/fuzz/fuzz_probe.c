/* Image format detection (devices/block/probe.c) on the first bytes of a
 * file, and what an open without a named format does with it
 * (blk_open_format with format NULL: qcow2 by its magic, raw otherwise,
 * other formats refused; a raw image that was detected refuses writes
 * that would make its first sector look like another format).
 *
 * Input: the file's contents.  blk_probe() runs on them; then they are
 * written to a file that is opened without a format; when that gives a
 * raw image, its first sector is overwritten with the input's second 512
 * bytes, which must be refused exactly when blk_probe() names a format for
 * them. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/vmdef.h"
#include "devices/block/block.h"
#include "devices/block/qcow2.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256], path[300];

static void remove_dir(void)
{
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/burrow-fuzz-probe-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof(path), "%s/image", dir);
    atexit(remove_dir);
    qcow2_set_quiet(true);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *fmt = blk_probe(data, size);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    close(fd);
    vmdef_detect_format(path);
    char err[512];
    struct blk *b = blk_open_format(NULL, path, NULL, false, err, sizeof(err));
    if (!b)
        return 0;
    if (!strcmp(blk_format(b), "raw")) {
        if (fmt) {
            fprintf(stderr, "fuzz: a %s image opened as raw\n", fmt);
            abort();
        }
        uint8_t sector[512] = { 0 };
        if (size > 512)
            memcpy(sector, data + 512, size - 512 < 512 ? size - 512 : 512);
        bool refused = blk_pwrite(b, 0, sector, sizeof(sector)) != 0;
        if (blk_size(b) >= 512 && refused != (blk_probe(sector, sizeof(sector)) != NULL)) {
            fprintf(stderr, "fuzz: a write of sector 0 was %s\n", refused ? "refused" : "taken");
            abort();
        }
    }
    blk_close(b);
    return 0;
}
