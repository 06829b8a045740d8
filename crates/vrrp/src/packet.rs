//! VRRP advertisement codec, versions 2 (RFC 3768 §5) and 3 (RFC 5798 §5).
//!
//! Pure functions over byte slices: no sockets. The IP header is not part of the
//! payload handled here; the caller passes source/destination addresses because the
//! VRRPv3 checksum covers an IP pseudo-header (RFC 5798 §5.2.8).
//!
//! VRRPv2 (RFC 3768 §5.1):
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Auth Type   |   Adver Int   |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         IP Address (1)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                            .                                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         IP Address (n)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Authentication Data (1)                   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Authentication Data (2)                   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! VRRPv3 (RFC 5798 §5.1), after the IPv4 or IPv6 header:
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |(rsvd) |     Max Adver Int     |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                       IPvX Address(es)                        +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::error::DecodeError;

/// IP protocol number of VRRP (RFC 5798 §5.1.1.4).
pub const IPPROTO_VRRP: u8 = 112;
/// IPv4 multicast group of VRRP (RFC 5798 §5.1.1.2).
pub const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group of VRRP (RFC 5798 §5.1.2.2).
pub const MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// Only defined type: ADVERTISEMENT (RFC 5798 §5.2.2).
const TYPE_ADVERTISEMENT: u8 = 1;
const HEADER_LEN: usize = 8;
const V2_AUTH_LEN: usize = 8;
/// Max Adver Int is a 12-bit field of centiseconds (RFC 5798 §5.2.7).
pub const V3_MAX_INTERVAL_CS: u16 = 0x0fff;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum Version {
    V2,
    V3,
}

impl From<Version> for u8 {
    fn from(v: Version) -> u8 {
        match v {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

impl TryFrom<u8> for Version {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        match v {
            2 => Ok(Version::V2),
            3 => Ok(Version::V3),
            other => Err(format!("VRRP version {other} is not 2 or 3")),
        }
    }
}

/// VRRPv2 authentication (RFC 3768 §5.3.6). RFC 5798 removed authentication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    None,
    /// Simple text password, zero padded to 8 octets.
    Pass(String),
    /// IP Authentication Header (type 2) or an unknown type: carried, never accepted.
    Other {
        auth_type: u8,
    },
}

impl Auth {
    fn auth_type(&self) -> u8 {
        match self {
            Auth::None => 0,
            Auth::Pass(_) => 1,
            Auth::Other { auth_type } => *auth_type,
        }
    }
}

/// A decoded advertisement. `interval_cs` is in centiseconds for both versions
/// (a v2 "Adver Int" of 1 second decodes to 100).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advert {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    pub interval_cs: u16,
    pub addresses: Vec<IpAddr>,
    #[serde(default = "auth_none", skip_serializing_if = "is_auth_none")]
    pub auth: Auth,
}

fn auth_none() -> Auth {
    Auth::None
}
fn is_auth_none(a: &Auth) -> bool {
    *a == Auth::None
}

/// How the VRRPv3-over-IPv4 checksum is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChecksumMode {
    /// RFC 5798 §5.2.8: pseudo-header + VRRP message.
    #[default]
    Rfc,
    /// VRRP message only, as in VRRPv2; accepted on receive besides the RFC form,
    /// and used on send (for peers that predate the pseudo-header rule).
    V2Compatible,
}

/// Addresses the checksum depends on: the IP source and destination of the packet.
#[derive(Clone, Copy, Debug)]
pub struct PacketAddrs {
    pub src: IpAddr,
    pub dst: IpAddr,
}

impl Advert {
    fn address_len(&self) -> usize {
        match self.addresses.first() {
            Some(IpAddr::V6(_)) => 16,
            _ => 4,
        }
    }

    /// Encoded length of the VRRP message.
    pub fn wire_len(&self) -> usize {
        let body = HEADER_LEN + self.addresses.len() * self.address_len();
        match self.version {
            Version::V2 => body + V2_AUTH_LEN,
            Version::V3 => body,
        }
    }

    /// Encodes the advertisement with its checksum.
    pub fn encode(&self, addrs: PacketAddrs, mode: ChecksumMode) -> Result<Vec<u8>, EncodeError> {
        let mut buf = Vec::with_capacity(self.wire_len());
        self.encode_into(addrs, mode, &mut buf)?;
        Ok(buf)
    }

