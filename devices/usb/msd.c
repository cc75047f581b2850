/* USB mass storage, Bulk-Only Transport 1.0 (BOT), with the SCSI block
 * commands of SBC-3 and the primary commands of SPC-4 that hosts use on a
 * USB disk.
 *
 * Each command goes Command Block Wrapper (CBW, bulk OUT), data stage,
 * Command Status Wrapper (CSW, bulk IN).  The device works out how many
 * bytes it wants to move and in which direction, and compares that with
 * what the CBW announced (the thirteen cases of BOT 6.7): it moves at
 * most what both agree on, and reports the rest as dCSWDataResidue or a
 * phase error.  Disk data goes through a buffer of the device's own in
 * chunks, so a cancelled transfer never leaves a read landing in the
 * host's memory. */
#include "devices/usb/msd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/block/block.h"
#include "devices/util.h"

/* Endpoints: bulk IN 0x81, bulk OUT 0x02. */
#define EP_IN            1
#define EP_OUT           2
#define BULK_MPS         512          /* high speed (USB 2.0 5.8.3) */

/* BOT 5.1, 5.2, 3.1, 3.2 */
#define CBW_SIGNATURE    0x43425355u  /* "USBC" */
#define CSW_SIGNATURE    0x53425355u  /* "USBS" */
#define CBW_LEN          31
#define CSW_LEN          13
#define CSW_GOOD         0
#define CSW_FAILED       1
#define CSW_PHASE_ERROR  2
#define REQ_BOMS_RESET   0xff
#define REQ_GET_MAX_LUN  0xfe

/* Operation codes (SPC-4, SBC-3) */
#define TEST_UNIT_READY        0x00
#define REQUEST_SENSE          0x03
#define INQUIRY                0x12
#define MODE_SENSE_6           0x1a
#define START_STOP_UNIT        0x1b
#define PREVENT_ALLOW          0x1e
#define READ_FORMAT_CAPACITIES 0x23
#define READ_CAPACITY_10       0x25
#define READ_10                0x28
#define WRITE_10               0x2a
#define VERIFY_10              0x2f
#define SYNCHRONIZE_CACHE_10   0x35
#define MODE_SENSE_10          0x5a
#define READ_16                0x88
#define WRITE_16               0x8a
#define SYNCHRONIZE_CACHE_16   0x91
#define SERVICE_ACTION_IN_16   0x9e
#define SAI_READ_CAPACITY_16   0x10
#define READ_12                0xa8
#define WRITE_12               0xaa

/* Sense keys and additional sense codes (SPC-4 4.5.6, annex D) */
#define SK_NO_SENSE            0x0
#define SK_MEDIUM_ERROR        0x3
#define SK_ILLEGAL_REQUEST     0x5
#define SK_DATA_PROTECT        0x7
#define ASC_WRITE_ERROR        0x0c
#define ASC_UNRECOVERED_READ   0x11
#define ASC_INVALID_OPCODE     0x20
#define ASC_LBA_OUT_OF_RANGE   0x21
#define ASC_INVALID_FIELD_CDB  0x24
#define ASC_WRITE_PROTECTED    0x27
#define ASC_SAVING_UNSUPPORTED 0x39

#define PAGE_CACHING     0x08
#define PAGE_ALL         0x3f

#define BLOCK            512
#define CHUNK            (64u * 1024)   /* disk I/O at a time */

/* Vendor 0x1209 (pid.codes) and its testing product id, as the HID devices
 * use; the release tells the models apart.  Drivers bind by class. */
#define MSD_VENDOR       0x1209
#define MSD_PRODUCT      0x0001
#define MSD_RELEASE      0x0102

enum { STR_MANUFACTURER = 1, STR_PRODUCT, STR_SERIAL, STR_COUNT };

static const uint8_t device_desc[18] = {
    18, USB_DT_DEVICE, 0x00, 0x02, 0, 0, 0, 64,
    MSD_VENDOR & 0xff, MSD_VENDOR >> 8, MSD_PRODUCT & 0xff, MSD_PRODUCT >> 8,
    MSD_RELEASE & 0xff, MSD_RELEASE >> 8, STR_MANUFACTURER, STR_PRODUCT, STR_SERIAL, 1,
};

