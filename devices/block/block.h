/* Block backends: disk images behind device models.
 *
 * A struct blk is an open image; its format is handled by a driver (an ops
 * table, struct blk_driver: raw files and block devices, and qcow2 images,
 * devices/block/qcow2.h).  All I/O is asynchronous: a request submitted
 * with blk_readv() and friends completes later on the event loop by
 * calling cb(opaque, result), where result is the number of bytes
 * transferred (0 for flush and discard) or a negative errno.  A
 * submission that returns 0 always gets exactly one callback, never from
 * inside the submitting call; one that returns a negative errno gets none.
 *
 * Requests go through io_uring when the kernel allows it, otherwise they
 * are carried out synchronously (with one warning) and still completed from
 * the event loop.  Setting the environment variable BURROW_BLOCK_SYNC=1
 * forces the synchronous path. */
#ifndef BURROW_BLOCK_H
#define BURROW_BLOCK_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

struct evloop;
struct blk;
struct blk_aio;

typedef void (*blk_cb)(void *opaque, int result);

struct blk_driver {
    const char *name;
    /* Opens path; on failure returns -errno and writes a message to err. */
    int (*open)(struct blk *b, const char *path, bool read_only, char *err, size_t errlen);
    /* Called after all requests have completed. */
    void (*close)(struct blk *b);
    /* Offsets and lengths are checked against the size by the caller. */
    int (*readv)(struct blk *b, uint64_t off, const struct iovec *iov, int iovcnt, blk_cb cb, void *opaque);
    int (*writev)(struct blk *b, uint64_t off, const struct iovec *iov, int iovcnt, blk_cb cb, void *opaque);
    int (*flush)(struct blk *b, blk_cb cb, void *opaque);
    int (*discard)(struct blk *b, uint64_t off, uint64_t len, blk_cb cb, void *opaque);
    /* Optional, synchronous, for tools: see blk_block_status(). */
    int (*block_status)(struct blk *b, uint64_t off, uint64_t len, uint64_t *pnum);
};

struct blk {
    const struct blk_driver *drv;
    void *drv_state;             /* the driver's */
    struct blk_aio *aio;         /* request engine shared by the driver */
    uint64_t size;               /* bytes, set by the driver's open */
    bool read_only;
    bool can_discard;            /* set by the driver's open */
    /* Raw image whose format was detected rather than named: a write that
     * would make its first sector look like another format (or its last
     * like a fixed VHD's footer) is refused, so
     * a guest cannot turn its disk into, say, a qcow2 image with a backing
     * file pointing at a host file the next time it is opened. */
    bool guard_sector0;
};

/* Opens an image whose format is detected from its first bytes, like
 * blk_open_format(loop, path, NULL, ...). */
struct blk *blk_open(struct evloop *loop, const char *path, bool read_only, char *err, size_t errlen);
/* Opens an image in `format` ("raw", "qcow2", or one of the formats Burrow
 * only reads: "vdi", "vmdk", "vhd", "vhdx", devices/block/roimage.h), or
 * with format NULL in the format its header shows (blk_probe_fd()), raw
 * when it shows none.  A file that looks like a format Burrow cannot read
 * (qed, luks, qcow) is refused unless format is "raw"; the read-only
 * formats refuse an open for writing.  Returns NULL with a message in err.
 * With loop NULL, completions are delivered only by blk_drain() (tools). */
struct blk *blk_open_format(struct evloop *loop, const char *path, const char *format,
                            bool read_only, char *err, size_t errlen);
/* The driver's name: "raw", "qcow2", "vdi", "vmdk", "vhd" or "vhdx". */
static inline const char *blk_format(const struct blk *b) { return b->drv->name; }

/* Names the image format that the first bytes of a file show ("qcow2",
 * "qcow", "vmdk", "vhd", "vhdx", "vdi", "qed", "luks"), or NULL when they
 * show none (raw data).  len should be at least 512. */
const char *blk_probe(const uint8_t *buf, size_t len);
/* The same for an open file, which also finds a fixed VHD image by the
 * footer in its last 512 bytes (it has no header).  NULL: raw data, or a
 * file that cannot be read (an open then says why). */
