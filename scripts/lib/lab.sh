# shellcheck shell=bash
# Namespace lab: a switch namespace with a bridge, nodes a and b, client c (and
# optional extra nodes), each with eth0 on a switch port. Documentation addresses
# only, no default route, nothing on the host. Source it, then call lab_up; the EXIT
# trap tears everything down, also on failure.
#
#   node  IPv4          IPv6            switch port
#   a     192.0.2.1/24  2001:db8::1/64  pa
#   b     192.0.2.2/24  2001:db8::2/64  pb
#   d     192.0.2.3/24  2001:db8::3/64  pd   (lab_add_node d)
#   c     192.0.2.10/24 2001:db8::10/64 pc   (client)

LAB=${LAB:-hf$$}
LAB_PIDS=()
LAB_NODES=()
LAB_DIR=""
LAB_KEEP_LOGS=${LAB_KEEP_LOGS:-}

lab_exec() { local n=$1; shift; ip netns exec "$LAB-$n" "$@"; }

# `grep -q` at the end of a pipeline, but reading all its input. grep -q leaves at
# the first match; a writer that writes line by line (ip and bridge write(2) each
# line) then dies of SIGPIPE, and under pipefail the match reads as a miss (12 % of
# `ip -o addr show | grep -q` on a line not the last, measured here; CI failed
# test_vmac6 on it). scripts/lab/test_shell_pipes.sh keeps `| grep -q` out.
grep_q() { grep "$@" >/dev/null; }

lab_logdir() {
    if [ -z "$LAB_DIR" ]; then
        LAB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/hafront-lab.XXXXXX")
    fi
    echo "$LAB_DIR"
}

lab_track_pid() { LAB_PIDS+=("$1"); }
lab_untrack_pid() { # after waiting for it: the PID may be reused from now on
    local p keep=()
    for p in "${LAB_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    LAB_PIDS=("${keep[@]}")
}
lab_is_child() { # pid: alive and a child of this shell
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }            # fields after "pid (comm) "
    # shellcheck disable=SC2086
    set -- $stat                 # $1 state, $2 ppid
    [ "$2" = "$$" ]
}
lab_in_our_netns() { # pid: runs in one of this lab's namespaces
    local n
    for n in "${LAB_NODES[@]}"; do
        ip netns pids "$LAB-$n" 2>/dev/null | grep -x "$1" >/dev/null && return 0
    done
    return 1
}

lab_host_id() {
    case $1 in a) echo 1 ;; b) echo 2 ;; d) echo 3 ;; e) echo 4 ;; c) echo 10 ;; *) echo "lab: unknown node $1" >&2; return 1 ;; esac
}

lab_add_node() {
    local n=$1 id
    id=$(lab_host_id "$n")
    ip netns add "$LAB-$n"
    LAB_NODES+=("$n")
    lab_exec "$n" ip link set lo up
    # No DAD: addresses must be usable at once (sysctls inside the namespace only).
    lab_exec "$n" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    ip -n "$LAB-$n" link add eth0 type veth peer name "p$n" netns "$LAB-sw"
    ip -n "$LAB-sw" link set "p$n" master br0 up
    lab_exec "$n" sysctl -qw net.ipv6.conf.eth0.accept_dad=0
    ip -n "$LAB-$n" addr add "192.0.2.$id/24" dev eth0
    ip -n "$LAB-$n" addr add "2001:db8::$id/64" dev eth0
    ip -n "$LAB-$n" link set eth0 up
}

lab_up() {
    [ "$(id -u)" -eq 0 ] || { echo "lab: needs root" >&2; return 1; }
    trap lab_down EXIT
    trap 'exit 130' INT TERM
    lab_logdir >/dev/null
    ip netns add "$LAB-sw"
    LAB_NODES+=(sw)
    ip -n "$LAB-sw" link set lo up
    ip -n "$LAB-sw" link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0
    ip -n "$LAB-sw" link set br0 up
    local n
    for n in a b c; do lab_add_node "$n"; done
    # Wait for link-local addresses (VRRPv3 over IPv6 sends from them).
    for n in a b c; do
        local i
        for i in $(seq 100); do
            lab_exec "$n" ip -6 -o addr show dev eth0 scope link | grep fe80 >/dev/null && break
            sleep 0.02
        done
    done
    NS_A=$LAB-a NS_B=$LAB-b NS_C=$LAB-c NS_SW=$LAB-sw
    IP_A=192.0.2.1 IP_B=192.0.2.2 IP_C=192.0.2.10
    IP6_A=2001:db8::1 IP6_B=2001:db8::2 IP6_C=2001:db8::10
    export LAB NS_A NS_B NS_C NS_SW IP_A IP_B IP_C IP6_A IP6_B IP6_C
}

