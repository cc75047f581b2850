#!/bin/bash
# A burrow-vm killed with SIGKILL leaves its runtime files behind; `status`
# must see through them (stopped or crashed, never running), `list` agrees,
# and `start` works again; then stop --force ends the new process.
# needs: kvm
# timeout: 900
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
CLI=${BURROW_CLI:-$BURROW_BUILD_DIR/burrow}
[ -x "$CLI" ] || burrow_fail "$CLI is missing: build the project first"
"$CLI" create --help >/dev/null 2>&1 || burrow_fail "$CLI has no VM commands ('burrow create --help' fails)"
burrow_require_kvm
burrow_require_vm
burrow_require_guest bootsector.img
burrow_require_cmd python3
burrow_require_file /usr/share/seabios/bios-256k.bin "install Debian's seabios"
export XDG_DATA_HOME=$BURROW_TMP/data XDG_STATE_HOME=$BURROW_TMP/state XDG_RUNTIME_DIR=$BURROW_TMP/run
export BURROW_VM=$BURROW_BUILD_DIR/burrow-vm
RUN=$XDG_RUNTIME_DIR/burrow
cleanup() {
    timeout 20 "$CLI" stop --force --timeout 2 cr >/dev/null 2>&1
    rm -rf "$BURROW_TMP"
}
trap cleanup EXIT
state_of() {
    "$CLI" status cr --json | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["state"], j.get("pid", 0))'
}

cp "$BURROW_GUESTS/bootsector.img" "$BURROW_TMP/disk.img"
"$CLI" create cr --memory 64 --disk "$BURROW_TMP/disk.img" --net none >/dev/null || burrow_fail "create"
burrow_add_log "$XDG_STATE_HOME/burrow/cr.log"

"$CLI" start cr --headless --timeout "$BURROW_WAIT_LIMIT" >/dev/null || burrow_fail "first start failed"
read -r state pid < <(state_of)
[ "$state" = running ] || burrow_fail "state after start: $state"
kill -9 "$pid"
burrow_proc_gone "$pid" || burrow_fail "pid $pid survived SIGKILL"
# SIGKILL leaves the runtime files behind: that is what tells a crash from
# a stop.
[ -S "$RUN/cr.sock" ] || burrow_fail "the killed process left no control socket file"
# Its other threads may take a moment to go (status says stopping).
not_stopping() {
    read -r state _ < <(state_of)
    [ "$state" != stopping ]
}
burrow_until "end of the stopping state" not_stopping
crash_state=$state
[ "$state" = crashed ] || burrow_fail "after SIGKILL, status says $state, not crashed"
"$CLI" status cr --json | grep -q "ended without cleaning up" ||
    burrow_fail "status of the killed VM does not say it ended without cleaning up: $("$CLI" status cr --json)"
burrow_note "ok: after SIGKILL, status says crashed"
"$CLI" status cr | grep -q "^$state" || burrow_fail "plain status disagrees"
"$CLI" list | grep -qE "^cr +$state " || burrow_fail "list disagrees: $("$CLI" list)"
"$CLI" delete cr >/dev/null 2>"$BURROW_TMP/del.err" || burrow_fail "delete of a crashed VM refused: $(cat "$BURROW_TMP/del.err")"
"$CLI" create cr --memory 64 --disk "$BURROW_TMP/disk.img" --net none >/dev/null || burrow_fail "re-create"
"$CLI" start cr --headless --timeout "$BURROW_WAIT_LIMIT" >/dev/null || burrow_fail "re-create then start failed"
read -r state pid < <(state_of)
kill -9 "$pid"
burrow_proc_gone "$pid" || burrow_fail "pid $pid survived SIGKILL"

# start again over the stale files
out=$("$CLI" start cr --headless --timeout "$BURROW_WAIT_LIMIT" 2>&1) || burrow_fail "start after the crash failed: $out"
read -r state pid2 < <(state_of)
[ "$state" = running ] || burrow_fail "state after restart: $state"
[ "$pid2" != "$pid" ] || burrow_fail "restart reports the dead pid $pid"
burrow_note "ok: start after SIGKILL works (pid $pid2)"

"$CLI" stop cr --force --timeout 2 || burrow_fail "stop --force failed"
read -r state _ < <(state_of)
[ "$state" = stopped ] || burrow_fail "state after stop --force: $state"
burrow_proc_gone "$pid2" || burrow_fail "pid $pid2 still runs"
for f in cr.sock cr.pid cr.console; do
    [ ! -e "$RUN/$f" ] || burrow_fail "$RUN/$f left behind"
done
echo "PASS: a killed VM reads as $crash_state and starts again"
