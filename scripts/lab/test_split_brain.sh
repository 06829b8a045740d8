#!/usr/bin/env bash
# Split brain (seeds 000/003): VRRP blocked between the nodes (nftables inside the
# namespaces) -> both become master -> the ARP probe finds the VIP held by the other
# node: the alert is raised on both (log, status split_brain field, /metrics,
# webhook). Path restored -> one master, the alert cleared, and the remaining master
# sends fresh gratuitous ARPs, so that the client that followed the other node
# comes back. Then a one-way failure (a's adverts lost, a hears b) without the
# probe on a: a sees another master's adverts persist and raises the alert in band.
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"

mkdir -p "$dir/sinks"
ip netns exec "$LAB-c" "$PY" "$here/../lib/notify_sinks.py" 192.0.2.10 "$dir/sinks" >"$dir/sinks.log" 2>&1 &
lab_track_pid $!
for _ in $(seq 100); do grep -q ready "$dir/sinks.log" && break; sleep 0.05; done
grep -q ready "$dir/sinks.log" || fail "webhook receiver did not start: $(cat "$dir/sinks.log")"

conf() { # node priority [probe]
    hf_conf "$1" web 51 "$2" 3 100ms "\"$VIP/24\"" ${3:+"split_brain_probe = \"$3\""} \
        '[[notify.webhooks]]' 'url = "http://192.0.2.10:8080/hook"'
}
conf a 150 300ms >"$dir/a.toml"
conf b 100 300ms >"$dir/b.toml"
status_json() { "$HF_BIN" status --runtime-dir "$dir/run-$1" --json; }
sb() { status_json "$1" | "$PY" -c "import json,sys; print(json.load(sys.stdin)['instances']['web']['split_brain']$2)"; }
wait_sb() { # node True|False timeout_s
    local i
    for i in $(seq $(( $3 * 20 ))); do [ "$(sb "$1" "['active']" 2>/dev/null)" = "$2" ] && return 0; sleep 0.05; done
    echo "split_brain.active on $1 is $(sb "$1" "['active']" 2>/dev/null), not $2" >&2
    return 1
}
mac_of() { lab_exec "$1" cat /sys/class/net/eth0/address; }
client_mac_for_vip() { lab_exec c ip neigh show $VIP dev eth0 | awk '{for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1)}'; }
hooks() { # node active
    "$PY" -c "
import json, sys
n = 0
for l in open('$dir/sinks/webhooks.jsonl'):
    d = json.loads(l)
    if d['event'] == 'split_brain' and d['node'] == 'node-$1' and d['active'] == $2 and d['instance'] == 'web':
        n += 1
print(n)" 2>/dev/null || echo 0
}
MAC_A=$(mac_of a) MAC_B=$(mac_of b)

hf_start a "$dir/a.toml"
hf_start b "$dir/b.toml"
hf_wait_state a web master 5 || fail "a not master"
hf_wait_state b web backup 5 || fail "b not backup"
sleep 1
[ "$(sb a "['active']")" = False ] && [ "$(sb b "['active']")" = False ] || fail "split brain reported in a healthy pair"
lab_client_ping $VIP || fail "client cannot reach the VIP"
[ "$(client_mac_for_vip)" = "$MAC_A" ] || fail "client's VIP entry is not a's MAC"
pass "healthy pair: a master, no split brain; the client reaches the VIP at a ($MAC_A)"

