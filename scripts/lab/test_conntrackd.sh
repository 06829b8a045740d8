#!/usr/bin/env bash
# Lossless NAT failover with conntrackd (issue 16, section 3). Gateways a and b run
# VRRP for 192.0.2.100 and a one-armed NAT (nftables): the client's connections to
# VIP:8080 go to the server d (192.0.2.3), with the VIP as source, behind a stateful
# firewall (nf_conntrack_tcp_loose=0, invalid packets answered with a reset).
# Debian's conntrackd keeps the conntrack tables in step over a dedicated link
# (sync0, 203.0.113.0/24). 100 long-lived connections must survive a graceful
# handover (a stopped), the way back (a preempts) and a master kill (a's links cut,
# hafront SIGKILLed) with hafront's built-in conntrackd hooks; with the hooks off the
# same master kill resets them (so the test can fail).
set -euo pipefail
here=$(dirname "$0")
source "$here/../lib/lab.sh"
source "$here/../lib/hafront.sh"
command -v conntrackd >/dev/null || [ -x /usr/sbin/conntrackd ] || fail "conntrackd not installed (Debian package conntrackd)"
hf_build
lab_up
lab_add_node d
dir=$(lab_logdir)
VIP=192.0.2.100 SRV=192.0.2.3 PORT=8080 N=${CT_FLOWS:-100}
flows="python3 $here/conntrack/flows.py"

ip link add sync0 netns "$LAB-a" type veth peer name sync0 netns "$LAB-b"
for n in a b; do
    id=1; [ $n = b ] && id=2
    ip -n "$LAB-$n" addr add "203.0.113.$id/24" dev sync0
    ip -n "$LAB-$n" link set sync0 up
    lab_exec $n sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0
    lab_exec $n nft -f - <<NFT
table ip lab_nat {
  chain pre { type nat hook prerouting priority dstnat; ip daddr $VIP tcp dport $PORT dnat to $SRV; }
  chain post { type nat hook postrouting priority srcnat; ip daddr $SRV tcp dport $PORT snat to $VIP; }
}
table inet lab_fw {
  chain inp { type filter hook input priority 0; ct state invalid meta l4proto tcp reject with tcp reset; }
  chain forw { type filter hook forward priority 0; ct state invalid meta l4proto tcp reject with tcp reset; }
}
NFT
    # A stateful firewall: a mid-stream packet without a conntrack entry is invalid.
    lab_exec $n sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0
    peer=2; [ $n = b ] && peer=1
    cat >"$dir/ctd-$n.conf" <<CONF
Sync {
    Mode FTFW {
    }
    UDP {
        IPv4_address 203.0.113.$id
        IPv4_Destination_Address 203.0.113.$peer
        Port 3780
        Interface sync0
        Checksum on
    }
}
General {
    HashSize 8192
    HashLimit 65536
    LogFile $dir/ctd-$n.log
    Syslog off
    LockFile $dir/ctd-$n.lock
    UNIX {
        Path $dir/ctd-$n.ctl
    }
    NetlinkBufferSize 2097152
    NetlinkBufferSizeMaxGrowth 8388608
    Filter From Userspace {
        Protocol Accept {
            TCP
        }
        Address Ignore {
            IPv4_address 127.0.0.1
            IPv4_address 192.0.2.1
            IPv4_address 192.0.2.2
            IPv4_address 203.0.113.1
            IPv4_address 203.0.113.2
        }
    }
}
CONF
done
# conntrackd in the foreground, one per gateway (ours: tracked, and in our namespaces).
ctd_start() {
    rm -f "$dir/ctd-$1.lock" "$dir/ctd-$1.ctl"
    lab_exec "$1" /usr/sbin/conntrackd -C "$dir/ctd-$1.conf" >>"$dir/ctd-$1.out" 2>&1 &
    lab_track_pid $!
    for _ in $(seq 100); do [ -S "$dir/ctd-$1.ctl" ] && return 0; sleep 0.05; done
    fail "conntrackd on $1 did not start"
}
ctd_start a
ctd_start b
lab_exec d $flows server $SRV $PORT >>"$dir/server.log" 2>&1 &
lab_track_pid $!

