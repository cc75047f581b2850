#!/bin/bash
# burrow-vm's seccomp sandbox (vmm/sandbox.c):
#  1. a bad --sandbox value is refused, naming the values;
#  2. by default (but in sanitizer builds), a running VM has the filter, with no-new-privs, on every
#     thread (/proc/PID/task/*/status: Seccomp 2, NoNewPrivs 1), the VNC
#     server's thread included, and still quits cleanly (status 0, no
#     sandbox message): the way out is on the list too;
#  3. with --sandbox off there is no filter of its own (Seccomp 0);
#  4. a system call off the list ends the VM: tests/tools/forbidden.so
#     makes one (acct) once the test creates its trigger file, and the VM
#     ends with a non-zero status and a line naming the call in its log.
# The control socket's greeting comes from the I/O loop, which runs only
# once the filter is on: after it, the checks never race the set-up.
# needs: kvm
# timeout: 900
. "$(dirname "$0")/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_cmd python3
FIRMWARE=/usr/share/seabios/bios-256k.bin
burrow_require_file "$FIRMWARE" "install the seabios package"
burrow_require_guest powerbtn.img
FORBIDDEN_SO=$BURROW_BUILD_DIR/tests/forbidden.so
[ -f "$FORBIDDEN_SO" ] || burrow_fail "$FORBIDDEN_SO is missing: build the project first"

CLIENT=$BURROW_SOURCE_DIR/tests/tools/burrow-control.py
tmp=$BURROW_TMP
tpid=
cleanup() {
    [ -n "$tpid" ] && burrow_kill_tree "$tpid"
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The test's own confinement (a container may have filters of its own).
own_mode=$(awk '$1 == "Seccomp:" { print $2 }' /proc/$$/status)
[ -n "$own_mode" ] || burrow_skip "this kernel shows no Seccomp line in /proc/PID/status"
own_filters=$(awk '$1 == "Seccomp_filters:" { print $2 }' /proc/$$/status)

# start_vm NAME ARGS...: a VM in the background (timeout's pid in tpid,
# burrow-vm's in vmpid), returned once its control socket has greeted;
# vm_env holds VAR=VALUE words for burrow-vm's environment alone.
vm_env=()
start_vm() {
    local name=$1
    shift
    sock=$tmp/$name.sock
    err=$tmp/$name.err
    burrow_add_log "$err"
    cp "$BURROW_GUESTS/powerbtn.img" "$tmp/$name.img"
    burrow_note "run: burrow-vm $*"
    timeout -k 10 "$BURROW_VM_TIMEOUT" env "${vm_env[@]}" "$BURROW_VM" --name "sandbox-$name" --memory 64 \
        --firmware "$FIRMWARE" --serial none --disk "$tmp/$name.img,if=virtio" \
        --control "$sock" "$@" </dev/null >/dev/null 2>"$err" &
    tpid=$!
    python3 "$CLIENT" "$sock" --greeting --connect-timeout "$BURROW_WAIT_LIMIT" >/dev/null ||
        burrow_fail "$name: no greeting on the control socket"
    vmpid=$(pgrep -P "$tpid" -x burrow-vm)
    [ -n "$vmpid" ] || burrow_fail "$name: no burrow-vm under timeout (pid $tpid)"
}

# status_field PID TID FIELD
status_field() {
    awk -v f="$3:" '$1 == f { print $2 }' "/proc/$1/task/$2/status" 2>/dev/null
}

# expect_threads FIELD VALUE: every thread of vmpid shows it (one that
# ended meanwhile, an io_uring worker say, is passed over).
expect_threads() {
    local tid n=0 v
    for tid in $(ls "/proc/$vmpid/task"); do
        v=$(status_field "$vmpid" "$tid" "$1")
        [ -n "$v" ] || [ -e "/proc/$vmpid/task/$tid" ] || continue
        [ "$v" = "$2" ] ||
            burrow_fail "thread $tid ($(cat "/proc/$vmpid/task/$tid/comm")) of burrow-vm shows $1 '$v', expected $2"
        n=$((n + 1))
    done
    threads=$n
}

quit_vm() {
    python3 "$CLIENT" "$sock" quit >/dev/null || burrow_fail "quit failed"
    status=0
    wait "$tpid" || status=$?
    tpid=
}

# Sanitizer builds leave the sandbox off unless asked (see --help): ask,
# without the leak check at exit, which needs ptrace.
sandbox_default=$("$BURROW_VM" --help | sed -n 's/.*(seccomp; default \([a-z]*\)).*/\1/p')
case $sandbox_default in
on) on_args=() ;;
off)
    burrow_note "note: this build leaves the sandbox off by default (sanitizers): asking for it"
    on_args=(--sandbox on)
    vm_env=("ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0")
    ;;
