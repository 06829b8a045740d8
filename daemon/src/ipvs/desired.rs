//! From configuration (and the node's VRRP roles and real-server health) to the
//! desired IPVS table. Pure, so every rule is a unit test.

use super::constants::*;
use super::model::{DestSpec, Forward, ServiceKey, ServiceSpec, Table};
use crate::config::ipvs::{IpvsConfig, IpvsServiceConfig, RealServerConfig, SchedulerFlag, TunnelChecksum};
pub use crate::shared::{Health, Roles};

/// The desired table. `actual` is the kernel's table (for services whose instance
/// is unsettled); `healthy(service, real_server)` is the health-check verdict.
pub fn desired_table(
    cfg: &IpvsConfig,
    roles: &Roles,
    actual: &Table,
    health: impl Fn(&str, &RealServerConfig) -> Health,
) -> Table {
    let mut table = Table::default();
    for (name, s) in &cfg.services {
        let Some(spec) = service_spec(s) else { continue };
        if let Some(inst) = &s.master_of {
            if roles.unsettled.contains(inst) {
                if let Some(entry) = actual.services.get(&spec.key) {
                    table.services.insert(spec.key, entry.clone());
                }
                continue;
            }
            if !roles.masters.contains(inst) {
                continue;
            }
        }
        let mut dests = Vec::new();
        let mut live_weight: u64 = 0;
        let mut failed = Vec::new();
        for rs in &s.real_servers {
            let mut d = dest_spec(s, rs);
            let h = health(name, rs);
            if h.up {
                d.weight = h.weight.unwrap_or(rs.weight);
                live_weight += u64::from(d.weight);
                dests.push(d);
            } else {
                failed.push(d);
            }
        }
        if live_weight < u64::from(s.quorum) {
            if let Some(sorry) = s.sorry_server {
                // Quorum lost: the sorry server takes the traffic instead.
                dests.clear();
                dests.push(DestSpec::new(sorry, s.forwarding, 1));
            }
        }
        if s.inhibit_on_failure {
            dests.extend(failed.into_iter().map(|mut d| {
                d.weight = 0;
                d
            }));
        }
        table.insert(spec, dests);
    }
    table
}

/// The service's kernel settings; `None` only for a configuration that validation
/// rejects (no address and no fwmark).
pub fn service_spec(s: &IpvsServiceConfig) -> Option<ServiceSpec> {
    let ipv6 = s.is_ipv6();
    let key = match (s.address, s.fwmark) {
        (Some(addr), _) => ServiceKey::Addr {
            protocol: s.protocol,
            addr,
        },
        (None, Some(mark)) => ServiceKey::Fwmark { ipv6, mark },
        (None, None) => return None,
    };
    let mut flags = 0;
    if s.persistence.is_some() {
        flags |= IP_VS_SVC_F_PERSISTENT;
    }
    if s.one_packet {
        flags |= IP_VS_SVC_F_ONEPACKET;
    }
    for f in &s.scheduler_flags {
        flags |= match f {
            SchedulerFlag::ShFallback => IP_VS_SVC_F_SCHED_SH_FALLBACK,
            SchedulerFlag::ShPort => IP_VS_SVC_F_SCHED_SH_PORT,
            SchedulerFlag::MhFallback => IP_VS_SVC_F_SCHED_MH_FALLBACK,
            SchedulerFlag::MhPort => IP_VS_SVC_F_SCHED_MH_PORT,
        };
    }
    let netmask = match (s.persistence_prefix, ipv6) {
        (None, _) => ServiceSpec::default_netmask(ipv6),
        (Some(plen), true) => u32::from(plen),
        (Some(plen), false) => {
            let mask: u32 = if plen == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(plen.min(32)))
            };
            u32::from_ne_bytes(mask.to_be_bytes())
        }
    };
    Some(ServiceSpec {
        key,
        scheduler: s.scheduler.clone(),
        flags,
        timeout: s.persistence.map_or(0, |d| d.as_secs() as u32),
        netmask,
        pe_name: s.persistence_engine.clone(),
    })
}

