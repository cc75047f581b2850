/* A guest-side driver for the Intel 82540EM, written for the device
 * harness from Intel's "PCI/PCI-X Family of Gigabit Ethernet Controllers
 * Software Developer's Manual" (8254x) and independent of the device code:
 * it places the BARs, reads the MAC address from the EEPROM (EERD and the
 * bit-banged Microwire interface), checks the EEPROM checksum, talks to
 * the PHY through MDIC, sets up legacy receive and transmit rings, and
 * sends packets with legacy, context and data descriptors. */
#ifndef BURROW_TEST_E1000_DRIVER_H
#define BURROW_TEST_E1000_DRIVER_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

#include "devices/pci.h"
#include "support/harness_platform.h"

/* Register offsets (SDM 13.3) */
#define E1K_CTRL    0x0000
#define E1K_STATUS  0x0008
#define E1K_EECD    0x0010
#define E1K_EERD    0x0014
#define E1K_MDIC    0x0020
#define E1K_ICR     0x00c0
#define E1K_ICS     0x00c8
#define E1K_IMS     0x00d0
#define E1K_IMC     0x00d8
#define E1K_RCTL    0x0100
#define E1K_TCTL    0x0400
#define E1K_RDBAL   0x2800
#define E1K_RDBAH   0x2804
#define E1K_RDLEN   0x2808
#define E1K_RDH     0x2810
#define E1K_RDT     0x2818
#define E1K_TDBAL   0x3800
#define E1K_TDBAH   0x3804
#define E1K_TDLEN   0x3808
#define E1K_TDH     0x3810
#define E1K_TDT     0x3818
#define E1K_GPRC    0x4074
#define E1K_GPTC    0x4080
#define E1K_MTA     0x5200
#define E1K_RAL0    0x5400
#define E1K_RAH0    0x5404

#define E1K_ICR_TXDW  0x01
#define E1K_ICR_LSC   0x04
#define E1K_ICR_RXT0  0x80
#define E1K_STATUS_LU 0x02
#define E1K_RCTL_EN   (1u << 1)
#define E1K_RCTL_UPE  (1u << 3)
#define E1K_RCTL_MPE  (1u << 4)
#define E1K_RCTL_LPE  (1u << 5)
#define E1K_RCTL_BAM  (1u << 15)
#define E1K_RCTL_SECRC (1u << 26)

struct e1000_drv {
    struct harness *h;
    struct pci_bus *bus;
    uint8_t devfn;
    uint64_t mmio;                 /* BAR0 */
    uint16_t io;                   /* BAR1 */
    uint64_t heap;                 /* bump allocator in harness RAM */
    uint64_t heap_end;
    uint8_t mac[6];
    /* receive ring */
    uint64_t rx_ring, rx_bufs;
    uint32_t rx_n, rx_next;        /* next descriptor the driver looks at */
    uint32_t rx_bufsize;
    bool strip_crc;
    /* transmit ring */
    uint64_t tx_ring, tx_bufs;
    uint32_t tx_n, tx_tail;
    uint32_t tx_bufsize;
};

/* Finds 8086:100e, places BAR0 at mmio_base and BAR1 at io_base, enables
 * decoding and bus mastering.  RAM from heap_base on is the driver's. */
int e1k_probe(struct e1000_drv *d, struct harness *h, struct pci_bus *bus, uint64_t mmio_base,
              uint16_t io_base, uint64_t heap_base, uint64_t heap_end);

uint32_t e1k_rd(struct e1000_drv *d, unsigned reg);
void e1k_wr(struct e1000_drv *d, unsigned reg, uint32_t v);
/* Same through the IOADDR/IODATA window of BAR1. */
uint32_t e1k_io_rd(struct e1000_drv *d, unsigned reg);
void e1k_io_wr(struct e1000_drv *d, unsigned reg, uint32_t v);

/* EEPROM word through EERD (SDM 13.4.4); -1 if DONE never comes. */
int e1k_eerd(struct e1000_drv *d, unsigned word);
/* EEPROM word through the Microwire pins in EECD (SDM 5.3.1). */
int e1k_eeprom_bitbang(struct e1000_drv *d, unsigned word);
/* PHY register through MDIC (SDM 13.4.7); -1 on error. */
int e1k_phy_read(struct e1000_drv *d, unsigned reg);
int e1k_phy_write(struct e1000_drv *d, unsigned reg, uint16_t v);

/* Global reset, MAC from the EEPROM (checksum verified), receive address
 * 0, empty multicast table, rings of rx_n/tx_n descriptors (multiples of
 * 8) with 2 KiB buffers, RCTL/TCTL enabled with rctl_extra bits, all
 * interrupts unmasked.  Returns 0 or -1. */
int e1k_init(struct e1000_drv *d, uint32_t rx_n, uint32_t tx_n, uint32_t rctl_extra);

/* Sends one frame with a legacy descriptor (EOP, IFCS, RS); split into
 * `pieces` descriptors to exercise gathering.  Waits until the device
 * reports it done (DD) while running the harness loop.  Returns 0 or -1. */
int e1k_send(struct e1000_drv *d, const uint8_t *frame, size_t len, unsigned pieces);

/* Context descriptor followed by data descriptors (SDM 3.3.6/3.3.7).
 * tse: TCP segmentation with hdrlen/mss; popts: IXSM (1) and TXSM (2). */
struct e1k_offload {
    uint8_t ipcss, ipcso, tucss, tucso;
    uint16_t ipcse, tucse;
    bool tcp, ipv4, tse;
    uint8_t hdrlen;
    uint16_t mss;
    uint8_t popts;
};
int e1k_send_offload(struct e1000_drv *d, const uint8_t *frame, size_t len,
                     const struct e1k_offload *o);

/* Raw descriptor access for tests that build bad rings. */
void e1k_write_tx_desc(struct e1000_drv *d, uint32_t i, const uint8_t desc[16]);

/* Next received frame (following EOP across descriptors), copied into buf;
 * returns its length, 0 if none is complete, -1 on a descriptor error.
 * Hands the descriptors back by advancing RDT. */
int e1k_recv(struct e1000_drv *d, uint8_t *buf, size_t cap);

/* Guest RAM access. */
void e1k_mem_write(struct e1000_drv *d, uint64_t gpa, const void *buf, size_t len);
void e1k_mem_read(struct e1000_drv *d, uint64_t gpa, void *buf, size_t len);
uint64_t e1k_alloc(struct e1000_drv *d, uint64_t size, uint64_t align);

#endif
