/* A guest-side xHCI driver for the device harness, written from the xHCI
 * 1.2 specification and USB 2.0 chapter 9, independent of the device code:
 * it finds the controller by class code, resets it, sets up the DCBAA, a
 * command ring, an event ring of two segments and MSI-X, finds devices on
 * the root hub ports, enables slots, addresses devices, runs control
 * transfers, configures endpoints and queues interrupt and bulk transfers.
 * It also offers raw TRB access for tests that build broken rings. */
#ifndef BURROW_TEST_XHCI_DRIVER_H
#define BURROW_TEST_XHCI_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/pci.h"
#include "support/harness_platform.h"

/* Operational registers, relative to the operational base (5.4) */
#define XD_USBCMD    0x00
#define XD_USBSTS    0x04
#define XD_PAGESIZE  0x08
#define XD_CRCR      0x18
#define XD_DCBAAP    0x30
#define XD_CONFIG    0x38
#define XD_PORTSC(n) (0x400 + 0x10 * ((n) - 1))

#define XD_CMD_RS    (1u << 0)
#define XD_CMD_HCRST (1u << 1)
#define XD_CMD_INTE  (1u << 2)
#define XD_STS_HCH   (1u << 0)
#define XD_STS_HSE   (1u << 2)
#define XD_STS_EINT  (1u << 3)
#define XD_STS_PCD   (1u << 4)
#define XD_STS_CNR   (1u << 11)
#define XD_STS_HCE   (1u << 12)

#define XD_PORT_CCS  (1u << 0)
#define XD_PORT_PED  (1u << 1)
#define XD_PORT_PR   (1u << 4)
#define XD_PORT_PLS(v) (((v) >> 5) & 0xf)
#define XD_PORT_PP   (1u << 9)
#define XD_PORT_SPEED(v) (((v) >> 10) & 0xf)
#define XD_PORT_CSC  (1u << 17)
#define XD_PORT_PEC  (1u << 18)
#define XD_PORT_PRC  (1u << 21)
#define XD_PORT_CHANGES (0x7fu << 17)

/* TRB types (6.4.6) */
enum {
    XD_TRB_NORMAL = 1, XD_TRB_SETUP, XD_TRB_DATA, XD_TRB_STATUS, XD_TRB_ISOCH, XD_TRB_LINK,
    XD_TRB_EVENT_DATA, XD_TRB_NOOP, XD_CMD_ENABLE_SLOT, XD_CMD_DISABLE_SLOT,
    XD_CMD_ADDRESS_DEVICE, XD_CMD_CONFIGURE_EP, XD_CMD_EVALUATE_CTX, XD_CMD_RESET_EP,
    XD_CMD_STOP_EP, XD_CMD_SET_TR_DEQ, XD_CMD_RESET_DEVICE, XD_CMD_NOOP = 23,
    XD_EV_TRANSFER = 32, XD_EV_COMMAND, XD_EV_PORT_STATUS, XD_EV_HOST_CONTROLLER = 37,
};

/* Completion codes (6.4.5) */
enum {
    XD_CC_SUCCESS = 1, XD_CC_BABBLE = 3, XD_CC_USB_TRANSACTION = 4, XD_CC_TRB = 5,
    XD_CC_STALL = 6, XD_CC_RESOURCE = 7, XD_CC_NO_SLOTS = 9, XD_CC_SLOT_NOT_ENABLED = 11,
    XD_CC_EP_NOT_ENABLED = 12, XD_CC_SHORT_PACKET = 13, XD_CC_PARAMETER = 17,
    XD_CC_CONTEXT_STATE = 19, XD_CC_EVENT_RING_FULL = 21, XD_CC_CMD_RING_STOPPED = 24,
    XD_CC_STOPPED = 26, XD_CC_STOPPED_LENGTH_INVALID = 27,
};

/* TRB control bits */
#define XD_TRB_C     (1u << 0)
#define XD_TRB_TC    (1u << 1)
#define XD_TRB_ISP   (1u << 2)
#define XD_TRB_CH    (1u << 4)
#define XD_TRB_IOC   (1u << 5)
#define XD_TRB_IDT   (1u << 6)
#define XD_TRB_BSR   (1u << 9)
#define XD_TRB_TYPE(t) ((uint32_t)(t) << 10)
#define XD_EV_TYPE(c)  (((c) >> 10) & 0x3f)
#define XD_EV_CC(s)    ((s) >> 24)
#define XD_EV_LEN(s)   ((s) & 0xffffff)
#define XD_EV_SLOT(c)  ((c) >> 24)
#define XD_EV_EP(c)    (((c) >> 16) & 0x1f)

