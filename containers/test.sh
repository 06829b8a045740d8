#!/usr/bin/env bash
# The OCI image (containers/Containerfile) on this machine's Docker engine: two
# hafront containers as master and backup, a client container, on a private network
# that never touches the host's: every container runs with --network none, and this
# script plugs a veth into each one's namespace, joined by a bridge in a "switch"
# namespace it creates (documentation addresses 192.0.2.0/24, no route out).
#
# A node is a pod: a holder container owns the network namespace (eth0 is there with
# its address before hafront starts, as on a host), the hafront container joins it
# (--network container:...). It shows:
#   - the image's PID 1 is tini, hafront its child, and nginx hafront's child (the
#     default config supervises it: [services.nginx]); the default config plus
#     --env-file appliance/node-X.env makes a master (150) and a backup (100);
#   - the VIP on the master, and the client's HTTP request through it answered there;
#   - SIGHUP (docker kill -s HUP) reloads without a state change;
#   - the master's hafront container killed (SIGKILL): the backup takes the VIP and
#     answers the client; started again, hafront first removes the VIP left behind
#     (seen with `ip monitor`), then preempts;
#   - the master's nginx SIGKILLed: hafront restarts it at once, the client is
#     answered by node-a again;
#   - the master's nginx killed with a broken configuration: the restarts fail, the
#     service and the http check lower the priority, the VIP moves; the
#     configuration repaired, nginx runs again and the VIP comes back;
#   - docker stop (SIGTERM through tini): hafront exits 0 at once, the VIP is gone
#     from the master when stop returns, and the backup takes over within the skew.
#
# No registry is reachable here, so the base image (Debian with tini, iproute2,
# nftables, nginx-light, curl) is made by debootstrap from Debian's mirror and
# `docker import`ed as hafront-test-base:<codename>; it is kept (about a minute to
# make again). The hafront image is built on it with the host's binary (PREBUILT)
# and removed at the end; so are the containers and the switch namespace.
#
# Skipped (exit 0, with a message) when no Docker engine answers.
# Usage: HF_BIN=target/release/hafront containers/test.sh   (root)
set -euo pipefail
grep_q() { grep "$@" >/dev/null; } # grep -q reading all its input (scripts/lib/lab.sh)
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
HF_BIN=${HF_BIN:-$root/target/release/hafront}

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    echo "SKIP: containers: no Docker engine answers on this machine"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "containers: needs root (network namespaces)" >&2; exit 1; }
[ -x "$HF_BIN" ] || { echo "containers: no hafront binary at $HF_BIN" >&2; exit 1; }

