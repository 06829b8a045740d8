//! Signed adverts, wire-compatible with keepalived 2.4's `auth_hmac` extension
//! (keepalived-2.4.3: keepalived/vrrp/vrrp_auth_hmac.c, keepalived/include/
//! vrrp_auth_hmac.h, the callers in keepalived/vrrp/vrrp.c). There is no RFC: the
//! layout, the HMAC input and the sequence rules below are keepalived's, checked
//! against its draft appendix vectors (keepalived-2.4.3/test/auth_hmac_test.c) and
//! against adverts captured from keepalived 2.4.3 (daemon/tests/data/captures/).
//!
//! A 28-octet trailer follows the VRRP message (v2: after the authentication
//! data; v3: after the addresses), for v2 and v3, IPv4 and IPv6, unicast and
//! multicast (`vrrp_auth_ext_t`):
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Ext Type=1  |    Key ID     |        Reserved (zero)        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |              Seconds (UTC, since the Unix epoch)              |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Subseconds (1/65536 s)      |           Counter             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +          HMAC-SHA256, truncated to its first 16 octets        +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! Seconds, Subseconds and Counter form one 64-bit sequence number, compared with
//! serial-number arithmetic (RFC 1982). The sender uses the larger of its realtime
//! clock (counter 0) and the last sequence + 1 (`next_seq`); in `time` mode it
//! restarts from the clock once more than the window ahead of it.
//!
//! The HMAC (RFC 2104, SHA-256, key 32..64 octets) covers, in order (`pdu_hmac`):
//! ```text
//! pseudo header, 20 octets: family (4|6), VRRP version, VRID, 0,
//!                           the IP source address, zero padded
//! the VRRP message with its checksum field read as zero
//! the trailer's first 12 octets (type, key id, reserved, sequence)
//! 16 zero octets (the HMAC field)
//! ```
//! The IP header and destination are not covered: unicast copies of one advert
//! carry the same trailer. The checksum (RFC 5798 §5.2.8) does not cover the
//! trailer over IPv4 (the pseudo-header length is the message's), and does over
//! IPv6 (keepalived lets the kernel compute it over the whole payload,
//! IPV6_CHECKSUM); see `packet::Advert::decode_signed` and `packet::append_trailer`.
//!
//! A receiver with `auth_hmac` configured finds the trailer by length alone: the
//! payload is exactly the message's length + 28 (`vrrp_check_packet`). It then
//! checks, in keepalived's order (`vrrp_auth_hmac_check`): type 1 and reserved 0
//! (malformed), the timestamp within the window of its own clock (`time` mode;
//! before the HMAC, so replayed floods cost no digest), the key id, the HMAC, then
//! that the sequence grows per sender (the mark moves only on a valid HMAC).

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Length of the trailer (`sizeof(vrrp_auth_ext_t)`).
pub const TRAILER_LEN: usize = 28;
/// `VRRP_AUTH_HMAC_TYPE_SHA256`: HMAC-SHA256 truncated to 128 bits.
pub const EXT_TYPE_SHA256: u8 = 1;
const MAC_LEN: usize = 16;
const PREFIX_LEN: usize = TRAILER_LEN - MAC_LEN;
const PSEUDO_LEN: usize = 20;
/// Key length bounds, octets (`VRRP_AUTH_HMAC_KEY_MIN/MAX`).
pub const KEY_MIN: usize = 32;
pub const KEY_MAX: usize = 64;
/// Freshness window bounds, seconds (`VRRP_AUTH_HMAC_WINDOW_MIN/MAX/FLOOR`).
pub const WINDOW_MIN_S: u32 = 1;
pub const WINDOW_MAX_S: u32 = 300;
const WINDOW_FLOOR_S: u32 = 5;
/// Replay slots for multicast senders (`VRRP_AUTH_HMAC_MCAST_SENDERS`).
pub const MCAST_SENDERS: usize = 4;

