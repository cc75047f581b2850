#!/bin/bash
# CPU time an idle VM costs the host: the demo guest waiting for a key on a
# static text screen (SeaBIOS's banner and the guest's greeting), with the
# VNC display, measured over 10 s from /proc/PID/stat (user + system time of
# all the process's threads), first with no viewer, then with one viewer
# connected that keeps an update request outstanding, as real viewers do.
# QEMU (Debian's qemu-system-x86, -vga std -vnc) runs the same guest in the
# same run as the peer.  The target for burrow-vm is under 2% of one core.
#
# Usage: tests/bench/idle-cpu.sh [BUILD_DIR] [SECONDS]
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-${BURROW_BUILD_DIR:-$here/../../build}}
secs=${2:-10}
bios=/usr/share/seabios/bios-256k.bin
img=$build/tests/guests/demo.img

for need in "$build/burrow-vm" "$img" "$bios"; do
    [ -e "$need" ] || { echo "idle-cpu: missing $need (build first)"; exit 1; }
done
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "idle-cpu: /dev/kvm not accessible; nothing to measure"; exit 0; }
if ! "$build/burrow-vm" --help 2>&1 | grep -q -- "--display.*vnc"; then
    echo "idle-cpu: this burrow-vm has no --display vnc; nothing to measure"
    exit 0
fi
qemu=$(command -v qemu-system-x86_64 || true)

tmp=$(mktemp -d)
pids=()
cleanup() {
    local p
    for p in "${pids[@]+"${pids[@]}"}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT

# A minimal RFB viewer: "wait PORT" returns once the screen shows something
# and has not changed for 3 s; "view PORT SECONDS" stays connected that long,
# asking for incremental updates, and prints the bytes it received.
cat > "$tmp/viewer.py" <<'EOF'
import socket, struct, sys, time

def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = s.makefile("rb")
    def rd(n):
        b = f.read(n)
        if len(b) != n:
            raise SystemExit("connection closed")
        return b
    rd(12)
    s.sendall(b"RFB 003.008\n")
    types = rd(rd(1)[0])
    if 1 not in types:
        raise SystemExit("server wants authentication")
    s.sendall(b"\x01")
    rd(4)
    s.sendall(b"\x01")
    w, h = struct.unpack(">HH", rd(4))
    rd(16)
    rd(struct.unpack(">I", rd(4))[0])
    s.sendall(struct.pack(">B3xBBBBHHHBBB3x", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
    s.sendall(struct.pack(">BxHi", 2, 1, 0))                      # raw only
    return s, rd, w, h

def read_update(rd, w):
    """One FramebufferUpdate in raw encoding: (bytes, pixels by rect)."""
    total, rects = 4, []
    while rd(1)[0] != 0:
        raise SystemExit("unexpected server message")
    rd(1)
    for _ in range(struct.unpack(">H", rd(2))[0]):
        x, y, rw, rh, enc = struct.unpack(">HHHHi", rd(12))
        if enc != 0:
            raise SystemExit("unexpected encoding %d" % enc)
        rects.append(rd(rw * rh * 4))
        total += 12 + rw * rh * 4
    return total, rects

mode, port = sys.argv[1], int(sys.argv[2])
if mode == "wait":
    deadline = time.monotonic() + 180
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        s, rd, w, h = connect(port)
        s.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, w, h))
        _, rects = read_update(rd, w)
        s.close()
        pix = b"".join(rects)
        lit = any(pix[i] for i in range(0, len(pix), 28))
        # A blinking cursor changes a few character cells: that is static.
        changed = len(pix) // 4 if last is None or len(last) != len(pix) else \
            sum(1 for x, y in zip(memoryview(last).cast("I"), memoryview(pix).cast("I")) if x != y)
        if changed > 3 * 9 * 16 or not lit:
            since = time.monotonic()
        last = pix
        if time.monotonic() - since >= 3:
            sys.exit(0)
        time.sleep(0.5)
    raise SystemExit("the screen did not settle")
else:
    s, rd, w, h = connect(port)
    end = time.monotonic() + float(sys.argv[3])
    got = 0
    s.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, w, h))
    while time.monotonic() < end:
        s.settimeout(max(0.01, end - time.monotonic()))
        try:
            n, _ = read_update(rd, w)
        except (socket.timeout, OSError):
            break
        got += n
        s.sendall(struct.pack(">BBHHHH", 3, 1, 0, 0, w, h))
    print(got)
EOF

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# CPU ticks (user + system) of a process so far.
ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# cpu_percent PID: percent of one core over $secs seconds.
cpu_percent() {
    local pid=$1 t0 t1 start end
    t0=$(ticks "$pid")
    start=$(date +%s%N)
    sleep "$secs"
    t1=$(ticks "$pid")
    end=$(date +%s%N)
    awk -v d=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v ns=$((end - start)) \
        'BEGIN { printf "%.2f", 100 * d / hz / (ns / 1e9) }'
}

# measure NAME PID PORT: prints the two figures for one VMM.
measure() {
    local name=$1 pid=$2 port=$3 idle viewed bytes
    if ! python3 "$tmp/viewer.py" wait "$port"; then
        printf '%-10s  measurement failed (screen never settled)\n' "$name"
        return
    fi
    idle=$(cpu_percent "$pid")
    python3 "$tmp/viewer.py" view "$port" $((secs + 2)) >"$tmp/bytes" &
    local viewer=$!
    sleep 1
    viewed=$(cpu_percent "$pid")
    wait $viewer
    bytes=$(cat "$tmp/bytes")
    printf '%-10s  no viewer: %6s%%   one viewer: %6s%%   (viewer received %s bytes, raw encoding)\n' \
        "$name" "$idle" "$viewed" "${bytes:-?}"
}

echo "CPU use of an idle VM on a static text screen, % of one core over $secs s:"

cp "$img" "$tmp/burrow.img"
port=$(free_port)
"$build/burrow-vm" --memory 128 --firmware "$bios" --disk "$tmp/burrow.img,if=virtio" \
    --display "vnc:127.0.0.1:$port" --serial none --no-rng >"$tmp/burrow.log" 2>&1 &
bpid=$!
pids+=($bpid)
measure burrow-vm "$bpid" "$port"
kill -9 "$bpid" 2>/dev/null
wait "$bpid" 2>/dev/null

if [ -n "$qemu" ]; then
    cp "$img" "$tmp/qemu.img"
    port=$(free_port)
    "$qemu" -accel kvm -M pc -m 128 -bios "$bios" -nodefaults -vga std \
        -vnc "127.0.0.1:$((port - 5900))" -drive "file=$tmp/qemu.img,if=virtio,format=raw" \
        >"$tmp/qemu.log" 2>&1 &
    qpid=$!
    pids+=($qpid)
    measure qemu "$qpid" "$port"
fi
