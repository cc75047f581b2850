/* The USB mass-storage device on the xHCI controller, driven by the
 * spec-written xHCI test driver with Bulk-Only Transport and SCSI commands
 * built here from the BOT 1.0, SPC-4 and SBC-3 texts: descriptors and
 * class requests, INQUIRY and its VPD pages, capacities, reads of known
 * sectors of a raw image, writes read back (through the image file too),
 * a read-only image refusing writes, out-of-range LBAs, the BOT cases
 * where host and device disagree on the data, malformed CBWs that stall
 * both pipes until Reset Recovery, and a read taken back mid-way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/usb/msd.h"
#include "devices/usb/usb.h"
#include "devices/usb/xhci.h"
#include "devices/util.h"
#include "support/harness_platform.h"
#include "support/xhci_driver.h"

#define RAM_SIZE   (16u << 20)
#define MMIO_BASE  0xe0000000ULL
#define HEAP_BASE  (1u << 20)

#define PORT_RW     1
#define PORT_RO     2
#define DCI_IN      3          /* endpoint 1 IN */
#define DCI_OUT     4          /* endpoint 2 OUT */
#define EP_IN_ADDR  0x81
#define EP_OUT_ADDR 0x02

#define SECTORS     2048       /* 1 MiB image */
#define DMA_SIZE    (256u << 10)
#define TRB_MAX     (64u << 10)

#define CSW_GOOD    0
#define CSW_FAILED  1
#define CSW_PHASE   2

struct fx {
    struct harness *h;
    struct pci_bus bus;
    struct xhci *xhci;
    struct usb_msd *rw, *ro;
    char path_rw[256], path_ro[256];
    struct xhci_drv d;
    unsigned slot;              /* the device the helpers below talk to */
    uint64_t dma;
    uint32_t tag;
};

static const char *tmpdir(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : P_tmpdir;
}

/* Byte j of sector s of the test images. */
static uint8_t pattern(uint64_t s, unsigned j)
{
    return (uint8_t)(s * 31 + j * 7 + (s >> 8));
}

static void make_image(char *path, size_t len)
{
    snprintf(path, len, "%s/burrow-msd-XXXXXX", tmpdir());
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    uint8_t sec[512];
    for (uint64_t s = 0; s < SECTORS; s++) {
        for (unsigned j = 0; j < sizeof(sec); j++)
            sec[j] = pattern(s, j);
        assert_int_equal(pwrite(fd, sec, sizeof(sec), (off_t)(s * 512)), (ssize_t)sizeof(sec));
    }
    close(fd);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->h = harness_new(RAM_SIZE);
    assert_non_null(f->h);
    harness_pci_bus_init(&f->bus, f->h);
    char err[256] = "";
    f->xhci = xhci_create(&f->h->plat, &f->bus, -1, err, sizeof(err));
    if (!f->xhci)
        fail_msg("xhci_create: %s", err);
    make_image(f->path_rw, sizeof(f->path_rw));
    make_image(f->path_ro, sizeof(f->path_ro));
    f->rw = usb_msd_new(f->h->plat.loop, f->path_rw, NULL, false, 0, err, sizeof(err));
    if (!f->rw)
        fail_msg("usb_msd_new: %s", err);
    f->ro = usb_msd_new(f->h->plat.loop, f->path_ro, "raw", true, 1, err, sizeof(err));
    if (!f->ro)
        fail_msg("usb_msd_new: %s", err);
    assert_int_equal(xhci_attach(f->xhci, usb_msd_device(f->rw), 0, err, sizeof(err)), PORT_RW);
    assert_int_equal(xhci_attach(f->xhci, usb_msd_device(f->ro), 0, err, sizeof(err)), PORT_RO);
    assert_int_equal(xd_probe(&f->d, f->h, &f->bus, MMIO_BASE, HEAP_BASE, RAM_SIZE), 0);
    assert_int_equal(xd_reset(&f->d), 0);
    assert_int_equal(xd_start(&f->d, 0, 0, 0), 0);
    f->dma = xd_alloc(&f->d, DMA_SIZE, 4096);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    xhci_destroy(f->xhci);
    usb_msd_free(f->rw);
    usb_msd_free(f->ro);
    unlink(f->path_rw);
    unlink(f->path_ro);
    harness_free(f->h);
    free(f);
    return 0;
}

