# shellcheck shell=bash
# The anycast lab of issue 17, shared by scripts/lab/test_anycast.sh and
# `scripts/bench anycast`. Source it after lab.sh and hafront.sh (the caller
# defines `fail`), then: anylab_net; anylab_bird; anylab_nginx; anylab_hafront.
#
#   client c 192.0.2.10      --- 192.0.2.1    router r 198.51.100.1    --- switch --- n1 .11 ::11
#            2001:db8:2::10      2001:db8:2::1 (BIRD)  2001:db8:1::1                --- n2 .12 ::12
#                                                                                   --- n3 .13 ::13
#
# Each front end n1..n3 runs nginx serving the anycast VIPs 203.0.113.10 and
# 2001:db8:10::10 (on lo: the lab's kernel has no dummy driver), its own BIRD (one
# BGP session to the router over IPv4 carrying both families, BFD 100 ms x
# BFD_MULT in a second BIRD, graceful restart, kernel table 100 learned) and
# hafront with [anycast.web] tracking an http check of its nginx.
#
# Environment: BFD_MULT (default 5), CHECK_INTERVAL_MS (200), ANYCAST_ROUTER:
#   plain      (default) the router's BIRD writes the VIPs' ECMP routes into the
#              main table (RTA_MULTIPATH: the kernel hashes with hash-threshold,
#              and a next hop leaving redraws the others' hash ranges)
#   resilient  BIRD writes them into kernel table ROUTER_TABLE (200), and
#              scripts/lib/resilient_ecmp.py in the router's namespace mirrors them
#              into the main table as resilient next-hop groups (buckets
#              RESILIENT_BUCKETS, 96; idle_timer RESILIENT_IDLE, 2 s;
#              unbalanced_timer 0): a next hop leaving takes only its own buckets

