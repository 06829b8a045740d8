#!/usr/bin/env bash
# The tests' own shell: no `| grep -q` in a script that runs under pipefail.
# grep -q leaves at its first match; ip and bridge write(2) each line, so a writer
# with lines left dies of SIGPIPE, and pipefail turns the match into a miss. CI
# failed test_vmac6 on it ("VIP not on a" while a held the VIP). The lab's grep_q
# (scripts/lib/lab.sh) reads all its input. Checked here: the scripts, and grep_q
# itself against the race in a namespace of its own (documentation addresses on lo).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
source "$here/../lib/lab.sh"
fail() { echo "FAIL: $*"; exit 1; }

# Host-side scripts that run under pipefail: the lab and bench libraries, the lab
# tests, the tools that source lab.sh and the packaging tests. (vm-tests/*.sh run
# inside the VM without pipefail; a `sh -c "..."` string has no pipefail either.)
bad=$(cd "$repo" && grep -nE '\|[[:space:]]*grep[[:space:]]+-q' \
    scripts/test scripts/bench scripts/demo scripts/capture-keepalived scripts/lab/*.sh scripts/lib/*.sh \
    appliance/*.sh containers/*.sh nixos/tests/*.sh 2>/dev/null |
    grep -vE '^[^:]+:[0-9]+:[[:space:]]*#|sh -c|pipe-lint: the race itself' || true)
[ -z "$bad" ] || fail "grep -q at the end of a pipeline (use grep_q):
$bad"
echo "ok: no grep -q ending a pipeline in the host-side scripts"

ns=hfpipe$$
trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
for i in 1 2 3 4 5 6; do ip -n "$ns" -6 addr add "2001:db8::$i/64" dev lo nodad; done
# The first address listed (the newest) is matched: five lines follow it.
first=$(ip -n "$ns" -6 -o addr show dev lo | awk 'NR==1 {print $4}')
[ -n "$first" ] || fail "no address listed in $ns"
runs=300 miss_q=0 miss=0
for _ in $(seq $runs); do
    ip -n "$ns" -6 -o addr show | grep -q " $first" || miss_q=$((miss_q + 1)) # pipe-lint: the race itself
    ip -n "$ns" -6 -o addr show | grep_q " $first" || miss=$((miss + 1))
done
echo "matching the first of six lines under pipefail, $runs runs: grep -q missed $miss_q, grep_q missed $miss"
[ "$miss" = 0 ] || fail "grep_q missed $miss of $runs matches"
echo "ok: grep_q never misses"
