/* Standard PCI VGA with Bochs VBE extensions.  The VGA register behaviour
 * follows the VGA register reference; the DISPI registers follow the Bochs
 * VBE display API; the MMIO BAR follows the layout bochs-drm and the VGA
 * BIOS expect of this device. */
#include "devices/vga.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/evloop.h"
#include "devices/util.h"
#include "devices/vga_render.h"

#define VGA_PCI_VENDOR   0x1234
#define VGA_PCI_DEVICE   0x1111
#define VGA_PCI_CLASS    0x030000
#define VGA_PCI_REV      2          /* revision 2: extended registers at 0x600 */
#define VGA_MMIO_SIZE    0x1000
#define VGA_ROM_MAX      (1u << 20)

/* BAR2 layout */
#define MMIO_VGA_PORTS   0x400      /* ports 0x3c0-0x3df */
#define MMIO_DISPI       0x500      /* DISPI registers, 16-bit, index * 2 */
#define MMIO_QEXT        0x600
#define QEXT_SIZE        8
#define QEXT_LE          0x1e1e1e1eu
#define QEXT_BE          0xbebebebeu

#define PORT_BASE        0x3b0
#define PORT_LEN         0x30
#define DISPI_PORT       0x1ce      /* index; data at 0x1cf (and 0x1d0) */
#define DISPI_PORT_LEN   3

/* Input status 1 bits */
#define ST01_DISP_ENABLE 0x01
#define ST01_V_RETRACE   0x08

/* Writable bits of each register (VGA register reference). */
static const uint8_t sr_mask[VGA_SR_COUNT] = { 0x03, 0x3d, 0x0f, 0x3f, 0x0e };
static const uint8_t gr_mask[VGA_GR_COUNT] = { 0x0f, 0x0f, 0x0f, 0x1f, 0x03, 0x7b, 0x0f, 0x0f, 0xff };

struct vga {
    struct pci_device pci;
    struct vga_state s;
    struct vga_renderer rend;
    struct platform *plat;
    struct display *disp;
    uint8_t *rom;
    bool ports_registered, dispi_registered, mem_registered;
    vga_vram_map_fn map_cb;
    void *map_opaque;
    vga_dirty_sync_fn sync_cb;
    void *sync_opaque;
    uint64_t (*clock)(void *opaque);
    void *clock_opaque;
};

/* --- VGA registers --------------------------------------------------- */

static bool colour_io(const struct vga_state *s)
{
    return s->misc & 0x01;       /* I/O address select: 0x3dx, else 0x3bx */
}

/* Ports of the addressing mode not selected by the misc register float. */
static bool port_decoded(const struct vga_state *s, unsigned port)
{
    if (port >= 0x3b0 && port < 0x3c0)
        return !colour_io(s);
    if (port >= 0x3d0 && port < 0x3e0)
        return colour_io(s);
    return true;
}

static uint8_t vga_port_read(struct vga *v, unsigned port)
{
    struct vga_state *s = &v->s;
    if (!port_decoded(s, port))
        return 0xff;
    switch (port) {
    case 0x3c0:
        return s->ar_index;
    case 0x3c1:
        return (s->ar_index & 0x1f) < VGA_AR_COUNT ? s->ar[s->ar_index & 0x1f] : 0;
    case 0x3c2:
        return 0x10;             /* input status 0: switch sense (monitor present) */
    case 0x3c3:
        return 0x01;             /* video subsystem enabled */
    case 0x3c4:
        return s->sr_index;
    case 0x3c5:
        return s->sr_index < VGA_SR_COUNT ? s->sr[s->sr_index] : 0;
    case 0x3c6:
        return s->dac_mask;
    case 0x3c7:
        return s->dac_reading ? 0x03 : 0x00;   /* DAC state */
    case 0x3c8:
        return s->dac_write_index;
    case 0x3c9: {
        uint8_t val = s->dac[s->dac_read_index * 3 + s->dac_sub];
        if (++s->dac_sub == 3) {
            s->dac_sub = 0;
            s->dac_read_index++;
        }
        return val;
    }
    case 0x3ca:
        return s->fcr;
    case 0x3cc:
        return s->misc;
    case 0x3ce:
        return s->gr_index;
    case 0x3cf:
        return s->gr_index < VGA_GR_COUNT ? s->gr[s->gr_index] : 0;
    case 0x3b4: case 0x3d4:
        return s->cr_index;
    case 0x3b5: case 0x3d5:
        return s->cr_index < VGA_CR_COUNT ? s->cr[s->cr_index] : 0;
    case 0x3ba: case 0x3da:
        /* Reading input status 1 resets the attribute flip-flop.  There is
         * no real beam: the retrace bits toggle so that polling loops
         * waiting for either edge finish. */
        s->ar_flip = false;
        s->st01 ^= ST01_DISP_ENABLE | ST01_V_RETRACE;
        return s->st01;
    default:
        return 0xff;
    }
}

