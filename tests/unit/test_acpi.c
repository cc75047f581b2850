/* ACPI tables and the AML encoder: tables built into a RAM buffer and
 * checked field by field against the ACPI 6.x layouts; the BIOS
 * linker/loader script checked for form and then executed the way firmware
 * does; the DSDT disassembled and recompiled with iasl when it is there. */
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

#include "devices/fw_cfg.h"
#include "devices/guest_mem.h"
#include "devices/util.h"
#include "support/harness_platform.h"
#include "vmm/acpi.h"

#define RAM_SIZE    (4 * MiB)
#define TABLES_GPA  0x100000

struct ram {
    struct guest_mem mem;
    uint8_t *buf;
};

static void ram_init(struct ram *r)
{
    memset(r, 0, sizeof(*r));
    r->buf = calloc(1, RAM_SIZE);
    assert_non_null(r->buf);
    guest_mem_add(&r->mem, 0, RAM_SIZE, r->buf);
}

static uint8_t sum8(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    for (size_t i = 0; i < n; i++)
        s = (uint8_t)(s + p[i]);
    return s;
}

static uint64_t rd(const uint8_t *p, unsigned n)
{
    return ld_le(p, n);
}

/* A table at gpa in buf: signature, sane length, zero checksum. */
static const uint8_t *check_table(const uint8_t *buf, uint64_t gpa, const char *sig)
{
    assert_true(gpa > 0 && gpa + 36 <= RAM_SIZE);
    const uint8_t *t = buf + gpa;
    assert_memory_equal(t, sig, 4);
    uint32_t len = (uint32_t)rd(t + 4, 4);
    assert_true(len >= 36 && gpa + len <= RAM_SIZE);
    assert_int_equal(sum8(t, len), 0);
    return t;
}

static const uint8_t *find_bytes(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
    return memmem(hay, n, needle, m);
}

struct found {
    const uint8_t *rsdp, *rsdt, *xsdt, *fadt, *madt, *dsdt, *facs;
    uint64_t dsdt_gpa;
};

/* Everything a guest OS would check, starting from the RSDP. */
static struct found check_all(const uint8_t *buf, uint64_t rsdp_gpa, const struct acpi_config *cfg)
{
    struct found f = { 0 };
    const uint8_t *r = buf + rsdp_gpa;
    f.rsdp = r;
    assert_memory_equal(r, "RSD PTR ", 8);
    assert_int_equal(sum8(r, 20), 0);
    assert_int_equal(r[15], 2);
    assert_int_equal(rd(r + 20, 4), 36);
    assert_int_equal(sum8(r, 36), 0);

    f.rsdt = check_table(buf, rd(r + 16, 4), "RSDT");
    f.xsdt = check_table(buf, rd(r + 24, 8), "XSDT");
    uint32_t xn = ((uint32_t)rd(f.xsdt + 4, 4) - 36) / 8;
    uint32_t rn = ((uint32_t)rd(f.rsdt + 4, 4) - 36) / 4;
    assert_int_equal(xn, 2);
    assert_int_equal(rn, xn);
    for (uint32_t i = 0; i < xn; i++) {
        uint64_t a = rd(f.xsdt + 36 + 8 * i, 8);
        assert_int_equal(rd(f.rsdt + 36 + 4 * i, 4), a);
        assert_true(a < RAM_SIZE);
        if (!memcmp(buf + a, "FACP", 4))
            f.fadt = check_table(buf, a, "FACP");
        else if (!memcmp(buf + a, "APIC", 4))
            f.madt = check_table(buf, a, "APIC");
        else
            fail_msg("unexpected table in XSDT");
    }
    assert_non_null(f.fadt);
    assert_non_null(f.madt);

