/* ATA hard disk command set (ATA8-ACS) over the shared block layer. */
#include "devices/ata.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/block/block.h"
#include "devices/util.h"
#include "devices/virtqueue.h"

#define NCQ_DEPTH        32
#define MAX_MULTIPLE     16
#define LBA28_MAX        0x0fffffffULL
#define LOG_DIRECTORY    0x00
#define LOG_NCQ_ERROR    0x10

/* SET FEATURES subcommands */
#define SF_ENABLE_WCACHE   0x02
#define SF_XFER_MODE       0x03
#define SF_DISABLE_RLA     0x55
#define SF_DISABLE_WCACHE  0x82
#define SF_ENABLE_RLA      0xaa

/* --- helpers shared with atapi.c ---------------------------------------- */

size_t ata_copy_out(struct ata_req *r, const void *buf, size_t len)
{
    size_t n = iov_from_buf(r->iov, (unsigned)r->iovcnt, 0, buf, MIN(len, r->buf_len));
    r->transferred = (uint32_t)n;
    return n;
}

void ata_id_string(uint16_t *id, unsigned word, unsigned words, const char *s)
{
    /* ATA strings: two characters per word, the first in the high byte. */
    size_t len = strlen(s);
    for (unsigned i = 0; i < words * 2; i++) {
        uint8_t c = i < len ? (uint8_t)s[i] : ' ';
        if (i & 1)
            id[word + i / 2] |= c;
        else
            id[word + i / 2] = (uint16_t)(c << 8);
    }
}

void ata_id_checksum(uint16_t *id)
{
    /* Word 255: signature A5h, then the byte that makes all 512 bytes sum to 0. */
    uint8_t sum = 0xa5;
    for (int i = 0; i < 255; i++)
        sum = (uint8_t)(sum + (id[i] & 0xff) + (id[i] >> 8));
    id[255] = (uint16_t)(((uint8_t)-sum) << 8 | 0xa5);
}

void ata_finish_ok(struct ata_req *r)
{
    r->status = ATA_STAT_DRDY | ATA_STAT_DSC;
    r->error = 0;
    r->done(r);
}

void ata_finish_error(struct ata_req *r, uint8_t error)
{
    r->status = ATA_STAT_DRDY | ATA_STAT_ERR;
    r->error = error;
    r->transferred = 0;
    r->done(r);
}

uint32_t ata_signature(const struct ata_dev *d)
{
    return d->atapi ? ATA_SIG_ATAPI : ATA_SIG_DISK;
}

bool ata_is_ncq(const struct ata_taskfile *tf, uint8_t *tag)
{
    if (tf->command != ATA_CMD_READ_FPDMA_QUEUED && tf->command != ATA_CMD_WRITE_FPDMA_QUEUED)
        return false;
    /* The tag travels in count bits 7:3 (ATA8-ACS 7.xx, FPDMA QUEUED). */
    if (tag)
        *tag = (uint8_t)((tf->count >> 3) & 0x1f);
    return true;
}

/* --- IDENTIFY DEVICE ----------------------------------------------------- */

