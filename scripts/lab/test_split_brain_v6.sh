#!/usr/bin/env bash
# Issue 14: the split-brain probe for IPv6-only instances. VRRPv3 over IPv6 with
# one IPv6 VIP, VRRP dropped both ways: both nodes become master, and the default
# probe (a Neighbor Solicitation for the VIP every 5 s) finds the other holder on
# each side; the alert names the other node's MAC. Before, IPv6-only instances had
# no probe and this two-way loss raised nothing.
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
VIP6=2001:db8::100
hf_pair "\"$VIP6/64\""
MAC_A=$(lab_exec a cat /sys/class/net/eth0/address)
MAC_B=$(lab_exec b cat /sys/class/net/eth0/address)
sb() { "$HF_BIN" status --runtime-dir "$dir/run-$1" --json | "$PY" -c "import json,sys; print(json.load(sys.stdin)['instances']['web']['split_brain']$2)"; }
sleep 6
[ "$(sb a "['active']")" = False ] || fail "split brain raised on a with one master: $(sb a '')"
lab_block_vrrp a
lab_block_vrrp b
hf_wait_state b web master 3 || fail "b did not become master with VRRP blocked"
t0=$(date +%s%N)
while [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 8000 ]; do
    [ "$(sb a "['active']")" = True ] && [ "$(sb b "['active']")" = True ] && break
    sleep 0.05
done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$(sb a "['active']")" = True ] && [ "$(sb b "['active']")" = True ] ||
    fail "no split-brain alert on both nodes within 8 s (a: $(sb a ''), b: $(sb b ''))"
sb a "['detail']" | grep "another node ($MAC_B) answers for VIP $VIP6/64" >/dev/null || fail "a's detail: $(sb a "['detail']")"
sb b "['detail']" | grep "another node ($MAC_A) answers for VIP $VIP6/64" >/dev/null || fail "b's detail: $(sb b "['detail']")"
pass "IPv6 VIP, VRRP lost both ways: split brain raised on both nodes after $ms ms, each naming the other's MAC"
lab_unblock_vrrp a
lab_unblock_vrrp b
hf_wait_state b web backup 3 || fail "b did not yield after the heal"
t0=$(date +%s%N)
while [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 8000 ]; do
    [ "$(sb a "['active']")" = False ] && break
    sleep 0.05
done
[ "$(sb a "['active']")" = False ] || fail "split brain still raised on a after the heal"
pass "healed: b yielded, the alert cleared"