/* Endpoint types (6.2.3) */
enum {
    XD_EP_ISOCH_OUT = 1, XD_EP_BULK_OUT, XD_EP_INTR_OUT, XD_EP_CONTROL, XD_EP_ISOCH_IN, XD_EP_BULK_IN,
    XD_EP_INTR_IN,
};

#define XD_RING_TRBS  32        /* per transfer ring, the Link TRB included */
#define XD_CMD_TRBS   64
#define XD_EV_SEG_TRBS 32       /* two segments */
#define XD_MAX_SLOTS  16

struct xd_trb {
    uint64_t param;
    uint32_t status;
    uint32_t control;
};

struct xd_ring {
    uint64_t base;
    unsigned n;                 /* TRBs, the Link TRB last */
    unsigned enq;
    bool cycle;
};

struct xd_slot {
    bool used;
    unsigned port;
    uint64_t in_ctx, out_ctx;
    struct xd_ring ep[32];      /* by DCI */
};

struct xhci_drv {
    struct harness *h;
    struct pci_bus *bus;
    uint8_t devfn;
    uint64_t mmio;              /* BAR 0 */
    uint64_t op, rt, db;        /* register bases */
    unsigned max_slots, max_intrs, max_ports;
    unsigned usb2_first, usb2_count, usb3_first, usb3_count;
    uint8_t msix_cap;
    uint64_t msix_table;
    uint64_t heap, heap_base, heap_end;
    uint64_t dcbaa;
    struct xd_ring cmd;
    uint64_t erst, ev_seg[2];
    unsigned ev_seg_i, ev_idx;
    bool ev_cycle;
    struct xd_trb pending[256]; /* events read while waiting for another */
    unsigned npending;
    struct xd_slot slots[XD_MAX_SLOTS + 1];
};

/* Finds the first function of class 0c0330, places BAR 0 at mmio_base and
 * the MSI-X BAR after it, enables memory decoding and bus mastering.  RAM
 * from heap_base to heap_end is the driver's.  Returns 0 or -1. */
int xd_probe(struct xhci_drv *d, struct harness *h, struct pci_bus *bus, uint64_t mmio_base,
             uint64_t heap_base, uint64_t heap_end);

uint32_t xd_rd(struct xhci_drv *d, uint64_t base, unsigned off);
void xd_wr(struct xhci_drv *d, uint64_t base, unsigned off, uint32_t v);
void xd_wr64(struct xhci_drv *d, uint64_t base, unsigned off, uint64_t v);

/* Halts, resets (HCRST) and reads the capability registers; the heap
 * starts over.  Returns 0 or -1 (the controller never became ready). */
int xd_reset(struct xhci_drv *d);
/* Initialization after reset (4.2): slots, DCBAA, command ring, event
 * ring of two segments, interrupter 0 with moderation imodi (250 ns
 * units), MSI-X vector 0 to (msi_addr, msi_data) when msi_addr != 0, INTE,
 * Run.  Returns 0 or -1. */
int xd_start(struct xhci_drv *d, uint16_t imodi, uint64_t msi_addr, uint32_t msi_data);

/* Runs the harness loop until an event of type arrives (any type: 0),
 * matching param when match_param; other events are kept for later
 * waits.  Returns 0, or -1 after timeout_ms. */
int xd_wait_event(struct xhci_drv *d, unsigned type, bool match_param, uint64_t param,
                  struct xd_trb *ev, int timeout_ms);
/* Takes a kept or new event without waiting; false when there is none. */
bool xd_poll_event(struct xhci_drv *d, struct xd_trb *ev);
/* Drops kept events and reads out the ring. */
void xd_drain_events(struct xhci_drv *d);

/* Queues a command TRB (type and fields without the cycle bit), rings
 * doorbell 0 and waits for its completion.  Returns the completion code
 * (-1: none came); the event's slot ID goes to *slot if not NULL. */
