/* AHCI 1.3.1 host bus adapter (Serial ATA AHCI 1.3.1 specification),
 * ICH9-compatible, with the ATA/ATAPI devices of devices/ata.h behind its
 * ports.  Command processing follows section 5: the command list and
 * command tables are read from guest memory when PxCI bits are set, FISes
 * go to the received-FIS area, PxIS/PxIE and GHC.IE drive INTx. */
#include "devices/ahci.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/ata.h"
#include "devices/guest_mem.h"
#include "devices/util.h"

#define AHCI_VENDOR          0x8086
#define AHCI_DEVICE          0x2922      /* ICH9 6-port SATA AHCI */
#define AHCI_CLASS           0x010601    /* mass storage, SATA, AHCI 1.0 */
#define AHCI_REVISION        0x02
#define ABAR                 5
#define ABAR_SIZE            0x1000
#define NSLOTS               32
#define MAX_IOV              1024        /* the block layer's IOV_MAX */

/* Generic host control (3.1) */
#define HBA_CAP              0x00
#define HBA_GHC              0x04
#define HBA_IS               0x08
#define HBA_PI               0x0c
#define HBA_VS               0x10
#define HBA_CCC_CTL          0x14
#define HBA_CCC_PORTS        0x18
#define HBA_EM_LOC           0x1c
#define HBA_EM_CTL           0x20
#define HBA_CAP2             0x24
#define HBA_BOHC             0x28
#define PORT_BASE            0x100
#define PORT_SIZE            0x80

#define CAP_S64A             (1u << 31)
#define CAP_SNCQ             (1u << 30)
#define CAP_SCLO             (1u << 24)
#define CAP_ISS_GEN2         (2u << 20)
#define CAP_SAM              (1u << 18)
#define CAP_NCS(n)           (((n) - 1u) << 8)
#define CAP_NP(n)            ((n) - 1u)

#define GHC_HR               (1u << 0)
#define GHC_IE               (1u << 1)
#define GHC_AE               (1u << 31)

#define AHCI_VERSION         0x00010300  /* 1.3 */

/* Port registers (3.3) */
#define PX_CLB               0x00
#define PX_CLBU              0x04
#define PX_FB                0x08
#define PX_FBU               0x0c
#define PX_IS                0x10
#define PX_IE                0x14
#define PX_CMD               0x18
#define PX_TFD               0x20
#define PX_SIG               0x24
#define PX_SSTS              0x28
#define PX_SCTL              0x2c
#define PX_SERR              0x30
#define PX_SACT              0x34
#define PX_CI                0x38
#define PX_SNTF              0x3c
#define PX_FBS               0x40

/* PxIS / PxIE bits */
#define IS_DHRS              (1u << 0)   /* D2H register FIS */
#define IS_PSS               (1u << 1)   /* PIO setup FIS */
#define IS_DSS               (1u << 2)   /* DMA setup FIS */
#define IS_SDBS              (1u << 3)   /* set device bits FIS */
#define IS_DPS               (1u << 5)   /* descriptor processed */
#define IS_TFES              (1u << 30)  /* task file error */
#define IS_VALID             0xfdc000ffu /* bits defined for AHCI 1.3 */

/* PxCMD bits */
#define CMD_ST               (1u << 0)
#define CMD_SUD              (1u << 1)
#define CMD_POD              (1u << 2)
#define CMD_CLO              (1u << 3)
#define CMD_FRE              (1u << 4)
#define CMD_CCS_SHIFT        8
#define CMD_CCS_MASK         (0x1fu << 8)
#define CMD_FR               (1u << 14)
#define CMD_CR               (1u << 15)
#define CMD_ATAPI            (1u << 24)
#define CMD_DLAE             (1u << 25)
#define CMD_ALPE             (1u << 26)
#define CMD_ASP              (1u << 27)
#define CMD_RW               (CMD_ST | CMD_FRE | CMD_ATAPI | CMD_DLAE | CMD_ALPE | CMD_ASP)

/* Received FIS area offsets (4.2.1) */
#define RFIS_PIO             0x20
#define RFIS_D2H             0x40
#define RFIS_SDB             0x58

