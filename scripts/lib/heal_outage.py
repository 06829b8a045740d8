#!/usr/bin/env python3
"""Client outage after a partition heal, from `ip -ts monitor` logs (issue 14, defect 2).

heal_outage.py NEIGH_LOG ADDR_LOG VIP WINNER_MAC SINCE_NS
NEIGH_LOG: `ip -ts monitor neigh` in the client's namespace; ADDR_LOG: `ip -ts
monitor address` in the loser's. From SINCE_NS (epoch ns, the start of this
partition) on: the loser's last removal of VIP is when its clients lose it; the
outage is how long the client's neighbour entry for VIP then still names another
MAC (0 when it already named the winner's). Prints "outage_ms entry_at_yield".
"""
import datetime
import re
import sys

TS = re.compile(r"^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)\]\s*(.*)$")


def events(path):
    for line in open(path, errors="replace"):
        m = TS.match(line.strip())
        if m:
            t = datetime.datetime.fromisoformat(m.group(1)).timestamp()
            yield t, m.group(2)


def main():
    neigh_log, addr_log, vip, winner, since_ns = sys.argv[1:6]
    since = int(since_ns) / 1e9
    winner = winner.lower()
    removed = [t for t, e in events(addr_log) if t >= since and e.startswith("Deleted") and f" {vip}/" in e]
    if not removed:
        sys.exit(f"the loser never removed {vip} after the partition (was it master?)")
    t_yield = removed[-1]
    entries = []
    for t, e in events(neigh_log):
        f = e.split()
        if f and f[0] == vip and "lladdr" in f:
            entries.append((t, f[f.index("lladdr") + 1].lower()))
    before = [m for t, m in entries if t <= t_yield]
    at_yield = before[-1] if before else "none"
    if at_yield == winner:
        print(f"0.0 {at_yield}")
        return
    moved = [t for t, m in entries if t > t_yield and m == winner]
    if not moved:
        print(f"inf {at_yield}")
        return
    print(f"{(moved[0] - t_yield) * 1000:.1f} {at_yield}")


if __name__ == "__main__":
    main()
