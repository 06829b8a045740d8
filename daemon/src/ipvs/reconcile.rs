//! The IPVS reconciler task: whenever the configuration, the node's VRRP roles, a
//! health verdict or an override changes, plan the desired table against the model
//! of what hafront last wrote (hafront_ipvs::written) and write only the
//! difference: one check flipping is one netlink write, whatever the table's size.
//! The kernel table is dumped only at start, after a write the kernel refused (or
//! a lost connection), and every `ipvs.resync_interval`, where what differs from
//! the model on hafront's services was changed behind its back: counted
//! (`hafront_ipvs_drift_total`), logged, and repaired by the same pass. Kernel
//! errors are logged with the service named and retried with backoff; nothing here
//! can stop the daemon, and a kernel without IPVS leaves VRRP running with one
//! clear error.
//!
//! Which services hafront owns survives restarts in `<state_dir>/ipvs-owned.json`,
//! so a service removed from the configuration while hafront was down is still
//! removed, and services created by others are never touched. (Not runtime_dir:
//! systemd empties `RuntimeDirectory=` at every stop, and ownership would be lost
//! across exactly the crash-and-reconfigure it exists for. A file an older version
//! left in runtime_dir is read once and moved.)

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};
use tracing::{debug, error, info, warn};

use serde::Serialize;

use super::desired::{desired_table, service_spec, Desired};
use super::error::IpvsError;
use super::io::{Ipvs, Observed};
use super::model::{DestCounters, ServiceKey, Stats, Table};
use super::plan::{plan, Op};
use crate::config::ipvs::{IpvsConfig, RealServerConfig};
use crate::overrides::Overrides;
use crate::shared::{Health, Roles, Verdicts, VipsHeld};
use hafront_ipvs::written::{Touched, Written};

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

pub struct ReconcilerInputs {
    pub config: watch::Receiver<Arc<IpvsConfig>>,
    /// The node's VRRP roles.
    pub roles: watch::Receiver<Roles>,
    /// The instances whose VIPs are still on the node (the VIP executor's): one
    /// that left master keeps its services until they are removed.
    pub vips_held: watch::Receiver<VipsHeld>,
    /// Health-check verdicts by check name (real servers with `check`); a check
    /// without a verdict yet counts as up, as keepalived starts real servers.
    pub checks: watch::Receiver<Verdicts>,
    /// Where `ipvs-owned.json` lives.
    pub state_dir: PathBuf,
    /// Where older versions kept it: read once, then moved to `state_dir`.
    pub runtime_dir: PathBuf,
    /// Operator overrides: real servers disabled or re-weighted through the API.
    pub overrides: watch::Receiver<Arc<Overrides>>,
    /// What the status is built from, when asked (`IpvsStatus::snapshot`).
    pub status: IpvsStatus,
    /// Asked at shutdown: remove what we own, then answer.
    pub stop: oneshot::Receiver<oneshot::Sender<()>>,
    /// The reconciler's state, shared with the checks' thread's inline writes
    /// (`ReconcilerInputs::inline_writer`).
    pub shared: Shared,
}

impl ReconcilerInputs {
    /// The handle a health verdict is written to the kernel through, on the
    /// checks' thread, as it is reached.
    pub fn inline_writer(&self) -> InlineWriter {
        InlineWriter {
            shared: self.shared.clone(),
            config: self.config.clone(),
            roles: self.roles.clone(),
            vips_held: self.vips_held.clone(),
            overrides: self.overrides.clone(),
            checks: self.checks.clone(),
        }
    }
}

/// The reconciler's state between passes, shared by its thread and the checks'
/// thread. The reconciler holds it for a whole pass (a dump included); an inline
/// write takes it only when it is free.
#[derive(Clone, Default)]
pub struct Shared(Arc<tokio::sync::Mutex<Core>>);

#[derive(Default)]
struct Core {
    r: Reconciler,
    /// The services hafront owns (loaded by the reconciler at start).
    owned: BTreeSet<ServiceKey>,
    /// The verdicts as last planned (followed change by change, never cloned
    /// whole), and the last change of the verdicts they include.
    checks: BTreeMap<String, Health>,
    checks_seen: u64,
    /// The configuration, roles and overrides the desired table was last built
    /// from, after a pass that wrote everything it planned; `None`: the next pass
    /// builds it whole (and no inline write happens until then).
    built: Option<(Arc<IpvsConfig>, Roles, Arc<Overrides>)>,
    /// Inline writes not reported yet (status copy, events, log line, owned
    /// file): the reconciler's thread reports them, off the checks' thread.
    inline: Vec<InlineWrite>,
}

/// One inline write, for the reconciler to report.
struct InlineWrite {
    touched: Vec<Touched>,
    ops: Vec<Op>,
    wrote: Wrote,
}

/// Writes a verdict's change to the kernel on the thread that reached the verdict
/// (the checks'), as keepalived's checker does: no thread hop, no reactor between
/// a verdict and the kernel (issue 16). It plans only the real servers that follow
/// the changed checks, against the reconciler's model, and only when the
/// reconciler is idle and up to date (its last pass wrote everything, built from
/// the configuration, roles and overrides in force now, with a model of the
/// kernel); otherwise the verdict is the reconciler's, which its watch wakes
/// anyway. Holding the state costs the checks' thread one netlink round trip.
#[derive(Clone)]
pub struct InlineWriter {
    shared: Shared,
    config: watch::Receiver<Arc<IpvsConfig>>,
    roles: watch::Receiver<Roles>,
    vips_held: watch::Receiver<VipsHeld>,
    overrides: watch::Receiver<Arc<Overrides>>,
    checks: watch::Receiver<Verdicts>,
}

/// The reconciler's state, held by the checks' thread from before a verdict is
/// published until it is written (`InlineWriter::hold`).
pub struct InlineHold<'a> {
    writer: &'a InlineWriter,
    guard: tokio::sync::MutexGuard<'a, Core>,
}

impl InlineWriter {
    /// Takes the reconciler's state when it is free (`None`: a pass or a dump is
    /// running, the reconciler follows). Taken before the verdict is published:
    /// the reconciler the verdict wakes would otherwise often preempt this thread on
    /// its CPU (it sleeps most of the time, the scheduler favours it), take the
    /// state first and write the verdict itself, the slow way (7-15 ms in the TCG
    /// guest, the whole of hafront's tail there: docs/benchmarks.md).
    pub fn hold(&self) -> Option<InlineHold<'_>> {
        let guard = self.shared.0.try_lock().ok()?;
        Some(InlineHold { writer: self, guard })
    }
}

impl InlineHold<'_> {
    /// Called after a verdict changed: writes what the changed verdicts change.
    /// False when it was left to the reconciler.
    pub fn verdicts_changed(mut self) -> bool {
        let w = self.writer;
        w.write(&mut self.guard)
    }
}

