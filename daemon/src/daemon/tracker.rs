//! The tracking task: gathers the state of tracked items (interfaces from netlink
//! link events, checks and scripts from the checkers, files by polling), computes
//! every instance's effective priority and fault (`crate::track`), sync groups
//! included, and sends the changes to the engine as `Control::Track`. The checks
//! it starts publish their verdicts for the IPVS reconciler (real servers with
//! `check`) themselves, on the checks' thread, as they change.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::engine::Control;
pub use crate::checks::CheckerSlot;
use crate::checks::{CheckEvent, Checker, CheckerHandle, CheckerOptions, VerdictHook};
use crate::config::checks::CheckConfig;
use crate::config::Config;
use crate::net::vip::VipEvent;
use crate::net::Links;
use crate::overrides::Overrides;
pub use crate::shared::{AnycastTracking, InstanceTracking, TrackedItemStatus, TrackingSnapshot};
use crate::shared::{Health, Verdicts};
use crate::track::{effective, sync_group_faults, Fault, Kind, States, Tracked};

const FILE_POLL: Duration = Duration::from_secs(1);
/// Scripts run in their own checker, under this prefix, so their names never
/// collide with checks'.
const SCRIPT_PREFIX: &str = "script:";

pub struct TrackerInputs {
    pub config: watch::Receiver<Arc<Config>>,
    /// Operator overrides: the base priority of an instance.
    pub overrides: watch::Receiver<Arc<Overrides>>,
    /// What is tracked and how it stands, for the API.
    pub status: watch::Sender<Arc<TrackingSnapshot>>,
    /// The running checkers, for the API's view of every check.
    pub checkers: CheckerSlot,
    pub engine: mpsc::Sender<Control>,
    /// Check name -> health (with an exec check's dynamic weight), for IPVS real
    /// servers (receivers woken only when a verdict changed).
    pub check_states: watch::Sender<Verdicts>,
    /// Writes a changed verdict to IPVS on the checks' thread (`None`: the
    /// reconciler alone follows `check_states`).
    pub ipvs_inline: Option<crate::ipvs::reconcile::InlineWriter>,
    pub links: Links,
    /// Link events (index, up): the engine passes on what its one subscription
    /// hears; `None` when there is none.
    pub link_events: Option<mpsc::UnboundedReceiver<(u32, bool)>>,
    /// Supervised services going up, down or failed (`crate::supervise`).
    pub services: mpsc::UnboundedReceiver<crate::supervise::ServiceEvent>,
    /// VIPs the kernel refused, and adds that succeed again (`crate::net::vip`).
    pub vip_events: Option<mpsc::UnboundedReceiver<VipEvent>>,
}

/// What the engine was last told, per instance.
type Sent = BTreeMap<String, (u8, bool)>;

