//! Virtual MAC interfaces (RFC 5798 §7.3; keepalived's `use_vmac`, vrrp_vmac.c).
//!
//! One private-mode macvlan per instance on its interface, with the virtual router
//! MAC 00-00-5E-00-01-{VRID} (00-00-5E-00-02-{VRID} for IPv6). The VIPs live on it
//! and the adverts leave from it, so the master answers ARP/ND and sends with the
//! virtual MAC: a failover moves no MAC in the clients' caches, and switches learn
//! the new port from the first advert. Private mode: the macvlan also receives
//! frames whose source is its own MAC (the peer's adverts, sent from the same
//! virtual MAC).
//!
//! As keepalived does (vrrp_if_config.c), through rtnetlink (IFLA_AF_SPEC), so in
//! this network namespace only and also under systemd's ProtectKernelTunables:
//! on the macvlan arp_ignore=1 and, for IPv4, accept_local=1, rp_filter=0,
//! promote_secondaries=1; on the base interface (IPv4) arp_ignore=1 and
//! arp_filter=1, so that it does not answer ARP for the VIPs with its own MAC, and
//! (hafront's addition) arp_announce=2 (see [`Vmacs::base_arp`]). The
//! base's values are put back when its last macvlan goes. No automatic IPv6
//! link-local address on the macvlan (RFC 5798 §7.4: IFLA_INET6_ADDR_GEN_MODE none);
//! an IPv6 instance gets the base's link-local address on it, to send from.
//!
//! With `use_ipvlan` (keepalived's vrrp_vmac.c, netlink_link_add_ipvlan): an
//! L2-mode ipvlan on the interface instead, which shares the base's MAC (for
//! where a second MAC is not allowed: some clouds and hypervisors). The adverts
//! leave from it with the base's MAC and, for IPv4, from its own address
//! (`ipvlan_address`); the VIPs stay on the base, as keepalived puts them. keepalived sets no sysctls for an ipvlan and
//! neither does hafront (the base answers ARP with the same MAC anyway); no
//! automatic IPv6 link-local address either (an IPv6 instance gets its
//! `ipvlan_address`, or the base's link-local address, to send from).
//!
//! An ipvlan has no MAC of its own to tell it from others: hafront marks those
//! it makes with the alias (IFLA_IFALIAS) [`IPVLAN_ALIAS`], so that one left by
//! a run that did not stop cleanly is removed at the next start as a stale VMAC is.
//!
//! What to do with what is found is decided by [`plan`] (pure); [`Vmacs`] carries
//! it out.

use std::collections::HashMap;
use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::packet_core::{DefaultNla, Emitable};
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};
use rtnetlink::packet_route::link::{
    AfSpecInet, AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoIpVlan, InfoKind, InfoMacVlan,
    IpVlanFlags, IpVlanMode, LinkAttribute, LinkInfo, LinkMessage, MacVlanMode,
};
use rtnetlink::{LinkIpVlan, LinkMacVlan, LinkUnspec};
use tracing::{info, warn};

use super::error::{errno, NetError};
use super::link::{Iface, Links};
use crate::config::IpvlanMode;

/// `IFLA_INET_CONF` inside `IFLA_AF_SPEC`/`AF_INET` (include/uapi/linux/if_link.h).
const IFLA_INET_CONF: u16 = 1;
/// `IPV4_DEVCONF_*` (include/uapi/linux/ip.h).
const DEVCONF_RP_FILTER: u16 = 8;
const DEVCONF_ARPFILTER: u16 = 13;
const DEVCONF_ARP_ANNOUNCE: u16 = 18;
const DEVCONF_ARP_IGNORE: u16 = 19;
const DEVCONF_PROMOTE_SECONDARIES: u16 = 20;
const DEVCONF_ACCEPT_LOCAL: u16 = 23;

/// The alias (`ip link show` prints it) of the ipvlans hafront makes.
pub const IPVLAN_ALIAS: &str = "hafront use_ipvlan";

/// The RFC 5798 §7.3 virtual router MAC address.
pub fn virtual_mac(vrid: u8, ipv6: bool) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, if ipv6 { 0x02 } else { 0x01 }, vrid]
}

