#!/bin/bash
# SeaBIOS (Debian's) finds the project's boot sector on a hard disk behind
# the AHCI controller (--disk PATH,if=sata) and boots it: SeaBIOS's own AHCI
# driver probes the port (IDENTIFY PACKET DEVICE, aborted by a disk, then
# IDENTIFY DEVICE and SET FEATURES), reads the MBR with READ DMA, and the
# boot sector reads sector 1 and the last sector through INT 13h, which
# SeaBIOS again turns into AHCI commands.  The pass byte 0x21 on the
# debug-exit port ends the VM with status 67.
# needs: kvm
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_guest bootsector.img
burrow_require_file /usr/share/seabios/bios-256k.bin "install seabios"
cp "$BURROW_GUESTS/bootsector.img" "$BURROW_TMP/disk.img"
SERIAL=$BURROW_TMP/serial.txt
FWLOG=$BURROW_TMP/firmware.log
burrow_add_log "$SERIAL"
burrow_add_log "$FWLOG"
burrow_run_vm seabios-ahci --memory 128 --disk "$BURROW_TMP/disk.img,if=sata" \
    --serial "file:$SERIAL" --display none --firmware-log "$FWLOG" --debug-exit
burrow_expect_prefix "$FWLOG" "AHCI controller at "
burrow_expect_text "$FWLOG" "BURROW HARDDISK"
burrow_expect_no_text "$FWLOG" "Set transfer mode failed"
burrow_expect_text "$SERIAL" "Burrow boot sector: hello from the guest"
burrow_expect_no_text "$SERIAL" "disk read FAIL"
burrow_expect_text "$SERIAL" "Burrow boot sector: disk read ok (LBA 1 and 2047)"
burrow_expect_status 67 "the boot sector's pass byte 0x21"

echo "PASS: SeaBIOS booted the boot sector from an AHCI disk"
