/* Guest-side xHCI driver for the device harness (see xhci_driver.h).
 * Everything here follows the xHCI 1.2 specification (section numbers
 * below), USB 2.0 chapter 9 and PCI 3.0, not the device model's code. */
#include "support/xhci_driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/evloop.h"

/* PCI configuration space */
#define CFG_COMMAND   0x04
#define CFG_CLASS     0x08
#define CFG_BAR0      0x10
#define CFG_CAP_PTR   0x34
#define CMD_MEM       0x2
#define CMD_MASTER    0x4
#define CAP_ID_MSIX   0x11
#define XHCI_CLASS    0x0c0330

#define CTX 32                     /* 32-byte contexts (HCCPARAMS1.CSZ = 0) */
#define SCRATCH_SIZE  4096

static void die(const char *msg)
{
    fprintf(stderr, "xhci test driver: %s\n", msg);
    abort();
}

void xd_mem_write(struct xhci_drv *d, uint64_t gpa, const void *buf, size_t len)
{
    if (gpa > d->h->ram_size || len > d->h->ram_size - gpa)
        die("write outside harness RAM");
    memcpy(d->h->ram + gpa, buf, len);
}

void xd_mem_read(struct xhci_drv *d, uint64_t gpa, void *buf, size_t len)
{
    if (gpa > d->h->ram_size || len > d->h->ram_size - gpa)
        die("read outside harness RAM");
    memcpy(buf, d->h->ram + gpa, len);
}

static uint32_t mem32(struct xhci_drv *d, uint64_t gpa)
{
    uint32_t v;
    xd_mem_read(d, gpa, &v, 4);
    return v;
}

static void put32(struct xhci_drv *d, uint64_t gpa, uint32_t v)
{
    xd_mem_write(d, gpa, &v, 4);
}

static void put64(struct xhci_drv *d, uint64_t gpa, uint64_t v)
{
    xd_mem_write(d, gpa, &v, 8);
}

uint64_t xd_alloc(struct xhci_drv *d, uint64_t size, uint64_t align)
{
    uint64_t a = (d->heap + align - 1) & ~(align - 1);
    if (a + size > d->heap_end)
        die("out of harness RAM");
    d->heap = a + size;
    memset(d->h->ram + a, 0, size);
    return a;
}

uint32_t xd_rd(struct xhci_drv *d, uint64_t base, unsigned off)
{
    return (uint32_t)harness_mmio_read(d->h, base + off, 4);
}

void xd_wr(struct xhci_drv *d, uint64_t base, unsigned off, uint32_t v)
{
    harness_mmio_write(d->h, base + off, 4, v);
}

/* 64-bit registers as two dword writes, low first (5.1). */
void xd_wr64(struct xhci_drv *d, uint64_t base, unsigned off, uint64_t v)
{
    xd_wr(d, base, off, (uint32_t)v);
    xd_wr(d, base, off + 4, (uint32_t)(v >> 32));
}

static void run_loop(struct xhci_drv *d)
{
    evloop_run_once(d->h->plat.loop, 1);
}

/* --- PCI ----------------------------------------------------------------- */

static uint32_t cfg_rd(struct xhci_drv *d, unsigned off, unsigned size)
{
    return pci_config_read(d->bus, d->devfn, off, size);
}

static void cfg_wr(struct xhci_drv *d, unsigned off, unsigned size, uint32_t v)
{
    pci_config_write(d->bus, d->devfn, off, size, v);
}

static uint64_t bar_size(struct xhci_drv *d, unsigned bar)
{
    unsigned off = CFG_BAR0 + 4 * bar;
    uint32_t orig = cfg_rd(d, off, 4);
    cfg_wr(d, off, 4, 0xffffffff);
    uint32_t v = cfg_rd(d, off, 4);
    cfg_wr(d, off, 4, orig);
    return ((uint64_t)(~(v & ~0xfu)) + 1) & 0xffffffffull;
}

