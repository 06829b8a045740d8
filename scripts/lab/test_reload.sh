#!/usr/bin/env bash
# SIGHUP: an unchanged configuration keeps state and VIPs (no flap); a changed
# priority is applied in place; an invalid configuration is rejected and the
# running one kept.
set -euo pipefail
here=$(dirname "$0")
source "$here/../lib/lab.sh"
source "$here/../lib/hafront.sh"
hf_build
lab_up
dir=$(lab_logdir)
hf_conf a web 51 150 3 100ms '"192.0.2.100/24"' >"$dir/a.toml"
hf_conf b web 51 100 3 100ms '"192.0.2.100/24"' >"$dir/b.toml"
hf_start a "$dir/a.toml"
hf_start b "$dir/b.toml"
hf_wait_state a web master 5 || fail "a not master"
hf_wait_state b web backup 5 || fail "b not backup"
before=$(hf_field a "s['instances']['web']['counters']['become_master']")
kill -HUP "${HF_PID[a]}"
sleep 1
[ "$(hf_field a "s['instances']['web']['state']")" = master ] || fail "a lost mastership on an unchanged reload"
[ "$(hf_field a "s['instances']['web']['counters']['become_master']")" = "$before" ] || fail "a flapped on an unchanged reload"
[ "$(hf_field a "s['instances']['web']['counters']['release_master']")" = 0 ] || fail "a released the VIP on an unchanged reload"
grep -q 'virtual address removed' "$dir/hafront-a.log" && fail "VIP was removed during an unchanged reload"
pass "unchanged reload: no flap"

echo 'this is = not [valid toml' >>"$dir/a.toml"
kill -HUP "${HF_PID[a]}"
sleep 1
kill -0 "${HF_PID[a]}" || fail "a died on an invalid reload"
grep -q 'new configuration rejected' "$dir/hafront-a.log" || fail "invalid reload not reported"
[ "$(hf_field a "s['instances']['web']['state']")" = master ] || fail "a lost mastership on an invalid reload"
pass "invalid reload rejected, running configuration kept"

hf_conf b web 51 200 3 100ms '"192.0.2.100/24"' >"$dir/b.toml"
kill -HUP "${HF_PID[b]}"
hf_wait_state b web master 3 || fail "b did not take over after its priority was raised to 200"
hf_wait_state a web backup 2 || fail "a did not yield"
lab_wait_vip b 192.0.2.100 2 || fail "VIP not on b"
[ "$(hf_field b "s['instances']['web']['priority']")" = 200 ] || fail "b's priority not 200 in status"
pass "priority change applied in place by SIGHUP"
