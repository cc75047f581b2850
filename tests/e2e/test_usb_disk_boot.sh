#!/bin/bash
# SeaBIOS boots the project's boot sector from a USB disk, with no other
# drive: its xHCI and USB mass-storage drivers find the --usb-disk image
# (read-only, raw) and the qcow2 one, and the boot sector reads LBA 1 and
# the last sector through INT 13h and passes (debug-exit 0x21).
# needs: kvm
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_guest bootsector.img
burrow_require_cmd qemu-img "install qemu-utils"
burrow_require_file /usr/share/seabios/bios-256k.bin "install seabios"
cd "$BURROW_TMP" || burrow_fail "cannot enter $BURROW_TMP"

cp "$BURROW_GUESTS/bootsector.img" boot.raw || burrow_fail "cannot copy the boot sector image"
qemu-img convert -O qcow2 boot.raw boot.qcow2 || burrow_fail "qemu-img convert"
for disk in boot.raw,format=raw,readonly=on boot.qcow2; do
    name=usb-${disk%%[.,]*}-${disk#*.}
    name=${name%%,*}
    SERIAL=$BURROW_TMP/$name.serial
    burrow_add_log "$SERIAL"
    burrow_add_log "$BURROW_TMP/$name.firmware"
    burrow_run_vm "$name" --memory 64 --usb on --usb-disk "$BURROW_TMP/$disk" \
        --serial "file:$SERIAL" --firmware-log "$BURROW_TMP/$name.firmware" --display none --debug-exit
    burrow_expect_text "$SERIAL" "Burrow boot sector: disk read ok (LBA 1 and 2047)"
    burrow_expect_status 67 "the boot sector's pass byte 0x21"
    burrow_note "ok: SeaBIOS booted the USB disk $disk"
done
out=$(qemu-img check boot.qcow2 2>&1) || burrow_fail "qemu-img check boot.qcow2: $out"
echo "PASS: SeaBIOS boots from a USB mass-storage disk, raw and qcow2"
