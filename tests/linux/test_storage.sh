#!/bin/bash
# Disks under Debian's own drivers: virtio_blk and ahci + sd_mod, each with a
# raw and a qcow2 image (one made by qemu-img, one by 'burrow disk create').
# On every disk the guest writes 64 MiB of random data from offset 0 (four
# writers at once) and 2049 sectors that end at the disk's last sector,
# with O_DIRECT and fsync, reads both back, with O_DIRECT and through the
# page cache after dropping it, and compares MD5 sums.  After the power-off
# the host finds the same data in each image and zeros between the two, and
# qemu-img check finds the qcow2 images consistent.
# needs: hwkvm
# timeout: 900
. "$(dirname "$0")/lib.sh"
linux_init
BURROW_VM_TIMEOUT=600
burrow_require_cmd qemu-img "install qemu-utils"

PAYLOAD_MIB=64
TAIL_SECTORS=2049

cat >"$BURROW_TMP/guest.sh" <<GUEST
PAYLOAD_MIB=$PAYLOAD_MIB
TAIL_SECTORS=$TAIL_SECTORS
GUEST
cat >>"$BURROW_TMP/guest.sh" <<'GUEST'
fail() { echo "storage: FAIL $*"; exit 1; }
sum() { md5sum "$1" | cut -d' ' -f1; }
run_dd() { dd "$@" 2>/tmp/dd.err || fail "dd $*: $(cat /tmp/dd.err)"; }
# check_read WHAT WANT DD-ARGS...: dd reads into a file (a pipe costs far
# more than the I/O in the nested helper), whose sum must be WANT.
check_read() {
    local what=$1 want=$2
    shift 2
    run_dd of=/tmp/readback "$@"
    local got
    got=$(sum /tmp/readback)
    [ "$got" = "$want" ] || fail "$what gives $got, not $want"
    rm -f /tmp/readback
}

