/* SMBIOS tables: the structure table walked generically (formatted length,
 * string sets), every structure type checked against DSP0134 3.0 layouts,
 * counts and sizes checked against the machine described, both entry
 * points checked, the fw_cfg files checked for what SeaBIOS accepts, and
 * the tables fed to dmidecode (--from-dump) when it is installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "devices/fw_cfg.h"
#include "devices/util.h"
#include "support/harness_platform.h"
#include "vmm/smbios.h"

#define MAX_STRUCTS 4096

struct sm {
    uint8_t type, len;
    uint16_t handle;
    const uint8_t *f;              /* formatted area */
    const char *str[256];          /* str[1..nstr] */
    unsigned nstr;
    size_t size;                   /* formatted area + strings + terminator */
};

struct table {
    struct sm *s;
    unsigned n;
    unsigned count[256];
    size_t max_size;
};

static uint64_t rd(const uint8_t *p, unsigned n)
{
    return ld_le(p, n);
}

static uint8_t sum8(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    for (size_t i = 0; i < n; i++)
        s = (uint8_t)(s + p[i]);
    return s;
}

/* Offsets of string-number fields, per type (0 ends a list). */
static const uint8_t *string_fields(uint8_t type)
{
    static const uint8_t t0[] = { 0x04, 0x05, 0x08, 0 };
    static const uint8_t t1[] = { 0x04, 0x05, 0x06, 0x07, 0x19, 0x1a, 0 };
    static const uint8_t t3[] = { 0x04, 0x06, 0x07, 0x08, 0x15, 0 };  /* no contained elements */
    static const uint8_t t4[] = { 0x04, 0x07, 0x10, 0x20, 0x21, 0x22, 0 };
    static const uint8_t t17[] = { 0x10, 0x11, 0x17, 0x18, 0x19, 0x1a, 0 };
    static const uint8_t none[] = { 0 };
    switch (type) {
    case 0: return t0;
    case 1: return t1;
    case 3: return t3;
    case 4: return t4;
    case 17: return t17;
    default: return none;
    }
}

/* Walks the table: each structure's formatted area, then its strings up to
 * the double NUL; every string number must name a string and every string
 * must be named; handles unique; type 127 last. */
static struct table parse(const uint8_t *t, size_t len)
{
    struct table tb = { 0 };
    tb.s = calloc(MAX_STRUCTS, sizeof(*tb.s));
    assert_non_null(tb.s);
    size_t off = 0;
    while (off < len) {
        assert_true(tb.n < MAX_STRUCTS);
        struct sm *s = &tb.s[tb.n];
        assert_true(off + 4 <= len);
        s->f = t + off;
        s->type = t[off];
        s->len = t[off + 1];
        s->handle = (uint16_t)rd(t + off + 2, 2);
        assert_true(s->len >= 4);
        size_t p = off + s->len;
        assert_true(p + 2 <= len);
        if (t[p] == 0) {
            /* No strings: the set is two NULs. */
            assert_int_equal(t[p + 1], 0);
            p += 2;
        } else {
            while (t[p] != 0) {
                const char *str = (const char *)t + p;
                size_t n = strnlen(str, len - p);
                assert_true(p + n < len);            /* NUL-terminated in the table */
                assert_true(s->nstr < 255);
                s->str[++s->nstr] = str;
                p += n + 1;
                assert_true(p < len);
            }
            p++;                                     /* the set's final NUL */
        }
        s->size = p - off;
        tb.max_size = MAX(tb.max_size, s->size);

        bool used[256] = { false };
        for (const uint8_t *fo = string_fields(s->type); *fo; fo++) {
            assert_true(*fo < s->len);
            uint8_t idx = s->f[*fo];
            assert_true(idx <= s->nstr);
            used[idx] = true;
        }
        for (unsigned i = 1; i <= s->nstr; i++)
            assert_true(used[i]);
        for (unsigned i = 0; i < tb.n; i++)
            assert_int_not_equal(tb.s[i].handle, s->handle);
        tb.count[s->type]++;
        tb.n++;
        off = p;
    }
    assert_int_equal(off, len);
    assert_true(tb.n > 0);
    assert_int_equal(tb.s[tb.n - 1].type, 127);
    assert_int_equal(tb.count[127], 1);
    return tb;
}

