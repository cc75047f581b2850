#!/bin/bash
# The same Linux guest (Debian's kernel, a busybox initramfs that powers off
# as soon as its init runs) under burrow-vm and under QEMU (Debian's
# qemu-system-x86, -machine pc -accel kvm, the same devices: 2 vCPUs,
# 512 MiB, a virtio-blk disk, virtio-net on user-mode NAT, virtio-rng, COM1),
# in one run on the same host.  Prints, each side by side and as a ratio:
# time to the guest's init, time to power-off (both from the process's
# start), the maximum RSS, and the RSS overhead (the resident memory that is
# not guest RAM, sampled while the guest runs).  Medians of RUNS runs.
#
# Usage: tests/bench/linux-boot.sh [RUNS]      (BURROW_BUILD_DIR: the build)
# Where this host's KVM cannot run Linux (none, or PVM-backed), it runs
# itself inside the nested KVM helper (tests/nested), QEMU included.
set -u
here=$(cd "$(dirname "$0")" && pwd)
export BURROW_SOURCE_DIR=${BURROW_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
export BURROW_BUILD_DIR=${BURROW_BUILD_DIR:-$BURROW_SOURCE_DIR/build}
runs=${1:-5}
if [ "$(python3 "$BURROW_SOURCE_DIR/tests/nested/kvm-probe")" != hardware ] &&
   [ -z "${BURROW_NESTED:-}" ]; then
    exec "$BURROW_SOURCE_DIR/tests/nested/with-kvm" --needs hwkvm --timeout 3000 -- bash "$0" "$@"
fi
. "$BURROW_SOURCE_DIR/tests/linux/lib.sh"
linux_init
burrow_require_cmd qemu-system-x86_64 "install qemu-system-x86"

echo 'true' >"$BURROW_TMP/guest.sh"
linux_initramfs "$BURROW_TMP/initrd" "$BURROW_TMP/guest.sh" virtio_pci virtio_blk virtio_net virtio-rng
truncate -s 64M "$BURROW_TMP/disk.img"
append="console=ttyS0 panic=-1 quiet"

python3 - "$runs" "$BURROW_TMP" "$BURROW_VM" "$LINUX_KERNEL" "$append" <<'PY'
import os, statistics, subprocess, sys, time

runs, tmp, burrow_vm, kernel, append = int(sys.argv[1]), *sys.argv[2:6]
initrd, disk, serial = tmp + "/initrd", tmp + "/disk.img", tmp + "/serial"
MEM_MIB = 512
MARK = b"burrow-guest: init"

vmms = {
    "burrow-vm": [burrow_vm, "--memory", str(MEM_MIB), "--cpus", "2",
                  "--kernel", kernel, "--initrd", initrd, "--append", append,
                  "--disk", disk + ",if=virtio,format=raw", "--net", "user,model=virtio",
                  "--display", "none", "--serial", "file:" + serial],
    "qemu": ["qemu-system-x86_64", "-machine", "pc", "-accel", "kvm", "-cpu", "host",
             "-m", str(MEM_MIB), "-smp", "2", "-nodefaults", "-no-user-config",
             "-display", "none", "-vga", "none",
             "-kernel", kernel, "-initrd", initrd, "-append", append,
             "-drive", "file=%s,if=virtio,format=raw" % disk,
             "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0",
             "-device", "virtio-rng-pci", "-serial", "file:" + serial],
}


def rss_split(pid):
    """(total RSS, RSS of the guest-RAM mapping) in KiB, from smaps."""
    total = ram = 0
    size = rss = 0
    try:
        with open("/proc/%d/smaps" % pid) as f:
            for line in f:
                if line[0].isdigit() or line[0] in "abcdef":
                    size = 0
                    continue
                k, v = line.split(":", 1)
                if k == "Size":
                    size = int(v.split()[0])
                elif k == "Rss":
                    rss = int(v.split()[0])
                    total += rss
                    # The guest's RAM: one anonymous mapping of its size
                    # (QEMU may round it up by a couple of MiB).
                    if MEM_MIB * 1024 <= size <= (MEM_MIB + 4) * 1024:
                        ram += rss
    except (OSError, ValueError):
        return None
    return total, ram


def one(argv):
    open(serial, "wb").close()
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    t_init = None
    overhead = 0
    while True:
        r = os.waitpid(p.pid, os.WNOHANG)
        if r[0]:
            break
        if t_init is None:
            with open(serial, "rb") as f:
                if MARK in f.read():
                    t_init = time.monotonic() - t0
        s = rss_split(p.pid)
        if s:
            overhead = max(overhead, s[0] - s[1])
        if time.monotonic() - t0 > 600:
            p.kill()
        time.sleep(0.01)
    t_off = time.monotonic() - t0
    status = r[1]
    if t_init is None:
        with open(serial, "rb") as f:
            if MARK in f.read():
                t_init = t_off
    err = p.stderr.read().decode(errors="replace")
    return t_init, t_off, overhead, status, err


results = {k: {"init": [], "off": [], "maxrss": [], "over": []} for k in vmms}
for i in range(runs):
    for name, argv in vmms.items():
        pid = os.fork()
        if pid == 0:
            # A child of its own per run, so RUSAGE_CHILDREN's maximum RSS
            # is this run's VMM alone.
            import resource
            t_init, t_off, over, status, err = one(argv)
            maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            ok = t_init is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
            with open(tmp + "/result", "w") as f:
                f.write("%d %s %f %d %d\n" % (ok, t_init if t_init else -1, t_off, maxrss, over))
                f.write(err)
            os._exit(0)
        os.waitpid(pid, 0)
        with open(tmp + "/result") as f:
            first, *rest = f.read().split("\n", 1)
        ok, t_init, t_off, maxrss, over = first.split()
        if ok != "1":
            print("%s run %d failed: %s" % (name, i + 1, "".join(rest).strip()[-400:]))
            continue
        res = results[name]
        res["init"].append(float(t_init))
        res["off"].append(float(t_off))
        res["maxrss"].append(int(maxrss) / 1024)
        res["over"].append(int(over) / 1024)

print("Linux guest (Debian kernel %s, busybox initramfs), 2 vCPUs, %d MiB, virtio-blk,"
      " virtio-net, virtio-rng; median of %d runs" % (os.path.basename(kernel), MEM_MIB, runs))
rows = [("time to init", "init", "s", "%.2f"), ("time to power-off", "off", "s", "%.2f"),
        ("maximum RSS", "maxrss", "MiB", "%.1f"), ("RSS overhead", "over", "MiB", "%.1f")]
print("  %-18s %12s %12s %8s" % ("", "burrow-vm", "qemu", "ratio"))
for label, key, unit, fmt in rows:
    b, q = results["burrow-vm"][key], results["qemu"][key]
    if not b or not q:
        print("  %-18s %12s %12s" % (label, "n/a" if not b else fmt % statistics.median(b),
                                       "n/a" if not q else fmt % statistics.median(q)))
        continue
    mb, mq = statistics.median(b), statistics.median(q)
    print("  %-18s %12s %12s %8.2f" % (label, (fmt % mb) + " " + unit, (fmt % mq) + " " + unit,
                                       mb / mq if mq else float("nan")))
PY
