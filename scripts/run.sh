#!/bin/sh
# Installs what Burrow needs, builds it, and runs it:
#  - with a graphical display ($DISPLAY or $WAYLAND_DISPLAY set): the Burrow
#    manager, with a "demo" VM defined (created on first run);
#  - without one: the demo VM headless, its screen on a VNC server at
#    127.0.0.1:5900, its serial console in this terminal (Ctrl-A x quits).
# The demo VM boots Debian's SeaBIOS, which loads a small boot sector from a
# virtio disk; type in its window and it echoes, 'q' powers it off.
set -eu
cd "$(dirname "$0")/.."

./packaging/install-deps.sh

BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" >/dev/null
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
DEMO_DISK=$BUILD_DIR/tests/guests/demo.img

if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -x "$BUILD_DIR/burrow-manager" ]; then
    export BURROW_VM="$BUILD_DIR/burrow-vm"
    if ! "$BUILD_DIR/burrow" show demo >/dev/null 2>&1; then
        # The VM keeps its own copy of the disk, so the build stays pristine.
        "$BUILD_DIR/burrow" create demo --os other --memory 128 --cpus 1 --no-disk >/dev/null
        dir=$("$BUILD_DIR/burrow" show demo --json | sed -n 's/.*"dir": *"\([^"]*\)".*/\1/p')
        cp "$DEMO_DISK" "$dir/demo.img"
        "$BUILD_DIR/burrow" modify demo --add-disk "$dir/demo.img" --net none >/dev/null
    fi
    exec "$BUILD_DIR/burrow-manager" "$@"
fi

echo "Burrow demo VM: screen on VNC at 127.0.0.1:5900 (e.g. 'vncviewer 127.0.0.1:5900');"
echo "serial console below; Ctrl-A x quits."
cp "$DEMO_DISK" "$BUILD_DIR/demo-vm.img"
exec "$BUILD_DIR/burrow-vm" --name demo --memory 128 \
    --disk "$BUILD_DIR/demo-vm.img,if=virtio" --display vnc:127.0.0.1:5900 --serial stdio "$@"
