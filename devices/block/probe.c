/* Image format detection from the first bytes of a file.  Only signatures
 * at fixed places near the start count: a raw disk's data is arbitrary, so
 * the probe must not guess from anything weaker. */
#include "devices/block/block.h"

#include <string.h>

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