/* Enumerates the device on port as usb-storage would and makes it the one
 * the helpers use: configuration 1, both bulk endpoints. */
static void bring_up(struct fx *f, unsigned port)
{
    f->slot = xd_enumerate(&f->d, port);
    assert_true(f->slot != 0);
    assert_int_equal(XD_PORT_SPEED(xd_portsc(&f->d, port)), 3);     /* high speed */
    assert_int_equal(xd_configure_ep(&f->d, f->slot, DCI_IN, XD_EP_BULK_IN, 512, 0), XD_CC_SUCCESS);
    assert_int_equal(xd_configure_ep(&f->d, f->slot, DCI_OUT, XD_EP_BULK_OUT, 512, 0), XD_CC_SUCCESS);
    xd_drain_events(&f->d);
}

/* One bulk transfer of len bytes; returns the completion code, the bytes
 * moved in *actual. */
static int bulk(struct fx *f, bool in, void *buf, uint32_t len, uint32_t *actual)
{
    assert_true(len <= DMA_SIZE);
    unsigned dci = in ? DCI_IN : DCI_OUT;
    if (!in)
        xd_mem_write(&f->d, f->dma, buf, len);
    /* A TRB moves at most 64 KiB (xHCI 6.4.1.1): longer ones are a
     * chain, its last TRB the one that interrupts. */
    uint32_t off = 0;
    while (len - off > TRB_MAX) {
        xd_ring_put(&f->d, &f->d.slots[f->slot].ep[dci], f->dma + off, TRB_MAX,
                    XD_TRB_TYPE(XD_TRB_NORMAL) | XD_TRB_CH | (in ? XD_TRB_ISP : 0));
        off += TRB_MAX;
    }
    xd_queue_normal(&f->d, f->slot, dci, f->dma + off, len - off);
    uint32_t residual = 0;
    int cc = xd_wait_transfer(&f->d, f->slot, dci, &residual, 5000);
    uint32_t got = cc == XD_CC_SUCCESS || cc == XD_CC_SHORT_PACKET ? len - residual : 0;
    if (in && got)
        xd_mem_read(&f->d, f->dma, buf, got);
    if (actual)
        *actual = got;
    return cc;
}

/* A CBW (BOT 5.1) for cdb with dCBWDataTransferLength len. */
static void make_cbw(uint8_t cbw[31], uint32_t tag, const uint8_t *cdb, uint8_t cdb_len, bool in, uint32_t len)
{
    memset(cbw, 0, 31);
    st_le(cbw, 4, 0x43425355u);
    st_le(cbw + 4, 4, tag);
    st_le(cbw + 8, 4, len);
    cbw[12] = in ? 0x80 : 0;
    cbw[14] = cdb_len;
    memcpy(cbw + 15, cdb, cdb_len);
}

/* Reads the CSW; checks its signature and tag.  Returns bCSWStatus. */
static int read_csw(struct fx *f, uint32_t *residue)
{
    uint8_t csw[13];
    uint32_t got = 0;
    assert_int_equal(bulk(f, true, csw, sizeof(csw), &got), XD_CC_SUCCESS);
    assert_int_equal(got, 13);
    assert_int_equal(ld_le(csw, 4), 0x53425355u);
    assert_int_equal(ld_le(csw + 4, 4), f->tag);
    if (residue)
        *residue = (uint32_t)ld_le(csw + 8, 4);
    return csw[12];
}

/* A whole command: CBW, data stage of len bytes in the direction given
 * (none for len 0), CSW.  Returns bCSWStatus; *actual gets the data bytes
 * moved, *residue dCSWDataResidue. */
