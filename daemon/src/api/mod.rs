//! The HTTP API (hyper, HTTP/1.1): on a Unix socket (mode 0660) and optionally on
//! TCP. Reads come from snapshots the tasks publish (watch channels), so a
//! request never waits for, or delays, the VRRP engine; writes go through
//! [`Controls`], which persists an override before it takes effect.
//!
//! Routes (JSON unless said otherwise):
//! - `GET /healthz`, `GET /v1/status`, `GET /metrics` (Prometheus text);
//! - `GET /status`: the status page (HTML; `/status/live`, `/status/page.css`,
//!   `/status/page.js` are its parts), see [`page`];
//! - `GET /v1/events` (`?format=jsonl`): the event stream (server-sent events);
//! - `POST /v1/instances/{name}/maintenance` `{"enabled": bool}`;
//! - `POST /v1/instances/{name}/priority` `{"priority": 1..254 | null}`;
//! - `POST /v1/ipvs/services/{name}/real-servers/{addr}`
//!   `{"enabled": bool, "weight": u32 | null}` (either or both);
//! - `POST /v1/reload`.

pub mod client;
pub mod controls;
pub mod error;
pub mod events;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod page;
pub mod status;

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;

use crate::checks::CheckerSlot;
use crate::config::Config;
use crate::ipvs::reconcile::IpvsStatus;
use crate::shared::EngineSnapshot;
use crate::shared::TrackingSnapshot;

pub use controls::Controls;
pub use error::ApiError;

/// Everything the API reads.
#[derive(Clone)]
pub struct Hub {
    pub node: String,
    pub started: SystemTime,
    pub config: watch::Receiver<Arc<Config>>,
    pub engine: watch::Receiver<Arc<EngineSnapshot>>,
    pub tracking: watch::Receiver<Arc<TrackingSnapshot>>,
    /// Built when asked (an event does not build it).
    pub ipvs: IpvsStatus,
    /// The IPVS sync daemons and `[ipvs.sysctl]`.
    pub ipvs_sync: watch::Receiver<Arc<crate::ipvs::syncd::SyncStatus>>,
    pub services: watch::Receiver<Arc<crate::supervise::Snapshot>>,
    pub split_brain: watch::Receiver<Arc<crate::splitbrain::Snapshot>>,
    /// The last configuration reload's outcome.
    pub reload: watch::Receiver<Arc<crate::shared::reload::ReloadStatus>>,
    /// VIPs repaired after something else changed them.
    pub vip_drift: Arc<crate::net::vip::Drift>,
    /// The notifier and the VIP executor, for what their bounded queues dropped.
    pub notify: crate::notify::Sender,
    pub vips: crate::net::VipSender,
    pub checkers: CheckerSlot,
    /// overrides.json existed but was unusable at start (every instance was put
    /// in maintenance): why.
    pub overrides_error: Option<String>,
    pub controls: Arc<Controls>,
    /// Anycast groups: announced or not, why, BIRD's sessions.
    pub anycast: watch::Receiver<Arc<crate::shared::AnycastSnapshot>>,
}
