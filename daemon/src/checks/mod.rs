//! Health checks (keepalived's checkers and vrrp_script): `tcp`, `http`/`https`,
//! `exec`, `ping`, `dns`, `smtp` and `udp` probes, a pure rise/fall state machine,
//! and a scheduler that runs thousands of them on the tokio runtime with bounded
//! concurrency and publishes verdict changes.
//!
//! * `state`: rise/fall per check (sans-IO).
//! * `spec`: a check's configuration compiled for running (also its validation).
//! * `probe`: one async function per kind, `Result<ProbeOk, ProbeError>`.
//! * `scheduler`: [`Checker::spawn`] -> ([`CheckerHandle`], events).
//! * `dns`: the DNS message codec of the dns probe (sans-IO).

pub mod dns;
pub mod probe;
pub mod scheduler;
pub mod spec;
pub mod state;
pub mod tls;

pub use probe::{ProbeError, ProbeOk};
pub use scheduler::{
    BuildError, CheckEvent, CheckStatus, Checker, CheckerHandle, CheckerOptions, ReloadSummary, VerdictHook,
};
pub use spec::{CheckSpec, Digest};
pub use state::{CheckState, Verdict};

/// The checkers (checks, then scripts) once started.
pub type CheckerSlot = std::sync::Arc<std::sync::Mutex<Vec<crate::checks::CheckerHandle>>>;