/* FIS types (SATA 3.x, 10.5) */
#define FIS_REG_H2D          0x27
#define FIS_REG_D2H          0x34
#define FIS_SDB              0xa1
#define FIS_PIO_SETUP        0x5f
#define FIS_I                0x40        /* interrupt bit in byte 1 */
#define FIS_D                0x20        /* PIO setup: device to host */
#define FIS_C                0x80        /* H2D: command register update */

#define CTRL_SRST            0x04

/* Command header DW0 (4.2.2) */
#define HDR_CFL_MASK         0x1f
#define HDR_ATAPI            (1u << 5)
#define HDR_WRITE            (1u << 6)

struct ahci;
struct ahci_port;

struct ahci_slot {
    struct ata_req req;
    struct ahci_port *port;
    unsigned index;
    unsigned generation;
    bool busy;                  /* at the device */
    bool ncq;
    bool prd_irq;               /* some PRD asked for an interrupt */
    uint8_t tag;
    struct iovec *iov;
};

struct ahci_port {
    struct ahci *hba;
    unsigned index;
    bool present;
    struct ata_dev dev;
    /* Registers */
    uint32_t clb, clbu, fb, fbu, is, ie, cmd, tfd, sig, sctl, serr, sact, ci;
    /* Command processing state */
    uint32_t started;           /* CI bits of non-queued commands at the device */
    uint32_t ncq_tags;          /* queued tags at the device */
    bool nonq_busy;
    bool error_stop;            /* stopped on a task file error until ST is cleared */
    bool srst;                  /* software reset asserted through a control FIS */
    bool processing, again;
    unsigned generation;        /* bumped on reset/stop: late completions are dropped */
    struct ahci_slot slots[NSLOTS];
};

struct ahci {
    struct pci_device pci;
    struct platform *plat;
    uint32_t ghc, is;
    struct ahci_port ports[AHCI_PORTS];
};

static void port_process(struct ahci_port *p);

/* --- interrupts ---------------------------------------------------------- */

static void update_irq(struct ahci *a)
{
    /* IS.IPS[i] latches while the port has an enabled interrupt pending. */
    for (unsigned i = 0; i < AHCI_PORTS; i++)
        if (a->ports[i].is & a->ports[i].ie)
            a->is |= 1u << i;
    pci_set_intx(&a->pci, (a->ghc & GHC_IE) && a->is);
}

/* --- FISes to the received-FIS area -------------------------------------- */

static void write_fis(struct ahci_port *p, unsigned off, const uint8_t *fis, size_t len)
{
    if (!(p->cmd & CMD_FRE))
        return;
    uint64_t fb = (uint64_t)p->fbu << 32 | p->fb;
    if (guest_mem_write(p->hba->plat->mem, fb + off, fis, len) < 0)
        log_guest_error("ahci: port %u: received-FIS area at 0x%llx outside RAM", p->index,
                        (unsigned long long)fb);
}

static void fill_regs(uint8_t *fis, const struct ata_req *r)
{
    fis[4] = (uint8_t)r->lba;
    fis[5] = (uint8_t)(r->lba >> 8);
    fis[6] = (uint8_t)(r->lba >> 16);
    fis[7] = r->device;
    fis[8] = (uint8_t)(r->lba >> 24);
    fis[9] = (uint8_t)(r->lba >> 32);
    fis[10] = (uint8_t)(r->lba >> 40);
    fis[12] = (uint8_t)r->count;
    fis[13] = (uint8_t)(r->count >> 8);
}

/* Register device-to-host FIS; PxTFD follows it. */
static void send_d2h(struct ahci_port *p, const struct ata_req *r, bool irq)
{
    uint8_t fis[20] = { 0 };
    fis[0] = FIS_REG_D2H;
    fis[1] = irq ? FIS_I : 0;
    fis[2] = r->status;
    fis[3] = r->error;
    fill_regs(fis, r);
    write_fis(p, RFIS_D2H, fis, sizeof(fis));
    p->tfd = (uint32_t)r->error << 8 | r->status;
    if (irq)
        p->is |= IS_DHRS;
}

/* PIO Setup FIS for data-in: status while the data moves (DRQ), and the
 * ending status in E_Status. */