/// Whether `mac` is an RFC 5798 virtual router MAC (IPv4 or IPv6).
pub fn is_virtual_mac(mac: &[u8]) -> bool {
    mac.len() == 6 && mac[..4] == [0x00, 0x00, 0x5e, 0x00] && matches!(mac[4], 1 | 2)
}

/// The VMAC an instance wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmacSpec {
    pub name: String,
    pub base: Iface,
    pub vrid: u8,
    pub ipv6: bool,
    /// `use_ipvlan`: an L2 ipvlan with these flags instead of a macvlan.
    pub ipvlan: Option<IpvlanMode>,
}

impl VmacSpec {
    pub fn mac(&self) -> [u8; 6] {
        virtual_mac(self.vrid, self.ipv6)
    }

    fn kind(&self) -> &'static str {
        if self.ipvlan.is_some() {
            "ipvlan"
        } else {
            "virtual MAC interface"
        }
    }
}

/// IFLA_IPVLAN_FLAGS for a mode (include/uapi/linux/if_link.h).
pub fn ipvlan_flags(mode: IpvlanMode) -> IpVlanFlags {
    match mode {
        IpvlanMode::Bridge => IpVlanFlags::empty(),
        IpvlanMode::Private => IpVlanFlags::Private,
        IpvlanMode::Vepa => IpVlanFlags::Vepa,
    }
}

/// What the kernel says of an existing link, as far as a VMAC is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkFacts {
    pub index: u32,
    pub name: String,
    pub mac: Vec<u8>,
    /// `Some(mode)` for a macvlan.
    pub macvlan: Option<MacVlanMode>,
    /// `Some((mode, flags))` for an ipvlan.
    pub ipvlan: Option<(IpVlanMode, IpVlanFlags)>,
    /// IFLA_LINK: the interface it is stacked on.
    pub link: Option<u32>,
    /// IFLA_IFALIAS.
    pub alias: Option<String>,
}

/// What to do for one wanted VMAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    Create,
    /// Ours already (a previous run, or a keepalived that ran before): keep it.
    Keep(u32),
    /// A macvlan of that name with the wrong MAC, mode or base: delete, create.
    Replace(u32),
    /// An interface of that name that is not a macvlan (an ipvlan with
    /// `use_ipvlan`): never touched.
    Conflict,
}

/// keepalived's rule (vrrp_vmac.c, netlink_link_add_vmac): a private macvlan on
/// the base with the virtual MAC is reused, another macvlan of the name is
/// replaced, anything else is refused.
///
/// With `use_ipvlan` the same for an ipvlan (its netlink_link_add_ipvlan reuses
/// an L2 ipvlan of the name): one in L2 mode with the wanted flags on the base is
/// reused, another ipvlan of the name, or a VMAC (a macvlan with a virtual router
/// MAC), is replaced.
pub fn plan(want: &VmacSpec, existing: Option<&LinkFacts>) -> Plan {
    let Some(link) = existing else {
        return Plan::Create;
    };
    if let Some(mode) = want.ipvlan {
        return match link.ipvlan {
            // A VMAC of that name (an instance switched from use_vmac): replaced.
            None if link.macvlan.is_some() && is_virtual_mac(&link.mac) => Plan::Replace(link.index),
            None => Plan::Conflict,
            Some((m, flags)) => {
                if m == IpVlanMode::L2 && flags == ipvlan_flags(mode) && link.link == Some(want.base.index) {
                    Plan::Keep(link.index)
                } else {
                    Plan::Replace(link.index)
                }
            }
        };
    }
    match &link.macvlan {
        None => Plan::Conflict,
        Some(mode) => {
            if *mode == MacVlanMode::Private && link.mac == want.mac() && link.link == Some(want.base.index) {
                Plan::Keep(link.index)
            } else {
                Plan::Replace(link.index)
            }
        }
    }
}

/// Stale VMACs: macvlans with a virtual router MAC, and ipvlans with hafront's
/// alias, that no instance wants (left by a run that did not stop cleanly, or by
/// an instance since removed).
pub fn stale<'a>(links: &'a [LinkFacts], wanted: &[String]) -> Vec<&'a LinkFacts> {
    links
        .iter()
        .filter(|l| {
            let vmac = l.macvlan.is_some() && is_virtual_mac(&l.mac);
            let ipvlan = l.ipvlan.is_some() && l.alias.as_deref() == Some(IPVLAN_ALIAS);
            (vmac || ipvlan) && !wanted.contains(&l.name)
        })
        .collect()
}

