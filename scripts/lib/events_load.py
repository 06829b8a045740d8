#!/usr/bin/env python3
"""Load for the event stream test (scripts/lab/test_events.sh).

    events_load.py slow HOST PORT TOKEN RELEASE_FILE MAX_S
        A client that connects with a small SO_RCVBUF, asks for GET /v1/events and
        reads nothing until RELEASE_FILE exists (or MAX_S passed); then it reads
        what is left, 5 s at most, and prints JSON: whether the server had closed
        the connection (EOF or reset), the bytes read, and whether a `lagged`
        record was among them.

    events_load.py flood SOCKET INSTANCE N
        N priority overrides (alternating 120/121) over one keep-alive connection
        on the Unix socket, each an event; every 50th request also a GET /v1/status
        on a connection of its own, timed. Prints JSON: requests, seconds, the
        slowest status answer (ms), and any non-200 answer.
"""
import json
import os
import socket
import sys
import time


def read_response(s, buf):
    """One HTTP/1.1 response with Content-Length from socket s; returns (status, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError("connection closed mid-response")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    while len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError("connection closed mid-body")
        rest += chunk
    return status, rest[length:]


def status_ms(path):
    t = time.monotonic()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: hafront\r\nConnection: close\r\n\r\n")
    code, _ = read_response(s, b"")
    s.close()
    return code, (time.monotonic() - t) * 1e3


def flood(path, instance, n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    buf = b""
    bad = []
    worst = 0.0
    t0 = time.monotonic()
    for i in range(n):
        body = json.dumps({"priority": 120 + i % 2}).encode()
        req = (f"POST /v1/instances/{instance}/priority HTTP/1.1\r\nHost: hafront\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        s.sendall(req)
        code, buf = read_response(s, buf)
        if code != 200:
            bad.append(code)
        if i % 50 == 0:
            code, ms = status_ms(path)
            worst = max(worst, ms)
            if code != 200:
                bad.append(code)
    secs = time.monotonic() - t0
    print(json.dumps({"requests": n, "seconds": round(secs, 2),
                      "status_max_ms": round(worst, 1), "bad": bad[:5]}))


def slow(host, port, token, release, max_s):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Before connect: the window the server sees stays small.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    s.settimeout(10)
    s.connect((host, port))
    s.sendall((f"GET /v1/events HTTP/1.1\r\nHost: hafront\r\n"
               f"Authorization: Bearer {token}\r\n\r\n").encode())
    deadline = time.monotonic() + max_s
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.05)
    data = b""
    closed = False
    s.settimeout(5)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
    except ConnectionResetError:
        closed = True
    except socket.timeout:
        pass
    text = data.decode("utf-8", "replace")
    print(json.dumps({"closed": closed, "bytes": len(data),
                      "status": text.split("\r\n", 1)[0],
                      "lagged": "event: lagged" in text}))


def main(argv):
    if argv[0] == "slow":
        slow(argv[1], int(argv[2]), argv[3], argv[4], float(argv[5]))
    elif argv[0] == "flood":
        flood(argv[1], argv[2], int(argv[3]))
    else:
        sys.exit(f"unknown mode {argv[0]}")


if __name__ == "__main__":
    main(sys.argv[1:])
