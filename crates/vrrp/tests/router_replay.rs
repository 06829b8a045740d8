//! Replay tests of the router: several instances on several sockets, VRID
//! demultiplexing, our own packets, destinations and checksum modes of adverts,
//! sync groups (holo-vrrp's topology tests are the model).
//!
//! Each directory under tests/router/ holds:
//! - `topology.json`: `{ "instances": { NAME: { "socket": N, "params": {...},
//!   "sync_peers": [...] } } }`, params merged onto the defaults below (added in
//!   name order, ids 0, 1, ...);
//! - `input.jsonl`: one step a line: `{"to": NAME, "input": <core Input>}`, or
//!   `{"packet": {"socket": N, "src": IP, "dst"?: IP, "ttl"?: 255, "advert": {...}}}`
//!   (encoded here, RFC checksum) or with `"payload": HEX` instead of `advert`;
//! - `output.jsonl`: the golden outputs (instance name, routed output), one line
//!   per input line, then every instance's final state and the unknown-VRID count.
//!
//! `HAFRONT_REGEN=1 cargo test -p hafront-vrrp --test router_replay` rewrites the
//! goldens for review.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use hafront_vrrp::instance::{Input, Params};
use hafront_vrrp::packet::{Advert, ChecksumMode, PacketAddrs, MCAST_V4, MCAST_V6};
use hafront_vrrp::{Delivery, Router};
use serde::Deserialize;
use serde_json::{json, Value};

mod common;
use common::{default_params, merge};

#[derive(Deserialize)]
struct Topology {
    instances: BTreeMap<String, Node>,
}

#[derive(Deserialize)]
struct Node {
    socket: u32,
    #[serde(default)]
    params: Value,
    #[serde(default)]
    sync_peers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Step {
    Feed { to: String, input: Input },
    Packet { packet: Packet },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Packet {
    socket: u32,
    src: IpAddr,
    #[serde(default)]
    dst: Option<IpAddr>,
    #[serde(default = "ttl255")]
    ttl: u8,
    #[serde(default)]
    advert: Option<Advert>,
    #[serde(default)]
    payload: Option<String>,
}

fn ttl255() -> u8 {
    255
}

fn run_case(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("topology.json")).expect("topology.json");
    let topo: Topology =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: topology: {e}", dir.display()));
    let mut router: Router<usize, u32> = Router::new();
    let names: Vec<String> = topo.instances.keys().cloned().collect();
    for (id, (name, node)) in topo.instances.iter().enumerate() {
        let mut params = default_params(name);
        merge(&mut params, &node.params);
        if !node.sync_peers.is_empty() {
            params["synced"] = json!(true);
        }
        let params: Params = serde_json::from_value(params)
            .unwrap_or_else(|e| panic!("{}: {name}: params: {e}", dir.display()));
        router.add(id, name, node.socket, params, node.sync_peers.clone());
    }
    let id_of = |name: &str| {
        names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("{}: no instance {name:?}", dir.display()))
    };
    let input = std::fs::read_to_string(dir.join("input.jsonl")).expect("input.jsonl");
    let mut golden = String::new();
    for (n, line) in input.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with("//") {
            continue;
        }
        let step: Step =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{}:{}: {e}", dir.display(), n + 1));
        let (delivery, routed) = match step {
            Step::Feed { to, input } => (None, router.handle(id_of(&to), input)),
            Step::Packet { packet: p } => {
                let dst = p.dst.unwrap_or(match p.src {
                    IpAddr::V4(_) => IpAddr::V4(MCAST_V4),
                    IpAddr::V6(_) => IpAddr::V6(MCAST_V6),
                });
                let payload = match (&p.advert, &p.payload) {
                    (Some(a), None) => a
                        .encode(PacketAddrs { src: p.src, dst }, ChecksumMode::Rfc)
                        .expect("encodable advert in test input"),
                    (None, Some(hex)) => hafront_vrrp::hex::decode(hex).expect("hex payload"),
                    _ => panic!("{}:{}: give advert or payload", dir.display(), n + 1),
                };
                let (d, routed) = router.packet(p.socket, p.src, dst, p.ttl, payload);
                let d = match d {
                    Delivery::To(id) => json!({"to": names[id]}),
                    Delivery::Own => json!("own"),
                    Delivery::UnknownVrid(v) => json!({"unknown_vrid": v}),
                };
                (Some(d), routed)
            }
        };
        let out: Vec<Value> = routed.iter().map(|(id, r)| json!([names[*id], r])).collect();
        let mut line = json!({"line": n + 1, "out": out});
        if let Some(d) = delivery {
            line["delivery"] = d;
        }
        golden.push_str(&serde_json::to_string(&line).unwrap());
        golden.push('\n');
    }
    let states: BTreeMap<&str, Value> = names
        .iter()
        .enumerate()
        .map(|(id, name)| {
            let i = router.instance(id).expect("instance");
            (
                name.as_str(),
                json!({"state": i.state(), "master": i.master(), "priority": i.priority()}),
            )
        })
        .collect();
    let fin = json!({"final": states, "unknown_vrid": router.unknown_vrid()});
    golden.push_str(&serde_json::to_string(&fin).unwrap());
    golden.push('\n');
    golden
}

#[test]
fn router_replay_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/router");
    let regen = std::env::var_os("HAFRONT_REGEN").is_some();
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 4,
        "router replay cases missing under {}",
        root.display()
    );
    let mut failed = Vec::new();
    for dir in &dirs {
        let got = run_case(dir);
        let golden = dir.join("output.jsonl");
        if regen {
            std::fs::write(&golden, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if want != got {
            eprintln!("--- {} differs\nwant:\n{want}\ngot:\n{got}", dir.display());
            failed.push(dir.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(
        failed.is_empty(),
        "router replay cases differ from goldens: {failed:?} (HAFRONT_REGEN=1 rewrites them)"
    );
}