static void disk_identify(struct ata_dev *d, uint16_t id[256])
{
    memset(id, 0, 512);
    uint64_t cyls = d->sectors / (16 * 63);
    if (cyls > 16383)
        cyls = 16383;
    if (cyls == 0)
        cyls = 1;
    uint64_t chs_sectors = cyls * 16 * 63;
    uint64_t lba28 = MIN(d->sectors, LBA28_MAX);

    id[0] = 0x0040;                       /* fixed device, not removable */
    id[1] = (uint16_t)cyls;
    id[3] = 16;
    id[6] = 63;
    ata_id_string(id, 10, 10, d->serial);
    ata_id_string(id, 23, 4, d->firmware);
    ata_id_string(id, 27, 20, d->model);
    id[47] = 0x8000 | MAX_MULTIPLE;
    id[49] = 0x0300;                      /* LBA, DMA */
    id[50] = 0x4000;
    id[53] = 0x0006;                      /* words 64-70 and 88 valid */
    id[54] = (uint16_t)cyls;
    id[55] = 16;
    id[56] = 63;
    id[57] = (uint16_t)chs_sectors;
    id[58] = (uint16_t)(chs_sectors >> 16);
    if (d->multiple)
        id[59] = 0x0100 | d->multiple;
    id[60] = (uint16_t)lba28;
    id[61] = (uint16_t)(lba28 >> 16);
    id[63] = 0x0007;                      /* multiword DMA 0-2 */
    id[64] = 0x0003;                      /* PIO 3 and 4 */
    id[65] = id[66] = id[67] = id[68] = 120;
    id[75] = NCQ_DEPTH - 1;
    id[76] = 0x0106;                      /* NCQ, SATA 1.5 and 3.0 Gb/s */
    id[80] = 0x01f0;                      /* ATA/ATAPI-4 to ATA8-ACS */
    id[82] = 0x0020;                      /* volatile write cache */
    id[83] = 0x7400;                      /* FLUSH CACHE EXT, FLUSH CACHE, 48-bit */
    id[84] = 0x4020;                      /* general purpose logging */
    id[85] = d->write_cache ? 0x0020 : 0;
    id[86] = 0x3400;
    id[87] = 0x4020;
    id[88] = 0x003f;                      /* UDMA 0-5 supported */
    /* The selected transfer mode, as SET FEATURES 03h chose it. */
    if ((d->xfer_mode & 0xf8) == 0x40)
        id[88] |= (uint16_t)(0x100 << (d->xfer_mode & 7));
    else if ((d->xfer_mode & 0xf8) == 0x20)
        id[63] |= (uint16_t)(0x100 << (d->xfer_mode & 7));
    id[93] = 0;
    id[100] = (uint16_t)d->sectors;
    id[101] = (uint16_t)(d->sectors >> 16);
    id[102] = (uint16_t)(d->sectors >> 32);
    id[103] = (uint16_t)(d->sectors >> 48);
    id[106] = 0x4000;                     /* one 512-byte logical sector per physical */
    id[217] = 1;                          /* non-rotating medium */
    ata_id_checksum(id);
}

static void identify_out(struct ata_req *r, const uint16_t id[256])
{
    uint8_t buf[512];
    for (int i = 0; i < 256; i++)
        st_le(buf + 2 * i, 2, id[i]);
    r->proto = ATA_PROTO_PIO_IN;
    if (r->buf_len < sizeof(buf)) {
        log_guest_error("ata: IDENTIFY with a %llu-byte buffer", (unsigned long long)r->buf_len);
        ata_finish_error(r, ATA_ERR_ABRT);
        return;
    }
    ata_copy_out(r, buf, sizeof(buf));
    ata_finish_ok(r);
}

/* --- block I/O ----------------------------------------------------------- */

static void io_done(void *opaque, int result)
{
    struct ata_req *r = opaque;
    struct ata_dev *d = r->dev;
    if (result < 0) {
        log_warn("ata: I/O error: %s", strerror(-result));
        r->lba = r->io_lba;
        if (r->proto == ATA_PROTO_FPDMA)
            d->ncq_err = (struct ata_ncq_error){ .valid = true, .status = ATA_STAT_DRDY | ATA_STAT_ERR,
                                                 .error = ATA_ERR_UNC, .lba = r->io_lba,
                                                 .count = r->io_count, .device = 0x40 };
        ata_finish_error(r, ATA_ERR_UNC);
        return;
    }
    if (r->flush_after) {
        /* Write cache disabled: the write is complete once it is stable. */
        r->flush_after = false;
        int ret = blk_flush(d->blk, io_done, r);
        if (ret == 0)
            return;
        log_warn("ata: cannot flush: %s", strerror(-ret));
        ata_finish_error(r, ATA_ERR_ABRT);
        return;
    }
    ata_finish_ok(r);
}

