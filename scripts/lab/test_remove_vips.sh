#!/usr/bin/env bash
# A SIGKILLed (or crashed) master leaves its VIP on its interface. Until hafront starts
# again and removes it, the node answers ARP for the VIP beside the new master: a host
# that resolves the VIP then may reach the dead node's own stack (reset), and the new
# master's split-brain probe reports two masters (issue 16, the way back). systemd runs
# the units' ExecStopPost, `hafront remove-vips`, the moment hafront dies:
# 1. the problem: a killed, its link cut, b master; a's link back without a hafront:
#    a broadcast ARP request for the VIP is answered by a and b, and b (split-brain
#    probe every 300 ms) reports a split brain;
# 2. `hafront remove-vips` in a (what the unit runs) removes the VIP, a's virtual
#    route and the VIP of a's use_vmac instance (on its macvlan): b alone answers,
#    b's split brain clears; run again it removes nothing;
# 3. the unit's sequence: a master again, SIGKILLed, remove-vips at once, link cut, b
#    master, a's link back: b alone answers and no split brain is raised;
# 4. refusals: remove-vips beside a running hafront (its API socket answers) removes
#    nothing and fails; an invalid configuration exits 2 with the reason.
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
# a does not preempt: restarted, it stays backup until b hands over (step 3).
# a's master also holds a virtual route (remove-vips removes it as a start does).
hf_conf a web 51 150 3 100ms "\"$VIP/24\"" 'preempt = false' 'split_brain_probe = "300ms"' \
    'virtual_routes = [ { to = "203.0.113.0/24", type = "blackhole" } ]' >"$dir/a.toml"
# And, alone, a use_vmac instance: its VIP is on the macvlan vrrp.52.
cat >>"$dir/a.toml" <<'TOML'
[vrrp.instances.vm]
interface = "eth0"
vrid = 52
priority = 150
advert_interval = "100ms"
virtual_ips = ["192.0.2.101/24"]
use_vmac = true
TOML
hf_conf b web 51 100 3 100ms "\"$VIP/24\"" 'split_brain_probe = "300ms"' >"$dir/b.toml"

