#!/bin/bash
# The manager as the place where a Linux VM is used, in one boot of the
# guest: burrow-manager under Xvfb, driven through AT-SPI
# (tests/gui/drive_console_linux.py says each step), starts a VM that boots
# Debian's kernel from a GRUB CD; a command typed into its console runs
# and its output is read back from the screen by OCR; Send key's
# Ctrl+Alt+Del reaches the guest's kernel; the console closes and opens
# again with the VM running; its serial page logs in to the guest (getty
# and login, on the serial port) while `burrow console` is attached beside
# it; a port forward added in Settings reaches a listener in the guest; no
# TCP port of burrow-vm listens while the console shows (ss -ltnp).
#
# The guest: on tty1 (the VGA console) a shell and a banner; the kernel's
# Ctrl+Alt+Del signal goes to the guest's script, which reports it on the
# serial port (/proc/sys/kernel/cad_pid); getty on ttyS0 with root's
# password set; an e1000 with slirp's address and busybox nc answering on
# GUEST_PORT.
# needs: hwkvm
# timeout: 3000
. "$(dirname "$0")/lib.sh"
linux_init
burrow_require_cmd grub-mkrescue "packaging/install-deps.sh installs grub-pc-bin"
burrow_require_cmd xorriso "packaging/install-deps.sh installs xorriso"
burrow_require_cmd mformat "packaging/install-deps.sh installs mtools"
burrow_require_cmd openssl "install openssl"
burrow_require_cmd Xvfb "install xvfb"
burrow_require_cmd openbox "install openbox"
burrow_require_cmd xprop "install x11-utils"
burrow_require_cmd xdotool "install xdotool"
burrow_require_cmd tesseract "install tesseract-ocr"
burrow_require_cmd dbus-run-session "install dbus-daemon"
burrow_require_cmd ss "install iproute2"
burrow_require_file /usr/libexec/at-spi-bus-launcher "install at-spi2-core"
/usr/bin/python3 -c "import gi; gi.require_version('Atspi','2.0'); gi.require_version('Gdk','3.0')" 2>/dev/null ||
    burrow_skip "python3-gi with gir1.2-atspi-2.0 and gir1.2-gtk-3.0 is missing"
[ -x "$BURROW_BUILD_DIR/burrow-manager" ] || burrow_fail "burrow-manager is not built"

T=$BURROW_TMP
export LINUX_VM="linux console" GUEST_PASSWORD=burrow-secret GUEST_PORT=8022 T
hash=$(openssl passwd -6 -salt burrowtest "$GUEST_PASSWORD") || burrow_fail "openssl passwd failed"
mkdir -p "$T/etc"
echo "root:x:0:0:root:/root:/bin/sh" >"$T/etc/passwd"
echo "root:$hash:19000:0:99999:7:::" >"$T/etc/shadow"
echo "root:x:0:" >"$T/etc/group"
echo "PS1='logged-in# '" >"$T/etc/profile"
chmod 600 "$T/etc/shadow"

cat >"$T/guest.sh" <<GUEST
GUEST_PORT=$GUEST_PORT
GUEST
cat >>"$T/guest.sh" <<'GUEST'
echo "burrow-test: setting up"
hostname burrow-guest
mkdir -p /root /var/run /var/log
: >/var/run/utmp
# The network: slirp's guest address, and a listener for the forward.
ip link set lo up
dev=
for d in /sys/class/net/*; do
    [ "${d##*/}" = lo ] || { dev=${d##*/}; break; }
done
if [ -n "$dev" ]; then
    ip link set "$dev" up
    ip addr add 10.0.2.15/24 dev "$dev"
    ip route add default via 10.0.2.2
    (while :; do echo "hello from the guest" | nc -l -p "$GUEST_PORT"; done) &
else
    echo "burrow-test: no network interface"
