#!/usr/bin/env python3
"""Reads `tcpdump -tt -n` lines of VRRP adverts from stdin; prints, as JSON, the
number of adverts, and per-VRID the largest gap between two adverts (ms): the
lateness a loaded sender shows."""
import json
import re
import sys

last = {}
worst = {}
count = 0
for line in sys.stdin:
    m = re.match(r"(\d+\.\d+) .*vrid (\d+)", line)
    if not m:
        continue
    t, vrid = float(m.group(1)), int(m.group(2))
    count += 1
    if vrid in last:
        worst[vrid] = max(worst.get(vrid, 0.0), (t - last[vrid]) * 1e3)
    last[vrid] = t
gaps = sorted(worst.values())
print(json.dumps({
    "adverts": count,
    "vrids": len(last),
    "max_gap_ms": round(gaps[-1], 1) if gaps else None,
    "median_max_gap_ms": round(gaps[len(gaps) // 2], 1) if gaps else None,
}))
