#!/bin/bash
# How `burrow` ends VMs, and VMs that lost their definition:
# - `stop --force` ends the VM process at once: a guest that would obey the
#   power button (tests/guests/powerbtn.img) never sees it, and the VM is
#   stopped afterwards;
# - a `start` whose VM does not answer within --timeout ends the process it
#   started and says so: exit 1 and nothing left running (a burrow-vm that
#   waits for a file that never comes stands in for a slow one);
# - a VM whose folder is deleted while it runs still shows in `list` (as
#   "running (definition deleted)"), in `status`, and `stop` stops it.
# Every wait is for an event; the limits only bound a hang.
# needs: kvm
# timeout: 900
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
CLI=${BURROW_CLI:-$BURROW_BUILD_DIR/burrow}
[ -x "$CLI" ] || burrow_fail "$CLI is missing: build the project first"
"$CLI" create --help >/dev/null 2>&1 || burrow_fail "$CLI has no VM commands ('burrow create --help' fails)"
burrow_require_kvm
burrow_require_vm
burrow_require_guest powerbtn.img
burrow_require_cmd python3
burrow_require_file /usr/share/seabios/bios-256k.bin "install Debian's seabios"
export XDG_DATA_HOME=$BURROW_TMP/data XDG_STATE_HOME=$BURROW_TMP/state XDG_RUNTIME_DIR=$BURROW_TMP/run
export BURROW_VM=$BURROW_BUILD_DIR/burrow-vm
VMS=$XDG_DATA_HOME/burrow/vms
RUN=$XDG_RUNTIME_DIR/burrow
HANG=$BURROW_WAIT_LIMIT

cleanup() {
    local n
    for n in pb gate orph; do
        timeout 20 "$CLI" stop --force "$n" >/dev/null 2>&1
    done
    [ -z "${gatepid:-}" ] || kill -9 "$gatepid" 2>/dev/null
    rm -rf "$BURROW_TMP"
}
trap cleanup EXIT

# b ARGS...: runs burrow; stdout in $OUT, stderr in $ERR, status in $RC.
b() {
    RC=0
    timeout $(( HANG * 2 )) "$CLI" "$@" >"$BURROW_TMP/out" 2>"$BURROW_TMP/err" </dev/null || RC=$?
    OUT=$(cat "$BURROW_TMP/out")
    ERR=$(cat "$BURROW_TMP/err")
}
ok() {
    b "$@"
    [ "$RC" -eq 0 ] || burrow_fail "burrow $* exited $RC: $ERR"
}
state_of() {
    "$CLI" status "$1" --json | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["state"], j.get("pid", 0))'
}

# --- stop --force: the guest never sees the power button
ok stop --help
grep -q -- "--force.*at once" <<<"$OUT" || burrow_fail "stop --help does not say --force ends the VM at once: $OUT"
cp "$BURROW_GUESTS/powerbtn.img" "$BURROW_TMP/powerbtn.img"
ok create pb --memory 64 --disk "$BURROW_TMP/powerbtn.img" --net none
vmlog=$XDG_STATE_HOME/burrow/pb.log
console=$BURROW_TMP/console.out
burrow_add_log "$vmlog"
burrow_add_log "$console"
ok start pb --headless --timeout "$HANG"
read -r state pid < <(state_of pb)
[ "$state" = running ] || burrow_fail "state after start: $state"
timeout $(( HANG * 3 )) "$CLI" console pb </dev/null >"$console" 2>&1 &
conpid=$!
burrow_wait_text "$vmlog" "serial: client connected" "$conpid"
ok reset pb
burrow_wait_text "$console" "powerbtn: waiting for the power button" "$conpid"
ok stop pb --force
wait "$conpid"
read -r state _ < <(state_of pb)
[ "$state" = stopped ] || burrow_fail "state after stop --force: $state"
burrow_proc_gone "$pid" || burrow_fail "burrow-vm (pid $pid) still runs after stop --force"
burrow_expect_no_text "$console" "powerbtn: pressed"
burrow_expect_no_text "$vmlog" "guest powered off"
for f in pb.sock pb.pid pb.console; do
    [ ! -e "$RUN/$f" ] || burrow_fail "stop --force left $RUN/$f behind"
