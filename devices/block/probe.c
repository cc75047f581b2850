/* Image format detection from the first bytes of a file, and from its last
 * 512 for a fixed VHD (which has no header).  Only signatures at fixed
 * places count, and the footer's checksum too: a raw disk's data is
 * arbitrary, so the probe must not guess from anything weaker. */
#include "devices/block/block.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool has(const uint8_t *buf, size_t len, size_t off, const void *sig, size_t n)
{
    return off + n <= len && !memcmp(buf + off, sig, n);
}

const char *blk_probe(const uint8_t *buf, size_t len)
{
    if (has(buf, len, 0, "QFI\xfb", 4)) {
        /* qcow (version 1) shares the magic; the version follows it. */
        if (len >= 8 && buf[4] == 0 && buf[5] == 0 && buf[6] == 0 && buf[7] == 1)
            return "qcow";
        return "qcow2";
    }
    if (has(buf, len, 0, "KDMV", 4) || has(buf, len, 0, "COWD", 4) ||
        has(buf, len, 0, "# Disk DescriptorFile", 21))
        return "vmdk";
    if (has(buf, len, 0, "conectix", 8))
        return "vhd";
    if (has(buf, len, 0, "vhdxfile", 8))
        return "vhdx";
    /* VDI: a text banner, then the signature 0xbeda107f at 0x40. */
    if (has(buf, len, 0x40, "\x7f\x10\xda\xbe", 4) || has(buf, len, 0, "<<< ", 4))
        return "vdi";
    if (has(buf, len, 0, "QED\0", 4))
        return "qed";
    if (has(buf, len, 0, "LUKS\xba\xbe", 6))
        return "luks";
    return NULL;
}

/* A fixed VHD image is raw data with a 512-byte footer at its end (511
 * bytes before Virtual PC 2004): the cookie, a valid checksum, the fixed
 * disk type and a size that fits before the footer make it one. */
static bool vhd_fixed_footer(const uint8_t *f, size_t len, uint64_t data_len)
{
    if (memcmp(f, "conectix", 8))
        return false;
    uint32_t sum = 0;
    for (size_t i = 0; i < len; i++)
        if (i < 64 || i >= 68)
            sum += f[i];
    uint32_t stored = (uint32_t)f[64] << 24 | (uint32_t)f[65] << 16 | (uint32_t)f[66] << 8 | f[67];
    uint32_t type = (uint32_t)f[60] << 24 | (uint32_t)f[61] << 16 | (uint32_t)f[62] << 8 | f[63];
    uint64_t cur = 0;
    for (int i = 0; i < 8; i++)
        cur = cur << 8 | f[48 + i];
    return ~sum == stored && type == 2 && cur <= data_len;
}

const char *blk_probe_fd(int fd)
{
    uint8_t buf[512] = { 0 };
    ssize_t n = pread(fd, buf, sizeof(buf), 0);
    if (n <= 0)
        return NULL;
    const char *seen = blk_probe(buf, (size_t)n);
    if (seen)
        return seen;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < 1024)
        return NULL;
    uint64_t size = (uint64_t)st.st_size;
    if (pread(fd, buf, sizeof(buf), (off_t)(size - 512)) != (ssize_t)sizeof(buf))
        return NULL;
    return blk_probe_tail(buf, size);
}

const char *blk_probe_tail(const uint8_t *tail, uint64_t size)
{
    if (size < 1024)
        return NULL;
    if (vhd_fixed_footer(tail, 512, size - 512) || vhd_fixed_footer(tail + 1, 511, size - 511))
        return "vhd";
    return NULL;
}

bool blk_format_read_only(const char *format)
{
    static const char *const ro[] = { "vdi", "vmdk", "vhd", "vhdx" };
    for (size_t i = 0; format && i < sizeof(ro) / sizeof(ro[0]); i++)
        if (!strcmp(format, ro[i]))
            return true;
    return false;
}
