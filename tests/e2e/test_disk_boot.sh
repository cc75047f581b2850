#!/bin/bash
# SeaBIOS boots the project's boot sector from a qcow2 image that qemu-img
# made, on virtio-blk: the boot sector reads LBA 1 and the last sector
# through INT 13h and passes (debug-exit 0x21); the image still passes
# `qemu-img check` afterwards.
# needs: kvm
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_guest bootsector.img
burrow_require_cmd qemu-img "install qemu-utils"
burrow_require_file /usr/share/seabios/bios-256k.bin "install seabios"
cd "$BURROW_TMP" || burrow_fail "cannot enter $BURROW_TMP"

qemu-img convert -O qcow2 "$BURROW_GUESTS/bootsector.img" boot.qcow2 || burrow_fail "qemu-img convert"
SERIAL=$BURROW_TMP/serial.txt
burrow_add_log "$SERIAL"
burrow_run_vm qcow2-boot --memory 64 --disk "$BURROW_TMP/boot.qcow2,if=virtio" \
    --serial "file:$SERIAL" --display none --debug-exit
burrow_expect_text "$SERIAL" "Burrow boot sector: disk read ok (LBA 1 and 2047)"
burrow_expect_status 67 "the boot sector's pass byte 0x21"
out=$(qemu-img check boot.qcow2 2>&1) || burrow_fail "qemu-img check boot.qcow2: $out"
echo "PASS: SeaBIOS booted from qemu-img's qcow2 on virtio-blk"
