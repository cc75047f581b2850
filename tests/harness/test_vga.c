/* The VGA/VBE device and its renderer, driven through ports, the memory
 * window and the PCI BARs as a VGA BIOS or bochs-drm would, checked against
 * the VGA register reference and the Bochs VBE interface; and the display
 * surface's dirty-rectangle bookkeeping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/display.h"
#include "devices/util.h"
#include "devices/pci.h"
#include "devices/vga.h"
#include "support/harness_platform.h"

#define RAM_SIZE   (2u << 20)
#define LFB_BASE   0xe0000000ULL
#define MMIO_BASE  0xe1000000ULL
#define ROM_BASE   0xe1010000ULL
#define WINDOW     0xa0000ULL
#define VGA_ROM    "/usr/share/seabios/vgabios-stdvga.bin"

/* DISPI */
#define DISPI_INDEX 0x1ce
#define DISPI_DATA  0x1cf
enum { ID, XRES, YRES, BPP, ENABLE, BANK, VIRT_W, VIRT_H, X_OFF, Y_OFF, MEM64K };
#define EN_ENABLED  0x01
#define EN_GETCAPS  0x02
#define EN_8BIT_DAC 0x20
#define EN_LFB      0x40
#define EN_NOCLEAR  0x80

struct rect { unsigned x, y, w, h; };

struct fx {
    struct harness *h;
    struct pci_bus bus;
    struct display *disp;
    struct vga *vga;
    uint8_t devfn;
    uint64_t now;
    int listener;
    unsigned resizes, updates;
    struct rect last;
};

static void on_resize(void *opaque, const struct display_surface *s)
{
    struct fx *f = opaque;
    f->resizes++;
}

static void on_update(void *opaque, unsigned x, unsigned y, unsigned w, unsigned h)
{
    struct fx *f = opaque;
    if (getenv("VGA_TEST_DEBUG"))
        fprintf(stderr, "update %u,%u %ux%u\n", x, y, w, h);
    f->updates++;
    f->last = (struct rect){ x, y, w, h };
}

static const struct display_listener_ops listener_ops = { on_resize, on_update };

static uint64_t test_clock(void *opaque)
{
    return ((struct fx *)opaque)->now;
}

static void cfg_write(struct fx *f, unsigned off, unsigned size, uint32_t v)
{
    pci_config_write(&f->bus, f->devfn, off, size, v);
}

static uint32_t cfg_read(struct fx *f, unsigned off, unsigned size)
{
    return pci_config_read(&f->bus, f->devfn, off, size);
}

static struct fx *make(const char *rom)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->h = harness_new(RAM_SIZE);
    assert_non_null(f->h);
    pci_bus_init(&f->bus, &f->h->plat);
    f->disp = display_new(NULL);
    assert_non_null(f->disp);
    char err[256] = "";
    f->vga = vga_create(&f->h->plat, &f->bus, f->disp, rom, err, sizeof(err));
    if (!f->vga)
        fail_msg("vga_create: %s", err);
    vga_set_clock(f->vga, test_clock, f);
    int devfn = -1;
    for (int i = 0; i < 256 && devfn < 0; i++)
        if (f->bus.devices[i] == vga_pci(f->vga))
            devfn = i;
    assert_true(devfn >= 0);
    f->devfn = (uint8_t)devfn;
    cfg_write(f, PCI_BASE_ADDRESS_0, 4, (uint32_t)LFB_BASE);
    cfg_write(f, PCI_BASE_ADDRESS_0 + 8, 4, (uint32_t)MMIO_BASE);
    cfg_write(f, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
    f->listener = display_add_listener(f->disp, &listener_ops, f);
    assert_true(f->listener >= 0);
    return f;
}

static int setup(void **state)
{
    *state = make(NULL);
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    vga_destroy(f->vga);
    display_free(f->disp);
    harness_free(f->h);
    free(f);
    return 0;
}

/* --- guest-side helpers ---------------------------------------------- */

static void outb(struct fx *f, uint16_t port, uint8_t v) { harness_pio_write(f->h, port, 1, v); }
static uint8_t inb(struct fx *f, uint16_t port) { return (uint8_t)harness_pio_read(f->h, port, 1); }

static void dispi_w(struct fx *f, unsigned idx, uint16_t v)
{
    harness_pio_write(f->h, DISPI_INDEX, 2, idx);
    harness_pio_write(f->h, DISPI_DATA, 2, v);
}

static uint16_t dispi_r(struct fx *f, unsigned idx)
{
    harness_pio_write(f->h, DISPI_INDEX, 2, idx);
    return (uint16_t)harness_pio_read(f->h, DISPI_DATA, 2);
}

/* Palette address source on (the display shows), through the attribute
 * controller's index port after a read of input status 1 resets its
 * flip-flop; a VGA BIOS and bochs-drm leave it so around a mode set. */
static void video_on(struct fx *f, bool on)
{
    (void)harness_pio_read(f->h, 0x3da, 1);
    harness_pio_write(f->h, 0x3c0, 1, on ? 0x20 : 0x00);
}

static void vbe_mode(struct fx *f, unsigned w, unsigned h, unsigned bpp, uint16_t flags)
{
    video_on(f, true);
    dispi_w(f, ENABLE, 0);
    dispi_w(f, BPP, (uint16_t)bpp);
    dispi_w(f, XRES, (uint16_t)w);
    dispi_w(f, YRES, (uint16_t)h);
    dispi_w(f, BANK, 0);
    dispi_w(f, ENABLE, EN_ENABLED | flags);
}

static void dac_set(struct fx *f, uint8_t idx, uint8_t r, uint8_t g, uint8_t b)
{
    outb(f, 0x3c8, idx);
    outb(f, 0x3c9, r);
    outb(f, 0x3c9, g);
    outb(f, 0x3c9, b);
}

static void sr_w(struct fx *f, uint8_t i, uint8_t v) { outb(f, 0x3c4, i); outb(f, 0x3c5, v); }
static void gr_w(struct fx *f, uint8_t i, uint8_t v) { outb(f, 0x3ce, i); outb(f, 0x3cf, v); }
static void cr_w(struct fx *f, uint8_t i, uint8_t v) { outb(f, 0x3d4, i); outb(f, 0x3d5, v); }
static uint8_t cr_r(struct fx *f, uint8_t i) { outb(f, 0x3d4, i); return inb(f, 0x3d5); }

static void wmem(struct fx *f, uint64_t addr, uint8_t v) { harness_mmio_write(f->h, addr, 1, v); }
static uint8_t rmem(struct fx *f, uint64_t addr) { return (uint8_t)harness_mmio_read(f->h, addr, 1); }

