//! The VRRP engine: one task that owns every instance, their timers and sockets,
//! feeds them inputs and carries out their outputs. Packets arrive from one reader
//! task per socket; VIP changes and announcements go to the VIP executor.

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use crate::histogram::{Histogram, FAILOVER_BUCKETS};
use crate::net::hooks::Phase;
use crate::net::routes::ExtrasOp;
use crate::net::vmac::Vmacs;
use crate::net::{Iface, Links, VipCommand, VipSender};
use crate::shared::throttle::Throttle;
use crate::vrrp::instance::Reason;
use crate::vrrp::io::{Outgoing, Packet, RecvBuf, VrrpSocket, SEND_BATCH};
use crate::vrrp::packet::PacketAddrs;
use crate::vrrp::router::{Delivery, Routed, Router};
use crate::vrrp::{Input, Output, State, Timer};

use super::timers::{self, SlotTimers, Timers};
use super::DaemonError;
// The shared vocabulary (crate::shared), where the engine's callers still look.
use super::status::Coalescer;
pub use crate::shared::{Control, EngineSnapshot, InstanceSpec, InstanceStatus, Transition};

type SockKey = (u32, bool);

/// The engine's instance ids hashed as they are: sequential numbers it hands out
/// itself (no peer chooses them), multiplied so that hashbrown's top bits vary.
/// SipHash was five hashes per advert, about 700 instructions (issue 19).
#[derive(Clone, Copy, Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<IdHasher>>;

/// Maps keyed by interface index (and family): chosen by the kernel, not by a peer.
type IfMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;

impl timers::Slots for IdMap<Box<Slot>> {
    fn timers_of(&mut self, id: u64) -> Option<&mut SlotTimers> {
        self.get_mut(&id).map(|s| &mut s.timers)
    }
}

/// Packets read from one socket in one pass at most, before the engine looks at
/// its timers and controls again.
const READ_BURST: usize = 64;

/// How often a refused advert send is logged while it keeps failing.
const SEND_FAILURE_LOG_EVERY: Duration = Duration::from_secs(10);

struct Slot {
    name: String,
    spec: InstanceSpec,
    iface: Iface,
    key: SockKey,
    /// Its protocol timers' deadlines (see [`Timers`]).
    timers: SlotTimers,
    /// The VIPs as the status shows them, and the addresses announced (those not
    /// placed elsewhere by `extras`): made once per configuration, not per
    /// snapshot or advert.
    vip_text: Arc<[String]>,
    /// The interface's name as the status shows it.
    iface_text: Arc<str>,
    announce_vips: Vec<IpAddr>,
    last_transition: Option<Transition>,
    /// The last few transitions, oldest first (the status page's timeline).
    recent_transitions: Arc<[Transition]>,
    last_warn: HashMap<String, Instant>,
    /// Adverts the socket refused (a firewall, a down or IPv6-less link refuses every
    /// one): logged once, then every 10 s with the count, not 10 lines a second.
    send_failures: Throttle,
    /// The bytes of its last advert, per destination.
    adverts: AdvertCache,
    /// When the last advert from a peer arrived (failover duration).
    last_rx: Option<Instant>,
    transitions: u64,
    recorder: Option<Recorder>,
    /// When the next announcement on the extra interfaces is due (master with
    /// `garp.extra_if_interval`).
    extra_if_due: Option<Instant>,
}

pub struct Engine {
    links: Links,
    vips: VipSender,
    sockets: IfMap<SockKey, Arc<VrrpSocket>>,
    /// The same sockets, in the order they are read: the engine reads them itself
    /// into one buffer (no reader task, queue or allocation per packet: issue 19).
    readers: Vec<(SockKey, Arc<VrrpSocket>)>,
    /// Reads that failed (logged once, then every 10 s with the count).
    recv_failures: Throttle,
    /// Where packets are read, reused (taken while a pass of reads runs).
    recv_buf: Option<Box<RecvBuf>>,
    /// Boxed: a slot is ~1 KiB, and a map's table keeps room for up to twice the
    /// entries it holds (255 slots inline: a 549 KB table; boxed: 8 KB + the slots).
    slots: IdMap<Box<Slot>>,
    /// The slots' ids sorted by name (then id): the order of the status, kept as
    /// slots come and go instead of sorted for every snapshot.
    by_name: Vec<u64>,
    /// The instances themselves, with the protocol decisions around them (VRID
    /// demultiplexing, own packets, destinations, sync groups).
    router: Router<u64, SockKey>,
    next_id: u64,
    /// The protocol timers of every instance, earliest first.
    timers: Timers,
    /// The timers due in one pass, in order (a buffer reused from pass to pass).
    due: Vec<timers::Entry>,
    /// When the packet being handled was read: its timers start from there (one
    /// clock read per packet); the deadline of an Adver_Timer fired early
    /// (`timers::early_restart`). Otherwise they start when their output is carried out.
    clock: Option<Instant>,
    dirty: bool,
    /// Address change pokes (`net::link::watch_links_and_addresses`) and when the VIP check
    /// they ask for is due (bursts coalesce into one check).
    addr_events: Option<mpsc::UnboundedReceiver<()>>,
    /// Which instances' VIPs the kernel refuses (set with `addr_events`).
    vip_drift: Option<Arc<crate::net::vip::Drift>>,
    /// Ticks until the next check of every VIP (with `addr_events`).
    ticks_to_verify_all: u32,
    verify_due: Option<Instant>,
    /// The last tracking result per instance name, also given to instances created
    /// later (a reload that restarts an instance must not forget it).
    tracking: HashMap<String, (u8, bool)>,
    maintenance: HashMap<String, bool>,
    failover: Histogram,
    /// Who else follows link events (the tracker), after the engine.
    link_followers: Vec<mpsc::UnboundedSender<(u32, bool)>>,
    /// Where protocol inputs are recorded (`log.record_dir`).
    record_dir: Option<(std::path::PathBuf, u64)>,
    /// State changes for the notifier (scripts, webhooks, mail); never blocks.
    notify: Option<crate::notify::Sender>,
    /// The virtual MAC interfaces of `use_vmac` instances.
    vmacs: Vmacs,
    /// The router's outputs for one input, and one advert's bytes: buffers reused
    /// from one advert to the next.
    routed: Vec<(u64, Routed)>,
    encoded: Vec<u8>,
    /// While the due timers fire (`fire_due_timers`), their adverts and
    /// announcements wait here and leave together at the end.
    batching: bool,
    batch: Batch,
}

/// An instance's last advert and its bytes per destination, while it stays the
/// same: in steady state a master sends the same advert every interval (its
/// priority, addresses, interval and state do not change), and the bytes, checksum
/// included, are copied instead of encoded again (issue 19). Any change of the
/// advert, its source or checksum mode encodes it afresh.
#[derive(Default)]
struct AdvertCache {
    key: Option<(crate::vrrp::Advert, IpAddr, crate::vrrp::packet::ChecksumMode)>,
    /// One entry per destination (the multicast group, or each unicast peer: the
    /// pseudo-header of the checksum names it).
    bytes: Vec<(IpAddr, Vec<u8>)>,
}

