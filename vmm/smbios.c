/* SMBIOS structure table and entry points, laid out as in DMTF DSP0134
 * (System Management BIOS Reference Specification) 3.0: offsets below are
 * the specification's, per structure type. */
#include "vmm/smbios.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "devices/fw_cfg.h"
#include "devices/util.h"

#ifndef BURROW_VERSION
#define BURROW_VERSION "0.1.0"
#endif
/* Release date of the BIOS information (type 0), "mm/dd/yyyy". */
#ifndef BURROW_RELEASE_DATE
#define BURROW_RELEASE_DATE "11/01/2026"
#endif

#define SMBIOS_VENDOR   "Burrow"
#define SMBIOS_PRODUCT  "Burrow Virtual Machine"
#define SMBIOS_FAMILY   "Virtual Machine"

/* The machine copies the last 128 KiB of the firmware image below 1 MiB:
 * that is the runtime image type 0 describes. */
#define BIOS_LOW_WINDOW (128 * KiB)

/* Formatted-area lengths (SMBIOS 3.0) */
#define T0_LEN   0x18
#define T1_LEN   0x1b
#define T3_LEN   0x16    /* no contained elements; SKU string at 0x15 */
#define T4_LEN   0x30
#define T16_LEN  0x17
#define T17_LEN  0x28
#define T19_LEN  0x1f
#define T32_LEN  0x0b
#define T127_LEN 0x04

#define HANDLE_NONE       0xffff   /* "not provided" (e.g. cache handles) */
#define HANDLE_NO_ERRINFO 0xfffe   /* no memory error information */

/* Type 0 characteristics: bit 3 "BIOS characteristics not supported": the
 * firmware is chosen at run time, so the machine cannot vouch for more. */
#define T0_CHAR_NOT_SUPPORTED   (1ULL << 3)
#define T0_EXT1_ACPI            0x01
#define T0_EXT2_TARGETED_CONTENT 0x04
#define T0_EXT2_VIRTUAL_MACHINE 0x10

#define T1_WAKE_POWER_SWITCH    0x06
#define T3_TYPE_OTHER           0x01
#define T3_STATE_SAFE           0x03
#define T3_SECURITY_UNKNOWN     0x02
#define T4_TYPE_CENTRAL         0x03
#define T4_FAMILY_OTHER         0x01
#define T4_STATUS_POPULATED_ENABLED 0x41
#define T4_UPGRADE_OTHER        0x01
#define T4_CHAR_64BIT           0x0004
#define T16_LOCATION_BOARD      0x03
#define T16_USE_SYSTEM          0x03
#define T16_ECC_NONE            0x03
#define T16_CAPACITY_EXTENDED   0x80000000u
#define T17_WIDTH_UNKNOWN       0xffff
#define T17_FORM_DIMM           0x09
#define T17_TYPE_RAM            0x07
#define T17_DETAIL_OTHER        0x0002
#define T17_SIZE_EXTENDED       0x7fff
#define T19_ADDR_EXTENDED       0xffffffffu

#define MAX_STRINGS_BYTES 512

/* One structure being put together: formatted area and string set. */
struct sstruct {
    uint8_t f[64];
    uint8_t len;
    char strings[MAX_STRINGS_BYTES];
    size_t slen;
    unsigned nstrings;
    bool error;
};

/* The table being built. */
struct stable {
    uint8_t *data;
    size_t len, cap;
    unsigned count;
    size_t max_struct;
    uint16_t next_handle;
    bool error;
};

static uint16_t s_begin(struct stable *t, struct sstruct *s, uint8_t type, uint8_t len)
{
    memset(s, 0, sizeof(*s));
    s->len = len;
    uint16_t handle = t->next_handle++;
    s->f[0] = type;
    s->f[1] = len;
    st_le(&s->f[2], 2, handle);
    return handle;
}

static void s_put(struct sstruct *s, unsigned off, unsigned size, uint64_t v)
{
    if (off + size > s->len) {
        s->error = true;
        return;
    }
    st_le(&s->f[off], size, v);
}

/* Adds a string and stores its number at off; NULL or "" leaves 0 ("no
 * string"), since SMBIOS strings are never empty. */
static void s_str(struct sstruct *s, unsigned off, const char *str)
{
    if (!str || !*str) {
        s_put(s, off, 1, 0);
        return;
    }
    size_t n = strlen(str) + 1;
    if (s->slen + n > sizeof(s->strings) || s->nstrings >= 255) {
        s->error = true;
        return;
    }
    memcpy(s->strings + s->slen, str, n);
    s->slen += n;
    s_put(s, off, 1, ++s->nstrings);
}

