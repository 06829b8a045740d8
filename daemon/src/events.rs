//! The event stream behind `GET /v1/events` (issue 18 §3): what changed, when and
//! why, so tools can follow a node without polling.
//!
//! Producers (the engine, the tracker, the IPVS reconciler, the split-brain
//! monitor, the reload path) call [`publish`] with a closure that builds the
//! event. With no client connected that is one atomic load; with clients, the
//! event is numbered and put in a bounded ring ([`tokio::sync::broadcast`],
//! [`RING`] events) under a lock held for the push only: a producer never waits
//! for a client. Each client reads the ring at its own pace (the API thread
//! encodes); one that falls more than the ring behind is dropped
//! (`api::events`), which is all the memory a client can hold.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::broadcast;

/// Events kept for clients that are behind; a power of two (the ring's own size).
pub const RING: usize = 1024;

/// What happened. Serialized with its kind as `type`; each carries a `reason`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Kind {
    /// A VRRP instance changed state.
    State {
        instance: String,
        vrid: u8,
        from: &'static str,
        to: &'static str,
        priority: u8,
        reason: String,
    },
    /// An instance's tracking result changed: effective priority or fault.
    Tracking {
        instance: String,
        priority: u8,
        fault: bool,
        reason: String,
    },
    /// A tracked interface or file changed.
    Tracked {
        kind: &'static str,
        name: String,
        up: bool,
        reason: String,
    },
    /// A health check's (or tracking script's) verdict changed.
    Check {
        check: String,
        /// `check` or `script`.
        kind: &'static str,
        up: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        dynamic_weight: Option<i32>,
        reason: String,
    },
    /// A real server (or virtual service) written to the kernel's IPVS table.
    RealServer {
        service: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        address: Option<String>,
        /// added, removed, edited (service_added, ... for a virtual service).
        action: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        weight: Option<u32>,
        ok: bool,
        reason: String,
    },
    /// A supervised service went up, down or into FAULT.
    Service {
        service: String,
        up: bool,
        failed: bool,
        reason: String,
    },
    /// A split brain raised (`active`) or cleared.
    SplitBrain {
        instance: String,
        active: bool,
        reason: String,
    },
    /// A configuration reload was applied or rejected.
    Reload {
        by: &'static str,
        successful: bool,
        reason: String,
    },
}

impl Kind {
    /// The SSE `event:` name (the same as `type`).
    pub fn name(&self) -> &'static str {
        match self {
            Kind::State { .. } => "state",
            Kind::Tracking { .. } => "tracking",
            Kind::Tracked { .. } => "tracked",
            Kind::Check { .. } => "check",
            Kind::RealServer { .. } => "real_server",
            Kind::Service { .. } => "service",
            Kind::SplitBrain { .. } => "split_brain",
            Kind::Reload { .. } => "reload",
        }
    }
}

/// One event as clients get it.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    /// Consecutive from 1 for the daemon's life: a client sees a gap.
    pub id: u64,
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    pub unix_ms: u64,
    #[serde(flatten)]
    pub kind: Kind,
}

impl Event {
    pub fn new(id: u64, at: SystemTime, kind: Kind) -> Event {
        Event {
            id,
            time: humantime::format_rfc3339_millis(at).to_string(),
            unix_ms: at
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            kind,
        }
    }
}

/// The ring and its numbering.
pub struct Bus {
    /// The last id given and the ring, under one lock so ids enter the ring in order.
    ring: Mutex<(u64, broadcast::Sender<Arc<Event>>)>,
    /// Receivers open (the stream's clients): 0 means nothing is built or sent.
    listeners: AtomicUsize,
    /// Clients dropped for falling behind.
    pub dropped: AtomicU64,
    /// Clients connected now (the API's stream bodies).
    pub clients: AtomicUsize,
}

impl Bus {
    pub fn new(capacity: usize) -> Bus {
        let (tx, _) = broadcast::channel(capacity);
        Bus {
            ring: Mutex::new((0, tx)),
            listeners: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            clients: AtomicUsize::new(0),
        }
    }

