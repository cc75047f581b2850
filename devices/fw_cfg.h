/* QEMU-compatible firmware configuration device (fw_cfg), x86 port-I/O
 * flavour: selector at 0x510, data at 0x511, DMA address at 0x514-0x51b.
 * Firmware (SeaBIOS, OVMF) and the Linux qemu_fw_cfg driver read items and
 * named files through it.  All items are read-only for the guest. */
#ifndef BURROW_FW_CFG_H
#define BURROW_FW_CFG_H

#include <stdint.h>
#include <stddef.h>

#include "devices/platform.h"

#define FW_CFG_PORT_SEL   0x510   /* 16-bit write: select an item */
#define FW_CFG_PORT_DATA  0x511   /* 8-bit read: next byte of the item */
#define FW_CFG_PORT_DMA   0x514   /* 64-bit big-endian DMA address */
#define FW_CFG_PORT_LEN   12      /* 0x510..0x51b */

/* Well-known item keys */
#define FW_CFG_SIGNATURE      0x0000
#define FW_CFG_ID             0x0001
#define FW_CFG_UUID           0x0002
#define FW_CFG_RAM_SIZE       0x0003
#define FW_CFG_NOGRAPHIC      0x0004
#define FW_CFG_NB_CPUS        0x0005
#define FW_CFG_MACHINE_ID     0x0006
#define FW_CFG_KERNEL_ADDR    0x0007
#define FW_CFG_KERNEL_SIZE    0x0008
#define FW_CFG_KERNEL_CMDLINE 0x0009
#define FW_CFG_INITRD_ADDR    0x000a
#define FW_CFG_INITRD_SIZE    0x000b
#define FW_CFG_BOOT_DEVICE    0x000c
#define FW_CFG_NUMA           0x000d
#define FW_CFG_BOOT_MENU      0x000e
#define FW_CFG_MAX_CPUS       0x000f
#define FW_CFG_KERNEL_ENTRY   0x0010
#define FW_CFG_KERNEL_DATA    0x0011
#define FW_CFG_INITRD_DATA    0x0012
#define FW_CFG_CMDLINE_ADDR   0x0013
#define FW_CFG_CMDLINE_SIZE   0x0014
#define FW_CFG_CMDLINE_DATA   0x0015
#define FW_CFG_SETUP_ADDR     0x0016
#define FW_CFG_SETUP_SIZE     0x0017
#define FW_CFG_SETUP_DATA     0x0018
#define FW_CFG_FILE_DIR       0x0019
#define FW_CFG_FILE_FIRST     0x0020
#define FW_CFG_WRITE_CHANNEL  0x4000  /* selector bit: write access (unused) */
#define FW_CFG_ARCH_LOCAL     0x8000
/* x86 architecture-local items */
#define FW_CFG_ACPI_TABLES    0x8000
#define FW_CFG_SMBIOS_ENTRIES 0x8001
#define FW_CFG_IRQ0_OVERRIDE  0x8002
#define FW_CFG_E820_TABLE     0x8003
#define FW_CFG_HPET           0x8004

/* FW_CFG_ID feature bits */
#define FW_CFG_VERSION        0x01    /* traditional interface */
#define FW_CFG_VERSION_DMA    0x02

/* DMA control word bits (FWCfgDmaAccess.control, big-endian) */
#define FW_CFG_DMA_CTL_ERROR  0x01
#define FW_CFG_DMA_CTL_READ   0x02
#define FW_CFG_DMA_CTL_SKIP   0x04
#define FW_CFG_DMA_CTL_SELECT 0x08
#define FW_CFG_DMA_CTL_WRITE  0x10

#define FW_CFG_DMA_SIGNATURE  0x51454d5520434647ULL  /* "QEMU CFG" */
#define FW_CFG_MAX_FILE_PATH  56

struct fw_cfg;

/* Creates the device with its signature, ID and (empty) file directory
 * items and registers its ports on p->pio.  NULL on failure. */
struct fw_cfg *fw_cfg_create(struct platform *p);
/* Unregisters the ports and frees every item. */
void fw_cfg_destroy(struct fw_cfg *fw);
/* Selector back to item 0, offset 0, DMA address cleared. */
void fw_cfg_reset(struct fw_cfg *fw);

/* Adds or replaces the item `key` with a copy of data.  Returns 0, or -1
 * (bad key, too large, out of memory).  Keys 0x0000, 0x0001 and 0x0019 are
 * the device's own and are refused. */
int fw_cfg_add_bytes(struct fw_cfg *fw, uint16_t key, const void *data, size_t len);
int fw_cfg_add_i16(struct fw_cfg *fw, uint16_t key, uint16_t v);   /* little-endian */
int fw_cfg_add_i32(struct fw_cfg *fw, uint16_t key, uint32_t v);
int fw_cfg_add_i64(struct fw_cfg *fw, uint16_t key, uint64_t v);
/* Adds a NUL-terminated string, terminator included. */
int fw_cfg_add_string(struct fw_cfg *fw, uint16_t key, const char *s);

/* Adds a named file (a copy of data).  Keys are handed out from 0x0020 in
 * the order files are added; the directory (item 0x0019) lists files sorted
 * by name.  Returns the key, or -1 (name empty/too long/duplicate, too many
 * files, out of memory). */
int fw_cfg_add_file(struct fw_cfg *fw, const char *name, const void *data, size_t len);
/* Replaces the contents of an existing file; 0, or -1 if there is none. */
int fw_cfg_modify_file(struct fw_cfg *fw, const char *name, const void *data, size_t len);
/* Contents of a file, or NULL if there is none. */
const void *fw_cfg_file_data(const struct fw_cfg *fw, const char *name, size_t *len);

#endif
