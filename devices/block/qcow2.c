/* qcow2 images (versions 2 and 3), written from the qcow2 specification.
 *
 * Design.  A request whose every table is cached and whose data lies in
 * plain clusters (reads of allocated clusters, in this image or any
 * qcow2/raw backing file below it, and writes into clusters this image
 * already owns) is planned on the submitting thread, under the image's
 * lock, and its data moves asynchronously on the request engine
 * (devices/block/aio.c).  Everything that must wait for the disk (an L2
 * table or refcount block to read, decompression, copy-up, allocation,
 * metadata write-back on flush) goes whole to the engine's worker thread,
 * which holds the image's lock, not the device lock: a vCPU that submits
 * never waits for it.  The submitting side only tries the image's lock; while
 * the worker has it, requests queue behind the worker's work instead.
 * Callbacks always come later, on the event loop.
 *
 * Crash consistency, with lazy refcounts never used:
 *  - refcount changes that allocate are written through at once, before
 *    anything can refer to the cluster (a crash then leaks, never loses);
 *    a new refcount block is made stable before the refcount table names
 *    it;
 *  - a new cluster's data is written before the L2 entry that points at it
 *    is changed, and L2 entries change in the cached table only;
 *  - cached L2 tables and the L1 table are written back on flush (or when
 *    a dirty table leaves the cache) in the order: fdatasync (data and
 *    refcounts stable), L2 tables, fdatasync, L1 entries; the flush then
 *    ends with one more fdatasync;
 *  - clusters that stop being referenced (a compressed cluster rewritten
 *    elsewhere) have their refcount dropped only after the flush that made
 *    the new reference stable.
 * So after a kill or power cut the image has, at worst, leaked clusters,
 * and every write completed before a completed flush is in it.
 *
 * Every offset, size and index read from the image is checked before use;
 * a bad one makes the request fail with -EIO (and is logged), never a
 * crash. */
#include "devices/block/qcow2.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "devices/block/block.h"
#include "devices/util.h"

/* Header fields (all big-endian) */
#define QCOW_MAGIC          0x514649fbu   /* "QFI\xfb" */
#define H_MAGIC             0
#define H_VERSION           4
#define H_BACKING_OFFSET    8
#define H_BACKING_SIZE      16
#define H_CLUSTER_BITS      20
#define H_SIZE              24
#define H_CRYPT_METHOD      32
#define H_L1_SIZE           36
#define H_L1_TABLE_OFFSET   40
#define H_RT_OFFSET         48
#define H_RT_CLUSTERS       56
#define H_NB_SNAPSHOTS      60
#define H_SNAPSHOTS_OFFSET  64
#define H_INCOMPATIBLE      72
#define H_COMPATIBLE        80
#define H_AUTOCLEAR         88
#define H_REFCOUNT_ORDER    96
#define H_HEADER_LENGTH     100
#define H_COMPRESSION_TYPE  104
#define HEADER_V2_LEN       72
#define HEADER_V3_MIN       104
#define HEADER_V3_LEN       112

#define INCOMPAT_DIRTY       (1ull << 0)
#define INCOMPAT_CORRUPT     (1ull << 1)
#define INCOMPAT_DATA_FILE   (1ull << 2)
#define INCOMPAT_COMPRESSION (1ull << 3)
#define INCOMPAT_EXTL2       (1ull << 4)
#define COMPAT_LAZY_REFCOUNTS (1ull << 0)

#define EXT_END             0x00000000u
#define EXT_BACKING_FORMAT  0xe2792acau
#define EXT_FEATURE_TABLE   0x6803f857u
#define FEATURE_ENTRY_LEN   48

/* Table entries */
#define L1E_OFFSET_MASK     0x00fffffffffffe00ull
#define L2E_OFFSET_MASK     0x00fffffffffffe00ull
#define RTE_OFFSET_MASK     0xfffffffffffffe00ull
#define OFLAG_COPIED        (1ull << 63)
#define OFLAG_COMPRESSED    (1ull << 62)
#define OFLAG_ZERO          (1ull << 0)
#define MAX_HOST_OFFSET     (1ull << 56)   /* offsets are bits 9..55 */

/* Limits against absurd (or hostile) images */
#define MAX_L1_BYTES        (32 * MiB)
#define MAX_RT_BYTES        (8 * MiB)
#define MAX_BACKING_NAME    1023
#define MAX_CHAIN           16
#define MIN_CLUSTER_BITS    9
#define MAX_CLUSTER_BITS    21
#define RB_CACHE            16     /* 64 KiB clusters, 16-bit counts: 32 GiB */

enum cl_type { CL_UNALLOC, CL_ZERO, CL_NORMAL, CL_COMPRESSED };

struct cl_map {
    enum cl_type type;
    uint64_t host;          /* data offset (compressed: byte offset) */
    uint64_t csize;         /* compressed: bytes from host to the end of its last sector */
    bool copied;            /* refcount is exactly one: writable in place */
};

struct l2_slot {
    uint64_t off;           /* 0: unused */
    uint64_t *tbl;          /* as on disk (big-endian) */
    uint64_t used;
    bool dirty;
};

struct rb_slot {
    uint64_t off;
    uint8_t *blk;
    uint64_t used;
};

struct free_range {
    uint64_t off, len;
};

struct qcow2 {
    int fd;
    bool ro;
    unsigned version, cluster_bits, l2_bits;
    uint64_t cs;                    /* cluster size */
    uint64_t size;                  /* virtual */
    uint64_t file_end;              /* bytes in the file */
    uint64_t incompat, compat, autoclear;
    uint32_t nb_snapshots;
    uint32_t crypt_method;

    uint64_t l1_off;
    uint32_t l1_size;
    uint64_t *l1;                   /* host order */
    bool l1_dirty;
    uint32_t l1_dirty_lo, l1_dirty_hi;

    uint64_t rt_off;
    uint32_t rt_clusters;
    uint64_t rt_size;               /* entries */
    uint64_t *rt;                   /* host order */
    unsigned rc_order;
    uint64_t rb_entries;            /* refcounts per block */
    struct rb_slot rb[RB_CACHE];

    struct l2_slot *l2;
    unsigned n_l2;
    uint64_t tick;
    uint64_t free_hint;             /* no free cluster below this index */

    /* Clusters of the refcount blocks and L2 tables, sorted (writable
     * images only): guest data must never be written over them. */
    uint64_t *meta;
    size_t n_meta, cap_meta;

    struct free_range *frees;       /* refcount drops waiting for a flush */
    size_t nfrees, cap_frees;

    z_stream z;
    bool z_ready;
    uint8_t *cbuf;                  /* compressed bytes */
    uint8_t *dbuf;                  /* one decompressed cluster */
    uint8_t *wbuf;                  /* the cluster being written */
    uint8_t *zero;                  /* a cluster of zeroes */

    char backing_name[MAX_BACKING_NAME + 1];
    char backing_fmt[32];
    bool has_backing;
    struct qcow2 *bq;               /* qcow2 backing file, or */
    int braw_fd;                    /* raw backing file (-1) */
    uint64_t bsize;                 /* backing file's virtual size */

    struct blk_aio *aio;            /* the top image's engine */
    char why[160];                  /* the first inconsistency found */

    /* The top image's lock covers the whole chain's state: the worker
     * holds it while it works; submitters only try it. */
    pthread_mutex_t mu;
    bool nowait;                    /* lookups from the cache only */
};

/* --- small helpers ------------------------------------------------------ */

static uint16_t be16(const void *p) { return __builtin_bswap16(ld16(p)); }
static uint32_t be32(const void *p) { return __builtin_bswap32(ld32(p)); }
static uint64_t be64(const void *p) { return __builtin_bswap64(ld64(p)); }
static void put16(void *p, uint16_t v) { st16(p, __builtin_bswap16(v)); }
static void put32(void *p, uint32_t v) { st32(p, __builtin_bswap32(v)); }
static void put64(void *p, uint64_t v) { st64(p, __builtin_bswap64(v)); }

static uint64_t div_up(uint64_t a, uint64_t b) { return a / b + (a % b != 0); }

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return ret;
}

/* Reads len bytes; what lies past the end of the file reads as zeroes. */
static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0) {
            memset(p, 0, len);
            return 0;
        }
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

