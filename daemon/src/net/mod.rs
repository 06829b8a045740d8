//! Addresses and links through rtnetlink, and address announcements (gratuitous
//! ARP, unsolicited neighbour advertisements).
//!
//! The VIP executor is an actor: VRRP instances send it commands over a channel and
//! never wait on netlink, so a slow kernel call cannot delay an advertisement.

pub mod accept;
pub mod announce;
pub mod error;
pub mod hooks;
pub mod igmp;
pub mod link;
pub mod mld;
pub mod nft;
pub mod routes;
pub mod vip;
pub mod vmac;

pub use error::NetError;
pub use link::{Iface, Links};
pub use vip::{VipCommand, VipExecutor, VipSender};
