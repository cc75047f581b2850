/* Conventional PCI configuration space and BAR decoding (PCI Local Bus 3.0),
 * and MSI-X (PCI 3.0, 6.8.2). */
#include "devices/pci.h"

#include <stdlib.h>
#include <string.h>

#include "devices/util.h"

#define MSIX_CTRL_ENABLE   0x8000
#define MSIX_CTRL_MASKALL  0x4000
#define MSIX_ENTRY_SIZE    16
#define MSIX_ENTRY_CTRL_MASKBIT 1
#define MSIX_PBA_OFFSET    2048
#define MSIX_MAX_VECTORS   128
#define MSIX_BAR_SIZE      4096

void pci_bus_init(struct pci_bus *bus, struct platform *plat)
{
    memset(bus, 0, sizeof(*bus));
    bus->plat = plat;
}

static void cfg_set16(struct pci_device *d, unsigned off, uint16_t v)
{
    st_le(&d->config[off], 2, v);
}

static void cfg_set32(struct pci_device *d, unsigned off, uint32_t v)
{
    st_le(&d->config[off], 4, v);
}

static uint32_t cfg32(const struct pci_device *d, unsigned off)
{
    return (uint32_t)ld_le(&d->config[off], 4);
}

void pci_device_init(struct pci_device *d, uint16_t vendor, uint16_t device,
                     uint32_t class_code, uint8_t revision, const char *name)
{
    memset(d, 0, sizeof(*d));
    d->name = name;
    cfg_set16(d, PCI_VENDOR_ID, vendor);
    cfg_set16(d, PCI_DEVICE_ID, device);
    d->config[PCI_REVISION_ID] = revision;
    d->config[PCI_CLASS_PROG] = class_code & 0xff;
    cfg_set16(d, PCI_CLASS_DEVICE, (uint16_t)(class_code >> 8));
    cfg_set16(d, PCI_SUBSYSTEM_VENDOR_ID, vendor);
    cfg_set16(d, PCI_SUBSYSTEM_ID, device);
    /* Command: I/O, memory, bus master, SERR#, INTx disable. */
    d->wmask[PCI_COMMAND] = PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    d->wmask[PCI_COMMAND + 1] = (PCI_COMMAND_INTX_DISABLE | 0x0100) >> 8;
    /* Status: the error bits are write-one-to-clear. */
    d->w1cmask[PCI_STATUS + 1] = 0xf9;
    d->wmask[0x0c] = 0xff;          /* cache line size */
    d->wmask[0x0d] = 0xff;          /* latency timer */
    d->wmask[PCI_INTERRUPT_LINE] = 0xff;
    d->next_cap = 0x40;
}

void pci_set_subsystem(struct pci_device *d, uint16_t vendor, uint16_t id)
{
    cfg_set16(d, PCI_SUBSYSTEM_VENDOR_ID, vendor);
    cfg_set16(d, PCI_SUBSYSTEM_ID, id);
}

void pci_set_irq_pin(struct pci_device *d, uint8_t pin)
{
    d->config[PCI_INTERRUPT_PIN] = pin;
}

static uint32_t bar_type_bits(const struct pci_bar *b)
{
    switch (b->type) {
    case PCI_BAR_IO: return 0x1;
    case PCI_BAR_MEM32: return b->prefetch ? 0x8 : 0x0;
    case PCI_BAR_MEM64: return 0x4 | (b->prefetch ? 0x8 : 0x0);
    default: return 0;
    }
}

void pci_add_bar(struct pci_device *d, int bar, enum pci_bar_type type, bool prefetch,
                 uint64_t size, const struct io_ops *ops, void *opaque)
{
    if (bar < 0 || bar >= PCI_NUM_BARS || (type == PCI_BAR_MEM64 && bar == PCI_NUM_BARS - 1))
        return;
    /* BARs are naturally aligned powers of two; I/O at least 4, memory 16. */
    uint64_t min = type == PCI_BAR_IO ? 4 : 16;
    uint64_t sz = min;
    while (sz < size)
        sz <<= 1;
    struct pci_bar *b = &d->bars[bar];
    *b = (struct pci_bar){ .type = type, .prefetch = prefetch, .size = sz, .ops = ops, .opaque = opaque };
    unsigned off = PCI_BASE_ADDRESS_0 + 4 * bar;
    cfg_set32(d, off, bar_type_bits(b));
    uint64_t mask = ~(sz - 1);
    if (type == PCI_BAR_IO)
        st_le(&d->wmask[off], 4, (uint32_t)mask & 0xfffffffc);
    else
        st_le(&d->wmask[off], 4, (uint32_t)mask & 0xfffffff0);
    if (type == PCI_BAR_MEM64)
        st_le(&d->wmask[off + 4], 4, (uint32_t)(mask >> 32));
}

