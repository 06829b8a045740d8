# shellcheck shell=bash
# scripts/bench nginx-crash [REPS]: seed 000 (nginx on two nodes, master 100 /
# backup 90, advert 1 s). SIGKILL of the master node's nginx (its process group), measured to
# the first HTTP answer from the backup through the VIP (scripts/lib/http_wait.py,
# 5 ms polling from the client), median of REPS runs (default 5), 15 s limit.
# Rows:
#   hafront                  nginx supervised, track_services weight -20 (fast preempt)
#   hafront fast_preempt=off the same with RFC 5798 timing on the backup
#   keepalived pidof         as in the seeds: vrrp_script "pidof nginx", interval 1,
#                            weight -20 (sees every namespace's nginx, and the
#                            orphaned workers: expected never to fail over)
#   keepalived curl          a per-node check instead: curl of 127.0.0.1, interval 1,
#                            weight -20, fall 1
# Sourced by scripts/bench after lab_up; uses $dir, $VIP, ka_start/ka_stop, hf_*.

bn_nginx_conf() { # node
    mkdir -p "$dir/bn-nginx-$1-tmp"
    cat <<NGINX
worker_processes 1;
pid $dir/bn-nginx-$1.pid;
error_log $dir/bn-nginx-$1-error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $dir/bn-nginx-$1-tmp/body;
    proxy_temp_path $dir/bn-nginx-$1-tmp/proxy;
    fastcgi_temp_path $dir/bn-nginx-$1-tmp/fastcgi;
    uwsgi_temp_path $dir/bn-nginx-$1-tmp/uwsgi;
    scgi_temp_path $dir/bn-nginx-$1-tmp/scgi;
    server { listen 80; location / { return 200 "node-$1\n"; } }
}
NGINX
}

bn_ka_conf() { # prio check(pidof|curl)
    local script
    if [ "$2" = pidof ]; then script='"/usr/bin/pidof nginx"'; else script='"/usr/bin/curl -sf -o /dev/null --max-time 0.5 http://127.0.0.1/"'; fi
    cat <<KA
global_defs {
  router_id bench
  enable_script_security
  script_user root
}
vrrp_script chk_nginx {
  script $script
  interval 1
  weight -20
  fall 1
  rise 1
}
vrrp_instance web {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority $1
  advert_int 1
  virtual_ipaddress {
    $VIP/24
  }
  track_script {
    chk_nginx
  }
}
KA
}

bn_hf_conf() { # node prio fast
    hf_conf "$1" web 51 "$2" 3 1s "\"$VIP/24\"" "fast_preempt = $3" \
        'track_services = [ { name = "nginx", weight = -20 } ]' \
        '[services.nginx]' 'kind = "nginx"' "config = \"$dir/bn-nginx-$1.conf\"" \
        "restart_delay = \"$([ "$3" = true ] && echo 2s || echo 10s)\"" 'healthy_after = "1s"'
}

# nginx started by the bench (keepalived rows): daemonized in the node's namespace.
bn_nginx_start() { lab_exec "$1" nginx -c "$dir/bn-nginx-$1.conf"; }
bn_nginx_group_kill() { # node: the whole nginx of that node (orphans included)
    local pid pg
    pid=$(cat "$dir/bn-nginx-$1.pid" 2>/dev/null) || return 0
    pg=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ' || true)
    # shellcheck disable=SC2046
    [ -n "$pg" ] && kill -KILL $(pgrep -g "$pg") 2>/dev/null
    return 0
}
bn_master_pid() { # node row
    if [ "${2%% *}" = hafront ]; then
        "$HF_BIN" status --runtime-dir "$dir/run-$1" --json 2>/dev/null |
            /usr/bin/python3 -c "import json,sys; s=json.load(sys.stdin)['services']['nginx']; print(s['pid'] if s['state'] == 'running' else '')" 2>/dev/null
    else
        cat "$dir/bn-nginx-$1.pid" 2>/dev/null
    fi
}

bn_row() { # "hafront" | "hafront fast_preempt=off" | "keepalived pidof" | "keepalived curl", reps
    local row=$1 reps=$2 i results=() pid t0 t1
    for n in a b; do bn_nginx_conf $n >"$dir/bn-nginx-$n.conf"; done
    case $row in
        hafront*)
            local fast=true
            [ "$row" = hafront ] || fast=false
            bn_hf_conf a 100 "$fast" >"$dir/bn-a.toml"; bn_hf_conf b 90 "$fast" >"$dir/bn-b.toml"
            hf_start a "$dir/bn-a.toml"; hf_start b "$dir/bn-b.toml" ;;
        keepalived*)
            bn_nginx_start a; bn_nginx_start b
            bn_ka_conf 100 "${row#keepalived }" >"$dir/bn-a.conf"; bn_ka_conf 90 "${row#keepalived }" >"$dir/bn-b.conf"
            ka_start a "$dir/bn-a.conf"; ka_start b "$dir/bn-b.conf" ;;
    esac
    for i in $(seq "$reps"); do
        lab_wait_vip a $VIP 15 || { echo "$row: no VIP on a" >&2; break; }
        for _ in $(seq 100); do pid=$(bn_master_pid a "$row"); [ -n "$pid" ] && break; sleep 0.05; done
        lab_exec c curl -s --max-time 1 "http://$VIP/" | grep_q node-a || sleep 1
        ip netns exec "$LAB-c" /usr/bin/python3 "$here/lib/http_wait.py" "http://$VIP/" node-b 15 >"$dir/bn-answer" &
        local prober=$!
        sleep 0.2
        t0=$(date +%s%N)
        # The whole nginx (master and workers, one process group): killing only the
        # master would leave workers answering on the port under keepalived.
        kill -KILL -- "-$pid"
        if wait $prober; then
            t1=$(cat "$dir/bn-answer")
            results+=("$(( (t1 - t0) / 1000000 ))")
        else
            results+=(never)
        fi
        # Back to the start: hafront restarts nginx itself; for keepalived the
        # bench cleans up the orphaned workers and starts nginx again.
        if [[ $row == keepalived* ]]; then bn_nginx_group_kill a; sleep 0.2; bn_nginx_start a; fi
        lab_wait_vip a $VIP 20 || true
        sleep 1
    done
    if [[ $row == hafront* ]]; then hf_stop a; hf_stop b; else ka_stop a; ka_stop b; bn_nginx_group_kill a; bn_nginx_group_kill b; fi
    for n in a b; do lab_exec $n ip addr del "$VIP/24" dev eth0 2>/dev/null || true; done
    local med
    med=$(printf '%s\n' "${results[@]}" | /usr/bin/python3 -c "
import statistics, sys
v = [l.strip() for l in sys.stdin if l.strip()]
n = [int(x) for x in v if x != 'never']
if len(n) * 2 <= len(v): print('never')
else: print(int(statistics.median(n + [10**9] * (len(v) - len(n)))))")
    echo "| $row | $med | ${results[*]} |"
}

nginx_crash() { # reps
    local reps=${1:-5}
    echo "SIGKILL of the master's nginx -> first HTTP answer from the backup through the VIP (ms; advert 1 s, 100/90, weight -20; never = no answer within 15 s)"
    echo
    echo "| daemon | median ms | runs |"
    echo "| --- | --- | --- |"
    bn_row hafront "$reps"
    bn_row "hafront fast_preempt=off" "$reps"
    bn_row "keepalived curl" "$reps"
    bn_row "keepalived pidof" 2
}
