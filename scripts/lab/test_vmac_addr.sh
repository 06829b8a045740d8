#!/usr/bin/env bash
# VIPs on VMACs of their own (issue 20; keepalived's use_vmac_addr, vmac_addr_prefix
# and a VIP line's use_vmac). Nodes a, b and the client c get a second interface
# eth1 on a second bridge (198.51.100.0/24). Instance web (VRID 51) runs on eth0
# with vmac_addr = true and vmac_addr_prefix "vx": its VIP 198.51.100.100/24 with
# dev eth1 goes on the private macvlan vx.51 of eth1 with the virtual MAC
# 00:00:5e:00:01:33 (on both nodes; the VIP on the master's only); the client's
# neighbour entry for it is the virtual MAC before and after a failover; the
# macvlan goes at stop; after a crash, a start whose configuration names another
# prefix removes the left one (stale); a VIP line's own use_vmac (instance without
# vmac_addr) does the same; keepalived 2.2.7 and 2.4.3 with use_vmac_addr as the
# other node interoperate in both roles.
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
VIP1=198.51.100.100
VMAC=00:00:5e:00:01:33 # VRID 51

# The second segment: br1 in the switch, eth1 on a (.1), b (.2), c (.10).
ip -n "$LAB-sw" link add br1 type bridge stp_state 0 forward_delay 0 mcast_snooping 0
ip -n "$LAB-sw" link set br1 up
for n in a b c; do
    id=$(lab_host_id $n)
    ip -n "$LAB-$n" link add eth1 type veth peer name "q$n" netns "$LAB-sw"
    ip -n "$LAB-sw" link set "q$n" master br1 up
    ip -n "$LAB-$n" addr add "198.51.100.$id/24" dev eth1
    ip -n "$LAB-$n" link set eth1 up
done

neigh_mac() { lab_exec c ip neigh show "$VIP1" dev eth1 | awk '{for (i=1;i<NF;i++) if ($i=="lladdr") print $(i+1)}'; }
# The client's entry for the VIP after a fresh ping (flushed first: learnt anew).
fresh_mac() {
    lab_exec c ip neigh flush dev eth1 >/dev/null 2>&1 || true
    lab_client_ping $VIP1 || return 1
    neigh_mac
}
fdb_port() { bridge -n "$LAB-sw" fdb show br br1 | awk -v m="$VMAC" '$1==m {print $3; exit}'; }
sysctl_of() { lab_exec "$1" cat "/proc/sys/net/ipv4/conf/$2/$3"; }
has1() { lab_exec "$1" ip -o addr show | grep_q " $VIP1/"; }
on_vmac() { # node name
    lab_exec "$1" ip -o -d link show "$2" 2>/dev/null | grep_q "link/ether $VMAC .*macvlan mode private" &&
        lab_exec "$1" ip -o link show "$2" | grep_q "$2@eth1"
}
wait_for() { # tenths command...
    local n=$1
    shift
    for _ in $(seq "$n"); do "$@" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}

conf() { # node prio prefix [extra lines]
    local node=$1 prio=$2 prefix=$3
    shift 3
    hf_conf "$node" web 51 "$prio" 3 100ms "\"$VIP/24\", \"$VIP1/24\"" \
        "vmac_addr = true" "vip_options.\"$VIP1/24\" = { dev = \"eth1\" }" "$@" >"$dir/$node.toml"
    # [vrrp] after the instance's table: a key of the parent table.
    printf '[vrrp]\nvmac_addr_prefix = "%s"\n' "$prefix" >>"$dir/$node.toml"
}

conf a 150 vx
conf b 100 vx
hf_start a "$dir/a.toml"
hf_wait_state a web master 5 || fail "a not master"
hf_start b "$dir/b.toml"
hf_wait_state b web backup 5 || fail "b not backup"

