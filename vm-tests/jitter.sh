#!/bin/sh
# Guest script (issue 14, the fault suite's jitter row): two hafront nodes in network
# namespaces of Debian's kernel (sch_netem, which the host kernel lacks), one VRRP
# instance at 100 ms adverts, then JITTER_S seconds of netem delay 20 ms +- 20 ms on
# both nodes' egress (every advert late by 0-40 ms, reordered). Wanted: no
# transition, the VIP on a throughout.
# Host: HAFRONT_VM_EXTRA_MODULES=sch_netem vm-tests/run \
#         --file target/release/hafront:/usr/local/bin/hafront \
#         --file "$(command -v tc):/sbin/tc" vm-tests/jitter.sh
set -eu
PATH=/usr/local/bin:$PATH
VIP=192.0.2.100
JITTER_S=${JITTER_S:-30}
fail() {
    echo "FAIL: $*"
    for n in a b; do echo "---- hafront $n"; tail -n 20 /tmp/hf-$n.log 2>/dev/null || true; done
    exit 1
}
in_ns() { n=$1; shift; ip netns exec "$n" "$@"; }
ip link add br0 type bridge
ip link set br0 up
for spec in a:1 b:2; do
    n=${spec%%:*} id=${spec#*:}
    ip netns add $n
    ip link add "v$n" type veth peer name eth0 netns $n
    ip link set "v$n" master br0 up
    in_ns $n ip link set lo up
    in_ns $n ip addr add "192.0.2.$id/24" dev eth0
    in_ns $n ip link set eth0 up
done
start() { # NODE PRIORITY
    mkdir -p /tmp/$1
    cat >/tmp/$1.toml <<CONF
runtime_dir = "/tmp/$1/run"
state_dir = "/tmp/$1/state"
[node]
name = "node-$1"
[vrrp.instances.web]
interface = "eth0"
vrid = 51
priority = $2
advert_interval = "100ms"
virtual_ips = ["$VIP/24"]
CONF
    ip netns exec "$1" hafront run -c /tmp/$1.toml >>/tmp/hf-$1.log 2>&1 &
}
has_vip() { in_ns "$1" ip -o -4 addr show dev eth0 | grep -q " $VIP/24"; }
masters() { grep -c 'state="master"' /tmp/hf-$1.log || true; }
start a 150
i=0
until has_vip a; do i=$((i + 1)); [ $i -lt 100 ] || fail "a never got the VIP"; sleep 0.1; done
start b 100
sleep 3
has_vip b && fail "b holds the VIP before the jitter"
ma=$(masters a) mb=$(masters b)
for n in a b; do
    in_ns $n tc qdisc add dev eth0 root netem delay 20ms 20ms || fail "tc netem on $n"
done
echo "netem on both nodes: $(in_ns a tc qdisc show dev eth0)"
t=0 held=0
while [ $t -lt $((JITTER_S * 10)) ]; do
    has_vip b && held=$((held + 1))
    sleep 0.1
    t=$((t + 1))
done
da=$(( $(masters a) - ma )) db=$(( $(masters b) - mb ))
for n in a b; do in_ns $n tc qdisc del dev eth0 root; done
has_vip a || fail "a lost the VIP"
[ "$db" = 0 ] && [ "$da" = 0 ] && [ "$held" = 0 ] ||
    fail "jitter ${JITTER_S}s: b became master $db times, a $da, b held the VIP in $held of $((JITTER_S * 10)) samples"
echo "ok: jitter 20 ms +- 20 ms for ${JITTER_S}s at 100 ms adverts: 0 transitions, the VIP on a throughout"
echo "jitter: ok"
