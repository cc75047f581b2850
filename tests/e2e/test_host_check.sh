#!/bin/bash
# burrow host-check on a host with working KVM: the KVM checks pass and
# --json says what the text says.  With BURROW_KVM_DEVICE at a missing path,
# an empty regular file (what a shell's "<>/dev/kvm" leaves) and /dev/null,
# host-check fails with the matching message and exit status 1, and
# burrow-vm stops with the same explanation.  Nothing under /dev is created
# or changed: the stand-ins live in the test's own directory.
# needs: kvm
# timeout: 600
. "$(dirname "$0")/../kvm/lib.sh"
burrow_init
burrow_require_vm
BURROW=$BURROW_BUILD_DIR/burrow
[ -x "$BURROW" ] || burrow_fail "$BURROW is missing: build the project first"
burrow_require_kvm

# host_check NAME: runs host-check as text and --json into NAME.txt and
# NAME.json; its exit status goes to HC_STATUS (both runs must agree).
HC_RUNS=()
host_check() {
    local name=$1 rc_json=0
    HC_STATUS=0
    timeout 60 "$BURROW" host-check >"$BURROW_TMP/$name.txt" 2>&1 || HC_STATUS=$?
    timeout 60 "$BURROW" host-check --json >"$BURROW_TMP/$name.json" 2>"$BURROW_TMP/$name.err" || rc_json=$?
    burrow_add_log "$BURROW_TMP/$name.txt"
    [ "$HC_STATUS" = "$rc_json" ] || burrow_fail "$name: host-check exited $HC_STATUS, with --json $rc_json"
    HC_RUNS+=("$name")
}

# expect_line NAME STATUS TITLE [TEXT]: host-check's line for the check
# TITLE has STATUS (and TEXT).
expect_line() {
    grep -qF -- "$2  $(printf '%-32s' "$3") ${4:-}" "$BURROW_TMP/$1.txt" ||
        burrow_fail "$1: no line '$2  $3 ${4:-}' in: $(cat "$BURROW_TMP/$1.txt")"
}

# expect_text NAME TEXT: host-check's text output has TEXT.
expect_text() {
    grep -qF -- "$2" "$BURROW_TMP/$1.txt" || burrow_fail "$1: host-check's output lacks '$2'"
}

# expect_vm_error TEXT...: burrow-vm with the current BURROW_KVM_DEVICE
# stops at once with one line that has every TEXT.
fw=$BURROW_TMP/fw.bin
truncate -s 256K "$fw"
expect_vm_error() {
    local out rc=0
    out=$(timeout 20 "$BURROW_VM" --firmware "$fw" --memory 16 --serial none 2>&1 </dev/null) || rc=$?
    [ $rc = 1 ] || burrow_fail "burrow-vm with BURROW_KVM_DEVICE=$BURROW_KVM_DEVICE exited $rc, expected 1: $out"
    [ "$(wc -l <<<"$out")" = 1 ] || burrow_fail "burrow-vm: expected one line, got: $out"
    local want
    for want in "$@"; do
        grep -qF -- "$want" <<<"$out" || burrow_fail "burrow-vm: message '$out' lacks '$want'"
    done
    burrow_note "ok: burrow-vm -> $out"
}

# ---- usage --------------------------------------------------------------------
"$BURROW" --help | grep -q "^  host-check " || burrow_fail "'burrow --help' does not list host-check"
help=$("$BURROW" host-check --help) || burrow_fail "host-check --help failed"
for w in --json BURROW_KVM_DEVICE "Exit status"; do
    grep -q -- "$w" <<<"$help" || burrow_fail "host-check --help does not mention $w"
done
rc=0
"$BURROW" host-check --bogus 2>"$BURROW_TMP/usage.err" || rc=$?
[ $rc = 2 ] && grep -q "unknown option '--bogus'" "$BURROW_TMP/usage.err" ||
    burrow_fail "host-check --bogus: status $rc, $(cat "$BURROW_TMP/usage.err")"
rc=0
"$BURROW" host-check extra 2>/dev/null || rc=$?
[ $rc = 2 ] || burrow_fail "host-check extra: status $rc, expected 2"

# ---- this host: KVM works ---------------------------------------------------------
unset BURROW_KVM_DEVICE
host_check real
cat "$BURROW_TMP/real.txt"
for title in "KVM device present" "KVM character device (10:232)" "KVM device opens read/write" \
             "KVM API version 12" "KVM creates a virtual machine" "Permission to use KVM"; do
    expect_line real PASS "$title"
done
if [ "$BURROW_KVM_KIND" = hardware ]; then
    expect_line real PASS "CPU virtualization (VT-x/AMD-V)"
else
    expect_line real WARN "CPU virtualization (VT-x/AMD-V)"
fi
if grep -q '^FAIL' "$BURROW_TMP/real.txt"; then
    [ "$HC_STATUS" = 1 ] || burrow_fail "a check failed, yet host-check exited $HC_STATUS"
else
    [ "$HC_STATUS" = 0 ] || burrow_fail "nothing failed, yet host-check exited $HC_STATUS"
fi
burrow_note "ok: the KVM checks pass here (exit $HC_STATUS)"

# ---- a missing device ---------------------------------------------------------------
export BURROW_KVM_DEVICE=$BURROW_TMP/missing-kvm
host_check missing
[ "$HC_STATUS" = 1 ] || burrow_fail "missing device: host-check exited $HC_STATUS, expected 1"
expect_line missing FAIL "KVM device present" "$BURROW_KVM_DEVICE (from BURROW_KVM_DEVICE) does not exist"
expect_line missing SKIP "KVM creates a virtual machine"
expect_text missing "Verdict: FAIL: 1 check failed; Burrow cannot run virtual machines on this host"
expect_vm_error "$BURROW_KVM_DEVICE (from BURROW_KVM_DEVICE) does not exist" "unset BURROW_KVM_DEVICE"
[ ! -e "$BURROW_KVM_DEVICE" ] || burrow_fail "looking for the device created $BURROW_KVM_DEVICE"
burrow_note "ok: missing device"

