//! The IPVS connection sync daemon (`[ipvs.sync]`): which daemons the kernel must
//! run (pure: [`desired`]) and the task that makes it so over its own IPVS
//! socket, after every role or configuration change and every 10 s.
//!
//! With `instance` set, the node runs the master daemon while master of it and
//! the backup daemon otherwise (keepalived's `lvs_sync_daemon IF INSTANCE`), so
//! the backup director holds the master's connection entries when it takes over.
//! An unsettled instance (just started, no master heard yet) gets the backup
//! daemon at once and keeps a master daemon the kernel runs (a restart of the
//! master's hafront must not stop its master daemon): a node that starts, or
//! comes back, as backup and will preempt receives the master's connections from
//! its first second, not from the first advert it hears (issue 16: the way back).
//!
//! The same task writes `[ipvs.sysctl]` at start and at each reload that changes
//! it, and publishes both in the status (`ipvs_sync`) and the metrics.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use tokio::sync::watch;
use tracing::{info, warn};

use super::io::Ipvs;
use super::sysctl::SysctlState;
use super::{SyncDaemon, SyncRole};
use crate::config::ipvs::{IpvsConfig, IpvsSyncConfig, IpvsSysctls};
use crate::shared::Roles;

/// How often the kernel's daemons are compared with the desired ones.
const RESYNC: Duration = Duration::from_secs(10);

/// The daemons the kernel should run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    pub daemons: Vec<SyncDaemon>,
    /// A running daemon of another role stays (unsettled instance).
    pub keep_others: bool,
}

/// The daemons the kernel should run.
pub fn desired(sync: &IpvsSyncConfig, roles: &Roles) -> Desired {
    let (roles_wanted, keep_others) = match &sync.instance {
        None => (vec![SyncRole::Master, SyncRole::Backup], false),
        Some(i) if roles.unsettled.contains(i) => (vec![SyncRole::Backup], true),
        Some(i) if roles.masters.contains(i) => (vec![SyncRole::Master], false),
        Some(_) => (vec![SyncRole::Backup], false),
    };
    Desired {
        daemons: roles_wanted.into_iter().map(|r| sync.daemon(r)).collect(),
        keep_others,
    }
}

/// A running daemon is what was asked: same role, link and ID, and every value
/// the configuration sets (the kernel reports its defaults for the others).
fn matches(running: &SyncDaemon, want: &SyncDaemon) -> bool {
    fn same<T: PartialEq>(want: Option<T>, got: Option<T>) -> bool {
        want.is_none() || want == got
    }
    running.role == want.role
        && running.interface == want.interface
        && running.sync_id == want.sync_id
        && same(want.max_len, running.max_len)
        && same(want.group, running.group)
        && same(want.port, running.port)
        && same(want.ttl, running.ttl)
}

/// What to stop, then what to start, to go from `running` to `want`. With
/// `keep_others`, a running daemon of a role `want` has not stays.
pub fn plan(
    running: &[SyncDaemon],
    want: &[SyncDaemon],
    keep_others: bool,
) -> (Vec<SyncRole>, Vec<SyncDaemon>) {
    let mut stop = Vec::new();
    for r in running {
        let wanted = want.iter().any(|w| matches(r, w));
        let kept = keep_others && !want.iter().any(|w| w.role == r.role);
        if !wanted && !kept {
            stop.push(r.role);
        }
    }
    let start = want
        .iter()
        .filter(|w| !running.iter().any(|r| matches(r, w)))
        .cloned()
        .collect();
    (stop, start)
}

/// A running daemon as the status shows it (GET_DAEMON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DaemonView {
    pub role: &'static str,
    pub interface: String,
    pub sync_id: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_len: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<std::net::IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
}

impl From<&SyncDaemon> for DaemonView {
    fn from(d: &SyncDaemon) -> Self {
        DaemonView {
            role: d.role.as_str(),
            interface: d.interface.clone(),
            sync_id: d.sync_id,
            max_len: d.max_len,
            group: d.group,
            port: d.port,
            ttl: d.ttl,
        }
    }
}

