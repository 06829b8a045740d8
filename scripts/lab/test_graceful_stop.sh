#!/usr/bin/env bash
# SIGTERM on the master: it sends priority 0 and removes its VIPs; the backup takes
# over after Skew_Time, not after the master-down interval.
set -euo pipefail
here=$(dirname "$0")
source "$here/../lib/lab.sh"
source "$here/../lib/hafront.sh"
hf_build
lab_up
dir=$(lab_logdir)
# 1 s adverts: master-down would be 3.6 s, skew is 0.61 s for priority 100.
hf_conf a web 51 150 3 1s '"192.0.2.100/24"' >"$dir/a.toml"
hf_conf b web 51 100 3 1s '"192.0.2.100/24"' >"$dir/b.toml"
hf_start a "$dir/a.toml"
hf_wait_state a web master 8 || fail "a not master"
hf_start b "$dir/b.toml"
hf_wait_state b web backup 5 || fail "b not backup"
sleep 1.5
t0=$(date +%s%N)
hf_stop a
lab_wait_vip b 192.0.2.100 3 || fail "b did not take the VIP within 3 s of SIGTERM"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "VIP on b ${ms} ms after SIGTERM"
[ "$ms" -lt 2500 ] || fail "takeover took ${ms} ms: priority 0 was not honoured (master-down is 3.6 s)"
lab_exec a ip -o addr show dev eth0 | grep '192.0.2.100/' >/dev/null && fail "a kept its VIP after SIGTERM"
[ "$(hf_field b "s['instances']['web']['counters']['priority_zero_received']")" -ge 1 ] || fail "b saw no priority-0 advert"
grep -q 'stopped' "$dir/hafront-a.log" || fail "a did not log a clean stop"
pass "graceful stop: priority 0 sent, VIPs released, backup took over"
