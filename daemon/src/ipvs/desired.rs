//! From configuration (and the node's VRRP roles and real-server health) to the
//! desired IPVS table. Pure, so every rule is a unit test.

use super::constants::*;
use std::collections::HashMap;

use super::model::{DestSpec, Forward, ServiceKey, ServiceSpec, Table};
use crate::config::ipvs::{IpvsConfig, IpvsServiceConfig, RealServerConfig, SchedulerFlag, TunnelChecksum};
pub use crate::shared::{Health, Roles};
use hafront_ipvs::written::Touched;

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
        match installed(s, roles) {
            Installed::No => {}
            Installed::AsIs => {
                if let Some(entry) = actual.services.get(&spec.key) {
                    table.services.insert(spec.key, entry.clone());
                }
            }
            Installed::Yes => table.insert(spec, service_dests(name, s, &health)),
        }
    }
    table
}

enum Installed {
    No,
    Yes,
    /// Its instance is unsettled: left as the kernel has it.
    AsIs,
}

fn installed(s: &IpvsServiceConfig, roles: &Roles) -> Installed {
    match &s.master_of {
        Some(inst) if roles.unsettled.contains(inst) => Installed::AsIs,
        Some(inst) if !roles.masters.contains(inst) => Installed::No,
        _ => Installed::Yes,
    }
}

/// One installed service's real servers (with the sorry server and the
/// inhibited ones).
fn service_dests(
    name: &str,
    s: &IpvsServiceConfig,
    health: &impl Fn(&str, &RealServerConfig) -> Health,
) -> Vec<DestSpec> {
    let mut dests = Vec::new();
    let mut live_weight: u64 = 0;
    let mut failed = Vec::new();
    for rs in &s.real_servers {
        let h = health(name, rs);
        match real_server_dest(s, rs, h) {
            Some(d) if h.up => {
                live_weight += u64::from(d.weight);
                dests.push(d);
            }
            // Down and inhibited: weight 0, after the sorry server decision.
            Some(d) => failed.push(d),
            None => {}
        }
    }
    if live_weight < u64::from(s.quorum) {
        if let Some(sorry) = s.sorry_server {
            // Quorum lost: the sorry server takes the traffic instead.
            dests.clear();
            dests.push(DestSpec::new(sorry, s.forwarding, 1));
        }
    }
    dests.extend(failed);
    dests
}

/// A real server's entry given its health: `None` when it leaves the service
/// (down, without `inhibit_on_failure`).
fn real_server_dest(s: &IpvsServiceConfig, rs: &RealServerConfig, h: Health) -> Option<DestSpec> {
    let mut d = dest_spec(s, rs);
    if h.up {
        d.weight = h.weight.unwrap_or(rs.weight);
        Some(d)
    } else if s.inhibit_on_failure {
        d.weight = 0;
        Some(d)
    } else {
        None
    }
}

/// The desired table kept up to date event by event: a full build when the
/// configuration or the roles change (or after the kernel was read), and between
/// those, one real server at a time (`update`), so that a verdict or an API weight
/// change costs the same whatever the table's size.
#[derive(Default)]
pub struct Desired {
    /// Check name -> the real servers that follow it: (service name, index in
    /// `real_servers`).
    by_check: HashMap<String, Vec<(String, usize)>>,
    /// Real servers evaluated since start (what an event costs, for tests).
    pub visited: u64,
}

impl Desired {
    /// The whole table again, and the index of who follows which check.
    pub fn rebuild(
        &mut self,
        table: &mut Table,
        cfg: &IpvsConfig,
        roles: &Roles,
        actual: &Table,
        health: impl Fn(&str, &RealServerConfig) -> Health,
    ) {
        *table = desired_table(cfg, roles, actual, health);
        self.by_check.clear();
        for (name, s) in &cfg.services {
            self.visited += s.real_servers.len() as u64;
            for (i, rs) in s.real_servers.iter().enumerate() {
                if let Some(c) = &rs.check {
                    self.by_check
                        .entry(c.clone())
                        .or_default()
                        .push((name.clone(), i));
                }
            }
        }
    }

    /// The real servers whose health follows check `name`.
    pub fn following(&self, check: &str) -> &[(String, usize)] {
        self.by_check.get(check).map_or(&[], Vec::as_slice)
    }

    /// The real servers (service name, index) that follow any of `checks`.
    pub fn dirty(&self, checks: &[String]) -> Vec<(String, usize)> {
        checks
            .iter()
            .flat_map(|c| self.following(c).iter().cloned())
            .collect()
    }

    /// Real server `index` of service `name` has a new verdict or override: its
    /// entry in `table` follows (the whole service when it has a sorry server: one
    /// verdict can swap every real server for it). Returns what to plan; `None`
    /// when the service is not installed (or unsettled, left as the kernel has it).
    pub fn update(
        &mut self,
        table: &mut Table,
        cfg: &IpvsConfig,
        roles: &Roles,
        name: &str,
        index: usize,
        health: impl Fn(&str, &RealServerConfig) -> Health,
    ) -> Option<Touched> {
        let s = cfg.services.get(name)?;
        let rs = s.real_servers.get(index)?;
        let spec = service_spec(s)?;
        if !matches!(installed(s, roles), Installed::Yes) {
            return None;
        }
        let key = spec.key;
        if s.sorry_server.is_some() {
            self.visited += s.real_servers.len() as u64;
            table.insert(spec, service_dests(name, s, &health));
            return Some(Touched::Service(key));
        }
        self.visited += 1;
        let Some(entry) = table.services.get_mut(&key) else {
            // Installed but missing: the table was built without it; build it.
            self.visited += s.real_servers.len() as u64;
            table.insert(spec, service_dests(name, s, &health));
            return Some(Touched::Service(key));
        };
        match real_server_dest(s, rs, health(name, rs)) {
            Some(d) => entry.dests.insert(rs.address, d),
            None => entry.dests.remove(&rs.address),
        };
        Some(Touched::Dest(key, rs.address))
    }
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

