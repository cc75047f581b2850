/* Intel 82540EM (8254x SDM, rev. 4.0; chapter and table names below refer
 * to it). */
#include "devices/e1000.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/net/net.h"
#include "devices/net/offload.h"
#include "devices/util.h"

#define E1000_VENDOR   0x8086
#define E1000_DEVICE   0x100e
#define E1000_SUBSYS   0x001e
#define E1000_MMIO_SIZE 0x20000
#define E1000_IO_SIZE  0x40

/* Registers (13.3) */
#define CTRL      0x0000
#define STATUS    0x0008
#define EECD      0x0010
#define EERD      0x0014
#define CTRL_EXT  0x0018
#define MDIC      0x0020
#define ICR       0x00c0
#define ITR       0x00c4
#define ICS       0x00c8
#define IMS       0x00d0
#define IMC       0x00d8
#define RCTL      0x0100
#define TCTL      0x0400
#define RDBAL     0x2800
#define RDBAH     0x2804
#define RDLEN     0x2808
#define RDH       0x2810
#define RDT       0x2818
#define TDBAL     0x3800
#define TDBAH     0x3804
#define TDLEN     0x3808
#define TDH       0x3810
#define TDT       0x3818
#define STATS_START 0x4000
#define STATS_END   0x4100
#define MPC       0x4010
#define GPRC      0x4074
#define BPRC      0x4078
#define MPRC      0x407c
#define GPTC      0x4080
#define GORCL     0x4088
#define GORCH     0x408c
#define GOTCL     0x4090
#define GOTCH     0x4094
#define ROC       0x40ac
#define TORL      0x40c0
#define TORH      0x40c4
#define TOTL      0x40c8
#define TOTH      0x40cc
#define TPR       0x40d0
#define TPT       0x40d4
#define MTA       0x5200     /* 128 entries */
#define RA        0x5400     /* 16 pairs RAL/RAH */
#define RA_ENTRIES 16
#define RAH_AV    (1u << 31)

/* CTRL (13.4.1) */
#define CTRL_FD     (1u << 0)
#define CTRL_SLU    (1u << 6)
#define CTRL_RST    (1u << 26)
#define CTRL_PHY_RST (1u << 31)
/* STATUS (13.4.2) */
#define STATUS_FD        (1u << 0)
#define STATUS_LU        (1u << 1)
#define STATUS_SPEED_1000 (2u << 6)
/* EECD (13.4.3) */
#define EECD_SK     (1u << 0)
#define EECD_CS     (1u << 1)
#define EECD_DI     (1u << 2)
#define EECD_DO     (1u << 3)
#define EECD_REQ    (1u << 6)
#define EECD_GNT    (1u << 7)
#define EECD_PRES   (1u << 8)
#define EECD_WRITABLE (EECD_SK | EECD_CS | EECD_DI | EECD_REQ | (3u << 4))
/* EERD (13.4.4) */
#define EERD_START  (1u << 0)
#define EERD_DONE   (1u << 4)
#define EERD_ADDR_SHIFT 8
#define EERD_DATA_SHIFT 16
/* MDIC (13.4.7) */
#define MDIC_DATA_MASK 0xffffu
#define MDIC_REG_SHIFT 16
#define MDIC_PHY_SHIFT 21
#define MDIC_OP_WRITE (1u << 26)
#define MDIC_OP_READ  (2u << 26)
#define MDIC_READY  (1u << 28)
#define MDIC_INT    (1u << 29)
#define MDIC_ERROR  (1u << 30)
/* Interrupt causes (13.4.17) */
#define ICR_TXDW    (1u << 0)
#define ICR_TXQE    (1u << 1)
#define ICR_LSC     (1u << 2)
#define ICR_RXDMT0  (1u << 4)
#define ICR_RXO     (1u << 6)
#define ICR_RXT0    (1u << 7)
#define ICR_MDAC    (1u << 9)
/* RCTL (13.4.22) */
#define RCTL_EN     (1u << 1)
#define RCTL_SBP    (1u << 2)
#define RCTL_UPE    (1u << 3)
#define RCTL_MPE    (1u << 4)
#define RCTL_LPE    (1u << 5)
#define RCTL_RDMTS_SHIFT 8
#define RCTL_MO_SHIFT 12
#define RCTL_BAM    (1u << 15)
#define RCTL_BSIZE_SHIFT 16
#define RCTL_BSEX   (1u << 25)
#define RCTL_SECRC  (1u << 26)
/* TCTL (13.4.33) */
#define TCTL_EN     (1u << 1)

/* Receive descriptor (3.2.3) */
#define RXD_STAT_DD   0x01
#define RXD_STAT_EOP  0x02
#define RXD_STAT_IXSM 0x04
/* Transmit descriptors (3.3) */
#define TXD_CMD_EOP   0x01
#define TXD_CMD_IC    0x04
#define TXD_CMD_RS    0x08
#define TXD_CMD_RPS   0x10
#define TXD_CMD_DEXT  0x20
#define TXD_DCMD_TSE  0x04
#define TXD_STAT_DD   0x01
#define TXD_DTYP_CTX  0x0
#define TXD_DTYP_DATA 0x1
#define TXD_POPTS_IXSM 0x01
#define TXD_POPTS_TXSM 0x02
#define TUCMD_TCP     0x01
#define TUCMD_IP      0x02
#define TUCMD_TSE     0x04

