#!/bin/bash
# `burrow disk create|info|resize|convert`, checked against qemu-img: the
# images it makes pass `qemu-img check` and have the virtual size qemu-img
# reads; conversions round-trip byte for byte and stay sparse; qemu-img's
# images (with and without a backing file) read back the same through our
# code; bad sizes, existing targets and bad options fail with one line and
# change nothing.  (SeaBIOS booting from a qcow2 image that qemu-img made
# is test_disk_boot.sh, which needs KVM.)
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init

BURROW=$BURROW_BUILD_DIR/burrow
[ -x "$BURROW" ] || burrow_fail "$BURROW is missing: build the project first"
burrow_require_cmd qemu-img "install qemu-utils"
burrow_require_cmd python3

cd "$BURROW_TMP" || burrow_fail "cannot enter $BURROW_TMP"

# ok ARGS...: burrow succeeds.
ok() {
    local out
    out=$("$BURROW" "$@" 2>&1) || burrow_fail "burrow $* failed: $out"
}

# refused STATUS TEXT ARGS...: burrow fails with STATUS and one line on
# stderr containing TEXT, and prints nothing on stdout.
refused() {
    local want_rc=$1 want=$2 out err rc
    shift 2
    out=$("$BURROW" "$@" 2>"$BURROW_TMP/err")
    rc=$?
    err=$(cat "$BURROW_TMP/err")
    [ "$rc" = "$want_rc" ] || burrow_fail "burrow $*: status $rc, expected $want_rc ($err)"
    [ -z "$out" ] || burrow_fail "burrow $*: printed on stdout: $out"
    [ "$(wc -l <<<"$err")" = 1 ] || burrow_fail "burrow $*: expected one line on stderr, got: $err"
    grep -qF -- "$want" <<<"$err" || burrow_fail "burrow $*: '$err' lacks '$want'"
    burrow_note "ok: burrow $* -> $err"
}

# qinfo FILE KEY: a field of `qemu-img info --output=json`.
qinfo() {
    qemu-img info --output=json "$1" | python3 -c "import json,sys; print(json.load(sys.stdin).get('$2', ''))"
}

# binfo FILE KEY: a field of `burrow disk info --json`.
binfo() {
    "$BURROW" disk info --json "$1" | python3 -c "import json,sys; print(json.load(sys.stdin).get('$2', ''))"
}

qcheck() {
    local out
    out=$(qemu-img check "$1" 2>&1) || burrow_fail "qemu-img check $1: $out"
}

# --- create -------------------------------------------------------------
ok disk create a.qcow2 1G
qcheck a.qcow2
[ "$(qinfo a.qcow2 format)" = qcow2 ] || burrow_fail "qemu-img does not see a qcow2 image"
[ "$(qinfo a.qcow2 virtual-size)" = 1073741824 ] || burrow_fail "a.qcow2: wrong virtual size"
[ "$(qinfo a.qcow2 cluster-size)" = 65536 ] || burrow_fail "a.qcow2: cluster size is not 64 KiB"
[ "$(binfo a.qcow2 virtual-size)" = 1073741824 ] || burrow_fail "burrow disk info: wrong virtual size"
[ "$(binfo a.qcow2 dirty-flag)" = False ] || burrow_fail "burrow disk info: dirty flag"
[ "$(binfo a.qcow2 corrupt)" = False ] || burrow_fail "burrow disk info: corrupt flag"
"$BURROW" disk info a.qcow2 | grep -q "^virtual size: 1 GiB (1073741824 bytes)" || burrow_fail "burrow disk info text"

for s in 512 4K 3M 2G 1T 7GiB; do
    ok disk create "s$s.qcow2" "$s"
    qcheck "s$s.qcow2"
done
[ "$(qinfo s4K.qcow2 virtual-size)" = 4096 ] || burrow_fail "4K is not 4096 bytes"
[ "$(qinfo s1T.qcow2 virtual-size)" = 1099511627776 ] || burrow_fail "1T is not 2^40 bytes"
[ "$(qinfo s7GiB.qcow2 virtual-size)" = 7516192768 ] || burrow_fail "7GiB is wrong"

ok disk create r.raw 10M --format raw
[ "$(stat -c %s r.raw)" = 10485760 ] || burrow_fail "r.raw has the wrong size"
[ "$(qinfo r.raw format)" = raw ] || burrow_fail "qemu-img does not see a raw image"
[ "$(binfo r.raw format)" = raw ] || burrow_fail "burrow disk info: r.raw is not raw"

