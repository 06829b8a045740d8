pub mod config;
pub mod daemon;
pub mod net;
pub mod vrrp;
