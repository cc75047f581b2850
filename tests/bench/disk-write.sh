#!/bin/bash
# Guest write throughput to a fresh qcow2 image, and how much the guest's
# other vCPU is held up meanwhile: the same Linux guest (Debian's kernel, a
# busybox initramfs with the static program disk-write-guest.c) under
# burrow-vm and under QEMU (Debian's qemu-system-x86, -machine pc -accel kvm
# -cpu host -nodefaults, the same devices: 2 vCPUs, 512 MiB, the test disk
# on virtio-blk, COM1 to a file), in one run on the same host.
#
# Every run gets a new image from "qemu-img create -f qcow2 FILE 1G" (64 KiB
# clusters, no preallocation), so every write the guest makes allocates
# clusters.  In the guest, with O_DIRECT on /dev/vda (one request to the
# disk per block), each pass into a part of the disk not written before,
# timed by the guest's CLOCK_MONOTONIC, each ending with a flush:
#   1. MIB MiB in 1 MiB blocks, the other vCPU idle;
#   2. SMALL_MIB MiB in 64 KiB blocks (one cluster each), the other idle;
#   3. MIB MiB in 1 MiB blocks while CPU 1 spins on clock_gettime
#      (kvm-clock: no exit from the guest) and records the longest gap
#      between two reads;
#   4. the same while CPU 1 also reads a byte of the ACPI PM timer through
#      /dev/port between two clock reads: a port access by the guest's
#      kernel that the VMM answers (under burrow-vm's device lock, under
#      QEMU's big lock), as when a guest touches any device.  (A user-space
#      port read after ioperm would save the system call, but inside the
#      nested helper, on SVM emulated by QEMU's TCG, it faults with #GP in
#      QEMU's guest, though not in burrow-vm's.  Switching the guest's
#      clocksource to acpi_pm instead would touch both vCPUs, and with it
#      CLOCK_MONOTONIC was seen to go back after a long stall.)
# Before passes 3 and 4, CPU 1 does the same for 2 s with the disk idle and
# CPU 0 asleep: the figures to compare with.  The written data is never
# zeroes, so no layer can skip it.  QEMU's
# virtio-blk is given one queue, as burrow-vm's has (QEMU's default is one
# per vCPU).
#
# Cache mode: burrow-vm opens images without O_DIRECT, so guest writes go
# through the host's page cache, and a guest flush becomes fdatasync (its
# qcow2 driver writes its cached L2 tables and L1 entries back first).
# QEMU's cache=writeback (its default) does the same: no O_DIRECT, a guest
# flush is an fdatasync of the image; cache=none would bypass the page
# cache (and cannot open an image on a tmpfs, where the nested helper keeps
# it).  QEMU keeps its default I/O engine (a thread pool); burrow-vm uses
# io_uring.
#
# Prints, side by side and as a ratio burrow-vm / QEMU, medians of RUNS
# runs, each with the range over the runs: the throughput of each pass
# (writes through the final flush), the flush after pass 1, the longest
# stall of CPU 1 in passes 3 and 4 and with the disk idle, and the PM timer
# reads per second that CPU 1 managed in pass 4 and idle.  A run
# that fails says why and is left out; at the time limit the run under way
# is stopped and no other starts.  A qemu-img check of each image that is
# not clean, and what burrow-vm and QEMU print on stderr, are shown.
#
# Usage: tests/bench/disk-write.sh [RUNS]      (default 3)
#   BURROW_BUILD_DIR     the build tree whose burrow-vm runs (default build/)
#   BURROW_BENCH_MIB     MiB written by passes 1, 3 and 4 (default 128)
#   BURROW_BENCH_SMALL_MIB  MiB written by pass 2 (default 32)
#   BURROW_BENCH_LIMIT   seconds for the whole benchmark (default 3000)
# Where this host's KVM cannot run Linux (none, or PVM-backed), it runs
# itself inside the nested KVM helper (tests/nested), QEMU included; the
# guest then runs on emulated SVM, so only the ratios mean much.
set -u
here=$(cd "$(dirname "$0")" && pwd)
export BURROW_SOURCE_DIR=${BURROW_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
export BURROW_BUILD_DIR=${BURROW_BUILD_DIR:-$BURROW_SOURCE_DIR/build}
runs=${1:-3}
export BURROW_BENCH_MIB=${BURROW_BENCH_MIB:-128}
export BURROW_BENCH_SMALL_MIB=${BURROW_BENCH_SMALL_MIB:-32}
limit=${BURROW_BENCH_LIMIT:-3000}
case $runs$BURROW_BENCH_MIB$BURROW_BENCH_SMALL_MIB$limit in
*[!0-9]*) echo "disk-write: RUNS and the BURROW_BENCH_* sizes and limit are whole numbers"; exit 2 ;;
esac
[ $((3 * BURROW_BENCH_MIB + BURROW_BENCH_SMALL_MIB)) -le 1024 ] ||
    { echo "disk-write: the passes must fit the 1 GiB disk"; exit 2; }
