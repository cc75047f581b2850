#!/bin/bash
# A guest write to the reset control register (0xcf9) resets the machine
# before the vCPU runs the next instruction, as a real CPU does: the guest
# (tests/guests/resetwrite.S) prints "!" first if it got past the write, and
# "rebooted" once the firmware has brought it back, then powers off.
# needs: kvm
# timeout: 600
. "$(dirname "$0")/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_guest resetwrite.img
burrow_require_file /usr/share/seabios/bios-256k.bin "install Debian's seabios"

serial=$BURROW_TMP/serial.log
cp "$BURROW_GUESTS/resetwrite.img" "$BURROW_TMP/disk.img"
burrow_add_log "$serial"
burrow_add_log "$BURROW_TMP/vm.err"
status=0
timeout -k 5 "$BURROW_VM_TIMEOUT" "$BURROW_VM" --memory 64 --disk "$BURROW_TMP/disk.img,if=virtio" \
    --display none --serial "file:$serial" </dev/null >/dev/null 2>"$BURROW_TMP/vm.err" || status=$?
[ "$status" -eq 0 ] || burrow_fail "burrow-vm ended with status $status (the guest should power off)"
burrow_expect_text "$serial" "resetwrite: writing the reset register"
burrow_expect_text "$serial" "resetwrite: rebooted"
# The message starts with '!', so even its first character tells.
if grep -q '!' "$serial"; then
    burrow_fail "the guest ran on after writing the reset register"
fi
[ "$(grep -c "SeaBIOS (version" "$serial")" -ge 2 ] || burrow_fail "the firmware did not run again"
burrow_note "reset through 0xcf9: no instruction ran after the write; the guest booted again and powered off"