/// The default window: 3 x the advert interval in whole seconds, at least 5 s and
/// at most 300 s (keepalived's `vrrp_complete_instance`).
pub fn default_window_s(interval_cs: u16) -> u32 {
    (3 * u32::from(interval_cs / 100)).clamp(WINDOW_FLOOR_S, WINDOW_MAX_S)
}

/// A signing key. Its bytes never appear in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    pub id: u8,
    bytes: Vec<u8>,
}

impl Key {
    pub fn new(id: u8, bytes: Vec<u8>) -> Result<Key, String> {
        if id == 0 {
            return Err("key id 0: ids are 1..255".into());
        }
        if !(KEY_MIN..=KEY_MAX).contains(&bytes.len()) {
            return Err(format!(
                "key {id} is {} bytes, must be {KEY_MIN} to {KEY_MAX}",
                bytes.len()
            ));
        }
        Ok(Key { id, bytes })
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key {{ id: {}, bytes: <redacted> }}", self.id)
    }
}

/// Sending and receiving behaviour (`vrrp_auth_hmac_mode_t`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Sign, and require a valid trailer.
    #[default]
    Enforce,
    /// Sign; accept adverts without a trailer (a present one must verify).
    Permissive,
    /// Do not sign; verify a present trailer, accept adverts without one.
    ReceiveOnly,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Permissive => "permissive",
            Mode::ReceiveOnly => "receive-only",
        }
    }
}

/// Anti-replay rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AntiReplay {
    /// Timestamps within the window of our clock, and growing per sender.
    #[default]
    Time,
    /// Growing per sender only (no clock agreement needed).
    Monotonic,
}

/// An instance's `auth_hmac` configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub keys: Vec<Key>,
    /// Id of the key adverts are signed with; one of `keys`.
    pub active_key: u8,
    pub mode: Mode,
    pub anti_replay: AntiReplay,
    pub window_s: u32,
}

/// The trailer, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer {
    pub ext_type: u8,
    pub key_id: u8,
    pub reserved: u16,
    /// Seconds (32) | subseconds (16) | counter (16).
    pub seq: u64,
    pub mac: [u8; MAC_LEN],
}

impl Trailer {
    pub fn parse(b: &[u8; TRAILER_LEN]) -> Trailer {
        let mut mac = [0; MAC_LEN];
        mac.copy_from_slice(&b[PREFIX_LEN..]);
        Trailer {
            ext_type: b[0],
            key_id: b[1],
            reserved: u16::from_be_bytes([b[2], b[3]]),
            seq: u64::from_be_bytes(b[4..12].try_into().expect("8 bytes")),
            mac,
        }
    }

    pub fn to_bytes(&self) -> [u8; TRAILER_LEN] {
        let mut b = [0; TRAILER_LEN];
        b[..PREFIX_LEN].copy_from_slice(&self.prefix());
        b[PREFIX_LEN..].copy_from_slice(&self.mac);
        b
    }

    fn prefix(&self) -> [u8; PREFIX_LEN] {
        let mut p = [0; PREFIX_LEN];
        p[0] = self.ext_type;
        p[1] = self.key_id;
        p[2..4].copy_from_slice(&self.reserved.to_be_bytes());
        p[4..12].copy_from_slice(&self.seq.to_be_bytes());
        p
    }

    /// The timestamp's seconds.
    pub fn seconds(&self) -> u32 {
        (self.seq >> 32) as u32
    }
}

/// Splits a received payload into the VRRP message and the trailer, by length
/// (keepalived's `vrrp_check_packet`): a trailer is there when the payload is
/// exactly the length the header announces + 28. Payloads too short for a header
/// are returned whole (the decoder rejects them).
pub fn split(payload: &[u8], ipv6: bool) -> (&[u8], Option<&[u8; TRAILER_LEN]>) {
    if payload.len() < 8 {
        return (payload, None);
    }
    let alen = if ipv6 { 16 } else { 4 };
    let auth = if payload[0] >> 4 == 2 { 8 } else { 0 };
    let need = 8 + usize::from(payload[3]) * alen + auth;
    if payload.len() == need + TRAILER_LEN {
        let (pdu, t) = payload.split_at(need);
        (pdu, Some(t.try_into().expect("TRAILER_LEN bytes")))
    } else {
        (payload, None)
    }
}

