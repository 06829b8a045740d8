#!/usr/bin/env bash
# VIP drift (issue 14): addresses changed behind hafront's back (networkd, netplan,
# `ip addr flush`). A master re-adds a removed VIP within about a second, announces
# it, logs and counts it; a backup removes a VIP someone added; a VIP in
# vip_no_track is left alone either way. Address events make the check run at once
# (within 300 ms here; the one-second check is the fallback).
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
VIP2=192.0.2.101
extra=('vip_no_track = ["192.0.2.101/24"]')
hf_conf a web 51 150 3 100ms "\"$VIP/24\", \"$VIP2/24\"" "${extra[@]}" >"$dir/a.toml"
hf_conf b web 51 100 3 100ms "\"$VIP/24\", \"$VIP2/24\"" "${extra[@]}" >"$dir/b.toml"
hf_start a "$dir/a.toml"
hf_wait_state a web master 5 || fail "a not master"
hf_start b "$dir/b.toml"
hf_wait_state b web backup 5 || fail "b not backup"
lab_wait_vip a $VIP2 2 || fail "$VIP2 not on a"
metric() { # node action
    "$PY" "$here/../lib/api.py" "unix:$dir/run-$1/api.sock" GET /metrics |
        awk -v want="hafront_vip_drift_repairs_total{vrrp_instance=\"web\",action=\"$2\"}" '$1 == want {print $2}'
}

lab_exec a ip addr del $VIP/24 dev eth0
t0=$(date +%s%N)
lab_wait_vip a $VIP 2 || fail "$VIP not restored on the master within 2 s"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$ms" -le 300 ] || fail "$VIP restored after $ms ms, want <= 300 (address events)"
lab_exec a ip addr del $VIP2/24 dev eth0
sleep 2
lab_has_vip a $VIP2 && fail "$VIP2 (vip_no_track) was restored"
[ "$(metric a restored)" = 1 ] || fail "restored count on a is '$(metric a restored)', want 1"
grep -q "removed behind hafront's back" "$dir/hafront-a.log" || fail "restoration not logged"
[ "$(hf_field a "s['instances']['web']['counters']['become_master']")" = 1 ] || fail "a flapped"
lab_client_ping $VIP || fail "client cannot reach $VIP after the repair"
pass "master: removed VIP back in $ms ms, counted and logged; vip_no_track VIP left removed"

lab_exec b ip addr add $VIP/24 dev eth0
lab_exec b ip addr add $VIP2/24 dev eth0
t0=$(date +%s%N)
lab_wait_no_vip b $VIP 2 || fail "$VIP not removed from the backup within 2 s"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$ms" -le 300 ] || fail "$VIP removed from the backup after $ms ms, want <= 300 (address events)"
sleep 1.5
lab_has_vip b $VIP2 || fail "$VIP2 (vip_no_track) was removed from the backup"
[ "$(metric b removed)" = 1 ] || fail "removed count on b is '$(metric b removed)', want 1"
pass "backup: VIP added behind its back removed in $ms ms and counted; vip_no_track VIP left alone"
