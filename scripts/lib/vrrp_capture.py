#!/usr/bin/env python3
"""Print the first VRRP advert from --src as "dst ttl payload-hex", for lab tests.

Run inside a namespace: ip netns exec NS python3 vrrp_capture.py --src 192.0.2.2
(IPv4 or IPv6 by the form of --src). Exits 1 when none arrives within --timeout s.
"""
import argparse
import socket
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--dev", default="eth0")
    a = ap.parse_args()
    ifindex = socket.if_nametoindex(a.dev)
    v6 = ":" in a.src
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW, 112)
    if v6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        group = socket.inet_pton(socket.AF_INET6, "ff02::12")
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, group + ifindex.to_bytes(4, sys.byteorder))
    else:
        # struct ip_mreqn: group, local address (any), interface index
        group = socket.inet_aton("224.0.0.18") + socket.inet_aton("0.0.0.0") + ifindex.to_bytes(4, sys.byteorder)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, group)
    s.settimeout(a.timeout)
    try:
        while True:
            if v6:
                data, anc, _, (src, *_) = s.recvmsg(4096, 256)
                dst, ttl = "?", 0
                for level, kind, val in anc:
                    if kind == socket.IPV6_PKTINFO:
                        dst = socket.inet_ntop(socket.AF_INET6, val[:16])
                    elif kind == socket.IPV6_HOPLIMIT:
                        ttl = int.from_bytes(val[:4], sys.byteorder)
                if src.split("%")[0] == a.src:
                    print(dst, ttl, data.hex())
                    return 0
            else:
                data, (src, _) = s.recvfrom(4096)
                if src == a.src:
                    ihl = (data[0] & 0x0F) * 4
                    print(socket.inet_ntoa(data[16:20]), data[8], data[ihl:].hex())
                    return 0
    except socket.timeout:
        return 1


if __name__ == "__main__":
    sys.exit(main())
