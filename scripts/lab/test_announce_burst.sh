#!/usr/bin/env bash
# Many adverts due in one tick keep their announcements (issue 19): with
# garp.with_advert (the default) every advert of a master comes with a gratuitous
# ARP per VIP. 48 instances on one node, stopped for 250 ms six times (SIGSTOP, a
# starved or descheduled daemon): on resuming, all 48 adverts are due at once.
# Before the fix each was its own command to the VIP executor, which runs only
# after the engine's pass, and more than 16 waiting (net::vip::ANNOUNCE_MAX) were
# dropped ("announcement queue full"): 32 gratuitous ARPs lost per stall. Now
# the adverts due together leave in one sendmmsg and their announcements are one
# command per interface. The start counts too: the 48 become master in passes of
# their own (started microseconds apart), and the 17th takeover announcement was
# dropped (3 of 6 runs on 2026-12-05); a takeover's announcement is never dropped now.
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
n=48
{
    printf 'runtime_dir = "%s/run-a"\nstate_dir = "%s/state-a"\n' "$dir" "$dir"
    for i in $(seq $n); do
        printf '[vrrp.instances.i%s]\ninterface = "eth0"\nvrid = %s\npriority = 150\nadvert_interval = "100ms"\nvirtual_ips = ["198.51.100.%s/24"]\n' "$i" "$i" "$i"
    done
} >"$dir/a.toml"
hf_start a "$dir/a.toml"
masters() { hf_field a "sum(1 for i in s['instances'].values() if i['state'] == 'master')" 2>/dev/null || echo 0; }
for _ in $(seq 50); do [ "$(masters)" = $n ] && break; sleep 0.2; done
[ "$(masters)" = $n ] || fail "a master of $(masters) of $n instances"
sleep 0.5
ip netns exec "$LAB-sw" tcpdump -i pa -n -l 'arp or ip proto 112' >"$dir/wire.txt" 2>/dev/null &
cap=$!
lab_track_pid $cap
sleep 0.5
for _ in $(seq 6); do
    kill -STOP "${HF_PID[a]}"
    sleep 0.25
    kill -CONT "${HF_PID[a]}"
    sleep 0.25
done
sleep 0.3
kill "$cap" 2>/dev/null || true
wait "$cap" 2>/dev/null || true
lab_untrack_pid $cap
adverts=$(grep -c 'VRRPv3, Advertisement' "$dir/wire.txt" || true)
garps=$(grep -c 'Request who-has 198\.51\.100\.' "$dir/wire.txt" || true)
[ "$adverts" -ge $((n * 20)) ] || fail "only $adverts adverts in 3.5 s from $n instances"
! grep -q 'announcement queue full' "$dir/hafront-a.log" ||
    fail "announcements dropped: $(grep 'announcement queue full' "$dir/hafront-a.log" | head -1)"
# One gratuitous ARP per advert; at most one tick's worth cut off at either end.
[ "$garps" -ge $((adverts - n)) ] || fail "$garps gratuitous ARPs for $adverts adverts"
pass "$n instances stalled 6 x 250 ms: $adverts adverts, $garps gratuitous ARPs, none dropped"
