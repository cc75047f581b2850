#!/bin/bash
# USB pass-through without a USB device: the options, the control
# commands, the permission advice and the CLI, against a fake host.
# BURROW_USB_SYSFS and BURROW_USB_DEVFS point burrow-vm and burrow at a
# sysfs tree and device nodes made here (a device 1-1, 0525:a4a5, high
# speed; a hub 1-2); the guest waits for the power button
# (tests/guests/powerbtn.S).  Checked:
#   - burrow-vm refuses bad --usb-host and --usb-filter values; --help and
#     the control socket's help list the options and commands;
#   - usb-list shows the fake device; usb-attach of a node that is no
#     usbfs node (a plain file) fails with libusb's word, a hub and an
#     unknown device are refused, bad arguments are invalid-argument, and
#     the VM runs on;
#   - a node this process may not open (owned by another user, mode 0600,
#     burrow-vm run by root without CAP_DAC_OVERRIDE): usb-attach says
#     which file, its owner, group and mode, and the udev rule that fixes
#     it; --usb-host on such a device fails the start with the same;
#     --usb-host on a device that is not plugged in starts the VM;
#   - burrow usb list on a host without USB says so plainly, and lists
#     the fake device; burrow usb attach checks its arguments.
# needs: kvm
# timeout: 600
. "$(dirname "$0")/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
FIRMWARE=/usr/share/seabios/bios-256k.bin
burrow_require_file "$FIRMWARE" "install the seabios package"
burrow_require_guest powerbtn.img
burrow_require_cmd setpriv "install util-linux"
BURROW=$BURROW_BUILD_DIR/burrow
[ -x "$BURROW" ] || burrow_fail "$BURROW is missing: build the project first"
CLIENT=$BURROW_SOURCE_DIR/tests/tools/burrow-control.py

# The fake host.
sys=$BURROW_TMP/sys dev=$BURROW_TMP/dev
attr() { mkdir -p "$sys/$1"; printf '%s\n' "$3" >"$sys/$1/$2"; }
fake() {   # NAME BUS DEVNUM VID PID SPEED CLASS PRODUCT
    attr "$1" busnum "$2"; attr "$1" devnum "$3"; attr "$1" idVendor "$4"; attr "$1" idProduct "$5"
    attr "$1" speed "$6"; attr "$1" bDeviceClass "$7"; attr "$1" product "$8"
    attr "$1" manufacturer "Burrow"; attr "$1" serial "FAKE$3"
    mkdir -p "$dev/$(printf %03d "$2")"
    : >"$dev/$(printf %03d "$2")/$(printf %03d "$3")"
}
fake 1-1 1 5 0525 a4a5 480 00 "Fake Disk"
fake 1-2 1 6 05e3 0608 480 09 "Fake Hub"
mkdir -p "$sys/usb1" "$sys/1-1:1.0"      # a root hub and an interface, left out
export BURROW_USB_SYSFS=$sys BURROW_USB_DEVFS=$dev

expect_vm_error() {   # TEXT ARGS...
    local want=$1 out rc
    shift
    out=$(timeout 60 "$BURROW_VM" "$@" 2>&1 </dev/null)
    rc=$?
    [ $rc -ne 0 ] && [ $rc -ne 124 ] || burrow_fail "burrow-vm $*: status $rc, expected an error"
    grep -qF -- "$want" <<<"$out" || burrow_fail "burrow-vm $*: '$out' lacks '$want'"
    burrow_note "ok: $* -> $out"
}
expect_vm_error "--usb-host: 'bogus' is not VID:PID" --usb-host bogus
expect_vm_error "--usb-host: '1-0' is not VID:PID" --usb-host 1-0
expect_vm_error "--usb-host needs --usb on" --usb-host 1-1 --usb off
expect_vm_error "--usb-filter needs --usb on" --usb-filter vid=1 --usb off
expect_vm_error "--usb-filter: vid 'xyz' is not 1 to 4 hexadecimal digits" --usb-filter vid=xyz
expect_vm_error "--usb-filter: unknown key 'class'" --usb-filter class=8
expect_vm_error "--usb-host: at most 8 devices" $(for i in 1 2 3 4 5 6 7 8 9; do echo --usb-host 1-$i; done)
help=$("$BURROW_VM" --help)
for w in "--usb-host VID:PID|BUS-PORT[.PORT...]" "--usb-filter [vid=HEX][,pid=HEX][,serial=TEXT]" usb-list usb-attach usb-detach; do
    grep -qF -- "$w" <<<"$help" || burrow_fail "burrow-vm --help does not mention $w"
