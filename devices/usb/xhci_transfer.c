/* xHCI transfer rings (4.9.2, 4.10, 4.11): each TD is read whole from the
 * ring, handed to the USB device as one transfer through a bounce buffer,
 * and completed with the Transfer Events its TRBs ask for.  An endpoint
 * has at most one TD with the device at a time; a TD the device NAKed
 * stays at the head of the ring until the device has something.
 *
 * Isochronous endpoints (4.11.2.5, 4.14.2) differ: each TD (an Isoch TRB
 * and what is chained to it) is one service interval's data, and up to
 * XHCI_ISO_INFLIGHT of them are with the device at once, so that a device
 * with a steady rate (sound, video) always has the next one; they finish
 * in ring order.  An error ends its TD with an event on the TD's last TRB
 * and the ring goes on: isochronous endpoints never halt.  TDs are
 * serviced as soon as they are queued, whatever their Frame ID says. */
#include <stdlib.h>
#include <string.h>

#include "devices/usb/xhci_int.h"
#include "devices/util.h"

struct td_trb {
    uint64_t addr;
    struct xhci_trb t;
    bool dcs;                 /* the cycle state it was read with */
    uint8_t stage;            /* control: 0 setup, 1 data, 2 status; others 1 */
};

struct xhci_td {
    struct usb_xfer xfer;
    struct xhci *x;
    unsigned slot, dci;
    bool waiting;             /* NAKed, or its device was away: try again */
    bool done;                /* isochronous: finished, waits for those before it */
    struct xhci_td *next;     /* isochronous: the next in flight */
    bool no_packets;          /* No Op and Event Data TRBs only: the bus is not used */
    struct td_trb *trbs;
    unsigned n, cap;
    uint64_t next_deq;        /* the ring after the TD */
    bool next_dcs;
};

enum td_read_result { TD_OK, TD_EMPTY, TD_BAD, TD_ABORT };

static void td_free(struct xhci_td *td)
{
    free(td->xfer.buf);
    free(td->trbs);
    free(td);
}

static unsigned trb_type(const struct td_trb *tr)
{
    return TRB_TYPE(tr->t.control);
}

static bool is_data(const struct td_trb *tr)
{
    return trb_type(tr) == TRB_NORMAL || trb_type(tr) == TRB_DATA || trb_type(tr) == TRB_ISOCH;
}

static bool is_iso(const struct xhci_ep *ep)
{
    return ep->type == EPT_ISOCH_IN || ep->type == EPT_ISOCH_OUT;
}

static bool read_trb(struct xhci *x, uint64_t addr, struct xhci_trb *t)
{
    uint8_t b[16];
    if (!xhci_dma_read(x, addr, b, sizeof(b)))
        return false;
    t->param = ld64(b);
    t->status = ld32(b + 8);
    t->control = ld32(b + 12);
    return true;
}

static bool td_append(struct xhci_td *td, uint64_t addr, const struct xhci_trb *t, bool dcs)
{
    if (td->n == td->cap) {
        unsigned cap = td->cap ? td->cap * 2 : 8;
        struct td_trb *n = realloc(td->trbs, cap * sizeof(*n));
        if (!n)
            return false;
        td->trbs = n;
        td->cap = cap;
    }
    td->trbs[td->n++] = (struct td_trb){ addr, *t, dcs, 1 };
    return true;
}

/* Reads the TD at deq (cycle state dcs): TRBs up to one without the chain
 * bit (for a control transfer: up to the Status Stage and what is chained
 * to it), Link TRBs followed.  A TD whose end is not on the ring yet is
 * not there (TD_EMPTY).  TD_BAD leaves the offending TRB in *bad. */
