#!/bin/bash
# What `burrow` prints and refuses, without running a VM: `list` sizes its
# columns to the longest entry; errors name a VM once and name the option
# the user typed; a second forward of one host port is refused; memory and
# vCPUs beyond the host's warn, beyond what can work are refused (the
# host's figures are read here, so the test fits any host); screenshots are
# PNG files only; the sound card follows the OS type, create, modify and
# show, and reaches burrow-vm's options.
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
CLI=${BURROW_CLI:-$BURROW_BUILD_DIR/burrow}
[ -x "$CLI" ] || burrow_fail "$CLI is missing: build the project first"
"$CLI" create --help >/dev/null 2>&1 || burrow_fail "$CLI has no VM commands ('burrow create --help' fails)"
burrow_require_cmd python3
export XDG_DATA_HOME=$BURROW_TMP/data XDG_STATE_HOME=$BURROW_TMP/state XDG_RUNTIME_DIR=$BURROW_TMP/run

# b ARGS...: runs burrow; stdout in $OUT, stderr in $ERR, status in $RC.
b() {
    RC=0
    timeout 60 "$CLI" "$@" >"$BURROW_TMP/out" 2>"$BURROW_TMP/err" </dev/null || RC=$?
    OUT=$(cat "$BURROW_TMP/out")
    ERR=$(cat "$BURROW_TMP/err")
}
ok() {
    b "$@"
    [ "$RC" -eq 0 ] || burrow_fail "burrow $* exited $RC: $ERR"
}
# refuse "TEXT" ARGS...: fails with one line on stderr containing TEXT.
refuse() {
    local want=$1
    shift
    b "$@"
    [ "$RC" -ne 0 ] || burrow_fail "burrow $* succeeded; expected a refusal"
    grep -qF -- "$want" <<<"$ERR" || burrow_fail "burrow $*: '$ERR' lacks '$want'"
    [ "$(wc -l <<<"$ERR")" -eq 1 ] || burrow_fail "burrow $*: more than one line on stderr: $ERR"
    burrow_note "ok: refused: burrow $* -> $ERR"
}
jq_py() {   # jq_py EXPR: evaluates a Python expression over the JSON in $OUT (as j)
    python3 -c 'import json, sys; j = json.loads(sys.argv[2]); print(eval(sys.argv[1]))' "$1" "$OUT"
}

# --- list: columns as wide as their longest entry
long=$(printf 'n%.0s' $(seq 64))
ok create a --memory 64 --no-disk --net none
ok create "$long" --os win11 --memory 64 --no-disk --net none
ok create "mid-sized-name-of-a-vm" --memory 128 --no-disk --net none
ok list
python3 - "$OUT" <<'PY' || burrow_fail "list columns do not line up: $OUT"
import re, sys
lines = sys.argv[1].split("\n")
head = lines[0]
starts = [m.start() for m in re.finditer(r"\S+", head)]
ends = [m.end() for m in re.finditer(r"\S+", head)]
assert head.split() == ["NAME", "STATE", "OS", "MEMORY", "CPUS"], head
for line in lines[1:]:
    # NAME, STATE and OS start where their headers start; MEMORY and CPUS
    # end where theirs end.
    fields = [(m.start(), m.end()) for m in re.finditer(r"\S+( MiB)?", line)]
    assert len(fields) == 5, line
    for i in range(3):
        assert fields[i][0] == starts[i], (line, i)
    assert fields[3][1] == ends[3] and fields[4][1] == ends[4], line
PY
burrow_note "ok: list columns line up with a ${#long}-character name"
# --- errors say the VM's name once
vm=web-1
ok create $vm --memory 64 --no-disk --net none
for cmd in pause resume reset stop console "screenshot $vm-shot.png"; do
    set -- $cmd
    c=$1
    shift
    b "$c" $vm "$@"
    [ "$RC" -ne 0 ] || burrow_fail "burrow $c $vm of a stopped VM succeeded"
    n=$(grep -o -- "$vm" <<<"$ERR" | wc -l)
    [ "$n" -eq 1 ] || burrow_fail "burrow $c $vm names the VM $n times: $ERR"
    burrow_note "ok: burrow $c $vm -> $ERR"
