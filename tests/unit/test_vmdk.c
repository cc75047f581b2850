/* VMDK images (devices/block/vmdk.c): monolithicSparse, streamOptimized
 * (also with its grain directory at the end, as VMware writes it),
 * twoGbMaxExtentSparse, monolithicFlat and twoGbMaxExtentFlat images made
 * by qemu-img, with data and holes and above 4 GiB, zeroed grains, and a
 * chain of child disks, read and converted the same as `qemu-img convert
 * -O raw` makes them; a parent that changed, is missing or loops is
 * refused; malformed headers, tables, grains and descriptors give errors;
 * mutated images never crash the reader. */
#include <errno.h>
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

/* SparseExtentHeader fields */
#define S_VERSION       4
#define S_FLAGS         8
#define S_CAPACITY      12
#define S_GRAIN         20
#define S_DESC_OFFSET   28
#define S_NUM_GTES      44
#define S_GD_OFFSET     56
#define S_NL_CHARS      73

static void make_vmdk(const char *img, const char *subformat, uint64_t size, unsigned seed)
{
    fx_need_qemu();
    fx_make_raw("src.raw", size, seed, 40, 300000);
    fx_run("rm -f '%s' '%.*s'-*", img, (int)(strlen(img) - 5), img);
    fx_run("qemu-img convert -q -f raw -O vmdk -o subformat=%s src.raw '%s'", subformat, img);
    unlink("src.raw");
}

static void expect_info(const char *img, const char *subformat, const char *parent)
{
    struct disk_info info;
    char err[512];
    if (disk_get_info(img, &info, err, sizeof(err)) < 0)
        fail_msg("info %s: %s", img, err);
    assert_string_equal(info.format, "vmdk");
    assert_string_equal(info.subformat, subformat);
    assert_string_equal(info.backing_file, parent);
}

static void test_monolithic_sparse(void **state)
{
    make_vmdk("ms.vmdk", "monolithicSparse", 64 << 20, 1);
    fx_expect_like_qemu("ms.vmdk", "vmdk", "vmdk");
    expect_info("ms.vmdk", "monolithicSparse", "");
    fx_run("qemu-img create -q -f vmdk empty.vmdk 100M");
    fx_expect_like_qemu("empty.vmdk", "vmdk", "vmdk");
}

static void test_stream_optimized(void **state)
{
    make_vmdk("so.vmdk", "streamOptimized", 32 << 20, 2);
    fx_expect_like_qemu("so.vmdk", "vmdk", "vmdk");
    expect_info("so.vmdk", "streamOptimized", "");
    /* As VMware streams it: the grain directory after the grains, found
     * through the footer (a copy of the header with the real gdOffset)
     * between a footer marker and the end-of-stream marker. */
    fx_run("cp so.vmdk soend.vmdk");
    uint8_t h[512], marker[512] = { 0 };
    fx_read("soend.vmdk", 0, h, sizeof(h));
    uint64_t end = fx_file_size("soend.vmdk");
    end = (end + 511) & ~511ull;
    st_le(marker, 8, 1);                    /* one sector of metadata follows */
    st_le(marker + 12, 4, 3);               /* MARKER_FOOTER */
    fx_patch("soend.vmdk", end, marker, sizeof(marker));
    fx_patch("soend.vmdk", end + 512, h, sizeof(h));
    memset(marker, 0, sizeof(marker));      /* MARKER_EOS */
    fx_patch("soend.vmdk", end + 1024, marker, sizeof(marker));
    fx_patch_le64("soend.vmdk", S_GD_OFFSET, UINT64_MAX);
    fx_run("qemu-img convert -f vmdk -O raw so.vmdk so.raw");
    fx_expect_like_raw("soend.vmdk", "vmdk", "so.raw");
    /* Without the footer, it is refused. */
    fx_run("truncate -s %llu soend.vmdk", (unsigned long long)end + 512);
    fx_expect_refused("soend.vmdk", "no footer");
    /* A damaged grain: its marker names another LBA, or its data does not
     * inflate. */
    uint64_t gd = 0, gt = 0;
    uint32_t gte = 0;
    fx_read("so.vmdk", S_GD_OFFSET, &gd, 8);
    fx_read("so.vmdk", gd * 512, &gt, 4);
    fx_read("so.vmdk", gt * 512, &gte, 4);
    assert_true(gte > 1);                   /* grain 0 holds data (fx_make_raw) */
    fx_run("cp so.vmdk bad.vmdk");
    fx_patch_le64("bad.vmdk", (uint64_t)gte * 512, 12345);
    fx_expect_read_fails("bad.vmdk", "bad compressed grain marker");
    fx_run("cp so.vmdk bad.vmdk");
    fx_patch_le32("bad.vmdk", (uint64_t)gte * 512 + 8, 0x7fffffff);
    fx_expect_read_fails("bad.vmdk", "bad compressed grain marker");
    fx_run("cp so.vmdk bad.vmdk");
    uint8_t junk[64];
    memset(junk, 0xa5, sizeof(junk));
    fx_patch("bad.vmdk", (uint64_t)gte * 512 + 12, junk, sizeof(junk));
    fx_expect_read_fails("bad.vmdk", "does not inflate");
}

