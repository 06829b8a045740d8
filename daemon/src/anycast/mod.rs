//! Health-gated anycast (`[anycast.NAME]`): the node's BIRD announces a group's
//! prefixes over BGP while hafront keeps their routes in a kernel table BIRD
//! imports from (`protocol kernel { kernel table N; learn; }`), and hafront keeps
//! them there while the tracked items are healthy (docs/architecture.md, "Anycast").
//!
//! One task: it follows the tracker's verdicts, the operator's maintenance, the
//! configuration and the stop, asks the planner (`instance.rs`, pure) what each
//! group needs, and makes the table say so (`io.rs`): a route written or removed
//! is a BGP update from BIRD, BFD takes a dead node's routes away. A second task
//! reads BGP and BFD session state from BIRD's control socket (`bird.rs`).
//!
//! Restarts: hafront adopts the routes it finds (a group is not withdrawn before a
//! verdict says so), and BIRD re-reads the table when it starts; neither flaps.

pub mod bird;
pub mod instance;
pub mod io;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

use crate::config::anycast::AnycastConfig;
use crate::config::Config;
use crate::net::{Iface, Links};
use crate::overrides::Overrides;
use crate::shared::{AnycastSnapshot, AnycastStatus, BirdStatus, TrackingSnapshot};

/// How often the table is read back and repaired (a route removed behind
/// hafront's back is put back, counted in the log), and BIRD is asked.
const RESYNC: Duration = Duration::from_secs(2);

/// Asked at stop: the answer comes once every group is withdrawn, with the time
/// the longest `drain` of the groups that were announced still has to run.
pub type StopRequest = oneshot::Sender<Duration>;