static void place_bar(struct xhci_drv *d, unsigned bar, uint64_t addr)
{
    unsigned off = CFG_BAR0 + 4 * bar;
    bool is64 = ((cfg_rd(d, off, 4) >> 1) & 3) == 2;
    cfg_wr(d, off, 4, (uint32_t)addr);
    if (is64)
        cfg_wr(d, off + 4, 4, (uint32_t)(addr >> 32));
}

int xd_probe(struct xhci_drv *d, struct harness *h, struct pci_bus *bus, uint64_t mmio_base,
             uint64_t heap_base, uint64_t heap_end)
{
    memset(d, 0, sizeof(*d));
    d->h = h;
    d->bus = bus;
    d->heap = d->heap_base = heap_base;
    d->heap_end = heap_end;
    int devfn = -1;
    for (int f = 0; f < 256 && devfn < 0; f++)
        if (pci_config_read(bus, (uint8_t)f, PCI_VENDOR_ID, 2) != 0xffff &&
            pci_config_read(bus, (uint8_t)f, CFG_CLASS, 4) >> 8 == XHCI_CLASS)
            devfn = f;
    if (devfn < 0)
        return -1;
    d->devfn = (uint8_t)devfn;
    /* BAR 0 holds the registers (5.2.1); MSI-X names its own BAR. */
    if ((cfg_rd(d, CFG_BAR0, 4) & 1) != 0)
        return -1;
    uint64_t size0 = bar_size(d, 0);
    place_bar(d, 0, mmio_base);
    d->mmio = mmio_base;
    for (unsigned p = cfg_rd(d, CFG_CAP_PTR, 1) & 0xfc, n = 0; p && n < 48; n++) {
        if (cfg_rd(d, p, 1) == CAP_ID_MSIX)
            d->msix_cap = (uint8_t)p;
        p = cfg_rd(d, p + 1, 1) & 0xfc;
    }
    if (d->msix_cap) {
        uint32_t table = cfg_rd(d, d->msix_cap + 4, 4);
        unsigned bir = table & 7;
        uint64_t size = bar_size(d, bir);
        uint64_t at = (mmio_base + size0 + size - 1) & ~(size - 1);
        place_bar(d, bir, at);
        d->msix_table = at + (table & ~7u);
    }
    cfg_wr(d, CFG_COMMAND, 2, CMD_MEM | CMD_MASTER);
    return 0;
}

/* --- reset and start (4.2) ------------------------------------------------ */

static bool wait_reg(struct xhci_drv *d, uint64_t base, unsigned off, uint32_t mask, uint32_t want)
{
    for (int i = 0; i < 1000; i++) {
        if ((xd_rd(d, base, off) & mask) == want)
            return true;
        run_loop(d);
    }
    return false;
}

static void read_protocols(struct xhci_drv *d, unsigned xecp)
{
    uint64_t at = d->mmio + 4ull * xecp;
    for (int n = 0; xecp && n < 64; n++) {
        uint32_t v = xd_rd(d, at, 0);
        if ((v & 0xff) == 2) {       /* Supported Protocol (7.2) */
            uint32_t ports = xd_rd(d, at, 8);
            if (v >> 24 == 3) {
                d->usb3_first = ports & 0xff;
                d->usb3_count = (ports >> 8) & 0xff;
            } else if (v >> 24 == 2) {
                d->usb2_first = ports & 0xff;
                d->usb2_count = (ports >> 8) & 0xff;
            }
        }
        unsigned next = (v >> 8) & 0xff;
        if (!next)
            break;
        at += 4ull * next;
    }
}

