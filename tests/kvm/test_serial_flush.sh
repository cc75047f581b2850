#!/bin/bash
# Nothing the guest wrote to COM1 is lost when the VM ends.  The serialburst
# guest (tests/guests/serialburst.S) writes 16 KiB straight to THR without
# waiting and at once ends the VM; every byte must reach the backend:
#   - file backend, ended by debug-exit, and by ACPI S5;
#   - stdio on a pipe whose reader takes nothing until burrow-vm waits for
#     it at exit (the rest of the burst is still in burrow-vm's buffer then);
#   - a unix socket backend with a client reading;
# and "quit" on the control socket while serialstream.img writes without end
# leaves a file that is the guest's pattern with nothing missing.
# needs: kvm
# timeout: 900
. "$(dirname "$0")/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_guest serialburst.img
burrow_require_guest serialstream.img
burrow_require_cmd python3
burrow_require_file /usr/share/seabios/bios-256k.bin "install Debian's seabios"

HELPER=$BURROW_SOURCE_DIR/tests/tools/serialburst.py
CLIENT=$BURROW_SOURCE_DIR/tests/tools/burrow-control.py
cp "$BURROW_GUESTS/serialburst.img" "$BURROW_TMP/burst.img"
cp "$BURROW_GUESTS/serialstream.img" "$BURROW_TMP/stream.img"
BURST=(--memory 64 --disk "$BURROW_TMP/burst.img,if=virtio" --display none)

# check FILE [ARGS]: the helper's verdict on what arrived.
check() {
    local why
    why=$(python3 "$HELPER" check "$@") || burrow_fail "$why"
    burrow_note "$why"
}

# --- file backend, debug-exit
serial=$BURROW_TMP/file-exit.txt
burrow_add_log "$serial"
burrow_run_vm file-exit "${BURST[@]}" --serial "file:$serial" --debug-exit
burrow_expect_status 67 "the guest's debug-exit 0x21"
check "$serial"

# --- file backend, ACPI S5 (no debug-exit device: the guest goes on to S5)
serial=$BURROW_TMP/file-s5.txt
burrow_add_log "$serial"
burrow_run_vm file-s5 "${BURST[@]}" --serial "file:$serial"
burrow_expect_status 0 "the guest's ACPI power-off"
check "$serial"

# --- stdio on a pipe read only once burrow-vm waits for it at exit: the
# pipe holds a page, the rest of the burst waits in burrow-vm's buffer.
out=$BURROW_TMP/stdio.txt
burrow_add_log "$out.err"
burrow_note "run: burrow-vm ${BURST[*]} --serial stdio --debug-exit (slow reader)"
BURROW_STATUS=0
python3 "$HELPER" slow-reader "$out" -- timeout -k 10 "$BURROW_VM_TIMEOUT" \
    "$BURROW_VM" "${BURST[@]}" --serial stdio --debug-exit || BURROW_STATUS=$?
burrow_expect_status 67 "the guest's debug-exit 0x21"
grep -q "serial: waiting for the reader" "$out.err" ||
    burrow_fail "burrow-vm did not wait for the pipe's reader (was the burst buffered at all?)"
check "$out"

# --- unix socket backend, a client reading, ACPI S5.  Output with no client
# is dropped, so the client is started first; it connects while the
# firmware starts, well before the guest writes.
sock=$BURROW_TMP/serial.sock
out=$BURROW_TMP/unix.txt
python3 "$HELPER" unix-reader "$sock" "$out" "$BURROW_TMP/reader.ready" \
    --timeout "$BURROW_VM_TIMEOUT" &
reader=$!
reader_ready() {
    kill -0 $reader 2>/dev/null || burrow_fail "the unix socket client did not start"
    [ -e "$BURROW_TMP/reader.ready" ]
}
burrow_until "start of the unix socket client" reader_ready
burrow_run_vm unix-s5 "${BURST[@]}" --serial "unix:$sock"
wait $reader || burrow_fail "the unix socket client failed"
burrow_expect_status 0 "the guest's ACPI power-off"
check "$out"

# --- quit on the control socket while the guest writes
serial=$BURROW_TMP/quit.txt
ctl=$BURROW_TMP/control.sock
burrow_add_log "$BURROW_TMP/quit.err"
timeout -k 10 "$BURROW_VM_TIMEOUT" "$BURROW_VM" --memory 64 --display none \
    --disk "$BURROW_TMP/stream.img,if=virtio" --serial "file:$serial" --control "$ctl" \
    </dev/null >/dev/null 2>"$BURROW_TMP/quit.err" &
vmpid=$!
trap 'kill $vmpid 2>/dev/null; wait $vmpid 2>/dev/null; rm -rf "$BURROW_TMP"' EXIT
# Until the guest has written 16 KiB (and the firmware its lines, < 2 KiB).
written_16k() {
    kill -0 $vmpid 2>/dev/null || burrow_fail "burrow-vm ended before the guest wrote"
    [ "$(stat -c %s "$serial" 2>/dev/null || echo 0)" -gt 18432 ]
}
burrow_until "16 KiB from the guest" written_16k
reply=$(python3 "$CLIENT" "$ctl" quit --timeout 60) || burrow_fail "quit failed: $reply"
status=0
wait $vmpid || status=$?
[ "$status" -eq 0 ] || burrow_fail "burrow-vm exited with $status after quit, expected 0"
check "$serial" --stream --min 16384

echo "PASS: every byte the guest wrote reached the file, stdio and unix backends"
