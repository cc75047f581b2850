/* ACPI tables for the i440FX/PIIX3 machine (ACPI 6.x): RSDP, RSDT, XSDT,
 * FADT, FACS, MADT and a DSDT written in AML by a small encoder.
 *
 * Two ways out:
 *  - acpi_build_fw_cfg(): the fw_cfg files "etc/acpi/tables",
 *    "etc/acpi/rsdp" and "etc/table-loader" (BIOS linker/loader commands)
 *    from which SeaBIOS places and patches the tables itself;
 *  - acpi_build_in_memory(): tables written straight into guest RAM with
 *    absolute addresses and checksums, for booting Linux without firmware.
 */
#ifndef BURROW_ACPI_H
#define BURROW_ACPI_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

struct fw_cfg;
struct guest_mem;

#define ACPI_RSDP_ADDR      0xe0000   /* where acpi_build_in_memory puts the RSDP */
#define ACPI_IOAPIC_ADDR    0xfec00000u
#define ACPI_LAPIC_ADDR     0xfee00000u
#define ACPI_MAX_CPUS       254       /* xAPIC ids; the IOAPIC takes id ncpus */
#define ACPI_TABLE_ALIGN    64        /* the FACS needs 64-byte alignment */

/* BIOS linker/loader commands ("etc/table-loader"): 128-byte entries */
#define ACPI_LOADER_ENTRY_SIZE     128
#define ACPI_LOADER_FILESZ         56
#define ACPI_LOADER_ALLOCATE       1
#define ACPI_LOADER_ADD_POINTER    2
#define ACPI_LOADER_ADD_CHECKSUM   3
#define ACPI_LOADER_ZONE_HIGH      1
#define ACPI_LOADER_ZONE_FSEG      2

#define ACPI_FILE_TABLES  "etc/acpi/tables"
#define ACPI_FILE_RSDP    "etc/acpi/rsdp"
#define ACPI_FILE_LOADER  "etc/table-loader"

struct acpi_config {
    unsigned ncpus;              /* 1..ACPI_MAX_CPUS; APIC id = index */
    uint64_t lowmem_end;         /* end of RAM below 4 GiB (<= 0xfec00000) */
    uint64_t highmem_size;       /* RAM from 4 GiB up */
    unsigned phys_addr_bits;     /* guest physical address width, for the
                                    64-bit PCI window; 0 means 40 */
    uint16_t pm_base;            /* ACPI PM block (PM1a_EVT); PM1a_CNT at +4,
                                    PM_TMR at +8, GPE0 at +0x20 */
    unsigned sci_gsi;
    uint16_t reset_port;         /* FADT reset register (system I/O) */
    uint8_t reset_value;
    uint16_t com1_port;          /* 0: no COM1 in the DSDT */
    unsigned com1_irq;
    bool ps2;                    /* i8042 keyboard and mouse */
    bool rtc;                    /* MC146818 at 0x70 */
    bool fw_cfg;                 /* describe the fw_cfg ports (QEMU0002) */
};

/* Fills in the machine's fixed layout: PM at 0x600, SCI 9, reset 0xcf9/6,
 * COM1 0x3f8/IRQ4, PS/2, RTC and fw_cfg present. */
void acpi_config_default(struct acpi_config *cfg, unsigned ncpus,
                         uint64_t lowmem_end, uint64_t highmem_size);

/* Adds the three fw_cfg files.  Returns 0, or -1 (bad config, no memory,
 * files already there). */
int acpi_build_fw_cfg(const struct acpi_config *cfg, struct fw_cfg *fw);

/* Writes all tables but the RSDP at base_gpa (64-byte aligned, must not
 * overlap the RSDP) and the RSDP at ACPI_RSDP_ADDR.  Returns the RSDP's
 * address, or 0 on failure.  The caller marks [base_gpa, +size) as ACPI
 * memory in the E820 map, size from acpi_tables_size(). */
uint64_t acpi_build_in_memory(const struct acpi_config *cfg, struct guest_mem *mem,
                              uint64_t base_gpa);
/* Bytes acpi_build_in_memory writes at base_gpa; 0 on a bad config. */
size_t acpi_tables_size(const struct acpi_config *cfg);

/* ---- AML encoder (ACPI 6.x, chapter 20) ----
 * Bytes go into a growable buffer; constructs with a PkgLength are opened
 * with aml_*_begin(), which returns a mark, and closed with aml_end(mark),
 * which inserts the encoded length.  Errors (bad name, no memory) set
 * `error` and the buffer must not be used. */
struct aml {
    uint8_t *data;
    size_t len, cap;
    bool error;
};

void aml_init(struct aml *a);
void aml_free(struct aml *a);
void aml_emit(struct aml *a, const void *p, size_t n);
void aml_byte(struct aml *a, uint8_t b);

/* PkgLength for a body of body_len bytes that follows it (the encoding
 * counts its own bytes).  Returns the encoded size 1-4, or 0 if too long. */
size_t aml_pkglength(uint8_t out[4], size_t body_len);

/* Integer: ZeroOp, OneOp, OnesOp or the smallest Byte/Word/DWord/QWord. */
void aml_integer(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* Name path such as "_HID", "\\_SB.PCI0", "^PCI0"; segments shorter than
 * four characters are padded with '_'. */
void aml_namestring(struct aml *a, const char *path);
/* EISA id such as "PNP0A03", always as a DWordConst. */
void aml_eisaid(struct aml *a, const char *id);
/* NameOp and the name; the caller then emits the value. */
void aml_name(struct aml *a, const char *name);
void aml_name_int(struct aml *a, const char *name, uint64_t v);
void aml_name_string(struct aml *a, const char *name, const char *s);
void aml_name_eisaid(struct aml *a, const char *name, const char *id);
/* ReturnOp; the caller then emits the value. */
void aml_return(struct aml *a);
/* Buffer(len){bytes} */
void aml_buffer(struct aml *a, const void *bytes, size_t len);

size_t aml_scope_begin(struct aml *a, const char *name);
size_t aml_device_begin(struct aml *a, const char *name);
size_t aml_method_begin(struct aml *a, const char *name, unsigned nargs, bool serialized);
size_t aml_package_begin(struct aml *a, unsigned nelements);   /* <= 255 */
void aml_end(struct aml *a, size_t mark);

/* Resource descriptors (ACPI 6.x, 6.4) appended to a template buffer r;
 * aml_resource_template() then adds the end tag (with its checksum) and
 * emits the template as a Buffer into a. */
void aml_res_io(struct aml *r, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
void aml_res_irq_noflags(struct aml *r, unsigned irq);
void aml_res_word_bus(struct aml *r, uint16_t min, uint16_t max);
void aml_res_word_io(struct aml *r, uint16_t min, uint16_t max);
void aml_res_dword_mem(struct aml *r, uint32_t min, uint32_t max);
void aml_res_qword_mem(struct aml *r, uint64_t min, uint64_t max);
void aml_resource_template(struct aml *a, struct aml *r);

#endif
