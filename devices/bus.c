#include "devices/bus.h"

#include <stdlib.h>
#include <string.h>

void io_bus_init(struct io_bus *bus, const char *name)
{
    memset(bus, 0, sizeof(*bus));
    bus->name = name;
}

void io_bus_destroy(struct io_bus *bus)
{
    free(bus->ranges);
    memset(bus, 0, sizeof(*bus));
}

/* Index of the first range whose base is > addr. */
static unsigned upper_bound(const struct io_bus *bus, uint64_t addr)
{
    unsigned lo = 0, hi = bus->nranges;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (bus->ranges[mid].base <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len,
                    const struct io_ops *ops, void *opaque, const char *name)
{
    if (len == 0 || base + len - 1 < base)
        return -1;
    unsigned i = upper_bound(bus, base);
    if (i > 0) {
        const struct io_range *prev = &bus->ranges[i - 1];
        if (prev->base + prev->len - 1 >= base)
            return -1;
    }
    if (i < bus->nranges && bus->ranges[i].base <= base + len - 1)
        return -1;
    if (bus->nranges == bus->cap) {
        unsigned cap = bus->cap ? bus->cap * 2 : 16;
        struct io_range *r = realloc(bus->ranges, cap * sizeof(*r));
        if (!r)
            return -1;
        bus->ranges = r;
        bus->cap = cap;
    }
    memmove(&bus->ranges[i + 1], &bus->ranges[i], (bus->nranges - i) * sizeof(*bus->ranges));
    bus->ranges[i] = (struct io_range){ base, len, ops, opaque, name };
    bus->nranges++;
    return 0;
}

int io_bus_unregister(struct io_bus *bus, uint64_t base, void *opaque)
{
    for (unsigned i = 0; i < bus->nranges; i++) {
        if (bus->ranges[i].base == base && bus->ranges[i].opaque == opaque) {
            memmove(&bus->ranges[i], &bus->ranges[i + 1],
                    (bus->nranges - i - 1) * sizeof(*bus->ranges));
            bus->nranges--;
            return 0;
        }
    }
    return -1;
}

const struct io_range *io_bus_find(const struct io_bus *bus, uint64_t addr)
{
    unsigned i = upper_bound(bus, addr);
    if (i == 0)
        return NULL;
    const struct io_range *r = &bus->ranges[i - 1];
    return addr - r->base < r->len ? r : NULL;
}

bool io_bus_read(struct io_bus *bus, uint64_t addr, unsigned size, uint64_t *value)
{
    const struct io_range *r = io_bus_find(bus, addr);
    if (!r || !r->ops->read) {
        *value = size >= 8 ? ~0ULL : (1ULL << (8 * size)) - 1;
        return r != NULL;
    }
    *value = r->ops->read(r->opaque, addr - r->base, size);
    return true;
}

bool io_bus_write(struct io_bus *bus, uint64_t addr, unsigned size, uint64_t value)
{
    const struct io_range *r = io_bus_find(bus, addr);
    if (!r)
        return false;
    if (r->ops->write)
        r->ops->write(r->opaque, addr - r->base, size, value);
    return true;
}
