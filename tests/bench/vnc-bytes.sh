#!/bin/bash
# Bytes a VNC viewer receives from burrow-vm's VNC server: a full text-mode
# screen (the demo guest's greeting after SeaBIOS) and a one-character
# change (a key typed through VNC, echoed by the guest), per RFB encoding,
# next to the raw baseline width * height * 4.  QEMU (Debian's
# qemu-system-x86, -vnc) serves the same guest in the same run as a peer.
# A small RFB client written here (Python, standard library) counts the
# bytes of each FramebufferUpdate message.
#
# Usage: tests/bench/vnc-bytes.sh [BUILD_DIR]
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-${BURROW_BUILD_DIR:-$here/../../build}}
bios=/usr/share/seabios/bios-256k.bin
img=$build/tests/guests/demo.img

for need in "$build/burrow-vm" "$img" "$bios"; do
    [ -e "$need" ] || { echo "vnc-bytes: missing $need (build first)"; exit 1; }
done
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "vnc-bytes: /dev/kvm not accessible; nothing to measure"; exit 0; }
if ! "$build/burrow-vm" --help 2>&1 | grep -q -- "--display.*vnc"; then
    echo "vnc-bytes: this burrow-vm has no --display vnc; nothing to measure"
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

cat > "$tmp/rfb.py" <<'EOF'
import socket, struct, sys, time

ENC = {"raw": 0, "hextile": 5, "zlib": 6, "zrle": 16}
DESKTOP_SIZE = -223

