//! The IPVS reconciler task: whenever the configuration or the node's VRRP roles
//! change (and every `RESYNC` to catch changes made behind our back), dump the
//! kernel table, plan, execute. Kernel errors are logged with the service named and
//! retried with backoff; nothing here can stop the daemon, and a kernel without
//! IPVS leaves VRRP running with one clear error.
//!
//! Which services hafront owns survives restarts in `<runtime_dir>/ipvs-owned.json`,
//! so a service removed from the configuration while hafront was down is still
//! removed, and services created by others are never touched.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tracing::{debug, error, info, warn};

use super::desired::{desired_table, Health, Roles};
use super::error::IpvsError;
use super::io::Ipvs;
use super::model::{ServiceKey, Table};
use super::plan::{plan, Op};
use crate::config::ipvs::IpvsConfig;

const RESYNC: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

pub struct ReconcilerInputs {
    pub config: watch::Receiver<Arc<IpvsConfig>>,
    /// The node's VRRP roles.
    pub roles: watch::Receiver<Roles>,
    /// Health-check verdicts by check name (real servers with `check`); a check
    /// without a verdict yet counts as up, as keepalived starts real servers.
    pub checks: watch::Receiver<std::collections::BTreeMap<String, Health>>,
    pub runtime_dir: PathBuf,
    /// Asked at shutdown: remove what we own, then answer.
    pub stop: oneshot::Receiver<oneshot::Sender<()>>,
}

/// Outcome of one pass, for logs and tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pass {
    pub applied: usize,
    pub failed: usize,
}

pub async fn run(mut inp: ReconcilerInputs) {
    let owned_path = inp.runtime_dir.join("ipvs-owned.json");
    let mut owned: BTreeSet<ServiceKey> = std::fs::read(&owned_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut ipvs: Option<Ipvs> = None;
    let mut backoff = BACKOFF_MIN;
    let mut unavailable_logged = false;
    let (mut config_open, mut roles_open, mut checks_open) = (true, true, true);
    loop {
        let cfg = inp.config.borrow_and_update().clone();
        let roles = inp.roles.borrow_and_update().clone();
        let checks = inp.checks.borrow_and_update().clone();
        let health = |_: &str, rs: &crate::config::ipvs::RealServerConfig| match &rs.check {
            Some(c) => checks.get(c).copied().unwrap_or(Health::UP),
            None => Health::UP,
        };
        let desired = |actual: &Table| desired_table(&cfg, &roles, actual, health);
        let wait = if cfg.services.is_empty() && owned.is_empty() {
            // Nothing to manage: do not even require IPVS.
            None
        } else {
            match sync(&mut ipvs, desired, &mut owned).await {
                Ok(pass) => {
                    unavailable_logged = false;
                    save_owned(&owned_path, &owned);
                    if pass.failed > 0 {
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        Some(backoff)
                    } else {
                        backoff = BACKOFF_MIN;
                        Some(RESYNC)
                    }
                }
                Err(IpvsError::Unavailable) => {
                    if !unavailable_logged {
                        error!(error = %IpvsError::Unavailable, "IPVS is off; VRRP keeps running, will retry");
                        unavailable_logged = true;
                    }
                    ipvs = None;
                    Some(BACKOFF_MAX)
                }
                Err(e) => {
                    warn!(error = %e, "IPVS reconcile failed, will retry");
                    ipvs = None;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    Some(backoff)
                }
            }
        };
        let sleep = async {
            match wait {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // A closed channel (the signal task ends at SIGTERM) is no reason to stop:
            // the stop request that removes our services is still to come.
            r = inp.config.changed(), if config_open => config_open = r.is_ok(),
            r = inp.roles.changed(), if roles_open => roles_open = r.is_ok(),
            r = inp.checks.changed(), if checks_open => checks_open = r.is_ok(),
            _ = sleep => {}
            reply = &mut inp.stop => {
                // Only on request: a dropped sender means the daemon failed, and
                // its services are better left serving than torn down.
                let Ok(done) = reply else { return };
                if !owned.is_empty() {
                    info!(services = owned.len(), "removing IPVS services");
                    let _ = sync(&mut ipvs, |_| Table::default(), &mut owned).await;
                    save_owned(&owned_path, &owned);
                }
                let _ = done.send(());
                return;
            }
        }
    }
}

/// One reconcile pass: dump, plan, execute. Individual op failures are logged and
/// counted (the next pass retries them); connection-level failures are returned.
async fn sync(
    ipvs: &mut Option<Ipvs>,
    desired: impl Fn(&Table) -> Table,
    owned: &mut BTreeSet<ServiceKey>,
) -> Result<Pass, IpvsError> {
    if ipvs.is_none() {
        let mut conn = Ipvs::connect().await?;
        if let Ok(info) = conn.info().await {
            info!(
                version = format!(
                    "{}.{}.{}",
                    info.version >> 16,
                    (info.version >> 8) & 0xff,
                    info.version & 0xff
                ),
                conn_tab_size = info.conn_tab_size,
                "IPVS available"
            );
        }
        *ipvs = Some(conn);
    }
    let conn = ipvs.as_mut().expect("connected above");
    let actual = conn.dump().await?.table;
    let desired = desired(&actual);
    let ops = plan(&desired, &actual, owned);
    let mut pass = Pass::default();
    // In plan order, in batches (see io.rs); one result per op.
    let results = conn.execute_all(&ops).await;
    for (op, result) in ops.iter().zip(results) {
        match result {
            Ok(()) => {
                pass.applied += 1;
                debug!(op = %op, "IPVS");
                if let Op::DelService(k) = op {
                    owned.remove(k);
                }
            }
            Err(error) => {
                pass.failed += 1;
                warn!(service = %op.service(), %error, errno = error.errno(), "IPVS operation failed, will retry");
            }
        }
    }
    // Forget keys that are gone from both sides (deleted behind our back).
    owned.retain(|k| actual.services.contains_key(k) || desired.services.contains_key(k));
    owned.extend(desired.services.keys().copied());
    if pass.applied > 0 || pass.failed > 0 {
        info!(
            applied = pass.applied,
            failed = pass.failed,
            services = desired.services.len(),
            "IPVS table reconciled"
        );
    }
    Ok(pass)
}

fn save_owned(path: &std::path::Path, owned: &BTreeSet<ServiceKey>) {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec(owned).unwrap_or_default();
    if let Err(error) = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, path)) {
        warn!(path = %path.display(), %error, "cannot record the IPVS services hafront owns");
    }
}

