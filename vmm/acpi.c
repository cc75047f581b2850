/* ACPI table builder and AML encoder.  Table layouts from the ACPI 6.x
 * specification (chapter 5); the loader format is the one SeaBIOS reads
 * from "etc/table-loader". */
#include "vmm/acpi.h"

#include <stdlib.h>
#include <string.h>

#include "devices/acpi_pm.h"
#include "devices/fw_cfg.h"
#include "devices/guest_mem.h"
#include "devices/util.h"

/* ================================================================== */
/* AML encoder                                                         */
/* ================================================================== */

#define AML_ZERO        0x00
#define AML_ONE         0x01
#define AML_NAME        0x08
#define AML_BYTE        0x0a
#define AML_WORD        0x0b
#define AML_DWORD       0x0c
#define AML_STRING      0x0d
#define AML_QWORD       0x0e
#define AML_SCOPE       0x10
#define AML_BUFFER      0x11
#define AML_PACKAGE     0x12
#define AML_METHOD      0x14
#define AML_DUAL_NAME   0x2e
#define AML_MULTI_NAME  0x2f
#define AML_EXT         0x5b
#define AML_EXT_DEVICE  0x82
#define AML_ROOT        0x5c
#define AML_PARENT      0x5e
#define AML_RETURN      0xa4
#define AML_ONES        0xff

void aml_init(struct aml *a)
{
    memset(a, 0, sizeof(*a));
}

void aml_free(struct aml *a)
{
    free(a->data);
    memset(a, 0, sizeof(*a));
}

static bool aml_reserve(struct aml *a, size_t n)
{
    if (a->error)
        return false;
    if (a->len + n <= a->cap)
        return true;
    size_t cap = a->cap ? a->cap : 256;
    while (cap < a->len + n)
        cap *= 2;
    uint8_t *d = realloc(a->data, cap);
    if (!d) {
        a->error = true;
        return false;
    }
    a->data = d;
    a->cap = cap;
    return true;
}

void aml_emit(struct aml *a, const void *p, size_t n)
{
    if (!n || !aml_reserve(a, n))
        return;
    memcpy(a->data + a->len, p, n);
    a->len += n;
}

void aml_byte(struct aml *a, uint8_t b)
{
    aml_emit(a, &b, 1);
}

static void aml_le(struct aml *a, uint64_t v, unsigned size)
{
    uint8_t b[8];
    st_le(b, size, v);
    aml_emit(a, b, size);
}

