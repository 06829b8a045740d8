use std::net::IpAddr;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("rtnetlink connection: {0}")]
    Connect(std::io::Error),
    #[error("interface {0:?} not found")]
    NoInterface(String),
    #[error("interface {iface:?} has no {family} address to send advertisements from")]
    NoAddress { iface: String, family: &'static str },
    #[error("{op} {addr} on {iface}: {source}")]
    Address {
        op: &'static str,
        addr: IpAddr,
        iface: String,
        #[source]
        source: Box<rtnetlink::Error>,
    },
    #[error("{op} {what}: {source}")]
    Route {
        op: &'static str,
        what: String,
        #[source]
        source: Box<rtnetlink::Error>,
    },
    #[error("rtnetlink {what}: {source}")]
    Netlink {
        what: &'static str,
        #[source]
        source: Box<rtnetlink::Error>,
    },
    #[error(
        "interface {0:?} exists and is not a macvlan: not used as a virtual MAC interface (set vmac_name)"
    )]
    VmacConflict(String),
    #[error("interface {0:?} exists and is not an ipvlan: not used for use_ipvlan (set vmac_name)")]
    IpvlanConflict(String),
    #[error("announcement socket on {iface}: {source}")]
    Socket {
        iface: String,
        #[source]
        source: std::io::Error,
    },
}

/// The errno carried by a netlink error, if any (positive, like `libc::EEXIST`).
pub fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}