int xd_reset(struct xhci_drv *d)
{
    uint32_t caplen = xd_rd(d, d->mmio, 0) & 0xff;
    d->op = d->mmio + caplen;
    uint32_t cmd = xd_rd(d, d->op, XD_USBCMD);
    if (cmd & XD_CMD_RS) {
        xd_wr(d, d->op, XD_USBCMD, cmd & ~XD_CMD_RS);
        if (!wait_reg(d, d->op, XD_USBSTS, XD_STS_HCH, XD_STS_HCH))
            return -1;
    }
    xd_wr(d, d->op, XD_USBCMD, XD_CMD_HCRST);
    if (!wait_reg(d, d->op, XD_USBCMD, XD_CMD_HCRST, 0) ||
        !wait_reg(d, d->op, XD_USBSTS, XD_STS_CNR, 0))
        return -1;
    uint32_t hcs1 = xd_rd(d, d->mmio, 0x04), hcc1 = xd_rd(d, d->mmio, 0x10);
    d->max_slots = hcs1 & 0xff;
    d->max_intrs = (hcs1 >> 8) & 0x7ff;
    d->max_ports = hcs1 >> 24;
    d->db = d->mmio + (xd_rd(d, d->mmio, 0x14) & ~3u);
    d->rt = d->mmio + (xd_rd(d, d->mmio, 0x18) & ~0x1fu);
    read_protocols(d, hcc1 >> 16);
    d->heap = d->heap_base;
    d->npending = 0;
    memset(d->slots, 0, sizeof(d->slots));
    return 0;
}

static void ring_init(struct xhci_drv *d, struct xd_ring *r, unsigned n)
{
    r->base = xd_alloc(d, 16ull * n, 64);
    r->n = n;
    r->enq = 0;
    r->cycle = true;
}

int xd_start(struct xhci_drv *d, uint16_t imodi, uint64_t msi_addr, uint32_t msi_data)
{
    unsigned slots = d->max_slots < XD_MAX_SLOTS ? d->max_slots : XD_MAX_SLOTS;
    xd_wr(d, d->op, XD_CONFIG, slots);
    d->dcbaa = xd_alloc(d, 8ull * (slots + 1), 64);
    xd_wr64(d, d->op, XD_DCBAAP, d->dcbaa);
    ring_init(d, &d->cmd, XD_CMD_TRBS);
    xd_wr64(d, d->op, XD_CRCR, d->cmd.base | 1);          /* RCS = 1 */
    /* Event ring: two segments in the segment table (6.5). */
    d->erst = xd_alloc(d, 32, 64);
    for (int i = 0; i < 2; i++) {
        d->ev_seg[i] = xd_alloc(d, 16 * XD_EV_SEG_TRBS, 64);
        put64(d, d->erst + 16 * i, d->ev_seg[i]);
        put32(d, d->erst + 16 * i + 8, XD_EV_SEG_TRBS);
    }
    d->ev_seg_i = 0;
    d->ev_idx = 0;
    d->ev_cycle = true;
    uint64_t ir0 = d->rt + 0x20;
    xd_wr(d, ir0, 0x08, 2);                             /* ERSTSZ */
    xd_wr64(d, ir0, 0x18, d->ev_seg[0]);                /* ERDP */
    xd_wr64(d, ir0, 0x10, d->erst);                     /* ERSTBA */
    xd_wr(d, ir0, 0x04, imodi);                         /* IMOD */
    xd_wr(d, ir0, 0x00, 2);                             /* IMAN.IE */
    if (msi_addr) {
        if (!d->msix_cap)
            return -1;
        xd_wr64(d, d->msix_table, 0, msi_addr);
        xd_wr(d, d->msix_table, 8, msi_data);
        xd_wr(d, d->msix_table, 12, 0);                 /* unmasked */
        cfg_wr(d, d->msix_cap + 2, 2, 0x8000);          /* MSI-X Enable */
    }
    xd_wr(d, d->op, XD_USBCMD, XD_CMD_INTE | XD_CMD_RS);
    return wait_reg(d, d->op, XD_USBSTS, XD_STS_HCH, 0) ? 0 : -1;
}

/* --- rings ------------------------------------------------------------------ */

void xd_write_trb(struct xhci_drv *d, uint64_t addr, uint64_t param, uint32_t status, uint32_t control)
{
    put64(d, addr, param);
    put32(d, addr + 8, status);
    put32(d, addr + 12, control);
}

/* Producer side of a ring with one segment closed by a Link TRB that
 * toggles the cycle (4.9.2). */
