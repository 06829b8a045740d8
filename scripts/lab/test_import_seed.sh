#!/usr/bin/env bash
# A seed document's keepalived.conf pair (daemon/tests/data/keepalived/
# seed001_master.conf and seed001_backup.conf: VRRP + LVS DR with TCP checks) runs
# unchanged in structure as two hafront nodes with `hafront run --keepalived-config`:
# the master holds the VIP, cutting its link moves the VIP to the backup, healing it
# brings it back (preemption).
#
# The fixtures already carry documentation addresses (the VIP 192.0.2.100, the real
# servers 192.0.2.130/.131, which nothing answers: the checks fail inside the lab,
# and this kernel has no IPVS). HAFRONT_ env overrides on top of the import set the
# interface (ens160 -> eth0) and the runtime and state directories.
set -euo pipefail
here=$(dirname "$0")
source "$here/../lib/lab.sh"
source "$here/../lib/hafront.sh"
hf_build
lab_up
dir=$(lab_logdir)
data=$HF_ROOT/daemon/tests/data/keepalived

start_node() { # node keepalived.conf
    hf_run "$1" HAFRONT_VRRP__INSTANCES__VI_1__INTERFACE=eth0 HAFRONT_RUNTIME_DIR="$dir/run-$1" \
        HAFRONT_STATE_DIR="$dir/state-$1" -- --keepalived-config "$2"
}

for pair in a:seed001_master b:seed001_backup; do
    n=${pair%%:*} seed=${pair#*:}
    cp "$data/$seed.conf" "$dir/$n-keepalived.conf"
    # The offline import succeeds too and says what it does not carry over.
    "$HF_BIN" import-keepalived "$dir/$n-keepalived.conf" -o "$dir/$n.toml" 2>"$dir/$n-import.err" \
        || fail "import-keepalived $seed: $(cat "$dir/$n-import.err")"
    grep -q 'priority = ' "$dir/$n.toml" || fail "$seed: no priority in the imported TOML"
    start_node "$n" "$dir/$n-keepalived.conf"
done
pass "both seed configurations imported"

# VRRPv2 with advert_int 1 (keepalived's defaults, kept by the import): the first
# master is elected after the master-down interval, about 3.6 s.
hf_wait_state a vi_1 master 10 || fail "a (priority 100) did not become master"
hf_wait_state b vi_1 backup 5 || fail "b (priority 90) is not backup"
lab_wait_vip a 192.0.2.100 3 || fail "VIP not on a"
[ "$(lab_vip_holder 192.0.2.100)" = a ] || fail "VIP also elsewhere: $(lab_vip_holder 192.0.2.100)"
lab_client_ping 192.0.2.100 || fail "client cannot reach the VIP on a"
grep -q 'warning: .*state: hafront has no initial state' "$dir/hafront-a.log" \
    || fail "run --keepalived-config did not print the import warnings"
pass "VIP on the imported master (priority 100)"

lab_cut a
t0=$(date +%s%N)
lab_wait_vip b 192.0.2.100 6 || fail "VIP did not move to b"
took=$(( ($(date +%s%N) - t0) / 1000000 ))
hf_wait_state b vi_1 master 2 || fail "b not master"
lab_client_ping 192.0.2.100 || fail "client cannot reach the VIP on b"
pass "master's link cut: b took the VIP over in ${took} ms"

lab_heal a
hf_wait_state a vi_1 master 8 || fail "a did not preempt back"
lab_wait_no_vip b 192.0.2.100 3 || fail "b kept the VIP after a preempted"
lab_wait_vip a 192.0.2.100 3 || fail "VIP not back on a"
pass "link back: the imported master preempts back"
