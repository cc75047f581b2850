#!/bin/bash
# Debian's kernel on user-mode networking (libslirp), once through
# virtio_net and once through e1000, each NIC model on its own boot:
#  1. busybox udhcpc gets its lease from libslirp (10.0.2.15/24, gateway
#     10.0.2.2, DNS 10.0.2.3);
#  2. busybox wget downloads a file of random data from an HTTP server on
#     the host's loopback through the NAT (10.0.2.2), SHA-256 checked;
#  3. the host connects through a hostfwd rule to busybox nc listening in
#     the guest; a known line goes each way;
#  4. 100 MiB of random data host -> guest through the hostfwd rule, kept
#     in the guest's tmpfs, then the same 100 MiB guest -> host through the
#     NAT into the host's sink (virtio-net's TCP segmentation offload at
#     work), both MD5 checked.  Throughputs are printed, never asserted.
# The guest's interface counts no errors, and burrow-vm reports no network
# error of the guest.  Host and guest wait on each other's lines: the guest
# says when it listens, the host's data ends with a shutdown of its sending
# side, the guest's upload with the sink's answer.
# NET_MODELS (default "virtio e1000") picks the models, NET_BULK_MIB
# (default 100, at most 200: the guest keeps it in RAM) the bulk size.
# needs: hwkvm
# timeout: 1800
. "$(dirname "$0")/lib.sh"
linux_init
burrow_require_cmd python3
# Each boot's hang bound, and that of every wait for the guest.  Nested, a
# whole boot takes about two minutes.
BURROW_VM_TIMEOUT=900

NETHOST=$BURROW_SOURCE_DIR/tests/tools/nethost.py
GUEST_PORT=7001
BULK_MIB=${NET_BULK_MIB:-100}
[ "$BULK_MIB" -ge 1 ] && [ "$BULK_MIB" -le 200 ] || burrow_fail "NET_BULK_MIB must be 1 to 200"
bulk_bytes=$((BULK_MIB * 1048576))

# The host's files: one for wget (a size no power of two divides), the
# bulk one.
www=$BURROW_TMP/www
mkdir -p "$www"
head -c $((1048576 + 333)) /dev/urandom >"$www/small.bin"
head -c "$bulk_bytes" /dev/urandom >"$BURROW_TMP/bulk.bin"
small_sha=$(sha256sum <"$www/small.bin" | cut -d' ' -f1)
bulk_md5=$(md5sum <"$BURROW_TMP/bulk.bin" | cut -d' ' -f1)

# The HTTP server and the sink, on ports the kernel picks.
python3 -u "$NETHOST" serve "$www" >"$BURROW_TMP/host.out" 2>"$BURROW_TMP/host.err" &
host_pid=$!
LINUX_PIDS+=("$host_pid")
trap 'linux_cleanup' EXIT
burrow_add_log "$BURROW_TMP/host.err"
start=$SECONDS
until grep -q '^ready ' "$BURROW_TMP/host.out"; do
    kill -0 "$host_pid" 2>/dev/null || burrow_fail "the host's servers did not start"
    [ $((SECONDS - start)) -lt 60 ] || burrow_fail "the host's servers did not say ready"
    sleep 0.1
done
read -r http_port sink_port < <(sed -n 's/^ready http=\([0-9]*\) sink=\([0-9]*\)$/\1 \2/p' "$BURROW_TMP/host.out")
burrow_note "host: HTTP on 127.0.0.1:$http_port, sink on 127.0.0.1:$sink_port"

# The guest's scripts.  udhcpc's: configures the interface from the lease
# and says what it got.
cat >"$BURROW_TMP/udhcpc.sh" <<'SCRIPT'
#!/bin/sh
case $1 in
deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
bound | renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "${router:-}" ] && ip route add default via "${router%% *}" dev "$interface"
    echo "net: lease ip=$ip subnet=$subnet router=${router:-} dns=${dns:-} serverid=${serverid:-}"
    ;;