void pci_set_rom(struct pci_device *d, const uint8_t *rom, uint64_t len)
{
    uint64_t sz = 2048;
    while (sz < len)
        sz <<= 1;
    d->rom = rom;
    d->rom_len = len;
    d->rom_size = sz;
    st_le(&d->wmask[PCI_ROM_ADDRESS], 4, (uint32_t)~(sz - 1) | 1);
}

uint8_t pci_add_cap(struct pci_device *d, const void *data, unsigned len)
{
    unsigned off = ALIGN_UP((unsigned)d->next_cap, 4u);
    if (len < 2 || off + len > PCI_CONFIG_SIZE)
        return 0;
    memcpy(&d->config[off], data, len);
    /* Link into the list: the newest capability goes last. */
    d->config[off + 1] = 0;
    if (!d->config[PCI_CAPABILITY_LIST]) {
        d->config[PCI_CAPABILITY_LIST] = (uint8_t)off;
    } else {
        uint8_t p = d->config[PCI_CAPABILITY_LIST];
        while (d->config[p + 1])
            p = d->config[p + 1];
        d->config[p + 1] = (uint8_t)off;
    }
    d->config[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
    d->next_cap = (uint8_t)MIN(off + len, 0xffu);
    return (uint8_t)off;
}

int pci_bus_add(struct pci_bus *bus, struct pci_device *d, int devfn)
{
    if (devfn < 0) {
        for (int slot = 0; slot < 32; slot++) {
            if (!bus->devices[slot << 3]) {
                devfn = slot << 3;
                break;
            }
        }
        if (devfn < 0)
            return -1;
    }
    if (devfn > 255 || bus->devices[devfn])
        return -1;
    bus->devices[devfn] = d;
    d->devfn = (uint8_t)devfn;
    d->bus = bus;
    /* Function 0 of a slot with more functions must say so. */
    if ((devfn & 7) && bus->devices[devfn & ~7])
        bus->devices[devfn & ~7]->config[PCI_HEADER_TYPE] |= PCI_HEADER_TYPE_MULTI;
    return 0;
}

/* --- BAR decoding ---------------------------------------------------- */

static struct io_bus *bar_bus(struct pci_device *d, const struct pci_bar *b)
{
    return b->type == PCI_BAR_IO ? d->bus->plat->pio : d->bus->plat->mmio;
}

static void unmap_bar(struct pci_device *d, int i)
{
    struct pci_bar *b = &d->bars[i];
    if (!b->mapped)
        return;
    io_bus_unregister(bar_bus(d, b), b->mapped_at, b);
    b->mapped = false;
    if (d->bar_remapped)
        d->bar_remapped(d, i);
}

/* Trampolines: the bus passes the pci_bar as opaque, the device sees its own. */
static uint64_t bar_read(void *opaque, uint64_t off, unsigned size)
{
    struct pci_bar *b = opaque;
    return b->ops->read ? b->ops->read(b->opaque, off, size) : ~0ULL;
}

static void bar_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
    struct pci_bar *b = opaque;
    if (b->ops->write)
        b->ops->write(b->opaque, off, size, v);
}

static const struct io_ops bar_trampoline = { bar_read, bar_write };

static uint64_t bar_address(const struct pci_device *d, int i)
{
    const struct pci_bar *b = &d->bars[i];
    unsigned off = PCI_BASE_ADDRESS_0 + 4 * i;
    uint64_t lo = cfg32(d, off);
    switch (b->type) {
    case PCI_BAR_IO: return lo & ~3ULL;
    case PCI_BAR_MEM32: return lo & ~15ULL;
    case PCI_BAR_MEM64: return (lo & ~15ULL) | (uint64_t)cfg32(d, off + 4) << 32;
    default: return 0;
    }
}

