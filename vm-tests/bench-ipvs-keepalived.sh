#!/bin/sh
# Guest benchmark (issue 16): hafront and keepalived side by side in one VM boot, each
# programming the same 100 services x 100 real servers (10,000 destinations, NAT) and
# checking real servers with TCP checks; run through scripts/bench-ipvs --keepalived, or:
#   vm-tests/run --file target/release/hafront:/usr/local/bin/hafront \
#       --file /usr/sbin/keepalived:/usr/local/bin/keepalived \
#       --file "$(command -v date)":/usr/local/bin/date \
#       [--file OLD:/usr/local/bin/hafront-old] [--file /usr/sbin/nginx:/usr/local/bin/nginx] \
#       vm-tests/bench-ipvs-keepalived.sh [FLIPS [CPU_SECONDS [DAEMONS [MODE]]]]   # defaults 50 60
#   DAEMONS: which to run, in order (default "hafront keepalived hafront-old"; hafront-old
#   only when that binary was given).
#   MODE: "poll" (default) or "quiet": no ipvsadm poll during the flips (each fault and
#   repair waits 1 s, then the table is checked once), so nothing but the daemon and its
#   checks runs while the trace times verdict -> kernel; the polled fault -> kernel
#   figures are then not measured.
#
# Each daemon (hafront, then keepalived, then hafront-old when given) runs alone with:
# - service s1's first real server following a TCP check of 203.0.113.10:8080 every
#   100 ms (timeout 200 ms, one failure = down, one success = up: keepalived's
#   delay_loop 0.1, connect_timeout 0.2, retry 0);
# - the first real server of services s2..s100 following its own TCP check of
#   203.0.113.(9+s):8080 every 1 s (timeout 500 ms): 100 checked real servers, 1 %
#   of the table. (Timeouts this long so that a loaded TCG guest does not flap them.)
#   First checks spread over one interval on both (hafront's default `warmup` =
#   interval, keepalived's default warmup = delay_loop): an earlier version set
#   hafront's to 10 ms, which sent its 99 one-second checks in one burst every second,
#   so they timed out and flapped on their own (~10x the verdicts keepalived had).
# Both log to a file (keepalived: -l -G, no syslog: the serial console is slow).
# The checks' target on :8080 is nginx when given (one worker, no fork per
# connection), else busybox httpd, which forks a child per connection and listens
# with a small backlog: ~110 connections a second then cost the guest more than the
# daemons do, and bursts overflow the backlog (a dropped SYN is a 1 s retransmit, a
# timeout: checks flap on their own). A fault removes the target address (the
# connect times out), a repair adds it back.
# 1. Latency, FLIPS times: fault at t0 (clock read just before `ip addr del`), then
#    `ipvsadm -Ln -t 198.51.100.1:80` polled until 192.0.2.1:80 has left the kernel
#    table (t1); the same for the repair. fault -> kernel = t1 - t0: the check's
#    detection (same settings on both) + the daemon's verdict -> kernel + the poll's
#    resolution (an ipvsadm run, ~10-20 ms in TCG, the same for both), printed for
#    all flips and for faults (down) and repairs (up) apart. hafront also logs how
#    long each write took (write_ms of the pass).
#    The issue's measure, verdict -> kernel updated, for both daemons on the kernel's
#    clock (kprobes, below: "trace_*" lines): from the close of the check's socket
#    that decided (the timed-out connect, or the first that answered) to the return
#    of the kernel's IPVS set command; also to its entry, and fault -> kernel on the
#    same clock. No poll, no daemon's own log. Each figure also gives p90, p95 and
#    the samples over 3 and 5 ms; a "SAMPLES" line lists every verdict -> kernel, so
#    that boots can be pooled.
# 2. CPU, two windows of CPU_SECONDS each: "idle" (the 100 checks running, nothing
#    injected) then "flapping" (the 100 checked real servers flap: one target toggled
#    every 100 ms in turn, each down/up every 10 s, 10 verdicts a second, 1 % of the
#    table). The daemon's CPU time over each window: utime+stime of the process and
#    of its children, live (keepalived's checker and VRRP children) and reaped
#    (cutime+cstime), from /proc; hafront's per thread as well (hafront-checks,
#    hafront-ipvs, the runtime's workers). With the verdicts each window saw (hafront:
#    "check down/up" lines; keepalived: "Removing/Adding service" lines): verdicts
#    beyond the toggles are checks that flapped on their own. The flapping window's
#    CPU minus the idle window's, per injected toggle, is what an event costs.
# Prints "RESULT <daemon> <measure> ..." lines.
set -eu
PATH=/usr/local/bin:$PATH
flips=${1:-50}
cpu_secs=${2:-60}
daemons=${3:-hafront keepalived hafront-old}
mode=${4:-poll}
case $mode in poll | quiet) ;; *) echo "FAIL: MODE is poll or quiet, not '$mode'" >&2; exit 2 ;; esac
fail() { echo "FAIL: $*"; exit 1; }
now() { date +%s%N; }
case $(now) in *N | *%*) fail "no date +%N here: pass coreutils' date (--file)" ;; esac
case " $daemons " in
*" keepalived "*) command -v keepalived >/dev/null || fail "no keepalived in the guest (--file /usr/sbin/keepalived:/usr/local/bin/keepalived)" ;;
esac

