//! What a master holds besides its advertised VIPs (keepalived's
//! `virtual_ipaddress` options, `virtual_ipaddress_excluded`, `virtual_routes`,
//! `virtual_rules`): per-VIP device, label and scope, addresses kept out of the
//! adverts, routes and policy rules. Added on becoming master, removed on leaving
//! and at start (docs/configuration.md, "Virtual routes and rules").

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::schema::{parse_vip, InstanceConfig};
use super::validate::{is_address_label, is_interface_name, Problem, IFNAME_MAX};

/// keepalived's (and the kernel's) route protocol for what it adds: routes and
/// rules left by a keepalived run on the node being migrated are the same.
pub const PROTO_KEEPALIVED: u8 = 18;

/// Routes and rules per instance at most (each is one netlink request a second
/// while master).
pub const ROUTES_MAX: usize = 256;

/// `[vrrp.instances.<name>.vip_options."<vip>"]`: where one VIP (of `virtual_ips`
/// or `virtual_ips_excluded`) lives.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VipOptions {
    /// The device (keepalived's `dev`); the instance's interface (or macvlan) by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    /// IPv4 address label (keepalived's `label`); overrides `vip_label`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Address scope (keepalived's `scope`); `global` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// On a macvlan of its interface with the virtual MAC (keepalived's
    /// `use_vmac` in the VIP line), as `vmac_addr` puts it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub use_vmac: bool,
}

/// ip(8) scopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    #[serde(alias = "universe")]
    Global,
    Site,
    Link,
    Host,
}

impl Scope {
    /// The kernel's RT_SCOPE_* value.
    pub fn value(self) -> u8 {
        match self {
            Scope::Global => 0,
            Scope::Site => 200,
            Scope::Link => 253,
            Scope::Host => 254,
        }
    }
}

/// A route or rule prefix: `address/len`, or an address alone (a host prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Prefix(pub IpNet);

impl Prefix {
    pub fn parse(text: &str) -> Result<Prefix, String> {
        if text.contains('/') {
            return parse_vip(text).map(|n| Prefix(n.trunc()));
        }
        let a: IpAddr = text
            .parse()
            .map_err(|_| format!("{text:?}: not an address or address/prefix"))?;
        Ok(Prefix(IpNet::from(a)))
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Prefix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Prefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Prefix::parse(text.trim()).map_err(serde::de::Error::custom)
    }
}

/// A route protocol: a number or one of iproute2's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proto(pub u8);

const PROTO_NAMES: [(&str, u8); 5] = [
    ("kernel", 2),
    ("boot", 3),
    ("static", 4),
    ("dhcp", 16),
    ("keepalived", PROTO_KEEPALIVED),
];

impl Proto {
    pub fn parse(text: &str) -> Option<Proto> {
        PROTO_NAMES
            .iter()
            .find(|(n, _)| *n == text)
            .map(|(_, v)| *v)
            .or_else(|| text.parse().ok())
            .map(Proto)
    }
}

impl Default for Proto {
    fn default() -> Self {
        Proto(PROTO_KEEPALIVED)
    }
}

impl Serialize for Proto {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match PROTO_NAMES.iter().find(|(_, v)| *v == self.0) {
            Some((n, _)) => s.serialize_str(n),
            None => s.serialize_u8(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Proto {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = super::schema::lenient_string(d)?;
        Proto::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{text:?}: not a route protocol (0..255, or kernel, boot, static, dhcp, keepalived)"
            ))
        })
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteType {
    #[default]
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
}

/// `virtual_routes = [ { to = "...", via = "...", ... } ]` (keepalived's
/// `virtual_routes`, ip-route(8) options).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualRoute {
    /// Destination, `address/len` (`0.0.0.0/0`, `::/0` for a default route).
    pub to: Prefix,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    /// Preferred source address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<IpAddr>,
    /// Routing table (1..2^32-1); `main` (254) by default.
    #[serde(default = "main_table")]
    pub table: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
    /// `link` for a unicast route without `via`, `global` otherwise (as ip(8)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    #[serde(default)]
    pub proto: Proto,
    #[serde(default, rename = "type")]
    pub kind: RouteType,
    /// Not restored when removed by something else while master.
    #[serde(default)]
    pub no_track: bool,
}

fn main_table() -> u32 {
    254
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    /// Look the packet up in `table`.
    #[default]
    Table,
    Blackhole,
    Unreachable,
    Prohibit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleFamily {
    Ipv4,
    Ipv6,
}

/// `virtual_rules = [ { from = "...", table = 100, priority = 100 } ]`
/// (keepalived's `virtual_rules`, ip-rule(8) options).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Prefix>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Prefix>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iif: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oif: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmask: Option<u32>,
    /// Required: the rule is found again (drift, removal) by it, and the kernel
    /// would give each re-add a priority of its own.
    pub priority: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    #[serde(default, rename = "type")]
    pub action: RuleAction,
    /// The family of `from`/`to`; with neither, IPv4 (as keepalived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<RuleFamily>,
    #[serde(default)]
    pub no_track: bool,
}

impl VirtualRule {
    /// IPv6 or not: `from`, `to`, `family`, else IPv4.
    pub fn is_ipv6(&self) -> bool {
        match (self.from, self.to, self.family) {
            (Some(p), _, _) | (None, Some(p), _) => p.0.addr().is_ipv6(),
            (None, None, f) => f == Some(RuleFamily::Ipv6),
        }
    }
}

/// The `vip_options` keys as VIPs (those that parse; validation reports the rest).
pub fn vip_options(i: &InstanceConfig) -> BTreeMap<IpNet, VipOptions> {
    i.vip_options
        .iter()
        .filter_map(|(k, o)| parse_vip(k).ok().map(|n| (n, o.clone())))
        .collect()
}

