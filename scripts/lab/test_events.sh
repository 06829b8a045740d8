#!/usr/bin/env bash
# The event stream (issue 18 §3), on a real pair:
# 1. `hafront events --json` follows the backup b; killing the master a puts b's
#    MASTER transition, with its reason, on the stream within 1 s (and as a line in
#    `hafront events`' human output); a check verdict and a rejected reload show up
#    too, ids consecutive; `hafront status --watch` (not a terminal:
#    a `--- ` line per redraw) redraws on the transition.
# 2. A client that asks for the stream over TCP and never reads (small SO_RCVBUF)
#    while 3,000 events are made on the master b: it is dropped (counted in
#    hafront_api_event_clients_dropped_total), the master keeps advertising on time
#    (no transition on the peer, normal gaps between adverts), `/v1/status` stays
#    fast, and the well-behaved `hafront events` client is still there.
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
API="$here/../lib/api.py"
LOAD="$here/../lib/events_load.py"
TOKEN=hafront-events-token-0123456789
(umask 077 && echo "$TOKEN" >"$dir/token")
# Overrides are fsynced (~12 ms each on ext4): on tmpfs the flood of phase 2 takes
# seconds, not tens of seconds.
shm=$(mktemp -d /dev/shm/hafront-events.XXXXXX)
lab_before_down() { rm -rf "$shm"; }

hf_conf a web 51 150 3 100ms "\"$VIP/24\"" >"$dir/a.toml"
hf_conf b web 51 100 3 100ms "\"$VIP/24\"" \
    '[api]' 'listen = "127.0.0.1:9165"' \
    '[checks.flag]' 'kind = "exec"' "command = [\"/usr/bin/test\", \"-e\", \"$dir/flag\"]" \
    'interval = "100ms"' 'rise = 1' 'fall = 1' >"$dir/b.toml"
hf_start a "$dir/a.toml"
hf_wait_state a web master 5 || fail "a not master"
hf_start b "$dir/b.toml" HAFRONT_API__TOKEN_FILE="$dir/token" HAFRONT_STATE_DIR="$shm/state-b"
hf_wait_state b web backup 5 || fail "b not backup"
sock="$dir/run-b/api.sock"

# --- phase 1: what a follower sees ------------------------------------------------------
ip netns exec "$NS_B" "$HF_BIN" events --json --runtime-dir "$dir/run-b" >"$dir/events.jsonl" 2>"$dir/events.err" &
events_pid=$!
lab_track_pid $events_pid
ip netns exec "$NS_B" "$HF_BIN" events --runtime-dir "$dir/run-b" >"$dir/events.txt" 2>"$dir/events-human.err" &
human_pid=$!
lab_track_pid $human_pid
ip netns exec "$NS_B" "$HF_BIN" status --watch --runtime-dir "$dir/run-b" >"$dir/watch.out" 2>"$dir/watch.err" &
watch_pid=$!
lab_track_pid $watch_pid
clients() {
    lab_exec b "$PY" "$API" --token "$TOKEN" http://127.0.0.1:9165 GET /metrics |
        awk -v m="$1" '$1 == m { print $2 }'
}
for _ in $(seq 100); do [ "$(clients hafront_api_event_clients)" = 3 ] && break; sleep 0.05; done
[ "$(clients hafront_api_event_clients)" = 3 ] || fail "hafront_api_event_clients is $(clients hafront_api_event_clients), want 3 (events --json, events, status --watch)"
# The stream needs the token on TCP, as every other request.
[ "$(lab_exec b "$PY" "$API" http://127.0.0.1:9165 GET /v1/events | head -1)" = 401 ] ||
    fail "GET /v1/events on TCP without the token was not refused"
pass "three clients on the stream; 401 without the token on TCP"