static void update_bar(struct pci_device *d, int i)
{
    struct pci_bar *b = &d->bars[i];
    if (b->type == PCI_BAR_NONE || !d->bus)
        return;
    uint16_t cmd = pci_cfg16(d, PCI_COMMAND);
    bool decode = b->type == PCI_BAR_IO ? (cmd & PCI_COMMAND_IO) : (cmd & PCI_COMMAND_MEMORY);
    uint64_t addr = bar_address(d, i);
    uint64_t limit = b->type == PCI_BAR_IO ? 0x10000 : (b->type == PCI_BAR_MEM32 ? 1ULL << 32 : 1ULL << 52);
    /* Address 0 and BARs that run off the end are not decoded (sizing leaves
     * all-ones in the BAR, which must not claim the top of the space). */
    bool valid = decode && addr != 0 && addr < limit && b->size <= limit - addr &&
                 !(b->type != PCI_BAR_IO && addr + b->size > 0xfec00000ULL && addr < 0x100000000ULL);
    if (b->mapped && valid && b->mapped_at == addr)
        return;
    unmap_bar(d, i);
    if (!valid)
        return;
    if (io_bus_register(bar_bus(d, b), addr, b->size, &bar_trampoline, b, d->name) < 0) {
        log_guest_error("%s: BAR%d at %#llx overlaps another device; not mapped",
                        d->name, i, (unsigned long long)addr);
        return;
    }
    b->mapped = true;
    b->mapped_at = addr;
    if (d->bar_remapped)
        d->bar_remapped(d, i);
}

static uint64_t rom_read(void *opaque, uint64_t off, unsigned size)
{
    struct pci_device *d = opaque;
    uint8_t buf[8] = { 0 };
    for (unsigned k = 0; k < size; k++)
        buf[k] = off + k < d->rom_len && d->rom ? d->rom[off + k] : 0;
    return ld_le(buf, size);
}

static const struct io_ops rom_ops = { rom_read, NULL };

static void update_rom(struct pci_device *d)
{
    if (!d->rom || !d->bus)
        return;
    uint32_t v = cfg32(d, PCI_ROM_ADDRESS);
    uint64_t addr = v & ~0x7ffULL;
    bool valid = (pci_cfg16(d, PCI_COMMAND) & PCI_COMMAND_MEMORY) && (v & 1) && addr &&
                 addr + d->rom_size <= 0xfec00000ULL;
    if (d->rom_mapped && valid && d->rom_mapped_at == addr)
        return;
    if (d->rom_mapped) {
        io_bus_unregister(d->bus->plat->mmio, d->rom_mapped_at, d);
        d->rom_mapped = false;
    }
    if (!valid)
        return;
    if (io_bus_register(d->bus->plat->mmio, addr, d->rom_size, &rom_ops, d, d->name) < 0) {
        log_guest_error("%s: ROM BAR at %#llx overlaps another device", d->name,
                        (unsigned long long)addr);
        return;
    }
    d->rom_mapped = true;
    d->rom_mapped_at = addr;
}

static void update_mappings(struct pci_device *d)
{
    for (int i = 0; i < PCI_NUM_BARS; i++)
        update_bar(d, i);
    update_rom(d);
}

/* --- INTx ------------------------------------------------------------- */