uint64_t xd_ring_put(struct xhci_drv *d, struct xd_ring *r, uint64_t param, uint32_t status,
                     uint32_t control)
{
    uint64_t addr = r->base + 16ull * r->enq;
    xd_write_trb(d, addr, param, status, (control & ~XD_TRB_C) | (r->cycle ? XD_TRB_C : 0));
    if (++r->enq == r->n - 1) {
        uint32_t chain = control & XD_TRB_CH;
        xd_write_trb(d, r->base + 16ull * r->enq, r->base, 0,
                     XD_TRB_TYPE(XD_TRB_LINK) | XD_TRB_TC | chain | (r->cycle ? XD_TRB_C : 0));
        r->enq = 0;
        r->cycle = !r->cycle;
    }
    return addr;
}

void xd_doorbell(struct xhci_drv *d, unsigned slot, unsigned target)
{
    xd_wr(d, d->db, 4 * slot, target);
}

uint64_t xd_cmd_next(const struct xhci_drv *d)
{
    return d->cmd.base + 16ull * d->cmd.enq;
}

/* --- events (4.9.4) -------------------------------------------------------- */

static bool ring_event(struct xhci_drv *d, struct xd_trb *ev)
{
    uint64_t at = d->ev_seg[d->ev_seg_i] + 16ull * d->ev_idx;
    struct xd_trb t;
    xd_mem_read(d, at, &t.param, 8);
    t.status = mem32(d, at + 8);
    t.control = mem32(d, at + 12);
    if (!(t.control & XD_TRB_C) != !d->ev_cycle)
        return false;
    if (++d->ev_idx == XD_EV_SEG_TRBS) {
        d->ev_idx = 0;
        d->ev_seg_i ^= 1;
        if (d->ev_seg_i == 0)
            d->ev_cycle = !d->ev_cycle;
    }
    /* New dequeue pointer with its segment index, EHB cleared (5.5.2.3.3). */
    uint64_t deq = d->ev_seg[d->ev_seg_i] + 16ull * d->ev_idx;
    xd_wr64(d, d->rt + 0x20, 0x18, deq | d->ev_seg_i | 8);
    *ev = t;
    return true;
}

bool xd_poll_event(struct xhci_drv *d, struct xd_trb *ev)
{
    if (d->npending) {
        *ev = d->pending[0];
        memmove(d->pending, d->pending + 1, --d->npending * sizeof(*ev));
        return true;
    }
    return ring_event(d, ev);
}

void xd_drain_events(struct xhci_drv *d)
{
    struct xd_trb ev;
    d->npending = 0;
    while (ring_event(d, &ev)) {
    }
}

typedef bool (*ev_match)(const struct xd_trb *ev, const void *arg);

static int wait_match(struct xhci_drv *d, ev_match m, const void *arg, struct xd_trb *out, int timeout_ms)
{
    for (unsigned i = 0; i < d->npending; i++) {
        if (m(&d->pending[i], arg)) {
            *out = d->pending[i];
            memmove(&d->pending[i], &d->pending[i + 1], (d->npending - i - 1) * sizeof(*out));
            d->npending--;
            return 0;
        }
    }
    uint64_t deadline = evloop_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        struct xd_trb ev;
        while (ring_event(d, &ev)) {
            if (m(&ev, arg)) {
                *out = ev;
                return 0;
            }
            if (d->npending == sizeof(d->pending) / sizeof(d->pending[0]))
                die("too many events nobody waits for");
            d->pending[d->npending++] = ev;
        }
        if (evloop_now_ns() >= deadline)
            return -1;
        run_loop(d);
    }
}

struct type_param {
    unsigned type;
    bool match_param;
    uint64_t param;
};

static bool match_type_param(const struct xd_trb *ev, const void *arg)
{
    const struct type_param *tp = arg;
    return (!tp->type || XD_EV_TYPE(ev->control) == tp->type) && (!tp->match_param || ev->param == tp->param);
}

int xd_wait_event(struct xhci_drv *d, unsigned type, bool match_param, uint64_t param,
                  struct xd_trb *ev, int timeout_ms)
{
    struct type_param tp = { type, match_param, param };
    return wait_match(d, match_type_param, &tp, ev, timeout_ms);
}

