/* The 82540EM (e1000) as a guest drives it, on a network that sends every
 * frame the guest transmits back to it (fuzz_net.c).
 *
 * Input: the ops of fuzz_machine.h.  Windows: 0 = BAR0 (128 KiB of
 * registers: CTRL 0x0, EECD/EERD 0x10/0x14, MDIC 0x20, ICR/IMS 0xc0/0xd0,
 * RCTL 0x100, TCTL 0x400, the receive ring at 0x2800, the transmit ring
 * at 0x3800, filters at 0x5200-0x5400), 1 = BAR1 (IOADDR at 0, IODATA at
 * 4).  Rings, descriptors and frames are laid out with RAM ops; transmit
 * happens on the TDT write, frames come back on LOOP ops.  TARGET: a frame
 * from the network or a link change (fz_net_op). */
#include <stdlib.h>

#include "devices/e1000.h"
#include "fuzz/fuzz_machine.h"
#include "fuzz/fuzz_net.h"

static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x57 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct net_backend *backend;

static void target_op(struct fz *f, unsigned arg)
{
    fz_net_op(f, backend, mac, arg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz f;
    fz_init(&f);
    backend = fz_net_new(f.h->plat.loop);
    char err[256];
    struct e1000 *e = e1000_create(&f.h->plat, &f.bus, backend, mac, NULL, err, sizeof(err));
    if (!e)
        abort();
    f.pci = e1000_pci(e);
    f.hooks.target = target_op;
    fz_place_bars(&f);
    fz_add_bar(&f, "regs", f.pci, 0);
    fz_add_bar(&f, "io", f.pci, 1);
    fz_run(&f, data, size);
    e1000_destroy(e);
    net_backend_free(backend);
    fz_fini(&f);
    return 0;
}