static void ar_write(struct vga_state *s, uint8_t val)
{
    if (!s->ar_flip) {
        s->ar_index = val & 0x3f;
        s->ar_flip = true;
        return;
    }
    s->ar_flip = false;
    unsigned i = s->ar_index & 0x1f;
    if (i < 0x10) {
        s->ar[i] = val & 0x3f;
        return;
    }
    switch (i) {
    case 0x10: s->ar[i] = val & 0xef; break;
    case 0x11: s->ar[i] = val; break;
    case 0x12: s->ar[i] = val & 0x3f; break;
    case 0x13: s->ar[i] = val & 0x0f; break;
    case 0x14: s->ar[i] = val & 0x0f; break;
    default:
        log_guest_error("vga: attribute controller index %#x out of range", i);
        break;
    }
}

static void cr_write(struct vga_state *s, uint8_t val)
{
    unsigned i = s->cr_index;
    if (i >= VGA_CR_COUNT) {
        log_guest_error("vga: CRTC index %#x out of range", i);
        return;
    }
    /* CR11 bit 7 protects CR0-7, except CR7 bit 4 (line compare bit 8). */
    if ((s->cr[0x11] & 0x80) && i <= 7) {
        if (i == 7)
            s->cr[7] = (uint8_t)((s->cr[7] & ~0x10) | (val & 0x10));
        return;
    }
    s->cr[i] = val;
}

static void vga_port_write(struct vga *v, unsigned port, uint8_t val)
{
    struct vga_state *s = &v->s;
    if (!port_decoded(s, port))
        return;
    switch (port) {
    case 0x3c0:
        ar_write(s, val);
        break;
    case 0x3c2:
        s->misc = val;
        break;
    case 0x3c3:
        break;
    case 0x3c4:
        s->sr_index = val;
        break;
    case 0x3c5:
        if (s->sr_index < VGA_SR_COUNT)
            s->sr[s->sr_index] = val & sr_mask[s->sr_index];
        else
            log_guest_error("vga: sequencer index %#x out of range", s->sr_index);
        break;
    case 0x3c6:
        s->dac_mask = val;
        break;
    case 0x3c7:
        s->dac_read_index = val;
        s->dac_sub = 0;
        s->dac_reading = true;
        break;
    case 0x3c8:
        s->dac_write_index = val;
        s->dac_sub = 0;
        s->dac_reading = false;
        break;
    case 0x3c9:
        s->dac[s->dac_write_index * 3 + s->dac_sub] =
            (s->vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_8BIT_DAC) ? val : (val & 0x3f);
        if (++s->dac_sub == 3) {
            s->dac_sub = 0;
            s->dac_write_index++;
        }
        break;
    case 0x3ce:
        s->gr_index = val;
        break;
    case 0x3cf:
        if (s->gr_index < VGA_GR_COUNT)
            s->gr[s->gr_index] = val & gr_mask[s->gr_index];
        else
            log_guest_error("vga: graphics controller index %#x out of range", s->gr_index);
        break;
    case 0x3b4: case 0x3d4:
        s->cr_index = val;
        break;
    case 0x3b5: case 0x3d5:
        cr_write(s, val);
        break;
    case 0x3ba: case 0x3da:
        s->fcr = val;
        break;
    default:
        break;
    }
}

/* Port and MMIO accesses wider than a byte are consecutive byte ports. */
static uint64_t ports_read(void *opaque, uint64_t off, unsigned size)
{
    struct vga *v = opaque;
    uint64_t val = 0;
    for (unsigned i = 0; i < size && i < 8; i++) {
        uint64_t o = off + i;
        uint8_t b = o < PORT_LEN ? vga_port_read(v, (unsigned)(PORT_BASE + o)) : 0xff;
        val |= (uint64_t)b << (8 * i);
    }
    return val;
}

static void ports_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct vga *v = opaque;
    for (unsigned i = 0; i < size && i < 8; i++)
        if (off + i < PORT_LEN)
            vga_port_write(v, (unsigned)(PORT_BASE + off + i), (uint8_t)(val >> (8 * i)));
}

static const struct io_ops ports_ops = { ports_read, ports_write };

/* --- VBE DISPI ------------------------------------------------------- */

static bool vbe_bpp_valid(unsigned bpp)
{
    return bpp == 4 || vga_vbe_bytes_pp(bpp);
}

/* Bytes per line and start offset of a VBE geometry; false when the visible
 * frame does not fit in video memory. */
