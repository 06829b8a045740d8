#!/usr/bin/env python3
"""Client-visible outage measurement for the namespace lab (root only).

run:     outage.py run --client-ns NS --target IP --event cut --switch-ns NS --port pa [--after-advert-ms 1]
         outage.py run --client-ns NS --target IP --event kill --pid PID
         Sends one ICMP echo every --interval-ms (default 1 ms) from the client
         namespace, waits until the target answers steadily, waits --delay plus a
         random 0..--jitter seconds (so the failure falls anywhere in the advert
         period), then triggers the failure itself and keeps probing until another
         node answers steadily. Prints one JSON object (fields below).
report:  outage.py report RAW.jsonl   the Markdown tables of scripts/bench failover
median:  outage.py median V...

The failure is triggered from this process so that its timestamp is exact: a port
cut is one RTM_NEWLINK (IFF_UP cleared) on a netlink socket opened in the switch
namespace, a graceful stop is kill(PID, SIGTERM). (Timing `date` and then running
`ip link set ... down` put the event 3-6 ms before the cut really happened, and
echoes answered in between by the old master passed for a recovery.)

Everything the client's interface receives is read from one packet socket with
kernel timestamps (SO_TIMESTAMPNS), so the prober's own scheduling does not blur
them, and with the sender's MAC address, which tells the old master from the new
one: echo replies, VRRP adverts (multicast, flooded by the lab's bridge) and
gratuitous ARPs. Times are CLOCK_REALTIME, comparable with `tcpdump -tt`.

Output fields (times in ms):
  outage_ms     first echo reply from the new master minus the moment the service
                stopped: the event, or for a graceful stop the sending of the last
                echo the old master answered (0 when no echo was lost).
  resolution_ms width of the interval the true outage lies in (below outage_ms):
                one or two probe intervals; more means the prober was descheduled
                at the start or the end of the outage (scripts/bench retries then).
  release_ms    first lost echo minus the event: how long the old master kept
                answering (about one probe interval for a cut).
  lost, gaps    echoes lost before the takeover and in how many runs (1 expected);
                lost_after_takeover (0 expected).
  timer_ref     what started the new master's Master_Down_Timer, as seen by the
                client: "last_advert" (the old master's last advert before a cut)
                or "priority_0" (its priority-0 advert after SIGTERM).
  ref_to_advert_ms, ref_to_garp_ms, ref_to_reply_ms
                from that advert to the new master's first advert, first gratuitous
                ARP and first echo reply: Master_Down_Interval (or Skew_Time) plus
                what the daemon adds, free of the phase of the cut.
"""
import argparse
import ctypes
import json
import os
import random
import select
import signal
import socket
import statistics
import struct
import sys
import time

CLONE_NEWNET = 0x40000000
SO_TIMESTAMPNS = 35  # also SCM_TIMESTAMPNS (x86_64, arm64)
RTM_NEWLINK = 16
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR = 2
IFF_UP = 0x1
SOL_RAW, ICMP_FILTER = 255, 1
ETH_P_ALL, ETH_P_IP, ETH_P_ARP = 0x0003, 0x0800, 0x0806
PACKET_OUTGOING = 4
IPPROTO_VRRP = 112

_libc = ctypes.CDLL(None, use_errno=True)


def setns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def netns_path(name):
    return name if name.startswith("/") else f"/run/netns/{name}"


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class LinkCutter:
    """Sets a switch port down with one netlink message (no fork/exec of `ip`)."""

    def __init__(self, port):
        ifindex = socket.if_nametoindex(port)
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, ifindex, 0, IFF_UP)
        self.msg = struct.pack("=IHHII", 16 + len(body), RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 1, 0) + body

    def fire(self):
        self.sock.send(self.msg)

    def ack(self):
        data = self.sock.recv(4096)
        (mtype,) = struct.unpack_from("=H", data, 4)
        if mtype == NLMSG_ERROR:
            (err,) = struct.unpack_from("=i", data, 16)
            if err != 0:
                raise OSError(-err, f"RTM_NEWLINK: {os.strerror(-err)}")


