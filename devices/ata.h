/* ATA devices behind a SATA host controller: hard disks (ATA8-ACS command
 * set) and packet devices (ATAPI, with the MMC command set for CD/DVD
 * drives in atapi.c).
 *
 * The host controller (ahci.c) turns a command FIS into a struct ata_req
 * with the data buffers already mapped (the PRD table as host iovecs) and
 * hands it to ata_execute().  The device fills in the result registers and
 * calls req->done exactly once: before ata_execute() returns for commands
 * without media access, later from the event loop for block I/O. */
#ifndef BURROW_ATA_H
#define BURROW_ATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct blk;
struct evloop;

#define ATA_SECTOR_SIZE      512
#define ATAPI_BLOCK_SIZE     2048

/* Status register (ATA8-ACS 6.1) */
#define ATA_STAT_ERR         0x01
#define ATA_STAT_DRQ         0x08
#define ATA_STAT_DSC         0x10   /* obsolete seek complete; drives still set it */
#define ATA_STAT_DF          0x20
#define ATA_STAT_DRDY        0x40
#define ATA_STAT_BSY         0x80

/* Error register */
#define ATA_ERR_ABRT         0x04
#define ATA_ERR_IDNF         0x10
#define ATA_ERR_UNC          0x40

/* Commands (ATA8-ACS, table of command codes) */
#define ATA_CMD_NOP                  0x00
#define ATA_CMD_DEVICE_RESET         0x08
#define ATA_CMD_READ_SECTORS         0x20
#define ATA_CMD_READ_SECTORS_EXT     0x24
#define ATA_CMD_READ_DMA_EXT         0x25
#define ATA_CMD_READ_NATIVE_MAX_EXT  0x27
#define ATA_CMD_READ_LOG_EXT         0x2f
#define ATA_CMD_WRITE_SECTORS        0x30
#define ATA_CMD_WRITE_SECTORS_EXT    0x34
#define ATA_CMD_WRITE_DMA_EXT        0x35
#define ATA_CMD_READ_VERIFY          0x40
#define ATA_CMD_READ_VERIFY_EXT      0x42
#define ATA_CMD_READ_FPDMA_QUEUED    0x60
#define ATA_CMD_WRITE_FPDMA_QUEUED   0x61
#define ATA_CMD_EXEC_DEVICE_DIAG     0x90
#define ATA_CMD_INIT_DEV_PARAMS      0x91
#define ATA_CMD_PACKET               0xa0
#define ATA_CMD_IDENTIFY_PACKET      0xa1
#define ATA_CMD_SET_MULTIPLE         0xc6
#define ATA_CMD_READ_DMA             0xc8
#define ATA_CMD_WRITE_DMA            0xca
#define ATA_CMD_STANDBY_IMMEDIATE    0xe0
#define ATA_CMD_IDLE_IMMEDIATE       0xe1
#define ATA_CMD_STANDBY              0xe2
#define ATA_CMD_IDLE                 0xe3
#define ATA_CMD_CHECK_POWER_MODE     0xe5
#define ATA_CMD_FLUSH_CACHE          0xe7
#define ATA_CMD_FLUSH_CACHE_EXT      0xea
#define ATA_CMD_IDENTIFY             0xec
#define ATA_CMD_SET_FEATURES         0xef
#define ATA_CMD_READ_NATIVE_MAX      0xf8

/* Signatures a device reports after reset (sector count, LBA low/mid/high),
 * as AHCI's PxSIG packs them. */
#define ATA_SIG_DISK         0x00000101u
#define ATA_SIG_ATAPI        0xeb140101u

/* How the device moves data for a command: the host controller picks the
 * FIS it sends back from this. */
enum ata_proto {
    ATA_PROTO_NODATA,
    ATA_PROTO_PIO_IN,
    ATA_PROTO_PIO_OUT,
    ATA_PROTO_DMA,
    ATA_PROTO_FPDMA,
};

/* Shadow registers of a Register Host-to-Device FIS (SATA 3.x, 10.5.5). */
struct ata_taskfile {
    uint8_t command;
    uint16_t feature;       /* feature (7:0) and feature exp (15:8) */
    uint16_t count;         /* count and count exp */
    uint64_t lba;           /* 48 bits */
    uint8_t device;
    uint8_t control;
};

struct ata_dev;

