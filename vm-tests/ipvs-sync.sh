#!/bin/sh
# Guest script (vm-tests/ipvs-sync runs it): the IPVS connection sync daemon driven by
# hafront, in one VM. IPVS is per network namespace, so two directors are two
# namespaces: a (priority 150) and b (100) run hafront with instance `web` (VIP
# 192.0.2.100/24 on eth0, advert 200 ms), a service VIP:80 with `master_of = "web"`,
# and `[ipvs.sync] instance = "web"` (or no sync: the control run). Client c runs
# /flows.py (scripts/lab/conntrack/flows.py): N long-lived TCP connections to VIP:80,
# a line every 100 ms on each, echoed by real server s.
#
# Usage: ipvs-sync.sh N [rounds=kill] SPEC...   SPEC = MODE:SYNC[:kill], MODE dr or nat,
# SYNC on or off; kill (for all, or for one spec): the first round only.
#   dr:  s (192.0.2.20) on the front link, the VIP on its lo (arp_ignore/announce).
#   nat: s (198.51.100.20) on a back link whose gateway 198.51.100.254 is the VIP of a
#        second instance `int` (eth1, vrid 52) in a sync group with `web`: the real
#        server's replies come back through the master director.
# Each SPEC starts fresh namespaces and runs three rounds, each with its own N flows:
#   kill    flows through a; a's hafront SIGKILLed and its links cut (then `hafront
#           remove-vips`, as the units' ExecStopPost): b takes over;
#   back    flows through b; a comes back (links up, hafront started: the backup
#           daemon at once) as backup, and preempts after preempt_delay (15 s,
#           PREEMPT_DELAY: b's master daemon resends a connection on its first
#           packet 1 s after its last sync, `[ipvs.sysctl] sync_period = 0,
#           sync_refresh_period = 1`, and flushes its buffer within ~3 s; by packet
#           count, `sync_period = 10`, the entries came too late once the host's
#           load slowed the flows down: a held 0 of 100 at 10 s, 80 at 15 s);
#   sigterm flows through a; a's hafront gets SIGTERM (priority 0, VIPs released).
# With sync on, each round waits until the other director's IPVS holds the N
# connections before the event, and every connection must survive; with sync off
# each round must break at least one (the test can fail). At the way back, b must
# remove its VIP before its IPVS service (its log says), no other node may answer b's
# split-brain probe while b is master, and the test prints what both hafronts logged,
# 50 ms samples of both directors around the takeover, the client's neighbour entry
# for the VIP (each change) and, with tcpdump, the ARP, RST and FIN packets on the
# switch (ARP for the VIPs in the kill round too, with every node's MACs); a broken
# flow's error, time and port are printed. A line per round:
#   RESULT mode=dr sync=on round=kill kept=100/100 stall_ms=1234 takeover_ms=...
set -eu
PATH=/usr/local/bin:$PATH
N=${1:?usage: ipvs-sync.sh N MODE:SYNC...}
shift
case ${1:-} in rounds=*) ROUNDS=${1#rounds=}; shift ;; esac
VIP=192.0.2.100
GW=198.51.100.254
FLOWS="python3 -S -E /flows.py"
PREEMPT_DELAY=${PREEMPT_DELAY:-15s}
ALL_ROUNDS=${ROUNDS:-all} # all, or kill: the master kill only (MODE:SYNC:kill for one spec)
fail() {
    echo "FAIL: $*"
    for n in a b; do
        ip netns list | grep -q "^$n" || continue
        echo "---- $n: ipvsadm -L --daemon, -Ln, -Lnc (head)"
        in_ns $n ipvsadm -L --daemon || true
        in_ns $n ipvsadm -Ln || true
        in_ns $n ipvsadm -Lnc | head -5 || true
        echo "---- $n: UDP counters, IGMP groups"
        in_ns $n grep '^Udp:' /proc/net/snmp || true
        in_ns $n cat /proc/net/igmp || true
        echo "---- $n: hafront log"
        tail -n 20 /tmp/hf-$n.log 2>/dev/null || true
    done
    echo "---- kernel (IPVS)"
    dmesg | grep -i ipvs | tail -n 20 || true
    exit 1
}
ok() { echo "ok: $*"; }
wait_for() { # tenths-of-seconds command...
    n=$1
    shift
    while [ "$n" -gt 0 ]; do
        "$@" && return 0
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}
in_ns() { n=$1; shift; ip netns exec "$n" "$@"; }
# coreutils date (vm-tests/ipvs-sync adds it: busybox's has no %N).
now_ms() { date +%s%3N; }
now() { date +%s.%N; }

# link BRIDGE NS IFNAME ADDR/PFX: a veth from NS's IFNAME to the bridge.
link() {
    ip link add "v$2$3" type veth peer name "$3" netns "$2"
    ip link set "v$2$3" master "$1" up
    in_ns "$2" ip addr add "$4" dev "$3"
    in_ns "$2" ip link set "$3" up
}

setup() { # MODE
    rm -f /tmp/hf-a.log /tmp/hf-b.log # each spec's own (the checks read b's)
    for br in br0 br1; do
        ip link add $br type bridge
        ip link set $br up
    done
    for n in a b c s; do
        ip netns add $n
        in_ns $n ip link set lo up
    done
    link br0 a eth0 192.0.2.1/24
    link br0 b eth0 192.0.2.2/24
    link br0 c eth0 192.0.2.10/24
    for i in 11 12 13; do in_ns c ip addr add 192.0.2.$i/24 dev eth0; done
    if [ "$1" = dr ]; then
        link br0 s eth0 192.0.2.20/24
        in_ns s ip addr add $VIP/32 dev lo
        in_ns s sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
        RS=192.0.2.20
    else
        link br1 a eth1 198.51.100.1/24
        link br1 b eth1 198.51.100.2/24
        link br1 s eth0 198.51.100.20/24
        in_ns s ip route add default via $GW
        for n in a b; do in_ns $n sysctl -qw net.ipv4.ip_forward=1; done
        RS=198.51.100.20
    fi
    in_ns s $FLOWS server 0.0.0.0 80 >/tmp/server.log 2>&1 &
    server=$!
    # Python starts slowly under TCG on a loaded host: a flow that connects before
    # the server listens is refused (the real server's reset), not a sync failure.
    wait_for 600 listening || fail "the real server does not listen: $(cat /tmp/server.log)"
}
listening() { in_ns s netstat -ltn | grep -q ':80 '; }

teardown() {
    for n in a b; do
        eval "p=\${hf_$n:-}"
        [ -z "$p" ] || kill -KILL "$p" 2>/dev/null || true
        eval "hf_$n="
    done
    kill "$server" 2>/dev/null || true
    sleep 0.3
    # The veths first: a namespace's are destroyed after `ip netns del` returns, and
    # the next spec's `ip link add` would find them.
    for n in a b c s; do
        for i in eth0 eth1; do ip link del "v$n$i" 2>/dev/null || true; done
    done
    for n in a b c s; do ip netns del $n 2>/dev/null || true; done
    ip link del br0 2>/dev/null || true
    ip link del br1 2>/dev/null || true
}

# conf NODE PRIORITY MODE SYNC
conf() {
    mkdir -p /tmp/$1
    cat <<CONF
runtime_dir = "/tmp/$1/run"
state_dir = "/tmp/$1/state"
[node]
name = "node-$1"
[vrrp.instances.web]
interface = "eth0"
vrid = 51
priority = $2
advert_interval = "200ms"
preempt_delay = "$PREEMPT_DELAY"
virtual_ips = ["$VIP/24"]
[ipvs.services.web]
address = "$VIP:80"
scheduler = "rr"
forwarding = "$3"
master_of = "web"
real_servers = [ { address = "$RS:80", weight = 1 } ]
[ipvs.sysctl]
sync_period = 0
sync_refresh_period = 1
CONF
    if [ "$3" = nat ]; then
        cat <<CONF
[vrrp.instances.int]
interface = "eth1"
vrid = 52
priority = $2
advert_interval = "200ms"
preempt_delay = "$PREEMPT_DELAY"
virtual_ips = ["$GW/24"]
[vrrp.sync_groups.dir]
instances = ["web", "int"]
CONF
    fi
    if [ "$4" = on ]; then
        printf '[ipvs.sync]\ninterface = "eth0"\nsync_id = 7\ninstance = "web"\n'
    fi
}
start() { # NODE PRIORITY MODE SYNC
    conf "$1" "$2" "$3" "$4" >/tmp/$1.toml
    # ip netns exec execs hafront: $! is hafront's PID.
    ip netns exec "$1" hafront run -c /tmp/$1.toml >>/tmp/hf-$1.log 2>&1 &
    eval "hf_$1=\$!"
}
daemon_is() { in_ns "$1" ipvsadm -L --daemon | grep -q "^$2 sync daemon (mcast=eth0, syncid=7,"; }
has_vip() { in_ns "$1" ip -o -4 addr show dev eth0 | grep -q " $VIP/24"; }
lacks_vip() { ! has_vip "$1"; }
# synced NODE: NODE's IPVS holds an ESTABLISHED entry for each of the round's N
# flows (each round has its own client address: a director keeps the entries of
# an earlier round, e.g. a's after it was cut off).
synced() { [ "$(established "$1")" -ge "$N" ]; }
established() { in_ns "$1" ipvsadm -Lnc | grep -c "ESTABLISHED *$SRC:[0-9]* *$VIP:80 " || true; }
# sample NODE: until the file stop-sampling exists, every 50 ms a line of NODE's
# side of the takeover, read from /proc by one Python process in NODE (a process
# per sample costs seconds under TCG): UTC time, the round's ESTABLISHED entries,
# whether NODE has the VIP, the service, and (NAT) the inside VIP.
sample() {
    in_ns "$1" python3 -S -E -c '
import os, sys, time
node, vip, gw, src = sys.argv[1:5]
hexa = lambda a: "%02X%02X%02X%02X" % tuple(int(x) for x in a.split("."))
svc = "TCP  %s:0050" % hexa(vip)
while not os.path.exists("/tmp/stop-sampling"):
    t = time.time()
    est = 0
    with open("/proc/net/ip_vs_conn") as f:
        for l in f:
            w = l.split()
            if len(w) > 7 and w[1] == hexa(src) and w[3] == hexa(vip) and w[7] == "ESTABLISHED":
                est += 1
    with open("/proc/net/ip_vs") as f:
        has_svc = svc in f.read()
    local = set()
    with open("/proc/net/fib_trie") as f:
        last = None
        for l in f:
            if "/32 host LOCAL" in l and last:
                local.add(last)
            last = l.strip().split()[-1] if l.strip().startswith("|--") else None
    print("%s.%03d %s:%d:%s:%s:%s" % (time.strftime("%H:%M:%S", time.gmtime(t)), t % 1 * 1000, node, est,
          "vip" if vip in local else "-", "svc" if has_svc else "-", "gw" if gw in local else "-"), flush=True)
    time.sleep(0.05)
' "$1" "$VIP" "$GW" "$SRC"
}
# macs: every node's interface MACs, for the captures.
macs() {
    for n in a b c s; do
        for i in eth0 eth1; do
            m=$(in_ns $n cat /sys/class/net/$i/address 2>/dev/null) && printf '%s.%s=%s ' $n $i "$m"
        done
    done
}
links() { # NODE up|down
    ip link set "v${1}eth0" "$2"
    [ "$MODE" = dr ] || ip link set "v${1}eth1" "$2"
}

# flows_start ROUND: N flows from c, up and echoing, from the round's own address.
flows_start() {
    case $1 in kill) SRC=192.0.2.11 ;; back) SRC=192.0.2.12 ;; *) SRC=192.0.2.13 ;; esac
    in_ns c ip route replace $VIP/32 dev eth0 src $SRC
    d=/tmp/flows-$1
    rm -rf "$d" && mkdir -p "$d"
    in_ns c $FLOWS client $VIP 80 "$N" "$d" >"$d/result" 2>"$d/err" &
    client=$!
    wait_for 600 test -e "$d/ready" || fail "$1: the $N flows did not come up: $(cat "$d/err")"
}
# flows_end ROUND: stops the flows, reads kept and the round's stall.
flows_end() {
    d=/tmp/flows-$1
    touch "$d/stop"
    wait "$client" || fail "$1: the client failed: $(cat "$d/err")"
    r=$(cat "$d/result")
    kept=$(echo "$r" | sed -n 's/.*"kept": \([0-9]*\).*/\1/p')
    stall=$(echo "$r" | sed -n 's/.*"stall_ms": \([0-9]*\).*/\1/p')
    [ -n "$kept" ] || fail "$1: no result: $r $(cat "$d/err")"
    [ "$kept" -eq "$N" ] || echo "$r" | python3 -S -E -c '
import json, sys, time
r = json.load(sys.stdin)
at = [time.strftime("%H:%M:%S", time.gmtime(t)) + ".%03d" % round(t % 1 * 1000) for t in r.get("broken_at", [])]
print("%s: broken: %d, errors %s, at %s, local ports %s" % (sys.argv[1], len(at), r["errors"], " ".join(at), r.get("broken_ports")))' "$1"
}
# before_event ROUND PEER: with sync, waits until PEER's IPVS holds the N flows.
before_event() {
    if [ "$SYNC" = on ]; then
        wait_for 300 synced "$2" ||
            fail "$1: $2's IPVS did not get the $N connections: $(established "$2")"
    else
        sleep 2
    fi
}
mark() { echo "$1 $(now)" >"/tmp/flows-$1/marks"; }
result() { # ROUND TAKEOVER_MS
    echo "RESULT mode=$MODE sync=$SYNC round=$1 kept=$kept/$N stall_ms=$stall takeover_ms=$2"
    if [ "$SYNC" = on ]; then
        [ "$kept" -eq "$N" ] || fail "$MODE $1: connections lost with sync on: kept $kept of $N"
    else
        [ "$kept" -lt "$N" ] || fail "$MODE $1: all $N connections survived without sync: the test cannot tell"
    fi
}