static bool vbe_geometry(const struct vga_state *s, unsigned xres, unsigned yres, unsigned bpp,
                         unsigned virt_width, unsigned xoff, unsigned yoff,
                         uint32_t *pitch, uint32_t *start)
{
    if (!xres || !yres || xres > VBE_DISPI_MAX_XRES || yres > VBE_DISPI_MAX_YRES ||
        !vbe_bpp_valid(bpp))
        return false;
    /* planar lines are whole bytes per plane: narrower has no pitch */
    if (bpp == 4 && xres < 8)
        return false;
    unsigned vw = MAX(virt_width, xres);
    uint64_t p, st, line;
    if (bpp == 4) {              /* planar: a byte holds 8 pixels of a plane */
        p = vw / 8;
        st = (uint64_t)yoff * p + xoff / 8;
        line = xres / 8;
        /* four planes interleaved: each plane byte takes four */
        p *= 4;
        st *= 4;
        line *= 4;
    } else {
        unsigned b = vga_vbe_bytes_pp(bpp);
        p = (uint64_t)vw * b;
        st = (uint64_t)yoff * p + (uint64_t)xoff * b;
        line = (uint64_t)xres * b;
    }
    if (st + (uint64_t)(yres - 1) * p + line > s->vram_size)
        return false;
    *pitch = (uint32_t)p;
    *start = (uint32_t)st;
    return true;
}

static bool vbe_enabled(const struct vga_state *s)
{
    return s->vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_ENABLED;
}

/* Tries a geometry change while a mode is showing; refuses it (and says so)
 * when the frame would not fit. */
static bool vbe_apply(struct vga_state *s, unsigned idx, uint16_t val)
{
    uint16_t r[VBE_DISPI_INDEX_NB];
    memcpy(r, s->vbe, sizeof(r));
    r[idx] = val;
    uint32_t pitch, start;
    if (!vbe_geometry(s, r[VBE_DISPI_INDEX_XRES], r[VBE_DISPI_INDEX_YRES], r[VBE_DISPI_INDEX_BPP],
                      r[VBE_DISPI_INDEX_VIRT_WIDTH], r[VBE_DISPI_INDEX_X_OFFSET],
                      r[VBE_DISPI_INDEX_Y_OFFSET], &pitch, &start)) {
        log_guest_error("vga: DISPI register %u = %u refused: %ux%u at %u bpp does not fit "
                        "in video memory", idx, val, r[VBE_DISPI_INDEX_XRES],
                        r[VBE_DISPI_INDEX_YRES], r[VBE_DISPI_INDEX_BPP]);
        return false;
    }
    s->vbe[idx] = val;
    if (s->vbe[VBE_DISPI_INDEX_VIRT_WIDTH] < s->vbe[VBE_DISPI_INDEX_XRES])
        s->vbe[VBE_DISPI_INDEX_VIRT_WIDTH] = s->vbe[VBE_DISPI_INDEX_XRES];
    s->vbe[VBE_DISPI_INDEX_VIRT_HEIGHT] = (uint16_t)MIN(s->vram_size / pitch, 0xffffu);
    s->vbe_pitch = pitch;
    s->vbe_start = start;
    return true;
}

static void vbe_enable(struct vga_state *s, uint16_t val)
{
    uint16_t old = s->vbe[VBE_DISPI_INDEX_ENABLE];
    if (!(val & VBE_DISPI_ENABLED)) {
        s->vbe[VBE_DISPI_INDEX_ENABLE] = val;
        s->vbe[VBE_DISPI_INDEX_BANK] = 0;
        return;
    }
    if (old & VBE_DISPI_ENABLED) {
        /* Already on: only the flag bits (DAC width, LFB) change. */
        s->vbe[VBE_DISPI_INDEX_ENABLE] = val;
        return;
    }
    uint16_t xres = s->vbe[VBE_DISPI_INDEX_XRES], yres = s->vbe[VBE_DISPI_INDEX_YRES];
    uint16_t bpp = s->vbe[VBE_DISPI_INDEX_BPP];
    uint32_t pitch, start;
    if (!vbe_geometry(s, xres, yres, bpp, xres, 0, 0, &pitch, &start)) {
        log_guest_error("vga: DISPI mode %ux%u at %u bpp refused (max %ux%u, %u bpp, "
                        "%u KiB of video memory)", xres, yres, bpp, VBE_DISPI_MAX_XRES,
                        VBE_DISPI_MAX_YRES, VBE_DISPI_MAX_BPP, s->vram_size >> 10);
        s->vbe[VBE_DISPI_INDEX_ENABLE] = val & ~VBE_DISPI_ENABLED;
        return;
    }
    s->vbe[VBE_DISPI_INDEX_ENABLE] = val;
    s->vbe[VBE_DISPI_INDEX_VIRT_WIDTH] = xres;
    s->vbe[VBE_DISPI_INDEX_VIRT_HEIGHT] = (uint16_t)MIN(s->vram_size / pitch, 0xffffu);
    s->vbe[VBE_DISPI_INDEX_X_OFFSET] = 0;
    s->vbe[VBE_DISPI_INDEX_Y_OFFSET] = 0;
    s->vbe[VBE_DISPI_INDEX_BANK] = 0;
    s->vbe_pitch = pitch;
    s->vbe_start = 0;
    if (!(val & VBE_DISPI_NOCLEARMEM)) {
        uint64_t len = MIN((uint64_t)pitch * yres, (uint64_t)s->vram_size);
        memset(s->vram, 0, len);
        vga_state_mark(s, 0, len);
    }
}

