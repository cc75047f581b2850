/* The ATAPI CD/DVD drive behind the AHCI controller, driven with PACKET
 * commands by the spec-written test driver: identification, reads of a
 * synthetic image of 2048-byte blocks, TOC, mode pages, configuration,
 * events, and sense data for errors, an empty drive, media changes and
 * ejects (MMC-6, SPC-4). */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/ahci.h"
#include "support/ahci_driver.h"
#include "support/harness_platform.h"

#define RAM_SIZE    (16u << 20)
#define BLOCKS      300
#define BLOCKS2     40
#define MMIO_BASE   0xe0000000ULL
#define TIMEOUT_MS  5000
#define CD_PORT     1
#define EMPTY_PORT  3

#define ST_ERR      0x01
#define ST_DRDY     0x40
#define ST_BSY      0x80

/* Sense keys */
#define NOT_READY       0x2
#define ILLEGAL_REQUEST 0x5
#define UNIT_ATTENTION  0x6

struct fx {
    struct harness *h;
    struct pci_bus bus;
    struct ahci *ahci;
    struct adrv d;
    char path[512], path2[512];
    uint64_t buf;
};

static const char *tmpdir(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : P_tmpdir;
}

/* Block b of image `img` holds bytes derived from (img, b, offset). */
static uint8_t pattern(unsigned img, uint32_t block, unsigned i)
{
    return (uint8_t)(img * 59 + block * 13 + i * 3 + (i >> 8));
}

static void make_image(char *path, size_t len, unsigned img, unsigned blocks)
{
    snprintf(path, len, "%s/burrow-atapi-XXXXXX", tmpdir());
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    uint8_t b[2048];
    for (uint32_t blk = 0; blk < blocks; blk++) {
        for (unsigned i = 0; i < sizeof(b); i++)
            b[i] = pattern(img, blk, i);
        assert_int_equal(write(fd, b, sizeof(b)), (ssize_t)sizeof(b));
    }
    close(fd);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    make_image(f->path, sizeof(f->path), 1, BLOCKS);
    make_image(f->path2, sizeof(f->path2), 2, BLOCKS2);
    f->h = harness_new(RAM_SIZE);
    assert_non_null(f->h);
    harness_pci_bus_init(&f->bus, f->h);
    char err[256] = "";
    f->ahci = ahci_create(&f->h->plat, &f->bus, -1, err, sizeof(err));
    if (!f->ahci)
        fail_msg("ahci_create: %s", err);
    if (ahci_attach_cdrom(f->ahci, CD_PORT, f->path, err, sizeof(err)) < 0)
        fail_msg("attach: %s", err);
    if (ahci_attach_cdrom(f->ahci, EMPTY_PORT, NULL, err, sizeof(err)) < 0)
        fail_msg("attach empty: %s", err);
    int devfn = harness_pci_find(&f->bus, 0x8086, 0x2922);
    assert_true(devfn >= 0);
    assert_int_equal(adrv_probe(&f->d, f->h, &f->bus, (uint8_t)devfn, MMIO_BASE), 0);
    assert_int_equal(adrv_port_start(&f->d, CD_PORT, 0xffffffff), 0);
    assert_int_equal(adrv_port_start(&f->d, EMPTY_PORT, 0xffffffff), 0);
    f->buf = adrv_alloc(&f->d, 64 * 1024, 4096);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    ahci_destroy(f->ahci);
    harness_free(f->h);
    unlink(f->path);
    unlink(f->path2);
    free(f);
    return 0;
}

/* Runs a packet command reading up to len bytes into f->buf.  Returns 0
 * for GOOD status; for CHECK CONDITION returns the sense key from the
 * error register (bits 7:4) after recovering the port. */
static int packet_on(struct fx *f, unsigned port, const uint8_t *cdb, uint32_t len)
{
    struct adrv_cmd c;
    memset(f->h->ram + f->buf, 0xcc, len ? len : 1);
    adrv_cmd_packet(&c, cdb, 12, f->buf, len);
    int rc = adrv_exec(&f->d, port, &c, TIMEOUT_MS);
    assert_int_not_equal(rc, -2);
    if (rc == 0)
        return 0;
    uint32_t tfd = adrv_pread(&f->d, port, ADRV_PX_TFD);
    assert_int_equal(tfd & (ST_ERR | ST_DRDY | ST_BSY), ST_ERR | ST_DRDY);
    adrv_recover(&f->d, port);
    int key = (int)(tfd >> 12 & 0xf);
    assert_int_not_equal(key, 0);
    return key;
}

