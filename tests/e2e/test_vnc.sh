#!/bin/bash
# The VNC display front-end against a real viewer: burrow-vm boots the
# project's boot sector through SeaBIOS with --display vnc; Debian's
# vncsnapshot takes the screen and tesseract reads it: the SeaBIOS banner
# (written by SeaBIOS's VGA BIOS) and the boot sector's greeting (INT 10h
# teletype) must be there.  Also: two viewers at once, the server listens on
# 127.0.0.1 only, the control socket's screenshot writes a PNG of the same
# picture, and --vnc-password-file turns on VNC authentication (no password
# and a wrong one are refused, the right one is let in).
# needs: kvm
# timeout: 900
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_guest bootsector.img
burrow_require_file /usr/share/seabios/bios-256k.bin "install seabios"
burrow_require_cmd vncsnapshot "install vncsnapshot"
burrow_require_cmd tesseract "install tesseract-ocr"
burrow_require_cmd openssl "install openssl"
CONTROL="$BURROW_SOURCE_DIR/tests/tools/burrow-control.py"
cp "$BURROW_GUESTS/bootsector.img" "$BURROW_TMP/disk.img"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_vm NAME ARGS...: burrow-vm in the background (hard timeout), the boot
# sector on virtio-blk, a control socket at $BURROW_TMP/NAME.sock.
start_vm() {
    local name=$1
    shift
    burrow_start_vm "$name" --memory 128 --disk "$BURROW_TMP/disk.img,if=virtio" --serial none \
        --control "$BURROW_TMP/$name.sock" "$@"
}

# ocr IMAGE: the text tesseract reads, on stdout.
ocr() {
    tesseract "$1" stdout 2>/dev/null
}

# snapshot PORT OUT [vncsnapshot options]: one picture; status of vncsnapshot.
snapshot() {
    local port=$1 out=$2
    shift 2
    timeout 120 vncsnapshot -quiet "$@" "127.0.0.1::$port" "$out" </dev/null >"$out.log" 2>&1
}

# ---- boot to the boot sector, read the screen ----
PORT=$(free_port)
start_vm vnc --display "vnc:127.0.0.1:$PORT"
# shows_guest: a viewer's picture, read by tesseract, has SeaBIOS's banner
# and the boot sector's greeting.
shows_guest() {
    kill -0 "$VM_PID" 2>/dev/null || burrow_fail "burrow-vm exited early"
    snapshot "$PORT" "$BURROW_TMP/screen.jpg" || return 1
    ocr "$BURROW_TMP/screen.jpg" >"$BURROW_TMP/screen.txt"
    grep -q "SeaBIOS" "$BURROW_TMP/screen.txt" && grep -q "hello from the guest" "$BURROW_TMP/screen.txt"
}
burrow_add_log "$BURROW_TMP/screen.txt"
burrow_add_log "$BURROW_TMP/screen.jpg.log"
burrow_until "SeaBIOS banner and boot sector greeting on the VNC screen" shows_guest
burrow_expect_text "$BURROW_TMP/screen.txt" "Burrow boot sector: hello from the guest"
burrow_note "VNC screen: SeaBIOS banner and the boot sector's text read back"

# ---- listening on the loopback address only ----
port_hex=$(printf '%04X' "$PORT")
listen=$(awk -v p=":$port_hex" '$4 == "0A" && substr($2, length($2) - 4) == p { print $2 }' \
         /proc/net/tcp /proc/net/tcp6)
[ "$listen" = "0100007F:$port_hex" ] ||
    burrow_fail "expected one listening socket on 127.0.0.1:$PORT, found: ${listen:-none}"

# ---- two viewers at once ----
snapshot "$PORT" "$BURROW_TMP/a.jpg" & a=$!
snapshot "$PORT" "$BURROW_TMP/b.jpg" & b=$!
wait $a || burrow_fail "the first of two simultaneous viewers failed: $(tail -n 2 "$BURROW_TMP/a.jpg.log")"
wait $b || burrow_fail "the second of two simultaneous viewers failed: $(tail -n 2 "$BURROW_TMP/b.jpg.log")"
ocr "$BURROW_TMP/b.jpg" | grep -q "hello from the guest" || burrow_fail "the second viewer's picture lacks the greeting"

