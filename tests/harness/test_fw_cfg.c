/* fw_cfg driven through its ports and DMA interface exactly as firmware
 * does (QEMU docs/specs/fw_cfg.rst), including malformed DMA requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "devices/fw_cfg.h"
#include "devices/util.h"
#include "support/harness_platform.h"

#define RAM_SIZE   (16 * MiB)
#define DESC_GPA   0x1000
#define BUF_GPA    0x10000

struct ctx {
    struct harness *h;
    struct fw_cfg *fw;
};

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));
    c->h = harness_new(RAM_SIZE);
    if (!c->h)
        return -1;
    c->fw = fw_cfg_create(&c->h->plat);
    if (!c->fw)
        return -1;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    fw_cfg_destroy(c->fw);
    harness_free(c->h);
    free(c);
    return 0;
}

static void sel(struct harness *h, uint16_t key)
{
    harness_pio_write(h, FW_CFG_PORT_SEL, 2, key);
}

static void read_port(struct harness *h, void *buf, size_t n)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)harness_pio_read(h, FW_CFG_PORT_DATA, 1);
}

/* FWCfgDmaAccess at DESC_GPA; the address goes in as firmware writes it:
 * high half at 0x514, low half at 0x518 (which starts the transfer), each
 * as a big-endian value, or one 8-byte write at 0x514. */
static uint32_t dma(struct harness *h, uint32_t control, uint32_t len, uint64_t addr, bool wide)
{
    uint8_t *d = h->ram + DESC_GPA;
    st32(d, __builtin_bswap32(control));
    st32(d + 4, __builtin_bswap32(len));
    st64(d + 8, __builtin_bswap64(addr));
    uint64_t desc = DESC_GPA;
    if (wide) {
        harness_pio_write(h, FW_CFG_PORT_DMA, 8, __builtin_bswap64(desc));
    } else {
        harness_pio_write(h, FW_CFG_PORT_DMA, 4, __builtin_bswap32((uint32_t)(desc >> 32)));
        harness_pio_write(h, FW_CFG_PORT_DMA + 4, 4, __builtin_bswap32((uint32_t)desc));
    }
    return __builtin_bswap32(ld32(d));
}

static void fill_pattern(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 7 + seed);
}

static void test_signature_and_id(void **state)
{
    struct ctx *c = *state;
    char sig[5] = { 0 };
    sel(c->h, FW_CFG_SIGNATURE);
    read_port(c->h, sig, 4);
    assert_string_equal(sig, "QEMU");
    /* past the end: zeros */
    assert_int_equal(harness_pio_read(c->h, FW_CFG_PORT_DATA, 1), 0);

    uint8_t id[4];
    sel(c->h, FW_CFG_ID);
    read_port(c->h, id, 4);
    assert_int_equal(ld_le(id, 4), FW_CFG_VERSION | FW_CFG_VERSION_DMA);

    /* DMA signature: "QEMU CFG" in guest byte order */
    uint8_t dsig[8];
    st_le(dsig, 4, harness_pio_read(c->h, FW_CFG_PORT_DMA, 4));
    st_le(dsig + 4, 4, harness_pio_read(c->h, FW_CFG_PORT_DMA + 4, 4));
    assert_memory_equal(dsig, "QEMU CFG", 8);
    assert_int_equal(__builtin_bswap64(harness_pio_read(c->h, FW_CFG_PORT_DMA, 8)),
                     FW_CFG_DMA_SIGNATURE);

    /* selecting again restarts the item */
    sel(c->h, FW_CFG_SIGNATURE);
    assert_int_equal(harness_pio_read(c->h, FW_CFG_PORT_DATA, 1), 'Q');
    /* a wider read returns consecutive bytes */
    assert_int_equal(harness_pio_read(c->h, FW_CFG_PORT_DATA, 2), ('M' << 8) | 'E');
}

