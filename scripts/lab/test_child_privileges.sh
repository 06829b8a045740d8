#!/usr/bin/env bash
# What child processes inherit (issue 13), with hafront run as the shipped unit runs
# it: a non-root user (nobody) with ambient CAP_NET_ADMIN and CAP_NET_RAW.
# - check-config (same user and capabilities) refuses a world-writable script and a
#   world-writable script FILE given to /bin/sh: the script policy holds whenever
#   hafront holds a capability, not only as root; it refuses an exec check found on
#   PATH with exit 2, naming the check;
# - the daemon becomes master (it works with just those two capabilities);
# - its notify script and exec check see CapEff, CapPrm and CapAmb 0 and no
#   HAFRONT_* variable, although hafront was started with HAFRONT_* set (one of
#   them the VRRP password);
# - as root with security.script_user = "nobody", hafront keeps only the
#   capabilities the configuration needs after start-up; the notify script runs as
#   nobody with an empty bounding set too (a setuid-root program it runs gets no
#   capability back); the figures are printed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/lab.sh"
source "$here/../lib/hafront.sh"
[ "$(id -u)" = 0 ] || fail "run as root"
command -v setpriv >/dev/null || fail "needs setpriv (util-linux)"
id nobody >/dev/null 2>&1 || fail "no user 'nobody'"
NOBODY=$(id -u nobody)
NOGROUP=$(id -g nobody)
hf_build
lab_up
dir=$(lab_logdir)
chmod 755 "$dir" # the script and its directory must be reachable by nobody
VIP=192.0.2.100
SECRET=Lab7pass # auth_pass (at most 8 characters), given only through the environment
CAPS=+net_admin,+net_raw
as_unit=(setpriv --reuid="$NOBODY" --regid="$NOGROUP" --clear-groups
    --inh-caps="$CAPS" --ambient-caps="$CAPS")

mkdir -p "$dir/bin" "$dir/out" "$dir/run-a" "$dir/state-a"
chmod 755 "$dir/bin"
chmod 1777 "$dir/out"
chown nobody "$dir/run-a" "$dir/state-a"
cat >"$dir/bin/record.sh" <<'SH'
#!/bin/sh
# What this script got: its capability sets, its user, its environment. Written
# aside and renamed (the test may read while the next run writes).
out="$(dirname "$0")/../out"
{ grep -E '^Cap(Eff|Prm|Inh|Amb|Bnd):' /proc/$$/status; echo "Uid: $(id -u)"; env; } >"$out/.$1.$$"
mv -f "$out/.$1.$$" "$out/$1"
SH
chmod 755 "$dir/bin/record.sh"
cp "$dir/bin/record.sh" "$dir/bin/ww.sh" && chmod 777 "$dir/bin/ww.sh"

# --- check-config as the unit's user --------------------------------------------------
conf() { hf_conf a web 51 150 2 1s "\"$VIP/24\"" "$@"; }
check() { # file: check-config as nobody with the two capabilities, in the namespace
    lab_exec a "${as_unit[@]}" "$HF_BIN" check-config -c "$1" 2>&1
}
refused() { # what key message-part TOML-lines...
    local what=$1 key=$2 msg=$3 out rc=0
    shift 3
    conf "$@" >"$dir/t.toml"
    out=$(check "$dir/t.toml") || rc=$?
    [ "$rc" = 2 ] || fail "check-config (nobody + caps) exit $rc for $what, not 2: $out"
    grep -q "$key" <<<"$out" || fail "error for $what does not name $key: $out"
    grep -q "$msg" <<<"$out" || fail "error for $what does not say '$msg': $out"
    echo "   $(grep -m1 "$key" <<<"$out" | sed 's/^ *//')"
}
refused "a world-writable notify script" vrrp.instances.web.notify_master "writable by everyone" \
    "notify_master = [\"$dir/bin/ww.sh\", \"n\"]"
refused "a world-writable script file given to /bin/sh" scripts.s.command \
    "the script file given to /bin/sh" \
    "[scripts.s]" "command = [\"/bin/sh\", \"$dir/bin/ww.sh\"]"
refused "an exec check found on PATH" checks.c.command "must be an absolute path" \
    '[checks.c]' 'kind = "exec"' 'command = ["true"]'
pass "check-config as nobody with CAP_NET_ADMIN/CAP_NET_RAW refuses unsafe scripts (also a file given to sh) and a relative exec command (exit 2)"

# --- the daemon as the unit's user ------------------------------------------------------
conf "notify_master = [\"$dir/bin/record.sh\", \"notify\"]" \
    '[checks.c]' 'kind = "exec"' "command = [\"/bin/sh\", \"$dir/bin/record.sh\", \"check\"]" \
    'interval = "200ms"' >"$dir/a.toml"
