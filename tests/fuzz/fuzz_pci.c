/* PCI configuration space as the guest reaches it through the i440FX's
 * configuration mechanism #1 (ports 0xcf8/0xcfc, devices/i440fx.c) on a bus
 * with the PIIX3 (piix3.c: PIRQ routing, the reset control register 0xcf9,
 * port 0x92), a virtio-rng (MSI-X, a 64-bit BAR, capabilities), an e1000
 * (an I/O BAR, an expansion ROM) and a VGA (a 16 MiB BAR, an expansion
 * ROM): headers and write masks, BAR sizing and placement (overlaps
 * included), ROM BARs, the command register, INTx routing, MSI-X tables
 * (devices/pci.c).
 *
 * Input: the ops of fuzz_machine.h.  Windows: 0 = ports 0xcf8-0xcff, 1 =
 * port 0x92, 2 = virtio-rng's BAR1 (MSI-X), 3 = its BAR4, 4 = e1000's BAR1
 * (I/O), 5 = e1000's ROM, 6 = the VGA's BAR2, 7 = the VGA's ROM: each
 * wherever the guest placed it.  No CFG ops (the ports are the way in);
 * TARGET: the e1000 raises its interrupt (a frame from the network, arg 0)
 * or the network link changes (6-7). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "devices/e1000.h"
#include "devices/i440fx.h"
#include "devices/piix3.h"
#include "devices/vga.h"
#include "devices/virtio_rng.h"
#include "fuzz/fuzz_machine.h"
#include "fuzz/fuzz_net.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x58 };
static const char *rom;
static struct net_backend *backend;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* An option ROM: the 55 aa signature, a length of 6 KiB, a pattern. */
    uint8_t img[6144];
    for (size_t i = 0; i < sizeof(img); i++)
        img[i] = (uint8_t)(i * 13 + 1);
    img[0] = 0x55;
    img[1] = 0xaa;
    img[2] = sizeof(img) / 512;
    int fd;
    rom = fz_image("rom", 0, &fd);
    if (pwrite(fd, img, sizeof(img), 0) != (ssize_t)sizeof(img))
        abort();
    return 0;
}

static void target_op(struct fz *f, unsigned arg)
{
    fz_net_op(f, backend, mac, arg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz f;
    fz_init(&f);
    char err[256];
    backend = fz_net_new(f.h->plat.loop);
    struct i440fx *host = i440fx_create(&f.h->plat, &f.bus);
    struct piix3 *isa = piix3_create(&f.h->plat, &f.bus);
    struct virtio_rng *rng = virtio_rng_create(&f.h->plat, &f.bus, err, sizeof(err));
    struct e1000 *nic = e1000_create(&f.h->plat, &f.bus, backend, mac, rom, err, sizeof(err));
    struct vga *vga = vga_create(&f.h->plat, &f.bus, NULL, rom, err, sizeof(err));
    if (!host || !isa || !rng || !nic || !vga) {
        fprintf(stderr, "fuzz: %s\n", err);
        abort();
    }
    f.hooks.target = target_op;
    fz_place_bars(&f);
    fz_add_pio(&f, "config", 0xcf8, 8);
    fz_add_pio(&f, "port92", 0x92, 1);
    fz_add_bar(&f, "rng-msix", virtio_rng_pci(rng), 1);
    fz_add_bar(&f, "rng-virtio", virtio_rng_pci(rng), 4);
    fz_add_bar(&f, "e1000-io", e1000_pci(nic), 1);
    fz_add_rom(&f, "e1000-rom", e1000_pci(nic));
    fz_add_bar(&f, "vga-mmio", vga_pci(vga), 2);
    fz_add_rom(&f, "vga-rom", vga_pci(vga));
    fz_run(&f, data, size);
    vga_destroy(vga);
    e1000_destroy(nic);
    virtio_rng_destroy(rng);
    piix3_destroy(isa);
    i440fx_destroy(host);
    net_backend_free(backend);
    fz_fini(&f);
    return 0;
}
