#!/bin/sh
# Guest script (vm-tests/ipvlan runs it): use_ipvlan against the kernel and
# keepalived 2.4.3, in one VM. a runs hafront, b keepalived 2.4.3, both with
# use_ipvlan on eth0 (VRID 51, VIP 192.0.2.100/24, own addresses .11 and .12); c is
# the client; all on bridge br0. Asserts:
# - hafront master: its ipvlan vrrp.51 is an L2 bridge ipvlan of eth0 with eth0's
#   MAC, holding 192.0.2.11/24; the adverts leave from it (its tx counter grows),
#   from 192.0.2.11 (keepalived's log names the master's address);
#   the VIP is on eth0, not on the ipvlan, where keepalived 2.4.3 puts it too
#   (its vrrp_complete_instance moves VIPs to a VMAC only); keepalived stays backup
#   with its own ipvlan and no VIP; the client reaches the VIP at a's eth0 MAC;
# - hafront stops: the ipvlan is removed, keepalived takes the VIP, the client
#   reaches it at b's MAC;
# - hafront (priority 50) as backup of keepalived: it stays backup, no VIP,
#   its ipvlan exists;
# - keepalived stops: hafront takes the VIP over, the client reaches it at a's MAC;
# - a crash (SIGKILL) leaves a's ipvlan; a start whose instance names another one
#   (vmac_name) removes it as stale, and leaves an ipvlan hafront did not make.
set -eu
PATH=/usr/local/bin:$PATH
VIP=192.0.2.100
fail() {
    echo "FAIL: $*"
    for n in a b; do
        echo "---- $n: addresses"
        ip netns exec $n ip -o addr 2>/dev/null || true
    done
    echo "---- hafront log"
    tail -n 30 /tmp/hf-a.log 2>/dev/null || true
    echo "---- keepalived log"
    tail -n 30 /tmp/ka-b.log 2>/dev/null || true
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
in_ns() { ns=$1; shift; ip netns exec "$ns" "$@"; }
link() { # NS ADDR/PFX
    ip link add "v$1" type veth peer name eth0 netns "$1"
    ip link set "v$1" master br0 up
    in_ns "$1" ip addr add "$2" dev eth0
    in_ns "$1" ip link set eth0 up
}
has_link() { in_ns "$1" ip link show vrrp.51 >/dev/null 2>&1; }
has_vip() { in_ns "$1" ip -o -4 addr show dev eth0 | grep -q " $VIP/24"; }
lacks_vip() { ! in_ns "$1" ip -o -4 addr show | grep -q " $VIP/"; }
# The client's neighbour entry for the VIP after a ping.
client_mac() {
    in_ns c ip neigh flush dev eth0 >/dev/null 2>&1 || true
    in_ns c ping -c 1 -W 1 $VIP >/dev/null 2>&1 || return 1
    in_ns c ip neigh show $VIP dev eth0 | awk '{for (i=1;i<NF;i++) if ($i=="lladdr") print $(i+1)}'
}

ip link add br0 type bridge
ip link set br0 up
for n in a b c; do
    ip netns add $n
    in_ns $n ip link set lo up
done
link a 192.0.2.1/24
link b 192.0.2.2/24
link c 192.0.2.10/24
MAC_A=$(in_ns a cat /sys/class/net/eth0/address)
MAC_B=$(in_ns b cat /sys/class/net/eth0/address)

hf_conf() { # PRIORITY [VMAC_NAME]
    mkdir -p /tmp/a
    cat <<CONF
runtime_dir = "/tmp/a/run"
state_dir = "/tmp/a/state"
[node]
name = "node-a"
[vrrp.instances.web]
interface = "eth0"
vrid = 51
priority = $1
advert_interval = "200ms"
virtual_ips = ["$VIP/24"]
use_ipvlan = true
ipvlan_address = "192.0.2.11/24"
CONF
    [ -z "${2:-}" ] || echo "vmac_name = \"$2\""
}
hf_start() { # PRIORITY [VMAC_NAME]
    hf_conf "$@" >/tmp/a.toml
    ip netns exec a hafront run -c /tmp/a.toml >>/tmp/hf-a.log 2>&1 &
    hf=$!
}
hf_stop() {
    kill -TERM "$hf"
    wait "$hf" || fail "hafront exited with $?"
}
cat >/tmp/b.conf <<CONF
global_defs {
  router_id vm-b
  vrrp_version 3
}
vrrp_instance web {
  state BACKUP
  interface eth0
  use_ipvlan vrrp.51 192.0.2.12/24
  virtual_router_id 51
  priority 100
  advert_int 0.2
  virtual_ipaddress {
    $VIP/24
  }
}
CONF
ka_start() {
    mkdir -p /run/keepalived /var/run
    ip netns exec b keepalived -n -l -D -f /tmp/b.conf -p /tmp/ka.pid -r /tmp/ka-vrrp.pid >>/tmp/ka-b.log 2>&1 &
    ka=$!
}

# 1. hafront master, keepalived backup.
hf_start 150
wait_for 50 has_vip a || fail "a: no VIP on eth0"
ka_start
wait_for 50 has_link b || fail "b: keepalived made no ipvlan vrrp.51"
sleep 2
has_vip a || fail "a lost the VIP to keepalived"
lacks_vip b || fail "b (keepalived backup) holds the VIP"
d=$(in_ns a ip -d -o link show vrrp.51)
echo "$d" | grep -q "ipvlan  *mode l2 bridge" || fail "a: vrrp.51 is not an L2 bridge ipvlan: $d"
echo "$d" | grep -q "link/ether $MAC_A" || fail "a: vrrp.51 has not eth0's MAC $MAC_A: $d"
echo "$d" | grep -q "vrrp.51@eth0" || fail "a: vrrp.51 not on eth0: $d"
in_ns a ip -o -4 addr show dev vrrp.51 | grep -q " 192.0.2.11/24" || fail "a: 192.0.2.11/24 not on vrrp.51"
in_ns a ip -o -4 addr show dev vrrp.51 | grep -q " $VIP/" && fail "a: VIP on vrrp.51 (keepalived keeps it on eth0)"
in_ns b ip -o -4 addr show dev vrrp.51 | grep -q " 192.0.2.12/24" || fail "b: keepalived's vrrp.51 lacks 192.0.2.12/24"
in_ns b ip -d -o link show vrrp.51 | grep -q "ipvlan  *mode l2" || fail "b: keepalived's vrrp.51 is not an L2 ipvlan"
tx1=$(in_ns a cat /sys/class/net/vrrp.51/statistics/tx_packets)
sleep 1
tx2=$(in_ns a cat /sys/class/net/vrrp.51/statistics/tx_packets)
[ $((tx2 - tx1)) -ge 3 ] || fail "a: adverts do not leave from vrrp.51 (tx $tx1 -> $tx2 in 1 s)"
grep -q "master set to 192.0.2.11" /tmp/ka-b.log || fail "keepalived did not see adverts from 192.0.2.11 (ipvlan_address)"
m=$(client_mac) || fail "client cannot reach the VIP on a"
[ "$m" = "$MAC_A" ] || fail "client's entry for the VIP is $m, want a's eth0 MAC $MAC_A"
ok "hafront master with use_ipvlan: vrrp.51 L2 bridge ipvlan with eth0's MAC and 192.0.2.11, adverts from it, VIP on eth0 as keepalived ($((tx2 - tx1))/s); keepalived 2.4.3 stays backup"

# 2. hafront stops: keepalived takes over.
hf_stop
in_ns a ip link show vrrp.51 >/dev/null 2>&1 && fail "a: vrrp.51 not removed at stop"
wait_for 30 has_vip b || fail "keepalived did not take the VIP"
m=$(client_mac) || fail "client cannot reach the VIP on b"
[ "$m" = "$MAC_B" ] || fail "client's entry for the VIP is $m, want b's MAC $MAC_B"
ok "hafront stopped: ipvlan removed, keepalived took the VIP over (client at b's MAC)"

# 3. hafront as keepalived's backup.
hf_start 50
wait_for 50 has_link a || fail "a (backup): no ipvlan vrrp.51"
sleep 2
lacks_vip a || fail "a (backup, priority 50) holds the VIP"
has_vip b || fail "b (keepalived master) lost the VIP"
ok "hafront backup of keepalived 2.4.3 with use_ipvlan: no VIP, keepalived keeps it"

# 4. keepalived stops: hafront takes over.
kill -TERM "$ka"
wait "$ka" || true
wait_for 30 has_vip a || fail "hafront did not take the VIP over from keepalived"
m=$(client_mac) || fail "client cannot reach the VIP on a"
[ "$m" = "$MAC_A" ] || fail "client's entry for the VIP is $m, want a's MAC $MAC_A"
hf_stop
ok "keepalived stopped: hafront took the VIP over (client at a's MAC), and stopped cleanly"

# 5. A crash leaves the ipvlan; a start under another name removes it (stale).
in_ns a ip link add ipvl0 link eth0 type ipvlan mode l2 # not hafront's
hf_start 150
wait_for 50 has_vip a || fail "a: no VIP (before the crash)"
kill -KILL "$hf"
wait "$hf" 2>/dev/null || true
has_link a || fail "a: vrrp.51 gone after SIGKILL (test premise)"
hf_start 150 ipv.51
# (Before the stale clean-up covered ipvlans, hafront did not start: 192.0.2.11 is
# still on the left vrrp.51, and an L2 ipvlan address is unique per base.)
own_addr() { in_ns a ip -o -4 addr show dev ipv.51 2>/dev/null | grep -q " 192.0.2.11/24"; }
wait_for 50 own_addr || fail "a: no ipvlan ipv.51 with 192.0.2.11 after the restart"
wait_for 50 has_vip a || fail "a: no VIP after the restart"
has_link a && fail "a: the stale ipvlan vrrp.51 (left by the crash) was not removed at start"
in_ns a ip link show ipvl0 >/dev/null 2>&1 || fail "a: ipvl0 (not hafront's) was removed"
hf_stop
in_ns a ip link show ipv.51 >/dev/null 2>&1 && fail "a: ipv.51 not removed at stop"
ok "crash: the left ipvlan vrrp.51 removed at the next start (another name), ipvl0 left alone"
