#!/bin/bash
# Debian's bochs-drm against the VGA's Bochs VBE (DISPI) registers: the
# kernel's command line asks for 1280x800 on the connector (video=), the
# driver sets that mode when it loads, its fbdev emulation gives fbcon a
# framebuffer and the console switches to it.  Then:
#   - a VNC viewer connected before the driver loaded is sent a DesktopSize
#     of 1280x800, and a new viewer's ServerInit says 1280x800;
#   - text the guest writes to tty1 is read back from the VNC screen
#     (vncsnapshot, tesseract) and from the control socket's screenshot,
#     a 1280x800 PNG;
#   - when the guest blanks the screen (fb0's blank, as DPMS does), the
#     VNC screen is black, and the text comes back when it unblanks.
# The viewer's Enter key (VNC -> i8042 -> the guest's tty1) is what lets
# the guest load the driver and unblank; its pointer move (VNC -> the PS/2
# mouse -> psmouse's evdev node) is what lets it blank.
# needs: hwkvm
# timeout: 900
# The nested helper runs the guest about ten times slower than KVM on
# VMX/SVM, and tesseract with it.
BURROW_VM_TIMEOUT=${BURROW_VM_TIMEOUT:-600}
. "$(dirname "$0")/lib.sh"
linux_init
burrow_require_cmd vncsnapshot "install vncsnapshot"
burrow_require_cmd tesseract "install tesseract-ocr"

# What the guest writes on its screen; OCR reads it back word for word.
TEXT1="Burrow framebuffer console"
TEXT2="text from the Linux guest"

cat >"$BURROW_TMP/guest.sh" <<GUEST
# bochs-drm loads only once the host's VNC viewer is connected, so that the
# viewer sees the mode change: the viewer types Enter, which the guest
# waits for on tty1 (opened first, so that the key cannot come too early).
exec 3</dev/tty1
echo "display: waiting for Enter"
read -r _ <&3
echo "display: Enter seen"
sh /etc/load-later.sh
# The kernel's own words about the DRM driver and the console.
dmesg | grep -E 'bochs|fbcon|Console: switching|fb0' | grep -v 'command line' | sed 's/^\[[ 0-9.]*\] //; s/^/dmesg: /'
echo "fb0: \$(cat /sys/class/graphics/fb0/name) \$(cat /sys/class/graphics/fb0/virtual_size)"
for c in /sys/class/drm/card0-*; do
    echo "drm: \${c##*/} \$(cat \$c/status) \$(cat \$c/enabled)"
done
# Clear tty1, hide the cursor, and write the text a few lines down.
printf '\033[2J\033[H\033[?25l\n\n\n   %s\n\n   %s\n' "$TEXT1" "$TEXT2" >/dev/tty1
echo "display: ready"
# Blanking, as a screen saver or DPMS does it: the CRTC goes inactive and
# bochs-drm blanks the screen through the attribute controller's palette
# address source bit, leaving the VBE mode as it is; then back.  A pointer
# move on the PS/2 mouse says when: every keyboard event, a key's release
# too, makes the VT unblank its console, and a release that came after the
# blank would undo it.
mouse=\$(awk '/^N: Name=/ { m = /PS\/2/ } m && /^H: Handlers=/ { for (i = 2; i <= NF; i++) if (\$i ~ /^event/) print \$i }' /proc/bus/input/devices | head -n 1)
[ -n "\$mouse" ] || { echo "display: no PS/2 mouse event device"; cat /proc/bus/input/devices; exit 1; }
echo "display: mouse /dev/input/\$mouse"
echo "display: waiting for the pointer"
dd if=/dev/input/\$mouse of=/dev/null bs=24 count=1 2>/dev/null
echo 1 >/sys/class/graphics/fb0/blank
echo "display: blanked"
read -r _ <&3
echo 0 >/sys/class/graphics/fb0/blank
echo "display: unblanked"
touch /keep-running
GUEST

linux_initramfs "$BURROW_TMP/initrd" "$BURROW_TMP/guest.sh" evdev psmouse +bochs
PORT=$(linux_free_port)
linux_start display --memory 512 --initrd "$BURROW_TMP/initrd" --display "vnc:127.0.0.1:$PORT" \
    --append "quiet consoleblank=0 video=Virtual-1:1280x800 fbcon=font:TER16x32"

# One VNC viewer for the whole test, connected before the driver loads: it
# types Enter (keysym Return) or moves the pointer whenever the guest waits
# for it, follows the
# mode change, and looks at every pixel of the blanked and unblanked
# screen.  The test tells it when, through files.
VIEWER=$BURROW_TMP/viewer.out
burrow_add_log "$VIEWER"
python3 "$BURROW_SOURCE_DIR/tests/tools/rfb-viewer.py" "$PORT" --timeout "$BURROW_VM_TIMEOUT" \
    "when=$BURROW_TMP/go-driver" key=0xff0d size=1280x800 new-viewer \
    "when=$BURROW_TMP/go-blank" move=10,10 move=200,150 "when=$BURROW_TMP/blanked" dark=30 \
    key=0xff0d "when=$BURROW_TMP/unblanked" bright=30 >"$VIEWER" 2>&1 &
viewer_pid=$!
# viewer_line PREFIX: waits for the viewer's line starting with PREFIX.
viewer_line() {
    local start=$SECONDS
    until grep -q "^$1" "$VIEWER"; do
        kill -0 "$viewer_pid" 2>/dev/null || burrow_fail "the VNC viewer ended before \"$1\""
        [ $((SECONDS - start)) -lt "$BURROW_VM_TIMEOUT" ] || burrow_fail "the VNC viewer never said \"$1\""
        sleep 0.2
    done
}
linux_wait_serial "display: waiting for Enter"
touch "$BURROW_TMP/go-driver"
linux_wait_serial "display: ready"
viewer_line new-viewer
burrow_note "VNC viewer: $(tr '\n' ';' <"$VIEWER")"
before=$(awk '$1 == "serverinit" { print $2 }' "$VIEWER")
[ -n "$before" ] && [ "$before" != 1280x800 ] ||
    burrow_fail "the framebuffer was ${before:-?} before the driver loaded"