impl AdvertCache {
    /// The bytes of `advert` from `addrs.src` to `addrs.dst`.
    fn encoded(
        &mut self,
        advert: crate::vrrp::Advert,
        addrs: PacketAddrs,
        checksum: crate::vrrp::packet::ChecksumMode,
    ) -> Result<&[u8], crate::vrrp::packet::EncodeError> {
        let (advert, _, _) = match &mut self.key {
            Some(k) if k.0 == advert && k.1 == addrs.src && k.2 == checksum => k,
            key => {
                self.bytes.clear();
                key.insert((advert, addrs.src, checksum))
            }
        };
        let i = match self.bytes.iter().position(|(dst, _)| *dst == addrs.dst) {
            Some(i) => i,
            None => {
                let mut bytes = Vec::new();
                advert.encode_into(addrs, checksum, &mut bytes)?;
                // Usually the one destination: no room kept for more (255 slots).
                self.bytes.reserve_exact(1);
                self.bytes.push((addrs.dst, bytes));
                self.bytes.len() - 1
            }
        };
        Ok(&self.bytes[i].1)
    }
}

/// Adverts and announcements of the timers that fell due together: the adverts
/// leave in one sendmmsg(2) per socket, and the announcements of one interface
/// (the gratuitous ARPs of `garp.with_advert`, one per advert) are one command to
/// the VIP executor instead of one per instance. A burst of more than
/// `net::vip::ANNOUNCE_MAX` commands used to be dropped in part ("announcement
/// queue full") when many instances advertised in the same tick.
#[derive(Default)]
struct Batch {
    /// The adverts' bytes, one after the other.
    bytes: Vec<u8>,
    sends: Vec<PendingSend>,
    /// The first `announcing` wait; the others are kept for their buffers (one
    /// announcement per interface and pass in steady state: no allocation).
    announces: Vec<PendingAnnounce>,
    announcing: usize,
}

struct PendingSend {
    key: SockKey,
    id: u64,
    bytes: std::ops::Range<usize>,
    src: IpAddr,
    dst: IpAddr,
}

struct PendingAnnounce {
    iface: Iface,
    count: u32,
    /// One of them follows its instance's `AddVips` (`VipCommand::Announce`).
    takeover: bool,
    /// The first instance, and how many others share the command (for the log).
    first: String,
    others: usize,
    vips: Vec<IpAddr>,
}

impl Batch {
    fn announce(&mut self, slot: &Slot, count: u32, takeover: bool) {
        let waiting = &mut self.announces[..self.announcing];
        if let Some(a) = waiting
            .iter_mut()
            .find(|a| a.iface.index == slot.iface.index && a.count == count)
        {
            a.vips.extend_from_slice(&slot.announce_vips);
            a.others += 1;
            a.takeover |= takeover;
            return;
        }
        match self.announces.get_mut(self.announcing) {
            Some(a) => {
                // clone_from: the buffers kept are reused (a derived Clone's is not).
                a.iface.name.clone_from(&slot.iface.name);
                (a.iface.index, a.iface.mac, a.iface.up) = (slot.iface.index, slot.iface.mac, slot.iface.up);
                (a.count, a.takeover, a.others) = (count, takeover, 0);
                a.first.clone_from(&slot.name);
                a.vips.clone_from(&slot.announce_vips);
            }
            None => self.announces.push(PendingAnnounce {
                iface: slot.iface.clone(),
                count,
                takeover,
                first: slot.name.clone(),
                others: 0,
                vips: slot.announce_vips.clone(),
            }),
        }
        self.announcing += 1;
    }
}

/// Sends the announcements waiting in `batch`, in order, before any other command
/// to the executor (which keeps the order the instances asked for): at once from
/// the engine while the executor has nothing to do before them
/// (`VipSender::may_announce_now`), else as commands to it.
fn flush_announces(vips: &VipSender, batch: &mut Batch) {
    for a in &mut batch.announces[..batch.announcing] {
        if vips.may_announce_now(&a.vips) {
            match vips.announce_now(&a.iface, &a.vips, a.count) {
                Ok(n) => debug!(
                    instance = a.first,
                    others = a.others,
                    packets = n,
                    "addresses announced"
                ),
                Err(source) => vips.announce_failed(&announcing(a), &a.iface, source),
            }
            continue;
        }
        let _ = vips.send(VipCommand::Announce {
            instance: announcing(a),
            iface: a.iface.clone(),
            vips: std::mem::take(&mut a.vips),
            count: a.count,
            takeover: a.takeover,
        });
    }
    batch.announcing = 0;
}

/// Who an announcement is for, in the log.
fn announcing(a: &PendingAnnounce) -> String {
    match a.others {
        0 => a.first.clone(),
        n => format!("{} and {n} more", a.first),
    }
}

/// An advert the socket refused: logged once, then every 10 s with the count.
fn send_failed(slot: &mut Slot, dst: IpAddr, error: io::Error) {
    if let Some(not_logged) = slot.send_failures.hit(Instant::now()) {
        warn!(instance = slot.name, %dst, %error, not_logged, "advert not sent");
    }
}

/// What a slot derives from its configuration: the VIPs as text, and those announced.
fn vip_views(spec: &InstanceSpec) -> (Arc<[String]>, Vec<IpAddr>) {
    let text = spec.params.vips.iter().map(|v| v.to_string()).collect();
    let announced = crate::net::routes::plain(&spec.params.vips, &spec.extras)
        .iter()
        .map(|v| v.addr())
        .collect();
    (text, announced)
}

impl Engine {
    pub fn new(links: Links, vips: VipSender) -> Engine {
        Engine {
            links,
            vips,
            sockets: IfMap::default(),
            readers: Vec::new(),
            recv_failures: Throttle::new(SEND_FAILURE_LOG_EVERY),
            recv_buf: None,
            slots: IdMap::default(),
            by_name: Vec::new(),
            router: Router::new(),
            next_id: 1,
            timers: Timers::default(),
            due: Vec::new(),
            clock: None,
            dirty: true,
            addr_events: None,
            vip_drift: None,
            ticks_to_verify_all: 0,
            verify_due: None,
            tracking: HashMap::new(),
            maintenance: HashMap::new(),
            failover: Histogram::new(&FAILOVER_BUCKETS),
            link_followers: Vec::new(),
            record_dir: None,
            notify: None,
            vmacs: Vmacs::default(),
            routed: Vec::new(),
            encoded: Vec::new(),
            batching: false,
            batch: Batch::default(),
        }
    }

    /// Passes every link event on to `tx` once the instances have seen it.
    pub fn forward_links_to(&mut self, tx: mpsc::UnboundedSender<(u32, bool)>) {
        self.link_followers.push(tx);
    }

    /// Checks the VIPs soon after any address change; then every tick only the VIPs
    /// the kernel refuses (`drift` says which), and all of them every
    /// [`VERIFY_ALL_EVERY`] ticks in case an event was lost.
    pub fn watch_addresses(&mut self, rx: mpsc::UnboundedReceiver<()>, drift: Arc<crate::net::vip::Drift>) {
        self.addr_events = Some(rx);
        self.vip_drift = Some(drift);
    }

    /// Sends every state change to the notifier.
    pub fn notify_to(&mut self, tx: crate::notify::Sender) {
        self.notify = Some(tx);
    }

    /// Records every instance's inputs under `dir/<instance>/` as a replay case
    /// (`params.json`, `input.jsonl`), for bug reports.
    pub fn record_to(&mut self, dir: std::path::PathBuf, max_bytes: u64) {
        self.record_dir = Some((dir, max_bytes));
    }