    /// Leaving master, an instance's services stay while its VIPs are on the node
    /// (the VIP executor's `Remove` not yet run), and go once they are removed:
    /// VIPs before services. Followed by the roles alone, they went at once, and a
    /// VIP still on the node answered the clients with resets (issue 16).
    #[test]
    fn services_stay_until_the_vips_are_removed() {
        let c = cfg(WEB);
        let up = |_: &str, _: &RealServerConfig| Health::UP;
        let installed = desired_table(&c, &masters(&["web"]), &Table::default(), up);
        assert_eq!(installed.services.len(), 1);
        let held: crate::shared::VipsHeld = ["web".to_string()].into();
        let left = masters(&[]).with_vips_held(&held);
        assert_eq!(desired_table(&c, &left, &installed, up), installed);
        let removed = masters(&[]).with_vips_held(&Default::default());
        assert!(desired_table(&c, &removed, &installed, up).services.is_empty());
        // Another instance's VIPs keep nothing of `web`.
        let other = masters(&[]).with_vips_held(&["int".to_string()].into());
        assert!(desired_table(&c, &other, &installed, up).services.is_empty());
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

    /// `services` services of `reals` real servers, the first real server of each
    /// following check "flip"; `extra` is appended to every service.
    fn fleet(services: u32, reals: u32, extra: &str) -> IpvsConfig {
        let mut t = String::new();
        for s in 1..=services {
            t += &format!(
                "[ipvs.services.s{s}]\naddress = \"198.51.{}.{}:80\"\n{extra}\nreal_servers = [\n",
                s / 250,
                1 + s % 250
            );
            for r in 1..=reals {
                let check = if r == 1 { ", check = \"flip\"" } else { "" };
                t += &format!("  {{ address = \"192.0.2.{r}:80\"{check} }},\n");
            }
            t += "]\n";
        }
        cfg(&t)
    }

    #[test]
    fn a_flip_updates_one_real_server_whatever_the_tables_size() {
        // Issue 16: the cost of a verdict is counted in real servers evaluated; it
        // is 1 for 10 or 10,000 real servers, and the table equals a full build.
        for (services, reals) in [(1, 10), (100, 100)] {
            let c = fleet(services, reals, "");
            let roles = masters(&[]);
            let mut d = Desired::default();
            let mut table = Table::default();
            d.rebuild(&mut table, &c, &roles, &Table::default(), |_, _| Health::UP);
            assert_eq!(d.following("flip").len(), services as usize);
            let down = |_: &str, rs: &RealServerConfig| {
                if rs.check.is_some() {
                    Health::DOWN
                } else {
                    Health::UP
                }
            };
            let (name, index) = d.following("flip")[0].clone();
            let before = d.visited;
            let touched = d.update(&mut table, &c, &roles, &name, index, down);
            assert_eq!(d.visited - before, 1, "{services}x{reals}");
            let key = service_spec(&c.services[&name]).unwrap().key;
            let addr: SocketAddr = "192.0.2.1:80".parse().unwrap();
            assert_eq!(touched, Some(Touched::Dest(key, addr)));
            assert!(!table.services[&key].dests.contains_key(&addr));
            // Only that service's entry changed: the others still have it.
            assert_eq!(
                table
                    .services
                    .values()
                    .filter(|e| e.dests.contains_key(&addr))
                    .count(),
                services as usize - 1
            );
        }
    }

    #[test]
    fn updates_one_by_one_equal_a_full_build() {
        // Every kind of service (plain, inhibit, sorry server with quorum, a
        // master_of this node is not master of), every real server flipped in turn.
        for extra in [
            "",
            "inhibit_on_failure = true",
            "quorum = 3\nsorry_server = \"192.0.2.250:80\"",
            "master_of = \"other\"",
        ] {
            let c = fleet(3, 4, extra);
            let roles = masters(&[]);
            let mut d = Desired::default();
            let mut table = Table::default();
            d.rebuild(&mut table, &c, &roles, &Table::default(), |_, _| Health::UP);
            let mut down: BTreeSet<(String, SocketAddr)> = BTreeSet::new();
            let mut steps = Vec::new();
            for (name, s) in &c.services {
                for (i, rs) in s.real_servers.iter().enumerate() {
                    steps.push((name.clone(), i, rs.address));
                }
            }
            // Down one by one, then up one by one.
            for up in [false, true] {
                for (name, i, addr) in &steps {
                    if up {
                        down.remove(&(name.clone(), *addr));
                    } else {
                        down.insert((name.clone(), *addr));
                    }
                    let health = |n: &str, rs: &RealServerConfig| {
                        if down.contains(&(n.to_string(), rs.address)) {
                            Health::DOWN
                        } else {
                            Health::UP
                        }
                    };
                    let touched = d.update(&mut table, &c, &roles, name, *i, health);
                    assert_eq!(touched.is_none(), extra.starts_with("master_of"), "{extra}");
                    assert_eq!(
                        table,
                        desired_table(&c, &roles, &Table::default(), health),
                        "{extra}: after {name} {addr} up={up}"
                    );
                }
            }
        }
    }
}
