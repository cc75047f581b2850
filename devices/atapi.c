/* ATAPI CD/DVD-ROM drive: SCSI MMC commands carried by the ATA PACKET
 * command (MMC-6, SPC-4), over a read-only block image of 2048-byte
 * blocks. */
#include "devices/ata.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/block/block.h"
#include "devices/util.h"
#include "devices/virtqueue.h"

/* Operation codes (MMC-6 / SPC-4) */
#define TEST_UNIT_READY        0x00
#define REQUEST_SENSE          0x03
#define INQUIRY                0x12
#define START_STOP_UNIT        0x1b
#define PREVENT_ALLOW          0x1e
#define READ_CAPACITY_10       0x25
#define READ_10                0x28
#define SEEK_10                0x2b
#define READ_TOC               0x43
#define GET_CONFIGURATION      0x46
#define GET_EVENT_STATUS       0x4a
#define READ_DISC_INFO         0x51
#define READ_TRACK_INFO        0x52
#define MODE_SENSE_10          0x5a
#define READ_12                0xa8
#define SET_CD_SPEED           0xbb
#define MECHANISM_STATUS       0xbd

/* Sense keys and additional sense codes (SPC-4 4.5.6, annex D) */
#define SK_NO_SENSE            0x0
#define SK_NOT_READY           0x2
#define SK_MEDIUM_ERROR        0x3
#define SK_ILLEGAL_REQUEST     0x5
#define SK_UNIT_ATTENTION      0x6
#define ASC_INVALID_OPCODE     0x20
#define ASC_LBA_OUT_OF_RANGE   0x21
#define ASC_INVALID_FIELD_CDB  0x24
#define ASC_MEDIUM_CHANGED     0x28
#define ASC_SAVING_UNSUPPORTED 0x39
#define ASC_MEDIUM_NOT_PRESENT 0x3a
#define ASC_REMOVAL_PREVENTED  0x53
#define ASC_UNRECOVERED_READ   0x11

/* Profiles (MMC-6 5.3.1) */
#define PROFILE_CDROM          0x0008
#define PROFILE_DVDROM         0x0010
/* A CD holds at most about 800 MB; larger images are DVDs. */
#define CD_MAX_BLOCKS          (400000u)

/* GET EVENT STATUS NOTIFICATION media event codes (MMC-6 6.7.2.5) */
#define MEC_NO_CHANGE          0
#define MEC_NEW_MEDIA          2
#define MEC_MEDIA_REMOVAL      3
#define GESN_CLASS_MEDIA       4

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

bool atapi_has_medium(const struct ata_dev *d)
{
    return d->blk && !d->tray_open;
}

static uint16_t current_profile(const struct ata_dev *d)
{
    if (!atapi_has_medium(d))
        return 0;
    return d->sectors > CD_MAX_BLOCKS ? PROFILE_DVDROM : PROFILE_CDROM;
}

/* --- completion ---------------------------------------------------------- */

/* ATAPI completion: interrupt reason I/O=1, C/D=1 in the count register. */
static void packet_ok(struct ata_dev *d, struct ata_req *r)
{
    d->sense_key = SK_NO_SENSE;
    d->asc = d->ascq = 0;
    r->count = 0x03;
    r->status = ATA_STAT_DRDY | ATA_STAT_DSC;
    r->error = 0;
    r->done(r);
}

/* CHECK CONDITION: the sense data waits for REQUEST SENSE; the error
 * register carries the sense key in bits 7:4. */
static void check_condition(struct ata_dev *d, struct ata_req *r, uint8_t key, uint8_t asc, uint8_t ascq)
{
    d->sense_key = key;
    d->asc = asc;
    d->ascq = ascq;
    r->count = 0x03;
    r->status = ATA_STAT_DRDY | ATA_STAT_ERR;
    r->error = (uint8_t)(key << 4 | (key == SK_ILLEGAL_REQUEST ? ATA_ERR_ABRT : 0));
    r->transferred = 0;
    r->done(r);
}

