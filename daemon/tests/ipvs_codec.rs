//! The IPVS generic netlink codec: every attribute both ways, byte layouts the
//! kernel expects, and bad input as errors (never panics). Messages captured from
//! ipvsadm and from the kernel's dumps are in tests/data/ipvs/ (see
//! vm-tests/capture-ipvsadm).

use hafront::ipvs::constants::*;
use hafront::ipvs::message::{IpvsCmd, IpvsMessage};
use hafront::ipvs::nlas::{DaemonAttr, DestAttr, IpvsAttr, ServiceAttr, StatsAttr};
use hafront::ipvs::{sync, SyncDaemon, SyncRole};
use netlink_packet_core::{
    DefaultNla, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST,
};
use netlink_packet_generic::GenlMessage;

fn emit(msg: IpvsMessage, family: u16) -> Vec<u8> {
    let mut g = GenlMessage::from_payload(msg);
    g.set_resolved_family_id(family);
    let mut nl = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::InnerMessage(g));
    nl.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    nl.header.sequence_number = 7;
    nl.finalize();
    let mut buf = vec![0u8; nl.buffer_len()];
    nl.serialize(&mut buf);
    buf
}

fn parse(bytes: &[u8]) -> Result<IpvsMessage, String> {
    let nl = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(bytes).map_err(|e| e.to_string())?;
    match nl.payload {
        NetlinkPayload::InnerMessage(g) => Ok(g.payload),
        other => Err(format!("not an IPVS message: {other:?}")),
    }
}

fn roundtrip(msg: IpvsMessage) -> Vec<u8> {
    let bytes = emit(msg.clone(), 0x1c);
    let back = parse(&bytes).unwrap();
    assert_eq!(back, msg);
    assert_eq!(emit(back, 0x1c), bytes, "re-encoding differs");
    bytes
}

fn v4(a: [u8; 4]) -> [u8; 16] {
    let mut x = [0u8; 16];
    x[..4].copy_from_slice(&a);
    x
}

fn all_stats() -> Vec<StatsAttr> {
    vec![
        StatsAttr::Conns(1),
        StatsAttr::InPkts(2),
        StatsAttr::OutPkts(3),
        StatsAttr::Pad(vec![]),
        StatsAttr::InBytes(0x1_0000_0004),
        StatsAttr::Pad(vec![]),
        StatsAttr::OutBytes(5),
        StatsAttr::Cps(6),
        StatsAttr::InPps(7),
        StatsAttr::OutPps(8),
        StatsAttr::InBps(9),
        StatsAttr::OutBps(10),
    ]
}

#[test]
fn every_service_attribute_roundtrips() {
    let svc = vec![
        ServiceAttr::AddressFamily(AF_INET),
        ServiceAttr::Protocol(6),
        ServiceAttr::Address(v4([192, 0, 2, 100])),
        ServiceAttr::Port(80),
        ServiceAttr::Fwmark(0),
        ServiceAttr::SchedName("wrr".into()),
        ServiceAttr::Flags {
            flags: IP_VS_SVC_F_PERSISTENT | IP_VS_SVC_F_ONEPACKET,
            mask: u32::MAX,
        },
        ServiceAttr::Timeout(300),
        ServiceAttr::Netmask(u32::from_ne_bytes([255, 255, 255, 0])),
        ServiceAttr::PeName("sip".into()),
        ServiceAttr::Stats(all_stats()),
        ServiceAttr::Stats64(all_stats()),
        ServiceAttr::Other(DefaultNla::new(99, vec![1, 2, 3])),
    ];
    for cmd in [
        IpvsCmd::NewService,
        IpvsCmd::SetService,
        IpvsCmd::DelService,
        IpvsCmd::GetService,
    ] {
        roundtrip(IpvsMessage::new(cmd, vec![IpvsAttr::Service(svc.clone())]));
    }
}

