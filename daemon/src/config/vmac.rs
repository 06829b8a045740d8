//! VIPs on virtual MAC interfaces of their own (keepalived's `use_vmac_addr`
//! and the `use_vmac` of a VIP line; vrrp.c, vrrp_complete_instance): a VIP on
//! another interface than the instance's (`vip_options.dev`), or of the other
//! address family, goes on a private macvlan of its interface with the virtual
//! MAC of its family (00-00-5E-00-01-{VRID}, 00-00-5E-00-02-{VRID} for IPv6),
//! one per interface and family, named as keepalived's create_vmac_name does.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

use super::routes::vip_options;
use super::schema::{InstanceConfig, VrrpConfig};
use super::validate::{is_interface_name, Problem};

/// Linux IFNAMSIZ: names are at most 15 bytes.
const IFNAMSIZ: usize = 16;

/// The prefix when `vmac_addr_prefix` is not set (keepalived's default).
pub const DEFAULT_PREFIX: &str = "vrrp";

/// `{prefix}{num}.{vrid}`, the prefix cut so that the name fits IFNAMSIZ
/// (keepalived's snprintf("%.*s...")).
fn vmac_name(prefix: &str, num: Option<u16>, vrid: u8) -> String {
    let tail = match num {
        Some(n) => format!("{n}.{vrid}"),
        None => format!(".{vrid}"),
    };
    let room = (IFNAMSIZ - 1).saturating_sub(tail.len());
    let mut cut = prefix.len().min(room);
    while !prefix.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{tail}", &prefix[..cut])
}

/// keepalived's create_vmac_name (vrrp.c): `{prefix}.{vrid}` if no other name
/// in use, then `{prefix}1.{vrid}`, `{prefix}2.{vrid}`...; for IPv6 `{prefix}6.{vrid}`
/// is tried second (and skipped in the count).
pub fn create_vmac_name(prefix: &str, vrid: u8, v6: bool, in_use: &dyn Fn(&str) -> bool) -> String {
    let mut num: Option<u16> = None;
    loop {
        let name = vmac_name(prefix, num, vrid);
        // u16: keepalived's unsigned short; a name is found long before.
        if !in_use(&name) || num == Some(u16::MAX) {
            return name;
        }
        num = Some(match (v6, num) {
            (true, None) => 6,
            (true, Some(6)) => 1,
            (true, Some(5)) => 7,
            (_, None) => 1,
            (_, Some(n)) => n + 1,
        });
    }
}

/// One macvlan made for VIPs of an instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddrVmac {
    pub name: String,
    /// The interface it is made on (the VIPs' `dev`, or the instance's).
    pub base: String,
    pub ipv6: bool,
    /// The VIPs (of `virtual_ips` and `virtual_ips_excluded`) it holds.
    pub vips: Vec<IpNet>,
}

/// The VIPs of `i` that go on a macvlan of their own, by (interface, IPv6), in
/// the order of their first VIP (keepalived's rule, vrrp_complete_instance).
fn grouped(i: &InstanceConfig) -> Vec<(String, bool, Vec<IpNet>)> {
    let options = vip_options(i);
    let v6 = i.family().is_ipv6();
    let mut out: Vec<(String, bool, Vec<IpNet>)> = Vec::new();
    for vip in i.virtual_ips.iter().chain(&i.virtual_ips_excluded) {
        let o = options.get(vip).cloned().unwrap_or_default();
        let own = o.dev.as_deref().is_none_or(|d| d == i.interface);
        let same_family = vip.addr().is_ipv6() == v6;
        let on_vmac = if own {
            // Same family on the instance's macvlan (use_vmac) already.
            !(i.use_vmac && same_family) && (o.use_vmac || (i.vmac_addr && !same_family))
        } else {
            o.use_vmac || i.vmac_addr
        };
        if !on_vmac {
            continue;
        }
        let base = o.dev.unwrap_or_else(|| i.interface.clone());
        let ipv6 = vip.addr().is_ipv6();
        match out.iter_mut().find(|(b, f, _)| *b == base && *f == ipv6) {
            Some((_, _, vips)) => vips.push(*vip),
            None => out.push((base, ipv6, vec![*vip])),
        }
    }
    out
}

