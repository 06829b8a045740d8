#!/usr/bin/env bash
# The two-node appliance layout is valid as shipped:
# - `hafront check-config` accepts appliance/hafront.toml alone and layered with
#   node-a.env / node-b.env (with the unit's token credential: its loopback API
#   listener needs a token, and without one check-config refuses, naming api.listen), and the effective configuration carries each node's
#   name, priority and unicast peer (the env layering really applies);
# - nginx is followed by [services.nginx] (systemd_unit adoption) and track_services,
#   not a pidof script; the API token comes from the unit's credential;
# - every other shipped TOML (containers/) passes check-config too;
# - `systemd-analyze verify` accepts hafront.service without a single warning (with
#   ExecStart pointing at the built binary); skipped, with a message, when
#   systemd-analyze is not installed (it is not installed for this test).
# Usage: HF_BIN=target/release/hafront appliance/test.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
HF_BIN=${HF_BIN:-$root/target/release/hafront}
[ -x "$HF_BIN" ] || { echo "appliance: no hafront binary at $HF_BIN (cargo build --release)" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hafront-appliance.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok:   $*"; }

# check-config with exactly the variables of an env file (none from the caller), plus
# EXTRA_ENV (what the unit's Environment= adds).
EXTRA_ENV=()
check() { # out envfile|"" file...
    local out=$1 envfile=$2 vars=() args=() f
    shift 2
    [ -z "$envfile" ] || mapfile -t vars < <(grep -Ev '^[[:space:]]*(#|$)' "$envfile")
    for f in "$@"; do args+=(-c "$f"); done
    env -i PATH="$PATH" "${vars[@]}" "${EXTRA_ENV[@]}" "$HF_BIN" check-config "${args[@]}" >"$out" 2>&1
}
# The value of KEY in TABLE of check-config's printed TOML.
value() { # file table key
    awk -v t="[$2]" -v k="$3" '
        /^\[/ { in_t = ($0 == t); next }
        in_t && $1 == k { sub(/^[^=]*= */, ""); print; exit }' "$1"
}

# The API token: a root-only file the unit passes as a credential, named through
# Environment=HAFRONT_API__TOKEN_FILE=%d/api-token, always there for the service. As
# the service sees it:
mkdir -p "$tmp/credentials"
(umask 077 && openssl rand -hex 32 >"$tmp/credentials/api-token")
EXTRA_ENV=(HAFRONT_API__TOKEN_FILE="$tmp/credentials/api-token")
if check "$tmp/shared" "" appliance/hafront.toml; then
    ok "appliance/hafront.toml alone (with the unit's token credential) passes check-config"
else
    fail "appliance/hafront.toml: $(cat "$tmp/shared")"
fi
for n in a b; do
    case $n in a) prio=150 peer=192.0.2.2 ;; b) prio=100 peer=192.0.2.1 ;; esac
    if ! check "$tmp/$n" "appliance/node-$n.env" appliance/hafront.toml; then
        fail "hafront.toml + node-$n.env: $(cat "$tmp/$n")"
        continue
    fi
    got="$(value "$tmp/$n" node name) $(value "$tmp/$n" vrrp.instances.web priority) $(value "$tmp/$n" vrrp.instances.web unicast_peers)"
    if [ "$got" = "\"node-$n\" $prio [\"$peer\"]" ]; then
        ok "node-$n: hafront.toml + node-$n.env -> name node-$n, priority $prio, peer $peer"
    else
        fail "node-$n: effective name/priority/peers are '$got'"
    fi
done
# The file of the two nodes is the same: only the env differs.
if [ "$(value "$tmp/a" vrrp.instances.web virtual_ips)" = '["192.0.2.100/24"]' ] &&
    [ "$(value "$tmp/a" ipvs.services.app master_of)" = '"web"' ]; then
    ok "shared keys (VIP, IPVS service bound to the master) come from hafront.toml"
else
    fail "shared keys missing from the effective config"
fi
# nginx is followed by hafront itself (the distribution's unit adopted), tracked as a
# service; the pidof script is only a commented alternative.
if [ "$(value "$tmp/a" services.nginx systemd_unit)" = '"nginx.service"' ] &&
    grep -q '^track_services = \[ { name = "nginx" } \]' appliance/hafront.toml &&
    ! grep -Eq '^[^#]*pidof' appliance/hafront.toml; then
    ok "nginx: [services.nginx] adopts nginx.service, tracked with track_services; no active pidof script"
else
    fail "appliance/hafront.toml does not follow nginx through [services.nginx] + track_services"
fi
if check "$tmp/tok" appliance/node-a.env appliance/hafront.toml &&
    [ "$(value "$tmp/tok" api token_file)" = "\"$tmp/credentials/api-token\"" ]; then
    ok "api.token_file from the unit's credential (HAFRONT_API__TOKEN_FILE=%d/api-token) passes check-config"
else
    fail "token credential: $(cat "$tmp/tok")"
fi
rm "$tmp/credentials/api-token"
if check "$tmp/tok" appliance/node-a.env appliance/hafront.toml; then
    fail "check-config accepted a missing api.token_file"
elif grep -q 'api.token_file' "$tmp/tok"; then
    ok "without the credential, check-config (the unit's ExecReload) refuses, naming api.token_file"
else
    fail "missing token: $(cat "$tmp/tok")"
