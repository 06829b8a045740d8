#!/usr/bin/env bash
# The HTTP API against running daemons: status JSON with every section, matching
# reality after a failover; /metrics parsed by the Prometheus client library's
# parser with the keepalived exporter's names and labels; maintenance moves the
# VIP away and back (and survives a restart); priority overrides; a real server
# disabled, enabled and re-weighted in the desired IPVS table without a reload;
# bad requests answered 4xx with the field named, changing nothing; reload; the
# input recorder replays to the live state.
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
API="$here/../lib/api.py"
command -v promtool >/dev/null || fail "promtool missing (Debian's prometheus package; scripts/test installs it)"

extra=(
    'track_scripts = [ { name = "ok", weight = 10 } ]'
    '[scripts.ok]' 'command = ["/bin/true"]' 'interval = "200ms"'
    '[checks.closed]' 'kind = "tcp"' 'target = "127.0.0.1:9"' 'interval = "200ms"' 'timeout = "100ms"' 'rise = 1' 'fall = 1'
    '[checks.self]' 'kind = "tcp"' 'target = "127.0.0.1:9165"' 'interval = "200ms"' 'timeout = "100ms"' 'rise = 1' 'fall = 1'
    '[api]' 'listen = "127.0.0.1:9165"'
    '[ipvs.services.web]' "address = \"$VIP:80\"" 'scheduler = "wrr"' 'master_of = "web"'
    'real_servers = [ { address = "192.0.2.11:80", weight = 1 }, { address = "192.0.2.12:80", weight = 2 } ]'
)
hf_conf a web 51 150 3 100ms "\"$VIP/24\"" "${extra[@]}" >"$dir/a.toml"
hf_conf b web 51 100 3 100ms "\"$VIP/24\"" "${extra[@]}" >"$dir/b.toml"
# Every TCP listener needs a token (issue 13), loopback too.
TOKEN=hafront-test-token-0123456789
(umask 077 && echo "$TOKEN" >"$dir/token-a" && echo "$TOKEN" >"$dir/token-b")
start_a() { hf_start a "$dir/a.toml" HAFRONT_LOG__RECORD_DIR="$dir/rec-a" HAFRONT_API__TOKEN_FILE="$dir/token-a"; }
start_a
hf_start b "$dir/b.toml" HAFRONT_API__TOKEN_FILE="$dir/token-b"
hf_wait_state a web master 5 || fail "a not master"
hf_wait_state b web backup 5 || fail "b not backup"
sock() { echo "unix:$dir/run-$1/api.sock"; }
api() { "$PY" "$API" "$(sock "$1")" "${@:2}"; } # node method path [body]
ctl() { "$HF_BIN" ctl --runtime-dir "$dir/run-$1" "${@:2}"; }
status_json() { "$HF_BIN" status --runtime-dir "$dir/run-$1" --json; }
jq_() { "$PY" -c "import json,sys; s=json.load(sys.stdin); print($1)"; }

# --- status ---------------------------------------------------------------
sleep 0.6 # checks and scripts have run
status_json a >"$dir/status-a.json"
"$PY" - "$dir/status-a.json" <<'PYEOF' || fail "status JSON of a lacks fields (see above)"
import json, sys
s = json.load(open(sys.argv[1]))
for k in ("node", "pid", "version", "uptime_seconds", "instances", "checks", "scripts", "ipvs", "services", "overrides"):
    assert k in s, f"missing {k}"
w = s["instances"]["web"]
for k in ("state", "interface", "vrid", "priority", "configured_priority", "master", "vips", "counters",
          "last_transition", "maintenance", "transitions", "tracking"):
    assert k in w, f"instances.web lacks {k}"
assert s["node"] == "node-a", s["node"]
assert w["state"] == "master" and w["vrid"] == 51 and w["vips"] == ["192.0.2.100/24"], w
assert w["configured_priority"] == 150 and w["priority"] == 160, ("tracked script +10", w["priority"])
assert w["master"] == "192.0.2.1", w["master"]
assert w["counters"]["adverts_sent"] > 0 and w["counters"]["become_master"] == 1, w["counters"]
assert w["last_transition"]["to"] == "master", w["last_transition"]
assert w["tracking"]["effective_priority"] == 160 and w["tracking"]["items"][0]["name"] == "ok", w["tracking"]
assert s["scripts"]["ok"]["up"] is True, s["scripts"]
assert s["checks"]["closed"]["up"] is False and s["checks"]["closed"]["last_error"], s["checks"]["closed"]
assert s["checks"]["self"]["up"] is True and s["checks"]["self"]["last_latency_ms"] is not None, s["checks"]["self"]
web = s["ipvs"]["services"]["web"]
assert s["ipvs"]["available"] is False and "IPVS" in s["ipvs"]["error"], s["ipvs"]  # no IPVS in this kernel
assert web["installed"] is True and web["key"] == "tcp 192.0.2.100:80", web
assert [r["weight"] for r in web["real_servers"]] == [1, 2], web["real_servers"]
PYEOF
pass "status JSON: node, instances (state, priorities, master, VIPs, counters, last transition, tracking), checks, scripts, IPVS, overrides"
"$HF_BIN" status --runtime-dir "$dir/run-a" >"$dir/status-a.txt"
grep -E '^web +master +51 +160/150' "$dir/status-a.txt" >/dev/null || { cat "$dir/status-a.txt"; fail "status table"; }
grep -E '^closed +tcp +down' "$dir/status-a.txt" >/dev/null || { cat "$dir/status-a.txt"; fail "status table: checks"; }
pass "hafront status prints the table"
out=$("$HF_BIN" status --runtime-dir "$dir/nowhere" 2>&1) && fail "status without a daemon succeeded"
grep -q "no hafront daemon is running" <<<"$out" || fail "status without a daemon: unclear message: $out"
pass "hafront status without a daemon: $out"

