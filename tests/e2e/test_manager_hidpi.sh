#!/bin/bash
# The manager's console on a HiDPI screen and on a plain one: burrow-manager
# under Xvfb at GDK_SCALE=2, then at 1, shows a VM whose screen has
# single-pixel detail (tests/guests/fbpattern.img).  At 1:1 the guest's
# pixels are found unscaled and exact on the X screen, in device pixels;
# scaled to fit and at 1:1 the pointer, moved to known device pixels,
# reaches the guest at the right pixel (the VM's status reports the last
# position a viewer sent).  tests/gui/drive_hidpi.py says how.  Every step
# waits for what it needs; the limits only bound a hang.
# needs: kvm
# timeout: 1200
set -u
B=${BURROW_BUILD_DIR:?}
S=${BURROW_SOURCE_DIR:?}
PY=/usr/bin/python3

skip() { echo "SKIP: $*"; exit 77; }
[ -x "$B/burrow-manager" ] || { echo "FAIL: $B/burrow-manager is not built"; exit 1; }
command -v Xvfb >/dev/null || skip "Xvfb is missing (package xvfb)"
command -v openbox >/dev/null || skip "openbox is missing (package openbox)"
command -v xdotool >/dev/null || skip "xdotool is missing (package xdotool)"
command -v dbus-run-session >/dev/null || skip "dbus-run-session is missing (package dbus)"
[ -x /usr/libexec/at-spi-bus-launcher ] || skip "at-spi-bus-launcher is missing (package at-spi2-core)"
$PY -c "import gi; gi.require_version('Atspi','2.0'); gi.require_version('Gdk','3.0'); from gi.repository import Atspi, Gdk" \
    2>/dev/null || skip "python3-gi with gir1.2-atspi-2.0 and gir1.2-gtk-3.0 is missing"
[ -f "$B/tests/guests/fbpattern.img" ] || { echo "FAIL: the pattern guest is not built"; exit 1; }
probe=$($PY "$S/tests/nested/kvm-probe") ||
    { echo "FAIL: KVM cannot run this test here ($probe); run it through tests/nested/with-kvm"; exit 1; }

T=$(mktemp -d)
cleanup() {
    kill $(jobs -p) 2>/dev/null
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
export BURROW_VM=$B/burrow-vm PATTERN_VM=pattern T
cp "$B/tests/guests/fbpattern.img" "$T/pattern.img"
"$B/burrow" create "$PATTERN_VM" --os other --memory 64 --disk "$T/pattern.img" --net none >/dev/null ||
    { echo "FAIL: burrow create"; exit 1; }
"$B/burrow" start "$PATTERN_VM" --headless >/dev/null || { echo "FAIL: burrow start"; exit 1; }
log=$XDG_STATE_HOME/burrow/$PATTERN_VM.log
SHOTS=$T/shots
mkdir -p "$SHOTS"
export SHOTS
for scale in 2 1; do
    echo "-- GDK_SCALE=$scale"
    "$S/tests/gui/manager-session" "$T" --wm --scale "$scale" --geometry 2560x1600x24 --limit 900 -- \
        "$S/tests/gui/drive_hidpi.py" "$SHOTS" "$scale"
    rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "FAIL: the walk at GDK_SCALE=$scale failed (status $rc); manager log:"
        tail -20 "$T/manager.log"; tail -5 "$log"
        exit 1
    fi
done
if [ -n "${BURROW_SCREENSHOTS_DIR:-}" ]; then
    mkdir -p "$BURROW_SCREENSHOTS_DIR" && cp "$SHOTS"/*.png "$BURROW_SCREENSHOTS_DIR/"
fi
echo "PASS"