done

# --- errors name the option typed, not the definition's keys
refuse "--vnc HOST:PORT" modify $vm --display vnc
grep -q "vnc-listen" <<<"$ERR" && burrow_fail "modify --display vnc names the ini key: $ERR"
ok modify $vm --display vnc --vnc 127.0.0.1:5999
ok show $vm --json
[ "$(jq_py 'j["display"], j["vnc_listen"]')" = "('vnc', '127.0.0.1:5999')" ] || burrow_fail "show: $OUT"
nl_file="$BURROW_TMP/pass
word"
echo secret >"$nl_file"
refuse "--vnc-password-file" modify $vm --vnc-password-file "$nl_file"
refuse "--cdrom" modify $vm --cdrom "$nl_file"
refuse "--add-disk" modify $vm --add-disk "$nl_file"

# --- a second forward of one host port
ok modify $vm --net user --add-hostfwd tcp::8080-:80
refuse "--add-hostfwd" modify $vm --add-hostfwd tcp::8080-:80
refuse "--add-hostfwd" modify $vm --add-hostfwd tcp:127.0.0.1:8080-:22
refuse "--add-hostfwd" modify $vm --add-hostfwd tcp::8081-:81 --add-hostfwd tcp::8081-:82
ok modify $vm --add-hostfwd udp::8080-:80 --add-hostfwd tcp:127.0.0.1:8082-:22
ok show $vm --json
[ "$(jq_py 'j["nics"][0]["hostfwd"]')" = "['tcp::8080-:80', 'udp::8080-:80', 'tcp:127.0.0.1:8082-:22']" ] ||
    burrow_fail "forwards after the refusals: $OUT"
burrow_note "ok: a second forward of one host port is refused"

