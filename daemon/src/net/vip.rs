//! The VIP executor: adds and removes virtual addresses through rtnetlink and sends
//! the announcements, in the order the instances asked for them.
//!
//! Address changes are never dropped (they are the node's state). Announcements
//! are what a flapping peer multiplies: at most [`ANNOUNCE_MAX`] wait in the queue,
//! more are dropped (a later announcement or the periodic refresh supersedes
//! them), and their failures and drops are logged with a throttle and a count.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage};
use rtnetlink::packet_route::AddressFamily;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use super::announce::{Announcer, Pacer, Spacing};
use super::error::{errno, NetError};
use super::link::{Iface, Links};
use crate::shared::throttle::Throttle;
use crate::shared::{IpvsWritten, VipsHeld};

/// Announcement commands waiting in the executor's queue at most.
pub const ANNOUNCE_MAX: usize = 16;

/// How often a repeated failure or drop is logged at most.
pub(super) const LOG_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub enum VipCommand {
    Add {
        instance: String,
        iface: Iface,
        vips: Vec<IpNet>,
        label: Option<String>,
    },
    Remove {
        instance: String,
        iface: Iface,
        vips: Vec<IpNet>,
    },
    Announce {
        instance: String,
        iface: Iface,
        vips: Vec<IpAddr>,
        count: u32,
        /// The announcement of VIPs just added (becoming master: RFC 5798 §6.4.1,
        /// §6.4.2 "broadcast a gratuitous ARP request"): never dropped, as the
        /// `Add` before it is not. The others (`garp.with_advert`, the lower
        /// priority burst, `garp_extra_if`) repeat, and are dropped beyond
        /// [`ANNOUNCE_MAX`] waiting.
        takeover: bool,
    },
    /// VIP drift check: `vips` must be on the interface (`present`: master; a
    /// missing one is re-added and announced `announce` times) or must not be
    /// (backup, fault: one found is removed). Each repair is logged and counted.
    Ensure {
        instance: String,
        iface: Iface,
        vips: Vec<IpNet>,
        present: bool,
        label: Option<String>,
        announce: u32,
    },
    /// Transition hooks, run to their end (or timeout) before the next command:
    /// queued before an `Add` (becoming master) or after a `Remove` (leaving).
    Hooks {
        instance: String,
        phase: super::hooks::Phase,
        steps: Vec<crate::shared::HookStep>,
        timeout: Duration,
    },
    /// An instance's addresses elsewhere, routes and rules (net/routes.rs).
    Extras {
        instance: String,
        iface: Iface,
        extras: Arc<crate::shared::Extras>,
        op: super::routes::ExtrasOp,
    },
    /// Becoming master: waits until the IPVS reconciler reports `services`
    /// written (or IPVS unavailable), at most `timeout`, before the next command
    /// (the VIPs' `Add`).
    WaitIpvs {
        instance: String,
        services: Vec<String>,
        timeout: Duration,
    },
    /// Answered once every earlier command is done.
    Flush(oneshot::Sender<()>),
}

/// Sleeps until `due` (never called with None: the select's guard).
async fn sleep_until_due(due: Option<Instant>) {
    if let Some(t) = due {
        tokio::time::sleep_until(t.into()).await;
    }
}

impl VipCommand {
    fn kind(&self) -> &'static str {
        match self {
            VipCommand::Add { .. } => "add",
            VipCommand::Remove { .. } => "remove",
            VipCommand::Announce { .. } => "announce",
            VipCommand::Ensure { .. } => "ensure",
            VipCommand::Hooks { .. } => "hooks",
            VipCommand::Extras { .. } => "extras",
            VipCommand::WaitIpvs { .. } => "wait_ipvs",
            VipCommand::Flush(_) => "flush",
        }
    }
}

/// An add, an announcement, a master's VIP check or a wait for the IPVS services of an
/// instance whose `Remove` (leaving master) is already queued behind it: the
/// instance that asked for it has left master, so it is not done (its instance is
/// returned). Done late, it put the VIPs back on a node that was no longer master,
/// after its IPVS reconciler had removed the instance's services: for the ~100 ms
/// until the `Remove`, the VIP answered the clients' packets with resets (the
/// NAT way back of vm-tests/ipvs-sync lost 2 of 100 connections in a 0.8 s flap
/// of the old master, issue 16).
fn superseded<'a>(cmd: &'a VipCommand, pending: &VecDeque<VipCommand>) -> Option<&'a str> {
    let instance = match cmd {
        VipCommand::Add { instance, .. }
        | VipCommand::Announce { instance, .. }
        | VipCommand::WaitIpvs { instance, .. }
        | VipCommand::Ensure {
            instance,
            present: true,
            ..
        } => instance,
        _ => return None,
    };
    pending
        .iter()
        .any(|c| matches!(c, VipCommand::Remove { instance: i, .. } if i == instance))
        .then_some(instance.as_str())
}

/// VIPs repaired after something else changed them, per instance (metrics), and
/// the refusals the tracker follows (see `crate::track::RefusalHold`).
#[derive(Debug, Default)]
pub struct Drift(
    Mutex<BTreeMap<String, DriftCount>>,
    Mutex<Option<mpsc::UnboundedSender<VipEvent>>>,
);

