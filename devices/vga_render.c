/* VGA and VBE modes drawn into the display surface, redrawing only what
 * changed.  Register meanings follow the VGA register reference (sequencer
 * SR, graphics controller GR, attribute controller AR, CRTC CR). */
#include "devices/vga_render.h"

#include <stdlib.h>
#include <string.h>

#include "devices/util.h"

enum vga_kind { K_BLANK = 1, K_TEXT, K_PLANAR, K_CGA4, K_256, K_VBE };

#define FONT_BYTES 8192u        /* one character map: 256 glyphs x 32 lines */
#define FRAME_NS   16666667ULL  /* one frame at 60 Hz */

/* Everything that, when it changes, needs the whole screen redrawn.  Built
 * zeroed so it can be compared with memcmp. */
struct vga_mode_info {
    int kind;
    unsigned width, height;
    /* CRTC scan-out */
    uint32_t start;             /* start address, in memory-address units */
    uint32_t row_ma;            /* address step per character row */
    unsigned addr_mode;         /* 0 byte, 1 word, 2 doubleword */
    uint8_t cr17;
    unsigned msl;               /* maximum scan line: lines per char row - 1 */
    bool row_dup;               /* the lines of a character row are identical */
    unsigned clocks;            /* character clocks per line */
    /* text */
    unsigned cols, rows, cw, ch;
    uint32_t font_a, font_b;    /* plane-2 addresses of the two maps */
    /* colour */
    uint8_t ar[VGA_AR_COUNT];
    uint8_t dac_mask;
    bool dac8;
    /* VBE */
    unsigned bpp;
    uint32_t vbe_start, vbe_pitch;
};

unsigned vga_vbe_bytes_pp(unsigned bpp)
{
    switch (bpp) {
    case 8: return 1;
    case 15: case 16: return 2;
    case 24: return 3;
    case 32: return 4;
    default: return 0;
    }
}

void vga_state_mark(struct vga_state *s, uint64_t off, uint64_t len)
{
    if (!len || off >= s->vram_size)
        return;
    len = MIN(len, s->vram_size - off);
    uint64_t first = off >> VGA_PAGE_SHIFT, last = (off + len - 1) >> VGA_PAGE_SHIFT;
    for (uint64_t p = first; p <= last; p++)
        s->dirty[p / 64] |= 1ULL << (p % 64);
}

static unsigned npages(const struct vga_state *s)
{
    return s->vram_size >> VGA_PAGE_SHIFT;
}

/* Whether any page of [off, off+len) changed; the range wraps around the end
 * of video memory as VGA addresses do. */
static bool range_dirty(const struct vga_renderer *r, const struct vga_state *s,
                        uint64_t off, uint64_t len)
{
    if (!len)
        return false;
    len = MIN(len, (uint64_t)s->vram_size);
    off &= s->vram_size - 1;
    uint64_t end = off + len;
    unsigned np = npages(s);
    for (uint64_t p = off >> VGA_PAGE_SHIFT; p <= (end - 1) >> VGA_PAGE_SHIFT; p++) {
        unsigned pg = (unsigned)(p % np);
        if (r->snap[pg / 64] & (1ULL << (pg % 64)))
            return true;
    }
    return false;
}

void vga_render_init(struct vga_renderer *r)
{
    memset(r, 0, sizeof(*r));
}

void vga_render_free(struct vga_renderer *r)
{
    free(r->mode);
    free(r->snap);
    free(r->cells);
    free(r->font);
    memset(r, 0, sizeof(*r));
}

void vga_render_invalidate(struct vga_renderer *r)
{
    free(r->mode);
    r->mode = NULL;
}

/* --- mode decoding --------------------------------------------------- */

static uint32_t font_offset(unsigned map)
{
    /* Character map select: values 0-3 at 16 KiB steps, 4-7 the 8 KiB
     * halves between them. */
    return (map & 3) * 16384u + ((map & 4) ? 8192u : 0);
}

