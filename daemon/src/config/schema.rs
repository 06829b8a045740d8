//! The configuration schema: one serde tree, unknown keys rejected at every level.
//! Defaults live here (serde `default`s); range and cross-field rules live in
//! `validate.rs` so that every problem can be reported with its key and source.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use super::track::TrackItem;
pub use hafront_vrrp::Version;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub node: NodeConfig,
    pub log: LogConfig,
    /// Where status.json and the API socket live (cleared at boot).
    pub runtime_dir: PathBuf,
    /// What survives restarts: operator overrides (maintenance, priorities, real
    /// servers) made through the API.
    pub state_dir: PathBuf,
    pub api: super::api::ApiConfig,
    pub vrrp: VrrpConfig,
    pub ipvs: super::ipvs::IpvsConfig,
    /// Health checks by name (`[checks.<name>]`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, super::checks::CheckConfig>,
    /// Tracking scripts by name (`[scripts.<name>]`, keepalived's vrrp_script).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub scripts: BTreeMap<String, super::track::ScriptConfig>,
    /// Tracked files by name (`[files.<name>]`, keepalived's vrrp_track_file).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, super::track::TrackFileConfig>,
    /// Supervised servers by name (`[services.<name>]`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub services: BTreeMap<String, super::services::ServiceConfig>,
    /// E-mail and webhook alerts on state changes.
    pub notify: super::notify::NotifyConfig,
    /// Who runs scripts, and which scripts are refused.
    pub security: super::notify::SecurityConfig,
    /// The conntrackd that instances with `hooks.conntrackd` drive.
    #[serde(skip_serializing_if = "is_default_conntrackd")]
    pub conntrackd: ConntrackdConfig,
    /// Anycast groups by name (`[anycast.<name>]`): prefixes BIRD announces over
    /// BGP while their tracked items are healthy.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub anycast: BTreeMap<String, super::anycast::AnycastConfig>,
}

