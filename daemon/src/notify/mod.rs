//! Notifications of state changes: the instance's scripts (keepalived's
//! notify_master/backup/fault/stop and generic notify), webhooks and e-mail.
//!
//! The engine hands events to an unbounded channel and never waits. Each instance
//! has its own queue, worked by one task that runs its notifiers one at a time, in
//! the order of the events, each within `notify.timeout` (keepalived runs them
//! concurrently and out of order). A failing notifier is logged, and the next one
//! runs.
//!
//! A queue holds at most [`QUEUE_MAX`] waiting events: a flapping peer makes more
//! transitions than slow scripts can follow, and notify_master must not run long
//! after the node stopped being master. When it is full, the oldest waiting event
//! is dropped (counted, logged with a throttle): the order is kept and the newest
//! event, the instance's current state, is always delivered.

pub mod smtp;
pub mod webhook;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, watch, Notify};
use tracing::{info, warn};

use crate::config::Config;
use crate::process::{command, Child, GroupGuard};
use crate::shared::throttle::Throttle;
use crate::vrrp::State;

/// A state change of an instance.
#[derive(Clone, Debug, Serialize)]
pub struct StateEvent {
    pub instance: String,
    pub vrid: u8,
    pub from: State,
    pub to: State,
    pub priority: u8,
    pub reason: &'static str,
    pub vips: Vec<String>,
    pub unix_ms: u128,
}

/// What the notifiers are told.
#[derive(Clone, Debug)]
pub enum Event {
    State(StateEvent),
    /// Split brain raised (`active`) or cleared on an instance.
    SplitBrain {
        instance: String,
        active: bool,
        detail: String,
        unix_ms: u128,
    },
    /// An anycast group's prefixes announced or withdrawn (webhooks and e-mail).
    Anycast {
        group: String,
        announced: bool,
        why: String,
        prefixes: Vec<String>,
        unix_ms: u128,
    },
}

impl Event {
    fn instance(&self) -> &str {
        match self {
            Event::State(s) => &s.instance,
            Event::SplitBrain { instance, .. } => instance,
            Event::Anycast { group, .. } => group,
        }
    }

    /// For logs: `BACKUP -> MASTER`, `split brain raised`.
    fn describe(&self) -> String {
        match self {
            Event::State(s) => format!("{} -> {}", keepalived_state(s.from), keepalived_state(s.to)),
            Event::SplitBrain { active, .. } => {
                format!("split brain {}", if *active { "raised" } else { "cleared" })
            }
            Event::Anycast { announced, .. } => announced_word(*announced).to_lowercase(),
        }
    }
}

/// An anycast group's state word.
fn announced_word(announced: bool) -> &'static str {
    if announced {
        "ANNOUNCED"
    } else {
        "WITHDRAWN"
    }
}

/// keepalived's state words (`STOP` for an instance leaving at shutdown).
pub fn keepalived_state(s: State) -> &'static str {
    match s {
        State::Master => "MASTER",
        State::Backup => "BACKUP",
        State::Fault => "FAULT",
        State::Initialize => "STOP",
    }
}

/// Events waiting in one instance's queue at most (the one being notified not
/// counted); beyond, the oldest waiting one is dropped.
pub const QUEUE_MAX: usize = 4;

/// Where events go: never blocks, and counts what is still to be notified so that
/// shutdown can wait for the STOP notifications.
#[derive(Clone)]
pub struct Sender {
    tx: mpsc::UnboundedSender<Event>,
    pending: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
}