static void test_two_gb_sparse_above_4g(void **state)
{
    make_vmdk("tg.vmdk", "twoGbMaxExtentSparse", 5ull << 30, 3);
    fx_expect_like_qemu("tg.vmdk", "vmdk", "vmdk");
    expect_info("tg.vmdk", "twoGbMaxExtentSparse", "");
    /* A missing extent file is refused, naming it. */
    fx_run("mv tg-s002.vmdk moved.vmdk");
    fx_expect_refused("tg.vmdk", "tg-s002.vmdk");
    fx_run("mv moved.vmdk tg-s002.vmdk");
    /* Above 4 GiB in one sparse extent too. */
    make_vmdk("big.vmdk", "monolithicSparse", 6ull << 30, 4);
    fx_expect_like_qemu("big.vmdk", "vmdk", "vmdk");
}

static void test_flat(void **state)
{
    make_vmdk("mf.vmdk", "monolithicFlat", 16 << 20, 5);
    fx_expect_like_qemu("mf.vmdk", "vmdk", "vmdk");
    expect_info("mf.vmdk", "monolithicFlat", "");
    make_vmdk("tf.vmdk", "twoGbMaxExtentFlat", (4ull << 30) + (1 << 20), 6);
    fx_expect_like_qemu("tf.vmdk", "vmdk", "vmdk");
    /* A flat extent shorter than the descriptor says is refused. */
    fx_run("truncate -s 1M mf-flat.vmdk");
    fx_expect_refused("mf.vmdk", "shorter than the descriptor says");
}

/* A descriptor of our own: extents of every kind, with an offset into a
 * flat file and a ZERO extent in between. */
