#!/usr/bin/env bash
# Sync groups move together (keepalived's vrrp_sync_group): with web and db in one
# group on both nodes, putting only web of the master in maintenance moves BOTH
# instances to the other node (web by its priority-0 advert, db because its group
# follows), nobody flaps afterwards, and both come back together when it ends.
# (A fault in one member faulting all is in test_tracking.sh.)
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
group() { # db priority
    printf '%s\n' '[vrrp.instances.db]' 'interface = "eth0"' 'vrid = 52' "priority = $1" 'advert_interval = "100ms"' \
        'virtual_ips = ["192.0.2.101/24"]' '[vrrp.sync_groups.edge]' 'instances = ["web", "db"]'
}
hf_conf a web 51 150 3 100ms '"192.0.2.100/24"' "$(group 150)" >"$dir/a.toml"
hf_conf b web 51 100 3 100ms '"192.0.2.100/24"' "$(group 100)" >"$dir/b.toml"
"$HF_BIN" check-config --no-env -c "$dir/a.toml" >/dev/null || fail "a's config"
hf_start a "$dir/a.toml"
hf_start b "$dir/b.toml"
for i in web db; do
    hf_wait_state a $i master 5 || fail "a not master of $i"
    hf_wait_state b $i backup 5 || fail "b not backup of $i"
done
masters() { hf_field "$1" "sum(i['counters']['become_master'] for i in s['instances'].values())"; }

"$HF_BIN" ctl --runtime-dir "$dir/run-a" maintenance web on >/dev/null || fail "ctl maintenance"
hf_wait_state b web master 2 || fail "b did not take web"
hf_wait_state b db master 2 || fail "b did not take db with web (sync group)"
lab_wait_vip b 192.0.2.101 2 || fail "db's VIP not on b"
[ "$(hf_field a "s['instances']['db']['state']")" = backup ] || fail "a kept db while its group moved"
[ "$(hf_field b "s['instances']['db']['last_transition']['reason']")" = "sync group moved" ] \
    || fail "b's db moved for another reason: $(hf_field b "s['instances']['db']['last_transition']")"
ma=$(masters a) mb=$(masters b)
sleep 2
[ "$(masters a)" = "$ma" ] && [ "$(masters b)" = "$mb" ] || fail "the groups flapped: a $ma -> $(masters a), b $mb -> $(masters b)"
pass "one member put in maintenance: the whole group moved to b, and stays (no flap in 2 s)"

"$HF_BIN" ctl --runtime-dir "$dir/run-a" maintenance web off >/dev/null || fail "ctl maintenance off"
for i in web db; do
    hf_wait_state a $i master 3 || fail "a did not take $i back"
    hf_wait_state b $i backup 2 || fail "b kept $i"
done
lab_wait_vip a 192.0.2.100 2 && lab_wait_vip a 192.0.2.101 2 || fail "VIPs not back on a"
pass "maintenance off: the group moved back to a (preemption waits for every member)"
