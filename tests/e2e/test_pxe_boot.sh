#!/bin/bash
# Network boot through iPXE (Debian's ipxe-qemu option ROMs on our NICs):
# SeaBIOS runs the NIC's ROM, iPXE gets a DHCP lease from the user-mode
# network (libslirp), fetches the boot file from the tftp= directory and
# runs it; the project's PXE boot program prints to COM1 and leaves
# through the debug-exit port with pass byte 0x21 (status 67).  Once with
# virtio-net, once with the e1000.
#
# Needs KVM on VMX/SVM: under PVM's instruction emulator iPXE does not get
# past its own start-up in 8 minutes; elsewhere it runs in the nested helper.
# needs: hwkvm
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
burrow_require_hwkvm
burrow_require_vm
burrow_require_guest pxeboot.0
burrow_require_file /usr/share/seabios/bios-256k.bin "install seabios"
burrow_require_file /usr/lib/ipxe/qemu/pxe-virtio.rom "install ipxe-qemu"
burrow_require_file /usr/lib/ipxe/qemu/pxe-e1000.rom "install ipxe-qemu"

BURROW_VM_TIMEOUT=${BURROW_VM_TIMEOUT:-300}
TFTP=$BURROW_TMP/tftp
mkdir -p "$TFTP"
cp "$BURROW_GUESTS/pxeboot.0" "$TFTP/pxeboot.0"

for model in virtio e1000; do
    SERIAL=$BURROW_TMP/serial-$model.txt
    FWLOG=$BURROW_TMP/firmware-$model.log
    burrow_add_log "$SERIAL"
    burrow_add_log "$FWLOG"
    burrow_run_vm "pxe-$model" --memory 128 \
        --net "user,model=$model,tftp=$TFTP,bootfile=pxeboot.0" --boot n \
        --serial "file:$SERIAL" --display none --firmware-log "$FWLOG" --debug-exit
    burrow_expect_text "$SERIAL" "iPXE"
    burrow_expect_text "$SERIAL" "Burrow PXE boot program: hello from the network"
    burrow_expect_status 67 "the PXE boot program's pass byte 0x21"
    burrow_note "ok: $model"
done

echo "PASS: iPXE booted the PXE boot program over DHCP and TFTP on virtio-net and e1000"
