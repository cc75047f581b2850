#!/bin/bash
# Bulk read throughput through USB pass-through: a real USB disk (dummy_hcd
# and a configfs mass-storage gadget, as tests/linux/test_usb_host.sh makes
# it, on an image of MIB MiB) read by the same Linux guest (Debian's
# kernel, xhci_pci, usb-storage, a busybox initramfs) under burrow-vm
# (--usb-host 0525:a4a5) and under QEMU (Debian's qemu-system-x86, -machine
# pc -accel kvm -cpu host -nodefaults, -device qemu-xhci -device
# usb-host,vendorid=0x0525,productid=0xa4a5), in one run on the same host,
# one VMM after the other, RUNS times each, alternating.
#
# The guest reads the whole disk PASSES times with dd (1 MiB blocks,
# O_DIRECT: every byte crosses the USB link each pass), timed by its own
# clock, after one pass to warm up.  Prints, side by side and as a ratio
# burrow-vm / QEMU, the median of every pass of every run in MB/s (10^6
# bytes), with the range.
#
# Usage: tests/bench/usb-host.sh [RUNS]      (default 3)
#   BURROW_BUILD_DIR     the build tree whose burrow-vm runs (default build/)
#   BURROW_BENCH_MIB     the disk's size in MiB (default 64)
#   BURROW_BENCH_PASSES  timed passes a run (default 3)
# The gadget changes the running kernel, so the benchmark always runs
# inside the nested KVM helper (tests/nested), QEMU included; the guest
# then runs on emulated SVM and the USB link is dummy_hcd's, so only the
# ratio means much.
set -u
here=$(cd "$(dirname "$0")" && pwd)
export BURROW_SOURCE_DIR=${BURROW_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
export BURROW_BUILD_DIR=${BURROW_BUILD_DIR:-$BURROW_SOURCE_DIR/build}
runs=${1:-3}
export BURROW_BENCH_MIB=${BURROW_BENCH_MIB:-64}
export BURROW_BENCH_PASSES=${BURROW_BENCH_PASSES:-3}
case $runs$BURROW_BENCH_MIB$BURROW_BENCH_PASSES in
*[!0-9]*) echo "usb-host: RUNS, BURROW_BENCH_MIB and BURROW_BENCH_PASSES are whole numbers"; exit 2 ;;
esac
[ -d "$BURROW_BUILD_DIR" ] || { echo "usb-host: no build tree at $BURROW_BUILD_DIR (set BURROW_BUILD_DIR)"; exit 1; }
BURROW_BUILD_DIR=$(cd "$BURROW_BUILD_DIR" && pwd)

. "$BURROW_SOURCE_DIR/tests/linux/lib.sh"
. "$BURROW_SOURCE_DIR/tests/linux/usb_gadget.sh"
USB_GADGET_TIMEOUT=$((600 + runs * 2 * 600))
usb_gadget_nested "$0" "$@"
linux_init
burrow_require_cmd qemu-system-x86_64 "install qemu-system-x86"
usb_gadget_modules

mib=$BURROW_BENCH_MIB passes=$BURROW_BENCH_PASSES
img=$BURROW_TMP/gadget.img
truncate -s "${mib}M" "$img" || burrow_fail "cannot make $img"
usb_gadget_make "$img" BENCH0001
usb_gadget_plug

