/* xHCI 1.2 host controller: PCI function, registers (chapter 5), root hub
 * ports (4.19), interrupters and event rings (4.9.4, 4.17), the command
 * ring and its commands (4.6).  Transfer rings live in xhci_transfer.c. */
#include "devices/usb/xhci.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/evloop.h"
#include "devices/usb/xhci_int.h"
#include "devices/util.h"

/* No real chip is modelled, so no chip's ids: guests bind xHCI drivers by
 * class code, and a chip vendor's ids would bring that chip's quirks
 * (vendor commands, port routing) with them.  0x1234 is the id the Bochs
 * display of this machine already carries; no xHCI quirk table names it. */
#define XHCI_VENDOR   0x1234
#define XHCI_DEVICE   0x0330
#define XHCI_CLASS    0x0c0330
#define XHCI_REVISION 0x01

#define XHCI_BAR_SIZE 0x4000
#define XHCI_MSIX_BAR 2
#define PCI_SBRN      0x60      /* Serial Bus Release Number (5.2.3) */
#define PCI_FLADJ     0x61

/* Register map of BAR 0 */
#define CAP_LENGTH   0x20
#define OP_BASE      CAP_LENGTH
#define PORT_BASE    (OP_BASE + 0x400)
#define XECP_BASE    0x800
#define RT_BASE      0x1000
#define DB_BASE      0x2000

/* Capability registers (5.3) */
#define HCIVERSION   0x0120
#define HCCP1_AC64   (1u << 0)
#define HCCP1_NSS    (1u << 7)

/* Operational registers (5.4) */
#define OP_USBCMD    0x00
#define OP_USBSTS    0x04
#define OP_PAGESIZE  0x08
#define OP_DNCTRL    0x14
#define OP_CRCR      0x18
#define OP_DCBAAP    0x30
#define OP_CONFIG    0x38

#define CMD_RS       (1u << 0)
#define CMD_HCRST    (1u << 1)
#define CMD_INTE     (1u << 2)
#define CMD_HSEE     (1u << 3)
#define CMD_CSS      (1u << 8)
#define CMD_CRS      (1u << 9)
#define CMD_KEPT     (CMD_RS | CMD_INTE | CMD_HSEE | (1u << 10) | (1u << 11) | (1u << 13) | (1u << 14))

#define STS_HCH      (1u << 0)
#define STS_HSE      (1u << 2)
#define STS_EINT     (1u << 3)
#define STS_PCD      (1u << 4)
#define STS_SRE      (1u << 10)
#define STS_HCE      (1u << 12)
#define STS_W1C      (STS_HSE | STS_EINT | STS_PCD | STS_SRE)

#define CRCR_RCS     (1u << 0)
#define CRCR_CS      (1u << 1)
#define CRCR_CA      (1u << 2)
#define CRCR_CRR     (1u << 3)

/* PORTSC (5.4.8) */
#define PORT_CCS     (1u << 0)
#define PORT_PED     (1u << 1)
#define PORT_PR      (1u << 4)
#define PORT_PLS_SHIFT 5
#define PORT_PLS     (0xfu << PORT_PLS_SHIFT)
#define PORT_PP      (1u << 9)
#define PORT_SPEED_SHIFT 10
#define PORT_SPEED   (0xfu << PORT_SPEED_SHIFT)
#define PORT_PIC     (3u << 14)
#define PORT_LWS     (1u << 16)
#define PORT_CSC     (1u << 17)
#define PORT_PEC     (1u << 18)
#define PORT_WRC     (1u << 19)
#define PORT_OCC     (1u << 20)
#define PORT_PRC     (1u << 21)
#define PORT_PLC     (1u << 22)
#define PORT_CEC     (1u << 23)
#define PORT_WAKE    (7u << 25)    /* WCE, WDE, WOE */
#define PORT_WPR     (1u << 31)
#define PORT_CHANGE  (PORT_CSC | PORT_PEC | PORT_WRC | PORT_OCC | PORT_PRC | PORT_PLC | PORT_CEC)

enum pls { PLS_U0 = 0, PLS_U1, PLS_U2, PLS_U3, PLS_DISABLED, PLS_RXDETECT, PLS_INACTIVE, PLS_POLLING,
           PLS_RESUME = 15 };

/* Runtime registers (5.5) */
#define RT_MFINDEX   0x00
#define RT_IR0       0x20
#define IR_IMAN      0x00
#define IR_IMOD      0x04
#define IR_ERSTSZ    0x08
#define IR_ERSTBA    0x10
#define IR_ERDP      0x18
#define IMAN_IP      (1u << 0)
#define IMAN_IE      (1u << 1)
#define ERDP_EHB     (1u << 3)
#define IMOD_DEFAULT 4000          /* 1 ms in 250 ns units (5.5.2.2) */

/* Slot Context and Endpoint Context fields (6.2.2, 6.2.3) */
#define CTX_SIZE     32

static unsigned port_speed_id(enum usb_speed s)
{
    switch (s) {              /* default Protocol Speed IDs (7.2.2.1.1) */
    case USB_SPEED_LOW: return 2;
    case USB_SPEED_FULL: return 1;
    case USB_SPEED_HIGH: return 3;
    case USB_SPEED_SUPER: return 4;
    }
    return 0;
}

bool xhci_running(const struct xhci *x)
{
    return !(x->usbsts & STS_HCH);
}

static struct xhci_port *port_of(struct xhci *x, unsigned port)
{
    return port >= 1 && port <= XHCI_PORTS ? &x->ports[port - 1] : NULL;
}

/* --- interrupts -------------------------------------------------------- */

static void update_intx(struct xhci *x)
{
    bool level = false;
    if ((x->usbcmd & CMD_INTE) && !pci_msix_enabled(&x->pci))
        for (unsigned i = 0; i < XHCI_INTRS; i++)
            if ((x->intr[i].iman & (IMAN_IP | IMAN_IE)) == (IMAN_IP | IMAN_IE))
                level = true;
    pci_set_intx(&x->pci, level);
}

/* IP is signalled as an MSI-X message, after which the controller clears
 * it, or as the INTx level while it stays set (5.5.2.1). */
static void deliver(struct xhci *x, unsigned i)
{
    struct xhci_intr *r = &x->intr[i];
    if ((r->iman & (IMAN_IP | IMAN_IE)) == (IMAN_IP | IMAN_IE) && (x->usbcmd & CMD_INTE) &&
        pci_msix_enabled(&x->pci)) {
        pci_msix_notify(&x->pci, i);
        r->iman &= ~IMAN_IP;
    }
    update_intx(x);
}

static void moderation_done(void *opaque);

/* Sets IP when an event wants it, the handler is not busy (EHB) and the
 * moderation interval has passed (4.17.2). */
static void try_interrupt(struct xhci *x, unsigned i)
{
    struct xhci_intr *r = &x->intr[i];
    if (!r->want_irq || (r->erdp & ERDP_EHB) || r->mod_timer >= 0)
        return;
    r->want_irq = false;
    r->iman |= IMAN_IP;
    r->erdp |= ERDP_EHB;
    x->usbsts |= STS_EINT;
    unsigned imodi = r->imod & 0xffff;
    if (imodi && x->plat->loop)
        r->mod_timer = evloop_add_timer(x->plat->loop, (uint64_t)imodi * 250, moderation_done, r);
    deliver(x, i);
}

