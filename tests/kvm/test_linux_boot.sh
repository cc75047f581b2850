#!/bin/bash
# Direct Linux boot through the 64-bit boot protocol: burrow-vm loads the
# project's linuxtest bzImage with an initrd and a command line; the test
# kernel checks boot_params from the inside and reports one line per check
# on COM1, then its verdict on the debug-exit port (0x10: status 33).
# The initrd's size and CRC-32 and the command line are compared with what
# this script computed on the host.  A second run with 5000 MiB puts RAM
# above 4 GiB, which the E820 map must show and the kernel must be able to
# write and read back.
# needs: kvm
. "$(dirname "$0")/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_guest linuxtest.bzImage
burrow_require_cmd python3

KERNEL=$BURROW_GUESTS/linuxtest.bzImage
INITRD=$BURROW_TMP/initrd.img
# An odd size (not a page multiple) of data the guest cannot guess.
head -c 5000 /dev/urandom >"$INITRD"
SIZE=$(stat -c %s "$INITRD")
CRC=$(burrow_crc32 "$INITRD")
APPEND='console=ttyS0 burrow.test=linux-boot "two words" x=1'
PASS_STATUS=33      # (0x10 << 1) | 1

boot() {
    local mem=$1
    SERIAL=$BURROW_TMP/serial-$mem.txt
    burrow_add_log "$SERIAL"
    burrow_run_vm "linux-$mem" --memory "$mem" --kernel "$KERNEL" --initrd "$INITRD" \
        --append "$APPEND" --serial "file:$SERIAL" --display none --debug-exit
    [ -f "$SERIAL" ] || burrow_fail "no serial output file"
    burrow_expect_no_text "$SERIAL" "[FAIL]"
    burrow_expect_status $PASS_STATUS "linuxtest's pass verdict"
    burrow_expect_line "$SERIAL" "[ ok ] entry: 64-bit boot protocol (startup_64)"
    burrow_expect_prefix "$SERIAL" "[ ok ] header: boot_flag 0xaa55 version 0x020f setup_sects "
    burrow_expect_text "$SERIAL" " type_of_loader 0xff"
    burrow_expect_prefix "$SERIAL" "[ ok ] e820: "
    burrow_expect_line "$SERIAL" "[ ok ] cmdline: \"$APPEND\""
    burrow_expect_prefix "$SERIAL" "[ ok ] initrd: size $SIZE crc32 $CRC at "
    # The machine passes the ACPI tables' RSDP in boot_params.
    burrow_expect_prefix "$SERIAL" "[ ok ] rsdp: "
    burrow_expect_prefix "$SERIAL" "linuxtest: PASS ("
}

boot 256
burrow_expect_line "$SERIAL" "[skip] highmem: no RAM above 4 GiB"

# 5000 MiB: 3 GiB below 4 GiB, the remaining 1928 MiB from 4 GiB up.
boot 5000
burrow_expect_line "$SERIAL" "e820: 0x0000000100000000-0x00000001787fffff type 1"
burrow_expect_line "$SERIAL" "[ ok ] highmem: 1928 MiB of RAM above 4 GiB, probed 0x100000000 and 0x1787ffff8"

echo "PASS: linuxtest booted through the 64-bit protocol with 256 and 5000 MiB"