esac
exit 0
SCRIPT
# What nc runs for the hostfwd exchange: one line in, one line back.
cat >"$BURROW_TMP/hello.sh" <<'SCRIPT'
#!/bin/sh
read -r line
echo "net: hostfwd got: $line" >&2
echo "guest hello, you said: $line"
SCRIPT
# ... for the bulk transfer: all that comes into tmpfs, its MD5 back to the
# host.  (A file, not a pipe into md5sum: every copy counts in the nested
# helper, and the upload sends the same file back.)
cat >"$BURROW_TMP/receive.sh" <<'SCRIPT'
#!/bin/sh
cat >/tmp/bulk || exit 1
sum=$(md5sum </tmp/bulk | cut -d' ' -f1)
echo "net: bulk received md5 $sum" >&2
echo "$sum"
SCRIPT
# ... and on its connection to the host's sink: the length, then the file;
# then it waits for the sink's answer, for the guest's TCP may still hold
# data after the last write.
cat >"$BURROW_TMP/upload.sh" <<'SCRIPT'
#!/bin/sh
wc -c </tmp/bulk
cat /tmp/bulk || exit 1
read -r reply
echo "net: upload reply $reply" >&2
SCRIPT
chmod 755 "$BURROW_TMP/udhcpc.sh" "$BURROW_TMP/hello.sh" "$BURROW_TMP/receive.sh" "$BURROW_TMP/upload.sh"

# The guest's part; the values it checks come first.
cat >"$BURROW_TMP/guest.sh" <<EOF
HTTP_PORT=$http_port
SINK_PORT=$sink_port
GUEST_PORT=$GUEST_PORT
SMALL_SHA=$small_sha
EOF
cat >>"$BURROW_TMP/guest.sh" <<'GUEST'
set -u
fail() {
    echo "net: FAIL $*"
    exit 1
}
# wait_listen PORT: a TCP socket listens on PORT, IPv4 or IPv6 (nc's is
# IPv6); the hang bound is the host's.
wait_listen() {
    local hex
    hex=$(printf ':%04X ' "$1")
    until grep -q "${hex}[0-9A-F:]* 0A " /proc/net/tcp /proc/net/tcp6; do
        usleep 20000
    done
}
ip link set lo up
dev=
for d in /sys/class/net/*; do
    [ "${d##*/}" = lo ] || { dev=${d##*/}; break; }
done
[ -n "$dev" ] || fail "no network interface"
read -r mac <"/sys/class/net/$dev/address"
drv=$(readlink "/sys/class/net/$dev/device/driver")
echo "net: interface $dev driver ${drv##*/} mac $mac"
ip link set "$dev" up
carrier=0
until [ "$carrier" = 1 ]; do
    usleep 20000
    read -r carrier <"/sys/class/net/$dev/carrier" 2>/dev/null
done
echo "net: carrier up"

# 1. DHCP (libslirp answers at once; the retries only bound a hang)
udhcpc -i "$dev" -s /etc/udhcpc.sh -f -q -n -t 24 -T 5 || fail "no DHCP lease"
echo "net: address $(ip -4 -o addr show dev "$dev" | awk '{ print $4 }')"
echo "net: route $(ip route | grep "^default")"

# 2. HTTP through the NAT
sum=$(wget -q -O - "http://10.0.2.2:$HTTP_PORT/small.bin" | sha256sum | cut -d' ' -f1)
echo "net: http sha256 $sum"
[ "$sum" = "$SMALL_SHA" ] || fail "the download's SHA-256 is $sum, the host's $SMALL_SHA"

# 3. A hostfwd connection: nc takes one and runs hello.sh on it.
nc -l -p "$GUEST_PORT" -e /etc/hello.sh &
wait_listen "$GUEST_PORT"
echo "net: ready hostfwd"
wait $! || fail "nc (hostfwd exchange) failed"

# 4. Bulk, host -> guest through the same forward, then back through the
# NAT.
nc -l -p "$GUEST_PORT" -e /etc/receive.sh &
wait_listen "$GUEST_PORT"
echo "net: ready bulk"
wait $! || fail "nc (bulk receive) failed"
nc 10.0.2.2 "$SINK_PORT" -e /etc/upload.sh || fail "nc (upload) failed"
stats=
for c in rx_packets rx_bytes rx_errors rx_dropped tx_packets tx_bytes tx_errors tx_dropped; do
    read -r v <"/sys/class/net/$dev/statistics/$c"
    stats="$stats $c=$v"