/* PHY registers (IEEE 802.3 clause 22 and the M88E1011's own) */
#define PHY_ADDR      1
#define PHY_CTRL      0
#define PHY_STATUS    1
#define PHY_ID1       2
#define PHY_ID2       3
#define PHY_AUTONEG_ADV 4
#define PHY_LP_ABILITY 5
#define PHY_AUTONEG_EXP 6
#define PHY_1000T_CTRL 9
#define PHY_1000T_STATUS 10
#define PHY_EXT_STATUS 15
#define M88_PHY_SPEC_CTRL 16
#define M88_PHY_SPEC_STATUS 17
#define PHY_CTRL_RESET   (1u << 15)
#define PHY_CTRL_RESTART_AN (1u << 9)
#define PHY_STATUS_LINK  (1u << 2)
#define PHY_STATUS_AN_DONE (1u << 5)
#define M88_STATUS_LINK  (1u << 10)

#define EEPROM_WORDS    64
#define EEPROM_CHECKSUM_WORD 0x3f
#define EEPROM_SUM      0xbaba
#define EE_OP_READ      2    /* Microwire READ opcode after the start bit */

#define MAX_RX_PLAIN    1522      /* with a VLAN tag, no LPE */
#define MAX_RX_LONG     16384
#define MAX_TX_PLAIN    16288     /* the largest frame the 82540 sends unsegmented */

struct tx_context {
    uint8_t ipcss, ipcso, tucss, tucso;
    uint16_t ipcse, tucse;
    uint32_t paylen;
    uint8_t tucmd;
    uint8_t hdrlen;
    uint16_t mss;
};

enum ee_state { EE_IDLE, EE_CMD, EE_OUT };

struct e1000 {
    struct pci_device pci;
    struct platform *plat;
    struct net_backend *nb;
    uint8_t mac_addr[6];
    uint32_t regs[E1000_MMIO_SIZE / 4];
    uint16_t eeprom[EEPROM_WORDS];
    uint16_t phy[32];
    uint32_t ioaddr;               /* BAR1 IOADDR */
    /* Microwire EEPROM state (EECD bit-banging) */
    enum ee_state ee_state;
    unsigned ee_bits;              /* command bits shifted in */
    uint32_t ee_cmd;
    unsigned ee_addr;
    unsigned ee_bitpos;            /* next data bit to present, 0..15 */
    bool ee_do;
    /* Transmit: the packet being gathered from data descriptors. */
    struct tx_context ctx;
    uint8_t *txbuf;
    size_t txlen;
    bool tx_tse, tx_overflow, tx_bad_dma, tx_in_packet;
    uint8_t tx_popts;
    uint8_t tx_legacy_cso, tx_legacy_css;
    bool tx_legacy_ic;
    uint8_t *segbuf;
    uint8_t *rxbuf;                /* padded frame + FCS for the receive ring */
    uint8_t *rom;
    struct e1000_counters counters;
};

static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

/* The Ethernet FCS (IEEE 802.3 CRC-32). */
static uint32_t eth_fcs(const uint8_t *p, size_t len)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < len; i++)
        c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return ~c;
}

static uint32_t reg(const struct e1000 *e, unsigned off) { return e->regs[off / 4]; }
static void set_reg(struct e1000 *e, unsigned off, uint32_t v) { e->regs[off / 4] = v; }

/* --- interrupts --------------------------------------------------------- */

static void update_irq(struct e1000 *e)
{
    pci_set_intx(&e->pci, (reg(e, ICR) & reg(e, IMS)) != 0);
}

static void raise_cause(struct e1000 *e, uint32_t causes)
{
    set_reg(e, ICR, reg(e, ICR) | causes);
    update_irq(e);
}

/* --- statistics (13.7): read-to-clear counters ------------------------- */

static void stat_inc(struct e1000 *e, unsigned off, uint32_t by)
{
    uint32_t v = reg(e, off);
    set_reg(e, off, v + by < v ? 0xffffffffu : v + by);   /* saturate */
}

static void stat_add64(struct e1000 *e, unsigned lo, uint64_t by)
{
    uint64_t v = (uint64_t)reg(e, lo + 4) << 32 | reg(e, lo);
    v += by;
    set_reg(e, lo, (uint32_t)v);
    set_reg(e, lo + 4, (uint32_t)(v >> 32));
}

/* --- link and PHY ------------------------------------------------------- */

