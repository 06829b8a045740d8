#!/usr/bin/env bash
# preempt = false on the higher-priority node: after its link comes back it stays
# backup and the VIP stays where it is.
set -euo pipefail
here=$(dirname "$0")
source "$here/../lib/lab.sh"
source "$here/../lib/hafront.sh"
hf_build
lab_up
dir=$(lab_logdir)
hf_conf a web 51 150 3 100ms '"192.0.2.100/24"' 'preempt = false' >"$dir/a.toml"
hf_conf b web 51 100 3 100ms '"192.0.2.100/24"' 'preempt = false' >"$dir/b.toml"
hf_start a "$dir/a.toml"
hf_wait_state a web master 5 || fail "a not master"
hf_start b "$dir/b.toml"
hf_wait_state b web backup 5 || fail "b not backup"
lab_cut a
lab_wait_vip b 192.0.2.100 3 || fail "VIP did not move to b"
# While cut off, a is master alone on its side; healing must settle on b (the
# current master, since a does not preempt) with a single VIP holder.
lab_heal a
hf_wait_state a web backup 5 || fail "a did not step back to backup"
sleep 1
[ "$(lab_vip_holder 192.0.2.100)" = b ] || fail "VIP holder is $(lab_vip_holder 192.0.2.100), want b"
hf_wait_state b web master 1 || fail "b lost mastership"
lab_client_ping 192.0.2.100 || fail "client cannot reach VIP on b"
pass "preempt = false: VIP stays on b"
