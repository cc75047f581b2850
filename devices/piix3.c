/* PIIX3 function 0 (Intel 82371SB datasheet, 290550): PIRQ[A-D] route
 * registers 0x60-0x63, the reset control register at 0xcf9 and the
 * "system control port A" at 0x92. */
#include "devices/piix3.h"

#include <stdlib.h>

#include "devices/util.h"

#define PIIX3_PIRQRC      0x60
#define PIRQRC_DISABLE    0x80
#define PIIX3_RCR         0xcf9
#define RCR_SYS_RST       0x02
#define RCR_RST_CPU       0x04
#define PORT_92           0x92
#define PORT92_FAST_RESET 0x01
#define PORT92_A20        0x02

struct piix3 {
    struct pci_device pci;
    struct platform *plat;
    uint8_t rcr;
    uint8_t port92;
    unsigned pirq_count[4];        /* devices asserting each PIRQ */
    bool isa_level[16];            /* what we drive on ISA IRQs via the PIC */
};

unsigned piix3_pirq(uint8_t devfn, uint8_t pin)
{
    return ((devfn >> 3) + pin - 1) & 3;
}

/* The PIC sees a PIRQ on the ISA IRQ its route register names; in APIC
 * mode the IOAPIC sees PIRQn on pin 16+n.  Shared lines are ORed. */
static void update_isa(struct piix3 *s)
{
    bool level[16] = { false };
    for (int n = 0; n < 4; n++) {
        uint8_t r = s->pci.config[PIIX3_PIRQRC + n];
        if (!(r & PIRQRC_DISABLE) && (r & 0xf) >= 3 && s->pirq_count[n])
            level[r & 0xf] = true;
    }
    for (int i = 0; i < 16; i++) {
        if (level[i] != s->isa_level[i]) {
            s->isa_level[i] = level[i];
            platform_set_irq(s->plat, (unsigned)i, level[i]);
        }
    }
}

static void piix3_intx(void *opaque, uint8_t devfn, uint8_t pin, bool level)
{
    struct piix3 *s = opaque;
    unsigned n = piix3_pirq(devfn, pin);
    unsigned before = s->pirq_count[n];
    if (level)
        s->pirq_count[n]++;
    else if (s->pirq_count[n])
        s->pirq_count[n]--;
    if (!before != !s->pirq_count[n])
        platform_set_irq(s->plat, PIIX3_PIRQ_GSI_BASE + n, s->pirq_count[n] != 0);
    update_isa(s);
}

static void piix3_config_write(struct pci_device *d, unsigned off, unsigned size, uint32_t val)
{
    if (off < PIIX3_PIRQRC + 4 && off + size > PIIX3_PIRQRC)
        update_isa((struct piix3 *)d);
}

static uint64_t rcr_read(void *opaque, uint64_t off, unsigned size)
{
    struct piix3 *s = opaque;
    return s->rcr;
}

static void rcr_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
    struct piix3 *s = opaque;
    /* A reset happens on the 0->1 transition of RST_CPU. */
    if ((v & RCR_RST_CPU) && !(s->rcr & RCR_RST_CPU))
        platform_request(s->plat, PLATFORM_RESET, 0);
    s->rcr = (uint8_t)(v & RCR_SYS_RST);
}

static uint64_t port92_read(void *opaque, uint64_t off, unsigned size)
{
    struct piix3 *s = opaque;
    return s->port92;
}

static void port92_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
    struct piix3 *s = opaque;
    if ((v & PORT92_FAST_RESET) && !(s->port92 & PORT92_FAST_RESET))
        platform_request(s->plat, PLATFORM_RESET, 0);
    /* A20 is always enabled; the bit reads back as written. */
    s->port92 = (uint8_t)(v & (PORT92_A20 | PORT92_FAST_RESET));
}

static const struct io_ops rcr_ops = { rcr_read, rcr_write };
static const struct io_ops port92_ops = { port92_read, port92_write };

static void piix3_reset(struct pci_device *d)
{
    struct piix3 *s = (struct piix3 *)d;
    for (int n = 0; n < 4; n++)
        d->config[PIIX3_PIRQRC + n] = PIRQRC_DISABLE;
    s->rcr = 0;
    s->port92 = PORT92_A20;
    update_isa(s);
}

struct piix3 *piix3_create(struct platform *p, struct pci_bus *bus)
{
    struct piix3 *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->plat = p;
    pci_device_init(&s->pci, 0x8086, 0x7000, 0x060100, 0x00, "piix3");
    pci_set_subsystem(&s->pci, 0, 0);
    for (int n = 0; n < 4; n++)
        s->pci.wmask[PIIX3_PIRQRC + n] = 0x8f;
    s->pci.config_write = piix3_config_write;
    s->pci.reset = piix3_reset;
    bus->intx = piix3_intx;
    bus->intx_opaque = s;
    piix3_reset(&s->pci);
    if (pci_bus_add(bus, &s->pci, 1 << 3) < 0 ||
        io_bus_register(p->pio, PIIX3_RCR, 1, &rcr_ops, s, "piix3-rcr") < 0 ||
        io_bus_register(p->pio, PORT_92, 1, &port92_ops, s, "port92") < 0) {
        free(s);
        return NULL;
    }
    return s;
}

void piix3_destroy(struct piix3 *s)
{
    if (!s)
        return;
    io_bus_unregister(s->plat->pio, PIIX3_RCR, s);
    io_bus_unregister(s->plat->pio, PORT_92, s);
    free(s);
}
