# shellcheck shell=bash
# The Linux-guest layer: Debian's own kernel and drivers run against
# burrow-vm's devices.  Guest images are built here, from Debian packages
# only: the kernel (linux-image-amd64), busybox-static and the kernel's
# modules, in an initramfs.  Source it after nothing else:
#     . "$(dirname "$0")/lib.sh"
#     linux_init
# A test writes the guest's part as a busybox shell script and boots it:
#     linux_initramfs "$BURROW_TMP/initrd" "$BURROW_TMP/guest.sh" virtio_blk ...
#     linux_boot NAME --initrd "$BURROW_TMP/initrd" [burrow-vm options...]
# The guest prints on ttyS0 (the --serial file), ends with the line
# "burrow-guest: exit N" and powers off.
. "$(dirname "${BASH_SOURCE[0]}")/../kvm/lib.sh"

# The modules of every test image, in load order with their dependencies;
# the guest loads only those a test names (and what they depend on).
LINUX_CMDLINE_BASE="console=ttyS0 panic=-1 oops=panic"

# linux_init: the usual test set-up, KVM able to run Linux (natively on
# VMX/SVM, else the test runs in the nested helper), Debian's kernel.
linux_init() {
    burrow_init
    burrow_require_hwkvm
    burrow_require_vm
    burrow_require_cmd cpio "install cpio"
    LINUX_KERNEL=${BURROW_LINUX_KERNEL:-$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)}
    [ -n "$LINUX_KERNEL" ] && [ -r "$LINUX_KERNEL" ] ||
        burrow_fail "no Debian kernel in /boot: packaging/install-deps.sh installs linux-image-amd64"
    LINUX_KVER=${LINUX_KERNEL##*/vmlinuz-}
    LINUX_MODDIR=/lib/modules/$LINUX_KVER
    [ -d "$LINUX_MODDIR/kernel" ] || burrow_fail "$LINUX_MODDIR is missing (the modules of $LINUX_KERNEL)"
    [ -x /bin/busybox ] || burrow_fail "/bin/busybox is missing: install busybox-static"
    LINUX_CACHE=$BURROW_BUILD_DIR/linux-guest
    mkdir -p "$LINUX_CACHE" || burrow_fail "cannot create $LINUX_CACHE"
}

# linux_module_files MODULE...: the .ko files (relative to the modules
# folder) the modules need, dependencies first, each once.
linux_module_files() {
    local m
    for m in "$@"; do
        modprobe -S "$LINUX_KVER" -d / --show-depends "$m" 2>/dev/null ||
            { echo "MISSING $m"; continue; }
    done | awk -v base="$LINUX_MODDIR/" '
        $1 == "MISSING" { print "MISSING " $2; next }
        $1 == "insmod" { f = $2; sub(base, "", f); if (!seen[f]++) print f }'
}

