#!/usr/bin/env python3
"""Holds N idle connections on hafront's API socket, then asks GET /v1/status on
a fresh one; prints one JSON line:

    api_idle.py SOCKET N WAIT_S RSS_PID

{"opened": N, "closed_at_once": ..., "status": 200, "status_ms": ..., "rss_during_kb": ...,
 "closed_after_wait": ..., "wait_s": WAIT_S}

closed_at_once: connections the server closed before the status request (made
room at its cap); closed_after_wait: of all N, those closed WAIT_S seconds
later (the idle timeout). WAIT_S 0: no wait, the client closes them all.
"""
import json
import os
import resource
import select
import socket
import sys
import time


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def closed(s):
    """True once the server has closed s (EOF or reset); never blocks."""
    p = select.poll()  # select() stops at descriptor 1023
    p.register(s, select.POLLIN)
    if not p.poll(0):
        return False
    try:
        return s.recv(1, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def status(path):
    t = time.monotonic()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    code = 0
    try:
        s.connect(path)
        s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: hafront\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        code = int(data.split(b" ", 2)[1]) if data else 0
    except OSError:
        code = 0  # timed out or refused
    finally:
        s.close()
    return code, round((time.monotonic() - t) * 1000, 1)


def main(path, n, wait_s, pid):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 64)), hard))
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(path)
        except OSError:
            s.close()
            continue
        socks.append(s)
    time.sleep(0.5)  # let the server accept what it will
    out = {"opened": len(socks), "closed_at_once": sum(closed(s) for s in socks)}
    out["rss_during_kb"] = rss_kb(pid)
    out["status"], out["status_ms"] = status(path)
    if wait_s > 0:
        time.sleep(wait_s)
        out["closed_after_wait"] = sum(closed(s) for s in socks)
        out["wait_s"] = wait_s
    for s in socks:
        s.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