ip link add dir0 type dummy; ip link set dir0 up; ip addr add 203.0.113.1/24 dev dir0
s=1
while [ $s -le 100 ]; do ip addr add 203.0.113.$((9 + s))/32 dev dir0; s=$((s + 1)); done
mkdir -p /tmp/www /run/hafront /run/keepalived; echo hi >/tmp/www/index.html
if command -v nginx >/dev/null; then
    mkdir -p /tmp/nginx
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
    echo "RESULT target nginx"
else
    busybox httpd -p 8080 -h /tmp/www
    echo "RESULT target busybox-httpd (forks per connection: pass nginx with --file for the CPU figures)"
fi

# ---- configurations --------------------------------------------------------------------
awk 'BEGIN {
    print "runtime_dir = \"/run/hafront\"\nstate_dir = \"/tmp/hafront-state\"\n[log]\nlevel = \"info,hafront::ipvs=debug\"\n[ipvs]\nresync_interval = \"1h\""
    for (s = 1; s <= 100; s++) {
        iv = (s == 1) ? "100ms" : "1s"; to = (s == 1) ? "200ms" : "500ms"
        print "[checks.c" s "]\nkind = \"tcp\"\ntarget = \"203.0.113." 9 + s ":8080\"\ninterval = \"" iv "\"\ntimeout = \"" to "\"\nrise = 1\nfall = 1"
    }
    for (s = 1; s <= 100; s++) {
        print "[ipvs.services.s" s "]\naddress = \"198.51.100." s ":80\"\nscheduler = \"wrr\"\nforwarding = \"nat\"\nreal_servers = ["
        for (r = 1; r <= 100; r++) {
            c = (r == 1) ? ", check = \"c" s "\"" : ""
            print "  { address = \"192.0.2." r ":80\"" c " },"
        }
        print "]"
    }
}' >/tmp/h.toml
awk 'BEGIN {
    print "global_defs {\n  router_id bench\n}"
    for (s = 1; s <= 100; s++) {
        iv = (s == 1) ? "0.1" : "1"; to = (s == 1) ? "0.2" : "0.5"
        print "virtual_server 198.51.100." s " 80 {\n  delay_loop " iv "\n  lb_algo wrr\n  lb_kind NAT\n  protocol TCP"
        for (r = 1; r <= 100; r++) {
            print "  real_server 192.0.2." r " 80 {\n    weight 1"
            if (r == 1) print "    TCP_CHECK {\n      connect_ip 203.0.113." 9 + s "\n      connect_port 8080\n      connect_timeout " to "\n      retry 0\n    }"
            print "  }"
        }
        print "}"
    }
}' >/tmp/k.conf

