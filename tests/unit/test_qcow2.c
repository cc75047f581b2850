/* qcow2 driver and format probing: images made by our code and by
 * qemu-img read back the same bytes through both; writes across cluster
 * boundaries, into zero and compressed clusters and over backing chains
 * land where they should; refcounts grow past a refcount block and past
 * the refcount table; images stay clean by `qemu-img check`; hostile
 * headers are refused and mutated images never crash the driver.
 *
 * The same executable is the writer of the crash test
 * (tests/e2e/test_qcow2_crash.sh):
 *     unit_test_qcow2 crash-create IMAGE SIZE CLUSTER_BITS
 *     unit_test_qcow2 crash-writer IMAGE JOURNAL RUN SEED
 * The writer writes random sector patterns forever, flushing now and then;
 * the journal says what was started ("S run seq offset length") and what
 * a completed flush made stable ("F run seq"). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "devices/block/block.h"
#include "devices/block/qcow2.h"
#include "devices/util.h"

static char dir[256];
static bool have_qemu_img;

/* --- helpers ------------------------------------------------------------ */

static const char *tpath(const char *name)
{
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 512, "%s/%s", dir, name);
    return b;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

#define NEED_QEMU_IMG()                                                       \
    do {                                                                      \
        if (!have_qemu_img)                                                   \
            fail_msg("qemu-img not found (install-deps.sh installs qemu-utils)"); \
    } while (0)

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static struct blk *open_img(const char *path, const char *fmt, bool ro)
{
    char err[512] = "";
    struct blk *b = blk_open_format(NULL, path, fmt, ro, err, sizeof(err));
    if (!b)
        print_message("open %s: %s\n", path, err);
    assert_non_null(b);
    return b;
}

static void make_qcow2(const char *path, uint64_t size, unsigned cluster_bits, unsigned refcount_bits,
                       const char *backing, const char *backing_fmt)
{
    char err[512] = "";
    struct qcow2_create_opts o = { .size = size, .cluster_bits = cluster_bits,
                                   .refcount_bits = refcount_bits, .backing_file = backing,
                                   .backing_format = backing_fmt };
    int ret = qcow2_create(path, &o, err, sizeof(err));
    if (ret < 0)
        print_message("create %s: %s\n", path, err);
    assert_int_equal(ret, 0);
}

static void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(rnd() >> 24);
}

static uint8_t *read_file(const char *path, size_t size)
{
    uint8_t *buf = calloc(1, size);
    assert_non_null(buf);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t got = fread(buf, 1, size, f);
    (void)got;
    fclose(f);
    return buf;
}

static void write_file(const char *path, const uint8_t *buf, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, size, f), size);
    fclose(f);
}

/* The image read through our driver equals expect. */
static void expect_ours(const char *path, const uint8_t *expect, size_t size)
{
    struct blk *b = open_img(path, NULL, true);
    assert_int_equal(blk_size(b), size);
    uint8_t *got = malloc(size);
    assert_non_null(got);
    assert_int_equal(blk_pread(b, 0, got, size), 0);
    assert_memory_equal(got, expect, size);
    free(got);
    blk_close(b);
}

/* The image read by qemu-img equals expect, and `qemu-img check` finds
 * nothing at all (no corruption, no leaks). */
static void expect_qemu(const char *path, const uint8_t *expect, size_t size)
{
    if (!have_qemu_img)
        return;
    assert_int_equal(sh("qemu-img check -q '%s'", path), 0);
    const char *raw = tpath("qemu-view.raw");
    unlink(raw);
    assert_int_equal(sh("qemu-img convert -O raw '%s' '%s'", path, raw), 0);
    uint8_t *got = read_file(raw, size);
    assert_memory_equal(got, expect, size);
    free(got);
    unlink(raw);
}

/* Random writes through our driver, mirrored into shadow. */
static void random_writes(struct blk *b, uint8_t *shadow, size_t size, int count, size_t maxlen)
{
    uint8_t *buf = malloc(maxlen);
    assert_non_null(buf);
    for (int i = 0; i < count; i++) {
        size_t len = 1 + (size_t)(rnd() % maxlen);
        uint64_t off = rnd() % (size - len + 1);
        fill_random(buf, len);
        assert_int_equal(blk_pwrite(b, off, buf, len), 0);
        memcpy(shadow + off, buf, len);
        if (i % 17 == 0)
            assert_int_equal(blk_flush_sync(b), 0);
    }
    free(buf);
}

/* --- tests -------------------------------------------------------------- */