# Backing file: the size defaults to the backing file's.
python3 -c "
import os
with open('base.raw', 'wb') as f:
    f.truncate(4 << 20)
    for i in range(0, 4 << 20, 300 << 10):
        f.seek(i); f.write(os.urandom(20000))
"
ok disk create ov.qcow2 --backing base.raw
qcheck ov.qcow2
[ "$(qinfo ov.qcow2 virtual-size)" = 4194304 ] || burrow_fail "ov.qcow2 did not take the backing file's size"
[ "$(qinfo ov.qcow2 backing-filename)" = base.raw ] || burrow_fail "qemu-img sees no backing file"
[ "$(qinfo ov.qcow2 backing-filename-format)" = raw ] || burrow_fail "backing format not recorded"
[ "$(binfo ov.qcow2 backing-filename)" = base.raw ] || burrow_fail "burrow disk info: no backing file"
qemu-img compare -q ov.qcow2 base.raw || burrow_fail "ov.qcow2 does not read like its backing file"
ok disk create ov8.qcow2 8M --backing base.raw --format=qcow2
[ "$(qinfo ov8.qcow2 virtual-size)" = 8388608 ] || burrow_fail "ov8.qcow2: wrong size"

# Refusals change nothing.
sum_a=$(md5sum <a.qcow2)
refused 1 "a.qcow2 already exists" disk create a.qcow2 2G
refused 1 "a.qcow2 already exists" disk create a.qcow2 2G --format raw
[ "$(md5sum <a.qcow2)" = "$sum_a" ] || burrow_fail "a refused create changed a.qcow2"
for bad in 10X 1000 0 -5 1.5G 99999999999T "" 12KB; do
    refused 2 "" disk create bad.qcow2 "$bad"
    [ ! -e bad.qcow2 ] || burrow_fail "burrow disk create bad.qcow2 '$bad' left a file"
done
refused 2 "bad size '10X'" disk create bad.qcow2 10X
refused 2 "not a multiple of 512" disk create bad.qcow2 1000
refused 2 "greater than zero" disk create bad.qcow2 0
refused 2 "too large" disk create bad.qcow2 99999999999T
refused 2 "missing SIZE" disk create bad.qcow2
refused 2 "missing PATH" disk create
refused 2 "unknown format 'vdi'" disk create bad.img 1M --format vdi
refused 2 "unknown option '--bogus'" disk create bad.img 1M --bogus
refused 2 "--backing needs --format qcow2" disk create bad.img 1M --format raw --backing base.raw
refused 2 "unexpected argument 'extra'" disk create bad.img 1M extra
refused 1 "no-such.raw" disk create bad.qcow2 1M --backing no-such.raw
refused 1 "cannot create" disk create no-such-dir/x.qcow2 1M
[ ! -e bad.qcow2 ] && [ ! -e bad.img ] || burrow_fail "a refused create left a file"

# --- info ---------------------------------------------------------------
refused 1 "no-such.img" disk info no-such.img
printf 'QED\0' >fake.qed && truncate -s 1M fake.qed
refused 1 "looks like a qed image" disk info fake.qed
# A signature without the header behind it (test_disk_foreign.sh has real ones).
printf 'KDMV' >fake.vmdk && truncate -s 1M fake.vmdk
refused 1 "version 0 is not supported" disk info fake.vmdk
qemu-img create -q -f qcow2 q.qcow2 5G
[ "$(binfo q.qcow2 virtual-size)" = 5368709120 ] || burrow_fail "burrow disk info misreads qemu-img's image"
[ "$(binfo q.qcow2 cluster-size)" = 65536 ] || burrow_fail "burrow disk info: cluster size"
[ "$(binfo q.qcow2 qcow2-version)" = 3 ] || burrow_fail "burrow disk info: version"

# --- resize -------------------------------------------------------------
ok disk resize a.qcow2 3G
qcheck a.qcow2
[ "$(qinfo a.qcow2 virtual-size)" = 3221225472 ] || burrow_fail "resize to 3G did not take"
ok disk resize s512.qcow2 1T          # the L1 table has to grow and move
qcheck s512.qcow2
[ "$(qinfo s512.qcow2 virtual-size)" = 1099511627776 ] || burrow_fail "resize to 1T did not take"
sum_a=$(md5sum <a.qcow2)
refused 1 "shrinking" disk resize a.qcow2 1G
[ "$(md5sum <a.qcow2)" = "$sum_a" ] || burrow_fail "a refused shrink changed a.qcow2"
refused 2 "not a multiple of 512" disk resize a.qcow2 1001
refused 2 "missing SIZE" disk resize a.qcow2
ok disk resize r.raw 20M
[ "$(stat -c %s r.raw)" = 20971520 ] || burrow_fail "raw resize did not take"
refused 1 "shrinking" disk resize r.raw 1M
[ "$(stat -c %s r.raw)" = 20971520 ] || burrow_fail "a refused shrink changed r.raw"

