/* The Linux direct-boot loader, run against the project's linuxtest bzImage
 * in heap-backed guest memory (no KVM): boot_params contents, placement of
 * kernel, command line and initrd, page tables and GDT, and the errors for
 * bad images and inputs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/e820.h"
#include "devices/guest_mem.h"
#include "devices/util.h"
#include "vmm/boot_linux.h"

#define LOW_RAM   (128 * MiB)
#define HIGH_RAM  (16 * MiB)
#define HIGH_BASE (4 * GiB)

static char image_path[4096];
static uint8_t *image;
static size_t image_size;
static char tmpdir[4096];

struct fixture {
    uint8_t *low, *high;
    struct guest_mem mem;
    struct e820_entry e820[5];
    struct linux_boot_config cfg;
    struct linux_boot_entry entry;
    char err[512];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->low = calloc(1, LOW_RAM);        /* lazily backed: cheap */
    f->high = calloc(1, HIGH_RAM);
    assert_non_null(f->low);
    assert_non_null(f->high);
    guest_mem_add(&f->mem, 0, LOW_RAM, f->low);
    guest_mem_add(&f->mem, HIGH_BASE, HIGH_RAM, f->high);
    f->e820[0] = (struct e820_entry){ 0, 0x9fc00, E820_RAM };
    f->e820[1] = (struct e820_entry){ 0x9fc00, 0x400, E820_RESERVED };
    f->e820[2] = (struct e820_entry){ 0xf0000, 0x10000, E820_RESERVED };
    f->e820[3] = (struct e820_entry){ 0x100000, LOW_RAM - 0x100000, E820_RAM };
    f->e820[4] = (struct e820_entry){ HIGH_BASE, HIGH_RAM, E820_RAM };
    f->cfg = (struct linux_boot_config){
        .kernel = image_path, .e820 = f->e820, .ne820 = 5,
    };
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    free(f->low);
    free(f->high);
    free(f);
    return 0;
}

/* Writes len bytes to a new file in the test's directory; returns its path. */
static const char *write_temp(const char *name, const void *data, size_t len)
{
    static char path[4][4200];
    static unsigned next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, name);
    FILE *fp = fopen(p, "wb");
    assert_non_null(fp);
    if (len)
        assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
    return p;
}

/* A copy of the image with one byte patched, written to a file. */
static const char *patched_image(const char *name, size_t off, uint8_t v)
{
    uint8_t *copy = malloc(image_size);
    memcpy(copy, image, image_size);
    assert_true(off < image_size);
    copy[off] = v;
    const char *p = write_temp(name, copy, image_size);
    free(copy);
    return p;
}

static uint8_t *gpa(struct fixture *f, uint64_t addr, uint64_t len)
{
    uint8_t *p = guest_mem_ptr(&f->mem, addr, len);
    assert_non_null(p);
    return p;
}

/* Walks the loader's page tables like the CPU would (4-level, 2 MiB/1 GiB
 * pages); returns the physical address or UINT64_MAX when unmapped. */
static uint64_t translate(struct fixture *f, uint64_t cr3, uint64_t va)
{
    uint64_t mask = 0x000ffffffffff000ULL;
    uint64_t e = ld64(gpa(f, (cr3 & mask) + ((va >> 39) & 511) * 8, 8));
    if (!(e & 1))
        return UINT64_MAX;
    e = ld64(gpa(f, (e & mask) + ((va >> 30) & 511) * 8, 8));
    if (!(e & 1))
        return UINT64_MAX;
    if (e & 0x80)
        return (e & mask & ~(GiB - 1)) | (va & (GiB - 1));
    e = ld64(gpa(f, (e & mask) + ((va >> 21) & 511) * 8, 8));
    if (!(e & 1))
        return UINT64_MAX;
    if (e & 0x80)
        return (e & mask & ~(2 * MiB - 1)) | (va & (2 * MiB - 1));
    e = ld64(gpa(f, (e & mask) + ((va >> 12) & 511) * 8, 8));
    if (!(e & 1))
        return UINT64_MAX;
    return (e & mask) | (va & 0xfff);
}

