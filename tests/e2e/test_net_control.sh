#!/bin/bash
# Network control commands on a running VM: hostfwd-add opens the host port
# (127.0.0.1 unless told otherwise), hostfwd-remove closes it, link reports
# and changes the NIC's link state, and bad requests get clear errors.
# needs: kvm
# timeout: 1800
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_guest bootsector.img
burrow_require_cmd python3

CLIENT=$BURROW_SOURCE_DIR/tests/tools/burrow-control.py
sock=$BURROW_TMP/control.sock
burrow_add_log "$BURROW_TMP/vm.err"
ctl() { python3 "$CLIENT" "$sock" "$@"; }
# port_open PORT: something listens on 127.0.0.1:PORT (bind fails).
port_open() {
    python3 -c '
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)' "$1"
}
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The guest waits in SeaBIOS (no bootable disk); the NIC is all we need.
timeout -k 5 "$BURROW_VM_TIMEOUT" "$BURROW_VM" --memory 64 --net user,model=e1000 --net user \
    --serial none --control "$sock" </dev/null >/dev/null 2>"$BURROW_TMP/vm.err" &
vmpid=$!
trap 'kill $vmpid 2>/dev/null; wait $vmpid 2>/dev/null; rm -rf "$BURROW_TMP"' EXIT
ctl --greeting --connect-timeout "$BURROW_WAIT_LIMIT" >/dev/null || burrow_fail "no control socket"

port=$(free_port)
out=$(ctl hostfwd-add "{\"rule\":\"tcp::$port-:22\"}") || burrow_fail "hostfwd-add: $out"
port_open "$port" || burrow_fail "nothing listens on 127.0.0.1:$port after hostfwd-add"
out=$(ctl hostfwd-add "{\"rule\":\"tcp::$port-:22\"}") && burrow_fail "a second forward of the same port was accepted"
out=$(ctl hostfwd-remove "{\"rule\":\"tcp::$port-:22\"}") || burrow_fail "hostfwd-remove: $out"
port_open "$port" && burrow_fail "127.0.0.1:$port still open after hostfwd-remove"
burrow_note "ok: hostfwd-add and hostfwd-remove of 127.0.0.1:$port"

port2=$(free_port)
out=$(ctl hostfwd-add "{\"rule\":\"udp::$port2-:53\",\"nic\":1}") || burrow_fail "hostfwd-add on nic 1: $out"
out=$(ctl hostfwd-add '{"rule":"tcp::1-:22","nic":7}') && burrow_fail "nic 7 was accepted"
grep -q '"invalid-argument"' <<<"$out" || burrow_fail "bad nic: $out"
out=$(ctl hostfwd-add '{"rule":"bogus"}') && burrow_fail "a bogus rule was accepted"
grep -q '"invalid-argument"' <<<"$out" || burrow_fail "bogus rule: $out"

out=$(ctl link) || burrow_fail "link: $out"
grep -q '"state":"up"' <<<"$out" || burrow_fail "link is not up at start: $out"
out=$(ctl link '{"state":"down"}') || burrow_fail "link down: $out"
grep -q '"state":"down"' <<<"$out" || burrow_fail "link down: $out"
out=$(ctl link '{"state":"sideways"}') && burrow_fail "a bad link state was accepted"
out=$(ctl link '{"state":"up"}') || burrow_fail "link up: $out"
grep -q '"state":"up"' <<<"$out" || burrow_fail "link up: $out"
burrow_note "ok: link down and up"
ctl quit >/dev/null
wait $vmpid || burrow_fail "burrow-vm exited with $?"
echo "PASS: hostfwd-add, hostfwd-remove and link"