static void moderation_done(void *opaque)
{
    struct xhci_intr *r = opaque;
    r->mod_timer = -1;
    try_interrupt(r->owner, r->index);
}

/* --- event rings (4.9.4) ------------------------------------------------ */

static void host_controller_error(struct xhci *x, const char *why);

static uint64_t ring_addr(const struct xhci_intr *r, unsigned seg, uint32_t idx)
{
    return r->seg_base[seg] + 16ull * idx;
}

static void ring_next(const struct xhci_intr *r, unsigned *seg, uint32_t *idx, bool *pcs)
{
    if (++*idx < r->seg_size[*seg])
        return;
    *idx = 0;
    if (++*seg == r->nseg) {
        *seg = 0;
        *pcs = !*pcs;
    }
}

/* ERSTBA's write sets the ring up from the segment table; a table the
 * controller cannot use leaves the ring broken, which is an HCE when the
 * first event needs it. */
static void event_ring_init(struct xhci *x, unsigned i)
{
    struct xhci_intr *r = &x->intr[i];
    r->ring_ok = false;
    r->seg = 0;
    r->idx = 0;
    r->pcs = true;
    unsigned n = r->erstsz & 0xffff;
    if (n == 0 || n > XHCI_ERST_MAX)
        return;
    for (unsigned k = 0; k < n; k++) {
        uint8_t e[16];
        if (guest_mem_read(x->plat->mem, r->erstba + 16ull * k, e, sizeof(e)) < 0)
            return;
        uint64_t base = ld64(e) & ~0x3full;
        uint32_t size = ld32(e + 8) & 0xffff;
        if (size < 16 || size > 4096 || !guest_mem_ptr(x->plat->mem, base, 16ull * size))
            return;
        r->seg_base[k] = base;
        r->seg_size[k] = size;
    }
    r->nseg = n;
    r->ring_ok = true;
}

void xhci_event(struct xhci *x, unsigned intr, uint64_t param, uint32_t status, uint32_t control,
                bool no_irq)
{
    if (!xhci_running(x))
        return;
    if (intr >= XHCI_INTRS)
        intr = 0;      /* an interrupter that does not exist: the primary takes it */
    struct xhci_intr *r = &x->intr[intr];
    if (!r->ring_ok) {
        host_controller_error(x, "event ring not set up");
        return;
    }
    uint64_t deq = r->erdp & ~0xfull;
    unsigned seg = r->seg, seg2;
    uint32_t idx = r->idx, idx2;
    bool pcs = r->pcs, pcs2;
    ring_next(r, &seg, &idx, &pcs);
    if (ring_addr(r, seg, idx) == deq) {
        x->counters.events_lost++;   /* full: the Event Ring Full event is in place */
        return;
    }
    seg2 = seg;
    idx2 = idx;
    pcs2 = pcs;
    ring_next(r, &seg2, &idx2, &pcs2);
    if (ring_addr(r, seg2, idx2) == deq) {
        /* The last free slot takes an Event Ring Full Error (4.9.4). */
        x->counters.events_lost++;
        param = 0;
        status = (uint32_t)CC_EVENT_RING_FULL << 24;
        control = TRB_TYPE_SET(EV_HOST_CONTROLLER);
        no_irq = false;
    }
    uint8_t t[16];
    st64(t, param);
    st32(t + 8, status);
    st32(t + 12, (control & ~TRB_C) | (r->pcs ? TRB_C : 0));
    if (!xhci_dma_write(x, ring_addr(r, r->seg, r->idx), t, sizeof(t)))
        return;
    r->seg = seg;
    r->idx = idx;
    r->pcs = pcs;
    if (!no_irq) {
        r->want_irq = true;
        try_interrupt(x, intr);
    }
}

/* Software moved the dequeue pointer.  With EHB clear the next interrupt
 * may come: at once if events are left unread, none if it read them all
 * (4.17.2). */
static void erdp_written(struct xhci *x, unsigned i)
{
    struct xhci_intr *r = &x->intr[i];
    if (r->erdp & ERDP_EHB)
        return;
    r->want_irq = r->ring_ok && (r->erdp & ~0xfull) != ring_addr(r, r->seg, r->idx);
    try_interrupt(x, i);
}

/* --- errors and run state ---------------------------------------------- */

static void stop_all_transfers(struct xhci *x)
{
    for (unsigned s = 1; s <= XHCI_MAX_SLOTS; s++)
        if (x->slots[s].enabled)
            for (unsigned dci = 1; dci <= XHCI_DCI_MAX; dci++)
                xhci_ep_cancel(x, s, dci, false);
}

/* The devices' owners learn that the controller started or stopped. */
static void ports_changed(struct xhci *x)
{
    for (unsigned i = 0; i < XHCI_PORTS; i++)
        if (x->ports[i].dev)
            usb_host_changed(x->ports[i].dev);
}

static void halt(struct xhci *x)
{
    if (!xhci_running(x))
        return;
    x->usbcmd &= ~CMD_RS;
    x->usbsts |= STS_HCH;
    x->crr = false;
    x->mf_frozen = (uint32_t)((evloop_now_ns() - x->mf_base) / 125000) & 0x3fff;
    stop_all_transfers(x);
    ports_changed(x);
}

/* A DMA outside guest RAM: what a PCI master abort does (5.4.2, HSE). */
static void host_system_error(struct xhci *x, uint64_t gpa)
{
    log_guest_error("xhci: DMA at %#llx is outside guest RAM: host system error",
                    (unsigned long long)gpa);
    x->counters.host_errors++;
    x->usbsts |= STS_HSE;
    halt(x);
}

static void host_controller_error(struct xhci *x, const char *why)
{
    log_guest_error("xhci: %s: host controller error", why);
    x->counters.host_errors++;
    x->usbsts |= STS_HCE;
    halt(x);
}

bool xhci_dma_read(struct xhci *x, uint64_t gpa, void *buf, size_t len)
{
    if (guest_mem_read(x->plat->mem, gpa, buf, len) == 0)
        return true;
    host_system_error(x, gpa);
    return false;
}

bool xhci_dma_write(struct xhci *x, uint64_t gpa, const void *buf, size_t len)
{
    if (guest_mem_write(x->plat->mem, gpa, buf, len) == 0)
        return true;
    host_system_error(x, gpa);
    return false;
}

static void bh_fired(void *opaque);

void xhci_schedule(struct xhci *x)
{
    /* Not 0 ns: a timer due now would run again in this same round. */
    if (x->bh_timer < 0 && x->plat->loop)
        x->bh_timer = evloop_add_timer(x->plat->loop, 1000, bh_fired, x);
}

/* --- root hub ports (4.19) ---------------------------------------------- */

static unsigned port_pls(const struct xhci_port *p)
{
    return (p->sc & PORT_PLS) >> PORT_PLS_SHIFT;
}

static void set_pls(struct xhci_port *p, unsigned pls)
{
    p->sc = (p->sc & ~PORT_PLS) | (pls << PORT_PLS_SHIFT);
}