static void not_ready(struct ata_dev *d, struct ata_req *r)
{
    /* 3Ah/01h tray closed, 3Ah/02h tray open. */
    check_condition(d, r, SK_NOT_READY, ASC_MEDIUM_NOT_PRESENT, d->tray_open ? 0x02 : 0x01);
}

static void invalid_field(struct ata_dev *d, struct ata_req *r)
{
    check_condition(d, r, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_CDB, 0);
}

/* Sends up to alloc bytes of buf (the CDB's allocation length) and ends the
 * command. */
static void reply(struct ata_dev *d, struct ata_req *r, const void *buf, size_t len, size_t alloc)
{
    ata_copy_out(r, buf, MIN(len, alloc));
    packet_ok(d, r);
}

/* --- IDENTIFY PACKET DEVICE --------------------------------------------- */

void atapi_identify(struct ata_dev *d, uint16_t id[256])
{
    memset(id, 0, 512);
    /* ATAPI, CD-ROM device type 05h, removable, 12-byte packets. */
    id[0] = 0x8000 | 0x05 << 8 | 0x0080;
    ata_id_string(id, 10, 10, d->serial);
    ata_id_string(id, 23, 4, d->firmware);
    ata_id_string(id, 27, 20, d->model);
    id[49] = 0x0300;                      /* LBA, DMA */
    id[53] = 0x0006;
    id[63] = 0x0007;
    id[64] = 0x0003;
    id[65] = id[66] = id[67] = id[68] = 120;
    id[76] = 0x0006;                      /* SATA 1.5 and 3.0 Gb/s */
    id[80] = 0x01f0;
    id[82] = 0x0010;                      /* PACKET feature set */
    id[83] = 0x4000;
    id[84] = 0x4000;
    id[85] = 0x0010;
    id[86] = 0;
    id[87] = 0x4000;
    id[88] = 0x003f;
    if ((d->xfer_mode & 0xf8) == 0x40)
        id[88] |= (uint16_t)(0x100 << (d->xfer_mode & 7));
    ata_id_checksum(id);
}

/* --- commands ------------------------------------------------------------ */

static void cmd_request_sense(struct ata_dev *d, struct ata_req *r, const uint8_t *cdb)
{
    uint8_t s[18] = { 0 };
    if (cdb[1] & 0x01) {                  /* DESC: descriptor format not supported */
        invalid_field(d, r);
        return;
    }
    s[0] = 0x70;                          /* current error, fixed format */
    s[2] = d->sense_key;
    s[7] = 10;                            /* additional sense length */
    s[12] = d->asc;
    s[13] = d->ascq;
    /* Reporting the sense clears it (SPC-4 6.29). */
    reply(d, r, s, sizeof(s), cdb[4]);
}

static void cmd_inquiry(struct ata_dev *d, struct ata_req *r, const uint8_t *cdb)
{
    uint8_t q[36] = { 0 };
    size_t alloc = be16(cdb + 3);
    if (cdb[1] & 0x01) {                  /* EVPD: supported pages list only */
        if (cdb[2] != 0) {
            invalid_field(d, r);
            return;
        }
        uint8_t p[5] = { 0x05, 0x00, 0x00, 1, 0x00 };
        reply(d, r, p, sizeof(p), alloc);
        return;
    }
    if (cdb[2] != 0) {
        invalid_field(d, r);
        return;
    }
    q[0] = 0x05;                          /* CD/DVD device */
    q[1] = 0x80;                          /* removable medium */
    q[2] = 0x05;                          /* SPC-3 */
    q[3] = 0x32;                          /* HiSup, response data format 2 */
    q[4] = sizeof(q) - 5;
    memcpy(q + 8, "BURROW  ", 8);
    memcpy(q + 16, "CD-ROM          ", 16);
    memcpy(q + 32, "1.0 ", 4);
    reply(d, r, q, sizeof(q), alloc);
}

