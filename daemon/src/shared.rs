//! The vocabulary the daemon's parts share, at the bottom so that none of them
//! imports another to speak to it: the engine's control messages and snapshots
//! (read by the API, the status file, the split-brain monitor, IPVS), the node's
//! VRRP roles and real-server health (IPVS, the supervisor, the tracker), and
//! tracking as the API shows it. Data only: no task, no I/O.
//! The last reload's outcome is in [`reload`].

pub mod reload;
pub mod throttle;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::oneshot;

use crate::histogram::Histogram;
use crate::vrrp::instance::Counters;
use crate::vrrp::{Params, State};

/// An instance as the engine needs it: protocol parameters plus where it lives.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceSpec {
    pub interface: String,
    pub label: Option<String>,
    /// VIPs left alone when something else removes or adds them.
    pub vip_no_track: Vec<ipnet::IpNet>,
    pub unicast_source: Option<IpAddr>,
    /// `use_vmac`: the VIPs (and, unless `xmit_base`, the adverts) on a macvlan
    /// with the RFC 5798 virtual MAC.
    pub vmac: Option<VmacSpec>,
    /// The other members of this instance's sync groups (`params.synced` is set
    /// when there are any).
    pub sync_peers: Vec<String>,
    /// `params.primary` is filled in from the interface when the instance starts.
    pub params: Params,
    /// Blocking transition hooks (`hooks`, built-in conntrackd steps first).
    pub hooks: Hooks,
    /// What a master holds besides the advertised VIPs on its interface.
    pub extras: Extras,
    /// Fault while the interface is down (false: keepalived's dont_track_primary).
    pub track_link: bool,
    /// Periodic announcements on the extra interfaces while master
    /// (`garp.extra_if_interval`, keepalived's `garp_extra_if`).
    pub extra_if: Option<ExtraIf>,
}

/// `garp.extra_if_interval` and `garp.extra_if_all`: while master, one
/// announcement on each extra interface every `every`, the first `master_delay +
/// every` after becoming master (as keepalived). Extra interfaces: the macvlan of
/// a `vmac_xmit_base` instance (its VIPs are there, its adverts are not); with
/// `all`, also every other interface a VIP is put on (`vip_options.dev`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtraIf {
    pub every: std::time::Duration,
    pub all: bool,
}

impl ExtraIf {
    pub fn from_config(i: &crate::config::InstanceConfig) -> Option<ExtraIf> {
        (!i.garp.extra_if_interval.is_zero()).then_some(ExtraIf {
            every: i.garp.extra_if_interval,
            all: i.garp.extra_if_all,
        })
    }
}

/// What a master holds besides the advertised VIPs on its interface
/// (config/routes.rs): VIPs with a device, label or scope of their own, VIPs kept
/// out of the adverts, routes and policy rules.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extras {
    pub addrs: Vec<ExtraAddr>,
    pub routes: Vec<crate::config::routes::VirtualRoute>,
    pub rules: Vec<crate::config::routes::VirtualRule>,
    /// The macvlans with the virtual MAC that `addrs` name as `dev`
    /// (`vmac_addr`, `vip_options.use_vmac`).
    pub vmacs: Vec<crate::config::vmac::AddrVmac>,
}

/// One address of [`Extras`].
#[derive(Clone, Debug, PartialEq)]
pub struct ExtraAddr {
    pub vip: ipnet::IpNet,
    /// None: the instance's interface (or its macvlan).
    pub dev: Option<String>,
    pub label: Option<String>,
    /// RT_SCOPE_* value; None: global.
    pub scope: Option<u8>,
    /// Restored (master) or removed (otherwise) when something else changes it.
    pub track: bool,
}