static void port_event(struct xhci *x, unsigned port)
{
    xhci_event(x, 0, (uint64_t)port << 24, (uint32_t)CC_SUCCESS << 24,
               TRB_TYPE_SET(EV_PORT_STATUS), false);
}

/* Change bits going from 0 to 1 set PCD and make a Port Status Change
 * Event (4.19.2). */
static void port_change(struct xhci *x, unsigned port, uint32_t bits)
{
    struct xhci_port *p = port_of(x, port);
    uint32_t fresh = bits & ~p->sc;
    p->sc |= bits;
    if (!fresh)
        return;
    x->usbsts |= STS_PCD;
    port_event(x, port);
}

int xhci_slot_reachable(const struct xhci *x, unsigned slot)
{
    const struct xhci_slot *s = &x->slots[slot];
    if (!s->dev || s->port < 1 || s->port > XHCI_PORTS)
        return -1;
    const struct xhci_port *p = &x->ports[s->port - 1];
    if (p->dev != s->dev || !(p->sc & PORT_PED))
        return -1;
    unsigned pls = port_pls(p);
    return pls == PLS_U0 || pls == PLS_U1 || pls == PLS_U2 ? 1 : 0;
}

static void for_slots_on_port(struct xhci *x, unsigned port, void (*fn)(struct xhci *, unsigned, unsigned))
{
    for (unsigned s = 1; s <= XHCI_MAX_SLOTS; s++)
        if (x->slots[s].enabled && x->slots[s].port == port)
            for (unsigned dci = 1; dci <= XHCI_DCI_MAX; dci++)
                fn(x, s, dci);
}

/* The device is reachable again: endpoints waiting on it go on. */
static void port_resumed(struct xhci *x, unsigned port)
{
    for_slots_on_port(x, port, xhci_ep_kick);
}

/* What a port shows with a device attached and nothing done to it since:
 * USB 3 links train to U0 and enable by themselves, USB 2 ports wait
 * disabled for a reset (4.19.1). */
static void port_connect_state(struct xhci_port *p)
{
    p->sc &= ~(PORT_PED | PORT_PR | PORT_PLS | PORT_SPEED);
    if (!p->dev) {
        p->sc &= ~PORT_CCS;
        set_pls(p, PLS_RXDETECT);
        return;
    }
    p->sc |= PORT_CCS | port_speed_id(p->dev->speed) << PORT_SPEED_SHIFT;
    if (p->usb3) {
        p->sc |= PORT_PED;
        set_pls(p, PLS_U0);
    } else {
        set_pls(p, PLS_POLLING);
    }
}

static void port_reset(struct xhci *x, unsigned port, bool warm)
{
    struct xhci_port *p = port_of(x, port);
    if (!p->dev)
        return;
    for_slots_on_port(x, port, xhci_ep_quiesce);
    usb_bus_reset(p->dev);
    p->sc &= ~(PORT_PR | PORT_PLS | PORT_SPEED);
    p->sc |= PORT_PED | port_speed_id(p->dev->speed) << PORT_SPEED_SHIFT;
    set_pls(p, PLS_U0);
    port_change(x, port, PORT_PRC | (warm ? PORT_WRC : 0));
}

static void portsc_write(struct xhci *x, unsigned port, uint32_t v)
{
    struct xhci_port *p = port_of(x, port);
    p->sc &= ~(v & PORT_CHANGE);
    p->sc = (p->sc & ~(PORT_PIC | PORT_WAKE)) | (v & (PORT_PIC | PORT_WAKE));
    if ((v & PORT_PED) && (p->sc & PORT_PED)) {
        /* Software disables the port; PEC is only for the port's own
         * doing (4.19.1.2). */
        p->sc &= ~PORT_PED;
        set_pls(p, p->usb3 ? PLS_DISABLED : PLS_POLLING);
        for_slots_on_port(x, port, xhci_ep_quiesce);
        if (p->dev)
            usb_host_changed(p->dev);
    }
    if ((v & PORT_WPR) && p->usb3) {
        port_reset(x, port, true);
        return;
    }
    if (v & PORT_PR) {
        port_reset(x, port, false);
        return;
    }
    if (!(v & PORT_LWS) || !(p->sc & PORT_PED))
        return;
    unsigned to = (v & PORT_PLS) >> PORT_PLS_SHIFT, from = port_pls(p);
    switch (to) {
    case PLS_U0:
        if (from == PLS_U3 || from == PLS_RESUME) {
            set_pls(p, PLS_U0);
            port_change(x, port, PORT_PLC);
            port_resumed(x, port);
        } else if (from == PLS_U1 || from == PLS_U2) {
            set_pls(p, PLS_U0);
        }
        break;
    case PLS_U1:
    case PLS_U2:
        if (p->usb3 && from == PLS_U0)
            set_pls(p, to);
        break;
    case PLS_U3:
        if (from <= PLS_U2)
            set_pls(p, PLS_U3);
        break;
    case PLS_RESUME:
        if (!p->usb3 && from == PLS_U3)
            set_pls(p, PLS_RESUME);
        break;
    case PLS_RXDETECT:
    case PLS_DISABLED:
        if (p->usb3) {
            p->sc &= ~PORT_PED;
            set_pls(p, to);
            for_slots_on_port(x, port, xhci_ep_quiesce);
            if (p->dev)
                usb_host_changed(p->dev);
        }
        break;
    default:
        log_guest_error("xhci: port %u: link state %u cannot be written", port, to);
        break;
    }
}

/* A device with remote wakeup enabled signals resume from U3 (4.15.2). */
static void host_wakeup(void *opaque, struct usb_device *d, uint8_t ep, bool in)
{
    struct xhci *x = opaque;
    for (unsigned port = 1; port <= XHCI_PORTS; port++) {
        struct xhci_port *p = port_of(x, port);
        if (p->dev != d || !(p->sc & PORT_PED))
            continue;
        if (port_pls(p) == PLS_U3) {
            if (d->remote_wakeup) {
                set_pls(p, p->usb3 ? PLS_U0 : PLS_RESUME);
                port_change(x, port, PORT_PLC);
                if (p->usb3)
                    port_resumed(x, port);
            }
            return;
        }
    }
    unsigned dci = ep == 0 ? 1 : ep * 2u + (in ? 1 : 0);
    if (ep > 15)
        return;
    for (unsigned s = 1; s <= XHCI_MAX_SLOTS; s++)
        if (x->slots[s].enabled && x->slots[s].dev == d)
            xhci_ep_kick(x, s, dci);
}

static bool host_reachable(void *opaque, const struct usb_device *d)
{
    struct xhci *x = opaque;
    if (!xhci_running(x))
        return false;
    for (unsigned port = 1; port <= XHCI_PORTS; port++) {
        const struct xhci_port *p = port_of(x, port);
        if (p->dev == d)
            return (p->sc & PORT_PED) != 0;
    }
    return false;
}

static const struct usb_host_ops host_ops = { .wakeup = host_wakeup, .reachable = host_reachable };

int xhci_free_port(const struct xhci *x, enum usb_speed speed)
{
    bool usb3 = speed == USB_SPEED_SUPER;
    for (unsigned i = 1; i <= XHCI_PORTS; i++)
        if (!x->ports[i - 1].dev && x->ports[i - 1].usb3 == usb3)
            return (int)i;
    return 0;
}