fn dest_spec(s: &IpvsServiceConfig, rs: &RealServerConfig) -> DestSpec {
    let forward = rs.forwarding.unwrap_or(s.forwarding);
    let mut d = DestSpec::new(rs.address, forward, rs.weight);
    d.upper_threshold = rs.upper_threshold;
    d.lower_threshold = rs.lower_threshold;
    if forward == Forward::Tun {
        d.tunnel_type = rs.tunnel_type;
        d.tunnel_port = rs.tunnel_port;
        d.tunnel_flags = match rs.tunnel_checksum {
            TunnelChecksum::None => IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM,
            TunnelChecksum::Csum => IP_VS_TUNNEL_ENCAP_FLAG_CSUM,
            TunnelChecksum::Remcsum => IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM,
        };
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ipvs::IpvsConfig;
    use std::collections::BTreeSet;
    use std::net::SocketAddr;

    fn cfg(toml_text: &str) -> IpvsConfig {
        #[derive(serde::Deserialize)]
        struct W {
            ipvs: IpvsConfig,
        }
        toml::from_str::<W>(toml_text).unwrap().ipvs
    }

    const WEB: &str = r#"
[ipvs.services.web]
address = "192.0.2.100:80"
scheduler = "wrr"
forwarding = "dr"
persistence = "50s"
persistence_prefix = 24
quorum = 2
sorry_server = "192.0.2.50:80"
master_of = "web"
real_servers = [ { address = "192.0.2.11:80", weight = 1 }, { address = "192.0.2.12:80", weight = 2 } ]
"#;

    fn masters(names: &[&str]) -> Roles {
        Roles {
            masters: names.iter().map(|s| s.to_string()).collect(),
            unsettled: BTreeSet::new(),
        }
    }

    #[test]
    fn installed_only_while_master() {
        let c = cfg(WEB);
        assert!(
            desired_table(&c, &masters(&[]), &Table::default(), |_, _| Health::UP)
                .services
                .is_empty()
        );
        let t = desired_table(&c, &masters(&["web"]), &Table::default(), |_, _| Health::UP);
        let e = t.services.values().next().unwrap();
        assert_eq!(e.spec.scheduler, "wrr");
        assert_eq!(e.spec.flags, IP_VS_SVC_F_PERSISTENT);
        assert_eq!(e.spec.timeout, 50);
        assert_eq!(e.spec.netmask.to_ne_bytes(), [255, 255, 255, 0]);
        assert_eq!(e.dests.len(), 2);
        assert!(e.dests.values().all(|d| d.forward == Forward::Dr));
    }

    #[test]
    fn unsettled_instance_keeps_what_the_kernel_has() {
        let c = cfg(WEB);
        let mut roles = masters(&[]);
        roles.unsettled.insert("web".into());
        assert!(desired_table(&c, &roles, &Table::default(), |_, _| Health::UP)
            .services
            .is_empty());
        let installed = desired_table(&c, &masters(&["web"]), &Table::default(), |_, _| Health::UP);
        assert_eq!(
            desired_table(&c, &roles, &installed, |_, _| Health::UP),
            installed
        );
    }

    #[test]
    fn quorum_lost_uses_the_sorry_server() {
        let c = cfg(WEB);
        let down: SocketAddr = "192.0.2.12:80".parse().unwrap();
        let t = desired_table(&c, &masters(&["web"]), &Table::default(), |_, rs| {
            if rs.address != down {
                Health::UP
            } else {
                Health::DOWN
            }
        });
        let e = t.services.values().next().unwrap();
        // live weight 1 < quorum 2
        assert_eq!(
            e.dests.keys().map(|a| a.to_string()).collect::<Vec<_>>(),
            ["192.0.2.50:80"]
        );
    }

    #[test]
    fn dynamic_weight_from_a_check() {
        let c = cfg(WEB);
        let t = desired_table(&c, &masters(&["web"]), &Table::default(), |_, rs| Health {
            up: true,
            weight: (rs.address.port() == 80 && rs.address.ip().to_string() == "192.0.2.12").then_some(7),
        });
        let e = t.services.values().next().unwrap();
        assert_eq!(e.dests[&"192.0.2.12:80".parse().unwrap()].weight, 7);
        assert_eq!(e.dests[&"192.0.2.11:80".parse().unwrap()].weight, 1);
    }

    #[test]
    fn inhibit_keeps_failed_servers_at_weight_zero() {
        let c = cfg(r#"
[ipvs.services.web]
address = "192.0.2.100:80"
inhibit_on_failure = true
real_servers = [ { address = "192.0.2.11:80", weight = 3 }, { address = "192.0.2.12:80", weight = 2 } ]
"#);
        let down: SocketAddr = "192.0.2.12:80".parse().unwrap();
        let t = desired_table(&c, &masters(&[]), &Table::default(), |_, rs| {
            if rs.address != down {
                Health::UP
            } else {
                Health::DOWN
            }
        });
        let e = t.services.values().next().unwrap();
        assert_eq!(e.dests[&down].weight, 0);
        assert_eq!(e.dests[&"192.0.2.11:80".parse().unwrap()].weight, 3);
    }

    #[test]
    fn fwmark_ipv6_and_tunnels() {
        let c = cfg(r#"
[ipvs.services.mark]
fwmark = 7
family = "ipv6"
scheduler = "sh"
scheduler_flags = ["sh-fallback", "sh-port"]
forwarding = "tun"
real_servers = [ { address = "[2001:db8::11]:0", tunnel_type = "gue", tunnel_port = 6080, tunnel_checksum = "csum" } ]
"#);
        let t = desired_table(&c, &masters(&[]), &Table::default(), |_, _| Health::UP);
        let e = t.services.values().next().unwrap();
        assert_eq!(e.spec.key, ServiceKey::Fwmark { ipv6: true, mark: 7 });
        assert_eq!(
            e.spec.flags,
            IP_VS_SVC_F_SCHED_SH_FALLBACK | IP_VS_SVC_F_SCHED_SH_PORT
        );
        assert_eq!(e.spec.netmask, 128);
        let d = e.dests.values().next().unwrap();
        assert_eq!(
            (d.tunnel_port, d.tunnel_flags),
            (6080, IP_VS_TUNNEL_ENCAP_FLAG_CSUM)
        );
    }
}