static int scsi(struct fx *f, const uint8_t *cdb, uint8_t cdb_len, bool in, void *buf, uint32_t len,
                uint32_t *actual, uint32_t *residue)
{
    uint8_t cbw[31];
    make_cbw(cbw, ++f->tag, cdb, cdb_len, in, len);
    assert_int_equal(bulk(f, false, cbw, sizeof(cbw), NULL), XD_CC_SUCCESS);
    uint32_t got = 0;
    if (len) {
        int cc = bulk(f, in, buf, len, &got);
        assert_true(cc == XD_CC_SUCCESS || (in && cc == XD_CC_SHORT_PACKET));
    }
    if (actual)
        *actual = got;
    return read_csw(f, residue);
}

static void request_sense(struct fx *f, uint8_t key, uint8_t asc, uint8_t ascq)
{
    const uint8_t cdb[6] = { 0x03, 0, 0, 0, 18, 0 };
    uint8_t s[18];
    uint32_t got;
    assert_int_equal(scsi(f, cdb, 6, true, s, sizeof(s), &got, NULL), CSW_GOOD);
    assert_int_equal(got, 18);
    assert_int_equal(s[0], 0x70);
    assert_int_equal(s[2] & 0x0f, key);
    assert_int_equal(s[12], asc);
    assert_int_equal(s[13], ascq);
}

static void rw10(uint8_t cdb[10], bool write, uint32_t lba, uint16_t n)
{
    memset(cdb, 0, 10);
    cdb[0] = write ? 0x2a : 0x28;
    st_be(cdb + 2, 4, lba);
    st_be(cdb + 7, 2, n);
}

static void check_sectors(const uint8_t *buf, uint64_t first, unsigned n)
{
    for (unsigned s = 0; s < n; s++)
        for (unsigned j = 0; j < 512; j++)
            if (buf[s * 512 + j] != pattern(first + s, j))
                fail_msg("sector %llu byte %u: %#x", (unsigned long long)(first + s), j, buf[s * 512 + j]);
}

/* READ(10) of n sectors at lba gives the images' pattern. */
static void expect_pattern(struct fx *f, uint32_t lba, uint16_t n)
{
    static uint8_t buf[DMA_SIZE];
    uint8_t cdb[10];
    uint32_t got, residue;
    rw10(cdb, false, lba, n);
    assert_int_equal(scsi(f, cdb, 10, true, buf, n * 512u, &got, &residue), CSW_GOOD);
    assert_int_equal(got, n * 512u);
    assert_int_equal(residue, 0);
    check_sectors(buf, lba, n);
}

/* Descriptors as usb-storage reads them, the class requests, INQUIRY and
 * its VPD pages, READ CAPACITY (10) and (16), READ FORMAT CAPACITIES. */
