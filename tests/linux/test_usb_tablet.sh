#!/bin/bash
# The USB tablet and keyboard under Debian's kernel: xhci_hcd/xhci_pci,
# usbhid and hid_generic bind the controller burrow-vm has by default and
# both devices on it, and a VNC viewer's pointer at the centre and at each
# corner of the screen arrives in the tablet's evdev node as the absolute
# position of that pixel: the axis's minimum and maximum at the edges
# exactly, the rest rounded to the nearest step.  While the guest has the
# USB keyboard, the machine's status says keys go there.  The guest reads
# evdev with tests/guests/linux/absevents.c; the kernel logs no USB errors.
# needs: hwkvm
# timeout: 1200
BURROW_VM_TIMEOUT=${BURROW_VM_TIMEOUT:-900}
. "$(dirname "$0")/lib.sh"
linux_init
burrow_require_guest absevents
VIEWER=$BURROW_SOURCE_DIR/tests/tools/rfb-viewer.py

cat >"$BURROW_TMP/guest.sh" <<'GUEST'
dmesg -n 1
# Five positions: the centre and the four corners.
/absevents "Burrow USB Tablet" 5 300
rc=$?
sed -n 's/^N: Name="\(.*\)"$/input: \1/p' /proc/bus/input/devices
for d in /sys/bus/usb/drivers/usbhid/*:*; do
    [ -e "$d" ] && echo "usbhid: $(cat "$d/../product" 2>/dev/null)"
done
dmesg | grep -iE 'usb|xhci|hid' | sed 's/^\[[ 0-9.]*\] //; s/^/dmesg: /'
exit $rc
GUEST

linux_initramfs "$BURROW_TMP/initrd" "$BURROW_TMP/guest.sh" xhci_pci usbhid hid_generic evdev \
    -- "$BURROW_GUESTS/absevents=/absevents"
linux_start tablet --memory 256 --initrd "$BURROW_TMP/initrd" --display headless --append quiet
linux_wait_serial "absevents: ready"

# input FIELD: a field of the status reply's "input" object.
input() {
    linux_ctl status | python3 -c 'import json, sys; print(json.load(sys.stdin)["return"]["input"][sys.argv[1]])' "$1"
}
input_is() {
    kill -0 "$LINUX_PID" 2>/dev/null || burrow_fail "burrow-vm ended early"
    [ "$(input "$1")" = "$2" ]
}
[ "$(input usb)" = True ] || burrow_fail "the VM has no USB controller by default"
burrow_until "the tablet in use" input_is pointer usb-tablet

read -r _ xmin xmax _ ymin ymax < <(linux_guest_lines "absevents: absinfo ")
burrow_note "tablet axes: x $xmin..$xmax, y $ymin..$ymax"

# The screen the viewer shows (the guest's, or a placeholder before it set
# a mode), from a viewer that only looks.
size=$(timeout 120 python3 "$VIEWER" --control "$LINUX_SOCK" --timeout 60 | sed -n 's/^serverinit //p')
W=${size%x*}
H=${size#*x}
[ -n "$W" ] && [ -n "$H" ] && [ "$W" -gt 1 ] && [ "$H" -gt 1 ] || burrow_fail "no screen size from the viewer ('$size')"
burrow_note "screen: ${W}x$H"

# expect P SIZE MIN MAX: the axis value of pixel P of SIZE, rounded to the
# nearest (halves up).
expect() {
    echo $(( $3 + (2 * $1 * ($4 - $3) + ($2 - 1)) / (2 * ($2 - 1)) ))
}

points=("$((W / 2)),$((H / 2))" "$((W - 1)),0" "$((W - 1)),$((H - 1))" "0,$((H - 1))" "0,0")
# One viewer moves the pointer to each point in turn, going on only once
# the guest has reported the one before (so no move merges with the next).
last=$((${#points[@]} - 1))
actions=()
for i in "${!points[@]}"; do
    actions+=("move=${points[$i]}")
    [ "$i" -eq "$last" ] || actions+=("when=$BURROW_TMP/seen.$i")
done
timeout "$BURROW_VM_TIMEOUT" python3 "$VIEWER" --control "$LINUX_SOCK" --timeout "$BURROW_VM_TIMEOUT" \
    "${actions[@]}" >"$BURROW_TMP/viewer.out" 2>&1 &
viewer=$!
LINUX_PIDS+=("$viewer")
burrow_add_log "$BURROW_TMP/viewer.out"

# reported N: the guest printed more than N positions.
reported() {
    kill -0 "$LINUX_PID" 2>/dev/null || burrow_fail "burrow-vm ended early"
    [ "$(linux_guest_lines "absevents: pos " | wc -l)" -gt "$1" ]
}
for i in "${!points[@]}"; do
    burrow_until "the guest's report of position $((i + 1))" reported "$i"
    got=$(linux_guest_lines "absevents: pos " | sed -n "$((i + 1))p")
    px=${points[$i]%,*}
    py=${points[$i]#*,}
    want="$(expect "$px" "$W" "$xmin" "$xmax") $(expect "$py" "$H" "$ymin" "$ymax")"
    [ "$got" = "$want" ] || burrow_fail "pixel ($px, $py) of ${W}x$H arrived as ($got), not ($want)"
    burrow_note "pixel ($px, $py) -> ($got)"
    [ "$i" -lt "$last" ] || break
    [ "$(input keyboard)" = usb ] || burrow_fail "keys go to the $(input keyboard) keyboard while the guest has the USB one"
    touch "$BURROW_TMP/seen.$i"
done
wait "$viewer" || burrow_fail "the viewer failed: $(tail -n 5 "$BURROW_TMP/viewer.out")"
linux_wait_exit
linux_expect_pass

linux_guest_lines "input: " | grep -q "USB Tablet" || burrow_fail "no tablet among the input devices"
linux_guest_lines "input: " | grep -q "USB Keyboard" || burrow_fail "no USB keyboard among the input devices"
[ "$(linux_guest_lines "usbhid: " | wc -l)" -ge 2 ] || burrow_fail "usbhid did not bind both devices"
burrow_note "$(linux_guest_lines "dmesg: ")"
if linux_guest_lines "dmesg: " | grep -iE 'error|fail|timeout|unable|cannot|bad '; then
    burrow_fail "the kernel complains about USB"
fi
echo "PASS: the centre and corners of the ${W}x$H VNC screen arrived in the guest's evdev as exact tablet positions"
