#!/usr/bin/env bash
# accept = false (RFC 5798 Accept_Mode): the master holds the VIP and answers
# ARP/ND for it, but drops traffic addressed to it; the nftables table exists only
# while hafront runs. accept = true (b) answers as usual.
set -euo pipefail
here=$(dirname "$0")
source "$here/../lib/lab.sh"
source "$here/../lib/hafront.sh"
hf_build
command -v nft >/dev/null || fail "nft is not installed (scripts/test installs nftables)"
lab_up
dir=$(lab_logdir)
hf_conf a web 51 150 3 100ms '"192.0.2.100/24", "2001:db8::100/64"' 'accept = false' >"$dir/a.toml"
hf_conf b web 51 100 3 100ms '"192.0.2.100/24", "2001:db8::100/64"' >"$dir/b.toml"
hf_start a "$dir/a.toml"
hf_wait_state a web master 5 || fail "a not master"
hf_start b "$dir/b.toml"
hf_wait_state b web backup 5 || fail "b not backup"
lab_has_vip a 192.0.2.100 || fail "a does not hold the IPv4 VIP"
lab_has_vip a 2001:db8::100 || fail "a does not hold the IPv6 VIP (other family, not advertised)"
lab_exec a nft list table inet hafront >"$dir/nft-a.txt" || fail "no nftables table on a"
grep -q 192.0.2.100 "$dir/nft-a.txt" || fail "VIP missing from a's table: $(cat "$dir/nft-a.txt")"
# The client resolves the VIP (ARP answered by a) but gets no echo reply.
if lab_exec c ping -n -c2 -W1 192.0.2.100 >/dev/null 2>&1; then fail "a answered on its VIP with accept = false"; fi
neigh=$(lab_exec c ip neigh show 192.0.2.100)
echo "$neigh" | grep_q lladdr || fail "client has no ARP entry for the VIP: $neigh"
if lab_exec c ping -n -c2 -W1 2001:db8::100 >/dev/null 2>&1; then fail "a answered on its IPv6 VIP with accept = false"; fi
# Its own address still answers: only the VIPs are filtered.
lab_client_ping 192.0.2.1 || fail "a's own address is filtered"
# b (accept = true) takes over and answers.
lab_cut a
lab_wait_vip b 192.0.2.100 3 || fail "VIP did not move to b"
lab_client_ping 192.0.2.100 || fail "client cannot reach the VIP on b"
lab_heal a
hf_wait_state a web master 5 || fail "a did not preempt back"
hf_stop a
if lab_exec a nft list table inet hafront >/dev/null 2>&1; then fail "table left behind after stop"; fi
pass "accept = false: VIP held, traffic to it dropped, table removed on stop"
