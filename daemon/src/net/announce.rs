//! Address announcements on becoming master: gratuitous ARP (RFC 5227 §3 "ARP
//! Announcement") for IPv4 VIPs and unsolicited Neighbor Advertisements (RFC 4861
//! §7.2.6) for IPv6 VIPs.
//!
//! ARP packet sent (RFC 826), inside an Ethernet broadcast frame built by the kernel:
//! ```text
//!  htype=1 | ptype=0x0800 | hlen=6 | plen=4 | oper=1 (request)
//!  sender hw = interface MAC | sender ip = VIP | target hw = 0 | target ip = VIP
//! ```
//! Neighbor Advertisement (RFC 4861 §4.4), to ff02::1 with hop limit 255:
//! ```text
//!  type=136 | code=0 | checksum (kernel) | R=0 S=0 O=1 | target = VIP
//!  option 2 (target link-layer address) | len=1 | interface MAC
//! ```

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};

use super::link::Iface;

const ETH_P_ARP: u16 = 0x0806;
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The ARP announcement for `vip` from `mac`.
pub fn garp_packet(mac: [u8; 6], vip: Ipv4Addr) -> [u8; 28] {
    let mut p = [0u8; 28];
    p[0..2].copy_from_slice(&1u16.to_be_bytes());
    p[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
    p[4] = 6;
    p[5] = 4;
    p[6..8].copy_from_slice(&1u16.to_be_bytes());
    p[8..14].copy_from_slice(&mac);
    p[14..18].copy_from_slice(&vip.octets());
    p[24..28].copy_from_slice(&vip.octets());
    p
}

/// The unsolicited NA for `vip` from `mac` (checksum left to the kernel).
pub fn na_packet(mac: [u8; 6], vip: Ipv6Addr) -> [u8; 32] {
    let mut p = [0u8; 32];
    p[0] = 136;
    p[4] = 0x20; // Override flag: replace cached link-layer addresses.
    p[8..24].copy_from_slice(&vip.octets());
    p[24] = 2;
    p[25] = 1;
    p[26..32].copy_from_slice(&mac);
    p
}

/// Sockets to announce addresses on one interface.
pub struct Announcer {
    iface: Iface,
    arp: Option<Socket>,
    icmp6: Option<Socket>,
}

impl Announcer {
    pub fn new(iface: Iface) -> Announcer {
        Announcer {
            iface,
            arp: None,
            icmp6: None,
        }
    }

    fn arp_socket(&mut self) -> io::Result<&Socket> {
        if self.arp.is_none() {
            let s = Socket::new(
                Domain::PACKET,
                Type::DGRAM,
                Some(Protocol::from(i32::from(ETH_P_ARP.to_be()))),
            )?;
            s.set_nonblocking(true)?;
            self.arp = Some(s);
        }
        Ok(self.arp.as_ref().expect("just set"))
    }

    fn icmp6_socket(&mut self) -> io::Result<&Socket> {
        if self.icmp6.is_none() {
            let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
            s.bind_device(Some(self.iface.name.as_bytes()))?;
            s.set_multicast_hops_v6(255)?;
            s.set_unicast_hops_v6(255)?;
            s.set_multicast_if_v6(self.iface.index)?;
            s.set_nonblocking(true)?;
            self.icmp6 = Some(s);
        }
        Ok(self.icmp6.as_ref().expect("just set"))
    }

    /// Sends `count` announcements for each address; returns how many were sent.
    pub fn announce(&mut self, vips: &[IpAddr], count: u32) -> io::Result<u32> {
        if vips.iter().all(IpAddr::is_ipv4) {
            return self.announce_v4(vips, count);
        }
        let mut sent = 0;
        for _ in 0..count {
            for vip in vips {
                match vip {
                    IpAddr::V4(v4) => {
                        let pkt = garp_packet(self.iface.mac, *v4);
                        let dst = link_broadcast(self.iface.index);
                        self.arp_socket()?.send_to(&pkt, &dst)?;
                    }
                    IpAddr::V6(v6) => {
                        let pkt = na_packet(self.iface.mac, *v6);
                        let dst = SockAddr::from(SocketAddrV6::new(ALL_NODES, 0, 0, self.iface.index));
                        self.icmp6_socket()?.send_to(&pkt, &dst)?;
                    }
                }
                sent += 1;
            }
        }
        Ok(sent)
    }
}

impl Announcer {
    /// [`Announcer::announce`] for IPv4 addresses: the gratuitous ARPs leave in
    /// one sendmmsg(2) per [`ARP_BATCH`] (the same packets, in the same order, as
    /// one sendto(2) each): the engine announces the VIPs of every advert due in a
    /// pass together (`garp.with_advert`, issue 19).
    fn announce_v4(&mut self, vips: &[IpAddr], count: u32) -> io::Result<u32> {
        // A few a wake is the usual (one per advert of staggered instances): room
        // zeroed for so many, not for 32 (3.4 KB of memset per wake, issue 19).
        match vips.len() * count as usize {
            0 => Ok(0),
            total if total <= ARP_SMALL_BATCH => self.announce_v4_by::<ARP_SMALL_BATCH>(vips, total),
            total => self.announce_v4_by::<ARP_BATCH>(vips, total),
        }
    }

    /// [`Announcer::announce_v4`] of `total` packets, `N` per sendmmsg(2) at most.
    fn announce_v4_by<const N: usize>(&mut self, vips: &[IpAddr], total: usize) -> io::Result<u32> {
        let mac = self.iface.mac;
        let dst = link_broadcast(self.iface.index);
        let fd = self.arp_socket()?.as_raw_fd();
        let mut pkts = [[0u8; 28]; N];
        // SAFETY (both zeroed arrays): plain C structs, for which all zeroes is valid.
        let mut iovs: [libc::iovec; N] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; N] = unsafe { std::mem::zeroed() };
        let mut sent = 0;
        while sent < total {
            let n = (total - sent).min(N);
            for i in 0..n {
                // Count rounds over the addresses, as the loop of `announce`.
                let IpAddr::V4(vip) = vips[(sent + i) % vips.len()] else {
                    continue;
                };
                pkts[i] = garp_packet(mac, vip);
                iovs[i] = libc::iovec {
                    iov_base: pkts[i].as_mut_ptr().cast(),
                    iov_len: pkts[i].len(),
                };
                let h = &mut hdrs[i].msg_hdr;
                h.msg_name = dst.as_ptr() as *mut libc::c_void;
                h.msg_namelen = dst.len();
                h.msg_iov = std::ptr::addr_of_mut!(iovs[i]);
                h.msg_iovlen = 1;
            }
            // SAFETY: `hdrs[..n]` point into `iovs`, `pkts` and `dst`, all alive for
            // the call; the kernel only reads them (and writes msg_len).
            let rc = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), n as _, libc::MSG_DONTWAIT) };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            if rc == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            sent += rc as usize;
        }
        Ok(sent as u32)
    }
}

