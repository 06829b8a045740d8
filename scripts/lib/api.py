#!/usr/bin/env python3
"""One request to hafront's API, over its Unix socket or TCP; prints the status
code on the first line and the body after it.

    api.py unix:/run/hafront/api.sock GET /v1/status
    api.py http://127.0.0.1:9165 POST /v1/instances/web/maintenance '{"enabled": true}'
    api.py --token TOKEN http://... GET /metrics
    api.py --type text/plain unix:... POST ...   (Content-Type; default application/json)

Plain HTTP/1.1 with `Connection: close` on a socket, so that an answer the server
sends before it has read the whole body (413) is still read.
"""
import os
import socket
import sys


def main(argv):
    token, ctype = None, "application/json"
    while argv[:1] in (["--token"], ["--type"]):
        if argv[0] == "--token":
            token = argv[1]
        else:
            ctype = argv[1]
        argv = argv[2:]
    target, method, path = argv[0], argv[1], argv[2]
    body = (argv[3] if len(argv) > 3 else "").encode()
    if target.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(target[len("unix:"):])
    else:
        host, port = target.split("://", 1)[1].rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=10)
    head = [f"{method} {path} HTTP/1.1", "Host: hafront", "Connection: close",
            f"Content-Length: {len(body)}"]
    if ctype:
        head.append(f"Content-Type: {ctype}")
    if token:
        head.append(f"Authorization: Bearer {token}")
    try:
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    except (BrokenPipeError, ConnectionResetError):
        pass  # answered before the body was read: the answer is still there
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    header, _, payload = data.partition(b"\r\n\r\n")
    status = header.split(b" ", 2)[1].decode() if header else "000"
    try:
        print(status)
        sys.stdout.write(payload.decode(errors="replace"))
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader took what it wanted (`| head -n 1` for the status) and closed
        # the pipe: not an error of the request. Point stdout at /dev/null so that
        # the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    main(sys.argv[1:])
