#!/usr/bin/env bash
# scripts/demo as a new user runs it, before scripts/test ever ran: it must install
# what it needs itself, and only that.
# 1. With only Debian's essential packages (and apt) on PATH, `scripts/demo --missing`
#    names exactly the packages of its DEMO_NEEDS list.
# 2. With those plus the DEMO_NEEDS commands, it names none, and the whole demo runs
#    with nothing else on PATH: the list is complete (a command it runs but does not
#    declare, such as the `ping` it once asked for, fails this step).
# 3. With `ip` missing, the demo runs its install step (a real `apt-get install
#    iproute2`, already installed here), finds ip where Debian puts it, and runs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$here/../lib/hafront.sh"
hf_build
[ "$(id -u)" -eq 0 ] || fail "needs root"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hafront-demo-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
sys=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# The essential set: every program of the Essential: yes packages, and apt-get.
mkdir "$tmp/base"
link() { # dir command...
    local d=$1 c p
    shift
    for c in "$@"; do
        p=$(PATH=$sys command -v "$c") || fail "test setup: no $c on this machine"
        ln -sf "$p" "$d/$(basename "$c")"
    done
}
mapfile -t essential < <(dpkg-query -W -f '${Package} ${Essential}\n' | awk '$2 == "yes" { print $1 }')
[ ${#essential[@]} -gt 10 ] || fail "test setup: no essential packages found"
while read -r f; do
    case $f in /bin/* | /sbin/* | /usr/bin/* | /usr/sbin/*) [ -x "$f" ] && [ ! -d "$f" ] && ln -sf "$f" "$tmp/base/$(basename "$f")" ;; esac
done < <(dpkg -L "${essential[@]}" 2>/dev/null)
link "$tmp/base" apt-get
# What the demo declares (the same list it reads).
mapfile -t needs < <(sed -n 's/^DEMO_NEEDS=(\(.*\))$/\1/p' "$root/scripts/demo" | tr ' ' '\n')
[ ${#needs[@]} -gt 0 ] || fail "no DEMO_NEEDS in scripts/demo"
cmds=() pkgs=()
for pair in "${needs[@]}"; do
    cmds+=("${pair%%:*}") pkgs+=("${pair#*:}")
    [ ! -e "$tmp/base/${pair%%:*}" ] || fail "test setup: ${pair%%:*} is in an essential package here"
done

# 1.
got=$(env -i PATH="$tmp/base" bash "$root/scripts/demo" --missing)
[ "$got" = "${pkgs[*]}" ] || fail "--missing with the essential set only: '$got', want '${pkgs[*]}'"
pass "with Debian's essential set only, the demo would install exactly: $got"

# 2.
cp -a "$tmp/base" "$tmp/full"
link "$tmp/full" "${cmds[@]}"
got=$(env -i PATH="$tmp/full" bash "$root/scripts/demo" --missing)
[ -z "$got" ] || fail "--missing with its commands present: '$got'"
if env -i PATH="$tmp/full" HF_BIN="$HF_BIN" bash "$root/scripts/demo" >"$tmp/run2" 2>&1; then
    grep -q 'installing' "$tmp/run2" && fail "installed something although nothing was missing: $(cat "$tmp/run2")"
    grep -q 'client-visible outage' "$tmp/run2" || fail "demo output lacks the outage line: $(cat "$tmp/run2")"
    pass "the whole demo runs with the essential set plus ${cmds[*]} on PATH, installing nothing"
else
    fail "demo with only the essential set plus ${cmds[*]}: $(tail -n 20 "$tmp/run2")"
fi

# 3.
cp -a "$tmp/full" "$tmp/noip"
rm "$tmp/noip/ip"
if env -i PATH="$tmp/noip" HF_BIN="$HF_BIN" bash "$root/scripts/demo" >"$tmp/run3" 2>&1; then
    grep -q '^== installing: iproute2$' "$tmp/run3" || fail "no install step for the missing ip: $(head -n 5 "$tmp/run3")"
    grep -q 'client-visible outage' "$tmp/run3" || fail "demo output lacks the outage line: $(cat "$tmp/run3")"
    pass "ip missing: the demo installed iproute2 (apt-get), found ip and ran"
else
    fail "demo with ip missing: $(tail -n 20 "$tmp/run3")"
fi