/// What the tracker hears of the executor: at most one refusal per VIP per add
/// (every second while master), so the channel stays small.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VipEvent {
    /// The kernel refused one of the instance's VIPs: the VIP and the error.
    Refused { instance: String, detail: String },
    /// An add succeeded after refusals.
    Added { instance: String },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DriftCount {
    /// Missing on a master, added back.
    pub restored: u64,
    /// Present on a non-master, removed.
    pub removed: u64,
    /// Adds the kernel refused (retried every tick while master).
    pub refused: u64,
    /// The last refusal, VIP and error, while it lasts (cleared once the VIP is added).
    pub refusing: Option<String>,
    /// The tracker was told of a refusal and not yet of a command with none.
    #[serde(skip)]
    told: bool,
}

impl Drift {
    pub fn snapshot(&self) -> BTreeMap<String, DriftCount> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    /// Refusals and recoveries from now on (one subscriber: the tracker).
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<VipEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.1.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        rx
    }

    fn tell(&self, ev: VipEvent) {
        if let Some(tx) = self.1.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = tx.send(ev);
        }
    }

    /// A refused add of `vip`: counted, and shown until an add succeeds.
    fn refused(&self, instance: &str, vip: IpNet, error: &NetError) {
        let detail = format!("{vip}: {error}");
        {
            let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
            let c = m.entry(instance.to_string()).or_default();
            c.refused += 1;
            c.refusing = Some(detail.clone());
            c.told = true;
        }
        self.tell(VipEvent::Refused {
            instance: instance.to_string(),
            detail,
        });
    }

    /// Whether an add of the instance's VIPs is being refused (the engine's tick
    /// retries those).
    pub fn is_refusing(&self, instance: &str) -> bool {
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.get(instance).is_some_and(|c| c.refusing.is_some())
    }

    /// Whether an add of the instance's VIPs is being refused; clears it.
    fn added(&self, instance: &str) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.get_mut(instance).and_then(|c| c.refusing.take()).is_some()
    }

    /// A master's add or check of all its VIPs ended with none refused: the
    /// tracker, if it was told of a refusal, hears that it is over. (Per command,
    /// not per VIP: one VIP accepted while another is refused ends nothing.)
    fn none_refused(&self, instance: &str) {
        let was = {
            let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
            m.get_mut(instance)
                .is_some_and(|c| std::mem::replace(&mut c.told, false))
        };
        if was {
            self.tell(VipEvent::Added {
                instance: instance.to_string(),
            });
        }
    }

    /// A refused add of a route, rule or address elsewhere (net/routes.rs): shown
    /// and counted, but no priority hold (the VIPs themselves are served).
    pub(super) fn refused_item(&self, instance: &str, what: &str, error: &NetError) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let c = m.entry(instance.to_string()).or_default();
        c.refused += 1;
        c.refusing = Some(format!("{what}: {error}"));
    }

    pub(super) fn count(&self, instance: &str, restored: bool) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let c = m.entry(instance.to_string()).or_default();
        if restored {
            c.restored += 1;
        } else {
            c.removed += 1;
        }
    }
}

/// The executor's queue: never blocks; announcements beyond [`ANNOUNCE_MAX`]
/// waiting are dropped.
#[derive(Clone)]
pub struct VipSender {
    tx: mpsc::UnboundedSender<VipCommand>,
    announces: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
    throttle: Arc<Mutex<Throttle>>,
    /// Commands queued or running in the executor ([`VipSender::may_announce_now`]).
    outstanding: Arc<AtomicUsize>,
    /// The executor's announcement spacing (None: unknown, every announcement
    /// goes through the executor).
    spacing: Option<watch::Receiver<Spacing>>,
    failures: AnnounceFailures,
    announcers: Announcers,
}

/// The announcement sockets, per interface index: the executor's, which the
/// announcements sent at once by a sender use too (one packet socket per
/// interface, not two).
pub type Announcers = Arc<Mutex<HashMap<u32, Announcer>>>;

/// Sends `count` announcements of each of `vips` on `iface` with its socket in `announcers`.
fn announce_on(announcers: &Announcers, iface: &Iface, vips: &[IpAddr], count: u32) -> std::io::Result<u32> {
    let mut announcers = announcers.lock().unwrap_or_else(|p| p.into_inner());
    announcers
        .entry(iface.index)
        .or_insert_with(|| Announcer::new(iface.clone()))
        .announce(vips, count)
}

/// Announcement failures, per interface index: the executor's and those of the
/// announcements the engine sends itself, one throttle per interface.
pub type AnnounceFailures = Arc<Mutex<HashMap<u32, Throttle>>>;

/// An announcement the kernel refused: logged once per interface, then once a
/// minute with the count (a down or vanished interface fails every one).
fn announce_failed(failures: &AnnounceFailures, instance: &str, iface: &Iface, source: std::io::Error) {
    let mut failures = failures.lock().unwrap_or_else(|p| p.into_inner());
    let throttle = failures
        .entry(iface.index)
        .or_insert_with(|| Throttle::new(LOG_EVERY));
    if let Some(not_logged) = throttle.hit(Instant::now()) {
        let error = NetError::Socket {
            iface: iface.name.clone(),
            source,
        };
        warn!(instance, %error, not_logged, "announcement failed");
    }
}