. /etc/os-release
suite=${VERSION_CODENAME:-bookworm}
base=${HF_CONTAINER_BASE:-hafront-test-base:$suite}
mirror=${HF_DEBIAN_MIRROR:-http://deb.debian.org/debian}
P=hfc$$
img=hafront-test:$P
stage=hafront-test-build:$P
sw=$P-sw
VIP=192.0.2.100
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hafront-containers.XXXXXX")
containers=()
mon_pid=
fails=0
failed_steps=()

cleanup() {
    local rc=$?
    trap - EXIT
    if [ -n "$mon_pid" ]; then kill "$mon_pid" 2>/dev/null || true; wait "$mon_pid" 2>/dev/null || true; fi
    if [ "$rc" -ne 0 ] || [ "$fails" -ne 0 ]; then
        local c
        for c in "$P-a" "$P-b"; do
            docker inspect "$c" >/dev/null 2>&1 || continue
            echo "---- docker logs $c (last 30 lines)"
            docker logs --tail 30 "$c" 2>&1 | sed 's/^/    /'
        done
        local f
        for f in "${failed_steps[@]}"; do echo "FAILED: $f"; done
    fi
    [ ${#containers[@]} -eq 0 ] || docker rm -f "${containers[@]}" >/dev/null 2>&1 || true
    ip netns del "$sw" 2>/dev/null || true
    # The build stage is tagged too, so that no untagged image is left behind.
    docker rmi "$img" "$stage" >/dev/null 2>&1 || true
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Each line carries the time, to be read against the containers' logs; the failures
# are said again at the very end (scripts/test shows only the last lines of a log).
fail() { echo "FAIL: $(date +%T.%3N) $*"; fails=$((fails + 1)); failed_steps+=("$(date +%T.%3N) $*"); }
ok() { echo "ok:   $(date +%T.%3N) $*"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
wait_for() { # timeout_s command... : 0 as soon as it succeeds
    local deadline=$(( $(now_ms) + $1 * 1000 ))
    shift
    while [ "$(now_ms)" -lt "$deadline" ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.02
    done
    return 1
}

# ---- base image ------------------------------------------------------------------------
if docker image inspect "$base" >/dev/null 2>&1; then
    echo "containers: base image $base (cached)"
else
    t0=$(now_ms)
    if ! command -v debootstrap >/dev/null 2>&1; then
        echo "containers: installing debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >"$tmp/apt.log" 2>&1 ||
            { apt-get update -q >"$tmp/apt.log" 2>&1 &&
              DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >"$tmp/apt.log" 2>&1; } ||
            { cat "$tmp/apt.log" >&2; exit 1; }
    fi
    echo "containers: making $base with debootstrap ($suite from $mirror)"
    rootfs=$tmp/rootfs
    # The same release as the host: the image runs the host-built (glibc) hafront.
    debootstrap --variant=minbase --include=tini,iproute2,nftables,nginx-light,curl,procps \
        "$suite" "$rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 ||
        { tail -n 30 "$tmp/debootstrap.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import -c 'CMD ["/bin/bash"]' - "$base" >/dev/null
    rm -rf "$rootfs"
    echo "containers: base image made in $(( ($(now_ms) - t0) / 1000 )) s"
fi

# ---- the image, from containers/Containerfile ------------------------------------------
ctx=$tmp/ctx
mkdir -p "$ctx/prebuilt"
cp -a containers "$ctx/"
cp "$HF_BIN" "$ctx/prebuilt/hafront"
t0=$(now_ms)
build() { # tag [--target STAGE]
    local tag=$1
    shift
    DOCKER_BUILDKIT=0 docker build -q -f containers/Containerfile \
        --build-arg BUILDER="$base" --build-arg BASE="$base" --build-arg PREBUILT=prebuilt/hafront \
        -t "$tag" "$@" "$ctx" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; exit 1; }
}
build "$stage" --target build
build "$img"
ok "image built from containers/Containerfile in $(( $(now_ms) - t0 )) ms"
ep=$(docker image inspect -f '{{json .Config.Entrypoint}} {{json .Config.Cmd}}' "$img")
[ "$ep" = '["/usr/bin/tini","--","/usr/local/bin/hafront"] ["run","-c","/etc/hafront/hafront.toml"]' ] &&
    ok "entrypoint: tini -- hafront run -c /etc/hafront/hafront.toml" || fail "entrypoint/cmd: $ep"

# ---- the private network ---------------------------------------------------------------
ip netns add "$sw"
ip -n "$sw" link set lo up
ip -n "$sw" link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0
ip -n "$sw" link set br0 up

# Not --privileged: every capability dropped, and only what hafront needs added
# (docs/security.md, "Capabilities hafront itself needs"): NET_ADMIN and NET_RAW for
# VRRP, VIPs and ARP; for the nginx it supervises as root SETUID, SETGID, CHOWN (its
# temporary directories), DAC_OVERRIDE (its logs belong to www-data), NET_BIND_SERVICE
# (port 80) and KILL (its workers run as
# www-data); SETPCAP so that its scripts' bounding set can be emptied.
CAPS="NET_ADMIN NET_RAW SETUID SETGID CHOWN DAC_OVERRIDE NET_BIND_SERVICE KILL SETPCAP"
caps=(--cap-drop ALL)
for c in $CAPS; do caps+=(--cap-add "$c"); done
cap_mask() { # capability names -> the CapEff hex mask of exactly those
    local m=0 n
    for n in "$@"; do
        case $n in
            CHOWN) m=$((m | 1 << 0)) ;; DAC_OVERRIDE) m=$((m | 1 << 1)) ;; FOWNER) m=$((m | 1 << 3)) ;;
            KILL) m=$((m | 1 << 5)) ;; SETGID) m=$((m | 1 << 6)) ;; SETUID) m=$((m | 1 << 7)) ;;
            SETPCAP) m=$((m | 1 << 8)) ;; NET_BIND_SERVICE) m=$((m | 1 << 10)) ;;
            NET_ADMIN) m=$((m | 1 << 12)) ;; NET_RAW) m=$((m | 1 << 13)) ;;
            *) echo "cap_mask: unknown $n" >&2; return 1 ;;
        esac
    done
    printf '%016x' "$m"
}

