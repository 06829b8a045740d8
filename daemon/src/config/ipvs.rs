//! `[ipvs]`: virtual services and their real servers (keepalived's
//! `virtual_server` / `real_server`), and their validation.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::validate::Problem;
use hafront_ipvs::model::{Forward, Protocol, TunnelType};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IpvsConfig {
    pub services: BTreeMap<String, IpvsServiceConfig>,
    /// How often the kernel table is read back and compared with what hafront
    /// wrote (events are written without reading it).
    #[serde(with = "super::schema::duration")]
    pub resync_interval: Duration,
    /// The kernel's connection sync daemon (keepalived's `lvs_sync_daemon`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<IpvsSyncConfig>,
}

impl Default for IpvsConfig {
    fn default() -> Self {
        IpvsConfig {
            services: BTreeMap::new(),
            resync_interval: Duration::from_secs(30),
            sync: None,
        }
    }
}

/// `[ipvs.sync]`: IPVS connection synchronisation between the directors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpvsSyncConfig {
    /// The sync link.
    #[serde(deserialize_with = "super::schema::lenient_string")]
    pub interface: String,
    /// Sync ID (0..255): directors of one pair share it, other pairs on the link
    /// use others.
    #[serde(default)]
    pub sync_id: u8,
    /// Master daemon while master of this instance, backup daemon otherwise;
    /// absent: both daemons always (keepalived's default since 2.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// UDP port (kernel default 8848).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Multicast TTL (kernel default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
    /// Multicast group, IPv4 or IPv6 (kernel default 224.0.0.81).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<std::net::IpAddr>,
    /// UDP payload size (kernel default: from the interface's MTU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_len: Option<u16>,
}

