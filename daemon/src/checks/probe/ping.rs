//! ping: one ICMP / ICMPv6 echo request, success on the matching reply. Uses an
//! unprivileged ICMP datagram socket when `net.ipv4.ping_group_range` allows it,
//! a raw socket (root / CAP_NET_RAW) otherwise. The socket is connected to the
//! target, so the kernel only hands it the target's packets.

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::ProbeError;
use crate::checks::spec::Bind;

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in data.chunks(2) {
        let word = if pair.len() == 2 {
            u16::from_be_bytes([pair[0], pair[1]])
        } else {
            u16::from_be_bytes([pair[0], 0])
        };
        sum += word as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request. ICMPv4 carries its checksum; for ICMPv6 the kernel computes it
/// (it covers a pseudo-header with addresses only the kernel knows for sure).
pub fn echo_request(v6: bool, id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + data.len());
    p.push(if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 });
    p.push(0);
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(data);
    if !v6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// An echo reply's identifier, sequence number and data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EchoReply<'a> {
    pub id: u16,
    pub seq: u16,
    pub data: &'a [u8],
}

/// Parses what an ICMP socket received: with `ip_header` (raw IPv4 sockets) the
/// IPv4 header comes first. Anything but an echo reply is `None`.
pub fn parse_echo_reply(v6: bool, ip_header: bool, pkt: &[u8]) -> Option<EchoReply<'_>> {
    let icmp = if ip_header {
        let ihl = (*pkt.first()? & 0x0F) as usize * 4;
        pkt.get(ihl..)?
    } else {
        pkt
    };
    if icmp.len() < 8 || icmp[1] != 0 {
        return None;
    }
    let want = if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
    if icmp[0] != want {
        return None;
    }
    Some(EchoReply {
        id: u16::from_be_bytes([icmp[4], icmp[5]]),
        seq: u16::from_be_bytes([icmp[6], icmp[7]]),
        data: &icmp[8..],
    })
}

fn open(v6: bool) -> Result<(Socket, bool), ProbeError> {
    let (domain, proto) = if v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    match Socket::new(domain, Type::DGRAM, Some(proto)) {
        Ok(s) => Ok((s, false)),
        Err(_) => match Socket::new(domain, Type::RAW, Some(proto)) {
            Ok(s) => Ok((s, true)),
            Err(e) => Err(ProbeError::Io {
                stage: "socket",
                message: format!(
                    "{e} (ICMP needs net.ipv4.ping_group_range to include this process's group, or CAP_NET_RAW)"
                ),
            }),
        },
    }
}

pub(super) async fn probe(target: IpAddr, bind: &Bind) -> Result<(), ProbeError> {
    let v6 = target.is_ipv6();
    let (sock, raw) = open(v6)?;
    let setup = |e: io::Error| ProbeError::io("socket", e);
    sock.set_nonblocking(true).map_err(setup)?;
    if let Some(i) = &bind.interface {
        sock.bind_device(Some(i.as_bytes()))
            .map_err(|e| ProbeError::io("bind", e))?;
    }
    if let Some(a) = bind.address {
        sock.bind(&SocketAddr::new(a, 0).into())
            .map_err(|e| ProbeError::io("bind", e))?;
    }
    sock.connect(&SocketAddr::new(target, 0).into())
        .map_err(|e| ProbeError::io("connect", e))?;
    let id = fastrand::u16(..);
    let seq = fastrand::u16(..);
    let mut data = *b"hafront-........";
    data[8..].copy_from_slice(&fastrand::u64(..).to_be_bytes());
    let request = echo_request(v6, id, seq, &data);
    // SAFETY: the socket is owned by the AsyncFd and outlives its registration.
    let fd = unsafe { AsyncFd::register(sock) }.map_err(|e| setup(e.into()))?;
    loop {
        let mut guard = fd.writable().await.map_err(setup)?;
        match guard.try_io(|s| s.get_ref().send(&request)) {
            Ok(r) => {
                r.map_err(|e| ProbeError::io("send", e))?;
                break;
            }
            Err(_would_block) => continue,
        }
    }
    let mut buf = [0u8; 2048];
    loop {
        let mut guard = fd.readable().await.map_err(setup)?;
        let n = match guard.try_io(|s| s.get_ref().read(&mut buf)) {
            Ok(r) => r.map_err(|e| ProbeError::io("receive", e))?,
            Err(_would_block) => continue,
        };
        let Some(reply) = parse_echo_reply(v6, raw && !v6, &buf[..n]) else {
            continue;
        };
        // A datagram socket's identifier is chosen by the kernel (and filtered by it).
        if (raw && reply.id != id) || reply.seq != seq || reply.data != data {
            continue;
        }
        return Ok(());
    }
}
