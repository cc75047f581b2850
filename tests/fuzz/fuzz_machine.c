/* The op interpreter of the device fuzz targets; see fuzz_machine.h. */
#include "fuzz/fuzz_machine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/evloop.h"
#include "devices/util.h"

static void die(const char *what)
{
    fprintf(stderr, "fuzz: %s\n", what);
    abort();
}

void fz_init(struct fz *f)
{
    memset(f, 0, sizeof(*f));
    f->h = harness_new(FZ_RAM_SIZE);
    if (!f->h)
        die("cannot make the harness");
    harness_pci_bus_init(&f->bus, f->h);
}

void fz_fini(struct fz *f)
{
    harness_free(f->h);
    f->h = NULL;
}

static void add_window(struct fz *f, struct fz_window w)
{
    if (f->nwin == FZ_MAX_WIN)
        die("too many windows");
    f->win[f->nwin++] = w;
}

void fz_add_pio(struct fz *f, const char *name, uint16_t base, uint16_t len)
{
    add_window(f, (struct fz_window){ .name = name, .pio = true, .base = base, .len = len, .bar = -1 });
}

void fz_add_mmio(struct fz *f, const char *name, uint64_t base, uint64_t len)
{
    add_window(f, (struct fz_window){ .name = name, .base = base, .len = len, .bar = -1 });
}

void fz_add_bar(struct fz *f, const char *name, struct pci_device *d, int bar)
{
    if (bar < 0 || bar >= PCI_NUM_BARS || d->bars[bar].type == PCI_BAR_NONE)
        die("no such BAR");
    add_window(f, (struct fz_window){ .name = name, .pio = d->bars[bar].type == PCI_BAR_IO,
                                      .len = d->bars[bar].size, .pci = d, .bar = bar });
}

