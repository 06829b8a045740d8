#!/bin/sh
# Guest script: hafront programs IPVS in a real kernel (Debian's, in qemu).
#   vm-tests/run --file target/release/hafront:/usr/local/bin/hafront vm-tests/ipvs.sh
# The guest is the director; a client and two real servers (nginx, or busybox httpd
# when the image has no nginx) live in
# network namespaces behind veths: client 198.51.100.10 -> VIP 203.0.113.100 (NAT)
# -> 192.0.2.11 / 192.0.2.12. Checks, with ipvsadm as the referee:
#  1. the table is exactly the configured one (ipvsadm -Sn), a foreign service stays;
#  2. traffic flows through the VIP to both real servers;
#  3. a weight change + SIGHUP is one SET_DEST, nothing re-created;
#  3b. a real server's check failing is exactly one netlink write (DEL_DEST), its
#     recovery one more (NEW_DEST): no dump, no rewrite (hafront's write counter);
#     both written on the checks' thread as the verdict is reached (inline_writes),
#     and the status shows the real server out, then back;
#  3c. changes made behind hafront's back (ipvsadm) are found at the periodic resync,
#     counted as drift, logged and repaired;
#  4. a restart with the same configuration writes nothing;
#  4b. a service removed from the configuration while hafront was down (crashed,
#     runtime_dir emptied as systemd does at every stop) is removed at start: the
#     ownership record is in state_dir; one left in runtime_dir by an older version
#     is found and moved to state_dir;
#  5. a kernel refusal is logged with the service named and retried;
#  6. SIGTERM removes hafront's services, and only those.
set -eu
PATH=/usr/local/bin:$PATH
log=/tmp/hafront.log
fail() {
    echo "FAIL: $*"
    echo "---- ipvsadm -Ln"; ipvsadm -Ln || true
    echo "---- hafront log"; tail -n 40 "$log" 2>/dev/null || true
    exit 1
}
pass() { echo "ok: $*"; }

# A real server's web server: nginx (its own config, pid and logs under /tmp), or
# busybox httpd. stop_rs ends it by its pid, so the master is what stops.
start_rs() {
    if command -v nginx >/dev/null; then
        mkdir -p /tmp/nginx-rs$1
        cat >/tmp/nginx-rs$1/nginx.conf <<NGINX
user root;
worker_processes 1;
pid /tmp/nginx-rs$1/nginx.pid;
error_log /tmp/nginx-rs$1/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path /tmp/nginx-rs$1/body;
    proxy_temp_path /tmp/nginx-rs$1/proxy;
    fastcgi_temp_path /tmp/nginx-rs$1/fastcgi;
    uwsgi_temp_path /tmp/nginx-rs$1/uwsgi;
    scgi_temp_path /tmp/nginx-rs$1/scgi;
    server { listen 192.0.2.1$1:80; root /www$1; }
}
NGINX
        ip netns exec rs$1 nginx -e /tmp/nginx-rs$1/error.log -c /tmp/nginx-rs$1/nginx.conf ||
            fail "nginx did not start on rs$1: $(cat /tmp/nginx-rs$1/error.log 2>/dev/null)"
    else
        ip netns exec rs$1 busybox httpd -p 80 -h /www$1
    fi
}
stop_rs() {
    if command -v nginx >/dev/null; then
        kill "$(cat /tmp/nginx-rs$1/nginx.pid)"
        i=0
        while [ -e /tmp/nginx-rs$1/nginx.pid ]; do
            i=$((i + 1)); [ $i -lt 50 ] || fail "nginx on rs$1 did not stop"; sleep 0.1
        done
    else
        kill "$(ip netns pids rs$1 | head -n 1)"
    fi
}
command -v nginx >/dev/null && server=nginx || server="busybox httpd"
echo "real servers: $server"

sysctl -qw net.ipv4.ip_forward=1
ip link add dir0 type dummy
ip link set dir0 up
ip addr add 203.0.113.1/24 dev dir0
ip link add br0 type bridge
ip link set br0 up
ip addr add 192.0.2.1/24 dev br0
for n in 1 2; do
    ip netns add rs$n
    ip link add rs$n-d type veth peer name eth0 netns rs$n
    ip link set rs$n-d master br0 up
    ip -n rs$n link set lo up
    ip -n rs$n link set eth0 up
    ip -n rs$n addr add 192.0.2.1$n/24 dev eth0
    # Replies go back through the director (NAT); no default route.
    ip -n rs$n route add 198.51.100.0/24 via 192.0.2.1
    mkdir -p /www$n
    echo "real server $n" >/www$n/index.html
    start_rs $n