# linux_initramfs OUT SCRIPT [MODULE...] [+MODULE...] [-- FILE=GUESTPATH...]:
# an initramfs whose /init (tests/linux/guest-init) loads MODULE... and runs
# SCRIPT as /test.sh.  +MODULE is put in but not loaded: the script loads
# such modules (with their dependencies) when it chooses, with
# "sh /etc/load-later.sh".
# FILE=GUESTPATH copies a host file in (mode kept).  The part common to all
# tests (busybox, the init) is built once per build tree.
linux_initramfs() {
    local out=$1 script=$2
    shift 2
    local mods=() later=() files=()
    while [ $# -gt 0 ]; do
        if [ "$1" = -- ]; then
            shift
            files=("$@")
            break
        fi
        case $1 in
        +*) later+=("${1#+}") ;;
        *) mods+=("$1") ;;
        esac
        shift
    done
    local init=$BURROW_SOURCE_DIR/tests/linux/guest-init
    local key base
    key=$(cat /bin/busybox "$init" | cksum | cut -d' ' -f1)
    base=$LINUX_CACHE/base-$key.cpio.gz
    if [ ! -s "$base" ]; then
        (
            flock 9
            [ -s "$base" ] && exit 0
            local root
            root=$(mktemp -d "$LINUX_CACHE/base.XXXXXX") || exit 1
            mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,mnt,lib/modules}
            cp /bin/busybox "$root/bin/busybox"
            cp "$init" "$root/init"
            chmod 755 "$root/init"
            (cd "$root" && find . | cpio -o -H newc --quiet -R 0:0 | gzip -1) >"$base.tmp" &&
                mv "$base.tmp" "$base"
            local rc=$?
            rm -rf "$root"
            exit $rc
        ) 9>"$LINUX_CACHE/.lock" || burrow_fail "could not build the guest's base initramfs"
    fi
    # The test's own part: its script, its modules and files, as an
    # uncompressed archive in front of the common one (the kernel unpacks
    # concatenated archives; after a gzip one it may lose its place).
    local extra f
    extra=$(mktemp -d "$BURROW_TMP/initramfs.XXXXXX")
    mkdir -p "$extra/etc" "$extra/lib/modules"
    cp "$script" "$extra/test.sh"
    : >"$extra/etc/modules.order"
    [ ${#mods[@]} -eq 0 ] || linux_put_modules "$extra" modules.order "${mods[@]}"
    if [ ${#later[@]} -gt 0 ]; then
        linux_put_modules "$extra" modules.later "${later[@]}"
        cat >"$extra/etc/load-later.sh" <<'EOF'
while read -r m; do
    insmod "/lib/modules/$m" 2>/tmp/insmod.err || grep -q "File exists" /tmp/insmod.err ||
        echo "burrow-guest: insmod $m: $(cat /tmp/insmod.err)"
done </etc/modules.later
EOF
    fi
    local spec
    for spec in "${files[@]+"${files[@]}"}"; do
        mkdir -p "$extra/$(dirname "${spec#*=}")"
        cp -p "${spec%%=*}" "$extra/${spec#*=}" || burrow_fail "cannot copy ${spec%%=*} into the initramfs"
    done
    (cd "$extra" && find . | cpio -o -H newc --quiet -R 0:0) >"$extra.cpio" ||
        burrow_fail "cpio failed"
    cat "$extra.cpio" "$base" >"$out"
    rm -rf "$extra" "$extra.cpio"
}

# linux_put_modules DIR LIST MODULE...: the modules' files, dependencies
# first, uncompressed under DIR/lib/modules, and their paths there appended
# to DIR/etc/LIST.
linux_put_modules() {
    local dir=$1 list=$2 f
    shift 2
    while read -r f; do
        case $f in
        MISSING*) burrow_fail "module ${f#MISSING } is not in $LINUX_MODDIR" ;;
        esac
        mkdir -p "$dir/lib/modules/$(dirname "$f")"
        case $f in
        *.ko) cp "$LINUX_MODDIR/$f" "$dir/lib/modules/$f" ;;
        *.ko.xz) xz -dc "$LINUX_MODDIR/$f" >"$dir/lib/modules/${f%.xz}"; f=${f%.xz} ;;
        *.ko.zst) zstd -qdc "$LINUX_MODDIR/$f" >"$dir/lib/modules/${f%.zst}"; f=${f%.zst} ;;
        esac
        echo "$f" >>"$dir/etc/$list"
    done < <(linux_module_files "$@")
}

# linux_boot NAME [burrow-vm options...]: boots Debian's kernel with the
# serial console in $BURROW_TMP/NAME.serial (LINUX_SERIAL), waiting for the
# guest to power off.  --append is added to LINUX_CMDLINE_BASE.
linux_boot() {
    local name=$1
    shift
    local args=() append=$LINUX_CMDLINE_BASE
    while [ $# -gt 0 ]; do
        case $1 in
        --append) append="$append $2"; shift 2 ;;
        *) args+=("$1"); shift ;;
        esac
    done
    LINUX_SERIAL=$BURROW_TMP/$name.serial
    burrow_add_log "$LINUX_SERIAL"
    burrow_run_vm "$name" --kernel "$LINUX_KERNEL" --append "$append" \
        --serial "file:$LINUX_SERIAL" "${args[@]}"
}

