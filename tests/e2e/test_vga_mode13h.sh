#!/bin/bash
# The VGA device end to end: SeaBIOS runs the VGA BIOS from the device's
# ROM, a boot sector sets mode 13h through INT 10h and draws eight colour
# bands through the legacy window (chain-4), and a screenshot taken over the
# control socket shows the bands in the DAC colours the guest programmed.
# needs: kvm
# timeout: 900
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_guest mode13h.img
burrow_require_cmd python3
burrow_require_file /usr/share/seabios/bios-256k.bin "install seabios"
burrow_require_file /usr/share/seabios/vgabios-stdvga.bin "install seabios"

CLIENT=$BURROW_SOURCE_DIR/tests/tools/burrow-control.py
tmp=$BURROW_TMP
sock=$tmp/control.sock
serial=$tmp/serial.txt
shot=$tmp/screen.png
vmpid=
cleanup() {
    [ -n "$vmpid" ] && burrow_kill_tree "$vmpid"
    rm -rf "$tmp"
}
trap cleanup EXIT
ctl() { python3 "$CLIENT" "$sock" "$@"; }

# A free local TCP port for the VNC server.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

cp "$BURROW_GUESTS/mode13h.img" "$tmp/disk.img"
burrow_add_log "$serial"
burrow_add_log "$tmp/vm.err"
timeout -k 10 "$BURROW_VM_TIMEOUT" "$BURROW_VM" --name vga-test --memory 64 \
    --disk "$tmp/disk.img,if=virtio" --display "vnc:127.0.0.1:$port" \
    --serial "file:$serial" --control "$sock" </dev/null >/dev/null 2>"$tmp/vm.err" &
vmpid=$!

# The BIOS clears video memory and the guest fills it through the legacy
# window, one VM exit per access: that takes a while.
burrow_wait_text "$serial" "bands drawn" "$vmpid"

out=$(ctl screenshot "{\"path\":\"$shot\"}" --connect-timeout "$BURROW_WAIT_LIMIT") ||
    burrow_fail "screenshot command failed: $out"
[ -s "$shot" ] || burrow_fail "screenshot wrote no file: $out"

# Decodes the PNG (8-bit RGB or RGBA, no interlace) with zlib alone and
# checks the middle of each band.  The picture may be scaled: positions are
# taken relative to 320x200.
python3 - "$shot" <<'PY' || burrow_fail "the screenshot does not show the bands"
import struct, sys, zlib

data = open(sys.argv[1], "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    sys.exit("not a PNG file")
pos, idat, ihdr = 8, b"", None
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        ihdr = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    elif kind == b"IEND":
        break
    pos += 12 + n
w, h, depth, ctype, _, _, interlace = ihdr
if depth != 8 or ctype not in (2, 6) or interlace:
    sys.exit("unsupported PNG: depth %d colour type %d interlace %d" % (depth, ctype, interlace))
bpp = 3 if ctype == 2 else 4
raw = zlib.decompress(idat)
stride = w * bpp
rows, prev, p = [], bytearray(stride), 0
for y in range(h):
    f, line = raw[p], bytearray(raw[p + 1:p + 1 + stride])
    p += 1 + stride
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if f == 1:
            line[i] = (line[i] + a) & 255
        elif f == 2:
            line[i] = (line[i] + b) & 255
        elif f == 3:
            line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            line[i] = (line[i] + pr) & 255
        elif f != 0:
            sys.exit("bad PNG filter %d" % f)
    rows.append(line)
    prev = line
print("screenshot %dx%d" % (w, h))
# 6-bit DAC values 63 and 32 as 8-bit: 255 and about 130
want = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0),
        (0, 255, 255), (255, 0, 255), (255, 255, 255), (130, 130, 130)]
bad = 0
for band, colour in enumerate(want):
    for x320 in (8, 160, 311):
        y = (band * 25 + 12) * h // 200
        x = x320 * w // 320
        got = tuple(rows[y][x * bpp:x * bpp + 3])
        if any(abs(g - e) > 4 for g, e in zip(got, colour)):
            print("band %d at (%d,%d): %s, expected %s" % (band, x, y, got, colour))
            bad += 1
sys.exit(1 if bad else 0)
PY

ctl quit >/dev/null 2>&1 || true
burrow_proc_gone "$vmpid" || burrow_fail "burrow-vm did not quit"
vmpid=
echo "PASS: mode 13h colour bands on the VGA, seen in a screenshot"