/// The executor is gone (shutdown).
#[derive(Debug)]
pub struct Closed;

impl VipSender {
    fn new(tx: mpsc::UnboundedSender<VipCommand>) -> VipSender {
        VipSender {
            tx,
            announces: Arc::default(),
            dropped: Arc::default(),
            throttle: Arc::new(Mutex::new(Throttle::new(LOG_EVERY))),
            outstanding: Arc::default(),
            spacing: None,
            failures: AnnounceFailures::default(),
            announcers: Announcers::default(),
        }
    }

    /// Sends `count` announcements of each of `vips` on `iface` from the caller,
    /// at once (when [`VipSender::may_announce_now`] says so).
    pub fn announce_now(&self, iface: &Iface, vips: &[IpAddr], count: u32) -> std::io::Result<u32> {
        announce_on(&self.announcers, iface, vips, count)
    }

    /// Whether an announcement of `vips` may leave from the caller at once rather
    /// than as a command: the executor has nothing queued or running (so no VIP
    /// change of any instance waits there, and the announcement would run next,
    /// at once) and their families are not spaced (`vrrp.garp_interval`: the
    /// executor's pacer). The engine sends the gratuitous ARP of every advert
    /// (`garp.with_advert`) this way: a command, a wake-up of the executor and
    /// its allocations per advert were a tenth of a master's user CPU (issue 19).
    pub fn may_announce_now(&self, vips: &[IpAddr]) -> bool {
        let Some(spacing) = &self.spacing else {
            return false;
        };
        if self.outstanding.load(Ordering::SeqCst) != 0 {
            return false;
        }
        let spacing = *spacing.borrow();
        vips.iter().all(|v| spacing.of(v).is_zero())
    }

    /// An announcement sent by the caller failed (logged with the executor's throttle).
    pub fn announce_failed(&self, instance: &str, iface: &Iface, source: std::io::Error) {
        announce_failed(&self.failures, instance, iface, source);
    }

    /// Queues `cmd`; a repeated announcement finding [`ANNOUNCE_MAX`] waiting is
    /// dropped (a takeover's is queued whatever waits: instances becoming master
    /// together in passes of their own, as at a start, queue one each).
    pub fn send(&self, cmd: VipCommand) -> Result<(), Closed> {
        if let VipCommand::Announce {
            instance, takeover, ..
        } = &cmd
        {
            if self.announces.fetch_add(1, Ordering::SeqCst) >= ANNOUNCE_MAX && !takeover {
                self.announces.fetch_sub(1, Ordering::SeqCst);
                let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                let log = self
                    .throttle
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .hit(Instant::now());
                if let Some(not_logged) = log {
                    warn!(
                        instance,
                        not_logged,
                        dropped_total = total,
                        "announcement queue full: announcement dropped"
                    );
                }
                return Ok(());
            }
        }
        // Before the send: the executor (maybe on another thread) counts it down.
        self.outstanding.fetch_add(1, Ordering::SeqCst);
        self.tx.send(cmd).map_err(|_| {
            self.outstanding.fetch_sub(1, Ordering::SeqCst);
            Closed
        })
    }

