//! MLD reports from IPv6 virtual MACs, moved to the base interface as keepalived
//! moves them (vrrp_nftables.c, `setup_rule_move_igmp`). An IPv6 instance with
//! `use_vmac` joins ff02::12 on its macvlan, and the macvlan holds the base's
//! link-local address (to send from) and so its solicited-node group: the kernel
//! reports both from the macvlan, with the virtual MAC as source, on the backup
//! too. A switch then learns the master's MAC on the backup's port and sends the
//! VIP's traffic there until the master's next advert. IPv4 has a sysctl for its
//! link-local groups (net/igmp.rs); IPv6 has none, so one nftables table,
//! `ip6 hafront_vmac`, sends each MLD report that leaves such a macvlan out of its
//! base interface instead (`dup`: the node's own MAC, and the membership still
//! reaches snooping switches, which forward ff02::12 only to ports that reported
//! it, RFC 4541 §3) and drops it on the macvlan. The link-local address also
//! makes the kernel send a router solicitation from the macvlan: dropped too
//! (keepalived's `setup_rule_drop_router_solicit`).
//!
//! Pure planner ([`MldPlan::from_config`], [`MldPlan::script`]) plus the nft
//! executor (net/nft.rs). The rules match the interfaces by name, so they can be
//! installed before the macvlans exist; the base is resolved when the table is
//! written (a base made anew afterwards needs a reload).

use std::collections::BTreeMap;

use crate::config::Config;

pub const TABLE: &str = "hafront_vmac";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MldPlan {
    /// macvlan name -> base interface.
    pub moves: BTreeMap<String, String>,
    /// Instances left out: a name nft cannot quote (a `"` in it).
    pub unquotable: Vec<String>,
}

impl MldPlan {
    /// The IPv6 instances whose adverts leave from a macvlan (`use_vmac`, not
    /// `vmac_xmit_base`, which sends and joins on the base; not `use_ipvlan`,
    /// which has the base's MAC anyway).
    pub fn from_config(cfg: &Config) -> MldPlan {
        let mut plan = MldPlan::default();
        for (name, i) in &cfg.vrrp.instances {
            if !i.use_vmac || i.use_ipvlan || i.vmac_xmit_base || !i.family().is_ipv6() {
                continue;
            }
            let Some(vmac) = i.vmac_ifname() else { continue };
            if super::nft::quotable(&vmac) && super::nft::quotable(&i.interface) {
                plan.moves.insert(vmac, i.interface.clone());
            } else {
                plan.unquotable.push(name.clone());
            }
        }
        plan
    }

    pub fn is_empty(&self) -> bool {
        self.moves.is_empty()
    }

    /// An `nft -f` script that replaces the table, or only removes it when the
    /// plan is empty (as net/accept.rs).
    pub fn script(&self) -> String {
        let mut s = format!("table ip6 {TABLE}\ndelete table ip6 {TABLE}\n");
        if self.is_empty() {
            return s;
        }
        s.push_str(&format!("table ip6 {TABLE} {{\n"));
        s.push_str("  chain mld_out {\n    type filter hook output priority filter; policy accept;\n");
        for (vmac, base) in &self.moves {
            s.push_str(&format!(
                "    oifname \"{vmac}\" icmpv6 type {{ mld-listener-report, mld2-listener-report }} \
                 dup to ip6 daddr device \"{base}\" drop\n"
            ));
            // The link-local address makes the kernel solicit routers from the
            // macvlan too; the base solicits for the node already.
            s.push_str(&format!(
                "    oifname \"{vmac}\" icmpv6 type nd-router-solicit drop\n"
            ));
        }
        s.push_str("  }\n}\n");
        s
    }
}

/// Installs the plan (an empty one removes the table; without nft that is not
/// an error).
pub async fn apply(plan: &MldPlan) -> Result<(), super::nft::NftError> {
    super::nft::run(&plan.script(), plan.is_empty()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_toml as cfg;

    #[test]
    fn only_ipv6_instances_sending_from_a_macvlan() {
        let c = cfg(r#"
[vrrp.instances.v6]
interface = "eth0"
vrid = 52
use_vmac = true
virtual_ips = ["2001:db8::100/64"]
[vrrp.instances.v6named]
interface = "eth1"
vrid = 53
use_vmac = true
vmac_name = "vm53"
virtual_ips = ["2001:db8:1::100/64"]
[vrrp.instances.v6base]
interface = "eth0"
vrid = 54
use_vmac = true
vmac_xmit_base = true
virtual_ips = ["2001:db8::101/64"]
[vrrp.instances.v4]
interface = "eth0"
vrid = 51
use_vmac = true
virtual_ips = ["192.0.2.100/24"]
[vrrp.instances.plain6]
interface = "eth0"
vrid = 55
virtual_ips = ["2001:db8::102/64"]
"#);
        let plan = MldPlan::from_config(&c);
        assert_eq!(
            plan.moves
                .iter()
                .map(|(v, b)| format!("{v}>{b}"))
                .collect::<Vec<_>>(),
            ["vm53>eth1", "vrrp6.52>eth0"]
        );
        let s = plan.script();
        assert!(
            s.contains(
                "oifname \"vrrp6.52\" icmpv6 type { mld-listener-report, mld2-listener-report } \
                 dup to ip6 daddr device \"eth0\" drop"
            ),
            "{s}"
        );
        assert!(
            s.contains("oifname \"vm53\" icmpv6 type nd-router-solicit drop"),
            "{s}"
        );
        assert!(
            s.starts_with("table ip6 hafront_vmac\ndelete table ip6 hafront_vmac\n"),
            "{s}"
        );
    }

    #[test]
    fn no_such_instance_only_removes() {
        let c = cfg(r#"
[vrrp.instances.v4]
interface = "eth0"
vrid = 51
use_vmac = true
virtual_ips = ["192.0.2.100/24"]
"#);
        let plan = MldPlan::from_config(&c);
        assert!(plan.is_empty());
        assert_eq!(
            plan.script(),
            "table ip6 hafront_vmac\ndelete table ip6 hafront_vmac\n"
        );
    }

    #[test]
    fn a_name_nft_cannot_quote_is_left_out() {
        let c = cfg(r#"
[vrrp.instances.v6]
interface = "eth0"
vrid = 52
use_vmac = true
vmac_name = 'v"6'
virtual_ips = ["2001:db8::100/64"]
"#);
        let plan = MldPlan::from_config(&c);
        assert!(plan.is_empty());
        assert_eq!(plan.unquotable, ["v6"]);
    }
}
