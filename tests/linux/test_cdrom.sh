#!/bin/bash
# The SATA CD/DVD drive under Linux's ahci, sr_mod and isofs: the guest
# mounts /dev/sr0 and reads the files of an ISO 9660 image; 'eject' on the
# control socket is seen by the kernel's media polling (GET EVENT STATUS
# NOTIFICATION, a DISK_MEDIA_CHANGE uevent) and the drive then has no
# medium; after 'change-media' with a second image the kernel sees the new
# medium and the guest reads the second image's files.  While mounted, the
# guest's kernel keeps the tray locked: a plain 'eject' is refused and a
# forced one makes the guest's reads fail.  Host and guest wait
# on each other's lines and events, never on time.
# needs: hwkvm
# timeout: 900
. "$(dirname "$0")/lib.sh"
linux_init
BURROW_VM_TIMEOUT=600

cat >"$BURROW_TMP/guest.sh" <<'GUEST'
fail() { echo "cd: FAIL $*"; exit 1; }
# Media events of sr0, as uevents, numbered in /tmp/sr0.events.
cat >/bin/media-event <<'EOF'
#!/bin/sh
[ "$DEVNAME" = sr0 ] || exit 0
[ -n "$DISK_MEDIA_CHANGE$DISK_EJECT_REQUEST" ] || exit 0
echo "media-change=${DISK_MEDIA_CHANGE:-0} eject-request=${DISK_EJECT_REQUEST:-0}" >>/tmp/sr0.events
EOF
chmod +x /bin/media-event
: >/tmp/sr0.events
uevent /bin/media-event &
# wait_event N: until the Nth media event of sr0 has come (a hang bound of
# some minutes: the host acts as soon as it reads the line before).
wait_event() {
    local i=0
    # The kernel polls the drive (GET EVENT STATUS NOTIFICATION) only when
    # told, and only while waiting here: in the nested helper polls are dear.
    echo 250 >/sys/block/sr0/events_poll_msecs
    while [ "$(wc -l </tmp/sr0.events)" -lt "$1" ]; do
        [ $i -lt 1500 ] || fail "no media event $1 from the kernel"
        sleep 0.1
        i=$((i + 1))
    done
    echo 0 >/sys/block/sr0/events_poll_msecs
    echo "cd: event $1 $(sed -n "$1p" /tmp/sr0.events)"
}
# mount_disc TAG: reads the whole medium (its sum and size under TAG), then
# mounts /dev/sr0 on /mnt and lists its files' sums under TAG.
mount_disc() {
    dd if=/dev/sr0 of=/tmp/disc bs=64k 2>/tmp/dd.err || fail "reading /dev/sr0: $(cat /tmp/dd.err)"
    echo "cd: medium $1 $(md5sum /tmp/disc | cut -d' ' -f1) $(stat -c %s /tmp/disc) bytes"
    rm -f /tmp/disc
    mount -t iso9660 -o ro /dev/sr0 /mnt 2>/tmp/mount.err || fail "mount /dev/sr0: $(cat /tmp/mount.err)"
    (cd /mnt && find . -type f | sort | while read -r f; do echo "$1: $(md5sum "$f")"; done)
}

