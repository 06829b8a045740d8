#!/usr/bin/env bash
# Interop with Debian's keepalived as the other node: VRRPv2 (PASS auth) over IPv4,
# VRRPv3 over IPv4 and over IPv6; hafront as master and as backup. In each case the
# master holds the VIP, cutting its switch port moves the VIP to the other daemon
# (the client still reaches it), and healing it makes the master preempt back.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/lab.sh"
source "$here/../lib/hafront.sh"
hf_build
command -v keepalived >/dev/null || fail "keepalived is not installed (scripts/test installs it)"
lab_up
dir=$(lab_logdir)

ka_pid="" ka_run=0
ka_start() { # node conf — fresh pid files per run: keepalived refuses to start while
             # the files of a previous run name a live process.
    ka_run=$((ka_run + 1))
    ip netns exec "$LAB-$1" keepalived -n -l -D -P -f "$2" -p "$dir/ka-$1-$ka_run.pid" -r "$dir/ka-$1-$ka_run-vrrp.pid" \
        >>"$dir/keepalived-$1.log" 2>&1 &
    ka_pid=$!
    lab_track_pid "$ka_pid"
}
ka_stop() { # stops keepalived and its VRRP child: every keepalived process in b's namespace
    [ -n "$ka_pid" ] || return 0
    kill -TERM "$ka_pid" 2>/dev/null || true
    wait "$ka_pid" 2>/dev/null || true
    lab_untrack_pid "$ka_pid"
    lab_stop_named b keepalived
    ka_pid=""
}

run_case() { # version family hafront_role
    local ver=$1 fam=$2 role=$3 vip vipn int hint auth="" hauth=""
    if [ "$fam" = 6 ]; then vip=2001:db8::100; vipn=2001:db8::100/64; else vip=192.0.2.100; vipn=192.0.2.100/24; fi
    if [ "$ver" = 2 ]; then
        int=1 hint=1s
        auth=$'authentication {\n    auth_type PASS\n    auth_pass secret12\n  }'
        hauth='auth_pass = "secret12"'
    else
        int=0.1 hint=100ms
    fi
    local hprio=150 kprio=100 master=a other=b
    if [ "$role" = backup ]; then hprio=100 kprio=150 master=b other=a; fi
    echo "-- VRRPv$ver IPv$fam, hafront $role"
    hf_conf a web 51 $hprio "$ver" "$hint" "\"$vipn\"" "$hauth" >"$dir/a.toml"
    cat >"$dir/b.conf" <<CONF
global_defs {
  router_id lab-b
  vrrp_version $ver
}
vrrp_instance web {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority $kprio
  advert_int $int
  $auth
  virtual_ipaddress {
    $vipn
  }
}
CONF
    hf_start a "$dir/a.toml"
    ka_start b "$dir/b.conf"
    lab_wait_vip $master $vip 10 || fail "v$ver/IPv$fam: VIP not on the master ($master)"
    sleep 1
    [ "$(lab_vip_holder $vip)" = $master ] || fail "v$ver/IPv$fam: VIP holder $(lab_vip_holder $vip), want $master"
    lab_client_ping $vip || fail "v$ver/IPv$fam: client cannot reach VIP on $master"
    lab_cut $master
    lab_wait_vip $other $vip 6 || fail "v$ver/IPv$fam: VIP did not move to $other after cutting $master"
    lab_client_ping $vip || fail "v$ver/IPv$fam: client cannot reach VIP on $other"
    lab_heal $master
    lab_wait_vip $master $vip 10 || fail "v$ver/IPv$fam: $master did not preempt back"
    lab_wait_no_vip $other $vip 5 || fail "v$ver/IPv$fam: $other kept the VIP"
    local rej
    rej=$(hf_field a "sum(s['instances']['web']['counters']['rejected'].values())")
    [ "$rej" = 0 ] || fail "v$ver/IPv$fam: hafront rejected $rej of keepalived's adverts: $(hf_field a "s['instances']['web']['counters']['rejected']")"
    [ "$(hf_field a "s['instances']['web']['counters']['adverts_received']")" -gt 0 ] || fail "hafront received no adverts from keepalived"
    grep -qi 'invalid\|checksum' "$dir/keepalived-b.log" && fail "keepalived complained: $(grep -i 'invalid\|checksum' "$dir/keepalived-b.log" | head -3)"
    hf_stop a
    ka_stop
    lab_exec a ip addr flush dev eth0 scope global to "$vip" 2>/dev/null || true
    lab_exec b ip addr del "$vipn" dev eth0 2>/dev/null || true
    pass "VRRPv$ver IPv$fam, hafront $role"
}

for role in master backup; do
    run_case 3 4 $role
    run_case 3 6 $role
    run_case 2 4 $role
done