dd if=/dev/urandom of=/tmp/payload bs=1M count=$PAYLOAD_MIB 2>/dev/null || fail "no random data"
payload=$(sum /tmp/payload)
echo "storage: payload $payload"
tail_bytes=$((TAIL_SECTORS * 512))
n=0
for sys in /sys/block/vd* /sys/block/sd*; do
    [ -e "$sys" ] || continue
    name=${sys##*/}
    dev=/dev/$name
    sectors=$(cat "$sys/size")
    echo "storage: $name sectors $sectors driver $(basename "$(readlink "$sys/device/driver")")"
    [ "$sectors" -gt $((PAYLOAD_MIB * 2048 + TAIL_SECTORS)) ] || fail "$dev is too small"
    tail_at=$(((sectors - TAIL_SECTORS) * 512))
    dd if=/dev/urandom of=/tmp/tail bs=$tail_bytes count=1 2>/dev/null || fail "no random data"
    tail=$(sum /tmp/tail)

    # Four writers at once, a quarter each (PAYLOAD_MIB blocks of 256 KiB):
    # several requests in flight (NCQ tags, virtqueue slots) allocating
    # qcow2 clusters side by side.
    pids=
    for i in 0 1 2 3; do
        dd if=/tmp/payload of="$dev" bs=256k skip=$((i * PAYLOAD_MIB)) seek=$((i * PAYLOAD_MIB)) \
            count=$PAYLOAD_MIB oflag=direct conv=fsync 2>/tmp/dd$i.err &
        pids="$pids $!"
    done
    i=0
    for p in $pids; do
        wait "$p" || fail "writer $i on $dev: $(cat /tmp/dd$i.err)"
        i=$((i + 1))
    done
    run_dd if=/tmp/tail of="$dev" bs=$tail_bytes seek=$tail_at oflag=seek_bytes,direct conv=fsync
    check_read "$dev: O_DIRECT read of the payload" "$payload" if="$dev" bs=1M count=$PAYLOAD_MIB iflag=direct
    check_read "$dev: O_DIRECT read of the tail" "$tail" if="$dev" bs=$tail_bytes count=1 skip=$tail_at iflag=skip_bytes,direct
    # Once more through the page cache (readahead's requests), emptied first.
    sync
    echo 3 >/proc/sys/vm/drop_caches
    check_read "$dev: read of the payload" "$payload" if="$dev" bs=64k count=$((PAYLOAD_MIB * 16))
    check_read "$dev: read of the tail" "$tail" if="$dev" bs=$tail_bytes count=1 skip=$tail_at iflag=skip_bytes
    echo "storage: $name ok payload $payload tail $tail at $tail_at"
    n=$((n + 1))
done
echo "storage: disks checked $n"
GUEST

# Distinct sizes tell the host which guest disk is which image.
vraw=$BURROW_TMP/virtio.raw
vqcow=$BURROW_TMP/virtio.qcow2
sraw=$BURROW_TMP/sata.raw
sqcow=$BURROW_TMP/sata.qcow2
truncate -s 96M "$vraw"
qemu-img create -q -f qcow2 "$vqcow" 112M || burrow_fail "qemu-img create failed"
truncate -s 128M "$sraw"
"$BURROW_BUILD_DIR/burrow" disk create "$sqcow" 144M >"$BURROW_TMP/create.out" 2>&1 ||
    burrow_fail "burrow disk create failed: $(cat "$BURROW_TMP/create.out")"

linux_initramfs "$BURROW_TMP/initrd" "$BURROW_TMP/guest.sh" virtio_pci virtio_blk ahci sd_mod
# One vCPU: in the nested helper, wake-ups across vCPUs cost more than the I/O.
linux_boot storage --cpus 1 --memory 512 --initrd "$BURROW_TMP/initrd" --no-rng \
    --disk "$vraw,if=virtio,format=raw" --disk "$vqcow,if=virtio,format=qcow2" \
    --disk "$sraw,if=sata,format=raw" --disk "$sqcow,if=sata,format=qcow2" --append quiet
linux_expect_pass
burrow_expect_line "$LINUX_SERIAL" "storage: disks checked 4"
payload=$(linux_guest_lines "storage: payload " | head -n 1)

# check_image IMAGE FORMAT SIZE DRIVER: the guest disk of SIZE bytes was
# IMAGE, under DRIVER, and IMAGE holds what the guest wrote.
check_image() {
    local img=$1 fmt=$2 size=$3 driver=$4 raw name ok tail tail_at
    local sectors=$((size / 512)) payload_bytes=$((PAYLOAD_MIB << 20))
    name=$(linux_guest_lines "storage: " | awk -v s="$sectors" -v d="$driver" \
        '$2 == "sectors" && $3 == s && $5 == d { print $1 }')
    [ -n "$name" ] || burrow_fail "the guest saw no $driver disk of $sectors sectors ($img)"
    ok=$(linux_guest_lines "storage: $name ok payload ")
    [ -n "$ok" ] || burrow_fail "the guest did not finish with $name"
    tail=$(awk '{ print $3 }' <<<"$ok")
    tail_at=$(awk '{ print $5 }' <<<"$ok")
    [ "$(awk '{ print $1 }' <<<"$ok")" = "$payload" ] || burrow_fail "$name: payload sum differs"
    raw=$img
    if [ "$fmt" = qcow2 ]; then
        qemu-img check -f qcow2 "$img" >"$BURROW_TMP/check.out" 2>&1 ||
            burrow_fail "qemu-img check $img: $(cat "$BURROW_TMP/check.out")"
        burrow_note "ok: qemu-img check: $(grep -m 1 -i "errors" "$BURROW_TMP/check.out")"
        raw=$BURROW_TMP/converted.raw
        qemu-img convert -f qcow2 -O raw "$img" "$raw" || burrow_fail "qemu-img convert $img failed"
    fi
    [ "$(stat -c %s "$raw")" -eq "$size" ] || burrow_fail "$img: size is not $size"
    [ "$(head -c "$payload_bytes" "$raw" | md5sum | cut -d' ' -f1)" = "$payload" ] ||
        burrow_fail "$img: the first $PAYLOAD_MIB MiB are not what the guest wrote"
    [ "$(tail -c +$((tail_at + 1)) "$raw" | md5sum | cut -d' ' -f1)" = "$tail" ] ||
        burrow_fail "$img: the last $TAIL_SECTORS sectors are not what the guest wrote"
    cmp -s -n $((tail_at - payload_bytes)) <(tail -c +$((payload_bytes + 1)) "$raw") /dev/zero ||
        burrow_fail "$img: data between the payload and the tail, where the guest wrote nothing"
    [ "$raw" = "$img" ] || rm -f "$raw"
    burrow_note "ok: $img ($name, $driver) holds the guest's payload and tail"
}
check_image "$vraw" raw $((96 << 20)) virtio_blk
check_image "$vqcow" qcow2 $((112 << 20)) virtio_blk
check_image "$sraw" raw $((128 << 20)) sd
check_image "$sqcow" qcow2 $((144 << 20)) sd
echo "PASS: 64 MiB and the last sectors written and read back on virtio-blk and AHCI, raw and qcow2"
