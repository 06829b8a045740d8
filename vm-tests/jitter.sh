#!/bin/sh
# Guest script (issue 14, the fault suite's jitter row): a VRRP pair in network
# namespaces of Debian's kernel (sch_netem, which the host kernel lacks), one
# instance at 100 ms adverts, then JITTER_S seconds of netem delay 20 ms +- 20 ms on
# both nodes' egress (every advert late by 0-40 ms, reordered). hafront first, then
# keepalived (when given: --file /usr/sbin/keepalived:/usr/sbin/keepalived) run the
# same way in fresh namespaces. Wanted of hafront: no transition, the VIP on a
# throughout. keepalived's figures are printed beside it, not asserted.
# Host: HAFRONT_VM_EXTRA_MODULES=sch_netem vm-tests/run \
#         --file target/release/hafront:/usr/local/bin/hafront \
#         --file /usr/sbin/keepalived:/usr/sbin/keepalived \
#         --file "$(command -v tc):/sbin/tc" vm-tests/jitter.sh
set -eu
PATH=/usr/local/bin:/usr/sbin:$PATH
VIP=192.0.2.100
JITTER_S=${JITTER_S:-30}
daemon=
log_of() { echo "/tmp/$daemon-$1.log"; }
fail() {
    echo "FAIL: $*"
    for n in a b; do echo "---- $daemon $n"; tail -n 20 "$(log_of $n)" 2>/dev/null || true; done
    exit 1
}
in_ns() { n=$1; shift; ip netns exec "$n" "$@"; }
lab_up() {
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
}
lab_down() {
    for n in a b; do ip netns pids $n 2>/dev/null | xargs -r kill -KILL; done
    sleep 0.3
    for n in a b; do ip netns del $n 2>/dev/null || true; done
    ip link del br0 2>/dev/null || true
}
start() { # NODE PRIORITY
    mkdir -p /tmp/$1
    if [ "$daemon" = hafront ]; then
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
        ip netns exec "$1" hafront run -c /tmp/$1.toml >>"$(log_of $1)" 2>&1 &
    else
        cat >/tmp/$1.conf <<CONF
global_defs {
  router_id node-$1
  vrrp_version 3
}
vrrp_instance web {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority $2
  advert_int 0.1
  virtual_ipaddress {
    $VIP/24
  }
}
CONF
        ip netns exec "$1" keepalived -n -l -D -P -f /tmp/$1.conf -p /tmp/$1/ka.pid \
            -r /tmp/$1/ka-vrrp.pid >>"$(log_of $1)" 2>&1 &
    fi
}
has_vip() { in_ns "$1" ip -o -4 addr show dev eth0 | grep -q " $VIP/24"; }
masters() {
    if [ "$daemon" = hafront ]; then
        grep -c 'state="master"' "$(log_of $1)" || true
    else
        grep -c 'Entering MASTER STATE' "$(log_of $1)" || true
    fi
}
# run_pair DAEMON: prints "RESULT daemon b_masters a_masters held samples".
run_pair() {
    daemon=$1
    lab_up
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
    echo "$daemon: netem on both nodes: $(in_ns a tc qdisc show dev eth0)"
    t=0 held=0
    while [ $t -lt $((JITTER_S * 10)) ]; do
        has_vip b && held=$((held + 1))
        sleep 0.1
        t=$((t + 1))
    done
    da=$(( $(masters a) - ma )) db=$(( $(masters b) - mb ))
    for n in a b; do in_ns $n tc qdisc del dev eth0 root; done
    vip_on_a=yes
    has_vip a || vip_on_a=no
    echo "RESULT $daemon: jitter 20 ms +- 20 ms for ${JITTER_S}s at 100 ms adverts: b became master $db times, a $da; b held the VIP in $held of $((JITTER_S * 10)) samples; VIP on a at the end: $vip_on_a"
    lab_down
}
run_pair hafront
[ "$da" = 0 ] && [ "$db" = 0 ] && [ "$held" = 0 ] && [ "$vip_on_a" = yes ] ||
    fail "hafront under jitter: b became master $db times, a $da, b held the VIP in $held samples, VIP on a at the end: $vip_on_a"
echo "ok: hafront: 0 transitions, the VIP on a throughout"
if command -v keepalived >/dev/null; then
    run_pair keepalived
else
    echo "keepalived not in the VM (no --file for it): its row is not measured"
fi
echo "jitter: ok"
