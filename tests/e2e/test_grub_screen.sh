#!/bin/bash
# Debian's GRUB rescue CD on the AHCI CD/DVD drive, with a VGA display: the
# GRUB menu appears on the screen (a control-socket screenshot, read with
# tesseract).  The serial-console side is tests/e2e/test_grub_cdrom.sh.
# needs: kvm
# timeout: 1200
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_cmd python3
burrow_require_cmd tesseract "install tesseract-ocr"
ISO=""
for f in /usr/lib/grub-rescue/grub-rescue-cdrom.iso /usr/share/grub-rescue/grub-rescue-cdrom.iso; do
    [ -f "$f" ] && ISO=$f && break
done
[ -n "$ISO" ] || burrow_skip "grub-rescue-cdrom.iso not found (install Debian's grub-rescue-pc)"

CLIENT=$BURROW_SOURCE_DIR/tests/tools/burrow-control.py
sock=$BURROW_TMP/control.sock
burrow_add_log "$BURROW_TMP/vm.err"
timeout -k 5 1000 "$BURROW_VM" --memory 256 --cdrom "$ISO" --boot d --display headless \
    --serial none --control "$sock" </dev/null >/dev/null 2>"$BURROW_TMP/vm.err" &
vmpid=$!
# SIGTERM: timeout passes it on to burrow-vm (SIGKILL would orphan it).
trap 'kill $vmpid 2>/dev/null; wait $vmpid 2>/dev/null; rm -rf "$BURROW_TMP"' EXIT
python3 "$CLIENT" "$sock" --greeting --connect-timeout "$BURROW_WAIT_LIMIT" >/dev/null || burrow_fail "no control socket"

# menu_shown: a screenshot, read by tesseract, shows GRUB's menu.
menu_shown() {
    kill -0 $vmpid 2>/dev/null || burrow_fail "burrow-vm ended early"
    python3 "$CLIENT" "$sock" screenshot "{\"path\":\"$BURROW_TMP/screen.png\"}" >/dev/null ||
        burrow_fail "screenshot failed"
    tesseract "$BURROW_TMP/screen.png" - 2>/dev/null >"$BURROW_TMP/screen.txt"
    grep -q "GNU GRUB" "$BURROW_TMP/screen.txt"
}
burrow_add_log "$BURROW_TMP/screen.txt"
start=$SECONDS
BURROW_WAIT_LIMIT=900 burrow_until "GRUB menu on the screen" menu_shown
burrow_note "GRUB menu on the screen after $((SECONDS - start)) s"
python3 "$CLIENT" "$sock" quit >/dev/null
wait $vmpid || burrow_fail "burrow-vm exited with $?"
echo "PASS: the GRUB menu on the VGA screen"
