/* VDI images (devices/block/vdi.c): dynamic and fixed images made by
 * qemu-img, with data and holes and above 4 GiB, read and converted the
 * same as `qemu-img convert -O raw` makes them, with the allocation
 * qemu-img maps; writers refused; malformed headers and block maps give
 * errors; mutated images never crash the reader. */
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

/* Header fields (VDIHEADER1, little-endian) */
#define H_VERSION       0x44
#define H_CB_HEADER     0x48
#define H_TYPE          0x4c
#define H_OFF_BLOCKS    0x154
#define H_OFF_DATA      0x158
#define H_CB_SECTOR     0x168
#define H_CB_DISK       0x170
#define H_CB_BLOCK      0x178
#define H_C_BLOCKS      0x180

static void make_vdi(const char *img, const char *opts, uint64_t size, unsigned seed)
{
    fx_need_qemu();
    fx_make_raw("src.raw", size, seed, 40, 300000);
    unlink(img);
    fx_run("qemu-img convert -q -f raw -O vdi %s src.raw '%s'", opts, img);
    unlink("src.raw");
}

/* The guest bytes qemu-img says the image stores. */
static uint64_t qemu_allocated(const char *img)
{
    fx_run("qemu-img map --output=json '%s' | python3 -c \"import json,sys; "
           "print(sum(e['length'] for e in json.load(sys.stdin) if e['data']))\" >fx-alloc", img);
    FILE *f = fopen("fx-alloc", "r");
    assert_non_null(f);
    unsigned long long v = 0;
    assert_int_equal(fscanf(f, "%llu", &v), 1);
    fclose(f);
    return v;
}

static void expect_allocated(const char *img)
{
    struct disk_info info;
    char err[512];
    assert_int_equal(disk_get_info(img, &info, err, sizeof(err)), 0);
    assert_int_equal(info.allocated_size, qemu_allocated(img));
}

static void test_dynamic(void **state)
{
    make_vdi("d.vdi", "", 64 << 20, 1);
    fx_expect_like_qemu("d.vdi", "vdi", "vdi");
    expect_allocated("d.vdi");
    struct disk_info info;
    char err[512];
    assert_int_equal(disk_get_info("d.vdi", &info, err, sizeof(err)), 0);
    assert_string_equal(info.subformat, "dynamic");
    assert_int_equal(info.cluster_size, 1 << 20);
    assert_true(info.allocated_size < info.virtual_size);      /* it has holes */
    /* An empty one, and one of an odd size. */
    fx_run("qemu-img create -q -f vdi e.vdi 10M");
    fx_expect_like_qemu("e.vdi", "vdi", "vdi");
    expect_allocated("e.vdi");
    make_vdi("odd.vdi", "", (3 << 20) + 512 * 7, 2);
    fx_expect_like_qemu("odd.vdi", "vdi", "vdi");
}

static void test_fixed(void **state)
{
    make_vdi("f.vdi", "-o static=on", 16 << 20, 3);
    fx_expect_like_qemu("f.vdi", "vdi", "vdi");
    struct disk_info info;
    char err[512];
    assert_int_equal(disk_get_info("f.vdi", &info, err, sizeof(err)), 0);
    assert_string_equal(info.subformat, "fixed");
    assert_int_equal(info.allocated_size, 16 << 20);
}

static void test_above_4g(void **state)
{
    make_vdi("big.vdi", "", 5ull << 30, 4);
    fx_expect_like_qemu("big.vdi", "vdi", "vdi");
    expect_allocated("big.vdi");
}

static void test_read_only(void **state)
{
    make_vdi("ro.vdi", "", 4 << 20, 5);
    char err[512] = "";
    assert_null(blk_open_format(NULL, "ro.vdi", NULL, false, err, sizeof(err)));
    assert_non_null(strstr(err, "reads but does not write"));
    assert_null(blk_open_format(NULL, "ro.vdi", "vdi", false, err, sizeof(err)));
    struct blk *b = blk_open_format(NULL, "ro.vdi", "vdi", true, err, sizeof(err));
    assert_non_null(b);
    uint8_t sec[512] = { 1 };
    assert_int_equal(blk_pwrite(b, 0, sec, sizeof(sec)), -EROFS);
    assert_int_equal(blk_flush_sync(b), 0);
    blk_close(b);
    assert_true(disk_resize("ro.vdi", 8 << 20, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "burrow disk convert ro.vdi"));
}

/* A fresh copy of a small dynamic image with data, to damage. */
static void fresh(const char *img)
{
    fx_run("cp base.vdi '%s'", img);
}

