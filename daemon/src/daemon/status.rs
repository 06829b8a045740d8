//! The status file (`<runtime_dir>/status.json`, rewritten atomically after state
//! changes and once a second) and systemd's READY=/STATUS=, written on a thread of
//! their own ([`spawn_publisher`]): the engine only publishes snapshots.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;
use tracing::{error, warn};

use super::engine::EngineSnapshot;
use crate::shared::{InstanceStatus, Roles};

pub struct StatusWriter {
    dir: PathBuf,
    node: String,
    /// overrides.json was unusable at start (every instance in maintenance).
    overrides_error: Option<String>,
    /// The serialized status, reused from one write to the next.
    buf: std::cell::RefCell<Vec<u8>>,
    /// Each instance's text around its counters, in the snapshot's order, from the
    /// last write (an instance at another place, after a reload, is made again).
    cache: std::cell::RefCell<Vec<Cached>>,
}

/// One instance's status.json text but its counters, kept while nothing else of it
/// changes: in steady state only the counters move (a master's `adverts_sent`, a
/// backup's `adverts_received`), and serializing the rest of 255 instances every
/// second (the transitions above all) was most of the status file's cost (issue 19).
struct Cached {
    /// What `head` and `tail` were made from (counters aside).
    name: String,
    status: InstanceStatus,
    /// `"name":{"state":...,"advert_interval_ms":N` (no closing brace).
    head: Vec<u8>,
    /// `"last_transition":...,"recent_transitions":[...]}` (no opening brace).
    tail: Vec<u8>,
}

/// [`InstanceStatus`]'s fields before `counters`, in its order.
#[derive(Serialize)]
struct Head<'a> {
    state: crate::vrrp::State,
    interface: &'a str,
    vrid: u8,
    version: u8,
    priority: u8,
    configured_priority: u8,
    maintenance: bool,
    transitions: u64,
    master: Option<std::net::IpAddr>,
    vips: &'a [String],
    advert_interval_ms: u32,
}

/// [`InstanceStatus`]'s fields after `counters`.
#[derive(Serialize)]
struct Tail<'a> {
    last_transition: &'a Option<crate::shared::Transition>,
    recent_transitions: &'a [crate::shared::Transition],
}

/// status.json after its instances (the keys in the order the `json!` document had).
#[derive(Serialize)]
struct Rest<'a> {
    node: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    overrides_error: Option<&'a str>,
    pid: u32,
    unknown_vrid_packets: u64,
}

/// The counters as `serde_json` writes them (`counters_as_serde_writes_them`), without
/// its escaping of every key: they are written for every instance every second, and
/// serde's counters were half of the status file's instructions (issue 19).
fn write_counters(c: &crate::vrrp::instance::Counters, buf: &mut Vec<u8>) -> serde_json::Result<()> {
    let mut digits = itoa::Buffer::new();
    let fields: [(&[u8], u64); 7] = [
        (b"{\"adverts_sent\":", c.adverts_sent),
        (b",\"adverts_received\":", c.adverts_received),
        (b",\"priority_zero_sent\":", c.priority_zero_sent),
        (b",\"priority_zero_received\":", c.priority_zero_received),
        (b",\"become_master\":", c.become_master),
        (b",\"release_master\":", c.release_master),
        (b",\"address_list_mismatch\":", c.address_list_mismatch),
    ];
    for (key, n) in fields {
        buf.extend_from_slice(key);
        // itoa, as serde_json writes integers, without core::fmt's machinery: 1,785
        // numbers a second at 255 instances were a fifth of the status file's cost.
        buf.extend_from_slice(digits.format(n).as_bytes());
    }
    buf.extend_from_slice(b",\"rejected\":");
    if c.rejected.is_empty() {
        buf.extend_from_slice(b"{}");
    } else {
        serde_json::to_writer(&mut *buf, &c.rejected)?;
    }
    buf.push(b'}');
    Ok(())
}

/// Everything but the counters is the same.
fn same_but_counters(a: &InstanceStatus, b: &InstanceStatus) -> bool {
    a.state == b.state
        && a.interface == b.interface
        && a.vrid == b.vrid
        && a.version == b.version
        && a.priority == b.priority
        && a.configured_priority == b.configured_priority
        && a.maintenance == b.maintenance
        && a.transitions == b.transitions
        && a.master == b.master
        && a.vips == b.vips
        && a.advert_interval_ms == b.advert_interval_ms
        && a.last_transition == b.last_transition
        && a.recent_transitions == b.recent_transitions
}