/// What [`publish_verdict`] did with a check's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Published {
    /// The verdict was the one already published: nothing changed, no one woken.
    Unchanged,
    /// Published and written to the kernel on the calling thread.
    Written,
    /// Published; the reconciler its watch wakes writes it.
    LeftToReconciler,
}

/// Publishes a check's verdict to `states` and, when the reconciler is free and up
/// to date, writes what it changes to the kernel on the calling thread (the
/// checks'). The order is the point (issue 16, measured in the VM's scheduler
/// trace, docs/benchmarks.md):
/// - the reconciler's state is held before the verdict is published, else the
///   reconciler the verdict wakes often preempts this thread, takes the state first
///   and writes the slow way;
/// - the verdict is published silently and the watchers are told only after the
///   write: waking the reconciler first let its wake-up preempt this thread for
///   1.5-3 ms before the write.
///
/// The watchers are told whenever the verdict changed, written or not.
pub fn publish_verdict(
    states: &watch::Sender<Verdicts>,
    inline: Option<&InlineWriter>,
    name: &str,
    health: Health,
) -> Published {
    let held = inline.and_then(InlineWriter::hold);
    let mut changed = false;
    states.send_if_modified(|v| {
        changed = v.set(name, health);
        false
    });
    if !changed {
        return Published::Unchanged;
    }
    let written = held.is_some_and(InlineHold::verdicts_changed);
    states.send_modify(|_| {});
    if written {
        Published::Written
    } else {
        Published::LeftToReconciler
    }
}

impl InlineWriter {
    fn write(&self, core: &mut Core) -> bool {
        let Some((cfg, roles, overrides)) = core.built.clone() else {
            return false;
        };
        let current = Arc::ptr_eq(&cfg, &self.config.borrow())
            && Arc::ptr_eq(&overrides, &self.overrides.borrow())
            && Roles::clone(&self.roles.borrow()).with_vips_held(&self.vips_held.borrow()) == roles;
        if !current || core.r.ipvs.is_none() || core.r.written.needs_dump() {
            return false;
        }
        let (changed, _) = follow_verdicts(&mut core.checks, &mut core.checks_seen, &self.checks.borrow());
        let dirty = core.r.desired.dirty(&changed);
        let inputs = Inputs {
            cfg: &cfg,
            roles: &roles,
            checks: &core.checks,
            overrides: &overrides,
        };
        let (ops, touched) = core.r.plan_dirty(&inputs, &dirty, &core.owned);
        let wrote = core.r.write(&ops, &mut core.owned);
        core.r.counters.inline_writes += ops.len() as u64;
        if !touched.is_empty() {
            core.inline.push(InlineWrite { touched, ops, wrote });
        }
        true
    }
}

/// IPVS as the API shows it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IpvsSnapshot {
    /// `None` until IPVS was needed; `false` with `error` when the kernel has none.
    pub available: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub services: BTreeMap<String, ServiceStatus>,
    /// How the kernel table was kept (counters since start).
    pub sync: SyncCounters,
}

/// The reconciler's work since start.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct SyncCounters {
    /// Netlink writes sent (one per service or real server added, edited, removed).
    pub writes: u64,
    /// Of those, refused by the kernel (or unanswered).
    pub write_failures: u64,
    /// Of `writes`, written on the checks' thread as the verdict was reached
    /// (`InlineWriter`); the others were the reconciler's.
    pub inline_writes: u64,
    /// Whole-table reads: at start, after a refusal, at each resync.
    pub dumps: u64,
    /// Entries found changed behind hafront's back at a resync (then repaired).
    pub drift: u64,
    /// What the last dump took, in milliseconds (kernel counters in status and
    /// metrics are as of that dump).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_dump_ms: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ServiceStatus {
    /// `tcp 192.0.2.100:80` or `fwmark 1`.
    pub key: String,
    pub scheduler: String,
    /// In the desired table now (false: this node is not master of `master_of`).
    pub installed: bool,
    /// The sorry server serves instead of the real servers (quorum lost).
    pub sorry_server_active: bool,
    /// Installed, and the live weight of its healthy real servers is below `quorum`
    /// (with or without a sorry server).
    pub quorum_lost: bool,
    /// Kernel counters, when the service is in the kernel.
    pub stats: Option<Stats>,
    pub real_servers: Vec<RealServerStatus>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RealServerStatus {
    pub address: SocketAddr,
    pub configured_weight: u32,
    /// Weight in the desired table; `None`: not in it (down, disabled, or the
    /// service is not installed).
    pub weight: Option<u32>,
    /// The health-check verdict (`true` without a check).
    pub healthy: bool,
    /// Operator override.
    pub disabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_override: Option<u32>,
    /// Kernel counters, when the real server is in the kernel.
    pub counters: Option<DestCounters>,
}

/// The IPVS status, built when the API or the metrics ask for it (and kept until
/// the reconciler changes something), not after every event: building it is
/// O(table), an event is not.
#[derive(Clone)]
pub struct IpvsStatus {
    shared: Arc<Mutex<StatusState>>,
    checks: watch::Receiver<Verdicts>,
    /// Which services are written, for the VIP executor (`Hooks::wait_ipvs`):
    /// O(services) after a pass, not the whole status.
    written: Arc<watch::Sender<crate::shared::IpvsWritten>>,
}

/// What the reconciler keeps for the status: its inputs, the desired table (the
/// reconciler's own, edited in place under the lock), the last dump's counters.
#[derive(Default)]
struct StatusState {
    /// False while nothing is managed (no service configured or owned).
    managed: bool,
    cfg: Arc<IpvsConfig>,
    overrides: Arc<Overrides>,
    desired: Table,
    /// The last dump's counters (the table part is the model's business);
    /// `None` when IPVS could not be read.
    observed: Option<Observed>,
    error: Option<String>,
    counters: SyncCounters,
    /// Bumped at every change; the cached snapshot is of `version`.
    version: u64,
    cache: Option<(u64, Arc<IpvsSnapshot>)>,
}

impl IpvsStatus {
    pub fn new(
        checks: watch::Receiver<Verdicts>,
        written: watch::Sender<crate::shared::IpvsWritten>,
    ) -> IpvsStatus {
        IpvsStatus {
            shared: Arc::default(),
            checks,
            written: Arc::new(written),
        }
    }

