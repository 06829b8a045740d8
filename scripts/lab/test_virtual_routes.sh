#!/usr/bin/env bash
# VIPs on other interfaces, excluded VIPs, virtual routes and rules (issue 20 §3,
# keepalived's `dev`/`label`/`scope`, `virtual_ipaddress_excluded`,
# `virtual_routes`, `virtual_rules`), checked in the kernel's tables: the master
# holds them, the backup does not; the advert carries the placed VIP and not the
# excluded one; a route, rule or address removed behind the master's back comes
# back (not a `no_track` route); stop removes them, the new master adds them; a
# crash's leftovers are removed at start; track_link = false (dont_track_primary)
# keeps a master whose interface is down; and with keepalived 2.2.7 and 2.4.3 as
# the other node (hafront master, then backup) they follow the master on each side.
export LAB=hroutes$$
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
VIPD=198.51.100.18 # on eth2, advertised
VIPX=203.0.113.5   # on eth0, excluded from adverts
for n in a b; do
    lab_exec $n ip link add eth2 type veth peer name eth2p # (no dummy module here)
    lab_exec $n ip link set eth2p up
    lab_exec $n ip link set eth2 up
done

extra=(
    'virtual_ips_excluded = ["203.0.113.5/24"]'
    'virtual_routes = ['
    '  { to = "0.0.0.0/0", via = "192.0.2.254", dev = "eth0", table = 100 },'
    '  { to = "198.51.100.128/25", dev = "eth2", table = 100, metric = 7 },'
    '  { to = "203.0.113.128/25", type = "blackhole", table = 1000 },'
    '  { to = "2001:db8:5::/48", type = "unreachable", table = 100 },'
    '  { to = "203.0.113.0/25", via = "192.0.2.254", table = 101, no_track = true },'
    ']'
    'virtual_rules = ['
    '  { from = "192.0.2.100/32", table = 100, priority = 100 },'
    '  { iif = "eth2", fwmark = 16, fwmask = 255, table = 1000, priority = 101 },'
    '  { to = "198.51.100.0/24", oif = "eth0", type = "prohibit", priority = 102 },'
    ']'
    '[vrrp.instances.web.vip_options."198.51.100.18/24"]'
    'dev = "eth2"'
    'label = "eth2:1"'
    'scope = "link"'
)
conf() { # node priority
    hf_conf "$1" web 51 "$2" 3 100ms "\"$VIP/24\", \"$VIPD/24\"" "${extra[@]}" >"$dir/$1.toml"
}

routes() { # node: what hafront adds, one line each, as ip(8) prints it
    {
        lab_exec "$1" ip route show table 100
        lab_exec "$1" ip route show table 101
        lab_exec "$1" ip route show table 1000
        lab_exec "$1" ip -6 route show table 100
        lab_exec "$1" ip rule show | grep -E '^10[0-2]:'
        lab_exec "$1" ip -o addr show dev eth2 | grep " $VIPD/"
        lab_exec "$1" ip -o addr show dev eth0 | grep " $VIPX/"
    } 2>/dev/null | sed 's/[[:space:]]\+/ /g; s/ brd [^ ]*//'
}
# What the master must hold (patterns, one per item).
want=(
    'default via 192.0.2.254 dev eth0 proto keepalived'
    '198.51.100.128/25 dev eth2 proto keepalived' # scope link from hafront (as ip(8)), global from keepalived
    '203.0.113.0/25 via 192.0.2.254 dev eth0 proto keepalived'
    'blackhole 203.0.113.128/25 proto keepalived'
    'unreachable 2001:db8:5::/48 dev lo proto keepalived'
    '100: from 192.0.2.100 lookup 100 proto keepalived'
    '101: from all fwmark 0x10/0xff iif eth2 lookup 1000 proto keepalived'
    '102: from all to 198.51.100.0/24 oif eth0 prohibit proto keepalived'
    "inet $VIPD/24 scope link eth2:1"
    "inet $VIPX/24 scope global"
)
holds_all() { # node
    local r p
    r=$(routes "$1")
    for p in "${want[@]}"; do grep -qF -- "$p" <<<"$r" || { echo "missing on $1: $p" >&2; return 1; }; done
}
holds_none() { [ -z "$(routes "$1")" ]; }
wait_for() { # seconds command...
    local s=$1
    shift
    for _ in $(seq $((s * 10))); do "$@" 2>/dev/null && return 0; sleep 0.1; done
    "$@"
}
# Addresses in the next VRRPv3 advert the client sees.
advert_addrs() {
    lab_exec c python3 - <<'PY'
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0800))
s.bind(("eth0", 0))
s.settimeout(5)
while True:
    f = s.recv(2048)
    if len(f) > 34 and f[23] == 112:
        ihl = (f[14] & 15) * 4
        v = f[14 + ihl:]
        print(" ".join(socket.inet_ntoa(v[8 + 4 * i:12 + 4 * i]) for i in range(v[3])))
        sys.exit(0)