/// Gratuitous ARPs per sendmmsg(2) call at most.
const ARP_BATCH: usize = 32;

/// Up to this many gratuitous ARPs, [`Announcer::announce_v4`] prepares room for only
/// so many.
const ARP_SMALL_BATCH: usize = 4;

/// Spacing of announcements on one interface (`vrrp.garp_interval`,
/// `vrrp.na_interval`; keepalived's `vrrp_garp_interval`, `vrrp_gna_interval`):
/// zero sends a burst at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spacing {
    pub arp: Duration,
    pub na: Duration,
}

impl Spacing {
    /// The spacing for announcements of `addr`'s family.
    pub fn of(&self, addr: &IpAddr) -> Duration {
        match addr {
            IpAddr::V4(_) => self.arp,
            IpAddr::V6(_) => self.na,
        }
    }
}

/// Announcements waiting in a [`Pacer`] at most (each an address with its
/// remaining count); more are dropped and counted.
pub const PACED_MAX: usize = 4096;

/// One announcement due now: send it on `iface`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    pub instance: String,
    pub iface: Iface,
    pub addr: IpAddr,
}

/// One address waiting in a lane, with the announcements left to send for it.
#[derive(Debug)]
struct Waiting {
    instance: String,
    iface: Iface,
    addr: IpAddr,
    left: u32,
    interval: Duration,
}

/// One interface and family: when the next packet may leave, and what waits.
#[derive(Debug, Default)]
struct Lane {
    next: Option<Instant>,
    waiting: VecDeque<Waiting>,
}

