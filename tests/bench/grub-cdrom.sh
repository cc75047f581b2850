#!/bin/bash
# Time from process start to GRUB's menu on the serial console: Debian's
# SeaBIOS booting Debian's GRUB rescue CD (package grub-rescue-pc) from the
# AHCI CD/DVD drive, under burrow-vm (--cdrom ISO --boot d) and under QEMU
# (Debian's qemu-system-x86, -cdrom ISO -boot d, same firmware; on its PIIX
# machine, whose CD drive is IDE, and on q35, whose CD drive is on ICH9 AHCI
# like ours) on the same machine in the same run.  Prints the median of N
# runs of each, side by side, and the ratios.
#
# Usage: tests/bench/grub-cdrom.sh [BUILD_DIR] [RUNS]
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
runs=${2:-3}
bios=/usr/share/seabios/bios-256k.bin
iso=""
for c in /usr/lib/grub-rescue/grub-rescue-cdrom.iso /usr/share/grub-rescue/grub-rescue-cdrom.iso; do
    [ -f "$c" ] && { iso=$c; break; }
done
marker="GNU GRUB  version"   # the menu's title, drawn first
limit_s=${GRUB_BENCH_LIMIT:-180}

for need in "$build/burrow-vm" "$bios"; do
    [ -e "$need" ] || { echo "grub-cdrom: missing $need (build first)"; exit 1; }
done
[ -n "$iso" ] || { echo "grub-cdrom: grub-rescue-cdrom.iso not found (install grub-rescue-pc)"; exit 1; }
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "grub-cdrom: /dev/kvm not accessible; nothing to measure"; exit 0; }
qemu=$(command -v qemu-system-x86_64 || true)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Runs "$@" with its serial console in $tmp/serial; prints the seconds until
# the marker appears there, then kills the process.
time_to_marker() {
    rm -f "$tmp/serial"
    : > "$tmp/serial"
    local start end pid
    start=$(date +%s%N)
    "$@" >/dev/null 2>&1 </dev/null &
    pid=$!
    while ! grep -qaF "$marker" "$tmp/serial" 2>/dev/null; do
        if ! kill -0 $pid 2>/dev/null; then echo "fail"; return; fi
        if (( $(date +%s%N) - start > limit_s * 1000000000 )); then kill -9 $pid; wait $pid 2>/dev/null; echo "timeout"; return; fi
        sleep 0.05
    done
    end=$(date +%s%N)
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    awk -v ns=$((end - start)) 'BEGIN { printf "%.2f\n", ns / 1e9 }'
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "n/a"; else print a[int((NR+1)/2)]}'; }

burrow=()
qemus=()
q35s=()
for ((i = 0; i < runs; i++)); do
    burrow+=("$(time_to_marker "$build/burrow-vm" --memory 256 --firmware "$bios" \
        --cdrom "$iso" --boot d --display none --serial "file:$tmp/serial" --no-rng)")
    if [ -n "$qemu" ]; then
        qemus+=("$(time_to_marker "$qemu" -accel kvm -M pc -m 256 -bios "$bios" -nodefaults \
            -display none -machine graphics=off -serial "file:$tmp/serial" \
            -cdrom "$iso" -boot d)")
        q35s+=("$(time_to_marker "$qemu" -accel kvm -M q35 -m 256 -bios "$bios" -nodefaults \
            -display none -machine graphics=off -serial "file:$tmp/serial" \
            -cdrom "$iso" -boot d)")
    fi
done

b=$(printf '%s\n' "${burrow[@]}" | grep -E '^[0-9.]+$' | median)
echo "SeaBIOS -> GRUB menu text on serial, grub-rescue-cdrom.iso on the CD drive, median of $runs runs"
printf '  %-10s %8s s   (runs: %s)   burrow-vm: AHCI CD/DVD drive\n' burrow-vm "$b" "${burrow[*]}"
if [ -n "$qemu" ]; then
    q=$(printf '%s\n' "${qemus[@]}" | grep -E '^[0-9.]+$' | median)
    printf '  %-10s %8s s   (runs: %s)   qemu: -M pc, IDE CD drive\n' qemu "$q" "${qemus[*]}"
    q35=$(printf '%s\n' "${q35s[@]}" | grep -E '^[0-9.]+$' | median)
    printf '  %-10s %8s s   (runs: %s)   qemu: -M q35, AHCI CD drive\n' qemu-q35 "$q35" "${q35s[*]}"
    if [[ $b =~ ^[0-9.]+$ && $q =~ ^[0-9.]+$ ]]; then
        awk -v b="$b" -v q="$q" 'BEGIN { printf "  ratio burrow/qemu (pc):  %.2f\n", b / q }'
    fi
    if [[ $b =~ ^[0-9.]+$ && $q35 =~ ^[0-9.]+$ ]]; then
        awk -v b="$b" -v q="$q35" 'BEGIN { printf "  ratio burrow/qemu (q35): %.2f\n", b / q }'
    fi
else
    echo "  qemu-system-x86_64 not installed: no comparison"
fi