    /// After a pass: which configured services the desired table holds (written
    /// when the pass succeeded), or IPVS unavailable.
    fn publish_written(&self, cfg: &IpvsConfig, desired: &Table, ok: bool, unavailable: bool) {
        let w = crate::shared::IpvsWritten {
            unavailable,
            known: cfg.services.keys().cloned().collect(),
            installed: if ok {
                cfg.services
                    .iter()
                    .filter(|(_, s)| {
                        service_spec(s).is_some_and(|spec| desired.services.contains_key(&spec.key))
                    })
                    .map(|(n, _)| n.clone())
                    .collect()
            } else {
                Default::default()
            },
        };
        self.written.send_if_modified(|cur| {
            let changed = *cur != w;
            *cur = w;
            changed
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StatusState> {
        // A panic elsewhere while holding it leaves plain data: use it anyway.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The status now (built on first ask after a change).
    pub fn snapshot(&self) -> Arc<IpvsSnapshot> {
        let mut st = self.lock();
        if let Some((v, snap)) = &st.cache {
            if *v == st.version {
                return snap.clone();
            }
        }
        let snap = if st.managed {
            // A copy, not the watch's read guard: the checks publish every verdict
            // through that watch (`CheckerOptions::on_verdict`), and a build of 10,000
            // real servers under its guard held a verdict back for its duration.
            let checks: BTreeMap<String, Health> = BTreeMap::clone(&self.checks.borrow());
            let checked = |rs: &RealServerConfig| checked(&checks, rs);
            let mut s = snapshot(
                &st.cfg,
                &st.overrides,
                &checked,
                &st.desired,
                st.observed.as_ref(),
                st.error.clone(),
            );
            s.sync = st.counters;
            s
        } else {
            IpvsSnapshot::default()
        };
        let snap = Arc::new(snap);
        st.cache = Some((st.version, snap.clone()));
        snap
    }
}

/// Outcome of one pass, for logs and tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pass {
    pub applied: usize,
    pub failed: usize,
    /// The set of owned services changed (to be recorded).
    pub owned_changed: bool,
    /// The whole desired table was built and planned (not only an event's real
    /// servers).
    pub whole: bool,
}

/// The reconciler's state between passes: the connection, the model of the
/// kernel table, the index of the desired table, and the counters.
#[derive(Default)]
struct Reconciler {
    ipvs: Option<Ipvs>,
    written: Written,
    desired: Desired,
    /// The desired table the reconciler plans on, its own: planning an event takes
    /// no lock the status readers hold (the status keeps a copy, `StatusState::
    /// desired`, brought up to date entry by entry after the write).
    table: Table,
    counters: SyncCounters,
}

/// What of the reconciler's table the status copy must take after a pass.
enum Changed {
    All,
    Some(Vec<Touched>),
}

/// What a pass plans.
enum Want<'a> {
    /// The whole desired table again (configuration or roles changed, the kernel
    /// was read, a previous pass failed).
    Full(&'a Inputs<'a>),
    /// Only these real servers (service name, index) changed: a verdict, an override.
    Delta(&'a Inputs<'a>, Vec<(String, usize)>),
    /// Nothing: remove what we own (shutdown).
    Nothing,
}

/// The inputs a pass reads.
struct Inputs<'a> {
    cfg: &'a IpvsConfig,
    roles: &'a Roles,
    checks: &'a BTreeMap<String, Health>,
    overrides: &'a Overrides,
}

impl Inputs<'_> {
    /// A real server's health: its check's verdict, then the operator's override.
    fn health(&self, service: &str, rs: &RealServerConfig) -> Health {
        let o = self.overrides.real_server(service, rs.address);
        let h = checked(self.checks, rs);
        match (o.disabled, h.up, o.weight) {
            (true, _, _) => Health::DOWN,
            (false, true, Some(w)) => Health {
                up: true,
                weight: Some(w),
            },
            _ => h,
        }
    }
}

fn checked(checks: &BTreeMap<String, Health>, rs: &RealServerConfig) -> Health {
    match &rs.check {
        Some(c) => checks.get(c).copied().unwrap_or(Health::UP),
        None => Health::UP,
    }
}

/// The check verdicts that differ from `mirror` (which then follows `new`):
/// compared in place, nothing cloned but what changed.
fn changed_checks(mirror: &mut BTreeMap<String, Health>, new: &BTreeMap<String, Health>) -> Vec<String> {
    let mut changed: Vec<String> = new
        .iter()
        .filter(|(name, h)| mirror.get(*name) != Some(*h))
        .map(|(name, _)| name.clone())
        .collect();
    let added = changed.iter().filter(|c| !mirror.contains_key(*c)).count();
    if mirror.len() + added > new.len() {
        // Some verdicts disappeared (a check removed): those changed too.
        changed.extend(mirror.keys().filter(|k| !new.contains_key(*k)).cloned());
    }
    for name in &changed {
        match new.get(name) {
            Some(h) => mirror.insert(name.clone(), *h),
            None => mirror.remove(name),
        };
    }
    changed
}

/// The check verdicts that changed since the reconciler last looked (`seen`, a
/// sequence number of `Verdicts`); `mirror` then follows. The journal names them,
/// so finding them costs the changes, not the number of checks; a reconciler that
/// fell further behind than the journal compares every check. Also returns how many
/// verdicts were compared (what an event costs, for tests).
fn follow_verdicts(
    mirror: &mut BTreeMap<String, Health>,
    seen: &mut u64,
    verdicts: &Verdicts,
) -> (Vec<String>, usize) {
    let out = match verdicts.changed_since(*seen) {
        Some(names) => {
            let compared = names.len();
            let mut changed = Vec::new();
            for name in names {
                let now = verdicts.get(name).copied();
                if mirror.get(name).copied() != now {
                    match now {
                        Some(h) => mirror.insert(name.to_string(), h),
                        None => mirror.remove(name),
                    };
                    changed.push(name.to_string());
                }
            }
            (changed, compared)
        }
        None => (changed_checks(mirror, verdicts), verdicts.len()),
    };
    *seen = verdicts.seq();
    out
}

/// The real servers (service name, address) whose override differs.
fn changed_overrides(old: &Overrides, new: &Overrides) -> Vec<(String, SocketAddr)> {
    let mut out = Vec::new();
    let empty = BTreeMap::new();
    let names: BTreeSet<&String> = old.real_servers.keys().chain(new.real_servers.keys()).collect();
    for name in names {
        let a = old.real_servers.get(name).unwrap_or(&empty);
        let b = new.real_servers.get(name).unwrap_or(&empty);
        if a == b {
            continue;
        }
        let addrs: BTreeSet<&SocketAddr> = a.keys().chain(b.keys()).collect();
        out.extend(
            addrs
                .into_iter()
                .filter(|x| a.get(*x) != b.get(*x))
                .map(|x| (name.clone(), *x)),
        );
    }
    out
}

