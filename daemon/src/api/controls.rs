//! What the API may change, validated against the running configuration, written
//! to the state directory first and only then applied: an error leaves both the
//! running daemon and the stored overrides as they were.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch, Mutex, MutexGuard};
use tracing::info;

use super::ApiError;
use crate::config::Config;
use crate::overrides::{Overrides, RealServerOverride, Store};
use crate::shared::Control;

/// A reload request: answered with the outcome (`Err`: the new configuration was
/// rejected and the running one kept).
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

pub struct Controls {
    store: Store,
    /// Serializes changes: read-modify-write of the stored overrides.
    lock: Mutex<()>,
    overrides: watch::Sender<Arc<Overrides>>,
    config: watch::Receiver<Arc<Config>>,
    engine: mpsc::Sender<Control>,
    reload: mpsc::Sender<ReloadRequest>,
}

impl Controls {
    pub fn new(
        store: Store,
        overrides: watch::Sender<Arc<Overrides>>,
        config: watch::Receiver<Arc<Config>>,
        engine: mpsc::Sender<Control>,
        reload: mpsc::Sender<ReloadRequest>,
    ) -> Controls {
        Controls {
            store,
            lock: Mutex::new(()),
            overrides,
            config,
            engine,
            reload,
        }
    }

    pub fn overrides(&self) -> Arc<Overrides> {
        self.overrides.borrow().clone()
    }

    /// Validates, stores, publishes. `change` returns `Ok(false)` for "nothing to do".
    async fn update(
        &self,
        change: impl FnOnce(&Config, &mut Overrides) -> Result<bool, ApiError>,
    ) -> Result<Arc<Overrides>, ApiError> {
        let guard = self.lock.lock().await;
        self.update_locked(&guard, change)
    }

    /// [`Controls::update`] under a lock the caller holds (and keeps while it
    /// tells the engine, so the engine gets the commands in the file's order).
    fn update_locked(
        &self,
        _held: &MutexGuard<'_, ()>,
        change: impl FnOnce(&Config, &mut Overrides) -> Result<bool, ApiError>,
    ) -> Result<Arc<Overrides>, ApiError> {
        let cfg = self.config.borrow().clone();
        let mut next = (**self.overrides.borrow()).clone();
        if !change(&cfg, &mut next)? {
            return Ok(self.overrides());
        }
        self.store.save(&next).map_err(|e| {
            ApiError::Internal(format!(
                "cannot store the change in {}: {e}; nothing was changed",
                self.store.path().display()
            ))
        })?;
        let next = Arc::new(next);
        self.overrides.send_replace(next.clone());
        Ok(next)
    }

