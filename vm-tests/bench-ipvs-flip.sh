#!/bin/sh
# Guest benchmark (issue 16, first part): a health verdict -> the IPVS write acknowledged,
# with 100 services x 100 real servers, from hafront's own log timestamps (the "check
# down/up" line to the next "IPVS table reconciled"). One real server has a TCP check
# against a busybox httpd; a flip removes/re-adds its address. Prints p50/p99 and the
# table reads (dumps) made. keepalived side by side: vm-tests/bench-ipvs-keepalived.sh.
# Builds from f513049 on publish a verdict before they log it (the checks' hook): the
# "check down/up" line then often follows the write, and this pairing no longer times
# the verdict. For those, vm-tests/bench-ipvs-keepalived.sh times verdict -> kernel on
# the kernel's clock (its trace_* lines); this script stays for the builds before.
#   vm-tests/run --file target/release/hafront:/usr/local/bin/hafront \
#       [--file OLD:/usr/local/bin/hafront-old] vm-tests/bench-ipvs-flip.sh [FLIPS [BINARY]]
# BINARY other than "hafront" is taken as an older build (no ipvs.resync_interval).
set -eu
PATH=/usr/local/bin:$PATH
flips=${1:-20}
bin=${2:-hafront}; [ "$bin" = hafront ] || export OLD=1
log=/tmp/flip.log
ip link add dir0 type dummy; ip link set dir0 up; ip addr add 203.0.113.1/24 dev dir0
ip addr add 203.0.113.5/32 dev dir0
mkdir -p /tmp/www; echo hi >/tmp/www/index.html
busybox httpd -p 203.0.113.5:8080 -h /tmp/www
awk 'BEGIN {
    print "runtime_dir = \"/run/hafront\"\n[log]\nlevel = \"info,hafront::ipvs=debug\""; if (ENVIRON["OLD"] == "") print "[ipvs]\nresync_interval = \"1h\""
    print "[checks.flip]\nkind = \"tcp\"\ntarget = \"203.0.113.5:8080\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\nrise = 1\nfall = 1\nwarmup = \"10ms\""
    for (s = 1; s <= 100; s++) {
        print "[ipvs.services.s" s "]\naddress = \"198.51.100." s ":80\"\nscheduler = \"wrr\"\nforwarding = \"nat\"\nreal_servers = ["
        for (r = 1; r <= 100; r++) {
            c = (s == 1 && r == 1) ? ", check = \"flip\"" : ""
            print "  { address = \"192.0.2." r ":80\"" c " },"
        }
        print "]"
    }
}' >/tmp/flip.toml
$bin run -c /tmp/flip.toml --no-env >$log 2>&1 &
pid=$!
i=0
until [ "$(ipvsadm -Ln -t 198.51.100.100:80 2>/dev/null | grep -c 192.0.2)" = 100 ]; do
    i=$((i + 1)); [ $i -lt 600 ] || { tail -5 $log; echo "FAIL: table not programmed"; exit 1; }; sleep 0.1
done
sleep 2
n=1
while [ $n -le "$flips" ]; do
    ip addr del 203.0.113.5/32 dev dir0
    until [ "$(grep -c 'op=delete real server 192.0.2.1:80 ' $log)" -ge $n ]; do sleep 0.05; done
    ip addr add 203.0.113.5/32 dev dir0
    until [ "$(grep -c 'op=add real server 192.0.2.1:80 ' $log)" -ge $n ]; do sleep 0.05; done
    n=$((n + 1))
done
kill -TERM $pid; wait $pid || true
# pair each verdict with the next IPVS write acknowledged ("IPVS table reconciled")
awk '
function t(s) { split(substr(s, 12, 15), a, ":"); return a[1] * 3600 + a[2] * 60 + a[3] }
/check (down|up) check="flip"/ { v = t($1) }
/IPVS table reconciled/ && v { print (t($1) - v) * 1000; v = 0 }
' $log | tail -n $((2 * flips)) | sort -n >/tmp/lat
cnt=$(wc -l </tmp/lat)
awk -v n="$cnt" '{ v[NR] = $1 } END { printf "RESULT %s verdict_to_write_acked_ms n=%d p50=%.1f p99=%.1f max=%.1f\n", "'"$bin"'", n, v[int(n*0.5+0.5)], v[int(n*0.99+0.5)], v[n] }' /tmp/lat
grep -c "IPVS table read" $log | sed 's/^/dumps: /'
