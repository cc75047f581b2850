#!/bin/bash
# Debian's kernel finds KVM and keeps time with kvm-clock: "Hypervisor
# detected: KVM" in its log, kvm-clock as its clocksource, the TSC's
# frequency known without calibrating it (no calibration failures), and a
# guest loop of clock_gettime(CLOCK_MONOTONIC) calls whose clock never goes
# backwards; the calls per second are printed (tests/bench/clock-gettime.sh
# sets them beside QEMU's).  Then a pause through the control socket: the
# guest's clock stands still while the VM is paused (its uptime, read once a
# second, does not jump), and no watchdog of the guest complains after the
# resume.
# needs: hwkvm
# timeout: 900
# A 2-vCPU boot, the clock loop and the pause; slow inside the nested helper.
BURROW_VM_TIMEOUT=${BURROW_VM_TIMEOUT:-400}
. "$(dirname "$0")/lib.sh"
linux_init
burrow_require_guest clockrate

PAUSE_S=30
# The kernel's messages are read from its buffer (the dmesg dump at the
# end); on the console they would cut the script's lines in two.
cat >"$BURROW_TMP/guest.sh" <<'GUEST'
dmesg -n 1
echo "clocksource: $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
/clockrate 1
# The guest's uptime once a second; the host pauses the VM in the middle.
for i in $(seq 60); do
    echo "tick: $(cut -d' ' -f1 /proc/uptime)"
    sleep 1
done
echo "ticks-done"
dmesg | sed 's/^/dmesg: /'
GUEST

linux_initramfs "$BURROW_TMP/initrd" "$BURROW_TMP/guest.sh" -- "$BURROW_GUESTS/clockrate=/clockrate"
linux_start kvmclock --cpus 2 --memory 256 --initrd "$BURROW_TMP/initrd" --display none --append "quiet"
linux_wait_serial "tick: "
linux_ctl pause >/dev/null || burrow_fail "pause failed"
! linux_guest_lines "ticks-done" | grep -q . ||
    burrow_fail "the guest's ticks were over before the pause began (the host was too slow)"
before=$(linux_guest_lines "tick: " | wc -l)
sleep "$PAUSE_S"
after=$(linux_guest_lines "tick: " | wc -l)
[ "$after" -eq "$before" ] || burrow_fail "the guest ticked while paused ($before, then $after ticks)"
linux_ctl resume >/dev/null || burrow_fail "resume failed"
linux_wait_exit
linux_expect_pass

linux_guest_lines "dmesg: " | grep -q "Hypervisor detected: KVM" ||
    burrow_fail "the guest did not find KVM (no \"Hypervisor detected: KVM\")"
burrow_note "ok: $(linux_guest_lines "dmesg: " | grep -m1 "Hypervisor detected")"
cs=$(linux_guest_lines "clocksource: ")
[ "$cs" = kvm-clock ] || burrow_fail "the guest's clocksource is \"$cs\", not kvm-clock"
burrow_note "ok: clocksource kvm-clock"
linux_guest_lines "dmesg: " | grep -q "tsc: Detected [0-9.]* MHz processor" ||
    burrow_fail "the guest did not learn the TSC's frequency"
burrow_note "ok: $(linux_guest_lines "dmesg: " | grep -m1 -o "tsc: Detected.*")"
bad=$(linux_guest_lines "dmesg: " |
    grep -E "tsc: (Fast TSC calibration failed|Unable to calibrate|HPET/PMTIMER calibration failed|Marking TSC unstable due to could not calculate)|APIC calibration not consistent")
[ -z "$bad" ] || burrow_fail "TSC or APIC timer calibration failed in the guest: $bad"
burrow_note "ok: no calibration failures"

rate=$(linux_guest_lines "clockrate: ")
case $rate in
*" calls/s, 0 backwards") ;;
*) burrow_fail "clock_gettime loop: \"$rate\"" ;;
esac
echo "guest clock_gettime(CLOCK_MONOTONIC): ${rate%%,*}"

# The pause came between two of the guest's ticks, a second apart in its
# time: had its clock run on while paused, those two would be the whole
# pause apart.
gap=$(linux_guest_lines "tick: " | awk 'NR > 1 && $1 - prev > max { max = $1 - prev } { prev = $1 }
                                      END { printf "%.1f", max }')
burrow_note "largest step of the guest's uptime between ticks a second apart, across a $PAUSE_S s pause: $gap s"
awk -v g="$gap" -v p="$PAUSE_S" 'BEGIN { exit !(g > 0 && g < p / 3) }' ||
    burrow_fail "the guest's clock stepped $gap s across a $PAUSE_S s pause"
lock=$(linux_guest_lines "dmesg: " | grep -E "soft lockup|rcu.*(stall|self-detected)|hung_task|blocked for more than")
[ -z "$lock" ] || burrow_fail "the guest's watchdogs fired after the pause: $lock"
burrow_note "ok: the guest's clock stood still while paused; no watchdog fired"
echo "PASS: KVM found, kvm-clock in use, TSC frequency known, clock steady across a pause"
