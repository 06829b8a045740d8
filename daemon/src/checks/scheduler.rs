//! Runs the checks: one small task per check on the current tokio runtime (works on
//! a current-thread runtime), a random warm-up before its first probe, then one
//! probe per `interval`. A semaphore bounds how many probes run at once; every
//! probe runs under its timeout, so a hung target only ever holds its own check.
//!
//! Verdict changes (rise/fall, see `state`) are sent on an unbounded channel: sending
//! never waits, so a slow consumer delays no check, and a change is never lost to a
//! task being replaced mid-send. `status()` is a snapshot of every check.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Serialize, Serializer};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::AbortHandle;
use tokio::time::{sleep, sleep_until, Instant};

use super::probe::{self, ProbeError, ProbeOk};
use super::spec::{CheckSpec, ProbeSpec};
use super::state::{CheckState, Verdict};
use crate::config::checks::{CheckConfig, CheckKind};
use crate::histogram::{Histogram, LATENCY_BUCKETS};

/// A verdict change of one check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckEvent {
    pub name: String,
    pub up: bool,
    /// exec with `dynamic_weight`: the weight its last exit code gave (`None`: the
    /// configured weight). Also sent, with `up = true`, when only the weight changes.
    pub dynamic_weight: Option<i32>,
    /// Why: the failure that made it go down, or what made it go up.
    pub reason: String,
}

/// One check in [`CheckerHandle::status`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckStatus {
    pub kind: CheckKind,
    /// `null` until the first verdict (`rise` successes or `fall` failures).
    pub up: Option<bool>,
    pub dynamic_weight: Option<i32>,
    /// Latency of the last successful probe.
    #[serde(rename = "last_latency_ms", serialize_with = "opt_ms")]
    pub last_latency: Option<Duration>,
    /// Error of the last probe, if it failed.
    pub last_error: Option<String>,
    pub consecutive_ok: u32,
    pub consecutive_fail: u32,
    pub checks_total: u64,
}

fn opt_ms<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3),
        None => s.serialize_none(),
    }
}

/// Called on the checks' thread the moment a check's verdict changes, before the
/// change is logged or sent as a [`CheckEvent`]: (check, up, dynamic weight).
pub type VerdictHook = Arc<dyn Fn(&str, bool, Option<i32>) + Send + Sync>;

#[derive(Clone)]
pub struct CheckerOptions {
    /// Probes running at once (exec included). At least 1.
    pub max_concurrent: usize,
    /// For the one consumer that cannot wait for the event channel (IPVS: a real
    /// server follows its check's verdict straight from here, without the tracker's
    /// turn and the log lines in between).
    pub on_verdict: Option<VerdictHook>,
}

impl Default for CheckerOptions {
    fn default() -> Self {
        CheckerOptions {
            max_concurrent: 256,
            on_verdict: None,
        }
    }
}

impl fmt::Debug for CheckerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckerOptions")
            .field("max_concurrent", &self.max_concurrent)
            .field("on_verdict", &self.on_verdict.is_some())
            .finish()
    }
}

/// A check that cannot be built (the configuration changed on disk since it was
/// validated: a CA file removed, an executable gone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildError {
    pub check: String,
    pub key: &'static str,
    pub message: String,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "checks.{}: {}", self.check, self.message)
        } else {
            write!(f, "checks.{}.{}: {}", self.check, self.key, self.message)
        }
    }
}

impl std::error::Error for BuildError {}

/// Builds every check's spec, or returns every problem.
pub fn build_all(configs: &BTreeMap<String, CheckConfig>) -> Result<Vec<CheckSpec>, Vec<BuildError>> {
    let mut specs = Vec::new();
    let mut errors = Vec::new();
    for (name, c) in configs {
        match CheckSpec::build(name, c) {
            Ok(s) => specs.push(s),
            Err(errs) => errors.extend(errs.into_iter().map(|(key, message)| BuildError {
                check: name.clone(),
                key,
                message,
            })),
        }
    }
    if errors.is_empty() {
        Ok(specs)
    } else {
        Err(errors)
    }
}

/// What `reload` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: usize,
}

/// A hash of a check's configuration (its serialized form: every field counts).
fn fingerprint(c: &CheckConfig) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(c).unwrap_or_default().hash(&mut h);
    h.finish()
}

pub struct Checker;

impl Checker {
    /// Starts `configs` with default options. Must be called within a tokio runtime.
    pub fn spawn(
        configs: &BTreeMap<String, CheckConfig>,
    ) -> Result<(CheckerHandle, mpsc::UnboundedReceiver<CheckEvent>), Vec<BuildError>> {
        Checker::spawn_with(configs, CheckerOptions::default())
    }