done
echo "net: stats$stats"
GUEST

# net_wait TEXT: linux_wait_serial, but a line "net: FAIL ..." from the
# guest ends the wait at once with the guest's reason.
net_wait() {
    local start=$SECONDS why
    while ! tr -d '\r' 2>/dev/null <"$LINUX_SERIAL" | grep -qF -- "$1"; do
        why=$(linux_guest_lines "net: FAIL " | head -n 1)
        [ -z "$why" ] || burrow_fail "$model: the guest failed: $why"
        kill -0 "$LINUX_PID" 2>/dev/null ||
            burrow_fail "$model: burrow-vm ended before the guest printed \"$1\""
        [ $((SECONDS - start)) -lt "$BURROW_VM_TIMEOUT" ] ||
            burrow_fail "$model: the guest did not print \"$1\" within $BURROW_VM_TIMEOUT s"
        sleep 0.2
    done
}

# run_model MODEL DRIVER MODULE...: boots with one NIC of MODEL and checks
# the four steps through DRIVER.
run_model() {
    local model=$1 driver=$2
    shift 2
    burrow_note "== $model (driver $driver)"
    local t0=$SECONDS
    linux_initramfs "$BURROW_TMP/initrd-$model" "$BURROW_TMP/guest.sh" "$@" -- \
        "$BURROW_TMP/udhcpc.sh=/etc/udhcpc.sh" "$BURROW_TMP/hello.sh=/etc/hello.sh" \
        "$BURROW_TMP/receive.sh=/etc/receive.sh" "$BURROW_TMP/upload.sh=/etc/upload.sh"
    # The forward's host port: free when picked; should someone take it
    # before burrow-vm binds it, pick another.
    local fwd_port tries=0
    while :; do
        fwd_port=$(linux_free_port)
        linux_start "net-$model" --cpus 2 --memory 512 --initrd "$BURROW_TMP/initrd-$model" \
            --net "user,model=$model,hostfwd=tcp:127.0.0.1:$fwd_port-:$GUEST_PORT" --append quiet
        linux_wait_started && break
        if ! grep -q "port in use" "$BURROW_TMP/net-$model.err" || [ $((tries += 1)) -ge 3 ]; then
            burrow_fail "burrow-vm ended at start"
        fi
        burrow_note "127.0.0.1:$fwd_port was taken, trying another port"
    done
    local serial=$LINUX_SERIAL

    net_wait "net: address "
    local drv
    drv=$(linux_guest_lines "net: interface " | awk '{ print $3 }')
    [ "$drv" = "$driver" ] || burrow_fail "$model: the interface is bound to '$drv', not $driver"
    burrow_expect_line "$serial" "net: lease ip=10.0.2.15 subnet=255.255.255.0 router=10.0.2.2 dns=10.0.2.3 serverid=10.0.2.2"
    burrow_expect_prefix "$serial" "net: address 10.0.2.15/24"
    burrow_expect_prefix "$serial" "net: route default via 10.0.2.2 dev"
    burrow_note "ok: $model: DHCP lease 10.0.2.15/24 via $driver, default route 10.0.2.2"

    net_wait "net: http sha256 "
    burrow_expect_line "$serial" "net: http sha256 $small_sha"
    burrow_note "ok: $model: wget of $(stat -c %s "$www/small.bin") bytes through the NAT, SHA-256 matches"

    net_wait "net: ready hostfwd"
    local nonce out
    nonce="host hello $RANDOM$RANDOM"
    out=$(python3 "$NETHOST" send "$fwd_port" --text "$nonce" --timeout 300 2>&1) ||
        burrow_fail "$model: hostfwd exchange: $out"
    [ "$out" = "reply: guest hello, you said: $nonce" ] ||
        burrow_fail "$model: the guest's answer through the forward was \"$out\""
    net_wait "net: hostfwd got: "
    burrow_expect_line "$serial" "net: hostfwd got: $nonce"
    burrow_note "ok: $model: a line each way through 127.0.0.1:$fwd_port -> 10.0.2.15:$GUEST_PORT"

    net_wait "net: ready bulk"
    out=$(python3 "$NETHOST" send "$fwd_port" --file "$BURROW_TMP/bulk.bin" --timeout 300 2>&1) ||
        burrow_fail "$model: bulk transfer to the guest: $out; the VM's NIC: $(nic_status)"
    grep -qxF "reply: $bulk_md5" <<<"$out" ||
        burrow_fail "$model: the guest's MD5 of $BULK_MIB MiB is \"$(head -n 1 <<<"$out")\", the host's $bulk_md5"
    burrow_expect_line "$serial" "net: bulk received md5 $bulk_md5"
    local bytes sum secs rate
    read -r _ bytes secs rate < <(grep '^sent: ' <<<"$out")
    burrow_note "ok: $model: host -> guest $bytes bytes through the forward, MD5 matches ($secs s, $rate MiB/s)"
    # The machine's own counters saw them go through its NIC (the guest
    # is uploading now, so the VM still runs).
    local nic
    nic=$(nic_status)
    burrow_note "$model: the VM's NIC: $nic"
    python3 -c '
import json, sys
n, size = json.loads(sys.argv[1]), int(sys.argv[2])
sys.exit(0 if n["link"] == "up" and n["rx-bytes"] >= size and n["rx-frames"] >= size // 65536 else 1)' "$nic" "$bulk_bytes" ||
        burrow_fail "$model: the VM's status does not count the $bulk_bytes bytes its NIC took: $nic"

    # The sink has its line out before it answers the guest.
    net_wait "net: upload reply "
    local line
    sinks=$((sinks + 1))
    line=$(grep '^sink: ' "$BURROW_TMP/host.out" | sed -n "${sinks}p")
    read -r _ bytes sum secs rate <<<"$line"
    [ "$bytes $sum" = "$bulk_bytes $bulk_md5" ] ||
        burrow_fail "$model: the sink got ${bytes:-no} bytes with MD5 ${sum:-none}, the guest sent $bulk_bytes with MD5 $bulk_md5"
    burrow_expect_line "$serial" "net: upload reply $bulk_bytes $bulk_md5"
    burrow_note "ok: $model: guest -> host the same $bytes bytes through the NAT, MD5 matches ($secs s, $rate MiB/s)"


    linux_wait_exit
    linux_expect_pass
    # Errors the driver counted (the device set an error bit, or handed it
    # something malformed), and the guest's misuse of the NIC or of libslirp
    # that burrow-vm reports.
    local stats
    stats=$(linux_guest_lines "net: stats ")
    burrow_note "$model: guest counters: $stats"
    grep -qE '(^| )rx_errors=0( |$)' <<<"$stats" && grep -qE '(^| )tx_errors=0( |$)' <<<"$stats" ||
        burrow_fail "$model: the guest's interface counted errors: $stats"
    ! grep -E 'guest error: (virtio-net|e1000|net user):' "$BURROW_TMP/net-$model.err" ||
        burrow_fail "$model: burrow-vm reported network errors (above)"
    burrow_note "$model: $((SECONDS - t0)) s from boot to power-off"
}

# nic_status: the first NIC's entry in the machine's status ("net").
nic_status() {
    linux_ctl status 2>&1 | python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["return"]["net"][0]))' 2>&1
}

sinks=0   # uploads the sink has seen
for model in ${NET_MODELS:-virtio e1000}; do
    case $model in
    virtio) run_model virtio virtio_net virtio_pci virtio_net ;;
    e1000) run_model e1000 e1000 e1000 ;;
    *) burrow_fail "NET_MODELS: unknown model $model" ;;
    esac
done
echo "PASS: DHCP, HTTP through the NAT, hostfwd, $BULK_MIB MiB in and out on ${NET_MODELS:-virtio e1000}"