    /// Creates and starts an instance: resolves its interface and primary address,
    /// opens (or shares) its socket, and feeds it the Startup event.
    pub async fn add_instance(&mut self, name: &str, mut spec: InstanceSpec) -> Result<(), DaemonError> {
        let base = self.links.iface(&spec.interface).await?;
        let ipv6 = spec.ipv6();
        spec.params.primary = match spec.unicast_source {
            Some(src) => src,
            None => {
                let vips: Vec<IpAddr> = spec.params.vips.iter().map(|v| v.addr()).collect();
                self.links.primary_address(&base, ipv6, &vips).await?
            }
        };
        // VIPs on macvlans of their own (vmac_addr, vip_options.use_vmac): made
        // (or found) here, their VIPs added on master with the other extras.
        for m in &spec.extras.vmacs {
            let want = crate::net::vmac::VmacSpec {
                name: m.name.clone(),
                base: self.links.iface(&m.base).await?,
                vrid: spec.params.vrid,
                ipv6: m.ipv6,
                ipvlan: None,
            };
            self.vmacs.ensure(&self.links, &want).await?;
        }
        // With use_vmac the VIPs live on the macvlan, and the adverts leave from
        // it unless vmac_xmit_base; the source address stays the base's. With
        // use_ipvlan the adverts leave from the ipvlan, from its own address
        // (keepalived uses it as the source unless mcast_src_ip), and the VIPs
        // stay on the base (keepalived's vrrp_complete_instance moves them to
        // the VMAC only).
        let (iface, sock_iface) = match &spec.vmac {
            None => (base.clone(), base),
            Some(v) => {
                let want = crate::net::vmac::VmacSpec {
                    name: v.name.clone(),
                    base: base.clone(),
                    vrid: spec.params.vrid,
                    ipv6,
                    ipvlan: v.ipvlan.as_ref().map(|i| i.mode),
                };
                let mut vmac = self.vmacs.ensure(&self.links, &want).await?;
                let own = v.ipvlan.as_ref().and_then(|i| i.address);
                if let Some(own) = own {
                    self.vmacs
                        .add_own_address(&self.links, &vmac, own.addr(), own.prefix_len())
                        .await?;
                    if spec.unicast_source.is_none() {
                        spec.params.primary = own.addr();
                    }
                } else if ipv6 && !v.xmit_base {
                    // keepalived's set_link_local_address: adverts from the base's
                    // link-local address, sent with the virtual MAC.
                    self.vmacs
                        .add_own_address(&self.links, &vmac, spec.params.primary, 64)
                        .await?;
                }
                // Its carrier follows the base's; the kernel may say so a moment later.
                vmac.up = base.up;
                if v.ipvlan.is_some() {
                    (base, vmac)
                } else {
                    let sock = if v.xmit_base { base } else { vmac.clone() };
                    (vmac, sock)
                }
            }
        };
        let key = (sock_iface.index, ipv6);
        if !self.sockets.contains_key(&key) {
            let sock = Arc::new(VrrpSocket::open(&sock_iface.name, sock_iface.index, ipv6)?);
            self.readers.push((key, sock.clone()));
            self.sockets.insert(key, sock);
        }
        if let Some(other) = self.router.by_vrid(key, spec.params.vrid) {
            let other = &self.slots[&other].name;
            return Err(DaemonError::Conflict(format!(
                "instances {other} and {name} both use VRID {} on {}",
                spec.params.vrid, iface.name
            )));
        }
        let id = self.next_id;
        self.next_id += 1;
        let up = iface.up;
        let track_link = spec.track_link;
        info!(instance = name, vrid = spec.params.vrid, iface = iface.name, primary = %spec.params.primary,
              priority = spec.params.priority, version = u8::from(spec.params.version), "instance starting");
        let recorder = self.record_dir.as_ref().and_then(|(dir, max_bytes)| {
            Recorder::create(name, &dir.join(name), &spec.params, *max_bytes)
                .inspect_err(|error| warn!(instance = name, %error, "input recorder not started"))
                .ok()
        });
        self.router
            .add(id, name, key, spec.params.clone(), spec.sync_peers.clone());
        if recorder.is_some() {
            self.router.record(id);
        }
        let (vip_text, announce_vips) = vip_views(&spec);
        let iface_text = iface.name.as_str().into();
        let at = self.by_name.partition_point(|other| {
            self.slots
                .get(other)
                .is_some_and(|s| (s.name.as_str(), *other) < (name, id))
        });
        self.by_name.insert(at, id);
        self.slots.insert(
            id,
            Box::new(Slot {
                name: name.to_string(),
                spec,
                iface,
                key,
                timers: SlotTimers::default(),
                vip_text,
                iface_text,
                announce_vips,
                last_transition: None,
                recent_transitions: Default::default(),
                last_warn: HashMap::new(),
                send_failures: Throttle::new(SEND_FAILURE_LOG_EVERY),
                adverts: AdvertCache::default(),
                last_rx: None,
                transitions: 0,
                recorder,
                extra_if_due: None,
            }),
        );
        if !up && track_link {
            self.feed(id, Input::LinkDown);
        }
        if let Some(&(priority, fault)) = self.tracking.get(name) {
            self.feed(id, Input::Track { priority, fault });
        }
        if self.maintenance.get(name) == Some(&true) {
            self.feed(id, Input::Maintenance { on: true });
        }
        self.feed(id, Input::Startup);
        Ok(())
    }

    fn feed(&mut self, id: u64, input: Input) {
        let mut routed = std::mem::take(&mut self.routed);
        self.router.handle_into(id, input, &mut routed);
        self.execute(&mut routed);
        self.routed = routed;
    }