#[test]
fn every_dest_attribute_roundtrips() {
    let mut v6 = [0u8; 16];
    v6[..2].copy_from_slice(&[0x20, 0x01]);
    v6[2..4].copy_from_slice(&[0x0d, 0xb8]);
    v6[15] = 0x11;
    let dest = vec![
        DestAttr::AddressFamily(AF_INET6),
        DestAttr::Address(v6),
        DestAttr::Port(8080),
        DestAttr::FwdMethod(IP_VS_CONN_F_TUNNEL),
        DestAttr::Weight(3),
        DestAttr::UpperThreshold(1000),
        DestAttr::LowerThreshold(10),
        DestAttr::ActiveConns(4),
        DestAttr::InactiveConns(5),
        DestAttr::PersistentConns(6),
        DestAttr::Stats(all_stats()),
        DestAttr::Stats64(all_stats()),
        DestAttr::TunnelType(IP_VS_CONN_F_TUNNEL_TYPE_GUE),
        DestAttr::TunnelPort(6080),
        DestAttr::TunnelFlags(IP_VS_TUNNEL_ENCAP_FLAG_CSUM | IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM),
        DestAttr::Other(DefaultNla::new(77, vec![9])),
    ];
    let svc = vec![ServiceAttr::AddressFamily(AF_INET6), ServiceAttr::Fwmark(7)];
    for cmd in [
        IpvsCmd::NewDest,
        IpvsCmd::SetDest,
        IpvsCmd::DelDest,
        IpvsCmd::GetDest,
    ] {
        roundtrip(IpvsMessage::new(
            cmd,
            vec![IpvsAttr::Service(svc.clone()), IpvsAttr::Dest(dest.clone())],
        ));
    }
}

#[test]
fn first_level_attributes_and_info() {
    roundtrip(IpvsMessage::new(
        IpvsCmd::SetConfig,
        vec![
            IpvsAttr::TimeoutTcp(900),
            IpvsAttr::TimeoutTcpFin(120),
            IpvsAttr::TimeoutUdp(300),
        ],
    ));
    roundtrip(IpvsMessage::new(
        IpvsCmd::NewDaemon,
        vec![IpvsAttr::Daemon(vec![DaemonAttr::State(1)])],
    ));
    // The reply to GET_INFO reuses attribute numbers 1 and 2.
    let bytes = roundtrip(IpvsMessage::new(
        IpvsCmd::SetInfo,
        vec![IpvsAttr::InfoVersion(0x010201), IpvsAttr::InfoConnTabSize(4096)],
    ));
    // nlmsghdr(16) + genlmsghdr(4), then the first attribute: len 8, type 1.
    assert_eq!(&bytes[20..24], &[8, 0, 1, 0]);
    for cmd in [
        IpvsCmd::Flush,
        IpvsCmd::Zero,
        IpvsCmd::GetInfo,
        IpvsCmd::GetConfig,
        IpvsCmd::GetDaemon,
        IpvsCmd::DelDaemon,
    ] {
        roundtrip(IpvsMessage::new(cmd, vec![]));
    }
}

