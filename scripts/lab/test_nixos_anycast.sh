#!/usr/bin/env bash
# The anycast NixOS VM test (vm-tests/nixos/anycast.nix) cannot run here (no Nix
# store, no KVM); its network can, with the configurations the Nix side generates
# (issue 17). nixos/tests/eval.sh evaluates the test's nodes and hands over (in
# HAFRONT_NIX_EVAL_OUT) each front end's BIRD configuration as
# services.hafront.anycast.bird writes it, its hafront.toml as services.hafront
# writes it, and the router's BIRD configuration; they run here with Debian's BIRD 2
# and hafront, on the VM test's addresses and interface names:
#
#   client c 192.0.2.10 --eth1-- 192.0.2.1 router r 198.51.100.1 --eth2-- switch --eth1-- fe1 .11
#                                 (BIRD: BGP x3, BFD, merge paths)                  --eth1-- fe2 .12
#                                                                                   --eth1-- fe3 .13
#
# Changed for the lab, and nothing else: paths (BIRD's log and socket, hafront's
# runtime and state directories: HAFRONT_* variables), the group's interface `lo`
# (the lab's kernel may lack the dummy driver), and nginx run by the test instead of
# systemd, so the track of the adopted `nginx.service` is dropped
# (HAFRONT_ANYCAST__WEB__TRACK_SERVICES=[]); the module's http check of nginx's
# loopback health vhost stays and is what withdraws. Asserts: three next hops on
# the router and its three BFD sessions up; each hafront reads its BIRD's socket
# (status: `uplink` Established, BFD Up); the client's requests reach all three;
# nginx killed on fe1 -> fe1's next hop leaves, requests keep succeeding; fe3's
# link cut (no FIN: BFD alone) -> its next hop leaves after the BFD detection time
# of the generated configuration (100 ms x 3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$here/../lib/lab.sh"
source "$here/../lib/hafront.sh"
# Its BIRD, nginx and router helpers (bird_start, nginx_start, hops, wait_hops,
# monitor_start, ...); the network and configurations here are the VM test's.
source "$here/../lib/anycast-lab.sh"

for tool in bird birdc nginx curl; do
    command -v "$tool" >/dev/null || { echo "SKIP $tool not installed (scripts/test installs bird2, nginx-light, curl)"; exit 0; }
done
hf_build
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }

LAB=hnxa$$
trap lab_down EXIT
trap 'exit 130' INT TERM
lab_logdir >/dev/null
dir=$(lab_logdir)
t_start=$(date +%s)
fail() { echo "FAIL: $*" >&2; exit 1; }

# ------------------------------------------------------------ the Nix side's output
gen=$dir/nix
if ! HF_BIN=$HF_BIN HAFRONT_NIX_EVAL_OUT=$gen bash "$root/nixos/tests/eval.sh" >"$dir/eval.log" 2>&1; then
    tail -n 20 "$dir/eval.log" >&2
    fail "nixos/tests/eval.sh failed (its log above)"
fi
[ -s "$gen/bird-vm-router.conf" ] || { echo "SKIP no generated configurations: $(tail -n 1 "$dir/eval.log")"; exit 0; }
FES=(fe1 fe2 fe3)
declare -A ADDR=([fe1]=198.51.100.11 [fe2]=198.51.100.12 [fe3]=198.51.100.13)
grep -q "neighbor 198.51.100.1 as 65000;" "$gen/bird-vm-fe1.conf" || fail "fe1's generated BIRD configuration has no BGP session to the router"