/// The macvlans of every instance's VIPs, by instance, named as keepalived's
/// create_vmac_name with `vmac_addr_prefix`: the first of `{prefix}.{vrid}`,
/// `{prefix}1.{vrid}`... not used by an interface or macvlan the configuration
/// names (instances in name order; keepalived takes them in file order and also
/// skips the names of the host's other interfaces).
pub fn plan(vrrp: &VrrpConfig) -> BTreeMap<String, Vec<AddrVmac>> {
    let prefix = vrrp.vmac_addr_prefix.as_deref().unwrap_or(DEFAULT_PREFIX);
    let mut used: BTreeSet<String> = BTreeSet::new();
    for i in vrrp.instances.values() {
        used.insert(i.interface.clone());
        used.extend(i.vmac_ifname());
        used.extend(i.vip_options.values().filter_map(|o| o.dev.clone()));
    }
    let mut out = BTreeMap::new();
    for (name, i) in &vrrp.instances {
        let mut vmacs = Vec::new();
        for (base, ipv6, vips) in grouped(i) {
            let name = create_vmac_name(prefix, i.vrid, ipv6, &|n| used.contains(n));
            used.insert(name.clone());
            vmacs.push(AddrVmac {
                name,
                base,
                ipv6,
                vips,
            });
        }
        if !vmacs.is_empty() {
            out.insert(name.clone(), vmacs);
        }
    }
    out
}