fn facts(msg: &LinkMessage) -> LinkFacts {
    let mut f = LinkFacts {
        index: msg.header.index,
        name: String::new(),
        mac: Vec::new(),
        macvlan: None,
        ipvlan: None,
        link: None,
        alias: None,
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => f.name = n.clone(),
            LinkAttribute::Address(a) => f.mac = a.clone(),
            LinkAttribute::Link(i) => f.link = Some(*i),
            LinkAttribute::IfAlias(a) => f.alias = Some(a.clone()),
            LinkAttribute::LinkInfo(infos) => {
                let is_macvlan = infos
                    .iter()
                    .any(|i| matches!(i, LinkInfo::Kind(InfoKind::MacVlan)));
                if is_macvlan {
                    let mode = infos.iter().find_map(|i| match i {
                        LinkInfo::Data(InfoData::MacVlan(d)) => d.iter().find_map(|x| match x {
                            InfoMacVlan::Mode(m) => Some(*m),
                            _ => None,
                        }),
                        _ => None,
                    });
                    f.macvlan = Some(mode.unwrap_or(MacVlanMode::Other(0)));
                }
                if infos
                    .iter()
                    .any(|i| matches!(i, LinkInfo::Kind(InfoKind::IpVlan)))
                {
                    let data = infos.iter().find_map(|i| match i {
                        LinkInfo::Data(InfoData::IpVlan(d)) => Some(d),
                        _ => None,
                    });
                    let mode = data.and_then(|d| {
                        d.iter().find_map(|x| match x {
                            InfoIpVlan::Mode(m) => Some(*m),
                            _ => None,
                        })
                    });
                    let flags = data.and_then(|d| {
                        d.iter().find_map(|x| match x {
                            InfoIpVlan::Flags(f) => Some(*f),
                            _ => None,
                        })
                    });
                    f.ipvlan = Some((
                        mode.unwrap_or(IpVlanMode::Other(u16::MAX)),
                        flags.unwrap_or(IpVlanFlags::empty()),
                    ));
                }
            }
            _ => {}
        }
    }
    f
}

/// The base's ARP sysctls: arp_ignore, arp_filter, arp_announce.
type ArpConf = (u32, u32, u32);

/// What the base gets while it carries a VMAC.
const BASE_ARP: ArpConf = (1, 1, 2);

/// The base's [`ArpConf`], from its IPv4 devconf.
fn arp_conf(msg: &LinkMessage) -> Option<ArpConf> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::AfSpecUnspec(specs) => specs.iter().find_map(|s| match s {
            AfSpecUnspec::Inet(inet) => inet.iter().find_map(|i| match i {
                AfSpecInet::DevConf(c) => {
                    Some((c.arp_ignore as u32, c.arpfilter as u32, c.arp_announce as u32))
                }
                _ => None,
            }),
            _ => None,
        }),
        _ => None,
    })
}

/// IFLA_AF_SPEC { AF_INET { IFLA_INET_CONF { (IPV4_DEVCONF_x, value)... } } }:
/// only the given sysctls, zero values included.
fn devconf_attr(values: &[(u16, u32)]) -> LinkAttribute {
    let nlas: Vec<DefaultNla> = values
        .iter()
        .map(|(k, v)| DefaultNla::new(*k, v.to_ne_bytes().to_vec()))
        .collect();
    let mut buf = vec![0u8; nlas.as_slice().buffer_len()];
    nlas.as_slice().emit(&mut buf);
    LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet(vec![AfSpecInet::Other(
        DefaultNla::new(IFLA_INET_CONF, buf),
    )])])
}

/// The VMACs of this node, and the base interfaces' ARP sysctls to put back.
#[derive(Default)]
pub struct Vmacs {
    /// VMAC name -> (its index, base index).
    ours: HashMap<String, (u32, u32)>,
    /// Base index -> (arp_ignore, arp_filter) before the first VMAC, VMACs on it.
    bases: HashMap<u32, (ArpConf, usize)>,
}