# The end of the time limit (seconds since the epoch), kept across the
# move into the nested helper.
export BURROW_BENCH_START=${BURROW_BENCH_START:-$(date +%s)}
export BURROW_BENCH_DEADLINE=${BURROW_BENCH_DEADLINE:-$((BURROW_BENCH_START + limit))}

# The guest program, built once per build tree (static: the initramfs has
# no C library), before any move into the nested helper, where a compiler
# is slow.
[ -d "$BURROW_BUILD_DIR" ] || { echo "disk-write: no build tree at $BURROW_BUILD_DIR (set BURROW_BUILD_DIR)"; exit 1; }
BURROW_BUILD_DIR=$(cd "$BURROW_BUILD_DIR" && pwd)
prog=$BURROW_BUILD_DIR/bench/disk-write-guest
if [ ! -x "$prog" ] || [ "$here/disk-write-guest.c" -nt "$prog" ]; then
    if ! { mkdir -p "$BURROW_BUILD_DIR/bench" &&
        gcc -std=gnu17 -O2 -Wall -Wextra -static -o "$prog.tmp" "$here/disk-write-guest.c" &&
        mv "$prog.tmp" "$prog"; }; then
        echo "disk-write: cannot build $prog (gcc and libc6-dev are needed)"
        exit 1
    fi
fi

if [ "$(python3 "$BURROW_SOURCE_DIR/tests/nested/kvm-probe")" != hardware ] &&
   [ -z "${BURROW_NESTED:-}" ]; then
    exec "$BURROW_SOURCE_DIR/tests/nested/with-kvm" --needs hwkvm --timeout "$((limit + 300))" -- bash "$0" "$@"
fi
. "$BURROW_SOURCE_DIR/tests/linux/lib.sh"
linux_init
burrow_require_cmd qemu-system-x86_64 "install qemu-system-x86"
burrow_require_cmd qemu-img "install qemu-utils"

big=$BURROW_BENCH_MIB small=$BURROW_BENCH_SMALL_MIB
cat >"$BURROW_TMP/guest.sh" <<GUEST
echo "disk-write: clocksource \$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
w=/bin/disk-write-guest
\$w 1m /dev/vda 0 $big 1024 none
\$w 64k /dev/vda $big $small 64 none
\$w idle idle 2 spin
\$w spin /dev/vda $((big + small)) $big 1024 spin
\$w idle-port idle 2 port
\$w port /dev/vda $((2 * big + small)) $big 1024 port
sync
GUEST
linux_initramfs "$BURROW_TMP/initrd" "$BURROW_TMP/guest.sh" virtio_pci virtio_blk -- "$prog=/bin/disk-write-guest"
append="console=ttyS0 panic=-1 quiet"

python3 - "$runs" "$BURROW_TMP" "$BURROW_VM" "$LINUX_KERNEL" "$append" <<'PY'
import os, re, statistics, subprocess, sys, time

