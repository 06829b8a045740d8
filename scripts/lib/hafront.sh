# shellcheck shell=bash
# Helpers to run hafront nodes inside the namespace lab (scripts/lib/lab.sh).
# HF_BIN: the binary (default target/release/hafront, built if missing). Not a
# HAFRONT_* name: those are hafront's own configuration variables.

HF_ROOT=${HF_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
HF_BIN=${HF_BIN:-$HF_ROOT/target/release/hafront}
declare -A HF_PID=()

hf_build() {
    if [ ! -x "$HF_BIN" ]; then
        (cd "$HF_ROOT" && cargo build --release --quiet)
    fi
}

# hf_conf NODE INSTANCE VRID PRIORITY VERSION INTERVAL VIPS [extra TOML lines...]
# Prints a node configuration with one instance on eth0.
hf_conf() {
    local node=$1 inst=$2 vrid=$3 prio=$4 ver=$5 int=$6 vips=$7
    shift 7
    local rundir
    rundir="$(lab_logdir)/run-$node"
    cat <<CONF
runtime_dir = "$rundir"
state_dir = "$(lab_logdir)/state-$node"
[node]
name = "node-$node"
[log]
level = "${HF_LOG_LEVEL:-info}"
[vrrp.instances.$inst]
interface = "eth0"
vrid = $vrid
priority = $prio
version = $ver
advert_interval = "$int"
virtual_ips = [$vips]
CONF
    local line
    for line in "$@"; do printf '%s\n' "$line"; done
}

# hf_pair [VIPS] [INTERVAL] — the usual pair: instance web, VRID 51, VRRPv3, node a
# priority 150 started first and master, then node b priority 100 and backup;
# configurations in $dir/a.toml and $dir/b.toml.
hf_pair() {
    local vips=${1:-"\"$VIP/24\""} int=${2:-100ms} d
    d=$(lab_logdir)
    hf_conf a web 51 150 3 "$int" "$vips" >"$d/a.toml"
    hf_conf b web 51 100 3 "$int" "$vips" >"$d/b.toml"
    hf_start a "$d/a.toml"
    hf_wait_state a web master 5 || fail "a not master"
    hf_start b "$d/b.toml"
    hf_wait_state b web backup 5 || fail "b not backup"
}

# hf_start NODE CONF_FILE [ENV=VALUE...] — starts hafront in the node's namespace.
hf_start() {
    local node=$1 conf=$2
    shift 2
    hf_run "$node" "$@" -- -c "$conf"
}

# hf_run NODE [ENV=VALUE...] -- RUN_ARGS... — `hafront run RUN_ARGS` in the node's
# namespace (e.g. `--keepalived-config FILE`), its output in the lab's log.
# HF_WRAP (array, optional): a command hafront runs under inside the namespace,
# e.g. setpriv to start it as another user with given capabilities.
hf_run() {
    local node=$1 log envs=()
    shift
    while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    log="$(lab_logdir)/hafront-$node.log"
    # hafront reads HAFRONT_* as configuration: only the ones given here, none
    # inherited from the caller's environment.
    local scrub=() v
    for v in $(compgen -e); do [[ $v == HAFRONT_* ]] && scrub+=(-u "$v"); done
    env "${scrub[@]}" "${envs[@]}" ip netns exec "$LAB-$node" ${HF_WRAP[@]+"${HF_WRAP[@]}"} "$HF_BIN" run "$@" >>"$log" 2>&1 &
    HF_PID[$node]=$!
    lab_track_pid "${HF_PID[$node]}"
}

# hf_stop NODE — SIGTERM and wait for the process to exit.
hf_stop() {
    local pid=${HF_PID[$1]:-}
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    lab_untrack_pid "$pid"
    HF_PID[$1]=""
}

# hf_kill NODE — SIGKILL (no cleanup by hafront, like a crash).
hf_kill() {
    local pid=${HF_PID[$1]:-}
    [ -n "$pid" ] || return 0
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    lab_untrack_pid "$pid"
    HF_PID[$1]=""
}

# hf_status NODE — the node's status.json.
hf_status() {
    cat "$(lab_logdir)/run-$1/status.json" 2>/dev/null
}

# hf_field NODE PYTHON_EXPR — evaluates an expression over status.json as `s`.
hf_field() {
    hf_status "$1" | python3 -c "import json,sys; s=json.load(sys.stdin); print($2)" 2>/dev/null
}

# hf_wait_state NODE INSTANCE STATE TIMEOUT_S
hf_wait_state() {
    local node=$1 inst=$2 want=$3 deadline=$(( $(date +%s%N) + ${4} * 1000000000 ))
    while [ "$(date +%s%N)" -lt "$deadline" ]; do
        [ "$(hf_field "$node" "s['instances']['$inst']['state']")" = "$want" ] && return 0
        sleep 0.05
    done
    echo "timeout: node $node instance $inst not $want (is: $(hf_field "$node" "s['instances']['$inst']['state']"))" >&2
    return 1
}

# Assertions that name what failed.
# The message is kept for lab_down, which repeats it after the lab's logs (scripts/test
# shows a failing test's last 60 lines only).
fail() { LAB_FAILED="$*"; echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

# ka_run NODE BINARY CONF TAG — keepalived's VRRP process in the node's namespace
# (foreground; pid files ka-TAG*.pid, output in keepalived-NODE.log, in the lab's
# directory); its PID in KA_PID, tracked for the teardown.
ka_run() {
    local d
    d=$(lab_logdir)
    ip netns exec "$LAB-$1" "$2" -n -l -D -P -f "$3" -p "$d/ka-$4.pid" -r "$d/ka-$4-vrrp.pid" >>"$d/keepalived-$1.log" 2>&1 &
    KA_PID=$!
    lab_track_pid "$KA_PID"
}

# keepalived 2.4.3, built from ../shared/third-party beside the repository (or by
# KA_BUILD): prints the binary's path; build-keepalived builds it once (~1-2 min on
# a fresh machine) and caches it.
keepalived_243() {
    local build=${KA_BUILD:-} cand
    for cand in "$HF_ROOT/../shared/third-party/build-keepalived" "$HF_ROOT/../../shared/third-party/build-keepalived"; do
        [ -n "$build" ] || { [ -x "$cand" ] && build=$cand; }
    done
    [ -n "$build" ] || { echo "build-keepalived not found (../shared/third-party beside the repo; or set KA_BUILD)" >&2; return 1; }
    "$build" || { echo "keepalived 2.4.3 did not build" >&2; return 1; }
}