static void send_pio_setup(struct ahci_port *p, const struct ata_req *r)
{
    uint8_t fis[20] = { 0 };
    fis[0] = FIS_PIO_SETUP;
    fis[1] = FIS_I | FIS_D;
    fis[2] = (uint8_t)((r->status & ~ATA_STAT_BSY) | ATA_STAT_DRQ);
    fis[3] = r->error;
    fill_regs(fis, r);
    fis[15] = r->status;
    fis[16] = (uint8_t)r->transferred;
    fis[17] = (uint8_t)(r->transferred >> 8);
    write_fis(p, RFIS_PIO, fis, sizeof(fis));
    p->is |= IS_PSS;
}

/* Set Device Bits FIS: completes queued commands (SActive bits) or reports
 * a queued command's error. */
static void send_sdb(struct ahci_port *p, uint8_t status, uint8_t error, uint32_t sactive)
{
    uint8_t fis[8] = { 0 };
    fis[0] = FIS_SDB;
    fis[1] = FIS_I;
    fis[2] = status & 0x77;
    fis[3] = error;
    st_le(fis + 4, 4, sactive);
    write_fis(p, RFIS_SDB, fis, sizeof(fis));
    p->tfd = (p->tfd & ~0xff77u) | (uint32_t)error << 8 | (status & 0x77);
    p->sact &= ~sactive;
    p->is |= IS_SDBS;
}

/* --- command completion -------------------------------------------------- */

static uint64_t clb_addr(const struct ahci_port *p)
{
    return (uint64_t)p->clbu << 32 | p->clb;
}

static void slot_done(struct ata_req *r)
{
    struct ahci_slot *sl = r->opaque;
    struct ahci_port *p = sl->port;
    uint32_t bit = 1u << sl->index;
    free(sl->iov);
    sl->iov = NULL;
    sl->busy = false;
    if (sl->generation != p->generation)
        return;                 /* the port was reset or stopped meanwhile */

    bool err = r->status & ATA_STAT_ERR;
    if (sl->ncq) {
        p->ncq_tags &= ~(1u << sl->tag);
        if (err) {
            if (p->dev.ncq_err.valid)
                p->dev.ncq_err.tag = sl->tag;
            send_sdb(p, r->status, r->error, 0);
            p->is |= IS_TFES;
            p->error_stop = true;
        } else {
            send_sdb(p, r->status, 0, 1u << sl->tag);
        }
    } else {
        /* PRDBC: bytes transferred, in the command header's DW1. */
        uint8_t prdbc[4];
        st_le(prdbc, 4, r->transferred);
        if (guest_mem_write(p->hba->plat->mem, clb_addr(p) + sl->index * 32u + 4, prdbc, 4) < 0)
            log_guest_error("ahci: port %u: command list outside RAM", p->index);
        if (r->proto == ATA_PROTO_PIO_IN && !err && r->transferred)
            send_pio_setup(p, r);
        send_d2h(p, r, true);
        p->started &= ~bit;
        p->nonq_busy = false;
        if (err) {
            /* 6.2.2: the HBA stops; PxCI keeps the failed command's bit. */
            p->is |= IS_TFES;
            p->error_stop = true;
        } else {
            p->ci &= ~bit;
        }
    }
    if (sl->prd_irq && !err && r->transferred)
        p->is |= IS_DPS;
    update_irq(p->hba);
    port_process(p);
}

/* A command that cannot run (malformed header, table or PRDs): a task file
 * error with ABRT, as a device-reported error would look. */
static void fail_slot(struct ahci_port *p, unsigned s, const char *why)
{
    log_guest_error("ahci: port %u slot %u: %s", p->index, s, why);
    struct ata_req r = { .status = ATA_STAT_DRDY | ATA_STAT_ERR, .error = ATA_ERR_ABRT };
    send_d2h(p, &r, true);
    p->is |= IS_TFES;
    p->error_stop = true;
    update_irq(p->hba);
}

/* --- command issue ------------------------------------------------------- */

static void parse_cfis(const uint8_t *c, struct ata_taskfile *tf)
{
    tf->command = c[2];
    tf->feature = (uint16_t)(c[3] | c[11] << 8);
    tf->lba = (uint64_t)c[4] | (uint64_t)c[5] << 8 | (uint64_t)c[6] << 16 | (uint64_t)c[8] << 24 |
              (uint64_t)c[9] << 32 | (uint64_t)c[10] << 40;
    tf->device = c[7];
    tf->count = (uint16_t)(c[12] | c[13] << 8);
    tf->control = c[15];
}

