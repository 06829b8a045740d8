#!/usr/bin/env bash
# Issue 14, defects 5 and 6. A pair (a master at 150, b backup at 100, 100 ms adverts)
# and a client that forges adverts with valid checksums:
# - priority-0 adverts from the client's address aimed at the backup (multicast and
#   unicast) must not make it take over: only the master it follows may say it leaves;
# - a flood of priority-1 adverts aimed at the master gives at most one extra advert
#   (and announcement) per advert interval, not one per forged packet.
# Then the real master's priority 0 (graceful stop) still hands over at once.
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
send() { lab_exec c "$PY" "$here/../lib/vrrp_send.py" --src 192.0.2.10 "$@"; }
hf_conf a web 51 150 3 100ms "\"$VIP/24\"" >"$dir/a.toml"
hf_conf b web 51 100 3 100ms "\"$VIP/24\"" >"$dir/b.toml"
hf_start a "$dir/a.toml"
hf_wait_state a web master 5 || fail "a not master"
hf_start b "$dir/b.toml"
hf_wait_state b web backup 5 || fail "b not backup"
sleep 0.5

for _ in $(seq 10); do
    send prio0
    send --dst 192.0.2.2 prio0
    sleep 0.1
done
sleep 1.2 # the status file is rewritten every second
[ "$(hf_field b "s['instances']['web']['counters']['become_master']")" = 0 ] ||
    fail "b took over on a forged priority-0 advert"
[ "$(lab_vip_holder $VIP)" = a ] || fail "VIP holder is $(lab_vip_holder $VIP), want a"
n=$(hf_field b "s['instances']['web']['counters']['rejected'].get('not_master', 0)")
[ "$n" -ge 20 ] || fail "b rejected[not_master] = $n, want >= 20"
pass "forged priority 0 ignored by the backup ($n counted as not_master)"

before=$(hf_field a "s['instances']['web']['counters']['adverts_sent']")
t0=$(date +%s%N)
send --count 2000 --prio 1 good
t1=$(date +%s%N)
sleep 1.2 # the status file is rewritten every second
after=$(hf_field a "s['instances']['web']['counters']['adverts_sent']")
# Regular adverts over the flood and the wait, plus at most one re-assertion each.
ms=$(( (t1 - t0) / 1000000 + 1200 ))
limit=$(( 2 * (ms / 100 + 1) + 2 ))
sent=$((after - before))
[ "$(hf_field a "s['instances']['web']['state']")" = master ] || fail "a lost mastership to priority-1 adverts"
[ "$sent" -le "$limit" ] || fail "a sent $sent adverts for 2000 forged priority-1 adverts in $(( (t1 - t0) / 1000000 )) ms, want <= $limit"
pass "2000 forged priority-1 adverts: $sent adverts sent (<= $limit)"

hf_stop a
hf_wait_state b web master 1 || fail "b did not take over on a's real priority 0"
pass "the master's own priority 0 still hands over"
