/* Disk image operations behind `burrow disk` (and the VM manager): create,
 * inspect, grow and convert raw and qcow2 images, on top of the block
 * layer (devices/block); inspect and convert VDI, VMDK, VHD and VHDX
 * images, which Burrow reads but does not write.
 *
 * Functions that can fail return 0 or a negative errno and write one line
 * of text (no trailing newline) into err.  None of them leaves a half-made
 * file behind: a failed create or convert removes what it created, and an
 * existing target is never touched. */
#ifndef BURROW_APP_DISK_H
#define BURROW_APP_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses a size: bytes, or a whole number with K, M, G or T (powers of
 * 1024, optionally followed by "iB").  It must be positive and a multiple
 * of 512. */
int disk_parse_size(const char *text, uint64_t *out, char *err, size_t errlen);

/* Creates an image: format "qcow2" (64 KiB clusters, version 3) or "raw"
 * (a sparse file).  backing (qcow2 only; NULL for none) is stored as given
 * and taken relative to path's folder; with size 0 the new image gets the
 * backing file's size.  An existing path is refused. */
int disk_create(const char *path, uint64_t size, const char *format, const char *backing,
                char *err, size_t errlen);

struct disk_info {
    char format[16];               /* "raw", "qcow2", "vdi", "vmdk", "vhd", "vhdx" */
    bool read_only_format;         /* one Burrow reads but does not write */
    char subformat[32];            /* those: "dynamic", "fixed", "streamOptimized"... */
    uint64_t virtual_size;         /* bytes the guest sees */
    uint64_t actual_size;          /* bytes allocated on the host */
    uint64_t allocated_size;       /* read-only formats: guest bytes the image stores */
    uint32_t cluster_size;         /* qcow2's cluster, the others' block or grain; 0: none */
    unsigned qcow2_version;        /* 2 or 3; qcow2 only */
    unsigned refcount_bits;        /* qcow2 only */
    char backing_file[1024];       /* backing file, or parent image; "" when none */
    char backing_format[32];       /* "" when not recorded */
    bool dirty, corrupt, lazy_refcounts;
};

/* Describes the image at path (its backing file need not exist). */
int disk_get_info(const char *path, struct disk_info *info, char *err, size_t errlen);

/* Grows the image to size bytes; shrinking is refused, and so are the
 * formats Burrow only reads. */
int disk_resize(const char *path, uint64_t size, char *err, size_t errlen);

/* Called now and then during a conversion: done of total bytes. */
typedef void (*disk_progress_fn)(void *opaque, uint64_t done, uint64_t total);

/* Copies the disk contents of src (any format Burrow reads, backing chain
 * or parents flattened) into a new image dst of `format` (qcow2 or raw),
 * leaving regions that src does not store, or that read as zeroes,
 * unallocated; such regions of src are not even read.  An existing dst is refused; on failure dst is
 * removed. */
int disk_convert(const char *src, const char *dst, const char *format,
                 disk_progress_fn progress, void *opaque, char *err, size_t errlen);

/* The format of the image at path as a VM definition records it: "raw",
 * "qcow2", one Burrow only reads ("vdi", "vmdk", "vhd", "vhdx"), or the
 * name of one it cannot read ("qed", "luks", "qcow"). */
const char *disk_detect_format(const char *path);

/* A free name for a qcow2 copy of src in folder dir (NULL: src's own
 * folder): src's name with its extension replaced by .qcow2, numbered when
 * taken.  -EEXIST when none of the first hundred is free. */
int disk_qcow2_name(const char *src, const char *dir, char *out, size_t len);

/* The exact command that converts src into a qcow2 image beside it,
 * quoted for a POSIX shell: "burrow disk convert SRC DST". */
void disk_convert_command(const char *src, char *out, size_t len);

#endif