# jq-less: the first event line matching a Python condition over `e`.
find_event() { # file condition -> prints the line
    "$PY" -c '
import json, sys
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if eval(sys.argv[2]):
        print(line.strip())
        break' "$1" "$2"
}
wait_event() { # file condition timeout_s -> prints the line
    local deadline=$(( $(date +%s%N) + $3 * 1000000000 )) line
    while [ "$(date +%s%N)" -lt "$deadline" ]; do
        line=$(find_event "$1" "$2")
        [ -n "$line" ] && { echo "$line"; return 0; }
        sleep 0.02
    done
    return 1
}

touch "$dir/flag"
line=$(wait_event "$dir/events.jsonl" "e['type'] == 'check' and e['check'] == 'flag' and e['up']" 3) ||
    fail "no check verdict (flag up) on the stream: $(cat "$dir/events.jsonl")"
pass "check verdict: $line"

t0=$(date +%s%N)
hf_kill a
line=$(wait_event "$dir/events.jsonl" "e['type'] == 'state' and e['to'] == 'master'" 2) ||
    fail "no MASTER transition on the stream within 2 s: $(cat "$dir/events.jsonl")"
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
[ "$ms" -lt 1000 ] || fail "the MASTER transition reached the follower after $ms ms (limit 1000): $line"
"$PY" -c 'import json,sys; e=json.loads(sys.argv[1]); sys.exit(0 if e["reason"] == "master down timer expired" and e["from"] == "backup" and e["instance"] == "web" and e["time"].endswith("Z") and e["unix_ms"] > 0 and e["id"] > 0 else 1)' "$line" ||
    fail "the transition event lacks its reason, time or id: $line"
pass "master killed: b's MASTER transition on the stream after $ms ms: $line"

grep -Eq '^20[0-9-]+T[0-9:.]+Z state +web \(vrid 51\) BACKUP -> MASTER, priority 100: master down timer expired$' "$dir/events.txt" ||
    fail "hafront events (human) lacks the transition line: $(cat "$dir/events.txt")"
pass "hafront events: $(grep -m1 'BACKUP -> MASTER' "$dir/events.txt")"

cp "$dir/b.toml" "$dir/b.toml.good"
echo 'vrrp = [' >>"$dir/b.toml"
"$HF_BIN" ctl --runtime-dir "$dir/run-b" reload 2>/dev/null && fail "a broken b.toml was accepted"
line=$(wait_event "$dir/events.jsonl" "e['type'] == 'reload' and not e['successful'] and 'b.toml' in e['reason']" 2) ||
    fail "no failed reload naming b.toml on the stream: $(tail -3 "$dir/events.jsonl")"
cp "$dir/b.toml.good" "$dir/b.toml"
pass "rejected reload: ${line:0:200}"

# Ids are consecutive for this client (no gap was reported).
"$PY" -c '
import json, sys
ids = [json.loads(l)["id"] for l in open(sys.argv[1]) if l.strip()]
sys.exit(0 if ids and ids == list(range(ids[0], ids[0] + len(ids))) else 1)' "$dir/events.jsonl" ||
    fail "event ids not consecutive: $(cut -c1-60 "$dir/events.jsonl")"
! grep -q missed "$dir/events.err" || fail "hafront events reported a gap: $(cat "$dir/events.err")"
pass "$(wc -l <"$dir/events.jsonl") events, ids consecutive"

# status --watch redrew on the transition and shows b as master below that line.
for _ in $(seq 50); do grep -q '^--- .*BACKUP -> MASTER' "$dir/watch.out" && break; sleep 0.05; done
grep -q '^--- .*BACKUP -> MASTER' "$dir/watch.out" || fail "status --watch did not redraw on the transition: $(grep '^---' "$dir/watch.out")"
sed -n '/^--- .*BACKUP -> MASTER/,$p' "$dir/watch.out" | grep -Eq '^web +master ' ||
    fail "status --watch's redraw does not show web master: $(tail -20 "$dir/watch.out")"
pass "status --watch: $(grep -c '^--- ' "$dir/watch.out") redraws, the transition's: $(grep -m1 '^--- .*BACKUP -> MASTER' "$dir/watch.out" | cut -c1-120)"
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
lab_untrack_pid "$watch_pid"