static void test_our_image_rw(void **state)
{
    const size_t size = 8 * MiB;
    const char *img = tpath("rw.qcow2");
    unlink(img);
    make_qcow2(img, size, 0, 0, NULL, NULL);
    uint8_t *shadow = calloc(1, size);
    struct blk *b = open_img(img, NULL, false);
    assert_string_equal(blk_format(b), "qcow2");
    assert_int_equal(blk_size(b), size);

    /* Edges first: across cluster boundaries, the last byte, byte-sized. */
    const uint64_t cs = 64 * KiB;
    uint64_t offs[] = { cs - 100, 3 * cs - 1, size - 1, 0, 5 * cs + 7 };
    size_t lens[] = { 300, 2 * cs + 2, 1, 513, 3 * cs };
    uint8_t *buf = malloc(4 * cs);
    for (size_t i = 0; i < ARRAY_SIZE(offs); i++) {
        fill_random(buf, lens[i]);
        assert_int_equal(blk_pwrite(b, offs[i], buf, lens[i]), 0);
        memcpy(shadow + offs[i], buf, lens[i]);
    }
    random_writes(b, shadow, size, 200, 200 * KiB);
    /* Read back through the cache, then from the file. */
    uint8_t *got = malloc(size);
    assert_int_equal(blk_pread(b, 0, got, size), 0);
    assert_memory_equal(got, shadow, size);
    /* Unaligned reads across clusters */
    for (int i = 0; i < 50; i++) {
        size_t len = 1 + (size_t)(rnd() % (3 * cs));
        uint64_t off = rnd() % (size - len);
        assert_int_equal(blk_pread(b, off, buf, len), 0);
        assert_memory_equal(buf, shadow + off, len);
    }
    assert_int_equal(blk_flush_sync(b), 0);
    blk_close(b);
    expect_ours(img, shadow, size);
    expect_qemu(img, shadow, size);
    free(got);
    free(buf);
    free(shadow);
}

/* 512-byte clusters and narrow refcounts: a refcount block covers 128 KiB
 * or less, and the refcount table (one cluster) runs out after a few MiB,
 * so it has to move, more than once. */
static void grow_refcounts(unsigned refcount_bits)
{
    const size_t size = 24 * MiB;
    const char *img = tpath("small.qcow2");
    unlink(img);
    make_qcow2(img, size, 9, refcount_bits, NULL, NULL);
    uint8_t *shadow = calloc(1, size);
    struct blk *b = open_img(img, "qcow2", false);
    uint8_t *buf = malloc(256 * KiB);
    /* Sequential 256 KiB writes over 16 MiB, then random ones. */
    for (uint64_t off = 0; off < 16 * MiB; off += 256 * KiB) {
        fill_random(buf, 256 * KiB);
        assert_int_equal(blk_pwrite(b, off, buf, 256 * KiB), 0);
        memcpy(shadow + off, buf, 256 * KiB);
    }
    random_writes(b, shadow, size, 100, 64 * KiB);
    blk_close(b);
    struct qcow2_info in;
    char err[256];
    assert_int_equal(qcow2_info(img, &in, err, sizeof(err)), 0);
    assert_int_equal(in.refcount_bits, refcount_bits);
    struct stat st;
    assert_int_equal(stat(img, &st), 0);
    /* 16 MiB of data in 512-byte clusters needs many refcount blocks. */
    assert_true((uint64_t)st.st_size > 16 * MiB);
    expect_ours(img, shadow, size);
    expect_qemu(img, shadow, size);
    free(buf);
    free(shadow);
}

static void test_refcount_growth(void **state)
{
    grow_refcounts(16);
    grow_refcounts(1);
    grow_refcounts(64);
}

/* Images written by qemu: plain, then written by us, then checked. */
static void test_qemu_made_image(void **state)
{
    NEED_QEMU_IMG();
    const size_t size = 6 * MiB;
    uint8_t *data = calloc(1, size);
    for (int i = 0; i < 30; i++) {
        size_t len = 1 + (size_t)(rnd() % (128 * KiB));
        uint64_t off = rnd() % (size - len);
        fill_random(data + off, len);
    }
    const char *raw = tpath("src.raw"), *img = tpath("qemu.qcow2");
    unlink(img);
    write_file(raw, data, size);
    assert_int_equal(sh("qemu-img convert -O qcow2 '%s' '%s'", raw, img), 0);
    expect_ours(img, data, size);
    struct blk *b = open_img(img, NULL, false);
    random_writes(b, data, size, 80, 150 * KiB);
    blk_close(b);
    expect_ours(img, data, size);
    expect_qemu(img, data, size);

    /* A version 2 image too. */
    const char *v2 = tpath("v2.qcow2");
    unlink(v2);
    assert_int_equal(sh("qemu-img convert -O qcow2 -o compat=0.10 '%s' '%s'", raw, v2), 0);
    b = open_img(v2, NULL, false);
    uint8_t *shadow = read_file(raw, size);
    random_writes(b, shadow, size, 40, 100 * KiB);
    blk_close(b);
    expect_ours(v2, shadow, size);
    expect_qemu(v2, shadow, size);
    free(shadow);
    free(data);
}