    /* FADT (ACPI 6.x, 5.2.9) */
    const uint8_t *p = f.fadt;
    assert_int_equal(rd(p + 4, 4), 276);
    assert_int_equal(p[8], 6);
    uint64_t facs = rd(p + 36, 4), dsdt = rd(p + 40, 4);
    assert_int_equal(rd(p + 132, 8), facs);
    assert_int_equal(rd(p + 140, 8), dsdt);
    assert_int_equal(facs % 64, 0);
    f.facs = buf + facs;
    assert_memory_equal(f.facs, "FACS", 4);
    assert_int_equal(rd(f.facs + 4, 4), 64);
    f.dsdt = check_table(buf, dsdt, "DSDT");
    f.dsdt_gpa = dsdt;
    assert_int_equal(rd(p + 46, 2), cfg->sci_gsi);
    assert_int_equal(rd(p + 48, 4), 0);                   /* SMI_CMD */
    assert_int_equal(rd(p + 56, 4), cfg->pm_base);        /* PM1a_EVT */
    assert_int_equal(rd(p + 60, 4), 0);                   /* PM1b_EVT */
    assert_int_equal(rd(p + 64, 4), cfg->pm_base + 4);    /* PM1a_CNT */
    assert_int_equal(rd(p + 76, 4), cfg->pm_base + 8);    /* PM_TMR */
    assert_int_equal(rd(p + 80, 4), cfg->pm_base + 0x20); /* GPE0 */
    assert_int_equal(p[88], 4);
    assert_int_equal(p[89], 2);
    assert_int_equal(p[91], 4);
    assert_int_equal(p[92], 4);
    assert_int_equal(p[108], 0x32);                       /* century */
    assert_int_equal(rd(p + 109, 2), 0x3);                /* LEGACY_DEVICES | 8042 */
    uint32_t flags = (uint32_t)rd(p + 112, 4);
    assert_true(flags & (1u << 0));                        /* WBINVD */
    assert_true(flags & (1u << 2));                        /* PROC_C1 */
    assert_false(flags & (1u << 4));                       /* fixed power button */
    assert_true(flags & (1u << 5));                        /* no sleep button */
    assert_true(flags & (1u << 10));                       /* RESET_REG_SUP */
    assert_false(flags & (1u << 20));                      /* not HW-reduced */
    /* RESET_REG: system I/O, 8 bits, 0xcf9, value 6 */
    assert_int_equal(p[116], 1);
    assert_int_equal(p[117], 8);
    assert_int_equal(rd(p + 120, 8), 0xcf9);
    assert_int_equal(p[128], 6);
    /* X_ blocks agree with the legacy ones */
    static const struct { unsigned gas, legacy, lenoff; } xb[] = {
        { 148, 56, 88 }, { 172, 64, 89 }, { 208, 76, 91 }, { 220, 80, 92 },
    };
    for (unsigned i = 0; i < ARRAY_SIZE(xb); i++) {
        const uint8_t *g = p + xb[i].gas;
        assert_int_equal(g[0], 1);
        assert_int_equal(g[1], p[xb[i].lenoff] * 8);
        assert_int_equal(rd(g + 4, 8), rd(p + xb[i].legacy, 4));
    }

    /* MADT (5.2.12) */
    const uint8_t *m = f.madt;
    uint32_t mlen = (uint32_t)rd(m + 4, 4);
    assert_int_equal(rd(m + 36, 4), 0xfee00000);
    assert_int_equal(rd(m + 40, 4) & 1, 1);                /* PCAT_COMPAT */
    unsigned nlapic = 0, nioapic = 0, niso = 0, nnmi = 0;
    bool iso0 = false, iso9 = false;
    for (uint32_t off = 44; off < mlen;) {
        const uint8_t *e = m + off;
        assert_true(e[1] >= 2 && off + e[1] <= mlen);
        switch (e[0]) {
        case 0:
            assert_int_equal(e[1], 8);
            assert_int_equal(e[2], nlapic);                /* UID */
            assert_int_equal(e[3], nlapic);                /* APIC id */
            assert_int_equal(rd(e + 4, 4) & 1, 1);
            nlapic++;
            break;
        case 1:
            assert_int_equal(e[1], 12);
            assert_int_equal(e[2], cfg->ncpus);
            assert_int_equal(rd(e + 4, 4), 0xfec00000);
            assert_int_equal(rd(e + 8, 4), 0);
            nioapic++;
            break;
        case 2:
            assert_int_equal(e[1], 10);
            if (e[3] == 0) {
                assert_int_equal(rd(e + 4, 4), 2);
                iso0 = true;
            } else if (e[3] == 9) {
                assert_int_equal(rd(e + 4, 4), 9);
                assert_int_equal(rd(e + 8, 2), 0xd);      /* level, active high */
                iso9 = true;
            }
            niso++;
            break;
        case 4:
            assert_int_equal(e[1], 6);
            assert_int_equal(e[5], 1);                     /* LINT1 */
            nnmi++;
            break;
        default:
            fail_msg("unexpected MADT entry type %u", e[0]);
        }
        off += e[1];
    }
    assert_int_equal(nlapic, cfg->ncpus);
    assert_int_equal(nioapic, 1);
    assert_int_equal(niso, 2);
    assert_true(iso0 && iso9);
    assert_int_equal(nnmi, 1);

