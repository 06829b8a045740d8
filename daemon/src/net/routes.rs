//! What a master holds besides its advertised VIPs ([`Extras`]): addresses on
//! other devices or kept out of the adverts, routes and policy rules.
//!
//! The planner ([`route_message`], [`rule_message`]) turns the configuration into
//! the netlink messages `ip route` / `ip rule` would send, with no I/O; the
//! executor (in the VIP executor's task, in order with the VIPs) sends them. An
//! add with NLM_F_EXCL says EEXIST for what is there, a delete ESRCH/ENOENT for
//! what is not: one request per item both checks and repairs, as for VIPs.

use std::net::IpAddr;
use std::time::Instant;

use ipnet::IpNet;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType as NlRouteType,
};
use rtnetlink::packet_route::rule::{RuleAction as NlRuleAction, RuleAttribute, RuleMessage};
use rtnetlink::packet_route::AddressFamily;
use tracing::{info, warn};

use super::error::{errno, NetError};
use super::link::Iface;
use super::vip::VipExecutor;
use crate::config::routes::{RouteType, RuleAction, VirtualRoute, VirtualRule, PROTO_KEEPALIVED};
use crate::shared::throttle::Throttle;
use crate::shared::Extras;

/// What to do with an instance's [`Extras`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtrasOp {
    /// Becoming master: add all. The announcements follow as `Announce`: the core
    /// emits one after each AddVips (announcing here too sent the first burst twice).
    Add,
    /// Leaving master, or starting as a non-master (stale ones): remove all.
    Remove,
    /// Every burst of a master's announcements.
    Announce { count: u32 },
    /// `garp.extra_if_all`: one announcement on each device of `vip_options.dev`
    /// other than the instance's interface (the first address there).
    AnnounceOtherDevices,
    /// Drift check: a master's tracked items must be there (re-added and
    /// counted); a non-master's tracked addresses must not (routes and rules
    /// are left alone: the same route may be the node's own while backup).
    Ensure { master: bool, announce: u32 },
}

/// The route message `ip route add|del` would send for `r`; `oif` is `dev`'s index.
pub fn route_message(r: &VirtualRoute, oif: Option<u32>, delete: bool) -> RouteMessage {
    let mut m = RouteMessage::default();
    let dst = r.to.0;
    m.header.address_family = family(dst.addr());
    m.header.destination_prefix_length = dst.prefix_len();
    // Tables past 255 go in RTA_TABLE only (RT_TABLE_UNSPEC in the header).
    m.header.table = u8::try_from(r.table).unwrap_or(0);
    m.header.protocol = RouteProtocol::from(r.proto.0);
    m.header.kind = match r.kind {
        RouteType::Unicast => NlRouteType::Unicast,
        RouteType::Blackhole => NlRouteType::BlackHole,
        RouteType::Unreachable => NlRouteType::Unreachable,
        RouteType::Prohibit => NlRouteType::Prohibit,
        RouteType::Throw => NlRouteType::Throw,
    };
    // ip(8): a delete matches any scope; a unicast route without a gateway is a
    // link route.
    m.header.scope = match (r.scope, delete) {
        (Some(s), _) => RouteScope::from(s.value()),
        (None, true) => RouteScope::NoWhere,
        (None, false) if r.kind == RouteType::Unicast && r.via.is_none() => RouteScope::Link,
        (None, false) => RouteScope::Universe,
    };
    if dst.prefix_len() > 0 {
        m.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(dst.addr())));
    }
    m.attributes.push(RouteAttribute::Table(r.table));
    if let Some(via) = r.via {
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(via)));
    }
    if let Some(oif) = oif {
        m.attributes.push(RouteAttribute::Oif(oif));
    }
    if let Some(src) = r.src {
        m.attributes
            .push(RouteAttribute::PrefSource(RouteAddress::from(src)));
    }
    if let Some(metric) = r.metric {
        m.attributes.push(RouteAttribute::Priority(metric));
    }
    m
}