# --- memory and vCPUs against this host
read -r ram swap < <(awk '/^MemTotal:/ { r = int($2 / 1024) } /^SwapTotal:/ { s = int($2 / 1024) } END { print r, s }' /proc/meminfo)
cpus=$(getconf _NPROCESSORS_ONLN)
kvm_max=$(python3 -c '
import fcntl, os
try:
    fd = os.open(os.environ.get("BURROW_KVM_DEVICE") or "/dev/kvm", os.O_RDWR)
    n = fcntl.ioctl(fd, 0xAE03, 66)     # KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS
    print(n if n > 0 else fcntl.ioctl(fd, 0xAE03, 9))   # KVM_CAP_NR_VCPUS
except OSError:
    print(0)' 2>/dev/null)
burrow_note "host: $ram MiB RAM, $swap MiB swap, $cpus online CPUs, KVM allows ${kvm_max:-?} vCPUs"
max=1048576
ok create fit --memory 64 --cpus 1 --no-disk --net none
[ -z "$ERR" ] || burrow_fail "a small VM gives warnings: $ERR"
if [ $(( ram + 1 )) -le $max ]; then
    if [ "$swap" -gt 0 ]; then
        ok modify fit --memory $(( ram + 1 ))
        grep -q "warning: --memory $(( ram + 1 )): more than this host's RAM" <<<"$ERR" ||
            burrow_fail "no warning for more memory than the host's RAM: '$ERR'"
        burrow_note "ok: warned: $ERR"
    else
        refuse "more than this host's RAM" modify fit --memory $(( ram + 1 ))
    fi
fi
if [ $(( ram + swap + 1 )) -le $max ]; then
    refuse "more than this host's RAM" modify fit --memory $(( ram + swap + 1 ))
    refuse "more than this host's RAM" create big --memory $(( ram + swap + 1 )) --no-disk --net none
    [ ! -e "$XDG_DATA_HOME/burrow/vms/big" ] || burrow_fail "a refused create left a VM behind"
fi
limit=254
[ "${kvm_max:-0}" -gt 0 ] && [ "$kvm_max" -lt $limit ] && limit=$kvm_max
if [ $(( cpus + 1 )) -le $limit ]; then
    ok create many --cpus $(( cpus + 1 )) --memory 64 --no-disk --net none
    grep -q "warning: --cpus $(( cpus + 1 )): more than this host's $cpus online CPU" <<<"$ERR" ||
        burrow_fail "no warning for more vCPUs than the host's CPUs: '$ERR'"
    burrow_note "ok: warned: $ERR"
fi
refuse "254" modify fit --cpus 255
if [ "$limit" -lt 254 ]; then
    refuse "more than KVM allows" modify fit --cpus $(( limit + 1 ))
fi
ok show fit --json
[ "$(jq_py 'j["cpus"]')" = 1 ] || burrow_fail "refused changes changed the VM: $OUT"

# --- sound: the OS type's default, create, modify, show, what burrow-vm gets
ok create snd --os debian --no-disk --net none
ok show snd --json
[ "$(jq_py 'j["audio"], j["audio_in"]')" = "('pa', False)" ] || burrow_fail "a Debian VM's sound: $OUT"
grep -qx "audio=pa" "$XDG_DATA_HOME/burrow/vms/snd/vm.ini" || burrow_fail "vm.ini lacks audio=pa"
ok create quiet --no-disk --net none
ok show quiet --json
[ "$(jq_py 'j["audio"], j["audio_in"]')" = "('off', False)" ] || burrow_fail "a generic VM's sound: $OUT"
refuse "--audio-in on needs a sound card" create mic --audio-in on --no-disk --net none
refuse "--audio: 'alsa'" create mic --audio alsa --no-disk --net none
refuse "--audio-in: 'yes'" modify snd --audio-in yes
refuse "--audio-in on needs a sound card" modify quiet --audio-in on
[ ! -e "$XDG_DATA_HOME/burrow/vms/mic" ] || burrow_fail "a refused create left a VM behind"
ok create mic --audio none --audio-in on --no-disk --net none
ok show mic
grep -q "^Sound: *a card that plays into nothing, microphone on$" <<<"$OUT" || burrow_fail "show: $OUT"
ok modify snd --audio-in on
ok show snd
grep -q "^Sound: *PulseAudio, microphone on$" <<<"$OUT" || burrow_fail "show: $OUT"
# burrow-vm gets the card and its microphone (a stand-in records its options).
cat >"$BURROW_TMP/fake-vm" <<FAKE
#!/bin/sh
printf '%s\n' "\$@" >"$BURROW_TMP/vm-args"
exit 1
FAKE
chmod +x "$BURROW_TMP/fake-vm"
BURROW_VM=$BURROW_TMP/fake-vm b start snd --headless
[ -s "$BURROW_TMP/vm-args" ] || burrow_fail "the stand-in burrow-vm did not run: $ERR"
tr '\n' ' ' <"$BURROW_TMP/vm-args" | grep -q -- "--audio pa --audio-in on " ||
    burrow_fail "burrow-vm's options lack the sound card: $(tr '\n' ' ' <"$BURROW_TMP/vm-args")"
ok modify snd --audio off
ok show snd --json
[ "$(jq_py 'j["audio"], j["audio_in"]')" = "('off', False)" ] || burrow_fail "the microphone stayed without a card: $OUT"
rm -f "$BURROW_TMP/vm-args"
BURROW_VM=$BURROW_TMP/fake-vm b start snd --headless
grep -q -- "--audio" "$BURROW_TMP/vm-args" && burrow_fail "burrow-vm got a sound card that is off"
burrow_note "ok: sound: defaults, create, modify, show, burrow-vm's options"

# --- screenshots are PNG files
refuse "PNG" screenshot $vm "$BURROW_TMP/shot.jpg"
refuse "PNG" screenshot $vm "$BURROW_TMP/shot.JPEG"
[ ! -e "$BURROW_TMP/shot.jpg" ] || burrow_fail "a refused screenshot wrote a file"
b screenshot $vm "$BURROW_TMP/shot.PNG"
grep -q "PNG" <<<"$ERR" && burrow_fail "screenshot refused .PNG: $ERR"
b screenshot $vm "$BURROW_TMP/shot"
grep -q "PNG" <<<"$ERR" && burrow_fail "screenshot refused a name without extension: $ERR"
echo "PASS: burrow's output"
