/* Firmware burrow-vm loads at run time from Debian's seabios package (the
 * NICs' iPXE ROMs from ipxe-qemu are named in devices/e1000.h and
 * devices/virtio_net.h).  `burrow host-check` checks the same paths. */
#ifndef BURROW_FIRMWARE_H
#define BURROW_FIRMWARE_H

#define FIRMWARE_BIOS_DEFAULT    "/usr/share/seabios/bios-256k.bin"
#define FIRMWARE_VGABIOS_DEFAULT "/usr/share/seabios/vgabios-stdvga.bin"

#endif
