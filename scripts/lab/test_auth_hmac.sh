#!/usr/bin/env bash
# Signed adverts (auth_hmac, issue 20 §1) against keepalived 2.4.3 built from
# ../shared/third-party (build-keepalived builds it on a fresh machine, ~2 min).
#  1. VRRPv3 multicast, hafront master + keepalived backup, both signing: both keep
#     their roles; a key rotation on hafront (keys 1+2, active 1 -> 2) moves no one;
#     keepalived with a wrong key rejects hafront's adverts and takes over, and
#     hafront counts keepalived's adverts as bad MACs.
#  1b. The same over IPv6 (keepalived's checksum covers the trailer there).
#  2. VRRPv2 unicast, keepalived master + hafront backup: both keep their roles
#     (hafront verifies every advert); keepalived rotates to key 2 (SIGHUP) with no
#     transition; a captured keepalived advert sent again is rejected as a replay;
#     hafront with a wrong key rejects keepalived's adverts and takes over.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$here/../lib/lab.sh"
source "$here/../lib/hafront.sh"
hf_build
KA=$(keepalived_243) || fail "keepalived 2.4.3: not available"
lab_up
dir=$(lab_logdir)
K1=hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
K2=hex:202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f
KX=hex:ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100
VIP=192.0.2.100

ka_pid="" ka_run=0
ka_start() { # conf — keepalived on b, fresh pid files per run
    ka_run=$((ka_run + 1))
    ip netns exec "$LAB-b" "$KA" -n -l -D -P -f "$1" -p "$dir/ka-$ka_run.pid" -r "$dir/ka-$ka_run-vrrp.pid" \
        >>"$dir/keepalived-b.log" 2>&1 &
    ka_pid=$!
    lab_track_pid "$ka_pid"
}
ka_stop() {
    [ -n "$ka_pid" ] || return 0
    kill -TERM "$ka_pid" 2>/dev/null || true
    wait "$ka_pid" 2>/dev/null || true
    lab_untrack_pid "$ka_pid"
    lab_stop_named b keepalived
    ka_pid=""
}
ka_conf() { # version prio advert_int active_key "key lines" [unicast]
    local uni=""
    [ "${6:-}" = unicast ] && uni=$'unicast_src_ip 192.0.2.2\n  unicast_peer {\n    192.0.2.1\n  }'
    cat <<CONF
global_defs {
  router_id lab-b
  vrrp_version $1
}
vrrp_instance web {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority $2
  advert_int $3
  $uni
  auth_hmac {
    $5
    active_key $4
  }
  virtual_ipaddress {
    $VIP/24
  }
}
CONF
}
hf_hmac() { # active_key key-table-entries...
    local active=$1 keys
    shift
    keys=$(IFS=,; echo "$*")
    printf '[vrrp.instances.web.auth_hmac]\nkeys = [%s]\nactive_key = %s\n' "$keys" "$active"
}
rejected() { hf_field a "s['instances']['web']['counters']['rejected'].get('$1', 0)"; }
counter() { hf_field a "s['instances']['web']['counters']['$1']"; }
ka_auth_errors() { grep -ci 'authentication\|HMAC\|trailer\|checksum' "$dir/keepalived-b.log" || true; }

# ---- 1. VRRPv3 multicast, hafront master
echo "-- VRRPv3 multicast, hafront master"
{ hf_conf a web 51 150 3 1s "\"$VIP/24\""; hf_hmac 1 "{ id = 1, key = \"$K1\" }" "{ id = 2, key = \"$K2\" }"; } >"$dir/a.toml"
ka_conf 3 100 1 1 $'key 1 '"$K1"$'\n    key 2 '"$K2" >"$dir/b.conf"
hf_start a "$dir/a.toml"
hf_wait_state a web master 5 || fail "hafront not master"
ka_start "$dir/b.conf"
sleep 3
[ "$(lab_vip_holder $VIP)" = a ] || fail "v3: VIP holder $(lab_vip_holder $VIP), want a (keepalived rejected signed adverts?)"
[ "$(ka_auth_errors)" = 0 ] || fail "keepalived rejected hafront's signed adverts: $(grep -i 'authentication\|HMAC' "$dir/keepalived-b.log" | head -3)"
pass "v3 multicast: hafront master, keepalived backup, both signing"

# Rotation on the sender: active key 1 -> 2, keepalived knows both.
{ hf_conf a web 51 150 3 1s "\"$VIP/24\""; hf_hmac 2 "{ id = 1, key = \"$K1\" }" "{ id = 2, key = \"$K2\" }"; } >"$dir/a.toml"
kill -HUP "${HF_PID[a]}"
sleep 2
[ "$(lab_vip_holder $VIP)" = a ] || fail "rotation: VIP holder $(lab_vip_holder $VIP), want a"
[ "$(ka_auth_errors)" = 0 ] || fail "keepalived rejected adverts after the rotation: $(grep -i 'authentication\|HMAC' "$dir/keepalived-b.log" | head -3)"
grep -q 'Entering MASTER' "$dir/keepalived-b.log" && fail "keepalived became master during the rotation"
[ "$(counter release_master)" = 0 ] || fail "hafront left mastership during the rotation"
pass "v3: key rotation on hafront, no transition"

