#!/usr/bin/env bash
# Health checks against real servers in the namespace lab: nginx (http, https with
# a self-signed certificate and client certificates), a slow python HTTP server,
# python DNS / SMTP / UDP servers, ICMP, commands. Node a serves, node c probes
# with the check_once example (one probe: `up <ms>` / `down: <reason>`), then the
# scheduler (--watch) sees nginx stop.
source "$(cd "$(dirname "$0")" && pwd)/../lib/checktest.sh"

# ------------------------------------------------------------ certificates
# server: self-signed as `openssl req -x509` makes it (CA:TRUE); leaf: self-signed
# with CA:FALSE; client: signed by a client CA.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=192.0.2.1" \
    -addext "subjectAltName=IP:192.0.2.1" -keyout "$dir/server.key" -out "$dir/server.pem" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=192.0.2.1" \
    -addext "subjectAltName=IP:192.0.2.1" -addext "basicConstraints=critical,CA:FALSE" \
    -keyout "$dir/leaf.key" -out "$dir/leaf.pem" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=lab client CA" \
    -keyout "$dir/clientca.key" -out "$dir/clientca.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=probe.example" \
    -keyout "$dir/client.key" -out "$dir/client.csr" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n' >"$dir/client.ext"
openssl x509 -req -in "$dir/client.csr" -CA "$dir/clientca.pem" -CAkey "$dir/clientca.key" -CAcreateserial \
    -days 2 -extfile "$dir/client.ext" -out "$dir/client.pem" 2>/dev/null

# ------------------------------------------------------------ servers on node a
{ nginx_conf_head "$dir/nginx" 1 256; cat; } >"$dir/nginx.conf" <<NGINX
    default_type text/plain;
    server {
        listen 192.0.2.1:80 default_server;
        listen [2001:db8::1]:80 default_server;
        location = /health { return 200 "OK healthy\n"; }
        location = /error { return 500 "broken\n"; }
        location = /body { return 200 "something else\n"; }
    }
    server {
        listen 192.0.2.1:80;
        server_name status.example;
        location = /health { return 204; }
    }
    server {
        listen 192.0.2.1:443 ssl;
        ssl_certificate $dir/server.pem;
        ssl_certificate_key $dir/server.key;
        location = /health { return 200 "OK tls\n"; }
    }
    server {
        listen 192.0.2.1:4443 ssl;
        ssl_certificate $dir/leaf.pem;
        ssl_certificate_key $dir/leaf.key;
        location = /health { return 200 "OK leaf\n"; }
    }
    server {
        listen 192.0.2.1:8443 ssl;
        ssl_certificate $dir/server.pem;
        ssl_certificate_key $dir/server.key;
        ssl_client_certificate $dir/clientca.pem;
        ssl_verify_client on;
        location = /health { return 200 "OK client \$ssl_client_s_dn\n"; }
    }
}
NGINX

cat >"$dir/servers.py" <<'PY'
# Lab peers: python3 servers.py MODE ADDR PORT
import socket, socketserver, struct, sys, threading, time, http.server

mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

if mode == "slow-http":
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(2)
            self.send_response(200); self.end_headers(); self.wfile.write(b"late\n")
        def log_message(self, *a): pass
    http.server.ThreadingHTTPServer((addr, port), H).serve_forever()

elif mode == "dns":
    # web.example: A 192.0.2.1, nothing else (NOERROR, empty); other names: NXDOMAIN.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((addr, port))
    while True:
        q, peer = s.recvfrom(512)
        pos, labels = 12, []
        while q[pos]:
            labels.append(q[pos + 1:pos + 1 + q[pos]].decode()); pos += 1 + q[pos]
        qtype = struct.unpack("!H", q[pos + 1:pos + 3])[0]
        question = q[12:pos + 5]
        name = ".".join(labels).lower()
        answers = b""
        rcode = 0
        if name != "web.example":
            rcode = 3
        elif qtype == 1:
            answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("192.0.2.1")
        header = q[:2] + struct.pack("!HHHHH", 0x8180 | rcode, 1, 1 if answers else 0, 0, 0)
        s.sendto(header + question + answers, peer)