grep -qx "desktopsize 1280x800" "$VIEWER" ||
    burrow_fail "the connected viewer got no DesktopSize of 1280x800"
grep -qx "new-viewer 1280x800" "$VIEWER" ||
    burrow_fail "a new viewer's ServerInit is not 1280x800"

burrow_note "$(linux_guest_lines "dmesg: ")"
burrow_expect_text "$LINUX_SERIAL" "fb0: bochs-drmdrmfb frame buffer device"
burrow_expect_prefix "$LINUX_SERIAL" "dmesg: Console: switching to colour frame buffer device 80x25"
burrow_expect_line "$LINUX_SERIAL" "fb0: bochs-drmdrmfb 1280,800"
burrow_expect_line "$LINUX_SERIAL" "drm: card0-Virtual-1 connected enabled"

# The text on the VNC screen.  fbcon draws it when the guest writes; the
# VNC server sends what changed since, so a few tries allow for the
# display's refresh.
ocr() {
    tesseract "$1" stdout 2>/dev/null | tr -s ' \n' ' '
}
shows_text() {
    grep -qF "$TEXT1" <<<"$1" && grep -qF "$TEXT2" <<<"$1"
}
# jpeg_size FILE, png_size FILE: a picture's WIDTHxHEIGHT, from the JPEG's
# start-of-frame marker or the PNG's IHDR.
jpeg_size() {
    od -An -v -tx1 "$1" | tr -s ' ' '\n' | awk 'NF { b[n++] = $1 }
        END { for (i = 0; i + 8 < n; i++) if (b[i] == "ff" && b[i + 1] ~ /^c[0-2]$/) { print b[i + 7] b[i + 8], b[i + 5] b[i + 6]; exit } }' |
        { read -r w h && echo "$((16#$w))x$((16#$h))"; }
}
png_size() {
    local a b c d e f g h
    read -r a b c d e f g h < <(od -An -tu1 -j16 -N8 "$1")
    echo "$((a << 24 | b << 16 | c << 8 | d))x$((e << 24 | f << 16 | g << 8 | h))"
}
# snapshot_text: the VNC screen's text, in $text (a few tries).
snapshot_text() {
    local _
    for _ in $(seq 1 5); do
        timeout 60 vncsnapshot -quiet "127.0.0.1::$PORT" "$BURROW_TMP/screen.jpg" \
            </dev/null >"$BURROW_TMP/vncsnapshot.log" 2>&1 ||
            burrow_fail "vncsnapshot failed: $(tail -n 3 "$BURROW_TMP/vncsnapshot.log")"
        text=$(ocr "$BURROW_TMP/screen.jpg")
        shows_text "$text" && break
        sleep 1
    done
}
t0=$SECONDS
snapshot_text
shows_text "$text" || burrow_fail "the VNC screen does not show the guest's text; OCR: $text"
jpg=$(jpeg_size "$BURROW_TMP/screen.jpg")
[ "$jpg" = 1280x800 ] || burrow_fail "vncsnapshot's picture is $jpg, not 1280x800"
burrow_note "VNC screen ($jpg, vncsnapshot, $((SECONDS - t0)) s): OCR read \"$text\""

# The control socket's screenshot: the same picture, as a 1280x800 PNG.
t0=$SECONDS
reply=$(linux_ctl screenshot "{\"path\": \"$BURROW_TMP/shot.png\"}") ||
    burrow_fail "screenshot failed: $reply"
png=$(png_size "$BURROW_TMP/shot.png")
[ "$png" = 1280x800 ] || burrow_fail "the screenshot is $png, not 1280x800 (reply: $reply)"
text=$(ocr "$BURROW_TMP/shot.png")
shows_text "$text" || burrow_fail "the screenshot does not show the guest's text; OCR: $text"
burrow_note "control screenshot ($png PNG, $((SECONDS - t0)) s): OCR read \"$text\""

# Blanked: not one pixel lit.  Unblanked: the text again.
linux_wait_serial "display: waiting for the pointer"
touch "$BURROW_TMP/go-blank"
burrow_until "pointer move from the VNC viewer" grep -qx "move 200,150" "$VIEWER"
input=$(linux_ctl status | python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["return"]["input"]))')
burrow_note "input after the pointer moved: $input"
linux_wait_serial "display: blanked" 300
touch "$BURROW_TMP/blanked"
linux_wait_serial "display: unblanked"
touch "$BURROW_TMP/unblanked"
wait "$viewer_pid" || burrow_fail "the VNC viewer failed: $(tail -n 3 "$VIEWER")"
burrow_note "VNC viewer: $(tr '\n' ';' <"$VIEWER")"
grep -qx dark "$VIEWER" ||
    burrow_fail "the blanked screen is not black: $(grep '^not dark' "$VIEWER")"
grep -q '^bright: ' "$VIEWER" || burrow_fail "the screen stayed black after unblanking"
snapshot_text
shows_text "$text" || burrow_fail "the unblanked VNC screen does not show the guest's text; OCR: $text"

linux_ctl quit >/dev/null || burrow_fail "quit failed"
linux_wait_exit
burrow_expect_status 0 "quit"
echo "PASS: bochs-drm set 1280x800 and fbcon took the console; VNC and the screenshot show its text at that size; blanking turns the screen black and back"
