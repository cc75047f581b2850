#!/bin/bash
# Time from process start to the boot sector's first line on the serial
# console: Debian's SeaBIOS booting the test boot sector from a virtio-blk
# disk, under burrow-vm and under QEMU (Debian's qemu-system-x86) on the same
# machine in the same run.  Prints the median of N runs of each, side by side.
#
# Usage: tests/bench/boot-time.sh [BUILD_DIR] [RUNS]
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
runs=${2:-5}
bios=/usr/share/seabios/bios-256k.bin
img=$build/tests/guests/bootsector.img
marker="Burrow boot sector"

for need in "$build/burrow-vm" "$img" "$bios"; do
    [ -e "$need" ] || { echo "boot-time: missing $need (build first)"; exit 1; }
done
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "boot-time: /dev/kvm not accessible; nothing to measure"; exit 0; }
qemu=$(command -v qemu-system-x86_64 || true)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$img" "$tmp/disk.img"

# Runs "$@" with its serial console in $tmp/serial; prints the seconds until
# the marker appears there, then kills the process.
time_to_marker() {
    rm -f "$tmp/serial"
    : > "$tmp/serial"
    local start end pid
    start=$(date +%s%N)
    "$@" >/dev/null 2>&1 &
    pid=$!
    while ! grep -qa "$marker" "$tmp/serial" 2>/dev/null; do
        if ! kill -0 $pid 2>/dev/null; then echo "fail"; return; fi
        if (( $(date +%s%N) - start > 120000000000 )); then kill -9 $pid; echo "timeout"; return; fi
        sleep 0.005
    done
    end=$(date +%s%N)
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    awk -v ns=$((end - start)) 'BEGIN { printf "%.3f\n", ns / 1e9 }' 
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "n/a"; else print a[int((NR+1)/2)]}'; }

burrow=()
qemus=()
for ((i = 0; i < runs; i++)); do
    burrow+=("$(time_to_marker "$build/burrow-vm" --memory 128 --firmware "$bios" \
        --disk "$tmp/disk.img,if=virtio" --display none --serial "file:$tmp/serial" --no-rng)")
    if [ -n "$qemu" ]; then
        qemus+=("$(time_to_marker "$qemu" -accel kvm -M pc -m 128 -bios "$bios" -nodefaults \
            -display none -machine graphics=off -serial "file:$tmp/serial" \
            -drive "file=$tmp/disk.img,if=virtio,format=raw")")
    fi
done

b=$(printf '%s\n' "${burrow[@]}" | grep -E '^[0-9.]+$' | median)
echo "SeaBIOS -> boot sector text on serial, virtio-blk disk, median of $runs runs"
printf '  %-10s %8s s   (runs: %s)\n' burrow-vm "$b" "${burrow[*]}"
if [ -n "$qemu" ]; then
    q=$(printf '%s\n' "${qemus[@]}" | grep -E '^[0-9.]+$' | median)
    printf '  %-10s %8s s   (runs: %s)\n' qemu "$q" "${qemus[*]}"
    if [[ $b =~ ^[0-9.]+$ && $q =~ ^[0-9.]+$ ]]; then
        awk -v b="$b" -v q="$q" 'BEGIN { printf "  ratio burrow/qemu: %.2f\n", b / q }' 
    fi
else
    echo "  qemu-system-x86_64 not installed: no comparison"
fi
