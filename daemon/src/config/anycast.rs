//! `[anycast.NAME]`: prefixes announced over BGP by the node's BIRD while the
//! tracked items are healthy (docs/architecture.md, "Anycast"), with validation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::schema::duration;
use super::track::TrackItem;
use super::validate::Problem;
use super::Config;

/// Where BIRD's control socket is on Debian (`bird2`).
pub const BIRD_SOCKET_DEFAULT: &str = "/run/bird/bird.ctl";
/// The dummy interface the anycast addresses live on.
pub const INTERFACE_DEFAULT: &str = "hafront-any";
/// The kernel routing table BIRD imports from (`protocol kernel { kernel table N; learn; }`).
pub const TABLE_DEFAULT: u32 = 100;
/// Time flows get to move after a withdrawal before the servers are stopped.
pub const DRAIN_DEFAULT: Duration = Duration::from_secs(5);
/// The longest drain a stop waits for (systemd's stop timeout is 90 s by default).
pub const DRAIN_MAX: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnycastConfig {
    /// Announced while healthy: a route per prefix in `table`; the first address of
    /// each is put on `interface` as a host address (/32, /128).
    pub prefixes: Vec<IpNet>,
    #[serde(default = "default_interface")]
    pub interface: String,
    #[serde(default = "default_table")]
    pub table: u32,
    /// After a withdrawal on stop, time for the routers to move the flows before
    /// the supervised servers are stopped.
    #[serde(with = "duration", default = "default_drain")]
    pub drain: Duration,
    /// BIRD's control socket, read for BGP/BFD session state (status, metrics).
    #[serde(default = "default_bird_socket")]
    pub bird_socket: PathBuf,
    /// The control socket of a BIRD that runs only BFD, when BFD is kept out of the
    /// BGP daemon (so that its restart does not take BFD down): BFD session state is
    /// read there instead of from `bird_socket`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd_socket: Option<PathBuf>,
    /// Tracked items, as an instance's; weight must be 0 (a down item withdraws).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_interfaces: Vec<TrackItem>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_scripts: Vec<TrackItem>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_checks: Vec<TrackItem>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_files: Vec<TrackItem>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_services: Vec<TrackItem>,
}

