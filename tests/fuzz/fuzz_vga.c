/* The VGA (devices/vga.c) and its renderer (vga_render.c): legacy
 * registers, planar and chained memory, text and graphics modes, Bochs VBE
 * DISPI modes with a linear framebuffer, and display refreshes that render
 * whatever mode the guest set into the display surface.
 *
 * Input: the ops of fuzz_machine.h.  Windows: 0 = ports 0x3b0-0x3df, 1 =
 * DISPI ports 0x1ce-0x1d0, 2 = the legacy memory window 0xa0000-0xbffff,
 * 3 = BAR0 (video memory, the linear framebuffer), 4 = BAR2 (the VGA ports
 * at 0x400, DISPI at 0x500, the extended registers at 0x600).  TARGET:
 * arg 0-6 advances the clock (cursor and text blink) by arg + 1 frames of
 * 60 Hz and refreshes the display; arg 7 reads the text cells.  A listener
 * checks that every update it is sent lies inside the surface. */
#include <stdio.h>
#include <stdlib.h>

#include "devices/display.h"
#include "devices/vga.h"
#include "fuzz/fuzz_machine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct display *disp;
static unsigned width, height;

static void on_resize(void *opaque, const struct display_surface *s)
{
    width = s->width;
    height = s->height;
    if (getenv("FUZZ_TRACE"))
        fprintf(stderr, "fuzz: display %ux%u\n", width, height);
}

static void on_update(void *opaque, unsigned x, unsigned y, unsigned w, unsigned h)
{
    if (!w || !h || x >= width || y >= height || w > width - x || h > height - y) {
        fprintf(stderr, "fuzz: update %u,%u %ux%u outside the %ux%u surface\n", x, y, w, h, width,
                height);
        abort();
    }
}

static const struct display_listener_ops listener = { on_resize, on_update };

static uint64_t clock_now(void *opaque)
{
    return ((struct fz *)opaque)->now_ns;
}

static void target_op(struct fz *f, unsigned arg)
{
    if (arg == 7) {
        struct display_text t;
        if (display_get_text(disp, &t) && (t.cols * t.rows) && !t.cells)
            abort();
        return;
    }
    f->now_ns += (arg + 1) * 16666667ull;
    display_refresh(disp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz f;
    fz_init(&f);
    disp = display_new(NULL);
    char err[256];
    struct vga *v = disp ? vga_create(&f.h->plat, &f.bus, disp, NULL, err, sizeof(err)) : NULL;
    if (!v)
        abort();
    vga_set_clock(v, clock_now, &f);
    if (display_add_listener(disp, &listener, NULL) < 0)
        abort();
    f.pci = vga_pci(v);
    f.hooks.target = target_op;
    fz_place_bars(&f);
    fz_add_pio(&f, "ports", 0x3b0, 0x30);
    fz_add_pio(&f, "dispi", 0x1ce, 3);
    fz_add_mmio(&f, "window", VGA_LEGACY_MEM, VGA_LEGACY_MEM_LEN);
    fz_add_bar(&f, "lfb", f.pci, 0);
    fz_add_bar(&f, "mmio", f.pci, 2);
    fz_run(&f, data, size);
    vga_destroy(v);
    display_free(disp);
    fz_fini(&f);
    return 0;
}
