# shellcheck shell=bash
# scripts/bench anycast [REPS] [plain|resilient]: client-visible failure time for
# the flows of a failed node, and the share of the other nodes' flows disturbed,
# for anycast (three nodes, scripts/lib/anycast-lab.sh) against a hafront VRRP
# active/standby pair on the same lab (n1 master, n2 backup, VIP 198.51.100.100
# on the routers' segment, advert 100 ms, the same http check of nginx).
# The router: plain (default: BIRD's ECMP route, kernel hash-threshold) or
# resilient (ANYCAST_ROUTER=resilient: the same route as a resilient next-hop
# group, scripts/lib/resilient_ecmp.py; anycast rows only, the VRRP pair has no
# ECMP).
# Each run is a fresh lab: BENCH_FLOWS client flows (default 60), each a
# keep-alive connection from its own source port (the router hashes ports, so a
# flow stays on its node), GET / every 50 ms, a broken flow reconnecting from the
# same port every 10 ms, 100 ms timeout (scripts/lib/anycast_flows.py); after 2 s
# the failure of n1:
#   nginx-crash  SIGKILL of n1's nginx (master and worker)
#   node-kill    SIGKILL of everything on n1: hafront, nginx, its two BIRDs
#                (anycast only: a VRRP node killed so keeps its VIP configured)
#   link-cut     n1's switch port down: nothing is said, BFD or the VRRP
#                backup's master-down timer notices
#   maintenance  `hafront ctl anycast-maintenance web on` on n1 (anycast only):
#                n1 withdraws and keeps serving; on an ECMP router its flows in
#                flight move to the others all the same (they are reset there)
#   nginx-return (anycast only) the way back: n1's nginx is killed before the
#                flows start (n1 withdrawn, every flow on n2 or n3), the event
#                starts it again and hafront announces n1; every flow is an
#                "other node's" flow, and none should move to n1 (a run counts
#                when n1 is a next hop again by the end)
# Rows per case, medians over REPS runs (default 3): n1's flows, the time from the
# failure to their first answer (median flow, slowest flow), how many of them
# broke (summed over the runs), and the other nodes' flows disturbed (broken or
# moved to another node) / all of them (summed).
# Sourced by scripts/bench before lab_up (each run has its lab), and by
# scripts/lab/test_anycast_resilient.sh; uses hf_*, lab_*.

source "$(dirname "${BASH_SOURCE[0]}")/anycast-lab.sh"
VRRP_VIP=198.51.100.100

ab_vrrp_conf() { # node priority
    # The check asks the node's own nginx: the backup has no VIP.
    anylab_conf_head "$1" "http://127.0.0.1/"
    cat <<CONF
[vrrp.instances.web]
interface = "eth0"
vrid = 51
priority = $2
version = 3
advert_interval = "100ms"
virtual_ips = ["$VRRP_VIP/24"]
track_checks = [ { name = "nginx" } ]
CONF
}

