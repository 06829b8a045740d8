#!/usr/bin/env bash
# systemd notify protocol: READY=1 only after the startup state is applied (a stale
# VIP already removed), STATUS= with each instance's state, WATCHDOG=1 pings when
# WATCHDOG_USEC is set, STOPPING=1 on SIGTERM.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/lab.sh"
source "$here/../lib/hafront.sh"
hf_build
lab_up
dir=$(lab_logdir)
sock="$dir/notify.sock"
lab_exec a ip addr add 192.0.2.100/24 dev eth0   # a stale VIP, as after a crash
lab_exec a python3 "$here/../lib/notify_listen.py" "$sock" "$dir/notify.log" \
    --on-ready "ip -o addr show dev eth0" &
lab_track_pid $!
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
hf_conf a web 51 100 3 1s '"192.0.2.100/24"' >"$dir/a.toml"
hf_start a "$dir/a.toml" NOTIFY_SOCKET="$sock" WATCHDOG_USEC=1000000
sleep 5
hf_stop a
sleep 1.5
cat "$dir/notify.log"
grep -q '^READY=1|STATUS=web:backup' "$dir/notify.log" || fail "no READY=1 with STATUS=web:backup"
ready_line=$(grep -n '^READY=1' "$dir/notify.log" | head -1 | cut -d: -f1)
grep '^AT_READY' "$dir/notify.log" | grep '192.0.2.100/' >/dev/null && fail "READY=1 was sent while the stale VIP was still present"
grep -q '^AT_READY' "$dir/notify.log" || fail "listener did not snapshot addresses at READY"
grep -q 'STATUS=web:master' "$dir/notify.log" || fail "no STATUS= update after becoming master"
[ "$(grep -c '^WATCHDOG=1' "$dir/notify.log")" -ge 2 ] || fail "fewer than 2 watchdog pings in 3 s with WatchdogSec=1s"
grep -q '^STOPPING=1' "$dir/notify.log" || fail "no STOPPING=1 on SIGTERM"
[ "$ready_line" -lt "$(grep -n '^STOPPING=1' "$dir/notify.log" | cut -d: -f1)" ] || fail "STOPPING before READY"
pass "READY after state applied, STATUS, WATCHDOG, STOPPING"