static void decode_mode(const struct vga_state *s, struct vga_mode_info *m)
{
    memset(m, 0, sizeof(*m));
    uint16_t en = s->vbe[VBE_DISPI_INDEX_ENABLE];
    bool vbe = en & VBE_DISPI_ENABLED;
    m->dac8 = en & VBE_DISPI_8BIT_DAC;
    m->dac_mask = s->dac_mask;
    /* AR index bit 5 (palette address source) clear: the attribute
     * controller owns the palette and the screen shows nothing.  VBE modes
     * are blanked by it too, as on the device this one models: bochs-drm
     * blanks the screen (DPMS off, an fbdev blank) by clearing the bit and
     * leaves the VBE mode enabled. */
    if (!(s->ar_index & 0x20)) {
        m->kind = K_BLANK;
        return;
    }
    if (vbe && vga_vbe_bytes_pp(s->vbe[VBE_DISPI_INDEX_BPP])) {
        m->kind = K_VBE;
        m->width = s->vbe[VBE_DISPI_INDEX_XRES];
        m->height = s->vbe[VBE_DISPI_INDEX_YRES];
        m->bpp = s->vbe[VBE_DISPI_INDEX_BPP];
        m->vbe_start = s->vbe_start;
        m->vbe_pitch = s->vbe_pitch;
        if (!m->width || !m->height)
            m->kind = K_BLANK;
        return;
    }
    /* SR1 bit 5 turns the screen off. */
    if (s->sr[1] & 0x20) {
        m->kind = K_BLANK;
        return;
    }
    memcpy(m->ar, s->ar, sizeof(m->ar));
    const uint8_t *cr = s->cr;
    m->clocks = cr[0x01] + 1u;
    unsigned lines = (cr[0x12] | (cr[0x07] & 0x02) << 7 | (cr[0x07] & 0x40) << 3) + 1u;
    m->msl = cr[0x09] & 0x1f;
    if (cr[0x09] & 0x80)           /* scan doubling */
        lines /= 2;
    m->start = (uint32_t)cr[0x0c] << 8 | cr[0x0d];
    m->row_ma = cr[0x13] * 2u;
    m->addr_mode = (cr[0x14] & 0x40) ? 2 : (cr[0x17] & 0x40) ? 0 : 1;
    m->cr17 = cr[0x17];

    if (!(s->gr[6] & 0x01)) {
        m->kind = K_TEXT;
        m->cw = (s->sr[1] & 0x01) ? 8 : 9;
        m->ch = m->msl + 1;
        m->cols = m->clocks;
        m->rows = lines / m->ch;
        m->width = m->cols * m->cw;
        m->height = m->rows * m->ch;
        uint8_t sr3 = s->sr[3];
        m->font_a = font_offset(((sr3 >> 5) & 1) << 2 | ((sr3 >> 2) & 3));
        m->font_b = font_offset(((sr3 >> 4) & 1) << 2 | (sr3 & 3));
    } else {
        unsigned per_clock;
        if (s->gr[5] & 0x40) {
            m->kind = K_256;
            per_clock = 4;          /* each pixel is two dots */
        } else if (s->gr[5] & 0x20) {
            m->kind = K_CGA4;
            per_clock = 8;
        } else {
            m->kind = K_PLANAR;
            per_clock = 8;
        }
        /* CR17 bits 0-1 clear put row-scan bits on memory address bits
         * 13-14 (CGA/Hercules interleave); otherwise every line of a
         * character row shows the same memory and is drawn once. */
        m->row_dup = (m->cr17 & 3) == 3;
        m->width = m->clocks * per_clock;
        m->height = m->row_dup ? lines / (m->msl + 1) : lines;
    }
    if (!m->width || !m->height || m->width > DISPLAY_MAX_WIDTH || m->height > DISPLAY_MAX_HEIGHT)
        m->kind = K_BLANK;
}

/* Memory (plane) address the CRTC fetches for address counter ma on row scan
 * line sc: the byte/word/doubleword modes and the CR17 substitutions. */
static uint32_t crtc_addr(const struct vga_state *s, const struct vga_mode_info *m,
                          uint32_t ma, unsigned sc)
{
    uint32_t a;
    if (m->addr_mode == 2)
        a = ma << 2;
    else if (m->addr_mode == 1)
        a = ma << 1 | ((m->cr17 & 0x20) ? (ma >> 15) & 1 : (ma >> 13) & 1);
    else
        a = ma;
    if (!(m->cr17 & 0x01))
        a = (a & ~0x2000u) | (uint32_t)(sc & 1) << 13;
    if (!(m->cr17 & 0x02))
        a = (a & ~0x4000u) | (uint32_t)(sc & 2) << 13;
    return a & (s->vram_size / 4 - 1);
}