static enum td_read_result td_read(struct xhci *x, uint64_t deq, bool dcs, bool control,
                                   struct xhci_td *td, struct td_trb *bad, unsigned *walked)
{
    bool seen_status = false;
    unsigned links = 0, td_links = 0;
    for (;;) {
        struct xhci_trb t;
        if (!read_trb(x, deq, &t))
            return TD_ABORT;
        ++*walked;
        *bad = (struct td_trb){ deq, t, dcs, 1 };
        if (!(t.control & TRB_C) != !dcs)
            return TD_EMPTY;
        if (TRB_TYPE(t.control) == TRB_LINK) {
            /* Few links in a row, and few in a TD: a segment per TRB is
             * already a strange ring. */
            if (++links > XHCI_MAX_LINKS || ++td_links > XHCI_TD_MAX_TRBS)
                return TD_BAD;
            if (t.control & TRB_TC)
                dcs = !dcs;
            deq = t.param & ~0xfull;
            continue;
        }
        links = 0;
        if (td->n == XHCI_TD_MAX_TRBS || !td_append(td, deq, &t, dcs))
            return TD_BAD;
        deq += 16;
        bool chain = t.control & TRB_CH;
        if (control) {
            seen_status |= TRB_TYPE(t.control) == TRB_STATUS;
            if (seen_status && !chain)
                break;
        } else if (!chain) {
            break;
        }
    }
    td->next_deq = deq;
    td->next_dcs = dcs;
    return TD_OK;
}

/* The TD's TRB types in their places (4.11.2): Setup, Data and Normal
 * TRBs, Status, Event Data for control; an Isoch TRB first, then Normal,
 * Event Data and No Op for isochronous endpoints; Normal, Event Data and
 * No Op elsewhere.  Sets each TRB's stage, the direction and the byte
 * count. */
static bool td_check(struct xhci_td *td, bool control, bool iso, bool *in, uint32_t *total,
                     struct td_trb *bad)
{
    unsigned stage = control ? 0 : 1;
    bool data_seen = false;
    td->no_packets = !control;
    uint64_t sum = 0;
    if (control)
        *in = (td->trbs[0].t.param & USB_DIR_IN) != 0;    /* bmRequestType */
    for (unsigned i = 0; i < td->n; i++) {
        struct td_trb *tr = &td->trbs[i];
        unsigned type = trb_type(tr);
        *bad = *tr;
        if (control) {
            if (i == 0) {
                if (type != TRB_SETUP || !(tr->t.control & TRB_IDT) || TRB_LEN(tr->t.status) != 8)
                    return false;
                tr->stage = 0;
                stage = 1;
                continue;
            }
            if (type == TRB_STATUS) {
                if (stage == 2)
                    return false;
                stage = 2;
            } else if (type == TRB_DATA) {
                if (stage != 1 || data_seen || !(tr->t.control & TRB_DIR_IN) != !*in)
                    return false;
                data_seen = true;
            } else if (type == TRB_NORMAL) {
                if (stage != 1 || !data_seen)
                    return false;
            } else if (type != TRB_EVENT_DATA) {
                return false;
            }
        } else if (iso && i == 0) {
            if (type != TRB_ISOCH)
                return false;
        } else if (type != TRB_NORMAL && type != TRB_EVENT_DATA && type != TRB_NOOP) {
            return false;
        }
        tr->stage = (uint8_t)stage;
        if (is_data(tr)) {
            uint32_t len = TRB_LEN(tr->t.status);
            td->no_packets = false;
            if (len > 65536 || ((tr->t.control & TRB_IDT) && (*in || len > 8)))
                return false;
            sum += len;
            if (sum > XHCI_TD_MAX_BYTES)
                return false;
        }
    }
    *total = (uint32_t)sum;
    return true;
}

static bool gather(struct xhci *x, struct xhci_td *td)
{
    uint32_t off = 0;
    for (unsigned i = 0; i < td->n; i++) {
        const struct td_trb *tr = &td->trbs[i];
        if (!is_data(tr))
            continue;
        uint32_t len = TRB_LEN(tr->t.status);
        if (tr->t.control & TRB_IDT) {
            uint8_t imm[8];
            st64(imm, tr->t.param);      /* immediate data: the parameter's bytes */
            memcpy(td->xfer.buf + off, imm, len);
        } else if (len && !xhci_dma_read(x, tr->t.param, td->xfer.buf + off, len)) {
            return false;
        }
        off += len;
    }
    return true;
}

