# shellcheck shell=bash
# A real USB device for pass-through tests: Linux's dummy_hcd (a USB host
# controller and a device controller wired to each other in software) with
# a configfs mass-storage gadget on an image.  The host's kernel sees a
# high-speed USB disk on a bus of its own, as if one were plugged in.
# It needs root and the kernel's modules, and changes the running kernel:
# tests make it only inside the nested KVM helper (see usb_gadget_nested).
# Source it after tests/linux/lib.sh.

USB_GADGET_VID=0525          # NetChip's ids, as the kernel's g_mass_storage has them
USB_GADGET_PID=a4a5
USB_GADGET_CONFIGFS=/sys/kernel/config
USB_GADGET_DIR=$USB_GADGET_CONFIGFS/usb_gadget/burrow-test

# usb_gadget_nested SCRIPT [ARGS...]: runs SCRIPT inside the nested KVM
# helper unless this already runs there: a gadget is never made on the
# machine running the tests.
# Call it before burrow_init.
usb_gadget_nested() {
    [ -n "${BURROW_NESTED:-}" ] && return 0
    echo "the USB gadget (dummy_hcd) is made inside the nested KVM helper, never on this host"
    export BURROW_TEST_KVM=native BURROW_NESTED=1
    exec "$(dirname "${BASH_SOURCE[0]}")/../nested/nested-run" --timeout "${USB_GADGET_TIMEOUT:-1440}" -- bash "$@"
}

# usb_gadget_modules: the gadget side (configfs, libcomposite, the mass
# storage function, dummy_hcd) and the host's usb-storage, whose binding
# shows who holds the device.
usb_gadget_modules() {
    PATH=$PATH:/usr/sbin:/sbin
    [ "$(id -u)" = 0 ] || burrow_fail "making a USB gadget needs root (inside the nested helper it is)"
    burrow_require_cmd modprobe "install kmod"
    local m
    for m in configfs libcomposite usb_f_mass_storage dummy_hcd usb-storage; do
        modprobe "$m" 2>"$BURROW_TMP/modprobe.err" ||
            burrow_fail "modprobe $m: $(cat "$BURROW_TMP/modprobe.err")"
    done
    mountpoint -q "$USB_GADGET_CONFIGFS" || mount -t configfs none "$USB_GADGET_CONFIGFS" ||
        burrow_fail "cannot mount configfs on $USB_GADGET_CONFIGFS"
    [ -d "$USB_GADGET_CONFIGFS/usb_gadget" ] || burrow_fail "no usb_gadget in configfs (libcomposite)"
}

# usb_gadget_make IMAGE SERIAL: a mass-storage gadget with IMAGE as its
# only LUN (read-only), not plugged in yet.
usb_gadget_make() {
    local img=$1 serial=$2 g=$USB_GADGET_DIR
    mkdir "$g" || burrow_fail "cannot create the gadget $g"
    echo "0x$USB_GADGET_VID" >"$g/idVendor"
    echo "0x$USB_GADGET_PID" >"$g/idProduct"
    echo 0x0200 >"$g/bcdUSB"
    mkdir "$g/strings/0x409"
    echo Burrow >"$g/strings/0x409/manufacturer"
    echo "Test Disk" >"$g/strings/0x409/product"
    echo "$serial" >"$g/strings/0x409/serialnumber"
    mkdir "$g/functions/mass_storage.0"
    echo 1 >"$g/functions/mass_storage.0/lun.0/ro"
    echo "$img" >"$g/functions/mass_storage.0/lun.0/file" || burrow_fail "the gadget does not take $img"
    mkdir "$g/configs/c.1"
    echo 100 >"$g/configs/c.1/MaxPower"
    ln -s "$g/functions/mass_storage.0" "$g/configs/c.1/" || burrow_fail "cannot link the gadget's function"
}

# usb_gadget_serial SERIAL: a new serial number, while unplugged (the host
# sees another device at the next plug).
usb_gadget_serial() {
    echo "$1" >"$USB_GADGET_DIR/strings/0x409/serialnumber" || burrow_fail "cannot set the gadget's serial"
}

# usb_gadget_find: the host's name for the gadget (BUS-PORT), when it is
# plugged in.
usb_gadget_find() {
    local d
    for d in /sys/bus/usb/devices/*; do
        [ -f "$d/idVendor" ] && [ "$(cat "$d/idVendor")" = "$USB_GADGET_VID" ] &&
            [ "$(cat "$d/idProduct")" = "$USB_GADGET_PID" ] && { basename "$d"; return 0; }
    done
    return 1
}

_usb_gadget_present() {
    usb_gadget_find >/dev/null
}

# usb_gadget_plug: binds the gadget to dummy_hcd's device side, waits for
# the host to enumerate it; USB_GADGET_NAME is its name there (BUS-PORT).
usb_gadget_plug() {
    local udc
    udc=$(ls /sys/class/udc 2>/dev/null | head -n 1)
    [ -n "$udc" ] || burrow_fail "no USB device controller (dummy_hcd did not load)"
    echo "$udc" >"$USB_GADGET_DIR/UDC" || burrow_fail "cannot bind the gadget to $udc"
    burrow_until "USB gadget on the host" _usb_gadget_present
    USB_GADGET_NAME=$(usb_gadget_find)
}

# usb_gadget_unplug: the device goes away from the host, as a cable pulled.
usb_gadget_unplug() {
    echo "" >"$USB_GADGET_DIR/UDC" || burrow_fail "cannot unbind the gadget"
}

# usb_gadget_driver: the host driver bound to the gadget's interface ("" none).
usb_gadget_driver() {
    local l
    l=$(readlink "/sys/bus/usb/devices/$USB_GADGET_NAME:1.0/driver" 2>/dev/null) || return 0
    basename "$l"
}
