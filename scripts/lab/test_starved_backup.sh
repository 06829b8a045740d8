#!/usr/bin/env bash
# A backup that did not run for a while (SIGSTOP: the CPU starvation of the fault
# suite, made certain) wakes with its Master_Down_Timer expired and the master's
# adverts, which arrived in time, queued in its socket. It must read them before it
# acts on the timer: no takeover while the master is alive (issue 14, fault suite).
# Before the fix the engine fired the due timer first and b took over 5 of 5 times.
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
hf_pair
sleep 0.5
masters_b() { grep -c 'state changed.*state="master"' "$dir/hafront-b.log" || true; }
pid=${HF_PID[b]}
for i in 1 2 3 4 5; do
    kill -STOP "$pid"
    sleep 1 # ten adverts queue up; the 0.36 s Master_Down_Interval passes
    kill -CONT "$pid"
    sleep 0.6
    [ "$(masters_b)" = 0 ] || fail "b took over after being stopped for 1 s (round $i) although a's adverts were queued"
done
[ "$(lab_vip_holder $VIP)" = a ] || fail "VIP holder $(lab_vip_holder $VIP), want a"
pass "b stopped for 1 s five times: it read a's queued adverts before its expired timer, no takeover"
# A master that is really gone is still taken over from.
hf_kill a
hf_wait_state b web master 2 || fail "b did not take over from a killed master"
pass "a killed: b took over"
