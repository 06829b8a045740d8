#!/usr/bin/env python3
"""Send hand-made (and deliberately broken) VRRP packets, for lab tests.

Run inside a namespace: ip netns exec NS python3 vrrp_send.py --src 192.0.2.10 CASE...
Each CASE is one of: good, ttl, checksum, truncated, version, vrid, v2, auth, garbage,
count0 (v3 count 0 with one address), long (count 1, three addresses), count255 (1480
bytes claiming 255 addresses): the last three with valid checksums (issue 14, defect 1),
prio0 (a priority-0 advert, "I am leaving"), junk (a rotating mix of the broken kinds
above aimed at the VRID: bad checksum, truncated, count 0, random bytes).
--rate N --seconds S paces the sending at N packets a second for S seconds (the fault
suite's junk flood) instead of --count back to back.
raw sends the bytes of --hex as they are (a captured advert, replayed).
"good" is a valid v3 advert with priority 254 (or --prio) (a node that accepted the broken ones
would react to it the same way).
"""
import argparse
import os
import socket
import struct


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def advert(version, vrid, prio, src, dst, vips, interval_cs=10, auth=None, count=None, pad=0):
    addrs = b"".join(socket.inet_aton(v) for v in vips) + bytes(pad)
    count = len(vips) if count is None else count
    if version == 3:
        hdr = struct.pack("!BBBBHH", 0x31, vrid, prio, count, interval_cs, 0)
        body = hdr + addrs
        pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 112, len(body))
        c = csum(pseudo + body)
    else:
        auth_type = 1 if auth is not None else 0
        hdr = struct.pack("!BBBBBBH", 0x21, vrid, prio, len(vips), auth_type, max(1, interval_cs // 100), 0)
        body = hdr + addrs + (auth or "").encode().ljust(8, b"\0")[:8]
        c = csum(body)
    return body[:6] + struct.pack("!H", c) + body[8:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--dst", default="224.0.0.18")
    ap.add_argument("--vrid", type=int, default=51)
    ap.add_argument("--vip", default="192.0.2.100")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--prio", type=int, default=254, help="priority of good adverts")
    ap.add_argument("--rate", type=int, default=0, help="packets per second (with --seconds)")
    ap.add_argument("--seconds", type=float, default=0.0)
    ap.add_argument("--hex", default="", help="payload of the raw case")
    ap.add_argument("cases", nargs="+")
    a = ap.parse_args()
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
    s.bind((a.src, 0))
    good = advert(3, a.vrid, a.prio, a.src, a.dst, [a.vip])
    for case in a.cases:
        ttl = 255
        if case == "good":
            pkt = good
        elif case == "ttl":
            pkt, ttl = good, 64
        elif case == "checksum":
            pkt = good[:6] + bytes([good[6] ^ 0x5A, good[7]]) + good[8:]
        elif case == "truncated":
            pkt = good[:9]
        elif case == "version":
            pkt = bytes([0x51]) + good[1:]
        elif case == "vrid":
            pkt = advert(3, 199, 254, a.src, a.dst, [a.vip])
        elif case == "v2":
            pkt = advert(2, a.vrid, 254, a.src, a.dst, [a.vip], interval_cs=100)
        elif case == "auth":
            pkt = advert(2, a.vrid, 254, a.src, a.dst, [a.vip], interval_cs=100, auth="wrong")
        elif case == "count0":
            pkt = advert(3, a.vrid, 254, a.src, a.dst, [a.vip], count=0)
        elif case == "long":
            b = socket.inet_ntoa(struct.pack("!I", struct.unpack("!I", socket.inet_aton(a.vip))[0] + 1))
            c = socket.inet_ntoa(struct.pack("!I", struct.unpack("!I", socket.inet_aton(a.vip))[0] + 2))
            pkt = advert(3, a.vrid, 254, a.src, a.dst, [a.vip, b, c], count=1)
        elif case == "count255":
            pkt = advert(3, a.vrid, 254, a.src, a.dst, [a.vip], count=255, pad=1480 - 12)
        elif case == "prio0":
            pkt = advert(3, a.vrid, 0, a.src, a.dst, [a.vip])
        elif case == "raw":
            pkt = bytes.fromhex(a.hex)
        elif case == "garbage":
            pkt = os.urandom(37)
        elif case == "junk":
            pkt = None
        else:
            raise SystemExit(f"unknown case {case}")
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        pkts = [pkt] if pkt is not None else junk(good, a)
        if a.rate and a.seconds:
            paced(s, pkts, a.dst, a.rate, a.seconds)
            continue
        for i in range(a.count):
            s.sendto(pkts[i % len(pkts)], (a.dst, 0))


def junk(good, a):
    """Broken adverts for the configured VRID, each kind a receiver must refuse."""
    bad_sum = good[:6] + bytes([good[6] ^ 0x5A, good[7]]) + good[8:]
    count0 = advert(3, a.vrid, 254, a.src, a.dst, [a.vip], count=0)
    out = [bad_sum, good[:9], count0]
    out += [bytes([0x31, a.vrid]) + os.urandom(n) for n in (10, 18, 30, 60)]
    return out


def paced(s, pkts, dst, rate, seconds):
    """rate packets a second for `seconds`, sent in 1 ms slices; prints what was sent."""
    import time

    start = time.monotonic()
    sent = 0
    while True:
        now = time.monotonic() - start
        if now >= seconds:
            break
        due = int(now * rate)
        while sent < due:
            s.sendto(pkts[sent % len(pkts)], (dst, 0))
            sent += 1
        time.sleep(0.001)
    print(f"sent {sent} in {time.monotonic() - start:.2f} s")


if __name__ == "__main__":
    main()