/* One interface: class 08h mass storage, subclass 06h SCSI transparent,
 * protocol 50h Bulk-Only; bus powered, 100 mA. */
static const uint8_t config_desc[32] = {
    9, USB_DT_CONFIG, 32, 0, 1, 1, 0, 0x80, 50,
    9, USB_DT_INTERFACE, 0, 0, 2, 0x08, 0x06, 0x50, 0,
    7, USB_DT_ENDPOINT, 0x80 | EP_IN, 0x02, BULK_MPS & 0xff, BULK_MPS >> 8, 0,
    7, USB_DT_ENDPOINT, EP_OUT, 0x02, BULK_MPS & 0xff, BULK_MPS >> 8, 0,
};

enum bot_state {
    BOT_CBW,          /* waiting for a command */
    BOT_DATA,         /* moving the data the CBW announced */
    BOT_CSW,          /* the status goes out next */
    BOT_STALLED,      /* an invalid CBW: both pipes stall until Reset Recovery */
};

enum io_op { IO_READ, IO_WRITE, IO_FLUSH };

struct usb_msd {
    struct usb_device dev;
    struct usb_descriptors descs;
    const char *strings[STR_COUNT];
    char serial[16];
    struct blk *blk;
    uint64_t blocks;
    bool read_only;

    enum bot_state state;
    /* The command: what the CBW announced... */
    uint32_t tag;
    uint32_t h_len;           /* dCBWDataTransferLength */
    bool h_in;                /* its direction */
    /* ...and what the device does. */
    uint8_t status;           /* bCSWStatus */
    bool flush;               /* flush the image before the CSW */
    bool from_disk;           /* IN data comes from the image, else from io_buf */
    uint64_t d_len;           /* bytes the device wants to move */
    uint64_t disk_off;
    uint32_t todo;            /* bytes it will move: at most h_len */
    uint32_t moved;           /* bytes moved on the bus (OUT: dropped ones too) */
    uint32_t written;         /* OUT: bytes on the image */
    /* io_buf holds stream bytes [buf_start, buf_start + buf_fill). */
    uint32_t buf_start, buf_fill;

    uint8_t sense_key, asc, ascq;

    struct usb_xfer *held;    /* waiting for the image */
    bool io_busy;
    enum io_op io_op;
    uint32_t io_len;
    unsigned gen, io_gen;     /* a reset drops the results of older I/O */
    uint8_t io_buf[CHUNK];
};

/* --- status and sense ------------------------------------------------- */

static void set_sense(struct usb_msd *m, uint8_t key, uint8_t asc, uint8_t ascq)
{
    m->sense_key = key;
    m->asc = asc;
    m->ascq = ascq;
}

static void fail_status(struct usb_msd *m)
{
    if (m->status == CSW_GOOD)
        m->status = CSW_FAILED;
}

/* The data stage of a command that wants len bytes in direction in,
 * against the CBW's (BOT 6.7): a direction or length the host did not
 * announce is a phase error; a host that expects more gets less and the
 * difference as residue. */
static void begin_data(struct usb_msd *m, bool in, uint64_t len)
{
    m->d_len = len;
    m->todo = 0;
    if (len && (m->h_len == 0 || in != m->h_in)) {
        m->status = CSW_PHASE_ERROR;         /* cases 2, 3, 8, 10 */
    } else if (len > m->h_len) {
        m->status = CSW_PHASE_ERROR;         /* cases 7, 13 */
        if (in)
            m->todo = m->h_len;              /* what the host expects, no more */
    } else {
        m->todo = (uint32_t)len;
    }
    m->state = m->h_len ? BOT_DATA : BOT_CSW;
}

/* CHECK CONDITION: no data; the sense waits for REQUEST SENSE. */
static void check(struct usb_msd *m, uint8_t key, uint8_t asc, uint8_t ascq)
{
    set_sense(m, key, asc, ascq);
    fail_status(m);
    begin_data(m, false, 0);
}

static void invalid_field(struct usb_msd *m)
{
    check(m, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_CDB, 0);
}

/* Sends up to alloc bytes of data (the CDB's allocation length). */
static void reply(struct usb_msd *m, const void *data, size_t len, size_t alloc)
{
    size_t n = MIN(MIN(len, alloc), (size_t)CHUNK);
    memcpy(m->io_buf, data, n);
    m->from_disk = false;
    m->buf_start = 0;
    m->buf_fill = (uint32_t)n;
    begin_data(m, true, n);
}

