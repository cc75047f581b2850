#!/bin/bash
# Two writers never open one image, whichever of Burrow and QEMU comes
# first: burrow-vm and `burrow disk` lock images with the byte-range OFD
# locks QEMU uses (devices/block/lock.c), so
#  - while burrow-vm runs with a qcow2 and a raw disk, qemu-img info,
#    qemu-img resize and qemu-io refuse them (qemu-img info -U still
#    reads), and so do a second burrow-vm (a USB disk too) and `burrow
#    disk resize`;
#  - while qemu-nbd serves an image, `burrow disk resize` and burrow-vm
#    refuse it; while qemu-io reads a qcow2 one, burrow-vm will not write
#    it but
#    `burrow disk info` reads it;
#  - once the holder has gone, each works, and the images pass
#    `qemu-img check`.
# needs: kvm
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_cmd qemu-img "install qemu-utils"
burrow_require_cmd qemu-nbd "install qemu-utils"
burrow_require_cmd qemu-io "install qemu-utils"
burrow_require_cmd python3
burrow_require_file /usr/share/seabios/bios-256k.bin "install seabios"

BURROW=$BURROW_BUILD_DIR/burrow
CONTROL=$BURROW_SOURCE_DIR/tests/tools/burrow-control.py
cd "$BURROW_TMP" || burrow_fail "cannot enter $BURROW_TMP"
qemu-img create -q -f qcow2 a.qcow2 16M
qemu-img create -q -f raw b.raw 16M
holders=()
trap 'kill -9 "${holders[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$BURROW_TMP"' EXIT

# locked FILE: some process holds a lock on FILE.
locked() {
    grep -q " [0-9a-f]*:[0-9a-f]*:$(stat -c %i "$1") " /proc/locks
}
# refused WHAT TEXT CMD...: CMD fails and says TEXT.
refused() {
    local what=$1 text=$2 out
    shift 2
    if out=$("$@" 2>&1); then
        burrow_fail "$what was allowed: $out"
    fi
    grep -qiF -- "$text" <<<"$out" || burrow_fail "$what failed without saying \"$text\": $out"
    burrow_note "ok: $what refused: $(head -n 1 <<<"$out")"
}

# --- burrow-vm first ----------------------------------------------------
burrow_add_log "$BURROW_TMP/vm.err"
timeout -k 10 "$BURROW_VM_TIMEOUT" "$BURROW_VM" --name locks --memory 64 --display none \
    --serial none --disk "a.qcow2,if=virtio" --disk "b.raw,format=raw,if=virtio" \
    --control "$BURROW_TMP/vm.sock" </dev/null >/dev/null 2>"$BURROW_TMP/vm.err" &
vm=$!
holders+=("$vm")
# the control socket comes after the disks are open
python3 "$CONTROL" "$BURROW_TMP/vm.sock" --greeting --connect-timeout "$BURROW_WAIT_LIMIT" >/dev/null ||
    burrow_fail "burrow-vm did not come up"
refused "qemu-img info while burrow-vm writes" "lock" qemu-img info a.qcow2
qemu-img info -U a.qcow2 >/dev/null || burrow_fail "qemu-img info -U (no locks) could not read"
refused "qemu-img resize while burrow-vm writes" "lock" qemu-img resize -q a.qcow2 32M
refused "a qemu-io write while burrow-vm writes" "lock" qemu-io -f raw -c "write 0 512" b.raw
refused "a second burrow-vm on the image" "in use by another program" \
    timeout "$BURROW_VM_TIMEOUT" "$BURROW_VM" --name locks2 --memory 64 --display none \
    --serial none --disk "b.raw,format=raw,if=virtio"
refused "a second burrow-vm's USB disk on the image" "in use by another program" \
    timeout "$BURROW_VM_TIMEOUT" "$BURROW_VM" --name locks2 --memory 64 --display none \
    --serial none --usb-disk "b.raw,format=raw,readonly=on"
refused "burrow disk resize while burrow-vm writes" "in use by another program" \
    "$BURROW" disk resize b.raw 32M
[ "$(stat -c %s b.raw)" = $((16 << 20)) ] || burrow_fail "b.raw changed size"
python3 "$CONTROL" "$BURROW_TMP/vm.sock" quit >/dev/null || burrow_fail "quit"
burrow_proc_gone "$vm" || burrow_fail "burrow-vm did not end"
qemu-img resize -q a.qcow2 32M || burrow_fail "qemu-img resize after burrow-vm ended"
qemu-img check -q a.qcow2 || burrow_fail "a.qcow2 does not pass qemu-img check"
burrow_note "ok: after burrow-vm, qemu-img resizes a.qcow2 and it checks clean"

# --- QEMU first -----------------------------------------------------------
qemu-nbd -f qcow2 -k "$BURROW_TMP/nbd.sock" a.qcow2 2>"$BURROW_TMP/nbd.err" &
nbd=$!
holders+=("$nbd")
burrow_add_log "$BURROW_TMP/nbd.err"
nbd_holds() {
    kill -0 "$nbd" 2>/dev/null || burrow_fail "qemu-nbd ended"
    locked a.qcow2
}
burrow_until "qemu-nbd's locks on a.qcow2" nbd_holds
refused "burrow disk resize while qemu-nbd serves" "in use by another program" \
    "$BURROW" disk resize a.qcow2 64M
[ "$(qemu-img info -U --output=json a.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')" = $((32 << 20)) ] ||
    burrow_fail "a.qcow2 was resized under qemu-nbd"
refused "burrow-vm on an image qemu-nbd serves" "in use by another program" \
    timeout "$BURROW_VM_TIMEOUT" "$BURROW_VM" --name locks3 --memory 64 --display none \
    --serial none --disk "a.qcow2,if=virtio"
kill "$nbd"
burrow_proc_gone "$nbd" || burrow_fail "qemu-nbd did not end"
"$BURROW" disk resize a.qcow2 64M || burrow_fail "burrow disk resize after qemu-nbd ended"
qemu-img check -q a.qcow2 || burrow_fail "a.qcow2 does not pass qemu-img check after the resize"
burrow_note "ok: after qemu-nbd, burrow disk resize grows a.qcow2 and it checks clean"

# --- a QEMU reader ----------------------------------------------------------
# (a qcow2 reader refuses writers; QEMU lets a raw one share writing)
qemu-io -r -f qcow2 -c "sleep 600000" a.qcow2 2>"$BURROW_TMP/qio.err" &
qio=$!
holders+=("$qio")
qio_holds() {
    kill -0 "$qio" 2>/dev/null || burrow_fail "qemu-io ended"
    locked a.qcow2
}
burrow_until "qemu-io's locks on a.qcow2" qio_holds
refused "burrow-vm writing an image qemu-io reads" "in use by another program" \
    timeout "$BURROW_VM_TIMEOUT" "$BURROW_VM" --name locks4 --memory 64 --display none \
    --serial none --disk "a.qcow2,if=virtio"
"$BURROW" disk info a.qcow2 >/dev/null || burrow_fail "burrow disk info could not read beside a reader"
burrow_note "ok: beside qemu-io -r, burrow-vm will not write a.qcow2 and burrow disk info reads it"
kill "$qio"

echo "PASS: Burrow and QEMU refuse each other's open images"