/* Control FIS (C=0): software reset through the device control register. */
static void control_fis(struct ahci_port *p, unsigned s, const uint8_t *cfis)
{
    uint32_t bit = 1u << s;
    if (cfis[15] & CTRL_SRST) {
        p->srst = true;
        p->tfd = ATA_STAT_BSY;
    } else if (p->srst) {
        p->srst = false;
        ata_dev_reset(&p->dev);
        uint32_t sig = ata_signature(&p->dev);
        struct ata_req r = { .status = p->dev.atapi ? 0 : ATA_STAT_DRDY | ATA_STAT_DSC, .error = 0x01,
                             .count = (uint16_t)(sig & 0xff), .lba = sig >> 8 };
        send_d2h(p, &r, false);
        p->sig = sig;
    }
    /* The header's C bit asks for PxCI to clear once the FIS is sent. */
    p->ci &= ~bit;
}

/* Maps the PRD table into iovecs (adjacent buffers merged), up to the
 * first entry outside RAM.  Returns the number of iovecs, or -1 with why
 * set. */
static int map_prdt(struct ahci_port *p, struct ahci_slot *sl, uint64_t ctba, unsigned prdtl,
                    uint64_t *total, const char **why)
{
    const struct guest_mem *mem = p->hba->plat->mem;
    *total = 0;
    sl->prd_irq = false;
    if (prdtl == 0)
        return 0;
    const uint8_t *prdt = guest_mem_ptr(mem, ctba + 0x80, (uint64_t)prdtl * 16);
    if (!prdt) {
        *why = "PRD table outside RAM";
        return -1;
    }
    sl->iov = calloc(MIN(prdtl, (unsigned)MAX_IOV), sizeof(struct iovec));
    if (!sl->iov) {
        *why = "out of memory";
        return -1;
    }
    int n = 0;
    for (unsigned i = 0; i < prdtl; i++) {
        const uint8_t *e = prdt + 16 * i;
        uint64_t dba = ld_le(e, 4) | ld_le(e + 4, 4) << 32;
        uint32_t dw3 = (uint32_t)ld_le(e + 12, 4);
        uint64_t dbc = (dw3 & 0x3fffff) + 1;
        if (dw3 & (1u << 31))
            sl->prd_irq = true;
        if (dba & 1) {
            *why = "PRD data base address not word aligned";
            return -1;
        }
        uint8_t *host = guest_mem_ptr(mem, dba, dbc);
        if (!host) {
            /* Usable up to here: the HBA only touches a PRD when data
             * moves (firmware sends non-data commands with a dummy
             * 4 MiB PRD at 0); a transfer that needs it fails then. */
            break;
        }
        if (n > 0 && (uint8_t *)sl->iov[n - 1].iov_base + sl->iov[n - 1].iov_len == host) {
            sl->iov[n - 1].iov_len += dbc;
        } else {
            if (n == MAX_IOV) {
                *why = "PRD table with too many separate buffers";
                return -1;
            }
            sl->iov[n].iov_base = host;
            sl->iov[n].iov_len = dbc;
            n++;
        }
        *total += dbc;
    }
    return n;
}