/// Spaced announcements, as keepalived spaces them (vrrp_arp.c, vrrp_ndisc.c):
/// per interface and family, a packet leaves at once when the interval since the
/// previous one has passed, otherwise its address is queued; queued addresses
/// take turns, one packet each, `interval` apart, until their count is sent. An
/// address asked for again while it waits gets the larger count (not a second
/// place). Pure: the caller brings the clock and sends what [`Pacer::due`] says.
#[derive(Debug, Default)]
pub struct Pacer {
    lanes: HashMap<(u32, bool), Lane>,
    len: usize,
    /// Announcements dropped because [`PACED_MAX`] were waiting.
    pub dropped: u64,
}

impl Pacer {
    /// Queues `count` announcements of `addr` on `iface`, `interval` apart (> 0).
    pub fn push(&mut self, instance: &str, iface: &Iface, addr: IpAddr, count: u32, interval: Duration) {
        if count == 0 {
            return;
        }
        let lane = self.lanes.entry((iface.index, addr.is_ipv6())).or_default();
        if let Some(w) = lane.waiting.iter_mut().find(|w| w.addr == addr) {
            w.left = w.left.max(count);
            w.interval = interval;
            w.instance = instance.to_string();
            return;
        }
        if self.len >= PACED_MAX {
            self.dropped += 1;
            return;
        }
        self.len += 1;
        lane.waiting.push_back(Waiting {
            instance: instance.to_string(),
            iface: iface.clone(),
            addr,
            left: count,
            interval,
        });
    }

    /// What may leave at `now`: at most one packet per lane whose interval has
    /// passed; the lane's next packet waits its interval from `now`.
    pub fn due(&mut self, now: Instant) -> Vec<Due> {
        let mut out = Vec::new();
        for lane in self.lanes.values_mut() {
            if lane.next.is_some_and(|t| now < t) {
                continue;
            }
            let Some(mut w) = lane.waiting.pop_front() else {
                continue;
            };
            lane.next = Some(now + w.interval);
            out.push(Due {
                instance: w.instance.clone(),
                iface: w.iface.clone(),
                addr: w.addr,
            });
            w.left -= 1;
            if w.left > 0 {
                lane.waiting.push_back(w);
            } else {
                self.len -= 1;
            }
        }
        // Lanes with nothing waiting and their interval passed are forgotten (an
        // interface that went away leaves nothing behind).
        self.lanes
            .retain(|_, l| !l.waiting.is_empty() || l.next.is_some_and(|t| now < t));
        out
    }

    /// When [`Pacer::due`] has something next, if anything waits.
    pub fn next_due(&self) -> Option<Instant> {
        self.lanes
            .values()
            .filter(|l| !l.waiting.is_empty())
            .map(|l| l.next.unwrap_or_else(Instant::now))
            .min()
    }

    /// Drops what waits for `instance`'s `addrs` (it left master or removed
    /// them); returns how many addresses were waiting.
    pub fn cancel(&mut self, instance: &str, addrs: &[IpAddr]) -> usize {
        let mut n = 0;
        for lane in self.lanes.values_mut() {
            lane.waiting.retain(|w| {
                let gone = w.instance == instance && addrs.contains(&w.addr);
                n += usize::from(gone);
                !gone
            });
        }
        self.len -= n;
        n
    }

