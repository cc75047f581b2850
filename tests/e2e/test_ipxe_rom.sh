#!/bin/bash
# Each NIC model carries Debian's iPXE option ROM: SeaBIOS runs it (iPXE's
# banner and PnP registration reach the serial console), then boots the
# disk as usual.  Network boot itself runs iPXE code this host's KVM cannot
# emulate (see tests/e2e/test_pxe_boot.sh).
# needs: kvm
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_guest bootsector.img
burrow_require_file /usr/share/seabios/bios-256k.bin "install Debian's seabios"
burrow_require_file /usr/lib/ipxe/qemu/pxe-virtio.rom "install Debian's ipxe-qemu"
burrow_require_file /usr/lib/ipxe/qemu/pxe-e1000.rom "install Debian's ipxe-qemu"

cp "$BURROW_GUESTS/bootsector.img" "$BURROW_TMP/disk.img"
for model in virtio e1000; do
    SERIAL=$BURROW_TMP/serial-$model.log
    burrow_add_log "$SERIAL"
    burrow_run_vm "ipxe-$model" --memory 64 --disk "$BURROW_TMP/disk.img,if=virtio" \
        --net "user,model=$model" --serial "file:$SERIAL" --display none --debug-exit
    burrow_expect_status 67 "the boot sector's pass byte after the option ROM ran"
    burrow_expect_text "$SERIAL" "iPXE (http://ipxe.org) 00:03.0"
    burrow_expect_text "$SERIAL" " PnP "
    burrow_expect_text "$SERIAL" "Burrow boot sector: hello from the guest"
    burrow_note "ok: $model NIC: iPXE ROM registered, disk booted"
done
echo "PASS: iPXE option ROMs of virtio-net and e1000"