/* Whether blocks [lba, lba + n) are on the image; LBA OUT OF RANGE if not. */
static bool in_range(struct usb_msd *m, uint64_t lba, uint64_t n)
{
    if (lba <= m->blocks && n <= m->blocks - lba)
        return true;
    check(m, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE, 0);
    return false;
}

/* --- image I/O --------------------------------------------------------- */

static enum usb_status pump(struct usb_msd *m, struct usb_xfer *x);

static void io_failed(struct usb_msd *m, enum io_op op, int err)
{
    log_warn("%s: %s error: %s", m->dev.name, op == IO_READ ? "read" : op == IO_WRITE ? "write" : "flush",
             strerror(-err));
    if (op == IO_READ)
        set_sense(m, SK_MEDIUM_ERROR, ASC_UNRECOVERED_READ, 0);
    else
        set_sense(m, SK_MEDIUM_ERROR, ASC_WRITE_ERROR, 0);
    fail_status(m);
    m->todo = m->moved;         /* the data stage ends here; the rest is residue */
    m->buf_fill = 0;
}

static void io_done(void *opaque, int result)
{
    struct usb_msd *m = opaque;
    m->io_busy = false;
    if (m->io_gen == m->gen) {
        if (result < 0)
            io_failed(m, m->io_op, result);
        else if (m->io_op == IO_READ)
            m->buf_fill = m->io_len;
        else if (m->io_op == IO_WRITE) {
            m->written += m->io_len;
            m->buf_fill = 0;
        }
    }
    struct usb_xfer *x = m->held;
    if (!x)
        return;
    m->held = NULL;
    enum usb_status st = pump(m, x);
    if (st == USB_ASYNC) {
        m->held = x;
        return;
    }
    x->status = st;
    usb_xfer_done(x);
}

/* Starts I/O on io_buf; false (with the sense set) when it cannot. */
static bool submit_io(struct usb_msd *m, enum io_op op, uint64_t off, uint32_t len)
{
    struct iovec iov = { .iov_base = m->io_buf, .iov_len = len };
    int ret = op == IO_READ ? blk_readv(m->blk, off, &iov, 1, io_done, m)
            : op == IO_WRITE ? blk_writev(m->blk, off, &iov, 1, io_done, m)
            : blk_flush(m->blk, io_done, m);
    if (ret < 0) {
        io_failed(m, op, ret);
        return false;
    }
    m->io_busy = true;
    m->io_op = op;
    m->io_len = len;
    m->io_gen = m->gen;
    return true;
}

/* --- SCSI commands ------------------------------------------------------ */

static void cmd_request_sense(struct usb_msd *m, const uint8_t *cdb)
{
    if (cdb[1] & 0x01) {                 /* DESC: descriptor format not supported */
        invalid_field(m);
        return;
    }
    uint8_t s[18] = { 0 };
    s[0] = 0x70;                         /* current error, fixed format */
    s[2] = m->sense_key;
    s[7] = 10;                           /* additional sense length */
    s[12] = m->asc;
    s[13] = m->ascq;
    set_sense(m, SK_NO_SENSE, 0, 0);     /* reported: cleared (SPC-4 6.39) */
    reply(m, s, sizeof(s), cdb[4]);
}

static void cmd_inquiry(struct usb_msd *m, const uint8_t *cdb)
{
    size_t alloc = (size_t)ld_be(cdb + 3, 2), n = strlen(m->serial);
    uint8_t q[64] = { 0 };
    if (!(cdb[1] & 0x01)) {
        if (cdb[2] != 0) {               /* a page code needs EVPD */
            invalid_field(m);
            return;
        }
        /* Direct access block device, removable, SPC-4, format 2. */
        q[1] = 0x80;
        q[2] = 0x06;
        q[3] = 0x02;
        q[4] = 36 - 5;
        memcpy(q + 8, "BURROW  ", 8);
        memcpy(q + 16, "USB DISK        ", 16);
        memcpy(q + 32, "1.0 ", 4);
        reply(m, q, 36, alloc);
        return;
    }
    q[1] = cdb[2];
    switch (cdb[2]) {
    case 0x00:                           /* supported VPD pages */
        q[3] = 3;
        q[4] = 0x00;
        q[5] = 0x80;
        q[6] = 0x83;
        reply(m, q, 7, alloc);
        return;
    case 0x80:                           /* unit serial number */
        q[3] = (uint8_t)n;
        memcpy(q + 4, m->serial, n);
        reply(m, q, 4 + n, alloc);
        return;
    case 0x83:                           /* device identification: a T10 vendor ID */
        q[3] = (uint8_t)(4 + 8 + n);
        q[4] = 0x02;                     /* ASCII */
        q[5] = 0x01;                     /* associated with the LU, T10 vendor ID based */
        q[7] = (uint8_t)(8 + n);
        memcpy(q + 8, "BURROW  ", 8);
        memcpy(q + 16, m->serial, n);
        reply(m, q, 16 + n, alloc);
        return;
    default:
        invalid_field(m);
    }
}

