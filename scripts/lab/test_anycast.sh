#!/usr/bin/env bash
# Health-gated anycast over BGP/BFD with Debian's BIRD 2 (issue 17); the lab is
# scripts/lib/anycast-lab.sh (router r with ECMP, nodes n1..n3 with nginx, BIRD
# and hafront, the VIPs 203.0.113.10 and 2001:db8:10::10).
# Asserts: three next hops on the router, for both VIPs; nginx killed on n1 ->
# n1's next hops gone within one check interval + propagation, client requests
# keep succeeding; maintenance on n2 drains it (withdrawn, new requests only to
# the others, n2 itself still serves: a slow download under way on it completes)
# and release brings it back; SIGKILL of hafront alone on n3 and a restart: no change of the router's
# route (`ip monitor`); a graceful restart of n3's BGP BIRD: no change of the
# router's route either (BGP graceful restart, BFD in a BIRD of its own); SIGKILL
# of n3's BIRDs + hafront -> its next hop gone within the BFD detection time plus
# scheduling slack; n2's link cut (no FIN, BFD alone) -> its next hop gone after
# the BFD detection time (100 ms x BFD_MULT, default 5); SIGTERM of n1's hafront
# withdraws first and exits after the drain.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/lab.sh"
source "$here/../lib/hafront.sh"

for tool in bird birdc nginx curl; do
    command -v "$tool" >/dev/null || { echo "SKIP $tool not installed (scripts/test installs bird2, nginx-light, curl)"; exit 0; }
done
hf_build
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }

source "$here/../lib/anycast-lab.sh"
LAB=hany$$
trap lab_down EXIT
trap 'exit 130' INT TERM
lab_logdir >/dev/null # in this shell: one directory for the whole test
dir=$(lab_logdir)
t_start=$(date +%s)
fail() { echo "FAIL: $*" >&2; exit 1; }
anylab_net
anylab_bird
anylab_nginx
anylab_hafront

# ------------------------------------------------------------ helpers
# N requests from the client, each its own connection (its own source port), to
# the IPv4 VIP or the one given ([2001:db8:10::10]): prints "ok=N fail=N n1=.. n2=.. n3=..".
requests() {
    local i out ok=0 bad=0 to=${2:-$VIP}
    declare -A by=()
    for i in $(seq "$1"); do
        if out=$(lab_exec c curl -s -m 1 "http://$to/"); then
            ok=$((ok + 1)); by[$out]=$(( ${by[$out]:-0} + 1 ))
        else
            bad=$((bad + 1))
        fi
    done
    echo "ok=$ok fail=$bad n1=${by[n1]:-0} n2=${by[n2]:-0} n3=${by[n3]:-0}"
}
field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" <<<"$2"; }

# ------------------------------------------------------------ 1. three next hops
wait_hops "$ALL" 30000 >/dev/null || fail "the router never had three next hops"
echo "router: $VIP via [$(hops)]"
# IPv6: the same BGP session (MP-BGP), the node's global address as next hop.
wait_hops -6 "$ALL6" 5000 >/dev/null || fail "the router never had three IPv6 next hops: [$(hops6)]"
echo "router: $VIP6 via [$(hops6)]"
r=$(requests 60)
echo "60 requests: $r"
[ "$(field fail "$r")" = 0 ] || fail "requests failed with three nodes: $r"
for n in n1 n2 n3; do [ "$(field "$n" "$r")" -gt 0 ] || fail "$n got no request (ECMP): $r"; done
r=$(requests 30 "[$VIP6]")
echo "30 requests over IPv6: $r"
[ "$(field fail "$r")" = 0 ] || fail "IPv6 requests failed with three nodes: $r"
for n in n1 n2 n3; do [ "$(field "$n" "$r")" -gt 0 ] || fail "$n got no IPv6 request (ECMP): $r"; done
# hafront reads BIRD's sessions on its own schedule: the router may see the route
# before n1's status has read "Established" (retried for up to 10 s).
status_ok() {
    python3 - "$(api n1 /v1/status)" <<'PY'
import json, sys
a = json.loads(sys.argv[1])["anycast"]["web"]
assert a["announced"] is True and a["why"] == "healthy", a
assert a["bird"]["reachable"] and a["bird"]["bgp"]["r"]["info"].startswith("Established"), a["bird"]
assert a["bird"]["bfd"].get("198.51.100.1") == "Up", a["bird"]
PY
}
for i in $(seq 50); do status_ok 2>/dev/null && break; sleep 0.2; done
status_ok || fail "n1 status"
api n1 /metrics | grep_q '^hafront_anycast_announced{anycast="web"} 1$' || fail "metric announced"
api n1 /metrics | grep_q '^hafront_anycast_bgp_session_up{anycast="web",protocol="r"} 1$' || fail "metric bgp"