# One run in a lab of its own (a subshell: its EXIT trap tears the lab down).
# Prints the client's JSON summary with the mode and the case, and whether the run
# counts: steady before the failure (every flow answering from one node), and no
# BGP session of the router dropped but the ones the failure drops (a false BFD
# failure on the loaded machine moves flows that the failure did not).
ab_run() ( # anycast|vrrp case
    local mode=$1 case=$2 target
    LAB=hab$BASHPID LAB_DIR="" LAB_PIDS=() LAB_NODES=()
    trap lab_down EXIT
    lab_logdir >/dev/null # in this shell: lab_down removes it
    dir=$(lab_logdir)
    anylab_net
    anylab_nginx
    if [ "$mode" = anycast ]; then
        anylab_bird
        anylab_hafront
        target=$VIP
        wait_hops "$ALL" 30000 >/dev/null || fail "the router never had three next hops"
        wait_balanced 15000 >/dev/null || fail "the router's resilient group never balanced"
    else
        target=$VRRP_VIP
        ab_vrrp_conf n1 150 >"$dir/n1.toml"
        hf_start n1 "$dir/n1.toml"
        lab_wait_vip_on n1 || fail "no VIP on n1"
        ab_vrrp_conf n2 100 >"$dir/n2.toml"
        hf_start n2 "$dir/n2.toml"
        sleep 1
        lab_wait_vip_on n2 0 && fail "n2 has the VIP too"
    fi
    if [ "$case" = nginx-return ]; then
        nginx_kill n1
        wait_hops 198.51.100.12,198.51.100.13 5000 >/dev/null || fail "n1 not withdrawn after its nginx died"
        wait_balanced 15000 2 >/dev/null || fail "the router's resilient group never balanced on two next hops"
    fi
    local event nginx
    nginx=$(nginx_pids n1 | tr '\n' ' ')
    case $case in
        nginx-crash) event="kill -KILL $nginx" ;;
        node-kill) event="kill -KILL ${HF_PID[n1]} $nginx ${BIRD_PID[n1]} ${BIRD_PID[n1-bfd]}" ;;
        link-cut) event="ip -n $LAB-sw link set pn1 down" ;;
        maintenance) event="ip netns exec $LAB-n1 $HF_BIN ctl --runtime-dir $dir/run-n1 anycast-maintenance web on >/dev/null" ;;
        # In the background, its output to the file: the client's shell returns at
        # once (lab_down ends that nginx with everything in n1's namespace).
        nginx-return) event="ip netns exec $LAB-n1 nginx -c $dir/nginx-n1.conf -g 'daemon off;' >>$dir/nginx-n1.out 2>&1 &" ;;
    esac
    local out
    out=$(lab_exec c python3 "$anylab_lib/anycast_flows.py" run --target "$target" --flows "${BENCH_FLOWS:-60}" \
        --period-ms 50 --retry-ms 10 --timeout-ms 100 --before 2 --after 3 --event "$event" --failed n1 ${BENCH_PER_FLOW:+--per-flow})
    # n1 a next hop again by now (nginx-return), and the router's buckets.
    local back=true
    [ "$case" != nginx-return ] || wait_hops "$ALL" 1000 >/dev/null || back=false
    # The router's BGP sessions that went down during the run (BFD or a notification).
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["mode"], d["case"], d["router"], d["n1_back"], d["buckets_after"], d["sessions_dropped"] = sys.argv[2:8]; d["n1_back"] = d["n1_back"] == "true"; d["sessions_dropped"] = d["sessions_dropped"].split(); print(json.dumps(d))' \
        "$out" "$mode" "$case" "$ANYCAST_ROUTER" "$back" "$( [ "$mode" = anycast ] && buckets)" "$(grep -o -E 'n[123]: BFD session down|n[123]: Received: ' "$dir/bird-r.log" 2>/dev/null | cut -d: -f1 | sort -u | tr '\n' ' ')"
)
lab_wait_vip_on() { # node [tries]: the VRRP VIP on its eth0 within 10 s (tries x 50 ms)
    local i
    for i in $(seq 0 "${2:-200}"); do
        lab_exec "$1" ip -o addr show dev eth0 | grep_q " $VRRP_VIP/" && return 0
        sleep 0.05
    done
    return 1
}

# A run that counts, tried up to three times (each try is in the raw results).
ab_measure() { # mode case
    local try out
    for try in 1 2 3; do
        out=$(ab_run "$1" "$2") || continue
        echo "$out"
        python3 -c 'import json,sys; d=json.loads(sys.argv[1]); c=d["case"]
ok = d["steady_before"] and set(d["sessions_dropped"]) <= ({"n1"} if c in ("node-kill", "link-cut") else set()) and not d["summary"]["own_answered_by_failed"] and d["n1_back"]
sys.exit(0 if ok else 1)' "$out" && return 0
        echo "run not counted ($1 $2): steady before: $(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["steady_before"], "sessions dropped:", d["sessions_dropped"])' "$out")" >&2
    done
    return 1
}

