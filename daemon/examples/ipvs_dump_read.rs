//! How fast a dump of 10,000 destinations is read, on the host (no kernel needed):
//! replies laid out as Debian 12's kernel sends them (every destination attribute,
//! 32- and 64-bit statistics; ~355 bytes each, as in the VM's dumps), read in place as the reconciler
//! does (ipvs/dump.rs) and, for comparison, through the codec's attribute enums
//! (nlas.rs); then the `Table` built and planned against itself. Median of 9 rounds.
//!
//!     cargo run --release -p hafront --example ipvs_dump_read
use std::time::{Duration, Instant};

use hafront::ipvs::constants::*;
use hafront::ipvs::dump;
use hafront::ipvs::message::{IpvsCmd, IpvsMessage};
use hafront::ipvs::model::{ServiceKey, ServiceSpec, Table};
use hafront::ipvs::nlas::{DestAttr, IpvsAttr, StatsAttr};
use hafront::ipvs::Protocol;
use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_generic::GenlMessage;

const SERVICES: u8 = 100;
const REALS: u8 = 100;

/// A statistics block as ip_vs_genl_fill_stats{,64} lays it out on x86-64 (no
/// padding attributes: the architecture reads unaligned 64-bit values).
fn stats() -> Vec<StatsAttr> {
    let counters: [fn(u64) -> StatsAttr; 10] = [
        StatsAttr::Conns,
        StatsAttr::InPkts,
        StatsAttr::OutPkts,
        StatsAttr::InBytes,
        StatsAttr::OutBytes,
        StatsAttr::Cps,
        StatsAttr::InPps,
        StatsAttr::OutPps,
        StatsAttr::InBps,
        StatsAttr::OutBps,
    ];
    counters.iter().zip(1..).map(|(counter, v)| counter(v)).collect()
}

fn reply(s: u8, r: u8) -> Vec<u8> {
    let mut addr = [0u8; 16];
    addr[..4].copy_from_slice(&[192, 0, 2, r]);
    let _ = s;
    let attrs = vec![
        DestAttr::Address(addr),
        DestAttr::Port(80),
        DestAttr::FwdMethod(IP_VS_CONN_F_MASQ),
        DestAttr::Weight(u32::from(r % 5 + 1)),
        DestAttr::TunnelType(0),
        DestAttr::TunnelPort(0),
        DestAttr::TunnelFlags(0),
        DestAttr::UpperThreshold(0),
        DestAttr::LowerThreshold(0),
        DestAttr::ActiveConns(0),
        DestAttr::InactiveConns(0),
        DestAttr::PersistentConns(0),
        DestAttr::AddressFamily(AF_INET),
        DestAttr::Stats(stats()),
        DestAttr::Stats64(stats()),
    ];
    let mut g = GenlMessage::from_payload(IpvsMessage::new(IpvsCmd::NewDest, vec![IpvsAttr::Dest(attrs)]));
    g.set_resolved_family_id(0x1c);
    let mut nl = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::InnerMessage(g));
    nl.finalize();
    let mut buf = vec![0u8; nl.buffer_len()];
    nl.serialize(&mut buf);
    buf
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let replies: Vec<Vec<Vec<u8>>> = (1..=SERVICES)
        .map(|s| (1..=REALS).map(|r| reply(s, r)).collect())
        .collect();
    let n = usize::from(SERVICES) * usize::from(REALS);
    let (mut in_place, mut codec, mut build, mut plan) = (vec![], vec![], vec![], vec![]);
    for _ in 0..9 {
        let t = Instant::now();
        let mut read = Vec::with_capacity(replies.len());
        for service in &replies {
            let mut dests = Vec::new();
            for m in service {
                let attrs = dump::nested(&m[20..], IPVS_CMD_ATTR_DEST).unwrap().unwrap();
                dests.push(dump::dest(attrs, false).unwrap());
            }
            read.push(dests);
        }
        in_place.push(t.elapsed());

        let t = Instant::now();
        let mut count = 0;
        for m in replies.iter().flatten() {
            let nl = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(m).unwrap();
            let NetlinkPayload::InnerMessage(g) = nl.payload else {
                panic!()
            };
            let IpvsAttr::Dest(attrs) = &g.payload.attrs[0] else {
                panic!()
            };
            count += attrs.len();
        }
        codec.push(t.elapsed());
        assert!(count > n);

        let t = Instant::now();
        let mut table = Table::default();
        for (i, dests) in read.into_iter().enumerate() {
            let addr = format!("198.51.100.{}:80", i + 1).parse().unwrap();
            let spec = ServiceSpec {
                key: ServiceKey::Addr {
                    protocol: Protocol::Tcp,
                    addr,
                },
                scheduler: "wrr".into(),
                flags: 0,
                timeout: 0,
                netmask: ServiceSpec::default_netmask(false),
                pe_name: None,
            };
            table.insert(spec, dests.into_iter().map(|(d, _)| d));
        }
        build.push(t.elapsed());
        let t = Instant::now();
        assert!(hafront::ipvs::plan(&table, &table, &Default::default()).is_empty());
        plan.push(t.elapsed());
    }
    let per = |d: Duration| d.as_nanos() as f64 / n as f64;
    let (i, c) = (median(in_place), median(codec));
    println!("{n} destinations, {} bytes per reply", replies[0][0].len());
    println!(
        "read in place (dump.rs):     {i:>10.2?}  {:6.0} ns per destination",
        per(i)
    );
    println!(
        "parsed by the codec (nlas):  {c:>10.2?}  {:6.0} ns per destination (parse only)",
        per(c)
    );
    println!("build the Table:             {:>10.2?}", median(build));
    println!("plan it against itself:      {:>10.2?}", median(plan));
}