pub async fn run(mut inp: ReconcilerInputs) {
    let shared = inp.shared.clone();
    let owned_path = {
        let (path, owned) = load_owned(&inp.state_dir, &inp.runtime_dir);
        shared.0.lock().await.owned = owned;
        path
    };
    let mut backoff = BACKOFF_MIN;
    let mut unavailable_logged = false;
    // When the kernel table was last read (None: never).
    let mut last_read: Option<Instant> = None;
    let (mut config_open, mut roles_open, mut checks_open, mut overrides_open) = (true, true, true, true);
    let mut held_open = true;
    // What the last `publish_written` was of: the configuration, whether the pass
    // succeeded, whether IPVS was unavailable, and the number of services in the
    // desired table. It costs O(services), an event must not: an event's pass
    // (not whole) leaves the set of desired services alone (it may add one, never
    // remove one), and a failed pass publishes nothing but the configuration's names.
    let mut published: Option<(Arc<IpvsConfig>, (bool, bool, usize))> = None;
    loop {
        let mut guard = shared.0.lock().await;
        let Core {
            r,
            owned,
            checks,
            checks_seen,
            built,
            inline,
        } = &mut *guard;
        // What the checks' thread wrote since the last turn, reported here.
        for w in std::mem::take(inline) {
            r.report(&inp.status, &Changed::Some(w.touched), &w.ops, &w.wrote, false);
            if w.wrote.owned_changed {
                save_owned(&owned_path, owned);
            }
        }
        let cfg = inp.config.borrow_and_update().clone();
        let roles = inp
            .roles
            .borrow_and_update()
            .clone()
            .with_vips_held(&inp.vips_held.borrow_and_update());
        let overrides = inp.overrides.borrow_and_update().clone();
        let (verdicts, _) = follow_verdicts(checks, checks_seen, &inp.checks.borrow_and_update());
        let wait = if cfg.services.is_empty() && owned.is_empty() {
            // Nothing to manage: do not even require IPVS.
            {
                let mut st = inp.status.lock();
                *st = StatusState {
                    version: st.version + 1,
                    ..StatusState::default()
                };
            }
            inp.status.publish_written(&cfg, &Table::default(), true, false);
            *built = None;
            published = None;
            None
        } else {
            let inputs = Inputs {
                cfg: &cfg,
                roles: &roles,
                checks,
                overrides: &overrides,
            };
            // The real servers this event changed, when it is only that.
            let delta = match &*built {
                Some((c, ro, o)) if Arc::ptr_eq(c, &cfg) && *ro == roles => {
                    let mut dirty = r.desired.dirty(&verdicts);
                    if !Arc::ptr_eq(o, &overrides) {
                        for (name, addr) in changed_overrides(o, &overrides) {
                            let index = cfg
                                .services
                                .get(&name)
                                .and_then(|s| s.real_servers.iter().position(|rs| rs.address == addr));
                            dirty.extend(index.map(|i| (name, i)));
                        }
                    }
                    Some(dirty)
                }
                _ => None,
            };
            let resync = last_read.is_none_or(|t| t.elapsed() >= cfg.resync_interval);
            let want = match delta {
                Some(dirty) => Want::Delta(&inputs, dirty),
                None => Want::Full(&inputs),
            };
            let dumps = r.counters.dumps;
            let result = r.pass(&inp.status, want, owned, resync).await;
            if r.counters.dumps != dumps {
                last_read = Some(Instant::now());
            }
            let next_resync = last_read.map_or(Duration::ZERO, |t| {
                cfg.resync_interval.saturating_sub(t.elapsed())
            });
            {
                let mut st = inp.status.lock();
                st.managed = true;
                st.counters = r.counters;
                st.version += 1;
                if !Arc::ptr_eq(&st.cfg, &cfg) {
                    st.cfg = cfg.clone();
                }
                if !Arc::ptr_eq(&st.overrides, &overrides) {
                    st.overrides = overrides.clone();
                }
                match &result {
                    Ok(_) => st.error = None,
                    Err(e) => {
                        st.error = Some(e.to_string());
                        st.observed = None;
                    }
                }
                let ok = result.is_ok();
                let unavailable = matches!(result, Err(IpvsError::Unavailable));
                let whole = matches!(&result, Ok(pass) if pass.whole);
                let key = (ok, unavailable, st.desired.services.len());
                let unchanged = !whole
                    && published
                        .as_ref()
                        .is_some_and(|(c, k)| Arc::ptr_eq(c, &cfg) && *k == key);
                if !unchanged {
                    inp.status.publish_written(&cfg, &st.desired, ok, unavailable);
                    published = Some((cfg.clone(), key));
                }
            }
            *built = match &result {
                Ok(pass) if pass.failed == 0 => Some((cfg.clone(), roles.clone(), overrides.clone())),
                // The status's desired table (against an empty kernel) is up to
                // date: while IPVS is off, an event updates its own real servers.
                Err(IpvsError::Unavailable) => Some((cfg.clone(), roles.clone(), overrides.clone())),
                _ => None,
            };
            match result {
                Ok(pass) => {
                    unavailable_logged = false;
                    if pass.owned_changed {
                        save_owned(&owned_path, owned);
                    }
                    if pass.failed > 0 {
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        Some(backoff)
                    } else {
                        backoff = BACKOFF_MIN;
                        Some(next_resync)
                    }
                }
                Err(IpvsError::Unavailable) => {
                    if !unavailable_logged {
                        error!(error = %IpvsError::Unavailable, "IPVS is off; VRRP keeps running, will retry");
                        unavailable_logged = true;
                    }
                    r.disconnect();
                    Some(BACKOFF_MAX)
                }
                Err(e) => {
                    warn!(error = %e, "IPVS reconcile failed, will retry");
                    r.disconnect();
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    Some(backoff)
                }
            }
        };
        // Free for the checks' thread while the reconciler waits.
        drop(guard);
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
            r = inp.vips_held.changed(), if held_open => held_open = r.is_ok(),
            r = inp.checks.changed(), if checks_open => checks_open = r.is_ok(),
            r = inp.overrides.changed(), if overrides_open => overrides_open = r.is_ok(),
            _ = sleep => {}
            reply = &mut inp.stop => {
                // Only on request: a dropped sender means the daemon failed, and
                // its services are better left serving than torn down.
                let Ok(done) = reply else { return };
                let mut guard = shared.0.lock().await;
                let core = &mut *guard;
                // No inline write from now on: the desired table is empty.
                core.built = None;
                if !core.owned.is_empty() {
                    info!(services = core.owned.len(), "removing IPVS services");
                    let _ = core.r.pass(&inp.status, Want::Nothing, &mut core.owned, false).await;
                    save_owned(&owned_path, &core.owned);
                }
                let _ = done.send(());
                return;
            }
        }
    }
}

impl Reconciler {
    /// Brings the status's copy of the desired table up to date: what a pass
    /// touched (an event: its own real servers), or all of it (a whole pass).
    /// After the write: a status reader building its snapshot under the lock
    /// (O(table)) delays this, never a write.
    fn sync_status(&self, status: &IpvsStatus, changed: &Changed) {
        let mut st = status.lock();
        match changed {
            Changed::All => st.desired.clone_from(&self.table),
            Changed::Some(touched) => {
                for t in touched {
                    let key = match t {
                        Touched::Service(k) | Touched::Dest(k, _) => k,
                    };
                    let ours = self.table.services.get(key);
                    match (t, ours, st.desired.services.get_mut(key)) {
                        (Touched::Dest(_, addr), Some(ours), Some(copy)) => match ours.dests.get(addr) {
                            Some(d) => {
                                copy.dests.insert(*addr, d.clone());
                            }
                            None => {
                                copy.dests.remove(addr);
                            }
                        },
                        (_, Some(ours), _) => {
                            st.desired.services.insert(*key, ours.clone());
                        }
                        (_, None, _) => {
                            st.desired.services.remove(key);
                        }
                    }
                }
            }
        }
    }