    /* DSDT: the names and the EISA ids SeaBIOS's parser looks for */
    uint32_t dlen = (uint32_t)rd(f.dsdt + 4, 4);
    assert_int_equal(f.dsdt[8], 2);
    assert_non_null(find_bytes(f.dsdt, dlen, "_S5_", 4));
    assert_non_null(find_bytes(f.dsdt, dlen, "PCI0", 4));
    assert_non_null(find_bytes(f.dsdt, dlen, "_PRT", 4));
    static const uint8_t kbd_hid[] = { 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x03, 0x03 };
    static const uint8_t pci_hid[] = { 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03 };
    assert_non_null(find_bytes(f.dsdt, dlen, kbd_hid, sizeof(kbd_hid)));
    assert_non_null(find_bytes(f.dsdt, dlen, pci_hid, sizeof(pci_hid)));
    /* \_S5 = Package(4){5, 5, 0, 0} */
    static const uint8_t s5[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04,
                                  0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00 };
    assert_non_null(find_bytes(f.dsdt, dlen, s5, sizeof(s5)));
    return f;
}

static void test_tables_in_memory(void **state)
{
    static const struct { unsigned ncpus; uint64_t low, high; } cases[] = {
        { 1, 512 * MiB, 0 }, { 4, 3 * GiB, 5 * GiB }, { 200, 2 * GiB, 0 }, { ACPI_MAX_CPUS, 3 * GiB, 64 * GiB },
    };
    for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
        struct ram r;
        ram_init(&r);
        struct acpi_config cfg;
        acpi_config_default(&cfg, cases[i].ncpus, cases[i].low, cases[i].high);
        size_t size = acpi_tables_size(&cfg);
        assert_true(size > 0 && size < RAM_SIZE - TABLES_GPA);
        uint64_t rsdp = acpi_build_in_memory(&cfg, &r.mem, TABLES_GPA);
        assert_int_equal(rsdp, ACPI_RSDP_ADDR);
        struct found f = check_all(r.buf, rsdp, &cfg);
        /* Everything but the RSDP lies in [TABLES_GPA, +size) */
        assert_true(f.dsdt_gpa >= TABLES_GPA && f.dsdt_gpa < TABLES_GPA + size);
        assert_true((uint64_t)(f.madt - r.buf) + rd(f.madt + 4, 4) <= TABLES_GPA + size);
        free(r.buf);
    }
}

static void test_tables_bad_input(void **state)
{
    struct ram r;
    ram_init(&r);
    struct acpi_config cfg;
    acpi_config_default(&cfg, 0, 1 * GiB, 0);
    assert_int_equal(acpi_build_in_memory(&cfg, &r.mem, TABLES_GPA), 0);
    acpi_config_default(&cfg, ACPI_MAX_CPUS + 1, 1 * GiB, 0);
    assert_int_equal(acpi_build_in_memory(&cfg, &r.mem, TABLES_GPA), 0);
    acpi_config_default(&cfg, 2, 1 * GiB, 0);
    /* overlapping the RSDP, unaligned, outside RAM */
    assert_int_equal(acpi_build_in_memory(&cfg, &r.mem, ACPI_RSDP_ADDR - 64), 0);
    assert_int_equal(acpi_build_in_memory(&cfg, &r.mem, TABLES_GPA + 4), 0);
    assert_int_equal(acpi_build_in_memory(&cfg, &r.mem, RAM_SIZE - 64), 0);
    free(r.buf);
}