static bool scatter(struct xhci *x, struct xhci_td *td, uint32_t actual)
{
    uint32_t off = 0;
    for (unsigned i = 0; i < td->n && off < actual; i++) {
        const struct td_trb *tr = &td->trbs[i];
        if (!is_data(tr))
            continue;
        uint32_t n = MIN(TRB_LEN(tr->t.status), actual - off);
        if (n && !xhci_dma_write(x, tr->t.param, td->xfer.buf + off, n))
            return false;
        off += n;
    }
    return true;
}

/* A Transfer Event (6.4.2.1) for TRB tr; with ed, for an Event Data TRB. */
static void transfer_event(struct xhci *x, const struct xhci_td *td, const struct td_trb *tr,
                           enum xhci_cc cc, uint32_t len, bool ed)
{
    unsigned type = trb_type(tr);
    bool bei = (tr->t.control & TRB_BEI) && (type == TRB_NORMAL || type == TRB_EVENT_DATA) &&
               (cc == CC_SUCCESS || cc == CC_SHORT_PACKET);
    xhci_event(x, TRB_INTR(tr->t.status), ed ? tr->t.param : tr->addr,
               (uint32_t)cc << 24 | (len & 0xffffff),
               TRB_TYPE_SET(EV_TRANSFER) | (ed ? TRB_ED : 0) | td->dci << 16 | td->slot << 24, bei);
}

/* The events of a TD that completed: IOC TRBs, the TRB where a short
 * packet ended the data (ISP or IOC), then the last TRB of that TD (or of
 * the control transfer's data stage) if it has IOC (4.10.1.1); Event Data
 * TRBs report the bytes since the previous one (4.11.5.2). */
static void events_done(struct xhci *x, const struct xhci_td *td, uint32_t actual)
{
    bool in = td->xfer.in;
    uint32_t left = in ? actual : td->xfer.len, edtla = 0;
    int short_stage = -1;
    for (unsigned i = 0; i < td->n && xhci_running(x); i++) {
        const struct td_trb *tr = &td->trbs[i];
        bool ioc = tr->t.control & TRB_IOC;
        bool last = i + 1 == td->n || td->trbs[i + 1].stage != tr->stage;
        bool skipped = short_stage == tr->stage;
        if (is_data(tr)) {
            uint32_t len = TRB_LEN(tr->t.status);
            if (skipped) {
                if (last && ioc)
                    transfer_event(x, td, tr, CC_SHORT_PACKET, len, false);
                continue;
            }
            uint32_t moved = MIN(len, left);
            left -= moved;
            edtla += moved;
            if (in && moved < len) {
                short_stage = tr->stage;
                if (ioc || (tr->t.control & TRB_ISP))
                    transfer_event(x, td, tr, CC_SHORT_PACKET, len - moved, false);
            } else if (ioc) {
                transfer_event(x, td, tr, CC_SUCCESS, 0, false);
            }
        } else if (trb_type(tr) == TRB_EVENT_DATA) {
            if (skipped && !last)
                continue;
            if (ioc)
                transfer_event(x, td, tr, skipped ? CC_SHORT_PACKET : CC_SUCCESS, edtla, true);
            edtla = 0;
        } else if (ioc) {
            transfer_event(x, td, tr, CC_SUCCESS, 0, false);
        }
    }
}

/* A TD the device finished: data back into guest memory, events, and the
 * ring moved on; a stall or error halts the endpoint at the TRB where the
 * data stopped (4.10.2). */