#[test]
fn wire_layout_is_what_the_kernel_reads() {
    let bytes = emit(
        IpvsMessage::new(
            IpvsCmd::NewService,
            vec![IpvsAttr::Service(vec![
                ServiceAttr::AddressFamily(AF_INET),
                ServiceAttr::Address(v4([192, 0, 2, 100])),
                ServiceAttr::Port(80),
                ServiceAttr::Flags {
                    flags: 1,
                    mask: u32::MAX,
                },
            ])],
        ),
        0x1c,
    );
    // genlmsghdr: cmd NEW_SERVICE (1), version 1.
    assert_eq!(&bytes[16..18], &[IPVS_CMD_NEW_SERVICE, IPVS_GENL_VERSION]);
    // Nested IPVS_CMD_ATTR_SERVICE without NLA_F_NESTED, as ipvsadm and the kernel send it.
    assert_eq!(u16::from_ne_bytes([bytes[22], bytes[23]]), IPVS_CMD_ATTR_SERVICE);
    let inner = &bytes[24..];
    // AF: len 6 (+2 pad), type 1, value 2.
    assert_eq!(&inner[..8], &[6, 0, 1, 0, 2, 0, 0, 0]);
    // ADDR: 16 bytes, IPv4 first.
    assert_eq!(&inner[8..12], &[20, 0, 3, 0]);
    assert_eq!(&inner[12..28], &v4([192, 0, 2, 100]));
    // PORT: network byte order.
    assert_eq!(&inner[28..34], &[6, 0, 4, 0, 0, 80]);
    // FLAGS: struct ip_vs_flags { flags, mask }.
    assert_eq!(&inner[36..40], &[12, 0, 7, 0]);
    assert_eq!(&inner[40..48], &[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
}

#[test]
fn stats_widths() {
    let bytes = roundtrip(IpvsMessage::new(
        IpvsCmd::NewService,
        vec![IpvsAttr::Service(vec![ServiceAttr::Stats(vec![
            StatsAttr::Conns(1),
            StatsAttr::InBytes(2),
        ])])],
    ));
    // STATS: CONNS is 32 bits (len 8), INBYTES 64 bits (len 12).
    assert_eq!(&bytes[28..32], &[8, 0, 1, 0]);
    assert_eq!(&bytes[36..40], &[12, 0, 4, 0]);
    let bytes = roundtrip(IpvsMessage::new(
        IpvsCmd::NewService,
        vec![IpvsAttr::Service(vec![ServiceAttr::Stats64(vec![
            StatsAttr::Conns(1),
        ])])],
    ));
    // STATS64: CONNS is 64 bits.
    assert_eq!(&bytes[28..32], &[12, 0, 1, 0]);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let good = emit(
        IpvsMessage::new(
            IpvsCmd::NewDest,
            vec![IpvsAttr::Dest(vec![
                DestAttr::Address(v4([192, 0, 2, 11])),
                DestAttr::Port(80),
            ])],
        ),
        0x1c,
    );
    // Every truncation, and every single-byte corruption of the attribute area.
    for n in 0..good.len() {
        let _ = parse(&good[..n]);
    }
    for i in 16..good.len() {
        for v in [0u8, 0x03, 0x7f, 0xff] {
            let mut b = good.clone();
            b[i] = v;
            let _ = parse(&b);
        }
    }
    // A port of 3 bytes is a located error.
    let mut b = good.clone();
    let port_at = 24 + 20; // nlmsg+genl+dest hdr, then ADDR (20 bytes)
    assert_eq!(&b[port_at..port_at + 4], &[6, 0, 2, 0]);
    b[port_at] = 7;
    let err = parse(&b).unwrap_err();
    assert!(
        err.contains("IPVS_DEST_ATTR_PORT") || err.contains("attributes"),
        "{err}"
    );
    // Unknown command.
    let mut b = good.clone();
    b[16] = 200;
    assert!(parse(&b).unwrap_err().contains("unknown IPVS command"));
}

// ---- ipvsadm captures (tests/data/ipvs, written by vm-tests/capture-ipvsadm) ----------

struct Vector {
    name: String,
    direction: String,
    bytes: Vec<u8>,
}

fn vectors() -> Vec<Vector> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ipvs");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let (mut direction, mut hex) = (None, None);
            for line in text.lines().filter(|l| !l.starts_with('#')) {
                match line.split_once(' ') {
                    Some(("direction", v)) => direction = Some(v.to_string()),
                    Some(("hex", v)) => hex = Some(v.to_string()),
                    _ => {}
                }
            }
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let hex = hex.unwrap_or_else(|| panic!("{name}: no hex"));
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            Vector {
                direction: direction.unwrap_or_else(|| panic!("{name}: no direction")),
                name,
                bytes,
            }
        })
        .collect()
}

