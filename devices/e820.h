/* The guest's physical memory map, in the BIOS E820 format that both the
 * Linux boot protocol and fw_cfg's "etc/e820" use. */
#ifndef BURROW_E820_H
#define BURROW_E820_H

#include <stdint.h>

#define E820_RAM      1
#define E820_RESERVED 2
#define E820_ACPI     3

struct e820_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
} __attribute__((packed));

#endif
