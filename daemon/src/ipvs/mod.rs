//! IPVS (the kernel's layer-4 load balancer) over its generic netlink family
//! "IPVS", with no ipvsadm in the loop.
//!
//! - `constants`, `nlas`, `message`: the family in the rust-netlink style
//!   (constants from include/uapi/linux/ip_vs.h, attribute enums with an `Other`
//!   catch-all, `GenlFamily` impl; the family id is resolved at runtime);
//! - `model`: typed services/destinations and `Table`;
//! - `dump`: dump replies read in place into `model` types (no per-entry allocation);
//! - `plan`: the pure reconciler (desired vs actual -> ops);
//! - `io`: the thin executor over its own generic netlink socket (requests batched
//!   per datagram, one ACK and one result per op), and the table dump on a blocking
//!   socket.

pub mod constants;
pub mod desired;
pub mod dump;
pub mod error;
pub mod io;
pub mod message;
pub mod model;
pub mod nlas;
pub mod plan;
pub mod reconcile;

pub use error::IpvsError;
pub use message::{IpvsCmd, IpvsMessage};
pub use model::{DestSpec, Forward, Protocol, ServiceKey, ServiceSpec, Table};
pub use plan::{plan, Op};
