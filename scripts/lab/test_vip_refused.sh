#!/usr/bin/env bash
# The kernel refuses a master's VIP (issue 14, fault suite row "netlink refusing a
# VIP add"): a real refusal inside a's own namespace, IPv6 turned off on a's eth0
# (`net.ipv6.conf.eth0.disable_ipv6=1`: the kernel drops a's IPv6 addresses and
# refuses new ones). a is master of web (IPv4) and web6 (IPv6). Wanted: the refusal
# logged with the VIP named, counted, retried every second, shown in /v1/status and
# /metrics, no crash, the IPv4 VIP still served by a with no transition anywhere;
# once IPv6 is back, the retry adds the VIP again and a is master of both.
# (a's IPv6 adverts cannot leave either, so b takes web6 meanwhile: expected; and
# the refusal holds a's web6 at priority 1 for 2 s after the last refusal.)
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
VIP6=2001:db8::100
conf() { # node priority
    hf_conf "$1" web 51 "$2" 3 100ms "\"$VIP/24\"" \
        '[vrrp.instances.web6]' 'interface = "eth0"' 'vrid = 61' "priority = $2" \
        'advert_interval = "100ms"' "virtual_ips = [\"$VIP6/64\"]"
}
conf a 150 >"$dir/a.toml"
conf b 100 >"$dir/b.toml"
hf_start a "$dir/a.toml"
hf_wait_state a web master 5 || fail "a not master of web"
hf_wait_state a web6 master 5 || fail "a not master of web6"
hf_start b "$dir/b.toml"
hf_wait_state b web backup 5 || fail "b not backup of web"
hf_wait_state b web6 backup 5 || fail "b not backup of web6"
lab_wait_vip a $VIP6 3 || fail "$VIP6 not on a"
api() { python3 "$here/../lib/api.py" "unix:$dir/run-a/api.sock" GET "$1" | tail -n +2; }
faults() { api /v1/status | python3 -c "import json,sys; print(json.load(sys.stdin)['instances']['web6'].get('vip_faults'))"; }
web_b=$(hf_field b "s['instances']['web']['counters']['become_master']")

lab_exec a sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1
sleep 3
kill -0 "${HF_PID[a]}" 2>/dev/null || fail "a died when its VIP was refused"
grep -q "virtual address refused by the kernel.*vip=$VIP6/64" "$dir/hafront-a.log" ||
    fail "refusal not logged with the VIP named: $(grep -i refus "$dir/hafront-a.log" | tail -3)"
f=$(faults)
refused=$(python3 -c "import ast; print(ast.literal_eval('''$f''')['refused'])" 2>/dev/null) || fail "no vip_faults in /v1/status: $f"
[ "$refused" -ge 2 ] || fail "refusals counted $refused times in 3 s: not retried ($f)"
[[ $f == *"$VIP6/64"* ]] || fail "/v1/status does not name the refused VIP: $f"
api /metrics >"$dir/metrics-a.txt"
/usr/bin/python3 "$here/../lib/metrics_check.py" "$dir/metrics-a.txt" \
    'hafront_vip_refused{vrrp_instance=web6}=1' "hafront_vip_add_refusals_total{vrrp_instance=web6}>=2" >/dev/null || fail "/metrics does not show the refusal"
lab_has_vip a $VIP || fail "the IPv4 VIP left a"
lab_client_ping $VIP || fail "client cannot reach the IPv4 VIP"
[ "$(hf_field a "s['instances']['web']['state']")" = master ] || fail "a left mastership of web"
[ "$(hf_field b "s['instances']['web']['counters']['become_master']")" = "$web_b" ] || fail "b took web over"
pass "refused IPv6 VIP: logged with the VIP, counted $refused times in 3 s (retried), in /v1/status and /metrics; IPv4 VIP still served by a"

lab_exec a sysctl -qw net.ipv6.conf.eth0.disable_ipv6=0
# Back either by the retry while a is still master, or, when a has meanwhile
# yielded to b at priority 1 (the refusal hold), by a's retake once the hold ends.
lab_wait_vip a $VIP6 8 || fail "$VIP6 not back on a once IPv6 is on again"
sed -n '/virtual address refused by the kernel/,$p' "$dir/hafront-a.log" | grep_q "virtual address added.*vip=$VIP6/64" ||
    fail "the VIP's return not logged"
hf_wait_state b web6 backup 5 || fail "b still master of web6"
sleep 0.5
[ "$(lab_vip_holder $VIP6)" = a ] || fail "$VIP6 held by $(lab_vip_holder $VIP6), want a"
api /metrics >"$dir/metrics-a.txt"
/usr/bin/python3 "$here/../lib/metrics_check.py" "$dir/metrics-a.txt" 'hafront_vip_refused{vrrp_instance=web6}=0' >/dev/null ||
    fail "hafront_vip_refused still 1 after the VIP was added"
pass "IPv6 back: $VIP6 on a again (retried, or retaken once the refusal hold ended), a master of both, b backup"
