#!/bin/bash
# A user's disks are never deleted while something else uses them, and one
# image is never attached twice: `burrow delete web` refuses while another
# VM's definition names a disk in web's folder (attached by path, a
# read-only disk a clone shares, or the backing file of a qcow2 overlay)
# or has it in its CD/DVD drive, and while another program (qemu-io here)
# has an image of the folder open; each time the files are all still
# there, and once nothing uses them the delete goes through.  One image
# twice in a definition, or twice on burrow-vm's command line (even under
# two names), is refused.
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
CLI=${BURROW_CLI:-$BURROW_BUILD_DIR/burrow}
[ -x "$CLI" ] || burrow_fail "$CLI is missing: build the project first"
burrow_require_vm
burrow_require_cmd qemu-img "install qemu-utils"
burrow_require_cmd qemu-io "install qemu-utils"
export XDG_DATA_HOME=$BURROW_TMP/data XDG_STATE_HOME=$BURROW_TMP/state XDG_RUNTIME_DIR=$BURROW_TMP/run
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
holder=
trap '[ -n "$holder" ] && kill -9 "$holder" 2>/dev/null; rm -rf "$BURROW_TMP"' EXIT

b() {
    RC=0
    timeout 60 "$CLI" "$@" >"$BURROW_TMP/out" 2>"$BURROW_TMP/err" </dev/null || RC=$?
    OUT=$(cat "$BURROW_TMP/out")
    ERR=$(cat "$BURROW_TMP/err")
}
ok() {
    b "$@"
    [ "$RC" -eq 0 ] || burrow_fail "burrow $* exited $RC: $ERR"
}
refuse() {
    local want=$1
    shift
    b "$@"
    [ "$RC" -ne 0 ] || burrow_fail "burrow $* succeeded; expected a refusal"
    grep -qF -- "$want" <<<"$ERR" || burrow_fail "burrow $*: '$ERR' lacks '$want'"
    burrow_note "ok: refused: burrow $* -> $ERR"
}
VMS=$XDG_DATA_HOME/burrow/vms
files_of() { (cd "$VMS/$1" && find . -type f | sort | xargs -r md5sum); }

# expect_kept NAME BEFORE: NAME's folder holds the same files as before.
expect_kept() {
    [ "$(files_of "$1")" = "$2" ] || burrow_fail "files of '$1' changed after a refused delete"
}

ok create web --memory 64 --disk-size 16M --net none --display none
disk=$(ls "$VMS/web"/*.qcow2 2>/dev/null | head -n 1)
[ -n "$disk" ] || disk=$(find "$VMS/web" -type f ! -name '*.ini' | head -n 1)
[ -f "$disk" ] || burrow_fail "web has no disk file"
before=$(files_of web)

# --- another VM attaches web's disk by path
ok create w3 --memory 64 --no-disk --net none --display none
ok modify w3 --add-disk "$disk"
refuse "'w3' uses $disk" delete web
expect_kept web "$before"
ok modify w3 --remove-disk 0

# --- another VM has an image of web's folder in its CD/DVD drive
qemu-img create -q -f raw "$VMS/web/tools.iso" 1M
before=$(files_of web)
ok modify w3 --cdrom "$VMS/web/tools.iso"
refuse "'w3' has $VMS/web/tools.iso in its CD/DVD drive" delete web
expect_kept web "$before"
ok modify w3 --cdrom none
rm -f "$VMS/web/tools.iso"
before=$(files_of web)

# --- a qcow2 overlay elsewhere whose backing file is web's disk
qemu-img create -q -f qcow2 -b "$disk" -F qcow2 "$BURROW_TMP/overlay.qcow2"
ok modify w3 --add-disk "$BURROW_TMP/overlay.qcow2"
refuse "'w3' uses $(realpath "$disk")" delete web
expect_kept web "$before"
ok modify w3 --remove-disk 0

# --- a program has web's disk open (QEMU's image lock)
qemu-io -f qcow2 -c "sleep 600000" "$disk" 2>"$BURROW_TMP/qio.err" &
holder=$!
qio_holds() {
    kill -0 "$holder" 2>/dev/null || burrow_fail "qemu-io ended: $(cat "$BURROW_TMP/qio.err")"
    grep -q ":$(stat -c %i "$disk") " /proc/locks
}
burrow_until "qemu-io's lock on web's disk" qio_holds
refuse "is in use by another program" delete web
expect_kept web "$before"
kill "$holder"
burrow_proc_gone "$holder" || burrow_fail "qemu-io did not end"
holder=

# --- one image twice
refuse "attach an image once" modify w3 --add-disk "$disk" --add-disk "$disk"
qemu-img create -q -f raw "$BURROW_TMP/x.img" 1M
ln -s x.img "$BURROW_TMP/y.img"
BURROW_STATUS=0
"$BURROW_VM" --memory 64 --display none --serial none --disk "$BURROW_TMP/x.img,format=raw" \
    --disk "$BURROW_TMP/y.img,format=raw,if=sata" >"$BURROW_TMP/vm.out" 2>&1 || BURROW_STATUS=$?
[ "$BURROW_STATUS" -ne 0 ] || burrow_fail "burrow-vm took one image as two disks"
grep -q "are the same image: attach it once" "$BURROW_TMP/vm.out" ||
    burrow_fail "burrow-vm's refusal of one image twice: $(cat "$BURROW_TMP/vm.out")"
burrow_note "ok: burrow-vm refused: $(cat "$BURROW_TMP/vm.out")"

# --- nothing uses it any more: the delete goes through
ok delete web
[ ! -e "$VMS/web" ] || burrow_fail "web's folder is still there"
burrow_note "ok: with nothing using it, web is deleted"
echo "PASS: a disk in use elsewhere is never deleted; one image is never attached twice"