static void phy_reset(struct e1000 *e)
{
    memset(e->phy, 0, sizeof(e->phy));
    e->phy[PHY_CTRL] = 0x1140;            /* autoneg on, full duplex, 1000 Mb/s */
    e->phy[PHY_STATUS] = 0x7949;          /* capabilities; link bits set below */
    e->phy[PHY_ID1] = 0x0141;             /* Marvell M88E1011 (the 82540EM's PHY) */
    e->phy[PHY_ID2] = 0x0c20;
    e->phy[PHY_AUTONEG_ADV] = 0x0de1;
    e->phy[PHY_LP_ABILITY] = 0x45e1;
    e->phy[PHY_AUTONEG_EXP] = 0x0001;
    e->phy[PHY_1000T_CTRL] = 0x0e00;
    e->phy[PHY_1000T_STATUS] = 0x3c00;
    e->phy[PHY_EXT_STATUS] = 0x3000;
    e->phy[M88_PHY_SPEC_CTRL] = 0x0068;
    e->phy[M88_PHY_SPEC_STATUS] = 0xac00; /* 1000 Mb/s, full duplex, resolved */
}

static void link_update(struct e1000 *e)
{
    bool up = net_backend_link_up(e->nb);
    uint32_t st = reg(e, STATUS) & ~(STATUS_LU | STATUS_FD | (3u << 6));
    if (up)
        st |= STATUS_LU | STATUS_FD | STATUS_SPEED_1000;
    set_reg(e, STATUS, st);
    if (up) {
        e->phy[PHY_STATUS] |= PHY_STATUS_LINK | PHY_STATUS_AN_DONE;
        e->phy[M88_PHY_SPEC_STATUS] |= M88_STATUS_LINK;
    } else {
        e->phy[PHY_STATUS] &= (uint16_t)~(PHY_STATUS_LINK | PHY_STATUS_AN_DONE);
        e->phy[M88_PHY_SPEC_STATUS] &= (uint16_t)~M88_STATUS_LINK;
    }
}

static void nic_link_changed(void *opaque, bool up)
{
    struct e1000 *e = opaque;
    link_update(e);
    raise_cause(e, ICR_LSC);
}

static void mdic_write(struct e1000 *e, uint32_t val)
{
    unsigned phy = (val >> MDIC_PHY_SHIFT) & 31, r = (val >> MDIC_REG_SHIFT) & 31;
    uint32_t out = val & ~(MDIC_READY | MDIC_ERROR);
    if (phy != PHY_ADDR) {
        out |= MDIC_ERROR;   /* nothing answers at that address */
    } else if ((val & (3u << 26)) == MDIC_OP_READ) {
        out = (out & ~MDIC_DATA_MASK) | e->phy[r];
    } else if ((val & (3u << 26)) == MDIC_OP_WRITE) {
        uint16_t d = val & MDIC_DATA_MASK;
        switch (r) {
        case PHY_CTRL:
            if (d & PHY_CTRL_RESET) {
                phy_reset(e);
                link_update(e);
            } else {
                e->phy[PHY_CTRL] = d & (uint16_t)~(PHY_CTRL_RESET | PHY_CTRL_RESTART_AN);
            }
            break;
        case PHY_STATUS: case PHY_ID1: case PHY_ID2: case PHY_LP_ABILITY:
        case PHY_AUTONEG_EXP: case PHY_1000T_STATUS: case PHY_EXT_STATUS: case M88_PHY_SPEC_STATUS:
            break;   /* read-only */
        default:
            e->phy[r] = d;
        }
    } else {
        out |= MDIC_ERROR;
    }
    out |= MDIC_READY;
    set_reg(e, MDIC, out);
    if (val & MDIC_INT)
        raise_cause(e, ICR_MDAC);
}

/* --- EEPROM (5.3 and 13.4.3/13.4.4) ------------------------------------- */

static void eeprom_build(struct e1000 *e)
{
    memset(e->eeprom, 0, sizeof(e->eeprom));
    for (int i = 0; i < 3; i++)
        e->eeprom[i] = (uint16_t)(e->mac_addr[2 * i] | e->mac_addr[2 * i + 1] << 8);
    e->eeprom[0x0a] = 0x4000;             /* init control 1: valid signature 01b */
    e->eeprom[0x0b] = E1000_SUBSYS;
    e->eeprom[0x0c] = E1000_VENDOR;
    e->eeprom[0x0d] = E1000_DEVICE;
    e->eeprom[0x0e] = E1000_VENDOR;
    e->eeprom[0x0f] = 0x3000;             /* init control 2 */
    uint16_t sum = 0;
    for (int i = 0; i < EEPROM_CHECKSUM_WORD; i++)
        sum = (uint16_t)(sum + e->eeprom[i]);
    e->eeprom[EEPROM_CHECKSUM_WORD] = (uint16_t)(EEPROM_SUM - sum);
}

/* Microwire: with CS high, the driver clocks in a start bit, the opcode
 * and six address bits on rising SK edges, then clocks out 16 data bits
 * (D15 first) from DO, one per rising edge; further clocks read on. */
