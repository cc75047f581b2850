#!/bin/bash
# USB mass storage under Debian's kernel: xhci_pci, usb-storage and sd_mod
# bind two --usb-disk images.  A read-only raw image of 4 MiB of random
# data shows as a read-only SCSI disk whose whole content has the SHA-256
# the host computed; on a writable qcow2 image the guest writes 3 MiB of
# random data (O_DIRECT, then fsync) from sector 1001, reads it back
# through a dropped page cache, and after the power-off the host finds the
# same bytes there and nothing else changed.  The kernel logs no USB or
# SCSI errors.
# needs: hwkvm
# timeout: 900
. "$(dirname "$0")/lib.sh"
linux_init
BURROW_VM_TIMEOUT=600
burrow_require_cmd qemu-img "install qemu-utils"

ro=$BURROW_TMP/stick.raw
rw=$BURROW_TMP/disk.qcow2
head -c $((4 << 20)) /dev/urandom >"$ro" || burrow_fail "no random data"
ro_sum=$(sha256sum "$ro" | cut -d' ' -f1)
qemu-img create -q -f qcow2 "$rw" 16M || burrow_fail "qemu-img create failed"

cat >"$BURROW_TMP/guest.sh" <<'GUEST'
fail() { echo "usbdisk: FAIL $*"; dmesg | grep -iE 'usb|scsi|sd ' | sed 's/^/dmesg: /'; exit 1; }
# usb-storage scans a new device after a second's grace: wait for both.
i=0
while [ "$(ls -d /sys/block/sd* 2>/dev/null | wc -l)" -lt 2 ]; do
    i=$((i + 1))
    [ $i -lt 300 ] || fail "fewer than two SCSI disks after 60 s"
    sleep 0.2
done
for sys in /sys/block/sd*; do
    name=${sys##*/}
    echo "usbdisk: $name sectors $(cat "$sys/size") ro $(cat "$sys/ro") vendor $(cat "$sys/device/vendor") model $(cat "$sys/device/model")"
    case $(cat "$sys/size") in
    8192) ro_dev=/dev/$name ;;
    32768) rw_dev=/dev/$name ;;
    esac
done
[ -n "$ro_dev" ] && [ -n "$rw_dev" ] || fail "no disk of 8192 and of 32768 sectors"
echo "usbdisk: ro sum $(sha256sum "$ro_dev" | cut -d' ' -f1)"
dd if=/dev/zero of="$ro_dev" bs=512 count=1 oflag=direct 2>/dev/null && fail "a write to the read-only disk worked"
dd if=/dev/urandom of=/tmp/data bs=1M count=3 2>/dev/null || fail "no random data"
echo "usbdisk: rw sum $(sha256sum /tmp/data | cut -d' ' -f1)"
dd if=/tmp/data of="$rw_dev" bs=512 seek=1001 oflag=direct conv=fsync 2>/tmp/dd.err || fail "write: $(cat /tmp/dd.err)"
echo 3 >/proc/sys/vm/drop_caches
dd if="$rw_dev" of=/tmp/back bs=512 skip=1001 count=6144 2>/tmp/dd.err || fail "read: $(cat /tmp/dd.err)"
echo "usbdisk: rw back $(sha256sum /tmp/back | cut -d' ' -f1)"
dmesg | grep -iE 'usb.*(error|fail|reset)|sd .*(error|fail)|I/O error' | sed 's/^/usbdisk: kernel: /'
dmesg | grep -iE 'usb-storage|scsi|sd ' | sed 's/^\[[ 0-9.]*\] //; s/^/dmesg: /'
exit 0
GUEST

linux_initramfs "$BURROW_TMP/initrd" "$BURROW_TMP/guest.sh" xhci_pci usb_storage sd_mod
linux_boot usbdisk --cpus 1 --memory 256 --initrd "$BURROW_TMP/initrd" --no-rng \
    --usb-disk "$ro,format=raw,readonly=on" --usb-disk "$rw" --append quiet
linux_expect_pass

burrow_expect_line "$LINUX_SERIAL" "usbdisk: ro sum $ro_sum"
linux_guest_lines "usbdisk: sd" | tr -s " " | grep -q "sectors 8192 ro 1 vendor BURROW model USB DISK" ||
    burrow_fail "the read-only disk is not a read-only BURROW USB DISK of 8192 sectors"
burrow_note "ok: the read-only USB disk reads as the host's image, sha256 $ro_sum"
written=$(linux_guest_lines "usbdisk: rw sum ")
[ -n "$written" ] || burrow_fail "the guest did not write the USB disk"
burrow_expect_line "$LINUX_SERIAL" "usbdisk: rw back $written"
! linux_guest_lines "usbdisk: kernel: " | grep -q . ||
    burrow_fail "the kernel logged USB or SCSI errors: $(linux_guest_lines "usbdisk: kernel: ")"
qemu-img check -q -f qcow2 "$rw" || burrow_fail "qemu-img check $rw found problems"
raw=$BURROW_TMP/disk.raw
qemu-img convert -f qcow2 -O raw "$rw" "$raw" || burrow_fail "qemu-img convert failed"
[ "$(tail -c +$((1001 * 512 + 1)) "$raw" | head -c $((3 << 20)) | sha256sum | cut -d' ' -f1)" = "$written" ] ||
    burrow_fail "the image does not hold what the guest wrote at sector 1001"
cmp -s -n $((1001 * 512)) "$raw" /dev/zero || burrow_fail "sectors before 1001 changed"
cmp -s <(tail -c +$((1001 * 512 + (3 << 20) + 1)) "$raw") <(head -c $(((16 << 20) - 1001 * 512 - (3 << 20))) /dev/zero) ||
    burrow_fail "sectors after the written range changed"
[ "$(sha256sum "$ro" | cut -d' ' -f1)" = "$ro_sum" ] || burrow_fail "the read-only image changed"
echo "PASS: usb-storage reads a read-only USB disk and writes a qcow2 one, byte for byte"