/* Starts slot s if the device can take it now; returns false to wait. */
static bool start_slot(struct ahci_port *p, unsigned s)
{
    const struct guest_mem *mem = p->hba->plat->mem;
    struct ahci_slot *sl = &p->slots[s];
    uint32_t bit = 1u << s;
    uint8_t hdr[32], tbl[0x80];

    if (guest_mem_read(mem, clb_addr(p) + s * 32u, hdr, sizeof(hdr)) < 0) {
        fail_slot(p, s, "command header outside RAM");
        return true;
    }
    uint32_t dw0 = (uint32_t)ld_le(hdr, 4);
    unsigned cfl = dw0 & HDR_CFL_MASK, prdtl = dw0 >> 16;
    /* CTBA bits 6:0 are reserved: the table is 128-byte aligned. */
    uint64_t ctba = (ld_le(hdr + 8, 4) | ld_le(hdr + 12, 4) << 32) & ~0x7fULL;
    if (cfl < 5 || cfl > 16) {
        fail_slot(p, s, "command FIS length out of range");
        return true;
    }
    if (guest_mem_read(mem, ctba, tbl, sizeof(tbl)) < 0) {
        fail_slot(p, s, "command table outside RAM");
        return true;
    }
    if (tbl[0] != FIS_REG_H2D) {
        char why[48];
        snprintf(why, sizeof(why), "command FIS of type %02x", tbl[0]);
        fail_slot(p, s, why);
        return true;
    }
    if (!(tbl[1] & FIS_C)) {
        if (p->ncq_tags || p->nonq_busy)
            return false;
        control_fis(p, s, tbl);
        return true;
    }

    struct ata_req *r = &sl->req;
    memset(r, 0, sizeof(*r));
    parse_cfis(tbl, &r->tf);
    uint8_t tag = 0;
    bool ncq = ata_is_ncq(&r->tf, &tag);
    if (!ncq && p->ncq_tags)
        return false;           /* non-queued commands wait for the queue to drain */
    if (ncq && (p->ncq_tags & (1u << tag))) {
        fail_slot(p, s, "NCQ tag already in use");
        return true;
    }

    const char *why = NULL;
    uint64_t total;
    int niov = map_prdt(p, sl, ctba, prdtl, &total, &why);
    if (niov < 0) {
        free(sl->iov);
        sl->iov = NULL;
        fail_slot(p, s, why);
        return true;
    }
    memcpy(r->packet, tbl + 0x40, sizeof(r->packet));
    r->iov = sl->iov;
    r->iovcnt = niov;
    r->buf_len = total;
    r->done = slot_done;
    r->opaque = sl;
    sl->port = p;
    sl->index = s;
    sl->generation = p->generation;
    sl->busy = true;
    sl->ncq = ncq;
    sl->tag = tag;
    p->cmd = (p->cmd & ~CMD_CCS_MASK) | s << CMD_CCS_SHIFT;

    if (ncq) {
        /* The device takes the command and clears BSY with a register FIS
         * without interrupt; the HBA then clears the PxCI bit. */
        p->ncq_tags |= 1u << tag;
        struct ata_req ack = { .status = ATA_STAT_DRDY | ATA_STAT_DSC };
        send_d2h(p, &ack, false);
        p->ci &= ~bit;
    } else {
        p->started |= bit;
        p->nonq_busy = true;
    }
    ata_execute(&p->dev, r);
    return true;
}

static bool port_running(const struct ahci_port *p)
{
    return p->present && (p->cmd & CMD_ST) && !p->error_stop && (p->sctl & 0xf) == 0;
}

static void port_process(struct ahci_port *p)
{
    /* Completions can arrive while a command is being started (commands
     * that finish at once): the outer loop picks up what they free. */
    if (p->processing) {
        p->again = true;
        return;
    }
    p->processing = true;
    do {
        p->again = false;
        for (unsigned s = 0; s < NSLOTS && port_running(p) && !p->nonq_busy; s++) {
            uint32_t bit = 1u << s;
            if (!(p->ci & bit) || (p->started & bit) || p->slots[s].busy)
                continue;
            start_slot(p, s);
        }
    } while (p->again);
    p->processing = false;
}

/* --- port state ---------------------------------------------------------- */

/* Forgets every command: requests at the device complete into nothing. */
static void port_abort(struct ahci_port *p)
{
    p->generation++;
    ata_dev_drain(&p->dev);
    p->ci = p->sact = 0;
    p->started = p->ncq_tags = 0;
    p->nonq_busy = false;
    p->error_stop = false;
    p->cmd &= ~CMD_CCS_MASK;
}

/* The device after power-on or COMRESET: ready, with its signature. */
static void port_device_reset(struct ahci_port *p)
{
    p->srst = false;
    if (p->present) {
        ata_dev_reset(&p->dev);
        /* A hard reset ends the guest's medium removal prevention (SPC-4
         * 6.13), so a rebooted guest cannot leave the tray locked. */
        p->dev.locked = false;
        p->tfd = p->dev.atapi ? 0 : ATA_STAT_DRDY | ATA_STAT_DSC;
        p->sig = ata_signature(&p->dev);
    } else {
        p->tfd = 0x7f;
        p->sig = 0xffffffff;
    }
}

