#!/bin/bash
# Keys typed with the control socket's send-keys reach Linux's input layer
# through the i8042 and atkbd: the guest reads the "AT Translated Set 2
# keyboard"'s evdev node and dumps its struct input_event records; the key
# codes and press/release values must be exactly the keys sent, in order
# (plain letters, a Shift combination, an E0-prefixed key, Caps Lock on and
# off, Enter).  Caps Lock also makes Linux set the keyboard's LEDs (the
# 0xED command through the i8042), reported as EV_LED events; the kernel
# logs no complaint about the keyboard.
# needs: hwkvm
# timeout: 900
BURROW_VM_TIMEOUT=${BURROW_VM_TIMEOUT:-600}
. "$(dirname "$0")/lib.sh"
linux_init

cat >"$BURROW_TMP/guest.sh" <<'GUEST'
# The keyboard's event handler, from its "H: Handlers=... eventN ..." line.
ev=$(awk '/^N: Name="AT Translated Set 2 keyboard"/ { k = 1 }
          k && /^H: / { for (i = 2; i <= NF; i++) { sub("^Handlers=", "", $i); if ($i ~ /^event[0-9]+$/) print $i }; k = 0 }' \
     /proc/bus/input/devices)
[ -n "$ev" ] && [ -c "/dev/input/$ev" ] || { echo "input: no keyboard event device"; cat /proc/bus/input/devices; exit 1; }
echo "input: keyboard /dev/input/$ev"
# Opened before "ready", so no event the host sends can be missed.
exec 3<"/dev/input/$ev"
cat <&3 >/tmp/events &
reader=$!
echo "input: ready"
# Until the release of Enter (EV_KEY 1, KEY_ENTER 28, value 0): the last 8
# bytes of a 24-byte record (type, code, value; little-endian).
n=0
until od -An -v -tx1 -w24 /tmp/events | grep -q ' 01 00 1c 00 00 00 00 00$'; do
    n=$((n + 1))
    [ $n -lt 3000 ] || { echo "input: no Enter release in 600 s"; break; }
    sleep 0.2
done
kill $reader
echo "input: $(wc -c </tmp/events) bytes of events"
od -An -v -tx1 -w24 /tmp/events | sed 's/^ */ev: /'
dmesg | grep -iE 'atkbd|i8042|serio' | sed 's/^\[[ 0-9.]*\] //; s/^/dmesg: /'
GUEST

linux_initramfs "$BURROW_TMP/initrd" "$BURROW_TMP/guest.sh" evdev
linux_start input --memory 256 --initrd "$BURROW_TMP/initrd" --append quiet
linux_wait_serial "input: ready"
burrow_note "keyboard:$(linux_guest_lines "input: keyboard")"

# "hello", Shift+W, "orld", Up (E0 75 in set 2), Caps Lock, "a", Caps Lock,
# Enter.
reply=$(linux_ctl send-keys '{"keys":["h","e","l","l","o","shift-w","o","r","l","d","up","caps_lock","a","caps_lock","ret"]}') ||
    burrow_fail "send-keys failed: $reply"
linux_wait_exit
linux_expect_pass

# events TYPE: the guest's records of that event type with value 1 (press,
# on) or 0 (release, off), as "CODE:VALUE"; autorepeats (value 2) would not
# belong to the keys sent.
events() {
    linux_guest_lines "ev: " | awk -v want="$1" '
        function hex(s,   i, v) {
            v = 0
            for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
            return v
        }
        # struct input_event on x86-64: 16 bytes of time, then type, code
        # (16 bits each) and value (32 bits), little-endian.
        NF == 24 && hex($18 $17) == want {
            value = hex($24 $23 $22 $21)
            if (value == 0 || value == 1) { printf "%s%d:%d", sep, hex($20 $19), value; sep = " " }
        }'
}
got=$(events 1)                 # EV_KEY
# KEY_H 35, KEY_E 18, KEY_L 38, KEY_O 24, KEY_LEFTSHIFT 42 with KEY_W 17,
# KEY_R 19, KEY_D 32, KEY_UP 103, KEY_CAPSLOCK 58, KEY_A 30, KEY_ENTER 28
# (linux/input-event-codes.h); a combination presses its modifier first and
# releases it last.
want=""
for k in 35 18 38 38 24 42+17 24 19 38 32 103 58 30 58 28; do
    key=${k#*+}
    [ "$key" != "$k" ] && want="$want ${k%+*}:1"
    want="$want $key:1 $key:0"
    [ "$key" != "$k" ] && want="$want ${k%+*}:0"
done
want=${want# }
burrow_note "key events seen: $got"
[ "$got" = "$want" ] || burrow_fail "the key events differ from the keys sent:
  got:  $got
  want: $want"
# EV_LED (0x11) LED_CAPSL (1): on with the first Caps Lock, off with the
# second.
leds=$(events 17)
burrow_note "LED events seen: $leds"
[ "$leds" = "1:1 1:0" ] || burrow_fail "Caps Lock's LED events are \"$leds\", expected \"1:1 1:0\""
burrow_note "$(linux_guest_lines "dmesg: ")"
if linux_guest_lines "dmesg: " | grep -iE 'spurious|unknown key|fail|timeout|error|lost'; then
    burrow_fail "the kernel complains about the keyboard"
fi
echo "PASS: send-keys arrived on the AT keyboard's evdev node as the exact key codes sent"
