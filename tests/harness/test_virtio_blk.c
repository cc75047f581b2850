/* virtio-blk driven through its PCI registers and virtqueue by the spec-
 * written test driver, on a temporary raw image.  The whole suite runs
 * twice: with io_uring, and with the synchronous fallback. */
#include <errno.h>
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

#include "devices/block/block.h"
#include "devices/virtio_blk.h"
#include "support/harness_platform.h"
#include "support/virtio_driver.h"

#define RAM_SIZE     (32u << 20)
#define DISK_BYTES   (8u << 20)
#define SECTORS      (DISK_BYTES / 512)
#define MMIO_BASE    0xe0000000ULL
#define QSIZE        256
#define MSI_ADDR     0xfee00000ULL
#define MSI_DATA_CFG 0x4040
#define MSI_DATA_Q0  0x4041
#define TIMEOUT_MS   5000

/* virtio 1.2, 5.2 */
#define T_IN       0
#define T_OUT      1
#define T_FLUSH    4
#define T_GET_ID   8
#define T_DISCARD  11
#define S_OK       0
#define S_IOERR    1
#define S_UNSUPP   2
#define F_SEG_MAX  (1ULL << 2)
#define F_RO       (1ULL << 5)
#define F_BLK_SIZE (1ULL << 6)
#define F_FLUSH    (1ULL << 9)
#define F_DISCARD  (1ULL << 13)
#define F_INDIRECT (1ULL << 28)
#define F_EVENT_IDX (1ULL << 29)
#define F_VERSION_1 (1ULL << 32)

struct fx {
    struct harness *h;
    struct pci_bus bus;
    struct virtio_blk *blk;
    struct vdrv d;
    char path[512];
    int fd;                 /* our own view of the image */
    bool ro;
};

static const char *tmpdir(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : P_tmpdir;
}

static int fx_open(void **state, bool ro)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->path, sizeof(f->path), "%s/burrow-vblk-XXXXXX", tmpdir());
    f->fd = mkstemp(f->path);
    assert_true(f->fd >= 0);
    assert_int_equal(ftruncate(f->fd, DISK_BYTES), 0);
    f->ro = ro;
    f->h = harness_new(RAM_SIZE);
    assert_non_null(f->h);
    harness_pci_bus_init(&f->bus, f->h);
    char err[256] = "";
    f->blk = virtio_blk_create(&f->h->plat, &f->bus, f->path, NULL, ro, err, sizeof(err));
    if (!f->blk)
        fail_msg("virtio_blk_create: %s", err);
    int devfn = harness_pci_find(&f->bus, 0x1af4, 0x1042);
    assert_true(devfn >= 0);
    assert_int_equal(vdrv_probe(&f->d, f->h, &f->bus, (uint8_t)devfn, MMIO_BASE), 0);
    *state = f;
    return 0;
}

static int setup_rw(void **state) { return fx_open(state, false); }
static int setup_ro(void **state) { return fx_open(state, true); }

static int teardown(void **state)
{
    struct fx *f = *state;
    virtio_blk_destroy(f->blk);
    harness_free(f->h);
    close(f->fd);
    unlink(f->path);
    free(f);
    return 0;
}

/* Driver initialisation (3.1.1) with MSI-X or INTx. */
static void bring_up(struct fx *f, uint64_t features, bool msix)
{
    struct vdrv *d = &f->d;
    assert_true(vdrv_reset(d));
    assert_true(vdrv_negotiate(d, features | F_VERSION_1));
    if (msix) {
        vdrv_msix_vector(d, 0, MSI_ADDR, MSI_DATA_CFG, false);
        vdrv_msix_vector(d, 1, MSI_ADDR, MSI_DATA_Q0, false);
        vdrv_msix_enable(d, true);
        vdrv_common_write(d, VDRV_CC_MSIX, 2, 0);
        assert_int_equal(vdrv_common_read(d, VDRV_CC_MSIX, 2), 0);
    } else {
        vdrv_msix_enable(d, false);
        vdrv_common_write(d, VDRV_CC_MSIX, 2, VDRV_NO_VECTOR);
    }
    assert_int_equal(vdrv_setup_queue(d, 0, QSIZE, msix ? 1 : VDRV_NO_VECTOR), 0);
    vdrv_driver_ok(d);
    assert_int_equal(vdrv_status(d), VDRV_S_ACKNOWLEDGE | VDRV_S_DRIVER | VDRV_S_FEATURES_OK | VDRV_S_DRIVER_OK);
}

static const uint64_t all_features = F_SEG_MAX | F_BLK_SIZE | F_FLUSH | F_DISCARD | F_RO;

struct result {
    uint8_t status;
    uint32_t len;
};

/* One request: header, data split into nseg pieces, status byte. */
static struct result request(struct fx *f, uint32_t type, uint64_t sector, uint64_t data,
                             uint32_t data_len, bool device_writes, unsigned nseg, bool indirect)
{
    struct vdrv *d = &f->d;
    uint64_t hdr = vdrv_alloc(d, 16, 16);
    uint8_t h[16] = { 0 };
    for (int i = 0; i < 4; i++)
        h[i] = (uint8_t)(type >> (8 * i));
    for (int i = 0; i < 8; i++)
        h[8 + i] = (uint8_t)(sector >> (8 * i));
    vdrv_mem_write(d, hdr, h, 16);
    uint64_t st = vdrv_alloc(d, 1, 1);
    uint8_t ff = 0xff;
    vdrv_mem_write(d, st, &ff, 1);

    struct vdrv_buf bufs[16];
    unsigned n = 0;
    bufs[n++] = (struct vdrv_buf){ hdr, 16, false };
    if (data_len) {
        uint32_t left = data_len;
        for (unsigned s = 0; s < nseg; s++) {
            uint32_t piece = s + 1 == nseg ? left : data_len / nseg;
            bufs[n++] = (struct vdrv_buf){ data + (data_len - left), piece, device_writes };
            left -= piece;
        }
    }
    bufs[n++] = (struct vdrv_buf){ st, 1, true };
    uint16_t head = indirect ? vdrv_post_indirect(d, 0, bufs, n) : vdrv_post(d, 0, bufs, n);
    vdrv_notify(d, 0);
    uint32_t id = 0xffffffff, len = 0;
    assert_true(vdrv_wait_used(d, 0, &id, &len, TIMEOUT_MS));
    assert_int_equal(id, head);
    struct result r = { 0, len };
    vdrv_mem_read(d, st, &r.status, 1);
    return r;
}