int xhci_attach(struct xhci *x, struct usb_device *d, int port, char *err, size_t errlen)
{
    bool usb3 = d->speed == USB_SPEED_SUPER;
    if (d->host) {
        snprintf(err, errlen, "%s is attached already", d->name);
        return -1;
    }
    if (port == 0) {
        port = xhci_free_port(x, d->speed);
        if (!port) {
            snprintf(err, errlen, "no free USB %d port for %s", usb3 ? 3 : 2, d->name);
            return -1;
        }
    }
    struct xhci_port *p = port < 0 ? NULL : port_of(x, (unsigned)port);
    if (!p) {
        snprintf(err, errlen, "no USB port %d (ports are 1-%d)", port, XHCI_PORTS);
        return -1;
    }
    if (p->dev) {
        snprintf(err, errlen, "USB port %d is taken by %s", port, p->dev->name);
        return -1;
    }
    if (p->usb3 != usb3) {
        snprintf(err, errlen, "USB port %d is a USB %d port, %s needs USB %d", port,
                 p->usb3 ? 3 : 2, d->name, usb3 ? 3 : 2);
        return -1;
    }
    usb_bus_reset(d);
    usb_attach_host(d, &host_ops, x);
    p->dev = d;
    port_connect_state(p);
    port_change(x, (unsigned)port, PORT_CSC);
    return port;
}

void xhci_detach(struct xhci *x, struct usb_device *d)
{
    for (unsigned port = 1; port <= XHCI_PORTS; port++) {
        struct xhci_port *p = port_of(x, port);
        if (p->dev != d)
            continue;
        for_slots_on_port(x, port, xhci_ep_quiesce);
        for (unsigned s = 1; s <= XHCI_MAX_SLOTS; s++)
            if (x->slots[s].dev == d)
                x->slots[s].dev = NULL;
        usb_detach_host(d);
        p->dev = NULL;
        port_connect_state(p);
        port_change(x, port, PORT_CSC);
    }
}

/* --- contexts ---------------------------------------------------------- */

static bool ctx_read(struct xhci *x, uint64_t addr, uint32_t c[8])
{
    uint8_t b[CTX_SIZE];
    if (!xhci_dma_read(x, addr, b, sizeof(b)))
        return false;
    for (unsigned i = 0; i < 8; i++)
        c[i] = ld32(b + 4 * i);
    return true;
}

static bool ctx_write(struct xhci *x, uint64_t addr, const uint32_t c[8])
{
    uint8_t b[CTX_SIZE];
    for (unsigned i = 0; i < 8; i++)
        st32(b + 4 * i, c[i]);
    return xhci_dma_write(x, addr, b, sizeof(b));
}

void xhci_ep_update_ctx(struct xhci *x, unsigned slot, unsigned dci)
{
    struct xhci_slot *s = &x->slots[slot];
    struct xhci_ep *ep = &s->ep[dci];
    uint32_t c[8];
    uint64_t addr = s->ctx + (uint64_t)CTX_SIZE * dci;
    if (!ctx_read(x, addr, c))
        return;
    c[0] = (c[0] & ~7u) | ep->state;
    uint64_t deq = (ep->deq & ~0xfull) | (ep->dcs ? 1 : 0);
    c[2] = (uint32_t)deq;
    c[3] = (uint32_t)(deq >> 32);
    ctx_write(x, addr, c);
}

static void slot_update_ctx(struct xhci *x, unsigned slot, unsigned addr, bool one_entry)
{
    struct xhci_slot *s = &x->slots[slot];
    uint32_t c[8];
    if (!ctx_read(x, s->ctx, c))
        return;
    c[3] = (c[3] & ~0xf80000ffu) | (uint32_t)s->state << 27 | (addr & 0xff);
    if (one_entry)
        c[0] = (c[0] & ~(0x1fu << 27)) | 1u << 27;
    ctx_write(x, s->ctx, c);
}

/* Endpoint type against DCI: IN endpoints have odd DCIs, OUT even; the
 * only control endpoint is the default one (DCI 1). */
static enum xhci_cc check_ep_ctx(unsigned dci, const uint32_t c[8])
{
    unsigned type = (c[1] >> 3) & 7, mps = c[1] >> 16, maxpstreams = (c[0] >> 10) & 0x1f;
    if (type == EPT_INVALID || mps == 0 || maxpstreams != 0)
        return CC_PARAMETER;       /* streams: MaxPSASize is 0 */
    if (type == EPT_CONTROL && dci != 1)
        return CC_RESOURCE;        /* not implemented: no resources for it */
    if (dci == 1 ? type != EPT_CONTROL : (type >= EPT_ISOCH_IN) != (dci & 1))
        return CC_PARAMETER;
    return CC_SUCCESS;
}

static void ep_load(struct xhci_ep *ep, const uint32_t c[8])
{
    ep->state = EP_RUNNING;
    ep->type = (uint8_t)((c[1] >> 3) & 7);
    ep->mps = (uint16_t)(c[1] >> 16);
    ep->deq = ((uint64_t)c[3] << 32 | c[2]) & ~0xfull;
    ep->dcs = c[2] & 1;
}

static void ep_disable(struct xhci *x, unsigned slot, unsigned dci)
{
    xhci_ep_cancel(x, slot, dci, false);
    x->slots[slot].ep[dci].state = EP_DISABLED;
}

/* --- commands (4.6) ---------------------------------------------------- */

struct cmd_result {
    enum xhci_cc cc;
    unsigned slot;
};

static enum xhci_cc slot_check(const struct xhci *x, unsigned slot)
{
    unsigned max = MIN(x->config & 0xff, (unsigned)XHCI_MAX_SLOTS);
    if (slot == 0 || slot > max || !x->slots[slot].enabled)
        return CC_SLOT_NOT_ENABLED;
    return CC_SUCCESS;
}

static enum xhci_cc cmd_enable_slot(struct xhci *x, unsigned *slot)
{
    unsigned max = MIN(x->config & 0xff, (unsigned)XHCI_MAX_SLOTS);
    for (unsigned s = 1; s <= max; s++) {
        if (!x->slots[s].enabled) {
            memset(&x->slots[s], 0, sizeof(x->slots[s]));
            x->slots[s].enabled = true;
            x->slots[s].state = SLOT_ENABLED;
            *slot = s;
            return CC_SUCCESS;
        }
    }
    return CC_NO_SLOTS;
}

static enum xhci_cc cmd_disable_slot(struct xhci *x, unsigned slot)
{
    for (unsigned dci = 1; dci <= XHCI_DCI_MAX; dci++)
        ep_disable(x, slot, dci);
    memset(&x->slots[slot], 0, sizeof(x->slots[slot]));
    return CC_SUCCESS;
}

