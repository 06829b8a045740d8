//! RFC 5798 Accept_Mode = False (§6.4.3: a master that is not the address owner
//! "MUST NOT accept" packets addressed to the VIPs), done as keepalived's
//! `no_accept` does: a firewall drop. One nftables table, `inet hafront`, holds the
//! VIPs of every instance with `accept = false`. The rule is static: while a node
//! is backup the VIP is not a local address, so nothing reaches the input hook and
//! the rule is inert; once the VIP is added, the rule applies. That keeps the
//! filter out of the failover path (no nft call during a transition).
//!
//! Pure planner (`AcceptPlan::from_config`, `AcceptPlan::script`) plus a thin
//! executor (`apply`), which replaces the whole table atomically with `nft -f -`.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::Config;

pub const TABLE: &str = "hafront";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AcceptPlan {
    pub v4: BTreeSet<Ipv4Addr>,
    pub v6: BTreeSet<Ipv6Addr>,
}

impl AcceptPlan {
    pub fn from_config(cfg: &Config) -> AcceptPlan {
        let mut plan = AcceptPlan::default();
        // The address owner (priority 255) always accepts: the addresses are its own.
        for inst in cfg.vrrp.instances.values().filter(|i| !i.accept && !i.is_owner()) {
            for vip in &inst.virtual_ips {
                match vip.addr() {
                    IpAddr::V4(a) => plan.v4.insert(a),
                    IpAddr::V6(a) => plan.v6.insert(a),
                };
            }
        }
        plan
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// An `nft -f` script that replaces the table (or just removes it when the plan
    /// is empty). `table X; delete table X` makes the deletion valid whether or not
    /// the table exists, and the whole script is one transaction.
    pub fn script(&self) -> String {
        let mut s = format!("table inet {TABLE}\ndelete table inet {TABLE}\n");
        if self.is_empty() {
            return s;
        }
        let list = |v: Vec<String>| {
            if v.is_empty() {
                String::new()
            } else {
                format!(" elements = {{ {} }};", v.join(", "))
            }
        };
        s.push_str(&format!("table inet {TABLE} {{\n"));
        s.push_str(&format!(
            "  set no_accept_v4 {{ type ipv4_addr;{} }}\n",
            list(self.v4.iter().map(|a| a.to_string()).collect())
        ));
        s.push_str(&format!(
            "  set no_accept_v6 {{ type ipv6_addr;{} }}\n",
            list(self.v6.iter().map(|a| a.to_string()).collect())
        ));
        s.push_str("  chain input {\n    type filter hook input priority filter; policy accept;\n");
        s.push_str("    ip daddr @no_accept_v4 drop\n");
        // Neighbour discovery for the VIP must still work (ARP is not IP, so IPv4
        // needs no such rule): the master answers for the VIP and forwards.
        s.push_str(
            "    ip6 daddr @no_accept_v6 icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept\n",
        );
        s.push_str("    ip6 daddr @no_accept_v6 drop\n  }\n}\n");
        s
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("cannot run nft (accept = false needs nftables): {0}")]
    Spawn(std::io::Error),
    #[error("nft refused the accept-mode table: {0}")]
    Nft(String),
}

/// Installs the plan. An empty plan removes the table (left over from an earlier
/// run, or no longer wanted after a reload); without nft that is not an error.
pub async fn apply(plan: &AcceptPlan) -> Result<(), AcceptError> {
    super::nft::run(&plan.script(), plan.is_empty())
        .await
        .map_err(|e| match e {
            super::nft::NftError::Spawn(e) => AcceptError::Spawn(e),
            super::nft::NftError::Refused(e) => AcceptError::Nft(e),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_toml as cfg;

    #[test]
    fn only_non_owner_no_accept_instances() {
        let c = cfg(r#"
[vrrp.instances.a]
interface = "eth0"
vrid = 1
accept = false
virtual_ips = ["192.0.2.100/24", "2001:db8::100/64"]
[vrrp.instances.b]
interface = "eth0"
vrid = 2
virtual_ips = ["192.0.2.101/24"]
[vrrp.instances.owner]
interface = "eth0"
vrid = 3
priority = 255
accept = false
virtual_ips = ["192.0.2.102/24"]
"#);
        let plan = AcceptPlan::from_config(&c);
        assert_eq!(
            plan.v4.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            ["192.0.2.100"]
        );
        assert_eq!(
            plan.v6.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            ["2001:db8::100"]
        );
        let s = plan.script();
        assert!(
            s.contains("set no_accept_v4 { type ipv4_addr; elements = { 192.0.2.100 }; }"),
            "{s}"
        );
        assert!(s.contains("ip6 daddr @no_accept_v6 drop"), "{s}");
    }

    #[test]
    fn empty_plan_only_removes() {
        let s = AcceptPlan::default().script();
        assert_eq!(s, "table inet hafront\ndelete table inet hafront\n");
    }
}