/// `ipvs_sync` in the status: the kernel's sync daemons and `[ipvs.sysctl]`.
/// The kernel keeps no sync counters of its own (no /proc or netlink statistics
/// of messages sent or received); `starts`/`stops` count hafront's changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SyncStatus {
    /// `[ipvs.sync]` is configured.
    pub configured: bool,
    /// The daemons the kernel runs, read back after each check (empty without
    /// `[ipvs.sync]`: not read then).
    pub daemons: Vec<DaemonView>,
    /// When the daemons were last read (Unix ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_unix_ms: Option<u64>,
    /// The last check's failure, cleared by a good one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Daemons hafront started and stopped, and checks that failed.
    pub starts: u64,
    pub stops: u64,
    pub failures: u64,
    /// `[ipvs.sysctl]`: each configured file, wanted and read back.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctl: BTreeMap<String, SysctlState>,
    /// Why the settings could not be written at all (no IPVS yet: retried).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sysctl_error: Option<String>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs until the configuration channel closes (shutdown).
pub async fn run(
    mut config: watch::Receiver<Arc<IpvsConfig>>,
    mut roles: watch::Receiver<Roles>,
    status: watch::Sender<Arc<SyncStatus>>,
) {
    let mut ipvs: Option<Ipvs> = None;
    // Whether hafront started a daemon: only then does removing `[ipvs.sync]`
    // stop the kernel's daemons.
    let mut ours = false;
    let mut st = SyncStatus::default();
    // The settings last written without a missing directory: written again only
    // when the configuration changes them (start and reload), so what an operator
    // sets by hand in between stays.
    let mut sysctl_done: Option<IpvsSysctls> = None;
    loop {
        let cfg = config.borrow_and_update().clone();
        let r = roles.borrow_and_update().clone();
        if sysctl_done.as_ref() != Some(&cfg.sysctl) {
            if cfg.sysctl.is_empty() {
                st.sysctl.clear();
                st.sysctl_error = None;
                sysctl_done = Some(cfg.sysctl.clone());
            } else {
                // The files appear with the ip_vs module: the reconciler's or this
                // task's first netlink request loads it.
                if ipvs.is_none() {
                    ipvs = Ipvs::connect().await.ok();
                }
                match super::sysctl::apply(Path::new(super::sysctl::PROC_DIR), &cfg.sysctl) {
                    Ok(states) => {
                        for (name, s) in &states {
                            match &s.error {
                                Some(error) => warn!(
                                    name = name.as_str(),
                                    error = error.as_str(),
                                    "IPVS sysctl not set"
                                ),
                                None => {
                                    info!(name = name.as_str(), value = s.wanted.as_str(), "IPVS sysctl set")
                                }
                            }
                        }
                        st.sysctl = states;
                        st.sysctl_error = None;
                        sysctl_done = Some(cfg.sysctl.clone());
                    }
                    Err(error) => {
                        if st.sysctl_error.as_ref() != Some(&error) {
                            warn!(%error, "IPVS sysctls not set yet");
                        }
                        st.sysctl_error = Some(error);
                    }
                }
            }
        }
        st.configured = cfg.sync.is_some();
        let want = match &cfg.sync {
            Some(sync) => Some(desired(sync, &r)),
            None if ours => Some(Desired {
                daemons: Vec::new(),
                keep_others: false,
            }),
            None => None,
        };
        if let Some(want) = want {
            if ipvs.is_none() {
                match Ipvs::connect().await {
                    Ok(i) => ipvs = Some(i),
                    Err(error) => {
                        warn!(%error, "IPVS sync daemon: no IPVS");
                        st.failures += 1;
                        st.error = Some(format!("no IPVS: {error}"));
                    }
                }
            }
            if let Some(i) = &mut ipvs {
                match apply(i, &want, &mut st).await {
                    Ok(()) => {
                        ours = !want.daemons.is_empty();
                        st.error = None;
                    }
                    Err(error) => {
                        warn!(%error, "IPVS sync daemon not set up");
                        st.failures += 1;
                        st.error = Some(error.to_string());
                        ipvs = None;
                    }
                }
            }
        }
        if !st.configured && !ours {
            st.daemons.clear();
        }
        status.send_if_modified(|cur| {
            if **cur == st {
                return false;
            }
            *cur = Arc::new(st.clone());
            true
        });
        tokio::select! {
            c = config.changed() => if c.is_err() { return },
            r = roles.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(RESYNC) => {}
        }
    }
}

