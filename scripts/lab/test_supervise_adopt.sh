#!/usr/bin/env bash
# Adoption and plain commands: an nginx started outside hafront (daemonized, its
# pidfile given as services.nginx.pidfile) is watched through a pidfd, so its death
# is a tracking event at once; hafront does not restart it, and sees it again when
# its manager (here the test) starts it. A kind = "command" service is a child
# restarted after its delay.
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"

mkdir -p "$dir/www"
echo ok >"$dir/www/index.html"
{ nginx_conf_head "$dir/nginx" 1 64; cat; } >"$dir/nginx.conf" <<NGINX
    server { listen 80; location / { return 200 "node-a\n"; } }
}
NGINX
hf_conf a web 51 150 3 100ms "\"$VIP/24\"" \
    'track_services = [ { name = "nginx", weight = -60 } ]' \
    '[services.nginx]' 'kind = "nginx"' "pidfile = \"$dir/nginx.pid\"" \
    '[services.sleeper]' 'kind = "command"' 'command = ["/bin/sleep", "1000"]' 'restart_delay = "300ms"' \
    '[services.web]' 'kind = "command"' "command = [\"$PY\", \"-m\", \"http.server\", \"8081\", \"--bind\", \"127.0.0.1\", \"--directory\", \"$dir/www\"]" \
    'check = "web"' 'restart_delay = "300ms"' 'healthy_after = "1s"' \
    '[checks.web]' 'kind = "http"' 'url = "http://127.0.0.1:8081/"' 'interval = "200ms"' 'timeout = "200ms"' 'rise = 1' 'fall = 2' \
    >"$dir/a.toml"
hf_conf b web 51 100 3 100ms "\"$VIP/24\"" >"$dir/b.toml"
"$HF_BIN" check-config -c "$dir/a.toml" >/dev/null || fail "config: $("$HF_BIN" check-config -c "$dir/a.toml" 2>&1)"
svc() { "$HF_BIN" status --runtime-dir "$dir/run-a" --json | "$PY" -c "import json,sys; s=json.load(sys.stdin)['services']['$1']; print($2)"; }
prio() { hf_field a "s['instances']['web']['priority']"; }
wait_prio() { # value timeout_s
    local i
    for i in $(seq $(( $2 * 50 ))); do [ "$(prio)" = "$1" ] && return 0; sleep 0.02; done
    return 1
}

lab_exec a nginx -c "$dir/nginx.conf" # daemonizes: not hafront's child
for _ in $(seq 50); do [ -s "$dir/nginx.pid" ] && break; sleep 0.1; done
NPID=$(cat "$dir/nginx.pid")
hf_start a "$dir/a.toml"
hf_start b "$dir/b.toml"
hf_wait_state a web master 5 || fail "a not master"
for _ in $(seq 50); do [ "$(svc nginx "s['state']")" = running ] && break; sleep 0.1; done
[ "$(svc nginx "(s['state'], s['adopted'], s['pid'])")" = "('running', True, $NPID)" ] \
    || fail "nginx not adopted: $(svc nginx s)"
pass "nginx started elsewhere adopted from its pidfile (pid $NPID)"

t0=$(date +%s%N)
pgid=$(ps -o pgid= -p "$NPID" | tr -d ' ')
kill -KILL "$NPID"
wait_prio 90 2 || fail "a's priority did not drop when the adopted nginx died"
echo "   adopted nginx killed -> a's priority 90 after $(( ($(date +%s%N) - t0) / 1000000 )) ms (pidfd, no poll)"
lab_wait_vip b $VIP 5 || fail "VIP did not move to b"
# Its workers are not hafront's to kill; its manager cleans up.
kill -KILL $(pgrep -g "$pgid") 2>/dev/null || true
sleep 1.5
[ "$(svc nginx "s['state']")" = down ] || fail "adopted nginx state: $(svc nginx "s['state']")"
pgrep -f "nginx -c $dir/nginx.conf" >/dev/null && fail "hafront restarted an adopted service"
pass "adopted nginx died: tracking event at once, VIP moved to b; hafront did not restart it"

lab_exec a nginx -c "$dir/nginx.conf"
wait_prio 150 5 || fail "a's priority did not come back when nginx was started again"
hf_wait_state a web master 5 || fail "a did not take the VIP back"
pass "nginx started again by its manager: seen within the 1 s poll, a master again"

sp=$(svc sleeper "s['pid']")
[ -n "$sp" ] && [ "$sp" != None ] || fail "command service not running"
kill -KILL "$sp"
for _ in $(seq 40); do p=$(svc sleeper "s['pid']"); [ "$p" != None ] && [ "$p" != "$sp" ] && break; sleep 0.05; done
[ "$p" != None ] && [ "$p" != "$sp" ] || fail "command service not restarted"
[ "$(svc sleeper "s['restarts']")" = 1 ] || fail "restart not counted"
pass "kind = command: /bin/sleep killed, restarted after 300 ms (pid $sp -> $p)"

# Liveness: a server that hangs (SIGSTOP) but does not die is found by its check
# and restarted.
for _ in $(seq 50); do [ "$(svc web "s['consecutive_failures'] == 0 and s['state'] == 'running'")" = True ] && break; sleep 0.1; done
wp=$(svc web "s['pid']")
for _ in $(seq 30); do lab_exec a curl -s --max-time 0.5 http://127.0.0.1:8081/ | grep_q ok && break; sleep 0.1; done
kill -STOP "$wp"
for _ in $(seq 60); do p=$(svc web "s['pid']"); [ "$p" != None ] && [ "$p" != "$wp" ] && break; sleep 0.1; done
[ "$p" != None ] && [ "$p" != "$wp" ] || fail "hung server not restarted (state $(svc web "s['state']"))"
svc web "s['last_exit']" | grep_q "liveness check web down" || fail "last_exit: $(svc web "s['last_exit']")"
[ -e "/proc/$wp" ] && ! grep -q '^State:.*Z' "/proc/$wp/status" && fail "the hung server $wp was not killed"
pass "liveness check: a hung (SIGSTOP) server is killed and restarted ($wp -> $p)"
