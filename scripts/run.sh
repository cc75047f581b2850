#!/bin/sh
# Installs what Burrow needs, builds it, and boots the demo VM: SeaBIOS from
# Debian loads a small boot sector from a virtio disk; its console is this
# terminal.  Type to see the guest echo; 'q' powers the guest off;
# Ctrl-A x quits at any time.
set -eu
cd "$(dirname "$0")/.."

./packaging/install-deps.sh

BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" >/dev/null

exec "$BUILD_DIR/burrow-vm" --name demo --memory 128 \
    --disk "$BUILD_DIR/tests/guests/demo.img,if=virtio" --display none --serial stdio "$@"
