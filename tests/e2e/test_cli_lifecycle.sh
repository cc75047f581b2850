#!/bin/bash
# The `burrow` VM commands end to end, in a scratch XDG tree: --help for
# every command; create, list --json, show; refusals (duplicate name, '/',
# leading '.', negative memory, unknown OS type) that change nothing; a name
# with spaces and accented letters through create, list, modify, show,
# status, delete; then,
# with KVM: start --headless, status running, start again refused, pause and
# resume, the serial console, screenshot, stop through the ACPI power button
# (tests/guests/powerbtn.img powers off when it is pressed), stop --force of
# a guest that ignores the button, logs, delete: the VM is gone.
# Every wait is for an event (a state, a log or console line, a process
# gone); the time limits only bound a hang.
# needs: kvm
# timeout: 1200
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
CLI=${BURROW_CLI:-$BURROW_BUILD_DIR/burrow}
[ -x "$CLI" ] || burrow_fail "$CLI is missing: build the project first"
"$CLI" create --help >/dev/null 2>&1 || burrow_fail "$CLI has no VM commands ('burrow create --help' fails)"
export XDG_DATA_HOME=$BURROW_TMP/data XDG_STATE_HOME=$BURROW_TMP/state XDG_RUNTIME_DIR=$BURROW_TMP/run
export BURROW_VM=$BURROW_BUILD_DIR/burrow-vm
VMS=$XDG_DATA_HOME/burrow/vms
RUN=$XDG_RUNTIME_DIR/burrow

HANG=$BURROW_WAIT_LIMIT