# who_has: the MACs that answer a broadcast ARP request for the VIP from c (one line,
# sorted), collected for 1 s.
who_has() {
    lab_exec c "$PY" -S -E -c '
import socket, struct, sys, time
vip, me = socket.inet_aton(sys.argv[1]), socket.inet_aton(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind(("eth0", 0))
mac = s.getsockname()[4]
arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + me + b"\0" * 6 + vip
s.send(b"\xff" * 6 + mac + b"\x08\x06" + arp)
s.settimeout(0.1)
seen, end = set(), time.time() + 1
while time.time() < end:
    try:
        p = s.recv(128)
    except socket.timeout:
        continue
    # An ARP reply (op 2) whose sender address is the VIP.
    if p[12:14] == b"\x08\x06" and p[20:22] == b"\0\2" and p[28:32] == vip:
        seen.add(p[22:28].hex(":"))
print(" ".join(sorted(seen)))
' "$VIP" "$IP_C"
}
mac() { lab_exec "$1" cat /sys/class/net/eth0/address; }
split_brains() { grep -c 'split brain detected' "$dir/hafront-b.log" || true; }
has_vip_a() { lab_exec a ip -o addr show dev eth0 | grep_q " $VIP/"; }
has_vmac_vip_a() { lab_exec a ip -o addr show dev vrrp.52 2>/dev/null | grep_q " 192.0.2.101/"; }
has_route_a() { lab_exec a ip route show type blackhole | grep_q '^blackhole 203.0.113.0/24'; }
MAC_A=$(mac a) MAC_B=$(mac b)

hf_start a "$dir/a.toml"
hf_wait_state a web master 5 || fail "a not master"
hf_start b "$dir/b.toml"
hf_wait_state b web backup 5 || fail "b not backup"

# 1. The problem.
hf_kill a
lab_cut a
lab_wait_vip b $VIP 5 || fail "b did not take the VIP after a was killed"
has_vip_a && has_route_a && has_vmac_vip_a ||
    fail "test setup: the killed master should still hold its VIPs and route"
lab_heal a
got=$(who_has)
[ "$got" = "$(printf '%s\n' "$MAC_A" "$MAC_B" | sort | tr '\n' ' ' | sed 's/ $//')" ] ||
    fail "with a's stale VIP, the ARP request should be answered by a ($MAC_A) and b ($MAC_B): got '$got'"
for _ in $(seq 30); do [ "$(split_brains)" -gt 0 ] && break; sleep 0.1; done
[ "$(split_brains)" -gt 0 ] || fail "b's split-brain probe did not see a's stale VIP"
pass "a killed hafront's VIP answers ARP beside the new master ($got), and b reports a split brain"

# 2. remove-vips, as the unit's ExecStopPost.
out=$(lab_exec a "$HF_BIN" remove-vips -c "$dir/a.toml" 2>"$dir/remove-vips.err") ||
    fail "remove-vips failed: $out $(cat "$dir/remove-vips.err")"
echo "$out" | grep_q '^removed 3, failed 0' || fail "remove-vips: $out"
has_vip_a && fail "remove-vips left the VIP on a"
has_vmac_vip_a && fail "remove-vips left the use_vmac instance's VIP on its macvlan"
has_route_a && fail "remove-vips left the virtual route on a"
got=$(who_has)
[ "$got" = "$MAC_B" ] || fail "after remove-vips, b ($MAC_B) alone should answer: got '$got'"
for _ in $(seq 30); do grep -q 'split brain cleared' "$dir/hafront-b.log" && break; sleep 0.1; done
grep -q 'split brain cleared' "$dir/hafront-b.log" || fail "b's split brain did not clear"
out=$(lab_exec a "$HF_BIN" remove-vips -c "$dir/a.toml" 2>/dev/null) || fail "remove-vips again failed: $out"
echo "$out" | grep_q '^removed 0, failed 0' || fail "remove-vips again: $out"
pass "remove-vips removed a's VIPs (one on a use_vmac macvlan) and virtual route: b alone answers, its split brain cleared; a second run removes nothing"

# 3. The unit's sequence: the VIP goes the moment hafront dies, before the link is back.
hf_start a "$dir/a.toml"
hf_wait_state a web backup 5 || fail "a did not come back as backup"
hf_stop b # priority-0 adverts: a takes over at once
hf_wait_state a web master 5 || fail "a did not take over from the stopped b"
hf_start b "$dir/b.toml"
hf_wait_state b web backup 5 || fail "b not backup"
hf_kill a
lab_exec a "$HF_BIN" remove-vips -c "$dir/a.toml" >/dev/null 2>&1 || fail "remove-vips (ExecStopPost) failed"
has_vip_a || has_route_a || has_vmac_vip_a && fail "remove-vips at the kill left a VIP or the route"
lab_cut a
lab_wait_vip b $VIP 5 || fail "b did not take the VIP"
# From here (b may have become master, 0.35 s after the kill, before remove-vips
# was done on a loaded machine).
before=$(split_brains)
lab_heal a
got=$(who_has)
[ "$got" = "$MAC_B" ] || fail "with remove-vips run at the kill, b ($MAC_B) alone should answer: got '$got'"
sleep 1 # three of b's probes
[ "$(split_brains)" = "$before" ] || fail "b reported a split brain after a's link came back: $(grep 'split brain detected' "$dir/hafront-b.log" | tail -n1)"
pass "killed, then remove-vips as ExecStopPost: a's link back, b alone answers, no split brain"

# 4. Refusals.
if out=$(lab_exec b "$HF_BIN" remove-vips -c "$dir/b.toml" 2>&1); then
    fail "remove-vips beside b's running hafront succeeded: $out"
fi
echo "$out" | grep_q 'answers on .*api.sock' || fail "remove-vips beside a running hafront: $out"
lab_wait_vip b $VIP 1 || fail "remove-vips beside a running hafront removed its VIP"
printf '[vrrp.instances.web]\ninterface = "eth0"\nvrid = 300\n' >"$dir/bad.toml"
rc=0
out=$(lab_exec a "$HF_BIN" remove-vips -c "$dir/bad.toml" 2>&1) || rc=$?
[ "$rc" = 2 ] && echo "$out" | grep_q 'vrid' || fail "remove-vips with an invalid configuration: exit $rc: $out"
pass "remove-vips refuses beside a running hafront (its VIP stays) and exits 2 naming an invalid key"
