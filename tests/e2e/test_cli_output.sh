#!/bin/bash
# What `burrow` prints, without running a VM: `list` sizes its columns to
# the longest entry.
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
CLI=${BURROW_CLI:-$BURROW_BUILD_DIR/burrow}
[ -x "$CLI" ] || burrow_fail "$CLI is missing: build the project first"
"$CLI" create --help >/dev/null 2>&1 || burrow_fail "$CLI has no VM commands ('burrow create --help' fails)"
burrow_require_cmd python3
export XDG_DATA_HOME=$BURROW_TMP/data XDG_STATE_HOME=$BURROW_TMP/state XDG_RUNTIME_DIR=$BURROW_TMP/run

# b ARGS...: runs burrow; stdout in $OUT, stderr in $ERR, status in $RC.
b() {
    RC=0
    timeout 60 "$CLI" "$@" >"$BURROW_TMP/out" 2>"$BURROW_TMP/err" </dev/null || RC=$?
    OUT=$(cat "$BURROW_TMP/out")
    ERR=$(cat "$BURROW_TMP/err")
}
ok() {
    b "$@"
    [ "$RC" -eq 0 ] || burrow_fail "burrow $* exited $RC: $ERR"
}

# --- list: columns as wide as their longest entry
long=$(printf 'n%.0s' $(seq 64))
ok create a --memory 64 --no-disk --net none
ok create "$long" --os win11 --memory 64 --no-disk --net none
ok create "mid-sized-name-of-a-vm" --memory 128 --no-disk --net none
ok list
python3 - "$OUT" <<'PY' || burrow_fail "list columns do not line up: $OUT"
import re, sys
lines = sys.argv[1].split("\n")
head = lines[0]
starts = [m.start() for m in re.finditer(r"\S+", head)]
ends = [m.end() for m in re.finditer(r"\S+", head)]
assert head.split() == ["NAME", "STATE", "OS", "MEMORY", "CPUS"], head
for line in lines[1:]:
    # NAME, STATE and OS start where their headers start; MEMORY and CPUS
    # end where theirs end.
    fields = [(m.start(), m.end()) for m in re.finditer(r"\S+( MiB)?", line)]
    assert len(fields) == 5, line
    for i in range(3):
        assert fields[i][0] == starts[i], (line, i)
    assert fields[3][1] == ends[3] and fields[4][1] == ends[4], line
PY
burrow_note "ok: list columns line up with a ${#long}-character name"
echo "PASS: burrow's output"