static const char *sstr(const struct sm *s, unsigned off)
{
    uint8_t idx = s->f[off];
    return idx ? s->str[idx] : NULL;
}

static const struct sm *find_handle(const struct table *tb, uint16_t h)
{
    for (unsigned i = 0; i < tb->n; i++)
        if (tb->s[i].handle == h)
            return &tb->s[i];
    return NULL;
}

static void uuid_text(const uint8_t u[16], char out[37])
{
    smbios_uuid_format(u, out);
}

static uint64_t dimm_bytes(const struct sm *s)
{
    uint16_t size = (uint16_t)rd(s->f + 0x0c, 2);
    if (size == 0x7fff) {
        assert_int_equal(s->len >= 0x20, 1);
        uint32_t ext = (uint32_t)rd(s->f + 0x1c, 4) & 0x7fffffff;
        assert_true(ext >= 0x7fff);                  /* only used when needed */
        return (uint64_t)ext * MiB;
    }
    assert_int_not_equal(size, 0xffff);
    assert_int_not_equal(size, 0);
    return (size & 0x8000) ? (uint64_t)(size & 0x7fff) * KiB : (uint64_t)size * MiB;
}

/* Everything about one built table set. */
static void check_all(const struct smbios_config *cfg, const uint8_t *ep, size_t ep_len,
                      const uint8_t *t, size_t tlen)
{
    struct table tb = parse(t, tlen);
    uint64_t total = cfg->lowmem_end + cfg->highmem_size;
    unsigned ndimm = (unsigned)((total + (16 * GiB) - 1) / (16 * GiB));
    unsigned nranges = cfg->highmem_size ? 2 : 1;

    /* Entry point */
    if (cfg->entry_point == SMBIOS_EP_32) {
        assert_int_equal(ep_len, 31);
        assert_memory_equal(ep, "_SM_", 4);
        assert_int_equal(ep[0x05], 31);
        assert_int_equal(sum8(ep, 31), 0);
        assert_memory_equal(ep + 0x10, "_DMI_", 5);
        assert_int_equal(sum8(ep + 0x10, 15), 0);
        assert_int_equal(ep[0x06], 3);
        assert_int_equal(ep[0x07], 0);
        assert_int_equal(rd(ep + 0x08, 2), tb.max_size);
        assert_int_equal(rd(ep + 0x16, 2), tlen);
        assert_int_equal(rd(ep + 0x18, 4), 0);
        assert_int_equal(rd(ep + 0x1c, 2), tb.n);
        assert_int_equal(ep[0x1e], 0x30);
    } else {
        assert_int_equal(ep_len, 24);
        assert_memory_equal(ep, "_SM3_", 5);
        assert_int_equal(ep[0x06], 24);
        assert_int_equal(sum8(ep, 24), 0);
        assert_int_equal(ep[0x07], 3);
        assert_int_equal(ep[0x08], 0);
        assert_int_equal(ep[0x0a], 1);
        assert_int_equal(rd(ep + 0x0c, 4), tlen);
        assert_int_equal(rd(ep + 0x10, 8), 0);
    }

    /* Counts */
    assert_int_equal(tb.count[0], 1);
    assert_int_equal(tb.count[1], 1);
    assert_int_equal(tb.count[3], 1);
    assert_int_equal(tb.count[4], cfg->ncpus);
    assert_int_equal(tb.count[16], 1);
    assert_int_equal(tb.count[17], ndimm);
    assert_int_equal(tb.count[19], nranges);
    assert_int_equal(tb.count[32], 1);
    assert_int_equal(tb.count[127], 1);
    assert_int_equal(tb.n, 6 + cfg->ncpus + ndimm + nranges);

    uint64_t dimm_total = 0;
    bool seen_low = false, seen_high = false;
    unsigned cpu = 0, dimm = 0;
    for (unsigned i = 0; i < tb.n; i++) {
        const struct sm *s = &tb.s[i];
        switch (s->type) {
        case 0:
            assert_int_equal(s->len, 0x18);
            assert_string_equal(sstr(s, 0x04), "Burrow");
            assert_non_null(sstr(s, 0x05));
            {
                const char *d = sstr(s, 0x08);   /* mm/dd/yyyy */
                assert_non_null(d);
                assert_int_equal(strlen(d), 10);
                assert_true(d[2] == '/' && d[5] == '/');
            }
            assert_int_not_equal(rd(s->f + 0x06, 2), 0);
            assert_int_equal(rd(s->f + 0x0a, 8), 1u << 3);
            assert_true(s->f[0x12] & 0x01);              /* ACPI */
            assert_true(s->f[0x13] & 0x04);              /* targeted content */
            assert_true(s->f[0x13] & 0x10);              /* virtual machine */
            assert_int_equal(s->f[0x16], 0xff);
            assert_int_equal(s->f[0x17], 0xff);
            if (cfg->bios_size == 256 * KiB) {
                assert_int_equal(s->f[0x09], 3);         /* 64 KiB * (3 + 1) */
                assert_int_equal(rd(s->f + 0x06, 2), 0xe000);
            }
            break;
        case 1: {
            assert_int_equal(s->len, 0x1b);
            assert_string_equal(sstr(s, 0x04), "Burrow");
            assert_string_equal(sstr(s, 0x05), "Burrow Virtual Machine");
            assert_non_null(sstr(s, 0x06));
            assert_non_null(sstr(s, 0x07));
            assert_non_null(sstr(s, 0x1a));
            /* SMBIOS 2.6+: first three fields little-endian */
            const uint8_t *u = s->f + 0x08;
            uint8_t back[16] = { u[3], u[2], u[1], u[0], u[5], u[4], u[7], u[6],
                                 u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15] };
            assert_memory_equal(back, cfg->uuid, 16);
            assert_int_equal(s->f[0x18], 0x06);          /* power switch */
            break;
        }
        case 3:
            assert_int_equal(s->len, 0x16);
            assert_string_equal(sstr(s, 0x04), "Burrow");
            assert_int_equal(s->f[0x05], 0x01);
            assert_int_equal(s->f[0x09], 0x03);
            assert_int_equal(s->f[0x0a], 0x03);
            assert_int_equal(s->f[0x0b], 0x03);
            assert_int_equal(s->f[0x13], 0);             /* contained elements */
            break;
        case 4: {
            assert_int_equal(s->len, 0x30);
            char want[16];
            snprintf(want, sizeof(want), "CPU %u", cpu++);
            assert_string_equal(sstr(s, 0x04), want);
            assert_int_equal(s->f[0x05], 0x03);          /* central processor */
            assert_int_not_equal(s->f[0x06], 0);
            assert_non_null(sstr(s, 0x07));
            assert_int_equal(s->f[0x18], 0x41);          /* populated, enabled */
            assert_int_equal(s->f[0x23], 1);
            assert_int_equal(s->f[0x24], 1);
            assert_int_equal(s->f[0x25], 1);
            assert_int_equal(rd(s->f + 0x2a, 2), 1);
            assert_int_equal(rd(s->f + 0x2e, 2), 1);
            break;
        }
        case 16: {
            assert_int_equal(s->len, 0x17);
            assert_int_equal(s->f[0x04], 0x03);          /* system board */
            assert_int_equal(s->f[0x05], 0x03);          /* system memory */
            assert_int_equal(s->f[0x06], 0x03);          /* no ECC */
            uint32_t cap = (uint32_t)rd(s->f + 0x07, 4);
            uint64_t cap_bytes = cap == 0x80000000u ? rd(s->f + 0x0f, 8) : (uint64_t)cap * KiB;
            if (cap == 0x80000000u)
                assert_true(total / KiB >= 0x80000000u);
            assert_true(cap_bytes >= total);
            assert_int_equal(rd(s->f + 0x0d, 2), ndimm);
            break;
        }
        case 17: {
            assert_int_equal(s->len, 0x28);
            const struct sm *a = find_handle(&tb, (uint16_t)rd(s->f + 0x04, 2));
            assert_non_null(a);
            assert_int_equal(a->type, 16);
            char want[16];
            snprintf(want, sizeof(want), "DIMM %u", dimm++);
            assert_string_equal(sstr(s, 0x10), want);
            assert_int_equal(s->f[0x12], 0x07);          /* RAM */
            uint64_t b = dimm_bytes(s);
            assert_true(b <= 16 * GiB);
            dimm_total += b;
            break;
        }
        case 19: {
            assert_int_equal(s->len, 0x1f);
            const struct sm *a = find_handle(&tb, (uint16_t)rd(s->f + 0x0c, 2));
            assert_non_null(a);
            assert_int_equal(a->type, 16);
            uint32_t st = (uint32_t)rd(s->f + 0x04, 4), en = (uint32_t)rd(s->f + 0x08, 4);
            uint64_t base, last;
            if (st == 0xffffffffu) {
                assert_int_equal(en, 0xffffffffu);
                base = rd(s->f + 0x0f, 8);
                last = rd(s->f + 0x17, 8);
                assert_true(last / KiB >= 0xffffffffu);  /* only used when needed */
            } else {
                base = (uint64_t)st * KiB;
                last = (uint64_t)en * KiB + KiB - 1;
            }
            if (base == 0) {
                assert_int_equal(last + 1, cfg->lowmem_end);
                seen_low = true;
            } else {
                assert_int_equal(base, 4 * GiB);
                assert_int_equal(last + 1 - base, cfg->highmem_size);
                seen_high = true;
            }
            break;
        }
        case 32:
            assert_int_equal(s->len, 0x0b);
            assert_int_equal(s->f[0x0a], 0);
            break;
        case 127:
            assert_int_equal(s->len, 4);
            break;
        default:
            fail_msg("unexpected structure type %u", s->type);
        }
    }
    assert_int_equal(cpu, cfg->ncpus);
    assert_int_equal(dimm_total, total);
    assert_true(seen_low);
    assert_int_equal(seen_high, cfg->highmem_size != 0);
    free(tb.s);
}

