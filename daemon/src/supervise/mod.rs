//! Supervision of the web server (nginx, httpd) or any long-running command
//! (`[services.NAME]`): one task per service starts it as a child in its own
//! process group, and its death (SIGCHLD, or a pidfd for an adopted process) is
//! a tracking event at once, so the VIP moves without waiting for a poll.
//! Services with `run_on = "master"` follow an instance's role.

pub mod process;
mod runner;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::info;

use crate::config::services::ServiceConfig;
use crate::config::Config;
use crate::shared::Roles;
use runner::{Cmd, Runner};

/// A change of a service, for tracking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEvent {
    pub name: String,
    pub up: bool,
    /// Past its restart limit: a fault for its trackers whatever the weight.
    pub failed: bool,
    pub reason: String,
}

/// A service as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceStatus {
    pub kind: &'static str,
    /// starting, running, backoff, failed, stopping, stopped, down (adopted).
    pub state: &'static str,
    pub pid: Option<u32>,
    pub adopted: bool,
    pub run_on: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub up: bool,
    pub failed: bool,
    pub restarts: u64,
    pub consecutive_failures: u32,
    pub last_exit: Option<String>,
}

pub type Snapshot = BTreeMap<String, ServiceStatus>;

pub struct SupervisorInputs {
    pub config: watch::Receiver<Arc<Config>>,
    pub roles: watch::Receiver<Roles>,
    pub checks: watch::Receiver<crate::shared::Verdicts>,
    pub events: mpsc::UnboundedSender<ServiceEvent>,
    pub status: watch::Sender<Arc<Snapshot>>,
}

/// Stops every service (after the VIPs were released).
pub struct SupervisorHandle {
    stop: oneshot::Sender<oneshot::Sender<()>>,
    stopping: Arc<AtomicBool>,
}

impl SupervisorHandle {
    /// The daemon is stopping: a server that exits now (under systemd the whole
    /// cgroup gets SIGTERM at once) is not restarted.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    pub async fn stop(self, within: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.stop.send(tx).is_ok() {
            let _ = tokio::time::timeout(within, rx).await;
        }
    }
}

pub fn spawn(inputs: SupervisorInputs) -> SupervisorHandle {
    let (stop_tx, stop_rx) = oneshot::channel();
    let stopping = Arc::new(AtomicBool::new(false));
    tokio::spawn(manage(inputs, stop_rx, stopping.clone()));
    SupervisorHandle {
        stop: stop_tx,
        stopping,
    }
}

async fn manage(
    mut inp: SupervisorInputs,
    mut stop: oneshot::Receiver<oneshot::Sender<()>>,
    stopping: Arc<AtomicBool>,
) {
    let mut running: BTreeMap<String, (Arc<ServiceConfig>, mpsc::UnboundedSender<Cmd>)> = BTreeMap::new();
    let cfg = inp.config.borrow_and_update().clone();
    apply(&cfg, &mut running, &inp, false, &stopping);
    // The sender goes away when the daemon stops: then only the stop request counts.
    let mut config_open = true;
    loop {
        tokio::select! {
            r = inp.config.changed(), if config_open => {
                if r.is_err() {
                    config_open = false;
                    continue;
                }
                let cfg = inp.config.borrow_and_update().clone();
                apply(&cfg, &mut running, &inp, true, &stopping);
            }
            done = &mut stop => {
                let mut waits = Vec::new();
                for (name, (_, tx)) in std::mem::take(&mut running) {
                    let (d_tx, d_rx) = oneshot::channel();
                    if tx.send(Cmd::Stop(d_tx)).is_ok() {
                        waits.push((name, d_rx));
                    }
                }
                for (name, rx) in waits {
                    let _ = rx.await;
                    info!(service = name, "supervision ended");
                }
                if let Ok(done) = done {
                    let _ = done.send(());
                }
                return;
            }
        }
    }
}

/// Starts new services, updates changed ones, stops removed ones; on a reload, asks
/// every server to reload if its configuration file changed.
fn apply(
    cfg: &Config,
    running: &mut BTreeMap<String, (Arc<ServiceConfig>, mpsc::UnboundedSender<Cmd>)>,
    inp: &SupervisorInputs,
    reload: bool,
    stopping: &Arc<AtomicBool>,
) {
    running.retain(|name, (_, tx)| {
        let keep = cfg.services.contains_key(name);
        if !keep {
            info!(
                service = name.as_str(),
                "service removed from the configuration: stopping it"
            );
            let (d, _) = oneshot::channel();
            let _ = tx.send(Cmd::Stop(d));
            let _ = inp.events.send(ServiceEvent {
                name: name.clone(),
                up: true,
                failed: false,
                reason: "removed".into(),
            });
            let n = name.clone();
            inp.status.send_modify(|m| {
                Arc::make_mut(m).remove(&n);
            });
        }
        keep
    });
    for (name, spec) in &cfg.services {
        match running.get_mut(name) {
            Some((old, tx)) => {
                if **old != *spec {
                    *old = Arc::new(spec.clone());
                    let _ = tx.send(Cmd::Update(old.clone()));
                }
                if reload {
                    let _ = tx.send(Cmd::Reload);
                }
            }
            None => {
                let spec = Arc::new(spec.clone());
                let (tx, rx) = mpsc::unbounded_channel();
                let runner = Runner {
                    name: name.clone(),
                    spec: spec.clone(),
                    events: inp.events.clone(),
                    status: inp.status.clone(),
                    roles: inp.roles.clone(),
                    checks: inp.checks.clone(),
                    cmds: rx,
                    restarts: 0,
                    failures: 0,
                    failed: false,
                    config_hash: None,
                    last_exit: None,
                    reported: None,
                    stopping: stopping.clone(),
                };
                tokio::spawn(runner.run());
                running.insert(name.clone(), (spec, tx));
            }
        }
    }
}