elif mode in ("smtp", "smtp-reject"):
    class S(socketserver.StreamRequestHandler):
        def handle(self):
            if mode == "smtp-reject":
                self.wfile.write(b"554 go away\r\n"); return
            self.wfile.write(b"220-lab.example ESMTP\r\n220 ready\r\n")
            for line in self.rfile:
                cmd = line.strip().upper()
                if cmd.startswith(b"HELO "): self.wfile.write(b"250 lab.example\r\n")
                elif cmd == b"QUIT": self.wfile.write(b"221 bye\r\n"); return
                else: self.wfile.write(b"500 what\r\n")
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer((addr, port), S).serve_forever()

elif mode == "udp-echo":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((addr, port))
    while True:
        d, peer = s.recvfrom(2048)
        s.sendto(b"pong " + d if d.startswith(b"ping") else b"nope", peer)

elif mode == "udp-discard":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((addr, port))
    while True:
        s.recvfrom(2048)
PY

declare -A SRV=()
start_server() { # key command...
    local key=$1; shift
    # Not lab_exec (a function: $! would be a subshell): ip netns exec execs the server.
    ip netns exec "$LAB-a" "$@" >>"$dir/server-$key.log" 2>&1 &
    SRV[$key]=$!
    lab_track_pid "${SRV[$key]}"
}
stop_server() {
    local pid=${SRV[$1]}
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    lab_untrack_pid "$pid"
}
wait_port() { # proto(t|u) port [gone]
    for _ in $(seq 100); do
        if lab_exec a ss -Hln"$1" "sport = :$2" | grep_q .; then
            [ -z "${3:-}" ] && return 0
        else
            [ -n "${3:-}" ] && return 0
        fi
        sleep 0.05
    done
    fail "port $1/$2 not ${3:-listening}"
}

start_server nginx nginx -c "$dir/nginx.conf" -g 'daemon off;'
start_server slow python3 "$dir/servers.py" slow-http 192.0.2.1 8080
start_server dns python3 "$dir/servers.py" dns 192.0.2.1 53
start_server smtp python3 "$dir/servers.py" smtp 192.0.2.1 25
start_server smtp_reject python3 "$dir/servers.py" smtp-reject 192.0.2.1 2525
start_server echo python3 "$dir/servers.py" udp-echo 192.0.2.1 7
start_server discard python3 "$dir/servers.py" udp-discard 192.0.2.1 9
for p in 80 443 4443 8443 8080 25 2525; do wait_port t $p; done
for p in 53 7 9; do wait_port u $p; done

# ------------------------------------------------------------ the checks
md5=$(printf 'OK healthy\n' | md5sum | cut -d' ' -f1)
conf=$dir/checks.toml
cat >"$conf" <<CONF
[node]
name = "lab-c"

