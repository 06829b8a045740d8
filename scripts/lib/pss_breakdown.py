#!/usr/bin/env python3
"""What a daemon's PSS is made of: /proc/PID/smaps of each process, Pss summed by
kind of mapping, in KiB, as JSON (scripts/bench scale prints it per node).

    pss_breakdown.py PID...

Kinds: "binary" (the executable's own file mappings: code, read-only data,
relocated data), "libs" (other files: libc, ld.so, locale), "heap" ([heap]),
"stacks" ([stack] and the anonymous mappings the kernel marks as a thread's
stack), "anon" (other anonymous memory: malloc's mmapped chunks, thread arenas),
"other" ([vdso], [vvar], ...), and "binary_text" (of "binary", what is
executable).
"""
import json
import os
import sys


def breakdown(pids):
    out = {k: 0 for k in ("binary", "binary_text", "libs", "heap", "stacks", "anon", "other")}
    for pid in pids:
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
            with open(f"/proc/{pid}/smaps") as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        kind = perms = None
        for line in lines:
            fields = line.split()
            if not fields:
                continue
            if "-" in fields[0] and len(fields) >= 5 and not fields[0].endswith(":"):
                perms = fields[1]
                path = fields[5] if len(fields) > 5 else ""
                if path == exe:
                    kind = "binary"
                elif path.startswith("/"):
                    kind = "libs"
                elif path == "[heap]":
                    kind = "heap"
                elif path.startswith("[stack"):
                    kind = "stacks"
                elif path == "":
                    kind = "anon"
                else:
                    kind = "other"
            elif fields[0] == "Pss:" and kind:
                kb = int(fields[1])
                out[kind] += kb
                if kind == "binary" and "x" in perms:
                    out["binary_text"] += kb
    return out


if __name__ == "__main__":
    print(json.dumps(breakdown(sys.argv[1:])))