static int packet(struct fx *f, const uint8_t *cdb, uint32_t len)
{
    return packet_on(f, CD_PORT, cdb, len);
}

static const uint8_t *data(struct fx *f)
{
    return f->h->ram + f->buf;
}

static void sense_on(struct fx *f, unsigned port, uint8_t key, uint8_t asc, uint8_t ascq)
{
    uint8_t cdb[12] = { 0x03, 0, 0, 0, 18 };
    assert_int_equal(packet_on(f, port, cdb, 18), 0);
    const uint8_t *s = data(f);
    assert_int_equal(s[0] & 0x7f, 0x70);
    assert_int_equal(s[2] & 0xf, key);
    assert_int_equal(s[7], 10);
    assert_int_equal(s[12], asc);
    assert_int_equal(s[13], ascq);
}

static void expect_sense(struct fx *f, uint8_t key, uint8_t asc, uint8_t ascq)
{
    sense_on(f, CD_PORT, key, asc, ascq);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const uint8_t tur[12] = { 0x00 };

/* --- tests ---------------------------------------------------------------- */

static void test_identify(void **state)
{
    struct fx *f = *state;
    struct adrv *d = &f->d;
    assert_int_equal(adrv_pread(d, CD_PORT, ADRV_PX_SIG), 0xeb140101);
    assert_int_equal(adrv_pread(d, EMPTY_PORT, ADRV_PX_SIG), 0xeb140101);
    struct adrv_cmd c;
    adrv_cmd_ata(&c, 0xa1, 0, 0, f->buf, 512, false);
    assert_int_equal(adrv_exec(d, CD_PORT, &c, TIMEOUT_MS), 0);
    uint16_t id[256];
    adrv_mem_read(d, f->buf, id, sizeof(id));
    assert_int_equal(id[0] >> 14, 2);                  /* ATAPI */
    assert_int_equal((id[0] >> 8) & 0x1f, 5);          /* CD/DVD */
    assert_true(id[0] & 0x80);                         /* removable */
    assert_int_equal(id[0] & 3, 0);                    /* 12-byte packets */
    assert_true(adrv_pread(d, CD_PORT, ADRV_PX_IS) & ADRV_IS_PSS);
    /* IDENTIFY DEVICE: aborted, with the packet signature in the FIS. */
    adrv_cmd_ata(&c, 0xec, 0, 0, f->buf, 512, false);
    assert_int_equal(adrv_exec(d, CD_PORT, &c, TIMEOUT_MS), -1);
    uint8_t d2h[20];
    adrv_rfis(d, CD_PORT, ADRV_RFIS_D2H, d2h, sizeof(d2h));
    assert_int_equal(d2h[5], 0x14);
    assert_int_equal(d2h[6], 0xeb);
    adrv_recover(d, CD_PORT);
}

static void test_inquiry_capacity_read(void **state)
{
    struct fx *f = *state;
    uint8_t inq[12] = { 0x12, 0, 0, 0, 36 };
    assert_int_equal(packet(f, inq, 36), 0);
    const uint8_t *q = data(f);
    assert_int_equal(q[0] & 0x1f, 5);
    assert_true(q[1] & 0x80);
    assert_memory_equal(q + 8, "BURROW  ", 8);
    assert_memory_equal(q + 16, "CD-ROM  ", 8);
    /* The allocation length limits the transfer. */
    inq[4] = 8;
    assert_int_equal(packet(f, inq, 36), 0);
    assert_int_equal(data(f)[8], 0xcc);
    assert_int_equal(adrv_prdbc(&f->d, CD_PORT, 0), 8);

    assert_int_equal(packet(f, tur, 0), 0);
    uint8_t cap[12] = { 0x25 };
    assert_int_equal(packet(f, cap, 8), 0);
    assert_int_equal(be32(data(f)), BLOCKS - 1);
    assert_int_equal(be32(data(f) + 4), 2048);

    /* READ(10) of three blocks, READ(12) of the last one. */
    uint8_t rd[12] = { 0x28, 0, 0, 0, 0, 5, 0, 0, 3 };
    assert_int_equal(packet(f, rd, 3 * 2048), 0);
    for (unsigned b = 0; b < 3; b++)
        for (unsigned i = 0; i < 2048; i += 97)
            assert_int_equal(data(f)[b * 2048 + i], pattern(1, 5 + b, i));
    assert_int_equal(adrv_prdbc(&f->d, CD_PORT, 0), 3 * 2048);
    uint8_t rd12[12] = { 0xa8, 0, 0, 0, (BLOCKS - 1) >> 8, (BLOCKS - 1) & 0xff, 0, 0, 0, 1 };
    assert_int_equal(packet(f, rd12, 2048), 0);
    assert_int_equal(data(f)[2047], pattern(1, BLOCKS - 1, 2047));

    /* PIO protocol (feature bit 0 clear): same data, PIO Setup FIS. */
    struct adrv_cmd c;
    adrv_cmd_packet(&c, rd, 12, f->buf, 3 * 2048);
    c.feature = 0;
    adrv_pwrite(&f->d, CD_PORT, ADRV_PX_IS, 0xffffffff);
    assert_int_equal(adrv_exec(&f->d, CD_PORT, &c, TIMEOUT_MS), 0);
    assert_true(adrv_pread(&f->d, CD_PORT, ADRV_PX_IS) & ADRV_IS_PSS);
    assert_int_equal(data(f)[100], pattern(1, 5, 100));
}

static void test_bad_lba_sense(void **state)
{
    struct fx *f = *state;
    /* Crossing the end, and starting past it. */
    uint8_t rd[12] = { 0x28, 0, 0, 0, (BLOCKS - 1) >> 8, (BLOCKS - 1) & 0xff, 0, 0, 2 };
    assert_int_equal(packet(f, rd, 4096), ILLEGAL_REQUEST);
    expect_sense(f, ILLEGAL_REQUEST, 0x21, 0);
    /* REQUEST SENSE reported it: the next one says nothing. */
    expect_sense(f, 0, 0, 0);
    uint8_t rd12[12] = { 0xa8, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1 };
    assert_int_equal(packet(f, rd12, 2048), ILLEGAL_REQUEST);
    expect_sense(f, ILLEGAL_REQUEST, 0x21, 0);
    /* Unknown opcode, bad CDB field. */
    uint8_t bogus[12] = { 0xd7 };
    assert_int_equal(packet(f, bogus, 0), ILLEGAL_REQUEST);
    expect_sense(f, ILLEGAL_REQUEST, 0x20, 0);
    uint8_t toc[12] = { 0x43, 0, 7, 0, 0, 0, 0, 0, 100 };
    assert_int_equal(packet(f, toc, 100), ILLEGAL_REQUEST);
    expect_sense(f, ILLEGAL_REQUEST, 0x24, 0);
    /* A read whose PRDs are too small for the blocks asked for. */
    uint8_t rd2[12] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 2 };
    assert_int_equal(packet(f, rd2, 2048), ILLEGAL_REQUEST);
    /* The drive still works. */
    rd2[8] = 1;
    assert_int_equal(packet(f, rd2, 2048), 0);
}