static struct result rw(struct fx *f, uint32_t type, uint64_t sector, uint64_t data, uint32_t len, unsigned nseg)
{
    return request(f, type, sector, data, len, type == T_IN, nseg, false);
}

static void fill(struct fx *f, uint64_t gpa, uint8_t seed, size_t len)
{
    for (size_t i = 0; i < len; i++)
        f->h->ram[gpa + i] = (uint8_t)(seed + i * 7);
}

/* --- identity and configuration ---------------------------------------- */

static void test_identity(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    assert_int_equal(pci_config_read(&f->bus, d->devfn, 0x00, 2), 0x1af4);
    assert_int_equal(pci_config_read(&f->bus, d->devfn, 0x02, 2), 0x1042);
    assert_true(pci_config_read(&f->bus, d->devfn, 0x08, 1) >= 1);          /* revision */
    assert_true(pci_config_read(&f->bus, d->devfn, 0x2e, 2) >= 0x40);       /* subsystem id */
    assert_int_equal(pci_config_read(&f->bus, d->devfn, 0x0b, 1), 0x01);    /* mass storage */
    /* BAR4: 64-bit prefetchable memory */
    assert_int_equal(pci_config_read(&f->bus, d->devfn, 0x20, 4) & 0xf, 0xc);
    assert_true(d->msix_cap && d->msix_nvec >= 2);
    assert_true(d->device && d->pci_cfg_cap);
    assert_int_equal(d->notify_mult, 4);
    assert_int_equal(vdrv_common_read(d, VDRV_CC_NUMQ, 2), 1);
    vdrv_common_write(d, VDRV_CC_Q_SELECT, 2, 0);
    assert_int_equal(vdrv_common_read(d, VDRV_CC_Q_SIZE, 2), QSIZE);
}

static void test_config_and_features(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    uint64_t feat = vdrv_device_features(d);
    assert_true(feat & F_VERSION_1);
    assert_true(feat & F_FLUSH);
    assert_true(feat & F_BLK_SIZE);
    assert_true(feat & F_SEG_MAX);
    assert_true(feat & F_INDIRECT);
    assert_true(feat & F_EVENT_IDX);
    assert_int_equal(!!(feat & F_RO), f->ro);
    assert_int_equal(!!(feat & F_DISCARD), !f->ro);
    bring_up(f, all_features, true);
    assert_int_equal(vdrv_config_read(d, 0, 8), SECTORS);           /* capacity */
    assert_int_equal(vdrv_config_read(d, 0x14, 4), 512);            /* blk_size */
    uint32_t seg_max = (uint32_t)vdrv_config_read(d, 0x0c, 4);
    assert_true(seg_max >= 1 && seg_max <= QSIZE);
    if (!f->ro) {
        assert_true(vdrv_config_read(d, 0x24, 4) > 0);              /* max_discard_sectors */
        assert_true(vdrv_config_read(d, 0x28, 4) > 0);              /* max_discard_seg */
    }
}

static void test_version1_required(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    assert_true(vdrv_reset(d));
    /* Accept everything but VERSION_1: FEATURES_OK must not stick. */
    vdrv_set_status(d, VDRV_S_ACKNOWLEDGE | VDRV_S_DRIVER);
    vdrv_common_write(d, VDRV_CC_GFSELECT, 4, 0);
    vdrv_common_write(d, VDRV_CC_GF, 4, (uint32_t)F_FLUSH);
    vdrv_common_write(d, VDRV_CC_GFSELECT, 4, 1);
    vdrv_common_write(d, VDRV_CC_GF, 4, 0);
    vdrv_set_status(d, VDRV_S_ACKNOWLEDGE | VDRV_S_DRIVER | VDRV_S_FEATURES_OK);
    assert_false(vdrv_status(d) & VDRV_S_FEATURES_OK);
    /* A feature the device never offered is refused too. */
    assert_true(vdrv_reset(d));
    vdrv_set_status(d, VDRV_S_ACKNOWLEDGE | VDRV_S_DRIVER);
    vdrv_common_write(d, VDRV_CC_GFSELECT, 4, 1);
    vdrv_common_write(d, VDRV_CC_GF, 4, 1 | 1u << 20);
    vdrv_set_status(d, VDRV_S_ACKNOWLEDGE | VDRV_S_DRIVER | VDRV_S_FEATURES_OK);
    assert_false(vdrv_status(d) & VDRV_S_FEATURES_OK);
    /* And a proper negotiation works after a reset. */
    bring_up(f, F_FLUSH, true);
}

/* --- I/O ---------------------------------------------------------------- */

static void test_write_read_multiseg(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    bring_up(f, all_features | F_INDIRECT, true);
    assert_true(d->features & F_INDIRECT);
    const uint32_t len = 4 * 512;
    uint64_t wbuf = vdrv_alloc(d, len, 512), rbuf = vdrv_alloc(d, len, 512);
    fill(f, wbuf, 0x31, len);
    struct result r = rw(f, T_OUT, 10, wbuf, len, 3);
    assert_int_equal(r.status, S_OK);
    assert_int_equal(r.len, 1);
    /* The image file holds exactly what was written. */
    uint8_t disk[4 * 512];
    assert_int_equal(pread(f->fd, disk, len, 10 * 512), (ssize_t)len);
    assert_memory_equal(disk, f->h->ram + wbuf, len);
    r = rw(f, T_IN, 10, rbuf, len, 2);
    assert_int_equal(r.status, S_OK);
    assert_int_equal(r.len, len + 1);
    assert_memory_equal(f->h->ram + rbuf, f->h->ram + wbuf, len);
    /* Through an indirect table as well. */
    memset(f->h->ram + rbuf, 0, len);
    r = request(f, T_IN, 10, rbuf, len, true, 4, true);
    assert_int_equal(r.status, S_OK);
    assert_memory_equal(f->h->ram + rbuf, f->h->ram + wbuf, len);
}