/* Reads or writes count sectors at lba through the request's buffers. */
static void disk_rw(struct ata_dev *d, struct ata_req *r, bool write, uint64_t lba, uint64_t count)
{
    uint64_t len = count * ATA_SECTOR_SIZE;
    r->io_lba = lba;
    r->io_count = (uint16_t)count;
    if (write && blk_read_only(d->blk)) {
        log_guest_error("ata: write to a read-only disk");
        ata_finish_error(r, ATA_ERR_ABRT);
        return;
    }
    if (lba > d->sectors || count > d->sectors - lba) {
        log_guest_error("ata: %s of %llu sectors at LBA %llu beyond %llu sectors",
                        write ? "write" : "read", (unsigned long long)count,
                        (unsigned long long)lba, (unsigned long long)d->sectors);
        r->lba = lba;
        if (r->proto == ATA_PROTO_FPDMA)
            d->ncq_err = (struct ata_ncq_error){ .valid = true, .status = ATA_STAT_DRDY | ATA_STAT_ERR,
                                                 .error = ATA_ERR_IDNF | ATA_ERR_ABRT, .lba = lba,
                                                 .count = (uint16_t)count, .device = 0x40 };
        ata_finish_error(r, ATA_ERR_IDNF | ATA_ERR_ABRT);
        return;
    }
    if (len > r->buf_len) {
        log_guest_error("ata: %llu-byte transfer into %llu bytes of PRDs", (unsigned long long)len,
                        (unsigned long long)r->buf_len);
        ata_finish_error(r, ATA_ERR_ABRT);
        return;
    }
    if (len == 0) {
        ata_finish_ok(r);
        return;
    }
    struct iovec iov[1024];
    int n = iov_slice(r->iov, (unsigned)r->iovcnt, 0, (size_t)len, iov, ARRAY_SIZE(iov));
    if (n < 0) {
        log_guest_error("ata: transfer needs more than %zu buffers", ARRAY_SIZE(iov));
        ata_finish_error(r, ATA_ERR_ABRT);
        return;
    }
    r->transferred = (uint32_t)len;
    r->flush_after = write && !d->write_cache;
    uint64_t off = lba * ATA_SECTOR_SIZE;
    int ret = write ? blk_writev(d->blk, off, iov, n, io_done, r) : blk_readv(d->blk, off, iov, n, io_done, r);
    if (ret < 0) {
        log_warn("ata: cannot submit I/O: %s", strerror(-ret));
        ata_finish_error(r, ATA_ERR_ABRT);
    }
}

/* LBA and sector count of a 28-bit or 48-bit command, with the zero-means-
 * maximum rule (256 or 65536 sectors). */
static void rw_params(const struct ata_taskfile *tf, bool ext, uint64_t *lba, uint64_t *count)
{
    if (ext) {
        *lba = tf->lba & 0xffffffffffffULL;
        *count = tf->count ? tf->count : 65536;
    } else {
        *lba = (tf->lba & 0xffffff) | (uint64_t)(tf->device & 0x0f) << 24;
        *count = (tf->count & 0xff) ? (tf->count & 0xff) : 256;
    }
}

static void flush_done(void *opaque, int result)
{
    struct ata_req *r = opaque;
    if (result < 0) {
        log_warn("ata: flush failed: %s", strerror(-result));
        ata_finish_error(r, ATA_ERR_ABRT);
    } else {
        ata_finish_ok(r);
    }
}

/* --- logs ---------------------------------------------------------------- */