/* What SeaBIOS requires of the two fw_cfg files before it uses them. */
static void check_firmware_acceptance(const uint8_t *ep, size_t ep_len,
                                      const uint8_t *t, size_t tlen)
{
    if (ep_len == 31) {
        assert_memory_equal(ep, "_SM_", 4);
        assert_int_equal(rd(ep + 0x16, 2), tlen);
    } else {
        assert_int_equal(ep_len, 24);
        assert_memory_equal(ep, "_SM3_", 5);
        assert_int_equal(rd(ep + 0x0c, 4), tlen);
    }
    /* A type 0 structure present: the firmware adds none of its own. */
    assert_int_equal(t[0], 0);
}

/* ---- dmidecode, as an independent reader -------------------------------- */

static bool find_dmidecode(char *path, size_t n)
{
    const char *env = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/sbin", env ? env : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(path, n, "%s/dmidecode", d);
        if (access(path, X_OK) == 0)
            return true;
    }
    return false;
}

static unsigned count_lines(const char *out, const char *line)
{
    unsigned n = 0;
    size_t l = strlen(line);
    for (const char *p = out; (p = strstr(p, line)); p += l)
        if ((p == out || p[-1] == '\n') && (p[l] == '\n' || p[l] == '\0'))
            n++;
    return n;
}