static void cmd_read_capacity(struct ata_dev *d, struct ata_req *r)
{
    uint8_t c[8];
    put_be32(c, (uint32_t)MIN(d->sectors - 1, 0xffffffffULL));
    put_be32(c + 4, ATAPI_BLOCK_SIZE);
    reply(d, r, c, sizeof(c), sizeof(c));
}

static void read_done(void *opaque, int result)
{
    struct ata_req *r = opaque;
    if (result < 0) {
        log_warn("atapi: read error: %s", strerror(-result));
        check_condition(r->dev, r, SK_MEDIUM_ERROR, ASC_UNRECOVERED_READ, 0);
        return;
    }
    packet_ok(r->dev, r);
}

static void cmd_read(struct ata_dev *d, struct ata_req *r, uint64_t lba, uint64_t blocks)
{
    if (lba > d->sectors || blocks > d->sectors - lba) {
        log_guest_error("atapi: read of %llu blocks at %llu beyond %llu blocks",
                        (unsigned long long)blocks, (unsigned long long)lba,
                        (unsigned long long)d->sectors);
        check_condition(d, r, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE, 0);
        return;
    }
    uint64_t len = blocks * ATAPI_BLOCK_SIZE;
    if (len == 0) {
        packet_ok(d, r);
        return;
    }
    if (len > r->buf_len) {
        log_guest_error("atapi: %llu-byte read into %llu bytes of PRDs", (unsigned long long)len,
                        (unsigned long long)r->buf_len);
        invalid_field(d, r);
        return;
    }
    struct iovec iov[1024];
    int n = iov_slice(r->iov, (unsigned)r->iovcnt, 0, (size_t)len, iov, ARRAY_SIZE(iov));
    if (n < 0) {
        invalid_field(d, r);
        return;
    }
    r->transferred = (uint32_t)len;
    int ret = blk_readv(d->blk, lba * ATAPI_BLOCK_SIZE, iov, n, read_done, r);
    if (ret < 0) {
        log_warn("atapi: cannot submit a read: %s", strerror(-ret));
        check_condition(d, r, SK_MEDIUM_ERROR, ASC_UNRECOVERED_READ, 0);
    }
}

static void lba_to_msf(uint8_t *p, uint32_t lba)
{
    lba += 150;                           /* two seconds of pre-gap */
    p[0] = 0;
    p[1] = (uint8_t)(lba / (75 * 60));
    p[2] = (uint8_t)(lba / 75 % 60);
    p[3] = (uint8_t)(lba % 75);
}

static void put_addr(uint8_t *p, uint32_t lba, bool msf)
{
    if (msf)
        lba_to_msf(p, lba);
    else
        put_be32(p, lba);
}

static void cmd_read_toc(struct ata_dev *d, struct ata_req *r, const uint8_t *cdb)
{
    bool msf = cdb[1] & 0x02;
    unsigned format = cdb[2] & 0x0f;
    unsigned track = cdb[6];
    size_t alloc = be16(cdb + 7);
    uint32_t leadout = (uint32_t)d->sectors;
    uint8_t t[64] = { 0 };
    size_t len;

    /* Older drivers put the format in the control byte's vendor bits. */
    if (format == 0 && (cdb[9] >> 6))
        format = cdb[9] >> 6;

    switch (format) {
    case 0:                               /* formatted TOC: track 1 and lead-out */
        if (track > 1 && track != 0xaa) {
            invalid_field(d, r);
            return;
        }
        len = 4;
        t[2] = 1;
        t[3] = 1;
        if (track <= 1) {
            t[len + 1] = 0x14;            /* ADR 1, data track */
            t[len + 2] = 1;
            put_addr(t + len + 4, 0, msf);
            len += 8;
        }
        t[len + 1] = 0x14;
        t[len + 2] = 0xaa;
        put_addr(t + len + 4, leadout, msf);
        len += 8;
        break;
    case 1:                               /* session information */
        len = 12;
        t[2] = 1;
        t[3] = 1;
        t[5] = 0x14;
        t[6] = 1;
        put_addr(t + 8, 0, msf);
        break;
    case 2: {                             /* raw TOC: A0, A1, A2, track 1 */
        len = 4;
        t[2] = 1;
        t[3] = 1;
        static const uint8_t points[4] = { 0xa0, 0xa1, 0xa2, 0x01 };
        for (int i = 0; i < 4; i++) {
            uint8_t *e = t + len;
            e[0] = 1;                     /* session */
            e[1] = 0x14;
            e[3] = points[i];
            switch (points[i]) {
            case 0xa0: e[8] = 1; e[9] = 0x00; break;  /* first track, CD-ROM disc */
            case 0xa1: e[8] = 1; break;               /* last track */
            case 0xa2: lba_to_msf(e + 7, leadout); break;
            default: lba_to_msf(e + 7, 0); break;
            }
            len += 11;
        }
        break;
    }
    default:
        invalid_field(d, r);
        return;
    }
    put_be16(t, (uint16_t)(len - 2));
    reply(d, r, t, len, alloc);
}