done
ip netns add client
ip link add cl-d type veth peer name eth0 netns client
ip link set cl-d up
ip addr add 198.51.100.1/24 dev cl-d
ip -n client link set lo up
ip -n client link set eth0 up
ip -n client addr add 198.51.100.10/24 dev eth0
ip -n client route add 203.0.113.0/24 via 198.51.100.1

# A service hafront does not own: it must never be touched.
ipvsadm -A -t 203.0.113.200:443 -s rr
ipvsadm -a -t 203.0.113.200:443 -r 192.0.2.13:443 -m -w 1

write_config() { # weight of the second real server [check it: yes]
    rs2_check=""
    [ "${2:-}" = yes ] && rs2_check=', check = "rs2"'
    cat >/etc/hafront.toml <<CONF
runtime_dir = "/run/hafront"
[log]
level = "info,hafront::ipvs=debug"
[ipvs]
resync_interval = "${RESYNC:-2s}"
[vrrp.instances.web]
interface = "dir0"
vrid = 51
priority = 150
advert_interval = "100ms"
virtual_ips = ["203.0.113.100/24"]
[ipvs.services.web]
address = "203.0.113.100:80"
scheduler = "wrr"
forwarding = "nat"
master_of = "web"
real_servers = [ { address = "192.0.2.11:80", weight = 1 }, { address = "192.0.2.12:80", weight = $1$rs2_check } ]
[checks.rs2]
kind = "http"
url = "http://192.0.2.12/"
interval = "200ms"
timeout = "300ms"
rise = 1
fall = 1
warmup = "10ms"
[ipvs.services.dns]
address = "203.0.113.100:53"
protocol = "udp"
scheduler = "rr"
forwarding = "nat"
real_servers = [ { address = "192.0.2.11:53" } ]
[ipvs.services.mark]
fwmark = 5
scheduler = "sh"
scheduler_flags = ["sh-port"]
forwarding = "dr"
persistence = "60s"
persistence_prefix = 24
real_servers = [ { address = "192.0.2.11:0", weight = 3, upper_threshold = 100, lower_threshold = 10 } ]
CONF
}
expected() { # weight of the second real server; sorted ipvsadm -Sn
    sort <<EOF
-A -t 203.0.113.100:80 -s wrr
-a -t 203.0.113.100:80 -r 192.0.2.11:80 -m -w 1
-a -t 203.0.113.100:80 -r 192.0.2.12:80 -m -w $1
-A -u 203.0.113.100:53 -s rr
-a -u 203.0.113.100:53 -r 192.0.2.11:53 -m -w 1
-A -f 5 -s sh -p 60 -M 255.255.255.0 -b sh-port
-a -f 5 -r 192.0.2.11:0 -g -w 3
-A -t 203.0.113.200:443 -s rr
-a -t 203.0.113.200:443 -r 192.0.2.13:443 -m -w 1
EOF
}
table() { ipvsadm -Sn | sort; }
wait_table() { # weight: up to 10 s
    i=0
    while [ $i -lt 100 ]; do
        [ "$(table)" = "$(expected "$1")" ] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    echo "---- want"; expected "$1"; echo "---- have"; table
    return 1
}
start() {
    hafront run -c /etc/hafront.toml --no-env >>"$log" 2>&1 &
    pid=$!
}
count() { grep -c "$1" "$log" || true; }
# hafront's IPVS counters (writes, dumps, drift, ...: "sync" in its status, the same
# numbers as hafront_ipvs_*_total in its metrics).
sync_counter() {
    hafront status --runtime-dir /run/hafront --json 2>/dev/null |
        awk -v k="\"$1\":" '/"sync": \{/ { s = 1 } s && $1 == k { sub(",", "", $2); print $2; exit }'
}
wait_counter() { # name value: up to 5 s, then it must stay there for 1 s
    i=0
    until [ "$(sync_counter "$1")" = "$2" ]; do
        i=$((i + 1)); [ $i -lt 50 ] || return 1; sleep 0.1
    done
    sleep 1
    [ "$(sync_counter "$1")" = "$2" ]
}

write_config 2
start
wait_table 2 || fail "table differs from the configuration"
ipvsadm -Ln | grep -q 'FWM  5 sh (sh-port) persistent 60 mask 255.255.255.0' || fail "fwmark service flags"
pass "table is exactly the configured one; the foreign service is untouched"

# Thresholds are not in ipvsadm -S; read them from the kernel's listing.
ipvsadm -Ln --thresholds | grep -E '192.0.2.11:0 +100 +10' >/dev/null || fail "thresholds not set"