*) burrow_fail "burrow-vm --help does not give the sandbox's default" ;;
esac

# --- 1. bad value
burrow_run_vm bad --sandbox maybe
burrow_expect_status 1 "bad --sandbox value"
burrow_expect_text "$BURROW_TMP/bad.err" "--sandbox must be on or off, not 'maybe'"
echo "ok: --sandbox maybe refused"

# --- 2. on by default, on every thread, and a clean way out
start_vm on "${on_args[@]}" --display "vnc:127.0.0.1:$(free_port)"
expect_threads Seccomp 2
expect_threads NoNewPrivs 1
# The I/O thread, the vCPU, the VNC server's: all started before the filter.
[ "$threads" -ge 3 ] || burrow_fail "burrow-vm has $threads threads, expected at least 3"
if [ -n "$own_filters" ]; then
    expect_threads Seccomp_filters $((own_filters + 1))
fi
quit_vm
[ "$status" -eq 0 ] || burrow_fail "burrow-vm with its sandbox exited with status $status after quit"
burrow_expect_no_text "$tmp/on.err" "sandbox"
echo "ok: sandbox on all $threads threads (Seccomp 2, NoNewPrivs 1), clean quit"

# --- 3. off
start_vm off --sandbox off --display headless
if [ -n "$own_filters" ]; then
    expect_threads Seccomp_filters "$own_filters"
fi
expect_threads Seccomp "$own_mode"
[ "$own_mode" = 0 ] || burrow_note "note: this test runs confined itself (Seccomp $own_mode)"
quit_vm
[ "$status" -eq 0 ] || burrow_fail "burrow-vm --sandbox off exited with status $status after quit"
echo "ok: --sandbox off: no filter of its own (Seccomp $own_mode)"

# --- 4. a forbidden call ends the VM, saying which
trigger=$tmp/trigger
vm_env+=("LD_PRELOAD=$FORBIDDEN_SO" "FORBIDDEN_TRIGGER=$trigger")
start_vm forbidden "${on_args[@]}" --display headless
touch "$trigger"
vm_ended() {
    tr -d '\r' <"$err" | grep -q "^forbidden: acct returned" &&
        burrow_fail "acct ran in burrow-vm: $(grep '^forbidden:' "$err")"
    ! kill -0 "$vmpid" 2>/dev/null
}
burrow_until "end of burrow-vm after its forbidden call" vm_ended
status=0
wait "$tpid" || status=$?
tpid=
[ "$status" -ne 0 ] || burrow_fail "burrow-vm exited with status 0 after a forbidden call"
[ "$status" -ne 124 ] && [ "$status" -ne 137 ] || burrow_fail "burrow-vm was killed by the timeout"
burrow_expect_prefix "$err" "burrow-vm: error: sandbox: the system call acct ("
burrow_expect_text "$err" ") is not allowed; ending (run with --sandbox off to debug)"
echo "ok: acct ended burrow-vm (status $status): $(grep 'sandbox:' "$err")"

echo "PASS: burrow-vm's sandbox is on by default, on every thread, and stops a forbidden call"