impl Cached {
    fn of(name: &str, s: &InstanceStatus) -> serde_json::Result<Cached> {
        let mut head = serde_json::to_vec(name)?;
        head.push(b':');
        serde_json::to_writer(
            &mut head,
            &Head {
                state: s.state,
                interface: &s.interface,
                vrid: s.vrid,
                version: s.version,
                priority: s.priority,
                configured_priority: s.configured_priority,
                maintenance: s.maintenance,
                transitions: s.transitions,
                master: s.master,
                vips: &s.vips,
                advert_interval_ms: s.advert_interval_ms,
            },
        )?;
        head.pop(); // '}'
        let mut tail = serde_json::to_vec(&Tail {
            last_transition: &s.last_transition,
            recent_transitions: &s.recent_transitions,
        })?;
        tail.remove(0); // '{'
        Ok(Cached {
            name: name.to_string(),
            status: s.clone(),
            head,
            tail,
        })
    }
}

impl StatusWriter {
    pub fn new(dir: PathBuf, node: String, overrides_error: Option<String>) -> StatusWriter {
        if let Err(error) = crate::durable::ensure_dir(&dir) {
            warn!(%error, "runtime directory not usable; no status file");
        }
        StatusWriter {
            dir,
            node,
            overrides_error,
            buf: Default::default(),
            cache: Default::default(),
        }
    }

    pub fn write(&self, snap: &EngineSnapshot) {
        // Serialized straight from the snapshot into a buffer kept between writes (no
        // serde_json::Value tree: it was 70 % of the instructions of a master of 100
        // instances), compact, each instance's text but its counters kept from the
        // last write (docs/benchmarks.md, "Steady-state cost").
        let mut buf = self.buf.borrow_mut();
        if let Err(error) = self.serialize(snap, &mut buf) {
            error!(%error, "status not serializable");
            return;
        }
        let path = super::status_path(&self.dir);
        // Owner-only (0600): the status names the node's instances and peers. Not
        // fsynced: rewritten every second and after state changes, in /run, on the
        // publisher's thread (durable::write_runtime).
        if let Err(error) = crate::durable::write_runtime(&path, &buf) {
            warn!(%error, "status file not written");
        }
    }

    fn serialize(&self, snap: &EngineSnapshot, buf: &mut Vec<u8>) -> serde_json::Result<()> {
        buf.clear();
        buf.extend_from_slice(b"{\"instances\":{");
        let mut cache = self.cache.borrow_mut();
        cache.truncate(snap.instances.len());
        for (i, (name, status)) in snap.instances.iter().enumerate() {
            let kept = cache
                .get(i)
                .is_some_and(|c| c.name == *name && same_but_counters(&c.status, status));
            if !kept {
                let made = Cached::of(name, status)?;
                match cache.get_mut(i) {
                    Some(c) => *c = made,
                    None => cache.push(made),
                }
            }
            if i > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(&cache[i].head);
            buf.extend_from_slice(b",\"counters\":");
            write_counters(&status.counters, buf)?;
            buf.push(b',');
            buf.extend_from_slice(&cache[i].tail);
        }
        buf.extend_from_slice(b"},");
        let at = buf.len();
        serde_json::to_writer(
            &mut *buf,
            &Rest {
                node: &self.node,
                overrides_error: self.overrides_error.as_deref(),
                pid: std::process::id(),
                unknown_vrid_packets: snap.unknown_vrid_packets,
            },
        )?;
        buf.remove(at); // Rest's '{': its keys continue the document.
        Ok(())
    }

    pub(super) fn summary(snap: &EngineSnapshot) -> String {
        let parts: Vec<String> = snap
            .instances
            .iter()
            .map(|(n, s)| format!("{n}:{}", s.state.as_str()))
            .collect();
        if parts.is_empty() {
            "no instances".into()
        } else {
            parts.join(" ")
        }
    }

    pub fn notify_ready(&self, snap: &EngineSnapshot) {
        let status = Self::summary(snap);
        let _ = sd_notify::notify(&[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status(&status),
        ]);
    }

    pub fn notify_status(&self, snap: &EngineSnapshot) {
        let status = Self::summary(snap);
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Status(&status)]);
    }
}

/// What follows the engine's snapshots off its thread.
pub struct Publisher {
    pub writer: StatusWriter,
    pub snapshots: watch::Receiver<Arc<EngineSnapshot>>,
    /// Run on the publisher's runtime beside it (the split-brain monitor): work per
    /// snapshot that grows with the configuration, kept off the engine's thread.
    pub beside: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
}