impl Vmacs {
    /// Deletes the macvlans with a virtual router MAC that are not in `wanted`.
    pub async fn remove_stale(&self, links: &Links, wanted: &[String]) -> Result<(), NetError> {
        let all: Vec<LinkFacts> = links
            .handle()
            .link()
            .get()
            .execute()
            .map_ok(|m| facts(&m))
            .try_collect()
            .await
            .map_err(|source| NetError::Netlink {
                what: "dump links",
                source: Box::new(source),
            })?;
        for l in stale(&all, wanted) {
            let kind = if l.ipvlan.is_some() {
                "ipvlan"
            } else {
                "virtual MAC interface"
            };
            match del_link(links, l.index).await {
                Ok(()) => info!(vmac = l.name, kind, "stale: removed"),
                Err(error) => warn!(vmac = l.name, kind, %error, "stale: not removed"),
            }
        }
        Ok(())
    }

    /// Creates (or reuses) the VMAC, sets it up as keepalived does, and returns it.
    pub async fn ensure(&mut self, links: &Links, want: &VmacSpec) -> Result<Iface, NetError> {
        let existing = links.link_message(&want.name).await?.map(|m| facts(&m));
        match plan(want, existing.as_ref()) {
            Plan::Keep(_) => info!(vmac = want.name, kind = want.kind(), "found: reused"),
            Plan::Conflict if want.ipvlan.is_some() => {
                return Err(NetError::IpvlanConflict(want.name.clone()))
            }
            Plan::Conflict => return Err(NetError::VmacConflict(want.name.clone())),
            Plan::Replace(index) => {
                info!(
                    vmac = want.name,
                    kind = want.kind(),
                    "found with a wrong MAC, mode or base: replaced"
                );
                del_link(links, index).await?;
                self.create(links, want).await?;
            }
            Plan::Create => self.create(links, want).await?,
        }
        let vmac = links.iface(&want.name).await?;
        let netlink = |what: &'static str| {
            move |source: rtnetlink::Error| NetError::Netlink {
                what,
                source: Box::new(source),
            }
        };
        // Sysctls of the macvlan (keepalived's vmac_sysctl / vmac_sysctl_6); none
        // for an ipvlan, as keepalived.
        let conf: &[(u16, u32)] = if want.ipvlan.is_some() {
            &[]
        } else if want.ipv6 {
            &[(DEVCONF_ARP_IGNORE, 1)]
        } else {
            &[
                (DEVCONF_ARP_IGNORE, 1),
                (DEVCONF_ACCEPT_LOCAL, 1),
                (DEVCONF_RP_FILTER, 0),
                (DEVCONF_PROMOTE_SECONDARIES, 1),
            ]
        };
        if !conf.is_empty() {
            set_devconf(links, vmac.index, conf, "set VMAC sysctls").await?;
        }
        if want.ipvlan.is_some() {
            // Ours from now on (also one found: a keepalived's), for the stale
            // clean-up of a later start.
            let alias = LinkAttribute::IfAlias(IPVLAN_ALIAS.into());
            set_link(links, vmac.index, alias, "set ipvlan alias").await?;
        }
        // No EUI-64 link-local address from the virtual MAC (RFC 5798 §7.4); this
        // cannot be part of the creation (the kernel ignores IFLA_AF_SPEC there).
        let msg = LinkUnspec::new_with_index(vmac.index)
            .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(vec![
                AfSpecInet6::AddrGenMode(In6AddrGenMode::None),
            ])]))
            .build();
        if let Err(error) = links.handle().link().set(msg).execute().await {
            warn!(vmac = want.name, error = %netlink("set addr_gen_mode")(error), "IPv6 address generation not turned off");
        }
        let msg = LinkUnspec::new_with_index(vmac.index).up().build();
        links
            .handle()
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(netlink("set VMAC up"))?;
        if !want.ipv6 && want.ipvlan.is_none() && !self.ours.values().any(|(i, _)| *i == vmac.index) {
            self.base_arp(links, &want.base).await?;
        }
        self.ours.insert(want.name.clone(), (vmac.index, want.base.index));
        links.iface(&want.name).await
    }

    async fn create(&self, links: &Links, want: &VmacSpec) -> Result<(), NetError> {
        let msg = match want.ipvlan {
            Some(mode) => LinkIpVlan::new(&want.name, want.base.index, IpVlanMode::L2)
                .flag(ipvlan_flags(mode))
                .build(),
            None => LinkMacVlan::new(&want.name, want.base.index, MacVlanMode::Private)
                .address(want.mac().to_vec())
                .build(),
        };
        links
            .handle()
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|source| NetError::Netlink {
                what: "create VMAC",
                source: Box::new(source),
            })?;
        info!(
            vmac = want.name,
            kind = want.kind(),
            base = want.base.name,
            vrid = want.vrid,
            "created"
        );
        Ok(())
    }

    /// arp_ignore=1, arp_filter=1 on the base (keepalived's parent_sysctl): it
    /// answers no ARP for the VIPs with its own MAC. And arp_announce=2, which
    /// keepalived does not set: a reply from a VIP routed out of the base would
    /// otherwise ask for the client's MAC with the VIP as sender address, and the
    /// client would store the base's MAC for the VIP. The previous values are kept
    /// for [`Vmacs::remove_all`].
    async fn base_arp(&mut self, links: &Links, base: &Iface) -> Result<(), NetError> {
        if let Some((_, n)) = self.bases.get_mut(&base.index) {
            *n += 1;
            return Ok(());
        }
        let before = links
            .link_message(&base.name)
            .await?
            .as_ref()
            .and_then(arp_conf)
            .unwrap_or((0, 0, 0));
        if before != BASE_ARP {
            set_arp(links, base.index, BASE_ARP).await?;
        }
        self.bases.insert(base.index, (before, 1));
        Ok(())
    }

    /// Adds `addr` (the base's IPv6 link-local address, or an ipvlan's own
    /// address) to the VMAC, without DAD.
    pub async fn add_own_address(
        &self,
        links: &Links,
        vmac: &Iface,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<(), NetError> {
        let mut req = links.handle().address().add(vmac.index, addr, prefix_len);
        let msg = req.message_mut();
        msg.header.flags |= AddressHeaderFlags::Nodad;
        msg.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            Err(source) => Err(NetError::Address {
                op: "add",
                addr,
                iface: vmac.name.clone(),
                source: Box::new(source),
            }),
        }
    }

    /// Whether some VMAC of this run is not in `used`.
    pub fn unused(&self, used: &[String]) -> bool {
        self.ours.keys().any(|n| !used.contains(n))
    }

    /// Deletes the VMACs of this run not in `used` (instances removed by a reload).
    pub async fn remove_unused(&mut self, links: &Links, used: &[String]) {
        let gone: Vec<String> = self.ours.keys().filter(|n| !used.contains(n)).cloned().collect();
        for name in gone {
            self.remove(links, &name).await;
        }
    }

    /// Deletes every VMAC of this run and puts the base interfaces' sysctls back
    /// (at stop).
    pub async fn remove_all(&mut self, links: &Links) {
        let all: Vec<String> = self.ours.keys().cloned().collect();
        for name in all {
            self.remove(links, &name).await;
        }
    }

    async fn remove(&mut self, links: &Links, name: &str) {
        let Some((index, base)) = self.ours.remove(name) else {
            return;
        };
        match del_link(links, index).await {
            Ok(()) => info!(vmac = name, "virtual MAC interface removed"),
            Err(error) => warn!(vmac = name, %error, "virtual MAC interface not removed"),
        }
        let last = match self.bases.get_mut(&base) {
            Some((_, n)) => {
                *n -= 1;
                *n == 0
            }
            None => false,
        };
        if last {
            let (before, _) = self.bases.remove(&base).expect("present");
            if before != BASE_ARP {
                if let Err(error) = set_arp(links, base, before).await {
                    warn!(%error, "arp_ignore/arp_filter/arp_announce of the base interface not put back");
                }
            }
        }
    }
}

