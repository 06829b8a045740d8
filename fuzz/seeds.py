#!/usr/bin/env python3
"""Writes the seed corpus fuzz/corpus/<target>/ from the project's own vectors:
keepalived's captured adverts (daemon/tests/data/captures), the DNS and ARP
vectors of the unit tests, the ipvsadm/kernel netlink captures
(daemon/tests/data/ipvs), the shipped/documented TOML configurations and (with
target/release/hafront built) the keepalived fixtures as imported.
Run from the repository root after changing a vector: python3 fuzz/seeds.py"""

import os
import re
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")


def fields(path):
    f = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#"):
            k, _, v = line.partition(" ")
            f[k] = v.strip()
    return f


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as fh:
        fh.write(data)


def advert_seeds():
    """The advert_decode framing (fuzz_targets/advert_decode.rs): 3 bytes of
    configuration matching the capture, then the packet as the peer sent it, once
    to a backup and once to a master (after its Master_Down_Timer fired)."""
    cap = os.path.join(ROOT, "daemon/tests/data/captures")
    for fn in sorted(os.listdir(cap)):
        f = fields(os.path.join(cap, fn))
        if f.get("kind") != "vrrp":
            continue
        pkt = bytes.fromhex(f["hex"])
        v6 = ":" in f["src"]
        unicast = not f["dst"].startswith(("224.", "ff02"))
        cfg = (1 if v6 else 0) | (2 if pkt[0] >> 4 == 3 else 0)
        cfg |= 0x10 if f["auth"].startswith("pass") else 0
        cfg |= 0x08 if unicast else 0
        cfg |= 0x20  # preempt
        op = 0x20 if unicast else 0
        if "checksum_dst" in f:
            cfg |= 0x04  # checksum_compat; the instance checks without pseudo-header
            op |= 0x80  # so repair it to what it checks
        head = bytes([cfg, pkt[1], 100])
        rec = bytes([op, len(pkt)]) + pkt
        stem = fn[:-4]
        write("advert_decode", stem + ".backup.bin", head + rec)
        write("advert_decode", stem + ".master.bin", head + bytes([4, 0]) + rec + rec)
        write("advert_decode", stem + ".raw.bin", pkt)