/// Starts the publisher on a thread of its own (issue 14, defect 7): serializing and
/// writing the status of 255 instances, systemd's STATUS= and the roles take time
/// that grows with the configuration, and on the engine's thread, once per change,
/// they delayed adverts (a start of 255 instances with 10,000 real servers flapped;
/// a stalled status write held every advert back: scripts/lab/test_status_stall.sh).
/// Coalesced: a snapshot published while the previous one is being written replaces
/// it, so the publisher writes the newest state and never falls behind. Ends when
/// the engine drops its sender; the handle is joined before the status file is
/// removed.
pub fn spawn_publisher(p: Publisher) -> Option<std::thread::JoinHandle<()>> {
    let spawned = std::thread::Builder::new()
        .name("hafront-status".into())
        .spawn(
            move || match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt.block_on(async move {
                    for task in p.beside {
                        tokio::spawn(task);
                    }
                    publish(p.writer, p.snapshots).await
                }),
                Err(error) => error!(%error, "no runtime: no status file, no split-brain monitor"),
            },
        );
    spawned
        .inspect_err(|error| error!(%error, "no thread: no status file, no split-brain monitor"))
        .ok()
}

async fn publish(writer: StatusWriter, mut snapshots: watch::Receiver<Arc<EngineSnapshot>>) {
    let mut last: Option<Arc<EngineSnapshot>> = None;
    while snapshots.changed().await.is_ok() {
        let snap = snapshots.borrow_and_update().clone();
        writer.write(&snap);
        // systemd's STATUS= names every instance and its state: sent again only
        // when one of those changed, not for every snapshot (counters).
        if last.as_deref().is_none_or(|l| !same_states(l, &snap)) {
            writer.notify_status(&snap);
        }
        last = Some(snap);
    }
}

/// The same instances in the same states (what STATUS= shows).
fn same_states(a: &EngineSnapshot, b: &EngineSnapshot) -> bool {
    a.instances.len() == b.instances.len()
        && a.instances
            .iter()
            .zip(&b.instances)
            .all(|((na, sa), (nb, sb))| na == nb && sa.state == sb.state)
}

/// The same instances in the same states, knowing their master or not (what
/// [`roles_of`] reads).
fn same_roles_inputs(a: &EngineSnapshot, b: &EngineSnapshot) -> bool {
    same_states(a, b)
        && a.instances
            .iter()
            .zip(&b.instances)
            .all(|((_, sa), (_, sb))| sa.master.is_some() == sb.master.is_some())
}

/// Which instances are master, and which have not settled yet (just started and no
/// master heard): what the IPVS reconciler follows.
pub(super) fn roles_of(snap: &EngineSnapshot) -> Roles {
    use crate::vrrp::instance::State;
    let mut roles = Roles::default();
    for (name, s) in &snap.instances {
        match s.state {
            State::Master => {
                roles.masters.insert(name.clone());
            }
            State::Initialize => {
                roles.unsettled.insert(name.clone());
            }
            State::Backup if s.master.is_none() => {
                roles.unsettled.insert(name.clone());
            }
            _ => {}
        }
    }
    roles
}

/// The roles (the IPVS reconciler's, the sync daemon's and the supervisor's view),
/// published by the engine's thread with each snapshot it makes, not by the status
/// publisher: that thread blocks in the status file's write, and a new master's VIPs
/// wait for the IPVS services the reconciler writes once it has the roles (issue 16:
/// a loaded director's roles reached the reconciler 4.7 s after its takeover, the
/// VIPs' 3 s wait ran out, and its own stack reset the synced connections;
/// scripts/lab/test_roles_stall.sh). Rebuilt only when the states (or whether a
/// backup has heard its master) changed, not for a snapshot where only counters moved.
pub struct RolesPublisher {
    tx: watch::Sender<Roles>,
    last: Option<Arc<EngineSnapshot>>,
}

impl RolesPublisher {
    pub fn new(tx: watch::Sender<Roles>) -> RolesPublisher {
        RolesPublisher { tx, last: None }
    }

    pub fn follow(&mut self, snap: &Arc<EngineSnapshot>) {
        if self.last.as_deref().is_some_and(|l| same_roles_inputs(l, snap)) {
            return;
        }
        let roles = roles_of(snap);
        self.tx.send_if_modified(|r| {
            let changed = *r != roles;
            *r = roles;
            changed
        });
        self.last = Some(snap.clone());
    }
}

