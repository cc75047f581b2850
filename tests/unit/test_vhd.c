/* VHD images (devices/block/vhd.c): dynamic and fixed images made by
 * qemu-img (`-f vpc`), with data and holes and above 4 GiB, and a fixed
 * one with the 511-byte footer of old Virtual PCs, read and converted the
 * same as `qemu-img convert -O raw` makes them; differencing images,
 * which qemu-img does not write, built here from the specification's
 * layout over a parent that qemu-img made, read as the parent overlaid
 * with the sectors their bitmaps mark, with the parent found through
 * each kind of locator and checked by unique id; malformed footers,
 * headers and tables give errors; mutated images never crash the
 * reader. */
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

#include "app/disk.h"
#include "devices/block/block.h"
#include "devices/util.h"
#include "support/foreign.h"

/* Footer and dynamic disk header fields (big-endian) */
#define F_DATA_OFFSET   16
#define F_CURRENT_SIZE  48
#define F_DISK_TYPE     60
#define F_CHECKSUM      64
#define F_UNIQUE_ID     68
#define D_TABLE_OFFSET  16
#define D_MAX_ENTRIES   28
#define D_BLOCK_SIZE    32
#define D_CHECKSUM      36
#define D_PARENT_ID     40
#define D_PARENT_NAME   64
#define D_LOCATORS      576

static uint32_t checksum(const uint8_t *p, size_t len, size_t field)
{
    uint32_t sum = 0;
    for (size_t i = 0; i < len; i++)
        if (i < field || i >= field + 4)
            sum += p[i];
    return ~sum;
}

static void make_vhd(const char *img, const char *opts, uint64_t size, unsigned seed)
{
    fx_need_qemu();
    fx_make_raw("src.raw", size, seed, 40, 300000);
    unlink(img);
    fx_run("qemu-img convert -q -f raw -O vpc %s src.raw '%s'", opts, img);
    unlink("src.raw");
}

static void expect_variant(const char *img, const char *subformat)
{
    struct disk_info info;
    char err[512];
    if (disk_get_info(img, &info, err, sizeof(err)) < 0)
        fail_msg("info %s: %s", img, err);
    assert_string_equal(info.format, "vhd");
    assert_string_equal(info.subformat, subformat);
}

static void test_dynamic(void **state)
{
    make_vhd("d.vhd", "", 64 << 20, 1);
    fx_expect_like_qemu("d.vhd", "vpc", "vhd");
    expect_variant("d.vhd", "dynamic");
    fx_run("qemu-img create -q -f vpc e.vhd 20M");
    fx_expect_like_qemu("e.vhd", "vpc", "vhd");
}

static void test_fixed(void **state)
{
    make_vhd("f.vhd", "-o subformat=fixed", 16 << 20, 2);
    fx_expect_like_qemu("f.vhd", "vpc", "vhd");
    expect_variant("f.vhd", "fixed");
    assert_string_equal(disk_detect_format("f.vhd"), "vhd");   /* by its footer */
    /* Before Virtual PC 2004 the footer was 511 bytes (no last reserved
     * byte, which the checksum counts as zero anyway). */
    fx_run("qemu-img convert -f vpc -O raw f.vhd f.raw && cp f.vhd old.vhd");
    fx_run("truncate -s %llu old.vhd", (unsigned long long)fx_file_size("f.vhd") - 1);
    fx_expect_like_raw("old.vhd", "vhd", "f.raw");
    /* A footer with a wrong checksum is no footer: the file is raw data,
     * and named as a VHD it is refused. */
    fx_run("cp f.vhd bad.vhd");
    uint64_t end = fx_file_size("bad.vhd") - 512;
    fx_patch_be32("bad.vhd", end + F_CHECKSUM, 0x12345678);
    assert_string_equal(disk_detect_format("bad.vhd"), "raw");
    char err[512];
    assert_null(blk_open_format(NULL, "bad.vhd", "vhd", true, err, sizeof(err)));
    assert_non_null(strstr(err, "checksum is wrong"));
    /* A fixed disk larger than its file: no VHD to the probe, and
     * refused when named one. */
    fx_run("cp f.vhd bad.vhd");
    uint8_t foot[512];
    fx_read("bad.vhd", end, foot, sizeof(foot));
    st_be(foot + F_CURRENT_SIZE, 8, 1ull << 40);
    st_be(foot + F_CHECKSUM, 4, checksum(foot, sizeof(foot), F_CHECKSUM));
    fx_patch("bad.vhd", end, foot, sizeof(foot));
    assert_string_equal(disk_detect_format("bad.vhd"), "raw");
    assert_null(blk_open_format(NULL, "bad.vhd", "vhd", true, err, sizeof(err)));
    assert_non_null(strstr(err, "more than the file holds"));
}

