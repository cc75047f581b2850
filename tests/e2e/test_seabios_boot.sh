#!/bin/bash
# SeaBIOS (Debian's, the default firmware) finds the project's boot sector
# on a virtio-blk disk and runs it; the boot sector prints through INT 10h,
# which reaches COM1 through SeaBIOS's serial console when there is no
# display, reads sector 1 and the last sector through INT 13h, and writes
# 0x21 to the debug-exit port (status 67); with --usb on (SeaBIOS finds
# the USB keyboard) and off.
# needs: kvm
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_guest bootsector.img
burrow_require_file /usr/share/seabios/bios-256k.bin "install seabios"

cp "$BURROW_GUESTS/bootsector.img" "$BURROW_TMP/disk.img"
# With the USB controller (the default) and without: SeaBIOS's xHCI driver
# sets up its keyboard and still boots the disk.
for usb in on off; do
    SERIAL=$BURROW_TMP/serial-$usb.txt
    FWLOG=$BURROW_TMP/firmware-$usb.log
    burrow_add_log "$SERIAL"
    burrow_add_log "$FWLOG"
    burrow_run_vm seabios-boot-usb-$usb --memory 128 --disk "$BURROW_TMP/disk.img,if=virtio" \
        --serial "file:$SERIAL" --display none --firmware-log "$FWLOG" --debug-exit --usb $usb
    burrow_expect_text "$SERIAL" "Burrow boot sector: hello from the guest"
    burrow_expect_no_text "$SERIAL" "disk read FAIL"
    burrow_expect_text "$SERIAL" "Burrow boot sector: disk read ok (LBA 1 and 2047)"
    burrow_expect_status 67 "the boot sector's pass byte 0x21"
    if [ $usb = on ]; then
        burrow_expect_text "$FWLOG" "USB keyboard initialized"
    else
        burrow_expect_no_text "$FWLOG" "XHCI"
    fi
done

echo "PASS: SeaBIOS booted the boot sector from virtio-blk, with the USB controller and without"