seen1=0 seen2=0
for _ in 1 2 3 4 5 6 7 8 9; do
    # (busybox wget crashes in this static build; a raw HTTP/1.0 request will do)
    body=$(printf 'GET / HTTP/1.0\r\n\r\n' | ip netns exec client nc -w 2 203.0.113.100 80 2>/dev/null || true)
    case $body in
    *"real server 1"*) seen1=$((seen1 + 1)) ;;
    *"real server 2"*) seen2=$((seen2 + 1)) ;;
    esac
done
[ $seen1 -gt 0 ] && [ $seen2 -gt 0 ] || fail "traffic through the VIP: rs1=$seen1 rs2=$seen2 of 9"
[ $seen2 -gt $seen1 ] || fail "wrr 1:2 not honoured: rs1=$seen1 rs2=$seen2"
pass "client reaches both real servers through the VIP (rs1=$seen1 rs2=$seen2, wrr 1:2)"

# 3. Weight change: exactly one edit, no add/delete.
before_new=$(count 'op=add service')
before_del=$(count 'op=delete')
before_edit=$(count 'op=edit')
write_config 5
kill -HUP "$pid"
wait_table 5 || fail "weight change not applied"
sleep 0.5
[ "$(count 'op=edit real server 192.0.2.12:80')" = 1 ] || fail "weight change was not one SET_DEST"
[ "$(count 'op=edit')" = $((before_edit + 1)) ] || fail "more than one edit"
[ "$(count 'op=add service')" = "$before_new" ] || fail "a service was re-created on reload"
[ "$(count 'op=delete')" = "$before_del" ] || fail "something was deleted on reload"
pass "weight change: one SET_DEST, nothing re-created"

# 3b. A real server with a health check: its web server stops -> removed; it
# comes back -> added again.
# No periodic read during this step: a flip must not read the table either.
RESYNC=1h write_config 5 yes
kill -HUP "$pid"
sleep 1
wait_table 5 || fail "adding a check changed the table"
sleep 1.5
writes=$(sync_counter writes)
dumps=$(sync_counter dumps)
inline=$(sync_counter inline_writes)
[ -n "$writes" ] || fail "no IPVS write counter in hafront status --json"
[ -n "$inline" ] || fail "no inline_writes counter in hafront status --json"
# The status's entry for rs2: its weight in the desired table (null: not in it).
# (Keys come sorted: address, ..., weight, the last before the array's end.)
rs2_weight() {
    hafront status --runtime-dir /run/hafront --json 2>/dev/null | tr -d ' \n' |
        grep -o '"address":"192.0.2.12:80"[^]]*' | grep -o '"weight":[0-9a-z]*' | head -n 1 | sed 's/.*://'
}
stop_rs 2
i=0
until ! ipvsadm -Sn | grep -q '192.0.2.12:80'; do
    i=$((i + 1)); [ $i -lt 50 ] || fail "real server 192.0.2.12 not removed when its check failed"; sleep 0.1
done
wait_counter writes $((writes + 1)) || fail "a check going down was not exactly one netlink write: $writes -> $(sync_counter writes)"
[ "$(sync_counter inline_writes)" = $((inline + 1)) ] ||
    fail "a check going down was not written on the checks' thread: inline_writes $inline -> $(sync_counter inline_writes)"
[ "$(rs2_weight)" = null ] || fail "status still shows 192.0.2.12 in the table after its check failed: weight $(rs2_weight)"
start_rs 2
wait_table 5 || fail "real server 192.0.2.12 not restored when its check recovered"
wait_counter writes $((writes + 2)) || fail "a check coming back was not exactly one netlink write: $writes -> $(sync_counter writes)"
[ "$(sync_counter inline_writes)" = $((inline + 2)) ] ||
    fail "a check coming back was not written on the checks' thread: inline_writes $inline -> $(sync_counter inline_writes)"
[ "$(rs2_weight)" = 5 ] || fail "status does not show 192.0.2.12 back after its check recovered: weight $(rs2_weight)"
[ "$(sync_counter dumps)" = "$dumps" ] || fail "a check flip read the kernel table: dumps $dumps -> $(sync_counter dumps)"
pass "health check: failed real server removed, restored when it recovers; one netlink write each, on the checks' thread, no table read; the status follows"
write_config 5 yes
kill -HUP "$pid"