/* Writes a dmidecode --dump-bin style file (entry point at 0, table at
 * 0x20, the entry point's table address pointing there, checksums redone
 * as firmware does when it places the table) and checks what dmidecode
 * reads from it. */
static void check_dmidecode(const struct smbios_config *cfg, const uint8_t *ep, size_t ep_len,
                            const uint8_t *t, size_t tlen, unsigned ndimm)
{
    char dmi[512];
    if (!find_dmidecode(dmi, sizeof(dmi))) {
        print_message("dmidecode not installed: cross-check skipped\n");
        return;
    }
    uint8_t head[0x20] = { 0 };
    memcpy(head, ep, ep_len);
    if (ep_len == 31) {
        st_le(head + 0x18, 4, 0x20);
        head[0x15] = 0;
        head[0x15] = (uint8_t)-sum8(head + 0x10, 15);
        head[0x04] = 0;
        head[0x04] = (uint8_t)-sum8(head, 31);
    } else {
        st_le(head + 0x10, 8, 0x20);
        head[0x05] = 0;
        head[0x05] = (uint8_t)-sum8(head, 24);
    }
    const char *dir = getenv("TMPDIR");
    char file[512];
    snprintf(file, sizeof(file), "%s/smbios-dump-XXXXXX", dir && *dir ? dir : P_tmpdir);
    int fd = mkstemp(file);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(head, 1, sizeof(head), f), sizeof(head));
    assert_int_equal(fwrite(t, 1, tlen, f), tlen);
    assert_int_equal(fclose(f), 0);

    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "'%s' --from-dump '%s' 2>&1", dmi, file);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    size_t got;
    while ((got = fread(out + len, 1, cap - 1 - len, p)) > 0) {
        len += got;
        if (len == cap - 1) {
            cap *= 2;
            out = realloc(out, cap);
            assert_non_null(out);
        }
    }
    out[len] = '\0';
    int st = pclose(p);
    unlink(file);
    assert_int_equal(st, 0);

    assert_non_null(strstr(out, "SMBIOS 3.0"));
    if (ep_len == 31) {
        char want[96];
        unsigned n = 6 + cfg->ncpus + ndimm + (cfg->highmem_size ? 2 : 1);
        snprintf(want, sizeof(want), "%u structures occupying %zu bytes.", n, tlen);
        assert_non_null(strstr(out, want));
    }
    char uuid[37], want[64];
    uuid_text(cfg->uuid, uuid);
    snprintf(want, sizeof(want), "\tUUID: %s\n", uuid);
    assert_non_null(strcasestr(out, want));
    assert_non_null(strstr(out, "\tVendor: Burrow\n"));
    assert_non_null(strstr(out, "\tProduct Name: Burrow Virtual Machine\n"));
    assert_non_null(strstr(out, "\t\tBIOS characteristics not supported\n"));
    assert_non_null(strstr(out, "\t\tSystem is a virtual machine\n"));
    assert_non_null(strstr(out, "\tWake-up Type: Power Switch\n"));
    assert_non_null(strstr(out, "\tStatus: No errors detected\n"));
    assert_int_equal(count_lines(out, "BIOS Information"), 1);
    assert_int_equal(count_lines(out, "System Information"), 1);
    assert_int_equal(count_lines(out, "Chassis Information"), 1);
    assert_int_equal(count_lines(out, "Processor Information"), cfg->ncpus);
    assert_int_equal(count_lines(out, "Physical Memory Array"), 1);
    assert_int_equal(count_lines(out, "Memory Device"), ndimm);
    assert_int_equal(count_lines(out, "Memory Array Mapped Address"),
                     cfg->highmem_size ? 2 : 1);
    assert_int_equal(count_lines(out, "System Boot Information"), 1);
    assert_int_equal(count_lines(out, "End Of Table"), 1);
    static const char *const bad[] = { "Invalid", "TRUNCATED", "OUT OF SPEC", "BAD INDEX",
                                       "Wrong", "checksum", "Unknown Type" };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        if (strcasestr(out, bad[i]))
            fail_msg("dmidecode reports \"%s\":\n%s", bad[i], out);
    free(out);
}

