//! Packets captured from keepalived as test vectors for the VRRP codec
//! (`vrrp::packet`) and the address announcements (`net::announce`).
//!
//! Every `tests/data/captures/*.txt` file is one packet keepalived put on the wire,
//! written by `scripts/capture-keepalived` (run by hand, as root, in a namespace
//! lab). Format: `key value` lines, `#` lines are comments.
//! - `kind`: `vrrp`, `garp` or `na`.
//! - `src`, `dst`, `ttl`: IP source, destination and TTL / hop limit (not for `garp`).
//! - `hex`: `vrrp`: the VRRP message (IP payload); `garp`: the 28-byte ARP packet
//!   (Ethernet payload); `na`: the ICMPv6 message (IPv6 payload).
//! - `vrrp`: the expected decoded fields `version`, `vrid`, `priority`, `interval_cs`,
//!   `addresses` (space-separated), `auth` (`none` or `pass <password>`), and
//!   optionally `checksum_dst`, the pseudo-header destination keepalived used when it
//!   is not `dst` (its `old_unicast_checksum` option uses 224.0.0.18).
//! - `garp`, `na`: `mac` and `vip`, the arguments of our builder.
//!
//! For each VRRP vector: decode and check every field, re-encode to keepalived's exact
//! bytes, and reject the packet once its checksum is damaged. For each announcement:
//! our builder's bytes against keepalived's, with the differences the RFCs allow.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use hafront::net::announce::{garp_packet, na_packet};
use hafront::vrrp::error::DecodeError;
use hafront::vrrp::hex;
use hafront::vrrp::packet::{inet_checksum, Advert, Auth, ChecksumMode, PacketAddrs, Version};

/// Vectors the capture script writes: a missing one fails the test rather than
/// silently shrinking the coverage.
const EXPECTED: &[&str] = &[
    "v2_pass_auth",
    "v2_pass_auth_prio0",
    "v2_no_auth",
    "v2_multi_vip_short_pass",
    "v3_ipv4_int1",
    "v3_ipv4_int0.1",
    "v3_ipv4_prio0",
    "v3_ipv4_multi_vip",
    "v3_ipv4_unicast",
    "v3_ipv4_unicast_old_checksum",
    "v3_ipv6",
    "v3_ipv6_prio0",
    "garp_ipv4",
    "na_ipv6",
];

const KEYS: &[&str] = &[
    "kind",
    "src",
    "dst",
    "ttl",
    "hex",
    "checksum_dst",
    "version",
    "vrid",
    "priority",
    "interval_cs",
    "addresses",
    "auth",
    "mac",
    "vip",
];

struct Vector {
    name: String,
    fields: BTreeMap<String, String>,
}

impl Vector {
    fn load(path: &Path) -> Vector {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut fields = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line.split_once(' ').unwrap_or((line, ""));
            assert!(KEYS.contains(&k), "{name}:{}: unknown key {k:?}", n + 1);
            let old = fields.insert(k.to_string(), v.trim().to_string());
            assert!(old.is_none(), "{name}:{}: duplicate key {k:?}", n + 1);
        }
        Vector { name, fields }
    }

    fn get(&self, k: &str) -> &str {
        self.fields
            .get(k)
            .unwrap_or_else(|| panic!("{}: no {k:?} line", self.name))
    }

    fn parse<T: std::str::FromStr>(&self, k: &str) -> T
    where
        T::Err: std::fmt::Debug,
    {
        self.get(k)
            .parse()
            .unwrap_or_else(|e| panic!("{}: bad {k} {:?}: {e:?}", self.name, self.get(k)))
    }

    fn bytes(&self) -> Vec<u8> {
        hex::decode(self.get("hex")).unwrap_or_else(|e| panic!("{}: hex: {e}", self.name))
    }

    fn mac(&self) -> [u8; 6] {
        let octets: Vec<u8> = self
            .get("mac")
            .split(':')
            .map(|o| u8::from_str_radix(o, 16).unwrap_or_else(|_| panic!("{}: bad mac", self.name)))
            .collect();
        octets
            .try_into()
            .unwrap_or_else(|_| panic!("{}: mac is not 6 octets", self.name))
    }
}

fn vectors() -> Vec<Vector> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/captures");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    paths.sort();
    let v: Vec<Vector> = paths.iter().map(|p| Vector::load(p)).collect();
    for want in EXPECTED {
        assert!(
            v.iter().any(|x| x.name == *want),
            "missing vector {want}.txt (regenerate with scripts/capture-keepalived)"
        );
    }
    v
}

