#!/bin/sh
# Guest script (vm-tests/run): the IPVS connection sync daemon driven by hafront, in
# one VM. IPVS is per network namespace, so two directors are two namespaces: a
# (priority 150) and b (100) run hafront with instance `web` (VIP 192.0.2.100/24,
# advert 200 ms), a DR service VIP:80 -> server s (192.0.2.20, VIP on lo, echo
# server), and `[ipvs.sync] instance = "web"`. Client c opens N long-lived TCP
# connections to VIP:80 through a. Asserted:
#   - a runs the master sync daemon, b the backup one (GET_DAEMON, ipvsadm -L --daemon);
#   - b's IPVS has the N connections (synced);
#   - a dies (hafront SIGKILLed, link down): b takes over, switches to the master
#     daemon, and every connection still echoes through b;
#   - the same kill with [ipvs.sync] off: the connections break (the test can fail).
set -eu
PATH=/usr/local/bin:$PATH
N=${1:-100}
VIP=192.0.2.100
fail() {
    echo "FAIL: $*"
    for n in a b; do
        echo "---- $n: ipvsadm -Ln --daemon / -Lnc"; ip netns exec $n ipvsadm -L --daemon || true
        ip netns exec $n ipvsadm -Lnc | head -5 || true
        echo "---- $n: hafront log"; tail -n 20 /tmp/hf-$n.log 2>/dev/null || true
    done
    exit 1
}
ok() { echo "ok: $*"; }
wait_for() { # tenths-of-seconds command...
    n=$1
    shift
    while [ "$n" -gt 0 ]; do
        "$@" && return 0
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}
in_ns() { n=$1; shift; ip netns exec "$n" "$@"; }

ip link add br0 type bridge
ip link set br0 up
for spec in a:1 b:2 c:10 s:20; do
    n=${spec%%:*} id=${spec#*:}
    ip netns add $n
    ip link add "v$n" type veth peer name eth0 netns $n
    ip link set "v$n" master br0 up
    in_ns $n ip link set lo up
    in_ns $n ip addr add "192.0.2.$id/24" dev eth0
    in_ns $n ip link set eth0 up
done
# The real server answers for the VIP (DR) without announcing it.
in_ns s ip addr add $VIP/32 dev lo
in_ns s sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
in_ns s busybox nc -ll -p 80 -e /bin/cat >/dev/null 2>&1 &

# conf NODE PRIORITY SYNC(yes|no)
conf() {
    mkdir -p /tmp/$1
    cat <<CONF
runtime_dir = "/tmp/$1/run"
state_dir = "/tmp/$1/state"
[node]
name = "node-$1"
[vrrp.instances.web]
interface = "eth0"
vrid = 51
priority = $2
advert_interval = "200ms"
virtual_ips = ["$VIP/24"]
[ipvs.services.web]
address = "$VIP:80"
scheduler = "rr"
forwarding = "dr"
master_of = "web"
real_servers = [ { address = "192.0.2.20:80", weight = 1 } ]
CONF
    if [ "$3" = yes ]; then
        printf '[ipvs.sync]\ninterface = "eth0"\nsync_id = 7\ninstance = "web"\n'
    fi
}
start() { # NODE PRIORITY SYNC
    conf "$1" "$2" "$3" >/tmp/$1.toml
    # ip netns exec execs hafront: $! is hafront's PID.
    ip netns exec "$1" hafront run -c /tmp/$1.toml >>/tmp/hf-$1.log 2>&1 &
    eval "hf_$1=\$!"
}
daemon_is() { in_ns "$1" ipvsadm -L --daemon | grep -q "^$2 sync daemon (mcast=eth0, syncid=7,"; }
has_vip() { in_ns "$1" ip -o -4 addr show dev eth0 | grep -q " $VIP/24"; }
synced() { [ "$(in_ns b ipvsadm -Lnc | grep -c ESTABLISHED)" -ge "$N" ]; }

# round NAME: N connections through a, a dies, how many still echo through b.
round() {
    rm -rf /tmp/flows && mkdir /tmp/flows
    pids=""
    i=0
    while [ $i -lt "$N" ]; do
        (echo one; sleep 60; echo two; sleep 5) | in_ns c busybox nc $VIP 80 >/tmp/flows/$i 2>/dev/null &
        pids="$pids $!"
        i=$((i + 1))
    done
    wait_for 600 sh -c "[ \$(cat /tmp/flows/* | grep -c one) -ge $N ]" || fail "$1: the $N connections did not come up"
    ok "$1: $N connections through a"
}
# kill_a: node a dies.
kill_a() {
    kill -9 "$hf_a"
    ip link set va down
    wait_for 100 has_vip b || fail "b did not take the VIP"
}
# survivors NAME: waits for the flows' second line (at most 90 s of polls), sets kept.
survivors() {
    wait_for 900 sh -c "[ \$(grep -l two /tmp/flows/* 2>/dev/null | wc -l) -ge $N ]" || true
    kept=$(grep -l two /tmp/flows/* 2>/dev/null | wc -l)
    echo "$1: kept $kept of $N"
    kill $pids 2>/dev/null || true
}

# --- with sync ---
start a 150 yes
wait_for 100 has_vip a || fail "a did not become master"
start b 100 yes
wait_for 100 daemon_is a master || fail "a does not run the master sync daemon"
wait_for 100 daemon_is b backup || fail "b does not run the backup sync daemon"
! daemon_is a backup || fail "a runs a backup daemon too"
ok "a: master sync daemon, b: backup sync daemon (GET_DAEMON)"
round sync
# The master daemon sends its buffer every 2 s at the latest.
wait_for 600 synced || fail "b's IPVS did not get the $N connections: $(in_ns b ipvsadm -Lnc | grep -c ESTABLISHED)"
ok "b's IPVS holds the $N connections (synced)"
kill_a
wait_for 100 daemon_is b master || fail "b did not switch to the master sync daemon"
! daemon_is b backup || fail "b kept the backup daemon"
ok "a killed: b holds the VIP and runs the master sync daemon"
survivors "sync on"
[ "$kept" -eq "$N" ] || fail "connections lost with sync on: kept $kept of $N"
ok "sync on: $kept/$N connections survive the master kill"

# --- without sync ---
kill "$hf_b"
wait "$hf_b" 2>/dev/null || true
for n in a b; do
    in_ns $n ipvsadm --stop-daemon master 2>/dev/null || true
    in_ns $n ipvsadm --stop-daemon backup 2>/dev/null || true
    [ -z "$(in_ns $n ipvsadm -L --daemon)" ] || fail "$n: sync daemons still running"
done
ip link set va up
start a 150 no
wait_for 100 has_vip a || fail "a did not become master (sync off)"
start b 100 no
sleep 2
round nosync
sleep 3
kill_a
survivors "sync off"
[ "$kept" -lt "$N" ] || fail "all $N connections survived without sync: the test cannot tell"
ok "sync off: the master kill broke $((N - kept)) of $N connections"
kill "$hf_b" 2>/dev/null || true
