#!/bin/sh
# Guest script (vm-tests/anycast-ipvs runs it): anycast IPVS directors behind an ECMP
# router (issue 17), and what a director's death does to the flows of the others.
# IPVS is per network namespace, so every node is a namespace of one VM:
#
#   client c 192.0.2.10 --- br1 --- 192.0.2.1 router r 198.51.100.1 --- br0 --- d1 .11 d2 .12 d3 .13
#                                     (BIRD: BGP, BFD, ECMP)                 --- s1 .21 s2 .22
#
# Directors d1..d3 run hafront with [anycast.web] (VIP 203.0.113.10/32 on its dummy
# interface, the route in table 100) and an IPVS service VIP:80, DR to the real
# servers s1 and s2, and a BIRD (BGP to the router with BFD 100 ms x BFD_MULT,
# exporting hafront's table-100 route). The router's BIRD merges the three BGP
# routes into one ECMP route (fib_multipath_hash_policy 3: addresses, protocol and
# ports). The real servers have the VIP on lo (arp_ignore/announce as for DR) and
# echo lines (/flows.py server); they answer the client directly via the router.
# Client c holds N long-lived TCP connections to VIP:80 (/flows.py client: a line
# every 100 ms on each, echoed).
#
# Usage: anycast-ipvs.sh N [reps=K] SPEC...   SPEC = SCHED:SLOPPY, SCHED an IPVS
#   scheduler (mh: with mh-port, so that one client's flows spread over both real
#   servers), SLOPPY on|off ([ipvs.sysctl] sloppy_tcp). Each spec (K times, each
#   a fresh set of namespaces): the N flows come up, which director each went
#   through is read from the directors' IPVS tables, then d1's hafront and BIRD
#   are SIGKILLed: BFD takes d1's next hop off the router, and the router's ECMP
#   rehashes (hash-threshold: part of d2's and d3's flows move too). 3 s later
#   the flows stop and a line is printed (a run in which a BGP session other than
#   d1's went down, a false BFD failure in a stall of the VM, is not counted and
#   run again, three tries):
#     RESULT sched=mh sloppy=on flows=60 own=21 own_kept=21 others=39 others_moved=10
#            others_broken=0 withdraw_ms=612 stall_ms=700
#   own: d1's flows; others_moved: d2's and d3's flows that reached the other
#   surviving director after the rehash (a new entry in its IPVS table; 0 without
#   sloppy_tcp, where such a flow makes no entry and is reset);
#   others_broken: d2's and d3's flows broken (reset, timeout). mh with sloppy_tcp
#   must break none of the others' flows; any other spec must break at least one
#   (the test can fail). With sloppy_tcp the rehash must have moved some of the
#   others' flows, or the run tells nothing (fail).
set -eu
PATH=/usr/local/bin:$PATH
N=${1:?usage: anycast-ipvs.sh N [reps=K] SCHED:SLOPPY...}
shift
REPS=1
case ${1:-} in reps=*) REPS=${1#reps=}; shift ;; esac
VIP=203.0.113.10
# BFD every 100 ms, x 10 (1 s detection): under TCG on a loaded host, x 5 dropped
# every session at once now and then (a stall of the VM).
BFD_MULT=${BFD_MULT:-10}
FLOWS="python3 -S -E /flows.py"
DIRECTORS="d1 d2 d3"
fail() {
    echo "FAIL: $*"
    echo "---- router: routes to the VIP, BIRD log"
    in_ns r ip route show $VIP 2>/dev/null || true
    tail -n 20 /tmp/r/bird.log 2>/dev/null || true
    for n in $DIRECTORS; do
        ip netns list | grep -q "^$n" || continue
        echo "---- $n: ipvsadm -Ln, -Lnc (head), addresses, table 100, hafront and BIRD logs"
        in_ns $n ipvsadm -Ln || true
        in_ns $n ipvsadm -Lnc | head -5 || true
        in_ns $n ip -o addr show || true
        in_ns $n ip route show table 100 || true
        tail -n 15 /tmp/$n/hafront.log 2>/dev/null || true
        tail -n 10 /tmp/$n/bird.log 2>/dev/null || true
    done
    exit 1
}
ok() { echo "ok: $*"; }
wait_for() { # tenths-of-seconds command...
    wf_left=$1
    shift
    while [ "$wf_left" -gt 0 ]; do
        "$@" && return 0
        sleep 0.1
        wf_left=$((wf_left - 1))
    done
    return 1
}
in_ns() { ip netns exec "$@"; }
# coreutils date (vm-tests/anycast-ipvs adds it: busybox's has no %N).
now_ms() { date +%s%3N; }
now() { date +%s.%N; }

# link BRIDGE NS ADDR/PFX: a veth from NS's eth0 to the bridge.
link() {
    ip link add "v$2" type veth peer name eth0 netns "$2"
    ip link set "v$2" master "$1" up
    in_ns "$2" ip addr add "$3" dev eth0
    in_ns "$2" ip link set eth0 up
}

bird_conf() { # NODE ID
    cat <<BIRD
log "/tmp/$1/bird.log" all;
debug protocols { states };
router id 198.51.100.$2;
protocol device { scan time 1; }
protocol bfd { interface "eth0" { min rx interval 100 ms; min tx interval 100 ms; multiplier $BFD_MULT; }; }
BIRD
    if [ "$1" = r ]; then
        cat <<BIRD
protocol kernel { merge paths on; ipv4 { import none; export all; }; }
template bgp fe { local 198.51.100.1 as 65000; bfd on; error wait time 1, 10;
    ipv4 { import all; export none; }; }
BIRD
        for d in $DIRECTORS; do
            echo "protocol bgp $d from fe { neighbor 198.51.100.1${d#d} as 65001; }"
        done
    else
        cat <<BIRD
# hafront's announcements: the routes it keeps in kernel table 100.
protocol kernel hafront_any4 { kernel table 100; learn; scan time 1; ipv4 { import all; export none; }; }
protocol bgp r { local 198.51.100.$2 as 65001; neighbor 198.51.100.1 as 65000; bfd on;
    connect delay time 1; ipv4 { import none; export where proto = "hafront_any4"; }; }
BIRD
    fi
}
bird_start() { # NODE ID
    mkdir -p /tmp/$1
    bird_conf "$1" "$2" >/tmp/$1/bird.conf
    # ip netns exec execs bird: $! is BIRD's PID.
    ip netns exec "$1" bird -f -c /tmp/$1/bird.conf -s /tmp/$1/bird.ctl -P /tmp/$1/bird.pid \
        >>/tmp/$1/bird.out 2>&1 &
    eval "bird_$1=\$!"
}

hafront_conf() { # NODE SCHED SLOPPY
    flags=
    [ "$2" = mh ] && flags='scheduler_flags = ["mh-port"]'
    sloppy=false
    [ "$3" = on ] && sloppy=true
    cat <<CONF
runtime_dir = "/tmp/$1/run"
state_dir = "/tmp/$1/state"
[node]
name = "$1"
[anycast.web]
prefixes = ["$VIP/32"]
bird_socket = "/tmp/$1/bird.ctl"
drain = "1s"
[ipvs.services.web]
address = "$VIP:80"
scheduler = "$2"
$flags
forwarding = "dr"
real_servers = [ { address = "198.51.100.21:80" }, { address = "198.51.100.22:80" } ]
[ipvs.sysctl]
sloppy_tcp = $sloppy
CONF
}

setup() { # SCHED SLOPPY
    for br in br0 br1; do
        ip link add $br type bridge
        ip link set $br up
    done
    for n in r c s1 s2 $DIRECTORS; do
        ip netns add $n
        in_ns $n ip link set lo up
    done
    link br1 c 192.0.2.10/24
    in_ns c ip route add 203.0.113.0/24 via 192.0.2.1
    ip link add vr1 type veth peer name eth1 netns r
    ip link set vr1 master br1 up
    in_ns r ip addr add 192.0.2.1/24 dev eth1
    in_ns r ip link set eth1 up
    link br0 r 198.51.100.1/24
    # The router hashes addresses, protocol and ports (one client, many flows).
    in_ns r sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=3 \
        net.ipv4.fib_multipath_hash_fields=0x0037
    for s in s1 s2; do
        link br0 $s 198.51.100.2${s#s}/24
        in_ns $s ip route add default via 198.51.100.1
        in_ns $s ip addr add $VIP/32 dev lo
        in_ns $s sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
        in_ns $s $FLOWS server 0.0.0.0 80 >/tmp/server-$s.log 2>&1 &
        eval "server_$s=\$!"
    done
    bird_start r 1
    for d in $DIRECTORS; do
        link br0 $d 198.51.100.1${d#d}/24
        in_ns $d ip route add 192.0.2.0/24 via 198.51.100.1
        bird_start $d 1${d#d}
        hafront_conf $d "$1" "$2" >/tmp/$d/hafront.toml
        ip netns exec $d hafront run -c /tmp/$d/hafront.toml >>/tmp/$d/hafront.log 2>&1 &
        eval "hf_$d=\$!"
    done
    # Python starts slowly under TCG: a flow that connects before the server
    # listens is refused, not a rehash.
    for s in s1 s2; do
        wait_for 600 listening $s || fail "$s does not listen: $(cat /tmp/server-$s.log)"
    done
    wait_for 600 hops_are 198.51.100.11,198.51.100.12,198.51.100.13 ||
        fail "the router never had the three directors as next hops: [$(hops)]"
    for d in $DIRECTORS; do
        in_ns $d ipvsadm -Ln | grep -q "^TCP  $VIP:80 $1" || fail "$d: no IPVS service $VIP:80 $1"
    done
    v=$(in_ns d1 cat /proc/sys/net/ipv4/vs/sloppy_tcp)
    [ "$v" = "$([ "$2" = on ] && echo 1 || echo 0)" ] || fail "d1: sloppy_tcp is $v, wanted $2"
}
listening() { in_ns "$1" netstat -ltn | grep -q ':80 '; }
# The router's next hops for the VIP, sorted, comma-separated.
hops() { in_ns r ip -4 route show $VIP | grep -o 'via 198\.51\.100\.[0-9]*' | cut -d' ' -f2 | sort | paste -sd, -; }
hops_are() { [ "$(hops)" = "$1" ]; }

teardown() {
    for v in hf_d1 hf_d2 hf_d3 bird_r bird_d1 bird_d2 bird_d3 server_s1 server_s2 client; do
        eval "p=\${$v:-}"
        [ -z "$p" ] || kill -KILL "$p" 2>/dev/null || true
        eval "$v="
    done
    sleep 0.3
    # The veths first: a namespace's are destroyed after `ip netns del` returns, and
    # the next run's `ip link add` would find them.
    for n in r c s1 s2 $DIRECTORS vr1; do ip link del "v$n" 2>/dev/null || true; done
    ip link del vr1 2>/dev/null || true
    for n in r c s1 s2 $DIRECTORS; do ip netns del $n 2>/dev/null || true; done
    ip link del br0 2>/dev/null || true
    ip link del br1 2>/dev/null || true
    rm -rf /tmp/r /tmp/d1 /tmp/d2 /tmp/d3 /tmp/flows
}

# ports NODE: the client ports of NODE's IPVS connections, one a line, sorted.
ports() {
    in_ns "$1" ipvsadm -Lnc | awk -v vip="$VIP:80" '$5 == vip { split($4, a, ":"); print a[2] }' | sort -u
}

run() { # SCHED SLOPPY
    setup "$1" "$2"
    fd=/tmp/flows
    rm -rf $fd && mkdir -p $fd
    in_ns c $FLOWS client $VIP 80 "$N" $fd >$fd/result 2>$fd/err &
    client=$!
    wait_for 600 test -e $fd/ready || fail "the $N flows did not come up: $(cat $fd/err)"
    rlog0=$(wc -l </tmp/r/bird.log)
    sleep 2
    for n in $DIRECTORS; do ports $n >$fd/before-$n; done
    total=$(cat $fd/before-d1 $fd/before-d2 $fd/before-d3 | sort -u | wc -l)
    [ "$total" -eq "$N" ] || fail "the directors' IPVS tables hold $total of the $N flows"
    for n in d1 d2 d3; do [ -s $fd/before-$n ] || fail "no flow went through $n: the router does not spread them"; done
    # A run counts when the router had the three next hops until the kill, each
    # flow went through one director only (no session flapped before), and no
    # BGP session went down from the flows' start but d1's by the kill (a false
    # BFD failure in a stall of the VM moves flows the kill did not).
    twice=$(cat $fd/before-d1 $fd/before-d2 $fd/before-d3 | sort | uniq -d | wc -l)
    if ! hops_are 198.51.100.11,198.51.100.12,198.51.100.13 || [ "$twice" -gt 0 ]; then
        echo "run not counted: the router had [$(hops)] before the kill; $twice flows in two directors' tables"
        teardown
        return 2
    fi
    rlog=$(wc -l </tmp/r/bird.log)
    echo "kill $(now)" >$fd/marks
    t=$(now_ms)
    eval "kill -KILL \$hf_d1 \$bird_d1"
    hf_d1= bird_d1=
    wait_for 100 hops_are 198.51.100.12,198.51.100.13 || fail "d1's next hop stayed on the router: [$(hops)]"
    withdraw=$(($(now_ms) - t))
    sleep 3
    for n in d2 d3; do ports $n >$fd/after-$n; done
    touch $fd/stop
    wait "$client" || fail "the client failed: $(cat $fd/err)"
    client=
    res=$(python3 -S -E -c '
import json, sys
d = sys.argv[1]
rd = lambda f: set(open(d + "/" + f).read().split())
r = json.load(open(d + "/result"))
broken = {str(p) for p in r["broken_ports"]}
own, d2, d3 = rd("before-d1"), rd("before-d2"), rd("before-d3")
others = d2 | d3
moved = (rd("after-d2") - d2) & d3 | (rd("after-d3") - d3) & d2
stall = r["phases"]["kill"]["stall_ms"]
print(f"own={len(own)} own_kept={len(own - broken)} others={len(others)} others_moved={len(moved)}",
      f"others_broken={len(others & broken)} moved_broken={len(moved & broken)} stall_ms={stall}",
      "errors=" + ",".join(r["errors"]).replace(" ", "_"))
' $fd) || fail "no result: $(cat $fd/result $fd/err)"
    # The sessions that went down from the flows' start: d2's and d3's, or d1's before the kill.
    dropped=$({
        head -n "$rlog" /tmp/r/bird.log | tail -n +"$((rlog0 + 1))" | grep -oE 'd1: (BFD session down|Received: |Error: |State changed to (stop|down))' || true
        tail -n +"$((rlog0 + 1))" /tmp/r/bird.log | grep -oE 'd[23]: (BFD session down|Received: |Error: |State changed to (stop|down))' || true
    } | cut -d: -f1 | sort -u | paste -sd, -)
    if [ -n "$dropped" ] || ! hops_are 198.51.100.12,198.51.100.13; then
        echo "run not counted: sessions of $dropped went down (not the kill); the router has [$(hops)]"
        teardown
        return 2
    fi
    echo "RESULT sched=$1 sloppy=$2 flows=$N withdraw_ms=$withdraw $res"
    moved=$(echo "$res" | sed -n 's/.*others_moved=\([0-9]*\).*/\1/p')
    obroken=$(echo "$res" | sed -n 's/.*others_broken=\([0-9]*\).*/\1/p')
    # Without sloppy_tcp a moved flow makes no entry (it is reset): no count of moved.
    [ "$2" = off ] || [ "$moved" -gt 0 ] ||
        fail "$1 $2: the rehash moved none of d2's and d3's flows: the run tells nothing"
    if [ "$1:$2" = mh:on ]; then
        [ "$obroken" -eq 0 ] || fail "mh with sloppy_tcp: $obroken of the other directors' flows broken"
    else
        [ "$obroken" -gt 0 ] || fail "$1 sloppy_tcp $2: none of the $moved moved flows broke: the test cannot tell"
    fi
    teardown
}

# (sh has no local variables: the loops' names are their own.)
for spec in "$@"; do
    rep=0
    while [ $rep -lt "$REPS" ]; do
        echo "== ${spec%%:*}, sloppy_tcp ${spec#*:} (run $((rep + 1)) of $REPS)"
        try=1
        while :; do
            # In a subshell, errexit on: 0 counted, 2 not counted (again, three
            # tries), anything else a failure (fail printed why).
            set +e
            (
                set -e
                run "${spec%%:*}" "${spec#*:}"
            )
            rc=$?
            set -e
            [ "$rc" -eq 0 ] && break
            [ "$rc" -eq 2 ] || exit 1
            [ "$try" -lt 3 ] || fail "no run of ${spec} counted in 3 tries"
            try=$((try + 1))
        done
        rep=$((rep + 1))
    done
done
ok "all specs passed"
