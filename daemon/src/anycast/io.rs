//! What anycast changes in the kernel, through rtnetlink: its dummy interface, the
//! prefixes' addresses on it, and one route per prefix in the table BIRD imports
//! from (`dev <dummy> proto hafront table N`).

use std::collections::BTreeSet;
use std::net::IpAddr;

use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{LinkDummy, LinkUnspec, RouteMessageBuilder};

use crate::net::error::errno;
use crate::net::{Iface, Links, NetError};

/// The routing protocol number of hafront's routes (`ip route ... proto 73`;
/// /etc/iproute2/rt_protos.d can name it). Only routes with it are hafront's.
pub const RTPROT_HAFRONT: u8 = 73;

/// Makes `name` a dummy interface that is up, creating it if missing; an existing
/// interface of another kind is used as it is (`lo` works too).
pub async fn ensure_interface(links: &Links, name: &str) -> Result<Iface, NetError> {
    let handle = links.handle();
    let msg = match links.link_message(name).await? {
        Some(m) => m,
        None => {
            handle
                .link()
                .add(LinkDummy::new(name).up().build())
                .execute()
                .await
                .map_err(|source| NetError::Netlink {
                    what: if errno(&source) == Some(libc::EOPNOTSUPP) {
                        "create the anycast dummy interface (the kernel has no dummy driver: set interface = \"lo\")"
                    } else {
                        "create the anycast dummy interface"
                    },
                    source: Box::new(source),
                })?;
            links
                .link_message(name)
                .await?
                .ok_or_else(|| NetError::NoInterface(name.into()))?
        }
    };
    if !msg
        .header
        .flags
        .contains(rtnetlink::packet_route::link::LinkFlags::Up)
    {
        handle
            .link()
            .set(LinkUnspec::new_with_index(msg.header.index).up().build())
            .execute()
            .await
            .map_err(|source| NetError::Netlink {
                what: "set the anycast interface up",
                source: Box::new(source),
            })?;
    }
    links.iface(name).await
}

/// The address a prefix puts on the interface: its first address as a host.
pub fn host_address(prefix: &IpNet) -> IpNet {
    let len = if prefix.addr().is_ipv4() { 32 } else { 128 };
    IpNet::new(prefix.addr(), len).unwrap_or(*prefix)
}

/// Adds the prefixes' addresses (kept while the group is configured, announced or
/// not: flows in progress finish after a withdrawal).
pub async fn ensure_addresses(links: &Links, iface: &Iface, prefixes: &[IpNet]) -> Result<(), NetError> {
    for p in prefixes {
        crate::net::vip::add_address(links.handle(), iface, host_address(p), None, None).await?;
    }
    Ok(())
}

fn table_of(m: &RouteMessage) -> u32 {
    m.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(m.header.table))
}

fn destination(m: &RouteMessage) -> Option<IpNet> {
    let len = m.header.destination_prefix_length;
    let addr: IpAddr = m.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(a)) => Some((*a).into()),
        RouteAttribute::Destination(RouteAddress::Inet6(a)) => Some((*a).into()),
        _ => None,
    })?;
    IpNet::new(addr, len).ok()
}

/// hafront's routes in `table`, both families.
pub async fn routes(links: &Links, table: u32) -> Result<BTreeSet<IpNet>, NetError> {
    let mut out = BTreeSet::new();
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family;
        let mut dump = links.handle().route().get(msg).execute();
        loop {
            match dump.try_next().await {
                Ok(Some(m)) => {
                    if table_of(&m) == table && m.header.protocol == RouteProtocol::Other(RTPROT_HAFRONT) {
                        out.extend(destination(&m));
                    }
                }
                Ok(None) => break,
                Err(source) => {
                    return Err(NetError::Netlink {
                        what: "dump routes",
                        source: Box::new(source),
                    })
                }
            }
        }
    }
    Ok(out)
}

fn message(table: u32, prefix: IpNet, index: Option<u32>) -> RouteMessage {
    let builder = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(prefix.addr(), prefix.prefix_len())
        .map(|b| {
            b.table_id(table)
                .protocol(RouteProtocol::Other(RTPROT_HAFRONT))
                .scope(RouteScope::Link)
        });
    let mut msg = match builder {
        Ok(b) => b.build(),
        // Cannot happen: an IpNet's length fits its family.
        Err(_) => RouteMessage::default(),
    };
    if let Some(index) = index {
        msg.attributes.push(RouteAttribute::Oif(index));
    }
    msg
}

/// Installs the route of `prefix` through `iface` in `table` (replacing one there).
pub async fn add_route(links: &Links, table: u32, prefix: IpNet, iface: &Iface) -> Result<(), NetError> {
    links
        .handle()
        .route()
        .add(message(table, prefix, Some(iface.index)))
        .replace()
        .execute()
        .await
        .map_err(|source| NetError::Netlink {
            what: "add an anycast route",
            source: Box::new(source),
        })
}

/// Removes hafront's route of `prefix` from `table`; gone already is fine.
pub async fn del_route(links: &Links, table: u32, prefix: IpNet) -> Result<(), NetError> {
    match links
        .handle()
        .route()
        .del(message(table, prefix, None))
        .execute()
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if matches!(errno(&e), Some(libc::ESRCH) | Some(libc::ENOENT)) => Ok(()),
        Err(source) => Err(NetError::Netlink {
            what: "remove an anycast route",
            source: Box::new(source),
        }),
    }
}