static void test_load(void **state)
{
    struct fixture *f = *state;
    uint8_t initrd[5000];
    for (size_t i = 0; i < sizeof(initrd); i++)
        initrd[i] = (uint8_t)(i * 7 + 3);
    const char *cmdline = "console=ttyS0 burrow.test=\"a b\" quiet";
    f->cfg.initrd = write_temp("initrd", initrd, sizeof(initrd));
    f->cfg.cmdline = cmdline;
    f->cfg.rsdp_addr = 0xf5a10;

    assert_int_equal(linux_boot_load(&f->mem, &f->cfg, &f->entry, f->err, sizeof(f->err)), 0);
    struct linux_boot_entry *e = &f->entry;
    assert_int_equal(e->rip, 0x100200);
    assert_int_equal(e->rsi, LINUX_BOOT_PARAMS_ADDR);
    assert_int_equal(e->protocol, ld16(image + 0x206));

    /* The protected-mode part, byte for byte, at 1 MiB. */
    unsigned setup_sects = image[0x1f1] ? image[0x1f1] : 4;
    size_t setup = (setup_sects + 1) * 512;
    assert_int_equal(e->kernel_addr, 0x100000);
    assert_int_equal(e->kernel_size, image_size - setup);
    assert_memory_equal(gpa(f, 0x100000, image_size - setup), image + setup, image_size - setup);

    uint8_t *bp = gpa(f, e->rsi, 4096);
    /* The setup header as in the image, except the fields a loader writes. */
    size_t hdr_end = 0x202 + image[0x201];
    for (size_t off = 0x1f1; off < hdr_end; off++) {
        bool loader_field = (off >= 0x1fa && off < 0x1fc) ||     /* vid_mode */
                            (off >= 0x210 && off < 0x212) ||     /* type_of_loader, loadflags */
                            (off >= 0x218 && off < 0x220) ||     /* ramdisk */
                            (off >= 0x224 && off < 0x226) ||     /* heap_end_ptr */
                            (off >= 0x228 && off < 0x22c);      /* cmd_line_ptr */
        if (!loader_field && bp[off] != image[off])
            fail_msg("boot_params byte 0x%zx is 0x%02x, image has 0x%02x", off, bp[off], image[off]);
    }
    assert_int_equal(ld16(bp + 0x1fe), 0xaa55);
    assert_memory_equal(bp + 0x202, "HdrS", 4);
    assert_int_equal(ld16(bp + 0x1fa), 0xffff);
    assert_int_equal(bp[0x210], 0xff);
    assert_int_equal(bp[0x211], image[0x211] | 0x80);
    assert_int_not_equal(ld16(bp + 0x224), 0);
    /* Nothing before the header but what we set (the e820 count, the RSDP). */
    for (size_t off = 0; off < 0x1f1; off++) {
        if (off == 0x1e8 || (off >= 0x70 && off < 0x78))
            continue;
        if (bp[off])
            fail_msg("boot_params byte 0x%zx is 0x%02x, expected 0", off, bp[off]);
    }
    assert_int_equal(ld64(bp + 0x070), 0xf5a10);

    /* Command line, below 640 KiB. */
    uint64_t cl = ld32(bp + 0x228) | (uint64_t)ld32(bp + 0x0c8) << 32;
    assert_int_equal(cl, e->cmdline_addr);
    assert_true(cl + strlen(cmdline) + 1 <= 0xa0000);
    assert_string_equal((char *)gpa(f, cl, strlen(cmdline) + 1), cmdline);

    /* E820 table. */
    assert_int_equal(bp[0x1e8], 5);
    for (unsigned i = 0; i < 5; i++) {
        uint8_t *t = bp + 0x2d0 + i * 20;
        assert_int_equal(ld64(t), f->e820[i].addr);
        assert_int_equal(ld64(t + 8), f->e820[i].size);
        assert_int_equal(ld32(t + 16), f->e820[i].type);
    }

    /* The initrd: page aligned at the top of low RAM (initrd_addr_max is
     * above it; high RAM is above 4 GiB and not eligible). */
    uint64_t rd = ld32(bp + 0x218) | (uint64_t)ld32(bp + 0x0c0) << 32;
    uint64_t rdsize = ld32(bp + 0x21c) | (uint64_t)ld32(bp + 0x0c4) << 32;
    assert_int_equal(rdsize, sizeof(initrd));
    assert_int_equal(rd, (LOW_RAM - sizeof(initrd)) & ~0xfffULL);
    assert_int_equal(e->initrd_addr, rd);
    assert_int_equal(e->initrd_size, rdsize);
    assert_true(rd + rdsize <= (uint64_t)ld32(image + 0x22c) + 1);
    assert_memory_equal(gpa(f, rd, rdsize), initrd, sizeof(initrd));

    /* Page tables: identity over the first 4 GiB (kernel, boot_params, the
     * last byte below 4 GiB). */
    uint64_t probes[] = { 0, 0x7000, 0x100200, 0x3fffffff, 0x40000000, 0xfffff000, 0xffffffff };
    for (size_t i = 0; i < ARRAY_SIZE(probes); i++)
        assert_int_equal(translate(f, e->cr3, probes[i]), probes[i]);

    /* GDT: 0x10 is a present 64-bit code segment, 0x18 present writable data. */
    assert_true(e->gdt_limit >= 0x1f);
    uint64_t cs = ld64(gpa(f, e->gdt_base + 0x10, 8));
    uint64_t ds = ld64(gpa(f, e->gdt_base + 0x18, 8));
    assert_true(cs & (1ULL << 47));                 /* P */
    assert_true(cs & (1ULL << 53));                 /* L */
    assert_false(cs & (1ULL << 54));                /* D must be 0 with L */
    assert_int_equal((cs >> 40) & 0x18, 0x18);      /* S, code */
    assert_true(ds & (1ULL << 47));
    assert_int_equal((ds >> 40) & 0x1a, 0x12);      /* S, data, writable */
    /* The stack the loader hands over is RAM and clear of boot_params. */
    assert_true(e->rsp > e->rsi + 4096 || e->rsp <= e->rsi);
    assert_non_null(guest_mem_ptr(&f->mem, e->rsp - 16, 16));
}