/// The rule message `ip rule add|del` would send for `r`.
pub fn rule_message(r: &VirtualRule) -> RuleMessage {
    let mut m = RuleMessage::default();
    let v6 = r.is_ipv6();
    m.header.family = if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    m.header.action = match r.action {
        RuleAction::Table => NlRuleAction::ToTable,
        RuleAction::Blackhole => NlRuleAction::Blackhole,
        RuleAction::Unreachable => NlRuleAction::Unreachable,
        RuleAction::Prohibit => NlRuleAction::Prohibit,
    };
    m.header.table = r.table.map_or(0, |t| u8::try_from(t).unwrap_or(0));
    if let Some(from) = r.from {
        m.header.src_len = from.0.prefix_len();
        m.attributes.push(RuleAttribute::Source(from.0.addr()));
    }
    if let Some(to) = r.to {
        m.header.dst_len = to.0.prefix_len();
        m.attributes.push(RuleAttribute::Destination(to.0.addr()));
    }
    if let Some(iif) = &r.iif {
        m.attributes.push(RuleAttribute::Iifname(iif.clone()));
    }
    if let Some(oif) = &r.oif {
        m.attributes.push(RuleAttribute::Oifname(oif.clone()));
    }
    if let Some(mark) = r.fwmark {
        m.attributes.push(RuleAttribute::FwMark(mark));
    }
    if let Some(mask) = r.fwmask {
        m.attributes.push(RuleAttribute::FwMask(mask));
    }
    m.attributes.push(RuleAttribute::Priority(r.priority));
    if let Some(t) = r.table {
        m.attributes.push(RuleAttribute::Table(t));
    }
    m.attributes
        .push(RuleAttribute::Protocol(RouteProtocol::from(PROTO_KEEPALIVED)));
    m
}

fn family(a: IpAddr) -> AddressFamily {
    if a.is_ipv6() {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    }
}

/// `r` as ip-route(8) would write it, for logs.
pub fn describe_route(r: &VirtualRoute) -> String {
    let mut s = match r.kind {
        RouteType::Unicast => r.to.to_string(),
        k => format!("{} {}", format!("{k:?}").to_lowercase(), r.to),
    };
    if let Some(v) = r.via {
        s += &format!(" via {v}");
    }
    if let Some(d) = &r.dev {
        s += &format!(" dev {d}");
    }
    if let Some(v) = r.src {
        s += &format!(" src {v}");
    }
    if let Some(m) = r.metric {
        s += &format!(" metric {m}");
    }
    s + &format!(" table {}", r.table)
}

/// `r` as ip-rule(8) would write it, for logs.
pub fn describe_rule(r: &VirtualRule) -> String {
    let mut s = format!("priority {}", r.priority);
    if let Some(p) = r.from {
        s += &format!(" from {p}");
    }
    if let Some(p) = r.to {
        s += &format!(" to {p}");
    }
    if let Some(d) = &r.iif {
        s += &format!(" iif {d}");
    }
    if let Some(d) = &r.oif {
        s += &format!(" oif {d}");
    }
    if let Some(m) = r.fwmark {
        s += &format!(" fwmark {m:#x}");
    }
    match r.table {
        Some(t) => s + &format!(" table {t}"),
        None => s + &format!(" {:?}", r.action).to_lowercase(),
    }
}

/// One item of [`Extras`], for the executor's loop.
enum Item<'a> {
    Addr(&'a crate::shared::ExtraAddr),
    Route(&'a VirtualRoute),
    Rule(&'a VirtualRule),
}

impl Item<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Item::Addr(_) => "virtual address",
            Item::Route(_) => "virtual route",
            Item::Rule(_) => "virtual rule",
        }
    }
    fn describe(&self) -> String {
        match self {
            Item::Addr(a) => match &a.dev {
                Some(d) => format!("{} dev {d}", a.vip),
                None => a.vip.to_string(),
            },
            Item::Route(r) => describe_route(r),
            Item::Rule(r) => describe_rule(r),
        }
    }
    fn tracked(&self) -> bool {
        match self {
            Item::Addr(a) => a.track,
            Item::Route(r) => !r.no_track,
            Item::Rule(r) => !r.no_track,
        }
    }
}

/// Addresses first (a route's gateway or source may need them), then routes,
/// then rules (which send traffic to the routes); removal in the reverse order.
fn items(e: &Extras) -> Vec<Item<'_>> {
    let addrs = e.addrs.iter().map(Item::Addr);
    let routes = e.routes.iter().map(Item::Route);
    addrs
        .chain(routes)
        .chain(e.rules.iter().map(Item::Rule))
        .collect()
}