static uint32_t last_lba32(const struct usb_msd *m)
{
    return m->blocks - 1 > 0xffffffffu ? 0xffffffffu : (uint32_t)(m->blocks - 1);
}

static void cmd_read_capacity_10(struct usb_msd *m)
{
    uint8_t r[8];
    st_be(r, 4, last_lba32(m));          /* all ones: ask READ CAPACITY(16) */
    st_be(r + 4, 4, BLOCK);
    reply(m, r, sizeof(r), sizeof(r));
}

static void cmd_read_capacity_16(struct usb_msd *m, const uint8_t *cdb)
{
    uint8_t r[32] = { 0 };
    st_be(r, 8, m->blocks - 1);
    st_be(r + 8, 4, BLOCK);
    reply(m, r, sizeof(r), (size_t)ld_be(cdb + 10, 4));
}

static void cmd_read_format_capacities(struct usb_msd *m, const uint8_t *cdb)
{
    uint8_t r[12] = { 0 };
    r[3] = 8;                            /* one capacity descriptor */
    st_be(r + 4, 4, m->blocks > 0xffffffffu ? 0xffffffffu : m->blocks);
    r[8] = 0x02;                         /* formatted media */
    st_be(r + 9, 3, BLOCK);
    reply(m, r, sizeof(r), (size_t)ld_be(cdb + 7, 2));
}

/* MODE SENSE(6) and (10) (SPC-4 6.11, 6.12): no block descriptors, the
 * caching page (SBC-3 6.4.5) with the write cache on, so that hosts send
 * SYNCHRONIZE CACHE, and WP in the header for a read-only image. */
static void cmd_mode_sense(struct usb_msd *m, const uint8_t *cdb, bool ten)
{
    unsigned page = cdb[2] & 0x3f, pc = cdb[2] >> 6, subpage = cdb[3];
    unsigned hdr = ten ? 8 : 4;
    uint8_t r[64] = { 0 };
    if (pc == 3) {
        check(m, SK_ILLEGAL_REQUEST, ASC_SAVING_UNSUPPORTED, 0);
        return;
    }
    if ((page != PAGE_CACHING && page != PAGE_ALL) || (subpage != 0 && !(page == PAGE_ALL && subpage == 0xff))) {
        invalid_field(m);
        return;
    }
    uint8_t *p = r + hdr;
    p[0] = PAGE_CACHING;
    p[1] = 0x12;
    if (pc != 1)                         /* current and default values; none changeable */
        p[2] = 0x04;                     /* WCE */
    size_t len = hdr + 20;
    uint8_t wp = m->read_only ? 0x80 : 0;
    if (ten) {
        st_be(r, 2, len - 2);
        r[3] = wp;
    } else {
        r[0] = (uint8_t)(len - 1);
        r[2] = wp;
    }
    reply(m, r, len, ten ? (size_t)ld_be(cdb + 7, 2) : cdb[4]);
}

static void cmd_rw(struct usb_msd *m, const uint8_t *cdb, uint64_t lba, uint64_t n, bool write)
{
    if (!in_range(m, lba, n))
        return;
    if (write && m->read_only) {
        check(m, SK_DATA_PROTECT, ASC_WRITE_PROTECTED, 0);
        return;
    }
    m->from_disk = true;
    m->disk_off = lba * BLOCK;
    m->buf_start = m->buf_fill = 0;
    begin_data(m, !write, n * BLOCK);
    if (write && (cdb[1] & 0x08))        /* FUA: on the medium before the status */
        m->flush = true;
}

