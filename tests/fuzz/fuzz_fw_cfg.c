/* fw_cfg (devices/fw_cfg.c) as firmware reads it: the selector, byte-wise
 * data reads, and DMA through FWCfgDmaAccess structures in guest RAM.  The
 * device holds what the machine gives SeaBIOS: numeric items, a kernel
 * command line, and named files (a boot order, a table bigger than a page,
 * an empty file).
 *
 * Input: the ops of fuzz_machine.h.  Window 0 = ports 0x510-0x51b (the
 * selector at 0, data at 1, the DMA address at 4-11, big-endian, the
 * transfer starting on the write of its low half at 8).  DMA structures
 * and their buffers are laid out with RAM ops.  No TARGET op. */
#include <stdlib.h>
#include <string.h>

#include "devices/fw_cfg.h"
#include "fuzz/fuzz_machine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t table[5000];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz f;
    fz_init(&f);
    struct fw_cfg *fw = fw_cfg_create(&f.h->plat);
    if (!fw)
        abort();
    for (size_t i = 0; i < sizeof(table); i++)
        table[i] = (uint8_t)(i * 7);
    if (fw_cfg_add_i32(fw, FW_CFG_NB_CPUS, 2) < 0 || fw_cfg_add_i64(fw, FW_CFG_RAM_SIZE, FZ_RAM_SIZE) < 0 ||
        fw_cfg_add_string(fw, FW_CFG_KERNEL_CMDLINE, "console=ttyS0") < 0 ||
        fw_cfg_add_file(fw, "bootorder", "/pci@i0cf8/*@3\n", 16) < 0 ||
        fw_cfg_add_file(fw, "etc/acpi/tables", table, sizeof(table)) < 0 ||
        fw_cfg_add_file(fw, "etc/empty", "", 0) < 0)
        abort();
    fz_add_pio(&f, "fw_cfg", FW_CFG_PORT_SEL, FW_CFG_PORT_LEN);
    fz_run(&f, data, size);
    fw_cfg_destroy(fw);
    fz_fini(&f);
    return 0;
}