fn of_kind(kind: &str) -> Vec<Vector> {
    vectors().into_iter().filter(|v| v.get("kind") == kind).collect()
}

#[test]
fn every_vector_has_a_known_kind() {
    for v in vectors() {
        assert!(
            ["vrrp", "garp", "na"].contains(&v.get("kind")),
            "{}: unknown kind {:?}",
            v.name,
            v.get("kind")
        );
    }
}

#[test]
fn vrrp_adverts_decode_and_reencode_byte_identical() {
    let vs = of_kind("vrrp");
    assert!(vs.len() >= 12, "only {} VRRP vectors", vs.len());
    for v in &vs {
        let name = &v.name;
        let bytes = v.bytes();
        let src: IpAddr = v.parse("src");
        let dst: IpAddr = v.parse("dst");
        // RFC 5798 §5.1.1.3 / §5.1.2.3, RFC 3768 §5.2.3: sent with TTL / hop limit 255.
        assert_eq!(v.parse::<u8>("ttl"), 255, "{name}: ttl");
        let csum_dst: IpAddr = v.fields.get("checksum_dst").map_or(dst, |s| s.parse().unwrap());
        let addrs = PacketAddrs { src, dst: csum_dst };

        // Decode (strict RFC checksum) and compare every field.
        let ad = Advert::decode(&bytes, addrs, ChecksumMode::Rfc)
            .unwrap_or_else(|e| panic!("{name}: keepalived's advert does not decode: {e}"));
        let version = match v.parse::<u8>("version") {
            2 => Version::V2,
            3 => Version::V3,
            other => panic!("{name}: version {other}"),
        };
        assert_eq!(ad.version, version, "{name}: version");
        assert_eq!(ad.vrid, v.parse::<u8>("vrid"), "{name}: vrid");
        assert_eq!(ad.priority, v.parse::<u8>("priority"), "{name}: priority");
        assert_eq!(
            ad.interval_cs,
            v.parse::<u16>("interval_cs"),
            "{name}: interval_cs"
        );
        let addresses: Vec<IpAddr> = v
            .get("addresses")
            .split_whitespace()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(ad.addresses, addresses, "{name}: addresses");
        let auth = match v.get("auth") {
            "none" => Auth::None,
            other => match other.split_once(' ') {
                Some(("pass", pw)) => Auth::Pass(pw.to_string()),
                _ => panic!("{name}: bad auth {other:?}"),
            },
        };
        assert_eq!(ad.auth, auth, "{name}: auth");
        assert_eq!(ad.wire_len(), bytes.len(), "{name}: wire_len");

        // Re-encode with the same addresses: keepalived's exact bytes. keepalived
        // computes the VRRPv3-over-IPv4 checksum over the pseudo-header (our Rfc mode).
        let again = ad.encode(addrs, ChecksumMode::Rfc).unwrap();
        assert_eq!(
            hex::encode(&again),
            hex::encode(&bytes),
            "{name}: re-encoding differs"
        );
        let v3_ipv4 = version == Version::V3 && src.is_ipv4();
        let compat = ad.encode(addrs, ChecksumMode::V2Compatible).unwrap();
        if v3_ipv4 {
            // keepalived does not use the checksum without pseudo-header...
            assert_ne!(compat, bytes, "{name}: keepalived used a v2-style checksum");
        } else {
            // ...which exists for VRRPv3 over IPv4 only.
            assert_eq!(
                compat, bytes,
                "{name}: v2-compatible mode changed a v2/IPv6 advert"
            );
        }
        // The compatible receive mode accepts the RFC form as well.
        assert_eq!(
            Advert::decode(&bytes, addrs, ChecksumMode::V2Compatible).as_ref(),
            Ok(&ad),
            "{name}: V2Compatible decode"
        );

        // A damaged checksum is rejected, and the error names keepalived's checksum
        // as the expected one.
        let sum = u16::from_be_bytes([bytes[6], bytes[7]]);
        for (i, flip) in [(6, 0x01u8), (7, 0x80), (6, 0xff)] {
            let mut bad = bytes.clone();
            bad[i] ^= flip;
            let got = u16::from_be_bytes([bad[6], bad[7]]);
            assert_eq!(
                Advert::decode(&bad, addrs, ChecksumMode::Rfc),
                Err(DecodeError::BadChecksum { got, expected: sum }),
                "{name}: checksum byte {i} ^ {flip:#04x}"
            );
        }

        if csum_dst != dst {
            // keepalived's `old_unicast_checksum` (unicast VRRPv3 over IPv4, the form of
            // keepalived < 1.3.6): the pseudo-header carries 224.0.0.18 instead of the
            // unicast peer. hafront has no such mode, so with the packet's real
            // addresses the advert is rejected in both checksum modes. keepalived
            // itself auto-detects this form on receive.
            let real = PacketAddrs { src, dst };
            for mode in [ChecksumMode::Rfc, ChecksumMode::V2Compatible] {
                assert!(
                    matches!(
                        Advert::decode(&bytes, real, mode),
                        Err(DecodeError::BadChecksum { .. })
                    ),
                    "{name}: old unicast checksum accepted in {mode:?} mode"
                );
            }
        }
    }
}

