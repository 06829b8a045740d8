#!/usr/bin/env python3
"""Latency of hafront API requests over its Unix socket: N sequential requests per
path on one keep-alive connection; prints one JSON line per path with p50/p99/max
in milliseconds and the response size.

    api_load.py SOCKET N PATH...
"""
import http.client
import json
import socket
import sys
import time


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    sock, n, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    conn = UnixConnection(sock)
    for path in paths:
        lat = []
        size = 0
        for _ in range(n):
            t = time.perf_counter()
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            lat.append((time.perf_counter() - t) * 1e3)
            assert r.status == 200, (path, r.status)
            size = len(body)
        print(json.dumps({"path": path, "n": n, "bytes": size, "p50_ms": round(pct(lat, 50), 2),
                          "p99_ms": round(pct(lat, 99), 2), "max_ms": round(max(lat), 2)}))


if __name__ == "__main__":
    main()