spec() { # MODE SYNC
    MODE=$1 SYNC=$2
    echo "== $MODE, sync $SYNC"
    setup "$MODE"
    start a 150 "$MODE" "$SYNC"
    wait_for 100 has_vip a || fail "a did not become master"
    start b 100 "$MODE" "$SYNC"
    if [ "$SYNC" = on ]; then
        wait_for 100 daemon_is a master || fail "a does not run the master sync daemon"
        wait_for 100 daemon_is b backup || fail "b does not run the backup sync daemon"
        ! daemon_is a backup || fail "a runs a backup daemon too"
        ok "a: master sync daemon, b: backup sync daemon (GET_DAEMON)"
        # [ipvs.sysctl] in each director's own namespace, and the status shows both.
        for n in a b; do
            v=$(in_ns $n cat /proc/sys/net/ipv4/vs/sync_threshold | tr -s '\t ' ' ')
            [ "$v" = "3 0" ] || fail "$n: sync_threshold is $v, not 3 0"
        done
        [ "$(tr -s '\t ' ' ' </proc/sys/net/ipv4/vs/sync_threshold)" = "3 50" ] ||
            fail "the VM's own namespace got sync_threshold: $(cat /proc/sys/net/ipv4/vs/sync_threshold)"
        in_ns a hafront status --runtime-dir /tmp/a/run --json >/tmp/status-a.json
        python3 -S -E -c '
import json, sys
s = json.load(open("/tmp/status-a.json"))["ipvs_sync"]
d = s["daemons"]
assert s["configured"] and len(d) == 1, s
assert (d[0]["role"], d[0]["interface"], d[0]["sync_id"]) == ("master", "eth0", 7), s
assert s["sysctl"]["sync_threshold"] == {"wanted": "3 0", "current": "3 0"}, s
assert s["sysctl"]["sync_refresh_period"] == {"wanted": "1", "current": "1"}, s
' || fail "a's status: $(grep -A30 '"ipvs_sync"' /tmp/status-a.json)"
        ok "[ipvs.sysctl] sync_period = 0, sync_refresh_period = 1 set in a and b only; status shows the daemon and the sysctls"
    else
        sleep 1
    fi

    # kill: a dies.
    flows_start kill
    before_event kill b
    mark kill
    # ARP on every port of the switch from the kill on (with tcpdump): who answers
    # for the VIPs once b is master.
    capture=
    if command -v tcpdump >/dev/null 2>&1; then
        tcpdump -Z root -l -n -e -tttt -i any arp >/tmp/capture-kill 2>/dev/null &
        capture=$!
    fi
    t=$(now_ms)
    kill -KILL "$hf_a"
    links a down
    # What the shipped units run the moment hafront dies (ExecStopPost), beside b's
    # takeover: a's VIPs go, so that they do not answer ARP beside b's when its
    # links come back at the way back (its IPVS service and master sync daemon stay
    # in the kernel until the new hafront). After the cut, which keeps its place
    # right after the kill (the round's timing as before).
    in_ns a hafront remove-vips -c /tmp/a.toml >/tmp/remove-vips-a 2>&1 &
    stoppost=$!
    wait_for 100 has_vip b || fail "kill: b did not take the VIP"
    took=$(($(now_ms) - t))
    wait "$stoppost" ||
        fail "kill: hafront remove-vips (the units' ExecStopPost) failed: $(cat /tmp/remove-vips-a)"
    lacks_vip a || fail "kill: remove-vips left a's VIP"
    if [ "$SYNC" = on ]; then
        wait_for 100 daemon_is b master || fail "kill: b did not switch to the master sync daemon"
        ! daemon_is b backup || fail "kill: b kept the backup daemon"
    fi
    sleep 3
    flows_end kill
    if [ -n "$capture" ]; then
        kill "$capture" 2>/dev/null || true
        wait "$capture" 2>/dev/null || true
        echo "kill: ARP for the VIPs from the kill (gratuitous ones left out; $(macs)):"
        grep -E "(who-has|Reply) ($VIP|$GW) " /tmp/capture-kill | grep -Ev "tell ($VIP|$GW), length" |
            head -n 30 | sed 's/^/kill:   /' || true
        grep -E 'split brain' /tmp/hf-b.log | sed 's/^/kill: b: /' || true
    fi
    result kill $took
    if [ "$ROUNDS" = kill ]; then
        teardown
        return
    fi

    # back: a returns and preempts (after preempt_delay) while flows go through b.
    flows_start back
    # a's kernel still has the IPVS service and master sync daemon of its SIGKILLed
    # hafront, not its VIP (remove-vips at the kill).
    mark back
    rm -f /tmp/stop-sampling
    sample a >/tmp/samples-a 2>&1 &
    sampler_a=$!
    sample b >/tmp/samples-b 2>&1 &
    sampler_b=$!
    # The client's neighbour entry for the VIP, each change (which director its
    # packets go to).
    in_ns c python3 -S -E -c '
import os, sys, time
last = None
while not os.path.exists("/tmp/stop-sampling"):
    mac = "-"
    with open("/proc/net/arp") as f:
        for l in f:
            w = l.split()
            if w and w[0] == sys.argv[1]:
                mac = w[3] + "/" + w[2]
    if mac != last:
        t = time.time()
        print("%s.%03d c: VIP at %s" % (time.strftime("%H:%M:%S", time.gmtime(t)), t % 1 * 1000, mac), flush=True)
        last = mac
    time.sleep(0.02)
' "$VIP" >/tmp/neigh-c 2>&1 &
    sampler_c=$!
    # ARP, resets and FINs on every port of the switch (vm-tests/ipvs-sync adds
    # the host's tcpdump when it has one): who answered for the VIP, which flow
    # broke and how.
    capture=
    if command -v tcpdump >/dev/null 2>&1; then
        tcpdump -Z root -l -n -e -tttt -i any \
            'arp or (tcp and tcp[tcpflags] & (tcp-rst|tcp-fin) != 0)' >/tmp/capture-back 2>/dev/null &
        capture=$!
    fi
    # b's log from a's link up, a's from its new start (the checks below).
    b_from=$(wc -l </tmp/hf-b.log)
    a_from=$(wc -l </tmp/hf-a.log)
    links a up
    t=$(now_ms)
    start a 150 "$MODE" "$SYNC"
    lacks_vip a || fail "back: a's link came back with a VIP"
    if [ "$SYNC" = on ]; then
        wait_for 100 daemon_is a backup || fail "back: a does not run the backup sync daemon"
    fi
    # No wait for the entries here: a preempts on its own timer, and what it has
    # synced by then is the outcome.
    # What a's IPVS holds, about each second until it preempts (how the sync arrives).
    trace= next=$t
    while ! has_vip a; do
        n=$(now_ms)
        [ $((n - t)) -le 30000 ] || fail "back: a did not preempt (entries held:$trace)"
        if [ "$n" -ge "$next" ]; then
            trace="$trace $(((n - t) / 100))ds:$(established a)"
            next=$((next + 1000))
        fi
        sleep 0.1
    done
    took=$(($(now_ms) - t))
    echo "back: a preempted after ${took} ms holding $(established a) of the $N entries (held at deciseconds from its start:$trace)"

    wait_for 50 lacks_vip b || fail "back: b kept the VIP"
    if [ "$SYNC" = on ]; then
        wait_for 100 daemon_is b backup || fail "back: b did not switch to the backup sync daemon"
    fi
    sleep 3
    touch /tmp/stop-sampling
    wait "$sampler_a" "$sampler_b" "$sampler_c" || true
    sed 's/^/back: /' /tmp/neigh-c
    flows_end back
    if [ -n "$capture" ]; then
        kill "$capture" 2>/dev/null || true
        wait "$capture" 2>/dev/null || true
        echo "back: ARP, RST and FIN seen from a's link up ($(macs)):"
        grep -v 'tell 192.0.2.100, length' /tmp/capture-back | head -n 60 | sed 's/^/back:   /' || true
    fi
    awk -v f="$b_from" 'NR > f && /split brain/' /tmp/hf-b.log | sed 's/^/back: b: /' || true
    # Around the takeover: the samples where something changed (a node's entries,
    # VIP, service or inside VIP), from 2 s before a's VIP to 3 s after.
    from=$(awk '/ a:[0-9]*:-/ { gone = 1 } gone && / a:[0-9]*:vip/ { print substr($1, 1, 8); exit }' /tmp/samples-a)
    echo "back: samples (UTC node:entries:vip:svc:gw), the changes from 2 s before a's VIP:"
    sort /tmp/samples-a /tmp/samples-b | awk -v f="$from" '
        BEGIN { split(f, x, ":"); lo = x[1] * 3600 + x[2] * 60 + x[3] - 2 }
        { split($1, y, ":"); t = y[1] * 3600 + y[2] * 60 + y[3]; n = substr($2, 1, 1) }
        t >= lo && t <= lo + 5 && $2 != prev[n] { print "back:   " $0 }
        { prev[n] = $2 }' | head -n 80
    for n in a b; do
        grep -E 'sync daemon|state changed|virtual address (added|removed)|IPVS table reconciled|IPVS services' /tmp/hf-$n.log |
            tail -n 12 | sed "s/^/back: $n: /"
    done
    # b left master: its VIP went before its IPVS service (a service removed first
    # leaves the VIP answering the clients with b's own resets, issue 16).
    left=$(grep -n 'state changed instance="web".*from="master" state="backup"' /tmp/hf-b.log | head -n1 | cut -d: -f1)
    gone=$(awk -v l="${left:-0}" 'NR > l && /virtual address removed instance="web" vip=192.0.2.100/ { print NR; exit }' /tmp/hf-b.log)
    svc=$(awk -v l="${left:-0}" 'NR > l && /IPVS table reconciled.* services=0/ { print NR; exit }' /tmp/hf-b.log)
    [ -n "$left" ] && [ -n "$gone" ] && [ -n "$svc" ] && [ "$gone" -lt "$svc" ] ||
        fail "back: b's VIP was not removed before its IPVS service (log lines: left master $left, VIP $gone, service $svc)"
    ok "back: b removed its VIP, then its IPVS service"
    # From a's link up until a became master, b's split-brain probe (every 5 s while
    # master) found no other holder of the VIP: with the VIP a's killed hafront
    # left, a answered it once its link was back (a run before remove-vips:
    # "split brain detected" on b before a's new hafront had removed the VIP).
    # From a's takeover until b hears it both hold the VIP for a moment, rightly.
    a_master=$(awk -v f="$a_from" 'NR > f && /state changed .*state="master"/ { print $1; exit }' /tmp/hf-a.log)
    sb=$(awk -v f="$b_from" -v l="${left:-0}" -v m="$a_master" \
        'NR > f && NR < l && /split brain detected/ && (m == "" || $1 < m)' /tmp/hf-b.log | head -n1)
    [ -z "$sb" ] || fail "back: b saw a second holder of the VIP while master: $sb"
    ok "back: no other holder of the VIP answered b's split-brain probe before a took over"
    result back $took

    # sigterm: a leaves gracefully.
    flows_start sigterm
    before_event sigterm b
    mark sigterm
    t=$(now_ms)
    kill -TERM "$hf_a"
    wait_for 100 has_vip b || fail "sigterm: b did not take the VIP"
    took=$(($(now_ms) - t))
    wait "$hf_a" || fail "sigterm: a's hafront exited $?"
    hf_a=
    sleep 3
    flows_end sigterm
    result sigterm $took
    teardown
}

for s in "$@"; do
    m=${s%%:*} rest=${s#*:}
    y=${rest%%:*} r=
    [ "$y" = "$rest" ] || r=${rest#*:}
    ROUNDS=${r:-$ALL_ROUNDS}
    spec "$m" "$y"
done
ok "all specs passed"