/* ---- tests ---------------------------------------------------------------- */

static struct smbios_config make_cfg(unsigned ncpus, uint64_t low, uint64_t high,
                                     enum smbios_entry_point ep)
{
    struct smbios_config c = {
        .ncpus = ncpus, .lowmem_end = low, .highmem_size = high,
        .bios_size = 256 * KiB, .entry_point = ep,
    };
    /* A fixed UUID whose fields are all different, so a wrong byte order
     * shows. */
    static const uint8_t u[16] = { 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef,
                                   0x81, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };
    memcpy(c.uuid, u, 16);
    return c;
}

static void run_case(const struct smbios_config *c)
{
    uint8_t *ep, *t;
    size_t ep_len, tlen;
    assert_int_equal(smbios_build(c, &ep, &ep_len, &t, &tlen), 0);
    check_all(c, ep, ep_len, t, tlen);
    check_firmware_acceptance(ep, ep_len, t, tlen);
    uint64_t total = c->lowmem_end + c->highmem_size;
    check_dmidecode(c, ep, ep_len, t, tlen, (unsigned)((total + 16 * GiB - 1) / (16 * GiB)));
    free(ep);
    free(t);
}

static void test_1cpu_low_ram(void **state)
{
    struct smbios_config c = make_cfg(1, 128 * MiB, 0, SMBIOS_EP_32);
    run_case(&c);
    c.entry_point = SMBIOS_EP_64;
    run_case(&c);
}

static void test_4cpu_low_ram(void **state)
{
    struct smbios_config c = make_cfg(4, 3 * GiB, 0, SMBIOS_EP_32);
    run_case(&c);
    c.entry_point = SMBIOS_EP_64;
    run_case(&c);
}