/* Zero clusters (version 3): read as zeroes, also over a backing file,
 * and a partial write into one keeps the rest zero. */
static void test_zero_clusters(void **state)
{
    NEED_QEMU_IMG();
    const size_t size = 1 * MiB;
    uint8_t *base = malloc(size);
    memset(base, 0x22, size);
    const char *raw = tpath("zbase.raw"), *img = tpath("zero.qcow2");
    unlink(img);
    write_file(raw, base, size);
    assert_int_equal(sh("qemu-img create -q -f qcow2 -b zbase.raw -F raw '%s' 1M", img), 0);
    /* 0..256K data, 64K..128K zeroed after allocation (a zero cluster that
     * keeps its host cluster), 512K..640K zero clusters over the backing. */
    assert_int_equal(sh("qemu-io -c 'write -P 0x11 0 256k' -c 'write -z 64k 64k' "
                        "-c 'write -z 512k 128k' '%s' >/dev/null", img), 0);
    uint8_t *expect = malloc(size);
    memcpy(expect, base, size);
    memset(expect, 0x11, 256 * KiB);
    memset(expect + 64 * KiB, 0, 64 * KiB);
    memset(expect + 512 * KiB, 0, 128 * KiB);
    expect_ours(img, expect, size);

    struct blk *b = open_img(img, NULL, false);
    uint8_t small[1000];
    memset(small, 0x33, sizeof(small));
    uint64_t at[] = { 64 * KiB + 100, 512 * KiB + 5000, 600 * KiB - 10 };
    for (size_t i = 0; i < ARRAY_SIZE(at); i++) {
        assert_int_equal(blk_pwrite(b, at[i], small, sizeof(small)), 0);
        memcpy(expect + at[i], small, sizeof(small));
    }
    blk_close(b);
    expect_ours(img, expect, size);
    expect_qemu(img, expect, size);
    free(expect);
    free(base);
}

/* Compressed clusters written by qemu-img convert -c: read, then rewrite
 * some partially; the old compressed data is freed (check finds no leak). */
static void test_compressed_clusters(void **state)
{
    NEED_QEMU_IMG();
    const size_t size = 2 * MiB;
    uint8_t *data = malloc(size);
    /* Compressible but not trivial: text-like runs. */
    for (size_t i = 0; i < size; i++)
        data[i] = (uint8_t)("burrow qcow2 compressed cluster "[(i / 3) % 32] + (i / 4096) % 7);
    const char *raw = tpath("comp.raw"), *img = tpath("comp.qcow2");
    unlink(img);
    write_file(raw, data, size);
    assert_int_equal(sh("qemu-img convert -c -O qcow2 '%s' '%s'", raw, img), 0);
    struct stat st;
    assert_int_equal(stat(img, &st), 0);
    assert_true((uint64_t)st.st_size < size / 2);   /* really compressed */
    expect_ours(img, data, size);

    struct blk *b = open_img(img, NULL, false);
    uint8_t buf[3000];
    for (int i = 0; i < 20; i++) {
        uint64_t off = rnd() % (size - sizeof(buf));
        fill_random(buf, sizeof(buf));
        assert_int_equal(blk_pwrite(b, off, buf, sizeof(buf)), 0);
        memcpy(data + off, buf, sizeof(buf));
        if (i % 5 == 4)
            assert_int_equal(blk_flush_sync(b), 0);
    }
    blk_close(b);
    expect_ours(img, data, size);
    expect_qemu(img, data, size);
    free(data);
}