class Rfb:
    def __init__(self, port, encodings):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.bytes = 0
        ver = self.recv(12)
        if not ver.startswith(b"RFB "):
            raise SystemExit("not an RFB server: %r" % ver)
        self.s.sendall(b"RFB 003.008\n")
        n = self.recv(1)[0]
        types = self.recv(n)
        if 1 not in types:
            raise SystemExit("server wants authentication (%r)" % list(types))
        self.s.sendall(b"\x01")
        if struct.unpack(">I", self.recv(4))[0] != 0:
            raise SystemExit("security handshake failed")
        self.s.sendall(b"\x01")                                   # shared
        self.w, self.h = struct.unpack(">HH", self.recv(4))
        self.recv(16)
        self.recv(struct.unpack(">I", self.recv(4))[0])
        # 32 bpp, depth 24, little endian, true colour, R at 16, G 8, B 0
        self.s.sendall(struct.pack(">B3xBBBBHHHBBB3x", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
        encs = [ENC[e] for e in encodings] + [DESKTOP_SIZE]
        self.s.sendall(struct.pack(">BxH", 2, len(encs)) + b"".join(struct.pack(">i", e) for e in encs))
        self.fb = bytearray(self.w * self.h * 4)

    def recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise SystemExit("connection closed")
            buf += chunk
        self.bytes += n
        return buf

    def request(self, incremental):
        self.s.sendall(struct.pack(">BBHHHH", 3, incremental, 0, 0, self.w, self.h))

    def key(self, keysym):
        for down in (1, 0):
            self.s.sendall(struct.pack(">BBxxI", 4, down, keysym))

    def hextile(self, x, y, w, h):
        bg = fg = b"\0\0\0\0"
        for ty in range(y, y + h, 16):
            for tx in range(x, x + w, 16):
                tw, th = min(16, x + w - tx), min(16, y + h - ty)
                sub = self.recv(1)[0]
                if sub & 1:
                    self.recv(tw * th * 4)
                    continue
                if sub & 2:
                    bg = self.recv(4)
                if sub & 4:
                    fg = self.recv(4)
                if sub & 8:
                    n = self.recv(1)[0]
                    self.recv(n * (6 if sub & 16 else 2))

    def update(self, timeout=None):
        """Reads one FramebufferUpdate; returns (bytes, rects, area) or None."""
        self.s.settimeout(timeout)
        try:
            while True:
                start = self.bytes
                t = self.recv(1)[0]
                if t == 0:
                    break
                if t == 2:                                    # Bell
                    continue
                if t == 3:                                    # ServerCutText
                    self.recv(3)
                    self.recv(struct.unpack(">I", self.recv(4))[0])
                    continue
                raise SystemExit("unexpected server message %d" % t)
        except socket.timeout:
            return None
        finally:
            self.s.settimeout(30)
        self.recv(1)
        n = struct.unpack(">H", self.recv(2))[0]
        area = 0
        for _ in range(n):
            x, y, w, h, enc = struct.unpack(">HHHHi", self.recv(12))
            area += w * h
            if enc == 0:
                data = self.recv(w * h * 4)
                for row in range(h):
                    o = ((y + row) * self.w + x) * 4
                    self.fb[o:o + w * 4] = data[row * w * 4:(row + 1) * w * 4]
            elif enc == 5:
                self.hextile(x, y, w, h)
            elif enc in (6, 16):
                self.recv(struct.unpack(">I", self.recv(4))[0])
            elif enc == DESKTOP_SIZE:
                self.w, self.h = w, h
                self.fb = bytearray(w * h * 4)
            else:
                raise SystemExit("unexpected encoding %d" % enc)
        return self.bytes - start, n, area

def changed_pixels(a, b):
    if a is None or len(a) != len(b):
        return len(b) // 4
    return sum(1 for x, y in zip(memoryview(a).cast("I"), memoryview(b).cast("I")) if x != y)

def wait_static(port, settle):
    """Polls full raw frames until the picture is not black and, but for a
    blinking cursor (a few character cells), has stayed the same for
    `settle` seconds; returns (w, h)."""
    deadline = time.monotonic() + 180
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        c = Rfb(port, ["raw"])
        c.request(0)
        c.update()
        frame = bytes(c.fb)
        lit = any(frame[i] for i in range(0, len(frame), 4 * 7))
        c.s.close()
        if changed_pixels(last, frame) > 3 * 9 * 16 or not lit:
            since = time.monotonic()
        last = frame
        if time.monotonic() - since >= settle:
            return c.w, c.h
        time.sleep(0.5)
    raise SystemExit("the screen did not settle")

port = int(sys.argv[1])
w, h = wait_static(port, 3)
print("screen %dx%d; raw baseline (width * height * 4): %d bytes" % (w, h, w * h * 4))
for enc in ["raw", "hextile", "zlib", "zrle"]:
    c = Rfb(port, [enc])
    c.request(0)
    full = c.update()
    # Updates with no input: a blinking cursor, say.
    c.request(1)
    idle = 0
    t_end = time.monotonic() + 1.5
    while time.monotonic() < t_end:
        u = c.update(max(0.01, t_end - time.monotonic()))
        if u:
            idle += u[0]
            c.request(1)
    c.key(ord("x"))
    one = None
    t_end = time.monotonic() + 5
    while time.monotonic() < t_end and not one:
        one = c.update(max(0.01, t_end - time.monotonic()))
    c.s.close()
    one_txt = "%7d bytes (%d rects, %d pixels)" % one if one else "    no update"
    print("%-8s full screen %8d bytes (%5.1f%% of raw) | one character: %s | idle 1.5 s: %d bytes"
          % (enc, full[0], 100.0 * full[0] / (w * h * 4), one_txt, idle))
EOF

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cp "$img" "$tmp/burrow.img"
port=$(free_port)
"$build/burrow-vm" --memory 128 --firmware "$bios" --disk "$tmp/burrow.img,if=virtio" \
    --display "vnc:127.0.0.1:$port" --serial none --no-rng >"$tmp/burrow.log" 2>&1 &
pids+=($!)
echo "== burrow-vm (--display vnc) =="
python3 "$tmp/rfb.py" "$port" || { echo "vnc-bytes: burrow-vm measurement failed"; tail -5 "$tmp/burrow.log"; }

if [ -n "$qemu" ]; then
    cp "$img" "$tmp/qemu.img"
    port=$(free_port)
    "$qemu" -accel kvm -M pc -m 128 -bios "$bios" -nodefaults -vga std \
        -vnc "127.0.0.1:$((port - 5900))" -drive "file=$tmp/qemu.img,if=virtio,format=raw" \
        >"$tmp/qemu.log" 2>&1 &
    pids+=($!)
    if [ "$port" -ge 5900 ]; then
        echo "== QEMU (-vga std -vnc) =="
        python3 "$tmp/rfb.py" "$port" || { echo "vnc-bytes: QEMU measurement failed"; tail -5 "$tmp/qemu.log"; }
    else
        echo "== QEMU: skipped (no free port at or above 5900) =="
    fi
fi
