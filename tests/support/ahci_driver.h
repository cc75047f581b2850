/* A guest-side AHCI driver for the device harness, written from the Serial
 * ATA AHCI 1.3.1 specification and independent of the device code: it finds
 * the HBA in PCI configuration space, places ABAR, enables AHCI mode, sets
 * up each port's command list and received-FIS area (10.1.2), builds
 * command headers, command tables with a Register H2D FIS, an ATAPI command
 * and a PRD table, issues commands through PxCI and waits for them. */
#ifndef BURROW_TEST_AHCI_DRIVER_H
#define BURROW_TEST_AHCI_DRIVER_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

#include "devices/pci.h"
#include "support/harness_platform.h"

/* Generic host control (3.1) */
#define ADRV_CAP      0x00
#define ADRV_GHC      0x04
#define ADRV_IS       0x08
#define ADRV_PI       0x0c
#define ADRV_VS       0x10
#define ADRV_CAP2     0x24
#define  ADRV_GHC_HR  (1u << 0)
#define  ADRV_GHC_IE  (1u << 1)
#define  ADRV_GHC_AE  (1u << 31)
#define  ADRV_CAP_S64A (1u << 31)
#define  ADRV_CAP_SNCQ (1u << 30)

/* Port registers (3.3), offsets within a port's 80h bytes */
#define ADRV_PX_CLB   0x00
#define ADRV_PX_CLBU  0x04
#define ADRV_PX_FB    0x08
#define ADRV_PX_FBU   0x0c
#define ADRV_PX_IS    0x10
#define ADRV_PX_IE    0x14
#define ADRV_PX_CMD   0x18
#define ADRV_PX_TFD   0x20
#define ADRV_PX_SIG   0x24
#define ADRV_PX_SSTS  0x28
#define ADRV_PX_SCTL  0x2c
#define ADRV_PX_SERR  0x30
#define ADRV_PX_SACT  0x34
#define ADRV_PX_CI    0x38

#define ADRV_IS_DHRS  (1u << 0)
#define ADRV_IS_PSS   (1u << 1)
#define ADRV_IS_SDBS  (1u << 3)
#define ADRV_IS_DPS   (1u << 5)
#define ADRV_IS_TFES  (1u << 30)

#define ADRV_CMD_ST   (1u << 0)
#define ADRV_CMD_SUD  (1u << 1)
#define ADRV_CMD_POD  (1u << 2)
#define ADRV_CMD_FRE  (1u << 4)
#define ADRV_CMD_FR   (1u << 14)
#define ADRV_CMD_CR   (1u << 15)

/* Received FIS area (4.2.1) */
#define ADRV_RFIS_PIO 0x20
#define ADRV_RFIS_D2H 0x40
#define ADRV_RFIS_SDB 0x58

#define ADRV_MAX_PORTS 32
#define ADRV_MAX_PRD   64

struct adrv_port {
    uint64_t clb;                   /* command list: 32 headers of 32 bytes */
    uint64_t fb;                    /* received-FIS area, 256 bytes */
    uint64_t ctba[32];              /* one command table per slot */
};

struct adrv {
    struct harness *h;
    struct pci_bus *bus;
    uint8_t devfn;
    uint64_t abar;
    uint32_t cap, pi;
    unsigned nslots;
    uint64_t heap;                  /* bump allocator in harness RAM */
    struct adrv_port port[ADRV_MAX_PORTS];
};

struct adrv_prd {
    uint64_t addr;
    uint32_t len;                   /* bytes, even */
    bool irq;                       /* interrupt on completion of this entry */
};

/* A command: the Register H2D FIS fields, optional ATAPI packet, PRDs. */
struct adrv_cmd {
    uint8_t command;
    uint16_t feature;
    uint64_t lba;
    uint16_t count;
    uint8_t device;
    bool write;                     /* header W: data toward the device */
    bool atapi;                     /* header A: ACMD holds a packet */
    uint8_t packet[16];
    struct adrv_prd prd[ADRV_MAX_PRD];
    unsigned nprd;
    uint16_t prdtl_override;        /* nonzero: write this PRDTL instead of nprd */
    uint8_t fis_type;               /* 0: 27h (Register H2D) */
    bool control;                   /* C bit clear: device control update */
    uint8_t devctl;
};

/* GSI that the device's INTx pin reaches on a harness_pci_bus_init bus. */
unsigned adrv_intx_gsi(const struct adrv *d);
/* Places ABAR (BAR 5) at mmio_base, enables memory decoding and bus
 * mastering, sets GHC.AE, reads CAP and PI.  Returns 0 or -1. */
int adrv_probe(struct adrv *d, struct harness *h, struct pci_bus *bus, uint8_t devfn, uint64_t mmio_base);

uint32_t adrv_read(struct adrv *d, unsigned off);
void adrv_write(struct adrv *d, unsigned off, uint32_t v);
uint32_t adrv_pread(struct adrv *d, unsigned port, unsigned reg);
void adrv_pwrite(struct adrv *d, unsigned port, unsigned reg, uint32_t v);

uint64_t adrv_alloc(struct adrv *d, uint64_t size, uint64_t align);
void adrv_mem_write(struct adrv *d, uint64_t gpa, const void *buf, size_t len);
void adrv_mem_read(struct adrv *d, uint64_t gpa, void *buf, size_t len);

/* Port set-up (10.1.2 and 10.3.1): stops the port, places the command list
 * and FIS area, clears SERR and IS, enables FIS receive and interrupts
 * (ie), waits for the device to be ready, starts the port.  Returns 0, or
 * -1 when no device is present or it stays busy. */
int adrv_port_start(struct adrv *d, unsigned port, uint32_t ie);
/* Clears ST and FRE and waits for CR and FR to drop; -1 on timeout. */
int adrv_port_stop(struct adrv *d, unsigned port);

/* Writes the command header and table for slot (does not issue). */
void adrv_build(struct adrv *d, unsigned port, unsigned slot, const struct adrv_cmd *c);
/* Sets PxCI bits. */
void adrv_issue(struct adrv *d, unsigned port, uint32_t slots);
/* Runs the harness until the PxCI bits in mask are clear or PxIS.TFES is
 * set.  Returns 0 when the commands completed, -1 on a task file error,
 * -2 on timeout. */
int adrv_wait(struct adrv *d, unsigned port, uint32_t mask, int timeout_ms);
/* Runs the harness until PxSACT & mask is 0 or TFES; same returns. */
int adrv_wait_sact(struct adrv *d, unsigned port, uint32_t mask, int timeout_ms);
/* Build, issue and wait in slot 0.  Same returns as adrv_wait. */
int adrv_exec(struct adrv *d, unsigned port, const struct adrv_cmd *c, int timeout_ms);
/* Non-queued error recovery (6.2.2.1): ST off, clear SERR and IS, ST on. */
void adrv_recover(struct adrv *d, unsigned port);

/* PRDBC of a slot's command header. */
uint32_t adrv_prdbc(struct adrv *d, unsigned port, unsigned slot);
/* Copies len bytes at off of the port's received-FIS area. */
void adrv_rfis(struct adrv *d, unsigned port, unsigned off, void *buf, size_t len);

/* Convenience: a one-buffer ATA command and an ATAPI packet command (DMA). */
void adrv_cmd_ata(struct adrv_cmd *c, uint8_t command, uint64_t lba, uint16_t count,
                  uint64_t buf, uint32_t len, bool write);
void adrv_cmd_packet(struct adrv_cmd *c, const uint8_t *cdb, unsigned cdb_len, uint64_t buf, uint32_t len);

#endif
