#!/bin/bash
# USB pass-through of a real device under Debian's kernel.  Inside the
# nested KVM helper (whose kernel is Debian's), dummy_hcd and a configfs
# mass-storage gadget make a high-speed USB disk on an ext2 image holding a
# known file; the helper's usb-storage binds it.  A Linux guest runs, with
# a --usb-filter for another serial number than the disk's:
#   1. usb-attach on the control socket while the guest runs: the
#      helper's usb-storage lets go of the disk, it is on port 3, the
#      guest's usb-storage binds it and reads the file with the host's
#      SHA-256; the guest resets the device (USBDEVFS_RESET: a port reset,
#      which burrow-vm passes on to the real device) and reads it again;
#   2. usb-detach while the guest reads the disk over and over: the guest
#      sees it unplugged and runs on, the helper's usb-storage has it back;
#   3. usb-attach again, and the gadget leaves the host (unbound: a pulled
#      cable) during a read: the guest sees it unplugged and runs on,
#      burrow-vm says the device is gone, the VM runs and holds nothing;
#   4. plugged in again with the filter's serial number: the filter takes
#      it from the hot-plug message, and the guest reads the file again.
# The guest then powers off, and the helper's usb-storage has the disk back.
# needs: hwkvm
# timeout: 1500
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/usb_gadget.sh"
usb_gadget_nested "$0"
linux_init
BURROW_VM_TIMEOUT=1200
BURROW_WAIT_LIMIT=600
burrow_require_cmd mke2fs "install e2fsprogs"
burrow_require_cmd gcc "install build-essential"
usb_gadget_modules

# The guest's tool to reset a USB device, as usbreset(1) would.
cat >"$BURROW_TMP/usbreset.c" <<'C'
#include <fcntl.h>
#include <linux/usbdevice_fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
int main(int argc, char **argv)
{
    int fd = argc == 2 ? open(argv[1], O_WRONLY) : -1;
    if (fd < 0 || ioctl(fd, USBDEVFS_RESET, 0) < 0) {
        perror(argc == 2 ? argv[1] : "usage: usbreset /dev/bus/usb/BBB/DDD");
        return 1;
    }
    return 0;
}
C
gcc -static -O2 -o "$BURROW_TMP/usbreset" "$BURROW_TMP/usbreset.c" 2>"$BURROW_TMP/gcc.err" ||
    burrow_fail "cannot build the guest's usbreset: $(cat "$BURROW_TMP/gcc.err")"

# The disk: an ext2 image (no journal, no checksums) with 2 MiB of random
# data in a file, made without mounting anything.
mkdir -p "$BURROW_TMP/fs"
head -c $((2 << 20)) /dev/urandom >"$BURROW_TMP/fs/data.bin" || burrow_fail "no random data"
sum=$(sha256sum "$BURROW_TMP/fs/data.bin" | cut -d' ' -f1)
img=$BURROW_TMP/gadget.img
mke2fs -q -F -t ext2 -L burrowusb -d "$BURROW_TMP/fs" "$img" 16M >"$BURROW_TMP/mke2fs.log" 2>&1 ||
    burrow_fail "mke2fs: $(cat "$BURROW_TMP/mke2fs.log")"
usb_gadget_make "$img" BURROW0001
usb_gadget_plug
dev=$USB_GADGET_NAME
burrow_note "the gadget is $dev on the host"
have_driver() {
    [ "$(usb_gadget_driver)" = "$1" ]
}
burrow_until "usb-storage of the host on $dev" have_driver usb-storage
# Resets of the gadget by this (the helper's) kernel, as its log counts them.
host_resets() {
    dmesg | grep -c "reset high-speed USB device number .* using dummy_hcd"
}
resets_before=$(host_resets)

