#!/bin/bash
# SeaBIOS counts the vCPUs itself (it wakes the APs with INIT/SIPI and
# counts those that answer) and logs "Found N cpu(s) max supported M cpu(s)"
# on its debug port (0x402, --firmware-log).  Run with 4 vCPUs and with 1,
# each time to the project's boot sector, which ends the VM.
# needs: kvm
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_guest bootsector.img
burrow_require_file /usr/share/seabios/bios-256k.bin "install seabios"

cp "$BURROW_GUESTS/bootsector.img" "$BURROW_TMP/disk.img"

for cpus in 4 1; do
    FWLOG=$BURROW_TMP/firmware-$cpus.log
    burrow_add_log "$FWLOG"
    burrow_run_vm "smp-$cpus" --cpus "$cpus" --memory 128 --disk "$BURROW_TMP/disk.img,if=virtio" \
        --uuid "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f$cpus" \
        --serial none --display none --firmware-log "$FWLOG" --debug-exit
    burrow_expect_status 67 "the boot sector's pass byte 0x21"
    burrow_expect_prefix "$FWLOG" "Found $cpus cpu(s) max supported "
    # SeaBIOS prints the UUID only from SMBIOS tables the machine handed it:
    # the one given with --uuid.
    burrow_expect_line "$FWLOG" "Machine UUID 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f$cpus"
done

echo "PASS: SeaBIOS found 4 vCPUs, then 1"