static void td_complete(struct xhci *x, struct xhci_td *td)
{
    struct xhci_ep *ep = &x->slots[td->slot].ep[td->dci];
    enum usb_status st = td->xfer.status;
    uint32_t actual = td->xfer.actual;
    if (td->xfer.in && actual && !scatter(x, td, actual))
        return;
    if (st == USB_OK) {
        ep->deq = td->next_deq;
        ep->dcs = td->next_dcs;
        events_done(x, td, actual);
        return;
    }
    enum xhci_cc cc = st == USB_STALL ? CC_STALL : st == USB_BABBLE ? CC_BABBLE : CC_USB_TRANSACTION;
    const struct td_trb *at = &td->trbs[td->n - 1];
    uint32_t residual = 0, left = actual;
    bool found = false;
    for (unsigned i = 0; i < td->n && !found; i++) {
        const struct td_trb *tr = &td->trbs[i];
        if (!is_data(tr))
            continue;
        uint32_t len = TRB_LEN(tr->t.status), moved = MIN(len, left);
        left -= moved;
        if (moved < len) {
            at = tr;
            residual = len - moved;
            found = true;
        }
    }
    if (!found)
        for (unsigned i = 0; i < td->n; i++)
            if (trb_type(&td->trbs[i]) == TRB_STATUS)
                at = &td->trbs[i];
    ep->state = EP_HALTED;
    ep->deq = at->addr;
    ep->dcs = at->dcs;
    xhci_ep_update_ctx(x, td->slot, td->dci);
    transfer_event(x, td, at, cc, residual, false);
}

static void trb_error(struct xhci *x, unsigned slot, unsigned dci, const struct td_trb *bad)
{
    struct xhci_ep *ep = &x->slots[slot].ep[dci];
    log_guest_error("xhci: slot %u endpoint %u: bad TRB at %#llx", slot, dci,
                    (unsigned long long)bad->addr);
    x->counters.trb_errors++;
    ep->state = EP_ERROR;
    ep->deq = bad->addr;
    ep->dcs = bad->dcs;
    xhci_ep_update_ctx(x, slot, dci);
    struct xhci_td tmp = { .slot = slot, .dci = dci };
    transfer_event(x, &tmp, bad, CC_TRB, 0, false);
}

static void xfer_done(struct usb_xfer *xf);

/* Reads and checks the next TD; NULL when there is none or it was bad
 * (then the endpoint is in the Error state or the controller halted). */
static struct xhci_td *td_next(struct xhci *x, unsigned slot, unsigned dci, unsigned *walked)
{
    struct xhci_ep *ep = &x->slots[slot].ep[dci];
    bool control = ep->type == EPT_CONTROL, iso = is_iso(ep);
    struct xhci_td *td = calloc(1, sizeof(*td));
    struct td_trb bad;
    if (!td)
        return NULL;
    td->x = x;
    td->slot = slot;
    td->dci = dci;
    /* Isochronous TDs are read ahead of the dequeue pointer. */
    enum td_read_result r = td_read(x, iso ? ep->rd_deq : ep->deq, iso ? ep->rd_dcs : ep->dcs, control, td,
                                    &bad, walked);
    bool in = dci & 1;
    uint32_t total = 0;
    if (r == TD_OK && !td_check(td, control, iso, &in, &total, &bad))
        r = TD_BAD;
    /* Never a NULL buffer, even for no data (usb.h). */
    if (r == TD_OK && !(td->xfer.buf = malloc(total ? total : 1)))
        r = TD_ABORT;
    if (r == TD_OK) {
        td->xfer.ep = (uint8_t)(dci / 2);
        td->xfer.in = in;
        td->xfer.iso = iso;
        td->xfer.len = total;
        td->xfer.done = xfer_done;
        td->xfer.opaque = td;
        if (control) {
            uint8_t setup[8];
            st64(setup, td->trbs[0].t.param);
            memcpy(td->xfer.setup, setup, 8);
        }
        if (!in && !gather(x, td))
            r = TD_ABORT;
    }
    if (r != TD_OK) {
        td_free(td);
        /* A bad TRB behind isochronous TDs in flight waits for them: the
         * endpoint stops at it once they are done. */
        if (r == TD_BAD && !(iso && ep->ntd))
            trb_error(x, slot, dci, &bad);
        return NULL;
    }
    if (!iso || !ep->ntd) {
        ep->deq = td->trbs[0].addr;   /* past any Link TRBs before the TD */
        ep->dcs = td->trbs[0].dcs;
    }
    if (iso) {
        ep->rd_deq = td->next_deq;
        ep->rd_dcs = td->next_dcs;
    }
    return td;
}