static void test_descriptor(void **state)
{
    fx_make_raw("part.raw", 3 << 20, 7, 10, 100000);
    fx_run("qemu-img convert -q -f raw -O vmdk part.raw part.vmdk");
    FILE *f = fopen("custom.vmdk", "w");
    assert_non_null(f);
    fprintf(f, "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n"
               "createType=\"custom\"\n\n# Extent description\n"
               "RW 2048 FLAT \"part.raw\" 2048\r\n"
               "RDONLY 4096 ZERO\n"
               "RW 6144 SPARSE \"part.vmdk\"\n\n#DDB\nddb.adapterType = \"ide\"\n");
    fclose(f);
    /* What it must read: part.raw from 1 MiB on, 2 MiB of zeroes, part.raw */
    fx_run("dd if=part.raw of=want.raw bs=1M skip=1 count=1 status=none && "
           "truncate -s 3M want.raw && cat part.raw >>want.raw");
    fx_expect_like_raw("custom.vmdk", "vmdk", "want.raw");
    expect_info("custom.vmdk", "custom", "");

    static const struct { const char *line, *want; } bad[] = {
        { "RW 2048 VMFSSPARSE \"part.raw\"", "VMFSSPARSE are not supported" },
        { "RW 2048 FLAT", "without a file name" },
        { "RW 2048 FLAT \"\"", "without a file name" },
        { "RW x FLAT \"part.raw\"", "without a size" },
        { "RW 0 FLAT \"part.raw\"", "without a size" },
        { "NOACCESS 2048 FLAT \"part.raw\"", "no access" },
        { "RW 2048 FLAT \"part.raw\" 99999999", "shorter than the descriptor says" },
        { "RW 99999999999999999999 ZERO", "without a size" },
        { "RW 2048 FLAT \"no-such-file\"", "no-such-file" },
        { "RW 2048 SPARSE \"part.raw\"", "without its header" },
        { "", "without extents" },
        { "RW 2048 FLAT \"/etc/passwd\"", "not in the descriptor's folder" },
        { "RW 2048 FLAT \"sub/../../x.raw\"", "not in the descriptor's folder" },
        { "RW 2048 FLAT \"../part.raw\"", "not in the descriptor's folder" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        f = fopen("bad.vmdk", "w");
        assert_non_null(f);
        fprintf(f, "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n%s\n", bad[i].line);
        fclose(f);
        fx_expect_refused("bad.vmdk", bad[i].want);
    }
    /* An ESX 3 sparse extent is named, not misread. */
    f = fopen("cowd.vmdk", "w");
    assert_non_null(f);
    fprintf(f, "COWD");
    fclose(f);
    fx_run("truncate -s 64K cowd.vmdk");
    fx_expect_refused("cowd.vmdk", "COWD");
}

static void test_zeroed_grains(void **state)
{
    fx_need_qemu();
    /* A child with zeroed grains over a parent with data: they read as
     * zeroes, not as the parent's. */
    make_vmdk("zbase.vmdk", "monolithicSparse", 4 << 20, 8);
    fx_run("qemu-img create -q -f vmdk -o zeroed_grain=on -b zbase.vmdk -F vmdk zchild.vmdk");
    fx_run("qemu-io -f vmdk -c 'write -z 0 192k' -c 'write -P 0x33 1M 64k' zchild.vmdk >/dev/null");
    fx_expect_like_qemu("zchild.vmdk", "vmdk", "vmdk");
}

static void test_parent_chain(void **state)
{
    fx_need_qemu();
    make_vmdk("base.vmdk", "monolithicSparse", 16 << 20, 9);
    fx_run("qemu-img create -q -f vmdk -b base.vmdk -F vmdk mid.vmdk");
    fx_run("qemu-io -f vmdk -c 'write -P 0x5a 1M 300k' -c 'write -P 0x11 7M 64k' mid.vmdk >/dev/null");
    fx_run("qemu-img create -q -f vmdk -b mid.vmdk -F vmdk top.vmdk");
    fx_run("qemu-io -f vmdk -c 'write -P 0xa5 1100k 100k' -c 'write -P 0x22 15M 4k' top.vmdk >/dev/null");
    fx_expect_like_qemu("top.vmdk", "vmdk", "vmdk");
    expect_info("top.vmdk", "monolithicSparse", "mid.vmdk");
    /* The child's info needs no parent. */
    fx_run("mv mid.vmdk mid.away");
    expect_info("top.vmdk", "monolithicSparse", "mid.vmdk");
    fx_expect_refused("top.vmdk", "mid.vmdk");
    fx_run("mv mid.away mid.vmdk");
    /* A parent changed since (another CID) is refused. */
    fx_run("cp mid.vmdk mid.orig && sed -i 's/^CID=\\([0-9a-f]*\\)/CID=0badc0de/' mid.vmdk");
    fx_expect_refused("top.vmdk", "was changed since it was made");
    fx_run("mv mid.orig mid.vmdk");
    /* A disk that is its own parent: the chain's depth ends it. */
    fx_run("qemu-img create -q -f vmdk loop.vmdk 1M");
    fx_run("sed -i 's/^parentCID=ffffffff/parentCID=fffffffe/; s/^CID=[0-9a-f]*/CID=fffffffe/; "
           "s/^createType=\"monolithicSparse\"/parentFileNameHint=\"loop.vmdk\"/' loop.vmdk");
    fx_expect_refused("loop.vmdk", "parent chain deeper than");
}

static void test_malformed(void **state)
{
    make_vmdk("m.vmdk", "monolithicSparse", 8 << 20, 10);
    static const struct { unsigned off, bytes; uint64_t v; const char *want; } cases[] = {
        { S_VERSION, 4, 0, "version 0 is not supported" },
        { S_VERSION, 4, 4, "version 4 is not supported" },
        { S_CAPACITY, 8, 0, "bad capacity" },
        { S_CAPACITY, 8, 1ull << 50, "bad capacity" },
        { S_GRAIN, 8, 0, "grain size" },
        { S_GRAIN, 8, 100, "grain size" },
        { S_GRAIN, 8, 1ull << 40, "grain size" },
        { S_NUM_GTES, 4, 0, "grain table entries" },
        { S_NUM_GTES, 4, 1u << 30, "grain table entries" },
        { S_GD_OFFSET, 8, 0, "grain directory outside the file" },
        { S_GD_OFFSET, 8, 1ull << 40, "grain directory outside the file" },
        { S_GD_OFFSET, 8, UINT64_MAX, "no footer" },
        { S_FLAGS, 4, 0x10003, "unknown compression" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        fx_run("cp m.vmdk t.vmdk");
        if (cases[i].bytes == 4)
            fx_patch_le32("t.vmdk", cases[i].off, (uint32_t)cases[i].v);
        else
            fx_patch_le64("t.vmdk", cases[i].off, cases[i].v);
        if (!strcmp(cases[i].want, "unknown compression"))
            fx_patch("t.vmdk", 77, "\x07\x00", 2);
        fx_expect_refused("t.vmdk", cases[i].want);
    }
    /* A file sent through FTP in text mode. */
    fx_run("cp m.vmdk t.vmdk");
    fx_patch("t.vmdk", S_NL_CHARS + 2, "\n", 1);
    fx_expect_refused("t.vmdk", "text-mode transfer");
    /* A cut file. */
    fx_run("cp m.vmdk t.vmdk && truncate -s 300 t.vmdk");
    fx_expect_refused("t.vmdk", "without its header");
    /* Tables and grains outside the file. */
    uint64_t gd = 0;
    uint32_t gt = 0, gte = 0;
    fx_read("m.vmdk", S_GD_OFFSET, &gd, 8);
    fx_read("m.vmdk", gd * 512, &gt, 4);
    fx_read("m.vmdk", (uint64_t)gt * 512, &gte, 4);
    fx_run("cp m.vmdk t.vmdk");
    fx_patch_le32("t.vmdk", gd * 512, 0x7fffffff);
    fx_expect_read_fails("t.vmdk", "grain table beyond the end of the file");
    make_vmdk("m2.vmdk", "monolithicSparse", 96 << 20, 14);     /* three grain tables */
    uint64_t gd2 = 0;
    uint32_t gt2 = 0;
    fx_read("m2.vmdk", S_GD_OFFSET, &gd2, 8);
    fx_read("m2.vmdk", gd2 * 512, &gt2, 4);
    fx_run("cp m2.vmdk t.vmdk");
    fx_patch_le32("t.vmdk", gd2 * 512 + 8, gt2 + 1);     /* overlaps the first */
    fx_expect_refused("t.vmdk", "two grain tables share bytes");
    fx_run("cp m.vmdk t.vmdk");
    fx_patch_le32("t.vmdk", (uint64_t)gt * 512, 0x7fffffff);
    fx_expect_read_fails("t.vmdk", "grain beyond the end of the file");
    fx_run("cp m.vmdk t.vmdk");
    fx_run("truncate -s %llu t.vmdk", (unsigned long long)fx_file_size("m.vmdk") - 4096);
    fx_expect_read_fails("t.vmdk", "grain beyond the end of the file");
    /* A descriptor that does not parse. */
    uint64_t desc = 0;
    fx_read("m.vmdk", S_DESC_OFFSET, &desc, 8);
    fx_run("cp m.vmdk t.vmdk");
    fx_patch("t.vmdk", desc * 512, "CID=xyz\n", 8);
    fx_expect_refused("t.vmdk", "bad CID");
}

static void test_mutated(void **state)
{
    make_vmdk("mu.vmdk", "monolithicSparse", 4 << 20, 11);
    int a = fx_mutate("mu.vmdk", 64 << 10, 300, 1);
    make_vmdk("mus.vmdk", "streamOptimized", 4 << 20, 12);
    int b = fx_mutate("mus.vmdk", fx_file_size("mus.vmdk"), 300, 2);
    make_vmdk("muf.vmdk", "monolithicFlat", 1 << 20, 13);
    int c = fx_mutate("muf.vmdk", fx_file_size("muf.vmdk"), 300, 3);
    print_message("mutated VMDK images opened: sparse %d, stream %d, descriptor %d of 300\n", a, b, c);
    assert_true(a > 0 && b > 0 && c > 0);
}

int main(void)
{
    fx_init("vmdk");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monolithic_sparse),
        cmocka_unit_test(test_stream_optimized),
        cmocka_unit_test(test_two_gb_sparse_above_4g),
        cmocka_unit_test(test_flat),
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test(test_zeroed_grains),
        cmocka_unit_test(test_parent_chain),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_mutated),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fx_cleanup();
    return rc;
}
