#include "devices/guest_mem.h"

#include <string.h>

int guest_mem_add(struct guest_mem *m, uint64_t gpa, uint64_t size, void *hva)
{
    if (m->nregions >= GUEST_MEM_MAX_REGIONS)
        return -1;
    m->regions[m->nregions++] = (struct guest_mem_region){ gpa, size, hva };
    return 0;
}

void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
    for (unsigned i = 0; i < m->nregions; i++) {
        const struct guest_mem_region *r = &m->regions[i];
        if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
            return r->hva + (gpa - r->gpa);
    }
    return NULL;
}

const struct guest_mem_region *guest_mem_region_of(const struct guest_mem *m, uint64_t gpa)
{
    for (unsigned i = 0; i < m->nregions; i++)
        if (gpa >= m->regions[i].gpa && gpa - m->regions[i].gpa < m->regions[i].size)
            return &m->regions[i];
    return NULL;
}

/* Copies across region boundaries only where regions are contiguous. */
static int guest_mem_copy(const struct guest_mem *m, uint64_t gpa, void *buf, size_t len, bool write)
{
    uint8_t *p = buf;
    while (len) {
        const struct guest_mem_region *r = guest_mem_region_of(m, gpa);
        if (!r)
            return -1;
        uint64_t off = gpa - r->gpa;
        size_t n = len < r->size - off ? len : (size_t)(r->size - off);
        if (write)
            memcpy(r->hva + off, p, n);
        else
            memcpy(p, r->hva + off, n);
        p += n;
        gpa += n;
        len -= n;
    }
    return 0;
}

int guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *buf, size_t len)
{
    return guest_mem_copy(m, gpa, buf, len, false);
}

int guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *buf, size_t len)
{
    return guest_mem_copy(m, gpa, (void *)buf, len, true);
}

uint64_t guest_mem_total(const struct guest_mem *m)
{
    uint64_t t = 0;
    for (unsigned i = 0; i < m->nregions; i++)
        t += m->regions[i].size;
    return t;
}