# --- convert ------------------------------------------------------------
python3 -c "
import os, random
r = random.Random(7)
with open('data.raw', 'wb') as f:
    f.truncate(64 << 20)
    for i in range(40):
        f.seek(r.randrange(0, (64 << 20) - 300000)); f.write(os.urandom(r.randrange(1, 300000)))
"
ok disk convert data.raw data.qcow2
qcheck data.qcow2
qemu-img compare -q -f raw -F qcow2 data.raw data.qcow2 || burrow_fail "raw -> qcow2 changed the data"
[ "$(stat -c %s data.qcow2)" -lt $((32 << 20)) ] || burrow_fail "data.qcow2 is not sparse"
ok disk convert data.qcow2 back.raw --format raw
cmp -s data.raw back.raw || burrow_fail "qcow2 -> raw changed the data"
[ "$(stat -c %b back.raw)" -lt $(( (32 << 20) / 512 )) ] || burrow_fail "back.raw is not sparse"
# qemu-img's own images, compressed and with a backing file, read the same.
qemu-img convert -c -O qcow2 data.raw comp.qcow2
ok disk convert comp.qcow2 comp.raw --format raw
cmp -s data.raw comp.raw || burrow_fail "qemu-img's compressed image reads differently"
qemu-img create -q -f qcow2 -b data.raw -F raw qov.qcow2
qemu-io -c "write -P 0x5a 1M 300k" -c "write -z 8M 1M" qov.qcow2 >/dev/null || burrow_fail "qemu-io failed"
ok disk convert qov.qcow2 qov.raw --format raw
qemu-img compare -q qov.qcow2 qov.raw || burrow_fail "qemu-img's overlay reads differently through burrow"
# Refusals
sum=$(md5sum <back.raw)
refused 1 "back.raw already exists" disk convert data.qcow2 back.raw --format raw
[ "$(md5sum <back.raw)" = "$sum" ] || burrow_fail "a refused convert changed back.raw"
refused 1 "no-such.raw" disk convert no-such.raw out.qcow2
refused 1 "looks like a qed image" disk convert fake.qed out.qcow2
refused 1 "fake.vmdk" disk convert fake.vmdk out.qcow2
refused 2 "unknown format 'vmdk'" disk convert data.raw out.vmdk --format vmdk
refused 2 "missing DST" disk convert data.raw
[ ! -e out.qcow2 ] && [ ! -e out.vmdk ] || burrow_fail "a refused convert left a file"
# A failure half-way removes the target: a source whose L2 table is bad.
cp data.qcow2 broken.qcow2
python3 -c "
import struct
with open('broken.qcow2', 'r+b') as f:
    f.seek(40); l1 = struct.unpack('>Q', f.read(8))[0]
    f.seek(l1); f.write(struct.pack('>Q', (1 << 63) | (0x7ff << 40)))
"
refused 1 "" disk convert broken.qcow2 out.qcow2
[ ! -e out.qcow2 ] || burrow_fail "a failed convert left its target behind"
# The progress bar, on a terminal only.
if command -v script >/dev/null; then
    script -qec "'$BURROW' disk convert data.raw tty.qcow2" /dev/null >tty.out 2>&1 ||
        burrow_fail "convert on a terminal failed: $(cat tty.out)"
    grep -q '100.0%' tty.out || burrow_fail "no progress bar on a terminal: $(cat tty.out)"
    "$BURROW" disk convert data.raw notty.qcow2 2>notty.err || burrow_fail "convert failed"
    [ ! -s notty.err ] || burrow_fail "progress output without a terminal: $(cat notty.err)"
fi

# --- help ---------------------------------------------------------------
help=$("$BURROW" disk --help) || burrow_fail "burrow disk --help failed"
for c in create info resize convert; do
    grep -q "$c" <<<"$help" || burrow_fail "burrow disk --help does not list $c"
    "$BURROW" disk "$c" --help | grep -q "^Usage: burrow disk $c" || burrow_fail "burrow disk $c --help"
done
refused 2 "unknown command 'disk frobnicate'" disk frobnicate

echo "PASS: burrow disk create/info/resize/convert"
