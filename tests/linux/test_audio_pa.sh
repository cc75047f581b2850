#!/bin/bash
# Sound through PulseAudio under Debian's kernel: burrow-vm plays into a
# private PulseAudio server the test starts (burrow_pa_start: null sinks, a
# socket of its own), with the microphone on (--audio-in on).
#  - Playing: snd-hda-intel binds the card, /proc/asound/cards lists it;
#    the guest plays two seconds of the known signal
#    (tests/guests/linux/pcmplay.c: a 1 kHz sine on the left, a numbered
#    sequence on the right); parec records the sink's monitor on the host
#    and the recording is checked against the original: cross-correlation
#    finds where it starts, then every sounding frame must be the signal's
#    next one or a later one (gaps of silence from a stalled host are
#    counted, not failed), exactly.
#  - Recording: while the guest has no capture running (it waits for the
#    host's Enter on tty1), the server lists no record stream of the VM;
#    once the guest records
#    (tests/guests/linux/pcmrecord.c), the VM sends an audio-recording
#    event and status says "recording", the host plays the same signal
#    into the null sink whose monitor is the VM's source (pacat), and the
#    guest finds the tone in what it recorded: 1 kHz within 0.5%; its
#    breaks are reported.  When the guest stops, another event says so.
# The target latency is 500 ms: the nested helper runs ten times slower
# than a desktop, and its stalls must not break the sound; no timing is
# asserted.
# needs: hwkvm
# timeout: 1500
BURROW_VM_TIMEOUT=${BURROW_VM_TIMEOUT:-1200}
. "$(dirname "$0")/lib.sh"
linux_init
burrow_require_guest pcmplay
burrow_require_guest pcmrecord
python3 -c 'import numpy' 2>/dev/null ||
    burrow_fail "python3-numpy is missing: packaging/install-deps.sh installs it"
FRAMES=96000            # what the guest plays: 2 s
TONE=96000              # what it must record of the host's tone: 2 s
MAX=$((48000 * 300))    # how long it records at most, in its own time

burrow_pa_start
LINUX_PIDS+=("$BURROW_PA_PID")
trap 'linux_cleanup' EXIT

# The host's tone, as pcmplay's signal, for 60 s (the guest takes what it
# needs once it hears it).
python3 - "$BURROW_TMP/tone.raw" <<'PY' || burrow_fail "cannot write the tone"
import math, sys
import numpy as np
k = np.arange(60 * 48000)
sine = np.array([round(12000 * math.sin(2 * math.pi * i / 48)) for i in range(48)], dtype=np.int16)
out = np.empty((len(k), 2), dtype="<i2")
out[:, 0] = sine[k % 48]
out[:, 1] = ((k * 31 + 12345) & 0xffff).astype(np.uint16).astype(np.int16)
out.tofile(sys.argv[1])
PY

cat >"$BURROW_TMP/guest.sh" <<GUEST
dmesg -n 1
exec 3</dev/tty1
n=0
until [ -e /dev/snd/pcmC0D0p ] && [ -e /dev/snd/pcmC0D0c ] && [ -e /dev/snd/controlC0 ]; do
    n=\$((n + 1))
    [ \$n -lt 300 ] || { echo "audio: no playback and capture devices in 30 s"; ls /dev/snd; exit 1; }
    sleep 0.1
done
sed 's/^/cards: /' /proc/asound/cards
/pcmplay /dev/snd/pcmC0D0p $FRAMES /dev/snd/controlC0 || exit 1
echo "guest: played"
# Records only once the host has looked for a record stream and pressed Enter.
read -r _ <&3
/pcmrecord /dev/snd/pcmC0D0c $MAX $TONE /dev/snd/controlC0 || exit 1
dmesg | grep -iE 'hda|snd|sound' | sed 's/^\[[ 0-9.]*\] //; s/^/dmesg: /'
GUEST

linux_initramfs "$BURROW_TMP/initrd" "$BURROW_TMP/guest.sh" snd-hda-codec-generic snd-hda-intel \
    -- "$BURROW_GUESTS/pcmplay=/pcmplay" "$BURROW_GUESTS/pcmrecord=/pcmrecord"

# parec records the VM's sink from before the VM starts.
burrow_add_log "$BURROW_TMP/parec.err"
burrow_pa parec --raw --format=s16le --rate=48000 --channels=2 --latency-msec=20 \
    --device=burrow_out.monitor >"$BURROW_TMP/out.raw" 2>"$BURROW_TMP/parec.err" &
parec_pid=$!
LINUX_PIDS+=("$parec_pid")
# How many record streams the server has (parec's, the VM's).
recording() { burrow_pa pactl list short source-outputs | grep -c protocol-native; }
parec_up() { [ "$(recording)" -ge 1 ]; }
burrow_until "parec recording" parec_up

linux_start audiopa --memory 256 --initrd "$BURROW_TMP/initrd" --append quiet --audio-in on \
    --audio "pa,server=$BURROW_PA_SERVER,sink=burrow_out,source=burrow_mic.monitor,latency=500"
linux_watch_events "$BURROW_TMP/events"

# The microphone is not in use until the guest records: parec's is the
# only record stream.  The guest waits for Enter before it records.
linux_wait_serial "guest: played"
[ "$(recording)" = 1 ] || burrow_fail "a record stream of the VM while the guest does not record"
reply=$(linux_ctl send-keys '{"keys":["ret"]}') || burrow_fail "send-keys failed: $reply"