static void test_toc(void **state)
{
    struct fx *f = *state;
    /* Format 0, LBA: track 1 at 0, lead-out at BLOCKS. */
    uint8_t toc[12] = { 0x43, 0, 0, 0, 0, 0, 0, 0, 100 };
    assert_int_equal(packet(f, toc, 100), 0);
    const uint8_t *t = data(f);
    assert_int_equal(t[0] << 8 | t[1], 18);
    assert_int_equal(t[2], 1);
    assert_int_equal(t[3], 1);
    assert_int_equal(t[4 + 2], 1);
    assert_int_equal(t[4 + 1] & 0x0f, 4);             /* data track */
    assert_int_equal(be32(t + 8), 0);
    assert_int_equal(t[12 + 2], 0xaa);
    assert_int_equal(be32(t + 16), BLOCKS);
    /* Format 0, MSF: 00:02:00 for LBA 0; lead-out 150 + BLOCKS frames. */
    toc[1] = 0x02;
    assert_int_equal(packet(f, toc, 100), 0);
    assert_int_equal(t[9], 0);
    assert_int_equal(t[10], 2);
    assert_int_equal(t[11], 0);
    unsigned lo = BLOCKS + 150;
    assert_int_equal(t[17], lo / 4500);
    assert_int_equal(t[18], lo / 75 % 60);
    assert_int_equal(t[19], lo % 75);
    /* Format 1: one session starting at track 1. */
    uint8_t s1[12] = { 0x43, 0, 1, 0, 0, 0, 0, 0, 12 };
    assert_int_equal(packet(f, s1, 12), 0);
    assert_int_equal(t[0] << 8 | t[1], 10);
    assert_int_equal(t[6], 1);
    assert_int_equal(be32(t + 8), 0);
    /* Format 2: A0, A1, A2 and track 1. */
    uint8_t raw[12] = { 0x43, 0x02, 2, 0, 0, 0, 0, 0, 100 };
    assert_int_equal(packet(f, raw, 100), 0);
    assert_int_equal(t[0] << 8 | t[1], 2 + 4 * 11);
    assert_int_equal(t[4 + 3], 0xa0);
    assert_int_equal(t[15 + 3], 0xa1);
    assert_int_equal(t[26 + 3], 0xa2);
    assert_int_equal(t[26 + 8], lo / 4500);
    assert_int_equal(t[26 + 9], lo / 75 % 60);
    assert_int_equal(t[26 + 10], lo % 75);
    assert_int_equal(t[37 + 3], 1);
}

