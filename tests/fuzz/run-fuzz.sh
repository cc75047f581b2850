#!/bin/sh
# Runs one fuzz target for a bounded time, starting from its seeds (the
# ctest tests labelled "fuzz"): inputs it finds go to a scratch folder,
# never into the tree; a crashing input is kept under the build folder's
# fuzz-artifacts/ and fails the test.
#   run-fuzz.sh TARGET SEED-FOLDER SECONDS
set -eu
target=$1
seeds=$2
seconds=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/burrow-fuzz-XXXXXX")
trap 'rm -rf "$work"' EXIT
artifacts="${BURROW_BUILD_DIR:-.}/fuzz-artifacts/$(basename "$target")"
mkdir -p "$artifacts"
# -close_fd_mask=2: the device models' guest-error lines stay out of the
# log; libFuzzer's own lines and sanitizer reports still come.
"$target" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -close_fd_mask=2 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$work" "$seeds" </dev/null