# --- metrics ----------------------------------------------------------------
lab_exec a "$PY" "$API" --token "$TOKEN" http://127.0.0.1:9165 GET /metrics >"$dir/metrics-a.raw"
[ "$(head -1 "$dir/metrics-a.raw")" = 200 ] || fail "/metrics over TCP: $(head -1 "$dir/metrics-a.raw")"
tail -n +2 "$dir/metrics-a.raw" >"$dir/metrics-a.txt"
"$PY" "$here/../lib/metrics_check.py" "$dir/metrics-a.txt" \
    'keepalived_up=1' \
    "keepalived_vrrp_state{iname=web,intf=eth0,vrid=51,ip_address=$VIP}=2" \
    'keepalived_advertisements_sent_total{iname=web,intf=eth0,vrid=51}>=1' \
    'keepalived_advertisements_received_total{iname=web,intf=eth0,vrid=51}' \
    'keepalived_become_master_total{iname=web,intf=eth0,vrid=51}=1' \
    'keepalived_release_master_total{iname=web,intf=eth0,vrid=51}=0' \
    'keepalived_ip_ttl_errors_total{iname=web,intf=eth0,vrid=51}=0' \
    'keepalived_authentication_failure_total{iname=web,intf=eth0,vrid=51}=0' \
    'keepalived_priority_zero_sent_total{iname=web,intf=eth0,vrid=51}=0' \
    'keepalived_script_status{name=ok}=1' \
    'hafront_vrrp_state{vrrp_instance=web,interface=eth0,vrid=51}=2' \
    'hafront_vrrp_priority{vrrp_instance=web}=160' \
    'hafront_failover_duration_seconds_count' \
    'hafront_check_up{check=closed,kind=tcp}=0' \
    'hafront_check_up{check=self,kind=tcp}=1' \
    'hafront_check_duration_seconds_count{kind=tcp}>=1' \
    'hafront_ipvs_real_server_weight{service=web,address=192.0.2.12:80}=2' \
    'hafront_ipvs_available=0' \
    || fail "/metrics on a"
promtool check metrics <"$dir/metrics-a.txt" >"$dir/promtool-a.txt" 2>&1 || { cat "$dir/promtool-a.txt"; fail "promtool check metrics on a's /metrics"; }
pass "/metrics parses with prometheus_client and passes promtool check metrics; keepalived exporter series and hafront_* present"

# --- failover: status matches reality -----------------------------------------
lab_cut a
hf_wait_state b web master 3 || fail "b did not take over"
lab_wait_vip b $VIP 2 || fail "VIP not on b"
status_json b | jq_ "s['instances']['web']['state'], s['instances']['web']['last_transition']['reason'], s['instances']['web']['master']" >"$dir/b-after.txt"
[ "$(cat "$dir/b-after.txt" | tr '\n' ' ')" = "master master down timer expired 192.0.2.2 " ] || fail "b status after failover: $(cat "$dir/b-after.txt")"
"$PY" "$API" "$(sock b)" GET /metrics | tail -n +2 >"$dir/metrics-b.txt"
"$PY" "$here/../lib/metrics_check.py" "$dir/metrics-b.txt" \
    "keepalived_vrrp_state{iname=web,intf=eth0,vrid=51,ip_address=$VIP}=2" \
    'hafront_failover_duration_seconds_count=1' 'hafront_failover_duration_seconds_bucket{le=1}=1' \
    || fail "b metrics after failover"
lab_heal a
hf_wait_state a web master 3 || fail "a did not preempt back"
lab_wait_vip a $VIP 2 || fail "VIP not back on a"
pass "after a failover the status and metrics of the new master say master, why, and how long"

