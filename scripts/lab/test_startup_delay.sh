#!/usr/bin/env bash
# Start-up hold (issue 14): a higher-priority, preempting node started with
# vrrp.startup_delay = 2s stays backup and silent for 2 s although the master it
# hears has a lower priority, then preempts. Without the delay it would take over
# after ~0.4 s (Master_Down_Interval at 100 ms adverts).
# b runs with vrrp.rt_priority and vrrp.lock_memory: its engine (main) thread is
# SCHED_RR, its other threads are not, and its memory is locked.
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
hf_conf a web 51 150 3 100ms "\"$VIP/24\"" >"$dir/a.toml"
hf_conf b web 51 100 3 100ms "\"$VIP/24\"" >"$dir/b.toml"
hf_start b "$dir/b.toml" HAFRONT_VRRP__RT_PRIORITY=10 HAFRONT_VRRP__LOCK_MEMORY=true
hf_wait_state b web master 5 || fail "b not master"
pid=${HF_PID[b]}
classes=$(ps -L -o tid=,cls= -p "$pid")
grep -qE "^ *$pid +RR$" <<<"$classes" || fail "b's engine thread is not SCHED_RR: $classes"
[ "$(grep -cE ' RR$' <<<"$classes")" = 1 ] || fail "other threads of b inherited SCHED_RR: $classes"
locked=$(awk '/^VmLck:/ {print $2}' "/proc/$pid/status")
[ "${locked:-0}" -gt 0 ] || fail "b's memory is not locked (VmLck ${locked:-none})"
pass "vrrp.rt_priority: only the engine thread on SCHED_RR; vrrp.lock_memory: VmLck $locked kB"
hf_start a "$dir/a.toml" HAFRONT_VRRP__STARTUP_DELAY=2s
t0=$(date +%s%N)
hf_wait_state a web backup 2 || fail "a not backup"
while [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 1500 ]; do
    [ "$(hf_field a "s['instances']['web']['state']")" = master ] && fail "a became master during its start-up delay"
    [ "$(lab_vip_holder $VIP)" = b ] || fail "VIP holder $(lab_vip_holder $VIP) during a's start-up delay, want b"
    sleep 0.05
done
sent=$(hf_field a "s['instances']['web']['counters']['adverts_sent']")
[ -n "$sent" ] || { sleep 0.05; sent=$(hf_field a "s['instances']['web']['counters']['adverts_sent']"); }
[ "$sent" = 0 ] || fail "a sent $sent adverts during its start-up delay ($(hf_field a "s['instances']['web']"))"
pass "a (150) stayed backup and silent for its 2 s start-up delay, b (100) kept the VIP"
hf_wait_state a web master 3 || fail "a did not preempt after its start-up delay"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$ms" -ge 1900 ] || fail "a took over after $ms ms, before its 2 s delay"
lab_wait_vip a $VIP 1 || fail "VIP not on a"
hf_wait_state b web backup 1 || fail "b did not yield"
pass "a took over $ms ms after start, when the delay ended"