impl VipExecutor {
    pub(super) async fn extras(&mut self, instance: &str, iface: &Iface, extras: &Extras, op: ExtrasOp) {
        match op {
            ExtrasOp::Add => {
                for item in items(extras) {
                    match self.put(iface, &item, true).await {
                        Ok(true) => {
                            self.extras_refused
                                .remove(&(instance.to_string(), item.describe()));
                            info!(instance, what = item.describe(), "{} added", item.kind())
                        }
                        Ok(false) => {}
                        Err(error) => self.extra_refused(instance, &item, &error),
                    }
                }
            }
            ExtrasOp::Remove => {
                let addrs: Vec<IpNet> = extras.addrs.iter().map(|a| a.vip).collect();
                self.cancel_announcements(instance, &addrs);
                for item in items(extras).iter().rev() {
                    match self.put(iface, item, false).await {
                        Ok(true) => info!(instance, what = item.describe(), "{} removed", item.kind()),
                        Ok(false) => {}
                        Err(error) => warn!(instance, %error, "{} not removed", item.kind()),
                    }
                }
            }
            ExtrasOp::Announce { count } => self.announce_extras(instance, iface, extras, count).await,
            ExtrasOp::AnnounceOtherDevices => {
                let mut seen: Vec<&str> = Vec::new();
                for a in &extras.addrs {
                    match a.dev.as_deref() {
                        Some(d) if d != iface.name && !seen.contains(&d) => {
                            seen.push(d);
                            self.announce_one(instance, iface, &Item::Addr(a), 1).await;
                        }
                        _ => {}
                    }
                }
            }
            ExtrasOp::Ensure { master, announce } => {
                for item in items(extras) {
                    if !item.tracked() || (!master && !matches!(item, Item::Addr(_))) {
                        continue;
                    }
                    let key = (instance.to_string(), item.describe());
                    match self.put(iface, &item, master).await {
                        Ok(true) if master && self.extras_refused.remove(&key) => {
                            warn!(
                                instance,
                                what = key.1,
                                "{} added on retry: the kernel accepts it now",
                                item.kind()
                            );
                            self.announce_one(instance, iface, &item, announce).await;
                        }
                        Ok(true) if master => {
                            warn!(
                                instance,
                                what = key.1,
                                "{} was removed behind hafront's back: added again",
                                item.kind()
                            );
                            self.drift.count(instance, true);
                            self.announce_one(instance, iface, &item, announce).await;
                        }
                        Ok(true) => {
                            warn!(
                                instance,
                                what = key.1,
                                "{} present on a non-master: removed",
                                item.kind()
                            );
                            self.drift.count(instance, false);
                        }
                        Ok(false) => {}
                        Err(error) if master => self.extra_refused(instance, &item, &error),
                        Err(_) => {}
                    }
                }
            }
        }
    }

    /// A refused add: remembered (the drift check retries it every tick while
    /// master), counted, logged once a minute per instance.
    fn extra_refused(&mut self, instance: &str, item: &Item<'_>, error: &NetError) {
        let what = item.describe();
        self.drift.refused_item(instance, &what, error);
        self.extras_refused.insert((instance.to_string(), what.clone()));
        let throttle = self
            .refusals
            .entry(format!("{instance}/extras"))
            .or_insert_with(|| Throttle::new(super::vip::LOG_EVERY));
        if let Some(not_logged) = throttle.hit(Instant::now()) {
            warn!(instance, what, %error, not_logged, "{} refused by the kernel: retried every second while master", item.kind());
        }
    }

    /// `hafront remove-vips`: an instance's VIPs on `iface`, then its extras in
    /// the reverse of their add order, as a start as non-master removes them.
    pub(super) async fn remove_all(
        &mut self,
        instance: &str,
        iface: &Iface,
        vips: &[IpNet],
        extras: &Extras,
        out: &mut super::vip::Removed,
    ) {
        let mut count = |what: String, done: Result<bool, NetError>| match done {
            Ok(true) => {
                info!(instance, what, "removed");
                out.removed += 1;
            }
            Ok(false) => {}
            Err(error) => {
                warn!(instance, what, %error, "not removed");
                out.failed += 1;
            }
        };
        for vip in plain(vips, extras) {
            count(format!("virtual address {vip}"), self.remove(iface, vip).await);
        }
        for item in items(extras).iter().rev() {
            let what = format!("{} {}", item.kind(), item.describe());
            count(what, self.put(iface, item, false).await);
        }
    }