# --- phase 2: a client that never reads, on the master ---------------------------------
hf_start a "$dir/a.toml" HAFRONT_VRRP__INSTANCES__WEB__PRIORITY=50
hf_wait_state a web backup 5 || fail "a (priority 50) not backup"
sleep 0.5
ta=$(grep -c 'state changed' "$dir/hafront-a.log" || true)
ip netns exec "$NS_A" tcpdump -i eth0 -n -l -tt "ip proto 112 and src $IP_B" >"$dir/adverts.txt" 2>/dev/null &
cap=$!
lab_track_pid $cap
ip netns exec "$NS_B" "$PY" "$LOAD" slow 127.0.0.1 9165 "$TOKEN" "$dir/release" 60 >"$dir/slow.json" 2>&1 &
slow_pid=$!
lab_track_pid $slow_pid
for _ in $(seq 100); do [ "$(clients hafront_api_event_clients)" = 3 ] && break; sleep 0.05; done
[ "$(clients hafront_api_event_clients)" = 3 ] || fail "the slow client is not on the stream"
sleep 0.5
flood=$(lab_exec b "$PY" "$LOAD" flood "$sock" web 3000) || fail "flood failed: $flood"
echo "flood: $flood"
for _ in $(seq 60); do [ "$(clients hafront_api_event_clients_dropped_total)" = 1 ] && break; sleep 0.05; done
dropped=$(clients hafront_api_event_clients_dropped_total)
sleep 0.5
kill "$cap" 2>/dev/null || true
wait "$cap" 2>/dev/null || true
lab_untrack_pid "$cap"
touch "$dir/release"
wait "$slow_pid" || true
lab_untrack_pid "$slow_pid"
slow=$(cat "$dir/slow.json")
echo "slow client: $slow"
field() { "$PY" -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
[ "$(field "$slow" status)" = "HTTP/1.1 200 OK" ] || fail "the slow client's request was not answered 200: $slow"
[ "$(field "$slow" closed)" = True ] || fail "the slow client was not disconnected: $slow"
[ "$dropped" = 1 ] || fail "hafront_api_event_clients_dropped_total is $dropped, want 1"
[ "$(clients hafront_api_event_clients)" = 2 ] || fail "hafront_api_event_clients is $(clients hafront_api_event_clients) after the drop, want 2"
kill -0 "$events_pid" 2>/dev/null || fail "hafront events exited: $(cat "$dir/events.err")"
! grep -q . "$dir/events.err" || fail "hafront events --json lost events or its stream: $(cat "$dir/events.err")"
pass "the client that never read was dropped (dropped_total $dropped), hafront events still follows"
[ "$(field "$flood" bad)" = "[]" ] || fail "requests failed during the flood: $flood"
st=$(field "$flood" status_max_ms)
"$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 1000 else 1)' "$st" || fail "GET /v1/status took $st ms during the flood"
pass "GET /v1/status during the flood: at most $st ms"

ta2=$(grep -c 'state changed' "$dir/hafront-a.log" || true)
[ "$ta2" = "$ta" ] || fail "a changed state during the flood ($ta -> $ta2)"
[ "$(hf_field b "s['instances']['web']['state']")" = master ] || fail "b left master"
gaps=$("$PY" "$here/../lib/advert_gaps.py" <"$dir/adverts.txt")
echo "adverts of b at a: $gaps"
n=$(field "$gaps" adverts)
gap=$(field "$gaps" max_gap_ms)
[ "$n" -ge 20 ] || fail "only $n adverts of b seen at a"
# Master_Down_Interval at a (priority 50) is 3.8 intervals: 300 ms stays well clear.
"$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 300 else 1)' "$gap" || fail "largest gap between b's adverts at a: $gap ms"
pass "b advertised on time during the flood ($n adverts, largest gap $gap ms), no transition at a"