done
burrow_note "ok: stop --force ended the VM without pressing the power button"

# --- a start that times out ends what it started
gate=$BURROW_TMP/gate-vm
cat >"$gate" <<'EOF'
#!/usr/bin/env python3
# Stands in for a burrow-vm that is slow to answer: waits for $GATE_FILE,
# then becomes the real burrow-vm (same process, same arguments).
import os, sys, time
while not os.path.exists(os.environ["GATE_FILE"]):
    time.sleep(0.05)
os.execv(os.environ["GATE_VM"], [os.environ["GATE_VM"]] + sys.argv[1:])
EOF
chmod +x "$gate"
ok create gate --memory 64 --disk "$BURROW_TMP/powerbtn.img" --net none
GATE_FILE=$BURROW_TMP/never GATE_VM=$BURROW_VM BURROW_VM=$gate b start gate --headless --timeout 1
[ "$RC" -eq 1 ] || burrow_fail "start that timed out exited $RC: $ERR"
grep -q "did not answer" <<<"$ERR" || burrow_fail "start timeout: unclear message: $ERR"
grep -q "ended" <<<"$ERR" || burrow_fail "start timeout does not say the VM process was ended: $ERR"
gatepid=$(sed -n 's/.*(pid \([0-9]*\)).*/\1/p' <<<"$ERR")
[ -n "$gatepid" ] || burrow_fail "start timeout names no pid: $ERR"
burrow_proc_gone "$gatepid" || burrow_fail "the VM process $gatepid that timed out still runs"
read -r state _ < <(state_of gate)
[ "$state" = stopped ] || burrow_fail "state after a start that timed out: $state"
for f in gate.sock gate.pid gate.console; do
    [ ! -e "$RUN/$f" ] || burrow_fail "the timed-out start left $RUN/$f behind"
done
burrow_note "ok: a start that timed out ended its VM process: $ERR"

# --- a VM whose folder is deleted while it runs
ok create orph --memory 64 --disk "$BURROW_TMP/powerbtn.img" --net none
ok start orph --headless --timeout "$HANG"
read -r state opid < <(state_of orph)
[ "$state" = running ] || burrow_fail "state after start: $state"
rm -rf "${VMS:?}/orph"
ok list
line=$(grep '^orph ' <<<"$OUT") || burrow_fail "list omits the VM whose folder was deleted: $OUT"
grep -q "running (definition deleted)" <<<"$line" || burrow_fail "list line of the orphan: $line"
ok list --json
got=$(python3 -c '
import json, sys
for v in json.loads(sys.argv[1]):
    if v["name"] == "orph":
        print(v["state"], v.get("pid"), v.get("definition_deleted"))' "$OUT")
[ "$got" = "running $opid True" ] || burrow_fail "list --json for the orphan: '$got' in $OUT"
ok status orph
[[ "$OUT" == "running (pid $opid)"* ]] || burrow_fail "status of the orphan: '$OUT'"
ok stop orph --timeout "$HANG"
burrow_proc_gone "$opid" || burrow_fail "burrow-vm (pid $opid) still runs after stop"
ok list
! grep -q '^orph ' <<<"$OUT" || burrow_fail "list still shows the stopped orphan: $OUT"
b status orph
[ "$RC" -ne 0 ] && grep -q "no VM named" <<<"$ERR" || burrow_fail "status of the gone orphan: $RC $OUT $ERR"
for f in orph.sock orph.pid orph.console orph.run; do
    [ ! -e "$RUN/$f" ] || burrow_fail "stop of the orphan left $RUN/$f behind"
done
burrow_note "ok: a VM whose folder was deleted is listed and stopped"
echo "PASS: stop --force, start timeouts and orphaned VMs"
