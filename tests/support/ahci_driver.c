/* Spec-written AHCI test driver (Serial ATA AHCI 1.3.1). */
#include "support/ahci_driver.h"

#include <string.h>

#define CFG_COMMAND   0x04
#define CFG_BAR5      0x24
#define CMD_MEM       0x0002
#define CMD_MASTER    0x0004
#define PORT_REGS(p)  (0x100u + 0x80u * (p))

unsigned adrv_intx_gsi(const struct adrv *d)
{
    return harness_pci_intx_gsi(d->bus, d->devfn);
}

uint32_t adrv_read(struct adrv *d, unsigned off)
{
    return (uint32_t)harness_mmio_read(d->h, d->abar + off, 4);
}

void adrv_write(struct adrv *d, unsigned off, uint32_t v)
{
    harness_mmio_write(d->h, d->abar + off, 4, v);
}

uint32_t adrv_pread(struct adrv *d, unsigned port, unsigned reg)
{
    return adrv_read(d, PORT_REGS(port) + reg);
}

void adrv_pwrite(struct adrv *d, unsigned port, unsigned reg, uint32_t v)
{
    adrv_write(d, PORT_REGS(port) + reg, v);
}

uint64_t adrv_alloc(struct adrv *d, uint64_t size, uint64_t align)
{
    d->heap = (d->heap + align - 1) & ~(align - 1);
    uint64_t at = d->heap;
    d->heap += size;
    memset(d->h->ram + at, 0, size);
    return at;
}

void adrv_mem_write(struct adrv *d, uint64_t gpa, const void *buf, size_t len)
{
    memcpy(d->h->ram + gpa, buf, len);
}

void adrv_mem_read(struct adrv *d, uint64_t gpa, void *buf, size_t len)
{
    memcpy(buf, d->h->ram + gpa, len);
}

int adrv_probe(struct adrv *d, struct harness *h, struct pci_bus *bus, uint8_t devfn, uint64_t mmio_base)
{
    memset(d, 0, sizeof(*d));
    d->h = h;
    d->bus = bus;
    d->devfn = devfn;
    d->heap = 1 << 20;

    /* ABAR (2.1.11): a 32-bit memory BAR; size it and place it. */
    pci_config_write(bus, devfn, CFG_BAR5, 4, 0xffffffff);
    uint32_t mask = pci_config_read(bus, devfn, CFG_BAR5, 4);
    if (mask == 0 || (mask & 1))
        return -1;
    uint64_t size = (uint32_t)(~(mask & ~0xfu) + 1);
    d->abar = (mmio_base + size - 1) & ~(size - 1);
    pci_config_write(bus, devfn, CFG_BAR5, 4, (uint32_t)d->abar);
    pci_config_write(bus, devfn, CFG_COMMAND, 2, CMD_MEM | CMD_MASTER);

    /* 10.1.2 step 1: AHCI mode. */
    adrv_write(d, ADRV_GHC, adrv_read(d, ADRV_GHC) | ADRV_GHC_AE);
    if (!(adrv_read(d, ADRV_GHC) & ADRV_GHC_AE))
        return -1;
    d->cap = adrv_read(d, ADRV_CAP);
    d->pi = adrv_read(d, ADRV_PI);
    d->nslots = ((d->cap >> 8) & 0x1f) + 1;
    return 0;
}

struct wait_ctx {
    struct adrv *d;
    unsigned port, reg;
    uint32_t mask;
};

static bool regs_quiet(void *opaque)
{
    struct wait_ctx *w = opaque;
    if (adrv_pread(w->d, w->port, ADRV_PX_IS) & ADRV_IS_TFES)
        return true;
    return !(adrv_pread(w->d, w->port, w->reg) & w->mask);
}

static int wait_reg(struct adrv *d, unsigned port, unsigned reg, uint32_t mask, int timeout_ms)
{
    struct wait_ctx w = { d, port, reg, mask };
    if (!harness_run_until(d->h, regs_quiet, &w, timeout_ms))
        return -2;
    if (adrv_pread(d, port, ADRV_PX_IS) & ADRV_IS_TFES)
        return -1;
    return 0;
}

