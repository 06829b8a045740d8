//! VRRP tracking (keepalived's track_interface / track_script / track_file and
//! checks): from the state of tracked items to an instance's effective priority
//! and fault condition. Pure (but for file.rs, the bounded read of a tracked
//! file): the engine feeds item states in and gives the result to the instance
//! as `Input::Track`.
//!
//! Weights follow keepalived: a weight of 0 means "fault when the item fails"; a
//! negative weight is added while the item fails; a positive weight is added while
//! it is healthy. A tracked file contributes `value × weight` (with weight 0, a
//! non-zero value means fault). The result is clamped to 1..254; the address owner
//! (255) is never lowered, only faulted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

pub use crate::config::track::TrackItem;

pub mod file;

/// Where a tracked item's state comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Interface,
    Script,
    Check,
    File,
    /// A supervised service (`[services.NAME]`): up while its process runs.
    Service,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Interface => "interface",
            Kind::Script => "script",
            Kind::Check => "check",
            Kind::File => "file",
            Kind::Service => "service",
        }
    }
}

/// Why an instance is in fault. Shown to operators as text (its `Display`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// An item tracked with weight 0 is down.
    Down { kind: Kind, name: String },
    /// A file tracked with weight 0 holds a non-zero value.
    File { name: String, value: i64 },
    /// A supervised service past its restart limit, whatever its weight.
    ServiceFailed { name: String },
    /// The instance's own interface is down: the engine's business (the instance
    /// sees the link itself), but it faults the rest of its sync groups.
    OwnLink { interface: String },
    /// Another member of one of its sync groups is in fault.
    SyncGroup { group: String, member: String },
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Down { kind, name } => write!(f, "{} {name} down", kind.as_str()),
            Fault::File { name, value } => write!(f, "file {name} = {value}"),
            Fault::ServiceFailed { name } => write!(f, "service {name} failed (restart limit)"),
            Fault::OwnLink { interface } => write!(f, "interface {interface} down"),
            Fault::SyncGroup { group, member } => write!(f, "sync group {group}: {member} in fault"),
        }
    }
}

/// What one instance tracks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tracked {
    pub priority: u8,
    pub items: Vec<(Kind, TrackItem)>,
}

/// Item states. Items with no state yet count as healthy (a script that has not
/// run yet must not fault a node that just started), except interfaces, whose
/// state is known from the start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct States {
    pub up: BTreeMap<(Kind, String), bool>,
    pub file_values: BTreeMap<String, i64>,
    /// Services past their restart limit: a fault whatever the weight, until they
    /// run healthy again.
    pub failed_services: BTreeSet<String>,
    /// Tracked files that could not be read, with why (logged once per change).
    pub file_errors: BTreeMap<String, String>,
    /// Instances whose VIP the kernel refused (see [`RefusalHold`]).
    pub vip_refusals: BTreeMap<String, RefusalHold>,
}

/// The first hold after a refused VIP; each new refusal right after a hold ends
/// doubles it, up to [`REFUSAL_HOLD_MAX`].
pub const REFUSAL_HOLD_MIN: Duration = Duration::from_secs(2);
pub const REFUSAL_HOLD_MAX: Duration = Duration::from_secs(60);
/// A refusal this long after the last hold ended starts again at the minimum.
const REFUSAL_FORGET: Duration = Duration::from_secs(600);

/// A master whose VIP the kernel refuses (netlink error: a missing capability,
/// IPv6 off on the link, an address another interface claims) holds no address
/// while its adverts still leave: a black hole the backup never replaces. Not in
/// the RFCs nor in keepalived (which logs and stays master). hafront advertises
/// priority 1 while the hold lasts, so a healthy backup takes over (and a peer
/// refused too leaves them both serving what they can, the higher address master:
/// never a fault, which would drop every VIP of the instance). The hold ends when
/// an add succeeds (still master) or after its time; a retake that is refused
/// again doubles it (2 s, 4 s, ... 60 s): each retry costs one handover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusalHold {
    /// The VIP and the kernel's answer, for status.
    pub detail: String,
    pub until: Instant,
    /// Consecutive holds so far, minus one.
    pub level: u32,
    /// The priority is lowered (false once the hold's time has passed).
    pub active: bool,
}