    /// Announcements dropped since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

pub struct VipExecutor {
    pub(super) links: Links,
    /// Shared with the senders ([`VipSender::announce_now`]).
    announcers: Announcers,
    pub(super) drift: Arc<Drift>,
    /// Announcement failures, per interface index (shared with the senders).
    failures: AnnounceFailures,
    /// Refused VIP adds, per instance (the log line's throttle).
    pub(super) refusals: HashMap<String, Throttle>,
    /// Routes, rules and addresses elsewhere whose add the kernel refused
    /// (instance, item), until an add succeeds.
    pub(super) extras_refused: HashSet<(String, String)>,
    /// What the IPVS reconciler wrote (`WaitIpvs`).
    ipvs: watch::Receiver<IpvsWritten>,
    /// The instances whose VIPs were added and not removed since, which the IPVS
    /// reconciler follows: it removes an instance's services only once its `Remove`
    /// has run (`Roles::with_vips_held`).
    held: watch::Sender<VipsHeld>,
    /// `vrrp.garp_interval` / `vrrp.na_interval` (a reload changes them).
    spacing: watch::Receiver<Spacing>,
    /// Spaced announcements waiting (a Remove cancels an instance's).
    pacer: Pacer,
    /// The pacer's drops, logged with a throttle.
    paced_drops: Throttle,
}

/// Commands the executor's queue keeps room for once drained (a larger queue, left
/// by a burst, is freed).
const PENDING_KEPT: usize = 16;

/// The executor's queue, drained: a burst's room is not kept for the next one (255
/// instances becoming master queue an add and an announcement each: 240 KB of
/// commands stayed allocated for the daemon's life; issue 19, PSS).
fn release_drained(pending: &mut VecDeque<VipCommand>) {
    if pending.is_empty() && pending.capacity() > PENDING_KEPT {
        *pending = VecDeque::new();
    }
}

impl VipExecutor {
    /// Spawns the executor; commands run one at a time, in order, and spaced
    /// announcements leave in between, when they are due.
    pub fn spawn(
        links: Links,
        drift: Arc<Drift>,
        ipvs: watch::Receiver<IpvsWritten>,
        spacing: watch::Receiver<Spacing>,
        held: watch::Sender<VipsHeld>,
    ) -> VipSender {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut sender = VipSender::new(tx);
        sender.spacing = Some(spacing.clone());
        let announces = sender.announces.clone();
        let outstanding = sender.outstanding.clone();
        let mut exec = VipExecutor::new(links, drift, ipvs, spacing, held);
        exec.failures = sender.failures.clone();
        exec.announcers = sender.announcers.clone();
        tokio::spawn(async move {
            // What was queued behind the command being run: looked at before an add.
            let mut pending = VecDeque::new();
            loop {
                let cmd = match pending.pop_front() {
                    Some(cmd) => cmd,
                    None => {
                        release_drained(&mut pending);
                        let due = exec.pacer.next_due();
                        tokio::select! {
                            // Commands first: a Remove waiting cancels the instance's
                            // spaced announcements before the next one leaves.
                            biased;
                            cmd = rx.recv() => match cmd {
                                Some(cmd) => cmd,
                                None => break,
                            },
                            _ = sleep_until_due(due), if due.is_some() => {
                                exec.send_due();
                                continue;
                            }
                        }
                    }
                };
                if matches!(cmd, VipCommand::Announce { .. }) {
                    announces.fetch_sub(1, Ordering::SeqCst);
                }
                while let Ok(next) = rx.try_recv() {
                    pending.push_back(next);
                }
                if let Some(instance) = superseded(&cmd, &pending) {
                    info!(
                        instance,
                        command = cmd.kind(),
                        "instance left master before its VIPs were added: skipped"
                    );
                } else {
                    exec.run(cmd).await;
                }
                outstanding.fetch_sub(1, Ordering::SeqCst);
            }
        });
        sender
    }

    fn new(
        links: Links,
        drift: Arc<Drift>,
        ipvs: watch::Receiver<IpvsWritten>,
        spacing: watch::Receiver<Spacing>,
        held: watch::Sender<VipsHeld>,
    ) -> VipExecutor {
        VipExecutor {
            links,
            announcers: Announcers::default(),
            drift,
            failures: AnnounceFailures::default(),
            refusals: HashMap::new(),
            extras_refused: HashSet::new(),
            ipvs,
            held,
            spacing,
            pacer: Pacer::default(),
            paced_drops: Throttle::new(LOG_EVERY),
        }
    }

    async fn run(&mut self, cmd: VipCommand) {
        match cmd {
            VipCommand::Add {
                instance,
                iface,
                vips,
                label,
            } => {
                // Held from before the first address: the reconciler keeps the
                // services from now until the `Remove`.
                self.hold(&instance, true);
                let mut refused = false;
                for vip in vips {
                    match self.add(&iface, vip, label.as_deref(), None).await {
                        Ok(true) => {
                            self.drift.added(&instance);
                            info!(instance, vip = %vip, iface = iface.name, "virtual address added")
                        }
                        Ok(false) => {
                            debug!(instance, vip = %vip, "virtual address already present")
                        }
                        Err(error) => {
                            refused = true;
                            self.refused(&instance, vip, &error)
                        }
                    }
                }
                if !refused {
                    self.drift.none_refused(&instance);
                }
            }
            VipCommand::Remove {
                instance,
                iface,
                vips,
            } => {
                self.cancel_announcements(&instance, &vips);
                for vip in vips {
                    match self.remove(&iface, vip).await {
                        Ok(true) => {
                            info!(instance, vip = %vip, iface = iface.name, "virtual address removed")
                        }
                        Ok(false) => {}
                        Err(error) => warn!(instance, %error, "virtual address not removed"),
                    }
                }
                // Only now may the reconciler remove the instance's services.
                self.hold(&instance, false);
            }
            VipCommand::Announce {
                instance,
                iface,
                vips,
                count,
                takeover: _,
            } => self.announce(&instance, &iface, &vips, count),
            VipCommand::Ensure {
                instance,
                iface,
                vips,
                present,
                label,
                announce,
            } => {
                let mut refused = false;
                for vip in vips {
                    // An add of a present address is EEXIST, a removal of an absent one
                    // EADDRNOTAVAIL: one request per VIP says and repairs at once.
                    let done = if present {
                        self.add(&iface, vip, label.as_deref(), None).await
                    } else {
                        self.remove(&iface, vip).await
                    };
                    match done {
                        Ok(true) if present && self.drift.added(&instance) => {
                            warn!(instance, vip = %vip, iface = iface.name, "virtual address added on retry: the kernel accepts it again");
                            self.announce(&instance, &iface, &[vip.addr()], announce);
                        }
                        Ok(true) if present => {
                            warn!(instance, vip = %vip, iface = iface.name, "virtual address was removed behind hafront's back: added again");
                            self.drift.count(&instance, true);
                            self.announce(&instance, &iface, &[vip.addr()], announce);
                        }
                        Ok(true) => {
                            warn!(instance, vip = %vip, iface = iface.name, "virtual address present on a non-master: removed");
                            self.drift.count(&instance, false);
                        }
                        Ok(false) => {}
                        Err(error) if present => {
                            refused = true;
                            self.refused(&instance, vip, &error)
                        }
                        Err(error) => debug!(instance, %error, "virtual address check failed"),
                    }
                }
                if present && !refused {
                    self.drift.none_refused(&instance);
                }
            }
            VipCommand::Hooks {
                instance,
                phase,
                steps,
                timeout,
            } => {
                super::hooks::run(&instance, phase, &steps, timeout).await;
            }
            VipCommand::Extras {
                instance,
                iface,
                extras,
                op,
            } => self.extras(&instance, &iface, &extras, op).await,
            VipCommand::WaitIpvs {
                instance,
                services,
                timeout,
            } => {
                let t0 = Instant::now();
                let waited = tokio::time::timeout(timeout, self.ipvs.wait_for(|s| s.ready(&services))).await;
                let ms = t0.elapsed().as_secs_f64() * 1e3;
                match waited {
                    Ok(Ok(_)) => debug!(instance, ms, "IPVS services in place before the VIPs"),
                    // The reconciler is gone (shutdown): nothing to wait for.
                    Ok(Err(_)) => {}
                    Err(_) => warn!(
                        instance,
                        ?services,
                        ?timeout,
                        "IPVS services not written in time: adding the VIPs anyway"
                    ),
                }
            }
            VipCommand::Flush(done) => {
                let _ = done.send(());
            }
        }
    }