static void test_identity(void **state)
{
    struct fx *f = *state;
    bring_up(f, PORT_RW);
    struct xhci_drv *d = &f->d;
    uint8_t dev[18], cfg[32];
    uint32_t got;
    assert_int_equal(xd_control(d, f->slot, 0x80, 6, USB_DT_DEVICE << 8, 0, dev, 18, &got), XD_CC_SUCCESS);
    assert_int_equal(ld_le(dev + 2, 2), 0x0200);                  /* USB 2.0 */
    assert_int_equal(xd_control(d, f->slot, 0x80, 6, USB_DT_CONFIG << 8, 0, cfg, 32, &got), XD_CC_SUCCESS);
    assert_int_equal(got, 32);
    assert_int_equal(cfg[9 + 4], 2);                              /* two endpoints */
    assert_int_equal(cfg[9 + 5], 0x08);                           /* mass storage */
    assert_int_equal(cfg[9 + 6], 0x06);                           /* SCSI transparent */
    assert_int_equal(cfg[9 + 7], 0x50);                           /* Bulk-Only */
    assert_int_equal(cfg[18 + 2], EP_IN_ADDR);
    assert_int_equal(cfg[18 + 3], 2);                             /* bulk */
    assert_int_equal(ld_le(cfg + 18 + 4, 2), 512);
    assert_int_equal(cfg[25 + 2], EP_OUT_ADDR);
    assert_int_equal(cfg[25 + 3], 2);
    /* The serial number string: at least 12 hex digits (BOT 4.1.1). */
    uint8_t s[64];
    assert_int_equal(xd_control(d, f->slot, 0x80, 6, USB_DT_STRING << 8 | dev[16], 0x409, s, sizeof(s), &got),
                     XD_CC_SUCCESS);
    assert_true(s[0] >= 2 + 2 * 12);
    for (unsigned i = 2; i < s[0]; i += 2)
        assert_non_null(strchr("0123456789ABCDEF", s[i]));
    /* Get Max LUN: one LUN.  A wrong wIndex stalls. */
    uint8_t lun = 0xff;
    assert_int_equal(xd_control(d, f->slot, 0xa1, 0xfe, 0, 0, &lun, 1, &got), XD_CC_SUCCESS);
    assert_int_equal(got, 1);
    assert_int_equal(lun, 0);
    assert_int_equal(xd_control(d, f->slot, 0xa1, 0xfe, 0, 1, &lun, 1, &got), XD_CC_STALL);
    assert_int_equal(xd_clear_halt(d, f->slot, 1, 0), XD_CC_SUCCESS);   /* endpoint 0: just a fresh ring */

    const uint8_t inquiry[6] = { 0x12, 0, 0, 0, 36, 0 };
    uint8_t q[255];
    assert_int_equal(scsi(f, inquiry, 6, true, q, 36, &got, NULL), CSW_GOOD);
    assert_int_equal(got, 36);
    assert_int_equal(q[0], 0x00);                                 /* direct access block device */
    assert_int_equal(q[1], 0x80);                                 /* removable */
    assert_int_equal(q[3] & 0x0f, 2);
    assert_memory_equal(q + 8, "BURROW  ", 8);
    assert_memory_equal(q + 16, "USB DISK        ", 16);
    /* VPD: the supported list, the serial, the identification. */
    const uint8_t vpd0[6] = { 0x12, 1, 0x00, 0, 255, 0 };
    assert_int_equal(scsi(f, vpd0, 6, true, q, 255, &got, NULL), CSW_GOOD);
    assert_int_equal(got, 4 + q[3]);
    assert_non_null(memchr(q + 4, 0x80, q[3]));
    assert_non_null(memchr(q + 4, 0x83, q[3]));
    const uint8_t vpd80[6] = { 0x12, 1, 0x80, 0, 255, 0 };
    assert_int_equal(scsi(f, vpd80, 6, true, q, 255, &got, NULL), CSW_GOOD);
    assert_int_equal(q[1], 0x80);
    assert_true(q[3] >= 12);
    assert_int_equal(got, 4 + q[3]);
    const uint8_t vpd83[6] = { 0x12, 1, 0x83, 0, 255, 0 };
    assert_int_equal(scsi(f, vpd83, 6, true, q, 255, &got, NULL), CSW_GOOD);
    assert_int_equal(q[1], 0x83);
    assert_int_equal(got, 4 + ld_be(q + 2, 2));
    assert_int_equal(4 + 4 + q[7], got);                          /* one designator fills it */
    /* An unknown page: ILLEGAL REQUEST, INVALID FIELD IN CDB. */
    const uint8_t vpd_bad[6] = { 0x12, 1, 0xb7, 0, 255, 0 };
    uint32_t residue;
    assert_int_equal(scsi(f, vpd_bad, 6, true, q, 255, &got, &residue), CSW_FAILED);
    assert_int_equal(got, 0);
    assert_int_equal(residue, 255);
    request_sense(f, 0x5, 0x24, 0);

    const uint8_t cap10[10] = { 0x25 };
    uint8_t c[32];
    assert_int_equal(scsi(f, cap10, 10, true, c, 8, &got, NULL), CSW_GOOD);
    assert_int_equal(ld_be(c, 4), SECTORS - 1);
    assert_int_equal(ld_be(c + 4, 4), 512);
    uint8_t cap16[16] = { 0x9e, 0x10 };
    st_be(cap16 + 10, 4, 32);
    assert_int_equal(scsi(f, cap16, 16, true, c, 32, &got, NULL), CSW_GOOD);
    assert_int_equal(got, 32);
    assert_int_equal(ld_be(c, 8), SECTORS - 1);
    assert_int_equal(ld_be(c + 8, 4), 512);
    const uint8_t rfc[10] = { 0x23, 0, 0, 0, 0, 0, 0, 0, 12, 0 };
    assert_int_equal(scsi(f, rfc, 10, true, c, 12, &got, NULL), CSW_GOOD);
    assert_int_equal(ld_be(c + 4, 4), SECTORS);
    assert_int_equal(c[8] & 3, 2);                                /* formatted media */
    const uint8_t tur[6] = { 0 };
    assert_int_equal(scsi(f, tur, 6, false, NULL, 0, NULL, NULL), CSW_GOOD);
    /* MODE SENSE: no write protection, the caching page with WCE. */
    const uint8_t ms6[6] = { 0x1a, 0, 0x3f, 0, 192, 0 };
    assert_int_equal(scsi(f, ms6, 6, true, q, 192, &got, &residue), CSW_GOOD);
    assert_int_equal(got, q[0] + 1);
    assert_int_equal(residue, 192 - got);
    assert_int_equal(q[2] & 0x80, 0);
    assert_int_equal(q[4 + q[3]] & 0x3f, 0x08);
    assert_true(q[4 + q[3] + 2] & 0x04);
}

