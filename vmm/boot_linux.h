/* Direct boot of a Linux bzImage through the 64-bit boot protocol
 * (Documentation/arch/x86/boot.rst): the protected-mode kernel at 1 MiB,
 * boot_params ("zero page") and the command line in low memory, the initrd
 * at the top of RAM below initrd_addr_max, and a boot vCPU already in long
 * mode on identity-mapped page tables, entering at the kernel's startup_64
 * (load address + 0x200) with RSI = boot_params. */
#ifndef BURROW_BOOT_LINUX_H
#define BURROW_BOOT_LINUX_H

#include <stdint.h>
#include <stddef.h>

#include "devices/e820.h"
#include "devices/guest_mem.h"

/* Where the loader puts things; all of it must be guest RAM.  The region
 * 0x500-0xefff and the command line buffer belong to the loader until the
 * kernel starts; ACPI tables and firmware data must not sit in E820_RAM
 * entries, or the initrd may be placed over them. */
#define LINUX_BOOT_GDT_ADDR       0x500ULL
#define LINUX_BOOT_PARAMS_ADDR    0x7000ULL     /* 4 KiB */
#define LINUX_BOOT_STACK_TOP      0x9000ULL     /* 0x8000-0x8fff */
#define LINUX_BOOT_PML4_ADDR      0x9000ULL
#define LINUX_BOOT_PDPT_ADDR      0xa000ULL
#define LINUX_BOOT_PD_ADDR        0xb000ULL     /* 4 pages: 0-4 GiB in 2 MiB pages */
#define LINUX_BOOT_CMDLINE_ADDR   0x20000ULL
#define LINUX_BOOT_CMDLINE_MAX    0x10000ULL    /* buffer size, NUL included */
#define LINUX_BOOT_KERNEL_ADDR    0x100000ULL

/* The boot protocol's fixed selectors for the 64-bit entry. */
#define LINUX_BOOT_CS 0x10
#define LINUX_BOOT_DS 0x18

#define LINUX_BOOT_E820_MAX 128

struct linux_boot_config {
    const char *kernel;                 /* bzImage path; required */
    const char *initrd;                 /* path, or NULL for none */
    const char *cmdline;                /* NULL means empty */
    const struct e820_entry *e820;      /* the machine's memory map */
    unsigned ne820;                     /* 1..LINUX_BOOT_E820_MAX */
    uint64_t rsdp_addr;                 /* ACPI RSDP, 0 if none */
};

/* What the boot vCPU needs, plus where things went (for logs and tests). */
struct linux_boot_entry {
    uint64_t rip;                       /* kernel load address + 0x200 */
    uint64_t rsi;                       /* boot_params */
    uint64_t rsp;
    uint64_t cr3;
    uint64_t gdt_base;
    uint16_t gdt_limit;

    uint16_t protocol;                  /* boot protocol version, e.g. 0x020f */
    uint64_t kernel_addr, kernel_size;  /* protected-mode part as loaded */
    uint64_t initrd_addr, initrd_size;  /* 0, 0 without an initrd */
    uint64_t cmdline_addr;
};

/* Loads kernel, initrd and command line into guest memory and writes
 * boot_params, the GDT and the page tables.  Returns 0, or -1 with a
 * one-line reason in err (a bad or truncated image, an initrd that does not
 * fit, a command line longer than the kernel accepts, ...). */
int linux_boot_load(struct guest_mem *mem, const struct linux_boot_config *cfg,
                    struct linux_boot_entry *out, char *err, size_t errlen);

/* Programs the boot vCPU (KVM_SET_SREGS, KVM_SET_REGS) for the 64-bit
 * entry: long mode, CS 0x10 / DS 0x18 flat, paging on, interrupts off.
 * Call after KVM_SET_CPUID2.  Returns 0, or -1 with errno set (logged). */
int linux_boot_setup_vcpu(int vcpu_fd, const struct linux_boot_entry *e);

#endif
