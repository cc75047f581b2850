#!/bin/bash
# Sound through PulseAudio: the same Linux guest (Debian's kernel, a busybox
# initramfs, snd-hda-intel, tests/guests/linux/pcmplay.c playing its known
# signal: a 1 kHz sine and a numbered sequence) under burrow-vm (--audio
# pa, its defaults) and under QEMU (Debian's qemu-system-x86, -device
# intel-hda -device hda-duplex with -audiodev pa, its defaults), in one run
# on the same host, into one private PulseAudio server with a null sink
# whose monitor parec records.  Prints, each side by side and as a ratio:
#  - dropouts: gaps of silence (0.5 ms or more) in the recorded signal
#    between its first and last sound (QEMU's mixing engine does not pass
#    samples through exactly, so the numbered sequence cannot be compared);
#    burrow-vm's own underrun count (status) beside it;
#  - first sound: from the guest's "pcmplay: started" on its serial port
#    (the buffer is full and the device runs) to the first sound parec
#    hands over (the serial line takes its own time to reach its file: in
#    the nested helper the sound may come first, a negative figure);
#  - stream latency: the server's latency for the VM's playback stream
#    (buffer and sink, as pactl lists it), the median of samples taken
#    while it plays;
#  - CPU time: the VMM process's user and system time while the guest
#    plays (from "started" to "played"), guest included.
# Medians of RUNS runs.
#
# Usage: tests/bench/audio.sh [SECONDS] [RUNS]   (default 60 s, 1 run;
# BURROW_BUILD_DIR: the build; BENCH_PA_OPTS=,latency=MS: burrow-vm's
# target instead of its default; BENCH_ONLY=burrow-vm|qemu: one side).  Where this host's KVM cannot run Linux, it
# runs itself inside the nested KVM helper (tests/nested), QEMU and the
# sound server included; times there are meaningless alone, the ratios are
# the figures.
set -u
here=$(cd "$(dirname "$0")" && pwd)
export BURROW_SOURCE_DIR=${BURROW_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
export BURROW_BUILD_DIR=${BURROW_BUILD_DIR:-$BURROW_SOURCE_DIR/build}
seconds=${1:-60}
runs=${2:-1}
if [ "$(python3 "$BURROW_SOURCE_DIR/tests/nested/kvm-probe")" != hardware ] &&
   [ -z "${BURROW_NESTED:-}" ]; then
    exec "$BURROW_SOURCE_DIR/tests/nested/with-kvm" --needs hwkvm --timeout 3000 -- bash "$0" "$@"
fi
. "$BURROW_SOURCE_DIR/tests/linux/lib.sh"
linux_init
burrow_require_cmd qemu-system-x86_64 "install qemu-system-x86"
[ -e /usr/lib/x86_64-linux-gnu/qemu/audio-pa.so ] ||
    burrow_fail "QEMU's PulseAudio driver is missing: packaging/install-deps.sh installs qemu-system-gui"
burrow_require_guest pcmplay
python3 -c 'import numpy' 2>/dev/null || burrow_fail "python3-numpy is missing"

burrow_pa_start
trap 'burrow_pa_stop; rm -rf "$BURROW_TMP"' EXIT
# Both VMMs' samples go over the socket (burrow-vm's always do): shared
# memory between clients and the server does not work in the nested helper.
mkdir -p "$BURROW_PA_DIR/config/pulse"
echo "enable-shm = no" >"$BURROW_PA_DIR/config/pulse/client.conf"
frames=$((seconds * 48000))
cat >"$BURROW_TMP/guest.sh" <<GUEST
n=0
until [ -e /dev/snd/pcmC0D0p ] && [ -e /dev/snd/controlC0 ]; do
    n=\$((n + 1))
    [ \$n -lt 600 ] || { echo "audio: no playback device"; exit 1; }
    sleep 0.1
done
/pcmplay /dev/snd/pcmC0D0p $frames /dev/snd/controlC0
GUEST
linux_initramfs "$BURROW_TMP/initrd" "$BURROW_TMP/guest.sh" snd-hda-codec-generic snd-hda-intel \
    -- "$BURROW_GUESTS/pcmplay=/pcmplay"
_burrow_pa_env

python3 - "$runs" "$frames" "$BURROW_TMP" "$BURROW_VM" "$LINUX_KERNEL" "$BURROW_PA_SERVER" \
    "${BURROW_PA_ENV[@]}" <<'PY'
import json, math, os, socket, statistics, subprocess, sys, time
import numpy as np

runs, frames, tmp, burrow_vm, kernel, server = int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:7]
env = dict(os.environ)
for kv in sys.argv[7:]:                 # the server's environment (VAR=VALUE words of its env line)
    if "=" in kv and not kv.startswith("-"):
        k, v = kv.split("=", 1)
        env[k] = v