impl AnycastConfig {
    /// The five `track_*` lists with their keys.
    pub fn track_lists(&self) -> [(&'static str, &Vec<TrackItem>); 5] {
        [
            ("track_interfaces", &self.track_interfaces),
            ("track_scripts", &self.track_scripts),
            ("track_checks", &self.track_checks),
            ("track_files", &self.track_files),
            ("track_services", &self.track_services),
        ]
    }
}

fn default_interface() -> String {
    INTERFACE_DEFAULT.to_string()
}
fn default_table() -> u32 {
    TABLE_DEFAULT
}
fn default_drain() -> Duration {
    DRAIN_DEFAULT
}
fn default_bird_socket() -> PathBuf {
    PathBuf::from(BIRD_SOCKET_DEFAULT)
}

pub(super) fn validate(cfg: &Config, problems: &mut Vec<Problem>) {
    let mut p = |key: &[&str], message: String| {
        problems.push(Problem {
            key: key.iter().map(|s| s.to_string()).collect(),
            message,
        })
    };
    let mut owner: BTreeMap<IpNet, &str> = BTreeMap::new();
    let mut tables: BTreeMap<u32, &str> = BTreeMap::new();
    for (name, a) in &cfg.anycast {
        if !super::validate::valid_instance_name(name) {
            p(
                &["anycast", name],
                format!("anycast name {name:?} must be 1-32 characters of a-z, 0-9, '_' and '-'"),
            );
        }
        if a.prefixes.is_empty() {
            p(
                &["anycast", name, "prefixes"],
                "must list at least one prefix".into(),
            );
        }
        for (i, prefix) in a.prefixes.iter().enumerate() {
            let key = ["anycast", name, "prefixes", &i.to_string()];
            if prefix.trunc() != *prefix {
                p(
                    &key,
                    format!("{prefix} has host bits set (the prefix is {})", prefix.trunc()),
                );
            } else if let Some(other) = owner.insert(*prefix, name) {
                p(
                    &key,
                    format!("{prefix} is already announced by anycast {other:?}"),
                );
            }
        }
        if !super::validate::is_interface_name(&a.interface) {
            p(
                &["anycast", name, "interface"],
                format!("{:?} is not an interface name", a.interface),
            );
        } else if cfg.vrrp.instances.values().any(|i| i.interface == a.interface) {
            p(
                &["anycast", name, "interface"],
                format!(
                    "{} is a VRRP instance's interface: anycast needs a dummy interface of its own",
                    a.interface
                ),
            );
        }
        // 0 is unspecified; 253, 254, 255 are the kernel's default, main and local.
        if matches!(a.table, 0 | 253..=255) {
            p(
                &["anycast", name, "table"],
                format!("table {} is the kernel's own: choose another (e.g. 100)", a.table),
            );
        }
        tables.entry(a.table).or_insert(name);
        if a.drain > DRAIN_MAX {
            p(
                &["anycast", name, "drain"],
                format!("{:?} is more than {}s", a.drain, DRAIN_MAX.as_secs()),
            );
        }
        if !a.bird_socket.is_absolute() {
            p(
                &["anycast", name, "bird_socket"],
                "must be an absolute path".into(),
            );
        }
        if a.bfd_socket.as_ref().is_some_and(|s| !s.is_absolute()) {
            p(
                &["anycast", name, "bfd_socket"],
                "must be an absolute path".into(),
            );
        }
        for (field, items) in a.track_lists() {
            super::track::validate_items(cfg, &["anycast", name, field], field, items, &mut p, |w| {
                (w != 0).then(|| {
                    format!(
                        "weight {w}: anycast has no priority, a tracked item is weight 0 (down withdraws)"
                    )
                })
            });
        }
    }
}

/// Advice, not errors (`check-config` and `run` print them as warnings): an IPVS
/// service on an anycast address whose connections would not survive the routers'
/// ECMP rehash when another director leaves. The rehash moves part of the surviving
/// directors' flows to each other (hash-threshold ECMP); the director a flow reaches
/// mid-stream keeps it on its real server only if it has no state to lose: a
/// scheduler every director computes alike (`mh`, `sh`) and `sloppy_tcp` (or
/// `sloppy_sctp`), so that a packet other than a SYN creates the entry; or the sync
/// daemon on every director (`[ipvs.sync]` without `instance`: both daemons).
/// vm-tests/anycast-ipvs shows the difference (docs/operations.md, "Anycast").
pub fn advice(cfg: &Config) -> Vec<Problem> {
    use hafront_ipvs::model::Protocol;
    let mut advice = Vec::new();
    let synced = cfg.ipvs.sync.as_ref().is_some_and(|s| s.instance.is_none());
    for (name, s) in &cfg.ipvs.services {
        let Some(addr) = s.address else { continue };
        let Some((group, prefix)) = cfg
            .anycast
            .iter()
            .find_map(|(g, a)| a.prefixes.iter().find(|p| p.contains(&addr.ip())).map(|p| (g, p)))
        else {
            continue;
        };
        let on = format!("service {addr} is in anycast {group:?}'s {prefix}");
        let consistent = matches!(s.scheduler.as_str(), "mh" | "sh");
        if !consistent && !synced {
            advice.push(Problem {
                key: key(&["ipvs", "services", name, "scheduler"]),
                message: format!(
                    "{on}: with {:?}, a flow the routers' ECMP moves to another director when a director leaves \
                     is scheduled anew there, to another real server (reset); use \"mh\" (or \"sh\"), which \
                     every director computes alike, with ipvs.sysctl.sloppy_tcp = true, or run the sync \
                     daemon on every director ([ipvs.sync] without instance)",
                    s.scheduler
                ),
            });
        }
        let (sloppy, field) = match s.protocol {
            Protocol::Tcp => (cfg.ipvs.sysctl.sloppy_tcp, "sloppy_tcp"),
            Protocol::Sctp => (cfg.ipvs.sysctl.sloppy_sctp, "sloppy_sctp"),
            Protocol::Udp => continue,
        };
        if consistent && !synced && sloppy != Some(true) {
            advice.push(Problem {
                key: key(&["ipvs", "sysctl", field]),
                message: format!(
                    "{on} (scheduler {:?}): without {field} = true, a director that a flow reaches mid-stream \
                     after the routers' ECMP rehash has no entry for it, and its own stack resets it",
                    s.scheduler
                ),
            });
        }
    }
    advice
}

fn key(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}
