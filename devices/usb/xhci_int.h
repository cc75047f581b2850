/* What the two halves of the xHCI model share: xhci.c (registers, root hub
 * ports, interrupters and event rings, the command ring) and
 * xhci_transfer.c (transfer rings).  Section numbers refer to the xHCI 1.2
 * specification. */
#ifndef BURROW_XHCI_INT_H
#define BURROW_XHCI_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/pci.h"
#include "devices/platform.h"
#include "devices/usb/usb.h"
#include "devices/usb/xhci.h"

#define XHCI_MAX_SLOTS   32
#define XHCI_INTRS       4
#define XHCI_ERST_MAX_LOG2 3                 /* HCSPARAMS2.ERST Max */
#define XHCI_ERST_MAX    (1u << XHCI_ERST_MAX_LOG2)
#define XHCI_DCI_MAX     31

/* Bounds on what one pass over a ring may walk (a guest can build rings
 * that never end). */
#define XHCI_MAX_LINKS    32      /* Link TRBs in a row with nothing between */
#define XHCI_TD_MAX_TRBS  4096    /* TRBs of one TD, and Link TRBs in it */
#define XHCI_TD_MAX_BYTES (16u << 20)
#define XHCI_PASS_TRBS    1024    /* TRBs one pass walks before yielding */
/* Isochronous TDs handed to the device at once: a device with a steady
 * rate gets its next service interval's data queued before the last one
 * is done. */
#define XHCI_ISO_INFLIGHT 16

/* TRB (6.4): parameter, status, control. */
struct xhci_trb {
    uint64_t param;
    uint32_t status;
    uint32_t control;
};

#define TRB_C        (1u << 0)
#define TRB_TC       (1u << 1)    /* Link: toggle cycle */
#define TRB_ISP      (1u << 2)
#define TRB_CH       (1u << 4)
#define TRB_IOC      (1u << 5)
#define TRB_IDT      (1u << 6)
#define TRB_BEI      (1u << 9)    /* Normal, Event Data: no interrupt */
#define TRB_BSR      (1u << 9)    /* Address Device: block SET_ADDRESS */
#define TRB_DC       (1u << 9)    /* Configure Endpoint: deconfigure */
#define TRB_DIR_IN   (1u << 16)   /* Data Stage */
#define TRB_ED       (1u << 2)    /* Transfer Event: Event Data */
#define TRB_TYPE(c)  (((c) >> 10) & 0x3f)
#define TRB_TYPE_SET(t) ((uint32_t)(t) << 10)
#define TRB_SLOT(c)  ((c) >> 24)
#define TRB_EP(c)    (((c) >> 16) & 0x1f)
#define TRB_LEN(s)   ((s) & 0x1ffff)
#define TRB_INTR(s)  ((s) >> 22)

enum xhci_trb_type {
    TRB_NORMAL = 1, TRB_SETUP, TRB_DATA, TRB_STATUS, TRB_ISOCH, TRB_LINK, TRB_EVENT_DATA, TRB_NOOP,
    CMD_ENABLE_SLOT, CMD_DISABLE_SLOT, CMD_ADDRESS_DEVICE, CMD_CONFIGURE_EP, CMD_EVALUATE_CTX,
    CMD_RESET_EP, CMD_STOP_EP, CMD_SET_TR_DEQ, CMD_RESET_DEVICE,
    CMD_NOOP = 23,
    EV_TRANSFER = 32, EV_COMMAND, EV_PORT_STATUS, EV_BANDWIDTH, EV_DOORBELL, EV_HOST_CONTROLLER,
};

/* Completion codes (6.4.5) */
enum xhci_cc {
    CC_NONE = 0,               /* no completion event (the controller halted) */
    CC_SUCCESS = 1,
    CC_BABBLE = 3,
    CC_USB_TRANSACTION = 4,
    CC_TRB = 5,
    CC_STALL = 6,
    CC_RESOURCE = 7,
    CC_NO_SLOTS = 9,
    CC_SLOT_NOT_ENABLED = 11,
    CC_EP_NOT_ENABLED = 12,
    CC_SHORT_PACKET = 13,
    CC_PARAMETER = 17,
    CC_CONTEXT_STATE = 19,
    CC_EVENT_RING_FULL = 21,
    CC_CMD_RING_STOPPED = 24,
    CC_STOPPED = 26,
    CC_STOPPED_LENGTH_INVALID = 27,
};