static void test_mode_config_events(void **state)
{
    struct fx *f = *state;
    uint8_t ms[12] = { 0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 64 };
    assert_int_equal(packet(f, ms, 64), 0);
    const uint8_t *m = data(f);
    unsigned len = (unsigned)(m[0] << 8 | m[1]) + 2;
    assert_int_equal(len, 8 + 22);
    assert_int_equal(m[8] & 0x3f, 0x2a);
    assert_int_equal(m[9], 0x14);
    assert_true(m[8 + 6] & 0x08);                      /* eject supported */
    ms[2] = 0x01;
    assert_int_equal(packet(f, ms, 64), 0);
    assert_int_equal(m[8], 0x01);
    ms[2] = 0x3f;
    assert_int_equal(packet(f, ms, 64), 0);
    assert_int_equal((m[0] << 8 | m[1]) + 2, 8 + 8 + 22);
    ms[2] = 0x1c;
    assert_int_equal(packet(f, ms, 64), ILLEGAL_REQUEST);
    ms[2] = 0xea;                                      /* saved values */
    assert_int_equal(packet(f, ms, 64), ILLEGAL_REQUEST);
    expect_sense(f, ILLEGAL_REQUEST, 0x39, 0);

    /* GET CONFIGURATION: CD-ROM profile current, in the profile list. */
    uint8_t gc[12] = { 0x46, 0, 0, 0, 0, 0, 0, 0, 128 };
    assert_int_equal(packet(f, gc, 128), 0);
    const uint8_t *g = data(f);
    assert_int_equal(g[6] << 8 | g[7], 0x0008);
    assert_int_equal(g[8] << 8 | g[9], 0x0000);
    bool cd_current = false;
    for (unsigned i = 0; i < g[11]; i += 4)
        if ((g[12 + i] << 8 | g[13 + i]) == 0x0008)
            cd_current = g[14 + i] & 1;
    assert_true(cd_current);
    /* RT=2: just the one feature asked for. */
    uint8_t gc2[12] = { 0x46, 2, 0, 0x03, 0, 0, 0, 0, 128 };
    assert_int_equal(packet(f, gc2, 128), 0);
    assert_int_equal(be32(g), 4 + 8);
    assert_int_equal(g[8] << 8 | g[9], 0x0003);

    /* GET EVENT STATUS NOTIFICATION, polled, media class. */
    uint8_t ev[12] = { 0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8 };
    assert_int_equal(packet(f, ev, 8), 0);
    const uint8_t *e = data(f);
    assert_int_equal(e[2] & 0x07, 4);
    assert_int_equal(e[4] & 0x0f, 0);                  /* no change */
    assert_int_equal(e[5] & 0x02, 0x02);               /* media present */
    ev[1] = 0;                                         /* asynchronous: refused */
    assert_int_equal(packet(f, ev, 8), ILLEGAL_REQUEST);

    uint8_t di[12] = { 0x51, 0, 0, 0, 0, 0, 0, 0, 34 };
    assert_int_equal(packet(f, di, 34), 0);
    assert_int_equal(data(f)[1], 32);
    assert_int_equal(data(f)[3], 1);
    uint8_t mech[12] = { 0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 8 };
    assert_int_equal(packet(f, mech, 8), 0);
    assert_int_equal(data(f)[1] & 0x10, 0);            /* door closed */
    uint8_t speed[12] = { 0xbb, 0, 0xff, 0xff, 0xff, 0xff };
    assert_int_equal(packet(f, speed, 0), 0);
    uint8_t ti[12] = { 0x52, 1, 0, 0, 0, 1, 0, 0, 36 };
    assert_int_equal(packet(f, ti, 36), 0);
    assert_int_equal(be32(data(f) + 24), BLOCKS);
}