static uint16_t vbe_read(struct vga *v)
{
    struct vga_state *s = &v->s;
    unsigned idx = s->vbe_index;
    if (idx >= VBE_DISPI_INDEX_NB)
        return 0;
    if (s->vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_GETCAPS) {
        switch (idx) {
        case VBE_DISPI_INDEX_XRES: return VBE_DISPI_MAX_XRES;
        case VBE_DISPI_INDEX_YRES: return VBE_DISPI_MAX_YRES;
        case VBE_DISPI_INDEX_BPP: return VBE_DISPI_MAX_BPP;
        default: break;
        }
    }
    if (idx == VBE_DISPI_INDEX_VIDEO_MEMORY_64K)
        return (uint16_t)(s->vram_size >> 16);
    return s->vbe[idx];
}

static void vbe_write(struct vga *v, uint16_t val)
{
    struct vga_state *s = &v->s;
    unsigned idx = s->vbe_index;
    switch (idx) {
    case VBE_DISPI_INDEX_ID:
        if (val >= VBE_DISPI_ID0 && val <= VBE_DISPI_ID5)
            s->vbe[idx] = val;
        else
            log_guest_error("vga: DISPI id %#x not supported", val);
        break;
    case VBE_DISPI_INDEX_XRES:
    case VBE_DISPI_INDEX_YRES:
    case VBE_DISPI_INDEX_BPP:
        if (idx == VBE_DISPI_INDEX_BPP && val == 0)
            val = 8;             /* 0 has meant 8 since the first Bochs VBE */
        if ((idx == VBE_DISPI_INDEX_BPP && !vbe_bpp_valid(val)) ||
            (idx == VBE_DISPI_INDEX_XRES && (!val || val > VBE_DISPI_MAX_XRES)) ||
            (idx == VBE_DISPI_INDEX_YRES && (!val || val > VBE_DISPI_MAX_YRES))) {
            log_guest_error("vga: DISPI register %u = %u out of range", idx, val);
            break;
        }
        if (vbe_enabled(s))
            vbe_apply(s, idx, val);
        else
            s->vbe[idx] = val;
        break;
    case VBE_DISPI_INDEX_ENABLE:
        vbe_enable(s, val);
        break;
    case VBE_DISPI_INDEX_BANK: {
        /* 64 KiB banks of video memory (of one plane at 4 bpp) */
        uint32_t banks = s->vram_size >> 16;
        if (vbe_enabled(s) && s->vbe[VBE_DISPI_INDEX_BPP] == 4)
            banks /= 4;
        if (val >= banks) {
            log_guest_error("vga: DISPI bank %u out of range (%u banks)", val, banks);
            break;
        }
        s->vbe[idx] = val;
        break;
    }
    case VBE_DISPI_INDEX_VIRT_WIDTH:
    case VBE_DISPI_INDEX_X_OFFSET:
    case VBE_DISPI_INDEX_Y_OFFSET:
        if (vbe_enabled(s))
            vbe_apply(s, idx, val);
        else
            s->vbe[idx] = val;
        break;
    case VBE_DISPI_INDEX_VIRT_HEIGHT:
        /* Derived from the pitch and the memory size; a smaller value
         * changes nothing the device shows, a larger one cannot be had. */
        if (vbe_enabled(s) && s->vbe_pitch &&
            ((uint64_t)val * s->vbe_pitch > s->vram_size || val < s->vbe[VBE_DISPI_INDEX_YRES]))
            log_guest_error("vga: DISPI virtual height %u refused", val);
        else
            s->vbe[idx] = val;
        break;
    case VBE_DISPI_INDEX_VIDEO_MEMORY_64K:
        log_guest_error("vga: DISPI video memory size is read-only");
        break;
    default:
        log_guest_error("vga: DISPI index %#x out of range", idx);
        break;
    }
}

static uint64_t dispi_read(void *opaque, uint64_t off, unsigned size)
{
    struct vga *v = opaque;
    if (off == 0)
        return v->s.vbe_index;
    return vbe_read(v);
}