for n in a b; do on_vmac $n vx.51 || fail "$n: no private macvlan vx.51 on eth1 with $VMAC: $(lab_exec $n ip -o -d link show vx.51 2>&1)"; done
lab_exec a ip -o addr show dev vx.51 | grep_q " $VIP1/24" || fail "a: $VIP1 not on vx.51"
lab_exec a ip -o addr show dev eth1 | grep_q " $VIP1/" && fail "a: $VIP1 on eth1 itself"
lab_exec a ip -o addr show dev eth0 | grep_q " $VIP/24" || fail "a: $VIP not on eth0 (the instance's own VIP)"
has1 b && fail "b (backup) holds $VIP1"
for kv in arp_ignore=1 accept_local=1 rp_filter=0; do
    [ "$(sysctl_of a vx.51 "${kv%=*}")" = "${kv#*=}" ] || fail "a: vx.51 ${kv%=*} is $(sysctl_of a vx.51 "${kv%=*}")"
done
[ "$(sysctl_of a eth1 arp_ignore)/$(sysctl_of a eth1 arp_filter)" = 1/1 ] || fail "a: eth1 arp_ignore/arp_filter not 1/1"
m=$(fresh_mac) || fail "client cannot reach $VIP1 on a"
[ "$m" = $VMAC ] || fail "client's entry for $VIP1 is $m, want $VMAC"
[ "$(fdb_port)" = qa ] || fail "switch learned $VMAC on $(fdb_port), want qa"
pass "vmac_addr: $VIP1 (dev eth1) on a's vx.51 with $VMAC (b has one too, no VIP), client reaches it at the virtual MAC"

hf_stop a
hf_wait_state b web master 5 || fail "b did not take over"
lab_exec a ip link show vx.51 >/dev/null 2>&1 && fail "a: vx.51 left after stop"
[ "$(sysctl_of a eth1 arp_ignore)/$(sysctl_of a eth1 arp_filter)" = 0/0 ] || fail "a: eth1 ARP sysctls not put back"
wait_for 30 has1 b || fail "b did not add $VIP1"
lab_exec b ip -o addr show dev vx.51 | grep_q " $VIP1/24" || fail "b: $VIP1 not on vx.51"
lab_client_ping $VIP1 || fail "client cannot reach $VIP1 on b (no flush)"
[ "$(neigh_mac)" = $VMAC ] || fail "after failover the client's entry is $(neigh_mac), want $VMAC"
[ "$(fresh_mac)" = $VMAC ] || fail "after failover a fresh entry is not $VMAC"
wait_for 30 eval '[ "$(fdb_port)" = qb ]' || fail "switch has $VMAC on $(fdb_port), want qb"
pass "failover to b: $VIP1 on b's vx.51, the client's entry stays $VMAC, switch port qb; a removed its vx.51 at stop"

# A crash leaves vx.51; a start with another prefix removes it (stale) and makes vy.51.
hf_kill b
lab_exec b ip link show vx.51 >/dev/null 2>&1 || fail "b: vx.51 gone after SIGKILL (test premise)"
conf b 100 vy
hf_start b "$dir/b.toml"
hf_wait_state b web master 5 || fail "b not master after restart"
lab_exec b ip link show vx.51 >/dev/null 2>&1 && fail "b: stale vx.51 not removed at start"
on_vmac b vy.51 || fail "b: no vy.51"
wait_for 30 eval 'lab_exec b ip -o addr show dev vy.51 | grep_q " $VIP1/24"' || fail "b: $VIP1 not on vy.51"
hf_stop b
pass "after a crash: the left vx.51 removed at start (stale), vy.51 made"

# A VIP line's own use_vmac, without vmac_addr: only that VIP on a VMAC (default prefix).
hf_conf a web 51 150 3 100ms "\"$VIP/24\", \"$VIP1/24\", \"198.51.100.101/24\"" \
    "vip_options.\"$VIP1/24\" = { dev = \"eth1\", use_vmac = true }" \
    "vip_options.\"198.51.100.101/24\" = { dev = \"eth1\" }" >"$dir/a.toml"
