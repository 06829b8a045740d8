pub mod checks;
pub mod config;
pub mod daemon;
pub mod ipvs;
pub mod keepalived;
pub mod net;
pub mod track;
pub mod vrrp;