done

# A running VM; ROOT_LIMITS (setpriv's options, or none) says how it runs.
sock=$BURROW_TMP/vm.sock
vmpid=
start_vm() {   # NAME [burrow-vm options...]
    local name=$1
    shift
    rm -f "$sock"
    timeout -k 5 300 setpriv ${ROOT_LIMITS:-} -- "$BURROW_VM" --firmware "$FIRMWARE" --memory 32 \
        --disk "$BURROW_GUESTS/powerbtn.img,format=raw,readonly=on" --serial none --display none \
        --control "$sock" "$@" </dev/null >"$BURROW_TMP/$name.out" 2>"$BURROW_TMP/$name.err" &
    vmpid=$!
    burrow_add_log "$BURROW_TMP/$name.err"
    burrow_until "control socket of $name" python3 "$CLIENT" "$sock" status
}
stop_vm() {
    python3 "$CLIENT" "$sock" quit >/dev/null
    wait "$vmpid"
    local rc=$?
    vmpid=
    [ $rc -eq 0 ] || burrow_fail "burrow-vm ended with status $rc"
}
trap '[ -n "$vmpid" ] && burrow_kill_tree "$vmpid"; rm -rf "$BURROW_TMP"' EXIT
ctl() { python3 "$CLIENT" --timeout 120 "$sock" "$@"; }
ctl_err() {   # CLASS TEXT COMMAND [JSON]: the command fails so
    local cls=$1 want=$2 out
    shift 2
    out=$(ctl "$@") && burrow_fail "$* succeeded: $out"
    grep -qF "\"class\":\"$cls\"" <<<"$out" || burrow_fail "$*: not a $cls error: $out"
    grep -qF -- "$want" <<<"$out" || burrow_fail "$*: '$out' lacks '$want'"
    burrow_note "ok: $* -> $out"
}
running() {
    ctl status | grep -qF '"state":"running"' || burrow_fail "the VM is not running after that"
}

start_vm plain
out=$(ctl usb-list) || burrow_fail "usb-list: $out"
grep -qF '"device":"1-1","bus":1,"devnum":5,"id":"0525:a4a5","manufacturer":"Burrow","product":"Fake Disk","serial":"FAKE5","speed":"high","attached":false,"busy":false' <<<"$out" ||
    burrow_fail "usb-list does not show the fake disk as it is: $out"
grep -qF '"device":"1-2"' <<<"$out" && grep -qF '"hub":true' <<<"$out" || burrow_fail "usb-list does not show the hub: $out"
grep -qF '"usb1"' <<<"$out" && burrow_fail "usb-list shows the root hub: $out"
ctl_err failed "libusb cannot use the device" usb-attach '{"device":"1-1"}'
running
ctl_err failed "no USB device 0525:ffff on the host" usb-attach '{"device":"0525:ffff"}'
ctl_err failed "is a hub, which cannot be passed through" usb-attach '{"device":"1-2"}'
ctl_err invalid-argument "'device' is required" usb-attach '{}'
ctl_err invalid-argument "'1:2:3' is not VID:PID" usb-attach '{"device":"1:2:3"}'
ctl_err failed "this VM holds no USB device 1-1" usb-detach '{"device":"1-1"}'
out=$(ctl help)
for c in usb-list usb-attach usb-detach; do
    grep -qF "\"name\":\"$c\"" <<<"$out" || burrow_fail "help does not list $c"
done
running
stop_vm
burrow_expect_no_text "$BURROW_TMP/plain.err" "sandbox"

# A node root may not open without CAP_DAC_OVERRIDE.
chown 4242:4343 "$dev/001/005"
chmod 0600 "$dev/001/005"
ROOT_LIMITS="--bounding-set -dac_override,-dac_read_search"
start_vm limited
ctl_err failed "cannot open $dev/001/005 (0525:a4a5 Fake Disk): permission denied; it belongs to 4242:4343 with mode -rw------- and this runs as root" \
    usb-attach '{"device":"0525:a4a5"}'