# linux_boot_firmware NAME [burrow-vm options...]: as linux_boot, but the
# machine starts in SeaBIOS (no --kernel), which boots whatever --boot
# names; the firmware's own log (port 0x402) goes to
# $BURROW_TMP/NAME.firmware (LINUX_FIRMWARE_LOG).
linux_boot_firmware() {
    local name=$1
    shift
    burrow_require_file /usr/share/seabios/bios-256k.bin "install seabios"
    LINUX_SERIAL=$BURROW_TMP/$name.serial
    LINUX_FIRMWARE_LOG=$BURROW_TMP/$name.firmware
    burrow_add_log "$LINUX_FIRMWARE_LOG"
    burrow_add_log "$LINUX_SERIAL"
    burrow_run_vm "$name" --serial "file:$LINUX_SERIAL" --firmware-log "$LINUX_FIRMWARE_LOG" "$@"
}

# linux_mkiso OUT VOLID DIR: an ISO 9660 image of DIR (Rock Ridge and
# Joliet), as a CD the guest mounts.
linux_mkiso() {
    burrow_require_cmd xorriso "packaging/install-deps.sh installs xorriso"
    xorriso -as mkisofs -quiet -R -J -V "$2" -o "$1" "$3" >"$BURROW_TMP/xorriso.log" 2>&1 ||
        burrow_fail "xorriso could not make $1: $(tail -n 5 "$BURROW_TMP/xorriso.log")"
}

# linux_start NAME [burrow-vm options...]: as linux_boot, in the background
# with a control socket ($BURROW_TMP/NAME.sock, LINUX_SOCK); LINUX_PID is
# burrow-vm's pid.  The VM is ended when the script exits.
linux_start() {
    local name=$1
    shift
    local args=() append=$LINUX_CMDLINE_BASE
    while [ $# -gt 0 ]; do
        case $1 in
        --append) append="$append $2"; shift 2 ;;
        *) args+=("$1"); shift ;;
        esac
    done
    LINUX_SERIAL=$BURROW_TMP/$name.serial
    LINUX_SOCK=$BURROW_TMP/$name.sock
    burrow_add_log "$LINUX_SERIAL"
    burrow_add_log "$BURROW_TMP/$name.err"
    burrow_note "start: burrow-vm --kernel $LINUX_KERNEL --append \"$append\" ${args[*]}"
    timeout -k 10 "$BURROW_VM_TIMEOUT" "$BURROW_VM" --kernel "$LINUX_KERNEL" --append "$append" \
        --serial "file:$LINUX_SERIAL" --control "$LINUX_SOCK" "${args[@]}" \
        </dev/null >"$BURROW_TMP/$name.out" 2>"$BURROW_TMP/$name.err" &
    LINUX_PID=$!
    burrow_add_log "$BURROW_TMP/$name.hang"
    LINUX_PIDS+=("$LINUX_PID" "$(burrow_hang_watch "$LINUX_PID" "$name")")
    trap 'linux_cleanup' EXIT
}

LINUX_PIDS=()
linux_cleanup() {
    local p
    for p in "${LINUX_PIDS[@]+"${LINUX_PIDS[@]}"}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${LINUX_PIDS[@]+"${LINUX_PIDS[@]}"}"; do
        wait "$p" 2>/dev/null
    done
    rm -rf "$BURROW_TMP"
}

# linux_ctl COMMAND [JSON]: a control command to the VM started last.
linux_ctl() {
    python3 "$BURROW_SOURCE_DIR/tests/tools/burrow-control.py" "$LINUX_SOCK" "$@"
}

