//! The out-of-band split-brain probe: an ARP probe (RFC 5227 §2.1.1: sender IP
//! 0.0.0.0, so no neighbour cache is changed) for a VIP; whoever holds the VIP
//! answers. Replies and announcements for the VIP from another MAC are collected.

use std::io;
use std::net::Ipv4Addr;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::net::announce::{arp_link_addr, garp_packet};
use crate::net::Iface;

const ETH_P_ARP: u16 = 0x0806;

/// The probe: who-has `vip`, from `mac` with sender IP 0.
pub fn probe_packet(mac: [u8; 6], vip: Ipv4Addr) -> [u8; 28] {
    let mut p = garp_packet(mac, vip);
    p[14..18].fill(0);
    p
}

/// The MAC of an ARP packet (reply or announcement) that claims `vip` from a
/// MAC other than `ours`.
pub fn foreign_holder(pkt: &[u8], vip: Ipv4Addr, ours: [u8; 6]) -> Option<[u8; 6]> {
    if pkt.len() < 28 || pkt[0..2] != [0, 1] || pkt[2..4] != [8, 0] || pkt[4] != 6 || pkt[5] != 4 {
        return None;
    }
    let sha: [u8; 6] = pkt[8..14].try_into().ok()?;
    let spa = Ipv4Addr::new(pkt[14], pkt[15], pkt[16], pkt[17]);
    (spa == vip && sha != ours).then_some(sha)
}

/// Sends one probe on `iface` and listens `wait` for a foreign holder.
pub async fn probe(iface: &Iface, vip: Ipv4Addr, wait: Duration) -> io::Result<Option<[u8; 6]>> {
    let s = Socket::new(
        Domain::PACKET,
        Type::DGRAM,
        Some(Protocol::from(i32::from(ETH_P_ARP.to_be()))),
    )?;
    s.bind(&arp_link_addr(iface.index, [0; 6]))?;
    s.set_nonblocking(true)?;
    s.send_to(
        &probe_packet(iface.mac, vip),
        &arp_link_addr(iface.index, [0xff; 6]),
    )?;
    super::first_foreign_holder(s, wait, |pkt| foreign_holder(pkt, vip, iface.mac)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_layout_and_reply_parsing() {
        let vip = Ipv4Addr::new(192, 0, 2, 100);
        let ours = [2, 0, 0, 0, 0, 1];
        let p = probe_packet(ours, vip);
        // RFC 5227 probe: sender IP zero, target IP the VIP, request.
        assert_eq!(&p[6..8], &[0, 1]);
        assert_eq!(&p[14..18], &[0, 0, 0, 0]);
        assert_eq!(&p[24..28], &[192, 0, 2, 100]);
        // Our own probe is not a holder; a reply from another MAC is.
        assert_eq!(foreign_holder(&p, vip, ours), None);
        let mut reply = p;
        reply[7] = 2;
        reply[8..14].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        reply[14..18].copy_from_slice(&vip.octets());
        assert_eq!(foreign_holder(&reply, vip, ours), Some([2, 0, 0, 0, 0, 2]));
        assert_eq!(foreign_holder(&reply, Ipv4Addr::new(192, 0, 2, 101), ours), None);
        assert_eq!(foreign_holder(&reply[..20], vip, ours), None);
    }
}
