/* Guest OS types: each picks the defaults a new VM of that kind gets.
 *
 * Linux guests get paravirtual devices (virtio disk and NIC), which every
 * distribution kernel drives out of the box.  Windows has no virtio drivers
 * on its installation media, so it gets AHCI (SATA) and an e1000 NIC, which
 * it drives natively.  Memory and disk sizes follow the installers' stated
 * minimums with some room (Windows 11 wants 4 GiB and 64 GB).  Desktop
 * systems get a sound card played on the host's desktop, as VirtualBox
 * gives them; the generic and unknown types (servers, old systems) none. */
#include <strings.h>

#include "app/ostypes.h"

static const struct burrow_ostype table[] = {
    { "linux64", "Linux (64-bit, generic)", "linux", 1024, 1, 16, "virtio", "virtio", "sdl", "off" },
    { "debian",  "Debian (64-bit)",         "linux", 2048, 2, 20, "virtio", "virtio", "sdl", "pa" },
    { "ubuntu",  "Ubuntu (64-bit)",         "linux", 4096, 2, 25, "virtio", "virtio", "sdl", "pa" },
    { "fedora",  "Fedora (64-bit)",         "linux", 4096, 2, 20, "virtio", "virtio", "sdl", "pa" },
    { "arch",    "Arch Linux (64-bit)",     "linux", 2048, 2, 20, "virtio", "virtio", "sdl", "pa" },
    { "win10",   "Windows 10 (64-bit)",     "windows", 4096, 2, 64, "sata", "e1000", "sdl", "pa" },
    { "win11",   "Windows 11 (64-bit)",     "windows", 4096, 2, 64, "sata", "e1000", "sdl", "pa" },
    { "other",   "Other/Unknown",           "other", 512, 1, 2, "sata", "e1000", "sdl", "off" },
    { NULL, NULL, NULL, 0, 0, 0, NULL, NULL, NULL, NULL },
};

const struct burrow_ostype *burrow_ostypes(void)
{
    return table;
}

size_t ostypes_count(void)
{
    return sizeof(table) / sizeof(table[0]) - 1;
}

const struct burrow_ostype *burrow_ostype_find(const char *id)
{
    if (!id)
        return NULL;
    for (const struct burrow_ostype *t = table; t->id; t++)
        if (!strcasecmp(t->id, id))
            return t;
    return NULL;
}

const struct burrow_ostype *burrow_ostype_default(void)
{
    return &table[0];
}