/// Why a received advert failed authentication. `counter` is the name of the
/// instance's rejected counter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    #[error("no auth_hmac trailer (mode enforce)")]
    Missing,
    #[error("auth_hmac trailer with type {ext_type} / reserved {reserved:#06x} (want type 1, reserved 0)")]
    Malformed { ext_type: u8, reserved: u16 },
    #[error("auth_hmac key id {0} is not configured")]
    UnknownKey(u8),
    #[error("auth_hmac HMAC does not verify (key id {0})")]
    BadMac(u8),
    #[error("auth_hmac timestamp {skew_s} s from our clock, window {window_s} s")]
    Stale { skew_s: i64, window_s: u32 },
    #[error("auth_hmac sequence {seq:#018x} not above the last accepted {last:#018x}")]
    Replay { seq: u64, last: u64 },
}

impl Reject {
    pub fn counter(&self) -> &'static str {
        match self {
            Reject::Missing => "auth_hmac_missing",
            Reject::Malformed { .. } => "auth_hmac_malformed",
            Reject::UnknownKey(_) => "auth_hmac_unknown_key",
            Reject::BadMac(_) => "auth_hmac_bad_mac",
            Reject::Stale { .. } => "auth_hmac_stale",
            Reject::Replay { .. } => "auth_hmac_replay",
        }
    }
}

/// What a verified advert carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verified {
    Signed {
        key_id: u8,
        seq: u64,
    },
    /// No trailer, accepted by a migration mode (permissive, receive-only).
    Unsigned,
}

#[derive(Clone, Copy, Debug)]
struct Sender {
    addr: IpAddr,
    /// Last accepted sequence; None once expired.
    seq: Option<u64>,
    last_used: u64,
}

/// One instance's signing and verification state, sans-IO: the caller passes the
/// realtime clock (time since the Unix epoch) to each call.
#[derive(Clone, Debug)]
pub struct AuthHmac {
    cfg: Config,
    send_seq: u64,
    senders: Vec<Sender>,
    slots: usize,
    lru: u64,
}

/// RFC 1982 serial order over 64 bits (`seq_after`).
fn seq_after(a: u64, b: u64) -> bool {
    (a.wrapping_sub(b) as i64) > 0
}

/// The clock as a sequence: seconds << 32 | 1/65536 s << 16, counter 0 (`clock_seq`).
pub fn clock_seq(now: Duration) -> u64 {
    let subsec = (u64::from(now.subsec_nanos()) << 16) / 1_000_000_000;
    (u64::from(now.as_secs() as u32) << 32) | (subsec << 16)
}

fn pseudo(version: u8, vrid: u8, src: IpAddr) -> [u8; PSEUDO_LEN] {
    let mut p = [0; PSEUDO_LEN];
    p[1] = version;
    p[2] = vrid;
    match src {
        IpAddr::V4(a) => {
            p[0] = 4;
            p[4..8].copy_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            p[0] = 6;
            p[4..20].copy_from_slice(&a.octets());
        }
    }
    p
}

/// HMAC input of keepalived's `pdu_hmac`: pseudo header, the message with a zero
/// checksum, the trailer prefix, a zero HMAC field. `pdu` has at least 8 octets.
fn pdu_hmac(key: &Key, pseudo: &[u8; PSEUDO_LEN], pdu: &[u8], prefix: &[u8; PREFIX_LEN]) -> [u8; MAC_LEN] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&key.bytes).expect("HMAC takes any key length");
    m.update(pseudo);
    m.update(&pdu[..6]);
    m.update(&[0, 0]);
    m.update(&pdu[8..]);
    m.update(prefix);
    m.update(&[0; MAC_LEN]);
    let full = m.finalize().into_bytes();
    let mut out = [0; MAC_LEN];
    out.copy_from_slice(&full[..MAC_LEN]);
    out
}