fn is_default_conntrackd(c: &ConntrackdConfig) -> bool {
    *c == ConntrackdConfig::default()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node: NodeConfig::default(),
            log: LogConfig::default(),
            runtime_dir: PathBuf::from("/run/hafront"),
            state_dir: PathBuf::from("/var/lib/hafront"),
            api: Default::default(),
            vrrp: VrrpConfig::default(),
            ipvs: Default::default(),
            checks: BTreeMap::new(),
            scripts: BTreeMap::new(),
            files: BTreeMap::new(),
            services: BTreeMap::new(),
            notify: Default::default(),
            security: Default::default(),
            conntrackd: Default::default(),
            anycast: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Shown in logs, status and notifications; the host name by default.
    #[serde(deserialize_with = "lenient_string")]
    pub name: String,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig { name: hostname() }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "hafront".to_string())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `hafront=debug,warn`... RUST_LOG wins.
    pub level: String,
    pub format: LogFormat,
    /// Records every VRRP instance's protocol inputs under `<dir>/<instance>/` as
    /// a replay case (`hafront replay DIR`), for bug reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_dir: Option<PathBuf>,
    /// The most a recording's `input.jsonl` grows to, per instance (a LAN host
    /// sending valid adverts for a recorded VRID must not fill the disk).
    pub record_max_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_string(),
            format: LogFormat::Auto,
            record_dir: None,
            record_max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// An ipvlan's flags (keepalived's `use_ipvlan ... bridge|private|vepa`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpvlanMode {
    #[default]
    Bridge,
    Private,
    Vepa,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// journald under systemd (JOURNAL_STREAM set), text on stderr otherwise.
    Auto,
    Text,
    Json,
    Journald,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VrrpConfig {
    pub instances: BTreeMap<String, InstanceConfig>,
    /// Every instance stays backup and silent this long after hafront starts
    /// (keepalived's `vrrp_startup_delay`).
    #[serde(with = "duration")]
    pub startup_delay: Duration,
    /// ... and until the system has been up this long (keepalived 2.4's
    /// `vrrp_delay_after_boot`): only a start soon after boot waits.
    #[serde(with = "duration")]
    pub delay_after_boot: Duration,
    /// SCHED_RR priority (1..99) of the engine thread, 0 = normal scheduling
    /// (keepalived's `vrrp_rt_priority`).
    pub rt_priority: u8,
    /// mlockall (current and future pages, as they are touched), so the engine never
    /// waits for a page to come back from swap (keepalived's `vrrp_no_swap`).
    pub lock_memory: bool,
    /// Spacing between two gratuitous ARPs on one interface when many VIPs are
    /// announced at once (keepalived's `vrrp_garp_interval`); 0: none.
    #[serde(with = "duration")]
    pub garp_interval: Duration,
    /// Spacing between two unsolicited NAs on one interface (keepalived's
    /// `vrrp_gna_interval`); 0: none.
    #[serde(with = "duration")]
    pub na_interval: Duration,
    /// `net.ipv4.igmp_link_local_mcast_reports = 0` while hafront runs (keepalived's
    /// `disable_local_igmp`; net/igmp.rs says why). Unset: on when an IPv4 instance
    /// uses `use_vmac` (its macvlan would report 224.0.0.18 from the virtual MAC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_local_igmp: Option<bool>,
    /// The prefix of the names of the macvlans made for VIPs by `vmac_addr` or
    /// `vip_options.use_vmac` (`{prefix}.{vrid}`; keepalived's `vmac_addr_prefix`);
    /// "vrrp" by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmac_addr_prefix: Option<String>,
    /// Instances that move together; a fault in one faults all.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sync_groups: BTreeMap<String, super::track::SyncGroupConfig>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    #[serde(deserialize_with = "lenient_string")]
    pub interface: String,
    pub vrid: u8,
    #[serde(default = "default_priority")]
    pub priority: u8,
    #[serde(default = "default_version")]
    pub version: Version,
    #[serde(with = "duration", default = "default_advert_interval")]
    pub advert_interval: Duration,
    #[serde(deserialize_with = "vip_list")]
    pub virtual_ips: Vec<IpNet>,
    /// VIPs (of `virtual_ips`) that hafront does not restore when something else
    /// removes them, nor remove when something else adds them (keepalived's
    /// `no_track`).
    #[serde(default, deserialize_with = "vip_list", skip_serializing_if = "Vec::is_empty")]
    pub vip_no_track: Vec<IpNet>,
    /// Added and removed with the VIPs, not advertised (keepalived's
    /// `virtual_ipaddress_excluded`).
    #[serde(default, deserialize_with = "vip_list", skip_serializing_if = "Vec::is_empty")]
    pub virtual_ips_excluded: Vec<IpNet>,
    /// Per-VIP device, label and scope, keyed by the VIP as written in
    /// `virtual_ips` or `virtual_ips_excluded` (keepalived's `dev`, `label`, `scope`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vip_options: BTreeMap<String, super::routes::VipOptions>,
    /// Routes held while master (keepalived's `virtual_routes`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_routes: Vec<super::routes::VirtualRoute>,
    /// Policy rules held while master (keepalived's `virtual_rules`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_rules: Vec<super::routes::VirtualRule>,
    /// The instance is in fault while its interface is down; false: it ignores
    /// the interface's state (keepalived's `dont_track_primary`).
    #[serde(default = "yes")]
    pub track_link: bool,
    /// IPv4 address label (`eth0:vip`), as keepalived's `label`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vip_label: Option<String>,
    /// RFC 5798 §7.3 virtual MAC (keepalived's `use_vmac`): the VIPs live on a
    /// private-mode macvlan of `interface` with MAC 00-00-5E-00-01-{VRID}
    /// (00-00-5E-00-02-{VRID} for IPv6), and adverts leave from it.
    #[serde(default)]
    pub use_vmac: bool,
    /// The macvlan's (or, with `use_ipvlan`, the ipvlan's) name; `vrrp.{vrid}`
    /// (IPv4) or `vrrp6.{vrid}` (IPv6) by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmac_name: Option<String>,
    /// keepalived's `use_ipvlan`: adverts are sent and received on an L2-mode
    /// ipvlan of `interface`, which shares its MAC, from the ipvlan's own
    /// address; the VIPs stay on `interface`, as keepalived puts them.
    #[serde(default)]
    pub use_ipvlan: bool,
    /// With `use_ipvlan`: the ipvlan's own address, the adverts' source unless
    /// `unicast_source`; required for IPv4 (keepalived's `use_ipvlan` address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipvlan_address: Option<IpNet>,
    /// With `use_ipvlan`: "bridge" (the default), "private" or "vepa".
    #[serde(default)]
    pub ipvlan_mode: IpvlanMode,
    /// keepalived's `use_vmac_addr`: each VIP on another interface (`vip_options`
    /// `dev`) or of the other address family goes on a macvlan of its interface
    /// with the virtual MAC of its family (names: `vrrp.vmac_addr_prefix`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub vmac_addr: bool,
    /// With `use_vmac`: adverts are sent and received on `interface` itself, with
    /// its own MAC (keepalived's `vmac_xmit_base`); the VIPs stay on the macvlan.
    #[serde(default)]
    pub vmac_xmit_base: bool,
    #[serde(default = "yes")]
    pub preempt: bool,
    #[serde(with = "duration", default)]
    pub preempt_delay: Duration,
    /// A preempting backup takes over as soon as the master advertises a lower
    /// priority (milliseconds after a tracked failure) instead of after the RFC's
    /// Master_Down_Interval. Set false to keep the RFC timing exactly.
    #[serde(default = "yes")]
    pub fast_preempt: bool,
    #[serde(default)]
    pub unicast_peers: Vec<IpAddr>,
    /// Source of unicast adverts; the interface's primary address by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unicast_source: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_pass: Option<Secret>,
    /// Signed adverts (keepalived 2.4's `auth_hmac`), see config/auth_hmac.rs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_hmac: Option<super::auth_hmac::AuthHmacConfig>,
    /// RFC 5798 Accept_Mode: when false, a master that is not the address owner
    /// drops traffic addressed to the VIPs (nftables).
    #[serde(default = "yes")]
    pub accept: bool,
    /// VRRPv3 over IPv4 without the pseudo-header in the checksum (old keepalived
    /// `vrrp_checksum_compat`).
    #[serde(default)]
    pub checksum_compat: bool,
    #[serde(default)]
    pub garp: GarpConfig,
    /// Every tracked item is `{ name, weight }`; weight 0 (default) means fault.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_interfaces: Vec<TrackItem>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_scripts: Vec<TrackItem>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_checks: Vec<TrackItem>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_files: Vec<TrackItem>,
    /// Supervised services (`[services.<name>]`): a crash is a tracking event at once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_services: Vec<TrackItem>,
    /// Notify scripts (argv), keepalived's notify_master/backup/fault/stop: run on
    /// entering the state, without arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify_master: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify_backup: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify_fault: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify_stop: Vec<String>,
    /// keepalived's generic notify: run on every change, after the state's own
    /// script, with the arguments `INSTANCE <name> <STATE> <priority>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<String>,
    /// Out-of-band split-brain probe while master: every this often, an ARP probe
    /// (RFC 5227, sender address 0) asks who holds the first IPv4 VIP, or, with
    /// IPv6 VIPs only, a Neighbor Solicitation asks for the first IPv6 VIP; an
    /// answer from another MAC means another node holds it too. Unset: every
    /// `SPLIT_BRAIN_PROBE_DEFAULT`; `0s`: off.
    #[serde(default, with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub split_brain_probe: Option<Duration>,
    /// Blocking transition hooks: run in order, each under `hooks.timeout`, before
    /// the VIPs are added (becoming master) and after they are removed (leaving).
    #[serde(default, skip_serializing_if = "HooksConfig::is_empty")]
    pub hooks: HooksConfig,
}

