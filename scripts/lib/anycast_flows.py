#!/usr/bin/env python3
"""Client flows for the anycast lab (scripts/lib/anycast-lab.sh), run in the client
namespace. Each flow is pinned by its source port (the router hashes ports with
fib_multipath_hash_policy=1), so it stays on one node as long as the router's
next hops do not change.

  anycast_flows.py run --target VIP --flows N --event CMD ...
      N flows, each a keep-alive HTTP connection from its own source port sending
      GET / every --period-ms (the body names the node). After --before seconds
      CMD runs (sh -c), the flows go on for --after seconds. Times are counted
      from CMD's return (the failure is in place then; event_ms says how long CMD
      took, the most the failure may have started earlier). A broken connection is
      closed with a reset (no TIME_WAIT) and reopened from the same port. Prints
      JSON: per flow the node before the event, the first answer after it, and
      whether the flow was disturbed; with --failed NODE the summary: the failed
      node's flows (time from the event to their first answer after it) and the
      share of the other nodes' flows disturbed (broken or moved).

  anycast_flows.py slow --target VIP --node NODE --path /slow
      Finds a source port whose flow lands on NODE (GET / on a keep-alive
      connection), then downloads PATH on that connection; prints JSON with the
      bytes received. Used to show that a flow in flight finishes on a drained node.
"""
import argparse
import asyncio
import json
import socket
import statistics
import struct
import sys
import time

REQUEST = b"GET %s HTTP/1.1\r\nHost: vip\r\n\r\n"


def open_socket(target, port):
    family = socket.AF_INET6 if ":" in target else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # close() sends a reset: no TIME_WAIT, the port can be bound again at once.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
    s.setblocking(False)
    return s


