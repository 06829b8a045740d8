//! The status file (`<runtime_dir>/status.json`, rewritten atomically on every state
//! change and once a second) and systemd's READY=/STATUS=.

use std::path::PathBuf;

use serde_json::json;
use tracing::warn;

use super::engine::EngineSnapshot;

pub struct StatusWriter {
    dir: PathBuf,
    node: String,
    /// overrides.json was unusable at start (every instance in maintenance).
    overrides_error: Option<String>,
}

impl StatusWriter {
    pub fn new(dir: PathBuf, node: String, overrides_error: Option<String>) -> StatusWriter {
        if let Err(error) = crate::durable::ensure_dir(&dir) {
            warn!(%error, "runtime directory not usable; no status file");
        }
        StatusWriter {
            dir,
            node,
            overrides_error,
        }
    }

    pub fn write(&self, snap: &EngineSnapshot) {
        let instances: serde_json::Map<String, serde_json::Value> = snap
            .instances
            .iter()
            .map(|(n, s)| (n.clone(), serde_json::to_value(s).unwrap_or_default()))
            .collect();
        let mut doc = json!({
            "node": self.node,
            "pid": std::process::id(),
            "instances": instances,
            "unknown_vrid_packets": snap.unknown_vrid_packets,
        });
        if let Some(error) = &self.overrides_error {
            doc["overrides_error"] = json!(error);
        }
        let path = super::status_path(&self.dir);
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        // Owner-only (0600): the status names the node's instances and peers. Not
        // fsynced: rewritten every second, in /run, and written on a state change
        // before the VIPs move (durable::write_runtime).
        if let Err(error) = crate::durable::write_runtime(&path, text.as_bytes()) {
            warn!(%error, "status file not written");
        }
    }

    pub fn remove(&self) {
        let _ = std::fs::remove_file(super::status_path(&self.dir));
    }

    fn summary(snap: &EngineSnapshot) -> String {
        let parts: Vec<String> = snap
            .instances
            .iter()
            .map(|(n, s)| format!("{n}:{}", s.state.as_str()))
            .collect();
        if parts.is_empty() {
            "no instances".into()
        } else {
            parts.join(" ")
        }
    }

    pub fn notify_ready(&self, snap: &EngineSnapshot) {
        let status = Self::summary(snap);
        let _ = sd_notify::notify(&[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status(&status),
        ]);
    }

    pub fn notify_status(&self, snap: &EngineSnapshot) {
        let status = Self::summary(snap);
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Status(&status)]);
    }
}
