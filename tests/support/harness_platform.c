#include "support/harness_platform.h"

#include <stdlib.h>

static void h_set_irq(void *opaque, unsigned gsi, bool level)
{
    struct harness *h = opaque;
    if (gsi >= HARNESS_MAX_GSI)
        return;
    if (level && !h->irq_level[gsi])
        h->irq_raises[gsi]++;
    h->irq_level[gsi] = level;
}

static int h_msi_alloc(void *opaque)
{
    struct harness *h = opaque;
    for (int i = 0; i < HARNESS_MAX_MSI; i++) {
        if (!h->msi[i].used) {
            h->msi[i] = (struct harness_msi){ .used = true };
            return i;
        }
    }
    return -1;
}

static void h_msi_free(void *opaque, int route)
{
    struct harness *h = opaque;
    if (route >= 0 && route < HARNESS_MAX_MSI)
        h->msi[route].used = false;
}

static int h_msi_set(void *opaque, int route, uint64_t addr, uint32_t data)
{
    struct harness *h = opaque;
    if (route < 0 || route >= HARNESS_MAX_MSI || !h->msi[route].used)
        return -1;
    h->msi[route].addr = addr;
    h->msi[route].data = data;
    return 0;
}

static void h_msi_fire(void *opaque, int route)
{
    struct harness *h = opaque;
    if (route < 0 || route >= HARNESS_MAX_MSI || !h->msi[route].used)
        return;
    h->msi[route].fired++;
    h->msi_total++;
}

static void h_request(void *opaque, enum platform_request req, int arg)
{
    struct harness *h = opaque;
    switch (req) {
    case PLATFORM_RESET: h->resets++; break;
    case PLATFORM_POWEROFF: h->poweroffs++; break;
    case PLATFORM_DEBUG_EXIT: h->debug_exit = arg; break;
    }
}

/* No ioeventfd: notifications reach devices as plain MMIO/PIO writes. */
static const struct platform_ops harness_ops = {
    .set_irq = h_set_irq,
    .msi_alloc = h_msi_alloc,
    .msi_free = h_msi_free,
    .msi_set = h_msi_set,
    .msi_fire = h_msi_fire,
    .request = h_request,
};

struct harness *harness_new(uint64_t ram_size)
{
    struct harness *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->ram = calloc(1, ram_size);
    h->plat.loop = evloop_new(NULL);
    if (!h->ram || !h->plat.loop) {
        harness_free(h);
        return NULL;
    }
    h->ram_size = ram_size;
    guest_mem_add(&h->mem, 0, ram_size, h->ram);
    io_bus_init(&h->pio, "pio");
    io_bus_init(&h->mmio, "mmio");
    h->plat.mem = &h->mem;
    h->plat.pio = &h->pio;
    h->plat.mmio = &h->mmio;
    h->plat.ops = &harness_ops;
    h->plat.opaque = h;
    h->debug_exit = -1;
    return h;
}

bool harness_msi_fired(const struct harness *h, uint64_t addr, uint32_t data)
{
    for (int i = 0; i < HARNESS_MAX_MSI; i++)
        if (h->msi[i].used && h->msi[i].fired && h->msi[i].addr == addr && h->msi[i].data == data)
            return true;
    return false;
}

void harness_free(struct harness *h)
{
    if (!h)
        return;
    evloop_free(h->plat.loop);
    io_bus_destroy(&h->pio);
    io_bus_destroy(&h->mmio);
    free(h->ram);
    free(h);
}

uint64_t harness_pio_read(struct harness *h, uint16_t port, unsigned size)
{
    uint64_t v;
    io_bus_read(&h->pio, port, size, &v);
    return v;
}

void harness_pio_write(struct harness *h, uint16_t port, unsigned size, uint64_t v)
{
    io_bus_write(&h->pio, port, size, v);
}

uint64_t harness_mmio_read(struct harness *h, uint64_t addr, unsigned size)
{
    uint64_t v;
    io_bus_read(&h->mmio, addr, size, &v);
    return v;
}

void harness_mmio_write(struct harness *h, uint64_t addr, unsigned size, uint64_t v)
{
    io_bus_write(&h->mmio, addr, size, v);
}

bool harness_run_until(struct harness *h, bool (*cond)(void *), void *opaque, int timeout_ms)
{
    uint64_t deadline = evloop_now_ns() + (uint64_t)timeout_ms * 1000000ULL;
    while (!cond(opaque)) {
        uint64_t now = evloop_now_ns();
        if (now >= deadline)
            return false;
        int left = (int)((deadline - now) / 1000000ULL) + 1;
        evloop_run_once(h->plat.loop, left < 10 ? left : 10);
    }
    return true;
}

static unsigned swizzle(uint8_t devfn, uint8_t pin)
{
    return 16 + (((devfn >> 3) + pin - 1) & 3);
}

static void harness_intx(void *opaque, uint8_t devfn, uint8_t pin, bool level)
{
    struct harness *h = opaque;
    h->plat.ops->set_irq(h->plat.opaque, swizzle(devfn, pin), level);
}

void harness_pci_bus_init(struct pci_bus *bus, struct harness *h)
{
    pci_bus_init(bus, &h->plat);
    bus->intx = harness_intx;
    bus->intx_opaque = h;
}

unsigned harness_pci_intx_gsi(struct pci_bus *bus, uint8_t devfn)
{
    return swizzle(devfn, (uint8_t)pci_config_read(bus, devfn, PCI_INTERRUPT_PIN, 1));
}

int harness_pci_find(struct pci_bus *bus, uint16_t vendor, uint16_t device)
{
    for (int devfn = 0; devfn < 256; devfn++)
        if (pci_config_read(bus, (uint8_t)devfn, PCI_VENDOR_ID, 4) == ((uint32_t)device << 16 | vendor))
            return devfn;
    return -1;
}