size_t aml_pkglength(uint8_t out[4], size_t body_len)
{
    /* One byte holds up to 63 in bits 0-5; longer forms put the low nibble
     * in bits 0-3 of the lead byte and 8 more bits per following byte. */
    if (body_len + 1 <= 0x3f) {
        out[0] = (uint8_t)(body_len + 1);
        return 1;
    }
    for (size_t n = 2; n <= 4; n++) {
        size_t total = body_len + n;
        if (total < (1ULL << (4 + 8 * (n - 1)))) {
            out[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
            for (size_t i = 1; i < n; i++)
                out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
            return n;
        }
    }
    return 0;
}

void aml_integer(struct aml *a, uint64_t v)
{
    if (v == 0) {
        aml_byte(a, AML_ZERO);
    } else if (v == 1) {
        aml_byte(a, AML_ONE);
    } else if (v == UINT64_MAX) {
        aml_byte(a, AML_ONES);
    } else if (v <= 0xff) {
        aml_byte(a, AML_BYTE);
        aml_le(a, v, 1);
    } else if (v <= 0xffff) {
        aml_byte(a, AML_WORD);
        aml_le(a, v, 2);
    } else if (v <= 0xffffffff) {
        aml_byte(a, AML_DWORD);
        aml_le(a, v, 4);
    } else {
        aml_byte(a, AML_QWORD);
        aml_le(a, v, 8);
    }
}

void aml_string(struct aml *a, const char *s)
{
    for (const char *p = s; *p; p++) {
        if ((unsigned char)*p < 0x01 || (unsigned char)*p > 0x7f) {
            a->error = true;
            return;
        }
    }
    aml_byte(a, AML_STRING);
    aml_emit(a, s, strlen(s) + 1);
}

static bool lead_char(char c) { return (c >= 'A' && c <= 'Z') || c == '_'; }
static bool name_char(char c) { return lead_char(c) || (c >= '0' && c <= '9'); }

void aml_namestring(struct aml *a, const char *path)
{
    const char *p = path;
    if (*p == '\\') {
        aml_byte(a, AML_ROOT);
        p++;
    } else {
        while (*p == '^') {
            aml_byte(a, AML_PARENT);
            p++;
        }
    }
    char segs[255][4];
    unsigned n = 0;
    while (*p) {
        if (n == ARRAY_SIZE(segs) || !lead_char(*p)) {
            a->error = true;
            return;
        }
        unsigned k = 0;
        while (name_char(*p) && k < 4)
            segs[n][k++] = *p++;
        while (k < 4)
            segs[n][k++] = '_';
        n++;
        if (*p == '.')
            p++;
        else if (*p) {
            a->error = true;         /* a segment longer than 4, or junk */
            return;
        }
    }
    if (n == 0) {
        aml_byte(a, AML_ZERO);       /* NullName */
    } else if (n == 2) {
        aml_byte(a, AML_DUAL_NAME);
    } else if (n > 2) {
        aml_byte(a, AML_MULTI_NAME);
        aml_byte(a, (uint8_t)n);
    }
    for (unsigned i = 0; i < n; i++)
        aml_emit(a, segs[i], 4);
}

void aml_eisaid(struct aml *a, const char *id)
{
    /* Three letters in 5 bits each ('A' = 1), then four hex digits; the
     * result is stored most significant byte first. */
    uint32_t v = 0;
    if (strlen(id) != 7) {
        a->error = true;
        return;
    }
    for (int i = 0; i < 3; i++) {
        if (id[i] < 'A' || id[i] > 'Z') {
            a->error = true;
            return;
        }
        v = (v << 5) | (uint32_t)(id[i] - 0x40);
    }
    for (int i = 3; i < 7; i++) {
        char c = id[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else {
            a->error = true;
            return;
        }
        v = (v << 4) | d;
    }
    aml_byte(a, AML_DWORD);
    aml_le(a, __builtin_bswap32(v), 4);
}

void aml_name(struct aml *a, const char *name)
{
    aml_byte(a, AML_NAME);
    aml_namestring(a, name);
}

void aml_name_int(struct aml *a, const char *name, uint64_t v)
{
    aml_name(a, name);
    aml_integer(a, v);
}

void aml_name_string(struct aml *a, const char *name, const char *s)
{
    aml_name(a, name);
    aml_string(a, s);
}

void aml_name_eisaid(struct aml *a, const char *name, const char *id)
{
    aml_name(a, name);
    aml_eisaid(a, id);
}

void aml_return(struct aml *a)
{
    aml_byte(a, AML_RETURN);
}

void aml_end(struct aml *a, size_t mark)
{
    if (a->error)
        return;
    if (mark > a->len) {
        a->error = true;
        return;
    }
    uint8_t pl[4];
    size_t n = aml_pkglength(pl, a->len - mark);
    if (!n || !aml_reserve(a, n)) {
        a->error = true;
        return;
    }
    memmove(a->data + mark + n, a->data + mark, a->len - mark);
    memcpy(a->data + mark, pl, n);
    a->len += n;
}

void aml_buffer(struct aml *a, const void *bytes, size_t len)
{
    aml_byte(a, AML_BUFFER);
    size_t mark = a->len;
    aml_integer(a, len);
    aml_emit(a, bytes, len);
    aml_end(a, mark);
}

size_t aml_scope_begin(struct aml *a, const char *name)
{
    aml_byte(a, AML_SCOPE);
    size_t mark = a->len;
    aml_namestring(a, name);
    return mark;
}

size_t aml_device_begin(struct aml *a, const char *name)
{
    aml_byte(a, AML_EXT);
    aml_byte(a, AML_EXT_DEVICE);
    size_t mark = a->len;
    aml_namestring(a, name);
    return mark;
}

size_t aml_method_begin(struct aml *a, const char *name, unsigned nargs, bool serialized)
{
    if (nargs > 7)
        a->error = true;
    aml_byte(a, AML_METHOD);
    size_t mark = a->len;
    aml_namestring(a, name);
    aml_byte(a, (uint8_t)((nargs & 7) | (serialized ? 0x08 : 0)));
    return mark;
}

size_t aml_package_begin(struct aml *a, unsigned nelements)
{
    if (nelements > 255)
        a->error = true;
    aml_byte(a, AML_PACKAGE);
    size_t mark = a->len;
    aml_byte(a, (uint8_t)nelements);
    return mark;
}

/* --- resource descriptors --- */

#define RES_IO_DESC        0x47   /* small item 0x08, length 7 */
#define RES_IRQ_NOFLAGS    0x22   /* small item 0x04, length 2 */
#define RES_END_TAG        0x79   /* small item 0x0f, length 1 */
#define RES_DWORD_ADDR     0x87
#define RES_WORD_ADDR      0x88
#define RES_QWORD_ADDR     0x8a
#define RES_TYPE_MEM       0
#define RES_TYPE_IO        1
#define RES_TYPE_BUS       2
/* General flags: producer, positive decode, fixed min and max */
#define RES_FLAGS_FIXED    0x0c
#define RES_IO_ENTIRE_RANGE 0x03
#define RES_MEM_CACHEABLE_RW 0x03

void aml_res_io(struct aml *r, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
    uint8_t d[8] = { RES_IO_DESC, 0x01 /* 16-bit decode */ };
    st_le(d + 2, 2, min);
    st_le(d + 4, 2, max);
    d[6] = align;
    d[7] = len;
    aml_emit(r, d, sizeof(d));
}

void aml_res_irq_noflags(struct aml *r, unsigned irq)
{
    if (irq > 15) {
        r->error = true;
        return;
    }
    uint8_t d[3] = { RES_IRQ_NOFLAGS };
    st_le(d + 1, 2, 1u << irq);
    aml_emit(r, d, sizeof(d));
}

/* Word/DWord/QWord address space descriptor: granularity, min, max,
 * translation offset, length, each `w` bytes wide. */
static void res_address(struct aml *r, uint8_t tag, unsigned w, uint8_t type,
                        uint8_t specific, uint64_t min, uint64_t max)
{
    uint8_t d[3 + 3 + 5 * 8] = { tag };
    unsigned body = 3 + 5 * w;
    st_le(d + 1, 2, body);
    d[3] = type;
    d[4] = RES_FLAGS_FIXED;
    d[5] = specific;
    uint8_t *f = d + 6;
    st_le(f + 0 * w, w, 0);               /* granularity */
    st_le(f + 1 * w, w, min);
    st_le(f + 2 * w, w, max);
    st_le(f + 3 * w, w, 0);               /* translation */
    st_le(f + 4 * w, w, max - min + 1);   /* length */
    aml_emit(r, d, 3 + body);
}

void aml_res_word_bus(struct aml *r, uint16_t min, uint16_t max)
{
    res_address(r, RES_WORD_ADDR, 2, RES_TYPE_BUS, 0, min, max);
}

void aml_res_word_io(struct aml *r, uint16_t min, uint16_t max)
{
    res_address(r, RES_WORD_ADDR, 2, RES_TYPE_IO, RES_IO_ENTIRE_RANGE, min, max);
}

void aml_res_dword_mem(struct aml *r, uint32_t min, uint32_t max)
{
    res_address(r, RES_DWORD_ADDR, 4, RES_TYPE_MEM, RES_MEM_CACHEABLE_RW, min, max);
}

void aml_res_qword_mem(struct aml *r, uint64_t min, uint64_t max)
{
    res_address(r, RES_QWORD_ADDR, 8, RES_TYPE_MEM, RES_MEM_CACHEABLE_RW, min, max);
}

void aml_resource_template(struct aml *a, struct aml *r)
{
    /* End tag: its checksum byte makes the whole template sum to zero. */
    uint8_t sum = RES_END_TAG;
    for (size_t i = 0; i < r->len; i++)
        sum = (uint8_t)(sum + r->data[i]);
    aml_byte(r, RES_END_TAG);
    aml_byte(r, (uint8_t)-sum);
    if (r->error) {
        a->error = true;
        return;
    }
    aml_buffer(a, r->data, r->len);
}

/* ================================================================== */
/* Tables                                                              */
/* ================================================================== */

enum { F_TABLES, F_RSDP, F_COUNT };
static const char *const file_names[F_COUNT] = { ACPI_FILE_TABLES, ACPI_FILE_RSDP };

/* A pointer field holding an offset into file src, to be relocated by the
 * address where src ends up. */
struct acpi_ptr {
    uint8_t dest, src, size;
    uint32_t offset;
};

/* data[at] made so that [start, start+len) sums to zero. */
struct acpi_sum {
    uint8_t file;
    uint32_t at, start, len;
};

struct acpi_blob {
    struct aml f[F_COUNT];
    struct acpi_ptr ptrs[16];
    unsigned nptrs;
    struct acpi_sum sums[16];
    unsigned nsums;
    bool error;
};

#define HDR_LEN 36

static void blob_free(struct acpi_blob *b)
{
    for (int i = 0; i < F_COUNT; i++)
        aml_free(&b->f[i]);
}

static void pad_to(struct aml *a, size_t align)
{
    static const uint8_t zeros[64];
    while (!a->error && a->len % align)
        aml_emit(a, zeros, MIN(align - a->len % align, sizeof(zeros)));
}

static uint8_t *at(struct acpi_blob *b, int file, size_t off)
{
    return b->f[file].data + off;
}

static void add_ptr(struct acpi_blob *b, int dest, size_t off, unsigned size, int src, size_t src_off)
{
    if (b->nptrs == ARRAY_SIZE(b->ptrs) || b->f[dest].error || off + size > b->f[dest].len) {
        b->error = true;
        return;
    }
    st_le(at(b, dest, off), size, src_off);
    b->ptrs[b->nptrs++] = (struct acpi_ptr){ (uint8_t)dest, (uint8_t)src, (uint8_t)size, (uint32_t)off };
}

static void add_sum(struct acpi_blob *b, int file, size_t at_off, size_t start, size_t len)
{
    if (b->nsums == ARRAY_SIZE(b->sums)) {
        b->error = true;
        return;
    }
    b->sums[b->nsums++] = (struct acpi_sum){ (uint8_t)file, (uint32_t)at_off,
                                             (uint32_t)start, (uint32_t)len };
}

/* Starts a table in the tables file: header with length left at zero. */
static size_t table_begin(struct acpi_blob *b, const char sig[4], uint8_t rev)
{
    struct aml *t = &b->f[F_TABLES];
    pad_to(t, 8);
    size_t start = t->len;
    uint8_t h[HDR_LEN] = { 0 };
    memcpy(h, sig, 4);
    h[8] = rev;
    memcpy(h + 10, "BURROW", 6);              /* OEM ID */
    memcpy(h + 16, "BURROWVM", 8);            /* OEM table ID */
    st_le(h + 24, 4, 1);                      /* OEM revision */
    memcpy(h + 28, "BRRW", 4);                /* creator ID */
    st_le(h + 32, 4, 1);                      /* creator revision */
    aml_emit(t, h, sizeof(h));
    return start;
}

static void table_end(struct acpi_blob *b, size_t start)
{
    struct aml *t = &b->f[F_TABLES];
    if (t->error)
        return;
    st_le(at(b, F_TABLES, start + 4), 4, t->len - start);
    add_sum(b, F_TABLES, start + 9, start, t->len - start);
}

/* Generic Address Structure in system I/O space. */
static void put_gas_io(uint8_t *p, unsigned bytes, unsigned access, uint64_t port)
{
    p[0] = 1;                       /* system I/O */
    p[1] = (uint8_t)(bytes * 8);    /* bit width */
    p[2] = 0;                       /* bit offset */
    p[3] = (uint8_t)access;         /* 1 byte, 2 word, 3 dword */
    st_le(p + 4, 8, port);
}

static size_t build_facs(struct acpi_blob *b)
{
    struct aml *t = &b->f[F_TABLES];
    pad_to(t, ACPI_TABLE_ALIGN);
    size_t start = t->len;
    uint8_t f[64] = { 'F', 'A', 'C', 'S' };
    st_le(f + 4, 4, sizeof(f));
    f[32] = 2;                      /* version */
    aml_emit(t, f, sizeof(f));
    return start;
}

static void dsdt_isa_devices(struct aml *d, const struct acpi_config *cfg)
{
    size_t m;
    struct aml r;

    if (cfg->com1_port) {
        m = aml_device_begin(d, "COM1");
        aml_name_eisaid(d, "_HID", "PNP0501");
        aml_name_int(d, "_UID", 1);
        aml_name(d, "_CRS");
        aml_init(&r);
        aml_res_io(&r, cfg->com1_port, cfg->com1_port, 0, 8);
        aml_res_irq_noflags(&r, cfg->com1_irq);
        aml_resource_template(d, &r);
        aml_free(&r);
        aml_end(d, m);
    }
    if (cfg->rtc) {
        m = aml_device_begin(d, "RTC");
        aml_name_eisaid(d, "_HID", "PNP0B00");
        aml_name(d, "_CRS");
        aml_init(&r);
        aml_res_io(&r, 0x70, 0x70, 1, 2);
        aml_res_irq_noflags(&r, 8);
        aml_resource_template(d, &r);
        aml_free(&r);
        aml_end(d, m);
    }
    if (cfg->ps2) {
        m = aml_device_begin(d, "KBD");
        aml_name_eisaid(d, "_HID", "PNP0303");
        aml_name(d, "_CRS");
        aml_init(&r);
        aml_res_io(&r, 0x60, 0x60, 1, 1);
        aml_res_io(&r, 0x64, 0x64, 1, 1);
        aml_res_irq_noflags(&r, 1);
        aml_resource_template(d, &r);
        aml_free(&r);
        aml_end(d, m);

        m = aml_device_begin(d, "MOU");
        aml_name_eisaid(d, "_HID", "PNP0F13");
        aml_name(d, "_CRS");
        aml_init(&r);
        aml_res_irq_noflags(&r, 12);
        aml_resource_template(d, &r);
        aml_free(&r);
        aml_end(d, m);
    }
    if (cfg->fw_cfg) {
        /* Lets the guest's fw_cfg driver find the ports. */
        m = aml_device_begin(d, "FWCF");
        aml_name_string(d, "_HID", "QEMU0002");
        aml_name_int(d, "_STA", 0x0b);    /* present, enabled, not shown */
        aml_name(d, "_CRS");
        aml_init(&r);
        aml_res_io(&r, FW_CFG_PORT_SEL, FW_CFG_PORT_SEL, 1, FW_CFG_PORT_LEN);
        aml_resource_template(d, &r);
        aml_free(&r);
        aml_end(d, m);
    }
}

static uint64_t pci64_window_base(const struct acpi_config *cfg)
{
    return ALIGN_UP(4 * GiB + cfg->highmem_size, GiB);
}

static uint64_t pci64_window_end(const struct acpi_config *cfg)
{
    unsigned bits = cfg->phys_addr_bits ? cfg->phys_addr_bits : 40;
    if (bits > 52)
        bits = 52;
    return (1ULL << bits) - 1;
}

static void dsdt_pci0(struct aml *d, const struct acpi_config *cfg)
{
    size_t m = aml_device_begin(d, "PCI0");
    aml_name_eisaid(d, "_HID", "PNP0A03");
    aml_name_int(d, "_UID", 0);
    aml_name_int(d, "_ADR", 0);
    aml_name_int(d, "_BBN", 0);

    struct aml r;
    aml_init(&r);
    aml_res_word_bus(&r, 0x00, 0xff);
    aml_res_io(&r, 0xcf8, 0xcf8, 1, 8);                 /* config ports */
    aml_res_word_io(&r, 0x0000, 0x0cf7);
    aml_res_word_io(&r, 0x0d00, 0xffff);
    aml_res_dword_mem(&r, 0x000a0000, 0x000bffff);      /* VGA window */
    if (cfg->lowmem_end < ACPI_IOAPIC_ADDR)
        aml_res_dword_mem(&r, (uint32_t)cfg->lowmem_end, ACPI_IOAPIC_ADDR - 1);
    uint64_t base64 = pci64_window_base(cfg), end64 = pci64_window_end(cfg);
    if (base64 < end64)
        aml_res_qword_mem(&r, base64, end64);
    aml_name(d, "_CRS");
    aml_resource_template(d, &r);
    aml_free(&r);

    /* Every slot's INTA-INTD, swizzled onto GSIs 16-19. */
    aml_name(d, "_PRT");
    size_t pm = aml_package_begin(d, 32 * 4);
    for (unsigned slot = 0; slot < 32; slot++) {
        for (unsigned pin = 0; pin < 4; pin++) {
            size_t em = aml_package_begin(d, 4);
            aml_integer(d, ((uint64_t)slot << 16) | 0xffff);
            aml_integer(d, pin);
            aml_integer(d, 0);                          /* source: a GSI */
            aml_integer(d, 16 + ((slot + pin) & 3));
            aml_end(d, em);
        }
    }
    aml_end(d, pm);

    dsdt_isa_devices(d, cfg);
    aml_end(d, m);
}

static void build_dsdt_body(struct aml *d, const struct acpi_config *cfg)
{
    size_t sb = aml_scope_begin(d, "_SB");    /* the DSDT body is in the root scope */
    dsdt_pci0(d, cfg);
    for (unsigned i = 0; i < cfg->ncpus; i++) {
        char name[5] = "C000";
        static const char hex[] = "0123456789ABCDEF";
        name[1] = hex[(i >> 8) & 15];
        name[2] = hex[(i >> 4) & 15];
        name[3] = hex[i & 15];
        size_t m = aml_device_begin(d, name);
        aml_name_string(d, "_HID", "ACPI0007");
        aml_name_int(d, "_UID", i);
        aml_end(d, m);
    }
    aml_end(d, sb);

    /* \_S5: SLP_TYPa, SLP_TYPb, reserved, reserved */
    aml_name(d, "_S5");
    size_t pm = aml_package_begin(d, 4);
    aml_integer(d, ACPI_PM_SLP_TYP_S5);
    aml_integer(d, ACPI_PM_SLP_TYP_S5);
    aml_integer(d, 0);
    aml_integer(d, 0);
    aml_end(d, pm);
}

static size_t build_dsdt(struct acpi_blob *b, const struct acpi_config *cfg)
{
    size_t start = table_begin(b, "DSDT", 2);   /* rev 2: 64-bit integers */
    struct aml body;
    aml_init(&body);
    build_dsdt_body(&body, cfg);
    if (body.error)
        b->error = true;
    else
        aml_emit(&b->f[F_TABLES], body.data, body.len);
    aml_free(&body);
    table_end(b, start);
    return start;
}

#define FADT_LEN 276
#define FADT_WBINVD          (1u << 0)
#define FADT_PROC_C1         (1u << 2)
#define FADT_SLP_BUTTON      (1u << 5)    /* no fixed sleep button */
#define FADT_RESET_REG_SUP   (1u << 10)
#define FADT_BOOT_LEGACY_DEVICES (1u << 0)
#define FADT_BOOT_8042           (1u << 1)

static size_t build_fadt(struct acpi_blob *b, const struct acpi_config *cfg,
                         size_t facs, size_t dsdt)
{
    size_t start = table_begin(b, "FACP", 6);
    uint8_t p[FADT_LEN] = { 0 };          /* header part unused: offsets as in the spec */
    uint16_t pm = cfg->pm_base;

    p[45] = 0;                            /* preferred PM profile: unspecified */
    st_le(p + 46, 2, cfg->sci_gsi);
    st_le(p + 48, 4, 0);                  /* SMI_CMD: ACPI mode is always on */
    st_le(p + 56, 4, pm + ACPI_PM1_EVT_OFF);
    st_le(p + 64, 4, pm + ACPI_PM1_CNT_OFF);
    st_le(p + 76, 4, pm + ACPI_PM_TMR_OFF);
    st_le(p + 80, 4, pm + ACPI_GPE0_OFF);
    p[88] = ACPI_PM1_EVT_LEN;
    p[89] = ACPI_PM1_CNT_LEN;
    p[91] = ACPI_PM_TMR_LEN;
    p[92] = ACPI_GPE0_LEN;
    st_le(p + 96, 2, 0x0fff);             /* P_LVL2_LAT > 100: no C2 */
    st_le(p + 98, 2, 0x0fff);             /* P_LVL3_LAT > 1000: no C3 */
    p[108] = cfg->rtc ? 0x32 : 0;         /* CMOS century byte */
    st_le(p + 109, 2, (cfg->ps2 ? FADT_BOOT_8042 : 0) | FADT_BOOT_LEGACY_DEVICES);
    st_le(p + 112, 4, FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_RESET_REG_SUP);
    put_gas_io(p + 116, 1, 1, cfg->reset_port);
    p[128] = cfg->reset_value;
    p[131] = 0;                           /* FADT minor version */
    put_gas_io(p + 148, ACPI_PM1_EVT_LEN, 2, pm + ACPI_PM1_EVT_OFF);
    put_gas_io(p + 172, ACPI_PM1_CNT_LEN, 2, pm + ACPI_PM1_CNT_OFF);
    put_gas_io(p + 208, ACPI_PM_TMR_LEN, 3, pm + ACPI_PM_TMR_OFF);
    put_gas_io(p + 220, ACPI_GPE0_LEN, 1, pm + ACPI_GPE0_OFF);
    memcpy(p + 268, "BURROW  ", 8);       /* hypervisor vendor identity */
    aml_emit(&b->f[F_TABLES], p + HDR_LEN, FADT_LEN - HDR_LEN);

    add_ptr(b, F_TABLES, start + 36, 4, F_TABLES, facs);    /* FIRMWARE_CTRL */
    add_ptr(b, F_TABLES, start + 40, 4, F_TABLES, dsdt);    /* DSDT */
    add_ptr(b, F_TABLES, start + 132, 8, F_TABLES, facs);   /* X_FIRMWARE_CTRL */
    add_ptr(b, F_TABLES, start + 140, 8, F_TABLES, dsdt);   /* X_DSDT */
    table_end(b, start);
    return start;
}

#define MADT_PCAT_COMPAT 1
#define MADT_LAPIC       0
#define MADT_IOAPIC      1
#define MADT_ISO         2
#define MADT_LAPIC_NMI   4
#define MPS_INTI_POLARITY_HIGH 0x1
#define MPS_INTI_TRIGGER_LEVEL 0xc

static size_t build_madt(struct acpi_blob *b, const struct acpi_config *cfg)
{
    struct aml *t = &b->f[F_TABLES];
    size_t start = table_begin(b, "APIC", 4);
    uint8_t h[8];
    st_le(h, 4, ACPI_LAPIC_ADDR);
    st_le(h + 4, 4, MADT_PCAT_COMPAT);
    aml_emit(t, h, sizeof(h));

    for (unsigned i = 0; i < cfg->ncpus; i++) {
        uint8_t e[8] = { MADT_LAPIC, 8, (uint8_t)i, (uint8_t)i };
        st_le(e + 4, 4, 1);                          /* enabled */
        aml_emit(t, e, sizeof(e));
    }
    uint8_t io[12] = { MADT_IOAPIC, 12, (uint8_t)cfg->ncpus, 0 };
    st_le(io + 4, 4, ACPI_IOAPIC_ADDR);
    st_le(io + 8, 4, 0);                             /* GSI base */
    aml_emit(t, io, sizeof(io));

    /* The PIT's IRQ0 is wired to IOAPIC pin 2. */
    uint8_t iso0[10] = { MADT_ISO, 10, 0, 0 };
    st_le(iso0 + 4, 4, 2);
    st_le(iso0 + 8, 2, 0);
    aml_emit(t, iso0, sizeof(iso0));
    /* The SCI is level-triggered, active high. */
    uint8_t iso9[10] = { MADT_ISO, 10, 0, (uint8_t)cfg->sci_gsi };
    st_le(iso9 + 4, 4, cfg->sci_gsi);
    st_le(iso9 + 8, 2, MPS_INTI_POLARITY_HIGH | MPS_INTI_TRIGGER_LEVEL);
    aml_emit(t, iso9, sizeof(iso9));

    uint8_t nmi[6] = { MADT_LAPIC_NMI, 6, 0xff /* all processors */, 0, 0, 1 /* LINT1 */ };
    aml_emit(t, nmi, sizeof(nmi));
    table_end(b, start);
    return start;
}

static size_t build_sdt(struct acpi_blob *b, const char sig[4], unsigned ptr_size,
                        const size_t *tables, unsigned n)
{
    size_t start = table_begin(b, sig, 1);
    for (unsigned i = 0; i < n; i++) {
        static const uint8_t zeros[8];
        size_t off = b->f[F_TABLES].len;
        aml_emit(&b->f[F_TABLES], zeros, ptr_size);
        add_ptr(b, F_TABLES, off, ptr_size, F_TABLES, tables[i]);
    }
    table_end(b, start);
    return start;
}

static void build_rsdp(struct acpi_blob *b, size_t rsdt, size_t xsdt)
{
    uint8_t r[36] = { 0 };
    memcpy(r, "RSD PTR ", 8);
    memcpy(r + 9, "BURROW", 6);
    r[15] = 2;                                       /* revision: ACPI 2.0+ */
    st_le(r + 20, 4, sizeof(r));
    aml_emit(&b->f[F_RSDP], r, sizeof(r));
    add_ptr(b, F_RSDP, 16, 4, F_TABLES, rsdt);
    add_ptr(b, F_RSDP, 24, 8, F_TABLES, xsdt);
    add_sum(b, F_RSDP, 8, 0, 20);                    /* ACPI 1.0 part first */
    add_sum(b, F_RSDP, 32, 0, 36);
}

static bool config_ok(const struct acpi_config *cfg)
{
    if (cfg->ncpus < 1 || cfg->ncpus > ACPI_MAX_CPUS) {
        log_error("acpi: %u CPUs not supported (1-%u)", cfg->ncpus, ACPI_MAX_CPUS);
        return false;
    }
    if (cfg->lowmem_end > ACPI_IOAPIC_ADDR || cfg->lowmem_end < MiB) {
        log_error("acpi: low RAM end 0x%llx out of range", (unsigned long long)cfg->lowmem_end);
        return false;
    }
    if (cfg->sci_gsi > 15 || (cfg->com1_port && cfg->com1_irq > 15)) {
        log_error("acpi: ISA interrupt out of range");
        return false;
    }
    return true;
}

static int build(const struct acpi_config *cfg, struct acpi_blob *b)
{
    memset(b, 0, sizeof(*b));
    if (!config_ok(cfg))
        return -1;
    size_t facs = build_facs(b);
    size_t dsdt = build_dsdt(b, cfg);
    size_t fadt = build_fadt(b, cfg, facs, dsdt);
    size_t madt = build_madt(b, cfg);
    size_t list[] = { fadt, madt };
    size_t rsdt = build_sdt(b, "RSDT", 4, list, ARRAY_SIZE(list));
    size_t xsdt = build_sdt(b, "XSDT", 8, list, ARRAY_SIZE(list));
    build_rsdp(b, rsdt, xsdt);
    for (int i = 0; i < F_COUNT; i++)
        if (b->f[i].error)
            b->error = true;
    if (b->error) {
        log_error("acpi: building the tables failed");
        blob_free(b);
        return -1;
    }
    return 0;
}

void acpi_config_default(struct acpi_config *cfg, unsigned ncpus,
                         uint64_t lowmem_end, uint64_t highmem_size)
{
    *cfg = (struct acpi_config){
        .ncpus = ncpus,
        .lowmem_end = lowmem_end,
        .highmem_size = highmem_size,
        .pm_base = ACPI_PM_BASE,
        .sci_gsi = ACPI_PM_SCI_GSI,
        .reset_port = 0xcf9,
        .reset_value = 0x06,
        .com1_port = 0x3f8,
        .com1_irq = 4,
        .ps2 = true,
        .rtc = true,
        .fw_cfg = true,
    };
}

/* ---- output for SeaBIOS: files and loader commands ---- */

static void loader_name(uint8_t *dst, const char *name)
{
    memcpy(dst, name, strlen(name));      /* names are < ACPI_LOADER_FILESZ */
}

int acpi_build_fw_cfg(const struct acpi_config *cfg, struct fw_cfg *fw)
{
    struct acpi_blob b;
    if (build(cfg, &b) < 0)
        return -1;

    size_t n = F_COUNT + b.nptrs + b.nsums;
    uint8_t *cmds = calloc(n, ACPI_LOADER_ENTRY_SIZE);
    if (!cmds) {
        blob_free(&b);
        return -1;
    }
    uint8_t *c = cmds;
    /* Tables anywhere in high memory; the RSDP where the OS scans for it. */
    for (int i = 0; i < F_COUNT; i++, c += ACPI_LOADER_ENTRY_SIZE) {
        st_le(c, 4, ACPI_LOADER_ALLOCATE);
        loader_name(c + 4, file_names[i]);
        st_le(c + 60, 4, i == F_RSDP ? 16 : ACPI_TABLE_ALIGN);
        c[64] = i == F_RSDP ? ACPI_LOADER_ZONE_FSEG : ACPI_LOADER_ZONE_HIGH;
    }
    for (unsigned i = 0; i < b.nptrs; i++, c += ACPI_LOADER_ENTRY_SIZE) {
        st_le(c, 4, ACPI_LOADER_ADD_POINTER);
        loader_name(c + 4, file_names[b.ptrs[i].dest]);
        loader_name(c + 60, file_names[b.ptrs[i].src]);
        st_le(c + 116, 4, b.ptrs[i].offset);
        c[120] = b.ptrs[i].size;
    }
    /* Checksums last: they cover the patched pointers. */
    for (unsigned i = 0; i < b.nsums; i++, c += ACPI_LOADER_ENTRY_SIZE) {
        st_le(c, 4, ACPI_LOADER_ADD_CHECKSUM);
        loader_name(c + 4, file_names[b.sums[i].file]);
        st_le(c + 60, 4, b.sums[i].at);
        st_le(c + 64, 4, b.sums[i].start);
        st_le(c + 68, 4, b.sums[i].len);
    }

    int r = 0;
    if (fw_cfg_add_file(fw, ACPI_FILE_TABLES, b.f[F_TABLES].data, b.f[F_TABLES].len) < 0 ||
        fw_cfg_add_file(fw, ACPI_FILE_RSDP, b.f[F_RSDP].data, b.f[F_RSDP].len) < 0 ||
        fw_cfg_add_file(fw, ACPI_FILE_LOADER, cmds, n * ACPI_LOADER_ENTRY_SIZE) < 0)
        r = -1;
    free(cmds);
    blob_free(&b);
    return r;
}

/* ---- output for direct boot: patched in place ---- */

static void relocate(struct acpi_blob *b, const uint64_t addr[F_COUNT])
{
    for (unsigned i = 0; i < b->nptrs; i++) {
        const struct acpi_ptr *p = &b->ptrs[i];
        uint8_t *d = at(b, p->dest, p->offset);
        st_le(d, p->size, ld_le(d, p->size) + addr[p->src]);
    }
    for (unsigned i = 0; i < b->nsums; i++) {
        const struct acpi_sum *s = &b->sums[i];
        uint8_t sum = 0;
        for (uint32_t k = 0; k < s->len; k++)
            sum = (uint8_t)(sum + *at(b, s->file, s->start + k));
        *at(b, s->file, s->at) = (uint8_t)(*at(b, s->file, s->at) - sum);
    }
}

size_t acpi_tables_size(const struct acpi_config *cfg)
{
    struct acpi_blob b;
    if (build(cfg, &b) < 0)
        return 0;
    size_t len = b.f[F_TABLES].len;
    blob_free(&b);
    return len;
}

uint64_t acpi_build_in_memory(const struct acpi_config *cfg, struct guest_mem *mem,
                              uint64_t base_gpa)
{
    if (base_gpa % ACPI_TABLE_ALIGN) {
        log_error("acpi: table address 0x%llx not aligned", (unsigned long long)base_gpa);
        return 0;
    }
    struct acpi_blob b;
    if (build(cfg, &b) < 0)
        return 0;
    uint64_t len = b.f[F_TABLES].len;
    uint64_t addr[F_COUNT] = { base_gpa, ACPI_RSDP_ADDR };
    uint64_t rsdp_end = ACPI_RSDP_ADDR + b.f[F_RSDP].len;
    if (base_gpa < rsdp_end && ACPI_RSDP_ADDR < base_gpa + len) {
        log_error("acpi: tables at 0x%llx overlap the RSDP", (unsigned long long)base_gpa);
        blob_free(&b);
        return 0;
    }
    if (base_gpa + len > ACPI_IOAPIC_ADDR) {
        log_error("acpi: tables must lie below 4 GiB");
        blob_free(&b);
        return 0;
    }
    relocate(&b, addr);
    uint64_t ret = ACPI_RSDP_ADDR;
    if (guest_mem_write(mem, base_gpa, b.f[F_TABLES].data, len) < 0 ||
        guest_mem_write(mem, ACPI_RSDP_ADDR, b.f[F_RSDP].data, b.f[F_RSDP].len) < 0) {
        log_error("acpi: tables do not fit in guest RAM");
        ret = 0;
    }
    blob_free(&b);
    return ret;
}