# --- maintenance ----------------------------------------------------------------
pz=$(status_json a | jq_ "s['instances']['web']['counters']['priority_zero_sent']")
ctl a maintenance web on >/dev/null || fail "ctl maintenance on"
hf_wait_state b web master 2 || fail "b not master after a's maintenance"
lab_wait_vip b $VIP 2 || fail "VIP not on b after a's maintenance"
[ "$(status_json a | jq_ "s['instances']['web']['counters']['priority_zero_sent']")" -gt "$pz" ] \
    || fail "a did not leave with priority 0"
sleep 1
[ "$(hf_field a "s['instances']['web']['state']")" = backup ] || fail "a (150) preempted while in maintenance"
[ "$(status_json a | jq_ "s['instances']['web']['maintenance'], s['overrides']['maintenance']")" = "True ['web']" ] \
    || fail "maintenance not shown: $(status_json a | jq_ "s['instances']['web']['maintenance'], s['overrides']")"
hf_stop a
start_a
hf_wait_state a web backup 5 || fail "a not backup after restart"
sleep 1
[ "$(hf_field a "s['instances']['web']['state']")" = backup ] || fail "maintenance lost across a restart"
lab_has_vip b $VIP || fail "VIP left b while a restarted in maintenance"
ctl a maintenance web off >/dev/null || fail "ctl maintenance off"
hf_wait_state a web master 3 || fail "a did not take back the VIP after maintenance"
lab_wait_vip a $VIP 2 || fail "VIP not back on a"
pass "maintenance: VIP to the peer (priority 0), stays there across a restart of a, back when off"

# --- priority override ------------------------------------------------------------------
ctl a priority web 50 >/dev/null || fail "ctl priority"
hf_wait_state b web master 3 || fail "b (100) did not preempt a at overridden priority 50"
[ "$(status_json a | jq_ "s['instances']['web']['priority'], s['instances']['web']['tracking']['base_priority']" | tr '\n' ' ')" = "60 50 " ] \
    || fail "a's priorities: $(status_json a | jq_ "s['instances']['web']['priority'], s['instances']['web']['tracking']")"
ctl a priority web clear >/dev/null || fail "ctl priority clear"
hf_wait_state a web master 3 || fail "a not master after clearing its priority override"
pass "priority override (50, +10 tracked) hands over to b; cleared, a preempts back"

# --- real servers -------------------------------------------------------------------------
weights() { status_json a | jq_ "[r['weight'] for r in s['ipvs']['services']['web']['real_servers']]"; }
ctl a real-server web 192.0.2.12:80 disable >/dev/null || fail "ctl real-server disable"
sleep 0.3
[ "$(weights)" = "[1, None]" ] || fail "disabled real server still in the desired table: $(weights)"
ctl a real-server web 192.0.2.12:80 weight 7 >/dev/null || fail "ctl real-server weight"
ctl a real-server web 192.0.2.12:80 enable >/dev/null || fail "ctl real-server enable"
sleep 0.3
[ "$(weights)" = "[1, 7]" ] || fail "enabled/re-weighted real server: $(weights)"
ctl a real-server web 192.0.2.12:80 weight clear >/dev/null || fail "ctl real-server weight clear"
sleep 0.3
[ "$(weights)" = "[1, 2]" ] || fail "weight override not cleared: $(weights)"
grep -q 'configuration reloaded' "$dir/hafront-a.log" && fail "a reload happened"
pass "real server disabled, re-weighted, enabled, reset in the desired IPVS table, no reload"

# --- bad requests -------------------------------------------------------------------------
before=$(status_json a | jq_ "s['overrides'], s['instances']['web']['state'], s['instances']['web']['priority']")
expect() { # code field node method path [body]
    local code=$1 field=$2 out
    out=$(api "${@:3}")
    [ "$(head -1 <<<"$out")" = "$code" ] || fail "$4 $5 ${6:-}: got $(head -1 <<<"$out"), want $code: $out"
    if [ "$field" != - ]; then
        [ "$(tail -n +2 <<<"$out" | jq_ "s.get('field')")" = "$field" ] || fail "$4 $5 ${6:-}: field not $field: $out"
    fi
}
expect 400 enable a POST /v1/instances/web/maintenance '{"enable": true}'
expect 400 enabled a POST /v1/instances/web/maintenance '{"enabled": "yes"}'
expect 400 enabled a POST /v1/instances/web/maintenance '{}'
expect 400 body a POST /v1/instances/web/maintenance 'not json'
expect 400 body a POST /v1/instances/web/maintenance '[true]'
expect 404 - a POST /v1/instances/nope/maintenance '{"enabled": true}'
expect 400 priority a POST /v1/instances/web/priority '{"priority": 300}'
expect 400 priority a POST /v1/instances/web/priority '{"priority": 0}'
expect 400 priority a POST /v1/instances/web/priority '{}'
expect 400 address a POST /v1/ipvs/services/web/real-servers/nonsense '{"enabled": false}'
expect 404 - a POST /v1/ipvs/services/web/real-servers/192.0.2.99:80 '{"enabled": false}'
expect 404 - a POST /v1/ipvs/services/nope/real-servers/192.0.2.11:80 '{"enabled": false}'
expect 400 weight a POST /v1/ipvs/services/web/real-servers/192.0.2.11:80 '{"weight": -1}'
expect 400 body a POST /v1/ipvs/services/web/real-servers/192.0.2.11:80 '{}'
expect 405 - a GET /v1/instances/web/maintenance
expect 405 - a POST /v1/status
expect 404 - a GET /v1/nothing
# Duplicate keys: refused, naming the key (serde_json kept the last one).
expect 400 priority a POST /v1/instances/web/priority '{"priority": 100, "priority": 200}'
# A browser's cross-site "simple" POST (text/plain, form) or none at all: 415.
for t in text/plain application/x-www-form-urlencoded ''; do
    out=$("$PY" "$API" --type "$t" "$(sock a)" POST /v1/instances/web/maintenance '{"enabled": true}')
    [ "$(head -1 <<<"$out")" = 415 ] || fail "POST with Content-Type '$t': $out"
