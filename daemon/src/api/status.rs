//! `GET /v1/status`: one JSON document from every snapshot.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::Hub;
use crate::checks::CheckStatus;
use crate::ipvs::reconcile::IpvsSnapshot;
use crate::overrides::Overrides;
use crate::shared::InstanceStatus;
use crate::shared::InstanceTracking;

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

/// One instance in the status: its engine snapshot with its tracking beside.
#[derive(Serialize)]
struct InstanceView<'a> {
    #[serde(flatten)]
    status: &'a InstanceStatus,
    tracking: Option<&'a InstanceTracking>,
    split_brain: crate::splitbrain::SplitBrainStatus,
    /// VIPs repaired (drift) or refused by the kernel; absent when none ever were.
    #[serde(skip_serializing_if = "Option::is_none")]
    vip_faults: Option<crate::net::vip::DriftCount>,
}

/// One anycast group: its state with its tracking beside.
#[derive(Serialize)]
struct AnycastView<'a> {
    #[serde(flatten)]
    status: &'a crate::shared::AnycastStatus,
    tracking: Option<&'a crate::shared::AnycastTracking>,
}

#[derive(Serialize)]
struct Document<'a> {
    node: &'a str,
    pid: u32,
    version: &'static str,
    started_unix: u64,
    uptime_seconds: f64,
    instances: BTreeMap<&'a str, InstanceView<'a>>,
    checks: BTreeMap<String, CheckStatus>,
    scripts: BTreeMap<String, CheckStatus>,
    ipvs: &'a IpvsSnapshot,
    /// Anycast groups (`[anycast.NAME]`); absent when none is configured.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    anycast: BTreeMap<&'a str, AnycastView<'a>>,
    /// The IPVS connection sync daemons and `[ipvs.sysctl]`.
    ipvs_sync: &'a crate::ipvs::syncd::SyncStatus,
    /// Supervised nginx/httpd.
    services: &'a crate::supervise::Snapshot,
    overrides: &'a Overrides,
    /// overrides.json was unusable at start: every instance began in maintenance.
    #[serde(skip_serializing_if = "Option::is_none")]
    overrides_error: Option<&'a str>,
    unknown_vrid_packets: u64,
    /// The last configuration load (start or reload) and its outcome.
    reload: &'a crate::shared::reload::ReloadStatus,
}

/// The status document, serialized straight from the snapshots (no intermediate
/// JSON tree: 255 instances and 1,000 real servers are half a megabyte).
pub fn document(hub: &Hub) -> Vec<u8> {
    with_document(hub, |doc| {
        let mut out = serde_json::to_vec(doc).unwrap_or_default();
        out.push(b'\n');
        out
    })
}

/// The same document as a JSON tree (the status page renders from it).
pub fn value(hub: &Hub) -> serde_json::Value {
    with_document(hub, |doc| serde_json::to_value(doc).unwrap_or_default())
}

fn with_document<R>(hub: &Hub, f: impl FnOnce(&Document) -> R) -> R {
    let engine = hub.engine.borrow().clone();
    let tracking = hub.tracking.borrow().clone();
    let ipvs = hub.ipvs.snapshot();
    let ipvs_sync = hub.ipvs_sync.borrow().clone();
    let overrides = hub.controls.overrides();
    let split_brain = hub.split_brain.borrow().clone();
    let services = hub.services.borrow().clone();
    let reload = hub.reload.borrow().clone();
    let anycast = hub.anycast.borrow().clone();
    let (checks, scripts) = checks(hub);
    let mut drift = hub.vip_drift.snapshot();
    let uptime = SystemTime::now()
        .duration_since(hub.started)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let doc = Document {
        node: &hub.node,
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION"),
        started_unix: hub
            .started
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        uptime_seconds: (uptime * 10.0).round() / 10.0,
        instances: engine
            .instances
            .iter()
            .map(|(name, status)| {
                (
                    name.as_str(),
                    InstanceView {
                        status,
                        tracking: tracking.instances.get(name),
                        split_brain: split_brain.get(name).cloned().unwrap_or_default(),
                        vip_faults: drift.remove(name),
                    },
                )
            })
            .collect(),
        checks,
        scripts,
        ipvs: &ipvs,
        anycast: anycast
            .groups
            .iter()
            .map(|(name, status)| {
                (
                    name.as_str(),
                    AnycastView {
                        status,
                        tracking: tracking.anycast.get(name),
                    },
                )
            })
            .collect(),
        ipvs_sync: &ipvs_sync,
        services: &services,
        overrides: &overrides,
        overrides_error: hub.overrides_error.as_deref(),
        unknown_vrid_packets: engine.unknown_vrid_packets,
        reload: &reload,
    };
    f(&doc)
}
