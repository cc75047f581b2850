/* Images in other virtualizers' formats: VDI (VirtualBox), VMDK (VMware),
 * VHD and VHDX (Virtual PC, Hyper-V).
 *
 * Burrow reads them and never writes them: such a disk is converted to
 * qcow2 (`burrow disk convert`) or attached read-only.  Writing them would
 * mean keeping four more allocation schemes crash-safe for little gain,
 * when a conversion gives a qcow2 image that Burrow writes well.
 *
 * Each format's file (vdi.c, vmdk.c, vhd.c, vhdx.c) says how its image
 * maps a guest offset (struct ro_format); this layer does the rest: the
 * block driver (requests run whole on the request engine's worker
 * thread), parent chains of differencing images, allocation status for
 * conversions, and what `burrow disk info` shows. */
#ifndef BURROW_ROIMAGE_H
#define BURROW_ROIMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct blk;
struct ro_image;

#define RO_MAX_CHAIN 16         /* parents below an image, at most */

enum ro_kind {
    RO_DATA,      /* stored in file `fd` at byte `host` */
    RO_BUF,       /* in memory at `buf` (a decompressed grain), valid until
                   * the next map call on the same image */
    RO_ZERO,      /* stored as zeroes, or zeroes by the format's rules */
    RO_PARENT,    /* not in this image: the parent's bytes, zeroes without one */
};

struct ro_map {
    enum ro_kind kind;
    uint64_t len;       /* bytes from the offset asked that map alike: 1..asked */
    int fd;
    uint64_t host;
    const uint8_t *buf;
};

struct ro_info {
    const char *format;         /* "vdi", "vmdk", "vhd", "vhdx" */
    char subformat[32];         /* "dynamic", "fixed", "streamOptimized", ... */
    uint64_t size;              /* virtual, bytes */
    uint64_t allocated;         /* guest bytes this image stores itself */
    uint64_t host_bytes;        /* what its files take on the host */
    uint32_t block_size;        /* allocation unit (block, grain); 0: none */
    char parent[1024];          /* parent file as the image names it; "" */
};

struct ro_format {
    const char *name;
    /* Reads and checks the image at path: sets img->size and img->state;
     * with open_parent, also img->parent (through ro_open_parent()).  On
     * failure, -errno with a message in err; close is called anyway. */
    int (*open)(struct ro_image *img, const char *path, bool open_parent, char *err, size_t errlen);
    void (*close)(struct ro_image *img);
    /* How [off, off+len) begins (off < img->size, len > 0, off + len <=
     * img->size); a negative errno (ro_corrupt() for bad metadata). */
    int (*map)(struct ro_image *img, uint64_t off, uint64_t len, struct ro_map *m);
    /* Fills in subformat, block_size, parent and host_bytes. */
    void (*describe)(struct ro_image *img, struct ro_info *info);
};

struct ro_image {
    const struct ro_format *fmt;
    void *state;                /* the format's */
    uint64_t size;
    int depth;                  /* 0: the image opened; 1: its parent ... */
    struct ro_image *parent;    /* NULL: what this image lacks reads as zeroes */
    char why[200];              /* the first inconsistency found */
};

extern const struct ro_format ro_format_vdi, ro_format_vmdk, ro_format_vhd, ro_format_vhdx;

/* The format called name ("vdi", "vmdk", "vhd", "vhdx"), or NULL. */
const struct ro_format *ro_format_find(const char *name);

/* Opens an image of format fmt (and, with open_parent, its parents). */
int ro_open(struct ro_image **out, const struct ro_format *fmt, const char *path, int depth,
            bool open_parent, char *err, size_t errlen);
void ro_close(struct ro_image *img);

/* For formats' open: opens the parent `name` of img (relative to the
 * folder of child_path), of format fmt, into img->parent. */
int ro_open_parent(struct ro_image *img, const struct ro_format *fmt, const char *child_path,
                   const char *name, char *err, size_t errlen);

/* The path of parent `name` of the image at child_path: a relative name is
 * relative to the child's folder.  0, or -ENAMETOOLONG. */
int ro_parent_path(const char *child_path, const char *name, char *full, size_t len);

/* Opens a file of an image read-only, with a reader's lock (QEMU's
 * protocol, devices/block/lock.c); *size gets its length. */
int ro_open_file(const char *path, int *fd, uint64_t *size, char *err, size_t errlen);
/* Adds what the file fd takes on the host to info->host_bytes. */
void ro_count_file(struct ro_info *info, int fd);
/* Reads exactly len bytes at off: -EIO for a file that ends sooner. */
int ro_pread(int fd, void *buf, size_t len, uint64_t off);
/* UTF-16 (little- or big-endian) of n bytes into a UTF-8 string of at
 * most len bytes with its NUL; stops at a NUL.  -EINVAL for a string
 * that is not UTF-16 or does not fit. */
int ro_utf16_to_utf8(const uint8_t *in, size_t n, bool big_endian, char *out, size_t len);
/* Logs no inconsistency (tools report them themselves, ro_error()). */
void ro_set_quiet(bool on);
/* Whether any two of the n places (sorted here, in place) lie closer than
 * len to each other: tables whose blocks share bytes of the file, which
 * no writer makes, are refused, so the work an image can ask for stays
 * bounded by what the file holds. */
bool ro_overlap(uint64_t *at, size_t n, uint64_t len);
/* Records the first inconsistency of img (what, with a number); -EIO. */
int ro_corrupt(struct ro_image *img, const char *what, uint64_t v);

/* Reads [off, off+len) of img through its parents; bytes past the end
 * read as zeroes.  0 or a negative errno. */
int ro_read(struct ro_image *img, uint64_t off, void *buf, size_t len);
/* Whether [off, off+len) begins with bytes some image of the chain stores
 * (1) or with bytes that read as zeroes without being stored (0); *pnum
 * gets how far that holds.  Negative errno on failure. */
int ro_status(struct ro_image *img, uint64_t off, uint64_t len, uint64_t *pnum);

/* Describes the image at path in `format` (its parent need not exist). */
int ro_info(const char *path, const char *format, struct ro_info *info, char *err, size_t errlen);

/* The block driver's open for a format: read-only only. */
int ro_blk_open(struct blk *b, const struct ro_format *fmt, const char *path, bool read_only,
                char *err, size_t errlen);
/* Why requests on b failed with -EIO: "" when b is no such image or all is well. */
const char *ro_error(const struct blk *b);

#endif