anycast_bench() { # [REPS] [plain|resilient]
    local reps=${1:-3} raw r spec specs
    ANYCAST_ROUTER=${2:-plain}
    specs=("anycast nginx-crash" "vrrp nginx-crash" "anycast node-kill" "anycast link-cut" "vrrp link-cut" "anycast maintenance" "anycast nginx-return")
    case $ANYCAST_ROUTER in
        plain) ;;
        resilient) specs=("anycast nginx-crash" "anycast node-kill" "anycast link-cut" "anycast maintenance" "anycast nginx-return") ;;
        *) echo "usage: scripts/bench anycast [REPS] [plain|resilient]" >&2; return 2 ;;
    esac
    raw=${BENCH_RAW:-$(mktemp "${TMPDIR:-/tmp}/bench-anycast.XXXXXX")}
    echo "machine load before: $(cut -d' ' -f1-3 /proc/loadavg); router $ANYCAST_ROUTER; BFD 100 ms x $BFD_MULT, check every $CHECK_INTERVAL_MS ms, VRRP advert 100 ms" >&2
    for r in $(seq "$reps"); do
        for spec in "${specs[@]}"; do
            ab_measure $spec >>"$raw" || echo "no run counted: $spec" >&2
        done
    done
    echo "machine load after: $(cut -d' ' -f1-3 /proc/loadavg); raw results: $raw" >&2
    python3 - "$raw" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ok = lambda d: d["steady_before"] and set(d["sessions_dropped"]) <= ({"n1"} if d["case"] in ("node-kill", "link-cut") else set()) and not d["summary"]["own_answered_by_failed"] and d.get("n1_back", True)
runs = [r for r in runs if ok(r)]
rows = {}
for r in runs:
    rows.setdefault((r["mode"], r["case"], r.get("router", "plain")), []).append(r["summary"])
med = lambda xs: statistics.median(xs) if xs else None
fmt = lambda v: "-" if v is None else f"{v:.0f}"
print("| mode | router | failure of n1 | runs | event took (ms, median) | n1's flows | n1's flows: first answer after the failure, median flow (ms) | slowest flow (ms) | n1's flows broken / never answered | other nodes' flows disturbed |")
print("|---|---|---|---|---|---|---|---|---|---|")
order = [("anycast", "nginx-crash"), ("vrrp", "nginx-crash"), ("anycast", "node-kill"), ("anycast", "link-cut"), ("vrrp", "link-cut"), ("anycast", "maintenance"), ("anycast", "nginx-return")]
order = [(m, c, router) for router in ("plain", "resilient") for m, c in order]
for key in order:
    s = rows.get(key)
    if not s:
        continue
    own = med([x["own"] for x in s])
    p50 = med([x["own_wait_p50_ms"] for x in s if x["own_wait_p50_ms"] is not None])
    mx = med([x["own_wait_max_ms"] for x in s if x["own_wait_max_ms"] is not None])
    never = sum(x["own_never_answered"] for x in s)
    broken = sum(x["own_broken"] for x in s)
    owns = sum(x["own"] for x in s)
    if key[0] == "vrrp":
        other = "— (standby: no flows)"
    else:
        d = sum(x["others_disturbed"] for x in s)
        t = sum(x["others"] for x in s)
        other = f"{d}/{t} ({100 * d / t:.0f} %)" if t else "-"
    ev = med([r["event_ms"] for r in runs if (r["mode"], r["case"], r.get("router", "plain")) == key])
    router = "—" if key[0] == "vrrp" else {"plain": "hash-threshold", "resilient": "resilient group"}[key[2]]
    print(f"| {key[0]} | {router} | {key[1]} | {len(s)} | {ev:.0f} | {own:.0f} of {s[0]['flows']} | {fmt(p50)} | {fmt(mx)} | {broken}/{owns} / {never} | {other} |")
PY
}
