#!/usr/bin/env python3
"""Client-visible outage measurement for the lab.

probe:   outage.py probe --ns NS --target IP --interval-ms 10 --out FILE
         Runs `ping` inside namespace NS at a fixed rate (it does not slow down during
         an outage) and writes one wall-clock timestamp per echo reply to FILE.
measure: outage.py measure --replies FILE --event-ts T
         Prints, in ms, the time from T (a `date +%s.%N` taken when the failure was
         triggered) to the first reply to an echo sent after T. Exit 1 if none came.
median:  outage.py median V...
"""
import argparse
import re
import statistics
import subprocess
import sys

REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from .* time=([\d.]+) ms")


def probe(a):
    interval = max(a.interval_ms, 2) / 1000.0
    cmd = ["ip", "netns", "exec", a.ns, "ping", "-n", "-D", "-i", f"{interval:.3f}", "-W", "1", a.target]
    with open(a.out, "w", buffering=1) as out:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1)
        try:
            for line in p.stdout:
                m = REPLY.match(line)
                if m:
                    # receive time and send time (receive - RTT) of each reply
                    recv = float(m.group(1))
                    out.write(f"{recv:.6f} {recv - float(m.group(2)) / 1000:.6f}\n")
        except KeyboardInterrupt:
            pass
        finally:
            p.terminate()


def replies(path):
    with open(path) as f:
        return [tuple(float(x) for x in line.split()) for line in f if line.strip()]


def measure(a):
    # A reply to an echo sent before the event says nothing about reachability
    # after it: count only echoes sent after the event.
    after = [recv for recv, sent in replies(a.replies) if sent > a.event_ts]
    if not after:
        print(f"no reply after the event at {a.event_ts}", file=sys.stderr)
        return 1
    print(f"{(after[0] - a.event_ts) * 1000:.1f}")
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("probe")
    p.add_argument("--ns", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--interval-ms", type=int, default=10)
    p.add_argument("--out", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--replies", required=True)
    m.add_argument("--event-ts", type=float, required=True)
    md = sub.add_parser("median")
    md.add_argument("values", nargs="+", type=float)
    a = ap.parse_args()
    if a.cmd == "probe":
        probe(a)
    elif a.cmd == "measure":
        sys.exit(measure(a))
    else:
        print(f"{statistics.median(a.values):.1f}")


if __name__ == "__main__":
    main()