impl Extras {
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty() && self.routes.is_empty() && self.rules.is_empty()
    }

    /// Whether an advertised VIP is placed by `vip_options` (added here, not with
    /// the others on the instance's interface).
    pub fn placed(&self, vip: &ipnet::IpNet) -> bool {
        self.addrs.iter().any(|a| a.vip == *vip)
    }

    /// From an instance's configuration and its VIPs' macvlans
    /// ([`crate::config::vmac::plan`]).
    pub fn from_config(i: &crate::config::InstanceConfig, vmacs: &[crate::config::vmac::AddrVmac]) -> Extras {
        let options = crate::config::routes::vip_options(i);
        let on_vmac = |vip: &ipnet::IpNet| {
            vmacs
                .iter()
                .find(|m| m.vips.contains(vip))
                .map(|m| m.name.clone())
        };
        let placed = i
            .virtual_ips
            .iter()
            .filter(|v| options.contains_key(v) || on_vmac(v).is_some());
        let addrs = placed
            .chain(&i.virtual_ips_excluded)
            .map(|vip| {
                let mut o = options.get(vip).cloned().unwrap_or_default();
                if let Some(vmac) = on_vmac(vip) {
                    o.dev = Some(vmac);
                }
                ExtraAddr {
                    vip: *vip,
                    label: o
                        .label
                        .or_else(|| o.dev.is_none().then(|| i.vip_label.clone()).flatten()),
                    dev: o.dev,
                    scope: o.scope.map(|s| s.value()),
                    track: !i.vip_no_track.contains(vip),
                }
            })
            .collect();
        Extras {
            addrs,
            routes: i.virtual_routes.clone(),
            rules: i.virtual_rules.clone(),
            vmacs: vmacs.to_vec(),
        }
    }
}

/// What runs, in order and each under `timeout`, before the VIPs are added and
/// after they are removed (docs/configuration.md, "Transition hooks").
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hooks {
    pub before_master: Vec<HookStep>,
    pub after_leave: Vec<HookStep>,
    pub timeout: std::time::Duration,
    /// IPVS services with `master_of` this instance: becoming master, the VIPs
    /// wait (at most `IPVS_WAIT`) until the reconciler has written them, so no
    /// packet reaches the VIP while the kernel has no IPVS service for it (a
    /// synced connection would be answered by a reset; docs/operations.md).
    pub wait_ipvs: Vec<String>,
}

/// How long VIPs wait for their instance's IPVS services.
pub const IPVS_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// What the IPVS reconciler's last pass left in the kernel, as the VIP executor
/// needs it (Hooks::wait_ipvs); the daemon derives it from the reconciler's snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpvsWritten {
    /// IPVS is unavailable: nothing to wait for.
    pub unavailable: bool,
    /// The configured services, and of those the ones written (installed).
    pub known: std::collections::BTreeSet<String>,
    pub installed: std::collections::BTreeSet<String>,
}

impl IpvsWritten {
    /// Each of `services` is written, or unknown to the reconciler (a reload
    /// removed it), or IPVS is unavailable.
    pub fn ready(&self, services: &[String]) -> bool {
        self.unavailable
            || services
                .iter()
                .all(|n| !self.known.contains(n) || self.installed.contains(n))
    }
}

/// One hook command: argv, and whether it is hafront's own (conntrackd: run as
/// a tool, as root without capabilities) or the operator's (the script user).
#[derive(Clone, Debug, PartialEq)]
pub struct HookStep {
    pub argv: Vec<String>,
    pub builtin: bool,
}

impl Hooks {
    /// From an instance's `hooks` and the node's `[conntrackd]`.
    pub fn from_config(
        h: &crate::config::HooksConfig,
        conntrackd: &crate::config::ConntrackdConfig,
    ) -> Hooks {
        let steps = |master: bool, own: &[Vec<String>]| -> Vec<HookStep> {
            let builtin = if h.conntrackd {
                conntrackd.steps(master)
            } else {
                Vec::new()
            };
            let builtin = builtin.into_iter().map(|argv| HookStep { argv, builtin: true });
            let own = own.iter().map(|argv| HookStep {
                argv: argv.clone(),
                builtin: false,
            });
            builtin.chain(own).collect()
        };
        Hooks {
            before_master: steps(true, &h.before_master),
            after_leave: steps(false, &h.after_leave),
            timeout: h.timeout(),
            wait_ipvs: Vec::new(),
        }
    }
}

/// An instance's virtual MAC interface (`use_vmac`, `vmac_name`, `vmac_xmit_base`),
/// or its ipvlan (`use_ipvlan`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmacSpec {
    pub name: String,
    /// Adverts sent and received on the base interface, with its own MAC.
    pub xmit_base: bool,
    /// `use_ipvlan`: an L2 ipvlan (the base's MAC) instead of a macvlan.
    pub ipvlan: Option<IpvlanSpec>,
}