struct slot_ep {
    unsigned slot, dci;
};

static bool match_transfer(const struct xd_trb *ev, const void *arg)
{
    const struct slot_ep *se = arg;
    return XD_EV_TYPE(ev->control) == XD_EV_TRANSFER && XD_EV_SLOT(ev->control) == se->slot &&
           XD_EV_EP(ev->control) == se->dci;
}

/* --- commands (4.6) ---------------------------------------------------------- */

int xd_command(struct xhci_drv *d, uint64_t param, uint32_t status, uint32_t control, unsigned *slot)
{
    uint64_t at = xd_ring_put(d, &d->cmd, param, status, control);
    xd_doorbell(d, 0, 0);
    struct xd_trb ev;
    if (xd_wait_event(d, XD_EV_COMMAND, true, at, &ev, 1000) < 0)
        return -1;
    if (slot)
        *slot = XD_EV_SLOT(ev.control);
    return (int)XD_EV_CC(ev.status);
}

/* --- ports (4.19) ---------------------------------------------------------- */

uint32_t xd_portsc(struct xhci_drv *d, unsigned port)
{
    return xd_rd(d, d->op, XD_PORTSC(port));
}

uint32_t xd_port_reset(struct xhci_drv *d, unsigned port)
{
    /* Written "neutral": change bits and PED as 0 so that nothing else is
     * cleared or disabled by the write. */
    xd_wr(d, d->op, XD_PORTSC(port), XD_PORT_PP | XD_PORT_PR);
    for (int i = 0; i < 1000; i++) {
        uint32_t v = xd_portsc(d, port);
        if ((v & XD_PORT_PRC) && !(v & XD_PORT_PR)) {
            xd_wr(d, d->op, XD_PORTSC(port), XD_PORT_PP | (v & XD_PORT_CHANGES));
            return xd_portsc(d, port);
        }
        run_loop(d);
    }
    return 0;
}

/* --- devices (4.3) --------------------------------------------------------- */

int xd_enable_slot(struct xhci_drv *d, unsigned *slot)
{
    return xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_ENABLE_SLOT), slot);
}

static uint16_t default_mps(unsigned speed)
{
    switch (speed) {
    case 2: return 8;       /* low speed */
    case 4: return 512;     /* SuperSpeed */
    default: return 64;     /* full and high speed */
    }
}

int xd_address_device(struct xhci_drv *d, unsigned slot, unsigned port, bool bsr)
{
    if (slot == 0 || slot > XD_MAX_SLOTS)
        return -1;
    struct xd_slot *s = &d->slots[slot];
    if (!s->used) {
        s->used = true;
        s->in_ctx = xd_alloc(d, 33 * CTX, 64);
        s->out_ctx = xd_alloc(d, 32 * CTX, 64);
        ring_init(d, &s->ep[1], XD_RING_TRBS);
    }
    /* The default endpoint starts on a fresh ring each time. */
    memset(d->h->ram + s->ep[1].base, 0, 16ull * s->ep[1].n);
    s->ep[1].enq = 0;
    s->ep[1].cycle = true;
    s->port = port;
    put64(d, d->dcbaa + 8ull * slot, s->out_ctx);
    unsigned speed = XD_PORT_SPEED(xd_portsc(d, port));
    uint64_t in = s->in_ctx;
    memset(d->h->ram + in, 0, 33 * CTX);
    put32(d, in + 4, 3);                                       /* A0, A1 */
    put32(d, in + CTX, speed << 20 | 1u << 27);                /* one context entry */
    put32(d, in + CTX + 4, port << 16);                        /* root hub port */
    uint64_t ep0 = in + 2 * CTX;
    put32(d, ep0 + 4, 3u << 1 | XD_EP_CONTROL << 3 | (uint32_t)default_mps(speed) << 16);
    put64(d, ep0 + 8, s->ep[1].base | (s->ep[1].cycle ? 1 : 0));
    put32(d, ep0 + 16, 8);                                     /* average TRB length */
    return xd_command(d, in, 0, XD_TRB_TYPE(XD_CMD_ADDRESS_DEVICE) | (bsr ? XD_TRB_BSR : 0) | slot << 24,
                      NULL);
}

