/* virtio-net as a guest drives it, on a network that sends every frame the
 * guest transmits back to it (fuzz_net.c).
 *
 * Input: the ops of fuzz_machine.h.  Windows: 0 = BAR4 (common
 * configuration at 0x0000, ISR at 0x1000, device configuration at 0x2000,
 * notification at 0x3000: receive queue 0, transmit queue 1), 1 = BAR1
 * (MSI-X).  Receive buffers and transmit chains are laid out with RAM ops,
 * frames come back and transmit chains complete on LOOP ops.  TARGET: a
 * frame from the network or a link change (fz_net_op). */
#include <stdlib.h>

#include "devices/virtio_net.h"
#include "fuzz/fuzz_machine.h"
#include "fuzz/fuzz_net.h"

static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

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
    struct virtio_net *n = virtio_net_create(&f.h->plat, &f.bus, backend, mac, NULL, err, sizeof(err));
    if (!n)
        abort();
    f.pci = virtio_net_pci(n);
    f.hooks.target = target_op;
    fz_place_bars(&f);
    fz_add_bar(&f, "virtio", f.pci, 4);
    fz_add_bar(&f, "msix", f.pci, 1);
    fz_run(&f, data, size);
    virtio_net_destroy(n);
    net_backend_free(backend);
    fz_fini(&f);
    return 0;
}
