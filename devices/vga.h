/* Standard PCI VGA (1234:1111, class 0300h): the VGA register set and memory
 * window, the Bochs VBE "DISPI" registers with a linear framebuffer, and the
 * VGA BIOS in the PCI expansion ROM.  This is the device SeaBIOS's
 * vgabios-stdvga.bin and Linux's bochs-drm drive.
 *
 *   BAR0  16 MiB prefetchable memory: video memory (the linear framebuffer)
 *   BAR2  4 KiB MMIO: 0x400-0x41f VGA ports 0x3c0-0x3df, 0x500-0x515 DISPI
 *         registers (16-bit, index * 2), 0x600 extended registers (size,
 *         byte order)
 *   ROM   the VGA BIOS image
 *   legacy ports 0x3b0-0x3df, DISPI index/data 0x1ce/0x1cf, memory window
 *         0xa0000-0xbffff on the machine's buses
 *
 * Video memory is ordinary host memory.  The machine may map it into the
 * guest directly (a KVM memory slot with dirty logging at the BAR0 address,
 * followed through the map callback) and report the pages the guest dirtied
 * through the dirty-sync callback, which runs at the start of every display
 * refresh.  Without that, BAR0 accesses arrive as MMIO and mark their pages
 * themselves. */
#ifndef BURROW_VGA_H
#define BURROW_VGA_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "devices/display.h"
#include "devices/pci.h"
#include "devices/platform.h"

#define VGA_VRAM_SIZE      (16u << 20)
#define VGA_LEGACY_MEM     0xa0000ULL
#define VGA_LEGACY_MEM_LEN 0x20000ULL

struct vga;

/* Creates the device at the first free slot of bus, claims the legacy ports
 * and memory window, and becomes disp's source (disp may be NULL: nothing is
 * rendered).  rom_path: the VGA BIOS image for the ROM BAR, or NULL for none.
 * Returns NULL with a message in err on failure (missing or invalid ROM,
 * legacy resources already taken, no memory). */
struct vga *vga_create(struct platform *p, struct pci_bus *bus, struct display *disp,
                       const char *rom_path, char *err, size_t errlen);
void vga_destroy(struct vga *v);
struct pci_device *vga_pci(struct vga *v);

/* Video memory: host pointer (page aligned) and size. */
uint8_t *vga_vram(struct vga *v, uint64_t *size);

/* Called after BAR0 is mapped at gpa or unmapped (mapped false), so the
 * machine can move its memory slot. */
typedef void (*vga_vram_map_fn)(void *opaque, bool mapped, uint64_t gpa);
void vga_set_vram_map_cb(struct vga *v, vga_vram_map_fn fn, void *opaque);

/* Called at the start of every refresh, before rendering: the machine
 * fetches the dirty log of the video memory slot and passes it to
 * vga_mark_dirty_pages(). */
typedef void (*vga_dirty_sync_fn)(void *opaque, struct vga *v);
void vga_set_dirty_sync(struct vga *v, vga_dirty_sync_fn fn, void *opaque);

/* ORs a dirty-page bitmap (bit i of word i/64: page first_page + i, 4 KiB
 * pages, KVM_GET_DIRTY_LOG's layout) into the device's; pages past the end
 * of video memory are ignored. */
void vga_mark_dirty_pages(struct vga *v, const uint64_t *bitmap, uint64_t first_page,
                          uint64_t npages);
/* Marks a byte range of video memory changed (host-side writers). */
void vga_mark_dirty(struct vga *v, uint64_t offset, uint64_t len);

/* The clock that drives cursor and text blink (default: evloop_now_ns);
 * tests set their own. */
void vga_set_clock(struct vga *v, uint64_t (*now_ns)(void *opaque), void *opaque);

/* Refreshes drawn with any change since creation (for tests). */
unsigned vga_frames(const struct vga *v);

#endif