/* The block layer's flush, seen from here (the test links with
 * --wrap=blk_flush): how many the device asked for, and how many had
 * completed, so a write's completion can be checked to come after one. */
static unsigned flushes_started, flushes_done;
struct flush_watch {
    blk_cb cb;
    void *opaque;
};
int __real_blk_flush(struct blk *b, blk_cb cb, void *opaque);
static void flush_watch_done(void *opaque, int res)
{
    struct flush_watch w = *(struct flush_watch *)opaque;
    free(opaque);
    if (res == 0)
        flushes_done++;
    w.cb(w.opaque, res);
}
int __wrap_blk_flush(struct blk *b, blk_cb cb, void *opaque);
int __wrap_blk_flush(struct blk *b, blk_cb cb, void *opaque)
{
    struct flush_watch *w = malloc(sizeof(*w));
    if (!w)
        return -ENOMEM;
    *w = (struct flush_watch){ cb, opaque };
    flushes_started++;
    int r = __real_blk_flush(b, flush_watch_done, w);
    if (r < 0) {
        flushes_started--;
        free(w);
    }
    return r;
}

/* Without VIRTIO_BLK_F_FLUSH negotiated the device must complete writes
 * only once they are stable (5.2.6.2): each write's completion comes after
 * a flush of the image has completed; they land on the image.  With the
 * feature, writes complete without one (the driver flushes itself). */
static void test_write_through(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    bring_up(f, F_BLK_SIZE, true);
    assert_false(d->features & F_FLUSH);
    uint64_t wbuf = vdrv_alloc(d, 1024, 512);
    fill(f, wbuf, 0x77, 1024);
    unsigned started = flushes_started, done = flushes_done;
    for (unsigned i = 1; i <= 3; i++) {
        assert_int_equal(rw(f, T_OUT, 3 * i, wbuf, 1024, 2).status, S_OK);
        /* the used ring holds the write only once its flush is done */
        assert_int_equal(flushes_done - done, i);
        assert_int_equal(flushes_started - started, i);
    }
    uint8_t disk[1024];
    assert_int_equal(pread(f->fd, disk, 1024, 3 * 512), 1024);
    assert_memory_equal(disk, f->h->ram + wbuf, 1024);
}

static void test_write_back(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    bring_up(f, F_BLK_SIZE | F_FLUSH, true);
    assert_true(d->features & F_FLUSH);
    unsigned before = flushes_started;
    uint64_t wbuf = vdrv_alloc(d, 512, 512);
    fill(f, wbuf, 0x31, 512);
    assert_int_equal(rw(f, T_OUT, 5, wbuf, 512, 1).status, S_OK);
    assert_int_equal(flushes_started, before);
    assert_int_equal(request(f, T_FLUSH, 0, 0, 0, false, 0, false).status, S_OK);
    assert_int_equal(flushes_started, before + 1);
}

/* More requests than the block layer's io_uring has entries: the excess
 * waits in its queue and still completes. */
static void test_many_in_flight(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    bring_up(f, all_features | F_EVENT_IDX | F_INDIRECT, true);
    enum { N = 200 };
    uint8_t sector[512];
    for (unsigned k = 0; k < N; k++) {
        memset(sector, (int)(uint8_t)(0x80 + k), sizeof(sector));
        assert_int_equal(pwrite(f->fd, sector, 512, (off_t)(100 + k) * 512), 512);
    }
    uint64_t bufs[N], sts[N];
    uint16_t heads[N];
    for (unsigned k = 0; k < N; k++) {
        uint64_t hdr = vdrv_alloc(d, 16, 16);
        uint8_t h[16] = { T_IN };
        h[8] = (uint8_t)(100 + k);
        h[9] = (uint8_t)((100 + k) >> 8);
        vdrv_mem_write(d, hdr, h, 16);
        bufs[k] = vdrv_alloc(d, 512, 512);
        sts[k] = vdrv_alloc(d, 1, 1);
        f->h->ram[sts[k]] = 0xff;
        struct vdrv_buf c[3] = { { hdr, 16, false }, { bufs[k], 512, true }, { sts[k], 1, true } };
        heads[k] = vdrv_post_indirect(d, 0, c, 3);
    }
    vdrv_notify(d, 0);
    bool seen[N] = { false };
    for (unsigned k = 0; k < N; k++) {
        uint32_t id, len;
        assert_true(vdrv_wait_used(d, 0, &id, &len, TIMEOUT_MS));
        unsigned which = N;
        for (unsigned j = 0; j < N; j++)
            if (heads[j] == id)
                which = j;
        assert_true(which < N);
        assert_false(seen[which]);
        seen[which] = true;
        assert_int_equal(len, 513);
    }
    for (unsigned k = 0; k < N; k++) {
        assert_int_equal(f->h->ram[sts[k]], S_OK);
        for (unsigned i = 0; i < 512; i++)
            assert_int_equal(f->h->ram[bufs[k] + i], (uint8_t)(0x80 + k));
    }
}

static void test_flush_and_get_id(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    bring_up(f, all_features, true);
    struct result r = rw(f, T_FLUSH, 0, 0, 0, 0);
    assert_int_equal(r.status, S_OK);
    uint64_t id = vdrv_alloc(d, 20, 1);
    r = request(f, T_GET_ID, 0, id, 20, true, 1, false);
    assert_int_equal(r.status, S_OK);
    assert_int_equal(r.len, 21);
    assert_memory_equal(f->h->ram + id, "BURROW-", 7);
    virtio_blk_set_serial(f->blk, "0123456789abcdefghijKLMNOP");
    r = request(f, T_GET_ID, 0, id, 20, true, 1, false);
    assert_int_equal(r.status, S_OK);
    assert_memory_equal(f->h->ram + id, "0123456789abcdefghij", 20);
}

