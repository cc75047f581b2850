#!/bin/bash
# burrow-manager where KVM is missing (BURROW_KVM_DEVICE at a path that does
# not exist), under Xvfb, driven through AT-SPI: the New VM assistant shows
# the failed host check, and Start shows the reasons instead of starting a
# VM: burrow-vm is never run.  Needs no KVM, so it runs anywhere.  With
# BURROW_SCREENSHOTS_DIR set, the two windows' screenshots are copied there.
# The limits only bound a hang (drive_manager.py's waits are generous).
# timeout: 1200
set -u
B=${BURROW_BUILD_DIR:?}
S=${BURROW_SOURCE_DIR:?}
PY=/usr/bin/python3

skip() { echo "SKIP: $*"; exit 77; }
[ -x "$B/burrow-manager" ] || { echo "FAIL: $B/burrow-manager is not built"; exit 1; }
command -v Xvfb >/dev/null || skip "Xvfb is missing (package xvfb)"
command -v dbus-run-session >/dev/null || skip "dbus-run-session is missing (package dbus)"
[ -x /usr/libexec/at-spi-bus-launcher ] || skip "at-spi-bus-launcher is missing (package at-spi2-core)"
$PY -c "import gi; gi.require_version('Atspi','2.0'); gi.require_version('Gdk','3.0'); from gi.repository import Atspi, Gdk" \
    2>/dev/null || skip "python3-gi with gir1.2-atspi-2.0 and gir1.2-gtk-3.0 is missing"

T=$(mktemp -d)
cleanup() {
    kill $(jobs -p) $(cat "$T/xvfb.pid" 2>/dev/null) 2>/dev/null
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
export XDG_DATA_HOME=$T/data XDG_RUNTIME_DIR=$T/run XDG_STATE_HOME=$T/state XDG_CONFIG_HOME=$T/config
export XDG_CACHE_HOME=$T/cache HOME=$T/home
mkdir -p "$XDG_RUNTIME_DIR" "$HOME" && chmod 700 "$XDG_RUNTIME_DIR"
export BURROW_KVM_DEVICE=$T/no-kvm
# Stands in for burrow-vm: any run of it is a failure of this test.
export BURROW_VM=$T/burrow-vm
printf '#!/bin/sh\ntouch "%s/vm-was-run"\nexit 1\n' "$T" >"$BURROW_VM"
chmod 755 "$BURROW_VM"
export CLI_VM=from-cli GUI_VM=unused GUI_DISK=/nonexistent
"$B/burrow" create "$CLI_VM" --os debian --no-disk --display none >/dev/null || { echo "FAIL: burrow create"; exit 1; }

SHOTS=$T/shots
mkdir -p "$SHOTS"
export T B S SHOTS
"$S/tests/gui/manager-session" "$T" --limit 1000 -- "$S/tests/gui/drive_manager.py" "$SHOTS"
rc=$?
if [ "$rc" -ne 0 ]; then
    echo "FAIL: the GUI walk failed (status $rc); manager log:"
    tail -20 "$T/manager.log"
    exit 1
fi
[ ! -e "$T/vm-was-run" ] || { echo "FAIL: the manager ran burrow-vm although KVM is missing"; exit 1; }
ls "$XDG_RUNTIME_DIR"/burrow/*.pid >/dev/null 2>&1 && { echo "FAIL: a VM's pid file exists"; exit 1; }
[ ! -e "$BURROW_KVM_DEVICE" ] || { echo "FAIL: the missing KVM device was created"; exit 1; }
if [ -n "${BURROW_SCREENSHOTS_DIR:-}" ]; then
    mkdir -p "$BURROW_SCREENSHOTS_DIR" && cp "$SHOTS"/*-no-kvm.png "$BURROW_SCREENSHOTS_DIR/"
fi
echo "PASS"