static inline uint8_t plane_byte(const struct vga_state *s, uint32_t addr, unsigned plane)
{
    return s->vram[((addr & (s->vram_size / 4 - 1)) << 2) | plane];
}

/* Attribute controller palette: 4-bit colour to DAC index. */
static uint8_t ar_colour(const struct vga_mode_info *m, unsigned c)
{
    uint8_t v = m->ar[c & 15];
    if (m->ar[0x10] & 0x80)        /* P5-P4 from the colour select register */
        v = (uint8_t)((v & 0x0f) | (m->ar[0x14] & 0x03) << 4);
    else
        v &= 0x3f;
    return (uint8_t)(v | (m->ar[0x14] & 0x0c) << 4);
}

static inline uint32_t dac_pixel(const struct vga_renderer *r, const struct vga_mode_info *m,
                                 unsigned idx)
{
    return r->pal[idx & m->dac_mask];
}

static void load_palette(const struct vga_state *s, bool dac8, uint32_t pal[256])
{
    for (unsigned i = 0; i < 256; i++) {
        uint32_t c[3];
        for (unsigned k = 0; k < 3; k++) {
            uint8_t v = s->dac[i * 3 + k];
            /* 6-bit components scale to full range: 63 -> 255 */
            c[k] = dac8 ? v : (uint32_t)((v & 0x3f) << 2 | (v & 0x3f) >> 4);
        }
        pal[i] = c[0] << 16 | c[1] << 8 | c[2];
    }
}

static inline uint32_t *surf_row(const struct display_surface *sf, unsigned y)
{
    return (uint32_t *)((uint8_t *)sf->pixels + (size_t)y * sf->stride);
}

/* --- graphics modes -------------------------------------------------- */

static void line_geometry(const struct vga_mode_info *m, unsigned y, uint32_t *ma, unsigned *sc)
{
    unsigned row = m->row_dup ? y : y / (m->msl + 1);
    *sc = m->row_dup ? 0 : y % (m->msl + 1);
    *ma = m->start + row * m->row_ma;
}

static bool vga_line_dirty(const struct vga_renderer *r, const struct vga_state *s,
                           const struct vga_mode_info *m, unsigned y)
{
    uint32_t ma;
    unsigned sc;
    line_geometry(m, y, &ma, &sc);
    uint32_t a0 = crtc_addr(s, m, ma, sc), a1 = crtc_addr(s, m, ma + m->clocks - 1, sc);
    if (a1 >= a0)
        return range_dirty(r, s, (uint64_t)a0 * 4, ((uint64_t)a1 - a0 + 1) * 4);
    /* wrapped round the planes */
    return range_dirty(r, s, (uint64_t)a0 * 4, s->vram_size - (uint64_t)a0 * 4) ||
           range_dirty(r, s, 0, ((uint64_t)a1 + 1) * 4);
}

static void vga_draw_line(const struct vga_renderer *r, const struct vga_state *s,
                          const struct vga_mode_info *m, uint32_t *out, unsigned y)
{
    uint32_t ma;
    unsigned sc;
    line_geometry(m, y, &ma, &sc);
    uint32_t lut[16];
    for (unsigned c = 0; c < 16; c++)
        lut[c] = dac_pixel(r, m, ar_colour(m, c));
    uint8_t plane_enable = m->ar[0x12] & 0x0f;

    for (unsigned k = 0; k < m->clocks; k++, out += m->kind == K_256 ? 4 : 8) {
        uint32_t a = crtc_addr(s, m, ma + k, sc);
        uint8_t p0 = plane_byte(s, a, 0), p1 = plane_byte(s, a, 1);
        uint8_t p2 = plane_byte(s, a, 2), p3 = plane_byte(s, a, 3);
        switch (m->kind) {
        case K_256:
            /* four consecutive pixels, one per plane, straight to the DAC */
            out[0] = dac_pixel(r, m, p0);
            out[1] = dac_pixel(r, m, p1);
            out[2] = dac_pixel(r, m, p2);
            out[3] = dac_pixel(r, m, p3);
            break;
        case K_CGA4:
            /* shift register interleave: 2-bit pixels, plane 0's four then
             * plane 1's */
            for (unsigned i = 0; i < 4; i++) {
                out[i] = lut[((p0 >> (6 - 2 * i)) & 3) & plane_enable];
                out[4 + i] = lut[((p1 >> (6 - 2 * i)) & 3) & plane_enable];
            }
            break;
        default:
            for (unsigned i = 0; i < 8; i++) {
                unsigned bit = 7 - i;
                unsigned c = ((p0 >> bit) & 1) | ((p1 >> bit) & 1) << 1 |
                             ((p2 >> bit) & 1) << 2 | ((p3 >> bit) & 1) << 3;
                out[i] = lut[c & plane_enable];
            }
            break;
        }
    }
}