    /// Carries out what the router decided, in order (`routed` is left empty).
    fn execute(&mut self, routed: &mut Vec<(u64, Routed)>) {
        // The instance whose AddVips came last: its Announce next is a takeover's.
        let mut added: Option<u64> = None;
        for (id, routed) in routed.drain(..) {
            let Some(slot) = self.slots.get_mut(&id) else {
                continue;
            };
            let output = match routed {
                Routed::Send {
                    src,
                    dst,
                    checksum,
                    advert,
                } => {
                    let addrs = PacketAddrs { src, dst };
                    let pdu = match slot.adverts.encoded(advert, addrs, checksum) {
                        Ok(pdu) => pdu,
                        Err(error) => {
                            error!(instance = slot.name, %error, "advert not encodable");
                            continue;
                        }
                    };
                    // The router's instance lookup only for an instance that signs.
                    let signs = slot.spec.params.auth_hmac.is_some();
                    let trailer = signs
                        .then(|| self.router.sign(id, pdu, src, wall_clock))
                        .flatten();
                    let bytes: &[u8] = match trailer {
                        Some(t) => {
                            self.encoded.clear();
                            self.encoded.extend_from_slice(pdu);
                            crate::vrrp::packet::append_trailer(&mut self.encoded, &t, addrs, checksum);
                            &self.encoded
                        }
                        None => pdu,
                    };
                    if self.batching {
                        let start = self.batch.bytes.len();
                        self.batch.bytes.extend_from_slice(bytes);
                        self.batch.sends.push(PendingSend {
                            key: slot.key,
                            id,
                            bytes: start..self.batch.bytes.len(),
                            src,
                            dst,
                        });
                    } else if let Some(sock) = self.sockets.get(&slot.key) {
                        if let Err(error) = sock.send(bytes, src, dst) {
                            send_failed(slot, dst, error);
                        }
                    }
                    continue;
                }
                Routed::Fed { input } => {
                    if let Some(r) = &mut slot.recorder {
                        r.input(&input);
                    }
                    continue;
                }
                Routed::Output { output } => output,
            };
            // Announcements merged so far go before a removal (never announce an
            // address after it is gone) and before a command that can wait long
            // (hooks, IPVS): instances becoming master together in one pass (a
            // start, a stall) have their VIPs added, then one announcement per
            // interface, instead of a command each, most of which the executor's
            // queue (net::vip::ANNOUNCE_MAX) dropped.
            let waits = |slot: &Slot| {
                !slot.spec.hooks.wait_ipvs.is_empty() || !slot.spec.hooks.before_master.is_empty()
            };
            if matches!(output, Output::RemoveVips { .. })
                || (matches!(output, Output::AddVips { .. }) && waits(slot))
            {
                flush_announces(&self.vips, &mut self.batch);
            }
            match output {
                Output::SendAdvert { .. } | Output::WantMaster => {} // the router's
                Output::AddVips { vips } => {
                    added = Some(id);
                    if !slot.spec.hooks.wait_ipvs.is_empty() {
                        let _ = self.vips.send(VipCommand::WaitIpvs {
                            instance: slot.name.clone(),
                            services: slot.spec.hooks.wait_ipvs.clone(),
                            timeout: crate::shared::IPVS_WAIT,
                        });
                    }
                    if !slot.spec.hooks.before_master.is_empty() {
                        let _ = self.vips.send(VipCommand::Hooks {
                            instance: slot.name.clone(),
                            phase: Phase::BeforeMaster,
                            steps: slot.spec.hooks.before_master.clone(),
                            timeout: slot.spec.hooks.timeout,
                        });
                    }
                    let extras = &slot.spec.extras;
                    let _ = self.vips.send(VipCommand::Add {
                        instance: slot.name.clone(),
                        iface: slot.iface.clone(),
                        vips: crate::net::routes::plain(&vips, extras),
                        label: slot.spec.label.clone(),
                    });
                    let master = self
                        .router
                        .instance(id)
                        .is_some_and(|i| i.state() == State::Master);
                    if master && !extras.is_empty() {
                        let _ = self.vips.send(VipCommand::Extras {
                            instance: slot.name.clone(),
                            iface: slot.iface.clone(),
                            extras: Arc::new(extras.clone()),
                            op: ExtrasOp::Add,
                        });
                    }
                }
                Output::RemoveVips { vips } => {
                    let extras = &slot.spec.extras;
                    let _ = self.vips.send(VipCommand::Remove {
                        instance: slot.name.clone(),
                        iface: slot.iface.clone(),
                        vips: crate::net::routes::plain(&vips, extras),
                    });
                    // Leaving master, or starting as a non-master (stale ones go);
                    // a master's reconfiguration keeps them.
                    let master = self
                        .router
                        .instance(id)
                        .is_some_and(|i| i.state() == State::Master);
                    if !master && !extras.is_empty() {
                        let _ = self.vips.send(VipCommand::Extras {
                            instance: slot.name.clone(),
                            iface: slot.iface.clone(),
                            extras: Arc::new(extras.clone()),
                            op: ExtrasOp::Remove,
                        });
                    }
                    if !slot.spec.hooks.after_leave.is_empty() {
                        let _ = self.vips.send(VipCommand::Hooks {
                            instance: slot.name.clone(),
                            phase: Phase::AfterLeave,
                            steps: slot.spec.hooks.after_leave.clone(),
                            timeout: slot.spec.hooks.timeout,
                        });
                    }
                }
                Output::Announce { count } => {
                    let takeover = added.take() == Some(id);
                    let extras = &slot.spec.extras;
                    if self.batching && extras.addrs.is_empty() {
                        self.batch.announce(slot, count, takeover);
                        continue;
                    }
                    flush_announces(&self.vips, &mut self.batch);
                    let _ = self.vips.send(VipCommand::Announce {
                        instance: slot.name.clone(),
                        iface: slot.iface.clone(),
                        vips: slot.announce_vips.clone(),
                        count,
                        takeover,
                    });
                    if !extras.addrs.is_empty() {
                        let _ = self.vips.send(VipCommand::Extras {
                            instance: slot.name.clone(),
                            iface: slot.iface.clone(),
                            extras: Arc::new(extras.clone()),
                            op: ExtrasOp::Announce { count },
                        });
                    }
                }
                Output::TimerStart { timer, after_us } => {
                    let after = Duration::from_micros(after_us);
                    let at = self.clock.unwrap_or_else(Instant::now) + after;
                    let early = timers::early_window(timer, after);
                    self.timers.start(&mut slot.timers, id, timer, at, early);
                }
                Output::TimerStop { timer } => slot.timers.stop(timer),
                Output::StateChange { from, to, reason } => {
                    let priority = self.router.instance(id).map_or(0, |i| i.priority());
                    info!(
                        instance = slot.name,
                        vrid = slot.spec.params.vrid,
                        from = from.as_str(),
                        state = to.as_str(),
                        reason = reason.as_str(),
                        priority,
                        "state changed"
                    );
                    let t = Transition {
                        unix_ms: unix_ms(),
                        from,
                        to,
                        reason: reason_str(reason),
                    };
                    let keep = slot
                        .recent_transitions
                        .len()
                        .min(crate::shared::RECENT_TRANSITIONS - 1);
                    let recent = &slot.recent_transitions[slot.recent_transitions.len() - keep..];
                    slot.recent_transitions = recent.iter().cloned().chain([t.clone()]).collect();
                    slot.last_transition = Some(t);
                    slot.extra_if_due =
                        (to == State::Master)
                            .then_some(slot.spec.extra_if)
                            .flatten()
                            .map(|e| {
                                let delay = Duration::from_millis(slot.spec.params.garp.master_delay_ms);
                                Instant::now() + delay + e.every
                            });
                    slot.transitions += 1;
                    crate::events::publish(|| crate::events::Kind::State {
                        instance: slot.name.clone(),
                        vrid: slot.spec.params.vrid,
                        from: from.as_str(),
                        to: to.as_str(),
                        priority,
                        reason: reason_str(reason).to_string(),
                    });
                    if let Some(n) = &self.notify {
                        n.send(crate::notify::Event::State(crate::notify::StateEvent {
                            instance: slot.name.clone(),
                            vrid: slot.spec.params.vrid,
                            from,
                            to,
                            priority,
                            reason: reason_str(reason),
                            vips: slot.vip_text.to_vec(),
                            unix_ms: unix_ms(),
                        }));
                    }
                    if to == State::Master && reason == Reason::MasterDown {
                        if let Some(rx) = slot.last_rx {
                            self.failover.observe(rx.elapsed().as_secs_f64());
                        }
                    }
                    self.dirty = true;
                }
                Output::Rejected { src, counter, reason } => {
                    // One line per instance and reason per second: a flood must not flood the log.
                    let now = Instant::now();
                    let last = slot.last_warn.get(&counter).copied();
                    if last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
                        slot.last_warn.insert(counter.clone(), now);
                        warn!(instance = slot.name, vrid = slot.spec.params.vrid, %src, counter, reason, "advert rejected");
                    } else {
                        debug!(instance = slot.name, %src, counter, reason, "advert rejected");
                    }
                }
            }
        }
    }

    /// Feeds link changes to the instances on that interface (only real changes:
    /// the kernel repeats NEWLINK for unrelated attribute updates).
    fn track(&mut self, results: Vec<(String, u8, bool)>) {
        for (name, priority, fault) in results {
            self.tracking.insert(name.clone(), (priority, fault));
            for id in self.ids_named(&name) {
                self.feed(id, Input::Track { priority, fault });
            }
        }
        // Priorities show in status even without a state change.
        self.dirty = true;
    }

    /// The slot of an instance (a list: during a restart by reload, none).
    fn ids_named(&self, name: &str) -> Vec<u64> {
        self.router.ids_named(name)
    }

    pub fn set_maintenance(&mut self, name: String, on: bool) {
        let ids = self.ids_named(&name);
        self.maintenance.insert(name, on);
        for id in ids {
            self.feed(id, Input::Maintenance { on });
        }
        self.dirty = true;
    }

    fn link_changed(&mut self, index: u32, up: bool) {
        let ids: Vec<u64> = self
            .slots
            .iter()
            .filter(|(_, s)| s.iface.index == index && s.iface.up != up)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(slot) = self.slots.get_mut(&id) {
                slot.iface.up = up;
                info!(
                    instance = slot.name,
                    iface = slot.iface.name,
                    up,
                    "interface state changed"
                );
            }
            if self.slots.get(&id).is_some_and(|s| s.spec.track_link) {
                self.feed(id, if up { Input::LinkUp } else { Input::LinkDown });
            }
        }
    }

    fn fire_due_timers(&mut self) {
        let now = Instant::now();
        let mut due = std::mem::take(&mut self.due);
        self.timers.due(now, &mut self.slots, &mut due);
        if due.iter().any(|(_, _, timer)| *timer == Timer::MasterDown) {
            self.drain_received();
        }
        self.batching = true;
        while !due.is_empty() {
            for entry in &due {
                let (at, id, timer) = *entry;
                // Not if stopped or restarted by what was handled before it (the
                // adverts just drained, a state change of its instance).
                if self.slots.get_mut(&id).is_some_and(|s| s.timers.fire(entry)) {
                    // An Adver_Timer restarts from its deadline if it fired early (the
                    // rate stays one advert per interval).
                    self.clock = (timer == Timer::Advert)
                        .then(|| timers::early_restart(at, now))
                        .flatten();
                    self.feed(id, Input::Timer { timer });
                    self.clock = None;
                }
            }
            // Timers the ones fired armed for no later than `now` (none, in practice).
            due.clear();
            self.timers.due(now, &mut self.slots, &mut due);
        }
        self.due = due;
        self.batching = false;
        self.flush_batch();
    }

    /// Sends the adverts the due timers produced, a sendmmsg(2) per run of adverts
    /// on one socket, then queues their announcements.
    fn flush_batch(&mut self) {
        let Batch { bytes, sends, .. } = &mut self.batch;
        let mut i = 0;
        while i < sends.len() {
            let key = sends[i].key;
            let Some(sock) = self.sockets.get(&key) else {
                i += 1;
                continue;
            };
            // On the stack: a vector collected here was an allocation and its
            // growth per pass.
            let unspecified = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
            let mut run = [Outgoing {
                payload: &[],
                src: unspecified,
                dst: unspecified,
            }; SEND_BATCH];
            let mut n = 0;
            for (out, s) in run.iter_mut().zip(sends[i..].iter().take_while(|s| s.key == key)) {
                *out = Outgoing {
                    payload: &bytes[s.bytes.clone()],
                    src: s.src,
                    dst: s.dst,
                };
                n += 1;
            }
            match sock.send_batch(&run[..n]) {
                Ok(n) => i += n.max(1),
                Err(error) => {
                    // The first of the run was refused: counted, and the rest go on.
                    let failed = &sends[i];
                    if let Some(slot) = self.slots.get_mut(&failed.id) {
                        send_failed(slot, failed.dst, error);
                    }
                    i += 1;
                }
            }
        }
        sends.clear();
        bytes.clear();
        flush_announces(&self.vips, &mut self.batch);
    }

    /// Handles the adverts that arrived while the engine was not running, those
    /// still in the sockets. A starved engine (CPU contention) wakes with a due
    /// Master_Down_Timer and the master's adverts, which came in time, queued
    /// behind it; acting on the timer first would declare a live master dead (the
    /// fault suite's starvation row). Read whatever the reactor last saw (it has
    /// not polled the sockets yet), at most a bounded number, so a flood cannot
    /// hold the timers back for long.
    fn drain_received(&mut self) {
        let mut budget = 1024usize;
        let mut buf = self.recv_buf.take().unwrap_or_default();
        let wall_ns = wall_clock().as_nanos() as u64;
        for i in 0..self.readers.len() {
            let (key, sock) = (self.readers[i].0, self.readers[i].1.clone());
            while budget > 0 {
                match sock.try_recv(&mut buf) {
                    Ok(Some(p)) => self.dispatch(key, p, wall_ns),
                    Ok(None) => break,
                    Err(error) => {
                        debug!(%error, "VRRP receive failed");
                        break;
                    }
                }
                budget -= 1;
            }
        }
        self.recv_buf = Some(buf);
    }

    /// Reads the packets queued on the sockets the reactor found ready, up to
    /// [`READ_BURST`] from each, and handles them in order.
    fn read_sockets(&mut self) {
        let mut buf = self.recv_buf.take().unwrap_or_default();
        // auth_hmac's anti-replay reads whole seconds: one realtime read per pass.
        let wall_ns = wall_clock().as_nanos() as u64;
        for i in 0..self.readers.len() {
            let (key, sock) = (self.readers[i].0, self.readers[i].1.clone());
            for _ in 0..READ_BURST {
                match sock.recv_ready(&mut buf) {
                    Ok(Some(p)) => self.dispatch(key, p, wall_ns),
                    // Not ours (consumed): the next one.
                    Ok(None) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(error) => {
                        if let Some(not_logged) = self.recv_failures.hit(Instant::now()) {
                            warn!(%error, not_logged, "VRRP receive failed");
                        }
                        break;
                    }
                }
            }
        }
        self.recv_buf = Some(buf);
    }

    fn dispatch(&mut self, key: SockKey, p: Packet<'_>, wall_ns: u64) {
        // One clock read per packet: when it was heard, and when the timers it
        // restarts (the Master_Down_Timer) start from.
        let now = Instant::now();
        let mut routed = std::mem::take(&mut self.routed);
        let delivery = self
            .router
            .packet_into(key, p.src, p.dst, p.ttl, p.payload, wall_ns, &mut routed);
        match delivery {
            Delivery::To(id) => {
                if let Some(slot) = self.slots.get_mut(&id) {
                    slot.last_rx = Some(now);
                }
            }
            Delivery::UnknownVrid(Some(vrid)) => {
                debug!(src = %p.src, vrid, "advert for a VRID not configured here")
            }
            Delivery::UnknownVrid(None) | Delivery::Own => {}
        }
        self.clock = Some(now);
        self.execute(&mut routed);
        self.clock = None;
        self.routed = routed;
    }

    /// Waits until the VIP executor has carried out everything asked so far.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.vips.send(VipCommand::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Applies a new set of instances: unchanged ones are left alone, changed ones
    /// are reconfigured in place, ones whose identity changed are restarted.
    pub async fn reload(&mut self, new: Vec<(String, InstanceSpec)>) {
        let mut keep = BTreeSet::new();
        for (name, spec) in new {
            keep.insert(name.clone());
            let existing = self.slots.iter().find(|(_, s)| s.name == name).map(|(id, _)| *id);
            if let Some(id) = existing {
                let slot = &self.slots[&id];
                let mut cmp = spec.clone();
                cmp.params.primary = slot.spec.params.primary;
                if cmp == slot.spec {
                    continue;
                }
                let same_source = spec.unicast_source == slot.spec.unicast_source;
                let same_vmac = spec.vmac == slot.spec.vmac;
                // Routes, rules and placed addresses change by a restart: the old
                // ones go with the old master, the new ones come with the new.
                let same_extras = spec.extras == slot.spec.extras && spec.track_link == slot.spec.track_link;
                if slot.spec.identity() == spec.identity() && same_source && same_vmac && same_extras {
                    info!(instance = name, "instance reconfigured in place");
                    let slot = self.slots.get_mut(&id).expect("present");
                    (slot.vip_text, slot.announce_vips) = vip_views(&cmp);
                    slot.spec = cmp.clone();
                    self.dirty = true;
                    self.feed(
                        id,
                        Input::Reconfigure {
                            params: Box::new(cmp.params),
                        },
                    );
                    continue;
                }
                info!(instance = name, "instance identity changed: restarting it");
                self.remove_instance(id);
            }
            if let Err(error) = self.add_instance(&name, spec).await {
                error!(instance = name, %error, "instance not started");
            }
        }
        let gone: Vec<u64> = self
            .slots
            .iter()
            .filter(|(_, s)| !keep.contains(&s.name))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            info!(instance = self.slots[&id].name, "instance removed by reload");
            self.remove_instance(id);
        }
        // Macvlans no instance uses any more go, once their VIPs are removed.
        let used: Vec<String> = self.slots.values().flat_map(|s| s.spec.vmac_names()).collect();
        if self.vmacs.unused(&used) {
            self.flush().await;
            self.vmacs.remove_unused(&self.links, &used).await;
        }
        self.dirty = true;
    }

    /// Deletes macvlans with a virtual router MAC that no instance of `specs`
    /// wants (left by a run that did not stop cleanly), before any is created.
    pub async fn remove_stale_vmacs(&self, specs: &[(String, InstanceSpec)]) {
        let wanted: Vec<String> = specs.iter().flat_map(|(_, s)| s.vmac_names()).collect();
        if let Err(error) = self.vmacs.remove_stale(&self.links, &wanted).await {
            warn!(%error, "stale virtual MAC interfaces not looked for");
        }
    }

    fn remove_instance(&mut self, id: u64) {
        self.feed(id, Input::Shutdown);
        self.router.remove(id);
        // Its timers' entries go when they come first (ids are never reused).
        self.slots.remove(&id);
        self.by_name.retain(|other| *other != id);
    }

    /// RFC 5798 Shutdown for every instance: masters send priority 0 and drop VIPs.
    pub async fn shutdown(&mut self) {
        let ids: Vec<u64> = self.slots.keys().copied().collect();
        for id in ids {
            self.feed(id, Input::Shutdown);
        }
        self.flush_recordings();
        self.flush().await;
        self.vmacs.remove_all(&self.links).await;
    }

    /// The instances by name (`by_name`: moving whole statuses while sorting them
    /// cost more than building them).
    pub fn status(&self) -> Vec<(String, InstanceStatus)> {
        // Sized once: collected through a filter it grew by doubling, to room for
        // 512 statuses for 255, in each snapshot kept (issue 19, heap).
        let mut out = Vec::with_capacity(self.by_name.len());
        let statuses = self
            .by_name
            .iter()
            .filter_map(|id| Some((self.slots.get(id)?, self.router.instance(*id)?)))
            .map(|(s, inst)| {
                (
                    s.name.clone(),
                    InstanceStatus {
                        state: inst.state(),
                        interface: s.iface_text.clone(),
                        vrid: s.spec.params.vrid,
                        version: u8::from(s.spec.params.version),
                        priority: inst.priority(),
                        configured_priority: s.spec.params.priority,
                        maintenance: inst.in_maintenance(),
                        transitions: s.transitions,
                        master: inst.master(),
                        vips: s.vip_text.clone(),
                        advert_interval_ms: u32::from(s.spec.params.interval_cs) * 10,
                        counters: inst.counters().clone(),
                        last_transition: s.last_transition.clone(),
                        recent_transitions: s.recent_transitions.clone(),
                    },
                )
            });
        out.extend(statuses);
        out
    }

    pub fn unknown_vrid(&self) -> u64 {
        self.router.unknown_vrid()
    }

    pub fn snapshot(&self) -> EngineSnapshot {
        EngineSnapshot {
            instances: self.status(),
            unknown_vrid_packets: self.router.unknown_vrid(),
            failover_seconds: self.failover.clone(),
        }
    }

    /// Writes buffered recordings out (every tick and at shutdown).
    pub fn flush_recordings(&mut self) {
        for slot in self.slots.values_mut() {
            if let Some(r) = &mut slot.recorder {
                r.flush();
            }
        }
    }

    /// `garp.extra_if_interval` (keepalived's `garp_extra_if`), checked once a
    /// tick: a master whose time has come announces one of its addresses on each
    /// extra interface ([`crate::shared::ExtraIf`]), once.
    fn announce_extra_ifs(&mut self, now: Instant) {
        for (id, slot) in self.slots.iter_mut() {
            let (Some(e), Some(due)) = (slot.spec.extra_if, slot.extra_if_due) else {
                continue;
            };
            if now < due {
                continue;
            }
            // On time, and not a burst of catching up after a stall.
            slot.extra_if_due = Some((due + e.every).max(now));
            if !self
                .router
                .instance(*id)
                .is_some_and(|i| i.state() == State::Master)
            {
                continue;
            }
            let extras = &slot.spec.extras;
            if slot.spec.vmac.as_ref().is_some_and(|v| v.xmit_base) {
                let on_iface = crate::net::routes::plain(&slot.spec.params.vips, extras)
                    .into_iter()
                    .chain(extras.addrs.iter().filter(|a| a.dev.is_none()).map(|a| a.vip))
                    .next();
                if let Some(vip) = on_iface {
                    let _ = self.vips.send(VipCommand::Announce {
                        instance: slot.name.clone(),
                        iface: slot.iface.clone(),
                        vips: vec![vip.addr()],
                        count: 1,
                        takeover: false,
                    });
                }
            }
            if e.all && extras.addrs.iter().any(|a| a.dev.is_some()) {
                let _ = self.vips.send(VipCommand::Extras {
                    instance: slot.name.clone(),
                    iface: slot.iface.clone(),
                    extras: Arc::new(extras.clone()),
                    op: ExtrasOp::AnnounceOtherDevices,
                });
            }
        }
    }

    /// VIP drift: once a tick, every master's VIPs must be on its interface and
    /// every backup's must not (networkd, netplan or an admin's `ip addr flush`
    /// change addresses behind our back: keepalived issues #836, #1385, #2479). The
    /// executor checks and repairs on its own task, in order with the transitions'
    /// commands, so a check never undoes a newer transition.
    /// The tick's VIP check. Without address events, every VIP every tick. With
    /// them, a VIP changed behind hafront's back is seen within 20 ms (the event),
    /// so a tick checks only what needs a retry: a master's VIPs the kernel refuses,
    /// and the extras (routes, rules: no events for those). Every VIP is checked
    /// every [`VERIFY_ALL_EVERY`] ticks, in case the event socket overflowed. The
    /// check is one rtnetlink request per VIP (answered EEXIST or EADDRNOTAVAIL): at
    /// 255 instances, once a second, it was a fifth of a backup's user CPU
    /// (issue 19; docs/benchmarks.md).
    fn verify_vips_tick(&mut self) {
        let all = match &self.addr_events {
            None => true,
            Some(_) if self.ticks_to_verify_all == 0 => {
                self.ticks_to_verify_all = VERIFY_ALL_EVERY - 1;
                true
            }
            Some(_) => {
                self.ticks_to_verify_all -= 1;
                false
            }
        };
        self.verify_vips_of(all);
    }

    fn verify_vips(&self) {
        self.verify_vips_of(true);
    }

    /// `all`: every instance's VIPs; else only the extras and the VIPs of a master
    /// whose add the kernel refuses.
    fn verify_vips_of(&self, all: bool) {
        for (id, slot) in &self.slots {
            let Some(inst) = self.router.instance(*id) else {
                continue;
            };
            let refusing = || {
                inst.state() == State::Master
                    && self.vip_drift.as_ref().is_none_or(|d| d.is_refusing(&slot.name))
            };
            if !all && slot.spec.extras.is_empty() && !refusing() {
                continue;
            }
            let tracked: Vec<ipnet::IpNet> = slot
                .spec
                .params
                .vips
                .iter()
                .filter(|v| !slot.spec.vip_no_track.contains(v) && !slot.spec.extras.placed(v))
                .copied()
                .collect();
            let present = match inst.state() {
                State::Master => true,
                State::Backup | State::Fault => false,
                State::Initialize => continue,
            };
            if !slot.spec.extras.is_empty() {
                let _ = self.vips.send(VipCommand::Extras {
                    instance: slot.name.clone(),
                    iface: slot.iface.clone(),
                    extras: Arc::new(slot.spec.extras.clone()),
                    op: ExtrasOp::Ensure {
                        master: present,
                        announce: slot.spec.params.garp.master_burst,
                    },
                });
            }
            if tracked.is_empty() || !(all || refusing()) {
                continue;
            }
            let _ = self.vips.send(VipCommand::Ensure {
                instance: slot.name.clone(),
                iface: slot.iface.clone(),
                vips: tracked,
                present,
                label: slot.spec.label.clone(),
                announce: slot.spec.params.garp.master_burst,
            });
        }
    }

    /// Runs until a Shutdown control message; `on_change` is called after state
    /// changes, at most once per [`CHANGE_GAP`] (it publishes a snapshot: the status
    /// file, systemd's STATUS=, the roles and the API follow it on other threads),
    /// `tick` every `tick_every`.
    pub async fn run(
        &mut self,
        mut control: mpsc::Receiver<Control>,
        mut links: mpsc::UnboundedReceiver<(u32, bool)>,
        tick_every: Duration,
        mut on_change: impl FnMut(&Engine),
        mut tick: impl FnMut(&Engine),
    ) {
        let mut second = tokio::time::interval(tick_every);
        second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let deadline = DeadlineTimer::new()
            .inspect_err(|error| warn!(%error, "no timerfd: protocol timers fall back to 1 ms steps"))
            .ok();
        let mut changes = Coalescer::new(CHANGE_GAP);
        loop {
            if self.dirty && changes.changed(Instant::now()) {
                self.dirty = false;
                on_change(self);
            }
            // At or before the next deadline: waking early, the engine finds nothing
            // due and sleeps again until the deadline (`Timers::due`).
            let next = self.timers.next();
            if let Some(d) = &deadline {
                d.set(next);
            }
            let sleep = async {
                match (next, &deadline) {
                    (Some(at), Some(d)) if d.is_armed() => d.expired(at).await,
                    (Some(at), _) => tokio::time::sleep_until(at.into()).await,
                    (None, _) => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                ctl = control.recv() => match ctl {
                    Some(Control::Reload(specs, done)) => {
                        self.reload(specs).await;
                        let _ = done.send(());
                    }
                    Some(Control::Track(results)) => self.track(results),
                    Some(Control::Maintenance(name, on)) => self.set_maintenance(name, on),
                    Some(Control::Shutdown) | None => return,
                },
                _ = sleep => self.fire_due_timers(),
                () = std::future::poll_fn(|cx| {
                    match self.readers.iter().any(|(_, s)| s.poll_readable(cx).is_ready()) {
                        true => std::task::Poll::Ready(()),
                        false => std::task::Poll::Pending,
                    }
                }) => self.read_sockets(),
                Some((index, up)) = links.recv() => {
                    self.link_changed(index, up);
                    self.link_followers.retain(|f| f.send((index, up)).is_ok());
                }
                Some(()) = async {
                    match self.addr_events.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    // 20 ms: one check for a burst (a flush removes many addresses).
                    self.verify_due.get_or_insert(Instant::now() + Duration::from_millis(20));
                }
                _ = async {
                    match self.verify_due {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                } => {
                    self.verify_due = None;
                    self.verify_vips();
                }
                _ = async {
                    match changes.due() {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                } => {} // The deferred snapshot: published at the top of the loop.
                _ = second.tick() => {
                    self.flush_recordings();
                    self.verify_vips_tick();
                    self.announce_extra_ifs(Instant::now());
                    // The periodic snapshot carries any change still deferred.
                    self.dirty = false;
                    changes.published(Instant::now());
                    tick(self)
                }
            }
        }
    }
}

/// With address events, every VIP is checked once per this many ticks (10 s at the
/// default second), the others only after an event (`Engine::verify_vips_tick`).
const VERIFY_ALL_EVERY: u32 = 10;

/// The least time between two snapshots published for changes: a burst of
/// transitions (255 instances starting or failing over together) costs one snapshot
/// per 10 ms, not one per transition; the status shows a change at most 10 ms late.
const CHANGE_GAP: Duration = Duration::from_millis(10);

/// The engine's next protocol deadline on a CLOCK_MONOTONIC timerfd. Tokio's timer
/// wheel ticks in whole milliseconds and sleeps through epoll_wait's millisecond
/// timeout, so a deadline on it fires 0-2 ms late: measured, a Master_Down_Timer
/// fired 1.2 ms late (median), and a master re-arming its Adver_Timer on firing
/// advertised every 11.2 ms for a 10 ms interval (keepalived: 10.1 ms), which ate
/// into the backups' Master_Down_Interval. A timerfd fires within the kernel's timer
/// slack (50 µs by default; measured 0.2 ms median up to the advert leaving). Never
/// early: the kernel reads its clock after `Instant::now()`, so the relative expiry
/// computed from it lands at or after the deadline.
struct DeadlineTimer {
    fd: AsyncFd<OwnedFd>,
    armed: Cell<Option<Instant>>,
}

impl DeadlineTimer {
    fn new() -> io::Result<DeadlineTimer> {
        // SAFETY: a plain syscall; the descriptor it returns is owned just below.
        let raw =
            unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the AsyncFd owns the descriptor, which stays open as long as it does.
        let fd =
            unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(io::Error::from)?;
        Ok(DeadlineTimer {
            fd,
            armed: Cell::new(None),
        })
    }

    /// Arms the timer for `at`. Only an earlier deadline re-arms it: when the next
    /// one moved later (a backup restarts its Master_Down_Timer on every advert) or
    /// went away, the timer wakes the engine early once, which finds nothing due and
    /// arms it again: a few wake-ups a second instead of a syscall per advert.
    fn set(&self, at: Option<Instant>) {
        let Some(at) = at else {
            return;
        };
        if self.armed.get().is_some_and(|armed| armed <= at) {
            return;
        }
        self.armed.set(Some(at));
        // A zero it_value would disarm: a deadline already past becomes 1 ns.
        let after = at
            .saturating_duration_since(Instant::now())
            .max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs() as libc::time_t,
                tv_nsec: after.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: a valid timerfd and a valid itimerspec; the old value is not asked for.
        let rc = unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc != 0 {
            // Not expected with these arguments; the caller then falls back to tokio's timer.
            error!(error = %io::Error::last_os_error(), "timerfd_settime failed");
            self.armed.set(None);
        }
    }

    fn is_armed(&self) -> bool {
        self.armed.get().is_some()
    }

    /// Resolves once the time the timer is armed for (at or before the next
    /// deadline `at`) has passed.
    async fn expired(&self, at: Instant) {
        loop {
            // poll_read_ready, not readable(): the engine's task is the only one that
            // waits here, and the readiness's own waker slot spares the waiter list
            // (a lock, an insert and a removal) on every wake.
            let ready = std::future::poll_fn(|cx| self.fd.poll_read_ready(cx)).await;
            let Ok(mut guard) = ready else {
                // The reactor is gone (shutting down): tokio's timer still works.
                return tokio::time::sleep_until(at.into()).await;
            };
            let mut expirations = [0u8; 8];
            // SAFETY: reads at most 8 bytes into a local buffer of 8 bytes.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), expirations.as_mut_ptr().cast(), 8) };
            if n == 8 {
                // Expired and consumed: the next `set` must re-arm even for the same instant.
                self.armed.set(None);
                return;
            }
            guard.clear_ready();
        }
    }
}

/// One instance's inputs as a replay case (tests/replay.rs reads the same format).
/// The recording holds the VRRPv2 password: owner-only files in an owner-only
/// directory, never through a symlink (`durable`), and bounded: packets that do
/// not decode are left out (the instance drops them too) and the file stops
/// growing at `log.record_max_bytes`.
struct Recorder {
    instance: String,
    out: std::io::BufWriter<std::fs::File>,
    checksum: crate::vrrp::packet::ChecksumMode,
    /// Bytes in the file (what an earlier run left counts).
    written: u64,
    max_bytes: u64,
    failed: bool,
}

impl Recorder {
    fn create(
        instance: &str,
        dir: &std::path::Path,
        params: &crate::vrrp::Params,
        max_bytes: u64,
    ) -> Result<Recorder, crate::durable::DurableError> {
        crate::durable::private_dir(dir)?;
        let text = serde_json::to_vec_pretty(params).unwrap_or_default();
        crate::durable::write(&dir.join("params.json"), &text)?;
        let path = dir.join("input.jsonl");
        let file = crate::durable::open_append(&path)?;
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Recorder {
            instance: instance.to_string(),
            out: std::io::BufWriter::new(file),
            checksum: params.checksum_mode(),
            written,
            max_bytes,
            failed: false,
        })
    }

    fn input(&mut self, input: &Input) {
        use std::io::Write;
        if self.failed {
            return;
        }
        match input {
            Input::Packet {
                src, dst, payload, ..
            } => {
                let addrs = PacketAddrs { src: *src, dst: *dst };
                // A signed advert is recorded too (its trailer is not verified here).
                let (pdu, _) = crate::vrrp::auth_hmac::split(payload, src.is_ipv6());
                if crate::vrrp::Advert::decode_signed(payload, pdu, addrs, self.checksum).is_err() {
                    return;
                }
            }
            Input::Reconfigure { params } => self.checksum = params.checksum_mode(),
            _ => {}
        }
        let line = serde_json::to_string(input).unwrap_or_default();
        let len = line.len() as u64 + 1;
        if self.written.saturating_add(len) > self.max_bytes {
            warn!(
                instance = self.instance,
                max_bytes = self.max_bytes,
                "recording reached log.record_max_bytes; no more inputs recorded"
            );
            self.flush();
            self.failed = true;
            return;
        }
        if let Err(error) = writeln!(self.out, "{line}") {
            warn!(instance = self.instance, %error, "input recorder stopped");
            self.failed = true;
        }
        self.written += len;
    }

    fn flush(&mut self) {
        use std::io::Write;
        if !self.failed && self.out.flush().is_err() {
            self.failed = true;
        }
    }
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

fn reason_str(r: Reason) -> &'static str {
    r.as_str()
}

/// The realtime clock since the Unix epoch (auth_hmac's timestamps; 0 before 1970).
fn wall_clock() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::packet::ChecksumMode;
    use crate::vrrp::{Advert, Version};

    fn advert(priority: u8) -> Advert {
        Advert {
            version: Version::V3,
            vrid: 51,
            priority,
            interval_cs: 10,
            addresses: vec!["192.0.2.100".parse().unwrap()],
            auth: crate::vrrp::packet::Auth::None,
        }
    }

    fn fresh(a: &Advert, addrs: PacketAddrs, checksum: ChecksumMode) -> Vec<u8> {
        let mut b = Vec::new();
        a.encode_into(addrs, checksum, &mut b).unwrap();
        b
    }

    /// The cached bytes are those a fresh encoding gives, for each destination
    /// (the pseudo-header names it), and a changed advert, source or checksum mode
    /// is encoded again, never served from the cache.
    #[test]
    fn cached_advert_bytes_are_a_fresh_encoding() {
        let mut cache = AdvertCache::default();
        let src: IpAddr = "192.0.2.1".parse().unwrap();
        let peers: [IpAddr; 2] = ["192.0.2.2".parse().unwrap(), "192.0.2.3".parse().unwrap()];
        let rfc = ChecksumMode::Rfc;
        for round in 0..3 {
            for dst in peers {
                let addrs = PacketAddrs { src, dst };
                let got = cache.encoded(advert(150), addrs, rfc).unwrap().to_vec();
                assert_eq!(got, fresh(&advert(150), addrs, rfc), "round {round}");
            }
        }
        assert_ne!(
            fresh(&advert(150), PacketAddrs { src, dst: peers[0] }, rfc),
            fresh(&advert(150), PacketAddrs { src, dst: peers[1] }, rfc)
        );
        let addrs = PacketAddrs { src, dst: peers[0] };
        let lowered = cache.encoded(advert(100), addrs, rfc).unwrap().to_vec();
        assert_eq!(lowered, fresh(&advert(100), addrs, rfc));
        let compat = ChecksumMode::V2Compatible;
        let got = cache.encoded(advert(100), addrs, compat).unwrap().to_vec();
        assert_eq!(got, fresh(&advert(100), addrs, compat));
        let other = PacketAddrs {
            src: "192.0.2.9".parse().unwrap(),
            dst: peers[0],
        };
        let got = cache.encoded(advert(100), other, compat).unwrap().to_vec();
        assert_eq!(got, fresh(&advert(100), other, compat));
        // A refused encoding (mixed families) is an error each time, not cached.
        let v6 = PacketAddrs {
            src: "2001:db8::1".parse().unwrap(),
            dst: "ff02::12".parse().unwrap(),
        };
        assert!(cache.encoded(advert(100), v6, rfc).is_err());
        assert!(cache.encoded(advert(100), v6, rfc).is_err());
    }
}