static enum usb_status td_submit(struct xhci *x, struct xhci_td *td)
{
    td->waiting = false;
    if (td->no_packets) {
        td->xfer.actual = 0;
        td->xfer.status = USB_OK;
        return USB_OK;
    }
    int reach = xhci_slot_reachable(x, td->slot);
    if (reach == 0) {
        td->waiting = true;           /* suspended: goes on at resume */
        return USB_NAK;
    }
    if (reach < 0) {
        td->xfer.actual = 0;
        td->xfer.status = USB_IOERROR;
        return USB_IOERROR;
    }
    enum usb_status st = usb_submit(x->slots[td->slot].dev, &td->xfer);
    td->waiting = st == USB_NAK;
    return st;
}

/* An isochronous TD that finished, at the head: data, events, the ring
 * moved on whatever happened. */
static void iso_complete(struct xhci *x, struct xhci_td *td)
{
    struct xhci_ep *ep = &x->slots[td->slot].ep[td->dci];
    enum usb_status st = td->xfer.status;
    uint32_t actual = td->xfer.actual;
    if (td->xfer.in && actual && !scatter(x, td, actual))
        return;
    ep->deq = td->next_deq;
    ep->dcs = td->next_dcs;
    if (st == USB_OK) {
        events_done(x, td, actual);
        return;
    }
    /* On the TD's last TRB, which ends the TD for the driver (4.10.2). */
    enum xhci_cc cc = st == USB_BABBLE ? CC_BABBLE : CC_USB_TRANSACTION;
    transfer_event(x, td, &td->trbs[td->n - 1], cc, td->xfer.len - actual, false);
}

/* Isochronous: hands TDs to the device until XHCI_ISO_INFLIGHT are there
 * or the ring is empty, and completes those at the head that are done. */
static void run_iso_ring(struct xhci *x, unsigned slot, unsigned dci)
{
    struct xhci_ep *ep = &x->slots[slot].ep[dci];
    unsigned walked = 0;
    if (!ep->ntd) {
        ep->rd_deq = ep->deq;         /* nothing read ahead: start at the dequeue pointer */
        ep->rd_dcs = ep->dcs;
    }
    while (ep->state == EP_RUNNING && xhci_running(x)) {
        struct xhci_td *td = ep->td;
        if (td && td->done) {
            ep->td = td->next;
            ep->ntd--;
            iso_complete(x, td);
            td_free(td);
            continue;
        }
        /* TDs that waited (a NAK, the device away) go again, in order;
         * after one that still waits, none goes. */
        struct xhci_td **tail = &ep->td;
        bool blocked = false;
        for (; *tail; tail = &(*tail)->next) {
            if (blocked || !(*tail)->waiting)
                continue;
            enum usb_status st = td_submit(x, *tail);
            if (st == USB_NAK)
                blocked = true;
            else if (st != USB_ASYNC)
                (*tail)->done = true;
        }
        if (ep->td && ep->td->done)
            continue;
        if (blocked || ep->ntd >= XHCI_ISO_INFLIGHT)
            return;
        if (walked >= XHCI_PASS_TRBS) {
            ep->resched = true;
            xhci_schedule(x);
            return;
        }
        td = td_next(x, slot, dci, &walked);
        if (!td) {
            /* A bad TRB once those before it are done: the endpoint's Error state. */
            return;
        }
        *tail = td;
        ep->ntd++;
        enum usb_status st = td_submit(x, td);
        if (st != USB_ASYNC && st != USB_NAK)
            td->done = true;
    }
}

/* One pass over the ring: TDs until it is empty, one waits for the device,
 * or the pass has walked its share. */