/* raw <- qcow2 (qemu's, with its own writes) <- qcow2 (ours). */
static void test_backing_chain(void **state)
{
    NEED_QEMU_IMG();
    const size_t size = 3 * MiB;
    uint8_t *base = malloc(size);
    fill_random(base, size);
    const char *raw = tpath("chain-base.raw"), *mid = tpath("chain-mid.qcow2"), *top = tpath("chain-top.qcow2");
    unlink(mid);
    unlink(top);
    write_file(raw, base, size / 2);      /* shorter than the overlay: the rest reads as zeroes */
    assert_int_equal(sh("qemu-img create -q -f qcow2 -b chain-base.raw -F raw '%s' 3M", mid), 0);
    assert_int_equal(sh("qemu-io -c 'write -P 0x5a 1000k 100k' -c 'write -P 0x6b 2M 64k' '%s' >/dev/null", mid), 0);
    uint8_t *expect = calloc(1, size);
    memcpy(expect, base, size / 2);
    memset(expect + 1000 * KiB, 0x5a, 100 * KiB);
    memset(expect + 2 * MiB, 0x6b, 64 * KiB);
    make_qcow2(top, size, 0, 0, "chain-mid.qcow2", NULL);
    struct qcow2_info in;
    char err[256];
    assert_int_equal(qcow2_info(top, &in, err, sizeof(err)), 0);
    assert_string_equal(in.backing_file, "chain-mid.qcow2");
    assert_string_equal(in.backing_format, "qcow2");
    expect_ours(top, expect, size);

    struct blk *b = open_img(top, NULL, false);
    random_writes(b, expect, size, 60, 90 * KiB);
    blk_close(b);
    expect_ours(top, expect, size);
    expect_qemu(top, expect, size);
    /* The lower images are untouched. */
    uint8_t *again = read_file(raw, size / 2);
    assert_memory_equal(again, base, size / 2);
    free(again);
    assert_int_equal(sh("qemu-img check -q '%s'", mid), 0);
    free(expect);
    free(base);
}

static void test_resize(void **state)
{
    const char *img = tpath("grow.qcow2");
    unlink(img);
    /* 512-byte clusters: one L1 cluster covers 2 MiB, so 40 MiB moves L1. */
    make_qcow2(img, 1 * MiB, 9, 0, NULL, NULL);
    const size_t size = 40 * MiB;
    uint8_t *shadow = calloc(1, size);
    struct blk *b = open_img(img, NULL, false);
    random_writes(b, shadow, 1 * MiB, 20, 20 * KiB);
    blk_close(b);
    char err[256];
    assert_int_not_equal(qcow2_resize(img, 512 * KiB, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "shrink"));
    assert_int_equal(qcow2_resize(img, size, err, sizeof(err)), 0);
    b = open_img(img, NULL, false);
    assert_int_equal(blk_size(b), size);
    random_writes(b, shadow, size, 60, 64 * KiB);
    blk_close(b);
    expect_ours(img, shadow, size);
    expect_qemu(img, shadow, size);
    free(shadow);
}

/* --- hostile and foreign images ----------------------------------------- */

static void put_be(const char *path, uint64_t off, unsigned bytes, uint64_t v)
{
    uint8_t b[8];
    for (unsigned i = 0; i < bytes; i++)
        b[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, b, bytes, (off_t)off), bytes);
    close(fd);
}

static void expect_refused(const char *path, const char *fmt, bool ro, const char *want)
{
    char err[512] = "";
    struct blk *b = blk_open_format(NULL, path, fmt, ro, err, sizeof(err));
    if (b || !strstr(err, want))
        print_message("%s: got '%s', wanted '%s'\n", path, err, want);
    assert_null(b);
    assert_non_null(strstr(err, want));
}

static void test_malicious_headers(void **state)
{
    struct { uint64_t off; unsigned bytes; uint64_t v; const char *want; } cases[] = {
        { 36, 4, 0x10000000, "L1 table too large" },        /* l1_size */
        { 36, 4, 0, "too small" },
        { 40, 8, 1ull << 40, "outside the file" },           /* l1_table_offset */
        { 40, 8, 0x10001, "outside the file" },
        { 48, 8, 1ull << 50, "refcount table" },             /* refcount_table_offset */
        { 56, 4, 0xffffffff, "refcount table" },
        { 20, 4, 40, "cluster size" },
        { 20, 4, 0, "cluster size" },
        { 4, 4, 4, "version 4" },
        { 4, 4, 1, "version 1" },
        { 0, 4, 0x12345678, "not a qcow2 image" },
        { 72, 8, 1ull << 5, "does not support" },            /* unknown incompatible bit */
        { 72, 8, 1ull << 2, "external data file" },
        { 72, 8, 1ull << 1, "marked corrupt" },
        { 32, 4, 1, "encrypted" },
        { 96, 4, 9, "refcount order" },
        { 100, 4, 7, "header length" },
        { 100, 4, 1u << 20, "header length" },
        { 112, 4, 0x1234, "overruns" },                      /* extension type with... */
        { 8, 8, 65500, "backing file name" },                /* backing name past the cluster */
        { 16, 4, 5000, "backing file name" },
    };
    const char *img = tpath("evil.qcow2");
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        unlink(img);
        make_qcow2(img, 4 * MiB, 0, 0, NULL, NULL);
        if (cases[i].off == 112)       /* ...a length past the cluster */
            put_be(img, 116, 4, 0xfffffff0);
        if (cases[i].off == 8)
            put_be(img, 16, 4, 100);
        if (cases[i].off == 16)
            put_be(img, 8, 8, 200);
        put_be(img, cases[i].off, cases[i].bytes, cases[i].v);
        expect_refused(img, "qcow2", cases[i].off == 72 && cases[i].v == 2 ? false : true, cases[i].want);
    }
    /* Internal snapshots: readable, not writable. */
    unlink(img);
    make_qcow2(img, 4 * MiB, 0, 0, NULL, NULL);
    put_be(img, 60, 4, 1);
    expect_refused(img, NULL, false, "snapshots");
    struct blk *b = open_img(img, NULL, true);
    blk_close(b);
}

