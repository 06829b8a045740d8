//! `GET /v1/status`: one JSON document from every snapshot.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::Hub;
use crate::checks::CheckStatus;

/// Check statuses: checks and tracking scripts (the script checker's names carry
/// a prefix, removed here).
pub fn checks(hub: &Hub) -> (BTreeMap<String, CheckStatus>, BTreeMap<String, CheckStatus>) {
    let handles = hub.checkers.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut checks = BTreeMap::new();
    let mut scripts = BTreeMap::new();
    for (i, h) in handles.iter().enumerate() {
        for (name, st) in h.status() {
            if i == 0 {
                checks.insert(name, st);
            } else {
                let name = name.strip_prefix("script:").unwrap_or(&name).to_string();
                scripts.insert(name, st);
            }
        }
    }
    (checks, scripts)
}

pub fn document(hub: &Hub) -> Value {
    let engine = hub.engine.borrow().clone();
    let tracking = hub.tracking.borrow().clone();
    let ipvs = hub.ipvs.borrow().clone();
    let overrides = hub.controls.overrides();
    let split_brain = hub.split_brain.borrow().clone();
    let mut instances = Map::new();
    for (name, s) in &engine.instances {
        let mut v = serde_json::to_value(s).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            obj.insert(
                "tracking".into(),
                tracking
                    .instances
                    .get(name)
                    .map(|t| serde_json::to_value(t).unwrap_or_default())
                    .unwrap_or(Value::Null),
            );
            obj.insert(
                "split_brain".into(),
                serde_json::to_value(split_brain.get(name).cloned().unwrap_or_default()).unwrap_or_default(),
            );
        }
        instances.insert(name.clone(), v);
    }
    let (checks, scripts) = checks(hub);
    let uptime = SystemTime::now()
        .duration_since(hub.started)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    json!({
        "node": hub.node,
        "pid": std::process::id(),
        "version": env!("CARGO_PKG_VERSION"),
        "started_unix": hub.started.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "uptime_seconds": (uptime * 10.0).round() / 10.0,
        "instances": instances,
        "checks": checks,
        "scripts": scripts,
        "ipvs": *ipvs,
        "services": *hub.services.borrow().clone(),
        "overrides": *overrides,
        "unknown_vrid_packets": engine.unknown_vrid_packets,
    })
}