static void port_reset(struct ahci_port *p)
{
    port_abort(p);
    /* CLB and FB survive an HBA reset (10.4.3). */
    p->is = p->ie = p->sctl = p->serr = 0;
    p->cmd = CMD_SUD | CMD_POD;
    port_device_reset(p);
}

static void hba_reset(struct ahci *a)
{
    a->ghc = GHC_AE;
    a->is = 0;
    for (unsigned i = 0; i < AHCI_PORTS; i++)
        port_reset(&a->ports[i]);
    update_irq(a);
}

static uint32_t port_ssts(const struct ahci_port *p)
{
    if (!p->present)
        return 0;
    switch (p->sctl & 0xf) {
    case 1: return 0x1;         /* COMRESET asserted: device present, no link */
    case 4: return 0x4;         /* interface disabled */
    default: return 0x123;      /* active, Gen2, link up */
    }
}

static void port_write_cmd(struct ahci_port *p, uint32_t v)
{
    uint32_t old = p->cmd;
    if (v & CMD_CLO)
        p->tfd &= ~(uint32_t)(ATA_STAT_BSY | ATA_STAT_DRQ);
    uint32_t cmd = (old & ~CMD_RW & ~(CMD_FR | CMD_CR)) | (v & CMD_RW);
    /* No staggered spin-up nor cold presence detect: SUD and POD read 1. */
    cmd |= CMD_SUD | CMD_POD;
    if (cmd & CMD_FRE)
        cmd |= CMD_FR;
    if (cmd & CMD_ST)
        cmd |= CMD_CR;
    p->cmd = cmd;
    if ((old & CMD_ST) && !(cmd & CMD_ST)) {
        /* 3.3.7: clearing ST clears PxCI and PxSACT and resets CCS. */
        port_abort(p);
    } else if (!(old & CMD_ST) && (cmd & CMD_ST)) {
        if (!(cmd & CMD_FRE))
            log_guest_error("ahci: port %u started without FIS receive enabled", p->index);
        port_process(p);
    }
}

static void port_write_sctl(struct ahci_port *p, uint32_t v)
{
    unsigned old_det = p->sctl & 0xf, det = v & 0xf;
    p->sctl = v & 0xfff;
    if (det == 1 && old_det != 1) {
        /* COMRESET: the link drops and everything in flight is lost. */
        port_abort(p);
        p->tfd = ATA_STAT_BSY;
    } else if (det == 0 && old_det == 1) {
        port_device_reset(p);
    }
}

/* --- register access ----------------------------------------------------- */

static uint32_t port_read(struct ahci_port *p, unsigned reg)
{
    switch (reg) {
    case PX_CLB: return p->clb;
    case PX_CLBU: return p->clbu;
    case PX_FB: return p->fb;
    case PX_FBU: return p->fbu;
    case PX_IS: return p->is;
    case PX_IE: return p->ie;
    case PX_CMD: return p->cmd;
    case PX_TFD: return p->tfd;
    case PX_SIG: return p->sig;
    case PX_SSTS: return port_ssts(p);
    case PX_SCTL: return p->sctl;
    case PX_SERR: return p->serr;
    case PX_SACT: return p->sact;
    case PX_CI: return p->ci;
    default: return 0;
    }
}

static void port_write(struct ahci_port *p, unsigned reg, uint32_t v)
{
    switch (reg) {
    case PX_CLB: p->clb = v & ~0x3ffu; break;
    case PX_CLBU: p->clbu = v; break;
    case PX_FB: p->fb = v & ~0xffu; break;
    case PX_FBU: p->fbu = v; break;
    case PX_IS: p->is &= ~v; break;
    case PX_IE: p->ie = v & IS_VALID; break;
    case PX_CMD: port_write_cmd(p, v); break;
    case PX_SCTL: port_write_sctl(p, v); break;
    case PX_SERR: p->serr &= ~v; break;
    case PX_SACT:
        if (p->cmd & CMD_ST)
            p->sact |= v;
        break;
    case PX_CI:
        if (!(p->cmd & CMD_ST)) {
            if (v)
                log_guest_error("ahci: port %u: commands %08x issued with PxCMD.ST clear", p->index, v);
            break;
        }
        if (!p->present) {
            log_guest_error("ahci: port %u: commands issued to an empty port", p->index);
            break;
        }
        p->ci |= v;
        port_process(p);
        break;
    default:
        break;                  /* read-only or reserved */
    }
    update_irq(p->hba);
}