static bool punch_hole_works(void)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/burrow-punch-XXXXXX", tmpdir());
    int fd = mkstemp(p);
    if (fd < 0)
        return false;
    unlink(p);
    char buf[8192];
    memset(buf, 1, sizeof(buf));
    bool ok = write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf) &&
              fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096) == 0;
    close(fd);
    return ok;
}

static struct result discard(struct fx *f, const uint64_t (*segs)[3], unsigned n, uint32_t extra_bytes)
{
    struct vdrv *d = &f->d;
    uint32_t len = 16 * n + extra_bytes;
    uint64_t buf = vdrv_alloc(d, len, 16);
    for (unsigned i = 0; i < n; i++) {
        uint8_t s[16];
        for (int b = 0; b < 8; b++)
            s[b] = (uint8_t)(segs[i][0] >> (8 * b));
        for (int b = 0; b < 4; b++) {
            s[8 + b] = (uint8_t)(segs[i][1] >> (8 * b));
            s[12 + b] = (uint8_t)(segs[i][2] >> (8 * b));
        }
        vdrv_mem_write(d, buf + 16 * i, s, 16);
    }
    return request(f, T_DISCARD, 0, buf, len, false, 1, false);
}

static void test_discard(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    bring_up(f, all_features, true);
    uint64_t data = vdrv_alloc(d, 16 * 512, 512), back = vdrv_alloc(d, 16 * 512, 512);
    memset(f->h->ram + data, 0xaa, 16 * 512);
    assert_int_equal(rw(f, T_OUT, 0, data, 16 * 512, 1).status, S_OK);

    const uint64_t ok[2][3] = { { 0, 8, 0 }, { 64, 8, 0 } };
    assert_int_equal(discard(f, ok, 2, 0).status, S_OK);
    assert_int_equal(rw(f, T_IN, 0, back, 16 * 512, 1).status, S_OK);
    if (punch_hole_works()) {
        for (unsigned i = 0; i < 8 * 512; i++)
            assert_int_equal(f->h->ram[back + i], 0);
    } else {
        print_message("file system cannot punch holes: discarded data not checked\n");
    }
    for (unsigned i = 8 * 512; i < 16 * 512; i++)
        assert_int_equal(f->h->ram[back + i], 0xaa);

    const uint64_t unmap[1][3] = { { 0, 8, 1 } };
    assert_int_equal(discard(f, unmap, 1, 0).status, S_UNSUPP);       /* 5.2.6.2 */
    const uint64_t unknown_flag[1][3] = { { 0, 8, 0x80 } };
    assert_int_equal(discard(f, unknown_flag, 1, 0).status, S_UNSUPP);
    const uint64_t beyond[1][3] = { { SECTORS - 4, 8, 0 } };
    assert_int_equal(discard(f, beyond, 1, 0).status, S_IOERR);
    assert_int_equal(discard(f, ok, 1, 4).status, S_IOERR);           /* not a whole segment */
    /* The range check comes before any discarding: the valid first segment
     * of a request with a bad second one is left alone. */
    assert_int_equal(rw(f, T_OUT, 64, data, 8 * 512, 1).status, S_OK);
    const uint64_t mixed[2][3] = { { 64, 8, 0 }, { SECTORS, 1, 0 } };
    assert_int_equal(discard(f, mixed, 2, 0).status, S_IOERR);
    assert_int_equal(rw(f, T_IN, 64, back, 8 * 512, 1).status, S_OK);
    for (unsigned i = 0; i < 8 * 512; i++)
        assert_int_equal(f->h->ram[back + i], 0xaa);
}

static void test_out_of_range_and_unsupported(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    bring_up(f, all_features, true);
    uint64_t buf = vdrv_alloc(d, 2 * 512, 512);
    assert_int_equal(rw(f, T_IN, SECTORS - 1, buf, 512, 1).status, S_OK);
    assert_int_equal(rw(f, T_IN, SECTORS, buf, 512, 1).status, S_IOERR);
    assert_int_equal(rw(f, T_IN, SECTORS - 1, buf, 1024, 1).status, S_IOERR);
    assert_int_equal(rw(f, T_OUT, UINT64_MAX / 256, buf, 512, 1).status, S_IOERR);
    assert_int_equal(rw(f, T_IN, 0, buf, 100, 1).status, S_IOERR);    /* not whole sectors */
    assert_int_equal(rw(f, 0x1234, 0, buf, 512, 1).status, S_UNSUPP);
    /* The device still works. */
    assert_int_equal(rw(f, T_IN, 0, buf, 512, 1).status, S_OK);
    assert_false(vdrv_status(d) & VDRV_S_NEEDS_RESET);
}

static void test_read_only(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    uint8_t pattern[512];
    memset(pattern, 0x5c, sizeof(pattern));
    assert_int_equal(pwrite(f->fd, pattern, 512, 7 * 512), 512);
    bring_up(f, all_features, true);
    assert_true(d->features & F_RO);
    uint64_t buf = vdrv_alloc(d, 512, 512);
    memset(f->h->ram + buf, 0x11, 512);
    assert_int_equal(rw(f, T_OUT, 7, buf, 512, 1).status, S_IOERR);
    uint8_t disk[512];
    assert_int_equal(pread(f->fd, disk, 512, 7 * 512), 512);
    assert_memory_equal(disk, pattern, 512);
    const uint64_t seg[1][3] = { { 0, 8, 0 } };
    assert_int_not_equal(discard(f, seg, 1, 0).status, S_OK);
    assert_int_equal(rw(f, T_IN, 7, buf, 512, 1).status, S_OK);
    assert_memory_equal(f->h->ram + buf, pattern, 512);
    assert_int_equal(rw(f, T_FLUSH, 0, 0, 0, 0).status, S_OK);
}

/* --- interrupts --------------------------------------------------------- */

