//! IPVS (the kernel's layer-4 load balancer) over its generic netlink family
//! "IPVS", with no ipvsadm in the loop.
//!
//! The codec, model, dump reader and planner are the `hafront-ipvs` crate
//! (crates/ipvs), re-exported here. The daemon keeps what touches the machine or
//! the configuration:
//! - `desired`: the configuration and the current roles/health -> the wanted table;
//! - `io`: the thin executor over its own generic netlink socket (requests batched
//!   per datagram, one ACK and one result per op), and the table dump on a blocking
//!   socket;
//! - `reconcile`: the task that plans and applies.

// `plan` is both the module and the function (hafront_ipvs re-exports it at its root).
pub use hafront_ipvs::{
    constants, dump, error, message, model, nlas, plan, DestSpec, Forward, IpvsCmd, IpvsError, IpvsMessage,
    Op, Protocol, ServiceKey, ServiceSpec, Table,
};
pub use hafront_ipvs::{sync, SyncDaemon, SyncRole};

pub mod desired;
pub mod io;
pub mod reconcile;
pub mod syncd;
pub mod sysctl;
