//! VRRP v2/v3 (RFC 3768, RFC 5798): the sans-IO core lives in the `hafront-vrrp`
//! crate (crates/vrrp), re-exported here; the sockets are the daemon's.

pub use hafront_vrrp::{auth_hmac, error, hex, instance, packet, router, sync};

pub mod io;

pub use instance::{is_owner, Family, Input, Instance, Output, Params, State, Timer, OWNER_PRIORITY};
pub use packet::{Advert, Version};
