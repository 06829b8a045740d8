//! Interface facts through rtnetlink: index, MAC, and the primary address that
//! advertisements are sent from.

use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::packet_route::AddressFamily;

use super::error::NetError;

/// What the daemon needs to know of one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Iface {
    pub name: String,
    pub index: u32,
    pub mac: [u8; 6],
    /// Up with a carrier when looked up.
    pub up: bool,
}

/// A cheap clonable handle on the rtnetlink connection.
#[derive(Clone)]
pub struct Links {
    handle: rtnetlink::Handle,
}

impl Links {
    /// Opens the rtnetlink connection; the connection task runs on the current runtime.
    pub fn connect() -> Result<Links, NetError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(NetError::Connect)?;
        tokio::spawn(conn);
        Ok(Links { handle })
    }

    pub fn handle(&self) -> &rtnetlink::Handle {
        &self.handle
    }

    /// The kernel's message for the link `name`, `None` when there is none.
    pub async fn link_message(&self, name: &str) -> Result<Option<LinkMessage>, NetError> {
        let mut links = self.handle.link().get().match_name(name.to_string()).execute();
        match links.try_next().await {
            Ok(m) => Ok(m),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code().abs() == libc::ENODEV => Ok(None),
            Err(source) => Err(NetError::Netlink {
                what: "get link",
                source: Box::new(source),
            }),
        }
    }

    pub async fn iface(&self, name: &str) -> Result<Iface, NetError> {
        let Some(msg) = self.link_message(name).await? else {
            return Err(NetError::NoInterface(name.into()));
        };
        let mut mac = [0u8; 6];
        for attr in &msg.attributes {
            if let LinkAttribute::Address(bytes) = attr {
                if bytes.len() == 6 {
                    mac.copy_from_slice(bytes);
                }
            }
        }
        Ok(Iface {
            name: name.into(),
            index: msg.header.index,
            mac,
            up: link_is_up(&msg),
        })
    }

    /// All addresses of an interface, with their flags.
    pub async fn addresses(&self, index: u32) -> Result<Vec<AddressMessage>, NetError> {
        self.handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(|source| NetError::Netlink {
                what: "dump addresses",
                source: Box::new(source),
            })
    }

    /// The address advertisements go out from: the first primary (non-secondary)
    /// IPv4 address, or the link-local IPv6 address (RFC 5798 §5.1.2.1), skipping
    /// any address in `exclude` (our VIPs).
    pub async fn primary_address(
        &self,
        iface: &Iface,
        ipv6: bool,
        exclude: &[IpAddr],
    ) -> Result<IpAddr, NetError> {
        for msg in self.addresses(iface.index).await? {
            let family_ok = match msg.header.family {
                AddressFamily::Inet => !ipv6,
                AddressFamily::Inet6 => ipv6,
                _ => false,
            };
            if !family_ok || msg.header.flags.contains(AddressHeaderFlags::Secondary) {
                continue;
            }
            let addr = msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(ip) if !ipv6 => Some(*ip),
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            });
            if let Some(ip) = addr {
                if exclude.contains(&ip) {
                    continue;
                }
                match ip {
                    IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 != 0xfe80 => continue,
                    _ => return Ok(ip),
                }
            }
        }
        Err(NetError::NoAddress {
            iface: iface.name.clone(),
            family: if ipv6 { "IPv6 link-local" } else { "IPv4" },
        })
    }
}

/// Carrier state of interfaces as the kernel announces it (RTMGRP_LINK): `(ifindex,
/// up)`, where up means administratively up with a carrier (IFF_UP and
/// IFF_RUNNING); and address changes on any interface (RTMGRP_IPV4_IFADDR / IPV6_IFADDR) as
/// pokes: the engine then checks its VIPs at once instead of at its next
/// one-second tick. One rtnetlink socket for both (each connection keeps a 64 KiB
/// read buffer: issue 19, heap).
#[allow(clippy::type_complexity)]
pub fn watch_links_and_addresses() -> Result<
    (
        tokio::sync::mpsc::UnboundedReceiver<(u32, bool)>,
        tokio::sync::mpsc::UnboundedReceiver<()>,
    ),
    NetError,
> {
    use futures::StreamExt;
    use rtnetlink::constants::{RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR, RTMGRP_LINK};
    use rtnetlink::packet_core::NetlinkPayload;
    use rtnetlink::packet_route::RouteNetlinkMessage;
    use rtnetlink::sys::{AsyncSocket, SocketAddr};

    let (mut conn, _handle, mut messages) = rtnetlink::new_connection().map_err(NetError::Connect)?;
    conn.socket_mut()
        .socket_mut()
        .bind(&SocketAddr::new(
            0,
            RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
        ))
        .map_err(NetError::Connect)?;
    tokio::spawn(conn);
    let (links_tx, links_rx) = tokio::sync::mpsc::unbounded_channel();
    let (addrs_tx, addrs_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some((msg, _)) = messages.next().await {
            // Each follower gone stops its own events only.
            match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    let _ = links_tx.send((link.header.index, link_is_up(&link)));
                }
                NetlinkPayload::InnerMessage(
                    RouteNetlinkMessage::NewAddress(_) | RouteNetlinkMessage::DelAddress(_),
                ) => {
                    let _ = addrs_tx.send(());
                }
                _ => {}
            }
            if links_tx.is_closed() && addrs_tx.is_closed() {
                return;
            }
        }
    });
    Ok((links_rx, addrs_rx))
}

pub fn link_is_up(link: &rtnetlink::packet_route::link::LinkMessage) -> bool {
    use rtnetlink::packet_route::link::LinkFlags;
    link.header.flags.contains(LinkFlags::Up) && link.header.flags.contains(LinkFlags::Running)
}
