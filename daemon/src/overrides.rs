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
    /// Anycast groups held withdrawn (their addresses stay: flows in progress finish).
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub anycast_maintenance: BTreeSet<String>,
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

    /// Loads the overrides; a missing file is none. A file that exists but
    /// cannot be read or parsed is not dropped: the result says so, and the
    /// caller starts every instance in maintenance ([`Loaded::fail_safe`]). Maintenance
    /// lost to a torn write would let the node preempt. A file that does not parse
    /// is kept aside (`.bad`) for the operator.
    pub fn load(&self) -> Loaded {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::default(),
            Err(error) => {
                return Loaded {
                    overrides: Overrides::default(),
                    error: Some(format!("{}: cannot read: {error}", self.path.display())),
                };
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(o) => Loaded {
                overrides: o,
                error: None,
            },
            Err(error) => {
                let aside = self.path.with_extension("json.bad");
                let kept = match std::fs::rename(&self.path, &aside) {
                    Ok(()) => format!(" (kept as {})", aside.display()),
                    Err(e) => format!(" (not moved aside: {e})"),
                };
                Loaded {
                    overrides: Overrides::default(),
                    error: Some(format!("{}: cannot parse: {error}{kept}", self.path.display())),
                }
            }
        }
    }

    pub fn save(&self, o: &Overrides) -> Result<(), crate::durable::DurableError> {
        let text = serde_json::to_vec_pretty(o).unwrap_or_default();
        crate::durable::write(&self.path, &text)
    }
}

/// What [`Store::load`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    pub overrides: Overrides,
    /// The file exists but could not be used: why.
    pub error: Option<String>,
}

impl Loaded {
    /// The overrides to start with: with an error, every instance named is in
    /// maintenance (fail safe), and is saved when the file could be parsed aside,
    /// so a restart before the operator acts stays in maintenance too.
    pub fn fail_safe<'a>(
        mut self,
        instances: impl IntoIterator<Item = &'a String>,
        store: &Store,
    ) -> (Overrides, Option<String>) {
        let Some(error) = self.error.take() else {
            return (self.overrides, None);
        };
        self.overrides.maintenance.extend(instances.into_iter().cloned());
        warn!(%error, instances = self.overrides.maintenance.len(),
              "operator overrides unusable: every instance starts in maintenance (fail safe) until an operator lifts it");
        // The unparsable file was moved aside: record the fail-safe state in its
        // place. An unreadable one (permissions, I/O) is left alone; the next start
        // finds it unreadable again and is as safe.
        if !store.path.exists() {
            if let Err(error) = store.save(&self.overrides) {
                warn!(path = %store.path.display(), %error, "fail-safe maintenance not stored");
            }
        }
        (self.overrides, Some(error))
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
        assert_eq!(store.load(), Loaded::default());
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
        assert_eq!(store.load().overrides, o);
        assert_eq!(store.load().error, None);
        o.set_real_server("web", addr, RealServerOverride::default());
        assert!(o.real_servers.is_empty());
        std::fs::write(store.path(), b"{not json").unwrap();
        let loaded = store.load();
        assert!(
            loaded.error.as_deref().unwrap().contains("cannot parse"),
            "{loaded:?}"
        );
        assert!(dir.join("overrides.json.bad").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A torn write after a power loss leaves an empty file: every instance
    /// starts in maintenance, and that is stored so a second restart is as safe.
    #[test]
    fn an_empty_or_unreadable_file_means_maintenance() {
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("hafront-overrides-fs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::new(&dir);
        std::fs::write(store.path(), b"").unwrap();
        let names = ["db".to_string(), "web".to_string()];
        let (o, error) = store.load().fail_safe(&names, &store);
        assert!(error.is_some());
        assert_eq!(o.maintenance, names.iter().cloned().collect());
        // Stored (0600) in place of the one kept aside.
        let again = store.load();
        assert_eq!((again.overrides, again.error), (o.clone(), None));
        assert_eq!(std::fs::metadata(store.path()).unwrap().mode() & 0o777, 0o600);
        assert!(dir.join("overrides.json.bad").exists());
        // Not readable at all (a directory in its place): maintenance, left alone.
        std::fs::remove_file(store.path()).unwrap();
        std::fs::create_dir(store.path()).unwrap();
        let (o, error) = store.load().fail_safe(&names, &store);
        assert!(error.unwrap().contains("cannot read"));
        assert_eq!(o.maintenance.len(), 2);
        assert!(store.path().is_dir());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