declare -A PID=()
run() { # name docker-run-args... : a detached container we remove at the end
    local name=$1
    shift
    containers+=("$name")
    docker run -d --name "$name" "$@" >/dev/null
}
plug() { # node address : holder container with eth0 on the switch
    local n=$1 addr=$2 pid
    run "$P-$n-net" --network none --hostname "node-$n" --entrypoint /usr/bin/tini "$img" -- sleep infinity
    pid=$(docker inspect -f '{{.State.Pid}}' "$P-$n-net")
    PID[$n]=$pid
    ip -n "$sw" link add "p$n" type veth peer name eth0 netns "$pid"
    ip -n "$sw" link set "p$n" master br0 up
    nsenter -t "$pid" -n sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.eth0.accept_dad=0
    nsenter -t "$pid" -n ip addr add "$addr/24" dev eth0
    nsenter -t "$pid" -n ip link set eth0 up
}
hafront() { # node : the image as documented, with the node's env file; its nginx
    # (run by hafront) says which node answers
    echo "node-$1" >"$tmp/index-$1.html"
    run "$P-$1" --network "container:$P-$1-net" "${caps[@]}" \
        -v "$tmp/index-$1.html:/var/www/html/index.html:ro" \
        --env-file "appliance/node-$1.env" -e HAFRONT_VRRP__INSTANCES__WEB__ADVERT_INTERVAL=100ms "$img"
}
nginx_pid() { docker exec "$P-$1" sh -c 'cat /run/nginx.pid 2>/dev/null' || true; }
has_vip() { nsenter -t "${PID[$1]}" -n ip -o -4 addr show dev eth0 | grep_q " $VIP/24"; }
no_vip() { ! has_vip "$1"; }
served_by() { [ "$(docker exec "$P-c" curl -sf --max-time 1 "http://$VIP/")" = "node-$1" ]; }
transitions() { docker logs "$P-$1" 2>&1 | grep -c 'state changed' || true; }

plug a 192.0.2.1
plug b 192.0.2.2
plug c 192.0.2.10
# the client: a plain container of the base image
run "$P-c" --network "container:$P-c-net" --entrypoint /usr/bin/tini "$base" -- sleep infinity
t0=$(now_ms)
hafront a
hafront b
ok "host network untouched: containers on --network none, eth0 of each on bridge br0 of namespace $sw"

# ---- master and backup ---------------------------------------------------------------------
if wait_for 15 has_vip a; then
    ok "VIP $VIP on the master (node-a, priority 150) $(( $(now_ms) - t0 )) ms after docker run"
else
    fail "no VIP on node-a"
fi
no_vip b && ok "no VIP on the backup (node-b)" || fail "node-b holds the VIP too"
wait_for 10 served_by a && ok "client -> http://$VIP/ answered by node-a's nginx" || fail "client not served by node-a"

init=$(docker exec "$P-a" cat /proc/1/comm)
hf_ppid=$(docker exec "$P-a" sh -c 'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = hafront ] && awk "{print \$4}" $p/stat; done; true')
[ "$init" = tini ] && [ "$hf_ppid" = 1 ] && ok "PID 1 is tini, hafront is its child" ||
    fail "PID 1 is '$init', hafront's parent '$hf_ppid'"
ng=$(nginx_pid a)
ng_parent=$(docker exec "$P-a" sh -c "awk '{print \$4}' /proc/$ng/stat 2>/dev/null; true")
hf_pid=$(docker exec "$P-a" sh -c 'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = hafront ] && basename $p; done; true')
[ -n "$ng" ] && [ "$ng_parent" = "$hf_pid" ] && ok "nginx (master $ng) is hafront's child: [services.nginx], no pidof script" ||
    fail "nginx master '$ng' has parent '$ng_parent', hafront is '$hf_pid'"
capeff() { docker exec "$P-a" sh -c "awk '\$1 == \"CapEff:\" {print \$2}' /proc/$1/status 2>/dev/null; true"; }
# shellcheck disable=SC2086
want_hf=$(cap_mask $CAPS)
want_ng=$(cap_mask SETUID SETGID CHOWN DAC_OVERRIDE NET_BIND_SERVICE KILL)
hf_eff=$(capeff "$hf_pid")
ng_eff=$(capeff "$ng")
[ "$hf_eff" = "$want_hf" ] && ok "hafront runs with --cap-drop ALL --cap-add ${CAPS// / --cap-add }: CapEff $hf_eff" ||
    fail "hafront's CapEff '$hf_eff', expected $want_hf"
# nginx keeps the server's capabilities of those hafront holds: not NET_ADMIN, NET_RAW, SETPCAP.
[ "$ng_eff" = "$want_ng" ] && ok "nginx master (hafront's child) CapEff $ng_eff: no NET_ADMIN, NET_RAW or SETPCAP" ||
    fail "nginx master's CapEff '$ng_eff', expected $want_ng"

# ---- SIGHUP through tini: reload, no state change ---------------------------------------------
before="$(transitions a) $(transitions b)"
docker kill -s HUP "$P-a" >/dev/null
if wait_for 5 sh -c "docker logs $P-a 2>&1 | grep -q 'configuration reloaded by=\"SIGHUP\"'"; then
    sleep 1
    if [ "$(transitions a) $(transitions b)" = "$before" ] && has_vip a && no_vip b; then
        ok "docker kill -s HUP: tini forwarded it, hafront reloaded, no state change, VIP stays"
    else
        fail "state changed on SIGHUP: transitions $before -> $(transitions a) $(transitions b)"
    fi
else
    fail "SIGHUP did not reach hafront"
fi

# ---- the master's hafront container killed -----------------------------------------------------
t0=$(now_ms)
docker kill "$P-a" >/dev/null
if wait_for 10 has_vip b; then
    ok "master container killed (SIGKILL): VIP on node-b after $(( $(now_ms) - t0 )) ms (advert 100 ms)"
else
    fail "VIP not taken over by node-b"
fi
wait_for 10 served_by b && ok "client -> http://$VIP/ answered by node-b's nginx" || fail "client not served by node-b"
has_vip a && ok "node-a's namespace keeps the VIP its killed hafront left behind (nothing removed it)" ||
    echo "note: no VIP left in node-a's namespace"
# Started again: hafront removes the stale VIP before anything else, then preempts.
nsenter -t "${PID[a]}" -n ip -o monitor address dev eth0 >"$tmp/monitor-a" 2>&1 &
mon_pid=$!
sleep 0.3
t0=$(now_ms)
docker start "$P-a" >/dev/null
if wait_for 15 sh -c "! nsenter -t ${PID[b]} -n ip -o -4 addr show dev eth0 | grep -q ' $VIP/24'" && has_vip a; then
    ok "node-a started again: VIP back on node-a (preempt) after $(( $(now_ms) - t0 )) ms, released by node-b"
else
    fail "node-a did not take the VIP back"
fi
sleep 0.3
kill "$mon_pid" 2>/dev/null || true
wait "$mon_pid" 2>/dev/null || true
mon_pid=
first=$(grep " $VIP/24" "$tmp/monitor-a" | head -n 1)
case $first in
    Deleted*) ok "stale VIP removed at start: first address event on node-a is '${first%% scope*}'" ;;
    *) fail "expected the stale VIP deleted first at start; events: $(tr '\n' '|' <"$tmp/monitor-a")" ;;