    /// Numbers and queues the event `build` makes, if anyone listens. Never waits
    /// for a reader: the ring overwrites its oldest event.
    pub fn publish(&self, build: impl FnOnce() -> Kind) {
        if self.listeners.load(Ordering::Relaxed) == 0 {
            return;
        }
        let kind = build();
        let at = SystemTime::now();
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        if ring.1.receiver_count() == 0 {
            return;
        }
        ring.0 += 1;
        let ev = Arc::new(Event::new(ring.0, at, kind));
        let _ = ring.1.send(ev);
    }

    /// A new reader of the ring from the next event on, and the id of the last one
    /// before it.
    pub fn subscribe(&self) -> Listener<'_> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        self.listeners.fetch_add(1, Ordering::Relaxed);
        Listener {
            bus: self,
            rx: ring.1.subscribe(),
            last_id: ring.0,
        }
    }

    /// The id of the last event queued.
    pub fn last_id(&self) -> u64 {
        self.ring.lock().unwrap_or_else(|p| p.into_inner()).0
    }
}

/// A reader of the ring; counted as a listener until dropped.
pub struct Listener<'a> {
    bus: &'a Bus,
    pub rx: broadcast::Receiver<Arc<Event>>,
    pub last_id: u64,
}

impl Drop for Listener<'_> {
    fn drop(&mut self) {
        self.bus.listeners.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The daemon's bus: one per process, as the log.
pub static BUS: LazyLock<Bus> = LazyLock::new(|| Bus::new(RING));

/// Publishes on the daemon's bus (see [`Bus::publish`]).
pub fn publish(build: impl FnOnce() -> Kind) {
    BUS.publish(build)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(to: &'static str) -> Kind {
        Kind::State {
            instance: "web".into(),
            vrid: 51,
            from: "BACKUP",
            to,
            priority: 100,
            reason: "master-down timer expired".into(),
        }
    }

    #[test]
    fn nothing_is_built_without_a_listener_and_ids_are_consecutive() {
        let bus = Bus::new(8);
        bus.publish(|| panic!("built with nobody listening"));
        let mut l = bus.subscribe();
        assert_eq!(l.last_id, 0);
        bus.publish(|| state("MASTER"));
        bus.publish(|| state("BACKUP"));
        let a = l.rx.try_recv().unwrap();
        let b = l.rx.try_recv().unwrap();
        assert_eq!((a.id, b.id), (1, 2));
        assert_eq!(bus.last_id(), 2);
        drop(l);
        bus.publish(|| panic!("built after the last listener left"));
    }

    #[test]
    fn a_reader_behind_by_more_than_the_ring_lags_and_the_producer_never_waits() {
        let bus = Bus::new(4);
        let mut l = bus.subscribe();
        for _ in 0..10 {
            bus.publish(|| state("MASTER"));
        }
        match l.rx.try_recv() {
            Err(broadcast::error::TryRecvError::Lagged(n)) => assert_eq!(n, 6),
            other => panic!("expected a lag, got {other:?}"),
        }
    }

    #[test]
    fn json_carries_type_time_and_reason() {
        let at = UNIX_EPOCH + std::time::Duration::from_millis(1_796_000_000_123);
        let ev = Event::new(7, at, state("MASTER"));
        let v: serde_json::Value = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["type"], "state");
        assert_eq!(v["to"], "MASTER");
        assert_eq!(v["reason"], "master-down timer expired");
        assert_eq!(v["unix_ms"], 1_796_000_000_123u64);
        assert_eq!(v["time"], "2026-11-30T00:53:20.123Z");
        assert_eq!(ev.kind.name(), "state");
        let rs = Kind::RealServer {
            service: "web".into(),
            address: Some("192.0.2.11:80".into()),
            action: "removed",
            weight: None,
            ok: true,
            reason: "delete real server".into(),
        };
        let v = serde_json::to_value(Event::new(1, at, rs)).unwrap();
        assert_eq!(v["type"], "real_server");
        assert!(v.get("weight").is_none());
    }
}
