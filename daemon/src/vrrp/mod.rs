//! VRRP v2/v3 (RFC 3768, RFC 5798): codec, sans-IO instances, and their I/O.

pub mod error;
pub mod hex;
pub mod instance;
pub mod io;
pub mod packet;

pub use instance::{Input, Instance, Output, Params, State, Timer};
pub use packet::{Advert, Version};