    /// Adds (`add`) or removes one item; `Ok(false)` when it was already so.
    async fn put(&self, iface: &Iface, item: &Item<'_>, add: bool) -> Result<bool, NetError> {
        match item {
            Item::Addr(a) => {
                let dev = self.dev(iface, a.dev.as_deref()).await?;
                if add {
                    self.add(&dev, a.vip, a.label.as_deref(), a.scope).await
                } else {
                    self.remove(&dev, a.vip).await
                }
            }
            Item::Route(r) => {
                let oif = match &r.dev {
                    Some(d) => Some(self.dev(iface, Some(d)).await?.index),
                    None => None,
                };
                let msg = route_message(r, oif, !add);
                let routes = self.links.handle().route();
                let done = if add {
                    routes.add(msg).execute().await
                } else {
                    routes.del(msg).execute().await
                };
                settle(done, add, || describe_route(r))
            }
            Item::Rule(r) => {
                let msg = rule_message(r);
                let rules = self.links.handle().rule();
                let done = if add {
                    let mut req = rules.add();
                    *req.message_mut() = msg;
                    req.execute().await
                } else {
                    rules.del(msg).execute().await
                };
                settle(done, add, || describe_rule(r))
            }
        }
    }

    /// The interface `dev` names, or the instance's.
    async fn dev(&self, iface: &Iface, dev: Option<&str>) -> Result<Iface, NetError> {
        match dev {
            Some(d) if d != iface.name => self.links.iface(d).await,
            _ => Ok(iface.clone()),
        }
    }

    async fn announce_extras(&mut self, instance: &str, iface: &Iface, extras: &Extras, count: u32) {
        for a in &extras.addrs {
            self.announce_one(instance, iface, &Item::Addr(a), count).await;
        }
    }

    async fn announce_one(&mut self, instance: &str, iface: &Iface, item: &Item<'_>, count: u32) {
        let Item::Addr(a) = item else { return };
        if count == 0 {
            return;
        }
        match self.dev(iface, a.dev.as_deref()).await {
            Ok(dev) => self.announce(instance, &dev, &[a.vip.addr()], count),
            Err(error) => warn!(instance, %error, "announcement not sent"),
        }
    }
}

/// An add's EEXIST and a delete's ESRCH/ENOENT are "already so".
fn settle(
    done: Result<(), rtnetlink::Error>,
    add: bool,
    what: impl Fn() -> String,
) -> Result<bool, NetError> {
    match done {
        Ok(()) => Ok(true),
        Err(e) if add && errno(&e) == Some(libc::EEXIST) => Ok(false),
        Err(e) if !add && matches!(errno(&e), Some(libc::ESRCH) | Some(libc::ENOENT)) => Ok(false),
        Err(source) => Err(NetError::Route {
            op: if add { "add" } else { "remove" },
            what: what(),
            source: Box::new(source),
        }),
    }
}