static void intx_update(struct pci_device *d)
{
    bool out = d->intx_level && !(pci_cfg16(d, PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE);
    if (d->intx_level)
        d->config[PCI_STATUS] |= PCI_STATUS_INTERRUPT;
    else
        d->config[PCI_STATUS] &= (uint8_t)~PCI_STATUS_INTERRUPT;
    if (out == d->intx_asserted)
        return;
    d->intx_asserted = out;
    uint8_t pin = d->config[PCI_INTERRUPT_PIN];
    if (pin && d->bus && d->bus->intx)
        d->bus->intx(d->bus->intx_opaque, d->devfn, pin, out);
}

void pci_set_intx(struct pci_device *d, bool level)
{
    d->intx_level = level;
    intx_update(d);
}

/* --- MSI-X ------------------------------------------------------------ */

static uint16_t msix_ctrl(const struct pci_device *d)
{
    return pci_cfg16(d, d->msix->cap + 2);
}

bool pci_msix_enabled(const struct pci_device *d)
{
    return d->msix && (msix_ctrl(d) & MSIX_CTRL_ENABLE);
}

static bool msix_masked(const struct pci_device *d, unsigned v)
{
    const uint8_t *e = &d->msix->table[v * MSIX_ENTRY_SIZE];
    return (msix_ctrl(d) & MSIX_CTRL_MASKALL) || (ld32(e + 12) & MSIX_ENTRY_CTRL_MASKBIT);
}

static void msix_fire(struct pci_device *d, unsigned v)
{
    struct pci_msix *m = d->msix;
    struct platform *p = d->bus->plat;
    if (m->routes[v] < 0) {
        m->routes[v] = p->ops->msi_alloc(p->opaque);
        if (m->routes[v] < 0) {
            log_error("%s: out of MSI routes", d->name);
            return;
        }
        const uint8_t *e = &m->table[v * MSIX_ENTRY_SIZE];
        p->ops->msi_set(p->opaque, m->routes[v], ld64(e), ld32(e + 8));
    }
    p->ops->msi_fire(p->opaque, m->routes[v]);
}

bool pci_msix_notify(struct pci_device *d, unsigned v)
{
    struct pci_msix *m = d->msix;
    if (!m || v >= m->nvec || !pci_msix_enabled(d) || !d->bus)
        return false;
    if (msix_masked(d, v)) {
        m->pba[v / 64] |= 1ULL << (v % 64);
        return true;
    }
    msix_fire(d, v);
    return true;
}

/* Delivers pending vectors that have become unmasked. */
static void msix_deliver_pending(struct pci_device *d)
{
    struct pci_msix *m = d->msix;
    if (!pci_msix_enabled(d))
        return;
    for (unsigned v = 0; v < m->nvec; v++) {
        if ((m->pba[v / 64] >> (v % 64) & 1) && !msix_masked(d, v)) {
            m->pba[v / 64] &= ~(1ULL << (v % 64));
            msix_fire(d, v);
        }
    }
}

static uint64_t msix_read(void *opaque, uint64_t off, unsigned size)
{
    struct pci_device *d = opaque;
    struct pci_msix *m = d->msix;
    uint8_t buf[8] = { 0 };
    for (unsigned k = 0; k < size; k++) {
        uint64_t o = off + k;
        if (o < m->nvec * MSIX_ENTRY_SIZE)
            buf[k] = m->table[o];
        else if (o >= MSIX_PBA_OFFSET && o < MSIX_PBA_OFFSET + 8 * ((m->nvec + 63) / 64))
            buf[k] = (uint8_t)(m->pba[(o - MSIX_PBA_OFFSET) / 8] >> (8 * ((o - MSIX_PBA_OFFSET) % 8)));
    }
    return ld_le(buf, size);
}

static void msix_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct pci_device *d = opaque;
    struct pci_msix *m = d->msix;
    if (off >= m->nvec * MSIX_ENTRY_SIZE || off + size > m->nvec * MSIX_ENTRY_SIZE)
        return;     /* PBA is read-only; writes elsewhere are ignored */
    unsigned v = (unsigned)(off / MSIX_ENTRY_SIZE);
    uint8_t *e = &m->table[v * MSIX_ENTRY_SIZE];
    uint8_t before[MSIX_ENTRY_SIZE];
    memcpy(before, e, sizeof(before));
    st_le(&m->table[off], size, val);
    /* Only bit 0 of vector control is defined; the rest reads as zero. */
    st32(e + 12, ld32(e + 12) & MSIX_ENTRY_CTRL_MASKBIT);
    if (memcmp(before, e, 12) && m->routes[v] >= 0) {
        struct platform *p = d->bus->plat;
        p->ops->msi_set(p->opaque, m->routes[v], ld64(e), ld32(e + 8));
    }
    msix_deliver_pending(d);
}

static const struct io_ops msix_ops = { msix_read, msix_write };