static enum xhci_cc cmd_address_device(struct xhci *x, unsigned slot, const struct xhci_trb *t)
{
    struct xhci_slot *s = &x->slots[slot];
    bool bsr = t->control & TRB_BSR;
    if (s->state >= SLOT_ADDRESSED || (s->state == SLOT_DEFAULT && bsr))
        return CC_CONTEXT_STATE;
    uint64_t in = t->param & ~0xfull;
    uint32_t icc[8], sc[8], ep0[8];
    if (!ctx_read(x, in, icc) || !ctx_read(x, in + CTX_SIZE, sc) || !ctx_read(x, in + 2 * CTX_SIZE, ep0))
        return CC_NONE;
    if ((icc[1] & 3) != 3)
        return CC_PARAMETER;      /* A0 and A1 must be set (4.6.5) */
    unsigned port = (sc[1] >> 16) & 0xff;
    struct xhci_port *p = port_of(x, port);
    if (!p)
        return CC_PARAMETER;
    if ((sc[0] & 0xfffff) != 0 || !p->dev || !(p->sc & PORT_PED))
        return CC_USB_TRANSACTION;   /* nobody answers there (no hubs) */
    if (check_ep_ctx(1, ep0) != CC_SUCCESS)
        return CC_PARAMETER;
    uint8_t dcbaa_entry[8];
    if (!xhci_dma_read(x, (x->dcbaap & ~0x3full) + 8ull * slot, dcbaa_entry, 8))
        return CC_NONE;
    uint64_t out = ld64(dcbaa_entry) & ~0x3full;
    xhci_ep_cancel(x, slot, 1, false);
    if (!bsr) {
        uint8_t none;
        struct usb_xfer req = { .setup = { 0x00, USB_REQ_SET_ADDRESS, (uint8_t)slot, 0, 0, 0, 0, 0 },
                                .buf = &none };
        enum usb_status st = usb_submit(p->dev, &req);
        if (st == USB_ASYNC)
            usb_cancel(&req);
        if (st != USB_OK)
            return CC_USB_TRANSACTION;
    }
    s->port = (uint8_t)port;
    s->dev = p->dev;
    s->ctx = out;
    s->state = bsr ? SLOT_DEFAULT : SLOT_ADDRESSED;
    sc[3] = (uint32_t)s->state << 27 | (bsr ? 0 : slot);
    ep0[0] = (ep0[0] & ~7u) | EP_RUNNING;
    if (!ctx_write(x, out, sc) || !ctx_write(x, out + CTX_SIZE, ep0))
        return CC_NONE;
    ep_load(&s->ep[1], ep0);
    return CC_SUCCESS;
}

static enum xhci_cc cmd_configure_ep(struct xhci *x, unsigned slot, const struct xhci_trb *t)
{
    struct xhci_slot *s = &x->slots[slot];
    if (s->state != SLOT_ADDRESSED && s->state != SLOT_CONFIGURED)
        return CC_CONTEXT_STATE;
    if (t->control & TRB_DC) {
        for (unsigned dci = 2; dci <= XHCI_DCI_MAX; dci++) {
            if (s->ep[dci].state != EP_DISABLED) {
                ep_disable(x, slot, dci);
                xhci_ep_update_ctx(x, slot, dci);
            }
        }
        s->state = SLOT_ADDRESSED;
        slot_update_ctx(x, slot, slot, false);
        return xhci_running(x) ? CC_SUCCESS : CC_NONE;
    }
    uint64_t in = t->param & ~0xfull;
    uint32_t icc[8];
    if (!ctx_read(x, in, icc))
        return CC_NONE;
    uint32_t drop = icc[0] & ~3u, add = icc[1] & ~3u;
    uint32_t ctx[XHCI_DCI_MAX + 1][8];
    for (unsigned dci = 2; dci <= XHCI_DCI_MAX; dci++) {
        if (!(add & (1u << dci)))
            continue;
        if (!ctx_read(x, in + CTX_SIZE * (1ull + dci), ctx[dci]))
            return CC_NONE;
        enum xhci_cc cc = check_ep_ctx(dci, ctx[dci]);
        if (cc != CC_SUCCESS)
            return cc;
    }
    if (icc[1] & 1) {
        /* The slot context's software fields; state and address stay. */
        uint32_t in_sc[8], out_sc[8];
        if (!ctx_read(x, in + CTX_SIZE, in_sc) || !ctx_read(x, s->ctx, out_sc))
            return CC_NONE;
        out_sc[0] = in_sc[0];
        out_sc[1] = (in_sc[1] & ~0x00ff0000u) | (out_sc[1] & 0x00ff0000u);
        out_sc[2] = in_sc[2];
        if (!ctx_write(x, s->ctx, out_sc))
            return CC_NONE;
    }
    bool any = false;
    for (unsigned dci = 2; dci <= XHCI_DCI_MAX; dci++) {
        uint32_t bit = 1u << dci;
        if (drop & bit || add & bit)
            ep_disable(x, slot, dci);
        if (add & bit) {
            ep_load(&s->ep[dci], ctx[dci]);
            ctx[dci][0] = (ctx[dci][0] & ~7u) | EP_RUNNING;
            if (!ctx_write(x, s->ctx + (uint64_t)CTX_SIZE * dci, ctx[dci]))
                return CC_NONE;
        } else if (drop & bit) {
            xhci_ep_update_ctx(x, slot, dci);
        }
        any |= s->ep[dci].state != EP_DISABLED;
    }
    s->state = any ? SLOT_CONFIGURED : SLOT_ADDRESSED;
    slot_update_ctx(x, slot, slot, false);
    return xhci_running(x) ? CC_SUCCESS : CC_NONE;
}

static enum xhci_cc cmd_evaluate_ctx(struct xhci *x, unsigned slot, const struct xhci_trb *t)
{
    struct xhci_slot *s = &x->slots[slot];
    if (s->state == SLOT_ENABLED)
        return CC_CONTEXT_STATE;
    uint64_t in = t->param & ~0xfull;
    uint32_t icc[8], c[8], o[8];
    if (!ctx_read(x, in, icc))
        return CC_NONE;
    if (icc[1] & 1) {     /* Max Exit Latency and Interrupter Target (4.6.7) */
        if (!ctx_read(x, in + CTX_SIZE, c) || !ctx_read(x, s->ctx, o))
            return CC_NONE;
        o[1] = (o[1] & ~0xffffu) | (c[1] & 0xffff);
        o[2] = (o[2] & ~(0x3ffu << 22)) | (c[2] & (0x3ffu << 22));
        if (!ctx_write(x, s->ctx, o))
            return CC_NONE;
    }
    if (icc[1] & 2) {     /* the default endpoint's Max Packet Size */
        if (!ctx_read(x, in + 2 * CTX_SIZE, c) || !ctx_read(x, s->ctx + CTX_SIZE, o))
            return CC_NONE;
        if ((c[1] >> 16) == 0)
            return CC_PARAMETER;
        o[1] = (o[1] & 0xffffu) | (c[1] & 0xffff0000u);
        s->ep[1].mps = (uint16_t)(c[1] >> 16);
        if (!ctx_write(x, s->ctx + CTX_SIZE, o))
            return CC_NONE;
    }
    return CC_SUCCESS;
}

static enum xhci_cc ep_check(const struct xhci *x, unsigned slot, unsigned dci)
{
    if (dci == 0)
        return CC_TRB;
    if (x->slots[slot].ep[dci].state == EP_DISABLED)
        return CC_EP_NOT_ENABLED;
    return CC_SUCCESS;
}