/* A v3 image with 512-byte clusters and 1-bit refcounts whose largest
 * possible refcount table names one all-ones block a million times: every
 * allocation once scanned 4 G clusters (a minute each, the VM frozen) and
 * a resize never ended.  Aliased blocks, and a block on the image's own
 * metadata, are refused at a writable open; a read-only one still reads. */
static void test_aliased_refcount_blocks(void **state)
{
    const char *img = tpath("alias.qcow2");
    unlink(img);
    make_qcow2(img, 1 * MiB, 9, 1, NULL, NULL);
    struct stat st;
    assert_int_equal(stat(img, &st), 0);
    const uint64_t cs = 512, rt_clusters = 8 * MiB / cs;
    uint64_t rt_off = ((uint64_t)st.st_size + cs - 1) / cs * cs, blk_off = rt_off + rt_clusters * cs;
    uint8_t *rt = malloc(rt_clusters * cs);
    assert_non_null(rt);
    for (uint64_t i = 0; i < rt_clusters * cs / 8; i++)
        for (unsigned k = 0; k < 8; k++)
            rt[i * 8 + k] = (uint8_t)(blk_off >> (56 - 8 * k));
    uint8_t ones[512];
    memset(ones, 0xff, sizeof(ones));
    int fd = open(img, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, rt, rt_clusters * cs, (off_t)rt_off), (ssize_t)(rt_clusters * cs));
    assert_int_equal(pwrite(fd, ones, cs, (off_t)blk_off), (ssize_t)cs);
    close(fd);
    free(rt);
    put_be(img, 48, 8, rt_off);
    put_be(img, 56, 4, rt_clusters);
    expect_refused(img, "qcow2", false, "overlap each other");
    char err[512] = "";
    assert_true(qcow2_resize(img, 2 * MiB, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "overlap each other"));
    struct blk *b = open_img(img, "qcow2", true);
    uint8_t buf[4096];
    assert_int_equal(blk_pread(b, 0, buf, sizeof(buf)), 0);
    blk_close(b);

    /* one entry only, but on the L1 table */
    unlink(img);
    make_qcow2(img, 1 * MiB, 9, 1, NULL, NULL);
    uint8_t h[8];
    fd = open(img, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, h, 8, 40), 8);       /* l1_table_offset */
    uint64_t l1 = 0;
    for (int k = 0; k < 8; k++)
        l1 = l1 << 8 | h[k];
    assert_int_equal(pread(fd, h, 8, 48), 8);       /* refcount_table_offset */
    uint64_t rto = 0;
    for (int k = 0; k < 8; k++)
        rto = rto << 8 | h[k];
    close(fd);
    put_be(img, rto + 8, 8, l1);
    expect_refused(img, "qcow2", false, "overlap each other");
}

static uint64_t get_be(const char *path, uint64_t off, unsigned bytes)
{
    uint8_t b[8];
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, b, bytes, (off_t)off), (ssize_t)bytes);
    close(fd);
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v = v << 8 | b[i];
    return v;
}

/* Where a small image's metadata lies, as a test damages it. */
struct layout {
    uint64_t l1, rt;        /* the tables */
    uint64_t l2, rb;        /* the first L2 table and refcount block */
    uint64_t data;          /* the first data cluster */
};

/* A fresh 1 MiB image with 512-byte clusters and 16-bit refcounts whose
 * first 4 KiB hold 0x5a (copied to buf), closed; its layout. */
static struct layout written_image(const char *img, uint8_t buf[4096])
{
    unlink(img);
    make_qcow2(img, 1 * MiB, 9, 16, NULL, NULL);
    struct blk *b = open_img(img, "qcow2", false);
    memset(buf, 0x5a, 4096);
    assert_int_equal(blk_pwrite(b, 0, buf, 4096), 0);
    blk_close(b);
    struct layout l = { .l1 = get_be(img, 40, 8), .rt = get_be(img, 48, 8) };
    l.l2 = get_be(img, l.l1, 8) & 0x00fffffffffffe00ull;
    l.rb = get_be(img, l.rt, 8);
    assert_true(l.l2 && l.rb);
    l.data = get_be(img, l.l2, 8) & 0x00fffffffffffe00ull;
    assert_true(l.data);
    return l;
}