impl RefusalHold {
    fn hold(level: u32) -> Duration {
        REFUSAL_HOLD_MIN
            .saturating_mul(1u32 << level.min(16))
            .min(REFUSAL_HOLD_MAX)
    }
}

impl States {
    pub fn set(&mut self, kind: Kind, name: &str, up: bool) -> bool {
        self.up.insert((kind, name.to_string()), up) != Some(up)
    }
    pub fn set_file(&mut self, name: &str, value: i64) -> bool {
        self.file_values.insert(name.to_string(), value) != Some(value)
    }
    /// The kernel refused one of `instance`'s VIPs at `now`: true when this starts
    /// a hold (the priority changes). A refusal during a hold (the master retrying
    /// every second) extends it at the same length.
    pub fn vip_refused(&mut self, instance: &str, detail: String, now: Instant) -> bool {
        match self.vip_refusals.get_mut(instance) {
            Some(h) if h.active => {
                h.until = now + RefusalHold::hold(h.level);
                h.detail = detail;
                false
            }
            Some(h) => {
                let fresh = now.saturating_duration_since(h.until) > REFUSAL_FORGET;
                h.level = if fresh { 0 } else { h.level.saturating_add(1) };
                h.until = now + RefusalHold::hold(h.level);
                h.detail = detail;
                h.active = true;
                true
            }
            None => {
                self.vip_refusals.insert(
                    instance.to_string(),
                    RefusalHold {
                        detail,
                        until: now + REFUSAL_HOLD_MIN,
                        level: 0,
                        active: true,
                    },
                );
                true
            }
        }
    }

    /// The instance's VIPs were added: the hold ends and its length starts again.
    /// True when the priority changes.
    pub fn vip_added(&mut self, instance: &str) -> bool {
        self.vip_refusals.remove(instance).is_some_and(|h| h.active)
    }

    /// Ends the holds whose time has passed; true when one did.
    pub fn expire_refusals(&mut self, now: Instant) -> bool {
        let mut changed = false;
        for h in self.vip_refusals.values_mut() {
            if h.active && now >= h.until {
                h.active = false;
                changed = true;
            }
        }
        changed
    }

    /// The hold lowering `instance`'s priority, if one is on.
    pub fn refusal_hold(&self, instance: &str) -> Option<&RefusalHold> {
        self.vip_refusals.get(instance).filter(|h| h.active)
    }

    pub fn set_service_failed(&mut self, name: &str, failed: bool) -> bool {
        if failed {
            self.failed_services.insert(name.to_string())
        } else {
            self.failed_services.remove(name)
        }
    }
}

/// The outcome for one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effective {
    pub priority: u8,
    /// The items that fault the instance (empty: no fault).
    pub faults: Vec<Fault>,
}

pub fn effective(t: &Tracked, states: &States) -> Effective {
    let mut delta: i64 = 0;
    let mut faults = Vec::new();
    for (kind, item) in &t.items {
        if *kind == Kind::File {
            let value = states.file_values.get(&item.name).copied().unwrap_or(0);
            if item.weight == 0 {
                if value != 0 {
                    faults.push(Fault::File {
                        name: item.name.clone(),
                        value,
                    });
                }
            } else {
                // Saturating: a file may hold any i64 and weights are i32; an
                // overflow must not wrap a huge penalty into a bonus.
                delta = delta.saturating_add(value.saturating_mul(i64::from(item.weight)));
            }
            continue;
        }
        if *kind == Kind::Service && states.failed_services.contains(&item.name) {
            faults.push(Fault::ServiceFailed {
                name: item.name.clone(),
            });
            continue;
        }
        let up = states
            .up
            .get(&(*kind, item.name.clone()))
            .copied()
            .unwrap_or(true);
        match (item.weight, up) {
            (0, false) => faults.push(Fault::Down {
                kind: *kind,
                name: item.name.clone(),
            }),
            (w, false) if w < 0 => delta = delta.saturating_add(i64::from(w)),
            (w, true) if w > 0 => delta = delta.saturating_add(i64::from(w)),
            _ => {}
        }
    }
    let priority = if crate::vrrp::is_owner(t.priority) {
        t.priority
    } else {
        i64::from(t.priority).saturating_add(delta).clamp(1, 254) as u8
    };
    Effective { priority, faults }
}

