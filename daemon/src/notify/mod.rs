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
        // Nothing to run for it: no queue, no task (a task and a queue per
        // instance that changed state, ~5 KiB each, were most of the heap of a
        // node with 255 instances and no notifier).
        if !has_notifiers(&config.borrow(), &ev) {
            pending.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
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
            // Boxed: the notifiers' futures (a TLS webhook, SMTP) are kilobytes,
            // and the task waiting for its next event should not carry them.
            match tokio::time::timeout(limit, Box::pin(n.run(&cfg, &ev))).await {
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
/// Whether `notifiers` would find any for `ev`, without building them.
fn has_notifiers(cfg: &Config, ev: &Event) -> bool {
    if !cfg.notify.webhooks.is_empty() || cfg.notify.smtp.is_some() {
        return true;
    }
    let Event::State(s) = ev else { return false };
    cfg.vrrp.instances.get(&s.instance).is_some_and(|inst| {
        let own = match s.to {
            State::Master => &inst.notify_master,
            State::Backup => &inst.notify_backup,
            State::Fault => &inst.notify_fault,
            State::Initialize => &inst.notify_stop,
        };
        !own.is_empty() || !inst.notify.is_empty()
    })
}

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
        /// Reads an HTTP request (head and Content-Length body), then as `Endless`.
        /// (An answer written before the request is read races the client: hyper
        /// that reads it before it has sent its request drops the connection.)
        EndlessAfterRequest(&'static [u8], &'static [u8]),
        /// Reads and never answers.
        Silent,
    }

    /// Serves one connection on 127.0.0.1 from a thread; returns `host:port`.
    pub fn serve(how: Serve) -> String {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = l.local_addr().expect("local address").to_string();
        std::thread::spawn(move || {
            let Ok((mut c, _)) = l.accept() else { return };
            let endless = |c: &mut std::net::TcpStream, head: &[u8], chunk: &[u8]| {
                let chunk = chunk.repeat(4096 / chunk.len().max(1) + 1);
                if c.write_all(head).is_ok() {
                    while c.write_all(&chunk).is_ok() {}
                }
            };
            match how {
                Serve::Endless(head, chunk) => endless(&mut c, head, chunk),
                Serve::EndlessAfterRequest(head, chunk) => {
                    if read_http_request(&mut c).is_some() {
                        endless(&mut c, head, chunk);
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

    /// Reads one HTTP request: its head, then as many body bytes as its
    /// Content-Length says. `None` if the peer left first or sent over 64 KiB.
    fn read_http_request(c: &mut std::net::TcpStream) -> Option<()> {
        let mut buf = Vec::new();
        let mut b = [0u8; 4096];
        let mut read = |buf: &mut Vec<u8>| -> Option<()> {
            let n = c.read(&mut b).ok().filter(|n| *n > 0)?;
            buf.extend_from_slice(&b[..n]);
            (buf.len() <= 65536).then_some(())
        };
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            read(&mut buf)?;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < end + len {
            read(&mut buf)?;
        }
        Some(())
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

    fn event_of(instance: &str, to: State) -> Event {
        let mut ev = event(State::Backup, to);
        if let Event::State(s) = &mut ev {
            s.instance = instance.into();
        }
        ev
    }

    /// 255 instances change state on a node without any notifier configured: no
    /// queue and no task per instance is made for them (before, each got a task
    /// of ~5 KiB and a queue, kept for the daemon's life: 1.3 MiB of heap).
    #[tokio::test]
    async fn events_without_notifiers_make_no_task() {
        let mut text = String::from("[node]\nname = \"node-a\"\n");
        for i in 0..255 {
            text.push_str(&format!(
                "[vrrp.instances.i{i}]\ninterface = \"eth0\"\nvrid = {}\nvirtual_ips = [\"192.0.2.{}/24\"]\n",
                i + 1,
                i + 1
            ));
        }
        let cfg: Config = toml::from_str(&text).unwrap();
        let (_keep, rx) = watch::channel(Arc::new(cfg));
        let tasks = || tokio::runtime::Handle::current().metrics().num_alive_tasks();
        let before = tasks();
        let tx = spawn(rx);
        for i in 0..255 {
            tx.send(event_of(&format!("i{i}"), State::Master));
        }
        tx.drain(Duration::from_secs(5)).await;
        assert_eq!(tx.pending.load(Ordering::SeqCst), 0);
        assert_eq!(tasks() - before, 1, "only the dispatcher runs");
    }

    /// `has_notifiers` says what `notifiers` finds, for every kind of notifier.
    #[test]
    fn has_notifiers_agrees_with_notifiers() {
        let base = "[node]\nname = \"node-a\"\n[vrrp.instances.web]\ninterface = \"eth0\"\n\
                    vrid = 51\nvirtual_ips = [\"192.0.2.100/24\"]\n";
        let extras = [
            "",
            "notify_master = [\"/bin/true\"]\n",
            "notify_backup = [\"/bin/true\"]\n",
            "notify_fault = [\"/bin/true\"]\n",
            "notify_stop = [\"/bin/true\"]\n",
            "notify = [\"/bin/true\"]\n",
            "[notify]\nwebhooks = [{ url = \"http://192.0.2.9/\" }]\n",
        ];
        for extra in extras {
            let cfg: Config =
                toml::from_str(&format!("{base}{extra}")).unwrap_or_else(|e| panic!("{extra}: {e}"));
            for to in [State::Master, State::Backup, State::Fault, State::Initialize] {
                for ev in [event_of("web", to), event_of("other", to)] {
                    assert_eq!(
                        has_notifiers(&cfg, &ev),
                        !notifiers(&cfg, &ev).is_empty(),
                        "{extra:?} {ev:?}"
                    );
                }
            }
            let ev = Event::SplitBrain {
                instance: "web".into(),
                active: true,
                detail: String::new(),
                unix_ms: 0,
            };
            assert_eq!(
                has_notifiers(&cfg, &ev),
                !notifiers(&cfg, &ev).is_empty(),
                "{extra:?}"
            );
        }
    }

    /// The task of an instance with notifiers waits for its next event without
    /// carrying the notifiers' futures (boxed while they run): ~4.8 KiB before.
    #[test]
    fn a_waiting_queue_task_is_small() {
        let cfg: Config = toml::from_str("[node]\nname = \"node-a\"\n").unwrap();
        let (_keep, rx) = watch::channel(Arc::new(cfg));
        let fut = work(Arc::new(Queue::default()), rx, Arc::new(AtomicUsize::new(0)));
        assert!(
            std::mem::size_of_val(&fut) <= 512,
            "{} bytes",
            std::mem::size_of_val(&fut)
        );
    }
}