/* An L2 table or a refcount block whose own refcount is zero: the
 * allocator would hand its cluster out and a data write would land on
 * it.  Refused for writing, still readable. */
static void test_uncounted_metadata(void **state)
{
    const char *img = tpath("uncounted.qcow2");
    for (int which = 0; which < 2; which++) {
        uint8_t buf[4096];
        struct layout l = written_image(img, buf);
        uint64_t victim = which ? l.rb : l.l2;
        put_be(img, l.rb + 2 * (victim / 512), 2, 0);
        expect_refused(img, "qcow2", false, "do not cover the image's own metadata");
        struct blk *b = open_img(img, "qcow2", true);
        uint8_t got[4096];
        assert_int_equal(blk_pread(b, 0, got, sizeof(got)), 0);
        assert_memory_equal(got, buf, sizeof(got));
        blk_close(b);
    }
}

/* Data clusters and L2 tables on the image's own metadata.  An L2 entry
 * that names a refcount block (as a fuzzed image had) once let a guest
 * write rewrite the counts, and a read after that write gave other data:
 * the write now fails and the block keeps its bytes.  Two L1 entries
 * naming one L2 table, or an L2 table on a refcount block, are refused at
 * a writable open. */
static void test_data_on_metadata(void **state)
{
    const char *img = tpath("overlap.qcow2");
    for (int which = 0; which < 4; which++) {
        uint8_t buf[4096];
        struct layout lay = written_image(img, buf);
        uint64_t l1 = lay.l1, l2 = lay.l2, rb = lay.rb;
        if (which >= 2) {
            /* L1[1] names L1[0]'s table, or L1[0] names the refcount block */
            if (which == 2)
                put_be(img, l1 + 8, 8, l2 | 1ull << 63);
            else
                put_be(img, l1, 8, rb | 1ull << 63);
            expect_refused(img, "qcow2", false, "L2 tables overlap each other");
            continue;
        }
        /* the first data cluster on the refcount block, or on the L1 table */
        uint64_t target = which ? l1 : rb;
        put_be(img, l2, 8, target | 1ull << 63);
        uint8_t before[512], after[512];
        int fd = open(img, O_RDONLY);
        assert_true(fd >= 0);
        assert_int_equal(pread(fd, before, sizeof(before), (off_t)target), (ssize_t)sizeof(before));
        close(fd);
        struct blk *b = open_img(img, "qcow2", false);
        assert_non_null(b);
        memset(buf, 0xa5, sizeof(buf));
        assert_true(blk_pwrite(b, 0, buf, 512) < 0);
        assert_true(blk_pwrite(b, 0, buf, sizeof(buf)) < 0);
        /* the clusters that are data still take writes */
        assert_int_equal(blk_pwrite(b, 512, buf, 512), 0);
        uint8_t got[512];
        assert_int_equal(blk_pread(b, 512, got, sizeof(got)), 0);
        assert_memory_equal(got, buf, sizeof(got));
        blk_close(b);
        fd = open(img, O_RDONLY);
        assert_true(fd >= 0);
        assert_int_equal(pread(fd, after, sizeof(after), (off_t)target), (ssize_t)sizeof(after));
        close(fd);
        assert_memory_equal(before, after, sizeof(before));
    }
}

/* A data cluster whose L2 entry says COPIED but whose refcount is zero (a
 * fuzzed image pointed past the end of the file): the allocator would hand
 * it out again for the next new cluster, and the two owners overwrite each
 * other.  Writing it in place fails; new clusters still work. */
static void test_data_cluster_uncounted(void **state)
{
    const char *img = tpath("uncounted-data.qcow2");
    uint8_t buf[4096];
    struct layout l = written_image(img, buf);
    put_be(img, l.rb + 2 * (l.data / 512), 2, 0);
    struct blk *b = open_img(img, "qcow2", false);
    assert_non_null(b);
    memset(buf, 0xa5, sizeof(buf));
    assert_true(blk_pwrite(b, 0, buf, 512) < 0);
    assert_true(blk_pwrite(b, 0, buf, sizeof(buf)) < 0);
    uint8_t got[512];
    assert_int_equal(blk_pwrite(b, 512, buf, 512), 0);
    assert_int_equal(blk_pwrite(b, 64 * 1024, buf, 512), 0);    /* a new cluster */
    assert_int_equal(blk_pread(b, 64 * 1024, got, sizeof(got)), 0);
    assert_memory_equal(got, buf, sizeof(got));
    assert_int_equal(blk_pread(b, 512, got, sizeof(got)), 0);
    assert_memory_equal(got, buf, sizeof(got));
    blk_close(b);
}

