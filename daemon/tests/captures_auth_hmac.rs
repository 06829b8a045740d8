//! Signed adverts captured from keepalived 2.4.3 (`auth_hmac`) as test vectors for
//! `hafront_vrrp::auth_hmac` and the codec's trailer handling.
//!
//! `tests/data/captures/auth_hmac/*.txt`, written by `scripts/capture-keepalived-hmac`
//! (run by hand, as root, in a namespace lab): the format of `captures.rs`, plus
//! `key`, the hex key of id 1 keepalived signed with. For each: the trailer is found
//! by length, the checksum holds (IPv4: over the message; IPv6: over message and
//! trailer), the fields decode, the HMAC verifies; our encoder and signer rebuild
//! keepalived's exact bytes from the same clock reading; the same advert again is
//! a replay, and any flipped bit of what the HMAC covers is refused.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use hafront::vrrp::auth_hmac::{self, AntiReplay, AuthHmac, Config, Key, Mode, Trailer, Verified};
use hafront::vrrp::hex;
use hafront::vrrp::packet::{append_trailer, Advert, ChecksumMode, PacketAddrs};

const EXPECTED: &[&str] = &["v2_ipv4_unicast", "v3_ipv4", "v3_ipv6"];

fn load(name: &str) -> BTreeMap<String, String> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/captures/auth_hmac/{name}.txt"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once(' ')
                .unwrap_or_else(|| panic!("{name}: bad line {l:?}"));
            (k.to_string(), v.trim().to_string())
        })
        .collect()
}

fn hmac(key: &[u8]) -> AuthHmac {
    let cfg = Config {
        keys: vec![Key::new(1, key.to_vec()).unwrap()],
        active_key: 1,
        mode: Mode::Enforce,
        anti_replay: AntiReplay::Monotonic,
        window_s: 5,
    };
    AuthHmac::new(cfg, 0)
}

#[test]
fn keepalived_signed_adverts() {
    for name in EXPECTED {
        let f = load(name);
        let src: IpAddr = f["src"].parse().unwrap();
        let dst: IpAddr = f["dst"].parse().unwrap();
        let bytes = hex::decode(&f["hex"]).unwrap();
        let key = hex::decode(&f["key"]).unwrap();
        let addrs = PacketAddrs { src, dst };
        let (pdu, trailer) = auth_hmac::split(&bytes, src.is_ipv6());
        let trailer = trailer.unwrap_or_else(|| panic!("{name}: no trailer found by length"));
        assert_eq!(bytes.len(), pdu.len() + auth_hmac::TRAILER_LEN, "{name}");

        let advert = Advert::decode_signed(&bytes, pdu, addrs, ChecksumMode::Rfc)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(u8::from(advert.version).to_string(), f["version"], "{name}");
        assert_eq!(advert.vrid.to_string(), f["vrid"], "{name}");
        assert_eq!(advert.priority.to_string(), f["priority"], "{name}");
        assert_eq!(advert.interval_cs.to_string(), f["interval_cs"], "{name}");
        assert_eq!(
            advert.addresses,
            vec![f["addresses"].parse::<IpAddr>().unwrap()],
            "{name}"
        );
        // Unsigned decoding refuses the longer packet, as keepalived without auth_hmac does.
        assert!(
            Advert::decode(&bytes, addrs, ChecksumMode::Rfc).is_err(),
            "{name}"
        );

        let t = Trailer::parse(trailer);
        let version = u8::from(advert.version);
        let mut rx = hmac(&key);
        assert_eq!(
            rx.verify(pdu, Some(trailer), version, advert.vrid, src, Duration::ZERO),
            Ok(Verified::Signed {
                key_id: 1,
                seq: t.seq
            }),
            "{name}"
        );
        assert!(
            matches!(
                rx.verify(pdu, Some(trailer), version, advert.vrid, src, Duration::ZERO),
                Err(auth_hmac::Reject::Replay { .. })
            ),
            "{name}: the same advert twice"
        );

        // Rebuild keepalived's bytes: encode, sign at the captured clock reading.
        let subsec = (t.seq >> 16) & 0xffff;
        let nanos = (subsec * 1_000_000_000).div_ceil(65536) as u32;
        assert_eq!(t.seq & 0xffff, 0, "{name}: counter 0 on a fresh sender");
        let now = Duration::new(u64::from(t.seconds()), nanos);
        let mut out = advert.encode(addrs, ChecksumMode::Rfc).unwrap();
        let mine = hmac(&key).sign(&out, version, advert.vrid, src, now).unwrap();
        append_trailer(&mut out, &mine, addrs, ChecksumMode::Rfc);
        assert_eq!(
            hex::encode(&out),
            f["hex"],
            "{name}: our signed advert differs from keepalived's"
        );

        // Every bit the HMAC covers, flipped (checksum repaired: only the HMAC can refuse).
        for i in (0..bytes.len()).filter(|&i| i != 6 && i != 7) {
            let mut m = bytes.clone();
            m[i] ^= 0x04;
            let (pdu, tr) = auth_hmac::split(&m, src.is_ipv6());
            let got = hmac(&key).verify(pdu, tr, version, advert.vrid, src, Duration::ZERO);
            assert!(got.is_err(), "{name}: byte {i} flipped, still accepted");
        }
        // A wrong key.
        let mut other = key.clone();
        other[0] ^= 1;
        assert_eq!(
            hmac(&other).verify(pdu, Some(trailer), version, advert.vrid, src, Duration::ZERO),
            Err(auth_hmac::Reject::BadMac(1)),
            "{name}"
        );
    }
}