started=()
cleanup() {
    local n
    for n in "${started[@]+"${started[@]}"}"; do
        timeout 20 "$CLI" stop --force --timeout 2 "$n" >/dev/null 2>&1
    done
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
# refuse "TEXT" ARGS...: fails with one line on stderr containing TEXT.
refuse() {
    local want=$1
    shift
    b "$@"
    [ "$RC" -ne 0 ] || burrow_fail "burrow $* succeeded; expected a refusal"
    [ "$RC" -ne 124 ] || burrow_fail "burrow $* hung"
    grep -qF -- "$want" <<<"$ERR" || burrow_fail "burrow $*: '$ERR' lacks '$want'"
    [ "$(wc -l <<<"$ERR")" -eq 1 ] || burrow_fail "burrow $*: more than one line on stderr: $ERR"
    burrow_note "ok: refused: burrow $* -> $ERR"
}
jq_py() {   # jq_py EXPR: evaluates a Python expression over the JSON in $OUT (as j)
    python3 -c 'import json, sys; j = json.loads(sys.argv[2]); print(eval(sys.argv[1]))' "$1" "$OUT"
}
tree_sum() { (cd "$XDG_DATA_HOME" && find . -type f -exec md5sum {} + | sort; find . | sort) 2>/dev/null | md5sum; }

# --- every command documents itself
for c in create list show modify start status stop pause resume reset console screenshot clone \
         delete logs; do
    ok "$c" --help
    grep -q "Usage: burrow $c" <<<"$OUT" || burrow_fail "'burrow $c --help' has no usage line: $OUT"
done
burrow_note "ok: --help for every command"

# --- create, list, show
burrow_require_guest powerbtn.img
burrow_require_guest bootsector.img
cp "$BURROW_GUESTS/powerbtn.img" "$BURROW_TMP/powerbtn.img"
cp "$BURROW_GUESTS/bootsector.img" "$BURROW_TMP/bootsector.img"
ok create lc --memory 64 --cpus 1 --disk "$BURROW_TMP/powerbtn.img" --net none
[ -f "$VMS/lc/vm.ini" ] || burrow_fail "no definition at $VMS/lc/vm.ini"
ok list --json
[ "$(jq_py '[(v["name"], v["state"], v["memory_mib"]) for v in j]')" = "[('lc', 'stopped', 64)]" ] ||
    burrow_fail "list --json: $OUT"
ok show lc --json
[ "$(jq_py 'j["disks"][0]["path"]')" = "$BURROW_TMP/powerbtn.img" ] || burrow_fail "show --json: $OUT"
ok status lc
[ "$OUT" = stopped ] || burrow_fail "status of a new VM: '$OUT'"
burrow_note "ok: create, list --json, show --json, status"

# --- refusals change nothing
before=$(tree_sum)
refuse "already exists" create lc --memory 128 --no-disk
refuse "cannot contain '/'" create a/b --no-disk
refuse "cannot start with '.'" create .hidden --no-disk
refuse "too long" create "$(printf 'x%.0s' $(seq 70))" --no-disk
refuse "--memory: '-5'" create neg --memory -5 --no-disk
refuse "--memory: '-5'" modify lc --memory -5
refuse "unknown OS type 'beos'" create os --os beos --no-disk
refuse "no VM named 'ghost'" start ghost
refuse "no-such.img" create nodisk --disk "$BURROW_TMP/no-such.img"
[ "$(tree_sum)" = "$before" ] || burrow_fail "a refused command changed the VM tree"
ok list --json
[ "$(jq_py 'len(j)')" = 1 ] || burrow_fail "refusals left VMs behind: $OUT"
burrow_note "ok: refusals changed nothing"

# --- a name with spaces and accented letters, quoted like any argument
SPACED="My Windows VM été"
ok create "$SPACED" --os win11 --no-disk --net none
[ -f "$VMS/$SPACED/vm.ini" ] || burrow_fail "no definition at $VMS/$SPACED/vm.ini"
ok list
grep -q "^$SPACED  " <<<"$OUT" || burrow_fail "list does not show '$SPACED': $OUT"
ok modify "$SPACED" --memory 96
ok show "$SPACED" --json
[ "$(jq_py '(j["name"], j["memory_mib"])')" = "('$SPACED', 96)" ] || burrow_fail "show --json: $OUT"
ok status "$SPACED"
[ "$OUT" = stopped ] || burrow_fail "status of '$SPACED': '$OUT'"
refuse "cannot start or end with a space" create " lead" --no-disk
refuse "cannot contain ','" create "a,b" --no-disk
ok delete "$SPACED"
[ ! -e "$VMS/$SPACED" ] || burrow_fail "delete left $VMS/$SPACED"
burrow_note "ok: a name with spaces and accents: create, list, modify, show, status, delete"

burrow_require_kvm
burrow_require_vm
burrow_require_file /usr/share/seabios/bios-256k.bin "install Debian's seabios"

# --- start, status, second start refused
started+=(lc)
ok start lc --headless --timeout $HANG
ok status lc --json
[ "$(jq_py 'j["state"]')" = running ] || burrow_fail "status after start: $OUT"
[ "$(jq_py '(j["display"], j.get("vnc_listen"))')" = "('headless', None)" ] ||
    burrow_fail "status after start --headless does not say headless: $OUT"
pid=$(jq_py 'j["pid"]')
kill -0 "$pid" 2>/dev/null || burrow_fail "status names pid $pid, which does not exist"
before=$(tree_sum)
refuse "already running" start lc --headless --timeout $HANG
ok status lc
[[ "$OUT" == "running (pid $pid)" ]] || burrow_fail "after a refused second start: '$OUT'"
[ "$(tree_sum)" = "$before" ] || burrow_fail "the refused start changed the VM tree"
burrow_note "ok: start --headless, status running (pid $pid), second start refused"

# --- the serial console: once two are attached at the same time (burrow-vm
# logs each client), a reset makes the guest say again, to both, that it
# waits for the button
console=$BURROW_TMP/console.out
console2=$BURROW_TMP/console2.out
vmlog=$XDG_STATE_HOME/burrow/lc.log
burrow_add_log "$console"
burrow_add_log "$console2"
burrow_add_log "$vmlog"
timeout $(( HANG * 3 )) "$CLI" console lc </dev/null >"$console" 2>&1 &
conpid=$!
burrow_wait_text "$vmlog" "serial: client connected" "$conpid"
timeout $(( HANG * 3 )) "$CLI" console lc </dev/null >"$console2" 2>&1 &
conpid2=$!
two_clients() {
    kill -0 "$conpid2" 2>/dev/null || burrow_fail "the second console ended before it was attached"
    [ "$(grep -c "serial: client connected" "$vmlog")" -ge 2 ]
}
burrow_until "second serial client" two_clients
ok reset lc
burrow_wait_text "$console" "powerbtn: waiting for the power button" "$conpid"
burrow_wait_text "$console2" "powerbtn: waiting for the power button" "$conpid2"
burrow_note "ok: two consoles at once both show the guest"

# --- pause, resume
ok pause lc
ok status lc
[[ "$OUT" == paused* ]] || burrow_fail "status after pause: '$OUT'"
refuse "paused" stop lc
ok resume lc
ok status lc
[[ "$OUT" == running* ]] || burrow_fail "status after resume: '$OUT'"
burrow_note "ok: pause, stop of a paused VM refused, resume"

# --- screenshot: PNG only (a .jpg would hold a PNG)
refuse "PNG" screenshot lc "$BURROW_TMP/shot.jpg"
[ ! -e "$BURROW_TMP/shot.jpg" ] || burrow_fail "the refused screenshot wrote $BURROW_TMP/shot.jpg"
shot=$BURROW_TMP/shot.png
b screenshot lc "$shot"
if [ "$RC" -eq 0 ]; then
    [ -s "$shot" ] || burrow_fail "screenshot succeeded but $shot is empty"
    [ "$(head -c 8 "$shot" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
        burrow_fail "$shot is not a PNG"
    burrow_note "ok: screenshot ($(stat -c %s "$shot") bytes)"
else
    help=$(python3 "$BURROW_SOURCE_DIR/tests/tools/burrow-control.py" "$RUN/lc.sock" help) ||
        burrow_fail "control help failed: $help"
    if grep -q '"name":"screenshot"' <<<"$help"; then
        burrow_fail "screenshot failed though burrow-vm has the command: $ERR"
    fi
    grep -q "cannot take screenshots" <<<"$ERR" || burrow_fail "unclear screenshot error: $ERR"
    burrow_note "note: this burrow-vm has no 'screenshot' control command; the CLI says: $ERR"
fi

# --- stop through the power button
ok stop lc --timeout $HANG
wait "$conpid" "$conpid2"
burrow_expect_text "$console" "powerbtn: pressed, entering S5"
burrow_expect_text "$console2" "powerbtn: pressed, entering S5"
ok status lc
[ "$OUT" = stopped ] || burrow_fail "status after stop: '$OUT'"
for f in lc.sock lc.pid lc.console; do
    [ ! -e "$RUN/$f" ] || burrow_fail "stop left $RUN/$f behind"
done
burrow_proc_gone "$pid" || burrow_fail "burrow-vm (pid $pid) still runs after stop"
burrow_note "ok: stop: the guest powered off; status stopped; runtime files gone"

# --- stop --force of a guest that ignores the button
ok create deaf --memory 64 --disk "$BURROW_TMP/bootsector.img" --net none
started+=(deaf)
ok start deaf --headless --timeout $HANG
ok status deaf --json
dpid=$(jq_py 'j["pid"]')
refuse "did not power off within 2 s" stop deaf --timeout 2
ok status deaf
[[ "$OUT" == running* ]] || burrow_fail "a VM that ignored the button should still run: '$OUT'"
ok stop deaf --force --timeout 2
ok status deaf
[ "$OUT" = stopped ] || burrow_fail "status after stop --force: '$OUT'"
burrow_proc_gone "$dpid" || burrow_fail "burrow-vm (pid $dpid) still runs after stop --force"
refuse "is not running" stop deaf
burrow_note "ok: stop without --force reports the timeout; stop --force ends the VM"

# --- logs, delete
ok logs lc
grep -q "starting: .*burrow-vm --name lc" <<<"$OUT" || burrow_fail "logs lack the start line: $OUT"
grep -q "guest powered off" <<<"$OUT" || burrow_fail "logs lack burrow-vm's output: $OUT"
ok delete lc
ok delete deaf
[ ! -e "$VMS/lc" ] || burrow_fail "$VMS/lc still exists"
[ ! -e "$XDG_STATE_HOME/burrow/lc.log" ] || burrow_fail "the log survived delete"
[ -f "$BURROW_TMP/powerbtn.img" ] || burrow_fail "delete removed a disk from outside the VM's directory"
ok list --json
[ "$(jq_py 'len(j)')" = 0 ] || burrow_fail "VMs left after delete: $OUT"
refuse "no VM named 'lc'" status lc
echo "PASS: burrow VM life cycle"
