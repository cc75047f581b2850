#!/bin/bash
# Debian's kernel has nothing to complain about on burrow-vm: booted with
# the machine of test_boot_direct.sh (4 vCPUs, virtio-blk, -net and -rng,
# an e1000, an AHCI disk and CD/DVD drive, the VGA), its whole log (dmesg
# with levels) holds no line at warning level or worse and none matching a
# known-bad pattern (warnings, oopses, "MP-BIOS bug", timer calibration and
# TSC failures, firmware and ACPI errors, stuck interrupts, timeouts,
# failures), except those in kernel-log-allowlist.txt, each of which says
# why it is acceptable.
# needs: hwkvm
# timeout: 900
BURROW_VM_TIMEOUT=${BURROW_VM_TIMEOUT:-600}
. "$(dirname "$0")/lib.sh"
linux_init
ALLOWLIST=$BURROW_SOURCE_DIR/tests/linux/kernel-log-allowlist.txt
[ -r "$ALLOWLIST" ] || burrow_fail "$ALLOWLIST is missing"

# The log is read from the kernel's buffer (dmesg -r), not from the
# console: kernel lines printed there while the script reports would cut
# its lines in two, so the console gets none but emergencies.
cat >"$BURROW_TMP/guest.sh" <<'GUEST'
dmesg -n 1
# Let the drivers' probes finish (the CD drive's, the NICs' links).
sleep 2
dmesg -r | sed 's/^/dmesg: /'
GUEST

truncate -s 64M "$BURROW_TMP/vd.img" "$BURROW_TMP/sd.img"
truncate -s 4M "$BURROW_TMP/cd.iso"
linux_initramfs "$BURROW_TMP/initrd" "$BURROW_TMP/guest.sh" \
    virtio_pci virtio_blk virtio_net virtio-rng e1000 ahci sr_mod bochs
linux_boot log --cpus 4 --memory 512 --initrd "$BURROW_TMP/initrd" --display headless \
    --disk "$BURROW_TMP/vd.img,if=virtio,format=raw" --disk "$BURROW_TMP/sd.img,if=sata,format=raw" \
    --cdrom "$BURROW_TMP/cd.iso" --net user,model=virtio --net user,model=e1000 \
    --append quiet
linux_expect_pass

log=$BURROW_TMP/dmesg.txt
linux_guest_lines "dmesg: " >"$log"
n=$(wc -l <"$log")
[ "$n" -gt 100 ] || burrow_fail "the guest's log has only $n lines"
grep -q "^<[0-7]>" "$log" || burrow_fail "the guest's log has no levels (dmesg -r)"

# A warning's report (from "cut here" to "end trace") counts as one line:
# its WARNING: line, the rest folded in.
fold_reports() {
    awk '/------------\[ cut here \]------------/ { inrep = 1; head = ""; next }
         inrep && /---\[ end trace/ { print head " [report folded]"; inrep = 0; next }
         inrep { if (head == "" && $0 ~ /(WARNING|BUG):/) head = $0; next }
         { print }' "$1"
}
BAD='^<[0-4]>|WARNING:|BUG:|Call Trace|MP-BIOS bug|Unable to calibrate|TSC unstable|not consistent|Firmware Bug|ACPI Error|ACPI BIOS Error|irq [0-9]+: nobody cared|timeout|timed out|failed'
grep -v -e '^#' -e '^[[:space:]]*$' "$ALLOWLIST" >"$BURROW_TMP/allow.re"
fold_reports "$log" | grep -i -E "$BAD" >"$BURROW_TMP/bad.txt"
allowed=$(grep -c -E -f "$BURROW_TMP/allow.re" "$BURROW_TMP/bad.txt")
grep -v -E -f "$BURROW_TMP/allow.re" "$BURROW_TMP/bad.txt" >"$BURROW_TMP/left.txt"
if [ -s "$BURROW_TMP/left.txt" ]; then
    echo "---- the guest's log, lines at warning level or worse, or known-bad ----"
    cat "$BURROW_TMP/left.txt"
    burrow_fail "$(wc -l <"$BURROW_TMP/left.txt") lines of the guest's log are neither clean nor allowed"
fi
burrow_note "ok: $n lines of kernel log, none at warning level or known-bad but $allowed allowed ones"

echo "PASS: a clean kernel log ($n lines, $allowed allowed)"