static void test_no_medium(void **state)
{
    struct fx *f = *state;
    assert_int_equal(packet_on(f, EMPTY_PORT, tur, 0), NOT_READY);
    sense_on(f, EMPTY_PORT, NOT_READY, 0x3a, 0x01);
    uint8_t cap[12] = { 0x25 };
    assert_int_equal(packet_on(f, EMPTY_PORT, cap, 8), NOT_READY);
    uint8_t rd[12] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 1 };
    assert_int_equal(packet_on(f, EMPTY_PORT, rd, 2048), NOT_READY);
    /* INQUIRY and GET CONFIGURATION still answer; no current profile. */
    uint8_t inq[12] = { 0x12, 0, 0, 0, 36 };
    assert_int_equal(packet_on(f, EMPTY_PORT, inq, 36), 0);
    uint8_t gc[12] = { 0x46, 0, 0, 0, 0, 0, 0, 0, 64 };
    assert_int_equal(packet_on(f, EMPTY_PORT, gc, 64), 0);
    assert_int_equal(data(f)[6] << 8 | data(f)[7], 0);
    uint8_t ev[12] = { 0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8 };
    assert_int_equal(packet_on(f, EMPTY_PORT, ev, 8), 0);
    assert_int_equal(data(f)[5] & 0x02, 0);
}

static void test_change_media_and_eject(void **state)
{
    struct fx *f = *state;
    char err[256];
    /* Host eject: no medium, a removal event, NOT READY. */
    assert_int_equal(ahci_eject(f->ahci, CD_PORT, false, err, sizeof(err)), 0);
    assert_null(ahci_medium_path(f->ahci, CD_PORT));
    uint8_t ev[12] = { 0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8 };
    assert_int_equal(packet(f, ev, 8), 0);
    assert_int_equal(data(f)[4] & 0x0f, 3);            /* media removal */
    assert_int_equal(packet(f, ev, 8), 0);
    assert_int_equal(data(f)[4] & 0x0f, 0);            /* reported once */
    assert_int_equal(packet(f, tur, 0), NOT_READY);
    expect_sense(f, NOT_READY, 0x3a, 0x01);

    /* A bad path leaves the drive as it was. */
    assert_int_equal(ahci_change_media(f->ahci, CD_PORT, "/nonexistent/x.iso", err, sizeof(err)), -1);
    assert_int_equal(packet(f, tur, 0), NOT_READY);

    /* New medium: a new-media event, one UNIT ATTENTION 28h, then ready. */
    assert_int_equal(ahci_change_media(f->ahci, CD_PORT, f->path2, err, sizeof(err)), 0);
    assert_string_equal(ahci_medium_path(f->ahci, CD_PORT), f->path2);
    assert_int_equal(packet(f, ev, 8), 0);
    assert_int_equal(data(f)[4] & 0x0f, 2);
    assert_int_equal(packet(f, tur, 0), UNIT_ATTENTION);
    expect_sense(f, UNIT_ATTENTION, 0x28, 0);
    assert_int_equal(packet(f, tur, 0), 0);
    uint8_t cap[12] = { 0x25 };
    assert_int_equal(packet(f, cap, 8), 0);
    assert_int_equal(be32(data(f)), BLOCKS2 - 1);
    uint8_t rd[12] = { 0x28, 0, 0, 0, 0, 7, 0, 0, 1 };
    assert_int_equal(packet(f, rd, 2048), 0);
    assert_int_equal(data(f)[33], pattern(2, 7, 33));

    /* The guest locks the tray: a plain eject is refused, both from the
     * host and by START STOP UNIT; force takes it out anyway. */
    uint8_t lock[12] = { 0x1e, 0, 0, 0, 1 };
    assert_int_equal(packet(f, lock, 0), 0);
    assert_int_equal(ahci_eject(f->ahci, CD_PORT, false, err, sizeof(err)), -1);
    assert_int_equal(ahci_change_media(f->ahci, CD_PORT, f->path, err, sizeof(err)), -1);
    uint8_t eject[12] = { 0x1b, 0, 0, 0, 0x02 };
    assert_int_equal(packet(f, eject, 0), ILLEGAL_REQUEST);
    expect_sense(f, ILLEGAL_REQUEST, 0x53, 0x02);
    uint8_t ms[12] = { 0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 64 };
    assert_int_equal(packet(f, ms, 64), 0);
    assert_true(data(f)[8 + 6] & 0x02);                /* lock state */
    lock[4] = 0;
    assert_int_equal(packet(f, lock, 0), 0);

    /* Guest eject opens the tray; loading closes it with the same medium. */
    assert_int_equal(packet(f, eject, 0), 0);
    assert_int_equal(packet(f, tur, 0), NOT_READY);
    expect_sense(f, NOT_READY, 0x3a, 0x02);
    uint8_t mech[12] = { 0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 8 };
    assert_int_equal(packet(f, mech, 8), 0);
    assert_true(data(f)[1] & 0x10);
    uint8_t load[12] = { 0x1b, 0, 0, 0, 0x03 };
    assert_int_equal(packet(f, load, 0), 0);
    assert_int_equal(packet(f, tur, 0), UNIT_ATTENTION);
    assert_int_equal(packet(f, tur, 0), 0);

    /* Locked again: force works. */
    lock[4] = 1;
    assert_int_equal(packet(f, lock, 0), 0);
    assert_int_equal(ahci_eject(f->ahci, CD_PORT, true, err, sizeof(err)), 0);
    assert_int_equal(packet(f, tur, 0), NOT_READY);
    /* Media calls for ports without a CD drive fail cleanly. */
    assert_int_equal(ahci_eject(f->ahci, 0, false, err, sizeof(err)), -1);
    assert_int_equal(ahci_change_media(f->ahci, 9, f->path, err, sizeof(err)), -1);
    assert_int_equal(ahci_find_cdrom(f->ahci), CD_PORT);
}