static void dispi_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct vga *v = opaque;
    if (off == 0)
        v->s.vbe_index = (uint16_t)val;
    else
        vbe_write(v, (uint16_t)val);
}

static const struct io_ops dispi_ops = { dispi_read, dispi_write };

/* --- memory pipeline ------------------------------------------------- */

static uint32_t plane_size(const struct vga_state *s)
{
    return s->vram_size / 4;
}

/* Offset in the 0xa0000 window to a host address in the selected memory
 * map; false when the map does not cover it. */
static bool window_decode(const struct vga_state *s, uint64_t off, uint32_t *addr)
{
    static const uint32_t base[4] = { 0, 0, 0x10000, 0x18000 };
    static const uint32_t len[4] = { 0x20000, 0x10000, 0x8000, 0x8000 };
    if (!(s->misc & 0x02))       /* RAM enable */
        return false;
    unsigned map = (s->gr[6] >> 2) & 3;
    if (off < base[map] || off >= (uint64_t)base[map] + len[map])
        return false;
    *addr = (uint32_t)off - base[map];
    return true;
}

/* Linear VBE banking: DISPI on at a packed depth. */
static bool vbe_linear(const struct vga_state *s)
{
    return vbe_enabled(s) && s->vbe[VBE_DISPI_INDEX_BPP] != 4;
}

static uint8_t mem_readb(struct vga_state *s, uint32_t a)
{
    if (vbe_linear(s)) {
        uint64_t o = (uint64_t)s->vbe[VBE_DISPI_INDEX_BANK] * 0x10000 + a;
        return o < s->vram_size ? s->vram[o] : 0xff;
    }
    if (vbe_enabled(s))
        a += (uint32_t)s->vbe[VBE_DISPI_INDEX_BANK] * 0x10000;
    unsigned plane;
    uint32_t pa;
    if (s->sr[4] & 0x08) {               /* chain-4 */
        plane = a & 3;
        pa = a & ~3u;
    } else if (s->gr[5] & 0x10) {        /* host odd/even read addressing */
        plane = (s->gr[4] & 2) | (a & 1);
        pa = a & ~1u;
    } else {
        plane = s->gr[4] & 3;
        pa = a;
    }
    if (pa >= plane_size(s)) {
        log_guest_error("vga: memory read beyond the planes (%#x)", pa);
        return 0xff;
    }
    memcpy(s->latch, &s->vram[pa * 4], 4);
    if (!(s->gr[5] & 0x08))              /* read mode 0 */
        return s->latch[plane];
    /* Read mode 1: colour compare; 1 where each pixel's planes, masked by
     * colour don't care, equal colour compare. */
    uint8_t diff = 0;
    for (unsigned p = 0; p < 4; p++) {
        if (!(s->gr[7] & (1u << p)))
            continue;
        uint8_t want = (s->gr[2] & (1u << p)) ? 0xff : 0x00;
        diff |= s->latch[p] ^ want;
    }
    return (uint8_t)~diff;
}

static void mem_writeb(struct vga_state *s, uint32_t a, uint8_t val)
{
    if (vbe_linear(s)) {
        uint64_t o = (uint64_t)s->vbe[VBE_DISPI_INDEX_BANK] * 0x10000 + a;
        if (o < s->vram_size) {
            s->vram[o] = val;
            vga_state_mark(s, o, 1);
        }
        return;
    }
    if (vbe_enabled(s))
        a += (uint32_t)s->vbe[VBE_DISPI_INDEX_BANK] * 0x10000;
    uint8_t enable = s->sr[2] & 0x0f;    /* map mask */
    uint32_t pa;
    if (s->sr[4] & 0x08) {               /* chain-4: bits 0-1 pick the plane */
        enable &= (uint8_t)(1u << (a & 3));
        pa = a & ~3u;
    } else if (!(s->sr[4] & 0x04)) {     /* odd/even: bit 0 picks planes 0,2 or 1,3 */
        enable &= (a & 1) ? 0x0a : 0x05;
        pa = a & ~1u;
    } else {
        pa = a;
    }
    if (pa >= plane_size(s)) {
        log_guest_error("vga: memory write beyond the planes (%#x)", pa);
        return;
    }
    if (!enable)
        return;

    unsigned mode = s->gr[5] & 3;
    unsigned rot = s->gr[3] & 7, func = (s->gr[3] >> 3) & 3;
    uint8_t rotated = (uint8_t)((val >> rot) | (val << ((8 - rot) & 7)));
    uint8_t bitmask = s->gr[8];
    if (mode == 3)
        bitmask &= rotated;
    for (unsigned p = 0; p < 4; p++) {
        if (!(enable & (1u << p)))
            continue;
        uint8_t latch = s->latch[p], d;
        switch (mode) {
        case 0:
            d = (s->gr[1] & (1u << p)) ? ((s->gr[0] & (1u << p)) ? 0xff : 0) : rotated;
            break;
        case 1:
            s->vram[pa * 4 + p] = latch;
            continue;
        case 2:
            d = (val & (1u << p)) ? 0xff : 0;
            break;
        default:
            d = (s->gr[0] & (1u << p)) ? 0xff : 0;
            break;
        }
        switch (func) {
        case 1: d &= latch; break;
        case 2: d |= latch; break;
        case 3: d ^= latch; break;
        default: break;
        }
        s->vram[pa * 4 + p] = (uint8_t)((d & bitmask) | (latch & ~bitmask));
    }
    vga_state_mark(s, (uint64_t)pa * 4, 4);
}

