//! One supervised service: start (after the configuration test), watch, restart
//! with backoff, fail after too many failed starts, follow an instance's role,
//! reload, stop. Or, for an adopted service, only watch it.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::process::{self, PidWatch};
use super::{ServiceEvent, ServiceStatus, Snapshot};
use crate::config::services::{RunOn, ServiceConfig};
use crate::shared::Roles;

pub(super) enum Cmd {
    Update(Arc<ServiceConfig>),
    /// hafront's configuration was reloaded: reload the server if its file changed.
    Reload,
    Stop(oneshot::Sender<()>),
}

/// Why a running process stopped being watched.
enum Outcome {
    /// A failure: it died, or its liveness check went down.
    Failed(String),
    /// Stopped on purpose (role lost, definition changed): no failure counted.
    Stopped,
    Shutdown(oneshot::Sender<()>),
}

/// While adopted services are down, their pidfile or unit is read this often.
const ADOPT_POLL: Duration = Duration::from_secs(1);

pub(super) struct Runner {
    pub name: String,
    pub spec: Arc<ServiceConfig>,
    pub events: mpsc::UnboundedSender<ServiceEvent>,
    pub status: watch::Sender<Arc<Snapshot>>,
    pub roles: watch::Receiver<Roles>,
    pub checks: watch::Receiver<crate::shared::Verdicts>,
    pub cmds: mpsc::UnboundedReceiver<Cmd>,
    pub restarts: u64,
    pub failures: u32,
    pub failed: bool,
    pub config_hash: Option<u64>,
    pub last_exit: Option<String>,
    pub reported: Option<(bool, bool)>,
    /// Set when the daemon stops: exits are no longer restarted.
    pub stopping: Arc<std::sync::atomic::AtomicBool>,
}

