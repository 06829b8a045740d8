//! What the last configuration reload did, for `/v1/status`, `hafront status` and
//! `/metrics`: a rejected reload keeps the running configuration, and monitoring
//! must be able to see that the files on disk are not what runs.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// The `reload` field of the status. The start counts as the first successful load
/// (Prometheus' `prometheus_config_last_reload_*` do the same).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReloadStatus {
    /// When the last load (start or reload) finished, Unix ms.
    pub last_unix_ms: u64,
    /// What asked for it: `start`, `SIGHUP` or `API`.
    pub by: &'static str,
    /// Whether it was applied.
    pub successful: bool,
    /// Why it was rejected (the loader's message, naming file/variable and key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When a configuration was last applied (start or reload), Unix ms.
    pub last_success_unix_ms: u64,
}

pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl ReloadStatus {
    pub fn started(at_unix_ms: u64) -> ReloadStatus {
        ReloadStatus {
            last_unix_ms: at_unix_ms,
            by: "start",
            successful: true,
            error: None,
            last_success_unix_ms: at_unix_ms,
        }
    }

    /// The status after a reload by `by` with this outcome.
    pub fn after(&self, by: &'static str, outcome: &Result<(), String>, at_unix_ms: u64) -> ReloadStatus {
        ReloadStatus {
            last_unix_ms: at_unix_ms,
            by,
            successful: outcome.is_ok(),
            error: outcome.as_ref().err().cloned(),
            last_success_unix_ms: if outcome.is_ok() {
                at_unix_ms
            } else {
                self.last_success_unix_ms
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_reload_keeps_the_last_success_time() {
        let s = ReloadStatus::started(1_000);
        let failed = s.after("SIGHUP", &Err("bad.toml: line 3".into()), 2_000);
        assert!(!failed.successful);
        assert_eq!(failed.error.as_deref(), Some("bad.toml: line 3"));
        assert_eq!((failed.last_unix_ms, failed.last_success_unix_ms), (2_000, 1_000));
        let ok = failed.after("API", &Ok(()), 3_000);
        assert!(ok.successful && ok.error.is_none());
        assert_eq!(ok.last_success_unix_ms, 3_000);
    }
}
