#!/usr/bin/env python3
"""Long-lived TCP flows for scripts/lab/test_conntrackd.sh.

  flows.py server ADDR PORT
  flows.py client ADDR PORT COUNT DIR

The server echoes lines. The client opens COUNT connections, writes DIR/ready
once all are up, then each sends a line every 100 ms and waits for its echo,
until DIR/stop exists. It then prints one JSON object: connections kept (no
error, no reset), the errors, the local ports of the broken ones, and per phase
(DIR/marks: "name epoch" lines) the longest stall: the longest time any
connection went without an echo, less the 100 ms pause.
"""
import asyncio
import json
import os
import sys
import time

PAUSE = 0.1


async def serve(addr, port):
    async def echo(r, w):
        try:
            while line := await r.readline():
                w.write(line)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    srv = await asyncio.start_server(echo, addr, port, backlog=512)
    async with srv:
        await srv.serve_forever()


async def flow(addr, port, d, st, up):
    r, w = await asyncio.open_connection(addr, port)
    st["port"] = w.get_extra_info("sockname")[1]
    up.set_result(None)
    last = time.monotonic()
    try:
        while not os.path.exists(os.path.join(d, "stop")):
            w.write(b"0123456789abcdef\n")
            await w.drain()
            line = await asyncio.wait_for(r.readline(), 20)
            if not line:
                raise ConnectionError("closed by the peer")
            now = time.monotonic()
            gap = now - last - PAUSE
            if gap > 0.05:
                st["gaps"].append((time.time() - gap, gap))
            last = now
            await asyncio.sleep(PAUSE)
    except (OSError, ConnectionError, asyncio.TimeoutError) as e:
        st["error"] = f"{type(e).__name__}: {e}"
        st["at"] = time.time()
    w.close()


async def client(addr, port, n, d):
    loop = asyncio.get_running_loop()
    states = [{"gaps": []} for _ in range(n)]
    ups = [loop.create_future() for _ in range(n)]
    tasks = [asyncio.create_task(flow(addr, port, d, s, u)) for s, u in zip(states, ups)]
    await asyncio.wait_for(asyncio.gather(*ups), 20)
    with open(os.path.join(d, "ready"), "w") as f:
        f.write("ready\n")
    await asyncio.gather(*tasks)
    marks = []
    try:
        with open(os.path.join(d, "marks")) as f:
            for line in f:
                name, t = line.split()
                marks.append((name, float(t)))
    except FileNotFoundError:
        pass
    phases = {}
    for i, (name, t0) in enumerate(marks):
        t1 = marks[i + 1][1] if i + 1 < len(marks) else float("inf")
        stall = 0.0
        broken = 0
        for s in states:
            for start, gap in s["gaps"]:
                if t0 - 1 <= start < t1:
                    stall = max(stall, gap)
            if "error" in s and t0 <= s["at"] < t1:
                broken += 1
        phases[name] = {"stall_ms": round(stall * 1000), "broken": broken}
    errors = sorted({s["error"] for s in states if "error" in s})
    # When the broken ones broke (epoch seconds), for a look beside the logs.
    broken_at = sorted(round(s["at"], 3) for s in states if "error" in s)
    print(json.dumps({
        "total": n,
        "kept": sum("error" not in s for s in states),
        "errors": errors,
        "broken_at": broken_at,
        "broken_ports": sorted(s["port"] for s in states if "error" in s),
        "phases": phases,
    }))


def main():
    if sys.argv[1] == "server":
        asyncio.run(serve(sys.argv[2], int(sys.argv[3])))
    else:
        asyncio.run(client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]))


if __name__ == "__main__":
    main()
