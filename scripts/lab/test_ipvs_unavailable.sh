#!/usr/bin/env bash
# A kernel without IPVS (this host's): a node configured with IPVS services still
# runs VRRP, takes the VIP, and says once, clearly, why IPVS is off.
set -euo pipefail
here=$(dirname "$0")
source "$here/../lib/lab.sh"
source "$here/../lib/hafront.sh"
hf_build
if [ -e /proc/net/ip_vs ]; then echo "skip: this kernel has IPVS (covered by vm-tests)"; exit 0; fi
lab_up
dir=$(lab_logdir)
hf_conf a web 51 150 3 100ms '"192.0.2.100/24"' >"$dir/a.toml"
cat >>"$dir/a.toml" <<'CONF'
[ipvs.services.web]
address = "192.0.2.100:80"
scheduler = "wrr"
forwarding = "dr"
master_of = "web"
real_servers = [ { address = "192.0.2.11:80", weight = 1 } ]
CONF
hf_start a "$dir/a.toml"
hf_wait_state a web master 5 || fail "a not master"
lab_wait_vip a 192.0.2.100 2 || fail "VIP not on a"
for _ in $(seq 30); do grep -q 'IPVS is off' "$dir/hafront-a.log" && break; sleep 0.1; done
grep 'IPVS is off' "$dir/hafront-a.log" | grep_q 'ip_vs' || fail "no clear 'IPVS is off' error naming the module"
[ "$(grep -c 'IPVS is off' "$dir/hafront-a.log")" = 1 ] || fail "the IPVS error is repeated"
kill -0 "${HF_PID[a]}" || fail "hafront died"
lab_client_ping 192.0.2.100 || fail "client cannot reach the VIP"
pass "no IPVS in the kernel: VRRP runs, one clear error"