linux_wait_serial "pcmrecord: recording"
has_event() { grep -F '"event":"audio-recording"' "$BURROW_TMP/events" | grep -qF "\"recording\":$1"; }
burrow_until "audio-recording event (true)" has_event true
linux_ctl status | grep -qF '"recording":true' || burrow_fail "status does not say the guest records"
[ "$(recording)" = 2 ] || burrow_fail "no record stream of the VM while the guest records"
burrow_pa pacat --raw --format=s16le --rate=48000 --channels=2 --latency-msec=500 \
    --device=burrow_mic <"$BURROW_TMP/tone.raw" 2>"$BURROW_TMP/pacat.err" &
LINUX_PIDS+=("$!")

linux_wait_exit
linux_expect_pass
burrow_until "audio-recording event (false)" has_event false
kill "$parec_pid" 2>/dev/null
wait "$parec_pid" 2>/dev/null

linux_guest_lines "cards: " | grep -q "HDA-Intel" || burrow_fail "/proc/asound/cards does not list the HDA card"
burrow_note "$(linux_guest_lines "pcmplay: " | grep -v 'state ')"
burrow_note "$(linux_guest_lines "pcmrecord: ")"
grep -E "audio" "$BURROW_TMP/audiopa.err" | sed 's/^/vm: /'

# The microphone: the guest found the tone.
line=$(linux_guest_lines "pcmrecord: tone at ")
[ -n "$line" ] || burrow_fail "the host's tone did not reach the guest: $(linux_guest_lines "pcmrecord: ")"
hz=$(sed -n 's/.* frames, \([0-9.]*\) Hz,.*/\1/p' <<<"$line")
python3 -c "import sys; f = float(sys.argv[1]); sys.exit(abs(f - 1000) > 5)" "$hz" ||
    burrow_fail "the tone the guest recorded is at $hz Hz, not 1 kHz"

# The speaker: cross-correlation of parec's recording with what was played
# finds where the signal starts; then every sounding frame after it must be
# a frame of the signal, exactly, in order.  A stalled host (the nested
# helper, a loaded machine) may leave gaps of silence where the server ran
# dry or the VM dropped frames: they are counted and reported, not failed,
# as no timing is asserted; a wrong, garbled or reordered frame fails.
python3 - "$BURROW_TMP/out.raw" "$FRAMES" <<'PY' || burrow_fail "what the host heard is not what the guest played"
import math, sys
import numpy as np
raw = np.fromfile(sys.argv[1], dtype="<i2")
frames = int(sys.argv[2])
rec = raw[: len(raw) // 2 * 2].reshape(-1, 2).astype(np.int64)
k = np.arange(frames)
sine = np.array([round(12000 * math.sin(2 * math.pi * i / 48)) for i in range(48)], dtype=np.int64)
right = ((k * 31 + 12345) & 0xffff).astype(np.uint16).astype(np.int16).astype(np.int64)
orig = np.stack([sine[k % 48], right], axis=1)
loud = np.nonzero(np.any(rec != 0, axis=1))[0]
if len(loud) == 0:
    sys.exit(f"parec recorded {len(rec)} frames of silence")
start = max(0, loud[0] - 48000)
seg = rec[start: loud[0] + frames + 10 * 48000].astype(np.float64)
n = 1 << int(np.ceil(np.log2(len(seg) + frames)))
corr = np.zeros(n)
for c in range(2):
    corr += np.fft.irfft(np.fft.rfft(seg[:, c], n) * np.conj(np.fft.rfft(orig[:, c].astype(np.float64), n)), n)
lag = int(np.argmax(corr[: len(seg)]))
part = seg[lag: lag + frames]
coef = float(np.sum(part * orig[: len(part)]) / math.sqrt(np.sum(part * part) * np.sum(orig * orig)))
print(f"xcorr: the played signal's best match at frame {start + lag} of {len(rec)}, "
      f"normalized coefficient {coef:.5f}")
# Each right-channel value names at most two frames of the signal.
where = {}
for i, v in enumerate(right.tolist()):
    where.setdefault(v, []).append(i)
# The signal begins at the first 48 sounding frames that are 48 of its
# frames in a row (what the DMA read before it may be anything).
first = None
for pos in loud:
    if pos + 48 > len(rec):
        break
    for i in where.get(int(rec[pos, 1]), []):
        if i + 48 <= frames and np.array_equal(rec[pos: pos + 48], orig[i: i + 48]):
            first = pos
            break
    if first is not None:
        break
if first is None:
    sys.exit("no 48 frames of the signal in a row were recorded")
print(f"signal: begins at frame {first}")
nxt, got, gaps, bad = 0, 0, 0, []
for pos in range(first, len(rec)):
    l, r = int(rec[pos, 0]), int(rec[pos, 1])
    if l == 0 and r == 0:
        continue
    cand = [i for i in where.get(r, []) if i >= nxt]
    if not cand:
        bad.append((pos, l, r))
        continue
    i = cand[0]
    if l != sine[i % 48]:
        bad.append((pos, l, r))
        continue
    if i != nxt:
        gaps += 1
    got += 1
    nxt = i + 1
    if nxt == frames:
        break
print(f"signal: {got} of {frames} frames arrived exactly and in order, {frames - got} missing in {gaps} gaps; "
      f"{len(bad)} wrong frames")
if bad:
    sys.exit(f"{len(bad)} frames are not frames of the signal, e.g. at {bad[:3]}")
if got == 0:
    sys.exit("no frame of the signal arrived")
PY
echo "PASS: the guest's sound reached the host's PulseAudio (cross-correlated) and the host's tone reached the guest's microphone"