/* 64-bit PCI window present only when it fits under the address width. */
static void test_pci_windows(void **state)
{
    static const uint8_t qword_tag[] = { 0x8a, 0x2b, 0x00, 0x00 };
    for (int k = 0; k < 2; k++) {
        struct ram r;
        ram_init(&r);
        struct acpi_config cfg;
        acpi_config_default(&cfg, 2, 3 * GiB, 8 * GiB);
        cfg.phys_addr_bits = k ? 33 : 40;     /* 8 GiB: no room above 12 GiB */
        uint64_t rsdp = acpi_build_in_memory(&cfg, &r.mem, TABLES_GPA);
        struct found f = check_all(r.buf, rsdp, &cfg);
        uint32_t dlen = (uint32_t)rd(f.dsdt + 4, 4);
        const uint8_t *q = find_bytes(f.dsdt, dlen, qword_tag, sizeof(qword_tag));
        if (k) {
            assert_null(q);
        } else {
            assert_non_null(q);
            assert_int_equal(rd(q + 14, 8), 12 * GiB);           /* min */
            assert_int_equal(rd(q + 22, 8), (1ULL << 40) - 1);   /* max */
        }
        /* 32-bit hole from the end of low RAM to the IOAPIC */
        uint8_t dw[10] = { 0x87, 0x17, 0x00, 0x00, 0x0c, 0x03, 0, 0, 0, 0 };
        const uint8_t *d = find_bytes(f.dsdt, dlen, dw, 6);
        assert_non_null(d);
        bool found_hole = false;
        while (d) {
            if (rd(d + 10, 4) == 3 * GiB && rd(d + 14, 4) == 0xfebfffff)
                found_hole = true;
            d = find_bytes(d + 1, dlen - (size_t)(d + 1 - f.dsdt), dw, 6);
        }
        assert_true(found_hole);
        free(r.buf);
    }
}

/* ---- AML encoder ---- */

/* Independent decoder for PkgLength (ACPI 6.x, 20.2.4). */
static size_t decode_pkglength(const uint8_t *p, size_t *value)
{
    unsigned follow = p[0] >> 6;
    if (!follow) {
        *value = p[0] & 0x3f;
        return 1;
    }
    size_t v = p[0] & 0x0f;
    for (unsigned i = 1; i <= follow; i++)
        v |= (size_t)p[i] << (4 + 8 * (i - 1));
    *value = v;
    return follow + 1;
}

static void test_aml_pkglength(void **state)
{
    uint8_t b[4];
    assert_int_equal(aml_pkglength(b, 0), 1);
    assert_int_equal(b[0], 1);
    assert_int_equal(aml_pkglength(b, 62), 1);
    assert_int_equal(b[0], 63);
    assert_int_equal(aml_pkglength(b, 63), 2);
    assert_int_equal(b[0], 0x41);
    assert_int_equal(b[1], 0x04);                   /* 65 = 0x41 */
    assert_int_equal(aml_pkglength(b, 4093), 2);    /* 4095: last 2-byte */
    assert_int_equal(b[0], 0x4f);
    assert_int_equal(b[1], 0xff);
    assert_int_equal(aml_pkglength(b, 4094), 3);    /* 4097 */
    assert_int_equal(b[0], 0x81);
    assert_int_equal(b[1], 0x00);
    assert_int_equal(b[2], 0x01);
    assert_int_equal(aml_pkglength(b, (1u << 20) - 4), 3);
    assert_int_equal(aml_pkglength(b, (1u << 20) - 3), 4);
    assert_int_equal(b[0] >> 6, 3);
    assert_int_equal(aml_pkglength(b, (1u << 28) - 5), 4);
    assert_int_equal(aml_pkglength(b, (1u << 28) - 4), 0);   /* too long */

    static const size_t lens[] = { 0, 1, 61, 62, 63, 64, 100, 4092, 4093, 4094,
                                   70000, (1u << 20) - 3, 5000000, (1u << 28) - 5 };
    for (unsigned i = 0; i < ARRAY_SIZE(lens); i++) {
        size_t n = aml_pkglength(b, lens[i]), v;
        assert_true(n >= 1 && n <= 4);
        assert_int_equal(decode_pkglength(b, &v), n);
        assert_int_equal(v, lens[i] + n);            /* counts itself */
    }

    /* aml_end inserts it: a Package around 100 one-byte elements */
    struct aml a;
    aml_init(&a);
    size_t m = aml_package_begin(&a, 100);
    for (int i = 0; i < 100; i++)
        aml_integer(&a, 0);
    aml_end(&a, m);
    assert_false(a.error);
    assert_int_equal(a.len, 1 + 2 + 1 + 100);
    size_t v;
    assert_int_equal(decode_pkglength(a.data + 1, &v), 2);
    assert_int_equal(v, 103);
    assert_int_equal(a.data[3], 100);
    aml_free(&a);
}