# ---- an empty regular file where the device should be --------------------------------
export BURROW_KVM_DEVICE=$BURROW_TMP/kvm
: >"$BURROW_KVM_DEVICE"
host_check file
[ "$HC_STATUS" = 1 ] || burrow_fail "regular file: host-check exited $HC_STATUS, expected 1"
expect_line file PASS "KVM device present"
expect_line file FAIL "KVM character device (10:232)" \
    "$BURROW_KVM_DEVICE (from BURROW_KVM_DEVICE) is an empty regular file, not the KVM device (character device 10:232)"
expect_line file SKIP "KVM device opens read/write"
expect_text file "hint: something created it by mistake"
expect_text file "remove it (sudo rm $BURROW_KVM_DEVICE)"
expect_text file "load kvm_intel or kvm_amd"
expect_vm_error "is an empty regular file, not the KVM device" "created it by mistake" "remove it" \
    "kvm_intel or kvm_amd"
[ -f "$BURROW_KVM_DEVICE" ] && [ ! -s "$BURROW_KVM_DEVICE" ] || burrow_fail "the stand-in file was changed"
burrow_note "ok: regular file"

# ---- another character device --------------------------------------------------------
export BURROW_KVM_DEVICE=/dev/null
host_check null
[ "$HC_STATUS" = 1 ] || burrow_fail "/dev/null: host-check exited $HC_STATUS, expected 1"
expect_line null FAIL "KVM character device (10:232)" \
    "/dev/null (from BURROW_KVM_DEVICE) is the character device 1:3, not the KVM device"
expect_text null "hint: unset BURROW_KVM_DEVICE, or point it at the KVM device"
expect_vm_error "/dev/null (from BURROW_KVM_DEVICE) is the character device 1:3, not the KVM device"
burrow_note "ok: /dev/null"
unset BURROW_KVM_DEVICE

# ---- --json: parses, has every check with the same keys, and says what the text says ----
python3 - "$BURROW_TMP" "${HC_RUNS[@]}" <<'PY' || burrow_fail "the JSON does not match the text (see above)"
import json, sys
rank = {"SKIP": 0, "PASS": 1, "WARN": 2, "FAIL": 3}
ids_wanted = ["kvm-device", "kvm-chardev", "kvm-access", "kvm-api", "kvm-create-vm", "kvm-group",
              "cpu-virt", "fw-bios", "fw-vgabios", "fw-pxe-virtio", "fw-pxe-e1000"]
for name in sys.argv[2:]:
    base = sys.argv[1] + "/" + name
    d = json.load(open(base + ".json"))
    text = open(base + ".txt").read().splitlines()
    lines = [l for l in text if not l.startswith("      ")]
    try:
        assert set(d) == {"verdict", "summary", "kvm_ok", "checks"}, sorted(d)
        assert [c["id"] for c in d["checks"]] == ids_wanted, [c["id"] for c in d["checks"]]
        worst = "PASS"
        for c, line in zip(d["checks"], lines):
            assert set(c) == {"id", "title", "kvm", "status", "detail", "hint"}, c
            assert isinstance(c["kvm"], bool) and c["status"] in rank, c
            assert line.startswith(c["status"]) and c["title"] in line and c["detail"] in line, (line, c)
            if c["hint"] and c["status"] != "PASS":
                assert "      hint: " + c["hint"] in text, c["hint"]
            worst = max(worst, c["status"], key=rank.get)
        assert d["verdict"] == worst, (d["verdict"], worst)
        assert lines[len(d["checks"])] == "Verdict: " + d["summary"], lines[-1]
        kvm_failed = any(c["kvm"] and c["status"] == "FAIL" for c in d["checks"])
        assert d["kvm_ok"] == (not kvm_failed) == (name == "real"), d["kvm_ok"]
    except AssertionError as e:
        print("FAIL: %s: %s" % (name, e))
        sys.exit(1)
    print("ok: --json matches the text (%s, %s)" % (name, d["verdict"]))
PY

# ---- no permission: an unprivileged user, when we can be one -----------------------------
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && [ -c /dev/kvm ] &&
   [ "$(stat -c %a /dev/kvm)" = 600 ]; then
    cp "$BURROW" "$BURROW_TMP/burrow"
    chmod 755 "$BURROW_TMP" "$BURROW_TMP/burrow"
    rc=0
    out=$(timeout 60 setpriv --reuid=65534 --regid=65534 --clear-groups "$BURROW_TMP/burrow" host-check \
          2>&1 </dev/null) || rc=$?
    [ $rc = 1 ] || burrow_fail "unprivileged host-check exited $rc, expected 1: $out"
    grep -q "^FAIL  KVM device opens read/write .*no permission to open /dev/kvm" <<<"$out" ||
        burrow_fail "unprivileged host-check: no permission failure: $out"
    grep -q "^FAIL  Permission to use KVM .*lets only its owner open it" <<<"$out" ||
        burrow_fail "unprivileged host-check: no group failure: $out"
    grep -q "hint: only its owner may open it: give it to the 'kvm' group" <<<"$out" ||
        burrow_fail "unprivileged host-check: no hint: $out"
    burrow_note "ok: unprivileged:"
    grep -E "read/write|Permission|hint: only" <<<"$out"
else
    burrow_note "note: /dev/kvm is not root's alone or we are not root: permission case not tested here"
fi
echo "PASS"
