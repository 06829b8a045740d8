#!/usr/bin/env bash
# SIGKILL of a master leaves its VIP behind (no cleanup ran). While the other node is
# master, restarting the killed node must remove the stale VIP before anything else.
set -euo pipefail
here=$(dirname "$0")
source "$here/../lib/lab.sh"
source "$here/../lib/hafront.sh"
hf_build
lab_up
dir=$(lab_logdir)
hf_conf a web 51 150 3 100ms '"192.0.2.100/24"' 'preempt = false' >"$dir/a.toml"
hf_conf b web 51 100 3 100ms '"192.0.2.100/24"' >"$dir/b.toml"
hf_start a "$dir/a.toml"
hf_wait_state a web master 5 || fail "a not master"
hf_start b "$dir/b.toml"
hf_wait_state b web backup 5 || fail "b not backup"
hf_kill a
lab_wait_vip b 192.0.2.100 3 || fail "b did not take the VIP after a was killed"
[ "$(lab_exec a ip -o addr show dev eth0 | grep -c '192.0.2.100/')" = 1 ] || fail "test setup: the killed master should still hold the stale VIP"
pass "killed master left its VIP behind; b took over"
hf_start a "$dir/a.toml"
hf_wait_state a web backup 5 || fail "a did not come back as backup"
lab_exec a ip -o addr show dev eth0 | grep '192.0.2.100/' >/dev/null && fail "stale VIP still on a after restart"
sleep 1
[ "$(lab_vip_holder 192.0.2.100)" = b ] || fail "VIP holder $(lab_vip_holder 192.0.2.100), want only b"
lab_client_ping 192.0.2.100 || fail "client cannot reach VIP on b"
pass "restarted node removed the stale VIP and stays backup"
