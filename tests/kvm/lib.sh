# shellcheck shell=bash
# Shared shell functions for the KVM and end-to-end test scripts; source it:
#     . "$(dirname "$0")/../kvm/lib.sh"
#     burrow_init
# Conventions: exit 0 passed, 1 failed, 77 skipped (the reason is printed
# first).  Every burrow-vm run has a hard timeout.  Tests wait for events (a
# line in a file, a state, a process gone), never for a guessed time; the
# limits only bound a hang, and are generous, since tests also run inside
# the nested KVM helper, about ten times slower than a desktop.

set -u

# Seconds a single burrow-vm run may take before it is killed: a safety net
# beyond any test's own limit (tests keep VMs running while they work).
BURROW_VM_TIMEOUT=${BURROW_VM_TIMEOUT:-1800}
# Seconds one wait for an event may take before the test fails.
BURROW_WAIT_LIMIT=${BURROW_WAIT_LIMIT:-300}

burrow_skip() {
    echo "SKIP: $*"
    exit 77
}

burrow_fail() {
    echo "FAIL: $*"
    burrow_dump_logs
    exit 1
}

burrow_note() {
    echo "$*"
}

# Files shown when a test fails (serial output, stderr, firmware log).
BURROW_LOGS=()
burrow_add_log() {
    BURROW_LOGS+=("$1")
}

burrow_dump_logs() {
    local f
    for f in "${BURROW_LOGS[@]+"${BURROW_LOGS[@]}"}"; do
        [ -s "$f" ] || continue
        echo "---- $(basename "$f") (last 40 lines) ----"
        tail -n 40 "$f" | tr -d '\r'
    done
}

