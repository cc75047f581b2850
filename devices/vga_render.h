/* Rendering of the VGA's modes into a display surface.
 *
 * The register file and video memory live in struct vga_state (owned by the
 * device model, devices/vga.c); the renderer reads them and keeps only what
 * it needs to redraw what changed: the last mode's parameters, the palette,
 * a shadow of the text cells and of the fonts, and where it drew the cursor.
 *
 * Video memory layout: the four VGA planes are interleaved, byte p of plane
 * address a at vram[a * 4 + p], so a VBE linear framebuffer and the planes
 * share one buffer.  Plane addresses are what the CRTC generates (its byte,
 * word and doubleword address modes), and host accesses through the legacy
 * window reach them as on a VGA: odd/even mode drops address bit 0 (it picks
 * the plane), chain-4 drops bits 0-1.
 *
 * Changes are found through a dirty bitmap with one bit per 4 KiB page of
 * video memory, set by the device for its own writes and by the machine from
 * KVM's dirty log; each refresh takes and clears it. */
#ifndef BURROW_VGA_RENDER_H
#define BURROW_VGA_RENDER_H

#include <stdint.h>
#include <stdbool.h>

#include "devices/display.h"

#define VGA_PAGE_SHIFT 12

/* Bochs VBE "DISPI" register indices and values (vbe_display_api). */
enum {
    VBE_DISPI_INDEX_ID = 0,
    VBE_DISPI_INDEX_XRES,
    VBE_DISPI_INDEX_YRES,
    VBE_DISPI_INDEX_BPP,
    VBE_DISPI_INDEX_ENABLE,
    VBE_DISPI_INDEX_BANK,
    VBE_DISPI_INDEX_VIRT_WIDTH,
    VBE_DISPI_INDEX_VIRT_HEIGHT,
    VBE_DISPI_INDEX_X_OFFSET,
    VBE_DISPI_INDEX_Y_OFFSET,
    VBE_DISPI_INDEX_VIDEO_MEMORY_64K,
    VBE_DISPI_INDEX_NB
};
#define VBE_DISPI_ID0          0xb0c0
#define VBE_DISPI_ID5          0xb0c5
#define VBE_DISPI_DISABLED     0x00
#define VBE_DISPI_ENABLED      0x01
#define VBE_DISPI_GETCAPS      0x02
#define VBE_DISPI_8BIT_DAC     0x20
#define VBE_DISPI_LFB_ENABLED  0x40
#define VBE_DISPI_NOCLEARMEM   0x80
#define VBE_DISPI_MAX_XRES     4096
#define VBE_DISPI_MAX_YRES     4096
#define VBE_DISPI_MAX_BPP      32

/* Register counts (VGA): sequencer, graphics controller, attribute
 * controller, CRT controller. */
#define VGA_SR_COUNT 5
#define VGA_GR_COUNT 9
#define VGA_AR_COUNT 0x15
#define VGA_CR_COUNT 0x19

struct vga_state {
    uint8_t *vram;
    uint32_t vram_size;          /* power of two, >= 256 KiB */
    uint64_t *dirty;             /* vram_size >> VGA_PAGE_SHIFT bits */

    uint8_t misc;                /* miscellaneous output (0x3c2 / 0x3cc) */
    uint8_t fcr;                 /* feature control */
    uint8_t st01;                /* input status 1: retrace bits toggle */
    uint8_t sr_index, sr[VGA_SR_COUNT];
    uint8_t gr_index, gr[VGA_GR_COUNT];
    uint8_t ar_index, ar[VGA_AR_COUNT];
    bool ar_flip;                /* attribute controller: next write is data */
    uint8_t cr_index, cr[VGA_CR_COUNT];
    uint8_t dac[256 * 3];        /* as written: 6 bits, or 8 with 8BIT_DAC */
    uint8_t dac_mask;            /* pixel mask 0x3c6 */
    uint8_t dac_read_index, dac_write_index, dac_sub;
    bool dac_reading;            /* last index written was the read index */
    uint8_t latch[4];            /* graphics controller latches */

    uint16_t vbe_index;
    uint16_t vbe[VBE_DISPI_INDEX_NB];
    uint32_t vbe_start;          /* byte offset of the visible VBE frame */
    uint32_t vbe_pitch;          /* bytes per VBE line */
};

/* Marks [off, off+len) of video memory changed. */
void vga_state_mark(struct vga_state *s, uint64_t off, uint64_t len);

/* Bytes per pixel of a VBE depth; 0 for 4 bpp (planar: drawn through the
 * VGA registers) and for depths the device does not offer. */
unsigned vga_vbe_bytes_pp(unsigned bpp);

struct vga_mode_info;

struct vga_renderer {
    struct vga_mode_info *mode;  /* last rendered mode, NULL before any */
    uint32_t pal[256];           /* DAC as XRGB */
    uint64_t *snap;              /* this refresh's dirty pages */
    uint16_t *cells;             /* text shadow: char | attr << 8 */
    unsigned ncells;
    uint8_t *font;               /* shadow of the two fonts in use (2 x 8 KiB) */
    bool cursor_drawn;           /* cursor visible in the last frame */
    uint32_t cursor_cell;        /* cell index it was drawn in */
    bool cursor_enabled;         /* CRTC cursor on and inside the screen */
    unsigned cursor_col, cursor_row;
    bool blink_on;               /* character blink phase of the last frame */
    unsigned frames;             /* refreshes that drew anything (tests) */
};

void vga_render_init(struct vga_renderer *r);
void vga_render_free(struct vga_renderer *r);
/* The next refresh redraws everything. */
void vga_render_invalidate(struct vga_renderer *r);
/* Renders what changed since the last call; now_ns drives cursor and text
 * blink (cursor every 16 frames of 60 Hz, characters every 32, as a VGA). */
void vga_render_refresh(struct vga_renderer *r, struct vga_state *s, struct display *d,
                        uint64_t now_ns);
/* The text cells as last rendered; false when not in a text mode. */
bool vga_render_text(const struct vga_renderer *r, struct display_text *t);

#endif
