//! What the API may change, validated against the running configuration, written
//! to the state directory first and only then applied: an error leaves both the
//! running daemon and the stored overrides as they were.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch, Mutex};
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
        let _guard = self.lock.lock().await;
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

    pub async fn maintenance(&self, name: &str, on: bool) -> Result<(), ApiError> {
        self.update(|cfg, o| {
            Self::instance(cfg, name)?;
            Ok(if on {
                o.maintenance.insert(name.to_string())
            } else {
                o.maintenance.remove(name)
            })
        })
        .await?;
        info!(instance = name, on, "maintenance set through the API");
        self.engine
            .send(Control::Maintenance(name.to_string(), on))
            .await
            .map_err(|_| ApiError::Unavailable("the daemon is stopping".into()))
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