static void no_data(struct usb_msd *m)
{
    begin_data(m, false, 0);
}

static void execute(struct usb_msd *m, const uint8_t *cdb)
{
    if (cdb[0] != REQUEST_SENSE)
        set_sense(m, SK_NO_SENSE, 0, 0);
    switch (cdb[0]) {
    case TEST_UNIT_READY:
    case PREVENT_ALLOW:                  /* nothing to lock: the medium stays */
    case START_STOP_UNIT:
        no_data(m);
        return;
    case REQUEST_SENSE:
        cmd_request_sense(m, cdb);
        return;
    case INQUIRY:
        cmd_inquiry(m, cdb);
        return;
    case READ_CAPACITY_10:
        cmd_read_capacity_10(m);
        return;
    case SERVICE_ACTION_IN_16:
        if ((cdb[1] & 0x1f) == SAI_READ_CAPACITY_16)
            cmd_read_capacity_16(m, cdb);
        else
            invalid_field(m);
        return;
    case READ_FORMAT_CAPACITIES:
        cmd_read_format_capacities(m, cdb);
        return;
    case MODE_SENSE_6:
    case MODE_SENSE_10:
        cmd_mode_sense(m, cdb, cdb[0] == MODE_SENSE_10);
        return;
    case READ_10:
    case WRITE_10:
        cmd_rw(m, cdb, ld_be(cdb + 2, 4), ld_be(cdb + 7, 2), cdb[0] == WRITE_10);
        return;
    case READ_12:
    case WRITE_12:
        cmd_rw(m, cdb, ld_be(cdb + 2, 4), ld_be(cdb + 6, 4), cdb[0] == WRITE_12);
        return;
    case READ_16:
    case WRITE_16:
        cmd_rw(m, cdb, ld_be(cdb + 2, 8), ld_be(cdb + 10, 4), cdb[0] == WRITE_16);
        return;
    case VERIFY_10:
        if (cdb[1] & 0x06)               /* BYTCHK: compare with data we would need */
            invalid_field(m);
        else if (in_range(m, ld_be(cdb + 2, 4), ld_be(cdb + 7, 2)))
            no_data(m);
        return;
    case SYNCHRONIZE_CACHE_10:
    case SYNCHRONIZE_CACHE_16: {
        bool ten = cdb[0] == SYNCHRONIZE_CACHE_10;
        /* Zero blocks: to the end of the medium. */
        if (in_range(m, ld_be(cdb + 2, ten ? 4 : 8), 0)) {
            m->flush = true;
            no_data(m);
        }
        return;
    }
    default:
        check(m, SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE, 0);
    }
}

/* --- Bulk-Only Transport ----------------------------------------------- */

/* A CBW that is not valid (BOT 6.2.1): both pipes stall until the host
 * does Reset Recovery (BOT 5.3.4). */
static enum usb_status invalid_cbw(struct usb_msd *m, const char *why)
{
    log_guest_error("%s: invalid CBW (%s): stalling until reset", m->dev.name, why);
    m->state = BOT_STALLED;
    m->dev.halted |= 1u << (16 + EP_IN);   /* the OUT pipe halts with this transfer */
    return USB_STALL;
}

static enum usb_status take_cbw(struct usb_msd *m, struct usb_xfer *x)
{
    const uint8_t *c = x->buf;
    if (x->len != CBW_LEN)
        return invalid_cbw(m, "wrong length");
    if (ld_le(c, 4) != CBW_SIGNATURE)
        return invalid_cbw(m, "bad signature");
    x->actual = CBW_LEN;
    m->tag = (uint32_t)ld_le(c + 4, 4);
    m->h_len = (uint32_t)ld_le(c + 8, 4);
    m->h_in = c[12] & 0x80;
    m->status = CSW_GOOD;
    m->flush = false;
    m->moved = m->written = 0;
    m->buf_start = m->buf_fill = 0;
    uint8_t cb_len = c[14];
    /* Meaningful (BOT 6.2.2): reserved bits clear, LUN 0, a CDB of 1-16
     * bytes.  One that is not is not run. */
    if ((c[12] & 0x7f) || c[13] != 0 || cb_len < 1 || cb_len > 16) {
        log_guest_error("%s: CBW not meaningful (flags %#x, LUN byte %#x, CDB length %u)", m->dev.name,
                        c[12], c[13], cb_len);
        m->status = CSW_PHASE_ERROR;
        begin_data(m, false, 0);
        return USB_OK;
    }
    uint8_t cdb[16] = { 0 };
    memcpy(cdb, c + 15, cb_len);
    execute(m, cdb);
    return USB_OK;
}