static void t_append(struct stable *t, const void *p, size_t n)
{
    if (t->error)
        return;
    if (t->len + n > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        while (cap < t->len + n)
            cap *= 2;
        uint8_t *d = realloc(t->data, cap);
        if (!d) {
            t->error = true;
            return;
        }
        t->data = d;
        t->cap = cap;
    }
    memcpy(t->data + t->len, p, n);
    t->len += n;
}

/* Formatted area, strings, and the string set's terminating NUL; a
 * structure without strings ends in two NULs. */
static void s_end(struct stable *t, struct sstruct *s)
{
    if (s->error) {
        t->error = true;
        return;
    }
    static const uint8_t nul2[2];
    size_t start = t->len;
    t_append(t, s->f, s->len);
    if (s->nstrings) {
        t_append(t, s->strings, s->slen);
        t_append(t, nul2, 1);
    } else {
        t_append(t, nul2, 2);
    }
    t->count++;
    t->max_struct = MAX(t->max_struct, t->len - start);
}

/* "0.1.0" -> 0, 1; anything else -> 0xff, 0xff ("not supported"). */
static void version_numbers(const char *v, uint8_t *major, uint8_t *minor)
{
    unsigned a, b;
    if (sscanf(v, "%u.%u", &a, &b) == 2 && a < 0xff && b < 0xff) {
        *major = (uint8_t)a;
        *minor = (uint8_t)b;
    } else {
        *major = *minor = 0xff;
    }
}

static void add_bios(struct stable *t, const struct smbios_config *cfg)
{
    struct sstruct s;
    s_begin(t, &s, SMBIOS_TYPE_BIOS, T0_LEN);
    s_str(&s, 0x04, SMBIOS_VENDOR);
    s_str(&s, 0x05, BURROW_VERSION);
    uint64_t low = cfg->bios_size ? MIN(cfg->bios_size, BIOS_LOW_WINDOW) : BIOS_LOW_WINDOW;
    s_put(&s, 0x06, 2, 0x10000 - low / 16);        /* starting address segment */
    s_str(&s, 0x08, BURROW_RELEASE_DATE);
    /* ROM size is 64 KiB * (n + 1); 0xff would point to the extended field
     * of SMBIOS 3.1, which this 3.0 layout lacks. */
    uint64_t rom = cfg->bios_size ? (cfg->bios_size + 64 * KiB - 1) / (64 * KiB) - 1 : 0;
    s_put(&s, 0x09, 1, MIN(rom, 0xfe));
    s_put(&s, 0x0a, 8, T0_CHAR_NOT_SUPPORTED);
    s_put(&s, 0x12, 1, T0_EXT1_ACPI);
    s_put(&s, 0x13, 1, T0_EXT2_TARGETED_CONTENT | T0_EXT2_VIRTUAL_MACHINE);
    uint8_t major, minor;
    version_numbers(BURROW_VERSION, &major, &minor);
    s_put(&s, 0x14, 1, major);
    s_put(&s, 0x15, 1, minor);
    s_put(&s, 0x16, 1, 0xff);                      /* no embedded controller */
    s_put(&s, 0x17, 1, 0xff);
    s_end(t, &s);
}

static void add_system(struct stable *t, const struct smbios_config *cfg)
{
    struct sstruct s;
    char serial[37];
    smbios_uuid_format(cfg->uuid, serial);
    s_begin(t, &s, SMBIOS_TYPE_SYSTEM, T1_LEN);
    s_str(&s, 0x04, SMBIOS_VENDOR);
    s_str(&s, 0x05, SMBIOS_PRODUCT);
    s_str(&s, 0x06, BURROW_VERSION);
    s_str(&s, 0x07, serial);
    /* SMBIOS 2.6+: time_low, time_mid and time_hi_and_version are stored
     * little-endian, the rest in the order printed. */
    static const uint8_t order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
    for (unsigned i = 0; i < 16; i++)
        s_put(&s, 0x08 + i, 1, cfg->uuid[order[i]]);
    s_put(&s, 0x18, 1, T1_WAKE_POWER_SWITCH);
    s_str(&s, 0x19, NULL);                          /* SKU */
    s_str(&s, 0x1a, SMBIOS_FAMILY);
    s_end(t, &s);
}

