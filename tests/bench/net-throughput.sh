#!/bin/bash
# Builds and runs net-throughput.c against a build tree's libraries: frames
# and bytes per second through virtio-net and the e1000 on the user-mode
# network (libslirp), in the device harness, next to the same traffic pushed
# straight into libslirp without a device (the ceiling).
#
# Usage: tests/bench/net-throughput.sh [BUILD_DIR] [SECONDS]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$src/build}
secs=${2:-2}
for lib in libburrow_devices.a libburrow_vmm.a tests/libburrow_testsupport.a; do
    [ -f "$build/$lib" ] || { echo "net-throughput: missing $build/$lib (build first)"; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
apps=""
[ -f "$build/libburrow_app.a" ] && apps="$build/libburrow_app.a"
# shellcheck disable=SC2046,SC2086
cc -std=gnu17 -O2 -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE -I"$src" -I"$src/tests" "$here/net-throughput.c" -o "$tmp/net-throughput" \
    "$build/tests/libburrow_testsupport.a" "$build/libburrow_vmm.a" $apps "$build/libburrow_devices.a" \
    $(pkg-config --libs slirp liburing jansson cmocka) -lpthread
"$tmp/net-throughput" "$secs"