    pub fn spawn_with(
        configs: &BTreeMap<String, CheckConfig>,
        opts: CheckerOptions,
    ) -> Result<(CheckerHandle, mpsc::UnboundedReceiver<CheckEvent>), Vec<BuildError>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = CheckerHandle {
            core: Arc::new(Core {
                slots: Mutex::new(BTreeMap::new()),
                latency: Mutex::new(BTreeMap::new()),
                sem: Semaphore::new(opts.max_concurrent.max(1)),
                tx,
                on_verdict: opts.on_verdict,
            }),
            tasks: Arc::new(Tasks::default()),
        };
        handle.reload(configs)?;
        Ok((handle, rx))
    }
}

struct Slot {
    generation: u64,
    kind: CheckKind,
    /// Of the configuration, to tell a changed check at reload (a copy of every
    /// check's configuration would cost ~1 KB a check; 10,000 checks are normal).
    fingerprint: u64,
    state: CheckState,
    last_latency: Option<Duration>,
    last_error: Option<ProbeError>,
    checks_total: u64,
}

struct Core {
    slots: Mutex<BTreeMap<String, Slot>>,
    /// Latency of successful probes by kind (for /metrics).
    latency: Mutex<BTreeMap<CheckKind, Histogram>>,
    sem: Semaphore,
    tx: mpsc::UnboundedSender<CheckEvent>,
    on_verdict: Option<VerdictHook>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking check task must not take the others down with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Core {
    /// Records a probe's result; false if this task's check was replaced or removed.
    fn record(&self, name: &str, generation: u64, result: &Result<ProbeOk, ProbeError>) -> bool {
        let mut slots = lock(&self.slots);
        let Some(slot) = slots.get_mut(name) else {
            return false;
        };
        if slot.generation != generation {
            return false;
        }
        slot.checks_total += 1;
        let (ok, weight) = match result {
            Ok(o) => {
                slot.last_latency = Some(o.latency);
                slot.last_error = None;
                lock(&self.latency)
                    .entry(slot.kind)
                    .or_insert_with(|| Histogram::new(&LATENCY_BUCKETS))
                    .observe(o.latency.as_secs_f64());
                (true, o.dynamic_weight)
            }
            Err(e) => {
                // Kept as is (no allocation for a timeout or a refusal), rendered
                // when the status asks.
                slot.last_error = Some(e.clone());
                (false, None)
            }
        };
        let Some(change) = slot.state.record(ok, weight) else {
            return true;
        };
        let up = change.to == Verdict::Up;
        let consecutive_ok = slot.state.consecutive_ok();
        // The hook first (the reason and the log line can wait), and not while
        // holding the slots: it may yield the thread to the consumer it woke, and
        // the API reads them.
        drop(slots);
        if let Some(hook) = &self.on_verdict {
            hook(name, up, change.dynamic_weight);
        }
        let reason = match result {
            Err(e) => e.to_string(),
            Ok(_) if change.from == Verdict::Up => match change.dynamic_weight {
                Some(w) => format!("dynamic weight {w}"),
                None => "dynamic weight reset to the configured weight".to_string(),
            },
            Ok(o) => match consecutive_ok {
                1 => format!("success in {:.1} ms", o.latency.as_secs_f64() * 1e3),
                n => format!(
                    "{n} consecutive successes, the last in {:.1} ms",
                    o.latency.as_secs_f64() * 1e3
                ),
            },
        };
        if up {
            tracing::info!(check = name, reason = %reason, weight = ?change.dynamic_weight, "check up");
        } else {
            tracing::warn!(check = name, reason = %reason, "check down");
        }
        let _ = self.tx.send(CheckEvent {
            name: name.to_string(),
            up,
            dynamic_weight: change.dynamic_weight,
            reason,
        });
        true
    }
}

#[derive(Default)]
struct Tasks {
    handles: Mutex<HashMap<String, AbortHandle>>,
    next_generation: Mutex<u64>,
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for (_, h) in lock(&self.handles).drain() {
            h.abort();
        }
    }
}

/// Controls the running checks. Clones share them; when the last clone is dropped
/// every check stops.
#[derive(Clone)]
pub struct CheckerHandle {
    core: Arc<Core>,
    tasks: Arc<Tasks>,
}

