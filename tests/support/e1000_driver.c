/* Guest-side 82540EM driver for the device harness (see e1000_driver.h).
 * Everything here follows Intel's 8254x Software Developer's Manual and
 * PCI 3.0, not the device model's code. */
#include "support/e1000_driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PCI configuration space */
#define CFG_COMMAND 0x04
#define CFG_BAR0    0x10
#define CFG_BAR1    0x14
#define CMD_IO      0x1
#define CMD_MEM     0x2
#define CMD_MASTER  0x4

/* CTRL / EECD / EERD / MDIC bits (13.4) */
#define CTRL_SLU    (1u << 6)
#define CTRL_RST    (1u << 26)
#define EECD_SK     (1u << 0)
#define EECD_CS     (1u << 1)
#define EECD_DI     (1u << 2)
#define EECD_DO     (1u << 3)
#define EECD_REQ    (1u << 6)
#define EECD_GNT    (1u << 7)
#define EERD_START  (1u << 0)
#define EERD_DONE   (1u << 4)
#define MDIC_OP_WRITE (1u << 26)
#define MDIC_OP_READ  (2u << 26)
#define MDIC_R      (1u << 28)
#define MDIC_E      (1u << 30)
#define TCTL_EN     (1u << 1)
#define TCTL_PSP    (1u << 3)

/* Descriptor bits (3.2.3, 3.3.3, 3.3.6, 3.3.7) */
#define RXD_DD      0x01
#define RXD_EOP     0x02
#define TXD_EOP     0x01
#define TXD_IFCS    0x02
#define TXD_RS      0x08
#define TXD_DEXT    0x20
#define TXD_DD      0x01
#define DTYP_CTX    (0u << 20)
#define DTYP_DATA   (1u << 20)
#define DCMD_TSE    0x04
#define TUCMD_TCP   0x01
#define TUCMD_IP    0x02
#define TUCMD_TSE   0x04

#define EEPROM_WORDS 64
#define BUF_SIZE     2048
#define TX_AREA      (80 * 1024)

static void die(const char *msg)
{
    fprintf(stderr, "e1000 test driver: %s\n", msg);
    abort();
}

void e1k_mem_write(struct e1000_drv *d, uint64_t gpa, const void *buf, size_t len)
{
    if (gpa > d->h->ram_size || len > d->h->ram_size - gpa)
        die("write outside harness RAM");
    memcpy(d->h->ram + gpa, buf, len);
}

void e1k_mem_read(struct e1000_drv *d, uint64_t gpa, void *buf, size_t len)
{
    if (gpa > d->h->ram_size || len > d->h->ram_size - gpa)
        die("read outside harness RAM");
    memcpy(buf, d->h->ram + gpa, len);
}

uint64_t e1k_alloc(struct e1000_drv *d, uint64_t size, uint64_t align)
{
    uint64_t a = (d->heap + align - 1) & ~(align - 1);
    if (a + size > d->heap_end)
        die("out of harness RAM");
    d->heap = a + size;
    memset(d->h->ram + a, 0, size);
    return a;
}

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put_le(uint8_t *p, unsigned n, uint64_t v)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint32_t e1k_rd(struct e1000_drv *d, unsigned reg)
{
    return (uint32_t)harness_mmio_read(d->h, d->mmio + reg, 4);
}

void e1k_wr(struct e1000_drv *d, unsigned reg, uint32_t v)
{
    harness_mmio_write(d->h, d->mmio + reg, 4, v);
}

uint32_t e1k_io_rd(struct e1000_drv *d, unsigned reg)
{
    harness_pio_write(d->h, d->io, 4, reg);          /* IOADDR */
    return (uint32_t)harness_pio_read(d->h, (uint16_t)(d->io + 4), 4);   /* IODATA */
}

void e1k_io_wr(struct e1000_drv *d, unsigned reg, uint32_t v)
{
    harness_pio_write(d->h, d->io, 4, reg);
    harness_pio_write(d->h, (uint16_t)(d->io + 4), 4, v);
}

