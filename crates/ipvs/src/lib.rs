//! IPVS (the kernel's layer-4 load balancer) over its generic netlink family
//! "IPVS", without I/O:
//!
//! - `constants`, `nlas`, `message`: the family in the rust-netlink style
//!   (constants from include/uapi/linux/ip_vs.h, attribute enums with an `Other`
//!   catch-all, `GenlFamily` impl; the family id is resolved at runtime);
//! - `model`: typed services/destinations and `Table`;
//! - `dump`: dump replies read in place into `model` types (no per-entry allocation);
//! - `plan`: the pure reconciler (desired vs actual -> ops);
//! - `written`: the model of what hafront last wrote, planned against per event;
//! - `sync`: the connection sync daemon (NEW_DAEMON / DEL_DAEMON / GET_DAEMON);
//! - `error`: the executor's error type.
//!
//! The executor (sockets, batching, the table dump) is the daemon's `ipvs::io`.

pub mod constants;
pub mod dump;
pub mod error;
pub mod message;
pub mod model;
pub mod nlas;
pub mod plan;
pub mod sync;
pub mod written;

pub use error::IpvsError;
pub use message::{IpvsCmd, IpvsMessage};
pub use model::{DestSpec, Forward, Protocol, ServiceKey, ServiceSpec, Table};
pub use plan::{plan, Op};
pub use sync::{SyncDaemon, SyncRole};