unsigned xd_enumerate(struct xhci_drv *d, unsigned port)
{
    bool usb3 = port >= d->usb3_first && port < d->usb3_first + d->usb3_count;
    unsigned slot = 0;
    if (!(xd_portsc(d, port) & XD_PORT_CCS) || (!usb3 && !(xd_port_reset(d, port) & XD_PORT_PED)))
        return 0;
    if (xd_enable_slot(d, &slot) != XD_CC_SUCCESS || xd_address_device(d, slot, port, false) != XD_CC_SUCCESS ||
        xd_control(d, slot, 0x00, 9, 1, 0, NULL, 0, NULL) != XD_CC_SUCCESS)
        return 0;
    return slot;
}

int xd_clear_halt(struct xhci_drv *d, unsigned slot, unsigned dci, uint8_t ep_addr)
{
    struct xd_ring *r = &d->slots[slot].ep[dci];
    if (xd_command(d, 0, 0, XD_TRB_TYPE(XD_CMD_RESET_EP) | slot << 24 | dci << 16, NULL) != XD_CC_SUCCESS)
        return -1;
    uint64_t next = r->base + 16ull * r->enq;
    if (xd_command(d, next | (r->cycle ? 1 : 0), 0, XD_TRB_TYPE(XD_CMD_SET_TR_DEQ) | slot << 24 | dci << 16,
                   NULL) != XD_CC_SUCCESS)
        return -1;
    return xd_control(d, slot, 0x02, 1, 0, ep_addr, NULL, 0, NULL);
}

int xd_control(struct xhci_drv *d, unsigned slot, uint8_t type, uint8_t req, uint16_t value,
               uint16_t index, void *buf, uint16_t len, uint32_t *actual)
{
    struct xd_ring *r = &d->slots[slot].ep[1];
    bool in = type & 0x80;
    uint64_t data = 0;
    if (len) {
        data = xd_alloc(d, SCRATCH_SIZE > len ? SCRATCH_SIZE : len, 64);
        if (!in)
            xd_mem_write(d, data, buf, len);
    }
    uint64_t setup = type | (uint64_t)req << 8 | (uint64_t)value << 16 | (uint64_t)index << 32 |
                     (uint64_t)len << 48;
    unsigned trt = len == 0 ? 0 : in ? 3 : 2;                   /* 6.4.1.2.1 */
    xd_ring_put(d, r, setup, 8, XD_TRB_TYPE(XD_TRB_SETUP) | XD_TRB_IDT | trt << 16);
    uint64_t data_trb = 0;
    if (len)
        data_trb = xd_ring_put(d, r, data, len,
                               XD_TRB_TYPE(XD_TRB_DATA) | (in ? (1u << 16) | XD_TRB_ISP : 0));
    /* The status stage goes the other way from the data (IN without data). */
    uint64_t status_trb = xd_ring_put(d, r, 0, 0, XD_TRB_TYPE(XD_TRB_STATUS) | XD_TRB_IOC |
                                                  (len == 0 || !in ? 1u << 16 : 0));
    xd_doorbell(d, slot, 1);
    uint32_t moved = len;
    struct slot_ep se = { slot, 1 };
    for (;;) {
        struct xd_trb ev;
        if (wait_match(d, match_transfer, &se, &ev, 1000) < 0)
            return -1;
        unsigned cc = XD_EV_CC(ev.status);
        if (ev.param == data_trb && data_trb && cc == XD_CC_SHORT_PACKET) {
            moved = len - XD_EV_LEN(ev.status);
            continue;
        }
        if (cc != XD_CC_SUCCESS || ev.param == status_trb) {
            if (cc != XD_CC_SUCCESS)
                moved = ev.param == data_trb ? len - XD_EV_LEN(ev.status) : 0;
            if (actual)
                *actual = moved;
            if (in && moved && buf)
                xd_mem_read(d, data, buf, moved);
            d->heap = data ? data : d->heap;      /* the bounce buffer is free again */
            return (int)cc;
        }
    }
}

