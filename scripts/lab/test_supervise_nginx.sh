#!/usr/bin/env bash
# Seed 000 with real nginx supervised by hafront on two nodes: SIGKILL of the
# master's nginx is a tracking event at once (weight -60: 150 -> 90 < 100), the
# client's HTTP requests to the VIP are answered by the backup; the orphaned
# workers are killed with their master; nginx is restarted after its backoff and
# the VIP returns (preempt). A crash loop ends in fault with growing delays (no
# tight loop) and the node stays out until nginx has run healthy again. Status
# and /metrics show the service. Shutdown releases the VIP before stopping nginx.
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"

nginx_conf() { # node
    nginx_conf_head "$dir/nginx-$1" 2 64
    cat <<NGINX
    server {
        listen 80;
        location / { return 200 "node-$1\n"; }
    }
}
NGINX
}
for n in a b; do
    nginx_conf $n >"$dir/nginx-$n.conf"
    hf_conf $n web 51 "$([ $n = a ] && echo 150 || echo 100)" 3 100ms "\"$VIP/24\"" \
        'track_services = [ { name = "nginx", weight = -60 } ]' \
        '[services.nginx]' 'kind = "nginx"' "config = \"$dir/nginx-$n.conf\"" \
        'restart_delay = "1s"' 'restart_delay_max = "4s"' 'max_restarts = 3' 'healthy_after = "3s"' \
        >"$dir/$n.toml"
    "$HF_BIN" check-config -c "$dir/$n.toml" >/dev/null || fail "config of $n: $("$HF_BIN" check-config -c "$dir/$n.toml" 2>&1)"
done
status_json() { "$HF_BIN" status --runtime-dir "$dir/run-$1" --json; }
svc() { status_json "$1" | "$PY" -c "import json,sys; s=json.load(sys.stdin)['services']['nginx']; print($2)"; }
nginx_pid() { svc "$1" "s['pid'] if s['pid'] and s['state'] in ('running', 'failed') else ''" 2>/dev/null || true; }
wait_nginx_pid() { # node old_pid timeout_s: a running nginx other than old_pid
    local deadline=$(( $(date +%s%N) + $3 * 1000000000 )) p
    while [ "$(date +%s%N)" -lt "$deadline" ]; do
        p=$(nginx_pid "$1")
        if [ -n "$p" ] && [ "$p" != "$2" ]; then echo "$p"; return 0; fi
        sleep 0.02
    done
    return 1
}
http_get() { lab_exec c curl -s --max-time 1 "http://$VIP/"; }

hf_start a "$dir/a.toml"
hf_start b "$dir/b.toml"
hf_wait_state a web master 5 || fail "a not master"
hf_wait_state b web backup 5 || fail "b not backup"
pa=$(wait_nginx_pid a "" 5) || fail "nginx not started on a"
wait_nginx_pid b "" 5 >/dev/null || fail "nginx not started on b"
[ "$(http_get)" = node-a ] || fail "the VIP is not answered by a's nginx"
# Our nginx is a's child, in its own process group, with its workers.
[ "$(ps -o pgid= -p "$pa" | tr -d ' ')" = "$pa" ] || fail "nginx is not in its own process group"
workers=$(pgrep -g "$pa" | grep -vx "$pa" | wc -l)
[ "$workers" -ge 2 ] || fail "nginx workers not found ($workers)"
pass "nginx supervised on both nodes (a: pid $pa, $workers workers); the VIP answers from a"

# --- seed 000: SIGKILL of the master's nginx ---------------------------------
ip netns exec "$LAB-c" "$PY" "$here/../lib/http_wait.py" "http://$VIP/" node-b 10 >"$dir/answer-b" &
prober=$!
lab_track_pid $prober
sleep 0.3 # the prober polls
t0=$(date +%s%N)
kill -KILL "$pa"
lab_wait_vip b $VIP 5 || fail "VIP did not move to b after nginx died on a"
t_vip=$(date +%s%N)
wait $prober || fail "no HTTP answer from b through the VIP"
lab_untrack_pid $prober
t_http=$(cat "$dir/answer-b")
echo "   SIGKILL of a's nginx -> VIP on b: $(( (t_vip - t0) / 1000000 )) ms; -> first HTTP answer from b: $(( (t_http - t0) / 1000000 )) ms (advert 100 ms, fast preempt)"
fast_ms=$(( (t_http - t0) / 1000000 ))
[ "$fast_ms" -lt 150 ] || fail "failover took $fast_ms ms with fast preempt (more than 150 ms)"
grep 'tracked item changed' "$dir/hafront-a.log" | grep nginx | grep_q 'up=false' || fail "no tracking event logged on a"
# The orphaned workers went with their master (they would keep port 80 and answer).
sleep 0.2
live_in_group() { # pgid: members that are not zombies (reaping orphans is init's job)
    local p st
    for p in $(pgrep -g "$1" || true); do
        st=$(ps -o stat= -p "$p" 2>/dev/null || true)
        [ -n "$st" ] && [[ $st != Z* ]] && echo "$p"
    done
    return 0
}
left=$(live_in_group "$pa")
[ -z "$left" ] || fail "orphaned nginx workers of group $pa still run: $left"
pass "SIGKILL nginx on a: tracking event at once, VIP and HTTP answers on b; orphaned workers killed"

