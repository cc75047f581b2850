#!/bin/bash
# Disks from VirtualBox, VMware, Virtual PC and Hyper-V through the CLI:
# `burrow disk info` describes VDI, VMDK, VHD and VHDX images that qemu-img
# made as qemu-img does; `burrow disk convert` turns each into qcow2 and raw
# images that read byte for byte as qemu-img's conversion, stay sparse,
# with a progress bar on a terminal, never changing the source; `burrow
# create --disk x.vdi` and `burrow modify --add-disk` never record such a
# disk as raw: they refuse with the exact command to run (which then
# works), convert with --convert, or attach read-only with readonly=on.
# (SeaBIOS booting from such disks is test_disk_foreign_boot.sh.)
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
CLI=$BURROW_BUILD_DIR/burrow
[ -x "$CLI" ] || burrow_fail "$CLI is missing: build the project first"
burrow_require_cmd qemu-img "install qemu-utils"
burrow_require_cmd python3
export XDG_DATA_HOME=$BURROW_TMP/data XDG_STATE_HOME=$BURROW_TMP/state XDG_RUNTIME_DIR=$BURROW_TMP/run
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
cd "$BURROW_TMP" || burrow_fail "cannot enter $BURROW_TMP"

b() {
    RC=0
    timeout 120 "$CLI" "$@" >"$BURROW_TMP/out" 2>"$BURROW_TMP/err" </dev/null || RC=$?
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
    [ "$(wc -l <<<"$ERR")" = 1 ] || burrow_fail "burrow $*: expected one line on stderr, got: $ERR"
    grep -qF -- "$want" <<<"$ERR" || burrow_fail "burrow $*: '$ERR' lacks '$want'"
    burrow_note "ok: refused: burrow $* -> $ERR"
}
# json FILE KEY: a field of `burrow disk info --json`.
json() {
    "$CLI" disk info --json "$1" | python3 -c "import json,sys; print(json.load(sys.stdin).get('$2', ''))"
}
# qjson FILE FORMAT KEY: qemu-img's (told the format: it takes a fixed VHD for raw).
qjson() {
    qemu-img info -f "$2" --output=json "$1" | python3 -c "import json,sys; print(json.load(sys.stdin).get('$3', ''))"
}
blocks() { stat -c %b "$1"; }
# srcsum IMG: a checksum of the image and its extent files.
srcsum() { cat "$1" ${1%.vmdk}-*.vmdk 2>/dev/null | md5sum; }

# 96 MiB with data at scattered places, the rest holes.
python3 -c "
import os, random
r = random.Random(19)
with open('data.raw', 'wb') as f:
    f.truncate(96 << 20)
    for i in range(30):
        f.seek(r.randrange(0, (96 << 20) - 200000)); f.write(os.urandom(r.randrange(1, 200000)))
    f.seek(0); f.write(os.urandom(4096))
"
qemu-img convert -O vdi data.raw d.vdi
qemu-img convert -O vdi -o static=on data.raw f.vdi
qemu-img convert -O vmdk -o subformat=streamOptimized data.raw s.vmdk
qemu-img convert -O vmdk -o subformat=twoGbMaxExtentSparse data.raw t.vmdk
qemu-img convert -O vmdk -o subformat=monolithicFlat data.raw flat.vmdk
qemu-img convert -O vhdx data.raw d.vhdx
qemu-img convert -O vpc -o subformat=fixed,force_size=on data.raw f.vhd
qemu-img convert -O vpc -o force_size=on data.raw d.vhd

# name:qemu-format:variant
images="d.vdi:vdi:dynamic f.vdi:vdi:fixed s.vmdk:vmdk:streamOptimized t.vmdk:vmdk:twoGbMaxExtentSparse
        flat.vmdk:vmdk:monolithicFlat d.vhdx:vhdx:dynamic f.vhd:vpc:fixed d.vhd:vpc:dynamic"
for spec in $images; do
    IFS=: read -r img qfmt variant <<<"$spec"
    ours=${qfmt/vpc/vhd}
    # --- info ---
    ok disk info "$img"
    grep -q "^format: $ours\$" <<<"$OUT" || burrow_fail "disk info $img: format: $OUT"
    grep -q "^variant: $variant\$" <<<"$OUT" || burrow_fail "disk info $img: variant: $OUT"
    grep -q "^allocated: " <<<"$OUT" || burrow_fail "disk info $img: no allocated size: $OUT"
    [ "$(json "$img" format)" = "$ours" ] || burrow_fail "disk info --json $img: format"
    [ "$(json "$img" virtual-size)" = "$(qjson "$img" "$qfmt" virtual-size)" ] ||
        burrow_fail "disk info $img: virtual size $(json "$img" virtual-size), qemu-img says $(qjson "$img" "$qfmt" virtual-size)"
    alloc=$(json "$img" allocated-size)
    [ "$alloc" -gt 0 ] && [ "$alloc" -le "$(json "$img" virtual-size)" ] || burrow_fail "$img: allocated $alloc"
    # --- convert, never touching the source ---
    sum=$(srcsum "$img")
    qemu-img convert -f "$qfmt" -O raw "$img" "$img.ref"
    ok disk convert "$img" "$img.qcow2"
    qemu-img check -q "$img.qcow2" || burrow_fail "qemu-img check $img.qcow2"
    qemu-img compare -q -f qcow2 -F raw "$img.qcow2" "$img.ref" || burrow_fail "$img -> qcow2 reads differently"
    ok disk convert "$img" "$img.raw" --format raw
    cmp -s "$img.raw" "$img.ref" || burrow_fail "$img -> raw differs from qemu-img's"
    [ "$(blocks "$img.raw")" -lt $(( (48 << 20) / 512 )) ] || burrow_fail "$img.raw is not sparse"
    [ "$(stat -c %s "$img.qcow2")" -lt $((48 << 20)) ] || burrow_fail "$img.qcow2 is not sparse"
    [ "$(srcsum "$img")" = "$sum" ] || burrow_fail "converting $img changed it"
    refuse "already exists" disk convert "$img" "$img.raw" --format raw
    refuse "reads but does not write" disk resize "$img" 200M
    burrow_note "ok: $img ($variant)"
    rm -f "$img.raw" "$img.ref"
