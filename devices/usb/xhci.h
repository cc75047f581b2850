/* xHCI 1.2 USB host controller (eXtensible Host Controller Interface for
 * Universal Serial Bus, revision 1.2), class 0c0330h.
 *
 * BAR 0 (64-bit, 16 KiB) holds the capability, operational, runtime and
 * doorbell registers; BAR 2 the MSI-X table and PBA (one vector per
 * interrupter); INTx on pin A while MSI-X is off.  The root hub has
 * XHCI_USB2_PORTS USB 2 ports (1..4) and XHCI_USB3_PORTS USB 3 ports
 * (5..8), described by Supported Protocol capabilities.  Control,
 * interrupt, bulk and isochronous endpoints; no streams or hubs yet. */
#ifndef BURROW_XHCI_H
#define BURROW_XHCI_H

#include <stddef.h>

#include "devices/pci.h"
#include "devices/platform.h"
#include "devices/usb/usb.h"

#define XHCI_USB2_PORTS 4
#define XHCI_USB3_PORTS 4
#define XHCI_PORTS      (XHCI_USB2_PORTS + XHCI_USB3_PORTS)

struct xhci;

/* Places the controller at devfn (-1: the first free slot).  Returns NULL
 * with a message in err on failure. */
struct xhci *xhci_create(struct platform *p, struct pci_bus *bus, int devfn, char *err, size_t errlen);
/* Detaches every device (they stay their owners'), leaves the bus. */
void xhci_destroy(struct xhci *x);
struct pci_device *xhci_pci(struct xhci *x);

/* Plugs d into root hub port `port` (1..XHCI_PORTS), or with port 0 into
 * the first free port that fits its speed (USB 3 ports for SuperSpeed, USB
 * 2 ports for the rest).  Works before or while the guest runs (a
 * connect-status change).  Returns the port, or -1 with a message. */
int xhci_attach(struct xhci *x, struct usb_device *d, int port, char *err, size_t errlen);
/* The port xhci_attach(port 0) would give a device of this speed; 0 when
 * every such port is taken. */
int xhci_free_port(const struct xhci *x, enum usb_speed speed);
/* Unplugs d: its transfers are cancelled, the port reports the disconnect. */
void xhci_detach(struct xhci *x, struct usb_device *d);

/* What the controller refused or lost, for tests and logs. */
struct xhci_counters {
    uint64_t events_lost;     /* events dropped on a full event ring */
    uint64_t trb_errors;      /* TRB Error completions (bad rings, bad TRBs) */
    uint64_t host_errors;     /* HSE (DMA outside RAM) and HCE (broken event ring, command ring loops) */
};
void xhci_counters(const struct xhci *x, struct xhci_counters *out);

#endif