static void test_high_ram(void **state)
{
    /* 3 GiB below 4 GiB, 2 GiB above: one 5 GiB DIMM, two ranges */
    struct smbios_config c = make_cfg(1, 3 * GiB, 2 * GiB, SMBIOS_EP_32);
    run_case(&c);
    c.ncpus = 4;
    run_case(&c);
    c.entry_point = SMBIOS_EP_64;
    run_case(&c);
}

static void test_many_dimms(void **state)
{
    /* 40 GiB + 5 MiB: DIMMs of 16, 16 and 8 GiB + 5 MiB */
    struct smbios_config c = make_cfg(2, 3 * GiB, 37 * GiB + 5 * MiB, SMBIOS_EP_32);
    run_case(&c);
    uint8_t *ep, *t;
    size_t ep_len, tlen;
    assert_int_equal(smbios_build(&c, &ep, &ep_len, &t, &tlen), 0);
    struct table tb = parse(t, tlen);
    uint64_t want[] = { 16 * GiB, 16 * GiB, 8 * GiB + 5 * MiB };
    unsigned k = 0;
    for (unsigned i = 0; i < tb.n; i++)
        if (tb.s[i].type == 17) {
            assert_true(k < ARRAY_SIZE(want));
            assert_int_equal(dimm_bytes(&tb.s[i]), want[k++]);
        }
    assert_int_equal(k, 3);
    free(tb.s);
    free(ep);
    free(t);
}

static void test_extended_fields(void **state)
{
    /* 5 TiB above 4 GiB: the array capacity (>= 2 TiB) and the high range's
     * end (>= 4 TiB) need the extended fields. */
    struct smbios_config c = make_cfg(2, 3 * GiB, 5 * 1024 * GiB, SMBIOS_EP_32);
    run_case(&c);
    uint8_t *ep, *t;
    size_t ep_len, tlen;
    assert_int_equal(smbios_build(&c, &ep, &ep_len, &t, &tlen), 0);
    struct table tb = parse(t, tlen);
    bool ext16 = false, ext19 = false;
    for (unsigned i = 0; i < tb.n; i++) {
        if (tb.s[i].type == 16)
            ext16 = rd(tb.s[i].f + 0x07, 4) == 0x80000000u &&
                    rd(tb.s[i].f + 0x0f, 8) == 3 * GiB + 5 * 1024 * GiB;
        if (tb.s[i].type == 19 && rd(tb.s[i].f + 0x04, 4) == 0xffffffffu)
            ext19 = rd(tb.s[i].f + 0x0f, 8) == 4 * GiB &&
                    rd(tb.s[i].f + 0x17, 8) == 4 * GiB + 5 * 1024 * GiB - 1;
    }
    assert_true(ext16);
    assert_true(ext19);
    free(tb.s);
    free(ep);
    free(t);
}

static void test_entry_point_limit(void **state)
{
    /* 1024 processors make a table over 64 KiB: the 32-bit entry point
     * cannot count it, the 64-bit one can. */
    struct smbios_config c = make_cfg(SMBIOS_MAX_CPUS, 1 * GiB, 0, SMBIOS_EP_32);
    uint8_t *ep, *t;
    size_t ep_len, tlen;
    assert_int_equal(smbios_build(&c, &ep, &ep_len, &t, &tlen), -1);
    assert_null(ep);
    assert_null(t);
    c.entry_point = SMBIOS_EP_64;
    assert_int_equal(smbios_build(&c, &ep, &ep_len, &t, &tlen), 0);
    assert_true(tlen > 0xffff);
    check_all(&c, ep, ep_len, t, tlen);
    free(ep);
    free(t);
    /* The machine's own maximum (254 vCPUs) fits the 32-bit one. */
    c = make_cfg(254, 1 * GiB, 0, SMBIOS_EP_32);
    run_case(&c);
}

