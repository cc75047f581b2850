#!/bin/bash
# SeaBIOS (Debian's, the default firmware) finds the project's boot sector
# on a virtio-blk disk and runs it; the boot sector prints through INT 10h,
# which reaches COM1 through SeaBIOS's serial console when there is no
# display, reads sector 1 and the last sector through INT 13h, and writes
# 0x21 to the debug-exit port (status 67).
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
burrow_run_vm seabios-boot --memory 128 --disk "$BURROW_TMP/disk.img,if=virtio" \
    --serial "file:$SERIAL" --display none --firmware-log "$FWLOG" --debug-exit
burrow_expect_text "$SERIAL" "Burrow boot sector: hello from the guest"
burrow_expect_no_text "$SERIAL" "disk read FAIL"
burrow_expect_text "$SERIAL" "Burrow boot sector: disk read ok (LBA 1 and 2047)"
burrow_expect_status 67 "the boot sector's pass byte 0x21"

echo "PASS: SeaBIOS booted the boot sector from virtio-blk"
