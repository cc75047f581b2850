#!/bin/bash
# Crash consistency of the qcow2 writer: a process writing random sector
# patterns into a qcow2 image (and flushing now and then) is killed with
# SIGKILL at random moments, many times over, on the same images.  Every
# other pair of rounds is a power cut (BURROW_CRASH_POWERCUT=0 leaves them
# out): the writer runs under tests/tools/powercut.c,
# which keeps the image as its last completed fdatasync left it and the
# writes made since, and after the kill the image becomes that, with a
# random subset of those writes let through page by page
# (tests/tools/powercut-replay.py): a missing or misordered fdatasync
# shows there, where a plain kill keeps the page cache.  After every round
# `qemu-img check` must find no corruption (leaked clusters are allowed),
# and the image, read by qemu-img, must hold every write that a completed
# flush covered; any other sector holds what it held before the round or
# one of the round's later writes, whole.
# timeout: 1200
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init

WRITER=$BURROW_BUILD_DIR/tests/unit_test_qcow2
[ -x "$WRITER" ] || burrow_fail "$WRITER is missing: build the project first"
POWERCUT=$BURROW_BUILD_DIR/tests/powercut.so
[ -f "$POWERCUT" ] || burrow_fail "$POWERCUT is missing: build the project first"
REPLAY=$BURROW_SOURCE_DIR/tests/tools/powercut-replay.py
command -v qemu-img >/dev/null || burrow_skip "qemu-img not found (install qemu-utils)"
command -v python3 >/dev/null || burrow_skip "python3 not found"

ROUNDS=${BURROW_CRASH_ROUNDS:-30}

cat >"$BURROW_TMP/verify.py" <<'EOF'
# verify.py JOURNAL BEFORE.raw AFTER.raw: checks one round (see above).
import sys

journal, before_path, after_path = sys.argv[1:4]
before = open(before_path, 'rb').read()
after = open(after_path, 'rb').read()
if len(before) != len(after):
    sys.exit("image size changed: %d -> %d" % (len(before), len(after)))

writes, flushed_upto = [], {}
with open(journal) as f:
    for line in f:
        if not line.endswith('\n'):
            break                      # cut short by the kill
        p = line.split()
        if p[0] == 'S':
            writes.append((int(p[1]), int(p[2]), int(p[3]), int(p[4])))
        elif p[0] == 'F':
            flushed_upto[int(p[1])] = max(flushed_upto.get(int(p[1]), 0), int(p[2]))

# Per sector: the seqs it may hold, and whether its old content is still
# allowed (not when a flushed write covered it).
allowed = {}
nflushed = 0
for run, seq, first, n in writes:
    fl = seq <= flushed_upto.get(run, -1)
    nflushed += fl
    for s in range(first, first + n):
        if fl:
            allowed[s] = [False, [seq]]
        else:
            allowed.setdefault(s, [True, []])[1].append(seq)

tails = [bytes((b + i) & 0xff for i in range(16, 512)) for b in range(256)]
def pattern(seq, s):
    return seq.to_bytes(8, 'little') + s.to_bytes(8, 'little') + tails[(seq * 131 + s * 7) & 0xff]

bad = 0
for s, (old_ok, seqs) in allowed.items():
    got = after[s * 512:(s + 1) * 512]
    if old_ok and got == before[s * 512:(s + 1) * 512]:
        continue
    seq = int.from_bytes(got[:8], 'little')
    if seq in seqs and got == pattern(seq, s):
        continue
    bad += 1
    if bad <= 5:
        print("sector %d: holds %s, allowed %s%s" % (s, "seq %d" % seq if got[8:16] == s.to_bytes(8, 'little')
              else "other data", seqs, " or its old content" if old_ok else ""))