hf_start a "$dir/a.toml"
hf_wait_state a web master 5 || fail "a not master (per-VIP use_vmac)"
on_vmac a vrrp.51 || fail "a: no vrrp.51 for the VIP's use_vmac"
wait_for 30 eval 'lab_exec a ip -o addr show dev vrrp.51 | grep_q " $VIP1/24"' || fail "a: $VIP1 not on vrrp.51"
lab_exec a ip -o addr show dev eth1 | grep_q " 198.51.100.101/24" || fail "a: 198.51.100.101 (no use_vmac) not on eth1"
hf_stop a
lab_exec a ip link show vrrp.51 >/dev/null 2>&1 && fail "a: vrrp.51 left after stop"
pass "a VIP's use_vmac: that VIP on vrrp.51 of eth1, the other on eth1 itself"

# keepalived 2.2.7 (Debian's, if installed) and 2.4.3 with use_vmac_addr.
KA243=$(keepalived_243) || fail "keepalived 2.4.3: not available"
kas=("$KA243")
if command -v keepalived >/dev/null; then kas=("$(command -v keepalived)" "$KA243"); else echo "skip: keepalived 2.2.7 not installed (scripts/test installs it)"; fi
for ka in "${kas[@]}"; do
    for role in master backup; do
        hprio=150 kprio=100 master=a other=b
        if [ $role = backup ]; then hprio=100 kprio=150 master=b other=a; fi
        conf a $hprio vx
        cat >"$dir/b.conf" <<CONF
global_defs {
  router_id lab-b
  vrrp_version 3
  vmac_addr_prefix vx
}
vrrp_instance web {
  state BACKUP
  interface eth0
  use_vmac_addr
  virtual_router_id 51
  priority $kprio
  advert_int 0.1
  virtual_ipaddress {
    $VIP/24
    $VIP1/24 dev eth1
  }
}
CONF
        hf_start a "$dir/a.toml"
        ka_run b "$ka" "$dir/b.conf" "$role"
        ka_pid=$KA_PID
        wait_for 100 eval 'has1 $master && ! has1 $other' || true
        sleep 1
        has1 $master || fail "keepalived interop ($role): $VIP1 not on $master"
        has1 $other && fail "keepalived interop ($role): $VIP1 on both"
        for n in a b; do on_vmac $n vx.51 || fail "keepalived interop ($role): $n has no vx.51 with $VMAC on eth1"; done
        lab_exec $master ip -o addr show dev vx.51 | grep_q " $VIP1/" || fail "keepalived interop ($role): $VIP1 not on $master's vx.51"
        lab_client_ping $VIP1 || fail "keepalived interop ($role): client cannot reach $VIP1"
        # keepalived sets no arp_announce on the base (test_vmac.sh): the entry is
        # checked where hafront is master.
        if [ $role = master ]; then
            m=$(fresh_mac) || fail "keepalived interop ($role): client cannot reach $VIP1"
            [ "$m" = $VMAC ] || fail "keepalived interop ($role): neighbour entry $m"
        fi
        rej=$(hf_field a "sum(s['instances']['web']['counters']['rejected'].values())")
        [ "$rej" = 0 ] || fail "keepalived interop ($role): hafront rejected $rej adverts"
        lab_cut $master
        wait_for 60 has1 $other || fail "keepalived interop ($role): $VIP1 did not move to $other"
        lab_exec $other ip -o addr show dev vx.51 | grep_q " $VIP1/" || fail "keepalived interop ($role): $VIP1 not on $other's vx.51"
        lab_heal $master
        wait_for 100 eval 'has1 $master && ! has1 $other' || fail "keepalived interop ($role): $master did not take $VIP1 back"
        hf_stop a
        kill -TERM "$ka_pid" 2>/dev/null || true
        wait "$ka_pid" 2>/dev/null || true
        lab_untrack_pid "$ka_pid"
        lab_stop_named b keepalived
        pass "keepalived $("$ka" --version 2>&1 | head -1 | awk '{print $2}') with use_vmac_addr, hafront $role"
    done
done
