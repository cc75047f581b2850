/* VMDK images (devices/block/vmdk.c) as the user hands them to Burrow:
 * the input describes the image file (a sparse extent or a descriptor)
 * and a second file, x.vmdk, that a descriptor may name as an extent or
 * a child as its parent, as fuzz_roimage.h says; the image is opened read-only as
 * vmdk, read, walked for its allocation, described, probed, and opened for
 * writing, which must be refused. */
#include "fuzz/fuzz_roimage.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_init("vmdk", "image.vmdk");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_write(data, size);
    fz_exercise("vmdk");
    return 0;
}