/* Reads of known sectors, small and larger than the device's 64 KiB
 * chunks, with READ(10), (12) and (16); a write read back through the
 * device and found in the image file; SYNCHRONIZE CACHE. */
static void test_read_write(void **state)
{
    struct fx *f = *state;
    bring_up(f, PORT_RW);
    static uint8_t buf[DMA_SIZE];
    uint8_t cdb[16];
    uint32_t got, residue;
    expect_pattern(f, 5, 1);
    expect_pattern(f, 1000, 300);                                 /* 150 KiB: three chunks */
    memset(cdb, 0, 16);
    cdb[0] = 0xa8;                                                /* READ(12) */
    st_be(cdb + 2, 4, SECTORS - 2);
    st_be(cdb + 6, 4, 2);
    assert_int_equal(scsi(f, cdb, 12, true, buf, 1024, &got, NULL), CSW_GOOD);
    check_sectors(buf, SECTORS - 2, 2);
    memset(cdb, 0, 16);
    cdb[0] = 0x88;                                                /* READ(16) */
    st_be(cdb + 2, 8, 0);
    st_be(cdb + 10, 4, 3);
    assert_int_equal(scsi(f, cdb, 16, true, buf, 1536, &got, NULL), CSW_GOOD);
    check_sectors(buf, 0, 3);

    /* WRITE(10) of 130 sectors from sector 100, then read back. */
    for (unsigned i = 0; i < 130 * 512; i++)
        buf[i] = (uint8_t)(i * 13 + 5);
    rw10(cdb, true, 100, 130);
    assert_int_equal(scsi(f, cdb, 10, false, buf, 130 * 512, &got, &residue), CSW_GOOD);
    assert_int_equal(residue, 0);
    memset(buf, 0, 130 * 512);
    rw10(cdb, false, 100, 130);
    assert_int_equal(scsi(f, cdb, 10, true, buf, 130 * 512, &got, NULL), CSW_GOOD);
    for (unsigned i = 0; i < 130 * 512; i++)
        if (buf[i] != (uint8_t)(i * 13 + 5))
            fail_msg("byte %u read back as %#x", i, buf[i]);
    /* WRITE(16) with FUA of one sector, and SYNCHRONIZE CACHE(10). */
    memset(buf, 0xa5, 512);
    memset(cdb, 0, 16);
    cdb[0] = 0x8a;
    cdb[1] = 0x08;
    st_be(cdb + 2, 8, SECTORS - 1);
    st_be(cdb + 10, 4, 1);
    assert_int_equal(scsi(f, cdb, 16, false, buf, 512, &got, NULL), CSW_GOOD);
    const uint8_t sync10[10] = { 0x35 };
    assert_int_equal(scsi(f, sync10, 10, false, NULL, 0, NULL, NULL), CSW_GOOD);
    /* The bytes are in the image file. */
    FILE *img = fopen(f->path_rw, "rb");
    assert_non_null(img);
    uint8_t sec[512];
    assert_int_equal(fseek(img, 100 * 512 + 512, SEEK_SET), 0);
    assert_int_equal(fread(sec, 1, 512, img), 512);
    for (unsigned j = 0; j < 512; j++)
        assert_int_equal(sec[j], (uint8_t)((512 + j) * 13 + 5));
    assert_int_equal(fseek(img, (SECTORS - 1) * 512L, SEEK_SET), 0);
    assert_int_equal(fread(sec, 1, 512, img), 512);
    assert_int_equal(sec[0], 0xa5);
    assert_int_equal(sec[511], 0xa5);
    fclose(img);
    /* Sectors around the write are untouched. */
    expect_pattern(f, 99, 1);
    expect_pattern(f, 230, 1);
}