int xd_command(struct xhci_drv *d, uint64_t param, uint32_t status, uint32_t control, unsigned *slot);
/* The address the next command TRB goes to. */
uint64_t xd_cmd_next(const struct xhci_drv *d);

/* Ports: connected ones are found through PORTSC.CCS; USB 2 ports need a
 * reset (4.3.1).  Returns the PORTSC after it, or 0 on timeout. */
uint32_t xd_port_reset(struct xhci_drv *d, unsigned port);
uint32_t xd_portsc(struct xhci_drv *d, unsigned port);

/* Enable Slot, Address Device (bsr: BSR flag) for the device on port.
 * Returns the completion code of Address Device; the slot in *slot. */
int xd_enable_slot(struct xhci_drv *d, unsigned *slot);
int xd_address_device(struct xhci_drv *d, unsigned slot, unsigned port, bool bsr);

/* A control transfer on the slot's default endpoint.  IN when
 * bmRequestType has bit 7; data of len bytes (buf may be NULL for 0).
 * Returns the completion code of the last event (Success, Stall...) and
 * the bytes moved in *actual. */
int xd_control(struct xhci_drv *d, unsigned slot, uint8_t type, uint8_t req, uint16_t value,
               uint16_t index, void *buf, uint16_t len, uint32_t *actual);

/* Brings the device on port to the Configured state as a plain driver
 * does: a reset for a USB 2 port, Enable Slot, Address Device,
 * SET_CONFIGURATION(1).  Returns the slot, 0 on any failure. */
unsigned xd_enumerate(struct xhci_drv *d, unsigned port);
/* Recovers halted endpoint dci, whose address is ep_addr (with bit 7 for
 * IN): Reset Endpoint, Set TR Dequeue Pointer past what is queued, then
 * CLEAR_FEATURE(ENDPOINT_HALT) on the device (USB 2.0 9.4.1).  Returns the
 * completion code of the request, -1 if a command failed. */
int xd_clear_halt(struct xhci_drv *d, unsigned slot, unsigned dci, uint8_t ep_addr);

/* Configure Endpoint adding endpoint dci with a fresh ring.  Returns the
 * completion code. */
int xd_configure_ep(struct xhci_drv *d, unsigned slot, unsigned dci, unsigned type, uint16_t mps,
                    uint8_t interval);

/* Queues one Normal TRB (IOC, and ISP for IN endpoints) for buf (guest
 * address) and len and rings the doorbell.  Returns the TRB's address. */
uint64_t xd_queue_normal(struct xhci_drv *d, unsigned slot, unsigned dci, uint64_t buf, uint32_t len);
/* Queues one Isoch TRB (6.4.1.3: IOC, ISP for IN endpoints, SIA: as soon
 * as possible) for buf and len, a TD of its own, and rings the doorbell.
 * Returns the TRB's address. */
uint64_t xd_queue_isoch(struct xhci_drv *d, unsigned slot, unsigned dci, uint64_t buf, uint32_t len);
/* Waits for the Transfer Event of slot/dci; returns its completion code
 * and the residual length in *residual (-1: none came). */
int xd_wait_transfer(struct xhci_drv *d, unsigned slot, unsigned dci, uint32_t *residual,
                     int timeout_ms);

/* Raw ring access for malformed rings. */
uint64_t xd_ring_put(struct xhci_drv *d, struct xd_ring *r, uint64_t param, uint32_t status,
                     uint32_t control);
void xd_doorbell(struct xhci_drv *d, unsigned slot, unsigned target);
void xd_write_trb(struct xhci_drv *d, uint64_t addr, uint64_t param, uint32_t status, uint32_t control);

/* Reads the output Endpoint Context's state (0 disabled .. 4 error) and
 * TR Dequeue Pointer (with DCS in bit 0). */
unsigned xd_ep_state(struct xhci_drv *d, unsigned slot, unsigned dci, uint64_t *deq);
unsigned xd_slot_state(struct xhci_drv *d, unsigned slot, unsigned *address);

/* Guest RAM */
uint64_t xd_alloc(struct xhci_drv *d, uint64_t size, uint64_t align);
void xd_mem_write(struct xhci_drv *d, uint64_t gpa, const void *buf, size_t len);
void xd_mem_read(struct xhci_drv *d, uint64_t gpa, void *buf, size_t len);

#endif