# linux_wait_serial TEXT [SECONDS]: waits until the serial output holds a
# line containing TEXT (the VM still running), within a hang bound.
linux_wait_serial() {
    local text=$1 limit=${2:-$BURROW_VM_TIMEOUT} start=$SECONDS
    # (2>/dev/null first: the file may not exist yet)
    while ! tr -d '\r' 2>/dev/null <"$LINUX_SERIAL" | grep -qF -- "$text"; do
        if [ -n "${LINUX_PID:-}" ] && ! kill -0 "$LINUX_PID" 2>/dev/null; then
            burrow_fail "burrow-vm ended before the guest printed \"$text\""
        fi
        [ $((SECONDS - start)) -lt "$limit" ] ||
            burrow_fail "the guest did not print \"$text\" within $limit s"
        sleep 0.2
    done
}

# linux_wait_exit: waits for the background VM to end; its status goes to
# BURROW_STATUS.
linux_wait_exit() {
    BURROW_STATUS=0
    wait "$LINUX_PID" || BURROW_STATUS=$?
    [ "$BURROW_STATUS" -ne 124 ] && [ "$BURROW_STATUS" -ne 137 ] ||
        burrow_fail "burrow-vm did not finish within $BURROW_VM_TIMEOUT s"
}

# linux_expect_exit: the guest's script finished with status 0 and the
# machine powered off (burrow-vm's exit status 0).
linux_expect_pass() {
    burrow_expect_line "$LINUX_SERIAL" "burrow-guest: exit 0"
    burrow_expect_status 0 "the guest powers off through ACPI S5"
}

# linux_guest_lines PREFIX: the serial lines that start with PREFIX, with it
# taken off.
linux_guest_lines() {
    tr -d '\r' <"$LINUX_SERIAL" | P=$1 awk 'index($0, ENVIRON["P"]) == 1 { print substr($0, length(ENVIRON["P"]) + 1) }'
}

# linux_free_port: a free TCP port on 127.0.0.1 (for --display vnc:...).
linux_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# linux_wait_started: after linux_start, waits until the guest's init runs;
# returns 1 when burrow-vm ended before that (its stderr, NAME.err, says
# why: a port in use, say), so that the caller can start it again.
linux_wait_started() {
    local start=$SECONDS
    while ! tr -d '\r' 2>/dev/null <"$LINUX_SERIAL" | grep -qF "burrow-guest: init"; do
        kill -0 "$LINUX_PID" 2>/dev/null || return 1
        [ $((SECONDS - start)) -lt "$BURROW_VM_TIMEOUT" ] ||
            burrow_fail "the guest's init did not start within $BURROW_VM_TIMEOUT s"
        sleep 0.2
    done
}

# linux_watch_events FILE: a control client that stays connected to the VM
# started last and writes every event it is sent to FILE, one JSON line
# each, until burrow-vm closes the socket; returns once it is connected.
linux_watch_events() {
    local file=$1 start=$SECONDS
    burrow_add_log "$file"
    python3 "$BURROW_SOURCE_DIR/tests/tools/burrow-control.py" "$LINUX_SOCK" --greeting \
        --events 1000000 --timeout "$BURROW_VM_TIMEOUT" --connect-timeout "$BURROW_VM_TIMEOUT" \
        >"$file" 2>/dev/null &
    LINUX_PIDS+=("$!")
    until [ -s "$file" ]; do
        kill -0 "$!" 2>/dev/null || burrow_fail "the event watcher could not connect to $LINUX_SOCK"
        [ $((SECONDS - start)) -lt "$BURROW_VM_TIMEOUT" ] ||
            burrow_fail "the event watcher did not connect within $BURROW_VM_TIMEOUT s"
        sleep 0.1
    done
}

# linux_expect_event FILE EVENT [TEXT]: FILE (from linux_watch_events)
# holds an event named EVENT whose JSON line contains TEXT.
linux_expect_event() {
    grep -F "\"event\":\"$2\"" "$1" | grep -qF -- "${3:-}" ||
        burrow_fail "no \"$2\" event${3:+ with $3}; events: $(grep -F '"event"' "$1" | tr '\n' ' ')"
}
