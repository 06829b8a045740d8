pub mod config;
pub mod daemon;
pub mod ipvs;
pub mod net;
pub mod vrrp;
pub mod track;