PY
}

conf a 150
conf b 100
hf_start a "$dir/a.toml"
hf_wait_state a web master 5 || fail "a not master"
hf_start b "$dir/b.toml"
hf_wait_state b web backup 5 || fail "b not backup"
wait_for 2 holds_all a || fail "master a lacks routes, rules or addresses: $(routes a)"
routes a | grep_q -F '198.51.100.128/25 dev eth2 proto keepalived scope link metric 7' || fail "device route not scope link, metric 7: $(routes a)"
holds_none b || fail "backup b holds some: $(routes b)"
[ "$(advert_addrs)" = "$VIP $VIPD" ] || fail "advert carries '$(advert_addrs)', want '$VIP $VIPD'"
pass "master: routes (tables 100, 101, 1000, IPv6), rules, $VIPD on eth2 (label, scope) and excluded $VIPX; backup none; advert without the excluded VIP"

lab_exec a ip route del default table 100
lab_exec a ip rule del priority 101
lab_exec a ip addr del $VIPD/24 dev eth2
lab_exec a ip route del 203.0.113.0/25 table 101
wait_for 3 holds_all a 2>/dev/null || true
r=$(routes a)
grep -q '^default via 192.0.2.254' <<<"$r" || fail "removed route not restored: $r"
grep -q '^101:' <<<"$r" || fail "removed rule not restored: $r"
grep -q " $VIPD/24" <<<"$r" || fail "removed address on eth2 not restored: $r"
sleep 1.5
routes a | grep_q '^203.0.113.0/25' && fail "no_track route was restored"
grep -q "virtual route was removed behind hafront's back" "$dir/hafront-a.log" || fail "route repair not logged"
grep -q "virtual rule was removed behind hafront's back" "$dir/hafront-a.log" || fail "rule repair not logged"
[ "$(hf_field a "s['instances']['web']['counters']['become_master']")" = 1 ] || fail "a flapped"
pass "master: removed route, rule and address restored and logged; no_track route left removed"

hf_stop a
hf_wait_state b web master 5 || fail "b did not take over"
holds_none a || fail "a still holds some after stop: $(routes a)"
want[2]='' # the no_track route: b adds it (a's was removed by hand)
wait_for 2 holds_all b || fail "new master b lacks some: $(routes b)"
pass "stop: a removed them all; b (master) holds them"

# A crash leaves them; a node that starts as backup removes them.
hf_start a "$dir/a.toml"
hf_wait_state a web master 5 || fail "a did not preempt"
wait_for 2 holds_none b || fail "b kept some after losing mastership: $(routes b)"
hf_kill a
hf_wait_state b web master 5 || fail "b did not take over after the crash"
holds_all a || fail "test premise: a crash leaves a's routes: $(routes a)"
conf a 50
hf_start a "$dir/a.toml"
hf_wait_state a web backup 5 || fail "a (priority 50) not backup"
wait_for 2 holds_none a || fail "stale ones left on a at start: $(routes a)"
holds_all b || fail "b lost some: $(routes b)"
hf_stop a
hf_stop b
wait_for 2 holds_none b || fail "b kept some after stop: $(routes b)"
pass "backup -> master -> backup on b; a crash's leftovers removed when a starts as backup"