impl Runner {
    pub async fn run(mut self) {
        if self.spec.adopted() {
            return self.run_adopted().await;
        }
        loop {
            if !self.wanted() {
                self.publish("stopped", None);
                // Not running by design: nothing for tracking to hold against it.
                self.report(true, false, "not master");
                tokio::select! {
                    r = self.roles.changed() => if r.is_err() { return },
                    cmd = self.cmds.recv() => match cmd {
                        Some(Cmd::Update(spec)) => self.spec = spec,
                        Some(Cmd::Reload) => {}
                        Some(Cmd::Stop(done)) => { let _ = done.send(()); return }
                        None => return,
                    },
                }
                continue;
            }
            let outcome = match self.start().await {
                Ok(child) => self.watch_child(child).await,
                Err(e) => Outcome::Failed(e),
            };
            match outcome {
                Outcome::Shutdown(done) => {
                    self.publish("stopped", None);
                    let _ = done.send(());
                    return;
                }
                Outcome::Stopped => continue,
                Outcome::Failed(why) if self.is_stopping() => {
                    info!(
                        service = self.name,
                        reason = why.as_str(),
                        "service exited while hafront stops: not restarted"
                    );
                    self.last_exit = Some(why);
                    return self.wait_for_stop().await;
                }
                Outcome::Failed(why) => {
                    self.failures += 1;
                    self.last_exit = Some(why.clone());
                    if self.failures > self.spec.max_restarts && !self.failed {
                        self.failed = true;
                        error!(service = self.name, failures = self.failures, "service failed: restart limit reached, faulting its trackers until it runs healthy again");
                    }
                    self.report(false, self.failed, &why);
                    let delay = self.backoff();
                    warn!(service = self.name, reason = why.as_str(), failures = self.failures, delay = ?delay, "service down: restarting after a delay");
                    self.publish(if self.failed { "failed" } else { "backoff" }, None);
                    if let Some(done) = self.wait(delay).await {
                        self.publish("stopped", None);
                        let _ = done.send(());
                        return;
                    }
                    if self.is_stopping() {
                        return self.wait_for_stop().await;
                    }
                    self.restarts += 1;
                }
            }
        }
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stays down until the stop request arrives, and answers it.
    async fn wait_for_stop(&mut self) {
        self.publish("stopped", None);
        loop {
            match self.cmds.recv().await {
                Some(Cmd::Stop(done)) => {
                    let _ = done.send(());
                    return;
                }
                Some(_) => {}
                None => return,
            }
        }
    }

    fn wanted(&self) -> bool {
        match (self.spec.run_on, &self.spec.instance) {
            (RunOn::Master, Some(i)) => self.roles.borrow().masters.contains(i),
            _ => true,
        }
    }

    /// restart_delay × 2^(failures − 1), at most restart_delay_max.
    fn backoff(&self) -> Duration {
        let exp = self.failures.saturating_sub(1).min(30);
        self.spec
            .restart_delay
            .saturating_mul(1u32 << exp)
            .min(self.spec.restart_delay_max)
    }

    /// Sleeps, handling commands; `Some` when asked to stop.
    async fn wait(&mut self, delay: Duration) -> Option<oneshot::Sender<()>> {
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return None,
                r = self.roles.changed(), if open(&self.roles) => {
                    if r.is_err() || !self.wanted() { return None }
                }
                cmd = self.cmds.recv() => match cmd {
                    Some(Cmd::Update(spec)) => self.spec = spec,
                    Some(Cmd::Reload) => {}
                    Some(Cmd::Stop(done)) => return Some(done),
                    None => return None,
                },
            }
        }
    }

    async fn start(&mut self) -> Result<tokio::process::Child, String> {
        self.publish("starting", None);
        process::config_test(&self.spec).await.map_err(|e| {
            error!(
                service = self.name,
                error = e.as_str(),
                "configuration test failed: not started"
            );
            format!("configuration test failed: {e}")
        })?;
        self.config_hash = self.file_hash();
        let child = process::spawn(&self.spec).map_err(|e| {
            error!(service = self.name, error = %e, "cannot start");
            format!("cannot start: {e}")
        })?;
        info!(
            service = self.name,
            pid = child.id(),
            kind = self.spec.kind.as_str(),
            "service started"
        );
        Ok(child)
    }

    async fn watch_child(&mut self, mut child: tokio::process::Child) -> Outcome {
        let pid = child.id().unwrap_or(0);
        self.report(true, self.failed, "started");
        self.publish(if self.failed { "failed" } else { "running" }, Some(pid));
        let healthy_at = Instant::now() + self.spec.healthy_after;
        let mut healthy = false;
        let mut check_seen_up = false;
        loop {
            tokio::select! {
                st = child.wait() => {
                    let why = match st {
                        Ok(s) => format!("exited ({s})"),
                        Err(e) => format!("lost ({e})"),
                    };
                    // The tracking event first: the VIP must not wait for cleanup.
                    self.report(false, self.failed, &why);
                    // Orphaned workers would keep the port and answer: the service
                    // is the whole group.
                    process::kill_group(pid);
                    return Outcome::Failed(why);
                }
                _ = tokio::time::sleep_until(healthy_at), if !healthy => {
                    healthy = true;
                    if self.failures > 0 || self.failed {
                        info!(service = self.name, "service healthy again");
                    }
                    self.failures = 0;
                    self.failed = false;
                    self.report(true, false, "healthy");
                    self.publish("running", Some(pid));
                }
                r = self.checks.changed(), if open(&self.checks) => {
                    if r.is_err() { continue }
                    let Some(check) = self.spec.check.clone() else { continue };
                    let up = self.checks.borrow().get(&check).map(|h| h.up);
                    match up {
                        Some(true) => check_seen_up = true,
                        // A server still starting up is given healthy_after to answer.
                        Some(false) if check_seen_up || healthy => {
                            let why = format!("liveness check {check} down");
                            self.report(false, self.failed, &why);
                            process::kill_group(pid);
                            let _ = child.wait().await;
                            return Outcome::Failed(why);
                        }
                        _ => {}
                    }
                }
                r = self.roles.changed(), if open(&self.roles) => {
                    if r.is_ok() && !self.wanted() {
                        info!(service = self.name, "instance no longer master: stopping the service");
                        self.stop_child(&mut child, pid).await;
                        return Outcome::Stopped;
                    }
                }
                cmd = self.cmds.recv() => match cmd {
                    Some(Cmd::Update(spec)) => {
                        let restart = process::run_argv(&spec) != process::run_argv(&self.spec);
                        self.spec = spec;
                        if restart {
                            info!(service = self.name, "service definition changed: restarting it");
                            self.stop_child(&mut child, pid).await;
                            return Outcome::Stopped;
                        }
                    }
                    Some(Cmd::Reload) => self.reload(|sig| process::signal_pid(pid, sig)).await,
                    Some(Cmd::Stop(done)) => {
                        self.stop_child(&mut child, pid).await;
                        return Outcome::Shutdown(done);
                    }
                    None => {
                        self.stop_child(&mut child, pid).await;
                        return Outcome::Stopped;
                    }
                },
            }
        }
    }

    /// SIGTERM to the group, SIGKILL after stop_timeout.
    async fn stop_child(&mut self, child: &mut tokio::process::Child, pid: u32) {
        self.publish("stopping", Some(pid));
        let _ = process::signal_group(pid, nix::sys::signal::Signal::SIGTERM);
        if tokio::time::timeout(self.spec.stop_timeout, child.wait())
            .await
            .is_err()
        {
            warn!(service = self.name, "did not stop in time: killed");
        }
        process::kill_group(pid);
        let _ = child.wait().await;
        info!(service = self.name, "service stopped");
    }

    /// Reloads the server when its configuration file changed and passes the test.
    async fn reload(&mut self, signal: impl Fn(nix::sys::signal::Signal) -> nix::Result<()>) {
        let hash = self.file_hash();
        if hash == self.config_hash {
            return;
        }
        if let Err(e) = process::config_test(&self.spec).await {
            error!(
                service = self.name,
                error = e.as_str(),
                "configuration changed but fails its test: not reloaded, the running one stays"
            );
            return;
        }
        let sig = process::reload_signal(self.spec.kind);
        match signal(sig) {
            Ok(()) => {
                self.config_hash = hash;
                info!(
                    service = self.name,
                    signal = sig.as_str(),
                    "configuration changed: server reloaded"
                );
            }
            Err(e) => warn!(service = self.name, error = %e, "reload signal not delivered"),
        }
    }

    fn file_hash(&self) -> Option<u64> {
        let path = self.spec.config.as_ref()?;
        let bytes = std::fs::read(path).ok()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut h);
        Some(h.finish())
    }

    /// Watches a server managed elsewhere (pidfile or systemd unit); its manager
    /// restarts it, hafront only reports.
    async fn run_adopted(mut self) {
        loop {
            let watch = match process::adopted_pid(&self.spec).await {
                Some(pid) => PidWatch::open(pid).map(|w| (pid, w)).ok(),
                None => None,
            };
            match watch {
                Some((pid, w)) => {
                    info!(service = self.name, pid, "adopted service running");
                    self.report(true, false, "running");
                    self.publish("running", Some(pid));
                    loop {
                        tokio::select! {
                            _ = w.exited() => {
                                self.last_exit = Some("exited".into());
                                self.report(false, false, "adopted process exited");
                                warn!(service = self.name, pid, "adopted service exited");
                                break;
                            }
                            cmd = self.cmds.recv() => match cmd {
                                Some(Cmd::Update(spec)) => self.spec = spec,
                                Some(Cmd::Reload) => {
                                    let unit = self.spec.systemd_unit.clone();
                                    self.reload(|sig| match &unit {
                                        Some(u) => crate::process::std_command("systemctl", crate::process::Child::Tool)
                                            .args(["reload", u])
                                            .status()
                                            .map(|_| ())
                                            .map_err(|_| nix::errno::Errno::EIO),
                                        None => w.signal(sig),
                                    })
                                    .await
                                }
                                Some(Cmd::Stop(done)) => { let _ = done.send(()); return }
                                None => return,
                            },
                        }
                    }
                }
                None => {
                    self.report(false, false, "no running process");
                    self.publish("down", None);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(ADOPT_POLL) => {}
                cmd = self.cmds.recv() => match cmd {
                    Some(Cmd::Update(spec)) => self.spec = spec,
                    Some(Cmd::Reload) => {}
                    Some(Cmd::Stop(done)) => { let _ = done.send(()); return }
                    None => return,
                },
            }
        }
    }

    /// Tells tracking, only on change.
    fn report(&mut self, up: bool, failed: bool, reason: &str) {
        if self.reported == Some((up, failed)) {
            return;
        }
        self.reported = Some((up, failed));
        let _ = self.events.send(ServiceEvent {
            name: self.name.clone(),
            up,
            failed,
            reason: reason.to_string(),
        });
    }

    fn publish(&self, state: &'static str, pid: Option<u32>) {
        let st = ServiceStatus {
            kind: self.spec.kind.as_str(),
            state,
            pid,
            adopted: self.spec.adopted(),
            run_on: match self.spec.run_on {
                RunOn::Always => "always",
                RunOn::Master => "master",
            },
            instance: self.spec.instance.clone(),
            up: self.reported.is_none_or(|(up, _)| up) && pid.is_some(),
            failed: self.failed,
            restarts: self.restarts,
            consecutive_failures: self.failures,
            last_exit: self.last_exit.clone(),
        };
        let name = self.name.clone();
        self.status.send_modify(|m| {
            Arc::make_mut(m).insert(name, st);
        });
    }
}

/// A closed channel (daemon stopping) must not spin a select loop.
fn open<T>(rx: &watch::Receiver<T>) -> bool {
    rx.has_changed().is_ok()
}