impl Sender {
    pub fn send(&self, ev: Event) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        if self.tx.send(ev).is_err() {
            self.pending.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Waits until every event sent so far was notified, at most `within`.
    pub async fn drain(&self, within: Duration) {
        let until = tokio::time::Instant::now() + within;
        while self.pending.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Events dropped from full queues since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Starts the notifier.
pub fn spawn(config: watch::Receiver<Arc<Config>>) -> Sender {
    let (tx, rx) = mpsc::unbounded_channel();
    let pending = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    tokio::spawn(dispatch(rx, config, pending.clone(), dropped.clone()));
    Sender { tx, pending, dropped }
}

/// One instance's waiting events.
#[derive(Default)]
struct Queue {
    waiting: Mutex<VecDeque<Event>>,
    wake: Notify,
}

impl Queue {
    /// Appends `ev`; returns the event dropped to make room, if one was.
    fn push(&self, ev: Event) -> Option<Event> {
        let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let dropped = if w.len() >= QUEUE_MAX { w.pop_front() } else { None };
        w.push_back(ev);
        drop(w);
        self.wake.notify_one();
        dropped
    }

    async fn pop(&self) -> Event {
        loop {
            if let Some(ev) = self.waiting.lock().unwrap_or_else(|p| p.into_inner()).pop_front() {
                return ev;
            }
            // A permit stored by `notify_one` wakes this even if it came first.
            self.wake.notified().await;
        }
    }
}

async fn dispatch(
    mut rx: mpsc::UnboundedReceiver<Event>,
    config: watch::Receiver<Arc<Config>>,
    pending: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
) {
    let mut queues: BTreeMap<String, (Arc<Queue>, Throttle)> = BTreeMap::new();
    while let Some(ev) = rx.recv().await {
        let name = ev.instance().to_string();
        let (q, throttle) = queues.entry(name.clone()).or_insert_with(|| {
            let q = Arc::new(Queue::default());
            tokio::spawn(work(q.clone(), config.clone(), pending.clone()));
            (q, Throttle::new(Duration::from_secs(60)))
        });
        if let Some(old) = q.push(ev) {
            pending.fetch_sub(1, Ordering::SeqCst);
            let total = dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(unlogged) = throttle.hit(std::time::Instant::now()) {
                warn!(
                    instance = name,
                    event = old.describe(),
                    not_logged = unlogged,
                    dropped_total = total,
                    "notification queue full: oldest waiting notification dropped"
                );
            }
        }
    }
}

/// One instance's queue: every notifier of an event, then the next event.
async fn work(q: Arc<Queue>, config: watch::Receiver<Arc<Config>>, pending: Arc<AtomicUsize>) {
    loop {
        let ev = q.pop().await;
        let cfg = config.borrow().clone();
        let limit = cfg.notify.timeout;
        for n in notifiers(&cfg, &ev) {
            let what = n.describe();
            let instance = ev.instance().to_string();
            match tokio::time::timeout(limit, n.run(&cfg, &ev)).await {
                Ok(Ok(())) => info!(instance, notifier = what, "notified"),
                Ok(Err(error)) => warn!(instance, notifier = what, error, "notifier failed"),
                Err(_) => warn!(instance, notifier = what, timeout = ?limit, "notifier timed out"),
            }
        }
        pending.fetch_sub(1, Ordering::SeqCst);
    }
}

enum Notifier {
    Script(Vec<String>, Vec<String>),
    Webhook(usize),
    Mail,
}

impl Notifier {
    fn describe(&self) -> String {
        match self {
            Notifier::Script(argv, _) => format!("script {}", argv[0]),
            Notifier::Webhook(i) => format!("webhook {i}"),
            Notifier::Mail => "smtp".into(),
        }
    }

    async fn run(&self, cfg: &Config, ev: &Event) -> Result<(), String> {
        match self {
            Notifier::Script(argv, extra) => run_script(argv, extra, &env(cfg, ev)).await,
            Notifier::Webhook(i) => webhook::post(&cfg.notify.webhooks[*i], &json(cfg, ev))
                .await
                .map(|_| ()),
            Notifier::Mail => {
                let Some(smtp) = &cfg.notify.smtp else {
                    return Ok(());
                };
                let (subject, body) = mail_text(cfg, ev);
                let mail = smtp::Mail {
                    subject: &subject,
                    body: &body,
                    helo: &cfg.node.name,
                };
                smtp::send(smtp, &mail).await
            }
        }
    }
}

/// In order: the state's script, the generic script, webhooks, e-mail.
fn notifiers(cfg: &Config, ev: &Event) -> Vec<Notifier> {
    let mut out = Vec::new();
    if let Event::State(s) = ev {
        if let Some(inst) = cfg.vrrp.instances.get(&s.instance) {
            let own = match s.to {
                State::Master => &inst.notify_master,
                State::Backup => &inst.notify_backup,
                State::Fault => &inst.notify_fault,
                State::Initialize => &inst.notify_stop,
            };
            if !own.is_empty() {
                out.push(Notifier::Script(own.clone(), Vec::new()));
            }
            if !inst.notify.is_empty() {
                let extra = vec![
                    "INSTANCE".to_string(),
                    s.instance.clone(),
                    keepalived_state(s.to).to_string(),
                    s.priority.to_string(),
                ];
                out.push(Notifier::Script(inst.notify.clone(), extra));
            }
        }
    }
    out.extend((0..cfg.notify.webhooks.len()).map(Notifier::Webhook));
    if cfg.notify.smtp.is_some() {
        out.push(Notifier::Mail);
    }
    out
}

/// Environment of notify scripts (not `HAFRONT_*`, which hafront reads as its
/// configuration should a script call it).
fn env(cfg: &Config, ev: &Event) -> Vec<(&'static str, String)> {
    let mut v = vec![("NOTIFY_NODE", cfg.node.name.clone())];
    match ev {
        Event::State(s) => v.extend([
            ("NOTIFY_TYPE", "INSTANCE".to_string()),
            ("NOTIFY_INSTANCE", s.instance.clone()),
            ("NOTIFY_STATE", keepalived_state(s.to).to_string()),
            ("NOTIFY_FROM", keepalived_state(s.from).to_string()),
            ("NOTIFY_PRIORITY", s.priority.to_string()),
            ("NOTIFY_VRID", s.vrid.to_string()),
            ("NOTIFY_VIPS", s.vips.join(" ")),
            ("NOTIFY_REASON", s.reason.to_string()),
        ]),
        Event::SplitBrain { instance, active, .. } => v.extend([
            ("NOTIFY_TYPE", "SPLIT_BRAIN".to_string()),
            ("NOTIFY_INSTANCE", instance.clone()),
            (
                "NOTIFY_STATE",
                if *active { "RAISED" } else { "CLEARED" }.to_string(),
            ),
        ]),
        Event::Anycast {
            group,
            announced,
            why,
            prefixes,
            ..
        } => v.extend([
            ("NOTIFY_TYPE", "ANYCAST".to_string()),
            ("NOTIFY_INSTANCE", group.clone()),
            ("NOTIFY_STATE", announced_word(*announced).to_string()),
            ("NOTIFY_REASON", why.clone()),
            ("NOTIFY_VIPS", prefixes.join(" ")),
        ]),
    }
    v
}

fn json(cfg: &Config, ev: &Event) -> serde_json::Value {
    match ev {
        Event::State(s) => serde_json::json!({
            "event": "state_change",
            "node": cfg.node.name,
            "instance": s.instance,
            "vrid": s.vrid,
            "from": s.from.as_str(),
            "state": s.to.as_str(),
            "priority": s.priority,
            "reason": s.reason,
            "vips": s.vips,
            "time_unix_ms": s.unix_ms as u64,
        }),
        Event::SplitBrain {
            instance,
            active,
            detail,
            unix_ms,
        } => serde_json::json!({
            "event": "split_brain",
            "node": cfg.node.name,
            "instance": instance,
            "active": active,
            "detail": detail,
            "time_unix_ms": *unix_ms as u64,
        }),
        Event::Anycast {
            group,
            announced,
            why,
            prefixes,
            unix_ms,
        } => serde_json::json!({
            "event": "anycast",
            "node": cfg.node.name,
            "anycast": group,
            "announced": announced,
            "why": why,
            "prefixes": prefixes,
            "time_unix_ms": *unix_ms as u64,
        }),
    }
}

fn mail_text(cfg: &Config, ev: &Event) -> (String, String) {
    let node = &cfg.node.name;
    match ev {
        Event::State(s) => (
            format!("[hafront] {node}: {} is now {}", s.instance, keepalived_state(s.to)),
            format!(
                "Node: {node}\nInstance: {}\nVRID: {}\nState: {} (was {})\nPriority: {}\nReason: {}\nVIPs: {}\n",
                s.instance,
                s.vrid,
                keepalived_state(s.to),
                keepalived_state(s.from),
                s.priority,
                s.reason,
                s.vips.join(", ")
            ),
        ),
        Event::SplitBrain { instance, active, detail, .. } => (
            format!(
                "[hafront] {node}: split brain {} on {instance}",
                if *active { "detected" } else { "cleared" }
            ),
            format!("Node: {node}\nInstance: {instance}\nSplit brain: {}\n{detail}\n", if *active { "DETECTED" } else { "cleared" }),
        ),
        Event::Anycast { group, announced, why, prefixes, .. } => (
            format!("[hafront] {node}: anycast {group} {}", announced_word(*announced)),
            format!(
                "Node: {node}\nAnycast: {group}\nState: {}\nWhy: {why}\nPrefixes: {}\n",
                announced_word(*announced),
                prefixes.join(", ")
            ),
        ),
    }
}

/// Runs a script to its end (the caller's timeout drops this future, which kills
/// the script's process group).
async fn run_script(argv: &[String], extra: &[String], env: &[(&'static str, String)]) -> Result<(), String> {
    let mut child = command(&argv[0], Child::Script)
        .args(&argv[1..])
        .args(extra)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
    let guard = GroupGuard::new(child.id());
    let status = child.wait().await.map_err(|e| e.to_string())?;
    guard.disarm();
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} {status}", argv[0]))
    }
}

/// How long the notifier is given at shutdown to send the STOP notifications.
pub const DRAIN: Duration = Duration::from_secs(5);

/// Real local TCP servers that misbehave, for the notifiers' tests.
#[cfg(test)]
pub(crate) mod test_server {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    pub enum Serve {
        /// Sends the head, then the chunk again and again until the peer leaves.
        Endless(&'static [u8], &'static [u8]),
        /// Reads and never answers.
        Silent,
    }

    /// Serves one connection on 127.0.0.1 from a thread; returns `host:port`.
    pub fn serve(how: Serve) -> String {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = l.local_addr().expect("local address").to_string();
        std::thread::spawn(move || {
            let Ok((mut c, _)) = l.accept() else { return };
            match how {
                Serve::Endless(head, chunk) => {
                    let chunk = chunk.repeat(4096 / chunk.len().max(1) + 1);
                    if c.write_all(head).is_ok() {
                        while c.write_all(&chunk).is_ok() {}
                    }
                }
                Serve::Silent => {
                    let mut buf = [0u8; 4096];
                    while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
                }
            }
        });
        addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(from: State, to: State) -> Event {
        Event::State(StateEvent {
            instance: "web".into(),
            vrid: 51,
            from,
            to,
            priority: 100,
            reason: "test",
            vips: vec!["192.0.2.100".into()],
            unix_ms: 0,
        })
    }

    /// A peer flaps 40 times while the instance's script takes 100 ms: the backlog
    /// stays bounded (the running one plus QUEUE_MAX), the rest is dropped and
    /// counted, and the last notification delivered is the current state. Before
    /// the queue was bounded, all 40 ran, one after the other.
    #[tokio::test]
    async fn flapping_backlog_is_bounded_and_ends_with_the_current_state() {
        let dir = std::env::temp_dir().join(format!("hafront-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("states");
        let _ = std::fs::remove_file(&log);
        let text = format!(
            "[node]\nname = \"node-a\"\n[vrrp.instances.web]\ninterface = \"eth0\"\nvrid = 51\n\
             virtual_ips = [\"192.0.2.100/24\"]\n\
             notify = [\"/bin/sh\", \"-c\", \"sleep 0.1; echo $NOTIFY_STATE >> {}\"]\n",
            log.display()
        );
        let cfg: Config = toml::from_str(&text).unwrap();
        let (_keep, rx) = watch::channel(Arc::new(cfg));
        let tx = spawn(rx);
        let sent = 40;
        for i in 0..sent {
            let (from, to) = if i % 2 == 0 {
                (State::Backup, State::Master)
            } else {
                (State::Master, State::Backup)
            };
            tx.send(event(from, to));
        }
        tx.send(event(State::Backup, State::Master)); // where the flapping ends
        tx.drain(Duration::from_secs(30)).await;
        let states = std::fs::read_to_string(&log).unwrap();
        let states: Vec<&str> = states.lines().collect();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            states.len() <= 1 + QUEUE_MAX,
            "{} notifications ran: {states:?}",
            states.len()
        );
        assert_eq!(states.last(), Some(&"MASTER"), "{states:?}");
        assert_eq!(tx.dropped() as usize, sent + 1 - states.len());
    }
}
