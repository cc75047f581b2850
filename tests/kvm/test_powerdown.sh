#!/bin/bash
# The control socket's "reset" restarts the guest from the firmware; then
# "powerdown" presses the ACPI power button; a guest
# that handles it (tests/guests/powerbtn.S) enters S5, and burrow-vm pushes a
# "shutdown" event with reason guest-poweroff and exits with status 0.
# needs: kvm
# timeout: 900
. "$(dirname "$0")/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_guest powerbtn.img
burrow_require_cmd python3
FIRMWARE=/usr/share/seabios/bios-256k.bin
burrow_require_file "$FIRMWARE" "install Debian's seabios"

CLIENT=$BURROW_SOURCE_DIR/tests/tools/burrow-control.py
sock=$BURROW_TMP/control.sock
serial=$BURROW_TMP/serial.log
cp "$BURROW_GUESTS/powerbtn.img" "$BURROW_TMP/disk.img"
burrow_add_log "$serial"
burrow_add_log "$BURROW_TMP/vm.err"

timeout -k 5 "$BURROW_VM_TIMEOUT" "$BURROW_VM" --memory 64 --disk "$BURROW_TMP/disk.img,if=virtio" \
    --serial "file:$serial" --control "$sock" </dev/null >/dev/null 2>"$BURROW_TMP/vm.err" &
vmpid=$!
# SIGTERM: timeout passes it on to burrow-vm (SIGKILL would orphan it).
trap 'kill $vmpid 2>/dev/null; wait $vmpid 2>/dev/null; rm -rf "$BURROW_TMP"' EXIT

# ready N: the guest has said it waits for the button N times.
ready() {
    kill -0 $vmpid 2>/dev/null || burrow_fail "burrow-vm ended early"
    [ "$(grep -c "waiting for the power button" "$serial" 2>/dev/null)" -ge "$1" ]
}
wait_ready() { burrow_until "guest ready for the button (boot $1)" ready "$1"; }
wait_ready 1
reply=$(python3 "$CLIENT" "$sock" reset) || burrow_fail "reset failed: $reply"
wait_ready 2
[ "$(grep -c "SeaBIOS (version" "$serial")" -ge 2 ] || burrow_fail "reset did not restart the firmware"
burrow_note "reset -> $reply; the firmware and the guest ran again"

events=$BURROW_TMP/events.json
burrow_listen "$sock" "$events" --wait-event shutdown
listener=$BURROW_LISTENER
reply=$(python3 "$CLIENT" "$sock" powerdown) || burrow_fail "powerdown failed: $reply"
burrow_note "powerdown -> $reply"

status=0
wait $vmpid || status=$?
wait $listener
[ "$status" -eq 0 ] || burrow_fail "burrow-vm exited with $status after the guest's poweroff, expected 0"
burrow_expect_text "$serial" "powerbtn: pressed, entering S5"
grep -q '"powerdown-requested"\|"shutdown"' "$events" || burrow_fail "no event pushed: $(cat "$events")"
python3 - "$events" <<'PY' || burrow_fail "no shutdown event with reason guest-poweroff: $(cat "$events")"
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
evs = [e for e in evs if "event" in e]
ok = any(e.get("event") == "shutdown" and e["data"].get("reason") == "guest-poweroff" for e in evs)
sys.exit(0 if ok else 1)
PY
[ ! -e "$sock" ] || burrow_fail "the control socket file was left behind"
echo "PASS: power button -> guest S5 -> exit 0"