cat >"$BURROW_TMP/guest.sh" <<'GUEST'
fail() { echo "usbhost: FAIL $*"; dmesg | grep -iE 'usb|scsi|sd |xhci' | tail -n 40 | sed 's/^/dmesg: /'; exit 1; }
# The pass-through disk: 32768 sectors (16 MiB); "" while there is none.
disk() {
    for s in /sys/block/sd*; do
        [ -e "$s/size" ] && [ "$(cat "$s/size")" = 32768 ] && { echo "${s##*/}"; return; }
    done
}
# waitfor WHAT COMMAND...: polls COMMAND every 0.2 s for 10 minutes.
waitfor() {
    what=$1; shift; i=0
    until "$@"; do
        i=$((i + 1)); [ $i -lt 3000 ] || fail "no $what after 600 s"; sleep 0.2
    done
}
present() { [ -n "$(disk)" ]; }
absent() { [ -z "$(disk)" ]; }
checksum() {
    d=$(disk)
    echo 3 >/proc/sys/vm/drop_caches
    mount -t ext2 -o ro "/dev/$d" /mnt || fail "cannot mount /dev/$d"
    echo "usbhost: $1 $(sha256sum /mnt/data.bin | cut -d' ' -f1)"
    umount /mnt
}
# The pass-through device's node in /dev/bus/usb.
node() {
    for u in /sys/bus/usb/devices/*; do
        [ "$(cat "$u/idVendor" 2>/dev/null)" = 0525 ] &&
            printf '/dev/bus/usb/%03d/%03d\n' "$(cat "$u/busnum")" "$(cat "$u/devnum")"
    done
}
# Reads the whole disk over and over, past the page cache, until it fails
# (the device went away).
reader() {
    n=0
    while dd if="/dev/$1" of=/dev/null bs=64k iflag=direct 2>/dev/null; do n=$((n + 1)); done
    echo "usbhost: reader of $1 stopped after $n passes"
}
echo "usbhost: waiting"
waitfor "pass-through disk" present
d=$(disk)
echo "usbhost: disk $d vendor $(cat /sys/block/$d/device/vendor) model $(cat /sys/block/$d/device/model)"
checksum sum1
n=$(node)
[ -n "$n" ] || fail "no node of the device in /dev/bus/usb"
/bin/usbreset "$n" || fail "USBDEVFS_RESET on $n failed"
echo "usbhost: reset $n"
waitfor "pass-through disk after the reset" present
checksum sum1r
for round in 1 2; do
    reader "$(disk)" &
    echo "usbhost: reading $round"
    waitfor "unplug in round $round" absent
    wait
    echo "usbhost: alive $round $(cut -d' ' -f1 /proc/uptime)"
    waitfor "pass-through disk again" present
    echo "usbhost: back as $(disk)"
done
checksum sum3
dmesg | grep -E 'BUG:|Oops|WARNING:' | sed 's/^/usbhost: kernel: /'
dmesg | grep -iE 'usb|xhci|sd ' | sed 's/^\[[ 0-9.]*\] //; s/^/dmesg: /'
exit 0
GUEST

linux_initramfs "$BURROW_TMP/initrd" "$BURROW_TMP/guest.sh" xhci_pci usb_storage sd_mod ext4 \
    -- "$BURROW_TMP/usbreset=/bin/usbreset"
linux_start usbhost --cpus 1 --memory 256 --initrd "$BURROW_TMP/initrd" --no-rng --append quiet \
    --usb-filter "vid=$USB_GADGET_VID,pid=$USB_GADGET_PID,serial=BURROW0002"
linux_watch_events "$BURROW_TMP/events"
linux_wait_serial "usbhost: waiting"

# ctl COMMAND [JSON]: a control command that may wait for the device.
ctl() {
    python3 "$BURROW_SOURCE_DIR/tests/tools/burrow-control.py" --timeout "$BURROW_WAIT_LIMIT" "$LINUX_SOCK" "$@"
}
vm_runs() {
    ctl status | grep -q '"state":"running"' || burrow_fail "the VM is not running"
}

# 1: usb-attach while the guest runs.
reply=$(ctl usb-attach "{\"device\":\"$dev\"}") || burrow_fail "usb-attach $dev: $reply"
burrow_note "usb-attach: $reply"
echo "$reply" | grep -q '"port":3' ||
    burrow_fail "the disk is not on port 3, the first USB 2 port after the tablet and keyboard"
case $(usb_gadget_driver) in
"" | usbfs) ;;
*) burrow_fail "the host's $(usb_gadget_driver) still has the disk" ;;
esac
linux_wait_serial "usbhost: sum1 "
burrow_expect_line "$LINUX_SERIAL" "usbhost: sum1 $sum"
burrow_note "ok: the guest reads the file through pass-through, sha256 $sum"
linux_wait_serial "usbhost: sum1r "
burrow_expect_line "$LINUX_SERIAL" "usbhost: sum1r $sum"
[ "$(host_resets)" -gt "$resets_before" ] ||
    burrow_fail "the guest's reset of the device did not reach the real device"
burrow_note "ok: the guest's reset of the device reset the real one, and it reads the same after it"
ctl usb-list | grep -q "\"device\":\"$dev\"[^}]*\"attached\":true" || burrow_fail "usb-list does not show $dev attached"

# 2: usb-detach during a read.
linux_wait_serial "usbhost: reading 1"
reply=$(ctl usb-detach "{\"device\":\"$dev\"}") || burrow_fail "usb-detach $dev: $reply"
linux_wait_serial "usbhost: alive 1"
vm_runs
burrow_until "usb-storage of the host on $dev again" have_driver usb-storage
linux_expect_event "$BURROW_TMP/events" usb-detached '"reason":"request"'
burrow_note "ok: usb-detach during a read; the guest runs on, the host's driver has the disk back"

# 3: attached again, then the gadget leaves the host during a read.
reply=$(ctl usb-attach "{\"device\":\"$dev\"}") || burrow_fail "usb-attach $dev again: $reply"
linux_wait_serial "usbhost: reading 2"
usb_gadget_unplug
linux_wait_serial "usbhost: alive 2"
unplugged() {
    grep -F '"event":"usb-detached"' "$BURROW_TMP/events" | grep -qF '"reason":"unplugged"'
}
burrow_until "usb-detached event for the unplug" unplugged
vm_runs
! ctl usb-list | grep -q '"attached":true' || burrow_fail "usb-list still shows a device attached"
burrow_note "ok: the device left the host during a read; the guest and the VM run on"

# 4: plugged in with the filter's serial number.
usb_gadget_serial BURROW0002
usb_gadget_plug
linux_wait_serial "usbhost: sum3 "
burrow_expect_line "$LINUX_SERIAL" "usbhost: sum3 $sum"
linux_expect_event "$BURROW_TMP/events" usb-attached '"origin":"filter"'
burrow_note "ok: the filter took the disk when it was plugged in"

linux_wait_exit
linux_expect_pass
burrow_expect_text "$LINUX_SERIAL" "reset high-speed USB device number"
# What the nested helper's emulated CPU makes every kernel say is allowed
# (tests/linux/kernel-log-allowlist.txt says why).
complaints=$(linux_guest_lines "usbhost: kernel: " |
    grep -vE -f <(grep -vE '^(#|$)' "$BURROW_SOURCE_DIR/tests/linux/kernel-log-allowlist.txt"))
[ -z "$complaints" ] || burrow_fail "the guest's kernel complained: $complaints"
burrow_until "usb-storage of the host on the disk after the VM ended" have_driver usb-storage
burrow_expect_no_text "$BURROW_TMP/usbhost.err" "error:"
echo "PASS: a real USB disk passed through: read by the guest; detached and unplugged during reads with the guest and VM running on; taken by a filter when plugged in"
