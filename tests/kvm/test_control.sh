#!/bin/bash
# The control socket of a running burrow-vm, driven through
# tests/tools/burrow-control.py: greeting, status, pause/resume with their
# events, garbage and overlong lines, several clients at once, a second VM on
# the same socket refused, and quit (exit status 0, socket file removed).
#
# The guest waits for the power button (tests/guests/powerbtn.S), which is
# all this test needs from it (SeaBIOS with nothing to boot would reset the
# machine now and then, and its events would mix with the ones checked).
# needs: kvm
# timeout: 1800
. "$(dirname "$0")/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_cmd python3
FIRMWARE=/usr/share/seabios/bios-256k.bin
burrow_require_file "$FIRMWARE" "install the seabios package"
burrow_require_guest powerbtn.img
burrow_require_guest serialstream.img

CLIENT=$BURROW_SOURCE_DIR/tests/tools/burrow-control.py
tmp=$BURROW_TMP
sock=$tmp/control.sock
vmpid=
listener=
cleanup() {
    [ -n "$listener" ] && kill "$listener" 2>/dev/null
    [ -n "$vmpid" ] && burrow_kill_tree "$vmpid"
    [ -n "${vm3:-}" ] && burrow_kill_tree "$vm3"
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() { burrow_fail "$@"; }
ctl() { python3 "$CLIENT" "$sock" "$@"; }
# The value at a dotted path of a JSON line on stdin ("" when absent).
jget() {
    python3 -c '
import json, sys
v = json.loads(sys.stdin.readline())
for k in sys.argv[1].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print("" if v is None else (v if isinstance(v, str) else json.dumps(v)))' "$1"
}
vm_alive() { kill -0 "$vmpid" 2>/dev/null; }

burrow_add_log "$tmp/vm.err"
burrow_add_log "$tmp/serial.log"
cp "$BURROW_GUESTS/powerbtn.img" "$tmp/disk.img"
timeout -k 10 "$BURROW_VM_TIMEOUT" "$BURROW_VM" --name control-test --memory 64 \
    --firmware "$FIRMWARE" --display none --serial "file:$tmp/serial.log" \
    --disk "$tmp/disk.img,if=virtio" \
    --control "$sock" </dev/null >/dev/null 2>"$tmp/vm.err" &
vmpid=$!

# --- greeting, socket file
out=$(ctl --greeting --connect-timeout "$BURROW_WAIT_LIMIT") || fail "no greeting (rc $?)"
[ "$(echo "$out" | jget burrow.version)" = "0.1.0" ] || fail "greeting: $out"
mode=$(stat -c %a "$sock")
[ "$mode" = 600 ] || fail "socket file mode is $mode, not 600"
echo "ok: greeting, socket mode 600"

# --- help lists the machine's commands
out=$(ctl help) || fail "help: $out"
for c in status pause resume reset powerdown quit; do
    echo "$out" | grep -q "\"name\":\"$c\"" || fail "help does not list $c: $out"
done
echo "ok: help"

# --- status
out=$(ctl status) || fail "status: $out"
echo "$out" | grep -q '"running"' || fail "status is not running: $out"
echo "ok: status running"

# --- a second client listening for events while another pauses
burrow_listen "$sock" "$tmp/listener.out" --events 2
listener=$BURROW_LISTENER

out=$(ctl pause --events 1 --timeout "$BURROW_WAIT_LIMIT") || fail "pause (rc $?): $out"
reply=$(echo "$out" | head -n 1)
event=$(echo "$out" | sed -n 2p)
[ -n "$(echo "$reply" | jget return)" ] || fail "pause reply: $reply"
[ -n "$(echo "$event" | jget event)" ] || fail "no event after pause: $out"
echo "$event" | grep -q '"paused"' || fail "event after pause does not say paused: $event"
[ -n "$(echo "$event" | jget timestamp.seconds)" ] || fail "event without timestamp: $event"
out=$(ctl status) || fail "status: $out"
echo "$out" | grep -q '"paused"' || fail "status after pause: $out"
echo "ok: pause, state event, status paused"

out=$(ctl resume --events 1 --timeout "$BURROW_WAIT_LIMIT") || fail "resume (rc $?): $out"
echo "$out" | sed -n 2p | grep -q '"running"' || fail "event after resume: $out"
out=$(ctl status) || fail "status: $out"
echo "$out" | grep -q '"running"' || fail "status after resume: $out"
echo "ok: resume"

# the listener saw both state changes
wait "$listener" || fail "listener (rc $?): $(cat "$tmp/listener.out")"
listener=
[ "$(grep -c '"event"' "$tmp/listener.out")" = 2 ] || fail "listener got: $(cat "$tmp/listener.out")"
grep '"event"' "$tmp/listener.out" | head -n 1 | grep -q '"paused"' || fail "listener: $(cat "$tmp/listener.out")"
echo "ok: a second client received the events"

# --- garbage gets error replies, the VM stays up
expect_error() {   # class, then client arguments
    local cls=$1
    shift
    local o rc
    o=$(ctl "$@")
    rc=$?
    [ $rc = 1 ] || fail "$* -> rc $rc: $o"
    [ "$(echo "$o" | jget error.class)" = "$cls" ] || fail "$* -> $o (expected $cls)"
}
expect_error parse-error --raw 'this is not JSON'
expect_error parse-error --raw '{"command":"status"'
expect_error invalid-request --raw '[1,2,3]'
expect_error invalid-request --raw '{"arguments":{}}'
expect_error invalid-request --raw '{"command":"status","arguments":5}'
expect_error unknown-command no-such-command
long=$(head -c 100000 /dev/zero | tr '\0' x)
expect_error parse-error --raw "$long"
# a line cut short by the client going away
printf '{"command":"sta' | python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.recv(4096)
s.sendall(sys.stdin.buffer.read()); s.close()' "$sock" || fail "half-line client"
vm_alive || fail "burrow-vm died after bad requests"
out=$(ctl status) || fail "status after garbage: $out"
echo "ok: garbage and overlong lines get errors, VM stays up"

# --- several clients at once
pids=()
for i in 1 2 3 4 5 6; do
    ctl status --id "\"c$i\"" >"$tmp/c$i.out" 2>&1 &
    pids+=($!)
done
for p in "${pids[@]}"; do
    wait "$p"
done
for i in 1 2 3 4 5 6; do
    [ "$(jget id <"$tmp/c$i.out")" = "c$i" ] || fail "client $i: $(cat "$tmp/c$i.out")"
done
echo "ok: six clients at once"

# --- a second VM on the same socket is refused, the first keeps it
burrow_add_log "$tmp/vm2.out"
timeout "$BURROW_VM_TIMEOUT" "$BURROW_VM" --name control-test-2 --memory 64 --firmware "$FIRMWARE" --display none \
        --serial none --control "$sock" >"$tmp/vm2.out" 2>&1
rc=$?
[ $rc != 0 ] && [ $rc != 124 ] || fail "second VM on a live socket: rc $rc: $(cat "$tmp/vm2.out")"
grep -q "in use" "$tmp/vm2.out" || fail "second VM's message: $(cat "$tmp/vm2.out")"
out=$(ctl status) || fail "first VM lost its socket: $out"
echo "ok: second VM refused"

# --- pause really stops the guest: one that writes to its UART without end
# (serialstream.img) writes nothing while paused and goes on after resume.
# Stopping is a negative, so it is watched for a while; everything else
# waits for events.
cp "$BURROW_GUESTS/serialstream.img" "$tmp/stream.img"
sock3=$tmp/stream.sock
burrow_add_log "$tmp/vm3.err"
timeout -k 10 "$BURROW_VM_TIMEOUT" "$BURROW_VM" --name control-test-3 --memory 64 \
    --firmware "$FIRMWARE" --display none --serial "file:$tmp/stream.log" \
    --disk "$tmp/stream.img,if=virtio" --control "$sock3" </dev/null >/dev/null 2>"$tmp/vm3.err" &
vm3=$!
size_of() { stat -c %s "$tmp/stream.log" 2>/dev/null || echo 0; }
grown_past() { kill -0 "$vm3" 2>/dev/null || fail "the streaming VM ended"; [ "$(size_of)" -gt "$1" ]; }
burrow_until "serial output from the streaming guest" grown_past 4096
python3 "$CLIENT" "$sock3" pause >/dev/null || fail "pause of the streaming VM"
sleep 1     # output the guest wrote just before it stopped lands
s1=$(size_of)
sleep 2
s2=$(size_of)
[ "$s1" = "$s2" ] || fail "the guest went on writing while paused ($s1 -> $s2 bytes)"
python3 "$CLIENT" "$sock3" resume >/dev/null || fail "resume of the streaming VM"
burrow_until "serial output after resume" grown_past "$s2"
echo "ok: paused, the guest wrote nothing for 2 s ($s2 bytes); resumed, it went on ($(size_of) bytes)"
python3 "$CLIENT" "$sock3" quit >/dev/null || fail "quit of the streaming VM"
burrow_proc_gone "$vm3" || fail "the streaming VM still runs after quit"
vm3=
rm -f "$tmp/stream.log" "$tmp/stream.img"

# --- quit: reply, exit status 0, socket file gone
out=$(ctl quit) || fail "quit: $out"
burrow_proc_gone "$vmpid" || fail "burrow-vm still running $BURROW_WAIT_LIMIT s after quit"
rc=0
wait "$vmpid" || rc=$?
vmpid=
[ $rc = 0 ] || fail "burrow-vm exit status $rc after quit"
[ -e "$sock" ] && fail "socket file left behind"
echo "ok: quit"
echo "PASS"