static void eecd_write(struct e1000 *e, uint32_t val)
{
    uint32_t old = reg(e, EECD);
    if (!(val & EECD_CS)) {
        e->ee_state = EE_IDLE;
        e->ee_do = false;
    } else if ((val & EECD_SK) && !(old & EECD_SK)) {
        unsigned di = !!(val & EECD_DI);
        switch (e->ee_state) {
        case EE_IDLE:
            if (di) {   /* start bit */
                e->ee_state = EE_CMD;
                e->ee_bits = 0;
                e->ee_cmd = 0;
            }
            break;
        case EE_CMD:
            e->ee_cmd = e->ee_cmd << 1 | di;
            if (++e->ee_bits == 2 + 6) {
                if ((e->ee_cmd >> 6) == EE_OP_READ) {
                    e->ee_addr = e->ee_cmd & 63;
                    e->ee_bitpos = 0;
                    e->ee_state = EE_OUT;
                    e->ee_do = false;   /* the dummy zero before D15 */
                } else {
                    e->ee_state = EE_IDLE;   /* write/erase: not supported, ignored */
                }
            }
            break;
        case EE_OUT:
            e->ee_do = (e->eeprom[e->ee_addr] >> (15 - e->ee_bitpos)) & 1;
            if (++e->ee_bitpos == 16) {
                e->ee_bitpos = 0;
                e->ee_addr = (e->ee_addr + 1) % EEPROM_WORDS;
            }
            break;
        }
    }
    uint32_t v = (old & ~EECD_WRITABLE) | (val & EECD_WRITABLE);
    v = (v & ~(EECD_GNT | EECD_DO)) | EECD_PRES;
    if (v & EECD_REQ)
        v |= EECD_GNT;   /* software always gets the EEPROM at once */
    if (e->ee_do)
        v |= EECD_DO;
    set_reg(e, EECD, v);
}

static void eerd_write(struct e1000 *e, uint32_t val)
{
    if (!(val & EERD_START)) {
        set_reg(e, EERD, val & ~EERD_DONE);
        return;
    }
    unsigned addr = (val >> EERD_ADDR_SHIFT) & 0xff;
    uint16_t data = addr < EEPROM_WORDS ? e->eeprom[addr] : 0xffff;
    if (addr >= EEPROM_WORDS)
        log_guest_error("e1000: EERD read of word %u beyond the %u-word EEPROM", addr, EEPROM_WORDS);
    set_reg(e, EERD, (uint32_t)data << EERD_DATA_SHIFT | addr << EERD_ADDR_SHIFT | EERD_DONE);
}

/* --- receive (3.2) ------------------------------------------------------ */

static unsigned rx_buf_size(uint32_t rctl)
{
    unsigned bs = (rctl >> RCTL_BSIZE_SHIFT) & 3;
    if (rctl & RCTL_BSEX)
        return bs == 0 ? 2048 : 32768u >> bs;    /* 16384, 8192, 4096 */
    return 2048u >> bs;                           /* 2048, 1024, 512, 256 */
}

/* Ring geometry; false (and a guest error) when it is unusable. */
static bool ring_ok(struct e1000 *e, unsigned bal, unsigned len_reg, unsigned h, unsigned t,
                    const char *what, uint64_t *base, uint32_t *n)
{
    *base = (uint64_t)reg(e, bal + 4) << 32 | (reg(e, bal) & ~15u);
    uint32_t len = reg(e, len_reg) & 0xfff80;
    *n = len / 16;
    if (*n == 0 || !guest_mem_ptr(e->plat->mem, *base, len)) {
        log_guest_error("e1000: %s ring at %#llx of %u bytes is not in guest RAM", what,
                        (unsigned long long)*base, len);
        return false;
    }
    if (reg(e, h) >= *n || reg(e, t) >= *n) {
        log_guest_error("e1000: %s head %u or tail %u beyond the ring of %u descriptors", what,
                        reg(e, h), reg(e, t), *n);
        return false;
    }
    return true;
}

static bool rx_filter(struct e1000 *e, const uint8_t *da)
{
    uint32_t rctl = reg(e, RCTL);
    static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    if (!memcmp(da, bcast, 6))
        return (rctl & RCTL_BAM) || (rctl & RCTL_MPE);
    if (da[0] & 1) {
        if (rctl & RCTL_MPE)
            return true;
        /* 13.5.1: 12 bits of the address, chosen by RCTL.MO, index the
         * 4096-bit multicast table. */
        unsigned mo = (rctl >> RCTL_MO_SHIFT) & 3;
        unsigned h = ((unsigned)da[4] >> (4 - mo) | (unsigned)da[5] << (4 + mo)) & 0xfff;
        return (reg(e, MTA + (h >> 5) * 4) >> (h & 31)) & 1;
    }
    if (rctl & RCTL_UPE)
        return true;
    for (unsigned i = 0; i < RA_ENTRIES; i++) {
        uint32_t lo = reg(e, RA + 8 * i), hi = reg(e, RA + 8 * i + 4);
        if (!(hi & RAH_AV))
            continue;
        uint8_t a[6] = { (uint8_t)lo, (uint8_t)(lo >> 8), (uint8_t)(lo >> 16), (uint8_t)(lo >> 24),
                         (uint8_t)hi, (uint8_t)(hi >> 8) };
        if (!memcmp(a, da, 6))
            return true;
    }
    return false;
}

static uint32_t rx_free(struct e1000 *e, uint32_t n)
{
    /* Descriptors owned by hardware: from head up to (not including) tail. */
    return (reg(e, RDT) + n - reg(e, RDH)) % n;
}

