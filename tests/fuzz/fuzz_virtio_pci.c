/* The virtio-pci transport (devices/virtio_pci.c) with the simplest device
 * behind it, virtio-rng: feature negotiation, status, queue set-up, MSI-X,
 * ISR, notifications, and PCI configuration space with its virtio
 * capabilities and the PCI configuration access window (VIRTIO_PCI_CAP_
 * PCI_CFG) that reaches the BARs through configuration cycles.
 *
 * Input: the ops of fuzz_machine.h.  Windows: 0 = BAR4 (common
 * configuration at 0x0000, ISR at 0x1000, notification at 0x3000), 1 =
 * BAR1 (MSI-X).  CFG ops reach the device's configuration space, the
 * capability list from 0x40.  No TARGET op. */
#include <stdlib.h>

#include "devices/virtio_rng.h"
#include "fuzz/fuzz_machine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz f;
    fz_init(&f);
    char err[256];
    struct virtio_rng *r = virtio_rng_create(&f.h->plat, &f.bus, err, sizeof(err));
    if (!r)
        abort();
    f.pci = virtio_rng_pci(r);
    fz_place_bars(&f);
    fz_add_bar(&f, "virtio", f.pci, 4);
    fz_add_bar(&f, "msix", f.pci, 1);
    fz_run(&f, data, size);
    virtio_rng_destroy(r);
    fz_fini(&f);
    return 0;
}