[checks.web]
kind = "http"
url = "http://192.0.2.1/health"
expect_status = [200]
expect_body = "healthy"
timeout = "500ms"
[checks.web_v6]
kind = "http"
url = "http://[2001:db8::1]/health"
[checks.web_500]
kind = "http"
url = "http://192.0.2.1/error"
expect_status = [200]
[checks.web_500_accepted]
kind = "http"
url = "http://192.0.2.1/error"
expect_status = [200, "500-503"]
[checks.web_slow]
kind = "http"
url = "http://192.0.2.1:8080/"
timeout = "500ms"
[checks.web_body]
kind = "http"
url = "http://192.0.2.1/body"
expect_body = "healthy"
[checks.web_regex]
kind = "http"
url = "http://192.0.2.1/health"
expect_body_regex = "^OK (healthy|fine)"
[checks.web_regex_bad]
kind = "http"
url = "http://192.0.2.1/body"
expect_body_regex = "^OK "
[checks.web_digest]
kind = "http"
url = "http://192.0.2.1/health"
expect_digest = "md5:$md5"
[checks.web_digest_bad]
kind = "http"
url = "http://192.0.2.1/body"
expect_digest = "md5:$md5"
[checks.web_head]
kind = "http"
url = "http://192.0.2.1/health"
method = "HEAD"
[checks.web_vhost]
kind = "http"
url = "http://192.0.2.1/health"
host = "status.example"
expect_status = [204]
[checks.tls_untrusted]
kind = "https"
url = "https://192.0.2.1/health"
[checks.tls_ca]
kind = "https"
url = "https://192.0.2.1/health"
ca_file = "$dir/server.pem"
expect_body = "OK tls"
[checks.tls_leaf_untrusted]
kind = "https"
url = "https://192.0.2.1:4443/health"
[checks.tls_leaf_ca]
kind = "https"
url = "https://192.0.2.1:4443/health"
ca_file = "$dir/leaf.pem"
expect_body = "OK leaf"
[checks.tls_other_ca]
kind = "https"
url = "https://192.0.2.1/health"
ca_file = "$dir/leaf.pem"
[checks.tls_noverify]
kind = "https"
url = "https://192.0.2.1/health"
tls_verify = false
[checks.tls_wrong_name]
kind = "https"
url = "https://192.0.2.1/health"
host = "other.example"
ca_file = "$dir/server.pem"
[checks.tls_no_client_cert]
kind = "https"
url = "https://192.0.2.1:8443/health"
ca_file = "$dir/server.pem"
[checks.tls_client_cert]
kind = "https"
url = "https://192.0.2.1:8443/health"
ca_file = "$dir/server.pem"
client_cert = "$dir/client.pem"
client_key = "$dir/client.key"
expect_body = "CN=probe.example"
[checks.tcp]
kind = "tcp"
target = "192.0.2.1:80"
[checks.tcp_v6]
kind = "tcp"
target = "[2001:db8::1]:80"
[checks.tcp_closed]
kind = "tcp"
target = "192.0.2.1:81"
[checks.tcp_bound]
kind = "tcp"
target = "192.0.2.1:80"
bind_address = "192.0.2.10"
bind_interface = "eth0"
[checks.tcp_bad_source]
kind = "tcp"
target = "192.0.2.1:80"
bind_address = "192.0.2.99"
[checks.ping]
kind = "ping"
target = "192.0.2.1"
[checks.ping_v6]
kind = "ping"
target = "2001:db8::1"
[checks.ping_nobody]
kind = "ping"
target = "192.0.2.99"
timeout = "300ms"
[checks.dns]
kind = "dns"
server = "192.0.2.1:53"
query_name = "web.example"
query_type = "A"
expect = ["192.0.2.1"]
[checks.dns_nx]
kind = "dns"
server = "192.0.2.1"
query_name = "nx.example"
[checks.dns_wrong]
kind = "dns"
server = "192.0.2.1"
query_name = "web.example"
expect = ["192.0.2.2"]
[checks.dns_aaaa]
kind = "dns"
server = "192.0.2.1"
query_name = "web.example"
query_type = "AAAA"
[checks.smtp]
kind = "smtp"
target = "192.0.2.1:25"
helo_name = "probe.example"
[checks.smtp_reject]
kind = "smtp"
target = "192.0.2.1:2525"
[checks.udp]
kind = "udp"
target = "192.0.2.1:7"
payload = "ping 1"
expect = "pong"
[checks.udp_wrong]
kind = "udp"
target = "192.0.2.1:7"
payload = "hex:68656c6c6f"
expect = "pong"
[checks.udp_silent]
kind = "udp"
target = "192.0.2.1:9"
payload = "anyone?"
timeout = "300ms"
[checks.udp_closed]
kind = "udp"
target = "192.0.2.1:10"
payload = "anyone?"
[checks.exec_ok]
kind = "exec"
command = ["/bin/sh", "-c", "exit 0"]
[checks.exec_fail]
kind = "exec"
command = ["/bin/sh", "-c", "exit 1"]
[checks.exec_weight]
kind = "exec"
command = ["/bin/sh", "-c", "exit 5"]
dynamic_weight = true
[checks.exec_hang]
kind = "exec"
command = ["/bin/sh", "-c", "sleep 30"]
timeout = "300ms"
[checks.watch_web]
kind = "http"
url = "http://192.0.2.1/health"
interval = "200ms"
timeout = "300ms"
warmup = "0s"
rise = 1
fall = 2
CONF

