/* Helpers for the tests of the formats Burrow only reads: see foreign.h. */
#include "support/foreign.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "app/disk.h"
#include "devices/block/block.h"
#include "devices/block/roimage.h"
#include "devices/util.h"

#define CHUNK (1u << 20)
#define DIRECT_READ_MAX (256ull << 20)   /* images read whole through the block layer */

static char dir[256];
static bool have_qemu;

static uint64_t rng;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

void fx_init(const char *name)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/burrow-%s.XXXXXX", t && *t ? t : "/tmp", name);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    /* qemu-img resolves parents relative to the image: work there. */
    if (chdir(dir) < 0)
        exit(1);
    have_qemu = fx_sh("command -v qemu-img >/dev/null 2>&1 && command -v qemu-io >/dev/null 2>&1") == 0;
    if (!have_qemu)
        printf("note: qemu-img/qemu-io not found (package qemu-utils): the tests that need them fail\n");
    ro_set_quiet(true);
}

void fx_cleanup(void)
{
    if (chdir("/") == 0)
        fx_sh("rm -rf '%s'", dir);
}

void fx_need_qemu(void)
{
    if (!have_qemu)
        fail_msg("qemu-img not found (install-deps.sh installs qemu-utils)");
}

static int vsh(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static int vsh(const char *fmt, va_list ap)
{
    char cmd[4096];
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

int fx_sh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vsh(fmt, ap);
    va_end(ap);
    return rc;
}

void fx_run(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vsh(fmt, ap);
    va_end(ap);
    if (rc != 0) {
        char cmd[4096];
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        fail_msg("'%s' exited with %d", cmd, rc);
    }
}

static void write_at(int fd, uint64_t off, const uint8_t *p, size_t n)
{
    assert_int_equal(pwrite(fd, p, n, (off_t)off), (ssize_t)n);
}

void fx_make_raw(const char *path, uint64_t size, unsigned seed, unsigned runs, uint64_t max_run)
{
    rng = 0x9e3779b97f4a7c15ull ^ seed;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    uint8_t *buf = malloc(max_run);
    assert_non_null(buf);
    for (unsigned i = 0; i < runs + 2; i++) {
        uint64_t len = 1 + rnd() % max_run;
        len = MIN(len, size);
        uint64_t off = i == 0 ? 0 : i == 1 ? size - len : rnd() % (size - len + 1);
        for (uint64_t k = 0; k < len; k++)
            buf[k] = (uint8_t)(rnd() >> 29) | 1;    /* never zero: real data */
        write_at(fd, off, buf, len);
    }
    free(buf);
    close(fd);
}

uint64_t fx_file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

static uint64_t file_blocks(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_blocks * 512;
}

static struct blk *open_detected(const char *img, const char *our_fmt)
{
    char err[512] = "";
    struct blk *b = blk_open_format(NULL, img, NULL, true, err, sizeof(err));
    if (!b)
        fail_msg("open %s: %s", img, err);
    assert_string_equal(blk_format(b), our_fmt);
    return b;
}

static void done(void *opaque, int result)
{
    *(int *)opaque = result;
}

/* Reads img whole through the block layer and compares it with raw. */
static void compare_direct(const char *img, const char *our_fmt, const char *raw)
{
    struct blk *b = open_detected(img, our_fmt);
    uint64_t size = blk_size(b);
    assert_int_equal(size, fx_file_size(raw));
    int fd = open(raw, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    uint8_t *a = malloc(CHUNK), *e = malloc(CHUNK);
    assert_non_null(a);
    assert_non_null(e);
    /* Odd-sized reads, so requests start and end inside blocks and grains. */
    uint64_t step = CHUNK - 4096 - 512 * 3;
    for (uint64_t off = 0; off < size; off += step) {
        size_t n = (size_t)MIN(step, size - off);
        int ret = blk_pread(b, off, a, n);
        if (ret < 0)
            fail_msg("%s: read at %" PRIu64 ": %s %s", img, off, strerror(-ret), ro_error(b));
        assert_int_equal(pread(fd, e, n, (off_t)off), (ssize_t)n);
        if (memcmp(a, e, n)) {
            size_t i = 0;
            while (a[i] == e[i])
                i++;
            fail_msg("%s differs from %s at byte %" PRIu64, img, raw, off + i);
        }
    }
    /* One read scattered over iovecs of odd lengths fills each in turn. */
    if (size >= 3 * 4096) {
        struct iovec iov[3] = { { a, 512 }, { a + 1024, 4096 + 512 }, { a + 8192, 1024 } };
        uint64_t at = size / 2 & ~511ull;
        at = MIN(at, size - 6144);
        int res = 1;
        assert_int_equal(blk_readv(b, at, iov, 3, done, &res), 0);
        blk_drain(b);
        assert_int_equal(res, 6144);
        assert_int_equal(pread(fd, e, 6144, (off_t)at), 6144);
        assert_memory_equal(a, e, 512);
        assert_memory_equal(a + 1024, e + 512, 4096 + 512);
        assert_memory_equal(a + 8192, e + 5120, 1024);
    }
    free(a);
    free(e);
    close(fd);
    blk_close(b);
}

static void convert_and_compare(const char *img, const char *raw)
{
    char err[512] = "";
    unlink("fx-out.raw");
    unlink("fx-out.qcow2");
    int ret = disk_convert(img, "fx-out.raw", "raw", NULL, NULL, err, sizeof(err));
    if (ret < 0)
        fail_msg("convert %s to raw: %s", img, err);
    assert_int_equal(fx_file_size("fx-out.raw"), fx_file_size(raw));
    fx_run("qemu-img compare -q -f raw -F raw fx-out.raw '%s'", raw);
    /* Sparse: no more than the source stores, and near what qemu-img's
     * own conversion takes (which finds zeroes in smaller units). */
    struct disk_info src;
    assert_int_equal(disk_get_info(img, &src, err, sizeof(err)), 0);
    uint64_t taken = file_blocks("fx-out.raw");
    bool chain = src.backing_file[0];       /* its parents store more */
    if ((!chain && taken > src.allocated_size + (1 << 20)) || taken > 2 * file_blocks(raw) + (1 << 20))
        fail_msg("%s converted takes %" PRIu64 " bytes; it stores %" PRIu64 ", qemu-img's raw takes %" PRIu64,
                 img, taken, src.allocated_size, file_blocks(raw));
    ret = disk_convert(img, "fx-out.qcow2", "qcow2", NULL, NULL, err, sizeof(err));
    if (ret < 0)
        fail_msg("convert %s to qcow2: %s", img, err);
    fx_run("qemu-img check -q fx-out.qcow2");
    struct disk_info info;
    assert_int_equal(disk_get_info("fx-out.qcow2", &info, err, sizeof(err)), 0);
    assert_int_equal(info.virtual_size, fx_file_size(raw));
    fx_run("qemu-img compare -q -f qcow2 -F raw fx-out.qcow2 '%s'", raw);
    unlink("fx-out.raw");
    unlink("fx-out.qcow2");
}

void fx_expect_like_raw(const char *img, const char *our_fmt, const char *raw)
{
    if (fx_file_size(raw) <= DIRECT_READ_MAX)
        compare_direct(img, our_fmt, raw);
    else
        blk_close(open_detected(img, our_fmt));
    convert_and_compare(img, raw);
    struct disk_info info;
    char err[512] = "";
    if (disk_get_info(img, &info, err, sizeof(err)) < 0)
        fail_msg("info %s: %s", img, err);
    assert_string_equal(info.format, our_fmt);
    assert_true(info.read_only_format);
    assert_int_equal(info.virtual_size, fx_file_size(raw));
    assert_true(info.allocated_size <= info.virtual_size);
}

void fx_expect_like_qemu(const char *img, const char *qfmt, const char *our_fmt)
{
    fx_need_qemu();
    unlink("fx-ref.raw");
    fx_run("qemu-img convert -f %s -O raw '%s' fx-ref.raw", qfmt, img);
    fx_expect_like_raw(img, our_fmt, "fx-ref.raw");
    unlink("fx-ref.raw");
}

void fx_expect_refused(const char *img, const char *want)
{
    char err[512] = "";
    struct blk *b = blk_open_format(NULL, img, NULL, true, err, sizeof(err));
    if (b) {
        blk_close(b);
        fail_msg("%s opened; wanted a refusal with '%s'", img, want);
    }
    if (!strstr(err, want))
        fail_msg("%s: got '%s', wanted '%s'", img, err, want);
    unlink("fx-refused.qcow2");
    assert_true(disk_convert(img, "fx-refused.qcow2", "qcow2", NULL, NULL, err, sizeof(err)) < 0);
    assert_int_equal(access("fx-refused.qcow2", F_OK), -1);
}

void fx_expect_read_fails(const char *img, const char *want)
{
    char err[512] = "";
    struct blk *b = blk_open_format(NULL, img, NULL, true, err, sizeof(err));
    if (!b)
        fail_msg("open %s: %s", img, err);
    uint8_t *buf = malloc(CHUNK);
    assert_non_null(buf);
    int ret = 0;
    for (uint64_t off = 0; off < blk_size(b) && ret == 0; off += CHUNK)
        ret = blk_pread(b, off, buf, (size_t)MIN((uint64_t)CHUNK, blk_size(b) - off));
    free(buf);
    assert_int_equal(ret, -EIO);
    if (!strstr(ro_error(b), want))
        fail_msg("%s: got '%s', wanted '%s'", img, ro_error(b), want);
    blk_close(b);
    /* A conversion stops there and leaves nothing behind. */
    unlink("fx-failed.qcow2");
    assert_true(disk_convert(img, "fx-failed.qcow2", "qcow2", NULL, NULL, err, sizeof(err)) < 0);
    if (!strstr(err, want))
        fail_msg("convert %s: got '%s', wanted '%s'", img, err, want);
    assert_int_equal(access("fx-failed.qcow2", F_OK), -1);
}

void fx_patch(const char *path, uint64_t off, const void *bytes, size_t n)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    write_at(fd, off, bytes, n);
    close(fd);
}

void fx_read(const char *path, uint64_t off, void *buf, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, n, (off_t)off), (ssize_t)n);
    close(fd);
}