# --- VRRP blocked both ways: two masters --------------------------------------
lab_block_vrrp a
lab_block_vrrp b
t0=$(date +%s%N)
hf_wait_state b web master 3 || fail "b did not become master with VRRP blocked"
[ "$(hf_field a "s['instances']['web']['state']")" = master ] || fail "a is not master any more"
wait_sb a True 5 || fail "split brain not raised on a"
wait_sb b True 5 || fail "split brain not raised on b"
echo "   VRRP blocked -> split brain raised on both after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
grep -q "split brain detected" "$dir/hafront-a.log" || fail "no split-brain warning in a's log"
grep -q "split brain detected" "$dir/hafront-b.log" || fail "no split-brain warning in b's log"
sb a "['detail']" | grep_q "another node ($MAC_B) answers for VIP" || fail "a's detail: $(sb a "['detail']")"
sb b "['detail']" | grep_q "another node ($MAC_A) answers for VIP" || fail "b's detail: $(sb b "['detail']")"
for _ in $(seq 60); do [ "$(hooks a True)" -ge 1 ] && [ "$(hooks b True)" -ge 1 ] && break; sleep 0.05; done
[ "$(hooks a True)" -ge 1 ] && [ "$(hooks b True)" -ge 1 ] || fail "no split-brain webhook from both nodes"
"$PY" "$here/../lib/api.py" "unix:$dir/run-a/api.sock" GET /metrics | grep_q '^hafront_split_brain{vrrp_instance="web"} 1$' \
    || fail "metrics: hafront_split_brain not 1"
pass "both masters: alert raised on both (log, status split_brain with the other MAC, webhook, metrics)"

# The client follows whoever announced last (b, on becoming master).
lab_client_ping $VIP || true
echo "   during the split brain the client's VIP entry is $(client_mac_for_vip) (a $MAC_A, b $MAC_B)"

# --- path restored --------------------------------------------------------------
ip netns exec "$LAB-c" tcpdump -i eth0 -n -t -e -l arp >"$dir/arp.txt" 2>/dev/null &
tcpd=$!
lab_track_pid $tcpd
sleep 0.5
lab_unblock_vrrp a
lab_unblock_vrrp b
t1=$(date +%s%N)
hf_wait_state b web backup 3 || fail "b did not step down when the path came back"
[ "$(hf_field a "s['instances']['web']['state']")" = master ] || fail "a is not the master after healing"
wait_sb a False 5 || fail "split brain not cleared on a"
wait_sb b False 5 || fail "split brain not cleared on b"
echo "   path restored -> one master, alert cleared after $(( ($(date +%s%N) - t1) / 1000000 )) ms"
lab_has_vip b $VIP && fail "b still holds the VIP"
grep -q "fresh gratuitous ARPs" "$dir/hafront-a.log" || fail "a did not re-announce"
for _ in $(seq 40); do [ "$(client_mac_for_vip)" = "$MAC_A" ] && break; sleep 0.05; done
sleep 0.3
kill "$tcpd"; wait "$tcpd" 2>/dev/null || true; lab_untrack_pid "$tcpd"
garps=$(grep -c "^$MAC_A > ff:ff:ff:ff:ff:ff.*Request who-has $VIP tell $VIP" "$dir/arp.txt" || true)
[ "$garps" -ge 1 ] || { cat "$dir/arp.txt"; fail "no gratuitous ARP from a after healing"; }
[ "$(client_mac_for_vip)" = "$MAC_A" ] || fail "the client's VIP entry is still $(client_mac_for_vip), not a's"
for _ in $(seq 60); do [ "$(hooks a False)" -ge 1 ] && break; sleep 0.05; done
[ "$(hooks a False)" -ge 1 ] || fail "no 'cleared' webhook from a"
pass "path restored: one master (a), alert cleared on both, $garps fresh gratuitous ARPs from a, the client's VIP entry back to a"

# --- one-way: a's adverts lost, a hears b; no probe on a: in-band detection -----
conf a 150 >"$dir/a.toml"
kill -HUP "${HF_PID[a]}"
sleep 0.5
lab_exec a nft -f - <<NFT
table inet hafront_lab {
  chain out { type filter hook output priority 0; meta l4proto 112 drop; }
}
NFT
hf_wait_state b web master 3 || fail "b did not become master with a's adverts lost"
wait_sb a True 6 || fail "in-band split brain not raised on a"
sb a "['detail']" | grep_q "adverts from another master keep arriving" || fail "a's in-band detail: $(sb a "['detail']")"
pass "one-way loss: a keeps hearing b's adverts as master -> in-band alert ($(sb a "['detail']"))"
lab_unblock_vrrp a
hf_wait_state b web backup 3 || fail "b did not step down after the one-way loss ended"
wait_sb a False 5 || fail "in-band alert not cleared"
pass "one-way loss ended: b backup, alert cleared"
