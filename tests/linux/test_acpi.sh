#!/bin/bash
# Power and reset through Debian's kernel:
#   - "reboot -f" in the guest resets the machine (the kernel's own reboot
#     path, through the FADT's reset register or the keyboard controller)
#     and the same kernel boots again: the guest counts its boots in the
#     first byte of a virtio disk, reboots only on the first, and burrow-vm
#     reports the reset as an event;
#   - the control socket's powerdown (the ACPI power button, as "burrow
#     stop" presses it) reaches the button driver as KEY_POWER on its evdev
#     node, busybox acpid runs its action, "poweroff -f", and burrow-vm
#     ends with status 0 after the guest's S5.
# needs: hwkvm
# timeout: 900
BURROW_VM_TIMEOUT=${BURROW_VM_TIMEOUT:-600}
. "$(dirname "$0")/lib.sh"
linux_init

cat >"$BURROW_TMP/guest.sh" <<'GUEST'
boot=$(dd if=/dev/vda bs=1 count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
echo "acpi: boot ${boot:-?}"
if [ "$boot" = 0 ]; then
    printf '\001' | dd of=/dev/vda bs=1 count=1 conv=notrunc 2>/dev/null
    sync
    echo "acpi: rebooting"
    reboot -f
    exit 1
fi
# busybox acpid: KEY_POWER pressed on any /dev/input/event* is the event
# "button/power PWRF 00000080", whose action is /etc/acpi/PWRF/00000080.
echo "EV_KEY 1 KEY_POWER 116 1 button/power PWRF 00000080" >/etc/acpi.map
echo "PWRF PWRF/00000080" >/etc/acpid.conf
mkdir -p /etc/acpi/PWRF
cat >/etc/acpi/PWRF/00000080 <<'EOF'
#!/bin/sh
echo "acpi: power button pressed, powering off" >/dev/console
poweroff -f
EOF
chmod 755 /etc/acpi/PWRF/00000080
grep '^N: Name=' /proc/bus/input/devices | sed 's/^N: Name=/acpi: input device /'
acpid -l /tmp/acpid.log -p /tmp/acpid.pid
# acpid writes its pid file once it has every event device open.
n=0
until [ -s /tmp/acpid.pid ]; do
    n=$((n + 1))
    [ $n -lt 600 ] || { echo "acpi: acpid did not start"; cat /tmp/acpid.log; exit 1; }
    sleep 0.1
done
touch /keep-running
echo "acpi: ready"
GUEST

# The boot counter: a zeroed disk.
truncate -s 1M "$BURROW_TMP/counter.img"
linux_initramfs "$BURROW_TMP/initrd" "$BURROW_TMP/guest.sh" virtio_pci virtio_blk evdev button
linux_start acpi --memory 256 --initrd "$BURROW_TMP/initrd" --append quiet \
    --disk "$BURROW_TMP/counter.img,if=virtio,format=raw"
EVENTS=$BURROW_TMP/events
linux_watch_events "$EVENTS"

linux_wait_serial "acpi: ready"
burrow_expect_line "$LINUX_SERIAL" "acpi: boot 0"
burrow_expect_line "$LINUX_SERIAL" "acpi: rebooting"
burrow_expect_line "$LINUX_SERIAL" "acpi: boot 1"
inits=$(tr -d '\r' <"$LINUX_SERIAL" | grep -c "^burrow-guest: init ")
[ "$inits" -eq 2 ] || burrow_fail "the guest's init ran $inits times, expected 2 (before and after the reset)"
linux_expect_event "$EVENTS" reset
burrow_note "reboot -f: the guest's init ran twice, and burrow-vm reported: $(grep -F '"reset"' "$EVENTS")"
burrow_expect_line "$LINUX_SERIAL" "acpi: input device \"Power Button\""

reply=$(linux_ctl powerdown) || burrow_fail "powerdown failed: $reply"
linux_wait_exit
burrow_expect_line "$LINUX_SERIAL" "acpi: power button pressed, powering off"
burrow_expect_status 0 "the guest powers off through ACPI S5"
linux_expect_event "$EVENTS" powerdown-requested
linux_expect_event "$EVENTS" shutdown '"reason":"guest-poweroff"'
burrow_note "power button: $(grep -F '"shutdown"' "$EVENTS")"
count=$(od -An -tu1 -N1 "$BURROW_TMP/counter.img" | tr -d ' ')
[ "$count" = 1 ] || burrow_fail "the boot counter on the disk is $count, expected 1"
echo "PASS: reboot -f reset the machine and Linux booted again; the ACPI power button made acpid power the guest off"
