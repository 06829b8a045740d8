#!/usr/bin/env bash
# use_vmac for IPv6 (RFC 5798 §7.3: 00:00:5e:00:02:{VRID}). The master holds the
# VIP on its macvlan and answers neighbour solicitations with the virtual MAC: the
# client's neighbour entry for the VIP is the virtual MAC before and after a
# failover, adverts leave from the virtual MAC, the switch learns the new port.
# Nothing leaves the backup from the virtual MAC: its macvlan's MLD reports (for
# ff02::12 and the solicited-node group of the link-local address it sends from)
# go out of the base interface instead (net/mld.rs: nftables table ip6
# hafront_vmac; its router solicitations are dropped), so a switch does not move
# the master's MAC to the backup's port and still learns the backup's membership. keepalived 2.2.7 and 2.4.3 with
# use_vmac (and `nftables`, with which keepalived moves its reports the same way)
# interoperate in both roles.
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
source "$here/../lib/vmac.sh"
VIP=2001:db8::100
VMAC=00:00:5e:00:02:34 # VRID 52, IPv6

ping_vip() { # a few tries: the neighbour cache may be settling
    local i
    for i in 1 2 3; do lab_exec c ping -6 -n -c1 -W1 "$VIP" >/dev/null 2>&1 && return 0; done
    return 1
}
neigh_mac() { lab_exec c ip -6 neigh show "$VIP" dev eth0 | awk '{for (i=1;i<NF;i++) if ($i=="lladdr") print $(i+1)}'; }
fdb_port() { bridge -n "$LAB-sw" fdb show br br0 | awk -v m="$VMAC" '$1==m {print $3; exit}'; }
mac_of() { lab_exec "$1" cat /sys/class/net/eth0/address; }
conf() { # node prio
    hf_conf "$1" web6 52 "$2" 3 100ms "\"$VIP/64\"" "use_vmac = true" >"$dir/$1.toml"
}

conf a 150
conf b 100
hf_start a "$dir/a.toml"
hf_wait_state a web6 master 5 || fail "a not master"
# Frames arriving from b on its switch port while it starts as backup.
ip netns exec "$LAB-sw" tcpdump -i pb -Q in -n -e -l -vv "ether src $VMAC or (ether src $(mac_of b) and ip6 multicast)" \
    >"$dir/pb.cap" 2>"$dir/pb.log" &
cap=$!
lab_track_pid $cap
for _ in $(seq 50); do grep -q "listening on" "$dir/pb.log" 2>/dev/null && break; sleep 0.1; done
hf_start b "$dir/b.toml"
hf_wait_state b web6 backup 5 || fail "b not backup"
sleep 2.5
kill "$cap"; wait "$cap" 2>/dev/null || true; lab_untrack_pid "$cap"
grep -q -i "$VMAC" "$dir/pb.cap" && fail "the backup sent from the virtual MAC: $(grep -i -m 3 "$VMAC" "$dir/pb.cap")"
grep -q "multicast listener report" "$dir/pb.cap" && grep -q "ff02::12" "$dir/pb.cap" ||
    fail "no MLD report for ff02::12 from b's own MAC: $(head -n 5 "$dir/pb.cap")"
lab_exec b nft list table ip6 hafront_vmac | grep_q 'oifname "vrrp6.52"' || fail "b: no MLD rule for vrrp6.52"
pass "the backup sends nothing from the virtual MAC; its MLD reports (ff02::12) leave from its own MAC"

lab_exec a ip -o link show vrrp6.52 | grep_q "link/ether $VMAC" || fail "a: vrrp6.52 missing or wrong MAC: $(lab_exec a ip -o link show vrrp6.52)"
lab_exec a ip -6 -o addr show dev vrrp6.52 | grep_q " $VIP/64" || fail "a: VIP not on vrrp6.52"
lab_exec b ip -6 -o addr show dev vrrp6.52 | grep_q " $VIP/" && fail "b (backup) holds the VIP"
ping_vip || fail "client cannot reach the VIP on a"
[ "$(neigh_mac)" = $VMAC ] || fail "client's neighbour entry for the VIP is $(neigh_mac), want $VMAC"
src=$(advert_src) || fail "no advert seen by the client"
[ "$src" = $VMAC ] || fail "advert source MAC $src, want $VMAC"
[ "$(fdb_port)" = pa ] || fail "switch learned $VMAC on $(fdb_port), want pa"
pass "master a: VIP on vrrp6.52, neighbour entry and advert source are the virtual MAC, switch port pa"

hf_stop a
hf_wait_state b web6 master 5 || fail "b did not take over"
lab_exec a ip link show vrrp6.52 >/dev/null 2>&1 && fail "a: vrrp6.52 left after stop"
lab_exec a nft list table ip6 hafront_vmac >/dev/null 2>&1 && fail "a: table ip6 hafront_vmac left after stop"
ping_vip || fail "client cannot reach the VIP on b"
[ "$(neigh_mac)" = $VMAC ] || fail "after failover the neighbour entry is $(neigh_mac), want $VMAC"
src=$(advert_src) || fail "no advert seen from b"
[ "$src" = $VMAC ] || fail "b's advert source MAC $src, want $VMAC"
[ "$(fdb_port)" = pb ] || fail "switch still has $VMAC on $(fdb_port), want pb"
pass "after failover to b: same neighbour entry, advert from the virtual MAC, switch port pb; a's macvlan and table gone"
hf_stop b

# keepalived 2.2.7 and 2.4.3 with use_vmac (and `nftables`) as the other node.
has() { lab_exec "$1" ip -6 -o addr show | grep_q " $VIP/"; }
vmac_keepalived_interop web6 52 "$VIP/64" "nftables keepalived" "master backup"