class Prober:
    """Echo requests from a raw ICMP socket; everything the interface receives
    from one packet socket, with the sender's MAC address."""

    def __init__(self, target, interval_s, iface):
        self.target = target
        self.interval = interval_s
        self.ident = os.getpid() & 0xFFFF
        self.tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        # The sending socket itself receives nothing (ICMP_FILTER: every type out).
        self.tx.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", 0xFFFFFFFF))
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
        self.sock.bind((iface, ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setblocking(False)
        self.sent = []  # send time (realtime, s) by sequence number
        self.recv = {}  # sequence number -> kernel receive time (s)
        self.mac = {}  # sequence number -> MAC address of the answering node
        self.adverts = []  # (time, MAC, priority) of every VRRP advert heard
        self.garps = []  # (time, MAC) of every gratuitous ARP heard
        self.next = time.monotonic()

    def send(self):
        seq = len(self.sent)
        payload = struct.pack("!I", seq) + b"hafront-bench"
        hdr = struct.pack("!BBHHH", 8, 0, 0, self.ident, seq & 0xFFFF)
        pkt = hdr[:2] + struct.pack("!H", csum(hdr + payload)) + hdr[4:] + payload
        self.sent.append(time.time())
        try:
            self.tx.sendto(pkt, (self.target, 0))
        except OSError:
            pass  # e.g. EHOSTUNREACH while the neighbour entry fails: counts as lost

    def drain(self):
        while True:
            try:
                data, anc, _flags, addr = self.sock.recvmsg(256, 64)
            except BlockingIOError:
                return
            proto, pkttype, mac = addr[1], addr[2], addr[4].hex(":")
            if pkttype == PACKET_OUTGOING:
                continue
            ts = None
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("=qq", cdata[:16])
                    ts = sec + nsec / 1e9
            ts = ts if ts is not None else time.time()
            if proto == ETH_P_ARP:
                # A gratuitous ARP: request or reply whose sender and target IP agree.
                if len(data) >= 28 and data[14:18] == data[24:28]:
                    self.garps.append((ts, mac))
                continue
            if proto != ETH_P_IP or len(data) < 20:
                continue
            ihl = (data[0] & 0x0F) * 4
            if data[9] == IPPROTO_VRRP:
                if len(data) >= ihl + 3:
                    self.adverts.append((ts, mac, data[ihl + 2]))
                continue
            icmp = data[ihl:]
            if data[9] != socket.IPPROTO_ICMP or len(icmp) < 12 or icmp[0] != 0:
                continue
            (ident,) = struct.unpack("!H", icmp[4:6])
            (seq,) = struct.unpack("!I", icmp[8:12])
            if ident == self.ident and seq < len(self.sent) and seq not in self.recv:
                self.recv[seq] = ts
                self.mac[seq] = mac

    def step(self, until=None):
        """Sends when due, then receives until the next send is due (or `until`)."""
        now = time.monotonic()
        if now >= self.next:
            self.send()
            # Fixed rate; after a stall, do not send a burst to catch up.
            self.next = max(self.next + self.interval, now)
        timeout = max(0.0, min(self.next, until or self.next) - time.monotonic())
        if select.select([self.sock], [], [], timeout)[0]:
            self.drain()

    def run_for(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.step()


def run(a):
    cutter = None
    if a.event == "cut":
        setns(netns_path(a.switch_ns))
        cutter = LinkCutter(a.port)
    setns(netns_path(a.client_ns))
    prober = Prober(a.target, a.interval_ms / 1000.0, a.iface)

    # 1. The target must answer steadily before the failure.
    deadline = time.monotonic() + a.ready_timeout
    while True:
        prober.step()
        n = len(prober.sent)
        if n > 50 and all(s in prober.recv for s in range(n - 40, n - 10)):
            break
        if time.monotonic() > deadline:
            print(f"outage: {a.target} does not answer steadily", file=sys.stderr)
            return 1
    # 2. The phase with respect to the advert timer: random (--jitter), or fixed
    # just after an advert of the old master (--after-advert-ms), where a cut
    # costs the whole Master_Down_Interval: the worst case, the same for every
    # run and every daemon. Random with respect to the probe's own period either
    # way (else every result would fall on the same point of the 1 ms grid).
    prober.run_for(a.delay + random.uniform(0, a.jitter))
    old_mac = prober.mac[max(prober.recv)]
    if a.after_advert_ms is not None:
        seen = len(prober.adverts)
        deadline = time.monotonic() + 5.0
        while not any(m == old_mac for _, m, _ in prober.adverts[seen:]):
            prober.step()
            if time.monotonic() > deadline:
                print("outage: no advert from the master heard", file=sys.stderr)
                return 1
        t_advert = next(t for t, m, _ in prober.adverts[seen:] if m == old_mac)
        wait = t_advert + a.after_advert_ms / 1000.0 - time.time()
        t_fire = time.monotonic() + max(0.0, wait)
    else:
        t_fire = time.monotonic() + random.uniform(0, prober.interval)
    while time.monotonic() < t_fire:
        prober.step(until=t_fire)
    prober.drain()
    first_after = len(prober.sent)
    # 3. The failure.
    t_event = time.time()
    if cutter:
        cutter.fire()
        t_done = time.time()
        cutter.ack()
    else:
        os.kill(a.pid, signal.SIGTERM)
        t_done = time.time()
    # 4. Probe until another node answers steadily (the newest 20 echoes older
    # than 10 ms all answered by it), then a short tail.
    end = time.monotonic() + a.max_wait
    recovered_at = None
    while time.monotonic() < end:
        prober.step()
        if recovered_at is None:
            now, n = time.time(), len(prober.sent)
            recent = [s for s in range(max(first_after, n - 40), n) if now - prober.sent[s] > 0.01][-20:]
            if len(recent) == 20 and all(prober.mac.get(s, old_mac) != old_mac for s in recent):
                recovered_at = time.monotonic()
        elif time.monotonic() - recovered_at > a.tail:
            break
    prober.run_for(0.12)  # echoes unanswered for 100 ms count as lost
    res = report_run(prober, first_after, old_mac, t_event, a.event)
    res["event_call_ms"] = round((t_done - t_event) * 1000, 3)
    if a.after_advert_ms is not None:
        res["after_advert_ms"] = round((t_event - t_advert) * 1000, 3)
    print(json.dumps(res))
    return 0 if "error" not in res else 1


def report_run(p, first_after, old_mac, t_event, event):
    sent, recv, mac = p.sent, p.recv, p.mac
    n = len(sent)
    ms = lambda x: round(x * 1000, 2)  # noqa: E731
    res = {"event_ts": round(t_event, 6), "sent": n}
    new = [s for s in range(first_after, n) if mac.get(s, old_mac) != old_mac]
    if not new:
        res["error"] = "no other node answered after the event"
        return res
    first_new = new[0]
    new_mac = mac[first_new]
    res.update({"old_mac": old_mac, "new_mac": new_mac})
    lost = [s for s in range(first_after, first_new) if s not in recv]
    res["lost"] = len(lost)
    res["gaps"] = sum(1 for i, s in enumerate(lost) if i == 0 or lost[i - 1] != s - 1)
    res["lost_after_takeover"] = sum(1 for s in range(first_new, n - 100) if s not in recv)
    # The service came back between the echo sent just before the first one the
    # new master answered and that one.
    resolution = sent[first_new] - sent[first_new - 1]
    if lost:
        before = max(s for s in range(lost[0]) if s in recv)
        # It stopped after the last echo answered before the gap was sent, and not
        # before the event (the prober may have been descheduled just before it).
        start = max(sent[before], t_event)
        resolution += sent[lost[0]] - start
        res["outage_ms"] = ms(recv[first_new] - start)
        res["release_ms"] = ms(sent[lost[0]] - t_event)
    else:
        # The new master answered before the old one stopped: nothing lost.
        res["outage_ms"] = 0.0
        res["release_ms"] = None
    res["resolution_ms"] = ms(resolution)
    # The protocol timeline, as the client heard it.
    old_adv = [t for t, m, prio in p.adverts if m == old_mac and prio > 0 and t <= t_event]
    prio0 = [t for t, m, prio in p.adverts if m == old_mac and prio == 0 and t >= t_event]
    if event == "kill" and prio0:
        res["timer_ref"], ref = "priority_0", prio0[0]
    elif event == "cut" and old_adv:
        res["timer_ref"], ref = "last_advert", old_adv[-1]
    else:
        res["timer_ref"], ref = None, None
    if ref is not None:
        new_adv = [t for t, m, _ in p.adverts if m == new_mac and t >= ref]
        garp = [t for t, m in p.garps if m == new_mac and t >= ref]
        res["ref_to_advert_ms"] = ms(new_adv[0] - ref) if new_adv else None
        res["ref_to_garp_ms"] = ms(garp[0] - ref) if garp else None
        res["ref_to_reply_ms"] = ms(recv[first_new] - ref)
    return res


# Backup priority 100 (scripts/bench): Skew_Time = (256 - 100) / 256 x interval.
SKEW = 156 / 256
INTERVALS = {"1s": 1000.0, "100ms": 100.0, "10ms": 10.0}


def fmt_stats(vals, digits=1):
    if not vals:
        return "n/a", "n/a"
    f = f"{{:.{digits}f}}"
    return f.format(statistics.median(vals)), f"{f.format(min(vals))}–{f.format(max(vals))}"


def report(a):
    """The tables of `scripts/bench failover` from its raw measurements."""
    rows = {}
    for line in open(a.raw):
        m = json.loads(line)
        key = (m["event"], m["interval"])
        rows.setdefault(key, {"hafront": [], "keepalived": [], "discarded": 0, "failed": 0})
        r = m.get("result") or {}
        if m.get("accepted"):
            rows[key][m["daemon"]].append(r)
        elif r.get("outage_ms") is not None:
            rows[key]["discarded"] += 1
        else:
            rows[key]["failed"] += 1
    order = [(e, i) for e in ("cut", "term") for i in INTERVALS]
    label = lambda e, i: f"port cut, advert {i}" if e == "cut" else f"SIGTERM of master, advert {i}"  # noqa: E731

    def theory(e, i):
        iv = INTERVALS[i]
        if e == "cut":
            mdi = 3 * iv + SKEW * iv
            phases = [r.get("after_advert_ms") for d in ("hafront", "keepalived") for r in rows[(e, i)][d]]
            if phases and all(p is not None for p in phases):
                p = statistics.median(phases)
                return f"{mdi - p:.1f} (cut {p:.1f} ms after an advert)", mdi
            return f"{mdi - iv:.1f}–{mdi:.1f} (mid {mdi - iv / 2:.1f})", mdi
        return f"{SKEW * iv:.1f}", SKEW * iv

    print("Client-visible outage (ms): from the cut or the SIGTERM to the first echo reply from")
    print("the new master (1 ms probe).\n")
    print("| case | theory | hafront median | hafront min–max | keepalived median | keepalived min–max | runs each |")
    print("|---|---|---|---|---|---|---|")
    for key in order:
        if key not in rows:
            continue
        row, (th, _) = rows[key], theory(*key)
        h = fmt_stats([r["outage_ms"] for r in row["hafront"]])
        k = fmt_stats([r["outage_ms"] for r in row["keepalived"]])
        n = f"{len(row['hafront'])} / {len(row['keepalived'])}"
        print(f"| {label(*key)} | {th} | {h[0]} | {h[1]} | {k[0]} | {k[1]} | {n} |")
    print("\nTakeover, free of the phase of the cut (ms after the protocol timer, median (min–max)):")
    print("the timer is Master_Down_Interval after the old master's last advert before a cut, Skew_Time")
    print("after its priority-0 advert; then come the new master's first advert, its first gratuitous")
    print("ARP and the first echo reply (which also waits for the next 1 ms probe), as the client")
    print("heard them.\n")
    print("| case | timer | daemon | first advert | gratuitous ARP | first reply |")
    print("|---|---|---|---|---|---|")
    for key in order:
        if key not in rows:
            continue
        _, timer = theory(*key)
        for d in ("hafront", "keepalived"):
            rs = [r for r in rows[key][d] if r.get("timer_ref")]
            cells = []
            for f in ("ref_to_advert_ms", "ref_to_garp_ms", "ref_to_reply_ms"):
                v = [r[f] - timer for r in rs if r.get(f) is not None]
                med, rng = fmt_stats(v, 2)
                cells.append(f"+{med} ({rng})")
            print(f"| {label(*key)} | {timer:.1f} | {d} | {' | '.join(cells)} |")
    print("\nEvery run (outage, ms):\n")
    print("| case | daemon | runs |")
    print("|---|---|---|")
    for key in order:
        if key not in rows:
            continue
        for d in ("hafront", "keepalived"):
            print(f"| {label(*key)} | {d} | {' '.join(str(r['outage_ms']) for r in rows[key][d])} |")
    notes = [f"{label(*k)}: {v['discarded']} discarded (resolution > 5 ms), {v['failed']} failed"
             for k, v in rows.items() if v["discarded"] or v["failed"]]
    if notes:
        print("\nRepeated measurements: " + "; ".join(notes) + ".")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--client-ns", required=True)
    r.add_argument("--target", required=True)
    r.add_argument("--iface", default="eth0", help="client interface (replies are read there)")
    r.add_argument("--interval-ms", type=float, default=1.0)
    r.add_argument("--event", choices=["cut", "kill"], required=True)
    r.add_argument("--switch-ns")
    r.add_argument("--port")
    r.add_argument("--pid", type=int)
    r.add_argument("--delay", type=float, default=0.2, help="seconds of steady replies before the event")
    r.add_argument("--jitter", type=float, default=0.0, help="plus uniform 0..JITTER seconds")
    r.add_argument("--after-advert-ms", type=float, default=None,
                   help="fire this long after the next advert of the master instead of at a random phase")
    r.add_argument("--ready-timeout", type=float, default=10.0)
    r.add_argument("--max-wait", type=float, default=15.0)
    r.add_argument("--tail", type=float, default=0.1)
    rp = sub.add_parser("report")
    rp.add_argument("raw")
    md = sub.add_parser("median")
    md.add_argument("values", nargs="+", type=float)
    a = ap.parse_args()
    if a.cmd == "run":
        if a.event == "cut" and not (a.switch_ns and a.port):
            ap.error("--event cut needs --switch-ns and --port")
        if a.event == "kill" and not a.pid:
            ap.error("--event kill needs --pid")
        sys.exit(run(a))
    elif a.cmd == "report":
        report(a)
    else:
        print(f"{statistics.median(a.values):.1f}")


if __name__ == "__main__":
    main()
