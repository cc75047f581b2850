/* qcow2 disk images (versions 2 and 3), after the qcow2 specification
 * (QEMU's docs/interop/qcow2.txt).
 *
 * The driver itself is blk_driver_qcow2 (devices/block/block.h), opened
 * through blk_open_format().  Supported: reading and writing, cluster
 * allocation with refcounts (any refcount_order), zero clusters, reading
 * compressed (deflate) clusters, backing files (qcow2 or raw, read through;
 * partial writes copy the rest of the cluster up).  Not supported: internal
 * snapshots (such images open read-only), encryption, external data files,
 * extended L2 entries, zstd compression.  Lazy refcounts are never used.
 *
 * What follows are image-level operations for tools (`burrow disk`). */
#ifndef BURROW_QCOW2_H
#define BURROW_QCOW2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct blk;

#define QCOW2_DEFAULT_CLUSTER_BITS 16     /* 64 KiB */

struct qcow2_create_opts {
    uint64_t size;                 /* bytes, a multiple of 512 */
    unsigned cluster_bits;         /* 9..21; 0 means the default */
    unsigned refcount_bits;        /* 1, 2, 4, ... 64; 0 means 16 */
    const char *backing_file;      /* NULL for none; stored as given */
    const char *backing_format;    /* "raw" or "qcow2"; NULL: detected */
};

/* Creates a new qcow2 (version 3) image; an existing path is refused.
 * A relative backing_file is taken relative to the new image's folder (as
 * when the image is opened).  Returns 0, or -errno with a message in err. */
int qcow2_create(const char *path, const struct qcow2_create_opts *o, char *err, size_t errlen);

struct qcow2_info {
    unsigned version;              /* 2 or 3 */
    uint64_t size;                 /* virtual size, bytes */
    uint32_t cluster_size;
    unsigned refcount_bits;
    char backing_file[1024];       /* "" when none */
    char backing_format[32];       /* from the header extension; "" if absent */
    bool dirty, corrupt, lazy_refcounts;
    unsigned nb_snapshots;
    uint64_t incompatible_features, compatible_features, autoclear_features;
};

/* Reads the header of the qcow2 image at path without opening its backing
 * file.  Returns 0, or -errno with a message in err. */
int qcow2_info(const char *path, struct qcow2_info *info, char *err, size_t errlen);

/* The backing file name written in the qcow2 header at path ("" for none
 * or for a file that is not qcow2), read without taking the image's lock,
 * as `qemu-img info -U` does: for finding who depends on what, never for
 * I/O.  Returns 0 or -errno. */
int qcow2_peek_backing(const char *path, char *name, size_t len);

/* Why requests on qcow2 image b failed with -EIO because its metadata
 * makes no sense (in it or its backing chain); "" when that did not
 * happen.  Such a finding is logged once per image unless tools asked for
 * quiet with qcow2_set_quiet(true), to report it themselves. */
const char *qcow2_error(const struct blk *b);
void qcow2_set_quiet(bool on);

/* Grows the virtual size of the (closed) image at path; shrinking is
 * refused.  Returns 0, or -errno with a message in err. */
int qcow2_resize(const char *path, uint64_t new_size, char *err, size_t errlen);

#endif