static void run_ring(struct xhci *x, unsigned slot, unsigned dci)
{
    struct xhci_ep *ep = &x->slots[slot].ep[dci];
    unsigned walked = 0;
    if (is_iso(ep)) {
        run_iso_ring(x, slot, dci);
        return;
    }
    while (ep->state == EP_RUNNING && xhci_running(x)) {
        struct xhci_td *td = ep->td;
        if (td && !td->waiting)
            return;                   /* the device holds it */
        if (!td) {
            if (walked >= XHCI_PASS_TRBS) {
                ep->resched = true;
                xhci_schedule(x);
                return;
            }
            td = td_next(x, slot, dci, &walked);
            if (!td)
                return;
            ep->td = td;
        }
        enum usb_status st = td_submit(x, td);
        if (st == USB_NAK || st == USB_ASYNC)
            return;
        ep->td = NULL;
        td_complete(x, td);
        td_free(td);
    }
}

void xhci_ep_kick(struct xhci *x, unsigned slot, unsigned dci)
{
    if (slot < 1 || slot > XHCI_MAX_SLOTS || dci < 1 || dci > XHCI_DCI_MAX)
        return;
    struct xhci_slot *s = &x->slots[slot];
    struct xhci_ep *ep = &s->ep[dci];
    if (!s->enabled || !xhci_running(x) || ep->state != EP_RUNNING)
        return;
    if (ep->busy) {
        ep->again = true;             /* a wakeup from inside the device */
        return;
    }
    ep->busy = true;
    do {
        ep->again = false;
        run_ring(x, slot, dci);
    } while (ep->again && s->enabled && xhci_running(x));
    ep->busy = false;
}

static void xfer_done(struct usb_xfer *xf)
{
    struct xhci_td *td = xf->opaque;
    struct xhci *x = td->x;
    unsigned slot = td->slot, dci = td->dci;
    struct xhci_ep *ep = &x->slots[slot].ep[dci];
    if (is_iso(ep)) {
        /* Finished in any order, completed in ring order. */
        struct xhci_td *t = ep->td;
        while (t && t != td)
            t = t->next;
        if (!t)
            return;                   /* cancelled TDs are never completed */
        td->done = true;
        xhci_ep_kick(x, slot, dci);
        return;
    }
    if (ep->td != td)
        return;                       /* cancelled TDs are never completed */
    ep->td = NULL;
    td_complete(x, td);
    td_free(td);
    xhci_ep_kick(x, slot, dci);
}

/* Takes every isochronous TD in flight back; the first is td. */
static void iso_drop_rest(struct xhci_ep *ep, struct xhci_td *td)
{
    struct xhci_td *t = td->next;
    while (t) {
        struct xhci_td *next = t->next;
        usb_cancel(&t->xfer);
        td_free(t);
        t = next;
    }
    td->next = NULL;
    ep->ntd = 0;
    ep->rd_deq = ep->deq;             /* what was read ahead is read again */
    ep->rd_dcs = ep->dcs;
}

void xhci_ep_cancel(struct xhci *x, unsigned slot, unsigned dci, bool report)
{
    struct xhci_ep *ep = &x->slots[slot].ep[dci];
    struct xhci_td *td = ep->td;
    if (!td)
        return;
    ep->td = NULL;
    iso_drop_rest(ep, td);
    usb_cancel(&td->xfer);
    if (report) {
        /* The TRB the endpoint stopped on: nothing of the TD has moved. */
        const struct td_trb *at = &td->trbs[0];
        for (unsigned i = 0; i < td->n; i++)
            if (is_data(&td->trbs[i])) {
                at = &td->trbs[i];
                break;
            }
        if (is_data(at))
            transfer_event(x, td, at, CC_STOPPED, TRB_LEN(at->t.status), false);
        else
            transfer_event(x, td, at, CC_STOPPED_LENGTH_INVALID, 0, false);
    }
    td_free(td);
}

void xhci_ep_quiesce(struct xhci *x, unsigned slot, unsigned dci)
{
    struct xhci_ep *ep = &x->slots[slot].ep[dci];
    struct xhci_td *td = ep->td;
    if (!td)
        return;
    if (is_iso(ep)) {
        /* Service intervals that passed are not made up: the TDs are read
         * again from the dequeue pointer when the device is back. */
        ep->td = NULL;
        iso_drop_rest(ep, td);
        usb_cancel(&td->xfer);
        td_free(td);
        return;
    }
    usb_cancel(&td->xfer);
    td->waiting = true;
}