static void test_items_and_directory(void **state)
{
    struct ctx *c = *state;
    static uint8_t big[3000], small[5] = { 1, 2, 3, 4, 5 };
    fill_pattern(big, sizeof(big), 3);
    int kz = fw_cfg_add_file(c->fw, "etc/zzz", big, sizeof(big));
    int ka = fw_cfg_add_file(c->fw, "etc/aaa", small, sizeof(small));
    int kb = fw_cfg_add_file(c->fw, "bootorder", "/pci@i0cf8/*@4\n", 16);
    assert_int_equal(kz, FW_CFG_FILE_FIRST);
    assert_int_equal(ka, FW_CFG_FILE_FIRST + 1);
    assert_int_equal(kb, FW_CFG_FILE_FIRST + 2);
    assert_int_equal(fw_cfg_add_i32(c->fw, FW_CFG_NB_CPUS, 4), 0);
    assert_int_equal(fw_cfg_add_i16(c->fw, FW_CFG_MAX_CPUS, 8), 0);
    assert_int_equal(fw_cfg_add_i64(c->fw, FW_CFG_RAM_SIZE, 0x123456789ULL), 0);

    /* refused: reserved keys, duplicates, bad names */
    assert_int_equal(fw_cfg_add_bytes(c->fw, FW_CFG_SIGNATURE, "X", 1), -1);
    assert_int_equal(fw_cfg_add_bytes(c->fw, FW_CFG_FILE_DIR, "X", 1), -1);
    assert_int_equal(fw_cfg_add_bytes(c->fw, FW_CFG_FILE_FIRST, "X", 1), -1);
    assert_int_equal(fw_cfg_add_file(c->fw, "etc/aaa", "X", 1), -1);
    assert_int_equal(fw_cfg_add_file(c->fw, "", "X", 1), -1);
    char longname[80];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    assert_int_equal(fw_cfg_add_file(c->fw, longname, "X", 1), -1);

    uint8_t v[8];
    sel(c->h, FW_CFG_NB_CPUS);
    read_port(c->h, v, 4);
    assert_int_equal(ld_le(v, 4), 4);
    sel(c->h, FW_CFG_MAX_CPUS);
    read_port(c->h, v, 2);
    assert_int_equal(ld_le(v, 2), 8);
    sel(c->h, FW_CFG_RAM_SIZE);
    read_port(c->h, v, 8);
    assert_int_equal(ld_le(v, 8), 0x123456789ULL);

    /* directory: big-endian count, entries sorted by name */
    uint8_t cnt[4];
    sel(c->h, FW_CFG_FILE_DIR);
    read_port(c->h, cnt, 4);
    assert_int_equal(__builtin_bswap32(ld32(cnt)), 3);
    static const struct { const char *name; uint32_t size; int key; } want[] = {
        { "bootorder", 16, FW_CFG_FILE_FIRST + 2 },
        { "etc/aaa", 5, FW_CFG_FILE_FIRST + 1 },
        { "etc/zzz", 3000, FW_CFG_FILE_FIRST },
    };
    for (unsigned i = 0; i < 3; i++) {
        uint8_t e[64];
        read_port(c->h, e, sizeof(e));
        assert_int_equal(__builtin_bswap32(ld32(e)), want[i].size);
        assert_int_equal(__builtin_bswap16(ld16(e + 4)), want[i].key);
        assert_int_equal(e[63], 0);
        assert_string_equal((const char *)e + 8, want[i].name);
    }

    /* a file by port, then zeros past its end */
    static uint8_t got[3000];
    sel(c->h, (uint16_t)kz);
    read_port(c->h, got, sizeof(got));
    assert_memory_equal(got, big, sizeof(big));
    for (int i = 0; i < 16; i++)
        assert_int_equal(harness_pio_read(c->h, FW_CFG_PORT_DATA, 1), 0);

    /* modify: new contents and size in the directory */
    assert_int_equal(fw_cfg_modify_file(c->fw, "etc/aaa", big, 100), 0);
    assert_int_equal(fw_cfg_modify_file(c->fw, "etc/none", big, 100), -1);
    sel(c->h, FW_CFG_FILE_DIR);
    uint8_t dir[4 + 64 * 3];
    read_port(c->h, dir, sizeof(dir));
    assert_int_equal(__builtin_bswap32(ld32(dir + 4 + 64)), 100);
    size_t len;
    const uint8_t *data = fw_cfg_file_data(c->fw, "etc/aaa", &len);
    assert_int_equal(len, 100);
    assert_memory_equal(data, big, 100);
}

