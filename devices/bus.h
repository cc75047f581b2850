/* Port-I/O and MMIO dispatch.  A device registers [base, base+len) with a
 * read and a write callback; offsets passed to them are relative to base.
 * Accesses nobody claims read as all-ones and are ignored on write. */
#ifndef BURROW_BUS_H
#define BURROW_BUS_H

#include <stdint.h>
#include <stdbool.h>

struct io_ops {
    uint64_t (*read)(void *opaque, uint64_t offset, unsigned size);
    void (*write)(void *opaque, uint64_t offset, unsigned size, uint64_t value);
};

struct io_range {
    uint64_t base, len;
    const struct io_ops *ops;
    void *opaque;
    const char *name;
};

struct io_bus {
    struct io_range *ranges;  /* sorted by base, non-overlapping */
    unsigned nranges, cap;
    const char *name;         /* "pio" or "mmio", for messages */
};

void io_bus_init(struct io_bus *bus, const char *name);
void io_bus_destroy(struct io_bus *bus);
/* Returns 0, or -1 when the range overlaps an existing one or is empty. */
int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len,
                    const struct io_ops *ops, void *opaque, const char *name);
/* Removes the range that starts at base and belongs to opaque; -1 if none. */
int io_bus_unregister(struct io_bus *bus, uint64_t base, void *opaque);
const struct io_range *io_bus_find(const struct io_bus *bus, uint64_t addr);

/* Dispatch; return false when no device claimed the address. */
bool io_bus_read(struct io_bus *bus, uint64_t addr, unsigned size, uint64_t *value);
bool io_bus_write(struct io_bus *bus, uint64_t addr, unsigned size, uint64_t value);

#endif