static uint64_t window_read(void *opaque, uint64_t off, unsigned size)
{
    struct vga *v = opaque;
    uint64_t val = 0;
    for (unsigned i = 0; i < size && i < 8; i++) {
        uint32_t a;
        uint8_t b = window_decode(&v->s, off + i, &a) ? mem_readb(&v->s, a) : 0xff;
        val |= (uint64_t)b << (8 * i);
    }
    return val;
}

static void window_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct vga *v = opaque;
    for (unsigned i = 0; i < size && i < 8; i++) {
        uint32_t a;
        if (window_decode(&v->s, off + i, &a))
            mem_writeb(&v->s, a, (uint8_t)(val >> (8 * i)));
    }
}

static const struct io_ops window_ops = { window_read, window_write };

/* --- BARs ------------------------------------------------------------ */

static uint64_t lfb_read(void *opaque, uint64_t off, unsigned size)
{
    struct vga *v = opaque;
    if (off >= v->s.vram_size || size > 8 || size > v->s.vram_size - off)
        return ~0ULL;
    return ld_le(v->s.vram + off, size);
}

static void lfb_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct vga *v = opaque;
    if (off >= v->s.vram_size || size > 8 || size > v->s.vram_size - off)
        return;
    st_le(v->s.vram + off, size, val);
    vga_state_mark(&v->s, off, size);
}

static const struct io_ops lfb_ops = { lfb_read, lfb_write };

static uint64_t mmio_read(void *opaque, uint64_t off, unsigned size)
{
    struct vga *v = opaque;
    if (off >= MMIO_VGA_PORTS && off < MMIO_VGA_PORTS + 0x20) {
        uint64_t val = 0;
        for (unsigned i = 0; i < size && off + i < MMIO_VGA_PORTS + 0x20; i++)
            val |= (uint64_t)vga_port_read(v, (unsigned)(0x3c0 + off - MMIO_VGA_PORTS + i)) << (8 * i);
        return val;
    }
    if (off >= MMIO_DISPI && off < MMIO_DISPI + 2 * VBE_DISPI_INDEX_NB) {
        uint64_t val = 0;
        for (unsigned i = 0; i < size; i++) {
            uint64_t o = off - MMIO_DISPI + i;
            if (o >= 2 * VBE_DISPI_INDEX_NB)
                break;
            v->s.vbe_index = (uint16_t)(o / 2);
            val |= (uint64_t)((vbe_read(v) >> (8 * (o & 1))) & 0xff) << (8 * i);
        }
        return val;
    }
    if (off == MMIO_QEXT && size == 4)
        return QEXT_SIZE;
    if (off == MMIO_QEXT + 4 && size == 4)
        return QEXT_LE;
    return 0;                   /* no EDID block */
}

static void mmio_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct vga *v = opaque;
    if (off >= MMIO_VGA_PORTS && off < MMIO_VGA_PORTS + 0x20) {
        for (unsigned i = 0; i < size && off + i < MMIO_VGA_PORTS + 0x20; i++)
            vga_port_write(v, (unsigned)(0x3c0 + off - MMIO_VGA_PORTS + i), (uint8_t)(val >> (8 * i)));
        return;
    }
    if (off >= MMIO_DISPI && off < MMIO_DISPI + 2 * VBE_DISPI_INDEX_NB) {
        if ((off & 1) || (size != 2 && size != 4)) {
            log_guest_error("vga: DISPI MMIO write of %u bytes at %#llx ignored", size,
                            (unsigned long long)off);
            return;
        }
        for (unsigned i = 0; i < size / 2; i++) {
            uint64_t o = off - MMIO_DISPI + 2 * i;
            if (o >= 2 * VBE_DISPI_INDEX_NB)
                break;
            v->s.vbe_index = (uint16_t)(o / 2);
            vbe_write(v, (uint16_t)(val >> (16 * i)));
        }
        return;
    }
    if (off == MMIO_QEXT + 4 && size == 4) {
        if ((uint32_t)val == QEXT_BE)
            log_guest_error("vga: big-endian framebuffer not supported; staying little-endian");
        return;
    }
    log_guest_error("vga: MMIO write at %#llx ignored", (unsigned long long)off);
}