pub struct AnycastInputs {
    pub config: watch::Receiver<Arc<Config>>,
    pub tracking: watch::Receiver<Arc<TrackingSnapshot>>,
    pub overrides: watch::Receiver<Arc<Overrides>>,
    pub links: Links,
    pub notify: crate::notify::Sender,
    pub status: watch::Sender<Arc<AnycastSnapshot>>,
    pub stop: oneshot::Receiver<StopRequest>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What the task keeps per group.
#[derive(Default)]
struct Group {
    status: AnycastStatus,
    iface: Option<Iface>,
    /// `announced` has been decided once (the first decision is not a change).
    known: bool,
}

struct Task {
    links: Links,
    notify: crate::notify::Sender,
    groups: BTreeMap<String, Group>,
    /// Tables this run has written to (a group removed by a reload leaves its
    /// routes there: they are removed).
    tables: BTreeSet<u32>,
    bird: BTreeMap<BirdSockets, BirdStatus>,
}

pub async fn run(mut inp: AnycastInputs) {
    let mut cfg = inp.config.borrow_and_update().clone();
    let mut tracking = inp.tracking.borrow_and_update().clone();
    let mut overrides = inp.overrides.borrow_and_update().clone();
    if cfg.anycast.is_empty() {
        // Nothing to do until a reload brings a group (or the stop).
        tokio::select! {
            Ok(req) = &mut inp.stop => { let _ = req.send(Duration::ZERO); return; }
            r = wait_for_groups(&mut inp.config) => { if !r { return; } cfg = inp.config.borrow_and_update().clone(); }
        }
    }
    let (bird_tx, mut bird_rx) = watch::channel(BTreeMap::new());
    tokio::spawn(poll_bird(inp.config.clone(), bird_tx));
    let mut task = Task {
        links: inp.links.clone(),
        notify: inp.notify.clone(),
        groups: BTreeMap::new(),
        tables: BTreeSet::new(),
        bird: BTreeMap::new(),
    };
    let mut tick = tokio::time::interval(RESYNC);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut setup = true;
    loop {
        task.reconcile(&cfg, &tracking, &overrides, false, setup).await;
        setup = false;
        inp.status.send_replace(Arc::new(task.snapshot()));
        // Only the stop ends this loop: at SIGTERM the configuration's and the
        // tracker's senders go away before the stop request comes, and the
        // withdrawal must still happen (a closed channel disables its branch).
        tokio::select! {
            Ok(()) = inp.config.changed() => {
                cfg = inp.config.borrow_and_update().clone();
                setup = true;
            }
            Ok(()) = inp.tracking.changed() => {
                tracking = inp.tracking.borrow_and_update().clone();
            }
            Ok(()) = inp.overrides.changed() => {
                overrides = inp.overrides.borrow_and_update().clone();
            }
            Ok(()) = bird_rx.changed() => {
                task.bird = bird_rx.borrow_and_update().clone();
            }
            _ = tick.tick() => { setup = true; }
            req = &mut inp.stop => {
                let was: Vec<Duration> = cfg
                    .anycast
                    .iter()
                    .filter(|(n, _)| task.groups.get(*n).is_some_and(|g| g.status.announced))
                    .map(|(_, a)| a.drain)
                    .collect();
                task.reconcile(&cfg, &tracking, &overrides, true, false).await;
                inp.status.send_replace(Arc::new(task.snapshot()));
                let drain = was.into_iter().max().unwrap_or(Duration::ZERO);
                info!(drain = ?drain, "stopping: anycast prefixes withdrawn, draining");
                if let Ok(req) = req {
                    let _ = req.send(drain);
                }
                return;
            }
        }
    }
}

/// Waits for a configuration with anycast groups; false when the daemon is gone.
async fn wait_for_groups(config: &mut watch::Receiver<Arc<Config>>) -> bool {
    loop {
        if config.changed().await.is_err() {
            return false;
        }
        if !config.borrow().anycast.is_empty() {
            return true;
        }
    }
}

/// Reads every configured BIRD socket every [`RESYNC`].
/// A group's BIRD control socket and, when BFD runs in a BIRD of its own, that one's.
type BirdSockets = (PathBuf, Option<PathBuf>);

async fn poll_bird(
    config: watch::Receiver<Arc<Config>>,
    out: watch::Sender<BTreeMap<BirdSockets, BirdStatus>>,
) {
    let mut tick = tokio::time::interval(RESYNC);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let sockets: BTreeSet<BirdSockets> = config
            .borrow()
            .anycast
            .values()
            .map(|a| (a.bird_socket.clone(), a.bfd_socket.clone()))
            .collect();
        let mut all = BTreeMap::new();
        for s in sockets {
            let status = bird::poll(&s.0, s.1.as_deref()).await;
            all.insert(s, status);
        }
        out.send_if_modified(|v| {
            let changed = *v != all;
            *v = all;
            changed
        });
        if out.is_closed() {
            return;
        }
    }
}

