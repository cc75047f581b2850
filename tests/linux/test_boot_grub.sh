#!/bin/bash
# The path an installer CD takes: SeaBIOS boots GRUB from a grub-mkrescue
# ISO in the SATA CD/DVD drive (--cdrom, --boot d), GRUB reads Debian's
# kernel and a test initramfs from the CD's ISO 9660 file system and boots
# them, and the guest's init runs.  GRUB talks on the serial port; the
# guest then mounts the same CD through Linux's ahci, sr_mod and isofs and
# finds the kernel it was booted from there.
# needs: hwkvm
# timeout: 900
. "$(dirname "$0")/lib.sh"
linux_init
BURROW_VM_TIMEOUT=600
burrow_require_cmd grub-mkrescue "packaging/install-deps.sh installs grub-pc-bin"
burrow_require_cmd xorriso "packaging/install-deps.sh installs xorriso"
burrow_require_cmd mformat "packaging/install-deps.sh installs mtools"

cat >"$BURROW_TMP/guest.sh" <<'GUEST'
echo "grub-guest: cmdline $(cat /proc/cmdline)"
i=0
while [ ! -e /sys/block/sr0 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
mount -t iso9660 -o ro /dev/sr0 /mnt || { echo "grub-guest: FAIL cannot mount /dev/sr0"; exit 1; }
echo "grub-guest: cd vmlinuz $(md5sum </mnt/vmlinuz | cut -d' ' -f1)"
echo "grub-guest: cd initrd $(md5sum </mnt/initrd | cut -d' ' -f1)"
umount /mnt
GUEST

iso_root=$BURROW_TMP/iso
mkdir -p "$iso_root/boot/grub"
linux_initramfs "$iso_root/initrd" "$BURROW_TMP/guest.sh" ahci sr_mod isofs
cp "$LINUX_KERNEL" "$iso_root/vmlinuz"
cat >"$iso_root/boot/grub/grub.cfg" <<EOF
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=0
set default=0
echo "burrow-grub: grub.cfg read"
menuentry "Burrow Linux guest" {
    echo "burrow-grub: loading /vmlinuz"
    linux /vmlinuz $LINUX_CMDLINE_BASE burrow.boot=grub quiet
    echo "burrow-grub: loading /initrd"
    initrd /initrd
    echo "burrow-grub: booting"
}
EOF
grub-mkrescue -o "$BURROW_TMP/boot.iso" "$iso_root" >"$BURROW_TMP/mkrescue.log" 2>&1 ||
    burrow_fail "grub-mkrescue failed: $(tail -n 5 "$BURROW_TMP/mkrescue.log")"

linux_boot_firmware grub --memory 512 --cdrom "$BURROW_TMP/boot.iso" --boot d --no-rng
linux_expect_pass
burrow_expect_text "$LINUX_FIRMWARE_LOG" "Booting from DVD/CD"
for line in "grub.cfg read" "loading /vmlinuz" "loading /initrd" "booting"; do
    burrow_expect_text "$LINUX_SERIAL" "burrow-grub: $line"
done
burrow_note "ok: GRUB read its configuration and loaded the kernel and initramfs"
# The guest's init ran after GRUB handed over (the serial log in order).
tr -d '\r' <"$LINUX_SERIAL" | awk '/burrow-grub: booting/ { g = NR } /^burrow-guest: init/ && g { ok = 1 } END { exit !ok }' ||
    burrow_fail "the guest's init did not run after GRUB booted the kernel"
cmdline=$(linux_guest_lines "grub-guest: cmdline ")
case " $cmdline " in
*" BOOT_IMAGE=/vmlinuz "*" burrow.boot=grub "*) burrow_note "ok: kernel command line from GRUB: $cmdline" ;;
*) burrow_fail "the kernel's command line is not GRUB's: $cmdline" ;;
esac
for f in vmlinuz initrd; do
    want=$(md5sum <"$iso_root/$f" | cut -d' ' -f1)
    burrow_expect_line "$LINUX_SERIAL" "grub-guest: cd $f $want"
done
burrow_note "ok: the guest read the kernel and initramfs back from /dev/sr0"
echo "PASS: SeaBIOS, GRUB from the CD, Debian's kernel and the guest's init"