/* Redraws the lines whose memory changed (all when full); reports runs of
 * consecutive redrawn lines as one rectangle each. */
static void refresh_lines(struct vga_renderer *r, struct vga_state *s, const struct vga_mode_info *m,
                          struct display *d, bool full,
                          bool (*dirty)(const struct vga_renderer *, const struct vga_state *,
                                        const struct vga_mode_info *, unsigned),
                          void (*draw)(const struct vga_renderer *, const struct vga_state *,
                                       const struct vga_mode_info *, uint32_t *, unsigned))
{
    const struct display_surface *sf = display_surface(d);
    unsigned run = 0;
    for (unsigned y = 0; y < m->height; y++) {
        if (full || dirty(r, s, m, y)) {
            draw(r, s, m, surf_row(sf, y), y);
            run++;
            continue;
        }
        if (run)
            display_dirty(d, 0, y - run, m->width, run);
        run = 0;
    }
    if (run)
        display_dirty(d, 0, m->height - run, m->width, run);
}

/* --- VBE linear modes ------------------------------------------------ */

static bool vbe_line_dirty(const struct vga_renderer *r, const struct vga_state *s,
                           const struct vga_mode_info *m, unsigned y)
{
    uint64_t off = m->vbe_start + (uint64_t)y * m->vbe_pitch;
    uint64_t len = (uint64_t)m->width * vga_vbe_bytes_pp(m->bpp);
    if (off >= s->vram_size)
        return false;
    return range_dirty(r, s, off, MIN(len, s->vram_size - off));
}

static void vbe_draw_line(const struct vga_renderer *r, const struct vga_state *s,
                          const struct vga_mode_info *m, uint32_t *out, unsigned y)
{
    unsigned bpp = vga_vbe_bytes_pp(m->bpp);
    uint64_t off = m->vbe_start + (uint64_t)y * m->vbe_pitch;
    /* The device refuses geometry that does not fit; stay safe anyway. */
    if (off + (uint64_t)m->width * bpp > s->vram_size) {
        memset(out, 0, m->width * sizeof(uint32_t));
        return;
    }
    const uint8_t *p = s->vram + off;
    switch (m->bpp) {
    case 8:
        for (unsigned x = 0; x < m->width; x++)
            out[x] = dac_pixel(r, m, p[x]);
        break;
    case 15:
        for (unsigned x = 0; x < m->width; x++) {
            unsigned v = ld16(p + 2 * x);
            uint32_t rr = (v >> 10) & 31, g = (v >> 5) & 31, b = v & 31;
            out[x] = (rr << 3 | rr >> 2) << 16 | (g << 3 | g >> 2) << 8 | (b << 3 | b >> 2);
        }
        break;
    case 16:
        for (unsigned x = 0; x < m->width; x++) {
            unsigned v = ld16(p + 2 * x);
            uint32_t rr = (v >> 11) & 31, g = (v >> 5) & 63, b = v & 31;
            out[x] = (rr << 3 | rr >> 2) << 16 | (g << 2 | g >> 4) << 8 | (b << 3 | b >> 2);
        }
        break;
    case 24:
        for (unsigned x = 0; x < m->width; x++)
            out[x] = (uint32_t)p[3 * x + 2] << 16 | (uint32_t)p[3 * x + 1] << 8 | p[3 * x];
        break;
    default:
        for (unsigned x = 0; x < m->width; x++)
            out[x] = ld32(p + 4 * x) & 0xffffff;
        break;
    }
}

/* --- text modes ------------------------------------------------------ */