static void add_chassis(struct stable *t)
{
    struct sstruct s;
    s_begin(t, &s, SMBIOS_TYPE_CHASSIS, T3_LEN);
    s_str(&s, 0x04, SMBIOS_VENDOR);
    s_put(&s, 0x05, 1, T3_TYPE_OTHER);              /* bit 7 clear: no lock */
    s_put(&s, 0x09, 1, T3_STATE_SAFE);              /* boot-up state */
    s_put(&s, 0x0a, 1, T3_STATE_SAFE);              /* power supply state */
    s_put(&s, 0x0b, 1, T3_STATE_SAFE);              /* thermal state */
    s_put(&s, 0x0c, 1, T3_SECURITY_UNKNOWN);
    /* OEM-defined 0, height and power cords unspecified, no contained
     * elements (count 0, record length 0), no SKU string. */
    s_end(t, &s);
}

static void add_processor(struct stable *t, unsigned index)
{
    struct sstruct s;
    char socket[16];
    snprintf(socket, sizeof(socket), "CPU %u", index);
    s_begin(t, &s, SMBIOS_TYPE_PROCESSOR, T4_LEN);
    s_str(&s, 0x04, socket);
    s_put(&s, 0x05, 1, T4_TYPE_CENTRAL);
    s_put(&s, 0x06, 1, T4_FAMILY_OTHER);
    s_str(&s, 0x07, SMBIOS_VENDOR);
    /* Processor ID (CPUID leaf 1), version, voltage, clocks: 0 = unknown. */
    s_put(&s, 0x18, 1, T4_STATUS_POPULATED_ENABLED);
    s_put(&s, 0x19, 1, T4_UPGRADE_OTHER);
    s_put(&s, 0x1a, 2, HANDLE_NONE);                /* L1, L2, L3 cache */
    s_put(&s, 0x1c, 2, HANDLE_NONE);
    s_put(&s, 0x1e, 2, HANDLE_NONE);
    s_put(&s, 0x23, 1, 1);                          /* core count */
    s_put(&s, 0x24, 1, 1);                          /* cores enabled */
    s_put(&s, 0x25, 1, 1);                          /* thread count */
    s_put(&s, 0x26, 2, T4_CHAR_64BIT);
    s_put(&s, 0x28, 2, T4_FAMILY_OTHER);            /* processor family 2 */
    s_put(&s, 0x2a, 2, 1);                          /* core count 2 */
    s_put(&s, 0x2c, 2, 1);                          /* cores enabled 2 */
    s_put(&s, 0x2e, 2, 1);                          /* thread count 2 */
    s_end(t, &s);
}

static unsigned dimm_count(uint64_t total)
{
    return (unsigned)((total + SMBIOS_DIMM_MAX - 1) / SMBIOS_DIMM_MAX);
}

static uint16_t add_memory_array(struct stable *t, uint64_t total)
{
    struct sstruct s;
    uint16_t handle = s_begin(t, &s, SMBIOS_TYPE_MEMORY_ARRAY, T16_LEN);
    s_put(&s, 0x04, 1, T16_LOCATION_BOARD);
    s_put(&s, 0x05, 1, T16_USE_SYSTEM);
    s_put(&s, 0x06, 1, T16_ECC_NONE);
    /* The array holds exactly the RAM the machine was given. */
    uint64_t kib = total / KiB;
    if (kib < T16_CAPACITY_EXTENDED) {
        s_put(&s, 0x07, 4, kib);
    } else {
        s_put(&s, 0x07, 4, T16_CAPACITY_EXTENDED);
        s_put(&s, 0x0f, 8, total);
    }
    s_put(&s, 0x0b, 2, HANDLE_NO_ERRINFO);
    s_put(&s, 0x0d, 2, dimm_count(total));
    s_end(t, &s);
    return handle;
}

static void add_memory_device(struct stable *t, uint16_t array, unsigned index, uint64_t size)
{
    struct sstruct s;
    char locator[24];
    snprintf(locator, sizeof(locator), "DIMM %u", index);
    s_begin(t, &s, SMBIOS_TYPE_MEMORY_DEVICE, T17_LEN);
    s_put(&s, 0x04, 2, array);
    s_put(&s, 0x06, 2, HANDLE_NO_ERRINFO);
    s_put(&s, 0x08, 2, T17_WIDTH_UNKNOWN);          /* total width */
    s_put(&s, 0x0a, 2, T17_WIDTH_UNKNOWN);          /* data width */
    uint64_t mib = size / MiB;
    if (mib < T17_SIZE_EXTENDED) {
        s_put(&s, 0x0c, 2, mib);                    /* bit 15 clear: MiB units */
    } else {
        s_put(&s, 0x0c, 2, T17_SIZE_EXTENDED);
        s_put(&s, 0x1c, 4, mib & 0x7fffffff);
    }
    s_put(&s, 0x0e, 1, T17_FORM_DIMM);
    s_str(&s, 0x10, locator);
    s_put(&s, 0x12, 1, T17_TYPE_RAM);
    s_put(&s, 0x13, 2, T17_DETAIL_OTHER);
    s_str(&s, 0x17, SMBIOS_VENDOR);
    /* Speeds, rank and voltages: 0 = unknown. */
    s_end(t, &s);
}