int e1k_probe(struct e1000_drv *d, struct harness *h, struct pci_bus *bus, uint64_t mmio_base,
              uint16_t io_base, uint64_t heap_base, uint64_t heap_end)
{
    memset(d, 0, sizeof(*d));
    d->h = h;
    d->bus = bus;
    d->heap = heap_base;
    d->heap_end = heap_end;
    int devfn = -1;
    for (int i = 0; i < 256 && devfn < 0; i++)
        if (pci_config_read(bus, (uint8_t)i, 0, 4) == (0x100eu << 16 | 0x8086u))
            devfn = i;
    if (devfn < 0)
        return -1;
    d->devfn = (uint8_t)devfn;
    /* BAR0: 32-bit memory; BAR1: I/O.  Size them the way firmware does. */
    pci_config_write(bus, d->devfn, CFG_BAR0, 4, 0xffffffffu);
    uint32_t m = pci_config_read(bus, d->devfn, CFG_BAR0, 4);
    if ((m & 1) || (m & 6) != 0)
        return -1;
    uint32_t msize = ~(m & ~15u) + 1;
    if (msize != 128 * 1024 || (mmio_base & (msize - 1)))
        return -1;
    pci_config_write(bus, d->devfn, CFG_BAR1, 4, 0xffffffffu);
    uint32_t io = pci_config_read(bus, d->devfn, CFG_BAR1, 4);
    if (!(io & 1))
        return -1;
    uint32_t iosize = (~(io & ~3u) + 1) & 0xffff;
    if (iosize < 8 || (io_base & (iosize - 1)))
        return -1;
    pci_config_write(bus, d->devfn, CFG_BAR0, 4, (uint32_t)mmio_base);
    pci_config_write(bus, d->devfn, CFG_BAR1, 4, io_base);
    pci_config_write(bus, d->devfn, CFG_COMMAND, 2, CMD_IO | CMD_MEM | CMD_MASTER);
    d->mmio = mmio_base;
    d->io = io_base;
    return 0;
}

int e1k_eerd(struct e1000_drv *d, unsigned word)
{
    e1k_wr(d, E1K_EERD, word << 8 | EERD_START);
    for (int i = 0; i < 1000; i++) {
        uint32_t v = e1k_rd(d, E1K_EERD);
        if (v & EERD_DONE)
            return (int)(v >> 16);
    }
    return -1;
}

static void ee_clock(struct e1000_drv *d, uint32_t *eecd, bool high)
{
    *eecd = high ? *eecd | EECD_SK : *eecd & ~EECD_SK;
    e1k_wr(d, E1K_EECD, *eecd);
}

int e1k_eeprom_bitbang(struct e1000_drv *d, unsigned word)
{
    uint32_t eecd = e1k_rd(d, E1K_EECD) | EECD_REQ;
    e1k_wr(d, E1K_EECD, eecd);
    if (!(e1k_rd(d, E1K_EECD) & EECD_GNT))
        return -1;
    eecd &= ~(EECD_SK | EECD_DI);
    eecd |= EECD_CS;
    e1k_wr(d, E1K_EECD, eecd);
    /* READ: start bit 1, opcode 10, then six address bits, MSB first. */
    uint32_t out = 0x6u << 6 | (word & 63);
    for (int b = 8; b >= 0; b--) {
        eecd = (out >> b) & 1 ? eecd | EECD_DI : eecd & ~EECD_DI;
        e1k_wr(d, E1K_EECD, eecd);
        ee_clock(d, &eecd, true);
        ee_clock(d, &eecd, false);
    }
    eecd &= ~EECD_DI;
    e1k_wr(d, E1K_EECD, eecd);
    uint16_t data = 0;
    for (int b = 0; b < 16; b++) {
        ee_clock(d, &eecd, true);
        data = (uint16_t)(data << 1 | !!(e1k_rd(d, E1K_EECD) & EECD_DO));
        ee_clock(d, &eecd, false);
    }
    eecd &= ~(EECD_CS | EECD_REQ);
    e1k_wr(d, E1K_EECD, eecd);
    return data;
}

static int mdic(struct e1000_drv *d, uint32_t cmd)
{
    e1k_wr(d, E1K_MDIC, cmd);
    for (int i = 0; i < 1000; i++) {
        uint32_t v = e1k_rd(d, E1K_MDIC);
        if (v & MDIC_R)
            return (v & MDIC_E) ? -1 : (int)(v & 0xffff);
    }
    return -1;
}

int e1k_phy_read(struct e1000_drv *d, unsigned reg)
{
    return mdic(d, MDIC_OP_READ | 1u << 21 | (reg & 31) << 16);
}

int e1k_phy_write(struct e1000_drv *d, unsigned reg, uint16_t v)
{
    return mdic(d, MDIC_OP_WRITE | 1u << 21 | (reg & 31) << 16 | v) < 0 ? -1 : 0;
}