/* Random damage to the metadata of an image with data: opening, reading
 * and writing it may fail, but must not crash or hang. */
static void test_mutated_images(void **state)
{
    const char *good = tpath("fuzz-good.qcow2"), *img = tpath("fuzz.qcow2");
    unlink(good);
    make_qcow2(good, 2 * MiB, 9, 0, NULL, NULL);
    struct blk *b = open_img(good, NULL, false);
    uint8_t *shadow = calloc(1, 2 * MiB);
    random_writes(b, shadow, 2 * MiB, 30, 8 * KiB);
    blk_close(b);
    free(shadow);
    struct stat st;
    assert_int_equal(stat(good, &st), 0);
    size_t len = (size_t)st.st_size;
    uint8_t *orig = read_file(good, len);
    uint8_t *buf = malloc(len);
    uint8_t *io = malloc(2 * MiB);
    int opened = 0;
    for (int iter = 0; iter < 300; iter++) {
        memcpy(buf, orig, len);
        int n = 1 + (int)(rnd() % 4);
        for (int k = 0; k < n; k++) {
            /* Mostly the header, L1 and refcount clusters at the start. */
            size_t at = (size_t)(rnd() % (rnd() % 3 ? MIN(len, (size_t)8192) : len));
            buf[at] ^= (uint8_t)(1u << (rnd() % 8));
            if (rnd() % 4 == 0)
                buf[at] = (uint8_t)rnd();
        }
        unlink(img);
        write_file(img, buf, len);
        char err[512];
        b = blk_open_format(NULL, img, "qcow2", false, err, sizeof(err));
        if (!b)
            continue;
        opened++;
        uint64_t size = MIN(blk_size(b), (uint64_t)2 * MiB);
        (void)blk_pread(b, 0, io, size);
        memset(io, 0x77, 64 * KiB);
        for (int w = 0; w < 8 && size > 64 * KiB; w++)
            (void)blk_pwrite(b, rnd() % (size - 64 * KiB), io, 1 + rnd() % (64 * KiB));
        (void)blk_flush_sync(b);
        blk_close(b);
    }
    print_message("mutated images: %d of 300 opened\n", opened);
    assert_true(opened > 0);
    free(io);
    free(buf);
    free(orig);
}

