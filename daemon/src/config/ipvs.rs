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
    /// `net.ipv4.vs.*` of the node's own network namespace, set at start and reload.
    #[serde(skip_serializing_if = "IpvsSysctls::is_empty")]
    pub sysctl: IpvsSysctls,
}

impl Default for IpvsConfig {
    fn default() -> Self {
        IpvsConfig {
            services: BTreeMap::new(),
            resync_interval: Duration::from_secs(30),
            sync: None,
            sysctl: IpvsSysctls::default(),
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

/// `[ipvs.sysctl]`: the director's `net.ipv4.vs.*` settings (the kernel's
/// ip-sysctl "/proc/sys/net/ipv4/vs/*" documentation). Absent keys are left as
/// the kernel has them; hafront writes the others in its own network namespace
/// at start and at each reload that changes them, and never restores them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IpvsSysctls {
    /// Sync message format: 1 (default since 2.6.39), 0 for directors older than that.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_version: Option<u8>,
    /// A connection is synced when its packet count reaches this value (then every
    /// `sync_period` packets); kernel default 3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_threshold: Option<u32>,
    /// See `sync_threshold`; 0: sync on state changes only; kernel default 50.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_period: Option<u32>,
    /// Seconds: resync a connection whose state did not change after this long,
    /// instead of by packet count; 0 (kernel default): by packet count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_refresh_period: Option<u32>,
    /// 0..3 retries of a sync message (with `sync_refresh_period`); kernel default 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_retries: Option<u8>,
    /// Sync persistent connections (templates) only; kernel default false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_persist_mode: Option<bool>,
    /// Sync messages queued at most; kernel default: from the memory size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_qlen_max: Option<u32>,
    /// Socket buffer size of the sync daemons (bytes); 0 (kernel default): the
    /// system's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_sock_size: Option<u32>,
    /// Sync threads and ports: 1, 2, 4, ... 128; kernel default 1. Read when a daemon
    /// starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_ports: Option<u8>,
    /// Expire a connection at once when its real server is removed (weight 0 is
    /// not removal); kernel default false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_nodest_conn: Option<bool>,
    /// Expire persistence templates of a quiescent (weight 0) real server;
    /// kernel default false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_quiescent_template: Option<bool>,
    /// 0..3, a bitmap for a new connection that reuses a port: 0 same real server,
    /// bit 0 rescheduled when safe (TIME_WAIT), bit 1 also from FIN_WAIT; kernel
    /// default 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn_reuse_mode: Option<u8>,
    /// Create a connection entry from any TCP packet, not only a SYN; kernel
    /// default false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sloppy_tcp: Option<bool>,
    /// The same for SCTP (not only INIT); kernel default false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sloppy_sctp: Option<bool>,
    /// While a backup sync daemon runs, forward nothing as a director; kernel
    /// default false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_only: Option<bool>,
    /// Keep conntrack entries for IPVS connections (for NAT firewalls, conntrackd);
    /// kernel default false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conntrack: Option<bool>,
}

impl IpvsSysctls {
    pub fn is_empty(&self) -> bool {
        *self == IpvsSysctls::default()
    }

    /// The files of /proc/sys/net/ipv4/vs to write and their values, in this
    /// order. `sync_threshold` and `sync_period` are one file ("threshold period");
    /// the one not set keeps the kernel's value, hence `current_threshold`.
    pub fn writes(&self, current_threshold: Option<(u32, u32)>) -> Vec<(&'static str, String)> {
        fn b(v: bool) -> String {
            u8::from(v).to_string()
        }
        let mut w = Vec::new();
        let mut num = |name: &'static str, v: Option<String>| {
            if let Some(v) = v {
                w.push((name, v));
            }
        };
        num("sync_version", self.sync_version.map(|v| v.to_string()));
        if self.sync_threshold.is_some() || self.sync_period.is_some() {
            let (t0, p0) = current_threshold.unwrap_or((3, 50));
            let t = self.sync_threshold.unwrap_or(t0);
            let p = self.sync_period.unwrap_or(p0);
            num("sync_threshold", Some(format!("{t} {p}")));
        }
        num(
            "sync_refresh_period",
            self.sync_refresh_period.map(|v| v.to_string()),
        );
        num("sync_retries", self.sync_retries.map(|v| v.to_string()));
        num("sync_persist_mode", self.sync_persist_mode.map(b));
        num("sync_qlen_max", self.sync_qlen_max.map(|v| v.to_string()));
        num("sync_sock_size", self.sync_sock_size.map(|v| v.to_string()));
        num("sync_ports", self.sync_ports.map(|v| v.to_string()));
        num("expire_nodest_conn", self.expire_nodest_conn.map(b));
        num("expire_quiescent_template", self.expire_quiescent_template.map(b));
        num("conn_reuse_mode", self.conn_reuse_mode.map(|v| v.to_string()));
        num("sloppy_tcp", self.sloppy_tcp.map(b));
        num("sloppy_sctp", self.sloppy_sctp.map(b));
        num("backup_only", self.backup_only.map(b));
        num("conntrack", self.conntrack.map(b));
        w
    }

    fn validate(&self, problems: &mut Vec<Problem>) {
        let mut p = |field: &str, message: String| {
            let key = ["ipvs", "sysctl", field].iter().map(|s| s.to_string()).collect();
            problems.push(Problem { key, message });
        };
        if let Some(v) = self.sync_version.filter(|v| *v > 1) {
            p("sync_version", format!("{v}: must be 0 or 1"));
        }
        // The kernel refuses threshold >= period unless the period is 0; one of
        // the two alone is checked against the kernel's value when written.
        if let (Some(t), Some(per)) = (self.sync_threshold, self.sync_period) {
            if per != 0 && t >= per {
                p(
                    "sync_threshold",
                    format!("{t}: must be below sync_period ({per}) unless sync_period is 0"),
                );
            }
        }
        for (field, v) in [
            ("sync_threshold", self.sync_threshold),
            ("sync_period", self.sync_period),
            ("sync_refresh_period", self.sync_refresh_period),
            ("sync_qlen_max", self.sync_qlen_max),
            ("sync_sock_size", self.sync_sock_size),
        ] {
            // The kernel reads them as C ints.
            if let Some(v) = v.filter(|v| *v > i32::MAX as u32) {
                p(field, format!("{v}: must be at most {}", i32::MAX));
            }
        }
        if let Some(v) = self.sync_refresh_period.filter(|v| *v > 86_400 * 365) {
            p("sync_refresh_period", format!("{v}: at most a year of seconds"));
        }
        if let Some(v) = self.sync_retries.filter(|v| *v > 3) {
            p("sync_retries", format!("{v}: must be 0..3"));
        }
        if self.sync_qlen_max == Some(0) {
            p("sync_qlen_max", "must be at least 1".into());
        }
        if let Some(v) = self.sync_ports.filter(|v| !v.is_power_of_two() || *v > 128) {
            p("sync_ports", format!("{v}: must be 1, 2, 4, ... 128"));
        }
        if let Some(v) = self.conn_reuse_mode.filter(|v| *v > 3) {
            p("conn_reuse_mode", format!("{v}: must be 0..3"));
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
    cfg.sysctl.validate(problems);
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
