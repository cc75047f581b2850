#!/bin/sh
# Installs what Burrow needs, builds it with warnings as errors, and runs the
# whole test suite (unit, device harness, KVM guests, end-to-end, Linux
# guests).  Tests that need KVM run natively where this host's KVM can run
# them and inside the nested KVM helper elsewhere (tests/nested); only a
# facility no helper can give (a real USB device, say) is a reason to skip.
set -eu
cd "$(dirname "$0")/.."

./packaging/install-deps.sh
# The suite is written against the tools Debian's packages installed above
# (python3 with its gi bindings, QEMU, ...): they come first, before any
# per-user interpreter wrappers on the PATH.
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export PATH

BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBURROW_WERROR=ON >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"

# Tests print why they skip; --output-on-failure shows a failing test's log.
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" "$@"