static void expect_int(uint64_t v, const uint8_t *bytes, size_t n)
{
    struct aml a;
    aml_init(&a);
    aml_integer(&a, v);
    assert_false(a.error);
    assert_int_equal(a.len, n);
    assert_memory_equal(a.data, bytes, n);
    aml_free(&a);
}

static void test_aml_integers(void **state)
{
    expect_int(0, (const uint8_t[]){ 0x00 }, 1);
    expect_int(1, (const uint8_t[]){ 0x01 }, 1);
    expect_int(2, (const uint8_t[]){ 0x0a, 0x02 }, 2);
    expect_int(0xff, (const uint8_t[]){ 0x0a, 0xff }, 2);
    expect_int(0x100, (const uint8_t[]){ 0x0b, 0x00, 0x01 }, 3);
    expect_int(0xffff, (const uint8_t[]){ 0x0b, 0xff, 0xff }, 3);
    expect_int(0x10000, (const uint8_t[]){ 0x0c, 0x00, 0x00, 0x01, 0x00 }, 5);
    expect_int(0xfec00000, (const uint8_t[]){ 0x0c, 0x00, 0x00, 0xc0, 0xfe }, 5);
    expect_int(0x100000000ULL, (const uint8_t[]){ 0x0e, 0, 0, 0, 0, 1, 0, 0, 0 }, 9);
    expect_int(UINT64_MAX, (const uint8_t[]){ 0xff }, 1);
}

static void expect_name(const char *path, const void *bytes, size_t n)
{
    struct aml a;
    aml_init(&a);
    aml_namestring(&a, path);
    assert_false(a.error);
    assert_int_equal(a.len, n);
    assert_memory_equal(a.data, bytes, n);
    aml_free(&a);
}

static void test_aml_names(void **state)
{
    expect_name("_HID", "_HID", 4);
    expect_name("RTC", "RTC_", 4);
    expect_name("\\_SB", "\\_SB_", 5);
    expect_name("\\_SB.PCI0", "\\\x2e_SB_PCI0", 10);
    expect_name("\\_SB.PCI0.COM1", "\\\x2f\x03_SB_PCI0COM1", 15);
    expect_name("^^KBD", "^^KBD_", 6);
    expect_name("", "\0", 1);
    static const char *bad[] = { "1ABC", "ABCDE", "A-B", "\\_SB..X", "a" };
    for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
        struct aml a;
        aml_init(&a);
        aml_namestring(&a, bad[i]);
        assert_true(a.error);
        aml_free(&a);
    }

    struct aml a;
    aml_init(&a);
    aml_eisaid(&a, "PNP0A03");
    aml_eisaid(&a, "PNP0303");
    aml_string(&a, "QEMU0002");
    static const uint8_t want[] = { 0x0c, 0x41, 0xd0, 0x0a, 0x03, 0x0c, 0x41, 0xd0, 0x03, 0x03,
                                    0x0d, 'Q', 'E', 'M', 'U', '0', '0', '0', '2', 0 };
    assert_false(a.error);
    assert_int_equal(a.len, sizeof(want));
    assert_memory_equal(a.data, want, sizeof(want));
    aml_eisaid(&a, "pnp0a03");
    assert_true(a.error);
    aml_free(&a);
}

static void test_aml_device_method(void **state)
{
    struct aml a;
    aml_init(&a);
    size_t m = aml_device_begin(&a, "FOO");
    aml_name_int(&a, "_UID", 0);
    size_t mm = aml_method_begin(&a, "_STA", 0, false);
    aml_return(&a);
    aml_integer(&a, 0x0f);
    aml_end(&a, mm);
    aml_end(&a, m);
    static const uint8_t want[] = {
        0x5b, 0x82, 0x15, 'F', 'O', 'O', '_',
        0x08, '_', 'U', 'I', 'D', 0x00,
        0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xa4, 0x0a, 0x0f,
    };
    assert_false(a.error);
    assert_int_equal(a.len, sizeof(want));
    assert_memory_equal(a.data, want, sizeof(want));
    aml_free(&a);
}