async fn set_arp(links: &Links, index: u32, (ignore, filter, announce): ArpConf) -> Result<(), NetError> {
    let conf = [
        (DEVCONF_ARP_IGNORE, ignore),
        (DEVCONF_ARPFILTER, filter),
        (DEVCONF_ARP_ANNOUNCE, announce),
    ];
    set_devconf(links, index, &conf, "set arp_ignore/arp_filter/arp_announce").await
}

/// Sets IPv4 devconf values (the interface's sysctls) of one interface in this
/// namespace, in one RTM_SETLINK.
async fn set_devconf(
    links: &Links,
    index: u32,
    conf: &[(u16, u32)],
    what: &'static str,
) -> Result<(), NetError> {
    set_link(links, index, devconf_attr(conf), what).await
}

/// One RTM_SETLINK with one attribute.
async fn set_link(
    links: &Links,
    index: u32,
    attr: LinkAttribute,
    what: &'static str,
) -> Result<(), NetError> {
    let msg = LinkUnspec::new_with_index(index)
        .append_extra_attribute(attr)
        .build();
    links
        .handle()
        .link()
        .set(msg)
        .execute()
        .await
        .map_err(|source| NetError::Netlink {
            what,
            source: Box::new(source),
        })
}

async fn del_link(links: &Links, index: u32) -> Result<(), NetError> {
    match links.handle().link().del(index).execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(()),
        Err(source) => Err(NetError::Netlink {
            what: "delete VMAC",
            source: Box::new(source),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_core::Nla;

    fn spec() -> VmacSpec {
        VmacSpec {
            name: "vrrp.51".into(),
            base: Iface {
                name: "eth0".into(),
                index: 2,
                mac: [2, 0, 0, 0, 0, 1],
                up: true,
            },
            vrid: 51,
            ipv6: false,
            ipvlan: None,
        }
    }

    fn link(mode: Option<MacVlanMode>, mac: [u8; 6], base: u32) -> LinkFacts {
        LinkFacts {
            index: 9,
            name: "vrrp.51".into(),
            mac: mac.to_vec(),
            macvlan: mode,
            ipvlan: None,
            link: Some(base),
            alias: None,
        }
    }

    #[test]
    fn rfc5798_virtual_mac() {
        assert_eq!(virtual_mac(51, false), [0, 0, 0x5e, 0, 1, 51]);
        assert_eq!(virtual_mac(7, true), [0, 0, 0x5e, 0, 2, 7]);
        assert!(is_virtual_mac(&virtual_mac(255, true)));
        assert!(!is_virtual_mac(&[0, 0, 0x5e, 0, 3, 1]));
        assert!(!is_virtual_mac(&[2, 0, 0, 0, 0, 1]));
    }

    #[test]
    fn plan_follows_keepalived() {
        let want = spec();
        let vmac = virtual_mac(51, false);
        assert_eq!(plan(&want, None), Plan::Create);
        assert_eq!(
            plan(&want, Some(&link(Some(MacVlanMode::Private), vmac, 2))),
            Plan::Keep(9)
        );
        // Wrong mode, MAC or base: replaced.
        assert_eq!(
            plan(&want, Some(&link(Some(MacVlanMode::Bridge), vmac, 2))),
            Plan::Replace(9)
        );
        assert_eq!(
            plan(
                &want,
                Some(&link(Some(MacVlanMode::Private), virtual_mac(52, false), 2))
            ),
            Plan::Replace(9)
        );
        assert_eq!(
            plan(&want, Some(&link(Some(MacVlanMode::Private), vmac, 3))),
            Plan::Replace(9)
        );
        // Not a macvlan (a physical interface of that name): never touched.
        assert_eq!(plan(&want, Some(&link(None, vmac, 2))), Plan::Conflict);
    }

    /// use_ipvlan: an L2 ipvlan of the name with the wanted flags on the base is
    /// reused, another ipvlan or a VMAC replaced, anything else refused.
    #[test]
    fn plan_ipvlan_follows_keepalived() {
        let mut want = spec();
        want.ipvlan = Some(IpvlanMode::Private);
        let ipvlan = |mode, flags, base| LinkFacts {
            ipvlan: Some((mode, flags)),
            ..link(None, [2, 0, 0, 0, 0, 1], base)
        };
        assert_eq!(plan(&want, None), Plan::Create);
        assert_eq!(
            plan(&want, Some(&ipvlan(IpVlanMode::L2, IpVlanFlags::Private, 2))),
            Plan::Keep(9)
        );
        assert_eq!(
            plan(&want, Some(&ipvlan(IpVlanMode::L2, IpVlanFlags::empty(), 2))),
            Plan::Replace(9)
        );
        assert_eq!(
            plan(&want, Some(&ipvlan(IpVlanMode::L3, IpVlanFlags::Private, 2))),
            Plan::Replace(9)
        );
        assert_eq!(
            plan(&want, Some(&ipvlan(IpVlanMode::L2, IpVlanFlags::Private, 3))),
            Plan::Replace(9)
        );
        let vmac = link(Some(MacVlanMode::Private), virtual_mac(51, false), 2);
        assert_eq!(plan(&want, Some(&vmac)), Plan::Replace(9));
        let macvlan = link(Some(MacVlanMode::Bridge), [2, 0, 0, 0, 0, 9], 2);
        assert_eq!(plan(&want, Some(&macvlan)), Plan::Conflict);
        // And a macvlan instance does not take an ipvlan for its VMAC.
        want.ipvlan = None;
        assert_eq!(
            plan(&want, Some(&ipvlan(IpVlanMode::L2, IpVlanFlags::Private, 2))),
            Plan::Conflict
        );
        assert_eq!(ipvlan_flags(IpvlanMode::Bridge).bits(), 0);
        assert_eq!(ipvlan_flags(IpvlanMode::Vepa).bits(), 2);
    }

    #[test]
    fn stale_are_unwanted_macvlans_with_a_virtual_mac() {
        let mut a = link(Some(MacVlanMode::Private), virtual_mac(51, false), 2);
        a.name = "vrrp.51".into();
        let mut b = link(Some(MacVlanMode::Private), virtual_mac(52, false), 2);
        b.name = "vrrp.52".into();
        let mut c = link(Some(MacVlanMode::Bridge), [2, 0, 0, 0, 0, 9], 2);
        c.name = "mv0".into();
        let mut d = link(None, virtual_mac(53, false), 2);
        d.name = "eth9".into();
        // ipvlans: hafront's (its alias) unless wanted; others never.
        let ipvlan = |name: &str, alias: Option<&str>| LinkFacts {
            name: name.into(),
            ipvlan: Some((IpVlanMode::L2, IpVlanFlags::empty())),
            alias: alias.map(String::from),
            ..link(None, [2, 0, 0, 0, 0, 1], 2)
        };
        let e = ipvlan("ipv.9", Some(IPVLAN_ALIAS));
        let f = ipvlan("ipv.10", Some(IPVLAN_ALIAS));
        let g = ipvlan("ipvl0", None);
        let h = ipvlan("ipvl1", Some("docker"));
        let all = [a, b, c, d, e, f, g, h];
        let names: Vec<&str> = stale(&all, &["vrrp.51".into(), "ipv.10".into()])
            .iter()
            .map(|l| l.name.as_str())
            .collect();
        assert_eq!(names, ["vrrp.52", "ipv.9"]);
    }

    /// The request carries exactly the sysctls given, zero values too (the
    /// crate's DevConfRequest leaves zeros out, so rp_filter=0 could not be set).
    #[test]
    fn devconf_request_bytes() {
        let LinkAttribute::AfSpecUnspec(specs) =
            devconf_attr(&[(DEVCONF_RP_FILTER, 0), (DEVCONF_ARP_IGNORE, 1)])
        else {
            panic!("not AF_SPEC")
        };
        let AfSpecUnspec::Inet(inet) = &specs[0] else {
            panic!("not AF_INET")
        };
        let AfSpecInet::Other(conf) = &inet[0] else {
            panic!("not IFLA_INET_CONF")
        };
        let mut v = vec![0u8; conf.value_len()];
        conf.emit_value(&mut v);
        let mut want = Vec::new();
        for (k, val) in [(8u16, 0u32), (19, 1)] {
            want.extend_from_slice(&8u16.to_ne_bytes());
            want.extend_from_slice(&k.to_ne_bytes());
            want.extend_from_slice(&val.to_ne_bytes());
        }
        assert_eq!(v, want);
    }
}
