#!/bin/bash
# SeaBIOS boots the project's boot sector from VDI, VMDK, VHD and VHDX
# images that qemu-img made, attached read-only (burrow-vm opens them
# through the block layer, which only reads them), on virtio-blk and on
# SATA: the boot sector reads LBA 1 and the last sector through INT 13h
# and passes (debug-exit 0x21).  Opened for writing, they are refused with
# the command that converts them.  The images are unchanged afterwards.
# needs: kvm
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_guest bootsector.img
burrow_require_cmd qemu-img "install qemu-utils"
burrow_require_file /usr/share/seabios/bios-256k.bin "install seabios"
cd "$BURROW_TMP" || burrow_fail "cannot enter $BURROW_TMP"

src=$BURROW_GUESTS/bootsector.img
qemu-img convert -O vdi "$src" boot.vdi || burrow_fail "qemu-img convert vdi"
qemu-img convert -O vmdk -o subformat=streamOptimized "$src" boot.vmdk || burrow_fail "qemu-img convert vmdk"
qemu-img convert -O vpc -o subformat=fixed,force_size=on "$src" boot.vhd || burrow_fail "qemu-img convert vpc"
qemu-img convert -O vhdx "$src" boot.vhdx || burrow_fail "qemu-img convert vhdx"
for img in boot.vdi boot.vmdk boot.vhd boot.vhdx; do
    sum=$(md5sum <"$img")
    for bus in virtio sata; do
        SERIAL=$BURROW_TMP/serial-$img-$bus.txt
        burrow_add_log "$SERIAL"
        burrow_run_vm "$img-$bus" --memory 64 --disk "$BURROW_TMP/$img,if=$bus,readonly=on" \
            --serial "file:$SERIAL" --display none --debug-exit
        burrow_expect_text "$SERIAL" "Burrow boot sector: disk read ok (LBA 1 and 2047)"
        burrow_expect_status 67 "the boot sector's pass byte 0x21 ($img on $bus)"
    done
    [ "$(md5sum <"$img")" = "$sum" ] || burrow_fail "$img changed"
    out=$(timeout 30 "$BURROW_VM" --memory 64 --disk "$BURROW_TMP/$img" --display none 2>&1 </dev/null) &&
        burrow_fail "burrow-vm opened $img for writing"
    grep -q "reads but does not write.*burrow disk convert" <<<"$out" || burrow_fail "$img writable: $out"
done
echo "PASS: SeaBIOS booted from read-only VDI, VMDK, VHD and VHDX images"