static void add_mapped_range(struct stable *t, uint16_t array, uint64_t base, uint64_t size)
{
    struct sstruct s;
    s_begin(t, &s, SMBIOS_TYPE_ARRAY_MAPPED, T19_LEN);
    uint64_t end = base + size - 1;           /* last byte */
    if (end / KiB < T19_ADDR_EXTENDED) {
        s_put(&s, 0x04, 4, base / KiB);
        s_put(&s, 0x08, 4, end / KiB);        /* last kilobyte */
    } else {
        s_put(&s, 0x04, 4, T19_ADDR_EXTENDED);
        s_put(&s, 0x08, 4, T19_ADDR_EXTENDED);
        s_put(&s, 0x0f, 8, base);
        s_put(&s, 0x17, 8, end);
    }
    s_put(&s, 0x0c, 2, array);
    s_put(&s, 0x0e, 1, 1);                    /* partition width */
    s_end(t, &s);
}

static void add_boot_info(struct stable *t)
{
    struct sstruct s;
    s_begin(t, &s, SMBIOS_TYPE_BOOT_INFO, T32_LEN);
    s_put(&s, 0x0a, 1, 0);                    /* no errors detected */
    s_end(t, &s);
}

static void add_end(struct stable *t)
{
    struct sstruct s;
    s_begin(t, &s, SMBIOS_TYPE_END, T127_LEN);
    s_end(t, &s);
}

static uint8_t checksum8(const uint8_t *p, size_t n)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum = (uint8_t)(sum + p[i]);
    return (uint8_t)-sum;
}

static bool config_ok(const struct smbios_config *cfg)
{
    if (cfg->ncpus < 1 || cfg->ncpus > SMBIOS_MAX_CPUS) {
        log_error("smbios: %u CPUs: must be 1..%u", cfg->ncpus, SMBIOS_MAX_CPUS);
        return false;
    }
    if (!cfg->lowmem_end || cfg->lowmem_end > SMBIOS_HIGHMEM_BASE ||
        cfg->lowmem_end % MiB || cfg->highmem_size % MiB) {
        log_error("smbios: bad RAM layout: low end 0x%llx, high size 0x%llx",
                  (unsigned long long)cfg->lowmem_end, (unsigned long long)cfg->highmem_size);
        return false;
    }
    /* 64 TiB: keeps the DIMM count (16 bits) and the table size sane. */
    if (cfg->highmem_size > (1ULL << 46)) {
        log_error("smbios: high RAM size 0x%llx too large",
                  (unsigned long long)cfg->highmem_size);
        return false;
    }
    if (cfg->entry_point != SMBIOS_EP_32 && cfg->entry_point != SMBIOS_EP_64) {
        log_error("smbios: unknown entry point kind %d", (int)cfg->entry_point);
        return false;
    }
    return true;
}