impl IpvsSyncConfig {
    /// The daemon of `role` these settings describe.
    pub fn daemon(&self, role: hafront_ipvs::SyncRole) -> hafront_ipvs::SyncDaemon {
        hafront_ipvs::SyncDaemon {
            role,
            interface: self.interface.clone(),
            sync_id: self.sync_id,
            max_len: self.max_len,
            group: self.group,
            port: self.port,
            ttl: self.ttl,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpvsServiceConfig {
    /// `IP:port` of the virtual service; or `fwmark`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<u32>,
    /// Family of a fwmark service.
    #[serde(default = "default_family")]
    pub family: Family,
    #[serde(default = "default_protocol")]
    pub protocol: Protocol,
    #[serde(default = "default_scheduler")]
    pub scheduler: String,
    /// Scheduler flags: `sh-fallback`, `sh-port` (sh), `mh-fallback`, `mh-port` (mh).
    #[serde(default)]
    pub scheduler_flags: Vec<SchedulerFlag>,
    #[serde(default = "default_forwarding")]
    pub forwarding: Forward,
    /// Persistence timeout; absent = not persistent.
    #[serde(
        default,
        with = "super::schema::opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub persistence: Option<Duration>,
    /// Persistence granularity: a prefix length (IPv4 0..32, IPv6 1..128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence_prefix: Option<u8>,
    #[serde(default)]
    pub one_packet: bool,
    /// Persistence engine (`sip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence_engine: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sorry_server: Option<SocketAddr>,
    /// Minimum total weight of live real servers; below it the sorry server serves.
    #[serde(default = "default_quorum")]
    pub quorum: u32,
    /// Failed real servers get weight 0 instead of being removed.
    #[serde(default)]
    pub inhibit_on_failure: bool,
    /// Install the service only while this node is master of that VRRP instance
    /// (absent: always installed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_of: Option<String>,
    #[serde(default)]
    pub real_servers: Vec<RealServerConfig>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealServerConfig {
    pub address: SocketAddr,
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Overrides the service's forwarding method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarding: Option<Forward>,
    #[serde(default)]
    pub upper_threshold: u32,
    #[serde(default)]
    pub lower_threshold: u32,
    #[serde(default = "default_tunnel_type")]
    pub tunnel_type: TunnelType,
    #[serde(default)]
    pub tunnel_port: u16,
    #[serde(default)]
    pub tunnel_checksum: TunnelChecksum,
    /// Health check (`[checks.<name>]`) that makes this server live or failed;
    /// none: always live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SchedulerFlag {
    ShFallback,
    ShPort,
    MhFallback,
    MhPort,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelChecksum {
    #[default]
    None,
    Csum,
    Remcsum,
}

fn default_family() -> Family {
    Family::Ipv4
}
fn default_protocol() -> Protocol {
    Protocol::Tcp
}
fn default_scheduler() -> String {
    "wlc".to_string()
}
fn default_forwarding() -> Forward {
    Forward::Nat
}
fn default_quorum() -> u32 {
    1
}
fn default_weight() -> u32 {
    1
}
fn default_tunnel_type() -> TunnelType {
    TunnelType::Ipip
}

/// The schedulers of Linux's IPVS (net/netfilter/ipvs/ip_vs_*.c).
pub const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
];

impl IpvsServiceConfig {
    pub fn is_ipv6(&self) -> bool {
        match self.address {
            Some(a) => a.is_ipv6(),
            None => self.family == Family::Ipv6,
        }
    }
}

pub(super) fn validate(
    cfg: &IpvsConfig,
    instances: &BTreeMap<String, super::InstanceConfig>,
    checks: &BTreeMap<String, super::checks::CheckConfig>,
    problems: &mut Vec<Problem>,
) {
    if cfg.resync_interval < Duration::from_secs(1) {
        problems.push(Problem {
            key: vec!["ipvs".into(), "resync_interval".into()],
            message: format!(
                "{:?} is too short: at least 1s (each resync reads the whole table)",
                cfg.resync_interval
            ),
        });
    }
    if let Some(sync) = &cfg.sync {
        let mut p = |field: &str, message: String| {
            let key = ["ipvs", "sync", field].iter().map(|s| s.to_string()).collect();
            problems.push(Problem { key, message });
        };
        if !super::validate::is_interface_name(&sync.interface) {
            p(
                "interface",
                format!("{:?} is not an interface name", sync.interface),
            );
        }
        if let Some(i) = &sync.instance {
            if !instances.contains_key(i) {
                p("instance", format!("no VRRP instance {i:?}"));
            }
        }
        if let Some(g) = sync.group.filter(|g| !g.is_multicast()) {
            p("group", format!("{g} is not a multicast address"));
        }
        if sync.port == Some(0) {
            p("port", "must be 1..65535".into());
        }
        if sync.ttl == Some(0) {
            p("ttl", "must be 1..255".into());
        }
        // The kernel clamps it to the interface's MTU; below 256 a sync message
        // holds hardly an entry, above 65507 no UDP datagram carries it.
        if let Some(m) = sync.max_len.filter(|m| !(256..=65507).contains(m)) {
            p("max_len", format!("{m}: must be 256..65507"));
        }
    }
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (name, s) in &cfg.services {
        let mut p = |field: &str, message: String| {
            let mut key = vec!["ipvs".to_string(), "services".to_string(), name.clone()];
            key.extend(field.split('.').filter(|f| !f.is_empty()).map(str::to_string));
            problems.push(Problem { key, message });
        };
        if !super::validate::valid_instance_name(name) {
            p(
                "",
                format!("service name {name:?} must be 1-32 characters of a-z, 0-9, '_' and '-'"),
            );
        }
        let identity = match (s.address, s.fwmark) {
            (Some(_), Some(_)) => {
                p("fwmark", "give either address or fwmark, not both".into());
                None
            }
            (None, None) => {
                p("address", "is required (or fwmark)".into());
                None
            }
            (Some(a), None) => {
                if a.port() == 0 && s.persistence.is_none() {
                    p(
                        "address",
                        format!("{a}: port 0 is only valid for a persistent service"),
                    );
                }
                if a.ip().is_unspecified() || a.ip().is_multicast() {
                    p("address", format!("{a} is not a usable virtual address"));
                }
                Some(format!("{} {a}", s.protocol))
            }
            (None, Some(0)) => {
                p("fwmark", "must be 1..2^32-1".into());
                None
            }
            (None, Some(m)) => Some(format!("fwmark {m} {:?}", s.family)),
        };
        if let Some(id) = identity {
            if let Some(other) = seen.insert(id, name) {
                p("address", format!("the same virtual service as {other:?}"));
            }
        }
        if !SCHEDULERS.contains(&s.scheduler.as_str()) {
            p(
                "scheduler",
                format!(
                    "{:?} is not an IPVS scheduler (one of: {})",
                    s.scheduler,
                    SCHEDULERS.join(", ")
                ),
            );
        }
        for f in &s.scheduler_flags {
            let ok = match f {
                SchedulerFlag::ShFallback | SchedulerFlag::ShPort => s.scheduler == "sh",
                SchedulerFlag::MhFallback | SchedulerFlag::MhPort => s.scheduler == "mh",
            };
            if !ok {
                p(
                    "scheduler_flags",
                    format!("{f:?} does not apply to scheduler {:?}", s.scheduler),
                );
            }
        }
        if let Some(t) = s.persistence {
            if t.subsec_nanos() != 0 || t.as_secs() == 0 || t.as_secs() > u32::MAX as u64 {
                p("persistence", "must be whole seconds, at least 1s".into());
            }
        }
        if let Some(plen) = s.persistence_prefix {
            let max = if s.is_ipv6() { 128 } else { 32 };
            if plen > max || (s.is_ipv6() && plen == 0) {
                p(
                    "persistence_prefix",
                    format!("must be {}..{max}", if s.is_ipv6() { 1 } else { 0 }),
                );
            }
            if s.persistence.is_none() {
                p("persistence_prefix", "only applies with persistence".into());
            }
        }
        if let Some(pe) = &s.persistence_engine {
            if pe.is_empty() || pe.len() >= hafront_ipvs::constants::IP_VS_PENAME_MAXLEN {
                p("persistence_engine", "must be 1..15 characters".into());
            }
        }
        if let Some(inst) = &s.master_of {
            if !instances.contains_key(inst) {
                p(
                    "master_of",
                    format!("no VRRP instance named {inst:?} (vrrp.instances.{inst})"),
                );
            }
        }
        let v6 = s.is_ipv6();
        let mut rs_seen = Vec::new();
        for (n, rs) in s.real_servers.iter().enumerate() {
            let field = format!("real_servers.{n}");
            if rs_seen.contains(&rs.address) {
                p(&field, format!("{} is listed twice", rs.address));
            }
            rs_seen.push(rs.address);
            let fwd = rs.forwarding.unwrap_or(s.forwarding);
            // Only tunnelling may cross families (kernel >= 5.x); NAT and DR may not.
            if rs.address.is_ipv6() != v6 && fwd != Forward::Tun {
                p(
                    &field,
                    format!("{} is not of the service's address family", rs.address),
                );
            }
            if let Some(c) = &rs.check {
                if !checks.contains_key(c) {
                    p(
                        &format!("{field}.check"),
                        format!("no check named {c:?} ([checks.{c}])"),
                    );
                }
            }
            if rs.weight > i32::MAX as u32 {
                p(&format!("{field}.weight"), "is too large".into());
            }
            if rs.lower_threshold > rs.upper_threshold && rs.upper_threshold != 0 {
                p(
                    &format!("{field}.lower_threshold"),
                    "must not exceed upper_threshold".into(),
                );
            }
            if matches!(fwd, Forward::Local | Forward::Bypass) {
                p(&format!("{field}.forwarding"), "use dr, nat or tun".into());
            }
            if fwd != Forward::Tun && (rs.tunnel_port != 0 || rs.tunnel_type != TunnelType::Ipip) {
                p(
                    &field,
                    "tunnel_type / tunnel_port only apply with forwarding = \"tun\"".into(),
                );
            }
            if fwd == Forward::Tun && rs.tunnel_type == TunnelType::Gue && rs.tunnel_port == 0 {
                p(&format!("{field}.tunnel_port"), "GUE tunnels need a port".into());
            }
        }
        if let Some(sorry) = s.sorry_server {
            if sorry.ip().is_ipv6() != v6 && s.forwarding != Forward::Tun {
                p(
                    "sorry_server",
                    format!("{sorry} is not of the service's address family"),
                );
            }
        }
    }
}