/// RFC 5227 §3 ARP Announcement. keepalived (vrrp_arp.c) fills the target hardware
/// address with the broadcast address; garp_packet() leaves it zero, as RFC 5227
/// §2.1.1 asks ("SHOULD be set to all zeroes"; receivers ignore it in a request,
/// RFC 826). Everything else must be byte-identical.
#[test]
fn garp_matches_keepalived_except_target_hardware_address() {
    let vs = of_kind("garp");
    assert!(!vs.is_empty());
    for v in &vs {
        let name = &v.name;
        let theirs = v.bytes();
        let vip: Ipv4Addr = v.parse("vip");
        let ours = garp_packet(v.mac(), vip);
        assert_eq!(theirs.len(), ours.len(), "{name}: length");
        // htype, ptype, hlen, plen, oper = 1 (request), sender MAC, sender IP = VIP.
        assert_eq!(
            hex::encode(&ours[..18]),
            hex::encode(&theirs[..18]),
            "{name}: header and sender"
        );
        // target IP = VIP.
        assert_eq!(ours[24..], theirs[24..], "{name}: target IP");
        assert_eq!(ours[18..24], [0u8; 6], "{name}: our target MAC");
        assert_eq!(theirs[18..24], [0xffu8; 6], "{name}: keepalived's target MAC");
    }
}

/// RFC 4861 §4.4 / §7.2.6 unsolicited Neighbor Advertisement. na_packet() leaves the
/// checksum to the kernel (raw ICMPv6 socket); keepalived computes it itself. With the
/// checksum filled in for the same addresses, the messages are byte-identical.
/// keepalived sends from the VIP itself (IPv6 source = target); hafront's socket lets
/// the kernel pick the source, which the ICMPv6 body does not contain.
#[test]
fn na_matches_keepalived() {
    let vs = of_kind("na");
    assert!(!vs.is_empty());
    for v in &vs {
        let name = &v.name;
        let theirs = v.bytes();
        let src: Ipv6Addr = v.parse("src");
        let dst: Ipv6Addr = v.parse("dst");
        let vip: Ipv6Addr = v.parse("vip");
        // RFC 4861 §7.1.2: hop limit 255; §7.2.6: unsolicited NAs go to all-nodes.
        assert_eq!(v.parse::<u8>("ttl"), 255, "{name}: hop limit");
        assert_eq!(dst, "ff02::1".parse::<Ipv6Addr>().unwrap(), "{name}: dst");

        // keepalived's checksum is valid over the ICMPv6 pseudo-header (RFC 8200 §8.1).
        let pseudo = |body: &[u8]| {
            let mut p = Vec::with_capacity(40 + body.len());
            p.extend_from_slice(&src.octets());
            p.extend_from_slice(&dst.octets());
            p.extend_from_slice(&(body.len() as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 58]);
            p.extend_from_slice(body);
            p
        };
        assert_eq!(
            inet_checksum(&pseudo(&theirs)),
            0,
            "{name}: keepalived's checksum"
        );

        let mut ours = na_packet(v.mac(), vip).to_vec();
        assert_eq!(ours.len(), theirs.len(), "{name}: length");
        assert_eq!(ours[2..4], [0, 0], "{name}: our checksum is left to the kernel");
        let sum = inet_checksum(&pseudo(&ours));
        ours[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(hex::encode(&ours), hex::encode(&theirs), "{name}: NA differs");
        // Flags R=0 S=0 O=1 (keepalived sets R only when forwarding is on).
        assert_eq!(theirs[4], 0x20, "{name}: flags");
    }
}
