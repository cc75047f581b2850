#!/bin/bash
# --display sdl under Xvfb: a window titled "NAME - Burrow" shows the guest's
# screen (SeaBIOS's banner and the demo guest's text, read from a dump of the
# X screen with tesseract).
# needs: kvm
# timeout: 900
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
burrow_require_kvm
burrow_require_vm
burrow_require_guest demo.img
burrow_require_cmd Xvfb "install xvfb"
burrow_require_cmd xwd "install x11-apps"
burrow_require_cmd tesseract "install tesseract-ocr"
burrow_require_file /usr/share/seabios/vgabios-stdvga.bin "install Debian's seabios"

d=$("$BURROW_SOURCE_DIR/tests/tools/start-xvfb" "$BURROW_TMP/xvfb" 1024x768x24) ||
    burrow_fail "Xvfb did not start"
xvfb=$(cat "$BURROW_TMP/xvfb.pid")
cp "$BURROW_GUESTS/demo.img" "$BURROW_TMP/disk.img"
burrow_add_log "$BURROW_TMP/vm.err"
# burrow-vm picks SDL's software renderer itself (no GL driver, no llvmpipe).
DISPLAY=":$d" timeout -k 5 "$BURROW_VM_TIMEOUT" "$BURROW_VM" --name sdl-test --memory 64 \
    --disk "$BURROW_TMP/disk.img" --display sdl --serial none </dev/null >/dev/null 2>"$BURROW_TMP/vm.err" &
vmpid=$!
trap 'kill $vmpid $xvfb 2>/dev/null; wait 2>/dev/null; rm -rf "$BURROW_TMP"' EXIT

# shows_guest: the X screen shows SeaBIOS's banner and the demo guest's text.
shows_guest() {
    kill -0 $vmpid 2>/dev/null || burrow_fail "burrow-vm ended early"
    DISPLAY=":$d" xwd -root -silent >"$BURROW_TMP/screen.xwd" || return 1
    python3 "$BURROW_SOURCE_DIR/tests/tools/xwd2png.py" "$BURROW_TMP/screen.xwd" "$BURROW_TMP/screen.png" ||
        return 1
    tesseract "$BURROW_TMP/screen.png" - 2>/dev/null >"$BURROW_TMP/screen.txt"
    grep -q "SeaBIOS" "$BURROW_TMP/screen.txt" && grep -q "Burrow demo" "$BURROW_TMP/screen.txt"
}
burrow_add_log "$BURROW_TMP/screen.txt"
burrow_until "guest in the window" shows_guest
if command -v xdotool >/dev/null; then
    DISPLAY=":$d" xdotool search --name "sdl-test - Burrow" >/dev/null ||
        burrow_fail "no window titled 'sdl-test - Burrow'"
    burrow_note "ok: window 'sdl-test - Burrow'"
fi
echo "PASS: the SDL window shows the guest"