static void read_log(struct ata_dev *d, struct ata_req *r)
{
    uint8_t addr = (uint8_t)r->tf.lba;
    unsigned page = (unsigned)((r->tf.lba >> 8) & 0xff) | (unsigned)((r->tf.lba >> 32) & 0xff) << 8;
    unsigned count = r->tf.count;
    uint8_t log[512];
    memset(log, 0, sizeof(log));
    r->proto = ATA_PROTO_PIO_IN;

    switch (addr) {
    case LOG_DIRECTORY:
        st_le(log, 2, 1);                     /* general purpose logging version 1 */
        st_le(log + 2 * LOG_NCQ_ERROR, 2, 1); /* one page of NCQ errors */
        break;
    case LOG_NCQ_ERROR:
        if (d->ncq_err.valid) {
            const struct ata_ncq_error *e = &d->ncq_err;
            log[0] = e->tag & 0x1f;
            log[2] = e->status;
            log[3] = e->error;
            for (int i = 0; i < 3; i++) {
                log[4 + i] = (uint8_t)(e->lba >> (8 * i));
                log[8 + i] = (uint8_t)(e->lba >> (24 + 8 * i));
            }
            log[7] = e->device;
            st_le(log + 12, 2, e->count);
        } else {
            log[0] = 0x80;                    /* NQ: no queued command failed */
        }
        /* Reading the log leaves the device's NCQ error state. */
        d->ncq_err.valid = false;
        {
            uint8_t sum = 0;
            for (int i = 0; i < 511; i++)
                sum = (uint8_t)(sum + log[i]);
            log[511] = (uint8_t)-sum;
        }
        break;
    default:
        ata_finish_error(r, ATA_ERR_ABRT);
        return;
    }
    if (page != 0 || count != 1 || r->buf_len < sizeof(log)) {
        log_guest_error("ata: READ LOG EXT of log %02x page %u count %u", addr, page, count);
        ata_finish_error(r, ATA_ERR_ABRT);
        return;
    }
    ata_copy_out(r, log, sizeof(log));
    ata_finish_ok(r);
}

/* --- commands ------------------------------------------------------------ */

static void set_features(struct ata_dev *d, struct ata_req *r)
{
    uint8_t sub = (uint8_t)r->tf.feature;
    switch (sub) {
    case SF_ENABLE_WCACHE:
        d->write_cache = true;
        break;
    case SF_DISABLE_WCACHE:
        d->write_cache = false;
        break;
    case SF_XFER_MODE: {
        uint8_t mode = (uint8_t)r->tf.count;
        /* PIO default/flow control (00h, 01h, 08h-0Ch), multiword DMA
         * 0-2 (20h-22h), Ultra DMA 0-5 (40h-45h). */
        bool ok = mode <= 1 || (mode >= 0x08 && mode <= 0x0c) || (mode >= 0x20 && mode <= 0x22) ||
                  (mode >= 0x40 && mode <= 0x45);
        if (!ok) {
            ata_finish_error(r, ATA_ERR_ABRT);
            return;
        }
        d->xfer_mode = mode;
        break;
    }
    case SF_ENABLE_RLA:
    case SF_DISABLE_RLA:
        break;
    default:
        ata_finish_error(r, ATA_ERR_ABRT);
        return;
    }
    ata_finish_ok(r);
}