static void test_msix_vector(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    bring_up(f, all_features, true);
    uint64_t buf = vdrv_alloc(d, 512, 512);
    unsigned before = vdrv_msi_count(d, MSI_DATA_Q0);
    assert_int_equal(rw(f, T_IN, 0, buf, 512, 1).status, S_OK);
    assert_int_equal(vdrv_msi_count(d, MSI_DATA_Q0), before + 1);
    assert_int_equal(vdrv_msi_count(d, MSI_DATA_CFG), 0);
    assert_false(f->h->irq_level[vdrv_intx_gsi(d)]);
    /* VIRTQ_AVAIL_F_NO_INTERRUPT suppresses it (2.7.7). */
    vdrv_set_avail_flags(d, 0, 1);
    assert_int_equal(rw(f, T_IN, 0, buf, 512, 1).status, S_OK);
    assert_int_equal(vdrv_msi_count(d, MSI_DATA_Q0), before + 1);
    vdrv_set_avail_flags(d, 0, 0);
    assert_int_equal(rw(f, T_IN, 0, buf, 512, 1).status, S_OK);
    assert_int_equal(vdrv_msi_count(d, MSI_DATA_Q0), before + 2);
}

static void test_event_idx(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    bring_up(f, all_features | F_EVENT_IDX, true);
    assert_true(d->features & F_EVENT_IDX);
    uint64_t buf = vdrv_alloc(d, 512, 512);
    assert_int_equal(rw(f, T_IN, 0, buf, 512, 1).status, S_OK);    /* used idx 1 */
    unsigned base = vdrv_msi_count(d, MSI_DATA_Q0);
    assert_int_equal(base, 1);
    /* Only the entry that moves used idx past 5 may interrupt (2.7.10). */
    vdrv_set_used_event(d, 0, 5);
    for (int k = 2; k <= 5; k++) {
        assert_int_equal(rw(f, T_IN, 0, buf, 512, 1).status, S_OK);
        assert_int_equal(vdrv_msi_count(d, MSI_DATA_Q0), base);
    }
    assert_int_equal(rw(f, T_IN, 0, buf, 512, 1).status, S_OK);    /* used idx 6 */
    assert_int_equal(vdrv_msi_count(d, MSI_DATA_Q0), base + 1);
    /* The device publishes avail_event: it has consumed 6 entries. */
    uint16_t avail_event;
    vdrv_mem_read(d, d->q[0].used + 4 + 8 * QSIZE, &avail_event, 2);
    assert_int_equal(avail_event, 6);
}

static void test_intx_isr(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    bring_up(f, all_features, false);
    unsigned gsi = vdrv_intx_gsi(d);
    uint64_t buf = vdrv_alloc(d, 512, 512);
    assert_false(f->h->irq_level[gsi]);
    assert_int_equal(rw(f, T_IN, 0, buf, 512, 1).status, S_OK);
    assert_true(f->h->irq_level[gsi]);
    assert_true(pci_config_read(&f->bus, d->devfn, 0x06, 2) & 0x8);   /* interrupt status */
    assert_int_equal(vdrv_isr(d), 1);                                /* queue interrupt */
    assert_false(f->h->irq_level[gsi]);                              /* read cleared it */
    assert_int_equal(vdrv_isr(d), 0);
    assert_int_equal(f->h->msi_total, 0);
}

/* --- registers, reset, PCI config window --------------------------------- */

static void test_pci_cfg_window(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    uint8_t bar4 = 4;
    uint32_t common_off = (uint32_t)(d->common - d->bar[4]);
    assert_int_equal(vdrv_pci_cfg_read(d, bar4, common_off + VDRV_CC_NUMQ, 2), 1);
    vdrv_pci_cfg_write(d, bar4, common_off + VDRV_CC_DFSELECT, 4, 1);
    assert_int_equal(vdrv_pci_cfg_read(d, bar4, common_off + VDRV_CC_DF, 4), vdrv_common_read(d, VDRV_CC_DF, 4));
    vdrv_pci_cfg_write(d, bar4, common_off + VDRV_CC_STATUS, 1, VDRV_S_ACKNOWLEDGE);
    assert_int_equal(vdrv_status(d), VDRV_S_ACKNOWLEDGE);
    /* Nonsense windows are refused without harm. */
    (void)vdrv_pci_cfg_read(d, 9, 0, 4);
    (void)vdrv_pci_cfg_read(d, bar4, 3, 4);
    vdrv_pci_cfg_write(d, bar4, 0x7ffffff0, 4, 0);
    vdrv_pci_cfg_write(d, 2, 0, 4, 0);
    assert_int_equal(vdrv_status(d), VDRV_S_ACKNOWLEDGE);
}

static void test_reset(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    bring_up(f, all_features, true);
    uint64_t buf = vdrv_alloc(d, 64 * 512, 512);
    assert_int_equal(rw(f, T_IN, 0, buf, 512, 1).status, S_OK);
    /* Reset with a request in flight: nothing may land in the old rings. */
    uint64_t hdr = vdrv_alloc(d, 16, 16), st = vdrv_alloc(d, 1, 1);
    uint8_t h[16] = { T_IN };
    vdrv_mem_write(d, hdr, h, 16);
    struct vdrv_buf c[3] = { { hdr, 16, false }, { buf, 64 * 512, true }, { st, 1, true } };
    vdrv_post(d, 0, c, 3);
    uint64_t old_used = d->q[0].used;
    uint16_t used_before = vdrv_used_idx(d, 0);
    vdrv_notify(d, 0);
    assert_true(vdrv_reset(d));
    struct harness *hh = f->h;
    for (int i = 0; i < 5; i++)
        evloop_run_once(hh->plat.loop, 10);
    uint16_t used_after;
    vdrv_mem_read(d, old_used + 2, &used_after, 2);
    assert_int_equal(used_after, used_before);
    /* Registers are back to their reset values. */
    vdrv_common_write(d, VDRV_CC_Q_SELECT, 2, 0);
    assert_int_equal(vdrv_common_read(d, VDRV_CC_Q_ENABLE, 2), 0);
    assert_int_equal(vdrv_common_read(d, VDRV_CC_Q_SIZE, 2), QSIZE);
    assert_int_equal(vdrv_common_read(d, VDRV_CC_Q_MSIX, 2), VDRV_NO_VECTOR);
    assert_int_equal(vdrv_common_read(d, VDRV_CC_MSIX, 2), VDRV_NO_VECTOR);
    assert_int_equal(vdrv_common_read(d, VDRV_CC_Q_DESCLO, 4), 0);
    /* And the device works again. */
    bring_up(f, all_features, true);
    assert_int_equal(rw(f, T_IN, 0, buf, 512, 1).status, S_OK);
    vdrv_mem_read(d, old_used + 2, &used_after, 2);
    assert_int_equal(used_after, used_before);
}