static void test_bad_configs(void **state)
{
    struct smbios_config good = make_cfg(1, 128 * MiB, 0, SMBIOS_EP_32);
    struct smbios_config bad[8];
    unsigned n = 0;
    bad[n] = good; bad[n++].ncpus = 0;
    bad[n] = good; bad[n++].ncpus = SMBIOS_MAX_CPUS + 1;
    bad[n] = good; bad[n++].lowmem_end = 0;
    bad[n] = good; bad[n++].lowmem_end = 128 * MiB + 4 * KiB;   /* not whole MiB */
    bad[n] = good; bad[n++].lowmem_end = 4 * GiB + MiB;          /* past 4 GiB */
    bad[n] = good; bad[n].lowmem_end = 3 * GiB; bad[n++].highmem_size = 1 * GiB + 512;
    bad[n] = good; bad[n++].highmem_size = 1ULL << 50;
    bad[n] = good; bad[n++].entry_point = (enum smbios_entry_point)7;
    for (unsigned i = 0; i < n; i++) {
        uint8_t *ep = (uint8_t *)1, *t = (uint8_t *)1;
        size_t ep_len = 1, tlen = 1;
        assert_int_equal(smbios_build(&bad[i], &ep, &ep_len, &t, &tlen), -1);
        assert_null(ep);
        assert_null(t);
        assert_int_equal(ep_len, 0);
        assert_int_equal(tlen, 0);
    }
    /* Exactly 4 GiB below 4 GiB is a valid layout. */
    struct smbios_config edge = make_cfg(1, 4 * GiB, 0, SMBIOS_EP_32);
    run_case(&edge);
}

static void test_fw_cfg_files(void **state)
{
    struct harness *h = harness_new(1 * MiB);
    assert_non_null(h);
    struct fw_cfg *fw = fw_cfg_create(&h->plat);
    assert_non_null(fw);
    struct smbios_config c = make_cfg(2, 512 * MiB, 0, SMBIOS_EP_32);
    assert_int_equal(smbios_build_fw_cfg(&c, fw), 0);
    size_t alen, tlen;
    const uint8_t *a = fw_cfg_file_data(fw, SMBIOS_FILE_ANCHOR, &alen);
    const uint8_t *t = fw_cfg_file_data(fw, SMBIOS_FILE_TABLES, &tlen);
    assert_non_null(a);
    assert_non_null(t);
    uint8_t *ep, *tb;
    size_t ep_len, tb_len;
    assert_int_equal(smbios_build(&c, &ep, &ep_len, &tb, &tb_len), 0);
    assert_int_equal(alen, ep_len);
    assert_int_equal(tlen, tb_len);
    assert_memory_equal(a, ep, ep_len);
    assert_memory_equal(t, tb, tb_len);
    check_all(&c, a, alen, t, tlen);
    check_firmware_acceptance(a, alen, t, tlen);
    free(ep);
    free(tb);
    /* The files exist already: a second build is refused. */
    assert_int_equal(smbios_build_fw_cfg(&c, fw), -1);
    /* A bad config adds nothing. */
    fw_cfg_destroy(fw);
    struct fw_cfg *fw2 = fw_cfg_create(&h->plat);
    assert_non_null(fw2);
    c.ncpus = 0;
    assert_int_equal(smbios_build_fw_cfg(&c, fw2), -1);
    assert_null(fw_cfg_file_data(fw2, SMBIOS_FILE_ANCHOR, &alen));
    assert_null(fw_cfg_file_data(fw2, SMBIOS_FILE_TABLES, &tlen));
    fw_cfg_destroy(fw2);
    harness_free(h);
}

static void test_uuid(void **state)
{
    uint8_t a[16], b[16];
    assert_int_equal(smbios_random_uuid(a), 0);
    assert_int_equal(smbios_random_uuid(b), 0);
    assert_memory_not_equal(a, b, 16);
    assert_int_equal(a[6] >> 4, 4);              /* version 4 */
    assert_int_equal(a[8] & 0xc0, 0x80);         /* RFC 4122 variant */
    static const uint8_t u[16] = { 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef,
                                   0x81, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };
    char s[37];
    smbios_uuid_format(u, s);
    assert_string_equal(s, "12345678-9abc-4def-8123-456789abcdef");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_1cpu_low_ram),
        cmocka_unit_test(test_4cpu_low_ram),
        cmocka_unit_test(test_high_ram),
        cmocka_unit_test(test_many_dimms),
        cmocka_unit_test(test_extended_fields),
        cmocka_unit_test(test_entry_point_limit),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_fw_cfg_files),
        cmocka_unit_test(test_uuid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