cat >"$BURROW_TMP/guest.sh" <<GUEST
sectors=$((mib * 2048))
i=0
while :; do
    for s in /sys/block/sd*; do
        [ -e "\$s/size" ] && [ "\$(cat "\$s/size")" = \$sectors ] && d=\${s##*/}
    done
    [ -n "\${d:-}" ] && break
    i=\$((i + 1)); [ \$i -lt 3000 ] || { echo "usbbench: no disk of \$sectors sectors"; exit 1; }
    sleep 0.2
done
# centiseconds of uptime
now() { tr -d . </proc/uptime | cut -d' ' -f1; }
dd if=/dev/\$d of=/dev/null bs=1M iflag=direct 2>/dev/null || { echo "usbbench: read failed"; exit 1; }
for p in \$(seq $passes); do
    t0=\$(now)
    dd if=/dev/\$d of=/dev/null bs=1M iflag=direct 2>/dev/null || { echo "usbbench: read failed"; exit 1; }
    t1=\$(now)
    echo "usbbench: pass \$p bytes $((mib << 20)) cs \$((t1 - t0))"
done
GUEST
linux_initramfs "$BURROW_TMP/initrd" "$BURROW_TMP/guest.sh" xhci_pci usb_storage sd_mod
append="console=ttyS0 panic=-1 quiet"

python3 - "$runs" "$BURROW_TMP" "$BURROW_VM" "$LINUX_KERNEL" "$append" "$USB_GADGET_VID" "$USB_GADGET_PID" <<'PY'
import os, re, statistics, subprocess, sys, time

runs, tmp, burrow_vm, kernel, append, vid, pid = int(sys.argv[1]), *sys.argv[2:8]
initrd, serial = tmp + "/initrd", tmp + "/serial"
LINE = re.compile(r"usbbench: pass (\d+) bytes (\d+) cs (\d+)")
common = ["-kernel", kernel, "-initrd", initrd, "-append", append]
vmms = {
    "burrow-vm": [burrow_vm, "--memory", "256", "--cpus", "1", "--kernel", kernel, "--initrd", initrd,
                  "--append", append, "--no-rng", "--display", "none", "--serial", "file:" + serial,
                  "--usb-host", "%s:%s" % (vid, pid)],
    "qemu": ["qemu-system-x86_64", "-machine", "pc", "-accel", "kvm", "-cpu", "host", "-m", "256",
             "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none", "-vga", "none",
             *common, "-device", "qemu-xhci",
             "-device", "usb-host,vendorid=0x%s,productid=0x%s" % (vid, pid),
             "-serial", "file:" + serial],
}


def one(argv):
    """One boot: the MB/s of each timed pass, or raises RuntimeError."""
    if os.path.exists(serial):
        os.unlink(serial)
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=900)
    out = open(serial, errors="replace").read() if os.path.exists(serial) else ""
    got = [int(m.group(2)) / (int(m.group(3)) / 100.0) / 1e6 for m in LINE.finditer(out) if int(m.group(3)) > 0]
    if r.returncode != 0 or not got:
        tail = "\n".join((out + r.stdout.decode(errors="replace")).splitlines()[-15:])
        raise RuntimeError("status %d, %d passes:\n%s" % (r.returncode, len(got), tail))
    return got


results = {k: [] for k in vmms}
for i in range(runs):
    for name, argv in (list(vmms.items()) if i % 2 == 0 else list(reversed(list(vmms.items())))):
        t0 = time.monotonic()
        try:
            mbs = one(argv)
            results[name] += mbs
            print("run %d %-9s %s MB/s (%.0f s)" % (i + 1, name, " ".join("%.2f" % x for x in mbs),
                                                 time.monotonic() - t0), flush=True)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            print("run %d %-9s failed: %s" % (i + 1, name, e), flush=True)

print()
print("USB pass-through, bulk read (MB/s; median of all passes, [min-max])")
b, q = results["burrow-vm"], results["qemu"]
fmt = lambda v: "%.2f [%.2f-%.2f]" % (statistics.median(v), min(v), max(v)) if v else "-"
print("%-22s %-24s %-24s %s" % ("", "burrow-vm", "qemu", "ratio"))
ratio = "%.2f" % (statistics.median(b) / statistics.median(q)) if b and q else "-"
print("%-22s %-24s %-24s %s" % ("read, 1 MiB O_DIRECT", fmt(b), fmt(q), ratio))
sys.exit(0 if b and q else 1)
PY