int e1k_init(struct e1000_drv *d, uint32_t rx_n, uint32_t tx_n, uint32_t rctl_extra)
{
    e1k_wr(d, E1K_IMC, 0xffffffffu);
    e1k_wr(d, E1K_CTRL, e1k_rd(d, E1K_CTRL) | CTRL_RST);
    if (e1k_rd(d, E1K_CTRL) & CTRL_RST)
        return -1;   /* 13.4.1: self-clearing */
    e1k_wr(d, E1K_IMC, 0xffffffffu);
    (void)e1k_rd(d, E1K_ICR);

    /* 5.6.1: words 0-2 hold the MAC; all 64 words sum to 0xBABA. */
    uint16_t sum = 0;
    for (unsigned i = 0; i < EEPROM_WORDS; i++) {
        int w = e1k_eerd(d, i);
        if (w < 0)
            return -1;
        sum = (uint16_t)(sum + w);
        if (i < 3) {
            d->mac[2 * i] = (uint8_t)w;
            d->mac[2 * i + 1] = (uint8_t)(w >> 8);
        }
    }
    if (sum != 0xbaba) {
        fprintf(stderr, "e1000 test driver: EEPROM checksum %#x\n", sum);
        return -1;
    }
    e1k_wr(d, E1K_CTRL, e1k_rd(d, E1K_CTRL) | CTRL_SLU);
    e1k_wr(d, E1K_RAL0, (uint32_t)d->mac[0] | d->mac[1] << 8 | d->mac[2] << 16 |
                        (uint32_t)d->mac[3] << 24);
    e1k_wr(d, E1K_RAH0, (uint32_t)d->mac[4] | d->mac[5] << 8 | 1u << 31);
    for (unsigned i = 0; i < 128; i++)
        e1k_wr(d, E1K_MTA + 4 * i, 0);

    d->rx_n = rx_n;
    d->rx_bufsize = BUF_SIZE;
    d->rx_ring = e1k_alloc(d, 16ULL * rx_n, 128);
    d->rx_bufs = e1k_alloc(d, (uint64_t)BUF_SIZE * rx_n, 4096);
    for (uint32_t i = 0; i < rx_n; i++) {
        uint8_t desc[16] = { 0 };
        put_le(desc, 8, d->rx_bufs + (uint64_t)i * BUF_SIZE);
        e1k_mem_write(d, d->rx_ring + 16ULL * i, desc, 16);
    }
    d->rx_next = 0;
    e1k_wr(d, E1K_RDBAL, (uint32_t)d->rx_ring);
    e1k_wr(d, E1K_RDBAH, (uint32_t)(d->rx_ring >> 32));
    e1k_wr(d, E1K_RDLEN, 16 * rx_n);
    e1k_wr(d, E1K_RDH, 0);
    e1k_wr(d, E1K_RDT, rx_n - 1);   /* one descriptor stays with software */

    d->tx_n = tx_n;
    d->tx_ring = e1k_alloc(d, 16ULL * tx_n, 128);
    d->tx_bufs = e1k_alloc(d, TX_AREA, 4096);
    d->tx_tail = 0;
    e1k_wr(d, E1K_TDBAL, (uint32_t)d->tx_ring);
    e1k_wr(d, E1K_TDBAH, (uint32_t)(d->tx_ring >> 32));
    e1k_wr(d, E1K_TDLEN, 16 * tx_n);
    e1k_wr(d, E1K_TDH, 0);
    e1k_wr(d, E1K_TDT, 0);

    d->strip_crc = rctl_extra & E1K_RCTL_SECRC;
    e1k_wr(d, E1K_RCTL, E1K_RCTL_EN | E1K_RCTL_BAM | rctl_extra);   /* BSIZE 00: 2048 */
    e1k_wr(d, E1K_TCTL, TCTL_EN | TCTL_PSP | 0x10u << 4 | 0x40u << 12);
    e1k_wr(d, E1K_IMS, E1K_ICR_TXDW | E1K_ICR_LSC | E1K_ICR_RXT0 | 0x10 | 0x40);
    return 0;
}

void e1k_write_tx_desc(struct e1000_drv *d, uint32_t i, const uint8_t desc[16])
{
    e1k_mem_write(d, d->tx_ring + 16ULL * (i % d->tx_n), desc, 16);
}

/* Publishes descriptors up to tail and checks the last one's DD. */
static int tx_kick(struct e1000_drv *d, uint32_t last)
{
    e1k_wr(d, E1K_TDT, d->tx_tail);
    for (int i = 0; i < 100; i++) {
        uint8_t st;
        e1k_mem_read(d, d->tx_ring + 16ULL * last + 12, &st, 1);
        if (st & TXD_DD)
            return 0;
        evloop_run_once(d->h->plat.loop, 1);
    }
    return -1;
}

static void tx_put(struct e1000_drv *d, uint64_t addr, uint32_t dw2, uint32_t dw3)
{
    uint8_t desc[16];
    put_le(desc, 8, addr);
    put_le(desc + 8, 4, dw2);
    put_le(desc + 12, 4, dw3);
    e1k_write_tx_desc(d, d->tx_tail, desc);
    d->tx_tail = (d->tx_tail + 1) % d->tx_n;
}