done

# A VMDK child over its parent, flattened; its info names the parent.
qemu-img create -q -f vmdk -b t.vmdk -F vmdk child.vmdk
qemu-io -f vmdk -c "write -P 0x5a 1M 300k" child.vmdk >/dev/null || burrow_fail "qemu-io"
[ "$(json child.vmdk backing-filename)" = t.vmdk ] || burrow_fail "disk info: no parent for child.vmdk"
ok disk convert child.vmdk child.qcow2
qemu-img compare -q child.qcow2 child.vmdk || burrow_fail "child.vmdk flattened reads differently"

# The progress bar, on a terminal only.
if command -v script >/dev/null; then
    script -qec "'$CLI' disk convert d.vhdx tty.qcow2" /dev/null >tty.out 2>&1 ||
        burrow_fail "convert on a terminal failed: $(cat tty.out)"
    grep -q '100.0%' tty.out || burrow_fail "no progress bar on a terminal: $(cat tty.out)"
fi

# --- a VM never gets such a disk as raw -------------------------------------
refuse "burrow disk convert d.vdi d.qcow2" create web --disk d.vdi
[ ! -e "$XDG_DATA_HOME/burrow/vms/web" ] || burrow_fail "a refused create left a VM"
grep -qF -- "--convert" <<<"$ERR" || burrow_fail "the refusal does not mention --convert: $ERR"
# The command it gives works, and the result attaches.
cmd=$(sed -n "s/.*'\(burrow disk convert [^']*\)'.*/\1/p" <<<"$ERR")
[ "$cmd" = "burrow disk convert d.vdi d.qcow2" ] || burrow_fail "no command in '$ERR'"
ok disk convert d.vdi d.qcow2
ok create web --disk d.qcow2 --net none
grep -q '^format=qcow2' "$XDG_DATA_HOME/burrow/vms/web/vm.ini" || burrow_fail "web: not qcow2"
# With --convert: a qcow2 in the VM's folder, the same data.
ok create conv --disk d.vhdx --convert --net none
ini=$XDG_DATA_HOME/burrow/vms/conv/vm.ini
grep -q '^format=qcow2' "$ini" || burrow_fail "conv: the disk is not recorded as qcow2: $(cat "$ini")"
! grep -q '^format=raw' "$ini" || burrow_fail "conv: a raw disk recorded"
qemu-img compare -q "$XDG_DATA_HOME/burrow/vms/conv/disk0.qcow2" d.vhdx.qcow2 ||
    burrow_fail "conv's disk reads differently from d.vhdx"
# A path that needs quoting is quoted in the command.
cp d.vdi "my disk.vdi"
refuse "burrow disk convert 'my disk.vdi' 'my disk.qcow2'" create web2 --disk "my disk.vdi"

# modify --add-disk: refused, read-only, or converted.
refuse "--add-disk $BURROW_TMP/s.vmdk,readonly=on" modify web --add-disk "$BURROW_TMP/s.vmdk"
grep -qF "burrow disk convert $BURROW_TMP/s.vmdk $BURROW_TMP/s.qcow2" <<<"$ERR" ||
    burrow_fail "no exact command in: $ERR"
! grep -q 's.vmdk' "$XDG_DATA_HOME/burrow/vms/web/vm.ini" || burrow_fail "a refused --add-disk was recorded"
ok modify web --add-disk "f.vhd,readonly=on"
ini=$XDG_DATA_HOME/burrow/vms/web/vm.ini
python3 - "$ini" <<'EOF' || burrow_fail "web's read-only VHD: $(cat "$ini")"
import configparser, sys
c = configparser.ConfigParser()
c.read(sys.argv[1])
d = c["disk 1"]
assert d["path"].endswith("/f.vhd") and d["format"] == "vhd" and d["readonly"] == "true", dict(d)
EOF
ok modify web --add-disk s.vmdk --convert
grep -q "converted .*s.vmdk into $XDG_DATA_HOME/burrow/vms/web/s.qcow2" <<<"$ERR" || burrow_fail "no word of the conversion: $ERR"
qemu-img compare -q "$XDG_DATA_HOME/burrow/vms/web/s.qcow2" s.vmdk.qcow2 || burrow_fail "web's converted disk differs"
ok show web
grep -q "s.qcow2 (virtio, qcow2)" <<<"$OUT" || burrow_fail "show web: $OUT"
grep -q "f.vhd (virtio, vhd, read-only)" <<<"$OUT" || burrow_fail "show web: $OUT"
# A definition edited by hand to make it writable is refused, with the command.
sed -i '/^path=.*f.vhd/,/^readonly/ s/^readonly=true/readonly=false/' "$ini"
refuse "burrow disk convert $BURROW_TMP/f.vhd $BURROW_TMP/f.qcow2" show web

# Help lists the new options.
"$CLI" create --help | grep -q -- "--convert" || burrow_fail "create --help lacks --convert"
"$CLI" modify --help | grep -q -- "--convert" || burrow_fail "modify --help lacks --convert"
"$CLI" disk convert --help | grep -q "vdi" || burrow_fail "disk convert --help does not name vdi"
echo "PASS: burrow disk info/convert read VDI, VMDK, VHD, VHDX; VMs never take them as raw"