# http
expect_up web
expect_up web_v6
expect_down web_500 "status 500 not in [200]"
expect_up web_500_accepted
expect_down web_slow "timeout after 500ms"
expect_down web_body 'body does not contain "healthy"'
expect_up web_regex
expect_down web_regex_bad "body does not match /^OK /"
expect_up web_digest
expect_down web_digest_bad "body digest mismatch: got md5:$(printf 'something else\n' | md5sum | cut -d' ' -f1), expected md5:$md5"
expect_up web_head
expect_up web_vhost
# https
expect_down tls_untrusted "TLS: certificate not trusted"
expect_up tls_ca
expect_up tls_noverify
expect_down tls_leaf_untrusted "TLS: certificate not trusted (unknown issuer)"
expect_up tls_leaf_ca
expect_down tls_other_ca "TLS: certificate not trusted"
expect_down tls_wrong_name "TLS: certificate not valid for this name: other.example is not in [IpAddress(192.0.2.1)]"
expect_down tls_no_client_cert "status 400 not in [200-299]"
expect_up tls_client_cert
# tcp
expect_up tcp
expect_up tcp_v6
expect_down tcp_closed "connection refused"
expect_up tcp_bound
expect_down tcp_bad_source "bind: "
# ping: raw socket (the namespace's ping_group_range is empty), then datagram
expect_up ping
expect_up ping_v6
expect_down ping_nobody "timeout after 300ms"
lab_exec c sysctl -qw net.ipv4.ping_group_range="0 2147483647"
expect_up ping
expect_up ping_v6
lab_exec c sysctl -qw net.ipv4.ping_group_range="1 0"
# dns
expect_up dns
expect_down dns_nx "DNS: rcode NXDOMAIN"
expect_down dns_wrong "DNS: answer [192.0.2.1] lacks expected [192.0.2.2]"
expect_down dns_aaaa "DNS: no AAAA record in the answer"
# smtp
expect_up smtp
expect_down smtp_reject 'SMTP: banner "554 go away"'
# udp
expect_up udp
expect_down udp_wrong 'reply "nope" does not contain the expected bytes'
expect_up udp_silent
expect_down udp_closed "port unreachable (ICMP)"
# exec
expect_up exec_ok
expect_down exec_fail "exit status 1"
expect_up exec_weight "weight=3"
expect_down exec_hang "timeout after 300ms"

# Servers stopped.
stop_server dns
expect_down dns "port unreachable (ICMP)"
stop_server smtp
wait_port t 25 gone
expect_down smtp "connection refused"
stop_server echo
expect_down udp "port unreachable (ICMP)"

# The scheduler: nginx healthy -> up event; nginx stopped -> down event naming why.
lab_exec c "$CHECK_ONCE" -c "$conf" --watch 4s watch_web >"$dir/watch.out" 2>"$dir/watch.log" &
watch_pid=$!
lab_track_pid "$watch_pid"
sleep 1.2
stop_server nginx
wait_port t 80 gone
wait "$watch_pid" || fail "check_once --watch failed: $(cat "$dir/watch.log")"
lab_untrack_pid "$watch_pid"
python3 - "$dir/watch.out" <<'PY' || fail "scheduler events wrong: $(cat "$dir/watch.out")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
events, status = lines[:-1], lines[-1]
assert [(e["name"], e["up"]) for e in events] == [("watch_web", True), ("watch_web", False)], events
assert events[0]["t_ms"] < 500, events[0]                        # no warm-up, rise 1
assert events[0]["reason"].startswith("success in "), events[0]
assert events[1]["reason"] == "connection refused", events[1]
assert 1200 <= events[1]["t_ms"] <= 3000, events[1]              # fall 2 at 200ms
st = status["watch_web"]
assert st["up"] is False and st["consecutive_fail"] >= 2 and st["checks_total"] >= 10, st
assert st["last_error"] == "connection refused", st
print("events:", [(e["up"], e["t_ms"], e["reason"]) for e in events])
PY
pass "scheduler: up at start, down ~2 intervals after nginx stopped"
expect_down web "connection refused"