static enum xhci_cc cmd_endpoint(struct xhci *x, unsigned type, unsigned slot, const struct xhci_trb *t)
{
    unsigned dci = TRB_EP(t->control);
    enum xhci_cc cc = ep_check(x, slot, dci);
    if (cc != CC_SUCCESS)
        return cc;
    struct xhci_ep *ep = &x->slots[slot].ep[dci];
    switch (type) {
    case CMD_RESET_EP:
        if (ep->state != EP_HALTED)
            return CC_CONTEXT_STATE;
        break;
    case CMD_STOP_EP:
        if (ep->state != EP_RUNNING)
            return CC_CONTEXT_STATE;
        xhci_ep_cancel(x, slot, dci, true);
        break;
    case CMD_SET_TR_DEQ:
        if (ep->state != EP_STOPPED && ep->state != EP_ERROR)
            return CC_CONTEXT_STATE;
        ep->deq = t->param & ~0xfull;
        ep->dcs = t->param & 1;
        break;
    }
    ep->state = EP_STOPPED;
    xhci_ep_update_ctx(x, slot, dci);
    return xhci_running(x) ? CC_SUCCESS : CC_NONE;
}

static enum xhci_cc cmd_reset_device(struct xhci *x, unsigned slot)
{
    struct xhci_slot *s = &x->slots[slot];
    if (s->state != SLOT_ADDRESSED && s->state != SLOT_CONFIGURED)
        return CC_CONTEXT_STATE;
    for (unsigned dci = 2; dci <= XHCI_DCI_MAX; dci++) {
        if (s->ep[dci].state != EP_DISABLED) {
            ep_disable(x, slot, dci);
            xhci_ep_update_ctx(x, slot, dci);
        }
    }
    s->state = SLOT_DEFAULT;
    slot_update_ctx(x, slot, 0, true);
    return xhci_running(x) ? CC_SUCCESS : CC_NONE;
}

static struct cmd_result run_command(struct xhci *x, const struct xhci_trb *t)
{
    unsigned type = TRB_TYPE(t->control), slot = TRB_SLOT(t->control);
    struct cmd_result r = { CC_SUCCESS, 0 };
    if (type == CMD_ENABLE_SLOT) {
        r.cc = cmd_enable_slot(x, &r.slot);
        return r;
    }
    if (type == CMD_NOOP)
        return r;
    if (type < CMD_DISABLE_SLOT || type > CMD_RESET_DEVICE) {
        log_guest_error("xhci: command TRB type %u not supported", type);
        r.cc = CC_TRB;
        return r;
    }
    r.slot = slot;
    r.cc = slot_check(x, slot);
    if (r.cc != CC_SUCCESS)
        return r;
    switch (type) {
    case CMD_DISABLE_SLOT: r.cc = cmd_disable_slot(x, slot); break;
    case CMD_ADDRESS_DEVICE: r.cc = cmd_address_device(x, slot, t); break;
    case CMD_CONFIGURE_EP: r.cc = cmd_configure_ep(x, slot, t); break;
    case CMD_EVALUATE_CTX: r.cc = cmd_evaluate_ctx(x, slot, t); break;
    case CMD_RESET_EP:
    case CMD_STOP_EP:
    case CMD_SET_TR_DEQ: r.cc = cmd_endpoint(x, type, slot, t); break;
    case CMD_RESET_DEVICE: r.cc = cmd_reset_device(x, slot); break;
    }
    return r;
}

/* Runs commands until the ring is empty (4.6.1); a ring that keeps going
 * yields to the event loop every XHCI_PASS_TRBS TRBs. */
static void run_command_ring(struct xhci *x)
{
    unsigned links = 0;
    for (unsigned walked = 0; x->crr && xhci_running(x); walked++) {
        if (walked == XHCI_PASS_TRBS) {
            x->cmd_resched = true;
            xhci_schedule(x);
            return;
        }
        uint8_t b[16];
        if (!xhci_dma_read(x, x->crcr, b, sizeof(b)))
            return;
        struct xhci_trb t = { ld64(b), ld32(b + 8), ld32(b + 12) };
        if (!(t.control & TRB_C) != !x->rcs)
            return;
        if (TRB_TYPE(t.control) == TRB_LINK) {
            if (++links > XHCI_MAX_LINKS) {
                host_controller_error(x, "command ring of Link TRBs only");
                return;
            }
            if (t.control & TRB_TC)
                x->rcs = !x->rcs;
            x->crcr = t.param & ~0x3full;
            continue;
        }
        links = 0;
        uint64_t addr = x->crcr;
        x->crcr += 16;
        struct cmd_result r = run_command(x, &t);
        if (r.cc != CC_NONE)
            xhci_event(x, 0, addr, (uint32_t)r.cc << 24,
                       TRB_TYPE_SET(EV_COMMAND) | (uint32_t)r.slot << 24, false);
    }
}

static void bh_fired(void *opaque)
{
    struct xhci *x = opaque;
    x->bh_timer = -1;
    if (x->cmd_resched) {
        x->cmd_resched = false;
        run_command_ring(x);
    }
    for (unsigned s = 1; s <= XHCI_MAX_SLOTS; s++) {
        for (unsigned dci = 1; dci <= XHCI_DCI_MAX && x->slots[s].enabled; dci++) {
            if (x->slots[s].ep[dci].resched) {
                x->slots[s].ep[dci].resched = false;
                xhci_ep_kick(x, s, dci);
            }
        }
    }
}

/* --- reset and run ------------------------------------------------------ */

static void reset_interrupter(struct xhci *x, unsigned i)
{
    struct xhci_intr *r = &x->intr[i];
    if (r->mod_timer >= 0 && x->plat->loop)
        evloop_del_timer(x->plat->loop, r->mod_timer);
    memset(r, 0, sizeof(*r));
    r->owner = x;
    r->index = i;
    r->imod = IMOD_DEFAULT;
    r->mod_timer = -1;
}

/* HCRST (4.22.1): everything but the attached devices. */
static void hc_reset(struct xhci *x)
{
    stop_all_transfers(x);
    if (x->bh_timer >= 0 && x->plat->loop)
        evloop_del_timer(x->plat->loop, x->bh_timer);
    x->bh_timer = -1;
    x->cmd_resched = false;
    x->usbcmd = 0;
    x->usbsts = STS_HCH;
    x->dnctrl = 0;
    x->config = 0;
    x->crcr = 0;
    x->rcs = x->crr = false;
    x->dcbaap = 0;
    x->mf_frozen = 0;
    for (unsigned i = 0; i < XHCI_INTRS; i++)
        reset_interrupter(x, i);
    memset(x->slots, 0, sizeof(x->slots));
    for (unsigned i = 0; i < XHCI_PORTS; i++) {
        struct xhci_port *p = &x->ports[i];
        p->sc = 0;
        p->pmsc = 0;
        if (p->dev)
            usb_bus_reset(p->dev);
        port_connect_state(p);
        if (p->dev)
            p->sc |= PORT_CSC;
    }
    update_intx(x);
}