    /// Marks `instance`'s VIPs held (added) or released (removed), for the IPVS
    /// reconciler; a change only.
    fn hold(&self, instance: &str, held: bool) {
        self.held.send_if_modified(|h| {
            if held {
                h.insert(instance.to_string())
            } else {
                h.remove(instance)
            }
        });
    }

    /// The kernel refused a master's VIP (IPv6 off on the interface, say): logged
    /// with the VIP named (once a minute per instance with a count while it lasts),
    /// counted, shown in status and metrics; the tick's VIP check retries it.
    fn refused(&mut self, instance: &str, vip: IpNet, error: &NetError) {
        self.drift.refused(instance, vip, error);
        let throttle = self
            .refusals
            .entry(instance.to_string())
            .or_insert_with(|| Throttle::new(LOG_EVERY));
        if let Some(not_logged) = throttle.hit(Instant::now()) {
            warn!(instance, vip = %vip, %error, not_logged, "virtual address refused by the kernel: retried every second while master");
        }
    }

    /// Announces `vips` `count` times on `iface`: at once, or, for a family with
    /// a spacing (`vrrp.garp_interval`, `vrrp.na_interval`), through the pacer.
    pub(super) fn announce(&mut self, instance: &str, iface: &Iface, vips: &[IpAddr], count: u32) {
        let spacing = *self.spacing.borrow();
        if vips.iter().all(|v| spacing.of(v).is_zero()) {
            // None spaced (the default): no lists to split them into.
            return self.announce_at_once(instance, iface, vips, count);
        }
        let (paced, now): (Vec<IpAddr>, Vec<IpAddr>) = vips.iter().partition(|v| !spacing.of(v).is_zero());
        self.announce_at_once(instance, iface, &now, count);
        let dropped = self.pacer.dropped;
        for v in paced {
            self.pacer.push(instance, iface, v, count, spacing.of(&v));
        }
        if self.pacer.dropped > dropped {
            if let Some(not_logged) = self.paced_drops.hit(Instant::now()) {
                warn!(
                    instance,
                    not_logged,
                    dropped_total = self.pacer.dropped,
                    waiting = self.pacer.len(),
                    "spaced announcements: too many waiting, announcement dropped"
                );
            }
        }
        self.send_due();
    }

    fn announce_at_once(&mut self, instance: &str, iface: &Iface, vips: &[IpAddr], count: u32) {
        if vips.is_empty() || count == 0 {
            return;
        }
        match announce_on(&self.announcers, iface, vips, count) {
            Ok(n) => debug!(instance, packets = n, "addresses announced"),
            Err(source) => self.announce_failed(instance, iface, source),
        }
    }

    /// Sends the spaced announcements due now.
    fn send_due(&mut self) {
        for d in self.pacer.due(Instant::now()) {
            let sent = announce_on(&self.announcers, &d.iface, &[d.addr], 1);
            match sent.map(|_| ()) {
                Ok(()) => debug!(instance = d.instance, addr = %d.addr, "address announced (spaced)"),
                Err(source) => self.announce_failed(&d.instance, &d.iface, source),
            }
        }
    }

    /// The instance left master or dropped addresses: none of their spaced
    /// announcements leaves any more.
    pub(super) fn cancel_announcements(&mut self, instance: &str, vips: &[IpNet]) {
        let addrs: Vec<IpAddr> = vips.iter().map(|v| v.addr()).collect();
        let n = self.pacer.cancel(instance, &addrs);
        if n > 0 {
            debug!(instance, addresses = n, "spaced announcements cancelled");
        }
    }