fi
# The unit's ExecStopPost as systemd runs it once hafront has stopped, the credential
# gone with it: same file and environment as the daemon, read offline. In an empty
# network namespace (unshare -n: nothing of this machine touched) it finds no eth0,
# removes nothing and succeeds.
stoppost='ExecStopPost=-/usr/local/bin/hafront remove-vips -c /etc/hafront/hafront.toml'
if ! grep -qxF "$stoppost" appliance/hafront.service; then
    fail "hafront.service lacks $stoppost"
elif ! command -v unshare >/dev/null 2>&1; then
    echo "SKIP: remove-vips with the appliance files: no unshare"
else
    mapfile -t vars < <(grep -Ev '^[[:space:]]*(#|$)' appliance/node-a.env)
    if env -i PATH="$PATH" "${vars[@]}" "${EXTRA_ENV[@]}" unshare -n "$HF_BIN" remove-vips \
        -c appliance/hafront.toml >"$tmp/stoppost" 2>&1 &&
        grep -q '^removed 0, failed 0, instances without their interface 1$' "$tmp/stoppost"; then
        ok "ExecStopPost: remove-vips reads hafront.toml + node-a.env without the credential, succeeds"
    else
        fail "ExecStopPost remove-vips: $(cat "$tmp/stoppost")"
    fi
fi
EXTRA_ENV=()
# Without the unit's Environment= no token is named at all: the loopback listener
# is refused (any local user or web page reaches 127.0.0.1).
if check "$tmp/tok" "" appliance/hafront.toml; then
    fail "check-config accepted the loopback API listener without a token"
elif grep -q 'api.listen' "$tmp/tok"; then
    ok "without any token, check-config refuses the loopback listener, naming api.listen"
else
    fail "no token: $(cat "$tmp/tok")"
fi
# A typo in an env file is an error naming the variable, not a silent default.
printf 'HAFRONT_VRRP__INSTANCES__WEB__PRIORITI=90\n' >"$tmp/typo.env"
if check "$tmp/typo" "$tmp/typo.env" appliance/hafront.toml; then
    fail "a misspelt HAFRONT_ variable was accepted"
elif grep -q 'HAFRONT_VRRP__INSTANCES__WEB__PRIORITI' "$tmp/typo"; then
    ok "a misspelt HAFRONT_ variable is rejected, naming it"
else
    fail "misspelt variable: message does not name it: $(cat "$tmp/typo")"
fi

for f in containers/*.toml; do
    [ -e "$f" ] || continue
    if check "$tmp/c" "" "$f"; then ok "$f passes check-config"; else fail "$f: $(cat "$tmp/c")"; fi
done

# Anycast mode: anycast.toml layered on hafront.toml passes check-config, and
# Debian's BIRD parses the front end's bird-anycast.conf (bird -p).
EXTRA_ENV=(HAFRONT_API__TOKEN_FILE="$tmp/any-token")
(umask 077 && openssl rand -hex 32 >"$tmp/any-token")
if check "$tmp/any" appliance/node-a.env appliance/hafront.toml appliance/anycast.toml &&
    [ "$(value "$tmp/any" anycast.web prefixes)" = '["203.0.113.10/32"]' ]; then
    ok "anycast.toml layered on hafront.toml + node-a.env passes check-config"
else
    fail "anycast.toml: $(cat "$tmp/any")"
fi
EXTRA_ENV=()
if command -v bird >/dev/null 2>&1; then
    for f in bird-anycast.conf bird-anycast-bfd.conf; do
        if bird -p -c "appliance/$f" >"$tmp/bird" 2>&1; then
            ok "bird -p accepts appliance/$f"
        else
            fail "$f: $(cat "$tmp/bird")"
        fi
    done
else
    echo "SKIP: bird -p: bird2 is not installed"
fi

if command -v systemd-analyze >/dev/null 2>&1; then
    mkdir "$tmp/unit"
    sed "s|/usr/local/bin/hafront|$HF_BIN|g" appliance/hafront.service >"$tmp/unit/hafront.service"
    # verify exits 0 on unknown keys and bad values (it only warns): any output fails.
    if systemd-analyze verify "$tmp/unit/hafront.service" >"$tmp/verify" 2>&1 && [ ! -s "$tmp/verify" ]; then
        ok "systemd-analyze verify hafront.service: no warning"
    else
        fail "systemd-analyze verify: $(cat "$tmp/verify")"
    fi
    if [ -x /usr/sbin/bird ]; then
        cp appliance/bird-bfd.service "$tmp/unit/bird-bfd.service"
        if systemd-analyze verify "$tmp/unit/bird-bfd.service" >"$tmp/verify" 2>&1 && [ ! -s "$tmp/verify" ]; then
            ok "systemd-analyze verify bird-bfd.service: no warning"
        else
            fail "systemd-analyze verify bird-bfd.service: $(cat "$tmp/verify")"
        fi
    fi
    for k in 'Type=notify' 'WatchdogSec=' 'ExecReload=/bin/kill -HUP $MAINPID' \
        'AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW' 'CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW' \
        'NoNewPrivileges=yes' 'ProtectSystem=strict' 'LoadCredential=api-token:/etc/hafront/api-token' \
        'Environment=HAFRONT_API__TOKEN_FILE=%d/api-token' 'StateDirectory=hafront' 'LimitNOFILE=' \
        'UMask=0077' 'ProtectProc=invisible' 'PrivateIPC=yes'; do
        awk -v k="$k" 'index($0, k) == 1 { f = 1 } END { exit !f }' appliance/hafront.service ||
            fail "hafront.service lacks $k"
    done
else
    echo "SKIP: systemd-analyze verify: systemd is not installed (not installed just for this check)"
fi

echo "appliance: ${fails} failures"
[ "$fails" -eq 0 ]