# ---- screenshot through the control socket ----
SHOT=$BURROW_TMP/shot.png
python3 "$CONTROL" "$BURROW_TMP/vnc.sock" screenshot "{\"path\": \"$SHOT\"}" >"$BURROW_TMP/shot.reply" 2>&1 ||
    burrow_fail "control screenshot failed: $(cat "$BURROW_TMP/shot.reply")"
[ -s "$SHOT" ] || burrow_fail "control screenshot wrote no file"
python3 - "$SHOT" <<'EOF' || burrow_fail "the screenshot is not a sensible PNG"
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "no PNG signature"
w, h = struct.unpack(">II", data[16:24])
assert data[12:16] == b"IHDR" and 320 <= w <= 8192 and 200 <= h <= 8192, (w, h)
print("screenshot: %dx%d PNG, %d bytes" % (w, h, len(data)))
EOF
ocr "$SHOT" >"$BURROW_TMP/shot.txt"
burrow_add_log "$BURROW_TMP/shot.txt"
burrow_expect_text "$BURROW_TMP/shot.txt" "hello from the guest"
burrow_stop_vm

# ---- password ----
printf 'burrow42\n' >"$BURROW_TMP/password"
PORT=$(free_port)
start_vm pw --display "vnc:127.0.0.1:$PORT" --vnc-password-file "$BURROW_TMP/password"
# listening: the VNC server takes connections on $PORT.
listening() {
    kill -0 "$VM_PID" 2>/dev/null || burrow_fail "burrow-vm with a VNC password exited early"
    python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' \
        "$PORT" 2>/dev/null
}
burrow_until "VNC server with a password on $PORT" listening
# What the server offers: VNC authentication (2) only.
python3 - "$PORT" <<'EOF' || burrow_fail "the server with a password does not demand VNC authentication"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 10)
assert s.recv(12).startswith(b"RFB ")
s.sendall(b"RFB 003.008\n")
n = s.recv(1)[0]
types = list(s.recv(n))
print("security types offered:", types)
assert types == [2], types
EOF
if snapshot "$PORT" "$BURROW_TMP/nopw.jpg"; then
    burrow_fail "a viewer without the password got a picture"
fi
# vncsnapshot's -passwd file is the vncpasswd format: the password padded to
# 8 bytes, DES-encrypted with the fixed key every VNC viewer uses.  Triple
# DES with that key three times is single DES, and is in OpenSSL's default
# provider (single DES only in its legacy one, which may be missing).
vncpasswd_file() {
    printf '%s' "$1" | head -c 8 | { cat; printf '\0\0\0\0\0\0\0\0'; } | head -c 8 |
        openssl enc -des-ede3 -nopad -K e84ad660c4721ae0e84ad660c4721ae0e84ad660c4721ae0 >"$2" ||
        burrow_fail "openssl could not write a vncpasswd file"
    [ "$(stat -c %s "$2")" = 8 ] || burrow_fail "the vncpasswd file $2 is not 8 bytes"
}
vncpasswd_file wrongpw1 "$BURROW_TMP/bad.passwd"
vncpasswd_file burrow42 "$BURROW_TMP/good.passwd"
if snapshot "$PORT" "$BURROW_TMP/bad.jpg" -passwd "$BURROW_TMP/bad.passwd"; then
    burrow_fail "a viewer with a wrong password got a picture"
fi
snapshot "$PORT" "$BURROW_TMP/good.jpg" -passwd "$BURROW_TMP/good.passwd" ||
    burrow_fail "the right password was refused: $(tail -n 2 "$BURROW_TMP/good.jpg.log")"
burrow_note "VNC password: refused without and with a wrong one, accepted with the right one"
burrow_stop_vm

echo "PASS: VNC viewers read SeaBIOS and the boot sector from the screen; screenshot, loopback-only listening, two viewers and the password work"
