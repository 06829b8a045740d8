//! What the replay harnesses share (this crate's router replays, the daemon's
//! instance replays in daemon/tests/replay.rs, which includes this file).

use serde_json::{json, Value};

/// The parameters every case starts from; a case overrides some of them.
pub fn default_params(name: &str) -> Value {
    json!({
        "name": name,
        "version": 3,
        "vrid": 51,
        "priority": 100,
        "interval_cs": 100,
        "vips": ["192.0.2.100/24"],
        "preempt": true,
        "preempt_delay_ms": 0,
        "primary": "192.0.2.1",
        "unicast_peers": [],
        "checksum_compat": false,
        "garp": {"master_burst": 5, "master_delay_ms": 5000, "master_repeat": 5, "refresh_ms": null, "lower_prio_burst": true}
    })
}

/// Merges `over` into `base`, objects key by key.
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}