# Sets BURROW_BUILD_DIR, BURROW_SOURCE_DIR, BURROW_VM (the burrow-vm
# binary), BURROW_GUESTS (project-built guest images) and BURROW_TMP (a
# private directory removed when the script exits).
burrow_init() {
    local here
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    BURROW_SOURCE_DIR=${BURROW_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
    if [ -z "${BURROW_BUILD_DIR:-}" ]; then
        BURROW_BUILD_DIR=$BURROW_SOURCE_DIR/build
    fi
    [ -d "$BURROW_BUILD_DIR" ] || burrow_fail "build directory $BURROW_BUILD_DIR not found (set BURROW_BUILD_DIR)"
    BURROW_VM=$BURROW_BUILD_DIR/burrow-vm
    BURROW_GUESTS=$BURROW_BUILD_DIR/tests/guests
    BURROW_TMP=$(mktemp -d "${TMPDIR:-/tmp}/burrow-test.XXXXXX") || burrow_fail "mktemp failed"
    trap 'burrow_stop_vm; rm -rf "$BURROW_TMP"' EXIT
}

# KVM is never a reason to skip: tests that need it say "# needs: kvm" (or
# "hwkvm") and ctest runs them through tests/nested/with-kvm, natively or
# inside the nested KVM helper.  Run by hand on a host whose KVM cannot run
# them, they fail and say how to run them.  The check never creates or
# changes anything under /dev (a bash "exec 3<>/dev/kvm" would create it).
burrow_require_kvm() {
    local probe
    probe=$(python3 "$BURROW_SOURCE_DIR/tests/nested/kvm-probe") ||
        burrow_fail "KVM cannot run this test here ($probe); run it as tests/nested/with-kvm --needs kvm -- bash $0"
    BURROW_KVM_KIND=$probe
}

# KVM on VMX/SVM, as a Linux kernel or iPXE needs (PVM cannot run them).
burrow_require_hwkvm() {
    burrow_require_kvm
    [ "$BURROW_KVM_KIND" = hardware ] ||
        burrow_fail "this test needs KVM on VMX/SVM, this host's is $BURROW_KVM_KIND; run it as tests/nested/with-kvm --needs hwkvm -- bash $0"
}

# The binary is part of the build: its absence is a failure, not a skip.
burrow_require_vm() {
    [ -x "$BURROW_VM" ] || burrow_fail "$BURROW_VM is missing: build the project first"
}

# A project-built guest image (part of the build, so missing = failure).
burrow_require_guest() {
    [ -f "$BURROW_GUESTS/$1" ] || burrow_fail "guest image $BURROW_GUESTS/$1 is missing: build the project first"
}

# Something installed from a package at run time (firmware, tools).
burrow_require_file() {
    [ -e "$1" ] || burrow_skip "$1 not found (${2:-install its package})"
}

burrow_require_cmd() {
    command -v "$1" >/dev/null 2>&1 || burrow_skip "$1 not found (${2:-install its package})"
}

# burrow_hang_watch TIMEOUT_PID NAME: in the background, shortly before
# timeout(1) (TIMEOUT_PID) ends a hung burrow-vm, writes where each of its
# threads waits to $BURROW_TMP/NAME.hang (state, kernel wait channel and
# system call, and stacks when gdb is there), so that a hang is told from
# a slow guest.  Prints the watcher's pid; kill it once the VM ended.  (The
# caller adds NAME.hang to the logs: this runs in a command substitution.)
burrow_hang_watch() {
    local tpid=$1 out=$BURROW_TMP/$2.hang
    (
        sleep $((BURROW_VM_TIMEOUT > 20 ? BURROW_VM_TIMEOUT - 10 : BURROW_VM_TIMEOUT / 2)) &
        s=$!
        trap 'kill $s 2>/dev/null; exit 0' TERM
        wait $s
        vm=$(pgrep -P "$tpid" 2>/dev/null | head -n 1)
        [ -n "$vm" ] || exit 0
        {
            echo "burrow-vm (pid $vm) still running; its threads:"
            for t in /proc/"$vm"/task/*; do
                echo "  $(cat "$t/comm" 2>/dev/null): state $(awk '{ print $3 }' "$t/stat" 2>/dev/null)," \
                    "wchan $(cat "$t/wchan" 2>/dev/null), syscall $(cut -d' ' -f1 "$t/syscall" 2>/dev/null)"
            done
            if command -v gdb >/dev/null 2>&1; then
                timeout 60 gdb -p "$vm" -batch -ex "thread apply all bt 12" 2>/dev/null | grep -E '^(Thread|#)'
            fi
        } >"$out" 2>&1
    ) >/dev/null 2>&1 &
    echo $!
}

# burrow_run_vm NAME ARGS...: runs burrow-vm under a hard timeout with
# stdout and stderr in $BURROW_TMP/NAME.out and NAME.err; the exit status
# goes to BURROW_STATUS.  A run killed by the timeout fails the test.
burrow_run_vm() {
    local name=$1
    shift
    local out=$BURROW_TMP/$name.out err=$BURROW_TMP/$name.err
    burrow_add_log "$out"
    burrow_add_log "$err"
    burrow_note "run: burrow-vm $*"
    local start=$SECONDS
    BURROW_STATUS=0
    timeout -k 10 "$BURROW_VM_TIMEOUT" "$BURROW_VM" "$@" </dev/null >"$out" 2>"$err" &
    local vm=$! watch
    burrow_add_log "$BURROW_TMP/$name.hang"
    watch=$(burrow_hang_watch "$vm" "$name")
    wait "$vm" || BURROW_STATUS=$?
    kill "$watch" 2>/dev/null
    burrow_note "     exit status $BURROW_STATUS after $((SECONDS - start)) s"
    if [ "$BURROW_STATUS" -eq 124 ] || [ "$BURROW_STATUS" -eq 137 ]; then
        burrow_fail "burrow-vm did not finish within $BURROW_VM_TIMEOUT s"
    fi
}

# burrow_start_vm NAME ARGS...: burrow-vm in the background under the hard
# timeout, stdout and stderr in $BURROW_TMP/NAME.out and NAME.err, its pid
# in VM_PID.  burrow_stop_vm ends it; so does the test's exit.
VM_PID=
burrow_start_vm() {
    local name=$1
    shift
    burrow_add_log "$BURROW_TMP/$name.err"
    burrow_note "run: burrow-vm $*"
    timeout -k 5 "$BURROW_VM_TIMEOUT" "$BURROW_VM" "$@" \
        </dev/null >"$BURROW_TMP/$name.out" 2>"$BURROW_TMP/$name.err" &
    VM_PID=$!
}

burrow_stop_vm() {
    [ -n "$VM_PID" ] || return 0
    kill "$VM_PID" 2>/dev/null
    wait "$VM_PID" 2>/dev/null
    VM_PID=
}

burrow_expect_status() {
    [ "$BURROW_STATUS" -eq "$1" ] || burrow_fail "burrow-vm exited with status $BURROW_STATUS, expected $1${2:+ ($2)}"
}

# burrow_expect_line FILE TEXT: some line of FILE (CR stripped) is exactly TEXT.
burrow_expect_line() {
    tr -d '\r' <"$1" | grep -qxF -- "$2" || burrow_fail "$(basename "$1") has no line \"$2\""
}

# burrow_expect_prefix FILE TEXT: some line of FILE starts with TEXT.
burrow_expect_prefix() {
    tr -d '\r' <"$1" | P=$2 awk 'index($0, ENVIRON["P"]) == 1 { found = 1 } END { exit !found }' ||
        burrow_fail "$(basename "$1") has no line starting with \"$2\""
}

# burrow_expect_text FILE TEXT: TEXT appears somewhere in FILE.
burrow_expect_text() {
    tr -d '\r' <"$1" | grep -qF -- "$2" || burrow_fail "$(basename "$1") does not contain \"$2\""
}

# burrow_expect_no_text FILE TEXT
burrow_expect_no_text() {
    if tr -d '\r' <"$1" | grep -qF -- "$2"; then
        burrow_fail "$(basename "$1") contains \"$2\": $(tr -d '\r' <"$1" | grep -F -- "$2" | head -n 3)"
    fi
}

# burrow_until WHAT COMMAND...: runs COMMAND every 0.2 s until it succeeds;
# fails the test with "no WHAT" after $BURROW_WAIT_LIMIT s.  COMMAND may
# call burrow_fail itself (say, when the VM it waits on has ended).
burrow_until() {
    local what=$1 end=$(( SECONDS + BURROW_WAIT_LIMIT ))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$end" ] || burrow_fail "no $what after $BURROW_WAIT_LIMIT s"
        sleep 0.2
    done
}

# burrow_wait_text FILE TEXT [PID]: until FILE holds TEXT (a fixed string,
# CRs ignored); fails early when process PID has ended without it.
burrow_wait_text() {
    burrow_until "\"$2\" in $(basename "$1")" _burrow_has_text "$@"
}
_burrow_has_text() {
    tr -d '\r' <"$1" 2>/dev/null | grep -aqF -- "$2" && return 0
    [ -z "${3:-}" ] || kill -0 "$3" 2>/dev/null ||
        burrow_fail "process $3 ended before \"$2\" was in $(basename "$1")"
    return 1
}

# burrow_kill_tree PID: SIGKILL to PID's children, then PID: a VM started
# as "timeout ... burrow-vm &" outlives a timeout killed on its own.
burrow_kill_tree() {
    pkill -9 -P "$1" 2>/dev/null
    kill -9 "$1" 2>/dev/null
}

# burrow_proc_gone PID: true once PID has ended (a zombie waiting for its
# parent to reap it counts), false after $BURROW_WAIT_LIMIT s.
burrow_proc_gone() {
    local st end=$(( SECONDS + BURROW_WAIT_LIMIT ))
    while [ "$SECONDS" -lt "$end" ]; do
        kill -0 "$1" 2>/dev/null || return 0
        st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
        [ "$st" = Z ] || [ "$st" = X ] && return 0
        sleep 0.1
    done
    return 1
}

# burrow_listen SOCKET OUT ARGS...: a control client in the background
# that prints the greeting, then the events ARGS ask for (--events N,
# --wait-event NAME) to OUT; returns once it is connected (its greeting is
# in OUT), so no event it waits for can pass it by.  Its pid is in
# BURROW_LISTENER.
burrow_listen() {
    local sock=$1 out=$2
    shift 2
    python3 "$BURROW_SOURCE_DIR/tests/tools/burrow-control.py" "$sock" --greeting "$@" \
        --connect-timeout "$BURROW_WAIT_LIMIT" --timeout "$BURROW_WAIT_LIMIT" >"$out" 2>&1 &
    BURROW_LISTENER=$!
    burrow_wait_text "$out" '"burrow"' "$BURROW_LISTENER"
}

# CRC-32 (the zlib/IEEE one) of a file, as 0x%08x.
burrow_crc32() {
    python3 -c 'import sys, zlib; print("0x%08x" % zlib.crc32(open(sys.argv[1], "rb").read()))' "$1"
}

# burrow_pa_start: a private PulseAudio server for the test, in
# $BURROW_TMP/pa, with nothing of the user's or the system's configuration:
# null sinks burrow_out (the VM plays there; parec records
# burrow_out.monitor) and burrow_mic (a tone played there reaches the VM's
# microphone through burrow_mic.monitor), no rewinds (a null sink that
# rewinds holds its monitor's data back by 2 s), its socket in that folder,
# at high priority where it may, but not real-time: PulseAudio caps its
# real-time threads' CPU time (RLIMIT_RTTIME), and in the slow nested
# helper a sink's thread runs past the cap and is killed.  BURROW_PA_SERVER is its address
# (for --audio pa,server=...), BURROW_PA_PID its pid; burrow_pa CMD... runs a
# PulseAudio tool against it, burrow_pa_stop ends it (the caller's cleanup
# calls it).  Called again after burrow_pa_stop, it starts the server anew
# on the same socket.  BURROW_PA_VERBOSE=1: the server logs at debug level
# to $BURROW_TMP/pa/pa.log.
BURROW_PA_PID=
burrow_pa_start() {
    command -v pulseaudio >/dev/null 2>&1 && command -v parec >/dev/null 2>&1 ||
        burrow_fail "pulseaudio or its tools are missing: packaging/install-deps.sh installs pulseaudio and pulseaudio-utils"
    BURROW_PA_DIR=$BURROW_TMP/pa
    BURROW_PA_SERVER=unix:$BURROW_PA_DIR/native
    mkdir -p "$BURROW_PA_DIR/runtime" "$BURROW_PA_DIR/state" "$BURROW_PA_DIR/config"
    cat >"$BURROW_PA_DIR/test.pa" <<PA
load-module module-null-sink sink_name=burrow_out rate=48000 channels=2 norewinds=1
load-module module-null-sink sink_name=burrow_mic rate=48000 channels=2 norewinds=1
load-module module-native-protocol-unix socket=$BURROW_PA_DIR/native auth-anonymous=1
PA
    rm -f "$BURROW_PA_DIR/native"
    burrow_add_log "$BURROW_PA_DIR/pa.log"
    # (env, not the function: $! must be the server's own pid)
    _burrow_pa_env
    "${BURROW_PA_ENV[@]}" pulseaudio --daemonize=no -n --exit-idle-time=-1 --use-pid-file=no --system=no \
        --realtime=no --high-priority=yes --disallow-exit=yes --log-target=stderr --log-time=1 \
        ${BURROW_PA_VERBOSE:+-vv} \
        --file="$BURROW_PA_DIR/test.pa" </dev/null >>"$BURROW_PA_DIR/pa.log" 2>&1 &
    BURROW_PA_PID=$!
    burrow_until "answer from the PulseAudio server" _burrow_pa_answers
}
_burrow_pa_answers() {
    kill -0 "$BURROW_PA_PID" 2>/dev/null || burrow_fail "pulseaudio ended at start"
    burrow_pa pactl info >/dev/null 2>&1
}

_burrow_pa_env() {
    BURROW_PA_ENV=(env -u DISPLAY -u DBUS_SESSION_BUS_ADDRESS HOME="$BURROW_PA_DIR"
        XDG_CONFIG_HOME="$BURROW_PA_DIR/config" XDG_RUNTIME_DIR="$BURROW_PA_DIR/runtime"
        PULSE_RUNTIME_PATH="$BURROW_PA_DIR/runtime" PULSE_STATE_PATH="$BURROW_PA_DIR/state"
        PULSE_SERVER="$BURROW_PA_SERVER")
}

burrow_pa() {
    _burrow_pa_env
    "${BURROW_PA_ENV[@]}" "$@"
}

burrow_pa_stop() {
    [ -n "$BURROW_PA_PID" ] || return 0
    kill "$BURROW_PA_PID" 2>/dev/null
    wait "$BURROW_PA_PID" 2>/dev/null
    BURROW_PA_PID=
}
