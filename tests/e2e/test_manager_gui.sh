#!/bin/bash
# burrow-manager under Xvfb, driven through AT-SPI (tests/gui/drive_manager.py
# says what it checks): it starts with no VM and offers to create one; VMs
# created and changed with the command line show in it (long names, natural
# order, search, Settings that never overwrite a change made elsewhere);
# the New VM assistant creates a VM, which starts headless, shows running,
# paused and a thumbnail; its console shows the guest's screen (with no TCP
# port open), closes with the VM running and opens again, in its own
# window or in the main window as the user last chose; it gets a port
# forward the running VM listens on, stops and is deleted.  A VM with no
# display is used through the console's serial page: typed text echoes,
# and 'q' powers it off.  A VM started with --vnc from the command line
# shows its VNC address, and Stop offers Force stop when its guest ignores
# it.  With BURROW_SCREENSHOTS_DIR set, the windows' screenshots are copied
# there (docs/screenshots/ holds the documentation's).  Every step waits for
# what it needs; the limits only bound a hang.
# needs: kvm
# timeout: 1500
set -u
B=${BURROW_BUILD_DIR:?}
S=${BURROW_SOURCE_DIR:?}
PY=/usr/bin/python3

skip() { echo "SKIP: $*"; exit 77; }
[ -x "$B/burrow-manager" ] || skip "burrow-manager is not built"
command -v Xvfb >/dev/null || skip "Xvfb is missing (package xvfb)"
command -v openbox >/dev/null || skip "openbox is missing (package openbox)"
command -v xprop >/dev/null || skip "xprop is missing (package x11-utils)"
command -v dbus-run-session >/dev/null || skip "dbus-run-session is missing (package dbus)"
[ -x /usr/libexec/at-spi-bus-launcher ] || skip "at-spi-bus-launcher is missing (package at-spi2-core)"
$PY -c "import gi; gi.require_version('Atspi','2.0'); gi.require_version('Gdk','3.0'); from gi.repository import Atspi, Gdk" \
    2>/dev/null || skip "python3-gi with gir1.2-atspi-2.0 and gir1.2-gtk-3.0 is missing"
[ -f "$B/tests/guests/demo.img" ] || skip "the demo guest is not built"

T=$(mktemp -d)
# On the way out, also end VMs the manager started (they run detached).
cleanup() {
    kill $(jobs -p) $(cat "$T/xvfb.pid" 2>/dev/null) 2>/dev/null
    for f in "$T"/run/burrow/*.pid; do
        [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
export XDG_DATA_HOME=$T/data XDG_RUNTIME_DIR=$T/run XDG_STATE_HOME=$T/state XDG_CONFIG_HOME=$T/config
export XDG_CACHE_HOME=$T/cache HOME=$T/home
mkdir -p "$XDG_RUNTIME_DIR" "$HOME" && chmod 700 "$XDG_RUNTIME_DIR"
export BURROW_VM=$B/burrow-vm
# The VM made in the assistant has a name with spaces and an accented letter.
export CLI_VM=from-cli GUI_VM="Guest VM été" GUI_DISK=$T/guest.img SERIAL_VM=serial-only BURROW_CLI=$B/burrow
cp "$B/tests/guests/demo.img" "$GUI_DISK"
# A VM with no display whose guest (the demo boot sector) echoes what is
# typed on its serial port, through SeaBIOS's serial console.
export SERIAL_DISK=$T/demo.img
cp "$B/tests/guests/demo.img" "$SERIAL_DISK"
# The manager starts with no VM; the walk makes them with the command line.
export START_EMPTY=1

probe=$($PY "$S/tests/nested/kvm-probe") ||
    { echo "FAIL: KVM cannot run this test here ($probe); run it through tests/nested/with-kvm"; exit 1; }

SHOTS=$T/shots
mkdir -p "$SHOTS"
export T B S SHOTS
"$S/tests/gui/manager-session" "$T" --wm --limit 1200 -- "$S/tests/gui/drive_manager.py" "$SHOTS"
rc=$?
if [ "$rc" -ne 0 ]; then
    echo "FAIL: the GUI walk failed (status $rc); manager log:"
    tail -20 "$T/manager.log"; ls -la "$T/run/burrow" "$T/state/burrow"; tail -5 "$T"/state/burrow/*.log
    exit 1
fi
# The CLI sees what the GUI did: the VM it created is gone again.
if "$B/burrow" list | grep -q "^$GUI_VM "; then
    echo "FAIL: $GUI_VM is still defined"
    exit 1
fi
if [ -n "${BURROW_SCREENSHOTS_DIR:-}" ]; then
    mkdir -p "$BURROW_SCREENSHOTS_DIR" && cp "$SHOTS"/*.png "$BURROW_SCREENSHOTS_DIR/"
fi
echo "PASS"