# ------------------------------------------------------------ 2. nginx dies on n1
# Client traffic runs through the change: every request must succeed.
( requests 200 >"$dir/during-kill.txt" ) &
load=$!
sleep 0.3
nginx_kill n1
gone=$(wait_hops 198.51.100.12,198.51.100.13 3000) || fail "n1's next hop stayed after its nginx died"
echo "nginx killed on n1: next hop gone after ${gone} ms (check interval ${CHECK_INTERVAL_MS} ms)"
# One check interval + BGP update and kernel propagation (~100-300 ms), with
# slack for the loaded shared machine.
[ "$gone" -lt $((CHECK_INTERVAL_MS + 800)) ] || fail "withdrawal took ${gone} ms"
# The IPv6 prefix is withdrawn by the same verdict (same group, same BGP update round).
wait_hops -6 2001:db8:1::12,2001:db8:1::13 3000 >/dev/null || fail "n1's IPv6 next hop stayed after its nginx died"
wait "$load"
r=$(cat "$dir/during-kill.txt")
echo "during the nginx kill: $r"
# Requests hashed to n1 in the moment between its death and the withdrawal fail
# (the client tried n1's dead nginx): a handful at most, none after.
[ "$(field fail "$r")" -le 10 ] || fail "too many failed requests: $r"
r=$(requests 60)
[ "$(field fail "$r")" = 0 ] && [ "$(field n1 "$r")" = 0 ] || fail "after withdrawal: $r"
r=$(requests 20 "[$VIP6]")
[ "$(field fail "$r")" = 0 ] && [ "$(field n1 "$r")" = 0 ] || fail "IPv6 after withdrawal: $r"
api n1 /v1/status | grep_q '"why":"check nginx down"' || fail "n1's status does not say why"
nginx_start n1
wait_hops "$ALL" 15000 >/dev/null || fail "n1 not announced again after nginx came back"
wait_hops -6 "$ALL6" 3000 >/dev/null || fail "n1 not announced again over IPv6"

