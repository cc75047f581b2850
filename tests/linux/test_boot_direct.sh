#!/bin/bash
# Debian's kernel booted directly (--kernel, 64-bit boot protocol) with 4
# vCPUs: all four come online, and every PCI device the machine has is
# bound to Debian's driver for it (virtio-pci for blk, net and rng; e1000;
# ahci; bochs-drm; xhci_hcd for the USB controller), besides the serial8250
# and i8042/atkbd platform drivers.
# needs: hwkvm
# timeout: 900
. "$(dirname "$0")/lib.sh"
linux_init

cat >"$BURROW_TMP/guest.sh" <<'GUEST'
echo "cpus-online: $(cat /sys/devices/system/cpu/online)"
echo "nproc: $(grep -c ^processor /proc/cpuinfo)"
for d in /sys/bus/pci/devices/*; do
    drv=none
    [ -e "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
    echo "pci: $(basename "$d") $(cat "$d/vendor"):$(cat "$d/device") class $(cat "$d/class") driver $drv"
done
for d in /sys/bus/virtio/devices/*; do
    drv=none
    [ -e "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
    echo "virtio: $(basename "$d") device $(cat "$d/device") driver $drv"
done
# The 16550 on COM1 (the console itself), and the keyboard behind the i8042.
echo "uart: $(grep '^0:' /proc/tty/driver/serial)"
for d in /sys/bus/serio/devices/*; do
    drv=none
    [ -e "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
    echo "serio: $(basename "$d") $(cat "$d/description") driver $drv"
done
grep -q "AT Translated Set 2 keyboard" /proc/bus/input/devices && echo "input: AT keyboard"
GUEST

truncate -s 64M "$BURROW_TMP/vd.img" "$BURROW_TMP/sd.img"
linux_initramfs "$BURROW_TMP/initrd" "$BURROW_TMP/guest.sh" \
    virtio_pci virtio_blk virtio_net virtio-rng e1000 ahci bochs xhci_pci
linux_boot direct --cpus 4 --memory 512 --initrd "$BURROW_TMP/initrd" --display headless \
    --disk "$BURROW_TMP/vd.img,if=virtio,format=raw" --disk "$BURROW_TMP/sd.img,if=sata,format=raw" \
    --net user,model=virtio --net user,model=e1000 --append "quiet"
linux_expect_pass
burrow_expect_line "$LINUX_SERIAL" "cpus-online: 0-3"
burrow_expect_line "$LINUX_SERIAL" "nproc: 4"

# Every PCI function but the two bridges (no Linux driver takes those) has
# its driver; the expected one for each device the machine has.
expect_pci() {
    local id=$1 drv=$2 n
    n=$(linux_guest_lines "pci: " | awk -v id="$id" -v d="$drv" '$2 == id && $6 == d' | wc -l)
    [ "$n" -ge 1 ] || burrow_fail "no PCI device $id bound to $drv: $(linux_guest_lines "pci: " | grep -F "$id")"
    burrow_note "ok: $id bound to $drv"
}
expect_pci 0x1234:0x1111 bochs-drm
expect_pci 0x8086:0x2922 ahci
expect_pci 0x8086:0x100e e1000
expect_pci 0x1af4:0x1041 virtio-pci
expect_pci 0x1af4:0x1042 virtio-pci
expect_pci 0x1af4:0x1044 virtio-pci
expect_pci 0x1234:0x0330 xhci_hcd
unbound=$(linux_guest_lines "pci: " | awk '$6 == "none" && $2 != "0x8086:0x1237" && $2 != "0x8086:0x7000"')
[ -z "$unbound" ] || burrow_fail "PCI devices without a driver: $unbound"
for v in "0x0002 driver virtio_blk" "0x0001 driver virtio_net" "0x0004 driver virtio_rng"; do
    linux_guest_lines "virtio: " | grep -qF "device $v" || burrow_fail "no virtio device $v"
    burrow_note "ok: virtio device $v"
done
burrow_expect_prefix "$LINUX_SERIAL" "uart: 0: uart:16550A port:000003F8 irq:4"
linux_guest_lines "serio: " | grep -q "i8042 KBD port driver atkbd" ||
    burrow_fail "the i8042's keyboard port is not bound to atkbd: $(linux_guest_lines "serio: ")"
burrow_expect_line "$LINUX_SERIAL" "input: AT keyboard"
echo "PASS: 4 vCPUs online, every device bound to Debian's driver"
