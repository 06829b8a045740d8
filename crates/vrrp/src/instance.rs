//! One VRRP virtual router, sans-IO: `Instance::handle(input) -> Vec<Output>`.
//!
//! No sockets, no clocks. Timers are requested with `Output::TimerStart` and come
//! back as `Input::Timer`; packets come in as bytes with their IP source,
//! destination and TTL. State changes happen in one place, [`Instance::change_state`].
//! RFC 5798 (v3) and RFC 3768 (v2) sections are cited where each rule lives.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::auth_hmac::{self, AuthHmac, TRAILER_LEN};
use super::error::DecodeError;
use super::packet::{Advert, Auth, ChecksumMode, PacketAddrs, Version, MCAST_V4, MCAST_V6};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Initialize,
    Backup,
    Master,
    /// The interface is down: no adverts, no VIPs (keepalived's FAULT; not in the RFCs,
    /// which assume a working link).
    Fault,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Initialize => "initialize",
            State::Backup => "backup",
            State::Master => "master",
            State::Fault => "fault",
        }
    }
}

/// The timers an instance uses. At most one of each is armed at a time; starting
/// an armed timer re-arms it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Timer {
    /// Master_Down_Timer (Backup).
    MasterDown,
    /// Adver_Timer (Master).
    Advert,
    /// Second gratuitous ARP / NA burst, then periodic refresh (Master).
    Garp,
    /// End of the preempt delay after startup.
    PreemptDelay,
    /// End of the start-up hold (`startup_hold_ms`).
    StartupHold,
}

/// Gratuitous ARP / unsolicited NA policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GarpParams {
    pub master_burst: u32,
    pub master_delay_ms: u64,
    pub master_repeat: u32,
    pub refresh_ms: Option<u64>,
    pub lower_prio_burst: bool,
    /// One announcement per VIP with every advert while master, so that clients
    /// that followed another master during a partition come back within one
    /// interval of the heal, whatever the order the paths come back in.
    #[serde(default)]
    pub with_advert: bool,
}

impl Default for GarpParams {
    fn default() -> Self {
        GarpParams {
            master_burst: 5,
            master_delay_ms: 5000,
            master_repeat: 5,
            refresh_ms: None,
            lower_prio_burst: true,
            with_advert: false,
        }
    }
}

/// The address owner's priority (RFC 5798 §5.2.4): the router that owns the
/// virtual addresses; it never waits to become master and is never lowered.
pub const OWNER_PRIORITY: u8 = 255;

/// Whether `priority` is the address owner's.
pub fn is_owner(priority: u8) -> bool {
    priority == OWNER_PRIORITY
}

/// The address family of a virtual router (RFC 5798 §5.2.5: an advert carries
/// addresses of one family).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: IpAddr) -> Family {
        if addr.is_ipv6() {
            Family::V6
        } else {
            Family::V4
        }
    }

    /// An instance's family is that of its first VIP (IPv4 without any). VIPs of
    /// the other family move with the state but are not advertised, as keepalived
    /// does with a mixed list.
    pub fn of_vips(vips: &[IpNet]) -> Family {
        vips.first().map_or(Family::V4, |n| Family::of(n.addr()))
    }

    pub fn is_ipv6(self) -> bool {
        self == Family::V6
    }
}

/// Everything the protocol needs to know about its configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    pub name: String,
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// Advertisement_Interval in centiseconds.
    pub interval_cs: u16,
    pub vips: Vec<IpNet>,
    pub preempt: bool,
    #[serde(default)]
    pub preempt_delay_ms: u64,
    /// Our primary address on the interface (RFC 5798 §6.4.3 tie-break; sender of adverts).
    pub primary: IpAddr,
    #[serde(default)]
    pub unicast_peers: Vec<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_pass: Option<String>,
    #[serde(default)]
    pub checksum_compat: bool,
    #[serde(default)]
    pub garp: GarpParams,
    /// Member of a sync group: when its Master_Down_Timer fires it asks the group
    /// (`Output::WantMaster`) instead of taking over alone; the group moves when
    /// every member wants to (keepalived's vrrp_sync_group).
    #[serde(default)]
    pub synced: bool,
    /// Not in the RFCs: a preempting backup that hears the master advertise a
    /// priority below its own takes over at once, as if its Master_Down_Timer had
    /// fired, instead of discarding the advert and waiting ~3 intervals (RFC 5798
    /// §6.4.2). The lowered master hears the higher advert and yields (§6.4.3), so
    /// the wire exchange stays RFC-conformant for the peer.
    #[serde(default)]
    pub fast_preempt: bool,
    /// Not in the RFCs (keepalived's `vrrp_startup_delay` / `vrrp_delay_after_boot`):
    /// for this long after Startup the instance stays Backup and silent, whatever
    /// it hears or does not hear, even as address owner; a node whose links come up
    /// slowly after a reboot must not take mastership from a working master it
    /// cannot hear yet. 0 = no hold.
    #[serde(default)]
    pub startup_hold_ms: u64,
    /// Signed adverts (keepalived's `auth_hmac`, `crate::auth_hmac`). Never
    /// serialized: recordings and replay files carry no key.
    #[serde(skip)]
    pub auth_hmac: Option<auth_hmac::Config>,
}

