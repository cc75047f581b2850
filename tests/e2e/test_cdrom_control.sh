#!/bin/bash
# CD/DVD media through the control socket: eject, change-media (a bad path
# leaves the drive as it was), an empty drive, and the media-changed event.
# The guest waits for the power button (tests/guests/powerbtn.S) rather than
# SeaBIOS resetting the machine for want of something to boot.
# needs: kvm
# timeout: 900
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_cmd python3
FIRMWARE=/usr/share/seabios/bios-256k.bin
burrow_require_file "$FIRMWARE" "install Debian's seabios"
burrow_require_guest powerbtn.img

CLIENT=$BURROW_SOURCE_DIR/tests/tools/burrow-control.py
sock=$BURROW_TMP/control.sock
iso=$BURROW_TMP/disc.iso
truncate -s 2M "$iso"
cp "$BURROW_GUESTS/powerbtn.img" "$BURROW_TMP/disk.img"
burrow_add_log "$BURROW_TMP/vm.err"
ctl() { python3 "$CLIENT" "$sock" "$@"; }

timeout -k 5 "$BURROW_VM_TIMEOUT" "$BURROW_VM" --memory 64 --cdrom empty --serial none \
    --disk "$BURROW_TMP/disk.img,if=virtio" \
    --control "$sock" </dev/null >/dev/null 2>"$BURROW_TMP/vm.err" &
vmpid=$!
# SIGTERM: timeout passes it on to burrow-vm (SIGKILL would orphan it).
trap 'kill $vmpid 2>/dev/null; wait $vmpid 2>/dev/null; rm -rf "$BURROW_TMP"' EXIT
ctl --greeting --connect-timeout "$BURROW_WAIT_LIMIT" >/dev/null || burrow_fail "no control socket"

burrow_listen "$sock" "$BURROW_TMP/events" --wait-event media-changed
listener=$BURROW_LISTENER
out=$(ctl change-media "{\"device\":\"cdrom\",\"path\":\"$iso\"}") || burrow_fail "change-media: $out"
wait $listener
grep -q '"media-changed"' "$BURROW_TMP/events" || burrow_fail "no media-changed event: $(cat "$BURROW_TMP/events")"
grep -qF "$iso" "$BURROW_TMP/events" || burrow_fail "event lacks the path"

out=$(ctl change-media "{\"path\":\"$BURROW_TMP/missing.iso\"}") && burrow_fail "a missing image was accepted"
grep -q '"failed"' <<<"$out" || burrow_fail "missing image: $out"
out=$(ctl eject '{"device":"floppy"}') && burrow_fail "eject of a floppy was accepted"
grep -q '"invalid-argument"' <<<"$out" || burrow_fail "bad device: $out"
out=$(ctl change-media '{"device":"cdrom"}') && burrow_fail "change-media without a path was accepted"
out=$(ctl eject) || burrow_fail "eject: $out"
out=$(ctl status) || burrow_fail "the VM stopped answering: $out"
ctl quit >/dev/null
wait $vmpid || burrow_fail "burrow-vm exited with $?"
echo "PASS: eject, change-media and their errors"
