#!/usr/bin/env bash
# SIGHUP: an unchanged configuration keeps state and VIPs (no flap); a changed
# priority is applied in place; an invalid configuration is rejected and the
# running one kept, and visible as such in /v1/status, `hafront status` and /metrics
# (issue 14, defect 4).
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
reload_field() { "$HF_BIN" status --runtime-dir "$dir/run-$1" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['reload']$2)"; }
[ "$(reload_field a "['successful']")" = False ] || fail "status: reload.successful is not False after a rejected reload"
[ "$(reload_field a "['by']")" = SIGHUP ] || fail "status: reload.by is $(reload_field a "['by']")"
err=$(reload_field a "['error']")
[[ $err == *a.toml* ]] || fail "status: reload.error does not name the file: $err"
"$HF_BIN" status --runtime-dir "$dir/run-a" >"$dir/status-a.txt"
grep -q '^config: last reload (SIGHUP) at .* FAILED' "$dir/status-a.txt" || { cat "$dir/status-a.txt"; fail "hafront status does not show the failed reload"; }
python3 "$here/../lib/api.py" "unix:$dir/run-a/api.sock" GET /metrics | tail -n +2 >"$dir/metrics-a.txt"
started=$(awk '$1 == "hafront_start_time_seconds" {print $2}' "$dir/metrics-a.txt")
/usr/bin/python3 "$here/../lib/metrics_check.py" "$dir/metrics-a.txt" \
    'hafront_config_last_reload_successful=0' \
    "hafront_config_last_reload_success_timestamp_seconds>=$started" || fail "/metrics after a rejected reload"
pass "rejected reload shown: status reload.successful = False with the error, hafront status, hafront_config_last_reload_successful 0"

hf_conf b web 51 200 3 100ms '"192.0.2.100/24"' >"$dir/b.toml"
kill -HUP "${HF_PID[b]}"
hf_wait_state b web master 3 || fail "b did not take over after its priority was raised to 200"
hf_wait_state a web backup 2 || fail "a did not yield"
lab_wait_vip b 192.0.2.100 2 || fail "VIP not on b"
[ "$(hf_field b "s['instances']['web']['priority']")" = 200 ] || fail "b's priority not 200 in status"
pass "priority change applied in place by SIGHUP"
[ "$(reload_field b "['successful']")" = True ] || fail "status: reload.successful not True after b's reload"
python3 "$here/../lib/api.py" "unix:$dir/run-b/api.sock" GET /metrics | tail -n +2 >"$dir/metrics-b.txt"
started=$(awk '$1 == "hafront_start_time_seconds" {print $2}' "$dir/metrics-b.txt")
ts=$(awk '$1 == "hafront_config_last_reload_success_timestamp_seconds" {print $2}' "$dir/metrics-b.txt")
/usr/bin/python3 "$here/../lib/metrics_check.py" "$dir/metrics-b.txt" 'hafront_config_last_reload_successful=1' || fail "/metrics after b's reload"
python3 -c "import sys; sys.exit(0 if float('$ts') > float('$started') else 1)" || fail "success timestamp $ts not after the start $started"
pass "successful reload: reload.successful = True, success timestamp moved"