i=0
while [ ! -e /sys/block/sr0 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
[ -e /sys/block/sr0 ] || fail "no /dev/sr0"
echo "cd: sr0 $(cat /sys/block/sr0/device/vendor) $(cat /sys/block/sr0/device/model)"
mount_disc disc1
umount /mnt || fail "umount"
echo "cd: ready for eject"
wait_event 1
err=$(dd if=/dev/sr0 of=/dev/null bs=2048 count=1 2>&1) && fail "/dev/sr0 still reads after the eject"
echo "cd: read after eject: $(echo "$err" | head -n 1)"
echo "cd: ready for media"
wait_event 2
# Mounted, the disc is locked in (PREVENT ALLOW MEDIUM REMOVAL): only a
# forced eject takes it out, and reads then fail.
mount_disc disc2
echo "cd: disc2 mounted"
wait_event 3
echo 3 >/proc/sys/vm/drop_caches
err=$(cat /mnt/random2.bin 2>&1 >/dev/null) && fail "a file still reads after the forced eject"
echo "cd: read after forced eject: $err"
umount /mnt || fail "umount after the forced eject"
err=$(dd if=/dev/sr0 of=/dev/null bs=2048 count=1 2>&1) && fail "/dev/sr0 still reads after the forced eject"
echo "cd: open after forced eject: $(echo "$err" | head -n 1)"
GUEST

mkdir -p "$BURROW_TMP/disc1/docs/deep" "$BURROW_TMP/disc2"
echo "the first disc" >"$BURROW_TMP/disc1/README.TXT"
head -c 1048576 /dev/urandom >"$BURROW_TMP/disc1/docs/random.bin"
head -c 3000 /dev/urandom >"$BURROW_TMP/disc1/docs/deep/small.bin"
echo "the second disc" >"$BURROW_TMP/disc2/SECOND.TXT"
head -c 2098000 /dev/urandom >"$BURROW_TMP/disc2/random2.bin"
linux_mkiso "$BURROW_TMP/disc1.iso" DISC1 "$BURROW_TMP/disc1"
linux_mkiso "$BURROW_TMP/disc2.iso" DISC2 "$BURROW_TMP/disc2"
linux_initramfs "$BURROW_TMP/initrd" "$BURROW_TMP/guest.sh" ahci sr_mod isofs

linux_start cd --memory 512 --initrd "$BURROW_TMP/initrd" --no-rng \
    --cdrom "$BURROW_TMP/disc1.iso" --append quiet

# expect_files TAG DIR: the guest read the whole of TAG.iso, and listed
# DIR's files under TAG with their sums.
expect_files() {
    local want got
    burrow_expect_line "$LINUX_SERIAL" "cd: medium $1 $(md5sum <"$BURROW_TMP/$1.iso" | cut -d' ' -f1) $(stat -c %s "$BURROW_TMP/$1.iso") bytes"
    want=$(cd "$2" && find . -type f | sort | while read -r f; do md5sum "$f"; done)
    got=$(linux_guest_lines "$1: ")
    [ "$got" = "$want" ] || burrow_fail "$1: the guest read
$got
instead of
$want"
    burrow_note "ok: $1: the guest read the whole medium and $(wc -l <<<"$want") files with the right MD5 sums"
}

linux_wait_serial "cd: ready for eject"
expect_files disc1 "$BURROW_TMP/disc1"
out=$(linux_ctl eject '{"device":"cdrom"}') || burrow_fail "eject: $out"
linux_wait_serial "cd: ready for media"
burrow_expect_prefix "$LINUX_SERIAL" "cd: event 1 media-change=1"
burrow_expect_line "$LINUX_SERIAL" "cd: read after eject: dd: can't open '/dev/sr0': No medium found"
burrow_note "ok: after the eject the guest's kernel saw a media change and no medium"
out=$(linux_ctl change-media "{\"device\":\"cdrom\",\"path\":\"$BURROW_TMP/disc2.iso\"}") ||
    burrow_fail "change-media: $out"
linux_wait_serial "cd: disc2 mounted"
burrow_expect_prefix "$LINUX_SERIAL" "cd: event 2 media-change=1"
expect_files disc2 "$BURROW_TMP/disc2"
out=$(linux_ctl eject '{"device":"cdrom"}') && burrow_fail "eject of a disc the guest has mounted succeeded"
grep -q "locked" <<<"$out" || burrow_fail "eject of a mounted disc: $out"
burrow_note "ok: the guest's kernel locked the mounted disc in: $out"
out=$(linux_ctl eject '{"device":"cdrom","force":true}') || burrow_fail "forced eject: $out"
linux_wait_exit
linux_expect_pass
burrow_expect_prefix "$LINUX_SERIAL" "cd: event 3 media-change=1"
burrow_expect_prefix "$LINUX_SERIAL" "cd: read after forced eject: "
burrow_expect_line "$LINUX_SERIAL" "cd: open after forced eject: dd: can't open '/dev/sr0': No medium found"
burrow_note "ok: after the forced eject the guest's reads fail and the drive has no medium"
echo "PASS: files read from two discs, eject, change-media and a forced eject seen by Linux's sr driver"