    /// Addresses waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// `sockaddr_ll` for the Ethernet broadcast address on `ifindex`.
fn link_broadcast(ifindex: u32) -> SockAddr {
    arp_link_addr(ifindex, [0xff; 6])
}

/// `sockaddr_ll` for ARP on `ifindex` to `dst` (all zero to bind).
pub fn arp_link_addr(ifindex: u32, dst: [u8; 6]) -> SockAddr {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: sockaddr_ll fits in sockaddr_storage; all its fields are plain integers.
    unsafe {
        let ll = storage.view_as::<libc::sockaddr_ll>();
        ll.sll_family = libc::AF_PACKET as u16;
        ll.sll_protocol = ETH_P_ARP.to_be();
        ll.sll_ifindex = ifindex as i32;
        ll.sll_halen = 6;
        ll.sll_addr[..6].copy_from_slice(&dst);
        SockAddr::new(
            storage,
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garp_layout() {
        // RFC 5227 §3 announcement: sender and target IP both the VIP, target MAC zero.
        let want = "0001080006040001020000000001c0000264000000000000c0000264";
        let got: String = garp_packet([2, 0, 0, 0, 0, 1], Ipv4Addr::new(192, 0, 2, 100))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, want);
    }

    fn iface(index: u32) -> Iface {
        Iface {
            name: format!("veth{index}"),
            index,
            mac: [2, 0, 0, 0, 0, 1],
            up: true,
        }
    }

    /// Runs the pacer to its end from `t0`, stepping to each next deadline;
    /// returns (milliseconds since t0, address) of every packet.
    fn drain(p: &mut Pacer, t0: Instant) -> Vec<(u128, IpAddr)> {
        let mut out = Vec::new();
        let mut now = t0;
        for _ in 0..10_000 {
            for d in p.due(now) {
                out.push(((now - t0).as_millis(), d.addr));
            }
            match p.next_due() {
                Some(t) => now = now.max(t),
                None => break,
            }
        }
        out
    }

    /// 20 VIPs, a burst of 5, 50 ms apart: 100 packets, each 50 ms after the one
    /// before, the VIPs taking turns (as keepalived's queue does).
    #[test]
    fn a_burst_over_many_vips_is_spaced_per_interface() {
        let mut p = Pacer::default();
        let ms50 = Duration::from_millis(50);
        let vips: Vec<IpAddr> = (1..=20).map(|i| IpAddr::from([192, 0, 2, i])).collect();
        for v in &vips {
            p.push("web", &iface(3), *v, 5, ms50);
        }
        let t0 = Instant::now();
        let sent = drain(&mut p, t0);
        assert_eq!(sent.len(), 100);
        for (i, (ms, addr)) in sent.iter().enumerate() {
            assert_eq!(*ms, 50 * i as u128);
            assert_eq!(*addr, vips[i % 20]);
        }
        assert!(p.is_empty());
        assert_eq!(p.next_due(), None);
    }

    /// Two interfaces, and the two families on one interface, do not wait for
    /// each other.
    #[test]
    fn lanes_are_per_interface_and_family() {
        let mut p = Pacer::default();
        let s = Duration::from_millis(100);
        p.push("a", &iface(3), "192.0.2.1".parse().unwrap(), 2, s);
        p.push("a", &iface(3), "2001:db8::1".parse().unwrap(), 2, s);
        p.push("b", &iface(4), "192.0.2.2".parse().unwrap(), 2, s);
        let t0 = Instant::now();
        let sent = drain(&mut p, t0);
        let at: Vec<u128> = sent.iter().map(|(ms, _)| *ms).collect();
        assert_eq!(at, [0, 0, 0, 100, 100, 100]);
    }

    /// Leaving master cancels what waits for the instance's addresses, and only
    /// those: nothing of them leaves afterwards.
    #[test]
    fn cancel_drops_only_the_instance_addresses() {
        let mut p = Pacer::default();
        let s = Duration::from_millis(50);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        p.push("web", &iface(3), a, 5, s);
        p.push("db", &iface(3), b, 5, s);
        let t0 = Instant::now();
        // web's first packet left; 4 of web's and db's 5 wait.
        assert_eq!(p.due(t0).len(), 1);
        assert_eq!(p.cancel("web", &[a]), 1);
        assert_eq!(p.cancel("web", &[a]), 0);
        let rest = drain(&mut p, t0 + s);
        assert!(rest.iter().all(|(_, x)| *x == b), "{rest:?}");
        assert_eq!(rest.len(), 5);
        assert!(p.is_empty());
    }

    /// An address asked for again while it waits keeps one place, with the larger
    /// count; past PACED_MAX addresses, more are dropped and counted.
    #[test]
    fn waiting_is_coalesced_and_bounded() {
        let mut p = Pacer::default();
        let s = Duration::from_millis(10);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        p.push("web", &iface(3), a, 2, s);
        p.push("web", &iface(3), a, 1, s);
        p.push("web", &iface(3), a, 3, s);
        assert_eq!(p.len(), 1);
        assert_eq!(drain(&mut p, Instant::now()).len(), 3);
        for i in 0..PACED_MAX as u32 + 10 {
            let v6 = Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i));
            p.push("web", &iface(3), IpAddr::V6(v6), 1, s);
        }
        assert_eq!(p.len(), PACED_MAX);
        assert_eq!(p.dropped, 10);
    }

    #[test]
    fn na_has_override_and_target_lladdr() {
        let p = na_packet([2, 0, 0, 0, 0, 1], "2001:db8::100".parse().unwrap());
        assert_eq!(p[0], 136);
        assert_eq!(p[4], 0x20);
        assert_eq!(&p[24..26], &[2, 1]);
        assert_eq!(&p[26..], &[2, 0, 0, 0, 0, 1]);
    }
}