# 3c. Drift: ipvsadm edits a weight and deletes a real server of hafront's
# services; the next resync (every 2 s here) finds both, counts, logs and repairs them.
drift=$(sync_counter drift)
writes=$(sync_counter writes)
ipvsadm -e -t 203.0.113.100:80 -r 192.0.2.11:80 -m -w 7
ipvsadm -d -u 203.0.113.100:53 -r 192.0.2.11:53
wait_table 5 || fail "changes made behind hafront's back were not repaired"
wait_counter drift $((drift + 2)) || fail "drift not counted: $drift -> $(sync_counter drift), want +2"
wait_counter writes $((writes + 2)) || fail "drift repair was not two writes: $writes -> $(sync_counter writes)"
grep -q "IPVS table changed behind hafront's back.*entries=" "$log" || fail "drift not logged"
pass "drift made with ipvsadm: found at resync, counted (2), logged, repaired in 2 writes"
write_config 5
kill -HUP "$pid"
sleep 0.5

# 4. Restart (SIGKILL, as a crash) with the same configuration: zero writes.
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
ops_before=$(count 'op=')
echo "---- restart" >>"$log"
start
i=0
until grep -q 'state changed.*state="master"' "$log" 2>/dev/null && [ "$(grep -c 'state="master"' "$log")" -ge 2 ]; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "no master after restart"; sleep 0.1
done
sleep 2   # a few reconcile passes
[ "$(count 'op=')" = "$ops_before" ] || fail "restart with an unchanged configuration wrote to IPVS: $(sed -n '/---- restart/,$p' "$log" | grep 'op=')"
wait_table 5 || fail "table changed across a restart"
pass "restart with the same configuration: zero IPVS writes"

# 4b. Which services are hafront's survives a crash and an emptied runtime_dir.
state=/var/lib/hafront
drop_dns() { sed -i '/^\[ipvs.services.dns\]/,/^real_servers/d' /etc/hafront.toml; }
dns_gone() {
    i=0
    while ipvsadm -Sn | grep -q '203.0.113.100:53'; do
        i=$((i + 1)); [ $i -lt 100 ] || return 1; sleep 0.1
    done
}
crash() { kill -KILL "$pid"; wait "$pid" 2>/dev/null || true; }
crash
[ -s "$state/ipvs-owned.json" ] || fail "no ownership record in state_dir ($state)"
[ ! -e /run/hafront/ipvs-owned.json ] || fail "an ownership record in runtime_dir"
rm -rf /run/hafront   # systemd's RuntimeDirectoryPreserve=no, at every stop
drop_dns
echo "---- restart, dns removed while down" >>"$log"
start
dns_gone || fail "the udp service removed from the configuration while hafront was down stayed in the kernel"
ipvsadm -Sn | grep -q '203.0.113.200:443' || fail "the foreign service went too"
pass "service removed while hafront was down (runtime_dir emptied) is removed at start: ownership is in state_dir"
# As an older version left it: the record in runtime_dir, none in state_dir.
write_config 5
kill -HUP "$pid"
wait_table 5 || fail "dns service not restored"
sleep 0.5
crash
mkdir -p /run/hafront
mv "$state/ipvs-owned.json" /run/hafront/ipvs-owned.json
drop_dns
echo "---- restart, record in runtime_dir" >>"$log"
start
dns_gone || fail "with the record an older version left in runtime_dir, the removed service stayed"
[ -s "$state/ipvs-owned.json" ] && [ ! -e /run/hafront/ipvs-owned.json ] ||
    fail "the record was not moved from runtime_dir to state_dir"
pass "a record left in runtime_dir by an older version is found and moved to state_dir"
write_config 5
kill -HUP "$pid"
wait_table 5 || fail "dns service not restored"

# 5. A kernel refusal (scheduler "twos" is not in this kernel): logged with the
# service named, retried with backoff, the daemon and the other services unharmed.
cat >>/etc/hafront.toml <<'CONF'
[ipvs.services.odd]
address = "203.0.113.100:8080"
scheduler = "twos"
real_servers = [ { address = "192.0.2.11:8080" } ]
CONF
kill -HUP "$pid"
sleep 3
fails=$(grep -c 'IPVS operation failed.*service=tcp 203.0.113.100:8080' "$log" || true)
[ "$fails" -ge 2 ] || fail "kernel refusal not logged with the service and retried (seen $fails)"
kill -0 "$pid" || fail "hafront died on a kernel refusal"
wait_table 5 || fail "a failing service disturbed the others"
pass "kernel refusal: logged with the service named, retried ($fails attempts in 3 s), others intact"

# 6. SIGTERM: hafront's services go, the foreign one stays.
kill -TERM "$pid"
wait "$pid" 2>/dev/null || true
[ "$(ipvsadm -Sn | sort)" = "$(printf '%s\n' '-A -t 203.0.113.200:443 -s rr' '-a -t 203.0.113.200:443 -r 192.0.2.13:443 -m -w 1' | sort)" ] ||
    fail "after stop, want only the foreign service"
pass "stop removed hafront's services only"
echo "ipvs: all passed"