# node_conf NODE PRIORITY HOOKS(true|false)
node_conf() {
    hf_conf "$1" gw 60 "$2" 3 100ms "\"$VIP/24\"" \
        '[vrrp.instances.gw.hooks]' "conntrackd = $3" \
        '[conntrackd]' "config = \"$dir/ctd-$1.conf\"" >"$dir/$1.toml"
}
mark() { echo "$1 $(date +%s.%N)" >>"$fdir/marks"; }
# client_start: N flows through the VIP, in $fdir; waits until all are up.
client_start() {
    fdir=$(mktemp -d "$dir/flows.XXXX")
    lab_exec c $flows client $VIP $PORT "$N" "$fdir" >"$fdir/result.json" 2>"$fdir/client.err" &
    client_pid=$!
    lab_track_pid $client_pid
    for _ in $(seq 400); do [ -e "$fdir/ready" ] && return 0; sleep 0.05; done
    cat "$fdir/client.err" >&2
    fail "the client's $N connections did not come up"
}
# client_stop NAME: stops the flows; their result in $dir/NAME.json.
client_stop() {
    touch "$fdir/stop"
    wait "$client_pid" || true
    lab_untrack_pid "$client_pid"
    cp "$fdir/result.json" "$dir/$1.json"
    echo "$1: $(cat "$dir/$1.json")"
}
field() { python3 -c "import json,sys; r=json.load(open('$1')); print($2)"; }
# kill_node NODE: the node dies: hafront SIGKILLed, its links cut.
kill_node() {
    hf_kill "$1"
    lab_cut "$1"
    ip -n "$LAB-$1" link set sync0 down
}

# --- with the integration ---
node_conf a 150 true
node_conf b 100 true
hf_start a "$dir/a.toml"
hf_wait_state a gw master 5 || fail "a not master"
hf_start b "$dir/b.toml"
hf_wait_state b gw backup 5 || fail "b not backup"
lab_wait_vip a $VIP 3 || fail "VIP not on a"
client_start
sleep 1
mark handover
hf_stop a
hf_wait_state b gw master 5 || fail "b did not take over"
sleep 2
mark preempt
hf_start a "$dir/a.toml"
hf_wait_state a gw master 8 || fail "a did not preempt back"
hf_wait_state b gw backup 3 || fail "b not backup after a preempted"
sleep 2
mark kill
kill_node a
hf_wait_state b gw master 5 || fail "b did not take over after the kill"
sleep 3
client_stop on
grep -q "hook done" "$dir/hafront-b.log" || fail "no hook ran on b"
kept=$(field "$dir/on.json" "r['kept']")
[ "$kept" = "$N" ] || fail "connections lost with the conntrackd hooks: kept $kept of $N"
pass "conntrackd hooks: $kept/$N connections survive a handover, a preemption and a master kill (stalls ms: $(field "$dir/on.json" "' '.join(f'{k}={v[\"stall_ms\"]}' for k,v in r['phases'].items())"))"

# --- the same master kill without the integration ---
hf_stop b
lab_heal a
ip -n "$LAB-a" link set sync0 up
for n in a b; do
    lab_exec $n conntrack -F >/dev/null 2>&1 || true
    lab_exec $n /usr/sbin/conntrackd -C "$dir/ctd-$n.conf" -f >/dev/null 2>&1 || true
done
node_conf a 150 false
node_conf b 100 false
hf_start a "$dir/a.toml"
hf_wait_state a gw master 5 || fail "a not master (hooks off)"
hf_start b "$dir/b.toml"
hf_wait_state b gw backup 5 || fail "b not backup (hooks off)"
lab_wait_vip a $VIP 3 || fail "VIP not on a (hooks off)"
client_start
sleep 1
mark kill
kill_node a
hf_wait_state b gw master 5 || fail "b did not take over (hooks off)"
sleep 3
client_stop off
kept=$(field "$dir/off.json" "r['kept']")
[ "$kept" -lt "$N" ] || fail "all $N connections survived without the hooks: the test cannot tell"
pass "without the hooks the master kill breaks $((N - kept)) of $N connections"
