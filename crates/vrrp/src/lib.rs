//! VRRP v2/v3 (RFC 3768, RFC 5798), sans-IO: the packet codec and the instance
//! state machine. No sockets, no timers, no runtime: the daemon feeds inputs
//! (received packets, fired timers, tracking) and executes the outputs.

pub mod auth_hmac;
pub mod error;
pub mod hex;
pub mod instance;
pub mod packet;
pub mod router;
pub mod sync;

pub use instance::{is_owner, Family, Input, Instance, Output, Params, State, Timer, OWNER_PRIORITY};
pub use packet::{Advert, Version};
pub use router::{Delivery, Routed, Router};
