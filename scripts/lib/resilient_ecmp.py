#!/usr/bin/env python3
"""The anycast lab's resilient-ECMP router agent (scripts/lib/anycast-lab.sh,
ANYCAST_ROUTER=resilient): a lab and bench tool, not part of hafront.

BIRD 2 (Debian's 2.0.12) writes an ECMP route as one route with RTA_MULTIPATH,
which the kernel forwards with hash-threshold: when a next hop leaves, the hash
ranges of the others are redrawn and part of their flows change next hop. The
kernel's resilient next-hop groups (`ip nexthop ... type resilient`, Linux 5.13)
keep every remaining next hop's buckets; BIRD does not program them. So the
router's BIRD exports into kernel table --table, and this agent, in the router's
namespace, follows that table event-driven (`ip -o monitor route`) and mirrors
each of its multipath routes into the main table as

    ip nexthop add id X via GW dev DEV                 one object per next hop
    ip nexthop add id G group X1/X2/.. type resilient buckets B idle_timer I unbalanced_timer U
    ip route replace PREFIX nhid G                     (main table)

A change of the next hops is `ip nexthop replace id G group ...` of the same
group (never a new group: that would redraw every bucket): the kernel gives the
buckets of a removed next hop to the others at once and leaves theirs alone; an
added next hop gets only buckets idle for I seconds (with U = 0 the kernel never
forces the migration of busy buckets). The last next hop gone: the route and the
group are deleted.

  resilient_ecmp.py --table 200 [--buckets 96] [--idle-timer 2] [--unbalanced-timer 0]

Logs every change (with the time it took) to stdout; runs until killed.
"""
import argparse
import json
import os
import select
import subprocess
import sys
import time

NH_BASE = 1000      # next-hop objects: ids from here
GROUP_BASE = 2000   # groups: ids from here


def log(msg):
    t = time.time()
    print(f"{time.strftime('%H:%M:%S', time.localtime(t))}.{int(t * 1000) % 1000:03d} {msg}", flush=True)


def table_routes(table, fam):
    """{prefix: ((gateway, dev), ...) sorted} of the kernel table (unicast via routes only)."""
    p = subprocess.run(["ip", "-j", f"-{fam}", "route", "show", "table", str(table)], capture_output=True, text=True)
    if p.returncode != 0:
        # No route was ever put in the table: it does not exist yet.
        if "table does not exist" in p.stderr:
            return {}
        raise RuntimeError(f"ip route show table {table}: {p.stderr.strip()}")
    routes = {}
    for r in json.loads(p.stdout or "[]"):
        if r.get("type", "unicast") != "unicast":
            continue
        hops = r.get("nexthops") or ([r] if r.get("gateway") else [])
        hops = tuple(sorted((h["gateway"], h["dev"]) for h in hops if h.get("gateway") and h.get("dev")))
        if hops:
            dst = r["dst"]
            if "/" not in dst:
                dst += "/32" if fam == 4 else "/128"
            routes[dst] = hops
    return routes


class Agent:
    def __init__(self, args):
        self.args = args
        self.nh = {}      # (gateway, dev) -> next-hop id
        self.groups = {}  # prefix -> [group id, (gateway, dev), ...]
        self.next_nh = NH_BASE
        self.next_group = GROUP_BASE

    def batch(self, cmds):
        if not cmds:
            return
        p = subprocess.run(["ip", "-batch", "-"], input="\n".join(cmds) + "\n", capture_output=True, text=True)
        if p.returncode != 0:
            log(f"ip -batch failed ({p.stderr.strip()}): {cmds}")
            raise RuntimeError(p.stderr.strip())

    def reconcile(self, fam):
        t0 = time.monotonic()
        want = table_routes(self.args.table, fam)
        mine = {p: g for p, g in self.groups.items() if (":" in p) == (fam == 6)}
        cmds, changes = [], []
        for prefix, hops in sorted(want.items()):
            for h in hops:
                if h not in self.nh:
                    self.nh[h] = self.next_nh
                    self.next_nh += 1
                    cmds.append(f"nexthop add id {self.nh[h]} via {h[0]} dev {h[1]}")
            members = "/".join(str(self.nh[h]) for h in hops)
            if prefix not in mine:
                g = self.next_group
                self.next_group += 1
                a = self.args
                cmds.append(f"nexthop add id {g} group {members} type resilient buckets {a.buckets} "
                            f"idle_timer {a.idle_timer} unbalanced_timer {a.unbalanced_timer}")
                cmds.append(f"route replace {prefix} nhid {g} proto static")
                self.groups[prefix] = [g, *hops]
                changes.append(f"{prefix} group {g} [{' '.join(h[0] for h in hops)}]")
            elif tuple(mine[prefix][1:]) != hops:
                g = mine[prefix][0]
                # The same group, its members replaced: the buckets of the next hops
                # that stay are kept (no buckets argument: it cannot change).
                cmds.append(f"nexthop replace id {g} group {members} type resilient")
                changes.append(f"{prefix} group {g} [{' '.join(h[0] for h in mine[prefix][1:])}] -> [{' '.join(h[0] for h in hops)}]")
                self.groups[prefix] = [g, *hops]
        for prefix in sorted(set(mine) - set(want)):
            g = mine[prefix][0]
            cmds.append(f"route del {prefix} nhid {g}")
            cmds.append(f"nexthop del id {g}")
            del self.groups[prefix]
            changes.append(f"{prefix} group {g} deleted")
        # Next-hop objects no group uses any more (of this family).
        used = {h for g in self.groups.values() for h in g[1:]}
        for h in [h for h in self.nh if h not in used and (":" in h[0]) == (fam == 6)]:
            cmds.append(f"nexthop del id {self.nh.pop(h)}")
        self.batch(cmds)
        for c in changes:
            log(f"{c} ({1000 * (time.monotonic() - t0):.1f} ms)")

    def run(self):
        # The monitor first, then the first read: no change falls in between.
        mon = subprocess.Popen(["ip", "-o", "monitor", "route"], stdout=subprocess.PIPE, text=True, bufsize=1)
        log(f"following table {self.args.table}: buckets {self.args.buckets}, idle_timer {self.args.idle_timer}, "
            f"unbalanced_timer {self.args.unbalanced_timer}")
        for fam in (4, 6):
            self.reconcile(fam)
        tag = f"table {self.args.table} "
        fd = mon.stdout.fileno()
        os.set_blocking(fd, False)
        buf = ""
        while True:
            select.select([fd], [], [])
            # Everything the monitor has said so far: one reconciliation per family it touched.
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if not chunk:
                    log("ip monitor ended")
                    return 1
                buf += chunk.decode()
                if not select.select([fd], [], [], 0)[0]:
                    break
            lines, buf = buf.rsplit("\n", 1) if "\n" in buf else ("", buf)
            fams = set()
            for line in lines.splitlines():
                if tag in line + " ":
                    dst = line.split()[1] if line.startswith("Deleted") else line.split()[0]
                    fams.add(6 if ":" in dst else 4)
            for fam in sorted(fams):
                self.reconcile(fam)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--table", type=int, required=True)
    ap.add_argument("--buckets", type=int, default=96)
    ap.add_argument("--idle-timer", type=int, default=2)
    ap.add_argument("--unbalanced-timer", type=int, default=0)
    return Agent(ap.parse_args()).run()


if __name__ == "__main__":
    sys.exit(main())
