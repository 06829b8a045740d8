#!/usr/bin/env python3
"""Polls a URL every 5 ms until an answer's body contains TEXT; prints the
wall-clock time (ns since the epoch) of that answer. Exit 1 on timeout.

    http_wait.py http://192.0.2.100/ node-b 10
"""
import http.client
import sys
import time
import urllib.parse


def main(url, text, timeout_s):
    u = urllib.parse.urlsplit(url)
    deadline = time.monotonic() + float(timeout_s)
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=0.3)
            c.request("GET", u.path or "/")
            body = c.getresponse().read().decode(errors="replace")
            c.close()
            if text in body:
                print(time.time_ns())
                return 0
        except OSError:
            pass
        time.sleep(0.005)
    return 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