static bool nic_can_receive(void *opaque)
{
    struct e1000 *e = opaque;
    if (!(reg(e, RCTL) & RCTL_EN))
        return true;   /* receive() drops */
    uint32_t n = (reg(e, RDLEN) & 0xfff80) / 16;
    return n == 0 || reg(e, RDH) >= n || reg(e, RDT) >= n || rx_free(e, n) > 0;
}

static bool nic_receive(void *opaque, const uint8_t *frame, size_t len)
{
    struct e1000 *e = opaque;
    uint32_t rctl = reg(e, RCTL);
    if (!(rctl & RCTL_EN) || len < NET_ETH_HLEN)
        return true;
    if (!rx_filter(e, frame)) {
        e->counters.rx_filtered++;
        return true;
    }
    size_t max = (rctl & RCTL_LPE) ? MAX_RX_LONG : MAX_RX_PLAIN;
    if (len > max) {
        e->counters.rx_oversize++;
        stat_inc(e, ROC, 1);
        return true;
    }
    uint64_t base;
    uint32_t n;
    if (!ring_ok(e, RDBAL, RDLEN, RDH, RDT, "receive", &base, &n)) {
        e->counters.rx_errors++;
        return true;
    }

    /* Short frames arrive padded to the 60-byte minimum; the FCS follows
     * unless RCTL.SECRC strips it. */
    uint8_t *pkt = e->rxbuf;
    memcpy(pkt, frame, len);
    size_t plen = len;
    if (plen < NET_ETH_MIN_FRAME) {
        memset(pkt + plen, 0, NET_ETH_MIN_FRAME - plen);
        plen = NET_ETH_MIN_FRAME;
    }
    if (!(rctl & RCTL_SECRC)) {
        uint32_t fcs = eth_fcs(pkt, plen);
        st_le(pkt + plen, 4, fcs);
        plen += 4;
    }
    unsigned bufsize = rx_buf_size(rctl);
    uint32_t need = (uint32_t)((plen + bufsize - 1) / bufsize);
    if (rx_free(e, n) < need) {
        if (need >= n) {
            /* Even an empty ring could never hold it. */
            e->counters.rx_errors++;
            log_guest_error("e1000: a %zu-byte frame needs %u descriptors, the ring has %u", plen,
                            need, n);
            return true;
        }
        return false;   /* wait for the driver to return descriptors */
    }

    uint32_t head = reg(e, RDH);
    size_t done = 0;
    while (done < plen) {
        uint64_t da = base + (uint64_t)head * 16;
        uint8_t d[16];
        guest_mem_read(e->plat->mem, da, d, 16);
        uint64_t buf = ld_le(d, 8);
        size_t c = MIN((size_t)bufsize, plen - done);
        uint8_t status = RXD_STAT_DD | RXD_STAT_IXSM;
        uint8_t errors = 0;
        if (buf == 0) {
            /* 3.2.3: a null buffer address is skipped, no data written. */
        } else if (guest_mem_write(e->plat->mem, buf, pkt + done, c) < 0) {
            log_guest_error("e1000: receive buffer %#llx (%zu bytes) outside guest RAM",
                            (unsigned long long)buf, c);
            e->counters.rx_errors++;
            errors = 0x80;   /* RXE: an error the driver sees */
        }
        done += c;
        if (done == plen)
            status |= RXD_STAT_EOP;
        st_le(d + 8, 2, c);      /* length */
        st_le(d + 10, 2, 0);     /* packet checksum: not computed (IXSM) */
        d[12] = status;
        d[13] = errors;
        st_le(d + 14, 2, 0);     /* special */
        guest_mem_write(e->plat->mem, da, d, 16);
        head = (head + 1) % n;
    }
    set_reg(e, RDH, head);

    stat_inc(e, GPRC, 1);
    stat_inc(e, TPR, 1);
    stat_add64(e, GORCL, plen);
    stat_add64(e, TORL, plen);
    if (frame[0] & 1)
        stat_inc(e, (frame[0] == 0xff && frame[1] == 0xff) ? BPRC : MPRC, 1);

    uint32_t causes = ICR_RXT0;
    /* RXDMT0: free descriptors fell to the threshold RCTL.RDMTS names. */
    unsigned rdmts = (rctl >> RCTL_RDMTS_SHIFT) & 3;
    if (rdmts < 3 && rx_free(e, n) <= (n >> (rdmts + 1)))
        causes |= ICR_RXDMT0;
    raise_cause(e, causes);
    return true;
}

static const struct net_nic_ops nic_ops = {
    .can_receive = nic_can_receive,
    .receive = nic_receive,
    .link_changed = nic_link_changed,
};

/* --- transmit (3.3) ----------------------------------------------------- */

static void tx_emit(void *opaque, const uint8_t *frame, size_t len)
{
    struct e1000 *e = opaque;
    struct iovec iov = { (void *)frame, len };
    if (net_backend_send(e->nb, &iov, 1) < 0)
        return;
    stat_inc(e, GPTC, 1);
    stat_inc(e, TPT, 1);
    stat_add64(e, GOTCL, len);
    stat_add64(e, TOTL, len);
}

static void tx_error(struct e1000 *e, const char *why)
{
    e->counters.tx_errors++;
    log_guest_error("e1000: transmit of %zu bytes dropped: %s", e->txlen, why);
}