async def read_response(loop, s, limit=1 << 20):
    """One HTTP/1.1 response with Content-Length: (status, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = await loop.sock_recv(s, 65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
        if len(buf) > 65536:
            raise ConnectionError("header too long")
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    if length > limit:
        raise ConnectionError("body too long")
    while len(body) < length:
        chunk = await loop.sock_recv(s, 65536)
        if not chunk:
            raise ConnectionError("closed mid-body")
        body += chunk
    return status, body[:length]


class Flow:
    def __init__(self, port):
        self.port = port
        self.log = []  # (monotonic time, node or None, error kind or None)


async def run_flow(flow, args, stop):
    loop = asyncio.get_running_loop()
    timeout = args.timeout_ms / 1000
    s = None
    while not stop.is_set():
        t = time.monotonic()
        try:
            if s is None:
                s = open_socket(args.target, flow.port)
                await asyncio.wait_for(loop.sock_connect(s, (args.target, 80)), timeout)
            await loop.sock_sendall(s, REQUEST % b"/")
            status, body = await asyncio.wait_for(read_response(loop, s), timeout)
            if status != 200:
                raise ConnectionError(f"status {status}")
            flow.log.append((t, body.decode().strip(), None))
            await asyncio.sleep(args.period_ms / 1000)
        except (OSError, ConnectionError, asyncio.TimeoutError) as e:
            kind = "timeout" if isinstance(e, asyncio.TimeoutError) else "broken"
            flow.log.append((t, None, kind))
            if s is not None:
                s.close()
                s = None
            await asyncio.sleep(args.retry_ms / 1000)
    if s is not None:
        s.close()


def summarize(flows, t_event, t_done, failed):
    """Before: what started before the event command; after: what started once it
    had returned (the failure is in place then), times counted from then."""
    per = []
    for f in flows:
        before = [e for e in f.log if e[0] < t_event]
        after = [e for e in f.log if e[0] >= t_done]
        node = next((e[1] for e in reversed(before) if e[1]), None)
        first_ok = next((e for e in after if e[1]), None)
        broken = any(e[2] == "broken" for e in after)
        timeouts = sum(1 for e in after if e[2] == "timeout")
        moved = any(e[1] and e[1] != node for e in after)
        per.append({
            "port": f.port,
            "node": node,
            "first_answer_ms": None if first_ok is None else round(1000 * (first_ok[0] - t_done), 1),
            "first_answer_from": None if first_ok is None else first_ok[1],
            "broken": broken,
            "timeouts": timeouts,
            "moved": moved,
        })
    out = {"flows": per}
    # Steady before the event: in its last second every flow answered, without an
    # error, always from the same node (a run where the lab was still settling, or
    # a false BFD failure moved flows before the event, is not a measurement).
    window = [[e for e in f.log if t_event - 1 <= e[0] < t_event] for f in flows]
    out["steady_before"] = all(w and all(e[1] for e in w) and len({e[1] for e in w}) == 1 for w in window)
    if failed:
        own = [p for p in per if p["node"] == failed]
        others = [p for p in per if p["node"] and p["node"] != failed]
        waits = sorted(p["first_answer_ms"] for p in own if p["first_answer_ms"] is not None)
        disturbed = [p for p in others if p["broken"] or p["moved"]]
        out["summary"] = {
            "flows": len(per),
            "without_answer_before": sum(1 for p in per if not p["node"]),
            "own": len(own),
            "own_never_answered": sum(1 for p in own if p["first_answer_ms"] is None),
            "own_broken": sum(1 for p in own if p["broken"]),
            # Answered by the failed node itself after the failure: not a failure.
            "own_answered_by_failed": sum(1 for p in own if p["first_answer_from"] == failed),
            "own_wait_p50_ms": statistics.median(waits) if waits else None,
            "own_wait_max_ms": waits[-1] if waits else None,
            "others": len(others),
            "others_disturbed": len(disturbed),
            "others_stalled": sum(1 for p in others if p["timeouts"]),
            "others_disturbed_moved_to": sorted({p["first_answer_from"] or "-" for p in disturbed}),
        }
    return out


async def run(args):
    stop = asyncio.Event()
    flows = [Flow(args.first_port + i) for i in range(args.flows)]
    tasks = [asyncio.create_task(run_flow(f, args, stop)) for f in flows]
    await asyncio.sleep(args.before)
    t_event = time.monotonic()
    proc = await asyncio.create_subprocess_shell(args.event)
    rc = await proc.wait()
    t_done = time.monotonic()
    await asyncio.sleep(args.after)
    stop.set()
    await asyncio.gather(*tasks)
    out = summarize(flows, t_event, t_done, args.failed)
    out["event_rc"] = rc
    out["event_ms"] = round(1000 * (t_done - t_event), 1)
    if not args.per_flow:
        del out["flows"]
    print(json.dumps(out))


async def slow(args):
    loop = asyncio.get_running_loop()
    for port in range(args.first_port, args.first_port + 200):
        s = open_socket(args.target, port)
        try:
            await asyncio.wait_for(loop.sock_connect(s, (args.target, 80)), 1)
            await loop.sock_sendall(s, REQUEST % b"/")
            _, body = await asyncio.wait_for(read_response(loop, s), 1)
            if body.decode().strip() != args.node:
                s.close()
                continue
            # Tell the caller the download is under way (it then takes the node away).
            print(json.dumps({"port": port, "node": args.node, "started": True}), flush=True)
            await loop.sock_sendall(s, REQUEST % args.path.encode())
            status, body = await asyncio.wait_for(read_response(loop, s, 16 << 20), args.max_s)
            print(json.dumps({"port": port, "node": args.node, "status": status, "bytes": len(body)}))
            return 0
        except (OSError, ConnectionError, asyncio.TimeoutError) as e:
            print(json.dumps({"port": port, "error": str(e) or type(e).__name__}))
            return 1
        finally:
            s.close()
    print(json.dumps({"error": f"no flow landed on {args.node}"}))
    return 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--target", required=True)
    r.add_argument("--flows", type=int, default=90)
    r.add_argument("--first-port", type=int, default=20000)
    r.add_argument("--period-ms", type=float, default=10)
    r.add_argument("--retry-ms", type=float, default=5)
    r.add_argument("--timeout-ms", type=float, default=100)
    r.add_argument("--before", type=float, default=2)
    r.add_argument("--after", type=float, default=3)
    r.add_argument("--event", required=True)
    r.add_argument("--failed", help="the node the event fails (for the summary)")
    r.add_argument("--per-flow", action="store_true")
    s = sub.add_parser("slow")
    s.add_argument("--target", required=True)
    s.add_argument("--node", required=True)
    s.add_argument("--path", default="/slow")
    s.add_argument("--first-port", type=int, default=40000)
    s.add_argument("--max-s", type=float, default=30)
    args = ap.parse_args()
    if args.cmd == "run":
        asyncio.run(run(args))
        return 0
    return asyncio.run(slow(args))


if __name__ == "__main__":
    sys.exit(main())