static void test_dma(void **state)
{
    struct ctx *c = *state;
    struct harness *h = c->h;
    static uint8_t file[10000];
    fill_pattern(file, sizeof(file), 11);
    int key = fw_cfg_add_file(c->fw, "etc/blob", file, sizeof(file));
    assert_true(key >= FW_CFG_FILE_FIRST);

    /* SELECT|READ of the whole file, split address writes */
    memset(h->ram + BUF_GPA, 0xaa, sizeof(file) + 64);
    uint32_t st = dma(h, ((uint32_t)key << 16) | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ,
                      sizeof(file), BUF_GPA, false);
    assert_int_equal(st, 0);
    assert_memory_equal(h->ram + BUF_GPA, file, sizeof(file));
    assert_int_equal(h->ram[BUF_GPA + sizeof(file)], 0xaa);   /* not one byte more */

    /* READ continues where port reads left off; SKIP moves on */
    sel(h, (uint16_t)key);
    uint8_t first[10];
    read_port(h, first, sizeof(first));
    assert_memory_equal(first, file, sizeof(first));
    assert_int_equal(dma(h, FW_CFG_DMA_CTL_READ, 20, BUF_GPA, true), 0);
    assert_memory_equal(h->ram + BUF_GPA, file + 10, 20);
    assert_int_equal(dma(h, FW_CFG_DMA_CTL_SKIP, 50, 0, true), 0);
    assert_int_equal(dma(h, FW_CFG_DMA_CTL_READ, 10, BUF_GPA, false), 0);
    assert_memory_equal(h->ram + BUF_GPA, file + 80, 10);
    assert_int_equal(harness_pio_read(h, FW_CFG_PORT_DATA, 1), file[90]);

    /* reading across the end: the rest is zeros */
    memset(h->ram + BUF_GPA, 0xaa, 64);
    assert_int_equal(dma(h, FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ | ((uint32_t)key << 16),
                         0, 0, false), 0);
    assert_int_equal(dma(h, FW_CFG_DMA_CTL_SKIP, sizeof(file) - 8, 0, false), 0);
    assert_int_equal(dma(h, FW_CFG_DMA_CTL_READ, 32, BUF_GPA, false), 0);
    assert_memory_equal(h->ram + BUF_GPA, file + sizeof(file) - 8, 8);
    for (int i = 8; i < 32; i++)
        assert_int_equal(h->ram[BUF_GPA + i], 0);
    assert_int_equal(h->ram[BUF_GPA + 32], 0xaa);
}

static void test_dma_errors(void **state)
{
    struct ctx *c = *state;
    struct harness *h = c->h;
    static uint8_t file[256];
    fill_pattern(file, sizeof(file), 5);
    int key = fw_cfg_add_file(c->fw, "etc/x", file, sizeof(file));

    /* destination outside RAM, or straddling its end */
    uint32_t sel_read = ((uint32_t)key << 16) | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ;
    assert_true(dma(h, sel_read, 16, RAM_SIZE + 0x1000, false) & FW_CFG_DMA_CTL_ERROR);
    assert_true(dma(h, sel_read, 256, RAM_SIZE - 16, false) & FW_CFG_DMA_CTL_ERROR);
    assert_true(dma(h, sel_read, 16, UINT64_MAX - 4, true) & FW_CFG_DMA_CTL_ERROR);
    /* writes are refused */
    assert_true(dma(h, sel_read ^ FW_CFG_DMA_CTL_READ ^ FW_CFG_DMA_CTL_WRITE, 4, BUF_GPA, false)
                & FW_CFG_DMA_CTL_ERROR);

    /* the descriptor itself outside RAM: nothing to write back, no crash */
    harness_pio_write(h, FW_CFG_PORT_DMA, 4, __builtin_bswap32(0x12));
    harness_pio_write(h, FW_CFG_PORT_DMA + 4, 4, __builtin_bswap32(0x34));
    harness_pio_write(h, FW_CFG_PORT_DMA, 8, __builtin_bswap64(RAM_SIZE - 8));
    /* other ports: ignored */
    harness_pio_write(h, FW_CFG_PORT_DATA, 1, 0x55);
    harness_pio_write(h, FW_CFG_PORT_SEL + 2, 2, 0x55);

    /* the device still works, and the high half was reset after use */
    assert_int_equal(dma(h, sel_read, sizeof(file), BUF_GPA, false), 0);
    assert_memory_equal(h->ram + BUF_GPA, file, sizeof(file));

    /* a selector with no item reads as zeros, by port and by DMA */
    sel(h, 0x1234);
    for (int i = 0; i < 8; i++)
        assert_int_equal(harness_pio_read(h, FW_CFG_PORT_DATA, 1), 0);
    memset(h->ram + BUF_GPA, 0xaa, 16);
    assert_int_equal(dma(h, (0x3fffu << 16) | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ,
                         16, BUF_GPA, false), 0);
    for (int i = 0; i < 16; i++)
        assert_int_equal(h->ram[BUF_GPA + i], 0);

    /* reset: back to the signature */
    fw_cfg_reset(c->fw);
    assert_int_equal(harness_pio_read(h, FW_CFG_PORT_DATA, 1), 'Q');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_signature_and_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_items_and_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
