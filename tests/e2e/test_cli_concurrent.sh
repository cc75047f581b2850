#!/bin/bash
# Two processes modifying the same VM at once leave a valid definition with
# both changes (each edit is a locked read-modify-write, each write atomic):
# one loop sets the memory, another the CPU count, a third reads the
# definition the whole time and must never see a torn or invalid file.
# Then two creates of one name race: exactly one wins.
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
CLI=${BURROW_CLI:-$BURROW_BUILD_DIR/burrow}
[ -x "$CLI" ] || burrow_fail "$CLI is missing: build the project first"
"$CLI" create --help >/dev/null 2>&1 || burrow_fail "$CLI has no VM commands ('burrow create --help' fails)"
burrow_require_cmd python3
export XDG_DATA_HOME=$BURROW_TMP/data XDG_STATE_HOME=$BURROW_TMP/state XDG_RUNTIME_DIR=$BURROW_TMP/run
VMS=$XDG_DATA_HOME/burrow/vms
N=25

"$CLI" create cc --memory 64 --cpus 1 --no-disk --net none >/dev/null ||
    burrow_fail "create failed"

memory_loop() {
    local i
    for i in $(seq $N); do
        "$CLI" modify cc --memory $((100 + i)) 2>>"$BURROW_TMP/mem.err" || { echo "memory $i failed" >>"$BURROW_TMP/fail"; }
    done
}
cpus_loop() {
    local i
    for i in $(seq $N); do
        "$CLI" modify cc --cpus $((i % 8 + 1)) 2>>"$BURROW_TMP/cpu.err" || { echo "cpus $i failed" >>"$BURROW_TMP/fail"; }
    done
}
reader_loop() {
    while [ ! -e "$BURROW_TMP/done" ]; do
        out=$("$CLI" show cc --json 2>&1) || { echo "show failed: $out" >>"$BURROW_TMP/fail"; continue; }
        python3 -c 'import json,sys; j=json.loads(sys.argv[1]); assert j["name"]=="cc"' "$out" 2>/dev/null ||
            echo "show gave: $out" >>"$BURROW_TMP/fail"
    done
}

reader_loop &
reader=$!
memory_loop &
m=$!
cpus_loop &
c=$!
wait $m
wait $c
touch "$BURROW_TMP/done"
wait $reader
if [ -s "$BURROW_TMP/fail" ]; then
    burrow_fail "concurrent runs failed: $(head -n 5 "$BURROW_TMP/fail"; cat "$BURROW_TMP/mem.err" "$BURROW_TMP/cpu.err" 2>/dev/null | head -n 5)"
fi

out=$("$CLI" show cc --json) || burrow_fail "show after the race: $out"
got=$(python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["memory_mib"], j["cpus"])' "$out")
[ "$got" = "$((100 + N)) $((N % 8 + 1))" ] ||
    burrow_fail "lost update: memory and cpus are '$got', expected '$((100 + N)) $((N % 8 + 1))'"
leftovers=$(find "$VMS/cc" -name '.*')
[ -z "$leftovers" ] || burrow_fail "temporary files left behind: $leftovers"
burrow_note "ok: $N + $N concurrent modifications, both final values kept, reads never torn"

# --- racing creates of one name
for i in 1 2 3; do
    ( "$CLI" create racer --memory $((64 * i)) --no-disk --net none >/dev/null 2>"$BURROW_TMP/race$i.err"
      echo $? >"$BURROW_TMP/race$i.rc" ) &
done
wait
wins=0
for i in 1 2 3; do
    rc=$(cat "$BURROW_TMP/race$i.rc")
    if [ "$rc" -eq 0 ]; then
        wins=$((wins + 1))
    else
        grep -q "already exists" "$BURROW_TMP/race$i.err" || burrow_fail "losing create: $(cat "$BURROW_TMP/race$i.err")"
    fi
done
[ "$wins" -eq 1 ] || burrow_fail "$wins of 3 racing creates succeeded"
"$CLI" show racer >/dev/null || burrow_fail "the winning VM does not load"
burrow_note "ok: three racing creates: one won, two were refused"
echo "PASS: concurrent modifications leave a valid definition"