# ---- helpers -------------------------------------------------------------------------
# present: 1 when 192.0.2.1:80 is in service s1 in the kernel, else 0.
present() { ipvsadm -Ln -t 198.51.100.1:80 2>/dev/null | grep -c ' 192.0.2.1:80 ' || true; }
# wait_present WANT: polls until present = WANT; prints the clock then (ns).
wait_present() {
    n=0
    while [ "$(present)" != "$1" ]; do
        n=$((n + 1)); [ $n -lt 3000 ] || { echo "FAIL: 192.0.2.1:80 never became present=$1" >&2; return 1; }
    done
    now
}
dests() { ipvsadm -Ln 2>/dev/null | grep -c '  -> 192.0.2' || true; }
wait_table() { # wait_table COUNT SECONDS
    i=0
    until [ "$(ipvsadm -Ln -t 198.51.100.100:80 2>/dev/null | grep -c '  -> 192.0.2')" = "$1" ]; do
        i=$((i + 1)); [ $i -lt $(($2 * 10)) ] || return 1; sleep 0.1
    done
}
cpu_ticks() { # cpu_ticks PID...: utime+stime of each, of its reaped children
    t=0        # (cutime+cstime) and of its live children, clock ticks
    for p in "$@"; do
        v=$(awk '{ print $14 + $15 + $16 + $17 }' /proc/$p/stat 2>/dev/null || echo 0); t=$((t + v))
        for c in $(cat /proc/$p/task/*/children 2>/dev/null); do
            v=$(awk '{ print $14 + $15 }' /proc/$c/stat 2>/dev/null || echo 0); t=$((t + v))
        done
    done
    echo $t
}
threads() { # threads PID...: "tid name ticks" per thread
    for p in "$@"; do
        for t in /proc/$p/task/*; do
            echo "${t##*/} $(tr ' ' _ <$t/comm) $(awk '{ print $14 + $15 }' $t/stat 2>/dev/null || echo 0)"
        done
    done
}
# verdicts NAME: the verdicts the daemon logged so far.
verdicts() {
    case $1 in
    keepalived) grep -c 'Removing service\|Adding service' /tmp/keepalived.log || true ;;
    *) grep -c 'check down\|check up' /tmp/$1.log || true ;;
    esac
}
pct() { # pct FILE: p50 p99 max of a sorted file of numbers, then p90, p95 and how many
    # are over 3 and 5 (a tail read from more than the one or two samples above p99)
    awk 'function at(q) { i = int(n * q + 0.5); return v[i < 1 ? 1 : i] }
        { v[NR] = $1; o3 += ($1 > 3); o5 += ($1 > 5) }
        END { n = NR; if (n == 0) { print "n=0"; exit }
        printf "n=%d p50=%.1f p99=%.1f max=%.1f p90=%.1f p95=%.1f over3=%d over5=%d", n, at(0.5), at(0.99), v[n], at(0.9), at(0.95), o3, o5 }' "$1"
}