/* Checksum end offset: 0 means "to the end of the packet" (3.3.6). */
static size_t csum_end(uint16_t cse, size_t len)
{
    return cse ? MIN((size_t)cse + 1, len) : len;
}

static void tx_packet(struct e1000 *e)
{
    uint8_t *p = e->txbuf;
    size_t len = e->txlen;
    const struct tx_context *c = &e->ctx;
    if (e->tx_bad_dma) {
        tx_error(e, "a buffer lies outside guest RAM");
        return;
    }
    if (e->tx_overflow) {
        tx_error(e, "larger than the device can send");
        return;
    }
    if (len < NET_ETH_HLEN) {
        tx_error(e, "shorter than an Ethernet header");
        return;
    }
    if (e->tx_tse) {
        struct net_tso t = {
            .l3 = c->ipcss,
            .l4 = c->tucss,
            .hdr_len = c->hdrlen,
            .mss = c->mss,
            .ipv6 = !(c->tucmd & TUCMD_IP),
            .udp = !(c->tucmd & TUCMD_TCP),
        };
        if (t.mss == 0 || t.mss > MAX_TX_PLAIN || len <= t.hdr_len ||
            net_tso_segment(p, len, &t, e->segbuf, NET_MAX_FRAME, tx_emit, e) < 0)
            tx_error(e, "TCP segmentation context does not fit the packet");
        return;
    }
    if (len > MAX_TX_PLAIN) {
        tx_error(e, "larger than the largest unsegmented frame");
        return;
    }
    if (e->tx_legacy_ic) {
        if (net_csum_insert(p, len, e->tx_legacy_css, e->tx_legacy_cso, len) < 0) {
            tx_error(e, "legacy checksum offsets outside the packet");
            return;
        }
    } else {
        if ((e->tx_popts & TXD_POPTS_IXSM) &&
            net_csum_insert(p, len, c->ipcss, c->ipcso, csum_end(c->ipcse, len)) < 0) {
            tx_error(e, "IP checksum offsets outside the packet");
            return;
        }
        if ((e->tx_popts & TXD_POPTS_TXSM) &&
            net_csum_insert(p, len, c->tucss, c->tucso, csum_end(c->tucse, len)) < 0) {
            tx_error(e, "TCP/UDP checksum offsets outside the packet");
            return;
        }
    }
    tx_emit(e, p, len);
}

static void tx_append(struct e1000 *e, uint64_t addr, uint32_t len)
{
    if (e->tx_overflow || e->tx_bad_dma)
        return;
    if (len > NET_MAX_FRAME - e->txlen) {
        e->tx_overflow = true;
        return;
    }
    if (len && guest_mem_read(e->plat->mem, addr, e->txbuf + e->txlen, len) < 0) {
        log_guest_error("e1000: transmit buffer %#llx (%u bytes) outside guest RAM",
                        (unsigned long long)addr, len);
        e->tx_bad_dma = true;    /* the packet is dropped at EOP */
        return;
    }
    e->txlen += len;
}

static void tx_end_packet(struct e1000 *e)
{
    tx_packet(e);
    e->txlen = 0;
    e->tx_overflow = e->tx_bad_dma = false;
    e->tx_in_packet = false;
}

static void tx_process(struct e1000 *e)
{
    if (!(reg(e, TCTL) & TCTL_EN))
        return;
    uint64_t base;
    uint32_t n;
    if (reg(e, TDH) == reg(e, TDT))
        return;
    if (!ring_ok(e, TDBAL, TDLEN, TDH, TDT, "transmit", &base, &n)) {
        e->counters.tx_errors++;
        return;
    }
    uint32_t head = reg(e, TDH), tail = reg(e, TDT);
    bool done_any = false;
    for (uint32_t budget = n; head != tail && budget; budget--) {
        uint64_t da = base + (uint64_t)head * 16;
        uint8_t d[16];
        guest_mem_read(e->plat->mem, da, d, 16);
        uint64_t addr = ld_le(d, 8);
        uint32_t dw2 = (uint32_t)ld_le(d + 8, 4), dw3 = (uint32_t)ld_le(d + 12, 4);
        uint8_t cmd = (uint8_t)(dw2 >> 24);
        bool report;
        if (!(cmd & TXD_CMD_DEXT)) {
            /* Legacy descriptor (3.3.3). */
            if (!e->tx_in_packet) {
                e->tx_in_packet = true;
                e->tx_tse = false;
                e->tx_legacy_ic = cmd & TXD_CMD_IC;
                e->tx_legacy_cso = (uint8_t)(dw2 >> 16);
                e->tx_legacy_css = (uint8_t)(dw3 >> 8);
                e->tx_popts = 0;
            }
            tx_append(e, addr, dw2 & 0xffff);
            if (cmd & TXD_CMD_EOP)
                tx_end_packet(e);
            report = cmd & (TXD_CMD_RS | TXD_CMD_RPS);
        } else if (((dw2 >> 20) & 15) == TXD_DTYP_CTX) {
            /* Context descriptor (3.3.6). */
            e->ctx = (struct tx_context){
                .ipcss = d[0], .ipcso = d[1], .ipcse = (uint16_t)ld_le(d + 2, 2),
                .tucss = d[4], .tucso = d[5], .tucse = (uint16_t)ld_le(d + 6, 2),
                .paylen = dw2 & 0xfffff, .tucmd = cmd,
                .hdrlen = (uint8_t)(dw3 >> 8), .mss = (uint16_t)(dw3 >> 16),
            };
            report = cmd & TXD_CMD_RS;
        } else if (((dw2 >> 20) & 15) == TXD_DTYP_DATA) {
            /* Data descriptor (3.3.7); POPTS counts in the first one. */
            if (!e->tx_in_packet) {
                e->tx_in_packet = true;
                e->tx_tse = (cmd & TXD_DCMD_TSE) && (e->ctx.tucmd & TUCMD_TSE);
                e->tx_legacy_ic = false;
                e->tx_popts = (uint8_t)(dw3 >> 8);
            }
            tx_append(e, addr, dw2 & 0xfffff);
            if (cmd & TXD_CMD_EOP)
                tx_end_packet(e);
            report = cmd & TXD_CMD_RS;
        } else {
            log_guest_error("e1000: transmit descriptor %u has reserved type %u", head,
                            (dw2 >> 20) & 15);
            e->counters.tx_errors++;
            report = cmd & TXD_CMD_RS;
        }
        if (report) {
            d[12] |= TXD_STAT_DD;
            guest_mem_write(e->plat->mem, da + 12, &d[12], 1);
        }
        head = (head + 1) % n;
        done_any = true;
    }
    set_reg(e, TDH, head);
    if (done_any)
        raise_cause(e, ICR_TXDW | (head == tail ? ICR_TXQE : 0));
}