# ------------------------------------------------------------ 3. maintenance drains n2
# Maintenance withdraws the route and nothing else: n2 keeps its address and its
# nginx, so a slow download (100 kB at 20 kB/s, 5 s) under way on n2 itself
# completes. (A client's flow to n2 through the router does not: once n2's next
# hop is gone the router hashes the flow's packets to n1 or n3, which reset it;
# on ECMP routers a drained node's in-flight flows move, `scripts/bench anycast`
# counts them.)
lab_exec n2 python3 "$here/../lib/anycast_flows.py" slow --target "$VIP" --node n2 >"$dir/slow.txt" 2>&1 &
slow=$!
for _ in $(seq 100); do grep -q started "$dir/slow.txt" && break; sleep 0.05; done
grep -q started "$dir/slow.txt" || fail "no slow download on n2: $(cat "$dir/slow.txt")"
lab_exec n2 "$HF_BIN" ctl --runtime-dir "$dir/run-n2" anycast-maintenance web on >/dev/null
took=$(wait_hops 198.51.100.11,198.51.100.13 3000) || fail "maintenance did not withdraw n2"
echo "maintenance on n2: withdrawn after ${took} ms"
r=$(requests 60)
echo "60 requests with n2 in maintenance: $r"
[ "$(field fail "$r")" = 0 ] && [ "$(field n2 "$r")" = 0 ] || fail "n2 still gets new flows: $r"
# Its address stays: what is in flight to it (or addressed to it directly) is served.
[ "$(lab_exec n2 curl -s -m 1 "http://$VIP/")" = n2 ] || fail "n2 stopped serving in maintenance"
api n2 /v1/status | grep_q '"why":"maintenance"' || fail "n2's status does not say maintenance"
wait "$slow" || fail "the download under way on n2 failed: $(cat "$dir/slow.txt")"
grep -q '"status": 200, "bytes": 100000' "$dir/slow.txt" || fail "the download under way on n2: $(cat "$dir/slow.txt")"
echo "a download under way on n2 when it went into maintenance: completed ($(tail -1 "$dir/slow.txt"))"
lab_exec n2 "$HF_BIN" ctl --runtime-dir "$dir/run-n2" anycast-maintenance web off >/dev/null
wait_hops "$ALL" 15000 >/dev/null || fail "n2 not announced after maintenance"

# ------------------------------------------------------------ 4. hafront restarts alone on n3
monitor_start
kill -KILL "${HF_PID[n3]}"
wait "${HF_PID[n3]}" 2>/dev/null || true
lab_untrack_pid "${HF_PID[n3]}"
sleep 1
hf_start n3 "$dir/n3.toml"
sleep 3 # a restart, its first checks, two resyncs
monitor_stop
[ "$(hops)" = "$ALL" ] || fail "after hafront's restart on n3 the router has [$(hops)]"
if grep -q -e "$VIP" -e "$VIP6" "$dir/monitor.txt"; then
    cat "$dir/monitor.txt" >&2
    fail "the router's route to $VIP changed while hafront restarted on n3"
fi
echo "hafront SIGKILLed and restarted on n3: the router's route did not change"

# ------------------------------------------------------------ 4b. n3's BGP BIRD restarts
# `birdc graceful restart` (BIRD exits without a Cease to the router) and a start
# with -R: the router keeps n3's routes as stale through the restart (BGP graceful
# restart) and BFD, in n3's other BIRD, stays up. The router's routes are watched
# with `ip monitor` (every change) and polled every 10 ms: n3 never leaves.
monitor_start
lab_exec r sh -c "while :; do ip -4 route show $VIP/32; ip -6 route show $VIP6/128; echo ---; sleep 0.01; done" \
    >"$dir/poll.txt" 2>&1 &
poll=$!
lab_track_pid $poll
t0=$(now_ms)
bird_graceful_restart n3
up=""
for _ in $(seq 150); do
    if lab_exec r birdc -s "$dir/bird-r.ctl" show protocols n3 | grep_q Established && grep -q 'n3: Neighbor graceful restart done' "$dir/bird-r.log"; then
        up=$(( $(now_ms) - t0 )); break
    fi
    sleep 0.1
done
sleep 0.5
kill "$poll"; wait "$poll" 2>/dev/null || true; lab_untrack_pid "$poll"
monitor_stop
[ -n "$up" ] || fail "n3's BGP session did not come back with a finished graceful restart"
grep -q 'n3: Neighbor graceful restart detected' "$dir/bird-r.log" || fail "the router saw no graceful restart of n3"
polls=$(grep -c -- --- "$dir/poll.txt")
missing=$(python3 - "$dir/poll.txt" <<'PY'
import sys
blocks = open(sys.argv[1]).read().split("---\n")[:-1]
print(sum(1 for b in blocks if b.count("198.51.100.13") != 1 or b.count("2001:db8:1::13") != 1))
PY
)
[ "$missing" = 0 ] || fail "n3's next hop was missing in $missing of $polls polls of the router during its BIRD's restart"
if grep -q -e "$VIP" -e "$VIP6" "$dir/monitor.txt"; then
    cat "$dir/monitor.txt" >&2
    fail "the router's routes changed while n3's BIRD restarted"
fi
echo "n3's BIRD restarted (graceful restart): session back after ${up} ms, the router's routes did not change ($polls polls)"

# ------------------------------------------------------------ 5. node crash: n3's BIRDs and hafront
t0=$(now_ms)
kill -KILL "${HF_PID[n3]}"
bird_kill n3 n3-bfd
wait "${HF_PID[n3]}" 2>/dev/null || true
lab_untrack_pid "${HF_PID[n3]}"
gone=$(wait_hops 198.51.100.11,198.51.100.12 3000) || fail "n3's next hop stayed after its BIRD died"
echo "BIRDs + hafront SIGKILLed on n3: next hop gone after ${gone} ms (BFD 100 ms x $BFD_MULT)"
# BFD detection + BIRD's kernel update (the FIN of the BGP socket starts a graceful
# restart on the router, which BFD's failure ends); slack for a loaded machine.
[ "$gone" -lt $((BFD_MS + 500)) ] || fail "BFD withdrawal took ${gone} ms"
r=$(requests 60)
[ "$(field fail "$r")" = 0 ] || fail "after n3 crashed: $r"
echo "after the crash: $r"

# ------------------------------------------------------------ 6. n2 cut off (no FIN: BFD alone)
# A dead link or a frozen node says nothing (not even the FIN of a killed BIRD's
# BGP socket), and only BFD notices.
t0=$(now_ms)
ip -n "$LAB-sw" link set pn2 down
gone=$(wait_hops 198.51.100.11 3000) || fail "n2's next hop stayed after its link was cut"
echo "n2's link cut: next hop gone after ${gone} ms (BFD detection ${BFD_MS} ms)"
[ "$gone" -lt $((BFD_MS + 600)) ] || fail "BFD withdrawal took ${gone} ms"
[ "$gone" -ge $((BFD_MS - 100)) ] || fail "gone after ${gone} ms: faster than BFD can detect, something else withdrew"
r=$(requests 30)
[ "$(field fail "$r")" = 0 ] || fail "after n2 was cut off: $r"

# ------------------------------------------------------------ 7. stop: withdraw first, drain, then exit
# n1 is the last node announcing. SIGTERM: the route goes at once, hafront exits
# only after drain (1 s); nginx (not hafront's here) serves all along.
t0=$(now_ms)
kill -TERM "${HF_PID[n1]}"
gone=$(wait_hops "" 3000) || fail "SIGTERM did not withdraw n1"
wait_hops -6 "" 3000 >/dev/null || fail "SIGTERM did not withdraw n1's IPv6 prefix"
wait "${HF_PID[n1]}" || true
exited=$(( $(now_ms) - t0 ))
lab_untrack_pid "${HF_PID[n1]}"
echo "SIGTERM on n1: withdrawn after ${gone} ms, hafront exited after ${exited} ms (drain 1 s)"
[ "$gone" -lt 800 ] || fail "withdrawal on stop took ${gone} ms"
[ "$exited" -ge 1000 ] || fail "hafront exited after ${exited} ms, before the drain of 1 s"
grep -q 'anycast withdrawn.*why="stopping"' "$dir/hafront-n1.log" || fail "n1's log has no withdrawal on stop"
echo "PASS test_anycast ($(( $(date +%s) - t_start )) s)"