static uint32_t hba_read(struct ahci *a, unsigned off)
{
    switch (off) {
    case HBA_CAP:
        return CAP_S64A | CAP_SNCQ | CAP_SCLO | CAP_ISS_GEN2 | CAP_SAM |
               CAP_NCS(NSLOTS) | CAP_NP(AHCI_PORTS);
    case HBA_GHC: return a->ghc;
    case HBA_IS: return a->is;
    case HBA_PI: return (1u << AHCI_PORTS) - 1;
    case HBA_VS: return AHCI_VERSION;
    default: break;
    }
    if (off >= PORT_BASE && off < PORT_BASE + AHCI_PORTS * PORT_SIZE) {
        unsigned i = (off - PORT_BASE) / PORT_SIZE;
        return port_read(&a->ports[i], (off - PORT_BASE) % PORT_SIZE);
    }
    return 0;
}

/* Registers where a written 1 acts (clears or sets) and a 0 does nothing:
 * partial writes must not merge the other bytes in. */
static bool write_one_acts(unsigned off)
{
    if (off == HBA_IS)
        return true;
    if (off < PORT_BASE)
        return false;
    unsigned reg = (off - PORT_BASE) % PORT_SIZE;
    return reg == PX_IS || reg == PX_SERR || reg == PX_SACT || reg == PX_CI;
}

static void hba_write(struct ahci *a, unsigned off, uint32_t v)
{
    switch (off) {
    case HBA_GHC:
        if (v & GHC_HR) {
            hba_reset(a);       /* HR reads back 0 once the reset is done: at once */
            return;
        }
        a->ghc = GHC_AE | (v & GHC_IE);   /* CAP.SAM: AE is read-only 1 */
        update_irq(a);
        return;
    case HBA_IS:
        a->is &= ~v;
        update_irq(a);
        return;
    default:
        break;
    }
    if (off >= PORT_BASE && off < PORT_BASE + AHCI_PORTS * PORT_SIZE) {
        unsigned i = (off - PORT_BASE) / PORT_SIZE;
        port_write(&a->ports[i], (off - PORT_BASE) % PORT_SIZE, v);
    } else if (off >= PORT_BASE + AHCI_PORTS * PORT_SIZE) {
        log_guest_error("ahci: write to 0x%x, beyond the %u implemented ports", off, AHCI_PORTS);
    }
}

static uint64_t abar_read(void *opaque, uint64_t offset, unsigned size)
{
    struct ahci *a = opaque;
    if (size == 8)
        return hba_read(a, (unsigned)offset) | (uint64_t)hba_read(a, (unsigned)offset + 4) << 32;
    unsigned shift = (unsigned)(offset & 3) * 8;
    uint32_t v = hba_read(a, (unsigned)(offset & ~3ULL)) >> shift;
    return size >= 4 ? v : v & ((1u << (size * 8)) - 1);
}

static void abar_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct ahci *a = opaque;
    if (size == 8 && !(offset & 7)) {
        hba_write(a, (unsigned)offset, (uint32_t)value);
        hba_write(a, (unsigned)offset + 4, (uint32_t)(value >> 32));
        return;
    }
    unsigned off = (unsigned)(offset & ~3ULL), shift = (unsigned)(offset & 3) * 8;
    if (size >= 4 && shift == 0) {
        hba_write(a, off, (uint32_t)value);
        return;
    }
    if (shift / 8 + size > 4) {
        log_guest_error("ahci: unaligned %u-byte write at 0x%llx", size, (unsigned long long)offset);
        return;
    }
    uint32_t mask = (size >= 4 ? 0xffffffffu : (1u << (size * 8)) - 1) << shift;
    uint32_t v = (uint32_t)(value << shift) & mask;
    if (!write_one_acts(off))
        v |= hba_read(a, off) & ~mask;
    hba_write(a, off, v);
}

static const struct io_ops abar_ops = {
    .read = abar_read,
    .write = abar_write,
};

static void pci_reset_hook(struct pci_device *d)
{
    hba_reset(d->opaque);
}

/* --- public API ---------------------------------------------------------- */