    fn instance<'a>(cfg: &'a Config, name: &str) -> Result<&'a crate::config::InstanceConfig, ApiError> {
        cfg.vrrp
            .instances
            .get(name)
            .ok_or_else(|| ApiError::NotFound(format!("no VRRP instance {name:?}")))
    }

    /// The engine command is sent with the lock held: two requests (on, off) that
    /// released it first could reach the engine in the other order than they
    /// reached overrides.json, leaving the engine in maintenance and the file not
    /// (or the reverse) until the next restart. The change runs on a task of its
    /// own, so a request dropped half-way (request timeout, client gone) between the
    /// file write and the engine command still completes it.
    pub async fn maintenance(self: &Arc<Self>, name: &str, on: bool) -> Result<(), ApiError> {
        let this = self.clone();
        let name = name.to_string();
        tokio::spawn(async move { this.maintenance_now(&name, on).await })
            .await
            .map_err(|e| ApiError::Internal(format!("the maintenance change failed: {e}")))?
    }

    async fn maintenance_now(&self, name: &str, on: bool) -> Result<(), ApiError> {
        let guard = self.lock.lock().await;
        self.update_locked(&guard, |cfg, o| {
            Self::instance(cfg, name)?;
            Ok(if on {
                o.maintenance.insert(name.to_string())
            } else {
                o.maintenance.remove(name)
            })
        })?;
        info!(instance = name, on, "maintenance set through the API");
        self.engine
            .send(Control::Maintenance(name.to_string(), on))
            .await
            .map_err(|_| ApiError::Unavailable("the daemon is stopping".into()))
    }

    /// Holds an anycast group withdrawn (or releases it). The anycast task follows
    /// the stored overrides: nothing to tell the engine.
    pub async fn anycast_maintenance(&self, name: &str, on: bool) -> Result<(), ApiError> {
        self.update(|cfg, o| {
            if !cfg.anycast.contains_key(name) {
                return Err(ApiError::NotFound(format!("no anycast group {name:?}")));
            }
            Ok(if on {
                o.anycast_maintenance.insert(name.to_string())
            } else {
                o.anycast_maintenance.remove(name)
            })
        })
        .await?;
        info!(anycast = name, on, "anycast maintenance set through the API");
        Ok(())
    }

    pub async fn priority(&self, name: &str, priority: Option<u8>) -> Result<(), ApiError> {
        self.update(|cfg, o| {
            let inst = Self::instance(cfg, name)?;
            if inst.is_owner() {
                return Err(ApiError::Conflict(format!(
                    "instance {name:?} is the address owner (priority 255): its priority cannot change"
                )));
            }
            Ok(match priority {
                Some(p) => o.priority.insert(name.to_string(), p) != Some(p),
                None => o.priority.remove(name).is_some(),
            })
        })
        .await?;
        info!(
            instance = name,
            ?priority,
            "priority override set through the API"
        );
        Ok(())
    }

    pub async fn real_server(
        &self,
        service: &str,
        addr: SocketAddr,
        enabled: Option<bool>,
        weight: Option<Option<u32>>,
    ) -> Result<RealServerOverride, ApiError> {
        let o = self
            .update(|cfg, o| {
                let s = cfg
                    .ipvs
                    .services
                    .get(service)
                    .ok_or_else(|| ApiError::NotFound(format!("no IPVS service {service:?}")))?;
                if !s.real_servers.iter().any(|r| r.address == addr) {
                    return Err(ApiError::NotFound(format!(
                        "IPVS service {service:?} has no real server {addr}"
                    )));
                }
                let mut rs = o.real_server(service, addr);
                let before = rs;
                if let Some(e) = enabled {
                    rs.disabled = !e;
                }
                if let Some(w) = weight {
                    rs.weight = w;
                }
                o.set_real_server(service, addr, rs);
                Ok(rs != before)
            })
            .await?;
        let now = o.real_server(service, addr);
        info!(service, %addr, disabled = now.disabled, weight = ?now.weight, "real server changed through the API");
        Ok(now)
    }

    pub async fn reload(&self) -> Result<(), ApiError> {
        let (tx, rx) = oneshot::channel();
        self.reload
            .send(tx)
            .await
            .map_err(|_| ApiError::Unavailable("the daemon is stopping".into()))?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ApiError::field(
                "config",
                format!("new configuration rejected, the running one is kept: {e}"),
            )),
            Err(_) => Err(ApiError::Unavailable("the daemon is stopping".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Layer, Sources};
    use std::time::Duration;

    fn controls(dir: &std::path::Path, engine: mpsc::Sender<Control>) -> Arc<Controls> {
        let cfg = crate::config::load(&Sources {
            layers: vec![Layer {
                name: "test".into(),
                toml: "[vrrp.instances.web]\ninterface = \"eth0\"\nvrid = 51\nvirtual_ips = [\"192.0.2.100/24\"]\n"
                    .into(),
            }],
            ..Default::default()
        })
        .unwrap();
        let (_cfg_tx, cfg_rx) = watch::channel(Arc::new(cfg));
        let (overrides_tx, _) = watch::channel(Arc::new(Overrides::default()));
        let (reload_tx, _reload_rx) = mpsc::channel(1);
        Arc::new(Controls::new(
            Store::new(dir),
            overrides_tx,
            cfg_rx,
            engine,
            reload_tx,
        ))
    }

    /// A request dropped while the engine's queue is full (the file already
    /// written): the command still reaches the engine once there is room.
    #[tokio::test]
    async fn a_dropped_maintenance_request_still_reaches_the_engine() {
        let dir = std::env::temp_dir().join(format!("hafront-controls-drop-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (engine_tx, mut engine_rx) = mpsc::channel(1);
        engine_tx
            .send(Control::Maintenance("other".into(), false))
            .await
            .unwrap();
        let controls = controls(&dir, engine_tx);
        let r = tokio::time::timeout(Duration::from_millis(100), controls.maintenance("web", true)).await;
        assert!(
            r.is_err(),
            "the engine's queue was full: the request must still be waiting"
        );
        assert!(Store::new(&dir).load().overrides.maintenance.contains("web"));
        let _ = engine_rx.recv().await; // room for one more
        let got = tokio::time::timeout(Duration::from_secs(5), engine_rx.recv()).await;
        assert!(
            matches!(got, Ok(Some(Control::Maintenance(ref n, true))) if n == "web"),
            "overrides.json says maintenance, the engine never heard of it"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Requests from several threads at once (as a multi-threaded runtime would
    /// run them): after each round the engine's last maintenance command must
    /// say what overrides.json says.
    #[test]
    fn concurrent_maintenance_keeps_engine_and_file_in_step() {
        let dir = std::env::temp_dir().join(format!("hafront-controls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (engine_tx, mut engine_rx) = mpsc::channel(1024);
        let controls = controls(&dir, engine_tx);
        let store = Store::new(&dir);
        const THREADS: usize = 4;
        let start = Arc::new(std::sync::Barrier::new(THREADS + 1));
        let done = Arc::new(std::sync::Barrier::new(THREADS + 1));
        let rounds = 2000;
        let workers: Vec<_> = (0..THREADS)
            .map(|i| {
                let (controls, start, done) = (controls.clone(), start.clone(), done.clone());
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
                    for _ in 0..rounds {
                        start.wait();
                        rt.block_on(controls.maintenance("web", i % 2 == 0)).unwrap();
                        done.wait();
                    }
                })
            })
            .collect();
        let mut disagreements = 0;
        for _ in 0..rounds {
            start.wait();
            done.wait();
            let mut last = None;
            while let Ok(Control::Maintenance(_, on)) = engine_rx.try_recv() {
                last = Some(on);
            }
            let stored = store.load().overrides.maintenance.contains("web");
            if last != Some(stored) {
                disagreements += 1;
            }
        }
        for w in workers {
            w.join().unwrap();
        }
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            disagreements, 0,
            "rounds where the engine and overrides.json disagreed"
        );
    }
}
