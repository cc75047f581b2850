#!/bin/bash
# A guest that writes pseudo-random values to every I/O port (and reads them
# back), with every kind of device present, must not bring the VM process
# down: the guest reports "survived" on COM1 and exits through port 0xf4.
# Guest errors are logged, rate-limited; the process lives.
# needs: kvm
# timeout: 900
. "$(dirname "$0")/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_guest portfuzz.img
burrow_require_file /usr/share/seabios/bios-256k.bin "install Debian's seabios"

cp "$BURROW_GUESTS/portfuzz.img" "$BURROW_TMP/disk.img"
truncate -s 1M "$BURROW_TMP/blank.img"
SERIAL=$BURROW_TMP/serial.log
burrow_add_log "$SERIAL"
burrow_run_vm portfuzz --memory 64 --disk "$BURROW_TMP/disk.img,if=virtio" \
    --disk "$BURROW_TMP/blank.img,if=sata,format=raw" --cdrom empty \
    --net user,model=e1000 --net user,model=virtio --display headless --boot c \
    --serial "file:$SERIAL" --debug-exit
burrow_expect_status 67 "the fuzzing guest's exit byte"
burrow_expect_text "$SERIAL" "portfuzz: survived"
echo "PASS: random writes to every I/O port, the VM lived"
