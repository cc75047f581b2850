#!/bin/bash
# The guest's real-time clock, as Debian's rtc_cmos driver reads it from the
# MC146818, is within 2 s of the host's clock.  The guest waits for the
# RTC's seconds to turn over and prints the new value at once; the host
# compares it with the time its serial line was written (the serial file's
# modification time, the last write: the guest prints nothing after it).
# burrow-vm runs with a time zone 5:30 east of UTC, which must not leak
# into the RTC: the guest's clock is UTC, as Linux expects.
# needs: hwkvm
# timeout: 900
BURROW_VM_TIMEOUT=${BURROW_VM_TIMEOUT:-600}
. "$(dirname "$0")/lib.sh"
linux_init

cat >"$BURROW_TMP/guest.sh" <<'GUEST'
rtc=/sys/class/rtc/rtc0
echo "rtc: $(cat $rtc/name) hctosys $(cat $rtc/hctosys)"
echo "rtc: hwclock $(hwclock -r -u -f /dev/rtc0)"
read -r t0 <$rtc/since_epoch
t=$t0
n=0
while [ "$t" = "$t0" ]; do
    n=$((n + 1))
    [ $n -lt 100000 ] || { echo "rtc: the clock does not tick"; exit 1; }
    read -r t <$rtc/since_epoch
done
echo "rtc: since_epoch $t"
# Nothing more on the console: the host reads the time of the line above
# from the serial file's modification time.
exec sleep 100000
GUEST

linux_initramfs "$BURROW_TMP/initrd" "$BURROW_TMP/guest.sh"
TZ=XST-5:30 linux_start rtc --memory 256 --initrd "$BURROW_TMP/initrd" --append quiet
linux_wait_serial "rtc: since_epoch "
# The line's time: the serial file's last change (nothing follows it).
host=$(stat -c %.3Y "$LINUX_SERIAL")
guest=$(linux_guest_lines "rtc: since_epoch ")
burrow_note "$(linux_guest_lines "rtc: " | grep -v since_epoch)"
diff=$(awk -v h="$host" -v g="$guest" 'BEGIN { printf "%.3f", h - g }')
burrow_note "guest RTC $guest (a second just begun), host time of that line $host: difference $diff s"
awk -v d="$diff" 'BEGIN { exit !(d >= -2 && d <= 2) }' ||
    burrow_fail "the guest's RTC is $diff s off the host's clock (more than 2 s)"
linux_ctl quit >/dev/null || burrow_fail "quit failed"
linux_wait_exit
burrow_expect_status 0 "quit"
echo "PASS: the guest's RTC reads the host's UTC time to within 2 s ($diff s)"
