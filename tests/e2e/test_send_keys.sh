#!/bin/bash
# Keys typed through the control socket's send-keys reach the guest through
# the PS/2 keyboard (the demo guest echoes them through the VGA BIOS), and a
# screenshot of the headless display shows them: read back with tesseract.
# needs: kvm
# timeout: 900
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_guest demo.img
burrow_require_cmd python3
burrow_require_cmd tesseract "install tesseract-ocr"
burrow_require_file /usr/share/seabios/vgabios-stdvga.bin "install Debian's seabios"

CLIENT=$BURROW_SOURCE_DIR/tests/tools/burrow-control.py
sock=$BURROW_TMP/control.sock
cp "$BURROW_GUESTS/demo.img" "$BURROW_TMP/disk.img"
burrow_add_log "$BURROW_TMP/vm.err"
ctl() { python3 "$CLIENT" "$sock" "$@"; }

timeout -k 5 "$BURROW_VM_TIMEOUT" "$BURROW_VM" --memory 64 --disk "$BURROW_TMP/disk.img" \
    --display headless --serial none --control "$sock" </dev/null >/dev/null 2>"$BURROW_TMP/vm.err" &
vmpid=$!
# SIGTERM: timeout passes it on to burrow-vm (SIGKILL would orphan it).
trap 'kill $vmpid 2>/dev/null; wait $vmpid 2>/dev/null; rm -rf "$BURROW_TMP"' EXIT
ctl --greeting --connect-timeout "$BURROW_WAIT_LIMIT" >/dev/null || burrow_fail "no control socket"

# ocr: the screen's text, from a screenshot scaled up for tesseract.
ocr() {
    ctl screenshot "{\"path\":\"$BURROW_TMP/shot.png\"}" >/dev/null || burrow_fail "screenshot failed"
    tesseract "$BURROW_TMP/shot.png" - 2>/dev/null
}
# on_screen TEXT: the screen shows TEXT (the VM still running).
on_screen() {
    kill -0 $vmpid 2>/dev/null || burrow_fail "burrow-vm ended early"
    ocr >"$BURROW_TMP/screen.txt"
    grep -q "$1" "$BURROW_TMP/screen.txt"
}
burrow_add_log "$BURROW_TMP/screen.txt"
burrow_until "demo guest's banner on the screen" on_screen "Type and the"

out=$(ctl send-keys '{"keys":["b","u","r","r","o","w","spc","shift-k","e","y","s"]}') || burrow_fail "send-keys: $out"
out=$(ctl send-keys '{"keys":["no-such-key"]}') && burrow_fail "an unknown key name was accepted"
grep -q "unknown key name" <<<"$out" || burrow_fail "unclear error: $out"
burrow_until "typed text on the screen" on_screen "burrow Keys"
ctl quit >/dev/null
wait $vmpid || burrow_fail "burrow-vm exited with $?"
echo "PASS: send-keys typed 'burrow Keys', read back from a screenshot"