int adrv_port_stop(struct adrv *d, unsigned port)
{
    uint32_t cmd = adrv_pread(d, port, ADRV_PX_CMD);
    adrv_pwrite(d, port, ADRV_PX_CMD, cmd & ~ADRV_CMD_ST);
    /* 10.1.2: CR must drop within 500 ms; then FRE, and FR likewise. */
    for (int i = 0; i < 50 && (adrv_pread(d, port, ADRV_PX_CMD) & ADRV_CMD_CR); i++)
        evloop_run_once(d->h->plat.loop, 10);
    cmd = adrv_pread(d, port, ADRV_PX_CMD);
    adrv_pwrite(d, port, ADRV_PX_CMD, cmd & ~ADRV_CMD_FRE);
    for (int i = 0; i < 50 && (adrv_pread(d, port, ADRV_PX_CMD) & ADRV_CMD_FR); i++)
        evloop_run_once(d->h->plat.loop, 10);
    return adrv_pread(d, port, ADRV_PX_CMD) & (ADRV_CMD_CR | ADRV_CMD_FR) ? -1 : 0;
}

int adrv_port_start(struct adrv *d, unsigned port, uint32_t ie)
{
    struct adrv_port *p = &d->port[port];
    if (port >= ADRV_MAX_PORTS || adrv_port_stop(d, port) < 0)
        return -1;
    if (!p->clb) {
        p->clb = adrv_alloc(d, 1024, 1024);
        p->fb = adrv_alloc(d, 256, 256);
        for (unsigned s = 0; s < 32; s++)
            p->ctba[s] = adrv_alloc(d, 0x80 + 16 * ADRV_MAX_PRD, 128);
    }
    adrv_pwrite(d, port, ADRV_PX_CLB, (uint32_t)p->clb);
    adrv_pwrite(d, port, ADRV_PX_CLBU, (uint32_t)(p->clb >> 32));
    adrv_pwrite(d, port, ADRV_PX_FB, (uint32_t)p->fb);
    adrv_pwrite(d, port, ADRV_PX_FBU, (uint32_t)(p->fb >> 32));
    adrv_pwrite(d, port, ADRV_PX_CMD, adrv_pread(d, port, ADRV_PX_CMD) | ADRV_CMD_FRE | ADRV_CMD_SUD);
    adrv_pwrite(d, port, ADRV_PX_SERR, 0xffffffff);
    adrv_pwrite(d, port, ADRV_PX_IS, 0xffffffff);
    adrv_write(d, ADRV_IS, 1u << port);
    adrv_pwrite(d, port, ADRV_PX_IE, ie);
    /* 10.3.1: a device is present (DET = 3) and neither BSY nor DRQ. */
    if ((adrv_pread(d, port, ADRV_PX_SSTS) & 0xf) != 3)
        return -1;
    if (adrv_pread(d, port, ADRV_PX_TFD) & 0x88)
        return -1;
    adrv_pwrite(d, port, ADRV_PX_CMD, adrv_pread(d, port, ADRV_PX_CMD) | ADRV_CMD_ST);
    return 0;
}

void adrv_build(struct adrv *d, unsigned port, unsigned slot, const struct adrv_cmd *c)
{
    struct adrv_port *p = &d->port[port];
    uint64_t ct = p->ctba[slot];
    uint8_t tbl[0x80] = { 0 };
    uint8_t *f = tbl;

    /* Register H2D FIS (SATA 10.5.5) */
    f[0] = c->fis_type ? c->fis_type : 0x27;
    f[1] = c->control ? 0 : 0x80;
    f[2] = c->command;
    f[3] = (uint8_t)c->feature;
    f[4] = (uint8_t)c->lba;
    f[5] = (uint8_t)(c->lba >> 8);
    f[6] = (uint8_t)(c->lba >> 16);
    f[7] = c->device;
    f[8] = (uint8_t)(c->lba >> 24);
    f[9] = (uint8_t)(c->lba >> 32);
    f[10] = (uint8_t)(c->lba >> 40);
    f[11] = (uint8_t)(c->feature >> 8);
    f[12] = (uint8_t)c->count;
    f[13] = (uint8_t)(c->count >> 8);
    f[15] = c->devctl;
    memcpy(tbl + 0x40, c->packet, 16);
    adrv_mem_write(d, ct, tbl, sizeof(tbl));

    for (unsigned i = 0; i < c->nprd && i < ADRV_MAX_PRD; i++) {
        uint8_t e[16] = { 0 };
        const struct adrv_prd *prd = &c->prd[i];
        uint32_t dw3 = ((prd->len - 1) & 0x3fffff) | (prd->irq ? 1u << 31 : 0);
        for (int b = 0; b < 4; b++) {
            e[b] = (uint8_t)(prd->addr >> (8 * b));
            e[4 + b] = (uint8_t)(prd->addr >> (32 + 8 * b));
            e[12 + b] = (uint8_t)(dw3 >> (8 * b));
        }
        adrv_mem_write(d, ct + 0x80 + 16 * i, e, 16);
    }

    /* Command header (4.2.2): CFL = 5 dwords, A, W, PRDTL. */
    uint32_t prdtl = c->prdtl_override ? c->prdtl_override : c->nprd;
    uint32_t dw0 = 5 | (c->atapi ? 1u << 5 : 0) | (c->write ? 1u << 6 : 0) | prdtl << 16;
    if (c->control)
        dw0 |= 1u << 10;            /* C: clear busy upon R_OK */
    uint8_t hdr[32] = { 0 };
    for (int b = 0; b < 4; b++) {
        hdr[b] = (uint8_t)(dw0 >> (8 * b));
        hdr[8 + b] = (uint8_t)(ct >> (8 * b));
        hdr[12 + b] = (uint8_t)(ct >> (32 + 8 * b));
    }
    adrv_mem_write(d, p->clb + 32 * slot, hdr, sizeof(hdr));
}