    /// [`Advert::encode`] into `buf` (cleared first), whose capacity a sender reuses
    /// from one advert to the next. On an error `buf` holds nothing useful.
    pub fn encode_into(
        &self,
        addrs: PacketAddrs,
        mode: ChecksumMode,
        buf: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        buf.clear();
        if self.addresses.len() > 255 {
            return Err(EncodeError::TooManyAddresses(self.addresses.len()));
        }
        if self.addresses.iter().any(|a| a.is_ipv6() != addrs.src.is_ipv6()) {
            return Err(EncodeError::MixedFamilies);
        }
        buf.reserve(self.wire_len());
        buf.push((u8::from(self.version) << 4) | TYPE_ADVERTISEMENT);
        buf.push(self.vrid);
        buf.push(self.priority);
        buf.push(self.addresses.len() as u8);
        match self.version {
            Version::V2 => {
                if self.interval_cs % 100 != 0 || self.interval_cs / 100 > 255 {
                    return Err(EncodeError::V2Interval(self.interval_cs));
                }
                if addrs.src.is_ipv6() {
                    return Err(EncodeError::V2OverIpv6);
                }
                buf.push(self.auth.auth_type());
                buf.push((self.interval_cs / 100) as u8);
            }
            Version::V3 => {
                if self.interval_cs > V3_MAX_INTERVAL_CS {
                    return Err(EncodeError::V3Interval(self.interval_cs));
                }
                buf.extend_from_slice(&self.interval_cs.to_be_bytes());
            }
        }
        buf.extend_from_slice(&[0, 0]);
        for a in &self.addresses {
            match a {
                IpAddr::V4(a) => buf.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => buf.extend_from_slice(&a.octets()),
            }
        }
        if self.version == Version::V2 {
            let mut data = [0u8; V2_AUTH_LEN];
            if let Auth::Pass(p) = &self.auth {
                let n = p.len().min(V2_AUTH_LEN);
                data[..n].copy_from_slice(&p.as_bytes()[..n]);
            }
            buf.extend_from_slice(&data);
        }
        let sum = checksum_for(self.version, buf, addrs, mode);
        buf[6..8].copy_from_slice(&sum.to_be_bytes());
        Ok(())
    }

    /// Decodes and verifies an advertisement (RFC 5798 §7.1 steps that need only
    /// the packet: version, type, length, checksum). TTL, VRID and authentication
    /// are checked by the instance, which knows its configuration.
    pub fn decode(buf: &[u8], addrs: PacketAddrs, mode: ChecksumMode) -> Result<Advert, DecodeError> {
        Self::decode_reusing(buf, buf, addrs, mode, Vec::new())
    }

    /// [`Advert::decode`] of a signed payload (`crate::auth_hmac`): `pdu` is the
    /// VRRP message, `payload` the message and its trailer. keepalived's checksum
    /// covers the message only over IPv4 (`vrrp_check_packet`) and the whole
    /// payload over IPv6 (the kernel's IPV6_CHECKSUM).
    pub fn decode_signed(
        payload: &[u8],
        pdu: &[u8],
        addrs: PacketAddrs,
        mode: ChecksumMode,
    ) -> Result<Advert, DecodeError> {
        let span = if addrs.src.is_ipv6() { payload } else { pdu };
        Self::decode_reusing(pdu, span, addrs, mode, Vec::new())
    }