static void test_queue_register_misuse(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    assert_true(vdrv_reset(d));
    assert_true(vdrv_negotiate(d, all_features | F_VERSION_1));
    /* Oversized and non-power-of-two sizes are refused: the old value stays. */
    vdrv_common_write(d, VDRV_CC_Q_SELECT, 2, 0);
    vdrv_common_write(d, VDRV_CC_Q_SIZE, 2, 2 * QSIZE);
    assert_int_equal(vdrv_common_read(d, VDRV_CC_Q_SIZE, 2), QSIZE);
    vdrv_common_write(d, VDRV_CC_Q_SIZE, 2, 100);
    assert_int_equal(vdrv_common_read(d, VDRV_CC_Q_SIZE, 2), QSIZE);
    vdrv_common_write(d, VDRV_CC_Q_SIZE, 2, 0);
    assert_int_equal(vdrv_common_read(d, VDRV_CC_Q_SIZE, 2), QSIZE);
    /* A queue that does not exist reads as size 0 and cannot be enabled. */
    vdrv_common_write(d, VDRV_CC_Q_SELECT, 2, 7);
    assert_int_equal(vdrv_common_read(d, VDRV_CC_Q_SIZE, 2), 0);
    vdrv_common_write(d, VDRV_CC_Q_SIZE, 2, 16);
    vdrv_common_write(d, VDRV_CC_Q_DESCLO, 4, 0x100000);
    vdrv_common_write(d, VDRV_CC_Q_ENABLE, 2, 1);
    assert_int_equal(vdrv_common_read(d, VDRV_CC_Q_ENABLE, 2), 0);
    assert_int_equal(vdrv_common_read(d, VDRV_CC_Q_SIZE, 2), 0);
    vdrv_common_write(d, VDRV_CC_Q_SELECT, 2, 0xffff);
    assert_int_equal(vdrv_common_read(d, VDRV_CC_Q_SIZE, 2), 0);
    /* MSI-X vectors the function does not have read back as NO_VECTOR. */
    vdrv_common_write(d, VDRV_CC_MSIX, 2, 999);
    assert_int_equal(vdrv_common_read(d, VDRV_CC_MSIX, 2), VDRV_NO_VECTOR);
    /* Misaligned accesses and stray writes are ignored. */
    vdrv_common_write(d, 0x13, 2, 0xffff);
    harness_mmio_write(f->h, d->bar[4] + 0x0f00, 4, 0xdead);
    harness_mmio_write(f->h, d->notify + 3 * d->notify_mult, 2, 3);     /* queue 3: absent */
    assert_false(vdrv_status(d) & VDRV_S_NEEDS_RESET);
    /* A smaller queue is fine and works. */
    vdrv_msix_vector(d, 1, MSI_ADDR, MSI_DATA_Q0, false);
    vdrv_msix_enable(d, true);
    assert_int_equal(vdrv_setup_queue(d, 0, 16, 1), 0);
    vdrv_driver_ok(d);
    uint64_t buf = vdrv_alloc(d, 512, 512);
    for (int i = 0; i < 20; i++)    /* wraps the 16-entry ring */
        assert_int_equal(rw(f, T_IN, 0, buf, 512, 1).status, S_OK);
}

/* --- ioeventfd: a platform that lets notify writes signal an eventfd ---- */

static struct {
    bool active;
    uint64_t addr;
    unsigned len;
    int fd;
    unsigned adds, dels;
} ioev;

static int t_ioeventfd_add(void *opaque, bool pio, uint64_t addr, unsigned len, int fd)
{
    if (pio || ioev.active)
        return -1;
    ioev.active = true;
    ioev.addr = addr;
    ioev.len = len;
    ioev.fd = fd;
    ioev.adds++;
    return 0;
}

static int t_ioeventfd_del(void *opaque, bool pio, uint64_t addr, unsigned len, int fd)
{
    if (!ioev.active || ioev.addr != addr || ioev.fd != fd)
        return -1;
    ioev.active = false;
    ioev.dels++;
    return 0;
}

static struct platform_ops ioev_ops;

static void kick_eventfd(void)
{
    uint64_t one = 1;
    assert_int_equal(write(ioev.fd, &one, sizeof(one)), (ssize_t)sizeof(one));
}