/// `[vrrp.instances.<name>.hooks]`: what must happen before the VIPs answer and
/// after they stop answering (docs/configuration.md, "Transition hooks").
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HooksConfig {
    /// The built-in conntrackd steps (`[conntrackd]`): becoming master, commit the
    /// external cache, flush, resync, bulk send (`-c`, `-f`, `-R`, `-B`); leaving,
    /// shorten the kernel's timers and ask the new master for a resync (`-t`, `-n`).
    /// They run before the commands below.
    pub conntrackd: bool,
    /// Commands (argv), in order, before the VIPs are added.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub before_master: Vec<Vec<String>>,
    /// Commands (argv), in order, after the VIPs are removed (backup, fault, stop).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after_leave: Vec<Vec<String>>,
    /// Time each command gets; then it is killed and the next one runs.
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// Time a hook command may be given at most: the VIP executor (every instance's
/// address changes) waits for it.
pub const HOOK_TIMEOUT_MAX: Duration = Duration::from_secs(60);

/// Time a hook command gets by default.
pub const HOOK_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);

impl HooksConfig {
    pub fn is_empty(&self) -> bool {
        *self == HooksConfig::default()
    }

    /// The operator's commands with their key (`before_master`, index).
    pub fn commands(&self) -> impl Iterator<Item = ((&'static str, String), &Vec<String>)> {
        let before = self.before_master.iter().enumerate();
        let after = self.after_leave.iter().enumerate();
        before
            .map(|(i, a)| (("before_master", i.to_string()), a))
            .chain(after.map(|(i, a)| (("after_leave", i.to_string()), a)))
    }

    /// The time each command gets.
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(HOOK_TIMEOUT_DEFAULT)
    }
}