# ---- verdict -> kernel on the kernel's own clock -----------------------------------------
# The outside poll above cannot tell a daemon's verdict from its check's detection, and
# steps 10-20 ms. kprobes can: tcp_close of a check's socket to 203.0.113.10 with the
# socket's state (SYN_SENT, 2: the connect timed out, the down verdict; ESTABLISHED, 1:
# it answered, the up verdict), the entry and return of the kernel's IPVS set command
# (generic netlink, and the older setsockopt), and a marker written at each fault and
# repair. Both daemons close the check's socket as they decide (hafront drops the timed
# out connect before it records the result; keepalived closes it before its epilog
# logs and writes), so close -> set command returned is the daemon's verdict -> kernel
# updated: one clock (mono), no poll. (struct sock_common: skc_daddr at 0, skc_dport at
# 12, skc_state at 18; 203.0.113.10 read as a little-endian u32 is 175177931, port 8080
# as a little-endian u16 36895: the checks' own sockets, not nginx's accepted ones.)
T=/sys/kernel/tracing
trace_ok=0
trace_setup() {
    [ -d $T/events ] || mount -t tracefs nodev $T 2>/dev/null || { echo "RESULT trace unavailable (no tracefs)"; return 0; }
    {
        echo 'p:hf_close tcp_close daddr=+0(%di):u32 dport=+12(%di):u16 state=+18(%di):u8' &&
            echo 'p:hf_set ip_vs_genl_set_cmd' && echo 'r:hf_set_ret ip_vs_genl_set_cmd'
    } >>$T/kprobe_events 2>/dev/null || { echo "RESULT trace unavailable (kprobe_events refused)"; return 0; }
    # The setsockopt path: only when the kernel has the symbol.
    { echo 'p:hf_sso do_ip_vs_set_ctl' && echo 'r:hf_sso_ret do_ip_vs_set_ctl'; } >>$T/kprobe_events 2>/dev/null || true
    { echo 'daddr == 175177931 && dport == 36895' >$T/events/kprobes/hf_close/filter &&
        echo mono >$T/trace_clock && echo 4096 >$T/buffer_size_kb; } 2>/dev/null ||
        { echo "RESULT trace unavailable (filter, clock or buffer refused)"; return 0; }
    trace_ok=1
}
trace_enable() { # trace_enable 0|1
    for e in $T/events/kprobes/hf_*/enable; do [ ! -e "$e" ] || echo "$1" >"$e"; done
}
mark() { [ $trace_ok = 0 ] || echo "$1" >$T/trace_marker; }
# trace_report NAME: from the trace of NAME's flips, per fault and repair: the verdict
# (the first close of the awaited state after the marker) -> the set command returned,
# verdict -> the command entered, and marker -> returned (fault -> kernel on this clock).
trace_report() {
    cat $T/trace >/tmp/trace.$1
    awk -v out=/tmp/vk.$1 '
    function ts() { match($0, / [0-9]+\.[0-9]+: /); return substr($0, RSTART + 1, RLENGTH - 3) + 0 }
    / tracing_mark_write: (fault|repair)/ { kind = ($NF == "fault") ? "down" : "up"; want = (kind == "down") ? 2 : 1
        m = ts(); v = 0; e = 0; next }
    / hf_close: / && kind != "" && !v { st = $0; sub(/.*state=/, "", st); if (st + 0 == want) v = ts(); next }
    / hf_(set|sso): / && v && !e { e = ts(); next }
    / hf_(set|sso)_ret: / && e { r = ts(); printf "%s %.3f %.3f %.3f\n", kind, 1000 * (r - v), 1000 * (e - v), 1000 * (r - m) >out
        kind = ""; v = 0; e = 0 }
    ' /tmp/trace.$1
    for k in down up all; do
        case $k in all) cat /tmp/vk.$1 ;; *) grep "^$k " /tmp/vk.$1 || true ;; esac >/tmp/vk.$1.$k
        cut -d' ' -f2 /tmp/vk.$1.$k | sort -n >/tmp/vk.$1.$k.v
        cut -d' ' -f3 /tmp/vk.$1.$k | sort -n >/tmp/vk.$1.$k.e
        cut -d' ' -f4 /tmp/vk.$1.$k | sort -n >/tmp/vk.$1.$k.f
        echo "RESULT $1 trace_verdict_to_kernel_ms_$k $(pct /tmp/vk.$1.$k.v)"
        echo "RESULT $1 trace_verdict_to_write_entered_ms_$k $(pct /tmp/vk.$1.$k.e)"
        echo "RESULT $1 trace_fault_to_kernel_ms_$k $(pct /tmp/vk.$1.$k.f)"
    done
    # Every verdict -> kernel, sorted: boots can be pooled (a p99 of 200 is two samples).
    echo "SAMPLES $1 trace_verdict_to_kernel_ms $(tr '\n' ' ' </tmp/vk.$1.all.v)"
    echo > $T/trace
}