static void test_aml_resources(void **state)
{
    struct aml r, a;
    aml_init(&r);
    aml_init(&a);
    aml_res_io(&r, 0x3f8, 0x3f8, 0, 8);
    aml_res_irq_noflags(&r, 4);
    aml_res_word_bus(&r, 0, 0xff);
    aml_res_word_io(&r, 0xd00, 0xffff);
    aml_res_dword_mem(&r, 0xa0000, 0xbffff);
    aml_res_qword_mem(&r, 0x300000000ULL, 0xffffffffffULL);
    static const uint8_t io[] = { 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08 };
    static const uint8_t irq[] = { 0x22, 0x10, 0x00 };
    static const uint8_t wbus[] = { 0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0, 0, 0x00, 0x00,
                                    0xff, 0x00, 0, 0, 0x00, 0x01 };
    assert_memory_equal(r.data, io, sizeof(io));
    assert_memory_equal(r.data + 8, irq, sizeof(irq));
    assert_memory_equal(r.data + 11, wbus, sizeof(wbus));
    const uint8_t *wio = r.data + 11 + 16;
    assert_int_equal(wio[3], 1);                         /* I/O range */
    assert_int_equal(rd(wio + 18 - 4, 2), 0xf300);      /* length */
    const uint8_t *dm = wio + 16;
    assert_int_equal(dm[0], 0x87);
    assert_int_equal(rd(dm + 1, 2), 23);
    assert_int_equal(rd(dm + 10, 4), 0xa0000);
    assert_int_equal(rd(dm + 14, 4), 0xbffff);
    assert_int_equal(rd(dm + 22, 4), 0x20000);
    const uint8_t *qm = dm + 26;
    assert_int_equal(qm[0], 0x8a);
    assert_int_equal(rd(qm + 1, 2), 43);
    assert_int_equal(rd(qm + 38, 8), 0xfd00000000ULL);
    size_t body = r.len;
    assert_int_equal(body, 8 + 3 + 16 + 16 + 26 + 46);

    aml_resource_template(&a, &r);
    assert_false(a.error);
    /* Buffer(len){... 0x79 csum} and the template sums to zero */
    assert_int_equal(a.data[0], 0x11);
    size_t pl;
    size_t n = decode_pkglength(a.data + 1, &pl);
    assert_int_equal(pl + 1, a.len);
    const uint8_t *sz = a.data + 1 + n;
    assert_int_equal(sz[0], 0x0a);
    assert_int_equal(sz[1], body + 2);
    const uint8_t *tmpl = sz + 2;
    assert_int_equal(tmpl[body], 0x79);
    assert_int_equal(sum8(tmpl, body + 2), 0);

    aml_res_irq_noflags(&r, 16);
    assert_true(r.error);
    aml_free(&r);
    aml_free(&a);
}

/* ---- the BIOS linker/loader script ---- */

static int file_index(const char *name)
{
    if (!strcmp(name, ACPI_FILE_TABLES))
        return 0;
    if (!strcmp(name, ACPI_FILE_RSDP))
        return 1;
    return -1;
}