static void test_no_initrd_no_cmdline(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(linux_boot_load(&f->mem, &f->cfg, &f->entry, f->err, sizeof(f->err)), 0);
    uint8_t *bp = gpa(f, f->entry.rsi, 4096);
    assert_int_equal(ld32(bp + 0x218), 0);
    assert_int_equal(ld32(bp + 0x21c), 0);
    assert_int_equal(ld64(bp + 0x070), 0);          /* no RSDP given */
    uint64_t cl = ld32(bp + 0x228);
    assert_int_not_equal(cl, 0);
    assert_int_equal(*gpa(f, cl, 1), 0);            /* empty string */
}

/* The loader must refuse, with a reason, and not crash. */
static void expect_error(struct fixture *f, const char *what)
{
    f->err[0] = 0;
    assert_int_equal(linux_boot_load(&f->mem, &f->cfg, &f->entry, f->err, sizeof(f->err)), -1);
    if (!strstr(f->err, what))
        fail_msg("error \"%s\" does not mention \"%s\"", f->err, what);
}

static void test_truncated(void **state)
{
    struct fixture *f = *state;
    unsigned setup_sects = image[0x1f1] ? image[0x1f1] : 4;
    size_t setup = (setup_sects + 1) * 512;
    size_t cuts[] = { 0, 1, 0x100, 0x200, 0x205, 0x207, 0x240, setup - 1, setup, setup + 0x1ff };
    for (size_t i = 0; i < ARRAY_SIZE(cuts); i++) {
        f->cfg.kernel = write_temp("truncated", image, cuts[i]);
        f->err[0] = 0;
        assert_int_equal(linux_boot_load(&f->mem, &f->cfg, &f->entry, f->err, sizeof(f->err)), -1);
        assert_true(strlen(f->err) > 0);
    }
    f->cfg.kernel = write_temp("truncated", image, setup + 0x100);
    expect_error(f, "truncated");
    f->cfg.kernel = "/nonexistent/bzImage";
    expect_error(f, "cannot open");
}

static void test_bad_magic(void **state)
{
    struct fixture *f = *state;
    f->cfg.kernel = patched_image("bad-bootflag", 0x1fe, 0x00);
    expect_error(f, "0xaa55");
    f->cfg.kernel = patched_image("bad-hdrs", 0x202, 'X');
    expect_error(f, "HdrS");
}

static void test_old_protocol(void **state)
{
    struct fixture *f = *state;
    f->cfg.kernel = patched_image("old-protocol", 0x206, 0x0b);    /* 2.11 */
    expect_error(f, "2.11 is too old");
}

static void test_not_64bit(void **state)
{
    struct fixture *f = *state;
    f->cfg.kernel = patched_image("no-xlf64", 0x236, image[0x236] & ~1);
    expect_error(f, "does not support the 64-bit boot protocol");
}