static void run(struct xhci *x)
{
    if (xhci_running(x))
        return;
    if (x->usbsts & STS_HCE) {
        log_guest_error("xhci: Run/Stop set after a host controller error without a reset");
        return;
    }
    x->usbsts &= ~STS_HCH;
    x->mf_base = evloop_now_ns() - (uint64_t)x->mf_frozen * 125000;
    /* Changes that came while halted are reported now. */
    for (unsigned port = 1; port <= XHCI_PORTS; port++)
        if (x->ports[port - 1].sc & PORT_CHANGE) {
            x->usbsts |= STS_PCD;
            port_event(x, port);
        }
    ports_changed(x);
}

/* --- register access ---------------------------------------------------- */

static uint32_t cap_read(unsigned off)
{
    switch (off) {
    case 0x00: return CAP_LENGTH | (uint32_t)HCIVERSION << 16;
    case 0x04: return XHCI_MAX_SLOTS | XHCI_INTRS << 8 | (uint32_t)XHCI_PORTS << 24;
    case 0x08: return 1u | XHCI_ERST_MAX_LOG2 << 4;   /* IST 1 frame, ERST Max */
    case 0x0c: return 0;
    case 0x10: return HCCP1_AC64 | HCCP1_NSS | (XECP_BASE / 4) << 16;
    case 0x14: return DB_BASE;
    case 0x18: return RT_BASE;
    default: return 0;
    }
}

/* Supported Protocol capabilities (7.2): USB 2.0 on ports 1-4, USB 3.0 on
 * 5-8; default speed IDs, slot type 0. */
static uint32_t xecp_read(unsigned off)
{
    unsigned cap = off / 16, dw = (off % 16) / 4;
    bool usb3 = cap == 1;
    switch (dw) {
    case 0: return 2u | (usb3 ? 0u : 4u) << 8 | (usb3 ? 0x03u : 0x02u) << 24;
    case 1: return 0x20425355;       /* "USB " */
    case 2: return (usb3 ? XHCI_USB2_PORTS + 1u : 1u) |
                   (usb3 ? (unsigned)XHCI_USB3_PORTS : (unsigned)XHCI_USB2_PORTS) << 8;
    default: return 0;
    }
}

static uint32_t op_read(struct xhci *x, unsigned off)
{
    if (off >= 0x400) {
        unsigned port = (off - 0x400) / 16 + 1, reg = (off - 0x400) % 16;
        struct xhci_port *p = port_of(x, port);
        if (!p)
            return 0;
        if (reg == 0)
            return p->sc | PORT_PP;
        return reg == 4 ? p->pmsc : 0;
    }
    switch (off) {
    case OP_USBCMD: return x->usbcmd;
    case OP_USBSTS: return x->usbsts;
    case OP_PAGESIZE: return 1;           /* 4 KiB */
    case OP_DNCTRL: return x->dnctrl;
    case OP_CRCR: return x->crr ? CRCR_CRR : 0;
    case OP_CRCR + 4: return 0;
    case OP_DCBAAP: return (uint32_t)x->dcbaap;
    case OP_DCBAAP + 4: return (uint32_t)(x->dcbaap >> 32);
    case OP_CONFIG: return x->config;
    default: return 0;
    }
}

static uint32_t rt_read(struct xhci *x, unsigned off)
{
    if (off == RT_MFINDEX) {
        if (!xhci_running(x))
            return x->mf_frozen;
        return (uint32_t)((evloop_now_ns() - x->mf_base) / 125000) & 0x3fff;
    }
    if (off < RT_IR0)
        return 0;
    unsigned i = (off - RT_IR0) / 32, reg = (off - RT_IR0) % 32;
    if (i >= XHCI_INTRS)
        return 0;
    const struct xhci_intr *r = &x->intr[i];
    switch (reg) {
    case IR_IMAN: return r->iman;
    case IR_IMOD: return r->imod;
    case IR_ERSTSZ: return r->erstsz;
    case IR_ERSTBA: return (uint32_t)r->erstba;
    case IR_ERSTBA + 4: return (uint32_t)(r->erstba >> 32);
    case IR_ERDP: return (uint32_t)r->erdp;
    case IR_ERDP + 4: return (uint32_t)(r->erdp >> 32);
    default: return 0;
    }
}

static uint32_t reg_read(struct xhci *x, unsigned off)
{
    if (off < CAP_LENGTH)
        return cap_read(off);
    if (off < PORT_BASE + 16 * XHCI_PORTS)
        return op_read(x, off - OP_BASE);
    if (off >= XECP_BASE && off < XECP_BASE + 32)
        return xecp_read(off - XECP_BASE);
    if (off >= RT_BASE && off < RT_BASE + RT_IR0 + 32 * XHCI_INTRS)
        return rt_read(x, off - RT_BASE);
    return 0;    /* doorbells read as 0 */
}

static void usbcmd_write(struct xhci *x, uint32_t v)
{
    if (v & CMD_HCRST) {
        hc_reset(x);
        return;
    }
    uint32_t old = x->usbcmd;
    x->usbcmd = v & CMD_KEPT;
    if ((v & CMD_RS) && !(old & CMD_RS)) {
        run(x);
        if (!xhci_running(x))
            x->usbcmd &= ~CMD_RS;
    } else if (!(v & CMD_RS) && (old & CMD_RS)) {
        halt(x);
    }
    /* CSS/CRS: there is no state to lose, so save and restore finish at once. */
    if ((v & CMD_INTE) != (old & CMD_INTE))
        for (unsigned i = 0; i < XHCI_INTRS; i++)
            deliver(x, i);
}

static void crcr_write(struct xhci *x, unsigned half, uint32_t v)
{
    if (x->crr) {
        /* Only Command Stop and Abort while it runs (5.4.5). */
        if (half == 0 && (v & (CRCR_CS | CRCR_CA))) {
            x->crr = false;
            xhci_event(x, 0, x->crcr, (uint32_t)CC_CMD_RING_STOPPED << 24,
                       TRB_TYPE_SET(EV_COMMAND), false);
        }
        return;
    }
    if (half == 0) {
        x->crcr = (x->crcr & ~0xffffffffull) | (v & ~0x3fu);
        x->rcs = v & CRCR_RCS;
    } else {
        x->crcr = (x->crcr & 0xffffffffull) | (uint64_t)v << 32;
    }
}

static void op_write(struct xhci *x, unsigned off, uint32_t v)
{
    if (off >= 0x400) {
        unsigned port = (off - 0x400) / 16 + 1, reg = (off - 0x400) % 16;
        if (!port_of(x, port))
            return;
        if (reg == 0)
            portsc_write(x, port, v);
        else if (reg == 4)
            x->ports[port - 1].pmsc = v;
        return;
    }
    switch (off) {
    case OP_USBCMD: usbcmd_write(x, v); break;
    case OP_USBSTS: x->usbsts &= ~(v & STS_W1C); break;
    case OP_DNCTRL: x->dnctrl = v & 0xffff; break;
    case OP_CRCR: crcr_write(x, 0, v); break;
    case OP_CRCR + 4: crcr_write(x, 1, v); break;
    case OP_DCBAAP: x->dcbaap = (x->dcbaap & ~0xffffffffull) | (v & ~0x3fu); break;
    case OP_DCBAAP + 4: x->dcbaap = (x->dcbaap & 0xffffffffull) | (uint64_t)v << 32; break;
    case OP_CONFIG: x->config = v & 0x3ff; break;
    default: break;
    }
}