static void test_table_loader(void **state)
{
    struct harness *h = harness_new(1 * MiB);
    assert_non_null(h);
    struct fw_cfg *fw = fw_cfg_create(&h->plat);
    assert_non_null(fw);
    struct acpi_config cfg;
    acpi_config_default(&cfg, 3, 2 * GiB, 0);
    assert_int_equal(acpi_build_fw_cfg(&cfg, fw), 0);
    /* a second time: the files exist already */
    assert_int_equal(acpi_build_fw_cfg(&cfg, fw), -1);

    size_t len[2], llen;
    const uint8_t *file[2];
    file[0] = fw_cfg_file_data(fw, ACPI_FILE_TABLES, &len[0]);
    file[1] = fw_cfg_file_data(fw, ACPI_FILE_RSDP, &len[1]);
    const uint8_t *loader = fw_cfg_file_data(fw, ACPI_FILE_LOADER, &llen);
    assert_non_null(file[0]);
    assert_non_null(file[1]);
    assert_non_null(loader);
    assert_int_equal(len[1], 36);
    assert_int_equal(llen % ACPI_LOADER_ENTRY_SIZE, 0);

    /* Execute it as firmware would: tables in "high" memory, the RSDP in
     * the F segment, then the pointer and checksum commands. */
    struct ram r;
    ram_init(&r);
    const uint64_t place[2] = { 0x200000, 0xf0000 };
    bool allocated[2] = { false, false };
    unsigned nalloc = 0, nptr = 0, nsum = 0;
    for (size_t off = 0; off < llen; off += ACPI_LOADER_ENTRY_SIZE) {
        const uint8_t *c = loader + off;
        uint32_t cmd = (uint32_t)rd(c, 4);
        switch (cmd) {
        case ACPI_LOADER_ALLOCATE: {
            assert_int_equal(c[4 + ACPI_LOADER_FILESZ - 1], 0);
            int fi = file_index((const char *)c + 4);
            assert_true(fi >= 0);
            uint32_t align = (uint32_t)rd(c + 60, 4);
            assert_true(align && !(align & (align - 1)));
            assert_int_equal(place[fi] % align, 0);
            assert_int_equal(c[64], fi == 1 ? ACPI_LOADER_ZONE_FSEG : ACPI_LOADER_ZONE_HIGH);
            memcpy(r.buf + place[fi], file[fi], len[fi]);
            allocated[fi] = true;
            nalloc++;
            break;
        }
        case ACPI_LOADER_ADD_POINTER: {
            assert_int_equal(c[4 + ACPI_LOADER_FILESZ - 1], 0);
            assert_int_equal(c[60 + ACPI_LOADER_FILESZ - 1], 0);
            int d = file_index((const char *)c + 4), s = file_index((const char *)c + 60);
            assert_true(d >= 0 && s >= 0 && allocated[d] && allocated[s]);
            uint32_t po = (uint32_t)rd(c + 116, 4);
            uint8_t size = c[120];
            assert_true(size == 1 || size == 2 || size == 4 || size == 8);
            assert_true(po + size <= len[d]);
            uint8_t *p = r.buf + place[d] + po;
            uint64_t v = rd(p, size);
            assert_true(v < len[s]);          /* an offset into the source */
            st_le(p, size, v + place[s]);
            nptr++;
            break;
        }
        case ACPI_LOADER_ADD_CHECKSUM: {
            assert_int_equal(c[4 + ACPI_LOADER_FILESZ - 1], 0);
            int fi = file_index((const char *)c + 4);
            assert_true(fi >= 0 && allocated[fi]);
            uint32_t at = (uint32_t)rd(c + 60, 4), start = (uint32_t)rd(c + 64, 4),
                     n = (uint32_t)rd(c + 68, 4);
            assert_true(at < len[fi] && start + n <= len[fi] && at >= start && at < start + n);
            uint8_t *base = r.buf + place[fi];
            base[at] = (uint8_t)(base[at] - sum8(base + start, n));
            nsum++;
            break;
        }
        default:
            fail_msg("unknown loader command %u", cmd);
        }
    }
    assert_int_equal(nalloc, 2);
    assert_true(nptr >= 8);
    assert_int_equal(nsum, 2 + 5);     /* RSDP twice, DSDT FADT MADT RSDT XSDT */
    check_all(r.buf, place[1], &cfg);

    free(r.buf);
    fw_cfg_destroy(fw);
    harness_free(h);
}

/* ---- iasl ---- */

static bool have_iasl(void)
{
    return system("command -v iasl >/dev/null 2>&1") == 0;
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = calloc(1, (size_t)sz + 1);
    if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (n)
        *n = (size_t)sz;
    return b;
}