int pci_msix_init(struct pci_device *d, unsigned nvec, int bar)
{
    if (nvec == 0 || nvec > MSIX_MAX_VECTORS || bar < 0 || bar >= PCI_NUM_BARS)
        return -1;
    struct pci_msix *m = calloc(1, sizeof(*m));
    if (!m)
        return -1;
    m->nvec = nvec;
    m->bar = bar;
    m->table = calloc(nvec, MSIX_ENTRY_SIZE);
    m->pba = calloc((nvec + 63) / 64, sizeof(uint64_t));
    m->routes = malloc(nvec * sizeof(int));
    if (!m->table || !m->pba || !m->routes) {
        free(m->table);
        free(m->pba);
        free(m->routes);
        free(m);
        return -1;
    }
    for (unsigned v = 0; v < nvec; v++) {
        m->routes[v] = -1;
        st32(&m->table[v * MSIX_ENTRY_SIZE + 12], MSIX_ENTRY_CTRL_MASKBIT);
    }
    uint8_t cap[12] = { PCI_CAP_ID_MSIX, 0 };
    st_le(&cap[2], 2, nvec - 1);
    st_le(&cap[4], 4, (uint32_t)bar);                       /* table at 0 */
    st_le(&cap[8], 4, MSIX_PBA_OFFSET | (uint32_t)bar);     /* PBA */
    m->cap = pci_add_cap(d, cap, sizeof(cap));
    if (!m->cap) {
        free(m->table);
        free(m->pba);
        free(m->routes);
        free(m);
        return -1;
    }
    d->wmask[m->cap + 3] = (MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL) >> 8;
    d->msix = m;
    pci_add_bar(d, bar, PCI_BAR_MEM32, false, MSIX_BAR_SIZE, &msix_ops, d);
    return 0;
}

static void msix_reset(struct pci_device *d)
{
    struct pci_msix *m = d->msix;
    if (!m)
        return;
    memset(m->table, 0, m->nvec * MSIX_ENTRY_SIZE);
    for (unsigned v = 0; v < m->nvec; v++)
        st32(&m->table[v * MSIX_ENTRY_SIZE + 12], MSIX_ENTRY_CTRL_MASKBIT);
    memset(m->pba, 0, ((m->nvec + 63) / 64) * sizeof(uint64_t));
    d->config[m->cap + 3] &= (uint8_t)~((MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL) >> 8);
}

/* --- MSI ------------------------------------------------------------- */

#define MSI_CTRL_ENABLE  0x0001
#define MSI_CTRL_MME     0x0070     /* multiple message enable: we grant one */
#define MSI_CTRL_64BIT   0x0080

int pci_msi_init(struct pci_device *d)
{
    uint8_t cap[14] = { PCI_CAP_ID_MSI, 0 };
    st_le(&cap[2], 2, MSI_CTRL_64BIT);
    uint8_t off = pci_add_cap(d, cap, sizeof(cap));
    if (!off)
        return -1;
    d->msi_cap = off;
    d->wmask[off + 2] = MSI_CTRL_ENABLE | MSI_CTRL_MME;
    st_le(&d->wmask[off + 4], 4, 0xfffffffcu);     /* dword-aligned address */
    st_le(&d->wmask[off + 8], 4, 0xffffffffu);
    st_le(&d->wmask[off + 12], 2, 0xffffu);
    return 0;
}

bool pci_msi_enabled(const struct pci_device *d)
{
    return d->msi_cap && (pci_cfg16(d, d->msi_cap + 2) & MSI_CTRL_ENABLE);
}

static uint64_t msi_address(const struct pci_device *d)
{
    return cfg32(d, d->msi_cap + 4) | (uint64_t)cfg32(d, d->msi_cap + 8) << 32;
}

bool pci_msi_notify(struct pci_device *d)
{
    if (!pci_msi_enabled(d) || !d->bus)
        return false;
    struct platform *p = d->bus->plat;
    if (!d->msi_routed) {
        d->msi_route = p->ops->msi_alloc(p->opaque);
        if (d->msi_route < 0) {
            log_error("%s: out of MSI routes", d->name);
            return true;
        }
        d->msi_routed = true;
        p->ops->msi_set(p->opaque, d->msi_route, msi_address(d), pci_cfg16(d, d->msi_cap + 12));
    }
    p->ops->msi_fire(p->opaque, d->msi_route);
    return true;
}

/* The guest reprogrammed address or data: the route follows. */
static void msi_update(struct pci_device *d)
{
    if (!d->msi_routed)
        return;
    struct platform *p = d->bus->plat;
    p->ops->msi_set(p->opaque, d->msi_route, msi_address(d), pci_cfg16(d, d->msi_cap + 12));
}

static void msi_reset(struct pci_device *d)
{
    if (!d->msi_cap)
        return;
    d->config[d->msi_cap + 2] = 0;
    memset(&d->config[d->msi_cap + 4], 0, 10);
    msi_update(d);
}

static void msi_free(struct pci_device *d)
{
    struct platform *p = d->bus ? d->bus->plat : NULL;
    if (d->msi_routed && p && p->ops->msi_free)
        p->ops->msi_free(p->opaque, d->msi_route);
    d->msi_routed = false;
}