esac
[ "$(grep -c " $VIP/24" "$tmp/monitor-a")" -ge 2 ] && ok "then added again on becoming master" ||
    fail "VIP not re-added: $(tr '\n' '|' <"$tmp/monitor-a")"
wait_for 10 served_by a && ok "client served by node-a again" || fail "client not served by node-a after preempt"

# ---- nginx killed on the master ------------------------------------------------------------------
old=$(nginx_pid a)
t0=$(now_ms)
docker exec "$P-a" kill -KILL "$old"
restarted() { local p; p=$(nginx_pid a); [ -n "$p" ] && [ "$p" != "$old" ] && docker exec "$P-a" kill -0 "$p"; }
if wait_for 10 restarted; then
    ok "nginx SIGKILLed on node-a: hafront saw it exit and started it again (master $old -> $(nginx_pid a)) after $(( $(now_ms) - t0 )) ms"
else
    fail "hafront did not restart node-a's nginx"
fi
# grep -c, not -q: under pipefail, grep -q leaving at the first match can make
# docker logs die of SIGPIPE and the pipeline fail (seen in CI).
[ "$(docker logs "$P-a" 2>&1 | grep -c 'service down: restarting')" -gt 0 ] && ok "hafront logged the death of nginx" ||
    fail "no 'service down' in node-a's log"
