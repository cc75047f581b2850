/* VHDX images (devices/block/vhdx.c): dynamic and fixed images made by
 * qemu-img, with data and holes, several block sizes and above 4 GiB,
 * read and converted the same as `qemu-img convert -O raw` makes them; a
 * differencing image, which qemu-img does not write, made here from one
 * of qemu-img's by the specification's rules (the HasParent flag, a
 * parent locator, a partially present block with its sector bitmap),
 * read as its parent overlaid with what it holds; an image whose log
 * must be replayed is refused, saying how; damaged headers and region
 * tables fall back to their second copy, and when both are damaged, or
 * the metadata and BAT make no sense, the image gives errors; mutated
 * images never crash the reader. */
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

#define KB64            (64u << 10)
#define MB1             (1u << 20)
#define HDR1            KB64
#define HDR2            (2 * KB64)
#define RT1             (3 * KB64)
#define RT2             (4 * KB64)
#define H_CHECKSUM      4
#define H_SEQUENCE      8
#define H_DATA_WRITE    32
#define H_LOG_GUID      48

static const uint8_t guid_bat[16] = { 0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42,
                                      0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08 };
static const uint8_t guid_metadata[16] = { 0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b,
                                           0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e };
static const uint8_t guid_file_params[16] = { 0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d,
                                              0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b };
static const uint8_t guid_disk_size[16] = { 0x24, 0x42, 0xa5, 0x2f, 0x1b, 0xcd, 0x76, 0x48,
                                            0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8 };
static const uint8_t guid_logical_sector[16] = { 0x1d, 0xbf, 0x41, 0x81, 0x6f, 0xa9, 0x09, 0x47,
                                                 0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f };
static const uint8_t guid_phys_sector[16] = { 0xc7, 0x48, 0xa3, 0xcd, 0x5d, 0x44, 0x71, 0x44,
                                              0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56 };
static const uint8_t guid_parent_locator[16] = { 0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45,
                                                 0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c };
static const uint8_t guid_vhdx_locator[16] = { 0xb7, 0xef, 0x4a, 0xb0, 0x9e, 0xd1, 0x81, 0x4a,
                                               0xb7, 0x89, 0x25, 0xb8, 0xe9, 0x44, 0x59, 0x13 };

