#!/bin/sh
# Guest: system calls per TCP probe of hafront's checks' thread and keepalived's
# checker, counted with `strace -c` over a window (docs/benchmarks.md, "Checks per
# probe"). In the TCG guest the clocksource is the HPET, so every clock read is a
# system call that strace counts (on the host they are vDSO calls it cannot see).
#   vm-tests/run --file target/release/hafront:/usr/local/bin/hafront \
#       --file /usr/sbin/keepalived:/usr/local/bin/keepalived \
#       --file /usr/sbin/nginx:/usr/local/bin/nginx --file /usr/bin/strace:/usr/local/bin/strace \
#       [--file OLD:/usr/local/bin/hafront-old] \
#       vm-tests/checks-syscalls.sh [SECONDS [DAEMONS [TARGETS]]]   # defaults 30, "hafront keepalived", "up down"
# The 100 TCP checks of vm-tests/bench-ipvs-keepalived.sh (one every 100 ms with a
# 200 ms timeout, 99 every 1 s with 500 ms) against nginx on 203.0.113.10-109:8080;
# one real server per service (the checked one: the checks' cost does not depend on
# the table). TARGETS up: nginx answers; down: every target's address removed (the
# SYN is dropped by the dummy interface: each probe times out). Probes: the connects.
# Prints "RESULT <daemon> <targets> probes=N per_probe=... <syscall>=<per probe> ...".
set -eu
PATH=/usr/local/bin:$PATH
secs=${1:-30}
daemons=${2:-hafront keepalived}
modes=${3:-up down}
fail() { echo "FAIL: $*"; exit 1; }
for c in strace nginx; do command -v $c >/dev/null || fail "no $c in the guest (--file)"; done

ip link add dir0 type dummy; ip link set dir0 up; ip addr add 203.0.113.1/24 dev dir0
targets_up() { s=1; while [ $s -le 100 ]; do ip addr add 203.0.113.$((9 + s))/32 dev dir0 2>/dev/null || true; s=$((s + 1)); done; }
targets_down() { s=1; while [ $s -le 100 ]; do ip addr del 203.0.113.$((9 + s))/32 dev dir0 2>/dev/null || true; s=$((s + 1)); done; }
targets_up
mkdir -p /tmp/nginx /run/hafront /run/keepalived
cat >/tmp/nginx/nginx.conf <<NGINX
user root;
worker_processes 1; pid /tmp/nginx/nginx.pid; error_log /tmp/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off; client_body_temp_path /tmp/nginx; proxy_temp_path /tmp/nginx;
    fastcgi_temp_path /tmp/nginx; uwsgi_temp_path /tmp/nginx; scgi_temp_path /tmp/nginx;
    server { listen 8080 backlog=4096; location / { return 200 "hi\\n"; } }
}
NGINX
nginx -e /tmp/nginx/error.log -c /tmp/nginx/nginx.conf || fail "nginx did not start"

awk 'BEGIN {
    print "runtime_dir = \"/run/hafront\"\nstate_dir = \"/tmp/hafront-state\"\n[log]\nlevel = \"info\"\n[ipvs]\nresync_interval = \"1h\""
    for (s = 1; s <= 100; s++) {
        iv = (s == 1) ? "100ms" : "1s"; to = (s == 1) ? "200ms" : "500ms"
        print "[checks.c" s "]\nkind = \"tcp\"\ntarget = \"203.0.113." 9 + s ":8080\"\ninterval = \"" iv "\"\ntimeout = \"" to "\"\nrise = 1\nfall = 1"
        print "[ipvs.services.s" s "]\naddress = \"198.51.100." s ":80\"\nscheduler = \"wrr\"\nforwarding = \"nat\"\nreal_servers = [ { address = \"192.0.2.1:80\", check = \"c" s "\" } ]"
    }
}' >/tmp/h.toml
awk 'BEGIN {
    print "global_defs {\n  router_id bench\n}"
    for (s = 1; s <= 100; s++) {
        iv = (s == 1) ? "0.1" : "1"; to = (s == 1) ? "0.2" : "0.5"
        print "virtual_server 198.51.100." s " 80 {\n  delay_loop " iv "\n  lb_algo wrr\n  lb_kind NAT\n  protocol TCP"
        print "  real_server 192.0.2.1 80 {\n    weight 1\n    TCP_CHECK {\n      connect_ip 203.0.113." 9 + s "\n      connect_port 8080\n      connect_timeout " to "\n      retry 0\n    }\n  }\n}"
    }
}' >/tmp/k.conf

# count NAME MODE PID: strace -c of PID (a thread or a process) for $secs, per probe.
count() {
    strace -c -o /tmp/strace.$1.$2 -p "$3" 2>/dev/null &
    sp=$!
    sleep "$secs"
    kill -INT $sp; wait $sp || true
    awk -v n="$1" -v m="$2" '
    NF >= 5 && $NF ~ /^[a-z_0-9]+$/ && $NF != "syscall" && $NF != "total" && $4 ~ /^[0-9]+$/ { c[$NF] = $4; t += $4 }
    END {
        p = c["connect"]; if (p == 0) p = 1
        printf "RESULT %s %s probes=%d per_probe=%.2f", n, m, c["connect"], t / p
        for (k in c) printf " %s=%.2f", k, c[k] / p
        printf "\n" }' /tmp/strace.$1.$2
}
run_mode() { # run_mode NAME MODE PID
    if [ "$2" = down ]; then targets_down; else targets_up; fi
    sleep 3
    count "$@"
}
for d in $daemons; do
    for m in $modes; do
        targets_up
        case $d in
        hafront | hafront-old)
            command -v $d >/dev/null || continue
            rm -rf /tmp/hafront-state
            $d run -c /tmp/h.toml --no-env >/tmp/$d.log 2>&1 &
            pid=$!
            sleep 8
            tid=$(grep -lx hafront-checks /proc/$pid/task/*/comm | head -1 | cut -d/ -f5)
            [ -n "$tid" ] || { tail -5 /tmp/$d.log; fail "$d: no hafront-checks thread"; }
            run_mode $d $m $tid
            kill -TERM $pid; wait $pid || true
            ;;
        keepalived)
            keepalived -n -l -C -f /tmp/k.conf -p /run/keepalived/k.pid -c /run/keepalived/c.pid >/tmp/keepalived.log 2>&1 &
            pid=$!
            sleep 8
            cpid=$(cat /run/keepalived/c.pid 2>/dev/null || true)
            [ -n "$cpid" ] || { tail -5 /tmp/keepalived.log; fail "keepalived: no checker"; }
            run_mode keepalived $m $cpid
            kill -TERM $pid; wait $pid || true
            ipvsadm -C
            ;;
        *) fail "unknown daemon $d" ;;
        esac
    done
done
echo "RESULT load $(cut -d' ' -f1-3 /proc/loadavg) (guest)"
