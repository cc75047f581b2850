#!/bin/sh
# Installs every Debian package Burrow needs to build, run and test.
# Does nothing (and needs no network) when everything is already present.
set -eu

PACKAGES="
build-essential cmake pkg-config
clang libclang-rt-14-dev
libjansson-dev liburing-dev libcmocka-dev
libglib2.0-dev
libslirp-dev
libseccomp-dev
libusb-1.0-0-dev
libpulse-dev pulseaudio pulseaudio-utils python3-numpy
zlib1g-dev
qemu-utils
libvncserver-dev libsdl2-dev libpng-dev
seabios
ipxe-qemu
qemu-system-x86 qemu-system-gui
grub-rescue-pc
python3
acpica-tools
dmidecode
vncsnapshot tesseract-ocr tesseract-ocr-eng xvfb x11-apps x11-utils openbox xdotool openssl
libgtk-3-dev libgtk-vnc-2.0-dev libvte-2.91-dev
linux-image-amd64 busybox-static cpio kmod
gdb
xorriso mtools grub-pc-bin grub-common
at-spi2-core dbus-daemon python3-gi gir1.2-atspi-2.0 gir1.2-gtk-3.0 gir1.2-gtk-vnc-2.0 iproute2
"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages:$missing" >&2
    echo "install-deps: run as root (or with sudo) to install them" >&2
    exit 1
fi

echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
