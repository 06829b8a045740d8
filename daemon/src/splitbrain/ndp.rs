//! The out-of-band split-brain probe for IPv6 VIPs: a Neighbor Solicitation for
//! the VIP (RFC 4861 §7.2.2), sent from this node's link-local address to the VIP's
//! solicited-node multicast group. Every node that holds the VIP answers with a
//! solicited Neighbor Advertisement carrying its link-layer address (§7.2.4: the
//! option is included because the solicitation was multicast); an answer from
//! another MAC means another node holds the VIP too.
//!
//! Not a DAD probe (source `::`): that one would make a peer whose VIP is still
//! tentative give the address up (RFC 4862 §5.4.3), which would turn a probe into
//! an outage.
//!
//! Neighbor Solicitation sent (hop limit 255, checksum by the kernel):
//! ```text
//!  type=135 | code=0 | checksum | reserved (32 bits)
//!  target address = VIP (128 bits)
//!  option 1 (source link-layer address) | len=1 | interface MAC
//! ```
//! Neighbor Advertisement looked for (RFC 4861 §4.4):
//! ```text
//!  type=136 | code=0 | checksum | R S O flags | reserved
//!  target address = VIP (128 bits)
//!  option 2 (target link-layer address) | len=1 | the holder's MAC
//! ```

use std::io;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::net::Iface;

const NEIGHBOR_SOLICITATION: u8 = 135;
const NEIGHBOR_ADVERTISEMENT: u8 = 136;
const OPT_SOURCE_LLADDR: u8 = 1;
const OPT_TARGET_LLADDR: u8 = 2;

/// The solicitation for `vip` from `mac`.
pub fn solicitation(mac: [u8; 6], vip: Ipv6Addr) -> [u8; 32] {
    let mut p = [0u8; 32];
    p[0] = NEIGHBOR_SOLICITATION;
    p[8..24].copy_from_slice(&vip.octets());
    p[24] = OPT_SOURCE_LLADDR;
    p[25] = 1;
    p[26..32].copy_from_slice(&mac);
    p
}

/// The solicited-node multicast group of `addr` (RFC 4291 §2.7.1): ff02::1:ff00:0/104
/// plus its low 24 bits.
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The MAC of a Neighbor Advertisement for `vip` whose target link-layer address
/// is not `ours`. An advertisement without that option names no one: `None`.
pub fn foreign_holder(pkt: &[u8], vip: Ipv6Addr, ours: [u8; 6]) -> Option<[u8; 6]> {
    if pkt.len() < 24 || pkt[0] != NEIGHBOR_ADVERTISEMENT || pkt[1] != 0 || pkt[8..24] != vip.octets() {
        return None;
    }
    // Options: type, length in units of 8 octets (0 is invalid, §4.6), value.
    let mut opts = &pkt[24..];
    while opts.len() >= 8 {
        let len = usize::from(opts[1]) * 8;
        if len == 0 || len > opts.len() {
            return None;
        }
        if opts[0] == OPT_TARGET_LLADDR && len == 8 {
            let mac: [u8; 6] = opts[2..8].try_into().ok()?;
            return (mac != ours).then_some(mac);
        }
        opts = &opts[len..];
    }
    None
}

/// Sends one solicitation on `iface` and listens `wait` for a foreign holder.
pub async fn probe(iface: &Iface, vip: Ipv6Addr, wait: Duration) -> io::Result<Option<[u8; 6]>> {
    let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    s.bind_device(Some(iface.name.as_bytes()))?;
    // RFC 4861 §7.1.2: a node drops neighbor discovery messages whose hop limit
    // is not 255.
    s.set_multicast_hops_v6(255)?;
    s.set_unicast_hops_v6(255)?;
    s.set_multicast_if_v6(iface.index)?;
    // Our own solicitation must not come back to our own stack.
    s.set_multicast_loop_v6(false)?;
    s.set_nonblocking(true)?;
    let dst = SockAddr::from(SocketAddrV6::new(solicited_node(vip), 0, 0, iface.index));
    s.send_to(&solicitation(iface.mac, vip), &dst)?;
    super::first_foreign_holder(s, wait, |pkt| foreign_holder(pkt, vip, iface.mac)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
    const OURS: [u8; 6] = [2, 0, 0, 0, 0, 1];

    #[test]
    fn solicitation_layout_and_group() {
        let p = solicitation(OURS, VIP);
        assert_eq!(p[0], 135);
        assert_eq!(&p[8..24], &VIP.octets());
        assert_eq!(&p[24..26], &[1, 1]);
        assert_eq!(&p[26..32], &OURS);
        assert_eq!(
            solicited_node(VIP),
            "ff02::1:ff00:100".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            solicited_node("2001:db8::12:3456".parse().unwrap()),
            "ff02::1:ff12:3456".parse::<Ipv6Addr>().unwrap()
        );
    }

    /// A solicited advertisement as Linux sends it (flags S|O, target link-layer
    /// address option), the checksum as the kernel leaves it to the receiver.
    fn advert(mac: [u8; 6]) -> Vec<u8> {
        let mut p = vec![136, 0, 0x12, 0x34, 0x60, 0, 0, 0];
        p.extend_from_slice(&VIP.octets());
        p.extend_from_slice(&[2, 1]);
        p.extend_from_slice(&mac);
        p
    }

    #[test]
    fn advertisement_from_another_mac_is_a_holder() {
        let theirs = [2, 0, 0, 0, 0, 2];
        assert_eq!(foreign_holder(&advert(theirs), VIP, OURS), Some(theirs));
        assert_eq!(foreign_holder(&advert(OURS), VIP, OURS), None);
        // Another target, our own solicitation, a truncated option, a zero length.
        assert_eq!(
            foreign_holder(&advert(theirs), "2001:db8::101".parse().unwrap(), OURS),
            None
        );
        assert_eq!(foreign_holder(&solicitation(theirs, VIP), VIP, OURS), None);
        let a = advert(theirs);
        assert_eq!(foreign_holder(&a[..30], VIP, OURS), None);
        let mut zero = a.clone();
        zero[25] = 0;
        assert_eq!(foreign_holder(&zero, VIP, OURS), None);
        // No option: nobody is named.
        assert_eq!(foreign_holder(&a[..24], VIP, OURS), None);
        // A source link-layer option first, then the target's.
        let mut two = a[..24].to_vec();
        two.extend_from_slice(&[1, 1, 9, 9, 9, 9, 9, 9, 2, 1]);
        two.extend_from_slice(&theirs);
        assert_eq!(foreign_holder(&two, VIP, OURS), Some(theirs));
    }
}
