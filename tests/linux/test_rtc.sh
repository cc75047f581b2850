#!/bin/bash
# The guest's real-time clock through Debian's rtc_cmos driver and the
# MC146818:
#   - it reads within 2 s of the host's clock.  The guest waits for the
#     RTC's seconds to turn over and prints the new value at once; the host
#     compares it with the time its serial line was written (the serial
#     file's modification time: the guest prints nothing more until the
#     host has read it and pressed Enter).  burrow-vm runs with a time zone
#     5:30 east of UTC, which must not leak into the RTC: its time is UTC,
#     as Linux expects;
#   - hwclock -w sets it (the driver writes the registers with SET held)
#     and it reads back the time set;
#   - an alarm (wakealarm, 2 s ahead) raises the RTC's interrupt.
# needs: hwkvm
# timeout: 900
BURROW_VM_TIMEOUT=${BURROW_VM_TIMEOUT:-600}
. "$(dirname "$0")/lib.sh"
linux_init

cat >"$BURROW_TMP/guest.sh" <<'GUEST'
rtc=/sys/class/rtc/rtc0
echo "rtc: $(cat $rtc/name) hctosys $(cat $rtc/hctosys)"
echo "rtc: hwclock $(hwclock -r -u -f /dev/rtc0)"
exec 3</dev/tty1
read -r t0 <$rtc/since_epoch
t=$t0
n=0
while [ "$t" = "$t0" ]; do
    n=$((n + 1))
    [ $n -lt 100000 ] || { echo "rtc: the clock does not tick"; exit 1; }
    read -r t <$rtc/since_epoch
done
echo "rtc: since_epoch $t"
# Nothing more on the console until the host has taken the time of the
# line above and pressed Enter.
read -r _ <&3

# Set: 2030-01-02 03:04:05 UTC is 1893553445.
date -u -s "2030-01-02 03:04:05" >/dev/null
hwclock -w -u -f /dev/rtc0
read -r t <$rtc/since_epoch
echo "rtc: set 1893553445 read $t"

# The alarm: 2 s ahead; its interrupt is counted on the "rtc0" line of
# /proc/interrupts.
irqs() { awk '/rtc0/ { n = 0; for (i = 2; $i ~ /^[0-9]+$/; i++) n += $i; print n }' /proc/interrupts; }
before=$(irqs)
echo +2 >$rtc/wakealarm
n=0
until [ "$(irqs)" -gt "$before" ]; do
    n=$((n + 1))
    [ $n -lt 300 ] || { echo "rtc: no alarm interrupt in 30 s"; exit 1; }
    sleep 0.1
done
echo "rtc: alarm interrupt, rtc0 interrupts $before -> $(irqs)"
GUEST

linux_initramfs "$BURROW_TMP/initrd" "$BURROW_TMP/guest.sh"
TZ=XST-5:30 linux_start rtc --memory 256 --initrd "$BURROW_TMP/initrd" --append quiet
linux_wait_serial "rtc: since_epoch "
# The line's time: the serial file's last change (nothing follows it yet).
host=$(stat -c %.3Y "$LINUX_SERIAL")
guest=$(linux_guest_lines "rtc: since_epoch ")
reply=$(linux_ctl send-keys '{"keys":["ret"]}') || burrow_fail "send-keys failed: $reply"
burrow_note "$(linux_guest_lines "rtc: " | grep -v since_epoch)"
diff=$(awk -v h="$host" -v g="$guest" 'BEGIN { printf "%.3f", h - g }')
burrow_note "guest RTC $guest (a second just begun), host time of that line $host: difference $diff s"
awk -v d="$diff" 'BEGIN { exit !(d >= -2 && d <= 2) }' ||
    burrow_fail "the guest's RTC is $diff s off the host's clock (more than 2 s)"

linux_wait_exit
linux_expect_pass
burrow_note "$(linux_guest_lines "rtc: " | grep -E "^(set|alarm)")"
read -r set _ got < <(linux_guest_lines "rtc: set ")
[ -n "${got:-}" ] && [ $((got - set)) -ge 0 ] && [ $((got - set)) -le 2 ] ||
    burrow_fail "hwclock -w set the RTC to $set, it reads ${got:-nothing}"
burrow_expect_prefix "$LINUX_SERIAL" "rtc: alarm interrupt"
echo "PASS: the guest's RTC reads the host's UTC time to within 2 s ($diff s), takes a time set and raises its alarm"