/// When the engine publishes a snapshot: at once after a quiet spell, else at most
/// once per `gap` (a burst of transitions, 255 instances starting, is one snapshot
/// per `gap`, not one per transition). Sans-IO: the engine passes the time in.
#[derive(Debug)]
pub struct Coalescer {
    gap: Duration,
    last: Option<Instant>,
    due: Option<Instant>,
}

impl Coalescer {
    pub fn new(gap: Duration) -> Coalescer {
        Coalescer {
            gap,
            last: None,
            due: None,
        }
    }

    /// Something changed at `now`: true if a snapshot is to be published now (the
    /// caller then publishes it); else one is due at [`Coalescer::due`].
    pub fn changed(&mut self, now: Instant) -> bool {
        match self.last {
            Some(last) if now < last + self.gap => {
                self.due = Some(last + self.gap);
                false
            }
            _ => {
                self.last = Some(now);
                self.due = None;
                true
            }
        }
    }

    /// When the deferred snapshot is due, if one is.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// A snapshot was published anyway at `now` (the periodic one): nothing is due.
    pub fn published(&mut self, now: Instant) {
        self.last = Some(now);
        self.due = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// status.json, serialized without a serde_json::Value tree, is the document the
    /// `json!` version wrote: same keys, same values (what scripts and the CLI read).
    #[test]
    fn status_file_is_the_same_document() {
        use crate::vrrp::instance::State;
        let status = |state, master: Option<&str>| InstanceStatus {
            state,
            interface: "eth0".into(),
            vrid: 51,
            version: 3,
            priority: 150,
            configured_priority: 150,
            maintenance: false,
            transitions: 2,
            master: master.map(|m| m.parse().unwrap()),
            vips: vec!["192.0.2.100/24".into(), "2001:db8::100/64".into()].into(),
            advert_interval_ms: 100,
            counters: Default::default(),
            last_transition: Some(crate::shared::Transition {
                unix_ms: 1_700_000_000_000,
                from: State::Backup,
                to: State::Master,
                reason: "master_down",
            }),
            recent_transitions: Default::default(),
        };
        let snap = EngineSnapshot {
            instances: vec![
                ("a\"quoted".into(), status(State::Master, None)),
                ("web".into(), status(State::Backup, Some("192.0.2.2"))),
            ],
            unknown_vrid_packets: 7,
            failover_seconds: crate::histogram::Histogram::new(&crate::histogram::FAILOVER_BUCKETS),
        };
        let dir = std::env::temp_dir().join(format!("hafront-status-doc-{}", std::process::id()));
        for overrides_error in [None, Some("overrides.json: not JSON".to_string())] {
            let w = StatusWriter::new(dir.clone(), "node-a".into(), overrides_error.clone());
            // Twice: the buffer kept between writes starts empty each time.
            w.write(&snap);
            w.write(&snap);
            let text = std::fs::read_to_string(super::super::status_path(&dir)).unwrap();
            let got: serde_json::Value = serde_json::from_str(&text).unwrap();
            let instances: serde_json::Map<String, serde_json::Value> = snap
                .instances
                .iter()
                .map(|(n, s)| (n.clone(), serde_json::to_value(s).unwrap()))
                .collect();
            let mut want = serde_json::json!({
                "node": "node-a",
                "pid": std::process::id(),
                "instances": instances,
                "unknown_vrid_packets": 7,
            });
            if let Some(e) = &overrides_error {
                want["overrides_error"] = serde_json::json!(e);
            }
            pretty_assertions::assert_eq!(got, want);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The hand-written counters are serde's document, every field (a field added to
    /// `Counters` and not to `write_counters` fails here).
    #[test]
    fn counters_as_serde_writes_them() {
        let mut c = crate::vrrp::instance::Counters {
            adverts_sent: 1,
            adverts_received: 22,
            priority_zero_sent: 333,
            priority_zero_received: 4_444,
            become_master: 55_555,
            release_master: u64::MAX,
            address_list_mismatch: 7,
            rejected: Default::default(),
        };
        for rejected in [vec![], vec![("ttl", 3), ("auth\"x", 9)]] {
            c.rejected = rejected.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            let mut buf = Vec::new();
            write_counters(&c, &mut buf).unwrap();
            let got: serde_json::Value = serde_json::from_slice(&buf).unwrap();
            pretty_assertions::assert_eq!(got, serde_json::to_value(&c).unwrap());
        }
    }

    /// The cache follows the snapshot's order: instances reordered, renamed, added or
    /// gone (a reload) are written as they are now, never from another's text.
    #[test]
    fn a_moved_or_removed_instance_is_made_again() {
        use crate::vrrp::instance::State;
        let status = |vrid, state| InstanceStatus {
            state,
            interface: "eth0".into(),
            vrid,
            version: 3,
            priority: 100 + vrid,
            configured_priority: 100,
            maintenance: false,
            transitions: 1,
            master: None,
            vips: vec![format!("192.0.2.{vrid}/24")].into(),
            advert_interval_ms: 100,
            counters: Default::default(),
            last_transition: None,
            recent_transitions: Default::default(),
        };
        let snap = |list: &[(&str, u8)]| EngineSnapshot {
            instances: list
                .iter()
                .map(|(n, v)| (n.to_string(), status(*v, State::Backup)))
                .collect(),
            unknown_vrid_packets: 0,
            failover_seconds: crate::histogram::Histogram::new(&crate::histogram::FAILOVER_BUCKETS),
        };
        let dir = std::env::temp_dir().join(format!("hafront-status-cache-{}", std::process::id()));
        let w = StatusWriter::new(dir.clone(), "node-a".into(), None);
        for list in [
            &[("a", 1), ("b", 2), ("c", 3)][..],
            &[("c", 3), ("a", 1)],
            &[("a", 9), ("b", 2), ("c", 3), ("d", 4)],
            &[],
            &[("b", 2)],
        ] {
            let snap = snap(list);
            w.write(&snap);
            let text = std::fs::read_to_string(super::super::status_path(&dir)).unwrap();
            let got: serde_json::Value = serde_json::from_str(&text).unwrap();
            let want: serde_json::Map<String, serde_json::Value> = snap
                .instances
                .iter()
                .map(|(n, s)| (n.clone(), serde_json::to_value(s).unwrap()))
                .collect();
            pretty_assertions::assert_eq!(got["instances"], serde_json::Value::Object(want), "{list:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A burst of 255 changes within 1 ms (255 instances starting) is two snapshots:
    /// the first at once, the rest folded into one `gap` later.
    #[test]
    fn a_burst_is_two_snapshots() {
        let gap = Duration::from_millis(10);
        let mut c = Coalescer::new(gap);
        let t0 = Instant::now();
        let mut now_count = 0;
        for i in 0..255u64 {
            if c.changed(t0 + Duration::from_micros(4 * i)) {
                now_count += 1;
            }
        }
        assert_eq!(now_count, 1);
        assert_eq!(c.due(), Some(t0 + gap));
        // Due: the engine's loop calls changed() again when it fires.
        assert!(c.changed(t0 + gap));
        assert_eq!(c.due(), None);
    }

    /// Changes further apart than `gap` are each published at once.
    #[test]
    fn spaced_changes_are_not_delayed() {
        let gap = Duration::from_millis(10);
        let mut c = Coalescer::new(gap);
        let t0 = Instant::now();
        for i in 0..5u32 {
            assert!(c.changed(t0 + gap * 2 * i));
            assert_eq!(c.due(), None);
        }
    }

    /// However many changes, at most one snapshot per `gap`: the engine's work per
    /// change does not grow with the rate of changes.
    #[test]
    fn at_most_one_snapshot_per_gap() {
        let gap = Duration::from_millis(10);
        let mut c = Coalescer::new(gap);
        let t0 = Instant::now();
        let mut published = 0;
        // 100,000 changes over one second, 10 µs apart, the due deadline honoured.
        for i in 0..100_000u32 {
            let now = t0 + Duration::from_micros(10 * u64::from(i));
            if c.due().is_some_and(|d| d <= now) && c.changed(now) {
                published += 1;
            }
            if c.changed(now) {
                published += 1;
            }
        }
        assert!(published <= 101, "{published} snapshots in 1 s at a 10 ms gap");
        assert!(published >= 99, "{published}");
    }

    /// The periodic snapshot counts: a change right after it waits for the gap.
    #[test]
    fn periodic_publish_resets_the_gap() {
        let gap = Duration::from_millis(10);
        let mut c = Coalescer::new(gap);
        let t0 = Instant::now();
        c.published(t0);
        assert!(!c.changed(t0 + Duration::from_millis(1)));
        assert_eq!(c.due(), Some(t0 + gap));
        c.published(t0 + Duration::from_millis(5));
        assert_eq!(c.due(), None);
    }
}