static void cmd_mode_sense(struct ata_dev *d, struct ata_req *r, const uint8_t *cdb)
{
    unsigned pc = cdb[2] >> 6, page = cdb[2] & 0x3f;
    size_t alloc = be16(cdb + 7);
    uint8_t m[64] = { 0 };
    size_t len = 8;

    if (pc == 3) {
        check_condition(d, r, SK_ILLEGAL_REQUEST, ASC_SAVING_UNSUPPORTED, 0);
        return;
    }
    if (page != 0x01 && page != 0x2a && page != 0x3f) {
        invalid_field(d, r);
        return;
    }
    bool changeable = pc == 1;
    if (page == 0x01 || page == 0x3f) {   /* read error recovery */
        m[len] = 0x01;
        m[len + 1] = 0x06;
        if (!changeable)
            m[len + 3] = 5;               /* read retry count */
        len += 8;
    }
    if (page == 0x2a || page == 0x3f) {   /* CD/DVD capabilities and mechanical status */
        uint8_t *p = m + len;
        p[0] = 0x2a;
        p[1] = 0x14;
        if (!changeable) {
            p[2] = 0x0b;                  /* reads CD-R, CD-RW, DVD-ROM */
            p[4] = 0x71;                  /* audio play, mode 2 form 1/2, multisession */
            p[5] = 0x00;
            /* Tray loading, eject, lock; bit 1 reports the lock state. */
            p[6] = 0x29 | (d->locked ? 0x02 : 0);
            put_be16(p + 8, 16 * 176);    /* maximum read speed, kB/s */
            put_be16(p + 10, 256);        /* volume levels */
            put_be16(p + 12, 512);        /* buffer size, KiB */
            put_be16(p + 14, 16 * 176);   /* current read speed */
        }
        len += 22;
    }
    put_be16(m, (uint16_t)(len - 2));
    m[2] = atapi_has_medium(d) ? 0x01 : 0x70;  /* medium type: data CD, or none */
    reply(d, r, m, len, alloc);
}

/* Appends a feature descriptor when it passes GET CONFIGURATION's RT filter. */
static size_t add_feature(uint8_t *buf, size_t len, size_t cap, unsigned rt, unsigned start,
                          uint16_t code, uint8_t version, bool current, const uint8_t *data, uint8_t dlen)
{
    if (code < start || (rt == 1 && !current) || (rt == 2 && code != start))
        return len;
    if (len + 4u + dlen > cap)
        return len;
    put_be16(buf + len, code);
    buf[len + 2] = (uint8_t)(version << 2 | 0x02 /* persistent */ | (current ? 1 : 0));
    buf[len + 3] = dlen;
    memcpy(buf + len + 4, data, dlen);
    return len + 4 + dlen;
}

