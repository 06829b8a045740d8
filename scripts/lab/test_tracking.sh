#!/usr/bin/env bash
# VRRP tracking with real processes: a failing HTTP check lowers the master's
# priority (weight -60) and the VIP moves to the backup, then back when the check
# recovers; a tracked file with weight 0 faults the master; a tracked interface
# going down faults it; a sync group carries one member's fault to the other.
set -euo pipefail
here=$(dirname "$0")
source "$here/../lib/lab.sh"
source "$here/../lib/hafront.sh"
hf_build
lab_up
dir=$(lab_logdir)
VIP=192.0.2.100 VIP2=192.0.2.101

# The web server a's check probes: python's http.server on a's loopback.
mkdir -p "$dir/www"; echo ok >"$dir/www/index.html"
web_start() {
    ip netns exec "$LAB-a" python3 -m http.server 8080 --bind 127.0.0.1 --directory "$dir/www" >"$dir/web.log" 2>&1 &
    WEB_PID=$!  # (not lab_exec: a backgrounded function would give its subshell's PID)
    lab_track_pid "$WEB_PID"
    for _ in $(seq 50); do lab_exec a python3 -c 'import socket; socket.create_connection(("127.0.0.1", 8080), 0.2)' 2>/dev/null && return 0; sleep 0.1; done
    fail "web server did not start"
}
web_stop() { kill "$WEB_PID"; wait "$WEB_PID" 2>/dev/null || true; lab_untrack_pid "$WEB_PID"; }
lab_exec a ip link add trk0 type veth peer name trk1
lab_exec a ip link set trk1 up
lab_exec a ip link set trk0 up
echo 0 >"$dir/maint"

hf_conf a web 51 150 3 100ms "\"$VIP/24\"" \
    'track_checks = [ { name = "web", weight = -60 } ]' \
    'track_files = [ { name = "maint" } ]' \
    'track_interfaces = [ { name = "trk0" } ]' \
    '[vrrp.instances.web2]' 'interface = "eth0"' 'vrid = 52' 'priority = 150' 'advert_interval = "100ms"' \
    "virtual_ips = [\"$VIP2/24\"]" \
    '[vrrp.sync_groups.edge]' 'instances = ["web", "web2"]' \
    '[checks.web]' 'kind = "http"' 'url = "http://127.0.0.1:8080/"' 'interval = "100ms"' 'timeout = "200ms"' \
    'rise = 1' 'fall = 1' 'warmup = "10ms"' \
    '[files.maint]' "path = \"$dir/maint\"" >"$dir/a.toml"
hf_conf b web 51 100 3 100ms "\"$VIP/24\"" \
    '[vrrp.instances.web2]' 'interface = "eth0"' 'vrid = 52' 'priority = 100' 'advert_interval = "100ms"' \
    "virtual_ips = [\"$VIP2/24\"]" >"$dir/b.toml"
"$HF_BIN" check-config -c "$dir/a.toml" >/dev/null || fail "a's configuration is invalid: $("$HF_BIN" check-config -c "$dir/a.toml" 2>&1)"

web_start
hf_start a "$dir/a.toml"
hf_start b "$dir/b.toml"
hf_wait_state a web master 5 || fail "a not master"
hf_wait_state b web backup 5 || fail "b not backup"

# 1. Check fails: 150 - 60 = 90 < 100, b preempts.
web_stop
lab_wait_vip b $VIP 5 || fail "VIP did not move to b when a's check failed"
[ "$(hf_field a "s['instances']['web']['priority']")" = 90 ] || fail "a's effective priority is not 90"
hf_wait_state a web backup 2 || fail "a did not step down"
lab_client_ping $VIP || fail "client cannot reach the VIP on b"
pass "failing check: a's priority 150 -> 90, VIP moved to b"
web_start
hf_wait_state a web master 5 || fail "a did not take the VIP back after the check recovered"
[ "$(hf_field a "s['instances']['web']['priority']")" = 150 ] || fail "a's priority did not come back to 150"
lab_wait_vip a $VIP 3 || fail "VIP not back on a"
pass "check recovered: priority 150, a preempts back"

# 2. Tracked file with weight 0: a non-zero value faults; the sync group takes web2 along.
echo 1 >"$dir/maint"
hf_wait_state a web fault 5 || fail "a did not fault on the tracked file"
hf_wait_state a web2 fault 3 || fail "sync group: web2 did not follow web into fault"
lab_wait_vip b $VIP 3 || fail "VIP not on b during a's fault"
lab_wait_vip b $VIP2 3 || fail "VIP2 not on b during a's fault"
pass "tracked file = 1: web in fault, web2 with it (sync group), both VIPs on b"
echo 0 >"$dir/maint"
hf_wait_state a web master 5 || fail "a did not recover from the file fault"
hf_wait_state a web2 master 5 || fail "web2 did not recover with its sync group"
pass "tracked file = 0: both back to master"

# 3. Tracked interface down: fault.
lab_exec a ip link set trk0 down
hf_wait_state a web fault 3 || fail "a did not fault when trk0 went down"
lab_exec a ip link set trk0 up
hf_wait_state a web master 5 || fail "a did not recover when trk0 came up"
pass "tracked interface: down -> fault, up -> master"
grep -q 'tracking changed' "$dir/hafront-a.log" || fail "tracking changes are not logged"