    /// Decodes `buf`, verifying the checksum over `span` (`buf` itself, or `buf`
    /// and the auth_hmac trailer behind it over IPv6), its addresses put into
    /// `addresses` (cleared first): a receiver reuses one vector from advert to advert.
    pub(crate) fn decode_reusing(
        buf: &[u8],
        span: &[u8],
        addrs: PacketAddrs,
        mode: ChecksumMode,
        mut addresses: Vec<IpAddr>,
    ) -> Result<Advert, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeError::Truncated {
                len: buf.len(),
                need: HEADER_LEN,
            });
        }
        let version = match buf[0] >> 4 {
            2 => Version::V2,
            3 => Version::V3,
            v => return Err(DecodeError::UnknownVersion(v)),
        };
        let kind = buf[0] & 0x0f;
        if kind != TYPE_ADVERTISEMENT {
            return Err(DecodeError::UnknownType(kind));
        }
        let vrid = buf[1];
        if vrid == 0 {
            return Err(DecodeError::ZeroVrid);
        }
        let ipv6 = addrs.src.is_ipv6();
        if version == Version::V2 && ipv6 {
            return Err(DecodeError::V2OverIpv6);
        }
        let count = buf[3] as usize;
        // RFC 5798 §5.2.5: "The minimum value is 1" (VRRPv3). RFC 3768 §5.3.5 sets no
        // minimum for VRRPv2 (keepalived sends 0 for an instance without VIPs).
        if version == Version::V3 && count == 0 {
            return Err(DecodeError::ZeroCount);
        }
        let alen = if ipv6 { 16 } else { 4 };
        // RFC 3768 §5 / RFC 5798 §5.2: the message is the header, `count` addresses and
        // (v2) the authentication data, nothing more. The kernel trims link padding
        // (the IP total length bounds a raw socket's datagram), so any other length is
        // a malformed or forged advert: one claiming fewer addresses than it carries
        // must not be trusted for its priority.
        let need = HEADER_LEN + count * alen + if version == Version::V2 { V2_AUTH_LEN } else { 0 };
        if buf.len() < need {
            return Err(DecodeError::Truncated { len: buf.len(), need });
        }
        if buf.len() > need {
            return Err(DecodeError::TooLong { len: buf.len(), need });
        }
        let got = u16::from_be_bytes([buf[6], buf[7]]);
        let valid = checksum_for(version, span, addrs, ChecksumMode::Rfc) == 0
            || (mode == ChecksumMode::V2Compatible
                && checksum_for(version, span, addrs, ChecksumMode::V2Compatible) == 0);
        if !valid {
            let mut zeroed = span.to_vec();
            zeroed[6] = 0;
            zeroed[7] = 0;
            let expected = checksum_for(version, &zeroed, addrs, mode);
            return Err(DecodeError::BadChecksum { got, expected });
        }
        let (interval_cs, auth_type) = match version {
            Version::V2 => (u16::from(buf[5]) * 100, buf[4]),
            Version::V3 => (u16::from_be_bytes([buf[4], buf[5]]) & V3_MAX_INTERVAL_CS, 0),
        };
        if interval_cs == 0 {
            return Err(DecodeError::ZeroInterval);
        }
        addresses.clear();
        addresses.reserve(count);
        for chunk in buf[HEADER_LEN..HEADER_LEN + count * alen].chunks_exact(alen) {
            addresses.push(if ipv6 {
                let o: [u8; 16] = chunk.try_into().expect("chunks_exact(16)");
                IpAddr::V6(Ipv6Addr::from(o))
            } else {
                IpAddr::V4(Ipv4Addr::new(chunk[0], chunk[1], chunk[2], chunk[3]))
            });
        }
        let auth = if version == Version::V2 {
            let at = HEADER_LEN + count * alen;
            match auth_type {
                0 => Auth::None,
                1 => {
                    let data = &buf[at..at + V2_AUTH_LEN];
                    let end = data.iter().position(|&b| b == 0).unwrap_or(V2_AUTH_LEN);
                    Auth::Pass(String::from_utf8_lossy(&data[..end]).into_owned())
                }
                other => Auth::Other { auth_type: other },
            }
        } else {
            Auth::None
        };
        Ok(Advert {
            version,
            vrid,
            priority: buf[2],
            interval_cs,
            addresses,
            auth,
        })
    }
}

/// Appends an auth_hmac trailer (`crate::auth_hmac`) to an encoded message; over
/// IPv6 the checksum is computed again over the whole payload, as the kernel does
/// for keepalived (IPV6_CHECKSUM), over IPv4 it stays the message's.
pub fn append_trailer(buf: &mut Vec<u8>, trailer: &[u8], addrs: PacketAddrs, mode: ChecksumMode) {
    buf.extend_from_slice(trailer);
    if addrs.src.is_ipv6() && buf.len() >= HEADER_LEN {
        buf[6] = 0;
        buf[7] = 0;
        let version = if buf[0] >> 4 == 2 {
            Version::V2
        } else {
            Version::V3
        };
        let sum = checksum_for(version, buf, addrs, mode);
        buf[6..8].copy_from_slice(&sum.to_be_bytes());
    }
}

/// Errors that prevent encoding; the configuration layer rules them out.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodeError {
    #[error("{0} addresses do not fit the 8-bit count field")]
    TooManyAddresses(usize),
    #[error("addresses of both families in one advertisement")]
    MixedFamilies,
    #[error("VRRPv2 interval must be whole seconds up to 255 s, got {0} cs")]
    V2Interval(u16),
    #[error("VRRPv3 interval {0} cs exceeds 4095 cs")]
    V3Interval(u16),
    #[error("VRRPv2 is IPv4 only")]
    V2OverIpv6,
}

