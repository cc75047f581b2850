#!/bin/bash
# Sound under Debian's kernel: snd-hda-intel binds burrow-vm's HDA
# controller (--audio wav:PATH) and snd-hda-codec-generic its codec;
# /proc/asound/cards lists the card, the codec's line out is the only
# output and, with --audio-in off, the microphone pin says no connection.
# The guest turns the mixer's playback controls up (the kernel leaves the
# amps muted) and the amp is then at 0 dB.  The guest plays
# two seconds of a known signal through ALSA's PCM ioctls
# (tests/guests/linux/pcmplay.c: a 1 kHz sine on the left, a frame number on
# the right); once the VM has powered off, the host WAV file holds every
# one of those frames, in order and exactly, after whatever the DMA read
# before the signal began.  The kernel logs no HDA errors.
# needs: hwkvm
# timeout: 900
BURROW_VM_TIMEOUT=${BURROW_VM_TIMEOUT:-600}
. "$(dirname "$0")/lib.sh"
linux_init
burrow_require_guest pcmplay
FRAMES=96000

cat >"$BURROW_TMP/guest.sh" <<GUEST
dmesg -n 1
n=0
until [ -e /dev/snd/pcmC0D0p ]; do
    n=\$((n + 1))
    [ \$n -lt 300 ] || { echo "audio: no playback device in 30 s"; cat /proc/asound/cards; dmesg | tail -n 30; exit 1; }
    sleep 0.1
done
sed 's/^/cards: /' /proc/asound/cards
codec() { grep -E '^Codec|^Vendor Id|^Node|Pin Default|Amp-Out vals' /proc/asound/card0/codec#0 | sed "s/^/\$1: /"; }
codec codec
/pcmplay /dev/snd/pcmC0D0p $FRAMES /dev/snd/controlC0
rc=\$?
codec after
grep -i hda /proc/interrupts | sed 's/^/irq: /'
dmesg | grep -iE 'hda|snd|sound' | sed 's/^\[[ 0-9.]*\] //; s/^/dmesg: /'
exit \$rc
GUEST

linux_initramfs "$BURROW_TMP/initrd" "$BURROW_TMP/guest.sh" snd-hda-codec-generic snd-hda-intel \
    -- "$BURROW_GUESTS/pcmplay=/pcmplay"
WAV=$BURROW_TMP/out.wav
linux_start audio --memory 256 --initrd "$BURROW_TMP/initrd" --audio "wav:$WAV" --append quiet
linux_wait_exit
linux_expect_pass

linux_guest_lines "cards: " | grep -q "HDA-Intel" || burrow_fail "/proc/asound/cards does not list the HDA card"
burrow_note "$(linux_guest_lines "cards: ")"
burrow_note "$(linux_guest_lines "codec: ")"
linux_guest_lines "codec: " | grep -q "Vendor Id: 0x42550001" || burrow_fail "the codec is not Burrow's"
linux_guest_lines "codec: " | grep -q "Pin Default 0x411111f0: \[N/A\]" ||
    burrow_fail "with --audio-in off, the microphone pin is not 'no connection'"
linux_guest_lines "after: " | grep -q "Amp-Out vals:  \[0x3f 0x3f\]" ||
    burrow_fail "the line out's amp is not at 0 dB after the mixer set it so"
burrow_note "$(linux_guest_lines "pcmplay: ")"
if linux_guest_lines "dmesg: " | grep -iE 'error|fail|timeout|unable|cannot|bad |no response|falling back'; then
    burrow_fail "the kernel complains about the sound card"
fi

# Every frame the guest played, in order: find the first, compare the rest.
python3 - "$WAV" "$FRAMES" <<'PY' || burrow_fail "the WAV file does not hold what the guest played"
import math, struct, sys
path, frames = sys.argv[1], int(sys.argv[2])
data = open(path, "rb").read()
if data[:4] != b"RIFF" or data[8:16] != b"WAVEfmt ":
    sys.exit("not a WAV file")
ch, rate = struct.unpack_from("<HI", data, 22)
bits, = struct.unpack_from("<H", data, 34)
size, = struct.unpack_from("<I", data, 40)
if (ch, rate, bits) != (2, 48000, 16):
    sys.exit(f"format {rate} Hz {ch} channels {bits} bits, not 48000/2/16")
if size != len(data) - 44:
    sys.exit(f"the header says {size} data bytes, the file has {len(data) - 44}")
got = struct.unpack_from(f"<{size // 2}h", data, 44)
sine = [round(12000 * math.sin(2 * math.pi * k / 48)) for k in range(48)]
def right(k):
    v = (k * 31 + 12345) & 0xffff
    return v - 0x10000 if v >= 0x8000 else v
n = len(got) // 2
start = next((i for i in range(n) if got[2 * i] == sine[0] and got[2 * i + 1] == right(0)
              and i + 1 < n and got[2 * i + 3] == right(1)), None)
if start is None:
    sys.exit(f"the signal's first frame is not among the {n} frames recorded")
if n - start < frames:
    sys.exit(f"only {n - start} of {frames} frames after the start (frame {start})")
for k in range(frames):
    l, r = got[2 * (start + k)], got[2 * (start + k) + 1]
    if (l, r) != (sine[k % 48], right(k)):
        sys.exit(f"frame {k} (file frame {start + k}): {l}/{r}, played {sine[k % 48]}/{right(k)}")
print(f"audio: {frames} frames exact from file frame {start} of {n}")
PY
echo "PASS: Debian's snd-hda-intel played $FRAMES frames that reached the host's WAV file exactly"
