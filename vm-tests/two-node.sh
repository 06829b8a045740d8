#!/bin/sh
# Guest script of vm-tests/two-node: one of two VMs (node a, priority 150, or node b,
# priority 100) whose eth0 share one link. Both run hafront with VRRP instance `web`
# (VIP 192.0.2.100/24, advert 200 ms) and an IPVS service bound to it (master_of), in
# Debian's kernel. The two scripts meet over the link:
#   a: master with the VIP and the IPVS service; waits for b to be ready (b listens on
#      tcp/7001); cuts its own link (ip link set eth0 down): FAULT, VIP and service
#      gone; 6 s later restores it: preempts, VIP and service back; SIGTERM: service
#      removed.
#   b: backup without VIP or service while a is master; says ready; takes the VIP and
#      the service when a is cut off; releases both when a comes back.
set -eu
role=$1
PATH=/usr/local/bin:$PATH
log=/tmp/hafront.log
VIP=192.0.2.100
case $role in
    a) me=1 peer=2 prio=150 ;;
    b) me=2 peer=1 prio=100 ;;
    *) echo "usage: two-node.sh a|b"; exit 2 ;;
esac
fail() {
    echo "FAIL: node-$role: $*"
    echo "---- ip addr"; ip -o -4 addr show dev eth0 || true
    echo "---- ipvsadm -Ln"; ipvsadm -Ln || true
    echo "---- hafront log"; tail -n 30 "$log" 2>/dev/null || true
    exit 1
}
ok() { echo "ok: node-$role: $*"; }
now_cs() { cut -d' ' -f1 /proc/uptime | tr -d .; }   # centiseconds since boot
has_vip() { ip -o -4 addr show dev eth0 | grep -q " $VIP/24"; }
has_svc() { ipvsadm -Ln | grep -q "TCP  $VIP:80"; }
master_here() { has_vip && has_svc; }
nothing_here() { ! has_vip && ! has_svc; }
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

ip link set eth0 up
ip addr add "192.0.2.$me/24" dev eth0
mkdir -p /etc/hafront
cat >/etc/hafront/hafront.toml <<CONF
[node]
name = "node-$role"
[vrrp.instances.web]
interface = "eth0"
vrid = 51
priority = $prio
advert_interval = "200ms"
virtual_ips = ["$VIP/24"]
[ipvs.services.web]
address = "$VIP:80"
scheduler = "rr"
forwarding = "nat"
master_of = "web"
real_servers = [ { address = "198.51.100.11:80", weight = 1 } ]
CONF
hafront run -c /etc/hafront/hafront.toml >"$log" 2>&1 &
hf=$!

case $role in
a)
    wait_for 100 master_here || fail "no VIP and IPVS service as master"
    ok "master: VIP $VIP and IPVS service $VIP:80 installed"
    # b listens once its hafront has settled as backup.
    wait_for 1200 nc -w 1 "192.0.2.$peer" 7001 </dev/null >/dev/null 2>&1 || fail "node-b never got ready"
    master_here || fail "lost the VIP or the service while node-b started"
    ok "node-b is up as backup; cutting my link"
    t0=$(now_cs)
    ip link set eth0 down
    wait_for 100 nothing_here || fail "VIP or IPVS service still here with the link down"
    ok "link down: FAULT, VIP and IPVS service removed after $(( ($(now_cs) - t0) * 10 )) ms"
    sleep 6
    t0=$(now_cs)
    ip link set eth0 up
    wait_for 150 master_here || fail "did not take the VIP and the service back after the link came up"
    ok "link up: preempted node-b, VIP and IPVS service back after $(( ($(now_cs) - t0) * 10 )) ms"
    sleep 2   # node-b checks that it released both
    kill -TERM "$hf"
    wait "$hf" || fail "hafront exited non-zero on SIGTERM"
    nothing_here || fail "SIGTERM left the VIP or the IPVS service"
    ok "SIGTERM: VIP and IPVS service removed, exit 0"
    ;;
b)
    # a may boot later: b is master alone until a arrives and preempts it.
    wait_for 1200 ping -c 1 -W 1 "192.0.2.$peer" >/dev/null 2>&1 || fail "node-a never answered"
    wait_for 150 nothing_here || fail "still holding the VIP or the service with node-a up"
    sleep 1
    nothing_here || fail "took the VIP or the service back while node-a is master"
    ok "backup: no VIP, no IPVS service while node-a is master"
    nc -l -p 7001 </dev/null >/dev/null 2>&1 || fail "nc -l failed"
    t0=$(now_cs)
    wait_for 150 master_here || fail "no takeover when node-a was cut off"
    ok "node-a cut off: VIP and IPVS service here after $(( ($(now_cs) - t0) * 10 )) ms (advert 200 ms)"
    wait_for 200 nothing_here || fail "did not release the VIP or the service when node-a came back"
    ok "node-a back: VIP and IPVS service released (preempted)"
    kill -TERM "$hf"
    wait "$hf" || fail "hafront exited non-zero on SIGTERM"
    ;;
esac