/// `use_ipvlan`, `ipvlan_address`, `ipvlan_mode`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpvlanSpec {
    pub address: Option<ipnet::IpNet>,
    pub mode: crate::config::IpvlanMode,
}

impl InstanceSpec {
    /// The names of the macvlans and ipvlans this instance makes: its own
    /// (`use_vmac`, `use_ipvlan`) and its VIPs' ([`Extras::vmacs`]).
    pub fn vmac_names(&self) -> Vec<String> {
        let own = self.vmac.iter().map(|v| v.name.clone());
        own.chain(self.extras.vmacs.iter().map(|m| m.name.clone()))
            .collect()
    }

    pub(crate) fn ipv6(&self) -> bool {
        self.params.family().is_ipv6()
    }
    /// What cannot change under a running instance (RFC 5798: a virtual router is
    /// identified by interface, VRID and family).
    pub(crate) fn identity(&self) -> (&str, u8, u8, bool) {
        (
            &self.interface,
            self.params.vrid,
            u8::from(self.params.version),
            self.ipv6(),
        )
    }
}

/// What the engine is told by the tracker, the API and the reload path.
pub enum Control {
    Reload(Vec<(String, InstanceSpec)>, oneshot::Sender<()>),
    /// Tracking results by instance name: effective priority and fault.
    Track(Vec<(String, u8, bool)>),
    /// Operator maintenance by instance name (API); kept for instances created later.
    Maintenance(String, bool),
    Shutdown,
}

/// What the engine publishes after every change and once a tick: the API, the
/// status file and the IPVS roles read it, never the engine itself.
#[derive(Clone, Debug, Serialize)]
pub struct EngineSnapshot {
    pub instances: Vec<(String, InstanceStatus)>,
    pub unknown_vrid_packets: u64,
    /// Backup -> master after the old master went silent: time since its last advert.
    pub failover_seconds: Histogram,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Transition {
    pub unix_ms: u128,
    pub from: State,
    pub to: State,
    pub reason: &'static str,
}

/// A snapshot of one instance for status.json, the API and systemd's STATUS=.
#[derive(Clone, Debug, Serialize)]
pub struct InstanceStatus {
    pub state: State,
    /// This, `vips` and `recent_transitions` are shared with the engine's slot: a
    /// snapshot (once a second, and after changes) does not copy them (issue 19).
    #[serde(serialize_with = "serialize_str")]
    pub interface: Arc<str>,
    pub vrid: u8,
    pub version: u8,
    /// Advertised now (tracking and API overrides applied).
    pub priority: u8,
    /// From the configuration.
    pub configured_priority: u8,
    pub maintenance: bool,
    pub transitions: u64,
    pub master: Option<IpAddr>,
    #[serde(serialize_with = "serialize_slice")]
    pub vips: Arc<[String]>,
    pub advert_interval_ms: u32,
    pub counters: Counters,
    pub last_transition: Option<Transition>,
    /// The last [`RECENT_TRANSITIONS`] transitions, oldest first.
    #[serde(serialize_with = "serialize_slice")]
    pub recent_transitions: Arc<[Transition]>,
}

fn serialize_str<S: serde::Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
}

fn serialize_slice<T: Serialize, S: serde::Serializer>(v: &Arc<[T]>, s: S) -> Result<S::Ok, S::Error> {
    v[..].serialize(s)
}

/// How many transitions an instance's status keeps.
pub const RECENT_TRANSITIONS: usize = 10;

/// A real server's health: live or not, and the weight a dynamic check (exec with
/// `dynamic_weight`, keepalived's misc_dynamic) gives it, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Health {
    pub up: bool,
    pub weight: Option<u32>,
}

impl Health {
    pub const UP: Health = Health {
        up: true,
        weight: None,
    };
    pub const DOWN: Health = Health {
        up: false,
        weight: None,
    };
}

