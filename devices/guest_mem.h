/* Guest physical memory as seen by device models (DMA) and the loaders.
 * Every access is bounds-checked against the RAM regions: a guest-supplied
 * address that is not wholly inside one region is refused. */
#ifndef BURROW_GUEST_MEM_H
#define BURROW_GUEST_MEM_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

#define GUEST_MEM_MAX_REGIONS 8

struct guest_mem_region {
    uint64_t gpa;    /* guest physical start */
    uint64_t size;
    uint8_t *hva;    /* host mapping */
};

struct guest_mem {
    struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
    unsigned nregions;
};

/* Adds a region (no overlap check beyond assert); returns 0 or -1 if full. */
int guest_mem_add(struct guest_mem *m, uint64_t gpa, uint64_t size, void *hva);

/* The region holding gpa, or NULL when gpa is not RAM. */
const struct guest_mem_region *guest_mem_region_of(const struct guest_mem *m, uint64_t gpa);

/* Host pointer for [gpa, gpa+len) if it lies wholly in one region, else NULL. */
void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* Copies; return 0 on success, -1 if any byte is outside guest RAM. */
int guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *buf, size_t len);
int guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *buf, size_t len);

/* Total RAM bytes. */
uint64_t guest_mem_total(const struct guest_mem *m);

#endif