/// `vmac_addr_prefix`, and the virtual MACs of `vmac_addr` / `vip_options.use_vmac`:
/// one interface cannot carry two macvlans with the same MAC (keepalived shares
/// one between instances of the same VRID; hafront refuses).
pub fn validate(vrrp: &VrrpConfig, problems: &mut Vec<Problem>) {
    let mut problem = |key: &[&str], message: String| {
        problems.push(Problem {
            key: key.iter().map(|s| s.to_string()).collect(),
            message,
        })
    };
    if let Some(p) = &vrrp.vmac_addr_prefix {
        if !is_interface_name(p) {
            problem(
                &["vrrp", "vmac_addr_prefix"],
                format!("{p:?} is not the start of an interface name"),
            );
        }
    }
    // (interface, VRID, IPv6) -> who makes a macvlan with that virtual MAC.
    let mut macs: BTreeMap<(String, u8, bool), String> = BTreeMap::new();
    for (name, i) in &vrrp.instances {
        if i.use_vmac && !i.use_ipvlan {
            macs.insert(
                (i.interface.clone(), i.vrid, i.family().is_ipv6()),
                format!("instance {name:?} (use_vmac)"),
            );
        }
    }
    for (name, i) in &vrrp.instances {
        let v6 = i.family().is_ipv6();
        for (k, o) in &i.vip_options {
            let own = o.dev.as_deref().is_none_or(|d| d == i.interface);
            let same_family = super::schema::parse_vip(k).is_ok_and(|v| v.addr().is_ipv6() == v6);
            if o.use_vmac && own && i.use_vmac && same_family {
                problem(
                    &["vrrp", "instances", name, "vip_options", k, "use_vmac"],
                    "the VIP is on the instance's macvlan already (use_vmac)".into(),
                );
            }
        }
        for (base, ipv6, _) in grouped(i) {
            let key = (base.clone(), i.vrid, ipv6);
            if let Some(other) = macs.get(&key) {
                problem(
                    &["vrrp", "instances", name, "vmac_addr"],
                    format!(
                        "{other} makes a macvlan with the virtual MAC of VRID {} ({}) on {base} already",
                        i.vrid,
                        if ipv6 { "IPv6" } else { "IPv4" }
                    ),
                );
            } else {
                macs.insert(key, format!("instance {name:?}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_keepalived() {
        let none = |_: &str| false;
        assert_eq!(create_vmac_name("vrrp", 51, false, &none), "vrrp.51");
        assert_eq!(create_vmac_name("vrrp", 51, true, &none), "vrrp.51");
        let taken = |n: &str| ["vrrp.51", "vrrp1.51"].contains(&n);
        assert_eq!(create_vmac_name("vrrp", 51, false, &taken), "vrrp2.51");
        // IPv6: vrrp6 second, then 1..5, 7...
        assert_eq!(create_vmac_name("vrrp", 51, true, &taken), "vrrp6.51");
        let taken = |n: &str| {
            [
                "vrrp.9", "vrrp6.9", "vrrp1.9", "vrrp2.9", "vrrp3.9", "vrrp4.9", "vrrp5.9",
            ]
            .contains(&n)
        };
        assert_eq!(create_vmac_name("vrrp", 9, true, &taken), "vrrp7.9");
        // A long prefix is cut to fit 15 bytes.
        assert_eq!(
            create_vmac_name("averyveryverylong", 200, false, &none),
            "averyveryve.200"
        );
        let taken = |n: &str| n == "averyveryve.200";
        assert_eq!(
            create_vmac_name("averyveryverylong", 200, false, &taken),
            "averyveryv1.200"
        );
        assert_eq!(create_vmac_name("vip", 7, false, &none), "vip.7");
    }

    fn vrrp(toml_text: &str) -> VrrpConfig {
        toml::from_str(toml_text).expect("valid")
    }

    /// keepalived's rule: other interface or other family with use_vmac_addr; a
    /// VIP's own use_vmac; the instance's macvlan keeps its family's VIPs on it.
    #[test]
    fn which_vips_and_names() {
        let v = vrrp(
            r#"
vmac_addr_prefix = "va"
[instances.web]
interface = "eth0"
vrid = 51
use_vmac = true
vmac_addr = true
virtual_ips = ["192.0.2.100/24", "198.51.100.10/24", "2001:db8::10/64", "198.51.100.11/24"]
virtual_ips_excluded = ["203.0.113.9/24"]
vip_options."198.51.100.10/24" = { dev = "eth1" }
vip_options."198.51.100.11/24" = { dev = "eth1" }
vip_options."203.0.113.9/24" = { dev = "eth2" }
[instances.db]
interface = "eth0"
vrid = 52
virtual_ips = ["192.0.2.101/24", "192.0.2.102/24", "198.51.100.12/24"]
vip_options."192.0.2.102/24" = { use_vmac = true }
vip_options."198.51.100.12/24" = { dev = "eth1" }
"#,
        );
        let p = plan(&v);
        let names = |inst: &str| -> Vec<(String, String, bool, Vec<String>)> {
            p[inst]
                .iter()
                .map(|a| {
                    (
                        a.name.clone(),
                        a.base.clone(),
                        a.ipv6,
                        a.vips.iter().map(|v| v.to_string()).collect(),
                    )
                })
                .collect()
        };
        // db first (name order); a VIP on another dev without vmac_addr stays there.
        assert_eq!(
            names("db"),
            [(
                "va.52".into(),
                "eth0".into(),
                false,
                vec!["192.0.2.102/24".into()]
            )]
        );
        assert_eq!(
            names("web"),
            [
                (
                    "va.51".into(),
                    "eth1".into(),
                    false,
                    vec!["198.51.100.10/24".into(), "198.51.100.11/24".into()]
                ),
                // IPv6: {prefix}6 second, as keepalived.
                (
                    "va6.51".into(),
                    "eth0".into(),
                    true,
                    vec!["2001:db8::10/64".into()]
                ),
                (
                    "va1.51".into(),
                    "eth2".into(),
                    false,
                    vec!["203.0.113.9/24".into()]
                ),
            ]
        );
        let mut problems = Vec::new();
        validate(&v, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn default_prefix_skips_the_instances_vmac() {
        let v = vrrp(
            r#"
[instances.web]
interface = "eth0"
vrid = 51
use_vmac = true
vmac_addr = true
virtual_ips = ["192.0.2.100/24", "198.51.100.10/24"]
vip_options."198.51.100.10/24" = { dev = "eth1" }
"#,
        );
        assert_eq!(plan(&v)["web"][0].name, "vrrp1.51");
    }

    #[test]
    fn refused() {
        let v = vrrp(
            r#"
vmac_addr_prefix = "not a name"
[instances.web]
interface = "eth0"
vrid = 51
use_vmac = true
virtual_ips = ["192.0.2.100/24"]
vip_options."192.0.2.100/24" = { use_vmac = true }
[instances.other]
interface = "eth1"
vrid = 51
vmac_addr = true
virtual_ips = ["198.51.100.10/24", "192.0.2.101/24"]
vip_options."192.0.2.101/24" = { dev = "eth0" }
"#,
        );
        let mut problems = Vec::new();
        validate(&v, &mut problems);
        let text: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.key.join("."), p.message))
            .collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(text[0].starts_with("vrrp.vmac_addr_prefix: "), "{text:?}");
        assert!(text
            .iter()
            .any(|t| t.contains("web.vip_options.192.0.2.100/24.use_vmac")));
        assert!(text.iter().any(|t| t.contains(
            "other.vmac_addr: instance \"web\" (use_vmac) makes a macvlan with the virtual MAC of VRID 51 (IPv4) on eth0"
        )));
    }
}
