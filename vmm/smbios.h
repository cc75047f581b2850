/* SMBIOS tables (DMTF DSP0134, version 3.0 structure layouts) describing
 * the machine: BIOS (type 0), system (1), chassis (3), one processor per
 * vCPU (4), the memory array (16), its memory devices (17), one mapped
 * address range per RAM range (19), boot information (32) and the end of
 * table (127).
 *
 * The firmware gets them as two fw_cfg files, as QEMU provides them:
 *  - "etc/smbios/smbios-anchor": the entry point structure, with the
 *    structure table address left 0;
 *  - "etc/smbios/smbios-tables": the structure table.
 * SeaBIOS (1.16) copies the table into its own memory, stores the table's
 * address in the entry point, recomputes the entry point checksums and
 * publishes the entry point in the F segment.  It takes the table as is
 * when it holds a type 0 structure, and adds its own type 0 otherwise.
 *
 * Memory devices (type 17): all RAM is described as DIMMs of at most
 * 16 GiB each ("DIMM 0", "DIMM 1", ...), their sizes adding up to the RAM
 * the machine has; sizes of 32 GiB - 1 MiB and more would use the extended
 * size field, which with 16 GiB devices is never needed but is handled.
 */
#ifndef BURROW_SMBIOS_H
#define BURROW_SMBIOS_H

#include <stdint.h>
#include <stddef.h>

struct fw_cfg;

#define SMBIOS_FILE_ANCHOR "etc/smbios/smbios-anchor"
#define SMBIOS_FILE_TABLES "etc/smbios/smbios-tables"

#define SMBIOS_MAJOR 3
#define SMBIOS_MINOR 0

#define SMBIOS_EP32_LEN 0x1f      /* "_SM_" entry point */
#define SMBIOS_EP64_LEN 0x18      /* "_SM3_" entry point */

#define SMBIOS_MAX_CPUS     1024
#define SMBIOS_DIMM_MAX     (16ULL << 30)   /* bytes per type 17 device */
#define SMBIOS_HIGHMEM_BASE (4ULL << 30)

/* Structure types */
#define SMBIOS_TYPE_BIOS           0
#define SMBIOS_TYPE_SYSTEM         1
#define SMBIOS_TYPE_CHASSIS        3
#define SMBIOS_TYPE_PROCESSOR      4
#define SMBIOS_TYPE_MEMORY_ARRAY   16
#define SMBIOS_TYPE_MEMORY_DEVICE  17
#define SMBIOS_TYPE_ARRAY_MAPPED   19
#define SMBIOS_TYPE_BOOT_INFO      32
#define SMBIOS_TYPE_END            127

enum smbios_entry_point {
    SMBIOS_EP_32 = 0,   /* SMBIOS 2.1 "_SM_" 31-byte entry point (default):
                           readable by every OS, table below 4 GiB, < 64 KiB */
    SMBIOS_EP_64,       /* SMBIOS 3.0 "_SM3_" 24-byte entry point */
};

struct smbios_config {
    unsigned ncpus;             /* 1..SMBIOS_MAX_CPUS: one type 4 each */
    uint64_t lowmem_end;        /* RAM [0, lowmem_end); 1 MiB multiple, <= 4 GiB */
    uint64_t highmem_size;      /* RAM [4 GiB, 4 GiB + highmem_size); 1 MiB multiple */
    uint8_t uuid[16];           /* RFC 4122 byte order (the order it is printed in);
                                   stored in type 1 in the SMBIOS 2.6+ encoding */
    uint64_t bios_size;         /* firmware image size in bytes, 0 if unknown */
    enum smbios_entry_point entry_point;
};

/* Builds the entry point (*anchor) and structure table (*tables), both
 * malloc'ed and owned by the caller.  The entry point's table address is 0
 * and its checksums are valid for that.  Returns 0, or -1 on a bad config
 * (logged) or when out of memory. */
int smbios_build(const struct smbios_config *cfg, uint8_t **anchor, size_t *anchor_len,
                 uint8_t **tables, size_t *tables_len);

/* Adds SMBIOS_FILE_ANCHOR and SMBIOS_FILE_TABLES to fw.  Returns 0 or -1. */
int smbios_build_fw_cfg(const struct smbios_config *cfg, struct fw_cfg *fw);

/* A random (version 4, RFC 4122) UUID, from the kernel's random source.
 * Returns 0, or -1 if none could be had. */
int smbios_random_uuid(uint8_t uuid[16]);

/* Parses "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (hex digits, either case).
 * Returns 0, or -1 when s is not such a UUID. */
int smbios_uuid_parse(const char *s, uint8_t uuid[16]);

/* Prints uuid as 36 characters "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" and a
 * NUL into out. */
void smbios_uuid_format(const uint8_t uuid[16], char out[37]);

#endif