    fn disconnect(&mut self) {
        self.ipvs = None;
        self.written.forget();
    }

    /// One pass: dump first if the model is unknown or `resync` is due (and count
    /// what changed behind our back), bring the desired table (in `status`) up to
    /// date, plan against the model (only what `want` touched, unless the kernel
    /// was just read), execute, update the model. Individual op failures are logged
    /// and counted (the model is dropped, so the next pass reads the kernel and
    /// retries them); connection-level failures are returned.
    async fn pass(
        &mut self,
        status: &IpvsStatus,
        want: Want<'_>,
        owned: &mut BTreeSet<ServiceKey>,
        resync: bool,
    ) -> Result<Pass, IpvsError> {
        if self.ipvs.is_none() {
            self.written.forget();
            let conn = match Ipvs::connect().await {
                Ok(c) => c,
                Err(e) => {
                    // The status still shows what is wanted (against an empty kernel):
                    // built whole, then (while IPVS stays off) event by event.
                    let table = &mut self.table;
                    let changed = match &want {
                        Want::Delta(inp, dirty) if matches!(e, IpvsError::Unavailable) => Changed::Some(
                            dirty
                                .iter()
                                .filter_map(|(name, i)| {
                                    self.desired.update(table, inp.cfg, inp.roles, name, *i, |s, rs| {
                                        inp.health(s, rs)
                                    })
                                })
                                .collect(),
                        ),
                        Want::Full(inp) | Want::Delta(inp, _) => {
                            self.desired
                                .rebuild(table, inp.cfg, inp.roles, &Table::default(), |s, rs| {
                                    inp.health(s, rs)
                                });
                            Changed::All
                        }
                        Want::Nothing => Changed::Some(Vec::new()),
                    };
                    self.sync_status(status, &changed);
                    return Err(e);
                }
            };
            let mut conn = conn;
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
            self.ipvs = Some(conn);
        }
        let conn = self.ipvs.as_mut().expect("connected above");
        let mut read = false;
        if resync || self.written.needs_dump() {
            let periodic = !self.written.needs_dump();
            let mut observed = conn.dump()?;
            read = true;
            self.counters.dumps += 1;
            self.counters.last_dump_ms = Some(observed.read.total.as_secs_f64() * 1e3);
            let table = std::mem::take(&mut observed.table);
            let drift = self.written.observe(table, owned);
            if periodic && !drift.is_empty() {
                self.counters.drift += drift.len() as u64;
                warn!(
                    entries = drift.len(),
                    first = %drift[0],
                    "IPVS table changed behind hafront's back; repairing"
                );
                for op in &drift {
                    debug!(repair = %op, "IPVS drift");
                }
            }
            status.lock().observed = Some(observed);
        }
        let full = read || !matches!(want, Want::Delta(..));
        let before = full.then(|| owned.clone());
        let mut pass = Pass {
            whole: full,
            ..Pass::default()
        };
        // The desired table follows the event, and the ops are planned, on the
        // reconciler's own table: no lock between a verdict and its write (the
        // status's copy follows after the write).
        let empty = Table::default();
        let (ops, changed) = match want {
            Want::Nothing => {
                self.table = Table::default();
                (self.written.plan(&self.table, owned), Changed::All)
            }
            Want::Full(inp) | Want::Delta(inp, _) if full => {
                let actual = self.written.model().unwrap_or(&empty);
                self.desired
                    .rebuild(&mut self.table, inp.cfg, inp.roles, actual, |s, rs| {
                        inp.health(s, rs)
                    });
                (self.written.plan(&self.table, owned), Changed::All)
            }
            Want::Delta(inp, dirty) => {
                let (ops, touched) = self.plan_dirty(inp, &dirty, owned);
                (ops, Changed::Some(touched))
            }
            Want::Full(_) => unreachable!("full above"),
        };
        if full {
            let actual = self.written.model().unwrap_or(&empty);
            // Forget keys that are gone from both sides (deleted behind our back).
            owned.retain(|k| actual.services.contains_key(k) || self.table.services.contains_key(k));
            owned.extend(self.table.services.keys().copied());
        }
        let wrote = self.write(&ops, owned);
        self.report(status, &changed, &ops, &wrote, resync);
        pass.applied = wrote.applied;
        pass.failed = wrote.failed;
        pass.owned_changed = wrote.owned_changed || before.is_some_and(|b| b != *owned);
        Ok(pass)
    }

    /// Plans real servers `dirty` (service name, index) alone: their entries in the
    /// desired table follow their inputs, and the ops are what differs from the
    /// model. Returns the ops and what the desired table changed.
    fn plan_dirty(
        &mut self,
        inp: &Inputs<'_>,
        dirty: &[(String, usize)],
        owned: &BTreeSet<ServiceKey>,
    ) -> (Vec<Op>, Vec<Touched>) {
        let table = &mut self.table;
        let touched: Vec<Touched> = dirty
            .iter()
            .filter_map(|(name, i)| {
                self.desired
                    .update(table, inp.cfg, inp.roles, name, *i, |s, rs| inp.health(s, rs))
            })
            .collect();
        let ops = self.written.plan_delta(table, &touched, owned).ops;
        (ops, touched)
    }

    /// Writes `ops` (in plan order, in batches, see io.rs) and brings the model,
    /// `owned` and the counters up to date. A refusal is logged here; the rest of
    /// what a write tells (status, events, summary) is `report`'s.
    fn write(&mut self, ops: &[Op], owned: &mut BTreeSet<ServiceKey>) -> Wrote {
        let mut wrote = Wrote::default();
        let Some(conn) = self.ipvs.as_mut().filter(|_| !ops.is_empty()) else {
            return wrote;
        };
        let sent = Instant::now();
        let results = conn.execute_all(ops);
        // The kernel's round trips alone: what an event's latency is compared with
        // (issue 16, vm-tests/bench-ipvs-keepalived.sh).
        wrote.write_ms = sent.elapsed().as_secs_f64() * 1e3;
        self.counters.writes += ops.len() as u64;
        for (op, result) in ops.iter().zip(results) {
            match result {
                Ok(()) => {
                    wrote.applied += 1;
                    debug!(op = %op, "IPVS");
                    match op {
                        Op::DelService(k) => wrote.owned_changed |= owned.remove(k),
                        Op::NewService(s) => wrote.owned_changed |= owned.insert(s.key),
                        _ => {}
                    }
                    wrote.oks.push(true);
                }
                Err(error) => {
                    wrote.failed += 1;
                    warn!(service = %op.service(), %error, errno = error.errno(), "IPVS operation failed, will retry");
                    wrote.oks.push(false);
                }
            }
        }
        self.counters.write_failures += wrote.failed as u64;
        self.written.applied(ops.iter().zip(wrote.oks.iter().copied()));
        wrote
    }