out=$(check "$dir/a.toml") || fail "config refused: $out"
HF_WRAP=("${as_unit[@]}")
hf_start a "$dir/a.toml" HAFRONT_VRRP__INSTANCES__WEB__AUTH_PASS="$SECRET" HAFRONT_LOG__LEVEL=info
HF_WRAP=()
hf_wait_state a web master 8 || fail "hafront as nobody with two capabilities did not become master"
lab_wait_vip a "$VIP" 3 || fail "no VIP on a"
daemon=$(grep -E '^(Uid|CapEff|CapAmb):' "/proc/${HF_PID[a]}/status" 2>/dev/null | tr -s '\t\n' '  ' || true)
# HF_PID is ip netns exec, which exec'd setpriv, which exec'd hafront: the same PID.
grep -q "Uid: $NOBODY" <<<"$daemon" || fail "hafront does not run as nobody: $daemon"
echo "   hafront: $daemon"
for _ in $(seq 50); do [ -s "$dir/out/notify" ] && [ -s "$dir/out/check" ] && break; sleep 0.1; done
for k in notify check; do
    f="$dir/out/$k"
    [ -s "$f" ] || fail "the $k script did not run"
    for set in CapEff CapPrm CapInh CapAmb; do
        v=$(awk -v s="$set:" '$1 == s {print $2}' "$f")
        [ "$v" = 0000000000000000 ] || fail "$k script: $set $v (hafront holds $daemon)"
    done
    grep -q '^HAFRONT_' "$f" && fail "$k script got HAFRONT_ variables: $(grep '^HAFRONT_' "$f" | cut -d= -f1)"
    grep -q "$SECRET" "$f" && fail "$k script got the VRRP password in its environment"
    grep -q '^NOTIFY_STATE=MASTER' "$f" || [ "$k" = check ] || fail "notify script lost its NOTIFY_ variables"
    echo "   $k script: $(grep -E '^Cap(Eff|Amb):' "$f" | tr -s '\t\n' '  ')uid $(awk '$1 == "Uid:" {print $2}' "$f")"
done
pass "notify script and exec check of hafront (nobody + CAP_NET_ADMIN/CAP_NET_RAW) see CapEff/CapAmb 0 and no HAFRONT_* variable"
hf_stop a

# --- the daemon as root ------------------------------------------------------------------
rm -f "$dir/out/notify"
conf "notify_master = [\"$dir/bin/record.sh\", \"notify\"]" '[security]' 'script_user = "nobody"' >"$dir/root.toml"
hf_start a "$dir/root.toml" HAFRONT_VRRP__INSTANCES__WEB__AUTH_PASS="$SECRET"
hf_wait_state a web master 8 || fail "hafront as root did not become master"
for _ in $(seq 50); do [ -s "$dir/out/notify" ] && break; sleep 0.1; done
f="$dir/out/notify"
[ -s "$f" ] || fail "the notify script did not run (root)"
daemon=$(grep -E '^CapEff:' "/proc/${HF_PID[a]}/status" | tr -s '\t' ' ')
bnd=$(awk '$1 == "CapBnd:" {print $2}' "/proc/${HF_PID[a]}/status")
# What this configuration needs (docs/security.md): NET_ADMIN, NET_RAW, SETPCAP,
# DAC_OVERRIDE, DAC_READ_SEARCH, and SETUID/SETGID for the script user.
want=$(printf '%016x' $(( 1 << 12 | 1 << 13 | 1 << 8 | 1 << 1 | 1 << 2 | 1 << 7 | 1 << 6 )))
[ "$daemon" = "CapEff: $want" ] && [ "$bnd" = "$want" ] ||
    fail "root hafront keeps $daemon (bounding $bnd) after start-up, not the configuration's $want"
grep 'capabilities the configuration does not need dropped' "$(lab_logdir)/hafront-a.log" | grep -Eq "kept=\"?$want" ||
    fail "no log line about the dropped capabilities (kept $want)"
for set in CapEff CapPrm CapAmb CapBnd; do
    v=$(awk -v s="$set:" '$1 == s {print $2}' "$f")
    [ "$v" = 0000000000000000 ] || fail "notify script of a root hafront: $set $v"
done
grep -q '^HAFRONT_' "$f" && fail "notify script of a root hafront got HAFRONT_ variables"
[ "$(awk '$1 == "Uid:" {print $2}' "$f")" = "$NOBODY" ] || fail "notify script of a root hafront did not run as nobody"
echo "   hafront (root): $daemon; its notify script: $(grep -E '^Cap(Eff|Bnd):' "$f" | tr -s '\t\n' '  ')uid $(awk '$1 == "Uid:" {print $2}' "$f")"
pass "a root hafront keeps only $want after start-up; its notify script runs as nobody with no capability, an empty bounding set and no HAFRONT_* variable"
