//! Rules serde cannot express: ranges, protocol constraints (RFC 3768 / RFC 5798)
//! and cross-field consistency. Every rule reports the key it is about; all
//! problems are collected, not just the first.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use hafront_vrrp::Family;

use super::schema::{Config, InstanceConfig, IpvlanMode, Version};

/// One problem: the dotted key path and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub key: Vec<String>,
    pub message: String,
}

/// Linux IFNAMSIZ − 1: also the longest address label.
pub const IFNAME_MAX: usize = 15;

/// The one rule for an interface name (instances, tracked interfaces, checks'
/// bind_interface, the keepalived import): 1..15 bytes, no '/' and no space.
pub fn is_interface_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= IFNAME_MAX && !s.contains(['/', ' '])
}

/// An address label (IFA_LABEL): starts with the interface name, at most
/// [`IFNAME_MAX`] bytes.
pub fn is_address_label(label: &str, interface: &str) -> bool {
    label.len() <= IFNAME_MAX && label.starts_with(interface)
}
/// keepalived's upper bound for preempt_delay.
const PREEMPT_DELAY_MAX: Duration = Duration::from_secs(1000);
/// keepalived's upper bound for garp_extra_if (one day).
const EXTRA_IF_INTERVAL_MAX: Duration = Duration::from_secs(86_400);
/// The longest spacing of announcements (`vrrp.garp_interval`, `vrrp.na_interval`):
/// keepalived calls one of a second "very large"; ten seconds between two packets
/// already keeps a burst of 5 over 20 VIPs going for a quarter of an hour.
pub const ANNOUNCE_SPACING_MAX: Duration = Duration::from_secs(10);

pub fn validate(cfg: &Config) -> Vec<Problem> {
    let mut v = Validator::default();
    if cfg.vrrp.rt_priority > 99 {
        v.problem(
            &["vrrp", "rt_priority"],
            format!("{} is out of range 0..99 (0 = off)", cfg.vrrp.rt_priority),
        );
    }
    for (field, d) in [
        ("garp_interval", cfg.vrrp.garp_interval),
        ("na_interval", cfg.vrrp.na_interval),
    ] {
        if d > ANNOUNCE_SPACING_MAX {
            v.problem(
                &["vrrp", field],
                format!(
                    "{} is too long: at most 10s between two announcements (0 = no spacing)",
                    humantime::format_duration(d)
                ),
            );
        }
    }
    if cfg.node.name.trim().is_empty() {
        v.problem(&["node", "name"], "must not be empty");
    }
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&cfg.log.level) {
        v.problem(
            &["log", "level"],
            format!("not a log filter ({e}); use e.g. \"info\" or \"debug\""),
        );
    }
    if cfg.runtime_dir.as_os_str().is_empty() || !cfg.runtime_dir.is_absolute() {
        v.problem(&["runtime_dir"], "must be an absolute path");
    }
    if cfg.state_dir.as_os_str().is_empty() || !cfg.state_dir.is_absolute() {
        v.problem(&["state_dir"], "must be an absolute path");
    }
    if let Some(d) = &cfg.log.record_dir {
        if !d.is_absolute() {
            v.problem(&["log", "record_dir"], "must be an absolute path");
        }
    }
    super::api::validate(&cfg.api, &mut v.problems);
    // (interface, vrid, family) identifies a virtual router on the wire.
    let mut seen: BTreeMap<(String, u8, Family), String> = BTreeMap::new();
    let mut vmacs: BTreeMap<String, String> = BTreeMap::new();
    for (name, inst) in &cfg.vrrp.instances {
        v.instance(name, inst);
        super::routes::validate(name, inst, &mut v.problems);
        if let Some(vmac) = inst.vmac_ifname() {
            let clash = cfg.vrrp.instances.values().any(|o| o.interface == vmac);
            if clash {
                v.problem(
                    &["vrrp", "instances", name, "vmac_name"],
                    format!("{vmac} is the interface of an instance: the macvlan or ipvlan needs a name of its own"),
                );
            } else if let Some(other) = vmacs.insert(vmac.clone(), name.clone()) {
                v.problem(
                    &["vrrp", "instances", name, "vmac_name"],
                    format!("{vmac} is already the macvlan of instance {other:?}"),
                );
            }
        }
        if !inst.virtual_ips.is_empty() {
            let id = (inst.interface.clone(), inst.vrid, inst.family());
            if let Some(other) = seen.insert(id, name.clone()) {
                v.problem(
                    &["vrrp", "instances", name, "vrid"],
                    format!(
                        "VRID {} on {} is already used by instance {other:?} for the same address family",
                        inst.vrid, inst.interface
                    ),
                );
            }
        }
    }
    super::vmac::validate(&cfg.vrrp, &mut v.problems);
    super::ipvs::validate(&cfg.ipvs, &cfg.vrrp.instances, &cfg.checks, &mut v.problems);
    super::checks::validate(&cfg.checks, &mut v.problems);
    super::track::validate(cfg, &mut v.problems);
    super::services::validate(cfg, &mut v.problems);
    super::notify::validate(cfg, &mut v.problems);
    super::anycast::validate(cfg, &mut v.problems);
    v.problems
}

