/* i440FX host bridge (Intel 82441FX PMC datasheet, 290549).  Guest RAM is
 * plain RAM in every PAM state: the PAM and SMRAM registers are stored so
 * the firmware reads back what it wrote, but they change no mapping. */
#include "devices/i440fx.h"

#include <stdlib.h>

#include "devices/util.h"

#define CONFIG_ADDRESS   0xcf8
#define CONFIG_DATA      0xcfc
#define CONFIG_ENABLE    0x80000000u

#define I440FX_PAM0      0x59    /* PAM0..PAM6: 0x59-0x5f */
#define I440FX_SMRAM     0x72

struct i440fx {
    struct pci_device pci;
    struct pci_bus *bus;
    struct platform *plat;
    uint32_t config_address;
};

static uint64_t addr_read(void *opaque, uint64_t off, unsigned size)
{
    struct i440fx *h = opaque;
    if (off != 0 || size != 4)
        return ~0ULL;
    return h->config_address;
}

static void addr_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
    struct i440fx *h = opaque;
    /* Only dword writes to 0xcf8 latch an address (mechanism #1). */
    if (off == 0 && size == 4)
        h->config_address = (uint32_t)v & 0x80fffffcu;
}

/* Returns false when the latched address selects nothing on bus 0. */
static bool target(struct i440fx *h, uint64_t off, unsigned *devfn, unsigned *reg)
{
    uint32_t a = h->config_address;
    if (!(a & CONFIG_ENABLE) || ((a >> 16) & 0xff) != 0)
        return false;
    *devfn = (a >> 8) & 0xff;
    *reg = (a & 0xfc) + (unsigned)off;
    return true;
}

static uint64_t data_read(void *opaque, uint64_t off, unsigned size)
{
    struct i440fx *h = opaque;
    unsigned devfn, reg;
    if (!target(h, off, &devfn, &reg) || reg + size > PCI_CONFIG_SIZE)
        return size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
    return pci_config_read(h->bus, (uint8_t)devfn, reg, size);
}

static void data_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
    struct i440fx *h = opaque;
    unsigned devfn, reg;
    if (!target(h, off, &devfn, &reg) || reg + size > PCI_CONFIG_SIZE)
        return;
    pci_config_write(h->bus, (uint8_t)devfn, reg, size, (uint32_t)v);
}

static const struct io_ops addr_ops = { addr_read, addr_write };
static const struct io_ops data_ops = { data_read, data_write };

static void i440fx_reset(struct pci_device *d)
{
    for (int i = 0; i < 7; i++)
        d->config[I440FX_PAM0 + i] = 0;
    d->config[I440FX_SMRAM] = 0x02;
}

struct i440fx *i440fx_create(struct platform *p, struct pci_bus *bus)
{
    struct i440fx *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->bus = bus;
    h->plat = p;
    pci_device_init(&h->pci, 0x8086, 0x1237, 0x060000, 0x02, "i440fx");
    pci_set_subsystem(&h->pci, 0, 0);
    for (int i = 0; i < 7; i++)
        h->pci.wmask[I440FX_PAM0 + i] = 0xff;
    h->pci.wmask[I440FX_SMRAM] = 0xff;
    h->pci.reset = i440fx_reset;
    i440fx_reset(&h->pci);
    if (pci_bus_add(bus, &h->pci, 0) < 0 ||
        /* One port wide: 0xcf9 is the PIIX3's reset register, and a dword
         * access at 0xcf8 still lands here. */
        io_bus_register(p->pio, CONFIG_ADDRESS, 1, &addr_ops, h, "pci-config-address") < 0 ||
        io_bus_register(p->pio, CONFIG_DATA, 4, &data_ops, h, "pci-config-data") < 0) {
        free(h);
        return NULL;
    }
    return h;
}

void i440fx_destroy(struct i440fx *h)
{
    if (!h)
        return;
    io_bus_unregister(h->plat->pio, CONFIG_ADDRESS, h);
    io_bus_unregister(h->plat->pio, CONFIG_DATA, h);
    h->bus->devices[0] = NULL;
    free(h);
}