void fz_add_rom(struct fz *f, const char *name, struct pci_device *d)
{
    if (!d->rom)
        die("no ROM");
    add_window(f, (struct fz_window){ .name = name, .len = d->rom_size, .pci = d, .bar = FZ_ROM });
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

void fz_place_bars(struct fz *f)
{
    uint64_t mem = FZ_MMIO_BASE, io = FZ_IO_BASE;
    for (int devfn = 0; devfn < 256; devfn++) {
        struct pci_device *d = f->bus.devices[devfn];
        if (!d)
            continue;
        for (int i = 0; i < PCI_NUM_BARS; i++) {
            const struct pci_bar *b = &d->bars[i];
            unsigned off = PCI_BASE_ADDRESS_0 + 4 * (unsigned)i;
            if (b->type == PCI_BAR_NONE)
                continue;
            if (b->type == PCI_BAR_IO) {
                io = align_up(io, b->size);
                pci_config_write(&f->bus, (uint8_t)devfn, off, 4, (uint32_t)io);
                io += b->size;
                continue;
            }
            mem = align_up(mem, b->size);
            pci_config_write(&f->bus, (uint8_t)devfn, off, 4, (uint32_t)mem);
            if (b->type == PCI_BAR_MEM64) {
                pci_config_write(&f->bus, (uint8_t)devfn, off + 4, 4, (uint32_t)(mem >> 32));
                i++;
            }
            mem += b->size;
        }
        if (d->rom) {
            mem = align_up(mem, d->rom_size);
            pci_config_write(&f->bus, (uint8_t)devfn, PCI_ROM_ADDRESS, 4, (uint32_t)mem | 1);
            mem += d->rom_size;
        }
        pci_config_write(&f->bus, (uint8_t)devfn, PCI_COMMAND, 2,
                         PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    }
}

bool fz_more(const struct fz *f)
{
    return f->pos < f->size;
}

uint8_t fz_u8(struct fz *f)
{
    return f->pos < f->size ? f->data[f->pos++] : 0;
}

uint64_t fz_le(struct fz *f, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)fz_u8(f) << (8 * i);
    return v;
}

size_t fz_bytes(struct fz *f, void *dst, size_t len)
{
    size_t n = MIN(len, f->size - f->pos);
    memcpy(dst, f->data + f->pos, n);
    f->pos += n;
    return n;
}

void fz_loop(struct fz *f)
{
    evloop_run_once(f->h->plat.loop, 0);
}

/* FUZZ_TRACE=1 in the environment prints every access (seed writing,
 * replaying a crash). */
static int trace = -1;

static bool tracing(void)
{
    if (trace < 0)
        trace = getenv("FUZZ_TRACE") != NULL;
    return trace;
}

static unsigned offset_bytes(uint64_t len)
{
    return len <= 0x100 ? 1 : len <= 0x10000 ? 2 : 3;
}

/* The guest address of window offset off, or false when it is not mapped. */
static bool window_addr(const struct fz_window *w, uint64_t off, uint64_t *addr)
{
    if (!w->pci) {
        *addr = w->base + off;
        return true;
    }
    if (w->bar == FZ_ROM) {
        *addr = w->pci->rom_mapped_at + off;
        return w->pci->rom_mapped;
    }
    const struct pci_bar *b = &w->pci->bars[w->bar];
    if (!b->mapped)
        return false;
    *addr = b->mapped_at + off;
    return true;
}

static void guest_access(struct fz *f, bool write, unsigned size)
{
    const struct fz_window *w = &f->win[fz_u8(f) % f->nwin];
    uint64_t off = fz_le(f, offset_bytes(w->len)) % w->len;
    if (w->pio && size > 4)
        size = 4;
    uint64_t v = write ? fz_le(f, size) : 0;
    uint64_t addr;
    if (!window_addr(w, off, &addr)) {
        if (tracing())
            fprintf(stderr, "fuzz: %s+%#llx: not mapped\n", w->name, (unsigned long long)off);
        return;
    }
    if (w->pio) {
        if (write)
            harness_pio_write(f->h, (uint16_t)addr, size, v);
        else
            v = harness_pio_read(f->h, (uint16_t)addr, size);
    } else {
        if (write)
            harness_mmio_write(f->h, addr, size, v);
        else
            v = harness_mmio_read(f->h, addr, size);
    }
    if (tracing())
        fprintf(stderr, "fuzz: %s %s+%#llx/%u %s %#llx\n", write ? "write" : "read ", w->name,
                (unsigned long long)off, size, write ? "<-" : "->", (unsigned long long)v);
}

static void reset(struct fz *f)
{
    if (f->hooks.reset)
        f->hooks.reset(f);
    else
        pci_bus_reset(&f->bus);
    fz_place_bars(f);
}

void fz_run(struct fz *f, const uint8_t *data, size_t len)
{
    f->data = data;
    f->size = len;
    f->pos = 0;
    while (fz_more(f)) {
        uint8_t op = fz_u8(f);
        unsigned size = 1u << ((op >> 3) & 3);
        unsigned arg = op >> 5;
        switch ((enum fz_op)(op & 7)) {
        case FZ_READ:
        case FZ_WRITE:
            if (f->nwin)
                guest_access(f, (op & 7) == FZ_WRITE, size);
            break;
        case FZ_RAM: {
            uint64_t addr = fz_le(f, 2);
            unsigned count = fz_u8(f);
            uint8_t buf[256];
            size_t n = fz_bytes(f, buf, count ? count : 256);
            /* Copies what fits below the end of RAM. */
            n = MIN(n, (size_t)(FZ_RAM_SIZE - addr));
            memcpy(f->h->ram + addr, buf, n);
            if (tracing())
                fprintf(stderr, "fuzz: ram %#llx: %zu bytes\n", (unsigned long long)addr, n);
            break;
        }
        case FZ_LOOP:
            if (tracing())
                fprintf(stderr, "fuzz: loop x%u\n", arg + 1);
            for (unsigned i = 0; i <= arg; i++)
                fz_loop(f);
            f->now_ns += 1000000ull << arg;
            break;
        case FZ_CFG_READ:
        case FZ_CFG_WRITE: {
            unsigned off = fz_u8(f);
            if (size > 4)
                size = 4;
            uint32_t v = (uint32_t)fz_le(f, (op & 7) == FZ_CFG_WRITE ? size : 0);
            if (!f->pci)
                break;
            if ((op & 7) == FZ_CFG_WRITE)
                pci_config_write(&f->bus, f->pci->devfn, off, size, v);
            else
                v = pci_config_read(&f->bus, f->pci->devfn, off, size);
            if (tracing())
                fprintf(stderr, "fuzz: config %s %#x/%u %s %#x\n", (op & 7) == FZ_CFG_WRITE ? "write" : "read ",
                        off, size, (op & 7) == FZ_CFG_WRITE ? "<-" : "->", v);
            break;
        }
        case FZ_TARGET:
            if (tracing())
                fprintf(stderr, "fuzz: target op %u\n", arg);
            if (f->hooks.target)
                f->hooks.target(f, arg);
            break;
        case FZ_RESET:
            if (tracing())
                fprintf(stderr, "fuzz: %s\n", arg & 1 ? "loop" : "reset");
            if (arg & 1)
                fz_loop(f);
            else
                reset(f);
            break;
        }
    }
    if (tracing()) {
        unsigned raises = 0;
        for (int i = 0; i < HARNESS_MAX_GSI; i++)
            raises += f->h->irq_raises[i];
        fprintf(stderr, "fuzz: end: %u interrupt edges, %u MSIs, %u resets, %u power-offs requested\n",
                raises, f->h->msi_total, f->h->resets, f->h->poweroffs);
    }
}

static char image_paths[8][512];
static unsigned nimages;

static void remove_images(void)
{
    for (unsigned i = 0; i < nimages; i++)
        unlink(image_paths[i]);
}

const char *fz_image(const char *tag, uint64_t size, int *fd)
{
    if (nimages == 8)
        die("too many images");
    const char *t = getenv("TMPDIR");
    char *path = image_paths[nimages];
    snprintf(path, sizeof(image_paths[0]), "%s/burrow-fuzz-%s-XXXXXX", t && *t ? t : "/tmp", tag);
    *fd = mkstemp(path);
    if (*fd < 0 || ftruncate(*fd, (off_t)size) < 0)
        die("cannot make a temporary image");
    if (nimages++ == 0)
        atexit(remove_images);
    return path;
}

void fz_image_zero(int fd, uint64_t size)
{
    if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)size) < 0)
        die("cannot clear the temporary image");
}