runs, tmp, burrow_vm, kernel, append = int(sys.argv[1]), *sys.argv[2:6]
initrd, disk, serial = tmp + "/initrd", tmp + "/disk.qcow2", tmp + "/serial"
deadline = int(os.environ["BURROW_BENCH_DEADLINE"]) - 30  # room for the table
big, small = int(os.environ["BURROW_BENCH_MIB"]), int(os.environ["BURROW_BENCH_SMALL_MIB"])
MEM_MIB = 512
PASSES = ("1m", "64k", "idle", "spin", "idle-port", "port")
LINE = re.compile(r"disk-write: (\S+) bytes=(\d+) write_ns=(\d+) flush_ns=(\d+) stall_ns=(\d+) loops=(\d+)")

vmms = {
    "burrow-vm": [burrow_vm, "--memory", str(MEM_MIB), "--cpus", "2",
                  "--kernel", kernel, "--initrd", initrd, "--append", append,
                  "--disk", disk + ",if=virtio,format=qcow2", "--no-rng",
                  "--display", "none", "--serial", "file:" + serial],
    "qemu": ["qemu-system-x86_64", "-machine", "pc", "-accel", "kvm", "-cpu", "host",
             "-m", str(MEM_MIB), "-smp", "2", "-nodefaults", "-no-user-config",
             "-display", "none", "-vga", "none",
             "-kernel", kernel, "-initrd", initrd, "-append", append,
             "-drive", "file=%s,if=none,id=d0,format=qcow2,cache=writeback" % disk,
             "-device", "virtio-blk-pci,drive=d0,num-queues=1",
             "-serial", "file:" + serial],
}