# ------------------------------------------------------------ network
anylab_addns sw
ip -n "$LAB-sw" link add br0 type bridge stp_state 0 forward_delay 0
ip -n "$LAB-sw" link set br0 up
anylab_addns r
anylab_addns c
ip -n "$LAB-r" link add eth1 type veth peer name eth1 netns "$LAB-c"
ip -n "$LAB-r" addr add 192.0.2.1/24 dev eth1
ip -n "$LAB-r" link set eth1 up
ip -n "$LAB-c" addr add 192.0.2.10/24 dev eth1
ip -n "$LAB-c" link set eth1 up
ip -n "$LAB-c" route add 203.0.113.0/24 via 192.0.2.1
ip -n "$LAB-r" link add eth2 type veth peer name pr netns "$LAB-sw"
ip -n "$LAB-sw" link set pr master br0 up
ip -n "$LAB-r" addr add 198.51.100.1/24 dev eth2
ip -n "$LAB-r" link set eth2 up
# As the VM test's router (boot.kernel.sysctl), inside its namespace only.
lab_exec r sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1
for n in "${FES[@]}"; do
    anylab_addns "$n"
    ip -n "$LAB-$n" link add eth1 type veth peer name "p$n" netns "$LAB-sw"
    ip -n "$LAB-sw" link set "p$n" master br0 up
    ip -n "$LAB-$n" addr add "${ADDR[$n]}/24" dev eth1
    ip -n "$LAB-$n" link set eth1 up
    ip -n "$LAB-$n" route add 192.0.2.0/24 via 198.51.100.1
done

# ------------------------------------------------------------ BIRD, as generated
generated_bird() { # name generated-file: the text, with the log in the lab's directory instead of syslog
    sed "s|^log syslog all;|log \"$dir/bird-$1.log\" all;|" "$2" >"$dir/bird-$1.conf"
}
# fe2 runs BFD in a BIRD of its own (anycast.bird.bfd.separate), as hafront-bird-bfd.
[ -s "$gen/bird-vm-fe2-bfd.conf" ] || fail "no generated BFD-only BIRD configuration for fe2 (bfd.separate)"
generated_bird r "$gen/bird-vm-router.conf"
generated_bird fe2-bfd "$gen/bird-vm-fe2-bfd.conf"
for n in "${FES[@]}"; do generated_bird "$n" "$gen/bird-vm-$n.conf"; done
for n in r "${FES[@]}" fe2-bfd; do bird_start "$n"; done

# ------------------------------------------------------------ nginx + hafront
# nginx as the module configures it: the node's name on port 80 (every address, the
# VIP too), the health vhost on 127.0.0.1:8099.
for n in "${FES[@]}"; do
    { nginx_conf_head "$dir/nginx-$n" 1 256; cat; } >"$dir/nginx-$n.conf" <<NGINX
    server { listen 80 default_server; location = / { return 200 "$n\n"; } }
    server { listen 127.0.0.1:8099; location = /healthz { return 200 "ok\n"; } }
}
NGINX
    nginx_start "$n"
    bfd_env=()
    [ "$n" = fe2 ] && bfd_env=(HAFRONT_ANYCAST__WEB__BFD_SOCKET="$dir/bird-fe2-bfd.ctl")
    hf_start "$n" "$gen/vm-anycast-$n.toml" "${bfd_env[@]}" \
        HAFRONT_RUNTIME_DIR="$dir/run-$n" HAFRONT_STATE_DIR="$dir/state-$n" \
        HAFRONT_ANYCAST__WEB__BIRD_SOCKET="$dir/bird-$n.ctl" HAFRONT_ANYCAST__WEB__INTERFACE=lo \
        'HAFRONT_ANYCAST__WEB__TRACK_SERVICES=[]'
done

# ------------------------------------------------------------ helpers
requests() { # n -> "ok=N fail=N fe1=.. fe2=.. fe3=.."
    local i out ok=0 bad=0
    declare -A by=()
    for i in $(seq "$1"); do
        if out=$(lab_exec c curl -s -m 1 "http://$VIP/"); then
            ok=$((ok + 1)); by[$out]=$(( ${by[$out]:-0} + 1 ))
        else
            bad=$((bad + 1))
        fi
    done
    echo "ok=$ok fail=$bad fe1=${by[fe1]:-0} fe2=${by[fe2]:-0} fe3=${by[fe3]:-0}"
}
field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" <<<"$2"; }
status_ok() { # node: hafront's view of its BIRD, read on BIRD's socket
    python3 - "$(lab_exec "$1" curl -s --unix-socket "$dir/run-$1/api.sock" http://x/v1/status)" <<'PY'
import json, sys
a = json.loads(sys.argv[1])["anycast"]["web"]
assert a["announced"] is True and a["why"] == "healthy", a
assert a["bird"]["reachable"] and a["bird"]["bgp"]["uplink"]["info"].startswith("Established"), a["bird"]
assert a["bird"]["bfd"].get("198.51.100.1") == "Up", a["bird"]
PY
}

