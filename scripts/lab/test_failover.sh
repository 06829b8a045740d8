#!/usr/bin/env bash
# Two hafront nodes, IPv4 and IPv6 instances: the VIP sits on the higher priority;
# cutting the master's switch port moves it to the backup and the client still
# reaches it; healing the port makes the master preempt back.
set -euo pipefail
here=$(dirname "$0")
source "$here/../lib/lab.sh"
source "$here/../lib/hafront.sh"
hf_build
lab_up
dir=$(lab_logdir)

for n in a b; do
    prio=150; [ $n = b ] && prio=100
    {
        hf_conf $n web4 51 $prio 3 100ms '"192.0.2.100/24"'
        echo '[vrrp.instances.web6]'
        echo 'interface = "eth0"'
        echo 'vrid = 51'
        echo "priority = $prio"
        echo 'advert_interval = "100ms"'
        echo 'virtual_ips = ["2001:db8::100/64"]'
    } >"$dir/$n.toml"
    hf_start $n "$dir/$n.toml"
done

hf_wait_state a web4 master 5 || fail "a did not become master (v4)"
hf_wait_state a web6 master 5 || fail "a did not become master (v6)"
hf_wait_state b web4 backup 5 || fail "b not backup"
lab_wait_vip a 192.0.2.100 2 || fail "VIP v4 not on a"
lab_wait_vip a 2001:db8::100 2 || fail "VIP v6 not on a"
[ "$(lab_vip_holder 192.0.2.100)" = a ] || fail "VIP v4 also elsewhere: $(lab_vip_holder 192.0.2.100)"
lab_client_ping 192.0.2.100 || fail "client cannot reach VIP v4 on a"
lab_client_ping 2001:db8::100 || fail "client cannot reach VIP v6 on a"
pass "VIP on the higher priority node"

lab_cut a
lab_wait_vip b 192.0.2.100 3 || fail "VIP v4 did not move to b"
lab_wait_vip b 2001:db8::100 3 || fail "VIP v6 did not move to b"
hf_wait_state b web4 master 2 || fail "b not master"
lab_client_ping 192.0.2.100 || fail "client cannot reach VIP v4 on b"
lab_client_ping 2001:db8::100 || fail "client cannot reach VIP v6 on b"
pass "link cut: backup holds the VIPs and the client reaches them"

lab_heal a
hf_wait_state a web4 master 5 || fail "a did not preempt back"
lab_wait_no_vip b 192.0.2.100 3 || fail "b kept VIP v4 after a preempted"
lab_wait_vip a 192.0.2.100 3 || fail "VIP v4 not back on a"
hf_wait_state b web4 backup 3 || fail "b not backup after preemption"
lab_client_ping 192.0.2.100 || fail "client cannot reach VIP after preemption"
pass "link back: master preempts back"