/* Standard VGA BIOS register sets (IBM VGA technical reference tables). */
struct vga_regs {
    uint8_t misc, sr[5], cr[25], gr[9], ar[21];
};

static const struct vga_regs mode3 = {
    0x67, { 0x03, 0x00, 0x03, 0x00, 0x02 },
    { 0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00,
      0x00, 0x9c, 0x8e, 0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff },
    { 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x00, 0xff },
    { 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e,
      0x3f, 0x0c, 0x00, 0x0f, 0x08, 0x00 },
};

static const struct vga_regs mode13 = {
    0x63, { 0x03, 0x01, 0x0f, 0x00, 0x0e },
    { 0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00, 0x41, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x9c, 0x0e, 0x8f, 0x28, 0x40, 0x96, 0xb9, 0xa3, 0xff },
    { 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x05, 0x0f, 0xff },
    { 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
      0x0f, 0x41, 0x00, 0x0f, 0x00, 0x00 },
};

static const struct vga_regs mode12 = {
    0xe3, { 0x03, 0x01, 0x0f, 0x00, 0x06 },
    { 0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0x0b, 0x3e, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0xea, 0x8c, 0xdf, 0x28, 0x00, 0xe7, 0x04, 0xe3, 0xff },
    { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0f, 0xff },
    { 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e,
      0x3f, 0x01, 0x00, 0x0f, 0x00, 0x00 },
};

static void set_regs(struct fx *f, const struct vga_regs *m)
{
    outb(f, 0x3c2, m->misc);
    for (uint8_t i = 0; i < 5; i++)
        sr_w(f, i, m->sr[i]);
    cr_w(f, 0x11, cr_r(f, 0x11) & 0x7f);   /* unprotect CR0-7 */
    for (uint8_t i = 0; i < 25; i++)
        cr_w(f, i, m->cr[i]);
    for (uint8_t i = 0; i < 9; i++)
        gr_w(f, i, m->gr[i]);
    inb(f, 0x3da);                          /* attribute flip-flop to index */
    for (uint8_t i = 0; i < 21; i++) {
        outb(f, 0x3c0, i);
        outb(f, 0x3c0, m->ar[i]);
    }
    outb(f, 0x3c0, 0x20);                   /* palette address source: video on */
}

static uint32_t px(struct fx *f, unsigned x, unsigned y)
{
    const struct display_surface *s = display_surface(f->disp);
    assert_true(x < s->width && y < s->height);
    return ((const uint32_t *)((const uint8_t *)s->pixels + (size_t)y * s->stride))[x];
}

static void refresh(struct fx *f)
{
    f->updates = 0;
    display_refresh(f->disp);
}

static void assert_size(struct fx *f, unsigned w, unsigned h)
{
    const struct display_surface *s = display_surface(f->disp);
    assert_int_equal(s->width, w);
    assert_int_equal(s->height, h);
}

/* --- PCI and DISPI identity ------------------------------------------ */

static void test_pci_identity(void **state)
{
    struct fx *f = *state;
    assert_int_equal(cfg_read(f, 0, 4), 0x11111234);
    assert_int_equal(cfg_read(f, 0x08, 4) >> 8, 0x030000);
    /* BAR0: 16 MiB prefetchable 32-bit memory; BAR2: 4 KiB memory */
    cfg_write(f, PCI_BASE_ADDRESS_0, 4, 0xffffffff);
    assert_int_equal(cfg_read(f, PCI_BASE_ADDRESS_0, 4), 0xff000008);
    cfg_write(f, PCI_BASE_ADDRESS_0 + 8, 4, 0xffffffff);
    assert_int_equal(cfg_read(f, PCI_BASE_ADDRESS_0 + 8, 4), 0xfffff000);
    cfg_write(f, PCI_BASE_ADDRESS_0, 4, (uint32_t)LFB_BASE);
    cfg_write(f, PCI_BASE_ADDRESS_0 + 8, 4, (uint32_t)MMIO_BASE);
    /* the framebuffer BAR reaches video memory */
    uint64_t size = 0;
    uint8_t *vram = vga_vram(f->vga, &size);
    assert_int_equal(size, 16u << 20);
    harness_mmio_write(f->h, LFB_BASE + 0x123458, 4, 0xdeadbeef);
    assert_int_equal(ld_le(vram + 0x123458, 4), 0xdeadbeef);
    assert_int_equal(harness_mmio_read(f->h, LFB_BASE + 0x123458, 4), 0xdeadbeef);
    /* extended registers: size and little-endian marker */
    assert_int_equal(harness_mmio_read(f->h, MMIO_BASE + 0x600, 4), 8);
    assert_int_equal(harness_mmio_read(f->h, MMIO_BASE + 0x604, 4), 0x1e1e1e1e);
}

