#!/usr/bin/env python3
"""Reads a pcap file of VRRP adverts (tcpdump -w, Ethernet, IPv4 or IPv6) and
prints, as JSON, how late they were: every gap between two adverts of the same
VRID from the same source, in units of the advert interval (1.0 = on time), as a
distribution (median, p99, p99.9, max) and the number of gaps above 1.5 intervals
(RFC 5798: a backup declares the master down after about 3 intervals; 1.5 is the
issue's bound for "late"). Priority-0 adverts and a VRID's first advert start no
gap. Reads the pcap format itself (no dependency) so that millions of adverts take
seconds.

    advert_lateness.py FILE INTERVAL_MS
"""
import json
import struct
import sys


def adverts(path):
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            return
        magic = struct.unpack("<I", head[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            endian = "<"
        elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
            endian = ">"
        else:
            raise SystemExit(f"{path}: not a pcap file (magic {magic:#x})")
        nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
        linktype = struct.unpack(endian + "I", head[20:24])[0]
        rec = struct.Struct(endian + "IIII")
        while True:
            h = f.read(16)
            if len(h) < 16:
                return
            sec, frac, incl, _ = rec.unpack(h)
            data = f.read(incl)
            if len(data) < incl:
                return
            t = sec + frac / (1e9 if nano else 1e6)
            if linktype == 1:  # Ethernet
                off = 14
                etype = data[12:14]
                if etype == b"\x81\x00":
                    off, etype = 18, data[16:18]
            elif linktype == 113:  # Linux cooked (any)
                off, etype = 16, data[14:16]
            else:
                continue
            if etype == b"\x08\x00" and len(data) >= off + 20:
                ihl = (data[off] & 0x0F) * 4
                if data[off + 9] != 112:
                    continue
                src = data[off + 12 : off + 16]
                vrrp = data[off + ihl :]
            elif etype == b"\x86\xdd" and len(data) >= off + 40:
                if data[off + 6] != 112:
                    continue
                src = data[off + 8 : off + 24]
                vrrp = data[off + 40 :]
            else:
                continue
            if len(vrrp) < 3:
                continue
            yield t, src, vrrp[1], vrrp[2]


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    path, interval_ms = sys.argv[1], float(sys.argv[2])
    last = {}
    gaps = []
    count = 0
    for t, src, vrid, prio in adverts(path):
        count += 1
        key = (src, vrid)
        if prio == 0:
            last.pop(key, None)
            continue
        if key in last:
            gaps.append((t - last[key]) * 1e3 / interval_ms)
        last[key] = t
    gaps.sort()

    def q(p):
        if not gaps:
            return None
        return round(gaps[min(len(gaps) - 1, int(p * len(gaps)))], 3)

    print(
        json.dumps(
            {
                "adverts": count,
                "senders": len(last),
                "gaps": len(gaps),
                "interval_ms": interval_ms,
                "p50": q(0.5),
                "p99": q(0.99),
                "p999": q(0.999),
                "max": round(gaps[-1], 3) if gaps else None,
                "over_1_5": sum(1 for g in gaps if g > 1.5),
            }
        )
    )


if __name__ == "__main__":
    main()