env.pop("DISPLAY", None)
initrd, serial = tmp + "/initrd", tmp + "/serial"
append = "console=ttyS0 panic=-1 quiet"
tick = os.sysconf("SC_CLK_TCK")

vmms = {
    "burrow-vm": [burrow_vm, "--memory", "256", "--cpus", "1", "--kernel", kernel, "--initrd", initrd,
                  "--append", append, "--display", "none", "--serial", "file:" + serial,
                  "--control", tmp + "/vm.sock",
                  "--audio", "pa,server=%s,sink=burrow_out%s" % (server, os.environ.get("BENCH_PA_OPTS", ""))],
    "qemu": ["qemu-system-x86_64", "-machine", "pc", "-accel", "kvm", "-cpu", "host", "-m", "256",
             "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none", "-vga", "none",
             "-kernel", kernel, "-initrd", initrd, "-append", append, "-serial", "file:" + serial,
             "-audiodev", "pa,id=snd0,server=%s,out.name=burrow_out" % server,
             "-device", "intel-hda", "-device", "hda-duplex,audiodev=snd0"],
}


def cpu_s(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick
    except (OSError, IndexError, ValueError):
        return None


def serial_has(text):
    try:
        with open(serial, "rb") as f:
            return text in f.read()
    except OSError:
        return False


def stream_latency_ms():
    """The VM's playback stream's latency as the server lists it (buffer + sink)."""
    out = subprocess.run(["pactl", "list", "sink-inputs"], env=env, capture_output=True,
                         text=True).stdout
    buf = sink = None
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Buffer Latency:"):
            buf = float(line.split()[2]) / 1000
        elif line.startswith("Sink Latency:"):
            sink = float(line.split()[2]) / 1000
    return buf + sink if buf is not None and sink is not None else None


def burrow_status():
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(tmp + "/vm.sock")
        f = s.makefile("rw")
        f.readline()
        f.write('{"command":"status"}\n')
        f.flush()
        r = json.loads(f.readline())["return"]
        s.close()
        return r.get("audio", {})
    except (OSError, ValueError, KeyError):
        return {}


sine = np.array([round(12000 * math.sin(2 * math.pi * i / 48)) for i in range(48)], dtype=np.int16)


def dropouts(raw):
    """Gaps in the played signal as parec got it: runs of silence (both
    channels within a hair of 0 for 0.5 ms or more) between its first and
    its last sound.  (Not the numbered sequence: QEMU's mixing engine does
    not pass samples through exactly, so only silence tells a dropout.)"""
    rec = np.frombuffer(raw[: len(raw) // 4 * 4], dtype="<i2").reshape(-1, 2)
    loud = np.any(np.abs(rec.astype(np.int32)) > 8, axis=1)
    idx = np.nonzero(loud)[0]
    if len(idx) == 0:
        return None, 0
    span = loud[idx[0]: idx[-1] + 1]
    quiet = ~span
    # Runs of quiet frames: where a run starts and ends.
    edges = np.diff(np.concatenate(([0], quiet.astype(np.int8), [0])))
    starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
    gaps = int(np.count_nonzero(ends - starts >= 24))
    return gaps, int(len(span))


def one(name, argv):
    open(serial, "wb").close()
    rec = subprocess.Popen(["parec", "--raw", "--format=s16le", "--rate=48000", "--channels=2",
                            "--latency-msec=5", "--device=burrow_out.monitor"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    os.set_blocking(rec.stdout.fileno(), False)
    got = bytearray()
    vm = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=open(tmp + "/%s.err" % name, "wb"))
    t_started = t_sound = cpu0 = cpu1 = None
    lat, status = [], {}
    last_sample = 0
    deadline = time.monotonic() + 600 + frames / 48000 * 20
    while vm.poll() is None and time.monotonic() < deadline:
        try:
            chunk = os.read(rec.stdout.fileno(), 1 << 20)
        except BlockingIOError:
            chunk = b""
        if chunk:
            if t_sound is None and any(chunk):
                t_sound = time.monotonic()
            got += chunk
        now = time.monotonic()
        if t_started is None and serial_has(b"pcmplay: started"):
            t_started, cpu0 = now, cpu_s(vm.pid)
        if t_started is not None and cpu1 is None:
            if now - last_sample > 1:
                last_sample = now
                l = stream_latency_ms()
                if l is not None:
                    lat.append(l)
                if name == "burrow-vm":
                    status = burrow_status() or status
            if serial_has(b"pcmplay: played"):
                cpu1 = cpu_s(vm.pid)
        time.sleep(0.002)
    if vm.poll() is None:
        vm.kill()
    vm.wait()
    time.sleep(0.5)
    try:
        got += os.read(rec.stdout.fileno(), 1 << 26)
    except BlockingIOError:
        pass
    rec.kill()
    rec.wait()
    breaks, span = dropouts(bytes(got))
    ok = cpu0 is not None and cpu1 is not None and breaks is not None
    if not ok:
        with open(serial, "rb") as f, open(tmp + "/%s.err" % name, "rb") as e:
            print("%s: the guest did not play through: %s\n%s's stderr: %s"
                  % (name, f.read().decode(errors="replace")[-600:], name,
                     e.read().decode(errors="replace")[:1500]))
        try:
            with open(tmp + "/pa/pa.log", errors="replace") as f:
                print("the server's log: " + f.read()[-3000:])
        except OSError:
            pass
        return None
    # (Negative when the sound reached parec before the guest's line
    # reached its serial file.)
    return {"dropouts": breaks, "first": (t_sound - t_started) * 1000 if t_sound else float("nan"),
            "latency": statistics.median(lat) if lat else float("nan"), "cpu": cpu1 - cpu0,
            "span": span, "underruns": status.get("underruns")}


results = {k: [] for k in vmms}
for i in range(runs):
    for name, argv in vmms.items():
        if os.environ.get("BENCH_ONLY", name) != name:
            continue
        r = one(name, argv)
        if r:
            results[name].append(r)
            print("  run %d %-9s dropouts %d, first sound %.0f ms, stream latency %.1f ms, CPU %.2f s%s"
                  % (i + 1, name, r["dropouts"], r["first"], r["latency"], r["cpu"],
                     "" if r["underruns"] is None else ", its own underrun count %d" % r["underruns"]))

print("Sound: the guest plays %d s (48 kHz, 16-bit stereo) through snd-hda-intel into PulseAudio;"
      " median of %d runs" % (frames // 48000, runs))
print("  %-26s %12s %12s %8s" % ("", "burrow-vm", "qemu", "ratio"))
rows = [("dropouts at the sink", "dropouts", "", "%.0f"), ("first sound", "first", "ms", "%.0f"),
        ("stream latency (server)", "latency", "ms", "%.1f"), ("CPU time while playing", "cpu", "s", "%.2f")]
for label, key, unit, fmt in rows:
    b = [r[key] for r in results["burrow-vm"]]
    q = [r[key] for r in results["qemu"]]
    mb = statistics.median(b) if b else None
    mq = statistics.median(q) if q else None
    cell = lambda m: "n/a" if m is None else (fmt % m) + (" " + unit if unit else "")
    ratio = "%8.2f" % (mb / mq) if mb is not None and mq else "%8s" % "-"
    print("  %-26s %12s %12s %s" % (label, cell(mb), cell(mq), ratio))
u = [r["underruns"] for r in results["burrow-vm"] if r["underruns"] is not None]
if u:
    print("  burrow-vm's own underrun count (status): %s" % ", ".join(str(x) for x in u))
PY
