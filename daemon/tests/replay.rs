//! Replay tests of the sans-IO VRRP instance.
//!
//! Each directory under tests/replay/ holds:
//! - `params.json`: overrides merged onto the default parameters below;
//! - `input.jsonl`: one step a line, either a core `Input` (`startup`, `shutdown`,
//!   `timer`, `packet`, `reconfigure`) or `advert`, a structured advertisement that
//!   this harness encodes (optionally damaged with `mangle`);
//! - `output.jsonl`: the golden outputs, one line per input line, then the final
//!   state and counters.
//!
//! `HAFRONT_REGEN=1 cargo test --test replay` rewrites the goldens for review.

use std::net::IpAddr;
use std::path::Path;

use hafront::vrrp::instance::{Input, Instance, Params};
use hafront::vrrp::packet::{Advert, ChecksumMode, PacketAddrs, MCAST_V4, MCAST_V6};
use serde::Deserialize;
use serde_json::{json, Value};

#[path = "../../crates/vrrp/tests/common/mod.rs"]
mod common;
use common::{default_params, merge};

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Step {
    Advert {
        src: IpAddr,
        #[serde(default)]
        dst: Option<IpAddr>,
        #[serde(default = "ttl255")]
        ttl: u8,
        advert: Advert,
        #[serde(default)]
        mangle: Option<Mangle>,
    },
    #[serde(untagged)]
    Core(Input),
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mangle {
    Checksum,
    Truncate(usize),
    /// Sets byte N to the value.
    Byte(usize, u8),
}

fn ttl255() -> u8 {
    255
}

fn to_input(step: Step) -> Input {
    match step {
        Step::Core(i) => i,
        Step::Advert {
            src,
            dst,
            ttl,
            advert,
            mangle,
        } => {
            let dst = dst.unwrap_or(match src {
                IpAddr::V4(_) => IpAddr::V4(MCAST_V4),
                IpAddr::V6(_) => IpAddr::V6(MCAST_V6),
            });
            let mut payload = advert
                .encode(PacketAddrs { src, dst }, ChecksumMode::Rfc)
                .expect("encodable advert in test input");
            match mangle {
                Some(Mangle::Checksum) => payload[7] ^= 0x55,
                Some(Mangle::Truncate(n)) => payload.truncate(n),
                Some(Mangle::Byte(i, v)) => payload[i] = v,
                None => {}
            }
            Input::Packet {
                src,
                dst,
                ttl,
                payload,
                wall_ns: 0,
            }
        }
    }
}

fn run_case(dir: &Path) -> String {
    let mut params = default_params("web");
    if let Ok(text) = std::fs::read_to_string(dir.join("params.json")) {
        let over: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: params.json: {e}", dir.display()));
        merge(&mut params, &over);
    }
    let params: Params =
        serde_json::from_value(params).unwrap_or_else(|e| panic!("{}: params: {e}", dir.display()));
    let mut inst = Instance::new(params);
    let input = std::fs::read_to_string(dir.join("input.jsonl")).expect("input.jsonl");
    let mut golden = String::new();
    for (n, line) in input.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with("//") {
            continue;
        }
        let step: Step =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{}:{}: {e}", dir.display(), n + 1));
        let outputs = inst.handle(to_input(step));
        golden.push_str(&serde_json::to_string(&json!({"line": n + 1, "out": outputs})).unwrap());
        golden.push('\n');
    }
    let fin = json!({"final": {"state": inst.state(), "master": inst.master(), "counters": inst.counters()}});
    golden.push_str(&serde_json::to_string(&fin).unwrap());
    golden.push('\n');
    golden
}

#[test]
fn replay_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/replay");
    let regen = std::env::var_os("HAFRONT_REGEN").is_some();
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 10, "replay cases missing under {}", root.display());
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
        "replay cases differ from goldens: {failed:?} (HAFRONT_REGEN=1 rewrites them)"
    );
}