/// Sync groups: a fault in one member faults every member (keepalived's
/// vrrp_sync_group). Returns, per instance, the members of its groups that fault it.
pub fn sync_group_faults(
    groups: &BTreeMap<String, Vec<String>>,
    faulted: &BTreeSet<String>,
) -> BTreeMap<String, Vec<Fault>> {
    let mut out: BTreeMap<String, Vec<Fault>> = BTreeMap::new();
    for (group, members) in groups {
        let bad: Vec<&String> = members.iter().filter(|m| faulted.contains(*m)).collect();
        if bad.is_empty() {
            continue;
        }
        for m in members {
            for b in &bad {
                if *b != m {
                    out.entry(m.clone()).or_default().push(Fault::SyncGroup {
                        group: group.clone(),
                        member: b.to_string(),
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: Kind, name: &str, weight: i32) -> (Kind, TrackItem) {
        (
            kind,
            TrackItem {
                name: name.into(),
                weight,
            },
        )
    }

    #[test]
    fn weights_and_clamping() {
        let t = Tracked {
            priority: 100,
            items: vec![
                item(Kind::Check, "web", -60),
                item(Kind::Script, "bonus", 20),
                item(Kind::Interface, "eth1", -50),
            ],
        };
        let mut s = States::default();
        // Unknown = healthy: +20 from the positive script.
        assert_eq!(effective(&t, &s).priority, 120);
        s.set(Kind::Check, "web", false);
        assert_eq!(effective(&t, &s).priority, 60);
        s.set(Kind::Interface, "eth1", false);
        // 100 - 60 + 20 - 50 = 10
        assert_eq!(effective(&t, &s).priority, 10);
        s.set(Kind::Script, "bonus", false);
        // 100 - 60 - 50 = -10 -> clamped to 1
        assert_eq!(effective(&t, &s).priority, 1);
        let high = Tracked {
            priority: 250,
            items: vec![item(Kind::Script, "bonus", 20)],
        };
        assert_eq!(effective(&high, &States::default()).priority, 254);
    }

    #[test]
    fn weight_zero_faults_and_owner_is_never_lowered() {
        let t = Tracked {
            priority: 255,
            items: vec![item(Kind::Check, "web", -60), item(Kind::Interface, "eth1", 0)],
        };
        let mut s = States::default();
        s.set(Kind::Check, "web", false);
        assert_eq!(
            effective(&t, &s),
            Effective {
                priority: 255,
                faults: vec![]
            }
        );
        s.set(Kind::Interface, "eth1", false);
        let faults = effective(&t, &s).faults;
        assert_eq!(
            faults,
            vec![Fault::Down {
                kind: Kind::Interface,
                name: "eth1".into()
            }]
        );
        assert_eq!(faults[0].to_string(), "interface eth1 down");
    }

    #[test]
    fn failed_service_faults_whatever_its_weight() {
        let t = Tracked {
            priority: 100,
            items: vec![item(Kind::Service, "nginx", -60)],
        };
        let mut s = States::default();
        s.set(Kind::Service, "nginx", false);
        assert_eq!(effective(&t, &s).priority, 40);
        assert!(effective(&t, &s).faults.is_empty());
        assert!(s.set_service_failed("nginx", true));
        assert_eq!(
            effective(&t, &s).faults,
            vec![Fault::ServiceFailed { name: "nginx".into() }]
        );
        assert_eq!(
            effective(&t, &s).faults[0].to_string(),
            "service nginx failed (restart limit)"
        );
        assert!(s.set_service_failed("nginx", false));
        s.set(Kind::Service, "nginx", true);
        assert_eq!(
            effective(&t, &s),
            Effective {
                priority: 100,
                faults: vec![]
            }
        );
    }

    #[test]
    fn files_multiply_or_fault() {
        let t = Tracked {
            priority: 100,
            items: vec![item(Kind::File, "load", -2), item(Kind::File, "maint", 0)],
        };
        let mut s = States::default();
        s.set_file("load", 10);
        assert_eq!(effective(&t, &s).priority, 80);
        s.set_file("maint", 1);
        assert_eq!(effective(&t, &s).faults[0].to_string(), "file maint = 1");
    }

    /// Values and weights at their limits: the sum saturates instead of
    /// overflowing (a panic, or in release a wrap from penalty to bonus).
    #[test]
    fn huge_values_and_weights_saturate() {
        let t = Tracked {
            priority: 100,
            items: vec![
                item(Kind::File, "a", i32::MIN),
                item(Kind::File, "b", i32::MIN),
                item(Kind::Script, "s", i32::MIN),
            ],
        };
        let mut s = States::default();
        s.set_file("a", i64::MAX);
        s.set_file("b", i64::MAX);
        s.set(Kind::Script, "s", false);
        assert_eq!(effective(&t, &s).priority, 1);
        let t = Tracked {
            priority: 100,
            items: vec![item(Kind::File, "a", i32::MAX), item(Kind::File, "b", i32::MAX)],
        };
        assert_eq!(effective(&t, &s).priority, 254);
        s.set_file("a", i64::MIN);
        s.set_file("b", i64::MIN);
        assert_eq!(effective(&t, &s).priority, 1);
    }

    #[test]
    fn sync_group_fault_propagates() {
        let groups = BTreeMap::from([("edge".to_string(), vec!["web".to_string(), "db".to_string()])]);
        let faulted = BTreeSet::from(["db".to_string()]);
        let f = sync_group_faults(&groups, &faulted);
        assert_eq!(f["web"][0].to_string(), "sync group edge: db in fault");
        assert!(!f.contains_key("db"));
        assert!(sync_group_faults(&groups, &BTreeSet::new()).is_empty());
    }

    #[test]
    fn refused_vip_holds_then_doubles_then_resets() {
        let t0 = Instant::now();
        let mut s = States::default();
        assert!(s.vip_refused("web", "192.0.2.100/24: refused".into(), t0));
        assert_eq!(s.refusal_hold("web").unwrap().until, t0 + REFUSAL_HOLD_MIN);
        // The master retrying every second extends the hold, no new change.
        let t1 = t0 + Duration::from_secs(1);
        assert!(!s.vip_refused("web", "again".into(), t1));
        assert!(!s.expire_refusals(t1 + Duration::from_millis(1999)));
        assert!(s.expire_refusals(t1 + REFUSAL_HOLD_MIN));
        assert!(s.refusal_hold("web").is_none());
        // Retaken and refused again: twice as long, then four times, capped.
        let mut now = t1 + REFUSAL_HOLD_MIN;
        for want in [4, 8, 16, 32, 60, 60] {
            now += Duration::from_millis(500);
            assert!(s.vip_refused("web", "again".into(), now));
            assert_eq!(
                s.refusal_hold("web").unwrap().until - now,
                Duration::from_secs(want)
            );
            now += Duration::from_secs(want);
            assert!(s.expire_refusals(now));
        }
        // Long quiet: back to the shortest hold.
        now += REFUSAL_FORGET + Duration::from_secs(1);
        assert!(s.vip_refused("web", "again".into(), now));
        assert_eq!(s.refusal_hold("web").unwrap().until - now, REFUSAL_HOLD_MIN);
        // An add that succeeds ends it at once; the next refusal starts short.
        assert!(s.vip_added("web"));
        assert!(!s.vip_added("web"));
        assert!(s.vip_refused("web", "again".into(), now));
        assert_eq!(s.refusal_hold("web").unwrap().level, 0);
        assert!(s.refusal_hold("db").is_none());
    }
}