# Restarted after its 1 s backoff; a's priority comes back and it preempts.
pa2=$(wait_nginx_pid a "$pa" 5) || fail "nginx not restarted on a"
hf_wait_state a web master 5 || fail "a did not take the VIP back (preempt)"
out=$(http_get)
[ "$out" = node-a ] || fail "VIP back on a but answered by '$out'"
[ "$(svc a "s['restarts']")" = 1 ] || fail "restarts counter is not 1: $(svc a "s")"
pass "nginx restarted (pid $pa2) after the backoff; VIP back on a (preempt)"

# status and metrics
status_json a >"$dir/status-a.json"
"$PY" - "$dir/status-a.json" <<'PYEOF' || fail "status: services section (see above)"
import json, sys
s = json.load(open(sys.argv[1]))
n = s["services"]["nginx"]
assert n["kind"] == "nginx" and n["state"] == "running" and n["up"] and not n["failed"], n
assert n["restarts"] == 1 and n["last_exit"].startswith("exited"), n
items = s["instances"]["web"]["tracking"]["items"]
assert {"kind": "service", "name": "nginx", "weight": -60, "up": True} in items, items
PYEOF
lab_exec a true
"$PY" "$here/../lib/api.py" "unix:$dir/run-a/api.sock" GET /metrics >"$dir/metrics-a"
grep -q '^hafront_supervised_service_restarts_total{service="nginx",kind="nginx"} 1$' "$dir/metrics-a" \
    || fail "metrics: restarts sample missing: $(grep supervised "$dir/metrics-a")"
grep -q '^hafront_supervised_service_up{service="nginx",kind="nginx"} 1$' "$dir/metrics-a" || fail "metrics: up sample"
"$HF_BIN" status --runtime-dir "$dir/run-a" | grep -E '^nginx +nginx +running +[0-9]+ +1 ' >/dev/null \
    || fail "hafront status: no service line: $("$HF_BIN" status --runtime-dir "$dir/run-a")"
pass "status services.nginx (running, restarts 1, last exit) and /metrics hafront_supervised_service_restarts_total 1"

# --- RFC timing: b with fast_preempt = false waits for its Master_Down_Timer ----
# (3 x 100 ms + skew 61 ms after the last advert it accepted, sent up to 100 ms
# before the kill: at least ~260 ms; fast preempt takes a few ms.)
sed -i 's/^priority = 100$/priority = 100\nfast_preempt = false/' "$dir/b.toml"
n_reloads=$(grep -c 'configuration reloaded' "$dir/hafront-b.log" || true)
kill -HUP "${HF_PID[b]}"
for _ in $(seq 50); do [ "$(grep -c 'configuration reloaded' "$dir/hafront-b.log")" -gt "$n_reloads" ] && break; sleep 0.1; done
ip netns exec "$LAB-c" "$PY" "$here/../lib/http_wait.py" "http://$VIP/" node-b 10 >"$dir/answer-b" &
prober=$!
lab_track_pid $prober
sleep 0.3
t0=$(date +%s%N)
kill -KILL "$pa2"
wait $prober || fail "no HTTP answer from b (RFC timing)"
lab_untrack_pid $prober
rfc_ms=$(( ($(cat "$dir/answer-b") - t0) / 1000000 ))
echo "   same with fast_preempt = false on b (RFC 5798 discard, Master_Down_Interval): $rfc_ms ms"
[ "$rfc_ms" -ge 200 ] || fail "RFC behaviour: b took over after $rfc_ms ms, before its Master_Down_Interval"
pa2=$(wait_nginx_pid a "$pa2" 5) || fail "nginx not restarted on a"
hf_wait_state a web master 5 || fail "a did not take the VIP back"
pass "fast preempt: $fast_ms ms from SIGKILL to b's answer; RFC timing (fast_preempt = false): $rfc_ms ms"

# --- crash loop: backoff, then fault, then back when healthy ------------------
for _ in $(seq 100); do [ "$(svc a "s['consecutive_failures']")" = 0 ] && break; sleep 0.1; done
[ "$(svc a "s['consecutive_failures']")" = 0 ] || fail "nginx on a never counted as healthy"
pid=$pa2
starts=()
for k in 1 2 3 4; do
    kill -KILL "$pid"
    tk=$(date +%s%N)
    if [ $k -lt 4 ]; then
        pid=$(wait_nginx_pid a "$pid" 10) || fail "nginx not restarted after crash $k"
        starts+=($(( ($(date +%s%N) - tk) / 1000000 )))
    fi
done
echo "   restart delays after crashes 1-3: ${starts[*]} ms (configured 1 s doubling, max 4 s)"
[ "${starts[0]}" -ge 900 ] && [ "${starts[1]}" -ge 1900 ] && [ "${starts[2]}" -ge 3900 ] \
    || fail "restart delays do not follow the backoff: ${starts[*]}"
