#!/usr/bin/env python3
"""A stand-in for systemd's notify socket: records every sd_notify datagram.

notify_listen.py SOCKET OUT [--on-ready CMD]: binds a Unix datagram socket, appends
each message (one line per datagram, newlines as '|') to OUT; when READY=1 arrives,
runs CMD and appends its output as a line 'AT_READY <output>'. Exits on STOPPING=1
plus one second, or after 120 s.
"""
import socket
import subprocess
import sys
import time

path, out = sys.argv[1], sys.argv[2]
on_ready = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--on-ready" else None
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(1.0)
deadline = time.time() + 120
stop_at = None
with open(out, "a", buffering=1) as f:
    while time.time() < deadline and (stop_at is None or time.time() < stop_at):
        try:
            msg = s.recv(4096).decode(errors="replace")
        except socket.timeout:
            continue
        f.write(msg.replace("\n", "|") + "\n")
        if "READY=1" in msg.split("\n") and on_ready:
            r = subprocess.run(on_ready, shell=True, capture_output=True, text=True)
            f.write("AT_READY " + r.stdout.replace("\n", "|") + "\n")
        if "STOPPING=1" in msg.split("\n"):
            stop_at = time.time() + 1