static int pwrite_full(struct qcow2 *s, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    uint64_t end = off + len;
    while (len) {
        ssize_t n = pwrite(s->fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    if (end > s->file_end)
        s->file_end = end;
    return 0;
}

static int sync_file(struct qcow2 *s)
{
    return fdatasync(s->fd) < 0 ? -errno : 0;
}

static bool quiet;

void qcow2_set_quiet(bool on)
{
    quiet = on;
}

/* Metadata that makes no sense: the request fails; said once per image. */
static int corrupt(struct qcow2 *s, const char *what, uint64_t v)
{
    if (!s->why[0]) {
        snprintf(s->why, sizeof(s->why), "image is inconsistent: %s (0x%" PRIx64 "); run 'qemu-img check'",
                 what, v);
        if (!quiet)
            log_error("qcow2: %s", s->why);
    }
    return -EIO;
}

/* iovec helpers: [pos, pos+len) of the vector */
static void iov_memset(const struct iovec *iov, int n, size_t pos, size_t len)
{
    for (int i = 0; i < n && len; i++) {
        if (pos >= iov[i].iov_len) {
            pos -= iov[i].iov_len;
            continue;
        }
        size_t c = MIN(len, iov[i].iov_len - pos);
        memset((uint8_t *)iov[i].iov_base + pos, 0, c);
        len -= c;
        pos = 0;
    }
}

static void iov_copy(const struct iovec *iov, int n, size_t pos, void *buf, size_t len, bool to_iov)
{
    uint8_t *b = buf;
    for (int i = 0; i < n && len; i++) {
        if (pos >= iov[i].iov_len) {
            pos -= iov[i].iov_len;
            continue;
        }
        size_t c = MIN(len, iov[i].iov_len - pos);
        if (to_iov)
            memcpy((uint8_t *)iov[i].iov_base + pos, b, c);
        else
            memcpy(b, (uint8_t *)iov[i].iov_base + pos, c);
        b += c;
        len -= c;
        pos = 0;
    }
}

/* A new vector for [pos, pos+len); returns its length or -ENOMEM. */
static int iov_slice(const struct iovec *iov, int n, size_t pos, size_t len, struct iovec **out)
{
    int cnt = 0;
    size_t p = pos, l = len;
    for (int i = 0; i < n && l; i++) {
        if (p >= iov[i].iov_len) {
            p -= iov[i].iov_len;
            continue;
        }
        l -= MIN(l, iov[i].iov_len - p);
        p = 0;
        cnt++;
    }
    struct iovec *v = malloc(sizeof(*v) * (size_t)(cnt ? cnt : 1));
    if (!v)
        return -ENOMEM;
    cnt = 0;
    for (int i = 0; i < n && len; i++) {
        if (pos >= iov[i].iov_len) {
            pos -= iov[i].iov_len;
            continue;
        }
        size_t c = MIN(len, iov[i].iov_len - pos);
        v[cnt].iov_base = (uint8_t *)iov[i].iov_base + pos;
        v[cnt].iov_len = c;
        cnt++;
        len -= c;
        pos = 0;
    }
    *out = v;
    return cnt;
}

/* --- requests ----------------------------------------------------------- */

/* A guest request split into parts; the last part to finish calls back. */
struct q2_req {
    struct blk_aio *aio;
    blk_cb cb;
    void *opaque;
    unsigned pending;       /* parts outstanding, plus one while submitting */
    int err;
    int result;
};

static void req_put(struct q2_req *r)
{
    if (--r->pending)
        return;
    blk_cb cb = r->cb;
    void *opaque = r->opaque;
    int res = r->err ? r->err : r->result;
    free(r);
    cb(opaque, res);
}

static void req_part_done(void *opaque, int res)
{
    struct q2_req *r = opaque;
    if (res < 0 && !r->err)
        r->err = res;
    req_put(r);
}

static struct q2_req *req_new(struct blk_aio *aio, blk_cb cb, void *opaque, size_t total)
{
    struct q2_req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->aio = aio;
    r->cb = cb;
    r->opaque = opaque;
    r->pending = 1;
    r->result = (int)MIN(total, (size_t)INT32_MAX);
    return r;
}

/* An empty read: the engine completes it from the event loop at once. */
static const struct iovec no_iov;

/* Ends the submission.  When no part is in flight, an empty request on the
 * engine brings the callback back to the event loop. */
static int req_submitted(struct q2_req *r)
{
    if (r->pending == 1) {
        r->pending++;
        int ret = blk_aio_submit(r->aio, BLK_AIO_READ, -1, 0, &no_iov, 0, 0, req_part_done, r);
        if (ret < 0) {
            r->pending--;
            /* Nothing in flight: the caller gets the error instead. */
            free(r);
            return ret;
        }
    }
    req_put(r);
    return 0;
}

/* Writes all of v[0..cnt) at off; the file grows as needed. */
static int pwritev_full(struct qcow2 *s, struct iovec *v, int cnt, uint64_t off)
{
    uint64_t end = off;
    for (int i = 0; i < cnt; i++)
        end += v[i].iov_len;
    while (cnt) {
        ssize_t n = pwritev(s->fd, v, MIN(cnt, IOV_MAX), (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        off += (uint64_t)n;
        for (size_t left = (size_t)n; left && cnt;) {
            size_t c = MIN(left, v->iov_len);
            v->iov_base = (uint8_t *)v->iov_base + c;
            v->iov_len -= c;
            left -= c;
            if (!v->iov_len) {
                v++;
                cnt--;
            }
        }
    }
    if (end > s->file_end)
        s->file_end = end;
    return 0;
}

/* Data at host offset `off` of s's file (fd: s->fd, or its raw backing
 * file for reads) into/from iov[pos, pos+len): as a part of r, or
 * synchronously when r is NULL. */
static int data_io(struct qcow2 *s, int fd, struct q2_req *r, bool write, uint64_t off,
                   const struct iovec *iov, int n, size_t pos, size_t len)
{
    struct iovec *v;
    int cnt = iov_slice(iov, n, pos, len, &v);
    if (cnt < 0)
        return cnt;
    int ret = 0;
    if (r) {
        r->pending++;
        ret = blk_aio_submit(r->aio, write ? BLK_AIO_WRITE : BLK_AIO_READ, fd, off, v, cnt, 0,
                             req_part_done, r);
        if (ret < 0)
            r->pending--;
    } else if (write) {
        ret = pwritev_full(s, v, cnt, off);
    } else {
        for (int i = 0; i < cnt && !ret; i++) {
            ret = pread_full(fd, v[i].iov_base, v[i].iov_len, off);
            off += v[i].iov_len;
        }
    }
    free(v);
    return ret;
}

/* --- refcounts ---------------------------------------------------------- */

static int rb_load(struct qcow2 *s, uint64_t off, uint8_t **out)
{
    struct rb_slot *victim = &s->rb[0];
    for (int i = 0; i < RB_CACHE; i++) {
        if (s->rb[i].off == off) {
            s->rb[i].used = ++s->tick;
            *out = s->rb[i].blk;
            return 0;
        }
        if (s->rb[i].used < victim->used)
            victim = &s->rb[i];
    }
    if (s->nowait)
        return -EWOULDBLOCK;
    if ((off & (s->cs - 1)) || off >= s->file_end)
        return corrupt(s, "refcount block offset", off);
    int ret = pread_full(s->fd, victim->blk, s->cs, off);
    if (ret < 0) {
        victim->off = 0;
        victim->used = 0;
        return ret;
    }
    victim->off = off;
    victim->used = ++s->tick;
    *out = victim->blk;
    return 0;
}

static uint64_t rc_read(const uint8_t *blk, uint64_t idx, unsigned order)
{
    switch (order) {
    case 0: return (blk[idx / 8] >> (idx % 8)) & 1;
    case 1: return (blk[idx / 4] >> (2 * (idx % 4))) & 3;
    case 2: return (blk[idx / 2] >> (4 * (idx % 2))) & 15;
    case 3: return blk[idx];
    case 4: return be16(blk + 2 * idx);
    case 5: return be32(blk + 4 * idx);
    default: return be64(blk + 8 * idx);
    }
}

/* Stores the refcount; returns the byte range to write back. */
static void rc_store(uint8_t *blk, uint64_t idx, unsigned order, uint64_t v, uint64_t *boff, unsigned *blen)
{
    if (order < 3) {
        unsigned per = 8u >> order, width = 1u << order;
        unsigned shift = (unsigned)(idx % per) * width;
        uint8_t mask = (uint8_t)(((1u << width) - 1) << shift);
        uint8_t *p = &blk[idx / per];
        *p = (uint8_t)((*p & ~mask) | ((v << shift) & mask));
        *boff = idx / per;
        *blen = 1;
        return;
    }
    unsigned bytes = 1u << (order - 3);
    uint8_t *p = blk + idx * bytes;
    switch (order) {
    case 3: *p = (uint8_t)v; break;
    case 4: put16(p, (uint16_t)v); break;
    case 5: put32(p, (uint32_t)v); break;
    default: put64(p, v); break;
    }
    *boff = idx * bytes;
    *blen = bytes;
}

static uint64_t rc_max(const struct qcow2 *s)
{
    return s->rc_order == 6 ? UINT64_MAX : (1ull << (1u << s->rc_order)) - 1;
}

static int rc_get(struct qcow2 *s, uint64_t cl, uint64_t *v)
{
    uint64_t ri = cl / s->rb_entries;
    *v = 0;
    if (ri >= s->rt_size || !(s->rt[ri] & RTE_OFFSET_MASK))
        return 0;
    uint8_t *blk;
    int ret = rb_load(s, s->rt[ri] & RTE_OFFSET_MASK, &blk);
    if (ret < 0)
        return ret;
    *v = rc_read(blk, cl % s->rb_entries, s->rc_order);
    return 0;
}

/* Whether the data cluster at host may be written in place: its L2 entry
 * says COPIED, and its refcount must say one too.  A corrupt image may
 * point at a cluster whose count is zero, which the allocator would hand
 * out again: two owners, each overwriting the other.  -EWOULDBLOCK while
 * lookups are from the cache only and the count is not cached. */
static int own_cluster(struct qcow2 *s, uint64_t host)
{
    uint64_t v;
    int ret = rc_get(s, host >> s->cluster_bits, &v);
    if (ret < 0)
        return ret;
    return v == 1 ? 0 : corrupt(s, "data cluster whose refcount is not one", host);
}

/* Sets the refcounts of clusters [cl, cl+n), whose blocks exist; written
 * through, one write per refcount block. */
static int rc_set_run(struct qcow2 *s, uint64_t cl, uint64_t n, uint64_t v)
{
    if (v > rc_max(s))
        return corrupt(s, "refcount overflow at cluster", cl);
    while (n) {
        uint64_t ri = cl / s->rb_entries, idx = cl % s->rb_entries;
        uint64_t k = MIN(n, s->rb_entries - idx);
        if (ri >= s->rt_size || !(s->rt[ri] & RTE_OFFSET_MASK))
            return corrupt(s, "refcount block missing for cluster", cl);
        uint64_t boff = s->rt[ri] & RTE_OFFSET_MASK;
        uint8_t *blk;
        int ret = rb_load(s, boff, &blk);
        if (ret < 0)
            return ret;
        uint64_t lo = UINT64_MAX, hi = 0;
        for (uint64_t i = 0; i < k; i++) {
            uint64_t at;
            unsigned len;
            rc_store(blk, idx + i, s->rc_order, v, &at, &len);
            lo = MIN(lo, at);
            hi = MAX(hi, at + len);
        }
        if ((ret = pwrite_full(s, blk + lo, (size_t)(hi - lo), boff + lo)) < 0)
            return ret;
        cl += k;
        n -= k;
    }
    return 0;
}

static int rc_set(struct qcow2 *s, uint64_t cl, uint64_t v)
{
    return rc_set_run(s, cl, 1, v);
}

static int rc_drop(struct qcow2 *s, uint64_t cl)
{
    uint64_t v;
    int ret = rc_get(s, cl, &v);
    if (ret < 0)
        return ret;
    if (!v)
        return corrupt(s, "refcount already zero at cluster", cl);
    ret = rc_set(s, cl, v - 1);
    if (ret == 0 && v == 1 && cl < s->free_hint)
        s->free_hint = cl;
    return ret;
}

/* --- where the metadata lies -------------------------------------------- */

/* Index of the first entry of s->meta at or above cluster c. */
static size_t meta_find(const struct qcow2 *s, uint64_t c)
{
    size_t lo = 0, hi = s->n_meta;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->meta[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Records that cluster c now holds a refcount block or an L2 table.  New
 * ones are mostly at the end of the file, so this is mostly an append. */
static int meta_add(struct qcow2 *s, uint64_t c)
{
    if (s->ro)
        return 0;
    if (s->n_meta == s->cap_meta) {
        size_t cap = s->cap_meta ? s->cap_meta * 2 : 64;
        uint64_t *v = realloc(s->meta, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        s->meta = v;
        s->cap_meta = cap;
    }
    size_t i = meta_find(s, c);
    memmove(s->meta + i + 1, s->meta + i, (s->n_meta - i) * sizeof(*s->meta));
    s->meta[i] = c;
    s->n_meta++;
    return 0;
}

/* Whether clusters [c0, c1) touch the header, the L1 table or the refcount
 * table. */
static bool on_fixed_meta(const struct qcow2 *s, uint64_t c0, uint64_t c1)
{
    uint64_t l1c = s->l1_off >> s->cluster_bits, l1n = div_up((uint64_t)s->l1_size * 8, s->cs);
    uint64_t rtc = s->rt_off >> s->cluster_bits;
    return c0 == 0 || (l1n && c0 < l1c + l1n && l1c < c1) || (c0 < rtc + s->rt_clusters && rtc < c1);
}

/* Whether host bytes [off, off+len) touch the header, the L1 table, the
 * refcount table, a refcount block or an L2 table.  A data cluster there
 * (a corrupt or hostile image) would let the guest rewrite the image's
 * own structure. */
static bool meta_overlaps(const struct qcow2 *s, uint64_t off, uint64_t len)
{
    uint64_t c0 = off >> s->cluster_bits, c1 = div_up(off + len, s->cs);
    if (on_fixed_meta(s, c0, c1))
        return true;
    size_t i = meta_find(s, c0);
    return i < s->n_meta && s->meta[i] < c1;
}

/* A new refcount block for range r, placed at the range's first cluster so
 * that it counts itself.  Every cluster of a range without a block is free,
 * so that cluster is too. */
static int create_refcount_block(struct qcow2 *s, uint64_t r)
{
    uint64_t at = (r * s->rb_entries) << s->cluster_bits;
    if (at >= MAX_HOST_OFFSET)
        return -ENOSPC;
    uint8_t *blk = calloc(1, s->cs);
    if (!blk)
        return -ENOMEM;
    uint64_t boff;
    unsigned blen;
    rc_store(blk, 0, s->rc_order, 1, &boff, &blen);
    int ret = pwrite_full(s, blk, s->cs, at);
    free(blk);
    /* The block is stable before the table names it: a table entry that
     * outlived a power cut without its block would make every count of
     * the range zero, in use or not. */
    if (ret == 0)
        ret = sync_file(s);
    if (ret < 0)
        return ret;
    uint8_t e[8];
    put64(e, at);
    ret = pwrite_full(s, e, 8, s->rt_off + r * 8);
    if (ret < 0)
        return ret;
    s->rt[r] = at;
    return meta_add(s, at >> s->cluster_bits);
}

/* Moves the refcount table to a bigger one that covers cluster `need - 1`
 * and more.  The new table and the blocks that count it go into fresh
 * ranges past everything in use; the header switches over once they are
 * stable, and the old table is freed once the switch is. */
static int grow_refcount_table(struct qcow2 *s, uint64_t need)
{
    const uint64_t E = s->rb_entries;
    uint64_t end = MAX(s->rt_size * E, div_up(s->file_end, s->cs));
    end = MAX(end, need);
    uint64_t A = div_up(end, E) * E;
    uint64_t entries = MAX(s->rt_size * 2, s->cs / 8), nb = 1, tc;
    for (int guard = 0;; guard++) {
        if (guard > 64)
            return -EIO;
        tc = div_up(entries * 8, s->cs);
        uint64_t nb2 = div_up(nb + tc, E);
        if (nb2 != nb) {
            nb = nb2;
            continue;
        }
        uint64_t req = (A + nb + tc - 1) / E + 1;
        if (entries < req) {
            entries = req * 2;
            continue;
        }
        break;
    }
    if (tc * s->cs > MAX_RT_BYTES || ((A + nb + tc) << s->cluster_bits) > MAX_HOST_OFFSET)
        return -ENOSPC;
    entries = tc * s->cs / 8;

    uint8_t *blocks = calloc(nb, s->cs);
    uint64_t *nrt = calloc(entries, 8);
    uint8_t *raw = calloc(tc, s->cs);
    int ret = -ENOMEM;
    if (!blocks || !nrt || !raw)
        goto out;
    for (uint64_t k = A; k < A + nb + tc; k++) {
        uint64_t boff;
        unsigned blen;
        rc_store(blocks + (k / E - A / E) * s->cs, k % E, s->rc_order, 1, &boff, &blen);
    }
    memcpy(nrt, s->rt, s->rt_size * 8);
    for (uint64_t i = 0; i < nb; i++)
        nrt[A / E + i] = (A + i) << s->cluster_bits;
    for (uint64_t i = 0; i < entries; i++)
        put64(raw + i * 8, nrt[i]);
    uint64_t new_off = (A + nb) << s->cluster_bits;
    if ((ret = pwrite_full(s, blocks, nb * s->cs, A << s->cluster_bits)) < 0 ||
        (ret = pwrite_full(s, raw, tc * s->cs, new_off)) < 0 ||
        (ret = sync_file(s)) < 0)
        goto out;
    uint8_t h[12];
    put64(h, new_off);
    put32(h + 8, (uint32_t)tc);
    if ((ret = pwrite_full(s, h, sizeof(h), H_RT_OFFSET)) < 0 || (ret = sync_file(s)) < 0)
        goto out;

    uint64_t old_off = s->rt_off, old_clusters = s->rt_clusters;
    free(s->rt);
    s->rt = nrt;
    nrt = NULL;
    s->rt_size = entries;
    s->rt_off = new_off;
    s->rt_clusters = (uint32_t)tc;
    for (uint64_t i = 0; i < nb && ret == 0; i++)
        ret = meta_add(s, A + i);
    for (uint64_t i = 0; i < old_clusters && ret == 0; i++)
        ret = rc_drop(s, (old_off >> s->cluster_bits) + i);
out:
    free(blocks);
    free(nrt);
    free(raw);
    return ret;
}

/* Allocates n contiguous clusters with refcount one; returns the host
 * offset or -errno. */
static int64_t alloc_clusters(struct qcow2 *s, uint64_t n)
{
    const uint64_t E = s->rb_entries, max = MAX_HOST_OFFSET >> s->cluster_bits;
    int ret;
    for (int guard = 0; guard < 4096; guard++) {
        uint64_t start = 0, run = 0, first_free = UINT64_MAX, used = 0;
        /* What the image can really hold: every data cluster of the disk,
         * every L2 table, the refcount blocks and tables, with room to
         * spare.  Counts that claim more in use are nonsense, and the scan
         * ends there instead of crossing billions of them. */
        const uint64_t can_hold = div_up(s->size, s->cs) + 2ull * s->l1_size + 2ull * s->rt_size +
                                  4ull * s->rt_clusters + div_up((uint64_t)s->l1_size * 8, s->cs) + 65536;
        for (uint64_t c = s->free_hint; run < n; c++) {
            uint64_t v;
            if ((ret = rc_get(s, c, &v)) < 0)
                return ret;
            if (v) {
                run = 0;
                if (++used > can_hold)
                    return corrupt(s, "refcounts claim more clusters in use than the image can hold, "
                                   "scanning at cluster", c);
                continue;
            }
            if (first_free == UINT64_MAX)
                first_free = c;
            if (!run)
                start = c;
            run++;
        }
        if (start + n > max)
            return -ENOSPC;
        uint64_t last = start + n - 1;
        if (last / E >= s->rt_size) {
            if ((ret = grow_refcount_table(s, last + 1)) < 0)
                return ret;
            continue;
        }
        bool again = false;
        for (uint64_t r = start / E; r <= last / E; r++) {
            if (s->rt[r] & RTE_OFFSET_MASK)
                continue;
            if ((ret = create_refcount_block(s, r)) < 0)
                return ret;
            if (r * E >= start)
                again = true;   /* the block took a cluster of the run */
        }
        if (again)
            continue;
        if ((ret = rc_set_run(s, start, n, 1)) < 0)
            return ret;
        s->free_hint = first_free == start ? start + n : first_free;
        return (int64_t)(start << s->cluster_bits);
    }
    return -EIO;
}

static int queue_free(struct qcow2 *s, uint64_t off, uint64_t len)
{
    if (s->nfrees == s->cap_frees) {
        size_t cap = s->cap_frees ? s->cap_frees * 2 : 16;
        struct free_range *f = realloc(s->frees, cap * sizeof(*f));
        if (!f)
            return -ENOMEM;     /* the cluster leaks: harmless */
        s->frees = f;
        s->cap_frees = cap;
    }
    s->frees[s->nfrees++] = (struct free_range){ off, len };
    return 0;
}

static int apply_frees(struct qcow2 *s, struct free_range *f, size_t n)
{
    int ret = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t first = f[i].off >> s->cluster_bits;
        uint64_t last = (f[i].off + f[i].len - 1) >> s->cluster_bits;
        for (uint64_t c = first; c <= last; c++) {
            int r = rc_drop(s, c);
            if (r < 0 && !ret)
                ret = r;
        }
    }
    return ret;
}

/* --- L1/L2 -------------------------------------------------------------- */

/* Writes cached metadata back in the crash-safe order (see the top). */
static int writeback(struct qcow2 *s)
{
    bool any = false;
    for (unsigned i = 0; i < s->n_l2; i++)
        any |= s->l2[i].dirty;
    if (!any && !s->l1_dirty)
        return 0;
    int ret;
    if (any) {
        if ((ret = sync_file(s)) < 0)
            return ret;
        for (unsigned i = 0; i < s->n_l2; i++) {
            if (!s->l2[i].dirty)
                continue;
            if ((ret = pwrite_full(s, s->l2[i].tbl, s->cs, s->l2[i].off)) < 0)
                return ret;
            s->l2[i].dirty = false;
        }
    }
    if (s->l1_dirty) {
        if ((ret = sync_file(s)) < 0)
            return ret;
        uint32_t lo = s->l1_dirty_lo, n = s->l1_dirty_hi - lo + 1;
        uint8_t *raw = malloc((size_t)n * 8);
        if (!raw)
            return -ENOMEM;
        for (uint32_t i = 0; i < n; i++)
            put64(raw + i * 8, s->l1[lo + i]);
        ret = pwrite_full(s, raw, (size_t)n * 8, s->l1_off + (uint64_t)lo * 8);
        free(raw);
        if (ret < 0)
            return ret;
        s->l1_dirty = false;
    }
    return 0;
}

/* A cache slot for the table at off, its contents not yet loaded. */
static int l2_victim(struct qcow2 *s, struct l2_slot **out)
{
    struct l2_slot *v = &s->l2[0];
    for (unsigned i = 0; i < s->n_l2; i++) {
        if (!s->l2[i].off) {
            v = &s->l2[i];
            break;
        }
        if (s->l2[i].used < v->used)
            v = &s->l2[i];
    }
    if (v->dirty) {
        int ret = writeback(s);
        if (ret < 0)
            return ret;
    }
    v->off = 0;
    *out = v;
    return 0;
}

static int l2_load(struct qcow2 *s, uint64_t off, struct l2_slot **out)
{
    for (unsigned i = 0; i < s->n_l2; i++) {
        if (s->l2[i].off == off) {
            s->l2[i].used = ++s->tick;
            *out = &s->l2[i];
            return 0;
        }
    }
    if (s->nowait)
        return -EWOULDBLOCK;
    if ((off & (s->cs - 1)) || off >= s->file_end)
        return corrupt(s, "L2 table offset", off);
    struct l2_slot *v;
    int ret = l2_victim(s, &v);
    if (ret < 0)
        return ret;
    if ((ret = pread_full(s->fd, v->tbl, s->cs, off)) < 0)
        return ret;
    v->off = off;
    v->used = ++s->tick;
    *out = v;
    return 0;
}

static int decode(struct qcow2 *s, uint64_t e, struct cl_map *m)
{
    m->copied = (e & OFLAG_COPIED) != 0;
    m->csize = 0;
    if (e & OFLAG_COMPRESSED) {
        unsigned x = 62 - (s->cluster_bits - 8);
        m->type = CL_COMPRESSED;
        m->host = e & ((1ull << x) - 1);
        uint64_t nsec = (e >> x) & ((1ull << (s->cluster_bits - 8)) - 1);
        m->csize = (nsec + 1) * 512 - (m->host & 511);
        m->copied = false;
        return 0;
    }
    m->host = e & L2E_OFFSET_MASK;
    if (s->version >= 3 && (e & OFLAG_ZERO))
        m->type = CL_ZERO;
    else if (!m->host)
        m->type = CL_UNALLOC;
    else if (m->host & (s->cs - 1))
        return corrupt(s, "unaligned data cluster", e);
    else
        m->type = CL_NORMAL;
    return 0;
}

static int lookup(struct qcow2 *s, uint64_t vcl, struct cl_map *m)
{
    uint64_t l1i = vcl >> s->l2_bits;
    if (l1i >= s->l1_size)
        return corrupt(s, "L1 index beyond the table", l1i);
    uint64_t l2off = s->l1[l1i] & L1E_OFFSET_MASK;
    if (!l2off) {
        m->type = CL_UNALLOC;
        m->host = 0;
        m->copied = false;
        return 0;
    }
    struct l2_slot *slot;
    int ret = l2_load(s, l2off, &slot);
    if (ret < 0)
        return ret;
    return decode(s, be64(&slot->tbl[vcl & ((1ull << s->l2_bits) - 1)]), m);
}

/* The L2 table for vcl, allocated when missing, ready to be changed. */
static int l2_for_write(struct qcow2 *s, uint64_t vcl, struct l2_slot **slot, unsigned *idx)
{
    uint64_t l1i = vcl >> s->l2_bits;
    if (l1i >= s->l1_size)
        return corrupt(s, "L1 index beyond the table", l1i);
    *idx = (unsigned)(vcl & ((1ull << s->l2_bits) - 1));
    uint64_t e = s->l1[l1i], l2off = e & L1E_OFFSET_MASK;
    if (l2off) {
        if (!(e & OFLAG_COPIED))
            return corrupt(s, "shared L2 table", e);
        return l2_load(s, l2off, slot);
    }
    int64_t h = alloc_clusters(s, 1);
    if (h < 0)
        return (int)h;
    /* Zeroes on disk first, so that the table exists before L1 names it. */
    int ret = pwrite_full(s, s->zero, s->cs, (uint64_t)h);
    if (ret < 0)
        return ret;
    struct l2_slot *v;
    if ((ret = l2_victim(s, &v)) < 0)
        return ret;
    if ((ret = meta_add(s, (uint64_t)h >> s->cluster_bits)) < 0)
        return ret;
    memset(v->tbl, 0, s->cs);
    v->off = (uint64_t)h;
    v->used = ++s->tick;
    v->dirty = false;
    s->l1[l1i] = (uint64_t)h | OFLAG_COPIED;
    if (!s->l1_dirty) {
        s->l1_dirty = true;
        s->l1_dirty_lo = s->l1_dirty_hi = (uint32_t)l1i;
    } else {
        s->l1_dirty_lo = MIN(s->l1_dirty_lo, (uint32_t)l1i);
        s->l1_dirty_hi = MAX(s->l1_dirty_hi, (uint32_t)l1i);
    }
    *slot = v;
    return 0;
}

/* Inflates a compressed cluster into s->dbuf. */
static int decompress(struct qcow2 *s, const struct cl_map *m)
{
    if (!s->z_ready)
        return -EIO;
    if (m->csize > 2 * s->cs || m->host + m->csize > MAX_HOST_OFFSET)
        return corrupt(s, "compressed cluster size", m->csize);
    int ret = pread_full(s->fd, s->cbuf, m->csize, m->host);
    if (ret < 0)
        return ret;
    inflateReset(&s->z);
    s->z.next_in = s->cbuf;
    s->z.avail_in = (uInt)m->csize;
    s->z.next_out = s->dbuf;
    s->z.avail_out = (uInt)s->cs;
    int zr = inflate(&s->z, Z_FINISH);
    /* The data need not end at the stream's end marker: a full cluster is
     * what counts. */
    if ((zr != Z_STREAM_END && zr != Z_BUF_ERROR && zr != Z_OK) || s->z.avail_out != 0)
        return corrupt(s, "compressed cluster does not inflate", m->host);
    return 0;
}

/* --- reading ------------------------------------------------------------ */

static int read_level(struct qcow2 *s, struct q2_req *r, uint64_t voff,
                      const struct iovec *iov, int n, size_t pos, size_t len);

/* What lies below this image at voff: its backing file, or zeroes. */
static int read_below(struct qcow2 *s, struct q2_req *r, uint64_t voff,
                      const struct iovec *iov, int n, size_t pos, size_t len)
{
    size_t avail = 0;
    if (s->has_backing && voff < s->bsize)
        avail = (size_t)MIN((uint64_t)len, s->bsize - voff);
    int ret = 0;
    if (avail)
        ret = s->bq ? read_level(s->bq, r, voff, iov, n, pos, avail)
                    : data_io(s, s->braw_fd, r, false, voff, iov, n, pos, avail);
    if (avail < len)
        iov_memset(iov, n, pos + avail, len - avail);
    return ret;
}

/* Reads [voff, voff+len) of image s into iov[pos...]: parts go to r, or
 * everything is read synchronously when r is NULL. */
static int read_level(struct qcow2 *s, struct q2_req *r, uint64_t voff,
                      const struct iovec *iov, int n, size_t pos, size_t len)
{
    while (len) {
        uint64_t vcl = voff >> s->cluster_bits, in = voff & (s->cs - 1);
        size_t chunk = (size_t)MIN((uint64_t)len, s->cs - in);
        struct cl_map m, next;
        int ret = lookup(s, vcl, &m);
        if (ret < 0)
            return ret;
        /* Runs of clusters that are contiguous on the host, or all
         * unallocated, become one request. */
        if (m.type == CL_NORMAL || m.type == CL_UNALLOC) {
            for (uint64_t k = 1; chunk < len; k++) {
                if ((ret = lookup(s, vcl + k, &next)) < 0)
                    return ret;
                if (next.type != m.type || (m.type == CL_NORMAL && next.host != m.host + (k << s->cluster_bits)))
                    break;
                chunk += (size_t)MIN((uint64_t)(len - chunk), s->cs);
            }
        }
        switch (m.type) {
        case CL_NORMAL:
            ret = data_io(s, s->fd, r, false, m.host + in, iov, n, pos, chunk);
            break;
        case CL_UNALLOC:
            ret = read_below(s, r, voff, iov, n, pos, chunk);
            break;
        case CL_ZERO:
            iov_memset(iov, n, pos, chunk);
            break;
        case CL_COMPRESSED:
            ret = decompress(s, &m);
            if (ret == 0)
                iov_copy(iov, n, pos, s->dbuf + in, chunk, true);
            break;
        }
        if (ret < 0)
            return ret;
        voff += chunk;
        pos += chunk;
        len -= chunk;
    }
    return 0;
}

/* --- writing ------------------------------------------------------------ */

/* Writes iov[pos, pos+len) into virtual cluster vcl at `in`, where the
 * cluster is not yet this image's own: the whole cluster goes to a new
 * host cluster (or its preallocated one), then the L2 entry changes. */
static int write_new_cluster(struct qcow2 *s, uint64_t vcl, uint64_t in,
                             const struct iovec *iov, int n, size_t pos, size_t len)
{
    struct l2_slot *slot;
    unsigned idx;
    int ret = l2_for_write(s, vcl, &slot, &idx);
    if (ret < 0)
        return ret;
    struct cl_map m;
    if ((ret = decode(s, be64(&slot->tbl[idx]), &m)) < 0)
        return ret;
    uint64_t vstart = vcl << s->cluster_bits;
    if (in || len < s->cs) {
        switch (m.type) {
        case CL_UNALLOC: {
            struct iovec v = { .iov_base = s->wbuf, .iov_len = s->cs };
            ret = read_below(s, NULL, vstart, &v, 1, 0, s->cs);
            break;
        }
        case CL_ZERO:
            memset(s->wbuf, 0, s->cs);
            break;
        case CL_COMPRESSED:
            if ((ret = decompress(s, &m)) == 0)
                memcpy(s->wbuf, s->dbuf, s->cs);
            break;
        case CL_NORMAL:     /* shared with something else: copy it */
            ret = pread_full(s->fd, s->wbuf, s->cs, m.host);
            break;
        }
        if (ret < 0)
            return ret;
    }
    iov_copy(iov, n, pos, s->wbuf + in, len, false);

    uint64_t host;
    if (m.type == CL_ZERO && m.host && m.copied) {
        if (meta_overlaps(s, m.host, s->cs))
            return corrupt(s, "data cluster on the image's metadata", m.host);
        if ((ret = own_cluster(s, m.host)) < 0)
            return ret;
        host = m.host;
    } else {
        int64_t h = alloc_clusters(s, 1);
        if (h < 0)
            return (int)h;
        host = (uint64_t)h;
    }
    if ((ret = pwrite_full(s, s->wbuf, s->cs, host)) < 0)
        return ret;
    /* The allocation may have written back the cache: find the table again. */
    if ((ret = l2_for_write(s, vcl, &slot, &idx)) < 0)
        return ret;
    put64(&slot->tbl[idx], host | OFLAG_COPIED);
    slot->dirty = true;
    if (m.type == CL_COMPRESSED)
        queue_free(s, m.host, m.csize);
    return 0;
}

/* Whole clusters from vcl on, at most max, that the write covers
 * completely and whose old contents need neither copying nor freeing
 * (unallocated, zero with nothing preallocated, or shared): one new run
 * of clusters can take them all, straight from the guest's buffers. */
static int fresh_run(struct qcow2 *s, uint64_t vcl, uint64_t max, uint64_t *k)
{
    *k = 0;
    for (; *k < max; (*k)++) {
        struct cl_map m;
        int ret = lookup(s, vcl + *k, &m);
        if (ret < 0)
            return ret;
        bool fresh = m.type == CL_UNALLOC || (m.type == CL_ZERO && !(m.host && m.copied)) ||
                     (m.type == CL_NORMAL && !m.copied);
        if (!fresh)
            break;
    }
    return 0;
}

/* Writes k whole clusters from vcl into a new contiguous run, then points
 * their L2 entries at it. */
static int write_fresh_run(struct qcow2 *s, uint64_t vcl, uint64_t k,
                           const struct iovec *iov, int n, size_t pos)
{
    struct l2_slot *slot;
    unsigned idx;
    int ret;
    /* The tables first, so that the data run stays in one piece. */
    for (uint64_t i = 0; i < k; i++)
        if ((ret = l2_for_write(s, vcl + i, &slot, &idx)) < 0)
            return ret;
    int64_t h = alloc_clusters(s, k);
    if (h < 0)
        return (int)h;
    if ((ret = data_io(s, s->fd, NULL, true, (uint64_t)h, iov, n, pos, (size_t)(k << s->cluster_bits))) < 0)
        return ret;
    for (uint64_t i = 0; i < k; i++) {
        if ((ret = l2_for_write(s, vcl + i, &slot, &idx)) < 0)
            return ret;
        put64(&slot->tbl[idx], ((uint64_t)h + (i << s->cluster_bits)) | OFLAG_COPIED);
        slot->dirty = true;
    }
    return 0;
}

/* Writes [off, off+total) of the image from iov: in place where the
 * clusters are this image's own (as parts of r, or synchronously with r
 * NULL), elsewhere (r NULL only) into new clusters. */
static int write_range(struct qcow2 *s, struct q2_req *r, uint64_t off,
                       const struct iovec *iov, int n, size_t total)
{
    size_t pos = 0;
    while (pos < total) {
        uint64_t voff = off + pos, vcl = voff >> s->cluster_bits, in = voff & (s->cs - 1);
        size_t chunk = (size_t)MIN((uint64_t)(total - pos), s->cs - in);
        struct cl_map m, next;
        int ret = lookup(s, vcl, &m);
        if (ret < 0)
            return ret;
        if (m.type == CL_NORMAL && m.copied) {
            /* Our own clusters, contiguous on the host: in place. */
            if ((ret = own_cluster(s, m.host)) < 0)
                return ret;
            for (uint64_t k = 1; pos + chunk < total; k++) {
                if ((ret = lookup(s, vcl + k, &next)) < 0)
                    return ret;
                if (next.type != CL_NORMAL || !next.copied || next.host != m.host + (k << s->cluster_bits))
                    break;
                if ((ret = own_cluster(s, next.host)) < 0)
                    return ret;
                chunk += (size_t)MIN((uint64_t)(total - pos - chunk), s->cs);
            }
            if (meta_overlaps(s, m.host + in, chunk))
                return corrupt(s, "data cluster on the image's metadata", m.host);
            ret = data_io(s, s->fd, r, true, m.host + in, iov, n, pos, chunk);
        } else if (r) {
            ret = -EIO;     /* planned as in place, yet it is not: a bug */
        } else {
            uint64_t k = 0;
            /* A run longer than half a refcount block's range could
             * never be found free: each range's block sits at its start. */
            if (in == 0 && total - pos >= s->cs)
                ret = fresh_run(s, vcl, MIN((total - pos) >> s->cluster_bits, s->rb_entries / 2), &k);
            if (ret == 0 && k) {
                chunk = (size_t)(k << s->cluster_bits);
                ret = write_fresh_run(s, vcl, k, iov, n, pos);
            } else if (ret == 0) {
                ret = write_new_cluster(s, vcl, in, iov, n, pos, chunk);
            }
        }
        if (ret < 0)
            return ret;
        pos += chunk;
    }
    return 0;
}

/* --- submission: planned here, or handed to the worker ------------------- */

/* Whether [voff, voff+len) can be served without waiting for the disk:
 * every table it needs is cached, and its data is plain clusters (or
 * zeroes) that the engine reads, or writes in place. */
static bool can_fast(struct qcow2 *s, uint64_t voff, uint64_t len, bool write)
{
    while (len) {
        uint64_t vcl = voff >> s->cluster_bits, in = voff & (s->cs - 1);
        uint64_t chunk = MIN(len, s->cs - in);
        struct cl_map m;
        s->nowait = true;
        int ret = lookup(s, vcl, &m);
        s->nowait = false;
        if (ret < 0)
            return false;
        if (write) {
            if (m.type != CL_NORMAL || !m.copied)
                return false;
            s->nowait = true;
            ret = own_cluster(s, m.host);
            s->nowait = false;
            if (ret < 0)
                return false;
        } else if (m.type == CL_COMPRESSED) {
            return false;
        } else if (m.type == CL_UNALLOC && s->bq && voff < s->bsize &&
                   !can_fast(s->bq, voff, MIN(chunk, s->bsize - voff), false)) {
            return false;
        }
        voff += chunk;
        len -= chunk;
    }
    return true;
}

static bool has_dirty_metadata(const struct qcow2 *s)
{
    if (s->l1_dirty || s->nfrees)
        return true;
    for (unsigned i = 0; i < s->n_l2; i++)
        if (s->l2[i].dirty)
            return true;
    return false;
}

static int q_sync(struct qcow2 *s);

/* A request for the worker, with its own copy of the guest's iovecs. */
struct q2_job {
    struct qcow2 *s;
    enum blk_aio_op op;
    uint64_t off;
    size_t total;
    blk_cb cb;
    void *opaque;
    int n;
    struct iovec iov[];
};

static int job_run(void *arg)
{
    struct q2_job *j = arg;
    struct qcow2 *s = j->s;
    int ret;
    pthread_mutex_lock(&s->mu);
    switch (j->op) {
    case BLK_AIO_READ:
        ret = read_level(s, NULL, j->off, j->iov, j->n, 0, j->total);
        break;
    case BLK_AIO_WRITE:
        ret = write_range(s, NULL, j->off, j->iov, j->n, j->total);
        break;
    default:
        /* Metadata back in the crash-safe order, a final fdatasync, and
         * only then the frees that the new references allow. */
        ret = q_sync(s);
        break;
    }
    pthread_mutex_unlock(&s->mu);
    if (ret < 0 || j->op == BLK_AIO_FLUSH)
        return ret;
    return (int)MIN(j->total, (size_t)INT32_MAX);
}

static void job_done(void *opaque, int res)
{
    struct q2_job *j = opaque;
    blk_cb cb = j->cb;
    void *op = j->opaque;
    free(j);
    cb(op, res);
}

static int offload(struct blk *b, enum blk_aio_op op, uint64_t off, const struct iovec *iov, int n,
                   size_t total, blk_cb cb, void *opaque)
{
    struct q2_job *j = malloc(sizeof(*j) + sizeof(struct iovec) * (size_t)n);
    if (!j)
        return -ENOMEM;
    *j = (struct q2_job){ .s = b->drv_state, .op = op, .off = off, .total = total,
                          .cb = cb, .opaque = opaque, .n = n };
    if (n)
        memcpy(j->iov, iov, sizeof(*iov) * (size_t)n);
    int ret = blk_aio_offload(b->aio, job_run, j, job_done, j);
    if (ret < 0)
        free(j);
    return ret;
}

static size_t iov_total(const struct iovec *iov, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    return total;
}

/* Plans the request here when it needs no waiting and the worker is not
 * in the image; otherwise the worker does all of it. */
static int submit(struct blk *b, bool write, uint64_t off, const struct iovec *iov, int n,
                  blk_cb cb, void *opaque)
{
    struct qcow2 *s = b->drv_state;
    size_t total = iov_total(iov, n);
    if (pthread_mutex_trylock(&s->mu) == 0) {
        if (can_fast(s, off, total, write)) {
            struct q2_req *r = req_new(b->aio, cb, opaque, total);
            int ret = -ENOMEM;
            if (r)
                ret = write ? write_range(s, r, off, iov, n, total) : read_level(s, r, off, iov, n, 0, total);
            pthread_mutex_unlock(&s->mu);
            if (!r)
                return ret;
            if (ret < 0)
                r->err = ret;
            return req_submitted(r);
        }
        pthread_mutex_unlock(&s->mu);
    }
    return offload(b, write ? BLK_AIO_WRITE : BLK_AIO_READ, off, iov, n, total, cb, opaque);
}

static int qcow2_readv(struct blk *b, uint64_t off, const struct iovec *iov, int n, blk_cb cb, void *opaque)
{
    return submit(b, false, off, iov, n, cb, opaque);
}

static int qcow2_writev(struct blk *b, uint64_t off, const struct iovec *iov, int n, blk_cb cb, void *opaque)
{
    return submit(b, true, off, iov, n, cb, opaque);
}

static int qcow2_flush(struct blk *b, blk_cb cb, void *opaque)
{
    struct qcow2 *s = b->drv_state;
    if (pthread_mutex_trylock(&s->mu) == 0) {
        /* Nothing of ours to write back: the engine's fdatasync will do. */
        bool clean = s->ro || !has_dirty_metadata(s);
        pthread_mutex_unlock(&s->mu);
        if (clean)
            return blk_aio_submit(b->aio, BLK_AIO_FLUSH, s->fd, 0, NULL, 0, 0, cb, opaque);
    }
    return offload(b, BLK_AIO_FLUSH, 0, NULL, 0, 0, cb, opaque);
}

static int qcow2_discard(struct blk *b, uint64_t off, uint64_t len, blk_cb cb, void *opaque)
{
    /* Advisory, and not offered (can_discard is false): nothing to do. */
    return blk_aio_submit(b->aio, BLK_AIO_READ, -1, 0, &no_iov, 0, 0, cb, opaque);
}

/* --- open and close ----------------------------------------------------- */

static void q_free(struct qcow2 *s)
{
    if (!s)
        return;
    if (s->bq)
        q_free(s->bq);
    if (s->braw_fd >= 0)
        close(s->braw_fd);
    if (s->fd >= 0)
        close(s->fd);
    if (s->z_ready)
        inflateEnd(&s->z);
    for (unsigned i = 0; s->l2 && i < s->n_l2; i++)
        free(s->l2[i].tbl);
    for (int i = 0; i < RB_CACHE; i++)
        free(s->rb[i].blk);
    free(s->l2);
    free(s->l1);
    free(s->rt);
    free(s->meta);
    free(s->frees);
    free(s->cbuf);
    free(s->dbuf);
    free(s->wbuf);
    free(s->zero);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Writes everything back and makes it stable (image stays open). */
static int q_sync(struct qcow2 *s)
{
    if (s->ro)
        return 0;
    int ret = writeback(s);
    if (ret == 0)
        ret = sync_file(s);
    if (ret == 0 && s->nfrees) {
        ret = apply_frees(s, s->frees, s->nfrees);
        s->nfrees = 0;
    }
    return ret;
}

static const char *feature_name(const uint8_t *table, uint32_t len, unsigned type, unsigned bit,
                                char *buf, size_t buflen)
{
    for (uint32_t p = 0; table && p + FEATURE_ENTRY_LEN <= len; p += FEATURE_ENTRY_LEN) {
        if (table[p] == type && table[p + 1] == bit) {
            size_t n = strnlen((const char *)table + p + 2, 46);
            snprintf(buf, buflen, "%.*s", (int)n, (const char *)table + p + 2);
            for (char *c = buf; *c; c++)
                if (*c < 0x20 || *c > 0x7e)
                    *c = '?';
            return buf;
        }
    }
    snprintf(buf, buflen, "bit %u", bit);
    return buf;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Indexes the refcount blocks and L2 tables (s->meta).  Two of them in one
 * cluster, or one on the header, the L1 table or the refcount table, make
 * every count or mapping there mean two things (and an all-ones refcount
 * block repeated a million times makes each allocation scan billions of
 * clusters): refused, as `qemu-img check` reports them.  L1 entries that
 * point nowhere sensible are left to fail when used. */
static int index_metadata(struct qcow2 *s)
{
    size_t cap = s->rt_size + s->l1_size;
    s->meta = malloc(MAX(cap, 1) * sizeof(*s->meta));
    if (!s->meta)
        return -ENOMEM;
    s->cap_meta = MAX(cap, 1);
    size_t n = 0;
    for (uint64_t i = 0; i < s->rt_size; i++)
        if (s->rt[i] & RTE_OFFSET_MASK)
            s->meta[n++] = (s->rt[i] & RTE_OFFSET_MASK) >> s->cluster_bits;
    for (uint32_t i = 0; i < s->l1_size; i++) {
        uint64_t off = s->l1[i] & L1E_OFFSET_MASK;
        if (off && !(off & (s->cs - 1)) && off < s->file_end)
            s->meta[n++] = off >> s->cluster_bits;
    }
    qsort(s->meta, n, sizeof(*s->meta), cmp_u64);
    s->n_meta = n;
    for (size_t k = 0; k < n; k++)
        if ((k && s->meta[k] == s->meta[k - 1]) || on_fixed_meta(s, s->meta[k], s->meta[k] + 1))
            return -EINVAL;
    return 0;
}

/* Whether cluster c has a refcount other than zero. */
static bool counted(struct qcow2 *s, uint64_t c)
{
    uint64_t v;
    return rc_get(s, c, &v) == 0 && v != 0;
}

static int lock_file(int fd, bool ro, const char *path, char *err, size_t errlen)
{
    return blk_lock_image(fd, !ro, path, err, errlen);
}

static int q_open(struct qcow2 **out, const char *path, bool ro, int depth, bool open_backing,
                  char *err, size_t errlen);

/* The path of backing file `name` of the image at `path`: relative names
 * are relative to the image's folder. */
static int backing_path(const char *path, const char *name, char *full, size_t len,
                        char *err, size_t errlen)
{
    if (strstr(name, "json:") == name || (strchr(name, ':') && !strchr(name, '/')))
        return fail(err, errlen, -EINVAL, "%s: backing file '%s' is not a local file", path, name);
    const char *slash = strrchr(path, '/');
    int n = name[0] == '/' || !slash ? snprintf(full, len, "%s", name)
                                     : snprintf(full, len, "%.*s/%s", (int)(slash - path), path, name);
    if (n < 0 || (size_t)n >= len)
        return fail(err, errlen, -ENAMETOOLONG, "%s: backing file path too long", path);
    return 0;
}

/* Detects a backing file's format: "qcow2" or "raw". */
static int backing_format(const char *path, const char *full, const char **fmt, char *err, size_t errlen)
{
    uint8_t head[512];
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errlen, -errno, "%s: cannot open backing file %s: %s", path, full, strerror(errno));
    int ret = pread_full(fd, head, sizeof(head), 0);
    close(fd);
    if (ret < 0)
        return fail(err, errlen, ret, "%s: cannot read backing file %s: %s", path, full, strerror(-ret));
    const char *seen = blk_probe(head, sizeof(head));
    if (seen && strcmp(seen, "qcow2"))
        return fail(err, errlen, -ENOTSUP, "%s: backing file %s is a %s image (a backing file must be qcow2 or raw)",
                    path, full, seen);
    *fmt = seen ? "qcow2" : "raw";
    return 0;
}

/* Opens the backing file named in the header. */
static int open_backing_file(struct qcow2 *s, const char *path, int depth, char *err, size_t errlen)
{
    char full[PATH_MAX];
    int ret = backing_path(path, s->backing_name, full, sizeof(full), err, errlen);
    if (ret < 0)
        return ret;
    const char *fmt = s->backing_fmt[0] ? s->backing_fmt : NULL;
    if (!fmt && (ret = backing_format(path, full, &fmt, err, errlen)) < 0)
        return ret;
    s->has_backing = true;
    if (!strcmp(fmt, "qcow2")) {
        ret = q_open(&s->bq, full, true, depth + 1, true, err, errlen);
        if (ret < 0)
            return ret;
        s->bsize = s->bq->size;
        return 0;
    }
    if (strcmp(fmt, "raw"))
        return fail(err, errlen, -ENOTSUP, "%s: backing file format '%s' is not supported (raw, qcow2)", path, fmt);
    s->braw_fd = open(full, O_RDONLY | O_CLOEXEC);
    if (s->braw_fd < 0)
        return fail(err, errlen, -errno, "%s: cannot open backing file %s: %s", path, full, strerror(errno));
    ret = lock_file(s->braw_fd, true, full, err, errlen);
    if (ret < 0)
        return ret;
    struct stat st;
    if (fstat(s->braw_fd, &st) < 0)
        return fail(err, errlen, -errno, "cannot stat %s: %s", full, strerror(errno));
    if (S_ISBLK(st.st_mode)) {
        if (ioctl(s->braw_fd, BLKGETSIZE64, &s->bsize) < 0)
            return fail(err, errlen, -errno, "cannot get the size of %s: %s", full, strerror(errno));
    } else {
        s->bsize = (uint64_t)st.st_size;
    }
    return 0;
}

static int q_open(struct qcow2 **out, const char *path, bool ro, int depth, bool open_backing,
                  char *err, size_t errlen)
{
    *out = NULL;
    if (depth > MAX_CHAIN)
        return fail(err, errlen, -ELOOP, "%s: backing chain deeper than %d (a loop?)", path, MAX_CHAIN);
    struct qcow2 *s = calloc(1, sizeof(*s));
    if (!s)
        return fail(err, errlen, -ENOMEM, "out of memory");
    s->fd = s->braw_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    s->ro = ro;
    uint8_t *hc = NULL;
    const uint8_t *ftable = NULL;
    uint32_t ftable_len = 0;
    int ret;

    s->fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (s->fd < 0) {
        ret = fail(err, errlen, -errno, "cannot open %s%s: %s", path, ro ? "" : " for writing", strerror(errno));
        goto bad;
    }
    if ((ret = lock_file(s->fd, ro, path, err, errlen)) < 0)
        goto bad;
    struct stat st;
    if (fstat(s->fd, &st) < 0) {
        ret = fail(err, errlen, -errno, "cannot stat %s: %s", path, strerror(errno));
        goto bad;
    }
    if (!S_ISREG(st.st_mode)) {
        ret = fail(err, errlen, -EINVAL, "%s: qcow2 images must be regular files", path);
        goto bad;
    }
    s->file_end = (uint64_t)st.st_size;

    uint8_t h[HEADER_V3_MIN];
    if ((ret = pread_full(s->fd, h, sizeof(h), 0)) < 0) {
        ret = fail(err, errlen, ret, "cannot read %s: %s", path, strerror(-ret));
        goto bad;
    }
    ret = -EINVAL;
    if (be32(h + H_MAGIC) != QCOW_MAGIC) {
        fail(err, errlen, ret, "%s is not a qcow2 image", path);
        goto bad;
    }
    s->version = be32(h + H_VERSION);
    if (s->version != 2 && s->version != 3) {
        fail(err, errlen, -ENOTSUP, "%s: qcow2 version %u is not supported (2 and 3 are)", path, s->version);
        ret = -ENOTSUP;
        goto bad;
    }
    s->cluster_bits = be32(h + H_CLUSTER_BITS);
    if (s->cluster_bits < MIN_CLUSTER_BITS || s->cluster_bits > MAX_CLUSTER_BITS) {
        fail(err, errlen, ret, "%s: bad qcow2 cluster size (2^%u bytes)", path, s->cluster_bits);
        goto bad;
    }
    s->cs = 1ull << s->cluster_bits;
    s->l2_bits = s->cluster_bits - 3;
    hc = malloc(s->cs);
    if (!hc) {
        ret = fail(err, errlen, -ENOMEM, "out of memory");
        goto bad;
    }
    if ((ret = pread_full(s->fd, hc, s->cs, 0)) < 0) {
        fail(err, errlen, ret, "cannot read %s: %s", path, strerror(-ret));
        goto bad;
    }
    ret = -EINVAL;
    s->size = be64(hc + H_SIZE);
    s->crypt_method = be32(hc + H_CRYPT_METHOD);
    s->l1_size = be32(hc + H_L1_SIZE);
    s->l1_off = be64(hc + H_L1_TABLE_OFFSET);
    s->rt_off = be64(hc + H_RT_OFFSET);
    s->rt_clusters = be32(hc + H_RT_CLUSTERS);
    s->nb_snapshots = be32(hc + H_NB_SNAPSHOTS);
    uint64_t backing_off = be64(hc + H_BACKING_OFFSET);
    uint32_t backing_len = be32(hc + H_BACKING_SIZE);
    uint32_t header_len = HEADER_V2_LEN;
    s->rc_order = 4;
    if (s->version >= 3) {
        s->incompat = be64(hc + H_INCOMPATIBLE);
        s->compat = be64(hc + H_COMPATIBLE);
        s->autoclear = be64(hc + H_AUTOCLEAR);
        s->rc_order = be32(hc + H_REFCOUNT_ORDER);
        header_len = be32(hc + H_HEADER_LENGTH);
        if (header_len < HEADER_V3_MIN || header_len > s->cs || (header_len & 7)) {
            fail(err, errlen, ret, "%s: bad qcow2 header length %u", path, header_len);
            goto bad;
        }
        if (s->rc_order > 6) {
            fail(err, errlen, ret, "%s: bad qcow2 refcount order %u", path, s->rc_order);
            goto bad;
        }
    }

    /* Header extensions, up to the end of the first cluster. */
    for (uint64_t p = header_len;;) {
        if (p + 8 > s->cs) {
            fail(err, errlen, ret, "%s: qcow2 header extensions overrun the first cluster", path);
            goto bad;
        }
        uint32_t type = be32(hc + p), len = be32(hc + p + 4);
        p += 8;
        if (type == EXT_END)
            break;
        if (len > s->cs - p) {
            fail(err, errlen, ret, "%s: qcow2 header extension 0x%x overruns the first cluster", path, type);
            goto bad;
        }
        if (type == EXT_BACKING_FORMAT) {
            if (len >= sizeof(s->backing_fmt) || memchr(hc + p, 0, len)) {
                fail(err, errlen, ret, "%s: bad backing format name in the qcow2 header", path);
                goto bad;
            }
            memcpy(s->backing_fmt, hc + p, len);
            s->backing_fmt[len] = 0;
        } else if (type == EXT_FEATURE_TABLE) {
            ftable = hc + p;
            ftable_len = len;
        }
        p += ALIGN_UP((uint64_t)len, 8);
    }

    /* Features */
    const uint64_t known = INCOMPAT_DIRTY | INCOMPAT_CORRUPT;
    if (s->incompat & ~known) {
        char name[64];
        unsigned bit = (unsigned)__builtin_ctzll(s->incompat & ~known);
        const char *what = bit == 2 ? "external data file" : bit == 3 ? "compression type (zstd)"
                         : bit == 4 ? "extended L2 entries"
                         : feature_name(ftable, ftable_len, 0, bit, name, sizeof(name));
        fail(err, errlen, -ENOTSUP, "%s uses a qcow2 feature Burrow does not support: %s", path, what);
        ret = -ENOTSUP;
        goto bad;
    }
    if (s->version >= 3 && header_len > H_COMPRESSION_TYPE && hc[H_COMPRESSION_TYPE] != 0) {
        fail(err, errlen, ret, "%s: bad qcow2 compression type %u", path, hc[H_COMPRESSION_TYPE]);
        goto bad;
    }
    if (s->crypt_method) {
        fail(err, errlen, -ENOTSUP, "%s: encrypted qcow2 images are not supported", path);
        ret = -ENOTSUP;
        goto bad;
    }
    if (!ro && (s->incompat & INCOMPAT_CORRUPT)) {
        fail(err, errlen, -EROFS, "%s is marked corrupt; repair it with 'qemu-img check -r all' "
             "or open it read-only", path);
        ret = -EROFS;
        goto bad;
    }
    if (!ro && (s->incompat & INCOMPAT_DIRTY)) {
        fail(err, errlen, -EROFS, "%s was not closed cleanly while using lazy refcounts; repair it "
             "with 'qemu-img check -r all' or open it read-only", path);
        ret = -EROFS;
        goto bad;
    }
    if (!ro && s->nb_snapshots) {
        fail(err, errlen, -EROFS, "%s has internal snapshots, which Burrow can only read; "
             "open it read-only", path);
        ret = -EROFS;
        goto bad;
    }

    /* Tables */
    uint64_t l2_cover = s->cs << s->l2_bits;
    uint64_t need_l1 = s->size / l2_cover + (s->size % l2_cover != 0);
    if ((uint64_t)s->l1_size * 8 > MAX_L1_BYTES) {
        fail(err, errlen, ret, "%s: qcow2 L1 table too large (%u entries)", path, s->l1_size);
        goto bad;
    }
    if (need_l1 > s->l1_size) {
        fail(err, errlen, ret, "%s: qcow2 L1 table too small for the virtual size", path);
        goto bad;
    }
    if ((s->l1_off & (s->cs - 1)) || (s->l1_size && (s->l1_off == 0 || s->l1_off > s->file_end ||
                                                     (uint64_t)s->l1_size * 8 > s->file_end - s->l1_off))) {
        fail(err, errlen, ret, "%s: qcow2 L1 table lies outside the file", path);
        goto bad;
    }
    if (s->rt_clusters == 0 || (uint64_t)s->rt_clusters * s->cs > MAX_RT_BYTES ||
        (s->rt_off & (s->cs - 1)) || s->rt_off == 0 || s->rt_off > s->file_end ||
        (uint64_t)s->rt_clusters * s->cs > s->file_end - s->rt_off + s->cs - 1) {
        fail(err, errlen, ret, "%s: qcow2 refcount table is invalid or lies outside the file", path);
        goto bad;
    }
    if (backing_off) {
        if (backing_len == 0 || backing_len > MAX_BACKING_NAME || backing_off > s->cs ||
            backing_len > s->cs - backing_off || memchr(hc + backing_off, 0, backing_len)) {
            fail(err, errlen, ret, "%s: bad backing file name in the qcow2 header", path);
            goto bad;
        }
        memcpy(s->backing_name, hc + backing_off, backing_len);
        s->backing_name[backing_len] = 0;
    }

    s->l1 = calloc(MAX(s->l1_size, 1u), 8);
    s->rt_size = (uint64_t)s->rt_clusters * s->cs / 8;
    s->rt = calloc(s->rt_size, 8);
    s->rb_entries = (s->cs * 8) >> s->rc_order;
    s->n_l2 = (unsigned)MIN(MAX(4 * MiB / s->cs, 8), 64);
    s->l2 = calloc(s->n_l2, sizeof(*s->l2));
    s->cbuf = malloc(2 * s->cs);
    s->dbuf = malloc(s->cs);
    s->wbuf = malloc(s->cs);
    s->zero = calloc(1, s->cs);
    bool oom = !s->l1 || !s->rt || !s->l2 || !s->cbuf || !s->dbuf || !s->wbuf || !s->zero;
    for (unsigned i = 0; !oom && i < s->n_l2; i++)
        oom = !(s->l2[i].tbl = malloc(s->cs));
    for (int i = 0; !oom && i < RB_CACHE; i++)
        oom = !(s->rb[i].blk = malloc(s->cs));
    if (oom) {
        ret = fail(err, errlen, -ENOMEM, "out of memory opening %s", path);
        goto bad;
    }
    uint8_t *raw = malloc(MAX((uint64_t)s->l1_size * 8, s->rt_size * 8));
    if (!raw) {
        ret = fail(err, errlen, -ENOMEM, "out of memory opening %s", path);
        goto bad;
    }
    if ((ret = pread_full(s->fd, raw, (size_t)s->l1_size * 8, s->l1_off)) == 0) {
        for (uint32_t i = 0; i < s->l1_size; i++)
            s->l1[i] = be64(raw + (size_t)i * 8);
        ret = pread_full(s->fd, raw, s->rt_size * 8, s->rt_off);
        for (uint64_t i = 0; ret == 0 && i < s->rt_size; i++)
            s->rt[i] = be64(raw + i * 8);
    }
    free(raw);
    if (ret < 0) {
        fail(err, errlen, ret, "cannot read %s: %s", path, strerror(-ret));
        goto bad;
    }
    if (inflateInit2(&s->z, -15) == Z_OK)
        s->z_ready = true;

    if (!ro) {
        /* The allocator trusts refcounts; make sure they at least cover
         * the metadata that must never be handed out. */
        ret = -EINVAL;
        for (uint64_t i = 0; i < s->rt_size; i++) {
            uint64_t e = s->rt[i];
            if ((e & ~RTE_OFFSET_MASK) || (e && ((e & (s->cs - 1)) || e >= s->file_end))) {
                fail(err, errlen, ret, "%s: qcow2 refcount block %" PRIu64 " is invalid; "
                     "repair the image with 'qemu-img check -r all'", path, i);
                goto bad;
            }
        }
        if ((ret = index_metadata(s)) < 0) {
            fail(err, errlen, ret, "%s: qcow2 refcount blocks or L2 tables overlap each other or "
                 "the image's other metadata; repair the image with 'qemu-img check -r all'", path);
            goto bad;
        }
        uint64_t l1c = div_up((uint64_t)s->l1_size * 8, s->cs);
        struct { uint64_t first, n; } meta[] = {
            { 0, 1 },
            { s->l1_off >> s->cluster_bits, l1c },
            { s->rt_off >> s->cluster_bits, s->rt_clusters },
        };
        bool covered = true;
        for (size_t k = 0; k < ARRAY_SIZE(meta); k++)
            for (uint64_t c = meta[k].first; c < meta[k].first + meta[k].n; c++)
                covered = covered && counted(s, c);
        /* The refcount blocks and the L2 tables too (the index holds
         * them): a new cluster could otherwise land on one of them. */
        for (size_t k = 0; k < s->n_meta && covered; k++)
            covered = counted(s, s->meta[k]);
        if (!covered) {
            fail(err, errlen, ret, "%s: qcow2 refcounts do not cover the image's own "
                 "metadata; repair it with 'qemu-img check -r all'", path);
            goto bad;
        }
        /* Autoclear features (e.g. bitmaps) describe data we are about to
         * change without maintaining them: clear them first. */
        if (s->autoclear) {
            uint8_t z[8] = { 0 };
            if ((ret = pwrite_full(s, z, 8, H_AUTOCLEAR)) < 0 || (ret = sync_file(s)) < 0) {
                fail(err, errlen, ret, "cannot write %s: %s", path, strerror(-ret));
                goto bad;
            }
            s->autoclear = 0;
        }
    }

    if (s->backing_name[0] && open_backing) {
        if ((ret = open_backing_file(s, path, depth, err, errlen)) < 0)
            goto bad;
    }
    free(hc);
    *out = s;
    return 0;
bad:
    free(hc);
    q_free(s);
    return ret < 0 ? ret : -EINVAL;
}

static void set_aio(struct qcow2 *s, struct blk_aio *aio)
{
    for (; s; s = s->bq)
        s->aio = aio;
}

static int qcow2_open(struct blk *b, const char *path, bool read_only, char *err, size_t errlen)
{
    struct qcow2 *s;
    int ret = q_open(&s, path, read_only, 0, true, err, errlen);
    if (ret < 0)
        return ret;
    set_aio(s, b->aio);
    b->drv_state = s;
    b->size = s->size;
    b->can_discard = false;
    return 0;
}

static void qcow2_close(struct blk *b)
{
    struct qcow2 *s = b->drv_state;
    if (!s)
        return;
    int ret = q_sync(s);
    if (ret < 0)
        log_error("qcow2: writing the image back on close failed: %s", strerror(-ret));
    q_free(s);
    b->drv_state = NULL;
}

const struct blk_driver blk_driver_qcow2 = {
    .name = "qcow2",
    .open = qcow2_open,
    .close = qcow2_close,
    .readv = qcow2_readv,
    .writev = qcow2_writev,
    .flush = qcow2_flush,
    .discard = qcow2_discard,
};

/* --- image operations for tools ----------------------------------------- */

const char *qcow2_error(const struct blk *b)
{
    if (b->drv != &blk_driver_qcow2 || !b->drv_state)
        return "";
    for (const struct qcow2 *s = b->drv_state; s; s = s->bq)
        if (s->why[0])
            return s->why;
    return "";
}

int qcow2_peek_backing(const char *path, char *name, size_t len)
{
    if (len)
        name[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    uint8_t h[20];
    int ret = pread_full(fd, h, sizeof(h), 0);
    if (ret == 0 && be32(h + H_MAGIC) == QCOW_MAGIC) {
        uint64_t off = be64(h + H_BACKING_OFFSET);
        uint32_t n = be32(h + H_BACKING_SIZE);
        if (off && n) {
            /* the same bounds as an open: inside the first cluster */
            if (n > MAX_BACKING_NAME || n >= len || off > 2 * MiB)
                ret = -EINVAL;
            else if ((ret = pread_full(fd, name, n, off)) == 0)
                name[n] = '\0';
        }
    }
    close(fd);
    return ret;
}

int qcow2_info(const char *path, struct qcow2_info *info, char *err, size_t errlen)
{
    struct qcow2 *s;
    int ret = q_open(&s, path, true, 0, false, err, errlen);
    if (ret < 0)
        return ret;
    memset(info, 0, sizeof(*info));
    info->version = s->version;
    info->size = s->size;
    info->cluster_size = (uint32_t)s->cs;
    info->refcount_bits = 1u << s->rc_order;
    snprintf(info->backing_file, sizeof(info->backing_file), "%s", s->backing_name);
    snprintf(info->backing_format, sizeof(info->backing_format), "%s", s->backing_fmt);
    info->dirty = s->incompat & INCOMPAT_DIRTY;
    info->corrupt = s->incompat & INCOMPAT_CORRUPT;
    info->lazy_refcounts = s->compat & COMPAT_LAZY_REFCOUNTS;
    info->nb_snapshots = s->nb_snapshots;
    info->incompatible_features = s->incompat;
    info->compatible_features = s->compat;
    info->autoclear_features = s->autoclear;
    q_free(s);
    return 0;
}

static uint64_t l1_entries_for(uint64_t size, unsigned cluster_bits)
{
    uint64_t cover = 1ull << (2 * cluster_bits - 3);
    return size / cover + (size % cover != 0);
}

int qcow2_resize(const char *path, uint64_t new_size, char *err, size_t errlen)
{
    struct qcow2 *s;
    int ret = q_open(&s, path, false, 0, false, err, errlen);
    if (ret < 0)
        return ret;
    if (new_size < s->size) {
        ret = fail(err, errlen, -EINVAL, "%s: shrinking a disk image is not supported "
                   "(it would destroy the data past the new end)", path);
        goto out;
    }
    uint64_t need = l1_entries_for(new_size, s->cluster_bits);
    if (need * 8 > MAX_L1_BYTES) {
        ret = fail(err, errlen, -EFBIG, "%s: %" PRIu64 " bytes is too large for this image's cluster size",
                   path, new_size);
        goto out;
    }
    uint8_t h[24];
    put64(h, new_size);
    put32(h + 8, s->crypt_method);
    if (need > s->l1_size) {
        /* A new, bigger L1 table; the header switches to it in one write
         * once it is stable, then the old one is freed. */
        uint64_t old_off = s->l1_off, old_clusters = div_up((uint64_t)s->l1_size * 8, s->cs);
        uint64_t ncl = div_up(need * 8, s->cs);
        uint64_t *l1 = calloc(need, 8);
        uint8_t *raw = calloc(ncl, s->cs);
        if (!l1 || !raw || (ret = writeback(s)) < 0) {
            free(l1);
            free(raw);
            ret = fail(err, errlen, ret < 0 ? ret : -ENOMEM, "%s: cannot grow the L1 table", path);
            goto out;
        }
        memcpy(l1, s->l1, (size_t)s->l1_size * 8);
        for (uint64_t i = 0; i < need; i++)
            put64(raw + i * 8, l1[i]);
        int64_t at = alloc_clusters(s, ncl);
        ret = at < 0 ? (int)at : pwrite_full(s, raw, ncl * s->cs, (uint64_t)at);
        if (ret == 0)
            ret = sync_file(s);
        free(raw);
        if (ret < 0) {
            free(l1);
            fail(err, errlen, ret, "cannot write %s: %s", path, strerror(-ret));
            goto out;
        }
        put32(h + 12, (uint32_t)need);
        put64(h + 16, (uint64_t)at);
        ret = pwrite_full(s, h, sizeof(h), H_SIZE);
        if (ret == 0)
            ret = sync_file(s);
        if (ret < 0) {
            free(l1);
            fail(err, errlen, ret, "cannot write %s: %s", path, strerror(-ret));
            goto out;
        }
        free(s->l1);
        s->l1 = l1;
        s->l1_size = (uint32_t)need;
        s->l1_off = (uint64_t)at;
        for (uint64_t i = 0; old_off && i < old_clusters && ret == 0; i++)
            ret = rc_drop(s, (old_off >> s->cluster_bits) + i);
    } else {
        ret = pwrite_full(s, h, 8, H_SIZE);
    }
    s->size = new_size;
    if (ret == 0)
        ret = q_sync(s);
    if (ret < 0)
        fail(err, errlen, ret, "cannot write %s: %s", path, strerror(-ret));
out:
    q_free(s);
    return ret;
}

int qcow2_create(const char *path, const struct qcow2_create_opts *o, char *err, size_t errlen)
{
    unsigned cb = o->cluster_bits ? o->cluster_bits : QCOW2_DEFAULT_CLUSTER_BITS;
    unsigned rbits = o->refcount_bits ? o->refcount_bits : 16;
    if (cb < MIN_CLUSTER_BITS || cb > MAX_CLUSTER_BITS)
        return fail(err, errlen, -EINVAL, "cluster size must be between 512 bytes and 2 MiB");
    if (rbits > 64 || (rbits & (rbits - 1)))
        return fail(err, errlen, -EINVAL, "refcount width must be a power of two up to 64 bits");
    if (o->size % 512)
        return fail(err, errlen, -EINVAL, "size must be a multiple of 512 bytes");
    uint64_t cs = 1ull << cb, l1_size = l1_entries_for(o->size, cb);
    if (l1_size * 8 > MAX_L1_BYTES)
        return fail(err, errlen, -EFBIG, "%" PRIu64 " bytes is too large for a qcow2 image with %" PRIu64
                    "-byte clusters", o->size, cs);
    unsigned order = (unsigned)__builtin_ctz(rbits);

    /* Header, extensions, backing file name: all in the first cluster. */
    uint8_t *hc = calloc(1, cs);
    if (!hc)
        return fail(err, errlen, -ENOMEM, "out of memory");
    size_t p = HEADER_V3_LEN;
    size_t blen = o->backing_file ? strlen(o->backing_file) : 0;
    const char *bfmt = o->backing_format;
    int ret = 0;
    if (o->backing_file) {
        if (!blen || blen > MAX_BACKING_NAME) {
            ret = fail(err, errlen, -EINVAL, "backing file name must be 1 to %d bytes", MAX_BACKING_NAME);
            goto out_free;
        }
        if (bfmt && strcmp(bfmt, "raw") && strcmp(bfmt, "qcow2")) {
            ret = fail(err, errlen, -EINVAL, "backing format must be raw or qcow2, not '%s'", bfmt);
            goto out_free;
        }
        char full[PATH_MAX];
        const char *seen = NULL;
        if ((ret = backing_path(path, o->backing_file, full, sizeof(full), err, errlen)) < 0 ||
            (ret = backing_format(path, full, &seen, err, errlen)) < 0)
            goto out_free;
        if (!bfmt)
            bfmt = seen;
        {
            size_t fl = strlen(bfmt);
            put32(hc + p, EXT_BACKING_FORMAT);
            put32(hc + p + 4, (uint32_t)fl);
            memcpy(hc + p + 8, bfmt, fl);
            p += 8 + ALIGN_UP(fl, 8);
        }
    }
    p += 8;     /* end of extensions */
    uint64_t boff = 0;
    if (blen) {
        if (p + blen > cs) {
            ret = fail(err, errlen, -EINVAL, "backing file name does not fit in the first cluster");
            goto out_free;
        }
        boff = p;
        memcpy(hc + p, o->backing_file, blen);
    }

    /* Layout: header, refcount table, refcount blocks, L1 table. */
    uint64_t E = (cs * 8) >> order;
    uint64_t l1c = MAX(div_up(l1_size * 8, cs), 1), nb = 1, rtc = 1, total;
    for (;;) {
        total = 1 + rtc + nb + l1c;
        uint64_t nb2 = div_up(total, E), rtc2 = div_up(nb2 * 8, cs);
        if (nb2 == nb && rtc2 == rtc)
            break;
        nb = nb2;
        rtc = rtc2;
    }
    uint64_t rt_off = cs, rb_off = (1 + rtc) * cs, l1_off = (1 + rtc + nb) * cs;
    put32(hc + H_MAGIC, QCOW_MAGIC);
    put32(hc + H_VERSION, 3);
    put64(hc + H_BACKING_OFFSET, boff);
    put32(hc + H_BACKING_SIZE, (uint32_t)blen);
    put32(hc + H_CLUSTER_BITS, cb);
    put64(hc + H_SIZE, o->size);
    put32(hc + H_L1_SIZE, (uint32_t)l1_size);
    put64(hc + H_L1_TABLE_OFFSET, l1_off);
    put64(hc + H_RT_OFFSET, rt_off);
    put32(hc + H_RT_CLUSTERS, (uint32_t)rtc);
    put32(hc + H_REFCOUNT_ORDER, order);
    put32(hc + H_HEADER_LENGTH, HEADER_V3_LEN);

    uint8_t *rt = calloc(rtc, cs), *rb = calloc(nb, cs);
    int fd = -1;
    if (!rt || !rb) {
        ret = fail(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    for (uint64_t i = 0; i < nb; i++)
        put64(rt + i * 8, rb_off + i * cs);
    for (uint64_t c = 0; c < total; c++) {
        uint64_t at;
        unsigned len;
        rc_store(rb + (c / E) * cs, c % E, order, 1, &at, &len);
    }

    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        ret = fail(err, errlen, -errno, errno == EEXIST ? "%s already exists" : "cannot create %s: %s",
                   path, strerror(errno));
        goto out;
    }
    struct qcow2 w = { .fd = fd };
    if ((ret = pwrite_full(&w, hc, cs, 0)) < 0 ||
        (ret = pwrite_full(&w, rt, rtc * cs, rt_off)) < 0 ||
        (ret = pwrite_full(&w, rb, nb * cs, rb_off)) < 0 ||
        (ftruncate(fd, (off_t)(total * cs)) < 0 && (ret = -errno) < 0) ||
        (fsync(fd) < 0 && (ret = -errno) < 0)) {
        fail(err, errlen, ret, "cannot write %s: %s", path, strerror(-ret));
        close(fd);
        unlink(path);
        fd = -1;
        goto out;
    }
    close(fd);
out:
    free(rt);
    free(rb);
out_free:
    free(hc);
    return ret;
}