static uint16_t read_cell(const struct vga_state *s, const struct vga_mode_info *m, unsigned idx)
{
    unsigned row = idx / m->cols, col = idx % m->cols;
    uint32_t a = crtc_addr(s, m, m->start + row * m->row_ma + col, 0);
    return (uint16_t)(plane_byte(s, a, 0) | plane_byte(s, a, 1) << 8);
}

static void draw_cell(const struct vga_renderer *r, const struct vga_state *s,
                      const struct vga_mode_info *m, const struct display_surface *sf,
                      unsigned idx, uint16_t cell, bool cursor, unsigned cs, unsigned ce, bool blink_on)
{
    unsigned col = idx % m->cols, row = idx / m->cols;
    uint8_t chr = cell & 0xff, attr = cell >> 8;
    unsigned fgi = attr & 0x0f, bgi = attr >> 4;
    if (m->ar[0x10] & 0x08) {       /* blink enable: bit 7 blinks, not bright bg */
        bgi &= 7;
        if ((attr & 0x80) && !blink_on)
            fgi = bgi;
    }
    uint32_t fg = dac_pixel(r, m, ar_colour(m, fgi)), bg = dac_pixel(r, m, ar_colour(m, bgi));
    uint32_t font = (attr & 0x08) ? m->font_a : m->font_b;
    /* Line graphics enable: glyphs C0h-DFh repeat their 8th dot in the 9th. */
    bool dup9 = (m->ar[0x10] & 0x04) && chr >= 0xc0 && chr <= 0xdf;
    for (unsigned line = 0; line < m->ch; line++) {
        uint32_t *out = surf_row(sf, row * m->ch + line) + col * m->cw;
        uint8_t bits = line < 32 ? plane_byte(s, font + chr * 32u + line, 2) : 0;
        bool cur = cursor && line >= cs && line <= ce;
        for (unsigned x = 0; x < 8; x++)
            out[x] = (cur || (bits & (0x80 >> x))) ? fg : bg;
        if (m->cw == 9)
            out[8] = (cur || (dup9 && (bits & 1))) ? fg : bg;
    }
}

static void refresh_text(struct vga_renderer *r, struct vga_state *s, const struct vga_mode_info *m,
                         struct display *d, bool full, uint64_t now_ns)
{
    unsigned n = m->cols * m->rows;
    if (r->ncells != n || !r->cells) {
        uint16_t *c = realloc(r->cells, (size_t)MAX(n, 1u) * sizeof(uint16_t));
        if (!c)
            return;
        r->cells = c;
        r->ncells = n;
        full = true;
    }
    if (!r->font) {
        r->font = calloc(2, FONT_BYTES);
        if (!r->font)
            return;
        full = true;
    }
    /* Fonts: compare with the shadow when their memory may have changed
     * (plane 2 of a map shares pages with the text of planes 0-1). */
    uint32_t maps[2] = { m->font_a, m->font_b };
    for (unsigned i = 0; i < 2; i++) {
        if (!full && !range_dirty(r, s, (uint64_t)maps[i] * 4, FONT_BYTES * 4ULL))
            continue;
        uint8_t cur[FONT_BYTES];
        for (unsigned k = 0; k < FONT_BYTES; k++)
            cur[k] = plane_byte(s, maps[i] + k, 2);
        if (memcmp(cur, r->font + i * FONT_BYTES, FONT_BYTES)) {
            memcpy(r->font + i * FONT_BYTES, cur, FONT_BYTES);
            full = true;
        }
    }

    bool blink_on = ((now_ns / (32 * FRAME_NS)) & 1) == 0;
    bool cursor_phase = ((now_ns / (16 * FRAME_NS)) & 1) == 0;
    unsigned cs = s->cr[0x0a] & 0x1f, ce = s->cr[0x0b] & 0x1f;
    uint32_t cur_ma = (uint32_t)s->cr[0x0e] << 8 | s->cr[0x0f];
    bool cursor_enabled = !(s->cr[0x0a] & 0x20) && cs <= ce && cs < m->ch;
    uint32_t cursor_cell = UINT32_MAX;
    if (cursor_enabled && m->row_ma && cur_ma >= m->start) {
        uint32_t rel = cur_ma - m->start;
        unsigned row = rel / m->row_ma, col = rel % m->row_ma;
        if (row < m->rows && col < m->cols)
            cursor_cell = row * m->cols + col;
    }
    if (cursor_cell == UINT32_MAX)
        cursor_enabled = false;
    bool cursor_vis = cursor_enabled && cursor_phase;
    bool blink_changed = (m->ar[0x10] & 0x08) && blink_on != r->blink_on;