/// `[conntrackd]`: how the built-in conntrackd steps call Debian's `conntrackd`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConntrackdConfig {
    /// The conntrackd binary (its client mode talks to the running daemon's socket).
    pub binary: PathBuf,
    /// conntrackd's configuration file (`-C`); unset: conntrackd's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<PathBuf>,
}

impl Default for ConntrackdConfig {
    fn default() -> Self {
        ConntrackdConfig {
            binary: PathBuf::from("/usr/sbin/conntrackd"),
            config: None,
        }
    }
}

impl ConntrackdConfig {
    /// argv of one conntrackd client request (`-c`, `-f`, ...).
    pub fn command(&self, flag: &str) -> Vec<String> {
        let mut argv = vec![self.binary.to_string_lossy().into_owned()];
        if let Some(c) = &self.config {
            argv.push("-C".into());
            argv.push(c.to_string_lossy().into_owned());
        }
        argv.push(flag.into());
        argv
    }

    /// conntrackd's documented primary-backup steps: becoming master (commit the
    /// external cache, flush the caches, resync with the kernel, bulk send to the
    /// backups), leaving (shorten the kernel timers of the zombie entries, request
    /// a resync from the new master).
    pub fn steps(&self, master: bool) -> Vec<Vec<String>> {
        let flags: &[&str] = if master {
            &["-c", "-f", "-R", "-B"]
        } else {
            &["-t", "-n"]
        };
        flags.iter().map(|f| self.command(f)).collect()
    }
}

/// Default period of the split-brain probe (ARP or NDP): a
/// two-way VRRP loss is caught within seconds, and 255 instances probing cost 51
/// broadcast frames a second, only while master.
pub const SPLIT_BRAIN_PROBE_DEFAULT: Duration = Duration::from_secs(5);

impl InstanceConfig {
    /// The family of the first VIP ([`Family::of_vips`]).
    pub fn family(&self) -> hafront_vrrp::Family {
        hafront_vrrp::Family::of_vips(&self.virtual_ips)
    }

    /// The macvlan's name with `use_vmac`, the ipvlan's with `use_ipvlan`
    /// (`vmac_name`, or keepalived's default `vrrp.{vrid}`; `vrrp6.{vrid}` for
    /// IPv6, so that both families fit one VRID).
    pub fn vmac_ifname(&self) -> Option<String> {
        if !self.use_vmac && !self.use_ipvlan {
            return None;
        }
        Some(self.vmac_name.clone().unwrap_or_else(|| {
            if self.family().is_ipv6() {
                format!("vrrp6.{}", self.vrid)
            } else {
                format!("vrrp.{}", self.vrid)
            }
        }))
    }

    /// The interface of the VIPs: the macvlan with `use_vmac`, else `interface`
    /// (also with `use_ipvlan`: keepalived puts the VIPs on the base interface
    /// and only the adverts on the ipvlan).
    pub fn vip_ifname(&self) -> String {
        match self.vmac_ifname() {
            Some(v) if self.use_vmac => v,
            _ => self.interface.clone(),
        }
    }

    /// Priority 255: the address owner.
    pub fn is_owner(&self) -> bool {
        hafront_vrrp::is_owner(self.priority)
    }

    /// The split-brain probe period in effect (see `split_brain_probe`).
    pub fn split_brain_probe_every(&self) -> Option<Duration> {
        match self.split_brain_probe {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None => (!self.virtual_ips.is_empty()).then_some(SPLIT_BRAIN_PROBE_DEFAULT),
        }
    }

    /// The notify scripts by key.
    pub fn notify_scripts(&self) -> [(&'static str, &Vec<String>); 5] {
        [
            ("notify_master", &self.notify_master),
            ("notify_backup", &self.notify_backup),
            ("notify_fault", &self.notify_fault),
            ("notify_stop", &self.notify_stop),
            ("notify", &self.notify),
        ]
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GarpConfig {
    /// Gratuitous ARP / unsolicited NA per VIP on becoming master.
    pub master_burst: u32,
    /// Delay before the second burst.
    #[serde(with = "duration")]
    pub master_delay: Duration,
    /// Size of the second burst (0 = none).
    pub master_repeat: u32,
    /// Periodic re-announcement while master (none by default).
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub refresh: Option<Duration>,
    /// Re-announce when a lower-priority advert is heard while master.
    pub lower_prio_burst: bool,
    /// One announcement per VIP with every advert while master (partition heal).
    pub with_advert: bool,
    /// While master, one announcement on each extra interface this often (VIPs on
    /// a macvlan that sends no adverts; with `extra_if_all`, every interface of a
    /// VIP other than the instance's), so switches keep those MACs (keepalived's
    /// `garp_extra_if`); 0: off.
    #[serde(with = "duration")]
    pub extra_if_interval: Duration,
    /// `extra_if_interval` on every interface of the instance's VIPs, not only its
    /// macvlan (keepalived's `garp_extra_if all`).
    pub extra_if_all: bool,
}

impl Default for GarpConfig {
    fn default() -> Self {
        GarpConfig {
            master_burst: 5,
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            refresh: None,
            lower_prio_burst: true,
            with_advert: true,
            extra_if_interval: Duration::ZERO,
            extra_if_all: false,
        }
    }
}

/// A secret: never printed (Debug and Serialize redact it).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

pub const REDACTED: &str = "<redacted>";

/// `url` with the userinfo of its authority (`user:pass@`) replaced by
/// `<redacted>`, for printing (check-config, error messages).
pub fn redact_userinfo(url: &str) -> std::borrow::Cow<'_, str> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}{REDACTED}{}", &url[..start], &url[start + at..]).into(),
        None => url.into(),
    }
}

/// Serializes a URL without its userinfo.
pub fn redacted_url<S: Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_userinfo(url))
}