def dns_query(qid, name, qtype):
    m = struct.pack(">HBB4H", qid, 1, 0, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        m += bytes([len(label)]) + label.encode()
    return m + b"\0" + struct.pack(">HH", qtype, 1)


def dns_response(query, rcode, answers):
    """As daemon/tests/checks.rs response(): names are pointers to the question."""
    m = bytearray(query)
    m[2] |= 0x80
    m[3] = 0x80 | rcode
    m[6:8] = struct.pack(">H", len(answers))
    for t, data in answers:
        m += bytes([0xC0, 12]) + struct.pack(">H", t) + bytes([0, 1, 0, 0, 0x0E, 0x10])
        m += struct.pack(">H", len(data)) + data
    return bytes(m)


def dns_seeds():
    q = dns_query(7, "web.example", 1)
    cname = bytes([3]) + b"www" + bytes([0xC0, 12])
    full = dns_response(q, 0, [(5, cname), (1, bytes([192, 0, 2, 1])), (1, bytes([192, 0, 2, 2]))])
    write("dns_response", "a_cname.bin", full)
    write("dns_response", "nxdomain.bin", dns_response(q, 3, []))
    write("dns_response", "empty.bin", dns_response(q, 0, []))
    write("dns_response", "query.bin", q)
    write("dns_response", "truncated.bin", full[:-2])
    bad = bytearray(full)
    bad[12] = 0x80
    write("dns_response", "reserved_label.bin", bytes(bad))
    q6 = dns_query(0x1234, "www.example.com", 28)
    aaaa = bytes.fromhex("20010db8000000000000000000000001")
    write("dns_response", "aaaa.bin", dns_response(q6, 0, [(28, aaaa)]))


def arp_seeds():
    """As splitbrain/arp.rs's test: our probe, a reply from another MAC, a short one."""
    cap = fields(os.path.join(ROOT, "daemon/tests/data/captures/garp_ipv4.txt"))
    garp = bytes.fromhex(cap["hex"])
    write("arp_reply", "garp_keepalived.bin", garp)
    vip = bytes([192, 0, 2, 100])
    ours = bytes([2, 0, 0, 0, 0, 1])
    probe = bytes([0, 1, 8, 0, 6, 4, 0, 1]) + ours + bytes(4) + bytes(6) + vip
    write("arp_reply", "probe.bin", probe)
    reply = bytearray(probe)
    reply[7] = 2
    reply[8:14] = bytes([2, 0, 0, 0, 0, 2])
    reply[14:18] = vip
    write("arp_reply", "reply_foreign.bin", bytes(reply))
    write("arp_reply", "short.bin", bytes(reply[:20]))


def ipvs_seeds():
    cap = os.path.join(ROOT, "daemon/tests/data/ipvs")
    for fn in sorted(os.listdir(cap)):
        f = fields(os.path.join(cap, fn))
        write("ipvs_dump", fn[:-4] + ".bin", bytes.fromhex(f["hex"]))


BASE = """
[node]
name = "node-a"
[vrrp.instances.web]
interface = "eth0"
vrid = 51
virtual_ips = ["192.0.2.100/24"]
"""


# Every kind of check, notification and tracked item in one file, for the keys the
# shipped files do not use.
EVERYTHING = BASE + """priority = 150
advert_interval = "1s"
track_checks = [{ name = "web", weight = -10 }, { name = "exec" }]
track_files = [{ name = "maint", weight = -20 }]
unicast_peers = ["192.0.2.2"]

[checks.web]
kind = "http"
url = "http://192.0.2.11/health"
expect_status = [200, "300-302"]
expect_body_regex = "ok|up"
headers = { "X-Api-Key" = "k" }
[checks.tls]
kind = "https"
url = "https://[2001:db8::11]:8443/"
tls_verify = false
expect_digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
[checks.tcp]
kind = "tcp"
target = "192.0.2.11:80"
retries = 2
retry_delay = "100ms"
[checks.ns]
kind = "dns"
server = "192.0.2.53"
query_name = "web.example"
query_type = "AAAA"
expect = ["2001:db8::1"]
[checks.mx]
kind = "smtp"
target = "192.0.2.25"
helo_name = "node-a"
[checks.udp]
kind = "udp"
target = "192.0.2.11:123"
payload = "hex:0a0b"
expect = "ok"
[checks.ping]
kind = "ping"
target = "2001:db8::11"
[checks.exec]
kind = "exec"
command = ["/usr/local/bin/chk", "-q"]
dynamic_weight = true

[files.maint]
path = "/run/hafront/maint"


[notify.smtp]
server = "[2001:db8::25]:587"
from = "ha@example.com"
to = ["ops@example.com"]
tls = "starttls"
username = "ha"
password = "secret"

[[notify.webhooks]]
url = "https://user:pw@hooks.example/ha"
headers = { Authorization = "Bearer x" }
timeout = "2s"
"""


def config_seeds():
    for rel in ["appliance/hafront.toml", "containers/hafront.toml", "nixos/tests/configfile.toml"]:
        write("config_load", rel.replace("/", "_"), open(os.path.join(ROOT, rel)).read())
    write("config_load", "base.toml", BASE)
    write("config_load", "everything.toml", EVERYTHING)
    # What the first run crashed on (a stack overflow in figment's value parser).
    write("config_load", "regression_deep_env_value.txt", '[node]\nname="a"\n# env\nNODE__NAME=' + "[" * 5000 + "\n")
    # And on the second (figment's unescaping panicked on a non-ASCII character
    # before the first escape of a string).
    write("config_load", "regression_env_escape.txt", '[node]\nname="a"\n# env\nNODE__NAME="\u00e9\\n"\n')
    write(
        "config_load",
        "base_env.toml",
        BASE
        + 'priority = 150\nadvert_interval = "100ms"\n'
        + "\n# env\nVRRP__INSTANCES__WEB__PRIORITY=90\n"
        + "HAFRONT_VRRP__INSTANCES__WEB__UNICAST_PEERS=[192.0.2.2, 192.0.2.3]\n"
        + "NODE__NAME=from-env\nVRRP__INSTANCES__WBE__PRIORITY=80\n",
    )
    # The keepalived fixtures as the importer writes them (with a built hafront).
    hafront = os.path.join(ROOT, "target/release/hafront")
    kdir = os.path.join(ROOT, "daemon/tests/data/keepalived")
    if os.access(hafront, os.X_OK):
        for fn in sorted(os.listdir(kdir)):
            r = subprocess.run([hafront, "import-keepalived", os.path.join(kdir, fn)], capture_output=True)
            if r.returncode == 0:
                write("config_load", "keepalived_%s.toml" % fn.rsplit(".", 1)[0], r.stdout)
    docs = open(os.path.join(ROOT, "docs/configuration.md")).read()
    for n, block in enumerate(re.findall(r"```toml\n(.*?)```", docs, re.S)):
        write("config_load", "configuration_md_%d.toml" % n, block)


def main():
    advert_seeds()
    dns_seeds()
    arp_seeds()
    ipvs_seeds()
    config_seeds()
    for t in sorted(os.listdir(OUT)):
        print(t, len(os.listdir(os.path.join(OUT, t))), file=sys.stderr)


main()