done
big=$("$PY" -c "print('{\"enabled\": true, \"pad\": \"' + 'x' * 20000 + '\"}')")
expect 413 - a POST /v1/instances/web/maintenance "$big"
after=$(status_json a | jq_ "s['overrides'], s['instances']['web']['state'], s['instances']['web']['priority']")
[ "$before" = "$after" ] || fail "a bad request changed something: $before -> $after"
kill -0 "${HF_PID[a]}" || fail "a died on bad requests"
pass "bad requests: 4xx with the field named, nothing changed"

# --- reload through the API ------------------------------------------------------------------
expect 200 - a POST /v1/reload
cp "$dir/a.toml" "$dir/a.good"
echo '[vrrp.instances.web.oops' >>"$dir/a.toml"
expect 400 config a POST /v1/reload
[ "$(hf_field a "s['instances']['web']['state']")" = master ] || fail "invalid reload disturbed a"
cp "$dir/a.good" "$dir/a.toml"
pass "POST /v1/reload: applied; an invalid file is refused and the running config kept"

# --- token rule -----------------------------------------------------------------------------
[ "$(lab_exec b "$PY" "$API" http://127.0.0.1:9165 GET /v1/status | head -1)" = 401 ] || fail "b's TCP API answered without its token"
[ "$(lab_exec b "$PY" "$API" --token wrong-token-0123456789 http://127.0.0.1:9165 GET /v1/status | head -1)" = 401 ] || fail "b's TCP API took a wrong token"
[ "$(lab_exec b "$PY" "$API" --token "$TOKEN" http://127.0.0.1:9165 GET /v1/status | head -1)" = 200 ] || fail "b's TCP API refused its token"
pass "a TCP listener with a token answers 401 without it or with a wrong one, 200 with it"
# A reload re-reads the token file (it was read once at start).
NEW=hafront-rotated-token-9876543210
echo "$NEW" >"$dir/token-b"
[ "$(api b POST /v1/reload | head -1)" = 200 ] || fail "reload of b"
[ "$(lab_exec b "$PY" "$API" --token "$TOKEN" http://127.0.0.1:9165 GET /v1/status | head -1)" = 401 ] || fail "b still takes the old token after a reload"
[ "$(lab_exec b "$PY" "$API" --token "$NEW" http://127.0.0.1:9165 GET /v1/status | head -1)" = 200 ] || fail "b refuses the rotated token after a reload"
pass "a reload re-reads api.token_file: the old token 401, the new one 200"
for addr in 192.0.2.1:9165 127.0.0.1:9165; do
    printf '[api]\nlisten = "%s"\n' "$addr" >"$dir/open.toml"
    out=$("$HF_BIN" check-config --no-env -c "$dir/open.toml" 2>&1) && fail "API listener $addr without a token accepted"
    grep -q 'api.listen' <<<"$out" || fail "error does not name api.listen: $out"
done
pass "TCP API listener without a token refused, loopback too: $(grep api.listen <<<"$out" | head -1)"

# --- recorder ---------------------------------------------------------------------------------
sleep 1.5 # recordings are flushed every second
"$HF_BIN" replay "$dir/rec-a/web" >"$dir/replay-a.jsonl" || fail "replay failed"
got=$(tail -1 "$dir/replay-a.jsonl" | jq_ "s['final']['state']")
live=$(hf_field a "s['instances']['web']['state']")
[ "$got" = "$live" ] || fail "replayed recording ends $got, live state $live"
n=$(grep -c '"line"' "$dir/replay-a.jsonl")
pass "recorded inputs ($n) replay to the live state ($live)"
