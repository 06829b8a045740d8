//! IPVS errors: the kernel's answer to one operation, or why IPVS is off.

#[derive(Debug, thiserror::Error)]
pub enum IpvsError {
    /// The "IPVS" generic netlink family is not registered: no ip_vs module.
    #[error("IPVS is not available in this kernel (generic netlink family \"IPVS\" not found; is the ip_vs module loaded?)")]
    Unavailable,
    #[error("cannot open a generic netlink socket: {0}")]
    Socket(std::io::Error),
    #[error("{what}: {source}")]
    Kernel { what: String, source: std::io::Error },
    #[error("{what}: {message}")]
    Protocol { what: String, message: String },
}

impl IpvsError {
    /// The errno of a kernel refusal (EEXIST, ENOENT, ...).
    pub fn errno(&self) -> Option<i32> {
        match self {
            IpvsError::Kernel { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