static void test_setup_sects_zero_means_four(void **state)
{
    struct fixture *f = *state;
    /* setup_sects 0 is read as 4: the kernel then starts at 5 * 512. */
    f->cfg.kernel = patched_image("setup-sects-0", 0x1f1, 0);
    assert_int_equal(linux_boot_load(&f->mem, &f->cfg, &f->entry, f->err, sizeof(f->err)), 0);
    assert_int_equal(f->entry.kernel_size, image_size - 5 * 512);
    assert_memory_equal(gpa(f, 0x100000, 512), image + 5 * 512, 512);
}

static void test_initrd_too_big(void **state)
{
    struct fixture *f = *state;
    /* A sparse 200 MiB file: more than the 128 MiB of low RAM. */
    char path[4200];
    snprintf(path, sizeof(path), "%s/big-initrd", tmpdir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(ftruncate(fileno(fp), 200 * MiB), 0);
    fclose(fp);
    f->cfg.initrd = path;
    expect_error(f, "does not fit");

    /* Fits in RAM in all, but not in what is left under initrd_addr_max. */
    f->cfg.kernel = patched_image("low-initrd-max", 0x22f, 0x00);   /* 0x00ffffff */
    fp = fopen(path, "wb");
    assert_int_equal(ftruncate(fileno(fp), 16 * MiB), 0);
    fclose(fp);
    expect_error(f, "does not fit");

    f->cfg.initrd = write_temp("empty-initrd", "", 0);
    expect_error(f, "empty");
}

static void test_initrd_respects_addr_max(void **state)
{
    struct fixture *f = *state;
    /* initrd_addr_max 0x03ffffff (64 MiB - 1): the initrd ends at 64 MiB. */
    uint8_t *copy = malloc(image_size);
    memcpy(copy, image, image_size);
    st32(copy + 0x22c, 0x03ffffff);
    f->cfg.kernel = write_temp("initrd-max-64m", copy, image_size);
    free(copy);
    f->cfg.initrd = write_temp("initrd", "0123456789", 10);
    assert_int_equal(linux_boot_load(&f->mem, &f->cfg, &f->entry, f->err, sizeof(f->err)), 0);
    assert_int_equal(f->entry.initrd_addr, 64 * MiB - 4096);
}

static void test_cmdline_too_long(void **state)
{
    struct fixture *f = *state;
    uint32_t max = ld32(image + 0x238);
    char *s = malloc(max + 2);
    memset(s, 'x', max + 1);
    s[max + 1] = 0;
    f->cfg.cmdline = s;
    expect_error(f, "command line");
    s[max] = 0;                                     /* exactly cmdline_size: fine */
    assert_int_equal(linux_boot_load(&f->mem, &f->cfg, &f->entry, f->err, sizeof(f->err)), 0);
    assert_int_equal(strlen((char *)gpa(f, f->entry.cmdline_addr, max + 1)), max);
    free(s);
}

static void test_bad_config(void **state)
{
    struct fixture *f = *state;
    f->cfg.ne820 = 0;
    expect_error(f, "memory map");
    f->cfg.ne820 = 5;
    /* Too little RAM for the kernel at 1 MiB. */
    f->e820[3].size = 0x1000;
    expect_error(f, "RAM");
}

int main(void)
{
    const char *build = getenv("BURROW_BUILD_DIR");
    if (!build) {
        printf("skipped: BURROW_BUILD_DIR is not set (run through ctest)\n");
        return 77;
    }
    snprintf(image_path, sizeof(image_path), "%s/tests/guests/linuxtest.bzImage", build);
    FILE *fp = fopen(image_path, "rb");
    if (!fp) {
        fprintf(stderr, "cannot open %s: the test guests are part of the build\n", image_path);
        return 1;
    }
    fseek(fp, 0, SEEK_END);
    image_size = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    image = malloc(image_size);
    if (fread(image, 1, image_size, fp) != image_size) {
        fprintf(stderr, "cannot read %s\n", image_path);
        return 1;
    }
    fclose(fp);
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/test_boot_linux.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }

    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_initrd_no_cmdline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_magic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_protocol, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_64bit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_setup_sects_zero_means_four, setup, teardown),
        cmocka_unit_test_setup_teardown(test_initrd_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_initrd_respects_addr_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmdline_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_config, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);

    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    free(image);
    return rc;
}