int xd_configure_ep(struct xhci_drv *d, unsigned slot, unsigned dci, unsigned type, uint16_t mps,
                    uint8_t interval)
{
    struct xd_slot *s = &d->slots[slot];
    if (!s->ep[dci].base)
        ring_init(d, &s->ep[dci], XD_RING_TRBS);
    else {
        memset(d->h->ram + s->ep[dci].base, 0, 16ull * s->ep[dci].n);
        s->ep[dci].enq = 0;
        s->ep[dci].cycle = true;
    }
    uint64_t in = s->in_ctx;
    memset(d->h->ram + in, 0, 33 * CTX);
    put32(d, in + 4, 1u | 1u << dci);                        /* A0 and the endpoint */
    /* Slot Context from the output one, with enough context entries. */
    uint8_t sc[CTX];
    xd_mem_read(d, s->out_ctx, sc, CTX);
    uint32_t dw0;
    memcpy(&dw0, sc, 4);
    unsigned entries = dw0 >> 27;
    if (entries < dci)
        entries = dci;
    dw0 = (dw0 & 0x07ffffffu) | entries << 27;
    memcpy(sc, &dw0, 4);
    memset(sc + 12, 0, 4);                                   /* state and address are the xHC's */
    xd_mem_write(d, in + CTX, sc, CTX);
    uint64_t ep = in + CTX * (1ull + dci);
    put32(d, ep, (uint32_t)interval << 16);
    put32(d, ep + 4, 3u << 1 | type << 3 | (uint32_t)mps << 16);
    put64(d, ep + 8, s->ep[dci].base | 1);
    put32(d, ep + 16, mps | (uint32_t)mps << 16);            /* average TRB length, max ESIT payload */
    return xd_command(d, in, 0, XD_TRB_TYPE(XD_CMD_CONFIGURE_EP) | slot << 24, NULL);
}

uint64_t xd_queue_normal(struct xhci_drv *d, unsigned slot, unsigned dci, uint64_t buf, uint32_t len)
{
    uint32_t flags = XD_TRB_IOC | ((dci & 1) ? XD_TRB_ISP : 0);
    uint64_t at = xd_ring_put(d, &d->slots[slot].ep[dci], buf, len, XD_TRB_TYPE(XD_TRB_NORMAL) | flags);
    xd_doorbell(d, slot, dci);
    return at;
}

uint64_t xd_queue_isoch(struct xhci_drv *d, unsigned slot, unsigned dci, uint64_t buf, uint32_t len)
{
    uint32_t flags = XD_TRB_IOC | ((dci & 1) ? XD_TRB_ISP : 0) | 1u << 31;   /* SIA */
    uint64_t at = xd_ring_put(d, &d->slots[slot].ep[dci], buf, len, XD_TRB_TYPE(XD_TRB_ISOCH) | flags);
    xd_doorbell(d, slot, dci);
    return at;
}

int xd_wait_transfer(struct xhci_drv *d, unsigned slot, unsigned dci, uint32_t *residual,
                     int timeout_ms)
{
    struct slot_ep se = { slot, dci };
    struct xd_trb ev;
    if (wait_match(d, match_transfer, &se, &ev, timeout_ms) < 0)
        return -1;
    if (residual)
        *residual = XD_EV_LEN(ev.status);
    return (int)XD_EV_CC(ev.status);
}

unsigned xd_ep_state(struct xhci_drv *d, unsigned slot, unsigned dci, uint64_t *deq)
{
    uint64_t at = d->slots[slot].out_ctx + (uint64_t)CTX * dci;
    if (deq)
        xd_mem_read(d, at + 8, deq, 8);
    return mem32(d, at) & 7;
}

unsigned xd_slot_state(struct xhci_drv *d, unsigned slot, unsigned *address)
{
    uint32_t dw3 = mem32(d, d->slots[slot].out_ctx + 12);
    if (address)
        *address = dw3 & 0xff;
    return dw3 >> 27;
}