/* --- registers ---------------------------------------------------------- */

static void soft_reset(struct e1000 *e)
{
    memset(e->regs, 0, sizeof(e->regs));
    phy_reset(e);
    set_reg(e, CTRL, CTRL_FD | CTRL_SLU | (2u << 8));   /* 1000 Mb/s */
    set_reg(e, EECD, EECD_PRES);
    set_reg(e, MDIC, MDIC_READY);
    /* 5.6: RAL0/RAH0 come from the EEPROM at reset. */
    const uint8_t *m = e->mac_addr;
    set_reg(e, RA, (uint32_t)m[0] | m[1] << 8 | m[2] << 16 | (uint32_t)m[3] << 24);
    set_reg(e, RA + 4, (uint32_t)m[4] | m[5] << 8 | RAH_AV);
    link_update(e);
    e->ee_state = EE_IDLE;
    e->ee_do = false;
    e->txlen = 0;
    e->tx_overflow = e->tx_bad_dma = e->tx_in_packet = false;
    memset(&e->ctx, 0, sizeof(e->ctx));
    net_backend_purge(e->nb);
    update_irq(e);
}

static uint32_t reg_read(struct e1000 *e, unsigned off)
{
    uint32_t v = reg(e, off);
    if (off == ICR) {
        set_reg(e, ICR, 0);   /* read-to-clear (13.4.17) */
        update_irq(e);
    } else if (off >= STATS_START && off < STATS_END) {
        set_reg(e, off, 0);   /* statistics clear on read */
    } else if (off == ICS || off == IMC) {
        v = 0;                /* write-only */
    } else if (off == IMS) {
        v = reg(e, IMS);
    }
    return v;
}

static void reg_write(struct e1000 *e, unsigned off, uint32_t val)
{
    switch (off) {
    case CTRL:
        if (val & CTRL_RST) {
            soft_reset(e);   /* self-clearing */
            return;
        }
        set_reg(e, CTRL, val & ~(CTRL_RST | CTRL_PHY_RST));
        if (val & CTRL_PHY_RST) {
            phy_reset(e);
            link_update(e);
        }
        break;
    case STATUS:
        break;   /* read-only */
    case EECD:
        eecd_write(e, val);
        break;
    case EERD:
        eerd_write(e, val);
        break;
    case MDIC:
        mdic_write(e, val);
        break;
    case ICR:
        set_reg(e, ICR, reg(e, ICR) & ~val);   /* write-one-to-clear */
        update_irq(e);
        break;
    case ICS:
        raise_cause(e, val);
        break;
    case IMS:
        set_reg(e, IMS, reg(e, IMS) | val);
        update_irq(e);
        break;
    case IMC:
        set_reg(e, IMS, reg(e, IMS) & ~val);
        update_irq(e);
        break;
    case RCTL: {
        bool was = reg(e, RCTL) & RCTL_EN;
        set_reg(e, RCTL, val);
        if (!was && (val & RCTL_EN))
            net_backend_rx_ready(e->nb);
        break;
    }
    case RDLEN:
    case TDLEN:
        set_reg(e, off, val & 0xfff80);
        break;
    case RDBAL:
    case TDBAL:
        set_reg(e, off, val & ~15u);
        break;
    case RDH:
    case RDT:
    case TDH:
        set_reg(e, off, val & 0xffff);
        if (off == RDT)
            net_backend_rx_ready(e->nb);   /* new buffers: waiting frames go in */
        break;
    case TDT:
        set_reg(e, TDT, val & 0xffff);
        tx_process(e);
        break;
    case TCTL:
        set_reg(e, TCTL, val);
        tx_process(e);
        break;
    default:
        if (off >= STATS_START && off < STATS_END)
            break;   /* counters are read-only */
        set_reg(e, off, val);
    }
}