static const struct io_ops mmio_ops = { mmio_read, mmio_write };

static void vga_bar_remapped(struct pci_device *d, int bar)
{
    struct vga *v = d->opaque;
    if (bar == 0 && v->map_cb)
        v->map_cb(v->map_opaque, d->bars[0].mapped, d->bars[0].mapped_at);
}

/* --- state, reset, display --------------------------------------------- */

/* Power-on registers; video memory is left as it is. */
static void vga_regs_reset(struct vga_state *s)
{
    memset(&s->misc, 0, sizeof(*s) - offsetof(struct vga_state, misc));
    s->dac_mask = 0xff;
    s->vbe[VBE_DISPI_INDEX_ID] = VBE_DISPI_ID5;
    s->vbe[VBE_DISPI_INDEX_BPP] = 8;
    vga_state_mark(s, 0, s->vram_size);
}

static void vga_state_reset(struct vga_state *s)
{
    vga_regs_reset(s);
    /* Video memory is a private anonymous mapping: dropping its pages
     * gives zero pages on the next touch, without writing 16 MiB (and
     * gives the memory back). */
    if (madvise(s->vram, s->vram_size, MADV_DONTNEED) < 0)
        memset(s->vram, 0, s->vram_size);
}

static void vga_pci_reset(struct pci_device *d)
{
    struct vga *v = d->opaque;
    vga_state_reset(&v->s);
    vga_render_invalidate(&v->rend);
}

static uint64_t default_clock(void *opaque)
{
    return evloop_now_ns();
}

static void vga_display_refresh(void *opaque, struct display *d)
{
    struct vga *v = opaque;
    if (v->sync_cb)
        v->sync_cb(v->sync_opaque, v);
    vga_render_refresh(&v->rend, &v->s, d, v->clock(v->clock_opaque));
}

static bool vga_display_text(void *opaque, struct display_text *t)
{
    struct vga *v = opaque;
    return vga_render_text(&v->rend, t);
}

static const struct display_source_ops vga_source_ops = { vga_display_refresh, vga_display_text };

/* --- creation ----------------------------------------------------------- */

static uint8_t *load_rom(const char *path, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "VGA BIOS %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    uint8_t *buf = NULL;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < 512 ||
        st.st_size > VGA_ROM_MAX) {
        snprintf(err, errlen, "VGA BIOS %s: not a regular file of 512 bytes to %u KiB", path,
                 VGA_ROM_MAX >> 10);
        goto out;
    }
    buf = malloc((size_t)st.st_size);
    if (!buf) {
        snprintf(err, errlen, "VGA BIOS %s: out of memory", path);
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(err, errlen, "VGA BIOS %s: read failed", path);
            free(buf);
            buf = NULL;
            goto out;
        }
        got += (size_t)r;
    }
    if (buf[0] != 0x55 || buf[1] != 0xaa) {
        snprintf(err, errlen, "VGA BIOS %s: no option ROM signature (55 AA)", path);
        free(buf);
        buf = NULL;
        goto out;
    }
    *len = got;
out:
    close(fd);
    return buf;
}

