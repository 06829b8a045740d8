#!/usr/bin/python3
"""An SMTP server (aiosmtpd, Debian's python3-aiosmtpd) that judges what a client
sent, for hafront's SMTP client tests (daemon/src/notify/smtp.rs):

    smtp_oracle.py OUTFILE [--auth PLAIN,LOGIN] [--implicit-tls CERT KEY]
                           [--starttls CERT KEY]

Listens on 127.0.0.1 (a free port) and prints "port N" once it listens. Each
message received is appended to OUTFILE as one JSON line: the subject and body as
a reader's mail program decodes them (Python's email package, policy.default),
the longest raw line, the MAIL FROM parameters, the authenticated login and
whether TLS was on. --auth offers AUTH with only the named mechanisms and
accepts the login "alert" with the password "s3cret: pa$$"; without --auth no
AUTH is offered."""
import json
import ssl
import sys
import time
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

USER, PASSWORD = b"alert", b"s3cret: pa$$"
ALL_MECHS = {"PLAIN", "LOGIN"}


def main(argv):
    out = argv[0]
    opts, i = {}, 1
    while i < len(argv):
        if argv[i] == "--auth":
            opts["auth"] = set(argv[i + 1].split(","))
            i += 2
        elif argv[i] in ("--implicit-tls", "--starttls"):
            opts[argv[i]] = (argv[i + 1], argv[i + 2])
            i += 3
        else:
            sys.exit(f"unknown argument {argv[i]}")

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            raw = envelope.original_content or envelope.content
            msg = message_from_bytes(raw, policy=policy.default)
            body = msg.get_content() if not msg.is_multipart() else None
            rec = {
                "subject": str(msg["subject"]),
                "body": body,
                "transfer_encoding": msg.get("content-transfer-encoding"),
                "message_id": msg.get("message-id"),
                "max_line": max((len(l) for l in raw.split(b"\r\n")), default=0),
                "ascii": all(b < 128 for b in raw),
                "mail_options": envelope.mail_options,
                "login": session.auth_data.decode() if session.authenticated else None,
                "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
                "defects": [type(d).__name__ for d in msg.defects],
            }
            with open(out, "a") as f:
                f.write(json.dumps(rec) + "\n")
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == USER and auth_data.password == PASSWORD
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)

    kwargs = {"hostname": "127.0.0.1", "port": 0}
    if "auth" in opts:
        kwargs.update(
            authenticator=authenticator,
            auth_require_tls=False,
            auth_exclude_mechanism=sorted(ALL_MECHS - opts["auth"]),
        )
    else:
        # aiosmtpd offers AUTH (always failing) unless told otherwise.
        kwargs["auth_exclude_mechanism"] = sorted(ALL_MECHS)
    if "--implicit-tls" in opts:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*opts["--implicit-tls"])
        kwargs["ssl_context"] = ctx
    if "--starttls" in opts:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*opts["--starttls"])
        kwargs.update(tls_context=ctx, require_starttls=True)
    # Port 0: the controller's own readiness probe needs the real port, so bind first.
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    kwargs["port"] = s.getsockname()[1]
    s.close()
    smtp = Controller(Sink(), **kwargs)
    smtp.start()
    print(f"port {kwargs['port']}", flush=True)
    try:
        # Ends with its parent's test: stdin closes.
        sys.stdin.read()
    finally:
        smtp.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