static void test_media_change_during_reads(void **state)
{
    struct fx *f = *state;
    char err[256];
    /* A read in flight while the host swaps media completes (the close
     * waits for it), and the next command sees the unit attention. */
    struct adrv_cmd c;
    uint8_t rd[12] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 16 };
    adrv_cmd_packet(&c, rd, 12, f->buf, 16 * 2048);
    adrv_build(&f->d, CD_PORT, 0, &c);
    adrv_issue(&f->d, CD_PORT, 1);
    assert_int_equal(ahci_change_media(f->ahci, CD_PORT, f->path2, err, sizeof(err)), 0);
    assert_int_equal(adrv_wait(&f->d, CD_PORT, 1, TIMEOUT_MS), 0);
    assert_int_equal(data(f)[5], pattern(1, 0, 5));
    assert_int_equal(packet(f, tur, 0), UNIT_ATTENTION);
    assert_int_equal(packet(f, tur, 0), 0);
}

static void test_reset_unlocks(void **state)
{
    struct fx *f = *state;
    char err[256];
    uint8_t lock[12] = { 0x1e, 0, 0, 0, 1 };
    assert_int_equal(packet(f, lock, 0), 0);
    assert_int_equal(ahci_eject(f->ahci, CD_PORT, false, err, sizeof(err)), -1);
    /* An HBA reset (as on a guest reboot) resets the drive and its lock. */
    adrv_write(&f->d, ADRV_GHC, ADRV_GHC_HR);
    assert_int_equal(adrv_pread(&f->d, CD_PORT, ADRV_PX_SIG), 0xeb140101);
    assert_int_equal(ahci_eject(f->ahci, CD_PORT, false, err, sizeof(err)), 0);
    assert_int_equal(adrv_port_start(&f->d, CD_PORT, 0), 0);
    assert_int_equal(packet(f, tur, 0), NOT_READY);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static const struct CMUnitTest tests[] = {
    T(test_identify),
    T(test_inquiry_capacity_read),
    T(test_bad_lba_sense),
    T(test_toc),
    T(test_mode_config_events),
    T(test_no_medium),
    T(test_change_media_and_eject),
    T(test_media_change_during_reads),
    T(test_reset_unlocks),
};

int main(void)
{
    int failed = cmocka_run_group_tests_name("atapi, io_uring when available", tests, NULL, NULL);
    setenv("BURROW_BLOCK_SYNC", "1", 1);
    failed += cmocka_run_group_tests_name("atapi, synchronous block I/O", tests, NULL, NULL);
    return failed ? 1 : 0;
}