/* A read-only image: WP in MODE SENSE, writes refused with DATA PROTECT /
 * WRITE PROTECTED and their data dropped, reads still fine; a second
 * writer of an image in use is refused by its lock. */
static void test_readonly(void **state)
{
    struct fx *f = *state;
    bring_up(f, PORT_RO);
    static uint8_t buf[4096];
    uint8_t cdb[10];
    uint32_t got, residue;
    const uint8_t ms10[10] = { 0x5a, 0, 0x08, 0, 0, 0, 0, 0, 255, 0 };
    assert_int_equal(scsi(f, ms10, 10, true, buf, 255, &got, NULL), CSW_GOOD);
    assert_int_equal(got, ld_be(buf, 2) + 2);
    assert_int_equal(buf[3] & 0x80, 0x80);                        /* WP */
    assert_int_equal(buf[8] & 0x3f, 0x08);
    memset(buf, 0x5a, sizeof(buf));
    rw10(cdb, true, 7, 8);
    assert_int_equal(scsi(f, cdb, 10, false, buf, 4096, &got, &residue), CSW_FAILED);
    assert_int_equal(residue, 4096);
    request_sense(f, 0x7, 0x27, 0);
    expect_pattern(f, 7, 8);
    /* The sense went with REQUEST SENSE. */
    request_sense(f, 0, 0, 0);

    char err[256] = "";
    struct usb_msd *again = usb_msd_new(f->h->plat.loop, f->path_rw, NULL, false, 2, err, sizeof(err));
    assert_null(again);
    assert_non_null(strstr(err, "in use"));
}

/* LBAs past the end, an unknown command, and the BOT cases where host and
 * device disagree about the data (BOT 6.7). */
