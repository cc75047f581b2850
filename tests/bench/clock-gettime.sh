#!/bin/bash
# How fast a Linux guest reads its clock: the same guest (Debian's kernel, a
# busybox initramfs with the static clockrate program of tests/guests/linux)
# under burrow-vm and under QEMU (Debian's qemu-system-x86, -machine pc
# -accel kvm -cpu host), in one run on the same host.  The guest prints its
# clocksource and runs a loop of clock_gettime(CLOCK_MONOTONIC) calls for
# about a second, RUNS times; printed: each side's clocksource, the median
# calls per second, and the ratio burrow-vm / QEMU.
#
# Usage: tests/bench/clock-gettime.sh [RUNS]     (BURROW_BUILD_DIR: the build)
# Where this host's KVM cannot run Linux (none, or PVM-backed), it runs
# itself inside the nested KVM helper (tests/nested), QEMU included.
set -u
runs=${1:-5}
BURROW_SOURCE_DIR=${BURROW_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
# with-kvm runs it natively where KVM can run Linux, else in the helper.
if [ -z "${BURROW_BENCH_PLACED:-}" ]; then
    export BURROW_BENCH_PLACED=1 BURROW_SOURCE_DIR
    exec "$BURROW_SOURCE_DIR/tests/nested/with-kvm" --needs hwkvm --timeout 1800 -- bash "$0" "$@"
fi
BURROW_VM_TIMEOUT=${BURROW_VM_TIMEOUT:-600}
. "$BURROW_SOURCE_DIR/tests/linux/lib.sh"
linux_init
burrow_require_guest clockrate
burrow_require_cmd qemu-system-x86_64 "install qemu-system-x86"

cat >"$BURROW_TMP/guest.sh" <<GUEST
echo "clocksource: \$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
for i in \$(seq $runs); do /clockrate 1; done
GUEST
linux_initramfs "$BURROW_TMP/initrd" "$BURROW_TMP/guest.sh" -- "$BURROW_GUESTS/clockrate=/clockrate"
append="console=ttyS0 panic=-1 quiet"

# boot NAME COMMAND...: runs one VMM to the guest's power-off, its serial
# console in $BURROW_TMP/NAME.serial.
boot() {
    local name=$1
    shift
    : >"$BURROW_TMP/$name.serial"
    timeout -k 10 "$BURROW_VM_TIMEOUT" "$@" </dev/null >"$BURROW_TMP/$name.out" 2>&1 ||
        echo "$name: exit status $? ($(tail -n 3 "$BURROW_TMP/$name.out" | tr '\n' ' '))"
}
boot burrow "$BURROW_VM" --memory 256 --cpus 2 --display none \
    --kernel "$LINUX_KERNEL" --initrd "$BURROW_TMP/initrd" --append "$append" \
    --serial "file:$BURROW_TMP/burrow.serial"
boot qemu qemu-system-x86_64 -machine pc -accel kvm -cpu host -m 256 -smp 2 \
    -nodefaults -no-user-config -display none -vga none \
    -kernel "$LINUX_KERNEL" -initrd "$BURROW_TMP/initrd" -append "$append" \
    -serial "file:$BURROW_TMP/qemu.serial"

python3 - "$BURROW_TMP" "$LINUX_KERNEL" "$runs" <<'PY'
import os, re, statistics, sys

tmp, kernel, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
res = {}
for name in ("burrow", "qemu"):
    text = open(os.path.join(tmp, name + ".serial"), errors="replace").read()
    cs = re.search(r"^clocksource: (\S+)", text, re.M)
    rates = [float(r) for r in re.findall(r"^clockrate: ([0-9.]+) calls/s", text, re.M)]
    res[name] = (cs.group(1) if cs else "?", rates)

print("clock_gettime(CLOCK_MONOTONIC) in a Linux guest (Debian kernel %s), 2 vCPUs;"
      " median of %d one-second loops" % (os.path.basename(kernel), runs))
print("  %-12s %-12s %16s" % ("", "clocksource", "calls/s"))
for name, label in (("burrow", "burrow-vm"), ("qemu", "qemu")):
    cs, rates = res[name]
    print("  %-12s %-12s %16s" % (label, cs, "%.0f" % statistics.median(rates) if rates else "n/a"))
b, q = res["burrow"][1], res["qemu"][1]
if b and q:
    print("  ratio burrow-vm / qemu: %.2f" % (statistics.median(b) / statistics.median(q)))
PY