void adrv_issue(struct adrv *d, unsigned port, uint32_t slots)
{
    adrv_pwrite(d, port, ADRV_PX_CI, slots);
}

int adrv_wait(struct adrv *d, unsigned port, uint32_t mask, int timeout_ms)
{
    return wait_reg(d, port, ADRV_PX_CI, mask, timeout_ms);
}

int adrv_wait_sact(struct adrv *d, unsigned port, uint32_t mask, int timeout_ms)
{
    return wait_reg(d, port, ADRV_PX_SACT, mask, timeout_ms);
}

int adrv_exec(struct adrv *d, unsigned port, const struct adrv_cmd *c, int timeout_ms)
{
    adrv_build(d, port, 0, c);
    adrv_issue(d, port, 1);
    return adrv_wait(d, port, 1, timeout_ms);
}

void adrv_recover(struct adrv *d, unsigned port)
{
    uint32_t cmd = adrv_pread(d, port, ADRV_PX_CMD);
    adrv_pwrite(d, port, ADRV_PX_CMD, cmd & ~ADRV_CMD_ST);
    for (int i = 0; i < 50 && (adrv_pread(d, port, ADRV_PX_CMD) & ADRV_CMD_CR); i++)
        evloop_run_once(d->h->plat.loop, 10);
    adrv_pwrite(d, port, ADRV_PX_SERR, adrv_pread(d, port, ADRV_PX_SERR));
    adrv_pwrite(d, port, ADRV_PX_IS, adrv_pread(d, port, ADRV_PX_IS));
    adrv_write(d, ADRV_IS, 1u << port);
    adrv_pwrite(d, port, ADRV_PX_CMD, adrv_pread(d, port, ADRV_PX_CMD) | ADRV_CMD_ST);
}

uint32_t adrv_prdbc(struct adrv *d, unsigned port, unsigned slot)
{
    uint8_t b[4];
    adrv_mem_read(d, d->port[port].clb + 32 * slot + 4, b, 4);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

void adrv_rfis(struct adrv *d, unsigned port, unsigned off, void *buf, size_t len)
{
    adrv_mem_read(d, d->port[port].fb + off, buf, len);
}

void adrv_cmd_ata(struct adrv_cmd *c, uint8_t command, uint64_t lba, uint16_t count,
                  uint64_t buf, uint32_t len, bool write)
{
    memset(c, 0, sizeof(*c));
    c->command = command;
    c->lba = lba;
    c->count = count;
    c->device = 0x40;               /* LBA mode */
    c->write = write;
    if (len) {
        c->prd[0] = (struct adrv_prd){ buf, len, true };
        c->nprd = 1;
    }
}

void adrv_cmd_packet(struct adrv_cmd *c, const uint8_t *cdb, unsigned cdb_len, uint64_t buf, uint32_t len)
{
    memset(c, 0, sizeof(*c));
    c->command = 0xa0;              /* PACKET */
    c->feature = 1;                 /* DMA */
    c->lba = (uint64_t)(len & 0xffff) << 8;   /* byte count limit in LBA mid/high */
    c->atapi = true;
    memcpy(c->packet, cdb, cdb_len < 16 ? cdb_len : 16);
    if (len) {
        c->prd[0] = (struct adrv_prd){ buf, len, false };
        c->nprd = 1;
    }
}