static void disk_execute(struct ata_dev *d, struct ata_req *r)
{
    const struct ata_taskfile *tf = &r->tf;
    uint64_t lba, count;
    switch (tf->command) {
    case ATA_CMD_IDENTIFY: {
        uint16_t id[256];
        disk_identify(d, id);
        identify_out(r, id);
        return;
    }
    case ATA_CMD_READ_DMA:
    case ATA_CMD_WRITE_DMA:
    case ATA_CMD_READ_DMA_EXT:
    case ATA_CMD_WRITE_DMA_EXT: {
        bool ext = tf->command == ATA_CMD_READ_DMA_EXT || tf->command == ATA_CMD_WRITE_DMA_EXT;
        bool write = tf->command == ATA_CMD_WRITE_DMA || tf->command == ATA_CMD_WRITE_DMA_EXT;
        r->proto = ATA_PROTO_DMA;
        rw_params(tf, ext, &lba, &count);
        disk_rw(d, r, write, lba, count);
        return;
    }
    case ATA_CMD_READ_SECTORS:
    case ATA_CMD_WRITE_SECTORS:
    case ATA_CMD_READ_SECTORS_EXT:
    case ATA_CMD_WRITE_SECTORS_EXT: {
        bool ext = tf->command == ATA_CMD_READ_SECTORS_EXT || tf->command == ATA_CMD_WRITE_SECTORS_EXT;
        bool write = tf->command == ATA_CMD_WRITE_SECTORS || tf->command == ATA_CMD_WRITE_SECTORS_EXT;
        r->proto = write ? ATA_PROTO_PIO_OUT : ATA_PROTO_PIO_IN;
        rw_params(tf, ext, &lba, &count);
        disk_rw(d, r, write, lba, count);
        return;
    }
    case ATA_CMD_READ_FPDMA_QUEUED:
    case ATA_CMD_WRITE_FPDMA_QUEUED:
        /* The sector count is in the feature registers. */
        r->proto = ATA_PROTO_FPDMA;
        lba = tf->lba & 0xffffffffffffULL;
        count = tf->feature ? tf->feature : 65536;
        disk_rw(d, r, tf->command == ATA_CMD_WRITE_FPDMA_QUEUED, lba, count);
        return;
    case ATA_CMD_READ_VERIFY:
    case ATA_CMD_READ_VERIFY_EXT:
        rw_params(tf, tf->command == ATA_CMD_READ_VERIFY_EXT, &lba, &count);
        if (lba > d->sectors || count > d->sectors - lba) {
            r->lba = lba;
            ata_finish_error(r, ATA_ERR_IDNF | ATA_ERR_ABRT);
        } else {
            ata_finish_ok(r);
        }
        return;
    case ATA_CMD_FLUSH_CACHE:
    case ATA_CMD_FLUSH_CACHE_EXT: {
        int ret = blk_flush(d->blk, flush_done, r);
        if (ret < 0) {
            log_warn("ata: cannot flush: %s", strerror(-ret));
            ata_finish_error(r, ATA_ERR_ABRT);
        }
        return;
    }
    case ATA_CMD_READ_NATIVE_MAX_EXT:
        r->lba = d->sectors ? d->sectors - 1 : 0;
        ata_finish_ok(r);
        return;
    case ATA_CMD_READ_NATIVE_MAX: {
        uint64_t max = MIN(d->sectors, LBA28_MAX + 1) - (d->sectors ? 1 : 0);
        r->lba = max & 0xffffff;
        r->device = (uint8_t)(0x40 | ((max >> 24) & 0x0f));
        ata_finish_ok(r);
        return;
    }
    case ATA_CMD_READ_LOG_EXT:
        read_log(d, r);
        return;
    case ATA_CMD_SET_FEATURES:
        set_features(d, r);
        return;
    case ATA_CMD_SET_MULTIPLE: {
        uint8_t n = (uint8_t)tf->count;
        if (n > MAX_MULTIPLE || (n & (n - 1))) {
            ata_finish_error(r, ATA_ERR_ABRT);
            return;
        }
        d->multiple = n;
        ata_finish_ok(r);
        return;
    }
    case ATA_CMD_INIT_DEV_PARAMS:
    case ATA_CMD_STANDBY_IMMEDIATE:
    case ATA_CMD_IDLE_IMMEDIATE:
    case ATA_CMD_STANDBY:
    case ATA_CMD_IDLE:
        ata_finish_ok(r);
        return;
    case ATA_CMD_CHECK_POWER_MODE:
        r->count = 0xff;                  /* active or idle */
        ata_finish_ok(r);
        return;
    default:
        /* IDENTIFY PACKET DEVICE, PACKET, NOP and everything not
         * implemented: command aborted. */
        ata_finish_error(r, ATA_ERR_ABRT);
        return;
    }
}

static void set_signature(struct ata_dev *d, struct ata_req *r)
{
    uint32_t sig = ata_signature(d);
    r->count = (uint16_t)(sig & 0xff);
    r->lba = sig >> 8;
}

