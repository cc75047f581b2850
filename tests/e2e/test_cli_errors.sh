#!/bin/bash
# burrow-vm refuses bad options, missing files and an inaccessible /dev/kvm
# with one clear line and a non-zero status; --help documents every option.
# needs: kvm
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
[ -x "$BURROW_VM" ] || burrow_fail "burrow-vm not built"

# expect_error "<text the message must contain>" ARGS...
expect_error() {
    local want=$1
    shift
    local out rc
    out=$(timeout 20 "$BURROW_VM" "$@" 2>&1 </dev/null)
    rc=$?
    [ $rc -ne 0 ] || burrow_fail "burrow-vm $* exited 0; expected an error"
    [ $rc -ne 124 ] || burrow_fail "burrow-vm $* hung"
    grep -q -- "$want" <<<"$out" || burrow_fail "burrow-vm $*: message '$out' lacks '$want'"
    [ "$(wc -l <<<"$out")" -le 2 ] || burrow_fail "burrow-vm $*: expected a short message, got: $out"
    burrow_note "ok: $* -> $out"
}

disk=$BURROW_TMP/disk.img
truncate -s 1M "$disk"

expect_error "unknown option '--bogus'" --bogus
expect_error "needs a value" --memory
expect_error "--memory: 'lots'" --memory lots
expect_error "--memory: '-5'" --memory -5
expect_error "--memory: '8'" --memory 8
expect_error "--cpus: '0'" --cpus 0
expect_error "--cpus: '1000'" --cpus 1000
expect_error "--cpus: '2x'" --cpus 2x
expect_error "unexpected argument 'stray'" stray
expect_error "no-such.img" --disk "$BURROW_TMP/no-such.img"
expect_error "unsupported interface 'floppy'" --disk "$disk,if=floppy"
expect_error "unknown option 'cache'" --disk "$disk,cache=none"
expect_error "readonly must be on or off" --disk "$disk,readonly=maybe"
expect_error "--disk needs a path" --disk ",if=virtio"
expect_error "--usb-disk needs --usb on" --usb off --usb-disk "$disk"
expect_error "no-such.img" --usb-disk "$BURROW_TMP/no-such.img"
expect_error "--usb-disk: unknown option 'if'" --usb-disk "$disk,if=sata"
expect_error "--usb-disk: readonly must be on or off" --usb-disk "$disk,readonly=1"
expect_error "at most 2 USB disks" --usb-disk "$disk" --usb-disk "$disk" --usb-disk "$disk"
expect_error "the same image" --disk "$disk" --usb-disk "$disk"
expect_error "firmware '$BURROW_TMP/nofw.bin'" --firmware "$BURROW_TMP/nofw.bin"
expect_error "kernel '$BURROW_TMP/vmlinuz'" --kernel "$BURROW_TMP/vmlinuz"
expect_error "need --kernel" --initrd "$disk"
expect_error "unsupported display 'gtk'" --display gtk
expect_error "--uuid: 'nope'" --uuid nope
expect_error "unknown keyboard layout 'xx'" --vnc-keymap xx --display vnc::5999
expect_error "--vnc-keymap needs --display vnc" --vnc-keymap de
expect_error "--uuid: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1fz'" --uuid 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1fz
# The serial backend is opened after KVM is set up.
burrow_require_kvm
expect_error "unknown serial backend" --serial bogus:x --firmware "$disk" --memory 16

help=$("$BURROW_VM" --help) || burrow_fail "--help failed"
for opt in --memory --cpus --firmware --kernel --initrd --append --disk --serial --display \
           --control --firmware-log --debug-exit --usb --usb-disk --help; do
    grep -q -- "$opt" <<<"$help" || burrow_fail "--help does not document $opt"
done
burrow_note "ok: --help documents every option"

# No permission on /dev/kvm: run as an unprivileged user when we can.
if [ -e /dev/kvm ] && [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    perms=$(stat -c %a /dev/kvm)
    if [ "${perms: -1}" -ge 6 ]; then
        burrow_note "note: /dev/kvm is world-accessible here; permission case not testable"
    else
        cp "$BURROW_VM" "$BURROW_TMP/burrow-vm"
        chmod 755 "$BURROW_TMP" "$BURROW_TMP/burrow-vm"
        out=$(timeout 20 setpriv --reuid=65534 --regid=65534 --clear-groups \
              "$BURROW_TMP/burrow-vm" --firmware /usr/share/seabios/bios-256k.bin --memory 16 \
              --serial none 2>&1 </dev/null)
        rc=$?
        [ $rc -ne 0 ] || burrow_fail "unprivileged burrow-vm exited 0"
        grep -q "no permission to open /dev/kvm" <<<"$out" ||
            burrow_fail "unprivileged run: unclear message: $out"
        burrow_note "ok: unprivileged -> $out"
    fi
else
    burrow_note "note: not root or no /dev/kvm: permission case not tested here"
fi
echo "all CLI error checks passed"