async fn apply(ipvs: &mut Ipvs, want: &Desired, st: &mut SyncStatus) -> Result<(), crate::ipvs::IpvsError> {
    let mut running = ipvs.sync_daemons().await?;
    let (stop, start) = plan(&running, &want.daemons, want.keep_others);
    let changed = !stop.is_empty() || !start.is_empty();
    for role in stop {
        ipvs.stop_sync_daemon(role).await?;
        st.stops += 1;
        info!(role = role.as_str(), "IPVS sync daemon stopped");
    }
    for d in start {
        ipvs.start_sync_daemon(&d).await?;
        st.starts += 1;
        info!(
            role = d.role.as_str(),
            interface = d.interface,
            sync_id = d.sync_id,
            "IPVS sync daemon started"
        );
    }
    if changed {
        running = ipvs.sync_daemons().await?;
    }
    st.daemons = running.iter().map(DaemonView::from).collect();
    st.checked_unix_ms = Some(now_ms());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sync(instance: Option<&str>) -> IpvsSyncConfig {
        IpvsSyncConfig {
            interface: "eth1".into(),
            sync_id: 7,
            instance: instance.map(str::to_string),
            port: None,
            ttl: None,
            group: None,
            max_len: None,
        }
    }

    fn roles(masters: &[&str], unsettled: &[&str]) -> Roles {
        Roles {
            masters: masters.iter().map(|s| s.to_string()).collect(),
            unsettled: unsettled.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn role_list(d: Desired) -> (Vec<SyncRole>, bool) {
        (d.daemons.into_iter().map(|d| d.role).collect(), d.keep_others)
    }

    #[test]
    fn the_daemon_follows_the_instance() {
        let s = sync(Some("web"));
        assert_eq!(
            role_list(desired(&s, &roles(&["web"], &[]))),
            (vec![SyncRole::Master], false)
        );
        assert_eq!(
            role_list(desired(&s, &roles(&[], &[]))),
            (vec![SyncRole::Backup], false)
        );
        // Unsettled: the backup daemon at once, a running master daemon kept.
        assert_eq!(
            role_list(desired(&s, &roles(&[], &["web"]))),
            (vec![SyncRole::Backup], true)
        );
        assert_eq!(
            role_list(desired(&sync(None), &roles(&[], &[]))),
            (vec![SyncRole::Master, SyncRole::Backup], false)
        );
    }

    /// Issue 16, the way back: a director killed while master comes back. Its
    /// kernel still runs the master daemon, and until its new hafront hears the
    /// other director it did nothing, so it received no connection in that time.
    /// Now it starts the backup daemon at once and keeps the master one (a restart
    /// of the master's hafront keeps syncing), until the instance settles.
    #[test]
    fn an_unsettled_instance_starts_the_backup_daemon_and_keeps_the_master_one() {
        let s = sync(Some("web"));
        let master = s.daemon(SyncRole::Master);
        let backup = s.daemon(SyncRole::Backup);
        let want = desired(&s, &roles(&[], &["web"]));
        assert_eq!(
            plan(std::slice::from_ref(&master), &want.daemons, want.keep_others),
            (vec![], vec![backup.clone()])
        );
        // A backup daemon of another sync ID is replaced all the same.
        let old = SyncDaemon {
            sync_id: 9,
            ..backup.clone()
        };
        assert_eq!(
            plan(&[master.clone(), old], &want.daemons, want.keep_others),
            (vec![SyncRole::Backup], vec![backup.clone()])
        );
        // Settled as backup: the master daemon goes.
        let want = desired(&s, &roles(&[], &[]));
        assert_eq!(
            plan(&[master, backup], &want.daemons, want.keep_others),
            (vec![SyncRole::Master], vec![])
        );
    }

    #[test]
    fn plan_stops_the_other_role_and_starts_the_wanted_one() {
        let s = sync(Some("web"));
        let backup = s.daemon(SyncRole::Backup);
        let master = s.daemon(SyncRole::Master);
        // The kernel reports its defaults: still a match.
        let running = SyncDaemon {
            port: Some(8848),
            ttl: Some(1),
            ..backup.clone()
        };
        assert_eq!(
            plan(
                std::slice::from_ref(&running),
                std::slice::from_ref(&backup),
                false
            ),
            (vec![], vec![])
        );
        assert_eq!(
            plan(&[running], std::slice::from_ref(&master), false),
            (vec![SyncRole::Backup], vec![master.clone()])
        );
        // Another sync ID: restarted.
        let other = SyncDaemon {
            sync_id: 9,
            ..master.clone()
        };
        assert_eq!(
            plan(&[other], std::slice::from_ref(&master), false),
            (vec![SyncRole::Master], vec![master])
        );
    }
}
