/* The AHCI controller with an ATA disk on port 0 (a 1 MiB raw image,
 * cleared before each input), a CD/DVD drive with a 1 MiB medium on port 1
 * and an empty CD/DVD drive on port 2: AHCI (devices/ahci.c), the ATA
 * command set (ata.c) and ATAPI/MMC packet commands (atapi.c).
 *
 * Input: the ops of fuzz_machine.h.  Window 0 = ABAR (BAR5: generic host
 * control at 0x00, port N's registers at 0x100 + 0x80 * N).  Command lists,
 * received-FIS areas, command tables (FIS, ATAPI packet, PRD table) and
 * data are laid out with RAM ops; commands start on the PxCI write and
 * complete on LOOP ops.  TARGET (what the user does through the control
 * socket): arg 0 ejects port 1's medium, 1 forces that, 2 loads the medium
 * again, 3 ejects the empty drive, 4 loads a medium into it, 5 forces it
 * out, 6-7 nothing. */
#include <stdlib.h>
#include <unistd.h>

#include "devices/ahci.h"
#include "fuzz/fuzz_machine.h"

#define DISK_BYTES (1u << 20)
#define CD_BYTES   (1u << 20)

static const char *disk, *cd;
static int disk_fd;
static struct ahci *ahci;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    setenv("BURROW_BLOCK_SYNC", "1", 1);
    disk = fz_image("ahci-disk", DISK_BYTES, &disk_fd);
    int cd_fd;
    cd = fz_image("ahci-cd", CD_BYTES, &cd_fd);
    /* Something to read on the medium besides zeroes. */
    static const char label[] = "\001CD001\001 BURROW FUZZ MEDIUM";
    if (pwrite(cd_fd, label, sizeof(label), 16 * 2048) != (ssize_t)sizeof(label))
        abort();
    return 0;
}

static void target_op(struct fz *f, unsigned arg)
{
    char err[256];
    switch (arg) {
    case 0: ahci_eject(ahci, 1, false, err, sizeof(err)); break;
    case 1: ahci_eject(ahci, 1, true, err, sizeof(err)); break;
    case 2: ahci_change_media(ahci, 1, cd, err, sizeof(err)); break;
    case 3: ahci_eject(ahci, 2, false, err, sizeof(err)); break;
    case 4: ahci_change_media(ahci, 2, cd, err, sizeof(err)); break;
    case 5: ahci_eject(ahci, 2, true, err, sizeof(err)); break;
    default: break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz f;
    fz_init(&f);
    fz_image_zero(disk_fd, DISK_BYTES);
    char err[256];
    ahci = ahci_create(&f.h->plat, &f.bus, -1, err, sizeof(err));
    if (!ahci || ahci_attach_disk(ahci, 0, disk, NULL, false, err, sizeof(err)) < 0 ||
        ahci_attach_cdrom(ahci, 1, cd, err, sizeof(err)) < 0 ||
        ahci_attach_cdrom(ahci, 2, NULL, err, sizeof(err)) < 0)
        abort();
    f.pci = ahci_pci(ahci);
    f.hooks.target = target_op;
    fz_place_bars(&f);
    fz_add_bar(&f, "abar", f.pci, 5);
    fz_run(&f, data, size);
    ahci_destroy(ahci);
    fz_fini(&f);
    return 0;
}