# bench NAME: the daemon is running as $pids (its table programmed); latency then CPU.
bench() {
    name=$1
    sleep 2
    : >/tmp/lat.$name
    [ $trace_ok = 0 ] || { echo >$T/trace; trace_enable 1; }
    i=1 missed=0
    while [ $i -le "$flips" ]; do
        for step in "fault del 0 down" "repair add 1 up"; do
            set -- $step
            t0=$(now); mark $1; ip addr $2 203.0.113.10/32 dev dir0
            if [ "$mode" = quiet ]; then
                # Detection takes 0.1-0.5 s; then one look, after the measured span.
                sleep 1
                [ "$(present)" = "$3" ] || { missed=$((missed + 1)); wait_present "$3" >/dev/null || return 1; }
            else
                t1=$(wait_present "$3") || return 1
                echo "$4 $(((t1 - t0) / 1000))" >>/tmp/lat.$name
            fi
            sleep 0.2
        done
        i=$((i + 1))
    done
    [ $trace_ok = 0 ] || { trace_enable 0; trace_report "$name"; }
    # quiet: a flip the table had not followed within 1 s (then waited for).
    [ "$mode" = poll ] || echo "RESULT $name quiet_flips_late_over_1s $missed"
    awk '{ printf "%.1f\n", $2 / 1000 }' /tmp/lat.$name | sort -n >/tmp/lat.$name.ms
    echo "RESULT $name fault_to_kernel_ms $(pct /tmp/lat.$name.ms)"
    for k in down up; do
        awk -v k=$k '$1 == k { printf "%.1f\n", $2 / 1000 }' /tmp/lat.$name | sort -n >/tmp/lat.$name.$k.ms
        echo "RESULT $name fault_to_kernel_ms_$k $(pct /tmp/lat.$name.$k.ms)"
    done
    window "$name" idle
    window "$name" flapping
}

# window NAME idle|flapping: CPU over cpu_secs.
window() {
    name=$1 kind=$2
    threads $pids >/tmp/threads0
    c0=$(cpu_ticks $pids); v0=$(verdicts "$name"); w0=$(now); toggles=0
    end=$(($(date +%s) + cpu_secs))
    s=1
    while [ "$(date +%s)" -lt $end ]; do
        if [ "$kind" = flapping ]; then
            a=203.0.113.$((9 + s))
            if [ -e /tmp/down.$s ]; then
                ip addr add $a/32 dev dir0; rm /tmp/down.$s
            else
                ip addr del $a/32 dev dir0; : >/tmp/down.$s
            fi
            toggles=$((toggles + 1)); s=$((s % 100 + 1))
        fi
        sleep 0.1
    done
    c1=$(cpu_ticks $pids); v1=$(verdicts "$name"); w1=$(now)
    threads $pids >/tmp/threads1
    # Everything back up before the next window.
    s=1
    while [ $s -le 100 ]; do
        [ ! -e /tmp/down.$s ] || { ip addr add 203.0.113.$((9 + s))/32 dev dir0; rm /tmp/down.$s; }
        s=$((s + 1))
    done
    awk -v c=$((c1 - c0)) -v w=$((w1 - w0)) -v t=$toggles -v v=$((v1 - v0)) -v n="$name" -v k="$kind" -v secs="$cpu_secs" 'BEGIN {
        cpu = c / 100; wall = w / 1e9
        printf "RESULT %s cpu_%s seconds=%d cpu_s=%.2f cpu_pct=%.1f toggles=%d verdicts=%d", n, k, secs, cpu, 100 * cpu / wall, t, v
        if (t > 0) printf " cpu_ms_per_toggle=%.2f", 1000 * cpu / t
        printf "\n" }'
    # Per thread (threads alive at both ends), busiest first.
    awk 'NR == FNR { t0[$1] = $3; next } ($1 in t0) { d[$2] += $3 - t0[$1] }
        END { for (n in d) if (d[n] > 0) printf "%s=%.2f\n", n, d[n] / 100 }' /tmp/threads0 /tmp/threads1 |
        sort -t= -k2 -rn | tr '\n' ' ' | sed "s/^/RESULT $name threads_$kind cpu_s: /; s/ *\$/\n/"
    echo "RESULT $name load_$kind $(cut -d' ' -f1-3 /proc/loadavg) (guest)"
}

