#!/bin/bash
# Frames per second a gtk-vnc widget sees for full-screen changes, the
# manager's way (a socket handed to burrow-vm's VNC server through the
# control socket, no TCP port) next to virt-manager's way (gtk-vnc over TCP
# to the VM's VNC server), in the same run, on the same VM, as a ratio.
# The guest (tests/guests/fbanim.img) shows a 1024x768 picture of
# single-pixel detail and turns its palette without pause, so every pixel
# changes at each step; it counts its steps (a byte each to the debug
# port, the --firmware-log file), printed beside the frame rates: with more
# steps than frames the display path sets the pace.  burrow-vm renders at
# most 30 frames a second (DISPLAY_REFRESH_HZ).
# tests/bench/console-fps.py is the viewer: a GtkVnc.Display in a window
# under Xvfb, counting the framebuffer area its connection receives.  The
# two ways take turns, ROUNDS times, SECONDS each; medians are printed.
#
# Usage: tests/bench/console-fps.sh [BUILD_DIR] [ROUNDS] [SECONDS]
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-${BURROW_BUILD_DIR:-$here/../../build}}
rounds=${2:-3}
seconds=${3:-10}
img=$build/tests/guests/fbanim.img
PY=/usr/bin/python3

for need in "$build/burrow-vm" "$img" /usr/share/seabios/bios-256k.bin; do
    [ -e "$need" ] || { echo "console-fps: missing $need (build first)"; exit 1; }
done
command -v Xvfb >/dev/null || { echo "console-fps: Xvfb is missing (package xvfb)"; exit 1; }
$PY -c "import gi; gi.require_version('GtkVnc', '2.0')" 2>/dev/null ||
    { echo "console-fps: GtkVnc for Python is missing (package gir1.2-gtk-vnc-2.0)"; exit 1; }
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "console-fps: /dev/kvm not accessible; nothing to measure"; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
    local p
    for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    kill "$(cat "$tmp/xvfb.pid" 2>/dev/null)" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

d=$("$here/../tools/start-xvfb" "$tmp/xvfb" 1280x1024x24) || exit 1
export DISPLAY=:$d GDK_BACKEND=x11

port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$build/burrow-vm" --memory 64 --disk "$img" --net none --display "vnc:127.0.0.1:$port" \
    --control "$tmp/ctl.sock" --serial "file:$tmp/serial.log" --firmware-log "$tmp/steps.log" \
    >"$tmp/vm.log" 2>&1 &
pids+=($!)
vmpid=$!
end=$((SECONDS + 300))
until grep -q "pattern drawn" "$tmp/serial.log" 2>/dev/null; do
    kill -0 "$vmpid" 2>/dev/null || { echo "console-fps: burrow-vm ended:"; tail -5 "$tmp/vm.log"; exit 1; }
    [ "$SECONDS" -lt "$end" ] || { echo "console-fps: the guest did not draw within 300 s"; exit 1; }
    sleep 0.2
done

# fps ARGS...: one measurement; prints "fps N redraws N updates N size WxH".
measure() {
    timeout $((seconds + 120)) $PY -W ignore::DeprecationWarning "$here/console-fps.py" --seconds "$seconds" \
        --steps "$tmp/steps.log" "$@"
}
hand=() tcp=() steps=()
for r in $(seq "$rounds"); do
    h=$(measure --control "$tmp/ctl.sock") || { echo "console-fps: the handed-over viewer failed: $h"; exit 1; }
    t=$(measure --tcp "127.0.0.1:$port") || { echo "console-fps: the TCP viewer failed: $t"; exit 1; }
    echo "round $r: socket handed over: $h"
    echo "round $r: TCP:                 $t"
    hand+=("$(awk '{ print $2 }' <<<"$h")")
    tcp+=("$(awk '{ print $2 }' <<<"$t")")
    steps+=("$(awk '{ print $10 }' <<<"$h")" "$(awk '{ print $10 }' <<<"$t")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mh=$(median "${hand[@]}")
mt=$(median "${tcp[@]}")
size=$(awk '{ print $8 }' <<<"$h")
printf 'full-screen frames/s seen by the gtk-vnc widget (%s, median of %d x %d s):\n' "$size" "$rounds" "$seconds"
printf '  manager (socket handed over the control socket): %6.2f\n' "$mh"
printf '  virt-manager way (gtk-vnc over TCP):             %6.2f\n' "$mt"
printf '  (the guest changed the whole screen %s times/s meanwhile, median; burrow-vm renders at most 30)\n' \
    "$(median "${steps[@]}")"
awk -v a="$mh" -v b="$mt" 'BEGIN { if (b > 0) printf "  ratio manager / TCP: %.3f\n", a / b; else print "  ratio: the TCP viewer saw no frames" }'
