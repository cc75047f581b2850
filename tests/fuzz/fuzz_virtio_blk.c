/* virtio-blk as a guest drives it, on a 1 MiB raw image cleared before each
 * input.
 *
 * Input: the ops of fuzz_machine.h.  Windows: 0 = BAR4 (common
 * configuration at 0x0000, ISR at 0x1000, device configuration at 0x2000,
 * queue notification at 0x3000), 1 = BAR1 (MSI-X table, PBA at 0x800).
 * Requests are laid out in guest RAM with RAM ops (descriptor table,
 * available ring, headers, data) and completed by LOOP ops.  No TARGET op. */
#include <stdlib.h>

#include "devices/virtio_blk.h"
#include "fuzz/fuzz_machine.h"

#define DISK_BYTES (1u << 20)

static const char *image;
static int image_fd;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    setenv("BURROW_BLOCK_SYNC", "1", 1);    /* the same completions every run */
    image = fz_image("vblk", DISK_BYTES, &image_fd);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz f;
    fz_init(&f);
    fz_image_zero(image_fd, DISK_BYTES);
    char err[256];
    struct virtio_blk *b = virtio_blk_create(&f.h->plat, &f.bus, image, NULL, false, err, sizeof(err));
    if (!b)
        abort();
    f.pci = virtio_blk_pci(b);
    fz_place_bars(&f);
    fz_add_bar(&f, "virtio", f.pci, 4);
    fz_add_bar(&f, "msix", f.pci, 1);
    fz_run(&f, data, size);
    virtio_blk_destroy(b);
    fz_fini(&f);
    return 0;
}