/// One's complement checksum over `buf` (with its checksum field as it is), plus the
/// pseudo-header where the version and mode call for it. Returns 0 over a valid packet.
/// Public for the fuzz target (fuzz/advert_decode), which repairs the checksum of a
/// mutated packet so the instance's checks behind the decoder run.
#[doc(hidden)]
pub fn checksum_for(version: Version, buf: &[u8], addrs: PacketAddrs, mode: ChecksumMode) -> u16 {
    let mut sum: u32 = 0;
    let pseudo = version == Version::V3 && (addrs.src.is_ipv6() || mode == ChecksumMode::Rfc);
    if pseudo {
        match (addrs.src, addrs.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                sum = add_bytes(sum, &s.octets());
                sum = add_bytes(sum, &d.octets());
                sum += u32::from(IPPROTO_VRRP);
                sum += buf.len() as u32;
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                // RFC 8200 §8.1: src, dst, upper-layer length (32 bit), next header.
                sum = add_bytes(sum, &s.octets());
                sum = add_bytes(sum, &d.octets());
                sum += buf.len() as u32;
                sum += u32::from(IPPROTO_VRRP);
            }
            _ => {}
        }
    }
    sum = add_bytes(sum, buf);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn add_bytes(mut sum: u32, bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    // Fold early so long inputs cannot overflow.
    (sum & 0xffff) + (sum >> 16)
}