pub async fn run(mut inp: TrackerInputs) {
    let mut link_events = inp.link_events.take();
    let mut vip_events = inp.vip_events.take();
    let (ev_tx, mut events) = mpsc::unbounded_channel::<CheckEvent>();
    let mut checkers: Option<(CheckerHandle, CheckerHandle)> = None;
    let mut states = States::default();
    let mut ifindex: BTreeMap<u32, String> = BTreeMap::new();
    let mut sent: Sent = BTreeMap::new();
    let mut cfg = inp.config.borrow_and_update().clone();
    let mut overrides = inp.overrides.borrow_and_update().clone();
    let mut poll = tokio::time::interval(FILE_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reconfigure = true;
    loop {
        if reconfigure {
            reconfigure = false;
            ifindex = resolve_interfaces(&inp.links, &cfg, &mut states).await;
            checkers = start_checkers(&cfg, checkers, &ev_tx, &inp.check_states, &inp.ipvs_inline);
            if let Some((c, s)) = &checkers {
                *inp.checkers.lock().unwrap_or_else(|p| p.into_inner()) = vec![c.clone(), s.clone()];
            }
            read_files(&cfg, &mut states);
            publish(&cfg, &overrides, &states, &mut sent, &inp).await;
            release_freed_memory();
        }
        tokio::select! {
            r = inp.config.changed() => {
                if r.is_err() {
                    return;
                }
                cfg = inp.config.borrow_and_update().clone();
                reconfigure = true;
            }
            r = inp.overrides.changed() => {
                if r.is_ok() {
                    overrides = inp.overrides.borrow_and_update().clone();
                    publish(&cfg, &overrides, &states, &mut sent, &inp).await;
                }
            }
            Some((index, up)) = recv_opt(&mut link_events) => {
                if let Some(name) = ifindex.get(&index) {
                    if states.set(Kind::Interface, name, up) {
                        info!(interface = name.as_str(), up, "tracked interface changed");
                        crate::events::publish(|| crate::events::Kind::Tracked {
                            kind: "interface",
                            name: name.clone(),
                            up,
                            reason: format!("link {}", if up { "up" } else { "down" }),
                        });
                        publish(&cfg, &overrides, &states, &mut sent, &inp).await;
                    }
                }
            }
            Some(ev) = events.recv() => {
                let (kind, name) = match ev.name.strip_prefix(SCRIPT_PREFIX) {
                    Some(s) => (Kind::Script, s.to_string()),
                    None => (Kind::Check, ev.name.clone()),
                };
                info!(kind = kind.as_str(), name = name.as_str(), up = ev.up, reason = ev.reason.as_str(), "tracked item changed");
                crate::events::publish(|| crate::events::Kind::Check {
                    check: name.clone(),
                    kind: kind.as_str(),
                    up: ev.up,
                    dynamic_weight: ev.dynamic_weight,
                    reason: ev.reason.clone(),
                });
                if states.set(kind, &name, ev.up) {
                    publish(&cfg, &overrides, &states, &mut sent, &inp).await;
                }
            }
            Some(ev) = inp.services.recv() => {
                info!(kind = "service", name = ev.name.as_str(), up = ev.up, failed = ev.failed, reason = ev.reason.as_str(), "tracked item changed");
                crate::events::publish(|| crate::events::Kind::Service {
                    service: ev.name.clone(),
                    up: ev.up,
                    failed: ev.failed,
                    reason: ev.reason.clone(),
                });
                let a = states.set(Kind::Service, &ev.name, ev.up);
                let b = states.set_service_failed(&ev.name, ev.failed);
                if a || b {
                    publish(&cfg, &overrides, &states, &mut sent, &inp).await;
                }
            }
            Some(ev) = recv_opt(&mut vip_events) => {
                let changed = match ev {
                    VipEvent::Refused { instance, detail } => {
                        let started = states.vip_refused(&instance, detail, std::time::Instant::now());
                        if let Some(h) = states.refusal_hold(&instance).filter(|_| started) {
                            warn!(
                                instance = instance.as_str(),
                                detail = h.detail.as_str(),
                                hold_s = h.until.saturating_duration_since(std::time::Instant::now()).as_secs_f32().round(),
                                "virtual address refused: advertising priority 1 so a backup that can hold it takes over"
                            );
                        }
                        started
                    }
                    VipEvent::Added { instance } => {
                        let ended = states.vip_added(&instance);
                        if ended {
                            info!(instance = instance.as_str(), "virtual addresses accepted again: priority restored");
                        }
                        ended
                    }
                };
                if changed {
                    publish(&cfg, &overrides, &states, &mut sent, &inp).await;
                }
            }
            _ = poll.tick() => {
                let files = read_files(&cfg, &mut states);
                let holds = states.expire_refusals(std::time::Instant::now());
                if holds {
                    info!("virtual address refusal hold over: priority restored, a retake retries the add");
                }
                if files || holds {
                    publish(&cfg, &overrides, &states, &mut sent, &inp).await;
                }
            }
        }
    }
}

/// Why an instance's tracking result is what it is, for the event stream: its
/// faults, else the items that lower or raise its priority, else the override.
fn tracking_reason(snapshot: &TrackingSnapshot, name: &str, priority: u8) -> String {
    let Some(t) = snapshot.instances.get(name) else {
        return format!("priority {priority}");
    };
    if !t.reasons.is_empty() {
        return t.reasons.join("; ");
    }
    let moved: Vec<String> = t
        .items
        .iter()
        .filter(|i| i.weight != 0 && (i.up == Some(false) || (i.up.is_some() && i.weight > 0)))
        .map(|i| {
            format!(
                "{} {} {} (weight {})",
                i.kind,
                i.name,
                if i.up == Some(true) { "up" } else { "down" },
                i.weight
            )
        })
        .collect();
    match (moved.is_empty(), t.priority_overridden) {
        (false, _) => format!("priority {priority}: {}", moved.join(", ")),
        (true, true) => format!(
            "priority {priority}: operator override (base {})",
            t.base_priority
        ),
        (true, false) => format!("priority {priority}: every tracked item healthy"),
    }
}

/// Gives the heap freed since start or reload back to the kernel. glibc keeps
/// freed memory for reuse: parsing a large configuration (10,000 checks: tens of
/// MB of intermediate values) would otherwise stay in the RSS for good.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and shrinks glibc's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

async fn recv_opt<T>(rx: &mut Option<mpsc::UnboundedReceiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Interfaces that matter: tracked ones and each instance's own (a sync-group member
/// whose link is down is in fault). A missing interface counts as down.
async fn resolve_interfaces(links: &Links, cfg: &Config, states: &mut States) -> BTreeMap<u32, String> {
    let mut names: BTreeSet<String> = BTreeSet::new();
    for inst in cfg.vrrp.instances.values() {
        names.insert(inst.interface.clone());
        names.extend(inst.track_interfaces.iter().map(|t| t.name.clone()));
    }
    for a in cfg.anycast.values() {
        names.extend(a.track_interfaces.iter().map(|t| t.name.clone()));
    }
    let mut index = BTreeMap::new();
    for name in names {
        match links.iface(&name).await {
            Ok(iface) => {
                states.set(Kind::Interface, &name, iface.up);
                index.insert(iface.index, name);
            }
            Err(error) => {
                warn!(interface = name.as_str(), %error, "tracked interface not found: counted as down");
                states.set(Kind::Interface, &name, false);
            }
        }
    }
    index
}

/// Checks and scripts (as exec checks), started or reloaded. The checks' verdicts
/// reach `check_states` (IPVS real servers, supervised services) from the checks'
/// own hook, not through this loop, and the hook writes what a verdict changes in
/// IPVS itself (`InlineWriter`): a verdict's way to the kernel costs no turn of
/// the tracker, no thread hop and no log line (measured in the VM:
/// docs/benchmarks.md).
fn start_checkers(
    cfg: &Config,
    running: Option<(CheckerHandle, CheckerHandle)>,
    events: &mpsc::UnboundedSender<CheckEvent>,
    check_states: &watch::Sender<Verdicts>,
    ipvs_inline: &Option<crate::ipvs::reconcile::InlineWriter>,
) -> Option<(CheckerHandle, CheckerHandle)> {
    let scripts = scripts_as_checks(cfg);
    match running {
        Some((checks, script_checks)) => {
            for (what, handle, configs) in [
                ("checks", &checks, &cfg.checks),
                ("scripts", &script_checks, &scripts),
            ] {
                if let Err(errors) = handle.reload(configs) {
                    for e in errors {
                        warn!(error = %e, "{what}: kept the previous definition");
                    }
                }
            }
            Some((checks, script_checks))
        }
        None => {
            let states = check_states.clone();
            let inline = ipvs_inline.clone();
            let hook: VerdictHook = Arc::new(move |name: &str, up: bool, weight: Option<i32>| {
                let health = Health {
                    up,
                    weight: weight.and_then(|w| u32::try_from(w).ok()),
                };
                let published =
                    crate::ipvs::reconcile::publish_verdict(&states, inline.as_ref(), name, health);
                if published == crate::ipvs::reconcile::Published::LeftToReconciler {
                    // The woken reconciler is usually queued on this CPU, behind
                    // this thread's next probes and log lines (0.9 ms in the VM's
                    // scheduler trace): let it write the kernel first.
                    std::thread::yield_now();
                }
            });
            let checks = spawn_forwarding(&cfg.checks, events.clone(), Some(hook))?;
            let scripts = spawn_forwarding(&scripts, events.clone(), None)?;
            Some((checks, scripts))
        }
    }
}

fn spawn_forwarding(
    configs: &BTreeMap<String, CheckConfig>,
    events: mpsc::UnboundedSender<CheckEvent>,
    on_verdict: Option<VerdictHook>,
) -> Option<CheckerHandle> {
    let opts = CheckerOptions {
        on_verdict,
        ..CheckerOptions::default()
    };
    match Checker::spawn_with(configs, opts) {
        Ok((handle, mut rx)) => {
            tokio::spawn(async move {
                while let Some(ev) = rx.recv().await {
                    if events.send(ev).is_err() {
                        return;
                    }
                }
            });
            Some(handle)
        }
        Err(errors) => {
            for e in errors {
                warn!(error = %e, "check not started");
            }
            None
        }
    }
}

/// Tracking scripts as exec checks, under their prefix.
fn scripts_as_checks(cfg: &Config) -> BTreeMap<String, CheckConfig> {
    cfg.scripts
        .iter()
        .map(|(name, s)| (format!("{SCRIPT_PREFIX}{name}"), s.as_check()))
        .collect()
}

/// Reads every tracked file; true when a value changed. Missing, empty or
/// unparsable files count as 0 (keepalived's behaviour); so does one that is not
/// a regular file or cannot be read, logged once.
fn read_files(cfg: &Config, states: &mut States) -> bool {
    let mut changed = false;
    for (name, f) in &cfg.files {
        let value = match crate::track::file::read_value(&f.path) {
            Ok(v) => {
                states.file_errors.remove(name);
                v
            }
            Err(error) => {
                let text = error.to_string();
                if states.file_errors.get(name) != Some(&text) {
                    warn!(file = name.as_str(), %error, "tracked file not read");
                    states.file_errors.insert(name.clone(), text);
                }
                0
            }
        };
        if states.set_file(name, value) {
            info!(file = name.as_str(), value, "tracked file changed");
            changed = true;
        }
    }
    changed
}

/// Each tracked item as the API shows it.
fn item_statuses(items: &[(Kind, crate::track::TrackItem)], states: &States) -> Vec<TrackedItemStatus> {
    items
        .iter()
        .map(|(kind, item)| TrackedItemStatus {
            kind: kind.as_str(),
            name: item.name.clone(),
            weight: item.weight,
            up: (*kind != Kind::File)
                .then(|| states.up.get(&(*kind, item.name.clone())).copied())
                .flatten(),
            value: (*kind == Kind::File).then(|| states.file_values.get(&item.name).copied().unwrap_or(0)),
        })
        .collect()
}

/// An anycast group's verdict: the same rules as an instance's (weights are 0:
/// any item down is a fault, which withdraws the prefixes).
fn anycast_tracking(a: &crate::config::anycast::AnycastConfig, states: &States) -> AnycastTracking {
    let kinds = [
        Kind::Interface,
        Kind::Script,
        Kind::Check,
        Kind::File,
        Kind::Service,
    ];
    let items: Vec<(Kind, crate::track::TrackItem)> = a
        .track_lists()
        .into_iter()
        .zip(kinds)
        .flat_map(|((_, list), kind)| list.iter().map(move |t| (kind, t.clone())))
        .collect();
    let e = effective(
        &Tracked {
            priority: 100,
            items: items.clone(),
        },
        states,
    );
    let items = item_statuses(&items, states);
    AnycastTracking {
        fault: !e.faults.is_empty(),
        pending: items.iter().any(|i| i.kind != "file" && i.up.is_none()),
        reasons: e.faults.iter().map(|f| f.to_string()).collect(),
        items,
    }
}

/// Computes every instance's outcome, sends what changed to the engine and
/// publishes the snapshot.
async fn publish(cfg: &Config, overrides: &Overrides, states: &States, sent: &mut Sent, inp: &TrackerInputs) {
    let engine = &inp.engine;
    let mut snapshot = TrackingSnapshot::default();
    let mut own: BTreeMap<String, (u8, Vec<Fault>)> = BTreeMap::new();
    for (name, inst) in &cfg.vrrp.instances {
        // The owner's 255 is never overridden (the API refuses it too).
        let base = match overrides.priority.get(name) {
            Some(p) if !inst.is_owner() => *p,
            _ => inst.priority,
        };
        let tracked = Tracked {
            priority: base,
            items: inst
                .track_interfaces
                .iter()
                .map(|t| (Kind::Interface, t.clone()))
                .chain(inst.track_scripts.iter().map(|t| (Kind::Script, t.clone())))
                .chain(inst.track_checks.iter().map(|t| (Kind::Check, t.clone())))
                .chain(inst.track_files.iter().map(|t| (Kind::File, t.clone())))
                .chain(inst.track_services.iter().map(|t| (Kind::Service, t.clone())))
                .collect(),
        };
        let mut e = effective(&tracked, states);
        let hold = states.refusal_hold(name);
        if hold.is_some() && !inst.is_owner() {
            e.priority = 1;
        }
        snapshot.instances.insert(
            name.clone(),
            InstanceTracking {
                base_priority: base,
                priority_overridden: base != inst.priority,
                effective_priority: e.priority,
                fault: false,
                reasons: Vec::new(),
                vip_refused: hold.map(|h| h.detail.clone()),
                items: item_statuses(&tracked.items, states),
            },
        );
        if states.up.get(&(Kind::Interface, inst.interface.clone())) == Some(&false) {
            // Not a tracking fault of its own (the engine handles the link), but it
            // counts for the sync group.
            e.faults.push(Fault::OwnLink {
                interface: inst.interface.clone(),
            });
        }
        own.insert(name.clone(), (e.priority, e.faults));
    }
    let faulted: BTreeSet<String> = own
        .iter()
        .filter(|(_, (_, f))| !f.is_empty())
        .map(|(n, _)| n.clone())
        .collect();
    let groups: BTreeMap<String, Vec<String>> = cfg
        .vrrp
        .sync_groups
        .iter()
        .map(|(g, s)| (g.clone(), s.instances.clone()))
        .collect();
    let group_faults = sync_group_faults(&groups, &faulted);
    let mut changes = Vec::new();
    for (name, (priority, faults)) in &own {
        let inst = &cfg.vrrp.instances[name];
        // The instance's own link is the engine's business: only tracking faults here.
        let tracking_faults: Vec<&Fault> = faults
            .iter()
            .filter(|f| !matches!(f, Fault::OwnLink { .. }))
            .collect();
        let by_group = group_faults.get(name).cloned().unwrap_or_default();
        let fault = !tracking_faults.is_empty() || !by_group.is_empty();
        if let Some(t) = snapshot.instances.get_mut(name) {
            t.fault = fault;
            t.reasons = tracking_faults
                .iter()
                .map(|f| f.to_string())
                .chain(by_group.iter().map(|f| f.to_string()))
                .collect();
        }
        let now = (*priority, fault);
        // A changed base priority is a change even when the effective one is not.
        let base_changed = snapshot
            .instances
            .get(name)
            .is_some_and(|t| t.priority_overridden);
        if sent.get(name) != Some(&now) {
            if fault || *priority != inst.priority || sent.contains_key(name) || base_changed {
                info!(
                    instance = name.as_str(),
                    priority,
                    fault,
                    reasons = ?tracking_faults.iter().map(|f| f.to_string()).chain(by_group.iter().map(|f| f.to_string())).collect::<Vec<_>>(),
                    "tracking changed"
                );
                crate::events::publish(|| crate::events::Kind::Tracking {
                    instance: name.clone(),
                    priority: *priority,
                    fault,
                    reason: tracking_reason(&snapshot, name, *priority),
                });
            }
            sent.insert(name.clone(), now);
            changes.push((name.clone(), *priority, fault));
        }
    }
    sent.retain(|n, _| own.contains_key(n));
    for (name, a) in &cfg.anycast {
        snapshot.anycast.insert(name.clone(), anycast_tracking(a, states));
    }
    for name in cfg.scripts.keys() {
        snapshot.scripts.insert(
            name.clone(),
            states.up.get(&(Kind::Script, name.clone())).copied(),
        );
    }
    inp.status.send_replace(Arc::new(snapshot));
    if !changes.is_empty() && engine.send(Control::Track(changes)).await.is_err() {
        warn!("engine gone: tracking not applied");
    }
}