def one(argv):
    """One boot on a new image: ({pass: numbers}, clocksource, stderr, wall) or
    raises RuntimeError saying why the run failed."""
    for f in (disk, serial):
        if os.path.exists(f):
            os.unlink(f)
    r = subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", disk, "1G"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode:
        raise RuntimeError("qemu-img create: " + r.stdout.decode(errors="replace").strip())
    open(serial, "wb").close()
    left = deadline - time.time()
    if left < 60:
        raise TimeoutError("the time limit is reached")
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    try:
        _, err = p.communicate(timeout=left)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise TimeoutError("killed at the time limit after %.0f s" % (time.monotonic() - t0))
    wall = time.monotonic() - t0
    err = err.decode(errors="replace")
    with open(serial, "rb") as f:
        out = f.read().decode(errors="replace").replace("\r", "")
    res, clock = {}, "?"
    for line in out.splitlines():
        m = LINE.search(line)
        if m:
            res[m.group(1)] = [int(x) for x in m.groups()[1:]]
        elif "disk-write: clocksource" in line:
            clock = line.split()[-1]
    problems = [l.strip() for l in out.splitlines() if "disk-write:" in l and " error " in l]
    missing = [n for n in PASSES if n not in res]
    if p.returncode != 0 or missing or "burrow-guest: exit 0" not in out:
        why = problems or ["passes without a result: %s" % " ".join(missing) if missing else
                           "the guest did not finish"]
        why.append("exit status %d" % p.returncode)
        tail = [l for l in (err.strip().splitlines() + out.strip().splitlines())[-6:] if l]
        raise RuntimeError("; ".join(why) + ("\n    " + "\n    ".join(tail) if tail else ""))
    # What the run left in the image: leaks or corruption would be odd.
    chk = subprocess.run(["qemu-img", "check", "-f", "qcow2", disk],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    check = None
    if chk.returncode:
        check = "qemu-img check (status %d): %s" % (
            chk.returncode, " / ".join(chk.stdout.decode(errors="replace").strip().splitlines()[-3:]))
    return res, clock, err, wall, check


results = {k: [] for k in vmms}
clocks = {k: set() for k in vmms}
notes = {k: [] for k in vmms}
walls = {k: [] for k in vmms}
stop = False
for i in range(runs):
    for name, argv in vmms.items():
        try:
            res, clock, err, wall, check = one(argv)
        except TimeoutError as e:
            print("%s run %d: %s; no further runs" % (name, i + 1, e), flush=True)
            stop = True
            break
        except (RuntimeError, OSError) as e:
            print("%s run %d failed: %s" % (name, i + 1, e), flush=True)
            continue
        results[name].append(res)
        clocks[name].add(clock)
        walls[name].append(wall)
        for line in err.splitlines() + ([check] if check else []):
            # (burrow-vm's own lines on a normal power-off are left out)
            if line.endswith(("guest entered S5, powering off", "guest powered off")):
                continue
            if line.strip() and line.strip() not in notes[name]:
                notes[name].append(line.strip())
    if stop:
        break
for f in (disk, serial):
    if os.path.exists(f):
        os.unlink(f)


def mib_s(r):
    return r[0] / 1048576 / ((r[1] + r[2]) / 1e9)


def reads(r):
    """The rounds of CPU 1's loop (PM timer reads) per second, in thousands."""
    return r[4] / ((r[1] + r[2]) / 1e9) / 1000


rows = [
    ("1 MiB writes", "MiB/s", "%.1f", lambda x: mib_s(x["1m"])),
    ("64 KiB writes", "MiB/s", "%.1f", lambda x: mib_s(x["64k"])),
    ("flush after 1 MiB writes", "ms", "%.1f", lambda x: x["1m"][2] / 1e6),
    ("1 MiB writes, CPU 1 spinning", "MiB/s", "%.1f", lambda x: mib_s(x["spin"])),
    ("1 MiB writes, CPU 1 on PM timer", "MiB/s", "%.1f", lambda x: mib_s(x["port"])),
    ("longest stall, CPU 1 spinning", "ms", "%.1f", lambda x: x["spin"][3] / 1e6),
    ("  the same, disk idle", "ms", "%.1f", lambda x: x["idle"][3] / 1e6),
    ("longest stall, CPU 1 on PM timer", "ms", "%.1f", lambda x: x["port"][3] / 1e6),
    ("  the same, disk idle", "ms", "%.1f", lambda x: x["idle-port"][3] / 1e6),
    ("PM timer reads by CPU 1", "k/s", "%.2f", lambda x: reads(x["port"])),
    ("  the same, disk idle", "k/s", "%.2f", lambda x: reads(x["idle-port"])),
]
print("Writes by a Linux guest (Debian kernel %s, busybox initramfs; 2 vCPUs, %d MiB) with"
      " O_DIRECT to a new 1 GiB qcow2 on virtio-blk (host page cache on both: QEMU"
      " cache=writeback); passes of %d MiB (64 KiB blocks: %d MiB), each ending with a flush;"
      " median of %d/%d runs (burrow-vm/qemu)"
      % (os.path.basename(kernel), MEM_MIB, big, small,
         len(results["burrow-vm"]), len(results["qemu"])))
print("  guest clocksource: burrow-vm %s, qemu %s" % (
    ",".join(sorted(clocks["burrow-vm"])) or "?", ",".join(sorted(clocks["qemu"])) or "?"))
w = 32
print("  %-*s %14s %14s %8s   %-15s %s" % (w, "", "burrow-vm", "qemu", "ratio",
                                         "burrow-vm range", "qemu range"))
for label, unit, fmt, f in rows:
    b = [f(x) for x in results["burrow-vm"]]
    q = [f(x) for x in results["qemu"]]
    mb = statistics.median(b) if b else None
    mq = statistics.median(q) if q else None
    cell = lambda v: "n/a" if v is None else (fmt % v) + " " + unit
    span = lambda v: (fmt % min(v)) + "-" + (fmt % max(v)) if v else ""
    ratio = "%8.2f" % (mb / mq) if mb is not None and mq else "%8s" % ""
    print("  %-*s %14s %14s %s   %-15s %s" % (w, label, cell(mb), cell(mq), ratio, span(b), span(q)))
for name in vmms:
    if walls[name]:
        print("  %s: %.0f s a run (boot to power-off, median)" % (name, statistics.median(walls[name])))
    for line in notes[name][:10]:
        print("  %s said: %s" % (name, line))
print("  burrow-vm of %s; the benchmark took %.0f s" % (os.path.dirname(burrow_vm),
                                                    time.time() - int(os.environ["BURROW_BENCH_START"])))
PY