static void cmd_get_configuration(struct ata_dev *d, struct ata_req *r, const uint8_t *cdb)
{
    unsigned rt = cdb[1] & 0x03, start = be16(cdb + 2);
    size_t alloc = be16(cdb + 7);
    uint8_t b[128] = { 0 };
    size_t len = 8;
    uint16_t profile = current_profile(d);
    bool medium = profile != 0;

    if (rt == 3) {
        invalid_field(d, r);
        return;
    }
    /* Profile list: DVD-ROM and CD-ROM, the mounted one current. */
    uint8_t plist[8] = { 0 };
    put_be16(plist, PROFILE_DVDROM);
    plist[2] = profile == PROFILE_DVDROM;
    put_be16(plist + 4, PROFILE_CDROM);
    plist[6] = profile == PROFILE_CDROM;
    len = add_feature(b, len, sizeof(b), rt, start, 0x0000, 0, true, plist, sizeof(plist));
    /* Core: ATAPI physical interface, no DBE. */
    uint8_t core[8] = { 0, 0, 0, 2, 0, 0, 0, 0 };
    len = add_feature(b, len, sizeof(b), rt, start, 0x0001, 2, true, core, sizeof(core));
    /* Morphing: no asynchronous notification, polled events. */
    uint8_t morph[4] = { 0 };
    len = add_feature(b, len, sizeof(b), rt, start, 0x0002, 1, true, morph, sizeof(morph));
    /* Removable medium: tray, eject, lock. */
    uint8_t rem[4] = { 0x29, 0, 0, 0 };
    len = add_feature(b, len, sizeof(b), rt, start, 0x0003, 0, true, rem, sizeof(rem));
    /* Random readable: 2048-byte blocks, blocking 1. */
    uint8_t rnd[8] = { 0 };
    put_be32(rnd, ATAPI_BLOCK_SIZE);
    put_be16(rnd + 4, 1);
    len = add_feature(b, len, sizeof(b), rt, start, 0x0010, 0, medium, rnd, sizeof(rnd));
    uint8_t cdread[4] = { 0 };
    len = add_feature(b, len, sizeof(b), rt, start, 0x001e, 2, profile == PROFILE_CDROM, cdread, sizeof(cdread));
    uint8_t dvdread[4] = { 0 };
    len = add_feature(b, len, sizeof(b), rt, start, 0x001f, 0, profile == PROFILE_DVDROM, dvdread, sizeof(dvdread));

    put_be32(b, (uint32_t)(len - 4));
    put_be16(b + 6, profile);
    reply(d, r, b, len, alloc);
}

static void cmd_get_event_status(struct ata_dev *d, struct ata_req *r, const uint8_t *cdb)
{
    size_t alloc = be16(cdb + 7);
    uint8_t e[8] = { 0 };
    if (!(cdb[1] & 0x01)) {               /* only polled operation */
        invalid_field(d, r);
        return;
    }
    e[3] = 1 << GESN_CLASS_MEDIA;         /* supported event classes */
    if (!(cdb[4] & (1 << GESN_CLASS_MEDIA))) {
        put_be16(e, 2);
        e[2] = 0x80;                      /* NEA: no event available */
        reply(d, r, e, 4, alloc);
        return;
    }
    put_be16(e, 6);
    e[2] = GESN_CLASS_MEDIA;
    e[4] = d->media_event;
    e[5] = (uint8_t)((atapi_has_medium(d) ? 0x02 : 0) | (d->tray_open ? 0x01 : 0));
    d->media_event = MEC_NO_CHANGE;       /* reported once */
    reply(d, r, e, 8, alloc);
}

static void cmd_read_disc_info(struct ata_dev *d, struct ata_req *r, const uint8_t *cdb)
{
    size_t alloc = be16(cdb + 7);
    uint8_t b[34] = { 0 };
    if (cdb[1] & 0x07) {                  /* only standard disc information */
        invalid_field(d, r);
        return;
    }
    put_be16(b, sizeof(b) - 2);
    b[2] = 0x0e;                          /* last session complete, disc finalized */
    b[3] = 1;                             /* first track */
    b[4] = 1;                             /* sessions */
    b[5] = 1;                             /* first track of last session */
    b[6] = 1;                             /* last track of last session */
    b[8] = 0x00;                          /* CD-DA or CD-ROM disc */
    /* No lead-in/lead-out start times for a finalized disc. */
    memset(b + 16, 0xff, 8);
    reply(d, r, b, sizeof(b), alloc);
}

