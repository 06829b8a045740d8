//! Typed IPVS services and destinations, and their conversion to and from the
//! netlink attributes. This is what the planner compares: the configuration side
//! and the kernel side both become `Table`s of these.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::constants::*;
use super::nlas::{DestAttr, InetAddr, ServiceAttr};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn number(self) -> u16 {
        match self {
            Protocol::Tcp => libc::IPPROTO_TCP as u16,
            Protocol::Udp => libc::IPPROTO_UDP as u16,
            Protocol::Sctp => libc::IPPROTO_SCTP as u16,
        }
    }
    pub fn from_number(n: u16) -> Option<Protocol> {
        match i32::from(n) {
            libc::IPPROTO_TCP => Some(Protocol::Tcp),
            libc::IPPROTO_UDP => Some(Protocol::Udp),
            libc::IPPROTO_SCTP => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        })
    }
}

/// What identifies a virtual service in the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKey {
    Addr { protocol: Protocol, addr: SocketAddr },
    Fwmark { ipv6: bool, mark: u32 },
}

impl ServiceKey {
    pub fn is_ipv6(&self) -> bool {
        match self {
            ServiceKey::Addr { addr, .. } => addr.is_ipv6(),
            ServiceKey::Fwmark { ipv6, .. } => *ipv6,
        }
    }

    fn af(&self) -> u16 {
        if self.is_ipv6() {
            AF_INET6
        } else {
            AF_INET
        }
    }

    /// The attributes that select the service (all a DEL or a NEW_DEST needs).
    pub fn attrs(&self) -> Vec<ServiceAttr> {
        match self {
            ServiceKey::Addr { protocol, addr } => vec![
                ServiceAttr::AddressFamily(self.af()),
                ServiceAttr::Protocol(protocol.number()),
                ServiceAttr::Address(inet_addr(addr.ip())),
                ServiceAttr::Port(addr.port()),
            ],
            ServiceKey::Fwmark { mark, .. } => {
                vec![ServiceAttr::AddressFamily(self.af()), ServiceAttr::Fwmark(*mark)]
            }
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Addr { protocol, addr } => write!(f, "{protocol} {addr}"),
            ServiceKey::Fwmark { ipv6, mark } => {
                write!(f, "fwmark {mark}{}", if *ipv6 { " (IPv6)" } else { "" })
            }
        }
    }
}

pub fn inet_addr(ip: IpAddr) -> InetAddr {
    let mut a = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => a[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => a.copy_from_slice(&v6.octets()),
    }
    a
}

/// The address of a kernel `nf_inet_addr` of family `af` (None: not IPv4/IPv6).
pub fn ip_of(a: &InetAddr, af: u16) -> Option<IpAddr> {
    match af {
        AF_INET => Some(IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))),
        AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(*a))),
        _ => None,
    }
}

/// A virtual service's settings (its key and what SET_SERVICE can change).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub key: ServiceKey,
    pub scheduler: String,
    /// IP_VS_SVC_F_* without the kernel's internal HASHED bit.
    pub flags: u32,
    /// Persistence timeout in seconds (meaningful with IP_VS_SVC_F_PERSISTENT).
    pub timeout: u32,
    /// Raw netmask attribute: IPv4 mask in network byte order, IPv6 prefix length.
    pub netmask: u32,
    pub pe_name: Option<String>,
}

impl ServiceSpec {
    /// A service with `scheduler` and nothing else set (not persistent, no flags).
    pub fn new(key: ServiceKey, scheduler: &str) -> ServiceSpec {
        ServiceSpec {
            key,
            scheduler: scheduler.into(),
            flags: 0,
            timeout: 0,
            netmask: ServiceSpec::default_netmask(key.is_ipv6()),
            pe_name: None,
        }
    }

    /// The default persistence netmask: a /32 or a /128, as ipvsadm's.
    pub fn default_netmask(ipv6: bool) -> u32 {
        if ipv6 {
            128
        } else {
            u32::from_ne_bytes([255, 255, 255, 255])
        }
    }

