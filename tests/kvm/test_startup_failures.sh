#!/bin/bash
# burrow-vm fails at start, with a message, when the system calls it needs
# for its own life fail (tests/tools/failcall.c makes them): without a
# signalfd it used to run on with SIGTERM and SIGINT blocked and never
# read, a VM no signal could stop.
# needs: kvm
# burrow-vm fails within a second or two; a run past this bound is the fault.
BURROW_VM_TIMEOUT=${BURROW_VM_TIMEOUT:-300}
. "$(dirname "$0")/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
FAILCALL_SO=$BURROW_BUILD_DIR/tests/failcall.so
[ -f "$FAILCALL_SO" ] || burrow_fail "$FAILCALL_SO is missing: build the project first"

for call in signalfd; do
    LD_PRELOAD=$FAILCALL_SO FAILCALL=$call burrow_run_vm "no-$call" --memory 64 --display none --serial none
    [ "$BURROW_STATUS" -ne 0 ] || burrow_fail "burrow-vm ran on without $call"
    grep -q "$call" "$BURROW_TMP/no-$call.err" ||
        burrow_fail "burrow-vm's message without $call does not name it: $(cat "$BURROW_TMP/no-$call.err")"
    burrow_note "ok: without $call: $(head -n 1 "$BURROW_TMP/no-$call.err") (status $BURROW_STATUS)"
done
echo "PASS: burrow-vm refuses to start without the calls it lives on"