fi
# A login on the serial port.
(while :; do setsid getty -L 115200 ttyS0 vt100; done) &
# A shell on the VGA console, under a banner.
printf '\033[2J\033[H' >/dev/tty1
echo "CONSOLE TEST READY" >/dev/tty1
setsid sh -c 'export PS1="guest# "; exec sh -i <>/dev/tty1 >&0 2>&1' &
echo "burrow-test: ready"
# This script stays, as the process the kernel's keyboard handler signals
# (SIGINT to cad_pid) on Ctrl+Alt+Del, with ctrl-alt-del at 0 as init
# systems set it (at 1 the kernel would reboot at once).  It runs in the
# foreground of init, so SIGINT is not ignored here, as it would be in a
# background job of a script, where a trap could not take it back.
trap 'echo "burrow-test: ctrl-alt-del"' INT
echo $$ >/proc/sys/kernel/cad_pid || echo "burrow-test: cannot set cad_pid"
echo 0 >/proc/sys/kernel/ctrl-alt-del || echo "burrow-test: cannot trap ctrl-alt-del"
while :; do sleep 1; done
GUEST

iso_root=$T/iso
mkdir -p "$iso_root/boot/grub"
linux_initramfs "$iso_root/initrd" "$T/guest.sh" e1000 -- \
    "$T/etc/passwd=/etc/passwd" "$T/etc/shadow=/etc/shadow" "$T/etc/group=/etc/group" \
    "$T/etc/profile=/etc/profile"
cp "$LINUX_KERNEL" "$iso_root/vmlinuz"
cat >"$iso_root/boot/grub/grub.cfg" <<EOF
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
set default=0
menuentry "Burrow Linux guest" {
    linux /vmlinuz console=tty0 $LINUX_CMDLINE_BASE quiet
    initrd /initrd
}
EOF
grub-mkrescue -o "$T/boot.iso" "$iso_root" >"$T/mkrescue.log" 2>&1 ||
    burrow_fail "grub-mkrescue failed: $(tail -n 5 "$T/mkrescue.log")"

export XDG_DATA_HOME=$T/data XDG_RUNTIME_DIR=$T/run XDG_STATE_HOME=$T/state XDG_CONFIG_HOME=$T/config
export XDG_CACHE_HOME=$T/cache HOME=$T/home BURROW_CLI=$BURROW_BUILD_DIR/burrow
mkdir -p "$XDG_RUNTIME_DIR" "$HOME" && chmod 700 "$XDG_RUNTIME_DIR"
export BURROW_VM BURROW_BUILD_DIR BURROW_SOURCE_DIR BURROW_WAIT_LIMIT
# The VM the manager starts: no disk, the CD first, an e1000.
"$BURROW_CLI" create "$LINUX_VM" --os linux64 --memory 512 --no-disk --cdrom "$T/boot.iso" \
    --nic-model e1000 >/dev/null || burrow_fail "burrow create failed"
"$BURROW_CLI" modify "$LINUX_VM" --boot d >/dev/null || burrow_fail "burrow modify --boot d failed"
# Whatever happens, the VM the manager started does not outlive the test.
trap '"$BURROW_CLI" stop "$LINUX_VM" --force >/dev/null 2>&1; rm -rf "$BURROW_TMP"' EXIT
vmlog=$XDG_STATE_HOME/burrow/$LINUX_VM.log
burrow_add_log "$vmlog"
burrow_add_log "$T/serial.log"
burrow_add_log "$T/cli-console.out"
burrow_add_log "$T/manager.log"
burrow_add_log "$T/screen-ready.txt"
burrow_add_log "$T/screen-command.txt"

SHOTS=$T/shots
mkdir -p "$SHOTS"
"$BURROW_SOURCE_DIR/tests/gui/manager-session" "$T" --wm --limit 2700 -- \
    "$BURROW_SOURCE_DIR/tests/gui/drive_console_linux.py" "$SHOTS" ||
    burrow_fail "the GUI walk with the Linux guest failed"
if [ -n "${BURROW_SCREENSHOTS_DIR:-}" ]; then
    mkdir -p "$BURROW_SCREENSHOTS_DIR" && cp "$SHOTS"/*.png "$BURROW_SCREENSHOTS_DIR/"
fi
echo "PASS: a Linux VM used from the manager: console typing read back by OCR, Ctrl+Alt+Del, reattach, serial login beside burrow console, a live port forward, no TCP port"