/// What `hafront ipvs-sync` did.
#[derive(Debug)]
pub struct SyncReport {
    pub ops: Vec<Op>,
    pub failed: usize,
    pub dump: Duration,
    pub plan: Duration,
    pub apply: Duration,
    pub total: Duration,
}

/// One pass for the command line: every service as if this node were master of
/// every instance; nothing is owned, so nothing is deleted.
pub async fn sync_once(cfg: &crate::config::Config, dry_run: bool) -> Result<SyncReport, IpvsError> {
    let start = std::time::Instant::now();
    let mut conn = Ipvs::connect().await?;
    let roles = Roles {
        masters: cfg.vrrp.instances.keys().cloned().collect(),
        unsettled: BTreeSet::new(),
    };
    let t = std::time::Instant::now();
    let actual = conn.dump().await?.table;
    let dump = t.elapsed();
    let t = std::time::Instant::now();
    let desired = desired_table(&cfg.ipvs, &roles, &actual, |_, _| Health::UP);
    let ops = plan(&desired, &actual, &BTreeSet::new());
    let plan_time = t.elapsed();
    let t = std::time::Instant::now();
    let mut failed = 0;
    if !dry_run {
        for (op, result) in ops.iter().zip(conn.execute_all(&ops).await) {
            if let Err(error) = result {
                warn!(service = %op.service(), %error, "IPVS operation failed");
                failed += 1;
            }
        }
    }
    Ok(SyncReport {
        ops,
        failed,
        dump,
        plan: plan_time,
        apply: t.elapsed(),
        total: start.elapsed(),
    })
}