int smbios_build(const struct smbios_config *cfg, uint8_t **anchor, size_t *anchor_len,
                 uint8_t **tables, size_t *tables_len)
{
    *anchor = *tables = NULL;
    *anchor_len = *tables_len = 0;
    if (!config_ok(cfg))
        return -1;

    struct stable t = { 0 };
    uint64_t total = cfg->lowmem_end + cfg->highmem_size;

    add_bios(&t, cfg);
    add_system(&t, cfg);
    add_chassis(&t);
    for (unsigned i = 0; i < cfg->ncpus; i++)
        add_processor(&t, i);
    uint16_t array = add_memory_array(&t, total);
    uint64_t left = total;
    for (unsigned i = 0; left; i++) {
        uint64_t size = MIN(left, SMBIOS_DIMM_MAX);
        add_memory_device(&t, array, i, size);
        left -= size;
    }
    add_mapped_range(&t, array, 0, cfg->lowmem_end);
    if (cfg->highmem_size)
        add_mapped_range(&t, array, SMBIOS_HIGHMEM_BASE, cfg->highmem_size);
    add_boot_info(&t);
    add_end(&t);

    if (t.error) {
        log_error("smbios: cannot build the tables (out of memory)");
        free(t.data);
        return -1;
    }

    uint8_t *ep;
    size_t ep_len;
    if (cfg->entry_point == SMBIOS_EP_32) {
        /* The 2.1 entry point counts the table in 16 bits. */
        if (t.len > 0xffff || t.count > 0xffff) {
            log_error("smbios: table of %zu bytes too large for the 32-bit entry point", t.len);
            free(t.data);
            return -1;
        }
        ep_len = SMBIOS_EP32_LEN;
        ep = calloc(1, ep_len);
        if (!ep)
            goto nomem;
        memcpy(ep, "_SM_", 4);
        ep[0x05] = SMBIOS_EP32_LEN;
        ep[0x06] = SMBIOS_MAJOR;
        ep[0x07] = SMBIOS_MINOR;
        st_le(ep + 0x08, 2, t.max_struct);
        ep[0x0a] = 0;                                 /* entry point revision */
        memcpy(ep + 0x10, "_DMI_", 5);
        st_le(ep + 0x16, 2, t.len);
        st_le(ep + 0x18, 4, 0);                       /* table address: firmware's */
        st_le(ep + 0x1c, 2, t.count);
        ep[0x1e] = (SMBIOS_MAJOR << 4) | SMBIOS_MINOR; /* BCD revision */
        ep[0x15] = checksum8(ep + 0x10, 0x0f);        /* intermediate checksum */
        ep[0x04] = checksum8(ep, ep_len);
    } else {
        ep_len = SMBIOS_EP64_LEN;
        ep = calloc(1, ep_len);
        if (!ep)
            goto nomem;
        memcpy(ep, "_SM3_", 5);
        ep[0x06] = SMBIOS_EP64_LEN;
        ep[0x07] = SMBIOS_MAJOR;
        ep[0x08] = SMBIOS_MINOR;
        ep[0x09] = 0;                                 /* docrev */
        ep[0x0a] = 0x01;                              /* entry point revision 3.0 */
        st_le(ep + 0x0c, 4, t.len);                   /* structure table maximum size */
        st_le(ep + 0x10, 8, 0);                       /* table address: firmware's */
        ep[0x05] = checksum8(ep, ep_len);
    }
    *anchor = ep;
    *anchor_len = ep_len;
    *tables = t.data;
    *tables_len = t.len;
    return 0;

nomem:
    log_error("smbios: out of memory");
    free(t.data);
    return -1;
}

int smbios_build_fw_cfg(const struct smbios_config *cfg, struct fw_cfg *fw)
{
    uint8_t *anchor, *tables;
    size_t anchor_len, tables_len;
    if (smbios_build(cfg, &anchor, &anchor_len, &tables, &tables_len) < 0)
        return -1;
    int rc = 0;
    if (fw_cfg_add_file(fw, SMBIOS_FILE_TABLES, tables, tables_len) < 0 ||
        fw_cfg_add_file(fw, SMBIOS_FILE_ANCHOR, anchor, anchor_len) < 0) {
        log_error("smbios: cannot add the fw_cfg files");
        rc = -1;
    }
    free(anchor);
    free(tables);
    return rc;
}

int smbios_random_uuid(uint8_t uuid[16])
{
    size_t got = 0;
    while (got < 16) {
        ssize_t n = getrandom(uuid + got, 16 - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_error("smbios: getrandom: %s", strerror(errno));
            return -1;
        }
        got += (size_t)n;
    }
    uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40);   /* version 4: random */
    uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
    return 0;
}

void smbios_uuid_format(const uint8_t u[16], char out[37])
{
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7],
             u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

int smbios_uuid_parse(const char *s, uint8_t uuid[16])
{
    unsigned n = 0;
    for (unsigned i = 0; s[i]; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return -1;
            continue;
        }
        int hi = s[i];
        int v = hi >= '0' && hi <= '9' ? hi - '0'
              : hi >= 'a' && hi <= 'f' ? hi - 'a' + 10
              : hi >= 'A' && hi <= 'F' ? hi - 'A' + 10 : -1;
        if (v < 0 || n >= 32)
            return -1;
        if (n % 2 == 0)
            uuid[n / 2] = (uint8_t)(v << 4);
        else
            uuid[n / 2] |= (uint8_t)v;
        n++;
    }
    return n == 32 && strlen(s) == 36 ? 0 : -1;
}