#[derive(Default)]
struct Validator {
    problems: Vec<Problem>,
}

pub(super) fn valid_instance_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

impl Validator {
    fn problem(&mut self, key: &[&str], message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.iter().map(|s| s.to_string()).collect(),
            message: message.into(),
        });
    }

    fn instance(&mut self, name: &str, i: &InstanceConfig) {
        let key = |field: &'static str| -> Vec<&str> {
            if field.is_empty() {
                vec!["vrrp", "instances", name]
            } else {
                vec!["vrrp", "instances", name, field]
            }
        };
        if !valid_instance_name(name) {
            self.problem(
                &key(""),
                format!(
                    "instance name {name:?} must be 1-32 characters of a-z, 0-9, '_' and '-', \
                     starting with a letter or digit"
                ),
            );
        }
        if !is_interface_name(&i.interface) {
            self.problem(
                &key("interface"),
                format!("{:?} is not an interface name", i.interface),
            );
        }
        if i.vrid == 0 {
            self.problem(&key("vrid"), "must be 1..255");
        }
        if i.priority == 0 {
            self.problem(
                &key("priority"),
                "must be 1..255 (0 is reserved for the master's resignation, 255 for the address owner)",
            );
        }
        self.advert_interval(&key("advert_interval"), i);
        self.virtual_ips(&key("virtual_ips"), i);
        self.vmac(&key(""), i);
        if let Some(label) = &i.vip_label {
            // The kernel wants the label to start with the name of the VIPs' device.
            let dev = i.vip_ifname();
            if !is_address_label(label, &dev) {
                self.problem(
                    &key("vip_label"),
                    format!(
                        "{label:?} must start with the interface name {dev:?} and be at most {IFNAME_MAX} \
                         characters (e.g. \"{dev}:vip\")"
                    ),
                );
            }
        }
        if i.preempt_delay > PREEMPT_DELAY_MAX {
            self.problem(&key("preempt_delay"), "must be at most 1000s");
        }
        let family = i.family();
        for (n, peer) in i.unicast_peers.iter().enumerate() {
            if Family::of(*peer) != family {
                self.problem(
                    &key("unicast_peers"),
                    format!(
                        "peer {n} ({peer}) is not of the instance's address family (that of the first VIP)"
                    ),
                );
            } else if peer.is_multicast() || peer.is_unspecified() {
                self.problem(
                    &key("unicast_peers"),
                    format!("peer {n} ({peer}) is not a unicast address"),
                );
            }
        }
        if let Some(src) = i.unicast_source {
            if Family::of(src) != family {
                self.problem(&key("unicast_source"), "is not of the instance's address family");
            } else if i.unicast_peers.is_empty() {
                self.problem(&key("unicast_source"), "is only used with unicast_peers");
            }
        }
        if let Some(pass) = &i.auth_pass {
            if i.version != Version::V2 {
                self.problem(
                    &key("auth_pass"),
                    "authentication exists only in VRRPv2 (RFC 5798 removed it); set version = 2 or remove it",
                );
            }
            let p = pass.expose();
            if p.is_empty() || p.len() > 8 || !p.is_ascii() {
                self.problem(
                    &key("auth_pass"),
                    "must be 1 to 8 ASCII characters (the PASS field is 8 bytes)",
                );
            }
        }
        if let Some(h) = &i.auth_hmac {
            let mut found = Vec::new();
            h.validate(|field, m| found.push((field.to_string(), m)));
            for (field, m) in found {
                let mut k = key("auth_hmac");
                k.push(&field);
                self.problem(&k, m);
            }
            if i.auth_pass.is_some() {
                self.problem(
                    &key("auth_hmac"),
                    "cannot be combined with auth_pass (keepalived drops the password too)",
                );
            }
        }
        if i.checksum_compat && (i.version != Version::V3 || family.is_ipv6()) {
            self.problem(&key("checksum_compat"), "only applies to VRRPv3 over IPv4");
        }
        if i.garp.master_burst == 0 || i.garp.master_burst > 100 {
            self.problem(
                &["vrrp", "instances", name, "garp", "master_burst"],
                "must be 1..100",
            );
        }
        if i.garp.master_repeat > 100 {
            self.problem(
                &["vrrp", "instances", name, "garp", "master_repeat"],
                "must be 0..100",
            );
        }
        if i.garp.master_delay > Duration::from_secs(3600) {
            self.problem(
                &["vrrp", "instances", name, "garp", "master_delay"],
                "must be at most 1h",
            );
        }
        if i.garp.refresh.is_some_and(|r| r < Duration::from_secs(1)) {
            self.problem(
                &["vrrp", "instances", name, "garp", "refresh"],
                "must be at least 1s",
            );
        }
        let extra = i.garp.extra_if_interval;
        if extra > EXTRA_IF_INTERVAL_MAX || extra.subsec_nanos() != 0 {
            self.problem(
                &["vrrp", "instances", name, "garp", "extra_if_interval"],
                format!(
                    "{} must be whole seconds, at most 86400s (0 = off)",
                    humantime::format_duration(extra)
                ),
            );
        }
    }

    /// `use_vmac`, `vmac_name`, `vmac_xmit_base` (keepalived's `use_vmac` and
    /// `vmac_xmit_base`).
    fn vmac(&mut self, inst: &[&str], i: &InstanceConfig) {
        let key = |field: &'static str| -> Vec<&str> {
            let mut k = inst.to_vec();
            k.push(field);
            k
        };
        if !i.use_vmac && i.vmac_xmit_base {
            self.problem(&key("vmac_xmit_base"), "is only used with use_vmac = true");
        }
        if i.use_ipvlan {
            self.ipvlan(&key, i);
        } else {
            if i.ipvlan_address.is_some() {
                self.problem(&key("ipvlan_address"), "is only used with use_ipvlan = true");
            }
            if i.ipvlan_mode != IpvlanMode::Bridge {
                self.problem(&key("ipvlan_mode"), "is only used with use_ipvlan = true");
            }
        }
        if !i.use_vmac && !i.use_ipvlan {
            if i.vmac_name.is_some() {
                self.problem(
                    &key("vmac_name"),
                    "is only used with use_vmac = true or use_ipvlan = true",
                );
            }
            return;
        }
        if let Some(name) = &i.vmac_name {
            if !is_interface_name(name) {
                self.problem(&key("vmac_name"), format!("{name:?} is not an interface name"));
            } else if *name == i.interface {
                self.problem(
                    &key("vmac_name"),
                    "must differ from interface (the macvlan is created on it)",
                );
            }
        }
    }

    /// `use_ipvlan`, `ipvlan_address` (keepalived's `use_ipvlan`: an IPv4
    /// instance needs the address, of the instance's family).
    fn ipvlan<'a>(&mut self, key: &dyn Fn(&'static str) -> Vec<&'a str>, i: &InstanceConfig) {
        if i.use_vmac {
            self.problem(
                &key("use_ipvlan"),
                "use_vmac and use_ipvlan exclude each other (one interface for the VIPs)",
            );
        }
        let ipv6 = i.family().is_ipv6();
        match i.ipvlan_address {
            None if !ipv6 => self.problem(
                &key("ipvlan_address"),
                "is required with use_ipvlan for IPv4 (the ipvlan's own address, the adverts' source)",
            ),
            Some(a) if a.addr().is_ipv6() != ipv6 => self.problem(
                &key("ipvlan_address"),
                format!("{a} is not of the instance's family (its VIPs')"),
            ),
            Some(a) if a.addr().is_unspecified() || a.addr().is_multicast() || a.addr().is_loopback() => self
                .problem(
                    &key("ipvlan_address"),
                    format!("{a} is not a usable unicast address"),
                ),
            Some(a) if i.virtual_ips.iter().any(|v| v.addr() == a.addr()) => self.problem(
                &key("ipvlan_address"),
                format!(
                    "{} is a VIP of the instance: the ipvlan needs an address of its own",
                    a.addr()
                ),
            ),
            _ => {}
        }
    }

    /// RFC 3768 §5.3.7 (v2: whole seconds in 8 bits) and RFC 5798 §5.2.7 (v3:
    /// centiseconds in 12 bits).
    fn advert_interval(&mut self, key: &[&str], i: &InstanceConfig) {
        let d = i.advert_interval;
        match i.version {
            Version::V2 => {
                if d.subsec_nanos() != 0 || d.as_secs() == 0 || d.as_secs() > 255 {
                    self.problem(
                        key,
                        format!(
                            "{} is not valid for VRRPv2: whole seconds 1s..255s",
                            humantime::format_duration(d)
                        ),
                    );
                }
            }
            Version::V3 => {
                if d.as_nanos() % 10_000_000 != 0
                    || d < Duration::from_millis(10)
                    || d > Duration::from_millis(40_950)
                {
                    self.problem(
                        key,
                        format!(
                            "{} is not valid for VRRPv3: steps of 10ms from 10ms to 40.95s",
                            humantime::format_duration(d)
                        ),
                    );
                }
            }
        }
    }

    fn virtual_ips(&mut self, key: &[&str], i: &InstanceConfig) {
        let vips = &i.virtual_ips;
        if vips.is_empty() {
            self.problem(key, "at least one virtual IP is needed");
            return;
        }
        let mut seen: Vec<IpAddr> = Vec::new();
        for (n, vip) in vips.iter().enumerate() {
            let a = vip.addr();
            if seen.contains(&a) {
                self.problem(key, format!("{a} is listed twice"));
            }
            seen.push(a);
            if a.is_unspecified() || a.is_multicast() || a.is_loopback() {
                self.problem(key, format!("entry {n} ({vip}) is not a usable unicast address"));
            }
            if i.version == Version::V2 && a.is_ipv6() {
                self.problem(
                    key,
                    format!("entry {n} ({vip}): VRRPv2 carries IPv4 only; use version = 3"),
                );
            }
        }
        for vip in &i.vip_no_track {
            if !vips.contains(vip) && !i.virtual_ips_excluded.contains(vip) {
                self.problem(
                    &[key[0], key[1], key[2], "vip_no_track"],
                    format!("{vip} is not one of virtual_ips"),
                );
            }
        }
        // An advert carries at most 255 addresses of one family (8-bit count).
        let family = Family::of_vips(vips);
        if vips.iter().filter(|n| Family::of(n.addr()) == family).count() > 255 {
            self.problem(
                key,
                "at most 255 addresses of the advertised family fit in an advert",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names() {
        assert!(valid_instance_name("web"));
        assert!(valid_instance_name("0-a_b"));
        assert!(!valid_instance_name("Web"));
        assert!(!valid_instance_name("-web"));
        assert!(!valid_instance_name(""));
        assert!(!valid_instance_name(&"a".repeat(33)));
    }
}