static void test_errors(void **state)
{
    struct fx *f = *state;
    bring_up(f, PORT_RW);
    static uint8_t buf[8192];
    uint8_t cdb[16];
    uint32_t got, residue;
    /* Starting at the end, and crossing it. */
    rw10(cdb, false, SECTORS, 1);
    assert_int_equal(scsi(f, cdb, 10, true, buf, 512, &got, &residue), CSW_FAILED);
    assert_int_equal(got, 0);
    assert_int_equal(residue, 512);
    request_sense(f, 0x5, 0x21, 0);
    rw10(cdb, true, SECTORS - 1, 2);
    assert_int_equal(scsi(f, cdb, 10, false, buf, 1024, &got, &residue), CSW_FAILED);
    assert_int_equal(residue, 1024);
    request_sense(f, 0x5, 0x21, 0);
    memset(cdb, 0, 16);
    cdb[0] = 0x88;
    st_be(cdb + 2, 8, UINT64_MAX);                                /* no wrap-around */
    st_be(cdb + 10, 4, 2);
    assert_int_equal(scsi(f, cdb, 16, true, buf, 1024, &got, NULL), CSW_FAILED);
    request_sense(f, 0x5, 0x21, 0);
    /* An unknown operation code. */
    const uint8_t unknown[6] = { 0xc5 };
    assert_int_equal(scsi(f, unknown, 6, false, NULL, 0, NULL, NULL), CSW_FAILED);
    request_sense(f, 0x5, 0x20, 0);

    /* Case 5, Hi > Di: the data the device has, a short packet, the
     * difference as residue. */
    const uint8_t inquiry[6] = { 0x12, 0, 0, 0, 36, 0 };
    assert_int_equal(scsi(f, inquiry, 6, true, buf, 100, &got, &residue), CSW_GOOD);
    assert_int_equal(got, 36);
    assert_int_equal(residue, 64);
    /* Case 2, Hn < Di: no data moves, phase error. */
    rw10(cdb, false, 0, 1);
    assert_int_equal(scsi(f, cdb, 10, true, NULL, 0, NULL, NULL), CSW_PHASE);
    /* Case 7, Hi < Di: only what the host expects, phase error. */
    rw10(cdb, false, 10, 2);
    assert_int_equal(scsi(f, cdb, 10, true, buf, 512, &got, NULL), CSW_PHASE);
    assert_int_equal(got, 512);
    check_sectors(buf, 10, 1);
    /* Case 10, Ho <> Di: the host's data is dropped, phase error. */
    memset(buf, 0, 512);
    rw10(cdb, false, 3, 1);
    assert_int_equal(scsi(f, cdb, 10, false, buf, 512, &got, NULL), CSW_PHASE);
    /* Case 13, Ho < Do: nothing written, phase error. */
    rw10(cdb, true, 3, 2);
    assert_int_equal(scsi(f, cdb, 10, false, buf, 512, &got, NULL), CSW_PHASE);
    expect_pattern(f, 3, 1);
    /* Case 4/5 ending in full transfers: READ CAPACITY's 8 bytes fill the
     * host's first 8-byte transfer; the next IN stalls to end the data
     * stage, and after clearing the halt the CSW carries the residue. */
    const uint8_t cap10[10] = { 0x25 };
    uint8_t cbw[31];
    make_cbw(cbw, ++f->tag, cap10, 10, true, 16);
    assert_int_equal(bulk(f, false, cbw, 31, NULL), XD_CC_SUCCESS);
    assert_int_equal(bulk(f, true, buf, 8, &got), XD_CC_SUCCESS);
    assert_int_equal(ld_be(buf, 4), SECTORS - 1);
    assert_int_equal(bulk(f, true, buf, 8, &got), XD_CC_STALL);
    assert_int_equal(xd_clear_halt(&f->d, f->slot, DCI_IN, EP_IN_ADDR), XD_CC_SUCCESS);
    assert_int_equal(read_csw(f, &residue), CSW_GOOD);
    assert_int_equal(residue, 8);
}

/* Reset Recovery (BOT 5.3.4): Bulk-Only Mass Storage Reset, then clearing
 * the halt of both pipes. */
static void reset_recovery(struct fx *f)
{
    assert_int_equal(xd_control(&f->d, f->slot, 0x21, 0xff, 0, 0, NULL, 0, NULL), XD_CC_SUCCESS);
    assert_int_equal(xd_clear_halt(&f->d, f->slot, DCI_IN, EP_IN_ADDR), XD_CC_SUCCESS);
    assert_int_equal(xd_clear_halt(&f->d, f->slot, DCI_OUT, EP_OUT_ADDR), XD_CC_SUCCESS);
}

/* An invalid CBW stalls both pipes (BOT 6.6.1), and they keep stalling
 * through a mere CLEAR_FEATURE until Reset Recovery. */
static void invalid_cbw(struct fx *f, const uint8_t *cbw, uint32_t len)
{
    uint8_t buf[64];
    memcpy(buf, cbw, len);
    assert_int_equal(bulk(f, false, buf, len, NULL), XD_CC_STALL);
    assert_int_equal(bulk(f, true, buf, 13, NULL), XD_CC_STALL);
    uint8_t st[2];
    uint32_t got;
    assert_int_equal(xd_control(&f->d, f->slot, 0x82, 0, 0, EP_OUT_ADDR, st, 2, &got), XD_CC_SUCCESS);
    assert_int_equal(st[0] & 1, 1);                               /* halted */
    /* Clearing the halt alone does not do: the next CBW stalls again. */
    assert_int_equal(xd_clear_halt(&f->d, f->slot, DCI_OUT, EP_OUT_ADDR), XD_CC_SUCCESS);
    const uint8_t tur[6] = { 0 };
    uint8_t good[31];
    make_cbw(good, ++f->tag, tur, 6, false, 0);
    assert_int_equal(bulk(f, false, good, 31, NULL), XD_CC_STALL);
    reset_recovery(f);
    assert_int_equal(scsi(f, tur, 6, false, NULL, 0, NULL, NULL), CSW_GOOD);
    expect_pattern(f, 42, 1);
}