VIP=203.0.113.10
VIP6=2001:db8:10::10
NODES=(n1 n2 n3)
ALL=198.51.100.11,198.51.100.12,198.51.100.13
ALL6=2001:db8:1::11,2001:db8:1::12,2001:db8:1::13
# BFD every 100 ms; multiplier 5 (500 ms detection) by default: at 3 (300 ms) the
# sessions of all three nodes dropped together during stalls of the shared build
# machine (load 15-22 on 2 cores). BFD_MULT=3 for the production setting.
BFD_MULT=${BFD_MULT:-5}
BFD_MS=$((100 * BFD_MULT))
CHECK_INTERVAL_MS=${CHECK_INTERVAL_MS:-200}
ANYCAST_ROUTER=${ANYCAST_ROUTER:-plain}
ROUTER_TABLE=200
RESILIENT_BUCKETS=${RESILIENT_BUCKETS:-96}
RESILIENT_IDLE=${RESILIENT_IDLE:-2}
case $ANYCAST_ROUTER in plain | resilient) ;; *) echo "ANYCAST_ROUTER: plain or resilient, not $ANYCAST_ROUTER" >&2; exit 2 ;; esac
anylab_lib=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
declare -A BIRD_PID=() NGINX_PID=()

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
node_id() { echo $(( 10 + ${1#n} )); } # n1 -> 11

anylab_addns() {
    ip netns add "$LAB-$1"
    LAB_NODES+=("$1")
    lab_exec "$1" ip link set lo up
    # No DAD: IPv6 addresses usable at once (sysctls inside the namespace only).
    lab_exec "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}

# ------------------------------------------------------------ network
anylab_net() {
    anylab_addns sw
    ip -n "$LAB-sw" link add br0 type bridge stp_state 0 forward_delay 0
    ip -n "$LAB-sw" link set br0 up
    anylab_addns r
    anylab_addns c
    ip -n "$LAB-r" link add eth1 type veth peer name eth0 netns "$LAB-c"
    ip -n "$LAB-r" addr add 192.0.2.1/24 dev eth1
    ip -n "$LAB-r" addr add 2001:db8:2::1/64 dev eth1
    ip -n "$LAB-r" link set eth1 up
    ip -n "$LAB-c" addr add 192.0.2.10/24 dev eth0
    ip -n "$LAB-c" addr add 2001:db8:2::10/64 dev eth0
    ip -n "$LAB-c" link set eth0 up
    ip -n "$LAB-c" route add 203.0.113.0/24 via 192.0.2.1
    ip -n "$LAB-c" route add 198.51.100.0/24 via 192.0.2.1
    ip -n "$LAB-c" -6 route add 2001:db8:10::/64 via 2001:db8:2::1
    ip -n "$LAB-r" link add eth0 type veth peer name pr netns "$LAB-sw"
    ip -n "$LAB-sw" link set pr master br0 up
    ip -n "$LAB-r" addr add 198.51.100.1/24 dev eth0
    ip -n "$LAB-r" addr add 2001:db8:1::1/64 dev eth0
    ip -n "$LAB-r" link set eth0 up
    # Inside the router's namespace only: forwarding, and ECMP hashing on ports too
    # (one client address, many flows). Policy 3 (custom: source and destination
    # address and port, protocol), not 1: with 1 Linux takes a packet's existing L4
    # hash when it has one, and a veth keeps the one the client's socket gave it (a
    # random value per socket), so a flow reconnecting from the same port would be
    # hashed anew; a router behind a real link hashes the 5-tuple as policy 3 does.
    lab_exec r sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
        net.ipv4.fib_multipath_hash_policy=3 net.ipv4.fib_multipath_hash_fields=0x0037 \
        net.ipv6.fib_multipath_hash_policy=3 net.ipv6.fib_multipath_hash_fields=0x0037
    local n id
    for n in "${NODES[@]}"; do
        id=$(node_id "$n")
        anylab_addns "$n"
        ip -n "$LAB-$n" link add eth0 type veth peer name "p$n" netns "$LAB-sw"
        ip -n "$LAB-sw" link set "p$n" master br0 up
        ip -n "$LAB-$n" addr add "198.51.100.$id/24" dev eth0
        ip -n "$LAB-$n" addr add "2001:db8:1::$id/64" dev eth0
        ip -n "$LAB-$n" link set eth0 up
        ip -n "$LAB-$n" route add 192.0.2.0/24 via 198.51.100.1
        ip -n "$LAB-$n" -6 route add 2001:db8:2::/64 via 2001:db8:1::1
    done
}

# ------------------------------------------------------------ BIRD
# One BGP session per node, over IPv4, with an ipv6 channel (MP-BGP): one BFD
# session covers both families, and BIRD gives the IPv6 routes the node's global
# IPv6 address on the shared link as next hop. BGP graceful restart on both ends;
# on the node, BFD runs in a BIRD of its own (bird-nX-bfd: a `neighbor` of its BFD
# protocol), so that a restart of the BGP BIRD does not take BFD down: the router
# keeps the node's routes through it (graceful restart), and a dead node still
# leaves within the BFD detection time (docs/architecture.md, "Anycast").
anylab_bird_conf() { # r | nX | nX-bfd -> that BIRD's configuration
    local n=${1%-bfd} id
    echo "log \"$dir/bird-$1.log\" all;"
    echo 'debug protocols { states };'
    echo 'protocol device { scan time 1; }'
    local bfd="protocol bfd { interface \"eth0\" { min rx interval 100 ms; min tx interval 100 ms; multiplier $BFD_MULT; };"
    if [ "$1" = r ]; then
        # The resilient router: BIRD's routes into table ROUTER_TABLE, for the agent.
        local table=""
        [ "$ANYCAST_ROUTER" = resilient ] && table="kernel table $ROUTER_TABLE;"
        cat <<BIRD
router id 198.51.100.1;
$bfd }
protocol kernel { $table merge paths on; ipv4 { import none; export all; }; }
protocol kernel { $table merge paths on; ipv6 { import none; export all; }; }
# error wait time: after a BFD failure BIRD refuses the node for 60 s by default
# (dampening); a BFD false positive during a stall of the loaded lab machine would
# keep a healthy node out for the rest of the test.
template bgp fe { local 198.51.100.1 as 65000; bfd on; graceful restart on; debug { states, events };
    error wait time 1, 10;
    ipv4 { import all; export none; }; ipv6 { import all; export none; }; }
BIRD
        for n in "${NODES[@]}"; do
            echo "protocol bgp $n from fe { neighbor 198.51.100.$(node_id "$n") as 65001; }"
        done
        return
    fi
    id=$(node_id "$n")
    echo "router id 198.51.100.$id;"
    if [ "$1" != "$n" ]; then
        echo "$bfd neighbor 198.51.100.1 dev \"eth0\"; }"
        return
    fi
    cat <<BIRD
# hafront's announcements: the routes it keeps in kernel table 100.
protocol kernel hafront_any4 { kernel table 100; learn; scan time 2; ipv4 { import all; export none; }; }
protocol kernel hafront_any6 { kernel table 100; learn; scan time 2; ipv6 { import all; export none; }; }
protocol bgp r { local 198.51.100.$id as 65001; neighbor 198.51.100.1 as 65000;
    graceful restart on; connect delay time 1;
    ipv4 { import none; export where proto = "hafront_any4"; };
    ipv6 { import none; export where proto = "hafront_any6"; }; }
BIRD
}
bird_start() { # r | nX | nX-bfd [bird options...]: that BIRD, in its node's namespace
    local n=$1 ns=${1%-bfd}
    shift
    # BFD at 100 ms on a machine shared with builds: BIRD before them, or a stall
    # of a few hundred ms drops a healthy session. At nice -15 the sessions still
    # dropped at load 20-25 (run queue 25 on 2 cores): real time (BIRD sleeps
    # between events), nice where chrt is refused.
    local prio=(chrt -f 10)
    chrt -f 10 true 2>/dev/null || prio=(nice -n -15)
    ip netns exec "$LAB-$ns" "${prio[@]}" bird -f -c "$dir/bird-$n.conf" -s "$dir/bird-$n.ctl" -P "$dir/bird-$n.pid" "$@" \
        >>"$dir/bird-$n.out" 2>&1 &
    lab_track_pid $!
    BIRD_PID[$n]=$!
}
bird_kill() { # name...: SIGKILL of those BIRDs
    local n
    for n in "$@"; do kill -KILL "${BIRD_PID[$n]}"; done
    for n in "$@"; do
        wait "${BIRD_PID[$n]}" 2>/dev/null || true
        lab_untrack_pid "${BIRD_PID[$n]}"
    done
}
# bird_graceful_restart NAME: as a unit whose ExecStop is `birdc graceful restart`
# (BIRD exits without a Cease to the router) and whose start has -R.
bird_graceful_restart() {
    lab_exec "${1%-bfd}" birdc -s "$dir/bird-$1.ctl" graceful restart >/dev/null
    wait "${BIRD_PID[$1]}" 2>/dev/null || true
    lab_untrack_pid "${BIRD_PID[$1]}"
    bird_start "$1" -R
}
anylab_bird() {
    local n
    [ "$ANYCAST_ROUTER" = resilient ] && anylab_resilient_agent
    for n in r "${NODES[@]}" "${NODES[@]/%/-bfd}"; do
        anylab_bird_conf "$n" >"$dir/bird-$n.conf"
        bird_start "$n"
    done
}

# The router's agent (ANYCAST_ROUTER=resilient), before BIRD: it follows table
# ROUTER_TABLE from its first route on.
anylab_resilient_agent() {
    lab_exec r python3 "$anylab_lib/resilient_ecmp.py" --table "$ROUTER_TABLE" --buckets "$RESILIENT_BUCKETS" \
        --idle-timer "$RESILIENT_IDLE" --unbalanced-timer 0 >>"$dir/resilient-agent.log" 2>&1 &
    lab_track_pid $!
    AGENT_PID=$!
    for _ in $(seq 100); do grep -q following "$dir/resilient-agent.log" 2>/dev/null && return 0; sleep 0.05; done
    fail "the resilient ECMP agent did not start: $(cat "$dir/resilient-agent.log")"
}

# ------------------------------------------------------------ nginx
anylab_nginx() {
    local n
    head -c 100000 /dev/zero >"$dir/big"
    # nginx's worker runs as another user: it may cross the lab directory to read it.
    chmod o+x "$dir"
    chmod o+r "$dir/big"
    for n in "${NODES[@]}"; do
        { nginx_conf_head "$dir/nginx-$n" 1 1024; cat; } >"$dir/nginx-$n.conf" <<NGINX
    server {
        listen 80 default_server;
        listen [::]:80 default_server;
        keepalive_requests 1000000;
        location = / { return 200 "$n\n"; }
        location = /slow { limit_rate 20k; alias $dir/big; }
    }
}
NGINX
        nginx_start "$n"
    done
}
nginx_start() {
    ip netns exec "$LAB-$1" nginx -c "$dir/nginx-$1.conf" -g 'daemon off;' >>"$dir/nginx-$1.out" 2>&1 &
    lab_track_pid $!
    NGINX_PID[$1]=$!
}
# The master and its worker (by parent PID: SIGKILL of the master alone leaves the
# worker serving).
nginx_pids() { echo "${NGINX_PID[$1]}" $(ps -o pid= --ppid "${NGINX_PID[$1]}"); }
nginx_kill() {
    local m=${NGINX_PID[$1]}
    # shellcheck disable=SC2046
    kill -KILL $(nginx_pids "$1")
    wait "$m" 2>/dev/null || true
    lab_untrack_pid "$m"
}

# ------------------------------------------------------------ hafront
# The start of a node's hafront.toml: its directories, and the check of its nginx at URL.
anylab_conf_head() { # node url
    cat <<CONF
runtime_dir = "$dir/run-$1"
state_dir = "$dir/state-$1"
[node]
name = "$1"
[checks.nginx]
kind = "http"
url = "$2"
expect_status = [200]
interval = "${CHECK_INTERVAL_MS}ms"
timeout = "150ms"
rise = 1
fall = 1
CONF
}
anylab_hafront_conf() { # node
    anylab_conf_head "$1" "http://$VIP/"
    cat <<CONF
[anycast.web]
prefixes = ["$VIP/32", "$VIP6/128"]
track_checks = [ { name = "nginx" } ]
drain = "1s"
interface = "lo" # this kernel may have no dummy driver
bird_socket = "$dir/bird-$1.ctl"
bfd_socket = "$dir/bird-$1-bfd.ctl"
CONF
}
anylab_hafront() {
    local n
    for n in "${NODES[@]}"; do
        anylab_hafront_conf "$n" >"$dir/$n.toml"
        hf_start "$n" "$dir/$n.toml"
    done
}

# ------------------------------------------------------------ the router's view
# The router's next hops for the VIP (hops) or the IPv6 VIP (hops6), sorted,
# comma-separated ("" when none).
hops() {
    lab_exec r ip -4 route show "$VIP/32" | grep -o 'via 198\.51\.100\.[0-9]*' | awk '{print $2}' | sort | paste -sd, -
}
hops6() {
    lab_exec r ip -6 route show "$VIP6/128" | grep -o 'via 2001:db8:1::[0-9a-f]*' | awk '{print $2}' | sort | paste -sd, -
}
wait_hops() { # [-6] expected timeout_ms -> prints the elapsed ms, or fails
    local f=hops t0 deadline
    [ "$1" = -6 ] && { f=hops6; shift; }
    local want=$1
    t0=$(now_ms)
    deadline=$((t0 + $2))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        [ "$($f)" = "$want" ] && { echo $(( $(now_ms) - t0 )); return 0; }
        sleep 0.005
    done
    echo "timeout: router has [$($f)], wanted [$want]" >&2
    return 1
}
# The router's buckets for the VIP (resilient router): how many each next hop
# has, "198.51.100.11=32,198.51.100.12=32,..." ("" when the route has no group).
buckets() {
    local g
    g=$(lab_exec r ip -j route show "$VIP/32" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r[0].get("nhid", "") if r else "")')
    [ -n "$g" ] || return 0
    python3 - "$(lab_exec r ip -j nexthop show)" "$(lab_exec r ip -j nexthop bucket show id "$g")" <<'PY'
import collections, json, sys
gw = {n["id"]: n.get("gateway") for n in json.loads(sys.argv[1])}
c = collections.Counter(gw[b["bucket"]["nhid"]] for b in json.loads(sys.argv[2]))
print(",".join(f"{k}={v}" for k, v in sorted(c.items())))
PY
}
# wait_balanced timeout_ms [next hops, 3]: with the resilient router, until the VIP's buckets are
# spread evenly over its next hops (a next hop added gets only idle buckets: the
# group balances RESILIENT_IDLE s after the last change if no traffic runs).
# Prints the buckets; always true with the plain router.
wait_balanced() {
    [ "$ANYCAST_ROUTER" = resilient ] || return 0
    local deadline=$(( $(now_ms) + $1 )) b
    while [ "$(now_ms)" -lt "$deadline" ]; do
        b=$(buckets)
        if [ -n "$b" ] && python3 -c 'import sys; v=[int(x.split("=")[1]) for x in sys.argv[1].split(",")]; sys.exit(0 if len(v) == int(sys.argv[2]) and max(v) - min(v) <= 1 else 1)' "$b" "${2:-3}"; then
            echo "$b"
            return 0
        fi
        sleep 0.2
    done
    echo "timeout: the router's buckets for $VIP: [$(buckets)]" >&2
    return 1
}
# Every change of the router's routes, in $dir/monitor.txt between the two.
monitor_start() {
    lab_exec r ip monitor route >"$dir/monitor.txt" 2>&1 &
    mon=$!
    lab_track_pid $mon
    sleep 0.3
}
monitor_stop() {
    kill "$mon"
    wait "$mon" 2>/dev/null || true
    lab_untrack_pid "$mon"
}
api() { lab_exec "$1" curl -s --unix-socket "$dir/run-$1/api.sock" "http://x$2" "${@:3}"; }