static void rt_write(struct xhci *x, unsigned off, uint32_t v)
{
    if (off < RT_IR0)
        return;
    unsigned i = (off - RT_IR0) / 32, reg = (off - RT_IR0) % 32;
    if (i >= XHCI_INTRS)
        return;
    struct xhci_intr *r = &x->intr[i];
    switch (reg) {
    case IR_IMAN:
        r->iman = (r->iman & ~(v & IMAN_IP) & ~IMAN_IE) | (v & IMAN_IE);
        deliver(x, i);
        break;
    case IR_IMOD: r->imod = v; break;
    case IR_ERSTSZ: r->erstsz = v & 0xffff; break;
    case IR_ERSTBA:
        r->erstba = (r->erstba & ~0xffffffffull) | (v & ~0x3fu);
        event_ring_init(x, i);
        break;
    case IR_ERSTBA + 4:
        r->erstba = (r->erstba & 0xffffffffull) | (uint64_t)v << 32;
        event_ring_init(x, i);
        break;
    case IR_ERDP: {
        bool clear = (v & ERDP_EHB) && (r->erdp & ERDP_EHB);
        r->erdp = (r->erdp & ~0xffffffffull) | (v & ~0xfu) | (v & 7u) | (r->erdp & ERDP_EHB);
        if (clear)
            r->erdp &= ~(uint64_t)ERDP_EHB;
        erdp_written(x, i);
        break;
    }
    case IR_ERDP + 4:
        r->erdp = (r->erdp & 0xffffffffull) | (uint64_t)v << 32;
        erdp_written(x, i);
        break;
    default: break;
    }
}

/* Doorbells (5.6): 0 the command ring, n the endpoints of slot n. */
static void doorbell(struct xhci *x, unsigned n, uint32_t v)
{
    if (!xhci_running(x))
        return;
    unsigned target = v & 0xff;
    if (n == 0) {
        if (target != 0)
            return;
        x->crr = true;
        run_command_ring(x);
        return;
    }
    if (slot_check(x, n) != CC_SUCCESS || target == 0 || target > XHCI_DCI_MAX) {
        log_guest_error("xhci: doorbell %u target %u: no such slot or endpoint", n, target);
        return;
    }
    struct xhci_ep *ep = &x->slots[n].ep[target];
    if (ep->state == EP_STOPPED) {
        ep->state = EP_RUNNING;
        xhci_ep_update_ctx(x, n, target);
    }
    if (ep->state == EP_RUNNING)
        xhci_ep_kick(x, n, target);
}

static void reg_write(struct xhci *x, unsigned off, uint32_t v)
{
    if (off < CAP_LENGTH)
        return;
    if (off < PORT_BASE + 16 * XHCI_PORTS)
        op_write(x, off - OP_BASE, v);
    else if (off >= RT_BASE && off < RT_BASE + RT_IR0 + 32 * XHCI_INTRS)
        rt_write(x, off - RT_BASE, v);
    else if (off >= DB_BASE && off < DB_BASE + 4 * (XHCI_MAX_SLOTS + 1))
        doorbell(x, (off - DB_BASE) / 4, v);
}

static uint64_t mmio_read(void *opaque, uint64_t off, unsigned size)
{
    struct xhci *x = opaque;
    if (off >= XHCI_BAR_SIZE || size == 0 || size > 8)
        return 0;
    unsigned a = (unsigned)off & ~3u;
    uint64_t v = reg_read(x, a);
    if ((off & 3) + size > 4)
        v |= (uint64_t)reg_read(x, a + 4) << 32;
    v >>= (off & 3) * 8;
    return size == 8 ? v : v & ((1ull << (size * 8)) - 1);
}

static void mmio_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct xhci *x = opaque;
    if (off >= XHCI_BAR_SIZE)
        return;
    if (size == 4 && !(off & 3)) {
        reg_write(x, (unsigned)off, (uint32_t)val);
    } else if (size == 8 && !(off & 7)) {
        reg_write(x, (unsigned)off, (uint32_t)val);      /* low half first (5.1) */
        reg_write(x, (unsigned)off + 4, (uint32_t)(val >> 32));
    } else {
        log_guest_error("xhci: %u-byte write at %#llx ignored", size, (unsigned long long)off);
    }
}

static const struct io_ops mmio_ops = { mmio_read, mmio_write };

/* --- PCI ------------------------------------------------------------------ */

static void pci_reset_hook(struct pci_device *d)
{
    hc_reset(d->opaque);
}

static void config_written(struct pci_device *d, unsigned off, unsigned size, uint32_t val)
{
    (void)off;
    (void)size;
    (void)val;
    struct xhci *x = d->opaque;
    update_intx(x);     /* MSI-X enable decides between MSI-X and INTx */
}

struct pci_device *xhci_pci(struct xhci *x)
{
    return &x->pci;
}

void xhci_counters(const struct xhci *x, struct xhci_counters *out)
{
    *out = x->counters;
}

struct xhci *xhci_create(struct platform *p, struct pci_bus *bus, int devfn, char *err, size_t errlen)
{
    struct xhci *x = calloc(1, sizeof(*x));
    if (!x) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    x->plat = p;
    x->bh_timer = -1;
    for (unsigned i = 0; i < XHCI_INTRS; i++)
        x->intr[i].mod_timer = -1;
    for (unsigned i = 0; i < XHCI_PORTS; i++)
        x->ports[i].usb3 = i >= XHCI_USB2_PORTS;
    struct pci_device *d = &x->pci;
    pci_device_init(d, XHCI_VENDOR, XHCI_DEVICE, XHCI_CLASS, XHCI_REVISION, "xhci");
    pci_set_irq_pin(d, 1);
    d->opaque = x;
    d->reset = pci_reset_hook;
    d->config_write = config_written;
    d->config[PCI_SBRN] = 0x30;          /* USB 3.0 */
    d->config[PCI_FLADJ] = 0x20;         /* 60000 HS bit times a frame */
    d->wmask[PCI_FLADJ] = 0x3f;
    pci_add_bar(d, 0, PCI_BAR_MEM64, false, XHCI_BAR_SIZE, &mmio_ops, x);
    if (pci_msix_init(d, XHCI_INTRS, XHCI_MSIX_BAR) < 0) {
        snprintf(err, errlen, "xhci: no room for MSI-X");
        free(x);
        return NULL;
    }
    hc_reset(x);
    if (pci_bus_add(bus, d, devfn) < 0) {
        snprintf(err, errlen, "no free PCI slot for the xHCI controller");
        pci_bus_remove(d);
        free(x);
        return NULL;
    }
    return x;
}

void xhci_destroy(struct xhci *x)
{
    if (!x)
        return;
    stop_all_transfers(x);
    for (unsigned i = 0; i < XHCI_PORTS; i++) {
        if (x->ports[i].dev)
            usb_detach_host(x->ports[i].dev);
        x->ports[i].dev = NULL;
    }
    for (unsigned i = 0; i < XHCI_INTRS; i++)
        reset_interrupter(x, i);
    if (x->bh_timer >= 0 && x->plat->loop)
        evloop_del_timer(x->plat->loop, x->bh_timer);
    pci_bus_remove(&x->pci);
    free(x);
}