/// Check verdicts by check name (the tracker writes them, the IPVS reconciler, the
/// supervisor and the status read them), with a bounded journal of the latest
/// changes: a follower finds what changed since it last looked in the number of
/// changes, not by comparing every check (issue 16: with one check per real server,
/// a comparison per event grows with the table). Reads go through `Deref` to the map.
#[derive(Clone, Debug, Default)]
pub struct Verdicts {
    health: BTreeMap<String, Health>,
    /// Sequence number of the last change (0: none yet).
    seq: u64,
    /// The latest changes, oldest first: (sequence number, check name); at most
    /// [`Verdicts::JOURNAL`].
    journal: VecDeque<(u64, String)>,
}

impl Verdicts {
    /// Changes kept for followers; one that falls further behind compares the map.
    pub const JOURNAL: usize = 1024;

    /// Records a check's verdict; false (nothing recorded) when it is unchanged.
    pub fn set(&mut self, name: &str, health: Health) -> bool {
        if self.health.get(name) == Some(&health) {
            return false;
        }
        self.health.insert(name.to_string(), health);
        self.seq += 1;
        if self.journal.len() == Self::JOURNAL {
            self.journal.pop_front();
        }
        self.journal.push_back((self.seq, name.to_string()));
        true
    }

    /// The sequence number of the last change.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The checks changed after change `since` (a name once, however often it
    /// changed), or `None` when the journal no longer reaches back that far.
    pub fn changed_since(&self, since: u64) -> Option<BTreeSet<&str>> {
        if since > self.seq {
            return None;
        }
        let missing = self.seq - since;
        if missing > self.journal.len() as u64 {
            return None;
        }
        let skip = self.journal.len() - missing as usize;
        Some(self.journal.iter().skip(skip).map(|(_, n)| n.as_str()).collect())
    }
}

impl std::ops::Deref for Verdicts {
    type Target = BTreeMap<String, Health>;
    fn deref(&self) -> &Self::Target {
        &self.health
    }
}

/// What the VRRP side tells IPVS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roles {
    /// Instances this node is master of.
    pub masters: BTreeSet<String>,
    /// Instances that do not know yet whether they will be master (just started,
    /// no advert heard): services that follow them are left as they are, so a
    /// restart does not delete and re-create a live service.
    pub unsettled: BTreeSet<String>,
}

/// Instances whose VIPs the VIP executor has added and not yet removed (the
/// executor keeps it): an instance that left master is in it until its `Remove`
/// has run.
pub type VipsHeld = BTreeSet<String>;

impl Roles {
    /// The roles the IPVS reconciler installs services for: an instance that left
    /// master counts as master until its VIPs are removed. Leaving master, the
    /// engine's removal of the VIPs and the reconciler's removal of the services
    /// ran side by side; a service removed first left the VIP on the node with no
    /// IPVS hook behind it, and the node's own stack answered the clients' packets
    /// with resets (issue 16: VIPs go before services).
    pub fn with_vips_held(mut self, held: &VipsHeld) -> Roles {
        for name in held {
            if !self.masters.contains(name) {
                self.unsettled.remove(name);
                self.masters.insert(name.clone());
            }
        }
        self
    }
}

/// Tracking as the API shows it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TrackingSnapshot {
    pub instances: BTreeMap<String, InstanceTracking>,
    /// Tracking scripts: `None` until their first verdict.
    pub scripts: BTreeMap<String, Option<bool>>,
    /// Anycast groups: their tracked items and whether any is down. A group is
    /// absent until the tracker's first verdict (the anycast task then leaves its
    /// routes as they are: a restart adopts them).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub anycast: BTreeMap<String, AnycastTracking>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct AnycastTracking {
    pub fault: bool,
    /// A tracked item has no verdict yet (a check that has not run): a group not
    /// announced waits for it; one already announced (a restart) stays.
    pub pending: bool,
    /// The items that are down.
    pub reasons: Vec<String>,
    pub items: Vec<TrackedItemStatus>,
}