    /// After a write (or a plan with nothing to write): the status's copy of the
    /// desired table, the event stream, the summary line.
    fn report(&self, status: &IpvsStatus, changed: &Changed, ops: &[Op], wrote: &Wrote, resync: bool) {
        self.sync_status(status, changed);
        if ops.is_empty() {
            return;
        }
        publish_ops(ops, &wrote.oks, resync);
        info!(
            applied = wrote.applied,
            failed = wrote.failed,
            services = self.table.services.len(),
            write_ms = format_args!("{:.3}", wrote.write_ms),
            "IPVS table reconciled"
        );
    }
}

/// What a write did.
#[derive(Debug, Default)]
struct Wrote {
    /// Per op, in order: whether the kernel took it.
    oks: Vec<bool>,
    applied: usize,
    failed: usize,
    owned_changed: bool,
    write_ms: f64,
}

/// Ops one pass reports one by one on the event stream; beyond, one summary (a
/// start or a new master installs thousands of real servers at once).
const EVENTS_PER_PASS: usize = 64;

/// What a pass wrote to the kernel, on the event stream.
fn publish_ops(ops: &[Op], oks: &[bool], resync: bool) {
    use crate::events::{publish, Kind};
    let why = if resync {
        "repair after the periodic read-back"
    } else {
        "configuration, health check, role or override change"
    };
    if ops.len() > EVENTS_PER_PASS {
        let failed = oks.iter().filter(|ok| !**ok).count();
        publish(|| Kind::RealServer {
            service: "*".into(),
            address: None,
            action: "batch",
            weight: None,
            ok: failed == 0,
            reason: format!("{} IPVS operations ({failed} failed): {why}", ops.len()),
        });
        return;
    }
    for (op, ok) in ops.iter().zip(oks) {
        publish(|| {
            let (address, action, weight) = match op {
                Op::DelService(_) => (None, "service_removed", None),
                Op::NewService(_) => (None, "service_added", None),
                Op::SetService(_) => (None, "service_edited", None),
                Op::DelDest(_, a) => (Some(a.to_string()), "removed", None),
                Op::NewDest(_, d) => (Some(d.addr.to_string()), "added", Some(d.weight)),
                Op::SetDest(_, d) => (Some(d.addr.to_string()), "edited", Some(d.weight)),
            };
            Kind::RealServer {
                service: op.service().to_string(),
                address,
                action,
                weight,
                ok: *ok,
                reason: if *ok {
                    format!("{op}: {why}")
                } else {
                    format!("{op} refused by the kernel, will retry")
                },
            }
        });
    }
}

/// The status of every configured service: the desired table beside the kernel's
/// counters (`observed`: `None` when IPVS could not be read).
fn snapshot(
    cfg: &IpvsConfig,
    overrides: &Overrides,
    checked: &dyn Fn(&RealServerConfig) -> Health,
    desired: &Table,
    observed: Option<&Observed>,
    error: Option<String>,
) -> IpvsSnapshot {
    let mut out = IpvsSnapshot {
        available: Some(observed.is_some()),
        error,
        services: BTreeMap::new(),
        sync: SyncCounters::default(),
    };
    for (name, s) in &cfg.services {
        let Some(spec) = service_spec(s) else { continue };
        let want = desired.services.get(&spec.key);
        let sorry_server_active = match (want, s.sorry_server) {
            (Some(w), Some(sorry)) => {
                w.dests.contains_key(&sorry) && !s.real_servers.iter().any(|r| r.address == sorry)
            }
            _ => false,
        };
        let real_servers: Vec<RealServerStatus> = s
            .real_servers
            .iter()
            .map(|rs| {
                let o = overrides.real_server(name, rs.address);
                RealServerStatus {
                    address: rs.address,
                    configured_weight: rs.weight,
                    weight: want.and_then(|w| w.dests.get(&rs.address)).map(|d| d.weight),
                    healthy: checked(rs).up,
                    disabled: o.disabled,
                    weight_override: o.weight,
                    counters: observed
                        .and_then(|obs| obs.dest_counters.get(&spec.key)?.get(&rs.address).copied()),
                }
            })
            .collect();
        let live_weight: u64 = real_servers
            .iter()
            .filter(|rs| rs.healthy && !rs.disabled)
            .filter_map(|rs| rs.weight.map(u64::from))
            .sum();
        let quorum_lost = want.is_some() && live_weight < u64::from(s.quorum);
        out.services.insert(
            name.clone(),
            ServiceStatus {
                key: spec.key.to_string(),
                scheduler: spec.scheduler.clone(),
                installed: want.is_some(),
                sorry_server_active,
                quorum_lost,
                stats: observed.and_then(|obs| obs.service_stats.get(&spec.key).copied()),
                real_servers,
            },
        );
    }
    out
}

const OWNED_FILE: &str = "ipvs-owned.json";

fn read_owned(path: &Path) -> Option<BTreeSet<ServiceKey>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => {
            warn!(path = %path.display(), %error, "cannot read the IPVS services hafront owns");
            return None;
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(owned) => Some(owned),
        Err(error) => {
            warn!(path = %path.display(), %error, "unreadable record of the IPVS services hafront owns; ignored");
            None
        }
    }
}

/// The services hafront owns, from `<state_dir>/ipvs-owned.json`, merged with a
/// file an older version left in `runtime_dir` (which is then moved to state_dir
/// and removed). Returns the path to save to.
fn load_owned(state_dir: &Path, runtime_dir: &Path) -> (PathBuf, BTreeSet<ServiceKey>) {
    let path = state_dir.join(OWNED_FILE);
    let mut owned = read_owned(&path).unwrap_or_default();
    let legacy = runtime_dir.join(OWNED_FILE);
    if legacy != path {
        if let Some(old) = read_owned(&legacy) {
            info!(from = %legacy.display(), to = %path.display(), services = old.len(),
                  "moving the record of owned IPVS services to state_dir");
            owned.extend(old);
            // Remove the old file only once the new one holds everything.
            if save_owned(&path, &owned) {
                if let Err(error) = std::fs::remove_file(&legacy) {
                    warn!(path = %legacy.display(), %error, "cannot remove the old record of owned IPVS services");
                }
            }
        }
    }
    (path, owned)
}

fn save_owned(path: &Path, owned: &BTreeSet<ServiceKey>) -> bool {
    let text = serde_json::to_vec(owned).unwrap_or_default();
    // Durable: after a power loss a torn record would make hafront forget (and
    // never remove) services it created.
    if let Err(error) = crate::durable::write(path, &text) {
        warn!(%error, "cannot record the IPVS services hafront owns");
        return false;
    }
    true
}