trace_setup

# ---- hafront (and hafront-old) ---------------------------------------------------------
run_hafront() { # run_hafront NAME BINARY
    rm -rf /tmp/hafront-state; log=/tmp/$1.log
    t0=$(now)
    $2 run -c /tmp/h.toml --no-env >$log 2>&1 &
    pids=$!
    wait_table 100 600 || { tail -5 $log; fail "$1: table not programmed"; }
    echo "RESULT $1 startup_programmed_ms $(((($(now) - t0)) / 1000000))"
    bench "$1" || { tail -20 $log; fail "$1: bench"; }
    kill -TERM $pids; wait $pids || true
    wait_table 0 120 || fail "$1: services not removed at stop"
    # The flips' writes as hafront timed them: write_ms (first op sent -> last ack) of
    # the one-op passes that wrote 192.0.2.1:80 in s1 (not the start's whole table).
    # Its verdict -> kernel is the trace's: since the checks publish a verdict before
    # they log it, the log line no longer marks the verdict.
    awk '
    /op=(delete|add) real server 192.0.2.1:80 (to|from) tcp 198.51.100.1:80( |$)/ { w = 1 }
    /IPVS table reconciled applied=1 / && w { m = $0; sub(/.*write_ms=/, "", m); sub(/[^0-9.].*/, "", m); print m }
    /IPVS table reconciled/ { w = 0 }
    ' $log | head -n $((2 * flips)) | sort -n >/tmp/write.$1
    echo "RESULT $1 the_write_itself_ms $(pct /tmp/write.$1)"
    echo "$1: table reads $(grep -c 'IPVS table read' $log), passes that wrote $(grep -c 'IPVS table reconciled' $log), check timeouts $(grep -c 'check down.*timeout' $log)"
}
run_keepalived() {
    t0=$(now)
    keepalived -n -l -D -G -C -f /tmp/k.conf -p /run/keepalived/k.pid -c /run/keepalived/c.pid >/tmp/keepalived.log 2>&1 &
    kpid=$!
    wait_table 100 900 || { tail -20 /tmp/keepalived.log; fail "keepalived: table not programmed"; }
    echo "RESULT keepalived startup_programmed_ms $(((($(now) - t0)) / 1000000))"
    pids=$kpid # its children (checker, VRRP) are counted with it
    bench keepalived || { tail -20 /tmp/keepalived.log; fail "keepalived: bench"; }
    kill -TERM $kpid; wait $kpid || true
    echo "keepalived: real server removals $(grep -c 'Removing service' /tmp/keepalived.log || true), additions $(grep -c 'Adding service' /tmp/keepalived.log || true)"
    ipvsadm -C
}
for d in $daemons; do
    case $d in
    hafront) run_hafront hafront hafront ;;
    keepalived) run_keepalived ;;
    hafront-old) ! command -v hafront-old >/dev/null || run_hafront hafront-old hafront-old ;;
    *) fail "unknown daemon $d" ;;
    esac
    [ "$(dests)" = 0 ] || ipvsadm -C
done
echo "bench-ipvs-keepalived: done"