/* --- configuration access -------------------------------------------- */

uint32_t pci_config_read(struct pci_bus *bus, uint8_t devfn, unsigned off, unsigned size)
{
    struct pci_device *d = bus->devices[devfn];
    if (!d || size == 0 || size > 4 || off >= PCI_CONFIG_SIZE || off + size > PCI_CONFIG_SIZE)
        return size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
    uint32_t v = (uint32_t)ld_le(&d->config[off], size);
    if (d->config_read)
        v = d->config_read(d, off, size, v);
    return v;
}

static bool overlaps(unsigned off, unsigned size, unsigned start, unsigned len)
{
    return off < start + len && start < off + size;
}

void pci_config_write(struct pci_bus *bus, uint8_t devfn, unsigned off, unsigned size, uint32_t val)
{
    struct pci_device *d = bus->devices[devfn];
    if (!d || size == 0 || size > 4 || off >= PCI_CONFIG_SIZE || off + size > PCI_CONFIG_SIZE)
        return;
    for (unsigned k = 0; k < size; k++) {
        uint8_t b = (uint8_t)(val >> (8 * k));
        unsigned o = off + k;
        d->config[o] = (uint8_t)((d->config[o] & ~d->wmask[o]) | (b & d->wmask[o]));
        d->config[o] &= (uint8_t)~(b & d->w1cmask[o]);
    }
    if (overlaps(off, size, PCI_COMMAND, 2) || overlaps(off, size, PCI_BASE_ADDRESS_0, 24) ||
        overlaps(off, size, PCI_ROM_ADDRESS, 4))
        update_mappings(d);
    if (overlaps(off, size, PCI_COMMAND, 2))
        intx_update(d);
    if (d->msix && overlaps(off, size, d->msix->cap + 2, 2))
        msix_deliver_pending(d);
    if (d->msi_cap && overlaps(off, size, d->msi_cap + 4, 10))
        msi_update(d);
    if (d->config_write)
        d->config_write(d, off, size, val);
}

void pci_device_reset(struct pci_device *d)
{
    cfg_set16(d, PCI_COMMAND, 0);
    d->config[PCI_STATUS + 1] = 0;
    for (int i = 0; i < PCI_NUM_BARS; i++) {
        struct pci_bar *b = &d->bars[i];
        unsigned off = PCI_BASE_ADDRESS_0 + 4 * i;
        if (b->type == PCI_BAR_NONE)
            continue;
        unmap_bar(d, i);
        cfg_set32(d, off, bar_type_bits(b));
        if (b->type == PCI_BAR_MEM64)
            cfg_set32(d, off + 4, 0);
    }
    if (d->rom) {
        cfg_set32(d, PCI_ROM_ADDRESS, 0);
        update_rom(d);
    }
    d->config[PCI_INTERRUPT_LINE] = 0;
    d->config[0x0c] = 0;
    d->config[0x0d] = 0;
    msix_reset(d);
    msi_reset(d);
    d->intx_level = false;
    intx_update(d);
    if (d->reset)
        d->reset(d);
}

void pci_bus_reset(struct pci_bus *bus)
{
    for (int i = 0; i < 256; i++)
        if (bus->devices[i])
            pci_device_reset(bus->devices[i]);
}

static void msix_free(struct pci_device *d)
{
    struct pci_msix *m = d->msix;
    if (!m)
        return;
    struct platform *p = d->bus ? d->bus->plat : NULL;
    for (unsigned v = 0; v < m->nvec; v++)
        if (m->routes[v] >= 0 && p && p->ops->msi_free)
            p->ops->msi_free(p->opaque, m->routes[v]);
    free(m->table);
    free(m->pba);
    free(m->routes);
    free(m);
    d->msix = NULL;
}

void pci_bus_remove(struct pci_device *d)
{
    if (d->bus) {
        /* Clearing the command register unmaps every BAR and the ROM. */
        cfg_set16(d, PCI_COMMAND, 0);
        update_mappings(d);
        d->intx_level = false;
        intx_update(d);
    }
    msix_free(d);    /* routes exist only on a bus, so this order holds */
    msi_free(d);
    if (d->bus) {
        d->bus->devices[d->devfn] = NULL;
        d->bus = NULL;
    }
}