/// Internet checksum (RFC 1071) of a buffer, used by the announcement codecs too.
pub fn inet_checksum(bytes: &[u8]) -> u16 {
    let mut sum = add_bytes(0, bytes);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(src: [u8; 4], dst: Ipv4Addr) -> PacketAddrs {
        PacketAddrs {
            src: IpAddr::V4(Ipv4Addr::from(src)),
            dst: IpAddr::V4(dst),
        }
    }

    fn v2_pass_advert() -> Advert {
        Advert {
            version: Version::V2,
            vrid: 51,
            priority: 150,
            interval_cs: 100,
            addresses: vec!["192.0.2.100".parse().unwrap()],
            auth: Auth::Pass("secret".into()),
        }
    }

    #[test]
    fn v2_round_trip_with_pass() {
        let a = v2_pass_advert();
        let addrs = v4([192, 0, 2, 1], MCAST_V4);
        let bytes = a.encode(addrs, ChecksumMode::Rfc).unwrap();
        assert_eq!(bytes.len(), 20);
        assert_eq!(&bytes[..6], &[0x21, 51, 150, 1, 1, 1]);
        assert_eq!(Advert::decode(&bytes, addrs, ChecksumMode::Rfc).unwrap(), a);
    }

    #[test]
    fn v3_checksum_depends_on_pseudo_header() {
        let a = Advert {
            version: Version::V3,
            vrid: 1,
            priority: 100,
            interval_cs: 100,
            addresses: vec!["192.0.2.100".parse().unwrap()],
            auth: Auth::None,
        };
        let addrs = v4([192, 0, 2, 1], MCAST_V4);
        let bytes = a.encode(addrs, ChecksumMode::Rfc).unwrap();
        let other = v4([192, 0, 2, 2], MCAST_V4);
        assert!(matches!(
            Advert::decode(&bytes, other, ChecksumMode::Rfc),
            Err(DecodeError::BadChecksum { .. })
        ));
        let compat = a.encode(addrs, ChecksumMode::V2Compatible).unwrap();
        assert!(Advert::decode(&compat, addrs, ChecksumMode::Rfc).is_err());
        assert_eq!(
            Advert::decode(&compat, other, ChecksumMode::V2Compatible).unwrap(),
            a
        );
    }

    /// A reused buffer holds exactly the advert `encode` gives, whatever it held
    /// before (a longer v6 advert, a failed encoding).
    #[test]
    fn encode_into_a_reused_buffer_is_encode() {
        let v6 = Advert {
            version: Version::V3,
            vrid: 7,
            priority: 200,
            interval_cs: 1,
            addresses: vec!["2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap()],
            auth: Auth::None,
        };
        let v6_addrs = PacketAddrs {
            src: "fe80::1".parse().unwrap(),
            dst: IpAddr::V6(MCAST_V6),
        };
        let v2 = v2_pass_advert();
        let addrs = v4([192, 0, 2, 1], MCAST_V4);
        let mut buf = Vec::new();
        v6.encode_into(v6_addrs, ChecksumMode::Rfc, &mut buf).unwrap();
        assert_eq!(buf, v6.encode(v6_addrs, ChecksumMode::Rfc).unwrap());
        assert_eq!(
            v6.encode_into(addrs, ChecksumMode::Rfc, &mut buf),
            Err(EncodeError::MixedFamilies)
        );
        v2.encode_into(addrs, ChecksumMode::Rfc, &mut buf).unwrap();
        assert_eq!(buf, v2.encode(addrs, ChecksumMode::Rfc).unwrap());
        assert_eq!(Advert::decode(&buf, addrs, ChecksumMode::Rfc).unwrap(), v2);
    }

    fn hex(s: &str) -> Vec<u8> {
        crate::hex::decode(s).unwrap()
    }

    /// Issue 14's vectors (src 192.0.2.3, dst 224.0.0.18): checksums valid, priority
    /// 254, lengths that disagree with the count. keepalived drops them; so must we.
    #[test]
    fn advert_length_must_match_count() {
        let addrs = v4([192, 0, 2, 3], MCAST_V4);
        let count0 = hex("3133fe00000a6bcac0000264");
        let count1_three = hex("3133fe01000ae6f4c0000264c0000265c0000266");
        for buf in [&count0, &count1_three] {
            // The checksum is right: only the length can reject them.
            assert_eq!(checksum_for(Version::V3, buf, addrs, ChecksumMode::Rfc), 0);
        }
        let e = Advert::decode(&count0, addrs, ChecksumMode::Rfc).unwrap_err();
        assert_eq!(e, DecodeError::ZeroCount);
        assert_eq!(e.counter(), "packet_length");
        let e = Advert::decode(&count1_three, addrs, ChecksumMode::Rfc).unwrap_err();
        assert_eq!(e, DecodeError::TooLong { len: 20, need: 12 });
        assert_eq!(e.counter(), "packet_length");

        // 1500 bytes claiming 255 addresses, valid checksum.
        let mut big = vec![0u8; 1480];
        big[..8].copy_from_slice(&[0x31, 51, 254, 255, 0, 10, 0, 0]);
        let sum = checksum_for(Version::V3, &big, addrs, ChecksumMode::Rfc);
        big[6..8].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(checksum_for(Version::V3, &big, addrs, ChecksumMode::Rfc), 0);
        let e = Advert::decode(&big, addrs, ChecksumMode::Rfc).unwrap_err();
        assert_eq!(
            e,
            DecodeError::TooLong {
                len: 1480,
                need: 8 + 255 * 4
            }
        );
        assert_eq!(e.counter(), "packet_length");
    }

    /// RFC 3768 §5: v2's length includes the 8 octets of authentication data; an
    /// advert without them or with extra octets is refused; count 0 is allowed (no
    /// minimum in RFC 3768, keepalived sends it for an instance without VIPs).
    #[test]
    fn v2_length_includes_auth_data() {
        let addrs = v4([192, 0, 2, 3], MCAST_V4);
        let mut a = Advert {
            version: Version::V2,
            vrid: 51,
            priority: 100,
            interval_cs: 100,
            addresses: vec!["192.0.2.100".parse().unwrap()],
            auth: Auth::None,
        };
        let good = a.encode(addrs, ChecksumMode::Rfc).unwrap();
        assert_eq!(good.len(), 8 + 4 + 8);
        // Re-checksummed copies so only the length is wrong.
        let resum = |mut b: Vec<u8>| {
            b[6] = 0;
            b[7] = 0;
            let s = checksum_for(Version::V2, &b, addrs, ChecksumMode::Rfc);
            b[6..8].copy_from_slice(&s.to_be_bytes());
            b
        };
        let short = resum(good[..12].to_vec());
        assert_eq!(
            Advert::decode(&short, addrs, ChecksumMode::Rfc).unwrap_err(),
            DecodeError::Truncated { len: 12, need: 20 }
        );
        let mut long = good.clone();
        long.extend_from_slice(&[0, 0, 0, 0]);
        let long = resum(long);
        assert_eq!(
            Advert::decode(&long, addrs, ChecksumMode::Rfc).unwrap_err(),
            DecodeError::TooLong { len: 24, need: 20 }
        );
        a.addresses.clear();
        let empty = a.encode(addrs, ChecksumMode::Rfc).unwrap();
        assert_eq!(Advert::decode(&empty, addrs, ChecksumMode::Rfc).unwrap(), a);
    }

    #[test]
    fn truncated_and_garbage_never_panic() {
        let addrs = v4([192, 0, 2, 1], MCAST_V4);
        for len in 0..64 {
            for fill in [0u8, 0x31, 0x21, 0xff] {
                let mut buf = vec![fill; len];
                if len > 3 {
                    buf[3] = 200;
                }
                let _ = Advert::decode(&buf, addrs, ChecksumMode::V2Compatible);
            }
        }
    }
}
