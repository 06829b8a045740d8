//! The IPVS generic netlink codec: every attribute both ways, byte layouts the
//! kernel expects, and bad input as errors (never panics). Messages captured from
//! ipvsadm and from the kernel's dumps are in tests/data/ipvs/ (see
//! vm-tests/capture-ipvsadm.sh).

use hafront::ipvs::constants::*;
use hafront::ipvs::message::{IpvsCmd, IpvsMessage};
use hafront::ipvs::nlas::{DestAttr, IpvsAttr, ServiceAttr, StatsAttr};
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
        vec![IpvsAttr::Daemon(vec![DefaultNla::new(1, vec![1, 0, 0, 0])])],
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