wait_for 10 served_by a && ok "client answered by node-a's restarted nginx" || fail "client not served by node-a after the restart"

# nginx dies and cannot start again (a broken configuration): the VIP moves.
t0=$(now_ms)
docker exec "$P-a" sh -c 'echo "broken;" >/etc/nginx/conf.d/zz-broken.conf && kill -KILL "$(cat /run/nginx.pid)"'
if wait_for 15 has_vip b && wait_for 5 no_vip a; then
    ok "nginx down for good on node-a (restarts fail 'nginx -t'): priority lowered, VIP on node-b after $(( $(now_ms) - t0 )) ms"
else
    fail "VIP did not move when node-a's nginx could not start"
fi
wait_for 10 served_by b && ok "client served by node-b" || fail "client not served by node-b after nginx died"
docker exec "$P-a" rm -f /etc/nginx/conf.d/zz-broken.conf
t0=$(now_ms)
if wait_for 30 has_vip a && wait_for 5 no_vip b; then
    ok "configuration repaired: hafront's next restart runs nginx, VIP back on node-a after $(( $(now_ms) - t0 )) ms"
else
    fail "VIP did not return to node-a with nginx"
fi

# ---- docker stop: SIGTERM through tini -----------------------------------------------------------
wait_for 10 served_by a || true
t0=$(now_ms)
docker stop -t 10 "$P-a" >/dev/null
stop_ms=$(( $(now_ms) - t0 ))
vip_after_stop=$(has_vip a && echo yes || echo no)
code=$(docker inspect -f '{{.State.ExitCode}}' "$P-a")
if [ "$stop_ms" -lt 3000 ] && [ "$code" = 0 ]; then
    ok "docker stop: hafront got SIGTERM through tini and exited 0 in $stop_ms ms (stop timeout 10 s)"
else
    fail "docker stop took $stop_ms ms, exit code $code"
fi
[ "$vip_after_stop" = no ] && ok "SIGTERM: VIP removed from node-a by the time docker stop returned" ||
    fail "VIP still on node-a after docker stop"
if wait_for 5 has_vip b; then
    ok "SIGTERM: priority-0 advert, node-b master $(( $(now_ms) - t0 )) ms after docker stop began"
else
    fail "node-b did not take over after SIGTERM"
fi
wait_for 10 served_by b && ok "client served by node-b" || fail "client not served by node-b after docker stop"

echo "containers: ${fails} failures"
[ "$fails" -eq 0 ]
