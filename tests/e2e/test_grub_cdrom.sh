#!/bin/bash
# Debian's GRUB rescue CD (package grub-rescue-pc) in the AHCI CD/DVD drive,
# booted with --boot d: SeaBIOS's AHCI/ATAPI driver finds the drive, boots
# the El Torito image, and GRUB (through the BIOS disk services, which SeaBIOS
# turns into ATAPI READ(10) packets) loads its modules and configuration from
# the ISO 9660 file system and shows its menu.  With no display, SeaBIOS's
# serial console carries the menu to COM1.  The VM runs on in the menu, so
# the script stops it once the text is there; the limit only bounds a hang
# (GRUB reads its modules through real-mode BIOS calls, slow where KVM is
# nested).
# needs: kvm
# timeout: 1200
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_file /usr/share/seabios/bios-256k.bin "install seabios"
ISO=/usr/lib/grub-rescue/grub-rescue-cdrom.iso
[ -f "$ISO" ] || ISO=/usr/share/grub-rescue/grub-rescue-cdrom.iso
burrow_require_file "$ISO" "install grub-rescue-pc"
SERIAL=$BURROW_TMP/serial.txt
FWLOG=$BURROW_TMP/firmware.log
ERR=$BURROW_TMP/vm.err
burrow_add_log "$FWLOG"
burrow_add_log "$ERR"
: >"$SERIAL"
LIMIT=${BURROW_GRUB_TIMEOUT:-1000}
burrow_note "run: burrow-vm --cdrom $ISO --boot d (up to $LIMIT s for the GRUB menu)"
"$BURROW_VM" --memory 256 --cdrom "$ISO" --boot d --display none \
    --serial "file:$SERIAL" --firmware-log "$FWLOG" </dev/null >"$BURROW_TMP/vm.out" 2>"$ERR" &
VM=$!
start=$SECONDS
found=0
while (( SECONDS - start < LIMIT )); do
    # GRUB draws through SeaBIOS's serial console, which breaks lines with
    # cursor movements (where, depends on the machine's speed): match the
    # text with them taken out.
    if tr -d '\r' <"$SERIAL" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' | tr -d '\n' |
        grep -aq "GNU GRUB *version" &&
        grep -aq "will be executed automatically" "$SERIAL"; then
        found=1
        break
    fi
    kill -0 "$VM" 2>/dev/null || break
    sleep 0.5
done
elapsed=$((SECONDS - start))
if kill -0 "$VM" 2>/dev/null; then
    kill "$VM"
    wait "$VM" 2>/dev/null
    status=running
else
    wait "$VM"
    status="exited with $?"
fi
# The serial console is full of cursor movement: show it as plain text.
tr -d '\r' <"$SERIAL" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' >"$BURROW_TMP/serial.txt.plain"
burrow_add_log "$BURROW_TMP/serial.txt.plain"
[ "$found" = 1 ] || burrow_fail "no GRUB menu on the serial console after $elapsed s (burrow-vm $status)"
[ "$status" = running ] || burrow_fail "burrow-vm $status while showing the menu"
burrow_expect_text "$FWLOG" "BURROW CD-ROM"
burrow_expect_text "$FWLOG" "Booting from DVD/CD"
burrow_expect_no_text "$ERR" "guest error"
echo "PASS: GRUB's menu from the rescue CD on the AHCI CD drive after $elapsed s"