static void cmd_read_track_info(struct ata_dev *d, struct ata_req *r, const uint8_t *cdb)
{
    size_t alloc = be16(cdb + 7);
    unsigned type = cdb[1] & 0x03;
    uint32_t addr = be32(cdb + 2);
    uint8_t b[36] = { 0 };
    /* Track 1 (by number, or the LBA of any block on it). */
    bool ok = (type == 1 && addr == 1) || (type == 0 && addr < d->sectors) || (type == 2 && addr == 1);
    if (!ok) {
        invalid_field(d, r);
        return;
    }
    put_be16(b, sizeof(b) - 2);
    b[2] = 1;                             /* track number */
    b[3] = 1;                             /* session */
    b[5] = 0x04;                          /* data track, uninterrupted */
    b[6] = 0x01;                          /* data mode 1 */
    put_be32(b + 8, 0);                   /* start address */
    put_be32(b + 24, (uint32_t)d->sectors);
    reply(d, r, b, sizeof(b), alloc);
}

static void cmd_start_stop(struct ata_dev *d, struct ata_req *r, const uint8_t *cdb)
{
    bool loej = cdb[4] & 0x02, start = cdb[4] & 0x01;
    if (!loej || (cdb[4] >> 4)) {         /* spin up/down or power conditions: nothing to do */
        packet_ok(d, r);
        return;
    }
    if (!start) {
        if (d->locked) {
            check_condition(d, r, SK_ILLEGAL_REQUEST, ASC_REMOVAL_PREVENTED, 0x02);
            return;
        }
        if (!d->tray_open && d->blk)
            d->media_event = MEC_MEDIA_REMOVAL;
        d->tray_open = true;
    } else {
        if (d->tray_open && d->blk) {
            d->media_event = MEC_NEW_MEDIA;
            d->unit_attention = true;
        }
        d->tray_open = false;
    }
    packet_ok(d, r);
}

/* Commands that need a medium, and those a pending unit attention does not
 * hold up (SPC-4 5.14; MMC-6 4.1.6.1 for the event and configuration ones). */
static bool needs_medium(uint8_t op)
{
    switch (op) {
    case TEST_UNIT_READY: case READ_CAPACITY_10: case READ_10: case READ_12: case SEEK_10:
    case READ_TOC: case READ_DISC_INFO: case READ_TRACK_INFO:
        return true;
    }
    return false;
}

static bool ua_exempt(uint8_t op)
{
    return op == INQUIRY || op == REQUEST_SENSE || op == GET_CONFIGURATION || op == GET_EVENT_STATUS;
}

void atapi_packet(struct ata_dev *d, struct ata_req *r)
{
    const uint8_t *cdb = r->packet;
    uint8_t op = cdb[0];
    /* Feature bit 0 selects DMA; otherwise PIO through the PRDs as well. */
    r->proto = (r->tf.feature & 0x01) ? ATA_PROTO_DMA : ATA_PROTO_PIO_IN;

    if (d->unit_attention && !ua_exempt(op)) {
        d->unit_attention = false;
        check_condition(d, r, SK_UNIT_ATTENTION, ASC_MEDIUM_CHANGED, 0);
        return;
    }
    if (needs_medium(op) && !atapi_has_medium(d)) {
        not_ready(d, r);
        return;
    }

    switch (op) {
    case TEST_UNIT_READY:
    case SET_CD_SPEED:
    case SEEK_10:
        packet_ok(d, r);
        return;
    case REQUEST_SENSE:
        cmd_request_sense(d, r, cdb);
        return;
    case INQUIRY:
        cmd_inquiry(d, r, cdb);
        return;
    case READ_CAPACITY_10:
        cmd_read_capacity(d, r);
        return;
    case READ_10:
        cmd_read(d, r, be32(cdb + 2), be16(cdb + 7));
        return;
    case READ_12:
        cmd_read(d, r, be32(cdb + 2), be32(cdb + 6));
        return;
    case READ_TOC:
        cmd_read_toc(d, r, cdb);
        return;
    case MODE_SENSE_10:
        cmd_mode_sense(d, r, cdb);
        return;
    case PREVENT_ALLOW:
        d->locked = cdb[4] & 0x01;
        packet_ok(d, r);
        return;
    case START_STOP_UNIT:
        cmd_start_stop(d, r, cdb);
        return;
    case GET_CONFIGURATION:
        cmd_get_configuration(d, r, cdb);
        return;
    case GET_EVENT_STATUS:
        cmd_get_event_status(d, r, cdb);
        return;
    case READ_DISC_INFO:
        cmd_read_disc_info(d, r, cdb);
        return;
    case READ_TRACK_INFO:
        cmd_read_track_info(d, r, cdb);
        return;
    case MECHANISM_STATUS: {
        uint8_t m[8] = { 0 };
        m[1] = d->tray_open ? 0x10 : 0;   /* door open */
        reply(d, r, m, sizeof(m), be16(cdb + 8));
        return;
    }
    default:
        check_condition(d, r, SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE, 0);
        return;
    }
}