static enum usb_status data_in(struct usb_msd *m, struct usb_xfer *x)
{
    while (x->actual < x->len && m->moved < m->todo) {
        uint32_t end = m->buf_start + m->buf_fill;
        if (m->moved < end) {
            uint32_t n = MIN(x->len - x->actual, MIN(end, m->todo) - m->moved);
            memcpy(x->buf + x->actual, m->io_buf + (m->moved - m->buf_start), n);
            x->actual += n;
            m->moved += n;
            continue;
        }
        if (!m->from_disk)
            break;
        /* The next chunk; moved is a multiple of CHUNK here. */
        m->buf_start = m->moved;
        m->buf_fill = 0;
        uint32_t len = (uint32_t)MIN((uint64_t)CHUNK, m->d_len - m->moved);
        if (submit_io(m, IO_READ, m->disk_off + m->moved, len))
            return USB_ASYNC;
    }
    /* Everything went out in earlier, full transfers and the host wants
     * more: a STALL ends the stage (BOT 6.7.2, cases 4 and 5). */
    if (x->actual == 0 && m->moved > 0 && m->moved == m->todo && m->moved < m->h_len) {
        m->state = BOT_CSW;
        return USB_STALL;
    }
    /* A short packet (a zero-length one for no data), or all the host
     * asked for, ends it. */
    if (x->actual < x->len || m->moved == m->h_len)
        m->state = BOT_CSW;
    return USB_OK;
}

static enum usb_status data_out(struct usb_msd *m, struct usb_xfer *x)
{
    while (x->actual < x->len && m->moved < m->h_len) {
        uint32_t n = MIN(x->len - x->actual, m->h_len - m->moved);
        if (m->moved >= m->todo) {       /* more than the device takes: dropped */
            x->actual += n;
            m->moved += n;
            continue;
        }
        n = MIN(n, MIN(m->todo - m->moved, CHUNK - m->buf_fill));
        memcpy(m->io_buf + m->buf_fill, x->buf + x->actual, n);
        m->buf_fill += n;
        x->actual += n;
        m->moved += n;
        if (m->buf_fill == CHUNK || m->moved == m->todo) {
            if (submit_io(m, IO_WRITE, m->disk_off + (m->moved - m->buf_fill), m->buf_fill))
                return USB_ASYNC;
        }
    }
    if (m->moved == m->h_len)
        m->state = BOT_CSW;
    return USB_OK;
}

static enum usb_status send_csw(struct usb_msd *m, struct usb_xfer *x)
{
    if (m->flush) {
        m->flush = false;
        if (submit_io(m, IO_FLUSH, 0, 0))
            return USB_ASYNC;
    }
    /* The residue: what the host announced less what the device used. */
    uint32_t used = m->h_in ? m->moved : m->written;
    uint8_t csw[CSW_LEN];
    st_le(csw, 4, CSW_SIGNATURE);
    st_le(csw + 4, 4, m->tag);
    st_le(csw + 8, 4, m->h_len - MIN(used, m->h_len));
    csw[12] = m->status;
    uint32_t n = MIN(x->len, (uint32_t)CSW_LEN);
    memcpy(x->buf, csw, n);
    x->actual = n;
    m->state = BOT_CBW;
    return n < CSW_LEN ? USB_BABBLE : USB_OK;
}

/* Runs transfer x as far as it goes now. */
static enum usb_status pump(struct usb_msd *m, struct usb_xfer *x)
{
    switch (m->state) {
    case BOT_CBW:
        return x->in ? USB_STALL : take_cbw(m, x);
    case BOT_DATA:
        if (x->in != m->h_in)
            return USB_STALL;
        return x->in ? data_in(m, x) : data_out(m, x);
    case BOT_CSW:
        return x->in ? send_csw(m, x) : USB_STALL;
    case BOT_STALLED:
    default:
        return USB_STALL;
    }
}