static void test_probe(void **state)
{
    const char *p = tpath("probe.img");
    uint8_t *sec = calloc(1, 1 * MiB);
    struct { const char *sig; size_t len; const char *name; } sigs[] = {
        { "KDMV", 4, "vmdk" }, { "conectix", 8, "vhd" }, { "<<< Oracle VM VirtualBox Disk Image >>>", 39, "vdi" },
        { "vhdxfile", 8, "vhdx" }, { "QFI\xfb\0\0\0\1", 8, "qcow" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
        memset(sec, 0, 1 * MiB);
        memcpy(sec, sigs[i].sig, sigs[i].len);
        assert_string_equal(blk_probe(sec, 512), sigs[i].name);
        write_file(p, sec, 1 * MiB);
        char want[64];
        /* The formats Burrow reads refuse writers, and a bare signature
         * is no image; the others are refused outright. */
        bool readable = blk_format_read_only(sigs[i].name);
        snprintf(want, sizeof(want), readable ? "reads but does not write" : "looks like a %s image",
                 sigs[i].name);
        expect_refused(p, NULL, false, want);
        expect_refused(p, NULL, true, "format=raw");
        /* Named raw, it opens as plain bytes. */
        struct blk *b = open_img(p, "raw", true);
        blk_close(b);
    }
    /* Raw data: detected as raw; a guest write that would turn it into a
     * qcow2 image is refused, unless raw was named. */
    memset(sec, 0, 1 * MiB);
    write_file(p, sec, 1 * MiB);
    assert_null(blk_probe(sec, 512));
    struct blk *b = open_img(p, NULL, false);
    assert_string_equal(blk_format(b), "raw");
    uint8_t hdr[512] = "QFI\xfb";
    assert_int_equal(blk_pwrite(b, 0, hdr, sizeof(hdr)), -EPERM);
    assert_int_equal(blk_pwrite(b, 512, hdr, sizeof(hdr)), 0);
    uint8_t mbr[512] = { 0xeb, 0x3c, 0x90 };
    assert_int_equal(blk_pwrite(b, 0, mbr, sizeof(mbr)), 0);
    blk_close(b);
    b = open_img(p, "raw", false);
    assert_int_equal(blk_pwrite(b, 0, hdr, sizeof(hdr)), 0);
    blk_close(b);
    /* format=qcow2 on something else; an unknown format name. */
    memset(sec, 0, 512);
    write_file(p, sec, 1 * MiB);
    char err[512];
    assert_null(blk_open_format(NULL, p, "qcow2", true, err, sizeof(err)));
    assert_non_null(strstr(err, "is not a qcow2 image"));
    assert_null(blk_open_format(NULL, p, "vmdk", true, err, sizeof(err)));
    assert_non_null(strstr(err, "not a VMDK image"));
    assert_null(blk_open_format(NULL, p, "qed", true, err, sizeof(err)));
    assert_non_null(strstr(err, "unknown disk format 'qed'"));
    free(sec);
}

/* --- the crash test's writer -------------------------------------------- */

static void pattern(uint8_t *sec, uint64_t seq, uint64_t sector)
{
    st64(sec, seq);
    st64(sec + 8, sector);
    for (unsigned i = 16; i < 512; i++)
        sec[i] = (uint8_t)(seq * 131 + sector * 7 + i);
}

static int crash_create(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    char err[512];
    struct qcow2_create_opts o = { .size = strtoull(argv[3], NULL, 0),
                                   .cluster_bits = (unsigned)atoi(argv[4]) };
    if (qcow2_create(argv[2], &o, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    return 0;
}

static int crash_writer(int argc, char **argv)
{
    if (argc != 6)
        return 2;
    unsigned run = (unsigned)atoi(argv[4]);
    rng_state ^= strtoull(argv[5], NULL, 0) * 0x2545f4914f6cdd1dull;
    char err[512];
    struct blk *b = blk_open_format(NULL, argv[2], "qcow2", false, err, sizeof(err));
    if (!b) {
        fprintf(stderr, "crash-writer: %s\n", err);
        return 1;
    }
    int jfd = open(argv[3], O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (jfd < 0)
        return 1;
    uint64_t sectors = blk_size(b) / 512;
    uint8_t *buf = malloc(256 * 512);
    for (uint64_t seq = (uint64_t)run * 1000000 + 1;; seq++) {
        uint64_t n = 1 + rnd() % (rnd() % 4 ? 16 : 256);
        uint64_t first = rnd() % (sectors - n + 1);
        for (uint64_t i = 0; i < n; i++)
            pattern(buf + i * 512, seq, first + i);
        char line[128];
        int l = snprintf(line, sizeof(line), "S %u %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", run, seq, first, n);
        if (write(jfd, line, (size_t)l) != l)
            return 1;
        int ret = blk_pwrite(b, first * 512, buf, n * 512);
        if (ret < 0) {
            fprintf(stderr, "crash-writer: write: %s\n", strerror(-ret));
            return 1;
        }
        if (rnd() % 8 == 0) {
            if ((ret = blk_flush_sync(b)) < 0) {
                fprintf(stderr, "crash-writer: flush: %s\n", strerror(-ret));
                return 1;
            }
            l = snprintf(line, sizeof(line), "F %u %" PRIu64 "\n", run, seq);
            if (write(jfd, line, (size_t)l) != l)
                return 1;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "crash-create"))
        return crash_create(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "crash-writer"))
        return crash_writer(argc, argv);

    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/burrow-qcow2.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    have_qemu_img = sh("command -v qemu-img >/dev/null 2>&1 && command -v qemu-io >/dev/null 2>&1") == 0;
    if (!have_qemu_img)
        printf("note: qemu-img/qemu-io not found (package qemu-utils): cross-checks are skipped\n");
    /* qemu-img resolves backing names relative to the image: work there. */
    if (chdir(dir) < 0)
        return 1;

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_our_image_rw),
        cmocka_unit_test(test_refcount_growth),
        cmocka_unit_test(test_qemu_made_image),
        cmocka_unit_test(test_zero_clusters),
        cmocka_unit_test(test_compressed_clusters),
        cmocka_unit_test(test_backing_chain),
        cmocka_unit_test(test_resize),
        cmocka_unit_test(test_malicious_headers),
        cmocka_unit_test(test_aliased_refcount_blocks),
        cmocka_unit_test(test_data_on_metadata),
        cmocka_unit_test(test_data_cluster_uncounted),
        cmocka_unit_test(test_uncounted_metadata),
        cmocka_unit_test(test_mutated_images),
        cmocka_unit_test(test_probe),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sh("rm -rf '%s'", dir);
    return rc;
}
