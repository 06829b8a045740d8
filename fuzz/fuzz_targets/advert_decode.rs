//! VRRP adverts from the LAN: `Advert::decode` on arbitrary bytes, and the same
//! bytes as received packets of a running `Instance` (TTL, family, version, VRID,
//! unicast peer, authentication and interval checks, then the state machine).
//!
//! Input: decoded whole as one packet, and read as 3 bytes of configuration, then
//! records `[op][len][len bytes]`:
//! - byte 0: bit 0 IPv6, bit 1 VRRPv3 (always with IPv6), bit 2 checksum_compat,
//!   bit 3 unicast peer, bit 4 auth_pass "secret12", bit 5 preempt, bit 6
//!   fast_preempt, bit 7 synced; byte 1 the VRID (0 -> 1); byte 2 the priority (0 -> 1).
//! - op & 7 in 0..=3: a packet (the `len` bytes); bits 3-4 the sender (peer, second
//!   peer, ourselves), bit 5 unicast destination, bit 6 TTL 254, bit 7 checksum
//!   repaired (so a mutated packet gets past the checksum to the checks behind it).
//!   4: a timer fires (`len` picks which); 5: tracking (priority `len`, fault op bit
//!   3); 6: maintenance on/off (op bit 3); 7: link down/up, shutdown, startup.
//!
//! Checked: decode never panics; what decodes re-encodes and decodes to the same
//! advert; a packet the instance rejects changes nothing but its counters.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hafront::vrrp::instance::{Input, Instance, Output, Params, Timer};
use hafront::vrrp::packet::{checksum_for, Advert, Auth, ChecksumMode, PacketAddrs, MCAST_V4, MCAST_V6};
use hafront::vrrp::Version;
use libfuzzer_sys::fuzz_target;

/// Ourselves, the peer of the captures (daemon/tests/data/captures), a second peer.
fn hosts(v6: bool) -> [IpAddr; 3] {
    if v6 {
        let h = |n| IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, n));
        [h(1), h(2), h(3)]
    } else {
        let h = |n| IpAddr::V4(Ipv4Addr::new(192, 0, 2, n));
        [h(1), h(2), h(3)]
    }
}

fn params(cfg: &[u8; 3]) -> Params {
    let v6 = cfg[0] & 1 != 0;
    let v3 = v6 || cfg[0] & 2 != 0;
    let [ours, peer, _] = hosts(v6);
    let vip = if v6 { "2001:db8::100/64" } else { "192.0.2.100/24" };
    Params {
        name: "fuzz".into(),
        version: if v3 { Version::V3 } else { Version::V2 },
        vrid: cfg[1].max(1),
        priority: cfg[2].max(1),
        interval_cs: 100,
        vips: vec![vip.parse().expect("VIP")],
        preempt: cfg[0] & 0x20 != 0,
        preempt_delay_ms: 0,
        primary: ours,
        unicast_peers: if cfg[0] & 8 != 0 { vec![peer] } else { vec![] },
        auth_pass: (!v3 && cfg[0] & 0x10 != 0).then(|| "secret12".to_string()),
        checksum_compat: cfg[0] & 4 != 0,
        garp: Default::default(),
        synced: cfg[0] & 0x80 != 0,
        fast_preempt: cfg[0] & 0x40 != 0,
        startup_hold_ms: 0,
        auth_hmac: None,
    }
}

/// Decode alone, for both families and checksum modes: no panic, and a decoded
/// advert survives encode + decode.
fn decode_alone(buf: &[u8]) {
    for v6 in [false, true] {
        let [ours, peer, _] = hosts(v6);
        let mcast = if v6 {
            IpAddr::V6(MCAST_V6)
        } else {
            IpAddr::V4(MCAST_V4)
        };
        for dst in [mcast, ours] {
            let addrs = PacketAddrs { src: peer, dst };
            for mode in [ChecksumMode::Rfc, ChecksumMode::V2Compatible] {
                let Ok(a) = Advert::decode(buf, addrs, mode) else {
                    continue;
                };
                let wire = a
                    .encode(addrs, mode)
                    .unwrap_or_else(|e| panic!("decoded {a:?} does not encode: {e}"));
                let back = Advert::decode(&wire, addrs, mode)
                    .unwrap_or_else(|e| panic!("re-encoded {a:?} does not decode: {e}"));
                // A password that is not UTF-8 is kept lossily (U+FFFD); past 8 bytes
                // it cannot go back to the wire as it came.
                let lossy = matches!(&a.auth, Auth::Pass(p) if p.len() > 8);
                if !lossy {
                    assert_eq!(back, a, "re-decoded advert differs");
                }
            }
        }
    }
}