void ata_execute(struct ata_dev *d, struct ata_req *r)
{
    r->dev = d;
    r->proto = ATA_PROTO_NODATA;
    r->status = ATA_STAT_DRDY;
    r->error = 0;
    r->count = 0;
    r->lba = 0;
    r->device = 0;
    r->transferred = 0;
    r->flush_after = false;

    switch (r->tf.command) {
    case ATA_CMD_EXEC_DEVICE_DIAG:
        /* Diagnostic code 01h: device 0 passed; the signature follows. */
        set_signature(d, r);
        r->status = d->atapi ? 0 : ATA_STAT_DRDY;
        r->error = 0x01;
        r->done(r);
        return;
    case ATA_CMD_DEVICE_RESET:
        if (!d->atapi) {
            ata_finish_error(r, ATA_ERR_ABRT);
            return;
        }
        ata_dev_reset(d);
        set_signature(d, r);
        r->status = 0;
        r->error = 0x01;
        r->done(r);
        return;
    }

    if (d->atapi) {
        switch (r->tf.command) {
        case ATA_CMD_IDENTIFY_PACKET: {
            uint16_t id[256];
            atapi_identify(d, id);
            identify_out(r, id);
            return;
        }
        case ATA_CMD_PACKET:
            atapi_packet(d, r);
            return;
        case ATA_CMD_SET_FEATURES:
            set_features(d, r);
            return;
        case ATA_CMD_CHECK_POWER_MODE:
            r->count = 0xff;
            ata_finish_ok(r);
            return;
        case ATA_CMD_IDLE_IMMEDIATE:
        case ATA_CMD_STANDBY_IMMEDIATE:
            ata_finish_ok(r);
            return;
        case ATA_CMD_IDENTIFY:
            /* A packet device answers IDENTIFY DEVICE with its signature
             * and an abort, which is how hosts tell it apart. */
            set_signature(d, r);
            r->status = ATA_STAT_DRDY | ATA_STAT_ERR;
            r->error = ATA_ERR_ABRT;
            r->done(r);
            return;
        default:
            ata_finish_error(r, ATA_ERR_ABRT);
            return;
        }
    }
    disk_execute(d, r);
}

/* --- set-up -------------------------------------------------------------- */

static void default_serial(char *out, size_t len, const char *prefix, const char *path)
{
    /* A stable serial from the path (FNV-1a), so guests naming disks by id
     * see the same one every boot. */
    uint32_t h = 2166136261u;
    for (const char *c = path ? path : ""; *c; c++)
        h = (h ^ (uint8_t)*c) * 16777619u;
    snprintf(out, len, "%s%08X", prefix, h);
}

int ata_disk_init(struct ata_dev *d, struct evloop *loop, const char *path, const char *format, bool read_only,
                  char *err, size_t errlen)
{
    memset(d, 0, sizeof(*d));
    d->loop = loop;
    d->blk = blk_open_format(loop, path, format, read_only, err, errlen);
    if (!d->blk)
        return -1;
    d->sectors = blk_size(d->blk) / ATA_SECTOR_SIZE;
    if (d->sectors == 0) {
        snprintf(err, errlen, "%s: disk image smaller than one sector", path);
        blk_close(d->blk);
        d->blk = NULL;
        return -1;
    }
    d->path = strdup(path);
    if (!d->path) {
        snprintf(err, errlen, "out of memory");
        blk_close(d->blk);
        d->blk = NULL;
        return -1;
    }
    d->write_cache = true;
    default_serial(d->serial, sizeof(d->serial), "BURROW-HD-", path);
    snprintf(d->firmware, sizeof(d->firmware), "1.0");
    snprintf(d->model, sizeof(d->model), "BURROW HARDDISK");
    return 0;
}

void ata_dev_drain(struct ata_dev *d)
{
    if (d->blk)
        blk_drain(d->blk);
}

void ata_dev_reset(struct ata_dev *d)
{
    ata_dev_drain(d);
    d->ncq_err.valid = false;
    d->xfer_mode = 0;
    d->multiple = 0;
    if (!d->atapi)
        d->write_cache = true;
}

void ata_dev_close(struct ata_dev *d)
{
    struct blk *b = d->blk;
    d->blk = NULL;
    if (b)
        blk_close(b);
    free(d->path);
    d->path = NULL;
}