static void test_rom(void **state)
{
    (void)state;
    if (access(VGA_ROM, R_OK) != 0) {
        fail_msg("%s not installed (install-deps.sh installs Debian's seabios)", VGA_ROM);
    }
    struct fx *f = make(VGA_ROM);
    cfg_write(f, PCI_ROM_ADDRESS, 4, 0xfffff800);
    uint32_t sz = ~(cfg_read(f, PCI_ROM_ADDRESS, 4) & ~0x7ffu) + 1;
    assert_true(sz >= 39936 && (sz & (sz - 1)) == 0);
    cfg_write(f, PCI_ROM_ADDRESS, 4, (uint32_t)ROM_BASE | 1);
    assert_int_equal(harness_mmio_read(f->h, ROM_BASE, 2), 0xaa55);
    /* PCI data structure of the option ROM names this device */
    uint16_t pcir = (uint16_t)harness_mmio_read(f->h, ROM_BASE + 0x18, 2);
    assert_int_equal(harness_mmio_read(f->h, ROM_BASE + pcir, 4), 0x52494350);   /* "PCIR" */
    assert_int_equal(harness_mmio_read(f->h, ROM_BASE + pcir + 4, 4), 0x11111234);
    /* Past the image, up to the end of the BAR, the ROM reads as zeroes,
     * never as whatever follows the image in the host's memory. */
    struct stat st;
    assert_int_equal(stat(VGA_ROM, &st), 0);
    assert_true((uint64_t)st.st_size < sz);
    for (uint64_t off = (uint64_t)st.st_size; off < sz; off += 8)
        assert_int_equal(harness_mmio_read(f->h, ROM_BASE + off, 8), 0);
    vga_destroy(f->vga);
    display_free(f->disp);
    harness_free(f->h);
    free(f);

    /* a missing or bogus ROM is a clear error */
    struct harness *h = harness_new(RAM_SIZE);
    struct pci_bus bus;
    pci_bus_init(&bus, &h->plat);
    char err[256] = "";
    assert_null(vga_create(&h->plat, &bus, NULL, "/nonexistent/vgabios.bin", err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/vgabios.bin"));
    char tmp[] = "/tmp/vga-rom-XXXXXX";
    int fd = mkstemp(tmp);
    assert_true(fd >= 0);
    uint8_t junk[1024] = { 0x12, 0x34 };
    assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    close(fd);
    assert_null(vga_create(&h->plat, &bus, NULL, tmp, err, sizeof(err)));
    assert_non_null(strstr(err, "signature"));
    unlink(tmp);
    /* the resources of a failed creation were given back */
    struct vga *v = vga_create(&h->plat, &bus, NULL, NULL, err, sizeof(err));
    assert_non_null(v);
    vga_destroy(v);
    harness_free(h);
}

static void test_dispi_id_caps(void **state)
{
    struct fx *f = *state;
    assert_int_equal(dispi_r(f, ID), 0xb0c5);
    dispi_w(f, ID, 0xb0c0);
    assert_int_equal(dispi_r(f, ID), 0xb0c0);
    dispi_w(f, ID, 0x1234);                 /* not an interface version */
    assert_int_equal(dispi_r(f, ID), 0xb0c0);
    dispi_w(f, ID, 0xb0c5);
    assert_int_equal(dispi_r(f, MEM64K), 256);
    dispi_w(f, XRES, 800);
    dispi_w(f, ENABLE, EN_GETCAPS);
    assert_int_equal(dispi_r(f, XRES), 4096);
    assert_int_equal(dispi_r(f, YRES), 4096);
    assert_int_equal(dispi_r(f, BPP), 32);
    assert_int_equal(dispi_r(f, ENABLE), EN_GETCAPS);
    dispi_w(f, ENABLE, 0);
    assert_int_equal(dispi_r(f, XRES), 800);
    /* the same registers through the MMIO BAR, 16 bits at index * 2 */
    assert_int_equal(harness_mmio_read(f->h, MMIO_BASE + 0x500, 2), 0xb0c5);
    harness_mmio_write(f->h, MMIO_BASE + 0x500 + 2 * YRES, 2, 600);
    assert_int_equal(dispi_r(f, YRES), 600);
    assert_int_equal(harness_mmio_read(f->h, MMIO_BASE + 0x500 + 2 * MEM64K, 2), 256);
}

/* --- VBE modes --------------------------------------------------------- */

/* bochs-drm's blanking: the VGA ports through the MMIO BAR (0x400 + port
 * - 0x3c0); the palette address source bit blanks or shows the screen. */
static void bochs_blank(struct fx *f, bool blank)
{
    harness_mmio_write(f->h, MMIO_BASE + 0x400 + (0x3c2 - 0x3c0), 1, 0x01);
    (void)harness_mmio_read(f->h, MMIO_BASE + 0x400 + (0x3da - 0x3c0), 1);
    harness_mmio_write(f->h, MMIO_BASE + 0x400, 1, blank ? 0x00 : 0x20);
}

static void test_vbe_32bpp(void **state)
{
    struct fx *f = *state;
    /* bochs-drm's sequence, through the MMIO BAR: unblank (colour I/O in
     * misc, input status 1 read, AR index with the palette address source
     * bit), then the DISPI registers */
    bochs_blank(f, false);
    uint64_t r = MMIO_BASE + 0x500;
    harness_mmio_write(f->h, r + 2 * ENABLE, 2, 0);
    harness_mmio_write(f->h, r + 2 * BPP, 2, 32);
    harness_mmio_write(f->h, r + 2 * XRES, 2, 640);
    harness_mmio_write(f->h, r + 2 * YRES, 2, 480);
    harness_mmio_write(f->h, r + 2 * BANK, 2, 0);
    harness_mmio_write(f->h, r + 2 * VIRT_W, 2, 640);
    harness_mmio_write(f->h, r + 2 * VIRT_H, 2, 480);
    harness_mmio_write(f->h, r + 2 * X_OFF, 2, 0);
    harness_mmio_write(f->h, r + 2 * Y_OFF, 2, 0);
    harness_mmio_write(f->h, r + 2 * ENABLE, 2, EN_ENABLED | EN_LFB);
    assert_int_equal(dispi_r(f, ENABLE), EN_ENABLED | EN_LFB);
    harness_mmio_write(f->h, LFB_BASE + 0, 4, 0x00112233);
    harness_mmio_write(f->h, LFB_BASE + (479 * 640 + 639) * 4, 4, 0xffabcdef);
    harness_mmio_write(f->h, LFB_BASE + (100 * 640 + 200) * 4, 4, 0x00ff0000);
    refresh(f);
    assert_size(f, 640, 480);
    assert_true(f->resizes >= 1);           /* the mode set */
    assert_int_equal(px(f, 0, 0), 0x112233);
    assert_int_equal(px(f, 639, 479), 0xabcdef);
    assert_int_equal(px(f, 200, 100), 0xff0000);
    assert_int_equal(px(f, 201, 100), 0);
    /* panning: Y offset 1 shows line 1 at the top */
    dispi_w(f, Y_OFF, 1);
    refresh(f);
    assert_int_equal(px(f, 200, 99), 0xff0000);
}

/* A VBE mode blanked the way bochs-drm does it for DPMS off and fbdev
 * blanking: the palette address source bit cleared, the VBE mode left
 * enabled.  The screen turns black at the same size and comes back as it
 * was when the bit is set again. */
static void test_vbe_blank(void **state)
{
    struct fx *f = *state;
    bochs_blank(f, false);
    vbe_mode(f, 320, 200, 32, EN_LFB);
    harness_mmio_write(f->h, LFB_BASE + (10 * 320 + 20) * 4, 4, 0x00c0ffee);
    refresh(f);
    assert_size(f, 320, 200);
    assert_int_equal(px(f, 20, 10), 0xc0ffee);

    bochs_blank(f, true);
    assert_int_equal(dispi_r(f, ENABLE) & EN_ENABLED, EN_ENABLED);
    refresh(f);
    assert_true(f->updates >= 1);
    assert_size(f, 320, 200);
    for (unsigned y = 0; y < 200; y++)
        for (unsigned x = 0; x < 320; x++)
            if (px(f, x, y))
                fail_msg("pixel %u,%u lit (%#x) on the blanked screen", x, y, px(f, x, y));
    /* drawing while blanked shows nothing yet */
    harness_mmio_write(f->h, LFB_BASE + (11 * 320 + 21) * 4, 4, 0x00123456);
    refresh(f);
    assert_int_equal(px(f, 21, 11), 0);

    bochs_blank(f, false);
    refresh(f);
    assert_size(f, 320, 200);
    assert_int_equal(px(f, 20, 10), 0xc0ffee);
    assert_int_equal(px(f, 21, 11), 0x123456);
}

static void test_vbe_depths(void **state)
{
    struct fx *f = *state;
    uint8_t *vram = vga_vram(f->vga, NULL);
    vbe_mode(f, 16, 4, 16, EN_LFB);
    st_le(vram, 2, 0xf800);                 /* 5:6:5 red */
    st_le(vram + 2, 2, 0x07e0);             /* green */
    st_le(vram + 4, 2, 0x001f);             /* blue */
    vga_mark_dirty(f->vga, 0, 6);
    refresh(f);
    assert_size(f, 16, 4);
    assert_int_equal(px(f, 0, 0), 0xff0000);
    assert_int_equal(px(f, 1, 0), 0x00ff00);
    assert_int_equal(px(f, 2, 0), 0x0000ff);

    vbe_mode(f, 16, 4, 15, EN_LFB);
    st_le(vram, 2, 0x7c00);
    st_le(vram + 2, 2, 0x03e0 | 0x0010);
    vga_mark_dirty(f->vga, 0, 4);
    refresh(f);
    assert_int_equal(px(f, 0, 0), 0xff0000);
    assert_int_equal(px(f, 1, 0), 0x00ff84);

    vbe_mode(f, 16, 4, 24, EN_LFB);
    vram[0] = 0x11; vram[1] = 0x22; vram[2] = 0x33;   /* B G R */
    vram[3 * 16 + 3] = 0xff;                           /* (1,1) blue */
    vga_mark_dirty(f->vga, 0, 64);
    refresh(f);
    assert_int_equal(px(f, 0, 0), 0x332211);
    assert_int_equal(px(f, 1, 1), 0x0000ff);
}

static void test_vbe_8bpp_palette(void **state)
{
    struct fx *f = *state;
    vbe_mode(f, 320, 200, 8, EN_LFB);
    dac_set(f, 5, 63, 0, 0);
    dac_set(f, 6, 0, 42, 21);
    harness_mmio_write(f->h, LFB_BASE + 10, 1, 5);
    harness_mmio_write(f->h, LFB_BASE + 320 + 11, 1, 6);
    refresh(f);
    assert_int_equal(px(f, 10, 0), 0xff0000);
    assert_int_equal(px(f, 11, 1), 0x00aa55);
    assert_int_equal(px(f, 12, 1), 0);
    /* reading the DAC back */
    outb(f, 0x3c7, 6);
    assert_int_equal(inb(f, 0x3c7), 3);
    assert_int_equal(inb(f, 0x3c9), 0);
    assert_int_equal(inb(f, 0x3c9), 42);
    assert_int_equal(inb(f, 0x3c9), 21);
    /* a palette change alone redraws the screen */
    dac_set(f, 5, 0, 0, 63);
    refresh(f);
    assert_true(f->updates > 0);
    assert_int_equal(px(f, 10, 0), 0x0000ff);
    /* pixel mask */
    outb(f, 0x3c6, 0x01);                   /* 5 & 1 = 1, 6 & 1 = 0 */
    dac_set(f, 1, 0, 63, 0);
    refresh(f);
    assert_int_equal(px(f, 10, 0), 0x00ff00);
    outb(f, 0x3c6, 0xff);
    /* 8-bit DAC: components as written */
    dispi_w(f, ENABLE, EN_ENABLED | EN_LFB | EN_8BIT_DAC);
    dac_set(f, 5, 0x80, 0x81, 0x82);
    refresh(f);
    assert_int_equal(px(f, 10, 0), 0x808182);
}

static void test_bank_switching(void **state)
{
    struct fx *f = *state;
    uint8_t *vram = vga_vram(f->vga, NULL);
    vbe_mode(f, 640, 480, 8, 0);
    /* VGA BIOS register setup for a packed VBE mode: 64 KiB window at A0000 */
    outb(f, 0x3c2, 0x63);
    gr_w(f, 6, 0x05);
    dispi_w(f, BANK, 3);
    assert_int_equal(dispi_r(f, BANK), 3);
    wmem(f, WINDOW + 0x10, 0x5a);
    assert_int_equal(vram[3 * 0x10000 + 0x10], 0x5a);
    assert_int_equal(rmem(f, WINDOW + 0x10), 0x5a);
    dispi_w(f, BANK, 0);
    assert_int_equal(rmem(f, WINDOW + 0x10), 0);
    /* the pixel: offset 0x30010 = line 307, column 0x30010 - 307 * 640 */
    dac_set(f, 0x5a, 63, 63, 63);
    refresh(f);
    assert_int_equal(px(f, 0x30010 - 307 * 640, 307), 0xffffff);
    /* a bank past video memory is refused */
    dispi_w(f, BANK, 300);
    assert_int_equal(dispi_r(f, BANK), 0);
    dispi_w(f, BANK, 255);
    assert_int_equal(dispi_r(f, BANK), 255);
    wmem(f, WINDOW + 0xffff, 0x77);
    assert_int_equal(vram[(16u << 20) - 1], 0x77);
}

/* --- text mode --------------------------------------------------------- */

static const uint8_t glyph_A[16] = {
    0x00, 0x00, 0x10, 0x38, 0x6c, 0xc6, 0xc6, 0xfe, 0xc6, 0xc6, 0xc6, 0xc6, 0x00, 0x00, 0x00, 0xff,
};

/* Loads glyphs as a VGA BIOS does: plane 2 alone, sequential addressing,
 * window at A0000, then back to text addressing. */
static void load_glyph(struct fx *f, uint8_t ch, const uint8_t *rows, unsigned n)
{
    sr_w(f, 2, 0x04);
    sr_w(f, 4, 0x07);
    gr_w(f, 4, 0x02);
    gr_w(f, 5, 0x00);
    gr_w(f, 6, 0x04);
    for (unsigned i = 0; i < n; i++)
        wmem(f, WINDOW + ch * 32u + i, rows[i]);
    sr_w(f, 2, 0x03);
    sr_w(f, 4, 0x02);
    gr_w(f, 4, 0x00);
    gr_w(f, 5, 0x10);
    gr_w(f, 6, 0x0e);
}

static void text_setup(struct fx *f)
{
    set_regs(f, &mode3);
    dac_set(f, 0x01, 0, 0, 42);             /* blue */
    dac_set(f, 0x3e, 63, 63, 21);           /* yellow */
    dac_set(f, 0x07, 42, 42, 42);
    load_glyph(f, 'A', glyph_A, 16);
    load_glyph(f, 0xc4, glyph_A, 16);       /* a line-graphics code */
    cr_w(f, 0x0a, 0x20);                    /* cursor off */
}

static void check_cell(struct fx *f, unsigned col, unsigned row, const uint8_t *g,
                       uint32_t fg, uint32_t bg, bool dup9)
{
    for (unsigned y = 0; y < 16; y++) {
        for (unsigned x = 0; x < 8; x++)
            assert_int_equal(px(f, col * 9 + x, row * 16 + y), (g[y] & (0x80 >> x)) ? fg : bg);
        assert_int_equal(px(f, col * 9 + 8, row * 16 + y), (dup9 && (g[y] & 1)) ? fg : bg);
    }
}

static void test_text_mode(void **state)
{
    struct fx *f = *state;
    text_setup(f);
    wmem(f, 0xb8000, 'A');
    wmem(f, 0xb8001, 0x1e);                 /* yellow on blue */
    wmem(f, 0xb8000 + 2 * 81, 0xc4);        /* row 1, column 1 */
    wmem(f, 0xb8000 + 2 * 81 + 1, 0x1e);
    refresh(f);
    assert_size(f, 720, 400);
    check_cell(f, 0, 0, glyph_A, 0xffff55, 0x0000aa, false);
    check_cell(f, 1, 1, glyph_A, 0xffff55, 0x0000aa, true);
    /* the text is visible to front-ends as cells */
    struct display_text t;
    assert_true(display_get_text(f->disp, &t));
    assert_int_equal(t.cols, 80);
    assert_int_equal(t.rows, 25);
    assert_int_equal(t.cells[0], 0x1e41);
    assert_int_equal(t.cells[81], 0x1ec4);
    /* text memory reads back through odd/even addressing */
    assert_int_equal(rmem(f, 0xb8000), 'A');
    assert_int_equal(rmem(f, 0xb8001), 0x1e);

    /* 8-dot characters: 640 wide */
    sr_w(f, 1, 0x01);
    refresh(f);
    assert_size(f, 640, 400);
    assert_int_equal(px(f, 8 + 1, 16 + 4), 0xffff55);
    assert_int_equal(px(f, 8 + 3, 16 + 4), 0x0000aa);
    sr_w(f, 1, 0x00);

    /* blink: attribute bit 7 hides the glyph in the off phase */
    wmem(f, 0xb8001, 0x9e);
    f->now = 0;
    refresh(f);
    check_cell(f, 0, 0, glyph_A, 0xffff55, 0x0000aa, false);
    f->now = 32 * 16666667ULL + 1;
    refresh(f);
    check_cell(f, 0, 0, glyph_A, 0x0000aa, 0x0000aa, false);
    /* with blink disabled bit 7 is a bright background */
    inb(f, 0x3da);
    outb(f, 0x3c0, 0x30);
    outb(f, 0x3c0, 0x04);
    dac_set(f, 0x39, 21, 21, 63);           /* AR9 -> DAC 0x39 */
    refresh(f);
    check_cell(f, 0, 0, glyph_A, 0xffff55, 0x5555ff, false);
}

static void test_cursor(void **state)
{
    struct fx *f = *state;
    text_setup(f);
    wmem(f, 0xb8000 + 2 * 5, ' ');
    wmem(f, 0xb8000 + 2 * 5 + 1, 0x07);
    wmem(f, 0xb8000 + 2 * 82 + 1, 0x07);
    cr_w(f, 0x0a, 0x0e);
    cr_w(f, 0x0b, 0x0f);
    cr_w(f, 0x0e, 0x00);
    cr_w(f, 0x0f, 5);                       /* column 5 of row 0 */
    f->now = 0;
    refresh(f);
    for (unsigned x = 0; x < 9; x++) {
        assert_int_equal(px(f, 45 + x, 13), 0);
        assert_int_equal(px(f, 45 + x, 14), 0xaaaaaa);
        assert_int_equal(px(f, 45 + x, 15), 0xaaaaaa);
    }
    struct display_text t;
    assert_true(display_get_text(f->disp, &t));
    assert_true(t.cursor_visible);
    assert_int_equal(t.cursor_col, 5);
    assert_int_equal(t.cursor_row, 0);
    /* blink off phase: only the cursor cell is redrawn */
    f->now = 16 * 16666667ULL + 1;
    refresh(f);
    assert_int_equal(px(f, 45, 14), 0);
    assert_int_equal(f->updates, 1);
    assert_int_equal(f->last.x, 45);
    assert_int_equal(f->last.y, 0);
    assert_int_equal(f->last.w, 9);
    assert_int_equal(f->last.h, 16);
    /* moving it: old and new cells */
    f->now = 0;
    cr_w(f, 0x0f, 80 + 2);                  /* row 1, column 2 */
    refresh(f);
    assert_int_equal(px(f, 18, 16 + 15), 0xaaaaaa);
    assert_int_equal(px(f, 45, 14), 0);
    /* disabled by CR0A bit 5 */
    cr_w(f, 0x0a, 0x2e);
    refresh(f);
    assert_int_equal(px(f, 18, 16 + 15), 0);
}

/* --- dirty tracking ---------------------------------------------------- */

static void test_dirty_tracking(void **state)
{
    struct fx *f = *state;
    text_setup(f);
    refresh(f);
    unsigned frames = vga_frames(f->vga);
    assert_true(f->updates > 0);
    /* nothing changed: nothing drawn, nothing sent */
    refresh(f);
    refresh(f);
    assert_int_equal(f->updates, 0);
    assert_int_equal(vga_frames(f->vga), frames);
    /* one cell: one cell-sized rectangle */
    wmem(f, 0xb8000 + 2 * (80 * 3 + 7), 'A');
    refresh(f);
    assert_int_equal(f->updates, 1);
    assert_int_equal(f->last.x, 7 * 9);
    assert_int_equal(f->last.y, 3 * 16);
    assert_int_equal(f->last.w, 9);
    assert_int_equal(f->last.h, 16);
    /* writing the same value again changes no pixel */
    wmem(f, 0xb8000 + 2 * (80 * 3 + 7), 'A');
    refresh(f);
    assert_int_equal(f->updates, 0);
    /* a glyph change redraws the screen */
    uint8_t g[1] = { 0x81 };
    load_glyph(f, 'A', g, 1);
    refresh(f);
    assert_int_equal(f->updates, 1);
    assert_int_equal(f->last.w, 720);
    assert_int_equal(f->last.h, 400);

    /* linear mode: one pixel, one line */
    vbe_mode(f, 640, 480, 32, EN_LFB);
    refresh(f);
    refresh(f);
    assert_int_equal(f->updates, 0);
    harness_mmio_write(f->h, LFB_BASE + (200 * 640 + 3) * 4, 4, 0xffffff);
    refresh(f);
    assert_int_equal(f->updates, 1);
    assert_int_equal(f->last.y, 200);
    assert_true(f->last.h <= 2);            /* page granularity: line 201 shares it */
    assert_int_equal(f->last.w, 640);
    /* pages reported by the machine's dirty log */
    uint8_t *vram = vga_vram(f->vga, NULL);
    st_le(vram + 300 * 640 * 4, 4, 0x00ff00);
    refresh(f);
    assert_int_equal(f->updates, 0);        /* not reported: not seen */
    uint64_t bm = 1;
    vga_mark_dirty_pages(f->vga, &bm, (300 * 640 * 4) >> 12, 1);
    refresh(f);
    assert_true(f->updates >= 1);
    assert_int_equal(px(f, 0, 300), 0x00ff00);
}

/* --- mode 13h and planar modes ----------------------------------------- */

static void test_mode13h(void **state)
{
    struct fx *f = *state;
    set_regs(f, &mode13);
    dac_set(f, 1, 63, 0, 0);
    dac_set(f, 2, 0, 63, 0);
    dac_set(f, 0xff, 0, 0, 63);
    for (unsigned x = 0; x < 320; x++)
        wmem(f, WINDOW + 10 * 320 + x, 1);
    wmem(f, WINDOW + 199 * 320 + 319, 0xff);
    wmem(f, WINDOW + 50 * 320 + 101, 2);
    refresh(f);
    assert_size(f, 320, 200);
    assert_int_equal(px(f, 0, 10), 0xff0000);
    assert_int_equal(px(f, 319, 10), 0xff0000);
    assert_int_equal(px(f, 0, 11), 0);
    assert_int_equal(px(f, 319, 199), 0x0000ff);
    assert_int_equal(px(f, 101, 50), 0x00ff00);
    assert_int_equal(px(f, 100, 50), 0);
    assert_int_equal(rmem(f, WINDOW + 50 * 320 + 101), 2);
    /* chain-4 spreads consecutive bytes over the four planes */
    assert_int_equal(rmem(f, WINDOW + 50 * 320 + 100), 0);
    sr_w(f, 4, 0x06);                       /* unchain (mode X) */
    gr_w(f, 4, 1);                          /* read plane 1 */
    assert_int_equal(rmem(f, WINDOW + (50 * 320 + 100)), 2);
}

static void test_planar_write_modes(void **state)
{
    struct fx *f = *state;
    uint8_t *vram = vga_vram(f->vga, NULL);
    set_regs(f, &mode12);
    for (unsigned c = 0; c < 16; c++)
        dac_set(f, mode12.ar[c], (uint8_t)(c * 4), 0, (uint8_t)(63 - c * 4));
    refresh(f);
    assert_size(f, 640, 480);

    /* write mode 2: colour 0xa into the pixels the bit mask selects */
    gr_w(f, 5, 0x02);
    gr_w(f, 8, 0xf0);
    wmem(f, WINDOW + 0, 0x0a);
    for (unsigned p = 0; p < 4; p++)
        assert_int_equal(vram[p], (0x0a >> p) & 1 ? 0xf0 : 0x00);
    refresh(f);
    uint32_t ca = (uint32_t)((0xa * 4) << 2 | (0xa * 4) >> 4) << 16 |
                  (uint32_t)(((63 - 0xa * 4) << 2) | ((63 - 0xa * 4) >> 4));
    assert_int_equal(px(f, 0, 0), ca);
    assert_int_equal(px(f, 3, 0), ca);
    assert_int_equal(px(f, 4, 0), 0x0000ff);   /* colour 0: DAC 0 = (0,0,63) */

    /* write mode 0 with set/reset on planes 0 and 1, data to the others */
    gr_w(f, 5, 0x00);
    gr_w(f, 8, 0xff);
    gr_w(f, 0, 0x01);                       /* set/reset value: plane 0 set */
    gr_w(f, 1, 0x03);                       /* enable set/reset for planes 0,1 */
    wmem(f, WINDOW + 1, 0x3c);
    assert_int_equal(vram[4 + 0], 0xff);
    assert_int_equal(vram[4 + 1], 0x00);
    assert_int_equal(vram[4 + 2], 0x3c);
    assert_int_equal(vram[4 + 3], 0x3c);
    gr_w(f, 1, 0x00);

    /* rotate 4 and XOR with the latches */
    rmem(f, WINDOW + 1);                    /* load latches */
    gr_w(f, 3, 0x18 | 4);
    wmem(f, WINDOW + 1, 0x0f);              /* rotated: 0xf0 */
    assert_int_equal(vram[4 + 0], 0x0f);
    assert_int_equal(vram[4 + 2], 0xcc);
    gr_w(f, 3, 0x00);

    /* write mode 1 copies the latches (a screen-to-screen move) */
    rmem(f, WINDOW + 1);
    gr_w(f, 5, 0x01);
    wmem(f, WINDOW + 2, 0x00);
    for (unsigned p = 0; p < 4; p++)
        assert_int_equal(vram[8 + p], vram[4 + p]);

    /* write mode 3: set/reset colour through rotated data AND bit mask */
    gr_w(f, 5, 0x03);
    gr_w(f, 0, 0x0c);
    gr_w(f, 8, 0x0f);
    wmem(f, WINDOW + 3, 0xff);
    /* masked-off bits come from the latches (still 0f f0 cc cc) */
    assert_int_equal(vram[12 + 0], 0x00);
    assert_int_equal(vram[12 + 1], 0xf0);
    assert_int_equal(vram[12 + 2], 0xcf);
    assert_int_equal(vram[12 + 3], 0xcf);

    /* map mask limits the planes written */
    gr_w(f, 5, 0x00);
    gr_w(f, 8, 0xff);
    sr_w(f, 2, 0x02);
    wmem(f, WINDOW + 4, 0x55);
    assert_int_equal(vram[16 + 0], 0x00);
    assert_int_equal(vram[16 + 1], 0x55);
    sr_w(f, 2, 0x0f);

    /* read mode 1: colour compare */
    gr_w(f, 5, 0x08);
    gr_w(f, 2, 0x0a);                       /* compare with colour 0xa */
    gr_w(f, 7, 0x0f);
    assert_int_equal(rmem(f, WINDOW + 0), 0xf0);
    gr_w(f, 7, 0x00);                       /* nothing cared about: all match */
    assert_int_equal(rmem(f, WINDOW + 0), 0xff);
    /* read mode 0 with read map select */
    gr_w(f, 5, 0x00);
    gr_w(f, 4, 0x03);
    assert_int_equal(rmem(f, WINDOW + 1), 0x3c ^ 0xf0);
}

/* --- malformed input --------------------------------------------------- */

/* 4-bpp modes narrower than 8 pixels have no whole byte per plane line, so
 * a pitch of 0: both sequences once divided by it. */
static void test_vbe_planar_narrow(void **state)
{
    struct fx *f = *state;
    video_on(f, true);
    dispi_w(f, ENABLE, 0);
    dispi_w(f, BPP, 4);
    dispi_w(f, XRES, 7);
    dispi_w(f, YRES, 1);
    dispi_w(f, ENABLE, EN_ENABLED);
    assert_int_equal(dispi_r(f, ENABLE) & EN_ENABLED, 0);
    /* a valid 4-bpp mode, then narrowed below 8 pixels */
    vbe_mode(f, 640, 480, 4, EN_LFB);
    assert_int_equal(dispi_r(f, ENABLE) & EN_ENABLED, EN_ENABLED);
    dispi_w(f, XRES, 7);
    assert_int_equal(dispi_r(f, XRES), 640);
    dispi_w(f, VIRT_W, 7);
    assert_int_equal(dispi_r(f, VIRT_W), 640);
    dispi_w(f, XRES, 8);                    /* the narrowest that works */
    assert_int_equal(dispi_r(f, XRES), 8);
    assert_int_equal(dispi_r(f, VIRT_W), 640);
    refresh(f);                             /* the planar renderer copes */
}


static void test_malformed(void **state)
{
    struct fx *f = *state;
    /* a frame larger than video memory is refused */
    vbe_mode(f, 4096, 4096, 32, EN_LFB);
    assert_int_equal(dispi_r(f, ENABLE) & EN_ENABLED, 0);
    dispi_w(f, XRES, 5000);
    assert_int_equal(dispi_r(f, XRES), 4096);
    dispi_w(f, XRES, 0);
    assert_int_equal(dispi_r(f, XRES), 4096);
    dispi_w(f, BPP, 7);
    assert_int_equal(dispi_r(f, BPP), 32);
    dispi_w(f, BPP, 0);                     /* historical synonym of 8 */
    assert_int_equal(dispi_r(f, BPP), 8);
    /* while a mode shows, changes that would not fit are refused */
    vbe_mode(f, 2048, 1536, 32, EN_LFB);    /* 12 MiB */
    assert_int_equal(dispi_r(f, ENABLE) & EN_ENABLED, EN_ENABLED);
    assert_int_equal(dispi_r(f, VIRT_H), 2048);
    dispi_w(f, YRES, 4096);
    assert_int_equal(dispi_r(f, YRES), 1536);
    dispi_w(f, Y_OFF, 513);
    assert_int_equal(dispi_r(f, Y_OFF), 0);
    dispi_w(f, Y_OFF, 512);                 /* the last offset that fits: 16 MiB */
    assert_int_equal(dispi_r(f, Y_OFF), 512);
    dispi_w(f, X_OFF, 1);
    assert_int_equal(dispi_r(f, X_OFF), 0);
    dispi_w(f, Y_OFF, 0);
    dispi_w(f, VIRT_W, 4096);
    assert_int_equal(dispi_r(f, VIRT_W), 2048);
    dispi_w(f, MEM64K, 1);
    assert_int_equal(dispi_r(f, MEM64K), 256);
    dispi_w(f, BANK, 0xffff);
    assert_int_equal(dispi_r(f, BANK), 0);
    refresh(f);
    assert_size(f, 2048, 1536);
    /* out-of-range DISPI index */
    dispi_w(f, 0x55, 1234);
    assert_int_equal(dispi_r(f, 0x55), 0);
    /* odd-sized and misaligned MMIO */
    harness_mmio_write(f->h, MMIO_BASE + 0x501, 1, 0xff);
    harness_mmio_write(f->h, MMIO_BASE + 0x800, 4, 0xffffffff);
    harness_mmio_write(f->h, MMIO_BASE + 0x604, 4, 0xbebebebe);
    assert_int_equal(harness_mmio_read(f->h, MMIO_BASE + 0x604, 4), 0x1e1e1e1e);
    /* framebuffer access straddling the end of the BAR */
    harness_mmio_write(f->h, LFB_BASE + (16u << 20) - 2, 4, 0xffffffff);
    (void)harness_mmio_read(f->h, LFB_BASE + (16u << 20) - 2, 8);

    /* VGA indices out of range */
    dispi_w(f, ENABLE, 0);
    set_regs(f, &mode3);
    sr_w(f, 0x80, 0xff);
    gr_w(f, 0x40, 0xff);
    cr_w(f, 0xff, 0xff);
    outb(f, 0x3c4, 0x80);
    assert_int_equal(inb(f, 0x3c5), 0);
    inb(f, 0x3da);
    outb(f, 0x3c0, 0x1f);
    outb(f, 0x3c0, 0xff);
    outb(f, 0x3c0, 0x20);
    /* DAC indices wrap at 256 */
    outb(f, 0x3c8, 0xff);
    for (unsigned i = 0; i < 9; i++)
        outb(f, 0x3c9, 0x3f);
    outb(f, 0x3c7, 0xff);
    for (unsigned i = 0; i < 9; i++)
        (void)inb(f, 0x3c9);
    /* CRTC protect bit: CR0-7 read-only except CR7 bit 4 */
    cr_w(f, 0x11, cr_r(f, 0x11) | 0x80);
    cr_w(f, 0x01, 0x10);
    assert_int_equal(cr_r(f, 0x01), 0x4f);
    cr_w(f, 0x07, 0x00);
    assert_int_equal(cr_r(f, 0x07), 0x0f);
    /* monochrome ports float while colour addressing is selected */
    outb(f, 0x3b4, 0x0a);
    assert_int_equal(inb(f, 0x3b4), 0xff);
    /* absurd CRTC geometry still renders (or blanks) without faults */
    cr_w(f, 0x11, 0x00);
    cr_w(f, 0x01, 0xff);
    cr_w(f, 0x09, 0x00);
    cr_w(f, 0x12, 0xff);
    cr_w(f, 0x07, 0x42);
    cr_w(f, 0x0c, 0xff);
    cr_w(f, 0x0d, 0xff);
    cr_w(f, 0x13, 0xff);
    refresh(f);
    gr_w(f, 6, 0x01);                       /* graphics, all maps */
    refresh(f);
    /* RAM disabled in misc: window reads float, writes vanish */
    outb(f, 0x3c2, 0x65);
    wmem(f, WINDOW, 0x12);
    assert_int_equal(rmem(f, WINDOW), 0xff);
    /* planar memory past the planes with a 4 bpp VBE bank */
    vbe_mode(f, 800, 600, 4, 0);
    assert_int_equal(dispi_r(f, ENABLE) & EN_ENABLED, EN_ENABLED);
    dispi_w(f, BANK, 63);
    assert_int_equal(dispi_r(f, BANK), 63);
    dispi_w(f, BANK, 64);
    assert_int_equal(dispi_r(f, BANK), 63);
    outb(f, 0x3c2, 0x63);
    wmem(f, WINDOW + 0xffff, 0x12);
    refresh(f);
}

/* --- display ----------------------------------------------------------- */

static void test_display_rects(void **state)
{
    (void)state;
    struct display *d = display_new(NULL);
    assert_non_null(d);
    assert_int_equal(display_resize(d, 100, 50), 0);
    unsigned n;
    const struct display_rect *r = display_pending(d, &n);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].w, 100);
    display_refresh(d);
    display_pending(d, &n);
    assert_int_equal(n, 0);
    /* clipped, empty ignored */
    display_dirty(d, 90, 40, 50, 50);
    display_dirty(d, 200, 0, 5, 5);
    display_dirty(d, 0, 0, 0, 5);
    r = display_pending(d, &n);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].w, 10);
    assert_int_equal(r[0].h, 10);
    /* separate rectangles stay separate; touching ones merge */
    display_dirty(d, 0, 0, 4, 4);
    display_pending(d, &n);
    assert_int_equal(n, 2);
    display_dirty(d, 4, 0, 4, 4);
    r = display_pending(d, &n);
    assert_int_equal(n, 2);
    bool found = false;
    for (unsigned i = 0; i < n; i++)
        found |= r[i].x == 0 && r[i].w == 8 && r[i].h == 4;
    assert_true(found);
    /* too many: they collapse into their bounding box */
    display_refresh(d);
    for (unsigned i = 0; i < DISPLAY_MAX_RECTS + 3; i++)
        display_dirty(d, (i % 12) * 8, (i / 12) * 10, 2, 2);
    r = display_pending(d, &n);
    assert_true(n >= 1 && n <= DISPLAY_MAX_RECTS);
    unsigned area = 0;
    for (unsigned i = 0; i < n; i++)
        area += r[i].w * r[i].h;
    assert_true(area >= (DISPLAY_MAX_RECTS + 3) * 4);
    /* huge sizes are clamped */
    assert_int_equal(display_resize(d, 100000, 0), 0);
    assert_int_equal(display_surface(d)->width, DISPLAY_MAX_WIDTH);
    assert_int_equal(display_surface(d)->height, 1);
    display_free(d);
}