static void test_malformed(void **state)
{
    make_vdi("base.vdi", "", 8 << 20, 6);
    uint64_t size = fx_file_size("base.vdi");

    fresh("t.vdi");
    fx_patch_le32("t.vdi", H_VERSION, 0);
    fx_expect_refused("t.vdi", "VDI version 0.0 is not supported");
    fresh("t.vdi");
    fx_patch_le32("t.vdi", H_CB_HEADER, 0x100);
    fx_expect_refused("t.vdi", "header too short");
    fresh("t.vdi");
    fx_patch_le32("t.vdi", H_TYPE, 4);
    fx_expect_refused("t.vdi", "VBoxManage clonemedium");
    fresh("t.vdi");
    fx_patch_le32("t.vdi", H_TYPE, 9);
    fx_expect_refused("t.vdi", "unknown image type");
    fresh("t.vdi");
    fx_patch_le32("t.vdi", H_CB_SECTOR, 4096);
    fx_expect_refused("t.vdi", "sector size");
    uint32_t bad_blocks[] = { 0, 3 << 20, 256, 1u << 31 };
    for (size_t i = 0; i < ARRAY_SIZE(bad_blocks); i++) {
        fresh("t.vdi");
        fx_patch_le32("t.vdi", H_CB_BLOCK, bad_blocks[i]);
        fx_expect_refused("t.vdi", "block size");
    }
    /* Absurd sizes: more disk than blocks, or far fewer. */
    fresh("t.vdi");
    fx_patch_le64("t.vdi", H_CB_DISK, 1ull << 60);
    fx_expect_refused("t.vdi", "disk size and block count disagree");
    fresh("t.vdi");
    fx_patch_le64("t.vdi", H_CB_DISK, 0);
    fx_expect_refused("t.vdi", "disk size and block count disagree");
    fresh("t.vdi");
    fx_patch_le32("t.vdi", H_C_BLOCKS, 0xfffffffeu);
    fx_patch_le64("t.vdi", H_CB_DISK, 0xfffffffeull << 20);
    fx_expect_refused("t.vdi", "too many blocks");
    fresh("t.vdi");
    fx_patch_le32("t.vdi", H_C_BLOCKS, 0x00fffff0u);
    fx_patch_le64("t.vdi", H_CB_DISK, 0x00fffff0ull << 20);
    fx_expect_refused("t.vdi", "block map outside the file");
    /* Tables outside the file. */
    fresh("t.vdi");
    fx_patch_le32("t.vdi", H_OFF_BLOCKS, (uint32_t)size);
    fx_expect_refused("t.vdi", "block map outside the file");
    fresh("t.vdi");
    fx_patch_le32("t.vdi", H_OFF_BLOCKS, 0x10);
    fx_expect_refused("t.vdi", "block map outside the file");
    fresh("t.vdi");
    fx_patch_le32("t.vdi", H_OFF_DATA, 0xfffffe00u);
    fx_expect_refused("t.vdi", "data area outside the file");
    /* A file cut short: inside the header, then inside the data. */
    fresh("t.vdi");
    fx_run("truncate -s 300 t.vdi");
    fx_expect_refused("t.vdi", "shorter than a VDI header");
    fresh("t.vdi");
    fx_run("truncate -s %llu t.vdi", (unsigned long long)(size - 4096));
    fx_expect_read_fails("t.vdi", "beyond the end of the file");
    /* Block map entries that point nowhere. */
    uint32_t off_blocks;
    fx_read("base.vdi", H_OFF_BLOCKS, &off_blocks, 4);
    fresh("t.vdi");
    fx_patch_le32("t.vdi", off_blocks, 5000);
    fx_expect_read_fails("t.vdi", "beyond the block count");
    uint32_t off_data;
    fx_read("base.vdi", H_OFF_DATA, &off_data, 4);
    fresh("t.vdi");
    fx_run("truncate -s %llu t.vdi", (unsigned long long)off_data + (3 << 20));
    uint32_t e0, e6;
    fx_read("base.vdi", off_blocks, &e0, 4);
    fx_read("base.vdi", off_blocks + 4 * 6, &e6, 4);
    assert_int_equal(e6, 6);
    fx_patch_le32("t.vdi", off_blocks, 6);          /* a place past the file's end */
    fx_patch_le32("t.vdi", off_blocks + 4 * 6, e0);
    fx_expect_read_fails("t.vdi", "beyond the end of the file");
    /* Two blocks on the same data. */
    uint32_t second;
    fx_read("base.vdi", off_blocks + 4, &second, 4);
    fresh("t.vdi");
    fx_patch_le32("t.vdi", off_blocks, second);
    fx_expect_refused("t.vdi", "two blocks of the disk share their data");
    /* ZERO entries read as zeroes, even where data was. */
    fresh("t.vdi");
    for (int k = 0; k < 8; k++)
        fx_patch_le32("t.vdi", off_blocks + 4 * k, 0xfffffffeu);
    struct blk *b = blk_open_format(NULL, "t.vdi", NULL, true, NULL, 0);
    assert_non_null(b);
    uint8_t *buf = malloc(8 << 20), *zero = calloc(1, 8 << 20);
    assert_int_equal(blk_pread(b, 0, buf, 8 << 20), 0);
    assert_memory_equal(buf, zero, 8 << 20);
    uint64_t n;
    assert_int_equal(blk_block_status(b, 0, 8 << 20, &n), 0);
    assert_int_equal(n, 8 << 20);
    blk_close(b);
    free(buf);
    free(zero);
}

static void test_mutated(void **state)
{
    make_vdi("m.vdi", "", 4 << 20, 7);
    int opened = fx_mutate("m.vdi", 0x600, 400, 1);
    print_message("mutated VDI images: %d of 400 opened\n", opened);
    assert_true(opened > 0);
}

int main(void)
{
    fx_init("vdi");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dynamic),
        cmocka_unit_test(test_fixed),
        cmocka_unit_test(test_above_4g),
        cmocka_unit_test(test_read_only),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_mutated),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fx_cleanup();
    return rc;
}