static void test_dsdt_iasl(void **state)
{
    if (!have_iasl()) {
        fail_msg("iasl not found (install-deps.sh installs Debian's acpica-tools)");
    }
    struct ram r;
    ram_init(&r);
    struct acpi_config cfg;
    acpi_config_default(&cfg, 4, 3 * GiB, 2 * GiB);
    uint64_t rsdp = acpi_build_in_memory(&cfg, &r.mem, TABLES_GPA);
    struct found f = check_all(r.buf, rsdp, &cfg);

    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = P_tmpdir;
    char dirbuf[512];
    snprintf(dirbuf, sizeof(dirbuf), "%s/burrow-acpi-XXXXXX", tmp);
    assert_non_null(mkdtemp(dirbuf));
    char path[700], cmd[2200];
    snprintf(path, sizeof(path), "%s/dsdt.dat", dirbuf);
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(f.dsdt, 1, rd(f.dsdt + 4, 4), out), rd(f.dsdt + 4, 4));
    fclose(out);

    /* Disassemble, then compile the result back: both must be error-free. */
    snprintf(cmd, sizeof(cmd), "cd '%s' && iasl -d dsdt.dat >disasm.log 2>&1", dirbuf);
    int rc = system(cmd);
    snprintf(path, sizeof(path), "%s/disasm.log", dirbuf);
    char *log = slurp(path, NULL);
    if (rc != 0)
        print_message("%s\n", log ? log : "(no log)");
    assert_int_equal(rc, 0);
    free(log);

    snprintf(path, sizeof(path), "%s/dsdt.dsl", dirbuf);
    char *dsl = slurp(path, NULL);
    assert_non_null(dsl);
    assert_non_null(strstr(dsl, "_S5_"));
    assert_non_null(strstr(dsl, "PCI0"));
    assert_non_null(strstr(dsl, "_PRT"));
    assert_non_null(strstr(dsl, "EisaId (\"PNP0A03\")"));
    assert_non_null(strstr(dsl, "EisaId (\"PNP0501\")"));
    assert_non_null(strstr(dsl, "EisaId (\"PNP0B00\")"));
    assert_non_null(strstr(dsl, "EisaId (\"PNP0303\")"));
    assert_non_null(strstr(dsl, "EisaId (\"PNP0F13\")"));
    assert_non_null(strstr(dsl, "WordBusNumber"));
    assert_non_null(strstr(dsl, "QWordMemory"));
    assert_null(strstr(dsl, "Error"));
    free(dsl);

    snprintf(cmd, sizeof(cmd), "cd '%s' && iasl -p recompiled dsdt.dsl >compile.log 2>&1", dirbuf);
    rc = system(cmd);
    snprintf(path, sizeof(path), "%s/compile.log", dirbuf);
    log = slurp(path, NULL);
    if (rc != 0 || !log || !strstr(log, " 0 Errors"))
        print_message("%s\n", log ? log : "(no log)");
    assert_int_equal(rc, 0);
    assert_non_null(log);
    assert_non_null(strstr(log, " 0 Errors"));
    free(log);

    /* The recompiled table is byte-for-byte ours, apart from the header's
     * compiler fields and checksum, and resource end tags, where iasl
     * writes 0 ("no checksum") and we write the real one. */
    snprintf(path, sizeof(path), "%s/recompiled.aml", dirbuf);
    size_t n;
    char *aml = slurp(path, &n);
    assert_non_null(aml);
    assert_int_equal(n, rd(f.dsdt + 4, 4));
    unsigned tags = 0;
    for (size_t i = 36; i < n; i++) {
        if ((uint8_t)aml[i] == f.dsdt[i])
            continue;
        if (f.dsdt[i - 1] != 0x79 || aml[i] != 0)
            fail_msg("DSDT differs from iasl's at offset %zu", i);
        tags++;
    }
    assert_true(tags <= 8);
    free(aml);

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dirbuf);
    if (system(cmd) != 0)
        print_message("could not remove %s\n", dirbuf);
    free(r.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_in_memory),
        cmocka_unit_test(test_tables_bad_input),
        cmocka_unit_test(test_pci_windows),
        cmocka_unit_test(test_aml_pkglength),
        cmocka_unit_test(test_aml_integers),
        cmocka_unit_test(test_aml_names),
        cmocka_unit_test(test_aml_device_method),
        cmocka_unit_test(test_aml_resources),
        cmocka_unit_test(test_table_loader),
        cmocka_unit_test(test_dsdt_iasl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
