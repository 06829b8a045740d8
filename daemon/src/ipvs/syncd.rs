//! The IPVS connection sync daemon (`[ipvs.sync]`): which daemons the kernel must
//! run (pure: [`desired`]) and the task that makes it so over its own IPVS
//! socket, after every role or configuration change and every 10 s.
//!
//! With `instance` set, the node runs the master daemon while master of it and
//! the backup daemon otherwise (keepalived's `lvs_sync_daemon IF INSTANCE`), so
//! the backup director holds the master's connection entries when it takes over.
//! An unsettled instance (just started, no master heard yet) leaves the kernel's
//! daemons as they are.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use super::io::Ipvs;
use super::{SyncDaemon, SyncRole};
use crate::config::ipvs::{IpvsConfig, IpvsSyncConfig};
use crate::shared::Roles;

/// How often the kernel's daemons are compared with the desired ones.
const RESYNC: Duration = Duration::from_secs(10);

/// The daemons the kernel should run; `None`: leave them as they are.
pub fn desired(sync: &IpvsSyncConfig, roles: &Roles) -> Option<Vec<SyncDaemon>> {
    let roles_wanted = match &sync.instance {
        None => vec![SyncRole::Master, SyncRole::Backup],
        Some(i) if roles.unsettled.contains(i) => return None,
        Some(i) if roles.masters.contains(i) => vec![SyncRole::Master],
        Some(_) => vec![SyncRole::Backup],
    };
    Some(roles_wanted.into_iter().map(|r| sync.daemon(r)).collect())
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

/// What to stop, then what to start, to go from `running` to `want`.
pub fn plan(running: &[SyncDaemon], want: &[SyncDaemon]) -> (Vec<SyncRole>, Vec<SyncDaemon>) {
    let mut stop = Vec::new();
    for r in running {
        if !want.iter().any(|w| matches(r, w)) {
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

/// Runs until the configuration channel closes (shutdown).
pub async fn run(mut config: watch::Receiver<Arc<IpvsConfig>>, mut roles: watch::Receiver<Roles>) {
    let mut ipvs: Option<Ipvs> = None;
    // Whether hafront started a daemon: only then does removing `[ipvs.sync]`
    // stop the kernel's daemons.
    let mut ours = false;
    loop {
        let cfg = config.borrow_and_update().clone();
        let r = roles.borrow_and_update().clone();
        let want = match &cfg.sync {
            Some(sync) => desired(sync, &r),
            None if ours => Some(Vec::new()),
            None => None,
        };
        if let Some(want) = want {
            if ipvs.is_none() {
                match Ipvs::connect().await {
                    Ok(i) => ipvs = Some(i),
                    Err(error) => warn!(%error, "IPVS sync daemon: no IPVS"),
                }
            }
            if let Some(i) = &mut ipvs {
                match apply(i, &want).await {
                    Ok(()) => ours = !want.is_empty(),
                    Err(error) => {
                        warn!(%error, "IPVS sync daemon not set up");
                        ipvs = None;
                    }
                }
            }
        }
        tokio::select! {
            c = config.changed() => if c.is_err() { return },
            r = roles.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(RESYNC) => {}
        }
    }
}

async fn apply(ipvs: &mut Ipvs, want: &[SyncDaemon]) -> Result<(), crate::ipvs::IpvsError> {
    let running = ipvs.sync_daemons().await?;
    let (stop, start) = plan(&running, want);
    for role in stop {
        ipvs.stop_sync_daemon(role).await?;
        info!(role = role.as_str(), "IPVS sync daemon stopped");
    }
    for d in start {
        ipvs.start_sync_daemon(&d).await?;
        info!(
            role = d.role.as_str(),
            interface = d.interface,
            sync_id = d.sync_id,
            "IPVS sync daemon started"
        );
    }
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

    fn role_list(d: Option<Vec<SyncDaemon>>) -> Option<Vec<SyncRole>> {
        d.map(|v| v.into_iter().map(|d| d.role).collect())
    }

    #[test]
    fn the_daemon_follows_the_instance() {
        let s = sync(Some("web"));
        assert_eq!(
            role_list(desired(&s, &roles(&["web"], &[]))),
            Some(vec![SyncRole::Master])
        );
        assert_eq!(
            role_list(desired(&s, &roles(&[], &[]))),
            Some(vec![SyncRole::Backup])
        );
        assert_eq!(role_list(desired(&s, &roles(&[], &["web"]))), None);
        assert_eq!(
            role_list(desired(&sync(None), &roles(&[], &[]))),
            Some(vec![SyncRole::Master, SyncRole::Backup])
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
            plan(std::slice::from_ref(&running), std::slice::from_ref(&backup)),
            (vec![], vec![])
        );
        assert_eq!(
            plan(&[running], std::slice::from_ref(&master)),
            (vec![SyncRole::Backup], vec![master.clone()])
        );
        // Another sync ID: restarted.
        let other = SyncDaemon {
            sync_id: 9,
            ..master.clone()
        };
        assert_eq!(
            plan(&[other], std::slice::from_ref(&master)),
            (vec![SyncRole::Master], vec![master])
        );
    }
}