/// The VIPs of `vips` that `extras` does not place elsewhere.
pub fn plain(vips: &[IpNet], extras: &Extras) -> Vec<IpNet> {
    vips.iter().filter(|v| !extras.placed(v)).copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::routes::{Prefix, Proto, Scope};

    fn route(to: &str) -> VirtualRoute {
        VirtualRoute {
            to: Prefix::parse(to).unwrap(),
            via: None,
            dev: None,
            src: None,
            table: 254,
            metric: None,
            scope: None,
            proto: Proto::default(),
            kind: RouteType::Unicast,
            no_track: false,
        }
    }

    fn rule(priority: u32) -> VirtualRule {
        VirtualRule {
            from: None,
            to: None,
            iif: None,
            oif: None,
            fwmark: None,
            fwmask: None,
            priority,
            table: Some(100),
            action: RuleAction::Table,
            family: None,
            no_track: false,
        }
    }

    /// `ip route add default via 192.0.2.1 table 100 metric 5 src 192.0.2.10`
    #[test]
    fn a_default_route_via_a_gateway() {
        let mut r = route("0.0.0.0/0");
        r.via = Some("192.0.2.1".parse().unwrap());
        r.table = 100;
        r.metric = Some(5);
        r.src = Some("192.0.2.10".parse().unwrap());
        let m = route_message(&r, None, false);
        assert_eq!(m.header.address_family, AddressFamily::Inet);
        assert_eq!(m.header.destination_prefix_length, 0);
        assert_eq!(m.header.table, 100);
        assert_eq!(m.header.scope, RouteScope::Universe);
        assert_eq!(m.header.kind, NlRouteType::Unicast);
        assert_eq!(m.header.protocol, RouteProtocol::from(18));
        assert_eq!(
            m.attributes,
            vec![
                RouteAttribute::Table(100),
                RouteAttribute::Gateway(RouteAddress::Inet("192.0.2.1".parse().unwrap())),
                RouteAttribute::PrefSource(RouteAddress::Inet("192.0.2.10".parse().unwrap())),
                RouteAttribute::Priority(5),
            ]
        );
        // A delete matches whatever scope the kernel gave it.
        assert_eq!(route_message(&r, None, true).header.scope, RouteScope::NoWhere);
    }

    /// `ip route add 198.51.100.0/24 dev eth2 table 1000`: a link route, table in RTA_TABLE only.
    #[test]
    fn a_device_route_in_a_big_table() {
        let mut r = route("198.51.100.7/24");
        r.dev = Some("eth2".into());
        r.table = 1000;
        let m = route_message(&r, Some(7), false);
        assert_eq!(m.header.table, 0);
        assert_eq!(m.header.scope, RouteScope::Link);
        assert_eq!(m.header.destination_prefix_length, 24);
        assert!(m.attributes.contains(&RouteAttribute::Table(1000)));
        assert!(m.attributes.contains(&RouteAttribute::Oif(7)));
        // The prefix is truncated as ip(8) wants it.
        assert!(m
            .attributes
            .contains(&RouteAttribute::Destination(RouteAddress::Inet(
                "198.51.100.0".parse().unwrap()
            ))));
    }

    #[test]
    fn blackhole_and_ipv6_routes() {
        let mut r = route("2001:db8:5::/48");
        r.kind = RouteType::Blackhole;
        r.scope = Some(Scope::Global);
        let m = route_message(&r, None, false);
        assert_eq!(m.header.address_family, AddressFamily::Inet6);
        assert_eq!(m.header.kind, NlRouteType::BlackHole);
        assert_eq!(m.header.scope, RouteScope::Universe);
    }

    /// `ip rule add from 192.0.2.0/24 iif eth1 fwmark 0x10/0xff priority 100 table 100`
    #[test]
    fn a_source_rule() {
        let mut r = rule(100);
        r.from = Some(Prefix::parse("192.0.2.0/24").unwrap());
        r.iif = Some("eth1".into());
        r.fwmark = Some(0x10);
        r.fwmask = Some(0xff);
        r.family = Some(crate::config::routes::RuleFamily::Ipv4);
        let m = rule_message(&r);
        assert_eq!(m.header.family, AddressFamily::Inet);
        assert_eq!(m.header.src_len, 24);
        assert_eq!(m.header.table, 100);
        assert_eq!(m.header.action, NlRuleAction::ToTable);
        assert_eq!(
            m.attributes,
            vec![
                RuleAttribute::Source("192.0.2.0".parse().unwrap()),
                RuleAttribute::Iifname("eth1".into()),
                RuleAttribute::FwMark(0x10),
                RuleAttribute::FwMask(0xff),
                RuleAttribute::Priority(100),
                RuleAttribute::Table(100),
                RuleAttribute::Protocol(RouteProtocol::from(18)),
            ]
        );
        assert_eq!(
            describe_rule(&r),
            "priority 100 from 192.0.2.0/24 iif eth1 fwmark 0x10 table 100"
        );
    }

    #[test]
    fn a_rule_without_addresses_is_ipv4_unless_told() {
        let mut r = rule(7);
        r.action = RuleAction::Unreachable;
        r.table = None;
        assert_eq!(rule_message(&r).header.family, AddressFamily::Inet);
        r.family = Some(crate::config::routes::RuleFamily::Ipv6);
        let m = rule_message(&r);
        assert_eq!(m.header.family, AddressFamily::Inet6);
        assert_eq!(m.header.action, NlRuleAction::Unreachable);
        assert_eq!(m.header.table, 0);
        assert_eq!(describe_rule(&r), "priority 7 unreachable");
    }
}