static void test_ioeventfd(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    memset(&ioev, 0, sizeof(ioev));
    ioev_ops = *f->h->plat.ops;
    ioev_ops.ioeventfd_add = t_ioeventfd_add;
    ioev_ops.ioeventfd_del = t_ioeventfd_del;
    f->h->plat.ops = &ioev_ops;

    bring_up(f, all_features, true);
    assert_true(ioev.active);
    assert_int_equal(ioev.addr, d->q[0].notify_addr);

    /* A notification through the eventfd, as KVM would deliver it. */
    uint64_t hdr = vdrv_alloc(d, 16, 16), buf = vdrv_alloc(d, 512, 512), st = vdrv_alloc(d, 1, 1);
    uint8_t h[16] = { T_IN };
    vdrv_mem_write(d, hdr, h, 16);
    struct vdrv_buf c[3] = { { hdr, 16, false }, { buf, 512, true }, { st, 1, true } };
    vdrv_post(d, 0, c, 3);
    kick_eventfd();
    assert_true(vdrv_wait_used(d, 0, NULL, NULL, TIMEOUT_MS));
    assert_int_equal(f->h->ram[st], S_OK);

    /* Moving BAR4 moves the registration. */
    uint64_t notify_off = ioev.addr - d->bar[4];
    pci_config_write(&f->bus, d->devfn, 0x20, 4, 0xd0000000u);
    assert_true(ioev.active);
    assert_int_equal(ioev.addr, 0xd0000000u + notify_off);
    /* Memory decoding off: gone; back on at the old place: back. */
    pci_config_write(&f->bus, d->devfn, 0x04, 2, 0x4);
    assert_false(ioev.active);
    pci_config_write(&f->bus, d->devfn, 0x20, 4, (uint32_t)d->bar[4]);
    pci_config_write(&f->bus, d->devfn, 0x04, 2, 0x6);
    assert_true(ioev.active);
    assert_int_equal(ioev.addr, d->q[0].notify_addr);
    f->h->ram[st] = 0xff;
    vdrv_post(d, 0, c, 3);
    kick_eventfd();
    assert_true(vdrv_wait_used(d, 0, NULL, NULL, TIMEOUT_MS));
    assert_int_equal(f->h->ram[st], S_OK);

    /* A device reset drops it until the queue is enabled again. */
    assert_true(vdrv_reset(d));
    assert_false(ioev.active);
    assert_int_equal(ioev.adds, ioev.dels);
    bring_up(f, all_features, true);
    assert_true(ioev.active);
}

/* --- malformed rings: the device reports DEVICE_NEEDS_RESET, lives, and a
 * reset brings it back ------------------------------------------------- */

static void expect_broken_recover_irq(struct fx *f, bool irq)
{
    struct vdrv *d = &f->d;
    assert_true(vdrv_status(d) & VDRV_S_NEEDS_RESET);
    /* 2.1.2: with DRIVER_OK set, a configuration change notification. */
    if (irq)
        assert_true(vdrv_msi_count(d, MSI_DATA_CFG) >= 1);
    /* Further notifications are ignored while broken. */
    uint16_t used = vdrv_used_idx(d, 0);
    vdrv_notify(d, 0);
    assert_int_equal(vdrv_used_idx(d, 0), used);
    /* A reset recovers the device. */
    bring_up(f, all_features, true);
    uint64_t buf = vdrv_alloc(d, 512, 512);
    assert_int_equal(rw(f, T_IN, 0, buf, 512, 1).status, S_OK);
    assert_false(vdrv_status(d) & VDRV_S_NEEDS_RESET);
}

static void expect_broken_then_recover(struct fx *f)
{
    expect_broken_recover_irq(f, true);
}

/* Writes a normal three-descriptor read at slots 0..2 (header, data, status). */
static void plain_chain(struct fx *f, uint64_t *hdr_out, uint64_t *buf_out, uint64_t *st_out)
{
    struct vdrv *d = &f->d;
    uint64_t hdr = vdrv_alloc(d, 16, 16), buf = vdrv_alloc(d, 512, 512), st = vdrv_alloc(d, 1, 1);
    uint8_t h[16] = { T_IN };
    vdrv_mem_write(d, hdr, h, 16);
    vdrv_write_desc(d, 0, 0, hdr, 16, VDRV_DESC_NEXT, 1);
    vdrv_write_desc(d, 0, 1, buf, 512, VDRV_DESC_WRITE | VDRV_DESC_NEXT, 2);
    vdrv_write_desc(d, 0, 2, st, 1, VDRV_DESC_WRITE, 0);
    *hdr_out = hdr;
    *buf_out = buf;
    *st_out = st;
}

static void test_bad_head_index(void **state)
{
    struct fx *f = *state;
    bring_up(f, all_features, true);
    vdrv_publish(&f->d, 0, QSIZE + 5);
    vdrv_notify(&f->d, 0);
    expect_broken_then_recover(f);
}

static void test_bad_next_index(void **state)
{
    struct fx *f = *state;
    uint64_t hdr, buf, st;
    bring_up(f, all_features, true);
    plain_chain(f, &hdr, &buf, &st);
    vdrv_write_desc(&f->d, 0, 1, buf, 512, VDRV_DESC_WRITE | VDRV_DESC_NEXT, QSIZE + 1);
    vdrv_publish(&f->d, 0, 0);
    vdrv_notify(&f->d, 0);
    expect_broken_then_recover(f);
}

static void test_chain_loop(void **state)
{
    struct fx *f = *state;
    uint64_t hdr, buf, st;
    bring_up(f, all_features, true);
    plain_chain(f, &hdr, &buf, &st);
    vdrv_write_desc(&f->d, 0, 2, st, 1, VDRV_DESC_WRITE | VDRV_DESC_NEXT, 1);   /* 1 -> 2 -> 1 ... */
    vdrv_publish(&f->d, 0, 0);
    vdrv_notify(&f->d, 0);
    expect_broken_then_recover(f);
}

static void test_buffer_outside_ram(void **state)
{
    struct fx *f = *state;
    uint64_t hdr, buf, st;
    bring_up(f, all_features, true);
    plain_chain(f, &hdr, &buf, &st);
    vdrv_write_desc(&f->d, 0, 1, RAM_SIZE - 256, 512, VDRV_DESC_WRITE | VDRV_DESC_NEXT, 2);
    vdrv_publish(&f->d, 0, 0);
    vdrv_notify(&f->d, 0);
    expect_broken_then_recover(f);
    /* Far away too. */
    plain_chain(f, &hdr, &buf, &st);
    vdrv_write_desc(&f->d, 0, 0, 0xfffffffffffff000ULL, 16, VDRV_DESC_NEXT, 1);
    vdrv_publish(&f->d, 0, 0);
    vdrv_notify(&f->d, 0);
    expect_broken_then_recover(f);
}

