#!/usr/bin/env python3
"""Client-visible outage measurement for the namespace lab (root only).

run:     outage.py run --client-ns NS --target IP --event cut --switch-ns NS --port pa
         outage.py run --client-ns NS --target IP --event kill --pid PID
         Sends one ICMP echo every --interval-ms (default 1 ms) from the client
         namespace, waits until the target answers steadily, waits --delay plus a
         random 0..--jitter seconds (so the failure falls anywhere in the advert
         period), then triggers the failure itself and keeps probing until the
         target answers again. Prints one JSON object (see below).
timeline: outage.py timeline --capture TCPDUMP_TEXT --event-ts T --old IP --new IP
         --mdi-ms M --skew-ms S   (scripts/bench with BENCH_CAPTURE=1)
median:  outage.py median V...
stats:   outage.py stats V...     median min max n

The failure is triggered from this process so that its timestamp is exact: a port
cut is one RTM_NEWLINK (IFF_UP cleared) on a netlink socket opened in the switch
namespace, a graceful stop is kill(PID, SIGTERM). Timestamps are CLOCK_REALTIME
(comparable with `tcpdump -tt`); reply times are the kernel's receive timestamps
(SO_TIMESTAMPNS), so the prober's own scheduling does not blur them.

Output fields (times in ms):
  outage_ms     reply time of the first echo answered by the new master minus the
                send time of the last echo answered before the gap: the client-visible
                outage, at most one probe interval (+ RTT) above the true one; 0 when
                no echo was lost (the new master answered before the old one stopped).
  from_event_ms the same reply time minus the event.
  takeover_ms   first reply from another MAC address minus the event.
  release_ms    send time of the first lost echo minus the event: how long the old
                master kept answering (0-1 ms for a cut).
  lost, gaps    echoes lost between the event and the takeover, and in how many
                separate runs (1 expected); lost_after_takeover (0 expected).
  resolution_ms the width of the interval the true outage lies in (below outage_ms):
                about one or two probe intervals; more means the prober was
                descheduled at the start or the end of the outage.
"""
import argparse
import ctypes
import json
import os
import random
import re
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
ETH_P_IP = 0x0800
PACKET_HOST = 0

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
        self.ifindex = socket.if_nametoindex(port)
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.msg = self._msg(up=False, seq=1)

    def _msg(self, up, seq):
        body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, self.ifindex, IFF_UP if up else 0, IFF_UP)
        return struct.pack("=IHHII", 16 + len(body), RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body

    def fire(self):
        self.sock.send(self.msg)

    def ack(self):
        data = self.sock.recv(4096)
        length, mtype = struct.unpack_from("=IH", data)
        if mtype == NLMSG_ERROR:
            (err,) = struct.unpack_from("=i", data, 16)
            if err != 0:
                raise OSError(-err, f"RTM_NEWLINK: {os.strerror(-err)}")


class Prober:
    """Echo requests from a raw ICMP socket; replies read from a packet socket on
    the client's interface, so each one comes with the MAC address of the node that
    answered (which tells the old master from the new one)."""

    def __init__(self, target, interval_s, iface):
        self.target = target
        self.interval = interval_s
        self.ident = os.getpid() & 0xFFFF
        self.tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        # The sending socket itself receives nothing (ICMP_FILTER: every type out).
        self.tx.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", 0xFFFFFFFF))
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
        self.sock.bind((iface, ETH_P_IP))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setblocking(False)
        self.sent = []  # send time (realtime, s) by sequence number
        self.recv = {}  # sequence number -> kernel receive time (s)
        self.mac = {}  # sequence number -> MAC address of the answering node
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
            if addr[2] != PACKET_HOST:
                continue  # our own echo requests going out
            ts = None
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("=qq", cdata[:16])
                    ts = sec + nsec / 1e9
            if len(data) < 20 or data[9] != socket.IPPROTO_ICMP:
                continue
            ihl = (data[0] & 0x0F) * 4
            icmp = data[ihl:]
            if len(icmp) < 12 or icmp[0] != 0:
                continue
            (ident,) = struct.unpack("!H", icmp[4:6])
            (seq,) = struct.unpack("!I", icmp[8:12])
            if ident == self.ident and seq < len(self.sent) and seq not in self.recv:
                self.recv[seq] = ts if ts is not None else time.time()
                self.mac[seq] = addr[4].hex(":")

    def step(self, until=None):
        """Sends when due, receives until the next send (or `until`, monotonic)."""
        now = time.monotonic()
        if now >= self.next:
            self.send()
            # Fixed rate; after a stall, do not send a burst to catch up.
            self.next = max(self.next + self.interval, now)
        deadline = self.next if until is None else min(self.next, until)
        timeout = max(0.0, deadline - time.monotonic())
        if select.select([self.sock], [], [], timeout)[0]:
            self.drain()

    def run_for(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.step(end)


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
    # 2. Random phase with respect to the advert timer.
    prober.run_for(a.delay + random.uniform(0, a.jitter))
    prober.drain()
    first_after = len(prober.sent)
    old_mac = prober.mac[max(prober.recv)]
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
    return report(prober, first_after, old_mac, t_event, t_done, a.interval_ms)


def report(p, first_after, old_mac, t_event, t_done, interval_ms):
    sent, recv, mac = p.sent, p.recv, p.mac
    n = len(sent)
    res = {"event_ts": round(t_event, 6), "event_call_ms": round((t_done - t_event) * 1000, 3),
           "interval_ms": interval_ms, "sent": n}
    new = [s for s in range(first_after, n) if mac.get(s, old_mac) != old_mac]
    if not new:
        res["error"] = "no other node answered after the event"
        print(json.dumps(res))
        return 1
    first_new = new[0]
    res["new_mac"], res["old_mac"] = mac[first_new], old_mac
    res["takeover_ms"] = round((recv[first_new] - t_event) * 1000, 2)
    lost = [s for s in range(first_after, first_new) if s not in recv]
    res["lost"] = len(lost)
    res["gaps"] = sum(1 for i, s in enumerate(lost) if i == 0 or lost[i - 1] != s - 1)
    res["lost_after_takeover"] = sum(1 for s in range(first_new, n - 100) if s not in recv)
    # How sharp the result is: the service came back between the echo sent just
    # before the first one the new master answered and that one (one probe interval,
    # unless the prober was descheduled right then).
    res["resolution_ms"] = round((sent[first_new] - sent[first_new - 1]) * 1000, 2)
    if not lost:
        # The new master answered before the old one stopped: no echo lost.
        res.update({"outage_ms": 0.0, "from_event_ms": 0.0, "release_ms": None})
        print(json.dumps(res))
        return 0
    before = max(s for s in range(lost[0]) if s in recv)
    # The service stopped after the last echo answered before the gap was sent, and
    # not before the event (the prober may have been descheduled just before it).
    start = max(sent[before], t_event)
    # ... plus, at the start, the time between that echo and the first lost one.
    res["resolution_ms"] = round(res["resolution_ms"] + (sent[lost[0]] - start) * 1000, 2)
    res.update({
        "outage_ms": round((recv[first_new] - start) * 1000, 2),
        "from_event_ms": round((recv[first_new] - t_event) * 1000, 2),
        "release_ms": round((sent[lost[0]] - t_event) * 1000, 2),
        "last_ok_sent": round(sent[before], 6),
        "first_new_sent": round(sent[first_new], 6),
        "first_new_reply": round(recv[first_new], 6),
    })
    print(json.dumps(res))
    return 0


CAP = re.compile(r"^(\d+\.\d+) ([0-9a-f:]{17}) > ([0-9a-f:]{17}), ethertype (\S+) .*?: (.*)$")
VRRP = re.compile(r"^(\S+) > \S+: VRRPv\d, Advertisement, vrid \d+, prio (\d+)")
GARP = re.compile(r"^Request who-has (\S+)(?: \([0-9a-f:]+\))? tell (\S+),")
REPLY = re.compile(r"^(\S+) > \S+: ICMP echo reply")


def timeline(a):
    """Protocol events around the failure, from `tcpdump -l -n -e -tt` output taken
    on the new master's switch port: when the old master was last heard, when the
    new one sent its first advert, its first gratuitous ARP, its first echo reply."""
    last_old = prio0 = first_adv = first_garp = first_reply = None
    with open(a.capture) as f:
        for line in f:
            m = CAP.match(line.strip())
            if not m:
                continue
            t, rest = float(m.group(1)), m.group(5)
            v = VRRP.match(rest)
            if v:
                src, prio = v.group(1), int(v.group(2))
                if src == a.old and prio > 0 and t <= a.event_ts:
                    last_old = t
                elif src == a.old and prio == 0 and t >= a.event_ts and prio0 is None:
                    prio0 = t
                elif src == a.new and t >= a.event_ts and first_adv is None:
                    first_adv = t
                continue
            g = GARP.match(rest)
            if g and g.group(1) == g.group(2) and t >= a.event_ts and first_garp is None:
                first_garp = t
                continue
            r = REPLY.match(rest)
            if r and t >= a.event_ts and first_reply is None and first_garp is not None:
                first_reply = t
    ms = lambda x, y: None if x is None or y is None else round((x - y) * 1000, 3)  # noqa: E731
    # The backup's timer was (re)started by the last advert heard: Master_Down_Interval
    # after it, or Skew_Time after the priority-0 advert.
    start, timer = (prio0, a.skew_ms) if prio0 is not None else (last_old, a.mdi_ms)
    print(json.dumps({
        "timer_start_from_event_ms": ms(start, a.event_ts),
        "timer_ms": timer,
        "advert_late_ms": None if start is None or first_adv is None else round(ms(first_adv, start) - timer, 3),
        "garp_after_advert_ms": ms(first_garp, first_adv),
        "reply_after_garp_ms": ms(first_reply, first_garp),
    }))


def stats(values):
    return (statistics.median(values), min(values), max(values), len(values))


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
    r.add_argument("--ready-timeout", type=float, default=10.0)
    r.add_argument("--max-wait", type=float, default=15.0)
    r.add_argument("--tail", type=float, default=0.1)
    tl = sub.add_parser("timeline")
    tl.add_argument("--capture", required=True)
    tl.add_argument("--event-ts", type=float, required=True)
    tl.add_argument("--old", required=True)
    tl.add_argument("--new", required=True)
    tl.add_argument("--mdi-ms", type=float, required=True)
    tl.add_argument("--skew-ms", type=float, required=True)
    md = sub.add_parser("median")
    md.add_argument("values", nargs="+", type=float)
    st = sub.add_parser("stats")
    st.add_argument("values", nargs="+", type=float)
    a = ap.parse_args()
    if a.cmd == "run":
        if a.event == "cut" and not (a.switch_ns and a.port):
            ap.error("--event cut needs --switch-ns and --port")
        if a.event == "kill" and not a.pid:
            ap.error("--event kill needs --pid")
        sys.exit(run(a))
    elif a.cmd == "timeline":
        timeline(a)
    elif a.cmd == "median":
        print(f"{statistics.median(a.values):.1f}")
    else:
        print("%.1f %.1f %.1f %d" % stats(a.values))


if __name__ == "__main__":
    main()