/* --- media --------------------------------------------------------------- */

static int load(struct ata_dev *d, const char *path, char *err, size_t errlen)
{
    struct blk *b = blk_open(d->loop, path, true, err, errlen);
    if (!b)
        return -1;
    uint64_t blocks = blk_size(b) / ATAPI_BLOCK_SIZE;
    if (blocks == 0) {
        snprintf(err, errlen, "%s: image smaller than one 2048-byte block", path);
        blk_close(b);
        return -1;
    }
    char *copy = strdup(path);
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        blk_close(b);
        return -1;
    }
    d->blk = b;
    d->sectors = blocks;
    d->path = copy;
    return 0;
}

int atapi_init(struct ata_dev *d, struct evloop *loop, const char *path, char *err, size_t errlen)
{
    memset(d, 0, sizeof(*d));
    d->atapi = true;
    d->loop = loop;
    snprintf(d->serial, sizeof(d->serial), "BURROW-CD-0001");
    snprintf(d->firmware, sizeof(d->firmware), "1.0");
    snprintf(d->model, sizeof(d->model), "BURROW CD-ROM");
    if (path && load(d, path, err, errlen) < 0)
        return -1;
    return 0;
}

static void unload(struct ata_dev *d)
{
    /* Detach first: completions that run while the close drains may start
     * the next command, which must already see an empty drive. */
    struct blk *b = d->blk;
    d->blk = NULL;
    d->sectors = 0;
    if (b)
        blk_close(b);
    free(d->path);
    d->path = NULL;
}

int atapi_eject(struct ata_dev *d, bool force, char *err, size_t errlen)
{
    if (!d->atapi) {
        snprintf(err, errlen, "not a removable-media drive");
        return -1;
    }
    if (d->locked && !force) {
        snprintf(err, errlen, "the guest has locked the drive's tray");
        return -1;
    }
    if (d->blk && !d->tray_open)
        d->media_event = MEC_MEDIA_REMOVAL;
    unload(d);
    d->locked = false;
    d->tray_open = false;
    return 0;
}

int atapi_change_media(struct ata_dev *d, const char *path, char *err, size_t errlen)
{
    if (!d->atapi) {
        snprintf(err, errlen, "not a removable-media drive");
        return -1;
    }
    if (d->locked) {
        snprintf(err, errlen, "the guest has locked the drive's tray");
        return -1;
    }
    /* Open the new image first so a bad path leaves the old medium in. */
    struct ata_dev tmp = { .loop = d->loop };
    if (load(&tmp, path, err, errlen) < 0)
        return -1;
    unload(d);
    d->blk = tmp.blk;
    d->sectors = tmp.sectors;
    d->path = tmp.path;
    d->tray_open = false;
    d->unit_attention = true;
    d->media_event = MEC_NEW_MEDIA;
    return 0;
}