impl CheckerHandle {
    /// Applies a new set of checks: unchanged checks keep running with their state;
    /// changed ones restart (keeping their verdict, counts restarted); new ones start
    /// after a warm-up; removed ones stop (no event is sent for them). If any check
    /// cannot be built, nothing changes. Must be called within a tokio runtime.
    pub fn reload(&self, configs: &BTreeMap<String, CheckConfig>) -> Result<ReloadSummary, Vec<BuildError>> {
        let specs = build_all(configs)?;
        let mut summary = ReloadSummary::default();
        let mut slots = lock(&self.core.slots);
        let mut handles = lock(&self.tasks.handles);
        let removed: Vec<String> = slots
            .keys()
            .filter(|n| !configs.contains_key(*n))
            .cloned()
            .collect();
        for name in removed {
            slots.remove(&name);
            if let Some(h) = handles.remove(&name) {
                h.abort();
            }
            summary.removed.push(name);
        }
        for spec in specs {
            let config = &configs[&spec.name];
            let fingerprint = fingerprint(config);
            let generation = {
                let mut g = lock(&self.tasks.next_generation);
                *g += 1;
                *g
            };
            match slots.get_mut(&spec.name) {
                Some(slot) if slot.fingerprint == fingerprint && slot.kind == config.kind => {
                    summary.unchanged += 1;
                    continue;
                }
                Some(slot) => {
                    slot.generation = generation;
                    slot.fingerprint = fingerprint;
                    slot.kind = config.kind;
                    slot.state = slot.state.reconfigured(spec.rise, spec.fall);
                    summary.changed.push(spec.name.clone());
                }
                None => {
                    slots.insert(
                        spec.name.clone(),
                        Slot {
                            generation,
                            kind: config.kind,
                            fingerprint,
                            state: CheckState::new(spec.rise, spec.fall),
                            last_latency: None,
                            last_error: None,
                            checks_total: 0,
                        },
                    );
                    summary.added.push(spec.name.clone());
                }
            }
            let name = spec.name.clone();
            let task = tokio::spawn(run_check(self.core.clone(), spec, generation));
            if let Some(old) = handles.insert(name, task.abort_handle()) {
                old.abort();
            }
        }
        Ok(summary)
    }

    /// A snapshot of every check.
    pub fn status(&self) -> BTreeMap<String, CheckStatus> {
        lock(&self.core.slots)
            .iter()
            .map(|(name, s)| {
                (
                    name.clone(),
                    CheckStatus {
                        kind: s.kind,
                        up: s.state.verdict().as_bool(),
                        dynamic_weight: s.state.dynamic_weight(),
                        last_latency: s.last_latency,
                        last_error: s.last_error.as_ref().map(ProbeError::to_string),
                        consecutive_ok: s.state.consecutive_ok(),
                        consecutive_fail: s.state.consecutive_fail(),
                        checks_total: s.checks_total,
                    },
                )
            })
            .collect()
    }

    /// Latency histograms of successful probes, by check kind.
    pub fn latency(&self) -> BTreeMap<CheckKind, Histogram> {
        lock(&self.core.latency).clone()
    }

    /// The current verdict of one check (`None` if there is no such check).
    pub fn verdict(&self, name: &str) -> Option<Verdict> {
        lock(&self.core.slots).get(name).map(|s| s.state.verdict())
    }

    /// Stops every check (also done when the last handle is dropped).
    pub fn shutdown(&self) {
        lock(&self.core.slots).clear();
        for (_, h) in lock(&self.tasks.handles).drain() {
            h.abort();
        }
    }
}

fn random_below(d: Duration) -> Duration {
    let nanos = d.as_nanos().min(u64::MAX as u128) as u64;
    if nanos == 0 {
        Duration::ZERO
    } else {
        Duration::from_nanos(fastrand::u64(..nanos))
    }
}

async fn run_check(core: Arc<Core>, spec: CheckSpec, generation: u64) {
    sleep(random_below(spec.warmup)).await;
    let mut next = Instant::now();
    loop {
        let (result, ended) = {
            let Ok(_permit) = core.sem.acquire().await else {
                return;
            };
            match &spec.probe {
                // The commonest check, tcp without retries, inline: no allocation
                // a probe.
                ProbeSpec::Tcp { target } if spec.retries == 0 => probe::tcp_once_ended(&spec, *target).await,
                // Boxed: a probe's future (TLS and HTTP state) is kilobytes, and only
                // the running ones (at most max_concurrent) need it; an idle check's
                // task stays small.
                _ => Box::pin(probe::run_ended(&spec)).await,
            }
        };
        if !core.record(&spec.name, generation, &result) {
            return;
        }
        // Fixed rate; a check that overran its interval starts again at once.
        // `ended` is the probe's own last clock read (or its deadline, which the
        // timer has passed): no clock read here.
        next += spec.interval;
        next = next.max(ended);
        sleep_until(next).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn idle_check_tasks_are_small() {
        let spec = crate::checks::CheckSpec::build("t", &{
            let mut c = crate::config::CheckConfig::new(crate::config::CheckKind::Tcp);
            c.target = Some("192.0.2.1:80".into());
            c
        })
        .unwrap();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let core = std::sync::Arc::new(super::Core {
            slots: Default::default(),
            latency: Default::default(),
            sem: tokio::sync::Semaphore::new(1),
            tx,
            on_verdict: None,
        });
        let probe = crate::checks::probe::run(&spec);
        let probe_size = std::mem::size_of_val(&probe);
        drop(probe);
        let task = super::run_check(core, spec, 1);
        let size = std::mem::size_of_val(&task);
        assert!(
            size < 1024,
            "an idle check task is {size} bytes (a probe: {probe_size})"
        );
    }
}