static void test_above_4g(void **state)
{
    make_vhd("big.vhd", "-o force_size=on", 5ull << 30, 3);
    fx_expect_like_qemu("big.vhd", "vpc", "vhd");
}

/* --- differencing images ------------------------------------------------ */

#define DIFF_BLOCK  (1u << 20)
#define BITMAP_LEN  512u                /* 2048 sectors: 256 bytes, padded */

struct locator {
    const char code[5];
    const char *path;                   /* UTF-16LE for W2*, UTF-8 for MacX */
};

static size_t utf16le(const char *s, uint8_t *out)
{
    size_t n = 0;
    for (; *s; s++, n += 2) {
        out[n] = (uint8_t)*s;
        out[n + 1] = 0;
    }
    return n;
}

/* Writes a differencing VHD into child over a parent whose contents are
 * parent_raw: some blocks (bitmap patterns below), the rest unallocated;
 * the expected contents go to want_raw.  parent_id_from: whose unique id
 * the header names as its parent's (normally the parent's). */
static void make_child(const char *child, const char *parent_raw, const struct locator *locs, size_t nlocs,
                       const char *parent_name, const char *parent_id_from, const char *want_raw)
{
    fx_run("cp '%s' '%s'", parent_raw, want_raw);
    uint64_t size = fx_file_size(want_raw);
    uint8_t pfoot[512], foot[512] = { 0 }, dh[1024] = { 0 };
    fx_read(parent_id_from, fx_file_size(parent_id_from) - 512, pfoot, sizeof(pfoot));
    uint32_t nblocks = (uint32_t)((size + DIFF_BLOCK - 1) / DIFF_BLOCK);
    uint64_t loc_at = 1536, bat_at = loc_at + 512 * (nlocs ? nlocs : 1);
    uint64_t data_at = bat_at + ALIGN_UP((uint64_t)nblocks * 4, 512ull);

    memcpy(foot, "conectix", 8);
    st_be(foot + 8, 4, 2);
    st_be(foot + 12, 4, 0x00010000);
    st_be(foot + F_DATA_OFFSET, 8, 512);
    memcpy(foot + 28, "test", 4);
    st_be(foot + 40, 8, size);
    st_be(foot + F_CURRENT_SIZE, 8, size);
    st_be(foot + F_DISK_TYPE, 4, 4);
    for (int i = 0; i < 16; i++)
        foot[F_UNIQUE_ID + i] = (uint8_t)(0xc0 + i + child[0]);
    st_be(foot + F_CHECKSUM, 4, checksum(foot, 512, F_CHECKSUM));

    memcpy(dh, "cxsparse", 8);
    st_be(dh + 8, 8, UINT64_MAX);
    st_be(dh + D_TABLE_OFFSET, 8, bat_at);
    st_be(dh + 24, 4, 0x00010000);
    st_be(dh + D_MAX_ENTRIES, 4, nblocks);
    st_be(dh + D_BLOCK_SIZE, 4, DIFF_BLOCK);
    memcpy(dh + D_PARENT_ID, pfoot + F_UNIQUE_ID, 16);
    for (size_t i = 0; parent_name && parent_name[i]; i++)     /* UTF-16BE */
        dh[D_PARENT_NAME + 2 * i + 1] = (uint8_t)parent_name[i];
    int fd = open(child, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    for (size_t i = 0; i < nlocs; i++) {
        uint8_t *e = dh + D_LOCATORS + 24 * i, data[512] = { 0 };
        size_t n = strcmp(locs[i].code, "MacX") ? utf16le(locs[i].path, data) : strlen(locs[i].path);
        if (!strcmp(locs[i].code, "MacX"))
            memcpy(data, locs[i].path, n);
        memcpy(e, locs[i].code, 4);
        st_be(e + 4, 4, 1);
        st_be(e + 8, 4, (uint32_t)n);
        st_be(e + 16, 8, loc_at + 512 * i);
        assert_int_equal(pwrite(fd, data, 512, (off_t)(loc_at + 512 * i)), 512);
    }
    st_be(dh + D_CHECKSUM, 4, checksum(dh, sizeof(dh), D_CHECKSUM));
    assert_int_equal(pwrite(fd, foot, 512, 0), 512);
    assert_int_equal(pwrite(fd, dh, sizeof(dh), 512), (ssize_t)sizeof(dh));

    /* Blocks: 0 with some sectors here, 2 all here, 3 none here, and the
     * block at the end partly; sectors not marked hold junk to be ignored. */
    uint32_t *bat = malloc((size_t)nblocks * 4);
    assert_non_null(bat);
    memset(bat, 0xff, (size_t)nblocks * 4);
    int want = open(want_raw, O_RDWR | O_CLOEXEC);
    assert_true(want >= 0);
    uint8_t *blk = malloc(DIFF_BLOCK);
    assert_non_null(blk);
    const uint32_t chosen[] = { 0, 2, 3, nblocks - 1 };
    uint64_t at = data_at;
    for (size_t c = 0; c < ARRAY_SIZE(chosen); c++) {
        uint32_t k = chosen[c];
        uint8_t bm[BITMAP_LEN] = { 0 };
        for (uint32_t s = 0; s < DIFF_BLOCK / 512; s++) {
            bool here = c == 1 || (c == 0 && (s < 10 || (s >= 100 && s < 200) || s == 1000)) ||
                        (c == 3 && s % 3 == 0);
            if (here)
                bm[s / 8] |= (uint8_t)(0x80 >> (s % 8));
            for (int b = 0; b < 512; b++)
                blk[s * 512 + b] = here ? (uint8_t)(k * 7 + s + b) : 0xee;
            uint64_t voff = (uint64_t)k * DIFF_BLOCK + s * 512;
            if (here && voff < size)
                assert_int_equal(pwrite(want, blk + s * 512, 512, (off_t)voff), 512);
        }
        bat[k] = (uint32_t)__builtin_bswap32((uint32_t)(at / 512));
        assert_int_equal(pwrite(fd, bm, BITMAP_LEN, (off_t)at), BITMAP_LEN);
        assert_int_equal(pwrite(fd, blk, DIFF_BLOCK, (off_t)(at + BITMAP_LEN)), DIFF_BLOCK);
        at += BITMAP_LEN + DIFF_BLOCK;
    }
    assert_int_equal(pwrite(fd, bat, (size_t)nblocks * 4, (off_t)bat_at), (ssize_t)nblocks * 4);
    assert_int_equal(pwrite(fd, foot, 512, (off_t)at), 512);
    close(fd);
    close(want);
    free(blk);
    free(bat);
}

static void test_differencing(void **state)
{
    make_vhd("base.vhd", "", 8 << 20, 4);
    fx_run("qemu-img convert -f vpc -O raw base.vhd base.raw");
    const struct locator rel[] = { { "W2ru", ".\\base.vhd" }, { "W2ku", "C:\\vms\\base.vhd" } };
    make_child("child.vhd", "base.raw", rel, 2, "base.vhd", "base.vhd", "want.raw");
    fx_expect_like_raw("child.vhd", "vhd", "want.raw");
    expect_variant("child.vhd", "differencing");
    struct disk_info info;
    char err[512];
    assert_int_equal(disk_get_info("child.vhd", &info, err, sizeof(err)), 0);
    assert_string_equal(info.backing_file, "base.vhd");
    /* A chain: a grandchild over the child. */
    const struct locator rel2[] = { { "W2ru", ".\\child.vhd" } };
    make_child("grand.vhd", "want.raw", rel2, 1, NULL, "child.vhd", "want2.raw");
    fx_expect_like_raw("grand.vhd", "vhd", "want2.raw");
    /* The relative locator names nothing: the absolute one's file name,
     * then the URL, then the parent's name find it. */
    const struct locator absonly[] = { { "W2ru", ".\\gone\\base.vhd" }, { "W2ku", "D:\\x\\base.vhd" } };
    make_child("c2.vhd", "base.raw", absonly, 2, NULL, "base.vhd", "want.raw");
    fx_expect_like_raw("c2.vhd", "vhd", "want.raw");
    const struct locator mac[] = { { "MacX", "file://localhost/nowhere/x.vhd" },
                                   { "MacX", "file://./base.vhd" } };
    make_child("c3.vhd", "base.raw", mac, 2, NULL, "base.vhd", "want.raw");
    fx_expect_like_raw("c3.vhd", "vhd", "want.raw");
    make_child("c4.vhd", "base.raw", NULL, 0, "base.vhd", "base.vhd", "want.raw");
    fx_expect_like_raw("c4.vhd", "vhd", "want.raw");
    /* The info of a child needs no parent; opening it does. */
    make_child("c5.vhd", "base.raw", NULL, 0, "missing.vhd", "base.vhd", "want.raw");
    assert_int_equal(disk_get_info("c5.vhd", &info, err, sizeof(err)), 0);
    assert_string_equal(info.backing_file, "missing.vhd");
    fx_expect_refused("c5.vhd", "its parent image missing.vhd is not there");
    make_child("c6.vhd", "base.raw", NULL, 0, NULL, "base.vhd", "want.raw");
    fx_expect_refused("c6.vhd", "names no parent");
    /* Another disk where the parent should be: refused by its unique id. */
    make_vhd("other.vhd", "", 8 << 20, 5);
    make_child("c7.vhd", "base.raw", rel, 1, NULL, "other.vhd", "want.raw");
    fx_expect_refused("c7.vhd", "the unique ids differ");
    /* Its own parent: the chain's depth ends it. */
    make_child("self.vhd", "base.raw", NULL, 0, "self.vhd", "base.vhd", "want.raw");
    uint8_t foot[512], dh[1024];
    fx_read("self.vhd", 0, foot, sizeof(foot));
    fx_read("self.vhd", 512, dh, sizeof(dh));
    memcpy(dh + D_PARENT_ID, foot + F_UNIQUE_ID, 16);
    st_be(dh + D_CHECKSUM, 4, checksum(dh, sizeof(dh), D_CHECKSUM));
    fx_patch("self.vhd", 512, dh, sizeof(dh));
    fx_expect_refused("self.vhd", "parent chain deeper than");
}

static void test_malformed(void **state)
{
    make_vhd("m.vhd", "", 8 << 20, 6);
    uint64_t end = fx_file_size("m.vhd") - 512;
    uint8_t foot[512], dh[1024];
    fx_read("m.vhd", end, foot, sizeof(foot));
    uint64_t dh_at = ld_be(foot + F_DATA_OFFSET, 8);
    fx_read("m.vhd", dh_at, dh, sizeof(dh));
    uint64_t bat_at = ld_be(dh + D_TABLE_OFFSET, 8);

    /* The end footer damaged: its copy at the start serves. */
    fx_run("cp m.vhd t.vhd");
    fx_patch_be32("t.vhd", end + F_CHECKSUM, 1);
    fx_expect_like_qemu("m.vhd", "vpc", "vhd");
    fx_run("qemu-img convert -f vpc -O raw m.vhd m.raw");
    fx_expect_like_raw("t.vhd", "vhd", "m.raw");
    /* Both damaged. */
    fx_patch_be32("t.vhd", F_CHECKSUM, 1);
    fx_expect_refused("t.vhd", "checksum is wrong");

    /* Fields of the footer and of the dynamic header, checksums redone. */
    static const struct { bool header; unsigned off, bytes; uint64_t v; const char *want; } cases[] = {
        { false, F_DISK_TYPE, 4, 5, "unknown disk type" },
        { false, 12, 4, 0x00020000, "unknown file format version" },
        { false, F_CURRENT_SIZE, 8, 0, "bad disk size" },
        { false, F_CURRENT_SIZE, 8, 1ull << 44, "block table is too small" },
        { false, F_DATA_OFFSET, 8, 1ull << 40, "dynamic disk header outside the file" },
        { false, F_DATA_OFFSET, 8, 1024, "no dynamic disk header" },
        { true, D_BLOCK_SIZE, 4, 3 << 20, "block size" },
        { true, D_BLOCK_SIZE, 4, 0, "block size" },
        { true, D_BLOCK_SIZE, 4, 1u << 31, "block size" },
        { true, D_MAX_ENTRIES, 4, 1, "block table is too small" },
        { true, D_TABLE_OFFSET, 8, 1ull << 40, "block table outside the file" },
        { true, D_TABLE_OFFSET, 8, UINT64_MAX - 3, "block table outside the file" },
        { true, 24, 4, 0x00000001, "unknown dynamic disk header version" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        uint8_t f[512], h[1024];
        memcpy(f, foot, sizeof(f));
        memcpy(h, dh, sizeof(h));
        uint8_t *p = cases[i].header ? h : f;
        st_be(p + cases[i].off, cases[i].bytes, cases[i].v);
        st_be(f + F_CHECKSUM, 4, checksum(f, sizeof(f), F_CHECKSUM));
        st_be(h + D_CHECKSUM, 4, checksum(h, sizeof(h), D_CHECKSUM));
        fx_run("cp m.vhd t.vhd");
        fx_patch("t.vhd", 0, f, sizeof(f));
        fx_patch("t.vhd", end, f, sizeof(f));
        fx_patch("t.vhd", dh_at, h, sizeof(h));
        fx_expect_refused("t.vhd", cases[i].want);
    }
    fx_run("cp m.vhd t.vhd");
    fx_patch_be32("t.vhd", dh_at + D_CHECKSUM, 7);
    fx_expect_refused("t.vhd", "header's checksum is wrong");
    /* BAT entries pointing past the end of the file. */
    fx_run("cp m.vhd t.vhd");
    fx_patch_be32("t.vhd", bat_at, 0x7ffffff0);
    fx_expect_read_fails("t.vhd", "block beyond the end of the file");
    /* Two blocks on the same bytes (so a small file cannot describe
     * unbounded work). */
    uint32_t second;
    fx_read("m.vhd", bat_at + 4, &second, 4);
    fx_run("cp m.vhd t.vhd");
    fx_patch("t.vhd", bat_at, &second, 4);
    fx_expect_refused("t.vhd", "two blocks of the disk share bytes of the file");
    /* Cut short: the footer is gone, and what is left is no VHD. */
    fx_run("cp m.vhd t.vhd && truncate -s 100 t.vhd");
    fx_expect_refused("t.vhd", "shorter than a VHD footer");
}

static void test_mutated(void **state)
{
    make_vhd("mu.vhd", "", 4 << 20, 7);
    int a = fx_mutate("mu.vhd", 4096, 300, 1);
    /* The footer at the end, too. */
    make_vhd("muf.vhd", "-o subformat=fixed", 1 << 20, 8);
    int b = fx_mutate("muf.vhd", fx_file_size("muf.vhd"), 300, 2);
    print_message("mutated VHD images opened: dynamic %d, fixed %d of 300\n", a, b);
    assert_true(a > 0 && b > 0);
}

int main(void)
{
    fx_init("vhd");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dynamic),
        cmocka_unit_test(test_fixed),
        cmocka_unit_test(test_above_4g),
        cmocka_unit_test(test_differencing),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_mutated),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fx_cleanup();
    return rc;
}