static uint64_t mmio_read(void *opaque, uint64_t off, unsigned size)
{
    struct e1000 *e = opaque;
    if (off >= E1000_MMIO_SIZE)
        return 0;
    unsigned aligned = (unsigned)off & ~3u;
    uint32_t v = reg_read(e, aligned);
    unsigned shift = (unsigned)(off & 3) * 8;
    if (size >= 4)
        return v;
    return (v >> shift) & ((1u << (size * 8)) - 1);
}

static void mmio_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct e1000 *e = opaque;
    if (off >= E1000_MMIO_SIZE)
        return;
    if (size != 4 || (off & 3)) {
        /* 13.3: registers are accessed as 32-bit words. */
        log_guest_error("e1000: %u-byte write at register offset %#llx ignored", size,
                        (unsigned long long)off);
        return;
    }
    reg_write(e, (unsigned)off, (uint32_t)val);
}

static const struct io_ops mmio_ops = { mmio_read, mmio_write };

/* BAR1: IOADDR at 0 selects a register, IODATA at 4 accesses it (13.2). */
static uint64_t io_read(void *opaque, uint64_t off, unsigned size)
{
    struct e1000 *e = opaque;
    if (off == 0 && size == 4)
        return e->ioaddr;
    if (off == 4 && size == 4)
        return e->ioaddr < E1000_MMIO_SIZE ? reg_read(e, e->ioaddr & ~3u) : 0;
    return 0;
}

static void io_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct e1000 *e = opaque;
    if (off == 0 && size == 4) {
        e->ioaddr = (uint32_t)val & 0x1fffc;
    } else if (off == 4 && size == 4) {
        if (e->ioaddr < E1000_MMIO_SIZE)
            reg_write(e, e->ioaddr & ~3u, (uint32_t)val);
    } else {
        log_guest_error("e1000: %u-byte I/O write at %#llx ignored", size, (unsigned long long)off);
    }
}

static const struct io_ops io_ops = { io_read, io_write };

static void pci_reset_hook(struct pci_device *d)
{
    struct e1000 *e = d->opaque;
    e->ioaddr = 0;
    soft_reset(e);
}

/* --- creation ----------------------------------------------------------- */

struct pci_device *e1000_pci(struct e1000 *e)
{
    return &e->pci;
}

void e1000_counters(const struct e1000 *e, struct e1000_counters *out)
{
    *out = e->counters;
}

static void free_e1000(struct e1000 *e)
{
    free(e->txbuf);
    free(e->segbuf);
    free(e->rxbuf);
    free(e->rom);
    free(e);
}

struct e1000 *e1000_create(struct platform *p, struct pci_bus *bus, struct net_backend *nb,
                           const uint8_t mac[6], const char *rom_path, char *err, size_t errlen)
{
    static bool crc_ready;
    if (!crc_ready) {
        crc_init();
        crc_ready = true;
    }
    struct e1000 *e = calloc(1, sizeof(*e));
    if (!e || !(e->txbuf = malloc(NET_MAX_FRAME)) || !(e->segbuf = malloc(NET_MAX_FRAME)) ||
        !(e->rxbuf = malloc(MAX_RX_LONG + 4))) {
        snprintf(err, errlen, "out of memory");
        if (e)
            free_e1000(e);
        return NULL;
    }
    e->plat = p;
    e->nb = nb;
    memcpy(e->mac_addr, mac, 6);
    uint64_t rom_len = 0;
    if (rom_path && !(e->rom = net_rom_load(rom_path, &rom_len, err, errlen))) {
        free_e1000(e);
        return NULL;
    }
    eeprom_build(e);

    struct pci_device *d = &e->pci;
    pci_device_init(d, E1000_VENDOR, E1000_DEVICE, 0x020000, 0x03, "e1000");
    pci_set_subsystem(d, E1000_VENDOR, E1000_SUBSYS);
    pci_set_irq_pin(d, 1);
    d->opaque = e;
    d->reset = pci_reset_hook;
    pci_add_bar(d, 0, PCI_BAR_MEM32, false, E1000_MMIO_SIZE, &mmio_ops, e);
    pci_add_bar(d, 1, PCI_BAR_IO, false, E1000_IO_SIZE, &io_ops, e);
    if (e->rom)
        pci_set_rom(d, e->rom, rom_len);
    soft_reset(e);
    if (pci_bus_add(bus, d, -1) < 0) {
        snprintf(err, errlen, "no free PCI slot for e1000");
        free_e1000(e);
        return NULL;
    }
    net_backend_attach(nb, &nic_ops, e);
    return e;
}

void e1000_destroy(struct e1000 *e)
{
    if (!e)
        return;
    net_backend_attach(e->nb, NULL, NULL);
    pci_bus_remove(&e->pci);
    free_e1000(e);
}