struct vga *vga_create(struct platform *p, struct pci_bus *bus, struct display *disp,
                       const char *rom_path, char *err, size_t errlen)
{
    struct vga *v = calloc(1, sizeof(*v));
    if (!v) {
        snprintf(err, errlen, "vga: out of memory");
        return NULL;
    }
    v->plat = p;
    v->disp = disp;
    v->clock = default_clock;
    vga_render_init(&v->rend);
    v->s.vram_size = VGA_VRAM_SIZE;
    void *vram = mmap(NULL, VGA_VRAM_SIZE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    v->s.dirty = calloc((VGA_VRAM_SIZE >> VGA_PAGE_SHIFT) / 64, sizeof(uint64_t));
    if (vram == MAP_FAILED || !v->s.dirty) {
        snprintf(err, errlen, "vga: cannot allocate %u MiB of video memory", VGA_VRAM_SIZE >> 20);
        if (vram != MAP_FAILED)
            munmap(vram, VGA_VRAM_SIZE);
        free(v->s.dirty);
        free(v);
        return NULL;
    }
    v->s.vram = vram;
    /* A fresh anonymous mapping is zero already: clearing it would only
     * make all 16 MiB resident. */
    vga_regs_reset(&v->s);

    if (rom_path) {
        size_t len = 0;
        v->rom = load_rom(rom_path, &len, err, errlen);
        if (!v->rom)
            goto fail;
        pci_device_init(&v->pci, VGA_PCI_VENDOR, VGA_PCI_DEVICE, VGA_PCI_CLASS, VGA_PCI_REV, "vga");
        pci_set_rom(&v->pci, v->rom, len);
    } else {
        pci_device_init(&v->pci, VGA_PCI_VENDOR, VGA_PCI_DEVICE, VGA_PCI_CLASS, VGA_PCI_REV, "vga");
    }
    pci_set_subsystem(&v->pci, 0x1af4, 0x1100);
    v->pci.opaque = v;
    v->pci.bar_remapped = vga_bar_remapped;
    v->pci.reset = vga_pci_reset;
    pci_add_bar(&v->pci, 0, PCI_BAR_MEM32, true, VGA_VRAM_SIZE, &lfb_ops, v);
    pci_add_bar(&v->pci, 2, PCI_BAR_MEM32, false, VGA_MMIO_SIZE, &mmio_ops, v);

    if (io_bus_register(p->pio, PORT_BASE, PORT_LEN, &ports_ops, v, "vga") < 0) {
        snprintf(err, errlen, "vga: ports %#x-%#x already taken", PORT_BASE, PORT_BASE + PORT_LEN - 1);
        goto fail;
    }
    v->ports_registered = true;
    if (io_bus_register(p->pio, DISPI_PORT, DISPI_PORT_LEN, &dispi_ops, v, "vga-dispi") < 0) {
        snprintf(err, errlen, "vga: ports %#x-%#x already taken", DISPI_PORT,
                 DISPI_PORT + DISPI_PORT_LEN - 1);
        goto fail;
    }
    v->dispi_registered = true;
    if (io_bus_register(p->mmio, VGA_LEGACY_MEM, VGA_LEGACY_MEM_LEN, &window_ops, v, "vga-mem") < 0) {
        snprintf(err, errlen, "vga: memory window %#llx-%#llx already taken",
                 VGA_LEGACY_MEM, VGA_LEGACY_MEM + VGA_LEGACY_MEM_LEN - 1);
        goto fail;
    }
    v->mem_registered = true;
    if (pci_bus_add(bus, &v->pci, -1) < 0) {
        snprintf(err, errlen, "vga: no free PCI slot");
        goto fail;
    }
    if (disp)
        display_set_source(disp, &vga_source_ops, v);
    return v;
fail:
    vga_destroy(v);
    return NULL;
}

void vga_destroy(struct vga *v)
{
    if (!v)
        return;
    if (v->pci.bus)
        pci_bus_remove(&v->pci);
    if (v->ports_registered)
        io_bus_unregister(v->plat->pio, PORT_BASE, v);
    if (v->dispi_registered)
        io_bus_unregister(v->plat->pio, DISPI_PORT, v);
    if (v->mem_registered)
        io_bus_unregister(v->plat->mmio, VGA_LEGACY_MEM, v);
    if (v->disp)
        display_set_source(v->disp, NULL, NULL);
    vga_render_free(&v->rend);
    munmap(v->s.vram, v->s.vram_size);
    free(v->s.dirty);
    free(v->rom);
    free(v);
}

struct pci_device *vga_pci(struct vga *v)
{
    return &v->pci;
}

uint8_t *vga_vram(struct vga *v, uint64_t *size)
{
    if (size)
        *size = v->s.vram_size;
    return v->s.vram;
}

void vga_set_vram_map_cb(struct vga *v, vga_vram_map_fn fn, void *opaque)
{
    v->map_cb = fn;
    v->map_opaque = opaque;
}

void vga_set_dirty_sync(struct vga *v, vga_dirty_sync_fn fn, void *opaque)
{
    v->sync_cb = fn;
    v->sync_opaque = opaque;
}

void vga_mark_dirty_pages(struct vga *v, const uint64_t *bitmap, uint64_t first_page,
                          uint64_t npages)
{
    uint64_t total = v->s.vram_size >> VGA_PAGE_SHIFT;
    for (uint64_t i = 0; i < npages && first_page + i < total; i++) {
        if (!(bitmap[i / 64] & (1ULL << (i % 64))))
            continue;
        uint64_t pg = first_page + i;
        v->s.dirty[pg / 64] |= 1ULL << (pg % 64);
    }
}

void vga_mark_dirty(struct vga *v, uint64_t offset, uint64_t len)
{
    vga_state_mark(&v->s, offset, len);
}

void vga_set_clock(struct vga *v, uint64_t (*now_ns)(void *opaque), void *opaque)
{
    v->clock = now_ns ? now_ns : default_clock;
    v->clock_opaque = opaque;
}

unsigned vga_frames(const struct vga *v)
{
    return v->rend.frames;
}