    pub fn attrs(&self) -> Vec<ServiceAttr> {
        let mut a = self.key.attrs();
        a.push(ServiceAttr::SchedName(self.scheduler.clone()));
        if let Some(pe) = &self.pe_name {
            a.push(ServiceAttr::PeName(pe.clone()));
        }
        a.push(ServiceAttr::Flags {
            flags: self.flags,
            mask: u32::MAX,
        });
        a.push(ServiceAttr::Timeout(self.timeout));
        a.push(ServiceAttr::Netmask(self.netmask));
        a
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Forward {
    /// Masquerading (NAT).
    Nat,
    /// Direct routing (gatewaying).
    Dr,
    /// IP tunnelling.
    Tun,
    Local,
    Bypass,
}

impl Forward {
    pub fn conn_flags(self) -> u32 {
        match self {
            Forward::Nat => IP_VS_CONN_F_MASQ,
            Forward::Dr => IP_VS_CONN_F_DROUTE,
            Forward::Tun => IP_VS_CONN_F_TUNNEL,
            Forward::Local => IP_VS_CONN_F_LOCALNODE,
            Forward::Bypass => IP_VS_CONN_F_BYPASS,
        }
    }
    pub fn from_conn_flags(v: u32) -> Forward {
        match v & IP_VS_CONN_F_FWD_MASK {
            IP_VS_CONN_F_DROUTE => Forward::Dr,
            IP_VS_CONN_F_TUNNEL => Forward::Tun,
            IP_VS_CONN_F_LOCALNODE => Forward::Local,
            IP_VS_CONN_F_BYPASS => Forward::Bypass,
            _ => Forward::Nat,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelType {
    Ipip,
    Gue,
    Gre,
}

impl TunnelType {
    pub fn number(self) -> u8 {
        match self {
            TunnelType::Ipip => IP_VS_CONN_F_TUNNEL_TYPE_IPIP,
            TunnelType::Gue => IP_VS_CONN_F_TUNNEL_TYPE_GUE,
            TunnelType::Gre => IP_VS_CONN_F_TUNNEL_TYPE_GRE,
        }
    }
    pub fn from_number(n: u8) -> TunnelType {
        match n {
            IP_VS_CONN_F_TUNNEL_TYPE_GUE => TunnelType::Gue,
            IP_VS_CONN_F_TUNNEL_TYPE_GRE => TunnelType::Gre,
            _ => TunnelType::Ipip,
        }
    }
}

/// A destination (real server) of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestSpec {
    pub addr: SocketAddr,
    pub forward: Forward,
    pub weight: u32,
    pub upper_threshold: u32,
    pub lower_threshold: u32,
    pub tunnel_type: TunnelType,
    pub tunnel_port: u16,
    pub tunnel_flags: u16,
}

impl DestSpec {
    pub fn new(addr: SocketAddr, forward: Forward, weight: u32) -> DestSpec {
        DestSpec {
            addr,
            forward,
            weight,
            upper_threshold: 0,
            lower_threshold: 0,
            tunnel_type: TunnelType::Ipip,
            tunnel_port: 0,
            tunnel_flags: 0,
        }
    }

    pub fn attrs(&self) -> Vec<DestAttr> {
        let mut a = vec![
            DestAttr::AddressFamily(if self.addr.is_ipv6() { AF_INET6 } else { AF_INET }),
            DestAttr::Address(inet_addr(self.addr.ip())),
            DestAttr::Port(self.addr.port()),
            DestAttr::FwdMethod(self.forward.conn_flags()),
            DestAttr::Weight(self.weight),
            DestAttr::UpperThreshold(self.upper_threshold),
            DestAttr::LowerThreshold(self.lower_threshold),
        ];
        if self.forward == Forward::Tun {
            a.push(DestAttr::TunnelType(self.tunnel_type.number()));
            a.push(DestAttr::TunnelPort(self.tunnel_port));
            a.push(DestAttr::TunnelFlags(self.tunnel_flags));
        }
        a
    }

    /// The attributes that select the destination (for DEL_DEST).
    pub fn key_attrs(addr: SocketAddr) -> Vec<DestAttr> {
        vec![
            DestAttr::AddressFamily(if addr.is_ipv6() { AF_INET6 } else { AF_INET }),
            DestAttr::Address(inet_addr(addr.ip())),
            DestAttr::Port(addr.port()),
        ]
    }
}

/// Counters of a service or destination (64-bit versions when the kernel has them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub conns: u64,
    pub in_pkts: u64,
    pub out_pkts: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub cps: u64,
    pub in_pps: u64,
    pub out_pps: u64,
    pub in_bps: u64,
    pub out_bps: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestCounters {
    pub active_conns: u32,
    pub inactive_conns: u32,
    pub persistent_conns: u32,
    pub stats: Stats,
}

/// A whole IPVS table (desired or actual): services by key, each with its
/// destinations by address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    pub services: BTreeMap<ServiceKey, ServiceEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEntry {
    pub spec: ServiceSpec,
    pub dests: BTreeMap<SocketAddr, DestSpec>,
}

impl Table {
    pub fn insert(&mut self, spec: ServiceSpec, dests: impl IntoIterator<Item = DestSpec>) {
        self.services.insert(
            spec.key,
            ServiceEntry {
                spec,
                dests: dests.into_iter().map(|d| (d.addr, d)).collect(),
            },
        );
    }
}