void fx_patch_le32(const char *path, uint64_t off, uint32_t v)
{
    uint8_t b[4];
    st_le(b, 4, v);
    fx_patch(path, off, b, 4);
}

void fx_patch_le64(const char *path, uint64_t off, uint64_t v)
{
    uint8_t b[8];
    st_le(b, 8, v);
    fx_patch(path, off, b, 8);
}

void fx_patch_be32(const char *path, uint64_t off, uint32_t v)
{
    uint8_t b[4];
    st_be(b, 4, v);
    fx_patch(path, off, b, 4);
}

void fx_patch_be64(const char *path, uint64_t off, uint64_t v)
{
    uint8_t b[8];
    st_be(b, 8, v);
    fx_patch(path, off, b, 8);
}

int fx_mutate(const char *img, uint64_t meta_len, int rounds, unsigned seed)
{
    rng = 0x2545f4914f6cdd1dull ^ seed;
    uint64_t size = fx_file_size(img);
    uint8_t *orig = malloc(size);
    assert_non_null(orig);
    fx_read(img, 0, orig, size);
    meta_len = MIN(meta_len, size);
    uint8_t *buf = malloc(CHUNK);
    assert_non_null(buf);
    int opened = 0;
    for (int r = 0; r < rounds; r++) {
        int fd = open("fx-mutant", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        write_at(fd, 0, orig, size);
        unsigned flips = 1 + (unsigned)(rnd() % 8);
        for (unsigned i = 0; i < flips; i++) {
            uint8_t v = (uint8_t)rnd();
            /* Sometimes a whole field's worth of ones or zeroes. */
            uint8_t run[8];
            unsigned n = rnd() % 3 == 0 ? 1 + (unsigned)(rnd() % 8) : 1;
            memset(run, rnd() & 1 ? 0xff : 0, n);
            if (n == 1)
                run[0] = v;
            write_at(fd, rnd() % meta_len, run, MIN(n, (unsigned)(meta_len)));
        }
        close(fd);
        char err[512];
        struct blk *b = blk_open_format(NULL, "fx-mutant", NULL, true, err, sizeof(err));
        if (!b)
            continue;
        opened++;
        uint64_t vs = blk_size(b);
        /* The start, the middle and the end, which is all a fuzzer's input
         * can hold too; sizes can be absurd. */
        uint64_t offs[3] = { 0, vs / 2 & ~511ull, vs > CHUNK ? vs - CHUNK : 0 };
        for (int k = 0; k < 3; k++)
            if (offs[k] < vs)
                blk_pread(b, offs[k], buf, (size_t)MIN((uint64_t)CHUNK, vs - offs[k]));
        blk_close(b);
        struct ro_info info;
        const char *fmt = disk_detect_format("fx-mutant");
        if (blk_format_read_only(fmt))
            ro_info("fx-mutant", fmt, &info, err, sizeof(err));
    }
    unlink("fx-mutant");
    free(buf);
    free(orig);
    return opened;
}
