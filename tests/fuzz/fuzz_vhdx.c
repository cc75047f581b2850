/* VHDX images (devices/block/vhdx.c) as the user hands them to Burrow:
 * the input describes the image file (and a second file, a parent a
 * differencing image may name), as fuzz_roimage.h says: sparse, so the
 * regions' 1 MiB places cost nothing.  A header or region table whose
 * CRC-32C field is zero gets its CRC filled in (the seeds leave them
 * zero), so mutations reach past the checksums; a non-zero one is left
 * for the reader to check.  The image is then opened read-only as vhdx,
 * read, walked for its allocation, described, probed, and opened for
 * writing, which must be refused. */
#include "fuzz/fuzz_roimage.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_init("vhdx", "image.vhdx");
    return 0;
}

/* The harness's own work is left out of the coverage the fuzzer follows
 * (and is then fast): CRC-32C eight bytes a step. */
__attribute__((no_sanitize("coverage")))
static uint32_t crc32c(const uint8_t *p, size_t len)
{
    static uint32_t t[8][256];
    if (!t[0][1]) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0x82f63b78u ^ (c >> 1) : c >> 1;
            t[0][i] = c;
        }
        for (uint32_t i = 0; i < 256; i++)
            for (int k = 1; k < 8; k++)
                t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
    }
    uint32_t c = ~0u;
    for (; len >= 8; p += 8, len -= 8) {
        uint32_t lo = c ^ ld32(p), hi = ld32(p + 4);
        c = t[7][lo & 0xff] ^ t[6][lo >> 8 & 0xff] ^ t[5][lo >> 16 & 0xff] ^ t[4][lo >> 24] ^
            t[3][hi & 0xff] ^ t[2][hi >> 8 & 0xff] ^ t[1][hi >> 16 & 0xff] ^ t[0][hi >> 24];
    }
    for (; len; p++, len--)
        c = t[0][(c ^ *p) & 0xff] ^ (c >> 8);
    return ~c;
}

/* Fills in a zero CRC (at byte 4) of the len bytes at off. */
__attribute__((no_sanitize("coverage")))
static void fix_crc(int fd, uint64_t off, size_t len)
{
    static uint8_t b[64 * 1024];
    if (pread(fd, b, len, (off_t)off) != (ssize_t)len || ld32(b + 4))
        return;
    st_le(b + 4, 4, crc32c(b, len));
    if (pwrite(fd, b, len, (off_t)off) != (ssize_t)len)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_write(data, size);
    for (int i = 0; i < 2; i++) {
        int fd = open(fz_path[i], O_RDWR | O_CLOEXEC);
        if (fd < 0)
            continue;
        fix_crc(fd, 64 * 1024, 4096);
        fix_crc(fd, 128 * 1024, 4096);
        fix_crc(fd, 192 * 1024, 64 * 1024);
        fix_crc(fd, 256 * 1024, 64 * 1024);
        close(fd);
    }
    fz_exercise("vhdx");
    return 0;
}