/// Constant-time comparison of two MACs.
fn mac_eq(a: &[u8; MAC_LEN], b: &[u8; MAC_LEN]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl AuthHmac {
    /// `senders`: how many senders' sequences are remembered (at least
    /// [`MCAST_SENDERS`]; an instance passes its unicast peer count when larger, so
    /// no configured peer is ever evicted).
    pub fn new(cfg: Config, senders: usize) -> AuthHmac {
        AuthHmac {
            cfg,
            send_seq: 0,
            senders: Vec::new(),
            slots: senders.max(MCAST_SENDERS),
            lru: 0,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// New configuration after a reload; the sequences sent and accepted are kept.
    pub fn reconfigure(&mut self, cfg: Config, senders: usize) {
        self.cfg = cfg;
        self.slots = senders.max(MCAST_SENDERS);
        self.senders.truncate(self.slots);
    }

    fn key(&self, id: u8) -> Option<&Key> {
        self.cfg.keys.iter().find(|k| k.id == id)
    }

    /// `next_seq`: the clock, or the last sequence + 1 when the clock has not
    /// moved past it (restarting from the clock when more than the window ahead
    /// in `time` mode).
    fn next_seq(&mut self, now: Duration) -> u64 {
        let clk = clock_seq(now);
        if seq_after(clk, self.send_seq) {
            self.send_seq = clk;
            return clk;
        }
        let ahead = ((self.send_seq >> 32) as u32).wrapping_sub((clk >> 32) as u32) as i32;
        if self.cfg.anti_replay == AntiReplay::Time && i64::from(ahead) > i64::from(self.cfg.window_s) {
            self.send_seq = clk;
        } else {
            self.send_seq = self.send_seq.wrapping_add(1);
        }
        self.send_seq
    }

    /// The trailer for the encoded message `pdu` sent from `src`, or None in
    /// receive-only mode (`vrrp_auth_hmac_sign`). The checksum field of `pdu` is
    /// not covered, so it may be filled before or after.
    pub fn sign(
        &mut self,
        pdu: &[u8],
        version: u8,
        vrid: u8,
        src: IpAddr,
        now: Duration,
    ) -> Option<[u8; TRAILER_LEN]> {
        if self.cfg.mode == Mode::ReceiveOnly || pdu.len() < 8 {
            return None;
        }
        let seq = self.next_seq(now);
        let mut t = Trailer {
            ext_type: EXT_TYPE_SHA256,
            key_id: self.cfg.active_key,
            reserved: 0,
            seq,
            mac: [0; MAC_LEN],
        };
        // An active key that is not configured signs with a zero HMAC, which every
        // receiver rejects (keepalived does the same); configuration rules it out.
        if let Some(key) = self.key(self.cfg.active_key) {
            t.mac = pdu_hmac(key, &pseudo(version, vrid, src), pdu, &t.prefix());
        }
        Some(t.to_bytes())
    }

    /// Verifies a received advert: `pdu` the VRRP message, `trailer` what
    /// [`split`] found, `version`/`vrid` the instance's, `src` the IP source
    /// (`vrrp_auth_ext_verify`, `vrrp_auth_hmac_check`).
    pub fn verify(
        &mut self,
        pdu: &[u8],
        trailer: Option<&[u8; TRAILER_LEN]>,
        version: u8,
        vrid: u8,
        src: IpAddr,
        now: Duration,
    ) -> Result<Verified, Reject> {
        let Some(raw) = trailer else {
            return match self.cfg.mode {
                Mode::Enforce => Err(Reject::Missing),
                Mode::Permissive | Mode::ReceiveOnly => Ok(Verified::Unsigned),
            };
        };
        let t = Trailer::parse(raw);
        if t.ext_type != EXT_TYPE_SHA256 || t.reserved != 0 {
            return Err(Reject::Malformed {
                ext_type: t.ext_type,
                reserved: t.reserved,
            });
        }
        let window = i64::from(self.cfg.window_s);
        if self.cfg.anti_replay == AntiReplay::Time {
            let skew = i64::from((now.as_secs() as u32).wrapping_sub(t.seconds()) as i32);
            if skew > window || skew < -window {
                return Err(Reject::Stale {
                    skew_s: skew,
                    window_s: self.cfg.window_s,
                });
            }
        }
        let key = self.key(t.key_id).ok_or(Reject::UnknownKey(t.key_id))?;
        if pdu.len() < 8 {
            return Err(Reject::BadMac(t.key_id));
        }
        let want = pdu_hmac(key, &pseudo(version, vrid, src), pdu, &t.prefix());
        if !mac_eq(&want, &t.mac) {
            return Err(Reject::BadMac(t.key_id));
        }
        let time_mode = self.cfg.anti_replay == AntiReplay::Time;
        let slot = self.sender(src);
        let s = &mut self.senders[slot];
        // `replay_ok`: a mark outside the window only orders packets the window
        // rejects already; expiring it recovers a sender reset by a clock step.
        if let (Some(last), true) = (s.seq, time_mode) {
            let age = i64::from((now.as_secs() as u32).wrapping_sub((last >> 32) as u32) as i32);
            if age > window || age < -window {
                s.seq = None;
            }
        }
        if let Some(last) = s.seq {
            if !seq_after(t.seq, last) {
                return Err(Reject::Replay { seq: t.seq, last });
            }
        }
        s.seq = Some(t.seq);
        Ok(Verified::Signed {
            key_id: t.key_id,
            seq: t.seq,
        })
    }

    /// The replay slot of `addr`, taking the least recently used one when full
    /// (`mcast_state`); reached only after a valid HMAC, so forged sources cannot
    /// churn the table.
    fn sender(&mut self, addr: IpAddr) -> usize {
        self.lru += 1;
        if let Some(i) = self.senders.iter().position(|s| s.addr == addr) {
            self.senders[i].last_used = self.lru;
            return i;
        }
        let fresh = Sender {
            addr,
            seq: None,
            last_used: self.lru,
        };
        if self.senders.len() < self.slots {
            self.senders.push(fresh);
            return self.senders.len() - 1;
        }
        let i = (0..self.senders.len())
            .min_by_key(|&i| self.senders[i].last_used)
            .expect("slots >= 1");
        self.senders[i] = fresh;
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex;

    fn key00() -> Key {
        Key::new(1, (0u8..32).collect()).unwrap()
    }

    fn cfg(anti_replay: AntiReplay) -> Config {
        Config {
            keys: vec![key00()],
            active_key: 1,
            mode: Mode::Enforce,
            anti_replay,
            window_s: 5,
        }
    }

    /// keepalived-2.4.3/test/auth_hmac_test.c: the draft appendix images, key
    /// 00..1f, VRID 51, priority 200, sequence 0x6800000080000000.
    const IPV4_VEC: &str =
        "3133c80100644402c0000264 010100006800000080000000 1b84bc4e8e43892dc6d98448f8ee2265";
    const IPV6_VEC: &str = "3133c8010064a2e9 fe800000000000000000000000000100 \
                            010100006800000080000000 c8c56146ebfd66ee10ec4d8186461b78";

    fn vectors() -> [(Vec<u8>, IpAddr, bool); 2] {
        [
            (
                hex::decode(IPV4_VEC).unwrap(),
                "198.51.100.10".parse().unwrap(),
                false,
            ),
            (hex::decode(IPV6_VEC).unwrap(), "fe80::10".parse().unwrap(), true),
        ]
    }

    #[test]
    fn keepalived_appendix_vectors_verify_and_sign_identically() {
        for (img, src, ipv6) in vectors() {
            let (pdu, t) = split(&img, ipv6);
            let t = t.expect("trailer found by length");
            let mut a = AuthHmac::new(cfg(AntiReplay::Monotonic), 0);
            let now = Duration::from_secs(0x6800_0000);
            assert_eq!(
                a.verify(pdu, Some(t), 3, 51, src, now),
                Ok(Verified::Signed {
                    key_id: 1,
                    seq: 0x6800_0000_8000_0000
                })
            );
            // The same clock reading signs the same bytes (0x8000/65536 s = 0.5 s).
            let mut s = AuthHmac::new(cfg(AntiReplay::Time), 0);
            let t2 = s
                .sign(pdu, 3, 51, src, Duration::new(0x6800_0000, 500_000_000))
                .unwrap();
            assert_eq!(&t2, t);
        }
    }

    /// One flipped byte per field (auth_hmac_test.c `mutations`).
    #[test]
    fn mutations_are_rejected_for_the_right_reason() {
        let (img, src, _) = vectors()[1].clone();
        let now = Duration::from_secs(0x6800_0000);
        let cases: [(usize, Option<&str>); 10] = [
            (2, Some("auth_hmac_bad_mac")),  // priority
            (5, Some("auth_hmac_bad_mac")),  // interval
            (6, None),                       // checksum: not covered
            (23, Some("auth_hmac_bad_mac")), // address
            (24, Some("auth_hmac_malformed")),
            (25, Some("auth_hmac_unknown_key")),
            (26, Some("auth_hmac_malformed")),
            (28, Some("auth_hmac_bad_mac")), // seconds
            (34, Some("auth_hmac_bad_mac")), // counter
            (36, Some("auth_hmac_bad_mac")), // hmac
        ];
        for (off, want) in cases {
            let mut m = img.clone();
            m[off] ^= 0x01;
            let (pdu, t) = split(&m, true);
            let mut a = AuthHmac::new(cfg(AntiReplay::Monotonic), 0);
            let got = a.verify(pdu, t, 3, 51, src, now).err().map(|e| e.counter());
            assert_eq!(got, want, "byte {off}");
        }
        // Bound to version, VRID and source.
        let (pdu, t) = split(&img, true);
        let mut a = AuthHmac::new(cfg(AntiReplay::Monotonic), 0);
        assert_eq!(a.verify(pdu, t, 2, 51, src, now), Err(Reject::BadMac(1)));
        assert_eq!(a.verify(pdu, t, 3, 52, src, now), Err(Reject::BadMac(1)));
        let other: IpAddr = "fe80::11".parse().unwrap();
        assert_eq!(a.verify(pdu, t, 3, 51, other, now), Err(Reject::BadMac(1)));
    }

    #[test]
    fn replay_and_staleness() {
        let (img, src, ipv6) = vectors()[0].clone();
        let (pdu, t) = split(&img, ipv6);
        let sent = Duration::from_secs(0x6800_0000);
        // Monotonic: the same advert twice is a replay.
        let mut a = AuthHmac::new(cfg(AntiReplay::Monotonic), 0);
        assert!(a.verify(pdu, t, 3, 51, src, sent).is_ok());
        assert!(matches!(
            a.verify(pdu, t, 3, 51, src, sent),
            Err(Reject::Replay { .. })
        ));
        // Time: accepted within the window, stale beyond it on either side.
        let mut a = AuthHmac::new(cfg(AntiReplay::Time), 0);
        assert!(a
            .verify(pdu, t, 3, 51, src, sent + Duration::from_secs(5))
            .is_ok());
        for now in [sent + Duration::from_secs(6), sent - Duration::from_secs(6)] {
            let mut a = AuthHmac::new(cfg(AntiReplay::Time), 0);
            assert_eq!(
                a.verify(pdu, t, 3, 51, src, now).unwrap_err().counter(),
                "auth_hmac_stale"
            );
        }
        // Missing trailer: enforce rejects, the migration modes accept.
        let mut c = cfg(AntiReplay::Time);
        let mut a = AuthHmac::new(c.clone(), 0);
        assert_eq!(a.verify(pdu, None, 3, 51, src, sent), Err(Reject::Missing));
        for mode in [Mode::Permissive, Mode::ReceiveOnly] {
            c.mode = mode;
            let mut a = AuthHmac::new(c.clone(), 0);
            assert_eq!(a.verify(pdu, None, 3, 51, src, sent), Ok(Verified::Unsigned));
            // A present trailer is still checked.
            let mut bad = *t.unwrap();
            bad[27] ^= 1;
            assert_eq!(
                a.verify(pdu, Some(&bad), 3, 51, src, sent),
                Err(Reject::BadMac(1))
            );
        }
        c.mode = Mode::ReceiveOnly;
        assert_eq!(AuthHmac::new(c, 0).sign(pdu, 3, 51, src, sent), None);
    }

    #[test]
    fn send_sequence_grows_when_the_clock_does_not() {
        let src: IpAddr = "192.0.2.1".parse().unwrap();
        let pdu = hex::decode("3133c80100644402c0000264").unwrap();
        let now = Duration::new(1_700_000_000, 0);
        let mut s = AuthHmac::new(cfg(AntiReplay::Time), 0);
        let seqs: Vec<u64> = (0..3)
            .map(|_| Trailer::parse(&s.sign(&pdu, 3, 51, src, now).unwrap()).seq)
            .collect();
        assert_eq!(seqs, vec![clock_seq(now), clock_seq(now) + 1, clock_seq(now) + 2]);
        // A clock stepped back more than the window: time mode restarts from it.
        let back = now - Duration::from_secs(60);
        let t = Trailer::parse(&s.sign(&pdu, 3, 51, src, back).unwrap());
        assert_eq!(t.seq, clock_seq(back));
        let mut m = AuthHmac::new(cfg(AntiReplay::Monotonic), 0);
        m.sign(&pdu, 3, 51, src, now);
        let t = Trailer::parse(&m.sign(&pdu, 3, 51, src, back).unwrap());
        assert_eq!(t.seq, clock_seq(now) + 1);
    }

    #[test]
    fn sender_table_is_bounded_and_lru() {
        let pdu = hex::decode("3133c80100644402c0000264").unwrap();
        let now = Duration::new(1_700_000_000, 0);
        let mut s = AuthHmac::new(cfg(AntiReplay::Monotonic), 0);
        let mut r = AuthHmac::new(cfg(AntiReplay::Monotonic), 0);
        for i in 1..=10u8 {
            let src = IpAddr::from([192, 0, 2, i]);
            let t = s.sign(&pdu, 3, 51, src, now).unwrap();
            assert!(r.verify(&pdu, Some(&t), 3, 51, src, now).is_ok());
        }
        assert_eq!(r.senders.len(), MCAST_SENDERS);
    }

    #[test]
    fn keys_are_bounded_and_redacted() {
        assert!(Key::new(1, vec![0; 31]).is_err());
        assert!(Key::new(1, vec![0; 65]).is_err());
        assert!(Key::new(0, vec![0; 32]).is_err());
        let k = Key::new(7, vec![0xab; 40]).unwrap();
        assert_eq!(format!("{k:?}"), "Key { id: 7, bytes: <redacted> }");
        assert_eq!(default_window_s(100), 5);
        assert_eq!(default_window_s(50), 5);
        assert_eq!(default_window_s(300), 9);
        assert_eq!(default_window_s(25500), 300);
    }

    #[test]
    fn split_finds_the_trailer_by_length_only() {
        let mut v2 = vec![0u8; 20];
        v2[0] = 0x21;
        v2[3] = 1;
        assert_eq!(split(&v2, false).1, None);
        assert_eq!(split(&[0x31, 1], false).1, None);
        let mut signed = v2.clone();
        signed.extend_from_slice(&[0; TRAILER_LEN]);
        // v2, 1 address: 8 + 4 + 8 = 20, + 28.
        assert_eq!(signed.len(), 48);
        assert!(split(&signed, false).1.is_some());
        signed.push(0);
        assert_eq!(split(&signed, false).1, None);
    }
}
