#!/usr/bin/env python3
"""Receivers for hafront's notifications, for the lab: a webhook endpoint and an
SMTP server (aiosmtpd, Debian's python3-aiosmtpd), writing what they receive.

    notify_sinks.py ADDR OUTDIR [CERT KEY]

- HTTP on ADDR:8080: every POST body is appended to OUTDIR/webhooks.jsonl (one line).
- SMTP on ADDR:2525: every message is written to OUTDIR/mail-N.eml; with CERT and
  KEY the server offers STARTTLS and requires it before MAIL.
Prints "ready" once both listen.
"""
import http.server
import json
import os
import ssl
import sys
import threading
import time

from aiosmtpd.controller import Controller


def main(addr, outdir, cert=None, key=None):
    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            doc = json.loads(body)
            doc["_content_type"] = self.headers.get("Content-Type")
            doc["_authorization"] = self.headers.get("Authorization")
            doc["_received_ns"] = time.time_ns()
            with open(os.path.join(outdir, "webhooks.jsonl"), "a") as f:
                f.write(json.dumps(doc) + "\n")
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    web = http.server.ThreadingHTTPServer((addr, 8080), Hook)
    threading.Thread(target=web.serve_forever, daemon=True).start()

    count = [0]

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            count[0] += 1
            path = os.path.join(outdir, f"mail-{count[0]}.eml")
            with open(path + ".tmp", "wb") as f:
                f.write(f"X-Envelope-From: {envelope.mail_from}\n".encode())
                f.write(f"X-Envelope-To: {','.join(envelope.rcpt_tos)}\n".encode())
                f.write(f"X-TLS: {session.ssl is not None}\n".encode())
                f.write(envelope.content)
            os.rename(path + ".tmp", path)
            return "250 OK"

    kwargs = {}
    if cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        kwargs = {"tls_context": ctx, "require_starttls": True}
    smtp = Controller(Sink(), hostname=addr, port=2525, **kwargs)
    smtp.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        smtp.stop()


if __name__ == "__main__":
    main(*sys.argv[1:])