    fn announce_failed(&mut self, instance: &str, iface: &Iface, source: std::io::Error) {
        announce_failed(&self.failures, instance, iface, source);
    }

    /// Adds one VIP; `Ok(false)` when it was there already.
    pub(super) async fn add(
        &self,
        iface: &Iface,
        vip: IpNet,
        label: Option<&str>,
        scope: Option<u8>,
    ) -> Result<bool, NetError> {
        add_address(self.links.handle(), iface, vip, label, scope).await
    }

    /// Removes one VIP; `Ok(false)` when it was not there.
    pub(super) async fn remove(&self, iface: &Iface, vip: IpNet) -> Result<bool, NetError> {
        let mut msg = AddressMessage::default();
        msg.header.family = if vip.addr().is_ipv6() {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        msg.header.prefix_len = vip.prefix_len();
        msg.header.index = iface.index;
        msg.attributes.push(AddressAttribute::Local(vip.addr()));
        if vip.addr().is_ipv6() {
            msg.attributes.push(AddressAttribute::Address(vip.addr()));
        }
        match self.links.handle().address().del(msg).execute().await {
            Ok(()) => Ok(true),
            Err(e)
                if matches!(
                    errno(&e),
                    Some(libc::EADDRNOTAVAIL) | Some(libc::ENOENT) | Some(libc::ESRCH)
                ) =>
            {
                Ok(false)
            }
            Err(source) => Err(NetError::Address {
                op: "remove",
                addr: vip.addr(),
                iface: iface.name.clone(),
                source: Box::new(source),
            }),
        }
    }
}

/// What `hafront remove-vips` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Removed {
    /// Addresses, routes and rules removed (absent ones are not counted).
    pub removed: usize,
    /// Removals the kernel refused.
    pub failed: usize,
    /// Instances whose interface (or macvlan) does not exist: nothing of theirs
    /// can be on it.
    pub no_interface: Vec<String>,
}

/// `hafront remove-vips`, the shipped units' ExecStopPost: removes now what a
/// starting hafront removes for each instance it does not start as master (its
/// VIPs, its addresses elsewhere, virtual routes and rules). A hafront that
/// crashed or was SIGKILLed leaves them on the node, and until the next start
/// removes them the node answers ARP and ND for the VIPs beside the new master
/// (issue 16, the way back).
/// `targets`: each instance's name, the interface its VIPs go on
/// (`vip_ifname`) and its spec.
pub async fn remove_configured(
    targets: &[(String, String, crate::shared::InstanceSpec)],
) -> Result<Removed, NetError> {
    let links = Links::connect()?;
    // No IPVS wait, spacing or hold here: a removal uses none of them.
    let (_ipvs_tx, ipvs) = watch::channel(IpvsWritten::default());
    let (_spacing_tx, spacing) = watch::channel(Spacing::default());
    let (held, _) = watch::channel(VipsHeld::default());
    let mut exec = VipExecutor::new(links, Arc::default(), ipvs, spacing, held);
    let mut out = Removed::default();
    for (name, on, spec) in targets {
        let on = on.as_str();
        let iface = match exec.links.iface(on).await {
            Ok(iface) => iface,
            Err(NetError::NoInterface(_)) => {
                info!(
                    instance = name.as_str(),
                    iface = on,
                    "no such interface: nothing to remove"
                );
                out.no_interface.push(name.clone());
                continue;
            }
            Err(error) => {
                warn!(instance = name.as_str(), %error, "interface not looked up: nothing removed");
                out.failed += 1;
                continue;
            }
        };
        exec.remove_all(name, &iface, &spec.params.vips, &spec.extras, &mut out)
            .await;
    }
    Ok(out)
}

/// Adds one address (IPv6 without duplicate address detection); `Ok(false)` when
/// it was there already.
pub async fn add_address(
    handle: &rtnetlink::Handle,
    iface: &Iface,
    vip: IpNet,
    label: Option<&str>,
    scope: Option<u8>,
) -> Result<bool, NetError> {
    let mut req = handle.address().add(iface.index, vip.addr(), vip.prefix_len());
    let msg = req.message_mut();
    if let Some(scope) = scope {
        msg.header.scope = scope.into();
    }
    if vip.addr().is_ipv6() {
        // No duplicate address detection: the address must work at once, and the
        // peer that held it a moment ago is no longer master (keepalived does the same).
        msg.header.flags |= AddressHeaderFlags::Nodad;
        msg.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
    } else if let Some(label) = label {
        msg.attributes.push(AddressAttribute::Label(label.to_string()));
    }
    match req.execute().await {
        Ok(()) => Ok(true),
        Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(false),
        Err(source) => Err(NetError::Address {
            op: "add",
            addr: vip.addr(),
            iface: iface.name.clone(),
            source: Box::new(source),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A made-up interface.
    fn iface(name: &str, index: u32) -> Iface {
        Iface {
            name: name.into(),
            index,
            mac: [2, 0, 0, 0, 0, 1],
            up: true,
        }
    }

    fn announce(iface: Iface) -> VipCommand {
        VipCommand::Announce {
            instance: "web".into(),
            iface,
            vips: vec!["192.0.2.100".parse().unwrap()],
            count: 1,
            takeover: false,
        }
    }

    /// 1,000 announcements sent while the executor is stuck: at most ANNOUNCE_MAX
    /// are queued, the rest counted as dropped; address changes are all queued.
    /// (With the unbounded channel all 1,000 waited.)
    #[test]
    fn announcements_waiting_are_bounded_address_changes_are_not() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let s = VipSender::new(tx);
        for _ in 0..1000 {
            s.send(announce(iface("veth0", 7))).unwrap();
            s.send(VipCommand::Remove {
                instance: "web".into(),
                iface: iface("veth0", 7),
                vips: vec!["192.0.2.100/24".parse().unwrap()],
            })
            .unwrap();
        }
        let (mut announce, mut remove) = (0, 0);
        while let Ok(cmd) = rx.try_recv() {
            match cmd {
                VipCommand::Announce { .. } => announce += 1,
                VipCommand::Remove { .. } => remove += 1,
                _ => {}
            }
        }
        assert_eq!((announce, remove), (ANNOUNCE_MAX, 1000));
        assert_eq!(s.dropped(), 1000 - ANNOUNCE_MAX as u64);
    }

    /// The engine announces at once only while the executor has nothing queued or
    /// running (a VIP add waiting there must go first) and the family is not
    /// spaced; a sender that does not know the spacing never does.
    #[test]
    fn announcements_leave_at_once_only_behind_an_idle_executor() {
        let v4: Vec<IpAddr> = vec!["192.0.2.100".parse().unwrap()];
        let v6: Vec<IpAddr> = vec!["2001:db8::100".parse().unwrap()];
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut s = VipSender::new(tx);
        assert!(!s.may_announce_now(&v4), "spacing unknown");
        let (spacing_tx, spacing) = watch::channel(Spacing::default());
        s.spacing = Some(spacing);
        assert!(s.may_announce_now(&v4));
        s.send(add("web")).unwrap();
        assert!(!s.may_announce_now(&v4), "an add is waiting");
        assert!(rx.try_recv().is_ok());
        s.outstanding.fetch_sub(1, Ordering::SeqCst); // as the executor does once it ran
        assert!(s.may_announce_now(&v4));
        spacing_tx.send_replace(Spacing {
            arp: Duration::from_millis(10),
            na: Duration::ZERO,
        });
        assert!(!s.may_announce_now(&v4), "spaced: the executor's pacer");
        assert!(s.may_announce_now(&v6));
    }

    /// 48 instances becoming master in passes of their own (a start) while the
    /// executor is busy: every takeover announcement is queued, as its `Add`; a
    /// repeated one behind them finds the queue full.
    #[test]
    fn takeover_announcements_are_never_dropped() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let s = VipSender::new(tx);
        for i in 0..48 {
            s.send(add(&format!("i{i}"))).unwrap();
            s.send(VipCommand::Announce {
                instance: format!("i{i}"),
                iface: iface("veth0", 7),
                vips: vec!["192.0.2.100".parse().unwrap()],
                count: 5,
                takeover: true,
            })
            .unwrap();
        }
        s.send(announce(iface("veth0", 7))).unwrap();
        let mut takeovers = 0;
        while let Ok(cmd) = rx.try_recv() {
            if let VipCommand::Announce { takeover, .. } = cmd {
                assert!(takeover, "a repeated announcement was queued behind 48");
                takeovers += 1;
            }
        }
        assert_eq!(takeovers, 48);
        assert_eq!(s.dropped(), 1);
    }

    fn add(instance: &str) -> VipCommand {
        VipCommand::Add {
            instance: instance.into(),
            iface: iface("veth0", 7),
            vips: vec!["192.0.2.100/24".parse().unwrap()],
            label: None,
        }
    }

    fn remove(instance: &str) -> VipCommand {
        VipCommand::Remove {
            instance: instance.into(),
            iface: iface("veth0", 7),
            vips: vec!["192.0.2.100/24".parse().unwrap()],
        }
    }

    /// A master for 0.8 s (issue 16): its add, announcement and IPVS wait still
    /// queued when it left are not done; the removal is, and a later add too.
    #[test]
    fn an_add_of_an_instance_that_left_master_since_is_skipped() {
        let wait = VipCommand::WaitIpvs {
            instance: "web".into(),
            services: vec!["web".into()],
            timeout: Duration::from_secs(3),
        };
        let queued = |v: Vec<VipCommand>| v.into_iter().collect::<VecDeque<_>>();
        let left = queued(vec![announce(iface("veth0", 7)), remove("web")]);
        assert_eq!(superseded(&wait, &left), Some("web"));
        assert_eq!(superseded(&add("web"), &left), Some("web"));
        assert_eq!(
            superseded(&announce(iface("veth0", 7)), &queued(vec![remove("web")])),
            Some("web")
        );
        // A master's VIP check (it re-adds a missing VIP) too; a non-master's is done.
        let ensure = |present| VipCommand::Ensure {
            instance: "web".into(),
            iface: iface("veth0", 7),
            vips: vec!["192.0.2.100/24".parse().unwrap()],
            present,
            label: None,
            announce: 1,
        };
        assert_eq!(superseded(&ensure(true), &left), Some("web"));
        assert_eq!(superseded(&ensure(false), &left), None);
        // Another instance's removal, or none queued: done.
        assert_eq!(superseded(&add("db"), &left), None);
        assert_eq!(superseded(&add("web"), &queued(vec![add("web")])), None);
        assert_eq!(superseded(&add("web"), &VecDeque::new()), None);
        // The removal itself, and a later add, are done.
        assert_eq!(superseded(&remove("web"), &queued(vec![add("web")])), None);
    }

    /// A burst's queue is freed once drained; a small one, or one not yet
    /// drained, is kept.
    #[test]
    fn a_drained_burst_queue_is_freed() {
        let mut pending: VecDeque<VipCommand> = (0..510).map(|i| add(&format!("i{i}"))).collect();
        release_drained(&mut pending);
        assert_eq!(pending.len(), 510);
        pending.clear();
        assert!(pending.capacity() >= 510);
        release_drained(&mut pending);
        assert_eq!(pending.capacity(), 0);
        pending.push_back(add("web"));
        pending.pop_front();
        let kept = pending.capacity();
        assert!(kept > 0 && kept <= PENDING_KEPT);
        release_drained(&mut pending);
        assert_eq!(pending.capacity(), kept);
    }

    /// The log lines, for counting them.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }

    /// The log lines written while the guard lives.
    fn captured_log() -> (Lines, tracing::subscriber::DefaultGuard) {
        let lines = Lines::default();
        let sub = tracing_subscriber::fmt()
            .with_writer(lines.clone())
            .with_ansi(false)
            .finish();
        (lines, tracing::subscriber::set_default(sub))
    }

    fn executor(drift: Arc<Drift>) -> VipExecutor {
        VipExecutor::new(
            Links::connect().unwrap(),
            drift,
            watch::channel(IpvsWritten::default()).1,
            watch::channel(Spacing::default()).1,
            watch::channel(VipsHeld::default()).0,
        )
    }

    /// An instance's VIPs are held from its `Add` until its `Remove` has run (the
    /// IPVS reconciler keeps its services until then), whatever the kernel
    /// answered; a `Remove` of an instance that added nothing changes nothing.
    #[tokio::test(flavor = "current_thread")]
    async fn vips_are_held_from_their_add_until_their_removal() {
        let mut exec = executor(Arc::default());
        let mut held = exec.held.subscribe();
        let vips: Vec<IpNet> = vec!["192.0.2.200/24".parse().unwrap()];
        let gone = || iface("hf-gone0", 999_999);
        let names = |h: &watch::Receiver<VipsHeld>| h.borrow().iter().cloned().collect::<Vec<_>>();
        exec.run(VipCommand::Remove {
            instance: "int".into(),
            iface: gone(),
            vips: vips.clone(),
        })
        .await;
        assert!(!held.has_changed().unwrap());
        for instance in ["web", "int"] {
            exec.run(VipCommand::Add {
                instance: instance.into(),
                iface: gone(),
                vips: vips.clone(),
                label: None,
            })
            .await;
        }
        assert_eq!(names(&held), ["int", "web"]);
        held.mark_unchanged();
        exec.run(VipCommand::Remove {
            instance: "web".into(),
            iface: gone(),
            vips: vips.clone(),
        })
        .await;
        assert!(held.has_changed().unwrap());
        assert_eq!(names(&held), ["int"]);
    }

    /// 100 announcements on an interface that does not exist: the kernel refuses
    /// each (no such device, or no permission for the packet socket), and one line
    /// is logged, not 100.
    #[tokio::test(flavor = "current_thread")]
    async fn announcement_failures_are_logged_with_a_throttle() {
        let (lines, _guard) = captured_log();
        let mut exec = executor(Arc::default());
        for _ in 0..100 {
            exec.run(announce(iface("hf-gone0", 999_999))).await;
        }
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.matches("announcement failed").count(), 1, "{text}");
    }

    /// 20 adds the kernel refuses (an interface index that does not exist: no
    /// address is added anywhere): each counted, the VIP named in the status and
    /// in one log line, not 20.
    #[tokio::test(flavor = "current_thread")]
    async fn refused_adds_are_counted_shown_and_logged_once() {
        let (lines, _guard) = captured_log();
        let drift = Arc::new(Drift::default());
        let mut exec = executor(drift.clone());
        let vip: IpNet = "192.0.2.200/24".parse().unwrap();
        for _ in 0..20 {
            exec.run(VipCommand::Add {
                instance: "web".into(),
                iface: iface("hf-gone0", 999_999),
                vips: vec![vip],
                label: None,
            })
            .await;
        }
        let c = drift.snapshot().remove("web").unwrap();
        assert_eq!(c.refused, 20);
        assert!(
            c.refusing.as_deref().unwrap().starts_with("192.0.2.200/24: "),
            "{c:?}"
        );
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text.matches("virtual address refused by the kernel").count(),
            1,
            "{text}"
        );
        assert!(text.contains("vip=192.0.2.200/24"), "{text}");
        // An add that succeeds clears `refusing` (the count stays).
        assert!(drift.added("web"));
        assert_eq!(drift.snapshot()["web"].refusing, None);
        assert!(!drift.added("web"));
    }
}