static void test_zero_length_status(void **state)
{
    struct fx *f = *state;
    uint64_t hdr, buf, st;
    bring_up(f, all_features, true);
    plain_chain(f, &hdr, &buf, &st);
    /* Header then a zero-length writable "status" buffer: no status byte. */
    vdrv_write_desc(&f->d, 0, 0, hdr, 16, VDRV_DESC_NEXT, 2);
    vdrv_write_desc(&f->d, 0, 2, st, 0, VDRV_DESC_WRITE, 0);
    vdrv_publish(&f->d, 0, 0);
    vdrv_notify(&f->d, 0);
    expect_broken_then_recover(f);
}

static void test_short_header(void **state)
{
    struct fx *f = *state;
    uint64_t hdr, buf, st;
    bring_up(f, all_features, true);
    plain_chain(f, &hdr, &buf, &st);
    vdrv_write_desc(&f->d, 0, 0, hdr, 8, VDRV_DESC_NEXT, 1);
    vdrv_publish(&f->d, 0, 0);
    vdrv_notify(&f->d, 0);
    expect_broken_then_recover(f);
}

static void test_write_before_read(void **state)
{
    struct fx *f = *state;
    uint64_t hdr, buf, st;
    bring_up(f, all_features, true);
    plain_chain(f, &hdr, &buf, &st);
    /* status(W) -> header(R): readable after writable (2.7.4.2) */
    vdrv_write_desc(&f->d, 0, 2, st, 1, VDRV_DESC_WRITE | VDRV_DESC_NEXT, 0);
    vdrv_write_desc(&f->d, 0, 0, hdr, 16, 0, 0);
    vdrv_publish(&f->d, 0, 2);
    vdrv_notify(&f->d, 0);
    expect_broken_then_recover(f);
}

static void test_avail_idx_jump(void **state)
{
    struct fx *f = *state;
    bring_up(f, all_features, true);
    vdrv_set_avail_idx(&f->d, 0, QSIZE + 10);
    vdrv_notify(&f->d, 0);
    expect_broken_then_recover(f);
}

static void test_indirect_misuse(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    uint64_t hdr, buf, st;
    /* Indirect descriptor without having negotiated it. */
    bring_up(f, F_FLUSH, true);
    assert_false(d->features & F_INDIRECT);
    plain_chain(f, &hdr, &buf, &st);
    uint64_t table = vdrv_alloc(d, 48, 16);
    memcpy(f->h->ram + table, f->h->ram + d->q[0].desc, 48);
    vdrv_write_desc(d, 0, 5, table, 48, VDRV_DESC_INDIRECT, 0);
    vdrv_publish(d, 0, 5);
    vdrv_notify(d, 0);
    expect_broken_then_recover(f);
    /* Negotiated, but a table whose length is not a multiple of 16. */
    bring_up(f, all_features | F_INDIRECT, true);
    vdrv_write_desc(d, 0, 5, table, 40, VDRV_DESC_INDIRECT, 0);
    vdrv_publish(d, 0, 5);
    vdrv_notify(d, 0);
    expect_broken_then_recover(f);
    /* A table that points at itself (nested indirect). */
    bring_up(f, all_features | F_INDIRECT, true);
    uint8_t self[16] = { 0 };
    for (int b = 0; b < 8; b++)
        self[b] = (uint8_t)(table >> (8 * b));
    self[8] = 48;
    self[12] = VDRV_DESC_INDIRECT;
    vdrv_mem_write(d, table, self, 16);
    vdrv_write_desc(d, 0, 5, table, 48, VDRV_DESC_INDIRECT, 0);
    vdrv_publish(d, 0, 5);
    vdrv_notify(d, 0);
    expect_broken_then_recover(f);
}

static void test_rings_outside_ram(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    assert_true(vdrv_reset(d));
    assert_true(vdrv_negotiate(d, all_features | F_VERSION_1));
    vdrv_msix_vector(d, 0, MSI_ADDR, MSI_DATA_CFG, false);
    vdrv_msix_enable(d, true);
    vdrv_common_write(d, VDRV_CC_MSIX, 2, 0);
    vdrv_common_write(d, VDRV_CC_Q_SELECT, 2, 0);
    vdrv_common_write(d, VDRV_CC_Q_DESCLO, 4, 0);
    vdrv_common_write(d, VDRV_CC_Q_DESCHI, 4, 0x1000);
    vdrv_common_write(d, VDRV_CC_Q_ENABLE, 2, 1);
    assert_int_equal(vdrv_common_read(d, VDRV_CC_Q_ENABLE, 2), 0);
    vdrv_driver_ok(d);
    assert_true(vdrv_status(d) & VDRV_S_NEEDS_RESET);
    expect_broken_recover_irq(f, false);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_rw, teardown)

static const struct CMUnitTest tests[] = {
    T(test_identity),
    T(test_config_and_features),
    cmocka_unit_test_setup_teardown(test_config_and_features, setup_ro, teardown),
    T(test_version1_required),
    T(test_write_read_multiseg),
    T(test_write_through),
    T(test_write_back),
    T(test_many_in_flight),
    T(test_flush_and_get_id),
    T(test_discard),
    T(test_out_of_range_and_unsupported),
    cmocka_unit_test_setup_teardown(test_read_only, setup_ro, teardown),
    T(test_msix_vector),
    T(test_event_idx),
    T(test_intx_isr),
    T(test_pci_cfg_window),
    T(test_reset),
    T(test_ioeventfd),
    T(test_queue_register_misuse),
    T(test_bad_head_index),
    T(test_bad_next_index),
    T(test_chain_loop),
    T(test_buffer_outside_ram),
    T(test_zero_length_status),
    T(test_short_header),
    T(test_write_before_read),
    T(test_avail_idx_jump),
    T(test_indirect_misuse),
    T(test_rings_outside_ram),
};

int main(void)
{
    int failed = cmocka_run_group_tests_name("virtio-blk, io_uring when available", tests, NULL, NULL);
    setenv("BURROW_BLOCK_SYNC", "1", 1);
    failed += cmocka_run_group_tests_name("virtio-blk, synchronous block I/O", tests, NULL, NULL);
    return failed ? 1 : 0;
}