/// [`redacted_url`] for an optional URL.
pub fn redacted_opt_url<S: Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        Some(u) => redacted_url(u, s),
        None => s.serialize_none(),
    }
}

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient_string(d).map(Secret)
    }
}

fn default_priority() -> u8 {
    100
}
fn default_version() -> Version {
    Version::V3
}
fn default_advert_interval() -> Duration {
    Duration::from_secs(1)
}
fn yes() -> bool {
    true
}

/// A string that may arrive as a number: environment values are typed by figment
/// (`HAFRONT_..._AUTH_PASS=12345678` is an integer).
pub(super) fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Lenient {
        S(String),
        I(i64),
        U(u64),
        F(f64),
        B(bool),
    }
    Ok(match Lenient::deserialize(d)? {
        Lenient::S(s) => s,
        Lenient::I(i) => i.to_string(),
        Lenient::U(u) => u.to_string(),
        Lenient::F(f) => f.to_string(),
        Lenient::B(b) => b.to_string(),
    })
}

/// Durations: a humantime string (`"100ms"`, `"1s"`, `"1m 30s"`) or a number of
/// seconds (`1`, `0.1`, keepalived-style).
/// `virtual_ips`: ipnet's own parser says "invalid IP address syntax" for any
/// fault; this names what was written and which part is wrong. Element by element,
/// so that the error's key keeps the index (`virtual_ips.0`).
fn vip_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    struct Vip(IpNet);
    impl<'de> Deserialize<'de> for Vip {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let text = String::deserialize(d)?;
            parse_vip(&text).map(Vip).map_err(serde::de::Error::custom)
        }
    }
    Ok(Vec::<Vip>::deserialize(d)?.into_iter().map(|v| v.0).collect())
}

/// One VIP, `address/prefix`.
pub fn parse_vip(text: &str) -> Result<IpNet, String> {
    let Some((addr, prefix)) = text.split_once('/') else {
        return Err(format!(
            "{text:?}: a prefix length is required (e.g. \"{text}/24\")"
        ));
    };
    let addr: std::net::IpAddr = addr
        .parse()
        .map_err(|_| format!("{text:?}: invalid address {addr:?} (IPv4 or IPv6)"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len: u8 =
        prefix.parse().ok().filter(|n| *n <= max).ok_or_else(|| {
            format!("{text:?}: invalid prefix length {prefix} (0..={max} for this address)")
        })?;
    IpNet::new(addr, len).map_err(|e| format!("{text:?}: {e}"))
}

pub mod duration {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            U(u64),
            F(f64),
        }
        match Raw::deserialize(d) {
            Ok(Raw::S(s)) => humantime::parse_duration(s.trim()).map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid duration {s:?}: {e} (write e.g. \"100ms\", \"1s\", \"2m\")"
                ))
            }),
            Ok(Raw::U(u)) => Ok(Duration::from_secs(u)),
            Ok(Raw::F(f)) if f.is_finite() && (0.0..=1e9).contains(&f) => Ok(Duration::from_secs_f64(f)),
            Ok(Raw::F(f)) => Err(serde::de::Error::custom(format!("invalid duration {f}"))),
            Err(_) => Err(serde::de::Error::custom(
                "expected a duration: a string such as \"100ms\" or a number of seconds",
            )),
        }
    }
}

/// `Option<Duration>` in the same forms as [`duration`].
pub mod opt_duration {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        duration::deserialize(d).map(Some)
    }
}