static void test_malformed_cbw(void **state)
{
    struct fx *f = *state;
    bring_up(f, PORT_RW);
    const uint8_t tur[6] = { 0 };
    uint8_t cbw[40];
    make_cbw(cbw, 1, tur, 6, false, 0);
    cbw[0] = 'X';                                                 /* bad signature */
    invalid_cbw(f, cbw, 31);
    make_cbw(cbw, 2, tur, 6, false, 0);
    invalid_cbw(f, cbw, 30);                                      /* short */
    make_cbw(cbw, 3, tur, 6, false, 0);
    invalid_cbw(f, cbw, 32);                                      /* long */
    /* Valid but not meaningful (LUN 3, CDB length 0): not run, phase error. */
    make_cbw(cbw, ++f->tag, tur, 6, false, 0);
    cbw[13] = 3;
    assert_int_equal(bulk(f, false, cbw, 31, NULL), XD_CC_SUCCESS);
    assert_int_equal(read_csw(f, NULL), CSW_PHASE);
    make_cbw(cbw, ++f->tag, tur, 0, false, 0);
    assert_int_equal(bulk(f, false, cbw, 31, NULL), XD_CC_SUCCESS);
    assert_int_equal(read_csw(f, NULL), CSW_PHASE);
    /* A CSW read with no command: the IN pipe stalls; the next command runs. */
    uint8_t csw[13];
    assert_int_equal(bulk(f, true, csw, 13, NULL), XD_CC_STALL);
    assert_int_equal(xd_clear_halt(&f->d, f->slot, DCI_IN, EP_IN_ADDR), XD_CC_SUCCESS);
    assert_int_equal(scsi(f, tur, 6, false, NULL, 0, NULL, NULL), CSW_GOOD);
}

/* A read taken back while the image works on it (Stop Endpoint, as a
 * host does when a command times out): nothing lands in the transfer's
 * buffer afterwards, and after Bulk-Only Mass Storage Reset the device
 * takes commands again, the first waiting for the old read to finish. */
static void test_cancel(void **state)
{
    struct fx *f = *state;
    bring_up(f, PORT_RW);
    struct xhci_drv *d = &f->d;
    uint8_t cdb[10], cbw[31];
    rw10(cdb, false, 0, 100);
    make_cbw(cbw, ++f->tag, cdb, 10, true, 100 * 512);
    assert_int_equal(bulk(f, false, cbw, sizeof(cbw), NULL), XD_CC_SUCCESS);
    static uint8_t buf[100 * 512];
    memset(buf, 0xee, sizeof(buf));
    xd_mem_write(d, f->dma, buf, sizeof(buf));
    xd_queue_normal(d, f->slot, DCI_IN, f->dma, sizeof(buf));
    assert_int_equal(xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_STOP_EP) | f->slot << 24 | DCI_IN << 16, NULL),
                     XD_CC_SUCCESS);
    uint32_t residual;
    assert_int_equal(xd_wait_transfer(d, f->slot, DCI_IN, &residual, 1000), XD_CC_STOPPED);
    assert_int_equal(residual, sizeof(buf));
    struct xd_ring *r = &d->slots[f->slot].ep[DCI_IN];
    assert_int_equal(xd_command(d, (r->base + 16ull * r->enq) | (r->cycle ? 1 : 0), 0,
                                XD_TRB_TYPE(XD_CMD_SET_TR_DEQ) | f->slot << 24 | DCI_IN << 16, NULL),
                     XD_CC_SUCCESS);
    assert_int_equal(xd_control(d, f->slot, 0x21, 0xff, 0, 0, NULL, 0, NULL), XD_CC_SUCCESS);
    expect_pattern(f, 42, 1);
    /* The old read has finished by now; its data went nowhere. */
    static uint8_t after[100 * 512];
    xd_mem_read(d, f->dma + 512, after, sizeof(after) - 512);
    assert_memory_equal(after, buf + 512, sizeof(after) - 512);
    expect_pattern(f, 0, 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_cbw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
