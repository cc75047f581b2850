#!/bin/bash
# The screen through the control socket, with no TCP port: a viewer hands
# one end of a socketpair to burrow-vm ("display-connect", the socket sent
# with SCM_RIGHTS) and speaks RFB on the other.  A VM started headless
# (no VNC server) shows SeaBIOS's screen that way, to two viewers at once,
# while burrow-vm listens on no TCP port; a VM with a VNC password asks the
# same password of such viewers; requests without a stream socket, and VMs
# without a display, get clear errors and keep running.
# needs: kvm
# timeout: 600
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_guest bootsector.img
burrow_require_file /usr/share/seabios/bios-256k.bin "install seabios"
burrow_require_cmd ss "install iproute2"
CONTROL="$BURROW_SOURCE_DIR/tests/tools/burrow-control.py"
VIEWER="$BURROW_SOURCE_DIR/tests/tools/rfb-viewer.py"
cp "$BURROW_GUESTS/bootsector.img" "$BURROW_TMP/disk.img"

# start_vm NAME ARGS...: burrow-vm in the background, its control socket at
# $BURROW_TMP/NAME.sock, returning once the socket answers.
start_vm() {
    local name=$1
    shift
    burrow_start_vm "$name" --memory 128 --disk "$BURROW_TMP/disk.img,if=virtio" --serial none \
        --control "$BURROW_TMP/$name.sock" "$@"
    SOCK=$BURROW_TMP/$name.sock
    answers() {
        kill -0 "$VM_PID" 2>/dev/null || burrow_fail "burrow-vm ($name) exited early"
        python3 "$CONTROL" "$SOCK" status >/dev/null 2>&1
    }
    burrow_until "control socket of $name" answers
}

# ---- headless: the screen through the control socket alone ----
start_vm headless --display headless
python3 "$VIEWER" --control "$SOCK" --timeout 300 bright=240 new-viewer \
    >"$BURROW_TMP/viewer.out" 2>"$BURROW_TMP/viewer.err" ||
    { cat "$BURROW_TMP/viewer.out" "$BURROW_TMP/viewer.err" >&2; burrow_fail "no picture through the control socket"; }
burrow_add_log "$BURROW_TMP/viewer.out"
burrow_expect_text "$BURROW_TMP/viewer.out" "handed over"
burrow_expect_text "$BURROW_TMP/viewer.out" "serverinit "
grep -q '^bright: lit' "$BURROW_TMP/viewer.out" || burrow_fail "the handed-over viewer saw a black screen"
grep -q '^new-viewer [0-9]*x[0-9]*$' "$BURROW_TMP/viewer.out" || burrow_fail "a second handed-over viewer got no ServerInit"
burrow_expect_text "$BURROW_TMP/headless.err" "serving viewers handed over the control socket only"
# While viewers were connected and after, burrow-vm listens on no TCP port.
if ss -Hltnp 2>/dev/null | grep -q "pid=$VM_PID,"; then
    ss -Hltnp >&2
    burrow_fail "burrow-vm listens on a TCP port"
fi
burrow_note "headless VM: SeaBIOS's screen through the control socket, two viewers, no TCP port"

# ---- bad requests leave the VM running ----
python3 "$CONTROL" "$SOCK" display-connect >"$BURROW_TMP/nofd.out" && burrow_fail "display-connect without a socket succeeded"
burrow_expect_text "$BURROW_TMP/nofd.out" "send a connected stream socket"
python3 - "$SOCK" >"$BURROW_TMP/badfd.out" <<'EOF' || burrow_fail "sending a datagram socket or a file: no clear error"
import json, os, socket, sys
for what in ("udp", "file"):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(sys.argv[1])
    f = c.makefile("rb")
    f.readline()
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM) if what == "udp" else open("/dev/null")
    socket.send_fds(c, [b'{"command":"display-connect","id":7}\n'], [other.fileno()])
    other.close()
    while True:
        msg = json.loads(f.readline())
        if msg.get("id") == 7:
            break
    print(what, json.dumps(msg))
    if "error" not in msg or "stream socket" not in msg["error"]["desc"]:
        sys.exit(1)
    c.close()
EOF
python3 "$CONTROL" "$SOCK" status >"$BURROW_TMP/status.out" || burrow_fail "burrow-vm stopped answering after bad requests"
burrow_expect_text "$BURROW_TMP/status.out" '"running"'
burrow_stop_vm

# ---- no display: refused plainly ----
start_vm nodisplay --display none
python3 "$VIEWER" --control "$SOCK" --timeout 60 >"$BURROW_TMP/none.out" 2>"$BURROW_TMP/none.err" &&
    burrow_fail "a VM without a display took a viewer"
burrow_expect_text "$BURROW_TMP/none.err" "no display"
burrow_stop_vm

# ---- a VNC password applies to handed-over viewers too ----
printf 'burrow42\n' >"$BURROW_TMP/password"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_vm pw --display "vnc:127.0.0.1:$PORT" --vnc-password-file "$BURROW_TMP/password"
python3 "$VIEWER" --control "$SOCK" --timeout 60 >"$BURROW_TMP/pw.out" 2>"$BURROW_TMP/pw.err" &&
    burrow_fail "a handed-over viewer got in without the VNC password"
burrow_expect_text "$BURROW_TMP/pw.out" "handed over"
burrow_expect_text "$BURROW_TMP/pw.err" "security type None not offered"
burrow_note "a VM with a VNC password asks it of handed-over viewers too"
burrow_stop_vm