impl Params {
    pub fn is_owner(&self) -> bool {
        is_owner(self.priority)
    }

    pub fn family(&self) -> Family {
        Family::of_vips(&self.vips)
    }
    /// Where adverts go: every unicast peer, else the VRRP multicast group of the
    /// primary address's family (RFC 5798 §5.1.1.2, §5.1.2.2).
    pub fn destinations(&self) -> Vec<IpAddr> {
        if !self.unicast_peers.is_empty() {
            return self.unicast_peers.clone();
        }
        vec![self.multicast_group()]
    }

    /// The VRRP multicast group of the primary address's family.
    pub fn multicast_group(&self) -> IpAddr {
        if self.primary.is_ipv6() {
            IpAddr::V6(MCAST_V6)
        } else {
            IpAddr::V4(MCAST_V4)
        }
    }

    /// The checksum adverts are sent and checked with (`checksum_compat`: keepalived's
    /// VRRPv3-over-IPv4 checksum without the pseudo-header).
    pub fn checksum_mode(&self) -> ChecksumMode {
        if self.checksum_compat {
            ChecksumMode::V2Compatible
        } else {
            ChecksumMode::Rfc
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Input {
    /// RFC 5798 §6.4.1: the Startup event.
    Startup,
    /// RFC 5798 §6.4.2/§6.4.3: the Shutdown event.
    Shutdown,
    Timer {
        timer: Timer,
    },
    /// A VRRP packet (IP payload) with the fields of its IP header that matter.
    Packet {
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        #[serde(with = "hex_bytes")]
        payload: Vec<u8>,
        /// Realtime clock at reception, nanoseconds since the Unix epoch; read
        /// only by auth_hmac's `time` anti-replay (0 in replay files).
        #[serde(default, skip_serializing_if = "is_zero")]
        wall_ns: u64,
    },
    /// New parameters after a reload; applied in place (see [`Instance::reconfigure`]).
    Reconfigure {
        params: Box<Params>,
    },
    /// The interface lost its carrier or was set down.
    LinkDown,
    /// The interface is up with a carrier again.
    LinkUp,
    /// Tracking (interfaces, scripts, checks, files, sync group) as computed by the
    /// engine: the effective priority (configured + weights, clamped 1..254; an
    /// owner stays 255) and whether a weight-0 tracker failed.
    Track {
        priority: u8,
        fault: bool,
    },
    /// Operator maintenance (API): on = leave mastership gracefully (priority 0)
    /// and stay backup whatever the peers do; off = take part again.
    Maintenance {
        on: bool,
    },
    /// The sync group moves: to master (every member wants it) or to backup (a
    /// member left mastership).
    SyncGroup {
        to: State,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Output {
    SendAdvert {
        advert: Advert,
    },
    AddVips {
        vips: Vec<IpNet>,
    },
    RemoveVips {
        vips: Vec<IpNet>,
    },
    /// Send `count` gratuitous ARPs / unsolicited NAs for every VIP.
    Announce {
        count: u32,
    },
    TimerStart {
        timer: Timer,
        after_us: u64,
    },
    TimerStop {
        timer: Timer,
    },
    StateChange {
        from: State,
        to: State,
        reason: Reason,
    },
    /// A sync-group member's Master_Down_Timer fired: it would become master and
    /// waits for the rest of its group.
    WantMaster,
    /// A packet was dropped; `counter` is the stable counter name.
    Rejected {
        src: IpAddr,
        counter: String,
        reason: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Startup,
    AddressOwner,
    MasterDown,
    PriorityZero,
    HigherPriority,
    Shutdown,
    LinkDown,
    LinkUp,
    TrackFault,
    TrackRecovered,
    Maintenance,
    MaintenanceOff,
    SyncGroup,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Startup => "startup",
            Reason::AddressOwner => "address owner",
            Reason::MasterDown => "master down timer expired",
            Reason::PriorityZero => "master released (priority 0)",
            Reason::HigherPriority => "higher-priority master heard",
            Reason::Shutdown => "shutdown",
            Reason::LinkDown => "interface down",
            Reason::LinkUp => "interface up",
            Reason::TrackFault => "tracked item failed",
            Reason::TrackRecovered => "tracked items recovered",
            Reason::Maintenance => "maintenance",
            Reason::MaintenanceOff => "maintenance ended",
            Reason::SyncGroup => "sync group moved",
        }
    }
}

/// Counters kept by the instance (the keepalived exporter's names where they exist).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub priority_zero_sent: u64,
    pub priority_zero_received: u64,
    pub become_master: u64,
    pub release_master: u64,
    pub address_list_mismatch: u64,
    /// Dropped packets by reason (ttl, checksum, version, vrid, auth, interval, ...).
    pub rejected: BTreeMap<String, u64>,
}

pub struct Instance {
    params: Params,
    state: State,
    /// Master_Adver_Interval, centiseconds (RFC 5798 §6.1).
    master_adver_interval_cs: u16,
    /// Preemption is held back until the startup preempt delay is over.
    preempt_held: bool,
    /// The second gARP burst is still to come (else the Garp timer means refresh).
    second_burst_pending: bool,
    master: Option<IpAddr>,
    link_up: bool,
    /// A weight-0 tracker failed (keepalived: FAULT by tracking).
    track_fault: bool,
    /// The priority in use as the tracker last said it (configured or API
    /// override, plus weights); `None` until it has spoken: the configured one.
    effective_priority: Option<u8>,
    /// Operator maintenance: never master.
    maintenance: bool,
    /// Sync group: the Master_Down_Timer fired and the group has not moved yet.
    want_master: bool,
    /// Start-up hold: no mastership until `Timer::StartupHold` fires.
    startup_held: bool,
    /// The Master_Down_Timer fired during the hold (no master heard since).
    down_while_held: bool,
    /// Master: it re-asserted itself (advert + announcement) on a lower-priority or
    /// priority-0 advert since the Adver_Timer last fired. At most one re-assertion
    /// per Advertisement_Interval, so spoofed adverts cannot be amplified.
    reasserted: bool,
    counters: Counters,
    /// Signing and verification state (`Params::auth_hmac`).
    hmac: Option<AuthHmac>,
    /// The last advert's addresses, kept for their room (see `packet`).
    rx_addresses: Vec<IpAddr>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn new_hmac(params: &Params) -> Option<AuthHmac> {
    let cfg = params.auth_hmac.clone()?;
    Some(AuthHmac::new(cfg, params.unicast_peers.len()))
}

impl Instance {
    pub fn new(params: Params) -> Self {
        let interval = params.interval_cs;
        let hmac = new_hmac(&params);
        Instance {
            hmac,
            params,
            state: State::Initialize,
            master_adver_interval_cs: interval,
            preempt_held: false,
            second_burst_pending: false,
            master: None,
            link_up: true,
            track_fault: false,
            effective_priority: None,
            maintenance: false,
            want_master: false,
            reasserted: false,
            startup_held: false,
            down_while_held: false,
            counters: Counters::default(),
            rx_addresses: Vec::new(),
        }
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The auth_hmac trailer for an encoded advert of this instance sent from
    /// `src` at realtime `now` (since the Unix epoch); None when the instance does
    /// not sign (no `auth_hmac`, or mode receive-only).
    /// Whether the instance signs its adverts (`Instance::sign` may return a trailer).
    pub fn signs(&self) -> bool {
        self.hmac.is_some()
    }

    pub fn sign(&mut self, pdu: &[u8], src: IpAddr, now: std::time::Duration) -> Option<[u8; TRAILER_LEN]> {
        let (version, vrid) = (u8::from(self.params.version), self.params.vrid);
        self.hmac.as_mut()?.sign(pdu, version, vrid, src, now)
    }
    pub fn state(&self) -> State {
        self.state
    }
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
    pub fn in_maintenance(&self) -> bool {
        self.maintenance
    }
    /// A sync-group member ready to become master with its group.
    pub fn wants_master(&self) -> bool {
        self.state == State::Backup && self.want_master && !self.maintenance
    }
    /// Address of the current master as last heard (ourselves when master).
    pub fn master(&self) -> Option<IpAddr> {
        self.master
    }
    /// Priority advertised now.
    /// The priority in use: configured, or as changed by tracking. The address
    /// owner's is always 255 (RFC 5798 §5.2.4: the owner's priority is 255).
    pub fn priority(&self) -> u8 {
        if self.params.is_owner() {
            return 255;
        }
        self.effective_priority.unwrap_or(self.params.priority)
    }

    /// Skew_Time in microseconds: RFC 5798 §6.1 `((256 - Priority) * Master_Adver_Interval) / 256`;
    /// RFC 3768 §6.1 `(256 - Priority) / 256` seconds for v2.
    pub fn skew_us(&self) -> u64 {
        let span = match self.params.version {
            Version::V3 => u64::from(self.master_adver_interval_cs) * 10_000,
            Version::V2 => 1_000_000,
        };
        (256 - u64::from(self.priority())) * span / 256
    }

    /// Master_Down_Interval in microseconds: `3 * Master_Adver_Interval + Skew_Time`.
    pub fn master_down_us(&self) -> u64 {
        3 * u64::from(self.master_adver_interval_cs) * 10_000 + self.skew_us()
    }

    fn advert_us(&self) -> u64 {
        u64::from(self.params.interval_cs) * 10_000
    }

    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        self.handle_into(input, &mut out);
        out
    }

    /// [`Instance::handle`], appending the outputs to `out` (a caller's buffer,
    /// reused from one input to the next: no allocation per advert).
    pub fn handle_into(&mut self, input: Input, out: &mut Vec<Output>) {
        match input {
            Input::Startup => self.startup(out),
            Input::Shutdown => self.shutdown(out),
            Input::Timer { timer } => self.timer(timer, out),
            Input::Packet {
                src,
                dst,
                ttl,
                payload,
                wall_ns,
            } => self.packet_into(src, dst, ttl, &payload, wall_ns, out),
            Input::Reconfigure { params } => self.reconfigure(*params, out),
            Input::LinkDown => self.link(false, out),
            Input::LinkUp => self.link(true, out),
            Input::Track { priority, fault } => self.track(priority, fault, out),
            Input::Maintenance { on } => self.set_maintenance(on, out),
            Input::SyncGroup { to } => self.sync_group(to, out),
        }
    }

    /// RFC 5798 §6.4.1.
    fn startup(&mut self, out: &mut Vec<Output>) {
        if self.state != State::Initialize {
            return;
        }
        if self.params.preempt && self.params.preempt_delay_ms > 0 && !self.params.is_owner() {
            self.preempt_held = true;
            out.push(Output::TimerStart {
                timer: Timer::PreemptDelay,
                after_us: self.params.preempt_delay_ms * 1000,
            });
        }
        if self.params.startup_hold_ms > 0 {
            self.startup_held = true;
            self.down_while_held = false;
            out.push(Output::TimerStart {
                timer: Timer::StartupHold,
                after_us: self.params.startup_hold_ms * 1000,
            });
        }
        if !self.params.is_owner()
            || !self.link_up
            || self.track_fault
            || self.maintenance
            || self.startup_held
        {
            // A VIP left behind by an earlier run (or by keepalived after a kill) must
            // not stay on a node that is not master.
            out.push(Output::RemoveVips {
                vips: self.params.vips.clone(),
            });
        }
        if !self.link_up {
            self.change_state(State::Fault, Reason::LinkDown, out);
        } else if self.track_fault {
            self.change_state(State::Fault, Reason::TrackFault, out);
        } else if self.maintenance {
            self.change_state(State::Backup, Reason::Maintenance, out);
        } else if self.startup_held {
            // The owner too: it takes over when the hold ends (see `timer`).
            self.down_while_held = self.params.is_owner();
            self.change_state(State::Backup, Reason::Startup, out);
        } else if self.params.is_owner() {
            self.change_state(State::Master, Reason::AddressOwner, out);
        } else {
            self.change_state(State::Backup, Reason::Startup, out);
        }
    }

    /// Interface state: down -> Fault from any running state; up -> Backup (or
    /// Master for the address owner), as after startup, so `preempt = false` keeps
    /// a returning node backup.
    fn link(&mut self, up: bool, out: &mut Vec<Output>) {
        self.link_up = up;
        match (up, self.state) {
            (false, State::Backup | State::Master) => self.change_state(State::Fault, Reason::LinkDown, out),
            (true, State::Fault) if !self.track_fault => self.leave_fault(Reason::LinkUp, out),
            _ => {}
        }
    }

    fn leave_fault(&mut self, reason: Reason, out: &mut Vec<Output>) {
        if self.params.is_owner() && !self.maintenance {
            self.change_state(State::Master, reason, out)
        } else {
            self.change_state(State::Backup, reason, out)
        }
    }

    /// Tracking changed the priority or the fault condition. Not in the RFCs (which
    /// have a fixed priority); this is keepalived's behaviour, which operators
    /// expect: a lowered master advertises its new priority at once so a
    /// preempting backup takes over without waiting for the next interval, and a
    /// tracking fault makes a master resign with priority 0.
    fn track(&mut self, priority: u8, fault: bool, out: &mut Vec<Output>) {
        let before = self.priority();
        // The tracker owns the priority in use (configured or API override, plus
        // weights): once it has spoken, its word is kept as is, not compared with
        // params.priority (a reload's new priority arrives as the next Track).
        self.effective_priority = Some(priority.max(1));
        self.track_fault = fault;
        match (fault, self.state) {
            (true, State::Backup | State::Master) => self.change_state(State::Fault, Reason::TrackFault, out),
            (false, State::Fault) if self.link_up => self.leave_fault(Reason::TrackRecovered, out),
            (false, State::Master) if self.priority() != before => self.send_advert(self.priority(), out),
            _ => {}
        }
    }

    /// Maintenance is not in the RFCs. Entering it, a master leaves as at Shutdown
    /// (priority 0, so a backup takes over after Skew_Time) but stays Backup; in
    /// maintenance the Master_Down_Timer never makes it master (see `timer`), so a
    /// drained node stays drained even when no peer answers. Leaving it, a backup
    /// takes part again (and preempts, if configured, through the usual rules); the
    /// address owner becomes master at once, as at startup.
    fn set_maintenance(&mut self, on: bool, out: &mut Vec<Output>) {
        if self.maintenance == on {
            return;
        }
        self.maintenance = on;
        match (on, self.state) {
            (true, State::Master) => {
                self.change_state(State::Backup, Reason::Maintenance, out);
                // We were the master; the next one is not known yet.
                self.master = None;
            }
            (false, State::Backup) if self.params.is_owner() => {
                self.change_state(State::Master, Reason::MaintenanceOff, out)
            }
            _ => {}
        }
    }

    /// The group moved (not in the RFCs; keepalived's sync groups). To master only
    /// from Backup and never in maintenance; to backup only from Master, without a
    /// priority-0 advert (the peer group is taking over already).
    fn sync_group(&mut self, to: State, out: &mut Vec<Output>) {
        match (to, self.state) {
            (State::Master, State::Backup) if !self.maintenance => {
                self.change_state(State::Master, Reason::SyncGroup, out)
            }
            (State::Backup, State::Master) => self.change_state(State::Backup, Reason::SyncGroup, out),
            _ => {}
        }
    }

    /// RFC 5798 §6.4.2 / §6.4.3 Shutdown: the master sends priority 0 so a backup
    /// takes over after Skew_Time instead of Master_Down_Interval.
    fn shutdown(&mut self, out: &mut Vec<Output>) {
        if self.state == State::Initialize {
            return;
        }
        self.change_state(State::Initialize, Reason::Shutdown, out);
    }

    fn timer(&mut self, timer: Timer, out: &mut Vec<Output>) {
        match (timer, self.state) {
            // RFC 5798 §6.4.2: Master_Down_Timer fires -> Master.
            (Timer::MasterDown, State::Backup) if self.maintenance => {
                // Stay backup; keep watching so leaving maintenance resumes normally.
                self.master = None;
                out.push(Output::TimerStart {
                    timer: Timer::MasterDown,
                    after_us: self.master_down_us(),
                });
            }
            (Timer::MasterDown, State::Backup) if self.startup_held => {
                // Start-up hold: stay backup; take over when it ends unless a
                // master is heard meanwhile.
                self.master = None;
                self.down_while_held = true;
            }
            (Timer::MasterDown, State::Backup) if self.params.synced => {
                // Wait for the group (the engine answers with Input::SyncGroup).
                self.master = None;
                self.want_master = true;
                out.push(Output::WantMaster);
            }
            (Timer::MasterDown, State::Backup) => self.change_state(State::Master, Reason::MasterDown, out),
            // RFC 5798 §6.4.3: Adver_Timer fires -> send an advertisement, re-arm.
            (Timer::Advert, State::Master) => {
                self.reasserted = false;
                self.send_advert(self.priority(), out);
                out.push(Output::TimerStart {
                    timer: Timer::Advert,
                    after_us: self.advert_us(),
                });
                if self.params.garp.with_advert {
                    // Partition heal: when the winner's advert reaches the loser first,
                    // the loser yields silently and the winner hears nothing; only
                    // its own periodic announcement moves the clients that learned
                    // the loser's MAC (docs/architecture.md, "Partition heal").
                    out.push(Output::Announce { count: 1 });
                }
            }
            (Timer::Garp, State::Master) => {
                let count = if self.second_burst_pending {
                    self.second_burst_pending = false;
                    self.params.garp.master_repeat
                } else {
                    1
                };
                out.push(Output::Announce { count });
                if let Some(ms) = self.params.garp.refresh_ms {
                    out.push(Output::TimerStart {
                        timer: Timer::Garp,
                        after_us: ms * 1000,
                    });
                }
            }
            (Timer::PreemptDelay, _) => self.preempt_held = false,
            (Timer::StartupHold, _) => {
                self.startup_held = false;
                if self.state == State::Backup && std::mem::take(&mut self.down_while_held) {
                    self.timer(Timer::MasterDown, out);
                }
            }
            // A timer that raced with a state change is stale: ignore it.
            _ => {}
        }
    }

    fn reject(&mut self, src: IpAddr, counter: &str, reason: String, out: &mut Vec<Output>) {
        *self.counters.rejected.entry(counter.to_string()).or_default() += 1;
        out.push(Output::Rejected {
            src,
            counter: counter.to_string(),
            reason,
        });
    }

    /// RFC 5798 §7.1 (receiving), then §6.4.2 / §6.4.3 (what the state does with it):
    /// `Input::Packet` with its payload borrowed (the caller's receive buffer),
    /// outputs appended to `out`.
    pub fn packet_into(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        payload: &[u8],
        wall_ns: u64,
        out: &mut Vec<Output>,
    ) {
        // §7.1: "MUST verify that the IPvX TTL/Hop Limit is 255".
        if ttl != 255 {
            return self.reject(src, "ttl", format!("TTL/hop limit {ttl}, must be 255"), out);
        }
        if src.is_ipv6() != self.params.primary.is_ipv6() {
            return self.reject(
                src,
                "family",
                "address family of the instance differs".into(),
                out,
            );
        }
        // keepalived's auth_hmac: a trailer is recognised by length, and only by an
        // instance that has auth_hmac (others refuse the length).
        let (pdu, trailer) = match self.hmac {
            Some(_) => auth_hmac::split(payload, src.is_ipv6()),
            None => (payload, None),
        };
        let addrs = PacketAddrs { src, dst };
        // The addresses go into the last advert's vector: no allocation per advert.
        let room = std::mem::take(&mut self.rx_addresses);
        let span = match (trailer, src.is_ipv6()) {
            (Some(_), true) => payload,
            _ => pdu,
        };
        let advert = match Advert::decode_reusing(pdu, span, addrs, self.params.checksum_mode(), room) {
            Ok(a) => a,
            Err(e) => return self.reject_decode(src, e, out),
        };
        self.advert_received(src, pdu, trailer, wall_ns, &advert, out);
        self.rx_addresses = advert.addresses;
    }

    /// [`Instance::packet`] once the advert decoded.
    fn advert_received(
        &mut self,
        src: IpAddr,
        pdu: &[u8],
        trailer: Option<&[u8; TRAILER_LEN]>,
        wall_ns: u64,
        advert: &Advert,
        out: &mut Vec<Output>,
    ) {
        if advert.version != self.params.version {
            let v = u8::from(advert.version);
            return self.reject(
                src,
                "version",
                format!("version {v}, configured {}", u8::from(self.params.version)),
                out,
            );
        }
        if advert.vrid != self.params.vrid {
            return self.reject(
                src,
                "vrid",
                format!("VRID {}, configured {}", advert.vrid, self.params.vrid),
                out,
            );
        }
        if !self.params.unicast_peers.is_empty() && !self.params.unicast_peers.contains(&src) {
            return self.reject(
                src,
                "unicast_peer",
                "sender is not a configured unicast peer".into(),
                out,
            );
        }
        // keepalived authenticates before any field reaches the state machine
        // (`vrrp_check_packet` -> `vrrp_auth_ext_verify`).
        if let Some(h) = &mut self.hmac {
            let now = std::time::Duration::from_nanos(wall_ns);
            let (version, vrid) = (u8::from(self.params.version), self.params.vrid);
            if let Err(e) = h.verify(pdu, trailer, version, vrid, src, now) {
                return self.reject(src, e.counter(), e.to_string(), out);
            }
        }
        if self.params.version == Version::V2 {
            // RFC 3768 §7.1: authentication type and data must match the configuration.
            match (&advert.auth, &self.params.auth_pass) {
                (Auth::None, None) => {}
                (Auth::Pass(got), Some(want)) if got == want => {}
                (Auth::Pass(_), Some(_)) => {
                    return self.reject(src, "auth", "authentication password mismatch".into(), out);
                }
                _ => {
                    return self.reject(
                        src,
                        "auth_type",
                        "authentication type differs from the configured one".into(),
                        out,
                    );
                }
            }
            // RFC 3768 §7.1: the Adver Interval must match the locally configured one.
            if advert.interval_cs != self.params.interval_cs {
                return self.reject(
                    src,
                    "interval",
                    format!(
                        "advert interval {}s, configured {}s",
                        advert.interval_cs / 100,
                        self.params.interval_cs / 100
                    ),
                    out,
                );
            }
        }
        // §7.1: the address list MAY be checked; a mismatch is logged, not dropped.
        if !is_owner(advert.priority) && !self.address_list_matches(advert) {
            self.counters.address_list_mismatch += 1;
        }
        self.counters.adverts_received += 1;
        if advert.priority == 0 {
            self.counters.priority_zero_received += 1;
        }
        match self.state {
            State::Backup => self.backup_advert(src, advert, out),
            State::Master => self.master_advert(src, advert, out),
            State::Initialize | State::Fault => {}
        }
    }

    fn reject_decode(&mut self, src: IpAddr, e: DecodeError, out: &mut Vec<Output>) {
        self.reject(src, e.counter(), e.to_string(), out)
    }

    /// The addresses carried in adverts: the VIPs of the instance's family (that of
    /// the first VIP). VIPs of the other family move with the state but are not
    /// advertised, as keepalived does with a mixed list (an advert carries one family,
    /// RFC 5798 §5.2.5).
    fn advertised_addresses(&self) -> Vec<IpAddr> {
        let family = self.params.family();
        // Sized once (a collect through the filter grew it: a second allocation
        // per advert sent).
        let mut out = Vec::with_capacity(self.params.vips.len());
        out.extend(
            self.params
                .vips
                .iter()
                .map(|n| n.addr())
                .filter(|a| Family::of(*a) == family),
        );
        out
    }

    fn address_list_matches(&self, advert: &Advert) -> bool {
        let family = self.params.family();
        let mut ours_iter = self
            .params
            .vips
            .iter()
            .map(|n| n.addr())
            .filter(|a| Family::of(*a) == family);
        // Every advert of a backup passes here: the usual single address without
        // allocating.
        if let [theirs] = advert.addresses.as_slice() {
            return ours_iter.next() == Some(*theirs) && ours_iter.next().is_none();
        }
        let mut ours = self.advertised_addresses();
        let mut theirs = advert.addresses.clone();
        ours.sort();
        theirs.sort();
        ours == theirs
    }

    /// RFC 5798 §6.4.2, Backup receives an ADVERTISEMENT.
    fn backup_advert(&mut self, src: IpAddr, advert: &Advert, out: &mut Vec<Output>) {
        let preempt = self.params.preempt && !self.preempt_held;
        let lowered = preempt && self.params.fast_preempt && advert.priority < self.priority();
        if advert.priority == 0 && self.master != Some(src) {
            // Not in the RFC, which trusts every sender: "the master leaves" (priority
            // 0) cuts the wait to Skew_Time, so only the master we follow may say it.
            // From anyone else (a spoofed or stray advert) it is discarded and
            // counted, and the Master_Down_Timer runs on; a real master that went
            // silent is still replaced when it expires.
            return self.reject(
                src,
                "not_master",
                format!(
                    "priority {} from {src}, which is not the current master",
                    advert.priority
                ),
                out,
            );
        }
        if lowered && self.master != Some(src) {
            // Not the master we follow (a lower master we are about to preempt, or a
            // forged advert): RFC 5798 §6.4.2, "Discard the ADVERTISEMENT", and let
            // the Master_Down_Timer preempt.
            return;
        }
        if advert.priority == 0 {
            // "Set the Master_Down_Timer to Skew_Time".
            self.master = None;
            out.push(Output::TimerStart {
                timer: Timer::MasterDown,
                after_us: self.skew_us(),
            });
            return;
        }
        if lowered {
            // The master announced a lower priority (tracking): take over now.
            return self.timer(Timer::MasterDown, out);
        }
        if !preempt || advert.priority >= self.priority() {
            self.master = Some(src);
            self.want_master = false;
            self.down_while_held = false;
            if self.params.version == Version::V3 {
                // "Set Master_Adver_Interval to Adver Interval contained in the ADVERTISEMENT".
                self.master_adver_interval_cs = advert.interval_cs;
            }
            out.push(Output::TimerStart {
                timer: Timer::MasterDown,
                after_us: self.master_down_us(),
            });
        }
        // Else: "Discard the ADVERTISEMENT" and let the Master_Down_Timer preempt.
    }

    /// RFC 5798 §6.4.3, Master receives an ADVERTISEMENT.
    fn master_advert(&mut self, src: IpAddr, advert: &Advert, out: &mut Vec<Output>) {
        if advert.priority == 0 {
            // "Send an ADVERTISEMENT; Reset the Adver_Timer to Advertisement_Interval",
            // once per interval (see `reasserted`).
            if std::mem::replace(&mut self.reasserted, true) {
                return;
            }
            self.send_advert(self.priority(), out);
            out.push(Output::TimerStart {
                timer: Timer::Advert,
                after_us: self.advert_us(),
            });
            return;
        }
        let ours = self.priority();
        if advert.priority > ours || (advert.priority == ours && src > self.params.primary) {
            self.master = Some(src);
            if self.params.version == Version::V3 {
                self.master_adver_interval_cs = advert.interval_cs;
            }
            self.change_state(State::Backup, Reason::HigherPriority, out);
            return;
        }
        // A lower-priority master exists (split brain healing, or a peer that just
        // came up): assert ourselves at once instead of at the next tick, and refresh
        // the neighbours' caches in case they followed the other master. Once per
        // Advertisement_Interval: a flood of (spoofed) lower-priority adverts must
        // not become a flood of adverts and gratuitous ARPs; the regular advert at
        // the next tick answers any that come after this one.
        if std::mem::replace(&mut self.reasserted, true) {
            return;
        }
        self.send_advert(ours, out);
        out.push(Output::TimerStart {
            timer: Timer::Advert,
            after_us: self.advert_us(),
        });
        if self.params.garp.lower_prio_burst {
            out.push(Output::Announce {
                count: self.params.garp.master_burst,
            });
        }
    }

    fn send_advert(&mut self, priority: u8, out: &mut Vec<Output>) {
        self.counters.adverts_sent += 1;
        if priority == 0 {
            self.counters.priority_zero_sent += 1;
        }
        out.push(Output::SendAdvert {
            advert: Advert {
                version: self.params.version,
                vrid: self.params.vrid,
                priority,
                interval_cs: self.params.interval_cs,
                addresses: self.advertised_addresses(),
                auth: match &self.params.auth_pass {
                    Some(p) => Auth::Pass(p.clone()),
                    None => Auth::None,
                },
            },
        });
    }

    /// The one place where the state changes, with the exit actions of the old state
    /// and the entry actions of the new one.
    fn change_state(&mut self, to: State, reason: Reason, out: &mut Vec<Output>) {
        let from = self.state;
        self.want_master = false;
        self.reasserted = false;
        // Exit actions.
        match from {
            State::Master => {
                out.push(Output::TimerStop { timer: Timer::Advert });
                out.push(Output::TimerStop { timer: Timer::Garp });
                if to == State::Initialize
                    || (to == State::Fault && self.link_up)
                    || reason == Reason::Maintenance
                {
                    // RFC 5798 §6.4.3 Shutdown: "Send an ADVERTISEMENT with Priority = 0";
                    // also when tracking faults a master whose link still works, and
                    // when an operator puts it in maintenance.
                    self.send_advert(0, out);
                }
                // (To Fault by link: the link is down, an advert could not leave anyway.)
                out.push(Output::RemoveVips {
                    vips: self.params.vips.clone(),
                });
                self.counters.release_master += 1;
            }
            State::Backup => out.push(Output::TimerStop {
                timer: Timer::MasterDown,
            }),
            State::Initialize | State::Fault => {}
        }
        self.state = to;
        out.push(Output::StateChange { from, to, reason });
        // Entry actions.
        match to {
            State::Master => {
                // RFC 5798 §6.4.1 / §6.4.2: send an ADVERTISEMENT, announce the
                // addresses (gratuitous ARP, RFC 4861 §7.2.6 unsolicited NA), arm Adver_Timer.
                self.master = Some(self.params.primary);
                self.counters.become_master += 1;
                self.send_advert(self.priority(), out);
                out.push(Output::AddVips {
                    vips: self.params.vips.clone(),
                });
                out.push(Output::Announce {
                    count: self.params.garp.master_burst,
                });
                out.push(Output::TimerStart {
                    timer: Timer::Advert,
                    after_us: self.advert_us(),
                });
                self.arm_garp(out);
            }
            State::Fault => self.master = None,
            State::Backup => {
                if from != State::Master {
                    // Startup: "Set Master_Adver_Interval to Advertisement_Interval".
                    self.master_adver_interval_cs = self.params.interval_cs;
                }
                out.push(Output::TimerStart {
                    timer: Timer::MasterDown,
                    after_us: self.master_down_us(),
                });
            }
            State::Initialize => {
                self.master = None;
                out.push(Output::TimerStop {
                    timer: Timer::PreemptDelay,
                });
                if std::mem::take(&mut self.startup_held) {
                    out.push(Output::TimerStop {
                        timer: Timer::StartupHold,
                    });
                }
                self.preempt_held = false;
            }
        }
    }

    fn arm_garp(&mut self, out: &mut Vec<Output>) {
        let g = &self.params.garp;
        if g.master_delay_ms > 0 && g.master_repeat > 0 {
            self.second_burst_pending = true;
            out.push(Output::TimerStart {
                timer: Timer::Garp,
                after_us: g.master_delay_ms * 1000,
            });
        } else if let Some(ms) = g.refresh_ms {
            self.second_burst_pending = false;
            out.push(Output::TimerStart {
                timer: Timer::Garp,
                after_us: ms * 1000,
            });
        }
    }

    /// A reload changed parameters that can be applied without restarting the
    /// protocol (priority, preemption, VIPs, announcements). The daemon restarts an
    /// instance whose identity (interface, VRID, version, family) changed instead.
    fn reconfigure(&mut self, params: Params, out: &mut Vec<Output>) {
        let priority_before = self.priority();
        let old = std::mem::replace(&mut self.params, params);
        // New keys or mode take effect at once; sequences sent and heard are kept.
        let peers = self.params.unicast_peers.len();
        match (&mut self.hmac, self.params.auth_hmac.clone()) {
            (Some(h), Some(cfg)) => h.reconfigure(cfg, peers),
            (h, cfg) => *h = cfg.map(|c| AuthHmac::new(c, peers)),
        }
        let gone: Vec<IpNet> = old
            .vips
            .iter()
            .filter(|v| !self.params.vips.contains(v))
            .copied()
            .collect();
        if self.state != State::Master {
            // Not master: a VIP left in the kernel (drift, a crash) must still go.
            if !gone.is_empty() {
                out.push(Output::RemoveVips { vips: gone });
            }
            return;
        }
        let added: Vec<IpNet> = self
            .params
            .vips
            .iter()
            .filter(|v| !old.vips.contains(v))
            .copied()
            .collect();
        if !gone.is_empty() {
            out.push(Output::RemoveVips { vips: gone });
        }
        if !added.is_empty() {
            out.push(Output::AddVips { vips: added });
            out.push(Output::Announce {
                count: self.params.garp.master_burst,
            });
        }
        if self.priority() != priority_before
            || old.vips != self.params.vips
            || old.interval_cs != self.params.interval_cs
        {
            // Tell the peers now rather than at the next tick.
            self.send_advert(self.priority(), out);
            out.push(Output::TimerStart {
                timer: Timer::Advert,
                after_us: self.advert_us(),
            });
        }
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        s.serialize_str(&hex)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        crate::hex::decode(&s).map_err(serde::de::Error::custom)
    }
}
