#!/usr/bin/env python3
"""The tables after `scripts/bench scale`'s rows (one JSON line per daemon, written
by it): what each node's PSS is made of (scripts/lib/pss_breakdown.py), and, when
both daemons ran, the issue 19 table: hafront beside keepalived with the ratios
the issue sets targets for (master user CPU <= 0.5x, backup total CPU <= 1.0x,
master PSS <= 1.0x, no flap, no advert later than 1.5 intervals).

    scale_report.py ROWS.jsonl
"""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
if not rows:
    sys.exit(0)
print()
print("PSS by mapping (MiB; anon holds malloc's arena and the threads' stacks):")
print()
print("| daemon | node | threads | binary (text) | libs | heap | anon | stacks | other |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    for node, key, thr in (("master", "pss_master", r["threads"][0]), ("backup", "pss_backup", r["threads"][1])):
        p = {k: v / 1024 for k, v in r[key].items()}
        print(f"| {r['daemon']} | {node} | {thr} | {p['binary']:.1f} ({p['binary_text']:.1f}) | {p['libs']:.1f} "
              f"| {p['heap']:.1f} | {p['anon']:.1f} | {p['stacks']:.1f} | {p['other']:.1f} |")
by = {r["daemon"]: r for r in rows}
if "hafront" not in by or "keepalived" not in by:
    sys.exit(0)
h, k = by["hafront"], by["keepalived"]


def ratio(a, b):
    return f"{a / b:.2f}" if b else "-"


print()
print("Against issue 19 (same run; ratio = hafront / keepalived):")
print()
print("| | hafront | keepalived | ratio | target |")
print("|---|---:|---:|---:|---|")
lines = [
    ("master user CPU %", h["master_user"], k["master_user"], "<= 0.5"),
    ("master system CPU %", h["master_sys"], k["master_sys"], ""),
    ("master total CPU %", h["master_user"] + h["master_sys"], k["master_user"] + k["master_sys"], ""),
    ("backup user CPU %", h["backup_user"], k["backup_user"], ""),
    ("backup system CPU %", h["backup_sys"], k["backup_sys"], ""),
    ("backup total CPU %", h["backup_user"] + h["backup_sys"], k["backup_user"] + k["backup_sys"], "<= 1.0"),
    ("master RSS MiB", h["master_rss"], k["master_rss"], ""),
    ("master PSS MiB", h["master_pss"], k["master_pss"], "<= 1.0"),
    ("backup PSS MiB", h["backup_pss"], k["backup_pss"], ""),
]
for name, a, b, target in lines:
    print(f"| {name} | {a:.2f} | {b:.2f} | {ratio(a, b)} | {target} |")
for name, key in (("gap p50 (intervals)", "p50"), ("gap p99", "p99"), ("gap max", "max")):
    a, b = h["lateness"].get(key), k["lateness"].get(key)
    print(f"| {name} | {a} | {b} | | {'<= 1.5' if key == 'max' else ''} |")
print(f"| gaps > 1.5 intervals | {h['lateness']['over_1_5']} | {k['lateness']['over_1_5']} | | 0 |")
print(f"| transitions (flaps) while measured | {h['trans']} | {k['trans']} | | 0 |")