# ------------------------------------------------------------ 1. ECMP, BFD, status
took=$(wait_hops "$ALL" 30000) || fail "the router never had the three front ends as next hops"
echo "router: $VIP via [$(hops)] after ${took} ms"
sessions=$(birdc -s "$dir/bird-r.ctl" show bfd sessions | grep -c ' Up ' || true)
[ "$sessions" = 3 ] || fail "the router has $sessions BFD sessions up, not 3"
for n in "${FES[@]}"; do
    for _ in $(seq 50); do status_ok "$n" 2>/dev/null && break; sleep 0.2; done
    status_ok "$n" || fail "$n: hafront's status does not show its BIRD's session (socket $dir/bird-$n.ctl)"
done
echo "each front end's hafront reads its BIRD: uplink Established, BFD Up"
r=$(requests 60)
echo "60 requests: $r"
[ "$(field fail "$r")" = 0 ] || fail "requests failed with three front ends: $r"
for n in "${FES[@]}"; do [ "$(field "$n" "$r")" -gt 0 ] || fail "$n got no request (ECMP): $r"; done

# ------------------------------------------------------------ 1b. fe2's BGP BIRD restarts
# As the module's unit restarts it with bfd.separate: ExecStop `birdc graceful
# restart` (no Cease), ExecStart with -R. BFD stays up in fe2's other BIRD and the
# router keeps fe2's routes (graceful restart): its route is not even rewritten.
monitor_start
t0=$(now_ms)
bird_graceful_restart fe2
up=""
for _ in $(seq 150); do
    birdc -s "$dir/bird-r.ctl" show protocols fe2 | grep_q Established && { up=$(( $(now_ms) - t0 )); break; }
    sleep 0.1
done
sleep 1
monitor_stop
[ -n "$up" ] || fail "fe2's BGP session did not come back after its BIRD's graceful restart"
if grep -q "$VIP" "$dir/monitor.txt"; then
    cat "$dir/monitor.txt" >&2
    fail "the router's route to $VIP changed while fe2's BGP BIRD restarted (bfd.separate)"
fi
[ "$(hops)" = "$ALL" ] || fail "after fe2's BIRD restarted the router has [$(hops)]"
for _ in $(seq 50); do status_ok fe2 2>/dev/null && break; sleep 0.2; done
status_ok fe2 || fail "fe2: hafront's status does not show its BIRDs' sessions after the restart"
echo "fe2's BGP BIRD restarted gracefully (bfd.separate): session back after ${up} ms, the router's route unchanged"

# ------------------------------------------------------------ 2. nginx dies on fe1
nginx_kill fe1
gone=$(wait_hops 198.51.100.12,198.51.100.13 5000) || fail "fe1's next hop stayed after its nginx died"
# The module's check: every 500 ms, fall 2; then BGP and the router's kernel.
echo "nginx killed on fe1: next hop gone after ${gone} ms (check every 500 ms, fall 2)"
r=$(requests 30)
[ "$(field fail "$r")" = 0 ] && [ "$(field fe1 "$r")" = 0 ] || fail "after fe1's withdrawal: $r"

# ------------------------------------------------------------ 3. fe3 cut off: BFD
ip -n "$LAB-sw" link set pfe3 down
gone=$(wait_hops 198.51.100.12 3000) || fail "fe3's next hop stayed after its link was cut"
echo "fe3's link cut: next hop gone after ${gone} ms (generated BFD: 100 ms x 3)"
[ "$gone" -ge 200 ] || fail "gone after ${gone} ms: faster than BFD can detect, something else withdrew"
[ "$gone" -lt 1500 ] || fail "BFD withdrawal took ${gone} ms"
r=$(requests 20)
[ "$(field fail "$r")" = 0 ] && [ "$(field fe2 "$r")" = 20 ] || fail "after fe3 was cut off: $r"
echo "PASS test_nixos_anycast ($(( $(date +%s) - t_start )) s)"