out=$(ctl usb-attach '{"device":"1-1"}')
for w in 'SUBSYSTEM==\"usb\", ATTR{idVendor}==\"0525\", ATTR{idProduct}==\"a4a5\", MODE=\"0660\", GROUP=\"plugdev\"' \
         /etc/udev/rules.d/ "udevadm control --reload"; do
    grep -qF -- "$w" <<<"$out" || burrow_fail "the advice lacks $w: $out"
done
running
stop_vm
# The same at start, for a device --usb-host names: the VM does not start.
out=$(timeout 60 setpriv $ROOT_LIMITS -- "$BURROW_VM" --firmware "$FIRMWARE" --memory 32 --serial none \
    --display none --usb-host 0525:a4a5 2>&1 </dev/null) && burrow_fail "the VM started without its --usb-host device"
grep -qF -- "--usb-host: cannot open $dev/001/005 (0525:a4a5 Fake Disk): permission denied" <<<"$out" ||
    burrow_fail "no advice at start: $out"
burrow_note "ok: --usb-host on a node that cannot be opened -> $out"
ROOT_LIMITS=
# A --usb-host device that is not plugged in: the VM starts and waits for it.
start_vm waiting --usb-host 0525:ffff --usb-filter serial=NOPE
running
stop_vm
burrow_expect_text "$BURROW_TMP/waiting.err" "--usb-host 0525:ffff: no such device now; it is taken when it is plugged in"
# Without USB there is nothing to pass through to.
start_vm nousb --usb off
ctl_err failed "the VM has no USB controller" usb-list
stop_vm

# The CLI.
export XDG_DATA_HOME=$BURROW_TMP/data XDG_RUNTIME_DIR=$BURROW_TMP/run XDG_STATE_HOME=$BURROW_TMP/state
mkdir -p "$XDG_RUNTIME_DIR"
mkdir -p "$BURROW_TMP/empty"
out=$(BURROW_USB_SYSFS=$BURROW_TMP/empty "$BURROW" usb list) || burrow_fail "burrow usb list failed: $out"
[ "$out" = "No USB devices on this host." ] || burrow_fail "burrow usb list on a host without USB: '$out'"
out=$(BURROW_USB_SYSFS=$BURROW_TMP/none "$BURROW" usb list) || burrow_fail "burrow usb list failed: $out"
[ "$out" = "No USB devices on this host." ] || burrow_fail "burrow usb list without sysfs: '$out'"
out=$("$BURROW" usb list) || burrow_fail "burrow usb list failed: $out"
grep -qE '^1-1 +001/005 +0525:a4a5 +high +Burrow Fake Disk +FAKE5 +-$' <<<"$out" ||
    burrow_fail "burrow usb list does not show the fake disk: $out"
out=$("$BURROW" usb list --json) || burrow_fail "burrow usb list --json failed"
python3 -c 'import json, sys; d = json.load(sys.stdin)["devices"]; assert [x["device"] for x in d] == ["1-1", "1-2"], d' <<<"$out" ||
    burrow_fail "burrow usb list --json: $out"
out=$("$BURROW" usb attach vm1 1:2:3 2>&1); rc=$?
[ $rc -eq 2 ] && grep -qF "'1:2:3' is not VID:PID" <<<"$out" || burrow_fail "burrow usb attach with a bad device: $rc $out"
out=$("$BURROW" usb attach vm1 2>&1); rc=$?
[ $rc -eq 2 ] || burrow_fail "burrow usb attach without a device: $rc $out"
"$BURROW" create vm1 --no-disk >/dev/null || burrow_fail "burrow create failed"
out=$("$BURROW" usb detach vm1 1-1 2>&1); rc=$?
[ $rc -eq 1 ] && grep -qF "'vm1' is stopped, not running" <<<"$out" || burrow_fail "burrow usb detach on a stopped VM: $rc $out"
out=$("$BURROW" usb attach nosuch 1-1 2>&1); rc=$?
[ $rc -eq 1 ] && grep -qiF "nosuch" <<<"$out" || burrow_fail "burrow usb attach to an unknown VM: $rc $out"
echo "PASS: USB pass-through's options, control commands, permission advice and CLI on a fake host"