/// The instance counts each refusal under its reason and lets a valid signed
/// advert through; permissive also takes an unsigned one.
#[test]
fn instance_verifies_and_counts_per_reason() {
    use hafront::vrrp::{Input, Instance, Params};
    let f = load("v3_ipv4");
    let bytes = hex::decode(&f["hex"]).unwrap();
    let key = hex::decode(&f["key"]).unwrap();
    let mut params: Params = serde_json::from_value(serde_json::json!({
        "name": "web", "version": 3, "vrid": 51, "priority": 100, "interval_cs": 100,
        "vips": ["192.0.2.100/24"], "preempt": true, "primary": "192.0.2.1",
    }))
    .unwrap();
    let cfg = |mode| Config {
        keys: vec![Key::new(1, key.clone()).unwrap()],
        active_key: 1,
        mode,
        anti_replay: AntiReplay::Time,
        window_s: 5,
    };
    let seconds = u64::from(Trailer::parse(auth_hmac::split(&bytes, false).1.unwrap()).seconds());
    let packet = |payload: &[u8], at: u64| Input::Packet {
        src: f["src"].parse().unwrap(),
        dst: f["dst"].parse().unwrap(),
        ttl: 255,
        payload: payload.to_vec(),
        wall_ns: at * 1_000_000_000,
    };
    let rejected = |i: &Instance, r: &str| i.counters().rejected.get(r).copied().unwrap_or(0);
    let unsigned = &bytes[..bytes.len() - auth_hmac::TRAILER_LEN];

    params.auth_hmac = Some(cfg(Mode::Enforce));
    let mut i = Instance::new(params.clone());
    i.handle(Input::Startup);
    i.handle(packet(&bytes, seconds + 1));
    assert_eq!(i.counters().adverts_received, 1);
    i.handle(packet(&bytes, seconds + 1));
    assert_eq!(rejected(&i, "auth_hmac_replay"), 1);
    i.handle(packet(&bytes, seconds + 60));
    assert_eq!(rejected(&i, "auth_hmac_stale"), 1);
    i.handle(packet(unsigned, seconds));
    assert_eq!(rejected(&i, "auth_hmac_missing"), 1);
    assert_eq!(i.counters().adverts_received, 1);

    params.auth_hmac = Some(cfg(Mode::Permissive));
    let mut i = Instance::new(params.clone());
    i.handle(Input::Startup);
    i.handle(packet(unsigned, seconds));
    assert_eq!(i.counters().adverts_received, 1);
    assert!(i.counters().rejected.is_empty());

    // Without auth_hmac, a signed advert is too long (keepalived refuses it too).
    params.auth_hmac = None;
    let mut i = Instance::new(params);
    i.handle(Input::Startup);
    i.handle(packet(&bytes, seconds));
    assert_eq!(rejected(&i, "packet_length"), 1);
}