# track_link = false (keepalived's dont_track_primary): a down interface is no
# fault; by default it is.
for tl in false true; do
    hf_conf a web 51 150 3 100ms "\"$VIP/24\"" "track_link = $tl" >"$dir/a-link.toml"
    hf_start a "$dir/a-link.toml"
    hf_wait_state a web master 5 || fail "a not master (track_link = $tl)"
    lab_exec a ip link set eth0 down
    if [ $tl = false ]; then
        sleep 1
        [ "$(hf_field a "s['instances']['web']['state']")" = master ] || fail "track_link = false: a left master when eth0 went down"
    else
        hf_wait_state a web fault 3 || fail "track_link = true: a not in fault with eth0 down"
    fi
    lab_exec a ip link set eth0 up
    hf_stop a
done
pass "track_link = false: interface down, still master; true (default): fault"

# keepalived 2.2.7 (Debian's) and 2.4.3 (built from ../shared/third-party) as the
# other node, with the same configuration.
command -v keepalived >/dev/null || fail "keepalived is not installed (scripts/test installs it)"
KA243=$(keepalived_243) || fail "keepalived 2.4.3: not available"
want[2]='203.0.113.0/25 via 192.0.2.254 dev eth0 proto keepalived'
# keepalived 2.4.3 adds the IPv6 unreachable route but fails to delete it
# (RTM_DELROUTE: ESRCH, 2.2.7 deletes it): left out of keepalived's configuration
# and of what both must hold (hafront still adds and removes its own).
want[4]=''
ka_pid=""
for ka in "$(command -v keepalived)" "$KA243"; do
for role in master backup; do
    hprio=150 kprio=100 master=a other=b
    if [ $role = backup ]; then hprio=100 kprio=150 master=b other=a; fi
    conf a $hprio
    cat >"$dir/b.conf" <<CONF
global_defs {
  router_id lab-b
  vrrp_version 3
}
vrrp_instance web {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority $kprio
  advert_int 0.1
  virtual_ipaddress {
    $VIP/24
    $VIPD/24 dev eth2 label eth2:1 scope link
  }
  virtual_ipaddress_excluded {
    $VIPX/24
  }
  virtual_routes {
    0.0.0.0/0 via 192.0.2.254 dev eth0 table 100
    198.51.100.128/25 dev eth2 table 100 metric 7
    blackhole 203.0.113.128/25 table 1000
    203.0.113.0/25 via 192.0.2.254 table 101 no_track
  }
  virtual_rules {
    from 192.0.2.100/32 table 100 priority 100
    iif eth2 fwmark 16/255 table 1000 priority 101
    to 198.51.100.0/24 oif eth0 prohibit priority 102
  }
}
CONF
    hf_start a "$dir/a.toml"
    ip netns exec "$LAB-b" "$ka" -n -l -D -P -f "$dir/b.conf" -p "$dir/ka-$role.pid" -r "$dir/ka-$role-vrrp.pid" \
        >>"$dir/keepalived-b.log" 2>&1 &
    ka_pid=$!
    lab_track_pid "$ka_pid"
    wait_for 5 holds_all $master || fail "keepalived interop ($role): $master lacks some: $(routes $master)"
    sleep 1
    holds_none $other || fail "keepalived interop ($role): $other holds some: $(routes $other)"
    rej=$(hf_field a "sum(s['instances']['web']['counters']['rejected'].values())")
    [ "$rej" = 0 ] || fail "keepalived interop ($role): hafront rejected $rej adverts"
    lab_cut $master
    wait_for 5 holds_all $other || fail "keepalived interop ($role): $other lacks some after the cut: $(routes $other)"
    lab_heal $master
    wait_for 5 holds_none $other || fail "keepalived interop ($role): $other kept some after the heal: $(routes $other)"
    wait_for 3 holds_all $master || fail "keepalived interop ($role): $master lacks some after the heal: $(routes $master)"
    hf_stop a
    kill -TERM "$ka_pid" 2>/dev/null || true
    wait "$ka_pid" 2>/dev/null || true
    lab_untrack_pid "$ka_pid"
    lab_stop_named b keepalived
    wait_for 3 holds_none a || fail "a kept some after stop: $(routes a)"
    wait_for 3 holds_none b || fail "keepalived left some on b after stop: $(routes b)"
    pass "keepalived $("$ka" --version 2>&1 | head -1 | awk '{print $2}') as the other node, hafront $role: routes, rules and addresses follow the master"
done
done