# Sectors no write touched must not have changed.
step = 512
for off in range(0, len(after), 1 << 20):
    if after[off:off + (1 << 20)] == before[off:off + (1 << 20)]:
        continue
    for s in range(off // step, min(len(after), off + (1 << 20)) // step):
        if s not in allowed and after[s * step:(s + 1) * step] != before[s * step:(s + 1) * step]:
            bad += 1
            if bad <= 10:
                print("sector %d changed though no write touched it" % s)
if bad:
    sys.exit("%d bad sectors" % bad)
print("%d writes (%d flushed), %d sectors checked" % (len(writes), nflushed, len(allowed)))
EOF

# Two images: 64 KiB clusters, and 512-byte clusters, whose refcount
# blocks and table fill up quickly (so kills land in refcount growth too).
layouts=("64M 16" "16M 9")
for k in 0 1; do
    set -- ${layouts[$k]}
    img=$BURROW_TMP/img$k.qcow2
    "$WRITER" crash-create "$img" "$(( ${1%M} * 1024 * 1024 ))" "$2" || burrow_fail "cannot create $img"
    qemu-img convert -O raw "$img" "$BURROW_TMP/prev$k.raw" || burrow_fail "qemu-img cannot read $img"
done

leaky=0
for round in $(seq 1 "$ROUNDS"); do
    k=$(( round % 2 ))
    img=$BURROW_TMP/img$k.qcow2
    journal=$BURROW_TMP/journal.$round
    cut=0
    [ "${BURROW_CRASH_POWERCUT:-1}" = 1 ] && cut=$(( (round / 2) % 2 ))
    if [ "$cut" = 1 ]; then
        rm -rf "$BURROW_TMP/cut" && mkdir "$BURROW_TMP/cut"
        LD_PRELOAD=$POWERCUT BURROW_BLOCK_SYNC=1 POWERCUT_FILE=$img POWERCUT_DIR=$BURROW_TMP/cut \
            "$WRITER" crash-writer "$img" "$journal" "$round" "$RANDOM$RANDOM" 2>"$BURROW_TMP/writer.err" &
    else
        "$WRITER" crash-writer "$img" "$journal" "$round" "$RANDOM$RANDOM" 2>"$BURROW_TMP/writer.err" &
    fi
    pid=$!
    # The kill lands at a random point of the writer's progress: once its
    # journal has that many lines, whatever the machine's speed.
    lines=$(( 1 + RANDOM % 200 ))
    start=$SECONDS
    while [ "$( (wc -l <"$journal") 2>/dev/null || echo 0)" -lt "$lines" ]; do
        kill -0 "$pid" 2>/dev/null ||
            burrow_fail "round $round: the writer ended before the kill: $(cat "$BURROW_TMP/writer.err")"
        [ $(( SECONDS - start )) -lt 300 ] ||
            burrow_fail "round $round: the writer journalled fewer than $lines lines in 300 s"
        sleep 0.01
    done
    kill -9 "$pid" 2>/dev/null
    { wait "$pid"; } 2>/dev/null
    rc=$?
    [ "$rc" = 137 ] || burrow_fail "round $round: the writer exited with $rc before the kill: $(cat "$BURROW_TMP/writer.err")"
    # A killed process's io_uring may hold the image (and its lock) a moment
    # longer than the process lives.
    unlocked() { ! grep -q ":$(stat -c %i "$img") " /proc/locks; }
    burrow_until "round $round: the killed writer's image lock to go" unlocked
    how=killed
    if [ "$cut" = 1 ]; then
        [ -f "$BURROW_TMP/cut/stable" ] || burrow_fail "round $round: powercut.so did not see the image opened"
        how=$(python3 "$REPLAY" "$BURROW_TMP/cut" "$img.cut" "$RANDOM") || burrow_fail "round $round: $how"
        mv "$img.cut" "$img"
    fi

    out=$(qemu-img check "$img" 2>&1)
    rc=$?
    case $rc in
        0) ;;
        3) leaky=$(( leaky + 1 )) ;;      # leaked clusters only: allowed
        *) burrow_fail "round $round: qemu-img check found corruption (status $rc): $out" ;;
    esac
    rm -f "$BURROW_TMP/now.raw"
    qemu-img convert -O raw "$img" "$BURROW_TMP/now.raw" || burrow_fail "round $round: qemu-img cannot read the image"
    res=$(python3 "$BURROW_TMP/verify.py" "$journal" "$BURROW_TMP/prev$k.raw" "$BURROW_TMP/now.raw" 2>&1) ||
        burrow_fail "round $round: $res"
    burrow_note "round $round (image $k): $how; check status $rc; $res"
    mv "$BURROW_TMP/now.raw" "$BURROW_TMP/prev$k.raw"
    rm -f "$journal"
done
burrow_note "ok: $ROUNDS kills and power cuts, no corruption ($leaky rounds left leaked clusters), flushed writes all present"
