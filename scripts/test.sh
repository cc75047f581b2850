#!/bin/sh
# Installs what Burrow needs, builds it with warnings as errors, and runs the
# whole test suite (unit, device harness, KVM guests, end-to-end, Linux
# guests, then a short run of every fuzz target).  Tests that need KVM run
# natively where this host's KVM can run them and inside the nested KVM
# helper elsewhere (tests/nested); only a facility no helper can give (a
# real USB device, say) is a reason to skip.
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
status=0
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" "$@" || status=$?

# The fuzz targets (tests/fuzz): a second tree built with clang, libFuzzer
# and the sanitizers, only the targets; each runs briefly from its seeds.
# BURROW_FUZZ_TESTS=0 leaves them out.
if [ "${BURROW_FUZZ_TESTS:-1}" != 0 ]; then
    FUZZ_DIR=${FUZZ_BUILD_DIR:-$BUILD_DIR-fuzz}
    CC=clang cmake -S . -B "$FUZZ_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBURROW_FUZZ=ON >/dev/null
    cmake --build "$FUZZ_DIR" -j "$(nproc)" --target fuzz
    ctest --test-dir "$FUZZ_DIR" -L fuzz --output-on-failure -j "$(nproc)" || status=$?
fi
exit "$status"