hf_wait_state a web fault 2 || fail "a did not fault after the 4th crash (max_restarts = 3)"
[ "$(svc a "s['failed']")" = True ] || fail "service not marked failed"
lab_wait_vip b $VIP 2 || fail "VIP not on b while a is in fault"
pass "crash loop: restarts after ${starts[*]} ms, then failed -> a in fault, VIP on b"
# Restarted at the maximum delay; a stays in fault until nginx ran healthy_after (3 s).
pid=$(wait_nginx_pid a "$pid" 6) || fail "no restart at the maximum delay"
tr=$(date +%s%N)
sleep 1.5
[ "$(hf_field a "s['instances']['web']['state']")" = fault ] || fail "a left fault before nginx was healthy"
hf_wait_state a web master 5 || fail "a did not come back after nginx ran healthy"
healthy_ms=$(( ($(date +%s%N) - tr) / 1000000 ))
[ "$healthy_ms" -ge 2900 ] || fail "a came back after $healthy_ms ms, before healthy_after"
[ "$(http_get)" = node-a ] || fail "VIP back on a but not answered by a"
pass "a stayed in fault until nginx had run 3 s healthy ($healthy_ms ms), then took the VIP back"

# --- reload: SIGHUP to hafront reloads nginx when its file changed -------------
sed -i 's/return 200 "node-a\\n"/return 200 "node-a reloaded\\n"/' "$dir/nginx-a.conf"
kill -HUP "${HF_PID[a]}"
for _ in $(seq 50); do [ "$(http_get)" = "node-a reloaded" ] && break; sleep 0.1; done
if [ "$(http_get)" != "node-a reloaded" ]; then
    ps -o pid,ppid,pgid,etimes,args -p "$(pgrep -d, -f "nginx" || echo 1)" >&2 || true
    cat "$dir/nginx-a.conf" >&2
    fail "nginx not reloaded after SIGHUP (answer: '$(http_get)', VIP on $(lab_vip_holder $VIP))"
fi
[ "$(nginx_pid a)" = "$pid" ] || fail "nginx was restarted instead of reloaded"
echo 'this is not nginx syntax' >>"$dir/nginx-a.conf"
kill -HUP "${HF_PID[a]}"
for _ in $(seq 50); do grep -q 'fails its test: not reloaded' "$dir/hafront-a.log" && break; sleep 0.1; done
grep -q 'fails its test: not reloaded' "$dir/hafront-a.log" || fail "broken nginx config not reported"
[ "$(http_get)" = "node-a reloaded" ] || fail "broken config reached nginx"
pass "SIGHUP: changed nginx.conf tested and reloaded (same pid); a broken one refused, nginx keeps running"

# --- no preempt: nginx comes back, the VIP stays on b ----------------------------
sed -i '$d' "$dir/nginx-a.conf" # the broken line: nginx must start again below
# (RFC 5798: preemption is the backup's choice; b still preempts a degraded a.)
sed -i 's/^priority = \(.*\)$/priority = \1\npreempt = false/' "$dir/a.toml"
n_reloads=$(grep -c 'configuration reloaded' "$dir/hafront-a.log")
kill -HUP "${HF_PID[a]}"
for _ in $(seq 50); do [ "$(grep -c 'configuration reloaded' "$dir/hafront-a.log")" -gt "$n_reloads" ] && break; sleep 0.1; done
for _ in $(seq 100); do [ "$(svc a "s['consecutive_failures']")" = 0 ] && break; sleep 0.1; done
kill -KILL "$pid"
lab_wait_vip b $VIP 5 || fail "VIP did not move to b (no preempt)"
pid=$(wait_nginx_pid a "$pid" 5) || fail "nginx not restarted on a"
sleep 1.5
[ "$(hf_field a "s['instances']['web']['state']")" = backup ] || fail "a preempted with preempt = false"
lab_has_vip b $VIP || fail "VIP left b with preempt = false"
[ "$(lab_exec c curl -s --max-time 1 "http://$VIP/")" = node-b ] || fail "VIP not answered by b"
pass "preempt = false: nginx back on a (priority 150 again), the VIP stays on b"

# --- shutdown order: the VIP goes first, then nginx ----------------------------
pb=$(nginx_pid b)
hf_stop b
grep -n 'virtual address removed\|service stopped' "$dir/hafront-b.log" | tail -2 >"$dir/order"
head -1 "$dir/order" | grep_q 'virtual address removed' || fail "shutdown order: $(cat "$dir/order")"
tail -1 "$dir/order" | grep_q 'service stopped' || fail "shutdown order: $(cat "$dir/order")"
kill -0 "$pb" 2>/dev/null && fail "nginx still runs after hafront stopped"
lab_wait_vip a $VIP 2 || fail "VIP not on a after b stopped"
pass "shutdown of master b: VIP released first, then nginx stopped; a took over"


# --- a stop where everything gets SIGTERM at once (systemd's control-group stop) --
pa=$(nginx_pid a)
kill -TERM "${HF_PID[a]}"
kill -TERM -- "-$pa"
hf_stop a
pgrep -f "nginx -c $dir/nginx-a.conf" >/dev/null && fail "nginx was restarted while hafront stopped"
pass "SIGTERM to hafront and nginx at once: nginx not restarted during the stop"
