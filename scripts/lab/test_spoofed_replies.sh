#!/usr/bin/env bash
# Issue 13: a DNS or UDP check waits until its timeout for a reply that answers
# its query. Datagrams that do not are ignored, so one forged packet cannot fail a
# check: a malformed DNS message, another DNS id, another question, a UDP reply
# without the expected bytes (from the server's address and port, as a spoofer
# would send them), and a datagram from another port (dropped by the kernel: the
# probe's socket is connected). Node a runs python responders that send these
# before the real answer (or instead of it); node c probes with check_once.
source "$(cd "$(dirname "$0")" && pwd)/../lib/checktest.sh"

cat >"$dir/responders.py" <<'PY'
# python3 responders.py MODE ADDR PORT; MODE: dns | dns-bogus-only | udp | udp-bogus-only
import socket, struct, sys, time

mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((addr, port))
other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); other.bind((addr, port + 1))

def dns_answer(q, qid=None, question=None, rcode=0):
    """An answer to query q: A 192.0.2.1 for its question (or NXDOMAIN)."""
    end = 12
    while q[end]:
        end += 1 + q[end]
    question = question if question is not None else q[12:end + 5]
    answers = b"" if rcode else b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("192.0.2.1")
    qid = q[:2] if qid is None else struct.pack("!H", qid)
    header = qid + struct.pack("!HHHHH", 0x8180 | rcode, 1, 1 if answers else 0, 0, 0)
    return header + question + answers

while True:
    q, peer = s.recvfrom(2048)
    if mode.startswith("dns"):
        qid = struct.unpack("!H", q[:2])[0]
        # From another port: a perfect NXDOMAIN (would fail the check if taken).
        other.sendto(dns_answer(q, rcode=3), peer)
        s.sendto(b"\x12\x34junk", peer)                                # malformed
        s.sendto(dns_answer(q, qid=qid ^ 0xFFFF, rcode=3), peer)        # another id
        evil = b"\x04evil\x07example\x00\x00\x01\x00\x01"
        s.sendto(dns_answer(q, question=evil, rcode=3), peer)          # another question
        if mode == "dns":
            time.sleep(0.05)
            s.sendto(dns_answer(q), peer)
    else:
        other.sendto(b"nope from elsewhere", peer)
        s.sendto(b"nope", peer)
        if mode == "udp":
            time.sleep(0.05)
            s.sendto(b"pong", peer)
PY

start_server() { # mode port
    # Not lab_exec (a function: $! would be a subshell): ip netns exec execs python.
    ip netns exec "$NS_A" python3 "$dir/responders.py" "$1" "$IP_A" "$2" >>"$dir/server-$1.log" 2>&1 &
    lab_track_pid "$!"
}
start_server dns 53
start_server dns-bogus-only 5300
start_server udp 7
start_server udp-bogus-only 700
for p in 53 5300 7 700; do
    for _ in $(seq 100); do
        lab_exec a ss -Hlnu "sport = :$p" | grep_q . && break
        sleep 0.05
    done
    lab_exec a ss -Hlnu "sport = :$p" | grep_q . || fail "udp/$p not listening"
done

conf=$dir/checks.toml
cat >"$conf" <<CONF
[node]
name = "lab-c"
[checks.dns]
kind = "dns"
server = "$IP_A:53"
query_name = "web.example"
expect = ["192.0.2.1"]
timeout = "2s"
[checks.dns_bogus_only]
kind = "dns"
server = "$IP_A:5300"
query_name = "web.example"
timeout = "500ms"
[checks.udp]
kind = "udp"
target = "$IP_A:7"
payload = "ping"
expect = "pong"
timeout = "2s"
[checks.udp_bogus_only]
kind = "udp"
target = "$IP_A:700"
payload = "ping"
expect = "pong"
timeout = "500ms"
CONF

expect_up dns
expect_down dns_bogus_only "DNS: no answer to the query within 500ms: 3 datagram(s) ignored, the last a response to another question"
expect_up udp
expect_down udp_bogus_only 'reply "nope" does not contain the expected bytes'
