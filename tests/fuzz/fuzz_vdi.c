/* VDI images (devices/block/vdi.c) as the user hands them to Burrow:
 * the input describes the image file as fuzz_roimage.h says; the image is
 * opened read-only as vdi, read, walked for its allocation, described,
 * probed, and opened for writing, which must be refused. */
#include "fuzz/fuzz_roimage.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_init("vdi", "image.vdi");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_write(data, size);
    fz_exercise("vdi");
    return 0;
}