fn decode(v: &Vector) -> (NetlinkHeader, GenlMessage<IpvsMessage>) {
    let nl = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(&v.bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", v.name));
    match nl.payload {
        NetlinkPayload::InnerMessage(g) => (nl.header, g),
        other => panic!("{}: not an IPVS message: {other:?}", v.name),
    }
}

/// The attributes the codec did not recognise (`Other`), as paths.
fn unknown_attrs(msg: &IpvsMessage) -> Vec<String> {
    fn stats(path: &str, s: &[StatsAttr], out: &mut Vec<String>) {
        for a in s {
            if let StatsAttr::Other(n) = a {
                out.push(format!("{path}/{}", n.kind()));
            }
        }
    }
    use netlink_packet_core::Nla;
    let mut out = Vec::new();
    for attr in &msg.attrs {
        match attr {
            IpvsAttr::Other(n) => out.push(format!("{}", n.kind())),
            IpvsAttr::Service(a) => {
                for s in a {
                    match s {
                        ServiceAttr::Other(n) => out.push(format!("SERVICE/{}", n.kind())),
                        ServiceAttr::Stats(x) => stats("SERVICE/STATS", x, &mut out),
                        ServiceAttr::Stats64(x) => stats("SERVICE/STATS64", x, &mut out),
                        _ => {}
                    }
                }
            }
            IpvsAttr::Dest(a) => {
                for d in a {
                    match d {
                        DestAttr::Other(n) => out.push(format!("DEST/{}", n.kind())),
                        DestAttr::Stats(x) => stats("DEST/STATS", x, &mut out),
                        DestAttr::Stats64(x) => stats("DEST/STATS64", x, &mut out),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn ipvsadm_captures_parse_fully_and_reemit_byte_for_byte() {
    let all = vectors();
    assert!(all.len() >= 40, "only {} vectors in tests/data/ipvs", all.len());
    let mut problems = Vec::new();
    for v in &all {
        assert!(v.direction == "send" || v.direction == "recv", "{}", v.name);
        let (header, g) = decode(v);
        let unknown = unknown_attrs(&g.payload);
        if !unknown.is_empty() {
            problems.push(format!("{}: unknown attributes {unknown:?}", v.name));
        }
        let mut out = GenlMessage::from_payload(g.payload);
        out.set_resolved_family_id(header.message_type);
        let mut nl = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::InnerMessage(out));
        nl.header.flags = header.flags;
        nl.header.sequence_number = header.sequence_number;
        nl.header.port_number = header.port_number;
        nl.finalize();
        let mut buf = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut buf);
        if buf != v.bytes {
            let at = buf.iter().zip(&v.bytes).position(|(a, b)| a != b);
            problems.push(format!(
                "{}: re-emitted {} bytes, captured {}; first difference at {at:?}",
                v.name,
                buf.len(),
                v.bytes.len()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn msg(name: &str) -> (NetlinkHeader, IpvsMessage) {
    let v = vectors()
        .into_iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no vector {name}"));
    let (h, g) = decode(&v);
    (h, g.payload)
}

fn service_of(m: &IpvsMessage) -> hafront::ipvs::ServiceSpec {
    let attrs = m
        .attrs
        .iter()
        .find_map(|a| match a {
            IpvsAttr::Service(s) => Some(s.clone()),
            _ => None,
        })
        .expect("a service attribute");
    hafront::ipvs::dump::service(&wire(&attrs)).unwrap().0
}

fn dest_of(m: &IpvsMessage, ipv6: bool) -> hafront::ipvs::DestSpec {
    let attrs = m
        .attrs
        .iter()
        .find_map(|a| match a {
            IpvsAttr::Dest(d) => Some(d.clone()),
            _ => None,
        })
        .expect("a destination attribute");
    hafront::ipvs::dump::dest(&wire(&attrs), ipv6).unwrap().0
}

/// Attributes as the kernel reads them (the value of their nest).
fn wire<T: netlink_packet_core::Nla>(attrs: &[T]) -> Vec<u8> {
    use netlink_packet_core::Emitable;
    let mut buf = vec![0; attrs.buffer_len()];
    attrs.emit(&mut buf);
    buf
}

#[test]
fn ipvsadm_captures_decode_to_what_was_asked() {
    use hafront::ipvs::model::TunnelType;
    use hafront::ipvs::{Forward, Protocol, ServiceKey};
    use netlink_packet_core::NLM_F_DUMP;
    let key = |p: Protocol, a: &str| ServiceKey::Addr {
        protocol: p,
        addr: a.parse().unwrap(),
    };

    // ipvsadm -A -t 192.0.2.100:80 -s wrr -p 50 -M 255.255.255.0
    let (h, m) = msg("svc-add-tcp-send1");
    assert_eq!(h.flags, NLM_F_REQUEST | NLM_F_ACK);
    assert_eq!(m.cmd, IpvsCmd::NewService);
    assert!(m.nested_flag, "libnl sets NLA_F_NESTED");
    let s = service_of(&m);
    assert_eq!(s.key, key(Protocol::Tcp, "192.0.2.100:80"));
    assert_eq!(
        (s.scheduler.as_str(), s.flags, s.timeout),
        ("wrr", IP_VS_SVC_F_PERSISTENT, 50)
    );
    assert_eq!(s.netmask.to_ne_bytes(), [255, 255, 255, 0]);
    let IpvsAttr::Service(raw) = &m.attrs[0] else {
        panic!()
    };
    assert!(raw.contains(&ServiceAttr::Flags {
        flags: IP_VS_SVC_F_PERSISTENT,
        mask: u32::MAX
    }));

    let (_, m) = msg("svc-edit-tcp-send1");
    assert_eq!(m.cmd, IpvsCmd::SetService);
    let s = service_of(&m);
    assert_eq!((s.scheduler.as_str(), s.flags), ("rr", 0));

    let s = service_of(&msg("svc-add-udp-ops-send1").1);
    assert_eq!(s.key, key(Protocol::Udp, "192.0.2.100:53"));
    assert_eq!((s.scheduler.as_str(), s.flags), ("lc", IP_VS_SVC_F_ONEPACKET));

    let s = service_of(&msg("svc-add-sctp-sh-send1").1);
    assert_eq!(s.key, key(Protocol::Sctp, "192.0.2.100:3868"));
    assert_eq!(
        (s.scheduler.as_str(), s.flags),
        ("sh", IP_VS_SVC_F_SCHED_SH_FALLBACK | IP_VS_SVC_F_SCHED_SH_PORT)
    );

    let s = service_of(&msg("svc-add-ipv6-mh-send1").1);
    assert_eq!(s.key, key(Protocol::Tcp, "[2001:db8::100]:443"));
    assert_eq!(
        (s.scheduler.as_str(), s.flags, s.timeout, s.netmask),
        ("mh", IP_VS_SVC_F_SCHED_MH_PORT | IP_VS_SVC_F_PERSISTENT, 30, 64)
    );

    let s = service_of(&msg("svc-add-fwmark-send1").1);
    assert_eq!(s.key, ServiceKey::Fwmark { ipv6: false, mark: 5 });
    assert_eq!(s.scheduler, "wlc");
    let s = service_of(&msg("svc-add-fwmark-ipv6-send1").1);
    assert_eq!(s.key, ServiceKey::Fwmark { ipv6: true, mark: 6 });
    assert_eq!((s.scheduler.as_str(), s.netmask), ("dh", 128));

    if vectors().iter().any(|v| v.name == "svc-add-udp-pe-sip-send1") {
        let s = service_of(&msg("svc-add-udp-pe-sip-send1").1);
        assert_eq!(s.pe_name.as_deref(), Some("sip"));
        assert_eq!(s.key, key(Protocol::Udp, "192.0.2.100:5060"));
    }

    // Destinations.
    let (_, m) = msg("dest-add-gate-send1");
    assert_eq!(m.cmd, IpvsCmd::NewDest);
    assert_eq!(service_of(&m).key, key(Protocol::Tcp, "192.0.2.100:80"));
    let d = dest_of(&m, false);
    assert_eq!(
        (d.addr.to_string(), d.forward, d.weight),
        ("192.0.2.11:80".into(), Forward::Dr, 3)
    );
    let d = dest_of(&msg("dest-add-masq-thresh-send1").1, false);
    assert_eq!(
        (
            d.addr.port(),
            d.forward,
            d.weight,
            d.upper_threshold,
            d.lower_threshold
        ),
        (8080, Forward::Nat, 2, 1000, 100)
    );
    let d = dest_of(&msg("dest-add-ipip-send1").1, false);
    assert_eq!((d.forward, d.tunnel_type), (Forward::Tun, TunnelType::Ipip));
    for (name, flags) in [
        ("dest-add-gue-nocsum-send1", IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM),
        ("dest-add-gue-csum-send1", IP_VS_TUNNEL_ENCAP_FLAG_CSUM),
        ("dest-add-gue-remcsum-send1", IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM),
    ] {
        let d = dest_of(&msg(name).1, false);
        assert_eq!(
            (d.forward, d.tunnel_type, d.tunnel_port, d.tunnel_flags),
            (Forward::Tun, TunnelType::Gue, 6080, flags),
            "{name}"
        );
    }
    let d = dest_of(&msg("dest-add-gre-csum-send1").1, false);
    assert_eq!(
        (d.tunnel_type, d.tunnel_flags),
        (TunnelType::Gre, IP_VS_TUNNEL_ENCAP_FLAG_CSUM)
    );
    let d = dest_of(&msg("dest-add-ipv6-send1").1, true);
    assert_eq!(
        (d.addr.to_string(), d.forward, d.weight),
        ("[2001:db8::11]:443".into(), Forward::Nat, 5)
    );
    let (_, m) = msg("dest-add-fwmark-ipv6-send1");
    assert_eq!(service_of(&m).key, ServiceKey::Fwmark { ipv6: true, mark: 6 });
    assert_eq!(dest_of(&m, true).addr.to_string(), "[2001:db8::21]:0");
    let (_, m) = msg("dest-edit-gate-send1");
    assert_eq!(m.cmd, IpvsCmd::SetDest);
    let d = dest_of(&m, false);
    assert_eq!((d.weight, d.upper_threshold, d.lower_threshold), (7, 50, 5));
    let (_, m) = msg("dest-del-send1");
    assert_eq!(m.cmd, IpvsCmd::DelDest);
    assert_eq!(dest_of(&m, false).addr.to_string(), "192.0.2.12:8080");
    let (_, m) = msg("svc-del-ipv6-send1");
    assert_eq!(m.cmd, IpvsCmd::DelService);
    assert_eq!(service_of(&m).key, key(Protocol::Tcp, "[2001:db8::100]:443"));

    // Timeouts, info, zero, flush, sync daemon.
    let (_, m) = msg("set-timeouts-send1");
    assert_eq!(
        (m.cmd, m.attrs.as_slice()),
        (
            IpvsCmd::SetConfig,
            &[
                IpvsAttr::TimeoutTcp(900),
                IpvsAttr::TimeoutTcpFin(120),
                IpvsAttr::TimeoutUdp(300)
            ][..]
        )
    );
    let (_, m) = msg("list-timeout-recv1");
    assert_eq!(m.cmd, IpvsCmd::SetConfig);
    assert!(m.attrs.contains(&IpvsAttr::TimeoutTcpFin(120)));
    let (_, m) = msg("list-empty-recv1");
    assert_eq!(m.cmd, IpvsCmd::SetInfo);
    assert!(m.attrs.contains(&IpvsAttr::InfoVersion(0x010201)));
    let (h, m) = msg("list-empty-send2");
    assert_eq!((m.cmd, h.flags & NLM_F_DUMP), (IpvsCmd::GetService, NLM_F_DUMP));
    assert_eq!(msg("zero-all-send1").1, IpvsMessage::new(IpvsCmd::Zero, vec![]));
    assert_eq!(msg("flush-send1").1, IpvsMessage::new(IpvsCmd::Flush, vec![]));
    let (_, m) = msg("zero-one-send1");
    assert_eq!(
        (m.cmd, service_of(&m).key),
        (IpvsCmd::Zero, key(Protocol::Tcp, "203.0.113.1:80"))
    );
    // Sync daemon: what hafront sends is what ipvsadm sent, byte for byte, and the
    // kernel's GET_DAEMON answer decodes to the daemon with the kernel's defaults.
    let started = SyncDaemon {
        role: SyncRole::Master,
        interface: "br0".into(),
        sync_id: 7,
        max_len: None,
        group: None,
        port: None,
        ttl: None,
    };
    let (h, m) = msg("daemon-start-send1");
    assert_eq!(m.cmd, IpvsCmd::NewDaemon);
    let mut ours = sync::new_daemon(&started);
    ours.nested_flag = m.nested_flag;
    assert_eq!(ours, m);
    let IpvsAttr::Daemon(d) = &m.attrs[0] else {
        panic!("{m:?}")
    };
    assert_eq!(SyncDaemon::from_attrs(d).unwrap(), started);
    let v = vectors()
        .into_iter()
        .find(|v| v.name == "daemon-start-send1")
        .unwrap();
    let mut g = GenlMessage::from_payload(ours);
    g.set_resolved_family_id(h.message_type);
    let mut nl = NetlinkMessage::new(h, NetlinkPayload::InnerMessage(g));
    nl.finalize();
    let mut buf = vec![0u8; nl.buffer_len()];
    nl.serialize(&mut buf);
    assert_eq!(buf, v.bytes, "NEW_DAEMON differs from ipvsadm's");
    let (_, m) = msg("list-daemon-send1");
    assert_eq!(m, sync::get_daemon());
    let (_, m) = msg("list-daemon-recv1");
    assert_eq!(
        sync::daemons(&[m]).unwrap(),
        vec![SyncDaemon {
            max_len: Some(1472),
            group: Some("224.0.0.81".parse().unwrap()),
            port: Some(8848),
            ttl: Some(1),
            ..started.clone()
        }]
    );
    let (_, m) = msg("daemon-stop-send1");
    assert_eq!(m.cmd, IpvsCmd::DelDaemon);
    let IpvsAttr::Daemon(d) = &m.attrs[0] else {
        panic!("{m:?}")
    };
    assert_eq!(d[0], DaemonAttr::State(IP_VS_STATE_MASTER));
    assert_eq!(
        sync::del_daemon(SyncRole::Master).attrs[0],
        IpvsAttr::Daemon(vec![d[0].clone()])
    );

    // Dumps: the kernel's replies carry what was configured, and the counters of the
    // service that saw traffic.
    let mut services = Vec::new();
    let mut dests = Vec::new();
    let mut traffic = None;
    for v in vectors().iter().filter(|v| v.name.starts_with("list-recv")) {
        let (h, m) = decode(v);
        assert_eq!(
            h.flags & netlink_packet_core::NLM_F_MULTIPART,
            netlink_packet_core::NLM_F_MULTIPART
        );
        assert!(!m.payload.nested_flag, "the kernel's dumps have no NLA_F_NESTED");
        // Read in place, as the reconciler does, from the captured bytes.
        let payload = &v.bytes[20..];
        let nested = |kind| hafront::ipvs::dump::nested(payload, kind).unwrap();
        if let Some(attrs) = nested(IPVS_CMD_ATTR_SERVICE) {
            let (spec, stats) = hafront::ipvs::dump::service(attrs).unwrap();
            if spec.key == key(Protocol::Tcp, "203.0.113.1:80") {
                traffic = Some(stats);
            }
            services.push(spec);
        } else if let Some(attrs) = nested(IPVS_CMD_ATTR_DEST) {
            dests.push(hafront::ipvs::dump::dest(attrs, false).unwrap().0);
        } else {
            panic!("{}: {:?}", v.name, m.payload.attrs);
        }
    }
    let tcp = services
        .iter()
        .find(|s| s.key == key(Protocol::Tcp, "192.0.2.100:80"))
        .expect("the TCP service in the dump");
    assert_eq!((tcp.scheduler.as_str(), tcp.flags), ("rr", 0));
    let sctp = services
        .iter()
        .find(|s| s.key == key(Protocol::Sctp, "192.0.2.100:3868"))
        .expect("the SCTP service in the dump");
    assert_eq!(
        sctp.flags,
        IP_VS_SVC_F_SCHED_SH_FALLBACK | IP_VS_SVC_F_SCHED_SH_PORT
    );
    assert!(services
        .iter()
        .any(|s| s.key == ServiceKey::Fwmark { ipv6: true, mark: 6 }));
    let gue = dests
        .iter()
        .find(|d| d.addr.to_string() == "192.0.2.14:80")
        .expect("the GUE real server in the dump");
    assert_eq!(
        (gue.tunnel_type, gue.tunnel_port, gue.tunnel_flags),
        (TunnelType::Gue, 6081, IP_VS_TUNNEL_ENCAP_FLAG_CSUM)
    );
    let gate = dests
        .iter()
        .find(|d| d.addr.to_string() == "192.0.2.11:80")
        .expect("the edited real server in the dump");
    assert_eq!((gate.weight, gate.upper_threshold), (7, 50));
    let traffic = traffic.expect("the NAT service with traffic in the dump");
    assert!(
        traffic.conns > 0 && traffic.in_bytes > 0 && traffic.out_pkts > 0,
        "{traffic:?}"
    );
}

/// What the in-place reader (dump.rs) makes of a reply's payload, for comparing.
fn read_in_place(payload: &[u8]) -> String {
    use hafront::ipvs::dump::{self, EntryError};
    let show = |r: Result<String, EntryError>| match r {
        Ok(v) => v,
        Err(EntryError::Unsupported(e)) => format!("unsupported: {e}"),
        Err(EntryError::Malformed(_)) => "malformed".into(),
    };
    match (
        dump::nested(payload, IPVS_CMD_ATTR_SERVICE),
        dump::nested(payload, IPVS_CMD_ATTR_DEST),
    ) {
        (Err(_), _) | (_, Err(_)) => "malformed".into(),
        (Ok(Some(s)), _) => show(dump::service(s).map(|v| format!("{v:?}"))),
        (_, Ok(Some(d))) => show(dump::dest(d, false).map(|v| format!("{v:?}"))),
        (Ok(None), Ok(None)) => "nothing".into(),
    }
}

/// The reconciler reads dumps in place (dump.rs), not through the codec. On every
/// captured dump reply, and on mutations of them (a byte set, a length cut), it
/// never panics, and whenever the codec parses a reply, reading the codec's
/// re-emitted attributes gives what reading the bytes themselves gives.
#[test]
fn in_place_dump_reader_agrees_with_the_codec() {
    let replies: Vec<Vector> = vectors()
        .into_iter()
        .filter(|v| v.direction == "recv" && v.name.starts_with("list") && !v.name.starts_with("list-empty"))
        .filter(|v| !v.name.starts_with("list-daemon") && !v.name.starts_with("list-timeout"))
        .collect();
    assert!(replies.len() > 40, "{} dump replies", replies.len());
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut agreed, mut refused) = (0, 0);
    for v in &replies {
        let original = read_in_place(&v.bytes[20..]);
        assert!(
            !original.starts_with("malformed")
                && !original.starts_with("unsupported")
                && original != "nothing",
            "{}: {original}",
            v.name
        );
        for round in 0..400 {
            let mut bytes = v.bytes.clone();
            if round > 0 {
                let at = 20 + (next() as usize) % (bytes.len() - 20);
                if round % 4 == 0 {
                    // Cut the message short (the netlink length follows).
                    bytes.truncate(at);
                    let len = (bytes.len() as u32).to_ne_bytes();
                    bytes[..4].copy_from_slice(&len);
                } else {
                    bytes[at] = next() as u8;
                }
            }
            let in_place = read_in_place(&bytes[20..]);
            match parse(&bytes) {
                Ok(m) => {
                    let via_codec = read_in_place(&wire(&m.attrs));
                    assert_eq!(in_place, via_codec, "{} round {round}: {bytes:02x?}", v.name);
                    agreed += 1;
                }
                Err(_) => refused += 1,
            }
        }
    }
    // Both kinds of outcome were exercised.
    assert!(
        agreed > 1000 && refused > 1000,
        "agreed {agreed}, refused {refused}"
    );
}