    bool any_dirty = full;
    for (unsigned w = 0; !any_dirty && w < (npages(s) + 63) / 64; w++)
        any_dirty = r->snap[w] != 0;

    const struct display_surface *sf = display_surface(d);
    for (unsigned i = 0; i < n; i++) {
        uint16_t cell = (any_dirty || blink_changed) ? read_cell(s, m, i) : r->cells[i];
        bool redraw = full || cell != r->cells[i] ||
                      (blink_changed && (cell & 0x8000)) ||
                      (i == r->cursor_cell && r->cursor_drawn &&
                       (!cursor_vis || cursor_cell != i)) ||
                      (i == cursor_cell && cursor_vis && (!r->cursor_drawn || r->cursor_cell != i));
        if (!redraw)
            continue;
        r->cells[i] = cell;
        draw_cell(r, s, m, sf, i, cell, cursor_vis && i == cursor_cell, cs, MIN(ce, m->ch - 1),
                  blink_on);
        display_dirty(d, (i % m->cols) * m->cw, (i / m->cols) * m->ch, m->cw, m->ch);
    }
    r->blink_on = blink_on;
    r->cursor_drawn = cursor_vis;
    r->cursor_cell = cursor_cell;
    r->cursor_enabled = cursor_enabled;
    r->cursor_col = cursor_enabled ? cursor_cell % m->cols : 0;
    r->cursor_row = cursor_enabled ? cursor_cell / m->cols : 0;
}

bool vga_render_text(const struct vga_renderer *r, struct display_text *t)
{
    if (!r->mode || r->mode->kind != K_TEXT || !r->cells)
        return false;
    t->cols = r->mode->cols;
    t->rows = r->mode->rows;
    t->cells = r->cells;
    t->cursor_col = r->cursor_col;
    t->cursor_row = r->cursor_row;
    t->cursor_visible = r->cursor_enabled;
    return true;
}

/* --- refresh --------------------------------------------------------- */

void vga_render_refresh(struct vga_renderer *r, struct vga_state *s, struct display *d,
                        uint64_t now_ns)
{
    size_t words = (npages(s) + 63) / 64;
    if (!r->snap) {
        r->snap = calloc(words, sizeof(uint64_t));
        if (!r->snap)
            return;
    }
    memcpy(r->snap, s->dirty, words * sizeof(uint64_t));
    memset(s->dirty, 0, words * sizeof(uint64_t));

    struct vga_mode_info m;
    decode_mode(s, &m);
    bool full = !r->mode || memcmp(r->mode, &m, sizeof(m)) != 0;
    uint32_t pal[256];
    load_palette(s, m.dac8, pal);
    if (memcmp(pal, r->pal, sizeof(pal))) {
        memcpy(r->pal, pal, sizeof(pal));
        full = true;
    }
    if (!r->mode) {
        r->mode = malloc(sizeof(*r->mode));
        if (!r->mode)
            return;
    }
    *r->mode = m;

    const struct display_surface *sf = display_surface(d);
    if (m.kind == K_BLANK) {
        if (!full)
            return;
        if (!sf->pixels && display_resize(d, 640, 480) < 0)
            return;
        sf = display_surface(d);
        memset(sf->pixels, 0, (size_t)sf->stride * sf->height);
        display_dirty(d, 0, 0, sf->width, sf->height);
        r->frames++;
        return;
    }
    if (sf->width != m.width || sf->height != m.height || !sf->pixels) {
        if (display_resize(d, m.width, m.height) < 0) {
            vga_render_invalidate(r);
            return;
        }
        full = true;
    }
    switch (m.kind) {
    case K_TEXT:
        refresh_text(r, s, &m, d, full, now_ns);
        break;
    case K_VBE:
        refresh_lines(r, s, &m, d, full, vbe_line_dirty, vbe_draw_line);
        break;
    default:
        refresh_lines(r, s, &m, d, full, vga_line_dirty, vga_draw_line);
        break;
    }
    unsigned after;
    display_pending(d, &after);
    if (after || full)
        r->frames++;
}