/* CRC-32C, as the test's own: headers and region tables it rewrites */
static uint32_t crc32c(const uint8_t *p, size_t len)
{
    uint32_t c = ~0u;
    for (size_t i = 0; i < len; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0x82f63b78u ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

/* Rewrites the structure of len bytes at off with its CRC-32C redone. */
static void fix_crc(const char *path, uint64_t off, size_t len)
{
    uint8_t *b = malloc(len);
    assert_non_null(b);
    fx_read(path, off, b, len);
    st32(b + H_CHECKSUM, 0);
    st_le(b + H_CHECKSUM, 4, crc32c(b, len));
    fx_patch(path, off, b, len);
    free(b);
}

static void make_vhdx(const char *img, const char *opts, uint64_t size, unsigned seed)
{
    fx_need_qemu();
    fx_make_raw("src.raw", size, seed, 40, 300000);
    unlink(img);
    fx_run("qemu-img convert -q -f raw -O vhdx %s src.raw '%s'", opts, img);
    unlink("src.raw");
}

static void expect_variant(const char *img, const char *subformat)
{
    struct disk_info info;
    char err[512];
    if (disk_get_info(img, &info, err, sizeof(err)) < 0)
        fail_msg("info %s: %s", img, err);
    assert_string_equal(info.format, "vhdx");
    assert_string_equal(info.subformat, subformat);
}

/* Where a region (by GUID) lies, from the first region table. */
static void region(const char *img, const uint8_t *guid, uint64_t *off, uint32_t *len)
{
    uint8_t rt[KB64];
    fx_read(img, RT1, rt, sizeof(rt));
    for (uint32_t i = 0; i < ld32(rt + 8); i++)
        if (!memcmp(rt + 16 + 32 * i, guid, 16)) {
            *off = ld64(rt + 16 + 32 * i + 16);
            *len = ld32(rt + 16 + 32 * i + 24);
            return;
        }
    fail_msg("%s: no such region", img);
}

/* Where a metadata item's value lies (absolute), and its entry. */
static uint64_t item(const char *img, const uint8_t *guid, uint64_t *entry)
{
    uint64_t m;
    uint32_t ml;
    region(img, guid_metadata, &m, &ml);
    uint8_t t[KB64];
    fx_read(img, m, t, sizeof(t));
    for (uint16_t i = 0; i < ld16(t + 10); i++)
        if (!memcmp(t + 32 + 32 * i, guid, 16)) {
            if (entry)
                *entry = m + 32 + 32 * i;
            return m + ld32(t + 32 + 32 * i + 16);
        }
    fail_msg("%s: no such metadata item", img);
    return 0;
}

static void test_dynamic(void **state)
{
    make_vhdx("d.vhdx", "", 64 << 20, 1);
    fx_expect_like_qemu("d.vhdx", "vhdx", "vhdx");
    expect_variant("d.vhdx", "dynamic");
    make_vhdx("d1.vhdx", "-o block_size=1M", 24 << 20, 2);
    fx_expect_like_qemu("d1.vhdx", "vhdx", "vhdx");
    make_vhdx("d4k.vhdx", "-o block_size=32M,log_size=2M", (40 << 20) + 4096 * 3, 3);
    fx_expect_like_qemu("d4k.vhdx", "vhdx", "vhdx");
    fx_run("qemu-img create -q -f vhdx e.vhdx 30M");
    fx_expect_like_qemu("e.vhdx", "vhdx", "vhdx");
}

static void test_fixed(void **state)
{
    make_vhdx("f.vhdx", "-o subformat=fixed", 16 << 20, 4);
    fx_expect_like_qemu("f.vhdx", "vhdx", "vhdx");
    expect_variant("f.vhdx", "fixed");
}

static void test_above_4g(void **state)
{
    make_vhdx("big.vhdx", "", 5ull << 30, 5);
    fx_expect_like_qemu("big.vhdx", "vhdx", "vhdx");
}

/* The current header (the one with the higher sequence number). */
static uint64_t current_header(const char *img)
{
    uint64_t s1, s2;
    fx_read(img, HDR1 + H_SEQUENCE, &s1, 8);
    fx_read(img, HDR2 + H_SEQUENCE, &s2, 8);
    return s2 > s1 ? HDR2 : HDR1;
}

static void test_log_replay_refused(void **state)
{
    make_vhdx("log.vhdx", "", 8 << 20, 6);
    uint64_t h = current_header("log.vhdx");
    fx_patch("log.vhdx", h + H_LOG_GUID, "\x01\x02\x03\x04\x05\x06\x07\x08"
                                         "\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10", 16);
    fix_crc("log.vhdx", h, 4096);
    fx_expect_refused("log.vhdx", "its log must be replayed");
    fx_expect_refused("log.vhdx", "qemu-img check -r all");
}

static void test_damaged_copies(void **state)
{
    make_vhdx("c.vhdx", "", 8 << 20, 7);
    fx_run("qemu-img convert -f vhdx -O raw c.vhdx c.raw");
    /* One header or one region table damaged: the other serves. */
    fx_run("cp c.vhdx t.vhdx");
    fx_patch("t.vhdx", current_header("c.vhdx") + 100, "x", 1);
    fx_expect_like_raw("t.vhdx", "vhdx", "c.raw");
    fx_run("cp c.vhdx t.vhdx");
    fx_patch("t.vhdx", RT1 + 100, "x", 1);
    fx_expect_like_raw("t.vhdx", "vhdx", "c.raw");
    /* Both damaged. */
    fx_run("cp c.vhdx t.vhdx");
    fx_patch("t.vhdx", HDR1 + 100, "x", 1);
    fx_patch("t.vhdx", HDR2 + 100, "x", 1);
    fx_expect_refused("t.vhdx", "neither header is valid");
    fx_run("cp c.vhdx t.vhdx");
    fx_patch("t.vhdx", RT1 + 100, "x", 1);
    fx_patch("t.vhdx", RT2 + 100, "x", 1);
    fx_expect_refused("t.vhdx", "neither region table is valid");
    fx_run("cp c.vhdx t.vhdx");
    fx_patch("t.vhdx", 0, "vhdxfilf", 8);
    assert_string_equal(disk_detect_format("t.vhdx"), "raw");
}

/* Rewrites one region table entry's field in both tables, CRCs redone. */
static void patch_region(const char *img, const uint8_t *guid, unsigned field, unsigned bytes, uint64_t v)
{
    for (int t = 0; t < 2; t++) {
        uint64_t rt = t ? RT2 : RT1;
        uint8_t tab[KB64];
        fx_read(img, rt, tab, sizeof(tab));
        for (uint32_t i = 0; i < ld32(tab + 8); i++)
            if (!memcmp(tab + 16 + 32 * i, guid, 16))
                st_le(tab + 16 + 32 * i + field, bytes, v);
        fx_patch(img, rt, tab, sizeof(tab));
        fix_crc(img, rt, KB64);
    }
}

static void test_malformed(void **state)
{
    make_vhdx("m.vhdx", "-o block_size=1M", 8 << 20, 8);
    uint64_t fp = item("m.vhdx", guid_file_params, NULL);
    uint64_t ds = item("m.vhdx", guid_disk_size, NULL);
    uint64_t ls = item("m.vhdx", guid_logical_sector, NULL);
    static const struct { int what; unsigned bytes; uint64_t v; const char *want; } cases[] = {
        { 0, 4, 3 * MB1, "block size" }, { 0, 4, 512 << 10, "block size" }, { 0, 4, 1u << 30, "block size" },
        { 1, 8, 0, "bad virtual disk size" }, { 1, 8, 1ull << 50, "bad virtual disk size" },
        { 1, 8, (8 << 20) + 100, "bad virtual disk size" }, { 1, 8, 1ull << 40, "BAT is too small" },
        { 2, 4, 1024, "logical sector size" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fx_run("cp m.vhdx t.vhdx");
        uint64_t at = cases[i].what == 0 ? fp : cases[i].what == 1 ? ds : ls;
        uint8_t b[8];
        st_le(b, cases[i].bytes, cases[i].v);
        fx_patch("t.vhdx", at, b, cases[i].bytes);
        fx_expect_refused("t.vhdx", cases[i].want);
    }
    /* Metadata: an item outside the region, one missing, an unknown
     * required one; the table's signature. */
    uint64_t e;
    item("m.vhdx", guid_phys_sector, &e);
    fx_run("cp m.vhdx t.vhdx");
    fx_patch_le32("t.vhdx", e + 16, 0x7ffffff0);
    fx_expect_refused("t.vhdx", "metadata item outside");
    fx_run("cp m.vhdx t.vhdx");
    fx_patch("t.vhdx", e, "0123456789abcdef", 16);
    fx_expect_refused("t.vhdx", "metadata item Burrow does not know");
    item("m.vhdx", guid_disk_size, &e);
    fx_run("cp m.vhdx t.vhdx");
    fx_patch("t.vhdx", e, "0123456789abcdef", 16);
    fx_patch_le32("t.vhdx", e + 24, 0);       /* not required: ignored, but the size is gone */
    fx_expect_refused("t.vhdx", "virtual disk size");
    uint64_t meta;
    uint32_t meta_len;
    region("m.vhdx", guid_metadata, &meta, &meta_len);
    fx_run("cp m.vhdx t.vhdx");
    fx_patch("t.vhdx", meta, "metadatX", 8);
    fx_expect_refused("t.vhdx", "no metadata table");
    fx_run("cp m.vhdx t.vhdx");
    fx_patch_le32("t.vhdx", meta + 8, 0xffff0000u);  /* entry count 0xffff */
    fx_expect_refused("t.vhdx", "too many metadata entries");
    /* Regions: outside the file, misaligned, unknown and required, too
     * many. */
    fx_run("cp m.vhdx t.vhdx");
    patch_region("t.vhdx", guid_bat, 16, 8, 1ull << 40);
    fx_expect_refused("t.vhdx", "a region outside the file");
    fx_run("cp m.vhdx t.vhdx");
    patch_region("t.vhdx", guid_metadata, 16, 8, 3 * MB1 + 4096);
    fx_expect_refused("t.vhdx", "misaligned");
    fx_run("cp m.vhdx t.vhdx");
    patch_region("t.vhdx", guid_bat, 28, 4, 1);
    patch_region("t.vhdx", guid_bat, 0, 8, 0x1122334455667788ull);
    fx_expect_refused("t.vhdx", "a region Burrow does not know");
    fx_run("cp m.vhdx t.vhdx");
    patch_region("t.vhdx", guid_bat, 0, 8, 0x1122334455667788ull);
    fx_expect_refused("t.vhdx", "no BAT");
    fx_run("cp m.vhdx t.vhdx");
    for (int t = 0; t < 2; t++) {
        fx_patch_le32("t.vhdx", (t ? RT2 : RT1) + 8, 5000);
        fix_crc("t.vhdx", t ? RT2 : RT1, KB64);
    }
    fx_expect_refused("t.vhdx", "too many region table entries");
    /* BAT entries: a reserved state, a block inside the headers, a block
     * past the end of the file, a partial block in a disk without parent. */
    uint64_t bat;
    uint32_t bat_len;
    region("m.vhdx", guid_bat, &bat, &bat_len);
    static const struct { uint64_t v; const char *want; } ents[] = {
        { 4, "reserved state" }, { 6, "inside the headers" },
        { 6 | (0x7ffffull << 20), "beyond the end of the file" }, { 7 | (4ull << 20), "reserved state" },
    };
    for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
        fx_run("cp m.vhdx t.vhdx");
        fx_patch_le64("t.vhdx", bat + 8 * 2, ents[i].v);
        fx_expect_read_fails("t.vhdx", ents[i].want);
    }
    /* Two present blocks on the same bytes. */
    uint64_t first;
    fx_read("m.vhdx", bat, &first, 8);
    assert_int_equal(first & 7, 6);
    fx_run("cp m.vhdx t.vhdx");
    fx_patch_le64("t.vhdx", bat + 8, first);
    fx_expect_refused("t.vhdx", "two blocks share bytes of the file");
    /* Cut short. */
    fx_run("cp m.vhdx t.vhdx && truncate -s 200K t.vhdx");
    fx_expect_refused("t.vhdx", "too short");
    fx_run("cp m.vhdx t.vhdx && truncate -s %llu t.vhdx", (unsigned long long)fx_file_size("m.vhdx") - MB1);
    fx_expect_read_fails("t.vhdx", "beyond the end of the file");
}

/* --- a differencing image ----------------------------------------------- */

static size_t put_utf16(uint8_t *out, const char *s)
{
    size_t n = 0;
    for (; *s; s++, n += 2) {
        out[n] = (uint8_t)*s;
        out[n + 1] = 0;
    }
    return n;
}

/* The parent locator (2.6.2.6) with these keys and values. */
static size_t locator(uint8_t *p, const char *const *kv, unsigned n)
{
    memset(p, 0, 4096);
    memcpy(p, guid_vhdx_locator, 16);
    st_le(p + 18, 2, n);
    size_t at = 20 + 12 * n;
    for (unsigned i = 0; i < n; i++) {
        uint8_t *e = p + 20 + 12 * i;
        size_t kl = put_utf16(p + at, kv[2 * i]);
        st_le(e, 4, at);
        st_le(e + 8, 2, kl);
        at += kl;
        size_t vl = put_utf16(p + at, kv[2 * i + 1]);
        st_le(e + 4, 4, at);
        st_le(e + 10, 2, vl);
        at += vl;
    }
    return at;
}

static void guid_text(const uint8_t *g, char *out, size_t len)
{
    snprintf(out, len, "{%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x}", ld32(g), ld16(g + 4), ld16(g + 6),
             g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

/* child: a differencing VHDX over parent; want: what it must read. */
static void make_diff(const char *child, const char *parent, const char *parent_raw, const char *rel,
                      const char *linkage_from, const char *want)
{
    uint64_t size = fx_file_size(parent_raw);
    /* Blocks 1 and 5 written whole (with zeroes around the data: a fully
     * present block is the child's entirely). */
    unlink(child);
    fx_run("qemu-img create -q -f vhdx -o block_size=1M '%s' %llu", child, (unsigned long long)size);
    fx_run("qemu-io -f vhdx -c 'write -P 0x5a 1100k 200k' -c 'write -P 0x6b 5M 1M' '%s' >/dev/null", child);
    fx_run("qemu-img convert -f vhdx -O raw '%s' fx-child.raw", child);
    fx_run("cp '%s' '%s'", parent_raw, want);
    fx_run("dd if=fx-child.raw of='%s' bs=1M skip=1 seek=1 count=1 conv=notrunc status=none", want);
    fx_run("dd if=fx-child.raw of='%s' bs=1M skip=5 seek=5 count=1 conv=notrunc status=none", want);
    unlink("fx-child.raw");

    /* HasParent, and the locator after the other items. */
    char linkage[40], g_rel[1024];
    uint8_t h[4096];
    fx_read(linkage_from, current_header(linkage_from), h, sizeof(h));
    guid_text(h + H_DATA_WRITE, linkage, sizeof(linkage));
    snprintf(g_rel, sizeof(g_rel), "%s", rel);
    const char *kv[] = { "parent_linkage", linkage, "relative_path", g_rel,
                         "absolute_win32_path", "C:\\vms\\nothing-here.vhdx" };
    uint8_t loc[4096];
    size_t loc_len = locator(loc, kv, 3);
    uint64_t meta;
    uint32_t meta_len;
    region(child, guid_metadata, &meta, &meta_len);
    uint64_t fp = item(child, guid_file_params, NULL);
    uint32_t flags;
    fx_read(child, fp + 4, &flags, 4);
    fx_patch_le32(child, fp + 4, flags | 2);
    uint8_t t[64];
    fx_read(child, meta, t, sizeof(t));
    uint16_t n = ld16(t + 10);
    uint8_t e[32] = { 0 };
    memcpy(e, guid_parent_locator, 16);
    st_le(e + 16, 4, 0x11000);
    st_le(e + 20, 4, loc_len);
    st_le(e + 24, 4, 4);              /* IsRequired */
    fx_patch(child, meta + 32 + 32 * n, e, sizeof(e));
    fx_patch_le32(child, meta + 8, (uint32_t)(n + 1) << 16);
    fx_patch(child, meta + 0x11000, loc, loc_len);

    /* Block 3 partly present: its data and the chunk's sector bitmap in
     * new 1 MiB places at the end; every third sector and sectors 0-9 are
     * the child's (bit i of the bitmap, bit 0 of byte 0 first). */
    uint64_t end = (fx_file_size(child) + MB1 - 1) & ~(uint64_t)(MB1 - 1);
    uint64_t data_at = end, bm_at = end + MB1;
    uint8_t *blk = malloc(MB1), *bm = calloc(1, MB1);
    assert_non_null(blk);
    assert_non_null(bm);
    int wfd = open(want, O_WRONLY | O_CLOEXEC);
    assert_true(wfd >= 0);
    for (uint32_t s = 0; s < MB1 / 512; s++) {
        bool here = s < 10 || s % 3 == 0;
        uint64_t sector = 3 * (MB1 / 512) + s;
        for (int b = 0; b < 512; b++)
            blk[s * 512 + b] = here ? (uint8_t)(s ^ b ^ 0x3c) : 0xee;
        if (here) {
            bm[sector / 8] |= (uint8_t)(1 << (sector % 8));
            assert_int_equal(pwrite(wfd, blk + s * 512, 512, (off_t)(sector * 512)), 512);
        }
    }
    close(wfd);
    fx_patch(child, data_at, blk, MB1);
    fx_patch(child, bm_at, bm, MB1);
    free(blk);
    free(bm);
    uint64_t bat;
    uint32_t bat_len;
    region(child, guid_bat, &bat, &bat_len);
    /* qemu-img marks the blocks never written ZERO, which in a
     * differencing image would hide the parent: NOT_PRESENT instead. */
    for (uint64_t k = 0; k < size / MB1; k++) {
        uint64_t v;
        fx_read(child, bat + 8 * k, &v, 8);
        if ((v & 7) != 6)
            fx_patch_le64(child, bat + 8 * k, 0);
    }
    fx_patch_le64(child, bat + 8 * 3, 7 | data_at);
    /* chunk ratio: 2^23 sectors of 512 bytes per 1 MiB block = 4096 */
    fx_patch_le64(child, bat + 8 * 4096, 6 | bm_at);
}

static void test_differencing(void **state)
{
    make_vhdx("base.vhdx", "", 8 << 20, 9);
    fx_run("qemu-img convert -f vhdx -O raw base.vhdx base.raw");
    make_diff("child.vhdx", "base.vhdx", "base.raw", ".\\base.vhdx", "base.vhdx", "want.raw");
    fx_expect_like_raw("child.vhdx", "vhdx", "want.raw");
    expect_variant("child.vhdx", "differencing");
    struct disk_info info;
    char err[512];
    assert_int_equal(disk_get_info("child.vhdx", &info, err, sizeof(err)), 0);
    assert_string_equal(info.backing_file, "base.vhdx");
    /* A grandchild over it. */
    make_diff("grand.vhdx", "child.vhdx", "want.raw", "child.vhdx", "child.vhdx", "want2.raw");
    fx_expect_like_raw("grand.vhdx", "vhdx", "want2.raw");
    /* A parent that is not the one: its data GUID differs. */
    make_vhdx("other.vhdx", "", 8 << 20, 10);
    make_diff("c2.vhdx", "base.vhdx", "base.raw", "base.vhdx", "other.vhdx", "want.raw");
    fx_expect_refused("c2.vhdx", "is not its parent");
    /* Missing, or itself. */
    make_diff("c3.vhdx", "base.vhdx", "base.raw", "gone.vhdx", "base.vhdx", "want.raw");
    fx_expect_refused("c3.vhdx", "gone.vhdx is not there");
    make_diff("c4.vhdx", "base.vhdx", "base.raw", "c4.vhdx", "base.vhdx", "want.raw");
    fx_expect_refused("c4.vhdx", "parent chain deeper than");
    /* A partially present block whose bitmap is missing. */
    make_diff("c5.vhdx", "base.vhdx", "base.raw", "base.vhdx", "base.vhdx", "want.raw");
    uint64_t bat;
    uint32_t bat_len;
    region("c5.vhdx", guid_bat, &bat, &bat_len);
    fx_patch_le64("c5.vhdx", bat + 8 * 4096, 0);
    fx_expect_read_fails("c5.vhdx", "without its sector bitmap");
}

static void test_mutated(void **state)
{
    make_vhdx("mu.vhdx", "-o block_size=1M", 4 << 20, 11);
    /* The headers, region tables and (mostly) metadata and BAT are in the
     * first MiBs; mutate the structures themselves. */
    int a = fx_mutate("mu.vhdx", 4 * MB1, 300, 1);
    print_message("mutated VHDX images opened: %d of 300\n", a);
    assert_true(a > 0);
}

int main(void)
{
    fx_init("vhdx");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dynamic),
        cmocka_unit_test(test_fixed),
        cmocka_unit_test(test_above_4g),
        cmocka_unit_test(test_log_replay_refused),
        cmocka_unit_test(test_damaged_copies),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_differencing),
        cmocka_unit_test(test_mutated),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fx_cleanup();
    return rc;
}