impl Task {
    /// Brings every group's routes to what the planner says. `setup`: (re)create
    /// the interface and addresses and read the table back (start, reload, tick);
    /// otherwise only what changed is written.
    async fn reconcile(
        &mut self,
        cfg: &Config,
        tracking: &TrackingSnapshot,
        o: &Overrides,
        stopping: bool,
        setup: bool,
    ) {
        self.groups.retain(|n, _| cfg.anycast.contains_key(n));
        let mut installed: BTreeMap<u32, BTreeSet<IpNet>> = BTreeMap::new();
        let tables: BTreeSet<u32> = cfg
            .anycast
            .values()
            .map(|a| a.table)
            .chain(self.tables.iter().copied())
            .collect();
        for t in tables {
            match io::routes(&self.links, t).await {
                Ok(r) => {
                    installed.insert(t, r);
                }
                Err(error) => warn!(table = t, %error, "anycast: cannot read the routing table"),
            }
        }
        for (name, a) in &cfg.anycast {
            let g = self.groups.entry(name.clone()).or_default();
            let have = installed.get(&a.table);
            let all_in = have.is_some_and(|h| a.prefixes.iter().all(|p| h.contains(p)));
            let d = instance::decide(instance::Inputs {
                tracking: tracking.anycast.get(name),
                maintenance: o.anycast_maintenance.contains(name),
                stopping,
                installed: all_in,
            });
            let error = apply(&self.links, g, a, have, d.announce, setup || g.iface.is_none()).await;
            self.tables.insert(a.table);
            let changed = g.status.announced != d.announce || !g.known;
            let why_changed = g.status.why != d.why;
            g.status.prefixes = a.prefixes.clone();
            g.status.interface = a.interface.clone();
            g.status.table = a.table;
            if error != g.status.error {
                if let Some(e) = &error {
                    warn!(
                        anycast = name.as_str(),
                        error = e.as_str(),
                        "anycast: kernel change failed (retried)"
                    );
                }
                g.status.error = error;
            }
            if changed {
                let first = !g.known;
                g.known = true;
                g.status.announced = d.announce;
                g.status.since_unix_ms = now_ms();
                g.status.why = d.why.clone();
                if !first || d.announce {
                    g.status.changes += u64::from(!first);
                    info!(
                        anycast = name.as_str(),
                        announced = d.announce,
                        why = d.why.as_str(),
                        prefixes = ?a.prefixes,
                        "anycast {}",
                        if d.announce { "announced" } else { "withdrawn" }
                    );
                    self.notify.send(crate::notify::Event::Anycast {
                        group: name.clone(),
                        announced: d.announce,
                        why: d.why.clone(),
                        prefixes: a.prefixes.iter().map(|p| p.to_string()).collect(),
                        unix_ms: u128::from(now_ms()),
                    });
                }
            } else if why_changed {
                g.status.why = d.why;
            }
            g.status.bird = self
                .bird
                .get(&(a.bird_socket.clone(), a.bfd_socket.clone()))
                .cloned()
                .unwrap_or_else(|| BirdStatus {
                    socket: a.bird_socket.display().to_string(),
                    error: Some("not polled yet".into()),
                    ..Default::default()
                });
        }
        // hafront's routes that no group wants any more (a group removed by a
        // reload, a prefix dropped from one).
        let claimed: BTreeMap<u32, BTreeSet<IpNet>> =
            cfg.anycast.values().fold(BTreeMap::new(), |mut m, a| {
                m.entry(a.table).or_default().extend(a.prefixes.iter().copied());
                m
            });
        for (table, routes) in &installed {
            for p in routes {
                if !claimed.get(table).is_some_and(|c| c.contains(p)) {
                    info!(table, prefix = %p, "anycast: removing a route no group claims");
                    if let Err(error) = io::del_route(&self.links, *table, *p).await {
                        warn!(table, prefix = %p, %error, "anycast: cannot remove a stale route");
                    }
                }
            }
        }
    }

    fn snapshot(&self) -> AnycastSnapshot {
        AnycastSnapshot {
            groups: self
                .groups
                .iter()
                .map(|(n, g)| (n.clone(), g.status.clone()))
                .collect(),
        }
    }
}

/// Makes the kernel hold what one group needs; the first error, if any.
async fn apply(
    links: &Links,
    g: &mut Group,
    a: &AnycastConfig,
    have: Option<&BTreeSet<IpNet>>,
    announce: bool,
    setup: bool,
) -> Option<String> {
    if setup {
        match io::ensure_interface(links, &a.interface).await {
            Ok(iface) => {
                if let Err(e) = io::ensure_addresses(links, &iface, &a.prefixes).await {
                    return Some(e.to_string());
                }
                g.iface = Some(iface);
            }
            Err(e) => return Some(format!("interface {}: {e}", a.interface)),
        }
    }
    let Some(iface) = &g.iface else {
        return Some(format!("interface {} not set up", a.interface));
    };
    for p in &a.prefixes {
        let present = have.is_some_and(|h| h.contains(p));
        let r = if announce && !present {
            io::add_route(links, a.table, *p, iface).await
        } else if !announce && present {
            io::del_route(links, a.table, *p).await
        } else {
            Ok(())
        };
        if let Err(e) = r {
            // The interface may have gone: set it up again next time.
            g.iface = None;
            return Some(e.to_string());
        }
    }
    None
}