/// What `hafront ipvs-sync` did.
#[derive(Debug)]
pub struct SyncReport {
    pub ops: Vec<Op>,
    pub failed: usize,
    pub dump: Duration,
    /// Of `dump`, the time inside the kernel's sendmsg/recvmsg.
    pub dump_kernel: Duration,
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
    let observed = conn.dump()?;
    let dump = t.elapsed();
    let actual = observed.table;
    let t = std::time::Instant::now();
    let desired = desired_table(&cfg.ipvs, &roles, &actual, |_, _| Health::UP);
    let ops = plan(&desired, &actual, &BTreeSet::new());
    let plan_time = t.elapsed();
    let t = std::time::Instant::now();
    let mut failed = 0;
    if !dry_run {
        for (op, result) in ops.iter().zip(conn.execute_all(&ops)) {
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
        dump_kernel: observed.read.kernel,
        plan: plan_time,
        apply: t.elapsed(),
        total: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::Protocol;

    fn key(port: u16) -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: SocketAddr::from(([192, 0, 2, 100], port)),
        }
    }

    fn dirs(name: &str) -> (PathBuf, PathBuf) {
        let base = std::env::temp_dir().join(format!("hafront-owned-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let run = base.join("run");
        std::fs::create_dir_all(&run).unwrap();
        // state_dir does not exist yet: the first save creates it.
        (base.join("state"), run)
    }

    /// The status's copy of the desired table follows the reconciler's own, entry by
    /// entry after an event, whole after a whole pass.
    #[test]
    fn status_copy_follows_what_a_pass_touched() {
        use crate::ipvs::{DestSpec, Forward, ServiceSpec};
        let dest = |last: u8, weight: u32| {
            DestSpec::new(SocketAddr::from(([192, 0, 2, last], 80)), Forward::Nat, weight)
        };
        let (_tx, checks) = watch::channel(Verdicts::default());
        let (written, _rx) = watch::channel(Default::default());
        let status = IpvsStatus::new(checks, written);
        let mut r = Reconciler::default();
        r.table
            .insert(ServiceSpec::new(key(80), "wrr"), [dest(1, 1), dest(2, 1)]);
        r.table.insert(ServiceSpec::new(key(81), "wrr"), [dest(1, 1)]);
        r.sync_status(&status, &Changed::All);
        assert_eq!(status.lock().desired, r.table);

        // An event: one real server gone, one re-weighted, one service rebuilt whole,
        // one service new to the copy (touched as a real server of it).
        let s80 = r.table.services.get_mut(&key(80)).unwrap();
        s80.dests.remove(&dest(2, 1).addr);
        s80.dests.insert(dest(1, 5).addr, dest(1, 5));
        r.table.insert(ServiceSpec::new(key(81), "rr"), [dest(3, 1)]);
        r.table.insert(ServiceSpec::new(key(82), "wrr"), [dest(4, 1)]);
        let untouched_before = status.lock().desired.clone();
        let touched = vec![
            Touched::Dest(key(80), dest(2, 1).addr),
            Touched::Dest(key(80), dest(1, 1).addr),
            Touched::Service(key(81)),
            Touched::Dest(key(82), dest(4, 1).addr),
        ];
        r.sync_status(&status, &Changed::Some(touched));
        assert_eq!(status.lock().desired, r.table);
        assert_ne!(status.lock().desired, untouched_before);

        // What was not touched is not copied: a pass names what it changed.
        r.table.services.get_mut(&key(82)).unwrap().dests.clear();
        r.sync_status(&status, &Changed::Some(vec![]));
        assert_eq!(status.lock().desired.services[&key(82)].dests.len(), 1);
        // A service gone from the reconciler's table leaves the copy when touched.
        r.table.services.remove(&key(82));
        r.sync_status(&status, &Changed::Some(vec![Touched::Service(key(82))]));
        assert_eq!(status.lock().desired, r.table);
    }

    /// An inline writer over fresh inputs, with their senders.
    struct InlineRig {
        cfg_tx: watch::Sender<Arc<IpvsConfig>>,
        roles_tx: watch::Sender<Roles>,
        _held_tx: watch::Sender<VipsHeld>,
        _overrides_tx: watch::Sender<Arc<Overrides>>,
        checks_tx: watch::Sender<Verdicts>,
        shared: Shared,
        writer: InlineWriter,
    }

    fn inline_rig() -> InlineRig {
        let (cfg_tx, config) = watch::channel(Arc::new(IpvsConfig::default()));
        let (roles_tx, roles) = watch::channel(Roles::default());
        let (_held_tx, vips_held) = watch::channel(VipsHeld::default());
        let (_overrides_tx, overrides) = watch::channel(Arc::new(Overrides::default()));
        let (checks_tx, checks) = watch::channel(Verdicts::default());
        let shared = Shared::default();
        let writer = InlineWriter {
            shared: shared.clone(),
            config,
            roles,
            vips_held,
            overrides,
            checks,
        };
        InlineRig {
            cfg_tx,
            roles_tx,
            _held_tx,
            _overrides_tx,
            checks_tx,
            shared,
            writer,
        }
    }

    /// A changed verdict reaches every watcher, written inline or not (it is
    /// published silently until the write is done); an unchanged one wakes no one.
    #[test]
    fn a_changed_verdict_is_published_to_the_watchers_written_or_not() {
        let rig = inline_rig();
        let mut watcher = rig.checks_tx.subscribe();
        let publish =
            |writer: Option<&InlineWriter>, health| publish_verdict(&rig.checks_tx, writer, "rs2", health);
        // Nothing built: the hook holds the state, cannot write, still tells.
        assert_eq!(
            publish(Some(&rig.writer), Health::DOWN),
            Published::LeftToReconciler
        );
        assert!(watcher.has_changed().unwrap());
        assert_eq!(watcher.borrow_and_update().get("rs2"), Some(&Health::DOWN));
        assert_eq!(publish(Some(&rig.writer), Health::DOWN), Published::Unchanged);
        assert!(!watcher.has_changed().unwrap());
        // No IPVS in the configuration: no inline writer at all.
        assert_eq!(publish(None, Health::UP), Published::LeftToReconciler);
        assert!(watcher.has_changed().unwrap());
        assert_eq!(watcher.borrow_and_update().get("rs2"), Some(&Health::UP));
        // The reconciler's state was let go each time.
        assert!(rig.shared.0.try_lock().is_ok());
    }

    /// The inline writer writes only for an idle, up-to-date reconciler; otherwise
    /// it leaves the verdict unread, for the reconciler its watch wakes. (Its write
    /// itself needs IPVS: vm-tests/ipvs.sh, step 3b.)
    #[test]
    fn a_verdict_the_inline_writer_cannot_write_is_left_to_the_reconciler() {
        let InlineRig {
            cfg_tx,
            roles_tx,
            checks_tx,
            shared,
            writer,
            ..
        } = inline_rig();
        let (config, overrides) = (writer.config.clone(), writer.overrides.clone());
        let writes = || writer.hold().is_some_and(InlineHold::verdicts_changed);
        checks_tx.send_modify(|v| {
            v.set("rs2", Health::DOWN);
        });
        let build = || {
            shared.0.try_lock().expect("free").built = Some((
                config.borrow().clone(),
                Roles::default(),
                overrides.borrow().clone(),
            ))
        };
        // Nothing built yet: the first pass is the reconciler's, whole.
        assert!(!writes());
        // Built from the inputs in force, but no connection to the kernel.
        build();
        assert!(!writes());
        // A pass is running.
        {
            let _pass = shared.0.try_lock().expect("free");
            assert!(!writes());
        }
        // The configuration, then the roles, changed since the table was built.
        cfg_tx.send_replace(Arc::new(IpvsConfig::default()));
        assert!(!writes());
        build();
        roles_tx.send_replace(Roles {
            masters: ["web".to_string()].into(),
            ..Roles::default()
        });
        assert!(!writes());
        // Each time, the verdict stayed new to the reconciler.
        let core = shared.0.try_lock().expect("free");
        assert_eq!(core.checks_seen, 0);
        assert!(core.checks.is_empty());
        assert!(core.inline.is_empty());
        assert_eq!(core.r.counters.inline_writes, 0);
    }

    #[test]
    fn owned_services_are_kept_in_state_dir() {
        let (state, run) = dirs("state");
        let (path, owned) = load_owned(&state, &run);
        assert_eq!(path, state.join("ipvs-owned.json"));
        assert!(owned.is_empty());
        assert!(save_owned(&path, &BTreeSet::from([key(80)])));
        // runtime_dir emptied (systemd's RuntimeDirectoryPreserve=no): still owned.
        std::fs::remove_dir_all(&run).unwrap();
        assert_eq!(load_owned(&state, &run).1, BTreeSet::from([key(80)]));
        let _ = std::fs::remove_dir_all(state.parent().unwrap());
    }

    #[test]
    fn a_file_left_in_runtime_dir_by_an_older_version_is_moved() {
        let (state, run) = dirs("legacy");
        let legacy = run.join("ipvs-owned.json");
        std::fs::write(&legacy, serde_json::to_vec(&BTreeSet::from([key(80)])).unwrap()).unwrap();
        let (path, owned) = load_owned(&state, &run);
        assert_eq!(owned, BTreeSet::from([key(80)]));
        assert!(!legacy.exists(), "the old file is removed once moved");
        assert_eq!(read_owned(&path), Some(BTreeSet::from([key(80)])));
        // Both present (a crash between the write and the removal): the union.
        std::fs::write(&legacy, serde_json::to_vec(&BTreeSet::from([key(443)])).unwrap()).unwrap();
        assert_eq!(load_owned(&state, &run).1, BTreeSet::from([key(80), key(443)]));
        let _ = std::fs::remove_dir_all(state.parent().unwrap());
    }

    #[test]
    fn an_unreadable_record_is_ignored() {
        let (state, run) = dirs("bad");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(state.join("ipvs-owned.json"), b"{not json").unwrap();
        assert!(load_owned(&state, &run).1.is_empty());
        let _ = std::fs::remove_dir_all(state.parent().unwrap());
    }

    #[test]
    fn changed_verdicts_are_found_and_followed() {
        let mut mirror = BTreeMap::new();
        let mut new: BTreeMap<String, Health> = (0..1000).map(|i| (format!("c{i}"), Health::UP)).collect();
        assert_eq!(changed_checks(&mut mirror, &new).len(), 1000);
        assert_eq!(mirror, new);
        assert!(changed_checks(&mut mirror, &new).is_empty());
        new.insert("c7".into(), Health::DOWN);
        new.insert(
            "c8".into(),
            Health {
                up: true,
                weight: Some(3),
            },
        );
        new.remove("c9");
        let mut changed = changed_checks(&mut mirror, &new);
        changed.sort();
        assert_eq!(changed, ["c7", "c8", "c9"]);
        assert_eq!(mirror, new);
    }

    #[test]
    fn a_verdict_is_found_in_the_same_work_whatever_the_number_of_checks() {
        // Issue 16: with one check per real server, comparing every verdict per
        // event grew with the table. The journal names the change: one compared,
        // for 10 or 100,000 checks.
        for n in [10usize, 100_000] {
            let mut v = Verdicts::default();
            for i in 0..n {
                v.set(&format!("c{i}"), Health::UP);
            }
            let (mut mirror, mut seen) = (BTreeMap::new(), 0);
            let (first, _) = follow_verdicts(&mut mirror, &mut seen, &v);
            assert_eq!(first.len(), n, "{n}: every verdict is new at first");
            assert_eq!(seen, v.seq());
            v.set("c7", Health::DOWN);
            assert_eq!(
                follow_verdicts(&mut mirror, &mut seen, &v),
                (vec!["c7".to_string()], 1),
                "{n} checks"
            );
            assert_eq!(mirror.get("c7"), Some(&Health::DOWN));
            // Down and up again before the reconciler looked: nothing to plan.
            v.set("c8", Health::DOWN);
            v.set("c8", Health::UP);
            assert_eq!(follow_verdicts(&mut mirror, &mut seen, &v), (vec![], 1));
            assert_eq!(follow_verdicts(&mut mirror, &mut seen, &v), (vec![], 0));
            assert_eq!(mirror, *v, "{n}: the mirror follows");
        }
    }

    #[test]
    fn a_reconciler_behind_the_journal_compares_every_verdict() {
        let mut v = Verdicts::default();
        let n = Verdicts::JOURNAL + 5;
        for i in 0..n {
            v.set(&format!("c{i}"), Health::UP);
        }
        let (mut mirror, mut seen) = (BTreeMap::new(), 0);
        follow_verdicts(&mut mirror, &mut seen, &v);
        for i in 0..n {
            v.set(&format!("c{i}"), Health::DOWN);
        }
        v.set("c0", Health::UP);
        let (mut changed, compared) = follow_verdicts(&mut mirror, &mut seen, &v);
        assert_eq!(compared, n, "fell behind: compares all");
        changed.sort();
        let mut want: Vec<String> = (1..n).map(|i| format!("c{i}")).collect();
        want.sort();
        assert_eq!(changed, want, "c0 is back as it was");
        assert_eq!(mirror, *v);
    }

    #[test]
    fn changed_overrides_name_the_real_servers() {
        let a: SocketAddr = "192.0.2.11:80".parse().unwrap();
        let b: SocketAddr = "192.0.2.12:80".parse().unwrap();
        let mut old = Overrides::default();
        old.set_real_server(
            "web",
            a,
            crate::overrides::RealServerOverride {
                disabled: true,
                weight: None,
            },
        );
        let mut new = old.clone();
        assert!(changed_overrides(&old, &new).is_empty());
        new.set_real_server("web", a, Default::default());
        new.set_real_server(
            "api",
            b,
            crate::overrides::RealServerOverride {
                disabled: false,
                weight: Some(5),
            },
        );
        assert_eq!(
            changed_overrides(&old, &new),
            vec![("api".to_string(), b), ("web".to_string(), a)]
        );
    }
}
