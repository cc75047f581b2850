/* VHD images (devices/block/vhd.c) as the user hands them to Burrow: the
 * input describes the image file (and a second file, a parent a
 * differencing image may name), as fuzz_roimage.h says.  A footer or
 * dynamic disk header whose checksum field is zero gets its checksum
 * filled in (the seeds leave them zero), so mutations reach past the
 * checksums; a non-zero one is left for the reader to check.  The image
 * is then opened read-only as vhd, read, walked for its allocation,
 * described, probed, and opened for writing, which must be refused. */
#include "fuzz/fuzz_roimage.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_init("vhd", "image.vhd");
    return 0;
}

/* Fills in a zero checksum (big-endian, at field) of len bytes at off. */
static void fix_sum(int fd, uint64_t off, size_t len, size_t field)
{
    uint8_t b[1024];
    if (len > sizeof(b) || pread(fd, b, len, (off_t)off) != (ssize_t)len || ld_be(b + field, 4))
        return;
    uint32_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum += b[i];
    st_be(b + field, 4, ~sum);
    if (pwrite(fd, b, len, (off_t)off) != (ssize_t)len)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_write(data, size);
    for (int i = 0; i < 2; i++) {
        int fd = open(fz_path[i], O_RDWR | O_CLOEXEC);
        off_t end = fd < 0 ? 0 : lseek(fd, 0, SEEK_END);
        if (end >= 512) {
            uint8_t f[512];
            fix_sum(fd, (uint64_t)end - 512, 512, 64);
            fix_sum(fd, 0, 512, 64);
            if (pread(fd, f, sizeof(f), end - 512) == (ssize_t)sizeof(f) && !memcmp(f, "conectix", 8) &&
                ld_be(f + 16, 8) < (uint64_t)end)
                fix_sum(fd, ld_be(f + 16, 8), 1024, 36);
        }
        if (fd >= 0)
            close(fd);
    }
    fz_exercise("vhd");
    return 0;
}