/// Sets the checksum the instance will verify (as `Advert::encode` does).
fn repair(buf: &mut [u8], addrs: PacketAddrs, mode: ChecksumMode) {
    let version = match buf.first().map(|b| b >> 4) {
        Some(2) => Version::V2,
        Some(3) => Version::V3,
        _ => return,
    };
    if buf.len() < 8 {
        return;
    }
    buf[6..8].fill(0);
    let sum = checksum_for(version, buf, addrs, mode);
    buf[6..8].copy_from_slice(&sum.to_be_bytes());
}

fn step(inst: &mut Instance, input: Input) -> Vec<Output> {
    let is_packet = matches!(input, Input::Packet { .. });
    let (state, master, prio) = (inst.state(), inst.master(), inst.priority());
    let out = inst.handle(input);
    if is_packet && out.iter().any(|o| matches!(o, Output::Rejected { .. })) {
        assert_eq!(out.len(), 1, "a rejected packet had effects: {out:?}");
        assert_eq!(
            (inst.state(), inst.master(), inst.priority()),
            (state, master, prio),
            "a rejected packet changed the instance"
        );
    }
    out
}

fuzz_target!(|data: &[u8]| {
    // The whole input as one packet too (the raw captures in the corpus).
    decode_alone(data);
    let Some((cfg, mut rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let p = params(cfg);
    let v6 = p.primary.is_ipv6();
    let mode = p.checksum_mode();
    let [ours, peer, peer2] = hosts(v6);
    let mut inst = Instance::new(p);
    step(&mut inst, Input::Startup);
    while let [op, len, tail @ ..] = rest {
        let (op, len) = (*op, *len);
        match op & 7 {
            0..=3 => {
                let n = usize::from(len).min(tail.len());
                let mut payload = tail[..n].to_vec();
                rest = &tail[n..];
                decode_alone(&payload);
                let src = [peer, peer2, ours, peer][usize::from((op >> 3) & 3)];
                let dst = match (op & 0x20 != 0, v6) {
                    (true, _) => ours,
                    (false, true) => IpAddr::V6(MCAST_V6),
                    (false, false) => IpAddr::V4(MCAST_V4),
                };
                if op & 0x80 != 0 {
                    repair(&mut payload, PacketAddrs { src, dst }, mode);
                }
                let ttl = if op & 0x40 != 0 { 254 } else { 255 };
                step(
                    &mut inst,
                    Input::Packet {
                        src,
                        dst,
                        ttl,
                        payload,
                        wall_ns: 0,
                    },
                );
                continue;
            }
            4 => {
                let timer = [
                    Timer::MasterDown,
                    Timer::Advert,
                    Timer::Garp,
                    Timer::PreemptDelay,
                    Timer::StartupHold,
                ][usize::from(len % 5)];
                step(&mut inst, Input::Timer { timer });
            }
            5 => {
                step(
                    &mut inst,
                    Input::Track {
                        priority: len.clamp(1, 254),
                        fault: op & 8 != 0,
                    },
                );
            }
            6 => {
                step(&mut inst, Input::Maintenance { on: op & 8 != 0 });
            }
            _ => {
                let input = match len % 4 {
                    0 => Input::LinkDown,
                    1 => Input::LinkUp,
                    2 => Input::Shutdown,
                    _ => Input::Startup,
                };
                step(&mut inst, input);
            }
        }
        rest = tail;
    }
});