lab_down() {
    local rc=$?
    # A test's own teardown (e.g. a mount), before the namespaces go.
    if declare -F lab_before_down >/dev/null; then lab_before_down || true; fi
    local p pids=()
    # Only processes that are still this shell's children: a tracked PID that has
    # exited may have been reused by the system (the wait loops fork a lot).
    for p in "${LAB_PIDS[@]}"; do lab_is_child "$p" && pids+=("$p"); done
    # Whatever still runs inside our namespaces is ours too (keepalived's children).
    local n
    for n in "${LAB_NODES[@]}"; do
        for p in $(ip netns pids "$LAB-$n" 2>/dev/null); do pids+=("$p"); done
    done
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 20); do
        local alive=0
        for p in "${pids[@]}"; do [ -e "/proc/$p" ] && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for p in "${pids[@]}"; do
        # Re-check before SIGKILL: still our child, or still in one of our namespaces.
        if lab_is_child "$p" || lab_in_our_netns "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
    done
    local n
    for n in "${LAB_NODES[@]}"; do ip netns del "$LAB-$n" 2>/dev/null || true; done
    if [ -n "$LAB_DIR" ] && [ -d "$LAB_DIR" ]; then
        if [ $rc -ne 0 ]; then
            echo "---- lab logs ($LAB_DIR) ----" >&2
            local f
            for f in "$LAB_DIR"/*.log; do
                [ -f "$f" ] || continue
                echo "== $f" >&2
                tail -n 40 "$f" >&2
            done
            [ -z "${LAB_FAILED:-}" ] || echo "---- FAIL: $LAB_FAILED" >&2
        fi
        [ -n "$LAB_KEEP_LOGS" ] || rm -rf "$LAB_DIR"
    fi
    return $rc
}

# lab_stop_named NODE COMM — SIGTERM every process named COMM in the node's namespace
# (ours: the lab created it) until none is left, 5 s at most (keepalived's children).
lab_stop_named() {
    local p left
    for _ in $(seq 50); do
        left=""
        for p in $(ip netns pids "$LAB-$1"); do
            [ "$(cat /proc/"$p"/comm 2>/dev/null)" = "$2" ] && left="$left $p"
        done
        [ -z "$left" ] && return 0
        # shellcheck disable=SC2086
        kill -TERM $left 2>/dev/null || true
        sleep 0.1
    done
}

lab_cut() { ip -n "$LAB-sw" link set "p$1" down; }
lab_heal() { ip -n "$LAB-sw" link set "p$1" up; }

lab_block_vrrp() {
    lab_exec "$1" nft -f - <<NFT
table inet hafront_lab {
  chain in { type filter hook input priority 0; meta l4proto 112 drop; }
  chain out { type filter hook output priority 0; meta l4proto 112 drop; }
}
NFT
}
lab_unblock_vrrp() { lab_exec "$1" nft delete table inet hafront_lab 2>/dev/null || true; }

lab_has_vip() { lab_exec "$1" ip -o addr show dev eth0 | grep " ${2}/" >/dev/null; }

lab_vip_holder() {
    local n holders=()
    for n in "${LAB_NODES[@]}"; do
        case $n in sw | c) continue ;; esac
        lab_has_vip "$n" "$1" && holders+=("$n")
    done
    if [ ${#holders[@]} -eq 0 ]; then echo none; else (IFS=,; echo "${holders[*]}"); fi
}

lab_wait_vip() { # node vip timeout_s
    local deadline=$(( $(date +%s%N) + $3 * 1000000000 ))
    while [ "$(date +%s%N)" -lt "$deadline" ]; do
        lab_has_vip "$1" "$2" && return 0
        sleep 0.01
    done
    return 1
}

lab_wait_no_vip() { # node vip timeout_s
    local deadline=$(( $(date +%s%N) + $3 * 1000000000 ))
    while [ "$(date +%s%N)" -lt "$deadline" ]; do
        lab_has_vip "$1" "$2" || return 0
        sleep 0.01
    done
    return 1
}

lab_client_ping() { # vip: a few tries, the neighbour cache may be settling
    local i
    for i in 1 2 3; do
        lab_exec c ping -n -c1 -W1 "$1" >/dev/null 2>&1 && return 0
    done
    return 1
}

# nginx_conf_head PREFIX WORKERS CONNECTIONS [MAIN_LINE] — the start of an nginx.conf
# that runs unprivileged in a lab: pid PREFIX.pid, error log PREFIX-error.log, temp
# directories under PREFIX-tmp/ (created), access log off. It ends inside `http {`:
# the caller prints its servers and the closing brace.
nginx_conf_head() {
    local p=$1
    mkdir -p "$p-tmp"
    printf 'worker_processes %s;\npid %s.pid;\nerror_log %s-error.log;\n' "$2" "$p" "$p"
    [ -z "${4:-}" ] || printf '%s\n' "$4"
    printf 'events { worker_connections %s; }\nhttp {\n    access_log off;\n' "$3"
    local t
    for t in client_body:body proxy:proxy fastcgi:fastcgi uwsgi:uwsgi scgi:scgi; do
        printf '    %s_temp_path %s-tmp/%s;\n' "${t%%:*}" "$p" "${t#*:}"
    done
}