/* Endpoint Context (6.2.3) */
enum xhci_ep_state { EP_DISABLED, EP_RUNNING, EP_HALTED, EP_STOPPED, EP_ERROR };
enum xhci_ep_type {
    EPT_INVALID, EPT_ISOCH_OUT, EPT_BULK_OUT, EPT_INTR_OUT, EPT_CONTROL, EPT_ISOCH_IN,
    EPT_BULK_IN, EPT_INTR_IN,
};
/* Slot Context (6.2.2) */
enum xhci_slot_state { SLOT_ENABLED, SLOT_DEFAULT, SLOT_ADDRESSED, SLOT_CONFIGURED };

struct xhci_td;

struct xhci_ep {
    uint8_t state;
    uint8_t type;
    uint16_t mps;
    uint64_t deq;                 /* TR Dequeue Pointer */
    bool dcs;                     /* its cycle state */
    struct xhci_td *td;           /* handed to the device and not finished;
                                   * isochronous: the first of ntd, in ring order */
    unsigned ntd;
    uint64_t rd_deq;              /* isochronous: where the next TD is read */
    bool rd_dcs;
    bool busy, again;             /* a pass over the ring is running / asked for */
    bool resched;                 /* the pass yielded: continue from the event loop */
};

struct xhci_slot {
    bool enabled;
    uint8_t state;
    uint8_t port;                 /* root hub port, 1-based; 0 before Address Device */
    uint64_t ctx;                 /* output Device Context (from the DCBAA) */
    struct usb_device *dev;
    struct xhci_ep ep[XHCI_DCI_MAX + 1];   /* by DCI; [0] unused */
};

struct xhci_port {
    uint32_t sc;                  /* PORTSC */
    uint32_t pmsc;                /* PORTPMSC (kept, no link power management) */
    bool usb3;
    struct usb_device *dev;
};

struct xhci_intr {
    struct xhci *owner;
    unsigned index;
    uint32_t iman, imod, erstsz;
    uint64_t erstba, erdp;
    /* The event ring as ERSTBA's write set it up (4.9.4). */
    bool ring_ok;
    unsigned nseg, seg;
    uint64_t seg_base[XHCI_ERST_MAX];
    uint32_t seg_size[XHCI_ERST_MAX];
    uint32_t idx;                 /* enqueue index in segment seg */
    bool pcs;                     /* producer cycle state */
    bool want_irq;                /* an event that interrupts waits for IP */
    int mod_timer;                /* interrupt moderation interval, -1: idle */
};

struct xhci {
    struct pci_device pci;
    struct platform *plat;
    uint32_t usbcmd, usbsts, dnctrl, config;
    uint64_t crcr;                /* command ring dequeue pointer */
    bool rcs, crr;
    uint64_t dcbaap;
    uint64_t mf_base;             /* MFINDEX 0, in evloop_now_ns() time */
    uint32_t mf_frozen;           /* MFINDEX while halted */
    struct xhci_port ports[XHCI_PORTS];
    struct xhci_intr intr[XHCI_INTRS];
    struct xhci_slot slots[XHCI_MAX_SLOTS + 1];   /* [0] unused */
    int bh_timer;                 /* continuation of yielded passes, -1: none */
    bool cmd_resched;
    struct xhci_counters counters;
};

/* xhci.c */
bool xhci_running(const struct xhci *x);
/* Guest memory; a failed access is a master abort: HSE, halt (5.4.2). */
bool xhci_dma_read(struct xhci *x, uint64_t gpa, void *buf, size_t len);
bool xhci_dma_write(struct xhci *x, uint64_t gpa, const void *buf, size_t len);
void xhci_event(struct xhci *x, unsigned intr, uint64_t param, uint32_t status, uint32_t control,
                bool no_irq);
/* Continue yielded work from the event loop. */
void xhci_schedule(struct xhci *x);
/* Writes an endpoint's state and TR Dequeue Pointer into the output
 * Endpoint Context. */
void xhci_ep_update_ctx(struct xhci *x, unsigned slot, unsigned dci);
/* Whether the slot's device can be reached: 1 yes, 0 suspended (wait),
 * -1 gone or its port disabled. */
int xhci_slot_reachable(const struct xhci *x, unsigned slot);

/* xhci_transfer.c */
/* Runs the endpoint's transfer ring (a doorbell, a wakeup, a resume). */
void xhci_ep_kick(struct xhci *x, unsigned slot, unsigned dci);
/* Takes back the TD in flight; with report, a Stopped Transfer Event for it
 * (Stop Endpoint, 4.6.9). */
void xhci_ep_cancel(struct xhci *x, unsigned slot, unsigned dci, bool report);
/* The device went away or was reset: its transfers are taken back and the
 * TDs wait (a Stop Endpoint reports them). */
void xhci_ep_quiesce(struct xhci *x, unsigned slot, unsigned dci);

#endif