struct ahci *ahci_create(struct platform *p, struct pci_bus *bus, int devfn, char *err, size_t errlen)
{
    struct ahci *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->plat = p;
    for (unsigned i = 0; i < AHCI_PORTS; i++) {
        a->ports[i].hba = a;
        a->ports[i].index = i;
        for (unsigned s = 0; s < NSLOTS; s++)
            a->ports[i].slots[s].port = &a->ports[i];
    }
    pci_device_init(&a->pci, AHCI_VENDOR, AHCI_DEVICE, AHCI_CLASS, AHCI_REVISION, "ahci");
    pci_set_subsystem(&a->pci, 0x1af4, 0x1100);
    pci_set_irq_pin(&a->pci, 1);
    pci_add_bar(&a->pci, ABAR, PCI_BAR_MEM32, false, ABAR_SIZE, &abar_ops, a);
    a->pci.opaque = a;
    a->pci.reset = pci_reset_hook;
    hba_reset(a);
    if (pci_bus_add(bus, &a->pci, devfn) < 0) {
        snprintf(err, errlen, "no free PCI slot for the AHCI controller");
        free(a);
        return NULL;
    }
    return a;
}

void ahci_destroy(struct ahci *a)
{
    if (!a)
        return;
    for (unsigned i = 0; i < AHCI_PORTS; i++) {
        struct ahci_port *p = &a->ports[i];
        p->generation++;
        p->cmd &= ~CMD_ST;      /* nothing new starts while the drain runs */
        if (p->present)
            ata_dev_close(&p->dev);
    }
    pci_bus_remove(&a->pci);
    free(a);
}

struct pci_device *ahci_pci(struct ahci *a)
{
    return &a->pci;
}

static struct ahci_port *free_port(struct ahci *a, int port, char *err, size_t errlen)
{
    if (port < 0 || port >= AHCI_PORTS) {
        snprintf(err, errlen, "AHCI port %d out of range (0-%d)", port, AHCI_PORTS - 1);
        return NULL;
    }
    if (a->ports[port].present) {
        snprintf(err, errlen, "AHCI port %d already has a drive", port);
        return NULL;
    }
    return &a->ports[port];
}

int ahci_attach_disk(struct ahci *a, int port, const char *path, const char *format, bool read_only,
                     char *err, size_t errlen)
{
    struct ahci_port *p = free_port(a, port, err, errlen);
    if (!p || ata_disk_init(&p->dev, a->plat->loop, path, format, read_only, err, errlen) < 0)
        return -1;
    p->present = true;
    port_device_reset(p);
    return 0;
}

int ahci_attach_cdrom(struct ahci *a, int port, const char *path, char *err, size_t errlen)
{
    struct ahci_port *p = free_port(a, port, err, errlen);
    if (!p || atapi_init(&p->dev, a->plat->loop, path, err, errlen) < 0)
        return -1;
    p->present = true;
    port_device_reset(p);
    return 0;
}

static struct ahci_port *cd_port(struct ahci *a, int port, char *err, size_t errlen)
{
    if (port < 0 || port >= AHCI_PORTS || !a->ports[port].present || !a->ports[port].dev.atapi) {
        snprintf(err, errlen, "AHCI port %d has no CD/DVD drive", port);
        return NULL;
    }
    return &a->ports[port];
}

int ahci_eject(struct ahci *a, int port, bool force, char *err, size_t errlen)
{
    struct ahci_port *p = cd_port(a, port, err, errlen);
    return p ? atapi_eject(&p->dev, force, err, errlen) : -1;
}

int ahci_change_media(struct ahci *a, int port, const char *path, char *err, size_t errlen)
{
    struct ahci_port *p = cd_port(a, port, err, errlen);
    return p ? atapi_change_media(&p->dev, path, err, errlen) : -1;
}

int ahci_find_cdrom(const struct ahci *a)
{
    for (int i = 0; i < AHCI_PORTS; i++)
        if (a->ports[i].present && a->ports[i].dev.atapi)
            return i;
    return -1;
}

const char *ahci_medium_path(const struct ahci *a, int port)
{
    if (port < 0 || port >= AHCI_PORTS || !a->ports[port].present)
        return NULL;
    return a->ports[port].dev.path;
}
