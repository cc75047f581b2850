#!/bin/bash
# The pa sound backend in a running burrow-vm, inside its sandbox, against
# a private PulseAudio server (burrow_pa_start):
#  1. a bad --audio pa option is refused, naming it;
#  2. the VM connects: status's "audio" says backend pa, connected, the
#     microphone connected (--audio-in on) and not recording; the server
#     lists the VM's playback stream and no record stream (the microphone
#     is not in use while the guest does not record);
#  3. the server goes away: the VM runs on, status says disconnected, the
#     log says so once however many times the backend tries again (a
#     listener on the server's socket counts the tries and refuses them);
#  4. the server comes back on the same socket: the backend connects again
#     by itself (the sandbox allows what that takes), status says
#     connected, the server lists the stream again;
#  5. quit: exit status 0, no sandbox error.
# needs: kvm
# timeout: 600
. "$(dirname "$0")/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
FIRMWARE=/usr/share/seabios/bios-256k.bin
burrow_require_file "$FIRMWARE" "install the seabios package"
burrow_require_guest powerbtn.img
CLIENT=$BURROW_SOURCE_DIR/tests/tools/burrow-control.py

tpid=
lpid=
cleanup() {
    [ -n "$tpid" ] && burrow_kill_tree "$tpid"
    [ -n "$lpid" ] && kill "$lpid" 2>/dev/null
    burrow_pa_stop
    rm -rf "$BURROW_TMP"
}
trap cleanup EXIT

# 1. A bad option.
BURROW_STATUS=0
"$BURROW_VM" --memory 64 --audio pa,latency=5 >"$BURROW_TMP/bad.out" 2>&1 || BURROW_STATUS=$?
[ "$BURROW_STATUS" -ne 0 ] || burrow_fail "--audio pa,latency=5 was taken"
grep -q "latency" "$BURROW_TMP/bad.out" || burrow_fail "the refusal does not name the option: $(cat "$BURROW_TMP/bad.out")"
"$BURROW_VM" --memory 64 --audio pa,volume=3 >"$BURROW_TMP/bad.out" 2>&1 && burrow_fail "--audio pa,volume=3 was taken"
grep -q "volume" "$BURROW_TMP/bad.out" || burrow_fail "the refusal does not name the option: $(cat "$BURROW_TMP/bad.out")"

# 2. Connected.
burrow_pa_start
sock=$BURROW_TMP/vm.sock
err=$BURROW_TMP/vm.err
burrow_add_log "$err"
cp "$BURROW_GUESTS/powerbtn.img" "$BURROW_TMP/disk.img"
timeout -k 10 "$BURROW_VM_TIMEOUT" "$BURROW_VM" --name audio --memory 64 --firmware "$FIRMWARE" \
    --serial none --disk "$BURROW_TMP/disk.img,if=virtio" --control "$sock" \
    --audio "pa,server=$BURROW_PA_SERVER" --audio-in on </dev/null >/dev/null 2>"$err" &
tpid=$!
python3 "$CLIENT" "$sock" --greeting --connect-timeout "$BURROW_WAIT_LIMIT" >/dev/null ||
    burrow_fail "no greeting on the control socket"
vmpid=$(pgrep -P "$tpid" -x burrow-vm)
[ "$(awk '$1 == "Seccomp:" { print $2 }' "/proc/$vmpid/status")" = 2 ] || burrow_fail "burrow-vm runs without its sandbox"

# audio FIELD: the field of status's "audio" section, as JSON.
audio() {
    python3 "$CLIENT" "$sock" status | python3 -c '
import json, sys
r = json.load(sys.stdin)["return"]
print(json.dumps(r.get("audio", {}).get(sys.argv[1])) if sys.argv[1] != "state" else r["state"])' "$1"
}
[ "$(audio backend)" = '"pa"' ] || burrow_fail "status's audio backend is $(audio backend)"
[ "$(audio connected)" = true ] || burrow_fail "not connected: $(audio connected)"
[ "$(audio microphone)" = true ] || burrow_fail "the microphone is not connected"
[ "$(audio recording)" = false ] || burrow_fail "recording while the guest does not"
streams() { burrow_pa pactl list short "$1" | grep -c protocol-native; }
[ "$(streams sink-inputs)" = 1 ] || burrow_fail "the server lists $(streams sink-inputs) playback streams"
[ "$(streams source-outputs)" = 0 ] || burrow_fail "a record stream while the guest does not record"

# 3. The server goes away; a listener in its place counts the tries.
burrow_pa_stop
python3 - "$BURROW_PA_DIR/native" "$BURROW_TMP/tries" <<'PY' &
import os, socket, sys
path, out = sys.argv[1], sys.argv[2]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(8)
n = 0
while True:
    c, _ = s.accept()
    c.close()
    n += 1
    with open(out, "w") as f:
        f.write(str(n))
PY
lpid=$!
disconnected() { [ "$(audio connected)" = false ]; }
burrow_until "disconnection in status" disconnected
tried_twice() { [ "$(cat "$BURROW_TMP/tries" 2>/dev/null || echo 0)" -ge 2 ]; }
burrow_until "two tries of the backend to connect again" tried_twice
[ "$(audio state)" = running ] || burrow_fail "the VM is $(audio state) without its sound server"
kill "$lpid"
wait "$lpid" 2>/dev/null
lpid=
n=$(grep -c "lost the PulseAudio server" "$err")
[ "$n" = 1 ] || burrow_fail "the log says $n times that the server is gone"

# 4. Back.
burrow_pa_start
connected() { [ "$(audio connected)" = true ]; }
burrow_until "connection again in status" connected
burrow_wait_text "$err" "connected to the PulseAudio server" "$tpid"
[ "$(streams sink-inputs)" = 1 ] || burrow_fail "no playback stream after the server came back"
[ "$(grep -c "lost the PulseAudio server" "$err")" = 1 ] || burrow_fail "the loss said more than once"
burrow_note "$(grep audio "$err")"

# 5. Quit.
python3 "$CLIENT" "$sock" quit >/dev/null || burrow_fail "quit failed"
BURROW_STATUS=0
wait "$tpid" || BURROW_STATUS=$?
tpid=
burrow_expect_status 0
burrow_expect_no_text "$err" "sandbox"
echo "PASS: the pa backend connects, says once that its server is gone, and connects again inside the sandbox"
