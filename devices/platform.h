/* What a device model may ask of the machine it sits in.  The VMM implements
 * this over KVM; the device harness implements it with plain memory and a
 * record of raised interrupts, so devices never touch KVM directly.
 *
 * Locking: every device callback (I/O handlers, event-loop callbacks) runs
 * with the machine's device lock held, so device state needs no locks of its
 * own.  Only platform_ops.msi_fire may be called without it. */
#ifndef BURROW_PLATFORM_H
#define BURROW_PLATFORM_H

#include <stdint.h>
#include <stdbool.h>

#include "devices/bus.h"
#include "devices/guest_mem.h"

struct evloop;

enum platform_request {
    PLATFORM_RESET,      /* the guest asked for a system reset */
    PLATFORM_POWEROFF,   /* the guest powered off (ACPI S5) */
    PLATFORM_DEBUG_EXIT, /* test guests: end the process with status arg */
};

struct platform_ops {
    /* Level of an interrupt line (GSI: IOAPIC pin; 0-15 are also the PIC's). */
    void (*set_irq)(void *opaque, unsigned gsi, bool level);
    /* MSI routes: a route is a slot whose address/data the device updates
     * when the guest programs it, and which it can fire cheaply (irqfd). */
    int (*msi_alloc)(void *opaque);   /* route id >= 0, or -1 */
    void (*msi_free)(void *opaque, int route);
    int (*msi_set)(void *opaque, int route, uint64_t addr, uint32_t data);
    void (*msi_fire)(void *opaque, int route);
    /* Optional (NULL allowed): have writes of any value to the address signal
     * fd without a VM exit reaching the device.  pio selects the port space. */
    int (*ioeventfd_add)(void *opaque, bool pio, uint64_t addr, unsigned len, int fd);
    int (*ioeventfd_del)(void *opaque, bool pio, uint64_t addr, unsigned len, int fd);
    void (*request)(void *opaque, enum platform_request req, int arg);
};

struct platform {
    struct guest_mem *mem;
    struct io_bus *pio;
    struct io_bus *mmio;
    struct evloop *loop;           /* I/O thread's loop, for async work */
    const struct platform_ops *ops;
    void *opaque;
};

static inline void platform_set_irq(struct platform *p, unsigned gsi, bool level)
{
    p->ops->set_irq(p->opaque, gsi, level);
}

static inline void platform_request(struct platform *p, enum platform_request r, int arg)
{
    p->ops->request(p->opaque, r, arg);
}

#endif