const char *blk_probe_fd(int fd);
/* The footer part of that: the last 512 bytes of a file of size bytes. */
const char *blk_probe_tail(const uint8_t *tail, uint64_t size);
/* True for the formats Burrow reads but does not write. */
bool blk_format_read_only(const char *format);
/* Waits for in-flight requests (their callbacks run), then closes. */
void blk_close(struct blk *b);

/* Locks an open image file as QEMU does (devices/block/lock.c): a writer
 * excludes every other opener, readers exclude writers, whether Burrow or
 * QEMU opened them.  -EBUSY with a message when another has it. */
int blk_lock_image(int fd, bool write, const char *path, char *err, size_t errlen);
void blk_unlock_image(int fd);

static inline uint64_t blk_size(const struct blk *b) { return b->size; }
static inline bool blk_read_only(const struct blk *b) { return b->read_only; }
static inline bool blk_can_discard(const struct blk *b) { return b->can_discard; }
/* True when requests go through io_uring. */
bool blk_is_async(const struct blk *b);

/* Submissions; -EINVAL beyond the end, -EROFS for writes to a read-only
 * image. */
int blk_readv(struct blk *b, uint64_t off, const struct iovec *iov, int iovcnt, blk_cb cb, void *opaque);
int blk_writev(struct blk *b, uint64_t off, const struct iovec *iov, int iovcnt, blk_cb cb, void *opaque);
int blk_flush(struct blk *b, blk_cb cb, void *opaque);
/* Deallocates the range (the data then reads as zeroes on raw files);
 * advisory: where the file system cannot do it, completes with 0. */
int blk_discard(struct blk *b, uint64_t off, uint64_t len, blk_cb cb, void *opaque);

/* For tools (loop NULL): whether [off, off+len) begins with data the image
 * stores (1) or with a region that reads as zeroes without being stored
 * (0: a hole, an unallocated block), *pnum set to how far that holds
 * (1..len).  Formats that cannot tell say 1 for everything.  A negative
 * errno when the image's tables are bad. */
int blk_block_status(struct blk *b, uint64_t off, uint64_t len, uint64_t *pnum);

/* Runs until every submitted request has completed and called back. */
void blk_drain(struct blk *b);

/* Synchronous forms for tools that own the image alone (opened with loop
 * NULL): they submit, then blk_drain().  Not for device models, whose other
 * requests would complete inside the call.  Return 0 or a negative errno. */
int blk_pread(struct blk *b, uint64_t off, void *buf, size_t len);
int blk_pwrite(struct blk *b, uint64_t off, const void *buf, size_t len);
int blk_flush_sync(struct blk *b);

/* --- request engine, for drivers ---------------------------------------- */

enum blk_aio_op { BLK_AIO_READ, BLK_AIO_WRITE, BLK_AIO_FLUSH, BLK_AIO_DISCARD, BLK_AIO_WORK };

struct blk_aio *blk_aio_new(struct evloop *loop);
/* Drains, then frees. */
void blk_aio_free(struct blk_aio *a);
bool blk_aio_is_uring(const struct blk_aio *a);
/* iov is copied; len is used by BLK_AIO_DISCARD only. */
int blk_aio_submit(struct blk_aio *a, enum blk_aio_op op, int fd, uint64_t off,
                   const struct iovec *iov, int iovcnt, uint64_t len, blk_cb cb, void *opaque);
/* Runs work(arg) on the engine's worker thread, which holds no lock of the
 * caller's (so a vCPU that submits does not wait for the disk), then
 * cb(opaque, work's result) on the event loop.  Work runs one at a time,
 * in submission order.  With no event loop, work runs inside the call and
 * its callback comes from blk_aio_drain(). */
int blk_aio_offload(struct blk_aio *a, int (*work)(void *arg), void *arg, blk_cb cb, void *opaque);
void blk_aio_drain(struct blk_aio *a);
/* Requests submitted and not yet called back. */
unsigned blk_aio_pending(const struct blk_aio *a);

extern const struct blk_driver blk_driver_raw;
extern const struct blk_driver blk_driver_qcow2;
extern const struct blk_driver blk_driver_vdi, blk_driver_vmdk, blk_driver_vhd, blk_driver_vhdx;

#endif