/// The anycast groups as the API shows them (`crate::anycast` publishes it).
#[derive(Clone, Debug, Default, Serialize)]
pub struct AnycastSnapshot {
    pub groups: BTreeMap<String, AnycastStatus>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct AnycastStatus {
    /// The routes are in the table BIRD imports from (BIRD announces them).
    pub announced: bool,
    /// Why it is announced or not: `healthy`, `maintenance`, `stopping`, `not yet
    /// known`, or the tracked items that are down.
    pub why: String,
    /// When `announced` last changed (or hafront started), Unix milliseconds.
    pub since_unix_ms: u64,
    pub prefixes: Vec<ipnet::IpNet>,
    pub interface: String,
    pub table: u32,
    /// Announcements and withdrawals since start.
    pub changes: u64,
    /// The last kernel error, while it lasts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// BGP and BFD sessions as this group's BIRD reports them.
    pub bird: BirdStatus,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BirdStatus {
    pub socket: String,
    /// The control socket answered the last poll.
    pub reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// BGP protocols: name -> (state, info), e.g. `up`, `Established`.
    pub bgp: BTreeMap<String, BirdProtocol>,
    /// BFD sessions: neighbor address -> state (`Up`, `Down`, `Init`, `AdminDown`).
    pub bfd: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BirdProtocol {
    pub state: String,
    pub info: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct InstanceTracking {
    /// Configured priority, or the operator's override.
    pub base_priority: u8,
    pub priority_overridden: bool,
    pub effective_priority: u8,
    pub fault: bool,
    /// Why it is in fault (tracked items, sync group).
    pub reasons: Vec<String>,
    /// A VIP the kernel refused, while its hold lowers the priority to 1
    /// (`crate::track::RefusalHold`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vip_refused: Option<String>,
    pub items: Vec<TrackedItemStatus>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TrackedItemStatus {
    pub kind: &'static str,
    pub name: String,
    pub weight: i32,
    /// `None`: no state yet (counts as healthy).
    pub up: Option<bool>,
    /// Tracked files: the value read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
}

/// Tests only: Debian's python3 (with python3-aiosmtpd and python3-prometheus-client,
/// which scripts/test installs) where it exists, else the first python3 on PATH (in
/// Nix's build sandbox no program sits at /usr/bin: the tests then skip).
#[cfg(test)]
pub(crate) fn test_python3() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

#[cfg(test)]
mod tests {
    use super::{Health, IpvsWritten, Verdicts};
    use std::collections::BTreeSet;

    #[test]
    fn verdicts_name_what_changed_since_a_follower_looked() {
        let mut v = Verdicts::default();
        assert_eq!(v.changed_since(0), Some(BTreeSet::new()));
        assert!(v.set("a", Health::UP));
        assert!(!v.set("a", Health::UP), "an unchanged verdict is no change");
        assert!(v.set("b", Health::DOWN));
        assert!(v.set("a", Health::DOWN));
        assert_eq!(v.seq(), 3);
        assert_eq!(v.changed_since(0), Some(BTreeSet::from(["a", "b"])));
        assert_eq!(v.changed_since(2), Some(BTreeSet::from(["a"])));
        assert_eq!(v.changed_since(3), Some(BTreeSet::new()));
        assert_eq!(v.changed_since(4), None, "ahead of the writer: compare");
        assert_eq!(v.get("a"), Some(&Health::DOWN), "reads see the map");
    }

    #[test]
    fn a_follower_that_fell_behind_the_journal_is_told_to_compare() {
        let mut v = Verdicts::default();
        let n = Verdicts::JOURNAL as u64 + 10;
        for i in 0..n {
            v.set(&format!("c{i}"), Health::DOWN);
        }
        assert_eq!(v.changed_since(0), None);
        assert_eq!(v.changed_since(9), None);
        assert_eq!(v.changed_since(10).map(|c| c.len()), Some(Verdicts::JOURNAL));
        assert_eq!(
            v.changed_since(n - 1),
            Some(BTreeSet::from([format!("c{}", n - 1).as_str()]))
        );
    }

    #[test]
    fn vips_wait_for_their_ipvs_services_only_while_ipvs_can_write_them() {
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        let web = ["web".to_string()];
        let mut w = IpvsWritten {
            unavailable: false,
            known: set(&["web", "db"]),
            installed: set(&["db"]),
        };
        assert!(!w.ready(&web));
        w.installed = set(&["db", "web"]);
        assert!(w.ready(&web));
        // Removed by a reload, or IPVS unavailable: nothing to wait for.
        assert!(w.ready(&["gone".to_string()]));
        let off = IpvsWritten {
            unavailable: true,
            ..Default::default()
        };
        assert!(off.ready(&web));
    }
}
