#!/bin/bash
# SeaBIOS's own xHCI driver finds the USB keyboard of --usb on (its log on
# the debug port says "USB keyboard initialized"), and keys typed with the
# control socket's send-keys and by a VNC viewer reach the demo guest
# (INT 16h, served by SeaBIOS from the USB keyboard's reports) through USB
# alone: the machine's status says the keyboard in use is the USB one and
# counts the key events that went to each keyboard, none to the PS/2 one.
# With --usb off there is no controller (SeaBIOS's log has no XHCI) and the
# same keys reach the guest through the PS/2 keyboard.
# needs: kvm
# timeout: 900
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_guest demo.img
burrow_require_cmd python3
burrow_require_cmd tesseract "install tesseract-ocr"
burrow_require_file /usr/share/seabios/bios-256k.bin "install seabios"
burrow_require_file /usr/share/seabios/vgabios-stdvga.bin "install Debian's seabios"

CLIENT=$BURROW_SOURCE_DIR/tests/tools/burrow-control.py
VIEWER=$BURROW_SOURCE_DIR/tests/tools/rfb-viewer.py
cp "$BURROW_GUESTS/demo.img" "$BURROW_TMP/disk.img"

# start_vm NAME ARGS...: the demo guest in the background with a control
# socket ($SOCK), COM1 in $SERIAL and SeaBIOS's log in $FWLOG.
start_vm() {
    local name=$1
    shift
    SOCK=$BURROW_TMP/$name.sock
    SERIAL=$BURROW_TMP/$name.serial
    FWLOG=$BURROW_TMP/$name.firmware
    burrow_add_log "$FWLOG"
    burrow_add_log "$SERIAL"
    burrow_start_vm "$name" --memory 64 --disk "$BURROW_TMP/disk.img" \
        --serial "file:$SERIAL" --firmware-log "$FWLOG" --control "$SOCK" "$@"
    python3 "$CLIENT" "$SOCK" --greeting --connect-timeout "$BURROW_WAIT_LIMIT" >/dev/null ||
        burrow_fail "no control socket"
}

ctl() { python3 "$CLIENT" "$SOCK" "$@"; }

# input FIELD: a field of the status reply's "input" object.
input() {
    ctl status | python3 -c 'import json, sys; print(json.load(sys.stdin)["return"]["input"][sys.argv[1]])' "$1"
}
input_is() {
    kill -0 "$VM_PID" 2>/dev/null || burrow_fail "burrow-vm ended early"
    [ "$(input "$1")" = "$2" ]
}

send_keys() {
    local out
    out=$(ctl send-keys "$1") || burrow_fail "send-keys: $out"
}

# ---- --usb on, no display: send-keys, echoed on COM1 by SeaBIOS's console ----
start_vm usb --usb on --display none
burrow_wait_text "$FWLOG" "USB keyboard initialized" "$VM_PID"
burrow_until "the USB keyboard in use" input_is keyboard usb
burrow_wait_text "$SERIAL" "Type and the guest echoes" "$VM_PID"
send_keys '{"keys":["u","s","b","spc","shift-k","e","y","s","ret"]}'
burrow_wait_text "$SERIAL" "usb Keys" "$VM_PID"
[ "$(input usb)" = True ] || burrow_fail "status says the VM has no USB"
[ "$(input ps2-key-events)" = 0 ] || burrow_fail "$(input ps2-key-events) key events went to the PS/2 keyboard"
usb_keys=$(input usb-key-events)
# Nine keys pressed and released, Shift too.
[ "$usb_keys" = 20 ] || burrow_fail "the USB keyboard got $usb_keys key events, not 20"
burrow_note "send-keys: 'usb Keys' echoed, 20 key events on USB, none on PS/2"
ctl quit >/dev/null
wait "$VM_PID" || burrow_fail "burrow-vm exited with $?"
VM_PID=

# ---- --usb on, a VNC viewer types; the screen read back ----
start_vm vnc --usb on --display headless
burrow_wait_text "$FWLOG" "USB keyboard initialized" "$VM_PID"
ocr() {
    ctl screenshot "{\"path\":\"$BURROW_TMP/shot.png\"}" >/dev/null || burrow_fail "screenshot failed"
    tesseract "$BURROW_TMP/shot.png" - 2>/dev/null
}
on_screen() {
    kill -0 "$VM_PID" 2>/dev/null || burrow_fail "burrow-vm ended early"
    ocr >"$BURROW_TMP/screen.txt"
    grep -q "$1" "$BURROW_TMP/screen.txt"
}
burrow_add_log "$BURROW_TMP/screen.txt"
burrow_until "demo guest's banner on the screen" on_screen "Type and the"
burrow_until "the USB keyboard in use" input_is keyboard usb
# "burrow Keys": keysyms of the letters, Shift_L (0xffe1) around K.
keys=()
for c in b u r r o w; do keys+=("key=$(printf '0x%x' "'$c")"); done
keys+=("key=0x20" "down=0xffe1" "key=0x4b" "up=0xffe1" "key=0x65" "key=0x79" "key=0x73")
# The viewer stays until the text is there, as a person's would (one that
# hangs up at once may lose what it sent last with the update it never read).
burrow_add_log "$BURROW_TMP/viewer.out"
timeout "$BURROW_VM_TIMEOUT" python3 "$VIEWER" --control "$SOCK" --timeout "$BURROW_VM_TIMEOUT" "${keys[@]}" \
    "when=$BURROW_TMP/typed" >"$BURROW_TMP/viewer.out" 2>&1 &
viewer=$!
burrow_until "the typed text on the screen" on_screen "burrow Keys"
touch "$BURROW_TMP/typed"
wait "$viewer" || burrow_fail "the viewer failed: $(tail -n 5 "$BURROW_TMP/viewer.out")"
[ "$(input ps2-key-events)" = 0 ] || burrow_fail "$(input ps2-key-events) key events went to the PS/2 keyboard"
usb_keys=$(input usb-key-events)
[ "$usb_keys" = 24 ] || burrow_fail "the USB keyboard got $usb_keys key events from the viewer, not 24"
burrow_note "VNC: 'burrow Keys' on the screen, 24 key events on USB, none on PS/2"
ctl quit >/dev/null
wait "$VM_PID" || burrow_fail "burrow-vm exited with $?"
VM_PID=

# ---- --usb off: no controller, the PS/2 keyboard types ----
start_vm nousb --usb off --display none
burrow_wait_text "$SERIAL" "Type and the guest echoes" "$VM_PID"
burrow_expect_no_text "$FWLOG" "XHCI"
[ "$(input usb)" = False ] || burrow_fail "status says the VM has USB"
[ "$(input keyboard)" = ps2 ] || burrow_fail "status says the keyboard in use is $(input keyboard)"
send_keys '{"keys":["p","s","2","ret"]}'
burrow_wait_text "$SERIAL" "ps2" "$VM_PID"
[ "$(input ps2-key-events)" = 8 ] || burrow_fail "the PS/2 keyboard got $(input ps2-key-events) key events, not 8"
[ "$(input usb-key-events)" = 0 ] || burrow_fail "key events went to a USB keyboard"
ctl quit >/dev/null
wait "$VM_PID" || burrow_fail "burrow-vm exited with $?"
VM_PID=
echo "PASS: SeaBIOS drove the USB keyboard; send-keys and VNC typed through it alone; with --usb off through PS/2"