struct ata_req {
    /* Input, from the host controller */
    struct ata_taskfile tf;
    uint8_t packet[16];            /* ATAPI command packet (ACMD) */
    const struct iovec *iov;       /* data buffers in guest memory */
    int iovcnt;
    uint64_t buf_len;              /* bytes the buffers hold */
    void (*done)(struct ata_req *r);
    void *opaque;                  /* the host controller's */

    /* Output: result registers for the device-to-host FIS */
    enum ata_proto proto;
    uint8_t status, error;
    uint16_t count;                /* ATAPI: interrupt reason */
    uint64_t lba;
    uint8_t device;
    uint32_t transferred;          /* bytes moved (PRD byte count) */

    /* The device's bookkeeping */
    struct ata_dev *dev;
    uint64_t io_lba;               /* for the NCQ error log */
    uint16_t io_count;
    bool flush_after;
};

/* NCQ error information (ATA8-ACS, log address 10h). */
struct ata_ncq_error {
    bool valid;
    uint8_t tag, status, error, device;
    uint64_t lba;
    uint16_t count;
};

struct ata_dev {
    bool atapi;
    struct evloop *loop;
    struct blk *blk;               /* NULL: no medium in the drive */
    uint64_t sectors;              /* disks: 512-byte sectors; CD: 2048-byte blocks */
    char serial[21], firmware[9], model[41];
    bool write_cache;
    uint8_t xfer_mode;             /* from SET FEATURES 03h */
    uint8_t multiple;              /* SET MULTIPLE sectors per block */
    struct ata_ncq_error ncq_err;

    /* ATAPI state (atapi.c) */
    uint8_t sense_key, asc, ascq;  /* current sense data */
    bool unit_attention;           /* report 28h/00h to the next command */
    bool locked;                   /* PREVENT ALLOW MEDIUM REMOVAL */
    bool tray_open;
    uint8_t media_event;           /* GET EVENT STATUS media event code pending */
    char *path;                    /* current medium */
};

/* Opens a disk image.  Returns 0, or -1 with a message in err. */
int ata_disk_init(struct ata_dev *d, struct evloop *loop, const char *path, const char *format, bool read_only,
                  char *err, size_t errlen);
/* A CD/DVD drive; path may be NULL (empty drive).  Returns 0 or -1. */
int atapi_init(struct ata_dev *d, struct evloop *loop, const char *path, char *err, size_t errlen);
/* Waits for I/O in flight (their done callbacks run), closes the medium. */
void ata_dev_close(struct ata_dev *d);
/* Waits for I/O in flight. */
void ata_dev_drain(struct ata_dev *d);
/* Device reset (COMRESET, DEVICE RESET): drains, forgets errors. */
void ata_dev_reset(struct ata_dev *d);
uint32_t ata_signature(const struct ata_dev *d);
/* True for the NCQ commands (READ/WRITE FPDMA QUEUED); *tag gets the tag. */
bool ata_is_ncq(const struct ata_taskfile *tf, uint8_t *tag);

/* Runs one command; req->done is called exactly once. */
void ata_execute(struct ata_dev *d, struct ata_req *r);

/* --- shared with atapi.c ------------------------------------------------ */

/* Copies a device-produced buffer to the request's buffers; sets
 * transferred.  Returns the bytes copied. */
size_t ata_copy_out(struct ata_req *r, const void *buf, size_t len);
/* Writes an ATA string (byte-swapped words, blank padded) into IDENTIFY data. */
void ata_id_string(uint16_t *id, unsigned word, unsigned words, const char *s);
void ata_id_checksum(uint16_t *id);
void ata_finish_ok(struct ata_req *r);
void ata_finish_error(struct ata_req *r, uint8_t error);

/* ATAPI (atapi.c): IDENTIFY PACKET DEVICE data and the PACKET command. */
void atapi_identify(struct ata_dev *d, uint16_t id[256]);
void atapi_packet(struct ata_dev *d, struct ata_req *r);

/* Media: eject empties the drive (refused while the guest has locked it,
 * unless force); change_media loads a new image (read-only) and reports a
 * unit attention to the guest.  Return 0, or -1 with a message in err. */
int atapi_eject(struct ata_dev *d, bool force, char *err, size_t errlen);
int atapi_change_media(struct ata_dev *d, const char *path, char *err, size_t errlen);
bool atapi_has_medium(const struct ata_dev *d);

#endif