# keepalived with a wrong key: it rejects hafront's adverts and takes over.
ka_stop
ka_conf 3 100 1 9 "key 9 $KX" >"$dir/b.conf"
ka_start "$dir/b.conf"
lab_wait_vip b $VIP 8 || fail "keepalived with a wrong key did not take over"
for _ in $(seq 50); do [ "$(rejected auth_hmac_unknown_key)" -gt 0 ] && break; sleep 0.1; done
[ "$(rejected auth_hmac_unknown_key)" -gt 0 ] || fail "hafront did not count keepalived's key-9 adverts: $(hf_field a "s['instances']['web']['counters']['rejected']")"
[ "$(counter adverts_received)" = 0 ] || fail "hafront accepted an advert signed with an unknown key"
grep -qi 'authentication' "$dir/keepalived-b.log" || fail "keepalived logged no authentication failure"
pass "v3: wrong key on keepalived: it rejects and takes over; hafront counts unknown_key"
ka_stop
hf_stop a
lab_exec a ip addr del "$VIP/24" dev eth0 2>/dev/null || true
lab_exec b ip addr del "$VIP/24" dev eth0 2>/dev/null || true

# ---- 1b. VRRPv3 IPv6 (the checksum covers the trailer there): hafront master
echo "-- VRRPv3 IPv6 multicast, hafront master"
{ hf_conf a web 51 150 3 1s '"2001:db8::100/64"'; hf_hmac 1 "{ id = 1, key = \"$K1\" }"; } >"$dir/a.toml"
ka_conf 3 100 1 1 "key 1 $K1" | sed 's|192.0.2.100/24|2001:db8::100/64|' >"$dir/b.conf"
: >"$dir/keepalived-b.log"
hf_start a "$dir/a.toml"
lab_wait_vip a 2001:db8::100 10 || fail "IPv6: hafront did not take the VIP"
ka_start "$dir/b.conf"
sleep 2
[ "$(lab_vip_holder 2001:db8::100)" = a ] || fail "IPv6: VIP holder $(lab_vip_holder 2001:db8::100), want a"
[ "$(ka_auth_errors)" = 0 ] || fail "IPv6: keepalived rejected hafront's adverts: $(grep -i 'authentication\|HMAC\|checksum' "$dir/keepalived-b.log" | head -3)"
grep -q 'Entering MASTER' "$dir/keepalived-b.log" && fail "IPv6: keepalived became master"
ka_stop
hf_stop a
pass "v3 IPv6 multicast: hafront master, keepalived backup"

# ---- 2. VRRPv2 unicast, keepalived master
echo "-- VRRPv2 unicast, keepalived master"
ka_conf 2 150 1 1 $'key 1 '"$K1"$'\n    key 2 '"$K2" unicast >"$dir/b.conf"
ka_start "$dir/b.conf"
lab_wait_vip b $VIP 8 || fail "keepalived did not become master"
hfa() { # active keys...
    local active=$1
    shift
    { hf_conf a web 51 100 2 1s "\"$VIP/24\"" 'unicast_peers = ["192.0.2.2"]'; hf_hmac "$active" "$@"; } >"$dir/a.toml"
}
hfa 1 "{ id = 1, key = \"$K1\" }" "{ id = 2, key = \"$K2\" }"
hf_start a "$dir/a.toml"
hf_wait_state a web backup 5 || fail "hafront not backup"
sleep 4
[ "$(hf_field a "s['instances']['web']['state']")" = backup ] || fail "v2 unicast: hafront left backup"
[ "$(lab_vip_holder $VIP)" = b ] || fail "v2 unicast: VIP holder $(lab_vip_holder $VIP), want b"
[ "$(counter adverts_received)" -gt 2 ] || fail "hafront accepted no signed v2 adverts"
[ "$(hf_field a "sum(s['instances']['web']['counters']['rejected'].values())")" = 0 ] ||
    fail "hafront rejected keepalived's adverts: $(hf_field a "s['instances']['web']['counters']['rejected']")"
pass "v2 unicast: keepalived master, hafront backup verifying"

# Rotation on keepalived (the sender): active key 2, SIGHUP.
ka_conf 2 150 1 2 $'key 1 '"$K1"$'\n    key 2 '"$K2" unicast >"$dir/b.conf"
kill -HUP "$ka_pid"
sleep 4
[ "$(counter become_master)" = 0 ] || fail "hafront became master during keepalived's rotation"
[ "$(hf_field a "sum(s['instances']['web']['counters']['rejected'].values())")" = 0 ] ||
    fail "rotation: hafront rejected: $(hf_field a "s['instances']['web']['counters']['rejected']")"
pass "v2: key rotation on keepalived, no transition"

# Replay: a captured advert of keepalived's, sent again from b's address.
cap=$(lab_exec a python3 "$here/../lib/vrrp_capture.py" --src 192.0.2.2 --timeout 4) || fail "no advert captured"
hex=${cap##* }
[ $(( ${#hex} / 2 )) = $((8 + 4 + 8 + 28)) ] || fail "captured advert is ${#hex} hex digits, want a signed v2 advert"
before=$(rejected auth_hmac_replay)
lab_exec b python3 "$here/../lib/vrrp_send.py" --src 192.0.2.2 --dst 192.0.2.1 --hex "$hex" raw
for _ in $(seq 30); do [ "$(rejected auth_hmac_replay)" -gt "$before" ] && break; sleep 0.1; done
[ "$(rejected auth_hmac_replay)" -gt "$before" ] || fail "the replayed advert was not rejected as a replay: $(hf_field a "s['instances']['web']['counters']['rejected']")"
[ "$(hf_field a "s['instances']['web']['state']")" = backup ] || fail "hafront left backup"
pass "v2: replayed captured advert rejected (auth_hmac_replay)"

# hafront with a wrong key: it rejects keepalived's adverts and takes over.
hfa 3 "{ id = 3, key = \"$KX\" }"
kill -HUP "${HF_PID[a]}"
hf_wait_state a web master 8 || fail "hafront with a wrong key did not take over"
[ "$(rejected auth_hmac_unknown_key)" -gt 0 ] || fail "hafront did not count unknown keys"
pass "v2: wrong key on hafront: it rejects keepalived's adverts and takes over"
ka_stop
hf_stop a
