#!/usr/bin/env bash
# Malformed, truncated, length not matching the address count (valid checksums),
# wrong-version, wrong-VRID, TTL != 255, bad-checksum and
# wrong-auth adverts (each claiming priority 254) are dropped and counted: no panic,
# no state change. Then a valid priority-254 advert does move the master, which
# proves the broken ones were really seen and refused. Invalid configuration exits 2
# with a message naming the key.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/lab.sh"
source "$here/../lib/hafront.sh"
hf_build
lab_up
dir=$(lab_logdir)
send() { lab_exec c python3 "$here/../lib/vrrp_send.py" --src 192.0.2.10 "$@"; }
hf_conf a web 51 150 3 100ms '"192.0.2.100/24"' \
    '[vrrp.instances.legacy]' 'interface = "eth0"' 'vrid = 60' 'priority = 150' 'version = 2' \
    'advert_interval = "1s"' 'virtual_ips = ["192.0.2.60/24"]' 'auth_pass = "secret12"' >"$dir/a.toml"
hf_start a "$dir/a.toml"
hf_wait_state a web master 5 || fail "a not master"
hf_wait_state a legacy master 8 || fail "a not master of legacy"

send --count 3 ttl checksum truncated version v2 garbage vrid count0 long count255
send --count 3 --vrid 60 --vip 192.0.2.60 auth
sleep 0.5
kill -0 "${HF_PID[a]}" || fail "hafront died on bad input"
[ "$(hf_field a "s['instances']['web']['state']")" = master ] || fail "state changed on bad input"
[ "$(hf_field a "s['instances']['legacy']['state']")" = master ] || fail "legacy state changed on bad input"
[ "$(hf_field a "s['instances']['web']['counters']['become_master']")" = 1 ] || fail "web flapped"
for reason in ttl checksum packet_length version; do
    n=$(hf_field a "s['instances']['web']['counters']['rejected'].get('$reason', 0)")
    [ "$n" -ge 3 ] || fail "rejected[$reason] = $n, want >= 3"
done
# truncated + count0 + long + count255, 3 each (issue 14, defect 1).
n=$(hf_field a "s['instances']['web']['counters']['rejected'].get('packet_length', 0)")
[ "$n" -ge 12 ] || fail "rejected[packet_length] = $n, want >= 12"
n=$(hf_field a "s['instances']['legacy']['counters']['rejected'].get('auth', 0)")
[ "$n" -ge 3 ] || fail "legacy rejected[auth] = $n, want >= 3"
[ "$(hf_field a "s['unknown_vrid_packets']")" -ge 3 ] || fail "wrong-VRID packets not counted"
grep -q 'advert rejected' "$dir/hafront-a.log" || fail "rejections not logged"
pass "broken adverts dropped and counted, no state change"

send good
hf_wait_state a web backup 2 || fail "a valid priority-254 advert did not make a yield (test would be vacuous)"
pass "a valid advert is acted on"

# Invalid configuration: exit 2 and the key named.
printf '[vrrp.instances.web]\ninterface = "eth0"\nvrid = 300\nvirtual_ips = ["192.0.2.100/24"]\n' >"$dir/bad.toml"
set +e
out=$("$HF_BIN" check-config -c "$dir/bad.toml" 2>&1); rc=$?
set -e
[ "$rc" = 2 ] || fail "check-config exit $rc on vrid = 300, want 2"
echo "$out" | grep_q 'vrid' || fail "error does not name the key: $out"
set +e
out=$(lab_exec a "$HF_BIN" run -c "$dir/bad.toml" 2>&1); rc=$?
set -e
[ "$rc" = 2 ] || fail "run exit $rc on an invalid config, want 2"
pass "invalid configuration: exit 2, key named ($out)"