/* Back to waiting for a CBW; results of I/O still in flight are dropped. */
static void bot_reset(struct usb_msd *m)
{
    m->state = BOT_CBW;
    m->flush = false;
    m->buf_start = m->buf_fill = 0;
    m->gen++;
}

/* --- USB side ------------------------------------------------------------ */

static enum usb_status msd_control(struct usb_device *d, struct usb_xfer *x)
{
    struct usb_msd *m = d->opaque;
    uint8_t type = x->setup[0], req = x->setup[1];
    if ((type & USB_TYPE_MASK) != USB_TYPE_CLASS)
        return usb_std_control(d, x);
    /* Class requests go to interface 0 with wValue 0 (BOT 3.1, 3.2). */
    if ((type & USB_RECIP_MASK) != USB_RECIP_INTERFACE || usb_setup_index(x) != 0 ||
        usb_setup_value(x) != 0 || !d->config)
        return USB_STALL;
    if (req == REQ_BOMS_RESET && !x->in && usb_setup_length(x) == 0) {
        bot_reset(m);           /* halts stay until the host clears them (BOT 3.1) */
        return USB_OK;
    }
    if (req == REQ_GET_MAX_LUN && x->in && usb_setup_length(x) == 1)
        return usb_control_reply(x, "\0", 1);      /* one LUN */
    return USB_STALL;
}

static enum usb_status msd_data(struct usb_device *d, struct usb_xfer *x)
{
    struct usb_msd *m = d->opaque;
    if (x->ep != (x->in ? EP_IN : EP_OUT))
        return USB_STALL;
    if (m->held)
        return USB_STALL;       /* BOT moves one transfer at a time */
    m->held = x;
    if (m->io_busy)
        return USB_ASYNC;       /* older I/O first; io_done runs x then */
    enum usb_status st = pump(m, x);
    if (st != USB_ASYNC)
        m->held = NULL;
    return st;
}

static void msd_cancel(struct usb_device *d, struct usb_xfer *x)
{
    struct usb_msd *m = d->opaque;
    if (m->held == x)
        m->held = NULL;
}

static void msd_reset(struct usb_device *d)
{
    struct usb_msd *m = d->opaque;
    bot_reset(m);
    set_sense(m, SK_NO_SENSE, 0, 0);
}

static void msd_configured(struct usb_device *d, uint8_t value)
{
    (void)value;
    bot_reset(d->opaque);
}

static const struct usb_device_ops msd_ops = {
    .control = msd_control,
    .data = msd_data,
    .cancel = msd_cancel,
    .reset = msd_reset,
    .configured = msd_configured,
};

struct usb_msd *usb_msd_new(struct evloop *loop, const char *path, const char *format, bool read_only,
                            unsigned index, char *err, size_t errlen)
{
    struct usb_msd *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->blk = blk_open_format(loop, path, format, read_only, err, errlen);
    if (!m->blk) {
        free(m);
        return NULL;
    }
    m->blocks = blk_size(m->blk) / BLOCK;
    if (m->blocks == 0) {
        snprintf(err, errlen, "%s: disk image smaller than one block", path);
        blk_close(m->blk);
        free(m);
        return NULL;
    }
    m->read_only = blk_read_only(m->blk);
    /* BOT 4.1.1: a serial of at least 12 hex digits, unique per device. */
    snprintf(m->serial, sizeof(m->serial), "B0D1%08X", index & 0xffffffffu);
    m->strings[STR_MANUFACTURER] = "Burrow";
    m->strings[STR_PRODUCT] = "Burrow USB Disk";
    m->strings[STR_SERIAL] = m->serial;
    m->descs = (struct usb_descriptors){
        .device = device_desc, .config = config_desc, .strings = m->strings, .nstrings = STR_COUNT,
    };
    usb_device_init(&m->dev, "usb-disk", USB_SPEED_HIGH, &msd_ops, &m->descs, m);
    msd_reset(&m->dev);
    return m;
}

void usb_msd_free(struct usb_msd *m)
{
    if (!m)
        return;
    m->held = NULL;
    blk_close(m->blk);          /* io_done may run: nothing is held */
    free(m);
}

struct usb_device *usb_msd_device(struct usb_msd *m)
{
    return &m->dev;
}
