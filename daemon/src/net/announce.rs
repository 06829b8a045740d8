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

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV6};

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

    #[test]
    fn na_has_override_and_target_lladdr() {
        let p = na_packet([2, 0, 0, 0, 0, 1], "2001:db8::100".parse().unwrap());
        assert_eq!(p[0], 136);
        assert_eq!(p[4], 0x20);
        assert_eq!(&p[24..26], &[2, 1]);
        assert_eq!(&p[26..], &[2, 0, 0, 0, 0, 1]);
    }
}
