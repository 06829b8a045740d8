#!/usr/bin/env bash
# The fault suite's junk flood, short (issue 14): broken adverts for the VRID
# (bad checksum, truncated, count 0, random bytes) at 20,000/s for 3 s from the
# client, multicast to both nodes. Nothing changes hands, the master keeps
# advertising on time, and both count what they refused.
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
hf_pair
sleep 0.5
transitions() { grep -c 'state changed' "$dir/hafront-$1.log" || true; }
ta=$(transitions a) tb=$(transitions b)
ip netns exec "$NS_B" tcpdump -i eth0 -n -l -tt "ip proto 112 and src $IP_A" >"$dir/adverts.txt" 2>/dev/null &
cap=$!
lab_track_pid $cap
sleep 0.5
sent=$(lab_exec c "$PY" "$here/../lib/vrrp_send.py" --src "$IP_C" --rate 20000 --seconds 3 junk)
sleep 0.5
kill "$cap" 2>/dev/null || true
wait "$cap" 2>/dev/null || true
lab_untrack_pid "$cap"
[ "$(transitions a) $(transitions b)" = "$ta $tb" ] ||
    fail "state changed during the flood: a $ta -> $(transitions a), b $tb -> $(transitions b)"
[ "$(lab_vip_holder $VIP)" = a ] || fail "VIP holder $(lab_vip_holder $VIP), want a"
gap=$(awk '{ t = $1 * 1000; if (n++ && t - last > g) g = t - last; last = t } END { printf "%d", g }' "$dir/adverts.txt")
n=$(wc -l <"$dir/adverts.txt")
[ "$n" -ge 30 ] || fail "only $n adverts of a seen at b in 4 s"
# Master_Down_Interval is 3.6 intervals: a gap near it would be a near failover.
[ "$gap" -lt 300 ] || fail "largest gap between a's adverts at b: $gap ms"
rejected=$(hf_field b "sum(s['instances']['web']['counters']['rejected'].values())")
[ "${rejected:-0}" -gt 1000 ] || fail "b counted ${rejected:-no} rejected adverts"
pass "junk flood ($sent): no state change, a's adverts every ≤ $gap ms at b, b rejected $rejected"
