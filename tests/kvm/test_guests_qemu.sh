#!/bin/bash
# The project's test guests under a peer VMM (QEMU from Debian, with its own
# Linux loader and SeaBIOS), so a fault in a guest is told apart from a fault
# in burrow-vm.  QEMU starts a bzImage in real mode (16-bit boot protocol),
# which linuxtest also supports.  Uses KVM when it can, else QEMU's TCG.
. "$(dirname "$0")/lib.sh"
burrow_init
burrow_require_guest linuxtest.bzImage
burrow_require_guest bootsector.img
burrow_require_cmd qemu-system-x86_64 "install qemu-system-x86"
burrow_require_cmd python3

accel=(-accel tcg)
if python3 "$BURROW_SOURCE_DIR/tests/nested/kvm-probe" >/dev/null; then
    accel=(-accel kvm -accel tcg)
fi

qemu() {
    local name=$1
    shift
    local err=$BURROW_TMP/$name.err
    burrow_add_log "$err"
    BURROW_STATUS=0
    timeout -k 10 "$BURROW_VM_TIMEOUT" qemu-system-x86_64 "${accel[@]}" -nodefaults \
        -device isa-debug-exit,iobase=0xf4,iosize=1 "$@" </dev/null 2>"$err" || BURROW_STATUS=$?
    if [ "$BURROW_STATUS" -eq 124 ] || [ "$BURROW_STATUS" -eq 137 ]; then
        burrow_fail "QEMU timed out ($name)"
    fi
}

INITRD=$BURROW_TMP/initrd.img
head -c 3000 /dev/urandom >"$INITRD"
SIZE=$(stat -c %s "$INITRD")
CRC=$(burrow_crc32 "$INITRD")
APPEND='burrow.test=qemu x=1'
SERIAL=$BURROW_TMP/linuxtest.txt
burrow_add_log "$SERIAL"
qemu linuxtest -m 256 -display none -kernel "$BURROW_GUESTS/linuxtest.bzImage" \
    -initrd "$INITRD" -append "$APPEND" -serial "file:$SERIAL"
burrow_expect_no_text "$SERIAL" "[FAIL]"
burrow_expect_status 33 "linuxtest's pass verdict"
burrow_expect_line "$SERIAL" "[ ok ] entry: 32-bit boot protocol (startup_32)"
burrow_expect_prefix "$SERIAL" "[ ok ] header: boot_flag 0xaa55 version 0x020f"
burrow_expect_prefix "$SERIAL" "[ ok ] e820: "
burrow_expect_line "$SERIAL" "[ ok ] cmdline: \"$APPEND\""
burrow_expect_prefix "$SERIAL" "[ ok ] initrd: size $SIZE crc32 $CRC at "
burrow_expect_prefix "$SERIAL" "linuxtest: PASS ("

# The boot sector, from a virtio disk; with no display SeaBIOS prints
# through its serial console.  A copy, so the build's image stays as built.
cp "$BURROW_GUESTS/bootsector.img" "$BURROW_TMP/disk.img"
SERIAL=$BURROW_TMP/bootsector.txt
burrow_add_log "$SERIAL"
qemu bootsector -m 64 -nographic -vga none -serial "file:$SERIAL" -monitor none \
    -drive "file=$BURROW_TMP/disk.img,if=virtio,format=raw"
burrow_expect_status 67 "the boot sector's pass byte 0x21"
burrow_expect_text "$SERIAL" "Burrow boot sector: hello from the guest"
burrow_expect_text "$SERIAL" "Burrow boot sector: disk read ok (LBA 1 and 2047)"

echo "PASS: linuxtest and the boot sector run under QEMU"
