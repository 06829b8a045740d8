# shellcheck shell=bash
# keepalived with use_vmac as the other node of a use_vmac lab test
# (test_vmac.sh, test_vmac6.sh), in both roles, with keepalived 2.2.7 (Debian's)
# and 2.4.3 (built from ../shared/third-party).
#
# vmac_keepalived_interop INSTANCE VRID VIP/PREFIX GLOBAL_LINE NEIGH_ROLES
#   GLOBAL_LINE: an extra global_defs line; NEIGH_ROLES: the hafront roles in which
#   the client's neighbour entry must be the virtual MAC ("master backup", or
#   "master" where keepalived's own replies may teach the base's MAC).
# The test defines: conf NODE PRIO (hafront's configuration in $dir/NODE.toml),
# has NODE (holds the VIP), ping_vip, neigh_mac, and sets VMAC and VIP.

# Source MAC of the next VRRP advert seen by the client (AF_PACKET, 5 s at most),
# of the family of $VIP.
advert_src() {
    local six=0
    [[ $VIP == *:* ]] && six=1
    lab_exec c python3 - "$six" <<'PY'
import socket, sys, time
six = sys.argv[1] == "1"
# IPv4: protocol at byte 23 (14 + 9); IPv6: next header at byte 20 (14 + 6).
ethertype, at = (0x86DD, 20) if six else (0x0800, 23)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ethertype))
s.bind(("eth0", 0))
s.settimeout(5)
end = time.time() + 5
while time.time() < end:
    f = s.recv(2048)
    if len(f) > 34 and f[at] == 112:  # VRRP
        print(":".join("%02x" % b for b in f[6:12]))
        sys.exit(0)
sys.exit(1)
PY
}

vmac_keepalived_interop() {
    local inst=$1 vrid=$2 vip=$3 global=$4 neigh_roles=$5
    local ka243 ka role hprio kprio master other ka_pid src rej
    ka243=$(keepalived_243) || fail "keepalived 2.4.3: not available"
    command -v keepalived >/dev/null || fail "keepalived not installed (scripts/test installs it)"
    for ka in "$(command -v keepalived)" "$ka243"; do
        for role in master backup; do
            hprio=150 kprio=100 master=a other=b
            if [ $role = backup ]; then hprio=100 kprio=150 master=b other=a; fi
            conf a $hprio
            cat >"$dir/b.conf" <<CONF
global_defs {
  router_id lab-b
  vrrp_version 3
  $global
}
vrrp_instance $inst {
  state BACKUP
  interface eth0
  use_vmac
  virtual_router_id $vrid
  priority $kprio
  advert_int 0.1
  virtual_ipaddress {
    $vip
  }
}
CONF
            hf_start a "$dir/a.toml"
            ip netns exec "$LAB-b" "$ka" -n -l -D -P -f "$dir/b.conf" -p "$dir/ka-$role.pid" -r "$dir/ka-$role-vrrp.pid" \
                >>"$dir/keepalived-b.log" 2>&1 &
            ka_pid=$!
            lab_track_pid "$ka_pid"
            for _ in $(seq 100); do has $master && ! has $other && break; sleep 0.1; done
            sleep 1
            has $master || fail "keepalived interop ($role): VIP not on $master"
            has $other && fail "keepalived interop ($role): VIP on both"
            ping_vip || fail "keepalived interop ($role): client cannot reach the VIP"
            if [[ " $neigh_roles " == *" $role "* ]]; then
                [ "$(neigh_mac)" = "$VMAC" ] || fail "keepalived interop ($role): neighbour entry $(neigh_mac), want $VMAC"
            fi
            src=$(advert_src) || fail "keepalived interop ($role): no advert seen"
            [ "$src" = "$VMAC" ] || fail "keepalived interop ($role): advert source MAC $src"
            rej=$(hf_field a "sum(s['instances']['$inst']['counters']['rejected'].values())")
            [ "$rej" = 0 ] || fail "keepalived interop ($role): hafront rejected $rej adverts"
            if [ $role = backup ]; then # a backup keepalived is silent
                [ "$(hf_field a "s['instances']['$inst']['counters']['adverts_received']")" -gt 0 ] ||
                    fail "keepalived interop ($role): hafront received no adverts"
            fi
            lab_cut $master
            for _ in $(seq 60); do has $other && break; sleep 0.1; done
            has $other || fail "keepalived interop ($role): VIP did not move to $other"
            lab_heal $master
            for _ in $(seq 100); do has $master && ! has $other && break; sleep 0.1; done
            has $master || fail "keepalived interop ($role): $master did not take the VIP back"
            hf_stop a
            kill -TERM "$ka_pid" 2>/dev/null || true
            wait "$ka_pid" 2>/dev/null || true
            lab_untrack_pid "$ka_pid"
            lab_stop_named b keepalived
            pass "keepalived $("$ka" --version 2>&1 | head -1 | awk '{print $2}') with use_vmac ($inst), hafront $role"
        done
    done
}