static unsigned timer_updates;

static void count_update(void *opaque, unsigned x, unsigned y, unsigned w, unsigned h)
{
    timer_updates++;
}

static bool got_update(void *opaque)
{
    return timer_updates > 0;
}

static void test_display_timer(void **state)
{
    (void)state;
    struct harness *h = harness_new(RAM_SIZE);
    assert_non_null(h);
    struct display *d = display_new(h->plat.loop);
    assert_non_null(d);
    assert_int_equal(display_resize(d, 8, 8), 0);
    static const struct display_listener_ops ops = { NULL, count_update };
    timer_updates = 0;
    int id = display_add_listener(d, &ops, NULL);
    assert_true(id >= 0);
    /* the periodic refresh delivers the pending rectangle */
    assert_true(harness_run_until(h, got_update, NULL, 1000));
    assert_int_equal(timer_updates, 1);
    /* nothing more changed: nothing more arrives */
    harness_run_until(h, got_update, NULL, 150);
    assert_int_equal(timer_updates, 1);
    display_remove_listener(d, id);
    display_dirty(d, 0, 0, 1, 1);
    harness_run_until(h, got_update, NULL, 100);
    assert_int_equal(timer_updates, 1);
    display_free(d);
    harness_free(h);
}

/* A machine reset puts the registers back and clears video memory. */
static void test_reset(void **state)
{
    struct fx *f = *state;
    vbe_mode(f, 640, 480, 32, EN_LFB);
    wmem(f, LFB_BASE, 0x11);
    wmem(f, LFB_BASE + VGA_VRAM_SIZE - 1, 0x22);
    pci_device_reset(vga_pci(f->vga));
    assert_int_equal(dispi_r(f, ENABLE), 0);
    assert_int_equal(dispi_r(f, BPP), 8);
    /* the reset unmapped the BARs: place them again, as firmware does */
    cfg_write(f, PCI_BASE_ADDRESS_0, 4, (uint32_t)LFB_BASE);
    cfg_write(f, PCI_BASE_ADDRESS_0 + 8, 4, (uint32_t)MMIO_BASE);
    cfg_write(f, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
    assert_int_equal(rmem(f, LFB_BASE), 0);
    assert_int_equal(rmem(f, LFB_BASE + VGA_VRAM_SIZE - 1), 0);
    /* and the memory works as before */
    wmem(f, LFB_BASE + 4096, 0x33);
    assert_int_equal(rmem(f, LFB_BASE + 4096), 0x33);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pci_identity, setup, teardown),
        cmocka_unit_test(test_rom),
        cmocka_unit_test_setup_teardown(test_dispi_id_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vbe_32bpp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vbe_blank, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vbe_depths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vbe_8bpp_palette, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bank_switching, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dirty_tracking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode13h, setup, teardown),
        cmocka_unit_test_setup_teardown(test_planar_write_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vbe_planar_narrow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
        cmocka_unit_test(test_display_rects),
        cmocka_unit_test(test_display_timer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