/// Checks an instance's `vip_options`, `virtual_ips_excluded`, `virtual_routes`
/// and `virtual_rules`, naming the field.
pub fn validate(name: &str, i: &InstanceConfig, problems: &mut Vec<Problem>) {
    let mut problem = |field: &[&str], message: String| {
        let mut key: Vec<String> = ["vrrp", "instances", name]
            .iter()
            .map(|s| s.to_string())
            .collect();
        key.extend(field.iter().map(|s| s.to_string()));
        problems.push(Problem { key, message });
    };
    let default_dev = i.vip_ifname();
    for (n, vip) in i.virtual_ips_excluded.iter().enumerate() {
        let a = vip.addr();
        if a.is_unspecified() || a.is_multicast() || a.is_loopback() {
            problem(
                &["virtual_ips_excluded"],
                format!("entry {n} ({vip}) is not a usable unicast address"),
            );
        }
        if i.virtual_ips.iter().any(|v| v.addr() == a)
            || i.virtual_ips_excluded[..n].iter().any(|v| v.addr() == a)
        {
            problem(&["virtual_ips_excluded"], format!("{a} is listed twice"));
        }
    }
    for (k, o) in &i.vip_options {
        let field = ["vip_options", k.as_str()];
        let vip = match parse_vip(k) {
            Ok(v) => v,
            Err(e) => {
                problem(&field, e);
                continue;
            }
        };
        if !i.virtual_ips.contains(&vip) && !i.virtual_ips_excluded.contains(&vip) {
            problem(
                &field,
                format!("{vip} is not one of virtual_ips or virtual_ips_excluded"),
            );
        }
        if let Some(dev) = &o.dev {
            if !is_interface_name(dev) {
                problem(
                    &[field[0], field[1], "dev"],
                    format!("{dev:?} is not an interface name"),
                );
            }
        }
        if let Some(label) = &o.label {
            let dev = o.dev.as_deref().unwrap_or(&default_dev);
            if vip.addr().is_ipv6() {
                problem(
                    &[field[0], field[1], "label"],
                    "labels are for IPv4 addresses only".into(),
                );
            } else if !is_address_label(label, dev) {
                problem(
                    &[field[0], field[1], "label"],
                    format!("{label:?} must start with the interface name {dev:?} and be at most {IFNAME_MAX} characters"),
                );
            }
        }
    }
    if i.virtual_routes.len() > ROUTES_MAX {
        problem(
            &["virtual_routes"],
            format!("at most {ROUTES_MAX} routes per instance"),
        );
    }
    for (n, r) in i.virtual_routes.iter().enumerate() {
        let n = n.to_string();
        let mut bad = |f: &'static str, m: String| problem(&["virtual_routes", &n, f], m);
        let v6 = r.to.0.addr().is_ipv6();
        for (f, a) in [("via", r.via), ("src", r.src)] {
            if a.is_some_and(|a| a.is_ipv6() != v6) {
                bad(f, format!("is not of the family of to ({})", r.to));
            }
        }
        if let Some(dev) = &r.dev {
            if !is_interface_name(dev) {
                bad("dev", format!("{dev:?} is not an interface name"));
            }
        }
        if r.table == 0 {
            bad("table", "must be 1..4294967295 (254 is main)".into());
        }
        if r.kind == RouteType::Unicast {
            if r.via.is_none() && r.dev.is_none() {
                bad(
                    "to",
                    format!("route to {}: a unicast route needs via or dev", r.to),
                );
            }
        } else if r.via.is_some() || r.dev.is_some() {
            bad(
                "type",
                format!("a {:?} route has no via or dev", r.kind).to_lowercase(),
            );
        }
    }
    if i.virtual_rules.len() > ROUTES_MAX {
        problem(
            &["virtual_rules"],
            format!("at most {ROUTES_MAX} rules per instance"),
        );
    }
    for (n, r) in i.virtual_rules.iter().enumerate() {
        let n = n.to_string();
        let mut bad = |f: &'static str, m: String| problem(&["virtual_rules", &n, f], m);
        if let (Some(a), Some(b)) = (r.from, r.to) {
            if a.0.addr().is_ipv6() != b.0.addr().is_ipv6() {
                bad("to", "is not of the family of from".into());
            }
        }
        if let (Some(p), Some(f)) = (r.from.or(r.to), r.family) {
            if p.0.addr().is_ipv6() != (f == RuleFamily::Ipv6) {
                bad("family", "is not the family of from/to".into());
            }
        }
        for (f, dev) in [("iif", &r.iif), ("oif", &r.oif)] {
            if dev.as_ref().is_some_and(|d| !is_interface_name(d)) {
                bad(
                    f,
                    format!("{:?} is not an interface name", dev.as_deref().unwrap_or("")),
                );
            }
        }
        if r.priority == 0 {
            bad(
                "priority",
                "must be 1..4294967295 (0 is the local table's rule)".into(),
            );
        }
        if r.fwmask.is_some() && r.fwmark.is_none() {
            bad("fwmask", "is only used with fwmark".into());
        }
        match (r.action, r.table) {
            (RuleAction::Table, None) => bad("table", "is required for a rule of type table".into()),
            (RuleAction::Table, Some(0)) => bad("table", "must be 1..4294967295".into()),
            (RuleAction::Table, Some(_)) => {}
            (a, Some(_)) => bad("table", format!("a {a:?} rule has no table").to_lowercase()),
            (_, None) => {}
        }
    }
}
