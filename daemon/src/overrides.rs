//! Operator overrides made through the API: maintenance, priorities, real-server
//! state. They live beside the configuration (a reload keeps them) and survive
//! restarts in `<state_dir>/overrides.json`, written atomically before a change
//! takes effect, so an acknowledged change is never lost and a failed write
//! changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tracing::warn;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Overrides {
    /// Instances held in maintenance (backup, never master).
    pub maintenance: BTreeSet<String>,
    /// Base priority by instance, instead of the configured one (tracking weights
    /// still apply on top).
    pub priority: BTreeMap<String, u8>,
    /// Real servers by IPVS service name and address.
    pub real_servers: BTreeMap<String, BTreeMap<SocketAddr, RealServerOverride>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RealServerOverride {
    /// Taken out of the service (or weight 0 with `inhibit_on_failure`), whatever
    /// its check says.
    pub disabled: bool,
    /// Weight instead of the configured one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

impl RealServerOverride {
    pub fn is_empty(&self) -> bool {
        !self.disabled && self.weight.is_none()
    }
}

impl Overrides {
    pub fn real_server(&self, service: &str, addr: SocketAddr) -> RealServerOverride {
        self.real_servers
            .get(service)
            .and_then(|m| m.get(&addr))
            .copied()
            .unwrap_or_default()
    }

    /// Sets one real server's override; an empty one is removed.
    pub fn set_real_server(&mut self, service: &str, addr: SocketAddr, o: RealServerOverride) {
        let entry = self.real_servers.entry(service.to_string()).or_default();
        if o.is_empty() {
            entry.remove(&addr);
        } else {
            entry.insert(addr, o);
        }
        if entry.is_empty() {
            self.real_servers.remove(service);
        }
    }
}

/// The file.
pub struct Store {
    path: PathBuf,
}

impl Store {
    pub fn new(state_dir: &Path) -> Store {
        Store {
            path: state_dir.join("overrides.json"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the overrides; a missing file is none. An unreadable one is kept
    /// aside (`.bad`) for the operator and the daemon starts without overrides:
    /// availability first, and the log says so.
    pub fn load(&self) -> Overrides {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Overrides::default(),
            Err(error) => {
                warn!(path = %self.path.display(), %error, "operator overrides not readable; starting without them");
                return Overrides::default();
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(o) => o,
            Err(error) => {
                let aside = self.path.with_extension("json.bad");
                let _ = std::fs::rename(&self.path, &aside);
                warn!(path = %self.path.display(), kept = %aside.display(), %error,
                      "operator overrides unreadable; starting without them");
                Overrides::default()
            }
        }
    }

    pub fn save(&self, o: &Overrides) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(o).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_file_is_kept_aside() {
        let dir = std::env::temp_dir().join(format!("hafront-overrides-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::new(&dir);
        assert_eq!(store.load(), Overrides::default());
        let mut o = Overrides::default();
        o.maintenance.insert("web".into());
        o.priority.insert("web".into(), 42);
        let addr: SocketAddr = "192.0.2.11:80".parse().unwrap();
        o.set_real_server(
            "web",
            addr,
            RealServerOverride {
                disabled: true,
                weight: None,
            },
        );
        store.save(&o).unwrap();
        assert_eq!(store.load(), o);
        o.set_real_server("web", addr, RealServerOverride::default());
        assert!(o.real_servers.is_empty());
        std::fs::write(store.path(), b"{not json").unwrap();
        assert_eq!(store.load(), Overrides::default());
        assert!(dir.join("overrides.json.bad").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