int e1k_send(struct e1000_drv *d, const uint8_t *frame, size_t len, unsigned pieces)
{
    if (len > TX_AREA || pieces == 0 || pieces >= d->tx_n)
        return -1;
    e1k_mem_write(d, d->tx_bufs, frame, len);
    size_t off = 0, per = (len + pieces - 1) / pieces;
    uint32_t last = d->tx_tail;
    for (unsigned p = 0; p < pieces && off < len; p++) {
        size_t n = len - off < per ? len - off : per;
        bool eop = off + n == len;
        uint8_t cmd = TXD_IFCS | (eop ? TXD_EOP | TXD_RS : 0);
        last = d->tx_tail;
        tx_put(d, d->tx_bufs + off, (uint32_t)n | (uint32_t)cmd << 24, 0);
        off += n;
    }
    return tx_kick(d, last);
}

int e1k_send_offload(struct e1000_drv *d, const uint8_t *frame, size_t len,
                     const struct e1k_offload *o)
{
    if (len > TX_AREA || d->tx_n < 4)
        return -1;
    e1k_mem_write(d, d->tx_bufs, frame, len);
    uint8_t tucmd = TXD_DEXT | (o->tcp ? TUCMD_TCP : 0) | (o->ipv4 ? TUCMD_IP : 0) |
                    (o->tse ? TUCMD_TSE : 0);
    uint8_t ctx[16];
    ctx[0] = o->ipcss;
    ctx[1] = o->ipcso;
    put_le(ctx + 2, 2, o->ipcse);
    ctx[4] = o->tucss;
    ctx[5] = o->tucso;
    put_le(ctx + 6, 2, o->tucse);
    uint32_t paylen = o->tse ? (uint32_t)(len - o->hdrlen) : (uint32_t)len;
    put_le(ctx + 8, 4, (paylen & 0xfffff) | DTYP_CTX | (uint32_t)tucmd << 24);
    put_le(ctx + 12, 4, (uint32_t)o->hdrlen << 8 | (uint32_t)o->mss << 16);
    e1k_write_tx_desc(d, d->tx_tail, ctx);
    d->tx_tail = (d->tx_tail + 1) % d->tx_n;
    /* Two data descriptors (headers, then the rest) when there is a rest. */
    size_t first = len > 64 ? 64 : len;
    uint8_t dcmd = TXD_DEXT | TXD_IFCS | (o->tse ? DCMD_TSE : 0);
    uint8_t end = TXD_EOP | TXD_RS;
    tx_put(d, d->tx_bufs, (uint32_t)first | DTYP_DATA | (uint32_t)(dcmd | (first == len ? end : 0)) << 24,
           (uint32_t)o->popts << 8);
    uint32_t last = (d->tx_tail + d->tx_n - 1) % d->tx_n;
    if (first < len) {
        last = d->tx_tail;
        tx_put(d, d->tx_bufs + first, (uint32_t)(len - first) | DTYP_DATA | (uint32_t)(dcmd | end) << 24,
               (uint32_t)o->popts << 8);
    }
    return tx_kick(d, last);
}

/* IEEE 802.3 FCS, bitwise. */
static uint32_t fcs32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

int e1k_recv(struct e1000_drv *d, uint8_t *buf, size_t cap)
{
    /* Look ahead for a complete frame before consuming anything. */
    uint32_t i = d->rx_next, count = 0;
    for (;;) {
        uint8_t desc[16];
        e1k_mem_read(d, d->rx_ring + 16ULL * i, desc, 16);
        if (!(desc[12] & RXD_DD))
            return 0;
        count++;
        if (desc[12] & RXD_EOP)
            break;
        i = (i + 1) % d->rx_n;
        if (count >= d->rx_n)
            return -1;
    }
    size_t total = 0;
    int err = 0;
    for (uint32_t k = 0; k < count; k++) {
        uint8_t desc[16];
        uint64_t da = d->rx_ring + 16ULL * d->rx_next;
        e1k_mem_read(d, da, desc, 16);
        uint16_t len = (uint16_t)le(desc + 8, 2);
        if (desc[13] || len > d->rx_bufsize)
            err = -1;   /* RXE and friends: the buffer is not looked at */
        else if (!err && total + len <= cap)
            e1k_mem_read(d, le(desc, 8), buf + total, len);
        else
            err = -1;
        total += len;
        desc[12] = 0;
        e1k_mem_write(d, da, desc, 16);
        /* Hand the descriptor back: the tail follows the one just used. */
        e1k_wr(d, E1K_RDT, d->rx_next);
        d->rx_next = (d->rx_next + 1) % d->rx_n;
    }
    if (err)
        return -1;
    if (!d->strip_crc) {
        if (total < 4)
            return -1;
        uint32_t fcs = (uint32_t)le(buf + total - 4, 4);
        if (fcs != fcs32(buf, total - 4)) {
            fprintf(stderr, "e1000 test driver: bad FCS\n");
            return -1;
        }
        total -= 4;
    }
    return (int)total;
}
